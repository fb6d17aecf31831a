#!/usr/bin/env bash
# Opt-in (a build of its own for each sanitizer, about 10 minutes each on two cores): the unit
# tests under ThreadSanitizer, and the tests of the C wrappers (libxml2, rabbitmq-c, libcurl)
# under AddressSanitizer. Needs the test brokers: run it through the test command's environment,
#   MEDIAQUEUE_SKIP_COMPOSE=1 MEDIAQUEUE_SKIP_FUZZ=1 scripts/test.sh --filter NONE && scripts/sanitizers.sh
# or with MEDIAQUEUE_TEST_AMQP_URL pointing at a broker. Docs/reliability.md reports the last run.
#   scripts/sanitizers.sh [thread|address]...
set -euo pipefail
cd "$(dirname "$0")/.."
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(thread address)

# The unit-test targets: everything but the integration tests (real serve processes, ffmpeg
# runs of minutes under a sanitizer).
unit='MediaQueueXMLTests|MediaQueueCoreTests|MediaQueueEngineTests|MediaQueueSQLiteTests|MediaQueueAPITests|MediaQueueConsoleTests|MediaQueueHTTPClientTests|MediaQueueAMQPTests|MediaQueueFuzzTargetsTests'
wrappers='MediaQueueXMLTests|MediaQueueAMQPTests|MediaQueueHTTPClientTests'

for kind in "${kinds[@]}"; do
    case "$kind" in
        thread) filter=$unit ;;
        address) filter=$wrappers ;;
        *) echo "unknown sanitizer '$kind' (thread or address)" >&2; exit 2 ;;
    esac
    echo "== $kind sanitizer: $filter" >&2
    # halt_on_error: the first report fails the run, with its stack.
    log=$(mktemp /tmp/mediaqueue-sanitizer.XXXXXX)
    status=0
    TSAN_OPTIONS=halt_on_error=1 ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 \
        swift test --scratch-path ".build-$kind" --sanitize="$kind" --filter "$filter" >"$log" 2>&1 || status=$?
    if [ "$status" != 0 ]; then
        # The sanitizer's report (or the failing test) and its stack.
        grep -E -A40 "WARNING: ThreadSanitizer|ERROR: AddressSanitizer|✘" "$log" | head -80 >&2 || tail -40 "$log" >&2
        echo "$kind sanitizer: FAILED (full output: $log)" >&2
        exit "$status"
    fi
    grep -E "Test run with|Executed" "$log" | tail -2 >&2
    rm -f "$log"
    echo "$kind sanitizer: ok" >&2
done
