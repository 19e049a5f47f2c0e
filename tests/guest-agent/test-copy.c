/* test-copy.c: copy-in, copy-out, stat and remove inside a container root.
 *
 * Every test gets a fresh sandbox: /tmp/pl-test-copy.XXXXXX/ holding "root" (the
 * container root) and "outside" (a directory with one file, "keep", that
 * must survive every attack). Archives are built with libarchive in a memfd;
 * results are checked on disk with lstat/readlink/read. Running as root and
 * as an unprivileged user are both supported: owner and device node checks
 * adapt to geteuid(). */
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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/base/error.h"
#include "common/base/fs-util.h"
#include "common/base/macro.h"
#include "guest-agent/copy.h"

typedef struct Sandbox {
        char outer[200];
        char root[256];
        char outside[256];
        int root_fd;
} Sandbox;

/* ---- file helpers (the rest are tests/lib's) ------------------------------ */

static bool exists_in(const char *dir, const char *name) {
        _cleanup_free_ char *p = test_pathf("%s/%s", dir, name);
        return test_exists(p);
}

/* ---- sandbox --------------------------------------------------------------- */

static int sandbox_setup(void **state) {
        Sandbox *s = calloc(1, sizeof *s);
        assert_non_null(s);
        assert_int_equal(test_tmpdir_make(s->outer, sizeof s->outer, "test-copy"), 0);
        snprintf(s->root, sizeof s->root, "%s/root", s->outer);
        snprintf(s->outside, sizeof s->outside, "%s/outside", s->outer);
        assert_int_equal(mkdir(s->root, 0755), 0);
        assert_int_equal(mkdir(s->outside, 0755), 0);
        _cleanup_free_ char *keep = test_pathf("%s/keep", s->outside);
        test_write_file(keep, "keep");
        s->root_fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(s->root_fd >= 0);
        *state = s;
        return 0;
}

static int sandbox_teardown(void **state) {
        Sandbox *s = *state;
        safe_close(s->root_fd);
        char outer[sizeof s->outer];
        snprintf(outer, sizeof outer, "%s", s->outer);
        assert_int_equal(test_tmpdir_remove(s->outer), 0);
        assert_true(getenv("PL_KEEP_TEST_DIRS") || !test_exists(outer));
        free(s);
        return 0;
}

/* Nothing but "root" and "outside" next to the root, "outside" untouched,
 * and nothing created in the host's own "/". */
static void assert_outside_untouched(Sandbox *s) {
        assert_int_equal(test_count_entries(s->outer), 2);
        assert_int_equal(test_count_entries(s->outside), 1);
        _cleanup_free_ char *keep_path = test_pathf("%s/keep", s->outside);
        _cleanup_free_ char *keep = test_read_file(keep_path, NULL);
        assert_non_null(keep);
        assert_string_equal(keep, "keep");
        assert_false(test_exists("/evil"));
        assert_false(test_exists("/tmp/evil"));
}

/* ---- archive building ------------------------------------------------------ */

typedef struct Spec {
        const char *name;
        mode_t type; /* S_IFREG, ... */
        mode_t perm;
        const char *data; /* file contents, or symlink target */
        const char *hardlink;
        time_t mtime;
        uid_t uid;
        gid_t gid;
        dev_t rdev;
        size_t size; /* for binary data; 0: strlen(data) */
} Spec;

typedef struct Tar {
        struct archive *a;
        int fd;
} Tar;

static Tar tar_new(void) {
        Tar t = {.fd = memfd_create("tar", MFD_CLOEXEC), .a = archive_write_new()};
        assert_true(t.fd >= 0);
        assert_non_null(t.a);
        assert_int_equal(archive_write_set_format_pax_restricted(t.a), ARCHIVE_OK);
        assert_int_equal(archive_write_open_fd(t.a, t.fd), ARCHIVE_OK);
        return t;
}

static void tar_add(Tar *t, const Spec *s) {
        struct archive_entry *e = archive_entry_new();
        assert_non_null(e);
        mode_t type = s->type ? s->type : S_IFREG;
        size_t size = s->data && type == S_IFREG ? (s->size ? s->size : strlen(s->data)) : 0;
        archive_entry_set_pathname(e, s->name);
        archive_entry_set_filetype(e, type);
        archive_entry_set_perm(e, s->perm ? s->perm : 0644);
        archive_entry_set_mtime(e, s->mtime ? s->mtime : 1600000000, 0);
        archive_entry_set_uid(e, s->uid);
        archive_entry_set_gid(e, s->gid);
        archive_entry_set_size(e, (la_int64_t) size);
        if (s->type == S_IFLNK)
                archive_entry_set_symlink(e, s->data);
        if (s->hardlink)
                archive_entry_set_hardlink(e, s->hardlink);
        if (s->type == S_IFCHR || s->type == S_IFBLK)
                archive_entry_set_rdev(e, s->rdev);
        assert_int_equal(archive_write_header(t->a, e), ARCHIVE_OK);
        if (size > 0)
                assert_int_equal(archive_write_data(t->a, s->data, size), (la_ssize_t) size);
        archive_entry_free(e);
}

#define TAR_ADD(t, ...) tar_add((t), &(Spec) {__VA_ARGS__})

/* Ends the archive; returns the memfd positioned at its start. */
static int tar_finish(Tar *t) {
        assert_int_equal(archive_write_close(t->a), ARCHIVE_OK);
        archive_write_free(t->a);
        assert_int_equal(lseek(t->fd, 0, SEEK_SET), 0);
        return t->fd;
}

