#!/usr/bin/env bash
# Runs every benchmark binary in $LUMEN_BUILD/bench (built from
# tests/bench/bench_*.c).  Benchmarks print their own numbers; timings taken
# while other jobs run on the machine are noisy.
set -u
status=0
for b in "${LUMEN_BUILD:?}"/bench/bench_*; do
    [ -x "$b" ] || continue
    echo "== $(basename "$b")"
    "$b" || status=1
done
exit $status
