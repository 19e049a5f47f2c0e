/* error.c: the one error type (see error.h). Allocation failures while
 * building a message degrade to a static message instead of losing the code. */
#include "common/base/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char oom_message[] = "out of memory while formatting an error";

static void error_message_free(char *m) {
        if (m != oom_message)
                free(m);
}

int error_setv(Error **err, int code, const char *fmt, va_list ap) {
        if (code < 0)
                code = -code;
        if (code == 0)
                code = EIO;
        if (!err || *err)
                return -code;

        Error *e = calloc(1, sizeof(*e));
        if (!e)
                return -code;
        e->code = code;
        if (vasprintf(&e->message, fmt, ap) < 0)
                e->message = (char *) oom_message;
        *err = e;
        return -code;
}

int error_set(Error **err, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = error_setv(err, code, fmt, ap);
        va_end(ap);
        return r;
}

int error_set_errno(Error **err, int code, const char *fmt, ...) {
        if (code < 0)
                code = -code;
        if (!err || *err)
                return code ? -code : -EIO;

        _cleanup_free_ char *head = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&head, fmt, ap);
        va_end(ap);
        if (n < 0)
                head = NULL;
        return error_set(err, code, "%s: %s", head ? head : "?", strerror(code ? code : EIO));
}

int error_oom(Error **err) {
        return error_set(err, ENOMEM, "out of memory");
}

int error_prefix(Error **err, const char *fmt, ...) {
        if (!err || !*err)
                return -EIO;

        Error *e = *err;
        _cleanup_free_ char *head = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&head, fmt, ap);
        va_end(ap);
        if (n >= 0) {
                char *joined = NULL;
                if (asprintf(&joined, "%s: %s", head, e->message) >= 0) {
                        error_message_free(e->message);
                        e->message = joined;
                }
        }
        return -e->code;
}

const char *error_text(const Error *err) {
        return err && err->message ? err->message : "unknown error";
}

Error *error_free(Error *err) {
        if (!err)
                return NULL;
        error_message_free(err->message);
        free(err);
        return NULL;
}
