/* container-log.c: the main process's output, kept on the host.
 *
 * <dir>/main.log is a sequence of records, each a 16-byte header (u64 time
 * in Unix nanoseconds, u8 stream: 1 stdout, 2 stderr, 3 bytes zero, u32
 * length; little endian) followed by that many bytes of output. Records are
 * appended with one writev() on an O_APPEND descriptor, so the two stream
 * readers never interleave inside a record, and a reader can always find the
 * record boundaries again. docs/api.md describes how the logs call renders it.
 *
 * Rotation: before a record would take main.log past the host's limit
 * (log-max-size), the writer renames main.log.(n-1) to main.log.n ... and
 * main.log to main.log.1 (the oldest, main.log.<log-max-files>, is replaced
 * and so dropped), then opens a new main.log. A record never spans two
 * files. Writers of one container share one ContainerLog, whose mutex covers
 * the size, the rename and the reopen. A reader takes the files oldest
 * first; one that holds a file that was renamed away reads it to its end
 * (nothing is written to a file after its rename) and moves on to the file
 * that came after it, found again by inode, so following across rotations
 * neither loses nor repeats a record. */
#include "container-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/json/json-util.h"

struct ContainerLog {
        pthread_mutex_t lock;
        int fd;
        char *path;          /* <dir>/main.log */
        uint64_t size;       /* of the open main.log */
        uint64_t max_size;
        unsigned max_files;
};

ContainerLog *container_log_close(ContainerLog *l) {
        if (!l)
                return NULL;
        safe_close(l->fd);
        pthread_mutex_destroy(&l->lock);
        free(l->path);
        free(l);
        return NULL;
}

static int log_reopen(ContainerLog *l) {
        int fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                int r = -errno;
                safe_close(fd);
                return r;
        }
        safe_close(l->fd);
        l->fd = fd;
        l->size = (uint64_t) st.st_size;
        return 0;
}

int container_log_open(ContainerHost *h, const Container *c, ContainerLog **ret) {
        ContainerLog *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        *l = (ContainerLog){.fd = -1, .max_size = h->log_max_size, .max_files = h->log_max_files};
        pthread_mutex_init(&l->lock, NULL);
        int r = asprintf(&l->path, "%s/main.log", c->dir) < 0 ? -ENOMEM : log_reopen(l);
        if (r < 0) {
                l->path = r == -ENOMEM ? NULL : l->path;
                container_log_close(l);
                return r;
        }
        *ret = l;
        return 0;
}

/* Shifts the rotated files up by one and main.log to main.log.1, then opens
 * a new main.log. Caller holds l->lock; max_files >= 1. On failure the old
 * file stays open (as main.log), so output goes on past the limit rather
 * than being lost. */
static int log_rotate(ContainerLog *l) {
        size_t len = strlen(l->path) + 16;
        _cleanup_free_ char *from = malloc(len), *to = malloc(len);
        if (!from || !to)
                return -ENOMEM;
        for (unsigned i = l->max_files - 1; i >= 1; i--) {
                snprintf(from, len, "%s.%u", l->path, i);
                snprintf(to, len, "%s.%u", l->path, i + 1);
                if (rename(from, to) < 0 && errno != ENOENT)
                        return -errno;
        }
        snprintf(to, len, "%s.1", l->path);
        if (rename(l->path, to) < 0)
                return -errno;
        int r = log_reopen(l);
        if (r < 0) /* writing on into a renamed file would break the readers' rule */
                (void) rename(to, l->path);
        return r;
}

int container_log_append(ContainerLog *l, int stream, const void *data, size_t len) {
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
        pthread_mutex_lock(&l->lock);
        if (l->size > 0 && l->size + sizeof hdr + len > l->max_size)
                (void) log_rotate(l);
        ssize_t n = writev(l->fd, iov, 2);
        int r = n < 0 ? -errno : (size_t) n == sizeof hdr + len ? 0 : -EIO;
        if (n > 0)
                l->size += (uint64_t) n;
        pthread_mutex_unlock(&l->lock);
        return r;
}

/* --- reading --- */

#define LOG_RECORD_MAX (1u << 20) /* longer than any we write: a damaged file */
#define LOG_FOLLOW_POLL_MS 200
#define LOG_ROTATION_POLL_MS 10   /* between a rename and the new main.log */
#define LOG_ROTATION_POLLS 100

typedef struct LogRecord {
        int64_t time_ns;
        int stream;
        uint32_t len;
} LogRecord;

