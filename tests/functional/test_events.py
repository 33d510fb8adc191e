#!/usr/bin/python3
"""Event rules, judged by the packets that come out of a real mbxd.

mbxd (nat, one or two workers) sits between two veth pairs in a namespace of
the test's own; the test sends on the inside wire and reads the outside
one. Checked: BUFFER holds a flow's packets (other flows pass) and a release
in order emits every held packet in arrival order before later ones; a
release that drops counts them; a full buffer drops and counts the overflow;
DROP drops and counts; NOTIFY delivers copies, byte for byte, to a
subscribed Python client while the packets go on.
"""
import argparse
import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import mbxrun  # noqa: E402
import wire  # noqa: E402

sys.path.insert(0, os.path.join(mbxrun.BUILD, "controller-shim", "python"))
import mbx  # noqa: E402
from scapy.all import IP, UDP, Ether, Raw  # noqa: E402

FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def pkt(dport, seq, src="10.0.0.1"):
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                 IP(src=src, dst="192.0.2.1") / UDP(sport=5000, dport=dport) /
                 Raw(b"seq=%06d" % seq))


def seqs(frames, dport):
    out = []
    for f in frames:
        p = Ether(f)
        if UDP in p and p[UDP].dport == dport:
            out.append(int(bytes(p[UDP].payload)[4:]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    lcores = "0-1" if args.workers == 1 else "(0-%d)@(0-1)" % args.workers
    with wire.Netns("ev") as ns:
        inside = ns.veth("ti", "mi")
        outside = ns.veth("to", "mo")
        prefix = mbxrun.unique_prefix("events")
        sock = "/tmp/%s.sock" % prefix
        argv = ns.argv([mbxrun.MBXD] + mbxrun.eal_args(prefix, lcores=lcores, vdevs=[
            "net_af_packet0,iface=mi", "net_af_packet1,iface=mo"]) + [
            "--", "--nf", "nat,ext_ip=198.51.100.1", "--idle-sleep-us", "50",
            "--control", "unix:" + sock])
        p = mbxrun.Proc(argv, prefix, log_path="/tmp/%s.log" % prefix)
        try:
            mbxrun.wait_until(lambda: os.path.exists(sock), what="the control socket")
            c = mbx.Client("unix:" + sock)

            def stat(name):
                return next(x.value for x in c.stats().workers if x.name == name)

            # BUFFER, then release in order
            rid = c.enable_events("dport=7000", "buffer")
            for i in range(20):
                inside.send(pkt(7000, i))
                inside.send(pkt(7001, i))
            got = outside.recv_until(20)
            got += outside.recv(0.3)
            check(seqs(got, 7001) == list(range(20)), "a flow outside the filter passes")
            check(seqs(got, 7000) == [], "the buffered flow is held")
            for i in range(20, 23):
                inside.send(pkt(7000, i))
            mbxrun.wait_until(lambda: stat("event_buffered") == 23, what="23 buffered")
            r = c.disable_events(rid)
            check(r.released == 23 and r.dropped == 0, "release reports 23 released (%d, %d)"
                  % (r.released, r.dropped))
            for i in range(23, 26):
                inside.send(pkt(7000, i))
            got = outside.recv_until(26)
            check(seqs(got, 7000) == list(range(26)),
                  "held packets come out in arrival order, before later ones: %s"
                  % seqs(got, 7000)[:30])

            # BUFFER with a small limit: overflow is counted; release by dropping
            rid = c.enable_events("dport=7004", "buffer", buffer_limit=8)
            for i in range(20):
                inside.send(pkt(7004, i))
            mbxrun.wait_until(lambda: stat("event_buffered") == 23 + 8 * args.workers or
                              stat("event_buffer_overflow") >= 12, what="the buffer to fill")
            check(stat("event_buffer_overflow") == 12, "a full buffer drops and counts (%d)"
                  % stat("event_buffer_overflow"))
            r = c.disable_events(rid, release="drop")
            check(r.dropped == 8 and r.released == 0, "release by dropping drops the 8 held")
            check(seqs(outside.recv(0.3), 7004) == [], "nothing of a dropped buffer comes out")

            # DROP
            rid = c.enable_events("dport=7002,proto=udp", "drop")
            for i in range(10):
                inside.send(pkt(7002, i))
            mbxrun.wait_until(lambda: stat("event_dropped") >= 18, what="drops to be counted")
            check(seqs(outside.recv(0.3), 7002) == [], "DROP drops")
            check(stat("event_dropped") == 8 + 10, "DROP counts (%d)" % stat("event_dropped"))
            c.disable_events(rid)
            inside.send(pkt(7002, 99))
            check(seqs(outside.recv_until(1), 7002) == [99], "after disable the flow passes")

            # NOTIFY to a subscriber
            events = []
            sub = mbx.Client("unix:" + sock, timeout=10)

            def listen():
                try:
                    for ev in sub.events():
                        events.append(ev)
                        if len(events) == 5:
                            return
                except Exception as e:  # noqa: BLE001
                    events.append(e)
            t = threading.Thread(target=listen, daemon=True)
            t.start()
            rid = c.enable_events("src=10.0.0.9/32", "notify")
            sent = [pkt(7003, i, src="10.0.0.9") for i in range(5)]
            for f in sent:
                inside.send(f)
            got = outside.recv_until(5)
            t.join(10)
            check(seqs(got, 7003) == list(range(5)), "NOTIFY packets are processed as usual")
            check(len(events) == 5 and all(bytes(e.packet) == f for e, f in zip(events, sent)),
                  "the subscriber gets each packet byte for byte (%d)" % len(events))
            check(all(mbx.key_str(e.key) == "udp 10.0.0.9:5000 > 192.0.2.1:7003"
                      for e in events if not isinstance(e, Exception)), "with its flow key")
            c.disable_events(rid)
            sub.close()
            c.close()
        finally:
            rc = p.stop()
        check(rc == 0, "mbxd exits 0 (rc=%s)" % rc)
    if FAILS:
        print("\n%d check(s) failed; mbxd log: %s" % (len(FAILS), p.log_path))
        sys.exit(1)
    print("\nall checks passed")


if __name__ == "__main__":
    main()
