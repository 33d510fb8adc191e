#!/usr/bin/python3
"""NAT state moves between two real mbxd processes and keeps working.

A runs nat on a pcap of 300 flows (TCP, UDP, ICMP echo from 10 hosts)
replayed forever into a null sink. Mid-traffic, `mbxctl get-state --scope
all -o dump` exports A's pool, host port blocks and mappings, and `mbxctl
put-state -i dump` installs them into B, a fresh nat instance between two
veth pairs in a namespace of the test's own. Then, judged by packets:

- every flow B receives from the inside leaves with exactly the external
  address and port A had given it, checksums correct, and the replies from
  outside come back to the original inside endpoint;
- a new flow gets a port no imported flow holds;
- deleting by filter on B removes exactly the matching flows;
- putting the same dump again is refused and changes nothing;
- an instance with another pool in use refuses the dump and changes nothing.

Then a dump of 10,000 made-up mappings, more than one put-state call holds
(mbxctl pipelines its calls), goes into a fresh instance D and comes back
out of it with get-state -o byte for byte; a dump refused in a later call
says so and leaves exactly the earlier calls' flows; a corrupt file sends
nothing.
"""
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import mbxrun  # noqa: E402
import wire  # noqa: E402

sys.path.insert(0, os.path.join(mbxrun.BUILD, "controller-shim", "python"))
import mbx  # noqa: E402
from mbx.v1 import common_pb2, nat_pb2, state_pb2  # noqa: E402
from scapy.all import ICMP, IP, TCP, UDP, Ether, Raw, wrpcap  # noqa: E402

MBXCTL = os.path.join(mbxrun.BUILD, "controller-shim", "mbxctl")
EXT = "198.51.100.1"
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def flows():
    out = []
    for i in range(300):
        host = "10.0.0.%d" % (i % 10 + 1)
        kind = ("udp", "tcp", "icmp")[i % 3]
        out.append((kind, host, 20000 + i))
    return out


def inside_pkt(kind, host, port, payload=b"mbx"):
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    ip = IP(src=host, dst="192.0.2.7")
    l4 = {"udp": UDP(sport=port, dport=4000), "tcp": TCP(sport=port, dport=443, flags="A"),
          "icmp": ICMP(type=8, id=port)}[kind]
    return eth / ip / l4 / Raw(payload)


def mapping_of(client, chunks):
    """{(proto, inside ip, inside port): (ext ip, ext port)} from per-flow chunks."""
    out = {}
    for c in chunks:
        s = client.decode_state(c)
        out[(s.proto, ".".join(map(str, s.in_addr)), s.in_port)] = (
            ".".join(map(str, s.ext_addr)), s.ext_port)
    return out


def mbxctl(at, *args):
    return subprocess.run([MBXCTL, "--at", at] + list(args), capture_output=True, text=True)


def csum_ok(p):
    q = p.copy()
    del q[IP].chksum
    for layer in (TCP, UDP, ICMP):
        if layer in q:
            del q[layer].chksum
    q = Ether(bytes(q))
    return bytes(q) == bytes(p)


EXT_D = "198.51.100.9"


