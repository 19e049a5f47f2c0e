#!/usr/bin/env bash
# Builds our own guest kernel, module-free, from Debian's linux-source tarball
# and the fragments in kernel-config/, and installs it beside the distribution
# kernel that scripts/fetch-kernel.sh fetches, in the same layout:
#     ${PL_CACHE:-/var/cache/portlayer}/kernel/pl-<version>-<hash>/
#         vmlinuz    the bzImage
#         config     its final .config
#         release    the kernel release string (uname -r): <version>-pl-<hash>
#         lib/modules/<release>/
#                    modules.builtin (+ .modinfo), what is compiled in, and an
#                    empty modules.dep: the kernel has no loadable modules, and
#                    this is the tree depmod would leave for it. With it the
#                    module resolver (images/boot/kernel-modules.c) accepts every
#                    module name the guest asks for as built in, and still
#                    fails for one that is not compiled in.
# and points kernel/pl-current at it.
#
# Steps: unpack /usr/src/linux-source-<ver>.tar.xz once into
# ${PL_CACHE}/kernel-build/src-<package version>/ (the tree is never written
# to: objects go to obj-<package version>/ with O=, so a later build with
# other fragments is incremental); `make allnoconfig`; merge every
# kernel-config/*.config with scripts/kconfig/merge_config.sh -m; `make
# olddefconfig`; verify that every value a fragment sets is the value in the
# final .config (Kconfig silently drops a value whose dependencies are off:
# the classic trap of fragments), failing with the list of those that did
# not stick; `make bzImage -j$(nproc)`; install atomically.
#
# Content-addressed: <hash> covers the fragments (names and settings), the
# source package version and this script's build recipe (RECIPE below). When
# that directory exists nothing is done. The compiler is not part of the hash.
# Builds are serialized by a lock in kernel-build/. Installs nothing itself:
# missing build tools are listed with the Debian packages that provide them.
#
# Logs go to stderr; the last line on stdout is the kernel directory. The
# kernel build's own output goes to kernel-build/build-<hash>.log, which is
# kept (and its tail printed) when the build fails.
#
# Usage: scripts/build-kernel.sh [--config-only | --check-tools]
#   --config-only     stop after the verified .config; print its path
#   --check-tools     only check that the build tools are installed
# Environment:
#   PL_CACHE              cache root (default /var/cache/portlayer)
#   PL_KERNEL_SOURCE      the source tarball (default: the newest
#                         /usr/src/linux-source-*.tar.xz)
#   PL_KERNEL_CONFIG_DIR  fragment directory (default: kernel-config/ here)
#   PL_KERNEL_JOBS        parallel jobs (default: nproc)
set -euo pipefail

# Bump when the way the kernel is built or installed changes, so that a
# kernel built the old way is not taken for the new one.
RECIPE=3
ARCH=x86_64

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${PL_CACHE:-/var/cache/portlayer}
kernels=$cache/kernel
builds=$cache/kernel-build
fragdir=${PL_KERNEL_CONFIG_DIR:-$top/kernel-config}
jobs=${PL_KERNEL_JOBS:-$(nproc)}
config_only=0

work= # temporary directory of an unpack or install in progress, removed on exit
log_file=
started=$(date +%s)

log() { echo "build-kernel: $*" >&2; }
die() { log "$*"; exit 1; }

cleanup() {
        [ -z "$work" ] || rm -rf "$work"
}
trap cleanup EXIT

