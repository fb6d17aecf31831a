# Shared setup of the outbox benchmarks (http-callbacks.sh, amqp-events.sh), sourced by them
# from the repository root with `amqp_port` and `work_prefix` set:
# a work folder and a cleanup trap that ends every pid in `pids` and the private broker; the
# harness's Python venv (`py`); the release binary (`mq`); the broker; and `outbox_count`.
root=$PWD
bench=$(cd "${BENCH_DIR:-$root/../shared/bench}" && pwd)
work=$(mktemp -d "/tmp/$work_prefix.XXXXXX")
chmod 755 "$work"   # the broker runs as the rabbitmq user
pids=()

bench_cleanup() {
    status=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    scripts/rabbitmq-node.sh stop "$work/broker" "$amqp_port" >/dev/null 2>&1 || true
    rm -rf "$work"
    exit $status
}
trap bench_cleanup EXIT INT TERM

scripts/install-packages.sh bench
venv="$root/.build/bench-venv"
if ! "$venv/bin/python" -c "import aiohttp, pika" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$bench/requirements.txt"
fi
py="$venv/bin/python"
swift build -c release --product mediaqueue 2>&1 | grep -E "error|warning: " | grep -v "\.build/\|swift-distributed-tracing" || true
mq="$root/.build/release/mediaqueue"

echo "# starting a private broker on 127.0.0.1:$amqp_port" >&2
scripts/rabbitmq-node.sh start "$work/broker" "$amqp_port" >/dev/null

# outbox_count KIND STATUS: outbox rows of kind `url` or `mq` in status `pending`/`delivered`.
outbox_count() {
    "$py" -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT COUNT(*) FROM outbox WHERE kind=? AND status=?\", (sys.argv[2], sys.argv[3])).fetchone()[0])" \
        "$MEDIAQUEUE_DATA_DIR/mediaqueue.sqlite" "$1" "$2"
}
