/* store-gc.c: garbage collection and per-container overlay disks.
 *
 * gc runs under the exclusive store lock, so no pull is half-way: whatever
 * is in tmp/ is a leftover, an image directory without its record is the
 * trace of a pull killed before it finished, and a blob no record names is
 * garbage. Container disks are qcow2 overlays made by `qemu-img create`
 * (spawned without a shell) on top of an image's read-only disk.ext4; each
 * registers a marker images/<id>/users/<sha256 of its path> holding its path,
 * which keeps the image from being removed while the overlay exists. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "images/oci/digest.h"
#include "store-internal.h"

#define QEMU_IMG_STDERR_MAX 4096

extern char **environ;

int store_clean_leftovers(Store *s, StoreGcStats *stats, Error **err) {
        StoreGcStats dummy = {};
        if (!stats)
                stats = &dummy;
        _cleanup_closedir_ DIR *tmp = store_dir_at(s->tmp_fd, ".");
        if (!tmp)
                return error_set_errno(err, errno, "open '%s/tmp'", s->root);
        for (struct dirent *de; (de = readdir(tmp));) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                int r = rm_rf_at(s->tmp_fd, de->d_name, &stats->bytes_freed);
                if (r < 0)
                        return error_set_errno(err, -r, "remove '%s/tmp/%s'", s->root, de->d_name);
                stats->tmp_removed++;
        }
        _cleanup_closedir_ DIR *images = store_dir_at(s->images_fd, ".");
        if (!images)
                return error_set_errno(err, errno, "open '%s/images'", s->root);
        for (struct dirent *de; (de = readdir(images));) {
                if (!store_id_hex(de->d_name, NULL) || store_record_exists(s, de->d_name))
                        continue;
                int r = rm_rf_at(s->images_fd, de->d_name, &stats->bytes_freed);
                if (r < 0)
                        return error_set_errno(err, -r, "remove '%s/images/%s'", s->root, de->d_name);
                stats->images_removed++;
        }
        return 0;
}

/* ---- gc ---- */

typedef struct HexSet {
        char (*v)[STORE_HEX_LEN + 1];
        size_t n, cap;
} HexSet;

static int hexset_add(HexSet *h, const char *digest) {
        const char *hex;
        if (!store_id_hex(digest, &hex))
                return 0;
        if (h->n == h->cap) {
                size_t cap = h->cap ? h->cap * 2 : 64;
                void *v = realloc(h->v, cap * sizeof *h->v);
                if (!v)
                        return -ENOMEM;
                h->v = v;
                h->cap = cap;
        }
        memcpy(h->v[h->n++], hex, STORE_HEX_LEN + 1);
        return 0;
}

static bool hexset_has(const HexSet *h, const char *hex) {
        for (size_t i = 0; i < h->n; i++)
                if (strcmp(h->v[i], hex) == 0)
                        return true;
        return false;
}

/* Drops user markers whose overlay file is gone. */
static void users_prune(Store *s, const char *hex) {
        char path[NAME_MAX + 16];
        snprintf(path, sizeof path, "%s/users", hex);
        _cleanup_closedir_ DIR *d = store_dir_at(s->images_fd, path);
        for (struct dirent *de; d && (de = readdir(d));) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_close_ int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                _cleanup_free_ char *target = NULL;
                size_t n;
                if (fd < 0 || read_fd_bounded(fd, PATH_MAX, &target, &n) < 0)
                        continue;
                if (target[0] == '/' && access(target, F_OK) < 0 && errno == ENOENT)
                        unlinkat(dirfd(d), de->d_name, 0);
        }
}

/* Removes untagged images without users; collects the blobs of the rest. */
static int gc_images(Store *s, bool keep_untagged, HexSet *keep, StoreGcStats *st, Error **err) {
        _cleanup_(store_tags_clear) StoreTags t = {};
        _cleanup_close_ int tlock = store_tags_lock_load(s, LOCK_SH, &t, err);
        if (tlock < 0)
                return tlock;
        int r = 0;
        _cleanup_closedir_ DIR *d = store_dir_at(s->images_fd, ".");
        if (!d)
                return error_set_errno(err, errno, "open '%s/images'", s->root);
        for (struct dirent *de; (de = readdir(d));) {
                _cleanup_store_image_ StoreImage *img = NULL;
                if (!store_id_hex(de->d_name, NULL) || !store_record_exists(s, de->d_name))
                        continue;
                if ((r = store_record_read(s, de->d_name, &img, err)) < 0)
                        return r;
                users_prune(s, de->d_name);
                size_t users = 0;
                bool tagged = false;
                for (size_t i = 0; i < t.n && !tagged; i++)
                        tagged = strcmp(t.ids[i], img->id) == 0;
                if (!keep_untagged && !tagged && store_record_users(s, de->d_name, &users) >= 0 && users == 0) {
                        char rec[NAME_MAX + 16];
                        snprintf(rec, sizeof rec, "%s/image.json", de->d_name);
                        int q = unlinkat(s->images_fd, rec, 0) < 0 ? negative_errno()
                                                                   : rm_rf_at(s->images_fd, de->d_name,
                                                                                    &st->bytes_freed);
                        if (q < 0)
                                return error_set_errno(err, -q, "remove image %.12s", de->d_name);
                        st->images_removed++;
                        continue;
                }
                if (hexset_add(keep, img->id) < 0 || hexset_add(keep, img->manifest_digest) < 0)
                        return error_oom(err);
                for (size_t i = 0; i < img->layers.n; i++)
                        if (hexset_add(keep, img->layers.v[i]) < 0)
                                return error_oom(err);
        }
        return 0;
}

