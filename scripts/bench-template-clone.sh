#!/usr/bin/env bash
# The two start mechanisms the warm pool was chosen over, measured in one run
# against a cold boot (docs/templates.md "Measured: the three mechanisms",
# docs/benchmarks.md). Raw QEMU, no libvirt, to isolate the mechanism; our
# kernel, initramfs and agent; q35, 256 MiB, 1 vCPU, TCG:
#   baseline  bench-lib's raw QEMU boot to the agent's answer (the root disk,
#             as the other benchmarks compare with), and N cold boots of the
#             clones' own command line (pl.pool=1, no disk, the daemon's
#             16 MiB translation cache, no balloon), kept running for their PSS
#   (c)       a template whose RAM is a file mapped share=on, stopped, its
#             device state migrated to a file with x-ignore-shared; N clones
#             map the same file share=off, load the state (-incoming defer,
#             migrate-incoming), cont, and answer on their own agent socket
#   (b)       plain save/restore: the template's whole RAM in the state file
#   traps     the template file opened by a QEMU of another uid (0444, share=off,
#             readonly=on; 0666); which flags QEMU opened it with; boot_id, 16
#             bytes of /dev/urandom, the clock and the agent's instance id of
#             every guest right after its start
# For each: QEMU exec -> agent answers on a fresh socket, PSS of each guest
# (smaps_rollup), `free -m` before and after the N guests. Every QEMU is
# ended by pid on exit, also on failure; the files live in a mktemp directory.
# Usage: scripts/bench-template-clone.sh [clones]   (PL_BUILD=build/dev reuses a build)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5}
[[ "$n" =~ ^[1-9][0-9]?$ ]] || { echo "usage: $0 [clones (1-99)]" >&2; exit 2; }
build=${PL_BUILD:-build/release}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice cmake --build "$build" -j2 --target pl-agent pl-initramfs pl-agent-cli bench-qmp >/dev/null
B=$build/bin
kdir=$(bash scripts/guest-kernel.sh | tail -n 1)
kernel=$kdir/vmlinuz
dir=$(mktemp -d /tmp/pltc-XXXXXX)
pids=() raw_pids=()
. scripts/bench-lib.sh
die() { echo "bench-template-clone: $*" >&2; exit 1; }
cleanup() {
        local rc=$?
        set +e
        if [ "$rc" != 0 ]; then # what the guests' QEMUs said
                for f in "$dir"/*.err "$dir"/nobody/*.err; do
                        [ -s "$f" ] && echo "== $f" >&2 && tail -n 5 "$f" >&2
                done
        fi
        for p in "${pids[@]}" "${raw_pids[@]}"; do
                kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
        done
        end_leftover_qemus bench-template-clone
        rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

initrd=$(bench_initramfs)
disk=$(bash scripts/make-test-rootfs.sh "$dir/base.ext4" 64 2>/dev/null | tail -n 1)
# The pool-mode guest serves the initramfs, which has no shell: the probe
# copies a static busybox into /tmp (the templates get it before the snapshot).
mkdir "$dir/bb" && cp /bin/busybox "$dir/bb/" && tar -C "$dir/bb" -cf "$dir/busybox.tar" busybox
chmod 711 "$dir" && chmod -R a+rX "$dir/initramfs" # for the QEMU under another uid below
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load $(load), guest kernel $(cat "$kdir/release"), $(qemu-system-x86_64 --version | head -n 1), TCG, $n clones, host KSM run=$(cat /sys/kernel/mm/ksm/run 2>/dev/null || echo -) (guests use merge=off)"

report_times() { # TITLE MS...: bench-lib's stats of the times, then each in order
        local title=$1
        shift
        printf '  %-36s %s ms, each: %s\n' "$title" "$(printf '%s\n' "$@" | stats)" "$*"
}
mem_used() { free -m | awk '/^Mem:/ {print $3, $6}'; } # used, buff/cache (MiB)
pss() { awk '/^(Pss|Pss_Anon|Pss_File):/ {v[$1]=$2} END {print v["Pss:"], v["Pss_Anon:"], v["Pss_File:"]}' "/proc/$1/smaps_rollup"; }
qmp() { "$B/bench-qmp" --timeout 180000 "$@"; }
ping_agent() { "$B/pl-agent-cli" --socket "$1" --connect-timeout "${2:-180000}" ping >/dev/null; }

# bench-lib's raw_start without the disk, in pool mode, and with the daemon's
# 16 MiB translation cache; no balloon (free page reporting would punch holes
# in a template file, docs/templates.md).
pool_cmdline=(-machine q35,memory-backend=ram -accel tcg,tb-size=16 -cpu max -m 256 -smp 1 -nographic -nodefaults
        -no-user-config -kernel "$kernel" -initrd "$initrd" -no-reboot
        -append "console=ttyS0 panic=-1 random.trust_cpu=on loglevel=4 no_timer_check pl.hostname=pool pl.pool=1"
        -device virtio-serial-pci -device virtserialport,chardev=agent,name=org.portlayer.agent.0
        -object rng-random,id=rng,filename=/dev/urandom -device virtio-rng-pci,rng=rng)
# start NAME MEMORY-BACKEND-OPTIONS [QEMU ARGS...]: a pool-mode guest with its
# own console, QMP and agent sockets under $dir/NAME.*; sets $pid. Its RAM is
# never offered to KSM (merge=off), so that a host running KSM does not blur
# what the mechanism itself shares.
start() {
        local name=$1 mem=$2
        shift 2
        qemu-system-x86_64 "${pool_cmdline[@]}" -object "$mem,merge=off" -serial "file:$dir/$name.console" \
                -qmp "unix:$dir/$name.qmp,server=on,wait=off" \
                -chardev "socket,id=agent,path=$dir/$name.sock,server=on,wait=off" "$@" 2>"$dir/$name.err" &
        pid=$!
        pids+=("$pid")
}
stop_all() { # ends the guests started since pids had $1 entries
        local p
        for p in "${pids[@]:$1}"; do
                kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
        done
        pids=("${pids[@]:0:$1}")
}
# probe NAME GROUP: boot_id, 16 bytes of urandom, guest clock - host clock (s),
# the agent's instance id: printed, and appended to $dir/probe.GROUP.
probe() {
        local out inst host b u t
        out=$("$B/pl-agent-cli" --socket "$dir/$1.sock" exec -- /tmp/busybox sh -c \
                'read b </proc/sys/kernel/random/boot_id; u=$(od -An -tx1 -N16 /dev/urandom | tr -d " \n"); echo "$b $u $(date +%s)"')
        host=$(date +%s)
        inst=$("$B/pl-agent-cli" --socket "$dir/$1.sock" info | awk '/^instance:/ {print $2}')
        read -r b u t <<<"$out"
        printf '    %-10s boot_id %s urandom %s clock %+ds instance %s\n' "$1" "$b" "$u" $((t - host)) "$inst"
        echo "$b $u $inst" >>"$dir/probe.$2"
}
differ() { # how many of the probe lines of group $1 are distinct, per field
        printf '    distinct among %d: boot_id %d, urandom %d, agent instance %d\n' "$(wc -l <"$dir/probe.$1")" \
                "$(cut -d' ' -f1 "$dir/probe.$1" | sort -u | wc -l)" "$(cut -d' ' -f2 "$dir/probe.$1" | sort -u | wc -l)" \
                "$(cut -d' ' -f3 "$dir/probe.$1" | sort -u | wc -l)"
}
# report_mem GROUP FREE_BEFORE: PSS of the guests started since pids had
# $base entries, and the change in `free -m`.
report_mem() {
        local group=$1 before=$2 p tot=0 anon=0 file=0 line='' a b c u0 c0 u1 c1
        sleep 5 # idle
        for p in "${pids[@]:$base}"; do
                read -r a b c <<<"$(pss "$p")"
                tot=$((tot + a)) anon=$((anon + b)) file=$((file + c))
                line+=" $((a / 1024))"
        done
        read -r u1 c1 <<<"$(mem_used)"
        read -r u0 c0 <<<"$before"
        printf '  %-10s PSS per guest (MiB):%s\n' "$group" "$line"
        printf '  %-10s PSS total %d MiB (anon %d, file %d), %d MiB per guest\n' "$group" $((tot / 1024)) \
                $((anon / 1024)) $((file / 1024)) $((tot / 1024 / n))
        printf '  %-10s free -m: used %d -> %d (%+d MiB), buff/cache %d -> %d (%+d MiB)\n' "$group" "$u0" "$u1" \
                $((u1 - u0)) "$c0" "$c1" $((c1 - c0))
}

echo "baseline: raw QEMU cold boot with the root disk (bench-lib's raw_timed_boot, after one warm-up boot)"
raw_init=() raw_agent=()
raw_warm_up
for i in $(seq "$((n < 3 ? n : 3))"); do
        raw_timed_boot "$i"
done
report_times "exec -> /init runs" "${raw_init[@]}"
report_times "exec -> agent answers" "${raw_agent[@]}"

echo "baseline: $n cold boots of the clones' command line (pl.pool=1, no disk, anonymous RAM), one after another"
before=$(mem_used) base=${#pids[@]} boots=()
for i in $(seq "$n"); do
        t0=$(now)
        start "cold$i" memory-backend-ram,id=ram,size=256M
        ping_agent "$dir/cold$i.sock"
        boots+=("$(ms_since "$t0")")
        "$B/pl-agent-cli" --socket "$dir/cold$i.sock" cp-in "$dir/busybox.tar" /tmp >/dev/null
        probe "cold$i" cold
done
differ cold
report_times "exec -> agent answers" "${boots[@]}"
report_mem cold "$before"
stop_all "$base"

# template NAME MEMORY-BACKEND-OPTIONS CAPS-JSON [AGE_S]: boots a template,
# copies busybox in, stops it and migrates its device state (and, without
# x-ignore-shared, its RAM) to $dir/NAME.state; then ends it. With AGE_S, it
# first waits until the guest has been up that long and probes it (reads
# boot_id and urandom) right before the snapshot.
template() {
        local t0 t1 t2 b=${#pids[@]} up
        t0=$(now)
        start "$1" "$2"
        ping_agent "$dir/$1.sock"
        t1=$(now)
        "$B/pl-agent-cli" --socket "$dir/$1.sock" cp-in "$dir/busybox.tar" /tmp >/dev/null
        if [ -n "${4:-}" ]; then
                until up=$("$B/pl-agent-cli" --socket "$dir/$1.sock" info | awk '/^uptime:/ {print int($2)}') &&
                        [ "$up" -ge "$4" ]; do
                        sleep 2
                done
                probe "$1" "$1"
        fi
        t2=$(now)
        qmp "$dir/$1.qmp" stop migrate-set-capabilities "$3" migrate "{\"uri\":\"exec:cat > $dir/$1.state\"}" \
                wait-migration >/dev/null
        printf '  %-36s boot %d ms, stop + save %d ms, state file %d KiB\n' "template $1" \
                $(((t1 - t0) / 1000000)) "$(ms_since "$t2")" $(($(stat -c %s "$dir/$1.state") / 1024))
        stop_all "$b"
}
# clones NAME TEMPLATE MEMORY-BACKEND-OPTIONS CAPS-JSON: N clones NAME1..N
# from $dir/TEMPLATE.state, started one after another and kept running.
clones() {
        local name=$1 state=$dir/$2.state mem=$3 caps=$4 t0 t1 loaded=() answered=() i
        before=$(mem_used) base=${#pids[@]}
        for i in $(seq "$n"); do
                t0=$(now)
                start "$name$i" "$mem" -incoming defer
                qmp "$dir/$name$i.qmp" migrate-set-capabilities "$caps" \
                        migrate-incoming "{\"uri\":\"exec:cat $state\"}" wait-migration cont >/dev/null
                loaded+=("$(ms_since "$t0")")
                ping_agent "$dir/$name$i.sock"
                answered+=("$(ms_since "$t0")")
                probe "$name$i" "$name"
        done
        differ "$name"
        report_times "exec -> state loaded + cont" "${loaded[@]}"
        report_times "exec -> agent answers" "${answered[@]}"
        report_mem "$name" "$before"
}
ignore='{"capabilities":[{"capability":"x-ignore-shared","state":true}]}'
plain='{"capabilities":[{"capability":"x-ignore-shared","state":false}]}'

echo "(c) shared-memory template: RAM file share=on, x-ignore-shared; clones share=off on the same file"
truncate -s 256M "$dir/tmpl.ram"
echo "  (the template is probed right before its snapshot, at 130 s of guest uptime, past the kernel's early reseeds)"
template tmpl "memory-backend-file,id=ram,mem-path=$dir/tmpl.ram,size=256M,share=on" "$ignore" 130
clones shc tmpl "memory-backend-file,id=ram,mem-path=$dir/tmpl.ram,size=256M,share=off" "$ignore"
printf '  %-10s the template file in the page cache: %s (fincore); the clones'"'"' Pss_File holds their shares of what they map\n' shc \
        "$(fincore -n -o RES "$dir/tmpl.ram" | tr -d ' ')"
fd=$(find "/proc/${pids[$base]}/fd" -lname "$dir/tmpl.ram" | head -n 1)
printf '  %-10s a clone (share=off) holds the template file open with flags %s (02 = O_RDWR)\n' shc \
        "$(awk '/^flags:/ {print $2}' "/proc/${pids[$base]}/fdinfo/${fd##*/}")"

