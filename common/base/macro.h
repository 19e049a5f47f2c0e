/* macro.h: small language helpers shared by every component (libc only).
 *
 * Cleanup attributes so that every early return releases what it holds, and
 * TAKE_PTR/TAKE_FD so that ownership visibly moves out of a cleanup variable. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _warn_unused_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Moves a pointer out of a cleanup variable: returns it and leaves NULL. */
#define TAKE_PTR(p)                      \
        ({                               \
                __typeof__(p) _p_ = (p); \
                (p) = NULL;              \
                _p_;                     \
        })

/* Moves an fd out of a cleanup variable: returns it and leaves -1. */
#define TAKE_FD(fd)              \
        ({                       \
                int _fd_ = (fd); \
                (fd) = -1;       \
                _fd_;            \
        })

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

/* free(p) and NULL, for "x = mfree(x)". */
static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

/* Closes fd if valid, preserving errno; returns -1 for "fd = safe_close(fd)". */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}
static inline void closep(int *fd) {
        *fd = safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Declares a cleanup function "name##p" that calls f(*p) when *p is non-NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, f)  \
        static inline void f##p(type *p) {    \
                if (*p)                       \
                        f(*p);                \
        }

/* Returns a negative errno from errno, never 0 (guards against a stale errno). */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}
