#!/usr/bin/env bash
# bench-lib.sh: what the benchmark scripts share (sourced): timing and
# statistics helpers, and the raw QEMU boot every start is compared with.
# The sourcing script sets dir (its temporary directory), B (the binaries),
# sock (the daemon's REST socket) and dpid (its pid, for stop_daemon),
# kernel, kdir (its directory, for bench_initramfs), initrd, disk (the image's
# ext4) and a die() function, and keeps
# raw_pids=() for raw_start.

# QEMU processes whose command line names $dir: the daemon's and ours.
qemu_pids() {
        local f p
        for f in /proc/[0-9]*/cmdline; do
                p=${f#/proc/}
                p=${p%/cmdline}
                { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -q "qemu-system.*$dir" && echo "$p"
        done
        return 0
}

# stop_daemon: removes every container of the daemon $dpid serves on $sock
# (force), then ends it with SIGTERM and waits; nothing when none runs.
stop_daemon() {
        [ -n "${dpid:-}" ] || return 0
        if kill -0 "$dpid" 2>/dev/null; then
                for id in $(curl -s --max-time 30 --unix-socket "$sock" http://pl/containers | jq -r '.[].id' 2>/dev/null); do
                        curl -s --max-time 60 --unix-socket "$sock" -X DELETE "http://pl/containers/$id?force=1" >/dev/null
                done
                kill -TERM "$dpid"
                wait "$dpid" 2>/dev/null || true
        fi
        dpid=
}

# end_leftover_qemus NAME: after a short grace, kills (-KILL) every QEMU
# qemu_pids still finds, saying so as NAME (a bench's clean-up).
end_leftover_qemus() {
        local p
        sleep 0.5
        for p in $(qemu_pids); do
                echo "$1: ending leftover QEMU $p" >&2
                kill -KILL "$p"
        done
}

# bench_initramfs: the agent's initramfs for the kernel in $kdir with the
# virtio modules a raw QEMU guest needs (resolved as built in for our
# module-free kernel), built once under $dir/initramfs; prints its path.
bench_initramfs() {
        "$B/pl-initramfs" --agent "$B/pl-agent" --kernel-dir "$kdir" --cache "$dir/initramfs" --module virtio_pci \
                --module virtio_blk --module virtio_console --module virtio_rng | tail -n 1
}

now() { date +%s%N; }
ms_since() { echo $((($(now) - $1) / 1000000)); }
# "median M (min-max)" of numbers on stdin
stats() { sort -n | awk '{a[NR]=$1} END {printf "median %s (%s-%s) n=%d", a[int((NR+1)/2)], a[1], a[NR], NR}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }

# raw_start TAG: QEMU as the daemon's domain runs it (q35, TCG, -cpu max,
# 256 MiB, 1 vCPU, the same kernel, initramfs, command line and image disk,
# the agent port), without libvirt. The disk is the image's read-only ext4
# with a throwaway overlay (snapshot=on), as the daemon gives each container
# a qcow2 overlay.
raw_start() {
        local r=$dir/raw-$1
        mkdir -p "$r"
        qemu-system-x86_64 -machine q35 -accel tcg -cpu max -m 256 -smp 1 -nographic -nodefaults -no-user-config \
                -kernel "$kernel" -initrd "$initrd" -no-reboot \
                -append "console=ttyS0 panic=-1 random.trust_cpu=on loglevel=4 no_timer_check pl.hostname=raw pl.root=pl-root" \
                -serial "file:$r/console.log" \
                -drive "file=$disk,if=none,id=root,format=raw,snapshot=on" \
                -device virtio-blk-pci,drive=root,serial=pl-root \
                -device virtio-serial-pci -chardev "socket,id=agent,path=$r/agent.sock,server=on,wait=off" \
                -device virtserialport,chardev=agent,name=org.portlayer.agent.0 \
                -object rng-random,id=rng,filename=/dev/urandom -device virtio-rng-pci,rng=rng \
                </dev/null >"$r/qemu.log" 2>&1 &
        raw_pids+=($!)
}
raw_wait_init() {
        local t0
        t0=$(now)
        until grep -q "PID 1 started" "$dir/raw-$1/console.log" 2>/dev/null; do
                [ "$(ms_since "$t0")" -lt 300000 ] || die "raw QEMU $1: no /init after 300 s"
                sleep 0.01
        done
}
raw_wait_agent() { "$B/pl-agent-cli" --socket "$dir/raw-$1/agent.sock" --connect-timeout 300000 ping >/dev/null; }

# raw_timed_boot TAG: one raw boot, its times to /init and to the agent
# appended to the arrays raw_init and raw_agent, then ended.
raw_timed_boot() {
        local t0
        t0=$(now)
        raw_start "$1"
        raw_wait_init "$1"
        raw_init+=("$(ms_since "$t0")")
        raw_wait_agent "$1"
        raw_agent+=("$(ms_since "$t0")")
        raw_stop_all
}
# raw_warm_up: one untimed raw boot (QEMU, kernel and initramfs into the page cache).
raw_warm_up() {
        raw_start warm-up
        raw_wait_agent warm-up
        raw_stop_all
}

raw_stop_all() {
        local p
        for p in "${raw_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
        raw_pids=()
}

# api METHOD PATH [JSON]: the REST API on $sock; the body on stdout; fails
# unless the status is 2xx.
api() {
        local out code
        out=$(curl -sS --unix-socket "$sock" -X "$1" ${3:+-d "$3"} -w '\n%{http_code}' "http://pl$2") || return 1
        code=${out##*$'\n'}
        [ "${code:0:1}" = 2 ] || { echo "bench: $1 $2: $code ${out%$'\n'*}" >&2; return 1; }
        printf '%s' "${out%$'\n'*}"
}
