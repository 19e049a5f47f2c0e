/* store-pull.c: one image pull, from an ImageSource into the store.
 *
 * A pull works in its own directory tmp/pull-<random>/: the manifest, the
 * blobs the store lacks (streamed through the verifying ImageBlobSink below)
 * and the ext4 disk are all made there. Only when everything succeeded are
 * the blobs renamed into blobs/sha256/, the disk into images/<hex>/, and the
 * record written; on any failure the directory is removed and the store is
 * as before. Every layer is measured (entries and uncompressed bytes, see
 * store-measure.c): that sizes the ext4 and is the guard against
 * decompression bombs (caps on the sum over the layers). A layer being
 * downloaded is measured as its bytes arrive, so a bomb stops the download;
 * a layer already stored is measured from the numbers kept next to an image
 * that has it (images/<hex>/layers.measure, written at commit), else by
 * reading it once before the download. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "images/oci/digest.h"
#include "images/ext4/ext4-writer.h"
#include "store-internal.h"

typedef struct BlobState {
        const OciDescriptor *desc;
        int fd;
        Digest *digest;
        uint64_t done;
        bool complete;
        bool measure;           /* a layer: measured as it streams in */
        StoreStreamMeasure *sm; /* started at its first byte */
        StoreLayerMeasure ms;   /* the result, once complete */
} BlobState;

typedef struct Pull {
        Store *s;
        ImageSource *src;
        StorePullOptions o;
        char *dir_name; /* under tmp/ */
        int dir_fd;
        BlobState *blobs;
        size_t n_blobs;
        atomic_int cancelled;
        Error *blob_err; /* why a sink call failed, taken by the pull's error */
        StoreMeasureTotals totals;   /* each distinct layer once */
        const OciManifest *m;        /* while building */
        StoreLayerMeasure *layer_ms; /* parallel to m->layers */
} Pull;

static void pull_blobs_clear(Pull *p) {
        for (size_t i = 0; i < p->n_blobs; i++) {
                store_stream_measure_free(p->blobs[i].sm);
                safe_close(p->blobs[i].fd);
                digest_free(p->blobs[i].digest);
        }
        free(p->blobs);
        p->blobs = NULL;
        p->n_blobs = 0;
}

static void pull_done(Pull *p) {
        pull_blobs_clear(p);
        safe_close(p->dir_fd);
        if (p->dir_name)
                rm_rf_at(p->s->tmp_fd, p->dir_name, NULL);
        free(p->dir_name);
        error_free(p->blob_err);
        free(p->layer_ms);
        store_measure_totals_done(&p->totals);
}

/* ---- the verifying sink ---- */

static int blob_verify(Pull *p, BlobState *b, Error **err) {
        _cleanup_free_ char *got = NULL;
        int r = digest_final_hex(b->digest, &got);
        if (r < 0)
                return error_set(err, -r, "blob %s: digest", b->desc->digest);
        if (strcmp(got, b->desc->digest) != 0) {
                atomic_store(&p->cancelled, 1);
                return error_set(err, EBADMSG, "blob %s: digest mismatch: got %s", b->desc->digest, got);
        }
        b->complete = true;
        if (p->o.progress)
                p->o.progress(b->desc->digest, b->done, b->desc->size, p->o.userdata);
        return 0;
}

static int sink_write(ImageBlobSink *sink, size_t index, const void *data, size_t n, Error **err) {
        Pull *p = sink->userdata;
        if (index >= p->n_blobs)
                return error_set(err, EINVAL, "source wrote to blob %zu of %zu", index, p->n_blobs);
        BlobState *b = &p->blobs[index];
        if (atomic_load(&p->cancelled))
                return error_set(err, ECANCELED, "pull abandoned");
        if (b->complete || n > b->desc->size - b->done) {
                atomic_store(&p->cancelled, 1);
                return error_set(err, EFBIG, "blob %s: more bytes than its size %llu", b->desc->digest,
                                 (unsigned long long) b->desc->size);
        }
        int r = write_all(b->fd, data, n);
        if (r < 0) {
                atomic_store(&p->cancelled, 1);
                return error_set_errno(err, -r, "blob %s: write", b->desc->digest);
        }
        if ((r = digest_update(b->digest, data, n)) < 0)
                return error_set(err, -r, "blob %s: digest", b->desc->digest);
        if (b->measure && !b->sm && (r = store_stream_measure_new(&b->sm, b->desc->digest, &p->totals, err)) < 0)
                return r;
        if (b->sm && (r = store_stream_measure_feed(b->sm, data, n, err)) < 0) {
                atomic_store(&p->cancelled, 1);
                return r;
        }
        b->done += n;
        if (b->done == b->desc->size) {
                if ((r = blob_verify(p, b, err)) < 0)
                        return r;
                if (b->sm && (r = store_stream_measure_finish(b->sm, &b->ms, err)) < 0) {
                        atomic_store(&p->cancelled, 1);
                        return r;
                }
                b->sm = store_stream_measure_free(b->sm);
                return 0;
        }
        if (p->o.progress)
                p->o.progress(b->desc->digest, b->done, b->desc->size, p->o.userdata);
        return 0;
}

