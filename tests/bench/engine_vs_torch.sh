#!/usr/bin/env bash
# lumen engine vs PyTorch on the same model, side by side in one run.
#   tests/bench/engine_vs_torch.sh [--size 300] [--batch 32] [--steps 5] [--threads 2]
# For each input channel count (1 and 3): runs `engine_bench` (runner bench)
# then tests/bench/torch_resnet_bench.py with the same settings, and prints
# both JSON lines and the ratios (engine / torch) for training and inference.
# Needs: make benches; python with torch (PYTHON, default .venv/bin/python (make torch-venv)
# when present, else python3).  Prints the load average: timings taken while
# other jobs run are noisy.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${LUMEN_BUILD:-$root/build}
PY=${PYTHON:-$( [ -x "$here/../../.venv/bin/python" ] && echo "$here/../../.venv/bin/python" || echo python3 )}
size=300 batch=32 steps=5 threads=2
while [ $# -gt 0 ]; do
    case "$1" in
    --size) size=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "usage: $0 [--size N] [--batch N] [--steps N] [--threads N]" >&2; exit 2 ;;
    esac
done
bench="$BUILD/bench/engine_bench"
[ -x "$bench" ] || { echo "missing $bench: run 'make benches' first" >&2; exit 2; }
field() { grep -oE "\"$2\": ?[0-9.]+" <<<"$1" | head -n1 | sed "s/.*: *//"; }
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)  cpus: $(nproc)"
for ch in 1 3; do
    e=$("$bench" --size "$size" --channels "$ch" --batch "$batch" --steps "$steps" \
        --warmup 1 --threads "$threads" --no-layers | tail -n1)
    t=$("$PY" "$here/torch_resnet_bench.py" --size "$size" --channels "$ch" --batch "$batch" \
        --steps "$steps" --warmup 1 --threads "$threads" 2>/dev/null | tail -n1)
    echo "engine[$ch ch]: $e"
    echo "torch [$ch ch]: $t"
    awk -v ch="$ch" -v et="$(field "$e" train_img_s)" -v tt="$(field "$t" train_img_s)" \
        -v ei="$(field "$e" infer_img_s)" -v ti="$(field "$t" infer_img_s)" \
        -v gf="$(field "$e" train_gflops)" 'BEGIN {
        printf "ratio[%s ch]: train %.2fx (%.2f vs %.2f img/s, engine %.1f GFLOP/s)  infer %.2fx (%.2f vs %.2f img/s)\n",
               ch, et / tt, et, tt, gf, ei / ti, ei, ti }'
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
