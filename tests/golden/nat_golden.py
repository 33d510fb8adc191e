#!/usr/bin/python3
"""Golden test of the nat NF: packets in, packets out, compared field by field.

What it checks, on mbxd --nf nat,ext_ip=198.51.100.1,ports=20000-23199 with
1 or 2 workers:

- Outbound: 306 IPv4 flows (TCP, UDP and ICMP echo, a third each) from 9
  inside hosts (eight with 27 flows each, one with 90 so that it needs a
  second port block), 3-4 packets per flow, interleaved. Hosts reuse each
  other's source ports and ICMP identifiers. Each translated packet must
  equal, byte for byte, what was sent with the source set to ext_ip and the
  source port (ICMP identifier) to the flow's external port and the
  checksums computed afresh by scapy; this covers TTL, TOS, DF, IP and TCP
  options, payloads, Ethernet padding and UDP checksum 0 (no checksum, which
  must stay 0). Every flow has one external port for all its packets; ports
  are distinct across flows and inside the configured range; each host's
  ports lie in 64-port blocks of its own, as few as its flows need.
  Per-flow packet order is kept.
- Replies: the outside peer answers every flow at (ext_ip, external port);
  each reply must reach the inside as sent but with the destination set back
  to the inside host and port (identifier), checksums recomputed, in order.
- Malformed packets (bad IHL, total length beyond the frame or below the
  header, bad IPv4 header checksum, fragments, truncated TCP header, bad TCP
  data offset, bad UDP length, truncated Ethernet/VLAN/IPv4/IPv6/UDP/ICMP,
  bad versions, bad IPv6 payload length and extension header), most of them
  built on real flows' 5-tuples, in both directions: absent from the output;
  the /mbx parse counters must equal exactly what was injected, reason by
  reason (every other reason 0).
- Unsupported inside packets (ICMP errors, ICMP timestamp, GRE, SCTP) are
  dropped and counted as unsupported_drops; unsolicited outside packets
  (unused external ports in used and unused blocks, ports outside the pool,
  another address, a mapped port from another remote address or port,
  unknown ICMP identifiers) are dropped and counted as no_mapping_drops.
- IPv6 (TCP, UDP, ICMPv6, a hop-by-hop header) and ARP pass unchanged in
  both directions (ipv6_passed, non_ip).
- Counters, from telemetry before shutdown and from mbxd's final printout:
  port rx/tx, every nat counter, worker drops (tx, hand-off, table full),
  reply-key conflicts; mbxd exits 0 on SIGTERM.

How it runs (as root; about 5 s per worker count):

    port 0 (inside)  = net_pcap0,rx_pcap=inside.pcap,tx_pcap=out_inside.pcap
    port 1 (outside) = net_pcap1,iface=vb, one end of a veth pair va/vb in a
                       network namespace of the test's own, IPv6 disabled
                       there so that the kernel sends nothing on it

mbxd runs in the namespace (ip netns exec). The outside peer is this
script, on an AF_PACKET socket on va (tests/lib/wire.py: made inside the
namespace with setns(2), so no helper process is needed), given a large
receive buffer, bound before mbxd starts. inside.pcap is read at start-up;
the peer collects the translated packets, learns each flow's external port,
and sends the replies, the unsolicited and the malformed outside packets,
paced by mbxd's port counters. When the counters have settled (all waits
poll telemetry, with deadlines) the script sends SIGTERM, mbxd drains and
closes its ports, and out_inside.pcap is read for the translated replies.
The namespace (and with it the veth pair), /var/run/dpdk/<prefix> and, on
success, the work directory are removed even on failure or SIGTERM.

Usage: /usr/bin/python3 tests/golden/nat_golden.py [--workers N]
           [--mbxd PATH] [--keep] [--break WHAT]
Needs Debian's python3-scapy (hence /usr/bin/python3) and iproute2. Exits 0
on success, 1 with a list of mismatches, 77 (skipped) when not root.
--keep keeps the work directory (pcaps, mbxd.log). --break WHAT is a
self-test of the checker: it damages what was observed as a given mbxd bug
would (see BREAKS) and the run must then fail.
"""
import argparse
import logging
import os
import random
import re
import shutil
import signal
import socket
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
    from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_Router_Alert
    from scapy.layers.inet6 import (ICMPv6EchoReply, ICMPv6EchoRequest, IPv6,
                                    IPv6ExtHdrFragment, IPv6ExtHdrHopByHop)
    from scapy.layers.l2 import ARP, Ether
    from scapy.packet import NoPayload, Raw
    from scapy.utils import PcapWriter, RawPcapReader
except ImportError as e:
    sys.exit("nat_golden: needs Debian's python3-scapy: run it with /usr/bin/python3 (%s)" % e)

EXT_IP = "198.51.100.1"
PORT_LO, PORT_HI = 20000, 23199
BLOCK = 64
ROUTER_MAC = "02:00:00:00:01:fe"   # the inside hosts' next hop (mbxd's port 0)
NAT_OUT_MAC = "02:00:00:00:02:fe"  # mbxd's port 1, as the servers see it
SERVER_MAC = "02:00:00:00:02:01"   # the outside next hop
SERVERS = ["203.0.113.10", "203.0.113.11", "203.0.113.12", "203.0.113.13"]
HOSTS = ["10.1.0.%d" % i for i in range(1, 9)] + ["10.1.0.100"]
FLOWS_PER_HOST = 27
FLOWS_HEAVY = 90   # the last host: more than one block
V6_IN = "2001:db8:1::10"
V6_OUT = "2001:db8:2::20"
SETTLE_TIMEOUT = 20.0
PACE = 64          # outside packets sent before waiting for mbxd to receive them

BREAKS = {
    "out-l4-csum": "one outbound TCP packet leaves with its checksum off by one",
    "reply-ip-csum": "one reply reaches the inside with its IPv4 checksum off by one",
    "reply-payload": "one reply's payload has a byte changed",
    "out-port": "the second packet of a flow leaves with another external port",
    "dup-port": "two flows get the same external port",
    "drop-reply": "one reply is lost",
    "leak-malformed": "a malformed inside packet is forwarded",
    "reorder": "two packets of a flow leave swapped",
    "v6-change": "an IPv6 packet's hop limit is changed",
    "parse-count": "one ipv4_bad_ihl drop is not counted",
    "no-mapping-count": "an extra no_mapping drop is counted",
}

SO_RCVBUFFORCE = 33


class Failed(Exception):
    pass


# ---------------------------------------------------------------------------
# The plan: every packet either side sends, and what must come out of it.

