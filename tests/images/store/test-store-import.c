/* test-store-import.c: the image store with real images: the OCI layouts
 * tests/lib/make-oci-image.sh builds with umoci (busybox userland, a
 * second layer with a whiteout and an opaque directory), and `docker save`
 * archives assembled here from the same layout (classic layer.tar form and
 * the Docker 25 form whose layer.tar names are symlinks into blobs/). The
 * disks are checked with e2fsck and read with debugfs, overlays with
 * `qemu-img info`, and pl-image runs as a subprocess on a non-terminal,
 * also pulling from a real docker-registry on loopback (pushed with skopeo)
 * when pl-image was built with the registry client.
 * Skips (tests/lib/test-skip.h) when umoci, busybox, e2fsprogs or qemu-img are
 * missing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/ext4-read.h"
#include "lib/pltest.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "images/store/docker-archive.h"
#include "images/store/oci-layout.h"
#include "images/store/store.h"
#include "lib/registry-harness.h"

static char work[64];   /* everything below here */
static char layout[128];

static char *read_text(const char *path) {
        char *data = NULL;
        size_t n;
        assert_int_equal(read_file_bounded(path, 64 << 20, &data, &n), 0);
        return data;
}

static Store *store_new(const char *name) {
        char root[256];
        snprintf(root, sizeof root, "%s/%s", work, name);
        Store *s = NULL;
        Error *err = NULL;
        if (store_open(root, &s, &err) < 0)
                fail_msg("store_open: %s", error_text(err));
        return s;
}

static StoreImage *import_oci(Store *s, const char *ref, const char *tag) {
        ImageSource *src = NULL;
        StoreImage *img = NULL;
        Error *err = NULL;
        if (oci_layout_source_new(layout, ref, &src, &err) < 0 || store_pull(s, src, tag, NULL, &img, &err) < 0)
                fail_msg("import %s: %s", ref, error_text(err));
        image_source_free(src);
        return img;
}

static char *debugfs_cat(const char *disk, const char *path, int *status) {
        char *out = NULL;
        *status = test_sh_out(&out, NULL, "debugfs -R 'cat %s' '%s' 2>/dev/null", path, disk);
        return out;
}

static bool debugfs_exists(const char *disk, const char *path) {
        char *out = NULL;
        test_sh_out(&out, NULL, "debugfs -R 'stat %s' '%s' 2>&1", path, disk);
        bool found = strstr(out, "Inode:") != NULL;
        free(out);
        return found;
}

/* ---- OCI layout ---- */

static void test_oci_latest(void **state) {
        Store *s = store_new("store-oci");
        StoreImage *img = import_oci(s, "latest", "test/busybox:1");
        const OciConfig *c = img->config;
        assert_string_equal(c->os, "linux");
        assert_string_equal(c->architecture, "amd64");
        assert_int_equal(c->entrypoint.n, 2);
        assert_string_equal(c->entrypoint.v[0], "/bin/sh");
        assert_string_equal(c->cmd.v[0], "echo hello");
        assert_int_equal(c->env.n, 2);
        assert_string_equal(c->env.v[1], "PL_TEST=1");
        assert_string_equal(c->working_dir, "/work");
        assert_string_equal(c->user, "0:0");
        assert_string_equal(c->stop_signal, "SIGINT");
        assert_string_equal(c->label_keys.v[0], "org.example.test");
        assert_string_equal(c->label_values.v[0], "yes");
        assert_string_equal(c->exposed_ports.v[0], "8080/tcp");
        assert_int_equal(img->layers.n, 1);
        assert_non_null(strstr(img->source, ":latest"));

        ext4_img_assert_fsck(img->disk_path);
        int st;
        char *marker = debugfs_cat(img->disk_path, "/etc/pl-test-marker", &st);
        assert_string_equal(marker, "pl-test-image\n");
        free(marker);
        assert_true(debugfs_exists(img->disk_path, "/etc/deleted-later"));

        /* By manifest digest: the same image. */
        char *index = NULL;
        assert_true(asprintf(&index, "%s/index.json", layout) > 0);
        char *text = read_text(index);
        json_t *j = json_loads(text, 0, NULL);
        const char *digest = json_string_value(json_object_get(json_array_get(json_object_get(j, "manifests"), 0), "digest"));
        StoreImage *again = import_oci(s, digest, NULL);
        assert_string_equal(again->id, img->id);
        assert_string_equal(again->manifest_digest, digest);
        store_image_free(again);
        store_image_free(img);
        json_decref(j);
        free(text);
        free(index);
        ImageSource *src = NULL;
        Error *err = NULL;
        assert_int_equal(oci_layout_source_new(layout, "nope", &src, &err), 0);
        assert_int_equal(store_pull(s, src, NULL, NULL, NULL, &err), -ENOENT);
        assert_non_null(strstr(err->message, "layered"));
        error_free(err);
        image_source_free(src);
        store_free(s);
}

static void test_oci_layered_whiteout(void **state) {
        Store *s = store_new("store-oci");
        StoreImage *img = import_oci(s, "layered", "test/busybox:layered");
        assert_int_equal(img->layers.n, 2);
        ext4_img_assert_fsck(img->disk_path);
        assert_false(debugfs_exists(img->disk_path, "/etc/deleted-later"));
        assert_false(debugfs_exists(img->disk_path, "/etc/opaque/old"));
        int st;
        char *t = debugfs_cat(img->disk_path, "/etc/layer2", &st);
        assert_string_equal(t, "layer 2\n");
        free(t);
        t = debugfs_cat(img->disk_path, "/etc/opaque/new", &st);
        assert_string_equal(t, "new in layer 2\n");
        free(t);
        store_image_free(img);
        store_free(s);
}