/* An archive with a single entry. */
static int tar_one(const Spec *s) {
        Tar t = tar_new();
        tar_add(&t, s);
        return tar_finish(&t);
}

static int copy_in(Sandbox *s, const char *dest, int fd, Error **err) {
        CopyStats st;
        int r = copy_in_extract(s->root_fd, dest, fd, false, &st, err);
        safe_close(fd);
        return r;
}

/* Names in an archive, one per line ("./\n./a\n"), in order. */
static char *list_archive(int fd, size_t *ret_count) {
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        struct archive *a = archive_read_new();
        assert_non_null(a);
        assert_int_equal(archive_read_support_format_tar(a), ARCHIVE_OK);
        assert_int_equal(archive_read_open_fd(a, fd, 10240), ARCHIVE_OK);
        char *out = NULL;
        size_t len = 0, n = 0;
        FILE *f = open_memstream(&out, &len);
        assert_non_null(f);
        struct archive_entry *e;
        int r;
        while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
                fprintf(f, "%s\n", archive_entry_pathname(e));
                n++;
        }
        assert_int_equal(r, ARCHIVE_EOF);
        archive_read_free(a);
        fclose(f);
        if (ret_count)
                *ret_count = n;
        return out;
}

static bool has_line(const char *list, const char *line) {
        size_t n = strlen(line);
        for (const char *p = list; (p = strstr(p, line)); p++)
                if ((p == list || p[-1] == '\n') && p[n] == '\n')
                        return true;
        return false;
}

/* ---- round trip ------------------------------------------------------------ */

static char big[200 * 1024 + 17];

static int tree_archive(void) {
        for (size_t i = 0; i < sizeof big; i++)
                big[i] = (char) ('a' + (i * 7) % 26);
        Tar t = tar_new();
        TAR_ADD(&t, .name = "top/", .type = S_IFDIR, .perm = 0755, .mtime = 1400000000);
        TAR_ADD(&t, .name = "top/sub/deep/", .type = S_IFDIR, .perm = 0750, .mtime = 1400000001);
        TAR_ADD(&t, .name = "top/sub/deep/file.txt", .perm = 0640, .data = "hello world\n", .mtime = 1500000000);
        TAR_ADD(&t, .name = "./top/bin/run.sh", .perm = 0755, .data = "#!/bin/sh\necho hi\n");
        TAR_ADD(&t, .name = "top/big", .perm = 0600, .data = big, .size = sizeof big);
        TAR_ADD(&t, .name = "top/link", .type = S_IFLNK, .perm = 0777, .data = "sub/deep/file.txt");
        TAR_ADD(&t, .name = "top/hard1", .perm = 0644, .data = "shared\n");
        TAR_ADD(&t, .name = "top/hard2", .hardlink = "top/hard1");
        TAR_ADD(&t, .name = "top/empty/", .type = S_IFDIR, .perm = 0700, .mtime = 1300000000);
        TAR_ADD(&t, .name = "top/fifo", .type = S_IFIFO, .perm = 0640);
        TAR_ADD(&t, .name = "top/ro/", .type = S_IFDIR, .perm = 0555, .mtime = 1200000000);
        TAR_ADD(&t, .name = "top/ro/inner", .perm = 0444, .data = "in a read-only dir\n");
        return tar_finish(&t);
}

static void assert_mode(const char *path, mode_t type, mode_t perm) {
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        assert_int_equal(st.st_mode & S_IFMT, type);
        if (type != S_IFLNK)
                assert_int_equal(st.st_mode & 07777, perm);
}

static void assert_tree_extracted(const char *top) {
        _cleanup_free_ char *file = test_pathf("%s/sub/deep/file.txt", top);
        _cleanup_free_ char *text = test_read_file(file, NULL);
        assert_non_null(text);
        assert_string_equal(text, "hello world\n");
        assert_mode(file, S_IFREG, 0640);
        struct stat st;
        assert_int_equal(lstat(file, &st), 0);
        assert_int_equal(st.st_mtim.tv_sec, 1500000000);

        _cleanup_free_ char *run = test_pathf("%s/bin/run.sh", top);
        assert_mode(run, S_IFREG, 0755);
        _cleanup_free_ char *bigp = test_pathf("%s/big", top);
        _cleanup_free_ char *bigc = test_read_file(bigp, NULL);
        assert_non_null(bigc);
        assert_memory_equal(bigc, big, sizeof big);
        assert_int_equal(lstat(bigp, &st), 0);
        assert_int_equal(st.st_size, (off_t) sizeof big);

        _cleanup_free_ char *link = test_pathf("%s/link", top);
        _cleanup_free_ char *target = test_read_link(link);
        assert_non_null(target);
        assert_string_equal(target, "sub/deep/file.txt");

        _cleanup_free_ char *h1 = test_pathf("%s/hard1", top), *h2 = test_pathf("%s/hard2", top);
        struct stat s1, s2;
        assert_int_equal(lstat(h1, &s1), 0);
        assert_int_equal(lstat(h2, &s2), 0);
        assert_int_equal(s1.st_ino, s2.st_ino);
        assert_int_equal(s1.st_nlink, 2);

        _cleanup_free_ char *empty = test_pathf("%s/empty", top);
        assert_mode(empty, S_IFDIR, 0700);
        assert_int_equal(test_count_entries(empty), 0);
        assert_int_equal(lstat(empty, &st), 0);
        assert_int_equal(st.st_mtim.tv_sec, 1300000000);

        _cleanup_free_ char *fifo = test_pathf("%s/fifo", top);
        assert_mode(fifo, S_IFIFO, 0640);

        _cleanup_free_ char *ro = test_pathf("%s/ro", top), *inner = test_pathf("%s/ro/inner", top);
        assert_mode(ro, S_IFDIR, 0555);
        assert_int_equal(lstat(ro, &st), 0);
        assert_int_equal(st.st_mtim.tv_sec, 1200000000); /* not bumped by "inner" */
        assert_mode(inner, S_IFREG, 0444);
        assert_mode(top, S_IFDIR, 0755);
        assert_int_equal(lstat(top, &st), 0);
        assert_int_equal(st.st_mtim.tv_sec, 1400000000);
}

