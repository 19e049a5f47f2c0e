/* bench-http.c: a small HTTP/1.1 load client for a Unix socket (wrk and ab
 * speak only TCP). N threads, each one keep-alive connection, send the same
 * GET for a fixed time; every response is read by its Content-Length. When
 * the server closes a connection (after "Connection: close", or silently
 * between requests, when the request is sent again) the thread reconnects
 * and counts which it was, so the report says how keep-alive behaved. Prints requests/s and latency percentiles over all
 * threads; a response that is not 200, or whose body length differs from
 * the first one's, is counted as an error.
 * Usage: bench-http SOCKET PATH [threads] [seconds] */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/base/io-util.h"

#define HEAD_MAX 8192
#define BODY_MAX (16u << 20)
#define SAMPLES_MAX (1u << 22) /* per thread: enough for 4 M requests */

typedef struct Worker {
        pthread_t thread;
        const char *sock;
        const char *request;
        size_t request_len;
        uint64_t deadline;
        uint32_t *lat_us; /* one sample per request */
        size_t n;
        uint64_t connects, closes_announced, closes_silent, errors, body_len;
        char fail[256];
} Worker;

static int unix_connect(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* A buffered reader over one connection: the head may arrive together with
 * (part of) the body, and pipelining is never used, so leftovers after a
 * response mean a broken server. */
typedef struct Conn {
        int fd;
        char buf[HEAD_MAX];
        size_t len;
} Conn;

/* Reads one response; returns its status (>0), 0 when the server closed the
 * connection before sending anything, or a negative errno. *ret_close says
 * whether the server announced "Connection: close". */
static int response_read(Conn *c, char *body, size_t *ret_body_len, bool *ret_close) {
        char *end = NULL;
        while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
                if (c->len == sizeof c->buf)
                        return -E2BIG;
                ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return c->len == 0 && (n == 0 || errno == ECONNRESET) ? 0 : (n == 0 ? -EPROTO : -errno);
                c->len += (size_t) n;
        }
        *end = 0;
        int status = 0;
        if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1)
                return -EPROTO;
        long long clen = -1;
        *ret_close = false;
        for (char *line = strstr(c->buf, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
                if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
                        clen = strtoll(line + 17, NULL, 10);
                else if (strncasecmp(line + 2, "Connection:", 11) == 0 && strcasestr(line + 13, "close"))
                        *ret_close = true;
        }
        if (clen < 0 || (unsigned long long) clen > BODY_MAX)
                return -EPROTO; /* chunked answers are not expected from either server */
        size_t head = (size_t) (end + 4 - c->buf), have = c->len - head;
        if (have > (size_t) clen)
                return -EPROTO;
        memcpy(body, c->buf + head, have);
        if (read_exact(c->fd, body + have, (size_t) clen - have) < 0)
                return -EPROTO;
        c->len = 0;
        *ret_body_len = (size_t) clen;
        return status;
}

