#!/usr/bin/env bash
# Confirmed AMQP event publishes per second: MediaQueue's TDMQ relay draining its outbox (N
# TaskFinish events to the topic exchange of queue-1's rule, each confirmed by the broker and
# marked delivered in SQLite), against the harness's own confirmed publisher
# (../shared/bench/producer.py, pika, window 1000) on the same broker in the same run.
#
#   Benchmarks/amqp-events.sh [N]        # N events (default 20000)
#
# Steps: (1) a private RabbitMQ node; `mediaqueue serve --role intake,dispatch` turns N Noop jobs,
# published by producer.py (its confirmed-publish rate is the reference), into N pending TDMQ
# deliveries; (2) subscriber.py binds `job.#` on job-events and `mediaqueue serve --role relay`
# drains the outbox: the subscriber's events_per_s_after_first is MediaQueue's figure.
# Knobs: AMQP_PORT (5694), BENCH_DIR (../shared/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
amqp_port=${AMQP_PORT:-5694}
work_prefix=mq-amqp-bench
source Benchmarks/lib.sh
export AMQP_PORT=$amqp_port JOBS_QUEUE=bench.amqp.jobs EVENTS_EXCHANGE=job-events
export MEDIAQUEUE_AMQP_URL="amqp://guest:guest@127.0.0.1:$amqp_port/" MEDIAQUEUE_HTTP_ADDRESS=127.0.0.1:0
export MEDIAQUEUE_DATA_DIR="$work/data" MEDIAQUEUE_INTAKE_QUEUE=$JOBS_QUEUE MEDIAQUEUE_DEAD_LETTER_QUEUE=$JOBS_QUEUE.dead
export MEDIAQUEUE_EVENTS_EXCHANGE=$EVENTS_EXCHANGE MEDIAQUEUE_ENABLE_NOOP=1 MEDIAQUEUE_QUEUE_MAX_SIZE=$((n + 1000))
export MEDIAQUEUE_QUEUE_MAX_CONCURRENT=256 MEDIAQUEUE_MAX_RUNNING_JOBS=256 MEDIAQUEUE_LOG_LEVEL=warning
run_id="amqpbench$$-"
pending() { outbox_count mq "$1"; }

# (1) N pending TDMQ deliveries, no relay running; producer.py's rate is the reference.
"$mq" serve --role intake,dispatch > "$work/fill.log" 2>&1 &
fill=$!
pids+=("$fill")
(cd "$bench" && "$py" admin.py wait-consumer --queue "$JOBS_QUEUE" --timeout 60 >/dev/null)
(cd "$bench" && "$py" producer.py --n "$n" --queue "$JOBS_QUEUE" --id-prefix "$run_id" > "$work/producer.log" 2>&1)
for _ in $(seq 1 600); do
    [ "$(pending pending)" -ge "$n" ] && break
    sleep 0.5
done
kill "$fill"; wait "$fill" 2>/dev/null || true
echo "# outbox holds $(pending pending) pending TDMQ deliveries" >&2

# (2) MediaQueue's relay drains them to the topic exchange; the subscriber counts.
(cd "$bench" && "$py" subscriber.py --n "$n" --run-id "$run_id" --ready-file "$work/ready" --idle-timeout 30 \
    > "$work/subscriber.out" 2> "$work/subscriber.err") &
subscriber=$!
pids+=("$subscriber")
for _ in $(seq 1 100); do [ -f "$work/ready" ] && break; sleep 0.1; done
"$mq" serve --role relay > "$work/relay.log" 2>&1 &
relay=$!
pids+=("$relay")
wait "$subscriber" || true
relay_cpu=$(ps -o times= -p "$relay" | tr -d ' ')
kill "$relay"; wait "$relay" 2>/dev/null || true

mq_rate=$(cat "$work/subscriber.out" "$work/subscriber.err" | sed -n 's/.*events_per_s_after_first=\([0-9]*\).*/\1/p' | tail -n 1)
ref_rate=$(sed -n 's/.* \([0-9]*\) msgs\/s.*/\1/p' "$work/producer.log" | tail -1)
echo "mediaqueue relay: $mq_rate events/s confirmed and marked delivered ($(pending delivered) delivered; relay CPU ${relay_cpu}s)"
echo "reference:        $ref_rate msgs/s confirmed publishes by producer.py (pika) to the same broker"
echo "N=$n mediaqueue_per_s=$mq_rate ref_per_s=$ref_rate ratio_mediaqueue_over_ref=$(awk -v a="$mq_rate" -v b="$ref_rate" 'BEGIN { printf "%.2f", a / b }')"
