/* test-ext4-layers.c: layer shapes umoci never writes, and hostile layers,
 * through the ext4 writer; the images are read back with libext2fs
 * (tests/lib/ext4-read.c) and checked with "e2fsck -fn".
 *
 * test-ext4-writer.c covers the common shapes (whiteouts, opaque dirs, type
 * replacement, devices, fifos, sparse and empty files, '..' names, symlink
 * parents, a full image, a truncated tar). This file adds:
 *   - shapes: opaque markers at the root (lost+found stays) and below a
 *     recreated directory, a layer's own lost+found, a directory replaced by
 *     a symlink, user.* xattrs and names outside the kernel's namespaces
 *     (skipped), a hard link to a symlink, 255-byte components, a 4000-byte
 *     path, newline and 0xff bytes in names, mtimes before 1970, after 2038
 *     (epoch bits) and past 2446 (clamped);
 *   - hostile: a file and a hard link through a symlink to /etc, hard links
 *     to '../x' and to nothing, whiteouts of '..', '.' and '', over-long
 *     names, xattrs libext2fs refuses (a bad ACL, a 6 KB value), a device
 *     number the kernel cannot hold, a huge declared size with a short body,
 *     corrupt gzip, a layer that is not a tar, a gzip bomb larger than the
 *     image (-ENOSPC quickly, file deleted) and the per-layer entry cap;
 *     a file over a symlink to /etc/passwd replaces the link and leaves
 *     /etc/passwd alone;
 *   - large directories (the in-memory directories of ext4-dir.c): 100,000
 *     entries in one directory, hash-indexed (its time on stderr, never
 *     asserted), a directory filled, half whited out and refilled across
 *     layers, an opaque marker on a large directory, 66,000 subdirectories
 *     (link count 1, then exact again after whiteouts), a two-level hash
 *     tree that shrinks to one level, and an image that is full when the
 *     directory blocks are written at the end of the layer.
 * Layers are built in memfds with libarchive's writer; the one shape it will
 * not write (a short body) is a raw ustar header. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "images/ext4/ext4-writer.h"
#include "lib/ext4-read.h"

typedef struct Ent {
        const char *name;
        mode_t type; /* S_IFREG..., 0 for a hard link */
        unsigned mode;
        const char *data;
        const char *link;
        long long mtime;
        const char *xattr_name, *xattr_value;
        dev_t rdev;
} Ent;

static char tmpdir[64];
static char img[300];

/* ---- layers ---------------------------------------------------------------- */

static void add(struct archive *a, const Ent *t) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, t->name);
        archive_entry_set_filetype(e, t->type ? t->type : AE_IFREG);
        archive_entry_set_perm(e, t->mode ? t->mode : t->type == S_IFDIR ? 0755 : 0644);
        archive_entry_set_mtime(e, t->mtime ? t->mtime : 1600000000, 0);
        if (t->type == 0)
                archive_entry_set_hardlink(e, t->link);
        if (t->type == S_IFLNK)
                archive_entry_set_symlink(e, t->link);
        if (t->type == S_IFCHR || t->type == S_IFBLK)
                archive_entry_set_rdev(e, t->rdev);
        size_t size = t->type == S_IFREG && t->data ? strlen(t->data) : 0;
        archive_entry_set_size(e, (la_int64_t) size);
        if (t->xattr_name)
                archive_entry_xattr_add_entry(e, t->xattr_name, t->xattr_value, strlen(t->xattr_value));
        /* ARCHIVE_WARN: a name that is not UTF-8 is written as it is. */
        assert_true(archive_write_header(a, e) >= ARCHIVE_WARN);
        if (size)
                assert_int_equal(archive_write_data(a, t->data, size), (la_ssize_t) size);
        archive_entry_free(e);
}

static int layer_open(struct archive **ret, bool gzip) {
        int fd = memfd_create("layer", MFD_CLOEXEC);
        assert_true(fd >= 0);
        struct archive *a = archive_write_new();
        assert_int_equal(archive_write_set_format_pax(a), ARCHIVE_OK);
        if (gzip)
                assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
        assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
        *ret = a;
        return fd;
}

static int layer_close(struct archive *a, int fd) {
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
        archive_write_free(a);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        return fd;
}

/* A memfd holding ents (terminated by a NULL name) as a pax tar. */
static int layer(const Ent *ents, bool gzip) {
        struct archive *a;
        int fd = layer_open(&a, gzip);
        for (const Ent *t = ents; t->name; t++)
                add(a, t);
        return layer_close(a, fd);
}

