#!/usr/bin/python3
"""lb state moves between two real mbxd processes; connections keep their backends.

A runs lb on a pcap of 120 client connections (TCP and UDP from 12 hosts to
the VIP) replayed forever into a null sink. Mid-traffic, `mbxctl get-state
--scope all -o dump` exports A's backend set and Maglev table, its
per-backend counts and its connections; `mbxctl put-state -i dump` installs
them into B, an lb between two veth pairs in a namespace of the test's own,
started with the same backends listed in another order. Then, judged by
the packets that come out of B:

- B built the same Maglev table as A before the import;
- every connection leaves B for the backend A gave it, checksums correct,
  and the backends' replies come back from the VIP;
- B's per-backend counts add up to A's;
- a PutAllflows that adds a backend and drains another while traffic runs
  keeps every connection on its backend, drained one included; new
  connections avoid the drained backend and find the new one;
- removing a backend ends its connections (their packets are dropped and
  counted) and leaves the others alone;
- a PutAllflows for another VIP is refused and changes nothing;
- per-flow state for a backend B does not have is refused, nothing installed.
"""
import ipaddress
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import mbxrun  # noqa: E402
import wire  # noqa: E402

sys.path.insert(0, os.path.join(mbxrun.BUILD, "controller-shim", "python"))
import mbx  # noqa: E402
from mbx.v1 import common_pb2, lb_pb2  # noqa: E402
from scapy.all import IP, TCP, UDP, Ether, Raw, wrpcap  # noqa: E402

MBXCTL = os.path.join(mbxrun.BUILD, "controller-shim", "mbxctl")
VIP = "198.18.0.10"
BACKENDS = [("10.1.0.1", 8080, 1), ("10.1.0.2", 8080, 2), ("10.1.0.3", 8080, 1),
            ("10.1.0.4", 8080, 1)]
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def spec(backends):
    return "lb,vip=%s:80,backends=[%s]" % (VIP, ",".join("%s:%d@%d" % b for b in backends))


def flows(n=120, first_port=20000):
    return [("udp" if i % 4 == 0 else "tcp", "10.0.0.%d" % (i % 12 + 1), first_port + i)
            for i in range(n)]


def client_pkt(kind, host, port, payload=b"mbx"):
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    l4 = UDP(sport=port, dport=80) if kind == "udp" else TCP(sport=port, dport=80, flags="A")
    return eth / IP(src=host, dst=VIP) / l4 / Raw(payload)


def reply_pkt(kind, host, port, backend):
    eth = Ether(src="02:00:00:00:00:03", dst="02:00:00:00:00:04")
    baddr, bport = backend
    l4 = UDP(sport=bport, dport=port) if kind == "udp" else TCP(sport=bport, dport=port, flags="A")
    return eth / IP(src=baddr, dst=host) / l4 / Raw(b"reply")


def key_of(kind, host, port):
    return (17 if kind == "udp" else 6, host, port)


def mapping_of(client, chunks):
    """{(proto, client, port): (backend, backend port)} from per-flow chunks."""
    out = {}
    for c in chunks:
        s = client.decode_state(c)
        out[(c.key.proto, str(ipaddress.ip_address(c.key.src)), c.key.sport)] = (
            str(ipaddress.ip_address(s.backend)), s.backend_port)
    return out


def sums_of(client):
    """{backend: [active, connections]} summed over the workers' entries."""
    out = {}
    for c in client.get_state("multi-flow", nf="lb"):
        s = client.decode_state(c)
        t = out.setdefault(str(ipaddress.ip_address(s.backend)), [0, 0])
        t[0] += s.active
        t[1] += s.connections
    return out


def all_flows(client):
    chunks = list(client.get_state("all-flows", nf="lb"))
    return client.decode_state(chunks[0]) if len(chunks) == 1 else None


def put_backends(client, backends, vip=VIP):
    m = lb_pb2.LbBackends(vip=ipaddress.ip_address(vip).packed, vip_port=80, backends=[
        lb_pb2.LbBackend(addr=ipaddress.ip_address(a).packed, port=p, weight=w)
        for a, p, w in backends])
    chunk = common_pb2.StateChunk(nf="lb", scope=common_pb2.SCOPE_ALL_FLOWS, version=1,
                                  state=m.SerializeToString())
    return client.call("/mbx.v1.State/PutAllflows", chunks=[chunk])


def mbxctl(at, *args):
    return subprocess.run([MBXCTL, "--at", at] + list(args), capture_output=True, text=True)


def csum_ok(p):
    q = p.copy()
    del q[IP].chksum
    del q[IP].payload.chksum
    return bytes(Ether(bytes(q))) == bytes(p)


