#!/usr/bin/env bash
# test-plctl.sh: plctl against a real portlayerd with real guests.
#
# As test-portlayerd: the busybox test image (tests/lib/make-oci-image.sh)
# imported by pl-image into a temporary state directory, portlayerd
# ($PL_PORTLAYERD_BIN) started on it with the kernel of $PL_KERNEL_DIR.
# Then every plctl ($PL_PLCTL_BIN) command runs against it: output, exit
# codes (0, 1 for a daemon's refusal, 2 for usage, the container's or the
# process's own code for run and exec), --json output that parses, how a
# container started (a warm-pool guest, or a cold boot with --cold-start:
# ps's START column and inspect's start_path), the pool in version, exec -it
# through a pseudo-terminal (script(1)), and doctor's report of this
# machine. The daemon also listens with TLS on 127.0.0.1 inside the test's
# namespace: a remote added with `plctl remote add` and trusted with `plctl
# trust add` works (ps, exec -i, exec -it); untrusted, certificate-less and
# expired clients are refused at the handshake (curl, openssl s_client);
# `plctl gc` finds the orphans the test plants and removes only them;
# `images import` takes a docker-archive skopeo writes and an OCI layout tar
# (and refuses one with a symlinked index.json). The trap removes every container, stops the daemon and ends
# any QEMU whose command line names the temporary directory, also on
# failure.
set -uo pipefail

: "${PL_SOURCE_DIR:?}" "${PL_PLCTL_BIN:?}" "${PL_PORTLAYERD_BIN:?}" "${PL_IMAGE_BIN:?}"
. "$PL_SOURCE_DIR/tests/lib/skip.sh"
. "$PL_SOURCE_DIR/tests/lib/e2e.sh"
[ -n "${PL_KERNEL_DIR:-}" ] && [ -f "$PL_KERNEL_DIR/vmlinuz" ] || test_skip_or_fail "PL_KERNEL_DIR (a guest kernel)"
for t in umoci busybox script python3 tar openssl curl skopeo; do
        command -v "$t" >/dev/null || test_skip_or_fail "$t"
done

dir=$(mktemp -d /tmp/plctl-test-XXXXXX)
sock=$dir/pl.sock
tls_port=18443 # loopback of the test's own network namespace
export XDG_CONFIG_HOME=$dir/cfg
unset PORTLAYER_REMOTE
out=$dir/out
err=$dir/err
daemon_pid=
cold_pid=
step=start

cleanup() {
        local rc=$? id
        trap - EXIT
        if [ -n "$cold_pid" ]; then
                kill -TERM "$cold_pid" 2>/dev/null
                wait "$cold_pid" 2>/dev/null
        fi
        if [ -n "$daemon_pid" ]; then
                for id in $("$PL_PLCTL_BIN" --socket "$sock" ps -a -q 2>/dev/null); do
                        "$PL_PLCTL_BIN" --socket "$sock" rm -f "$id" >/dev/null 2>&1
                done
                kill -TERM "$daemon_pid" 2>/dev/null
                wait "$daemon_pid" 2>/dev/null
        fi
        finish "$rc"
}
trap cleanup EXIT

# pc WANT_RC ARGS...: plctl ARGS, stdout in $out, stderr in $err; the exit
# code must be WANT_RC.
pc() {
        local want=$1
        shift
        step="plctl $*"
        "$PL_PLCTL_BIN" --socket "$sock" "$@" >"$out" 2>"$err" </dev/null
        local rc=$?
        [ "$rc" = "$want" ] || fail "exit code $rc, want $want"
}

# pc_in WANT_RC INPUT ARGS...: pc with INPUT on stdin.
pc_in() {
        local want=$1 input=$2
        shift 2
        step="plctl $* (with stdin)"
        printf '%s' "$input" | "$PL_PLCTL_BIN" --socket "$sock" "$@" >"$out" 2>"$err"
        local rc=$?
        [ "$rc" = "$want" ] || fail "exit code $rc, want $want"
}

# pr WANT_RC ARGS...: pc through the remote r1 (TLS) instead of the socket.
pr() {
        local want=$1
        shift
        step="plctl --remote r1 $*"
        "$PL_PLCTL_BIN" --remote r1 "$@" >"$out" 2>"$err" </dev/null
        local rc=$?
        [ "$rc" = "$want" ] || fail "exit code $rc, want $want"
}