static void test_oci_hostile_layout(void **state) {
        /* A copy whose manifest blobs are symlinks: never followed. */
        char copy[256];
        snprintf(copy, sizeof copy, "%s/evil-layout", work);
        assert_int_equal(test_sh_out(NULL, NULL, "cp -a '%s' '%s' && cd '%s/blobs/sha256' && for f in *; do mv $f $f.real; "
                                   "ln -s $PWD/$f.real $f; done",
                             layout, copy, copy),
                         0);
        ImageSource *src = NULL;
        Error *err = NULL;
        assert_int_equal(oci_layout_source_new(copy, "latest", &src, &err), 0);
        void *data = NULL;
        size_t n;
        char *mt = NULL;
        assert_int_equal(src->ops->get_manifest(src, NULL, &data, &n, &mt, &err), -ELOOP);
        err = error_free(err);
        assert_int_equal(src->ops->get_manifest(src, "sha256:../../../etc/passwd", &data, &n, &mt, &err), -EINVAL);
        err = error_free(err);
        image_source_free(src);
        /* No oci-layout file: not a layout. */
        assert_int_equal(oci_layout_source_new(work, NULL, &src, &err), -ENOENT);
        error_free(err);
        /* The same code without an Error to fill (not -EIO). */
        assert_int_equal(oci_layout_source_new(work, NULL, &src, NULL), -ENOENT);
}

/* ---- docker save archives, by hand ---- */

static void tar_add(struct archive *a, const char *name, const void *data, size_t n, const char *symlink) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, symlink ? AE_IFLNK : AE_IFREG);
        archive_entry_set_perm(e, 0644);
        if (symlink)
                archive_entry_set_symlink(e, symlink);
        archive_entry_set_size(e, symlink ? 0 : (la_int64_t) n);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (!symlink)
                assert_int_equal(archive_write_data(a, data, n), (la_ssize_t) n);
        archive_entry_free(e);
}

static char *blob_path(const char *digest) {
        char *p = NULL;
        assert_true(asprintf(&p, "%s/blobs/sha256/%s", layout, digest + 7) > 0);
        return p;
}

