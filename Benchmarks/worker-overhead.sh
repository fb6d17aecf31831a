#!/usr/bin/env bash
# MediaQueue's overhead around ffmpeg: one Transcode job through the whole service (AMQP
# submission, intake, SQLite, dispatch, ffprobe of the input, ffmpeg, ffprobe of the output, MD5,
# publish, completion and the confirmed TaskFinish event), against the very ffmpeg command the
# worker ran, run directly, in alternating rounds of the same run.
#
#   Benchmarks/worker-overhead.sh [ROUNDS]    # default 5 rounds of each
#
# The worker's ffmpeg is a small recording wrapper (it saves its arguments, then execs
# /usr/bin/ffmpeg), which is how the direct runs get the same command; the wrapper's shell start
# (a few ms) is counted against MediaQueue. Knobs: AMQP_PORT (5695), INPUT_SECONDS (10),
# INPUT_SIZE (1280x720), BENCH_DIR (../shared/bench, for its Python venv with pika).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
amqp_port=${AMQP_PORT:-5695}
work_prefix=mq-worker-bench
source Benchmarks/lib.sh

bucket=bench-1250000000
storage="$work/data/storage/$bucket"
mkdir -p "$storage/in" "$work/argv"
echo "# making a ${INPUT_SECONDS:-10} s ${INPUT_SIZE:-1280x720} H.264/AAC input" >&2
/usr/bin/ffmpeg -nostdin -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=duration=${INPUT_SECONDS:-10}:size=${INPUT_SIZE:-1280x720}:rate=30" \
    -f lavfi -i "sine=frequency=440:duration=${INPUT_SECONDS:-10}" \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -shortest "$storage/in/a.mp4"

cat > "$work/ffmpeg-recorder" <<SCRIPT
#!/bin/sh
printf '%s\0' "\$@" > "$work/argv/\$\$"
exec /usr/bin/ffmpeg "\$@"
SCRIPT
chmod 755 "$work/ffmpeg-recorder"

export AMQP_PORT=$amqp_port MEDIAQUEUE_AMQP_URL="amqp://guest:guest@127.0.0.1:$amqp_port/" MEDIAQUEUE_HTTP_ADDRESS=127.0.0.1:0
export MEDIAQUEUE_DATA_DIR="$work/data" MEDIAQUEUE_BUCKET=$bucket MEDIAQUEUE_LOG_LEVEL=warning
export MEDIAQUEUE_INTAKE_QUEUE=bench.worker.jobs MEDIAQUEUE_DEAD_LETTER_QUEUE=bench.worker.jobs.dead
export MEDIAQUEUE_EVENTS_EXCHANGE=job-events MEDIAQUEUE_FFMPEG="$work/ffmpeg-recorder"
"$mq" serve > "$work/serve.log" 2>&1 &
pids+=("$!")
(cd "$bench" && "$py" admin.py wait-consumer --queue bench.worker.jobs --timeout 60 >/dev/null)

"$py" Benchmarks/worker_overhead.py --amqp-url "$MEDIAQUEUE_AMQP_URL" --intake bench.worker.jobs \
    --exchange job-events --rounds "$rounds" --argv-dir "$work/argv" --storage "$storage" --scratch "$work"
