#!/usr/bin/env python3
"""Plot a bench_ring --json result in two figures (matplotlib, PNG or SVG by
the output file's extension):

  OUT        what a user compares: one panel per workload family, each
             implementation's speed relative to libringmpsc (1.0 = ours,
             higher is faster), ours first and outlined, each peer in its
             normal (inlined) build, one colour per implementation in every
             panel; W5 (ours only) in absolute ns.
  DIAG       the diagnostics: the "-call" builds next to their inlined ones
             (call depth), our variant builds (wake-up and metrics A/B) and
             W7's adaptive skip.

    python3 bench/plot.py results.json performance.png [diagnostics.png]

DIAG defaults to OUT with "-diagnostics" before the extension.
"""
import json
import os
import sys

OURS = "ringmpsc"
# One colour per implementation, the same in every panel and both figures.
COLOURS = {
    OURS: "#c62828",
    "boost": "#1f77b4",
    "dpdk": "#ff7f0e",
    "ck": "#2ca02c",
    "urcu": "#9467bd",
    "rwq": "#8c564b",
    "mccq": "#e377c2",
    "mutex": "#7f7f7f",
}
SPARE = ["#17becf", "#bcbd22", "#393b79", "#637939"]
# Our variant builds: shades of ours, told apart by hatch as well.
VARIANTS = {
    "ringmpsc-poll": ("#e57373", "xx"),
    "ringmpsc-metrics": ("#8e0000", "\\\\"),
    "ringmpsc-nometrics": ("#ffcdd2", ".."),
}

# The main figure's panels: title, and its groups as (workload, paths). A
# group of several paths is the same job through different APIs (W2 copy
# or zero-copy, W6 single items or batches): each implementation is drawn
# at its best of them, hatched when that was the second path. W8's burst
# rows are groups of their own: single items against other queues' single
# items is the comparison the SPMC/MPMC rows are for, and the bursts run
# on fewer peers.
PANELS = [
    ("SPSC ring: throughput", [("W1", ["single"]), ("W2", ["copy", "zero-copy"])]),
    ("SPSC ring: ping-pong round trip", [("W4", ["p50"]), ("W4", ["p99"]), ("W4", ["min"])]),
    ("MPSC channel, 2 producers", [("W3", ["pinned"]), ("W3", ["unpinned"])]),
    ("MPSC channel: 1 to 8 producers", [
        ("W6", ["%dp-single" % n, "%dp-batch" % n]) for n in (1, 2, 4, 8)]),
    ("SPMC and MPMC", [("W8", [p]) for p in (
        "spmc-1x4", "spmc-1x8", "mpmc-4x4", "spmc-1x4-burst", "mpmc-4x4-bulk")]),
]
GROUP_LABELS = {
    ("W2", "copy"): "W2 batches",
    ("W6", "1p-single"): "W6 1 prod.", ("W6", "2p-single"): "W6 2 prod.",
    ("W6", "4p-single"): "W6 4 prod.", ("W6", "8p-single"): "W6 8 prod.",
}
SECOND_PATH = {"W2": "zero-copy", "W6": "batch"}


def load(path):
    with open(path) as f:
        doc = json.load(f)
    recs = {}
    for rec in doc["records"]:
        recs[(rec["workload"], rec["path"], rec["impl"])] = rec
    return doc, recs


def speed(rec, value):
    """A figure as speed, higher is better: ns are inverted."""
    return 1.0 / value if rec["unit"] == "ns" else value


def is_peer(rec):
    return rec["impl"] != OURS and not rec.get("variant_of") and rec["impl"] != "machine"


def colour(impl, order):
    if impl in COLOURS:
        return COLOURS[impl]
    return SPARE[order.index(impl) % len(SPARE)]


def short(v):
    return "%.0f" % v if v >= 100 else "%.1f" % v if v >= 10 else "%.2f" % v


def best_of(recs, wl, paths, impl):
    """The record of @impl's best path among @paths, and its index."""
    best = None
    for i, p in enumerate(paths):
        rec = recs.get((wl, p, impl))
        if rec and rec["median"] > 0 and (
                best is None or speed(rec, rec["median"]) > speed(best[0], best[0]["median"])):
            best = (rec, i)
    return best


