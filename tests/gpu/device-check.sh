#!/usr/bin/env bash
# device-check.sh -- the cuda backend's checks on a lent GPU machine.
#
# The GPU machine has nvcc 13 and PyTorch (with cuDNN 9 and cuBLAS 13 in its
# Python's nvidia/* wheels) but none of lumen's Debian libraries (Lua,
# LMDB, oneDNN, cmocka, ...) and no network.  So the build happens HERE and
# the binaries travel:
#
#   tests/gpu/device-check.sh pack     (this machine, after `make -j2 tests`)
#       copies the GPU test binaries, build/runner and every shared library
#       they need that is not glibc/libstdc++ or CUDA into .gpu/ (in
#       .gitignore; must stay under the 64 MiB a call carries)
#   device run: command  "bash tests/gpu/device-check.sh run", carry [".gpu"]
#       finds libcudnn.so.9 / libcublas.so.13 (CUDA_HOME/lib64 or the
#       Python's nvidia/*/lib), runs `make test-gpu`'s binaries through
#       tests/run.sh, then the benchmark (runner bench --backend cuda against
#       tests/bench/torch_resnet_bench.py --device cuda on the same models,
#       channels_last, cudnn.benchmark, fp32/TF32 and bf16 autocast), and
#       prints one summary (also $OUT/summary.txt when $OUT is set).
#
# The device tool sends the checkout its session started in: run `pack` and
# the device call from a checkout that holds this script (after the merge,
# the main one), with .gpu beside it.
#
# Budget: aim for < 8 minutes on an H100/H200.  BENCH=0 skips the benchmark;
# BENCH_STEPS (default 10) sets the timed steps per configuration.
set -u
cd "$(dirname "$0")/../.."
mode=${1:-run}
PACK=.gpu

if [ "$mode" = pack ]; then
    set -e
    rm -rf "$PACK"
    mkdir -p "$PACK/bin" "$PACK/lib"
    bins="build/tests/gpu/test_cuda build/tests/gpu/test_golden_cuda build/runner"
    for b in $bins; do
        [ -x "$b" ] || { echo "pack: $b missing: run make -j2 tests first" >&2; exit 1; }
        strip -o "$PACK/bin/$(basename "$b")" "$b"
    done
    # the shared libraries outside glibc / the compiler runtime / CUDA
    ldd $bins build/lib/liblumen_cuda.so | awk '$3 ~ /^\// {print $3}' | sort -u | while read -r l; do
        case "$(basename "$l")" in
            libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*|libstdc++*|libgcc_s*) ;;
            libcudnn*|libcublas*|libcudart*|libcuda.so*) ;;
            *) cp -L "$l" "$PACK/lib/" ;;
        esac
    done
    cp build/lib/liblumen_cuda.so "$PACK/lib/"   # found by the binaries as ../lib/
    du -sh "$PACK"
    echo "pack: now run on the device: bash tests/gpu/device-check.sh run   (carry .gpu)"
    exit 0
fi

[ "$mode" = run ] || [ "$mode" = bench ] || { echo "usage: $0 pack|run|bench" >&2; exit 2; }
# bench (make bench on a GPU machine, tests/bench/bench_cuda.sh): only the
# benchmark, with $RUNNER (default build/runner) and $PY (default python3)
OUTDIR=${OUT:-/tmp}
SUM="$OUTDIR/summary.txt"
: >"$SUM"
say() { echo "$*" | tee -a "$SUM"; }

say "== device-check $mode $(date -u +%FT%TZ) on $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"
if [ "$mode" = run ]; then
    [ -d "$PACK/bin" ] || { say "no $PACK/bin: run 'tests/gpu/device-check.sh pack' here first and carry .gpu"; exit 1; }
    RUNNER="$PACK/bin/runner"
else
    RUNNER=${RUNNER:-build/runner}
fi
PY=${PY:-python3}

