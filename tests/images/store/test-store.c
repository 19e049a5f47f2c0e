/* test-store.c: the image store (images/store/store.h) against a fake ImageSource
 * that serves in-memory manifests and blobs: tiny gzip tar layers built here
 * with libarchive. Pull, inspect, list, tags; a second pull fetching nothing;
 * the hostile cases (wrong digest, blob longer than its descriptor, truncated
 * blob, oversize manifest, too many layers, a decompression bomb, a "../"
 * entry), each leaving the store exactly as it was; a bomb stopping the
 * download, a blob restarted mid-way, caps over the sum of the layers, a
 * stored layer measured from its cache or again; two threads pulling one
 * image, and two processes; remove + gc; leftovers of a killed pull. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "images/oci/digest.h"
#include "images/store/store.h"

/* ---- in-memory blobs and layers ---- */

typedef struct Blob {
        char digest[DIGEST_STRING_LEN + 1]; /* what descriptors say */
        char *data;                          /* what the source serves */
        size_t size;
} Blob;

typedef struct Image {
        Blob blobs[8]; /* [0] config, [1..] layers */
        size_t n_blobs;
        Blob manifest;
        Blob index;
} Image;

static void blob_set(Blob *b, const void *data, size_t n) {
        char *d = NULL;
        b->data = malloc(n + 1);
        assert_non_null(b->data);
        memcpy(b->data, data, n);
        b->size = n;
        assert_int_equal(digest_buffer_hex(data, n, &d), 0);
        strcpy(b->digest, d);
        free(d);
}

typedef struct Buf {
        char *data;
        size_t n;
} Buf;

static la_ssize_t buf_write(struct archive *a, void *userdata, const void *data, size_t n) {
        Buf *b = userdata;
        b->data = realloc(b->data, b->n + n);
        assert_non_null(b->data);
        memcpy(b->data + b->n, data, n);
        b->n += n;
        return (la_ssize_t) n;
}

/* A gzip tar with files "name=content" (content "ZEROS:<n>" is n zero bytes,
 * "RANDOM:<n>" n incompressible ones). */
static void layer_make(Blob *out, const char *const *files) {
        Buf buf = {};
        struct archive *a = archive_write_new();
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
        /* No time in the gzip header: the same files give the same blob. */
        assert_int_equal(archive_write_set_filter_option(a, "gzip", "timestamp", NULL), ARCHIVE_OK);
        assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
        assert_int_equal(archive_write_open2(a, &buf, NULL, buf_write, NULL, NULL), ARCHIVE_OK);
        for (size_t i = 0; files[i]; i++) {
                const char *eq = strchr(files[i], '=');
                char name[256];
                snprintf(name, sizeof name, "%.*s", (int) (eq - files[i]), files[i]);
                const char *content = eq + 1;
                size_t size = strlen(content);
                bool zeros = strncmp(content, "ZEROS:", 6) == 0, noise = strncmp(content, "RANDOM:", 7) == 0;
                if (zeros)
                        size = strtoull(content + 6, NULL, 10);
                if (noise)
                        size = strtoull(content + 7, NULL, 10);
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, name);
                archive_entry_set_filetype(e, AE_IFREG);
                archive_entry_set_perm(e, 0644);
                archive_entry_set_size(e, (la_int64_t) size);
                assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
                if (zeros) {
                        static char z[1 << 16];
                        for (size_t done = 0; done < size; done += sizeof z)
                                archive_write_data(a, z, MIN(sizeof z, size - done));
                } else if (noise) {
                        static uint64_t x = 88172645463325252ull;
                        uint64_t v[512];
                        for (size_t done = 0; done < size; done += sizeof v) {
                                for (size_t k = 0; k < ELEMENTSOF(v); k++) {
                                        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                                        v[k] = x;
                                }
                                archive_write_data(a, v, MIN(sizeof v, size - done));
                        }
                } else {
                        archive_write_data(a, content, size);
                }
                archive_entry_free(e);
        }
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
        archive_write_free(a);
        blob_set(out, buf.data, buf.n);
        free(buf.data);
}

/* An image: one layer per files list (NULL-terminated array of lists). */
static void image_make(Image *img, const char *const *const *layers, const char *label) {
        *img = (Image) {};
        size_t n = 0;
        for (; layers[n]; n++)
                layer_make(&img->blobs[1 + n], layers[n]);
        char cfg[4096], diff[2048] = "", descs[4096] = "";
        for (size_t i = 0; i < n; i++) {
                snprintf(diff + strlen(diff), sizeof diff - strlen(diff), "%s\"%s\"", i ? "," : "",
                         img->blobs[1 + i].digest);
                snprintf(descs + strlen(descs), sizeof descs - strlen(descs),
                         "%s{\"mediaType\":\"" OCI_MEDIA_TYPE_LAYER_GZIP "\",\"digest\":\"%s\",\"size\":%zu}", i ? "," : "",
                         img->blobs[1 + i].digest, img->blobs[1 + i].size);
        }
        snprintf(cfg, sizeof cfg,
                 "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2024-01-02T03:04:05Z\","
                 "\"config\":{\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],\"Env\":[\"A=1\"],"
                 "\"WorkingDir\":\"/w\",\"User\":\"1:2\",\"StopSignal\":\"SIGINT\",\"Labels\":{\"l\":\"%s\"},"
                 "\"ExposedPorts\":{\"80/tcp\":{}}},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[%s]}}",
                 label, diff);
        blob_set(&img->blobs[0], cfg, strlen(cfg));
        img->n_blobs = 1 + n;
        char m[8192];
        snprintf(m, sizeof m,
                 "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MEDIA_TYPE_MANIFEST "\",\"config\":{\"mediaType\":\"" OCI_MEDIA_TYPE_CONFIG
                 "\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[%s]}",
                 img->blobs[0].digest, img->blobs[0].size, descs);
        blob_set(&img->manifest, m, strlen(m));
}

