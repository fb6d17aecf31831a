#!/usr/bin/env bash
# Control command for the fault broker that restart tests stop and start:
#   MEDIAQUEUE_TEST_FAULT_BROKER_CTL=scripts/fault-broker.sh  (the tests append stop|start|restart)
# rabbitmq-node.sh takes the action first, so this fixes the folder and port after it.
# FAULT_DIR, FAULT_PORT and FAULT_TLS_PORT override the defaults (/tmp/mq-fault, 5674, 5675).
# Before the first start it writes the node's rabbitmq.conf with a TLS listener on FAULT_TLS_PORT,
# using a test CA made in FAULT_DIR/tls (CA file: FAULT_DIR/tls/ca.pem).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${FAULT_DIR:-/tmp/mq-fault}
port=${FAULT_PORT:-5674}
tls_port=${FAULT_TLS_PORT:-5675}
if [ "${1:-}" = start ] && [ ! -f "$dir/rabbitmq.conf" ]; then
    mkdir -p "$dir"
    "$here/make-test-tls.sh" "$dir/tls"
    {
        echo "loopback_users = none"
        echo "consumer_timeout = ${RABBITMQ_TEST_CONSUMER_TIMEOUT_MS:-60000}"
        echo "listeners.ssl.default = $tls_port"
        echo "ssl_options.cacertfile = $dir/tls/ca.pem"
        echo "ssl_options.certfile = $dir/tls/server.pem"
        echo "ssl_options.keyfile = $dir/tls/server.key"
        echo "ssl_options.verify = verify_none"
        echo "ssl_options.fail_if_no_peer_cert = false"
    } > "$dir/rabbitmq.conf"
fi
exec "$here/rabbitmq-node.sh" "$1" "$dir" "$port"
