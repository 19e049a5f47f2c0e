#!/usr/bin/env bash
# portlayerd benchmarks, each beside a baseline measured in the same run
# (docs/benchmarks.md):
#   1 create + start to the main process running (POST /containers, PUT
#     entrypoint, PUT state, POST commit), against a raw QEMU boot of the same
#     kernel + initramfs + image disk to /init ("PID 1 started") and to the
#     agent's answer; plus the cost of four curl calls (GET /_ping)
#   2 N starts at once: wall time against N x one start (from 1) and against
#     N raw QEMU boots at once
#   3 host memory per idle container (256 MiB, main process `sleep`): QEMU's
#     PSS plus the daemon's PSS growth / containers, at 1, 5 and 10
#     containers; baseline: the PSS of idle raw QEMUs (1, and N from 2)
#   4 requests/s of GET /containers/{id} (running and created containers)
#     against nginx serving a file of the same bytes, with tests/bench/
#     bench-http.c (keep-alive connections on the Unix socket)
# Everything runs on Unix sockets under a temporary directory; everything the
# script starts (daemon, containers, QEMUs, nginx) is ended on exit, also on
# failure.
# Usage: scripts/bench-daemon.sh [runs] [parallel] [rps-seconds] [rounds]
#   runs         sequential starts and raw boots in 1 (default 5)
#   parallel     starts at once in 2 (default 10)
#   rps-seconds  length of each load run in 4 (default 5)
#   rounds       repetitions of 2, 3 and 4 (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
par=${2:-10}
secs=${3:-5}
rounds=${4:-3}
[ "$par" -le 10 ] || { echo "bench-daemon: at most 10 at once (2 cores, ~12 VMs)" >&2; exit 2; }

cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice cmake --build build/release -j2 --target portlayerd pl-image pl-agent pl-agent-cli bench-http >/dev/null
B=$PWD/build/release/bin
kdir=$(bash scripts/guest-kernel.sh | tail -n 1)
kernel=$kdir/vmlinuz

# Short: libvirt's embedded root puts socket paths under the state directory.
dir=$(mktemp -d /tmp/plb-XXXXXX)
chmod 711 "$dir" # nginx's workers (nobody) reach www/ below
sock=$dir/pl.sock
dpid= npid=
raw_pids=()
. scripts/bench-lib.sh


