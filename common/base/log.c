/* log.c: leveled logging (see log.h). One write() per line so that lines from
 * several processes sharing a console do not interleave mid-line. */
#include "common/base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *log_ident = "pl";
static LogLevel log_level = LOG_LEVEL_INFO;
static int log_fd = STDERR_FILENO;

static const char *const level_names[_LOG_LEVEL_MAX] = {
        [LOG_LEVEL_ERROR] = "error",
        [LOG_LEVEL_WARNING] = "warning",
        [LOG_LEVEL_INFO] = "info",
        [LOG_LEVEL_DEBUG] = "debug",
};

void log_setup(const char *ident, LogLevel level, int fd) {
        if (ident)
                log_ident = ident;
        log_level = level;
        if (fd >= 0)
                log_fd = fd;
}

void log_set_level(LogLevel level) {
        log_level = level;
}

LogLevel log_get_level(void) {
        return log_level;
}

int log_level_from_string(const char *s) {
        for (int i = 0; i < _LOG_LEVEL_MAX; i++)
                if (s && strcasecmp(s, level_names[i]) == 0)
                        return i;
        return -EINVAL;
}

const char *log_level_to_string(LogLevel level) {
        return level >= 0 && level < _LOG_LEVEL_MAX ? level_names[level] : "?";
}

int log_internal(LogLevel level, int error, const char *file, int line, const char *fmt, ...) {
        if (error < 0)
                error = -error;
        if (level > log_level)
                return -error;

        int saved = errno;
        char buf[2048];
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int n = snprintf(buf, sizeof buf, "[%5lld.%03ld] %s[%d] %s: ", (long long) ts.tv_sec,
                         ts.tv_nsec / 1000000, log_ident, (int) getpid(), level_names[level]);
        if (n < 0)
                n = 0;

        va_list ap;
        va_start(ap, fmt);
        errno = error; /* lets callers use %m for the error being logged */
        int m = vsnprintf(buf + n, sizeof buf - (size_t) n, fmt, ap);
        va_end(ap);
        if (m > 0)
                n = MIN((size_t) n + (size_t) m, sizeof buf - 2);
        (void) file;
        (void) line;
        n = MIN((size_t) n, sizeof buf - 2);
        buf[n++] = '\n';
        ssize_t w = write(log_fd, buf, (size_t) n);
        (void) w;
        errno = saved;
        return -error;
}
