#!/usr/bin/env bash
# Requests per second of the REST API with wrk (Debian's `wrk`): GET /jobs/<id> and POST /jobs,
# against a release build serving only the API role, anonymous access on, a throwaway data dir.
# Usage: Benchmarks/api/run.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
connections=${2:-32}
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }
swift build -c release --product mediaqueue >/dev/null
data=$(mktemp -d)
port=18081
MEDIAQUEUE_DATA_DIR=$data MEDIAQUEUE_HTTP_ADDRESS=127.0.0.1:$port MEDIAQUEUE_ANONYMOUS=1 \
    MEDIAQUEUE_LOG_LEVEL=warning MEDIAQUEUE_QUEUE_MAX_SIZE=100000000 MEDIAQUEUE_ROLES=api \
    .build/release/mediaqueue serve >"$data/serve.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
base=http://127.0.0.1:$port/media-1250000000
id=$(curl -s -X POST --data-binary @examples/mediainfo.xml "$base/jobs" | grep -o '<JobId>[^<]*' | cut -d'>' -f2)
echo "GET /jobs/<id>:"
wrk -t2 -c"$connections" -d"${seconds}s" "$base/jobs/$id" | grep -E "Latency|Requests/sec|Non-2xx"
echo "POST /jobs:"
wrk -t2 -c"$connections" -d"${seconds}s" -s Benchmarks/api/post-jobs.lua "$base/jobs" | grep -E "Latency|Requests/sec|Non-2xx"
