/* store.c: the image store's directory, locks, atomic writes and tags.
 *
 * Opening the store creates its directories and keeps an fd on each, so every
 * later file operation is relative to those fds (openat/renameat). Locks are
 * flock()s on files in locks/: a flock belongs to an open file description,
 * so the same lock taken by two threads (two open()s) or two processes
 * excludes in both cases. Lock order, everywhere: store (shared or
 * exclusive), then one image, then tags. The tags table is a small JSON
 * object rewritten atomically on every change. Pulls are in store-pull.c,
 * records in store-record.c, gc and container disks in store-gc.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "images/oci/oci-ref.h"
#include "store-internal.h"
#include "common/json/json-util.h"

bool store_id_hex(const char *s, const char **ret_hex) {
        if (!s)
                return false;
        if (strncmp(s, "sha256:", 7) == 0)
                s += 7;
        if (strlen(s) != STORE_HEX_LEN)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        if (ret_hex)
                *ret_hex = s;
        return true;
}

int store_tag_name_normalize(const char *name, char **ret, Error **err) {
        _cleanup_oci_ref_ OciRef *ref = NULL;
        int r = oci_ref_parse(name, &ref, err);
        if (r < 0)
                return r;
        if (ref->digest)
                return error_set(err, EINVAL, "tag name '%s' has a digest", name);
        if (oci_ref_to_string(ref, ret) < 0)
                return error_oom(err);
        return 0;
}

int store_fsync_dir(int dir_fd, const char *what, Error **err) {
        if (fsync(dir_fd) < 0)
                return error_set_errno(err, errno, "fsync %s", what);
        return 0;
}

int store_tmp_name(const char *prefix, char **ret) {
        unsigned char b[8];
        random_bytes(b, sizeof b);
        char hex[17];
        for (size_t i = 0; i < sizeof b; i++)
                snprintf(hex + 2 * i, 3, "%02x", b[i]);
        return asprintf(ret, "%s-%s", prefix, hex) < 0 ? -ENOMEM : 0;
}

/* Whether fd is still the file locks/<file> (not unlinked or replaced). */
static bool lock_file_current(Store *s, int fd, const char *file) {
        struct stat a, b;
        return fstat(fd, &a) == 0 && fstatat(s->locks_fd, file, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
               a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int store_lock(Store *s, const char *name, int how, Error **err) {
        char file[STORE_HEX_LEN + 32];
        snprintf(file, sizeof file, "%s.lock", name);
        for (;;) {
                _cleanup_close_ int fd = openat(s->locks_fd, file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0)
                        return error_set_errno(err, errno, "open lock '%s/locks/%s'", s->root, file);
                while (flock(fd, how) < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EWOULDBLOCK)
                                return -EWOULDBLOCK;
                        return error_set_errno(err, errno, "lock '%s/locks/%s'", s->root, file);
                }
                if (lock_file_current(s, fd, file))
                        return TAKE_FD(fd);
        }
}

int store_lock_image(Store *s, const char *hex, int how, Error **err) {
        char name[STORE_HEX_LEN + 8];
        snprintf(name, sizeof name, "image-%s", hex);
        return store_lock(s, name, how, err);
}

void store_lock_image_unlink(Store *s, const char *hex) {
        if (store_record_exists(s, hex))
                return;
        char file[STORE_HEX_LEN + 16];
        snprintf(file, sizeof file, "image-%s.lock", hex);
        (void) unlinkat(s->locks_fd, file, 0);
}

DIR *store_dir_at(int dir_fd, const char *name) {
        int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        DIR *d = fdopendir(fd);
        if (!d)
                safe_close(fd);
        return d;
}

int store_write_atomic(Store *s, int dir_fd, const char *name, const void *data, size_t n, Error **err) {
        _cleanup_free_ char *tmp = NULL;
        if (store_tmp_name("file", &tmp) < 0)
                return error_oom(err);
        _cleanup_close_ int fd = openat(s->tmp_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return error_set_errno(err, errno, "create '%s/tmp/%s'", s->root, tmp);
        int r = write_all(fd, data, n);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && renameat(s->tmp_fd, tmp, dir_fd, name) < 0)
                r = negative_errno();
        if (r < 0) {
                unlinkat(s->tmp_fd, tmp, 0);
                return error_set_errno(err, -r, "write '%s'", name);
        }
        return store_fsync_dir(dir_fd, name, err);
}

/* ---- open / free ---- */

static int dir_open(int parent, const char *name, const char *root, int *ret, Error **err) {
        if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST)
                return error_set_errno(err, errno, "create '%s/%s'", root, name);
        int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return error_set_errno(err, errno, "open '%s/%s'", root, name);
        *ret = fd;
        return 0;
}

