#!/usr/bin/python3
"""Golden test of NF chains: fw then nat, mon then lb, packets and state checked field by field.

Two chains, each in a real mbxd (1 or 2 workers) whose two ports are net_pcap
on live interfaces (``net_pcap0,iface=mi``, ``net_pcap1,iface=mo``): the mbxd
ends of two veth pairs in a network namespace of the test's own
(tests/lib/wire.py). This script plays the inside hosts on one wire and the
outside hosts on the other, in rounds: one side sends (paced), the script
waits until mbxd has forwarded or dropped every packet of the round
(telemetry), then the other side answers what came out. Every packet carries
a unique IPv4 identification (IPv6 flow label), which neither NF changes, so
each frame that comes out is matched to the one that went in.

Chain A: ``--nf fw,rules=RULES --nf nat,ext_ip=198.51.100.1,ports=20000-20999``

- From the inside fw runs first, on the inside addresses: the first rule
  denies the NAT's own address, so a firewall that ran after the NAT would
  deny everything. Some 60 conversations from 7 hosts (TCP handshake, data,
  FIN/FIN/ACK, RST then data, an out-of-window segment; UDP answered or
  not; ICMP echo; IPv6), each allowed or denied as a Python reading of the
  same rules says. An allowed IPv4 packet leaves with the source set to
  ext_ip and the port (ICMP identifier) to its flow's external port, one per
  flow, checksums as scapy computes them afresh; a denied one does not leave
  and nat never hears of it (no mapping, no nat counter moves).
- From the outside nat runs first: replies come back through both (nat
  translates, fw judges by the connection's state on inside addresses); an
  out-of-window reply is translated by nat and then dropped by fw; a SYN to
  ext_ip:22, which a rule would allow, dies in nat (no mapping) and fw never
  counts it; GRE and ICMP timestamp from the inside are admitted by fw,
  refused by nat, and fw ends those connections.
- State, through mbxctl: ``get-state --nf fw`` returns fw chunks only, one
  per connection fw admitted and holds, with its TCP state (time_wait,
  established, closed, ...) and both directions' sequence ends, the flow's
  inside key and its translated reply key; ``--nf nat`` nat chunks only: a
  mapping per IPv4 flow with the external port the packets showed; the
  multi-flow (per host connection counts; port blocks holding exactly the
  ports used) and all-flows state (the rule set as written; the pool with
  its free blocks); ``--nf mon`` and ``--nf lb`` are refused (ENOENT); no
  ``--nf`` returns exactly the union.

Chain B: ``--nf mon --nf lb,vip=198.18.0.10:80,backends=[...],table=4093``

- Clients' connections to the VIP leave with the destination set to the
  backend that Maglev (computed here, tests/golden/lb_golden.py) names for
  the connection; the backends' answers come back from VIP:80; traffic not
  for the VIP (another address or port, ICMP, IPv6, an outside client to an
  inside server) passes unchanged.
- mon counts what lb balances: mon's per-flow packets, bytes and TCP flags
  per direction are the plan's, keyed client -> VIP (mon sees the packet
  before lb rewrites it on the way out, after lb on the way back); for each
  backend, lb's multi-flow counts (connections, active, packets, frame bytes)
  equal the sums of mon's per-flow counts over the connections lb's per-flow
  state gives that backend; mon's hosts (services, OS hints, connection
  counts) and totals are exact; lb's all-flows state is the backend set and
  the Maglev table computed here.
- Then a backend is removed (PutAllflows through the Python client): a
  client's packet of one of its connections is counted by mon and then
  dropped by lb; the backend's packet is dropped by lb before mon sees it.

Both chains: every counter of both NFs, the workers' drop counters and the
port counters equal the plan, in telemetry and in mbxd's final printout;
mbxd exits 0 on SIGTERM. What was sent and received is written to the work
directory as pcaps (kept with --keep or on failure).

Usage: /usr/bin/python3 tests/golden/chains_golden.py [--workers N] [--mbxd PATH]
           [--chain fw-nat|mon-lb|both] [--keep] [--break WHAT]
Needs root, iproute2, Debian's python3-scapy and python3-protobuf, and a
build (MBX_BUILD, for mbxctl and the Python client). Exits 0 on success, 1
with the mismatches, 77 (skipped) when not root. --break WHAT runs mbxd
misconfigured as a given bug would behave (see BREAKS): the run must fail.
"""
import argparse
import base64
import ipaddress
import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import mbxrun  # noqa: E402
import wire  # noqa: E402

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
try:
    from scapy.compat import raw
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.packet import NoPayload, Raw
    from scapy.utils import wrpcap
    import lb_golden  # noqa: E402  (Maglev and DPDK's jhash, written again in Python)
    sys.path.insert(0, os.path.join(mbxrun.BUILD, "controller-shim", "python"))
    import mbx  # noqa: E402
    from mbx.v1 import common_pb2, lb_pb2  # noqa: E402
except ImportError as e:
    sys.exit("chains_golden: needs Debian's python3-scapy and python3-protobuf and a build "
             "(MBX_BUILD): run it with /usr/bin/python3 (%s)" % e)

MBXCTL = os.path.join(mbxrun.BUILD, "controller-shim", "mbxctl")
MAC_IN, MAC_OUT = "02:00:00:00:01:01", "02:00:00:00:02:01"
TIMEOUTS = ["tcp_syn_sent", "tcp_syn_recv", "tcp_established", "tcp_fin_wait", "tcp_time_wait",
            "tcp_closed", "udp_first", "udp", "icmp", "other"]
SETTLE = 30.0
PACE = 32           # frames sent before waiting for mbxd to have received them

BREAKS = {
    "order-fw-nat": "chain A runs nat before fw (fw sees translated addresses)",
    "order-mon-lb": "chain B runs lb before mon (mon sees backend addresses)",
    "rules": "mbxd's fw is given the rules without 'allow ... udp dport=53'",
    "weights": "mbxd's lb is given other backend weights than Maglev is computed for",
    "frame": "one observed translated frame has a byte changed",
}

# ---------------------------------------------------------------------------
# Chain A's configuration, and the rules read again in Python

EXT_IP = "198.51.100.1"
PORT_LO, PORT_HI = 20000, 20999
BLOCK = 64
RULES = [
    ("deny", "src=198.51.100.0/24", "the NAT's address: matches only if fw ran after nat"),
    ("deny", "dst=203.0.113.66", "a blocked server"),
    ("allow", "src=10.1.0.0/16,proto=tcp,dport=80-443", ""),
    ("allow", "src=10.1.0.0/16,proto=udp,dport=53", ""),
    ("allow", "src=10.1.0.0/16,proto=icmp", ""),
    ("allow", "src=10.1.0.0/16,proto=gre", "fw admits GRE, nat cannot translate it"),
    ("allow", "dst=198.51.100.1,proto=tcp,dport=22", "admits inbound SSH only if fw ran first"),
    ("allow", "src=2001:db8:1::/48", ""),
]
PROTOS = {"tcp": 6, "udp": 17, "icmp": 1, "gre": 47}
HOSTS_A = ["10.1.0.%d" % i for i in range(1, 7)] + ["10.2.0.5"]   # 10.2/16: no rule allows it
SERVERS_A = ["203.0.113.10", "203.0.113.11", "203.0.113.12", "203.0.113.66"]


def rules_text(rules):
    return "# chains_golden: first match wins, then default=deny\n" + "".join(
        "%-5s %-40s%s\n" % (a, f, "  # " + c if c else "") for a, f, c in rules)


def parse_rule(text):
    terms = dict(t.split("=", 1) for t in text.split(","))
    out = {}
    for k in ("src", "dst"):
        if k in terms:
            out[k] = ipaddress.ip_network(terms[k])
    if "proto" in terms:
        out["proto"] = PROTOS[terms["proto"]]
    if "dport" in terms:
        lo, _, hi = terms["dport"].partition("-")
        out["dport"] = (int(lo), int(hi or lo))
    return out


