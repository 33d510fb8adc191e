#!/usr/bin/python3
"""Moving flows: how long a move takes, what mbxgen saw, p2p against controller mode.

What it measures
----------------
The move topology of tests/lib/topo.py (mbxgen -> steer -> NAT instances A
and B over net_memif, mbxctld), one topology and one mbxgen run per measured
move, the move driven by ``mbxctl move`` (or ``copy``) through mbxctld as a
user would. Points (each repeated ``--repeat`` times, modes interleaved):

- 500 moved flows at 2500 pps in total (OpenNF's setup): modes p2p and
  controller, guarantees lf,op and lf; and ``copy`` of the same 500 flows
  (p2p);
- 1k, 10k and 100k moved flows at the highest paced rate this machine holds
  without loss before a move: modes p2p and controller, guarantee lf,op.
  The rate is found per size by short calibration runs without a move,
  from ``--rate-start`` down by x0.75 until mbxgen reports 0 lost after the
  warm-up (``--cal-steady``, 2.5 s, longer than a measured run's traffic
  before and after its move) and sends at least 90% of the asked rate (the
  next size starts from the rate found for the previous one). A measured run
  that nevertheless loses packets before its move (a hiccup of the shared
  machine: the rate was not held) is run again, at most ``--retries`` (2)
  times; the row counts them in ``discarded_runs`` and runs.json keeps them.

Traffic and which flows move
----------------------------
mbxgen flow i comes from host 10.0.1.0 + i % H, port 1024 + i / H, and the
move's filter is ``src=10.0.1.0/P`` covering hosts 0..M-1 with H = 2M: so
flow i moves iff i % 2M < M. With N the flows to move, P = N / M and
e = N % M, mbxgen runs T = 2MP + e flows (hosts 0..e-1 carry one flow more):
exactly N move, N - e stay. mbxgen gives every flow a slot in turn
(round robin over flow ids, one packet a slot), so the k-th packet it sends
belongs to flow k % T: moved and not-moved packets alternate in blocks of M
packets. M is chosen per rate so that a block lasts at least 2 ms
(M = 2^ceil(log2(0.002 * rate)), at most 256 and at most N): mbxgen's
per-millisecond timeline then has buckets holding only moved or only
not-moved packets, and for every bucket the script knows exactly how many
of its packets belong to moved flows (it checks the mapping against
mbxgen's per-flow ``sent``).

Moves of 1k flows or more (the calibrated-rate points) run every process
with ``--mem-big`` (1536 MB), A and B with ``--mbufs`` (196608), and the
move with ``mbxctl move --limit`` half of that (98304; the source cuts it to
half of its free packet buffers, with a warning in A's log): the redirect
buffer, the same for both modes, that the source may fill while the
destination (or, in controller mode, the relay) takes the state. The 500-flow
points keep 384 MB, mbxd's default pool and buffer (without hugepages every
mbuf has a page of its own; the smaller footprint is faster).

Both NAT instances get a /28 of external addresses (A ports 1024-32767,
B 32768-65535), enough for 200k flows.

One run
-------
start the topology; wait until A holds all T flows; 0.3 s more (the end of
the warm-up); ``--baseline`` s (1.0) of traffic; the move; 0.3 s; then
SIGINT to mbxgen (it stops sending, drains 500 ms and reports). The move's
summary (JSON of mbxctl), mbxgen's report and the per-step trace of the move
(``MBX_LOG=user.mbx.move:debug`` in the A and B logs) are kept.

Figures of a row (median over its repeats)
------------------------------------------
- ``duration_ms``: the summary's ``total_ms`` (StartMove at the source to
  DONE); ``connect_ms``, ``state_ms``, ``marker_ms``, ``end_ms`` likewise.
- ``redirected``, ``buffered``, ``dropped``, ``via_controller_pkts``: the
  summary's (the system's own counters, for information only).
- ``lost``, ``reordered``, ``duplicated``: mbxgen's, the judge. ``lost`` counts
  the packets sent after the warm-up that never arrived (mbxgen's timeline);
  ``lost_move_window`` those sent during the move, ``lost_pre_move`` before it
  (noise: the rate was not held), ``lost_warmup`` those of the warm-up (flow
  set-up, not counted in ``lost``), ``lost_run`` mbxgen's whole-run total.
  ``reordered`` and ``duplicated`` are mbxgen's whole-run totals (nothing but
  a move can reorder on this path), split per moved / not-moved flows in the
  ``*_moved`` / ``*_unmoved`` fields. ``*_max`` is the worst repeat.
- Latency: the move window is the send-time milliseconds from one before the
  move's start (the summary's ``start_unix_us`` against mbxgen's) to its end.
  ``baseline_latency_ms`` is the median over the pre-move milliseconds (after
  the warm-up) of the mean latency of moved flows' packets (buckets holding
  only moved packets). ``added_latency_ms_avg``: the mean latency of moved
  flows' packets sent in the window, minus that baseline; the window's
  latency sum minus its not-moved packets at their own mean (from the
  window's buckets with only not-moved packets, else their pre-move median),
  divided by the moved packets. ``added_latency_ms_max``: the highest latency
  of a moved flow's packet sent in the window, bounded from above by the
  lower of (the highest bucket maximum in the window among buckets holding
  moved packets) and (the highest per-flow maximum of a moved flow over the
  run), minus the baseline: an upper bound, never an underestimate.
  ``unmoved_p99_shift_ms``: mbxgen gives no per-flow percentiles, so this is
  the p99 (nearest rank) over the window's buckets holding only not-moved
  packets of their maximum latency, minus the median of the same p99 over
  pre-move stretches as long as the window (stretches of equal length, so
  that a short window's few buckets are not held against the rare hiccups
  of a whole second); null when the window has no such bucket (e.g. a 4 ms
  move at 2.5 kpps). ``unmoved_mean_shift_ms``: the not-moved packets' mean
  latency in the window minus their pre-move median.
- ``ratio_ctrl_p2p``: controller-mode duration / p2p duration of the same
  size and guarantee in this run; null when the controller move failed
  (``error`` on its row: e.g. its redirect buffer filled and it rolled back).
- ``other_cpu``: how many CPUs' worth of time other processes of the machine
  (not this script, its topology or mbxctl) used during the run: the noise.

Targets (printed PASS/MISS): 500 flows lf,op p2p <= 5 ms; 0 packets through
the controller in p2p; moved flows' added latency < 0.5 ms avg and < 2 ms
max (each p2p move row); 100k flows p2p < 1 s; p2p >= 20x faster than
controller mode (each size); copy of 500 flows <= 2 ms.

Outputs
-------
- a table on stdout;
- ``bench/results/move.json``: a list of rows ``{"op", "flows", "rate_pps",
  "mode", "guarantee", "duration_ms", "lost", "reordered", "duplicated",
  "via_controller_pkts", "added_latency_ms_avg", "added_latency_ms_max", ...}``;
  rows of (op, flows) this run measured replace older ones, others are kept;
- ``bench/results/move.png``: p2p and controller durations per size (log
  scale), and ``bench/results/move-timeline.png``: latency and loss over time
  around the first p2p and controller move of each size;
- ``bench/results/tmp/move-<run>/``: every run's logs, the move summaries and
  the per-run figures (``runs.json``); mbxgen's report is deleted after
  reading unless ``--keep-tmp``.

Usage
-----
    /usr/bin/python3 bench/move.py                   # full run, about 6-10 min
    /usr/bin/python3 bench/move.py --sizes 500,1000 --repeat 1
    /usr/bin/python3 bench/move.py --quick           # smoke test -> results/tmp/quick
    /usr/bin/python3 bench/move.py --rates 1000:150000,10000:120000   # skip calibration

Run as root (DPDK runtime directories under /var/run/dpdk). The machine is
shared and small (2 CPUs for five DPDK processes and mbxctld): absolute
figures move from run to run; the ratios and the judge's counts are what to
read.
"""
import argparse
import datetime
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import mbxrun  # noqa: E402
import topo  # noqa: E402

