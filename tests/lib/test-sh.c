/* test-sh.c: see test-sh.h. */
#include "lib/test-sh.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

static int exit_status(int st) {
        if (st < 0)
                return -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int test_sh(const char *fmt, ...) {
        char *cmd = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&cmd, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -1;
        int st = system(cmd);
        free(cmd);
        return exit_status(st);
}

int test_sh_out(char **ret_out, size_t *ret_len, const char *fmt, ...) {
        char *cmd = NULL, *buf = NULL;
        size_t n = 0;
        va_list ap;
        va_start(ap, fmt);
        int k = vasprintf(&cmd, fmt, ap);
        va_end(ap);
        if (ret_out)
                *ret_out = NULL;
        if (k < 0)
                return -1;
        FILE *p = popen(cmd, "re");
        free(cmd);
        if (!p)
                return -1;
        FILE *m = open_memstream(&buf, &n);
        char chunk[4096];
        for (size_t got; (got = fread(chunk, 1, sizeof chunk, p)) > 0;)
                if (m)
                        fwrite(chunk, 1, got, m);
        if (m)
                fclose(m);
        int st = exit_status(pclose(p));
        if (!buf) /* open_memstream failed */
                return -1;
        if (ret_len)
                *ret_len = n;
        if (ret_out)
                *ret_out = buf;
        else
                free(buf);
        return st;
}
