/* store-pull.c: one image pull, from an ImageSource into the store.
 *
 * A pull works in its own directory tmp/pull-<random>/: the manifest, the
 * blobs the store lacks (streamed through the verifying ImageBlobSink below)
 * and the ext4 disk are all made there. Only when everything succeeded are
 * the blobs renamed into blobs/sha256/, the disk into images/<hex>/, and the
 * record written; on any failure the directory is removed and the store is
 * as before. Before the disk is built, every layer is read once with
 * libarchive to count entries and uncompressed bytes: that sizes the ext4
 * and is the guard against decompression bombs (a cap on both). */
#include <archive.h>
#include <archive_entry.h>
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

#include "common/io-util.h"
#include "images/digest.h"
#include "images/ext4-writer.h"
#include "images/store-private.h"

typedef struct BlobState {
        const OciDescriptor *desc;
        int fd;
        Digest *digest;
        uint64_t done;
        bool complete;
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
} Pull;

static void pull_blobs_clear(Pull *p) {
        for (size_t i = 0; i < p->n_blobs; i++) {
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
                store_rm_rf_at(p->s->tmp_fd, p->dir_name, NULL);
        free(p->dir_name);
        error_free(p->blob_err);
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
        b->done += n;
        if (b->done == b->desc->size)
                return blob_verify(p, b, err);
        if (p->o.progress)
                p->o.progress(b->desc->digest, b->done, b->desc->size, p->o.userdata);
        return 0;
}

static int sink_restart(ImageBlobSink *sink, size_t index, Error **err) {
        Pull *p = sink->userdata;
        if (index >= p->n_blobs)
                return error_set(err, EINVAL, "source restarted blob %zu of %zu", index, p->n_blobs);
        BlobState *b = &p->blobs[index];
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

/* Fetches descs (unique, absent from blobs/) into the pull directory. */
static int pull_fetch(Pull *p, const OciDescriptor *descs, size_t n, Error **err) {
        if (n == 0)
                return 0;
        if (!(p->blobs = calloc(n, sizeof *p->blobs)))
                return error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
                p->blobs[i].fd = -1;
        p->n_blobs = n;
        for (size_t i = 0; i < n; i++) {
                BlobState *b = &p->blobs[i];
                b->desc = &descs[i];
                b->fd = openat(p->dir_fd, descs[i].digest + 7, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (b->fd < 0)
                        return error_set_errno(err, errno, "create blob file for %s", descs[i].digest);
                if (digest_new(&b->digest) < 0)
                        return error_set(err, ENOMEM, "out of memory");
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

static int manifest_get(Pull *p, const OciDescriptor *want, char **ret, size_t *ret_size, OciKind *ret_kind,
                        Error **err) {
        _cleanup_free_ void *data = NULL;
        _cleanup_free_ char *mt = NULL;
        size_t size = 0;
        const char *digest = want ? want->digest : p->o.digest;
        int r = p->src->ops->get_manifest(p->src, digest, &data, &size, &mt, err);
        if (r < 0)
                return error_prefix(err, "manifest %s", digest ? digest : p->src->ops->describe(p->src));
        if (size > p->o.max_manifest)
                return error_set(err, EFBIG, "manifest of %zu bytes is larger than %zu", size, p->o.max_manifest);
        _cleanup_free_ char *got = NULL;
        if (digest_buffer_hex(data, size, &got) < 0)
                return error_set(err, ENOMEM, "out of memory");
        if (want && (strcmp(got, want->digest) != 0 || size != want->size))
                return error_set(err, EBADMSG, "manifest %s: digest mismatch: got %s (%zu bytes, expected %llu)",
                                 want->digest, got, size, (unsigned long long) want->size);
        if (!want && digest && strcmp(got, digest) != 0)
                return error_set(err, EBADMSG, "manifest %s: digest mismatch: got %s", digest, got);
        if ((r = oci_media_type_sniff(data, size, mt, ret_kind, err)) < 0)
                return error_prefix(err, "manifest %s", got);
        char *text = malloc(size + 1);
        if (!text)
                return error_set(err, ENOMEM, "out of memory");
        memcpy(text, data, size);
        text[size] = 0;
        *ret = text;
        *ret_size = size;
        return 0;
}

/* The image manifest for the wanted platform, its text and digest. */
static int pull_manifest(Pull *p, OciManifest **ret, char **ret_text, size_t *ret_size, char **ret_digest,
                         Error **err) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        OciKind kind;
        int r = manifest_get(p, NULL, &text, &size, &kind, err);
        if (r < 0)
                return r;
        if (kind == OCI_KIND_INDEX) {
                _cleanup_oci_index_ OciIndex *index = NULL;
                const OciDescriptor *d = NULL;
                if ((r = oci_index_parse(text, size, &index, err)) < 0 ||
                    (r = oci_index_select(index, p->o.os, p->o.architecture, p->o.variant, &d, err)) < 0)
                        return r;
                text = mfree(text);
                if ((r = manifest_get(p, d, &text, &size, &kind, err)) < 0)
                        return r;
                if (kind != OCI_KIND_MANIFEST)
                        return error_set(err, EOPNOTSUPP, "index entry %s is not an image manifest", d->digest);
        }
        _cleanup_oci_manifest_ OciManifest *m = NULL;
        if ((r = oci_manifest_parse(text, size, &m, err)) < 0)
                return r;
        if (m->n_layers > p->o.max_layers)
                return error_set(err, E2BIG, "image has %zu layers, at most %zu allowed", m->n_layers, p->o.max_layers);
        if (digest_buffer_hex(text, size, ret_digest) < 0)
                return error_set(err, ENOMEM, "out of memory");
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
        if (!blob_present(p->s, m->config.digest) && (r = pull_fetch(p, &m->config, 1, err)) < 0)
                return error_prefix(err, "config");
        _cleanup_close_ int fd = blob_open(p, m->config.digest, err);
        if (fd < 0)
                return fd;
        _cleanup_free_ char *data = NULL;
        size_t n = 0;
        if ((r = read_fd_bounded(fd, OCI_JSON_MAX, &data, &n)) < 0)
                return error_set_errno(err, -r, "read config %s", m->config.digest);
        _cleanup_oci_config_ OciConfig *c = NULL;
        if ((r = oci_config_parse(data, n, &c, err)) < 0 || (r = oci_config_check_layers(c, m, err)) < 0)
                return error_prefix(err, "config %s", m->config.digest);
        *ret_created = store_config_created(data, n);
        *ret = TAKE_PTR(c);
        return 0;
}

/* ---- sizing (the bomb guard) and the disk ---- */

typedef struct Measure {
        uint64_t bytes, entries;
        uint64_t max_bytes, max_entries;
} Measure;

static int layer_measure(int fd, const char *digest, Measure *m, Error **err) {
        struct archive *a = archive_read_new();
        if (!a)
                return error_set(err, ENOMEM, "out of memory");
        int r = 0;
        if (archive_read_support_filter_gzip(a) != ARCHIVE_OK || archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
            archive_read_support_filter_none(a) != ARCHIVE_OK || archive_read_support_format_tar(a) != ARCHIVE_OK ||
            archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
                r = error_set(err, EBADMSG, "layer %s: %s", digest, archive_error_string(a));
                goto out;
        }
        for (;;) {
                struct archive_entry *e;
                int ar = archive_read_next_header(a, &e);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN) {
                        r = error_set(err, EBADMSG, "layer %s: %s", digest, archive_error_string(a));
                        goto out;
                }
                uint64_t size = archive_entry_size_is_set(e) && archive_entry_size(e) > 0 ? (uint64_t) archive_entry_size(e) : 0;
                uint64_t stream = (uint64_t) archive_filter_bytes(a, 0);
                if (++m->entries > m->max_entries) {
                        r = error_set(err, EFBIG, "layer %s expands past %llu entries", digest,
                                      (unsigned long long) m->max_entries);
                        goto out;
                }
                if (size > m->max_bytes - MIN(m->bytes, m->max_bytes) || stream > m->max_bytes) {
                        r = error_set(err, EFBIG, "layer %s expands past %llu bytes", digest,
                                      (unsigned long long) m->max_bytes);
                        goto out;
                }
                m->bytes += size;
        }
out:
        archive_read_free(a);
        return r;
}

static int pull_disk(Pull *p, const OciManifest *m, uint64_t *ret_size, Error **err) {
        Measure ms = {.max_bytes = p->o.max_uncompressed, .max_entries = p->o.max_entries};
        int r;
        for (size_t i = 0; i < m->n_layers; i++) {
                _cleanup_close_ int fd = blob_open(p, m->layers[i].digest, err);
                if (fd < 0)
                        return fd;
                if ((r = layer_measure(fd, m->layers[i].digest, &ms, err)) < 0)
                        return r;
        }
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/tmp/%s/disk.ext4", p->s->root, p->dir_name) < 0)
                return error_set(err, ENOMEM, "out of memory");
        _cleanup_ext4_writer_ Ext4Writer *w = NULL;
        if ((r = ext4_writer_new(&w, path, ext4_size_for(ms.bytes, ms.entries), err)) < 0)
                return error_prefix(err, "create disk");
        for (size_t i = 0; i < m->n_layers; i++) {
                _cleanup_close_ int fd = blob_open(p, m->layers[i].digest, err);
                if (fd < 0)
                        return fd;
                if ((r = ext4_writer_apply_layer(w, fd, NULL, err)) < 0)
                        return error_prefix(err, "layer %s", m->layers[i].digest);
        }
        if ((r = ext4_writer_finish(w, err)) < 0)
                return error_prefix(err, "disk");
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
        if ((r = store_fsync_dir(dir, "image dir", err)) < 0 || (r = store_fsync_dir(p->s->images_fd, "images", err)) < 0)
                return r;
        return store_record_write(p->s, img, err);
}

/* Builds the image whose manifest is m (holding its image lock). */
static int pull_build(Pull *p, OciManifest *m, const char *mtext, size_t msize, char *mdigest, const char *hex,
                      Error **err) {
        int r;
        if ((r = store_tmp_name("pull", &p->dir_name)) < 0)
                return error_set(err, ENOMEM, "out of memory");
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
                return error_set(err, ENOMEM, "out of memory");
        if ((r = pull_config(p, m, &img->config, &img->created, err)) < 0)
                return r;

        /* Layers the store lacks, each once (a manifest may repeat one). */
        _cleanup_free_ OciDescriptor *want = calloc(m->n_layers + 1, sizeof *want);
        size_t n_want = 0;
        if (!want)
                return error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < m->n_layers; i++) {
                bool dup = false;
                for (size_t j = 0; j < n_want && !dup; j++)
                        dup = strcmp(want[j].digest, m->layers[i].digest) == 0;
                if (!dup && !blob_present(p->s, m->layers[i].digest))
                        want[n_want++] = m->layers[i];
        }
        if ((r = pull_fetch(p, want, n_want, err)) < 0)
                return r;
        uint64_t disk_size = 0;
        if ((r = pull_disk(p, m, &disk_size, err)) < 0)
                return r;

        img->id = strdup(m->config.digest);
        img->manifest_digest = strdup(mdigest);
        img->source = strdup(p->src->ops->describe(p->src));
        img->layers.v = calloc(m->n_layers + 1, sizeof *img->layers.v);
        if (!img->id || !img->manifest_digest || !img->source || !img->layers.v)
                return error_set(err, ENOMEM, "out of memory");
        img->content_size = m->config.size;
        for (size_t i = 0; i < m->n_layers; i++) {
                if (!(img->layers.v[i] = strdup(m->layers[i].digest)))
                        return error_set(err, ENOMEM, "out of memory");
                img->layers.n++;
                img->content_size += m->layers[i].size;
        }
        img->disk_size = disk_size;
        img->pulled = (int64_t) time(NULL);
        return pull_commit(p, img, m, hex, err);
}

static int tag_image(Store *s, const char *name, const char *id, Error **err) {
        _cleanup_close_ int lock = store_lock(s, "tags", LOCK_EX, err);
        if (lock < 0)
                return lock;
        _cleanup_(store_tags_clear) StoreTags t = {};
        int r = store_tags_load(s, &t, err);
        if (r < 0)
                return r;
        ssize_t i = store_tags_find(&t, name);
        if (i >= 0 && strcmp(t.ids[i], id) == 0)
                return 0;
        if ((r = store_tags_set(&t, name, id, err)) < 0)
                return r;
        return store_tags_save(s, &t, err);
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
        _cleanup_(pull_done) Pull p = {.s = s, .src = src, .dir_fd = -1};
        options_fill(&p.o, opts);
        if (p.o.digest && (r = digest_parse_check(p.o.digest)) < 0)
                return error_set(err, -r, "bad digest '%.80s'", p.o.digest);
        _cleanup_close_ int slock = store_lock(s, "store", LOCK_SH, err);
        if (slock < 0)
                return slock;

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
                if (!store_record_exists(s, hex) && (r = pull_build(&p, m, mtext, msize, mdigest, hex, err)) < 0)
                        return r;
                if (name && (r = tag_image(s, name, m->config.digest, err)) < 0)
                        return r;
        }
        if (ret)
                return store_inspect(s, m->config.digest, ret, err);
        return 0;
}
