#!/usr/bin/python3
"""mon's state moves between two real mbxd processes and keeps counting.

A (mon, two workers) and B (mon, one worker) each sit between two veth
wires in a namespace of the test's own; the test plays inside and outside
hosts in lockstep (one frame sent, the same frame awaited on the other
wire). Flows: TCP from inside clients, TCP from an outside client to an
inside server, UDP, ICMP echo, IPv6. Then:

- A's export (mbxctl get-state --scope all -o) matches what was sent;
  mbxctl put-state -i installs it into B, and B's state equals A's at every
  scope (per-flow counters and times, host records, totals);
- more packets of the same flows, and one new flow, go through B: every
  per-flow counter is A's exported value plus exactly the new packets
  (packets, bytes, TCP flags per direction), first_ns stays A's, last_ns
  moves on; host records and totals add up likewise;
- the per-flow chunks put again are refused (EEXIST) and change nothing;
- B's SIGTERM writes every flow to its flows_file, with B's final counters.
"""
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import mbxrun  # noqa: E402
import wire  # noqa: E402

sys.path.insert(0, os.path.join(mbxrun.BUILD, "controller-shim", "python"))
import mbx  # noqa: E402
from scapy.all import ICMP, IP, TCP, UDP, Ether, IPv6, Raw  # noqa: E402

MBXCTL = os.path.join(mbxrun.BUILD, "controller-shim", "mbxctl")
FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


class Flow:
    """A flow by its originator-direction key; builds its frames and counts them."""

    def __init__(self, proto, src, sport, dst, dport, inside):
        self.proto, self.src, self.sport, self.dst, self.dport = proto, src, sport, dst, dport
        self.inside = inside

    def key(self):
        return (self.proto, self.src, self.sport, self.dst, self.dport)

    def frame(self, d, flags="", data=b"", ttl=64, win=8192):
        s, t = (self.src, self.dst) if d == 0 else (self.dst, self.src)
        sp, dp = (self.sport, self.dport) if d == 0 else (self.dport, self.sport)
        l3 = IPv6(src=s, dst=t, hlim=ttl) if ":" in s else IP(src=s, dst=t, ttl=ttl)
        l4 = {6: lambda: TCP(sport=sp, dport=dp, flags=flags, window=win),
              17: lambda: UDP(sport=sp, dport=dp),
              1: lambda: ICMP(type=8 if d == 0 else 0, id=sp)}[self.proto]()
        return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / l3 / l4 /
                     Raw(data))


class Box:
    """One mbxd running mon between an inside and an outside wire."""

    def __init__(self, ns, name, workers, tmp):
        self.inside = ns.veth("t%si" % name, "m%si" % name)
        self.outside = ns.veth("t%so" % name, "m%so" % name)
        self.sock = os.path.join(tmp, name + ".sock")
        self.flows_file = os.path.join(tmp, name + ".json")
        lcores = "0-1" if workers == 1 else "(0-%d)@(0-1)" % workers
        self.proc = mbxrun.start_mbxd(lambda prefix: ns.argv(
            [mbxrun.MBXD] + mbxrun.eal_args(prefix, lcores=lcores, vdevs=[
                "net_af_packet0,iface=m%si" % name, "net_af_packet1,iface=m%so" % name]) + [
                "--", "--nf", "mon,flows_file=" + self.flows_file, "--idle-sleep-us", "50",
                "--control", "unix:" + self.sock]),
            "monstate" + name, self.sock, os.path.join(tmp, name + ".log"), timeout=90)
        self.c = mbx.Client("unix:" + self.sock)
        self.bad = 0

    def send(self, flow, d, delta, **kw):
        """Send one frame of flow in direction d through this box; count it in delta."""
        frame = flow.frame(d, **kw)
        sender_inside = flow.inside == (d == 0)
        tx, rx = (self.inside, self.outside) if sender_inside else (self.outside, self.inside)
        tx.send(frame)
        self.bad += rx.recv_until(1, 5.0) != [frame]
        dl = delta.setdefault(flow.key(), [[0, 0], [0, 0], [0, 0]])
        dl[0][d] += 1
        dl[1][d] += len(frame) - 14
        dl[2][d] |= sum(FLAGS[ch] for ch in kw.get("flags", ""))

    def state(self):
        """{per-flow key: MonFlowState}, {host: MonHost}, MonTotals."""
        def addr(b):
            return str(ipaddress.ip_address(bytes(b)))
        flows = {(ch.key.proto, addr(ch.key.src), ch.key.sport, addr(ch.key.dst), ch.key.dport):
                 self.c.decode_state(ch) for ch in self.c.get_state("per-flow", nf="mon")}
        hosts = {addr(ch.key.src): self.c.decode_state(ch)
                 for ch in self.c.get_state("multi-flow", nf="mon")}
        tot = [self.c.decode_state(ch) for ch in self.c.get_state("all-flows", nf="mon")]
        return flows, hosts, tot[0]


