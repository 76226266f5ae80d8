#!/usr/bin/env bash
# check_layers.sh -- fails when a lower layer includes a higher layer's header.
#
# Stairs run one way (README "Layers"):
#
#   runner/, stages/<name>/  ->  stages/common/  ->  kernels/ (and kernels/cpu/)
#                            ->  kernels/base/   ->  plugins/lumen/ (the SDK)
#
# Each file may include headers of its own unit and of the units below it;
# stages/<name>/ may not include another stage's or the runner's headers, the
# runner no stage's own headers, and plugins/examples/ only the SDK.  The
# headers are those the compiler really opens (`$CC -MM` with the build's
# include flags, so an include reached through another header counts too,
# and a relative "../x.h" is caught as well as "x.h" found through -I).
#
# Usage: tests/check_layers.sh   (from the repository root; the Makefile's
# `check-layers` target runs it with CC and CPPFLAGS set, and `make test`
# runs that target).  Prints one line when all is well; otherwise one line
# per stair climbed, and exits 1.
set -u
CC=${CC:-cc}
CPPFLAGS=${CPPFLAGS:--Iplugins -Istages/common -Ikernels -Ikernels/base -Irunner -D_GNU_SOURCE}

# unit of a repository path (empty: not checked, e.g. tests/ or a system header)
unit_of() {
    case $1 in
        plugins/lumen/*) echo sdk ;;
        plugins/examples/*) echo example ;;
        kernels/base/*) echo base ;;
        kernels/*) echo kernels ;;
        stages/common/*) echo common ;;
        stages/*/*) local s=${1#stages/}; echo "stage:${s%%/*}" ;;
        runner/*) echo runner ;;
        *) echo "" ;;
    esac
}

folder_of() {
    case $1 in
        sdk) echo plugins/lumen/ ;;
        example) echo plugins/examples/ ;;
        base) echo kernels/base/ ;;
        kernels) echo kernels/ ;;
        common) echo stages/common/ ;;
        stage:*) echo "stages/${1#stage:}/" ;;
        runner) echo runner/ ;;
    esac
}

# units a file of unit $1 may include
allowed_for() {
    case $1 in
        sdk) echo "sdk" ;;
        example) echo "sdk" ;;
        base) echo "sdk base" ;;
        kernels) echo "sdk base kernels" ;;
        common) echo "sdk base kernels common" ;;
        stage:*) echo "sdk base kernels common $1" ;;
        runner) echo "sdk base kernels common runner" ;;
    esac
}

files=$(git ls-files -co --exclude-standard -- 'plugins/*.[ch]' 'kernels/*.[ch]' \
            'stages/*.[ch]' 'runner/*.[ch]' 2>/dev/null |
        while read -r f; do [ -f "$f" ] && echo "$f"; done)
if [ -z "$files" ]; then
    files=$(find plugins kernels stages runner -name '*.[ch]' | sort)
fi

# One $CC -MM over all files: each rule lists the file itself first, then
# every header it opens.  -MG: a missing header is listed, not an error.
# shellcheck disable=SC2086
deps=$($CC $CPPFLAGS -MM -MG -x c $files 2>&1) || {
    echo "check-layers: $CC -MM failed:" >&2
    echo "$deps" >&2
    exit 1
}

bad=0 nfiles=0
while read -r src hdrs; do
    nfiles=$((nfiles + 1))
    u=$(unit_of "$src")
    [ -n "$u" ] || continue
    ok=" $(allowed_for "$u") "
    for h in $hdrs; do
        h=$(realpath -m --relative-to=. "$h")
        hu=$(unit_of "$h")
        [ -n "$hu" ] || continue
        case $ok in *" $hu "*) continue ;; esac
        echo "check-layers: $src includes $h, a higher layer (files in $(folder_of "$u") may include only$(for a in $(allowed_for "$u"); do printf ' %s' "$(folder_of "$a")"; done))"
        bad=1
    done
done < <(printf '%s\n' "$deps" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' |
         sed -e 's/^[^:]*: *//')

if [ "$bad" -ne 0 ]; then
    echo "check-layers: a lower layer includes a higher one (see README \"Layers\"); move the helper down" >&2
    exit 1
fi
echo "check-layers: $nfiles files, every #include runs down the stairs"
