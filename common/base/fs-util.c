/* fs-util.c: mkdir -p, atomic writes by rename, and rm -rf without following
 * symlinks (see fs-util.h). */
#include "common/base/fs-util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "common/base/io-util.h"
#include "common/base/macro.h"

static int mkdir_one(const char *path, mode_t mode) {
        if (mkdir(path, mode) >= 0)
                return 0;
        if (errno != EEXIST)
                return negative_errno();
        struct stat st;
        if (stat(path, &st) < 0)
                return negative_errno();
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int mkdir_p(const char *path, mode_t mode) {
        if (!path || !*path)
                return -EINVAL;
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        /* Each prefix ending before a '/' (or at the end) in turn. */
        for (char *s = p + 1;; s++) {
                if (*s != '/' && *s != 0)
                        continue;
                char c = *s;
                *s = 0;
                int r = mkdir_one(p, mode);
                if (r < 0)
                        return r;
                *s = c;
                if (!c)
                        return 0;
        }
}

/* The directory part of path: "." for a bare name, "/" for "/name". */
static char *dir_of(const char *path) {
        const char *slash = strrchr(path, '/');
        if (!slash)
                return strdup(".");
        return slash == path ? strdup("/") : strndup(path, (size_t) (slash - path));
}

int tmpfile_open_beside(const char *path, char **ret_tmp) {
        if (!path || !*path || path[strlen(path) - 1] == '/')
                return -EINVAL;
        const char *slash = strrchr(path, '/');
        const char *name = slash ? slash + 1 : path;
        int dir_len = slash ? (int) (slash - path + 1) : 0;
        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%.*s.%s.XXXXXX", dir_len, path, name) < 0)
                return -ENOMEM;
        int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        *ret_tmp = TAKE_PTR(tmp);
        return fd;
}

static int fsync_dir_of(const char *path) {
        _cleanup_free_ char *dir = dir_of(path);
        if (!dir)
                return -ENOMEM;
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
                return negative_errno();
        return 0;
}

int tmpfile_link(int fd, const char *tmp, const char *path, mode_t mode) {
        if (fchmod(fd, mode) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0) {
                int r = negative_errno();
                (void) unlink(tmp);
                return r;
        }
        return fsync_dir_of(path);
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = tmpfile_open_beside(path, &tmp);
        if (fd < 0)
                return fd;
        int r = write_all(fd, data, len);
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        return tmpfile_link(fd, tmp, path, mode);
}

/* Creates ".<name>.XXXXXX" below dir_fd with O_EXCL, X from getrandom(). */
static int tmpfile_open_at(int dir_fd, const char *name, char *ret_tmp, size_t size) {
        static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
        for (int attempt = 0; attempt < 64; attempt++) {
                uint8_t rnd[6];
                if (getrandom(rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
                        return -EIO;
                char suffix[sizeof rnd + 1];
                for (size_t i = 0; i < sizeof rnd; i++)
                        suffix[i] = chars[rnd[i] % (sizeof chars - 1)];
                suffix[sizeof rnd] = 0;
                if (snprintf(ret_tmp, size, ".%s.%s", name, suffix) >= (int) size)
                        return -ENAMETOOLONG;
                int fd = openat(dir_fd, ret_tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd >= 0 || errno != EEXIST)
                        return fd >= 0 ? fd : negative_errno();
        }
        return -EEXIST;
}

int write_file_atomic_at(int dir_fd, const char *name, const void *data, size_t len, mode_t mode) {
        if (!name || !*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return -EINVAL;
        char tmp[NAME_MAX + 1];
        _cleanup_close_ int fd = tmpfile_open_at(dir_fd, name, tmp, sizeof tmp);
        if (fd < 0)
                return fd;
        int r = write_all(fd, data, len);
        if (r >= 0 && (fchmod(fd, mode) < 0 || fsync(fd) < 0 || renameat(dir_fd, tmp, dir_fd, name) < 0))
                r = negative_errno();
        if (r < 0) {
                (void) unlinkat(dir_fd, tmp, 0);
                return r;
        }
        _cleanup_close_ int dfd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
                return negative_errno();
        return 0;
}

/* Removes the entries of the directory name below dir_fd; see rm_rf_at(). */
static int rm_children_at(int dir_fd, const char *name, uint64_t *freed_bytes) {
        int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : negative_errno();
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                int r = negative_errno();
                safe_close(fd);
                return r;
        }
        int r = 0;
        for (struct dirent *de; (errno = 0, de = readdir(d));) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                int q = rm_rf_at(dirfd(d), de->d_name, freed_bytes);
                if (q < 0 && r == 0)
                        r = q;
        }
        if (errno > 0 && r == 0)
                r = -errno;
        return r;
}

int rm_rf_at(int dir_fd, const char *name, uint64_t *freed_bytes) {
        struct stat st;
        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!S_ISDIR(st.st_mode)) {
                if (unlinkat(dir_fd, name, 0) < 0)
                        return errno == ENOENT ? 0 : negative_errno();
                if (freed_bytes && S_ISREG(st.st_mode))
                        *freed_bytes += (uint64_t) st.st_blocks * 512;
                return 0;
        }
        int r = rm_children_at(dir_fd, name, freed_bytes);
        if (unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
                r = negative_errno();
        return r;
}

int rm_rf(const char *path) {
        if (!path || !*path)
                return -EINVAL;
        return rm_rf_at(AT_FDCWD, path, NULL);
}
