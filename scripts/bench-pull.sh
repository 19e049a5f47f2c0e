#!/usr/bin/env bash
# Image pull benchmark: a generated image is pushed to a loopback Debian
# docker-registry and pulled back, in the same run, by curl (the raw HTTP
# baseline), by skopeo (a peer tool) and by `pl-image pull` (download, verify,
# ext4 build). Everything runs on 127.0.0.1, so this measures our client and
# store, not a network.
#
# The image: LAYERS layers made with umoci, together MiB of uncompressed
# content (split evenly over the layers) in PL_BENCH_FILES files (default
# 3000): half the bytes are incompressible random files of varied sizes (a
# third of the files), half compressible text-like files (two thirds), so
# both the gzip/network path and the ext4 path matter.
#
# Measured per run (the median over RUNS is printed, with the range):
#   A  curl, 3 layer blobs at once (pl-image's default parallelism), to
#      /dev/null: total compressed bytes / wall time;
#   A' the same into files (no fsync): A plus the page-cache writes a pull
#      also makes;
#   B  skopeo copy docker://... oci:DIR (download + write + fsync blobs);
#   pull      pl-image pull into an empty store (manifest, config, layers,
#             verify, fsync, size the layers, build the ext4, commit), split
#             at the moment the last blob is reported done (pl-image prints
#             one line per blob when stderr is not a terminal);
#   import    pl-image import oci:<skopeo's copy> into an empty store: the
#             same work without HTTP;
#   again     a second pull of the same image into the same store (only the
#             manifest is fetched; nothing is built);
#   C  zlib inflate of the layer blobs (Python's zlib module, the library
#      libarchive uses), one after the other: one decompression pass (the
#      store makes two: sizing, then the ext4);
#   D  pl-mkext4 on the layer blobs (one pass: decompress, write, fsync),
#      the ext4 part of a pull alone.
#
# Usage: scripts/bench-pull.sh [MiB] [layers] [runs]     (defaults 400 4 3)
# Needs about 8x MiB of free space under /tmp at the peak.
# PL_IMAGE=path/to/pl-image and PL_MKEXT4=path/to/pl-mkext4 skip the release
# build; PL_BUILD_DIR (default build/release) is where it builds otherwise.
set -euo pipefail
export LC_ALL=C # "." in $EPOCHREALTIME, for bc
cd "$(dirname "$0")/.."
[ -n "${EPOCHREALTIME:-}" ] || { echo "bench-pull: needs bash 5 (EPOCHREALTIME)" >&2; exit 1; }
mib=${1:-400}
layers=${2:-4}
runs=${3:-3}
files=${PL_BENCH_FILES:-3000}
for v in "$mib" "$layers" "$runs" "$files"; do
        [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench-pull.sh [MiB] [layers] [runs] (positive integers)" >&2; exit 2; }
done
((files >= 3 * layers)) || { echo "bench-pull: PL_BENCH_FILES must be at least 3 per layer" >&2; exit 2; }
for t in umoci skopeo docker-registry curl python3 e2fsck dumpe2fs; do
        command -v "$t" >/dev/null || { echo "bench-pull: $t missing (scripts/setup.sh)" >&2; exit 1; }
done
if [ -z "${PL_IMAGE:-}" ] || [ -z "${PL_MKEXT4:-}" ]; then
        build=${PL_BUILD_DIR:-build/release}
        cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build "$build" -j2 --target pl-image pl-mkext4 >/dev/null
        PL_IMAGE=${PL_IMAGE:-$build/bin/pl-image}
        PL_MKEXT4=${PL_MKEXT4:-$build/bin/pl-mkext4}
fi
PL_IMAGE=$(realpath "$PL_IMAGE")
PL_MKEXT4=$(realpath "$PL_MKEXT4")
# The interpreter itself, not a wrapper (a pyenv shim costs ~0.1 s a start).
py=$(python3 -c 'import sys; print(sys.executable)')

work=$(mktemp -d /tmp/pl-bench-pull.XXXXXX)
reg_pid=
cleanup() {
        if [ -n "$reg_pid" ]; then
                kill "$reg_pid" 2>/dev/null || true
                wait "$reg_pid" 2>/dev/null || true
        fi
        rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the image ----

umoci init --layout "$work/layout"
umoci new --image "$work/layout:bench"
umoci unpack --rootless --image "$work/layout:bench" "$work/bundle" >/dev/null
per_layer=$((mib * 1024 * 1024 / layers))
for ((l = 1; l <= layers; l++)); do
        python3 - "$work/bundle/rootfs/l$l" "$per_layer" "$((files / layers))" "$l" <<'PY'
import os, random, sys
root, total, nfiles, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)

def sizes(n, total):
    # Varied sizes (log-normal), scaled to the total.
    w = [rnd.lognormvariate(0, 1.3) for _ in range(n)]
    s = sum(w)
    return [max(1, int(total * x / s)) for x in w]

# A text pool of word-like tokens, code-like lines and numbers: gzip takes
# it to about 45%. Files are slices of it at random offsets.
vocab = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rnd.randint(2, 11)))
         for _ in range(4000)]
