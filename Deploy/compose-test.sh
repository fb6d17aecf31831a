#!/usr/bin/env bash
# The compose test: runs docker-compose.yml for real with podman (no Docker engine and no image
# registry here; Docs/compose.md has the details), a Snapshot job end to end, then takes everything down.
#
#   Deploy/compose-test.sh          (scripts/test.sh calls it after the Swift tests)
#
# 1. installs the compose step's Debian packages (scripts/packages.txt: podman, netavark, iptables,
#    runc, debootstrap, ...) and podman-compose + pika (a venv in .build/compose);
# 2. uses a private podman store for this run (images, containers, volumes, networks), so image
#    names are exactly the compose file's and nothing of anyone else's is touched;
# 3. makes debian:bookworm-slim with debootstrap (rootfs tarball cached in .build/compose),
#    builds the rabbitmq:3.13-management stand-in (Deploy/test/rabbitmq), and MediaQueue's
#    runtime-prebuilt stage from the host-built release binary;
# 4. brings the stack up with docker-compose.yml + Deploy/test/compose.override.yml on free
#    loopback ports, RabbitMQ first and healthy, then the rest, and waits for health;
# 5. from the host, as the README's first job: a video made in the data volume, a subscriber on
#    job-events, examples/snapshot.xml published on the AMQP port, its TaskFinish event, the
#    snapshot files in the volume, the example receiver's log line;
# 6. scale-out: down, then up again with docker-compose.scale-out.yml (a postgres:15 stand-in,
#    Deploy/test/postgres, and a second node): both nodes consume the intake queue, one job runs
#    end to end and PostgreSQL holds it as Success;
# 7. always (trap): compose down with volumes, removes the images, deletes the private store.
#
# The last line is `compose: ok`, or `compose: FAILED: <reason>` with exit status 1.
# MEDIAQUEUE_COMPOSE_KEEP=1 leaves the stack running for a look (remove it by hand afterwards:
# the script prints how).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=$root/.build/compose
mkdir -p "$cache"
started=$(date +%s)
# The script's own stdout and stderr, kept as fds 3 and 4: a signal's trap runs inside whatever
# command was running, with that command's redirections (often to a log file).
exec 3>&1 4>&2
log() { echo "compose: [$(( $(date +%s) - started ))s] $*" >&4; }

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -E"

reason=""
work=""
project="mqcompose$$"
compose_started=0
fail() { reason=$*; exit 1; }

# ---- cleanup: everything this run made lives in $work (a private podman store) -------------
cleanup() {
    status=$?
    trap - EXIT INT TERM
    set +e
    if [ -n "$work" ] && [ -d "$work" ]; then
        if [ "$status" -ne 0 ] && [ "$compose_started" = 1 ]; then
            log "last logs of the stack:"
            compose logs --tail 40 2>&1 | tail -150 >&4
        fi
        if [ "${MEDIAQUEUE_COMPOSE_KEEP:-0}" = 1 ]; then
            log "kept: CONTAINERS_CONF=$work/containers.conf CONTAINERS_STORAGE_CONF=$work/storage.conf podman ps;" \
                "remove with: $0 --remove $work $project"
        else
            echo "== $(date -Is) $project $work" >>"$cache/cleanup.log"
            remove_all "$work" "$project" >>"$cache/cleanup.log" 2>&1 \
                || log "cleanup was incomplete, see $cache/cleanup.log"
        fi
    fi
    if [ "$status" -eq 0 ]; then
        log "done"
        echo "compose: ok" >&3
    else
        echo "compose: FAILED: ${reason:-exit status $status (see the output above)}" >&3
    fi
    exit "$status"
}

podman_private() {
    CONTAINERS_CONF="$1/containers.conf" CONTAINERS_STORAGE_CONF="$1/storage.conf" $sudo "$(type -P podman)" "${@:2}"
}

