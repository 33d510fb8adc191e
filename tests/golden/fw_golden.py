#!/usr/bin/python3
"""Golden test of the fw NF: conversations in, packets out, compared byte for byte.

mbxd --nf fw,rules=RULES,conn_limit=3 (1 or 2 workers) sits between two veth
pairs in a network namespace of the test's own (tests/lib/wire.py); this
script plays the inside hosts on one wire and the outside hosts on the other,
in rounds: one side sends, the test waits until mbxd has forwarded or dropped
every packet of the round (telemetry), then the other side answers. Each
packet is marked with a unique IPv4 identification or IPv6 flow label.

The conversations: TCP connections opened from the inside and from the
outside through handshake, data both ways and FIN/FIN/ACK; a RST and data
after it; an out-of-window segment; SYNs denied by a rule and by the default
policy, and the answers to them; a mid-stream ACK and invalid flags as first
packets; UDP request/reply, a denied request and its reply, an unsolicited
datagram; ICMP echo and an unsolicited echo reply; ICMP errors about a
connection (port unreachable, time exceeded, ICMPv6 packet too big) and about
none; data before the handshake completes; a host over conn_limit; IPv6.

Checked: every packet that should pass leaves by the other port unchanged,
byte for byte (a mismatch is shown field by field), in per-flow order; no
other IP packet leaves; every fw counter, the worker drop counters and the
port counters equal the plan exactly, in telemetry before shutdown and in
mbxd's final printout; mbxd exits 0 on SIGTERM.

Usage: /usr/bin/python3 tests/golden/fw_golden.py [--workers N] [--mbxd PATH] [--keep]
Needs root, iproute2 and Debian's python3-scapy. Exits 0 on success, 1 with
the mismatches, 77 (skipped) when not root.
"""
import argparse
import logging
import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import mbxrun  # noqa: E402
import wire  # noqa: E402

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
try:
    from scapy.compat import raw
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import ICMPv6PacketTooBig, IPv6
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
except ImportError as e:
    sys.exit("fw_golden: needs Debian's python3-scapy: run it with /usr/bin/python3 (%s)" % e)

RULES = """\
# fw_golden: first match wins, then default=deny
deny dst=203.0.113.66                           # a blocked server
allow src=10.1.0.0/16,proto=tcp,dport=80-443
allow src=10.1.0.0/16,proto=udp,dport=53
allow src=10.1.0.0/16,proto=icmp
allow dst=10.1.0.10,proto=tcp,dport=22          # the inside SSH server
allow src=2001:db8:1::/48
"""
COUNTERS = ["conns_allowed", "conns_ended", "icmp_errors_related", "denied_by_rule",
            "tcp_no_connection", "tcp_invalid_flags", "tcp_invalid_state", "tcp_out_of_window",
            "tcp_after_close", "icmp_error_unrelated", "icmp_invalid", "conn_limit",
            "host_table_full"]
# no flow may expire during the test, however slow the machine
TIMEOUTS = ["tcp_syn_sent", "tcp_syn_recv", "tcp_established", "tcp_fin_wait", "tcp_time_wait",
            "tcp_closed", "udp_first", "udp", "icmp", "other"]
MAC_IN, MAC_OUT = "02:00:00:00:01:01", "02:00:00:00:02:01"
SETTLE = 20.0


class Pkt:
    def __init__(self, side, frame, desc, flow, drop):
        self.side, self.frame, self.desc, self.flow, self.drop = side, frame, desc, flow, drop


class Plan:
    """Rounds of packets, each sent from one side, with the fate of each."""

    def __init__(self):
        self.rounds, self.mark, self.allowed, self.related = [], 0, 0, 0

    def round(self, side):
        self.rounds.append((side, []))

    def add(self, layers, desc, flow, drop=None):
        side = self.rounds[-1][0]
        self.mark += 1
        if IP in layers:
            layers[IP].id = self.mark
        else:
            layers[IPv6].fl = self.mark
        src, dst = (MAC_IN, MAC_OUT) if side == "in" else (MAC_OUT, MAC_IN)
        pkt = Pkt(side, raw(Ether(src=src, dst=dst) / layers), desc, flow, drop)
        self.rounds[-1][1].append(pkt)
        return pkt

    def packets(self):
        return [p for _, pkts in self.rounds for p in pkts]


def ip(src, dst):
    return IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)