def counters(s):
    return ([s.orig.packets, s.reply.packets], [s.orig.bytes, s.reply.bytes],
            [s.orig.tcp_flags, s.reply.tcp_flags])


def host_view(h):
    return ({(s.proto, s.port) for s in h.services}, {(o.ttl_class, o.window) for o in h.os_hints},
            h.conns_out, h.conns_in)


def phase1(box, fl, d1):
    web, win, dns, ssh, v6, echo = fl
    for f, ttl, w in ((web, 64, 64240), (win, 128, 65535)):
        box.send(f, 0, d1, flags="S", ttl=ttl, win=w)
        box.send(f, 1, d1, flags="SA")
        box.send(f, 0, d1, flags="A")
        box.send(f, 0, d1, flags="PA", data=b"GET / HTTP/1.1\r\n\r\n")
        box.send(f, 1, d1, flags="PA", data=b"HTTP/1.1 200 OK\r\n\r\n" + bytes(300))
    box.send(dns, 0, d1, data=b"query")
    box.send(dns, 1, d1, data=b"answer" * 20)
    box.send(ssh, 0, d1, flags="S", ttl=50, win=1024)
    box.send(ssh, 1, d1, flags="SA")
    box.send(ssh, 0, d1, flags="A")
    box.send(ssh, 1, d1, flags="PA", data=b"SSH-2.0-OpenSSH_9.2\r\n")
    box.send(v6, 0, d1, data=b"v6 query")
    box.send(v6, 1, d1, data=b"v6 answer")
    box.send(echo, 0, d1, data=b"ping")
    box.send(echo, 1, d1, data=b"ping")


def phase2(box, fl, snmp, d2):
    web, win, dns, ssh, v6, echo = fl
    box.send(web, 0, d2, flags="PA", data=b"more")
    box.send(web, 1, d2, flags="PA", data=bytes(700))
    box.send(web, 0, d2, flags="FA")
    box.send(web, 1, d2, flags="FA")
    box.send(web, 0, d2, flags="A")
    box.send(win, 1, d2, flags="RA")
    box.send(dns, 0, d2, data=b"query 2")
    box.send(ssh, 0, d2, flags="PA", data=b"SSH-2.0-client\r\n")
    box.send(v6, 1, d2, data=b"late answer")
    box.send(echo, 0, d2, data=b"ping 2")
    box.send(echo, 1, d2, data=b"ping 2")
    box.send(snmp, 0, d2, data=b"get")
    box.send(snmp, 1, d2, data=b"response")


