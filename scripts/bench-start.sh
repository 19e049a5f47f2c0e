#!/usr/bin/env bash
# Issue 13's benchmarks through the daemon's REST API, in one run
# (docs/templates.md, docs/benchmarks.md):
#   1 create + start to the main process running: the template path (a warm
#     pool guest) against the cold path (cold_start: true) against a raw QEMU
#     boot of the same kernel, initramfs and image disk (to /init and to the
#     agent's answer), interleaved
#   2 N starts at once, both ways (the pool holds N guests for it), against N
#     raw boots at once
#   3 host memory of idle busybox containers (main process `sleep`), both
#     ways, at 10 and at M: the QEMUs' PSS as the daemon reports it (GET /vms,
#     the pool's own spare guests not counted) and `free` before and after;
#     then the same 10 cold containers on a daemon with the density settings
#     off (--free-page-reporting false --tcg-tb-cache 0, the earlier
#     defaults), and 10 cold on Debian's cloud kernel with the density
#     settings on and off (off + Debian's kernel: where issue 13 started);
#     and how many idle containers fit in MemAvailable with a margin left
# Everything runs on Unix sockets under a temporary directory; everything the
# script starts is ended on exit, also on failure.
# PL_BENCH_KSM=1 adds, after the M cold containers, four minutes of KSM
# (turned on for the run, the host's settings put back after).
# Usage: scripts/bench-start.sh [runs] [parallel] [many]
#   runs      interleaved single starts in 1 (default 5)
#   parallel  starts at once in 2 and the pool's size (default 10, at most 16)
#   many      idle containers in 3 (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
par=${2:-10}
many=${3:-50}
margin_mib=${PL_BENCH_MARGIN_MIB:-2048}
[ "$par" -ge 1 ] && [ "$par" -le 16 ] || { echo "bench-start: parallel must be 1-16 (the pool's limit)" >&2; exit 2; }

build=${PL_BUILD:-build/release} # PL_BUILD=build/dev reuses a development build
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice cmake --build "$build" -j2 --target portlayerd pl-image pl-agent pl-agent-cli >/dev/null
B=$PWD/$build/bin
kdir=$(bash scripts/guest-kernel.sh | tail -n 1)
kernel=$kdir/vmlinuz

dir=$(mktemp -d /tmp/plst-XXXXXX)
sock=$dir/pl.sock
dpid=
raw_pids=()
. scripts/bench-lib.sh