/* gunzip of a layer blob, with libarchive's raw format. */
static char *gunzip(const char *path, size_t *ret_n) {
        struct archive *a = archive_read_new();
        archive_read_support_filter_all(a);
        archive_read_support_format_raw(a);
        assert_int_equal(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
        struct archive_entry *e;
        assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
        char *buf = NULL;
        size_t n = 0;
        FILE *m = open_memstream(&buf, &n);
        char chunk[65536];
        for (la_ssize_t k; (k = archive_read_data(a, chunk, sizeof chunk)) > 0;)
                fwrite(chunk, 1, (size_t) k, m);
        fclose(m);
        archive_read_free(a);
        *ret_n = n;
        return buf;
}

/* Writes a docker-save archive of the layout's image `tag`: classic has
 * <dir>/layer.tar members (uncompressed); modern puts the (gzip) layers
 * under blobs/sha256 with <dir>/layer.tar symlinks to them, as Docker 25
 * does; evil_layer adds one more Layers entry. */
static void archive_make(const char *out, const char *tag, bool modern, const char *evil_layer) {
        char *index = NULL;
        assert_true(asprintf(&index, "%s/index.json", layout) > 0);
        char *itext = read_text(index);
        json_t *ij = json_loads(itext, 0, NULL), *entry, *mj = NULL;
        size_t i;
        json_array_foreach(json_object_get(ij, "manifests"), i, entry) {
                json_t *ann = json_object_get(entry, "annotations");
                if (strcmp(json_string_value(json_object_get(ann, OCI_LAYOUT_REF_NAME_ANNOTATION)), tag) == 0) {
                        char *p = blob_path(json_string_value(json_object_get(entry, "digest")));
                        char *mtext = read_text(p);
                        mj = json_loads(mtext, 0, NULL);
                        free(mtext);
                        free(p);
                }
        }
        assert_non_null(mj);
        struct archive *a = archive_write_new();
        archive_write_set_format_pax_restricted(a);
        assert_int_equal(archive_write_open_filename(a, out), ARCHIVE_OK);
        const char *cdigest = json_string_value(json_object_get(json_object_get(mj, "config"), "digest"));
        char *cpath = blob_path(cdigest), *ctext = read_text(cpath), name[256];
        snprintf(name, sizeof name, "%s.json", cdigest + 7);
        tar_add(a, name, ctext, strlen(ctext), NULL);
        json_t *manifest = json_pack("[{s:s, s:[s], s:[]}]", "Config", name, "RepoTags", "test/archive:1", "Layers");
        json_t *layers = json_object_get(json_array_get(manifest, 0), "Layers");
        json_t *l;
        json_array_foreach(json_object_get(mj, "layers"), i, l) {
                char *lpath = blob_path(json_string_value(json_object_get(l, "digest")));
                size_t n;
                /* Classic: layer.tar uncompressed; modern: the gzip blob as is. */
                char *tar = modern ? NULL : gunzip(lpath, &n);
                if (modern) {
                        assert_int_equal(read_file_bounded(lpath, 64 << 20, &tar, &n), 0);
                }
                char dir[128], file[256];
                snprintf(dir, sizeof dir, "layer%zu", i);
                snprintf(file, sizeof file, "%s/layer.tar", dir);
                if (modern) {
                        char blob[128], target[256];
                        snprintf(blob, sizeof blob, "blobs/sha256/layer%zu", i);
                        snprintf(target, sizeof target, "../%s", blob);
                        tar_add(a, blob, tar, n, NULL);
                        tar_add(a, file, NULL, 0, target);
                } else {
                        tar_add(a, file, tar, n, NULL);
                }
                json_array_append_new(layers, json_string(file));
                free(tar);
                free(lpath);
        }
        if (evil_layer)
                json_array_append_new(layers, json_string(evil_layer));
        char *mtext = json_dumps(manifest, 0);
        tar_add(a, "manifest.json", mtext, strlen(mtext), NULL);
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
        archive_write_free(a);
        free(mtext);
        json_decref(manifest);
        json_decref(mj);
        json_decref(ij);
        free(ctext);
        free(cpath);
        free(itext);
        free(index);
}

static StoreImage *import_archive(Store *s, const char *path, const char *name) {
        ImageSource *src = NULL;
        StoreImage *img = NULL;
        Error *err = NULL;
        if (docker_archive_source_new(path, name, &src, &err) < 0 ||
            store_pull(s, src, docker_archive_source_repo_tag(src), NULL, &img, &err) < 0)
                fail_msg("import %s: %s", path, error_text(err));
        image_source_free(src);
        return img;
}

static void test_docker_archive(void **state) {
        char classic[256], modern[256];
        snprintf(classic, sizeof classic, "%s/classic.tar", work);
        snprintf(modern, sizeof modern, "%s/modern.tar", work);
        archive_make(classic, "layered", false, NULL);
        archive_make(modern, "layered", true, NULL);

        Store *oci = store_new("store-oci");
        StoreImage *ref = import_oci(oci, "layered", NULL);
        Store *s = store_new("store-archive");
        StoreImage *a = import_archive(s, classic, NULL);
        /* Same config bytes, so the same image id, though the layer blobs
         * differ (uncompressed here, gzip in the layout). */
        assert_string_equal(a->id, ref->id);
        assert_string_not_equal(a->layers.v[0], ref->layers.v[0]);
        assert_string_equal(a->tags.v[0], "docker.io/test/archive:1");
        assert_string_equal(a->config->working_dir, "/work");
        ext4_img_assert_fsck(a->disk_path);
        assert_false(debugfs_exists(a->disk_path, "/etc/deleted-later"));
        int st;
        char *t = debugfs_cat(a->disk_path, "/etc/pl-test-marker", &st);
        assert_string_equal(t, "pl-test-image\n");
        free(t);
        store_image_free(a);
        store_free(s);

        s = store_new("store-archive-modern");
        a = import_archive(s, modern, "test/archive:1");
        assert_string_equal(a->id, ref->id);
        assert_string_equal(a->layers.v[1], ref->layers.v[1]); /* gzip member sniffed as tar+gzip */
        ext4_img_assert_fsck(a->disk_path);
        store_image_free(a);
        /* The classic archive in the OCI store is the image already there. */
        a = import_archive(oci, classic, "docker.io/test/archive:1");
        assert_string_equal(a->id, ref->id);
        store_image_free(a);
        store_image_free(ref);
        store_free(oci);

        /* The synthesised manifests: layer media types sniffed from the bytes. */
        ImageSource *src = NULL;
        Error *err = NULL;
        const char *paths[] = {classic, modern};
        for (int k = 0; k < 2; k++) {
                void *data = NULL;
                size_t n = 0;
                char *mt = NULL;
                assert_int_equal(docker_archive_source_new(paths[k], NULL, &src, &err), 0);
                assert_int_equal(src->ops->get_manifest(src, NULL, &data, &n, &mt, &err), 0);
                assert_string_equal(mt, OCI_MEDIA_TYPE_MANIFEST);
                assert_int_equal(strstr(data, OCI_MEDIA_TYPE_LAYER_GZIP) != NULL, k == 1);
                assert_int_equal(strstr(data, "\"" OCI_MEDIA_TYPE_LAYER_TAR "\"") != NULL, k == 0);
                assert_non_null(strstr(src->ops->describe(src), "docker-archive:"));
                free(data);
                free(mt);
                src = (image_source_free(src), NULL);
        }
        assert_int_equal(docker_archive_source_new(classic, "other:tag", &src, &err), -ENOENT);
        err = error_free(err);
        store_free(s);
}

static void test_docker_archive_hostile(void **state) {
        char path[256];
        ImageSource *src = NULL;
        Error *err = NULL;
        snprintf(path, sizeof path, "%s/evil1.tar", work);
        archive_make(path, "latest", false, "../../etc/passwd");
        assert_int_equal(docker_archive_source_new(path, NULL, &src, &err), -EINVAL);
        assert_non_null(strstr(err->message, "outside the archive"));
        err = error_free(err);

        snprintf(path, sizeof path, "%s/evil2.tar", work);
        archive_make(path, "latest", false, "missing/layer.tar");
        assert_int_equal(docker_archive_source_new(path, NULL, &src, &err), -ENOENT);
        err = error_free(err);

        /* A member named with "..": the archive is refused. */
        snprintf(path, sizeof path, "%s/evil3.tar", work);
        struct archive *a = archive_write_new();
        archive_write_set_format_pax_restricted(a);
        assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
        tar_add(a, "manifest.json", "[]", 2, NULL);
        tar_add(a, "../escape", "x", 1, NULL);
        archive_write_close(a);
        archive_write_free(a);
        assert_int_equal(docker_archive_source_new(path, NULL, &src, &err), -EINVAL);
        err = error_free(err);

        /* Not an archive at all. */
        snprintf(path, sizeof path, "%s/index.json", layout);
        assert_true(docker_archive_source_new(path, NULL, &src, &err) < 0);
        error_free(err);
}

/* ---- overlays and the CLI ---- */

static void test_overlay(void **state) {
        Store *s = store_new("store-oci");
        StoreImage *img = import_oci(s, "latest", "test/busybox:1");
        char disk[256];
        snprintf(disk, sizeof disk, "%s/c1.qcow2", work);
        Error *err = NULL;
        assert_int_equal(store_container_disk_create(s, "test/busybox:1", disk, 1024, &err), -EINVAL);
        err = error_free(err);
        if (store_container_disk_create(s, "test/busybox:1", disk, 2ull << 30, &err) < 0)
                fail_msg("disk create: %s", error_text(err));
        assert_int_equal(store_container_disk_create(s, "test/busybox:1", disk, 0, &err), -EEXIST);
        err = error_free(err);
        char *out = NULL;
        assert_int_equal(test_sh_out(&out, NULL, "qemu-img info --output=json '%s'", disk), 0);
        json_t *j = json_loads(out, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "format")), "qcow2");
        assert_string_equal(json_string_value(json_object_get(j, "backing-filename")), img->disk_path);
        assert_string_equal(json_string_value(json_object_get(j, "backing-filename-format")), "raw");
        assert_int_equal(json_integer_value(json_object_get(j, "virtual-size")), 2ll << 30);
        json_decref(j);
        free(out);

        /* In use: not removable; after the disk goes, it is. */
        assert_int_equal(store_remove(s, "test/busybox:1", &err), -EBUSY);
        err = error_free(err);
        assert_int_equal(store_container_disk_remove(s, disk, &err), 0);
        assert_int_equal(access(disk, F_OK), -1);
        assert_int_equal(store_container_disk_remove(s, disk, &err), -ENOENT);
        err = error_free(err);
        /* A file the store did not make is never deleted. */
        char other[256];
        snprintf(other, sizeof other, "%s/not-a-disk", work);
        assert_int_equal(test_sh_out(NULL, NULL, "echo keep > '%s'", other), 0);
        assert_int_equal(store_container_disk_remove(s, other, &err), -ENOENT);
        assert_non_null(strstr(error_text(err), "not a container disk"));
        err = error_free(err);
        assert_int_equal(access(other, F_OK), 0);
        assert_int_equal(store_remove(s, "test/busybox:1", &err), 0);
        store_image_free(img);
        store_free(s);
}

