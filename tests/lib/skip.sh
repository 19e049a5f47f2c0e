# skip.sh: the one way a shell test skips, as tests/lib/test-skip.h for C.
# Source it, then:
#     test_skip_or_fail "what is missing"
# prints "SKIP: <test>: needs <what>" and exits 77 (ctest: Skipped), or exits
# 1 when PL_TESTS_REQUIRED=1 (scripts/test.sh) makes every skip a failure.
# PL_E2E_REQUIRED, the old name, is still honoured. <test> is $PL_TEST_NAME,
# else the script's name without .sh.

test_skip_or_fail() {
        local name=${PL_TEST_NAME:-$(basename "$0" .sh)}
        echo "SKIP: $name: needs $*" >&2
        if [ "${PL_TESTS_REQUIRED:-}" = 1 ] || [ -n "${PL_E2E_REQUIRED:-}" ]; then
                echo "FAIL: PL_TESTS_REQUIRED=1 makes every skip a failure" >&2
                exit 1
        fi
        exit 77
}
