#!/usr/bin/env bash
# test-docker.sh: the stock docker CLI against portlayerd's Docker API.
#
# Runs inside a network namespace of its own (tests/lib/in-netns.sh): a
# docker-registry on 127.0.0.1 holding the busybox test image
# (tests/lib/make-oci-image.sh, pushed with skopeo as latest and as a second
# tag nobody pulled), portlayerd ($PL_PORTLAYERD_BIN) with its Docker socket
# in a temporary directory, and `docker -H unix://...` (the real CLI,
# $PL_DOCKER_BIN or docker on PATH) for every command the front end serves:
# output and exit codes checked, run of an image not pulled yet, stdin piped
# through run -i and exec -i, terminals through run -it and exec -it
# (script(1) gives them a pseudo-terminal), cp of a tree with a symlink both
# ways, logs -f ending with the container and its last line, what is not
# supported answering so, and a container made through one API seen through
# the other, named volumes and bind mounts, a network and a published port,
# how a container started (PortLayer.StartPath: a warm-pool guest, or a cold
# boot asked for with the io.portlayer.cold-start label; bad values refused).
# Guests are reused across cases: about twelve boots in all.
# The trap removes every container, stops the daemon and the registry and
# ends any QEMU whose command line names the temporary directory.
set -uo pipefail

: "${PL_SOURCE_DIR:?}" "${PL_PORTLAYERD_BIN:?}"
. "$PL_SOURCE_DIR/tests/lib/skip.sh"
. "$PL_SOURCE_DIR/tests/lib/e2e.sh"
[ -n "${PL_KERNEL_DIR:-}" ] && [ -f "$PL_KERNEL_DIR/vmlinuz" ] || test_skip_or_fail "PL_KERNEL_DIR (a guest kernel)"
DOCKER=${PL_DOCKER_BIN:-$(command -v docker)}
[ -n "$DOCKER" ] && [ -x "$DOCKER" ] || test_skip_or_fail "the docker CLI"
for t in umoci skopeo docker-registry busybox script python3 curl tar; do
        command -v "$t" >/dev/null || test_skip_or_fail "$t"
done

dir=$(mktemp -d /tmp/docker-test-XXXXXX)
sock=$dir/pl.sock
dsock=$dir/docker.sock
out=$dir/out
err=$dir/err
daemon_pid=
registry_pid=
step=start
export DOCKER_CONFIG=$dir/docker-config DOCKER_CLI_HINTS=false
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY

cleanup() {
        local rc=$? id
        trap - EXIT
        if [ -n "$daemon_pid" ]; then
                for id in $("$DOCKER" -H "unix://$dsock" ps -a -q 2>/dev/null); do
                        "$DOCKER" -H "unix://$dsock" rm -f "$id" >/dev/null 2>&1
                done
                kill -TERM "$daemon_pid" 2>/dev/null
                wait "$daemon_pid" 2>/dev/null
        fi
        if [ -n "$registry_pid" ]; then
                kill -TERM "$registry_pid" 2>/dev/null
                wait "$registry_pid" 2>/dev/null
        fi
        finish "$rc"
}
trap cleanup EXIT