def verdict(rules, src, dst, proto, dport):
    """'allow' or 'deny': the first rule matching the first packet, else the default (deny)."""
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    for action, text, _ in rules:
        r = parse_rule(text)
        if "src" in r and (s.version != r["src"].version or s not in r["src"]):
            continue
        if "dst" in r and (d.version != r["dst"].version or d not in r["dst"]):
            continue
        if "proto" in r and proto != r["proto"]:
            continue
        if "dport" in r and not r["dport"][0] <= dport <= r["dport"][1]:
            continue
        return action
    return "deny"


# ---------------------------------------------------------------------------
# Chain B's configuration

VIP, VPORT = "198.18.0.10", 80
LB_TABLE = 4093
BACKENDS = [("10.9.0.1", 8080, 1), ("10.9.0.2", 8080, 2), ("10.9.0.3", 80, 1)]
CLIENTS_B = ["10.0.0.%d" % i for i in range(1, 13)]
SERVER_B = "10.0.0.50"          # an inside server an outside client talks to
OS = {64: "linux/unix", 128: "windows", 255: "solaris/network"}


def lb_spec(backends):
    return "lb,vip=%s:%d,backends=[%s],table=%d" % (
        VIP, VPORT, ",".join("%s:%d@%d" % b for b in backends), LB_TABLE)


# ---------------------------------------------------------------------------
# Packets, rounds, and what must come out

class Pkt:
    """A frame one side sends; where it goes (pass or drop) and what it counts."""

    def __init__(self, side, frame, desc, flow, drop, effects, expect):
        self.side, self.frame, self.desc, self.flow = side, frame, desc, flow
        self.drop = drop            # None (it passes), or the counter that drops it
        self.effects = effects      # [(nf, counter)] it increments
        self.expect = expect        # frame_out -> the frame it must be, for a passing packet


class Plan:
    def __init__(self):
        self.mark = 0
        self.sent = []      # every Pkt, in order
        self.round = None

    def begin(self, side):
        self.round = (side, [])
        return self.round

    def add(self, layers, desc, flow, drop=None, effects=(), expect=None):
        side = self.round[0]
        self.mark += 1
        if IP in layers:
            layers[IP].id = self.mark
        else:
            layers[IPv6].fl = self.mark
        src, dst = (MAC_IN, MAC_OUT) if side == "in" else (MAC_OUT, MAC_IN)
        frame = raw(Ether(src=src, dst=dst) / layers)
        pk = Pkt(side, frame, desc, flow, drop, list(effects), expect or (lambda got, f=frame: f))
        self.round[1].append(pk)
        self.sent.append(pk)
        return pk


def frame_mark(frame):
    try:
        p = Ether(frame)
    except Exception:  # noqa: BLE001 - not ours
        return None
    if IP in p and p.type == 0x0800:
        return p[IP].id
    if IPv6 in p and p.type == 0x86dd:
        return p[IPv6].fl
    return None


def rewritten(frame, src=None, dst=None, sport=None, dport=None):
    """@p frame with IPv4 addresses and ports (ICMP identifier for either) set,
    every checksum computed afresh (a UDP checksum of 0 stays 0)."""
    p = Ether(frame)
    ip = p[IP]
    if src is not None:
        ip.src = src
    if dst is not None:
        ip.dst = dst
    del ip.chksum
    l4 = ip.payload
    if isinstance(l4, ICMP):
        l4.id = sport if sport is not None else dport if dport is not None else l4.id
    else:
        if sport is not None:
            l4.sport = sport
        if dport is not None:
            l4.dport = dport
    if not (isinstance(l4, UDP) and l4.chksum == 0):
        del l4.chksum
    return raw(p)


def field_diff(want, got, limit=6):
    a, b = Ether(want), Ether(got)
    out = []
    while not isinstance(a, NoPayload) and not isinstance(b, NoPayload) and len(out) < limit:
        if type(a) is not type(b):
            out.append("%s where %s was expected" % (b.name, a.name))
            break
        for fd in a.fields_desc:
            va, vb = a.getfieldval(fd.name), b.getfieldval(fd.name)
            if va != vb:
                out.append("%s.%s: expected %s, got %s" % (a.name, fd.name, fd.i2repr(a, va),
                                                          fd.i2repr(b, vb)))
        a, b = a.payload, b.payload
    if not out and want != got:
        out.append("frames differ (%d bytes, expected %d)" % (len(got), len(want)))
    return "; ".join(out)


class Mbxd:
    """mbxd in the namespace on two net_pcap live ports, and the test's ends of the wires."""

    def __init__(self, args, workdir, ns, tag, nf_args):
        self.prefix = mbxrun.unique_prefix("golden_chains")
        self.sock = os.path.join(workdir, tag + ".sock")
        self.log = os.path.join(workdir, tag + "-mbxd.log")
        self.wires = {"in": ns.veth("ti", "mi"), "out": ns.veth("to", "mo")}
        lcores = "0-1" if args.workers == 1 else "(0-%d)@(0-1)" % args.workers
        argv = ns.argv([args.mbxd] + mbxrun.eal_args(self.prefix, lcores=lcores, vdevs=[
            "net_pcap0,iface=mi", "net_pcap1,iface=mo"]) + ["--"] + nf_args + [
            "--idle-sleep-us", "50", "--control", "unix:" + self.sock] +
            sum((["--timeout", t + "=86400"] for t in TIMEOUTS), []))
        self.proc = mbxrun.Proc(argv, self.prefix, log_path=self.log)
        self.rc = "not stopped"
        # generous: EAL start-up can crawl on a shared, loaded machine
        mbxrun.wait_until(lambda: os.path.exists(self.sock) or self.proc.p.poll() is not None,
                          timeout=90, what="mbxd's control socket (see %s)" % self.log)
        if self.proc.p.poll() is not None:
            raise RuntimeError("mbxd exited with %s at start; see %s" % (self.proc.p.returncode,
                                                                        self.log))

    def snapshot(self, nfs):
        q = self.proc.query
        snap = {"port0": q("/mbx/port", "0"), "port1": q("/mbx/port", "1"),
                "stats": q("/mbx/stats")}
        for nf in nfs:
            snap[nf] = q("/mbx/nf", nf)
        return snap

    def stop(self):
        if self.proc is not None:
            self.rc = self.proc.stop()
            self.proc = None


