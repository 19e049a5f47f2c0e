#!/usr/bin/env bash
# The main job, until the daemon exists: installs what is missing, builds,
# fetches the guest kernel, builds the initramfs and the busybox test image,
# and boots one container VM on libvirt's embedded QEMU driver (KVM when
# usable, TCG otherwise) with the agent as its PID 1. A short client session
# shows it working; the VM then keeps running until Ctrl-C, which shuts it
# down and removes it. Grows into starting portlayerd.
#   PL_STATE       state directory (default ./state; keep its path short:
#                  libvirt limits the embedded root's socket paths)
#   PL_KERNEL_DIR  a kernel directory to boot instead of Debian's cloud kernel:
#                  one made by scripts/build-kernel.sh (our module-free kernel)
#                  or any directory with vmlinuz, release and lib/modules/
set -euo pipefail
cd "$(dirname "$0")/.."
state=${PL_STATE:-$PWD/state}
mkdir -p "$state"
state=$(cd "$state" && pwd)

bash scripts/setup.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j"$(nproc)"
B=build/release

kdir=${PL_KERNEL_DIR:-$(bash scripts/fetch-kernel.sh | tail -n 1)}
initrd=$("$B/images/pl-initramfs" --agent "$B/guest-agent/pl-agent" --kernel-dir "$kdir" --cache "$state/initramfs" \
        --module virtio_pci --module virtio_blk --module virtio_console --module virtio_rng \
        --module vmw_vsock_virtio_transport | tail -n 1)
rootfs=$(bash scripts/make-test-rootfs.sh "$state/rootfs.ext4" 256 | tail -n 1)
rm -f "$state/container.qcow2"
qemu-img create -q -f qcow2 -F raw -b "$rootfs" "$state/container.qcow2" 1G

"$B/portlayer/pl-guest" --state "$state" --name pl-demo --kernel "$kdir/vmlinuz" --initrd "$initrd" \
        --disk "$state/container.qcow2" > "$state/pl-guest.out" &
guest_pid=$!
trap 'kill -INT "$guest_pid" 2>/dev/null; wait "$guest_pid" 2>/dev/null' EXIT INT TERM
until grep -q "agent socket" "$state/pl-guest.out" 2>/dev/null; do
        kill -0 "$guest_pid" 2>/dev/null || { echo "run.sh: the guest did not start" >&2; exit 1; }
        sleep 0.2
done
sock=$(sed -n 's/^agent socket: //p' "$state/pl-guest.out")
cli=("$B/portlayer/pl-agent-cli" --socket "$sock")

echo "== container VM pl-demo is up; agent at $sock"
"${cli[@]}" info
"${cli[@]}" exec -- sh -c 'echo "hello from $(hostname), kernel $(uname -r)"; ls /'
echo "== try: ${cli[*]} exec --tty --stdin -- sh"
echo "== console: $state/pl-demo/console.log; Ctrl-C shuts the VM down"
wait "$guest_pid"