# dk WANT_RC ARGS...: docker ARGS, stdout in $out, stderr in $err.
dk() {
        local want=$1
        shift
        step="docker $*"
        "$DOCKER" -H "unix://$dsock" "$@" >"$out" 2>"$err" </dev/null
        local rc=$?
        [ "$rc" = "$want" ] || fail "exit code $rc, want $want"
}
# dk_in WANT_RC INPUT ARGS...: dk with INPUT on stdin.
dk_in() {
        local want=$1 input=$2
        shift 2
        step="docker $* (with stdin)"
        printf '%s' "$input" | "$DOCKER" -H "unix://$dsock" "$@" >"$out" 2>"$err"
        local rc=$?
        [ "$rc" = "$want" ] || fail "exit code $rc, want $want"
}
# dk_tty WANT_RC ARGS...: docker ARGS on a pseudo-terminal (script), its
# output in $out.
dk_tty() {
        local want=$1 cmd
        shift
        step="docker $* (on a terminal)"
        cmd=$(printf '%q ' "$DOCKER" -H "unix://$dsock" "$@")
        script -qec "stty rows 33 cols 101; $cmd" /dev/null >"$out" 2>"$err" </dev/null
        local rc=$?
        [ "$rc" = "$want" ] || fail "exit code $rc, want $want"
}
is() { [ "$(cat "$out")" = "$1" ] || fail "stdout is not '$1'"; }
py() {
        python3 -c "import json,sys; j=json.load(sys.stdin); sys.exit(0 if ($1) else 1)" <"$out" || fail "JSON check failed: $1"
}
# api METHOD PATH [CURL ARGS...]: the port layer's REST API; body in $out,
# the status in $status.
api() {
        local m=$1 p=$2
        shift 2
        step="API $m $p"
        status=$(curl -s -o "$out" -w '%{http_code}' --unix-socket "$sock" -X "$m" "$@" "http://pl$p")
}
# dapi METHOD PATH [CURL ARGS...]: the Docker API by hand, likewise.
dapi() {
        local m=$1 p=$2
        shift 2
        step="Docker API $m $p"
        status=$(curl -s -o "$out" -w '%{http_code}' --unix-socket "$dsock" -X "$m" "$@" "http://d$p")
}

# --- the registry, the image, the daemon ---

step="make the test image"
bash "$PL_SOURCE_DIR/tests/lib/make-oci-image.sh" "$dir/oci" >/dev/null 2>&1 || fail "make-oci-image.sh"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REG=127.0.0.1:$port
mkdir -p "$dir/registry"
cat >"$dir/registry/config.yml" <<EOF
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $dir/registry/data}, delete: {enabled: true}}
http: {addr: $REG, secret: pl-test-secret}
EOF
docker-registry serve "$dir/registry/config.yml" >"$dir/registry/log" 2>&1 &
registry_pid=$!
step="start the registry"
for _ in $(seq 100); do
        curl -sf "http://$REG/v2/" >/dev/null && break
        sleep 0.1
done
curl -sf "http://$REG/v2/" >/dev/null || fail "docker-registry does not answer"
for tag in latest other; do
        skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$dir/oci:latest" "docker://$REG/busybox:$tag" ||
                fail "skopeo push $tag"
done
IMG=$REG/busybox:latest

step="start portlayerd"
# (a uid range of its own: the other e2e daemons run at the same time)
"$PL_PORTLAYERD_BIN" --state-dir "$dir" --socket "$sock" --docker-socket "$dsock" --uid-range 230000-239999 \
        --guest-kernel "$PL_KERNEL_DIR/vmlinuz" --boot-timeout 120 --log-level debug >"$dir/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 600); do
        [ -S "$dsock" ] && "$DOCKER" -H "unix://$dsock" version >/dev/null 2>&1 && break
        kill -0 "$daemon_pid" 2>/dev/null || fail "portlayerd exited at start-up"
        sleep 0.1
done
[ "$(stat -c %a "$dsock")" = 660 ] || fail "the Docker socket is not 0660"

# --- version, info, ping ---

dk 0 version
has "Server: portlayer"
has "API version:      1.45 (minimum version 1.41)"
dk 0 version --format '{{.Server.APIVersion}}'
is 1.45
dk 0 info
has "Server Version: "
has "Containers: 0"
has "Warm pool: [0-2] of 2 guests ready"
dk 0 info --format '{{.OSType}} {{.ContainersRunning}}'
is "linux 0"
# DOCKER_HOST works as for any daemon
step="DOCKER_HOST"
DOCKER_HOST=unix://$dsock "$DOCKER" version --format '{{.Server.Version}}' >"$out" 2>"$err" || fail "DOCKER_HOST"
dapi HEAD /_ping -I
[ "$status" = 200 ] || fail "HEAD /_ping: $status"
step="ping headers"
curl -sI --unix-socket "$dsock" http://d/_ping >"$out"
has "Api-Version: 1.45"
has "Ostype: linux"
dapi GET /v1.44/_ping
[ "$status" = 200 ] && is OK
dapi GET /v1.30/version
[ "$status" = 400 ] || fail "an old API version answered $status"
has "too old"