/* A memfd holding raw bytes. */
static int raw_layer(const void *data, size_t len) {
        int fd = memfd_create("raw", MFD_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t) len);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        return fd;
}

/* Writes v as a NUL-terminated octal field of width bytes. */
static void octal(unsigned char *field, size_t width, unsigned long long v) {
        char tmp[32];
        snprintf(tmp, sizeof(tmp), "%0*llo", (int) width - 1, v);
        memcpy(field, tmp, width - 1);
        field[width - 1] = 0;
}

/* One ustar header block for a regular file of the declared size. */
static void ustar_header(unsigned char h[512], const char *name, unsigned long long size) {
        memset(h, 0, 512);
        memcpy(h, name, strnlen(name, 99));
        octal(h + 100, 8, 0644);
        octal(h + 108, 8, 0);
        octal(h + 116, 8, 0);
        octal(h + 124, 12, size);
        octal(h + 136, 12, 1600000000);
        h[156] = '0';
        memcpy(h + 257, "ustar\0" "00", 8);
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (int i = 0; i < 512; i++)
                sum += h[i];
        octal(h + 148, 7, sum);
}

/* Applies the layer fds (closing them) to a fresh image at img of size bytes
 * and finishes it. Returns the first failure (0 on success) and its error. */
static int build_fds(uint64_t size, const int *fds, size_t n, Error **err) {
        unlink(img);
        Ext4Writer *w = NULL;
        int r = ext4_writer_new(&w, img, size, err);
        for (size_t i = 0; i < n; i++) {
                if (r >= 0)
                        r = ext4_writer_apply_layer(w, fds[i], NULL, err);
                close(fds[i]);
        }
        if (r >= 0)
                r = ext4_writer_finish(w, err);
        ext4_writer_free(w);
        return r;
}

static void build_ok(const Ent *lower, const Ent *upper) {
        int fds[2] = {layer(lower, false), upper ? layer(upper, true) : -1};
        Error *err = NULL;
        if (build_fds(64u << 20, fds, upper ? 2 : 1, &err) < 0)
                fail_msg("build: %s", error_text(err));
        ext4_img_assert_fsck(img);
}

/* The layers fail with -code and a message containing needle; the image is
 * gone. */
static void expect_fail_fds(const int *fds, size_t n, uint64_t size, int code, const char *needle) {
        Error *err = NULL;
        int r = build_fds(size, fds, n, &err);
        if (r != -code)
                fail_msg("expected %d (%s), got %d: %s", -code, needle, r, err ? error_text(err) : "no error");
        assert_non_null(err);
        if (!strstr(error_text(err), needle))
                fail_msg("message '%s' lacks '%s'", error_text(err), needle);
        error_free(err);
        assert_int_equal(access(img, F_OK), -1);
}

/* lower may be NULL for a one-layer image. */
static void expect_fail(const Ent *lower, const Ent *upper, int code, const char *needle) {
        int fds[2] = {lower ? layer(lower, false) : -1, layer(upper, false)};
        expect_fail_fds(lower ? fds : fds + 1, lower ? 2 : 1, 64u << 20, code, needle);
}

/* ---- reading back ---------------------------------------------------------- */

static Ext4Img *open_img(void) {
        Ext4Img *e = NULL;
        assert_int_equal(ext4_img_open(&e, img), 0);
        return e;
}

static int stat_of(Ext4Img *e, const char *path, Ext4Stat *st) {
        return ext4_img_stat(e, path, st);
}

static void assert_file(Ext4Img *e, const char *path, const char *want) {
        char *got = NULL;
        size_t len = 0;
        if (ext4_img_read(e, path, &got, &len) < 0)
                fail_msg("%s: not a readable file", path);
        assert_int_equal(len, strlen(want));
        assert_memory_equal(got, want, len);
        free(got);
}

static void assert_absent(Ext4Img *e, const char *path) {
        Ext4Stat st;
        if (stat_of(e, path, &st) != -ENOENT)
                fail_msg("%s: still in the image", path);
}

/* ---- shapes ---------------------------------------------------------------- */