# Fails with the packages to install when a build tool is missing.
check_tools() {
        local missing=() t
        command -v gcc >/dev/null && command -v make >/dev/null && [ -e /usr/include/stdio.h ] ||
                missing+=(build-essential)
        for t in bc:bc flex:flex bison:bison xz:xz-utils lz4:lz4 perl:perl flock:util-linux; do
                command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
        done
        # objtool (the ORC unwinder's checker, built with the kernel) needs libelf.
        [ -e /usr/include/libelf.h ] || [ -e /usr/include/elfutils/libelf.h ] || missing+=(libelf-dev)
        if [ -n "${PL_KERNEL_SOURCE:-}" ]; then
                [ -f "$PL_KERNEL_SOURCE" ] || die "PL_KERNEL_SOURCE: no such file: $PL_KERNEL_SOURCE"
        elif [ -z "$(source_tarball)" ]; then
                missing+=(linux-source)
        fi
        [ ${#missing[@]} -eq 0 ] && return 0
        log "missing build tools. PACKAGES NEEDED (Debian):"
        log "    ${missing[*]}"
        log "install them with: apt-get install --no-install-recommends ${missing[*]}"
        log "(the full list this script needs: linux-source build-essential bc flex bison"
        log " libelf-dev xz-utils lz4; not needed: libssl-dev (no module signing),"
        log " dwarves (no BTF), cpio (no in-kernel headers archive))"
        exit 1
}

source_tarball() {
        if [ -n "${PL_KERNEL_SOURCE:-}" ]; then
                [ -f "$PL_KERNEL_SOURCE" ] && echo "$PL_KERNEL_SOURCE"
                return 0
        fi
        local f
        for f in /usr/src/linux-source-*.tar.xz; do
                [ -f "$f" ] && echo "$f"
        done | sort -V | tail -n1
}

# Sets src_id (names the source in the hash and in kernel-build/) and kver
# (the upstream kernel version, e.g. 6.1.192) for the tarball $1. A tarball
# from a Debian package is named by the package version; any other by its
# SHA-256, with the version read from its Makefile.
identify_source() {
        local tarball=$1 pkg ver
        pkg=$(dpkg-query -S "$tarball" 2>/dev/null | head -n1 | cut -d: -f1 || true)
        ver=
        if [ -n "$pkg" ]; then
                ver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)
        fi
        if [ -n "$ver" ]; then
                src_id="$pkg-$ver"
                kver=${ver%-*}  # 6.1.192-2 -> 6.1.192
                kver=${kver#*:} # no epoch
        else
                src_id="sha256-$(sha256sum "$tarball" | cut -c1-16)"
                kver=$(tar -xJOf "$tarball" --wildcards --occurrence=1 '*/Makefile' |
                        awk '/^VERSION =/{v=$3} /^PATCHLEVEL =/{p=$3} /^SUBLEVEL =/{s=$3}
                             /^EXTRAVERSION =/{e=$3; print v "." p "." s e; exit}')
        fi
        [[ $kver =~ ^[0-9]+\.[0-9]+ ]] || die "cannot tell the kernel version of $tarball"
}

fragments() {
        local f
        for f in "$fragdir"/*.config; do
                [ -f "$f" ] && echo "$f"
        done | LC_ALL=C sort
}

# The content address: 16 hex digits of SHA-256 over the recipe, the source
# and every fragment's name and settings, in name and line order. Comments and
# blank lines are left out, so editing an explanation does not make a new
# kernel.
build_hash() {
        local f
        {
                printf 'portlayer-kernel recipe %s arch %s\nsource %s\n' "$RECIPE" "$ARCH" "$src_id"
                for f in $(fragments); do
                        printf 'fragment %s\n' "$(basename "$f")"
                        grep -E '^CONFIG_[A-Za-z0-9_]+=|^# CONFIG_[A-Za-z0-9_]+ is not set$' "$f" || true
                done
        } | sha256sum | cut -c1-16
}

# Points kernel/pl-current at $1, atomically (symlink beside it + rename).
set_current() {
        local tmp=$kernels/.pl-current.$$
        ln -sfn "$1" "$tmp"
        mv -T "$tmp" "$kernels/pl-current"
}

# Runs make in the object directory with our fixed variables; output to the log.
kmake() {
        make -C "$src" O="$obj" ARCH="$ARCH" LOCALVERSION="-pl-$hash" \
                KBUILD_BUILD_USER=portlayer KBUILD_BUILD_HOST=portlayer KBUILD_BUILD_VERSION=1 \
                KBUILD_BUILD_TIMESTAMP="$build_timestamp" "$@" >>"$log_file" 2>&1
}

fail_build() {
        log "$1 failed; the last lines of $log_file:"
        tail -n 40 "$log_file" >&2 || true
        die "build failed (full log: $log_file)"
}

# Unpacks the tarball into $src once: into a temporary directory beside it,
# renamed into place when complete.
unpack() {
        local tarball=$1 top_dir
        [ -f "$src/Makefile" ] && return 0
        log "unpacking $(basename "$tarball") into $src"
        work=$(mktemp -d "$builds/.unpack.XXXXXX")
        tar -xJf "$tarball" -C "$work" || die "cannot unpack $tarball"
        top_dir=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n1)
        if [ -z "$top_dir" ] || [ ! -f "$top_dir/Makefile" ]; then
                die "$tarball holds no kernel tree"
        fi
        rm -rf "$src"
        mv -T "$top_dir" "$src"
        rm -rf "$work"
        work=
}

# Prints "SYMBOL: wanted X, got Y (fragment)" for every value set in a fragment that
# the final config $1 does not have; "=n" and "is not set" both mean off, and
# an off symbol may be missing from the config (its dependencies are off).
# Two fragments setting one symbol differently are reported too.
config_mismatches() {
        local config=$1
        shift
        awk -v config="$config" '
                function value(line,   v) {
                        if (line ~ /^# CONFIG_[A-Za-z0-9_]+ is not set$/)
                                return "n"
                        v = substr(line, index(line, "=") + 1)
                        return v == "n" ? "n" : v
                }
                function symbol(line) {
                        if (line ~ /^# /)
                                return substr(line, 3, index(line, " is not set") - 3)
                        return substr(line, 1, index(line, "=") - 1)
                }
                !/^CONFIG_[A-Za-z0-9_]+=/ && !/^# CONFIG_[A-Za-z0-9_]+ is not set$/ { next }
                FILENAME == config { have[symbol($0)] = value($0); next }
                {
                        s = symbol($0); v = value($0)
                        if ((s in want) && want[s] != v)
                                printf "%s: fragments disagree (%s: %s, %s: %s)\n", s, from[s], want[s], FILENAME, v
                        want[s] = v; from[s] = FILENAME
                }
                END {
                        for (s in want) {
                                got = (s in have) ? have[s] : "n"
                                if (got != want[s])
                                        printf "%s: wanted %s, got %s (%s)\n", s, want[s] == "n" ? "not set" : want[s], got == "n" ? "not set" : got, from[s]
                        }
                }' "$config" "$@" | sed "s|$fragdir/||g" | LC_ALL=C sort
}

# Where a symbol is defined and what it depends on: a hint for each mismatch.
kconfig_hint() {
        local sym=${1#CONFIG_} file
        file=$(grep -rl --include='Kconfig*' -E "^(menu)?config $sym\$" "$src" 2>/dev/null | head -n1 || true)
        [ -n "$file" ] || { echo "      (no such symbol in this kernel)"; return 0; }
        echo "      defined in ${file#"$src"/}:"
        awk -v sym="$sym" '
                $0 ~ "^(menu)?config " sym "$" { p = 1; next }
                p && /^(menu)?config |^(end)?(menu|if|choice)|^source/ { exit }
                p && /^[ \t]+(depends on|select|default|bool|tristate)/ { print "        " $0 }
        ' "$file" | head -n 8
}

configure() {
        local frags=() mismatches line
        mapfile -t frags < <(fragments)
        [ ${#frags[@]} -gt 0 ] || die "no fragments in $fragdir"
        log "configuring: allnoconfig + $(printf '%s ' "${frags[@]##*/}")"
        kmake allnoconfig || fail_build "make allnoconfig"
        (cd "$obj" && sh "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "${frags[@]}") \
                >>"$log_file" 2>&1 || fail_build "merge_config.sh"
        kmake olddefconfig || fail_build "make olddefconfig"
        mismatches=$(config_mismatches "$obj/.config" "${frags[@]}")
        if [ -n "$mismatches" ]; then
                log "these fragment values did not stick (a dependency is off, the symbol does"
                log "not exist in this kernel, or two fragments disagree):"
                while IFS= read -r line; do
                        log "    $line"
                        kconfig_hint "${line%%:*}" >&2
                done <<<"$mismatches"
                log "final config: $obj/.config"
                rm -f "$log_file"
                exit 1
        fi
        log "all $(cat "${frags[@]}" | grep -cE '^CONFIG_[A-Za-z0-9_]+=|^# CONFIG_[A-Za-z0-9_]+ is not set$') fragment values are in the final config"
}

install_kernel() {
        local name=$1 release out
        release=$(make -s -C "$src" O="$obj" ARCH="$ARCH" LOCALVERSION="-pl-$hash" kernelrelease 2>>"$log_file")
        [ "$release" = "$kver-pl-$hash" ] || die "kernel release is '$release', expected '$kver-pl-$hash'"
        work=$(mktemp -d "$kernels/.build-$name.XXXXXX")
        out=$work/out
        mkdir "$out"
        cp "$obj/arch/x86/boot/bzImage" "$out/vmlinuz"
        cp "$obj/.config" "$out/config"
        echo "$release" >"$out/release"
        mkdir -p "$out/lib/modules/$release"
        cp "$obj/modules.builtin" "$obj/modules.builtin.modinfo" "$out/lib/modules/$release/"
        : >"$out/lib/modules/$release/modules.dep"
        find "$out" -type d -exec chmod 0755 {} +
        find "$out" -type f -exec chmod 0644 {} +
        if ! mv -T "$out" "$kernels/$name" 2>/dev/null; then
                [ -f "$kernels/$name/vmlinuz" ] || die "cannot rename the kernel into $kernels/$name"
                log "another run installed $name meanwhile"
        fi
        rm -rf "$work"
        work=
}

main() {
        case "${1:-}" in
        "") ;;
        --config-only) config_only=1 ;;
        --check-tools) check_tools; log "all build tools are installed"; exit 0 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
        esac
        [[ $jobs =~ ^[1-9][0-9]*$ ]] || die "PL_KERNEL_JOBS must be a positive number, not '$jobs'"
        check_tools
        local tarball name
        tarball=$(source_tarball)
        identify_source "$tarball"
        hash=$(build_hash)
        name=pl-$kver-$hash
        if [ $config_only -eq 0 ] && [ -f "$kernels/$name/vmlinuz" ]; then
                log "$name is already built"
                set_current "$name"
                echo "$kernels/$name"
                return 0
        fi

        mkdir -p "$builds" "$kernels"
        exec 9>"$builds/.lock"
        if ! flock -n 9; then
                log "waiting for another build-kernel run to finish"
                flock 9
        fi
        if [ $config_only -eq 0 ] && [ -f "$kernels/$name/vmlinuz" ]; then
                log "$name was built by another run meanwhile"
                set_current "$name"
                echo "$kernels/$name"
                return 0
        fi

        src=$builds/src-$src_id
        obj=$builds/obj-$src_id
        log_file=$builds/build-$hash.log
        : >"$log_file"
        # Reproducible version banner: the source's date, not the build's.
        build_timestamp=$(date -u -d "@$(stat -c %Y "$tarball")" '+%a %b %e %H:%M:%S UTC %Y')
        unpack "$tarball"
        mkdir -p "$obj"
        [ "$(make -s -C "$src" kernelversion 2>/dev/null)" = "$kver" ] ||
                die "$src is kernel $(make -s -C "$src" kernelversion 2>/dev/null), expected $kver"
        configure
        if [ $config_only -eq 1 ]; then
                rm -f "$log_file"
                echo "$obj/.config"
                return 0
        fi

        log "building $name with $jobs jobs (log: $log_file)"
        kmake -j"$jobs" bzImage || fail_build "make bzImage"
        install_kernel "$name"
        set_current "$name"
        rm -f "$log_file"
        log "built $name in $(( $(date +%s) - started )) s: $(stat -c %s "$kernels/$name/vmlinuz") bytes"
        echo "$kernels/$name"
}

main "$@"