def rel_bar(rec, base):
    """(median, lo, hi) of @rec's speed relative to @base (ours' record)."""
    b = speed(base, base["median"])
    a, c = speed(rec, rec["min"]) / b, speed(rec, rec["max"]) / b
    return speed(rec, rec["median"]) / b, min(a, c), max(a, c)


def ns_label(y, _pos=None):
    """1000 -> "1 us": a tick label for nanoseconds."""
    for div, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "\u00b5s")):
        if y >= div:
            return "%g %s" % (y / div, unit)
    return "%g ns" % y


def draw_groups(ax, groups, order, log=True, ylabel=None, ns=False):
    """Bars per group: groups is [(label, [(impl, (v, lo, hi), style)])]
    with style (colour, hatch, ours)."""
    import matplotlib.ticker as mticker
    x0 = 0.0
    ticks, labels, lows, highs = [], [], [], []
    for label, bars in groups:
        n = len(bars)
        for j, (impl, (v, lo, hi), (col, hatch, ours)) in enumerate(bars):
            x = x0 + j
            ax.bar(x, v, width=0.85, color=col, hatch=hatch,
                   edgecolor="black" if ours else "white",
                   linewidth=1.6 if ours else 0.4, zorder=3)
            ax.plot([x, x], [lo, hi], color="#333333", linewidth=0.7, zorder=4)
            lows.append(min(v, lo))
            highs.append(max(v, hi))
        ticks.append(x0 + (n - 1) / 2.0)
        labels.append(label)
        x0 += n + 1.2
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, fontsize=8.5)
    ax.set_xlim(-1.0, x0 - 1.2)
    ax.tick_params(axis="x", length=0)
    if log and lows:
        ax.set_yscale("log")
        lo = max(min(lows) / 1.6, 1e-4)
        ax.set_ylim(lo, max(highs) * 1.6)
        ax.yaxis.set_major_formatter(mticker.FuncFormatter(
            ns_label if ns else lambda y, _: ("%g" % y) if y >= 0.01 else ("%.0e" % y)))
    elif highs:
        ax.set_ylim(0, max(highs) * 1.08)
    ax.grid(axis="y", which="major", color="#dddddd", linewidth=0.8, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=8.5)
    ax.tick_params(axis="y", labelsize=8)


def hatch_patch(label):
    import matplotlib.patches as mpatches
    return mpatches.Patch(facecolor="white", hatch="///", edgecolor="#555555", label=label)


def legend_for(fig, impls, order, extra=(), ncol=None, y=0.005):
    import matplotlib.patches as mpatches
    handles = []
    for impl in impls:
        if impl in VARIANTS:
            col, hatch = VARIANTS[impl]
            handles.append(mpatches.Patch(facecolor=col, hatch=hatch, edgecolor="white",
                                          label=impl))
        else:
            handles.append(mpatches.Patch(
                facecolor=colour(impl, order), edgecolor="black" if impl == OURS else "white",
                linewidth=1.6 if impl == OURS else 0.4,
                label=impl + " (ours)" if impl == OURS else impl))
    handles += list(extra)
    leg = fig.legend(handles=handles, loc="lower center", ncol=ncol or len(handles),
                     fontsize=9, frameon=False, bbox_to_anchor=(0.5, y),
                     handlelength=1.6, columnspacing=1.4)
    for text in leg.get_texts():
        if text.get_text().startswith(OURS + " (ours)"):
            text.set_fontweight("bold")
    return leg


def subtitle(doc):
    m = doc.get("machine", {})
    return "%s, %s CPUs, %s; cache-line round trip %.0f ns; %s mode, medians of %s " \
           "repetitions, whiskers min..max" % (
               m.get("cpu_model", "?"), m.get("nproc", "?"), m.get("date", "?")[:10],
               m.get("cacheline_rt_ns", 0) or 0, doc.get("mode", "?"),
               doc.get("reps_per_case", "?"))


def panel_width(groups):
    """A panel's share of its row: its bars and the gaps between groups."""
    return max(sum(len(bars) for _, bars in groups) + 1.2 * len(groups), 11)


def layout(fig, rows, top_in, bottom_in, height_in):
    """Axes for rows of panels, each row [(width, ...)], widths by content."""
    total = height_in * len(rows) + top_in + bottom_in
    outer = fig.add_gridspec(len(rows), 1, hspace=0.42, top=1 - top_in / total,
                             bottom=bottom_in / total, left=0.05, right=0.99)
    axes = []
    for r, row in enumerate(rows):
        inner = outer[r].subgridspec(1, len(row), width_ratios=[w for w, _ in row],
                                     wspace=0.18)
        axes += [(fig.add_subplot(inner[0, c]), item) for c, (_, item) in enumerate(row)]
    return axes