/* Eight threads create the same container disk at once: exactly one
 * succeeds, the rest get EEXIST, and their failures do not undo the
 * winner's registration (the image stays in use until the disk goes). */
typedef struct DiskRace {
        Store *s;
        const char *path;
        int r;
} DiskRace;

static void *disk_race_thread(void *arg) {
        DiskRace *d = arg;
        Error *err = NULL;
        d->r = store_container_disk_create(d->s, "test/race:1", d->path, 0, &err);
        error_free(err);
        return NULL;
}

static void test_overlay_create_race(void **state) {
        Store *s = store_new("store-race");
        StoreImage *img = import_oci(s, "latest", "test/race:1");
        char disk[256];
        snprintf(disk, sizeof disk, "%s/race.qcow2", work);
        DiskRace d[8];
        pthread_t t[8];
        for (int i = 0; i < 8; i++) {
                d[i] = (DiskRace){.s = s, .path = disk};
                assert_int_equal(pthread_create(&t[i], NULL, disk_race_thread, &d[i]), 0);
        }
        int ok = 0;
        for (int i = 0; i < 8; i++) {
                pthread_join(t[i], NULL);
                if (d[i].r == 0)
                        ok++;
                else
                        assert_int_equal(d[i].r, -EEXIST);
        }
        assert_int_equal(ok, 1);
        assert_int_equal(test_sh_out(NULL, NULL, "qemu-img info '%s' >/dev/null 2>&1", disk), 0);
        Error *err = NULL;
        assert_int_equal(store_remove(s, "test/race:1", &err), -EBUSY);
        err = error_free(err);
        assert_int_equal(store_container_disk_remove(s, disk, &err), 0);
        assert_int_equal(store_remove(s, "test/race:1", &err), 0);
        store_image_free(img);
        store_free(s);
}

