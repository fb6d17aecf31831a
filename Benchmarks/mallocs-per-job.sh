#!/usr/bin/env bash
# Benchmarks/mallocs-per-job.sh N LABEL=BINARY... -- heap allocations per job of builds of
# `mediaqueue`: calls to glibc's malloc made by `serve` during ../shared/bench's `run.sh ext N`,
# divided by N. Unlike CPU time, the count does not move with the machine's speed, so one run per
# build shows what a change to the hot path saved. Compare builds at the same N, 20,000 or more:
# the count starts some seconds after the probe is attached to the running `serve`, so short runs
# count too little (one build: 207.8 and 207.7 per job at 20,000 and 40,000, 128–137 at 10,000,
# none at 3,000).
# Root only: counts through the uprobe `probe_libc:malloc`, added when missing. The probe traps on
# every call, so `serve` runs several times slower here; its rates mean nothing.
# Needs what Docs/performance.md's "How to reproduce" sets up: a broker on 127.0.0.1:5672 and
# the harness's Python packages on the PATH.
set -euo pipefail
called_from=$PWD
cd "$(dirname "$0")/.."
. Benchmarks/harness-sut.sh
if [ $# -lt 2 ]; then
    echo "usage: $0 N LABEL=BINARY [LABEL=BINARY...]" >&2
    exit 2
fi
jobs=$1
shift
# Whole outputs read, not piped into a reader that stops early: under pipefail the writer's
# SIGPIPE would end the script.
libc=$(ldconfig -p | awk '$1 == "libc.so.6" && !found { print $NF; found = 1 }')
probes=$(perf probe --list 2>/dev/null || true)
grep -q 'probe_libc:malloc' <<<"$probes" || perf probe -q -x "$libc" malloc
data=/tmp/mq-bench-data
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for build in "$@"; do
    label=${build%%=*} binary=${build#*=}
    [[ $binary == /* ]] || binary=$called_from/$binary
    [ -x "$binary" ] || { echo "not an executable: $binary" >&2; exit 2; }
    rm -rf "$data"
    (cd ../shared/bench && SUT_CMD="$(harness_sut "$binary")" ./run.sh ext "$jobs" >"$work/run.log" 2>&1) &
    runner=$!
    pid=""
    for _ in $(seq 1 300); do
        pid=$(pgrep -f -x "$binary serve" | head -n 1 || true)
        [ -n "$pid" ] && break
        sleep 0.1
    done
    [ -n "$pid" ] || { echo "serve did not start; see the harness's output:" >&2; cat "$work/run.log" >&2; exit 1; }
    # Ends by itself when `serve` exits at the end of the run.
    perf stat -x, -e probe_libc:malloc -p "$pid" -o "$work/stat" >/dev/null 2>&1 || true
    wait "$runner"
    calls=$(awk -F, '/probe_libc:malloc/ { print $1 }' "$work/stat")
    echo "$label mallocs=$calls per_job=$(awk -v c="$calls" -v n="$jobs" 'BEGIN { printf "%.1f", c / n }') $(grep '^SUT=' "$work/run.log" | grep -oE 'not_success=[0-9]+')"
done
