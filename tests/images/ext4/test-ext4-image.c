/* test-ext4-image.c: the ext4 writer against umoci on a real OCI image.
 *
 * tests/lib/make-oci-image.sh builds an image layout (busybox userland,
 * setuid file, hard link, 200-byte name; tag "layered" adds a layer with
 * whiteouts). For each tag the test finds the manifest in index.json
 * (jansson), parses it with images/oci/oci-manifest.h, checks every layer blob's
 * digest and applies the layers with ext4_writer; "e2fsck -fn" must be clean.
 * The reference is "umoci unpack" (not rootless: the test runs as root so
 * owners are the tar headers' owners, and skips otherwise: tests/lib/test-skip.h) of the
 * same tag.
 *
 * How the image is read: with libext2fs through tests/lib/ext4-read.c,
 * not with "debugfs rdump", because rdump drops setuid/setgid/sticky bits,
 * nanoseconds and hard links, and per-path debugfs calls need shell quoting
 * of names. The reader follows no symlink, so every field comes straight
 * from the inode. For every path of the unpacked rootfs (nftw, no follow)
 * the image must have the same type, permission bits including setuid,
 * uid/gid, link count, mtime (seconds and nanoseconds), size and SHA-256 of
 * regular files, symlink target and device numbers; hard links must map
 * one-to-one (same rootfs inode <=> same image inode); and the image must
 * hold nothing else (lost+found aside). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "images/oci/digest.h"
#include "images/ext4/ext4-writer.h"
#include "images/oci/oci-manifest.h"
#include "lib/ext4-read.h"

#define MAX_INODES 4096

static char tmpdir[64];
static char layout[256];

/* ---- building ------------------------------------------------------------- */

/* The manifest digest hex of tag in layout/index.json. */
static char *tag_manifest_hex(const char *tag) {
        char path[512];
        snprintf(path, sizeof(path), "%s/index.json", layout);
        json_error_t jerr;
        json_t *index = json_load_file(path, 0, &jerr);
        if (!index)
                fail_msg("index.json: %s", jerr.text);
        char *hex = NULL;
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(index, "manifests"), i, m) {
                const char *name = json_string_value(
                        json_object_get(json_object_get(m, "annotations"), "org.opencontainers.image.ref.name"));
                const char *digest = json_string_value(json_object_get(m, "digest"));
                if (name && digest && strcmp(name, tag) == 0) {
                        assert_int_equal(digest_parse_check(digest), 0);
                        hex = strdup(digest + strlen(DIGEST_SHA256_PREFIX));
                }
        }
        json_decref(index);
        if (!hex)
                fail_msg("tag %s not in index.json", tag);
        return hex;
}

static void blob_path(char *buf, size_t size, const char *digest) {
        snprintf(buf, size, "%s/blobs/sha256/%s", layout,
                 strncmp(digest, DIGEST_SHA256_PREFIX, 7) == 0 ? digest + 7 : digest);
}

/* Builds img from tag's layers; returns the number of layers. */
static size_t build_image(const char *tag, const char *img) {
        char path[512];
        char *hex = tag_manifest_hex(tag);
        blob_path(path, sizeof(path), hex);
        free(hex);
        char *doc = NULL;
        size_t len = 0;
        assert_int_equal(read_file_bounded(path, OCI_JSON_MAX, &doc, &len), 0);
        OciManifest *m = NULL;
        Error *err = NULL;
        if (oci_manifest_parse(doc, len, &m, &err) < 0)
                fail_msg("manifest of %s: %s", tag, error_text(err));
        free(doc);

        Ext4Writer *w = NULL;
        if (ext4_writer_new(&w, img, ext4_size_for(64u << 20, 20000), &err) < 0)
                fail_msg("%s", error_text(err));
        for (size_t i = 0; i < m->n_layers; i++) {
                blob_path(path, sizeof(path), m->layers[i].digest);
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                assert_true(fd >= 0);
                if (digest_verify_fd(fd, m->layers[i].digest, m->layers[i].size, &err) < 0)
                        fail_msg("layer %zu: %s", i, error_text(err));
                assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
                Ext4LayerStats stats;
                if (ext4_writer_apply_layer(w, fd, &stats, &err) < 0)
                        fail_msg("layer %zu of %s: %s", i, tag, error_text(err));
                close(fd);
                assert_true(stats.entries > 0);
        }
        if (ext4_writer_finish(w, &err) < 0)
                fail_msg("finish: %s", error_text(err));
        ext4_writer_free(w);
        size_t n = m->n_layers;
        oci_manifest_free(m);
        return n;
}

/* ---- comparing ------------------------------------------------------------ */