# --- images: pull, list, inspect ---

dk 0 images
[ "$(wc -l <"$out")" = 1 ] || fail "images are not empty"
dk 0 pull "$IMG"
has "Digest: sha256:"
has "Status: Downloaded newer image for $IMG"
dk 0 images
has "$REG/busybox"
dk 0 images -q
[ "$(wc -l <"$out")" = 1 ] || fail "one image id"
dk 0 image inspect "$IMG"
py "j[0]['Config']['Entrypoint'] == ['/bin/sh', '-c'] and j[0]['Config']['StopSignal'] == 'SIGINT'"
py "'$IMG' in j[0]['RepoTags'] and j[0]['Os'] == 'linux'"
dk 1 pull "127.0.0.1:1/nope:latest"
dk 1 image inspect "$REG/nope:latest"
has_err "No such image"

# --- run, attached: options mapped, exit code through wait ---

dk 3 run --name t1 -e FOO=bar -w /tmp -u 1000 --label a=b -m 128m --cpus 1 "$IMG" \
        'echo $FOO; pwd; id -u; echo to-stderr >&2; exit 3'
is "$(printf 'bar\n/tmp\n1000')"
has_err "to-stderr"
dk 0 inspect t1
py "j[0]['State']['Status'] == 'exited' and j[0]['State']['ExitCode'] == 3 and j[0]['Name'] == '/t1'"
py "j[0]['Config']['Labels']['a'] == 'b' and not any(k.startswith('io.portlayer.docker.') for k in j[0]['Config']['Labels'])"
py "j[0]['HostConfig']['Memory'] == 128 * 1024 * 1024 and j[0]['HostConfig']['NanoCpus'] == 10**9"
py "'FOO=bar' in j[0]['Config']['Env'] and j[0]['Config']['WorkingDir'] == '/tmp' and j[0]['Config']['User'] == '1000'"
py "j[0]['Path'] == '/bin/sh' and j[0]['Args'][0] == '-c'"
t1=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Id"])' <"$out")
dk 0 inspect -f '{{.State.ExitCode}} {{.Config.Tty}}' t1
is "3 false"
dk 0 wait t1
is 3

# the same container through the port layer's API
api GET "/containers/$t1"
[ "$status" = 200 ] || fail "the port layer does not see t1: $status"
py "j['name'] == 't1' and j['exit_code'] == 3 and j['config']['memory_mb'] == 128 and j['config']['labels']['a'] == 'b'"

# a run of an image nobody pulled pulls it
dk 0 run --rm "$REG/busybox:other" 'echo pulled-and-ran'
is pulled-and-ran
has_err "Unable to find image '$REG/busybox:other' locally"
dk 0 images
has "other"

# -i with piped stdin; --rm removes it; --entrypoint
dk_in 0 "$(printf 'line one\nline two')" run -i --rm --name piped "$IMG" 'cat; echo; echo done'
is "$(printf 'line one\nline two\ndone')"
dk 1 inspect piped
has_err "No such"
dk 0 run --rm --entrypoint /bin/echo "$IMG" hi there
is "hi there"

# -it on a terminal: a tty, its size from the client's terminal, the exit code
dk_tty 4 run -it --rm "$IMG" 'tty; stty size; exit 4'
has "/dev/pts/"
has "33 101"

# --- a long-running container for the rest ---