import dataplane  # noqa: E402  (its JSON merge)

RESULTS = os.path.join(HERE, "results")
TMP = os.path.join(RESULTS, "tmp")
SRC_BASE = (10 << 24) | (1 << 8)  # 10.0.1.0, as topo.py's mbxgen --src
OPENNF_FLOWS, OPENNF_RATE = 500, 2500
SIZES = (500, 1000, 10000, 100000)
BIG_MOVE = 1000  # flows: from here on, --mem-big, --mbufs and --limit
NF_ARGS = {"A": "nat,ext_ip=198.51.100.0/28,ports=1024-32767",
           "B": "nat,ext_ip=198.51.100.0/28,ports=32768-65535"}
BLOCK_MS = 2.0     # a block of moved (or not-moved) packets lasts at least this
MAX_BLOCK = 256    # hosts 10.0.1.0/24 at most for the moved half
SETTLE_S = 0.3     # after A holds every flow: the end of the warm-up
POST_S = 0.3       # after the move, before mbxgen is told to stop
CAL_STEADY_S = 2.5
TARGETS = {"p2p_500_ms": 5.0, "lat_avg_ms": 0.5, "lat_max_ms": 2.0, "p2p_100k_ms": 1000.0,
           "ratio": 20.0, "copy_500_ms": 2.0}
GUAR_ARG = {"lf+op": "lf,op", "lf": "lf", "n/a": "lf,op"}


# ---------------------------------------------------------------- layout

class Layout:
    """Which mbxgen flows a move of @n flows takes, at @rate pps (see the doc)."""

    def __init__(self, n, rate):
        want = max(1, int(math.ceil(math.log2(max(1.0, BLOCK_MS / 1000.0 * rate)))))
        m = 1 << want
        while m > MAX_BLOCK or m > n:
            m >>= 1
        self.n, self.m = n, m
        self.hosts = 2 * m
        self.per_host, self.extra = divmod(n, m)
        self.total = self.hosts * self.per_host + self.extra
        self.unmoved = self.total - n
        self.filter = "src=%s/%d" % (ip_str(SRC_BASE), 32 - (m.bit_length() - 1))

    def moved_flow(self, f):
        return f % self.hosts < self.m

    def moved_before(self, k):
        """Packets of moved flows among mbxgen's packets 0..k-1."""
        cycles, r = divmod(k, self.total)
        g = (r // self.hosts) * self.m + min(r % self.hosts, self.m)
        return cycles * self.n + g

    def describe(self):
        return ("%d flows, %d hosts, filter %s (moves %d, %d stay), blocks of %d packets"
                % (self.total, self.hosts, self.filter, self.n, self.unmoved, self.m))


def ip_str(a):
    return "%d.%d.%d.%d" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255)


def ip_int(s):
    p = [int(x) for x in s.split(".")]
    return (p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]


# ---------------------------------------------------------------- topology