static void *worker_run(void *arg) {
        Worker *w = arg;
        char *body = malloc(BODY_MAX);
        Conn *c = calloc(1, sizeof *c);
        if (!body || !c) {
                snprintf(w->fail, sizeof w->fail, "out of memory");
                goto out;
        }
        c->fd = -1;
        while (now_usec() < w->deadline && w->n < SAMPLES_MAX) {
                if (c->fd < 0) {
                        if ((c->fd = unix_connect(w->sock)) < 0) {
                                snprintf(w->fail, sizeof w->fail, "connect: %s", strerror(-c->fd));
                                break;
                        }
                        c->len = 0;
                        w->connects++;
                }
                uint64_t t0 = now_usec();
                size_t blen = 0;
                bool close_after = false;
                int st = write_all(c->fd, w->request, w->request_len) < 0 ? 0
                                                                             : response_read(c, body, &blen, &close_after);
                if (st == 0) { /* closed between requests without a word: retried */
                        close(c->fd);
                        c->fd = -1;
                        w->closes_silent++;
                        continue;
                }
                if (st < 0) {
                        snprintf(w->fail, sizeof w->fail, "response: %s", strerror(-st));
                        break;
                }
                w->lat_us[w->n++] = (uint32_t) (now_usec() - t0);
                if (w->body_len == 0)
                        w->body_len = blen;
                if (st != 200 || blen != w->body_len)
                        w->errors++;
                if (close_after) {
                        close(c->fd);
                        c->fd = -1;
                        w->closes_announced++;
                }
        }
out:
        if (c && c->fd >= 0)
                close(c->fd);
        free(c);
        free(body);
        return NULL;
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

static double pct(const uint32_t *v, size_t n, double p) {
        size_t i = (size_t) (p / 100.0 * (double) (n - 1) + 0.5);
        return v[i] / 1000.0;
}

/* One line: requests/s, latency percentiles in ms, connections and closes. */
static int report(Worker *w, int threads, double secs) {
        size_t total = 0;
        uint64_t connects = 0, announced = 0, silent = 0, errors = 0;
        for (int i = 0; i < threads; i++) {
                if (w[i].fail[0]) {
                        fprintf(stderr, "bench-http: thread %d: %s\n", i, w[i].fail);
                        return 1;
                }
                total += w[i].n;
                connects += w[i].connects;
                announced += w[i].closes_announced;
                silent += w[i].closes_silent;
                errors += w[i].errors;
        }
        if (total == 0) {
                fprintf(stderr, "bench-http: no response\n");
                return 1;
        }
        uint32_t *all = malloc(total * sizeof *all);
        if (!all)
                return 1;
        size_t k = 0;
        for (int i = 0; i < threads; i++) {
                memcpy(all + k, w[i].lat_us, w[i].n * sizeof *all);
                k += w[i].n;
        }
        qsort(all, total, sizeof *all, cmp_u32);
        printf("rps %.0f requests %zu threads %d seconds %.1f body %llu p50_ms %.3f p90_ms %.3f p99_ms %.3f "
               "max_ms %.3f connects %llu closes_announced %llu closes_silent %llu errors %llu\n",
               (double) total / secs, total, threads, secs, (unsigned long long) w[0].body_len, pct(all, total, 50),
               pct(all, total, 90), pct(all, total, 99), all[total - 1] / 1000.0, (unsigned long long) connects,
               (unsigned long long) announced, (unsigned long long) silent, (unsigned long long) errors);
        free(all);
        return errors ? 1 : 0;
}

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: bench-http SOCKET PATH [threads] [seconds]\n");
                return 2;
        }
        int threads = argc > 3 ? atoi(argv[3]) : 1;
        double secs = argc > 4 ? atof(argv[4]) : 5;
        if (threads < 1 || threads > 256 || secs <= 0 || secs > 3600) {
                fprintf(stderr, "bench-http: threads 1..256, seconds 0..3600\n");
                return 2;
        }
        char request[4096];
        int len = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: bench\r\nAccept: */*\r\n\r\n", argv[2]);
        if (len < 0 || (size_t) len >= sizeof request)
                return 2;
        signal(SIGPIPE, SIG_IGN); /* a server that closes while we write: reconnect */
        Worker *w = calloc((size_t) threads, sizeof *w);
        if (!w)
                return 1;
        uint64_t start = now_usec(), deadline = start + (uint64_t) (secs * 1e6);
        for (int i = 0; i < threads; i++) {
                w[i] = (Worker){.sock = argv[1], .request = request, .request_len = (size_t) len, .deadline = deadline};
                if (!(w[i].lat_us = malloc(SAMPLES_MAX * sizeof *w[i].lat_us)) ||
                    pthread_create(&w[i].thread, NULL, worker_run, &w[i]) != 0) {
                        fprintf(stderr, "bench-http: thread %d: cannot start\n", i);
                        return 1;
                }
        }
        for (int i = 0; i < threads; i++)
                pthread_join(w[i].thread, NULL);
        double elapsed = (double) (now_usec() - start) / 1e6;
        int r = report(w, threads, elapsed);
        for (int i = 0; i < threads; i++)
                free(w[i].lat_us);
        free(w);
        return r;
}