# with a warm-pool guest ready, a container that fits starts from it
wait_pool_ready "$sock"
dk 0 run -d --name web --label role=web "$IMG" \
        'trap "echo got-int; exit 7" INT; echo line1; echo err1 >&2; while :; do sleep 0.2; done'
web=$(cat "$out")
[ "${#web}" = 64 ] || fail "run -d printed no id"
dk 0 inspect -f '{{.PortLayer.StartPath}} {{.PortLayer.ColdStart}} {{.PortLayer.SharePages}}' web
is "template false true"
dk 0 inspect web
py "j[0]['PortLayer']['Domain'].startswith('plp-')"
dk 0 ps
has "web"
lacks "t1"
has "Up "
dk 0 ps -a
has "t1"
has "Exited (3)"
dk 0 ps -a -q
[ "$(wc -l <"$out")" = 2 ] || fail "ps -a -q: two containers"
has "${web:0:12}"
dk 0 ps -a --filter status=exited -q
is "${t1:0:12}"
dk 0 ps -a --filter label=role=web --format '{{.Names}}'
is web
dk 0 ps -a --filter name=t1 --format '{{.Names}} {{.Status}}'
has "t1 Exited (3)"
dk 0 ps --no-trunc --format '{{.ID}} {{.Command}}'
has "$web"

# logs
dk 0 logs web
is line1
has_err err1
dk 0 logs -t web
grep -qE '^20[0-9-]+T[0-9:.]+Z line1$' "$out" || fail "logs -t: no timestamp"
dk 0 logs --tail 1 web
[ "$(cat "$out" "$err" | wc -l)" = 1 ] || fail "logs --tail 1 gave more than one record"
dk 0 logs --since 2000-01-01T00:00:00Z web
has line1

# exec: plain, exit code, -e -w -u, -i, -it
dk 0 exec web echo hi
is hi
dk 5 exec web sh -c 'exit 5'
dk 0 exec -e X=1 -w /etc -u 1000 web sh -c 'echo $X; pwd; id -u'
is "$(printf '1\n/etc\n1000')"
dk_in 0 "$(printf 'abc\ndef')" exec -i web sh -c 'cat; echo; echo end'
is "$(printf 'abc\ndef\nend')"
dk_tty 6 exec -it web sh -c 'tty; stty size; exit 6'
has "/dev/pts/"
has "33 101"
dk 1 exec web /nonexistent

# top, stats, port
dk 0 top web
has "PID"
has "/bin/sh"
dk 0 stats --no-stream web
has "web"
has "MEM USAGE"
step="docker stats, streamed"
timeout -s INT -k 5 8 "$DOCKER" -H "unix://$dsock" stats --format '{{.Name}} {{.MemUsage}}' web >"$out" 2>"$err"
rc=$?
[ "$rc" = 124 ] || [ "$rc" = 137 ] || fail "streamed stats ended by themselves ($rc)"
has "web .*iB / .*iB"
dk 0 port web
is ""

# cp both ways: a tree with a symlink
mkdir -p "$dir/tree/sub"
echo hello >"$dir/tree/a.txt"
echo deep >"$dir/tree/sub/b.txt"
ln -s a.txt "$dir/tree/link"
dk 0 cp "$dir/tree" web:/tmp/
dk 0 exec web sh -c 'cat /tmp/tree/a.txt /tmp/tree/sub/b.txt; readlink /tmp/tree/link'
is "$(printf 'hello\ndeep\na.txt')"
dk 0 exec web sh -c 'echo made-inside > /tmp/tree/sub/c.txt'
dk 0 cp web:/tmp/tree "$dir/back"
step="cp out: compare"
[ "$(cat "$dir/back/sub/c.txt")" = made-inside ] || fail "cp out lost a file"
[ "$(readlink "$dir/back/link")" = a.txt ] || fail "cp out lost the symlink"
diff -r "$dir/tree" "$dir/back" | grep -v "c.txt" | grep -q . && fail "cp out differs"
dk 0 cp web:/tmp/tree/a.txt -
tar -tf "$out" | grep -qx a.txt || fail "cp to - is not a tar of a.txt"
dk 1 cp web:/nope "$dir/x"
has_err "Could not find the file /nope"

