#!/usr/bin/python3
"""mbx demo: half of a NAT's flows move to another instance while traffic runs.

Five processes on this machine, linked by net_memif (tests/lib/topo.py):
mbxgen sends a few hundred UDP flows through steer to NAT instance A, and
checks every packet that comes back; mid-run the controller (mbxctld,
driven by mbxctl) moves half of the flows, with their NAT mappings, from A
to B. mbxgen's per-flow sequence numbers judge the move: with guarantee
loss-free and order-preserving nothing is lost, duplicated or reordered
and every flow keeps its mapping. The same run with guarantee none shows
what the guarantee is for.

    make demo        (or: /usr/bin/python3 tools/demo/move_demo.py [--flows N ...])

Leaves in demo-out/: move-lf-op.json and move-none.json (mbxgen's reports),
moves.json (the two move summaries) and timeline.png.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "lib"))
import mbxrun  # noqa: E402
import topo  # noqa: E402

OUT = os.path.join(mbxrun.ROOT, "demo-out")
HOSTS = 64
MOVED = "src=10.0.1.0/27"  # hosts 0-31 of 64: half the flows


def moved(flow):
    return int(flow["inside"]["src"].split(".")[3]) < 32


def run(guarantee, args, tmp):
    """One run: traffic, a move at --move-at seconds, mbxgen's report and the summary."""
    os.makedirs(tmp)
    with topo.Topology(tmp, nf="nat", workers=1) as t:
        t.start_gen(flows=args.flows, rate=args.rate, duration=args.duration, hosts=HOSTS)
        t0 = time.time()
        t.wait_flows("A", args.flows)
        time.sleep(max(0.0, args.move_at - (time.time() - t0)))
        print("  moving %s from A to B, guarantee %s:" % (MOVED, guarantee))
        rc, summary, err = t.move(MOVED, guarantee)
        for line in err.strip().splitlines():
            print("    " + line)
        if rc != 0:
            raise SystemExit("demo: the move failed")
        report = t.gen_report()
    return report, summary


def verdict(report, summary):
    groups = {"moved": [f for f in report["flows"] if moved(f)],
              "stayed": [f for f in report["flows"] if not moved(f)]}
    for name, flows in groups.items():
        tot = {k: sum(f[k] for f in flows) for k in ("sent", "received", "lost", "duplicated",
                                                     "reordered")}
        same = sum(1 for f in flows if f["rewrite_changes"] == 0 and f["rewrite"] == f["rewrite_last"])
        print("  %-6s %3d flows: sent %6d received %6d lost %4d duplicated %d reordered %d, "
              "NAT mapping unchanged for %d/%d" % (name, len(flows), tot["sent"],
                                                    tot["received"], tot["lost"],
                                                    tot["duplicated"], tot["reordered"], same,
                                                    len(flows)))
    print("  move: %d flows, %d B of state; connect %.2f ms, state %.2f ms, marker %.2f ms, "
          "end %.2f ms, total %.2f ms; %d packets redirected, %d held at B, %d dropped; "
          "%d through the controller" % (
              summary["flows"], summary["state_bytes"], summary["connect_ms"],
              summary["state_ms"], summary["marker_ms"], summary["end_ms"],
              summary["total_ms"], summary["redirected"], summary["buffered"],
              summary["dropped"], summary["via_controller"]))
    lat = report["latency_us"]
    print("  latency us: p50 %d p99 %d p99.9 %d max %d" % (lat["p50"], lat["p99"], lat["p999"],
                                                          lat["max"]))


