#!/usr/bin/env bash
# bench-ext4-dir.sh: times pl-mkext4 on one layer whose single directory holds
# N empty files (the many-entries-in-one-directory case) against the baseline
# `mke2fs -d` on the same unpacked tree in the same run, and checks both
# images with e2fsck -fn.
#
#     bash scripts/bench-ext4-dir.sh [N...]        (default: 5000 20000 100000)
#
# PL_MKEXT4=path uses an existing pl-mkext4 instead of building one in
# build/release. PL_BENCH_DIRS=1 makes N empty subdirectories instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mkext4=${PL_MKEXT4:-}
if [ -z "$mkext4" ]; then
        cmake -S "$root" -B "$root/build/release" -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build "$root/build/release" --target pl-mkext4 -j2 >/dev/null
        mkext4="$root/build/release/bin/pl-mkext4"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ $# -gt 0 ] || set -- 5000 20000 100000
for n in "$@"; do
        rm -rf "$work/t" "$work/l.tar" "$work/img" "$work/base.img"
        python3 - "$work/t/d" "$n" "${PL_BENCH_DIRS:-0}" <<'PY'
import os, sys
d, n, dirs = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
os.makedirs(d)
for i in range(n):
    p = os.path.join(d, "f%06d" % i)
    if dirs:
        os.mkdir(p)
    else:
        open(p, "w").close()
PY
        tar -C "$work/t" -cf "$work/l.tar" d
        size=$(( 64 + n / 64 ))
        start=$(date +%s.%N)
        "$mkext4" --size "$size" "$work/img" "$work/l.tar" 2>/dev/null
        end=$(date +%s.%N)
        ours=$(echo "$end - $start" | bc)
        if e2fsck -fn "$work/img" >/dev/null 2>&1; then fsck=clean; else fsck=ERRORS; fi
        start=$(date +%s.%N)
        mke2fs -q -t ext4 -O ^has_journal -d "$work/t" "$work/base.img" "${size}M" 2>/dev/null
        end=$(date +%s.%N)
        base=$(echo "$end - $start" | bc)
        if e2fsck -fn "$work/base.img" >/dev/null 2>&1; then bfsck=clean; else bfsck=ERRORS; fi
        printf '%8d entries: pl-mkext4 %7.2f s (e2fsck %s)  mke2fs -d %7.2f s (e2fsck %s)  ratio %.3f\n' \
                "$n" "$ours" "$fsck" "$base" "$bfsck" "$(echo "$ours / $base" | bc -l)"
done
