#!/usr/bin/python3
"""State export and import: cost per NAT flow, bytes, and the dataplane during an export.

What it measures
----------------
For every flow count N (default 1000, 100000, 1000000), in one run:

1. mbxd A: ``--nf nat,ext_ip=198.18.0.0/20``, one worker (``--lcores 0-1``),
   port 0 ``net_pcap0,rx_pcap=<N flows>,infinite_rx=1`` (the same traffic as
   bench/dataplane.py: one 64 B UDP packet per flow, replayed forever), port 1
   ``net_null0,no-rx=1``, ``--control unix:<runtime dir>/mbx.sock``, memory
   sized like dataplane.py's nat case, UDP idle timeouts of 3600 s (see
   IDLE_TIMEOUT; A and B alike). The script waits until ``/mbx/table``
   ``flows`` == N and the NAT stops creating mappings.
2. A's throughput without an export: ``/ethdev/stats,1`` ``opackets`` over
   ``--seconds`` (default 3), measured before and after every export window;
   the reference for a window is the mean of the two windows around it.
3. Export: ``mbxctl --at unix:A get-state --scope per-flow -o dump.bin`` (the C
   client), timed wall-clock around the process, repeated back to back until
   the export window lasts ``--window`` seconds (default 2) and at least
   ``--min-exports`` (default 2) times. Process start-up, connect and one
   round trip are not a cost per flow: ``mbxctl info`` is timed
   ``--baseline-calls`` times (default 15) and its median subtracted ("net";
   "raw" is without the subtraction; at 1000 flows the ~2.5 ms of fixed cost
   is most of a call, so the net figure there is noisy). The reported time is the median over the exports.
   ``throughput_ratio`` = A's port-1 Mpps during the window (first export start
   to last export end) / Mpps without an export. MB on the wire = the size of
   the dump file (the chunks, each with a 4-byte length, plus 8 bytes of magic);
   the gRPC-style frames carry the same chunks in one repeated field.
   The same is done for ``--scope all`` (all-flows pool, multi-flow host port
   blocks, per-flow mappings: what a move sends), and each of the other two
   scopes is timed alone (``--scope multi-flow``, ``--scope all-flows``).
4. Import: A is stopped (so its busy worker does not share a CPU with B's),
   then a fresh mbxd B with the same pool and no traffic (``net_null0,no-rx=1``
   only, ``--flows`` for N) gets ``mbxctl --at unix:B put-state -i dump.bin``
   (net of B's own ``mbxctl info`` baseline); B must then hold exactly N flows
   (``/mbx/table``). Done for the per-flow dump, for the ``--scope all`` dump
   (the real move), and, on a third B, for the three single-scope dumps one
   after the other in the order a put needs them (per-scope import timings).

Noise: the machine is shared. For every quiet window, export window and
import the script reads how much CPU other processes used meanwhile
(/proc/stat busy time minus this script, its mbxctl children and its mbxd);
above 0.3 CPU (or 0.1 CPU of steal) the measurement is marked ``disturbed``
and taken again, at most ``--retries`` (default 1) more times. Reported
figures are medians over the undisturbed measurements, or over all of them
(and the row says "disturbed by other load") when none was undisturbed.
Every window's figures are in the JSON (``windows``). CPU time per flow
(mbxctl's user+sys from wait4, plus mbxd's main lcore thread from /proc) is
printed too: it moves less with other load than wall-clock time does.

The binaries are copied into the run's work directory first (the shared build
directory may be relinked by someone else during a run); the JSON records
the mtime of the copied files.

mbxctl runs pinned to CPU ``--client-cpu`` (default 0: the CPU of mbxd's main
lcore, i.e. the control CPU; lcore 1, the worker, busy-polls CPU 1), so that it
never takes time from the worker, as a controller on another host would not;
the client and the control server then share one CPU and their work adds up
in the wall-clock time. ``--client-cpu -1`` leaves the client unpinned.

OpenNF (SIGCOMM 2014) reports 178 us per flow to export and 108 us per flow to
import; the issue's target is at least 100 times cheaper: ``vs_openNF`` =
178 / export us per flow (108 / import us per flow), target >= 100 (net).

Outputs
-------
- a table on stdout;
- ``bench/results/state.json``: a list of rows ``{"op": "export"|"import",
  "flows", "us_per_flow", "mb", "vs_openNF", "throughput_ratio" (export
  only), ...}``, one export and one import row per flow count, for the
  per-flow scope. Extra keys: ``case`` ("nat", the NF whose state; rows of
  other cases in the file are kept, like dataplane.json), ``scope``,
  ``us_per_flow_raw``, ``vs_openNF_raw``, ``bytes_per_flow``, ``seconds`` /
  ``seconds_raw`` (median of one call), ``calls`` / ``calls_summary`` (raw
  seconds of the calls), ``baseline_s``, ``mpps_without`` / ``mpps_during``
  (export), ``chunks``, ``client_cpu_us_per_flow``,
  ``server_cpu_us_per_flow`` (mbxd's main lcore), ``disturbed_windows``,
  ``all_disturbed``, ``scopes`` (export: the same figures for ``all``,
  ``multi-flow``, ``all-flows``; import: ``all`` = the --scope all dump in
  one put-state, ``separately`` = the three single-scope dumps, with
  ``per_put_s``), ``windows`` (every quiet/export window), ``timeline``
  (export: [seconds, Mpps, export window label or null] every ~0.1 s),
  ``peak_rss_mb``, ``binaries``, ``run``, ``error``;
- ``bench/results/state.png`` (gnuplot): us per flow against OpenNF and the
  100x target, the throughput ratio during exports, and A's throughput over
  time for the largest flow count, samples in export windows coloured.

Generated pcaps, dumps, process logs and gnuplot input go to
``bench/results/tmp/`` (ignored by git; dumps and pcaps are removed at the
end unless ``--keep-tmp``).

Usage
-----
    /usr/bin/python3 bench/state.py                   # full run
    /usr/bin/python3 bench/state.py --flows 1000,100000 --repeat 3
    /usr/bin/python3 bench/state.py --quick           # smoke test

``--quick``: 1000 flows only, 1 s windows, output in
``bench/results/tmp/quick/`` unless ``--out`` is given. ``--repeat R``: R
export windows per flow count on the same A and R imports on fresh B's (at
least 3 imports up to 100k flows, where a B starts in well under a second);
medians are reported and every value is kept in the JSON.

Memory: A needs what dataplane.py's nat case needs (about 6 GB of -m and
4.5 GB RSS at 1M flows: one 4 KB page per pcap mbuf without hugepages), B
about 1.8 GB of -m at 1M flows; they never run at the same time. mbxctl
put-state holds the whole dump decoded (440 MB peak RSS at 1M flows). A full
run takes about 90 s on a quiet machine (3 min with --repeat 2), much longer
when other processes load the CPUs. Run as root.
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dataplane as dp  # noqa: E402  (its pcap writer, processes, memory sizing, JSON merge)

mbxrun = dp.mbxrun
ROOT = dp.ROOT
RESULTS = dp.RESULTS
TMP = dp.TMP
MBXCTL = os.path.join(mbxrun.BUILD, "controller-shim", "mbxctl")
OPENNF_US = {"export": 178.0, "import": 108.0}  # OpenNF, per flow
TARGET_X = 100.0  # be at least this many times cheaper
SCOPES = ("per-flow", "multi-flow", "all-flows", "all")
HZ = os.sysconf("SC_CLK_TCK")
# UDP idle timeouts of A and B (defaults 30 s / 300 s): an imported flow's
# idle timer starts at its install, in its class (udp_first), and B sees no
# traffic, so on a loaded machine a slow 1M-flow put would see its first flows
# expire before it returns; A's flows could expire while A is starved.
IDLE_TIMEOUT = 3600
DISTURBED_CPU = 0.3  # foreign CPU (in CPUs) above which a window counts as disturbed


# ---------------------------------------------------------------- noise

class CpuMeter:
    """How much CPU others used: the machine's busy time (/proc/stat) minus
    this script, its reaped children (mbxctl) and the mbxd processes given.
    On a 2-CPU machine shared with other developers' tests this tells a
    measurement disturbed by them from one that was not."""

    def __init__(self):
        self.pids = []

    def snap(self):
        with open("/proc/stat") as fh:
            v = [int(x) for x in fh.readline().split()[1:9]]
        busy = v[0] + v[1] + v[2] + v[5] + v[6]  # user nice system irq softirq
        own = 0
        for pid in self.pids:
            try:
                with open("/proc/%d/stat" % pid) as fh:
                    fl = fh.read().rsplit(")", 1)[1].split()
                own += int(fl[11]) + int(fl[12])
            except (OSError, IndexError, ValueError):
                pass
        t = os.times()
        own += (t.user + t.system + t.children_user + t.children_system) * HZ
        return time.monotonic(), busy, v[7], own

    @staticmethod
    def foreign(a, b):
        """(foreign CPUs, steal CPUs) between two snapshots."""
        dt = max(b[0] - a[0], 1e-6)
        return (max(0.0, ((b[1] - a[1]) - (b[3] - a[3])) / HZ / dt),
                max(0.0, (b[2] - a[2]) / HZ / dt))


CPU = CpuMeter()


def snapshot_binaries(args):
    """Copy mbxd and mbxctl into the run's work directory: the shared build
    directory may be relinked by someone else during the run (a binary is then
    briefly missing, empty or not executable, and a run would mix versions).
    A copy is taken only of an executable ELF file that has not changed for 2 s
    and did not change while being copied."""
    info = {}
    for attr, name in (("mbxd", "mbxd"), ("mbxctl", "mbxctl")):
        src = getattr(args, attr)
        dst = os.path.join(args.work, name)
        deadline = time.monotonic() + 120
        while True:
            try:
                st0 = os.stat(src)
                if (time.time() - st0.st_mtime >= 2.0 and st0.st_size > 0 and
                        os.access(src, os.X_OK)):
                    shutil.copy2(src, dst)
                    st1 = os.stat(src)
                    with open(dst, "rb") as fh:
                        elf = fh.read(4) == b"\x7fELF"
                    if elf and (st1.st_mtime, st1.st_size) == (st0.st_mtime, st0.st_size) \
                            and os.path.getsize(dst) == st0.st_size:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit("%s: no stable executable to copy (is someone building?)" % src)
            time.sleep(0.5)
        info[name] = {"path": src, "mtime": datetime.datetime.fromtimestamp(
            st0.st_mtime).isoformat(timespec="seconds"), "size": st0.st_size}
        setattr(args, attr, dst)
    return info


# ---------------------------------------------------------------- mbxctl

ARGS = argparse.Namespace(mbxctl=MBXCTL)


def run_ctl(at, args, cpu):
    """Run mbxctl once: {wall, rc, out, err, cpu_s (user+sys), maxrss_mb}."""
    argv = [ARGS.mbxctl, "--at", at] + list(args)

    def pre():
        os.setpgrp()
        if cpu is not None and cpu >= 0:
            os.sched_setaffinity(0, {cpu})
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                             preexec_fn=pre)
        try:
            _, status, ru = os.wait4(p.pid, 0)
        except BaseException:
            p.kill()
            p.wait()
            raise
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        out = fo.read().decode(errors="replace")
        err = fe.read().decode(errors="replace")
    return {"wall": wall, "rc": p.returncode, "out": out, "err": err,
            "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_mb": ru.ru_maxrss / 1024.0,
            "argv": argv}


def ctl_ok(r, what):
    if r["rc"] != 0:
        raise RuntimeError("%s failed (exit %s): %s\n  command: %s" % (
            what, r["rc"], (r["err"] or r["out"]).strip()[:500], " ".join(r["argv"])))
    try:
        return json.loads(r["out"].strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}


def baseline(at, calls, cpu):
    """Median wall-clock seconds of `mbxctl info`: process start-up, connect,
    one round trip and exit, the part of every call that is not per flow."""
    walls = []
    for _ in range(calls):
        r = run_ctl(at, ["info"], cpu)
        ctl_ok(r, "mbxctl info")
        walls.append(r["wall"])
    return statistics.median(walls), walls


# ---------------------------------------------------------------- mbxd

def wait_ready(proc, sock, timeout):
    mbxrun.wait_until(lambda: proc.p.poll() is not None or os.path.exists(sock),
                      timeout=timeout, period=0.05, what="the control socket %s" % sock)
    if proc.p.poll() is not None:
        raise RuntimeError("mbxd exited with %s at start-up; see %s" % (
            proc.p.returncode, proc.log_path))
    proc.query("/mbx/table", timeout=timeout)


def start_mbxd(name, n, pcap, args, logdir, tag):
    """mbxd with the NAT for n flows; with pcap: A (traffic), without: B (none)."""
    prefix = mbxrun.unique_prefix("bdp_" + name)
    sock = os.path.join(mbxrun.RUNTIME, prefix, "mbx.sock")
    mbufs, mem = dp.mem_mb(n if pcap else 0, n, True)
    vdevs = (["net_pcap0,rx_pcap=%s,infinite_rx=1" % pcap] if pcap else []) + [
        "net_null0,no-rx=1"]
    argv = [args.mbxd] + mbxrun.eal_args(prefix, lcores="0-1", mem=mem, vdevs=vdevs) + [
        "--", "--nf", "nat,ext_ip=" + dp.EXT_IP, "--flows", str(max(1024, n + n // 8)),
        "--idle-sleep-us", "0", "--control", "unix:" + sock,
        "--timeout", "udp_first=%d" % IDLE_TIMEOUT, "--timeout", "udp=%d" % IDLE_TIMEOUT]
    if pcap:
        argv += ["--mbufs", str(mbufs)]
    log = os.path.join(logdir, "%s-%d-%s.log" % (name, n, tag))
    proc = dp.BenchProc(argv, prefix, log)
    dp.LIVE.append(proc)
    proc.sock = sock
    proc.at = "unix:" + sock
    proc.argv = argv
    return proc


def stop_mbxd(proc):
    if proc in dp.LIVE:
        dp.LIVE.remove(proc)
    mem = proc.mem_status()
    rc = proc.stop()
    return rc, round(mem.get("VmHWM", 0)) if mem else None


def main_thread_cpu_s(proc):
    """CPU seconds (user+sys) of mbxd's main thread: the main lcore, which
    runs the control server."""
    try:
        with open("/proc/%d/task/%d/stat" % (proc.p.pid, proc.p.pid)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / HZ
    except (OSError, IndexError, ValueError):
        return None


def out_packets(tel):
    a = time.monotonic()
    o = tel.query("/ethdev/stats", 1)["opackets"]
    return (a + time.monotonic()) / 2, o


class Sampler(threading.Thread):
    """Port-1 opackets every ~0.1 s on a telemetry connection of its own: the
    timeline of A. Samples taken while .label is set carry that label (the
    export window they are in)."""

    def __init__(self, prefix, period=0.1):
        super().__init__(daemon=True)
        self.tel = mbxrun.Telemetry(prefix)
        self.period = period
        self.samples = []  # (t, opackets, label)
        self.label = None
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                t, o = out_packets(self.tel)
            except (OSError, ValueError, KeyError):
                break
            self.samples.append((t, o, self.label))
            self.halt.wait(self.period)

    def stop(self):
        self.halt.set()
        self.join(5)
        self.tel.close()

    def timeline(self):
        """[[t from the first sample, Mpps, label]] between consecutive samples."""
        s = self.samples
        if len(s) < 2:
            return []
        t0 = s[0][0]
        return [[round(b[0] - t0, 3), round((b[1] - a[1]) / (b[0] - a[0]) / 1e6, 3),
                 b[2] if b[2] == a[2] else (a[2] or b[2])]
                for a, b in zip(s, s[1:]) if b[0] > a[0]]


def rate_window(tel, seconds, sysmem):
    """Mpps on port 1 over @seconds, and the foreign CPU meanwhile."""
    c0 = CPU.snap()
    t0, o0 = out_packets(tel)
    end = t0 + seconds
    while time.monotonic() < end:
        time.sleep(min(0.5, max(0.0, end - time.monotonic())))
        sysmem.sample()
    t1, o1 = out_packets(tel)
    fo, st = CpuMeter.foreign(c0, CPU.snap())
    return {"mpps": (o1 - o0) / (t1 - t0) / 1e6, "foreign_cpu": round(fo, 3),
            "steal_cpu": round(st, 3)}


def export_window(a, tel, sampler, scope, path, n, args, label):
    """Export back to back for --window seconds; Mpps over the window."""
    runs = []
    cpu0 = main_thread_cpu_s(a)
    c0 = CPU.snap()
    sampler.label = label
    t0, o0 = out_packets(tel)
    while True:
        r = run_ctl(a.at, ["get-state", "--scope", scope, "-o", path], args.client_cpu)
        res = ctl_ok(r, "mbxctl get-state --scope " + scope)
        if scope == "per-flow" and res.get("chunks") != n:
            raise RuntimeError("per-flow export has %s chunks, expected %d" % (
                res.get("chunks"), n))
        r["chunks"] = res.get("chunks")
        runs.append(r)
        if time.monotonic() - t0 >= args.window and len(runs) >= args.min_exports:
            break
    t1, o1 = out_packets(tel)
    sampler.label = None
    fo, st = CpuMeter.foreign(c0, CPU.snap())
    cpu1 = main_thread_cpu_s(a)
    return {
        "runs": runs, "mpps": (o1 - o0) / (t1 - t0) / 1e6, "window_s": t1 - t0,
        "server_cpu_s": cpu1 - cpu0 if None not in (cpu0, cpu1) else None,
        "foreign_cpu": round(fo, 3), "steal_cpu": round(st, 3),
    }


def disturbed(*ws):
    return any(w["foreign_cpu"] > DISTURBED_CPU or w["steal_cpu"] > DISTURBED_CPU / 3
               for w in ws)


def call_stats(runs, base_s, n, what):
    raw = [r["wall"] for r in runs]
    med = statistics.median(raw)
    net = med - base_s
    return {
        "seconds_raw": round(med, 6), "seconds": round(net, 6),
        "us_per_flow_raw": round(med / n * 1e6, 4), "us_per_flow": round(net / n * 1e6, 4),
        "calls": [round(x, 6) for x in raw],
        "client_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 4),
        "client_maxrss_mb": round(max(r["maxrss_mb"] for r in runs), 1),
        "what": what,
    }


# ---------------------------------------------------------------- one flow count

def measure_export(n, pcap, args, logdir, sysmem, dumps, peaks):
    """A: warm-up, baseline, export windows. Fills dumps[scope] with a file."""
    out = {"flows": n, "scopes": {}, "windows": []}
    a = start_mbxd("stateA", n, pcap, args, logdir, "A")
    CPU.pids = [a.p.pid]
    out["argv_a"] = a.argv
    sampler = None
    try:
        tel_timeout = 60 + n / 20000
        t_start = time.monotonic()
        wait_ready(a, a.sock, tel_timeout)
        last = [None]

        def settled():
            sysmem.sample()
            flows = a.query("/mbx/table")["flows"]
            created = a.query("/mbx/nf", "nat")["mappings_created"]
            ok = flows == n and created == last[0]
            last[0] = created
            return ok
        mbxrun.wait_until(settled, timeout=tel_timeout + n / 5000, period=0.25,
                          what="A to hold all %d flows" % n)
        out["startup_s"] = round(time.monotonic() - t_start, 2)
        time.sleep(args.warmup)
        tel = a.telemetry()
        sampler = Sampler(a.prefix)
        sampler.start()
        c0 = CPU.snap()
        base_s, base_all = baseline(a.at, args.baseline_calls, args.client_cpu)
        out["baseline_s"] = round(base_s, 6)
        out["baseline_calls"] = [round(x, 6) for x in base_all]
        out["baseline_foreign_cpu"] = round(CpuMeter.foreign(c0, CPU.snap())[0], 3)
        runs = {"per-flow": [], "all": []}
        before = rate_window(tel, args.seconds, sysmem)
        quiet = [before]
        for rep in range(args.repeat):
            for scope in ("per-flow", "all"):
                path = os.path.join(args.work, "dump-%d-%s.bin" % (n, scope))
                for attempt in range(1 + args.retries):
                    w = export_window(a, tel, sampler, scope, path, n, args,
                                      "%s#%d.%d" % (scope, rep, attempt))
                    after = rate_window(tel, args.seconds, sysmem)
                    quiet.append(after)
                    without = (before["mpps"] + after["mpps"]) / 2
                    bad = disturbed(before, w, after)
                    out["windows"].append({
                        "scope": scope, "rep": rep, "attempt": attempt,
                        "mpps_during": round(w["mpps"], 4),
                        "mpps_before": round(before["mpps"], 4),
                        "mpps_after": round(after["mpps"], 4),
                        "ratio": round(w["mpps"] / without, 4) if without else None,
                        "window_s": round(w["window_s"], 3), "exports": len(w["runs"]),
                        "export_s": [round(r["wall"], 6) for r in w["runs"]]
                        if len(w["runs"]) <= 50 else None,
                        "server_cpu_s_per_export": round(w["server_cpu_s"] / len(w["runs"]), 5)
                        if w["server_cpu_s"] is not None else None,
                        "client_cpu_s_per_export": round(statistics.mean(
                            r["cpu_s"] for r in w["runs"]), 5),
                        "foreign_cpu": [before["foreign_cpu"], w["foreign_cpu"],
                                        after["foreign_cpu"]],
                        "steal_cpu": [before["steal_cpu"], w["steal_cpu"], after["steal_cpu"]],
                        "disturbed": bad,
                    })
                    out["windows"][-1]["_runs"] = w["runs"]
                    dumps[scope] = path
                    before = after
                    sysmem.sample()
                    if not bad:
                        break
        # the other scopes alone: timing and size only
        for scope in ("multi-flow", "all-flows"):
            path = os.path.join(args.work, "dump-%d-%s.bin" % (n, scope))
            rs = []
            t0 = time.monotonic()
            # at least 3 calls, more (up to 25) while they take under a second in all
            while len(rs) < 3 * args.repeat or (len(rs) < 25 and time.monotonic() - t0 < 1.0):
                r = run_ctl(a.at, ["get-state", "--scope", scope, "-o", path], args.client_cpu)
                r["chunks"] = ctl_ok(r, "mbxctl get-state --scope " + scope).get("chunks")
                rs.append(r)
            runs[scope] = rs
            dumps[scope] = path
        for scope in SCOPES:
            ws = [w for w in out["windows"] if w["scope"] == scope]
            clean = [w for w in ws if not w["disturbed"]] or ws
            if ws:
                runs[scope] = [r for w in clean for r in w["_runs"]]
            st = call_stats(runs[scope], base_s, n, "export")
            size = os.path.getsize(dumps[scope])
            st.update({"bytes": size, "mb": round(size / 1e6, 4),
                       "bytes_per_flow": round(size / n, 2), "chunks": runs[scope][-1]["chunks"],
                       "exports": len(runs[scope])})
            if ws:
                st["throughput_ratio"] = round(statistics.median(w["ratio"] for w in clean), 4)
                st["ratios"] = [w["ratio"] for w in ws]
                st["disturbed_windows"] = sum(w["disturbed"] for w in ws)
                st["all_disturbed"] = all(w["disturbed"] for w in ws)
                st["mpps_during"] = round(statistics.median(w["mpps_during"] for w in clean), 4)
                sc = [w["server_cpu_s_per_export"] for w in clean
                      if w["server_cpu_s_per_export"] is not None]
                if sc:
                    st["server_cpu_us_per_flow"] = round(statistics.median(sc) / n * 1e6, 4)
                st["client_cpu_us_per_flow"] = round(st["client_cpu_s"] / n * 1e6, 4)
            out["scopes"][scope] = st
        for w in out["windows"]:
            del w["_runs"]
        out["mpps_without"] = round(statistics.median(q["mpps"] for q in quiet), 4)
        out["mpps_quiet"] = [round(q["mpps"], 4) for q in quiet]
        t = a.query("/mbx/table")
        out["flows_after"] = t["flows"]
        if t["flows"] != n:
            out["warning"] = "A holds %d flows after the exports, expected %d" % (t["flows"], n)
    except Exception as e:
        rc = a.p.poll()
        out["error"] = "A: %s: %s%s" % (type(e).__name__, e,
                                       " (mbxd exited with %s)" % rc if rc is not None else "")
        out["log_tail"] = dp.tail(a.log_path)
        for w in out["windows"]:
            w.pop("_runs", None)
    finally:
        if sampler is not None:
            sampler.stop()
            out["timeline"] = sampler.timeline()
        rc, hwm = stop_mbxd(a)
        CPU.pids = []
        peaks.append(("A %d" % n, hwm))
        out["peak_rss_mb"] = hwm
        out["exit_a"] = rc
    return out


def measure_import(n, files, args, logdir, sysmem, peaks, tag):
    """A fresh B, then put-state of each file in order; B must hold n flows."""
    out = {"files": [os.path.basename(f) for f in files], "puts": []}
    b = start_mbxd("stateB", n, None, args, logdir, tag)
    CPU.pids = [b.p.pid]
    try:
        wait_ready(b, b.sock, 60 + n / 20000)
        c0 = CPU.snap()
        base_s, base_all = baseline(b.at, args.baseline_calls, args.client_cpu)
        out["baseline_s"] = round(base_s, 6)
        cpu0 = main_thread_cpu_s(b)
        for f in files:
            sysmem.sample()
            r = run_ctl(b.at, ["put-state", "-i", f], args.client_cpu)
            res = ctl_ok(r, "mbxctl put-state -i %s" % os.path.basename(f))
            out["puts"].append({"file": os.path.basename(f), "wall": r["wall"],
                                "installed": res.get("installed"), "cpu_s": r["cpu_s"],
                                "maxrss_mb": r["maxrss_mb"]})
        cpu1 = main_thread_cpu_s(b)
        # /proc/stat counts in ticks (10 ms): judge others' load over >= 1 s
        time.sleep(max(0.0, 1.0 - (time.monotonic() - c0[0])))
        fo, st = CpuMeter.foreign(c0, CPU.snap())
        out["foreign_cpu"], out["steal_cpu"] = round(fo, 3), round(st, 3)
        out["disturbed"] = fo > DISTURBED_CPU or st > DISTURBED_CPU / 3
        out["server_cpu_s"] = cpu1 - cpu0 if None not in (cpu0, cpu1) else None
        sysmem.sample()
        out["flows_after"] = b.query("/mbx/table")["flows"]
        out["nat"] = b.query("/mbx/nf", "nat")
        if out["flows_after"] != n:
            st = b.query("/mbx/stats") or {}
            out["error"] = "B holds %d flows after the import, expected %d (%s expired)" % (
                out["flows_after"], n, st.get("flows_expired", "?"))
    except Exception as e:
        rc = b.p.poll()
        out["error"] = "B: %s: %s%s" % (type(e).__name__, e,
                                       " (mbxd exited with %s)" % rc if rc is not None else "")
        out["log_tail"] = dp.tail(b.log_path)
    finally:
        rc, hwm = stop_mbxd(b)
        CPU.pids = []
        peaks.append(("B %d %s" % (n, tag), hwm))
        out["peak_rss_mb"] = hwm
    return out


def import_stats(imps, n, what):
    ok = [i for i in imps if "error" not in i]
    if not ok:
        return {"error": "; ".join(i.get("error", "?") for i in imps)}
    use = [i for i in ok if not i["disturbed"]] or ok
    tot = [sum(p["wall"] for p in i["puts"]) for i in use]
    base = [i["baseline_s"] * len(i["puts"]) for i in use]
    k = min(range(len(tot)), key=lambda j: abs(tot[j] - statistics.median(tot)))
    raw, net = statistics.median(tot), statistics.median(t - b for t, b in zip(tot, base))
    st = {
        "seconds_raw": round(raw, 6), "seconds": round(net, 6),
        "us_per_flow_raw": round(raw / n * 1e6, 4), "us_per_flow": round(net / n * 1e6, 4),
        "calls": [round(sum(p["wall"] for p in i["puts"]), 6) for i in ok],
        "baseline_s": use[k]["baseline_s"],
        "installed": [p["installed"] for p in use[k]["puts"]],
        "flows_after": use[k]["flows_after"],
        "client_cpu_s": round(sum(p["cpu_s"] for p in use[k]["puts"]), 4),
        "client_maxrss_mb": round(max(p["maxrss_mb"] for i in ok for p in i["puts"]), 1),
        "peak_rss_mb": max(i["peak_rss_mb"] or 0 for i in imps), "what": what,
        "foreign_cpu": [i["foreign_cpu"] for i in ok],
        "disturbed": [i["disturbed"] for i in ok], "all_disturbed": all(i["disturbed"] for i in ok),
    }
    st["client_cpu_us_per_flow"] = round(st["client_cpu_s"] / n * 1e6, 4)
    # the main thread's CPU time comes in 10 ms ticks: meaningless for short puts
    if use[k].get("server_cpu_s") is not None and tot[k] >= 0.5:
        st["server_cpu_us_per_flow"] = round(use[k]["server_cpu_s"] / n * 1e6, 4)
    if len(use[k]["puts"]) > 1:
        st["per_put_s"] = {p["file"]: round(p["wall"], 6) for p in use[k]["puts"]}
    errs = [i["error"] for i in imps if "error" in i]
    if errs:
        st["error"] = "; ".join(errs)
    return st


def measure(n, args, logdir, sysmem, peaks, run_id):
    pcap = os.path.join(TMP, "state-udp64-%d.pcap" % n)
    t = time.monotonic()
    dp.write_pcap(pcap, n)
    print("flows %s: pcap %s (%.1f MB) in %.1f s" % (
        dp.fmt_flows(n), os.path.relpath(pcap, ROOT), os.path.getsize(pcap) / 1e6,
        time.monotonic() - t), flush=True)
    dumps = {}
    try:
        ex = measure_export(n, pcap, args, logdir, sysmem, dumps, peaks)
    finally:
        if not args.keep_tmp:
            os.remove(pcap)
    if "error" in ex:
        print("  export FAILED: %s\n    command: %s\n    log:\n%s" % (
            ex["error"], " ".join(ex["argv_a"]),
            "".join("      " + ln for ln in ex.get("log_tail", "").splitlines(True))), flush=True)
    else:
        print("  A: %d flows after %.1f s; empty call (mbxctl info) %.2f ms" % (
            n, ex["startup_s"], ex["baseline_s"] * 1e3))
        for w in ex["windows"]:
            print("  export %-8s rep %d.%d: %4d exports in %.2f s, %.3f Mpps during vs %.3f/%.3f "
                  "before/after: ratio %.3f; server %s ms, client %.1f ms CPU per export; "
                  "others' CPU %s%s" % (
                      w["scope"], w["rep"], w["attempt"], w["exports"], w["window_s"],
                      w["mpps_during"], w["mpps_before"], w["mpps_after"], w["ratio"],
                      "%.1f" % (w["server_cpu_s_per_export"] * 1e3)
                      if w["server_cpu_s_per_export"] is not None else "?",
                      w["client_cpu_s_per_export"] * 1e3,
                      "/".join("%.2f" % x for x in w["foreign_cpu"]),
                      " DISTURBED" if w["disturbed"] else ""), flush=True)
        for s in SCOPES:
            st = ex["scopes"][s]
            print("  export %-10s %9.3f ms raw, %9.3f ms net, %.4f us/flow, %.3f MB, "
                  "%d chunks" % (s, st["seconds_raw"] * 1e3, st["seconds"] * 1e3,
                                 st["us_per_flow"], st["mb"], st["chunks"] or 0), flush=True)
    imports = {}
    plans = [("per-flow", ["per-flow"]), ("all", ["all"]),
             ("scopes", ["all-flows", "multi-flow", "per-flow"])]
    for name, scopes in plans:
        if any(s not in dumps for s in scopes):
            continue
        imps = []
        # a fresh B per import; up to 100k flows that is cheap, so at least 3
        reps = max(args.repeat, 3) if n <= 100000 else args.repeat
        for rep in range(reps if name != "scopes" else 1):
            for attempt in range(1 + args.retries):
                imps.append(measure_import(n, [dumps[s] for s in scopes], args, logdir, sysmem,
                                           peaks, "%s-%d.%d" % (name, rep, attempt)))
                i = imps[-1]
                if "error" in i:
                    print("  import %-8s FAILED: %s%s\n%s" % (
                        name, i["error"], "".join("; %s %.3f ms (installed %s)" % (
                            p["file"], p["wall"] * 1e3, p["installed"]) for p in i["puts"]),
                        "".join("      " + ln for ln in i.get("log_tail", "").splitlines(True))),
                        flush=True)
                    break
                print("  import %-8s rep %d.%d: %s; B holds %d flows; others' CPU %.2f%s" % (
                    name, rep, attempt, ", ".join("%s %.3f ms (installed %s)" % (
                        p["file"], p["wall"] * 1e3, p["installed"]) for p in i["puts"]),
                    i["flows_after"], i["foreign_cpu"],
                    " DISTURBED" if i["disturbed"] else ""), flush=True)
                if not i["disturbed"]:
                    break
        imports[name] = import_stats(imps, n, "import")
    if not args.keep_tmp:
        for fn in dumps.values():
            try:
                os.remove(fn)
            except OSError:
                pass
    return make_rows(n, ex, imports, run_id)


# ---------------------------------------------------------------- results

def vs(op, us):
    return round(OPENNF_US[op] / us, 1) if us and us > 0 else None


def _calls(st):
    """Keep every call's seconds when there are few, else a summary."""
    c = st.pop("calls", [])
    if c:
        st["calls_summary"] = {"n": len(c), "min": min(c), "max": max(c)}
        if len(c) <= 50:
            st["calls"] = c
    return st