/* Same types, permissions, sizes, mtimes (seconds), contents and targets. */
static void assert_same_tree(const char *a, const char *b) {
        struct stat sa, sb;
        assert_int_equal(lstat(a, &sa), 0);
        assert_int_equal(lstat(b, &sb), 0);
        assert_int_equal(sa.st_mode, sb.st_mode);
        if (!S_ISDIR(sa.st_mode))
                assert_int_equal(sa.st_size, sb.st_size);
        assert_int_equal(sa.st_mtim.tv_sec, sb.st_mtim.tv_sec);
        assert_int_equal(sa.st_nlink > 1, sb.st_nlink > 1);
        if (S_ISREG(sa.st_mode)) {
                _cleanup_free_ char *ca = test_read_file(a, NULL), *cb = test_read_file(b, NULL);
                assert_non_null(ca);
                assert_non_null(cb);
                assert_memory_equal(ca, cb, (size_t) sa.st_size);
        } else if (S_ISLNK(sa.st_mode)) {
                _cleanup_free_ char *ta = test_read_link(a), *tb = test_read_link(b);
                assert_string_equal(ta, tb);
        } else if (S_ISDIR(sa.st_mode)) {
                assert_int_equal(test_count_entries(a), test_count_entries(b));
                DIR *d = opendir(a);
                assert_non_null(d);
                for (struct dirent *de; (de = readdir(d));) {
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                                continue;
                        _cleanup_free_ char *ca = test_pathf("%s/%s", a, de->d_name);
                        _cleanup_free_ char *cb = test_pathf("%s/%s", b, de->d_name);
                        assert_same_tree(ca, cb);
                }
                closedir(d);
        }
}

static void test_round_trip(void **state) {
        Sandbox *s = *state;
        _cleanup_error_ Error *err = NULL;
        CopyStats st = {0};
        int fd = tree_archive();
        assert_int_equal(copy_in_extract(s->root_fd, "/dst1", fd, false, &st, &err), 0);
        assert_null(err);
        safe_close(fd);
        assert_int_equal(st.entries, 12);
        assert_true(st.bytes > sizeof big);
        _cleanup_free_ char *top1 = test_pathf("%s/dst1/top", s->root);
        assert_tree_extracted(top1);

        /* Out and in again, through a real archive of what is on disk. */
        int out = memfd_create("out", MFD_CLOEXEC);
        assert_true(out >= 0);
        CopyStats ost = {0};
        assert_int_equal(copy_out_archive(s->root_fd, "dst1/top", out, &ost, &err), 0);
        assert_null(err);
        assert_int_equal(ost.entries, 14); /* + implicit dirs "top/sub", "top/bin" */
        struct stat ms;
        assert_int_equal(fstat(out, &ms), 0);
        assert_int_equal(ost.bytes, (uint64_t) ms.st_size);
        size_t n;
        _cleanup_free_ char *names = list_archive(out, &n);
        assert_int_equal(n, 14);
        assert_true(has_line(names, "top/"));
        assert_true(has_line(names, "top/sub/deep/file.txt"));
        assert_true(has_line(names, "top/ro/inner"));

        assert_int_equal(lseek(out, 0, SEEK_SET), 0);
        assert_int_equal(copy_in_extract(s->root_fd, "dst2", out, false, &st, &err), 0);
        assert_null(err);
        safe_close(out);
        assert_int_equal(st.entries, 14);
        _cleanup_free_ char *top2 = test_pathf("%s/dst2/top", s->root);
        assert_tree_extracted(top2);
        assert_same_tree(top1, top2);
        assert_outside_untouched(s);
}

/* A pipe instead of a seekable file, with trailing padding after the
 * end-of-archive marker that copy-in must consume. */