class Run:
    """Sends rounds, checks what comes out of each, keeps what was seen."""

    def __init__(self, name, mbxd, plan, nfs, errors, brk):
        self.name, self.mbxd, self.plan, self.nfs, self.errors = name, mbxd, plan, nfs, errors
        self.brk = brk
        self.by_mark = {}
        self.sent = {"in": 0, "out": 0}
        self.passed = {"in": 0, "out": 0}
        self.drops = 0
        self.received = {"in": [], "out": []}   # frames each side received
        self.last = {}                           # (side, flow) -> last mark seen

    def err(self, msg):
        self.errors.append("%s: %s" % (self.name, msg))

    def send(self, rnd):
        side, pkts = rnd
        other = "out" if side == "in" else "in"
        port_rx = "port0" if side == "in" else "port1"
        port_tx = "port1" if side == "in" else "port0"
        for pk in pkts:
            self.by_mark[frame_mark(pk.frame)] = pk
        got = []
        wires = self.mbxd.wires
        for i, pk in enumerate(pkts):
            wires[side].send(pk.frame)
            self.sent[side] += 1
            if (i + 1) % PACE == 0:
                mbxrun.wait_until(lambda: self.mbxd.proc.query("/mbx/port", port_rx[-1])[
                    "rx_packets"] >= self.sent[side], timeout=SETTLE, period=0.01,
                    what="mbxd to receive the round")
                got += wires[other].recv(0)
        self.passed[other] += len([p for p in pkts if not p.drop])
        self.drops += len([p for p in pkts if p.drop])
        n_pass = len([p for p in pkts if not p.drop])
        deadline = time.time() + SETTLE
        while True:
            got += wires[other].recv(0.02)
            snap = self.mbxd.snapshot([])
            if (snap[port_rx]["rx_packets"] >= self.sent[side] and
                    snap[port_tx]["tx_packets"] >= self.passed[other] and
                    snap["stats"]["nf_dropped"] >= self.drops and len(got) >= n_pass):
                break
            if time.time() > deadline:
                self.err("round from %s did not settle in %.0f s: port rx %d of %d, tx %d of %d, "
                         "nf_dropped %d of %d, %d of %d frames out" % (
                             side, SETTLE, snap[port_rx]["rx_packets"], self.sent[side],
                             snap[port_tx]["tx_packets"], self.passed[other],
                             snap["stats"]["nf_dropped"], self.drops, len(got), n_pass))
                break
        got += wires[other].recv(0.05)
        if self.brk == "frame" and got and self.name.startswith("A"):
            b = bytearray(got[0])
            b[-1] ^= 1
            got[0] = bytes(b)
            self.brk = None
        self.check(other, got, pkts)
        self.received[other] += got
        return got

    def check(self, where, frames, pkts):
        """Frames that came out on @p where: each a passing packet of the round, once,
        as it must be, in its flow's order."""
        seen = {}
        for fr in frames:
            mark = frame_mark(fr)
            if mark is None:
                continue    # not IP: the bump in the wire passes it, nothing to judge
            pk = self.by_mark.get(mark)
            if pk is None or pk.side == where:
                self.err("%s: unknown frame %s" % (where, Ether(fr).summary()))
                continue
            seen[mark] = seen.get(mark, 0) + 1
            if pk.drop:
                self.err("%s: %s came out; it should be dropped (%s)" % (where, pk.desc, pk.drop))
                continue
            want = pk.expect(fr)
            if fr != want:
                self.err("%s: %s: %s" % (where, pk.desc, field_diff(want, fr)))
            key = (where, pk.flow)
            if mark < self.last.get(key, 0):
                self.err("%s: %s out of order in its flow" % (where, pk.desc))
            self.last[key] = mark
        for pk in pkts:
            n = seen.get(frame_mark(pk.frame), 0)
            if not pk.drop and n != 1:
                self.err("%s: %s came out %d times" % (where, pk.desc, n))

    def expected_counters(self, counters):
        """Counters of the NFs (each starting at 0), the ports and the workers."""
        exp = {nf: {c: 0 for c in names} for nf, names in counters.items()}
        for pk in self.plan.sent:
            for nf, c in pk.effects:
                exp[nf][c] += 1
            if pk.drop:
                nf, c = pk.drop
                exp[nf][c] += 1
        exp["port0"] = {"rx_packets": self.sent["in"], "tx_packets": self.passed["in"]}
        exp["port1"] = {"rx_packets": self.sent["out"], "tx_packets": self.passed["out"]}
        exp["stats"] = {"nf_dropped": self.drops, "tx_dropped": 0, "handoff_dropped": 0,
                        "table_full_drops": 0, "reply_key_conflicts": 0}
        return exp

    def check_counters(self, exp, phase):
        snap = self.mbxd.snapshot(self.nfs)
        for g, want in exp.items():
            for k, v in want.items():
                have = (snap.get(g) or {}).get(k)
                if have != v:
                    self.err("%s%s %s: expected %s, got %s" % (phase, g, k, v, have))
        for nf in self.nfs:
            extra = set(snap.get(nf) or {}) - set(exp[nf])
            if extra:
                self.err("%s%s: counters %s not in the plan" % (phase, nf, sorted(extra)))

    def stop_and_check_printout(self, exp):
        self.mbxd.stop()
        if self.mbxd.rc != 0:
            self.err("mbxd exited with %s after SIGTERM (see %s)" % (self.mbxd.rc, self.mbxd.log))
        with open(self.mbxd.log) as f:
            text = f.read()
        for nf in self.nfs:
            m = re.search(r"^\s*nf %s:(.*)$" % nf, text, re.M)
            printed = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))} if m else None
            if printed != exp[nf]:
                self.err("final printout nf %s: %s, expected %s" % (nf, printed, exp[nf]))

    def write_pcaps(self, workdir):
        tag = self.name.split()[0]
        wrpcap(os.path.join(workdir, tag + "-sent.pcap"), [Ether(p.frame) for p in self.plan.sent])
        for side in ("in", "out"):
            if self.received[side]:
                wrpcap(os.path.join(workdir, "%s-received-%s.pcap" % (tag, side)),
                       [Ether(x) for x in self.received[side]])


def mbxctl(sock, *argv):
    """mbxctl's answer: (exit code, JSON lines decoded, stderr)."""
    r = subprocess.run([MBXCTL, "--at", "unix:" + sock] + list(argv), capture_output=True,
                       text=True, timeout=60)
    lines = [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()] if r.returncode == 0 \
        else []
    return r.returncode, lines, r.stderr.strip()


def addr(v):
    """An address as mbxctl prints it: text, or base64 for fields whose names its
    JSON printer does not know as addresses (lb's vip and backend)."""
    if v is None:
        return None
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        b = base64.b64decode(v)
        return str(ipaddress.ip_address(b)) if len(b) in (4, 16) else v


def key_of(k):
    return (k["proto"], k["src"], k["sport"], k["dst"], k["dport"])


class State:
    """get-state of one NF and scope through mbxctl, checked to be that NF's only."""

    def __init__(self, run, sock):
        self.run, self.sock = run, sock

    def get(self, nf, scope):
        rc, lines, err = mbxctl(self.sock, "get-state", "--nf", nf, "--scope", scope)
        if rc != 0:
            self.run.err("mbxctl get-state --nf %s --scope %s: exit %d: %s" % (nf, scope, rc, err))
            return []
        want_scope = {"per-flow": "SCOPE_PER_FLOW", "multi-flow": "SCOPE_MULTI_FLOW",
                      "all-flows": "SCOPE_ALL_FLOWS"}[scope]
        out = []
        for ln in lines:
            ch = ln.get("chunk", {})
            if ch.get("nf") != nf or ch.get("scope") != want_scope:
                self.run.err("get-state --nf %s --scope %s returned a chunk of %s, %s" % (
                    nf, scope, ch.get("nf"), ch.get("scope")))
                continue
            if "decoded" not in ln:
                self.run.err("get-state --nf %s: a chunk mbxctl could not decode" % nf)
                continue
            out.append(ln)
        return out

    def per_flow(self, nf):
        got = {}
        for ln in self.get(nf, "per-flow"):
            k = key_of(ln["chunk"]["key"])
            if k in got:
                self.run.err("get-state --nf %s: flow %s twice" % (nf, k))
            got[k] = ln
        return got

    def refused(self, nf):
        rc, lines, err = mbxctl(self.sock, "get-state", "--nf", nf, "--scope", "all")
        if rc == 0 or lines:
            self.run.err("get-state --nf %s on a chain without %s: exit %d, %d chunks; expected "
                         "a refusal" % (nf, nf, rc, len(lines)))
        elif "errno 2" not in err and "No such" not in err and "ENOENT" not in err:
            self.run.err("get-state --nf %s refused, but not with ENOENT: %s" % (nf, err))

    def union(self, nfs):
        """get-state without --nf returns every NF's chunks, nothing else."""
        for scope in ("per-flow", "multi-flow", "all-flows"):
            rc, lines, err = mbxctl(self.sock, "get-state", "--scope", scope)
            if rc != 0:
                self.run.err("get-state --scope %s: exit %d: %s" % (scope, rc, err))
                continue
            each = []
            for nf in nfs:
                _, ls, _ = mbxctl(self.sock, "get-state", "--nf", nf, "--scope", scope)
                each += ls

            def norm(ls):
                return sorted(json.dumps(x["chunk"], sort_keys=True) for x in ls)
            if norm(lines) != norm(each):
                self.run.err("get-state --scope %s: %d chunks, not the %d of %s" % (
                    scope, len(lines), len(each), "+".join(nfs)))