json_ok() { python3 -c 'import json,sys; json.load(sys.stdin)' <"$out" || fail "stdout is not JSON"; }
ndjson_ok() {
        python3 -c 'import json,sys; n=[json.loads(l) for l in sys.stdin if l.strip()]; sys.exit(0 if n else 1)' <"$out" ||
                fail "stdout is not JSON lines"
}
# py EXPR: a Python expression over j (stdout's JSON) must hold.
py() {
        python3 -c "import json,sys; j=json.load(sys.stdin); sys.exit(0 if ($1) else 1)" <"$out" || fail "JSON check failed: $1"
}
inspect_py() {
        pc 0 inspect "$1"
        py "$2"
}

# --- usage and help, no daemon needed ---

pc 2
pc 2 bogus
pc 2 ps --bogus
pc 2 create
pc 2 cp a b
pc 2 stop -t x c1
pc 0 --help
has "Commands:"
pc 0 --version
has "plctl "
for v in ps inspect create run start stop kill pause unpause rm wait logs stats events exec cp images version doctor \
        vm gc remote trust; do
        pc 0 "$v" --help
        has "usage: plctl $v"
done
pc 0 ps -a --help
has "usage: plctl ps"
pc 0 images import --help
has "usage: plctl images"
pc 2 vm
pc 2 vm bogus
pc 2 gc extra
pc 2 remote
pc 2 remote add onlyname
pc 2 trust frob
pc 2 images import
step="--remote with an unknown name"
"$PL_PLCTL_BIN" --remote nosuch ps >"$out" 2>"$err"
[ $? = 1 ] || fail "an unknown remote is a failure"
has_err "no remote named 'nosuch'"
step="--socket and --remote"
"$PL_PLCTL_BIN" --socket "$sock" --remote x ps >"$out" 2>"$err"
[ $? = 2 ] || fail "--socket with --remote is a usage error"
pc 1 remote add r0 http://127.0.0.1:1
has_err "https://"
pc 0 remote ls
lacks r0
step="bash completion of the new commands"
bash -c '. "$1/portlayer/plctl/plctl.bash"
        c() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _plctl; echo "${COMPREPLY[*]}"; }
        c plctl ""; c plctl images ""; c plctl gc ""; c plctl remote ""; c plctl trust ""; c plctl vm ""' \
        _ "$PL_SOURCE_DIR" >"$out" 2>"$err" || fail "completion"
has "vm gc version doctor remote trust"
has "pull import ls inspect rm gc"
has "^--remove"
has "^add ls rm --accept-fingerprint"
has "^add ls rm --name"
has "^ls --json"

# --- doctor before the daemon: this machine's accelerator, vsock, kernel ---

if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then accel=KVM; else accel=TCG; fi
export PL_CACHE
PL_CACHE=$(cd "$PL_KERNEL_DIR/../.." && pwd)
[ "$(basename "$(dirname "$PL_KERNEL_DIR")")" = kernel ] || test_skip_or_fail "PL_KERNEL_DIR of the form <cache>/kernel/<release>"
pc 0 doctor --state-dir "$dir"
if [ "$accel" = TCG ]; then has "WARN  accelerator   TCG"; else has "OK    accelerator   KVM usable"; fi
if [ -c /dev/vhost-vsock ]; then has "OK    vhost-vsock"; else has "WARN  vhost-vsock   no usable /dev/vhost-vsock"; fi
has "OK    qemu          QEMU emulator version"
has "OK    libvirt       libvirt [0-9]"
# the daemon's default kernel: ours when built, else Debian's
if [ -f "$PL_CACHE/kernel/pl-current/vmlinuz" ]; then
        has "OK    kernel        $PL_CACHE/kernel/pl-current/vmlinuz (.* MiB, ours)"
else
        has "OK    kernel        $PL_CACHE/kernel/current/vmlinuz"
fi
has "disk .* GiB free"
has "memory .* MiB available"
has "WARN  daemon        nothing answers at $sock"
pc 0 doctor --json --state-dir "$dir"
json_ok
py "[c['status'] for c in j['checks'] if c['check'] == 'accelerator'] == ['$([ $accel = TCG ] && echo WARN || echo OK)']"
py "j['ok'] is True"
pc 1 version
has "client: plctl"
has_err "plctl: cannot reach portlayerd at $sock"
pc 1 ps
PL_CACHE=$dir/nocache pc 1 doctor --state-dir "$dir"
has "FAIL  kernel"

# --- the daemon and its image ---