static void test_opaque_and_replace(void **state) {
        static const Ent lower[] = {
                {.name = "d/old", .type = S_IFREG, .data = "old\n"},
                {.name = "d/sub/deep", .type = S_IFREG, .data = "deep\n"},
                {.name = "top", .type = S_IFREG, .data = "top\n"},
                {.name = "dir2link/x", .type = S_IFREG, .data = "x\n"},
                {.name = "wd/inner/f", .type = S_IFREG, .data = "f\n"},
                {0},
        };
        static const Ent upper[] = {
                {.name = "d/sub/new", .type = S_IFREG, .data = "new\n"}, /* before the marker */
                {.name = "d/.wh..wh..opq", .type = S_IFREG},
                {.name = "dir2link", .type = S_IFLNK, .link = "d"},
                {.name = ".wh.wd", .type = S_IFREG},
                {.name = "wd/again", .type = S_IFREG, .data = "again\n"}, /* recreated after its whiteout */
                {0},
        };
        build_ok(lower, upper);
        Ext4Img *e = open_img();
        assert_absent(e, "d/old");
        assert_absent(e, "d/sub/deep");
        assert_file(e, "d/sub/new", "new\n");
        assert_file(e, "top", "top\n");
        Ext4Stat st;
        assert_int_equal(stat_of(e, "dir2link", &st), 0);
        assert_true(S_ISLNK(st.mode));
        assert_absent(e, "wd/inner");
        assert_file(e, "wd/again", "again\n");
        ext4_img_close(e);

        /* An opaque marker at the root hides every lower entry but keeps
         * lost+found, which is the filesystem's, not the image's. */
        static const Ent root_opq[] = {{.name = ".wh..wh..opq", .type = S_IFREG},
                                       {.name = "only", .type = S_IFREG, .data = "1\n"}, {0}};
        build_ok(lower, root_opq);
        e = open_img();
        assert_absent(e, "top");
        assert_absent(e, "d");
        assert_file(e, "only", "1\n");
        assert_int_equal(stat_of(e, "lost+found", &st), 0);
        assert_true(S_ISDIR(st.mode));
        ext4_img_close(e);

        /* A layer's own lost+found file replaces the directory; it is then an
         * image entry like any other, and a root opaque marker hides it (its
         * inode number, reused by "only", must not keep "only" alive). */
        static const Ent own_lf[] = {{.name = "lost+found", .type = S_IFREG, .data = "mine\n"}, {0}};
        build_ok(own_lf, root_opq);
        e = open_img();
        assert_absent(e, "lost+found");
        assert_file(e, "only", "1\n");
        ext4_img_close(e);
}

static void test_links_xattrs_times(void **state) {
        static const Ent ents[] = {
                {.name = "s", .type = S_IFLNK, .link = "target"},
                {.name = "hs", .type = 0, .link = "s"}, /* a hard link to a symlink */
                {.name = "u", .type = S_IFREG, .data = "u\n", .xattr_name = "user.note", .xattr_value = "hello"},
                {.name = "old", .type = S_IFREG, .data = "", .mtime = -86400 * 365LL},
                {.name = "y2040", .type = S_IFREG, .data = "", .mtime = 2208988800LL},  /* past int32 */
                {.name = "y2400", .type = S_IFREG, .data = "", .mtime = 13569465600LL}, /* epoch bits 3 */
                {.name = "y2500", .type = S_IFREG, .data = "", .mtime = 16725225600LL}, /* past ext4's 2446 */
                {0},
        };
        build_ok(ents, NULL);
        Ext4Img *e = open_img();
        Ext4Stat s, hs, st;
        assert_int_equal(stat_of(e, "s", &s), 0);
        assert_int_equal(stat_of(e, "hs", &hs), 0);
        assert_true(S_ISLNK(hs.mode));
        assert_int_equal(s.ino, hs.ino);
        assert_int_equal(s.links, 2);
        char *v = NULL;
        size_t len;
        assert_int_equal(ext4_img_readlink(e, "hs", &v), 0);
        assert_string_equal(v, "target");
        free(v);
        assert_int_equal(ext4_img_xattr(e, "u", "user.note", &v, &len), 0);
        assert_int_equal(len, 5);
        assert_memory_equal(v, "hello", 5);
        free(v);
        assert_int_equal(stat_of(e, "old", &st), 0);
        assert_int_equal(st.mtime, -86400 * 365LL);
        assert_int_equal(stat_of(e, "y2040", &st), 0);
        assert_int_equal(st.mtime, 2208988800LL);
        assert_int_equal(stat_of(e, "y2400", &st), 0);
        assert_int_equal(st.mtime, 13569465600LL);
        assert_int_equal(stat_of(e, "y2500", &st), 0);
        assert_int_equal(st.mtime, (1LL << 34) - (1LL << 31) - 1); /* clamped, not wrapped */
        ext4_img_close(e);
}