lines = []
size = 0
while size < 8 << 20:
    indent = " " * (4 * rnd.randint(0, 3))
    words = rnd.choices(vocab, k=rnd.randint(3, 14))
    if rnd.random() < 0.3:
        line = "%s%s = %s(%d, \"%s\");\n" % (indent, words[0], words[1], rnd.randint(0, 99999), " ".join(words[2:]))
    else:
        line = indent + " ".join(words) + "\n"
    lines.append(line)
    size += len(line)
text = "".join(lines).encode()

n_rand = nfiles // 3
jobs = [("r", s) for s in sizes(n_rand, total // 2)] + [("t", s) for s in sizes(nfiles - n_rand, total - total // 2)]
rnd.shuffle(jobs)
for i, (kind, s) in enumerate(jobs):
    d = os.path.join(root, "d%02d" % (i % 40))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "%s%05d%s" % (kind, i, ".bin" if kind == "r" else ".txt")), "wb") as f:
        if kind == "r":
            f.write(os.urandom(s))
        else:
            while s > 0:
                off = rnd.randrange(0, len(text) - 1)
                chunk = text[off:off + min(s, len(text) - off)]
                f.write(chunk)
                s -= len(chunk)
PY
        umoci repack --refresh-bundle --image "$work/layout:bench" "$work/bundle" >/dev/null
done
umoci config --image "$work/layout:bench" --os linux --architecture amd64 --config.cmd /bin/sh
umoci gc --layout "$work/layout"
n_files=$(find "$work/bundle/rootfs" -type f | wc -l)
raw_bytes=$(find "$work/bundle/rootfs" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
rm -rf "$work/bundle"

# ---- the registry ----

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port, secret: pl-bench-secret}
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
url=http://127.0.0.1:$port
for ((i = 0; ; i++)); do
        curl -sf -o /dev/null "$url/v2/" && break
        if ((i >= 200)) || ! kill -0 "$reg_pid" 2>/dev/null; then
                echo "bench-pull: docker-registry did not come up; log:" >&2
                cat "$work/registry.log" >&2
                exit 1
        fi
        sleep 0.05
done
ref=127.0.0.1:$port/bench/pull:latest
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$work/layout:bench" "docker://$ref"
rm -rf "$work/layout"

# The layer blobs as the registry serves them: "digest size" per line.
curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "$url/v2/bench/pull/manifests/latest" |
        python3 -c 'import json, sys
for l in json.load(sys.stdin)["layers"]:
    print(l["digest"], l["size"])' >"$work/blobs.txt"
comp_bytes=$(awk '{s += $2} END {print s}' "$work/blobs.txt")
[ "$(wc -l <"$work/blobs.txt")" -eq "$layers" ] || { echo "bench-pull: the manifest does not have $layers layers" >&2; exit 1; }

# ---- the measurements ----

declare -a t_a t_a2 t_b t_c t_d t_pull t_net t_build t_import t_again
elapsed() { echo "$2 - $1" | bc -l; }

# Runs pl-image ARGS; prints "total-seconds seconds-to-last-blob-done".
timed_pl_image() {
        local t0=$EPOCHREALTIME last='' line ok=0
        : >"$work/pl-image.err"
        exec 3< <(
                rc=0
                "$PL_IMAGE" "$@" 2>&1 >/dev/null || rc=$?
                echo "exit $rc"
        )
        while IFS= read -r line <&3; do
                case $line in
                *": done "*) last=$EPOCHREALTIME ;;
                "exit 0") ok=1 ;;
                "exit "*) break ;;
                *) echo "$line" >>"$work/pl-image.err" ;;
                esac
        done
        exec 3<&-
        if ((!ok)); then
                echo "bench-pull: pl-image $* failed ($line):" >&2
                cat "$work/pl-image.err" >&2
                exit 1
        fi
        local t1=$EPOCHREALTIME
        echo "$(elapsed "$t0" "$t1") $(elapsed "$t0" "${last:-$t0}")"
}