step="make the test image"
bash "$PL_SOURCE_DIR/tests/lib/make-oci-image.sh" "$dir/oci" >/dev/null 2>&1 || fail "make-oci-image.sh"
"$PL_IMAGE_BIN" --store "$dir/images" import "oci:$dir/oci:latest" localhost/busybox:latest >/dev/null || fail "pl-image import"
# Where it cannot give each QEMU a uid of its own (another libvirt decides)
# the daemon refuses to start, saying why, unless --allow-root-qemu.
step="portlayerd refuses QEMU as root"
"$PL_PORTLAYERD_BIN" --state-dir "$dir/refused" --socket "$dir/refused.sock" --libvirt-uri qemu:///system \
        --guest-kernel "$PL_KERNEL_DIR/vmlinuz" >"$out" 2>"$err" && fail "portlayerd started"
grep -q "refusing to run QEMU as root: libvirt URI 'qemu:///system' is not the embedded driver" "$err" ||
        fail "no reason given"
[ ! -e "$dir/refused.sock" ] || fail "a socket was made"
step="start portlayerd"
# (a uid range of its own: the other e2e daemons run at the same time)
"$PL_PORTLAYERD_BIN" --state-dir "$dir" --socket "$sock" --guest-kernel "$PL_KERNEL_DIR/vmlinuz" --uid-range 220000-224999 \
        --boot-timeout 120 --log-level debug --tls-listen "127.0.0.1:$tls_port" >"$dir/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 600); do
        "$PL_PLCTL_BIN" --socket "$sock" version >/dev/null 2>&1 && break
        kill -0 "$daemon_pid" 2>/dev/null || fail "portlayerd exited at start-up"
        sleep 0.1
done
IMG=localhost/busybox:latest

pc 0 version
has "daemon: portlayerd"
has "^pool:   [0-2] of 2 guests ready$"
pc 0 version --json
py "j['client']['version'] and j['daemon']['api'] == 'v1'"
py "j['daemon']['pool']['size'] == 2 and j['daemon']['pool']['cold_start'] is False"
# a second daemon with --cold-start (its state directory inside the first's,
# which the first made searchable): no warm pool, and version says so (no
# guest booted; user-mode networking, so it makes no bridge beside the first's)
step="a --cold-start daemon"
"$PL_PORTLAYERD_BIN" --state-dir "$dir/cold" --socket "$dir/cold.sock" --docker-socket none --network-mode user \
        --guest-kernel "$PL_KERNEL_DIR/vmlinuz" --cold-start --uid-range 225000-229999 >"$dir/cold.log" 2>&1 &
cold_pid=$!
for _ in $(seq 600); do
        "$PL_PLCTL_BIN" --socket "$dir/cold.sock" version >/dev/null 2>&1 && break
        kill -0 "$cold_pid" 2>/dev/null || fail "portlayerd --cold-start exited at start-up"
        sleep 0.1
done
step="plctl version of the --cold-start daemon"
"$PL_PLCTL_BIN" --socket "$dir/cold.sock" version >"$out" 2>"$err" || fail "version"
has "^pool:   off (cold start: every container start boots its VM)$"
"$PL_PLCTL_BIN" --socket "$dir/cold.sock" version --json >"$out" 2>"$err" || fail "version --json"
py "j['daemon']['pool'] == {'size': 0, 'ready': 0, 'cold_start': True}"
kill -TERM "$cold_pid"
wait "$cold_pid"
cold_pid=
# $PORTLAYER_SOCKET instead of --socket
step="PORTLAYER_SOCKET"
PORTLAYER_SOCKET=$sock "$PL_PLCTL_BIN" version >"$out" 2>"$err" || fail "version through \$PORTLAYER_SOCKET"
pc 0 doctor --state-dir "$dir"
has "OK    daemon        portlayerd answers at $sock"
has "OK    qemu user     a uid per container (220000-224999)"

# --- remote access over TLS ---