# rm of a running container needs -f
dk 1 rm web
has_err "container is running"

# pause, unpause, rename
dk 0 pause web
dk 0 ps --format '{{.Names}} {{.Status}}'
has "(Paused)"
dk 0 inspect -f '{{.State.Status}}' web
is paused
dk 0 unpause web
dk 0 rename web web2
dk 0 inspect -f '{{.Name}}' web2
is /web2
dk 1 inspect web
dk 0 exec web2 echo renamed
is renamed

# stop sends the image's stop signal (SIGINT: the trap answers), then wait
dk 0 stop -t 20 web2
dk 0 inspect -f '{{.State.Status}} {{.State.ExitCode}}' web2
is "exited 7"
dk 0 logs web2
has got-int
dk 0 wait web2
is 7
# restart boots it again; kill -s; wait gives the signal's code
dk 0 restart web2
dk 0 inspect -f '{{.State.Status}}' web2
is running
# attach to the running container: what its main process writes from now
# on, until it ends (the exit code is the container's)
step="docker attach web2"
"$DOCKER" -H "unix://$dsock" attach --no-stdin web2 >"$dir/attach.out" 2>"$dir/attach.err" &
attach_pid=$!
sleep 2
dk 0 inspect -f '{{.State.Pid}}' web2
pid=$(cat "$out")
dk 0 exec web2 sh -c "echo via-attach > /proc/$pid/fd/1"
dk 0 kill -s TERM web2
step="docker attach web2: its end"
wait "$attach_pid"
rc=$?
[ "$rc" = 143 ] || { cp "$dir/attach.out" "$out"; cp "$dir/attach.err" "$err"; fail "attach ended with $rc, want 143"; }
grep -qx via-attach "$dir/attach.out" || { cp "$dir/attach.out" "$out"; fail "attach did not show the output"; }
dk 0 wait web2
is 143
dk 1 kill web2
has_err "is not running"

# logs -f ends when the container does, with its last line
dk 0 run -d --name lf --label io.portlayer.cold-start=true --label io.portlayer.share-pages=false "$IMG" \
        'for i in 1 2 3; do echo n$i; sleep 0.3; done; printf last'
lf=$(cat "$out")
step="logs -f"
timeout 120 "$DOCKER" -H "unix://$dsock" logs -f lf >"$out" 2>"$err" || fail "logs -f did not end by itself"
is "$(printf 'n1\nn2\nn3\nlast')"
# the cold-start label booted its own VM, though the pool may have had a guest;
# the share-pages label kept its RAM from KSM
dk 0 inspect -f '{{.PortLayer.StartPath}} {{.PortLayer.ColdStart}} {{.PortLayer.Domain}} {{.PortLayer.SharePages}}' lf
is "cold true pl-${lf:0:16} false"

# events
dk 0 events --since 0 --until "$(($(date +%s) + 1))" --filter container=lf
has "container create"
has "container start"
has "container die"
dk 0 events --since 0 --until "$(($(date +%s) + 1))" --format '{{json .}}'
has '"Action":"rename"'

# volumes: a named one outlives docker rm; a bind mount shows the host's
# files, read-only when asked
dk 0 volume create data
is data
dk 0 volume ls
has data
dk 0 volume inspect data
py "j[0]['Name'] == 'data' and j[0]['Driver'] == 'local'"
mkdir -p "$dir/share"
echo from-host >"$dir/share/h.txt"
dk 0 run --name vol1 -v data:/data -v "$dir/share:/mnt:ro" "$IMG" \
        'echo kept > /data/f; cat /mnt/h.txt; (echo x > /mnt/y) 2>/dev/null || echo read-only'
