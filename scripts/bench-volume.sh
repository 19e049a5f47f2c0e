#!/usr/bin/env bash
# Volume and bind-mount read benchmark (docs/benchmarks.md, "Volumes and bind
# mounts"): one tree (many small files + one large file) read inside one
# guest from three places, in the same run:
#   - the container's own disk (the baseline: copied in through the API
#     before the start, so it lands on the qcow2 root disk),
#   - a bind mount of the same tree on the host (virtio-fs),
#   - a named volume holding the same tree (an ext4 raw disk on virtio-blk).
# Each read is `cat` of every file into /dev/null inside the guest, timed
# from the host around exec-sync and less the median of an exec of `true`
# (the exec's own cost), after dropping the guest's page cache (and, for the
# bind mount, the host's copy is warm: what virtio-fs costs is the FUSE round
# trips, not the host disk).
# It runs portlayerd in a network namespace of its own (tests/lib/in-netns.sh)
# on a temporary state directory and ends everything it started.
# Usage: scripts/bench-volume.sh [small-files] [small-KiB] [large-MiB] [rounds]
#        (default 2000 files of 4 KiB, 128 MiB, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PL_TEST_NETNS:-}" ]; then
        exec bash tests/lib/in-netns.sh bash "$0" "$@"
fi
nfiles=${1:-2000}
kib=${2:-4}
mib=${3:-128}
rounds=${4:-3}

cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice cmake --build build/release -j2 --target portlayerd pl-image pl-agent pl-virtiofsd-ro >/dev/null
B=$PWD/build/release/bin
kdir=$(bash scripts/guest-kernel.sh | tail -n 1)

dir=$(mktemp -d /tmp/plv-XXXXXX)
sock=$dir/pl.sock
dpid=

# qemu_pids, now, median and api (the REST API on $sock) come from here
. scripts/bench-lib.sh

cleanup() {
        set +e
        trap - EXIT INT TERM
        stop_daemon
        end_leftover_qemus bench-volume
        rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench-volume: $*" >&2; [ -f "$dir/daemon.log" ] && tail -n 20 "$dir/daemon.log" >&2; exit 1; }
range() { sort -n | awk '{a[NR]=$1} END {printf "%s-%s", a[1], a[NR]}'; }

# exec_ms SCRIPT: wall milliseconds of an exec-sync of sh -c SCRIPT (which must succeed).
exec_ms() {
        local t0 out
        t0=$(now)
        out=$(api POST /containers/bench/exec-sync "$(jq -cn --arg s "$1" '{path: "/bin/sh", args: ["-c", $s], timeout_s: 600}')") ||
                die "exec $1"
        [ "$(jq -r .exit_code <<<"$out")" = 0 ] || die "exec $1: $out"
        echo $((($(now) - t0) / 1000000))
}

# The tree: nfiles small files in 20 directories, and one large file.
tree=$dir/tree
mkdir -p "$tree/small"
for d in $(seq 0 19); do mkdir -p "$tree/small/d$d"; done
head -c $((kib * 1024)) /dev/urandom >"$dir/one"
for i in $(seq 1 "$nfiles"); do cp "$dir/one" "$tree/small/d$((i % 20))/f$i"; done
head -c $((mib << 20)) /dev/urandom >"$tree/large"
total_mib=$(du -sm --apparent-size "$tree" | cut -f1)

bash tests/lib/make-oci-image.sh "$dir/oci" >/dev/null 2>&1
"$B/pl-image" --store "$dir/images" import "oci:$dir/oci:latest" localhost/busybox:latest >/dev/null
"$B/portlayerd" --state-dir "$dir" --socket "$sock" --guest-kernel "$kdir/vmlinuz" --boot-timeout 300 \
        >"$dir/daemon.log" 2>&1 &
dpid=$!
for _ in $(seq 1 600); do
        curl -s --unix-socket "$sock" http://pl/_ping >/dev/null 2>&1 && break
        kill -0 "$dpid" 2>/dev/null || die "portlayerd exited"
        sleep 0.1
done

# The volume, filled by a first container, then the benchmark's container
# with the tree copied onto its own disk, the bind mount and the volume.
vol_mib=$(((total_mib * 3 / 2 + 64) / 4 * 4))
api POST /volumes "{\"name\": \"benchvol\", \"size\": \"${vol_mib}M\"}" >/dev/null || die "create volume"
tar -C "$dir" -cf "$dir/tree.tar" tree
start() { # NAME MOUNTS [ARCHIVE-DIR]
        local out h
        out=$(api POST /containers "{\"name\": \"$1\", \"image\": \"localhost/busybox:latest\"}") || return 1
        h=$(jq -r .handle <<<"$out")
        api PUT "/handles/$h/entrypoint" '{"path": "/bin/sleep", "args": ["1000000"]}' >/dev/null
        api PUT "/handles/$h/limits" '{"memory_mb": 512}' >/dev/null
        api PUT "/handles/$h/mounts" "$2" >/dev/null
        if [ -n "${3:-}" ]; then
                curl -sS --fail --unix-socket "$sock" -X PUT -T "$dir/tree.tar" "http://pl/handles/$h/archive?path=$3" >/dev/null
        fi
        api PUT "/handles/$h/state" '{"state": "running"}' >/dev/null
        api POST "/handles/$h/commit" >/dev/null
}
start fill '[{"volume": "benchvol", "target": "/vol"}]' /vol || die "start fill"
api DELETE "/containers/fill?force=1" >/dev/null
start bench "[{\"source\": \"$tree\", \"target\": \"/bind\", \"read_only\": true},
              {\"volume\": \"benchvol\", \"target\": \"/vol\", \"read_only\": true}]" /root || die "start bench"

drop='sync; echo 3 > /proc/sys/vm/drop_caches'
load0=$(cut -d' ' -f1-3 /proc/loadavg)
exec_ms "$drop" >/dev/null
base=$(for _ in $(seq 1 5); do exec_ms true; done | median)
declare -A small large
for place in root/tree bind vol/tree; do
        small[$place]= large[$place]=
done
for r in $(seq 1 "$rounds"); do
        for place in root/tree bind vol/tree; do
                exec_ms "$drop" >/dev/null
                t=$(exec_ms "find /$place/small -type f | xargs cat >/dev/null")
                small[$place]+="$((t - base)) "
                exec_ms "$drop" >/dev/null
                t=$(exec_ms "cat /$place/large >/dev/null")
                large[$place]+="$((t - base)) "
        done
done

echo "bench-volume: $nfiles files of $kib KiB + one file of $mib MiB ($total_mib MiB), $rounds rounds, TCG guest, 512 MiB"
echo "exec of true (subtracted): $base ms; load before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-28s %24s %22s %20s\n' "where" "small files, ms (range)" "large file, ms (range)" "large file (MiB/s)"
for place in root/tree bind vol/tree; do
        s=$(tr ' ' '\n' <<<"${small[$place]}" | grep . | median)
        l=$(tr ' ' '\n' <<<"${large[$place]}" | grep . | median)
        case $place in
        root/tree) what="own disk (qcow2, baseline)" ;;
        bind) what="bind mount (virtio-fs)" ;;
        vol/tree) what="named volume (virtio-blk)" ;;
        esac
        sr=$(tr ' ' '\n' <<<"${small[$place]}" | grep . | range)
        lr=$(tr ' ' '\n' <<<"${large[$place]}" | grep . | range)
        printf '%-28s %24s %22s %20s\n' "$what" "$s ($sr)" "$l ($lr)" "$(awk -v m="$mib" -v t="$l" 'BEGIN {printf "%.0f", (t > 0 ? m * 1000 / t : 0)}')"
done
