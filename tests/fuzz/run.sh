#!/usr/bin/env bash
# Runs the libFuzzer harnesses of build-fuzz/fuzz/ (make fuzz-build) one
# after another, each for $FUZZ_TIME seconds in a single process, and ends
# with one line per harness:
#   fuzz_png: 123456 runs (2057/s), cov 1234 ft 5678, corpus 345, crashes 0
# and "fuzz: N harnesses, N crashed".  The exit status is non-zero iff a
# harness found something (a crash, leak, UB, timeout or OOM: libFuzzer
# saves the input as $FUZZ_BUILD/fuzz/findings/<harness>-<kind>-<sha1>).
#
#   tests/fuzz/run.sh [harness...]      (default: every fuzz_* binary)
#
# Environment: FUZZ_BUILD (default build-fuzz), FUZZ_TIME (default 60),
# FUZZ_RUNS (a number of executions instead of a time, for long runs),
# LUMEN_DATA (the real ELPV set the PNG and label seeds come from; without
# it fuzz-seeds generates stand-ins), FUZZ_ARGS (more libFuzzer flags).
#
# Corpora: build-fuzz/fuzz/corpus/<harness> keeps what earlier runs found
# (new inputs are written there); the seeds are read beside it each run:
# build-fuzz/fuzz/seeds/<kind> (fuzz-seeds: images, checkpoints, CSV heads,
# parameter defaults), tests/fixtures (safetensors), experiments/*.lua and
# tests/fuzz/corpus/<kind> (committed text seeds).
set -u
cd "$(dirname "$0")/../.."
src=$PWD
build=${FUZZ_BUILD:-build-fuzz}
time=${FUZZ_TIME:-60}
bin=$build/fuzz
seeds=$bin/seeds
findings=$bin/findings
mkdir -p "$findings" "$bin/logs"

if [ ! -d "$seeds" ] || [ "$bin/fuzz-seeds" -nt "$seeds" ]; then
    rm -rf "$seeds"
    "$bin/fuzz-seeds" "$seeds" "${LUMEN_DATA:-}" || exit 1
fi

# harness -> seed folders, max_len, dictionary
seed_dirs() {
    case $1 in
    fuzz_labels) echo "$seeds/labels tests/fuzz/corpus/labels" ;;
    fuzz_png) echo "$seeds/png" ;;
    fuzz_checkpoint) echo "$seeds/checkpoint tests/fixtures" ;;
    fuzz_experiment) echo "experiments tests/fuzz/corpus/experiment" ;;
    fuzz_set) echo "$seeds/set tests/fuzz/corpus/set" ;;
    esac
}
max_len() {
    case $1 in
    fuzz_png) echo 65536 ;;
    fuzz_checkpoint) echo 16384 ;;
    fuzz_experiment) echo 8192 ;;
    *) echo 4096 ;;
    esac
}

if [ $# -gt 0 ]; then harnesses=("$@"); else
    harnesses=()
    for b in "$bin"/fuzz_*; do [ -x "$b" ] && harnesses+=("$(basename "$b")"); done
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$src/tests/lsan.supp:print_suppressions=0}
export LUMEN_SRC=$src

crashed=0 summary=()
for h in "${harnesses[@]}"; do
    corpus=$bin/corpus/$h
    mkdir -p "$corpus"
    dirs=()
    for d in $(seed_dirs "$h"); do [ -d "$d" ] && dirs+=("$d"); done
    dict=()
    [ -f "tests/fuzz/$h.dict" ] && dict=(-dict="tests/fuzz/$h.dict")
    if [ -n "${FUZZ_RUNS:-}" ]; then limit=(-runs="$FUZZ_RUNS"); else limit=(-max_total_time="$time"); fi
    log=$bin/logs/$h.log
    echo "== $h (${FUZZ_RUNS:+$FUZZ_RUNS runs}${FUZZ_RUNS:-$time s}; log $log)"
    # -close_fd_mask=3: the code under test writes to stdout/stderr (Lua's
    # print, warnings); libFuzzer and the sanitizers report on a copy.
    "$bin/$h" "${limit[@]}" -max_len="$(max_len "$h")" -timeout=10 -rss_limit_mb=2048 \
        -close_fd_mask=3 -print_final_stats=1 -artifact_prefix="$findings/$h-" "${dict[@]}" \
        ${FUZZ_ARGS:-} "$corpus" "${dirs[@]}" >"$log" 2>&1
    rc=$?
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n1)
    rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n1)
    last=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -n1)
    cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")
    n=$(find "$corpus" -type f | wc -l)
    bad=0
    if [ $rc -ne 0 ]; then
        bad=1
        crashed=$((crashed + 1))
        grep -E 'ERROR: |SUMMARY: |runtime error|broken promise|Test unit written' "$log" | head -n 8
    fi
    line="$h: ${runs:-?} runs (${rate:-?}/s), cov ${cov:-?} ft ${ft:-?}, corpus $n, crashes $bad"
    echo "$line"
    summary+=("$line")
done
echo
printf '%s\n' "${summary[@]}"
echo "fuzz: ${#harnesses[@]} harnesses, $crashed crashed"
[ "$crashed" -eq 0 ]
