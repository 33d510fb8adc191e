"""The move topology, as tests, the demo and the benchmark run it.

    mbxgen p0 <-> p0 steer p1 <-> p0 A p1 --> mbxgen p1
                       steer p2 <-> p0 B p1 --> mbxgen p2

Five processes on one machine, linked by net_memif (mbxgen and steer serve
the links they start; mbxgen waits for them), plus mbxctld with a topology
file naming steer, A (steer port 1) and B (steer port 2). mbxgen sends every
flow from port 0 and checks what comes back on ports 1 and 2; steer starts
with every flow on A. The NF instances share one NAT address and split its
ports when the NF is nat.

    with Topology(tmp, nf="nat", workers=(1, 2)) as t:    # A 1 worker, B 2
        t.start_gen(flows=200, rate=20000, duration=4)
        t.wait_flows("A", 200)
        summary = t.move("src=10.0.0.0/25", "lf,op")
        report = t.gen_report()

Standard library only, apart from the mbx package (built in the tree).
"""
import json
import os
import subprocess
import sys
import time

import mbxrun

sys.path.insert(0, os.path.join(mbxrun.BUILD, "controller-shim", "python"))
import mbx  # noqa: E402

MBXGEN = os.path.join(mbxrun.BUILD, "tools", "mbxgen", "mbxgen")
MBXCTLD = os.path.join(mbxrun.BUILD, "controller-shim", "mbxctld")
MBXCTL = os.path.join(mbxrun.BUILD, "controller-shim", "mbxctl")

EXT_IP = "198.51.100.1"
# the NF of each instance, by name: A and B get complementary NAT port ranges
NF_ARGS = {
    "nat": {"A": "nat,ext_ip=%s,ports=1024-32767" % EXT_IP,
            "B": "nat,ext_ip=%s,ports=32768-65535" % EXT_IP},
    "fw": {"A": "fw,default=allow", "B": "fw,default=allow"},
    "lb": {"A": "lb,vip=192.0.2.1:5000,backends=[10.1.0.1:5000,10.1.0.2:5000,10.1.0.3:5000]",
           "B": "lb,vip=192.0.2.1:5000,backends=[10.1.0.1:5000,10.1.0.2:5000,10.1.0.3:5000]"},
    "fwd": {"A": "fwd", "B": "fwd"},
}


def memif(i, sock, role):
    # 4096 slots a ring (memif's default is 1024), as many as a NIC queue often has:
    # a worker busy exporting state, or waiting for the CPU, is not a loss
    return "net_memif%d,role=%s,id=0,socket=%s,socket-abstract=no,rsize=12" % (i, role, sock)


def lcores(workers):
    # every lcore may run on either CPU: pinned, the five processes' workers would
    # all share CPU 1 and wait on each other for whole scheduler slices
    return "(0-%d)@(0-1)" % workers


