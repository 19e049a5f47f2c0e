/* test-proc-util.c: what /proc says of real processes: this test's own PSS
 * and command line, a child that exited, and pid files good and bad. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/base/proc-util.h"

static char *argv0;

static void test_self(void **state) {
        uint64_t pss = 0;
        assert_int_equal(proc_pss_kib(getpid(), &pss), 0);
        assert_true(pss > 0);
        assert_true(proc_cmdline_has_prefix(getpid(), argv0));
        /* a prefix of the argument matches, a longer string does not */
        char shorter[4096];
        snprintf(shorter, sizeof shorter, "%.*s", (int) strlen(argv0) - 1, argv0);
        assert_true(proc_cmdline_has_prefix(getpid(), shorter));
        char longer[4096];
        snprintf(longer, sizeof longer, "%sXY", argv0);
        assert_false(proc_cmdline_has_prefix(getpid(), longer));
        /* "NAME," also matches a last argument "NAME" */
        char comma[4096];
        snprintf(comma, sizeof comma, "%s,", argv0);
        assert_true(proc_cmdline_has_prefix(getpid(), comma));
        assert_false(proc_cmdline_has_prefix(getpid(), ""));
}

static void test_gone(void **state) {
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0)
                _exit(0);
        assert_int_equal(waitpid(child, NULL, 0), child);
        uint64_t pss = 0;
        assert_int_equal(proc_pss_kib(child, &pss), -ESRCH);
        assert_false(proc_cmdline_has_prefix(child, argv0));
        assert_int_equal(proc_pss_kib(0, &pss), -ESRCH);
}

static void test_pid_file(void **state) {
        char dir[] = "/tmp/test-proc-util-XXXXXX", path[64];
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/x.pid", dir);
        pid_t pid = 0;
        assert_int_equal(proc_read_pid_file(path, &pid), -ENOENT);
        const struct {
                const char *text;
                int r;
                pid_t pid;
        } cases[] = {
                {"1234\n", 0, 1234}, {"77", 0, 77},         {"", -EBADMSG, 0},      {"0\n", -EBADMSG, 0},
                {"-5\n", -EBADMSG, 0}, {"12ab\n", -EBADMSG, 0}, {"99999999999\n", -EBADMSG, 0},
                {"1234567890123456789012345678901234567890", -EFBIG, 0},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                FILE *f = fopen(path, "w");
                assert_non_null(f);
                fputs(cases[i].text, f);
                fclose(f);
                pid = 0;
                int r = proc_read_pid_file(path, &pid);
                if (r != cases[i].r)
                        fail_msg("'%s': %d, not %d", cases[i].text, r, cases[i].r);
                assert_int_equal(pid, cases[i].pid);
        }
        unlink(path);
        rmdir(dir);
}

int main(int argc, char **argv) {
        (void) argc;
        argv0 = argv[0];
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_self),
                cmocka_unit_test(test_gone),
                cmocka_unit_test(test_pid_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