# Stops and removes this run's containers, volumes, network and images, then its store.
remove_all() {
    local dir=$1 name=$2
    # Refuse to touch a store that is not this run's private one.
    local graph
    graph=$(podman_private "$dir" info --format '{{.Store.GraphRoot}}' 2>/dev/null) || graph=""
    if [ "$graph" != "$dir/storage" ]; then
        echo "not a private store ($graph); leaving it alone" >&2
        return 1
    fi
    if [ -x "$cache/venv/bin/podman-compose" ]; then
        CONTAINERS_CONF="$dir/containers.conf" CONTAINERS_STORAGE_CONF="$dir/storage.conf" $sudo \
            "$cache/venv/bin/podman-compose" --project-name "$name" \
            -f "$root/docker-compose.yml" -f "$root/docker-compose.scale-out.yml" \
            -f "$root/Deploy/test/compose.override.yml" -f "$root/Deploy/test/compose.scale-out.override.yml" down -v -t 10
    fi
    local ids
    ids=$(podman_private "$dir" ps -aq --filter "label=io.podman.compose.project=$name")
    [ -z "$ids" ] || podman_private "$dir" rm -f -t 5 $ids
    ids=$(podman_private "$dir" volume ls -q --filter "label=io.podman.compose.project=$name")
    [ -z "$ids" ] || podman_private "$dir" volume rm -f $ids
    podman_private "$dir" network rm -f "${name}_default" 2>/dev/null
    ids=$(podman_private "$dir" images -q)
    [ -z "$ids" ] || podman_private "$dir" rmi -f $ids
    # Nothing of this store may stay mounted before its folder goes.
    findmnt -rn -o TARGET | grep -F "$dir/" | sort -r | while read -r target; do $sudo umount "$target"; done
    $sudo rm -rf "$dir"
}

if [ "${1:-}" = "--remove" ]; then
    remove_all "$2" "$3"
    exit
fi

trap cleanup EXIT
trap 'reason="interrupted"; exit 130' INT TERM

# ---- 1. tools -----------------------------------------------------------------------------
log "packages"
# scripts/packages.txt lists them (step compose): podman and its network backend (netavark runs
# iptables; aardvark-dns gives compose networks their service-name DNS), runc, debootstrap.
scripts/install-packages.sh compose || fail "the compose step's packages are not all installed (see above)"
requirements="podman-compose==1.6.0 pika==1.3.2"
if [ "$(cat "$cache/venv/requirements" 2>/dev/null)" != "$requirements" ]; then
    log "$requirements into $cache/venv"
    rm -rf "$cache/venv"
    python3 -m venv "$cache/venv" || fail "python3 -m venv failed"
    "$cache/venv/bin/pip" install -q $requirements || fail "pip install $requirements failed"
    echo "$requirements" >"$cache/venv/requirements"
fi

# ---- 2. a private podman store for this run ----------------------------------------------
work=$(mktemp -d /var/tmp/mediaqueue-compose.XXXXXX)
chmod 755 "$work"
# The containers.conf of ../shared/notes/containers.md (runc, cgroupfs, no default ulimits), plus
# this run's own state folders.
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$work/libpod"
[network]
network_backend = "netavark"
network_config_dir = "$work/networks"
EOF
cat >"$work/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$work/storage"
runroot = "$work/run"
EOF
export CONTAINERS_CONF="$work/containers.conf" CONTAINERS_STORAGE_CONF="$work/storage.conf"
podman() { $sudo "$(type -P podman)" "$@"; }
compose() {
    $sudo "$cache/venv/bin/podman-compose" --project-name "$project" \
        -f "$root/docker-compose.yml" -f "$root/Deploy/test/compose.override.yml" "$@"
}
[ "$(podman info --format '{{.Store.GraphRoot}}')" = "$work/storage" ] || fail "podman does not use the private store $work/storage"

# ---- 3. images ----------------------------------------------------------------------------
rootfs_tar=$cache/debian-bookworm-minbase.tar.gz
# Refreshed monthly, so that the base packages do not age too far behind the mirror.
if [ -f "$rootfs_tar" ] && [ -n "$(find "$rootfs_tar" -mtime +30)" ]; then rm -f "$rootfs_tar"; fi
if [ ! -f "$rootfs_tar" ]; then
    log "debootstrap bookworm (cached as $rootfs_tar)"
    $sudo debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap failed"; }
    # Sources as in the official image: bookworm, bookworm-updates, bookworm-security.
    $sudo rm -f "$work/rootfs/etc/apt/sources.list"
    $sudo tee "$work/rootfs/etc/apt/sources.list.d/debian.sources" >/dev/null <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    $sudo sh -c "rm -rf '$work'/rootfs/var/cache/apt/archives/*.deb '$work'/rootfs/var/lib/apt/lists/* \
        && tar -C '$work/rootfs' -czf '$rootfs_tar.tmp' . && mv '$rootfs_tar.tmp' '$rootfs_tar'" \
        || fail "could not write $rootfs_tar"
    $sudo rm -rf "$work/rootfs"