typedef struct Compare {
        Ext4Img *img;
        size_t root_len; /* of the rootfs path */
        size_t count;
        ino_t host_ino[MAX_INODES]; /* hard link map, one entry per multi-link inode */
        uint32_t img_ino[MAX_INODES];
        size_t n_links;
} Compare;

static Compare *cmp; /* nftw has no user data */

static char *sha256_of(const char *data, size_t len) {
        char *hex = NULL;
        assert_int_equal(digest_buffer_hex(data, len, &hex), 0);
        return hex;
}

static void compare_content(const char *fpath, const char *rel) {
        char *want = NULL, *got = NULL;
        size_t want_len = 0, got_len = 0;
        assert_int_equal(read_file_bounded(fpath, 64u << 20, &want, &want_len), 0);
        if (ext4_img_read(cmp->img, rel, &got, &got_len) < 0)
                fail_msg("%s: cannot read from the image", rel);
        char *h1 = sha256_of(want, want_len), *h2 = sha256_of(got, got_len);
        if (strcmp(h1, h2) != 0)
                fail_msg("%s: content %s in the image, %s unpacked", rel, h2, h1);
        free(h1);
        free(h2);
        free(want);
        free(got);
}

/* Same rootfs inode <=> same image inode, for inodes with several links. */
static void compare_link_identity(const struct stat *st, const Ext4Stat *es, const char *rel) {
        for (size_t i = 0; i < cmp->n_links; i++) {
                bool host_same = cmp->host_ino[i] == st->st_ino, img_same = cmp->img_ino[i] == es->ino;
                if (host_same != img_same)
                        fail_msg("%s: hard link identity differs (image inode %u)", rel, es->ino);
                if (host_same)
                        return;
        }
        assert_true(cmp->n_links < MAX_INODES);
        cmp->host_ino[cmp->n_links] = st->st_ino;
        cmp->img_ino[cmp->n_links++] = es->ino;
}

