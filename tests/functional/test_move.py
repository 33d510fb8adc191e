#!/usr/bin/python3
"""Moves of flows and their state between two NF instances, judged by mbxgen.

The five-process topology of tests/lib/topo.py: mbxgen sends every flow
through steer to instance A; moves go from A to B (mbxctl and mbxctld, or
the southbound directly where a test must step in between), and mbxgen's
per-flow report is the judge, never the instances' own counters. Its 64
source hosts make eight groups of eight (/29): each move takes one group,
the last two groups never move.

--case guarantees --nf nat|fw|lb --workers A,B
    Six moves while traffic runs, one group each: every guarantee in both
    modes. lf,op: nothing lost, duplicated or reordered; lf: nothing lost or
    duplicated; none: exactly the packets the source says it dropped are
    lost. In every case each flow keeps its rewrite (NAT mapping, LB
    backend) and ends on B, and the flows that stay are untouched. fw runs
    TCP with handshakes opening throughout, so some are in flight during a
    move: B accepts them from the moved conntrack state, with no drop, no
    unexpected segment and no failed handshake.
--case order
    The old path is slow when the route changes (A frozen around it): lf,op
    keeps order where lf, in the same run, reorders.
--case failures
    Copy, then compare A's and B's state; a move B refuses (it has the
    flows: the copy); overlapping moves; a redirect buffer that fills; the
    destination dying mid-move; an unreachable destination. Each rolls back
    to A with nothing lost beyond what the source counts, and leaves B
    without the flows.
--case src-dies
    A is killed mid-move: B ends the move, keeps what it acknowledged and
    goes on serving.
"""
import argparse
import ipaddress
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import mbxrun  # noqa: E402
import topo  # noqa: E402
import mbx  # noqa: E402  (topo puts the built package on the path)
from mbx.v1 import move_pb2  # noqa: E402

FAILS = []
HOSTS = 64
BASE = ipaddress.ip_address("10.0.1.0")
GUARANTEE = {"none": move_pb2.GUARANTEE_NONE, "lf": move_pb2.GUARANTEE_LOSS_FREE,
             "lf,op": move_pb2.GUARANTEE_LOSS_FREE_ORDER_PRESERVING}


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        FAILS.append(what)
    return ok


def group_filter(g):
    return "src=%s/29" % (BASE + 8 * g)


def group_of(flow):
    return (int(ipaddress.ip_address(flow["inside"]["src"])) - int(BASE)) // 8


def totals(report, groups):
    """mbxgen's per-flow figures summed over the flows of some groups."""
    flows = [f for f in report["flows"] if group_of(f) in groups]
    out = {k: sum(f[k] for f in flows) for k in ("sent", "received", "lost", "duplicated",
                                                  "reordered", "rewrite_changes")}
    out["flows"] = len(flows)
    out["ports"] = sorted({p for f in flows for p in f["rx_ports"]})
    out["on_b"] = sum(1 for f in flows if 2 in f["rx_ports"])
    return out


def show(t):
    return ", ".join("%s %s" % (k, v) for k, v in t.items())


def moved_flows(c, filt):
    """Flows of a filter an instance holds per-flow state for."""
    return len({(ch.key.SerializeToString()) for ch in c.get_state("per-flow", filter=filt)})


# ---------------------------------------------------------------------------
# guarantees

MOVES = [("lf,op", "p2p"), ("lf,op", "controller"), ("lf", "p2p"), ("lf", "controller"),
         ("none", "p2p"), ("none", "controller")]


FW_RULES = "deny src=10.66.0.0/16\nallow src=10.0.1.0/24,proto=tcp,dport=5000\n"