static void image_clear(Image *img) {
        for (size_t i = 0; i < img->n_blobs; i++)
                free(img->blobs[i].data);
        free(img->manifest.data);
        free(img->index.data);
        *img = (Image) {};
}

static const char *const base_files[] = {"etc/hello=hello world\n", "bin/tool=#!/bin/sh\n", NULL};
static const char *const top_files[] = {"etc/top=top layer\n", NULL};

/* ---- the fake source ---- */

typedef struct Counters {
        atomic_int fetched;       /* blobs delivered */
        atomic_int get_manifests;
        int delay_ms;             /* per blob, to make pulls overlap */
        size_t chunk;             /* write size (0: each blob in two halves) */
        atomic_size_t delivered;  /* bytes the sink accepted */
        const char *restart_digest; /* this blob: half, restart, all */
        bool restart_full;          /* ... all of it (not half) before the restart */
        atomic_int restarts;
} Counters;

typedef struct FakeSource {
        ImageSource base;
        Image *img;
        Counters *c;
        bool serve_index; /* top-level document is img->index */
        bool lie;         /* serves the manifest whatever digest is asked for */
} FakeSource;

static int fake_get_manifest(ImageSource *s, const char *digest, void **ret_data, size_t *ret_size,
                             char **ret_media_type, Error **err) {
        FakeSource *f = (FakeSource *) s;
        atomic_fetch_add(&f->c->get_manifests, 1);
        const Blob *b = f->serve_index && !digest ? &f->img->index : &f->img->manifest;
        if (digest && strcmp(digest, f->img->manifest.digest) != 0 && !f->lie)
                return error_set(err, ENOENT, "fake: no manifest %s", digest);
        *ret_data = malloc(b->size);
        memcpy(*ret_data, b->data, b->size);
        *ret_size = b->size;
        *ret_media_type = NULL;
        return 0;
}

static int fake_fetch_blobs(ImageSource *s, const OciDescriptor *descs, size_t n, ImageBlobSink *sink, Error **err) {
        FakeSource *f = (FakeSource *) s;
        for (size_t i = 0; i < n; i++) {
                const Blob *b = NULL;
                for (size_t j = 0; j < f->img->n_blobs && !b; j++)
                        if (strcmp(f->img->blobs[j].digest, descs[i].digest) == 0)
                                b = &f->img->blobs[j];
                if (!b)
                        return error_set(err, ENOENT, "fake: no blob %s", descs[i].digest);
                if (f->c->delay_ms)
                        usleep((useconds_t) f->c->delay_ms * 1000);
                atomic_fetch_add(&f->c->fetched, 1);
                int r;
                if (f->c->restart_digest && strcmp(f->c->restart_digest, b->digest) == 0 && b->size > 1) {
                        /* A transfer that broke half-way, retried. */
                        f->c->restart_digest = NULL;
                        if ((r = sink->write(sink, i, b->data, f->c->restart_full ? b->size : b->size / 2, err)) < 0)
                                return r;
                        usleep(50 * 1000); /* the measurer has read what it got */
                        if ((r = sink->restart(sink, i, err)) < 0)
                                return r;
                        atomic_fetch_add(&f->c->restarts, 1);
                }
                /* In pieces, so the sink sees more than one write. */
                size_t chunk = f->c->chunk ? f->c->chunk : b->size / 2 + 1;
                for (size_t off = 0; off < b->size || b->size == 0; off += chunk) {
                        size_t k = MIN(chunk, b->size - off);
                        if ((r = sink->write(sink, i, b->data + off, k, err)) < 0)
                                return r;
                        atomic_fetch_add(&f->c->delivered, k);
                        if (b->size == 0)
                                break;
                }
        }
        return 0;
}

static const char *fake_describe(ImageSource *s) {
        return "fake:test";
}

static void fake_free(ImageSource *s) {
        free(s);
}

static const ImageSourceOps fake_ops = {"fake", fake_get_manifest, fake_fetch_blobs, fake_describe, fake_free};

static ImageSource *fake_new(Image *img, Counters *c) {
        FakeSource *f = calloc(1, sizeof *f);
        f->base.ops = &fake_ops;
        f->img = img;
        f->c = c;
        return &f->base;
}

/* ---- store helpers ---- */

typedef struct T {
        char root[64];
        Store *s;
        Image img;
        Counters c;
} T;

static int setup(void **state) {
        T *t = calloc(1, sizeof *t);
        assert_non_null(t);
        assert_int_equal(test_tmpdir_make(t->root, sizeof t->root, "test-store"), 0);
        Error *err = NULL;
        if (store_open(t->root, &t->s, &err) < 0)
                fail_msg("store_open: %s", error_text(err));
        static const char *const *const layers[] = {base_files, top_files, NULL};
        image_make(&t->img, layers, "one");
        *state = t;
        return 0;
}

static int teardown(void **state) {
        T *t = *state;
        store_free(t->s);
        image_clear(&t->img);
        assert_int_equal(test_tmpdir_remove(t->root), 0);
        free(t);
        return 0;
}

static size_t dir_count(const char *root, const char *sub) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", root, sub);
        DIR *d = opendir(path);
        if (!d)
                return 0;
        size_t n = 0;
        for (struct dirent *de; (de = readdir(d));)
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n;
}

static bool tags_empty(const char *root) {
        char path[256], buf[64] = "";
        snprintf(path, sizeof path, "%s/tags.json", root);
        FILE *f = fopen(path, "r");
        if (!f)
                return true;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        return strcmp(buf, "{}") == 0;
}

/* Image lock files (locks/image-<hex>.lock) left in the store. */
static size_t image_lock_count(const char *root) {
        char path[256];
        snprintf(path, sizeof path, "%s/locks", root);
        DIR *d = opendir(path);
        if (!d)
                return 0;
        size_t n = 0;
        for (struct dirent *de; (de = readdir(d));)
                n += strncmp(de->d_name, "image-", 6) == 0;
        closedir(d);
        return n;
}