/* Lock files of images that no longer exist. Everyone who takes an image
 * lock holds the store lock shared, so under gc's exclusive lock nobody
 * waits on one. */
static void locks_prune(Store *s) {
        _cleanup_closedir_ DIR *d = store_dir_at(s->locks_fd, ".");
        for (struct dirent *de; d && (de = readdir(d));) {
                char hex[STORE_HEX_LEN + 1];
                if (strncmp(de->d_name, "image-", 6) != 0 || strlen(de->d_name) != 6 + STORE_HEX_LEN + 5 ||
                    strcmp(de->d_name + 6 + STORE_HEX_LEN, ".lock") != 0)
                        continue;
                memcpy(hex, de->d_name + 6, STORE_HEX_LEN);
                hex[STORE_HEX_LEN] = 0;
                if (store_id_hex(hex, NULL) && !store_record_exists(s, hex))
                        unlinkat(dirfd(d), de->d_name, 0);
        }
}

int store_gc(Store *s, bool keep_untagged, StoreGcStats *ret, Error **err) {
        StoreGcStats st = {};
        _cleanup_close_ int slock = store_lock(s, "store", LOCK_EX, err);
        if (slock < 0)
                return slock;
        int r = store_clean_leftovers(s, &st, err);
        if (r < 0)
                return r;
        HexSet keep = {};
        if ((r = gc_images(s, keep_untagged, &keep, &st, err)) < 0) {
                free(keep.v);
                return r;
        }
        _cleanup_closedir_ DIR *d = store_dir_at(s->blobs_fd, ".");
        if (!d) {
                free(keep.v);
                return error_set_errno(err, errno, "open '%s/blobs/sha256'", s->root);
        }
        for (struct dirent *de; (de = readdir(d));) {
                if (de->d_name[0] == '.' || hexset_has(&keep, de->d_name))
                        continue;
                if ((r = rm_rf_at(s->blobs_fd, de->d_name, &st.bytes_freed)) < 0) {
                        free(keep.v);
                        return error_set_errno(err, -r, "remove blob %s", de->d_name);
                }
                st.blobs_removed++;
        }
        free(keep.v);
        locks_prune(s);
        if ((r = store_fsync_dir(s->blobs_fd, "blobs", err)) < 0)
                return r;
        if (ret)
                *ret = st;
        return 0;
}

/* ---- container disks ---- */

/* Absolute form of path whose directory exists (the file may not). */
static int path_absolute(const char *path, char **ret, Error **err) {
        _cleanup_free_ char *a = strdup(path), *b = strdup(path);
        if (!a || !b)
                return error_oom(err);
        const char *base = basename(b);
        if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(base, "/") == 0)
                return error_set(err, EINVAL, "bad disk path '%s'", path);
        _cleanup_free_ char *dir = realpath(dirname(a), NULL);
        if (!dir)
                return error_set_errno(err, errno, "disk path '%s'", path);
        if (asprintf(ret, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, base) < 0)
                return error_oom(err);
        return 0;
}

static int marker_name(const char *abs, char ret[static STORE_HEX_LEN + 1]) {
        _cleanup_free_ char *d = NULL;
        if (digest_buffer_hex(abs, strlen(abs), &d) < 0)
                return -ENOMEM;
        memcpy(ret, d + 7, STORE_HEX_LEN + 1);
        return 0;
}