def case_guarantees(tmp, nf, workers):
    tcp = nf == "fw"
    flows = 384  # six per host
    nf_args = None
    if tcp:
        # A has rules and denies the rest; B has none yet: they come with the first move
        rules = os.path.join(tmp, "fw.rules")
        with open(rules, "w") as f:
            f.write(FW_RULES)
        nf_args = {"A": "fw,rules=%s,default=deny" % rules, "B": "fw,default=deny"}
    with topo.Topology(tmp, nf=nf, workers=workers, nf_args=nf_args) as t:
        # fw: TCP whose handshakes open during the whole sending time, moves included
        extra = ["--tcp-fin", "--open-rate", "60"] if tcp else []
        t.start_gen(flows=flows, rate=12000, duration=8 if tcp else 6, hosts=HOSTS,
                    proto="tcp" if tcp else "udp", extra=extra)
        t.wait_flows("A", 40 if tcp else flows)
        summaries = []
        for g, (guarantee, mode) in enumerate(MOVES):
            time.sleep(0.4)
            rc, s, err = t.move(group_filter(g), guarantee, mode=mode)
            summaries.append(s)
            check(rc == 0, "move %d (%s, %s) of %s: %s" % (
                g, guarantee, mode, group_filter(g),
                "done in %.1f ms, %d flows" % (s["total_ms"], s["flows"]) if rc == 0
                else err.strip().splitlines()[-1]))
        report = t.gen_report()
        b_stats = t.procs["B"].query("/mbx/stats")
        a_stats = t.procs["A"].query("/mbx/stats")
        if tcp:
            rules = {}
            for name in ("A", "B"):
                with t.client(name) as c:
                    rules[name] = [c.decode_state(ch) for ch in c.get_state("all-flows",
                                                                            nf="fw")]
            check(rules["A"] == rules["B"] and len(rules["A"]) == 1 and
                  len(rules["A"][0].rules) == 2,
                  "B, which had no rules, has A's two (version %08x) from the first move" % (
                      rules["A"][0].version if rules["A"] else 0))
    print("mbxgen: " + topo.verdict(report))
    for g, ((guarantee, mode), s) in enumerate(zip(MOVES, summaries)):
        if not s:
            continue
        r = totals(report, {g})
        what = "group %d (%s, %s): %s" % (g, guarantee, mode, show(r))
        if guarantee == "lf,op":
            check(r["lost"] == 0 and r["duplicated"] == 0 and r["reordered"] == 0,
                  what + ": nothing lost, duplicated or reordered")
        elif guarantee == "lf":
            check(r["lost"] == 0 and r["duplicated"] == 0, what + ": nothing lost or duplicated")
        elif not tcp:
            check(r["lost"] == s["dropped"] and r["duplicated"] == 0,
                  what + ": lost exactly the %d packets the source dropped" % s["dropped"])
        else:  # the source also drops control segments, which mbxgen does not number
            check(r["lost"] <= s["dropped"] and r["duplicated"] == 0,
                  what + ": lost at most the %d packets the source dropped" % s["dropped"])
        check(r["rewrite_changes"] == 0, "group %d: every flow kept its rewrite" % g)
        opened = r["flows"] if not tcp else sum(
            1 for f in report["flows"] if group_of(f) == g and f["sent"] > 0)
        check(r["on_b"] == opened, "group %d: its %d flows now go through B" % (g, opened))
        if not tcp:
            check(s["flows"] == r["flows"], "group %d: the summary says %d flows moved" % (
                g, s["flows"]))
        if mode == "p2p":
            check(s["via_controller"] == 0, "group %d: no packet through the controller" % g)
        else:
            check(s["via_controller"] == s["redirected"],
                  "group %d: the %d redirected packets went through the controller" % (
                      g, s["redirected"]))
    r = totals(report, {6, 7})
    check(r["lost"] == r["duplicated"] == r["reordered"] == r["rewrite_changes"] == 0
          and r["ports"] == [1], "the flows that stayed on A are untouched: " + show(r))
    if tcp:
        check(report["handshakes"] == report["closes"] == flows and
              report["handshakes_failed"] == 0 and report["tcp_unexpected"] == 0,
              "every TCP handshake and close completed, with no unexpected segment "
              "(handshakes %d, closes %d, failed %d, unexpected %d, SYN retries %d)" % (
                  report["handshakes"], report["closes"], report["handshakes_failed"],
                  report["tcp_unexpected"], report["syn_retries"]))
        check(a_stats["nf_dropped"] == 0 and b_stats["nf_dropped"] == 0,
              "the firewalls dropped nothing (A %d, B %d)" % (
                  a_stats["nf_dropped"], b_stats["nf_dropped"]))


