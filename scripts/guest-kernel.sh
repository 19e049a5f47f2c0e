#!/usr/bin/env bash
# Prints (last line on stdout) the directory of the guest kernel the daemon,
# the tests and the benchmarks boot by default:
#   - $PL_KERNEL_DIR when set (any directory with vmlinuz, release and
#     lib/modules/<release>/);
#   - PL_GUEST_KERNEL=debian: Debian's cloud kernel (scripts/fetch-kernel.sh,
#     a download);
#   - otherwise ours (scripts/build-kernel.sh: module-free, from Debian's
#     linux-source and kernel-config/; a few minutes on 2 cores the first
#     time, then a no-op). It is the default because an idle guest costs about
#     50 MB less host memory with it and boots in half the time
#     (docs/templates.md, docs/benchmarks.md).
# The daemon's own default (no --guest-kernel) is the same choice:
# kernel/pl-current when built, else kernel/current.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PL_KERNEL_DIR:-}" ]; then
        [ -f "$PL_KERNEL_DIR/vmlinuz" ] || { echo "guest-kernel: no vmlinuz in PL_KERNEL_DIR=$PL_KERNEL_DIR" >&2; exit 1; }
        echo "$PL_KERNEL_DIR"
        exit 0
fi
case ${PL_GUEST_KERNEL:-ours} in
ours) exec bash scripts/build-kernel.sh ;;
debian) exec bash scripts/fetch-kernel.sh ;;
*)
        echo "guest-kernel: PL_GUEST_KERNEL must be 'ours' or 'debian', not '$PL_GUEST_KERNEL'" >&2
        exit 2
        ;;
esac
