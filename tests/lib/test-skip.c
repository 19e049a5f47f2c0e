/* test-skip.c: see test-skip.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/test-skip.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned skipped;

bool test_required(void) {
        const char *v = getenv("PL_TESTS_REQUIRED"), *old = getenv("PL_E2E_REQUIRED");
        return (v && strcmp(v, "1") == 0) || (old && old[0]);
}

static void say_skip(const char *func, const char *what) {
        fflush(stdout); /* after cmocka's own lines */
        if (func)
                fprintf(stderr, "SKIP: %s/%s: needs %s\n", program_invocation_short_name, func, what);
        else
                fprintf(stderr, "SKIP: %s: needs %s\n", program_invocation_short_name, what);
        if (test_required())
                fprintf(stderr, "FAIL: PL_TESTS_REQUIRED=1 makes every skip a failure\n");
        fflush(stderr);
}

_Noreturn void test_skip_or_fail_at(const char *file, int line, const char *func, const char *what) {
        say_skip(func, what);
        if (test_required()) {
                print_error("ERROR: %s needs %s (PL_TESTS_REQUIRED=1)\n", func, what);
                _fail(file, line);
        } else {
                skipped++;
                _skip(file, line);
        }
        abort(); /* neither returns inside a case */
}

_Noreturn void test_program_skip_or_fail(const char *what) {
        say_skip(NULL, what);
        exit(test_required() ? 1 : 77);
}

static bool on_path(const char *tool) {
        if (tool[0] == '/')
                return access(tool, X_OK) == 0;
        const char *path = getenv("PATH");
        char *dirs = NULL;
        if (asprintf(&dirs, "%s:/sbin:/usr/sbin", path ? path : "/usr/bin:/bin") < 0)
                return false;
        bool found = false;
        char *save = NULL;
        for (char *d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
                char *p = NULL;
                if (asprintf(&p, "%s/%s", d, tool) < 0)
                        break;
                found = access(p, X_OK) == 0;
                free(p);
        }
        free(dirs);
        return found;
}

const char *test_missing_tool(const char *tools) {
        static char name[128];
        for (const char *t = tools; *t;) {
                size_t n = strcspn(t, " ");
                if (n > 0 && n < sizeof name) {
                        memcpy(name, t, n);
                        name[n] = '\0';
                        if (!on_path(name))
                                return name;
                }
                t += n;
                t += strspn(t, " ");
        }
        return NULL;
}

int test_group_result(int failed) {
        if (failed != 0)
                return failed;
        if (skipped > 0) {
                fprintf(stderr, "SKIP: %s: %u case(s) skipped, the others passed\n", program_invocation_short_name,
                        skipped);
                return 77;
        }
        return 0;
}

void test_filter_from_env(void) {
        const char *pattern = getenv("PL_TEST_FILTER");
        if (pattern && *pattern)
                cmocka_set_test_filter(pattern);
}
