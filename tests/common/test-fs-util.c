/* test-fs-util.c: mkdir_p, write_file_atomic (and the tmpfile pair under it)
 * and rm_rf / rm_rf_at, including the hostile cases: an existing file in the
 * way, a failed rename that must leave no temporary behind, and symlinks
 * that rm_rf must remove rather than follow. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <grp.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/test-files.h"
#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/macro.h"

typedef struct Dir {
        char path[64];
} Dir;

static int setup(void **state) {
        Dir *d = calloc(1, sizeof *d);
        snprintf(d->path, sizeof d->path, "/tmp/pl-fs-util.XXXXXX");
        if (!mkdtemp(d->path))
                return -1;
        *state = d;
        return 0;
}

static int teardown(void **state) {
        Dir *d = *state;
        int r = rm_rf(d->path);
        free(d);
        return r;
}

static char *join(const Dir *d, const char *rel) {
        char *p = NULL;
        assert_true(asprintf(&p, "%s/%s", d->path, rel) > 0);
        return p;
}

static void put(const char *path, const char *text) {
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
}

static bool is_dir(const char *path) {
        struct stat st;
        return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool exists(const char *path) {
        struct stat st;
        return lstat(path, &st) == 0;
}

static size_t count_entries(const char *dir) {
        DIR *d = opendir(dir);
        size_t n = 0;
        assert_non_null(d);
        for (struct dirent *de; (de = readdir(d));)
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n;
}

static void test_mkdir_p(void **state) {
        Dir *d = *state;
        _cleanup_free_ char *deep = join(d, "a/b//c/"), *c = join(d, "a/b/c"), *file = join(d, "a/file"),
                            *under = join(d, "a/file/x");
        assert_int_equal(mkdir_p(deep, 0755), 0);
        assert_true(is_dir(c));
        assert_int_equal(mkdir_p(c, 0755), 0); /* existing is fine */
        assert_int_equal(mkdir_p(d->path, 0755), 0);

        struct stat st;
        mode_t um = umask(022);
        umask(um);
        assert_int_equal(stat(c, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0755 & ~um);

        put(file, "x");
        assert_int_equal(mkdir_p(file, 0755), -ENOTDIR); /* a file is not a directory */
        assert_int_equal(mkdir_p(under, 0755), -ENOTDIR);
        assert_int_equal(mkdir_p("", 0755), -EINVAL);
        assert_int_equal(mkdir_p(NULL, 0755), -EINVAL);
}

static void test_mkdir_p_through_symlink(void **state) {
        Dir *d = *state;
        _cleanup_free_ char *real = join(d, "real"), *link = join(d, "link"), *below = join(d, "link/x/y"),
                            *landed = join(d, "real/x/y");
        assert_int_equal(mkdir(real, 0755), 0);
        assert_int_equal(symlink("real", link), 0);
        /* An existing symlink to a directory counts as the directory. */
        assert_int_equal(mkdir_p(link, 0755), 0);
        assert_int_equal(mkdir_p(below, 0755), 0);
        assert_true(is_dir(landed));
}

static void test_write_file_atomic(void **state) {
        Dir *d = *state;
        _cleanup_free_ char *path = join(d, "f.conf"), *buf = NULL;
        size_t len;
        assert_int_equal(write_file_atomic(path, "one\n", 4, 0640), 0);
        assert_int_equal(read_file_bounded(path, 100, &buf, &len), 0);
        assert_string_equal(buf, "one\n");
        buf = mfree(buf);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0640); /* exactly mode, no umask */

        assert_int_equal(write_file_atomic(path, "two", 3, 0600), 0); /* replaces */
        assert_int_equal(read_file_bounded(path, 100, &buf, &len), 0);
        assert_string_equal(buf, "two");
        assert_int_equal(write_file_atomic(path, "", 0, 0600), 0); /* empty is a file too */
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 0);
        assert_int_equal(count_entries(d->path), 1); /* no temporary left */

        /* A bare name goes to the working directory. */
        _cleanup_close_ int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_int_equal(chdir(d->path), 0);
        assert_int_equal(write_file_atomic("bare", "b", 1, 0644), 0);
        assert_int_equal(fchdir(cwd), 0);
        assert_int_equal(count_entries(d->path), 2);
}