# cuDNN 9 and cuBLAS 13: the toolkit's, else the Python wheels'
libdirs=""
for d in "${CUDA_HOME:-/usr/local/cuda}/lib64" $(python3 - <<'EOF' 2>/dev/null
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
seen = set()
for r in roots:
    for p in glob.glob(os.path.join(r, "nvidia", "**", "lib*.so*"), recursive=True):
        if any(k in os.path.basename(p) for k in ("cudnn", "cublas")):
            seen.add(os.path.dirname(p))
print(" ".join(sorted(seen)))
EOF
); do
    [ -d "$d" ] && libdirs="$libdirs:$d"
done
export LD_LIBRARY_PATH="$PWD/$PACK/lib$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for l in libcudnn.so.9 libcublas.so.13; do
    found=$(IFS=:; for d in $LD_LIBRARY_PATH; do [ -e "$d/$l" ] && echo "$d/$l" && break; done)
    say "$l: ${found:-NOT FOUND}"
done

trc=0
if [ "$mode" = run ]; then
# 1. the tests
say "== make test-gpu (binaries built on the CPU machine)"
LUMEN_FIXTURES=$PWD/tests/fixtures LUMEN_BUILD=$PWD/build LUMEN_SRC=$PWD \
    timeout 300 tests/run.sh "$PACK/bin/test_cuda" "$PACK/bin/test_golden_cuda" >"$OUTDIR/tests.log" 2>&1
trc=$?
grep -E '^\[ *(OK|FAILED|SKIPPED|ERROR) *\]|worst|SKIPPED:|algorithms|bitwise|absurd|losses|steps:|^[0-9]+ passed' \
    "$OUTDIR/tests.log" | tee -a "$SUM"
say "tests exit status: $trc (full log: tests.log)"
fi

# 2. the benchmark: lumen vs PyTorch, same model, same machine, one run
if [ "${BENCH:-1}" = 1 ]; then
    steps=${BENCH_STEPS:-10}
    say "== bench: img/s (train, infer), $steps steps after 3 warm-up, 300x300"
    say "model    ch batch prec | lumen train infer | torch train infer | ratio train infer"
    for model in default baseline; do
        if [ $model = default ]; then
            lset=(); tset=()
        else
            lset=(--set model.blocks=2,2,2,2 --set model.widths=32,64,128,256 --set model.stem_width=32)
            tset=(--blocks 2,2,2,2 --widths 32,64,128,256 --stem-width 32)
        fi
        for ch in 1 3; do for b in 64 128; do for prec in tf32 bf16; do
            lj=$(timeout 120 "$RUNNER" bench --backend cuda --precision "$prec" "${lset[@]}" \
                --channels $ch --batch $b --size 300 --steps "$steps" --warmup 3 --no-layers 2>>"$OUTDIR/bench.log" | tail -1)
            tj=$(timeout 120 "$PY" tests/bench/torch_resnet_bench.py --device cuda --precision "$prec" \
                "${tset[@]}" --channels $ch --batch $b --size 300 --steps "$steps" --warmup 3 2>>"$OUTDIR/bench.log" | tail -1)
            echo "$model $ch $b $prec lumen $lj" >>"$OUTDIR/bench.log"
            echo "$model $ch $b $prec torch $tj" >>"$OUTDIR/bench.log"
            "$PY" - "$model" "$ch" "$b" "$prec" "$lj" "$tj" <<'EOF' | tee -a "$SUM"
import json, sys
m, ch, b, p, lj, tj = sys.argv[1:]
def get(s):
    try:
        d = json.loads(s)
        return d["train_img_s"], d["infer_img_s"]
    except Exception:
        return None, None
lt, li = get(lj)
tt, ti = get(tj)
f = lambda v: "%8.1f" % v if v else "    fail"
r = lambda a, c: "%6.2fx" % (a / c) if a and c else "    --"
print("%-8s %2s %5s %4s | %s %s | %s %s | %s %s" % (m, ch, b, p, f(lt), f(li), f(tt), f(ti), r(lt, tt), r(li, ti)))
EOF
        done; done; done
    done
fi
say "== done $(date -u +%FT%TZ)"
exit $trc
