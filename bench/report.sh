#!/bin/sh
# bench/report.sh [OUTDIR]: the full benchmark as docs/performance.md reports
# it. Installs the peers' Debian packages if missing, builds a Release tree in
# build-bench/, runs bench_ring (full mode) writing OUTDIR/bench.json and the
# table OUTDIR/bench.txt, and plots OUTDIR/performance.png.
set -eu
cd "$(dirname "$0")/.."
out=${1:-docs}
mkdir -p "$out"
sh .ci/install-deps bench
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DRMPSC_BUILD_TESTS=OFF >/dev/null
cmake --build build-bench -j --target bench_ring
build-bench/bench/bench_ring --json "$out/bench.json" | tee "$out/bench.txt"
python3 bench/plot.py "$out/bench.json" "$out/performance.png"
