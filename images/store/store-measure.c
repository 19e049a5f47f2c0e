/* store-measure.c: how big a pull's layers are once unpacked.
 *
 * Every layer of a pull is measured (tar entries and uncompressed bytes) for
 * two reasons: the numbers size the ext4 disk, and caps on both are the
 * guard against decompression bombs. A layer the pull downloads is measured
 * while its bytes arrive: the blob sink feeds a StoreStreamMeasure, which
 * copies the bytes into a bounded ring read by its own thread running a
 * libarchive reader, so the layer is inflated once for measuring while the
 * download goes on (and once more for the ext4, as before). A layer already
 * in blobs/ is measured from the numbers an earlier pull left next to its
 * image (images/<hex>/layers.measure), else by reading the blob once.
 *
 * The caps apply to the sum over the pull's layers: every measurer adds to
 * one StoreMeasureTotals under its lock, and the first entry that crosses a
 * cap fails with -EFBIG, which the sink hands to the source at once so the
 * download stops. Layers are read as images/ext4/layer-tar.h defines them, the
 * same reader set-up the ext4 writer uses. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "images/oci/digest.h"
#include "images/ext4/layer-tar.h"
#include "store-internal.h"

/* Per layer being downloaded. 1 MiB measured best (bench-pull.sh): with
 * 256 KiB the source's one download thread waited on full rings. */
#define RING_SIZE (1u << 20)
#define READ_CHUNK (64u << 10)
#define CACHE_NAME "layers.measure"
#define CACHE_MAX (OCI_LAYERS_MAX * 128)
_Static_assert(DIGEST_STRING_LEN == 71, "the %71s below");

void store_measure_totals_init(StoreMeasureTotals *t, uint64_t max_bytes, uint64_t max_entries) {
        *t = (StoreMeasureTotals) {.max_bytes = max_bytes, .max_entries = max_entries};
        pthread_mutex_init(&t->lock, NULL);
}

void store_measure_totals_done(StoreMeasureTotals *t) {
        pthread_mutex_destroy(&t->lock);
}

int store_measure_totals_add(StoreMeasureTotals *t, const char *digest, uint64_t bytes, uint64_t entries,
                             Error **err) {
        int r = 0;
        pthread_mutex_lock(&t->lock);
        if (entries > t->max_entries - MIN(t->entries, t->max_entries))
                r = error_set(err, EFBIG, "layer %s expands past %llu entries", digest,
                              (unsigned long long) t->max_entries);
        else if (bytes > t->max_bytes - MIN(t->bytes, t->max_bytes))
                r = error_set(err, EFBIG, "layer %s expands past %llu bytes", digest,
                              (unsigned long long) t->max_bytes);
        else {
                t->entries += entries;
                t->bytes += bytes;
        }
        pthread_mutex_unlock(&t->lock);
        return r;
}

static void totals_sub(StoreMeasureTotals *t, const StoreLayerMeasure *m) {
        pthread_mutex_lock(&t->lock);
        t->entries -= MIN(t->entries, m->entries);
        t->bytes -= MIN(t->bytes, m->bytes);
        pthread_mutex_unlock(&t->lock);
}

/* Counts the entries of an opened archive into *m and t (each entry against
 * the caps as it is seen). */
static int measure_archive(struct archive *a, const char *digest, StoreMeasureTotals *t, StoreLayerMeasure *m,
                           Error **err) {
        for (;;) {
                struct archive_entry *e;
                int ar = archive_read_next_header(a, &e);
                if (ar == ARCHIVE_EOF)
                        return 0;
                if (ar < ARCHIVE_WARN)
                        return error_set(err, archive_errno(a) == ECANCELED ? ECANCELED : EBADMSG, "layer %s: %s",
                                         digest, archive_error_string(a));
                uint64_t size = archive_entry_size_is_set(e) && archive_entry_size(e) > 0 ? (uint64_t) archive_entry_size(e) : 0;
                uint64_t stream = (uint64_t) archive_filter_bytes(a, 0);
                if (stream > t->max_bytes)
                        return error_set(err, EFBIG, "layer %s expands past %llu bytes", digest,
                                         (unsigned long long) t->max_bytes);
                int r = store_measure_totals_add(t, digest, size, 1, err);
                if (r < 0)
                        return r;
                m->entries++;
                m->bytes += size;
        }
}

