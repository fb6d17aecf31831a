#!/usr/bin/env bash
# HTTP callback deliveries per second: MediaQueue's HTTP relay draining its outbox (signed POSTs,
# each marked delivered in SQLite) into ../shared/bench/http_receiver.py, against the reference
# sender ../shared/bench/http_ref_sender.py posting to the same receiver in the same run.
#
#   Benchmarks/http-callbacks.sh [N]        # N deliveries each (default 20000)
#
# Steps: (1) a private RabbitMQ node and `mediaqueue serve --role intake,dispatch` turn N Noop
# jobs into N pending Url deliveries (queue-1's rule points at the receiver); (2) the receiver
# starts and `mediaqueue serve --role relay` drains the outbox: the receiver's rate, first to last
# request, is MediaQueue's figure; (3) a fresh receiver and the reference sender, same N, same
# concurrency. Prints both rates and their ratio. Knobs: CONCURRENCY (32: the reference's
# connections and MediaQueue's MEDIAQUEUE_CALLBACK_MAX_PER_ENDPOINT), HTTP_PORT (18080),
# AMQP_PORT (5693), BENCH_DIR (../shared/bench), RELAY_WRAPPER (a command prefix for the relay, e.g.
# `perf record -g --`).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
concurrency=${CONCURRENCY:-32}
http_port=${HTTP_PORT:-18080}
amqp_port=${AMQP_PORT:-5693}
work_prefix=mq-http-bench
source Benchmarks/lib.sh

export AMQP_PORT=$amqp_port JOBS_QUEUE=bench.http.jobs
export MEDIAQUEUE_AMQP_URL="amqp://guest:guest@127.0.0.1:$amqp_port/"
export MEDIAQUEUE_DATA_DIR="$work/data" MEDIAQUEUE_INTAKE_QUEUE=$JOBS_QUEUE MEDIAQUEUE_DEAD_LETTER_QUEUE=$JOBS_QUEUE.dead
export MEDIAQUEUE_ENABLE_NOOP=1 MEDIAQUEUE_QUEUE_MAX_SIZE=$((n + 1000)) MEDIAQUEUE_LOG_LEVEL=warning
export MEDIAQUEUE_CALLBACK_ALLOWED_NETWORKS=127.0.0.0/8 MEDIAQUEUE_CALLBACK_MAX_PER_ENDPOINT=$concurrency
url="http://127.0.0.1:$http_port/cb"

pending() { outbox_count url "$1"; }

# (1) N pending deliveries, no relay running.
cat > "$work/rule.xml" <<XML
<Request><NotifyConfig><State>On</State><Type>Url</Type><Event>TaskFinish</Event><ResultFormat>XML</ResultFormat><Url>$url</Url></NotifyConfig></Request>
XML
"$mq" queue update queue-1 --request "$work/rule.xml" >/dev/null
"$mq" serve --role intake,dispatch > "$work/fill.log" 2>&1 &
fill=$!
pids+=("$fill")
(cd "$bench" && "$py" admin.py wait-consumer --queue "$JOBS_QUEUE" --timeout 60 >/dev/null)
(cd "$bench" && "$py" producer.py --n "$n" --queue "$JOBS_QUEUE" > "$work/producer.log" 2>&1)
for _ in $(seq 1 600); do
    [ "$(pending pending)" -ge "$n" ] && break
    sleep 0.5
done
kill "$fill"; wait "$fill" 2>/dev/null || true
echo "# outbox holds $(pending pending) pending Url deliveries" >&2

# (2) MediaQueue's relay drains them into the receiver.
"$py" "$bench/http_receiver.py" --port "$http_port" --n "$n" --idle 30 > "$work/receiver-mq.log" 2>/dev/null &
receiver=$!
pids+=("$receiver")
sleep 1
${RELAY_WRAPPER:-} "$mq" serve --role relay > "$work/relay.log" 2>&1 &
relay=$!
pids+=("$relay")
wait "$receiver" || true
relay_cpu=$(ps -o times= -p "$relay" | tr -d ' ')
kill "$relay"; wait "$relay" 2>/dev/null || true
mq_line=$(tail -1 "$work/receiver-mq.log")
echo "mediaqueue: $mq_line (delivered in the store: $(pending delivered), signed, keep-alive, max $concurrency per endpoint; relay process CPU ${relay_cpu}s)"

# (3) The reference sender against a fresh receiver.
"$py" "$bench/http_receiver.py" --port "$http_port" --n "$n" --idle 30 > "$work/receiver-ref.log" 2>/dev/null &
receiver=$!
pids+=("$receiver")
sleep 1
ref_sender=$("$py" "$bench/http_ref_sender.py" --url "$url" --n "$n" --concurrency "$concurrency")
wait "$receiver" || true
ref_line=$(tail -1 "$work/receiver-ref.log")
echo "reference:  $ref_line ($ref_sender)"

rate() { sed -n 's/.*per_s=\([0-9]*\).*/\1/p' <<<"$1"; }
mq_rate=$(rate "$mq_line")
ref_rate=$(rate "$ref_line")
echo "N=$n concurrency=$concurrency mediaqueue_per_s=$mq_rate ref_per_s=$ref_rate ratio_mediaqueue_over_ref=$(awk -v a="$mq_rate" -v b="$ref_rate" 'BEGIN { printf "%.2f", a / b }')"
