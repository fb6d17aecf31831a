#!/usr/bin/env bash
# Benchmarks/metrics-ab.sh [ROUNDS] -- what the engine's own metrics cost: ../shared/bench's
# compare.sh 40000 with one release binary, MEDIAQUEUE_METRICS=on then off, ROUNDS times
# (default 2), printing each run's ratio to the C relay and the serve process's CPU seconds.
# Needs what Docs/performance.md's "How to reproduce" sets up: a release build, a broker on
# 127.0.0.1:5672 and the harness's Python packages on the PATH.
set -u
cd "$(dirname "$0")/.."
root=$PWD
. Benchmarks/harness-sut.sh
rounds=${1:-2}
for round in $(seq 1 "$rounds"); do
    for metrics in on off; do
        rm -rf /tmp/mq-bench-data
        sut="$root/Benchmarks/cpu-of.sh $(harness_sut "$root/.build/release/mediaqueue" "MEDIAQUEUE_METRICS=$metrics")"
        echo "=== round $round metrics=$metrics"
        (cd ../shared/bench && SUT_CMD="$sut" ./compare.sh 40000 2>&1 | grep -E '^SUT=|^ratio')
        tail -n 1 "${CPU_LOG:-/tmp/mediaqueue-cpu.log}"
    done
done