int store_open(const char *root, Store **ret, Error **err) {
        if (!root)
                root = getenv(STORE_ENV_ROOT);
        if (!root || !*root)
                root = STORE_DEFAULT_ROOT;
        int r = mkdir_p(root, 0755);
        if (r < 0)
                return error_set_errno(err, -r, "create store '%s'", root);
        _cleanup_store_ Store *s = calloc(1, sizeof *s);
        if (!s)
                return error_oom(err);
        s->root_fd = s->blobs_fd = s->images_fd = s->locks_fd = s->tmp_fd = -1;
        if (!(s->root = realpath(root, NULL)))
                return error_set_errno(err, errno, "store '%s'", root);
        if ((s->root_fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
                return error_set_errno(err, errno, "open store '%s'", s->root);
        _cleanup_close_ int blobs = -1;
        if ((r = dir_open(s->root_fd, "blobs", s->root, &blobs, err)) < 0 ||
            (r = dir_open(blobs, "sha256", s->root, &s->blobs_fd, err)) < 0 ||
            (r = dir_open(s->root_fd, "images", s->root, &s->images_fd, err)) < 0 ||
            (r = dir_open(s->root_fd, "locks", s->root, &s->locks_fd, err)) < 0 ||
            (r = dir_open(s->root_fd, "tmp", s->root, &s->tmp_fd, err)) < 0)
                return r;

        /* Leftovers of a killed process: only when nobody else uses the store. */
        _cleanup_close_ int lock = store_lock(s, "store", LOCK_EX | LOCK_NB, err);
        if (lock >= 0 && (r = store_clean_leftovers(s, NULL, err)) < 0)
                return r;
        if (lock < 0 && lock != -EWOULDBLOCK)
                return lock;
        *ret = TAKE_PTR(s);
        return 0;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        safe_close(s->root_fd);
        safe_close(s->blobs_fd);
        safe_close(s->images_fd);
        safe_close(s->locks_fd);
        safe_close(s->tmp_fd);
        free(s->root);
        free(s);
        return NULL;
}

const char *store_root(const Store *s) {
        return s->root;
}

/* ---- tags ---- */

void store_tags_clear(StoreTags *t) {
        for (size_t i = 0; i < t->n; i++) {
                free(t->names[i]);
                free(t->ids[i]);
        }
        free(t->names);
        free(t->ids);
        *t = (StoreTags) {};
}

ssize_t store_tags_find(const StoreTags *t, const char *name) {
        for (size_t i = 0; i < t->n; i++)
                if (strcmp(t->names[i], name) == 0)
                        return (ssize_t) i;
        return -1;
}

int store_tags_set(StoreTags *t, const char *name, const char *id, Error **err) {
        ssize_t i = store_tags_find(t, name);
        char *v = strdup(id);
        if (!v)
                return error_oom(err);
        if (i >= 0) {
                free(t->ids[i]);
                t->ids[i] = v;
                return 0;
        }
        if (t->n >= STORE_TAGS_MAX) {
                free(v);
                return error_set(err, E2BIG, "too many tags (at most %d)", STORE_TAGS_MAX);
        }
        char **names = realloc(t->names, (t->n + 1) * sizeof *names);
        if (names)
                t->names = names;
        char **ids = names ? realloc(t->ids, (t->n + 1) * sizeof *ids) : NULL;
        if (ids)
                t->ids = ids;
        char *k = ids ? strdup(name) : NULL;
        if (!k) {
                free(v);
                return error_oom(err);
        }
        /* Keep names sorted: insertion point. */
        size_t at = 0;
        while (at < t->n && strcmp(t->names[at], name) < 0)
                at++;
        memmove(t->names + at + 1, t->names + at, (t->n - at) * sizeof *t->names);
        memmove(t->ids + at + 1, t->ids + at, (t->n - at) * sizeof *t->ids);
        t->names[at] = k;
        t->ids[at] = v;
        t->n++;
        return 0;
}

bool store_tags_unset(StoreTags *t, const char *name) {
        ssize_t i = store_tags_find(t, name);
        if (i < 0)
                return false;
        free(t->names[i]);
        free(t->ids[i]);
        memmove(t->names + i, t->names + i + 1, (t->n - i - 1) * sizeof *t->names);
        memmove(t->ids + i, t->ids + i + 1, (t->n - i - 1) * sizeof *t->ids);
        t->n--;
        return true;
}

int store_tags_load(Store *s, StoreTags *ret, Error **err) {
        StoreTags t = {};
        _cleanup_close_ int fd = openat(s->root_fd, "tags.json", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                if (errno != ENOENT)
                        return error_set_errno(err, errno, "open '%s/tags.json'", s->root);
                *ret = t;
                return 0;
        }
        _cleanup_free_ char *data = NULL;
        size_t n = 0;
        int r = read_fd_bounded(fd, STORE_RECORD_MAX, &data, &n);
        if (r < 0)
                return error_set_errno(err, -r, "read '%s/tags.json'", s->root);
        json_error_t jerr;
        _cleanup_json_ json_t *j = json_loadb(data, n, JSON_REJECT_DUPLICATES, &jerr);
        if (!j || !json_is_object(j))
                return error_set(err, EBADMSG, "'%s/tags.json' is not a JSON object", s->root);
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
                if (!json_is_string(v) || !store_id_hex(json_string_value(v), NULL)) {
                        store_tags_clear(&t);
                        return error_set(err, EBADMSG, "'%s/tags.json': bad id for '%s'", s->root, k);
                }
                if ((r = store_tags_set(&t, k, json_string_value(v), err)) < 0) {
                        store_tags_clear(&t);
                        return r;
                }
        }
        *ret = t;
        return 0;
}

int store_tags_save(Store *s, const StoreTags *t, Error **err) {
        _cleanup_json_ json_t *j = json_object();
        if (!j)
                return error_oom(err);
        for (size_t i = 0; i < t->n; i++)
                if (json_object_set_new(j, t->names[i], json_string(t->ids[i])) < 0)
                        return error_oom(err);
        _cleanup_free_ char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!text)
                return error_oom(err);
        return store_write_atomic(s, s->root_fd, "tags.json", text, strlen(text), err);
}

