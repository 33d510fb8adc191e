"""Wires for tests: veth pairs in a network namespace of the test's own.

mbxd runs inside the namespace (Netns.argv() prefixes `ip netns exec`) with
`--vdev net_af_packet0,iface=<mbxd end>`; the test keeps the other end as an
AF_PACKET socket (Netns.port()), created inside the namespace with setns(2)
and usable from anywhere afterwards. IPv6 is disabled in the namespace
before any interface exists, so the kernel sends nothing of its own on the
wires. Standard library only.
"""
import ctypes
import os
import select
import socket
import subprocess
import time

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
SO_RCVBUFFORCE = 33
_libc = ctypes.CDLL(None, use_errno=True)


def _run(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Port:
    """The test's end of a wire: send and receive whole Ethernet frames."""

    def __init__(self, sock, name):
        self.sock = sock
        self.name = name

    def send(self, frame):
        self.sock.send(bytes(frame))

    def recv(self, timeout=0.2):
        """Every frame that arrives until timeout seconds pass with none."""
        out = []
        while True:
            r, _, _ = select.select([self.sock], [], [], timeout)
            if not r:
                return out
            out.append(self.sock.recv(65535))

    def recv_until(self, n, timeout=10.0):
        """Frames until n have arrived or timeout; returns what came."""
        out, deadline = [], time.time() + timeout
        while len(out) < n and time.time() < deadline:
            r, _, _ = select.select([self.sock], [], [], max(0.0, deadline - time.time()))
            if r:
                out.append(self.sock.recv(65535))
        return out

    def drain(self):
        self.recv(0.05)

    def close(self):
        self.sock.close()


class Netns:
    """A network namespace with veth pairs; removed by close() (or `with`)."""

    def __init__(self, tag):
        self.name = "mbx%s%d" % (tag, os.getpid())
        subprocess.run(["ip", "netns", "del", self.name], stderr=subprocess.DEVNULL)
        _run("ip", "netns", "add", self.name)
        for knob in ("all", "default"):
            self.exec("sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % knob)
        self.exec("ip", "link", "set", "lo", "up")
        self.ports = []

    def exec(self, *argv):
        _run("ip", "netns", "exec", self.name, *argv)

    def argv(self, argv):
        """argv to run inside the namespace."""
        return ["ip", "netns", "exec", self.name] + list(argv)

    def veth(self, test_end, mbxd_end):
        """A veth pair; returns the test's end as a Port, bound before anything flows."""
        self.exec("ip", "link", "add", test_end, "type", "veth", "peer", "name", mbxd_end)
        for ifname in (test_end, mbxd_end):
            self.exec("ip", "link", "set", ifname, "up")
        port = Port(self._packet_socket(test_end), test_end)
        self.ports.append(port)
        return port

    def _packet_socket(self, ifname):
        here = os.open("/proc/self/ns/net", os.O_RDONLY)
        there = os.open("/var/run/netns/" + self.name, os.O_RDONLY)
        try:
            if _libc.setns(there, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into " + self.name)
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            # SO_RCVBUFFORCE (33, not in Python's socket module): as root, past
            # net.core.rmem_max, which is a few hundred kB by default
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
            s.bind((ifname, 0))
        finally:
            _libc.setns(here, CLONE_NEWNET)
            os.close(here)
            os.close(there)
        return s

    def close(self):
        for p in self.ports:
            p.close()
        subprocess.run(["ip", "netns", "del", self.name], stderr=subprocess.DEVNULL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
