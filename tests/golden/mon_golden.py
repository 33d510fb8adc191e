#!/usr/bin/python3
"""Golden test of the mon NF: packets pass unchanged, and the state mon
exports is exactly what was sent.

mbxd --nf mon,flows_file=... (1 or 2 workers) sits between two veth wires in
a network namespace of the test's own (tests/lib/wire.py; port 0, the
inside, is net_af_packet on mi, port 1 on mo). The script plays both sides
in lockstep -- one frame sent, the same frame awaited on the other wire --
so mbxd sees packets in the order they were sent, whichever worker owns
them; what was sent and received is kept as sent.pcap and received.pcap.
Traffic, interleaved: TCP from inside clients with OS-typical SYNs (TTL
classes 64/128/255 a few hops down, windows), one answered by a RST, one
picked up mid-stream; UDP; ICMP echo; outside clients to inside servers
(TCP answered by SYN-ACK or RST, UDP answered or not); IPv4 and IPv6.

Checked: every frame leaves by the other port byte for byte, nothing else
leaves; per-flow state (GetPerflow, decoded by the Python client's
decode_state) of every flow and no other: packets, bytes (IP datagrams) and
TCP flags per direction, originator side, midstream, first_ns and last_ns
within the run and in the order of the flows' first and last packets;
multi-flow: exactly the inside hosts, once each, with the services that
answered (SYN-ACK, UDP reply; not a RST, not an unanswered datagram), the
(TTL class, window) hints of their SYNs with OS names, connection counts and
active flows; all-flows totals; after DelPerflow, one JSON line per flow in
flows_file equal to its exported state, end "deleted"; mon's counters; port
counters; exit code 0 on SIGTERM.

Usage: /usr/bin/python3 tests/golden/mon_golden.py [--workers N] [--mbxd PATH] [--keep]
(root, iproute2, Debian's python3-scapy and python3-protobuf). Exits 0 on
success, 1 with a list of mismatches, 77 (skipped) if not root.
"""
import argparse
import ipaddress
import json
import os
import random
import shutil
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import mbxrun  # noqa: E402
import wire  # noqa: E402

sys.path.insert(0, os.path.join(mbxrun.BUILD, "controller-shim", "python"))
try:
    import mbx  # noqa: E402
    from scapy.all import ICMP, IP, TCP, UDP, Ether, IPv6, Raw, wrpcap  # noqa: E402
except ImportError as e:
    sys.exit("mon_golden: needs Debian's python3-scapy and python3-protobuf and a build "
             "(MBX_BUILD): %s" % e)

MACS = {True: ("02:00:00:00:01:01", "02:00:00:00:01:fe"),    # sent from the inside
        False: ("02:00:00:00:02:01", "02:00:00:00:02:fe")}
OS = {64: "linux/unix", 128: "windows", 255: "solaris/network"}


def ttl_class(ttl):
    return 64 if ttl <= 64 else 128 if ttl <= 128 else 255


class Flow:
    """One flow: its originator-direction key and the frames of each direction."""

    def __init__(self, proto, src, sport, dst, dport, inside):
        self.proto, self.src, self.sport, self.dst, self.dport = proto, src, sport, dst, dport
        self.inside = inside          # the originator is on the inside
        self.sends = []               # (direction 0/1, frame)
        self.packets, self.bytes, self.flags = [0, 0], [0, 0], [0, 0]
        self.midstream = None

    def key(self):
        return (self.proto, self.src, self.sport, self.dst, self.dport)

    def add(self, d, l4, ttl=64, data=b""):
        s, t = (self.src, self.dst) if d == 0 else (self.dst, self.src)
        l3 = IPv6(src=s, dst=t, hlim=ttl) if ":" in s else IP(src=s, dst=t, ttl=ttl)
        mac = MACS[self.inside == (d == 0)]
        frame = bytes(Ether(src=mac[0], dst=mac[1]) / l3 / l4 / Raw(data))
        self.sends.append((d, frame))
        self.packets[d] += 1
        self.bytes[d] += len(frame) - 14     # the IP datagram
        self.flags[d] |= int(l4[TCP].flags) if TCP in l4 else 0
        if self.midstream is None:   # TCP not opened by the originator's SYN
            self.midstream = self.proto == 6 and (d != 0 or self.flags[0] & 0x12 != 0x02)