# ---------------------------------------------------------------------------
# failures, driven through the southbound where the test steps in between


def expect(c, move_id, filt, guarantee="lf,op"):
    r = c.call("/mbx.v1.Move/ExpectMove", move_id=move_id, filter=mbx.parse_filter(filt),
               guarantee=GUARANTEE[guarantee])
    return r.peer_addr


class StartMove(threading.Thread):
    """StartMove on the source, its phases collected as they come."""

    def __init__(self, addr, move_id, filt, peer, guarantee="lf,op", **extra):
        super().__init__(daemon=True)
        self.c = mbx.Client(addr)
        self.args = dict(move_id=move_id, filter=mbx.parse_filter(filt), peer_addr=peer,
                         guarantee=GUARANTEE[guarantee], **extra)
        self.phases, self.status, self.summary = [], None, None
        self.start()

    def run(self):
        try:
            for r in self.c.stream("/mbx.v1.Move/StartMove", check=False, **self.args):
                self.phases.append(move_pb2.MovePhase.Name(r.phase)[len("MOVE_PHASE_"):])
                self.status = r.status
                if r.HasField("summary"):
                    self.summary = r.summary
        except ConnectionError:
            self.phases.append("GONE")  # the source died
        finally:
            self.c.close()

    def wait_phase(self, phase, timeout=30):
        mbxrun.wait_until(lambda: phase in self.phases or not self.is_alive(), timeout,
                          what="phase " + phase)
        return phase in self.phases


