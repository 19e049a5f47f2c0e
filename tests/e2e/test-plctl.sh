#!/usr/bin/env bash
# test-plctl.sh: plctl against a real portlayerd with real guests.
#
# As test-portlayerd: the busybox test image (tests/lib/make-oci-image.sh)
# imported by pl-image into a temporary state directory, portlayerd
# ($PL_PORTLAYERD_BIN) started on it with the kernel of $PL_KERNEL_DIR.
# Then every plctl ($PL_PLCTL_BIN) command runs against it: output, exit
# codes (0, 1 for a daemon's refusal, 2 for usage, the container's or the
# process's own code for run and exec), --json output that parses, exec -it
# through a pseudo-terminal (script(1)), and doctor's report of this
# machine. The trap removes every container, stops the daemon and ends
# any QEMU whose command line names the temporary directory, also on
# failure.
set -uo pipefail

: "${PL_SOURCE_DIR:?}" "${PL_PLCTL_BIN:?}" "${PL_PORTLAYERD_BIN:?}" "${PL_IMAGE_BIN:?}"
. "$PL_SOURCE_DIR/tests/lib/skip.sh"
[ -n "${PL_KERNEL_DIR:-}" ] && [ -f "$PL_KERNEL_DIR/vmlinuz" ] || test_skip_or_fail "PL_KERNEL_DIR (a guest kernel)"
for t in umoci busybox script python3 tar; do
        command -v "$t" >/dev/null || test_skip_or_fail "$t"
done

dir=$(mktemp -d /tmp/plctl-test-XXXXXX)
sock=$dir/pl.sock
out=$dir/out
err=$dir/err
daemon_pid=
step=start

# QEMU processes whose command line names our directory, ended by pid.
end_our_qemus() {
        local p cmd n=0
        for p in /proc/[0-9]*; do
                cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
                case $cmd in *qemu-system*"$dir"*) kill -KILL "${p#/proc/}" 2>/dev/null && n=$((n + 1)) ;; esac
        done
        echo "$n"
}

cleanup() {
        local rc=$? id left
        trap - EXIT
        if [ -n "$daemon_pid" ]; then
                for id in $("$PL_PLCTL_BIN" --socket "$sock" ps -a -q 2>/dev/null); do
                        "$PL_PLCTL_BIN" --socket "$sock" rm -f "$id" >/dev/null 2>&1
                done
                kill -TERM "$daemon_pid" 2>/dev/null
                wait "$daemon_pid" 2>/dev/null
        fi
        sleep 0.5
        left=$(end_our_qemus)
        if [ "$left" != 0 ]; then
                echo "FAIL: $left QEMU processes of this run were still alive (killed)" >&2
                rc=1
        fi
        if [ "$rc" != 0 ]; then
                echo "FAIL at step: $step" >&2
                [ -f "$dir/daemon.log" ] && tail -n 40 "$dir/daemon.log" >&2
        fi
        [ -n "${PL_KEEP_TEST_DIRS:-}" ] || rm -rf "$dir"
        exit "$rc"
}
trap cleanup EXIT

fail() {
        echo "FAIL: $step: $*" >&2
        echo "--- stdout:" >&2
        head -c 4000 "$out" >&2
        echo "--- stderr:" >&2
        head -c 4000 "$err" >&2
        exit 1
}

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

has() { grep -q -- "$1" "$out" || fail "stdout lacks '$1'"; }
has_err() { grep -q -- "$1" "$err" || fail "stderr lacks '$1'"; }
lacks() { ! grep -q -- "$1" "$out" || fail "stdout has '$1'"; }
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
for v in ps inspect create run start stop kill pause unpause rm wait logs stats events exec cp images version doctor; do
        pc 0 "$v" --help
        has "usage: plctl $v"
done
pc 0 ps -a --help
has "usage: plctl ps"

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
has "OK    kernel        $PL_CACHE/kernel/current/vmlinuz"
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
"$PL_PORTLAYERD_BIN" --state-dir "$dir" --socket "$sock" --guest-kernel "$PL_KERNEL_DIR/vmlinuz" \
        --boot-timeout 120 --log-level debug >"$dir/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 600); do
        "$PL_PLCTL_BIN" --socket "$sock" version >/dev/null 2>&1 && break
        kill -0 "$daemon_pid" 2>/dev/null || fail "portlayerd exited at start-up"
        sleep 0.1
done
IMG=localhost/busybox:latest

pc 0 version
has "daemon: portlayerd"
pc 0 version --json
py "j['client']['version'] and j['daemon']['api'] == 'v1'"
# $PORTLAYER_SOCKET instead of --socket
step="PORTLAYER_SOCKET"
PORTLAYER_SOCKET=$sock "$PL_PLCTL_BIN" version >"$out" 2>"$err" || fail "version through \$PORTLAYER_SOCKET"
pc 0 doctor --state-dir "$dir"
has "OK    daemon        portlayerd answers at $sock"
has "OK    qemu user     a uid per container (200000-265535)"

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

pc 0 run -d --name c2 $IMG -- /bin/sh -c 'trap "exit 42" TERM; echo ready; while :; do sleep 1; done'
grep -qE '^[0-9a-f]{64}$' "$out" || fail "run -d prints the id"
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

pc 5 run --name r1 $IMG -- /bin/sh -c 'echo run-out; echo run-err >&2; exit 5'
has "^run-out$"
has_err "^run-err$"
pc 0 run --rm --name r2 $IMG -- /bin/sh -c 'echo gone'
has "^gone$"
pc 0 ps -a
lacks r2
pc 0 run --json -d --name r3 -m 256 $IMG -- /bin/sh -c 'exit 0'
py "j['name'] == 'r3'"

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

step=done
echo "test-plctl: all checks passed"