def made_up(first_host, n, want):
    """n per-flow NAT chunks: host first_host + i // 64 holds port i % 64 of its
    own block of D's pool; their mappings go into want."""
    out = []
    for i in range(n):
        h = first_host + i // 64
        host = "10.2.%d.%d" % (h // 256, h % 256)
        sport, eport = 20000 + i % 64, 1024 + 64 * h + i % 64
        st = nat_pb2.NatFlowState(in_addr=bytes(map(int, host.split("."))), in_port=sport,
                                  ext_addr=bytes(map(int, EXT_D.split("."))), ext_port=eport,
                                  proto=17)
        c = common_pb2.StateChunk(nf="nat", version=1, state=st.SerializeToString())
        c.key.CopyFrom(mbx.flow_key(17, host, "192.0.2.7", sport, 4000))
        c.reply_key.CopyFrom(mbx.flow_key(17, "192.0.2.7", EXT_D, 4000, eport))
        out.append(c)
        want[(17, host, sport)] = (EXT_D, eport)
    return out


def write_dump(path, chunks):
    with open(path, "wb") as f:
        f.write(b"MBXSTAT1")
        for c in chunks:
            b = c.SerializeToString()
            f.write(struct.pack(">I", len(b)) + b)


def read_dump(path):
    data = open(path, "rb").read()
    assert data[:8] == b"MBXSTAT1"
    out, off = [], 8
    while off < len(data):
        n = struct.unpack(">I", data[off:off + 4])[0]
        out.append(data[off + 4:off + 4 + n])
        off += 4 + n
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="mbx-transfer-")
    fl = flows()
    pcap = os.path.join(tmp, "a.pcap")
    wrpcap(pcap, [inside_pkt(*f) for f in fl])

    pa = mbxrun.unique_prefix("xferA")
    sock_a = os.path.join(tmp, "a.sock")
    a = mbxrun.Proc([mbxrun.MBXD] + mbxrun.eal_args(pa, vdevs=[
        "net_pcap0,rx_pcap=%s,infinite_rx=1" % pcap, "net_null0,no-rx=1"]) + [
        "--", "--nf", "nat,ext_ip=" + EXT, "--idle-sleep-us", "20", "--control", "unix:" + sock_a],
        pa, log_path=os.path.join(tmp, "a.log"))
    ns = wire.Netns("xf")
    b = c3 = None
    extra = []
    try:
        mbxrun.wait_until(lambda: a.query("/mbx/table")["flows"] == len(fl), what="A's 300 flows")
        dump = os.path.join(tmp, "dump.bin")
        tx0 = a.query("/mbx/port", 1)["tx_packets"]
        r = mbxctl("unix:" + sock_a, "get-state", "--scope", "all", "-o", dump)
        check(r.returncode == 0, "mbxctl get-state --scope all -o exports mid-traffic " + r.stderr)
        check(a.query("/mbx/port", 1)["tx_packets"] > tx0, "A forwarded during the export")
        with mbx.Client("unix:" + sock_a) as ca:
            a_map = mapping_of(ca, ca.get_perflow(nf="nat"))
        check(len(a_map) == len(fl), "A's export has every flow (%d)" % len(a_map))

        # B: a fresh nat between two wires
        inside = ns.veth("ti", "mi")
        outside = ns.veth("to", "mo")
        sock_b = os.path.join(tmp, "b.sock")
        b = mbxrun.start_mbxd(lambda prefix: ns.argv(
            [mbxrun.MBXD] + mbxrun.eal_args(prefix, vdevs=[
                "net_af_packet0,iface=mi", "net_af_packet1,iface=mo"]) + [
                "--", "--nf", "nat,ext_ip=" + EXT, "--idle-sleep-us", "20",
                "--control", "unix:" + sock_b]), "xferB", sock_b, os.path.join(tmp, "b.log"))
        r = mbxctl("unix:" + sock_b, "put-state", "-i", dump)
        check(r.returncode == 0 and '"installed"' in r.stdout,
              "mbxctl put-state -i installs the dump into B " + r.stdout + r.stderr)
        cb = mbx.Client("unix:" + sock_b)
        b_map = mapping_of(cb, cb.get_perflow(nf="nat"))
        check(b_map == a_map, "B holds A's mappings, flow for flow")

        # packets through B use A's mappings, and replies find their way back
        for f in fl:
            inside.send(bytes(inside_pkt(*f, payload=b"probe")))
        out = [Ether(x) for x in outside.recv_until(len(fl))]
        out = [p for p in out if IP in p]
        seen, bad = {}, 0
        for p in out:
            l4 = p[IP].payload
            ext_port = l4.id if ICMP in p else l4.sport
            key = None
            for (proto, host, port), (eip, eport) in a_map.items():
                if eport == ext_port and p[IP].proto == proto:
                    key = (proto, host, port)
            seen[key] = (p[IP].src, ext_port)
            bad += not csum_ok(p)
        check(len(out) == len(fl) and None not in seen and all(
            seen[k] == a_map[k] for k in seen), "every flow leaves B with A's mapping (%d)" % len(out))
        check(bad == 0, "translated packets have correct checksums")
        for (proto, host, port), (eip, eport) in a_map.items():
            eth = Ether(src="02:00:00:00:00:03", dst="02:00:00:00:00:04")
            ip = IP(src="192.0.2.7", dst=eip)
            l4 = {17: UDP(sport=4000, dport=eport), 6: TCP(sport=443, dport=eport, flags="A"),
                  1: ICMP(type=0, id=eport)}[proto]
            outside.send(bytes(eth / ip / l4 / Raw(b"reply")))
        back = [Ether(x) for x in inside.recv_until(len(a_map))]
        ok = 0
        for p in back:
            if IP not in p:
                continue
            l4 = p[IP].payload
            port = l4.id if ICMP in p else l4.dport
            ok += (p[IP].proto, p[IP].dst, port) in a_map and csum_ok(p)
        check(ok == len(a_map), "every reply reaches its inside endpoint (%d)" % ok)

        inside.send(bytes(inside_pkt("udp", "10.0.0.1", 999)))
        new = [Ether(x) for x in outside.recv_until(1)]
        used = {v for v in a_map.values()}
        check(len(new) == 1 and (new[0][IP].src, new[0][UDP].sport) not in used,
              "a new flow gets a port no imported flow holds")

        # delete by filter removes exactly the matching flows
        before = mapping_of(cb, cb.get_perflow())
        deleted = cb.del_state(filter="src=10.0.0.0/30")
        after = mapping_of(cb, cb.get_perflow())
        gone = set(before) - set(after)
        want = {k for k in before if k[1] in ("10.0.0.1", "10.0.0.2", "10.0.0.3")}
        check(gone == want and deleted == len(want) and set(after) <= set(before),
              "delete by filter removes exactly the %d matching flows" % len(want))

        # the same dump again is refused, and nothing changes
        r = mbxctl("unix:" + sock_b, "put-state", "-i", dump)
        check(r.returncode != 0 and "nothing installed" in r.stderr,
              "a conflicting put is refused: " + r.stderr.strip())
        check(mapping_of(cb, cb.get_perflow()) == after, "and B's state is unchanged")
        cb.close()

        # an instance whose own pool is in use refuses another pool
        p3 = mbxrun.unique_prefix("xferC")
        sock_c = os.path.join(tmp, "c.sock")
        one = os.path.join(tmp, "one.pcap")
        wrpcap(one, [inside_pkt("udp", "10.9.9.9", 1)])
        c3 = mbxrun.Proc([mbxrun.MBXD] + mbxrun.eal_args(p3, vdevs=[
            "net_pcap0,rx_pcap=%s" % one, "net_null0,no-rx=1"]) + [
            "--", "--nf", "nat,ext_ip=203.0.113.1", "--control", "unix:" + sock_c],
            p3, log_path=os.path.join(tmp, "c.log"))
        mbxrun.wait_until(lambda: c3.query("/mbx/table")["flows"] == 1, what="C's one flow")
        r = mbxctl("unix:" + sock_c, "put-state", "-i", dump)
        check(r.returncode != 0 and "refused the all-flows state" in r.stderr,
              "another pool in use refuses the dump: " + r.stderr.strip())
        with mbx.Client("unix:" + sock_c) as cc:
            check(len(list(cc.get_perflow())) == 1, "and that instance is unchanged")

        # many calls: 10,000 mappings, made up, one per port of 157 hosts' blocks
        d, d_at = None, None
        pd = mbxrun.unique_prefix("xferD")
        sock_d = os.path.join(tmp, "d.sock")
        d_at = "unix:" + sock_d
        d = mbxrun.Proc([mbxrun.MBXD] + mbxrun.eal_args(pd, vdevs=["net_null0,no-rx=1"]) + [
            "--", "--nf", "nat,ext_ip=" + EXT_D, "--control", d_at, "--flows", "40000"],
            pd, log_path=os.path.join(tmp, "d.log"))
        extra.append(d)
        mbxrun.wait_until(lambda: os.path.exists(sock_d), what="D's control socket")
        want = {}
        big = os.path.join(tmp, "big.bin")
        write_dump(big, made_up(0, 10000, want))
        r = mbxctl(d_at, "put-state", "-i", big)
        check(r.returncode == 0 and '"installed":10000' in r.stdout,
              "10,000 chunks in pipelined calls are installed " + r.stdout + r.stderr)
        check(d.query("/mbx/table")["flows"] == 10000, "D holds 10,000 flows")
        with mbx.Client(d_at) as cd:
            check(mapping_of(cd, cd.get_perflow()) == want, "D holds every made-up mapping")
        back = os.path.join(tmp, "back.bin")
        r = mbxctl(d_at, "get-state", "-o", back)
        check(r.returncode == 0 and '"chunks":10000' in r.stdout,
              "get-state -o writes them out " + r.stdout + r.stderr)
        check(sorted(read_dump(back)) == sorted(read_dump(big)),
              "the file holds the very chunks put in, byte for byte")

        # refused in a later call: the earlier calls' flows stay, and it says how many
        more = made_up(157, 10000, {})
        more[9000].nf = "nope"
        bad = os.path.join(tmp, "bad.bin")
        write_dump(bad, more)
        r = mbxctl(d_at, "put-state", "-i", bad)
        m = re.search(r"(\d+) chunks of earlier calls stay installed", r.stderr)
        kept = int(m.group(1)) if m else -1
        check(r.returncode != 0 and "no NF 'nope'" in r.stderr and "nothing installed" in r.stderr,
              "a chunk refused in a later call fails the put: " + r.stderr.strip())
        check(0 <= kept < 9000 and d.query("/mbx/table")["flows"] == 10000 + kept,
              "exactly the calls before it stay installed (%d)" % kept)

        # a client gone before the answer: a Put is all or nothing, so it gets nothing
        before = d.query("/mbx/table")["flows"]
        req = state_pb2.PutPerflowRequest(chunks=made_up(314, 20000, {}))
        env = common_pb2.Envelope(call_id=1, method="/mbx.v1.State/PutPerflow",
                                  payload=req.SerializeToString()).SerializeToString()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(sock_d)
            s.sendall(struct.pack(">BI", 0, len(env)) + env)
        mbxrun.wait_until(lambda: "a Put's client went away" in d.output(), timeout=10,
                          what="D to see the client gone")
        check(d.query("/mbx/table")["flows"] == before,
              "a Put of 20,000 flows whose client left at once installs none of them (%d "
              "flows before, %d after)" % (before, d.query("/mbx/table")["flows"]))

        # a corrupt file sends nothing
        raw_big = open(big, "rb").read()
        for what, data in (
                ("a length past the end", raw_big[:-10]),
                ("bytes that are no StateChunk",
                 raw_big[:8] + struct.pack(">I", 2) + b"\xff\xff" + raw_big[8:]),
                ("a key that does not decode",
                 raw_big + struct.pack(">I", 4) + b"\x1a\x02\x0b\x01")):
            path = os.path.join(tmp, "corrupt.bin")
            with open(path, "wb") as f:
                f.write(data)
            before = d.query("/mbx/table")["flows"]
            r = mbxctl(d_at, "put-state", "-i", path)
            check(r.returncode != 0 and "corrupt chunk" in r.stderr and
                  d.query("/mbx/table")["flows"] == before,
                  "a file with %s is refused before anything is sent: %s" % (
                      what, r.stderr.strip()))
    finally:
        for proc in (a, b, c3) + tuple(extra):
            if proc is not None:
                proc.stop()
        ns.close()
    if FAILS:
        print("\n%d check(s) failed; logs in %s" % (len(FAILS), tmp))
        sys.exit(1)
    print("\nall checks passed")


if __name__ == "__main__":
    main()