class Plan:
    def __init__(self, seed):
        self.rnd = random.Random(seed)
        self.flows = []
        self.hosts = {}     # inside host -> expected record

    def host(self, addr):
        return self.hosts.setdefault(addr, {"services": set(), "os": set(), "out": 0, "in": 0})

    def flow(self, proto, src, sport, dst, dport, inside):
        f = Flow(proto, src, sport, dst, dport, inside)
        self.flows.append(f)
        self.host(src if inside else dst)["out" if inside else "in"] += 1
        return f

    def tcp(self, src, sport, dst, dport, inside, syn_ttl=64, win=64240, answer="SA",
            n_out=0, n_back=0):
        f = self.flow(6, src, sport, dst, dport, inside)
        f.add(0, TCP(sport=sport, dport=dport, flags="S", seq=1000, window=win,
                     options=[("MSS", 1460), ("NOP", None), ("WScale", 7)]), ttl=syn_ttl)
        if inside:
            self.host(src)["os"].add((ttl_class(syn_ttl), win))
        if answer == "RA":
            f.add(1, TCP(sport=dport, dport=sport, flags="RA", ack=1001, window=0))
            return f
        f.add(1, TCP(sport=dport, dport=sport, flags="SA", seq=5000, ack=1001, window=65160))
        if not inside:
            self.host(dst)["services"].add((6, dport))
        f.add(0, TCP(sport=sport, dport=dport, flags="A", seq=1001, ack=5001))
        for d, flags in [(0, "PA")] * n_out + [(1, "PA")] * n_back + [(0, "FA"), (1, "FA"),
                                                                      (0, "A")]:
            ports = (sport, dport) if d == 0 else (dport, sport)
            f.add(d, TCP(sport=ports[0], dport=ports[1], flags=flags),
                  data=self.payload() if flags == "PA" else b"")
        return f

    def udp(self, src, sport, dst, dport, inside, n_out=1, n_back=1):
        f = self.flow(17, src, sport, dst, dport, inside)
        for d in [0] * n_out + [1] * n_back:
            f.add(d, UDP(sport=(sport, dport)[d], dport=(dport, sport)[d]), data=self.payload())
        if n_back and not inside:
            self.host(dst)["services"].add((17, dport))
        return f

    def payload(self):
        return self.rnd.randbytes(self.rnd.randrange(1, 400))

    def build(self):
        # inside clients: Linux-like, Windows-like (two windows), a router-like TTL
        self.tcp("10.1.0.1", 40001, "203.0.113.10", 443, True, 62, 64240, n_out=3, n_back=2)
        self.tcp("10.1.0.1", 40002, "203.0.113.11", 80, True, 64, 64240, n_out=1, n_back=1)
        self.udp("10.1.0.1", 40003, "203.0.113.10", 53, True)
        echo = self.flow(1, "10.1.0.1", 0x77, "203.0.113.10", 0x77, True)
        echo.add(0, ICMP(type=8, id=0x77, seq=1), data=b"ping")
        echo.add(1, ICMP(type=0, id=0x77, seq=1), data=b"ping")
        self.tcp("10.1.0.2", 50001, "203.0.113.10", 443, True, 125, 8192, n_out=2, n_back=1)
        self.tcp("10.1.0.2", 50002, "203.0.113.11", 443, True, 128, 65535)
        self.tcp("10.1.0.3", 1022, "203.0.113.11", 22, True, 250, 4128, answer="RA")
        mid = self.flow(6, "10.1.0.1", 40004, "203.0.113.12", 8080, True)
        mid.add(0, TCP(sport=40004, dport=8080, flags="A", seq=77), data=b"mid-stream")
        mid.add(1, TCP(sport=8080, dport=40004, flags="A", ack=87))
        self.tcp("2001:db8:1::1", 40001, "2001:db8:2::10", 443, True, 63, 28800, n_out=1)
        self.udp("2001:db8:1::1", 40002, "2001:db8:2::10", 53, True)
        # outside clients to inside servers: their SYNs tell nothing about inside hosts
        self.tcp("198.51.100.7", 33001, "10.1.0.50", 22, False, 50, 1024, n_out=1, n_back=2)
        self.tcp("198.51.100.7", 33002, "10.1.0.50", 80, False, 117, 8192, n_back=3)
        self.tcp("198.51.100.8", 33003, "10.1.0.50", 23, False, 50, 1024, answer="RA")
        self.udp("198.51.100.8", 5353, "10.1.0.50", 53, False, n_back=2)
        self.udp("198.51.100.8", 5354, "10.1.0.50", 161, False, n_back=0)
        self.tcp("2001:db8:2::7", 33004, "2001:db8:1::50", 443, False, 60, 1024, n_back=1)
        self.udp("2001:db8:2::7", 33005, "2001:db8:1::50", 123, False)
        # interleave, keeping each flow's order
        queues = [list(f.sends) for f in self.flows]
        self.sequence = []
        while any(queues):
            i = self.rnd.choice([i for i, q in enumerate(queues) if q])
            d, frame = queues[i].pop(0)
            self.sequence.append((self.flows[i], d, frame))