def case_failures(tmp):
    with topo.Topology(tmp, nf="nat", workers=(1, 2)) as t:
        t.start_gen(flows=384, rate=8000, duration=14, hosts=HOSTS)
        t.wait_flows("A", 384)
        a, b = t.client("A"), t.client("B")

        # copy: both keep the flows, with the same state
        rc, s, err = t.move(group_filter(0), copy=True)
        check(rc == 0 and s["flows"] == 48, "copy of group 0: %d flows in %.2f ms %s" % (
            s.get("flows", 0), s.get("total_ms", 0), err if rc else ""))
        dump = {}
        for name, c in (("A", a), ("B", b)):
            dump[name] = sorted((ch.nf, ch.key.SerializeToString(),
                                 ch.reply_key.SerializeToString(), ch.state)
                                for ch in c.get_state("per-flow", filter=group_filter(0)))
        check(len(dump["A"]) == 48 and dump["A"] == dump["B"],
              "after the copy A's and B's per-flow state of group 0 are equal (%d, %d)" % (
                  len(dump["A"]), len(dump["B"])))

        # B refuses: it has the flows (the copy); A takes them back
        rc, s, err = t.move(group_filter(0), "lf,op")
        check(rc != 0 and "refused" in err and "has the flow already" in err and
              s.get("rolled_back"),
              "B refuses to take group 0 again, and says why: " + err.strip().splitlines()[-1])
        check(moved_flows(a, group_filter(0)) == 48, "A still holds group 0's 48 flows")

        # a move of overlapping flows while one runs is refused; a full buffer rolls back
        peer = expect_frozen(t, b, 1001, 1)  # B takes nothing in: A's buffer fills
        try:
            mv = StartMove(t.addr["A"], 1001, group_filter(1), peer, redirect_limit=128)
            check(mv.wait_phase("REDIRECTING"), "a move of group 1 redirects: " +
                  " ".join(mv.phases))
            other = StartMove(t.addr["A"], 1002, "src=10.0.1.0/27", "127.0.0.1:1")
            other.join(10)
            check(other.status is not None and other.status.code != 0 and
                  "overlapping" in other.status.message,
                  "a second move of overlapping flows is refused: " +
                  (other.status.message if other.status else "no answer"))
            mv.join(30)
            check(mv.status is not None and "buffer filled" in mv.status.message and
                  mv.summary is not None and mv.summary.rolled_back,
                  "the 128-packet redirect buffer filled and the move rolled back: " +
                  (mv.status.message if mv.status else "no answer"))
            dropped1 = mv.summary.dropped if mv.summary else -1
        finally:
            os.kill(t.procs["B"].p.pid, signal.SIGCONT)
        mbxrun.wait_until(lambda: "the source took the flows back" in t.procs["B"].output(),
                          what="B to read the abort")
        check(moved_flows(b, group_filter(1)) == 0,
              "B undid the import it had acknowledged (the source aborted)")
        check(moved_flows(a, group_filter(1)) == 48, "A holds group 1's 48 flows again")

        # no room for the REDIRECT rule (A's workers hold 16 rules): the move fails
        # while A still connects; its hello goes out with the ABORT behind it
        rules = [a.enable_events("src=10.99.%d.0/24" % i, "buffer") for i in range(16)]
        rc, s, err = t.move(group_filter(3), "lf,op")
        check(rc != 0 and "at most 16 rules" in err,
              "no room for the REDIRECT rule: the move fails: " + err.strip().splitlines()[-1])
        mbxrun.wait_until(lambda: t.procs["B"].output().count("the source took the flows back")
                          >= 2, what="B to read the second abort")
        for r in rules:
            a.disable_events(rule_id=r)
        check(moved_flows(a, group_filter(3)) == 48 and moved_flows(b, group_filter(3)) == 0,
              "A, still up, holds group 3's 48 flows; B none")

        # the destination dies mid-move: A takes its flows back
        mv = StartMove(t.addr["A"], 1003, group_filter(2), expect_frozen(t, b, 1003, 2))
        mv.wait_phase("REDIRECTING")
        time.sleep(0.2)
        os.kill(t.procs["B"].p.pid, signal.SIGKILL)
        mv.join(30)
        check(mv.status is not None and mv.status.code != 0 and mv.summary is not None and
              mv.summary.rolled_back, "B killed mid-move: the move fails and rolls back: " +
              (mv.status.message if mv.status else "no answer"))
        check(moved_flows(a, group_filter(2)) == 48, "A holds group 2's 48 flows again")

        # an unreachable destination: nothing changes
        mv = StartMove(t.addr["A"], 1004, group_filter(3), "127.0.0.1:1")
        mv.join(30)
        check(mv.status is not None and "unreachable" in mv.status.message,
              "a destination nobody listens for: " + (mv.status.message if mv.status else ""))
        rc, s, err = t.move(group_filter(3), "lf,op")
        check(rc != 0, "mbxctl move to the dead B fails: " + err.strip().splitlines()[-1])
        a.close()
        b.close()
        report = t.gen_report()
    print("mbxgen: " + topo.verdict(report))
    r = totals(report, {1})
    check(r["lost"] == dropped1 and r["duplicated"] == 0 and r["ports"] == [1],
          "group 1 lost exactly the %d packets the full buffer dropped: %s" % (dropped1, show(r)))
    for g in (0, 2, 3):
        r = totals(report, {g})
        check(r["lost"] == r["duplicated"] == r["reordered"] == r["rewrite_changes"] == 0
              and r["ports"] == [1], "group %d, its move failed, stayed whole on A: %s" % (
                  g, show(r)))
    r = totals(report, {4, 5, 6, 7})
    check(r["lost"] == 0 and r["ports"] == [1], "the other flows are untouched: " + show(r))


def expect_frozen(t, b, move_id, g):
    """ExpectMove on B, then freeze B: the source's stream waits in its socket."""
    peer = expect(b, move_id, group_filter(g))
    os.kill(t.procs["B"].p.pid, signal.SIGSTOP)
    return peer


