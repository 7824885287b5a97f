#!/bin/sh
# bench/report.sh [OUTDIR]: the full benchmark as docs/performance.md reports
# it. Installs the peers' Debian packages if missing, builds a Release tree in
# build-bench/, runs bench_ring (full mode) writing OUTDIR/bench.json and the
# table OUTDIR/bench.txt, and plots OUTDIR/performance.png (ours against each
# peer, per workload family) and OUTDIR/performance-diagnostics.png (call
# depth, our variant builds, adaptive skip) with matplotlib.
set -eu
cd "$(dirname "$0")/.."
out=${1:-docs}
mkdir -p "$out"
sh .ci/install-deps bench
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DRMPSC_BUILD_TESTS=OFF >/dev/null
cmake --build build-bench -j --target bench_ring
build-bench/bench/bench_ring --json "$out/bench.json" | tee "$out/bench.txt"
# Debian's python3-matplotlib is for the system interpreter; a python3 earlier
# on PATH (a virtualenv, pyenv) may not have it.
py=python3
"$py" -c 'import matplotlib' 2>/dev/null || py=/usr/bin/python3
"$py" bench/plot.py "$out/bench.json" "$out/performance.png" \
	"$out/performance-diagnostics.png"