cleanup() {
        set +e
        trap - EXIT INT TERM
        stop_daemon
        for p in "${raw_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        [ -n "$npid" ] && kill "$npid" 2>/dev/null && wait "$npid" 2>/dev/null
        end_leftover_qemus bench-daemon
        rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench-daemon: $*" >&2; [ -f "$dir/daemon.log" ] && tail -n 20 "$dir/daemon.log" >&2; exit 1; }


# start_container NAME [STATE]: create + entrypoint (sleep) + state + commit;
# prints the id. Without STATE the container is only created.
start_container() {
        local out h id
        out=$(api POST /containers "{\"name\": \"$1\", \"image\": \"localhost/busybox:latest\"}") || return 1
        [[ $out =~ \"handle\":\ *\"([^\"]+)\" ]] && h=${BASH_REMATCH[1]}
        [[ $out =~ \"id\":\ *\"([^\"]+)\" ]] && id=${BASH_REMATCH[1]}
        api PUT "/handles/$h/entrypoint" '{"path": "/bin/sleep", "args": ["1000000"]}' >/dev/null || return 1
        if [ -n "${2:-}" ]; then
                api PUT "/handles/$h/state" "{\"state\": \"$2\"}" >/dev/null || return 1
        fi
        out=$(api POST "/handles/$h/commit") || return 1
        [ -z "${2:-}" ] || [[ $out =~ \"state\":\ *\"$2\" ]] || { echo "bench-daemon: $1: $out" >&2; return 1; }
        echo "$id"
}
remove_container() { api DELETE "/containers/$1?force=1" >/dev/null; }

# bg CMD...: runs CMD in the background, remembered in bg_pids; bg_wait
# waits for all of them and fails when any failed.
bg_pids=()
bg() { "$@" & bg_pids+=($!); }
bg_wait() {
        local p fails=0
        for p in "${bg_pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
        bg_pids=()
        return "$fails"
}

# --- set-up: image, daemon, and what the raw baseline boots ---
bash tests/lib/make-oci-image.sh "$dir/oci" >/dev/null
"$B/pl-image" --store "$dir/images" import "oci:$dir/oci:latest" localhost/busybox:latest >/dev/null
disk=$(ls "$dir"/images/images/*/disk.ext4 2>/dev/null | head -n 1)
[ -f "$disk" ] || disk=$(find "$dir/images" -name disk.ext4 | head -n 1)
[ -f "$disk" ] || die "no disk.ext4 in the image store"
"$B/portlayerd" --state-dir "$dir" --socket "$sock" --guest-kernel "$kernel" --boot-timeout 300 \
        >"$dir/daemon.log" 2>&1 &
dpid=$!
for _ in $(seq 600); do
        [ -S "$sock" ] && curl -s --unix-socket "$sock" http://pl/_ping >/dev/null && break
        kill -0 "$dpid" 2>/dev/null || die "portlayerd exited at start-up"
        sleep 0.1
done
initrd=$(sed -n 's/.*initramfs \(\/[^ ]*\).*/\1/p' "$dir/daemon.log" | head -n 1)
[ -f "$initrd" ] || die "no initramfs path in the daemon's log"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)," \
        "host $(uname -r), guest kernel $(cat "$kdir/release"), TCG, load $(load)"
echo "# initramfs $initrd, disk $disk"

# Warm-up, not timed: the first start after the daemon's start-up shares the
# machine with libvirt's QEMU capabilities probe, and the first raw boot reads
# QEMU, kernel and initramfs into the page cache.
id=$(start_container warm-up running) || die "start warm-up"
remove_container "$id" || die "remove warm-up"
raw_warm_up

# --- 1: one start against one raw boot, interleaved ---
echo "== 1: create + start to main process running, against raw QEMU (ms); load $(load)"
one=() raw_init=() raw_agent=() ping4=()
for i in $(seq "$runs"); do
        raw_timed_boot "1-$i"

        t0=$(now)
        id=$(start_container "one-$i" running) || die "start one-$i"
        one+=("$(ms_since "$t0")")
        remove_container "$id" || die "remove one-$i"

        t0=$(now)
        for _ in 1 2 3 4; do api GET /_ping >/dev/null; done
        ping4+=("$(ms_since "$t0")")
        echo "run $i: raw to /init ${raw_init[-1]}, raw to agent ${raw_agent[-1]}, daemon start ${one[-1]}," \
                "ratio $(echo "scale=2; ${one[-1]} / ${raw_init[-1]}" | bc), 4 x curl ${ping4[-1]}"
done
one_med=$(printf '%s\n' "${one[@]}" | median)

# --- 2 and 3: N at once, and memory ---
echo "== 2: $par at once (ms) and 3: memory (PSS, KiB)"
guest_ram=() par_d=() par_raw_init=() par_raw_agent=() raw1_pss=() rawn_pss=()
declare -A per_c qemu_c daemon_c
for r in $(seq "$rounds"); do
        echo "-- round $r, load $(load)"
        # raw: one idle QEMU's PSS, then N booted at once
        raw_start "m-$r"
        raw_wait_agent "m-$r"
        sleep 10
        raw1_pss+=("$(pss_kb "${raw_pids[0]}")")
        raw_stop_all
        t0=$(now)
        for i in $(seq "$par"); do raw_start "p-$r-$i"; done
        for i in $(seq "$par"); do raw_wait_init "p-$r-$i"; done
        par_raw_init+=("$(ms_since "$t0")")
        for i in $(seq "$par"); do raw_wait_agent "p-$r-$i"; done
        par_raw_agent+=("$(ms_since "$t0")")
        sleep 10
        sum=0
        for p in "${raw_pids[@]}"; do sum=$((sum + $(pss_kb "$p"))); done
        rawn_pss+=("$((sum / par))")
        raw_stop_all
        echo "raw: 1 idle PSS ${raw1_pss[-1]}; $par at once: all at /init ${par_raw_init[-1]}," \
                "all agents ${par_raw_agent[-1]}, idle PSS each ${rawn_pss[-1]}"

        # the daemon: N starts at once
        t0=$(now)
        for i in $(seq "$par"); do bg start_container "par-$r-$i" running >"$dir/par-$r-$i.id"; done
        bg_wait || die "$? of $par parallel starts failed"
        par_d+=("$(ms_since "$t0")")
        echo "daemon: $par starts at once ${par_d[-1]} (${par} x one start: $((par * one_med)))"
        for i in $(seq "$par"); do bg remove_container "$(cat "$dir/par-$r-$i.id")"; done
        bg_wait || die "removing the parallel containers"

        # memory: 1, 5, 10 idle containers
        sleep 2
        d0=$(pss_kb "$dpid")
        n=0
        for target in 1 5 10; do
                for i in $(seq $((n + 1)) "$target"); do bg start_container "mem-$r-$i" running >"$dir/mem-$r-$i.id"; done
                bg_wait || die "a memory start failed"
                n=$target
                sleep 10
                sum=0 count=0
                for p in $(qemu_pids); do sum=$((sum + $(pss_kb "$p"))); count=$((count + 1)); done
                [ "$count" -eq "$n" ] || die "$count QEMUs for $n containers"
                grow=$(($(pss_kb "$dpid") - d0))
                qemu_c[$target]+=" $((sum / n))"
                daemon_c[$target]+=" $((grow / n))"
                per_c[$target]+=" $(((sum + grow) / n))"
                echo "$n idle: QEMU PSS each $((sum / n)), daemon $d0 + $grow (per container $((grow / n)))," \
                        "total per container $(((sum + grow) / n)), load $(load)"
        done
        # Where one QEMU's PSS is: its largest mappings (size:PSS KiB); the
        # guest's RAM is the one of exactly 262144 KiB.
        pids=($(qemu_pids))
        top=$(awk '/^[0-9a-f]+-[0-9a-f]+ / {name=$6} /^Size:/ {size=$2} /^Pss:/ {print $2, size, name}' \
                "/proc/${pids[0]}/smaps" | sort -rn | awk 'NR <= 4 {printf "%s%s:%s %s", sep, $2, $1, $3; sep=", "}')
        ram=$(awk '/^Size:/ {size=$2} /^Pss:/ && size == 262144 {print $2}' "/proc/${pids[0]}/smaps" | sort -n | tail -n 1)
        echo "one QEMU's largest mappings (size:PSS): $top; guest RAM PSS ${ram:-?}"
        guest_ram+=("${ram:-0}")
        [ "$r" = 1 ] && echo "the daemon's QEMU: $(tr '\0' ' ' <"/proc/${pids[0]}/cmdline")"
        for i in $(seq 10); do bg remove_container "$(cat "$dir/mem-$r-$i.id")"; done
        bg_wait || die "removing the memory containers"
done

# --- 4: requests/s, daemon against nginx ---
echo "== 4: GET /containers/{id}, $secs s per run; load $(load)"
run_id=$(start_container rps-running running) || die "start rps-running"
created_id=$(start_container rps-created) || die "create rps-created"
mkdir -m 755 "$dir/www"
api GET "/containers/$run_id" >"$dir/www/running.json"
api GET "/containers/$created_id" >"$dir/www/created.json"
chmod 644 "$dir"/www/*.json
cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes $(nproc);
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 1024; }
http {
        access_log off;
        client_body_temp_path $dir/ngx-tmp;
        proxy_temp_path $dir/ngx-tmp;
        fastcgi_temp_path $dir/ngx-tmp;
        uwsgi_temp_path $dir/ngx-tmp;
        scgi_temp_path $dir/ngx-tmp;
        default_type application/json;
        server {
                listen unix:$dir/nginx.sock;
                root $dir/www;
                location /containers/running { try_files /running.json =404; }
                location /containers/created { try_files /created.json =404; }
        }
}
EOF
nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/nginx-error.log" &
npid=$!
for _ in $(seq 50); do [ -S "$dir/nginx.sock" ] && break; sleep 0.1; done
[ -S "$dir/nginx.sock" ] || die "nginx did not start"
declare -A rps
for r in $(seq "$rounds"); do
        for kind in running created; do
                [ $kind = running ] && id=$run_id || id=$created_id
                for conns in 1 8; do
                        d=$("$B/bench-http" "$sock" "/containers/$id" "$conns" "$secs") || die "bench-http daemon"
                        n=$("$B/bench-http" "$dir/nginx.sock" "/containers/$kind" "$conns" "$secs") || die "bench-http nginx"
                        echo "round $r $kind $conns conn: daemon $d"
                        echo "round $r $kind $conns conn: nginx  $n"
                        rps[$kind-$conns-d]+=" $(awk '{print $2}' <<<"$d")"
                        rps[$kind-$conns-n]+=" $(awk '{print $2}' <<<"$n")"
                        rps[$kind-$conns-dp50]+=" $(awk '{print $12}' <<<"$d")"
                        rps[$kind-$conns-np50]+=" $(awk '{print $12}' <<<"$n")"
                done
        done
done

# --- summary ---
echo
echo "== summary (medians, range in brackets); load at the end $(load)"
each() { tr ' ' '\n' | grep . | stats; }
echo "1 raw QEMU -> /init (ms):            $(printf '%s\n' "${raw_init[@]}" | stats)"
echo "1 raw QEMU -> agent answers (ms):    $(printf '%s\n' "${raw_agent[@]}" | stats)"
echo "1 daemon create+start (ms):          $(printf '%s\n' "${one[@]}" | stats)"
echo "1 of which 4 curl calls (ms):        $(printf '%s\n' "${ping4[@]}" | stats)"
ratios=()
for i in "${!one[@]}"; do ratios+=("$(echo "scale=2; ${one[$i]} / ${raw_init[$i]}" | bc)"); done
echo "1 ratio daemon / raw to /init:       $(printf '%s\n' "${ratios[@]}" | stats)"
echo "2 $par daemon starts at once (ms):    $(printf '%s\n' "${par_d[@]}" | stats); $par x one start $((par * one_med))"
echo "2 $par raw boots at once, /init (ms): $(printf '%s\n' "${par_raw_init[@]}" | stats)"
ratios=()
for i in "${!par_d[@]}"; do ratios+=("$(echo "scale=2; ${par_d[$i]} / ${par_raw_init[$i]}" | bc)"); done
echo "2 ratio at once / raw at once:       $(printf '%s\n' "${ratios[@]}" | stats)"
ratios=()
for i in "${!par_d[@]}"; do ratios+=("$(echo "scale=2; ${par_d[$i]} / ($par * $one_med)" | bc)"); done
echo "2 ratio at once / $par x one start:    $(printf '%s\n' "${ratios[@]}" | stats)"
echo "2 $par raw boots at once, agent (ms): $(printf '%s\n' "${par_raw_agent[@]}" | stats)"
echo "3 raw QEMU idle PSS, 1 (KiB):        $(printf '%s\n' "${raw1_pss[@]}" | stats)"
echo "3 raw QEMU idle PSS, $par each (KiB): $(printf '%s\n' "${rawn_pss[@]}" | stats)"
for n in 1 5 10; do
        echo "3 $n idle: QEMU $(echo "${qemu_c[$n]}" | each), daemon $(echo "${daemon_c[$n]}" | each), per container $(echo "${per_c[$n]}" | each)"
done
echo "3 guest RAM mapping PSS (KiB):       $(printf '%s\n' "${guest_ram[@]}" | stats)"
per10=$(echo "${per_c[10]}" | tr ' ' '\n' | grep . | median)
qemu10=$(echo "${qemu_c[10]}" | tr ' ' '\n' | grep . | median)
ram10=$(printf '%s\n' "${guest_ram[@]}" | median)
total=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
base=$(pss_kb "$dpid")
echo "3 fit, idle: (MemTotal $total - 1 GiB for the host - daemon $base) / $per10 = $(((total - 1048576 - base) / per10))"
echo "3 fit, guests touching all 256 MiB: / ($per10 - $ram10 + 262144) = $(((total - 1048576 - base) / (per10 - ram10 + 262144)))"
for kind in running created; do
        for conns in 1 8; do
                echo "4 $kind, $conns conn: daemon $(echo "${rps[$kind-$conns-d]}" | each) req/s p50 $(echo "${rps[$kind-$conns-dp50]}" | each) ms;" \
                        "nginx $(echo "${rps[$kind-$conns-n]}" | each) req/s p50 $(echo "${rps[$kind-$conns-np50]}" | each) ms"
        done
done
echo "4 body bytes: running $(stat -c %s "$dir/www/running.json"), created $(stat -c %s "$dir/www/created.json")"
