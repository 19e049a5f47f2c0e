/* test-net.h: helpers for tests that make links, addresses and routes. They
 * run inside a network namespace of their own (pl_test NETNS, which wraps
 * them in tests/lib/in-netns.sh) and check what they did with iproute2. */
#pragma once

/* Outside a case (main): skips the program (or fails it under
 * PL_TESTS_REQUIRED=1) unless it runs in a namespace in-netns.sh made
 * (PL_TEST_NETNS) and `ip` is there, so it never touches the host's links. */
void test_netns_require(void);

/* Inside a case: the output of `ip ARGS` (printf-formatted) in a buffer that
 * the next call frees; fails the case when ip fails. */
const char *test_ip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