static void assert_store_empty(T *t) {
        assert_int_equal(dir_count(t->root, "images"), 0);
        assert_int_equal(image_lock_count(t->root), 0); /* a failed pull leaves no lock file either */
        assert_int_equal(dir_count(t->root, "blobs/sha256"), 0);
        assert_int_equal(dir_count(t->root, "tmp"), 0);
        assert_true(tags_empty(t->root));
        StoreImage **list = NULL;
        size_t n = 99;
        assert_int_equal(store_list(t->s, &list, &n, NULL), 0);
        assert_int_equal(n, 0);
        store_image_list_free(list, n);
}

static int pull(T *t, Image *img, const char *tag, const StorePullOptions *o, StoreImage **ret, Error **err) {
        ImageSource *src = fake_new(img, &t->c);
        int r = store_pull(t->s, src, tag, o, ret, err);
        image_source_free(src);
        return r;
}

static void pull_ok(T *t, Image *img, const char *tag, StoreImage **ret) {
        Error *err = NULL;
        if (pull(t, img, tag, NULL, ret, &err) < 0)
                fail_msg("pull: %s", error_text(err));
}

/* Pulls and expects code with needle in the message and no trace on disk. */
static void pull_fails(T *t, Image *img, const StorePullOptions *o, int code, const char *needle) {
        Error *err = NULL;
        StoreImage *img_ret = NULL;
        int r = pull(t, img, "test/bad:1", o, &img_ret, &err);
        if (r != code || !err || !strstr(err->message, needle))
                fail_msg("got %d '%s', want %d with '%s'", r, error_text(err), code, needle);
        assert_null(img_ret);
        error_free(err);
        assert_store_empty(t);
}

/* ---- tests ---- */

static void test_pull_inspect(void **state) {
        T *t = *state;
        StoreImage *img = NULL;
        pull_ok(t, &t->img, "test/img:1", &img);
        assert_string_equal(img->id, t->img.blobs[0].digest);
        assert_string_equal(img->manifest_digest, t->img.manifest.digest);
        assert_string_equal(img->source, "fake:test");
        assert_string_equal(img->created, "2024-01-02T03:04:05Z");
        assert_int_equal(img->layers.n, 2);
        assert_string_equal(img->layers.v[1], t->img.blobs[2].digest);
        assert_int_equal(img->tags.n, 1);
        assert_string_equal(img->tags.v[0], "docker.io/test/img:1");
        assert_string_equal(img->config->entrypoint.v[1], "-c");
        assert_string_equal(img->config->env.v[0], "A=1");
        assert_string_equal(img->config->working_dir, "/w");
        assert_string_equal(img->config->user, "1:2");
        assert_string_equal(img->config->stop_signal, "SIGINT");
        assert_string_equal(img->config->label_values.v[0], "one");
        assert_string_equal(img->config->exposed_ports.v[0], "80/tcp");
        struct stat st;
        assert_int_equal(stat(img->disk_path, &st), 0);
        assert_int_equal((uint64_t) st.st_size, img->disk_size);
        assert_int_equal(st.st_mode & 0777, 0444);

        /* Every way of naming it finds it. */
        char prefix[32];
        snprintf(prefix, sizeof prefix, "%.12s", img->id + 7);
        const char *refs[] = {"test/img:1", "docker.io/test/img:1", img->id, img->id + 7, prefix};
        for (size_t i = 0; i < ELEMENTSOF(refs); i++) {
                StoreImage *x = NULL;
                Error *err = NULL;
                if (store_inspect(t->s, refs[i], &x, &err) < 0)
                        fail_msg("inspect '%s': %s", refs[i], error_text(err));
                assert_string_equal(x->id, img->id);
                store_image_free(x);
        }
        Error *err = NULL;
        StoreImage *x = NULL;
        assert_int_equal(store_inspect(t->s, "test/img:2", &x, &err), -ENOENT);
        error_free(err);
        err = NULL;
        snprintf(prefix, sizeof prefix, "%.11s", img->id + 7); /* too short for a prefix */
        assert_int_equal(store_inspect(t->s, prefix, &x, &err), -ENOENT);
        error_free(err);

        StoreImage **list = NULL;
        size_t n = 0;
        assert_int_equal(store_list(t->s, &list, &n, NULL), 0);
        assert_int_equal(n, 1);
        store_image_list_free(list, n);
        char *json = NULL;
        assert_int_equal(store_image_to_json(img, &json), 0);
        assert_non_null(strstr(json, "\"StopSignal\": \"SIGINT\""));
        free(json);
        store_image_free(img);
        assert_int_equal(dir_count(t->root, "tmp"), 0);
        assert_int_equal(dir_count(t->root, "blobs/sha256"), 4); /* manifest, config, 2 layers */
}

static void test_second_pull_fetches_nothing(void **state) {
        T *t = *state;
        pull_ok(t, &t->img, "test/img:1", NULL);
        assert_int_equal(atomic_load(&t->c.fetched), 3);
        pull_ok(t, &t->img, "test/img:again", NULL);
        assert_int_equal(atomic_load(&t->c.fetched), 3);
        StoreImage *img = NULL;
        assert_int_equal(store_inspect(t->s, "test/img:again", &img, NULL), 0);
        assert_int_equal(img->tags.n, 2);
        store_image_free(img);

        /* A second image sharing the base layer fetches only what it lacks. */
        Image other;
        static const char *const extra[] = {"etc/other=x\n", NULL};
        static const char *const *const layers[] = {base_files, extra, NULL};
        image_make(&other, layers, "two");
        pull_ok(t, &other, "test/other:1", NULL);
        image_clear(&other);
        assert_int_equal(atomic_load(&t->c.fetched), 5); /* config + new layer */
}

static void test_wrong_digest(void **state) {
        T *t = *state;
        t->img.blobs[2].data[0] ^= 1; /* same size, other bytes */
        pull_fails(t, &t->img, NULL, -EBADMSG, "digest mismatch");
}