def main():
    tmp = tempfile.mkdtemp(prefix="mbx-mon-state-")
    fl = [Flow(6, "10.2.0.1", 40001, "203.0.113.10", 443, True),
          Flow(6, "10.2.0.2", 40002, "203.0.113.11", 80, True),
          Flow(17, "10.2.0.3", 5000, "203.0.113.10", 53, True),
          Flow(6, "198.51.100.7", 33001, "10.2.0.50", 22, False),
          Flow(17, "2001:db8:1::1", 5000, "2001:db8:2::10", 53, True),
          Flow(1, "10.2.0.1", 0x99, "203.0.113.10", 0x99, True)]
    snmp = Flow(17, "198.51.100.8", 4000, "10.2.0.50", 161, False)
    ns = wire.Netns("mons")
    a = b = None
    try:
        a, b = Box(ns, "a", 2, tmp), Box(ns, "b", 1, tmp)
        d1, d2 = {}, {}
        phase1(a, fl, d1)
        check(a.bad == 0, "A passes every packet unchanged")
        dump = os.path.join(tmp, "dump.bin")
        r = subprocess.run([MBXCTL, "--at", "unix:" + a.sock, "get-state", "--scope", "all",
                            "-o", dump], capture_output=True, text=True)
        check(r.returncode == 0, "mbxctl get-state --scope all -o exports A " + r.stderr)
        fa, ha, ta = a.state()
        check({k: counters(s) for k, s in fa.items()} ==
              {k: tuple(v) for k, v in d1.items()},
              "A's per-flow counters are what was sent")
        check(host_view(ha["10.2.0.50"]) == ({(6, 22)}, set(), 0, 1) and
              host_view(ha["10.2.0.1"])[1:] == ({(64, 64240)}, 2, 0) and
              host_view(ha["10.2.0.2"])[1:] == ({(128, 65535)}, 1, 0) and len(ha) == 5,
              "A's host records: services, OS hints, connections (%d hosts)" % len(ha))

        r = subprocess.run([MBXCTL, "--at", "unix:" + b.sock, "put-state", "-i", dump],
                           capture_output=True, text=True)
        check(r.returncode == 0 and '"installed"' in r.stdout,
              "mbxctl put-state -i installs A's dump into B " + r.stdout + r.stderr)
        fb, hb, tb = b.state()
        check(fb == fa, "B's per-flow state equals A's, flow for flow (%d)" % len(fb))
        check(hb == ha, "B's host records equal A's (%d)" % len(hb))
        check(tb == ta, "B's totals equal A's: %s" % str(tb).replace("\n", " "))

        phase2(b, fl, snmp, d2)
        check(b.bad == 0, "B passes every packet unchanged")
        fb2, hb2, tb2 = b.state()
        ok = set(fb2) == set(fa) | {snmp.key()}
        for k, s in fa.items():
            dl = d2.get(k, [[0, 0], [0, 0], [0, 0]])
            want = ([s.orig.packets + dl[0][0], s.reply.packets + dl[0][1]],
                    [s.orig.bytes + dl[1][0], s.reply.bytes + dl[1][1]],
                    [s.orig.tcp_flags | dl[2][0], s.reply.tcp_flags | dl[2][1]])
            got = fb2.get(k)
            good = got is not None and counters(got) == want and \
                got.first_ns == s.first_ns and (got.last_ns > s.last_ns) == (k in d2)
            if not good:
                print("     %s: A %s + sent %s, B has %s" % (k, counters(s), dl,
                                                            got and counters(got)))
            ok &= good
        check(ok, "B's counters are A's exported values plus exactly the new packets")
        check(counters(fb2[snmp.key()]) == tuple(d2[snmp.key()]), "a new flow counts from zero")
        srv = host_view(hb2["10.2.0.50"])
        check(srv == ({(6, 22), (17, 161)}, set(), 0, 2) and hb2["10.2.0.50"].active == 2,
              "the server's record adds the new service and connection: %s" % (srv,))
        check(all(host_view(hb2[h]) == host_view(ha[h]) for h in ha if h != "10.2.0.50"),
              "the other host records are A's")
        new_p = sum(sum(v[0]) for v in d2.values())
        new_b = sum(sum(v[1]) for v in d2.values())
        check((tb2.flows, tb2.packets, tb2.bytes, tb2.hosts, tb2.flows_active) ==
              (ta.flows + 1, ta.packets + new_p, ta.bytes + new_b, ta.hosts, ta.flows_active + 1),
              "B's totals are A's plus the new flow and packets")

        chunks = [ch for ch in a.c.get_state("per-flow", nf="mon")]
        try:
            b.c.put_state(chunks)
            check(False, "putting the same flows again is refused")
        except mbx.MbxError as e:
            check(e.code == 17 and "nothing installed" in e.message,
                  "putting the same flows again is refused: %s" % e.message)
        check(b.state()[0] == fb2, "and changes nothing")

        b.c.close()
        rc = b.proc.stop()
        check(rc == 0, "B exits 0 on SIGTERM")
        b = None
        with open(os.path.join(tmp, "b.json")) as fh:
            recs = [json.loads(x) for x in fh.read().splitlines()]
        byk = {(r["proto"], r["src"], r["sport"], r["dst"], r["dport"]): r for r in recs}
        check(len(recs) == len(fb2) and all(
            k in byk and [byk[k]["orig"]["packets"], byk[k]["reply"]["packets"]] ==
            counters(s)[0] and [byk[k]["orig"]["bytes"], byk[k]["reply"]["bytes"]] ==
            counters(s)[1] and byk[k]["first_ns"] == s.first_ns and
            byk[k]["last_ns"] == s.last_ns for k, s in fb2.items()),
            "at shutdown B writes every flow with its final counters (%d lines)" % len(recs))
    finally:
        for box in (a, b):
            if box is not None:
                box.proc.stop()
        ns.close()
    if FAILS:
        print("\n%d check(s) failed; logs in %s" % (len(FAILS), tmp))
        sys.exit(1)
    shutil.rmtree(tmp, ignore_errors=True)
    print("\nall checks passed")


if __name__ == "__main__":
    main()
