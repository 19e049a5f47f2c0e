/* test-golden.c: see test-golden.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/test-golden.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/test-files.h"
#include "lib/test-sh.h"

/* The line (1-based) where a and b first differ, and where it starts in each. */
static size_t first_difference(const char *a, const char *b, const char **ret_a, const char **ret_b) {
        size_t line = 1;
        const char *la = a, *lb = b;
        for (; *a && *a == *b; a++, b++)
                if (*a == '\n') {
                        line++;
                        la = a + 1;
                        lb = b + 1;
                }
        *ret_a = la;
        *ret_b = lb;
        return line;
}

void test_assert_golden_at(const char *file, int line, const char *actual, const char *name) {
        const char *slash = strrchr(file, '/');
        char *path = test_pathf("%.*s/golden/%s", slash ? (int) (slash - file) : 1, slash ? file : ".", name);
        const char *update = getenv("PL_UPDATE_GOLDEN");
        if (update && strcmp(update, "1") == 0) {
                test_write_file(path, actual);
                print_message("rewrote %s (PL_UPDATE_GOLDEN=1)\n", path);
                free(path);
                return;
        }
        char *expected = test_read_file(path, NULL);
        if (!expected) {
                print_error("ERROR: golden file %s is missing (PL_UPDATE_GOLDEN=1 writes it)\n", path);
                free(path);
                _fail(file, line);
        }
        if (strcmp(expected, actual) == 0) {
                free(expected);
                free(path);
                return;
        }
        char tmp[] = "/tmp/pl-golden-actual.XXXXXX";
        int fd = mkstemp(tmp);
        if (fd >= 0) {
                close(fd);
                test_write_file(tmp, actual);
                fflush(stdout);
                (void) test_sh("diff -u '%s' '%s' >&2", path, tmp);
                unlink(tmp);
        }
        const char *ea, *aa;
        size_t at = first_difference(expected, actual, &ea, &aa);
        print_error("ERROR: output differs from %s at line %zu:\n"
                    "  expected: %.*s\n"
                    "  actual:   %.*s\n"
                    "(PL_UPDATE_GOLDEN=1 rewrites the golden file after an intended change)\n",
                    path, at, (int) strcspn(ea, "\n"), ea, (int) strcspn(aa, "\n"), aa);
        free(expected);
        free(path);
        _fail(file, line);
}
