#!/usr/bin/env bash
# Layer-to-ext4 benchmark: a generated tree of ~5,000 files (~500 MB of
# incompressible data, sizes 0..2x the mean, 50 directories) is packed as one
# layer tar; pl-mkext4 builds an image from the tar (no unpacked tree, no
# root) and, in the same run, "mke2fs -d" builds one from the unpacked tree
# (the baseline). Both images are checked with e2fsck -fn. With RUNS > 1 both
# builds are repeated on the same tree and every run is printed, then the
# range.
# Usage: scripts/bench-ext4.sh [files] [total-MiB] [runs]
# PL_MKEXT4=path/to/pl-mkext4 skips the release build; PL_BUILD_DIR (default
# build/release) is where it builds otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-5000}
mib=${2:-500}
runs=${3:-1}
for v in "$files" "$mib" "$runs"; do
        [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench-ext4.sh [files] [total-MiB] [runs] (positive integers)" >&2; exit 2; }
done
if [ -z "${PL_MKEXT4:-}" ]; then
        build=${PL_BUILD_DIR:-build/release}
        bash scripts/setup.sh >/dev/null
        cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build "$build" -j"$(nproc)" --target pl-mkext4 >/dev/null
        PL_MKEXT4=$build/bin/pl-mkext4
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

all_ours=() all_base=()
for ((run = 1; run <= runs; run++)); do
        rm -f "$dir/ours.img" "$dir/mke2fs.img"
        sync
        t0=$(now)
        "$PL_MKEXT4" --size "$size_mib" "$dir/ours.img" "$dir/layer.tar" 2>"$dir/pl-mkext4.log" ||
                { cat "$dir/pl-mkext4.log" >&2; exit 1; }
        t1=$(now)
        truncate -s "${size_mib}M" "$dir/mke2fs.img"
        mke2fs -q -F -t ext4 -O ^has_journal -d "$dir/tree" "$dir/mke2fs.img"
        t2=$(now)

        e2fsck -fn "$dir/ours.img" >/dev/null 2>&1 || { echo "e2fsck failed on the pl-mkext4 image" >&2; exit 1; }
        e2fsck -fn "$dir/mke2fs.img" >/dev/null 2>&1 || { echo "e2fsck failed on the mke2fs image" >&2; exit 1; }
        ours=$(echo "$t1 - $t0" | bc -l)
        base=$(echo "$t2 - $t1" | bc -l)
        all_ours+=("$ours")
        all_base+=("$base")
        ((runs == 1)) || echo "run $run:"
        printf 'pl-mkext4 (tar -> ext4):      %6.2f s\n' "$ours"
        printf 'mke2fs -d (tree -> ext4):     %6.2f s\n' "$base"
        printf 'ratio pl-mkext4 / mke2fs -d:  %6.2f\n' "$(echo "$ours / $base" | bc -l)"
done
if ((runs > 1)); then
        range() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f-%.2f", lo, hi}'; }
        echo "range over $runs runs: pl-mkext4 $(range "${all_ours[@]}") s, mke2fs -d $(range "${all_base[@]}") s"
fi
