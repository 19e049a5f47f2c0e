#!/usr/bin/env bash
# The Docker front end's benchmarks, each beside a baseline measured in the
# same run (docs/benchmarks.md):
#   1 `docker run --rm IMAGE true` wall time (create, attach, wait, start,
#     exit, auto-remove: the CLI returns once the container is gone) against
#     a raw QEMU boot of the same kernel, initramfs and image disk, to /init
#     and to the agent's answer (scripts/bench-lib.sh, as bench-daemon.sh),
#     and against the same lifecycle through the port layer's REST API with
#     curl (create, entrypoint /bin/true, state running, commit, wait,
#     delete): what the Docker front end adds
#   2 `docker exec C true` round trip on a running container against the
#     port layer's exec-sync (curl POST /containers/{id}/exec-sync) and
#     against `docker version` (the CLI's own start-up and one request)
# Run it inside a network namespace of its own, as the tests do:
#   tests/lib/in-netns.sh scripts/bench-docker.sh [runs] [execs]
#   runs    docker runs and raw boots in 1, interleaved (default 5)
#   execs   exec round trips of each kind in 2 (default 20)
# Everything it starts (daemon, containers, QEMUs) is ended on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
execs=${2:-20}
command -v docker >/dev/null || { echo "bench-docker: needs the docker CLI" >&2; exit 2; }

cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice cmake --build build/release -j2 --target portlayerd pl-image pl-agent pl-agent-cli >/dev/null
B=$PWD/build/release/bin
kdir=$(bash scripts/guest-kernel.sh | tail -n 1)
kernel=$kdir/vmlinuz

dir=$(mktemp -d /tmp/pld-XXXXXX)
sock=$dir/pl.sock
dsock=$dir/docker.sock
dpid=
raw_pids=()
. scripts/bench-lib.sh
export DOCKER_CONFIG=$dir/docker-config DOCKER_HOST=unix://$dsock
IMG=localhost/busybox:latest

