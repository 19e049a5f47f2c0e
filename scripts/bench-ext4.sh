#!/usr/bin/env bash
# Layer-to-ext4 benchmark: a generated tree of ~5,000 files (~500 MB of
# incompressible data, sizes 0..2x the mean, 50 directories) is packed as one
# layer tar; pl-mkext4 builds an image from the tar (no unpacked tree, no
# root) and, in the same run, "mke2fs -d" builds one from the unpacked tree
# (the baseline). Both images are checked with e2fsck -fn.
# Usage: scripts/bench-ext4.sh [files] [total-MiB]
# PL_MKEXT4=path/to/pl-mkext4 skips the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-5000}
mib=${2:-500}
if [ -z "${PL_MKEXT4:-}" ]; then
        bash scripts/setup.sh >/dev/null
        cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build build/release -j"$(nproc)" --target pl-mkext4 >/dev/null
        PL_MKEXT4=build/release/images/pl-mkext4
fi
dir=$(mktemp -d /tmp/pl-bench-ext4.XXXXXX)
trap 'rm -rf "$dir"' EXIT

# The tree: file i gets a size spread around the mean so the total is ~mib.
mkdir -p "$dir/tree"
mean=$((mib * 1024 * 1024 / files))
head -c $((mib * 1024 * 1024 + 8 * 1024 * 1024)) /dev/urandom >"$dir/pool"
python3 - "$dir/tree" "$dir/pool" "$files" "$mean" <<'PY'
import os, sys
root, pool, files, mean = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open(pool, "rb") as f:
    data = f.read()
off = 0
for i in range(files):
    d = os.path.join(root, "d%02d" % (i % 50))
    os.makedirs(d, exist_ok=True)
    size = max(1, mean * (1 + (i * 7919) % 1000) // 500)  # 0..2x the mean
    if off + size > len(data):
        off = 0
    with open(os.path.join(d, "f%05d" % i), "wb") as out:
        out.write(data[off:off + size])
    off += size
PY
rm -f "$dir/pool"
tar -C "$dir/tree" -cf "$dir/layer.tar" .
bytes=$(du -sb "$dir/tree" | cut -f1)
size_mib=$(((bytes * 12 / 10 + files * 8192) / 1048576 + 64))
sync

now() { date +%s.%N; }
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(uname -r); $files files, $((bytes / 1048576)) MiB, image $size_mib MiB"

t0=$(now)
"$PL_MKEXT4" --size "$size_mib" "$dir/ours.img" "$dir/layer.tar" 2>/dev/null
t1=$(now)
truncate -s "${size_mib}M" "$dir/mke2fs.img"
mke2fs -q -F -t ext4 -O ^has_journal -d "$dir/tree" "$dir/mke2fs.img"
t2=$(now)

e2fsck -fn "$dir/ours.img" >/dev/null 2>&1 || { echo "e2fsck failed on the pl-mkext4 image" >&2; exit 1; }
e2fsck -fn "$dir/mke2fs.img" >/dev/null 2>&1 || { echo "e2fsck failed on the mke2fs image" >&2; exit 1; }
ours=$(echo "$t1 - $t0" | bc -l)
base=$(echo "$t2 - $t1" | bc -l)
printf 'pl-mkext4 (tar -> ext4):      %6.2f s\n' "$ours"
printf 'mke2fs -d (tree -> ext4):     %6.2f s\n' "$base"
printf 'ratio pl-mkext4 / mke2fs -d:  %6.2f\n' "$(echo "$ours / $base" | bc -l)"