is "$(printf 'from-host\nread-only')"
dk 0 inspect vol1
py "any(m['Type'] == 'volume' and m['Name'] == 'data' and m['Destination'] == '/data' for m in j[0]['Mounts'])"
py "any(m['Type'] == 'bind' and m['Source'] == '$dir/share' and m['RW'] is False for m in j[0]['Mounts'])"
dk 1 volume rm data
has_err "in use"
dk 0 rm vol1
dk 0 run --rm -v data:/data "$IMG" 'cat /data/f'
is kept
dk 0 volume rm data
dk 0 volume ls -q
lacks data
dk 1 volume inspect data
has_err "no such volume"

# networks and published ports: busybox httpd on a network of its own,
# reached from the host through -p
dk 0 network create --subnet 10.89.7.0/24 dnet
dk 0 network ls --format '{{.Name}}'
has dnet
dk 0 network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' dnet
is 10.89.7.0/24
dk 0 run -d --name web8 --network dnet -p 127.0.0.1:18080:80 "$IMG" \
        'mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 80 -h /www'
step="curl through -p"
for _ in $(seq 60); do
        curl -sf http://127.0.0.1:18080/ >"$out" 2>"$err" && break
        sleep 0.5
done
is served
dk 0 port web8
is "80/tcp -> 127.0.0.1:18080"
dk 0 inspect -f '{{.NetworkSettings.IPAddress}} {{.HostConfig.NetworkMode}}' web8
grep -qE '^10\.89\.7\.[0-9]+ dnet$' "$out" || fail "no address on dnet"
dk 1 network rm dnet
dk 0 rm -f web8
dk 0 network rm dnet
dk 1 network inspect dnet

# a container made through the port layer's API, seen by docker
api POST /containers -d "{\"name\": \"from-api\", \"image\": \"$IMG\"}"
[ "$status" = 201 ] || fail "create through the API: $status"
handle=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["handle"])' <"$out")
api POST "/handles/$handle/commit"
[ "$status" = 200 ] || fail "commit: $status"
dk 0 ps -a --format '{{.Names}} {{.State}}'
has "from-api created"

# a cold-start label or annotation that is neither true nor false is
# refused, and nothing is created (ps -a is empty below)
dk 125 run --label io.portlayer.cold-start=yes "$IMG" true
has_err "io.portlayer.cold-start: 'yes' is not true or false"
dk 1 create --annotation io.portlayer.cold-start=maybe "$IMG"
has_err "HostConfig.Annotations.io.portlayer.cold-start: 'maybe' is not true or false"

# rm
dk 0 rm lf from-api t1
dk 0 rm -f web2
dk 0 ps -a -q
is ""
dk 1 rm nope
has_err "No such container: nope"

# --- what is not supported says so; bad bodies are 400 ---

mkdir -p "$dir/ctx"
echo "FROM scratch" >"$dir/ctx/Dockerfile"
DOCKER_BUILDKIT=0 dk 1 build "$dir/ctx"
has_err "not supported by portlayer"
dk 1 swarm init
has_err "not supported by portlayer"
dk 1 plugin ls
has_err "not supported by portlayer"
dk 1 push "$IMG"
has_err "not supported by portlayer"
dk 125 run -p 80 "$IMG" true
has_err "not supported by portlayer"
dapi POST /v1.45/containers/create -H 'Content-Type: application/json' -d '{bad'
[ "$status" = 400 ] || fail "a malformed body answered $status"
py "'malformed JSON' in j['message']"
dapi POST /v1.45/containers/create -H 'Content-Type: application/json' -d '{"Image": 5}'
[ "$status" = 400 ] || fail "a bad Image answered $status"
dapi POST /v1.45/commit
[ "$status" = 501 ] || fail "commit answered $status"
py "j['message'] == 'docker commit is not supported by portlayer'"

# rmi
dk 0 rmi "$REG/busybox:other"
has "Untagged"
dk 1 rmi "$REG/busybox:nope"

step="done"
echo "test-docker: all passed"
