# Sourced by the scripts that run `serve` under ../shared/bench's harness (builds-ab.sh,
# metrics-ab.sh, mallocs-per-job.sh): the one place that says how.

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