step="the TLS directory"
[ "$(stat -c %a "$dir/tls")" = 700 ] || fail "<state>/tls is not 0700"
[ "$(stat -c %a "$dir/tls/server.key")" = 600 ] || fail "server.key is not 0600"
server_fp=$(openssl x509 -noout -fingerprint -sha256 -in "$dir/tls/server.crt" | cut -d= -f2)
[ -n "$server_fp" ] || fail "server certificate"
url=https://127.0.0.1:$tls_port
pc 1 remote add r1 "$url"
has_err "accept-fingerprint"
pc 1 remote add r1 "$url" --accept-fingerprint "$(printf '%064d' 0)"
has_err "not added"
pc 0 remote add r1 "$url" --accept-fingerprint "$server_fp"
has "added remote r1"
step="the client identity"
[ "$(stat -c %a "$XDG_CONFIG_HOME/portlayer/client.key")" = 600 ] || fail "client.key is not 0600"
ccert=$XDG_CONFIG_HOME/portlayer/client.crt
ckey=$XDG_CONFIG_HOME/portlayer/client.key
client_fp=$(openssl x509 -noout -fingerprint -sha256 -in "$ccert" | cut -d= -f2 | tr -d : | tr A-F a-f)
pc 0 remote add --json r2 "$url" --accept-fingerprint "$server_fp"
py "j['name'] == 'r2' and j['client_fingerprint'] == '$client_fp'"
pc 1 remote add r2 "$url" --accept-fingerprint "$server_fp"
has_err "exists"
pc 0 remote ls
has "^r1 .*$url"
pc 0 remote ls --json
py "sorted(r['name'] for r in j) == ['r1', 'r2'] and j[0]['server_fingerprint'] == '$(echo "$server_fp" | tr -d : | tr A-F a-f)'"
pc 0 remote rm --json r2
py "j == {'removed': 'r2'}"
pc 1 remote rm r2
pc 0 remote ls --json
py "[r['name'] for r in j] == ['r1']"

# not trusted yet: refused at the handshake, nothing served
pr 1 ps
has_err "refused this client"
step="curl with an untrusted certificate"
curl -sS -k --cert "$ccert" --key "$ckey" "$url/_ping" >"$out" 2>"$err" && fail "curl got through untrusted"
[ ! -s "$out" ] || fail "an untrusted client was served"
step="curl without a certificate"
curl -sS -k "$url/_ping" >"$out" 2>"$err" && fail "curl got through without a certificate"
[ ! -s "$out" ] || fail "a client without a certificate was served"
step="openssl s_client with an untrusted certificate"
printf 'GET /_ping HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client -connect "127.0.0.1:$tls_port" -cert "$ccert" \
        -key "$ckey" -quiet >"$out" 2>"$err"
lacks "HTTP/1"
grep -qi "alert" "$err" || fail "s_client saw no alert"
step="openssl s_client without a certificate"
printf 'GET /_ping HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client -connect "127.0.0.1:$tls_port" -quiet >"$out" 2>"$err"
lacks "HTTP/1"
grep -qi "alert" "$err" || fail "s_client saw no alert"

pc 0 trust add "$ccert" --name tester
has "trusted tester $client_fp"
pc 0 trust add --json "$dir/tls/server.crt" --name self
py "j['name'] == 'self' and len(j['fingerprint']) == 64"
pc 0 trust rm self
has "removed self"
pc 1 trust add "$ccert" --name other
has_err "already trusted"
echo nonsense >"$dir/bad.pem"
pc 1 trust add "$dir/bad.pem"
has_err "not a PEM certificate"
pc 0 trust ls
has "^tester  *$client_fp"
pc 0 trust ls --json
py "j == [{'fingerprint': '$client_fp', 'name': 'tester'}]"
pr 0 ps -a
has "CONTAINER ID"
pr 0 version
has "at $url"
step="PORTLAYER_REMOTE"
PORTLAYER_REMOTE=r1 "$PL_PLCTL_BIN" version --json >"$out" 2>"$err" || fail "version through \$PORTLAYER_REMOTE"
py "j['daemon']['api'] == 'v1'"
pr 1 trust ls
has_err "Unix socket only"
step="curl with the trusted certificate"
curl -sS -k --cert "$ccert" --key "$ckey" "$url/_ping" >"$out" 2>"$err" || fail "curl trusted"
has "OK"

step="an expired certificate"
mkdir -p "$dir/ca/db" && touch "$dir/ca/db/index.txt" && echo 01 >"$dir/ca/db/serial" &&
        printf '[ca]\ndefault_ca=d\n[d]\ndatabase=%s\nnew_certs_dir=%s\nserial=%s\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n' \
                "$dir/ca/db/index.txt" "$dir/ca/db" "$dir/ca/db/serial" >"$dir/ca/ca.cnf" &&
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/ca/exp.key" \
                -subj /CN=expired -out "$dir/ca/exp.csr" >/dev/null 2>&1 &&
        openssl ca -batch -config "$dir/ca/ca.cnf" -selfsign -keyfile "$dir/ca/exp.key" -in "$dir/ca/exp.csr" \
                -startdate 20200101000000Z -enddate 20200102000000Z -out "$dir/ca/exp.crt" >/dev/null 2>&1 ||
        fail "make an expired certificate"