# ---------------------------------------------------------------------------
# Chain A: fw then nat

class TcpA:
    """Sequence numbers of a TCP connection, both ways."""

    def __init__(self, h):
        self.nxt = {"c": 0x1000000 * (h % 200) + 1, "s": 0x7000000 + 0x10101 * h}


class Conv:
    """One conversation of chain A, from an inside host (or of IPv6)."""

    def __init__(self, idx, proto, host, sport, server, dport, kind, rules):
        self.idx, self.proto, self.host, self.sport = idx, proto, host, sport
        self.server, self.dport, self.kind = server, dport, kind
        self.v6 = ":" in host
        num = 58 if self.v6 and proto == "icmp" else PROTOS[proto]
        self.allowed = verdict(rules, host, server, num, dport if proto in ("tcp", "udp") else 0) \
            == "allow"
        self.name = "c%d %s %s:%d > %s:%d %s" % (idx, proto, host, sport, server, dport,
                                                 kind if self.allowed else "denied")
        self.ext_port = None
        self.tcp = TcpA(idx + 1) if proto == "tcp" else None
        self.closed = False

    def key(self):
        # an ICMP echo's identifier stands for both ports
        return (PROTOS[self.proto], self.host, self.sport, self.server,
                self.sport if self.proto == "icmp" else self.dport)

    def l3(self, out):
        if self.v6:
            return IPv6(src=self.host, dst=self.server) if out else \
                IPv6(src=self.server, dst=self.host)
        return IP(src=self.host, dst=self.server) if out else IP(src=self.server, dst=EXT_IP)

    def expect_out(self, frame):
        def f(got):
            if self.v6:
                return frame
            if self.ext_port is None:       # learn it from the flow's first packet
                p = Ether(got)
                if IP in p:
                    l4 = p[IP].payload
                    self.ext_port = l4.id if isinstance(l4, ICMP) else getattr(l4, "sport", None)
            return rewritten(frame, src=EXT_IP, sport=self.ext_port)
        return f

    def expect_in(self, frame):
        def f(got):
            return frame if self.v6 else rewritten(frame, dst=self.host, dport=self.sport)
        return f

    def send(self, plan, out, l4, desc, drop=None, effects=None, data=b""):
        """A packet of this conversation: out=True from the inside host."""
        if effects is None:
            if drop:
                effects = []
            elif self.v6:
                effects = [("nat", "ipv6_passed")]
            else:
                effects = [("nat", "translated_out" if out else "translated_in")]
        layers = self.l3(out) / l4 / data
        pk = plan.add(layers, "%s: %s" % (self.name, desc), self.name, drop, effects, None)
        pk.expect = self.expect_out(pk.frame) if out else self.expect_in(pk.frame)
        return pk

    def seg(self, plan, frm, flags, data=b"", drop=None, seq=None, effects=None, first=False):
        t = self.tcp
        to = "s" if frm == "c" else "c"
        out = frm == "c"
        sp, dp = (self.sport, self.dport) if out else \
            (self.dport, self.sport if self.v6 else self.ext_port)
        l4 = TCP(sport=sp, dport=dp, flags=flags, window=16384,
                 seq=t.nxt[frm] if seq is None else seq, ack=t.nxt[to] if "A" in flags else 0)
        if "S" in flags:
            l4.options = [("MSS", 1460), ("NOP", None), ("WScale", 7)]
        if first and not drop:
            effects = self.first_effects()
        pk = self.send(plan, out, l4, "%s %s" % (frm, flags), drop, effects, data)
        if drop is None and seq is None:
            t.nxt[frm] = (t.nxt[frm] + len(data) + ("S" in flags) + ("F" in flags)) & 0xffffffff
        return pk

    def first_effects(self):
        if self.v6:
            return [("fw", "conns_allowed"), ("nat", "ipv6_passed")]
        return [("fw", "conns_allowed"), ("nat", "mappings_created"), ("nat", "translated_out")]

    def step(self, plan, r):
        """Round r's packets (odd rounds from the inside, even from the outside)."""
        p, k = self.proto, self.kind
        if not self.allowed:
            if r == 1:
                l4 = (TCP(sport=self.sport, dport=self.dport, flags="S", seq=7) if p == "tcp" else
                      UDP(sport=self.sport, dport=self.dport) if p == "udp" else
                      ICMP(type=8, id=self.sport, seq=1))
                self.send(plan, True, l4, "first packet", ("fw", "denied_by_rule"), data=b"denied")
            if r == 2 and p == "udp" and not self.v6:
                # the server answers anyway, at a port nat never gave out
                self.send(plan, False, UDP(sport=self.dport, dport=30000 + self.idx),
                          "answer to a denied query", ("nat", "no_mapping_drops"), data=b"x")
            return
        if p == "tcp":
            if r == 1:
                self.seg(plan, "c", "S", first=True)
            elif r == 2:
                self.seg(plan, "s", "SA")
            elif r == 3:
                self.seg(plan, "c", "A")
                self.seg(plan, "c", "PA", b"GET /%d HTTP/1.1\r\n\r\n" % self.idx)
            elif r == 4:
                if k == "rst":
                    self.seg(plan, "s", "RA")
                else:
                    self.seg(plan, "s", "PA", b"HTTP/1.1 200 OK\r\n\r\n" + bytes(self.idx * 7))
                if k == "oow":   # nat translates it, then fw drops it
                    self.seg(plan, "s", "PA", b"far ahead", drop=("fw", "tcp_out_of_window"),
                             seq=(self.tcp.nxt["s"] + 50000000) & 0xffffffff,
                             effects=[("nat", "ipv6_passed" if self.v6 else "translated_in")])
            elif r == 5:
                if k == "fin":
                    self.seg(plan, "c", "FA")
                elif k == "rst":
                    self.seg(plan, "c", "PA", b"after the reset", drop=("fw", "tcp_after_close"))
                else:
                    self.seg(plan, "c", "PA", b"more")
            elif r == 6:
                if k == "fin":
                    self.seg(plan, "s", "FA")
                elif k in ("est", "oow"):
                    self.seg(plan, "s", "PA", b"more back")
            elif r == 7 and k == "fin":
                self.seg(plan, "c", "A")
        elif p == "udp":
            if r == 1:
                self.send(plan, True, UDP(sport=self.sport, dport=self.dport), "query",
                          effects=self.first_effects(), data=b"query %d" % self.idx)
            elif r == 2 and k == "replied":
                self.send(plan, False, UDP(sport=self.dport, dport=self.ext_port), "answer",
                          data=b"answer %d" % self.idx + bytes(self.idx))
            elif r == 3 and k == "replied":
                self.send(plan, True, UDP(sport=self.sport, dport=self.dport), "query again",
                          data=b"again")
        elif p == "icmp":
            if r in (1, 3):
                self.send(plan, True, ICMP(type=8, id=self.sport, seq=r), "echo %d" % r,
                          effects=self.first_effects() if r == 1 else None, data=b"ping")
            elif r in (2, 4):
                self.send(plan, False, ICMP(type=0, id=self.ext_port, seq=r - 1),
                          "echo reply %d" % (r - 1), data=b"ping")

    def fw_state(self):
        if not self.allowed:
            return None
        if self.proto == "tcp":
            return {"fin": "FW_STATE_TIME_WAIT", "rst": "FW_STATE_CLOSED"}.get(
                self.kind, "FW_STATE_ESTABLISHED")
        if self.proto == "udp":
            return "FW_STATE_UDP_REPLIED" if self.kind == "replied" else "FW_STATE_UDP_UNREPLIED"
        return "FW_STATE_ICMP_ECHO"


