/* io-util.h: file descriptor and clock helpers (libc only). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define USEC_PER_SEC 1000000ull
#define USEC_PER_MSEC 1000ull
#define USEC_INFINITY UINT64_MAX

/* CLOCK_MONOTONIC and CLOCK_REALTIME in microseconds / nanoseconds. */
uint64_t now_usec(void);
uint64_t realtime_nsec(void);

struct timespec;
/* The CLOCK_REALTIME time usec microseconds from now, for
 * pthread_cond_timedwait() on a condition variable with the default clock. */
void realtime_after_usec(uint64_t usec, struct timespec *ret);

/* Deadline helpers: a deadline is an absolute now_usec() value; USEC_INFINITY
 * means none. deadline_after_ms(<0) gives USEC_INFINITY. */
uint64_t deadline_after_ms(int timeout_ms);
/* Milliseconds left for poll(): -1 for no deadline, 0 when expired. */
int deadline_poll_ms(uint64_t deadline);

int fd_set_nonblock(int fd, bool nonblock);
int fd_set_cloexec(int fd, bool cloexec);

/* True when the other end of a pipe or socket we write to is gone (poll
 * reports POLLERR or POLLHUP), without writing anything. */
bool fd_peer_gone(int fd);

/* Writes all of buf, polling a non-blocking fd as needed until deadline.
 * Returns 0, -ETIMEDOUT, -EPIPE or another negative errno. */
int write_all_deadline(int fd, const void *buf, size_t len, uint64_t deadline);

/* Reads exactly len bytes (blocking fd). Returns 0, -EPIPE on early EOF, or a
 * negative errno. */
int read_exact(int fd, void *buf, size_t len);

/* Writes all of buf to a blocking fd, retrying on EINTR. */
int write_all(int fd, const void *buf, size_t len);

/* Reads fd to its end into a malloc'd buffer, NUL-terminated (the NUL is not
 * counted in *ret_len). Returns 0, -EFBIG when there is more than max bytes,
 * -ENOMEM, or the read's negative errno. */
int read_fd_bounded(int fd, size_t max, char **ret, size_t *ret_len);

/* Opens path, which must be a regular file (-EINVAL otherwise), and reads it
 * as read_fd_bounded() does. */
int read_file_bounded(const char *path, size_t max, char **ret, size_t *ret_len);

/* Fills buf with random bytes from getrandom(), falling back to the clock
 * (only for nonces, never for secrets). */
void random_bytes(void *buf, size_t len);

/* n_hex random lowercase hex digits and a NUL into out (n_hex <= 128):
 * ids and names, not secrets (see random_bytes). */
void random_hex(char *out, size_t n_hex);

/* Unix nanoseconds as RFC 3339 in UTC with nanoseconds
 * ("2026-12-03T07:52:29.095868385Z") into out; "" for ns <= 0. */
#define TIME_RFC3339_MAX 40
void time_rfc3339_ns(int64_t ns, char out[TIME_RFC3339_MAX]);