/* Runs argv (argv[0] looked up in PATH), capturing stderr. */
static int run_tool(char *const *argv, Error **err) {
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return error_set_errno(err, errno, "pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
        pid_t pid;
        int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        safe_close(pipefd[1]);
        if (r != 0) {
                safe_close(pipefd[0]);
                return error_set_errno(err, r, "run %s", argv[0]);
        }
        char buf[QEMU_IMG_STDERR_MAX + 1];
        size_t n = 0;
        for (;;) {
                char scratch[512];
                bool room = n < QEMU_IMG_STDERR_MAX;
                ssize_t k = read(pipefd[0], room ? buf + n : scratch, room ? QEMU_IMG_STDERR_MAX - n : sizeof scratch);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                if (room)
                        n += (size_t) k;
        }
        safe_close(pipefd[0]);
        buf[n] = 0;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                buf[--n] = 0;
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return error_set_errno(err, errno, "wait for %s", argv[0]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return error_set(err, EIO, "%s failed (status %d): %s", argv[0],
                                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), n ? buf : "no message");
        return 0;
}

/* The common start of disk create and remove: path made absolute, its
 * registration marker's name, and the shared store lock (returned). */
static int disk_begin(Store *s, const char *path, char **ret_abs, char mname[static STORE_HEX_LEN + 1],
                      Error **err) {
        int r = path_absolute(path, ret_abs, err);
        if (r < 0)
                return r;
        if (marker_name(*ret_abs, mname) < 0)
                return error_oom(err);
        return store_lock(s, "store", LOCK_SH, err);
}

int store_container_disk_create(Store *s, const char *image_ref, const char *path, uint64_t size_bytes,
                                Error **err) {
        _cleanup_free_ char *abs = NULL;
        char mname[STORE_HEX_LEN + 1], hex[STORE_HEX_LEN + 1];
        int r;
        _cleanup_close_ int slock = disk_begin(s, path, &abs, mname, err);
        if (slock < 0)
                return slock;
        if ((r = store_resolve_ref(s, image_ref, hex, err)) < 0)
                return r;
        _cleanup_close_ int ilock = store_lock_image(s, hex, LOCK_EX, err);
        if (ilock < 0)
                return ilock;
        _cleanup_store_image_ StoreImage *img = NULL;
        if ((r = store_record_read(s, hex, &img, err)) < 0)
                return r;
        if (size_bytes == 0)
                size_bytes = img->disk_size;
        if (size_bytes < img->disk_size)
                return error_set(err, EINVAL, "disk size %llu is smaller than the image's %llu bytes",
                                 (unsigned long long) size_bytes, (unsigned long long) img->disk_size);

        /* Claim the path: of two creates of one path, exactly one goes on
         * (qemu-img would overwrite, and the loser's cleanup would remove
         * the winner's registration). */
        _cleanup_close_ int dfd = open(abs, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (dfd < 0)
                return errno == EEXIST ? error_set(err, EEXIST, "disk '%s' exists", abs)
                                       : error_set_errno(err, errno, "create disk '%s'", abs);
        /* Register before qemu-img writes the overlay: a crash then leaves a
         * marker gc prunes, never an overlay whose base could be removed. */
        char users[STORE_HEX_LEN + 8];
        snprintf(users, sizeof users, "%s/users", hex);
        if (mkdirat(s->images_fd, users, 0755) < 0 && errno != EEXIST) {
                r = error_set_errno(err, errno, "create '%s/images/%s'", s->root, users);
                unlink(abs);
                return r;
        }
        _cleanup_close_ int ufd = openat(s->images_fd, users, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (ufd < 0) {
                r = error_set_errno(err, errno, "open '%s/images/%s'", s->root, users);
                unlink(abs);
                return r;
        }
        if ((r = store_write_atomic(s, ufd, mname, abs, strlen(abs), err)) < 0) {
                unlink(abs);
                return r;
        }
        char size_arg[32];
        snprintf(size_arg, sizeof size_arg, "%llu", (unsigned long long) size_bytes);
        char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", img->disk_path, abs, size_arg, NULL};
        if ((r = run_tool(argv, err)) < 0) {
                unlink(abs);
                unlinkat(ufd, mname, 0);
                error_prefix(err, "create disk '%s'", abs);
                return r;
        }
        return 0;
}

int store_container_disk_remove(Store *s, const char *path, Error **err) {
        _cleanup_free_ char *abs = NULL;
        char mname[STORE_HEX_LEN + 1];
        _cleanup_close_ int slock = disk_begin(s, path, &abs, mname, err);
        if (slock < 0)
                return slock;
        /* Only a path the store registered is deleted: `disk rm` with a
         * mistyped path must not remove an unrelated file. The marker goes
         * last, so a crash in between leaves a registration gc prunes. */
        _cleanup_closedir_ DIR *d = store_dir_at(s->images_fd, ".");
        if (!d)
                return error_set_errno(err, errno, "open '%s/images'", s->root);
        bool found = false;
        for (struct dirent *de; (de = readdir(d));) {
                char m[NAME_MAX + STORE_HEX_LEN + 16];
                struct stat st;
                if (!store_id_hex(de->d_name, NULL))
                        continue;
                snprintf(m, sizeof m, "%s/users/%s", de->d_name, mname);
                if (fstatat(s->images_fd, m, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (!found && unlink(abs) < 0 && errno != ENOENT)
                        return error_set_errno(err, errno, "remove disk '%s'", abs);
                found = true;
                (void) unlinkat(s->images_fd, m, 0);
        }
        if (!found)
                return error_set(err, ENOENT, "'%s' is not a container disk of this store", abs);
        return 0;
}