class Topology:
    def __init__(self, tmp, nf="nat", workers=1, idle_us=50, nf_args=None, mem=384, mbufs=None):
        self.tmp = tmp
        self.nf = nf
        # workers of A and B: one number for both, or a pair
        self.workers = (workers, workers) if isinstance(workers, int) else tuple(workers)
        self.idle_us = idle_us
        self.mem = mem
        self.mbufs = mbufs  # A's and B's packet buffers (--mbufs), or mbxd's default
        self.nf_args = nf_args or NF_ARGS[nf]
        self.procs = {}
        self.gen = None
        self.ctld = None
        self.socks = {k: os.path.join(tmp, k + ".sock") for k in ("g2s", "s2a", "s2b", "a2g",
                                                                   "b2g")}
        for s in self.socks.values():
            if os.path.exists(s):
                os.unlink(s)
        self.report_path = os.path.join(tmp, "mbxgen.json")

    # processes

    def _mbxd(self, name, vdevs, nf, workers):
        prefix = mbxrun.unique_prefix("mv" + name)
        argv = [mbxrun.MBXD] + mbxrun.eal_args(prefix, lcores=lcores(workers), mem=self.mem,
                                               vdevs=vdevs)
        if os.environ.get("MBX_LOG"):
            argv += ["--log-level", os.environ["MBX_LOG"]]
        argv += ["--", "--nf", nf, "--idle-sleep-us", str(self.idle_us), "--flows", "262144"]
        if self.mbufs and name in ("A", "B"):
            argv += ["--mbufs", str(self.mbufs)]
        # a shared machine can freeze a process for longer than the first-packet
        # timeouts: an expired flow would show as a rewrite change, not a move's fault
        for cls in ("udp_first", "udp", "tcp_syn_sent", "tcp_syn_recv"):
            argv += ["--timeout", cls + "=3600"]
        p = mbxrun.Proc(argv, prefix, log_path=os.path.join(self.tmp, name + ".log"))
        self.procs[name] = p
        return p

    def start_gen(self, flows=200, rate=20000, duration=4.0, hosts=64, proto="udp",
                  extra=()):
        """mbxgen first (it serves three links), then steer, A and B, then mbxctld."""
        prefix = mbxrun.unique_prefix("mvgen")
        argv = [MBXGEN] + mbxrun.eal_args(prefix, lcores=lcores(1), mem=self.mem, vdevs=[
            memif(0, self.socks["g2s"], "server"), memif(1, self.socks["a2g"], "server"),
            memif(2, self.socks["b2g"], "server")])
        argv += ["--", "--tx-port", "0", "--rx-ports", "1,2", "--flows", str(flows),
                 "--hosts", str(hosts), "--rate", str(rate), "--duration", str(duration),
                 "--proto", proto, "--src", "10.0.1.0", "--idle-sleep-us", "20",
                 "--link-wait", "30", "--report", self.report_path] + list(extra)
        self.gen = mbxrun.Proc(argv, prefix, log_path=os.path.join(self.tmp, "mbxgen.log"))
        self.gen.telemetry()
        self._mbxd("S", [memif(0, self.socks["g2s"], "client"), memif(1, self.socks["s2a"],
                                                                      "server"),
                         memif(2, self.socks["s2b"], "server")], "steer,spread=1-1", 1)
        self.procs["S"].control()
        self._mbxd("A", [memif(0, self.socks["s2a"], "client"),
                         memif(1, self.socks["a2g"], "client")], self.nf_args["A"],
                   self.workers[0])
        self._mbxd("B", [memif(0, self.socks["s2b"], "client"),
                         memif(1, self.socks["b2g"], "client")], self.nf_args["B"],
                   self.workers[1])
        self.addr = {n: p.control() for n, p in self.procs.items()}
        topo = os.path.join(self.tmp, "topology")
        with open(topo, "w") as f:
            f.write("steer %s\ninstance A %s 1\ninstance B %s 2\n"
                    % (self.addr["S"], self.addr["A"], self.addr["B"]))
        self.ctl_addr = "unix:" + os.path.join(self.tmp, "mbxctld.sock")
        self.ctld = subprocess.Popen([MBXCTLD, "--listen", self.ctl_addr, "--topology", topo],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.tmp, "mbxctld.log"), "w"))
        mbxrun.wait_until(lambda: os.path.exists(self.ctl_addr[5:]), what="mbxctld")

    def client(self, name):
        return mbx.Client(self.addr[name])

    def flows(self, name):
        with self.client(name) as c:
            return c.stats().flows

    def wait_flows(self, name, n, timeout=30):
        mbxrun.wait_until(lambda: self.flows(name) >= n, timeout,
                          what="%d flows at %s" % (n, name))

    def move(self, filt, guarantee="lf,op", mode="p2p", src="A", dst="B", copy=False,
             limit=0):
        """Through mbxctl and mbxctld, as a user would; returns (rc, summary dict, stderr).
        limit: the source's redirect buffer (mbxctl --limit; 0: its default)."""
        argv = [MBXCTL, "--ctl", self.ctl_addr, "copy" if copy else "move", "--from", src,
                "--to", dst, "--filter", filt, "--guarantee", guarantee, "--mode", mode]
        if limit:
            argv += ["--limit", str(limit)]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        summary = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
        return r.returncode, summary, r.stderr

    def gen_report(self, timeout=120):
        """Wait for mbxgen to finish its run and read its report."""
        self.gen.p.wait(timeout)
        with open(self.report_path) as f:
            return json.load(f)

    def stop(self):
        # clients before servers (memif), mbxgen last; results were read before
        for name in ("A", "B", "S"):
            if name in self.procs:
                self.procs[name].stop()
        if self.gen is not None:
            self.gen.stop()
        if self.ctld is not None:
            self.ctld.kill()
            self.ctld.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def verdict(report):
    """The mbxgen totals that judge a move, as a short line."""
    return ("sent %d received %d lost %d duplicated %d reordered %d rewrite_changes %d"
            % (report["sent"], report["received"], report["lost"], report["duplicated"],
               report["reordered"], report["rewrite_changes"]))


if __name__ == "__main__":
    # a smoke run: python3 tests/lib/topo.py [nf]
    import tempfile
    tmp = tempfile.mkdtemp(prefix="mbx-topo-")
    with Topology(tmp, nf=sys.argv[1] if len(sys.argv) > 1 else "nat") as t:
        t.start_gen(flows=200, rate=20000, duration=4)
        t.wait_flows("A", 200)
        time.sleep(0.5)
        print(t.move("src=10.0.1.0/27", "lf,op"))
        print(verdict(t.gen_report()))
    print(tmp)