def make_rows(n, ex, imports, run_id):
    pf = ex.get("scopes", {}).get("per-flow")
    exp = {"op": "export", "flows": n, "case": "nat", "scope": "per-flow", "run": run_id,
           "us_per_flow": None, "mb": None, "vs_openNF": None, "throughput_ratio": None}
    if pf:
        pf = _calls(dict(pf))
        exp.update({
            "us_per_flow": pf["us_per_flow"], "us_per_flow_raw": pf["us_per_flow_raw"],
            "mb": pf["mb"], "bytes_per_flow": pf["bytes_per_flow"],
            "vs_openNF": vs("export", pf["us_per_flow"]),
            "vs_openNF_raw": vs("export", pf["us_per_flow_raw"]),
            "throughput_ratio": pf.get("throughput_ratio"),
        })
        exp.update({k: v for k, v in pf.items() if k not in exp and k != "what"})
        exp.update({
            "mpps_without": ex.get("mpps_without"), "mpps_quiet": ex.get("mpps_quiet"),
            "baseline_s": ex["baseline_s"], "startup_s": ex.get("startup_s"),
            "scopes": {s: _calls(dict(ex["scopes"][s])) for s in SCOPES if s != "per-flow"},
            "windows": ex["windows"],
        })
        for st in exp["scopes"].values():
            st["vs_openNF"] = vs("export", st["us_per_flow"])
            st.pop("what", None)
    exp["timeline"] = ex.get("timeline", [])
    exp["peak_rss_mb"] = ex.get("peak_rss_mb")
    if ex.get("error"):
        exp["error"] = ex["error"]
    if ex.get("warning"):
        exp["warning"] = ex["warning"]
    imp = {"op": "import", "flows": n, "case": "nat", "scope": "per-flow", "run": run_id,
           "us_per_flow": None, "mb": exp["mb"], "vs_openNF": None}
    ip = imports.get("per-flow")
    if ip and "us_per_flow" in ip:
        imp.update({
            "us_per_flow": ip["us_per_flow"], "us_per_flow_raw": ip["us_per_flow_raw"],
            "bytes_per_flow": exp.get("bytes_per_flow"),
            "vs_openNF": vs("import", ip["us_per_flow"]),
            "vs_openNF_raw": vs("import", ip["us_per_flow_raw"]),
        })
        imp.update({k: v for k, v in ip.items() if k not in imp and k != "what"})
    imp["scopes"] = {}
    for name in ("all", "scopes"):
        st = imports.get(name)
        if st is None:
            continue
        st = dict(st)
        st.pop("what", None)
        if "us_per_flow" in st:
            st["vs_openNF"] = vs("import", st["us_per_flow"])
            if name == "all" and "all" in ex.get("scopes", {}):
                st["mb"] = ex["scopes"]["all"]["mb"]
                st["bytes_per_flow"] = ex["scopes"]["all"]["bytes_per_flow"]
        imp["scopes"]["all" if name == "all" else "separately"] = st
    errs = [v["error"] for v in [ip or {}] + list(imp["scopes"].values()) if v.get("error")]
    if ip is None and not ex.get("error"):
        errs.append("no per-flow import")
    if errs:
        imp["error"] = "; ".join(errs)
    return [exp, imp]


