#!/usr/bin/env bash
# A private PostgreSQL 15 server on loopback, with its own port and data folder, so tests never
# touch a database they did not start. Usage: postgres-node.sh start|stop|restart|status DIR [PORT]
# (default port 5433). `start` creates the cluster on first use, with a superuser `mediaqueue`
# (password `mediaqueue`, md5 over TCP) and a database `mediaqueue`, and prints nothing; the URL
# is postgres://mediaqueue:mediaqueue@127.0.0.1:PORT/mediaqueue. The server also speaks TLS, with
# a self-signed certificate for localhost and 127.0.0.1 (DIR/server.crt, its own CA), so that
# clients' sslmode can be tested.
#
# PostgreSQL refuses to run as root: as root, the server runs as Debian's `postgres` user (the
# postgresql-15 package creates it), which then owns DIR.
set -euo pipefail

cmd=${1:?usage: postgres-node.sh start|stop|restart|status DIR [PORT]}
dir=${2:?data folder required}
port=${3:-5433}
dir=$(mkdir -p "$dir" && cd "$dir" && pwd)
bin=/usr/lib/postgresql/15/bin
data="$dir/data"

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

prepare() {
    [ -f "$data/PG_VERSION" ] && return 0
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir"; fi
    local password_file="$dir/initial-password"
    echo mediaqueue > "$password_file"
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$password_file"; fi
    as_owner "$bin/initdb" -D "$data" -U mediaqueue --pwfile="$password_file" --auth-local=trust --auth-host=md5 \
        -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    rm -f "$password_file"
    {
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = '$dir'"
        # Tests create a database per store; several test processes may connect at once.
        echo "max_connections = 300"
        echo "shared_buffers = 128MB"
        # Test data need not survive a power cut: commits return without waiting for the disk.
        # (A production server keeps the default, `on`.)
        echo "synchronous_commit = ${POSTGRES_SYNCHRONOUS_COMMIT:-off}"
        echo "ssl = on"
        echo "ssl_cert_file = '$dir/server.crt'"
        echo "ssl_key_file = '$dir/server.key'"
    } >> "$data/postgresql.conf"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$dir/server.key" -out "$dir/server.crt" >/dev/null 2>&1
    chmod 600 "$dir/server.key"
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir/server.key" "$dir/server.crt"; fi
}

start() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    prepare
    as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { tail -20 "$dir/server.log" >&2; exit 1; }
    if ! as_owner "$bin/psql" -h "$dir" -p "$port" -U mediaqueue -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'mediaqueue'" | grep -q 1; then
        as_owner "$bin/createdb" -h "$dir" -p "$port" -U mediaqueue mediaqueue
    fi
}

stop() {
    [ -f "$data/postmaster.pid" ] || return 0
    as_owner "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    status) as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1 ;;
    *) echo "usage: postgres-node.sh start|stop|restart|status DIR [PORT]" >&2; exit 2 ;;
esac
