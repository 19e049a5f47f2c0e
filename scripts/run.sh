#!/usr/bin/env bash
# The main job: installs what is missing, builds, makes the guest kernel,
# imports a busybox test image into the image store, and runs portlayerd in
# the foreground on libvirt's embedded QEMU driver (KVM when usable, TCG
# otherwise), serving the REST API on a Unix socket. It prints the curl lines
# that run a container. Ctrl-C stops the daemon; containers keep running and
# the next start reattaches to them (remove them through the API first to
# leave nothing behind).
#   PL_STATE       state directory (default ./state; keep its path short:
#                  libvirt limits the embedded root's socket paths)
#   PL_KERNEL_DIR  a kernel directory to boot instead of our own module-free
#                  kernel (built by scripts/build-kernel.sh the first time, a
#                  few minutes): any directory with vmlinuz, release and
#                  lib/modules/, e.g. Debian's cloud kernel from
#                  scripts/fetch-kernel.sh (or PL_GUEST_KERNEL=debian)
set -euo pipefail
cd "$(dirname "$0")/.."
state=${PL_STATE:-$PWD/state}
mkdir -p "$state"
state=$(cd "$state" && pwd)

bash scripts/setup.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j"$(nproc)"
B=build/release/bin

kdir=$(bash scripts/guest-kernel.sh | tail -n 1)
# The test image: a busybox OCI image built with umoci, imported into the
# daemon's image store (layers written into ext4 with libext2fs).
rm -rf "$state/oci-busybox"
bash tests/lib/make-oci-image.sh "$state/oci-busybox" >/dev/null
"$B/pl-image" --store "$state/images" import "oci:$state/oci-busybox:latest" localhost/busybox:latest

sock=$state/portlayer.sock
c="curl -s --unix-socket $sock"
cat <<EOF

== portlayerd starts on $sock (state in $state). In another shell:
  # create a container from the test image, give it a program, run it
  h=\$($c -X POST -d '{"name": "demo", "image": "localhost/busybox:latest"}' http://pl/containers | sed 's/.*"handle":"\\([^"]*\\)".*/\\1/')
  $c -X PUT -d '{"path": "/bin/sh", "args": ["-c", "echo hello; exec sleep 100000"]}' http://pl/handles/\$h/entrypoint
  $c -X PUT -d '{"state": "running"}' http://pl/handles/\$h/state; $c -X POST http://pl/handles/\$h/commit
  # run a command in it, then remove it
  $c -X POST -d '{"path": "/bin/uname", "args": ["-a"]}' http://pl/containers/demo/exec-sync
  $c -X DELETE 'http://pl/containers/demo?force=1'
(docs/api.md has every call.) Or with the docker CLI (docs/docker.md):
  DOCKER_HOST=unix://$state/docker.sock docker run -it --rm localhost/busybox:latest sh
Ctrl-C stops the daemon.

EOF
exec "$B/portlayerd" --state-dir "$state" --socket "$sock" --guest-kernel "$kdir/vmlinuz"