/* ---- lookups ---- */

/* Collects the ids of records whose hex starts with prefix. */
static int prefix_match(Store *s, const char *prefix, char ret[static STORE_HEX_LEN + 1], size_t *ret_n,
                        Error **err) {
        _cleanup_closedir_ DIR *d = store_dir_at(s->images_fd, ".");
        if (!d)
                return error_set_errno(err, errno, "open '%s/images'", s->root);
        size_t n = 0, len = strlen(prefix);
        for (struct dirent *de; (de = readdir(d));) {
                if (!store_id_hex(de->d_name, NULL) || strncmp(de->d_name, prefix, len) != 0 ||
                    !store_record_exists(s, de->d_name))
                        continue;
                if (n++ == 0)
                        memcpy(ret, de->d_name, STORE_HEX_LEN + 1);
        }
        *ret_n = n;
        return 0;
}

static bool hex_prefix(const char *p) {
        size_t n = strlen(p);
        if (n < STORE_ID_PREFIX_MIN || n > STORE_HEX_LEN)
                return false;
        return strspn(p, "0123456789abcdef") == n;
}

int store_resolve(Store *s, const StoreTags *t, const char *ref, char ret[static STORE_HEX_LEN + 1], Error **err) {
        const char *hex;
        if (!ref || !*ref)
                return error_set(err, EINVAL, "empty image reference");
        if (store_id_hex(ref, &hex)) {
                if (!store_record_exists(s, hex))
                        return error_set(err, ENOENT, "no image %s", ref);
                memcpy(ret, hex, STORE_HEX_LEN + 1);
                return 0;
        }
        _cleanup_free_ char *name = NULL;
        if (store_tag_name_normalize(ref, &name, NULL) >= 0) {
                ssize_t i = store_tags_find(t, name);
                if (i >= 0 && store_id_hex(t->ids[i], &hex) && store_record_exists(s, hex)) {
                        memcpy(ret, hex, STORE_HEX_LEN + 1);
                        return 0;
                }
        }
        const char *p = strncmp(ref, "sha256:", 7) == 0 ? ref + 7 : ref;
        if (hex_prefix(p)) {
                size_t n = 0;
                int r = prefix_match(s, p, ret, &n, err);
                if (r < 0)
                        return r;
                if (n == 1)
                        return 0;
                if (n > 1)
                        return error_set(err, EINVAL, "image id prefix '%s' is ambiguous (%zu images)", ref, n);
        }
        return error_set(err, ENOENT, "no image '%s'", ref);
}

