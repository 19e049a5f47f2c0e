/* proc-util.c: see proc-util.h. Everything read is bounded: the files belong
 * to processes we do not trust to keep them small. */
#include "common/base/proc-util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/io-util.h"
#include "common/base/macro.h"
#include "common/base/parse-util.h"

#define PROC_CMDLINE_MAX (64u << 10)
#define PROC_SMAPS_ROLLUP_MAX (8u << 10)

bool proc_cmdline_has_prefix(pid_t pid, const char *prefix) {
        char path[64];
        _cleanup_free_ char *cmd = NULL;
        size_t len = 0, pl = strlen(prefix);
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int) pid);
        if (pid <= 0 || pl == 0 || read_file_bounded(path, PROC_CMDLINE_MAX, &cmd, &len) < 0)
                return false;
        for (size_t off = 0; off < len; off += strlen(cmd + off) + 1) {
                const char *arg = cmd + off;
                if (strncmp(arg, prefix, pl) == 0 || (strlen(arg) == pl - 1 && strncmp(arg, prefix, pl - 1) == 0))
                        return true;
        }
        return false;
}

void proc_cmdline_text(pid_t pid, char *buf, size_t size) {
        char path[64];
        _cleanup_free_ char *cmd = NULL;
        size_t len = 0;
        if (size == 0)
                return;
        buf[0] = 0;
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int) pid);
        if (pid <= 0 || read_file_bounded(path, PROC_CMDLINE_MAX, &cmd, &len) < 0)
                return;
        size_t n = MIN(len, size - 1);
        for (size_t i = 0; i < n; i++)
                buf[i] = cmd[i] == 0 ? ' ' : (cmd[i] < 0x20 ? '?' : cmd[i]);
        while (n > 0 && buf[n - 1] == ' ')
                n--;
        buf[n] = 0;
}

int proc_pss_kib(pid_t pid, uint64_t *ret) {
        char path[64];
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int) pid);
        if (pid <= 0)
                return -ESRCH;
        int r = read_file_bounded(path, PROC_SMAPS_ROLLUP_MAX, &text, &len);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        const char *p = strstr(text, "\nPss:");
        if (!p)
                return -EBADMSG;
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(p + 5, &end, 10);
        if (errno || end == p + 5)
                return -EBADMSG;
        *ret = v;
        return 0;
}

int proc_read_pid_file(const char *path, pid_t *ret) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_file_bounded(path, 32, &text, &len);
        if (r < 0)
                return r;
        text[strcspn(text, "\n")] = 0;
        uint32_t v;
        if (safe_atou32(text, &v) < 0 || v == 0 || v > (uint32_t) INT32_MAX)
                return -EBADMSG;
        *ret = (pid_t) v;
        return 0;
}