static void test_blob_too_long(void **state) {
        T *t = *state;
        Blob *b = &t->img.blobs[1];
        b->data = realloc(b->data, b->size + 10);
        memset(b->data + b->size, 0, 10);
        b->size += 10;
        pull_fails(t, &t->img, NULL, -EFBIG, "more bytes than its size");
}

static void test_blob_truncated(void **state) {
        T *t = *state;
        t->img.blobs[2].size -= 5;
        pull_fails(t, &t->img, NULL, -EBADMSG, "size mismatch");
}

static void test_config_wrong(void **state) {
        T *t = *state;
        t->img.blobs[0].data[3] ^= 1;
        pull_fails(t, &t->img, NULL, -EBADMSG, "digest mismatch");
}

static void test_manifest_too_large(void **state) {
        T *t = *state;
        StorePullOptions o = {.max_manifest = 64};
        pull_fails(t, &t->img, &o, -EFBIG, "larger than 64");
        Blob *m = &t->img.manifest;
        m->data = realloc(m->data, OCI_JSON_MAX + 2);
        memset(m->data + m->size, ' ', OCI_JSON_MAX + 2 - m->size);
        m->size = OCI_JSON_MAX + 2;
        pull_fails(t, &t->img, NULL, -EFBIG, "larger than");
}

static void test_too_many_layers(void **state) {
        T *t = *state;
        StorePullOptions o = {.max_layers = 1};
        pull_fails(t, &t->img, &o, -E2BIG, "2 layers, at most 1");

        /* Past OCI_LAYERS_MAX the manifest parser refuses it. */
        char *m = malloc(OCI_JSON_MAX), *p = m;
        p += sprintf(p, "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MEDIA_TYPE_MANIFEST "\",\"config\":{\"mediaType\":\""
                        OCI_MEDIA_TYPE_CONFIG "\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[",
                     t->img.blobs[0].digest, t->img.blobs[0].size);
        for (int i = 0; i <= OCI_LAYERS_MAX; i++)
                p += sprintf(p, "%s{\"mediaType\":\"" OCI_MEDIA_TYPE_LAYER_GZIP "\",\"digest\":\"%s\",\"size\":%zu}",
                             i ? "," : "", t->img.blobs[1].digest, t->img.blobs[1].size);
        p += sprintf(p, "]}");
        free(t->img.manifest.data);
        blob_set(&t->img.manifest, m, (size_t) (p - m));
        free(m);
        pull_fails(t, &t->img, NULL, -E2BIG, "layers");
}

static void test_decompression_bomb(void **state) {
        T *t = *state;
        Image bomb;
        static const char *const big[] = {"zero=ZEROS:67108864", NULL}; /* 64 MiB of zeros, ~64 KiB gzip */
        static const char *const *const layers[] = {big, NULL};
        image_make(&bomb, layers, "bomb");
        assert_true(bomb.blobs[1].size < (1u << 20));
        StorePullOptions o = {.max_uncompressed = 8u << 20};
        pull_fails(t, &bomb, &o, -EFBIG, "expands past 8388608 bytes");

        /* Many entries: the entry cap. */
        static const char *const many[] = {"a=1", "b=2", "c=3", "d=4", NULL};
        static const char *const *const layers2[] = {many, NULL};
        Image lots;
        image_make(&lots, layers2, "many");
        StorePullOptions o2 = {.max_entries = 3};
        pull_fails(t, &lots, &o2, -EFBIG, "expands past 3 entries");
        image_clear(&lots);

        /* Under a generous cap the same bomb is a fine (sparse) image. */
        StorePullOptions o3 = {.max_uncompressed = 1u << 30};
        Error *err = NULL;
        if (pull(t, &bomb, NULL, &o3, NULL, &err) < 0)
                fail_msg("pull: %s", error_text(err));
        image_clear(&bomb);
}

static void test_dotdot_entry(void **state) {
        T *t = *state;
        Image evil;
        static const char *const bad[] = {"etc/ok=fine", "../escape=oops", NULL};
        static const char *const *const layers[] = {base_files, bad, NULL};
        image_make(&evil, layers, "evil");
        Error *err = NULL;
        int r = pull(t, &evil, "test/evil:1", NULL, NULL, &err);
        assert_true(r < 0);
        assert_non_null(err);
        assert_non_null(strstr(err->message, "escape"));
        error_free(err);
        image_clear(&evil);
        assert_store_empty(t);
}

static void test_source_error(void **state) {
        T *t = *state;
        /* The layer the manifest names is not in the source. */
        t->img.blobs[2].digest[10] ^= 1;
        pull_fails(t, &t->img, NULL, -ENOENT, "fake: no blob");
}

/* err == NULL means "only the code" (common/base/error.h): the codes must be
 * the same as with an Error to fill, not a blanket -EIO. */
static void test_codes_without_error(void **state) {
        T *t = *state;
        static const char absent[] = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        StorePullOptions o = {.digest = absent};
        Error *err = NULL;
        assert_int_equal(pull(t, &t->img, NULL, &o, NULL, &err), -ENOENT);
        err = error_free(err);
        assert_int_equal(pull(t, &t->img, NULL, &o, NULL, NULL), -ENOENT);
        /* The config is not in the source. */
        t->img.blobs[0].digest[10] ^= 1;
        assert_int_equal(pull(t, &t->img, NULL, NULL, NULL, &err), -ENOENT);
        err = error_free(err);
        assert_int_equal(pull(t, &t->img, NULL, NULL, NULL, NULL), -ENOENT);
        t->img.blobs[0].digest[10] ^= 1;
        /* A layer the disk refuses. */
        Image evil;
        static const char *const bad[] = {"etc/ok=fine", "../escape=oops", NULL};
        static const char *const *const layers[] = {base_files, bad, NULL};
        image_make(&evil, layers, "evil");
        int r = pull(t, &evil, NULL, NULL, NULL, &err);
        assert_true(r < 0);
        assert_int_equal(r, -err->code);
        err = error_free(err);
        assert_int_equal(pull(t, &evil, NULL, NULL, NULL, NULL), r);
        image_clear(&evil);
        assert_store_empty(t);
}