def f(v, fmt="%.3f"):
    return fmt % v if v is not None else "-"


def cpu_us(st):
    """client + server (main lcore) CPU us per flow, when both are known."""
    c, v = st.get("client_cpu_us_per_flow"), st.get("server_cpu_us_per_flow")
    return c + v if c is not None and v is not None else None


ROW_FMT = "%-7s %-10s %5s %9s %9s %8s %8s %7s %7s %6s  %s"


def print_table(rows):
    print(ROW_FMT % ("op", "scope", "flows", "us/flow", "us/flow", "CPU us/", "MB", "B/flow",
                     "vs", "tput", "note"))
    print(ROW_FMT % ("", "", "", "net", "raw", "flow", "", "", "OpenNF", "ratio", ""))
    print("-" * 96)
    for r in rows:
        n = dp.fmt_flows(r["flows"])
        notes = []
        if r.get("vs_openNF") is not None:
            notes.append("%dx target %s" % (TARGET_X, "met" if r["vs_openNF"] >= TARGET_X
                                             else "NOT met"))
        if r.get("all_disturbed"):
            notes.append("disturbed by other load")
        for k in ("error", "warning"):
            if r.get(k):
                notes.append(r[k])
        print(ROW_FMT % (
            r["op"], r.get("scope", ""), n, f(r.get("us_per_flow"), "%.3f"),
            f(r.get("us_per_flow_raw"), "%.3f"), f(cpu_us(r), "%.3f"), f(r.get("mb"), "%.3f"),
            f(r.get("bytes_per_flow"), "%.1f"), f(r.get("vs_openNF"), "%.0fx"),
            f(r.get("throughput_ratio"), "%.3f"), "; ".join(notes)))
        for s, st in sorted(r.get("scopes", {}).items()):
            if "us_per_flow" not in st:
                print(ROW_FMT % ("", s, n, "", "", "", "", "", "", "", st.get("error", "")))
                continue
            notes = []
            if st.get("per_put_s"):
                notes.append("puts " + ", ".join("%s %.1f ms" % (
                    k.split("-", 2)[-1].replace(".bin", ""), v * 1e3)
                    for k, v in st["per_put_s"].items()))
            if st.get("all_disturbed"):
                notes.append("disturbed by other load")
            if st.get("error"):
                notes.append(st["error"])
            print(ROW_FMT % (
                "", s, n, f(st["us_per_flow"], "%.3f"), f(st["us_per_flow_raw"], "%.3f"),
                f(cpu_us(st), "%.3f"), f(st.get("mb"), "%.3f"),
                f(st.get("bytes_per_flow"), "%.1f"), f(st.get("vs_openNF"), "%.0fx"),
                f(st.get("throughput_ratio"), "%.3f"), "; ".join(notes)))