pc 1 trust add "$dir/ca/exp.crt"
has_err "expired"
# trusted by fingerprint behind the API's back: the handshake still refuses it
exp_fp=$(openssl x509 -noout -fingerprint -sha256 -in "$dir/ca/exp.crt" | cut -d= -f2 | tr -d : | tr A-F a-f)
echo "$exp_fp expired" >>"$dir/tls/trust"
pc 0 trust ls
has "^expired "
step="curl with an expired (listed) certificate"
curl -sS -k --cert "$dir/ca/exp.crt" --key "$dir/ca/exp.key" "$url/_ping" >"$out" 2>"$err" &&
        fail "an expired certificate got through"
[ ! -s "$out" ] || fail "an expired client was served"
# the daemon logs the refusal after the alert has reached curl: give it a moment
for _ in $(seq 50); do
        grep -q "certificate $exp_fp.*expired" "$dir/daemon.log" && break
        sleep 0.1
done
grep -q "certificate $exp_fp.*expired" "$dir/daemon.log" || fail "the daemon did not say the certificate expired"
pc 0 trust rm --json expired
py "j == {'fingerprint': '$exp_fp', 'name': 'expired'}"
pc 1 trust rm expired

# --- images ---

pc 0 images ls
has "IMAGE ID"
pc 0 images ls -q
[ "$(wc -l <"$out")" = 1 ] || fail "one image id"
pc 0 images ls --json
py "len(j) == 1"
pc 0 images inspect $IMG
py "'$IMG' in j[0]['tags']"
pc 0 --json images inspect $IMG
json_ok
pc 1 images inspect localhost/nope:latest
has_err "plctl: localhost/nope:latest: "
pc 1 images pull 127.0.0.1:1/nope:latest
has_err "plctl: pull 127.0.0.1:1/nope:latest: "
pc 1 images pull --json 127.0.0.1:1/nope:latest
ndjson_ok
pc 1 images pull 'Bad Reference'
has_err "plctl: "
pc 2 images frobnicate

# --- create, inspect, ps ---

pc 0 create $IMG --name c1 -e FOO=bar -w /tmp -m 320 --cpus 1 --label team=qa --label tier=web \
        -- /bin/sh -c 'echo out-$FOO; echo err-line >&2; exec sleep 100000'
grep -qE '^[0-9a-f]{64}$' "$out" || fail "create prints the id"
c1=$(cat "$out")
inspect_py c1 "j[0]['state'] == 'created' and j[0]['config']['memory_mb'] == 320 and j[0]['config']['labels']['team'] == 'qa' and j[0]['config']['workdir'] == '/tmp' and 'FOO=bar' in j[0]['config']['env'] and j[0]['config']['path'] == '/bin/sh'"
pc 0 inspect --json c1 "${c1:0:12}"
py "len(j) == 2 and j[0]['id'] == j[1]['id'] == '$c1'"
pc 1 inspect nope
has_err "plctl: nope: "
pc 0 ps
lacks c1
pc 0 ps -a
has "c1"
has "created"
has "STATUS  *START  *NAME$"
has "created  *-  *c1$"
pc 0 ps -a -q
has "${c1:0:12}"
pc 0 ps --filter state=created
has c1
pc 0 ps -a --filter label=team=qa
has c1
pc 0 ps -a --filter label=team=other
lacks c1
pc 0 ps -a --json
py "any(c['name'] == 'c1' for c in j)"
pc 2 ps --filter nope=1
pc 0 create --json $IMG --name c3
py "j['state'] == 'created' and j['name'] == 'c3'"
pc 1 create $IMG --name c3
has_err "plctl: "
pc 1 create localhost/nope:latest
has_err "plctl: "
pc 2 create --cold-start=yes $IMG

# --- start, logs, exec, cp, stats, pause ---

pc 0 start c1
has "^c1$"
inspect_py c1 "j[0]['state'] == 'running'"
pc 0 ps
has c1
step="logs appear"
for _ in $(seq 100); do
        "$PL_PLCTL_BIN" --socket "$sock" logs c1 >"$out" 2>"$err"
        grep -q out-bar "$out" && grep -q err-line "$err" && break
        sleep 0.1
done
pc 0 logs c1
has "^out-bar$"
lacks err-line
has_err "^err-line$"
pc 0 logs -t c1
has "^20[0-9-]*T[0-9:.]*Z out-bar"
pc 0 logs --tail 1 c1
# one record, from either stream (the two streams' order is not fixed)
[ "$(cat "$out" "$err" | wc -l)" = 1 ] || fail "--tail 1 gives one record"
pc 0 logs --json c1
ndjson_ok
pc 1 logs nope
has_err "plctl: "

