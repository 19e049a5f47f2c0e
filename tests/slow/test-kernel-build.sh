#!/usr/bin/env bash
# test-kernel-build.sh (ctest label "slow"): our own guest kernel builds and
# boots.
#
# Runs scripts/build-kernel.sh (a no-op when this kernel is already built,
# about 11 minutes on 2 cores when it is not), packs a module-free initramfs
# with `pl-initramfs --no-modules`, boots it with plain qemu-system-x86_64
# under TCG on a q35 machine (virtio-blk busybox root disk from
# scripts/make-test-rootfs.sh, virtio-serial agent port on a Unix socket,
# virtio-rng), and checks that
#   - the agent answers `exec -- uname -r` with the kernel's release file,
#   - a shell in the container sees its root disk mounted as ext4,
#   - `shutdown` powers the VM off (ACPI S5): QEMU exits by itself.
# QEMU is killed by its pid on every path (trap).
#
# Environment: PL_SOURCE_DIR, PL_AGENT_BIN (static agent), PL_AGENT_CLI,
# PL_INITRAMFS_BIN (ctest sets them); PL_CACHE as for the scripts. Skips
# (tests/lib/skip.sh: exit 77) when the kernel build tools or QEMU are
# missing, unless PL_TESTS_REQUIRED=1 (scripts/test.sh), where that is a failure.
set -euo pipefail

log() { echo "test-kernel-build: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

for v in PL_SOURCE_DIR PL_AGENT_BIN PL_AGENT_CLI PL_INITRAMFS_BIN; do
        [ -n "${!v:-}" ] || fail "$v is not set (run under ctest)"
done
src=$PL_SOURCE_DIR
. "$src/tests/lib/skip.sh"
command -v qemu-system-x86_64 >/dev/null || test_skip_or_fail "qemu-system-x86_64 (package qemu-system-x86)"
bash "$src/scripts/build-kernel.sh" --check-tools || test_skip_or_fail "the kernel build tools (listed above)"

tmp=$(mktemp -d /tmp/pl-kernel-test.XXXXXX)
qemu_pid=
cleanup() {
        local rc=$?
        if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
                kill "$qemu_pid" 2>/dev/null || true
                for _ in $(seq 50); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.1; done
                kill -KILL "$qemu_pid" 2>/dev/null || true
                wait "$qemu_pid" 2>/dev/null || true
        fi
        if [ $rc -ne 0 ] && [ -f "$tmp/console.log" ]; then
                log "guest console (last 40 lines):"
                tail -n 40 "$tmp/console.log" >&2
        fi
        [ -n "${PL_KEEP_TEST_DIRS:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building (or finding) the kernel"
kdir=$(bash "$src/scripts/build-kernel.sh" | tail -n 1)
if [ ! -f "$kdir/vmlinuz" ] || [ ! -f "$kdir/release" ]; then
        fail "build-kernel.sh printed '$kdir', which holds no kernel"
fi
release=$(cat "$kdir/release")
grep -qx '# CONFIG_MODULES is not set' "$kdir/config" || fail "$kdir/config: the kernel is not module-free"
log "kernel $release in $kdir ($(stat -c %s "$kdir/vmlinuz") bytes)"

initrd=$("$PL_INITRAMFS_BIN" --agent "$PL_AGENT_BIN" --no-modules --cache "$tmp/initramfs" | tail -n 1)
[ -f "$initrd" ] || fail "pl-initramfs printed '$initrd'"
disk=$(bash "$src/scripts/make-test-rootfs.sh" "$tmp/root.ext4" | tail -n 1)

sock=$tmp/agent.sock
start=$(date +%s.%N)
qemu-system-x86_64 -M q35 -accel tcg -cpu max -m 256 -smp 1 \
        -nodefaults -display none -no-user-config -no-reboot \
        -kernel "$kdir/vmlinuz" -initrd "$initrd" \
        -append "console=ttyS0 panic=-1 random.trust_cpu=on loglevel=4 no_timer_check pl.hostname=kernel-test pl.root=pl-root" \
        -serial "file:$tmp/console.log" \
        -drive "file=$disk,if=none,id=root,format=raw" -device virtio-blk-pci,drive=root,serial=pl-root \
        -device virtio-serial-pci \
        -chardev "socket,id=agent,path=$sock,server=on,wait=off" \
        -device virtserialport,chardev=agent,name=org.portlayer.agent.0 \
        -device virtio-rng-pci \
        2>"$tmp/qemu.err" &
qemu_pid=$!

for _ in $(seq 100); do
        [ -S "$sock" ] && break
        kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited at once: $(cat "$tmp/qemu.err")"
        sleep 0.1
done
[ -S "$sock" ] || fail "QEMU made no agent socket"

cli() { timeout 300 "$PL_AGENT_CLI" --socket "$sock" --connect-timeout 180000 "$@"; }
out=$(cli exec -- uname -r) || fail "exec uname -r failed (exit $?)"
log "agent answered after $(echo "$(date +%s.%N) - $start" | bc) s: uname -r = $out"
[ "$out" = "$release" ] || fail "uname -r says '$out', the kernel's release file '$release'"

out=$(cli exec -- sh -c 'cat /etc/pl-test-marker; grep " / " /proc/mounts | cut -d" " -f3') ||
        fail "exec sh failed"
[ "$out" = "$(printf 'pl-test-rootfs\next4')" ] || fail "unexpected root: '$out'"

cli shutdown >/dev/null || fail "shutdown request failed"
for _ in $(seq 600); do
        kill -0 "$qemu_pid" 2>/dev/null || break
        sleep 0.1
done
kill -0 "$qemu_pid" 2>/dev/null && fail "the guest did not power off within 60 s of shutdown"
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=
grep -q "reboot: Power down" "$tmp/console.log" || fail "no 'reboot: Power down' on the console"
log "ok: $release boots, serves the agent and powers off"
