/* test-skip.h: the one way a test skips.
 *
 * A test that cannot run here (a tool, a device, a privilege or a variable is
 * missing) says so on stderr as
 *     SKIP: <test>: needs <what>
 * and then skips: the case is skipped (cmocka), or the program exits 77,
 * which ctest reports as "Skipped" (SKIP_RETURN_CODE). When PL_TESTS_REQUIRED=1
 * is set (scripts/test.sh sets it) the same call fails the test instead, so
 * a missing tool never passes for a tested feature. PL_E2E_REQUIRED, the old
 * name, is still honoured.
 *
 * A program whose cases all ran or were skipped, with at least one skipped,
 * exits 77 through test_run_group(): ctest shows it as "Skipped" rather than
 * "Passed", and the SKIP lines say which cases did not run.
 * tests/lib/skip.sh is the same rule for shell tests. */
#pragma once

#include <stdbool.h>

/* Whether skips are failures here (PL_TESTS_REQUIRED=1, or PL_E2E_REQUIRED). */
bool test_required(void);

/* Inside a cmocka case: prints the SKIP line, then skips the case, or fails it
 * under PL_TESTS_REQUIRED=1. Does not return. */
#define test_skip_or_fail(what) test_skip_or_fail_at(__FILE__, __LINE__, __func__, (what))
_Noreturn void test_skip_or_fail_at(const char *file, int line, const char *func, const char *what);

/* Outside a case (main, a group setup): prints the SKIP line and exits 77, or
 * exits 1 under PL_TESTS_REQUIRED=1. */
_Noreturn void test_program_skip_or_fail(const char *what);

/* The first of the space-separated commands in tools that is neither on $PATH
 * nor in /sbin or /usr/sbin (a static buffer), or NULL when all are there. A
 * name with a leading '/' is checked at that path ("/bin/busybox"). */
const char *test_missing_tool(const char *tools);

/* cmocka_run_group_tests() with skips counted: returns its result when a case
 * failed, else 77 when a case was skipped (see above), else 0. With
 * PL_TEST_FILTER set, only the cases whose name matches that pattern run
 * (cmocka's wildcards: PL_TEST_FILTER='test_setup*'), for running one case of
 * a long e2e program by hand. */
#define test_run_group(tests, setup, teardown) \
        (test_filter_from_env(), test_group_result(cmocka_run_group_tests(tests, setup, teardown)))
int test_group_result(int failed);
void test_filter_from_env(void);
