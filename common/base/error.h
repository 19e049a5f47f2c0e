/* error.h: the one error type of the code base.
 *
 * A function that can fail returns a negative errno. If its caller may want to
 * know why, it also takes "Error **err" as last argument and sets *err exactly
 * once with error_set(). Callers crossing a module boundary add context with
 * error_prefix() ("pull layer sha256:...: " + inner message). The top level
 * (a request dispatcher, a CLI main) reports it once and frees it. Passing
 * err == NULL is always allowed and means "I only want the code". */
#pragma once

#include <stdarg.h>

#include "common/base/macro.h"

typedef struct Error {
        int code;      /* positive errno value */
        char *message; /* human readable, never NULL once set */
} Error;

/* Sets *err (if err and *err is still NULL) to code and the formatted message.
 * Returns -abs(code) so that failing is one line: "return error_set(...)".
 * A code of 0 becomes EIO. */
int error_set(Error **err, int code, const char *fmt, ...) _printf_(3, 4);
int error_setv(Error **err, int code, const char *fmt, va_list ap) _printf_(3, 0);

/* Like error_set() but appends ": strerror(code)". */
int error_set_errno(Error **err, int code, const char *fmt, ...) _printf_(3, 4);

/* Sets *err to ENOMEM "out of memory" (as error_set() does) and returns
 * -ENOMEM: the one way an allocation failure is reported. */
int error_oom(Error **err);

/* Prepends "context: " to an existing message; no-op if err or *err is NULL.
 * Returns -(*err)->code, or -EIO when nothing is set. */
int error_prefix(Error **err, const char *fmt, ...) _printf_(2, 3);

/* Returns the message of err or "unknown error" when err is NULL. */
const char *error_text(const Error *err);

/* Frees err (NULL-safe); returns NULL. */
Error *error_free(Error *err);
DEFINE_TRIVIAL_CLEANUP_FUNC(Error *, error_free);
#define _cleanup_error_ _cleanup_(error_freep)