cleanup() {
        set +e
        trap - EXIT INT TERM
        if [ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null; then
                for id in $(docker ps -a -q 2>/dev/null); do docker rm -f "$id" >/dev/null 2>&1; done
                kill -TERM "$dpid"
                wait "$dpid" 2>/dev/null
        fi
        raw_stop_all
        end_leftover_qemus bench-docker
        rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "bench-docker: $*" >&2; [ -f "$dir/daemon.log" ] && tail -n 20 "$dir/daemon.log" >&2; exit 1; }
# api_run NAME: docker run --rm's lifecycle through the REST API.
api_run() {
        local out h id
        out=$(api POST /containers "{\"name\": \"$1\", \"image\": \"$IMG\"}") || return 1
        [[ $out =~ \"handle\":\ *\"([^\"]+)\" ]] && h=${BASH_REMATCH[1]}
        [[ $out =~ \"id\":\ *\"([^\"]+)\" ]] && id=${BASH_REMATCH[1]}
        api PUT "/handles/$h/entrypoint" '{"path": "/bin/true", "args": []}' >/dev/null || return 1
        api PUT "/handles/$h/state" '{"state": "running"}' >/dev/null || return 1
        api POST "/handles/$h/commit" >/dev/null || return 1
        api POST "/containers/$id/wait" >/dev/null || return 1
        api DELETE "/containers/$id" >/dev/null
}

# --- set-up: image, daemon, what the raw baseline boots ---
bash tests/lib/make-oci-image.sh "$dir/oci" >/dev/null
"$B/pl-image" --store "$dir/images" import "oci:$dir/oci:latest" "$IMG" >/dev/null
disk=$(find "$dir/images" -name disk.ext4 | head -n 1)
[ -f "$disk" ] || die "no disk.ext4 in the image store"
"$B/portlayerd" --state-dir "$dir" --socket "$sock" --docker-socket "$dsock" --guest-kernel "$kernel" \
        --boot-timeout 300 >"$dir/daemon.log" 2>&1 &
dpid=$!
for _ in $(seq 600); do
        [ -S "$dsock" ] && docker version >/dev/null 2>&1 && break
        kill -0 "$dpid" 2>/dev/null || die "portlayerd exited at start-up"
        sleep 0.1
done
initrd=$(sed -n 's/.*initramfs \(\/[^ ]*\).*/\1/p' "$dir/daemon.log" | head -n 1)
[ -f "$initrd" ] || die "no initramfs path in the daemon's log"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, host $(uname -r), guest kernel $(cat "$kdir/release")," \
        "TCG, docker CLI $(docker version --format '{{.Client.Version}}'), load $(load)"

# Warm-up, not timed (page cache, libvirt's capability probe).
docker run --rm "$IMG" true || die "warm-up run"
raw_warm_up

# --- 1: docker run --rm IMAGE true against raw boots, interleaved ---
echo "== 1: docker run --rm $IMG true, against raw QEMU and the REST API (ms); load $(load)"
run=() raw_init=() raw_agent=() apirun=()
for i in $(seq "$runs"); do
        raw_timed_boot "1-$i"

        t0=$(now)
        api_run "api-$i" || die "REST API run $i"
        apirun+=("$(ms_since "$t0")")

        t0=$(now)
        docker run --rm "$IMG" true || die "docker run $i"
        run+=("$(ms_since "$t0")")
        echo "run $i: raw to /init ${raw_init[-1]}, raw to agent ${raw_agent[-1]}, REST API ${apirun[-1]}," \
                "docker run --rm ${run[-1]}, ratio to raw /init $(echo "scale=2; ${run[-1]} / ${raw_init[-1]}" | bc)," \
                "to the REST API $(echo "scale=2; ${run[-1]} / ${apirun[-1]}" | bc)"
done
[ -z "$(docker ps -a -q)" ] || die "a --rm container was left"

# --- 2: exec round trips on one running container ---
echo "== 2: exec round trip (ms); load $(load)"
id=$(docker run -d "$IMG" 'sleep 100000') || die "docker run -d"
dexec=() sync=() dver=()
for i in $(seq "$execs"); do
        t0=$(now)
        docker exec "$id" true || die "docker exec"
        dexec+=("$(ms_since "$t0")")
        t0=$(now)
        out=$(curl -sS --unix-socket "$sock" -X POST -d '{"path": "/bin/true"}' "http://pl/containers/$id/exec-sync")
        sync+=("$(ms_since "$t0")")
        [[ $out == *'"exit_code": 0'* || $out == *'"exit_code":0'* ]] || die "exec-sync: $out"
        t0=$(now)
        docker version >/dev/null
        dver+=("$(ms_since "$t0")")
done
docker rm -f "$id" >/dev/null

echo "== summary (medians, range in brackets); load at the end $(load)"
echo "1 raw QEMU -> /init (ms):          $(printf '%s\n' "${raw_init[@]}" | stats)"
echo "1 raw QEMU -> agent answers (ms):  $(printf '%s\n' "${raw_agent[@]}" | stats)"
echo "1 REST API create..delete (ms):     $(printf '%s\n' "${apirun[@]}" | stats)"
echo "1 docker run --rm true (ms):       $(printf '%s\n' "${run[@]}" | stats)"
echo "1 ratio docker run / raw /init:    $(echo "scale=2; $(printf '%s\n' "${run[@]}" | median) / $(printf '%s\n' "${raw_init[@]}" | median)" | bc)"
echo "1 ratio docker run / REST API:     $(echo "scale=2; $(printf '%s\n' "${run[@]}" | median) / $(printf '%s\n' "${apirun[@]}" | median)" | bc)"
echo "2 docker exec C true (ms):         $(printf '%s\n' "${dexec[@]}" | stats)"
echo "2 API exec-sync /bin/true (ms):    $(printf '%s\n' "${sync[@]}" | stats)"
echo "2 docker version (ms):             $(printf '%s\n' "${dver[@]}" | stats)"
