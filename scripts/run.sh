#!/usr/bin/env bash
# The main job, until the daemon exists: installs what is missing, builds,
# fetches the guest kernel, builds the initramfs, imports a busybox test image
# into the image store and gives it a container disk,
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
initrd=$("$B/bin/pl-initramfs" --agent "$B/bin/pl-agent" --kernel-dir "$kdir" --cache "$state/initramfs" \
        --module virtio_pci --module virtio_blk --module virtio_console --module virtio_rng \
        --module vmw_vsock_virtio_transport | tail -n 1)
# The test image: a busybox OCI image built with umoci, imported into the
# image store (layers written into ext4 with libext2fs), and a copy-on-write
# container disk on top of it.
img=("$B/bin/pl-image" --store "$state/images")
rm -rf "$state/oci-busybox"
bash tests/lib/make-oci-image.sh "$state/oci-busybox" >/dev/null
"${img[@]}" import "oci:$state/oci-busybox:latest" localhost/busybox:latest
"${img[@]}" disk rm "$state/container.qcow2" 2>/dev/null || rm -f "$state/container.qcow2"
"${img[@]}" disk create localhost/busybox:latest "$state/container.qcow2" --size 1G

"$B/bin/pl-guest" --state "$state" --name pl-demo --kernel "$kdir/vmlinuz" --initrd "$initrd" \
        --disk "$state/container.qcow2" > "$state/pl-guest.out" &
guest_pid=$!
trap 'kill -INT "$guest_pid" 2>/dev/null; wait "$guest_pid" 2>/dev/null; "${img[@]}" disk rm "$state/container.qcow2" 2>/dev/null' EXIT INT TERM
until grep -q "agent socket" "$state/pl-guest.out" 2>/dev/null; do
        kill -0 "$guest_pid" 2>/dev/null || { echo "run.sh: the guest did not start" >&2; exit 1; }
        sleep 0.2
done
sock=$(sed -n 's/^agent socket: //p' "$state/pl-guest.out")
cli=("$B/bin/pl-agent-cli" --socket "$sock")

echo "== images: ${img[*]} list"
"${img[@]}" list
echo "== container VM pl-demo is up; agent at $sock"
"${cli[@]}" info
"${cli[@]}" exec -- sh -c 'echo "hello from $(hostname), kernel $(uname -r)"; cat /etc/pl-test-marker; ls /'
echo "== try: ${cli[*]} exec --tty --stdin -- sh"
echo "== console: $state/pl-demo/console.log; Ctrl-C shuts the VM down"
wait "$guest_pid"