class Flow:
    """One inside IPv4 flow and, once learnt, its external port."""

    def __init__(self, idx, proto, host, sport, server, dport):
        self.idx, self.proto, self.host = idx, proto, host
        self.sport, self.server, self.dport = sport, server, dport
        self.hmac = "02:00:0a:01:00:%02x" % (int(host.split(".")[3]) & 0xff)
        self.ipopt = proto != "icmp" and idx % 10 == 4      # Router Alert option
        self.udp0 = proto == "udp" and idx % 7 == 2         # no UDP checksum
        self.padded = proto == "udp" and idx % 20 == 11     # short, padded to 60 B
        self.tos = (idx % 4) * 0x28
        self.n_out = {"tcp": 3 + idx % 2, "udp": 3, "icmp": 3}[proto]
        self.n_back = {"tcp": 3, "udp": 2, "icmp": self.n_out}[proto]
        self.c_isn = (0x10000000 + idx * 0x10007) & 0xffffffff
        self.s_isn = (0x50000000 + idx * 0x20011) & 0xffffffff
        self.ext_port = None

    def __str__(self):
        return "flow %d (%s %s:%d > %s:%d)" % (self.idx, self.proto, self.host, self.sport,
                                               self.server, self.dport)


class Pkt:
    """A frame one side sends, and how to recognise and check what comes out."""

    def __init__(self, kind, frame, desc, flow=None, seq=0, reason=None):
        self.kind = kind      # out, back, v6, arp, malformed, unsupported, unsolicited
        self.frame = frame
        self.desc = desc
        self.flow = flow
        self.seq = seq
        self.reason = reason  # the parse counter a malformed packet must land in
        self.key = None       # how it is found in a capture: see frame_key()


def payload(flow, direction, seq, size=None):
    tag = b"mbx-golden flow=%04d %s seq=%02d|" % (flow.idx, direction.encode(), seq)
    if flow.padded:
        return b"p%d" % (seq % 10)
    if size is None:
        size = 1400 if flow.idx % 50 == 7 else (flow.idx * 37 + seq * 101 + 3) % 300
    return tag + bytes((flow.idx * 7 + seq * 13 + i) & 0xff for i in range(max(size - len(tag), 0)))