class Tcp:
    """A TCP connection; the client is inside unless inbound."""

    def __init__(self, plan, name, cli, srv, cport, sport, inbound=False):
        self.plan, self.name, self.cli, self.srv = plan, name, cli, srv
        self.cport, self.sport, self.inbound = cport, sport, inbound
        h = sum(map(ord, name))
        self.nxt = {"c": 0x1000000 * (h % 200) + 1, "s": 0x7000000 + 0x10101 * h}

    def seg(self, frm, flags, data=b"", drop=None, seq=None):
        """A segment from the client ("c") or the server ("s"); its sequence advances if it passes."""
        to = "s" if frm == "c" else "c"
        src, dst = (self.cli, self.srv) if frm == "c" else (self.srv, self.cli)
        sp, dp = (self.cport, self.sport) if frm == "c" else (self.sport, self.cport)
        l4 = TCP(sport=sp, dport=dp, flags=flags, window=16384,
                 seq=self.nxt[frm] if seq is None else seq,
                 ack=self.nxt[to] if "A" in flags else 0)
        if "S" in flags:
            l4.options = [("MSS", 1460), ("NOP", None), ("WScale", 7)]
        pkt = self.plan.add(ip(src, dst) / l4 / data, "%s %s %s" % (self.name, frm, flags),
                            self.name, drop)
        if drop is None and seq is None:
            self.nxt[frm] += len(data) + ("S" in flags) + ("F" in flags)
        return pkt


def build_plan():
    p = Plan()
    t1 = Tcp(p, "t1", "10.1.0.1", "203.0.113.10", 40001, 80)
    t2 = Tcp(p, "t2", "10.1.0.2", "203.0.113.11", 40002, 443)
    t3 = Tcp(p, "t3", "10.1.0.3", "203.0.113.66", 40003, 80)        # blocked server
    t4 = Tcp(p, "t4", "10.1.0.4", "203.0.113.10", 40004, 25)        # no rule: default
    t5 = Tcp(p, "t5", "198.51.100.7", "10.1.0.10", 50000, 22, True)  # opened from outside
    t6 = Tcp(p, "t6", "198.51.100.7", "10.1.0.11", 50001, 22, True)
    t9 = Tcp(p, "t9", "10.1.0.6", "203.0.113.10", 40009, 80)        # data before the SYN-ACK
    v1 = Tcp(p, "v1", "2001:db8:1::1", "2001:db8:2::1", 40010, 443)
    udp1 = ip("10.1.0.1", "203.0.113.53") / UDP(sport=5353, dport=53) / b"query-1"

    p.round("in")
    t1_syn = t1.seg("c", "S")
    t2.seg("c", "S")
    t3.seg("c", "S", drop="denied_by_rule")
    t4.seg("c", "S", drop="denied_by_rule")
    t9.seg("c", "S")
    t9.seg("c", "PA", b"too early", drop="tcp_invalid_state")
    p.add(ip("10.1.0.5", "203.0.113.10") / TCP(sport=40005, dport=80, flags="A", seq=5, ack=9),
          "mid-stream ACK", "t7", "tcp_no_connection")
    p.add(ip("10.1.0.5", "203.0.113.10") / TCP(sport=40006, dport=80, flags="SF"),
          "SYN+FIN", "t8", "tcp_invalid_flags")
    u1_query = p.add(udp1.copy(), "u1 query", "u1")
    p.add(ip("10.1.0.2", "203.0.113.53") / UDP(sport=5000, dport=123) / b"ntp",
          "u2 query (no rule)", "u2", "denied_by_rule")
    p.add(ip("10.1.0.1", "203.0.113.10") / ICMP(type=8, id=7, seq=1) / b"ping", "echo 7", "i1")
    v1.seg("c", "S")

    p.round("out")
    t1.seg("s", "SA")
    t2.seg("s", "SA")
    t3.seg("s", "SA", drop="tcp_no_connection")
    p.add(ip("203.0.113.53", "10.1.0.1") / UDP(sport=53, dport=5353) / b"answer-1", "u1 answer", "u1")
    p.add(ip("203.0.113.53", "10.1.0.2") / UDP(sport=123, dport=5000) / b"ntp",
          "u2 answer (denied flow)", "u2r", "denied_by_rule")
    p.add(ip("198.51.100.9", "10.1.0.1") / UDP(sport=53, dport=5353) / b"spoof",
          "unsolicited UDP", "u3", "denied_by_rule")
    p.add(ip("203.0.113.10", "10.1.0.1") / ICMP(type=0, id=7, seq=1) / b"ping", "echo 7 reply", "i1")
    p.add(ip("203.0.113.10", "10.1.0.1") / ICMP(type=0, id=8, seq=1) / b"ping",
          "unsolicited echo reply", "i2", "icmp_invalid")
    t5.seg("c", "S")
    t6.seg("c", "S", drop="denied_by_rule")
    p.add(ip("203.0.113.53", "10.1.0.1") / ICMP(type=3, code=3) /
          Raw(raw(Ether(u1_query.frame)[IP])[:28]),
          "port unreachable about u1", "e1")
    p.add(ip("192.0.2.254", "10.1.0.1") / ICMP(type=11) / Raw(raw(Ether(t1_syn.frame)[IP])),
          "time exceeded about t1", "e2")
    p.add(ip("203.0.113.53", "10.1.0.1") / ICMP(type=3, code=3) /
          Raw(raw(ip("10.1.0.1", "203.0.113.53") / UDP(sport=9999, dport=53))),
          "port unreachable about nothing", "e3", "icmp_error_unrelated")
    v1.seg("s", "SA")
    p.add(ip("2001:db8:2::1", "2001:db8:1::1") / UDP(sport=53, dport=53) / b"in6",
          "unsolicited UDP6", "v2", "denied_by_rule")

    p.round("in")
    t1.seg("c", "A")
    t1.seg("c", "PA", b"GET / HTTP/1.1\r\n\r\n")
    t2.seg("c", "A")
    t2.seg("c", "PA", b"hello")
    t2.seg("c", "PA", b"far ahead", drop="tcp_out_of_window", seq=t2.nxt["c"] + 5000000)
    t5.seg("s", "SA")
    p.add(udp1.copy() / b"+", "u1 query again", "u1")
    p.add(ip("10.1.0.1", "203.0.113.53") / UDP(sport=5400, dport=53) / b"q",
          "a 4th connection of 10.1.0.1", "u4", "conn_limit")
    v1.seg("c", "A")
    v1_data = v1.seg("c", "PA", b"v6 data" * 20)

    p.round("out")
    t1.seg("s", "PA", b"HTTP/1.1 200 OK\r\n\r\n" + bytes(600))
    t2.seg("s", "RA")
    t5.seg("c", "A")
    t5.seg("c", "PA", b"SSH-2.0-client\r\n")
    v1.seg("s", "PA", b"v6 answer")
    p.add(ip("2001:db8:ff::1", "2001:db8:1::1") / ICMPv6PacketTooBig(mtu=1280) /
          Raw(raw(Ether(v1_data.frame)[IPv6])[:200]), "packet too big about v1", "e4")

    p.round("in")
    t1.seg("c", "FA")
    t2.seg("c", "PA", b"late", drop="tcp_after_close")
    t5.seg("s", "PA", b"SSH-2.0-server\r\n")

    p.round("out")
    t1.seg("s", "FA")

    p.round("in")
    t1.seg("c", "A")
    p.allowed = 7       # t1, t2, t5, t9, u1, i1, v1
    p.related = 3       # e1, e2, e4
    return p