def plot(rows, png, workdir):
    """Three panels: us per flow (log) vs flows with OpenNF and the 100x target;
    throughput ratio during exports; A's Mpps over time for the largest N."""
    rows = [r for r in rows if r.get("case", "nat") == "nat"]
    flows = sorted({r["flows"] for r in rows})
    if not flows:
        return False
    by = {(r["op"], r["flows"]): r for r in rows}
    dat = os.path.join(workdir, "state.dat")
    with open(dat, "w") as fh:
        fh.write("# flows export_us import_us export_all_us import_all_us "
                 "ratio_perflow ratio_all mb\n")
        for n in flows:
            e, i = by.get(("export", n), {}), by.get(("import", n), {})
            es, isc = e.get("scopes", {}), i.get("scopes", {})

            def pos(v):
                return f(v, "%.6f") if v is not None and v > 0 else "NaN"
            fh.write(" ".join([str(n), pos(e.get("us_per_flow")), pos(i.get("us_per_flow")),
                               pos(es.get("all", {}).get("us_per_flow")),
                               pos(isc.get("all", {}).get("us_per_flow")),
                               f(e.get("throughput_ratio"), "%.4f").replace("-", "NaN"),
                               f(es.get("all", {}).get("throughput_ratio"),
                                 "%.4f").replace("-", "NaN"),
                               f(e.get("mb"), "%.4f").replace("-", "NaN")]) + "\n")
    big = max((r for r in rows if r["op"] == "export" and r.get("timeline")),
              key=lambda r: r["flows"], default=None)
    tl = os.path.join(workdir, "state-timeline.dat")
    with open(tl, "w") as fh:
        fh.write("# t Mpps in_export(1 per-flow, 2 all)\n")
        for t, m, lab in (big or {}).get("timeline", []):
            fh.write("%.3f %.4f %d\n" % (t, m, 0 if not lab else
                                        (1 if lab.startswith("per-flow") else 2)))
    lo, hi = flows[0] / 2.0, flows[-1] * 2.0
    gp = [
        'set terminal pngcairo size 1400,500 font "DejaVu Sans,10" noenhanced',
        'set output "%s"' % png,
        'set multiplot layout 1,3 title "mbx state export/import, nat, one worker, --no-huge '
        '(mbxctl wall-clock net of an empty call)"',
        'set logscale x', 'set xrange [%g:%g]' % (lo, hi), 'set grid',
        'set xlabel "flows"', 'set format x "%.0s%c"',
        'set logscale y', 'set ylabel "us per flow"', 'set key bottom left',
        'set title "cost per flow; OpenNF 178/108 us, target 100x below"',
        'set yrange [0.01:1000]',
        'plot "%s" u 1:2 w lp pt 7 lw 2 t "export (per-flow)", '
        '"%s" u 1:3 w lp pt 5 lw 2 t "import (per-flow)", '
        '"%s" u 1:4 w lp pt 6 dt 2 t "export (all scopes)", '
        '"%s" u 1:5 w lp pt 4 dt 2 t "import (all scopes)", '
        '178 w l lc rgb "red" t "OpenNF export 178", 108 w l lc rgb "orange" t "OpenNF import 108", '
        '1.78 w l dt 3 lc rgb "red" t "target export 1.78", '
        '1.08 w l dt 3 lc rgb "orange" t "target import 1.08"' % (dat, dat, dat, dat),
        'unset logscale y', 'set yrange [0:1.2]', 'set ylabel "Mpps during / Mpps without"',
        'set title "A\'s throughput while exports run back to back"',
        'set key bottom left',
        'plot "%s" u 1:6 w lp pt 7 lw 2 t "per-flow export", '
        '"%s" u 1:7 w lp pt 6 dt 2 t "--scope all export", 1 w l lc rgb "gray" t ""' % (dat, dat),
        'unset logscale x', 'set xrange [*:*]', 'set yrange [0:*]', 'set format x "%g"',
        'set xlabel "seconds"', 'set ylabel "Mpps (port 1)"',
        'set title "A over time, %s flows (coloured: export windows)"' % (
            dp.fmt_flows(big["flows"]) if big else "-"),
        'set key below', 'set offsets 0,0,graph 0.05,0',
    ]
    if big and big.get("timeline"):
        gp.append('plot "%s" u 1:($3==1?$2:1/0) w impulses lw 3 lc rgb "#8080ff" '
                  't "in a per-flow export window", '
                  '"%s" u 1:($3==2?$2:1/0) w impulses lw 3 lc rgb "#60c060" '
                  't "in a --scope all export window", '
                  '"%s" u 1:2 w l lc rgb "black" lw 1 t "Mpps (0.1 s samples)"' % (tl, tl, tl))
    else:
        gp.append('set label "no timeline" at graph 0.5,0.5 center')
        gp.append('plot 1/0 t ""')
    gp.append("unset multiplot")
    gpf = os.path.join(workdir, "state.gp")
    with open(gpf, "w") as fh:
        fh.write("\n".join(gp) + "\n")
    r = subprocess.run(["gnuplot", gpf], capture_output=True, text=True)
    if r.returncode != 0:
        print("warning: gnuplot failed: %s" % r.stderr.strip())
        return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flows", default=None,
                    help="comma-separated flow counts (default 1000,100000,1000000)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 1000 flows, 1 s windows, output in results/tmp/quick")
    ap.add_argument("--seconds", type=float, default=None,
                    help="throughput windows without an export (default 3)")
    ap.add_argument("--window", type=float, default=None,
                    help="export back to back for at least this long (default 2)")
    ap.add_argument("--min-exports", type=int, default=2,
                    help="exports per window at least (default 2)")
    ap.add_argument("--baseline-calls", type=int, default=15,
                    help="`mbxctl info` calls for the empty-call baseline (default 15)")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds between a full table and the first window (default 1)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="export windows and imports per flow count; medians are reported")
    ap.add_argument("--client-cpu", type=int, default=0,
                    help="CPU for mbxctl (default 0, the main lcore's); -1 = unpinned")
    ap.add_argument("--out", default=None, help="directory for state.json and state.png")
    ap.add_argument("--retries", type=int, default=1,
                    help="measure a window or an import again (at most this often) when "
                         "other processes used more than %.1f CPU meanwhile (default 2)"
                         % DISTURBED_CPU)
    ap.add_argument("--mbxd", default=mbxrun.MBXD)
    ap.add_argument("--mbxctl", default=MBXCTL)
    ap.add_argument("--keep-tmp", action="store_true", help="keep pcaps and dumps")
    args = ap.parse_args()

    if args.flows:
        flow_counts = [int(x) for x in args.flows.split(",") if x]
    else:
        flow_counts = [1000] if args.quick else [1000, 100000, 1000000]
    if args.seconds is None:
        args.seconds = 1.0 if args.quick else 3.0
    if args.window is None:
        args.window = 1.0 if args.quick else 2.0
    if args.warmup is None:
        args.warmup = 0.3 if args.quick else 1.0
    if args.repeat < 1 or args.retries < 0:
        ap.error("--repeat must be >= 1 and --retries >= 0")
    if any(n < 1 or n > 4000000 for n in flow_counts):
        ap.error("flow counts must be in 1..4000000")
    out = args.out or (os.path.join(TMP, "quick") if args.quick else RESULTS)
    for exe in (args.mbxd, args.mbxctl):
        if not os.access(exe, os.X_OK):
            sys.exit("%s is missing (build it first)" % exe)
    if os.geteuid() != 0:
        print("warning: not root; DPDK runtime directories may not be writable")

    os.makedirs(TMP, exist_ok=True)
    os.makedirs(out, exist_ok=True)
    signal.signal(signal.SIGTERM, dp._on_signal)
    dp.remove_stale_runtime_dirs()
    run_id = datetime.datetime.now().isoformat(timespec="seconds")
    t_run = time.monotonic()
    sysmem = dp.SysMem()
    logdir = os.path.join(TMP, "state-logs-" + run_id.replace(":", ""))
    os.makedirs(logdir, exist_ok=True)
    args.work = tempfile.mkdtemp(prefix="state-work-", dir=TMP)
    binaries = snapshot_binaries(args)
    ARGS.mbxctl = args.mbxctl
    print("state benchmark %s: flows %s, %.1f s quiet windows, >= %.1f s export windows, "
          "repeat %d, mbxctl on CPU %s; load %s; logs in %s\nbinaries (copied): %s" % (
              run_id, ",".join(map(str, flow_counts)), args.seconds, args.window, args.repeat,
              args.client_cpu if args.client_cpu >= 0 else "any",
              " ".join(open("/proc/loadavg").read().split()[:3]),
              os.path.relpath(logdir, ROOT),
              ", ".join("%s of %s" % (k, v["mtime"]) for k, v in binaries.items())), flush=True)
    rows, peaks = [], []
    try:
        for n in flow_counts:
            rows += measure(n, args, logdir, sysmem, peaks, run_id)
            for r in rows[-2:]:
                r["binaries"] = binaries
    finally:
        dp.cleanup_all()
        if not args.keep_tmp:
            shutil.rmtree(args.work, ignore_errors=True)

    json_path = os.path.join(out, "state.json")
    merged = dp.merge_json(json_path, rows)
    png = os.path.join(out, "state.png")
    plotted = plot(merged, png, logdir)
    print()
    print_table(rows)
    print()
    print("vs_OpenNF = OpenNF us per flow (178 export, 108 import) / ours, net of an empty "
          "mbxctl call; target >= %.0fx. tput ratio = A's Mpps during back-to-back exports / "
          "without." % TARGET_X)
    for r in rows:
        if r["op"] == "export" and r.get("mpps_without") is not None:
            print("flows %s: A %.3f Mpps without an export (windows: %s)" % (
                dp.fmt_flows(r["flows"]), r["mpps_without"],
                ", ".join("%.3f" % w["mpps_before"] for w in r["windows"])))
    pk = max((p for p in peaks if p[1]), key=lambda p: p[1], default=("-", 0))
    ctl_rss = max([r.get("client_maxrss_mb") or 0 for r in rows] +
                  [s.get("client_maxrss_mb") or 0 for r in rows
                   for s in r.get("scopes", {}).values()])
    print("wrote %s%s; total %.0f s; peak memory: %s MB process RSS (mbxd %s), mbxctl %.0f MB, "
          "%.0f MB machine-wide" % (
              os.path.relpath(json_path, ROOT),
              " and " + os.path.relpath(png, ROOT) if plotted else "",
              time.monotonic() - t_run, pk[1], pk[0], ctl_rss, sysmem.peak_used_mb()))
    return 1 if any(r.get("error") for r in rows) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        dp.cleanup_all()
        print("state.py: interrupted (%s); processes stopped" % (e or "SIGINT"), file=sys.stderr)
        sys.exit(130)
