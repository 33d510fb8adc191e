#!/usr/bin/python3
"""mbx demo: NAT over a pcap of a few hundred flows, with a readable report.

Writes demo-out/inside.pcap (TCP, UDP and ICMP echo flows from 20 inside
hosts, some IPv6 and a few malformed frames), runs mbxd with the nat NF on
net_pcap ports, reads its counters through rte_telemetry, stops it with
SIGTERM, then reads the translated packets back and prints the mappings.
"""
import collections
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "lib"))
import mbxrun  # noqa: E402

from scapy.all import ICMP, IP, IPv6, TCP, UDP, Ether, Raw, rdpcap, wrpcap  # noqa: E402

EXT_IP = "198.51.100.1"
OUT = os.path.join(mbxrun.ROOT, "demo-out")


def make_traffic():
    pkts, flows = [], []
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    for i in range(300):
        host = "10.0.0.%d" % (i % 20 + 1)
        server = "192.0.2.%d" % (i % 7 + 1)
        if i % 6 == 5:
            flows.append(("icmp", host, 0x100 + i))
            l4 = [ICMP(type=8, id=0x100 + i, seq=s) for s in range(2)]
        elif i % 3 == 0:
            flows.append(("tcp", host, 20000 + i))
            l4 = [TCP(sport=20000 + i, dport=443, flags=f, seq=1000 + s)
                  for s, f in enumerate(["S", "A", "PA"])]
        else:
            flows.append(("udp", host, 30000 + i))
            l4 = [UDP(sport=30000 + i, dport=4000) for _ in range(3)]
        for n, l in enumerate(l4):
            pkts.append(eth / IP(src=host, dst=server) / l / Raw(b"mbx-demo %d/%d" % (i, n)))
    for i in range(10):
        pkts.append(eth / IPv6(src="2001:db8::%x" % (i + 1), dst="2001:db8:1::1") / UDP(sport=5000 + i, dport=53))
    bad = eth / IP(src="10.0.0.1", dst="192.0.2.1") / UDP(sport=1, dport=2) / Raw(b"x" * 8)
    raw = bytearray(bytes(bad))
    raw[14] = 0x43  # IHL 3: a header shorter than the minimum
    malformed = [bytes(raw), bytes(bad)[:30], bytes(eth / IP(src="10.0.0.1", dst="192.0.2.1", flags="MF") / UDP())]
    return pkts, flows, malformed


def main():
    os.makedirs(OUT, exist_ok=True)
    pkts, flows, malformed = make_traffic()
    inside = os.path.join(OUT, "inside.pcap")
    wrpcap(inside, pkts + [Ether(m) for m in malformed])
    empty = os.path.join(OUT, "empty.pcap")
    wrpcap(empty, [])
    outside = os.path.join(OUT, "outside.pcap")
    prefix = mbxrun.unique_prefix("demo")
    argv = [mbxrun.MBXD] + mbxrun.eal_args(prefix, vdevs=[
        "net_pcap0,rx_pcap=%s,tx_pcap=%s" % (inside, os.path.join(OUT, "inside-out.pcap")),
        "net_pcap1,rx_pcap=%s,tx_pcap=%s" % (empty, outside)]) + [
        "--", "--nf", "nat,ext_ip=" + EXT_IP, "--idle-sleep-us", "100"]
    total = len(pkts) + len(malformed)
    print("demo: %d packets (%d IPv4 flows, 10 IPv6, %d malformed) into mbxd --nf nat,ext_ip=%s"
          % (total, len(flows), len(malformed), EXT_IP))
    proc = mbxrun.Proc(argv, prefix, log_path=os.path.join(OUT, "mbxd.log"))
    try:
        mbxrun.wait_until(lambda: proc.query("/mbx/stats")["rx_packets"] >= total,
                          what="mbxd to receive the pcap")
        mbxrun.wait_until(lambda: proc.query("/mbx/port", 1)["tx_packets"] >= len(pkts),
                          what="mbxd to send the translated packets")
        nf = proc.query("/mbx/nf", "nat")
        table = proc.query("/mbx/table")
        parse = proc.query("/mbx/parse")
    finally:
        rc = proc.stop()
    if rc != 0:
        sys.exit("demo: mbxd exited with %s; see %s" % (rc, proc.log_path))

    out = [p for p in rdpcap(outside) if IP in p]
    mapping = collections.OrderedDict()
    for p in out:
        l4 = p[IP].payload
        proto = {6: "tcp", 17: "udp", 1: "icmp"}[p[IP].proto]
        tag = bytes(l4.payload).split(b" ")[1].split(b"/")[0]
        i = int(tag)
        ext = l4.id if proto == "icmp" else l4.sport
        mapping.setdefault(i, set()).add((p[IP].src, ext))
    stable = all(len(v) == 1 for v in mapping.values())
    ext_ports = {next(iter(v)) for v in mapping.values()}
    print("\nmappings (inside -> outside), first 8 of %d:" % len(mapping))
    for i in list(mapping)[:8]:
        proto, host, port = flows[i]
        ext_ip, ext_port = next(iter(mapping[i]))
        print("  %-4s %s:%-5d -> %s:%d" % (proto, host, port, ext_ip, ext_port))
    print("\nflows in the table:   %d" % table["flows"])
    print("mappings created:     %d" % nf["mappings_created"])
    print("translated out:       %d" % nf["translated_out"])
    print("IPv6 passed:          %d" % nf["ipv6_passed"])
    print("malformed dropped:    %s" % ", ".join("%s=%d" % (k, v) for k, v in parse.items() if v and k != "non_ip"))
    print("distinct ext ports:   %d for %d flows; one mapping per flow: %s"
          % (len(ext_ports), len(mapping), "yes" if stable else "NO"))
    ok = (stable and len(ext_ports) == len(flows) == len(mapping) and nf["mappings_created"] == len(flows))
    print("\ndemo: %s (pcaps and the mbxd log are in %s)" % ("NAT works" if ok else "MISMATCH", OUT))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
