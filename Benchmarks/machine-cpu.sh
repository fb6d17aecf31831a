#!/usr/bin/env bash
# Benchmarks/machine-cpu.sh N BINARY -- how much of the machine a paced run of ../shared/bench
# takes, for the C reference relay and then for MediaQueue (BINARY serve), one after the other:
# the whole machine's busy CPU per job, the broker's (beam.smp) and the system under test's.
# What is left is the harness's producer and subscriber and the kernel's networking; steal_pct
# is the share of the run's CPU time the hypervisor gave to other machines. When the
# whole machine needs more than its cores at the pace even with the C relay, the latency of
# either is the machine's backlog, not the relay's.
#
#   RATE=4500 Benchmarks/machine-cpu.sh 36000 /tmp/mq-after
#
# The busy time is read from /proc/stat around each whole run.sh (its start and stop included:
# compare runs of the same N). Needs what builds-ab.sh needs: a broker on 127.0.0.1:5672 and the
# harness's Python packages on the PATH.
set -euo pipefail
called_from=$PWD
cd "$(dirname "$0")/.."
root=$PWD
. Benchmarks/harness-sut.sh
if [ $# -ne 2 ]; then
    echo "usage: RATE=JOBS_PER_S $0 N BINARY" >&2
    exit 2
fi
jobs=$1 binary=$2
[[ $binary == /* ]] || binary=$called_from/$binary
[ -x "$binary" ] || { echo "not an executable: $binary" >&2; exit 2; }
beam=$(pgrep -x beam.smp | head -n 1) || { echo "no broker (beam.smp) running" >&2; exit 2; }
cpu_log=${CPU_LOG:-/tmp/mediaqueue-cpu.log}
cores=$(nproc)
ticks_per_second=$(getconf CLK_TCK)

process_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# user + nice + system + irq + softirq, in ticks, over all cores (steal is not this machine's work).
machine_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
# Samples the CPU ticks of the process named $1 into file $2 while it lives (relay_c is started
# and ended by run.sh itself).
sample_ticks() {
    local pid=""
    for _ in $(seq 1 100); do pid=$(pgrep -x "$1" | head -n 1) && break; sleep 0.1; done
    [ -n "$pid" ] || return 0
    while ticks=$(process_ticks "$pid" 2>/dev/null) && [ -n "$ticks" ]; do
        echo "$ticks" > "$2"
        sleep 0.2
    done
}
per_job() { awk -v t="$1" -v h="$ticks_per_second" -v n="$jobs" 'BEGIN{printf "%.0f", t / h * 1e6 / n}'; }

for sut in c ext; do
    rm -rf /tmp/mq-bench-data
    broker_before=$(process_ticks "$beam") machine_before=$(machine_ticks) steal=$(steal_mark)
    if [ "$sut" = c ]; then
        relay_ticks=$(mktemp)
        sample_ticks relay_c "$relay_ticks" &
        result=$(cd ../shared/bench && RATE=${RATE:-} ./run.sh c "$jobs" 2>&1 | grep '^SUT=' | tail -n 1)
        wait
        sut_us=$(per_job "$(cat "$relay_ticks" 2>/dev/null || echo 0)")
        rm -f "$relay_ticks"
    else
        result=$(cd ../shared/bench && RATE=${RATE:-} SUT_CMD="$root/Benchmarks/cpu-of.sh $(harness_sut "$binary")" ./run.sh ext "$jobs" 2>&1 | grep '^SUT=' | tail -n 1)
        sut_us=$(awk -v c="$(tail -n 1 "$cpu_log" | sed 's/^cpu_s=//')" -v n="$jobs" 'BEGIN{printf "%.0f", c * 1e6 / n}')
    fi
    broker=$(( $(process_ticks "$beam") - broker_before )) machine=$(( $(machine_ticks) - machine_before ))
    needed=$(awk -v t="$machine" -v h="$ticks_per_second" -v n="$jobs" -v r="${RATE:-0}" 'BEGIN{ if (r > 0) printf "%.2f", t / h / n * r; else print "-" }')
    echo "$sut $(grep -oE 'jobs_per_s=[0-9]+|p50_ms=[0-9.]+|p99_ms=[0-9.]+' <<<"$result" | tr '\n' ' ')" \
        "machine_us_per_job=$(per_job "$machine") broker_us_per_job=$(per_job "$broker") sut_us_per_job=${sut_us:--}" \
        "cores_needed_at_rate=$needed of $cores steal_pct=$(steal_percent "$steal")"
done
