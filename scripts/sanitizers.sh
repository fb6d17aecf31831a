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
unit='MediaQueueXMLTests|MediaQueueCoreTests|MediaQueueEngineTests|MediaQueueStoreTests|MediaQueueAPITests|MediaQueueConsoleTests|MediaQueueHTTPClientTests|MediaQueueAMQPTests|MediaQueueFuzzTargetsTests'
wrappers='MediaQueueXMLTests|MediaQueueAMQPTests|MediaQueueHTTPClientTests'

# Whether ThreadSanitizer sees Synchronization.Mutex on this toolchain (see the probe's comment).
mutex_blind=0
if [[ " ${kinds[*]} " == *" thread "* ]]; then
    probe=$(mktemp -d /tmp/mediaqueue-tsan-probe.XXXXXX)
    swiftc -sanitize=thread -O scripts/tsan-mutex-probe.swift -o "$probe/probe" 2>/dev/null
    if ! TSAN_OPTIONS=halt_on_error=1 "$probe/probe" >/dev/null 2>&1; then mutex_blind=1; fi
    rm -rf "$probe"
    echo "thread sanitizer sees Synchronization.Mutex: $([ $mutex_blind = 1 ] && echo no || echo yes)" >&2
fi

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
    TSAN_OPTIONS=halt_on_error=0 ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 \
        swift test --scratch-path ".build-$kind" --sanitize="$kind" --filter "$filter" >"$log" 2>&1 || status=$?
    if ! grep -qE "Test run with [0-9]+ tests? in [0-9]+ suites? passed" "$log"; then
        # A failing test, or AddressSanitizer's report, and its stack.
        grep -E -A40 "ERROR: AddressSanitizer|✘" "$log" | head -80 >&2 || tail -40 "$log" >&2
        echo "$kind sanitizer: FAILED (exit $status; full output: $log)" >&2
        exit 1
    fi
    if [ "$kind" = thread ]; then
        # ThreadSanitizer on Linux does not see the locking of the toolchain's Synchronization.Mutex
        # (a contended lock waits in futex code built without TSan), so it reports accesses inside
        # `withLock` bodies, closures of type (sending inout State) -> sending T, even in a correctly
        # locked counter (Docs/reliability.md). Those are counted; any other report fails the run.
        symbols=$(grep "SUMMARY: ThreadSanitizer" "$log" | sed -n 's/.* in \(\$s[^ ]*\).*/\1/p' | sort -u)
        total=$(grep -c "SUMMARY: ThreadSanitizer" "$log" || true)
        others=$(for symbol in $symbols; do swift demangle --compact "$symbol"; done | grep -vE '^closure #[0-9]+ \(sending inout ' || true)
        [ "$mutex_blind" = 1 ] || others=$(for symbol in $symbols; do swift demangle --compact "$symbol"; done)
        echo "thread sanitizer: $total reports, all inside Mutex.withLock bodies unless listed below" >&2
        if [ -n "$others" ]; then
            echo "$others" >&2
            echo "thread sanitizer: FAILED (reports outside Mutex-guarded state; full output: $log)" >&2
            exit 1
        fi
        for symbol in $symbols; do swift demangle --simplified --compact "$symbol"; done | sort | uniq -c >&2
    fi
    grep -E "Test run with" "$log" | tail -1 >&2
    rm -f "$log"
    echo "$kind sanitizer: ok" >&2
done
