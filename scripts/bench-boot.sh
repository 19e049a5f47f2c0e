#!/usr/bin/env bash
# Guest boot and virtio-serial benchmarks, each beside a baseline measured in
# the same run (docs/benchmarks.md):
#   raw QEMU boot of the same kernel + initramfs to /init running (baseline;
#   marked by the agent's first console line, "PID 1 started")
#   raw QEMU boot to the agent's answer (no libvirt)               (libvirt's share)
#   our path: domain create -> agent HELLO, through libvirt        (bench-guest)
#   raw virtio-serial throughput: dd into a second port            (baseline)
#   exec round trip, copy-out/in over the agent channel            (bench-guest)
# Usage: scripts/bench-boot.sh [boots] [copy-MiB] [kernel-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
boots=${1:-5}
mib=${2:-64}
bash scripts/setup.sh >/dev/null
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$(nproc)" --target pl-agent pl-initramfs pl-agent-cli bench-guest >/dev/null
kdir=${3:-$(bash scripts/guest-kernel.sh | tail -n 1)}
B=build/release
dir=$(mktemp -d /tmp/pl-bench-boot.XXXXXX)
qpid=
cleanup() {
        [ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
        rm -rf "$dir"
}
trap cleanup EXIT

modules=()
[ -d "$kdir/lib/modules" ] && modules=(--module virtio_pci --module virtio_blk --module virtio_console --module virtio_rng)
initrd=$("$B/bin/pl-initramfs" --agent "$B/bin/pl-agent" --kernel-dir "$kdir" --cache "$dir/initramfs" \
        "${modules[@]}" $([ ${#modules[@]} -eq 0 ] && echo --no-modules) | tail -n 1)
rootfs=$(bash scripts/make-test-rootfs.sh "$dir/base.ext4" $((mib * 3 + 64)) 2>/dev/null | tail -n 1)
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, host $(uname -r), guest kernel $(cat "$kdir/release"), TCG"

now() { date +%s.%N; }
ms_since() { echo "($(now) - $1) * 1000" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {printf "%.0f", a[int((NR+1)/2)]}'; }

# Starts QEMU on a copy of the root disk with the agent port and a bench port
# (QEMU writes what the guest sends there to /dev/null).
start_qemu() {
        cp --sparse=always "$rootfs" "$dir/run.ext4"
        rm -f "$dir/agent.sock" "$dir/console.log"
        qemu-system-x86_64 -machine q35 -accel tcg -cpu max -m 256 -smp 1 -nographic -nodefaults -no-user-config \
                -kernel "$kdir/vmlinuz" -initrd "$initrd" -no-reboot \
                -append "console=ttyS0 panic=-1 random.trust_cpu=on loglevel=4 no_timer_check pl.hostname=bench" \
                -serial "file:$dir/console.log" \
                -drive "file=$dir/run.ext4,if=none,id=root,format=raw" -device virtio-blk-pci,drive=root,serial=pl-root \
                -device virtio-serial-pci \
                -chardev "socket,id=agent,path=$dir/agent.sock,server=on,wait=off" \
                -device virtserialport,chardev=agent,name=org.portlayer.agent.0 \
                -chardev file,id=bench,path=/dev/null -device virtserialport,chardev=bench,name=org.portlayer.bench.0 \
                -device virtio-rng-pci &
        qpid=$!
}
stop_qemu() { kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null || true; qpid=; }

to_init=() to_agent=()
for _ in $(seq "$boots"); do
        t0=$(now)
        start_qemu
        until grep -q "PID 1 started" "$dir/console.log" 2>/dev/null; do
                kill -0 "$qpid" 2>/dev/null || { echo "bench-boot: QEMU exited; console:" >&2; tail "$dir/console.log" >&2; exit 1; }
                sleep 0.01
        done
        to_init+=("$(ms_since "$t0")")
        "$B/bin/pl-agent-cli" --socket "$dir/agent.sock" --connect-timeout 120000 ping >/dev/null
        to_agent+=("$(ms_since "$t0")")
        stop_qemu
done
printf '%-34s n=%-3d median %8s ms\n' "raw QEMU start -> /init runs" "$boots" "$(printf '%s\n' "${to_init[@]}" | median)"
printf '%-34s n=%-3d median %8s ms\n' "raw QEMU start -> agent answers" "$boots" "$(printf '%s\n' "${to_agent[@]}" | median)"

# Raw channel throughput: a root process in the guest makes a device node for
# the bench port (major:minor from sysfs) and dd's zeros into it. busybox dd
# prints no rate, so the host times the whole exec (its ~5 ms of exec
# overhead counts against the baseline, not for us).
start_qemu
cli=("$B/bin/pl-agent-cli" --socket "$dir/agent.sock" --connect-timeout 120000 --timeout 600000)
"${cli[@]}" ping >/dev/null
"${cli[@]}" exec -- sh -c 'for p in /sys/class/virtio-ports/*; do
        [ "$(cat "$p/name")" = org.portlayer.bench.0 ] && dev=$(cat "$p/dev"); done
        mknod /dev/benchport c "${dev%:*}" "${dev#*:}"' >/dev/null
t0=$(now)
"${cli[@]}" exec -- dd if=/dev/zero of=/dev/benchport bs=65536 count=$((mib * 16)) >/dev/null 2>&1
secs=$(echo "$(now) - $t0" | bc)
raw=$(printf '%d MiB in %.2f s = %6.1f MiB/s' "$mib" "$secs" "$(echo "$mib / $secs" | bc -l)")
stop_qemu
printf '%-34s %s\n' "raw virtio-serial (dd in guest)" "$raw"

"$B/bin/bench-guest" "$kdir/vmlinuz" "$initrd" "$rootfs" "$dir" "$boots" 50 "$mib"