/* Names outside the kernel's xattr namespaces are skipped (e2fsck calls an
 * xattr block holding "bogus" corrupt; found by fuzz-ext4-layer), and
 * enough of them to spill out of the inode into a block stay consistent. */
static void test_xattr_namespaces(void **state) {
        struct archive *a;
        int fd = layer_open(&a, false);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, "x");
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, 0);
        static const char *const names[] = {"bogus", "com.apple.quarantine", "user.", "user.a", "user.b",
                                            "trusted.t"};
        char value[80];
        memset(value, 'v', sizeof(value));
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                archive_entry_xattr_add_entry(e, names[i], value, sizeof(value));
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        archive_entry_free(e);
        int fds[] = {layer_close(a, fd)};
        Error *err = NULL;
        if (build_fds(64u << 20, fds, 1, &err) < 0)
                fail_msg("%s", error_text(err));
        ext4_img_assert_fsck(img);
        Ext4Img *x = open_img();
        char *v = NULL;
        size_t len;
        assert_int_equal(ext4_img_xattr(x, "x", "bogus", &v, &len), -ENODATA);
        assert_int_equal(ext4_img_xattr(x, "x", "com.apple.quarantine", &v, &len), -ENODATA);
        for (size_t i = 3; i < sizeof(names) / sizeof(names[0]); i++) {
                assert_int_equal(ext4_img_xattr(x, "x", names[i], &v, &len), 0);
                assert_int_equal(len, sizeof(value));
                free(v);
        }
        ext4_img_close(x);
}

/* 255-byte components are fine; a 4000-byte path of them too; newline and
 * 0xff bytes are kept as they are (Linux allows any byte but '/' and NUL). */
static void test_names(void **state) {
        char c255[256], deep[4100];
        memset(c255, 'c', 255);
        c255[255] = 0;
        size_t n = 0;
        for (int i = 0; i < 16; i++) { /* 16 * (249 + 1) = 4000 bytes */
                memset(deep + n, 'a' + i, 249);
                n += 249;
                deep[n++] = '/';
        }
        deep[n - 1] = 0;
        assert_int_equal(strlen(deep), 3999);
        const Ent ents[] = {
                {.name = c255, .type = S_IFREG, .data = "255\n"},
                {.name = deep, .type = S_IFREG, .data = "deep\n"},
                {.name = "odd/new\nline", .type = S_IFREG, .data = "nl\n"},
                {.name = "odd/\xff\xfe", .type = S_IFREG, .data = "ff\n"},
                {0},
        };
        build_ok(ents, NULL);
        Ext4Img *e = open_img();
        assert_file(e, c255, "255\n");
        assert_file(e, deep, "deep\n");
        assert_file(e, "odd/new\nline", "nl\n");
        assert_file(e, "odd/\xff\xfe", "ff\n");
        ext4_img_close(e);
}

/* ---- hostile ----------------------------------------------------------------- */

static const Ent etc_layer[] = {
        {.name = "etc/passwd", .type = S_IFREG, .data = "root:x:0:0::/root:/bin/sh\n"},
        {.name = "l", .type = S_IFLNK, .link = "/etc"},
        {.name = "pw", .type = S_IFLNK, .link = "/etc/passwd"},
        {0},
};