static void test_cli(void **state) {
        const char *bin = getenv("PL_IMAGE_BIN");
        if (!bin)
                test_skip_or_fail("PL_IMAGE_BIN, the pl-image binary (run through ctest)");
        char *out = NULL;
        char store[256], errf[256];
        snprintf(store, sizeof store, "%s/store-cli", work);
        snprintf(errf, sizeof errf, "%s/cli.err", work);
        assert_int_equal(test_sh_out(&out, NULL, "'%s' --store '%s' import 'oci:%s:layered' test/cli:1 2>'%s'", bin, store, layout, errf), 0);
        free(out);
        char *err = read_text(errf);
        /* Not a terminal: a plain line when each blob starts and when it is done, no \r. */
        assert_non_null(strstr(err, ": fetching "));
        assert_non_null(strstr(err, ": done "));
        assert_null(strchr(err, '\r'));
        size_t lines = 0;
        for (char *p = err; (p = strstr(p, "blob ")); p++)
                lines++;
        assert_int_equal(lines, 2 * 3); /* config + 2 layers, started and done */
        /* After the download: the disk, layer by layer, then the commit. */
        assert_non_null(strstr(err, "disk: layer 1/2 sha256:"));
        assert_non_null(strstr(err, "disk: layer 2/2 sha256:"));
        assert_non_null(strstr(err, "disk: finishing and committing"));
        free(err);

        assert_int_equal(test_sh_out(&out, NULL, "'%s' --store '%s' list", bin, store), 0);
        assert_non_null(strstr(out, "NAME:TAG"));
        assert_non_null(strstr(out, "docker.io/test/cli:1"));
        free(out);
        assert_int_equal(test_sh_out(&out, NULL, "'%s' --store '%s' inspect test/cli:1", bin, store), 0);
        json_t *j = json_loads(out, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(json_object_get(j, "config"), "WorkingDir")), "/work");
        json_decref(j);
        free(out);
        assert_int_equal(test_sh_out(&out, NULL, "'%s' --store '%s' list --json", bin, store), 0);
        j = json_loads(out, 0, NULL);
        assert_int_equal(json_array_size(j), 1);
        json_decref(j);
        free(out);

        char disk[256];
        snprintf(disk, sizeof disk, "%s/cli.qcow2", work);
        assert_int_equal(test_sh_out(NULL, NULL, "'%s' --store '%s' disk create test/cli:1 '%s' --size 1G", bin, store, disk), 0);
        assert_int_equal(test_sh_out(&out, NULL, "'%s' --store '%s' rm test/cli:1 2>&1", bin, store), 1);
        assert_true(strncmp(out, "pl-image: ", 10) == 0);
        assert_non_null(strstr(out, "in use"));
        free(out);
        assert_int_equal(test_sh_out(NULL, NULL, "'%s' --store '%s' disk rm '%s'", bin, store, disk), 0);
        assert_int_equal(test_sh_out(NULL, NULL, "'%s' --store '%s' rm test/cli:1", bin, store), 0);
        assert_int_equal(test_sh_out(&out, NULL, "'%s' --store '%s' gc", bin, store), 0);
        assert_non_null(strstr(out, "removed 4 blobs")); /* manifest, config, 2 layers */
        free(out);
        assert_int_equal(test_sh_out(&out, NULL, "'%s' --store '%s' inspect nothere 2>&1", bin, store), 1);
        assert_non_null(strstr(out, "pl-image: no image 'nothere'"));
        free(out);
        assert_int_equal(test_sh_out(NULL, NULL, "'%s' --store '%s' bogus 2>/dev/null", bin, store), 2);
        assert_int_equal(test_sh_out(NULL, NULL, "'%s' --store '%s' disk create x 2>/dev/null", bin, store), 2);
}

/* ---- pl-image pull from a real registry on loopback ---- */

/* Global so that group_teardown stops them when an assertion jumps out. */
static RegistryHarness registry_plain, registry_auth;

static void test_cli_pull(void **state) {
        const char *bin = getenv("PL_IMAGE_BIN");
        char *out = NULL, store[256];
        snprintf(store, sizeof store, "%s/store-pull", work);
        if (!bin)
                test_skip_or_fail("PL_IMAGE_BIN, the pl-image binary (run through ctest)");
        if (registry_harness_missing_tool())
                test_skip_or_fail(registry_harness_missing_tool());
        RegistryHarness *hp = &registry_plain, h;
        assert_int_equal(registry_harness_start(hp, NULL, NULL), 0);
        h = *hp;
        assert_int_equal(registry_harness_push(&h, layout, "layered", "test/busybox:layered", false), 0);
        Store *s = store_new("store-oci");
        StoreImage *ref = import_oci(s, "layered", NULL);
        store_free(s);

        assert_int_equal(test_sh_out(&out, NULL, "'%s' --store '%s' pull %s/test/busybox:layered 2>/dev/null", bin, store, h.host),
                         0);
        assert_non_null(strstr(out, ref->id)); /* same config, same image */
        free(out);
        /* By digest: the manifest is checked against it. */
        assert_int_equal(test_sh_out(&out, NULL, "'%s' --store '%s' pull %s/test/busybox@%s 2>/dev/null", bin, store, h.host,
                             ref->manifest_digest),
                         0);
        assert_non_null(strstr(out, ref->id));
        free(out);
        assert_int_equal(test_sh_out(&out, NULL, "'%s' --store '%s' pull %s/test/busybox:nope 2>&1", bin, store, h.host), 1);
        assert_true(strncmp(out, "pl-image: ", 10) == 0);
        free(out);
        store_image_free(ref);
        registry_harness_stop(hp);
}

/* pl-image killed with SIGKILL at several points of an import (blob copy,
 * the bounded first pass, the ext4 build, the renames): after each kill the
 * store lists no image, the next `gc` clears the leftovers, and a final
 * import completes with a clean ext4. The layer is 96 MiB of random bytes so
 * the import takes long enough to be interrupted several times. */