int store_measure_fd(int fd, const char *digest, StoreMeasureTotals *t, StoreLayerMeasure *ret, Error **err) {
        _cleanup_archive_read_ struct archive *a = NULL;
        StoreLayerMeasure m = {};
        int r = layer_tar_reader_new(&a);
        if (r < 0)
                return error_set(err, r, "layer %s: cannot read layers", digest);
        if (archive_read_open_fd(a, fd, READ_CHUNK) != ARCHIVE_OK)
                r = error_set(err, EBADMSG, "layer %s: %s", digest, archive_error_string(a));
        else
                r = measure_archive(a, digest, t, &m, err);
        if (r < 0) {
                totals_sub(t, &m);
                return r;
        }
        m.known = true;
        *ret = m;
        return 0;
}

/* ---- measuring a stream ---- */

struct StoreStreamMeasure {
        char *digest;
        StoreMeasureTotals *t;
        pthread_t thread;
        bool running;  /* thread started and not joined */
        pthread_mutex_t lock;
        pthread_cond_t cond; /* any change of the fields below */
        char *ring;
        size_t head, len; /* unread bytes: ring[head..head+len) modulo RING_SIZE */
        bool eof;         /* the writer is done */
        bool abort;       /* the owner gives up: stop reading */
        bool finished;    /* the thread's result is set */
        int result;
        Error *err;
        StoreLayerMeasure m; /* the thread's counts; read after the join */
        char chunk[READ_CHUNK];
};

static la_ssize_t stream_read(struct archive *a, void *userdata, const void **buf) {
        StoreStreamMeasure *s = userdata;
        pthread_mutex_lock(&s->lock);
        while (s->len == 0 && !s->eof && !s->abort)
                pthread_cond_wait(&s->cond, &s->lock);
        if (s->abort) {
                pthread_mutex_unlock(&s->lock);
                archive_set_error(a, ECANCELED, "measuring abandoned");
                return -1;
        }
        size_t k = MIN(MIN(s->len, sizeof s->chunk), RING_SIZE - s->head);
        memcpy(s->chunk, s->ring + s->head, k);
        s->head = (s->head + k) % RING_SIZE;
        s->len -= k;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        *buf = s->chunk;
        return (la_ssize_t) k;
}

