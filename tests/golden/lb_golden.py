#!/usr/bin/python3
"""Golden test of the lb NF: packets in, packets out, compared field by field.

mbxd --nf lb,vip=198.18.0.10:80,backends=[10.1.0.1:8080@1,10.1.0.2:8080@2,
10.1.0.3@1,10.1.0.4:8081@3] with 1 or 2 workers. This script computes the
Maglev table itself, from the paper's algorithm and DPDK's jhash written
again in Python (the known answers in tests/unit/test_maglev.c pin both),
and checks, judging only the packets that come out:

- Clients: 480 connections (TCP and UDP, some UDP without checksum, one
  with IP options) from 60 hosts to VIP:80, two packets each. Every packet
  must leave on the outside exactly as sent but for the destination set to
  the backend Maglev's table names for the connection (hash of its key mod
  65537) and the port to that backend's, checksums computed afresh by scapy
  (a UDP checksum of 0 stays 0), per-connection order kept. The backends'
  shares of the connections must be exactly the ones computed, and close to
  their weights (1:2:1:3).
- Replies: each backend answers each of its connections; every reply must
  reach the inside as sent but for the source set back to VIP:80.
- Traffic not for the VIP (another address, another port, ICMP to the VIP,
  IPv6, ARP) passes unchanged both ways.
- Counters of lb (telemetry) and the ports: connections_new, to_backend,
  from_backend, passed, no drops.

Port 0 (inside) is net_pcap with rx_pcap/tx_pcap; port 1 (outside) is a
veth in a namespace of the test's own, the peer this script on an
AF_PACKET socket. Usage: /usr/bin/python3 tests/golden/lb_golden.py
[--workers N] [--mbxd PATH] [--keep]. Exits 0 on success, 1 on mismatches,
77 (skipped) when not root.
"""
import argparse
import ipaddress
import logging
import os
import shutil
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import mbxrun  # noqa: E402
import wire  # noqa: E402

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
try:
    from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_Router_Alert
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP, Ether
    from scapy.packet import Raw
    from scapy.utils import RawPcapReader, wrpcap
except ImportError as e:
    sys.exit("lb_golden: needs Debian's python3-scapy: run it with /usr/bin/python3 (%s)" % e)

VIP, VPORT = "198.18.0.10", 80
BACKENDS = [("10.1.0.1", 8080, 1), ("10.1.0.2", 8080, 2), ("10.1.0.3", 80, 1),
            ("10.1.0.4", 8081, 3)]
SPEC = "lb,vip=%s:%d,backends=[10.1.0.1:8080@1,10.1.0.2:8080@2,10.1.0.3@1,10.1.0.4:8081@3]" % (
    VIP, VPORT)
TABLE = 65537
IN_MAC, OUT_MAC = "02:00:00:00:01:01", "02:00:00:00:02:01"
HOSTS, PER_HOST = 60, 8
PACE = 64

# -- Maglev and DPDK's jhash, as nfs/lb/maglev.c and lb.c use them --------
M32 = 0xffffffff


def _rot(x, k):
    return ((x << k) | (x >> (32 - k))) & M32


