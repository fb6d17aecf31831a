#!/usr/bin/env bash
# End to end through `mediaqueue serve` against a private local RabbitMQ node: N Noop jobs
# published with confirms, stored in SQLite, dispatched, and announced as confirmed TaskFinish
# events on a topic exchange. Prints jobs/s, p50/p99 submit-to-event latency and peak RSS.
#
#   Benchmarks/end-to-end.sh [N] [RATE]     # N jobs (default 20000); RATE jobs/s paced (default: as fast as possible)
#
# Knobs: AMQP_PORT (5695). The comparison with the C reference relay uses ../shared/bench (see
# Docs/performance.md).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
rate=${2:-0}
amqp_port=${AMQP_PORT:-5695}
work=$(mktemp -d /tmp/mq-e2e-bench.XXXXXX)
chmod 755 "$work"   # the broker runs as the rabbitmq user

cleanup() {
    status=$?
    scripts/rabbitmq-node.sh stop "$work/broker" "$amqp_port" >/dev/null 2>&1 || true
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT INT TERM

scripts/install-packages.sh bench
for product in mediaqueue mediaqueue-e2e-bench; do
    swift build -c release --product "$product" 2>&1 | grep -E "error|warning: " | grep -v "\.build/\|swift-distributed-tracing" || true
done
echo "# starting a private broker on 127.0.0.1:$amqp_port" >&2
scripts/rabbitmq-node.sh start "$work/broker" "$amqp_port" >/dev/null
.build/release/mediaqueue-e2e-bench --amqp "amqp://guest:guest@127.0.0.1:$amqp_port/" --jobs "$n" --rate "$rate" \
    --mediaqueue .build/release/mediaqueue 2> >(grep -v '^mediaqueue: ' >&2)
