#!/usr/bin/env bash
# `make bench` on a machine with a usable GPU: runner bench --backend cuda
# against PyTorch on the GPU (tests/gpu/device-check.sh bench: default and
# baseline model, 300x300, 1 and 3 channels, batch 64 and 128, tf32 and
# bf16, ratios).  Elsewhere it says why it skips and succeeds.
set -u
cd "$(dirname "$0")/../.."
BUILD=${LUMEN_BUILD:-build}
if ! why=$("$BUILD/runner" bench --backend cuda --size 32 --batch 1 --steps 1 --warmup 0 --no-layers \
    --set model.widths=8,8,8,8 --set model.stem_width=8 2>&1 >/dev/null); then
    echo "bench_cuda: skipped: $(echo "$why" | tail -1)"
    exit 0
fi
RUNNER="$BUILD/runner" PY=${LUMEN_TORCH_PYTHON:-python3} exec tests/gpu/device-check.sh bench
