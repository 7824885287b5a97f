#!/usr/bin/env python3
"""Plot a bench_ring --json result: every implementation's speed relative to
libringmpsc per workload (1.0 = ours, higher = faster), with the min..max of
the kept repetitions as error bars. Renders through gnuplot (Debian's
gnuplot-nox): PNG or SVG by the output file's extension.

    python3 bench/plot.py results.json performance.png
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

OURS = "ringmpsc"


def speed(rec, value):
    """Turn a figure into 'speed' (higher is better) for ratios."""
    return 1.0 / value if rec["unit"] == "ns" else value


def rows(doc):
    """(label, {impl: (ratio, lo, hi)}) for each workload/path ours ran."""
    groups = {}
    order = []
    for rec in doc["records"]:
        if rec["workload"] == "LIM" or rec["unit"] == "Mmsg/s" and rec["workload"] == "W2":
            continue  # W2 is plotted in GB/s; its Mmsg/s twin would repeat it
        if rec["path"] == "p50-step":
            continue  # W4's p50 in whole timer steps: the p50 row, coarser
        key = (rec["workload"], rec["path"])
        if key not in groups:
            groups[key] = {}
            order.append(key)
        groups[key][rec["impl"]] = rec
    out = []
    for key in order:
        recs = groups[key]
        ours = recs.get(OURS)
        if not ours or len(recs) < 2:
            continue
        base = speed(ours, ours["median"])
        vals = {}
        for impl, rec in recs.items():
            a, b = speed(rec, rec["min"]) / base, speed(rec, rec["max"]) / base
            vals[impl] = (speed(rec, rec["median"]) / base, min(a, b), max(a, b))
        out.append(("%s %s" % key, vals))
    return out


def esc(text):
    """Escape gnuplot's enhanced-text markup characters."""
    for ch in "_^@&~{}":
        text = text.replace(ch, "\\\\" + ch)
    return text


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src, dst = argv[1], argv[2]
    if not shutil.which("gnuplot"):
        print("plot.py: gnuplot is not installed (apt-get install gnuplot-nox)",
              file=sys.stderr)
        return 1
    with open(src) as f:
        doc = json.load(f)
    data = rows(doc)
    if not data:
        print("plot.py: no workload has ours and a peer", file=sys.stderr)
        return 1
    impls = [OURS] + sorted({i for _, v in data for i in v} - {OURS})
    m = doc.get("machine", {})
    title = "bench_ring %s: speed relative to libringmpsc (1.0 = ours, higher is faster)" % (
        doc.get("mode", ""))
    sub = "%s, %s CPUs, %s; cache-line RT %.0f ns; medians of %s reps, bars min..max" % (
        m.get("cpu_model", "?"), m.get("nproc", "?"), m.get("date", "?"),
        m.get("cacheline_rt_ns", 0), doc.get("reps_per_case", "?"))
    term = "svg size 1200,560 dynamic font 'sans,11'" if dst.endswith(".svg") else \
        "pngcairo size 1400,640 font 'sans,10'"
    if not dst.endswith(".svg") and subprocess.run(
            ["gnuplot", "-e", "set terminal pngcairo"], capture_output=True).returncode:
        term = "png size 1400,640"
    with tempfile.TemporaryDirectory() as tmp:
        dat = os.path.join(tmp, "plot.dat")
        with open(dat, "w") as f:
            for label, vals in data:
                cols = []
                for impl in impls:
                    v = vals.get(impl)
                    cols += ["%.5g %.5g %.5g" % v if v else "NaN NaN NaN"]
                f.write('"%s" %s\n' % (label, " ".join(cols)))
        plots = []
        for i, impl in enumerate(impls):
            c = 2 + 3 * i
            plots.append("'%s' using %d:%d:%d:xtic(1) title '%s'" % (dat, c, c + 1, c + 2, impl))
        script = "\n".join([
            "set terminal %s" % term,
            "set output '%s'" % dst,
            "set title \"%s\\n{/*0.8 %s}\"" % (esc(title), esc(sub)),
            "set style data histogram",
            "set style histogram errorbars gap 2 lw 1",
            "set style fill solid 0.8 border -1",
            "set logscale y 2",
            "set format y '%.2g'",
            "set ylabel 'speed / libringmpsc (log scale)'",
            "set grid ytics",
            "set key outside right top",
            "set xtics rotate by -20",
            "set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2",
            "plot " + ", \\\n     ".join(plots),
        ])
        res = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
        if res.returncode:
            sys.stderr.write(res.stderr)
            return 1
    print("wrote %s (%d workloads, %d implementations)" % (dst, len(data), len(impls)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