def addr_str(b):
    return str(ipaddress.ip_address(bytes(b)))


def test(args, workdir):
    errs, plan = [], Plan(seed=7100 + args.workers)
    plan.build()
    flows_file = os.path.join(workdir, "flows.json")
    sock = os.path.join(workdir, "mbx.sock")
    lcores = "0-1" if args.workers == 1 else "(0-%d)@(0-1)" % args.workers
    with wire.Netns("mongold") as ns:
        inside, outside = ns.veth("ti", "mi"), ns.veth("to", "mo")
        prefix = mbxrun.unique_prefix("golden_mon")
        argv = ns.argv([args.mbxd] + mbxrun.eal_args(prefix, lcores=lcores, vdevs=[
            "net_af_packet0,iface=mi", "net_af_packet1,iface=mo"]) + [
            "--", "--nf", "mon,flows_file=" + flows_file, "--idle-sleep-us", "50",
            "--control", "unix:" + sock])
        proc = mbxrun.Proc(argv, prefix, log_path=os.path.join(workdir, "mbxd.log"))
        try:
            # generous: EAL start-up can crawl on a shared, loaded machine
            mbxrun.wait_until(lambda: os.path.exists(sock) or proc.p.poll() is not None,
                              timeout=90, what="mbxd's control socket (see mbxd.log)")
            c = mbx.Client("unix:" + sock)
            # -- the traffic, in lockstep; the first and last packet of each flow
            t0, first, last, received = time.time_ns(), {}, {}, []
            for n, (f, d, frame) in enumerate(plan.sequence):
                tx, rx = (inside, outside) if f.inside == (d == 0) else (outside, inside)
                tx.send(frame)
                got = (rx.recv_until(1, 5.0) or [None])[0]
                received.append(got or b"")
                if got != frame:
                    errs.append("packet %d of %s (direction %d) %s" % (
                        n, f.key(), d, "did not come out" if got is None else
                        "came out changed: %s" % Ether(got).summary()))
                first.setdefault(f.key(), n)
                last[f.key()] = n
            t1 = time.time_ns()
            for name, frames in (("sent", [x[2] for x in plan.sequence]), ("received", received)):
                wrpcap(os.path.join(workdir, name + ".pcap"), [Ether(x) for x in frames if x])
            for port in (inside, outside):
                errs += ["unexpected frame on %s: %s" % (port.name, Ether(x).summary())
                         for x in port.recv(0.3)]

            # -- per-flow state
            got = {(ch.key.proto, addr_str(ch.key.src), ch.key.sport, addr_str(ch.key.dst),
                    ch.key.dport): c.decode_state(ch) for ch in c.get_state("per-flow", nf="mon")}
            want = {f.key(): f for f in plan.flows}
            if set(got) != set(want):
                errs.append("per-flow keys: missing %s, unexpected %s" % (
                    sorted(set(want) - set(got)), sorted(set(got) - set(want))))
            for k in sorted(set(got) & set(want)):
                s, f = got[k], want[k]
                have = ([s.orig.packets, s.reply.packets], [s.orig.bytes, s.reply.bytes],
                        [s.orig.tcp_flags, s.reply.tcp_flags],
                        s.originator_side, s.midstream)
                exp = (f.packets, f.bytes, f.flags, int(not f.inside), f.midstream)
                if have != exp:
                    errs.append("flow %s: (packets, bytes, flags, side, midstream) %s, "
                                "expected %s" % (k, have, exp))
                if not t0 - 50e6 <= s.first_ns <= s.last_ns <= t1 + 50e6:
                    errs.append("flow %s: first_ns %d, last_ns %d outside the run [%d, %d]" % (
                        k, s.first_ns, s.last_ns, t0, t1))
            for what, pos, field in (("first", first, "first_ns"), ("last", last, "last_ns")):
                order = [getattr(got[k], field) for k in sorted(pos, key=pos.get) if k in got]
                if order != sorted(order):
                    errs.append("%s_ns not in the order of the flows' %s packets" % (what, what))

            # -- multi-flow: the inside hosts' assets
            hosts = {}
            for ch in c.get_state("multi-flow", nf="mon"):
                h, m = addr_str(ch.key.src), c.decode_state(ch)
                if h in hosts:
                    errs.append("host %s reported twice" % h)
                hosts[h] = {"services": {(s.proto, s.port) for s in m.services},
                            "os": {(o.ttl_class, o.window) for o in m.os_hints},
                            "out": m.conns_out, "in": m.conns_in, "active": m.active,
                            "names": {o.os for o in m.os_hints},
                            "lost": m.services_lost + m.os_hints_lost}
            if set(hosts) != set(plan.hosts):
                errs.append("hosts %s, expected the inside hosts %s" % (
                    sorted(hosts), sorted(plan.hosts)))
            for h in sorted(set(hosts) & set(plan.hosts)):
                exp = dict(plan.hosts[h], active=plan.hosts[h]["out"] + plan.hosts[h]["in"],
                           lost=0, names={OS[t] for t, _ in plan.hosts[h]["os"]})
                errs += ["host %s: %s, expected %s" % (h, hosts[h], exp)] if hosts[h] != exp else []

            # -- all-flows totals
            tot = [c.decode_state(ch) for ch in c.get_state("all-flows", nf="mon")]
            want_tot = (len(plan.flows), sum(sum(f.packets) for f in plan.flows),
                        sum(sum(f.bytes) for f in plan.flows), len(plan.hosts), len(plan.flows))
            have_tot = tuple((t.flows, t.packets, t.bytes, t.hosts, t.flows_active) for t in tot)
            errs += ["totals (flows, packets, bytes, hosts, active) %s, expected %s" % (
                have_tot, want_tot)] if have_tot != (want_tot,) else []

            # -- finished flows: delete them all, read their JSON lines
            deleted = c.del_state(nf="mon")

            def lines():
                with open(flows_file) as fh:
                    return fh.read().splitlines()
            mbxrun.wait_until(lambda: len(lines()) >= len(plan.flows), timeout=10,
                              what="the finished flows' lines")
            recs = {(r["proto"], r["src"], r["sport"], r["dst"], r["dport"]): r
                    for r in map(json.loads, lines())}
            if (deleted, len(lines())) != (len(plan.flows),) * 2:
                errs.append("deleted %d flows, %d lines: expected %d" % (deleted, len(lines()),
                                                                        len(plan.flows)))
            for k, s in sorted(got.items()):
                r = recs.get(k)
                exp = {"first_ns": s.first_ns, "last_ns": s.last_ns, "end": "deleted",
                       "family": 6 if ":" in k[1] else 4, "midstream": s.midstream,
                       "originator_side": ("inside", "outside")[s.originator_side]}
                for d, n in (("orig", s.orig), ("reply", s.reply)):
                    exp[d] = {"packets": n.packets, "bytes": n.bytes, "tcp_flags": n.tcp_flags}
                if r is None or any(r.get(f) != v for f, v in exp.items()):
                    errs.append("flows_file line of %s: %s, expected %s" % (k, r, exp))
            ctr = proc.query("/mbx/nf", "mon")
            exp_ctr = {"flows_finished": len(plan.flows), "records_queued": len(plan.flows),
                       "records_lost_ring_full": 0, "hosts_table_full": 0}
            if ctr != exp_ctr:
                errs.append("mon counters %s, expected %s" % (ctr, exp_ctr))
            sent_in = sum(1 for f, d, _ in plan.sequence if f.inside == (d == 0))
            sent_out = len(plan.sequence) - sent_in
            for port, rx, tx in ((0, sent_in, sent_out), (1, sent_out, sent_in)):
                st = proc.query("/mbx/port", str(port))
                if (st["rx_packets"], st["tx_packets"]) != (rx, tx):
                    errs.append("port %d rx/tx %d/%d, expected %d/%d" % (
                        port, st["rx_packets"], st["tx_packets"], rx, tx))
            c.close()
        finally:
            rc = proc.stop()
        if rc != 0:
            errs.append("mbxd exited with %s after SIGTERM" % rc)
    print("mon_golden, %d worker%s: %s: %d flows, %d packets, %d inside hosts" % (
        args.workers, "s" if args.workers > 1 else "", "FAIL" if errs else "PASS",
        len(plan.flows), len(plan.sequence), len(plan.hosts)))
    return errs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=1, choices=(1, 2, 3))
    ap.add_argument("--mbxd", default=mbxrun.MBXD)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("mon_golden: SKIP: needs root (network namespace, veth)")
        return 77
    workdir = tempfile.mkdtemp(prefix="mon_golden_%dw_" % args.workers)
    try:
        errs = test(args, workdir)
    except Exception as e:  # noqa: BLE001 - report, clean up, fail
        traceback.print_exc()
        errs = ["%s: %s" % (type(e).__name__, e)]
    if args.keep or errs:
        print("mon_golden: work directory kept: %s" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    for e in errs[:40]:
        print("  - " + e)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
