#!/usr/bin/env bash
# The warm pool against a cold boot against a raw QEMU boot, in one run
# (docs/templates.md, docs/benchmarks.md):
#   raw QEMU start -> /init runs and -> agent answers (the kernel, initramfs
#     and disk our guests use, no libvirt), the baseline
#   bench-pool: cold starts and pool starts to agent ready and to the main
#     process running; two clones' boot_id and urandom; N at once each way
#     and the QEMU PSS of the N idle guests
# Usage: scripts/bench-pool.sh [starts] [parallel]
set -euo pipefail
cd "$(dirname "$0")/.."
starts=${1:-5}
par=${2:-5}
build=${PL_BUILD:-build/release} # PL_BUILD=build/dev reuses a development build
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice cmake --build "$build" -j2 --target pl-agent pl-initramfs pl-agent-cli bench-pool >/dev/null
B=$build/bin
kdir=$(bash scripts/guest-kernel.sh | tail -n 1)
dir=$(mktemp -d /tmp/plbp-XXXXXX)
qpid=
. scripts/bench-lib.sh
cleanup() {
        set +e
        [ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
        end_leftover_qemus bench-pool
        rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

initrd=$(bench_initramfs)
rootfs=$(bash scripts/make-test-rootfs.sh "$dir/base.ext4" 64 2>/dev/null | tail -n 1)
# bench-pool's guests' QEMUs run as a uid of their own (BENCH_UID), not
# root: they must reach the base disk and the initramfs in here.
chmod 711 "$dir" && chmod -R a+rX "$dir/initramfs" "$dir/base.ext4"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), guest kernel $(cat "$kdir/release"), TCG"

to_init=() to_agent=()
for _ in $(seq "$starts"); do
        qemu-img create -q -f qcow2 -F raw -b "$dir/base.ext4" "$dir/raw.qcow2" 1G
        rm -f "$dir/agent.sock" "$dir/console.log"
        t0=$(now)
        qemu-system-x86_64 -machine q35 -accel tcg -cpu max -m 256 -smp 1 -nographic -nodefaults -no-user-config \
                -kernel "$kdir/vmlinuz" -initrd "$initrd" -no-reboot \
                -append "console=ttyS0 panic=-1 random.trust_cpu=on loglevel=4 no_timer_check pl.hostname=bench" \
                -serial "file:$dir/console.log" \
                -drive "file=$dir/raw.qcow2,if=none,id=root,format=qcow2" -device virtio-blk-pci,drive=root,serial=pl-root \
                -device virtio-serial-pci \
                -chardev "socket,id=agent,path=$dir/agent.sock,server=on,wait=off" \
                -device virtserialport,chardev=agent,name=org.portlayer.agent.0 -device virtio-rng-pci &
        qpid=$!
        until grep -q "PID 1 started" "$dir/console.log" 2>/dev/null; do
                kill -0 "$qpid" 2>/dev/null || { echo "bench-pool: QEMU exited" >&2; tail "$dir/console.log" >&2; exit 1; }
                sleep 0.01
        done
        to_init+=($((($(now) - t0) / 1000000)))
        "$B/pl-agent-cli" --socket "$dir/agent.sock" --connect-timeout 120000 ping >/dev/null
        to_agent+=($((($(now) - t0) / 1000000)))
        kill "$qpid"; wait "$qpid" 2>/dev/null || true; qpid=
done
printf '%-44s n=%-3d median %8s ms\n' "raw QEMU start -> /init runs" "$starts" "$(printf '%s\n' "${to_init[@]}" | median)"
printf '%-44s n=%-3d median %8s ms\n' "raw QEMU start -> agent answers" "$starts" "$(printf '%s\n' "${to_agent[@]}" | median)"
"$B/bench-pool" "$kdir/vmlinuz" "$initrd" "$dir/base.ext4" "$dir" "$starts" "$par"
