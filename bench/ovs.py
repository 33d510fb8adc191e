#!/usr/bin/python3
"""Open vSwitch with DPDK as the reference for mbx: userspace conntrack + SNAT.

Used by bench/dataplane.py (case ``ovs_ct_nat``); runs alone for a look:

    /usr/bin/python3 bench/ovs.py --flows 10000 --seconds 5

What runs (Debian's openvswitch-switch-dpdk 3.1, the recipe of the project's
DPDK notes):

- ``ovsdb-server`` with a fresh database, and
  ``/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk``, the netdev
  (userspace) datapath, both in a work directory of their own (OVS_RUNDIR,
  OVS_DBDIR, OVS_LOGDIR, their own control sockets and pid files) and
  ovs-vswitchd in a network namespace of its own (it creates the tap
  devices ``ovs-netdev`` and ``br0``, which go with the namespace);
- DPDK in ovs-vswitchd: ``other_config:dpdk-extra`` = ``--no-huge -m MEM
  --no-pci --no-shconf --legacy-mem --file-prefix P`` (without
  ``--legacy-mem`` OVS adds ``--in-memory``, which 22.11 refuses with
  ``--no-huge``), one PMD thread on CPU 1 (``pmd-cpu-mask=0x2``), one handler
  and one revalidator thread;
- bridge br0 (``datapath_type=netdev``) with the same ports as mbx's
  benchmark: ``p0`` = ``net_pcap0,rx_pcap=F,infinite_rx=1`` (DPDK port 0)
  and ``p1`` = ``net_null1,no-rx=1`` (DPDK port 1);
- OpenFlow: everything IP from p0 through conntrack zone 1 with NAT; a new
  connection is committed with ``nat(src=198.18.200.1-198.18.200.254:1024-65535)``
  and sent to p1, an established one sent to p1; nothing else passes.

Counters are read exactly as for mbxd and testpmd: ``/ethdev/stats,1``
``opackets`` through the DPDK telemetry socket of ovs-vswitchd's EAL
(``/var/run/dpdk/P/dpdk_telemetry.v2``). Connections tracked:
``ovs-appctl dpctl/ct-get-nconns``.

Teardown (also on failure, SIGINT, SIGTERM, or the parent's death, which
sends the daemons SIGTERM): ``ovs-appctl exit``, then SIGTERM and SIGKILL to
the processes this module started (by pid), the namespace deleted (and with
it the taps), the DPDK runtime directory and the work directory removed
(``keep=True`` keeps the logs).
"""
import argparse
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "lib"))
import mbxrun  # noqa: E402

VSWITCHD = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"
SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
TOOLS = ("ovsdb-tool", "ovsdb-server", "ovs-vsctl", "ovs-ofctl", "ovs-appctl")
SNAT_RANGE = "198.18.200.1-198.18.200.254:1024-65535"
FLOWS = [
    "table=0,priority=10,ip,in_port=p0,actions=ct(zone=1,nat,table=1)",
    "table=0,priority=0,actions=drop",
    "table=1,priority=10,ip,in_port=p0,ct_state=+trk+new,"
    "actions=ct(commit,zone=1,nat(src=%s)),output:p1" % SNAT_RANGE,
    "table=1,priority=10,ip,in_port=p0,ct_state=+trk+est,actions=output:p1",
    "table=1,priority=0,actions=drop",
]

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _child_setup():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    os.setpgrp()


def missing():
    """What of openvswitch-switch-dpdk is not installed (empty: all there)."""
    out = [p for p in (VSWITCHD, SCHEMA) if not os.path.exists(p)]
    out += [t for t in TOOLS if shutil.which(t) is None]
    return out


