#!/usr/bin/env bash
# Container networking through portlayerd in bridge mode (docs/benchmarks.md,
# docs/networking.md), every number beside its baselines from the same run:
#   throughput  MiB sent from the namespace into a TCP sink in a container
#               (busybox `nc -ll -e cat>/dev/null`), timed until the container
#               closed, median of runs:
#                 through a published port (127.0.0.1:18080, nftables DNAT in
#                 the output chain)
#                 to the container's address directly (baseline: the bridge
#                 and tap without NAT)
#                 to a process on the bridge address 10.88.0.1 (baseline: the
#                 host's own stack, no VM)
#   start       create + start to the main process running (POST /containers,
#               PUT entrypoint, PUT network, PUT state, POST commit), median
#               of runs, with a NIC (network default: tap, guest setup, /etc
#               files) and without one (network none), alternating, each
#               container removed before the next (only the sink runs beside)
# Everything runs in a network namespace this script creates (re-executing
# itself inside it) and deletes: the daemon, its bridge and nft table, the
# containers; the daemon and every container are ended on exit.
#
# Usage: scripts/bench-net.sh [MiB per transfer] [runs] [kernel-dir]
#        PL_BUILD_DIR=build/dev to use an existing build (default build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-64}
runs=${2:-5}
kdir=${3:-}

# shellcheck source=scripts/bench-netns.sh
. scripts/bench-netns.sh
bench_netns_enter bench-net "$0" kdir portlayerd pl-image pl-agent -- "$mib" "$runs"

B=$(cd "$PL_BUILD_DIR" && pwd)/bin
dir=$(mktemp -d /tmp/plbn-XXXXXX)
sock=$dir/pl.sock
dpid= spid=
cleanup() {
        set +e
        if [ -n "$dpid" ]; then
                for id in $(curl -s --max-time 30 --unix-socket "$sock" http://pl/containers | jq -r '.[].id'); do
                        curl -s --max-time 120 --unix-socket "$sock" -X DELETE "http://pl/containers/$id?force=1" >/dev/null
                done
                kill "$dpid" && wait "$dpid"
        fi
        [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
        rm -rf "$dir"
}
trap cleanup EXIT
ip link set lo up

bash tests/lib/make-oci-image.sh "$dir/oci" >/dev/null 2>&1
"$B/pl-image" --store "$dir/images" import "oci:$dir/oci:latest" localhost/busybox:latest >/dev/null 2>&1
"$B/portlayerd" --state-dir "$dir" --socket "$sock" --guest-kernel "$kdir/vmlinuz" --boot-timeout 300 \
        >"$dir/daemon.log" 2>&1 &
dpid=$!
for _ in $(seq 600); do curl -s --unix-socket "$sock" http://pl/_ping >/dev/null 2>&1 && break; sleep 0.1; done

api() { # method path [body]
        curl -sf --max-time 600 --unix-socket "$sock" -X "$1" ${3:+-d "$3"} "http://pl$2"
}

# Creates and starts a container; prints the milliseconds the calls took.
start() { # name network ports command
        local t0 t1 h
        t0=$(date +%s%N)
        h=$(api POST /containers "{\"name\": \"$1\", \"image\": \"localhost/busybox:latest\"}" | jq -r .handle)
        api PUT "/handles/$h/entrypoint" "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"$4\"]}" >/dev/null
        api PUT "/handles/$h/network" "{\"network\": \"$2\", \"ports\": $3}" >/dev/null
        api PUT "/handles/$h/state" '{"state": "running"}' >/dev/null
        api POST "/handles/$h/commit" >/dev/null
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000000))
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, host $(uname -r), guest kernel $(cat "$kdir/release"), TCG;" \
        "$(qemu-system-x86_64 --version | head -n 1); nft $(nft --version | awk '{print $2}')"

sink_cmd='printf \"#!/bin/sh\\nexec cat >/dev/null\\n\" > /sink && chmod +x /sink && exec nc -ll -p 5001 -e /sink'
start sink default '[{"host_ip": "127.0.0.1", "host_port": 18080, "container_port": 5001}]' "$sink_cmd" >/dev/null
addr=$(api GET /containers/sink | jq -r .ip_address)

# The host-side baseline: a sink on the bridge address, in the namespace.
python3 - <<'PY' &
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.88.0.1", 5002))
s.listen(4)
while True:
    c, _ = s.accept()
    while c.recv(1 << 16):
        pass
    c.close()
PY
spid=$!

measure() { # label host port
        python3 - "$1" "$2" "$3" "$mib" "$runs" <<'PY'
import socket, statistics, sys, time
label, host, port, mib, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

def connect():
    for _ in range(300):  # the sink listens again between connections
        try:
            return socket.create_connection((host, port), timeout=60)
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{label}: cannot connect to {host}:{port}")

def transfer():
    chunk = b"\0" * 65536
    s = connect()
    t0 = time.monotonic()
    for _ in range(mib * 16):
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    while s.recv(4096):
        pass  # until the sink read everything and closed
    dt = time.monotonic() - t0
    s.close()
    return mib / dt

transfer()  # warm-up
rates = sorted(transfer() for _ in range(runs))
print(f"{label:<44} {statistics.median(rates):8.1f} MiB/s  (min {rates[0]:.1f}, max {rates[-1]:.1f})")
PY
}

echo "# throughput: $mib MiB per transfer, median of $runs"
measure "published port 127.0.0.1:18080 (DNAT)" 127.0.0.1 18080
measure "container address $addr (baseline)" "$addr" 5001
measure "process on the bridge 10.88.0.1 (baseline)" 10.88.0.1 5002

echo "# start: create + start to the main process running, median of $runs (ms); each removed after"
with=() without=()
for i in $(seq "$runs"); do
        with+=("$(start "nic$i" default '[]' 'exec sleep 100000')")
        api DELETE "/containers/nic$i?force=1" >/dev/null
        without+=("$(start "nonic$i" none '[]' 'exec sleep 100000')")
        api DELETE "/containers/nonic$i?force=1" >/dev/null
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo "with a NIC (network default)              $(median "${with[@]}") ms  (${with[*]})"
echo "without a NIC (network none, baseline)    $(median "${without[@]}") ms  (${without[*]})"