static void test_index_platform(void **state) {
        T *t = *state;
        char idx[2048];
        snprintf(idx, sizeof idx,
                 "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MEDIA_TYPE_INDEX "\",\"manifests\":["
                 "{\"mediaType\":\"" OCI_MEDIA_TYPE_MANIFEST "\",\"digest\":\"sha256:%064d\",\"size\":10,"
                 "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
                 "{\"mediaType\":\"" OCI_MEDIA_TYPE_MANIFEST "\",\"digest\":\"%s\",\"size\":%zu,"
                 "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}",
                 0, t->img.manifest.digest, t->img.manifest.size);
        blob_set(&t->img.index, idx, strlen(idx));
        FakeSource *f = (FakeSource *) fake_new(&t->img, &t->c);
        f->serve_index = true;
        Error *err = NULL;
        StorePullOptions o = {.architecture = "s390x"};
        assert_int_equal(store_pull(t->s, &f->base, NULL, &o, NULL, &err), -ENOENT);
        assert_non_null(strstr(err->message, "arm64"));
        err = error_free(err);
        StoreImage *img = NULL;
        if (store_pull(t->s, &f->base, "test/idx:1", NULL, &img, &err) < 0)
                fail_msg("pull: %s", error_text(err));
        assert_string_equal(img->manifest_digest, t->img.manifest.digest);
        store_image_free(img);
        image_source_free(&f->base);
}

static void test_index_manifest_mismatch(void **state) {
        T *t = *state;
        char idx[1024];
        /* The index promises another size: the manifest is not what it names. */
        snprintf(idx, sizeof idx,
                 "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MEDIA_TYPE_MANIFEST "\",\"digest\":\"%s\","
                 "\"size\":%zu,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}",
                 t->img.manifest.digest, t->img.manifest.size + 1);
        blob_set(&t->img.index, idx, strlen(idx));
        FakeSource *f = (FakeSource *) fake_new(&t->img, &t->c);
        f->serve_index = true;
        Error *err = NULL;
        assert_int_equal(store_pull(t->s, &f->base, "test/x:1", NULL, NULL, &err), -EBADMSG);
        assert_non_null(strstr(err->message, "digest mismatch"));
        error_free(err);
        image_source_free(&f->base);
        assert_store_empty(t);
}

static void test_pull_by_digest(void **state) {
        T *t = *state;
        FakeSource *f = (FakeSource *) fake_new(&t->img, &t->c);
        f->lie = true;
        Error *err = NULL;
        char other[DIGEST_STRING_LEN + 1];
        snprintf(other, sizeof other, "sha256:%064d", 5);
        StorePullOptions o = {.digest = other};
        assert_int_equal(store_pull(t->s, &f->base, NULL, &o, NULL, &err), -EBADMSG);
        assert_non_null(strstr(err->message, "digest mismatch"));
        err = error_free(err);
        assert_store_empty(t);
        o.digest = "sha256:nothex";
        assert_int_equal(store_pull(t->s, &f->base, NULL, &o, NULL, &err), -EINVAL);
        err = error_free(err);
        o.digest = t->img.manifest.digest;
        if (store_pull(t->s, &f->base, "test/img:1", &o, NULL, &err) < 0)
                fail_msg("pull: %s", error_text(err));
        image_source_free(&f->base);
}

static void *pull_thread(void *arg) {
        T *t = arg;
        Error *err = NULL;
        int r = pull(t, &t->img, "test/img:1", NULL, NULL, &err);
        if (r < 0)
                fprintf(stderr, "thread pull: %s\n", error_text(err));
        error_free(err);
        return (void *) (intptr_t) r;
}

static void test_concurrent_pulls(void **state) {
        T *t = *state;
        t->c.delay_ms = 100;
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
                assert_int_equal(pthread_create(&th[i], NULL, pull_thread, t), 0);
        for (int i = 0; i < 2; i++) {
                void *rv;
                pthread_join(th[i], &rv);
                assert_int_equal((intptr_t) rv, 0);
        }
        assert_int_equal(atomic_load(&t->c.fetched), 3); /* each blob once */
        assert_int_equal(dir_count(t->root, "images"), 1);
        assert_int_equal(dir_count(t->root, "tmp"), 0);
}

static void test_two_processes(void **state) {
        T *t = *state;
        t->c.delay_ms = 100;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* Its own Store, as a second pl-image process would have. */
                Store *s = NULL;
                ImageSource *src = fake_new(&t->img, &t->c);
                int r = store_open(t->root, &s, NULL);
                if (r >= 0)
                        r = store_pull(s, src, "test/img:child", NULL, NULL, NULL);
                _exit(r < 0 ? 100 : atomic_load(&t->c.fetched));
        }
        pull_ok(t, &t->img, "test/img:parent", NULL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_not_equal(WEXITSTATUS(status), 100);
        assert_int_equal(WEXITSTATUS(status) + atomic_load(&t->c.fetched), 3);
        assert_int_equal(dir_count(t->root, "images"), 1);
        StoreImage *img = NULL;
        assert_int_equal(store_inspect(t->s, "test/img:child", &img, NULL), 0);
        assert_int_equal(img->tags.n, 2);
        store_image_free(img);
}

typedef struct RemoveArgs {
        Store *s;
        const char *ref;
        int r;
} RemoveArgs;

static void *remove_thread(void *arg) {
        RemoveArgs *a = arg;
        a->r = store_remove(a->s, a->ref, NULL);
        return NULL;
}

/* `rm test/img:1` resolves the tag, then waits for the image's lock; the tag
 * moves to another image meanwhile. The remove must act on what the tag
 * names once it holds the locks (here: the other image, whose only tag it
 * is), not untag the other image and leave it behind untagged. */