pc 3 exec c1 sh -c 'echo hi; echo oops >&2; exit 3'
[ "$(cat "$out")" = hi ] || fail "exec stdout"
[ "$(cat "$err")" = oops ] || fail "exec stderr"
pc_in 0 "piped input" exec -i c1 cat
[ "$(cat "$out")" = "piped input" ] || fail "exec -i copies stdin"
pc 0 exec -e X=1 -w /etc -u 1:1 c1 sh -c 'echo $X $(pwd) $(id -u)'
[ "$(cat "$out")" = "1 /etc 1" ] || fail "exec -e -w -u"
pc 4 exec --json c1 sh -c 'echo j; exit 4'
py "j['exit_code'] == 4 and j['stdout'] == 'j\n'"
pc 1 exec nope sh -c true
has_err "plctl: "
pc 1 exec c1 /no/such/program
has_err "plctl: "
pc 2 exec c1

step="exec -it through a pseudo-terminal"
printf 'echo tty-$((6*7))\nexit 7\n' |
        script -qec "'$PL_PLCTL_BIN' --socket '$sock' exec -it c1 sh" /dev/null >"$out" 2>"$err"
rc=$?
[ "$rc" = 7 ] || fail "exec -it exit code $rc, want 7"
has "tty-42"
step="exec -t: the terminal and its size"
script -qec "stty rows 33 cols 101; '$PL_PLCTL_BIN' --socket '$sock' exec -it c1 sh -c 'tty; stty size'" /dev/null \
        </dev/null >"$out" 2>"$err" || fail "exec -it tty"
has "/dev/pts/"
has "33 101"

# --- the same through TLS: exec, exec -i (close_notify is stdin's EOF), exec -it, logs ---

pr 3 exec c1 sh -c 'echo hi-tls; exit 3'
[ "$(cat "$out")" = hi-tls ] || fail "exec over TLS"
step="exec -i over TLS"
printf 'tls input' | "$PL_PLCTL_BIN" --remote r1 exec -i c1 cat >"$out" 2>"$err" || fail "exec -i over TLS"
[ "$(cat "$out")" = "tls input" ] || fail "exec -i over TLS copies stdin"
step="exec -it over TLS through a pseudo-terminal"
printf 'echo tls-$((6*7))\nexit 7\n' |
        script -qec "'$PL_PLCTL_BIN' --remote r1 exec -it c1 sh" /dev/null >"$out" 2>"$err"
rc=$?
[ "$rc" = 7 ] || fail "exec -it over TLS exit code $rc, want 7"
has "tls-42"
pr 0 logs c1
has "^out-bar$"

# --- vm ls: the domain behind c1 ---

pc 0 vm ls
has "DOMAIN"
has "c1"
pc 0 vm ls --json
py "len(j) == 1 and j[0]['name'] == 'c1' and j[0]['container'] == '$c1' and j[0]['memory_mb'] == 320 and j[0]['vcpus'] == 1 and j[0]['accelerator'] == '$(echo $accel | tr A-Z a-z)' and j[0]['qemu_pid'] > 0 and j[0]['pss_kib'] > 0 and j[0]['state'] == 'running' and j[0]['disks'][0].endswith('/disk.qcow2') and j[0]['console_log'].endswith('/console.log') and j[0]['transport'] in ('virtio-serial', 'vsock')"
step="vm ls: the QEMU pid is c1's QEMU"
qpid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["qemu_pid"])' <"$out")
tr '\0' ' ' <"/proc/$qpid/cmdline" | grep -q "qemu-system" || fail "pid $qpid is not a QEMU"
pr 0 vm ls --json
py "len(j) == 1"

# --- gc: planted orphans are found and removed, nothing else ---

step="plant orphans"
orphan_id=$(printf 'fe%062d' 0)
mkdir -p "$dir/run/fe00000000000001" "$dir/containers/$orphan_id" "$dir/run/fe00000000000002" &&
        echo x >"$dir/containers/$orphan_id/junk" &&
        touch -d '2 hours ago' "$dir/run/fe00000000000001" "$dir/containers/$orphan_id" || fail "plant"
# fe...02 is young: a create in progress looks like that, gc leaves it
pc 0 gc
has "run-dir  *remove  *fe00000000000001"
has "container-dir  *remove  *$orphan_id"
lacks "fe00000000000002"
lacks "${c1:0:16}"
pc 0 gc --json
py "sorted(o['name'] for o in j) == ['$orphan_id', 'fe00000000000001'] and all(o['action'] == 'remove' for o in j)"
pr 0 gc --json
py "len(j) == 2"
pc 0 gc --remove --json
py "sorted((o['name'], o['action']) for o in j) == [('$orphan_id', 'removed'), ('fe00000000000001', 'removed')]"
step="gc removed only the orphans"
[ ! -e "$dir/run/fe00000000000001" ] && [ ! -e "$dir/containers/$orphan_id" ] || fail "an orphan is left"
[ -d "$dir/run/fe00000000000002" ] || fail "gc removed a young directory"
[ -d "$dir/containers/$c1" ] && [ -d "$dir/run/${c1:0:16}" ] || fail "gc removed c1's directories"
pc 0 gc
has "no orphans"
rmdir "$dir/run/fe00000000000002"
pc 0 exec c1 true