static int sink_restart(ImageBlobSink *sink, size_t index, Error **err) {
        Pull *p = sink->userdata;
        if (index >= p->n_blobs)
                return error_set(err, EINVAL, "source restarted blob %zu of %zu", index, p->n_blobs);
        BlobState *b = &p->blobs[index];
        b->sm = store_stream_measure_free(b->sm); /* its counts leave the totals */
        if (b->ms.known) {
                /* Measured to the end before the restart: finish() kept its
                 * counts in the totals, and the retry counts them again. */
                pthread_mutex_lock(&p->totals.lock);
                p->totals.entries -= MIN(p->totals.entries, b->ms.entries);
                p->totals.bytes -= MIN(p->totals.bytes, b->ms.bytes);
                pthread_mutex_unlock(&p->totals.lock);
        }
        b->ms = (StoreLayerMeasure) {};
        b->digest = digest_free(b->digest);
        int r = digest_new(&b->digest);
        if (r < 0 || ftruncate(b->fd, 0) < 0 || lseek(b->fd, 0, SEEK_SET) < 0)
                return error_set(err, r < 0 ? -r : errno, "blob %s: restart", b->desc->digest);
        b->done = 0;
        b->complete = false;
        return 0;
}

static bool blob_present(Store *s, const char *digest) {
        struct stat st;
        return fstatat(s->blobs_fd, digest + 7, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* Fetches descs (unique, absent from blobs/) into the pull directory;
 * layers (p->m's) are measured on the way into p->layer_ms. */
static int pull_fetch(Pull *p, const OciDescriptor *descs, size_t n, bool layers, Error **err) {
        if (n == 0)
                return 0;
        if (!(p->blobs = calloc(n, sizeof *p->blobs)))
                return error_oom(err);
        for (size_t i = 0; i < n; i++)
                p->blobs[i].fd = -1;
        p->n_blobs = n;
        for (size_t i = 0; i < n; i++) {
                BlobState *b = &p->blobs[i];
                b->desc = &descs[i];
                b->measure = layers;
                b->fd = openat(p->dir_fd, descs[i].digest + 7, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (b->fd < 0)
                        return error_set_errno(err, errno, "create blob file for %s", descs[i].digest);
                if (digest_new(&b->digest) < 0)
                        return error_oom(err);
        }
        ImageBlobSink sink = {.write = sink_write, .restart = sink_restart, .userdata = p};
        int r = p->src->ops->fetch_blobs(p->src, descs, n, &sink, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                BlobState *b = &p->blobs[i];
                if (!b->complete && b->done != b->desc->size)
                        return error_set(err, EBADMSG, "blob %s: size mismatch: expected %llu bytes, got %llu",
                                         b->desc->digest, (unsigned long long) b->desc->size,
                                         (unsigned long long) b->done);
                if (!b->complete && (r = blob_verify(p, b, err)) < 0)
                        return r;
                if (fsync(b->fd) < 0)
                        return error_set_errno(err, errno, "fsync blob %s", b->desc->digest);
                for (size_t j = 0; layers && b->ms.known && j < p->m->n_layers; j++)
                        if (strcmp(p->m->layers[j].digest, b->desc->digest) == 0)
                                p->layer_ms[j] = b->ms;
        }
        pull_blobs_clear(p);
        return 0;
}

/* Opens a blob from the pull directory, else from blobs/. */
static int blob_open(Pull *p, const char *digest, Error **err) {
        int fd = openat(p->dir_fd, digest + 7, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno == ENOENT)
                fd = openat(p->s->blobs_fd, digest + 7, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return error_set_errno(err, errno, "open blob %s", digest);
        return fd;
}

/* ---- documents ---- */

static int manifest_get(Pull *p, const OciDescriptor *want, char **ret, size_t *ret_size, char **ret_digest,
                        OciKind *ret_kind, Error **err) {
        _cleanup_free_ void *data = NULL;
        _cleanup_free_ char *mt = NULL;
        size_t size = 0;
        const char *digest = want ? want->digest : p->o.digest;
        int r = p->src->ops->get_manifest(p->src, digest, &data, &size, &mt, err);
        if (r < 0) {
                /* error_prefix() alone would turn r into -EIO when err is NULL. */
                error_prefix(err, "manifest %s", digest ? digest : p->src->ops->describe(p->src));
                return r;
        }
        if (size > p->o.max_manifest)
                return error_set(err, EFBIG, "manifest of %zu bytes is larger than %zu", size, p->o.max_manifest);
        _cleanup_free_ char *got = NULL;
        if (digest_buffer_hex(data, size, &got) < 0)
                return error_oom(err);
        if (want && (strcmp(got, want->digest) != 0 || size != want->size))
                return error_set(err, EBADMSG, "manifest %s: digest mismatch: got %s (%zu bytes, expected %llu)",
                                 want->digest, got, size, (unsigned long long) want->size);
        if (!want && digest && strcmp(got, digest) != 0)
                return error_set(err, EBADMSG, "manifest %s: digest mismatch: got %s", digest, got);
        if ((r = oci_media_type_sniff(data, size, mt, ret_kind, err)) < 0) {
                error_prefix(err, "manifest %s", got);
                return r;
        }
        char *text = malloc(size + 1);
        if (!text)
                return error_oom(err);
        memcpy(text, data, size);
        text[size] = 0;
        *ret = text;
        *ret_size = size;
        *ret_digest = TAKE_PTR(got);
        return 0;
}

/* The image manifest for the wanted platform, its text and digest. */
static int pull_manifest(Pull *p, OciManifest **ret, char **ret_text, size_t *ret_size, char **ret_digest,
                         Error **err) {
        _cleanup_free_ char *text = NULL, *digest = NULL;
        size_t size = 0;
        OciKind kind;
        int r = manifest_get(p, NULL, &text, &size, &digest, &kind, err);
        if (r < 0)
                return r;
        if (kind == OCI_KIND_INDEX) {
                _cleanup_oci_index_ OciIndex *index = NULL;
                const OciDescriptor *d = NULL;
                if ((r = oci_index_parse(text, size, &index, err)) < 0 ||
                    (r = oci_index_select(index, p->o.os, p->o.architecture, p->o.variant, &d, err)) < 0)
                        return r;
                text = mfree(text);
                digest = mfree(digest);
                if ((r = manifest_get(p, d, &text, &size, &digest, &kind, err)) < 0)
                        return r;
                if (kind != OCI_KIND_MANIFEST)
                        return error_set(err, EOPNOTSUPP, "index entry %s is not an image manifest", d->digest);
        }
        _cleanup_oci_manifest_ OciManifest *m = NULL;
        if ((r = oci_manifest_parse(text, size, &m, err)) < 0)
                return r;
        if (m->n_layers > p->o.max_layers)
                return error_set(err, E2BIG, "image has %zu layers, at most %zu allowed", m->n_layers, p->o.max_layers);
        *ret_digest = TAKE_PTR(digest);
        *ret = TAKE_PTR(m);
        *ret_text = TAKE_PTR(text);
        *ret_size = size;
        return 0;
}

static int pull_config(Pull *p, const OciManifest *m, OciConfig **ret, char **ret_created, Error **err) {
        if (m->config.size > OCI_JSON_MAX)
                return error_set(err, EFBIG, "config %s: %llu bytes is larger than %u", m->config.digest,
                                 (unsigned long long) m->config.size, OCI_JSON_MAX);
        int r;
        if (!blob_present(p->s, m->config.digest) && (r = pull_fetch(p, &m->config, 1, false, err)) < 0) {
                error_prefix(err, "config");
                return r;
        }
        _cleanup_close_ int fd = blob_open(p, m->config.digest, err);
        if (fd < 0)
                return fd;
        _cleanup_free_ char *data = NULL;
        size_t n = 0;
        if ((r = read_fd_bounded(fd, OCI_JSON_MAX, &data, &n)) < 0)
                return error_set_errno(err, -r, "read config %s", m->config.digest);
        _cleanup_oci_config_ OciConfig *c = NULL;
        if ((r = oci_config_parse(data, n, &c, err)) < 0 || (r = oci_config_check_layers(c, m, err)) < 0) {
                error_prefix(err, "config %s", m->config.digest);
                return r;
        }
        *ret_created = store_config_created(data, n);
        *ret = TAKE_PTR(c);
        return 0;
}

/* ---- sizing (the bomb guard) and the disk ---- */

/* Measures the layers p->layer_ms does not know yet (each distinct one once,
 * adding it to the totals): a repeat copies its twin, else the cache of an
 * image holding it, else one read of the blob. skip (may be NULL) names the
 * layers being downloaded, which measure themselves. */
static int measure_missing(Pull *p, const OciDescriptor *skip, size_t n_skip, Error **err) {
        const OciManifest *m = p->m;
        int r;
        for (size_t i = 0; i < m->n_layers; i++) {
                const char *digest = m->layers[i].digest;
                bool done = p->layer_ms[i].known;
                for (size_t j = 0; j < n_skip && !done; j++)
                        done = strcmp(skip[j].digest, digest) == 0;
                for (size_t j = 0; j < m->n_layers && !done; j++)
                        if (j != i && p->layer_ms[j].known && strcmp(m->layers[j].digest, digest) == 0) {
                                p->layer_ms[i] = p->layer_ms[j];
                                done = true;
                        }
                if (done)
                        continue;
                StoreLayerMeasure ms = {};
                if (store_measure_cache_lookup(p->s, digest, &ms)) {
                        if ((r = store_measure_totals_add(&p->totals, digest, ms.bytes, ms.entries, err)) < 0)
                                return r;
                } else {
                        _cleanup_close_ int fd = blob_open(p, digest, err);
                        if (fd < 0)
                                return fd;
                        if ((r = store_measure_fd(fd, digest, &p->totals, &ms, err)) < 0)
                                return r;
                }
                p->layer_ms[i] = ms;
        }
        return 0;
}

static int pull_disk(Pull *p, const OciManifest *m, uint64_t *ret_size, Error **err) {
        int r;
        if ((r = measure_missing(p, NULL, 0, err)) < 0)
                return r;
        /* The caps once more over every layer as the disk applies them: a
         * layer the manifest repeats counts each time. */
        StoreMeasureTotals sum;
        store_measure_totals_init(&sum, p->o.max_uncompressed, p->o.max_entries);
        for (size_t i = 0; i < m->n_layers && r >= 0; i++)
                r = store_measure_totals_add(&sum, m->layers[i].digest, p->layer_ms[i].bytes,
                                             p->layer_ms[i].entries, err);
        store_measure_totals_done(&sum);
        if (r < 0)
                return r;
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/tmp/%s/disk.ext4", p->s->root, p->dir_name) < 0)
                return error_oom(err);
        _cleanup_ext4_writer_ Ext4Writer *w = NULL;
        if ((r = ext4_writer_new(&w, path, ext4_size_for(sum.bytes, sum.entries), err)) < 0) {
                error_prefix(err, "create disk");
                return r;
        }
        for (size_t i = 0; i < m->n_layers; i++) {
                if (p->o.phase)
                        p->o.phase(STORE_PULL_PHASE_DISK_LAYER, i, m->n_layers, m->layers[i].digest, p->o.userdata);
                _cleanup_close_ int fd = blob_open(p, m->layers[i].digest, err);
                if (fd < 0)
                        return fd;
                if ((r = ext4_writer_apply_layer(w, fd, NULL, err)) < 0) {
                        error_prefix(err, "layer %s", m->layers[i].digest);
                        return r;
                }
        }
        if (p->o.phase)
                p->o.phase(STORE_PULL_PHASE_COMMIT, 0, 1, NULL, p->o.userdata);
        if ((r = ext4_writer_finish(w, err)) < 0) {
                error_prefix(err, "disk");
                return r;
        }
        _cleanup_close_ int fd = openat(p->dir_fd, "disk.ext4", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        /* Read-only for everyone: overlays use it as their backing file. */
        if (fd < 0 || fchmod(fd, 0444) < 0 || fsync(fd) < 0 || fstat(fd, &st) < 0)
                return error_set_errno(err, errno, "sync disk '%s'", path);
        *ret_size = (uint64_t) st.st_size;
        return 0;
}

/* ---- commit ---- */

static int rename_blob(Pull *p, const char *digest, Error **err) {
        if (renameat(p->dir_fd, digest + 7, p->s->blobs_fd, digest + 7) < 0 && errno != ENOENT)
                return error_set_errno(err, errno, "store blob %s", digest);
        return 0;
}

static int pull_commit(Pull *p, StoreImage *img, const OciManifest *m, const char *hex, Error **err) {
        int r;
        if ((r = rename_blob(p, img->manifest_digest, err)) < 0 || (r = rename_blob(p, m->config.digest, err)) < 0)
                return r;
        for (size_t i = 0; i < m->n_layers; i++)
                if ((r = rename_blob(p, m->layers[i].digest, err)) < 0)
                        return r;
        if ((r = store_fsync_dir(p->s->blobs_fd, "blobs", err)) < 0)
                return r;
        if (mkdirat(p->s->images_fd, hex, 0755) < 0 && errno != EEXIST)
                return error_set_errno(err, errno, "create '%s/images/%s'", p->s->root, hex);
        _cleanup_close_ int dir = openat(p->s->images_fd, hex, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir < 0)
                return error_set_errno(err, errno, "open '%s/images/%s'", p->s->root, hex);
        if (renameat(p->dir_fd, "disk.ext4", dir, "disk.ext4") < 0)
                return error_set_errno(err, errno, "store disk of %s", img->id);
        if ((r = store_measure_cache_write(p->s, dir, m, p->layer_ms, err)) < 0 ||
            (r = store_fsync_dir(dir, "image dir", err)) < 0 || (r = store_fsync_dir(p->s->images_fd, "images", err)) < 0)
                return r;
        return store_record_write(p->s, img, err);
}

/* Builds the image whose manifest is m (holding its image lock). */
static int pull_build(Pull *p, OciManifest *m, const char *mtext, size_t msize, char *mdigest, const char *hex,
                      Error **err) {
        int r;
        if ((r = store_tmp_name("pull", &p->dir_name)) < 0)
                return error_oom(err);
        if (mkdirat(p->s->tmp_fd, p->dir_name, 0700) < 0) {
                p->dir_name = mfree(p->dir_name);
                return error_set_errno(err, errno, "create '%s/tmp'", p->s->root);
        }
        if ((p->dir_fd = openat(p->s->tmp_fd, p->dir_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
                return error_set_errno(err, errno, "open '%s/tmp/%s'", p->s->root, p->dir_name);
        _cleanup_close_ int mfd = openat(p->dir_fd, mdigest + 7, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (mfd < 0)
                return error_set_errno(err, errno, "write manifest %s", mdigest);
        if ((r = write_all(mfd, mtext, msize)) < 0 || (fsync(mfd) < 0 && (r = negative_errno()) < 0))
                return error_set_errno(err, -r, "write manifest %s", mdigest);

        _cleanup_store_image_ StoreImage *img = calloc(1, sizeof *img);
        if (!img)
                return error_oom(err);
        if ((r = pull_config(p, m, &img->config, &img->created, err)) < 0)
                return r;

        /* Layers the store lacks, each once (a manifest may repeat one). */
        _cleanup_free_ OciDescriptor *want = calloc(m->n_layers + 1, sizeof *want);
        size_t n_want = 0;
        if (!want)
                return error_oom(err);
        for (size_t i = 0; i < m->n_layers; i++) {
                bool dup = false;
                for (size_t j = 0; j < n_want && !dup; j++)
                        dup = strcmp(want[j].digest, m->layers[i].digest) == 0;
                if (!dup && !blob_present(p->s, m->layers[i].digest))
                        want[n_want++] = m->layers[i];
        }
        /* Stored layers first: the totals the downloads add to start with them. */
        p->m = m;
        if (!(p->layer_ms = calloc(m->n_layers + 1, sizeof *p->layer_ms)))
                return error_oom(err);
        if ((r = measure_missing(p, want, n_want, err)) < 0 || (r = pull_fetch(p, want, n_want, true, err)) < 0)
                return r;
        uint64_t disk_size = 0;
        if ((r = pull_disk(p, m, &disk_size, err)) < 0)
                return r;

        img->id = strdup(m->config.digest);
        img->manifest_digest = strdup(mdigest);
        img->source = strdup(p->src->ops->describe(p->src));
        img->layers.v = calloc(m->n_layers + 1, sizeof *img->layers.v);
        if (!img->id || !img->manifest_digest || !img->source || !img->layers.v)
                return error_oom(err);
        img->content_size = m->config.size;
        for (size_t i = 0; i < m->n_layers; i++) {
                if (!(img->layers.v[i] = strdup(m->layers[i].digest)))
                        return error_oom(err);
                img->layers.n++;
                img->content_size += m->layers[i].size;
        }
        img->disk_size = disk_size;
        img->pulled = (int64_t) time(NULL);
        return pull_commit(p, img, m, hex, err);
}

static int tag_image(Store *s, const char *name, const char *id, Error **err) {
        _cleanup_(store_tags_clear) StoreTags t = {};
        _cleanup_close_ int lock = store_tags_lock_load(s, LOCK_EX, &t, err);
        if (lock < 0)
                return lock;
        return store_tags_point(s, &t, name, id, err);
}

static void options_fill(StorePullOptions *o, const StorePullOptions *in) {
        if (in)
                *o = *in;
        if (!o->os)
                o->os = STORE_DEFAULT_OS;
        if (!o->architecture)
                o->architecture = STORE_DEFAULT_ARCHITECTURE;
        if (!o->max_uncompressed)
                o->max_uncompressed = STORE_DEFAULT_MAX_UNCOMPRESSED;
        if (!o->max_entries)
                o->max_entries = STORE_DEFAULT_MAX_ENTRIES;
        if (!o->max_layers || o->max_layers > OCI_LAYERS_MAX)
                o->max_layers = OCI_LAYERS_MAX;
        if (!o->max_manifest || o->max_manifest > OCI_JSON_MAX)
                o->max_manifest = OCI_JSON_MAX;
}

int store_pull(Store *s, ImageSource *src, const char *tag_name, const StorePullOptions *opts, StoreImage **ret,
               Error **err) {
        _cleanup_free_ char *name = NULL;
        int r;
        if (tag_name && (r = store_tag_name_normalize(tag_name, &name, err)) < 0)
                return r;
        if (opts && opts->digest && (r = digest_parse_check(opts->digest)) < 0)
                return error_set(err, -r, "bad digest '%.80s'", opts->digest);
        /* Declared before the pull state, so it is released after it: the
         * pull's tmp/ directory is removed (and its measuring threads
         * joined) while gc is still kept out. */
        _cleanup_close_ int slock = store_lock(s, "store", LOCK_SH, err);
        if (slock < 0)
                return slock;
        _cleanup_(pull_done) Pull p = {.s = s, .src = src, .dir_fd = -1};
        options_fill(&p.o, opts);
        store_measure_totals_init(&p.totals, p.o.max_uncompressed, p.o.max_entries);

        _cleanup_oci_manifest_ OciManifest *m = NULL;
        _cleanup_free_ char *mtext = NULL, *mdigest = NULL;
        size_t msize = 0;
        if ((r = pull_manifest(&p, &m, &mtext, &msize, &mdigest, err)) < 0)
                return r;
        const char *hex = m->config.digest + 7;
        {
                /* A concurrent pull of the same image builds it; we wait for it. */
                _cleanup_close_ int ilock = store_lock_image(s, hex, LOCK_EX, err);
                if (ilock < 0)
                        return ilock;
                if (!store_record_exists(s, hex) && (r = pull_build(&p, m, mtext, msize, mdigest, hex, err)) < 0) {
                        store_lock_image_unlink(s, hex); /* no image, no lock file */
                        return r;
                }
                if (name && (r = tag_image(s, name, m->config.digest, err)) < 0)
                        return r;
        }
        if (ret)
                return store_inspect(s, m->config.digest, ret, err);
        return 0;
}