static int compare_one(const char *fpath, const struct stat *st, int flag, struct FTW *ftw) {
        const char *rel = fpath + cmp->root_len;
        rel += strspn(rel, "/");
        if (!*rel)
                return 0; /* the rootfs directory itself: umoci's, not the layer's */
        cmp->count++;
        Ext4Stat es;
        if (ext4_img_stat(cmp->img, rel, &es) < 0)
                fail_msg("%s: missing from the image", rel);
        if ((es.mode & S_IFMT) != (st->st_mode & S_IFMT) || (es.mode & 07777) != (st->st_mode & 07777))
                fail_msg("%s: mode 0%o in the image, 0%o unpacked", rel, es.mode, st->st_mode);
        if (es.uid != st->st_uid || es.gid != st->st_gid)
                fail_msg("%s: owner %u:%u in the image, %u:%u unpacked", rel, es.uid, es.gid, st->st_uid, st->st_gid);
        if (es.links != st->st_nlink)
                fail_msg("%s: %u links in the image, %lu unpacked", rel, es.links, (unsigned long) st->st_nlink);
        if (es.mtime != st->st_mtim.tv_sec || es.mtime_nsec != (uint32_t) st->st_mtim.tv_nsec)
                fail_msg("%s: mtime %lld.%09u in the image, %lld.%09ld unpacked", rel, (long long) es.mtime,
                         es.mtime_nsec, (long long) st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
        if (S_ISREG(st->st_mode)) {
                if (es.size != (uint64_t) st->st_size)
                        fail_msg("%s: size %llu in the image, %lld unpacked", rel, (unsigned long long) es.size,
                                 (long long) st->st_size);
                compare_content(fpath, rel);
        }
        if (S_ISLNK(st->st_mode)) {
                char want[4096];
                ssize_t n = readlink(fpath, want, sizeof(want) - 1);
                assert_true(n > 0);
                want[n] = 0;
                char *got = NULL;
                assert_int_equal(ext4_img_readlink(cmp->img, rel, &got), 0);
                if (strcmp(got, want) != 0)
                        fail_msg("%s: symlink to '%s' in the image, '%s' unpacked", rel, got, want);
                free(got);
        }
        if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
                assert_true(es.rdev_major == major(st->st_rdev) && es.rdev_minor == minor(st->st_rdev));
        if (!S_ISDIR(st->st_mode) && st->st_nlink > 1)
                compare_link_identity(st, &es, rel);
        return 0;
}

static int count_image(const char *path, const Ext4Stat *st, void *userdata) {
        size_t *n = userdata;
        if (strcmp(path, "lost+found") != 0)
                (*n)++;
        return 0;
}

/* Unpacks tag with umoci and compares it with img; returns the entry count. */
static size_t compare_with_umoci(const char *tag, const char *img) {
        char bundle[512], cmd[1400];
        snprintf(bundle, sizeof(bundle), "%s/bundle-%s", tmpdir, tag);
        snprintf(cmd, sizeof(cmd), "umoci unpack --image '%s:%s' '%s' >%s/umoci.log 2>&1", layout, tag, bundle, tmpdir);
        assert_int_equal(system(cmd), 0);
        char rootfs[600];
        snprintf(rootfs, sizeof(rootfs), "%s/rootfs", bundle);

        cmp = calloc(1, sizeof(*cmp));
        assert_non_null(cmp);
        assert_int_equal(ext4_img_open(&cmp->img, img), 0);
        cmp->root_len = strlen(rootfs);
        assert_int_equal(nftw(rootfs, compare_one, 32, FTW_PHYS), 0);
        size_t in_image = 0;
        assert_int_equal(ext4_img_walk(cmp->img, count_image, &in_image), 0);
        if (in_image != cmp->count)
                fail_msg("%s: %zu entries in the image, %zu unpacked", tag, in_image, cmp->count);
        size_t count = cmp->count;
        ext4_img_close(cmp->img);
        free(cmp);
        cmp = NULL;
        return count;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_latest(void **state) {
        char img[512];
        snprintf(img, sizeof(img), "%s/latest.img", tmpdir);
        assert_int_equal(build_image("latest", img), 1);
        ext4_img_assert_fsck(img);
        assert_true(compare_with_umoci("latest", img) > 250); /* busybox applets */

        /* The shapes the image was made for, named so a failure is obvious. */
        Ext4Img *e = NULL;
        assert_int_equal(ext4_img_open(&e, img), 0);
        Ext4Stat st, st2;
        assert_int_equal(ext4_img_stat(e, "usr/bin/suid-tool", &st), 0);
        assert_int_equal(st.mode, S_IFREG | 04755);
        assert_int_equal(ext4_img_stat(e, "etc/hardlink-a", &st), 0);
        assert_int_equal(ext4_img_stat(e, "etc/hardlink-b", &st2), 0);
        assert_int_equal(st.ino, st2.ino);
        assert_int_equal(st.links, 2);
        char name[256] = "etc/";
        memset(name + 4, 'n', 200);
        assert_int_equal(ext4_img_stat(e, name, &st), 0);
        assert_int_equal(ext4_img_stat(e, "tmp", &st), 0);
        assert_int_equal(st.mode, S_IFDIR | 01777);
        ext4_img_close(e);
}

static void test_layered(void **state) {
        char img[512];
        snprintf(img, sizeof(img), "%s/layered.img", tmpdir);
        assert_int_equal(build_image("layered", img), 2);
        ext4_img_assert_fsck(img);
        compare_with_umoci("layered", img);

        Ext4Img *e = NULL;
        assert_int_equal(ext4_img_open(&e, img), 0);
        Ext4Stat st;
        assert_int_equal(ext4_img_stat(e, "etc/deleted-later", &st), -ENOENT);
        assert_int_equal(ext4_img_stat(e, "etc/opaque/old", &st), -ENOENT);
        assert_int_equal(ext4_img_stat(e, "etc/.wh.deleted-later", &st), -ENOENT);
        char *data = NULL;
        size_t len;
        assert_int_equal(ext4_img_read(e, "etc/opaque/new", &data, &len), 0);
        assert_string_equal(data, "new in layer 2\n");
        free(data);
        assert_int_equal(ext4_img_read(e, "etc/layer2", &data, &len), 0);
        free(data);
        ext4_img_close(e);
}

static int setup(void **state) {
        if (geteuid() != 0)
                test_program_skip_or_fail("root (umoci unpack keeps the layers' owners only as root)");
        const char *missing = test_missing_tool("umoci e2fsck /bin/busybox");
        if (missing)
                test_program_skip_or_fail(missing);
        const char *src = getenv("PL_SOURCE_DIR");
        if (!src)
                test_program_skip_or_fail("PL_SOURCE_DIR (run through ctest)");
        if (test_tmpdir_make(tmpdir, sizeof tmpdir, "test-ext4-image") < 0)
                return -1;
        snprintf(layout, sizeof(layout), "%s/layout", tmpdir);
        return test_sh("bash '%s/tests/lib/make-oci-image.sh' '%s' >/dev/null", src, layout) == 0 ? 0 : -1;
}

static int teardown(void **state) {
        return test_tmpdir_remove(tmpdir) < 0 ? -1 : 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_latest),
                cmocka_unit_test(test_layered),
        };
        return test_run_group(tests, setup, teardown);
}
