/* container-log.c: the main process's output, kept on the host.
 *
 * <dir>/main.log is a sequence of records, each a 16-byte header (u64 time
 * in Unix nanoseconds, u8 stream: 1 stdout, 2 stderr, 3 bytes zero, u32
 * length; little endian) followed by that many bytes of output. Records are
 * appended with one writev() on an O_APPEND descriptor, so the two stream
 * readers never interleave inside a record, and a reader can always find the
 * record boundaries again. docs/api.md describes how the logs call renders it. */
#include "container-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/json/json-util.h"

int container_log_open(const Container *c) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/main.log", c->dir) < 0)
                return -ENOMEM;
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        return fd < 0 ? -errno : fd;
}

int container_log_append(int fd, int stream, const void *data, size_t len) {
        if (len > UINT32_MAX)
                return -EFBIG;
        uint64_t ns = realtime_nsec();
        uint8_t hdr[CONTAINER_LOG_HEADER] = {0};
        for (int i = 0; i < 8; i++)
                hdr[i] = (uint8_t) (ns >> (8 * i));
        hdr[8] = (uint8_t) stream;
        for (int i = 0; i < 4; i++)
                hdr[12 + i] = (uint8_t) (len >> (8 * i));
        struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *) data, len}};
        ssize_t n = writev(fd, iov, 2);
        if (n < 0)
                return -errno;
        return (size_t) n == sizeof hdr + len ? 0 : -EIO;
}

/* --- reading --- */

#define LOG_RECORD_MAX (1u << 20) /* longer than any we write: a damaged file */
#define LOG_FOLLOW_POLL_MS 200

typedef struct LogRecord {
        int64_t time_ns;
        int stream;
        uint32_t len;
} LogRecord;

/* Reads the header at the file position: 1, 0 at the end (or a record not
 * yet complete), or a negative errno for a damaged file. */
static int record_read(int fd, LogRecord *rec) {
        uint8_t hdr[CONTAINER_LOG_HEADER];
        ssize_t n = read(fd, hdr, sizeof hdr);
        if (n < 0)
                return -errno;
        if ((size_t) n < sizeof hdr) {
                if (n > 0)
                        (void) lseek(fd, -n, SEEK_CUR);
                return 0;
        }
        uint64_t t = 0;
        for (int i = 7; i >= 0; i--)
                t = (t << 8) | hdr[i];
        rec->time_ns = (int64_t) t;
        rec->stream = hdr[8];
        rec->len = (uint32_t) hdr[12] | (uint32_t) hdr[13] << 8 | (uint32_t) hdr[14] << 16 | (uint32_t) hdr[15] << 24;
        if ((rec->stream != 1 && rec->stream != 2) || rec->len > LOG_RECORD_MAX)
                return -EBADMSG;
        return 1;
}

static bool record_wanted(const LogRecord *rec, const ContainerLogOptions *o) {
        return rec->time_ns >= o->since_ns && !(rec->stream == 1 && o->no_stdout) && !(rec->stream == 2 && o->no_stderr);
}

/* The offset of the first of the last `tail` wanted records. */
static off_t tail_start(int fd, const ContainerLogOptions *o) {
        if (o->tail < 0)
                return 0;
        if (o->tail == 0)
                return lseek(fd, 0, SEEK_END);
        _cleanup_free_ off_t *ring = calloc((size_t) o->tail, sizeof(off_t));
        if (!ring)
                return 0;
        size_t n = 0;
        LogRecord rec;
        for (;;) {
                off_t at = lseek(fd, 0, SEEK_CUR);
                if (record_read(fd, &rec) <= 0)
                        break;
                if (record_wanted(&rec, o))
                        ring[n++ % (size_t) o->tail] = at;
                if (lseek(fd, rec.len, SEEK_CUR) < 0)
                        break;
        }
        return n == 0 ? lseek(fd, 0, SEEK_END) : ring[n < (size_t) o->tail ? 0 : n % (size_t) o->tail];
}

static int record_emit(int out_fd, const LogRecord *rec, const char *data, const ContainerLogOptions *o) {
        if (o->raw)
                return write_all(out_fd, data, rec->len);
        json_t *d = json_stringn(data, rec->len);
        if (!d) { /* not UTF-8: each byte outside ASCII becomes U+FFFD */
                _cleanup_free_ char *clean = malloc((size_t) rec->len * 3 + 1);
                size_t k = 0;
                for (uint32_t i = 0; clean && i < rec->len; i++)
                        if ((unsigned char) data[i] < 0x80 && data[i])
                                clean[k++] = data[i];
                        else
                                k += (size_t) sprintf(clean + k, "\xef\xbf\xbd");
                d = clean ? json_stringn(clean, k) : NULL;
        }
        time_t s = (time_t) (rec->time_ns / 1000000000);
        struct tm tm;
        char when[64];
        gmtime_r(&s, &tm);
        size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(when + n, sizeof when - n, ".%09lldZ", (long long) (rec->time_ns % 1000000000));
        _cleanup_json_ json_t *j = json_pack("{s:s, s:s, s:o*}", "time", when, "stream",
                                             rec->stream == 1 ? "stdout" : "stderr", "data", d);
        _cleanup_free_ char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (!line)
                return -ENOMEM;
        size_t len = strlen(line);
        line[len] = '\n'; /* json_dumps leaves room: its NUL */
        return write_all(out_fd, line, len + 1);
}

static bool still_running(ContainerHost *h, Container *c) {
        pthread_mutex_lock(&h->lock);
        bool on = !c->removed && (c->state == CONTAINER_STARTING || c->state == CONTAINER_RUNNING ||
                                  c->state == CONTAINER_PAUSED || c->state == CONTAINER_STOPPING);
        pthread_mutex_unlock(&h->lock);
        return on;
}

int container_host_logs(ContainerHost *h, const char *ref, const ContainerLogOptions *o, int out_fd, Error **err) {
        Container *c = NULL;
        int r = container_find(h, ref, &c, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *path = NULL, *buf = malloc(LOG_RECORD_MAX);
        if (!buf || asprintf(&path, "%s/main.log", c->dir) < 0) {
                container_unref(c);
                return error_oom(err);
        }
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno != ENOENT) {
                container_unref(c);
                return error_set_errno(err, errno, "open %s", path);
        }
        if (fd >= 0)
                (void) lseek(fd, tail_start(fd, o), SEEK_SET);
        for (;;) {
                LogRecord rec;
                r = fd >= 0 ? record_read(fd, &rec) : 0;
                if (r > 0 && read_exact(fd, buf, rec.len) < 0)
                        r = 0; /* the record's data is not all there yet */
                if (r > 0) {
                        if (record_wanted(&rec, o) && record_emit(out_fd, &rec, buf, o) < 0)
                                break; /* the reader went away */
                        continue;
                }
                if (r < 0) {
                        r = error_set(err, EBADMSG, "%s: damaged log record", path);
                        break;
                }
                bool running = still_running(h, c);
                if (!o->follow || !running) {
                        /* once stopped, one more look picks up the last records */
                        if (o->follow && fd >= 0 && record_read(fd, &rec) > 0) {
                                (void) lseek(fd, -CONTAINER_LOG_HEADER, SEEK_CUR);
                                continue;
                        }
                        break;
                }
                if (fd_peer_gone(out_fd))
                        break;
                usleep(LOG_FOLLOW_POLL_MS * 1000);
                if (fd < 0)
                        fd = open(path, O_RDONLY | O_CLOEXEC);
        }
        container_unref(c);
        return r < 0 ? r : 0;
}