def memif_regions(pid):
    """[size, resident] in kB of each memif region process @pid maps (its smaps)."""
    regions, cur = [], None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            if line.split(None, 1)[0].count("-") == 1 and ":" not in line.split(None, 1)[0]:
                cur = [0, 0] if "/memfd:memif_region" in line else None
                if cur is not None:
                    regions.append(cur)
            elif cur is not None and line.startswith(("Size:", "Rss:")):
                cur[line.startswith("Rss:")] = int(line.split()[1])
    return regions


def case_order(tmp):
    """The old path holds packets when the route changes: A is frozen for 50 ms before
    and 50 ms after the reroute, so packets queue in front of it while newer ones reach
    B directly. lf,op must keep every flow in order; lf, which releases B's
    held packets with the state, shows the reordering that lf,op prevents (else the
    test did not create the race it is about)."""
    with topo.Topology(tmp, nf="nat", workers=(1, 2)) as t:
        t.start_gen(flows=384, rate=8000, duration=6, hosts=HOSTS)
        t.wait_flows("A", 384)
        # B has carried nothing yet; its links' packet memory is backed all the same
        deadline = time.monotonic() + 5
        while True:
            regions = memif_regions(t.procs["B"].p.pid)
            if (regions and all(r == s for s, r in regions)) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        check(len(regions) == 2 and all(r == s for s, r in regions),
              "B's memif regions are resident before any packet: %s (size, rss kB)" % regions)
        a_pid = t.procs["A"].p.pid
        b, steer = t.client("B"), t.client("S")
        for g, guarantee in ((0, "lf,op"), (1, "lf")):
            time.sleep(0.3)
            move_id = 3000 + g
            peer = expect(b, move_id, group_filter(g), guarantee)
            mv = StartMove(t.addr["A"], move_id, group_filter(g), peer, guarantee)
            check(mv.wait_phase("STATE_SENT"), "%s move of group %d: the state is at B" % (
                guarantee, g))
            os.kill(a_pid, signal.SIGSTOP)
            try:
                time.sleep(0.05)  # the old path fills: ~50 packets of the group wait at A
                steer.call("/mbx.v1.Steer/SetRoute", filter=mbx.parse_filter(group_filter(g)),
                           port=2, marker_id=move_id)
                time.sleep(0.05)  # and newer ones reach B
            finally:
                os.kill(a_pid, signal.SIGCONT)
            mv.join(30)
            check(mv.summary is not None and mv.status.code == 0,
                  "%s move of group %d done: %d redirected, %d held at B" % (
                      guarantee, g, mv.summary.redirected if mv.summary else -1,
                      mv.summary.buffered if mv.summary else -1))
        b.close()
        steer.close()
        report = t.gen_report()
    print("mbxgen: " + topo.verdict(report))
    r = totals(report, {0})
    check(r["lost"] == r["duplicated"] == r["reordered"] == r["rewrite_changes"] == 0,
          "lf,op: group 0 in order, nothing lost: " + show(r))
    r = totals(report, {1})
    check(r["lost"] == r["duplicated"] == r["rewrite_changes"] == 0 and r["reordered"] > 0,
          "lf: group 1 lost nothing, and was reordered as lf allows: " + show(r))


