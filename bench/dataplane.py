#!/usr/bin/python3
"""Dataplane throughput: testpmd io, mbxd fwd and each NF, OVS conntrack NAT; 1 / 10k / 1M flows.

What it measures
----------------
One core's forwarding rate of several programs on the same virtual ports and
the same traffic, in one run, so that their ratios mean something even on a
noisy shared machine (absolute Mpps there do not):

- ``testpmd``: ``dpdk-testpmd --forward-mode=io``, the ceiling: no parsing,
  no state;
- ``fwd``: ``mbxd --nf fwd``, the framework's plain forwarder (parse, hand
  off, transmit);
- ``nat``: ``mbxd --nf nat,ext_ip=198.18.0.0/20``, NAPT44 with one flow
  table entry and one port mapping per flow;
- ``fw``: ``mbxd --nf fw,rules=F`` with 2 rules (a deny that does not match,
  then the allow that does; scanned in order), a UDP pseudo-connection per
  flow; the rows say ``"rules": 2``;
- ``fw_1000``: the same with 1000 rules (999 of hosts, networks, protocols
  and port ranges that never match, then the allow; classified by rte_acl),
  ``"rules": 1000``; the rules file is ``bench/results/tmp/fw-rules-1000.txt``;
- ``lb``: ``mbxd --nf lb,vip=203.0.113.10:5001,backends=[8 backends]``, Maglev
  (table 65537), the destination rewritten on every packet;
- ``mon``: ``mbxd --nf mon``, per-flow counters and host records;
- ``fw+nat``: ``mbxd --nf fw,rules=F --nf nat,...``, the 2-rule fw then nat;
- ``ovs_ct_nat``: Open vSwitch 3.1 with DPDK (Debian's
  openvswitch-switch-dpdk, bench/ovs.py), userspace datapath, conntrack zone
  1 with SNAT to 198.18.200.1-198.18.200.254, one PMD thread, on the same
  pcap and sink; run at flow counts up to 100k (the default run: 1 and 10k),
  its rows and the fw+nat rows of the same flow count carry
  ``ratio_fw_nat_to_ovs`` = Mpps(fw+nat) / Mpps(ovs_ct_nat).

Every stateful case keeps one flow per pcap flow for the whole window (all
traffic is admitted; ``warning`` in a row says otherwise, e.g. nf_dropped).

Traffic: for every flow count N (default 1, 10000, 1000000) a pcap of N
64-byte UDP/IPv4 frames (60 bytes captured, 64 on a wire with the FCS), one
packet per flow, in round-robin order over the inside hosts, with correct
IPv4 and UDP checksums. Flow i comes from host 10.0.0.0 + 1 + i % H
(H = min(N, 1024) hosts, so no host holds more than ~1000 NAT ports) and
UDP source port 1024 + i // H, to 203.0.113.10:5001. Every process replays
it forever (``net_pcap0,rx_pcap=F,infinite_rx=1``, port 0, inside) into a
sink (``net_null0,no-rx=1``, port 1, outside), so every round of the pcap
touches all N flows.

Each process runs with ``--no-huge``, ``--lcores 0-1`` (lcore 0 main,
lcore 1 the one forwarding core), mbxd with ``--idle-sleep-us 0``. After
start-up the script waits for a warm-up: for the NF cases until
``/mbx/table`` ``flows`` == N and ``flows_created`` stops moving, for
ovs_ct_nat until OVS's conntrack holds N connections
(``dpctl/ct-get-nconns``), for the others until packets flow; then
``--warmup`` seconds more. Then it reads
``/ethdev/stats,1`` ``opackets`` (port 1 = what left the box; testpmd, mbxd
and ovs-vswitchd's EAL all answer this generic ethdev telemetry command) at t0 and t1 =
t0 + ``--seconds`` and reports (opackets(t1) - opackets(t0)) / (t1 - t0).
Each process is stopped with SIGTERM; its log stays in the tmp directory.

Caveat: the source is part of every case. With 1M flows the pcap PMD copies
each packet from one of 1M source mbufs spread over ~4 GB of 4 KB pages, so
even testpmd io loses about half its rate (cache and TLB misses on the
source); ratios at 1M compare against that lower ceiling.

Outputs
-------
- a table on stdout, with ratio_fwd = Mpps / Mpps(fwd) and ratio_testpmd =
  Mpps / Mpps(testpmd) of the same flow count (1.0 for a case against
  itself), and the issue's targets marked met or not: nat >= 0.30 of testpmd
  io at 10k flows and >= 0.20 at 1M; fw, lb and mon >= 0.30 at 10k; fw with
  1000 rules >= 0.20 at 10k; fw+nat >= 5x ovs_ct_nat at 10k;
- ``bench/results/dataplane.json``: a list of rows ``{"case", "flows",
  "mpps", "ratio_fwd", "ratio_testpmd", ...}`` (extra keys: ``seconds``,
  ``samples`` (Mpps of each second), ``loss`` (share of the port-0 packets
  that did not leave on port 1 during the window), ``peak_rss_mb``,
  ``run``, ``repeats`` (Mpps of each run when repeated), ``rules`` and
  ``nf`` (what ran) for the NF cases, ``ratio_fw_nat_to_ovs``, ``warning``,
  and ``error`` when a case failed). Rows of cases this run did not
  measure are kept; all rows of the cases it measured are replaced;
- ``bench/results/dataplane.png`` (gnuplot): Mpps per case per flow count,
  for every case in the JSON file.

Generated pcaps, process logs and gnuplot input go to
``bench/results/tmp/`` (ignored by git, never commit it).

Usage
-----
    /usr/bin/python3 bench/dataplane.py                  # full run
    /usr/bin/python3 bench/dataplane.py --flows 1,10000 --seconds 3
    /usr/bin/python3 bench/dataplane.py --quick          # smoke test

``--quick`` uses 1 and 1000 flows, 1 s windows and writes to
``bench/results/tmp/quick/`` instead of ``bench/results/`` unless ``--out``
is given, so a smoke test never overwrites real results. Other options:
``--cases`` (a subset of the cases above), ``--repeat`` (interleaved runs,
the median is reported; default 3, 1 with ``--quick``), ``--warmup``,
``--mbxd``, ``--testpmd``, ``--keep-tmp``. A ratio compares runs of the
same invocation only: run the reference (testpmd, fwd, ovs_ct_nat) with the
case, or its ratio is empty.

Memory: the pcap PMD copies the whole pcap into mbufs of the process's pool
at start-up, and without hugepages every mbuf takes a 4 KB page (rte_mempool
keeps an object of an IOVA-contiguous pool inside one page), so 1M packets
need ~4.1 GB; nat adds ~0.5 GB of flow table and host table for 1M flows
and ~100 MB for the /20 port pool. -m is sized from that: ~4.6 GB for
testpmd and fwd, ~6 GB for nat at 1M flows (observed peak RSS 4.5 GB for
mbxd nat, 4.8 GB for testpmd, which mlockall()s its whole -m); the other
NF cases are sized like nat without the pool; OVS takes -m 1024 (~1.1 GB).
One process runs at a time; a full run (9 cases, 3 repeats) takes about
12 minutes.
Run as root (DPDK runtime directories, telemetry sockets under /var/run/dpdk).
"""
import argparse
import ctypes
import datetime
import json
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import mbxrun  # noqa: E402
import ovs  # noqa: E402  (bench/ovs.py: the Open vSwitch reference)

