#!/usr/bin/env bash
# The run command: installs what is missing, starts a local RabbitMQ on loopback if none answers
# at MEDIAQUEUE_AMQP_URL, builds MediaQueue and runs `mediaqueue serve` with SQLite state and
# local storage under MEDIAQUEUE_DATA_DIR (default ./.data). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-packages.sh run

export MEDIAQUEUE_AMQP_URL=${MEDIAQUEUE_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
export MEDIAQUEUE_DATA_DIR=${MEDIAQUEUE_DATA_DIR:-$PWD/.data}
mkdir -p "$MEDIAQUEUE_DATA_DIR"

# host:port of the URL (defaults as in AMQP).
hostport=${MEDIAQUEUE_AMQP_URL#*://}
hostport=${hostport#*@}
hostport=${hostport%%/*}
host=${hostport%%:*}
port=5672
[ "$hostport" != "$host" ] && port=${hostport##*:}

# The broker runs as the rabbitmq user, so its folder must be one that user can reach.
rabbit_dir=${MEDIAQUEUE_RABBITMQ_DIR:-/var/tmp/mediaqueue-rabbitmq-$port}
started_broker=0
if ! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
    case "$host" in
        127.0.0.1|localhost) ;;
        *) echo "no broker answers at $host:$port" >&2; exit 1 ;;
    esac
    echo "starting a local RabbitMQ on 127.0.0.1:$port (data in $rabbit_dir)" >&2
    RABBITMQ_NODE_BASENAME=mediaqueue scripts/rabbitmq-node.sh start "$rabbit_dir" "$port"
    started_broker=1
fi

stop_broker() {
    if [ "$started_broker" = 1 ]; then
        RABBITMQ_NODE_BASENAME=mediaqueue scripts/rabbitmq-node.sh stop "$rabbit_dir" "$port"
    fi
}
trap stop_broker EXIT

swift build -c release --product mediaqueue
.build/release/mediaqueue serve "$@" &
server=$!
trap 'kill -TERM $server 2>/dev/null' INT TERM
status=0
wait $server || status=$?
# Ctrl-C or a TERM to this script ends the first wait early (status over 128), while the server
# stops on the TERM passed on to it: its own exit status is the one to give.
if [ "$status" -gt 128 ]; then
    status=0
    wait $server 2>/dev/null || status=$?
fi
exit "$status"
