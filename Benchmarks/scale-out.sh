#!/usr/bin/env bash
# Scale-out in one run, on private servers (RabbitMQ and PostgreSQL 15 on loopback):
#   1. end to end (Noop jobs published, stored, run and announced) with 1 node on SQLite, then 1,
#      2 and 3 nodes on PostgreSQL (each on a new database): jobs/s, latency, CPU per job;
#   2. claims per second on PostgreSQL with 1,000, 10,000 and 100,000 jobs waiting (the dispatch
#      benchmark: every job claimed, run and finished by the real dispatcher).
# Prints the ratios the scale-out issue sets targets for. Figures go in Docs/performance.md.
#
#   Benchmarks/scale-out.sh [N]      # N jobs per end-to-end run (default 20000)
#
# Knobs: AMQP_PORT (5696), POSTGRES_PORT (5697), SYNCHRONOUS_COMMIT (on: PostgreSQL waits for
# the disk at each commit, as SQLite's file is synced; off is faster and loses the last commits
# of a crash), CLAIMS (jobs measured per backlog, default 2000), SKIP_BUILD=1 (use the release
# binaries as they are).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
amqp_port=${AMQP_PORT:-5696}
postgres_port=${POSTGRES_PORT:-5697}
scripts/install-packages.sh bench
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    for product in mediaqueue mediaqueue-e2e-bench mediaqueue-dispatch-bench; do
        swift build -c release --product "$product" 2>&1 | grep -E "error|warning: " | grep -v "\.build/\|swift-distributed-tracing" || true
    done
fi
source Benchmarks/postgres-servers.sh
e2e() {
    .build/release/mediaqueue-e2e-bench --amqp "amqp://guest:guest@127.0.0.1:$amqp_port/" --jobs "$n" \
        --mediaqueue .build/release/mediaqueue "$@" 2> >(grep -v '^mediaqueue: ' >&2)
}
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }

sqlite=$(e2e --nodes 1); echo "$sqlite"
pg1=$(e2e --nodes 1 --database "$(new_database)"); echo "$pg1"
pg2=$(e2e --nodes 2 --database "$(new_database)"); echo "$pg2"
pg3=$(e2e --nodes 3 --database "$(new_database)"); echo "$pg3"
claims=$(.build/release/mediaqueue-dispatch-bench "${CLAIMS:-2000}" --databases "$(new_database),$(new_database),$(new_database)")
echo "$claims"

awk -v s="$(field jobs_per_s "$sqlite")" -v p1="$(field jobs_per_s "$pg1")" -v p2="$(field jobs_per_s "$pg2")" \
    -v p3="$(field jobs_per_s "$pg3")" 'BEGIN {
    printf "ratio_postgres_1_node_over_sqlite=%.2f (target >= 0.5)\n", p1 / s
    printf "ratio_postgres_2_nodes_over_1=%.2f ratio_postgres_3_nodes_over_1=%.2f (target: never below 1.0)\n", p2 / p1, p3 / p1
}'
grep -o "ratio_backlog_100000_over_1000=[0-9.]*" <<<"$claims" | sed 's/$/ (target >= 0.8)/'