class MoveTopology(topo.Topology):
    """topo.Topology with the few things a benchmark run needs on top."""

    def stop_gen(self):
        """mbxgen: stop sending, drain, report (SIGINT, as its doc says)."""
        if self.gen is not None and self.gen.p.poll() is None:
            self.gen.p.send_signal(signal.SIGINT)

    def timed_move(self, filt, guarantee, mode, copy, limit):
        t0 = time.time()
        rc, summary, err = self.move(filt, guarantee, mode=mode, copy=copy, limit=limit)
        return rc, summary, err, t0, time.time()

    def log(self, name):
        try:
            with open(os.path.join(self.tmp, name + ".log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""


TRACE_RE = re.compile(r"mbx\.move: move (\d+) \+([0-9.]+) ms: (.*)$")


def move_trace(t, move_id):
    """The per-step trace of the move in A's and B's logs: [[who, ms, step]]; a step
    repeated many times in a row (a chunk in, a slice out) is kept as its first and
    last occurrence, the last with "(xN)"."""
    out = []
    for who in ("A", "B"):
        steps = []
        for line in t.log(who).splitlines():
            m = TRACE_RE.search(line)
            if m and int(m.group(1)) == move_id:
                steps.append([who, float(m.group(2)), m.group(3)])
        i = 0
        while i < len(steps):
            j = i
            while j + 1 < len(steps) and steps[j + 1][2] == steps[i][2]:
                j += 1
            out.append(steps[i])
            if j > i:
                out.append([who, steps[j][1], "%s (x%d)" % (steps[j][2], j - i + 1)])
            i = j + 1
    return out


def trace_ms(trace, who, pattern):
    """The last time of a step matching @pattern at @who, or None."""
    v = [ms for w, ms, s in trace if w == who and re.search(pattern, s)]
    return v[-1] if v else None


# ---------------------------------------------------------------- runs

LIVE = []
CLK = os.sysconf("SC_CLK_TCK")


def busy_s():
    """CPU seconds the whole machine spent busy (not idle, not iowait) so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK


def proc_cpu_s(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / CLK
    except (OSError, IndexError, ValueError):
        return 0.0


def own_cpu_s():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def topo_cpu_s(t):
    pids = [p.p.pid for p in t.procs.values()]
    pids += [t.gen.p.pid] if t.gen is not None else []
    pids += [t.ctld.pid] if t.ctld is not None else []
    return sum(proc_cpu_s(pid) for pid in pids)


def _on_signal(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def run_once(case, rate, lay, workdir, args, do_move=True):
    """One topology, one mbxgen run, at most one move. Returns a dict."""
    os.makedirs(workdir, exist_ok=True)
    if len(os.path.join(workdir, "mbxctld.sock")) > 100:
        workdir = tempfile.mkdtemp(prefix="mbx-move-")  # a unix socket path's limit
    res = {"case": dict(case), "rate_pps": rate, "layout": lay.describe(), "dir": workdir}
    t_start = time.monotonic()
    cpu0, own0 = busy_s(), own_cpu_s()
    # a large move's buffer needs more packet buffers; a small one runs faster without
    # (each mbuf has a 4 KiB page of its own without hugepages: fewer TLB misses)
    big = case["flows"] >= BIG_MOVE
    t = MoveTopology(workdir, nf="nat", nf_args=NF_ARGS, mem=args.mem_big if big else args.mem,
                     mbufs=args.mbufs if big else None)
    LIVE.append(t)
    try:
        t.start_gen(flows=lay.total, rate=rate, duration=600, hosts=lay.hosts,
                    extra=["--drain-ms", "500"])
        t.wait_flows("A", lay.total, timeout=30 + 4.0 * lay.total / rate)
        time.sleep(SETTLE_S)
        warm_end = time.time()
        res["warmup_s"] = round(time.monotonic() - t_start, 2)
        if do_move:
            time.sleep(args.baseline)
            rc, summary, err, m0, m1 = t.timed_move(lay.filter, GUAR_ARG[case["guarantee"]],
                                                     case["mode"], case["op"] == "copy",
                                                     args.mbufs // 2 if big else 0)
            res.update(rc=rc, summary=summary, move_t0=m0, move_t1=m1,
                       mbxctl_wall_ms=round((m1 - m0) * 1000, 3))
            if rc != 0 or not summary:
                res["error"] = "mbxctl %s exit %d: %s" % (
                    case["op"], rc, " | ".join(err.strip().splitlines()[-2:]))
            time.sleep(POST_S)
        else:
            time.sleep(args.cal_steady)
        # CPU that other processes of the machine used meanwhile (in CPUs)
        other = busy_s() - cpu0 - (own_cpu_s() - own0) - topo_cpu_s(t)
        res["other_cpu"] = round(max(0.0, other) / (time.monotonic() - t_start), 2)
        t.stop_gen()
        report = t.gen_report(timeout=120)
        res["warm_end"] = warm_end
        if do_move and summary:
            res["trace"] = move_trace(t, summary.get("move_id", 0))
        analyse(res, report, lay, warm_end)
    except Exception as e:  # a failed run is a row with an error, not the end
        res["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        LIVE.remove(t)
        t.stop()
        if not args.keep_tmp:
            try:
                os.remove(t.report_path)
            except OSError:
                pass
    res["wall_s"] = round(time.monotonic() - t_start, 2)
    return res


def cleanup_all():
    while LIVE:
        t = LIVE.pop()
        try:
            t.stop()
        except Exception as e:
            print("cleanup: %s" % e, file=sys.stderr)


# ---------------------------------------------------------------- analysis

def p_nearest(values, p):
    """Nearest-rank percentile (as mbxgen computes its own)."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, int(math.ceil(p * len(v))) - 1)]


def wmean(buckets):
    n = sum(b["received"] for b in buckets)
    return sum(b["latency_mean_us"] * b["received"] for b in buckets) / n if n else None


def analyse(res, r, lay, warm_end):
    """Fill @res with mbxgen's verdict and the latency figures (see the doc)."""
    tl = r["timeline"]
    start_us = r["start_unix_us"]
    res["achieved_pps"] = round(r["sent"] / r["duration_s"]) if r.get("duration_s") else None
    res["lost_run"] = r["lost"]
    res["reordered"] = r["reordered"]
    res["duplicated"] = r["duplicated"]
    res["checksum_errors"] = r.get("checksum_errors")
    res["invalid"] = r.get("invalid")
    # which flows moved, from what mbxgen sent (not from the layout)
    plen = int(lay.filter.split("/")[1])
    mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
    moved_ids = set()
    per = {"moved": dict(lost=0, reordered=0, duplicated=0, on_b=0, lat_max=0.0),
           "unmoved": dict(lost=0, reordered=0, duplicated=0, on_b=0, lat_max=0.0)}
    mapping_ok = True
    sent_total = r["sent"]
    for f in r["flows"]:
        mv = (ip_int(f["inside"]["src"]) & mask) == SRC_BASE
        if mv:
            moved_ids.add(f["id"])
        if mv != lay.moved_flow(f["id"]):
            mapping_ok = False
        want = sent_total // lay.total + (1 if f["id"] < sent_total % lay.total else 0)
        if f["sent"] != want:
            mapping_ok = False
        g = per["moved" if mv else "unmoved"]
        g["lost"] += f["lost"]
        g["reordered"] += f["reordered"]
        g["duplicated"] += f["duplicated"]
        g["on_b"] += 2 in f["rx_ports"]
        g["lat_max"] = max(g["lat_max"], f["latency_max_us"])
    res["moved_flows_gen"] = len(moved_ids)
    res["mapping_ok"] = mapping_ok
    for k in ("lost", "reordered", "duplicated"):
        res[k + "_moved"] = per["moved"][k]
        res[k + "_unmoved"] = per["unmoved"][k]
    res["moved_flows_on_B"] = per["moved"]["on_b"]
    res["unmoved_flows_on_B"] = per["unmoved"]["on_b"]

    # per bucket: how many of its packets are of moved flows
    k = 0
    for b in tl:
        if mapping_ok:
            b["mv"] = lay.moved_before(k + b["sent"]) - lay.moved_before(k)
        else:
            b["mv"] = b["sent"] / 2.0
        b["un"] = b["sent"] - b["mv"]
        k += b["sent"]
    warm_ms = int((warm_end * 1e6 - start_us) // 1000)
    res["lost_warmup"] = sum(b["lost"] for b in tl[:max(0, warm_ms)])
    res["lost"] = sum(b["lost"] for b in tl[max(0, warm_ms):])
    s = res.get("summary") or {}
    if "total_ms" not in s:
        if "move_t0" in res:  # a failed move: its wall time as the window
            ws = (res["move_t0"] * 1e6 - start_us) / 1000.0
            we = (res["move_t1"] * 1e6 - start_us) / 1000.0
        else:
            return
    else:
        ws = (s["start_unix_us"] - start_us) / 1000.0
        we = ws + s["total_ms"]
    w0, w1 = max(0, int(ws) - 1), min(len(tl) - 1, int(we))
    pre = [b for b in tl[max(0, warm_ms):w0] if b["received"] > 0]
    win = tl[w0:w1 + 1]
    res["window_ms"] = [w0, w1]
    res["lost_pre_move"] = sum(b["lost"] for b in tl[max(0, warm_ms):w0])
    res["lost_move_window"] = sum(b["lost"] for b in win)
    res["lost_post_move"] = sum(b["lost"] for b in tl[w1 + 1:])
    res["packets_in_window"] = sum(b["sent"] for b in win)
    res["moved_packets_in_window"] = round(sum(b["mv"] for b in win))

    pre_m = [b for b in pre if b["un"] == 0 and b["mv"] > 0]
    pre_u = [b for b in pre if b["mv"] == 0 and b["un"] > 0]
    base_all = statistics.median(b["latency_mean_us"] for b in pre) if pre else None
    base_m = statistics.median(b["latency_mean_us"] for b in pre_m) if pre_m else base_all
    base_u = statistics.median(b["latency_mean_us"] for b in pre_u) if pre_u else base_all
    res["baseline_latency_ms"] = us_ms(base_m)
    res["baseline_unmoved_latency_ms"] = us_ms(base_u)
    res["pre_move_buckets"] = [len(pre), len(pre_m), len(pre_u)]
    win_u = [b for b in win if b["mv"] == 0 and b["un"] > 0 and b["received"] > 0]
    ref_u = wmean(win_u) if win_u else base_u
    res["window_pure_unmoved_buckets"] = len(win_u)
    # moved packets received in the window, their share of each bucket's
    n_m = sum(b["received"] * b["mv"] / b["sent"] for b in win if b["sent"])
    n_u = sum(b["received"] - b["received"] * b["mv"] / b["sent"] for b in win if b["sent"])
    s_w = sum(b["latency_mean_us"] * b["received"] for b in win)
    if n_m > 0.5 and base_m is not None and ref_u is not None:
        mean_m = (s_w - n_u * ref_u) / n_m
        res["moved_latency_window_ms"] = us_ms(mean_m)
        res["added_latency_ms_avg"] = us_ms(mean_m - base_m)
        bmax = max((b["latency_max_us"] for b in win if b["mv"] > 0 and b["received"] > 0),
                   default=None)
        if bmax is not None:
            top = min(bmax, per["moved"]["lat_max"])
            res["moved_latency_max_ms"] = us_ms(top)
            res["added_latency_ms_max"] = us_ms(top - base_m)
    if win_u and pre_u:
        res["unmoved_mean_shift_ms"] = us_ms(ref_u - base_u)
        # like with like: the window's p99 against the median p99 of pre-move
        # stretches as long as the window (the whole pre-move time if shorter)
        w_p99 = p_nearest([b["latency_max_us"] for b in win_u], 0.99)
        span = w1 - w0 + 1
        pre_all = tl[max(0, warm_ms):w0]
        ref = []
        for a in range(0, max(1, len(pre_all) - span + 1), max(1, span // 2)):
            v = [b["latency_max_us"] for b in pre_all[a:a + span]
                 if b["mv"] == 0 and b["un"] > 0 and b["received"] > 0]
            if v:
                ref.append(p_nearest(v, 0.99))
        if ref:
            res["unmoved_p99_window_ms"] = us_ms(w_p99)
            res["unmoved_p99_before_ms"] = us_ms(statistics.median(ref))
            res["unmoved_p99_shift_ms"] = us_ms(w_p99 - statistics.median(ref))
    # the timeline around the move, for the plot
    a, z = max(0, w0 - 20), min(len(tl), w1 + 60)
    res["timeline"] = [[b["t_ms"] - ws, b["sent"], b["lost"], b["latency_mean_us"],
                        b["latency_max_us"]] for b in tl[a:z]]


def us_ms(v):
    return None if v is None else round(v / 1000.0, 4)


# ---------------------------------------------------------------- calibration

def calibrate(n, start, args, workdir):
    """The highest rate (x0.75 steps down from @start) with 0 lost after the
    warm-up of a run without a move, and >= 90% of it sent."""
    rate = start
    tries = []
    while True:
        lay = Layout(n, rate)
        case = {"op": "none", "flows": n, "mode": "-", "guarantee": "-"}
        r = run_once(case, rate, lay, os.path.join(workdir, "cal%d-%d" % (n, rate)), args,
                     do_move=False)
        ok = ("error" not in r and r.get("lost") == 0 and
              (r.get("achieved_pps") or 0) >= 0.9 * rate)
        tries.append({"rate_pps": rate, "lost": r.get("lost"), "lost_warmup": r.get("lost_warmup"),
                      "achieved_pps": r.get("achieved_pps"), "error": r.get("error"),
                      "wall_s": r["wall_s"], "other_cpu": r.get("other_cpu")})
        print("  calibration %s flows at %d pps: lost %s after the warm-up (%s in it), "
              "sent %s pps, others %s CPU%s -> %s" % (
                  fmt_flows(n), rate, r.get("lost"), r.get("lost_warmup"),
                  r.get("achieved_pps"), r.get("other_cpu"),
                                       ", " + r["error"] if r.get("error") else "",
                                       "ok" if ok else "back off"), flush=True)
        if ok:
            return rate, tries
        nxt = int(rate * 0.75 / 1000) * 1000
        if nxt < args.rate_floor:
            print("  calibration: no clean rate down to %d pps; using it anyway" % rate)
            return rate, tries
        rate = nxt


# ---------------------------------------------------------------- rows

NUM_FIELDS = ("duration_ms", "lost", "reordered", "duplicated", "via_controller_pkts",
              "added_latency_ms_avg", "added_latency_ms_max", "redirected", "buffered",
              "dropped", "connect_ms", "state_ms", "marker_ms", "end_ms", "mbxctl_wall_ms",
              "lost_move_window", "lost_pre_move", "lost_post_move", "lost_warmup", "lost_run",
              "lost_moved", "lost_unmoved", "reordered_moved", "reordered_unmoved",
              "duplicated_moved", "duplicated_unmoved", "baseline_latency_ms",
              "moved_latency_window_ms", "moved_latency_max_ms", "unmoved_mean_shift_ms",
              "unmoved_p99_shift_ms", "achieved_pps", "src_export_ms", "dst_state_in_ms",
              "moved_flows_on_B", "unmoved_flows_on_B", "state_bytes", "other_cpu")


def flatten(r):
    """The per-run figures under the row's names."""
    s = r.get("summary") or {}
    out = dict(r)
    out["duration_ms"] = s.get("total_ms")
    for k in ("redirected", "buffered", "dropped", "connect_ms", "state_ms", "marker_ms",
              "end_ms", "state_bytes"):
        out[k] = s.get(k)
    out["via_controller_pkts"] = s.get("via_controller")
    out["summary_flows"] = s.get("flows")
    out["rolled_back"] = s.get("rolled_back")
    tr = r.get("trace") or []
    out["src_export_ms"] = trace_ms(tr, "A", r"chunks sent")
    out["dst_state_in_ms"] = trace_ms(tr, "B", r"state in")
    return out


def med(vals):
    v = [x for x in vals if x is not None]
    if not v:
        return None
    m = statistics.median(v)
    return round(m, 4) if isinstance(m, float) else m


def make_rows(runs, run_id):
    by = {}
    for r in runs:
        c = r["case"]
        by.setdefault((c["op"], c["flows"], c["mode"], c["guarantee"]), []).append(flatten(r))
    rows = []
    for (op, flows, mode, guar), rs in by.items():
        row = {"op": op, "flows": flows, "rate_pps": rs[0]["rate_pps"], "mode": mode,
               "guarantee": guar}
        for k in NUM_FIELDS:
            row[k] = med(r.get(k) for r in rs)
        for k in ("lost", "reordered", "duplicated", "via_controller_pkts", "lost_move_window"):
            v = [r.get(k) for r in rs if r.get(k) is not None]
            row[k + "_max"] = max(v) if v else None
        row["duration_ms_repeats"] = [r.get("duration_ms") for r in rs]
        row["added_latency_ms_max_repeats"] = [r.get("added_latency_ms_max") for r in rs]
        row["repeats"] = len(rs)
        row["summary_flows"] = [r.get("summary_flows") for r in rs]
        row["rolled_back_runs"] = sum(1 for r in rs if r.get("rolled_back"))
        row["layout"] = rs[0]["layout"]
        row["moved_rate_pps"] = (round(row["achieved_pps"] * flows /
                                       (flows + unmoved_of(rs[0]["layout"])))
                                 if row["achieved_pps"] else None)
        row["run"] = run_id
        errs = [r["error"] for r in rs if r.get("error")]
        if errs:
            row["error"] = "; ".join(errs)
        rows.append(row)
    # controller / p2p in this run
    for row in rows:
        if row["op"] != "move":
            continue
        pair = {r["mode"]: r for r in rows if r["op"] == "move" and r["flows"] == row["flows"]
                and r["guarantee"] == row["guarantee"]}
        p, c = pair.get("p2p"), pair.get("controller")
        # a controller move that failed (its buffer filled, rolled back) has no duration to compare
        row["ratio_ctrl_p2p"] = (round(c["duration_ms"] / p["duration_ms"], 2)
                                 if p and c and p["duration_ms"] and c["duration_ms"] and
                                 not c.get("error") else None)
    order = {"move": 0, "copy": 1}
    rows.sort(key=lambda r: (r["flows"], order.get(r["op"], 2), r["guarantee"] != "lf+op",
                             r["mode"] != "p2p"))
    return rows


def unmoved_of(desc):
    m = re.search(r"(\d+) stay", desc)
    return int(m.group(1)) if m else 0


# ---------------------------------------------------------------- targets

def verdict(ok):
    return "PASS" if ok else "MISS"


def lat_ok(r):
    a, m = r.get("added_latency_ms_avg"), r.get("added_latency_ms_max")
    if a is None or m is None:
        return None
    return a < TARGETS["lat_avg_ms"] and m < TARGETS["lat_max_ms"]


def targets(rows):
    """[(text, value, PASS/MISS/n/a)] for the issue's targets."""
    out = []

    def find(op, flows, mode, guar):
        return next((r for r in rows if r["op"] == op and r["flows"] == flows and
                     r["mode"] == mode and r["guarantee"] == guar), None)

    r = find("move", 500, "p2p", "lf+op")
    if r:
        v = r["duration_ms"]
        out.append(("500 flows lf,op p2p <= %g ms" % TARGETS["p2p_500_ms"],
                    fmt(v, 2) + " ms", verdict(v is not None and v <= TARGETS["p2p_500_ms"])))
    p2p = [r for r in rows if r["mode"] == "p2p"]
    if p2p:
        worst = max((r["via_controller_pkts_max"] or 0) for r in p2p)
        out.append(("0 packets through the controller in p2p (all %d p2p rows, every repeat)"
                    % len(p2p), str(worst), verdict(worst == 0)))
    for r in rows:
        if r["op"] == "move" and r["mode"] == "p2p":
            ok = lat_ok(r)
            out.append(("moved flows' added latency < %g ms avg, < %g ms max: %s flows %s"
                        % (TARGETS["lat_avg_ms"], TARGETS["lat_max_ms"], fmt_flows(r["flows"]),
                           r["guarantee"]),
                        "%s / %s ms" % (fmt(r["added_latency_ms_avg"], 3),
                                        fmt(r["added_latency_ms_max"], 3)),
                        "n/a" if ok is None else verdict(ok)))
    r = find("move", 100000, "p2p", "lf+op")
    if r:
        v = r["duration_ms"]
        out.append(("100k flows lf,op p2p < %g ms" % TARGETS["p2p_100k_ms"], fmt(v, 1) + " ms",
                    verdict(v is not None and v < TARGETS["p2p_100k_ms"])))
    for r in rows:
        if r["op"] == "move" and r["mode"] == "p2p" and r.get("ratio_ctrl_p2p") is not None:
            out.append(("p2p >= %gx faster than controller mode: %s flows %s"
                        % (TARGETS["ratio"], fmt_flows(r["flows"]), r["guarantee"]),
                        "%.1fx" % r["ratio_ctrl_p2p"],
                        verdict(r["ratio_ctrl_p2p"] >= TARGETS["ratio"])))
        elif r["op"] == "move" and r["mode"] == "p2p":
            c = find("move", r["flows"], "controller", r["guarantee"])
            if c and c.get("error"):
                out.append(("p2p >= %gx faster than controller mode: %s flows %s"
                            % (TARGETS["ratio"], fmt_flows(r["flows"]), r["guarantee"]),
                            "controller failed", "n/a"))
    r = find("copy", 500, "p2p", "n/a")
    if r:
        v = r["duration_ms"]
        out.append(("copy of 500 flows <= %g ms" % TARGETS["copy_500_ms"], fmt(v, 2) + " ms",
                    verdict(v is not None and v <= TARGETS["copy_500_ms"])))
    return out


# ---------------------------------------------------------------- output

def fmt(v, p=1):
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    return ("%%.%df" % p) % v


def fmt_flows(n):
    if n >= 1000 and n % 1000 == 0:
        return "%dk" % (n // 1000)
    return str(n)


def print_table(rows):
    hdr = ("%-4s %5s %6s %-10s %-5s %9s %6s %8s %8s %5s %4s %7s %6s %5s %7s %8s %4s %7s %4s" % (
        "op", "flows", "pps", "mode", "guar", "dur_ms", "c/p2p", "lost", "lostwin", "reord",
        "dup", "via_ctl", "redir", "buffd", "add_avg", "add_max", "lat", "unmv_99", "oth"))
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        def mx(k):
            a, b = r.get(k), r.get(k + "_max")
            return fmt(a) if a == b or b is None else "%s(%s)" % (fmt(a), fmt(b))
        lat = lat_ok(r) if r["mode"] == "p2p" and r["op"] == "move" else None
        print("%-4s %5s %6s %-10s %-5s %9s %6s %8s %8s %5s %4s %7s %6s %5s %7s %8s %4s %7s %4s%s" % (
            r["op"], fmt_flows(r["flows"]), r["rate_pps"], r["mode"], r["guarantee"],
            fmt(r["duration_ms"], 2), fmt(r.get("ratio_ctrl_p2p"), 1), mx("lost"),
            mx("lost_move_window"), mx("reordered"), mx("duplicated"),
            mx("via_controller_pkts"), fmt(r["redirected"]), fmt(r["buffered"]),
            fmt(r["added_latency_ms_avg"], 3), fmt(r["added_latency_ms_max"], 3),
            "-" if lat is None else verdict(lat), fmt(r.get("unmoved_p99_shift_ms"), 3),
            fmt(r.get("other_cpu"), 1),
            "  ERROR: " + r["error"][:120] if r.get("error") else ""))
    print("(medians over repeats; lost/lostwin/reord/dup/via_ctl: median(worst repeat) when "
          "they differ; latency in ms; lat: the p2p latency target; unmv_99: p99 shift of the "
          "flows not moved; oth: CPUs other processes used meanwhile)")


COLORS = {"p2p": "#8e24aa", "controller": "#00897b"}


def plot(rows, png, workdir):
    """Durations of p2p and controller mode per size, log scale, labelled."""
    groups = [(r["flows"], r["guarantee"]) for r in rows if r["op"] == "move" and
              r["mode"] == "p2p"]
    groups = sorted(set(groups), key=lambda g: (g[0], g[1] != "lf+op"))
    if not groups:
        return False
    by = {(r["flows"], r["guarantee"], r["mode"]): r for r in rows if r["op"] == "move"}
    top = max([r["duration_ms"] for r in by.values() if r.get("duration_ms")] or [1.0])
    dat = os.path.join(workdir, "move.dat")
    with open(dat, "w") as f:
        f.write("# group p2p_ms controller_ms\n")
        for n, g in groups:
            p = by.get((n, g, "p2p"), {}).get("duration_ms")
            c = by.get((n, g, "controller"), {}).get("duration_ms")
            f.write('"%s flows %s" %s %s\n' % (fmt_flows(n), g, fmt(p, 3) if p else "NaN",
                                               fmt(c, 3) if c else "NaN"))
    gp = [
        'set terminal pngcairo size 1000,560 font "DejaVu Sans,11" noenhanced',
        'set output "%s"' % png,
        'set title "move duration: NAT A -> B over memif, mbxctl move through mbxctld '
        '(median of repeats)\\nlabels: ms; in brackets: controller / p2p of the same run"',
        'set style data histograms', 'set style histogram clustered gap 1',
        'set style fill solid 0.85 border -1', 'set logscale y',
        'set yrange [0.5:%g]' % (top * 8), 'set ylabel "ms (log scale)"', 'set grid ytics',
        'set key top left', 'set xrange [-0.5:%f]' % (len(groups) - 0.5),
    ]
    for i, (n, g) in enumerate(groups):
        p = by.get((n, g, "p2p"), {})
        c = by.get((n, g, "controller"), {})
        if p.get("duration_ms"):
            gp.append('set label "%s" at %f,%f center offset 0,0.8 font ",9"' % (
                fmt(p["duration_ms"], 1), i - 1 / 6.0, p["duration_ms"]))
        if c.get("duration_ms"):
            txt = fmt(c["duration_ms"], 1)
            if p.get("ratio_ctrl_p2p"):
                txt += "\\n(%.1fx)" % p["ratio_ctrl_p2p"]
            gp.append('set label "%s" at %f,%f center offset 0,1.3 font ",9"' % (
                txt, i + 1 / 6.0, c["duration_ms"]))
    gp.append('plot "%s" using 2:xtic(1) title "p2p" lc rgb "%s", "" using 3 title '
              '"controller mode (OpenNF-style)" lc rgb "%s"'
              % (dat, COLORS["p2p"], COLORS["controller"]))
    return gnuplot(gp, os.path.join(workdir, "move.gp"))


def plot_timeline(runs, png, workdir):
    """Latency (max per ms of send time) around the first p2p and controller move
    (lf,op) of each size, time relative to the move's start; crosses: milliseconds
    whose packets were not all received (lost)."""
    panels = []
    for n in sorted({r["case"]["flows"] for r in runs if r["case"]["op"] == "move"}):
        for mode in ("p2p", "controller"):
            r = next((x for x in runs if x["case"]["op"] == "move" and x["case"]["flows"] == n
                      and x["case"]["mode"] == mode and x["case"]["guarantee"] == "lf+op"
                      and x.get("timeline")), None)
            panels.append((n, mode, r))
    if not any(r for _, _, r in panels):
        return False
    rows = len(panels) // 2
    gp = ['set terminal pngcairo size 1300,%d font "DejaVu Sans,9" noenhanced'
          % (230 * rows + 50), 'set output "%s"' % png,
          'set multiplot layout %d,2 title "latency of the packets sent in each ms around a '
          'move (lf,op; line: max, dots: mean; x: ms since the move started, shaded: the move; '
          'crosses: ms with lost packets)"' % rows]
    for n, mode, r in panels:
        if r is None:
            gp += ['set title "%s flows, %s: not measured"' % (fmt_flows(n), mode),
                   'unset object', 'unset logscale y', 'plot [0:1][0:1] 2 notitle']
            continue
        dat = os.path.join(workdir, "timeline-%d-%s.dat" % (n, mode))
        with open(dat, "w") as f:
            for t, sent, lost, mean, mx in r["timeline"]:
                f.write("%.3f %d %d %.3f %.3f\n" % (t, sent, lost, mean, mx))
        dur = (r.get("summary") or {}).get("total_ms") or 0
        lost = r.get("lost_move_window")
        c = COLORS[mode]
        gp += ['set title "%s flows moved, %s, %s pps: %s ms, lost %s in the window"'
               % (fmt_flows(n), mode, r["rate_pps"], fmt(dur, 1), lost),
               'unset object',
               'set object 1 rect from 0,graph 0 to %f,graph 1 fc rgb "#eeeeee" fs solid '
               'noborder behind' % dur,
               'set logscale y', 'set ylabel "ms"', 'set grid', 'set key off',
               'set yrange [0.01:*]',
               'plot "%s" using 1:($5 > 0 ? $5/1000 : NaN) with lines lw 1.2 lc rgb "%s", '
               '"" using 1:($4 > 0 ? $4/1000 : NaN) with dots lc rgb "%s", '
               '"" using 1:($3 > 0 ? 0.015 : NaN) with points pt 2 ps 0.6 lc rgb "#d32f2f"'
               % (dat, c, c)]
    gp.append("unset multiplot")
    return gnuplot(gp, os.path.join(workdir, "move-timeline.gp"))


def gnuplot(lines, path):
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    try:
        r = subprocess.run(["gnuplot", path], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        print("warning: gnuplot: %s (apt-get install -y gnuplot-nox)" % e)
        return False
    if r.returncode != 0:
        print("warning: gnuplot failed: %s" % r.stderr.strip()[:500])
        return False
    return True


# ---------------------------------------------------------------- main

def plan(sizes, args):
    """[(flows, [cases])]: the points of the issue, per size."""
    out = []
    for n in sizes:
        cases = []
        guars = ["lf+op", "lf"] if n == OPENNF_FLOWS else ["lf+op"]
        for g in guars:
            for mode in ("p2p", "controller"):
                cases.append({"op": "move", "flows": n, "mode": mode, "guarantee": g})
        if n == OPENNF_FLOWS:
            cases.append({"op": "copy", "flows": n, "mode": "p2p", "guarantee": "n/a"})
        out.append((n, cases))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default=None,
                    help="comma-separated numbers of flows to move (default 500,1000,10000,"
                         "100000); 500 runs at 2500 pps, the others at a calibrated rate")
    ap.add_argument("--repeat", type=int, default=None, help="runs per point (default 3)")
    ap.add_argument("--rates", default="",
                    help="fixed rates instead of calibration, e.g. 1000:150000,10000:120000")
    ap.add_argument("--rate-start", type=int, default=320000,
                    help="first rate the calibration tries (default 320000 pps)")
    ap.add_argument("--rate-floor", type=int, default=5000)
    ap.add_argument("--baseline", type=float, default=1.0,
                    help="seconds of traffic between the warm-up and the move (default 1)")
    ap.add_argument("--cal-steady", type=float, default=CAL_STEADY_S,
                    help="seconds of traffic after the warm-up in a calibration run")
    ap.add_argument("--retries", type=int, default=2,
                    help="runs again (at most this often) whose traffic lost packets before "
                         "the move started: the rate was not held then (default 2)")
    ap.add_argument("--mem", type=int, default=384,
                    help="-m of every DPDK process (MB), moves of fewer than %d flows" % BIG_MOVE)
    ap.add_argument("--mem-big", type=int, default=1536,
                    help="-m of every DPDK process (MB), moves of %d flows or more" % BIG_MOVE)
    ap.add_argument("--mbufs", type=int, default=196608,
                    help="packet buffers of A and B for moves of %d flows or more: half of them "
                    "is the move's --limit, what A may hold while B installs the state "
                    "(100k flows at 320 kpps held ~60k)" % BIG_MOVE)
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 500 and 1000 flows, 1 repeat, output in results/tmp/quick")
    ap.add_argument("--out", default=None, help="directory for move.json and the plots")
    ap.add_argument("--keep-tmp", action="store_true", help="keep mbxgen's reports")
    args = ap.parse_args()

    sizes = ([int(x) for x in args.sizes.split(",") if x] if args.sizes else
             [500, 1000] if args.quick else list(SIZES))
    repeat = args.repeat or (1 if args.quick else 3)
    fixed = {}
    for item in filter(None, args.rates.split(",")):
        n, _, r = item.partition(":")
        fixed[int(n)] = int(r)
    fixed.setdefault(OPENNF_FLOWS, OPENNF_RATE)
    if any(n < 1 or n > 100000 for n in sizes):
        ap.error("sizes must be in 1..100000 (the NAT pools and --flows of topo.py)")
    out = args.out or (os.path.join(TMP, "quick") if args.quick else RESULTS)
    for exe in (mbxrun.MBXD, topo.MBXGEN, topo.MBXCTLD, topo.MBXCTL):
        if not os.access(exe, os.X_OK):
            sys.exit("%s is missing (build it first: ninja -C build)" % exe)
    if os.geteuid() != 0:
        print("warning: not root; DPDK runtime directories may not be writable")
    os.environ["MBX_LOG"] = "user.mbx.move:debug"  # the per-step trace (topo.py reads it)

    os.makedirs(TMP, exist_ok=True)
    os.makedirs(out, exist_ok=True)
    run_id = datetime.datetime.now().isoformat(timespec="seconds")
    # short: memif and mbxctld sockets live in the run directories (108 bytes at most)
    workdir = tempfile.mkdtemp(prefix="mv%s-" % time.strftime("%m%d%H%M%S"), dir=TMP)
    signal.signal(signal.SIGTERM, _on_signal)
    t_run = time.monotonic()
    print("move benchmark %s: sizes %s, %d repeats; load %s; logs in %s" % (
        run_id, ",".join(map(fmt_flows, sizes)), repeat,
        " ".join(open("/proc/loadavg").read().split()[:3]), os.path.relpath(workdir, ROOT)),
        flush=True)
    runs, calib, discarded = [], {}, []
    prev_rate = args.rate_start
    try:
        for n, cases in plan(sizes, args):
            if n in fixed:
                rate = fixed[n]
            else:
                rate, tries = calibrate(n, prev_rate, args, workdir)
                calib[n] = {"rate_pps": rate, "tries": tries}
                prev_rate = rate
            lay = Layout(n, rate)
            print("%s flows at %d pps: %s" % (fmt_flows(n), rate, lay.describe()), flush=True)
            for rep in range(repeat):
                k = rep % len(cases)
                for case in cases[k:] + cases[:k]:  # a different order every repeat
                    name = "%s%d-%s-%s-%d" % ("c" if case["op"] == "copy" else "m", n,
                                              "ctl" if case["mode"] == "controller" else "p2p",
                                              case["guarantee"].replace("+", "").replace(
                                                  "n/a", "x"), rep)
                    for attempt in range(1 + args.retries):
                        r = run_once(case, rate, lay, os.path.join(
                            workdir, name + ("r%d" % attempt if attempt else "")), args)
                        if not r.get("lost_pre_move") or attempt == args.retries:
                            break
                        # the rate was not held before the move: noise, not the move
                        r["discarded"] = "lost %d before the move" % r["lost_pre_move"]
                        discarded.append(r)
                        print("  %-22s discarded: lost %d packets before the move; again" % (
                            name, r["lost_pre_move"]), flush=True)
                    runs.append(r)
                    s = r.get("summary") or {}
                    print("  %-22s %9s ms  lost %s (window %s, pre %s) reord %s dup %s  "
                          "via_ctl %s  added %s/%s ms  [%.1f s, others %s CPU]%s" % (
                              name, fmt(s.get("total_ms"), 2), r.get("lost"),
                              r.get("lost_move_window"), r.get("lost_pre_move"),
                              r.get("reordered"), r.get("duplicated"),
                              s.get("via_controller"), fmt(r.get("added_latency_ms_avg"), 3),
                              fmt(r.get("added_latency_ms_max"), 3), r["wall_s"],
                              r.get("other_cpu"),
                              "  ERROR " + r["error"] if r.get("error") else ""), flush=True)
    finally:
        cleanup_all()

    with open(os.path.join(workdir, "runs.json"), "w") as f:
        json.dump({"run": run_id, "calibration": calib, "runs": runs, "discarded": discarded},
                  f, indent=1)
    rows = make_rows(runs, run_id)
    for row in rows:
        row["discarded_runs"] = sum(
            1 for d in discarded if (d["case"]["op"], d["case"]["flows"], d["case"]["mode"],
                                     d["case"]["guarantee"]) ==
            (row["op"], row["flows"], row["mode"], row["guarantee"]))
    for row in rows:
        if row["flows"] in calib:
            row["rate_calibration"] = calib[row["flows"]]["tries"]
    json_path = os.path.join(out, "move.json")
    merged = dataplane.merge_json(
        json_path, rows, key=lambda r: (r.get("op"), r.get("flows")),
        order=lambda r: (r.get("flows", 0), r.get("op") != "move",
                         r.get("guarantee") != "lf+op", r.get("mode") != "p2p"))
    png = os.path.join(out, "move.png")
    tl_png = os.path.join(out, "move-timeline.png")
    plotted = plot(merged, png, workdir)
    plotted_tl = plot_timeline(runs, tl_png, workdir)
    print()
    print_table(rows)
    print()
    for text, value, v in targets(rows):
        print("target: %-78s %14s  %s" % (text, value, v))
    print("wrote %s%s%s; total %.0f s" % (
        os.path.relpath(json_path, ROOT), ", " + os.path.relpath(png, ROOT) if plotted else "",
        ", " + os.path.relpath(tl_png, ROOT) if plotted_tl else "", time.monotonic() - t_run))
    # a controller-mode move that fails (and rolls back) is a result; a p2p one is not
    return 1 if any(r.get("error") for r in rows if r["mode"] != "controller") else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        cleanup_all()
        print("move.py: interrupted (%s); processes stopped" % (e or "SIGINT"), file=sys.stderr)
        sys.exit(130)
