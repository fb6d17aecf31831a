#!/usr/bin/env bash
# Benchmarks/postgres-ab.sh ROUNDS N LABEL=BINARY... -- two or more builds of `mediaqueue`
# compared on PostgreSQL: the end-to-end benchmark (`mediaqueue-e2e-bench`, N Noop jobs) with one
# node and with two, each build in turn, ROUNDS times, each run on a new database, on the
# private servers of postgres-servers.sh. Copy each build's binary aside first (e.g. to
# /tmp/mq-before and /tmp/mq-after): a build replaces .build/release/mediaqueue.
#
# Knobs: AMQP_PORT (5698), POSTGRES_PORT (5699), NODES ("1 2"), SYNCHRONOUS_COMMIT (on).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 3 ]; then
    echo "usage: $0 ROUNDS N LABEL=BINARY [LABEL=BINARY...]" >&2
    exit 2
fi
rounds=$1 jobs=$2
shift 2
amqp_port=${AMQP_PORT:-5698}
postgres_port=${POSTGRES_PORT:-5699}
scripts/install-packages.sh bench
swift build -c release --product mediaqueue-e2e-bench 2>&1 | grep -E "error|warning: " | grep -v "\.build/\|swift-distributed-tracing" || true
for build in "$@"; do
    [ -x "${build#*=}" ] || { echo "not an executable: ${build#*=}" >&2; exit 2; }
done
source Benchmarks/postgres-servers.sh
for round in $(seq 1 "$rounds"); do
    for build in "$@"; do
        label=${build%%=*} binary=${build#*=}
        for nodes in ${NODES:-1 2}; do
            result=$(.build/release/mediaqueue-e2e-bench --amqp "amqp://guest:guest@127.0.0.1:$amqp_port/" --jobs "$jobs" \
                --mediaqueue "$binary" --nodes "$nodes" --database "$(new_database)" 2> >(grep -v '^mediaqueue: ' >&2))
            echo "round=$round $label $result"
        done
    done
done