RESULTS = os.path.join(HERE, "results")
TMP = os.path.join(RESULTS, "tmp")
TESTPMD = "/usr/bin/dpdk-testpmd"
CASES = ("testpmd", "fwd", "nat", "fw", "fw_1000", "lb", "mon", "fw+nat", "ovs_ct_nat")
EXT_IP = "198.18.0.0/20"  # 4096 addresses x 1008 blocks of 64 ports
LB_VIP = "203.0.113.10:5001"  # the benchmark traffic's destination
LB_BACKENDS = ["10.2.0.%d" % i for i in range(1, 9)]
FW_RULES_SMALL = 2     # a deny and the allow the traffic matches: scanned in order
FW_RULES_LARGE = 1000  # 999 that never match, then the allow: rte_acl
OVS_MAX_FLOWS = 100000  # ovs_ct_nat runs at flow counts up to this (the default run: 1, 10k)
MAX_HOSTS = 1024
DST_IP = (203 << 24) | (0 << 16) | (113 << 8) | 10
DST_PORT = 5001
FRAME = 60  # bytes captured: 64 on the wire with the FCS
TARGETS = {10000: 0.30, 1000000: 0.20}  # nat / testpmd io, from the issue
# (case, flows, minimum ratio_testpmd) for the other NFs, from the issue: each NF
# at 10k flows >= 0.30 of testpmd io, fw with 1000 rules >= 0.20
NF_TARGETS = [("fw", 10000, 0.30), ("lb", 10000, 0.30), ("mon", 10000, 0.30),
              ("fw_1000", 10000, 0.20)]
OVS_TARGET = (10000, 5.0)  # mbx fw+nat >= 5x OVS conntrack + SNAT at 10k flows
# Memory per mbuf with --no-huge: 4 KB, not the ~2.4 KB an mbuf is (128 B
# header + 64 B mbxd metadata + 2176 B buffer + pool header): without
# hugepages rte_mempool does not let an object of an IOVA-contiguous pool
# cross a 4 KB page, so each mbuf takes a page of its own.
MBUF_KB = 4.0
FLOW_KB = 1.2  # per flow-table entry: entry, rte_hash with 2x keys, NAT host table
NAT_POOL_MB = 100  # the /20 pool: 4096 x 1008 blocks of 24 B


# ---------------------------------------------------------------- traffic

def _fold(s):
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return s


def flow_of(i, n):
    """(inside host address, UDP source port) of flow i of n."""
    hosts = min(n, MAX_HOSTS)
    return (10 << 24) + 1 + i % hosts, 1024 + i // hosts


