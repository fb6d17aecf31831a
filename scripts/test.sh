#!/usr/bin/env bash
# The test command: installs what is missing, starts two private RabbitMQ nodes on loopback
# (a shared one, and one that restart tests may stop) and a private PostgreSQL server, builds,
# runs the whole suite, and stops what it started, also when something fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Every step's packages first (the compose test's too, unless it is skipped), so that a missing
# one stops the run here, naming its package; then a check that the scripts call no command that
# scripts/packages.txt does not provide.
steps=(test)
[ "${MEDIAQUEUE_SKIP_COMPOSE:-0}" = 1 ] || steps+=(compose)
scripts/install-packages.sh "${steps[@]}"
scripts/check-packages.py

main_port=${MEDIAQUEUE_TEST_PORT:-5681}
fault_port=${MEDIAQUEUE_TEST_FAULT_PORT:-5682}
postgres_port=${MEDIAQUEUE_TEST_POSTGRES_PORT:-5683}
s3_port=${MEDIAQUEUE_TEST_S3_PORT:-5684}
moto_pid=""
work=$(mktemp -d /tmp/mediaqueue-test.XXXXXX)
chmod 755 "$work"
epmd_was_running=0
pgrep -x epmd >/dev/null && epmd_was_running=1

cleanup() {
    status=$?
    scripts/rabbitmq-node.sh stop "$work/main" "$main_port" || true
    FAULT_DIR="$work/fault" FAULT_PORT="$fault_port" scripts/fault-broker.sh stop || true
    scripts/postgres-node.sh stop "$work/postgres" "$postgres_port" || true
    if [ -n "$moto_pid" ]; then kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; fi
    # A failed run shows what moto's S3 server could not handle (it answers those with a bare 500).
    if [ "$status" != 0 ] && grep -q Traceback "$work/moto.log" 2>/dev/null; then
        echo "moto's S3 server logged errors:" >&2
        grep -A40 Traceback "$work/moto.log" | tail -120 >&2
    fi
    # epmd starts with the first node; stop it only if this script started it and no other
    # node (another run's broker) still uses it.
    if [ "$epmd_was_running" = 0 ] && ! epmd -names 2>/dev/null | grep -q "^name "; then
        epmd -kill >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT INT TERM

for port in "$main_port" "$fault_port" "$((fault_port + 100))" "$postgres_port" "$s3_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "port $port is in use; set MEDIAQUEUE_TEST_PORT / MEDIAQUEUE_TEST_FAULT_PORT / MEDIAQUEUE_TEST_POSTGRES_PORT / MEDIAQUEUE_TEST_S3_PORT" >&2
        exit 1
    fi
done

echo "starting test brokers on 127.0.0.1:$main_port and :$fault_port" >&2
# The long-job test needs a short consumer_timeout on the shared broker.
RABBITMQ_CONSUMER_TIMEOUT_MS=20000 scripts/rabbitmq-node.sh start "$work/main" "$main_port" &
main_pid=$!
fault_tls_port=$((fault_port + 100))
export FAULT_DIR="$work/fault" FAULT_PORT="$fault_port" FAULT_TLS_PORT="$fault_tls_port"
scripts/fault-broker.sh start &
fault_pid=$!
echo "starting the test PostgreSQL server on 127.0.0.1:$postgres_port" >&2
scripts/postgres-node.sh start "$work/postgres" "$postgres_port" &
postgres_pid=$!

# C modules may be imported only by their wrapper targets (checked while the brokers start).
leaks=$(grep -rlE '^\s*(@_implementationOnly |internal |public |package )?import (CRabbitMQ|CLibXML2|CCurl)\b' Sources \
    | grep -vE '^Sources/(MediaQueueAMQP|MediaQueueXML|MediaQueueHTTPClient)/' || true)
if [ -n "$leaks" ]; then
    echo "a C module is imported outside its wrapper target: $leaks" >&2
    exit 1
fi

# Every module a target imports is declared for it in Package.swift.
scripts/check-imports.py

swift build --build-tests 2>&1 | tee "$work/build.log" | grep -E "warning:|error:" | grep -v "^.*\.build/" || true
if grep -q "error:" "$work/build.log"; then
    tail -50 "$work/build.log" >&2
    exit 1
fi
# One at a time: `wait` on several returns only the last one's status.
for pid in "$main_pid" "$fault_pid" "$postgres_pid"; do wait "$pid"; done

# Tencent's Python SDK for the API's end-to-end test, in a virtual environment under .build.
venv=.build/test-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import qcloud_cos" 2>/dev/null \
    || "$venv/bin/pip" install -q --disable-pip-version-check cos-python-sdk-v5 >/dev/null
export MEDIAQUEUE_TEST_PYTHON="$root/$venv/bin/python"
# The standardwebhooks package verifies callback signatures in the tests (an implementation we did
# not write): without it those checks would be skipped, so the run stops instead.
"$venv/bin/python" -c "import standardwebhooks" 2>/dev/null \
    || "$venv/bin/pip" install -q --disable-pip-version-check standardwebhooks==1.1.0 >/dev/null \
    || { echo "could not install standardwebhooks (PyPI), which checks the callbacks' signatures" >&2; exit 1; }
# Selenium drives headless Chromium (Debian's chromium and chromium-driver) in the console test.
"$venv/bin/python" -c "import selenium" 2>/dev/null \
    || "$venv/bin/pip" install -q --disable-pip-version-check selenium >/dev/null
# moto's standalone S3 server, checking signatures (IAM): the S3 storage's tests run against it.
"$venv/bin/python" -c "import moto, boto3" 2>/dev/null \
    || "$venv/bin/pip" install -q --disable-pip-version-check "moto[server]" >/dev/null
echo "starting moto's S3 server on 127.0.0.1:$s3_port" >&2
INITIAL_NO_AUTH_ACTION_COUNT=3 "$venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null && break
    sleep 0.2
done
read -r s3_key_id s3_secret < <("$venv/bin/python" scripts/s3-test-key.py "http://127.0.0.1:$s3_port")
export MEDIAQUEUE_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
export MEDIAQUEUE_TEST_S3_ACCESS_KEY_ID="$s3_key_id" MEDIAQUEUE_TEST_S3_SECRET_ACCESS_KEY="$s3_secret"
if "$venv/bin/python" -c "import standardwebhooks" 2>/dev/null; then
    export MEDIAQUEUE_TEST_WEBHOOKS_PYTHON="$root/$venv/bin/python"
fi

export MEDIAQUEUE_TEST_AMQP_URL="amqp://guest:guest@127.0.0.1:$main_port/"
# A second user on the main broker, whose password only the secrets-in-logs test looks for.
amqp_password="pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
scripts/rabbitmq-node.sh add-user "$work/main" "$main_port" mediaqueue-logs "$amqp_password"
export MEDIAQUEUE_TEST_SECRET_AMQP_URL="amqp://mediaqueue-logs:$amqp_password@127.0.0.1:$main_port/"
export MEDIAQUEUE_TEST_FAULT_AMQP_URL="amqp://guest:guest@127.0.0.1:$fault_port/"
export MEDIAQUEUE_TEST_FAULT_BROKER_CTL="$root/scripts/fault-broker.sh"
export MEDIAQUEUE_TEST_FAULT_AMQPS_URL="amqps://guest:guest@localhost:$fault_tls_port/"
export MEDIAQUEUE_TEST_FAULT_CA_FILE="$work/fault/tls/ca.pem"
export MEDIAQUEUE_TEST_MEDIAQUEUE_BINARY="$root/.build/debug/mediaqueue"
export MEDIAQUEUE_TEST_DATABASE_URL="postgres://mediaqueue:mediaqueue@127.0.0.1:$postgres_port/mediaqueue"
export MEDIAQUEUE_TEST_DATABASE_CA="$work/postgres/server.crt"

# The tests' temporary files and folders (data folders, SQLite files, downloads, browser
# profiles) go into the run's work folder, which the cleanup removes: the tests leave theirs
# behind, over a hundred per run.
mkdir "$work/tmp"
TMPDIR="$work/tmp" swift test --skip-build "$@"

# ---- fuzzing: each parser under libFuzzer and AddressSanitizer for 30 s (scripts/fuzz.sh; about
# 6 minutes with its build). Developers may skip it with MEDIAQUEUE_SKIP_FUZZ=1; CI runs it.
if [ "${MEDIAQUEUE_SKIP_FUZZ:-0}" = 1 ]; then
    echo "fuzz: skipped (MEDIAQUEUE_SKIP_FUZZ=1)" >&2
else
    scripts/fuzz.sh
fi

# ---- compose test: docker-compose.yml run for real with podman (Deploy/compose-test.sh, about
# 2 minutes once its base image is cached). Developers may skip it with MEDIAQUEUE_SKIP_COMPOSE=1;
# CI (.ci/run) runs it.
if [ "${MEDIAQUEUE_SKIP_COMPOSE:-0}" = 1 ]; then
    echo "compose: skipped (MEDIAQUEUE_SKIP_COMPOSE=1)" >&2
else
    Deploy/compose-test.sh
fi