/* Reads the record at the file position into rec and buf: 1, 0 at the end
 * (or a record not yet complete: the position stays at its start), or a
 * negative errno for a damaged file. */
static int record_next(int fd, LogRecord *rec, char *buf) {
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
        if (!buf)
                return lseek(fd, rec->len, SEEK_CUR) < 0 ? -errno : 1;
        size_t got = 0;
        while (got < rec->len) {
                n = read(fd, buf + got, rec->len - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        (void) lseek(fd, -(off_t) (got + sizeof hdr), SEEK_CUR);
                        return n < 0 ? -errno : 0;
                }
                got += (size_t) n;
        }
        return 1;
}

static bool record_wanted(const LogRecord *rec, const ContainerLogOptions *o) {
        return rec->time_ns >= o->since_ns && !(rec->stream == 1 && o->no_stdout) && !(rec->stream == 2 && o->no_stderr);
}

/* One of the log's files, open for reading. */
typedef struct LogFile {
        int fd;
        dev_t dev;
        ino_t ino;
} LogFile;

/* Opens main.log, main.log.1 ... main.log.<max> newest first into files (room
 * for max + 1), each file once: a rotation while this runs can show a file
 * under two names. Returns how many. Renames only ever move a file to an
 * older name, so taking the names newest first misses no file that exists
 * throughout. */
static size_t log_files_open(const char *path, unsigned max, LogFile *files) {
        size_t n = 0, len = strlen(path) + 16;
        _cleanup_free_ char *name = malloc(len);
        for (unsigned i = 0; name && i <= max; i++) {
                if (i == 0)
                        snprintf(name, len, "%s", path);
                else
                        snprintf(name, len, "%s.%u", path, i);
                int fd = open(name, O_RDONLY | O_CLOEXEC);
                struct stat st;
                if (fd < 0 || fstat(fd, &st) < 0) {
                        safe_close(fd);
                        continue;
                }
                bool seen = false;
                for (size_t k = 0; k < n && !seen; k++)
                        seen = files[k].dev == st.st_dev && files[k].ino == st.st_ino;
                if (seen)
                        safe_close(fd);
                else
                        files[n++] = (LogFile){fd, st.st_dev, st.st_ino};
        }
        return n;
}

static void log_files_close(LogFile *files, size_t n) {
        for (size_t i = 0; i < n; i++)
                files[i].fd = safe_close(files[i].fd);
}

typedef struct TailMark {
        size_t file;
        off_t at;
} TailMark;

/* Where reading starts over files (newest first): the first of the last
 * o->tail wanted records, else the start of the oldest (tail < 0) or the end
 * of the newest. */
static TailMark tail_start(const LogFile *files, size_t n, const ContainerLogOptions *o) {
        TailMark end = {0, n ? lseek(files[0].fd, 0, SEEK_END) : 0};
        if (o->tail < 0 || n == 0)
                return (TailMark){n ? n - 1 : 0, 0};
        _cleanup_free_ TailMark *ring = o->tail > 0 ? calloc((size_t) o->tail, sizeof(TailMark)) : NULL;
        if (!ring)
                return end;
        size_t count = 0;
        for (size_t f = n; f-- > 0;) {
                LogRecord rec;
                struct stat st;
                off_t size = fstat(files[f].fd, &st) == 0 ? st.st_size : 0;
                (void) lseek(files[f].fd, 0, SEEK_SET);
                for (;;) {
                        off_t at = lseek(files[f].fd, 0, SEEK_CUR);
                        if (record_next(files[f].fd, &rec, NULL) <= 0 || lseek(files[f].fd, 0, SEEK_CUR) > size)
                                break; /* the end, or a record not complete yet */
                        if (record_wanted(&rec, o))
                                ring[count++ % (size_t) o->tail] = (TailMark){f, at};
                }
        }
        return count == 0 ? end : ring[count < (size_t) o->tail ? 0 : count % (size_t) o->tail];
}

/* A reader's place: the file it reads and whether that file is done. */
typedef struct LogCursor {
        const char *path;
        unsigned max_files;
        LogFile file;    /* fd -1 while there is no log */
        bool renamed;    /* seen renamed away after a read: no more records will come */
} LogCursor;

static void cursor_start(LogCursor *cur, LogFile *files, size_t n, const ContainerLogOptions *o) {
        TailMark m = tail_start(files, n, o);
        if (n > 0) {
                cur->file = files[m.file];
                files[m.file].fd = -1;
                (void) lseek(cur->file.fd, m.at, SEEK_SET);
        }
        log_files_close(files, n);
}