def write_pcap(path, n):
    """n 60-byte UDP/IPv4 frames, one per flow, round-robin over hosts."""
    payload = b"mbx-bench-payload!"  # 18 bytes: 14 + 20 + 8 + 18 = 60
    assert 14 + 20 + 8 + len(payload) == FRAME
    ip_len, udp_len = 20 + 8 + len(payload), 8 + len(payload)
    if n // min(n, MAX_HOSTS) + 1024 > 65535:
        raise ValueError("too many flows per host for %d flows" % n)
    # sums of the header words that do not change: IPv4 (checksum, id and
    # source 0) and UDP pseudo-header + header + payload (checksum, source and
    # sport 0); per packet add the rest and fold
    ip_const = 0x4500 + ip_len + 0x4000 + 0x4011 + (DST_IP >> 16) + (DST_IP & 0xFFFF)
    pay_sum = sum(struct.unpack("!9H", payload))
    udp_const = ((DST_IP >> 16) + (DST_IP & 0xFFFF) + 17 + udp_len +
                 DST_PORT + udp_len + pay_sum)
    rec = struct.Struct("<IIII")
    eth = bytes.fromhex("020000000002" "020000000001" "0800")
    pkt = struct.Struct("!14s BBHHHBBH II HHHH 18s")
    step = rec.size + FRAME
    buf = bytearray(24 + n * step)
    struct.pack_into("<IHHiIII", buf, 0, 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    off = 24
    for i in range(n):
        src, sport = flow_of(i, n)
        sh, sl = src >> 16, src & 0xFFFF
        ipc = 0xFFFF - _fold(ip_const + (i & 0xFFFF) + sh + sl)
        uc = 0xFFFF - _fold(udp_const + sh + sl + sport)
        if uc == 0:
            uc = 0xFFFF
        rec.pack_into(buf, off, i // 1000000, i % 1000000, FRAME, FRAME)
        pkt.pack_into(buf, off + 16, eth, 0x45, 0, ip_len, i & 0xFFFF, 0x4000, 64, 17,
                      ipc, src, DST_IP, sport, DST_PORT, udp_len, uc, payload)
        off += step
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(buf)
    os.replace(tmp, path)


# ---------------------------------------------------------------- processes

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _child_setup():
    # the process gets SIGTERM if this script dies without cleaning up
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    os.setpgrp()


class BenchProc(mbxrun.Proc):
    """mbxrun.Proc with an open stdin (testpmd exits when its stdin closes)
    and a parent-death signal, so nothing outlives the benchmark."""

    def __init__(self, argv, prefix, log_path):
        self.prefix = prefix
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.log.write("# " + " ".join(argv) + "\n")
        self.log.flush()
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.PIPE, preexec_fn=_child_setup)
        self.tel = None

    def stop(self, timeout=30.0):
        rc = super().stop(timeout)
        try:
            self.p.stdin.close()
        except OSError:
            pass
        return rc

    def mem_status(self):
        """{VmHWM, VmRSS} in MB from /proc, or {} once it has gone."""
        out = {}
        try:
            with open("/proc/%d/status" % self.p.pid) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("VmHWM", "VmRSS"):
                        out[k] = int(v.split()[0]) / 1024.0
        except OSError:
            pass
        return out


LIVE = []


def cleanup_all():
    while LIVE:
        p = LIVE.pop()
        try:
            p.stop(timeout=15)
        except Exception as e:  # keep going: every process must go
            print("cleanup: %s" % e, file=sys.stderr)


def _on_signal(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def remove_stale_runtime_dirs():
    """Runtime directories of this benchmark's processes whose benchmark was
    killed (bdp_<case>_<pid of the script>_<n>), and network namespaces of its
    Open vSwitch (mbxovs<pid>): remove them."""
    try:
        names = os.listdir(mbxrun.RUNTIME)
    except OSError:
        names = []
    for d in names:
        parts = d.split("_")
        if len(parts) == 4 and parts[0] == "bdp" and parts[2].isdigit() and \
                not os.path.exists("/proc/" + parts[2]):
            shutil.rmtree(os.path.join(mbxrun.RUNTIME, d), ignore_errors=True)
    tmp = tempfile.gettempdir()
    for d in os.listdir(tmp):    # OVS work directories: ovs_bdp_<case>_<pid>_<n>_<random>
        parts = d.split("_")
        if d.startswith("ovs_bdp_") and len(parts) >= 4 and parts[3].isdigit() and \
                not os.path.exists("/proc/" + parts[3]):
            shutil.rmtree(os.path.join(tmp, d), ignore_errors=True)
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith("mbxovs") and name[6:].isdigit() and \
                not os.path.exists("/proc/" + name[6:]):
            subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)


def write_fw_rules(path, n):
    """A rules file of n rules: n - 1 that the benchmark's traffic (UDP from
    10.0.0.1-10.0.4.0 to 203.0.113.10:5001) never matches, of the shapes a real rule set
    has (hosts, networks, protocols, port ranges, both verdicts), then the allow
    rule it matches. From 8 rules on fw classifies with rte_acl."""
    lines = ["# bench/dataplane.py: %d rules; only the last matches the traffic" % n]
    if n == 2:
        lines.append("deny  src=10.66.0.0/16")
    else:
        for i in range(n - 1):
            a, b = i // 250 % 250, i % 250
            lines.append([
                "deny  src=172.%d.%d.0/24" % (16 + a, b),
                "deny  dst=198.51.%d.%d,proto=udp" % (a, b),
                "deny  src=10.0.0.0/8,proto=tcp,dport=%d" % (1 + i),
                "allow src=10.%d.%d.0/24,proto=udp,dport=%d-%d" % (100 + a, b, 6000 + i, 6010 + i),
                "allow dst=203.0.113.%d,proto=tcp,dport=80-443" % (100 + b % 150),
            ][i % 5])
    lines.append("allow src=10.0.0.0/8,proto=udp,dport=%d" % DST_PORT)
    assert len(lines) == n + 1
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def case_nfs(case):
    """The --nf arguments of an mbxd case (rules files are written to TMP)."""
    def rules(n):
        return write_fw_rules(os.path.join(TMP, "fw-rules-%d.txt" % n), n)
    nat = "nat,ext_ip=" + EXT_IP
    return {
        "fwd": lambda: ["fwd"],
        "nat": lambda: [nat],
        "fw": lambda: ["fw,rules=" + rules(FW_RULES_SMALL)],
        "fw_1000": lambda: ["fw,rules=" + rules(FW_RULES_LARGE)],
        "lb": lambda: ["lb,vip=%s,backends=[%s]" % (LB_VIP, ",".join(LB_BACKENDS))],
        "mon": lambda: ["mon"],
        "fw+nat": lambda: ["fw,rules=" + rules(FW_RULES_SMALL), nat],
    }[case]()


def case_info(case):
    """Extra keys of a case's rows: what ran, in words."""
    info = {
        "fw": {"rules": FW_RULES_SMALL, "nf": "fw (rules scanned in order)"},
        "fw_1000": {"rules": FW_RULES_LARGE, "nf": "fw (rules classified by rte_acl)"},
        "lb": {"nf": "lb, vip %s, %d backends, Maglev table 65537" % (LB_VIP,
                                                                  len(LB_BACKENDS))},
        "mon": {"nf": "mon, no flows_file"},
        "fw+nat": {"rules": FW_RULES_SMALL, "nf": "fw then nat, ext_ip %s" % EXT_IP},
        "ovs_ct_nat": {"nf": "Open vSwitch 3.1 DPDK netdev datapath: ct(zone=1,nat), "
                             "commit with nat(src=%s)" % ovs.SNAT_RANGE},
    }
    return dict(info.get(case, {}))


def stateful(case):
    return case not in ("testpmd", "fwd", "ovs_ct_nat")


def mem_mb(npkts, flows, nat):
    """(--mbufs / --total-num-mbufs, -m in MB) for a pcap of npkts packets."""
    mbufs = npkts + 32768
    mem = 384 + mbufs * MBUF_KB / 1024 + flows * FLOW_KB / 1024 + (NAT_POOL_MB if nat else 0)
    return mbufs, int(mem * 1.05)


def argv_for(case, pcap, npkts, nflows, prefix, args):
    nfs = [] if case == "testpmd" else case_nfs(case)
    nat = any(nf.startswith("nat") for nf in nfs)
    mbufs, mem = mem_mb(npkts, nflows if stateful(case) else 0, nat)
    eal = mbxrun.eal_args(prefix, lcores="0-1", mem=mem, vdevs=[
        "net_pcap0,rx_pcap=%s,infinite_rx=1" % pcap, "net_null0,no-rx=1"])
    if case == "testpmd":
        return [args.testpmd] + eal + [
            "--", "--forward-mode=io", "--nb-cores=1", "--total-num-mbufs=%d" % mbufs,
            "--auto-start"]
    table = max(1024, nflows + nflows // 8)
    return [args.mbxd] + eal + ["--"] + sum((["--nf", nf] for nf in nfs), []) + [
        "--flows", str(table), "--mbufs", str(mbufs), "--idle-sleep-us", "0"]


def opackets(proc):
    st = proc.query("/ethdev/stats", 1)
    return st["opackets"], st["ipackets"]


def in_packets(proc):
    return proc.query("/ethdev/stats", 0)["ipackets"]


def tail(path, n=25):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def measure(case, nflows, pcap, args, log_path, sysmem):
    """Run one case on one pcap; return a result dict (mpps or error)."""
    # the prefix keeps 4 '_'-separated parts (see remove_stale_runtime_dirs)
    prefix = mbxrun.unique_prefix("bdp_" + "".join(ch for ch in case if ch.isalnum()))
    t_start = time.monotonic()
    if case == "ovs_ct_nat":
        res = {"case": case, "flows": nflows, "log": log_path,
               "argv": ["ovs-vswitchd-dpdk"] + ovs.FLOWS}
        try:
            proc = ovs.OvsCtNat(pcap, prefix, log_path)
        except Exception as e:  # noqa: BLE001 - a row with the error, the run goes on
            res.update(error="OVS did not start: %s: %s" % (type(e).__name__, e), mpps=None,
                       peak_rss_mb=None, exit=None, log_tail=tail(log_path))
            return res
    else:
        argv = argv_for(case, pcap, nflows, nflows, prefix, args)
        res = {"case": case, "flows": nflows, "log": log_path, "argv": argv}
        proc = BenchProc(argv, prefix, log_path)
    LIVE.append(proc)
    try:
        # start-up: the pcap PMD loads the whole pcap before telemetry answers
        proc.telemetry(timeout=60 + nflows / 20000)
        mbxrun.wait_until(lambda: opackets(proc)[0] > 0,
                          timeout=60 + nflows / 20000, period=0.1,
                          what="%s to forward packets" % case)
        res["startup_s"] = round(time.monotonic() - t_start, 2)
        if stateful(case):
            # every flow in the table (for nat: mapped), and nothing new any more
            last = [None]

            def settled():
                sysmem.sample()
                t = proc.query("/mbx/table")
                made = proc.query("/mbx/stats")["flows_created"]
                ok = t["flows"] == nflows and made == last[0]
                last[0] = made
                return ok
            mbxrun.wait_until(settled, timeout=60 + nflows / 5000, period=0.25,
                              what="%s to hold all %d flows" % (case, nflows))
            res["warmup_flows_s"] = round(time.monotonic() - t_start - res["startup_s"], 2)
        elif case == "ovs_ct_nat":
            last = [None]

            def tracked():
                sysmem.sample()
                n = proc.conns()
                ok = n is not None and n >= nflows and n == last[0]
                last[0] = n
                return ok
            mbxrun.wait_until(tracked, timeout=60 + nflows / 2000, period=0.5,
                              what="OVS conntrack to hold all %d connections" % nflows)
            res["warmup_flows_s"] = round(time.monotonic() - t_start - res["startup_s"], 2)
            res["ovs_ports"] = proc.ports()
            if res["ovs_ports"] != {0: "net_pcap0", 1: "net_null1"}:
                raise RuntimeError("OVS's DPDK ports are %s, not p0 = 0, p1 = 1" %
                                   res["ovs_ports"])
        time.sleep(args.warmup)
        sysmem.sample()
        # the window: opackets on port 1 at t0 and t1, plus per-second samples
        samples = []

        def read():
            a = time.monotonic()
            o, _ = opackets(proc)
            i0 = in_packets(proc)
            b = time.monotonic()
            return (a + b) / 2, o, i0
        t0, o0, i0 = read()
        tp, op = t0, o0
        end = t0 + args.seconds
        while True:
            time.sleep(max(0.0, min(1.0, end - time.monotonic())))
            t, o, i = read()
            sysmem.sample()
            if t - tp > 0.05:
                samples.append(round((o - op) / (t - tp) / 1e6, 3))
            tp, op = t, o
            if t >= end - 0.01:
                break
        t1, o1, i1 = t, o, i
        res["mpps"] = (o1 - o0) / (t1 - t0) / 1e6
        res["seconds"] = round(t1 - t0, 3)
        res["samples"] = samples
        res["loss"] = round(1.0 - (o1 - o0) / (i1 - i0), 4) + 0.0 if i1 > i0 else None
        if stateful(case):
            t = proc.query("/mbx/table")
            names = proc.query("/mbx/nf") or []
            res["nf_counters"] = {nf: proc.query("/mbx/nf", nf) for nf in names}
            if "nat" in res["nf_counters"]:
                res["nat"] = {"flows": t["flows"], "full_drops": t["full_drops"],
                              **res["nf_counters"]["nat"]}
            if t["flows"] != nflows:
                res["warning"] = "table holds %d flows, expected %d" % (t["flows"], nflows)
        if case == "ovs_ct_nat":
            res["ovs_conns"] = proc.conns()
            res["ovs_pmd_cycles_per_packet"] = proc.diagnostics()
            if res["ovs_conns"] != nflows:
                res["warning"] = "OVS tracks %s connections, expected %d" % (res["ovs_conns"],
                                                                            nflows)
        elif case != "testpmd":
            res["mbx_stats"] = proc.query("/mbx/stats")
            if res["mbx_stats"].get("nf_dropped"):
                res["warning"] = (res.get("warning", "") + " nf_dropped %d" %
                                  res["mbx_stats"]["nf_dropped"]).strip()
        mem = proc.mem_status()
        res["peak_rss_mb"] = round(mem.get("VmHWM", 0))
        heap = proc.query("/eal/heap_info", 0) or {}
        if "Alloc_size" in heap:
            res["heap_mb"] = {"size": round(heap["Heap_size"] / 2**20),
                              "alloc": round(heap["Alloc_size"] / 2**20)}
    except Exception as e:
        rc = proc.p.poll()
        if rc is not None:
            res["error"] = "exited with status %s (%s: %s)" % (rc, type(e).__name__, e)
        else:
            res["error"] = "%s: %s" % (type(e).__name__, e)
        res["mpps"] = None
        mem = proc.mem_status()
        res["peak_rss_mb"] = round(mem.get("VmHWM", 0)) if mem else None
    finally:
        if proc in LIVE:
            LIVE.remove(proc)
        rc = proc.stop()
        res["exit"] = rc
    if rc not in (0, -signal.SIGTERM) and "error" not in res:
        # measured fine but did not exit cleanly: keep the number, say so
        res["warning"] = (res.get("warning", "") + " exit status %s" % rc).strip()
    if "error" in res:
        res["log_tail"] = tail(log_path)
    return res


class SysMem:
    """Lowest MemAvailable seen: the machine's peak use during the run."""

    def __init__(self):
        self.base = self._avail()
        self.low = self.base

    @staticmethod
    def _avail():
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024.0
        return 0.0

    def sample(self):
        self.low = min(self.low, self._avail())

    def peak_used_mb(self):
        return self.base - self.low


# ---------------------------------------------------------------- results

def fmt_flows(n):
    if n >= 1000000 and n % 1000000 == 0:
        return "%dM" % (n // 1000000)
    if n >= 1000 and n % 1000 == 0:
        return "%dk" % (n // 1000)
    return str(n)


def ratio(a, b):
    if a is None or not b:
        return None
    return round(a / b, 3)


def make_rows(results, run_id):
    """One row per (case, flows): the median over repeats, and ratios."""
    by = {}
    for r in results:
        by.setdefault((r["case"], r["flows"]), []).append(r)
    med = {}
    for k, rs in by.items():
        v = [r["mpps"] for r in rs if r.get("mpps") is not None]
        med[k] = statistics.median(v) if v else None
    rows = []
    for (case, flows), rs in sorted(by.items(), key=lambda kv: (CASES.index(kv[0][0]), kv[0][1])):
        m = med[(case, flows)]
        ok = [r for r in rs if r.get("mpps") is not None]
        row = {
            "case": case,
            "flows": flows,
            "mpps": round(m, 3) if m is not None else None,
            "ratio_fwd": ratio(m, med.get(("fwd", flows))),
            "ratio_testpmd": ratio(m, med.get(("testpmd", flows))),
            "seconds": ok[0]["seconds"] if ok else None,
            "samples": [s for r in ok for s in r["samples"]],
            "loss": max((r["loss"] for r in ok if r.get("loss") is not None), default=None),
            "peak_rss_mb": max((r["peak_rss_mb"] or 0 for r in rs), default=None),
            "run": run_id,
        }
        row.update(case_info(case))
        if case in ("fw+nat", "ovs_ct_nat") and ratio(med.get(("fw+nat", flows)),
                                                     med.get(("ovs_ct_nat", flows))):
            # mbx's chain against Open vSwitch's conntrack + SNAT, same pcap, same sink
            row["ratio_fw_nat_to_ovs"] = ratio(med[("fw+nat", flows)],
                                               med[("ovs_ct_nat", flows)])
        cyc = [r["ovs_pmd_cycles_per_packet"] for r in ok if r.get("ovs_pmd_cycles_per_packet")]
        if cyc:
            # OVS's own count, since its start: TSC cycles of its PMD per packet
            row["ovs_pmd_cycles_per_packet"] = statistics.median(cyc)
        warns = sorted({r["warning"] for r in rs if r.get("warning")})
        if warns:
            row["warning"] = "; ".join(warns)
        if len(rs) > 1:
            row["repeats"] = [round(r["mpps"], 3) if r.get("mpps") is not None else None
                              for r in rs]
        errs = [r["error"] for r in rs if "error" in r]
        if errs:
            row["error"] = "; ".join(errs)
        rows.append(row)
    return rows


def merge_json(path, rows, key=lambda r: r.get("case"), order=None):
    """Replace the rows of the cases in @rows (rows with the same key(row)), keep every
    other case's rows; sort by order(row) when given. Shared by the benchmarks."""
    old = []
    if os.path.exists(path):
        try:
            with open(path) as f:
                old = json.load(f)
            if not isinstance(old, list):
                raise ValueError("not a list")
        except (OSError, ValueError) as e:
            bad = path + ".bad"
            os.replace(path, bad)
            print("warning: %s unreadable (%s), moved to %s" % (path, e, bad))
            old = []
    mine = {key(r) for r in rows}
    merged = [r for r in old if key(r) not in mine] + rows
    if order is not None:
        merged.sort(key=order)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(merged, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    return merged


def plot(rows, png, workdir):
    """Clustered bars: flow counts on x, one bar per case, labelled with Mpps
    and, under it, the ratio to testpmd io of the same flow count."""
    rows = [r for r in rows if r.get("case") and r.get("flows") is not None]
    cases = [c for c in CASES if any(r["case"] == c for r in rows)]
    cases += sorted({r["case"] for r in rows} - set(cases))
    flows = sorted({r["flows"] for r in rows})
    by = {(r["case"], r["flows"]): r for r in rows}

    def col(c, n, key):
        v = by.get((c, n), {}).get(key)
        return "%.3f" % v if v is not None else "NaN"
    dat = os.path.join(workdir, "dataplane.dat")
    with open(dat, "w") as f:
        f.write("# flows, Mpps of %s, then their ratio_testpmd\n" % " ".join(cases))
        for n in flows:
            f.write(" ".join([fmt_flows(n)] + [col(c, n, "mpps") for c in cases] +
                             [col(c, n, "ratio_testpmd") for c in cases]) + "\n")
    nc = len(cases)
    gp = [
        'set terminal pngcairo size %d,560 font "DejaVu Sans,11" noenhanced' % (
            1000 if nc <= 3 else 600 + 110 * nc),
        'set output "%s"' % png,
        'set title "dataplane: one core, 64 B UDP/IPv4, net_pcap (infinite_rx) -> net_null, '
        '--no-huge\\n(labels: Mpps and ratio to testpmd io of the same flow count)"',
        'set xrange [-0.5:%f]' % (len(flows) - 0.5),
        'set ylabel "Mpps"', 'set xlabel "flows"',
        'set style data histograms',
        'set style histogram clustered gap 1',
        'set style fill solid 0.85 border -1',
        'set key top right', 'set grid ytics', 'set yrange [0:*]',
        'set offsets 0,0,graph 0.12,0',
    ]
    for i, n in enumerate(flows):
        for k, c in enumerate(cases):
            r = by.get((c, n), {})
            if r.get("mpps") is None:
                continue
            # bar k of cluster i is centred at i + (k - (nc - 1) / 2) / (nc + 1)
            text = "%.2f" % r["mpps"]
            if c != "testpmd" and r.get("ratio_testpmd") is not None:
                text += "\\n%.2f" % r["ratio_testpmd"]
            gp.append('set label "%s" at %.4f,%.4f center offset 0,%s font ",%d"' % (
                text, i + (k - (nc - 1) / 2.0) / (nc + 1), r["mpps"],
                "1.4" if "\\n" in text else "0.8", 8 if nc <= 5 else 7))
    # gnuplot's first eight colours, then grey (ovs_ct_nat) and more
    colours = ["#9400d3", "#009e73", "#56b4e9", "#e69f00", "#f0e442", "#0072b2", "#e51e10",
               "#000000", "#909090", "#c08080", "#80c080"]
    plots = ['"%s" using %d:xtic(1) title "%s" lc rgb "%s"' % (
        dat, k + 2, c, colours[k % len(colours)]) for k, c in enumerate(cases)]
    gp.append("plot " + ", \\\n  ".join(plots))
    gpf = os.path.join(workdir, "dataplane.gp")
    with open(gpf, "w") as f:
        f.write("\n".join(gp) + "\n")
    r = subprocess.run(["gnuplot", gpf], capture_output=True, text=True)
    if r.returncode != 0:
        print("warning: gnuplot failed: %s" % r.stderr.strip())
        return False
    return True


def print_table(rows):
    hdr = "%-10s %9s %9s %10s %14s %8s %8s %s" % (
        "case", "flows", "Mpps", "ratio_fwd", "ratio_testpmd", "loss", "rss_MB", "note")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        def f(v, p):
            return ("%%.%df" % p) % v if v is not None else "-"
        note = []
        if r.get("rules"):
            note.append("%d rules" % r["rules"])
        if r.get("ratio_fw_nat_to_ovs") is not None:
            note.append("fw+nat/ovs %.2fx" % r["ratio_fw_nat_to_ovs"])
        if r.get("repeats"):
            note.append("runs %s" % "/".join(f(x, 2) for x in r["repeats"]))
        note += [x for x in (r.get("warning"), r.get("error")) if x]
        print("%-10s %9s %9s %10s %14s %8s %8s %s" % (
            r["case"], fmt_flows(r["flows"]), f(r["mpps"], 3), f(r["ratio_fwd"], 3),
            f(r["ratio_testpmd"], 3), f(r["loss"], 4) if r.get("loss") is not None else "-",
            r.get("peak_rss_mb") or "-", "; ".join(note)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flows", default=None,
                    help="comma-separated flow counts (default 1,10000,1000000)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="measurement window per case (default 5)")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds between a stable state and the window (default 1)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 1 and 1000 flows, 1 s windows, output in results/tmp/quick")
    ap.add_argument("--cases", default=",".join(CASES),
                    help="subset of %s (default all)" % ",".join(CASES))
    ap.add_argument("--repeat", type=int, default=None,
                    help="interleaved runs per case and flow count; the median is reported "
                         "(default 3, --quick 1)")
    ap.add_argument("--out", default=None, help="directory for dataplane.json and .png")
    ap.add_argument("--mbxd", default=mbxrun.MBXD)
    ap.add_argument("--testpmd", default=TESTPMD)
    ap.add_argument("--keep-tmp", action="store_true", help="keep the generated pcaps")
    args = ap.parse_args()

    if args.flows:
        flow_counts = [int(x) for x in args.flows.split(",") if x]
    else:
        flow_counts = [1, 1000] if args.quick else [1, 10000, 1000000]
    if args.seconds is None:
        args.seconds = 1.0 if args.quick else 5.0
    if args.warmup is None:
        args.warmup = 0.3 if args.quick else 1.0
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    cases = [c for c in args.cases.split(",") if c]
    for c in cases:
        if c not in CASES:
            ap.error("unknown case %s (known: %s)" % (c, ",".join(CASES)))
    cases = [c for c in CASES if c in cases]
    out = args.out or (os.path.join(TMP, "quick") if args.quick else RESULTS)
    if any(n < 1 or n > 4000000 for n in flow_counts):
        ap.error("flow counts must be in 1..4000000")
    for exe in ([args.mbxd] if set(cases) - {"testpmd", "ovs_ct_nat"} else []) + (
            [args.testpmd] if "testpmd" in cases else []):
        if not os.access(exe, os.X_OK):
            sys.exit("%s is missing (build it first)" % exe)
    if "ovs_ct_nat" in cases and ovs.missing():
        sys.exit("ovs_ct_nat needs Debian's openvswitch-switch-dpdk (missing: %s); `make bench` "
                 "installs it, or leave the case out with --cases" % " ".join(ovs.missing()))
    if os.geteuid() != 0:
        print("warning: not root; DPDK runtime directories may not be writable")

    os.makedirs(TMP, exist_ok=True)
    os.makedirs(out, exist_ok=True)
    signal.signal(signal.SIGTERM, _on_signal)
    remove_stale_runtime_dirs()
    run_id = datetime.datetime.now().isoformat(timespec="seconds")
    t_run = time.monotonic()
    sysmem = SysMem()
    logdir = os.path.join(TMP, "logs-" + run_id.replace(":", ""))
    os.makedirs(logdir, exist_ok=True)
    print("dataplane benchmark %s: flows %s, cases %s, %.1f s windows, repeat %d; "
          "load %s; logs in %s" % (run_id, ",".join(map(str, flow_counts)), ",".join(cases),
                                   args.seconds, args.repeat,
                                   " ".join(open("/proc/loadavg").read().split()[:3]),
                                   os.path.relpath(logdir, ROOT)))
    results = []
    pcaps = []
    try:
        for n in flow_counts:
            pcap = os.path.join(TMP, "udp64-%d.pcap" % n)
            t = time.monotonic()
            write_pcap(pcap, n)
            pcaps.append(pcap)
            print("flows %s: pcap %s (%.1f MB) in %.1f s" % (
                fmt_flows(n), os.path.relpath(pcap, ROOT), os.path.getsize(pcap) / 1e6,
                time.monotonic() - t), flush=True)
            for rep in range(args.repeat):
                for case in cases:
                    if case == "ovs_ct_nat" and n > OVS_MAX_FLOWS:
                        continue    # 1M: a 4 GB pool in OVS and minutes of warm-up; not run
                    log = os.path.join(logdir, "%s-%d-%d.log" % (case, n, rep))
                    r = measure(case, n, pcap, args, log, sysmem)
                    results.append(r)
                    extra = ""
                    if r.get("nat"):
                        extra = "; nat: flows=%d created=%s exhausted=%s full_drops=%s" % (
                            r["nat"]["flows"], r["nat"].get("mappings_created"),
                            r["nat"].get("pool_exhausted_drops"), r["nat"].get("full_drops"))
                    if r.get("error"):
                        print("  %-10s FAILED: %s\n    command: %s\n    log %s:\n%s" % (
                            case, r["error"], " ".join(r["argv"]), r["log"],
                            "".join("      " + ln for ln in r["log_tail"].splitlines(True))),
                            flush=True)
                    else:
                        heap = r.get("heap_mb", {})
                        print("  %-10s %7.3f Mpps  (start %.1f s, rss %s MB, heap %s/%s MB, "
                              "loss %s%s%s)" % (
                            case, r["mpps"], r["startup_s"], r["peak_rss_mb"],
                            heap.get("alloc"), heap.get("size"), r["loss"], extra,
                            ", " + r["warning"] if r.get("warning") else ""), flush=True)
    finally:
        cleanup_all()
        if not args.keep_tmp:
            for p in pcaps:
                try:
                    os.remove(p)
                except OSError:
                    pass

    rows = make_rows(results, run_id)
    json_path = os.path.join(out, "dataplane.json")
    merged = merge_json(json_path, rows)
    png = os.path.join(out, "dataplane.png")
    plotted = plot(merged, png, logdir)
    print()
    print_table(rows)
    print()
    for n, target in sorted(TARGETS.items()):
        r = next((x for x in rows if x["case"] == "nat" and x["flows"] == n), None)
        if r is None:
            continue
        v = r["ratio_testpmd"]
        print("target: nat at %s flows >= %.2f of testpmd io: %s (%s)" % (
            fmt_flows(n), target, "%.3f" % v if v is not None else "n/a",
            "met" if v is not None and v >= target else "NOT met"))
    for case, n, target in NF_TARGETS:
        r = next((x for x in rows if x["case"] == case and x["flows"] == n), None)
        if r is None:
            continue
        v = r["ratio_testpmd"]
        print("target: %s%s at %s flows >= %.2f of testpmd io: %s (%s)" % (
            case, " (%d rules)" % r["rules"] if r.get("rules") else "", fmt_flows(n), target,
            "%.3f" % v if v is not None else "n/a",
            "met" if v is not None and v >= target else "NOT met"))
    n, target = OVS_TARGET
    r = next((x for x in rows if x["case"] == "fw+nat" and x["flows"] == n), None)
    if r is not None and any(x["case"] == "ovs_ct_nat" for x in rows):
        v = r.get("ratio_fw_nat_to_ovs")
        print("target: fw+nat at %s flows >= %.1fx ovs_ct_nat (OVS DPDK conntrack + SNAT): %s "
              "(%s)" % (fmt_flows(n), target, "%.2fx" % v if v is not None else "n/a",
                        "met" if v is not None and v >= target else "NOT met"))
    print("wrote %s%s; total %.0f s; peak memory: %s MB process RSS, %.0f MB machine-wide" % (
        os.path.relpath(json_path, ROOT),
        " and " + os.path.relpath(png, ROOT) if plotted else "",
        time.monotonic() - t_run,
        max((r.get("peak_rss_mb") or 0 for r in results), default=0), sysmem.peak_used_mb()))
    return 1 if any(r.get("error") for r in rows) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        print("dataplane.py: interrupted (%s); processes stopped" % (e or "SIGINT"),
              file=sys.stderr)
        sys.exit(130)