static void test_remove_tag_moved(void **state) {
        T *t = *state;
        Image other;
        static const char *const extra[] = {"etc/other=x\n", NULL};
        static const char *const *const layers[] = {base_files, extra, NULL};
        image_make(&other, layers, "two");
        StoreImage *a = NULL, *b = NULL;
        pull_ok(t, &t->img, "test/img:1", &a);
        pull_ok(t, &t->img, "test/img:2", NULL);
        pull_ok(t, &other, NULL, &b);

        char lock[256];
        snprintf(lock, sizeof lock, "%s/locks/image-%s.lock", t->root, a->id + 7);
        int fd = open(lock, O_RDWR | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(flock(fd, LOCK_EX), 0);
        RemoveArgs args = {.s = t->s, .ref = "test/img:1", .r = 1};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, remove_thread, &args), 0);
        usleep(300 * 1000); /* resolved, waiting for the lock */
        Error *err = NULL;
        if (store_tag(t->s, b->id, "test/img:1", &err) < 0)
                fail_msg("tag: %s", error_text(err));
        close(fd);
        pthread_join(th, NULL);
        assert_int_equal(args.r, 0);

        /* Image a keeps its other tag; test/img:1 went with image b. */
        StoreImage *img = NULL;
        assert_int_equal(store_inspect(t->s, "test/img:2", &img, NULL), 0);
        assert_string_equal(img->id, a->id);
        store_image_free(img);
        img = NULL;
        assert_int_equal(store_inspect(t->s, "test/img:1", &img, NULL), -ENOENT);
        assert_int_equal(store_inspect(t->s, b->id, &img, NULL), -ENOENT);
        store_image_free(a);
        store_image_free(b);
        image_clear(&other);
}

static void test_remove_gc(void **state) {
        T *t = *state;
        Image other;
        static const char *const extra[] = {"etc/other=x\n", NULL};
        static const char *const *const layers[] = {base_files, extra, NULL};
        image_make(&other, layers, "two");
        pull_ok(t, &t->img, "test/img:1", NULL);
        pull_ok(t, &t->img, "test/img:2", NULL);
        pull_ok(t, &other, "test/other:1", NULL);
        assert_int_equal(dir_count(t->root, "blobs/sha256"), 7); /* 2 manifests, 2 configs, 3 layers */
        StoreImage **list = NULL;
        size_t n = 0;
        assert_int_equal(store_list(t->s, &list, &n, NULL), 0);
        assert_int_equal(n, 2);
        assert_true(strcmp(list[0]->id, list[1]->id) < 0); /* sorted by id */
        store_image_list_free(list, n);

        Error *err = NULL;
        assert_int_equal(store_remove(t->s, "test/img:1", &err), 0); /* still tagged test/img:2 */
        assert_int_equal(dir_count(t->root, "images"), 2);
        assert_int_equal(store_remove(t->s, "test/img:2", &err), 0);
        assert_int_equal(dir_count(t->root, "images"), 1);
        assert_int_equal(image_lock_count(t->root), 1); /* the removed image's lock file went with it */
        assert_int_equal(store_remove(t->s, "test/img:2", &err), -ENOENT);
        err = error_free(err);

        StoreGcStats st = {};
        assert_int_equal(store_gc(t->s, false, &st, &err), 0);
        assert_int_equal(st.blobs_removed, 3); /* manifest, config, top layer; base is shared */
        assert_true(st.bytes_freed > 0);
        assert_int_equal(dir_count(t->root, "blobs/sha256"), 4);

        StoreImage *img = NULL;
        assert_int_equal(store_inspect(t->s, "test/other:1", &img, NULL), 0);
        assert_int_equal(store_remove(t->s, img->id, &err), 0); /* by id */
        store_image_free(img);
        assert_int_equal(store_gc(t->s, false, &st, &err), 0);
        assert_int_equal(st.blobs_removed, 4);
        image_clear(&other);
        assert_store_empty(t);
        assert_int_equal(dir_count(t->root, "locks"), 2); /* store, tags: image locks pruned */
}

static void test_gc_untagged(void **state) {
        T *t = *state;
        pull_ok(t, &t->img, NULL, NULL);
        StoreGcStats st = {};
        assert_int_equal(store_gc(t->s, true, &st, NULL), 0);
        assert_int_equal(st.images_removed, 0);
        assert_int_equal(st.blobs_removed, 0);
        assert_int_equal(store_gc(t->s, false, &st, NULL), 0);
        assert_int_equal(st.images_removed, 1);
        assert_store_empty(t);
}

static void test_crash_leftovers(void **state) {
        T *t = *state;
        pull_ok(t, &t->img, "test/img:1", NULL);
        /* A pull killed half-way: a partial blob, a disk without its record. */
        char path[512];
        snprintf(path, sizeof path, "%s/tmp/pull-dead", t->root);
        assert_int_equal(mkdir(path, 0700), 0);
        snprintf(path, sizeof path, "%s/tmp/pull-dead/%064d", t->root, 7);
        FILE *f = fopen(path, "w");
        fputs("half", f);
        fclose(f);
        snprintf(path, sizeof path, "%s/images/%064d", t->root, 1);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof path, "%s/images/%064d/disk.ext4", t->root, 1);
        f = fopen(path, "w");
        fputs("disk", f);
        fclose(f);

        StoreImage **list = NULL;
        size_t n = 0;
        assert_int_equal(store_list(t->s, &list, &n, NULL), 0);
        assert_int_equal(n, 1); /* the record-less image is not listed */
        store_image_list_free(list, n);
        StoreImage *x = NULL;
        snprintf(path, sizeof path, "%064d", 1);
        assert_int_equal(store_inspect(t->s, path, &x, NULL), -ENOENT);

        /* Opening while an operation holds the store (as a pull does) leaves them... */
        snprintf(path, sizeof path, "%s/locks/store.lock", t->root);
        int lock = open(path, O_RDWR | O_CLOEXEC);
        assert_true(lock >= 0);
        assert_int_equal(flock(lock, LOCK_SH), 0);
        Store *s2 = NULL;
        assert_int_equal(store_open(t->root, &s2, NULL), 0);
        assert_int_equal(dir_count(t->root, "tmp"), 1);
        store_free(s2);
        close(lock);
        /* ...gc cleans them. */
        StoreGcStats st = {};
        assert_int_equal(store_gc(t->s, false, &st, NULL), 0);
        assert_int_equal(st.tmp_removed, 1);
        assert_int_equal(st.images_removed, 1);
        assert_int_equal(dir_count(t->root, "tmp"), 0);
        assert_int_equal(dir_count(t->root, "images"), 1);

        /* With nobody else in the store, open cleans by itself. */
        snprintf(path, sizeof path, "%s/tmp/file-dead", t->root);
        f = fopen(path, "w");
        fclose(f);
        t->s = store_free(t->s);
        assert_int_equal(store_open(t->root, &t->s, NULL), 0);
        assert_int_equal(dir_count(t->root, "tmp"), 0);
        assert_int_equal(store_inspect(t->s, "test/img:1", &x, NULL), 0);
        store_image_free(x);
}