for ((run = 1; run <= runs; run++)); do
        rm -rf "$work/skopeo" "$work/store" "$work/store2"
        sync

        t0=$EPOCHREALTIME
        awk -v u="$url/v2/bench/pull/blobs/" '{print u $1}' "$work/blobs.txt" | xargs -P3 -n1 curl -sf -o /dev/null
        t_a+=("$(elapsed "$t0" "$EPOCHREALTIME")")
        mkdir "$work/curl"
        t0=$EPOCHREALTIME
        awk -v u="$url/v2/bench/pull/blobs/" -v d="$work/curl/" '{print u $1, "-o", d NR}' "$work/blobs.txt" |
                xargs -P3 -L1 curl -sf
        t_a2+=("$(elapsed "$t0" "$EPOCHREALTIME")")
        rm -rf "$work/curl"
        sync

        t0=$EPOCHREALTIME
        skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$ref" "oci:$work/skopeo:bench"
        t_b+=("$(elapsed "$t0" "$EPOCHREALTIME")")
        sync

        read -r total net < <(timed_pl_image --store "$work/store" pull "$ref")
        t_pull+=("$total")
        t_net+=("$net")
        t_build+=("$(elapsed "$net" "$total")")
        sync

        read -r total _ < <(timed_pl_image --store "$work/store" pull "$ref")
        t_again+=("$total")
        sync

        read -r total _ < <(timed_pl_image --store "$work/store2" import "oci:$work/skopeo:bench" bench/import:latest)
        t_import+=("$total")
        sync

        mapfile -t layer_files < <(awk -v d="$work/skopeo/blobs/sha256/" '{sub(/^sha256:/, "", $1); print d $1}' "$work/blobs.txt")
        t0=$EPOCHREALTIME
        "$py" - "${layer_files[@]}" <<'PY'
import sys, zlib
for path in sys.argv[1:]:
    d = zlib.decompressobj(31)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 16):
            d.decompress(chunk)
PY
        t_c+=("$(elapsed "$t0" "$EPOCHREALTIME")")

        disk=$(echo "$work"/store/images/*/disk.ext4)
        disk_mib=$((($(stat -c %s "$disk") + 1048575) / 1048576))
        rm -f "$work/mkext4.img"
        t0=$EPOCHREALTIME
        "$PL_MKEXT4" --size "$disk_mib" "$work/mkext4.img" "${layer_files[@]}" 2>/dev/null
        t_d+=("$(elapsed "$t0" "$EPOCHREALTIME")")
        rm -f "$work/mkext4.img"

        if ((run == 1)); then
                # The disk is a clean ext4 holding every file.
                e2fsck -fn "$disk" >/dev/null 2>&1 || { echo "bench-pull: e2fsck failed on $disk" >&2; exit 1; }
                used=$(dumpe2fs -h "$disk" 2>/dev/null |
                        awk -F: '/^Inode count/ {n = $2} /^Free inodes/ {f = $2} END {print n - f}')
                ((used >= n_files)) || { echo "bench-pull: the disk has $used inodes for $n_files files" >&2; exit 1; }
        fi
done

# ---- the table ----

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
range() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f-%.2f", lo, hi}'; }
cmib=$(echo "$comp_bytes / 1048576" | bc -l)
umib=$(echo "$raw_bytes / 1048576" | bc -l)
base=$(median "${t_a[@]}")
row() { # name, unpacks (yes/no), bytes moved (1/0), times...
        local name=$1 unpacks=$2 moves=$3
        shift 3
        local m
        m=$(median "$@")
        local rate=- ratio=-
        if ((moves)); then
                rate=$(printf '%.0f' "$(echo "$cmib / $m" | bc -l)")
                ratio=$(printf '%.2f' "$(echo "$base / $m" | bc -l)")
        fi
        if ((unpacks)); then
                printf '%-34s %8.1f %8.1f %6d %7.2f %11s %7s %6s\n' "$name" "$cmib" "$umib" "$n_files" "$m" "$(range "$@")" "$rate" "$ratio"
        else
                printf '%-34s %8.1f %8s %6s %7.2f %11s %7s %6s\n' "$name" "$cmib" - - "$m" "$(range "$@")" "$rate" "$ratio"
        fi
}
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(uname -r); $layers layers, $runs runs (median, range)"
printf '%-34s %8s %8s %6s %7s %11s %7s %6s\n' measurement "comp MiB" "raw MiB" files seconds range "MiB/s" "vs A"
row "A curl, 3 blobs at once" 0 1 "${t_a[@]}"
row "A' curl into files, 3 at once" 0 1 "${t_a2[@]}"
row "B skopeo copy -> oci:" 0 1 "${t_b[@]}"
row "pl-image pull (whole)" 1 1 "${t_pull[@]}"
row "  start -> last blob done" 0 1 "${t_net[@]}"
row "  last blob done -> exit" 1 0 "${t_build[@]}"
row "pl-image import oci: (no HTTP)" 1 0 "${t_import[@]}"
row "C zlib inflate of the layers" 1 0 "${t_c[@]}"
row "D pl-mkext4 on the layers" 1 0 "${t_d[@]}"
row "pl-image pull again (no-op)" 0 0 "${t_again[@]}"
echo "(MiB/s and 'vs A' are compressed MiB over the row's seconds, relative to A: higher is better)"