def case_hold(tmp, limit=0):
    """B holds more packets than a worker releases per request (4096, sb_events.c): A is
    frozen for 1.5 s after the reroute, so ~7500 packets of group 0 wait at B for the
    END. B releases them in slices while newer ones keep coming; lf,op must keep every
    flow in order, and nothing of the group may be lost. With @limit, B's buffer holds
    that many packets per worker: what it drops must be in the move's summary."""
    with topo.Topology(tmp, nf="nat", workers=(1, 2)) as t:
        t.start_gen(flows=384, rate=40000, duration=6, hosts=HOSTS)
        t.wait_flows("A", 384)
        a_pid = t.procs["A"].p.pid
        b, steer = t.client("B"), t.client("S")
        time.sleep(0.3)
        peer = b.call("/mbx.v1.Move/ExpectMove", move_id=5000,
                      filter=mbx.parse_filter(group_filter(0)),
                      guarantee=GUARANTEE["lf,op"], buffer_limit=limit).peer_addr
        mv = StartMove(t.addr["A"], 5000, group_filter(0), peer)
        check(mv.wait_phase("STATE_SENT"), "lf,op move of group 0: the state is at B")
        os.kill(a_pid, signal.SIGSTOP)
        try:
            steer.call("/mbx.v1.Steer/SetRoute", filter=mbx.parse_filter(group_filter(0)),
                       port=2, marker_id=5000)
            time.sleep(1.5)
        finally:
            os.kill(a_pid, signal.SIGCONT)
        mv.join(30)
        held = mv.summary.buffered if mv.summary else -1
        dropped = mv.summary.dropped if mv.summary else -1
        check(mv.summary is not None and mv.status.code == 0 and
              held > (2 * limit - 1 if limit else 4096),
              "the move is done with %d packets held at B, %d dropped" % (held, dropped))
        b.close()
        steer.close()
        report = t.gen_report()
    print("mbxgen: " + topo.verdict(report))
    r = totals(report, {0})
    if limit:
        check(r["duplicated"] == r["reordered"] == r["rewrite_changes"] == 0 and
              r["lost"] > 0 and dropped == r["lost"],
              "B's full buffer dropped %d, the summary says %d: %s" % (r["lost"], dropped,
                                                                       show(r)))
        return
    check(r["lost"] == r["duplicated"] == r["reordered"] == r["rewrite_changes"] == 0 and
          r["ports"] == [1, 2], "group 0 in order, nothing lost: " + show(r))


def case_src_dies(tmp):
    with topo.Topology(tmp, nf="nat", workers=1) as t:
        t.start_gen(flows=384, rate=8000, duration=6, hosts=HOSTS)
        t.wait_flows("A", 384)
        b = t.client("B")
        peer = expect_frozen(t, b, 2001, 0)  # B reads the stream once A is gone
        mv = StartMove(t.addr["A"], 2001, group_filter(0), peer)
        mv.wait_phase("REDIRECTING")
        time.sleep(0.3)
        os.kill(t.procs["A"].p.pid, signal.SIGKILL)
        os.kill(t.procs["B"].p.pid, signal.SIGCONT)
        mbxrun.wait_until(lambda: "source closed the peer stream" in t.procs["B"].output(),
                          what="B to end the move")
        line = [x for x in t.procs["B"].output().splitlines()
                if "source closed the peer stream" in x][0]
        held = moved_flows(b, group_filter(0))
        check(held == 48 if "48 flows acknowledged stay here" in line else
              held == 0 and "nothing installed" in line,
              "B keeps exactly the state it acknowledged (%d flows): %s" % (held, line))
        # B goes on: the steer sends a group to it, and it serves it
        with t.client("S") as s:
            s.call("/mbx.v1.Steer/SetRoute", filter=mbx.parse_filter(group_filter(4)), port=2)
        time.sleep(1)
        check(t.procs["B"].p.poll() is None and t.flows("B") >= held + 48,
              "B is alive and serves the flows sent to it (%d flows)" % t.flows("B"))
        b.close()
        t.gen.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", required=True,
                    choices=["guarantees", "order", "hold", "hold-overflow", "failures",
                             "src-dies"])
    ap.add_argument("--nf", default="nat")
    ap.add_argument("--workers", default="1,1", help="A,B")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mbx-move-")
    try:
        if args.case == "guarantees":
            case_guarantees(tmp, args.nf, tuple(int(w) for w in args.workers.split(",")))
        elif args.case == "order":
            case_order(tmp)
        elif args.case == "hold":
            case_hold(tmp)
        elif args.case == "hold-overflow":
            case_hold(tmp, limit=1500)
        elif args.case == "failures":
            case_failures(tmp)
        else:
            case_src_dies(tmp)
    except Exception as e:  # a setup or a wait that failed: keep the logs, say where
        check(False, "%s: %s" % (type(e).__name__, e))
    if FAILS:
        print("\n%d check(s) failed; logs in %s" % (len(FAILS), tmp))
        return 1
    print("\nall checks passed")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
