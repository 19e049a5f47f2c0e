#!/usr/bin/env bash
# The TLS listener's cost (docs/benchmarks.md, "Remote access"), each beside
# the same call on the daemon's Unix socket measured in the same run:
#   1 one plctl call (`plctl version`, a fresh connection each: for TLS the
#     handshake with both certificates) with hyperfine
#   2 per request on one kept-alive connection: N GET /_ping in one curl
#     process (curl's URL globbing reuses the connection)
#   3 upload throughput through the pump: a 256 MiB body PUT to
#     /containers/nope/archive, which the server spools whole before it
#     answers 404 (the same spooling on both sides)
# Runs itself in a network namespace of its own (tests/lib/in-netns.sh): the
# daemon listens on 127.0.0.1 there. Needs no guest: nothing boots.
# Usage: scripts/bench-tls.sh [requests] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PL_TEST_NETNS:-}" ]; then
        exec bash tests/lib/in-netns.sh bash "$0" "$@"
fi
n=${1:-2000}
rounds=${2:-3}
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice cmake --build build/release -j2 --target portlayerd pl-agent plctl >/dev/null
B=$PWD/build/release/bin
kdir=$(bash scripts/guest-kernel.sh | tail -n 1)
dir=$(mktemp -d /tmp/plt-XXXXXX)
sock=$dir/pl.sock
dpid=
cleanup() {
        set +e
        [ -n "$dpid" ] && kill -TERM "$dpid" && wait "$dpid"
        rm -rf "$dir"
}
trap cleanup EXIT
export XDG_CONFIG_HOME=$dir/cfg
"$B/portlayerd" --state-dir "$dir/state" --socket "$sock" --guest-kernel "$kdir/vmlinuz" \
        --tls-listen 127.0.0.1:18443 --log-level warning 2>"$dir/daemon.log" &
dpid=$!
for _ in $(seq 300); do "$B/plctl" --socket "$sock" version >/dev/null 2>&1 && break; sleep 0.1; done
fp=$(openssl x509 -noout -fingerprint -sha256 -in "$dir/state/tls/server.crt" | cut -d= -f2)
"$B/plctl" remote add b https://127.0.0.1:18443 --accept-fingerprint "$fp" >/dev/null
"$B/plctl" --socket "$sock" trust add "$XDG_CONFIG_HOME/portlayer/client.crt" --name bench >/dev/null
cert=$XDG_CONFIG_HOME/portlayer/client.crt
key=$XDG_CONFIG_HOME/portlayer/client.key
tls=(--cert "$cert" --key "$key" --cacert "$dir/state/tls/server.crt" --insecure)

echo "== 1: one plctl call (plctl version), new connection each"
hyperfine -N -w 5 -r 100 "$B/plctl --socket $sock version" "$B/plctl --remote b version" 2>&1 | grep -E "Time|±|plctl"

echo "== 2: $n GET /_ping on one connection, seconds (unix, tls) per round"
for r in $(seq "$rounds"); do
        u=$( { /usr/bin/time -f %e curl -s -o /dev/null --unix-socket "$sock" "http://x/_ping?i=[1-$n]"; } 2>&1)
        t=$( { /usr/bin/time -f %e curl -s -o /dev/null "${tls[@]}" "https://127.0.0.1:18443/_ping?i=[1-$n]"; } 2>&1)
        echo "round $r: unix $u s ($(python3 -c "print(round($u*1e6/$n))") us/req), tls $t s ($(python3 -c "print(round($t*1e6/$n))") us/req)"
done

echo "== 3: 256 MiB PUT, spooled by the server, MiB/s (unix, tls) per round"
head -c 256M /dev/zero >"$dir/body"
for r in $(seq "$rounds"); do
        u=$(curl -s -o /dev/null -w '%{speed_upload}' -T "$dir/body" --unix-socket "$sock" "http://x/containers/nope/archive?path=/")
        t=$(curl -s -o /dev/null -w '%{speed_upload}' -T "$dir/body" "${tls[@]}" "https://127.0.0.1:18443/containers/nope/archive?path=/")
        echo "round $r: unix $(python3 -c "print(round($u/1048576))") MiB/s, tls $(python3 -c "print(round($t/1048576))") MiB/s"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
