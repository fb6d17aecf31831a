#!/usr/bin/env bash
# Benchmarks/builds-ab.sh ROUNDS N LABEL=BINARY... -- two or more builds of `mediaqueue` compared
# on the same load: ../shared/bench's `run.sh ext N` with each binary in turn, ROUNDS times, so a
# machine whose speed drifts treats them alike. RATE=… paces the producer (jobs/s), as for run.sh.
# Prints, per run, the harness's jobs/s and p50 / p99 submit-to-event, the `serve` process's CPU
# seconds and microseconds per job, and the share of the run's CPU time the hypervisor gave to
# other machines (steal_pct: runs with much of it are the host's noise). Copy each build's binary
# aside first (e.g. to /tmp/mq-before and /tmp/mq-after): a build replaces
# .build/release/mediaqueue.
# Needs what Docs/performance.md's "How to reproduce" sets up: a broker on 127.0.0.1:5672 and
# the harness's Python packages on the PATH.
set -euo pipefail
called_from=$PWD
cd "$(dirname "$0")/.."
root=$PWD
. Benchmarks/harness-sut.sh
if [ $# -lt 3 ]; then
    echo "usage: $0 ROUNDS N LABEL=BINARY [LABEL=BINARY...]" >&2
    exit 2
fi
rounds=$1 jobs=$2
shift 2
cpu_log=${CPU_LOG:-/tmp/mediaqueue-cpu.log}
data=/tmp/mq-bench-data
for round in $(seq 1 "$rounds"); do
    for build in "$@"; do
        label=${build%%=*} binary=${build#*=}
        [[ $binary == /* ]] || binary=$called_from/$binary
        [ -x "$binary" ] || { echo "not an executable: $binary" >&2; exit 2; }
        rm -rf "$data"
        steal=$(steal_mark)
        sut="$root/Benchmarks/cpu-of.sh $(harness_sut "$binary")"
        result=$(cd ../shared/bench && RATE=${RATE:-} SUT_CMD="$sut" ./run.sh ext "$jobs" 2>&1 | grep '^SUT=' | tail -n 1)
        cpu=$(tail -n 1 "$cpu_log" | sed 's/^cpu_s=//')
        per_job=$(awk -v c="$cpu" -v n="$jobs" 'BEGIN{printf "%.0f", c * 1e6 / n}')
        echo "round=$round $label $(grep -oE 'jobs_per_s=[0-9]+|p50_ms=[0-9.]+|p99_ms=[0-9.]+' <<<"$result" | tr '\n' ' ')cpu_s=$cpu us_per_job=$per_job steal_pct=$(steal_percent "$steal")"
    done
done
