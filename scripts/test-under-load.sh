#!/usr/bin/env bash
# Runs the test command RUNS times in a row (default 3) while stress-ng keeps one core busy, as a
# shared or slow machine would: the suite must not depend on how fast the machine is. Stops at
# the first failing run; prints one line a run and the stressor's own summary at the end.
#
#   scripts/test-under-load.sh [RUNS] [-- ARGS for scripts/test.sh]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift

scripts/install-packages.sh load
logs=$(mktemp -d /tmp/mediaqueue-load.XXXXXX)
stress-ng --cpu 1 --cpu-load 100 --timeout 0 --metrics-brief >"$logs/stress.log" 2>&1 &
stressor=$!
trap 'kill -INT $stressor 2>/dev/null || true; wait $stressor 2>/dev/null || true' EXIT

for run in $(seq 1 "$runs"); do
    started=$(date +%s)
    if scripts/test.sh "$@" >"$logs/run-$run.log" 2>&1; then
        verdict=passed
    else
        verdict=FAILED
    fi
    summary=$(grep -E "Test run with [0-9]+ tests" "$logs/run-$run.log" | tail -1 | sed 's/^[^A-Za-z]*//')
    compose=$(grep -E "^compose: " "$logs/run-$run.log" | tail -1)
    echo "run $run of $runs: $verdict in $(( $(date +%s) - started )) s, load $(cut -d' ' -f1-3 /proc/loadavg); ${summary:-no test summary}; ${compose:-no compose line} (log: $logs/run-$run.log)"
    [ "$verdict" = passed ] || exit 1
done
