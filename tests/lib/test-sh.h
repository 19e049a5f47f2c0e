/* test-sh.h: running shell command lines from tests and fixtures. */
#pragma once

#include <stddef.h>

/* Runs the printf-formatted command with /bin/sh -c (system(3)). Returns its
 * exit status, 128 + the signal for a death by signal, -1 when the command
 * line cannot be built. */
int test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Like test_sh(), and collects the command's stdout: *ret_out is malloc'd and
 * NUL-terminated (its length in *ret_len when that is not NULL). With ret_out
 * NULL the output is read and dropped. *ret_out is NULL when the command could
 * not be started (the return value is then -1). */
int test_sh_out(char **ret_out, size_t *ret_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
