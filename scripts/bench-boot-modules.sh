#!/usr/bin/env bash
# What the network and virtio-fs modules cost at boot (docs/benchmarks.md):
# raw QEMU boots of the same kernel and root disk with two initramfs images,
# alternating boot by boot so load hits both alike:
#   baseline  the modules before networking (virtio_pci virtio_blk
#             virtio_console virtio_rng vmw_vsock_virtio_transport)
#   defaults  pl-initramfs's default list (adds virtio_net, virtiofs and their
#             dependencies net_failover, failover, fuse)
# each timed from QEMU's start to the agent's first console line ("PID 1
# started") and to its answer on the virtio-serial socket, and by the guest's
# own clock (its console timestamps) from "PID 1 started" to "serving": stage
# 1, where the modules load; and the CPU time QEMU used until the agent
# answered, which the host's load inflates least. No NIC is attached
# (the cost measured is loading the modules; no packet leaves QEMU).
# Usage: scripts/bench-boot-modules.sh [boots] [kernel-dir]
#   PL_BUILD_DIR=build/dev uses an existing build instead of build/release.
set -euo pipefail
cd "$(dirname "$0")/.."
boots=${1:-5}
kdir=${2:-$(bash scripts/fetch-kernel.sh | tail -n 1)}
B=${PL_BUILD_DIR:-build/release}
if [ -z "${PL_BUILD_DIR:-}" ]; then
        cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$B" -j2 --target pl-agent pl-initramfs pl-agent-cli >/dev/null
dir=$(mktemp -d /tmp/pl-bench-modules.XXXXXX)
qpid=
cleanup() {
        [ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
        rm -rf "$dir"
}
trap cleanup EXIT

base=(--module virtio_pci --module virtio_blk --module virtio_console --module virtio_rng
      --module vmw_vsock_virtio_transport)
initrd_base=$("$B/bin/pl-initramfs" --agent "$B/bin/pl-agent" --kernel-dir "$kdir" --cache "$dir/initramfs" \
        "${base[@]}" | tail -n 1)
initrd_defaults=$("$B/bin/pl-initramfs" --agent "$B/bin/pl-agent" --kernel-dir "$kdir" --cache "$dir/initramfs" |
        tail -n 1)
rootfs=$(bash scripts/make-test-rootfs.sh "$dir/base.ext4" 64 2>/dev/null | tail -n 1)
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), guest kernel $(cat "$kdir/release"), TCG"
printf '# initramfs: baseline %s KiB, defaults %s KiB\n' "$(($(stat -c %s "$initrd_base") / 1024))" \
        "$(($(stat -c %s "$initrd_defaults") / 1024))"

now() { date +%s.%N; }
ms_since() { echo "($(now) - $1) * 1000" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {printf "%.0f", a[int((NR+1)/2)]}'; }

# The guest-clock milliseconds from "PID 1 started" to "serving" in the console.
stage1_ms() {
        awk -F'[][]' '/PID 1 started/ {a = $2} / serving / {b = $2} END {printf "%.0f", (b - a) * 1000}' "$dir/console.log"
}

# CPU milliseconds (user + system) the process $1 has used.
cpu_ms() {
        awk -v hz="$(getconf CLK_TCK)" '{printf "%.0f", ($14 + $15) * 1000 / hz}' "/proc/$1/stat"
}

# boot INITRD: one boot; sets ms_init, ms_agent, ms_stage1 and ms_cpu.
boot() {
        cp --sparse=always "$rootfs" "$dir/run.ext4"
        rm -f "$dir/agent.sock" "$dir/console.log"
        local t0
        t0=$(now)
        qemu-system-x86_64 -machine q35 -accel tcg -cpu max -m 256 -smp 1 -nographic -nodefaults -no-user-config \
                -kernel "$kdir/vmlinuz" -initrd "$1" -no-reboot \
                -append "console=ttyS0 panic=-1 random.trust_cpu=on loglevel=4 no_timer_check pl.hostname=bench" \
                -serial "file:$dir/console.log" \
                -drive "file=$dir/run.ext4,if=none,id=root,format=raw" -device virtio-blk-pci,drive=root,serial=pl-root \
                -device virtio-serial-pci \
                -chardev "socket,id=agent,path=$dir/agent.sock,server=on,wait=off" \
                -device virtserialport,chardev=agent,name=org.portlayer.agent.0 -device virtio-rng-pci \
                2>>"$dir/qemu.err" &
        qpid=$!
        until grep -q "PID 1 started" "$dir/console.log" 2>/dev/null; do
                kill -0 "$qpid" 2>/dev/null || { echo "bench: QEMU exited; console:" >&2; tail "$dir/console.log" >&2; exit 1; }
                sleep 0.01
        done
        ms_init=$(ms_since "$t0")
        "$B/bin/pl-agent-cli" --socket "$dir/agent.sock" --connect-timeout 120000 ping >/dev/null
        ms_agent=$(ms_since "$t0")
        ms_cpu=$(cpu_ms "$qpid")
        ms_stage1=$(stage1_ms)
        kill "$qpid" 2>/dev/null
        wait "$qpid" 2>/dev/null || true
        qpid=
}

base_init=() base_agent=() base_stage1=() base_cpu=() def_init=() def_agent=() def_stage1=() def_cpu=()
for i in $(seq "$boots"); do
        boot "$initrd_base"
        base_init+=("$ms_init") base_agent+=("$ms_agent") base_stage1+=("$ms_stage1") base_cpu+=("$ms_cpu")
        boot "$initrd_defaults"
        def_init+=("$ms_init") def_agent+=("$ms_agent") def_stage1+=("$ms_stage1") def_cpu+=("$ms_cpu")
        printf '# boot %d: baseline %.0f / %.0f / stage 1 %s / cpu %s ms, defaults %.0f / %.0f / stage 1 %s / cpu %s ms\n' \
                "$i" "${base_init[-1]}" "${base_agent[-1]}" "${base_stage1[-1]}" "${base_cpu[-1]}" "$ms_init" "$ms_agent" \
                "$ms_stage1" "$ms_cpu"
done
m() { printf '%s\n' "$@" | median; }
printf '%-40s n=%-3d median %6s ms\n' "baseline modules: start -> /init runs" "$boots" "$(m "${base_init[@]}")"
printf '%-40s n=%-3d median %6s ms\n' "baseline modules: start -> agent answers" "$boots" "$(m "${base_agent[@]}")"
printf '%-40s n=%-3d median %6s ms\n' "default modules: start -> /init runs" "$boots" "$(m "${def_init[@]}")"
printf '%-40s n=%-3d median %6s ms\n' "default modules: start -> agent answers" "$boots" "$(m "${def_agent[@]}")"
printf '%-40s n=%-3d median %6s ms\n' "baseline modules: stage 1 (guest clock)" "$boots" "$(m "${base_stage1[@]}")"
printf '%-40s n=%-3d median %6s ms\n' "default modules: stage 1 (guest clock)" "$boots" "$(m "${def_stage1[@]}")"
printf '%-40s n=%-3d median %6s ms\n' "baseline modules: QEMU CPU to agent" "$boots" "$(m "${base_cpu[@]}")"
printf '%-40s n=%-3d median %6s ms\n' "default modules: QEMU CPU to agent" "$boots" "$(m "${def_cpu[@]}")"
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
