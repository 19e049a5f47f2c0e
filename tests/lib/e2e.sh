# e2e.sh: what the shell e2e tests share (source it after setting dir, out,
# err and step):
#     end_our_qemus     kills, by pid, every QEMU whose command line names
#                       $dir (the test's temporary directory); prints how many
#     fail MESSAGE      says which step failed and why, shows the head of
#                       $out and $err, and exits 1 (the EXIT trap cleans up)
#     has/has_err/lacks TEXT   stdout ($out) or stderr ($err) must (not) hold TEXT

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
