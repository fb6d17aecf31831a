# Shared by scale-out.sh and postgres-ab.sh, sourced from the repository root with `amqp_port`
# and `postgres_port` set: a private RabbitMQ and PostgreSQL 15 on loopback (`synchronous_commit`
# from SYNCHRONOUS_COMMIT, on by default: every commit waits for the disk, as SQLite's file is
# synced), in a work folder that an exit trap removes with them; `server`, the database server's
# URL; and `new_database`, which prints the URL of a new database.
work=$(mktemp -d /tmp/mq-postgres-bench.XXXXXX)
chmod 755 "$work"   # the servers run as their own users

postgres_bench_cleanup() {
    status=$?
    scripts/rabbitmq-node.sh stop "$work/broker" "$amqp_port" >/dev/null 2>&1 || true
    scripts/postgres-node.sh stop "$work/postgres" "$postgres_port" >/dev/null 2>&1 || true
    rm -rf "$work"
    exit $status
}
trap postgres_bench_cleanup EXIT INT TERM

echo "# starting a private broker on 127.0.0.1:$amqp_port and PostgreSQL on :$postgres_port" >&2
scripts/rabbitmq-node.sh start "$work/broker" "$amqp_port" >/dev/null
POSTGRES_SYNCHRONOUS_COMMIT=${SYNCHRONOUS_COMMIT:-on} scripts/postgres-node.sh start "$work/postgres" "$postgres_port" >/dev/null
server="postgres://mediaqueue:mediaqueue@127.0.0.1:$postgres_port"

# A new database for each run (called in a subshell, so named by the clock, not a counter).
new_database() {
    local name="bench_$(date +%s%N)"
    PGPASSWORD=mediaqueue /usr/lib/postgresql/15/bin/psql -h 127.0.0.1 -p "$postgres_port" -U mediaqueue -d mediaqueue -qc "CREATE DATABASE $name" >/dev/null
    echo "$server/$name?sslmode=disable"
}
