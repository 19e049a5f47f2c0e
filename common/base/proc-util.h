/* proc-util.h: what /proc says of another process (libc only). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* True when one argument of pid's command line starts with prefix (or is
 * prefix without its last character: "guest=NAME," matches "guest=NAME"). */
bool proc_cmdline_has_prefix(pid_t pid, const char *prefix);

/* pid's command line, arguments joined by blanks and cut to fit size
 * (always NUL-terminated; "" when the process is gone or size is 0). */
void proc_cmdline_text(pid_t pid, char *buf, size_t size);

/* pid's proportional set size from /proc/PID/smaps_rollup, in KiB.
 * -ESRCH when the process is gone, -EBADMSG when the file has no Pss line. */
int proc_pss_kib(pid_t pid, uint64_t *ret);

/* The pid written in a pid file (a decimal number, optional newline): -ENOENT
 * when there is no file, -EBADMSG when it holds anything else. */
int proc_read_pid_file(const char *path, pid_t *ret);