# cp both ways: a file into a directory, a tree to a new name, back again
step="cp setup"
mkdir -p "$dir/tree/sub" && echo payload >"$dir/file.txt" && echo deep >"$dir/tree/sub/deep.txt" &&
        ln -s sub/deep.txt "$dir/tree/link" || fail "local files"
pc 0 cp "$dir/file.txt" c1:/tmp
pc 0 exec c1 cat /tmp/file.txt
has "^payload$"
pc 0 cp "$dir/tree" c1:/tmp/copied
pc 0 exec c1 sh -c 'cat /tmp/copied/sub/deep.txt; readlink /tmp/copied/link'
has "^deep$"
has "^sub/deep.txt$"
pc 0 cp c1:/tmp/copied "$dir/back"
step="cp out: the tree"
diff -r "$dir/tree" "$dir/back" >/dev/null || fail "the tree came back different"
[ "$(readlink "$dir/back/link")" = sub/deep.txt ] || fail "the symlink came back different"
mkdir "$dir/into"
pc 0 cp c1:/tmp/file.txt "$dir/into"
[ "$(cat "$dir/into/file.txt")" = payload ] || fail "cp out into a directory"
pc 0 cp --json c1:/etc/passwd "$dir/passwd.copy"
json_ok
grep -q '^root:' "$dir/passwd.copy" || fail "cp out of a file to a new name"
step="cp - (tar on stdin and stdout)"
tar -C "$dir" -cf - file.txt | "$PL_PLCTL_BIN" --socket "$sock" cp - c1:/srv >"$out" 2>"$err" ||
        fail "cp - ID:/srv"
"$PL_PLCTL_BIN" --socket "$sock" cp c1:/srv/file.txt - 2>"$err" | tar -tf - >"$out" || fail "cp ID:/path -"
has "^file.txt$"
pc 1 cp c1:/no/such "$dir/x"
has_err "plctl: "
pc 1 cp "$dir/no-such" c1:/tmp
has_err "plctl: "

pc 0 stats --no-stream c1
has "CPU %"
has "^c1 "
pc 0 stats --no-stream --json c1
py "len(j) == 1 and j[0]['guest']['processes'] >= 1"
pc 1 stats --no-stream nope

pc 0 pause c1
inspect_py c1 "j[0]['state'] == 'paused'"
pc 0 ps --filter state=paused
has c1
pc 0 unpause --json c1
py "j[0]['state'] == 'running'"
pc 1 rm c1
has_err "plctl: c1: "

# --- kill, wait, stop, run ---

# with a warm-pool guest ready, a container that fits starts from it
wait_pool_ready "$sock"
pc 0 run -d --name c2 $IMG -- /bin/sh -c 'trap "exit 42" TERM; echo ready; while :; do sleep 1; done'
grep -qE '^[0-9a-f]{64}$' "$out" || fail "run -d prints the id"
inspect_py c2 "j[0]['start_path'] == 'template' and j[0]['domain'].startswith('plp-')"
pc 0 ps
has "running  *template  *c2$"
step="c2 set its trap"
for _ in $(seq 100); do
        "$PL_PLCTL_BIN" --socket "$sock" logs c2 2>&1 | grep -q ready && break
        sleep 0.1
done
pc 0 kill -s TERM c2
has "^c2$"
pc 0 wait c2
[ "$(cat "$out")" = 42 ] || fail "wait prints the exit code"
pc 0 wait --json c2
py "j[0]['exit_code'] == 42"
pc 1 kill c2
has_err "plctl: c2: "
pc 0 start --json c2
py "j[0]['state'] == 'running'"
pc 0 kill --json -s 9 c2
json_ok
pc 0 wait c2
[ "$(cat "$out")" = 137 ] || fail "SIGKILL: 137"

pc 0 start c2
pc 0 stop --json -t 2 c2
py "j[0]['state'] == 'stopped'"
pc 0 stop -t 5 c1
has "^c1$"
inspect_py c1 "j[0]['state'] == 'stopped' and j[0]['exit_code'] == 130 and j[0]['config']['stop_timeout_s'] == 5"
pc 1 pause c1
has_err "plctl: c1: "