static void test_write_file_atomic_failures(void **state) {
        Dir *d = *state;
        _cleanup_free_ char *missing = join(d, "nodir/f"), *taken = join(d, "taken"), *inside = join(d, "taken/keep"),
                            *slash = join(d, "dir/");
        assert_int_equal(write_file_atomic(missing, "x", 1, 0644), -ENOENT);
        assert_int_equal(write_file_atomic(slash, "x", 1, 0644), -EINVAL);
        assert_int_equal(write_file_atomic("", "x", 1, 0644), -EINVAL);

        /* The target is a non-empty directory: the rename fails and the
         * temporary file must go with it. */
        assert_int_equal(mkdir(taken, 0755), 0);
        put(inside, "x");
        int r = write_file_atomic(taken, "data", 4, 0644);
        assert_true(r == -EISDIR || r == -ENOTEMPTY || r == -EEXIST);
        assert_int_equal(count_entries(d->path), 1);
        assert_int_equal(count_entries(taken), 1);
}

/* The dirfd flavour: through an O_PATH fd (as the agent holds its root),
 * replacing a symlink instead of following it, refusing names with a '/'. */
static void test_write_file_atomic_at(void **state) {
        Dir *d = *state;
        _cleanup_free_ char *sub = join(d, "etc"), *hosts = join(d, "etc/hosts"), *outside = join(d, "outside"),
                            *link = join(d, "etc/link");
        assert_int_equal(mkdir(sub, 0755), 0);
        _cleanup_close_ int dfd = open(sub, O_PATH | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        assert_int_equal(write_file_atomic_at(dfd, "hosts", "one\n", 4, 0644), 0);
        _cleanup_free_ char *text = test_read_file(hosts, NULL);
        assert_string_equal(text, "one\n");
        struct stat st;
        assert_int_equal(stat(hosts, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_int_equal(write_file_atomic_at(dfd, "hosts", "two\n", 4, 0600), 0);
        free(text);
        text = test_read_file(hosts, NULL);
        assert_string_equal(text, "two\n");

        put(outside, "keep");
        assert_int_equal(symlink(outside, link), 0);
        assert_int_equal(write_file_atomic_at(dfd, "link", "new", 3, 0644), 0);
        assert_int_equal(lstat(link, &st), 0);
        assert_true(S_ISREG(st.st_mode)); /* the link itself was replaced */
        free(text);
        text = test_read_file(outside, NULL);
        assert_string_equal(text, "keep");

        assert_int_equal(write_file_atomic_at(dfd, "a/b", "x", 1, 0644), -EINVAL);
        assert_int_equal(write_file_atomic_at(dfd, "..", "x", 1, 0644), -EINVAL);
        assert_int_equal(write_file_atomic_at(dfd, "", "x", 1, 0644), -EINVAL);
        _cleanup_free_ char *dir = join(d, "etc/dir"), *dir_x = join(d, "etc/dir/x");
        assert_int_equal(mkdir(dir, 0755), 0);
        put(dir_x, "x");
        assert_true(write_file_atomic_at(dfd, "dir", "x", 1, 0644) < 0);
        assert_int_equal(count_entries(sub), 3); /* hosts, link, dir: no temporary left */
}

static void test_tmpfile_pair(void **state) {
        Dir *d = *state;
        _cleanup_free_ char *path = join(d, "target"), *tmp = NULL;
        _cleanup_close_ int fd = tmpfile_open_beside(path, &tmp);
        assert_true(fd >= 0);
        assert_int_equal(strncmp(tmp, d->path, strlen(d->path)), 0);
        assert_non_null(strstr(tmp, "/.target."));
        assert_int_equal(count_entries(d->path), 1);
        assert_int_equal(write_all(fd, "abc", 3), 0);
        assert_int_equal(tmpfile_link(fd, tmp, path, 0644), 0);
        assert_false(exists(tmp));
        assert_true(exists(path));
        assert_int_equal(count_entries(d->path), 1);
}

static void test_rm_rf_tree(void **state) {
        Dir *d = *state;
        _cleanup_free_ char *top = join(d, "top"), *deep = join(d, "top/a/b/c"), *f1 = join(d, "top/a/f"),
                            *f2 = join(d, "top/a/b/c/g"), *fifo = join(d, "top/p");
        assert_int_equal(mkdir_p(deep, 0755), 0);
        put(f1, "1");
        put(f2, "22");
        assert_int_equal(mkfifo(fifo, 0600), 0);
        assert_int_equal(rm_rf(top), 0);
        assert_false(exists(top));
        assert_int_equal(rm_rf(top), 0); /* missing is fine */
        assert_int_equal(rm_rf(""), -EINVAL);

        /* A plain file and an empty directory. */
        put(top, "x");
        assert_int_equal(rm_rf(top), 0);
        assert_false(exists(top));
}

static void test_rm_rf_never_follows_symlinks(void **state) {
        Dir *d = *state;
        _cleanup_free_ char *outside = join(d, "outside"), *precious = join(d, "outside/precious"),
                            *tree = join(d, "tree"), *l_dir = join(d, "tree/to-dir"), *l_file = join(d, "tree/to-file"),
                            *top_link = join(d, "top-link");
        assert_int_equal(mkdir(outside, 0755), 0);
        put(precious, "keep");
        assert_int_equal(mkdir(tree, 0755), 0);
        assert_int_equal(symlink(outside, l_dir), 0);
        assert_int_equal(symlink(precious, l_file), 0);

        assert_int_equal(rm_rf(tree), 0);
        assert_false(exists(tree));
        assert_true(exists(precious)); /* the links went, not their targets */

        /* The path itself a symlink to a directory: the link goes, not the tree. */
        assert_int_equal(symlink(outside, top_link), 0);
        assert_int_equal(rm_rf(top_link), 0);
        assert_false(exists(top_link));
        assert_true(exists(precious));
}

static void test_rm_rf_at_counts_bytes(void **state) {
        Dir *d = *state;
        _cleanup_free_ char *sub = join(d, "sub"), *f = join(d, "sub/f"), *link = join(d, "sub/l");
        assert_int_equal(mkdir(sub, 0755), 0);
        char data[8192];
        memset(data, 'x', sizeof data);
        assert_int_equal(write_file_atomic(f, data, sizeof data, 0644), 0);
        assert_int_equal(symlink("f", link), 0);
        struct stat st;
        assert_int_equal(stat(f, &st), 0);

        _cleanup_close_ int dfd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        uint64_t freed = 0;
        assert_int_equal(rm_rf_at(dfd, "sub", &freed), 0);
        assert_int_equal(freed, (uint64_t) st.st_blocks * 512); /* regular files only */
        assert_false(exists(sub));
        assert_int_equal(rm_rf_at(dfd, "sub", &freed), 0);
}

/* A directory we may not write into: its entries cannot go, the error comes
 * back, and the walk still removes what it can. Root ignores modes, so as
 * root the check runs in a child that became nobody (uid 65534). */
static int rm_rf_first_error_body(Dir *d) {
        _cleanup_free_ char *locked = join(d, "locked"), *inner = join(d, "locked/f"), *free_f = join(d, "z");
        if (mkdir(locked, 0755) < 0)
                return 1;
        put(inner, "x");
        put(free_f, "x");
        if (chmod(locked, 0555) < 0)
                return 2;
        int r = rm_rf(d->path);
        bool ok = r == -EACCES && exists(inner) && !exists(free_f);
        (void) chmod(locked, 0755);
        return ok ? 0 : 3;
}

static void test_rm_rf_reports_first_error(void **state) {
        Dir *d = *state;
        if (geteuid() != 0) {
                assert_int_equal(rm_rf_first_error_body(d), 0);
                return;
        }
        assert_int_equal(chown(d->path, 65534, 65534), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
                        _exit(9);
                _exit(rm_rf_first_error_body(d));
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mkdir_p_through_symlink, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_file_atomic, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_file_atomic_failures, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_file_atomic_at, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tmpfile_pair, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rm_rf_tree, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rm_rf_never_follows_symlinks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rm_rf_at_counts_bytes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rm_rf_reports_first_error, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