def plot(runs, path, work):
    """timeline.png: throughput over the whole run, and each move's neighbourhood by ms."""
    if shutil.which("gnuplot") is None:
        print("demo: gnuplot is missing (apt-get install gnuplot-nox): no timeline.png")
        return
    script = ["set terminal pngcairo size 1400,900 font ',10'", "set output '%s'" % path,
              "set multiplot layout 2,2 title 'mbx: 50% of the flows move from NAT A to B "
              "mid-run (mbxgen timeline)'",
              "set grid", "set key top left"]
    for i, (name, (report, summary)) in enumerate(runs.items()):
        start = (summary["start_unix_us"] - report["start_unix_us"]) / 1000.0
        end = start + summary["total_ms"]
        tl = report["timeline"]
        coarse, fine = os.path.join(work, "c%d.dat" % i), os.path.join(work, "f%d.dat" % i)
        with open(coarse, "w") as f:
            for j in range(0, len(tl), 10):
                b = tl[j:j + 10]
                f.write("%g %g %g %d\n" % (b[0]["t_ms"] / 1000.0,
                                           sum(x["received"] for x in b) * 100 / 1000.0,
                                           max(x["latency_max_us"] for x in b),
                                           sum(x["lost"] for x in b)))
        with open(fine, "w") as f:
            for x in tl:
                if start - 30 <= x["t_ms"] <= end + 30:
                    f.write("%g %d %d %g\n" % (x["t_ms"] - start, x["received"], x["lost"],
                                               x["latency_max_us"]))
        runs[name] = (report, summary, coarse, fine, start, end)
    script += ["set title 'whole run, by send time: received (kpps) and lost (packets) per "
               "10 ms; the move is marked'",
               "set xlabel 'seconds'", "set ylabel 'kpps, packets'", "set yrange [0:*]"]
    plots = []
    for i, (name, (_, _, coarse, _, start, _)) in enumerate(runs.items()):
        script.append("set arrow %d from %g, graph 0 to %g, graph 1 nohead dt 2 lc %d" % (
            i + 1, start / 1000.0, start / 1000.0, i + 1))
        plots.append("'%s' using 1:2 with lines lc %d title 'guarantee %s'" % (coarse, i + 1,
                                                                              name))
        plots.append("'%s' using 1:4 with impulses lw 3 lc %d title 'lost (%s)'" % (
            coarse, i + 1, name))
    script.append("plot " + ", ".join(plots))
    script.append("unset arrow")
    script += ["set title 'whole run: worst latency per 10 ms (us)'", "set ylabel 'us'",
               "set logscale y"]
    script.append("plot " + ", ".join("'%s' using 1:3 with lines lc %d title 'guarantee %s'" % (
        r[2], i + 1, name) for i, (name, r) in enumerate(runs.items())))
    script.append("unset logscale y")
    for i, (name, (_, summary, _, fine, _, _)) in enumerate(runs.items()):
        script += ["set title 'guarantee %s: the move (%.1f ms, shaded), per ms'" % (
            name, summary["total_ms"]),
            "set xlabel 'ms from the start of the move'", "set ylabel 'packets per ms'",
            "set y2label 'worst latency (us)'", "set y2tics", "set ytics nomirror",
            "set object 1 rect from 0, graph 0 to %g, graph 1 fc rgb '#dddddd' behind" %
            summary["total_ms"],
            "plot '%s' using 1:2 with steps lc 2 title 'received', '%s' using 1:3 with "
            "impulses lw 3 lc 7 title 'lost', '%s' using 1:4 axes x1y2 with lines lc 3 "
            "title 'latency'" % (fine, fine, fine),
            "unset object 1", "unset y2tics", "unset y2label"]
    script.append("unset multiplot")
    gp = os.path.join(work, "timeline.gp")
    with open(gp, "w") as f:
        f.write("\n".join(script) + "\n")
    subprocess.run(["gnuplot", gp], check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flows", type=int, default=256, help="flows (default 256; half move)")
    ap.add_argument("--rate", type=int, default=20000, help="packets per second in total")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds of traffic")
    ap.add_argument("--move-at", type=float, default=2.5, help="seconds into the run")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    work = tempfile.mkdtemp(prefix="mbx-demo-")
    runs = {}
    for guarantee, name in (("lf,op", "lf-op"), ("none", "none")):
        print("\n== %d UDP flows at %d pps through steer and NAT A; guarantee %s" % (
            args.flows, args.rate, guarantee))
        report, summary = run(guarantee, args, os.path.join(work, name))
        with open(os.path.join(OUT, "move-%s.json" % name), "w") as f:
            json.dump(report, f)
        print("\nmbxgen's verdict (%s):" % topo.verdict(report))
        verdict(report, summary)
        runs[guarantee] = (report, summary)
    with open(os.path.join(OUT, "moves.json"), "w") as f:
        json.dump({g: s for g, (_, s) in runs.items()}, f, indent=1)
    plot(runs, os.path.join(OUT, "timeline.png"), work)
    shutil.rmtree(work, ignore_errors=True)
    print("\nwritten: demo-out/move-lf-op.json, demo-out/move-none.json, demo-out/moves.json, "
          "demo-out/timeline.png")


if __name__ == "__main__":
    main()