echo "  trap: the template file root:root, a clone's QEMU under uid 65534 (share=off)"
chmod 644 "$dir/tmpl.state"
mkdir -m 700 "$dir/nobody" && chown 65534:65534 "$dir/nobody"
for mode_ro in 444:off 444:on 666:off; do
        mode=${mode_ro%:*} ro=${mode_ro#*:} s=$dir/nobody/$mode-$ro b=${#pids[@]}
        chmod "$mode" "$dir/tmpl.ram"
        setpriv --reuid 65534 --regid 65534 --clear-groups qemu-system-x86_64 "${pool_cmdline[@]}" \
                -object "memory-backend-file,id=ram,mem-path=$dir/tmpl.ram,size=256M,share=off,readonly=$ro,merge=off" \
                -serial "file:$s.console" -qmp "unix:$s.qmp,server=on,wait=off" \
                -chardev "socket,id=agent,path=$s.sock,server=on,wait=off" -incoming defer 2>"$s.err" &
        pids+=($!)
        until [ -S "$s.qmp" ] || ! kill -0 "${pids[-1]}" 2>/dev/null; do sleep 0.05; done
        if ! kill -0 "${pids[-1]}" 2>/dev/null; then
                result="QEMU failed: $(head -n 1 "$s.err")"
        elif ! "$B/bench-qmp" --timeout 20000 "$s.qmp" migrate-set-capabilities "$ignore" \
                migrate-incoming "{\"uri\":\"exec:cat $dir/tmpl.state\"}" wait-migration cont >/dev/null 2>"$s.qmperr"; then
                sleep 0.2 # QEMU may fail after it opened its QMP socket
                if kill -0 "${pids[-1]}" 2>/dev/null; then
                        result="loading the state failed: $(head -n 1 "$s.qmperr")"
                else
                        result="QEMU failed: $(head -n 1 "$s.err")"
                fi
        elif ping_agent "$s.sock" 15000 2>/dev/null; then
                result="the agent answers"
        else
                result="state loaded, then no agent answer within 15 s (QEMU status: $("$B/bench-qmp" --timeout 5000 \
                        "$s.qmp" query-status | sed 's/.*"status":"\([a-z-]*\)".*/\1/'))"
        fi
        printf '    file %s, readonly=%-3s %s\n' "$mode" "$ro" "$result"
        stop_all "$b"
done
chmod 444 "$dir/tmpl.ram"
stop_all "$base"

# Free page reporting (the virtio balloon the daemon gives its guests) in a
# clone: clone A deletes /tmp/busybox, which came from the template, so its
# pages are freed and reported; clone B reads the same file afterwards.
echo "  trap: free page reporting in clones of a template (balloon, pl.report_order=3)"
initrd_fpr=$("$B/pl-initramfs" --agent "$B/pl-agent" --kernel-dir "$kdir" --cache "$dir/initramfs" "${modules[@]}" \
        --module virtio_balloon | tail -n 1)
fpr=(-initrd "$initrd_fpr" -device virtio-balloon-pci,free-page-reporting=on
        -append "console=ttyS0 panic=-1 random.trust_cpu=on loglevel=4 no_timer_check pl.hostname=pool pl.pool=1 pl.report_order=3")
base=${#pids[@]}
truncate -s 256M "$dir/fpr.ram"
start fpr "memory-backend-file,id=ram,mem-path=$dir/fpr.ram,size=256M,share=on" "${fpr[@]}"
ping_agent "$dir/fpr.sock"
"$B/pl-agent-cli" --socket "$dir/fpr.sock" cp-in "$dir/busybox.tar" /tmp >/dev/null
sleep 5 # the template's own reports settle
qmp "$dir/fpr.qmp" stop migrate-set-capabilities "$ignore" migrate "{\"uri\":\"exec:cat > $dir/fpr.state\"}" \
        wait-migration >/dev/null
stop_all "$base"
blocks0=$(stat -c %b "$dir/fpr.ram") sum0=$(md5sum <"$dir/fpr.ram")
for c in fprA fprB; do
        start "$c" "memory-backend-file,id=ram,mem-path=$dir/fpr.ram,size=256M,share=off" "${fpr[@]}" -incoming defer
        qmp "$dir/$c.qmp" migrate-set-capabilities "$ignore" migrate-incoming "{\"uri\":\"exec:cat $dir/fpr.state\"}" \
                wait-migration cont >/dev/null
        ping_agent "$dir/$c.sock"
done
busybox_in() { # CLONE STEP: clone's /tmp/busybox against the original
        "$B/pl-agent-cli" --socket "$dir/$1.sock" cp-out /tmp/busybox >"$dir/$1-$2.tar"
        mkdir "$dir/$1-$2" && tar -C "$dir/$1-$2" -xf "$dir/$1-$2.tar"
        cmp -s "$dir/$1-$2/busybox" /bin/busybox && echo "intact" ||
                echo "DIFFERS ($(cmp -l "$dir/$1-$2/busybox" /bin/busybox 2>/dev/null | wc -l) bytes)"
}
echo "    before: clone B's /tmp/busybox $(busybox_in fprB before)"
"$B/pl-agent-cli" --socket "$dir/fprA.sock" rm /tmp/busybox >/dev/null
sleep 10 # reporting runs 2 s after pages are freed
printf '    clone A deleted its /tmp/busybox, 10 s later: clone B'"'"'s /tmp/busybox %s; the template file %s -> %s\n' \
        "$(busybox_in fprB after)" "$blocks0" "$(stat -c %b "$dir/fpr.ram")"
printf '      blocks allocated, its content %s\n' \
        "$([ "$(md5sum <"$dir/fpr.ram")" = "$sum0" ] && echo unchanged || echo CHANGED)"
stop_all "$base"

echo "(b) plain save/restore: anonymous RAM, the whole RAM in the state file"
echo "  (the template is snapshotted right after its agent answered, never probed)"
template save memory-backend-ram,id=ram,size=256M "$plain"
clones rst save memory-backend-ram,id=ram,size=256M "$plain"
stop_all "$base"
echo "# done $(date -u +%H:%MZ), load $(load)"