def where(frames):
    """{(proto, client, port): [(dst, dport), ...]} of frames leaving B, and bad checksums."""
    out, bad = {}, 0
    for fr in frames:
        p = Ether(fr)
        if IP not in p or p[IP].proto not in (6, 17):
            continue
        l4 = p[IP].payload
        out.setdefault((p[IP].proto, p[IP].src, l4.sport), []).append((p[IP].dst, l4.dport))
        bad += not csum_ok(p)
    return out, bad


def lb_counter(cb, name):
    for nf in cb.stats().nfs:
        if nf.name == "lb":
            return {c.name: c.value for c in nf.counters}[name]
    return None


def main():
    tmp = tempfile.mkdtemp(prefix="mbx-lb-state-")
    fl = flows()
    pcap = os.path.join(tmp, "a.pcap")
    wrpcap(pcap, [client_pkt(*f) for f in fl])
    pa = mbxrun.unique_prefix("lbA")
    sock_a, sock_b = os.path.join(tmp, "a.sock"), os.path.join(tmp, "b.sock")
    a = mbxrun.Proc([mbxrun.MBXD] + mbxrun.eal_args(pa, vdevs=[
        "net_pcap0,rx_pcap=%s,infinite_rx=1" % pcap, "net_null0,no-rx=1"]) + [
        "--", "--nf", spec(BACKENDS), "--idle-sleep-us", "50", "--control", "unix:" + sock_a],
        pa, log_path=os.path.join(tmp, "a.log"))
    ns = wire.Netns("lbst")
    b = None
    try:
        mbxrun.wait_until(lambda: a.query("/mbx/table")["flows"] == len(fl), what="A's flows")
        dump = os.path.join(tmp, "dump.bin")
        tx0 = a.query("/mbx/port", 1)["tx_packets"]
        r = mbxctl("unix:" + sock_a, "get-state", "--scope", "all", "-o", dump)
        check(r.returncode == 0, "mbxctl get-state --scope all -o exports mid-traffic " + r.stderr)
        check(a.query("/mbx/port", 1)["tx_packets"] > tx0, "A forwarded during the export")
        with mbx.Client("unix:" + sock_a) as ca:
            a_chunks = list(ca.get_perflow(nf="lb"))
            a_map = mapping_of(ca, a_chunks)
            a_all = all_flows(ca)
            a_sums = sums_of(ca)
        check(len(a_map) == len(fl), "A's export has every connection (%d)" % len(a_map))
        used = {v[0] for v in a_map.values()}
        check(used == {x[0] for x in BACKENDS}, "A's connections use every backend")
        check(a_sums[BACKENDS[1][0]][0] == sum(v[0] == BACKENDS[1][0] for v in a_map.values()),
              "A's multi-flow active count of a backend is its connections")

        inside = ns.veth("ti", "mi")
        outside = ns.veth("to", "mo")
        b = mbxrun.start_mbxd(lambda prefix: ns.argv(
            [mbxrun.MBXD] + mbxrun.eal_args(prefix, vdevs=[
                "net_af_packet0,iface=mi", "net_af_packet1,iface=mo"]) + [
                "--", "--nf", spec(BACKENDS[::-1]), "--idle-sleep-us", "50",
                "--control", "unix:" + sock_b]), "lbB", sock_b, os.path.join(tmp, "b.log"))
        cb = mbx.Client("unix:" + sock_b)
        b_all = all_flows(cb)
        check(b_all is not None and list(b_all.table) == list(a_all.table) and
              list(b_all.backends) == list(a_all.backends),
              "B built A's Maglev table from its backends in reverse order")
        r = mbxctl("unix:" + sock_b, "put-state", "-i", dump)
        check(r.returncode == 0 and '"installed"' in r.stdout,
              "mbxctl put-state -i installs the dump into B " + r.stdout + r.stderr)
        check(mapping_of(cb, cb.get_perflow(nf="lb")) == a_map, "B holds A's connections")
        b_sums = sums_of(cb)
        check(all(b_sums.get(k, [0, 0])[1] == v[1] for k, v in a_sums.items()) and
              all(b_sums[k][0] == sum(x[0] == k for x in a_map.values()) for k in used),
              "B's per-backend counts add up to A's: %s" % b_sums)

        def through(flist, expect=None):
            """Send one packet of each flow into B; where each came out, and bad checksums."""
            outside.drain()
            for f in flist:
                inside.send(bytes(client_pkt(*f, payload=b"probe")))
            frames = outside.recv_until(len(flist) if expect is None else expect, timeout=10)
            got, bad = where(frames + outside.recv(0.3))
            return {k: v[0] for k, v in got.items()}, bad

        seen, bad = through(fl)
        check(seen == a_map, "every connection leaves B for A's backend (%d)" % len(seen))
        check(bad == 0, "with correct checksums")
        inside.drain()
        for f in fl:
            outside.send(bytes(reply_pkt(f[0], f[1], f[2], a_map[key_of(*f)])))
        back = [Ether(x) for x in inside.recv_until(len(fl))]
        ok = sum(IP in p and p[IP].src == VIP and p[IP].payload.sport == 80 and csum_ok(p)
                 for p in back)
        check(ok == len(fl), "every backend's reply comes back from the VIP (%d)" % ok)

        # add 10.1.0.5, drain 10.1.0.1, while the connections send
        grown = [("10.1.0.1", 8080, 0)] + BACKENDS[1:] + [("10.1.0.5", 8080, 4)]
        sent = [0]
        stop = threading.Event()

        def traffic():
            while not stop.is_set():
                for f in fl:
                    inside.send(bytes(client_pkt(*f, payload=b"during")))
                    sent[0] += 1
                time.sleep(0.05)
        outside.drain()
        t = threading.Thread(target=traffic)
        t.start()
        mbxrun.wait_until(lambda: sent[0] >= 2 * len(fl), what="traffic")
        before = sent[0]
        put_backends(cb, grown)
        mbxrun.wait_until(lambda: sent[0] >= before + 2 * len(fl), what="traffic")
        stop.set()
        t.join()
        frames = outside.recv_until(sent[0], timeout=15)
        got, bad = where(frames)
        check(len(frames) == sent[0] and bad == 0 and
              all(set(v) == {a_map[k]} for k, v in got.items()) and set(got) == set(a_map),
              "a backend change while %d packets flowed kept every connection on its "
              "backend, the drained one's too (%d out)" % (sent[0], len(frames)))
        new = flows(120, first_port=40000)
        seen_new, _ = through(new)
        dst = [v[0] for v in seen_new.values()]
        check(len(seen_new) == len(new) and "10.1.0.1" not in dst and "10.1.0.5" in dst,
              "new connections avoid the drained backend and find the new one")

        # remove 10.1.0.4: its connections end, the others go on
        put_backends(cb, [x for x in grown if x[0] != "10.1.0.4"])
        gone = [f for f in fl if a_map[key_of(*f)][0] == "10.1.0.4"]
        drops0 = lb_counter(cb, "backend_removed_drops")
        seen, _ = through(fl, expect=len(fl) - len(gone))
        check(gone and seen == {k: v for k, v in a_map.items() if v[0] != "10.1.0.4"},
              "removing a backend ends its %d connections, the others go on" % len(gone))
        check(lb_counter(cb, "backend_removed_drops") - drops0 == len(gone),
              "and their packets are counted as backend_removed_drops")

        # another VIP: refused, nothing changes
        snap = all_flows(cb).SerializeToString()
        try:
            put_backends(cb, BACKENDS, vip="198.18.0.11")
            check(False, "a put for another VIP is refused")
        except mbx.MbxError as e:
            check(e.code == 22 and "nothing installed" in e.message,
                  "a put for another VIP is refused: " + e.message)
        check(all_flows(cb).SerializeToString() == snap, "and B's backends are unchanged")
        seen, _ = through([f for f in fl if f not in gone])
        check(seen == {k: v for k, v in a_map.items() if v[0] != "10.1.0.4"},
              "and its connections too")

        # per-flow state for a backend B no longer has: refused, nothing installed
        for kind, host, port in gone:
            cb.del_state(filter="src=%s/32,sport=%d" % (host, port))
        gone_keys = {key_of(*f) for f in gone}
        chunks = [c for c in a_chunks if list(mapping_of(cb, [c]))[0] in gone_keys]
        try:
            cb.put_state(chunks)
            check(False, "connections to a backend B does not have are refused")
        except mbx.MbxError as e:
            check(e.code == 22 and "nothing installed" in e.message and
                  "not in this instance's set" in e.message,
                  "connections to a backend B does not have are refused, saying why: " +
                  e.message)
        left = mapping_of(cb, cb.get_perflow(nf="lb"))
        check(not any(key_of(*f) in left for f in gone), "and none of them is installed")
        cb.close()
    finally:
        for proc in (a, b):
            if proc is not None:
                proc.stop()
        ns.close()
    if FAILS:
        print("\n%d check(s) failed; logs in %s" % (len(FAILS), tmp))
        sys.exit(1)
    print("\nall checks passed")


if __name__ == "__main__":
    main()