pc 5 run --cold-start --name r1 $IMG -- /bin/sh -c 'echo run-out; echo run-err >&2; exit 5'
has "^run-out$"
has_err "^run-err$"
inspect_py r1 "j[0]['start_path'] == 'cold' and j[0]['config']['cold_start'] is True and j[0]['domain'].startswith('pl-')"
pc 0 ps -a
has "stopped (5)  *cold  *r1$"
pc 0 run --rm --name r2 $IMG -- /bin/sh -c 'echo gone'
has "^gone$"
pc 0 ps -a
lacks r2
pc 0 run --json -d --name r3 -m 256 --no-share-pages $IMG -- /bin/sh -c 'exit 0'
py "j['name'] == 'r3'"
# its RAM is kept from KSM, so no pool guest (they share) could take it
inspect_py r3 "j[0]['config']['share_pages'] is False and j[0]['config']['memory_mb'] == 256 and j[0]['start_path'] == 'cold'"

# --- events ---

pc 0 events --no-follow
has "create   c1"
has "start    c1"
has "die      c2 (.*) exit_code=42"
pc 0 events --no-follow --json
ndjson_ok
pc 0 events --no-follow --since 3
lacks "^1  "
pc 2 events --since x

# --- rm, images rm, exit codes of refusals ---

pc 0 rm c1 r1
has "^c1$"
has "^r1$"
pc 0 rm --json -f c2 c3 r3
py "len(j) == 3"
pc 1 rm c1
has_err "plctl: c1: "
pc 0 ps -a -q
[ ! -s "$out" ] || fail "every container removed"
pc 0 images rm $IMG
has "^$IMG$"
pc 0 images ls --json
py "j == []"
pc 1 images rm $IMG
has_err "plctl: "

# --- images import (a docker-archive) and gc ---

step="skopeo writes a docker-archive"
skopeo copy -q "oci:$dir/oci:latest" "docker-archive:$dir/img.tar:localhost/imported:v1" >/dev/null 2>&1 ||
        fail "skopeo copy"
pc 0 images import "$dir/img.tar"
has "imported $dir/img.tar: sha256:"
pc 0 images inspect localhost/imported:v1
py "'localhost/imported:v1' in j[0]['tags']"
pc 0 images import --json "$dir/img.tar" --tag localhost/again:v2
py "'localhost/again:v2' in j['tags']"
pr 0 images import --json "$dir/img.tar" --tag localhost/remote:v3
py "'localhost/remote:v3' in j['tags']"
step="an OCI layout tar"
unpacked_before=$(ls -d /var/tmp/portlayer-import-* 2>/dev/null | sort)
tar -C "$dir/oci" -cf "$dir/oci.tar" . || fail "tar the layout"
pc 0 images import --json "$dir/oci.tar" --tag localhost/fromoci:v1
py "'localhost/fromoci:v1' in j['tags']"
pc 0 images rm localhost/fromoci:v1
step="an OCI layout tar whose index.json is a symlink"
python3 - "$dir/evil.tar" <<'PY' || fail "make evil.tar"
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    i = tarfile.TarInfo("oci-layout"); data = b'{"imageLayoutVersion": "1.0.0"}'; i.size = len(data)
    t.addfile(i, io.BytesIO(data))
    l = tarfile.TarInfo("index.json"); l.type = tarfile.SYMTYPE; l.linkname = "oci-layout"
    t.addfile(l)
PY
pc 1 images import "$dir/evil.tar"
has_err "index.json' is not a regular file"
step="nothing left of the unpacked layouts"
[ "$(ls -d /var/tmp/portlayer-import-* 2>/dev/null | sort)" = "$unpacked_before" ] ||
        fail "an unpacked layout was left in /var/tmp"
echo "not an archive" >"$dir/junk.tar"
pc 1 images import "$dir/junk.tar"
has_err "plctl: "
pc 1 images import "$dir/no-such.tar"
has_err "plctl: "
pc 0 images rm localhost/imported:v1 localhost/again:v2 localhost/remote:v3
pc 0 images gc
has "removed .* blobs"
pc 0 images gc --json
py "j['blobs_removed'] == 0 and 'bytes_freed' in j"

# --- trust rm: the remote is refused again ---

pc 0 trust rm tester
has "removed tester"
pr 1 ps
has_err "refused this client"
pc 0 trust ls --json
py "j == []"
pc 0 remote rm r1

step=done
echo "test-plctl: all checks passed"