def expected(plan):
    pk = plan.packets()
    drops = [x.drop for x in pk if x.drop]
    fw = {c: drops.count(c) for c in COUNTERS}
    fw["conns_allowed"] = plan.allowed
    fw["icmp_errors_related"] = plan.related
    sent = {s: len([x for x in pk if x.side == s]) for s in ("in", "out")}
    passed = {s: len([x for x in pk if x.side == s and not x.drop]) for s in ("in", "out")}
    return {"fw": fw,
            "port0": {"rx_packets": sent["in"], "tx_packets": passed["out"]},
            "port1": {"rx_packets": sent["out"], "tx_packets": passed["in"]},
            "stats": {"nf_dropped": len(drops), "tx_dropped": 0, "handoff_dropped": 0,
                      "table_full_drops": 0}}


def frame_mark(frame):
    p = Ether(frame)
    if IP in p:
        return p[IP].id
    if IPv6 in p:
        return p[IPv6].fl
    return None


def field_diff(want, got):
    a, b = Ether(want), Ether(got)
    out = []
    while a and b:
        for f in a.fields_desc:
            va, vb = a.getfieldval(f.name), b.getfieldval(f.name)
            if va != vb:
                out.append("%s.%s %r != %r" % (a.name, f.name, vb, va))
        a, b = a.payload, b.payload
    return "; ".join(out[:6]) or "lengths %d != %d" % (len(got), len(want))


class Mbxd:
    def __init__(self, args, workdir, ns):
        self.prefix = mbxrun.unique_prefix("golden_fw")
        rules = os.path.join(workdir, "rules")
        with open(rules, "w") as f:
            f.write(RULES)
        lcores = "0-1" if args.workers == 1 else "(0-%d)@(0-1)" % args.workers
        argv = ns.argv([args.mbxd] + mbxrun.eal_args(self.prefix, lcores=lcores, vdevs=[
            "net_af_packet0,iface=mi", "net_af_packet1,iface=mo"]) + [
            "--", "--nf", "fw,rules=%s,conn_limit=3" % rules, "--idle-sleep-us", "50"] +
            sum((["--timeout", t + "=86400"] for t in TIMEOUTS), []))
        self.log = os.path.join(workdir, "mbxd.log")
        self.proc = mbxrun.Proc(argv, self.prefix, log_path=self.log)
        self.rc = "not stopped"

    def snapshot(self):
        q = self.proc.query
        return {"port0": q("/mbx/port", "0"), "port1": q("/mbx/port", "1"),
                "stats": q("/mbx/stats"), "fw": q("/mbx/nf", "fw")}

    def stop(self):
        if self.proc is not None:
            self.rc = self.proc.stop()
            self.proc = None