static void test_cli_killed_mid_import(void **state) {
        const char *bin = getenv("PL_IMAGE_BIN");
        if (!bin)
                test_skip_or_fail("PL_IMAGE_BIN, the pl-image binary (run through ctest)");
        char big[256], store[256], *out = NULL;
        snprintf(big, sizeof big, "%s/layout-big", work);
        snprintf(store, sizeof store, "%s/store-killed", work);
        assert_int_equal(test_sh_out(NULL, NULL, "set -e; umoci init --layout '%s'; umoci new --image '%s:big';"
                                   "umoci unpack --rootless --image '%s:big' '%s/bundle' >/dev/null;"
                                   "head -c 96M /dev/urandom > '%s/bundle/rootfs/random.bin';"
                                   "umoci repack --image '%s:big' '%s/bundle' >/dev/null; rm -rf '%s/bundle'",
                             big, big, big, work, work, big, work, work),
                         0);
        /* Kill points 20, 60, 100, ... ms until an import outruns its kill. */
        unsigned interrupted = 0;
        for (unsigned ms = 20; ms < 20000; ms += 40) {
                pid_t pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        int null = open("/dev/null", O_WRONLY);
                        dup2(null, 1);
                        dup2(null, 2);
                        char src[300];
                        snprintf(src, sizeof src, "oci:%s:big", big);
                        execl(bin, bin, "--store", store, "import", src, "big/image:1", (char *) NULL);
                        _exit(127);
                }
                usleep(ms * 1000);
                kill(pid, SIGKILL);
                int st = 0;
                assert_int_equal(waitpid(pid, &st, 0), pid);
                bool finished = WIFEXITED(st);
                fprintf(stderr, "killed after %u ms: %s\n", ms,
                        finished ? "the import had already finished" : "interrupted");
                assert_int_equal(test_sh_out(&out, NULL, "'%s' --store '%s' list --json", bin, store), 0);
                /* A kill can also land after the commit, while the process
                 * exits (slow under ASAN's leak check): then the image is
                 * complete, which the import and fsck below check. */
                if (finished || strstr(out, "big/image:1")) {
                        assert_non_null(strstr(out, "big/image:1"));
                        free(out);
                        break;
                }
                assert_null(strstr(out, "big/image"));
                free(out);
                interrupted++;
                assert_int_equal(test_sh_out(NULL, NULL, "'%s' --store '%s' gc >/dev/null", bin, store), 0);
                assert_int_equal(test_sh_out(&out, NULL, "find '%s/tmp' -mindepth 1 | wc -l", store), 0);
                assert_string_equal(out, "0\n");
                free(out);
        }
        assert_true(interrupted >= 3);
        assert_int_equal(test_sh_out(NULL, NULL, "'%s' --store '%s' import oci:%s:big big/image:1 2>/dev/null", bin, store, big), 0);
        assert_int_equal(test_sh_out(&out, NULL, "'%s' --store '%s' inspect big/image:1", bin, store), 0);
        json_t *j = json_loads(out, 0, NULL);
        free(out);
        assert_non_null(j);
        const char *disk = json_string_value(json_object_get(j, "disk"));
        assert_non_null(disk);
        assert_int_equal(test_sh_out(NULL, NULL, "e2fsck -fn '%s' >/dev/null 2>&1", disk), 0);
        assert_int_equal(test_sh_out(&out, NULL, "debugfs -R 'stat /random.bin' '%s' 2>/dev/null | grep -o 'Size: [0-9]*' | head -n 1", disk), 0);
        assert_string_equal(out, "Size: 100663296\n");
        free(out);
        json_decref(j);
}

/* Adds to the layout a tag `newtag`: tag's image with its one layer
 * recompressed by `compress` (a shell filter: "zstd -q -c", "cat"), under
 * media_type. The config, hence the diff_ids and the image id, stay the
 * same. */
static void layout_recompress(const char *tag, const char *newtag, const char *compress, const char *media_type) {
        char path[512], *out = NULL;
        snprintf(path, sizeof path, "%s/index.json", layout);
        json_t *index = json_load_file(path, 0, NULL);
        assert_non_null(index);
        json_t *entries = json_object_get(index, "manifests"), *entry = NULL;
        size_t i;
        json_array_foreach(entries, i, entry) {
                const char *name = json_string_value(
                        json_object_get(json_object_get(entry, "annotations"), "org.opencontainers.image.ref.name"));
                if (name && strcmp(name, tag) == 0)
                        break;
        }
        assert_true(i < json_array_size(entries));
        snprintf(path, sizeof path, "%s/blobs/sha256/%s", layout,
                 json_string_value(json_object_get(entry, "digest")) + 7);
        json_t *manifest = json_load_file(path, 0, NULL);
        assert_non_null(manifest);
        json_t *layer = json_array_get(json_object_get(manifest, "layers"), 0);
        const char *gz = json_string_value(json_object_get(layer, "digest")) + 7;

        /* New layer blob: gunzip | compress, named by its digest. */
        assert_int_equal(test_sh_out(&out, NULL, "set -e; cd '%s/blobs/sha256'; gzip -dc %s | %s > new.tmp;"
                                   "d=$(sha256sum new.tmp | cut -c1-64); mv new.tmp $d; echo $d $(stat -c %%s $d)",
                             layout, gz, compress),
                         0);
        char hex[65];
        unsigned long long size = 0;
        assert_int_equal(sscanf(out, "%64s %llu", hex, &size), 2);
        free(out);
        char digest[80];
        snprintf(digest, sizeof digest, "sha256:%s", hex);
        json_object_set_new(layer, "digest", json_string(digest));
        json_object_set_new(layer, "size", json_integer((json_int_t) size));
        json_object_set_new(layer, "mediaType", json_string(media_type));

        /* New manifest blob and index entry. */
        char *text = json_dumps(manifest, JSON_COMPACT);
        snprintf(path, sizeof path, "%s/manifest.tmp", layout);
        FILE *f = fopen(path, "w");
        fputs(text, f);
        fclose(f);
        assert_int_equal(test_sh_out(&out, NULL, "cd '%s'; d=$(sha256sum manifest.tmp | cut -c1-64); mv manifest.tmp blobs/sha256/$d;"
                                   "echo $d",
                             layout),
                         0);
        out[strcspn(out, "\n")] = '\0';
        snprintf(digest, sizeof digest, "sha256:%s", out);
        free(out);
        json_t *copy = json_deep_copy(entry);
        json_object_set_new(copy, "digest", json_string(digest));
        json_object_set_new(copy, "size", json_integer((json_int_t) strlen(text)));
        json_object_set_new(json_object_get(copy, "annotations"), "org.opencontainers.image.ref.name",
                            json_string(newtag));
        json_array_append_new(entries, copy);
        free(text);
        snprintf(path, sizeof path, "%s/index.json", layout);
        assert_int_equal(json_dump_file(index, path, JSON_COMPACT), 0);
        json_decref(manifest);
        json_decref(index);
}

