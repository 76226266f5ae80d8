#!/usr/bin/env bash
# Engine benchmarks (run by `make bench`): runner bench on the default model
# (per-layer table + JSON line), the machine's FMA peak, then the side-by-side
# comparison with PyTorch when torch is importable.
set -u
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${LUMEN_BUILD:-$(cd "$here/../.." && pwd)/build}
"$BUILD/bench/fma_peak"
"$BUILD/bench/engine_bench" --steps 5 --warmup 1 || exit 1
PY=${PYTHON:-$( [ -x "$here/../../.venv/bin/python" ] && echo "$here/../../.venv/bin/python" || echo python3 )}
if "$PY" -c 'import torch' 2>/dev/null; then
    "$here/engine_vs_torch.sh" --steps 5
else
    echo "engine_vs_torch: skipped (no torch for $PY)"
fi
