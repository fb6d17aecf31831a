#!/usr/bin/env bash
# A private RabbitMQ node on loopback, with its own ports and data folder, so tests never touch
# a broker they did not start. Usage: rabbitmq-node.sh start|stop|restart|status DIR [AMQP_PORT],
# rabbitmq-node.sh add-user DIR AMQP_PORT NAME PASSWORD (a user with every permission on "/"), or
# rabbitmq-node.sh stall-quorum-starts|resume-quorum-starts|block-publishers|unblock-publishers|
# wait-blocked-publisher|freeze|thaw
# DIR [AMQP_PORT] (faults for tests).
# The node name and ports are derived from AMQP_PORT (default 5673); DIR holds mnesia, logs and pid.
set -euo pipefail

cmd=${1:?usage: rabbitmq-node.sh start|stop|restart|status DIR [AMQP_PORT]}
dir=${2:?data folder required}
port=${3:-5673}
dir=$(mkdir -p "$dir" && cd "$dir" && pwd)

export RABBITMQ_NODENAME="${RABBITMQ_NODE_BASENAME:-mqtest${port}}@localhost"
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT="$port"
export RABBITMQ_DIST_PORT=$((port + 20001))
export RABBITMQ_MNESIA_BASE="$dir/mnesia"
export RABBITMQ_LOG_BASE="$dir/log"
export RABBITMQ_PID_FILE="$dir/pid"
export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
export RABBITMQ_CONFIG_FILE="$dir/rabbitmq"

# Debian's commands in /usr/sbin run the node as the rabbitmq user when called by root, and
# refuse any other user; another user runs the scripts they wrap, as itself, on its own folder.
if [ "$(id -u)" -eq 0 ]; then
    server=rabbitmq-server ctl=rabbitmqctl
else
    server=/usr/lib/rabbitmq/bin/rabbitmq-server ctl=/usr/lib/rabbitmq/bin/rabbitmqctl
fi

prepare() {
    [ -f "$dir/enabled_plugins" ] || echo '[].' > "$dir/enabled_plugins"
    if [ ! -f "$dir/rabbitmq.conf" ]; then
        {
            # Tests may shorten consumer_timeout so that a long-job test can outlive it.
            if [ -n "${RABBITMQ_CONSUMER_TIMEOUT_MS:-}" ]; then
                echo "consumer_timeout = $RABBITMQ_CONSUMER_TIMEOUT_MS"
            fi
        } > "$dir/rabbitmq.conf"
    fi
    # The Debian wrappers switch to the rabbitmq user when run as root.
    if [ "$(id -u)" -eq 0 ] && id rabbitmq >/dev/null 2>&1; then chown -R rabbitmq:rabbitmq "$dir"; fi
}

start() {
    # Already up: a second `rabbitmq-server -detached` would fail, but only after overwriting the
    # pid file, and `rabbitmqctl wait` would then wait for a process that is gone.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    prepare
    "$server" -detached >/dev/null 2>&1 || true
    "$ctl" -n "$RABBITMQ_NODENAME" wait "$dir/pid" --timeout 90 >/dev/null
}

stop() {
    "$ctl" -n "$RABBITMQ_NODENAME" stop >/dev/null 2>&1 || true
    # Wait until the port is free so that a restart does not race the old node.
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || return 0
        sleep 0.1
    done
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    status) "$ctl" -n "$RABBITMQ_NODENAME" status >/dev/null 2>&1 ;;
    add-user)
        "$ctl" -n "$RABBITMQ_NODENAME" add_user "${4:?user name required}" "${5:?password required}" >/dev/null
        "$ctl" -n "$RABBITMQ_NODENAME" set_permissions -p / "$4" ".*" ".*" ".*" >/dev/null
        ;;
    # Holds Ra's metadata store, where a new quorum queue's member records its vote, so the queue
    # cannot elect a leader: RabbitMQ gives up (after 10 s on one node) and closes the declaring connection
    # (541 cluster_not_formed), as on a node too loaded to start one in time. Released by
    # resume-quorum-starts, or after two minutes.
    stall-quorum-starts)
        hold='Meta = whereis(ra_log_meta), true = is_pid(Meta), Holder = spawn(fun() -> erlang:suspend_process(Meta), receive resume -> ok after 120000 -> ok end, erlang:resume_process(Meta) end)'
        "$ctl" -n "$RABBITMQ_NODENAME" eval "$hold, true = register(mediaqueue_test_stall, Holder), ok." >/dev/null
        ;;
    resume-quorum-starts)
        release='case whereis(mediaqueue_test_stall) of undefined -> ok; Holder -> Holder ! resume, ok end.'
        "$ctl" -n "$RABBITMQ_NODENAME" eval "$release" >/dev/null
        ;;
    # A memory alarm at once (high watermark 0): the node blocks every connection that publishes
    # and confirms nothing until unblock-publishers restores RabbitMQ's default watermark.
    block-publishers) "$ctl" -n "$RABBITMQ_NODENAME" set_vm_memory_high_watermark 0 >/dev/null ;;
    unblock-publishers) "$ctl" -n "$RABBITMQ_NODENAME" set_vm_memory_high_watermark 0.4 >/dev/null ;;
    # Returns once a connection is blocked (it published under block-publishers and waits for
    # the alarm to clear); fails after about a minute without one.
    wait-blocked-publisher)
        for _ in $(seq 1 120); do
            if "$ctl" -n "$RABBITMQ_NODENAME" list_connections state --silent 2>/dev/null | grep -qx blocked; then exit 0; fi
            sleep 0.5
        done
        echo "no connection was blocked" >&2
        exit 1
        ;;
    # The node stops (SIGSTOP) with its sockets open: the kernel still takes what clients send,
    # but nothing answers, as with a hung broker or a network that drops every packet.
    freeze) kill -STOP "$(cat "$dir/pid")" ;;
    thaw) kill -CONT "$(cat "$dir/pid")" ;;
    *) echo "unknown command: $cmd" >&2; exit 2 ;;
esac