static void test_hostile_paths(void **state) {
        static const Ent through[] = {{.name = "l/passwd", .type = S_IFREG, .data = "pwned\n"}, {0}};
        expect_fail(etc_layer, through, ELOOP, "layer entry 'l/passwd': parent 'l' is a symlink");
        static const Ent hl_through[] = {{.name = "h", .type = 0, .link = "l/passwd"}, {0}};
        expect_fail(etc_layer, hl_through, ELOOP, "layer entry 'h': parent 'l' is a symlink");
        static const Ent hl_up[] = {{.name = "h", .type = 0, .link = "../x"}, {0}};
        expect_fail(etc_layer, hl_up, EINVAL, "layer entry 'h': hard link target '../x'");
        static const Ent hl_none[] = {{.name = "h", .type = 0, .link = "etc/nope"}, {0}};
        expect_fail(etc_layer, hl_none, ENOENT, "layer entry 'h': hard link target 'etc/nope' not found");
        static const Ent wh_dotdot[] = {{.name = "etc/.wh...", .type = S_IFREG}, {0}};
        expect_fail(etc_layer, wh_dotdot, EINVAL, "layer entry 'etc/.wh...': bad whiteout");
        static const Ent wh_dot[] = {{.name = "etc/.wh..", .type = S_IFREG}, {0}};
        expect_fail(etc_layer, wh_dot, EINVAL, "layer entry 'etc/.wh..': bad whiteout");
        static const Ent wh_empty[] = {{.name = ".wh.", .type = S_IFREG}, {0}};
        expect_fail(etc_layer, wh_empty, EINVAL, "bad whiteout");
        char c256[257];
        memset(c256, 'x', 256);
        c256[256] = 0;
        const Ent too_long[] = {{.name = c256, .type = S_IFREG, .data = "x"}, {0}};
        expect_fail(NULL, too_long, ENAMETOOLONG, "component longer than 255 bytes");
        char path[5000];
        memset(path, 'p', sizeof(path) - 1);
        for (size_t i = 100; i < sizeof(path) - 1; i += 101)
                path[i] = '/';
        path[sizeof(path) - 1] = 0;
        const Ent too_deep[] = {{.name = path, .type = S_IFREG, .data = "x"}, {0}};
        expect_fail(NULL, too_deep, ENAMETOOLONG, "name longer than 4096 bytes");
        /* libext2fs refuses these xattrs: the error carries its message (this
         * path once crashed on the com_err symbol clash). */
        static const Ent bad_acl[] = {{.name = "f", .type = S_IFREG, .data = "f",
                                       .xattr_name = "system.posix_acl_access", .xattr_value = "garbage"}, {0}};
        expect_fail(NULL, bad_acl, EINVAL,
                    "layer entry 'f': extended attribute 'system.posix_acl_access': bad ACL size 7");
        static char big[6000];
        memset(big, 'v', sizeof(big) - 1);
        const Ent big_xattr[] = {{.name = "f", .type = S_IFREG, .data = "f", .xattr_name = "user.big",
                                  .xattr_value = big}, {0}};
        expect_fail(NULL, big_xattr, EINVAL,
                    "layer entry 'f': extended attributes: Insufficient space to store extended attribute data");
        const Ent big_dev[] = {{.name = "dev/x", .type = S_IFCHR, .rdev = makedev(5000, 1)}, {0}};
        expect_fail(NULL, big_dev, EINVAL, "layer entry 'dev/x': device number 5000:1 out of range");

        /* A file over a symlink to /etc/passwd replaces the link and leaves
         * /etc/passwd alone; "/abs" names are made relative (a leading '/' is
         * stripped, as tar and containerd do). */
        static const Ent over[] = {{.name = "pw", .type = S_IFREG, .data = "own\n"},
                                   {.name = "/abs", .type = S_IFREG, .data = "abs\n"}, {0}};
        build_ok(etc_layer, over);
        Ext4Img *e = open_img();
        assert_file(e, "etc/passwd", "root:x:0:0::/root:/bin/sh\n");
        assert_file(e, "pw", "own\n");
        assert_file(e, "abs", "abs\n");
        Ext4Stat st;
        assert_int_equal(stat_of(e, "l", &st), 0);
        assert_true(S_ISLNK(st.mode));
        ext4_img_close(e);
}

static void test_hostile_streams(void **state) {
        /* 8 GiB declared, 1000 bytes there. */
        unsigned char buf[4096] = {0};
        ustar_header(buf, "huge", 8ull << 30);
        memset(buf + 512, 'h', 1000);
        int fd = raw_layer(buf, 1536);
        expect_fail_fds(&fd, 1, 64u << 20, EIO, "layer entry 'huge'");

        /* A valid gzip layer with its middle trashed. */
        static const Ent ents[] = {{.name = "a", .type = S_IFREG, .data = "some text to compress, some text\n"},
                                   {.name = "b", .type = S_IFREG, .data = "more text, more text, more text\n"},
                                   {0}};
        fd = layer(ents, true);
        char gz[4096];
        ssize_t n = read(fd, gz, sizeof(gz));
        close(fd);
        assert_true(n > 100);
        for (ssize_t i = 20; i < n - 12; i += 3)
                gz[i] ^= 0x5a;
        fd = raw_layer(gz, (size_t) n);
        Error *err = NULL;
        assert_true(build_fds(64u << 20, &fd, 1, &err) < 0);
        assert_non_null(strstr(error_text(err), "layer"));
        err = error_free(err);
        assert_int_equal(access(img, F_OK), -1);

        /* Not a tar at all. */
        static const char text[] = "this is not a tar archive, just some words\n";
        fd = raw_layer(text, sizeof(text));
        assert_true(build_fds(64u << 20, &fd, 1, &err) < 0);
        assert_non_null(strstr(error_text(err), "read layer"));
        err = error_free(err);
        assert_int_equal(access(img, F_OK), -1);
}

