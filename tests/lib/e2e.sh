# e2e.sh: what the shell e2e tests share (source it after setting dir, out,
# err and step):
#     end_our_qemus     kills, by pid, every QEMU whose command line names
#                       $dir (the test's temporary directory); prints how many
#     fail MESSAGE      says which step failed and why, shows the head of
#                       $out and $err, and exits 1 (the EXIT trap cleans up)
#     has/has_err/lacks TEXT   stdout ($out) or stderr ($err) must (not) hold TEXT
#     wait_pool_ready SOCK   waits (up to 300 s) until the daemon on the REST
#                       socket SOCK has a warm-pool guest ready (GET /version's
#                       pool.ready), so the next start that fits is a
#                       template start; fails when it has no pool
#     finish RC         the end of a test's EXIT trap, once its daemon is
#                       stopped: fails (RC 1) when QEMUs of $dir were still
#                       alive (ending them), names the failed step with the
#                       daemon log's tail, removes $dir unless
#                       PL_KEEP_TEST_DIRS is set, and exits with RC

end_our_qemus() {
        local p cmd n=0
        for p in /proc/[0-9]*; do
                cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
                case $cmd in *qemu-system*"$dir"*) kill -KILL "${p#/proc/}" 2>/dev/null && n=$((n + 1)) ;; esac
        done
        echo "$n"
}

fail() {
        echo "FAIL: $step: $*" >&2
        echo "--- stdout:" >&2
        head -c 4000 "$out" >&2
        echo "--- stderr:" >&2
        head -c 4000 "$err" >&2
        exit 1
}

has() { grep -q -- "$1" "$out" || fail "stdout lacks '$1'"; }
has_err() { grep -q -- "$1" "$err" || fail "stderr lacks '$1'"; }
lacks() { ! grep -q -- "$1" "$out" || fail "stdout has '$1'"; }

wait_pool_ready() {
        local sock=$1 i
        step="wait for a warm-pool guest"
        for i in $(seq 600); do
                curl -s --unix-socket "$sock" http://pl/version >"$out" 2>"$err" || fail "GET /version"
                python3 -c 'import json,sys; p=json.load(sys.stdin)["pool"]; sys.exit(0 if p["ready"] >= 1 else 1 if p["size"] > 0 else 2)' <"$out" 2>>"$err"
                case $? in
                0) return 0 ;;
                2) fail "the daemon keeps no warm pool" ;;
                esac
                sleep 0.5
        done
        fail "no warm-pool guest ready after 300 s"
}

finish() {
        local rc=$1 left
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