static void test_tags(void **state) {
        T *t = *state;
        pull_ok(t, &t->img, "busybox", NULL);
        StoreImage *img = NULL;
        assert_int_equal(store_inspect(t->s, "docker.io/library/busybox:latest", &img, NULL), 0);
        Error *err = NULL;
        assert_int_equal(store_tag(t->s, img->id, "example.com/a/b:c", &err), 0);
        assert_int_equal(store_tag(t->s, "busybox", "bad@@name", &err), -EINVAL);
        err = error_free(err);
        assert_int_equal(store_tag(t->s, "nothere", "x:y", &err), -ENOENT);
        err = error_free(err);
        store_image_free(img);
        assert_int_equal(store_inspect(t->s, "example.com/a/b:c", &img, NULL), 0);
        assert_int_equal(img->tags.n, 2);
        store_image_free(img);
}

static void test_bomb_stops_download(void **state) {
        T *t = *state;
        /* The bomb's header comes first; the incompressible tail makes the
         * blob much larger than the sink's measuring ring. */
        static const char *const big[] = {"zero=ZEROS:16777216", "noise=RANDOM:4194304", NULL};
        static const char *const *const layers[] = {big, NULL};
        Image bomb;
        image_make(&bomb, layers, "bomb");
        size_t size = bomb.blobs[1].size;
        assert_true(size > (4u << 20));
        t->c.chunk = 16 << 10;
        StorePullOptions o = {.max_uncompressed = 8u << 20};
        pull_fails(t, &bomb, &o, -EFBIG, "expands past 8388608 bytes");
        /* The config (tiny) and well under half the layer got through. */
        size_t delivered = atomic_load(&t->c.delivered);
        assert_true(delivered > 0);
        assert_true(delivered < bomb.blobs[0].size + size / 2);
        image_clear(&bomb);
}

static void test_restart_mid_blob(void **state) {
        T *t = *state;
        /* Exactly the image's 6 entries: the first attempt's counts (the
         * headers in the first half) must be forgotten on restart, or the
         * retry would cross the cap. */
        static const char *const some[] = {"a=1", "b=2", "c=3", "noise=RANDOM:262144", NULL};
        static const char *const *const layers0[] = {base_files, some, NULL};
        Image img0;
        image_make(&img0, layers0, "restart");
        t->c.restart_digest = img0.blobs[2].digest;
        StorePullOptions o = {.max_entries = 6};
        Error *err = NULL;
        StoreImage *img = NULL;
        if (pull(t, &img0, "test/img:1", &o, &img, &err) < 0)
                fail_msg("pull: %s", error_text(err));
        assert_int_equal(atomic_load(&t->c.restarts), 1);
        assert_int_equal(img->layers.n, 2);
        store_image_free(img);
        image_clear(&img0);
        assert_int_equal(dir_count(t->root, "tmp"), 0);
        /* Restarting a bomb's blob still finds the bomb. */
        static const char *const big[] = {"zero=ZEROS:16777216", NULL};
        static const char *const *const layers[] = {big, NULL};
        Image bomb;
        image_make(&bomb, layers, "bomb");
        t->c.restart_digest = bomb.blobs[1].digest;
        StorePullOptions o2 = {.max_uncompressed = 8u << 20};
        assert_int_equal(pull(t, &bomb, "test/bomb:1", &o2, NULL, &err), -EFBIG);
        assert_non_null(strstr(err->message, "expands past 8388608 bytes"));
        err = error_free(err);
        image_clear(&bomb);
        assert_int_equal(dir_count(t->root, "images"), 1);
        assert_int_equal(dir_count(t->root, "tmp"), 0);
}

/* A transfer that delivered the whole blob and then failed (the registry
 * client retries a body followed by a broken connection): the retry starts
 * from zero, and the first attempt's counts, measured to the end, must leave
 * the totals as well, or the image crosses a cap it fits in. */
static void test_restart_after_full_blob(void **state) {
        T *t = *state;
        static const char *const some[] = {"a=1", "b=2", "c=3", "noise=RANDOM:262144", NULL};
        static const char *const *const layers0[] = {base_files, some, NULL};
        Image img0;
        image_make(&img0, layers0, "restart-full");
        t->c.restart_digest = img0.blobs[2].digest;
        t->c.restart_full = true;
        StorePullOptions o = {.max_entries = 6, .max_uncompressed = 262144 + 3 + 64};
        Error *err = NULL;
        StoreImage *img = NULL;
        if (pull(t, &img0, "test/img:1", &o, &img, &err) < 0)
                fail_msg("pull: %s", error_text(err));
        assert_int_equal(atomic_load(&t->c.restarts), 1);
        assert_int_equal(img->layers.n, 2);
        store_image_free(img);
        image_clear(&img0);
        assert_int_equal(dir_count(t->root, "tmp"), 0);
}