static void test_copy_in_from_pipe(void **state) {
        Sandbox *s = *state;
        int tar = tree_archive();
        struct stat ts;
        assert_int_equal(fstat(tar, &ts), 0);
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char buf[4096];
                ssize_t k;
                while ((k = read(tar, buf, sizeof buf)) > 0)
                        if (write(p[1], buf, (size_t) k) != k)
                                _exit(1);
                memset(buf, 0, sizeof buf);
                _exit(write(p[1], buf, sizeof buf) == (ssize_t) sizeof buf ? 0 : 1);
        }
        safe_close(p[1]);
        safe_close(tar);
        _cleanup_error_ Error *err = NULL;
        CopyStats st = {0};
        assert_int_equal(copy_in_extract(s->root_fd, "a/b/c", p[0], false, &st, &err), 0);
        assert_null(err);
        safe_close(p[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_int_equal(st.bytes, (uint64_t) ts.st_size + 4096);
        _cleanup_free_ char *top = test_pathf("%s/a/b/c/top", s->root);
        assert_tree_extracted(top);
}

/* ---- hostile archives ------------------------------------------------------ */

static void test_escaping_names_refused(void **state) {
        Sandbox *s = *state;
        static const char *const names[] = {"../evil", "/abs", "a/../../evil", "./../evil", "a/b/../../../evil"};
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_error_ Error *err = NULL;
                int fd = tar_one(&(Spec) {.name = names[i], .data = "evil\n"});
                assert_int_equal(copy_in(s, "/", fd, &err), -EINVAL);
                assert_non_null(err);
                assert_non_null(strstr(err->message, names[i]));
                assert_non_null(strstr(err->message, "copy-in '/'"));
        }
        _cleanup_error_ Error *err = NULL;
        int fd = tar_one(&(Spec) {.name = "../x", .data = "x"});
        assert_int_equal(copy_in(s, "/", fd, &err), -EINVAL);
        assert_string_equal(err->message, "copy-in '/': archive entry '../x': path escapes the destination");
        assert_int_equal(test_count_entries(s->root), 0);
        assert_false(test_exists("/abs"));

        /* The destination path itself is clamped, not refused. */
        _cleanup_error_ Error *err2 = NULL;
        fd = tar_one(&(Spec) {.name = "f", .data = "up\n"});
        assert_int_equal(copy_in(s, "../../up", fd, &err2), 0);
        _cleanup_free_ char *up = test_pathf("%s/up/f", s->root);
        _cleanup_free_ char *text = test_read_file(up, NULL);
        assert_non_null(text);
        assert_string_equal(text, "up\n");
        assert_outside_untouched(s);
}

static void test_overlong_name_refused(void **state) {
        Sandbox *s = *state;
        char name[COPY_MAX_PATH + 2];
        for (size_t i = 0; i < sizeof name - 1; i++)
                name[i] = i % 100 == 99 ? '/' : 'n';
        name[sizeof name - 1] = 0;
        _cleanup_error_ Error *err = NULL;
        int fd = tar_one(&(Spec) {.name = name, .data = "x"});
        assert_int_equal(copy_in(s, "/", fd, &err), -ENAMETOOLONG);
        assert_int_equal(test_count_entries(s->root), 0);
}

/* A symlink from the archive, then an entry through it. */
static void test_symlink_entry_not_followed(void **state) {
        Sandbox *s = *state;
        _cleanup_free_ char *outside_abs = strdup(s->outside);
        const char *targets[] = {"/", "../../..", "..", outside_abs, "/tmp"};
        for (size_t i = 0; i < ELEMENTSOF(targets); i++) {
                _cleanup_error_ Error *err = NULL;
                Tar t = tar_new();
                TAR_ADD(&t, .name = "link", .type = S_IFLNK, .data = targets[i]);
                TAR_ADD(&t, .name = "link/evil", .data = "evil\n");
                int r = copy_in(s, "/", tar_finish(&t), &err);
                assert_int_equal(r, -ENOTDIR);
                assert_non_null(strstr(err->message, "link/evil"));
                _cleanup_free_ char *link = test_pathf("%s/link", s->root);
                _cleanup_free_ char *target = test_read_link(link);
                assert_non_null(target);
                assert_string_equal(target, targets[i]);
                assert_false(exists_in(s->outer, "evil"));
                assert_outside_untouched(s);
        }
        /* And with a directory entry for the symlink's name: the symlink is
         * replaced by a real directory, never written through. */
        _cleanup_error_ Error *err = NULL;
        Tar t = tar_new();
        TAR_ADD(&t, .name = "link2", .type = S_IFLNK, .data = outside_abs);
        TAR_ADD(&t, .name = "link2/", .type = S_IFDIR, .perm = 0755);
        TAR_ADD(&t, .name = "link2/evil", .data = "evil\n");
        assert_int_equal(copy_in(s, "/", tar_finish(&t), &err), 0);
        _cleanup_free_ char *in_root = test_pathf("%s/link2/evil", s->root);
        assert_mode(in_root, S_IFREG, 0644);
        assert_outside_untouched(s);
}

static void test_hardlink_escape_refused(void **state) {
        Sandbox *s = *state;
        static const char *const targets[] = {"../../etc/passwd", "/etc/passwd", "a/../../x"};
        for (size_t i = 0; i < ELEMENTSOF(targets); i++) {
                _cleanup_error_ Error *err = NULL;
                int fd = tar_one(&(Spec) {.name = "pw", .hardlink = targets[i]});
                assert_int_equal(copy_in(s, "/", fd, &err), -EINVAL);
                assert_non_null(strstr(err->message, targets[i]));
                assert_false(exists_in(s->root, "pw"));
        }
        /* A hard link to a symlink links the symlink, it does not follow it. */
        _cleanup_error_ Error *err = NULL;
        _cleanup_free_ char *keep = test_pathf("%s/keep", s->outside);
        Tar t = tar_new();
        TAR_ADD(&t, .name = "sym", .type = S_IFLNK, .data = keep);
        TAR_ADD(&t, .name = "hl", .hardlink = "sym");
        assert_int_equal(copy_in(s, "/", tar_finish(&t), &err), 0);
        _cleanup_free_ char *hl = test_pathf("%s/hl", s->root);
        assert_mode(hl, S_IFLNK, 0);
        struct stat st;
        assert_int_equal(lstat(keep, &st), 0);
        assert_int_equal(st.st_nlink, 1);
        /* ... and a hard link through a symlinked directory is refused. */
        _cleanup_error_ Error *err2 = NULL;
        Tar t2 = tar_new();
        TAR_ADD(&t2, .name = "out", .type = S_IFLNK, .data = s->outside);
        TAR_ADD(&t2, .name = "hl2", .hardlink = "out/keep");
        assert_int_equal(copy_in(s, "/", tar_finish(&t2), &err2), -ENOTDIR);
        assert_false(exists_in(s->root, "hl2"));
        assert_int_equal(lstat(keep, &st), 0);
        assert_int_equal(st.st_nlink, 1);
        assert_outside_untouched(s);
}