/* The same image with its layer as zstd and as a plain tar: each builds a
 * disk with the same files (fresh stores, since the image id is the same). */
static void test_oci_zstd_and_plain_layers(void **state) {
        if (test_sh_out(NULL, NULL, "command -v zstd >/dev/null") != 0)
                fail_msg("zstd missing (scripts/setup.sh)");
        layout_recompress("latest", "zstd", "zstd -q -c", OCI_MEDIA_TYPE_LAYER_ZSTD);
        layout_recompress("latest", "plain", "cat", OCI_MEDIA_TYPE_LAYER_TAR);
        static const char *const tags[] = {"zstd", "plain"};
        for (size_t i = 0; i < ELEMENTSOF(tags); i++) {
                char name[64];
                snprintf(name, sizeof name, "store-%s", tags[i]);
                Store *s = store_new(name);
                StoreImage *img = import_oci(s, tags[i], NULL);
                ext4_img_assert_fsck(img->disk_path);
                int st;
                char *marker = debugfs_cat(img->disk_path, "/etc/pl-test-marker", &st);
                assert_int_equal(st, 0);
                assert_string_equal(marker, "pl-test-image\n");
                free(marker);
                assert_true(debugfs_exists(img->disk_path, "/bin/busybox"));
                store_image_free(img);
                store_free(s);
        }
}

/* A registry whose storage was tampered with: the layer blob it serves has
 * one byte flipped, then is cut short. Each pull fails naming the blob, and
 * the store keeps nothing: no record, no tag, no blob, nothing in tmp/. */
static void test_cli_pull_corrupt_blob(void **state) {
        const char *bin = getenv("PL_IMAGE_BIN");
        char *out = NULL, store[256];
        snprintf(store, sizeof store, "%s/store-pull-corrupt", work);
        if (!bin)
                test_skip_or_fail("PL_IMAGE_BIN, the pl-image binary (run through ctest)");
        if (registry_harness_missing_tool())
                test_skip_or_fail(registry_harness_missing_tool());
        RegistryHarness *hp = &registry_plain, h;
        assert_int_equal(registry_harness_start(hp, NULL, NULL), 0);
        h = *hp;
        assert_int_equal(registry_harness_push(hp, layout, "latest", "bad/busybox:1", false), 0);
        /* The one big blob in the registry's storage is busybox's layer. */
        char *layer = NULL;
        assert_int_equal(test_sh_out(&layer, NULL, "find '%s/data' -name data -size +100k", h.dir), 0);
        layer[strcspn(layer, "\n")] = '\0';
        assert_true(strlen(layer) > 0);

        assert_int_equal(test_sh_out(NULL, NULL, "printf '\\377' | dd of='%s' bs=1 seek=1000 conv=notrunc 2>/dev/null", layer), 0);
        assert_int_equal(test_sh_out(&out, NULL, "'%s' --store '%s' pull %s/bad/busybox:1 2>&1", bin, store, h.host), 1);
        assert_non_null(strstr(out, "digest mismatch"));
        free(out);
        assert_int_equal(test_sh_out(NULL, NULL, "truncate -s 5000 '%s'", layer), 0);
        assert_int_equal(test_sh_out(&out, NULL, "'%s' --store '%s' pull %s/bad/busybox:1 2>&1", bin, store, h.host), 1);
        assert_non_null(strstr(out, "pl-image: "));
        free(out);

        assert_int_equal(test_sh_out(&out, NULL, "'%s' --store '%s' list --json", bin, store), 0);
        assert_null(strstr(out, "bad/busybox"));
        free(out);
        assert_int_equal(test_sh_out(&out, NULL, "find '%s/blobs' '%s/tmp' '%s/images' -mindepth 1 -not -path '*/blobs/sha256' | wc -l", store, store, store), 0);
        assert_string_equal(out, "0\n");
        free(out);
        free(layer);
        registry_harness_stop(hp);
}

/* On a terminal (script(1) gives pl-image a pty) progress is a bar redrawn
 * in place with \r; test_cli covers the plain lines otherwise. */
static void test_cli_progress_on_terminal(void **state) {
        const char *bin = getenv("PL_IMAGE_BIN");
        char *out = NULL, store[256];
        snprintf(store, sizeof store, "%s/store-tty", work);
        if (!bin)
                test_skip_or_fail("PL_IMAGE_BIN, the pl-image binary (run through ctest)");
        if (test_missing_tool("script"))
                test_skip_or_fail("script (util-linux), for a terminal");
        assert_int_equal(test_sh_out(&out, NULL, "script -qec \"'%s' --store '%s' import oci:%s:latest tty/busybox:1\" /dev/null", bin,
                             store, layout),
                         0);
        /* The pty turns every "\n" into "\r\n": a redraw is a "\r" that
         * does not end a line. */
        bool redraw = false;
        for (const char *c = out; (c = strchr(c, '\r')); c++)
                if (c[1] != '\n' && c[1] != '\0')
                        redraw = true;
        assert_true(redraw);
        assert_non_null(strstr(out, "MiB"));
        free(out);
}