/* A little gzip (zeros compress about 1000:1) expanding past a 32 MiB image:
 * -ENOSPC within seconds, the unfinished image deleted. */
static void test_gzip_bomb(void **state) {
        struct archive *a;
        int fd = layer_open(&a, true);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, "bomb");
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, 64 << 20);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        static char zeros[1 << 20];
        for (int i = 0; i < 64; i++)
                assert_int_equal(archive_write_data(a, zeros, sizeof(zeros)), sizeof(zeros));
        archive_entry_free(e);
        layer_close(a, fd);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        assert_true(st.st_size < (256 << 10));
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        expect_fail_fds(&fd, 1, EXT4_WRITER_MIN_SIZE, ENOSPC, "layer entry 'bomb'");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_true(t1.tv_sec - t0.tv_sec < 10);
}

/* EXT4_WRITER_MAX_ENTRIES + 1 whiteouts of nothing: -E2BIG. There is no knob
 * to lower the cap; whiteouts of missing names are cheap enough (ustar, no
 * pax headers, gzip) to reach the real one. */
static void test_entry_cap(void **state) {
        int fd = memfd_create("many", MFD_CLOEXEC);
        assert_true(fd >= 0);
        struct archive *a = archive_write_new();
        assert_int_equal(archive_write_set_format_ustar(a), ARCHIVE_OK);
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
        assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, ".wh.nothing");
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, 0);
        for (unsigned i = 0; i <= EXT4_WRITER_MAX_ENTRIES; i++)
                assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        archive_entry_free(e);
        layer_close(a, fd);
        expect_fail_fds(&fd, 1, 64u << 20, E2BIG, "more than 1000000 entries");
}

/* ---- large directories ----------------------------------------------------- */

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Adds one entry named fmt % i, for i in [from, to) stepping by step. */
static void add_range(struct archive *a, const char *fmt, unsigned from, unsigned to, unsigned step, mode_t type,
                      const char *data) {
        char name[64];
        for (unsigned i = from; i < to; i += step) {
                snprintf(name, sizeof(name), fmt, i);
                add(a, &(Ent) {.name = name, .type = type, .data = data});
        }
}

static int count_under(const char *path, const Ext4Stat *st, void *userdata) {
        size_t *n = userdata;
        if (strncmp(path, "d/", 2) == 0 && !strchr(path + 2, '/'))
                n[0]++;
        return 0;
}

/* Entries directly in "d". */
static size_t count_d(Ext4Img *e) {
        size_t n = 0;
        assert_int_equal(ext4_img_walk(e, count_under, &n), 0);
        return n;
}

/* Whether debugfs sees dir (absolute) as a hash tree of levels index levels. */
static bool is_htree(const char *dir, int levels) {
        char cmd[1400];
        snprintf(cmd, sizeof(cmd), "debugfs -R 'htree %s' %s 2>/dev/null | grep -q 'Indirect levels: %d'", dir, img,
                 levels);
        return system(cmd) == 0;
}

static void build_big(const int *fds, size_t n, uint64_t entries) {
        Error *err = NULL;
        double t0 = now();
        if (build_fds(ext4_size_for(1u << 20, entries), fds, n, &err) < 0)
                fail_msg("build: %s", error_text(err));
        fprintf(stderr, "# %llu entries in %zu layer(s): built in %.2f s\n", (unsigned long long) entries, n,
                now() - t0);
        ext4_img_assert_fsck(img);
}

static void test_big_dir(void **state) {
        struct archive *a;
        int fd = layer_open(&a, true);
        add(a, &(Ent) {.name = "d", .type = S_IFDIR, .mode = 0700});
        add_range(a, "d/f%06u", 0, 100000, 1, S_IFREG, NULL);
        add(a, &(Ent) {.name = "d/f050000", .type = S_IFREG, .data = "again\n"}); /* replaces */
        add(a, &(Ent) {.name = "d/sub/x", .type = S_IFREG, .data = "x\n"});
        add(a, &(Ent) {.name = "d/f000007", .type = S_IFLNK, .link = "f000008"});
        add(a, &(Ent) {.name = "d/h", .type = 0, .link = "d/f099999"});
        layer_close(a, fd);
        build_big(&fd, 1, 100005);
        Ext4Img *e = open_img();
        Ext4Stat st;
        assert_int_equal(stat_of(e, "d", &st), 0);
        assert_int_equal(st.mode, S_IFDIR | 0700);
        assert_int_equal(st.links, 3); /* ".", its entry, sub's ".." */
        assert_file(e, "d/f000000", "");
        assert_file(e, "d/f050000", "again\n");
        assert_file(e, "d/sub/x", "x\n");
        char *target = NULL;
        assert_int_equal(ext4_img_readlink(e, "d/f000007", &target), 0);
        assert_string_equal(target, "f000008");
        free(target);
        Ext4Stat h;
        assert_int_equal(stat_of(e, "d/h", &h), 0);
        assert_int_equal(stat_of(e, "d/f099999", &st), 0);
        assert_int_equal(h.ino, st.ino);
        assert_int_equal(st.links, 2);
        assert_absent(e, "d/f100000");
        assert_int_equal(count_d(e), 100000 + 2);
        ext4_img_close(e);
        assert_true(is_htree("/d", 0));
        assert_false(is_htree("/", 0));
}