/* Symlinks planted in the root beforehand. */
static void test_existing_symlink_not_followed(void **state) {
        Sandbox *s = *state;
        _cleanup_free_ char *dts = test_pathf("%s/dir-through-symlink", s->root);
        assert_int_equal(symlink("/tmp", dts), 0);
        _cleanup_free_ char *dts_out = test_pathf("%s/to-outside", s->root);
        assert_int_equal(symlink(s->outside, dts_out), 0);

        /* The destination path is resolved clamped: "/tmp" means root/tmp. */
        _cleanup_free_ char *root_tmp = test_pathf("%s/tmp", s->root);
        assert_int_equal(mkdir(root_tmp, 0755), 0);
        _cleanup_error_ Error *err = NULL;
        int fd = tar_one(&(Spec) {.name = "f", .data = "data\n"});
        assert_int_equal(copy_in(s, "dir-through-symlink/x", fd, &err), 0);
        _cleanup_free_ char *landed = test_pathf("%s/tmp/x/f", s->root);
        _cleanup_free_ char *text = test_read_file(landed, NULL);
        assert_non_null(text);
        assert_string_equal(text, "data\n");

        /* A clamped target that does not exist in the root: refused, and
         * certainly not created on the host. */
        _cleanup_error_ Error *err2 = NULL;
        fd = tar_one(&(Spec) {.name = "f", .data = "data\n"});
        assert_true(copy_in(s, "to-outside/x", fd, &err2) < 0);
        assert_non_null(strstr(err2->message, "copy-in 'to-outside/x'"));

        /* An archive entry through the planted symlink is refused. */
        _cleanup_error_ Error *err3 = NULL;
        fd = tar_one(&(Spec) {.name = "to-outside/evil", .data = "evil\n"});
        assert_int_equal(copy_in(s, "/", fd, &err3), -ENOTDIR);
        _cleanup_error_ Error *err4 = NULL;
        fd = tar_one(&(Spec) {.name = "dir-through-symlink/evil", .data = "evil\n"});
        assert_int_equal(copy_in(s, "", fd, &err4), -ENOTDIR);
        assert_false(exists_in(root_tmp, "evil"));

        /* A file entry replacing a planted symlink replaces the link itself. */
        _cleanup_error_ Error *err5 = NULL;
        fd = tar_one(&(Spec) {.name = "to-outside", .data = "now a file\n"});
        assert_int_equal(copy_in(s, "/", fd, &err5), 0);
        assert_mode(dts_out, S_IFREG, 0644);
        assert_outside_untouched(s);
}

static void test_truncated_stream(void **state) {
        Sandbox *s = *state;
        Tar t = tar_new();
        TAR_ADD(&t, .name = "first", .data = "complete\n");
        TAR_ADD(&t, .name = "big", .data = big, .size = sizeof big);
        int fd = tar_finish(&t);
        /* Headers and data of "first" (1024), header of "big" (512), then
         * part of its data. */
        assert_int_equal(ftruncate(fd, 1536 + 5000), 0);
        _cleanup_error_ Error *err = NULL;
        int r = copy_in(s, "d", fd, &err);
        assert_true(r < 0);
        assert_non_null(err);
        assert_non_null(strstr(err->message, "copy-in 'd': archive entry 'big'"));
        _cleanup_free_ char *first = test_pathf("%s/d/first", s->root);
        _cleanup_free_ char *text = test_read_file(first, NULL);
        assert_non_null(text);
        assert_string_equal(text, "complete\n");
}

static void test_corrupt_header(void **state) {
        Sandbox *s = *state;
        Tar t = tar_new();
        TAR_ADD(&t, .name = "first", .data = "complete\n");
        TAR_ADD(&t, .name = "second", .data = "never\n");
        int fd = tar_finish(&t);
        /* The second header starts at 1024: damage its name. */
        assert_int_equal(pwrite(fd, "X", 1, 1024 + 2), 1);
        _cleanup_error_ Error *err = NULL;
        int r = copy_in(s, "d", fd, &err);
        assert_true(r < 0);
        assert_non_null(strstr(err->message, "copy-in 'd'"));
        assert_false(exists_in(s->root, "d/second"));
        assert_false(exists_in(s->root, "d/seXond"));

        /* Damaged first header: not recognised as tar at all. */
        t = tar_new();
        TAR_ADD(&t, .name = "first", .data = "complete\n");
        fd = tar_finish(&t);
        assert_int_equal(pwrite(fd, "\377\377", 2, 150), 2);
        _cleanup_error_ Error *err2 = NULL;
        assert_true(copy_in(s, "e", fd, &err2) < 0);
        assert_non_null(err2);
}