static void test_bad_archive_digest_first(void **state) {
        T *t = *state;
        /* A blob that is no archive and not what its digest says: the
         * measurer gives up at once, the download goes on to the digest. */
        static const char *const noisy[] = {"noise=RANDOM:1048576", NULL};
        static const char *const *const layers[] = {noisy, NULL};
        Image img;
        image_make(&img, layers, "noisy");
        img.blobs[1].data[0] ^= 1;
        t->c.chunk = 4096;
        pull_fails(t, &img, NULL, -EBADMSG, "digest mismatch");
        /* Every write but the last (which the digest check refused) went in. */
        assert_true(atomic_load(&t->c.delivered) + 4096 > img.blobs[0].size + img.blobs[1].size);
        image_clear(&img);
}

static void test_caps_sum_over_layers(void **state) {
        T *t = *state;
        static const char *const five[] = {"a=ZEROS:5242880", NULL};
        static const char *const five2[] = {"b=ZEROS:5242880", NULL};
        static const char *const *const layers[] = {five, five2, NULL};
        Image two;
        image_make(&two, layers, "two");
        StorePullOptions o = {.max_uncompressed = 8u << 20}; /* each fits, both do not */
        pull_fails(t, &two, &o, -EFBIG, "expands past 8388608 bytes");
        StorePullOptions o2 = {.max_entries = 1};
        pull_fails(t, &two, &o2, -EFBIG, "expands past 1 entries");
        StorePullOptions o3 = {.max_uncompressed = 11u << 20, .max_entries = 2};
        Error *err = NULL;
        if (pull(t, &two, NULL, &o3, NULL, &err) < 0)
                fail_msg("pull: %s", error_text(err));
        image_clear(&two);
}

static void cache_path(T *t, const char *id, char *path, size_t size) {
        snprintf(path, size, "%s/images/%s/layers.measure", t->root, id + 7);
}

static void test_stored_layer_measured(void **state) {
        T *t = *state;
        StoreImage *a = NULL;
        pull_ok(t, &t->img, "test/img:1", &a);
        char path[256], line[256];
        cache_path(t, a->id, path, sizeof path);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        assert_non_null(fgets(line, sizeof line, f));
        fclose(f);
        char want[256];
        size_t bytes = strlen(strchr(base_files[0], '=') + 1) + strlen(strchr(base_files[1], '=') + 1);
        snprintf(want, sizeof want, "%s 2 %zu\n", t->img.blobs[1].digest, bytes);
        assert_string_equal(line, want);

        /* A second image on the stored base layer: its two entries count. */
        Image other;
        static const char *const extra[] = {"etc/other=x\n", NULL};
        static const char *const *const layers[] = {base_files, extra, NULL};
        image_make(&other, layers, "two");
        StorePullOptions o = {.max_entries = 1};
        Error *err = NULL;
        assert_int_equal(pull(t, &other, "test/other:1", &o, NULL, &err), -EFBIG);
        assert_non_null(strstr(err->message, "expands past 1 entries"));
        assert_non_null(strstr(err->message, t->img.blobs[1].digest));
        err = error_free(err);
        assert_int_equal(atomic_load(&t->c.fetched), 4); /* the config, no layer */

        /* The numbers come from the cache: made huge there, they are refused. */
        f = fopen(path, "w");
        fprintf(f, "%s 2 99999999999\n", t->img.blobs[1].digest);
        fclose(f);
        assert_int_equal(pull(t, &other, "test/other:1", NULL, NULL, &err), -EFBIG);
        assert_non_null(strstr(err->message, t->img.blobs[1].digest));
        err = error_free(err);
        /* Without a cache (or with a bad one) the layer is read again. */
        f = fopen(path, "w");
        fprintf(f, "garbage\n");
        fclose(f);
        assert_int_equal(pull(t, &other, "test/other:1", &o, NULL, &err), -EFBIG);
        assert_non_null(strstr(err->message, "expands past 1 entries"));
        err = error_free(err);
        assert_int_equal(unlink(path), 0);
        StoreImage *b = NULL;
        pull_ok(t, &other, "test/other:1", &b);
        cache_path(t, b->id, path, sizeof path);
        f = fopen(path, "r");
        assert_non_null(f);
        assert_non_null(fgets(line, sizeof line, f));
        assert_string_equal(line, want);
        fclose(f);
        assert_int_equal(dir_count(t->root, "images"), 2);
        assert_int_equal(dir_count(t->root, "tmp"), 0);
        store_image_free(a);
        store_image_free(b);
        image_clear(&other);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_pull_inspect, setup, teardown),
                cmocka_unit_test_setup_teardown(test_second_pull_fetches_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wrong_digest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_blob_too_long, setup, teardown),
                cmocka_unit_test_setup_teardown(test_blob_truncated, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_wrong, setup, teardown),
                cmocka_unit_test_setup_teardown(test_manifest_too_large, setup, teardown),
                cmocka_unit_test_setup_teardown(test_too_many_layers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_decompression_bomb, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bomb_stops_download, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restart_mid_blob, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restart_after_full_blob, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_archive_digest_first, setup, teardown),
                cmocka_unit_test_setup_teardown(test_caps_sum_over_layers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stored_layer_measured, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dotdot_entry, setup, teardown),
                cmocka_unit_test_setup_teardown(test_source_error, setup, teardown),
                cmocka_unit_test_setup_teardown(test_codes_without_error, setup, teardown),
                cmocka_unit_test_setup_teardown(test_index_platform, setup, teardown),
                cmocka_unit_test_setup_teardown(test_index_manifest_mismatch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pull_by_digest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_pulls, setup, teardown),
                cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_remove_gc, setup, teardown),
                cmocka_unit_test_setup_teardown(test_remove_tag_moved, setup, teardown),
                cmocka_unit_test_setup_teardown(test_gc_untagged, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crash_leftovers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tags, setup, teardown),
        };
        return test_run_group(tests, NULL, NULL);
}
