# Sourced by the scripts that run `serve` under ../shared/bench's harness (builds-ab.sh,
# metrics-ab.sh, mallocs-per-job.sh, machine-cpu.sh): the one place that says how, and how to
# tell how much a shared host took from a run (steal).

# harness_sut BINARY [ENV=VALUE...]: the harness's SUT_CMD for `BINARY serve` on a fresh data
# folder (/tmp/mq-bench-data), with Noop jobs on and the queue limits raised, so that a backlog
# far over the default MaxSize (10,000) is stored rather than refused as QueueFull.
harness_sut() {
    local binary=$1
    shift
    echo "env $* MEDIAQUEUE_ENABLE_NOOP=1 MEDIAQUEUE_DATA_DIR=/tmp/mq-bench-data MEDIAQUEUE_HTTP_ADDRESS=127.0.0.1:0" \
        "MEDIAQUEUE_LOG_LEVEL=warning MEDIAQUEUE_QUEUE_MAX_SIZE=1000000 MEDIAQUEUE_QUEUE_MAX_CONCURRENT=256" \
        "MEDIAQUEUE_MAX_RUNNING_JOBS=256 $binary serve"
}

# steal_mark: a mark for steal_percent, taken when a run starts.
steal_mark() {
    echo "$(awk '/^cpu /{print $9}' /proc/stat) $(date +%s.%N)"
}

# steal_percent MARK: the share of this machine's CPU time since MARK that the hypervisor gave to
# other machines while these CPUs had work (/proc/stat's steal). Runs with much of it are the
# host's noise, not the build's.
steal_percent() {
    local ticks=${1%% *} started=${1#* }
    awk -v t="$(( $(awk '/^cpu /{print $9}' /proc/stat) - ticks ))" -v h="$(getconf CLK_TCK)" -v s="$started" \
        -v e="$(date +%s.%N)" -v c="$(nproc)" 'BEGIN{printf "%.1f", 100 * t / h / ((e - s) * c)}'
}
