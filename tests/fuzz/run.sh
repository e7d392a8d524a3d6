#!/bin/sh
# Runs every libFuzzer target in BUILD_DIR (default build-fuzz) for FUZZ_SECONDS each (default
# 60), one after another, starting from the seed corpus in tests/fuzz/corpus/<target>/.
# New interesting inputs go to a scratch corpus (the seeds stay untouched); crashes, leaks and
# sanitizer reports are saved under $FUZZ_OUT (default BUILD_DIR/fuzz-out/<target>/) and make
# the script exit 1 after all targets ran. Usage: tests/fuzz/run.sh [BUILD_DIR] [TARGET...]
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build-fuzz}
[ $# -gt 0 ] && shift
build=$(cd "$build" 2>/dev/null && pwd) || { echo "run.sh: no build directory" >&2; exit 2; }
seconds=${FUZZ_SECONDS:-60}
out=${FUZZ_OUT:-$build/fuzz-out}
# Absolute, since a target may change directory (fuzz_config works in a temporary one).
mkdir -p "$out" && out=$(cd "$out" && pwd)
targets=${*:-$(cd "$build" && ls fuzz_* 2>/dev/null | sed 's/^fuzz_//')}
if [ -z "$targets" ]; then
    echo "run.sh: no fuzz_* executables in $build (configure with -DSLUICE_FUZZ=ON)" >&2
    exit 2
fi

failed=""
for t in $targets; do
    bin=$build/fuzz_$t
    seeds=$here/corpus/$t
    work=$out/$t
    mkdir -p "$work/corpus" "$seeds"
    echo "== fuzz_$t: ${seconds}s"
    # -timeout: one input running longer is a finding (the config loader's instruction budget
    # ends runaway Lua well within it). Leak detection is on by default under ASan.
    if ! "$bin" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2560 -print_final_stats=1 \
        -artifact_prefix="$work/" "$work/corpus" "$seeds" >"$work/log" 2>&1; then
        failed="$failed $t"
        echo "   FAILED: see $work/log; reproducer(s): $(ls "$work" | grep -E '^(crash|leak|timeout|oom)-' | tr '\n' ' ')"
        tail -n 40 "$work/log"
    else
        grep -E '^stat::number_of_executed_units|^Done' "$work/log" | tr '\n' ' '
        echo
    fi
done
if [ -n "$failed" ]; then
    echo "fuzzing found problems in:$failed" >&2
    exit 1
fi
echo "fuzzing: all targets clean"
