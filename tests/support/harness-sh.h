/* harness-sh.h: running a shell command line from a test fixture. */
#pragma once

/* Runs the printf-formatted command with /bin/sh -c (system(3)). Returns its
 * exit status, 128 + the signal for a death by signal, -1 when the command
 * line cannot be built. */
int harness_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
