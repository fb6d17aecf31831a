#!/usr/bin/env bash
# Stops, starts or restarts the fault broker of scripts/test.sh (FAULT_DIR, FAULT_PORT).
exec "$(dirname "$0")/rabbitmq-node.sh" "$1" "${FAULT_DIR:-/tmp/mq-fault}" "${FAULT_PORT:-5674}"
