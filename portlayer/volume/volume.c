/* volume.c: named volumes: records and disks under <state>/volumes/ (see
 * volume.h for the contract, the layout and the crash rules).
 *
 * Nothing is cached: every call reads the records it needs under the store's
 * mutex, so what the API shows is what is on disk. A record is
 *     {"name", "id", "size", "created_ns", "users": [{"id", "name"}]}
 * and is checked whole when read (it may have been edited by hand). */
#include "portlayer/volume/volume.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/json/json-util.h"
#include "images/ext4/ext4-writer.h"

#define RECORD "volume.json"
#define DISK "disk.img"
#define DISK_TMP ".disk.img.tmp"
#define TRASH_PREFIX ".trash-"
#define USER_ID_MAX 128

struct VolumeStore {
        char *dir; /* <state>/volumes */
        pthread_mutex_t lock;
};

bool volume_name_is_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;
        if (n == 0 || n > VOLUME_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
                        return false;
        }
        return true;
}

void volume_disk_clear(VolumeDisk *d) {
        if (d)
                d->path = mfree(d->path);
}

static int check_name(const char *name, Error **err) {
        if (!volume_name_is_valid(name))
                return error_set(err, EINVAL, "bad volume name '%.80s': 1-%d of [a-zA-Z0-9_.-], starting with a letter or digit",
                                 name ? name : "", VOLUME_NAME_MAX);
        return 0;
}

static char *path_of(const VolumeStore *vs, const char *name, const char *file) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s%s%s", vs->dir, name, file ? "/" : "", file ? file : "") < 0)
                return NULL;
        return p;
}

