#!/usr/bin/python3
"""A hostile southbound client cannot hurt mbxd.

mbxd runs NAT on a pcap replayed forever into a null sink, so it forwards all
along. Against its control socket this sends random bytes, truncated frames,
a 4 GiB length prefix, a compressed flag, unknown methods, undecodable
requests, 10k connections opened and dropped and more connections than
--control-max-conns at once. After each attack a well-behaved client must
still be answered, forwarding must still progress, and at the end mbxd's
resident memory must not have grown by more than a bound. A TCP listener off
loopback must refuse to start without --control-token, and with one must
refuse clients that do not send it.
"""
import os
import random
import socket
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import mbxrun  # noqa: E402

sys.path.insert(0, os.path.join(mbxrun.BUILD, "controller-shim", "python"))
import mbx  # noqa: E402
from mbx.v1 import common_pb2  # noqa: E402

FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raw(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s


def closed_by_server(s):
    """True if the server closed s (recv returns EOF or the connection resets)."""
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def attack(s, data):
    """Send garbage; mbxd may close the connection before all of it is sent."""
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def frame(method, payload=b"", call_id=1):
    env = common_pb2.Envelope(call_id=call_id, method=method, payload=payload).SerializeToString()
    return struct.pack(">BI", 0, len(env)) + env


def main():
    tmp = tempfile.mkdtemp(prefix="mbx-hostile-")
    pcap = os.path.join(tmp, "in.pcap")
    # 64 UDP flows, written by hand (no scapy needed): Ethernet/IPv4/UDP
    with open(pcap, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for i in range(64):
            udp = struct.pack(">HHHH", 1000 + i, 53, 8 + 18, 0) + b"x" * 18
            ip = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                                       bytes([10, 0, 0, 1 + i % 8]), bytes([192, 0, 2, 1])))
            s = sum(struct.unpack(">10H", bytes(ip)))
            s = (s & 0xffff) + (s >> 16)
            ip[10:12] = struct.pack(">H", ~s & 0xffff)
            pkt = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + bytes(ip) + udp
            f.write(struct.pack("<IIII", 0, 0, len(pkt), len(pkt)) + pkt)
    prefix = mbxrun.unique_prefix("hostile")
    sock = os.path.join(tmp, "ctl.sock")
    argv = [mbxrun.MBXD] + mbxrun.eal_args(prefix, vdevs=[
        "net_pcap0,rx_pcap=%s,infinite_rx=1" % pcap, "net_null0,no-rx=1"]) + [
        "--", "--nf", "nat,ext_ip=198.51.100.1", "--mbufs", "16384", "--control", "unix:" + sock,
        "--control-max-conns", "64"]
    p = mbxrun.Proc(argv, prefix, log_path=os.path.join(tmp, "mbxd.log"))
    try:
        mbxrun.wait_until(lambda: os.path.exists(sock), what="the control socket")
        good = mbx.Client("unix:" + sock)

        def healthy(what):
            info = good.info()
            tx = p.query("/mbx/port", 1)["tx_packets"]
            mbxrun.wait_until(lambda: p.query("/mbx/port", 1)["tx_packets"] > tx,
                              what="forwarding to progress")
            check(info.instance_id == prefix, "answers and forwards after " + what)

        healthy("start-up")
        rss0 = rss_kb(p.p.pid)

        rnd = random.Random(7)
        for i in range(200):
            s = raw(sock)
            attack(s, bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 2000))))
            s.close()
        healthy("200 connections of random bytes")

        s = raw(sock)
        attack(s, b"\x00\xff\xff\xff\xff" + b"A" * 100)
        check(closed_by_server(s), "a 4 GiB length prefix closes that connection")
        s = raw(sock)
        attack(s, b"\x01\x00\x00\x00\x05hello")
        check(closed_by_server(s), "a compressed frame closes that connection")
        s = raw(sock)
        attack(s, b"\x00\x00\x00\x00\x10" + b"\xff" * 16)
        check(closed_by_server(s), "an undecodable envelope closes that connection")
        for cut in (1, 3, 5, 9, 20):
            s = raw(sock)
            attack(s, frame("/mbx.v1.Dataplane/GetInfo")[:cut])
            s.close()
        healthy("truncated frames")

        c = mbx.Client("unix:" + sock)
        c.sock.sendall(frame("/mbx.v1.Nope/Nope", call_id=2))
        env = c._recv(2)
        resp = mbx.v1.dataplane_pb2.GetInfoResponse.FromString(env.payload)
        check(resp.status.code == 38, "an unknown method is answered ENOSYS (got %d)"
              % resp.status.code)
        c.sock.sendall(frame("/mbx.v1.State/GetPerflow", b"\xff\xff\xff", call_id=3))
        env = c._recv(3)
        resp = mbx.v1.state_pb2.GetPerflowResponse.FromString(env.payload)
        check(resp.status.code == 74, "an undecodable request is answered EBADMSG (got %d)"
              % resp.status.code)
        check(c.info().instance_id == prefix, "the same connection goes on after both errors")
        c.close()

        refused = 0
        for i in range(10000):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(sock)
                if i % 10 == 0:
                    s.sendall(b"\x00\x00\x10\x00\x00" + b"z" * 100)  # 1 MiB, never finished
            except (BrokenPipeError, ConnectionResetError):
                refused += 1  # over --control-max-conns while earlier ones close: allowed
            s.close()
        print("     (%d of the 10k refused while others were still closing)" % refused)
        healthy("10k connections opened and dropped")

        held = []
        for i in range(100):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect(sock)
            held.append(s)
        refused = sum(1 for s in held[70:] if closed_by_server(s))
        check(refused >= 25, "connections above --control-max-conns are refused (%d of 30)"
              % refused)
        for s in held:
            s.close()
        healthy("more connections than allowed")

        rss1 = rss_kb(p.p.pid)
        check(rss1 - rss0 < 64 * 1024, "resident memory stayed bounded (%d kB -> %d kB)"
              % (rss0, rss1))
        good.close()
    finally:
        rc = p.stop()
    check(rc == 0, "mbxd exits 0 on SIGTERM after all that (rc=%s)" % rc)

    # a listener off loopback needs a token
    port = 20000 + os.getpid() % 20000
    prefix2 = mbxrun.unique_prefix("hostile2")
    argv2 = [mbxrun.MBXD] + mbxrun.eal_args(prefix2, vdevs=["net_null0,no-rx=1"]) + [
        "--", "--control", "0.0.0.0:%d" % port]
    p2 = mbxrun.Proc(argv2, prefix2, log_path=os.path.join(tmp, "notoken.log"))
    try:
        p2.p.wait(30)
    finally:
        p2.stop()
    check(p2.p.returncode not in (0, None) and "needs --control-token" in p2.output(),
          "a listener off loopback without a token refuses to start")

    token = os.path.join(tmp, "token")
    with open(token, "w") as f:
        f.write("s3cret-%d\n" % os.getpid())
    prefix3 = mbxrun.unique_prefix("hostile3")
    argv3 = [mbxrun.MBXD] + mbxrun.eal_args(prefix3, vdevs=["net_null0,no-rx=1"]) + [
        "--", "--control", "0.0.0.0:%d" % port, "--control-token", token]
    p3 = mbxrun.Proc(argv3, prefix3, log_path=os.path.join(tmp, "token.log"))
    try:
        p3.telemetry()
        mbxrun.wait_until(lambda: "southbound listening" in p3.output(), what="the listener")
        try:
            mbx.Client("127.0.0.1:%d" % port).info()
            check(False, "a client without the token is refused")
        except mbx.MbxError as e:
            check(e.code == 13, "a client without the token is refused EACCES")
        try:
            mbx.Client("127.0.0.1:%d" % port, token="wrong").info()
            check(False, "a client with a wrong token is refused")
        except mbx.MbxError as e:
            check(e.code == 13, "a client with a wrong token is refused EACCES")
        ok = mbx.Client("127.0.0.1:%d" % port, token=open(token).read().strip()).info()
        check(ok.instance_id == prefix3, "a client with the token is answered")
    finally:
        p3.stop()

    if FAILS:
        print("\n%d check(s) failed; logs in %s" % (len(FAILS), tmp))
        sys.exit(1)
    print("\nall checks passed")


if __name__ == "__main__":
    main()
