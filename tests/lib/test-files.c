/* test-files.c: see test-files.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/test-files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int test_tmpdir_make(char *buf, size_t size, const char *name) {
        const char *tmp = getenv("TMPDIR");
        if (!tmp || tmp[0] != '/')
                tmp = "/tmp";
        int n = snprintf(buf, size, "%s/pl-%s.XXXXXX", tmp, name);
        if (n < 0 || (size_t) n >= size) {
                fprintf(stderr, "test_tmpdir_make: %s/pl-%s.XXXXXX does not fit in %zu bytes\n", tmp, name, size);
                if (size)
                        buf[0] = '\0';
                return -ENAMETOOLONG;
        }
        if (!mkdtemp(buf)) {
                int e = errno;
                fprintf(stderr, "test_tmpdir_make: mkdtemp %s: %s\n", buf, strerror(e));
                buf[0] = '\0';
                return -e;
        }
        return 0;
}

/* Unprivileged removal needs writable directories before their children can
 * go, so a pre-order pass opens them up and a post-order pass removes. */
static int open_up(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) ftw;
        if (flag == FTW_D || flag == FTW_DNR)
                (void) chmod(path, 0700);
        return 0;
}

static int remove_errno;

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) flag, (void) ftw;
        if (remove(path) < 0 && errno != ENOENT && remove_errno == 0)
                remove_errno = errno;
        return 0;
}

int test_tmpdir_remove(char *path) {
        if (!path || !path[0])
                return 0;
        if (getenv("PL_KEEP_TEST_DIRS")) {
                fprintf(stderr, "kept %s (PL_KEEP_TEST_DIRS)\n", path);
                path[0] = '\0';
                return 0;
        }
        remove_errno = 0;
        (void) nftw(path, open_up, 16, FTW_PHYS);
        if (nftw(path, remove_one, 16, FTW_PHYS | FTW_DEPTH) < 0 && errno != ENOENT && remove_errno == 0)
                remove_errno = errno;
        int r = -remove_errno;
        if (r < 0)
                fprintf(stderr, "test_tmpdir_remove %s: %s\n", path, strerror(-r));
        path[0] = '\0';
        return r;
}

int test_tmpdir_setup(void **state) {
        char *dir = malloc(PATH_MAX);
        if (!dir || test_tmpdir_make(dir, PATH_MAX, program_invocation_short_name) < 0) {
                free(dir);
                return -1;
        }
        *state = dir;
        return 0;
}

int test_tmpdir_teardown(void **state) {
        char *dir = *state;
        int r = test_tmpdir_remove(dir);
        free(dir);
        return r < 0 ? -1 : 0;
}

char *test_pathf(const char *fmt, ...) {
        char *s = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&s, fmt, ap);
        va_end(ap);
        assert_true(n >= 0);
        return s;
}

const char *test_path(const char *fmt, ...) {
        static char ring[8][PATH_MAX];
        static unsigned next;
        char *p = ring[__atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) % 8];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(p, PATH_MAX, fmt, ap);
        va_end(ap);
        assert_true(n >= 0 && n < PATH_MAX);
        return p;
}

void test_write_file(const char *path, const char *text) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                fail_msg("open %s: %s", path, strerror(errno));
        size_t len = strlen(text);
        for (size_t done = 0; done < len;) {
                ssize_t n = write(fd, text + done, len - done);
                if (n <= 0)
                        fail_msg("write %s: %s", path, strerror(errno));
                done += (size_t) n;
        }
        assert_int_equal(close(fd), 0);
}

static void make_parents(char *path, size_t from) {
        for (char *s = strchr(path + from + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                if (mkdir(path, 0755) < 0 && errno != EEXIST)
                        fail_msg("mkdir %s: %s", path, strerror(errno));
                *s = '/';
        }
}

void test_write_file_p(const char *path, const char *text) {
        char *p = test_pathf("%s", path);
        make_parents(p, 0);
        free(p);
        test_write_file(path, text);
}

void test_put(const char *dir, const char *name, const char *text) {
        char *p = test_pathf("%s/%s", dir, name);
        make_parents(p, strlen(dir));
        test_write_file(p, text);
        free(p);
}

char *test_read_file(const char *path, size_t *ret_len) {
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        size_t cap = 4096, len = 0;
        char *buf = malloc(cap);
        assert_non_null(buf);
        for (;;) {
                if (cap - len < 2) {
                        cap *= 2;
                        buf = realloc(buf, cap);
                        assert_non_null(buf);
                }
                ssize_t n = read(fd, buf + len, cap - len - 1);
                if (n < 0 && errno == ESRCH) {
                        /* A /proc/PID file whose process ended between
                         * open and read: as gone as a failed open. */
                        close(fd);
                        free(buf);
                        return NULL;
                }
                if (n < 0)
                        fail_msg("read %s: %s", path, strerror(errno));
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        close(fd);
        buf[len] = '\0';
        if (ret_len)
                *ret_len = len;
        return buf;
}

bool test_exists(const char *path) {
        struct stat st;
        return lstat(path, &st) == 0;
}

char *test_read_link(const char *path) {
        char buf[PATH_MAX];
        ssize_t n = readlink(path, buf, sizeof buf - 1);
        if (n < 0)
                return NULL;
        buf[n] = '\0';
        return strdup(buf);
}

size_t test_count_entries(const char *dir) {
        DIR *d = opendir(dir);
        if (!d)
                fail_msg("opendir %s: %s", dir, strerror(errno));
        size_t n = 0;
        for (struct dirent *de; (de = readdir(d));)
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n;
}