def main_figure(doc, recs, out):
    import matplotlib.pyplot as plt
    peers = []
    for rec in doc["records"]:
        if is_peer(rec) and rec["impl"] not in peers:
            peers.append(rec["impl"])
    order = [OURS] + peers
    panels = []
    for title, spec in PANELS:
        groups = []
        for wl, paths in spec:
            base = best_of(recs, wl, paths, OURS)
            if not base:
                continue
            base_rec = base[0]
            bars = []
            for impl in order:
                got = best_of(recs, wl, paths, impl)
                if not got:
                    continue
                rec, i = got
                bars.append((impl, rel_bar(rec, base_rec),
                             (colour(impl, order), "///" if i else None, impl == OURS)))
            if len(bars) < 2:
                continue
            name = GROUP_LABELS.get((wl, paths[0]), "%s %s" % (wl, paths[0]))
            label = "%s\nours %s %s" % (name, short(base_rec["median"]), base_rec["unit"])
            if len(paths) > 1:
                label += "\n(%s)" % (SECOND_PATH[wl] if base[1] else paths[0].split("-")[-1])
            groups.append((label, bars))
        if groups:
            panels.append(("rel", title, groups))
    if not panels:
        return None
    wake = []
    for kind in ("spin", "futex", "epoll"):
        bars = []
        for stat, hatch in (("p50", None), ("p99", "///")):
            rec = recs.get(("W5", "%s-%s" % (kind, stat), OURS))
            if rec:
                bars.append((OURS, (rec["median"], rec["min"], rec["max"]),
                             (COLOURS[OURS], hatch, True)))
        if bars:
            wake.append(("W5 %s" % kind, bars))
    if wake:
        panels.append(("ns", "W5 wake-up, ours only (p99 hatched)", wake))
    rows = [panels[:3], panels[3:]] if len(panels) > 3 else [panels]
    rows = [[(panel_width(p[2]), p) for p in row] for row in rows if row]
    height = 4.4
    fig = plt.figure(figsize=(17, height * len(rows) + 1.5))
    for ax, (kind, title, groups) in layout(fig, rows, 1.1, 1.0, height):
        if kind == "ns":
            draw_groups(ax, groups, order, ylabel="latency (log), lower is faster", ns=True)
        else:
            draw_groups(ax, groups, order, ylabel="speed / ringmpsc (log)")
            ax.axhline(1.0, color=COLOURS[OURS], linewidth=1.0, linestyle="--", zorder=2)
        ax.set_title(title, fontsize=11, loc="left")
    fig.suptitle("bench_ring: each implementation's speed relative to libringmpsc "
                 "(1.0 = ringmpsc, dashed; higher is faster)", fontsize=14, x=0.05,
                 ha="left", y=0.995)
    fig.text(0.05, 1 - 0.55 / (height * len(rows) + 1.5),
             subtitle(doc) + "; under each group ringmpsc's own median. Peers in their "
             "normal (inlined) builds; W2 and W6 each at its best API path.",
             fontsize=9, color="#444444")
    hatched = any(style[1] for kind, _, groups in panels if kind == "rel"
                  for _, bars in groups for _, _, style in bars)
    legend_for(fig, order, order, extra=[hatch_patch(
        "hatched: zero-copy (W2) / batch (W6) was the best")] if hatched else ())
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return len(panels), len(order)


