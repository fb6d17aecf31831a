#!/usr/bin/env bash
# The chaos suite's long form: 10,000 jobs under repeated kill -9, two broker restarts, a
# flapping receiver with 30-second hangs, SIGTERM with jobs running, a full disk, and 5,000 jobs
# while random nodes of a three-node cluster on PostgreSQL are killed. Runs those tests through
# the test command (which starts the brokers and PostgreSQL) and prints one line of figures per
# scenario at the end. The short form runs in every `scripts/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
report=$(mktemp /tmp/mediaqueue-chaos.XXXXXX)
trap 'rm -f "$report"' EXIT
MEDIAQUEUE_CHAOS_LONG=1 MEDIAQUEUE_CHAOS_REPORT="$report" MEDIAQUEUE_SKIP_COMPOSE=1 MEDIAQUEUE_SKIP_FUZZ=1 \
    scripts/test.sh --filter "ChaosTests|killingRandomNodesLosesNothing" >/dev/null 2>&1 || status=$?
cat "$report"
exit "${status:-0}"