/* Whether the cursor's file is still main.log. */
static bool cursor_live(const LogCursor *cur) {
        struct stat st;
        return cur->file.fd >= 0 && stat(cur->path, &st) == 0 && st.st_dev == cur->file.dev &&
               st.st_ino == cur->file.ino;
}

/* Moves to the file after the cursor's (or to the oldest one when the
 * cursor has none, or its file was dropped). 1 when it moved, 0 when there
 * is no newer file (yet). */
static int cursor_advance(LogCursor *cur, LogFile *files) {
        size_t n = log_files_open(cur->path, cur->max_files, files), next = n;
        bool found = false;
        for (size_t k = 0; k < n && !found; k++)
                if (cur->file.fd >= 0 && files[k].dev == cur->file.dev && files[k].ino == cur->file.ino) {
                        found = true;
                        next = k > 0 ? k - 1 : n;
                }
        if (!found && n > 0)
                next = n - 1;
        if (next < n) {
                safe_close(cur->file.fd);
                cur->file = files[next];
                cur->renamed = false;
                files[next].fd = -1;
        }
        log_files_close(files, n);
        return next < n;
}

static int record_emit(int out_fd, const LogRecord *rec, const char *data, const ContainerLogOptions *o) {
        char when[TIME_RFC3339_MAX];
        time_rfc3339_ns(rec->time_ns, when);
        if (o->raw) {
                size_t stamp = o->timestamps ? strlen(when) + 1 : 0, len = stamp + rec->len;
                uint8_t hdr[8] = {rec->stream == 1 ? 1 : 2, 0, 0, 0, (uint8_t) (len >> 24), (uint8_t) (len >> 16),
                                  (uint8_t) (len >> 8), (uint8_t) len};
                int r = o->framed ? write_all(out_fd, hdr, sizeof hdr) : 0;
                if (r >= 0 && stamp) {
                        when[stamp - 1] = ' ';
                        r = write_all(out_fd, when, stamp);
                }
                return r < 0 ? r : write_all(out_fd, data, rec->len);
        }
        _cleanup_json_ json_t *j = json_pack("{s:s, s:s, s:o*}", "time", when, "stream",
                                             rec->stream == 1 ? "stdout" : "stderr", "data",
                                             json_bytes(data, rec->len));
        return j ? json_write_line(out_fd, j) : -ENOMEM;
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
        _cleanup_free_ LogFile *files = calloc(h->log_max_files + 1, sizeof(LogFile));
        if (!buf || !files || asprintf(&path, "%s/main.log", c->dir) < 0) {
                container_unref(c);
                return error_oom(err);
        }
        LogCursor cur = {.path = path, .max_files = h->log_max_files, .file = {.fd = -1}};
        cursor_start(&cur, files, log_files_open(path, h->log_max_files, files), o);
        bool following = o->follow;
        unsigned rotation_polls = 0;
        for (;;) {
                LogRecord rec;
                r = cur.file.fd >= 0 ? record_next(cur.file.fd, &rec, buf) : 0;
                if (r > 0) {
                        rotation_polls = 0;
                        if (record_wanted(&rec, o) && record_emit(out_fd, &rec, buf, o) < 0)
                                break; /* the reader went away */
                        continue;
                }
                if (r < 0) {
                        r = error_set(err, EBADMSG, "%s: damaged log record", path);
                        break;
                }
                bool live = cursor_live(&cur);
                if (!live && cur.file.fd >= 0 && !cur.renamed) {
                        /* Renamed since the last read: what was written
                         * before the rename is read first. */
                        cur.renamed = true;
                        continue;
                }
                if (!live && cursor_advance(&cur, files) > 0) {
                        rotation_polls = 0;
                        continue;
                }
                if (!live && cur.file.fd >= 0 && ++rotation_polls < LOG_ROTATION_POLLS) {
                        usleep(LOG_ROTATION_POLL_MS * 1000); /* the new main.log comes right after the rename */
                        continue;
                }
                if (!following)
                        break;
                if (!still_running(h, c)) {
                        following = false; /* once stopped, one more pass picks up the last records */
                        continue;
                }
                if (fd_peer_gone(out_fd))
                        break;
                usleep(LOG_FOLLOW_POLL_MS * 1000);
        }
        safe_close(cur.file.fd);
        container_unref(c);
        return r < 0 ? r : 0;
}
