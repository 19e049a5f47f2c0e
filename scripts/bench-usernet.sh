#!/usr/bin/env bash
# User-mode networking for VM_NIC_USER: QEMU's slirp (-netdev user, ports by
# hostfwd) against Debian's passt (attached with QEMU 7.2's -netdev stream,
# ports by passt -t), with the baseline in the same run: the same transfer
# to the same guest over a tap on a bridge, no NAT, no user-space proxy
# (docs/benchmarks.md, docs/networking.md).
#
# One guest under plain QEMU (TCG) gets all three NICs at once, so every
# number comes from the same kernel, the same guest processes and the same
# minute:
#   eth(bridge) 10.98.0.2/24  tap plbtap0 on bridge plbbr0 (10.98.0.1)
#   eth(slirp)  10.0.2.15/24  127.0.0.1:18080 -> 5001, 127.0.0.1:18090 -> 80
#   eth(passt)  192.168.77.2  127.0.0.1:28080 -> 5001, 127.0.0.1:28090 -> 80
# In the guest, `nc -ll -p 5001 -e cat>/dev/null` is the sink and busybox
# httpd serves a 3-byte file on port 80. From the host:
#   throughput: MiB sent into the sink, timed until the guest closed (median)
#   latency:    one HTTP/1.0 GET per connection, connect to last byte (median, p90)
# Everything runs in a network namespace this script creates (re-executing
# itself inside it) and deletes; a veth pair with a default route (the
# kernel here has no dummy driver) gives passt the "host interface" it copies
# its addresses from, and no packet leaves the namespace.
#
# Usage: scripts/bench-usernet.sh [MiB per transfer] [runs] [kernel-dir]
#        PL_BUILD_DIR=build/dev to use an existing build (default build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-32}
runs=${2:-3}
kdir=${3:-}

# shellcheck source=scripts/bench-netns.sh
. scripts/bench-netns.sh
bench_netns_enter bench-usernet "$0" kdir pl-agent pl-initramfs pl-agent-cli -- "$mib" "$runs"