int store_tags_point(Store *s, StoreTags *t, const char *name, const char *id, Error **err) {
        ssize_t i = store_tags_find(t, name);
        if (i >= 0 && strcmp(t->ids[i], id) == 0)
                return 0;
        int r = store_tags_set(t, name, id, err);
        return r < 0 ? r : store_tags_save(s, t, err);
}

int store_tags_lock_load(Store *s, int how, StoreTags *ret, Error **err) {
        _cleanup_close_ int lock = store_lock(s, "tags", how, err);
        if (lock < 0)
                return lock;
        int r = store_tags_load(s, ret, err);
        return r < 0 ? r : TAKE_FD(lock);
}

int store_resolve_ref(Store *s, const char *ref, char hex[static STORE_HEX_LEN + 1], Error **err) {
        _cleanup_(store_tags_clear) StoreTags t = {};
        _cleanup_close_ int lock = store_tags_lock_load(s, LOCK_SH, &t, err);
        return lock < 0 ? lock : store_resolve(s, &t, ref, hex, err);
}

int store_inspect(Store *s, const char *ref, StoreImage **ret, Error **err) {
        _cleanup_close_ int lock = store_lock(s, "tags", LOCK_SH, err);
        if (lock < 0)
                return lock;
        _cleanup_(store_tags_clear) StoreTags t = {};
        char hex[STORE_HEX_LEN + 1];
        _cleanup_store_image_ StoreImage *img = NULL;
        int r;
        if ((r = store_tags_load(s, &t, err)) < 0 || (r = store_resolve(s, &t, ref, hex, err)) < 0 ||
            (r = store_record_read(s, hex, &img, err)) < 0)
                return r;
        if (store_image_fill_tags(img, &t) < 0)
                return error_oom(err);
        *ret = TAKE_PTR(img);
        return 0;
}

int store_tag(Store *s, const char *ref, const char *tag_name, Error **err) {
        _cleanup_free_ char *name = NULL;
        int r = store_tag_name_normalize(tag_name, &name, err);
        if (r < 0)
                return r;
        /* Shared store lock: gc must not clean our temp file away. */
        _cleanup_close_ int slock = store_lock(s, "store", LOCK_SH, err);
        if (slock < 0)
                return slock;
        _cleanup_close_ int lock = store_lock(s, "tags", LOCK_EX, err);
        if (lock < 0)
                return lock;
        _cleanup_(store_tags_clear) StoreTags t = {};
        char hex[STORE_HEX_LEN + 1], id[STORE_ID_BUF];
        if ((r = store_tags_load(s, &t, err)) < 0 || (r = store_resolve(s, &t, ref, hex, err)) < 0)
                return r;
        snprintf(id, sizeof id, "sha256:%s", hex);
        return store_tags_point(s, &t, name, id, err);
}

void store_image_list_free(StoreImage **list, size_t n) {
        for (size_t i = 0; list && i < n; i++)
                store_image_free(list[i]);
        free(list);
}

static int cmp_image_id(const void *a, const void *b) {
        return strcmp((*(StoreImage *const *) a)->id, (*(StoreImage *const *) b)->id);
}

