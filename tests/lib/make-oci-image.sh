#!/usr/bin/env bash
# make-oci-image.sh: builds the OCI image layouts the image-store tests use,
# with umoci, from Debian's busybox-static. No network.
#
#     tests/lib/make-oci-image.sh LAYOUT_DIR
#
# LAYOUT_DIR (must not exist) becomes an OCI image layout holding:
#   tag latest       one layer: the busybox userland (applet symlinks, /etc
#                    passwd/group, a setuid file, a hard link, a long name),
#                    /etc/many with 1,500 files (an htree directory),
#                    config Entrypoint ["/bin/sh","-c"], Cmd ["echo hello"],
#                    Env, WorkingDir /work, User 0:0, StopSignal SIGINT, a label,
#                    ExposedPorts 8080/tcp
#   tag layered      latest plus a second layer that deletes a file
#                    (whiteout), replaces /etc/opaque's content and adds files
# umoci writes per-file whiteouts; opaque directories and other layer shapes
# come from hand-made tar layers in the tests themselves.
# Prints LAYOUT_DIR on success.
set -euo pipefail
out=${1:?usage: make-oci-image.sh LAYOUT_DIR}
[ -e "$out" ] && { echo "make-oci-image: '$out' exists" >&2; exit 1; }
for t in umoci /bin/busybox; do
        command -v "$t" >/dev/null || { echo "make-oci-image: $t missing (scripts/setup.sh)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/pl-oci-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

umoci init --layout "$out"
umoci new --image "$out:latest"

# Layer 1: the userland.
umoci unpack --rootless --image "$out:latest" "$work/b1" >/dev/null
root=$work/b1/rootfs
mkdir -p "$root"/{bin,etc,tmp,work,usr/bin,etc/opaque}
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nuser:x:1000:\n' > "$root/etc/group"
echo "pl-test-image" > "$root/etc/pl-test-marker"
echo "gone in layer 2" > "$root/etc/deleted-later"
echo "hidden by the opaque dir" > "$root/etc/opaque/old"
printf '#!/bin/sh\necho setuid\n' > "$root/usr/bin/suid-tool"
chmod 4755 "$root/usr/bin/suid-tool"
echo "linked" > "$root/etc/hardlink-a"
ln "$root/etc/hardlink-a" "$root/etc/hardlink-b"
# A directory of 1,500 entries: over one 4 KiB block, so our ext4 writer
# makes it an htree, which the guest kernel then has to read.
mkdir "$root/etc/many"
for i in $(seq -w 1 1500); do echo "$i" > "$root/etc/many/entry-with-a-longer-name-$i"; done
long=$(printf 'n%.0s' $(seq 200))
echo long > "$root/etc/$long"
chmod 1777 "$root/tmp"
umoci repack --image "$out:latest" "$work/b1" >/dev/null
umoci config --image "$out:latest" \
        --config.entrypoint /bin/sh --config.entrypoint -c --config.cmd "echo hello" \
        --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin --config.env PL_TEST=1 \
        --config.workingdir /work --config.user 0:0 --config.stopsignal SIGINT \
        --config.label org.example.test=yes --config.exposedports 8080/tcp \
        --os linux --architecture amd64

# Layer 2: whiteout, opaque dir, additions.
umoci unpack --rootless --image "$out:latest" "$work/b2" >/dev/null
root=$work/b2/rootfs
rm "$root/etc/deleted-later"
rm -rf "$root/etc/opaque"
mkdir "$root/etc/opaque"
echo "new in layer 2" > "$root/etc/opaque/new"
echo "layer 2" > "$root/etc/layer2"
umoci repack --image "$out:layered" "$work/b2" >/dev/null
umoci gc --layout "$out"
echo "$out"