static void test_not_a_tar(void **state) {
        Sandbox *s = *state;
        int fd = memfd_create("junk", MFD_CLOEXEC);
        char junk[2048];
        for (size_t i = 0; i < sizeof junk; i++)
                junk[i] = (char) (i * 31 + 7);
        assert_int_equal(write(fd, junk, sizeof junk), (ssize_t) sizeof junk);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        _cleanup_error_ Error *err = NULL;
        assert_true(copy_in(s, "d", fd, &err) < 0);
        assert_non_null(err);

        _cleanup_error_ Error *err2 = NULL;
        fd = memfd_create("empty", MFD_CLOEXEC);
        assert_true(copy_in(s, "d", fd, &err2) < 0);
        assert_non_null(err2);
}

/* ---- metadata ---------------------------------------------------------------- */

static void test_owner_and_setuid(void **state) {
        Sandbox *s = *state;
        bool root = geteuid() == 0;
        Tar t = tar_new();
        TAR_ADD(&t, .name = "suid", .perm = 04755, .data = "x", .uid = 1234, .gid = 5678);
        TAR_ADD(&t, .name = "dir/", .type = S_IFDIR, .perm = 02775, .uid = 1234, .gid = 5678);
        TAR_ADD(&t, .name = "sym", .type = S_IFLNK, .data = "suid", .uid = 1234, .gid = 5678);
        int fd = tar_finish(&t);

        /* Not preserving owners: files belong to us, setuid is dropped. */
        _cleanup_error_ Error *err = NULL;
        CopyStats st;
        assert_int_equal(copy_in_extract(s->root_fd, "plain", fd, false, &st, &err), 0);
        _cleanup_free_ char *suid = test_pathf("%s/plain/suid", s->root);
        struct stat sb;
        assert_int_equal(lstat(suid, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0755);
        assert_int_equal(sb.st_uid, geteuid());
        _cleanup_free_ char *dir = test_pathf("%s/plain/dir", s->root);
        assert_mode(dir, S_IFDIR, 02775);

        /* Preserving (effective only as root). */
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        assert_int_equal(copy_in_extract(s->root_fd, "kept", fd, true, &st, &err), 0);
        safe_close(fd);
        _cleanup_free_ char *ksuid = test_pathf("%s/kept/suid", s->root);
        _cleanup_free_ char *ksym = test_pathf("%s/kept/sym", s->root);
        assert_int_equal(lstat(ksuid, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 04755);
        assert_int_equal(sb.st_uid, root ? 1234 : geteuid());
        struct stat lb;
        assert_int_equal(lstat(ksym, &lb), 0);
        assert_int_equal(lb.st_uid, root ? 1234 : geteuid());
        assert_int_equal(lb.st_gid, root ? 5678 : getegid());
}

static void test_device_nodes(void **state) {
        Sandbox *s = *state;
        int fd = tar_one(&(Spec) {.name = "null", .type = S_IFCHR, .perm = 0666, .rdev = makedev(1, 3)});
        _cleanup_error_ Error *err = NULL;
        int r = copy_in(s, "dev", fd, &err);
        _cleanup_free_ char *node = test_pathf("%s/dev/null", s->root);
        struct stat st;
        if (geteuid() != 0) {
                assert_int_equal(r, 0); /* skipped, not an error */
                assert_false(test_exists(node));
                return;
        }
        if (r == -EPERM) /* root without CAP_MKNOD (a user namespace) */
                test_skip_or_fail("CAP_MKNOD (root outside a user namespace)");
        assert_int_equal(r, 0);
        assert_int_equal(lstat(node, &st), 0);
        assert_true(S_ISCHR(st.st_mode));
        assert_int_equal(major(st.st_rdev), 1);
        assert_int_equal(minor(st.st_rdev), 3);
        assert_int_equal(st.st_mode & 07777, 0666);

        /* And back out as a device entry. */
        int out = memfd_create("out", MFD_CLOEXEC);
        assert_int_equal(copy_out_archive(s->root_fd, "dev/null", out, NULL, &err), 0);
        _cleanup_free_ char *names = list_archive(out, NULL);
        assert_string_equal(names, "null\n");
        safe_close(out);
}

/* "./" names the destination itself, which is left as it is; a later entry
 * replaces an existing file. */
static void test_dot_entry_and_replace(void **state) {
        Sandbox *s = *state;
        _cleanup_free_ char *dst = test_pathf("%s/dst", s->root);
        assert_int_equal(mkdir(dst, 0711), 0);
        _cleanup_free_ char *old = test_pathf("%s/dst/f", s->root);
        test_write_file(old, "old contents, longer\n");
        Tar t = tar_new();
        TAR_ADD(&t, .name = "./", .type = S_IFDIR, .perm = 0700);
        TAR_ADD(&t, .name = "./f", .perm = 0600, .data = "new\n");
        _cleanup_error_ Error *err = NULL;
        assert_int_equal(copy_in(s, "dst", tar_finish(&t), &err), 0);
        assert_mode(dst, S_IFDIR, 0711);
        _cleanup_free_ char *text = test_read_file(old, NULL);
        assert_string_equal(text, "new\n");
        assert_mode(old, S_IFREG, 0600);

        /* A directory where the archive has a file: only an empty one goes. */
        _cleanup_free_ char *full = test_pathf("%s/dst/full", s->root), *inner = test_pathf("%s/dst/full/x", s->root);
        assert_int_equal(mkdir(full, 0755), 0);
        test_write_file(inner, "x");
        _cleanup_error_ Error *err2 = NULL;
        int fd = tar_one(&(Spec) {.name = "full", .data = "file\n"});
        assert_int_equal(copy_in(s, "dst", fd, &err2), -ENOTEMPTY);
        assert_non_null(strstr(err2->message, "archive entry 'full'"));
        assert_true(test_exists(inner));
}

/* ---- copy-out ---------------------------------------------------------------- */

static void test_copy_out_clamped(void **state) {
        Sandbox *s = *state;
        _cleanup_free_ char *hello = test_pathf("%s/hello", s->root);
        test_write_file(hello, "hi\n");
        _cleanup_free_ char *esc = test_pathf("%s/esc", s->root);
        assert_int_equal(symlink("../../..", esc), 0);

        static const char *const paths[] = {"../../..", "/", "", "esc/..", "/../.."};
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                int out = memfd_create("out", MFD_CLOEXEC);
                _cleanup_error_ Error *err = NULL;
                CopyStats st;
                assert_int_equal(copy_out_archive(s->root_fd, paths[i], out, &st, &err), 0);
                size_t n;
                _cleanup_free_ char *names = list_archive(out, &n);
                assert_int_equal(n, 3);
                assert_int_equal(st.entries, 3);
                assert_true(has_line(names, "./"));
                assert_true(has_line(names, "./hello"));
                assert_true(has_line(names, "./esc"));
                safe_close(out);
        }

        /* Through the escaping symlink: clamped to the root too. */
        int out = memfd_create("out", MFD_CLOEXEC);
        _cleanup_error_ Error *err = NULL;
        assert_int_equal(copy_out_archive(s->root_fd, "esc/hello", out, NULL, &err), 0);
        _cleanup_free_ char *names = list_archive(out, NULL);
        assert_string_equal(names, "hello\n");
        safe_close(out);

        _cleanup_error_ Error *err2 = NULL;
        out = memfd_create("out", MFD_CLOEXEC);
        assert_int_equal(copy_out_archive(s->root_fd, "esc/outside/keep", out, NULL, &err2), -ENOENT);
        assert_non_null(strstr(err2->message, "copy-out 'esc/outside/keep'"));
        safe_close(out);
}

static void test_copy_out_symlink_and_file(void **state) {
        Sandbox *s = *state;
        _cleanup_free_ char *dir = test_pathf("%s/d", s->root), *f = test_pathf("%s/d/f", s->root);
        _cleanup_free_ char *l = test_pathf("%s/d/l", s->root), *h = test_pathf("%s/d/h", s->root);
        assert_int_equal(mkdir(dir, 0755), 0);
        test_write_file(f, "file\n");
        assert_int_equal(symlink(s->outside, l), 0);
        assert_int_equal(link(f, h), 0);

        /* A symlink is archived as itself, never followed. */
        int out = memfd_create("out", MFD_CLOEXEC);
        _cleanup_error_ Error *err = NULL;
        assert_int_equal(copy_out_archive(s->root_fd, "d/l", out, NULL, &err), 0);
        _cleanup_free_ char *names = list_archive(out, NULL);
        assert_string_equal(names, "l\n");
        assert_int_equal(lseek(out, 0, SEEK_SET), 0);
        assert_int_equal(copy_in_extract(s->root_fd, "again", out, false, NULL, &err), 0);
        safe_close(out);
        _cleanup_free_ char *l2 = test_pathf("%s/again/l", s->root);
        _cleanup_free_ char *target = test_read_link(l2);
        assert_string_equal(target, s->outside);

        /* A single file that has another link outside the copied tree. */
        out = memfd_create("out", MFD_CLOEXEC);
        assert_int_equal(copy_out_archive(s->root_fd, "/d/f", out, NULL, &err), 0);
        _cleanup_free_ char *names2 = list_archive(out, NULL);
        assert_string_equal(names2, "f\n");
        assert_int_equal(lseek(out, 0, SEEK_SET), 0);
        assert_int_equal(copy_in_extract(s->root_fd, "again", out, false, NULL, &err), 0);
        safe_close(out);
        _cleanup_free_ char *f2 = test_pathf("%s/again/f", s->root);
        _cleanup_free_ char *text = test_read_file(f2, NULL);
        assert_string_equal(text, "file\n");
        assert_null(err);
}

/* A failing output is reported, not mistaken for a finished archive. */
static void test_copy_out_write_error(void **state) {
        Sandbox *s = *state;
        _cleanup_error_ Error *err = NULL;
        assert_int_equal(copy_in(s, "t", tree_archive(), &err), 0);
        int out = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(out >= 0);
        assert_int_equal(copy_out_archive(s->root_fd, "t", out, NULL, &err), -EBADF);
        assert_non_null(strstr(err->message, "copy-out 't'"));
        safe_close(out);
}

/* ---- stat and remove --------------------------------------------------------- */

static void test_fs_stat(void **state) {
        Sandbox *s = *state;
        _cleanup_free_ char *f = test_pathf("%s/f", s->root), *l = test_pathf("%s/l", s->root);
        test_write_file(f, "12345");
        assert_int_equal(symlink("/etc/passwd", l), 0);

        struct stat st;
        char *target = (char *) "sentinel";
        _cleanup_error_ Error *err = NULL;
        assert_int_equal(fs_stat(s->root_fd, "l", &st, &target, &err), 0);
        assert_true(S_ISLNK(st.st_mode));
        assert_string_equal(target, "/etc/passwd");
        free(target);

        assert_int_equal(fs_stat(s->root_fd, "/f", &st, &target, &err), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_size, 5);
        assert_null(target);

        struct stat root_st;
        assert_int_equal(fstat(s->root_fd, &root_st), 0);
        assert_int_equal(fs_stat(s->root_fd, "../../..", &st, NULL, &err), 0);
        assert_int_equal(st.st_ino, root_st.st_ino);
        assert_null(err);

        assert_int_equal(fs_stat(s->root_fd, "l/x", &st, NULL, &err), -ENOENT); /* clamped: root/etc/passwd */
        assert_string_equal(err->message, "stat 'l/x': No such file or directory");
}

static void test_fs_remove(void **state) {
        Sandbox *s = *state;
        _cleanup_free_ char *d = test_pathf("%s/d", s->root), *sub = test_pathf("%s/d/sub", s->root);
        _cleanup_free_ char *f = test_pathf("%s/d/sub/f", s->root), *ro = test_pathf("%s/d/ro", s->root);
        _cleanup_free_ char *rof = test_pathf("%s/d/ro/f", s->root);
        _cleanup_free_ char *l1 = test_pathf("%s/d/abs", s->root), *l2 = test_pathf("%s/d/rel", s->root);
        assert_int_equal(mkdir(d, 0755), 0);
        assert_int_equal(mkdir(sub, 0755), 0);
        assert_int_equal(mkdir(ro, 0755), 0);
        test_write_file(f, "f");
        test_write_file(rof, "f");
        assert_int_equal(chmod(ro, 0555), 0);
        assert_int_equal(symlink(s->outside, l1), 0);
        assert_int_equal(symlink("../../outside", l2), 0);

        _cleanup_error_ Error *err = NULL;
        assert_int_equal(fs_remove(s->root_fd, "d", false, &err), -ENOTEMPTY);
        assert_string_equal(err->message, "remove 'd': Directory not empty");
        assert_true(test_exists(f));

        _cleanup_error_ Error *err2 = NULL;
        assert_int_equal(fs_remove(s->root_fd, "/d/sub/f", false, &err2), 0);
        assert_false(test_exists(f));
        assert_int_equal(fs_remove(s->root_fd, "d/abs", false, &err2), 0); /* the link, not its target */
        assert_false(test_exists(l1));
        assert_int_equal(fs_remove(s->root_fd, "d/nope", false, &err2), -ENOENT);
        assert_non_null(strstr(err2->message, "remove 'd/nope'"));

        assert_int_equal(symlink(s->outside, l1), 0);
        _cleanup_error_ Error *err3 = NULL;
        if (geteuid() != 0) { /* "ro" must be writable for an unprivileged remover */
                assert_int_equal(fs_remove(s->root_fd, "d", true, &err3), -EACCES);
                assert_int_equal(chmod(ro, 0755), 0);
                err3 = error_free(err3);
        }
        assert_int_equal(fs_remove(s->root_fd, "d", true, &err3), 0);
        assert_null(err3);
        assert_false(test_exists(d));
        assert_outside_untouched(s);

        /* The root itself, however spelled. */
        _cleanup_free_ char *a = test_pathf("%s/a", s->root);
        assert_int_equal(mkdir(a, 0755), 0);
        static const char *const roots[] = {"/", "", "//", "../..", "a/..", "/a/../.."};
        for (size_t i = 0; i < ELEMENTSOF(roots); i++) {
                _cleanup_error_ Error *e = NULL;
                assert_int_equal(fs_remove(s->root_fd, roots[i], true, &e), -EBUSY);
                assert_non_null(strstr(e->message, "container root"));
        }
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(fs_remove(s->root_fd, "a/.", true, &e), -EINVAL);
        assert_true(test_exists(a));
        assert_true(test_exists(s->root));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_round_trip, sandbox_setup, sandbox_teardown),
                cmocka_unit_test_setup_teardown(test_copy_in_from_pipe, sandbox_setup, sandbox_teardown),
                cmocka_unit_test_setup_teardown(test_escaping_names_refused, sandbox_setup, sandbox_teardown),
                cmocka_unit_test_setup_teardown(test_overlong_name_refused, sandbox_setup, sandbox_teardown),
                cmocka_unit_test_setup_teardown(test_symlink_entry_not_followed, sandbox_setup, sandbox_teardown),
                cmocka_unit_test_setup_teardown(test_hardlink_escape_refused, sandbox_setup, sandbox_teardown),
                cmocka_unit_test_setup_teardown(test_existing_symlink_not_followed, sandbox_setup,
                                                sandbox_teardown),
                cmocka_unit_test_setup_teardown(test_truncated_stream, sandbox_setup, sandbox_teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_header, sandbox_setup, sandbox_teardown),
                cmocka_unit_test_setup_teardown(test_not_a_tar, sandbox_setup, sandbox_teardown),
                cmocka_unit_test_setup_teardown(test_owner_and_setuid, sandbox_setup, sandbox_teardown),
                cmocka_unit_test_setup_teardown(test_device_nodes, sandbox_setup, sandbox_teardown),
                cmocka_unit_test_setup_teardown(test_dot_entry_and_replace, sandbox_setup, sandbox_teardown),
                cmocka_unit_test_setup_teardown(test_copy_out_clamped, sandbox_setup, sandbox_teardown),
                cmocka_unit_test_setup_teardown(test_copy_out_symlink_and_file, sandbox_setup, sandbox_teardown),
                cmocka_unit_test_setup_teardown(test_copy_out_write_error, sandbox_setup, sandbox_teardown),
                cmocka_unit_test_setup_teardown(test_fs_stat, sandbox_setup, sandbox_teardown),
                cmocka_unit_test_setup_teardown(test_fs_remove, sandbox_setup, sandbox_teardown),
        };
        return test_run_group(tests, NULL, NULL);
}
