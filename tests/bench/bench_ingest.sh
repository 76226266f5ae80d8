#!/usr/bin/env bash
# Times ingest of every ELPV image in labels.csv (2,324 PNGs) at 300x300 into
# LMDB, then normalize-stats on the result, with the bench_ingest driver
# (which calls the stage cores directly; no runner needed).
#   tests/bench/bench_ingest.sh [bench_ingest options, e.g. --threads 1 --repeat 5]
# The machine is shared: the load average is printed before and after so a
# noisy number can be recognised.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${LUMEN_BUILD:-build}
export LUMEN_DATA=${LUMEN_DATA:-$(cd ../shared/data/elpv 2>/dev/null && pwd)}
make --no-print-directory -j2 "$BUILD/bench/bench_ingest" >/dev/null
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BUILD/bench/bench_ingest" "$@"
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