/* Filled, half whited out (and a few re-added in the same layer), refilled. */
static void test_big_dir_refill(void **state) {
        struct archive *a;
        int fds[3];
        fds[0] = layer_open(&a, true);
        add_range(a, "d/f%05u", 0, 20000, 1, S_IFREG, "one\n");
        layer_close(a, fds[0]);
        fds[1] = layer_open(&a, true);
        add_range(a, "d/.wh.f%05u", 0, 20000, 2, S_IFREG, NULL);
        add_range(a, "d/f%05u", 0, 100, 4, S_IFREG, "two\n"); /* back in the same layer */
        add_range(a, "d/g%05u", 0, 5000, 1, S_IFDIR, NULL);
        layer_close(a, fds[1]);
        fds[2] = layer_open(&a, true);
        add_range(a, "d/f%05u", 0, 20000, 4, S_IFREG, "three\n");
        add_range(a, "d/.wh.g%05u", 0, 5000, 2, S_IFREG, NULL);
        layer_close(a, fds[2]);
        build_big(fds, 3, 50000);
        Ext4Img *e = open_img();
        assert_file(e, "d/f00000", "three\n");
        assert_file(e, "d/f00001", "one\n");
        assert_absent(e, "d/f00002");
        assert_file(e, "d/f19996", "three\n");
        assert_absent(e, "d/f19998");
        assert_absent(e, "d/g00000");
        Ext4Stat st;
        assert_int_equal(stat_of(e, "d/g00001", &st), 0);
        assert_true(S_ISDIR(st.mode));
        assert_int_equal(stat_of(e, "d", &st), 0);
        assert_int_equal(st.links, 2 + 2500);
        assert_int_equal(count_d(e), 10000 + 5000 + 2500);
        ext4_img_close(e);
}

static void test_big_dir_opaque(void **state) {
        struct archive *a;
        int fds[2];
        fds[0] = layer_open(&a, true);
        add_range(a, "d/f%05u", 0, 30000, 1, S_IFREG, "old\n");
        add(a, &(Ent) {.name = "d/sub/deep", .type = S_IFREG, .data = "deep\n"});
        layer_close(a, fds[0]);
        fds[1] = layer_open(&a, true);
        add(a, &(Ent) {.name = "d/f00010", .type = S_IFREG, .data = "kept\n"}); /* before the marker */
        add(a, &(Ent) {.name = "d/.wh..wh..opq", .type = S_IFREG});
        add(a, &(Ent) {.name = "d/new/x", .type = S_IFREG, .data = "x\n"});
        layer_close(a, fds[1]);
        build_big(fds, 2, 30010);
        Ext4Img *e = open_img();
        assert_file(e, "d/f00010", "kept\n");
        assert_file(e, "d/new/x", "x\n");
        assert_absent(e, "d/f00000");
        assert_absent(e, "d/f29999");
        assert_absent(e, "d/sub");
        assert_int_equal(count_d(e), 2);
        ext4_img_close(e);
        assert_false(is_htree("/d", 0)); /* two entries: linear again */
}

/* Past 507 leaf blocks the hash tree gets a second level; when half the
 * names go, it shrinks back to one level and the blocks past its end. */
/* A layer of 250-byte names "<prefix>%0250u" for i in [0, n) by step; every
 * 1000th holds data. */
static int long_names_layer(const char *prefix, unsigned n, unsigned step) {
        struct archive *a;
        int fd = layer_open(&a, true);
        char name[300];
        for (unsigned i = step == 1 ? 0 : 1; i < n; i += step) {
                snprintf(name, sizeof(name), "%s%0250u", prefix, i);
                add(a, &(Ent) {.name = name, .type = S_IFREG, .data = i % 1000 ? NULL : "1000th\n"});
        }
        return layer_close(a, fd);
}

