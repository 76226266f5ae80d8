#!/usr/bin/env bash
# Augmentation kernel and batch loader throughput (img/s) on the ELPV dataset
# at 300x300, with the bench_loader driver.  The dataset is ingested once into
# /tmp/lumen-bench-elpv-300 (or $LUMEN_BENCH_DATASET) and reused.
#   tests/bench/bench_loader.sh [dataset-dir]
# The machine is shared: the load average is printed before and after so a
# noisy number can be recognised.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${LUMEN_BUILD:-build}
export LUMEN_DATA=${LUMEN_DATA:-$(cd ../shared/data/elpv 2>/dev/null && pwd)}
make --no-print-directory -j2 "$BUILD/bench/bench_loader" >/dev/null
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BUILD/bench/bench_loader" "$@"
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
