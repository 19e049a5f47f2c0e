#!/usr/bin/env bash
# Builds the root disk the e2e tests boot: a busybox userland (from Debian's
# busybox-static) with /etc/passwd, /etc/group and an unprivileged user, as an
# ext4 image written by `mke2fs -d` (no mount, no root needed). The image is
# cached by content: building twice is a no-op.
# Usage: scripts/make-test-rootfs.sh OUTPUT.ext4 [SIZE_MiB]
set -euo pipefail
out=${1:?usage: make-test-rootfs.sh OUTPUT.ext4 [SIZE_MiB]}
size=${2:-64}
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "make-test-rootfs: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
file -L "$busybox" 2>/dev/null | grep -q "statically linked" ||
        { echo "make-test-rootfs: $busybox is not static (install busybox-static)" >&2; exit 1; }

stamp="$(sha256sum "$busybox" "$0" | sha256sum | cut -c1-16)-$size"
if [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
        echo "$out"
        exit 0
fi

tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree"/{bin,sbin,etc,root,tmp,proc,sys,dev,home/user,usr/bin,usr/sbin,var/tmp}
cp "$busybox" "$tree/bin/busybox"
for applet in $("$busybox" --list); do
        [ "$applet" = busybox ] || ln -s busybox "$tree/bin/$applet"
done
cat > "$tree/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:Test User:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat > "$tree/etc/group" <<'GR'
root:x:0:
user:x:1000:
audio:x:29:user
nogroup:x:65534:
GR
chmod 1777 "$tree/tmp" "$tree/var/tmp"
echo "pl-test-rootfs" > "$tree/etc/pl-test-marker"

tmp="$out.tmp.$$"
rm -f "$tmp"
mke2fs -q -t ext4 -d "$tree" -L pl-root -E root_owner=0:0 "$tmp" "${size}M" >&2
# Files from a non-root build would carry the builder's uid; the root disk is
# owned by root except the test user's home.
debugfs -w -R "set_inode_field /home/user uid 1000" "$tmp" >/dev/null 2>&1
debugfs -w -R "set_inode_field /home/user gid 1000" "$tmp" >/dev/null 2>&1
e2fsck -fn "$tmp" >/dev/null 2>&1 || { echo "make-test-rootfs: e2fsck found errors in $tmp" >&2; exit 1; }
mv -f "$tmp" "$out"
echo "$stamp" > "$out.stamp"
echo "$out"