def plan_a(rules):
    rnd = random.Random(4242)
    convs = []
    for h, host in enumerate(HOSTS_A):
        for k in range(8):
            proto = ("tcp", "udp", "icmp", "tcp")[k % 4]
            server = SERVERS_A[-1] if rnd.random() < 0.12 else rnd.choice(SERVERS_A[:-1])
            if proto == "tcp":
                dport, kind = rnd.choice((80, 443, 443, 80, 8080)), ("fin", "est", "rst", "oow")[
                    (h + k // 4) % 4]
            elif proto == "udp":
                dport, kind = rnd.choice((53, 53, 53, 123)), ("replied", "unreplied")[k // 4]
            else:
                dport, kind = 0, "echo"
            sport = 0x100 + k if proto == "icmp" else 40000 + k    # the same on every host
            convs.append(Conv(len(convs), proto, host, sport, server, dport, kind, rules))
    for kind in ("est", "fin"):
        convs.append(Conv(len(convs), "tcp", "2001:db8:1::%d" % (len(convs) % 7 + 1),
                          41000 + len(convs), "2001:db8:2::1", 443, kind, rules))
    convs.append(Conv(len(convs), "udp", "2001:db8:9::1", 41100, "2001:db8:2::1", 53,
                      "replied", rules))
    return convs


def test_chain_a(args, workdir, errors):
    rules = [r for r in RULES if not (args.brk == "rules" and "dport=53" in r[1])]
    convs = plan_a(RULES)
    plan = Plan()
    rules_file = os.path.join(workdir, "rules")
    with open(rules_file, "w") as f:
        f.write(rules_text(rules))
    fw = "fw,rules=%s" % rules_file
    nat = "nat,ext_ip=%s,ports=%d-%d" % (EXT_IP, PORT_LO, PORT_HI)
    chain = ["--nf", nat, "--nf", fw] if args.brk == "order-fw-nat" else \
        ["--nf", fw, "--nf", nat]
    ns = mbxd = None
    fw_ctr = ["conns_allowed", "conns_ended", "icmp_errors_related", "denied_by_rule",
              "tcp_no_connection", "tcp_invalid_flags", "tcp_invalid_state", "tcp_out_of_window",
              "tcp_after_close", "icmp_error_unrelated", "icmp_invalid", "conn_limit",
              "host_table_full"]
    nat_ctr = ["mappings_created", "mappings_freed", "translated_out", "translated_in",
               "ipv6_passed", "no_mapping_drops", "unsupported_drops", "pool_exhausted_drops"]
    run = None
    try:
        ns = wire.Netns("chA")
        mbxd = Mbxd(args, workdir, ns, "A", chain)
        run = Run("A fw,nat", mbxd, plan, ["fw", "nat"], errors, args.brk)
        for r in range(1, 8):
            rnd = plan.begin("in" if r % 2 else "out")
            for c in convs:
                c.step(plan, r)
            if r == 1:
                # admitted by fw, refused by nat: fw ends the connection again
                gre = IP(src="10.1.0.1", dst="203.0.113.10", proto=47) / \
                    Raw(b"\x00\x00\x08\x00" + bytes(24))
                plan.add(gre, "GRE from the inside", "gre", ("nat", "unsupported_drops"),
                         [("fw", "conns_allowed"), ("fw", "conns_ended")])
                plan.add(IP(src="10.1.0.2", dst="203.0.113.11") / ICMP(type=13, id=0x77, seq=1) /
                         bytes(12), "ICMP timestamp request from the inside", "ts",
                         ("nat", "unsupported_drops"),
                         [("fw", "conns_allowed"), ("fw", "conns_ended")])
            if r == 2:
                # a rule would allow it, but nat (first from the outside) has no mapping
                plan.add(IP(src="198.51.100.7", dst=EXT_IP) /
                         TCP(sport=50000, dport=22, flags="S", seq=5), "inbound SSH SYN to ext_ip",
                         "ssh", ("nat", "no_mapping_drops"))
                u = next(c for c in convs if c.proto == "udp" and c.allowed and not c.v6 and
                         c.kind == "replied")
                plan.add(IP(src=u.server, dst=EXT_IP) / UDP(sport=u.dport + 1, dport=u.ext_port) /
                         b"wrong port", "answer from another port to %s" % u.name, "wrongport",
                         ("nat", "no_mapping_drops"))
            if rnd[1]:
                run.send(rnd)
            if r == 1:
                unmapped = [c.name for c in convs if c.allowed and not c.v6 and c.ext_port is None]
                if unmapped:
                    run.err("no external port learnt for %s" % unmapped[:5])
                    break
        exp = run.expected_counters({"fw": fw_ctr, "nat": nat_ctr})
        run.check_counters(exp, "telemetry: ")
        check_state_a(run, mbxd, convs)
        run.stop_and_check_printout(exp)
    finally:
        if run is not None:
            run.write_pcaps(workdir)
        if mbxd is not None:
            mbxd.stop()
        if ns is not None:
            ns.close()
    held = [c for c in convs if c.allowed]
    print("  A fw,nat: %d conversations (%d allowed, %d denied), %d packets in, %d out; "
          "fw: %s" % (len(convs), len(held), len(convs) - len(held), len(plan.sent),
                      sum(run.passed.values()) if run else 0,
                      " ".join("%s=%d" % (k, v) for k, v in exp["fw"].items() if v)
                      if run else "-"))


def check_state_a(run, mbxd, convs):
    st = State(run, mbxd.sock)
    held = [c for c in convs if c.allowed]
    mapped = [c for c in held if not c.v6]

    def reply_key(c):
        if c.v6:
            return (PROTOS[c.proto], c.server, c.dport, c.host, c.sport)
        if c.proto == "icmp":
            return (1, c.server, c.ext_port, EXT_IP, c.ext_port)
        return (PROTOS[c.proto], c.server, c.dport, EXT_IP, c.ext_port)

    # -- fw per-flow: the connections it admitted and holds, nothing else
    got = st.per_flow("fw")
    want = {c.key(): c for c in held}
    if set(got) != set(want):
        run.err("fw per-flow flows: missing %s, unexpected %s" % (
            sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5]))
    for k in sorted(set(got) & set(want), key=str):
        c, ln = want[k], got[k]
        d, ch = ln["decoded"], ln["chunk"]
        if d.get("state") != c.fw_state():
            run.err("fw state of %s: %s, expected %s" % (c.name, d.get("state"), c.fw_state()))
        if key_of(ch["reply_key"]) != reply_key(c):
            run.err("fw reply key of %s: %s, expected %s" % (c.name, key_of(ch["reply_key"]),
                                                            reply_key(c)))
        if c.proto == "tcp":
            ends = ((d.get("orig") or {}).get("end"), (d.get("reply") or {}).get("end"))
            if ends != (c.tcp.nxt["c"], c.tcp.nxt["s"]):
                run.err("fw sequence ends of %s: %s, expected %s" % (
                    c.name, ends, (c.tcp.nxt["c"], c.tcp.nxt["s"])))

    # -- nat per-flow: a mapping per IPv4 flow admitted, with the port the packets showed
    got = st.per_flow("nat")
    want = {c.key(): c for c in mapped}
    if set(got) != set(want):
        run.err("nat per-flow flows: missing %s, unexpected %s" % (
            sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5]))
    for k in sorted(set(got) & set(want), key=str):
        c, d = want[k], got[k]["decoded"]
        have = (d.get("in_addr"), d.get("in_port"), d.get("ext_addr"), d.get("ext_port"),
                d.get("proto"))
        exp = (c.host, c.sport, EXT_IP, c.ext_port, PROTOS[c.proto])
        if have != exp:
            run.err("nat mapping of %s: %s, expected %s" % (c.name, have, exp))
        if key_of(got[k]["chunk"]["reply_key"]) != reply_key(c):
            run.err("nat reply key of %s: %s" % (c.name, key_of(got[k]["chunk"]["reply_key"])))
    ports = [c.ext_port for c in mapped]
    if len(set(ports)) != len(ports) or not all(PORT_LO <= (p or 0) <= PORT_HI for p in ports):
        run.err("external ports not distinct or outside %d-%d: %s" % (PORT_LO, PORT_HI,
                                                                     sorted(ports, key=str)))

    # -- multi-flow: fw's connections per source host, nat's port blocks per host
    want_conns = {}
    for c in held:
        want_conns[c.host] = want_conns.get(c.host, 0) + 1
    have_conns = {}
    for ln in st.get("fw", "multi-flow"):
        h = ln["chunk"]["key"]["src"]
        have_conns[h] = have_conns.get(h, 0) + ln["decoded"].get("conns", 0)
        if ln["decoded"].get("host") != h:
            run.err("fw host record keyed %s names %s" % (h, ln["decoded"].get("host")))
    if have_conns != want_conns:
        run.err("fw connections per host: %s, expected %s" % (have_conns, want_conns))
    want_ports = {}
    for c in mapped:
        want_ports.setdefault(c.host, set()).add(c.ext_port)
    have_ports, blocks = {}, 0
    for ln in st.get("nat", "multi-flow"):
        h, d = ln["chunk"]["key"]["src"], ln["decoded"]
        used = set()
        for b in d.get("blocks", []):
            blocks += 1
            if b.get("addr") != EXT_IP or (b["first_port"] - PORT_LO) % BLOCK:
                run.err("nat block of %s: %s" % (h, b))
            bits = int(b.get("used", 0))
            used |= {b["first_port"] + i for i in range(64) if bits >> i & 1}
        if d.get("ports") != len(used):
            run.err("nat host %s: ports %s, but %d bits set" % (h, d.get("ports"), len(used)))
        have_ports[h] = used
    if have_ports != want_ports:
        run.err("nat ports per host: %s, expected %s" % (
            {h: sorted(p, key=str) for h, p in have_ports.items()},
            {h: sorted(p, key=str) for h, p in want_ports.items()}))

    # -- all-flows: the rule set as written, the pool with what is left of it
    got = st.get("fw", "all-flows")
    if len(got) != 1:
        run.err("fw all-flows: %d chunks" % len(got))
    else:
        d = got[0]["decoded"]
        have = [("allow" if r.get("action") == "FW_ACTION_ALLOW" else "deny", filter_text(r))
                for r in d.get("rules", [])]
        exp = [(a, canon_filter(f)) for a, f, _ in RULES]
        if have != exp or d.get("default_action", "FW_ACTION_DENY") != "FW_ACTION_DENY":
            run.err("fw rules: %s, default %s; expected %s, deny" % (
                have, d.get("default_action"), exp))
    got = st.get("nat", "all-flows")
    nblocks = -(-(PORT_HI - PORT_LO + 1) // BLOCK)
    exp = {"addr_lo": EXT_IP, "addr_hi": EXT_IP, "port_lo": PORT_LO, "port_hi": PORT_HI,
           "block_ports": BLOCK, "blocks": nblocks, "blocks_free": nblocks - blocks}
    if len(got) != 1 or {k: got[0]["decoded"].get(k) for k in exp} != exp:
        run.err("nat pool: %s, expected %s" % ([g["decoded"] for g in got], exp))

    # -- nothing but the chain's NFs, and all of them without --nf
    st.refused("mon")
    st.refused("lb")
    st.union(["fw", "nat"])


def canon_filter(text):
    """A rule's filter as (family, src, dst, proto, dport) for comparison."""
    r = parse_rule(text)
    fam = 6 if any(r[k].version == 6 for k in ("src", "dst") if k in r) else 4
    return (fam, str(r.get("src")), str(r.get("dst")), r.get("proto", 0), r.get("dport"))


def filter_text(rule):
    m = rule.get("match", {})

    def pfx(p):
        return str(ipaddress.ip_network("%s/%d" % (p["addr"], p["len"]))) if p else "None"

    dp = m.get("dport")
    return (6 if m.get("family") == "FAMILY_IPV6" else 4, pfx(m.get("src")), pfx(m.get("dst")),
            m.get("proto", 0), (dp.get("lo"), dp.get("hi")) if dp else None)


# ---------------------------------------------------------------------------
# Chain B: mon then lb

class ConnB:
    """A flow of chain B: to the VIP (balanced) or not (passed)."""

    def __init__(self, idx, proto, client, sport, server, dport, kind, backend=None, ttl=64,
                 win=64240, from_outside=False):
        self.idx, self.proto, self.client, self.sport = idx, proto, client, sport
        self.server, self.dport, self.kind, self.backend = server, dport, kind, backend
        self.ttl, self.win, self.from_outside = ttl, win, from_outside
        self.v6 = ":" in client
        self.vip = backend is not None
        self.name = "b%d %s %s:%d > %s:%d%s" % (idx, proto, client, sport, server, dport,
                                               " via %s" % BACKENDS[backend][0] if self.vip else "")
        self.pk = [0, 0]            # what mon must count: packets, bytes, flags per direction
        self.by = [0, 0]
        self.fl = [0, 0]
        self.frames = 0             # frames and their bytes, both ways, that lb balanced
        self.frame_bytes = 0
        self.nxt = {"c": 1000 + idx * 100000, "s": 9000000 + idx * 1000}

    def key(self):
        return ({"tcp": 6, "udp": 17, "icmp": 1}[self.proto], self.client, self.sport,
                self.server, self.dport)

    def send(self, plan, frm, l4, desc, data=b"", drop=None, mon_counts=True):
        """A packet from the client ("c") or the server/backend ("s")."""
        side = "out" if frm == "s" else "in"
        if self.from_outside:
            side = "in" if side == "out" else "out"
        a, b = (self.client, self.server) if frm == "c" else (self.server, self.client)
        if self.vip and frm == "s":
            a = BACKENDS[self.backend][0]
        ttl = self.ttl if (frm == "c" and "S" in str(getattr(l4, "flags", ""))) else 64
        l3 = IPv6(src=a, dst=b, hlim=ttl) if self.v6 else IP(src=a, dst=b, ttl=ttl)
        d = 0 if frm == "c" else 1
        if self.vip:
            effects = [("lb", "to_backend" if d == 0 else "from_backend")]
            if d == 0 and self.frames == 0:
                effects.append(("lb", "connections_new"))
        else:
            effects = [("lb", "passed")]
        if drop:
            effects = []
        assert plan.round[0] == side, (self.name, desc)
        pk = plan.add(l3 / l4 / data, "%s: %s" % (self.name, desc), self.name, drop, effects)
        if mon_counts:
            self.pk[d] += 1
            self.by[d] += len(pk.frame) - 14
            self.fl[d] |= int(l4.flags) if isinstance(l4, TCP) else 0
        if self.vip and not drop:
            self.frames += 1
            self.frame_bytes += len(pk.frame)
        if self.vip and not drop:
            bad, bport, _ = BACKENDS[self.backend]
            frame = pk.frame
            pk.expect = (lambda got, f=frame: rewritten(f, dst=bad, dport=bport)) if d == 0 else \
                (lambda got, f=frame: rewritten(f, src=VIP, sport=VPORT))
        return pk

    def seg(self, plan, frm, flags, data=b"", **kw):
        to = "s" if frm == "c" else "c"
        sp, dp = (self.sport, self.dport) if frm == "c" else (self.dport, self.sport)
        if self.vip and frm == "s":
            sp = BACKENDS[self.backend][1]
        l4 = TCP(sport=sp, dport=dp, flags=flags, seq=self.nxt[frm],
                 window=self.win if frm == "c" else 65160, ack=self.nxt[to] if "A" in flags else 0)
        if "S" in flags:
            l4.options = [("MSS", 1460), ("NOP", None), ("WScale", 7)]
        pk = self.send(plan, frm, l4, "%s %s" % (frm, flags), data, **kw)
        self.nxt[frm] += len(data) + ("S" in flags) + ("F" in flags)
        return pk

    def udp(self, plan, frm, data, **kw):
        sp, dp = (self.sport, self.dport) if frm == "c" else (self.dport, self.sport)
        if self.vip and frm == "s":
            sp = BACKENDS[self.backend][1]
        return self.send(plan, frm, UDP(sport=sp, dport=dp), "%s udp" % frm, data, **kw)

    def step(self, plan, r):
        """Round r: odd rounds from the inside, even from the outside."""
        frm = "c" if r % 2 == (0 if self.from_outside else 1) else "s"
        if self.proto == "tcp":
            script = {"fin": ["S", "SA", "A+PA", "PA", "FA", "FA", "A"],
                      "est": ["S", "SA", "A+PA", "PA"],
                      "hs": ["S", "SA", "A"]}[self.kind]
            n = r - (2 if self.from_outside else 1)
            if 0 <= n < len(script):
                for flags in script[n].split("+"):
                    data = (b"data %d %s" % (self.idx, flags.encode()) + bytes(self.idx % 40)) \
                        if "P" in flags else b""
                    self.seg(plan, "c" if n % 2 == 0 else "s", flags, data)
        elif self.proto == "udp":
            if r <= 3:
                self.udp(plan, frm, b"udp %d round %d" % (self.idx, r) + bytes(self.idx % 30))
        elif self.proto == "icmp" and r <= 2:
            l4 = ICMP(type=8 if frm == "c" else 0, id=self.sport, seq=1)
            self.send(plan, frm, l4, "echo" if frm == "c" else "echo reply", b"ping")


def plan_b(backends):
    table = lb_golden.maglev(backends, LB_TABLE)
    conns = []
    for h, client in enumerate(CLIENTS_B):
        for k in range(4):
            proto = "udp" if k == 3 else "tcp"
            sport = 30000 + 7 * k + 100 * h
            num = 17 if proto == "udp" else 6
            be = table[lb_golden.jhash(lb_golden.flow_key(num, client, VIP, sport, VPORT),
                                       0x6c623031) % LB_TABLE]
            ttl, win = ((64, 64240), (128, 8192), (62, 29200))[h % 3]
            conns.append(ConnB(len(conns), proto, client, sport, VIP, VPORT,
                               ("fin", "est", "hs", "")[k], be, ttl - (h % 2), win))
    # not for the VIP: another address, another port, ICMP, IPv6, an outside client
    conns.append(ConnB(len(conns), "tcp", "10.0.0.1", 31000, "198.18.0.11", 80, "est"))
    conns.append(ConnB(len(conns), "udp", "10.0.0.2", 31001, VIP, 53, ""))
    conns.append(ConnB(len(conns), "icmp", "10.0.0.3", 0x99, VIP, 0x99, ""))
    conns.append(ConnB(len(conns), "udp", "2001:db8::1", 31002, "2001:db8::80", 80, ""))
    conns.append(ConnB(len(conns), "tcp", "198.51.100.7", 33001, SERVER_B, 22, "hs",
                       ttl=55, from_outside=True))
    return conns


def test_chain_b(args, workdir, errors):
    conns = plan_b(BACKENDS)
    given = [(a, p, w + 1 if i == 0 else w) for i, (a, p, w) in enumerate(BACKENDS)] \
        if args.brk == "weights" else BACKENDS
    mon, lb = "mon", lb_spec(given)
    chain = ["--nf", lb, "--nf", mon] if args.brk == "order-mon-lb" else \
        ["--nf", mon, "--nf", lb]
    plan = Plan()
    mon_ctr = ["flows_finished", "records_queued", "records_lost_ring_full", "hosts_table_full"]
    lb_ctr = ["connections_new", "connections_ended", "to_backend", "from_backend", "passed",
              "no_backend_drops", "backend_removed_drops"]
    ns = mbxd = run = None
    removed = None
    try:
        ns = wire.Netns("chB")
        mbxd = Mbxd(args, workdir, ns, "B", chain)
        run = Run("B mon,lb", mbxd, plan, ["mon", "lb"], errors, args.brk)
        for r in range(1, 8):
            rnd = plan.begin("in" if r % 2 else "out")
            for c in conns:
                c.step(plan, r)
            if rnd[1]:
                run.send(rnd)
        exp = run.expected_counters({"mon": mon_ctr, "lb": lb_ctr})
        run.check_counters(exp, "telemetry: ")
        check_state_b(run, mbxd, conns)

        # -- remove a backend: lb drops its connections' packets both ways; mon,
        # before lb from the inside and after it from the outside, counts only the client's
        removed = 2
        client = mbx.Client("unix:" + mbxd.sock)
        try:
            msg = lb_pb2.LbBackends(
                vip=ipaddress.ip_address(VIP).packed, vip_port=VPORT, proto=0,
                table_size=LB_TABLE,
                backends=[lb_pb2.LbBackend(addr=ipaddress.ip_address(a).packed, port=p, weight=w)
                          for i, (a, p, w) in enumerate(given) if i != removed])
            cur = [ch for ch in client.get_state("all-flows", nf="lb")]
            msg.proto = client.decode_state(cur[0]).proto if cur else 0
            client.put_state([common_pb2.StateChunk(nf="lb", scope=common_pb2.SCOPE_ALL_FLOWS,
                                                    version=1, state=msg.SerializeToString())])
        finally:
            client.close()
        victims = [c for c in conns if c.vip and c.proto == "tcp" and c.kind in ("est", "hs")]
        for r, frm in ((8, "c"), (9, "s")):
            plan.begin("in" if frm == "c" else "out")
            for c in victims:
                gone = c.backend == removed
                c.seg(plan, frm, "PA", b"after the change %d" % r,
                      drop=("lb", "backend_removed_drops") if gone else None,
                      mon_counts=not gone or frm == "c")
            run.send(plan.round)
        exp = run.expected_counters({"mon": mon_ctr, "lb": lb_ctr})
        run.check_counters(exp, "telemetry, after removing %s: " % BACKENDS[removed][0])
        st = State(run, mbxd.sock)
        check_mon_flows(run, st, conns)
        got = st.get("lb", "all-flows")
        names = [addr(b.get("addr")) for b in got[0]["decoded"].get("backends", [])] \
            if got else None
        if names is None or BACKENDS[removed][0] in names or len(names) != len(BACKENDS) - 1:
            run.err("lb backends after the removal: %s" % names)
        run.stop_and_check_printout(exp)
    finally:
        if run is not None:
            run.write_pcaps(workdir)
        if mbxd is not None:
            mbxd.stop()
        if ns is not None:
            ns.close()
    vip = [c for c in conns if c.vip]
    share = [len([c for c in vip if c.backend == i]) for i in range(len(BACKENDS))]
    print("  B mon,lb: %d flows (%d to the VIP, backends %s), %d packets; lb: %s" % (
        len(conns), len(vip), "/".join(map(str, share)), len(plan.sent),
        " ".join("%s=%d" % (k, v) for k, v in exp["lb"].items() if v) if run else "-"))


def check_mon_flows(run, st, conns):
    got = st.per_flow("mon")
    want = {c.key(): c for c in conns}
    if set(got) != set(want):
        run.err("mon per-flow flows: missing %s, unexpected %s" % (
            sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5]))
    for k in sorted(set(got) & set(want), key=str):
        c, d = want[k], got[k]["decoded"]
        o, r = d.get("orig") or {}, d.get("reply") or {}
        have = ([o.get("packets", 0), r.get("packets", 0)], [o.get("bytes", 0), r.get("bytes", 0)],
                [o.get("tcp_flags", 0), r.get("tcp_flags", 0)],
                d.get("originator_side", "MON_SIDE_INSIDE"), bool(d.get("midstream")))
        exp = (c.pk, c.by, c.fl, "MON_SIDE_OUTSIDE" if c.from_outside else "MON_SIDE_INSIDE",
               False)
        if have != exp:
            run.err("mon flow %s: (packets, bytes, flags, side, midstream) %s, expected %s" % (
                c.name, have, exp))
    return got


def check_state_b(run, mbxd, conns):
    st = State(run, mbxd.sock)
    mon_flows = check_mon_flows(run, st, conns)
    vip = [c for c in conns if c.vip]

    # -- lb per-flow: the VIP's connections only, each with Maglev's backend
    got = st.per_flow("lb")
    want = {c.key(): c for c in vip}
    if set(got) != set(want):
        run.err("lb per-flow flows: missing %s, unexpected %s" % (
            sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5]))
    lb_backend = {}
    for k in sorted(set(got) & set(want), key=str):
        c, d = want[k], got[k]["decoded"]
        a, p, _ = BACKENDS[c.backend]
        have = (addr(d.get("vip")), d.get("vip_port"), addr(d.get("backend")),
                d.get("backend_port"))
        if have != (VIP, VPORT, a, p):
            run.err("lb state of %s: %s, expected %s" % (c.name, have, (VIP, VPORT, a, p)))
        rk = key_of(got[k]["chunk"]["reply_key"])
        if rk != (k[0], a, p, c.client, c.sport):
            run.err("lb reply key of %s: %s" % (c.name, rk))
        lb_backend[k] = (addr(d.get("backend")), d.get("backend_port"))

    # -- mon counts what lb balances: per backend, lb's counts = the sums of mon's
    lb_stats = {}
    for ln in st.get("lb", "multi-flow"):
        d = ln["decoded"]
        s = lb_stats.setdefault((addr(d.get("backend")), d.get("port")), [0, 0, 0, 0])
        for i, f in enumerate(("connections", "active", "packets", "bytes")):
            s[i] += int(d.get(f, 0))
    sums = {}
    for k, be in lb_backend.items():
        m = mon_flows.get(k, {}).get("decoded", {})
        pk = sum(int((m.get(x) or {}).get("packets", 0)) for x in ("orig", "reply"))
        by = sum(int((m.get(x) or {}).get("bytes", 0)) for x in ("orig", "reply"))
        s = sums.setdefault(be, [0, 0, 0, 0])
        s[0] += 1
        s[1] += 1
        s[2] += pk
        s[3] += by + 14 * pk       # mon: IP datagrams; lb: frames
    plan_sums = {}
    for c in vip:
        a, p, _ = BACKENDS[c.backend]
        s = plan_sums.setdefault((a, p), [0, 0, 0, 0])
        s[0] += 1
        s[1] += 1
        s[2] += c.frames
        s[3] += c.frame_bytes
    if lb_stats != sums:
        run.err("lb backend counts (connections, active, packets, bytes) %s are not the sums "
                "of mon's flows %s" % (lb_stats, sums))
    if lb_stats != plan_sums:
        run.err("lb backend counts %s, expected %s" % (lb_stats, plan_sums))

    # -- lb all-flows: the backend set and the Maglev table computed here
    got = st.get("lb", "all-flows")
    table = lb_golden.maglev(BACKENDS, LB_TABLE)
    if len(got) != 1:
        run.err("lb all-flows: %d chunks" % len(got))
    else:
        d = got[0]["decoded"]
        order = sorted(range(len(BACKENDS)), key=lambda i: (
            ipaddress.ip_address(BACKENDS[i][0]).packed, BACKENDS[i][1]))
        want_be = [(BACKENDS[i][0], BACKENDS[i][1], BACKENDS[i][2], table.count(i))
                   for i in order]
        have_be = [(addr(b.get("addr")), b.get("port"), b.get("weight"), b.get("entries"))
                   for b in d.get("backends", [])]
        have_vip = (addr(d.get("vip")), d.get("vip_port"), d.get("table_size"))
        if have_vip != (VIP, VPORT, LB_TABLE) or have_be != want_be:
            run.err("lb backends: %s, %s; expected %s, %s" % (
                have_vip, have_be, (VIP, VPORT, LB_TABLE), want_be))
        pos = {i: order.index(i) for i in order}
        if d.get("table") != [pos[i] for i in table]:
            run.err("lb Maglev table differs from the one computed here")

    # -- mon multi-flow: inside hosts; all-flows: totals
    hosts = {}
    for c in conns:
        h = c.server if c.from_outside else c.client
        rec = hosts.setdefault(h, {"services": set(), "os": set(), "out": 0, "in": 0})
        rec["in" if c.from_outside else "out"] += 1
        if c.proto == "tcp" and not c.from_outside:
            rec["os"].add((64 if c.ttl <= 64 else 128 if c.ttl <= 128 else 255, c.win))
        if c.proto == "tcp" and c.from_outside:
            rec["services"].add((6, c.dport))
    have = {}
    for ln in st.get("mon", "multi-flow"):
        h, m = ln["chunk"]["key"]["src"], ln["decoded"]
        if h in have:
            run.err("mon host %s reported twice" % h)
        have[h] = {"services": {(s["proto"], s["port"]) for s in m.get("services", [])},
                   "os": {(o["ttl_class"], o["window"]) for o in m.get("os_hints", [])},
                   "names": {o.get("os") for o in m.get("os_hints", [])},
                   "out": int(m.get("conns_out", 0)), "in": int(m.get("conns_in", 0)),
                   "active": int(m.get("active", 0))}
    for h, rec in hosts.items():
        rec["active"] = rec["out"] + rec["in"]
        rec["names"] = {OS[t] for t, _ in rec["os"]}
    if have != hosts:
        diff = {h: (have.get(h), hosts.get(h)) for h in set(have) | set(hosts)
                if have.get(h) != hosts.get(h)}
        run.err("mon hosts (got, expected): %s" % diff)
    got = st.get("mon", "all-flows")
    want_tot = {"flows": len(conns), "packets": sum(sum(c.pk) for c in conns),
                "bytes": sum(sum(c.by) for c in conns), "hosts": len(hosts),
                "flows_active": len(conns)}
    have_tot = [{k: int(g["decoded"].get(k, 0)) for k in want_tot} for g in got]
    if have_tot != [want_tot]:
        run.err("mon totals %s, expected %s" % (have_tot, want_tot))

    st.refused("fw")
    st.refused("nat")
    st.union(["mon", "lb"])


# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=1, choices=(1, 2, 3))
    ap.add_argument("--mbxd", default=mbxrun.MBXD)
    ap.add_argument("--chain", default="both", choices=("fw-nat", "mon-lb", "both"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--break", dest="brk", choices=sorted(BREAKS),
                    help="self-test: run mbxd as the named bug would behave; the run must fail")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("chains_golden: SKIP: needs root (network namespace, veth)")
        return 77
    for exe in (args.mbxd, MBXCTL):
        if not os.access(exe, os.X_OK):
            print("chains_golden: FAIL: no %s" % exe)
            return 1
    workdir = tempfile.mkdtemp(prefix="chains_golden_%dw_" % args.workers)
    errors = []
    t0 = time.time()
    print("chains_golden, %d worker%s:" % (args.workers, "s" if args.workers > 1 else ""))
    for name, fn in (("fw-nat", test_chain_a), ("mon-lb", test_chain_b)):
        if args.chain not in (name, "both"):
            continue
        try:
            fn(args, workdir, errors)
        except Exception as e:  # noqa: BLE001 - report, clean up, go on, fail
            traceback.print_exc()
            errors.append("%s: %s: %s" % (name, type(e).__name__, e))
    if args.brk:
        print("  --break %s: %s" % (args.brk, BREAKS[args.brk]))
    if args.keep or errors:
        print("chains_golden: work directory kept: %s" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if errors:
        print("chains_golden: FAIL: %d mismatch%s:" % (len(errors), "es" if len(errors) > 1
                                                       else ""))
        for e in errors[:60]:
            print("  - " + e)
        if len(errors) > 60:
            print("  - ... and %d more" % (len(errors) - 60))
        return 1
    print("chains_golden: PASS in %.1f s" % (time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