int store_list(Store *s, StoreImage ***ret, size_t *ret_n, Error **err) {
        _cleanup_(store_tags_clear) StoreTags t = {};
        _cleanup_close_ int lock = store_tags_lock_load(s, LOCK_SH, &t, err);
        if (lock < 0)
                return lock;
        int r = 0;
        _cleanup_closedir_ DIR *d = store_dir_at(s->images_fd, ".");
        if (!d)
                return error_set_errno(err, errno, "open '%s/images'", s->root);
        StoreImage **list = NULL;
        size_t n = 0;
        for (struct dirent *de; (de = readdir(d));) {
                StoreImage *img = NULL;
                if (!store_id_hex(de->d_name, NULL) || !store_record_exists(s, de->d_name))
                        continue;
                StoreImage **nl = realloc(list, (n + 1) * sizeof *list);
                if (!nl) {
                        store_image_list_free(list, n);
                        return error_oom(err);
                }
                list = nl;
                Error *e = NULL;
                r = store_record_read(s, de->d_name, &img, &e);
                if (r == -ENOENT) {
                        error_free(e); /* removed since readdir() saw it */
                        continue;
                }
                if (r < 0) {
                        store_image_list_free(list, n);
                        error_set(err, -r, "%s", error_text(e));
                        error_free(e);
                        return r;
                }
                if (store_image_fill_tags(img, &t) < 0) {
                        store_image_free(img);
                        store_image_list_free(list, n);
                        return error_oom(err);
                }
                list[n++] = img;
        }
        if (n > 1)
                qsort(list, n, sizeof *list, cmp_image_id);
        *ret = list;
        *ret_n = n;
        return 0;
}

/* ---- remove ---- */

static int image_delete(Store *s, const char *hex, Error **err) {
        /* The record goes first: without it the directory is a leftover. */
        _cleanup_close_ int dir = openat(s->images_fd, hex, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir < 0)
                return error_set_errno(err, errno, "open '%s/images/%s'", s->root, hex);
        if (unlinkat(dir, "image.json", 0) < 0 && errno != ENOENT)
                return error_set_errno(err, errno, "remove '%s/images/%s/image.json'", s->root, hex);
        int r = store_fsync_dir(dir, "image dir", err);
        if (r < 0)
                return r;
        r = rm_rf_at(s->images_fd, hex, NULL);
        if (r < 0)
                return error_set_errno(err, -r, "remove '%s/images/%s'", s->root, hex);
        return 0;
}

int store_remove(Store *s, const char *ref, Error **err) {
        _cleanup_close_ int slock = store_lock(s, "store", LOCK_SH, err);
        if (slock < 0)
                return slock;
        char hex[STORE_HEX_LEN + 1], now[STORE_HEX_LEN + 1];
        _cleanup_close_ int ilock = -1, tlock = -1;
        _cleanup_(store_tags_clear) StoreTags t = {};
        int r;
        for (;;) {
                if ((r = store_resolve_ref(s, ref, hex, err)) < 0)
                        return r;
                if ((ilock = store_lock_image(s, hex, LOCK_EX, err)) < 0)
                        return ilock;
                if ((tlock = store_lock(s, "tags", LOCK_EX, err)) < 0)
                        return tlock;
                if ((r = store_tags_load(s, &t, err)) < 0 || (r = store_resolve(s, &t, ref, now, err)) < 0)
                        return r;
                /* ref may name another image than when we resolved it
                 * (a tag moved while we waited for the image lock). */
                if (strcmp(now, hex) == 0)
                        break;
                store_tags_clear(&t);
                tlock = safe_close(tlock);
                ilock = safe_close(ilock);
        }

        /* By tag: only that tag, unless it is the last one. By id: all. */
        _cleanup_free_ char *name = NULL;
        bool by_id = store_id_hex(ref, NULL) || store_tag_name_normalize(ref, &name, NULL) < 0 ||
                     store_tags_find(&t, name) < 0;
        char id[STORE_ID_BUF];
        snprintf(id, sizeof id, "sha256:%s", hex);
        size_t left = 0;
        for (size_t i = 0; i < t.n; i++)
                if (strcmp(t.ids[i], id) == 0 && (by_id || strcmp(t.names[i], name) != 0))
                        left++;
        size_t users = 0;
        if (!by_id && left > 0) {
                store_tags_unset(&t, name);
                return store_tags_save(s, &t, err);
        }
        if ((r = store_record_users(s, hex, &users)) < 0)
                return error_set_errno(err, -r, "image %.12s: users", hex);
        if (users > 0)
                return error_set(err, EBUSY, "image %.12s is in use by %zu container disk(s)", hex, users);
        for (size_t i = t.n; i > 0; i--)
                if (strcmp(t.ids[i - 1], id) == 0)
                        store_tags_unset(&t, t.names[i - 1]);
        if ((r = store_tags_save(s, &t, err)) < 0)
                return r;
        if ((r = image_delete(s, hex, err)) < 0)
                return r;
        store_lock_image_unlink(s, hex);
        return 0;
}