/* Basic auth through htpasswd: no credentials fail with a message naming
 * the registry; --creds and a Docker-style auth file both work. */
static void test_cli_pull_auth(void **state) {
        const char *bin = getenv("PL_IMAGE_BIN");
        char *out = NULL, store[256], authfile[256];
        snprintf(store, sizeof store, "%s/store-pull-auth", work);
        snprintf(authfile, sizeof authfile, "%s/auth.json", work);
        if (!bin)
                test_skip_or_fail("PL_IMAGE_BIN, the pl-image binary (run through ctest)");
        if (registry_harness_missing_tool())
                test_skip_or_fail(registry_harness_missing_tool());
        RegistryHarness *hp = &registry_auth, h;
        assert_int_equal(registry_harness_start(hp, "puller", "s3cret"), 0);
        h = *hp;
        assert_int_equal(registry_harness_push(&h, layout, "latest", "private/busybox:1", false), 0);

        /* No auth file may leak in from the environment. */
        const char *env = "env -u REGISTRY_AUTH_FILE -u XDG_RUNTIME_DIR -u DOCKER_CONFIG HOME=/nonexistent";
        assert_int_equal(test_sh_out(&out, NULL, "%s '%s' --store '%s' pull %s/private/busybox:1 2>&1", env, bin, store, h.host), 1);
        assert_non_null(strstr(out, "requires credentials"));
        assert_non_null(strstr(out, h.host));
        free(out);
        assert_int_equal(test_sh_out(&out, NULL, "%s '%s' --store '%s' pull --creds puller:wrong %s/private/busybox:1 2>&1", env, bin,
                             store, h.host),
                         1);
        assert_non_null(strstr(out, "401"));
        free(out);
        /* Nothing was stored by the failures. */
        assert_int_equal(test_sh_out(&out, NULL, "'%s' --store '%s' list --json", bin, store), 0);
        assert_null(strstr(out, "private/busybox"));
        free(out);
        assert_int_equal(test_sh_out(&out, NULL, "%s '%s' --store '%s' pull --creds puller:s3cret %s/private/busybox:1 2>/dev/null",
                             env, bin, store, h.host),
                         0);
        free(out);
        assert_int_equal(test_sh_out(NULL, NULL, "'%s' --store '%s' rm %s/private/busybox:1 >/dev/null", bin, store, h.host), 0);

        /* "puller:s3cret" in base64, under an http:// key with a path, as
         * some tools write it. */
        FILE *f = fopen(authfile, "w");
        assert_non_null(f);
        fprintf(f, "{\"auths\": {\"http://%s/v2/\": {\"auth\": \"cHVsbGVyOnMzY3JldA==\"}}}\n", h.host);
        fclose(f);
        assert_int_equal(test_sh_out(&out, NULL, "%s '%s' --store '%s' pull --auth-file '%s' %s/private/busybox:1 2>/dev/null", env,
                             bin, store, authfile, h.host),
                         0);
        free(out);
        assert_int_equal(test_sh_out(&out, NULL, "%s REGISTRY_AUTH_FILE='%s' '%s' --store '%s' list", env, authfile, bin, store), 0);
        assert_non_null(strstr(out, "private/busybox"));
        free(out);
        registry_harness_stop(hp);
}

static int group_setup(void **state) {
        const char *src = getenv("PL_SOURCE_DIR");
        const char *missing = test_missing_tool("umoci e2fsck debugfs qemu-img /bin/busybox");
        if (missing)
                test_program_skip_or_fail(missing);
        if (!src)
                test_program_skip_or_fail("PL_SOURCE_DIR (run through ctest)");
        if (test_tmpdir_make(work, sizeof work, "test-store-import") < 0)
                return -1;
        snprintf(layout, sizeof layout, "%s/layout", work);
        char *out = NULL;
        if (test_sh_out(&out, NULL, "PATH=$PATH:/sbin:/usr/sbin bash '%s/tests/lib/make-oci-image.sh' '%s' 2>&1", src,
                        layout) != 0)
                fail_msg("make-oci-image.sh: %s", out);
        free(out);
        return 0;
}

static int group_teardown(void **state) {
        registry_harness_stop(&registry_plain);
        registry_harness_stop(&registry_auth);
        return test_tmpdir_remove(work) < 0 ? -1 : 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_oci_latest),
                cmocka_unit_test(test_oci_layered_whiteout),
                cmocka_unit_test(test_oci_hostile_layout),
                cmocka_unit_test(test_docker_archive),
                cmocka_unit_test(test_docker_archive_hostile),
                cmocka_unit_test(test_overlay),
                cmocka_unit_test(test_overlay_create_race),
                cmocka_unit_test(test_cli),
                cmocka_unit_test(test_cli_pull),
                cmocka_unit_test(test_cli_pull_auth),
                cmocka_unit_test(test_cli_pull_corrupt_blob),
                cmocka_unit_test(test_oci_zstd_and_plain_layers),
                cmocka_unit_test(test_cli_killed_mid_import),
                cmocka_unit_test(test_cli_progress_on_terminal),
        };
        return test_run_group(tests, group_setup, group_teardown);
}
