/* log.h: leveled logging to stderr (or a file descriptor), libc only.
 *
 * Library code logs at debug level at most; the top level (main, a request
 * dispatcher) reports errors once. log_error_errno() returns the negative
 * errno it was given so that "return log_error_errno(r, ...)" is one line. */
#pragma once

#include "common/base/macro.h"

typedef enum LogLevel {
        LOG_LEVEL_ERROR,
        LOG_LEVEL_WARNING,
        LOG_LEVEL_INFO,
        LOG_LEVEL_DEBUG,
        _LOG_LEVEL_MAX,
} LogLevel;

/* Sets the identity printed before every line ("pl-agent[123]"), the level and
 * the target fd (-1 keeps the current one, initially stderr). */
void log_setup(const char *ident, LogLevel level, int fd);
void log_set_level(LogLevel level);
LogLevel log_get_level(void);

/* Parses "error", "warning", "info", "debug"; returns the level or -EINVAL. */
int log_level_from_string(const char *s);
const char *log_level_to_string(LogLevel level);

/* Logs one line; returns -abs(error) (or 0 when error is 0). */
int log_internal(LogLevel level, int error, const char *file, int line, const char *fmt, ...)
        _printf_(5, 6);

#define log_full_errno(level, error, ...) log_internal(level, error, __FILE__, __LINE__, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_LEVEL_ERROR, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_LEVEL_WARNING, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_LEVEL_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_LEVEL_DEBUG, 0, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_LEVEL_ERROR, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_LEVEL_WARNING, e, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_LEVEL_DEBUG, e, __VA_ARGS__)