def diffs(exp, snap, phase):
    return ["%s%s %s: expected %s, got %s" % (phase, g, k, v, (snap.get(g) or {}).get(k))
            for g, want in exp.items() for k, v in want.items()
            if (snap.get(g) or {}).get(k) != v]


def test(args, workdir):
    errors = []
    plan = build_plan()
    ns = mbxd = None
    try:
        ns = wire.Netns("fwg")
        wires = {"in": ns.veth("ti", "mi"), "out": ns.veth("to", "mo")}
        mbxd = Mbxd(args, workdir, ns)
        mbxd.snapshot()   # up and counting
        got = {"in": [], "out": []}    # frames seen by each side
        want_tx = {"in": 0, "out": 0}
        drops = 0
        for side, pkts in plan.rounds:
            other = "out" if side == "in" else "in"
            for pk in pkts:
                wires[side].send(pk.frame)
                time.sleep(0.002)   # pace: a 2-core machine shared with others
            want_tx[other] += len([x for x in pkts if not x.drop])
            drops += len([x for x in pkts if x.drop])
            port = "port1" if other == "out" else "port0"
            deadline = time.time() + SETTLE
            while time.time() < deadline:
                got[other] += wires[other].recv(0.02)
                snap = mbxd.snapshot()
                if snap[port]["tx_packets"] >= want_tx[other] and \
                        snap["stats"]["nf_dropped"] >= drops and len(got[other]) >= want_tx[other]:
                    break
            got[other] += wires[other].recv(0.05)
        exp = expected(plan)
        snap = mbxd.snapshot()
        errors += diffs(exp, snap, "telemetry: ")
        mbxd.stop()
        if mbxd.rc != 0:
            errors.append("mbxd exited with %s after SIGTERM (see %s)" % (mbxd.rc, mbxd.log))
        with open(mbxd.log) as f:
            m = re.search(r"^\s*nf fw:(.*)$", f.read(), re.M)
        printed = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))} if m else None
        if printed != exp["fw"]:
            errors.append("final printout nf fw: %s, expected %s" % (printed, exp["fw"]))
    finally:
        if mbxd is not None:
            mbxd.stop()
        if ns is not None:
            ns.close()

    # what came out, against what should have
    by_mark = dict(enumerate(plan.packets(), 1))
    for side in ("in", "out"):
        last = {}
        for fr in got[side]:
            mark = frame_mark(fr)
            if mark is None:
                continue    # not IP: the bump in the wire passes it, nothing to judge
            pk = by_mark.get(mark)
            if pk is None or pk.side == side:
                errors.append("%s: unknown frame %s" % (side, Ether(fr).summary()))
                continue
            if pk.drop:
                errors.append("%s: %s passed, should be dropped as %s" % (side, pk.desc, pk.drop))
            elif fr != pk.frame:
                errors.append("%s: %s changed: %s" % (side, pk.desc, field_diff(pk.frame, fr)))
            if mark < last.get(pk.flow, 0):
                errors.append("%s: %s out of order in its flow" % (side, pk.desc))
            last[pk.flow] = mark
        marks = [frame_mark(fr) for fr in got[side]]
        for mark, pk in sorted(by_mark.items()):
            if pk.side != side and not pk.drop and marks.count(mark) != 1:
                errors.append("%s: %s came out %d times" % (side, pk.desc, marks.count(mark)))
    pk = plan.packets()
    print("fw_golden, %d worker%s: %s; %d packets in %d rounds, %d passed, %d dropped" % (
        args.workers, "s" if args.workers > 1 else "", "FAIL" if errors else "PASS", len(pk),
        len(plan.rounds), len([x for x in pk if not x.drop]), len([x for x in pk if x.drop])))
    print("  fw: %s" % " ".join("%s=%s" % kv for kv in expected(plan)["fw"].items()))
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=1, choices=(1, 2, 3))
    ap.add_argument("--mbxd", default=mbxrun.MBXD)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("fw_golden: SKIP: needs root (network namespace, veth)")
        return 77
    workdir = tempfile.mkdtemp(prefix="fw_golden_%dw_" % args.workers)
    try:
        errors = test(args, workdir)
    except Exception as e:  # noqa: BLE001 - report, clean up, fail
        import traceback
        traceback.print_exc()
        errors = ["%s: %s" % (type(e).__name__, e)]
    if args.keep or errors:
        print("fw_golden: work directory kept: %s" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if errors:
        print("fw_golden: FAIL: %d mismatch%s:" % (len(errors), "es" if len(errors) > 1 else ""))
        for e in errors:
            print("  - " + e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