static void *stream_thread(void *arg) {
        StoreStreamMeasure *s = arg;
        Error *err = NULL;
        _cleanup_archive_read_ struct archive *a = NULL;
        int r = layer_tar_reader_new(&a);
        if (r < 0)
                r = error_set(&err, r, "layer %s: cannot read layers", s->digest);
        else if (archive_read_open(a, s, NULL, stream_read, NULL) != ARCHIVE_OK)
                r = error_set(&err, archive_errno(a) == ECANCELED ? ECANCELED : EBADMSG, "layer %s: %s", s->digest,
                              archive_error_string(a));
        else
                r = measure_archive(a, s->digest, s->t, &s->m, &err);
        pthread_mutex_lock(&s->lock);
        s->result = r;
        s->err = err;
        s->finished = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

int store_stream_measure_new(StoreStreamMeasure **ret, const char *digest, StoreMeasureTotals *t, Error **err) {
        StoreStreamMeasure *s = calloc(1, sizeof *s);
        if (!s)
                return error_oom(err);
        s->t = t;
        if (!(s->digest = strdup(digest)) || !(s->ring = malloc(RING_SIZE))) {
                free(s->digest);
                free(s);
                return error_oom(err);
        }
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        int r = pthread_create(&s->thread, NULL, stream_thread, s);
        if (r != 0) {
                store_stream_measure_free(s);
                return error_set_errno(err, r, "start measuring layer %s", digest);
        }
        s->running = true;
        *ret = s;
        return 0;
}

int store_stream_measure_feed(StoreStreamMeasure *s, const void *data, size_t n, Error **err) {
        const char *p = data;
        int r = 0;
        pthread_mutex_lock(&s->lock);
        while (n > 0) {
                while (s->len == RING_SIZE && !s->finished)
                        pthread_cond_wait(&s->cond, &s->lock);
                if (s->finished) {
                        /* A cap is reported now, to stop the download; a
                         * bad archive waits for the digest check. The rest
                         * of the bytes are not needed. */
                        if (s->result == -EFBIG)
                                r = error_set(err, EFBIG, "%s", error_text(s->err));
                        break;
                }
                size_t tail = (s->head + s->len) % RING_SIZE;
                size_t k = MIN(MIN(n, RING_SIZE - s->len), RING_SIZE - tail);
                memcpy(s->ring + tail, p, k);
                s->len += k;
                p += k;
                n -= k;
                pthread_cond_broadcast(&s->cond);
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

int store_stream_measure_finish(StoreStreamMeasure *s, StoreLayerMeasure *ret, Error **err) {
        pthread_mutex_lock(&s->lock);
        s->eof = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
        s->running = false;
        if (s->result < 0)
                return error_set(err, -s->result, "%s", error_text(s->err));
        s->m.known = true;
        *ret = s->m;
        return 0;
}

StoreStreamMeasure *store_stream_measure_free(StoreStreamMeasure *s) {
        if (!s)
                return NULL;
        if (s->running) {
                pthread_mutex_lock(&s->lock);
                s->abort = true;
                pthread_cond_broadcast(&s->cond);
                pthread_mutex_unlock(&s->lock);
                pthread_join(s->thread, NULL);
                /* Not finished by its owner: what it counted leaves the totals. */
                totals_sub(s->t, &s->m);
        }
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        error_free(s->err);
        free(s->ring);
        free(s->digest);
        free(s);
        return NULL;
}

/* ---- the cache next to each image ---- */

int store_measure_cache_write(Store *s, int image_dir_fd, const OciManifest *m, const StoreLayerMeasure *ms,
                              Error **err) {
        size_t cap = m->n_layers * 128 + 1, len = 0;
        _cleanup_free_ char *text = malloc(cap);
        if (!text)
                return error_oom(err);
        text[0] = 0;
        for (size_t i = 0; i < m->n_layers; i++) {
                if (!ms[i].known)
                        continue;
                int k = snprintf(text + len, cap - len, "%s %" PRIu64 " %" PRIu64 "\n", m->layers[i].digest,
                                 ms[i].entries, ms[i].bytes);
                if (k < 0 || (size_t) k >= cap - len)
                        return error_set(err, E2BIG, "layer sizes too long");
                len += (size_t) k;
        }
        return store_write_atomic(s, image_dir_fd, CACHE_NAME, text, len, err);
}

/* Looks digest up in one image's cache file; true when found. */
static bool cache_lookup_one(int images_fd, const char *hex, const char *digest, StoreLayerMeasure *ret) {
        char path[STORE_HEX_LEN + sizeof "/" CACHE_NAME];
        snprintf(path, sizeof path, "%s/%s", hex, CACHE_NAME);
        _cleanup_close_ int fd = openat(images_fd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return false;
        _cleanup_free_ char *text = NULL;
        size_t n = 0;
        if (read_fd_bounded(fd, CACHE_MAX, &text, &n) < 0)
                return false;
        for (char *line = text, *nl; line < text + n && (nl = memchr(line, '\n', (size_t) (text + n - line)));
             line = nl + 1) {
                *nl = 0;
                char d[DIGEST_STRING_LEN + 1];
                uint64_t entries, bytes;
                int used = 0;
                if (sscanf(line, "%71s %" SCNu64 " %" SCNu64 "%n", d, &entries, &bytes, &used) != 3 ||
                    line[used] != 0)
                        return false; /* not ours: do not trust any of it */
                if (strcmp(d, digest) == 0) {
                        *ret = (StoreLayerMeasure) {.entries = entries, .bytes = bytes, .known = true};
                        return true;
                }
        }
        return false;
}

bool store_measure_cache_lookup(Store *s, const char *digest, StoreLayerMeasure *ret) {
        _cleanup_closedir_ DIR *d = store_dir_at(s->images_fd, ".");
        if (!d)
                return false;
        for (struct dirent *de; (de = readdir(d));)
                if (store_id_hex(de->d_name, NULL) && strlen(de->d_name) == STORE_HEX_LEN &&
                    store_record_exists(s, de->d_name) && cache_lookup_one(s->images_fd, de->d_name, digest, ret))
                        return true;
        return false;
}
