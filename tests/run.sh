#!/usr/bin/env bash
# Runs every test binary given on the command line and ends with one line
# "N passed, N failed, N skipped" counting test cases (cmocka's own counts;
# CI parses that line).  Above it: the failing binaries, and every skipped
# case with its reason -- the last line the test printed (print_message)
# before skip(), so a case that did not run never goes unnoticed.  A binary
# that crashes or prints no cmocka summary counts as one failed test.  The
# exit status is non-zero iff something failed.
set -u
export CMOCKA_MESSAGE_OUTPUT=STDOUT
if [ "${LUMEN_SANITIZE:-0}" = 1 ]; then
    # protect_shadow_gap=0: the CUDA driver maps memory where ASan keeps its
    # shadow gap (only matters where the cuda backend finds a GPU)
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:protect_shadow_gap=0}
    export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(cd "$(dirname "$0")" && pwd)/lsan.supp:print_suppressions=0}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi

# "name<TAB>reason" for each case cmocka reports as skipped while it runs
# (the "listed below" summary at the end repeats the names; it is not a
# case of its own).
skipped_cases() {
    awk '
        /^\[ RUN      \] / { name = substr($0, 14); reason = ""; inside = 1; next }
        /^\[  SKIPPED \] / {
            if (inside && substr($0, 14) == name)
                printf "%s\t%s\n", name, reason == "" ? "(no reason printed)" : reason
            inside = 0; next
        }
        /^\[ *(OK|FAILED|ERROR) *\] / { inside = 0; next }
        inside && $0 !~ /^[ \t]*$/ { reason = $0; sub(/^[ \t]+/, "", reason); sub(/[ \t]+$/, "", reason) }
    ' "$1"
}

passed=0 failed=0 skipped=0 failed_bins=() skip_lines=()
for t in "$@"; do
    log=$(mktemp)
    "$t" >"$log" 2>&1
    rc=$?
    cat "$log"
    count() { grep -E "^\[  $1 *\] [0-9]+ test" "$log" | tail -n1 | grep -oE '[0-9]+' | head -n1; }
    p=$(count PASSED) f=$(count FAILED) s=$(count SKIPPED)
    p=${p:-0} f=${f:-0} s=${s:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
    [ "$f" -gt 0 ] && failed_bins+=("$(basename "$t")")
    while IFS=$'\t' read -r name reason; do
        skip_lines+=("  $(basename "$t"): $name -- $reason")
    done < <(skipped_cases "$log")
    rm -f "$log"
done
echo
if [ ${#skip_lines[@]} -gt 0 ]; then
    echo "skipped:"
    printf '%s\n' "${skip_lines[@]}"
fi
[ ${#failed_bins[@]} -gt 0 ] && echo "failing: ${failed_bins[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