def diag_figure(doc, recs, out):
    import matplotlib.pyplot as plt
    calls = []
    for rec in doc["records"]:
        if rec.get("call_variant") and rec["variant_of"] not in calls:
            calls.append(rec["variant_of"])
    variants = [v for v in VARIANTS if any(r["impl"] == v for r in doc["records"])]
    peers = [r["impl"] for r in doc["records"] if is_peer(r)]
    order = [OURS] + list(dict.fromkeys(peers))
    rows = []
    # Call depth: each peer inlined (solid) and behind one call (hatched).
    groups = []
    for wl, path in (("W1", "single"), ("W4", "p50"), ("W4", "min")):
        base = recs.get((wl, path, OURS))
        if not base or not calls:
            continue
        bars = [(OURS, rel_bar(base, base), (COLOURS[OURS], None, True))]
        for peer in calls:
            for impl, hatch in ((peer, None), (peer + "-call", "///")):
                rec = recs.get((wl, path, impl))
                if rec and rec["median"] > 0:
                    bars.append((impl, rel_bar(rec, base), (colour(peer, order), hatch, False)))
        groups.append(("%s %s\nours %s %s" % (wl, path, short(base["median"]), base["unit"]),
                       bars))
    if groups:
        rows.append([(1, ("log", "Call depth: each peer inlined (solid) and behind one "
                          "non-inlined call (hatched, \"<peer>-call\")", groups))])
    # Our builds: ringmpsc against each variant, per row the variant ran.
    groups = []
    seen = []
    for rec in doc["records"]:
        if rec["impl"] in variants and (rec["workload"], rec["path"]) not in seen:
            seen.append((rec["workload"], rec["path"]))
    for wl, path in seen:
        base = recs.get((wl, path, OURS))
        if not base:
            continue
        bars = [(OURS, rel_bar(base, base), (COLOURS[OURS], None, True))]
        for v in variants:
            rec = recs.get((wl, path, v))
            if rec and rec["median"] > 0:
                col, hatch = VARIANTS[v]
                bars.append((v, rel_bar(rec, base), (col, hatch, False)))
        if len(bars) > 1:
            groups.append(("%s\n%s" % (wl, path.replace("-", " ")), bars))
    row = []
    if groups:
        row.append((panel_width(groups), (
            "lin", "Our builds: ringmpsc against ringmpsc-poll (no wake-up checks), "
            "-metrics (metrics on), -nometrics (compiled out)", groups)))
    skip = []
    for p in ("skip", "noskip"):
        rec = recs.get(("W7", p, OURS))
        if rec:
            polls = rec.get("polls_per_msg", {}).get("median")
            skip.append(("%s\n%s polls/msg" % (p, "%.2f" % polls if polls else "?"),
                         [(OURS, (rec["median"], rec["min"], rec["max"]),
                           (COLOURS[OURS], None if p == "skip" else "///", True))]))
    if skip:
        row.append((8, ("mmsg", "W7 skip on / off (ours)", skip)))
    if row:
        rows.append(row)
    if not rows:
        return None
    height = 4.4
    fig = plt.figure(figsize=(17, height * len(rows) + 1.5))
    for ax, (kind, title, groups) in layout(fig, rows, 1.1, 1.0, height):
        if kind == "mmsg":
            draw_groups(ax, groups, order, log=False, ylabel="Mmsg/s")
        else:
            draw_groups(ax, groups, order, log=kind == "log", ylabel="speed / ringmpsc" +
                        (" (log)" if kind == "log" else ""))
            ax.axhline(1.0, color=COLOURS[OURS], linewidth=1.0, linestyle="--", zorder=2)
        ax.set_title(title, fontsize=11, loc="left")
    fig.suptitle("bench_ring diagnostics: call depth, our own builds, adaptive skip",
                 fontsize=14, x=0.05, ha="left", y=0.995)
    fig.text(0.05, 1 - 0.55 / (height * len(rows) + 1.5), subtitle(doc) +
             "; relative to ringmpsc's median of the same row (dashed 1.0)",
             fontsize=9, color="#444444")
    legend_for(fig, [OURS] + calls + variants, order,
               extra=[hatch_patch("hatched: <peer>-call (top); W7 noskip")] if calls else ())
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return sum(len(r) for r in rows)


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src, dst = argv[1], argv[2]
    root, ext = os.path.splitext(dst)
    diag = argv[3] if len(argv) == 4 else root + "-diagnostics" + ext
    try:
        import matplotlib
        matplotlib.use("Agg")
    except ImportError:
        print("plot.py: matplotlib is not installed for %s (apt-get install "
              "python3-matplotlib, then run it with /usr/bin/python3)" % sys.executable,
              file=sys.stderr)
        return 1
    doc, recs = load(src)
    got = main_figure(doc, recs, dst)
    if not got:
        print("plot.py: no workload has ours and a peer", file=sys.stderr)
        return 1
    print("wrote %s (%d panels, %d implementations)" % (dst, got[0], got[1]))
    n = diag_figure(doc, recs, diag)
    if n:
        print("wrote %s (%d panels)" % (diag, n))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
