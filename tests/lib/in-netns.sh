#!/usr/bin/env bash
# in-netns.sh: runs a command inside a network namespace of its own and
# removes the namespace afterwards, also when the command fails or is killed.
#
#   tests/lib/in-netns.sh COMMAND [ARG...]
#
# Every test that starts portlayerd (and so a bridge, taps, nftables rules and
# VMs with NICs), a registry or their clients runs through this wrapper: the
# namespace has only a loopback interface, brought up here, so nothing the
# test does can send a packet anywhere but loopback and the namespace's own
# bridges. The namespace is named "pltest-<pid>", exported as PL_TEST_NETNS.
# Needs root and iproute2; without them the test is skipped (exit 77, or a
# failure under PL_TESTS_REQUIRED=1) rather than run outside a namespace.
set -u

name=pltest-$$
skip() {
        if [ "${PL_TESTS_REQUIRED:-0}" = 1 ]; then
                echo "FAIL: $(basename "${1:-test}"): needs $2 (PL_TESTS_REQUIRED=1)" >&2
                exit 1
        fi
        echo "SKIP: $(basename "${1:-test}"): needs $2" >&2
        exit 77
}
[ "$#" -ge 1 ] || { echo "usage: in-netns.sh COMMAND [ARG...]" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || skip "$1" "root (a network namespace of its own)"
command -v ip >/dev/null || skip "$1" "iproute2 (ip)"

cleanup() {
        # Processes still in the namespace (a daemon the test failed to stop)
        # are the test's own: end them by the pids the namespace lists.
        local pids
        pids=$(ip netns pids "$name" 2>/dev/null)
        [ -n "$pids" ] && kill -9 $pids 2>/dev/null
        ip netns del "$name" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$name" || skip "$1" "a network namespace (ip netns add failed)"
ip -n "$name" link set lo up || { echo "in-netns.sh: cannot bring up lo in $name" >&2; exit 1; }
export PL_TEST_NETNS=$name
ip netns exec "$name" "$@"