static bool is_hex(const char *s, size_t n) {
        if (!s || strlen(s) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

/* Checks a record read from disk: the fields and types volume.c writes. */
static int record_check(const char *name, const json_t *rec, Error **err) {
        const char *rname = NULL, *id = NULL;
        json_int_t size = 0, created = 0;
        json_t *users = NULL;
        if (json_unpack((json_t *) rec, "{s:s, s:s, s:I, s:I, s:o}", "name", &rname, "id", &id, "size", &size,
                        "created_ns", &created, "users", &users) < 0 ||
            strcmp(rname, name) != 0 || !is_hex(id, VOLUME_ID_HEX) || size < 0 || !json_is_array(users) ||
            json_array_size(users) > VOLUME_USERS_MAX)
                return error_set(err, EBADMSG, "volume %s: malformed record", name);
        size_t i;
        json_t *u;
        json_array_foreach(users, i, u) {
                const char *uid = NULL, *uname = NULL;
                if (json_unpack(u, "{s:s, s:s}", "id", &uid, "name", &uname) < 0 || !uid[0] ||
                    strlen(uid) > USER_ID_MAX || strlen(uname) > USER_ID_MAX)
                        return error_set(err, EBADMSG, "volume %s: malformed user %zu in its record", name, i);
        }
        return 0;
}

/* Reads the record of name. -ENOENT when there is none. Caller holds lock. */
static int record_load(VolumeStore *vs, const char *name, json_t **ret, Error **err) {
        _cleanup_free_ char *p = path_of(vs, name, RECORD);
        if (!p)
                return error_oom(err);
        json_error_t je;
        _cleanup_json_ json_t *rec = json_load_file(p, JSON_REJECT_DUPLICATES, &je);
        if (!rec) {
                if (access(p, F_OK) < 0 && errno == ENOENT)
                        return error_set(err, ENOENT, "no such volume: %s", name);
                return error_set(err, EBADMSG, "volume %s: record: %s", name, je.text);
        }
        int r = record_check(name, rec, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(rec);
        return 0;
}

static int record_save(VolumeStore *vs, const char *name, const json_t *rec, Error **err) {
        _cleanup_free_ char *p = path_of(vs, name, RECORD);
        _cleanup_free_ char *text = json_dumps(rec, JSON_COMPACT);
        if (!p || !text)
                return error_oom(err);
        int r = write_file_atomic(p, text, strlen(text), 0600);
        return r < 0 ? error_set_errno(err, -r, "volume %s: write record", name) : 0;
}

static json_t *render(VolumeStore *vs, const char *name, const json_t *rec) {
        char when[TIME_RFC3339_MAX];
        time_rfc3339_ns((int64_t) json_integer_value(json_object_get(rec, "created_ns")), when);
        _cleanup_free_ char *disk = path_of(vs, name, DISK);
        if (!disk)
                return NULL;
        return json_pack("{s:s, s:O, s:s, s:O, s:s}", "name", name, "size", json_object_get(rec, "size"),
                         "created_at", when, "users", json_object_get(rec, "users"), "path", disk);
}

static int fill_disk(VolumeStore *vs, const char *name, const json_t *rec, VolumeDisk *ret, Error **err) {
        if (!ret)
                return 0;
        *ret = (VolumeDisk){0};
        snprintf(ret->name, sizeof ret->name, "%s", name);
        snprintf(ret->serial, sizeof ret->serial, "%s%s", VOLUME_SERIAL_PREFIX,
                 json_string_value(json_object_get(rec, "id")));
        ret->path = path_of(vs, name, DISK);
        return ret->path ? 0 : error_oom(err);
}

/* Caller holds lock. */
static int create_locked(VolumeStore *vs, const char *name, uint64_t size, json_t **ret_rec, Error **err) {
        _cleanup_free_ char *dir = path_of(vs, name, NULL), *tmp = path_of(vs, name, DISK_TMP),
                            *disk = path_of(vs, name, DISK);
        if (!dir || !tmp || !disk)
                return error_oom(err);
        if (mkdir(dir, 0700) < 0)
                return errno == EEXIST ? error_set(err, EEXIST, "volume %s already exists", name)
                                       : error_set_errno(err, errno, "volume %s: create %s", name, dir);
        char id[VOLUME_ID_HEX + 1];
        random_hex(id, VOLUME_ID_HEX);
        _cleanup_json_ json_t *rec = json_pack("{s:s, s:s, s:I, s:I, s:[]}", "name", name, "id", id, "size",
                                               (json_int_t) size, "created_ns", (json_int_t) realtime_nsec(), "users");
        int r = rec ? ext4_image_create_empty(tmp, size, err) : error_oom(err);
        if (r >= 0 && rename(tmp, disk) < 0)
                r = error_set_errno(err, errno, "volume %s: rename its disk", name);
        if (r >= 0)
                r = record_save(vs, name, rec, err);
        if (r < 0) {
                (void) rm_rf(dir);
                return error_prefix(err, "create volume %s", name);
        }
        *ret_rec = TAKE_PTR(rec);
        return 0;
}

int volume_create(VolumeStore *vs, const char *name, uint64_t size_bytes, json_t **ret, Error **err) {
        int r = check_name(name, err);
        if (r < 0)
                return r;
        uint64_t size = size_bytes ? size_bytes / 4096 * 4096 : VOLUME_SIZE_DEFAULT;
        if (size < VOLUME_SIZE_MIN || size > VOLUME_SIZE_MAX)
                return error_set(err, EINVAL, "volume %s: size %llu bytes: must be from %llu (32M) to %llu (1T)", name,
                                 (unsigned long long) size_bytes, VOLUME_SIZE_MIN, VOLUME_SIZE_MAX);
        _cleanup_json_ json_t *rec = NULL;
        pthread_mutex_lock(&vs->lock);
        r = create_locked(vs, name, size, &rec, err);
        pthread_mutex_unlock(&vs->lock);
        if (r >= 0)
                log_info("volume %s created (%llu bytes)", name, (unsigned long long) size);
        if (r >= 0 && ret && !(*ret = render(vs, name, rec)))
                return error_oom(err);
        return r;
}

int volume_inspect(VolumeStore *vs, const char *name, json_t **ret, Error **err) {
        int r = check_name(name, err);
        if (r < 0)
                return r == -EINVAL ? error_set(err, ENOENT, "no such volume: %.80s", name) : r;
        _cleanup_json_ json_t *rec = NULL;
        pthread_mutex_lock(&vs->lock);
        r = record_load(vs, name, &rec, err);
        pthread_mutex_unlock(&vs->lock);
        if (r < 0)
                return r;
        return (*ret = render(vs, name, rec)) ? 0 : error_oom(err);
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The names of the volume directories, sorted; a NULL-terminated strv. */
static int names_locked(VolumeStore *vs, char ***ret, size_t *ret_n, Error **err) {
        _cleanup_closedir_ DIR *d = opendir(vs->dir);
        if (!d)
                return error_set_errno(err, errno, "open %s", vs->dir);
        char **v = NULL;
        size_t n = 0;
        for (struct dirent *de; (de = readdir(d));) {
                if (!volume_name_is_valid(de->d_name))
                        continue;
                char **more = realloc(v, (n + 2) * sizeof(*v));
                if (!more || !(more[n] = strdup(de->d_name))) {
                        v = more ? more : v;
                        for (size_t i = 0; i < n; i++)
                                free(v[i]);
                        free(v);
                        return error_oom(err);
                }
                v = more;
                v[++n] = NULL;
        }
        if (n)
                qsort(v, n, sizeof(*v), name_cmp);
        *ret = v;
        *ret_n = n;
        return 0;
}

static void names_free(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

int volume_list(VolumeStore *vs, json_t **ret, Error **err) {
        _cleanup_json_ json_t *list = json_array();
        if (!list)
                return error_oom(err);
        char **names = NULL;
        size_t n = 0;
        pthread_mutex_lock(&vs->lock);
        int r = names_locked(vs, &names, &n, err);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_json_ json_t *rec = NULL;
                _cleanup_error_ Error *e = NULL;
                if (record_load(vs, names[i], &rec, &e) < 0) {
                        log_warning("%s", error_text(e));
                        continue;
                }
                if (json_array_append_new(list, render(vs, names[i], rec)) < 0)
                        r = error_oom(err);
        }
        pthread_mutex_unlock(&vs->lock);
        names_free(names, n);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(list);
        return 0;
}

/* Moves dir to a hidden trash name, then deletes it: a remove killed between
 * the two is finished by the next open. Caller holds lock. */
static int trash(VolumeStore *vs, const char *name, Error **err) {
        _cleanup_free_ char *dir = path_of(vs, name, NULL), *bin = NULL;
        char rnd[9];
        random_hex(rnd, 8);
        if (!dir || asprintf(&bin, "%s/" TRASH_PREFIX "%s-%s", vs->dir, rnd, name) < 0)
                return error_oom(err);
        if (rename(dir, bin) < 0)
                return error_set_errno(err, errno, "remove volume %s", name);
        int r = rm_rf(bin);
        if (r < 0)
                log_warning("volume %s: delete %s: %s (the next start finishes it)", name, bin, strerror(-r));
        return 0;
}

int volume_remove(VolumeStore *vs, const char *name, Error **err) {
        int r = check_name(name, err);
        if (r < 0)
                return r == -EINVAL ? error_set(err, ENOENT, "no such volume: %.80s", name) : r;
        _cleanup_json_ json_t *rec = NULL;
        pthread_mutex_lock(&vs->lock);
        r = record_load(vs, name, &rec, err);
        json_t *users = json_object_get(rec, "users");
        if (r >= 0 && json_array_size(users) > 0) {
                json_t *u = json_array_get(users, 0);
                r = error_set(err, EBUSY, "volume %s is in use by container %s (%.12s)%s", name,
                              json_string_value(json_object_get(u, "name")),
                              json_string_value(json_object_get(u, "id")),
                              json_array_size(users) > 1 ? " and others" : "");
        }
        if (r >= 0)
                r = trash(vs, name, err);
        pthread_mutex_unlock(&vs->lock);
        if (r >= 0)
                log_info("volume %s removed", name);
        return r;
}

static ssize_t user_index(const json_t *users, const char *container_id) {
        size_t i;
        json_t *u;
        json_array_foreach(users, i, u)
                if (strcmp(json_string_value(json_object_get(u, "id")), container_id) == 0)
                        return (ssize_t) i;
        return -1;
}

int volume_acquire(VolumeStore *vs, const char *name, const char *container_id, const char *container_name,
                   bool create, VolumeDisk *ret, Error **err) {
        int r = check_name(name, err);
        if (r < 0)
                return r;
        if (!container_id || !container_id[0] || strlen(container_id) > USER_ID_MAX || !container_name ||
            strlen(container_name) > USER_ID_MAX)
                return error_set(err, EINVAL, "volume %s: bad container id or name", name);
        _cleanup_json_ json_t *rec = NULL;
        pthread_mutex_lock(&vs->lock);
        r = record_load(vs, name, &rec, err);
        if (r == -ENOENT && create) {
                error_free(err ? TAKE_PTR(*err) : NULL);
                r = create_locked(vs, name, VOLUME_SIZE_DEFAULT, &rec, err);
                if (r >= 0)
                        log_info("volume %s created for container %s", name, container_name);
        }
        json_t *users = json_object_get(rec, "users");
        if (r >= 0 && user_index(users, container_id) < 0) {
                if (json_array_size(users) >= VOLUME_USERS_MAX)
                        r = error_set(err, E2BIG, "volume %s has %d users already", name, VOLUME_USERS_MAX);
                else if (json_array_append_new(users, json_pack("{s:s, s:s}", "id", container_id, "name",
                                                                container_name)) < 0)
                        r = error_oom(err);
                else
                        r = record_save(vs, name, rec, err);
        }
        pthread_mutex_unlock(&vs->lock);
        return r < 0 ? r : fill_disk(vs, name, rec, ret, err);
}

/* Caller holds lock. */
static int release_locked(VolumeStore *vs, const char *name, json_t *rec, const char *container_id, Error **err) {
        json_t *users = json_object_get(rec, "users");
        ssize_t i = user_index(users, container_id);
        if (i < 0)
                return 0;
        (void) json_array_remove(users, (size_t) i);
        return record_save(vs, name, rec, err);
}

int volume_release(VolumeStore *vs, const char *name, const char *container_id, Error **err) {
        if (!volume_name_is_valid(name) || !container_id)
                return 0;
        _cleanup_json_ json_t *rec = NULL;
        _cleanup_error_ Error *e = NULL;
        pthread_mutex_lock(&vs->lock);
        int r = record_load(vs, name, &rec, &e);
        if (r == -ENOENT)
                r = 0;
        else if (r < 0)
                r = error_set(err, -r, "%s", error_text(e));
        else
                r = release_locked(vs, name, rec, container_id, err);
        pthread_mutex_unlock(&vs->lock);
        return r;
}

int volume_get_disk(VolumeStore *vs, const char *name, VolumeDisk *ret, Error **err) {
        int r = check_name(name, err);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *rec = NULL;
        pthread_mutex_lock(&vs->lock);
        r = record_load(vs, name, &rec, err);
        pthread_mutex_unlock(&vs->lock);
        return r < 0 ? r : fill_disk(vs, name, rec, ret, err);
}

int volume_prune_users(VolumeStore *vs, bool (*keep)(void *arg, const char *volume, const char *container_id),
                       void *arg, Error **err) {
        char **names = NULL;
        size_t n = 0;
        pthread_mutex_lock(&vs->lock);
        int r = names_locked(vs, &names, &n, err);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_json_ json_t *rec = NULL;
                if (record_load(vs, names[i], &rec, NULL) < 0)
                        continue;
                json_t *users = json_object_get(rec, "users");
                bool changed = false;
                for (size_t k = json_array_size(users); k-- > 0;) {
                        const char *id = json_string_value(json_object_get(json_array_get(users, k), "id"));
                        if (!keep(arg, names[i], id)) {
                                log_info("volume %s: container %.12s no longer uses it", names[i], id);
                                (void) json_array_remove(users, k);
                                changed = true;
                        }
                }
                int q = changed ? record_save(vs, names[i], rec, r < 0 ? NULL : err) : 0;
                if (q < 0 && r >= 0)
                        r = q;
        }
        pthread_mutex_unlock(&vs->lock);
        names_free(names, n);
        return r;
}

/* Finishes what a crash left in dir: trash, half-made volumes (a directory
 * without a record), a disk built but never renamed. */
static void store_clean(VolumeStore *vs) {
        _cleanup_closedir_ DIR *d = opendir(vs->dir);
        for (struct dirent *de; d && (de = readdir(d));) {
                if (strncmp(de->d_name, TRASH_PREFIX, strlen(TRASH_PREFIX)) == 0) {
                        log_info("volumes: finishing the removal of %s", de->d_name);
                        (void) rm_rf_at(dirfd(d), de->d_name, NULL);
                        continue;
                }
                if (!volume_name_is_valid(de->d_name))
                        continue;
                _cleanup_free_ char *rec = path_of(vs, de->d_name, RECORD), *tmp = path_of(vs, de->d_name, DISK_TMP);
                if (!rec || !tmp)
                        continue;
                if (access(rec, F_OK) < 0 && errno == ENOENT) {
                        log_info("volumes: removing %s, whose creation never finished", de->d_name);
                        (void) rm_rf_at(dirfd(d), de->d_name, NULL);
                } else
                        (void) unlink(tmp);
        }
}

int volume_store_open(const char *state_dir, VolumeStore **ret, Error **err) {
        if (!state_dir || state_dir[0] != '/')
                return error_set(err, EINVAL, "volumes: the state directory must be an absolute path");
        _cleanup_(volume_store_freep) VolumeStore *vs = calloc(1, sizeof(*vs));
        if (!vs)
                return error_oom(err);
        pthread_mutex_init(&vs->lock, NULL);
        if (asprintf(&vs->dir, "%s/volumes", state_dir) < 0) {
                vs->dir = NULL;
                return error_oom(err);
        }
        int r = mkdir_p(vs->dir, 0700);
        if (r < 0)
                return error_set_errno(err, -r, "create %s", vs->dir);
        store_clean(vs);
        *ret = TAKE_PTR(vs);
        return 0;
}

VolumeStore *volume_store_free(VolumeStore *vs) {
        if (!vs)
                return NULL;
        pthread_mutex_destroy(&vs->lock);
        free(vs->dir);
        free(vs);
        return NULL;
}
