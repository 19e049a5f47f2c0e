# bench-netns.sh: sourced by the benchmarks that run inside a network
# namespace of their own (bench-net.sh, bench-usernet.sh). Outside one,
# bench_netns_enter builds the targets, finds the guest kernel, makes the
# namespace, runs the calling script again inside it and exits with its
# status, deleting the namespace (and ending what is left in it) on the way
# out. Inside (PL_BENCH_NETNS set) it returns, and B is the build directory.
#
#   bench_netns_enter NAME "$0" KDIR_VAR TARGETS... -- ARGS...
#     NAME      for messages; KDIR_VAR the variable holding the kernel
#               directory (filled from guest-kernel.sh when empty), passed
#               to the inner run as the last of ARGS
#   PL_BUILD_DIR=build/dev uses an existing build (default: build/release,
#   configured as Release)
bench_netns_enter() {
        local name=$1 self=$2 kvar=$3
        shift 3
        local targets=()
        while [ "$1" != "--" ]; do targets+=("$1"); shift; done
        shift
        if [ -n "${PL_BENCH_NETNS:-}" ]; then
                B=$PL_BUILD_DIR
                return 0
        fi
        [ "$(id -u)" -eq 0 ] || { echo "$name: needs root (a network namespace)" >&2; exit 1; }
        B=${PL_BUILD_DIR:-build/release}
        if [ -z "${PL_BUILD_DIR:-}" ]; then
                cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release >/dev/null
        fi
        nice cmake --build "$B" -j2 --target "${targets[@]}" >/dev/null
        local kdir=${!kvar}
        [ -n "$kdir" ] || kdir=$(bash scripts/guest-kernel.sh | tail -n 1)
        ns=plbench-$$
        ip netns add "$ns"
        trap 'pids=$(ip netns pids "$ns" 2>/dev/null); [ -n "$pids" ] && kill -9 $pids 2>/dev/null; ip netns del "$ns"' EXIT
        PL_BENCH_NETNS=$ns PL_BUILD_DIR=$B ip netns exec "$ns" bash "$self" "$@" "$kdir"
        exit $?
}