static void test_htree_levels(void **state) {
        int fds[2] = {long_names_layer("d/", 10000, 1)}; /* 15 a block: 667 leaves */
        build_big(fds, 1, 10000);
        assert_true(is_htree("/d", 1));
        fds[0] = long_names_layer("d/", 10000, 1);
        fds[1] = long_names_layer("d/.wh.", 10000, 2); /* the odd ones */
        build_big(fds, 2, 10000);
        assert_true(is_htree("/d", 0));
        Ext4Img *e = open_img();
        char name[300];
        snprintf(name, sizeof(name), "d/%0250u", 3000);
        assert_file(e, name, "1000th\n");
        snprintf(name, sizeof(name), "d/%0250u", 3001);
        assert_absent(e, name);
        assert_int_equal(count_d(e), 5000);
        Ext4Stat st;
        assert_int_equal(stat_of(e, "d", &st), 0);
        assert_true(st.size < 400u * 4096u);
        ext4_img_close(e);
}

/* The directory blocks are written at the end of the layer: when the image
 * is full by then, the layer fails with -ENOSPC and the image is gone. */
static void test_big_dir_full(void **state) {
        size_t size = 6676u * 4096u; /* of the 6903 free blocks (7927 less a 1024-block journal) */
        char *data = malloc(size + 1);
        assert_non_null(data);
        memset(data, 'x', size);
        data[size] = 0;
        int fds[2] = {layer((const Ent[]) {{.name = "big", .type = S_IFREG, .data = data}, {0}}, true),
                      long_names_layer("d/", 4000, 1)}; /* 4000 x 260 bytes: 267 blocks */
        free(data);
        expect_fail_fds(fds, 2, 32u << 20, ENOSPC, "write directory");
}

/* Past 65000 subdirectories a directory's link count is 1; after whiteouts
 * bring it under the limit, the exact count comes back. */
static void test_many_subdirs(void **state) {
        struct archive *a;
        int fds[2];
        fds[0] = layer_open(&a, true);
        add_range(a, "d/s%05u", 0, 66000, 1, S_IFDIR, NULL);
        layer_close(a, fds[0]);
        build_big(fds, 1, 66000);
        Ext4Img *e = open_img();
        Ext4Stat st;
        assert_int_equal(stat_of(e, "d", &st), 0);
        assert_int_equal(st.links, 1);
        ext4_img_close(e);
        fds[0] = layer_open(&a, true);
        add_range(a, "d/s%05u", 0, 66000, 1, S_IFDIR, NULL);
        layer_close(a, fds[0]);
        fds[1] = layer_open(&a, true);
        add_range(a, "d/.wh.s%05u", 0, 2000, 1, S_IFREG, NULL);
        layer_close(a, fds[1]);
        build_big(fds, 2, 66000);
        e = open_img();
        assert_int_equal(stat_of(e, "d", &st), 0);
        assert_int_equal(st.links, 2 + 64000);
        assert_absent(e, "d/s01999");
        assert_int_equal(stat_of(e, "d/s02000", &st), 0);
        assert_int_equal(count_d(e), 64000);
        ext4_img_close(e);
}

static int setup(void **state) {
        const char *missing = test_missing_tool("e2fsck debugfs");
        if (missing)
                test_program_skip_or_fail(missing);
        if (test_tmpdir_make(tmpdir, sizeof tmpdir, "test-ext4-layers") < 0)
                return -1;
        snprintf(img, sizeof(img), "%s/t.img", tmpdir);
        return 0;
}

static int teardown(void **state) {
        return test_tmpdir_remove(tmpdir) < 0 ? -1 : 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_opaque_and_replace), cmocka_unit_test(test_links_xattrs_times),
                cmocka_unit_test(test_names),              cmocka_unit_test(test_xattr_namespaces),
                cmocka_unit_test(test_hostile_paths),
                cmocka_unit_test(test_hostile_streams),    cmocka_unit_test(test_gzip_bomb),
                cmocka_unit_test(test_entry_cap),
                cmocka_unit_test(test_big_dir),            cmocka_unit_test(test_big_dir_refill),
                cmocka_unit_test(test_big_dir_opaque),     cmocka_unit_test(test_many_subdirs),
                cmocka_unit_test(test_big_dir_full),       cmocka_unit_test(test_htree_levels),
        };
        return test_run_group(tests, setup, teardown);
}