fi
log "base image debian:bookworm-slim from $rootfs_tar"
podman import -q "$rootfs_tar" docker.io/library/debian:bookworm-slim >/dev/null || fail "podman import of the base image failed"

log "release build of mediaqueue (reused when up to date)"
swift build -c release --static-swift-stdlib --product mediaqueue >"$work/swift-build.log" 2>&1 \
    || { tail -30 "$work/swift-build.log" >&2; fail "swift build -c release failed"; }
binary=$(swift build -c release --static-swift-stdlib --product mediaqueue --show-bin-path)/mediaqueue
# The one file of .build that .dockerignore lets into the build context.
install -D -m 755 "$binary" "$cache/image/mediaqueue"

log "images: rabbitmq:3.13-management stand-in, mediaqueue (runtime-prebuilt), callback receiver"
# Image builds use the host's network: they only fetch packages, and the private store's default
# bridge would take podman's default subnet, which the machine's own podman0/cni-podman0 may hold.
podman build -q --network=host -t docker.io/library/rabbitmq:3.13-management Deploy/test/rabbitmq >"$work/build-rabbitmq.log" 2>&1 \
    || { tail -30 "$work/build-rabbitmq.log" >&2; fail "building the RabbitMQ stand-in image failed"; }
compose --podman-build-args=--network=host build >"$work/build-compose.log" 2>&1 \
    || { tail -40 "$work/build-compose.log" >&2; fail "podman-compose build failed"; }

# ---- 4. up --------------------------------------------------------------------------------
free_port() { "$cache/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export MEDIAQUEUE_COMPOSE_AMQP_PORT=$(free_port) MEDIAQUEUE_COMPOSE_MANAGEMENT_PORT=$(free_port) MEDIAQUEUE_COMPOSE_API_PORT=$(free_port)
container() { podman ps -q --filter "label=io.podman.compose.project=$project" --filter "label=com.docker.compose.service=$1"; }
# podman 4.3 runs no healthcheck timers without systemd, and podman-compose skips
# `condition: service_healthy` before podman 4.6: run the compose file's healthchecks here.
wait_healthy() {
    local service=$1 seconds=$2 id
    local until=$(( $(date +%s) + seconds ))
    while :; do
        id=$(container "$service")
        if [ -n "$id" ] && podman healthcheck run "$id" >/dev/null 2>&1; then return 0; fi
        [ "$(date +%s)" -lt "$until" ] || fail "$service is not healthy after ${seconds}s"
        sleep 2
    done
}

log "up: rabbitmq (AMQP on 127.0.0.1:$MEDIAQUEUE_COMPOSE_AMQP_PORT)"
compose_started=1
compose up -d rabbitmq >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; fail "podman-compose up rabbitmq failed"; }
wait_healthy rabbitmq 600
log "up: mediaqueue, callback-receiver"
compose up -d >>"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; fail "podman-compose up failed"; }
wait_healthy mediaqueue 600
mq=$(container mediaqueue)
receiver=$(container callback-receiver)
[ -n "$receiver" ] || fail "the callback receiver is not running"

# ---- 5. the README's first job --------------------------------------------------------------
log "first job: a video in the data volume (the README's Docker step 1)"
podman exec "$mq" sh -c 'mkdir -p storage/media-1250000000/input && ffmpeg -loglevel error \
    -f lavfi -i testsrc=duration=5:size=640x360:rate=25 -pix_fmt yuv420p storage/media-1250000000/input/a.mp4' \
    || fail "could not make the input video in the mediaqueue container"

log "first job: publish examples/snapshot.xml on 127.0.0.1:$MEDIAQUEUE_COMPOSE_AMQP_PORT, wait for TaskFinish"
job_id=$("$cache/venv/bin/python" Deploy/test/first-job.py \
    "amqp://guest:guest@127.0.0.1:$MEDIAQUEUE_COMPOSE_AMQP_PORT/" examples/snapshot.xml 600) \
    || fail "the Snapshot job did not finish with a TaskFinish event (see above)"

volume=$(podman volume inspect --format '{{.Mountpoint}}' "${project}_mediaqueue-data") || fail "no volume ${project}_mediaqueue-data"
for n in 0 1 2; do
    file=$volume/storage/media-1250000000/output/snap-$n.jpg
    [ -s "$file" ] && [ "$(head -c 2 "$file" | od -An -tx1 | tr -d ' ')" = ffd8 ] \
        || fail "snapshot $file is missing or not a JPEG"
done
log "first job: $job_id, snap-0.jpg snap-1.jpg snap-2.jpg in the volume"