class Plan:
    def __init__(self, seed):
        self.rnd = random.Random(seed)
        self.next_id = 1
        self.flows = []
        self.inside = []      # Pkt, in pcap order
        self.outside = []     # Pkt the peer sent, in order
        self.by_key = {}      # key -> Pkt
        self.v6_flows = []
        self.expect_parse = {}
        self.unsupported = 0
        self.unsolicited = 0
        idx = 0
        for h, host in enumerate(HOSTS):
            n = FLOWS_HEAVY if h == len(HOSTS) - 1 else FLOWS_PER_HOST
            for k in range(n):
                proto = ("tcp", "udp", "icmp")[k % 3]
                server = SERVERS[(h + k) % len(SERVERS)]
                if proto == "icmp":
                    sport, dport = 0x100 + k, 0
                else:
                    sport = 40000 + k   # the same source ports on every host
                    dport = {"tcp": (80, 443, 8080), "udp": (53, 123, 4500)}[proto][k % 3]
                self.flows.append(Flow(idx, proto, host, sport, server, dport))
                idx += 1

    def ip_id(self):
        v = self.next_id
        self.next_id += 1
        assert v < 0x10000
        return v

    def add(self, side, pkt):
        pkt.key = frame_key(pkt.frame)
        assert pkt.key not in self.by_key, pkt.desc
        self.by_key[pkt.key] = pkt
        (self.inside if side == "in" else self.outside).append(pkt)
        if pkt.kind == "malformed":
            self.expect_parse[pkt.reason] = self.expect_parse.get(pkt.reason, 0) + 1
        elif pkt.kind in ("arp",):
            self.expect_parse["non_ip"] = self.expect_parse.get("non_ip", 0) + 1
        elif pkt.kind == "unsupported":
            self.unsupported += 1
        elif pkt.kind == "unsolicited":
            self.unsolicited += 1

    # -- inside -----------------------------------------------------------

    def out_frame(self, f, s):
        ip = IP(src=f.host, dst=f.server, id=self.ip_id(), ttl=64, tos=f.tos,
                flags="DF" if f.proto == "tcp" else 0,
                options=[IPOption_Router_Alert()] if f.ipopt else [])
        if f.proto == "tcp":
            if s == 0:
                l4 = TCP(sport=f.sport, dport=f.dport, flags="S", seq=f.c_isn, window=64240,
                         options=[("MSS", 1460), ("SAckOK", b""), ("NOP", None), ("WScale", 7)])
            else:
                sent = sum(len(payload(f, "out", i)) for i in range(1, s))
                l4 = TCP(sport=f.sport, dport=f.dport, flags="PA", seq=f.c_isn + 1 + sent,
                         ack=f.s_isn + 1, window=502) / payload(f, "out", s)
        elif f.proto == "udp":
            l4 = UDP(sport=f.sport, dport=f.dport, chksum=0 if f.udp0 else None) / \
                payload(f, "out", s)
        else:
            l4 = ICMP(type=8, id=f.sport, seq=s + 1) / payload(f, "out", s)
        frame = raw(Ether(src=f.hmac, dst=ROUTER_MAC) / ip / l4)
        if f.padded:
            frame += bytes(max(60 - len(frame), 0))
        return frame

    def build_inside(self):
        rounds = max(f.n_out for f in self.flows)
        for s in range(rounds):
            order = list(self.flows)
            self.rnd.shuffle(order)
            for f in order:
                if s < f.n_out:
                    self.add("in", Pkt("out", self.out_frame(f, s), "%s packet %d" % (f, s),
                                       flow=f, seq=s))
        extras = self.malformed_inside() + self.unsupported_inside() + self.v6_inside() + \
            self.arp_inside()
        for pkt in extras:
            # anywhere after the first round, so that some hit established flows
            pos = self.rnd.randrange(len(self.flows), len(self.inside) + 1)
            self.add("in", pkt)
            self.inside.insert(pos, self.inside.pop())

    def l2in(self, f):
        return Ether(src=f.hmac, dst=ROUTER_MAC)

    def malformed_inside(self):
        """Packets the parser must drop, built on real flows' 5-tuples."""
        tcp = [f for f in self.flows if f.proto == "tcp"]
        udp = [f for f in self.flows if f.proto == "udp" and not f.padded]
        icmp = [f for f in self.flows if f.proto == "icmp"]
        out = []

        def ip(f, **kw):
            return IP(src=f.host, dst=f.server, id=self.ip_id(), **kw)

        def udp_pkt(f, n=0, **kw):
            return UDP(sport=f.sport, dport=f.dport, **kw) / (
                b"mbx-golden malformed %d|" % n + bytes(24))

        def tcp_pkt(f, **kw):
            return TCP(sport=f.sport, dport=f.dport, flags="PA", seq=f.c_isn + 1, **kw)

        def m(reason, desc, frame):
            out.append(Pkt("malformed", frame, "malformed inside: " + desc, reason=reason))

        f1, f2, f3 = udp[1], udp[20], udp[40]
        t1, t2 = tcp[3], tcp[50]
        m("ipv4_bad_ihl", "IHL 4", raw(self.l2in(f1) / ip(f1, ihl=4) / udp_pkt(f1, 1)))
        m("ipv4_bad_ihl", "IHL 0", raw(self.l2in(t1) / ip(t1, ihl=0) / tcp_pkt(t1)))
        m("ipv4_bad_ihl", "IHL 15 in a 46-byte frame",
          raw(self.l2in(f2) / ip(f2, ihl=15) / UDP(sport=f2.sport, dport=f2.dport) / b"abcd"))
        m("ipv4_bad_total_length", "total length 1400 in a short frame",
          raw(self.l2in(f1) / ip(f1, len=1400) / udp_pkt(f1, 2)))
        good = raw(self.l2in(f3) / ip(f3) / udp_pkt(f3, 3))
        m("ipv4_bad_total_length", "total length one beyond the frame",
          raw(self.l2in(f3) / ip(f3, len=len(good) - 14 + 1) / udp_pkt(f3, 3)))
        m("ipv4_bad_total_length", "total length 12, below the header",
          raw(self.l2in(t2) / ip(t2, len=12) / tcp_pkt(t2)))
        for f, n in ((f1, 4), (t2, 5), (icmp[2], 6)):
            p = Ether(raw(self.l2in(f) / ip(f) / (
                udp_pkt(f, n) if f.proto == "udp" else tcp_pkt(f) if f.proto == "tcp"
                else ICMP(type=8, id=f.sport, seq=9) / b"mbx-golden malformed")))
            p[IP].chksum ^= 0x5a5a
            m("ipv4_bad_checksum", "bad IPv4 header checksum (%s)" % f.proto, raw(p))
        m("fragment", "first fragment (MF)",
          raw(self.l2in(f2) / ip(f2, flags="MF") / udp_pkt(f2, 7)))
        m("fragment", "later fragment (offset 185)",
          raw(self.l2in(t1) / ip(t1, frag=185, proto=6) / Raw(bytes(range(40)))))
        m("fragment", "IPv6 fragment header",
          raw(Ether(src="02:00:0a:01:00:61", dst=ROUTER_MAC) /
              IPv6(src=V6_IN, dst=V6_OUT, fl=0xf0001) / IPv6ExtHdrFragment(m=1, id=77) /
              UDP(sport=5000, dport=53) / b"mbx-golden v6 fragment"))
        m("tcp_truncated", "12-byte TCP header",
          raw(self.l2in(t1) / ip(t1, proto=6) / Raw(raw(tcp_pkt(t1))[:12])))
        m("tcp_bad_data_offset", "TCP data offset 4",
          raw(self.l2in(t2) / ip(t2) / tcp_pkt(t2, dataofs=4) / b"mbx-golden doff"))
        m("tcp_bad_data_offset", "TCP data offset 15 in a 20-byte segment",
          raw(self.l2in(t1) / ip(t1) / tcp_pkt(t1, dataofs=15)))
        m("udp_truncated", "4-byte UDP header",
          raw(self.l2in(f1) / ip(f1, proto=17) / Raw(raw(UDP(sport=f1.sport, dport=f1.dport))[:4])))
        m("udp_bad_length", "UDP length 400 in a 40-byte datagram",
          raw(self.l2in(f3) / ip(f3) / udp_pkt(f3, 8, len=400)))
        m("udp_bad_length", "UDP length 7",
          raw(self.l2in(f2) / ip(f2) / udp_pkt(f2, 9, len=7)))
        m("icmp_truncated", "4-byte ICMP header",
          raw(self.l2in(icmp[0]) / ip(icmp[0], proto=1) / Raw(b"\x08\x00\xf7\xff")))
        m("eth_truncated", "10-byte frame", raw(self.l2in(f1))[:10])
        m("eth_truncated", "13-byte frame", raw(self.l2in(t1))[:13])
        m("vlan_truncated", "VLAN tag cut short",
          raw(Ether(src=f1.hmac, dst=ROUTER_MAC, type=0x8100) / Raw(b"\x00\x05")))
        m("ipv4_truncated", "12 bytes of IPv4 header",
          raw(Ether(src=f1.hmac, dst=ROUTER_MAC, type=0x0800) /
              Raw(raw(ip(f1) / udp_pkt(f1))[:12])))
        m("ipv4_bad_version", "version 5 under ethertype IPv4",
          raw(self.l2in(f2) / ip(f2, version=5) / udp_pkt(f2, 10)))
        m("ipv6_truncated", "20 bytes of IPv6 header",
          raw(Ether(src="02:00:0a:01:00:61", dst=ROUTER_MAC, type=0x86dd) /
              Raw(raw(IPv6(src=V6_IN, dst=V6_OUT))[:20])))
        m("ipv6_bad_version", "version 4 under ethertype IPv6",
          raw(Ether(src="02:00:0a:01:00:61", dst=ROUTER_MAC, type=0x86dd) /
              Raw(raw(IP(src=f1.host, dst=f1.server, id=self.ip_id()) / udp_pkt(f1, 11)) +
                  bytes(20))))
        m("ipv6_bad_payload_length", "IPv6 payload length 500 in a short frame",
          raw(Ether(src="02:00:0a:01:00:61", dst=ROUTER_MAC) /
              IPv6(src=V6_IN, dst=V6_OUT, plen=500, fl=0xf0002) /
              UDP(sport=5001, dport=53) / b"mbx-golden v6 plen"))
        m("ipv6_bad_extension_header", "hop-by-hop header longer than the packet",
          raw(Ether(src="02:00:0a:01:00:61", dst=ROUTER_MAC) /
              IPv6(src=V6_IN, dst=V6_OUT, nh=0, plen=8, fl=0xf0003) /
              Raw(bytes([17, 5, 1, 4, 0, 0, 0, 0]))))
        return out

    def unsupported_inside(self):
        """Valid packets NAT cannot translate: dropped, unsupported_drops."""
        hosts = [self.flows[0], self.flows[30], self.flows[300]]
        out = []

        def u(desc, f, l4, proto=1):
            ip = IP(src=f.host, dst=f.server, id=self.ip_id(), proto=proto)
            out.append(Pkt("unsupported", raw(self.l2in(f) / ip / l4),
                           "unsupported inside: %s from %s" % (desc, f.host)))

        inner = raw(IP(src=SERVERS[0], dst=hosts[0].host, id=4242) / UDP(sport=53, dport=33434))
        u("ICMP port unreachable", hosts[0], ICMP(type=3, code=3) / inner)
        u("ICMP time exceeded", hosts[1], ICMP(type=11, code=0) / inner)
        u("ICMP timestamp request", hosts[2], ICMP(type=13, id=0x77, seq=1) / bytes(12))
        u("ICMP port unreachable", hosts[2], ICMP(type=3, code=3) / inner)
        u("GRE packet", hosts[0], Raw(b"\x00\x00\x08\x00" + bytes(24)), proto=47)
        u("GRE packet", hosts[1], Raw(b"\x00\x00\x86\xdd" + bytes(44)), proto=47)
        u("SCTP packet", hosts[2], Raw(bytes(12) + b"mbx-golden sctp"), proto=132)
        return out

    def v6_inside(self):
        out = []
        mac = "02:00:0a:01:00:61"
        specs = [("tcp", 1), ("udp", 2), ("icmp", 3)]
        for proto, i in specs:
            self.v6_flows.append((proto, i))
            for s in range(2):
                fl = 0x10000 + i * 16 + s
                l3 = IPv6(src=V6_IN, dst=V6_OUT, fl=fl, hlim=64)
                if proto == "tcp":
                    l4 = TCP(sport=50000 + i, dport=443, flags="S" if s == 0 else "PA",
                             seq=1000 + s) / (b"mbx-golden v6 tcp %d" % s if s else b"")
                elif proto == "udp":
                    l4 = UDP(sport=50000 + i, dport=53) / (b"mbx-golden v6 udp %d" % s)
                else:
                    l4 = ICMPv6EchoRequest(id=0x600 + i, seq=s + 1, data=b"mbx-golden v6 echo")
                out.append(Pkt("v6", raw(Ether(src=mac, dst=ROUTER_MAC) / l3 / l4),
                               "IPv6 %s packet %d from inside" % (proto, s)))
        out.append(Pkt("v6", raw(Ether(src=mac, dst=ROUTER_MAC) /
                                 IPv6(src=V6_IN, dst=V6_OUT, fl=0x10100) / IPv6ExtHdrHopByHop() /
                                 UDP(sport=50009, dport=53) / b"mbx-golden v6 hbh"),
                       "IPv6 UDP with a hop-by-hop header from inside"))
        return out

    def arp_inside(self):
        f = self.flows[0]
        return [
            Pkt("arp", raw(Ether(src=f.hmac, dst="ff:ff:ff:ff:ff:ff") /
                           ARP(op=1, hwsrc=f.hmac, psrc=f.host, pdst="10.1.0.254")),
                "ARP request from inside"),
            Pkt("arp", raw(Ether(src=f.hmac, dst="ff:ff:ff:ff:ff:ff") /
                           ARP(op=2, hwsrc=f.hmac, psrc=f.host, hwdst="ff:ff:ff:ff:ff:ff",
                               pdst=f.host)),
                "gratuitous ARP from inside"),
        ]

    # -- outside (once the external ports are known) -----------------------

    def l2out(self):
        return Ether(src=SERVER_MAC, dst=NAT_OUT_MAC)

    def back_frame(self, f, r, ip_kw=None):
        kw = dict(src=f.server, dst=EXT_IP, id=self.ip_id(), ttl=57, tos=f.tos,
                  flags="DF" if f.proto == "tcp" else 0,
                  options=[IPOption_Router_Alert()] if f.ipopt else [])
        kw.update(ip_kw or {})
        ip = IP(**kw)
        if f.proto == "tcp":
            if r == 0:
                l4 = TCP(sport=f.dport, dport=f.ext_port, flags="SA", seq=f.s_isn,
                         ack=f.c_isn + 1, window=65160,
                         options=[("MSS", 1400), ("NOP", None), ("WScale", 5)])
            else:
                sent = sum(len(payload(f, "back", i)) for i in range(1, r))
                l4 = TCP(sport=f.dport, dport=f.ext_port, flags="PA", seq=f.s_isn + 1 + sent,
                         ack=f.c_isn + 1, window=509) / payload(f, "back", r)
        elif f.proto == "udp":
            l4 = UDP(sport=f.dport, dport=f.ext_port, chksum=0 if f.udp0 else None) / \
                payload(f, "back", r)
        else:
            l4 = ICMP(type=0, id=f.ext_port, seq=r + 1) / payload(f, "out", r)
        frame = raw(self.l2out() / ip / l4)
        if f.padded:
            frame += bytes(max(60 - len(frame), 0))
        return frame

    def build_outside(self):
        mapped = [f for f in self.flows if f.ext_port is not None]
        body = []
        for r in range(max([f.n_back for f in mapped] or [0])):
            order = list(mapped)
            self.rnd.shuffle(order)
            for f in order:
                if r < f.n_back:
                    body.append(Pkt("back", self.back_frame(f, r), "reply %d of %s" % (r, f),
                                    flow=f, seq=r))
        extras = self.unsolicited_outside(mapped) + self.malformed_outside(mapped) + \
            self.v6_outside() + self.arp_outside()
        for pkt in extras:
            body.insert(self.rnd.randrange(len(mapped) // 2, len(body) + 1), pkt)
        for pkt in body:
            self.add("out", pkt)

    def unsolicited_outside(self, mapped):
        """New flows from the outside: dropped, no_mapping_drops."""
        used = {f.ext_port for f in mapped}
        blocks = sorted({(p - PORT_LO) // BLOCK for p in used})
        free_in_used = [b * BLOCK + PORT_LO + i for b in blocks for i in range(BLOCK)
                        if b * BLOCK + PORT_LO + i not in used and
                        b * BLOCK + PORT_LO + i <= PORT_HI]
        picks = [free_in_used[i * len(free_in_used) // 9] for i in range(9)] \
            if len(free_in_used) >= 9 else free_in_used
        unused_block_port = next(p for p in range(PORT_HI, PORT_LO, -1)
                                 if (p - PORT_LO) // BLOCK not in blocks)
        tcp = [f for f in mapped if f.proto == "tcp"]
        udp = [f for f in mapped if f.proto == "udp" and not f.udp0]
        icmp = [f for f in mapped if f.proto == "icmp"]
        out = []

        def u(desc, src, dst, l4):
            out.append(Pkt("unsolicited",
                           raw(self.l2out() / IP(src=src, dst=dst, id=self.ip_id()) / l4),
                           "unsolicited outside: " + desc))

        for p in picks[:4]:
            u("TCP SYN to unused port %d of a used block" % p, SERVERS[0], EXT_IP,
              TCP(sport=80, dport=p, flags="S", seq=7))
        for p in picks[4:7]:
            u("UDP to unused port %d of a used block" % p, SERVERS[1], EXT_IP,
              UDP(sport=53, dport=p) / b"mbx-golden unsolicited")
        if len(picks) > 8:
            u("ICMP echo request with identifier %d" % picks[7], "203.0.113.99", EXT_IP,
              ICMP(type=8, id=picks[7], seq=1) / b"mbx-golden ping in")
            u("ICMP echo reply with unknown identifier %d" % picks[8], SERVERS[2], EXT_IP,
              ICMP(type=0, id=picks[8], seq=1) / b"mbx-golden pong")
        if tcp and udp and icmp:
            t, d, i = tcp[0], udp[0], icmp[0]
            u("TCP to mapped port %d from another address" % t.ext_port, "203.0.113.200",
              EXT_IP, TCP(sport=t.dport, dport=t.ext_port, flags="S", seq=9))
            u("UDP to mapped port %d from another address" % d.ext_port, "203.0.113.200",
              EXT_IP, UDP(sport=d.dport, dport=d.ext_port) / b"mbx-golden other addr")
            u("UDP to mapped port %d from another port" % d.ext_port, d.server, EXT_IP,
              UDP(sport=d.dport + 1, dport=d.ext_port) / b"mbx-golden other port")
            u("ICMP echo reply to mapped identifier %d from another address" % i.ext_port,
              "203.0.113.201", EXT_IP, ICMP(type=0, id=i.ext_port, seq=1) / b"mbx-golden x")
            u("ICMP echo request to mapped identifier %d from its own server" % i.ext_port,
              i.server, EXT_IP, ICMP(type=8, id=i.ext_port, seq=1) / b"mbx-golden ping back")
        u("TCP to port 80, outside the pool", SERVERS[0], EXT_IP,
          TCP(sport=4444, dport=80, flags="S"))
        u("UDP to port 65000, outside the pool", SERVERS[0], EXT_IP,
          UDP(sport=4444, dport=65000) / b"mbx-golden")
        u("TCP to port %d of a block nobody holds" % unused_block_port, SERVERS[3], EXT_IP,
          TCP(sport=4444, dport=unused_block_port, flags="S"))
        u("UDP to another address", SERVERS[0], "198.51.100.77",
          UDP(sport=53, dport=20000) / b"mbx-golden")
        u("TCP to another address", SERVERS[0], "198.51.100.77",
          TCP(sport=80, dport=20001, flags="SA"))
        return out

    def malformed_outside(self, mapped):
        """Replies to real mappings, damaged: they must not be translated."""
        tcp = [f for f in mapped if f.proto == "tcp"]
        udp = [f for f in mapped if f.proto == "udp" and not f.padded]
        out = []
        if not tcp or not udp:
            return out

        def m(reason, desc, frame):
            out.append(Pkt("malformed", frame, "malformed outside: " + desc, reason=reason))

        for f in (tcp[5 % len(tcp)], udp[5 % len(udp)]):
            p = Ether(self.back_frame(f, 1))
            p[IP].chksum ^= 0x00ff
            m("ipv4_bad_checksum", "bad IPv4 checksum on a reply of %s" % f, raw(p))
        f = udp[9 % len(udp)]
        m("fragment", "first fragment of a reply of %s" % f,
          self.back_frame(f, 1, ip_kw={"flags": "MF"}))
        p = Ether(self.back_frame(f, 1))
        p[UDP].len += 100
        del p[UDP].chksum
        m("udp_bad_length", "UDP length beyond the datagram on a reply of %s" % f, raw(p))
        f = tcp[11 % len(tcp)]
        p = Ether(self.back_frame(f, 1))
        p[TCP].dataofs = 3
        m("tcp_bad_data_offset", "TCP data offset 3 on a reply of %s" % f, raw(p))
        return out

    def v6_outside(self):
        out = []
        for proto, i in self.v6_flows:
            fl = 0x20000 + i
            l3 = IPv6(src=V6_OUT, dst=V6_IN, fl=fl, hlim=55)
            if proto == "tcp":
                l4 = TCP(sport=443, dport=50000 + i, flags="SA", seq=9000, ack=1001)
            elif proto == "udp":
                l4 = UDP(sport=53, dport=50000 + i) / b"mbx-golden v6 udp reply"
            else:
                l4 = ICMPv6EchoReply(id=0x600 + i, seq=1, data=b"mbx-golden v6 echo")
            out.append(Pkt("v6", raw(self.l2out() / l3 / l4),
                           "IPv6 %s reply from outside" % proto))
        out.append(Pkt("v6", raw(self.l2out() / IPv6(src=V6_OUT, dst=V6_IN, fl=0x20100) /
                                 UDP(sport=53, dport=50100) / b"mbx-golden v6 new from outside"),
                       "IPv6 UDP new flow from outside"))
        return out

    def arp_outside(self):
        return [Pkt("arp", raw(Ether(src=SERVER_MAC, dst=NAT_OUT_MAC) /
                               ARP(op=2, hwsrc=SERVER_MAC, psrc=SERVERS[0], hwdst=NAT_OUT_MAC,
                                   pdst=EXT_IP)),
                    "ARP reply from outside")]


# ---------------------------------------------------------------------------
# Checking frames

def frame_key(frame):
    """How a captured frame is matched to what was sent: IPv4 id, IPv6 flow label, or bytes."""
    try:
        p = Ether(frame)
    except Exception:  # noqa: BLE001 - any undecodable frame is just unexpected
        return ("raw", frame)
    if IP in p and p.type == 0x0800:
        return ("id", p[IP].id)
    if IPv6 in p and p.type == 0x86dd:
        return ("fl", p[IPv6].fl)
    return ("raw", frame)


def describe(frame):
    try:
        return Ether(frame).summary()
    except Exception:  # noqa: BLE001
        return frame.hex()


def rewritten(frame, src=None, dst=None, port=None, side="src"):
    """@p frame with its IPv4 source or destination and port (ICMP id) rewritten,
    every checksum recomputed (a UDP checksum of 0 stays 0)."""
    p = Ether(frame)
    ip = p[IP]
    if src is not None:
        ip.src = src
    if dst is not None:
        ip.dst = dst
    del ip.chksum
    l4 = ip.payload
    if isinstance(l4, (TCP, UDP)):
        setattr(l4, "sport" if side == "src" else "dport", port)
    elif isinstance(l4, ICMP):
        l4.id = port
    if not (isinstance(l4, UDP) and l4.chksum == 0):
        del l4.chksum
    return raw(p)


def checksum_errors(frame, sent):
    """Invalid checksums of @p frame, recomputed by scapy."""
    errs = []
    p = Ether(frame)
    for layer in (IP, TCP, UDP, ICMP):
        if layer not in p:
            continue
        got = p[layer].chksum
        if layer is UDP and got == 0:
            if Ether(sent)[UDP].chksum != 0:
                errs.append("UDP checksum 0 (none) but the sent datagram had one")
            continue
        q = Ether(frame)
        del q[layer].chksum
        want = Ether(raw(q))[layer].chksum
        if got != want:
            errs.append("invalid %s checksum 0x%04x (valid: 0x%04x)" % (layer.__name__, got, want))
    return errs


def field_diff(exp, got, limit=6):
    """Fields that differ between two frames, layer by layer."""
    a, b = Ether(exp), Ether(got)
    out = []
    while not isinstance(a, NoPayload) and not isinstance(b, NoPayload) and len(out) < limit:
        if type(a) is not type(b):
            out.append("%s where %s was expected" % (b.name, a.name))
            break
        for fd in a.fields_desc:
            va, vb = a.getfieldval(fd.name), b.getfieldval(fd.name)
            if va != vb:
                if isinstance(va, bytes) and isinstance(vb, bytes):
                    i = next((k for k in range(min(len(va), len(vb))) if va[k] != vb[k]),
                             min(len(va), len(vb)))
                    out.append("%s.%s: %d bytes, differ from offset %d (expected %d bytes)" %
                               (a.name, fd.name, len(vb), i, len(va)))
                else:
                    out.append("%s.%s: expected %s, got %s" % (a.name, fd.name,
                                                              fd.i2repr(a, va), fd.i2repr(b, vb)))
        a, b = a.payload, b.payload
    if not out and exp != got:
        out.append("frames differ (%d bytes, expected %d)" % (len(got), len(exp)))
    return out


class Checker:
    def __init__(self):
        self.errors = []

    def err(self, msg):
        self.errors.append(msg)

    def match(self, plan, frames, where, allowed_kinds):
        """Match captured frames to sent packets; report unknown, duplicate and leaked ones."""
        seen = {}
        for n, frame in enumerate(frames):
            key = frame_key(frame)
            pkt = plan.by_key.get(key)
            if pkt is None:
                self.err("%s: frame %d is nothing that was sent: %s" %
                         (where, n, describe(frame)))
                continue
            if pkt.kind not in allowed_kinds:
                self.err("%s: %s came out (frame %d)" % (where, pkt.desc, n))
                continue
            if key in seen:
                self.err("%s: %s came out twice (frames %d and %d)" % (where, pkt.desc,
                                                                       seen[key][0], n))
                continue
            seen[key] = (n, pkt, frame)
        return seen

    def same(self, what, exp, got, sent):
        if exp == got:
            return True
        detail = checksum_errors(got, sent) + field_diff(exp, got)
        self.err("%s: %s" % (what, "; ".join(detail)))
        return False

    def order(self, where, seen):
        per_flow = {}
        for n, pkt, _ in sorted(seen.values(), key=lambda t: t[0]):
            if pkt.flow is not None:
                per_flow.setdefault(pkt.flow.idx, []).append(pkt.seq)
        for idx, seqs in per_flow.items():
            if seqs != sorted(seqs):
                self.err("%s: packets of flow %d out of order: %s" % (where, idx, seqs))


# ---------------------------------------------------------------------------
# The namespace, the peer's socket and mbxd

def sweep_stale():
    """Remove namespaces and runtime directories of earlier runs that were killed."""
    names = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, text=True).stdout
    for m in re.finditer(r"^mbxgolden(\d+)\b", names, re.M):
        if not os.path.exists("/proc/" + m.group(1)):
            subprocess.run(["ip", "netns", "del", m.group(0)], stderr=subprocess.DEVNULL)
    if os.path.isdir(mbxrun.RUNTIME):
        for d in os.listdir(mbxrun.RUNTIME):
            m = re.match(r"golden_nat_(\d+)_", d)
            if m and not os.path.exists("/proc/" + m.group(1)):
                shutil.rmtree(os.path.join(mbxrun.RUNTIME, d), ignore_errors=True)


class Peer:
    """The outside, on the test's end of the wire (va), with room for all mbxd sends."""

    def __init__(self, port):
        self.port = port
        # SO_RCVBUF stops at net.core.rmem_max; a burst of ~1000 frames needs more
        port.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
        self.sent = 0
        self.frames = []

    def send(self, frame):
        self.port.send(frame)
        self.sent += 1

    def collect(self, timeout):
        """Take what has arrived, until @p timeout seconds pass with nothing."""
        self.frames += self.port.recv(timeout)


class Mbxd:
    def __init__(self, args, workdir, ns):
        self.prefix = mbxrun.unique_prefix("golden_nat")
        lcores = "0-1" if args.workers == 1 else "(0-%d)@(0-1)" % args.workers
        self.out_inside = os.path.join(workdir, "out_inside.pcap")
        eal = mbxrun.eal_args(self.prefix, lcores=lcores, vdevs=[
            "net_pcap0,rx_pcap=%s,tx_pcap=%s" % (os.path.join(workdir, "inside.pcap"),
                                                 self.out_inside),
            "net_pcap1,iface=vb"])
        argv = ns.argv([args.mbxd] + eal + [
            "--", "--nf", "nat,ext_ip=%s,ports=%d-%d" % (EXT_IP, PORT_LO, PORT_HI),
            "--idle-sleep-us", "50"])
        self.log = os.path.join(workdir, "mbxd.log")
        self.proc = mbxrun.Proc(argv, self.prefix, log_path=self.log)
        self.rc = "not stopped"

    def query(self, cmd, params=None):
        return self.proc.query(cmd, params)

    def parse(self):
        st = self.query("/mbx/stats")
        if isinstance(st.get("parse"), dict):
            return st["parse"]
        return self.query("/mbx/parse")

    def snapshot(self):
        return {
            "port0": self.query("/mbx/port", "0"),
            "port1": self.query("/mbx/port", "1"),
            "stats": self.query("/mbx/stats"),
            "parse": self.parse(),
            "nat": self.query("/mbx/nf", "nat"),
        }

    def stop(self):
        if self.proc is not None:
            self.rc = self.proc.stop()
            self.proc = None
        shutil.rmtree(os.path.join(mbxrun.RUNTIME, self.prefix), ignore_errors=True)


def wait_for(what, cond, timeout=SETTLE_TIMEOUT, period=0.02):
    """Poll cond() -> (done, detail) until done or timeout; return the last detail."""
    deadline = time.time() + timeout
    while True:
        done, detail = cond()
        if done or time.time() > deadline:
            return done, detail
        time.sleep(period)


# ---------------------------------------------------------------------------
# Self-test of the checker: damage the observations as an mbxd bug would.

def fix_csums(frame):
    p = Ether(frame)
    for layer in (IP, TCP, UDP, ICMP):
        if layer in p and not (layer is UDP and p[UDP].chksum == 0):
            del p[layer].chksum
    return raw(p)


def damage(what, stage, frames, plan=None, counters=None):
    if what is None:
        return

    def first(kind, proto=None, seq=0):
        for i, fr in enumerate(frames):
            pkt = plan.by_key.get(frame_key(fr))
            if pkt and pkt.kind == kind and (proto is None or pkt.flow.proto == proto) and \
                    pkt.seq >= seq:
                return i, pkt
        raise Failed("--break %s: nothing to damage" % what)

    if stage == "out":
        if what == "out-l4-csum":
            i, _ = first("out", "tcp")
            p = Ether(frames[i])
            p[TCP].chksum = (p[TCP].chksum + 1) & 0xffff
            frames[i] = raw(p)
        elif what == "out-port":
            i, pkt = first("out", "udp")
            later = [j for j, fr in enumerate(frames)
                     if plan.by_key.get(frame_key(fr)) is not None and
                     plan.by_key[frame_key(fr)].flow is pkt.flow and j > i]
            p = Ether(frames[later[0]])
            p[UDP].sport += 1
            frames[later[0]] = fix_csums(raw(p))
        elif what == "dup-port":
            i, a = first("out", "udp")
            port = Ether(frames[i])[UDP].sport
            b = next(f for f in plan.flows if f.proto == "udp" and f is not a.flow)
            for j, fr in enumerate(frames):
                pkt = plan.by_key.get(frame_key(fr))
                if pkt is not None and pkt.flow is b:
                    p = Ether(fr)
                    p[UDP].sport = port
                    frames[j] = fix_csums(raw(p))
        elif what == "leak-malformed":
            frames.append(next(p.frame for p in plan.inside
                               if p.kind == "malformed" and p.reason == "ipv4_bad_checksum"))
        elif what == "reorder":
            i, pkt = first("out", "icmp")
            j = next(j for j, fr in enumerate(frames) if j > i and
                     plan.by_key.get(frame_key(fr)) is not None and
                     plan.by_key[frame_key(fr)].flow is pkt.flow)
            frames[i], frames[j] = frames[j], frames[i]
        elif what == "v6-change":
            i, _ = first("v6")
            b = bytearray(frames[i])
            b[14 + 7] -= 1
            frames[i] = bytes(b)
    elif stage == "in":
        if what == "reply-ip-csum":
            i, _ = first("back", "udp")
            p = Ether(frames[i])
            p[IP].chksum = (p[IP].chksum + 1) & 0xffff
            frames[i] = raw(p)
        elif what == "reply-payload":
            i, _ = first("back", "tcp", seq=1)
            b = bytearray(frames[i])
            b[-1] ^= 0x01
            frames[i] = bytes(b)
        elif what == "drop-reply":
            i, _ = first("back", "icmp")
            del frames[i]
    elif stage == "counters":
        if what == "parse-count":
            counters["parse"]["ipv4_bad_ihl"] -= 1
        elif what == "no-mapping-count":
            counters["nat"]["no_mapping_drops"] += 1


# ---------------------------------------------------------------------------
# The test

def expected_counters(plan, peer_sent):
    v4_flows = plan.flows
    out_pkts = [p for p in plan.inside if p.kind == "out"]
    back_pkts = [p for p in plan.outside if p.kind == "back"]
    v6_in = [p for p in plan.inside if p.kind == "v6"]
    v6_out = [p for p in plan.outside if p.kind == "v6"]
    arp_in = [p for p in plan.inside if p.kind == "arp"]
    arp_out = [p for p in plan.outside if p.kind == "arp"]
    return {
        "nat": {
            "mappings_created": len(v4_flows),
            "mappings_freed": 0,
            "translated_out": len(out_pkts),
            "translated_in": len(back_pkts),
            "ipv6_passed": len(v6_in) + len(v6_out),
            "no_mapping_drops": plan.unsolicited,
            "unsupported_drops": plan.unsupported,
            "pool_exhausted_drops": 0,
        },
        "port0": {"rx_packets": len(plan.inside),
                  "tx_packets": len(back_pkts) + len(v6_out) + len(arp_out)},
        "port1": {"rx_packets": peer_sent,
                  "tx_packets": len(out_pkts) + len(v6_in) + len(arp_in)},
        "stats": {"rx_packets": len(plan.inside) + peer_sent, "tx_dropped": 0,
                  "handoff_dropped": 0, "table_full_drops": 0, "reply_key_conflicts": 0,
                  "nf_dropped": plan.unsolicited + plan.unsupported},
    }


def counter_diffs(exp, snap, parse_exp, phase):
    out = []
    for group, want in exp.items():
        have = snap.get(group) or {}
        for k, v in want.items():
            if have.get(k) != v:
                out.append("%s%s %s: expected %s, got %s" % (phase, group, k, v, have.get(k)))
    for k, v in sorted((snap.get("parse") or {}).items()):
        if v != parse_exp.get(k, 0):
            out.append("%sparse %s: expected %d, got %s" % (phase, k, parse_exp.get(k, 0), v))
    for k in parse_exp:
        if k not in (snap.get("parse") or {}):
            out.append("%sparse %s: expected %d, counter missing" % (phase, k, parse_exp[k]))
    return out


def final_printout(text):
    """The nf nat: and parse: lines of mbxd's final counters."""
    res = {}
    for name in ("nf nat", "parse"):
        m = re.search(r"^\s*%s:(.*)$" % name, text, re.M)
        if m:
            res[name] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}
    return res


def test(args, workdir):
    t0 = time.time()
    chk = Checker()
    plan = Plan(seed=20240 + args.workers)
    plan.build_inside()
    writer = PcapWriter(os.path.join(workdir, "inside.pcap"), linktype=1)
    for pkt in plan.inside:
        writer.write(pkt.frame)
    writer.close()

    sweep_stale()
    ns = mbxd = None
    try:
        ns = wire.Netns("golden")
        peer = Peer(ns.veth("va", "vb"))
        mbxd = Mbxd(args, workdir, ns)

        # -- phase 1: inside.pcap goes out; learn the mappings ------------
        out_expected = [p for p in plan.inside if p.kind in ("out", "v6", "arp")]
        inside_parse = dict(plan.expect_parse)

        def phase1():
            peer.collect(0)
            snap = mbxd.snapshot()
            done = (snap["port0"]["rx_packets"] == len(plan.inside) and
                    snap["port1"]["tx_packets"] >= len(out_expected) and
                    len(peer.frames) >= len(out_expected) and
                    sum(snap["parse"].values()) >= sum(inside_parse.values()))
            return done, snap
        done, snap = wait_for("inside.pcap through", phase1)
        peer.collect(0.2)   # anything beyond what was expected
        if not done:
            chk.err("phase 1 did not settle in %.0f s: port 0 rx %s of %d, peer got %d of %d" % (
                SETTLE_TIMEOUT, snap["port0"]["rx_packets"], len(plan.inside),
                len(peer.frames), len(out_expected)))
        n_phase1 = len(peer.frames)
        frames = list(peer.frames)
        damage(args.brk, "out", frames, plan)
        seen = chk.match(plan, frames, "outside", ("out", "v6", "arp"))

        # mappings: one external port per flow, from its first packet
        for n, pkt, frame in sorted(seen.values(), key=lambda t: t[0]):
            if pkt.kind != "out":
                continue
            p = Ether(frame)
            if IP not in p:
                chk.err("outside: %s is no longer IPv4" % pkt.desc)
                continue
            l4 = p[IP].payload
            port = l4.id if isinstance(l4, ICMP) else getattr(l4, "sport", None)
            f = pkt.flow
            if f.ext_port is None:
                f.ext_port = port
            elif port != f.ext_port:
                chk.err("outside: %s has external port %s, earlier packets %d" %
                        (pkt.desc, port, f.ext_port))
            if p[IP].src != EXT_IP:
                chk.err("outside: %s has source %s, not ext_ip %s" % (pkt.desc, p[IP].src, EXT_IP))
            chk.same("outside: " + pkt.desc, rewritten(pkt.frame, src=EXT_IP, port=f.ext_port),
                     frame, pkt.frame)
        for key, pkt in plan.by_key.items():
            if pkt.kind in ("v6", "arp") and key in seen and seen[key][2] != pkt.frame:
                chk.same("outside: " + pkt.desc, pkt.frame, seen[key][2], pkt.frame)
        missing = [p for p in out_expected if p.key not in seen]
        for p in missing[:10]:
            chk.err("outside: %s did not come out" % p.desc)
        if len(missing) > 10:
            chk.err("outside: ... and %d more packets did not come out" % (len(missing) - 10))
        chk.order("outside", seen)

        by_port = {}
        host_blocks = {}
        host_flows = {}
        for f in plan.flows:
            host_flows[f.host] = host_flows.get(f.host, 0) + 1
            if f.ext_port is None:
                continue
            if not PORT_LO <= f.ext_port <= PORT_HI:
                chk.err("%s: external port %d outside ports=%d-%d" % (f, f.ext_port, PORT_LO,
                                                                       PORT_HI))
            if f.ext_port in by_port:
                chk.err("%s and %s share external port %d" % (by_port[f.ext_port], f, f.ext_port))
            by_port[f.ext_port] = f
            host_blocks.setdefault(f.host, set()).add((f.ext_port - PORT_LO) // BLOCK)
        owner = {}
        for host, blocks in sorted(host_blocks.items()):
            need = -(-host_flows[host] // BLOCK)
            if len(blocks) != need:
                chk.err("host %s: %d flows in %d port blocks, expected %d" %
                        (host, host_flows[host], len(blocks), need))
            for b in blocks:
                if b in owner:
                    chk.err("port block %d-%d shared by %s and %s" % (
                        PORT_LO + b * BLOCK, PORT_LO + b * BLOCK + BLOCK - 1, owner[b], host))
                owner[b] = host

        # -- phase 2: the outside answers ------------------------------
        plan.build_outside()

        def received():
            n = mbxd.query("/mbx/port", "1")["rx_packets"]
            return n >= peer.sent, n
        for i, pkt in enumerate(plan.outside):
            peer.send(pkt.frame)
            if (i + 1) % PACE == 0 or i + 1 == len(plan.outside):
                ok, got = wait_for("port 1 rx", received)
                if not ok:
                    chk.err("mbxd received %s of the %d packets the peer sent" % (got, peer.sent))
                    break
        exp = expected_counters(plan, peer.sent)

        def phase2():
            snap = mbxd.snapshot()
            return not counter_diffs(exp, snap, plan.expect_parse, ""), snap
        done, snap = wait_for("counters", phase2)
        damage(args.brk, "counters", [], plan, snap)
        for d in counter_diffs(exp, snap, plan.expect_parse, "telemetry: "):
            chk.err(d)
        peer.collect(0.1)
        for fr in peer.frames[n_phase1:]:
            pkt = plan.by_key.get(frame_key(fr))
            chk.err("outside: late or unexpected frame: %s" % (pkt.desc if pkt else describe(fr)))

        mbxd.stop()
        with open(mbxd.log) as f:
            out = f.read()
        if mbxd.rc != 0:
            chk.err("mbxd exited with %s after SIGTERM (see %s)" % (mbxd.rc, mbxd.log))
        printed = final_printout(out)
        want_nat = exp["nat"]
        if printed.get("nf nat") != want_nat:
            chk.err("final printout nf nat: %s, expected %s" % (printed.get("nf nat"), want_nat))
        want_parse = dict(plan.expect_parse)
        want_parse.setdefault("non_ip", 0)
        if printed.get("parse") != want_parse:
            chk.err("final printout parse: %s, expected %s" % (printed.get("parse"), want_parse))

        # -- out_inside.pcap: the translated replies ------------------------
        frames_in = [bytes(d) for d, _ in RawPcapReader(mbxd.out_inside)] \
            if os.path.exists(mbxd.out_inside) else []
        damage(args.brk, "in", frames_in, plan)
        seen_in = chk.match(plan, frames_in, "inside", ("back", "v6", "arp"))
        for n, pkt, frame in sorted(seen_in.values(), key=lambda t: t[0]):
            if pkt.kind == "back":
                f = pkt.flow
                chk.same("inside: " + pkt.desc,
                         rewritten(pkt.frame, dst=f.host, port=f.sport, side="dst"), frame,
                         pkt.frame)
            else:
                chk.same("inside: " + pkt.desc, pkt.frame, frame, pkt.frame)
        in_expected = [p for p in plan.outside if p.kind in ("back", "v6", "arp")]
        missing = [p for p in in_expected if p.key not in seen_in]
        for p in missing[:10]:
            chk.err("inside: %s did not come out" % p.desc)
        if len(missing) > 10:
            chk.err("inside: ... and %d more packets did not come out" % (len(missing) - 10))
        chk.order("inside", seen_in)
    finally:
        if mbxd is not None:
            mbxd.stop()
        if ns is not None:
            ns.close()

    # -- summary -----------------------------------------------------------
    protos = {}
    for f in plan.flows:
        protos[f.proto] = protos.get(f.proto, 0) + 1
    ports = sorted(by_port)
    print("nat_golden, %d worker%s: %s in %.1f s" % (
        args.workers, "s" if args.workers > 1 else "", "FAIL" if chk.errors else "PASS",
        time.time() - t0))
    print("  flows: %d IPv4 (%s) from %d hosts, %d packets out, %d replies; %d IPv6 flows" % (
        len(plan.flows), ", ".join("%d %s" % (n, p) for p, n in sorted(protos.items())),
        len(HOSTS), exp["nat"]["translated_out"], exp["nat"]["translated_in"],
        len(plan.v6_flows)))
    if ports:
        print("  mappings: %d distinct external ports %d-%d in %d blocks of %d" % (
            len(ports), ports[0], ports[-1], len(owner), BLOCK))
    print("  nat: %s" % " ".join("%s=%s" % kv for kv in snap["nat"].items()))
    print("  parse: %s" % " ".join("%s=%s" % kv for kv in snap["parse"].items() if kv[1]))
    print("  ports: 0 rx %s tx %s, 1 rx %s tx %s; workers: tx_dropped %s handoff_in %s" % (
        snap["port0"]["rx_packets"], snap["port0"]["tx_packets"], snap["port1"]["rx_packets"],
        snap["port1"]["tx_packets"], snap["stats"].get("tx_dropped"),
        snap["stats"].get("handoff_in")))
    return chk.errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=1, choices=(1, 2, 3))
    ap.add_argument("--mbxd", default=mbxrun.MBXD)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--break", dest="brk", choices=sorted(BREAKS),
                    help="checker self-test: damage the observations; the run must fail")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("nat_golden: SKIP: needs root (network namespace, veth)")
        return 77
    if not os.access(args.mbxd, os.X_OK):
        print("nat_golden: FAIL: no mbxd at %s" % args.mbxd)
        return 1

    def on_term(sig, frame):
        raise KeyboardInterrupt("signal %d" % sig)
    signal.signal(signal.SIGTERM, on_term)

    workdir = tempfile.mkdtemp(prefix="nat_golden_%dw_" % args.workers)
    errors = ["did not finish"]
    try:
        errors = test(args, workdir)
    except Failed as e:
        errors = [str(e)]
    except Exception as e:  # noqa: BLE001 - report, clean up, fail
        traceback.print_exc()
        errors = ["%s: %s" % (type(e).__name__, e)]
    finally:
        if args.keep or errors:
            print("nat_golden: work directory kept: %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.brk:
        print("  --break %s: %s" % (args.brk, BREAKS[args.brk]))
    if errors:
        print("nat_golden: FAIL: %d mismatch%s:" % (len(errors), "es" if len(errors) > 1 else ""))
        for e in errors[:40]:
            print("  - " + e)
        if len(errors) > 40:
            print("  - ... and %d more" % (len(errors) - 40))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
