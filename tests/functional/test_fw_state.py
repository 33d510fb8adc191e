#!/usr/bin/python3
"""Firewall state moves between two real mbxd processes; connections go on.

A (one worker) and B (two workers) run the same fw rules with conn_limit=4,
each between two veth pairs in a namespace of the test's own. Connections
are established through A by real packets: TCP connections from six inside
hosts (handshake, data both ways), one of them half-closed, UDP answered and
unanswered, an ICMP echo; host 10.2.0.1 reaches its limit of 4.
`mbxctl get-state --scope all -o` exports A's rules, host counts and
connections; `mbxctl put-state -i` installs them into B. Then, judged by
packets:

- B holds what A holds: every connection's state and windows, every host's
  count, the same rule set (version);
- the same continuation packets sent through A and through B (mid-stream
  data and ACKs both ways, the rest of a close, UDP and echo replies, an
  out-of-window segment, a non-SYN of an unknown connection, a fifth
  connection of the host at its limit, a new connection) get the same
  verdicts on both, the expected ones, and pass unchanged; the fw counters
  move alike on both;
- C, running another rule set with a connection of its own, refuses the
  dump (the all-flows put fails first, so nothing of it is installed) and is
  unchanged: its rules, its connection (which still passes), and A's
  connections are unknown to it.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import mbxrun  # noqa: E402
import wire  # noqa: E402

sys.path.insert(0, os.path.join(mbxrun.BUILD, "controller-shim", "python"))
import mbx  # noqa: E402
from mbx.v1 import fw_pb2  # noqa: E402
from scapy.all import ICMP, IP, TCP, UDP, Ether  # noqa: E402

MBXCTL = os.path.join(mbxrun.BUILD, "controller-shim", "mbxctl")
RULES = "allow src=10.2.0.0/16\nallow src=10.3.0.0/16,proto=udp\n"
OTHER_RULES = "allow src=10.3.0.0/16\n"
SERVER = "203.0.113.20"
# no flow may expire during the test, however slow the machine
TIMEOUTS = ["tcp_syn_sent", "tcp_syn_recv", "tcp_established", "tcp_fin_wait", "tcp_time_wait",
            "tcp_closed", "udp_first", "udp", "icmp", "other"]
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def frame(l3):
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / l3)


class Inst:
    """An mbxd with fw between an inside and an outside wire."""

    def __init__(self, ns, tmp, tag, rules, workers):
        self.tag = tag
        self.wires = {"in": ns.veth("t%si" % tag, "m%si" % tag),
                      "out": ns.veth("t%so" % tag, "m%so" % tag)}
        path = os.path.join(tmp, "rules_" + tag)
        with open(path, "w") as f:
            f.write(rules)
        self.sock = "unix:" + os.path.join(tmp, tag + ".sock")
        lcores = "0-1" if workers == 1 else "(0-%d)@(0-1)" % workers
        self.proc = mbxrun.start_mbxd(lambda prefix: ns.argv(
            [mbxrun.MBXD] + mbxrun.eal_args(prefix, lcores=lcores, vdevs=[
                "net_af_packet0,iface=m%si" % tag, "net_af_packet1,iface=m%so" % tag]) + [
                "--", "--nf", "fw,rules=%s,conn_limit=4" % path, "--idle-sleep-us", "50",
                "--control", self.sock] + sum((["--timeout", t + "=86400"] for t in TIMEOUTS),
                                              [])),
            "fwstate" + tag, self.sock[5:], os.path.join(tmp, tag + ".log"))

    def counts(self, port):
        return (self.proc.query("/mbx/port", port)["tx_packets"],
                self.proc.query("/mbx/stats")["nf_dropped"])

    def exchange(self, batch):
        """Send (side, frame)s, all from one side, in order; for each, whether it left
        by the other side unchanged."""
        side = batch[0][0]
        other = "out" if side == "in" else "in"
        port = "1" if side == "in" else "0"

        def handled():  # tx + fw's drops, or None when telemetry does not answer
            try:
                tx, drop = self.counts(port)
                return tx, tx + drop
            except TypeError:  # a null answer on a loaded machine
                return None

        base = handled()
        for s, data in batch:
            assert s == side
            self.wires[side].send(data)
            time.sleep(0.001)   # pace: the machine is shared
        # The judge is what leaves by the other wire, packet by packet; the counters
        # only say when to stop waiting for it.
        try:
            mbxrun.wait_until(lambda: base is not None and (handled() or (0, -1))[1] >=
                              base[1] + len(batch), timeout=30,
                              what=self.tag + " to handle %d packets" % len(batch))
        except TimeoutError as e:
            print("note: %s; judging by what left" % e)
        now = handled()
        n = now[0] - base[0] if base is not None and now is not None else len(batch)
        got = self.wires[other].recv_until(n, timeout=10) + self.wires[other].recv(0.05)
        sent = [data for _, data in batch]
        for g in got:
            if g not in sent:
                check(False, "%s: a packet left changed or unexpected: %s" % (
                    self.tag, Ether(g).summary()))
        return [data in got for data in sent]

    def fw(self):
        return self.proc.query("/mbx/nf", "fw")


class Conn:
    """A TCP connection from an inside client to SERVER."""

    def __init__(self, client, port):
        self.c, self.port = client, port
        self.nxt = {"in": 1000 + port * 7, "out": 900000 + port * 13}

    def seg(self, frm, flags, data=b"", seq=None, advance=True):
        to = "out" if frm == "in" else "in"
        src, dst = (self.c, SERVER) if frm == "in" else (SERVER, self.c)
        sp, dp = (self.port, 443) if frm == "in" else (443, self.port)
        l4 = TCP(sport=sp, dport=dp, flags=flags, window=8192,
                 seq=self.nxt[frm] if seq is None else seq,
                 ack=self.nxt[to] if "A" in flags else 0)
        if advance and seq is None:
            self.nxt[frm] += len(data) + ("S" in flags) + ("F" in flags)
        return frm, frame(IP(src=src, dst=dst) / l4 / data)


def key_of(chunk):
    k = chunk.key
    return (k.proto, bytes(k.src), bytes(k.dst), k.sport, k.dport)


def state_of(inst):
    """{flow key: FwConnState}, {host: conns}, FwRules of an instance."""
    with mbx.Client(inst.sock) as c:
        flows = {key_of(ch): c.decode_state(ch) for ch in c.get_state("per-flow", nf="fw")}
        hosts = {}
        for ch in c.get_state("multi-flow", nf="fw"):
            m = c.decode_state(ch)
            hosts[bytes(m.host)] = hosts.get(bytes(m.host), 0) + m.conns
        rules = [c.decode_state(ch) for ch in c.get_state("all-flows", nf="fw")]
    return flows, hosts, rules[0]


def mbxctl(at, *args):
    return subprocess.run([MBXCTL, "--at", at] + list(args), capture_output=True, text=True)


def main():
    tmp = tempfile.mkdtemp(prefix="mbx-fw-state-")
    ns = wire.Netns("fws")
    insts = []
    try:
        for tag, rules, workers in (("a", RULES, 1), ("b", RULES, 2), ("c", OTHER_RULES, 1)):
            insts.append(Inst(ns, tmp, tag, rules, workers))
        a, b, c3 = insts

        # connections through A, in rounds of one side each
        conns = [Conn("10.2.0.%d" % h, 40000 + h) for h in range(1, 7)]
        half = Conn("10.2.0.1", 41000)
        every = conns + [half]
        udp_q = IP(src="10.2.0.1", dst=SERVER) / UDP(sport=5353, dport=53) / b"q"
        udp_a = IP(src=SERVER, dst="10.2.0.1") / UDP(sport=53, dport=5353) / b"a"
        rounds = [
            [cn.seg("in", "S") for cn in every] + [
                ("in", frame(udp_q)),
                ("in", frame(IP(src="10.2.0.1", dst=SERVER) / ICMP(type=8, id=77) / b"p")),
                ("in", frame(IP(src="10.2.0.2", dst=SERVER) / UDP(sport=7, dport=7) / b"e"))],
            [cn.seg("out", "SA") for cn in every] + [("out", frame(udp_a))],
            sum(([cn.seg("in", "A"), cn.seg("in", "PA", b"request")] for cn in every), []),
            [cn.seg("out", "PA", b"response" * 20) for cn in every],
            [cn.seg("in", "A") for cn in every] + [half.seg("in", "FA")],
            [half.seg("out", "A")],
        ]
        passed = sum((a.exchange(r) for r in rounds), [])
        check(all(passed), "A passes every packet that establishes the %d connections (%d/%d)" % (
            len(conns) + 4, sum(passed), len(passed)))
        check(a.exchange([("in", frame(IP(src="10.2.0.1", dst=SERVER) /
                                       UDP(sport=9, dport=53)))]) == [False],
              "A refuses a fifth connection of 10.2.0.1 (conn_limit=4)")

        # C has another rule set and a connection of its own
        c_q = frame(IP(src="10.3.0.1", dst=SERVER) / UDP(sport=1, dport=2) / b"c")
        c_a = frame(IP(src=SERVER, dst="10.3.0.1") / UDP(sport=2, dport=1) / b"c")
        check(c3.exchange([("in", c_q)]) == [True], "C passes a connection of its own")

        # A's state, exported and installed into B
        dump = os.path.join(tmp, "dump.bin")
        r = mbxctl(a.sock, "get-state", "--scope", "all", "-o", dump)
        check(r.returncode == 0, "mbxctl get-state --scope all -o exports A " + r.stderr)
        r = mbxctl(b.sock, "put-state", "-i", dump)
        check(r.returncode == 0 and '"installed"' in r.stdout,
              "mbxctl put-state -i installs it into B " + r.stdout + r.stderr)
        fa, ha, ra = state_of(a)
        fb, hb, rb = state_of(b)
        check(len(fa) == len(conns) + 4 and fb == fa,
              "B holds A's %d connections, states and windows alike" % len(fa))
        check(ha == hb and ha[bytes([10, 2, 0, 1])] == 4,
              "B's connections per host equal A's (10.2.0.1: %s)" % hb.get(bytes([10, 2, 0, 1])))
        check(ra.version == rb.version and len(rb.rules) == 2,
              "B has A's rule set (version %08x)" % rb.version)
        states = [s.state for s in fb.values()]
        check(states.count(fw_pb2.FW_STATE_ESTABLISHED) == len(conns) and
              states.count(fw_pb2.FW_STATE_FIN_WAIT) == 1,
              "six established connections and one in fin_wait were moved")

        # the same continuation through A and through B
        before = {"a": a.fw(), "b": b.fw()}
        out = [(cn.seg("out", "PA", b"more data"), True, "mid-stream data from the server")
               for cn in conns]
        out += [(half.seg("out", "FA"), True, "the server's FIN"),
                (("out", frame(udp_a / b"2")), True, "a second UDP answer"),
                (("out", frame(IP(src=SERVER, dst="10.2.0.2") / UDP(sport=7, dport=7))), True,
                 "the answer of the unanswered UDP"),
                (("out", frame(IP(src=SERVER, dst="10.2.0.1") / ICMP(type=0, id=77) / b"p")), True,
                 "the echo reply")]
        inn = sum(([(cn.seg("in", "A"), True, "the client's ACK"),
                    (cn.seg("in", "PA", b"next request"), True, "client data")]
                   for cn in conns), [])
        inn += [(half.seg("in", "A"), True, "the last ACK"),
                (conns[0].seg("in", "PA", b"x", seq=conns[0].nxt["in"] + 3000000), False,
                 "a segment far out of the window"),
                (("in", frame(IP(src="10.2.0.3", dst=SERVER) /
                             TCP(sport=4444, dport=443, flags="A", seq=1, ack=1))), False,
                 "a non-SYN of an unknown connection"),
                (("in", frame(IP(src="10.2.0.1", dst=SERVER) / UDP(sport=10, dport=53))), False,
                 "a fifth connection of 10.2.0.1"),
                (Conn("10.2.0.9", 45000).seg("in", "S"), True, "a new connection")]
        for batch in (out, inn):
            va = a.exchange([pkt for pkt, _, _ in batch])
            vb = b.exchange([pkt for pkt, _, _ in batch])
            for (_, want, what), x, y in zip(batch, va, vb):
                check(x == want and y == want, "%s: %s at A, %s at B" % (
                    what, "passes" if x else "dropped", "passes" if y else "dropped"))
        after = {"a": a.fw(), "b": b.fw()}
        delta = {i: {k: after[i][k] - before[i][k] for k in after[i]} for i in after}
        check(delta["a"] == delta["b"] and delta["a"]["tcp_out_of_window"] == 1 and
              delta["a"]["tcp_no_connection"] == 1 and delta["a"]["conn_limit"] == 1,
              "the fw counters moved alike on A and B: %s" % {
                  k: v for k, v in delta["b"].items() if v})

        # C refuses the dump and is unchanged
        fc, hc, rc0 = state_of(c3)
        r = mbxctl(c3.sock, "put-state", "-i", dump)
        check(r.returncode != 0 and "refused the all-flows state" in r.stderr and
              "nothing installed" in r.stderr, "C refuses A's rules: " + r.stderr.strip())
        fc2, hc2, rc2 = state_of(c3)
        check(fc2 == fc and hc2 == hc and len(fc2) == 1 and rc2 == rc0 and
              rc2.version != ra.version, "C's connections, hosts and rules are unchanged")
        check(c3.exchange([("out", c_a)]) == [True], "C's own connection still passes")
        check(c3.exchange([conns[1].seg("in", "PA", b"at C?", advance=False)]) == [False],
              "A's connections are unknown to C")
        check("refusing another rule set" in open(os.path.join(tmp, "c.log")).read(),
              "C's log says why it refused")
    finally:
        for inst in insts:
            inst.proc.stop()
        ns.close()
    if FAILS:
        print("\n%d check(s) failed; logs in %s" % (len(FAILS), tmp))
        sys.exit(1)
    shutil.rmtree(tmp, ignore_errors=True)
    print("\nall checks passed")


if __name__ == "__main__":
    main()