# The README's Docker step 3 as written: the CLI inside the container, the example baked in.
log "first job, README's Docker step 3: mediaqueue submit in the container"
cli_job=$(podman exec "$mq" mediaqueue submit --request /usr/share/mediaqueue/examples/snapshot.xml) \
    || fail "\`mediaqueue submit\` in the mediaqueue container failed"
[[ "$cli_job" =~ ^j[0-9a-f]{32}$ ]] || fail "\`mediaqueue submit\` printed '$cli_job', not a JobId"

for id in "$job_id" "$cli_job"; do
    until=$(( $(date +%s) + 300 ))
    until podman logs "$receiver" 2>&1 | grep -q "callback: .*event=TaskFinish job=$id"; do
        [ "$(date +%s)" -lt "$until" ] || fail "the example callback receiver logged no TaskFinish for $id"
        sleep 1
    done
    log "callback receiver: $(podman logs "$receiver" 2>&1 | grep "job=$id" | head -1)"
done

# ---- 6. scale-out: PostgreSQL and two nodes (docker-compose.scale-out.yml) -----------------
log "scale-out: down, then the postgres:15 stand-in image"
compose down -v -t 10 >>"$work/up.log" 2>&1 || { tail -20 "$work/up.log" >&2; fail "podman-compose down failed"; }
podman build -q --network=host -t docker.io/library/postgres:15 Deploy/test/postgres >"$work/build-postgres.log" 2>&1 \
    || { tail -30 "$work/build-postgres.log" >&2; fail "building the PostgreSQL stand-in image failed"; }
compose() {
    $sudo "$cache/venv/bin/podman-compose" --project-name "$project" \
        -f "$root/docker-compose.yml" -f "$root/docker-compose.scale-out.yml" \
        -f "$root/Deploy/test/compose.override.yml" -f "$root/Deploy/test/compose.scale-out.override.yml" "$@"
}
export MEDIAQUEUE_COMPOSE_API_PORT_2=$(free_port)
log "scale-out: up rabbitmq, postgres"
compose up -d rabbitmq postgres >>"$work/up.log" 2>&1 || { tail -20 "$work/up.log" >&2; fail "podman-compose up rabbitmq postgres failed"; }
wait_healthy rabbitmq 600
wait_healthy postgres 300
log "scale-out: up mediaqueue, mediaqueue-2, callback-receiver"
compose up -d >>"$work/up.log" 2>&1 || { tail -20 "$work/up.log" >&2; fail "podman-compose up (scale-out) failed"; }
wait_healthy mediaqueue 600
wait_healthy mediaqueue-2 600
second=$(container mediaqueue-2)
podman exec "$second" sh -c 'mkdir -p storage/media-1250000000/input && ffmpeg -loglevel error \
    -f lavfi -i testsrc=duration=5:size=640x360:rate=25 -pix_fmt yuv420p storage/media-1250000000/input/a.mp4' \
    || fail "could not make the input video in the mediaqueue-2 container"
until=$(( $(date +%s) + 300 ))
until [ "$(podman exec "$(container rabbitmq)" rabbitmqctl -q list_queues name consumers 2>/dev/null | awk '$1 == "mediaqueue.jobs" {print $2}')" = 2 ]; do
    [ "$(date +%s)" -lt "$until" ] || fail "the two nodes do not both consume mediaqueue.jobs"
    sleep 2
done
log "scale-out: both nodes consume mediaqueue.jobs; publish examples/snapshot.xml"
scaled_job=$("$cache/venv/bin/python" Deploy/test/first-job.py \
    "amqp://guest:guest@127.0.0.1:$MEDIAQUEUE_COMPOSE_AMQP_PORT/" examples/snapshot.xml 600) \
    || fail "the Snapshot job did not finish with a TaskFinish event on the scale-out stack (see above)"
state=$(podman exec "$(container postgres)" psql -U mediaqueue -d mediaqueue -tAc "SELECT state FROM jobs WHERE id = '$scaled_job'") \
    || fail "could not read the job from PostgreSQL"
[ "$state" = Success ] || fail "PostgreSQL holds job $scaled_job as '$state', not Success"
volume=$(podman volume inspect --format '{{.Mountpoint}}' "${project}_mediaqueue-data") || fail "no volume ${project}_mediaqueue-data"
[ -s "$volume/storage/media-1250000000/output/snap-0.jpg" ] || fail "the scale-out job's snapshot is not in the shared volume"
log "scale-out: $scaled_job ran on the two-node stack and is Success in PostgreSQL"