def jhash(data, seed):
    """rte_jhash() of data (a multiple of 4 bytes) on a little-endian CPU."""
    n = len(data)
    a = b = c = (0xdeadbeef + n + seed) & M32
    k = struct.unpack("<%dI" % (n // 4), data)
    i = 0
    while n > 12:
        a, b, c = (a + k[i]) & M32, (b + k[i + 1]) & M32, (c + k[i + 2]) & M32
        for r in (4, 6, 8, 16, 19, 4):  # __rte_jhash_mix: (a, b, c) -> (b, c, a) each step
            a = ((a - c) & M32) ^ _rot(c, r)
            c = (c + b) & M32
            a, b, c = b, c, a
        i, n = i + 3, n - 12
    if n == 0:
        return c
    if n == 12:
        c = (c + k[i + 2]) & M32
    if n >= 8:
        b = (b + k[i + 1]) & M32
    a = (a + k[i]) & M32
    for r in (14, 11, 25, 16, 4, 14, 24):  # __rte_jhash_final: (c, b) -> (a, c) each step
        c = ((c ^ b) - _rot(b, r)) & M32
        a, b, c = b, c, a
    return b


def addr16(text):
    return ipaddress.ip_address(text).packed.ljust(16, b"\0")


def maglev(backends, size):
    """The table of indices into backends, filled as the paper says."""
    names = [addr16(a) + struct.pack(">H", p) + bytes([4, 0]) for a, p, _ in backends]
    order = sorted(range(len(names)), key=lambda i: names[i])
    pos = {i: jhash(names[i], 0x6d61676c) % size for i in order}
    skip = {i: jhash(names[i], 0x65763031) % (size - 1) + 1 for i in order}
    table, filled = [None] * size, 0
    while True:
        for i in order:
            for _ in range(backends[i][2]):
                p = pos[i]
                while table[p] is not None:
                    p = (p + skip[i]) % size
                table[p], pos[i] = i, p
                filled += 1
                if filled == size:
                    return table


def flow_key(proto, src, dst, sport, dport):
    """struct mbx_flow_key, as lb hashes it."""
    return addr16(src) + addr16(dst) + struct.pack(">HHBBH", sport, dport, proto, 4, 0)


# -- The plan ------------------------------------------------------------

class Flow:
    def __init__(self, idx, table):
        self.idx = idx
        self.host = "10.0.%d.%d" % (idx // PER_HOST // 200, idx // PER_HOST % 200 + 1)
        self.proto = "udp" if idx % 3 == 0 else "tcp"
        self.sport = 1024 + (idx * 7919) % 60000
        self.udp0 = self.proto == "udp" and idx % 4 == 0
        num = 17 if self.proto == "udp" else 6
        self.backend = table[jhash(flow_key(num, self.host, VIP, self.sport, VPORT), 0x6c623031)
                             % TABLE]

    def pkt(self, seq, reply=False):
        tag = b"lbg %04d %s %d|" % (self.idx, b"back" if reply else b"out", seq)
        data = tag + bytes((self.idx + i) & 0xff for i in range(self.idx % 90))
        baddr, bport, _ = BACKENDS[self.backend]
        if reply:
            eth, ip = Ether(src=OUT_MAC, dst=IN_MAC), IP(src=baddr, dst=self.host)
            ports = dict(sport=bport, dport=self.sport)
        else:
            opts = [IPOption_Router_Alert()] if self.idx == 5 else []
            eth, ip = Ether(src=IN_MAC, dst=OUT_MAC), IP(src=self.host, dst=VIP, options=opts)
            ports = dict(sport=self.sport, dport=VPORT)
        l4 = UDP(**ports) if self.proto == "udp" else TCP(flags="PA", seq=1000 + seq, **ports)
        if self.udp0:
            l4.chksum = 0
        return Ether(bytes(eth / ip / l4 / Raw(data)))

    def expect(self, seq, reply=False):
        """The packet as it must come out: one endpoint rewritten, checksums afresh."""
        p = self.pkt(seq, reply)
        baddr, bport, _ = BACKENDS[self.backend]
        l4 = p[UDP] if UDP in p else p[TCP]
        if reply:
            p[IP].src, l4.sport = VIP, VPORT
        else:
            p[IP].dst, l4.dport = baddr, bport
        del p[IP].chksum
        if not self.udp0:
            del l4.chksum
        return bytes(Ether(bytes(p)))


def others():
    """Traffic that is not for the VIP: (inside frame, outside frame) pairs, both ways."""
    e_in, e_out = Ether(src=IN_MAC, dst=OUT_MAC), Ether(src=OUT_MAC, dst=IN_MAC)
    return [
        (e_in / IP(src="10.0.9.1", dst="198.18.0.11") / TCP(sport=5000, dport=80) / Raw(b"o1"),
         e_out / IP(src="198.18.0.11", dst="10.0.9.1") / TCP(sport=80, dport=5000) / Raw(b"o1")),
        (e_in / IP(src="10.0.9.1", dst=VIP) / UDP(sport=5000, dport=53) / Raw(b"o2"),
         e_out / IP(src=VIP, dst="10.0.9.1") / UDP(sport=53, dport=5000) / Raw(b"o2")),
        (e_in / IP(src="10.0.9.1", dst=VIP) / ICMP(type=8, id=9) / Raw(b"o3"),
         e_out / IP(src=VIP, dst="10.0.9.1") / ICMP(type=0, id=9) / Raw(b"o3")),
        (e_in / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=80) / Raw(b"o4"),
         e_out / IPv6(src="2001:db8::2", dst="2001:db8::1") / UDP(sport=80, dport=1) / Raw(b"o4")),
        (e_in / ARP(psrc="10.0.9.1", pdst=VIP), e_out / ARP(op=2, psrc=VIP, pdst="10.0.9.1")),
    ]


def tag_of(frame):
    i = frame.find(b"lbg ")
    return frame[i:frame.index(b"|", i)] if i >= 0 else frame


# -- The run -------------------------------------------------------------

def run(args, workdir, errors):
    def err(msg):
        errors.append(msg)

    table = maglev(BACKENDS, TABLE)
    flows = [Flow(i, table) for i in range(HOSTS * PER_HOST)]
    other = [(bytes(a), bytes(b)) for a, b in others()]
    inside = [bytes(f.pkt(s)) for s in (0, 1) for f in flows] + [a for a, _ in other]
    wrpcap(os.path.join(workdir, "inside.pcap"), [Ether(x) for x in inside])
    out_inside = os.path.join(workdir, "out_inside.pcap")
    for f in flows:
        f.out = [f.expect(0), f.expect(1)]
        f.back = f.expect(0, reply=True)
    want_out = {tag_of(x): x for f in flows for x in f.out}
    want_out.update({a: a for a, _ in other})

    ns = wire.Netns("lbg")
    proc = None
    try:
        peer = ns.veth("va", "vb")
        prefix = mbxrun.unique_prefix("golden_lb")
        lcores = "0-1" if args.workers == 1 else "(0-%d)@(0-1)" % args.workers
        argv = ns.argv([args.mbxd] + mbxrun.eal_args(prefix, lcores=lcores, vdevs=[
            "net_pcap0,rx_pcap=%s,tx_pcap=%s" % (os.path.join(workdir, "inside.pcap"), out_inside),
            "net_pcap1,iface=vb"]) + ["--", "--nf", SPEC, "--idle-sleep-us", "50"])
        proc = mbxrun.Proc(argv, prefix, log_path=os.path.join(workdir, "mbxd.log"))

        # clients -> backends
        got = peer.recv_until(len(want_out), timeout=30)
        got += peer.recv(0.3)
        seen, per_backend = {}, [0] * len(BACKENDS)
        for fr in got:
            t = tag_of(fr)
            if t not in want_out:
                err("outside: unexpected frame %s" % Ether(fr).summary())
            elif fr != want_out[t]:
                err("outside: %s differs:\n  got  %s\n  want %s" % (
                    t, Ether(fr).summary(), Ether(want_out[t]).summary()))
            seen.setdefault(t, []).append(fr)
        for t in want_out:
            if len(seen.get(t, [])) != 1:
                err("outside: %s came out %d times" % (t, len(seen.get(t, []))))
        at = {tag_of(fr): i for i, fr in enumerate(got)}
        for f in flows:
            if at.get(tag_of(f.out[0]), -1) > at.get(tag_of(f.out[1]), len(got)):
                err("outside: flow %d out of order" % f.idx)
            per_backend[f.backend] += 1
        # the shares are Maglev's, and so near the weights 1:2:1:3
        wsum = sum(w for _, _, w in BACKENDS)
        for i, (a, _, w) in enumerate(BACKENDS):
            if abs(per_backend[i] - len(flows) * w / wsum) > 0.25 * len(flows) * w / wsum:
                err("backend %s got %d of %d connections, weight %d of %d" % (
                    a, per_backend[i], len(flows), w, wsum))

        # backends -> clients, paced by what mbxd received
        replies = [bytes(f.pkt(0, reply=True)) for f in flows] + [b for _, b in other]
        for i, fr in enumerate(replies):
            peer.send(fr)
            if (i + 1) % PACE == 0 or i + 1 == len(replies):
                mbxrun.wait_until(lambda: proc.query("/mbx/port", "1")["rx_packets"] >= i + 1,
                                  what="mbxd to receive the replies")
        want_in = {tag_of(f.back): f.back for f in flows}
        want_in.update({b: b for _, b in other})
        mbxrun.wait_until(lambda: proc.query("/mbx/port", "0")["tx_packets"] >= len(want_in),
                          what="the replies to leave on port 0")
        lb = proc.query("/mbx/nf", "lb")
        exp = {"connections_new": len(flows), "connections_ended": 0,
               "to_backend": 2 * len(flows), "from_backend": len(flows),
               "passed": 2 * (len(other) - 1), "no_backend_drops": 0,
               "backend_removed_drops": 0}
        if lb != exp:
            err("telemetry /mbx/nf,lb: %s, expected %s" % (lb, exp))
        st = proc.query("/mbx/stats")
        for k in ("nf_dropped", "tx_dropped", "handoff_dropped", "table_full_drops",
                  "reply_key_conflicts"):
            if st.get(k) != 0:
                err("worker counter %s: %s, expected 0" % (k, st.get(k)))
        if st.get("flows_created") != len(flows) + 4:
            err("flows_created %s, expected %d" % (st.get("flows_created"), len(flows) + 4))
        rc = proc.stop()
        proc = None
        if rc != 0:
            err("mbxd exited with %s after SIGTERM" % rc)

        got_in = [bytes(d) for d, _ in RawPcapReader(out_inside)]
        seen_in = {}
        for fr in got_in:
            t = tag_of(fr)
            if t not in want_in or fr != want_in[t]:
                err("inside: unexpected or wrong frame %s" % Ether(fr).summary())
            seen_in[t] = seen_in.get(t, 0) + 1
        for t in want_in:
            if seen_in.get(t) != 1:
                err("inside: %s came out %s times" % (t, seen_in.get(t, 0)))
        print("lb_golden, %d worker(s): %d connections to %s, %d packets out, %d replies back" % (
            args.workers, len(flows), "/".join(str(n) for n in per_backend), len(got),
            len(got_in)))
    finally:
        if proc is not None:
            proc.stop()
        ns.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=1, choices=(1, 2, 3))
    ap.add_argument("--mbxd", default=mbxrun.MBXD)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("lb_golden: SKIP: needs root (network namespace, veth)")
        return 77
    workdir = tempfile.mkdtemp(prefix="lb_golden_%dw_" % args.workers)
    errors = []
    t0 = time.time()
    try:
        run(args, workdir, errors)
    except Exception as e:  # noqa: BLE001 - report, clean up, fail
        errors.append("%s: %s" % (type(e).__name__, e))
    if args.keep or errors:
        print("lb_golden: work directory kept: %s" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if errors:
        print("lb_golden: FAIL: %d mismatch(es):" % len(errors))
        for e in errors[:40]:
            print("  - " + e)
        return 1
    print("lb_golden: PASS in %.1f s" % (time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