B=$PL_BUILD_DIR
dir=$(mktemp -d /tmp/pl-bench-usernet.XXXXXX)
qpid= ppid_=
cleanup() {
        [ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
        [ -n "$ppid_" ] && kill "$ppid_" 2>/dev/null && wait "$ppid_" 2>/dev/null
        rm -rf "$dir"
}
trap cleanup EXIT

# The namespace: loopback, passt's pretend uplink (its peer leads nowhere), the bridge and its tap.
ip link set lo up
ip link add plbup0 type veth peer name plbup1
ip addr add 192.168.77.2/24 dev plbup0
ip link set plbup1 up
ip link set plbup0 up
ip route add default via 192.168.77.1
ip link add plbbr0 type bridge
ip addr add 10.98.0.1/24 dev plbbr0
ip link set plbbr0 up
ip tuntap add dev plbtap0 mode tap
ip link set plbtap0 master plbbr0 up

initrd=$("$B/bin/pl-initramfs" --agent "$B/bin/pl-agent" --kernel-dir "$kdir" --cache "$dir/initramfs" \
        --module virtio_pci --module virtio_blk --module virtio_console --module virtio_rng --module virtio_net |
        tail -n 1)
rootfs=$(bash scripts/make-test-rootfs.sh "$dir/base.ext4" 2>/dev/null | tail -n 1)
passt_version="passt $(dpkg-query -W -f='${Version}' passt 2>/dev/null)"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, host $(uname -r), guest kernel $(cat "$kdir/release"), TCG;" \
        "$(qemu-system-x86_64 --version | head -n 1); ${passt_version:-passt}"

# passt started as root drops to nobody before it creates its socket: it
# needs a directory nobody may write.
chmod 755 "$dir"
mkdir -m 1777 "$dir/passt"
passt -f -4 -s "$dir/passt/passt.sock" -t 127.0.0.1/28080:5001 -t 127.0.0.1/28090:80 -u none \
        >"$dir/passt.log" 2>&1 &
ppid_=$!
for _ in $(seq 100); do [ -S "$dir/passt/passt.sock" ] && break; sleep 0.05; done
[ -S "$dir/passt/passt.sock" ] || { echo "bench-usernet: passt did not start:" >&2; grep -v syslog "$dir/passt.log" >&2; exit 1; }

qemu-system-x86_64 -machine q35 -accel tcg -cpu max -m 256 -smp 1 -nographic -nodefaults -no-user-config \
        -kernel "$kdir/vmlinuz" -initrd "$initrd" -no-reboot \
        -append "console=ttyS0 panic=-1 random.trust_cpu=on loglevel=4 no_timer_check pl.hostname=bench" \
        -serial "file:$dir/console.log" \
        -drive "file=$rootfs,if=none,id=root,format=raw" -device virtio-blk-pci,drive=root,serial=pl-root \
        -device virtio-serial-pci \
        -chardev "socket,id=agent,path=$dir/agent.sock,server=on,wait=off" \
        -device virtserialport,chardev=agent,name=org.portlayer.agent.0 \
        -device virtio-rng-pci \
        -netdev tap,id=tap0,ifname=plbtap0,script=no,downscript=no \
        -device virtio-net-pci,netdev=tap0,mac=0a:70:6c:00:00:01 \
        -netdev user,id=user0,hostfwd=tcp:127.0.0.1:18080-:5001,hostfwd=tcp:127.0.0.1:18090-:80 \
        -device virtio-net-pci,netdev=user0,mac=0a:70:6c:00:00:02 \
        -netdev "stream,id=passt0,server=off,addr.type=unix,addr.path=$dir/passt/passt.sock" \
        -device virtio-net-pci,netdev=passt0,mac=0a:70:6c:00:00:03 &
qpid=$!
cli=("$B/bin/pl-agent-cli" --socket "$dir/agent.sock" --connect-timeout 120000 --timeout 600000)
"${cli[@]}" ping >/dev/null

# shellcheck disable=SC2016 # expanded in the guest
"${cli[@]}" exec -- sh -c '
set -e
for d in /sys/class/net/*; do
        case $(cat $d/address) in
        0a:70:6c:00:00:01) br=${d##*/} ;;
        0a:70:6c:00:00:02) slirp=${d##*/} ;;
        0a:70:6c:00:00:03) passt=${d##*/} ;;
        esac
done
ip link set lo up
ip link set $br up && ip addr add 10.98.0.2/24 dev $br
ip link set $slirp up && ip addr add 10.0.2.15/24 dev $slirp
ip link set $passt mtu 65520 up && ip addr add 192.168.77.2/24 dev $passt
echo $passt > /passt-if
mkdir -p /www && echo ok > /www/index.html && httpd -p 80 -h /www
printf "#!/bin/sh\nexec cat >/dev/null\n" > /sink && chmod +x /sink
nc -ll -p 5001 -e /sink </dev/null >/dev/null 2>&1 &
' >/dev/null
passt_if=$("${cli[@]}" exec -- cat /passt-if)

measure() { # label host port-data port-http
        python3 - "$1" "$2" "$3" "$4" "$mib" "$runs" <<'PY'
import socket, statistics, sys, time
label, host, pdata, phttp, mib, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])

def connect(port):
    for _ in range(200):  # the guest listener comes back between connections
        try:
            return socket.create_connection((host, port), timeout=60)
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"{label}: cannot connect to {host}:{port}")

def transfer():
    chunk = b"\0" * 65536
    s = connect(pdata)
    t0 = time.monotonic()
    for _ in range(mib * 16):
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    while s.recv(4096):
        pass  # until the guest has read everything and closed
    dt = time.monotonic() - t0
    s.close()
    return mib / dt

def get():
    t0 = time.monotonic()
    s = connect(phttp)
    s.sendall(b"GET /index.html HTTP/1.0\r\nHost: b\r\n\r\n")
    data = b""
    while True:
        k = s.recv(4096)
        if not k:
            break
        data += k
    s.close()
    if not data.endswith(b"ok\n"):
        raise SystemExit(f"{label}: bad HTTP reply {data[:80]!r}")
    return (time.monotonic() - t0) * 1000

transfer()  # warm-up
rates = [transfer() for _ in range(runs)]
get()
lat = sorted(get() for _ in range(100))
print(f"{label:<34} {statistics.median(rates):8.1f} MiB/s   GET median {statistics.median(lat):6.2f} ms  p90 {lat[89]:6.2f} ms")
PY
}

echo "# $mib MiB per transfer, median of $runs; 100 sequential GETs"
measure "bridge + tap (baseline, direct)" 10.98.0.2 5001 80
measure "slirp  -netdev user + hostfwd" 127.0.0.1 18080 18090
measure "passt  -netdev stream, MTU 65520" 127.0.0.1 28080 28090
"${cli[@]}" exec -- ip link set "$passt_if" mtu 1500 >/dev/null
measure "passt  -netdev stream, MTU 1500" 127.0.0.1 28080 28090
