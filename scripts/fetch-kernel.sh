#!/usr/bin/env bash
# Fetches Debian's cloud kernel for the guests without installing it: the
# metapackage linux-image-cloud-amd64 is resolved to the concrete
# linux-image-<release> package, which is downloaded with `apt-get download`
# and unpacked with `dpkg-deb -x` into
#     ${PL_CACHE:-/var/cache/portlayer}/kernel/<release>/
#         vmlinuz                  the kernel image
#         config                   the kernel's build config (=y built in, =m module)
#         release                  the kernel release string
#         lib/modules/<release>/   the module tree as shipped, plus the modules.dep
#                                  (and friends) that depmod writes: the package
#                                  leaves that to its postinst, which we never run
# and ${PL_CACHE}/kernel/current -> <release> is (re)pointed at it.
#
# Idempotent: when the directory already exists nothing is downloaded. Atomic:
# the tree is prepared in a temporary directory beside it and renamed into
# place, so a reader never sees half a kernel. Logs go to stderr; the last line
# on stdout is the kernel directory.
#   PL_CACHE         cache root (default /var/cache/portlayer)
#   PL_KERNEL_PKG    metapackage to resolve (default linux-image-cloud-amd64)
set -euo pipefail

cache=${PL_CACHE:-/var/cache/portlayer}
meta=${PL_KERNEL_PKG:-linux-image-cloud-amd64}
kernels=$cache/kernel
PATH=$PATH:/usr/sbin:/sbin # depmod lives there; not on every user's PATH

work= # the temporary directory of a fetch in progress, removed on exit

log() { echo "fetch-kernel: $*" >&2; }
die() { log "$*"; exit 1; }

# Refreshes the package lists only when they are missing or older than a day.
refresh_lists() {
        local fresh
        fresh=$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n1)
        if [ -z "$fresh" ]; then
                [ "$(id -u)" -eq 0 ] || die "package lists are stale and refreshing them needs root"
                log "refreshing package lists"
                apt-get update -q >&2
        fi
}

# Prints the concrete linux-image-<release> package the metapackage depends on.
resolve_package() {
        apt-cache depends "$meta" 2>/dev/null |
                sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1
}

# Points kernel/current at the release, atomically (symlink beside it + rename).
set_current() {
        local release=$1 tmp=$kernels/.current.$$
        ln -s "$release" "$tmp"
        mv -T "$tmp" "$kernels/current"
}

# Downloads and unpacks package $1 (release $2) into $kernels/$2.
fetch() {
        local pkg=$1 release=$2 deb
        work=$(mktemp -d "$kernels/.fetch-$release.XXXXXX")
        trap '[ -z "$work" ] || rm -rf "$work"' EXIT
        # apt drops privileges to _apt for the download; let it write here.
        if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
                chown _apt "$work"
        fi
        log "downloading $pkg"
        (cd "$work" && apt-get download -q "$pkg" >&2)
        deb=$(find "$work" -maxdepth 1 -name "${pkg}_*.deb" | head -n1)
        [ -n "$deb" ] || die "apt-get download left no .deb for $pkg"
        log "unpacking $(basename "$deb")"
        dpkg-deb -x "$deb" "$work/x"

        local out=$work/out
        mkdir -p "$out/lib/modules"
        [ -f "$work/x/boot/vmlinuz-$release" ] || die "$pkg has no boot/vmlinuz-$release"
        [ -d "$work/x/lib/modules/$release/kernel" ] || die "$pkg has no lib/modules/$release/kernel"
        mv "$work/x/boot/vmlinuz-$release" "$out/vmlinuz"
        mv "$work/x/boot/config-$release" "$out/config"
        mv "$work/x/lib/modules/$release" "$out/lib/modules/$release"
        echo "$release" >"$out/release"
        # An empty config directory: the host's /etc/depmod.d must not matter.
        mkdir "$work/depmod.d"
        depmod -C "$work/depmod.d" -b "$out" "$release"
        [ -s "$out/lib/modules/$release/modules.dep" ] || die "depmod wrote no modules.dep for $release"
        chmod 0755 "$out"

        # A concurrent run may have won the race; its tree is as good as ours.
        if ! mv -T "$out" "$kernels/$release" 2>/dev/null; then
                [ -f "$kernels/$release/vmlinuz" ] || die "cannot rename the kernel into $kernels/$release"
                log "another run installed $release meanwhile"
        fi
        rm -rf "$work"
        work=
}

main() {
        command -v depmod >/dev/null || die "depmod not found: install the kmod package (scripts/setup.sh)"
        mkdir -p "$kernels"
        refresh_lists
        local pkg release
        pkg=$(resolve_package)
        if [ -z "$pkg" ]; then
                # Offline or no lists: fall back to what was fetched before.
                [ -e "$kernels/current/vmlinuz" ] || die "cannot resolve $meta to a linux-image package"
                log "cannot resolve $meta; keeping $(readlink "$kernels/current")"
                release=$(readlink "$kernels/current")
        else
                release=${pkg#linux-image-}
                if [ -f "$kernels/$release/vmlinuz" ]; then
                        log "$release already in $kernels"
                else
                        fetch "$pkg" "$release"
                fi
        fi
        set_current "$release"
        echo "$kernels/$release"
}

main "$@"
