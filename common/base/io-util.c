/* io-util.c: fd and clock helpers (see io-util.h). */
#include "common/base/io-util.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/base/macro.h"

uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000u;
}

uint64_t realtime_nsec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

void realtime_after_usec(uint64_t usec, struct timespec *ret) {
        clock_gettime(CLOCK_REALTIME, ret);
        uint64_t ns = (uint64_t) ret->tv_nsec + usec * 1000u;
        ret->tv_sec += (time_t) (ns / 1000000000u);
        ret->tv_nsec = (long) (ns % 1000000000u);
}

uint64_t deadline_after_ms(int timeout_ms) {
        if (timeout_ms < 0)
                return USEC_INFINITY;
        return now_usec() + (uint64_t) timeout_ms * USEC_PER_MSEC;
}

int deadline_poll_ms(uint64_t deadline) {
        if (deadline == USEC_INFINITY)
                return -1;
        uint64_t now = now_usec();
        if (now >= deadline)
                return 0;
        uint64_t ms = (deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
        return ms > 24u * 3600u * 1000u ? 24 * 3600 * 1000 : (int) ms;
}

int fd_set_nonblock(int fd, bool nonblock) {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return negative_errno();
        int nflags = nonblock ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
        if (nflags != flags && fcntl(fd, F_SETFL, nflags) < 0)
                return negative_errno();
        return 0;
}

int fd_set_cloexec(int fd, bool cloexec) {
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0)
                return negative_errno();
        int nflags = cloexec ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
        if (nflags != flags && fcntl(fd, F_SETFD, nflags) < 0)
                return negative_errno();
        return 0;
}

int write_all_deadline(int fd, const void *buf, size_t len, uint64_t deadline) {
        const uint8_t *p = buf;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n > 0) {
                        p += n;
                        len -= (size_t) n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno != EAGAIN)
                        return negative_errno();
                int ms = deadline_poll_ms(deadline);
                if (ms == 0)
                        return -ETIMEDOUT;
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                int k = poll(&pfd, 1, ms);
                if (k < 0 && errno != EINTR)
                        return negative_errno();
                if (k > 0 && (pfd.revents & (POLLERR | POLLHUP)) && !(pfd.revents & POLLOUT))
                        return -EPIPE;
        }
        return 0;
}

int read_exact(int fd, void *buf, size_t len) {
        uint8_t *p = buf;
        while (len > 0) {
                ssize_t n = read(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        return -EPIPE;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

int write_all(int fd, const void *buf, size_t len) {
        const uint8_t *p = buf;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

int read_fd_bounded(int fd, size_t max, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t cap = 0, len = 0;
        for (;;) {
                if (len == cap) {
                        /* Room for at most max + 1 bytes: one byte past max means too large. */
                        if (cap > max)
                                return -EFBIG;
                        size_t ncap = MIN(MAX(cap * 2, (size_t) 4096), max + 1);
                        char *n = realloc(buf, ncap + 1);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                        cap = ncap;
                }
                ssize_t k = read(fd, buf + len, cap - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        if (len > max)
                return -EFBIG;
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

int read_file_bounded(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        return read_fd_bounded(fd, max, ret, ret_len);
}

void random_bytes(void *buf, size_t len) {
        uint8_t *p = buf;
        while (len > 0) {
                ssize_t n = getrandom(p, len, GRND_NONBLOCK);
                if (n <= 0)
                        break;
                p += n;
                len -= (size_t) n;
        }
        /* Early boot without entropy: a nonce only needs to differ between sessions. */
        for (size_t i = 0; i < len; i++) {
                uint64_t t = now_usec() ^ realtime_nsec() ^ ((uint64_t) getpid() << 32) ^ (i * 0x9E3779B97F4A7C15ull);
                p[i] = (uint8_t) (t >> ((i % 8) * 8));
        }
}

bool fd_peer_gone(int fd) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLERR | POLLHUP));
}

void random_hex(char *out, size_t n_hex) {
        static const char digits[] = "0123456789abcdef";
        unsigned char b[64];
        n_hex = MIN(n_hex, 2 * sizeof b);
        random_bytes(b, (n_hex + 1) / 2);
        for (size_t i = 0; i < n_hex; i++)
                out[i] = digits[(b[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
        out[n_hex] = 0;
}

void time_rfc3339_ns(int64_t ns, char out[TIME_RFC3339_MAX]) {
        out[0] = 0;
        if (ns <= 0)
                return;
        time_t s = (time_t) (ns / 1000000000);
        struct tm tm;
        if (!gmtime_r(&s, &tm))
                return;
        size_t n = strftime(out, TIME_RFC3339_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(out + n, TIME_RFC3339_MAX - n, ".%09lldZ", (long long) (ns % 1000000000));
}