class OvsCtNat:
    """One ovs-vswitchd-dpdk with conntrack + SNAT between a replayed pcap and a sink.

    The interface is the one bench/dataplane.py uses of a DPDK process:
    telemetry(), query(), mem_status(), stop(), and p (the vswitchd Popen)."""

    def __init__(self, pcap, prefix, log_path, mem=1024, keep=False):
        self.prefix = prefix
        self.log_path = log_path
        self.keep = keep
        self.work = tempfile.mkdtemp(prefix="ovs_%s_" % prefix)
        self.run, self.db, self.logs = (os.path.join(self.work, d) for d in ("run", "db", "log"))
        for d in (self.run, self.db, self.logs):
            os.makedirs(d)
        self.env = dict(os.environ, OVS_RUNDIR=self.run, OVS_DBDIR=self.db,
                        OVS_LOGDIR=self.logs, OVS_SYSCONFDIR=self.work)
        self.dbsock = "unix:" + os.path.join(self.run, "db.sock")
        self.ctl = os.path.join(self.run, "ovs-vswitchd.ctl")
        self.ns = "mbxovs%d" % os.getpid()
        self.procs = []
        self.p = None
        self.tel = None
        self.log = open(log_path, "w")
        try:
            self._start(pcap, mem)
        except BaseException:
            self.stop()
            raise

    # -- processes ---------------------------------------------------------

    def _cmd(self, argv, check=True, timeout=60, ns=False):
        full = (["ip", "netns", "exec", self.ns] if ns else []) + list(argv)
        self.log.write("# %s\n" % " ".join(full))
        self.log.flush()
        r = subprocess.run(full, env=self.env, capture_output=True, text=True, timeout=timeout)
        if r.stdout.strip():
            self.log.write(r.stdout)
        if r.stderr.strip():
            self.log.write(r.stderr)
        self.log.flush()
        if check and r.returncode != 0:
            raise RuntimeError("%s: exit %d: %s" % (" ".join(argv[:3]), r.returncode,
                                                   r.stderr.strip()[-500:]))
        return r.stdout

    def _spawn(self, argv, name, ns=False):
        full = (["ip", "netns", "exec", self.ns] if ns else []) + list(argv)
        self.log.write("# %s\n" % " ".join(full))
        self.log.flush()
        out = open(os.path.join(self.logs, name + ".out"), "w")
        p = subprocess.Popen(full, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, preexec_fn=_child_setup)
        out.close()
        self.procs.append((name, p))
        return p

    def vsctl(self, *args, wait=True):
        return self._cmd(["ovs-vsctl", "--db=" + self.dbsock, "--timeout=120"] +
                         ([] if wait else ["--no-wait"]) + list(args))

    def appctl(self, *args, check=True):
        return self._cmd(["ovs-appctl", "-t", self.ctl] + list(args), check=check, timeout=30)

    def _start(self, pcap, mem):
        subprocess.run(["ip", "netns", "del", self.ns], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        self._cmd(["ip", "link", "set", "lo", "up"], ns=True)
        conf = os.path.join(self.db, "conf.db")
        self._cmd(["ovsdb-tool", "create", conf, SCHEMA])
        self._spawn(["ovsdb-server", conf, "--remote=p" + self.dbsock,
                     "--unixctl=" + os.path.join(self.run, "ovsdb-server.ctl"),
                     "--pidfile=" + os.path.join(self.run, "ovsdb-server.pid"),
                     "--log-file=" + os.path.join(self.logs, "ovsdb-server.log")], "ovsdb-server")
        mbxrun.wait_until(lambda: os.path.exists(self.dbsock[5:]), timeout=30,
                          what="ovsdb-server's socket")
        extra = ("--no-huge -m %d --no-pci --no-shconf --legacy-mem --file-prefix %s "
                 "--log-level lib.eal:warning" % (mem, self.prefix))
        self.vsctl("init", wait=False)
        self.vsctl("set", "Open_vSwitch", ".", "other_config:dpdk-init=true",
                   "other_config:dpdk-extra=" + extra, "other_config:pmd-cpu-mask=0x2",
                   "other_config:n-handler-threads=1", "other_config:n-revalidator-threads=1",
                   wait=False)
        self.p = self._spawn([VSWITCHD, self.dbsock, "--unixctl=" + self.ctl,
                              "--pidfile=" + os.path.join(self.run, "ovs-vswitchd.pid"),
                              "--log-file=" + os.path.join(self.logs, "ovs-vswitchd.log")],
                             "ovs-vswitchd", ns=True)

        def up():
            if self.p.poll() is not None:
                raise RuntimeError("ovs-vswitchd exited with %s; see %s" % (
                    self.p.returncode, os.path.join(self.logs, "ovs-vswitchd.log")))
            return os.path.exists(self.ctl)
        mbxrun.wait_until(up, timeout=120, period=0.1, what="ovs-vswitchd's control socket")
        self.vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")
        self.vsctl("add-port", "br0", "p0", "--", "set", "Interface", "p0", "type=dpdk",
                   "options:dpdk-devargs=net_pcap0,rx_pcap=%s,infinite_rx=1" % pcap,
                   "ofport_request=1")
        self.vsctl("add-port", "br0", "p1", "--", "set", "Interface", "p1", "type=dpdk",
                   "options:dpdk-devargs=net_null1,no-rx=1", "ofport_request=2")
        for port in ("p0", "p1"):
            err = self.vsctl("get", "Interface", port, "error").strip()
            if err not in ("[]", ""):
                raise RuntimeError("OVS port %s: %s" % (port, err))
        self._cmd(["ovs-ofctl", "del-flows", "br0"])
        for f in FLOWS:
            self._cmd(["ovs-ofctl", "add-flow", "br0", f])

    # -- what dataplane.py reads -------------------------------------------

    def telemetry(self, timeout=15.0):
        if self.tel is None:
            deadline = time.time() + timeout
            while True:
                if self.p.poll() is not None:
                    raise RuntimeError("ovs-vswitchd exited with %s" % self.p.returncode)
                try:
                    self.tel = mbxrun.Telemetry(self.prefix, timeout=0.5)
                    break
                except OSError:
                    if time.time() > deadline:
                        raise
        return self.tel

    def query(self, cmd, params=None):
        return self.telemetry().query(cmd, params)

    def conns(self):
        """Connections in OVS's userspace conntrack."""
        out = self.appctl("dpctl/ct-get-nconns", check=False).strip()
        return int(out) if out.isdigit() else None

    def diagnostics(self):
        """Which OpenFlow rules the packets took and the PMD's cycles per packet,
        into the log; returns the PMD's average processing cycles per packet."""
        self._cmd(["ovs-ofctl", "dump-flows", "br0"], check=False)
        out = self.appctl("dpif-netdev/pmd-stats-show", check=False)
        for line in out.splitlines():
            if "avg processing cycles per packet" in line:
                try:
                    return round(float(line.split(":")[1].split()[0]), 1)
                except (IndexError, ValueError):
                    pass
        return None

    def ports(self):
        """{DPDK port id: device name}: p0 must be 0 and p1 1, as for mbxd."""
        out = {}
        for pid in self.query("/ethdev/list") or []:
            info = self.query("/ethdev/info", pid) or {}
            out[pid] = info.get("name")
        return out

    def mem_status(self):
        out = {}
        try:
            with open("/proc/%d/status" % self.p.pid) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("VmHWM", "VmRSS"):
                        out[k] = int(v.split()[0]) / 1024.0
        except (OSError, AttributeError):
            pass
        return out

    def stop(self, timeout=20.0):
        """Stop everything this instance started, whatever state it is in; the
        exit status of ovs-vswitchd (None if it had to be killed)."""
        rc = None
        if self.tel is not None:
            try:
                self.tel.close()
            except OSError:
                pass
            self.tel = None
        if self.p is not None and self.p.poll() is None and os.path.exists(self.ctl):
            try:
                self.appctl("exit", check=False)
            except (subprocess.TimeoutExpired, OSError):
                pass
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            if p is self.p:
                rc = p.returncode
        self.procs = []
        subprocess.run(["ip", "netns", "del", self.ns], stderr=subprocess.DEVNULL)
        shutil.rmtree(os.path.join(mbxrun.RUNTIME, self.prefix), ignore_errors=True)
        if not self.log.closed:
            if self.keep or rc not in (0, None, -signal.SIGTERM):
                self.log.write("# OVS logs kept in %s\n" % self.logs)
            self.log.close()
        if os.path.isdir(self.work):
            if self.keep:
                pass
            else:
                # keep vswitchd's log next to the benchmark's log of this case
                src = os.path.join(self.logs, "ovs-vswitchd.log")
                if os.path.exists(src):
                    shutil.copy(src, self.log_path + ".vswitchd")
                shutil.rmtree(self.work, ignore_errors=True)
        return rc


def main():
    sys.path.insert(0, HERE)
    import dataplane  # noqa: E402  (the pcap writer)

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flows", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if missing():
        sys.exit("missing: %s (apt-get install openvswitch-switch-dpdk)" % " ".join(missing()))
    tmp = tempfile.mkdtemp(prefix="ovs_bench_")
    pcap = os.path.join(tmp, "udp64-%d.pcap" % args.flows)
    dataplane.write_pcap(pcap, args.flows)
    o = None
    try:
        o = OvsCtNat(pcap, mbxrun.unique_prefix("bovs"), os.path.join(tmp, "ovs.log"),
                     keep=args.keep)
        print("ports %s" % o.ports())
        mbxrun.wait_until(lambda: o.query("/ethdev/stats", 1)["opackets"] > 0, timeout=60,
                          what="OVS to forward")
        time.sleep(1)
        a = o.query("/ethdev/stats", 1)["opackets"]
        t = time.monotonic()
        time.sleep(args.seconds)
        b = o.query("/ethdev/stats", 1)["opackets"]
        dt = time.monotonic() - t
        print("ovs_ct_nat, %d flows: %.3f Mpps, %s connections tracked" % (
            args.flows, (b - a) / dt / 1e6, o.conns()))
    finally:
        if o is not None:
            o.stop()
        if args.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