cleanup() {
        set +e
        trap - EXIT INT TERM
        stop_daemon
        if [ -n "${ksm_saved:-}" ]; then
                echo "${ksm_saved#* }" >/sys/kernel/mm/ksm/pages_to_scan
                echo "${ksm_saved% *}" >/sys/kernel/mm/ksm/run
        fi
        for p in "${raw_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        end_leftover_qemus bench-start
        rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench-start: $*" >&2; [ -f "$dir/daemon.log" ] && tail -n 20 "$dir/daemon.log" >&2; exit 1; }

# start_daemon ARGS...: a daemon on $dir (the same state across restarts)
start_daemon() {
        "$B/portlayerd" --state-dir "$dir" --socket "$sock" --guest-kernel "$kernel" --boot-timeout 300 \
                --log-level debug "$@" >>"$dir/daemon.log" 2>&1 &
        dpid=$!
        for _ in $(seq 600); do
                [ -S "$sock" ] && curl -s --unix-socket "$sock" http://pl/_ping >/dev/null && return 0
                kill -0 "$dpid" 2>/dev/null || die "portlayerd exited at start-up"
                sleep 0.1
        done
        die "portlayerd did not answer"
}

# Pool guests ready now, as the daemon reports them (GET /version).
pool_ready() { api GET /version | jq -r '.pool.ready'; }
wait_pool() { # N: until N pool guests are ready (10 min at most)
        local t0
        t0=$(now)
        until [ "$(pool_ready)" -ge "$1" ]; do
                [ "$(ms_since "$t0")" -lt 600000 ] || die "the pool did not reach $1 ready guests in 10 min"
                sleep 0.2
        done
}

# start_container NAME COLD: create + entrypoint (sleep) + limits
# (cold_start) + state running + commit; prints the id and the start path.
start_container() {
        local out h id
        out=$(api POST /containers "{\"name\": \"$1\", \"image\": \"localhost/busybox:latest\"}") || return 1
        [[ $out =~ \"handle\":\ *\"([^\"]+)\" ]] && h=${BASH_REMATCH[1]}
        [[ $out =~ \"id\":\ *\"([^\"]+)\" ]] && id=${BASH_REMATCH[1]}
        api PUT "/handles/$h/entrypoint" '{"path": "/bin/sleep", "args": ["1000000"]}' >/dev/null || return 1
        api PUT "/handles/$h/limits" "{\"cold_start\": $2}" >/dev/null || return 1
        api PUT "/handles/$h/state" '{"state": "running"}' >/dev/null || return 1
        out=$(api POST "/handles/$h/commit") || return 1
        [[ $out =~ \"state\":\ *\"running\" ]] || { echo "bench-start: $1: $out" >&2; return 1; }
        echo "$id $(api GET "/containers/$id" | jq -r .start_path)"
}
remove_all() {
        local id
        for id in $(api GET /containers | jq -r '.[].id'); do bg api DELETE "/containers/$id?force=1"; done
        bg_wait || die "removing containers"
}
bg_pids=()
bg() { "$@" >/dev/null & bg_pids+=($!); }
bg_wait() {
        local p fails=0
        for p in "${bg_pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
        bg_pids=()
        return "$fails"
}
# Sum of the containers' QEMU PSS (KiB) as GET /vms reports it, and their count.
vms_pss() { api GET /vms | jq -r '[.[] | select(.pss_kib > 0) | .pss_kib] | "\(add // 0) \(length)"'; }
used_mib() { free -m | awk '/^Mem:/ {print $3}'; }
avail_mib() { awk '/MemAvailable/ {print int($2 / 1024)}' /proc/meminfo; }

# start_many N COLD PREFIX: N containers; cold ones 5 at a time, template
# ones one by one, each after a pool guest is ready, so every one takes the
# fast path. Prints how many started which way.
start_many() {
        local i
        for i in $(seq "$1"); do
                if [ "$2" = false ]; then
                        wait_pool 1
                        start_container "$3-$i" false >>"$dir/$3.ids" || die "start $3-$i"
                        continue
                fi
                start_container "$3-$i" true >>"$dir/$3.ids" &
                bg_pids+=($!)
                [ $((i % 5)) -eq 0 ] || [ "$i" -eq "$1" ] || continue
                bg_wait || die "$? cold starts of $3 failed"
        done
        awk '{print $2}' "$dir/$3.ids" | sort | uniq -c | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2}'
}

# measure_idle N COLD PREFIX LABEL: start N idle containers, let them settle,
# report the PSS (mean per container) and free's growth.
measure_idle() {
        local before after pss n paths
        remove_all
        sleep 5
        before=$(used_mib)
        paths=$(start_many "$1" "$2" "$3")
        [ "$pool_size" -eq 0 ] || wait_pool "$pool_size" # the pool as full as before
        sleep 20 # boot leftovers reported back, page cache settled
        read -r pss n <<<"$(vms_pss)"
        after=$(used_mib)
        [ "$n" -eq "$1" ] || die "$n QEMUs reported for $1 containers"
        echo "$4: $1 idle containers ($paths): PSS sum $((pss / 1024)) MiB, $((pss / $1)) KiB each;" \
                "free: used $before -> $after MiB (+$(((after - before) / $1)) MiB each, pool guests included)"
        last_each_kib=$((pss / $1))
}

# --- set-up ---
bash tests/lib/make-oci-image.sh "$dir/oci" >/dev/null
"$B/pl-image" --store "$dir/images" import "oci:$dir/oci:latest" localhost/busybox:latest >/dev/null
disk=$(find "$dir/images" -name disk.ext4 | head -n 1)
[ -f "$disk" ] || die "no disk.ext4 in the image store"
pool_size=$par
start_daemon --pool-size "$par"
initrd=$(sed -n 's/.*initramfs \(\/[^ ]*\).*/\1/p' "$dir/daemon.log" | head -n 1)
[ -f "$initrd" ] || die "no initramfs path in the daemon's log"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)," \
        "host $(uname -r), guest kernel $(cat "$kdir/release"), TCG, 256 MiB 1 vCPU guests, pool of $par, load $(load)"
wait_pool "$par"
start_container warm-up true >/dev/null || die "warm-up"
remove_all
raw_warm_up

# --- 1 ---
echo "== 1: create + start to the main process running (ms); load $(load)"
tmpl=() cold=() raw_init=() raw_agent=()
for i in $(seq "$runs"); do
        raw_timed_boot "1-$i"

        t0=$(now)
        out=$(start_container "cold-$i" true) || die "start cold-$i"
        cold+=("$(ms_since "$t0")")
        [ "${out#* }" = cold ] || die "cold-$i started by the ${out#* } path"

        wait_pool "$par"
        t0=$(now)
        out=$(start_container "tmpl-$i" false) || die "start tmpl-$i"
        tmpl+=("$(ms_since "$t0")")
        [ "${out#* }" = template ] || die "tmpl-$i started by the ${out#* } path"
        remove_all
        echo "run $i: raw to /init ${raw_init[-1]}, raw to agent ${raw_agent[-1]}, cold ${cold[-1]}," \
                "template ${tmpl[-1]} ($(echo "scale=2; ${tmpl[-1]} / ${raw_agent[-1]}" | bc)x the raw boot)"
done
echo "raw boot to /init:  $(printf '%s\n' "${raw_init[@]}" | stats)"
echo "raw boot to agent:  $(printf '%s\n' "${raw_agent[@]}" | stats)"
echo "cold start:         $(printf '%s\n' "${cold[@]}" | stats)"
echo "template start:     $(printf '%s\n' "${tmpl[@]}" | stats)"
echo "template / raw boot to agent: $(echo "scale=2; $(printf '%s\n' "${tmpl[@]}" | median) / $(printf '%s\n' "${raw_agent[@]}" | median)" | bc)"

# --- 2 ---
echo "== 2: $par starts at once (ms); load $(load)"
t0=$(now)
for i in $(seq "$par"); do raw_start "p-$i"; done
for i in $(seq "$par"); do raw_wait_agent "p-$i"; done
echo "raw: $par QEMUs at once, all agents answered: $(ms_since "$t0")"
raw_stop_all
for way in true false; do
        [ "$way" = false ] && wait_pool "$par"
        t0=$(now)
        for i in $(seq "$par"); do
                start_container "par-$way-$i" "$way" >"$dir/par-$way-$i.out" &
                bg_pids+=($!)
        done
        bg_wait || die "$? of $par parallel starts failed"
        took=$(ms_since "$t0")
        echo "$([ "$way" = true ] && echo cold || echo template): $par at once $took" \
                "($(cat "$dir"/par-"$way"-*.out | awk '{print $2}' | sort | uniq -c | tr -s ' ' | tr '\n' ',' | sed 's/,$//'))"
        remove_all
done

# --- 3 ---
echo "== 3: idle containers' host memory; load $(load)"
measure_idle 10 true m10c "cold, density on"
measure_idle 10 false m10t "template, density on"
measure_idle "$many" true "m${many}c" "cold, density on"
on_each=$last_each_kib
if [ "${PL_BENCH_KSM:-0}" = 1 ]; then
        # Same-page merging across the idle QEMUs (docs/templates.md: only
        # between tenants that trust each other); the host's settings are
        # put back on exit.
        ksm_saved="$(cat /sys/kernel/mm/ksm/run) $(cat /sys/kernel/mm/ksm/pages_to_scan)"
        echo 2000 >/sys/kernel/mm/ksm/pages_to_scan
        echo 1 >/sys/kernel/mm/ksm/run
        for _ in $(seq 24); do sleep 10; done # ksmd's passes over 50 x 256 MiB
        read -r pss n <<<"$(vms_pss)"
        echo "cold, density on, KSM after 240 s: $many idle containers: PSS sum $((pss / 1024)) MiB," \
                "$((pss / many)) KiB each; pages_sharing $(cat /sys/kernel/mm/ksm/pages_sharing)," \
                "ksmd CPU $(ps -o times= -C ksmd | tr -d ' ') s in all"
        ksm_each=$((pss / many))
        read -r r p <<<"$ksm_saved"
        echo "$p" >/sys/kernel/mm/ksm/pages_to_scan
        echo "$r" >/sys/kernel/mm/ksm/run
        ksm_saved=
fi
measure_idle "$many" false "m${many}t" "template, density on"
remove_all
stop_daemon
pool_size=0
start_daemon --pool-size 0 --free-page-reporting false --tcg-tb-cache 0
measure_idle 10 true m10off "cold, density off (no balloon, QEMU's 1 GiB tb-cache)"
off_each=$last_each_kib
remove_all
stop_daemon
# The same 10 on Debian's cloud kernel (modules, mitigations), density on and
# off: the last is where issue 13 started.
dkernel=$(bash scripts/fetch-kernel.sh | tail -n 1)/vmlinuz
if [ "$dkernel" != "$kernel" ]; then
        kernel=$dkernel
        start_daemon --pool-size 0
        measure_idle 10 true m10deb "cold, density on, Debian's kernel"
        deb_each=$last_each_kib
        remove_all
        stop_daemon
        start_daemon --pool-size 0 --free-page-reporting false --tcg-tb-cache 0
        measure_idle 10 true m10deboff "cold, density off, Debian's kernel"
        deb_off_each=$last_each_kib
        remove_all
fi
stop_daemon
avail=$(avail_mib)
fit() { echo $(((avail - margin_mib) * 1024 / $1)); }
echo "fit: MemAvailable $avail MiB with nothing running, $margin_mib MiB kept back:" \
        "$(fit "$on_each") idle containers at $on_each KiB each (density on)," \
        "$(fit "$off_each") at $off_each KiB each (off)${ksm_each:+, $(fit "$ksm_each") at $ksm_each KiB each (density on + KSM)}" \
        "${deb_each:+; Debian's kernel: $(fit "$deb_each") at $deb_each KiB (on), $(fit "$deb_off_each") at $deb_off_each KiB (off);" \
        "density on with our kernel fits $(echo "scale=2; $deb_off_each / $on_each" | bc)x as many as Debian's with density off}"
