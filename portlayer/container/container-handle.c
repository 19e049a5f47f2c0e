/* container-handle.c: handles and Commit, and the removal of containers.
 *
 * A handle is a private copy of a container's desired configuration plus the
 * generation it was taken at. Handles live in memory only (a daemon restart
 * forgets them: a client then gets 404 and takes a new one); the table holds
 * CONTAINER_HANDLES_MAX of them and forgets the oldest past that, so clients
 * that never commit cannot exhaust it. Commit takes the container's `op`
 * lock, compares generations (VIC relied on vSphere's ChangeVersion; libvirt
 * has none, so the generation is ours), and realizes the change. */
#include "container-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/json/json-util.h"

static bool name_is_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > CONTAINER_NAME_MAX || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
                                                  (s[0] >= '0' && s[0] <= '9')))
                return false;
        return vm_name_is_valid(s, CONTAINER_NAME_MAX);
}

void handle_destroy(Handle *hd) {
        size_t i;
        json_t *f;
        json_array_foreach(hd->files, i, f)
                (void) unlink(json_string_value(json_object_get(f, "file")));
        json_decref(hd->files);
        json_decref(hd->config);
        free(hd->container_id);
        free(hd->name);
        free(hd->image);
        free(hd->image_id);
        free(hd);
}

/* Adds hd to the table, forgetting the oldest handle when it is full. */
static void handles_add_locked(ContainerHost *h, Handle *hd) {
        hd->serial = ++h->handle_serial;
        if (h->n_handles >= CONTAINER_HANDLES_MAX) {
                size_t oldest = 0;
                for (size_t i = 1; i < h->n_handles; i++)
                        if (h->handles[i]->serial < h->handles[oldest]->serial)
                                oldest = i;
                handle_destroy(h->handles[oldest]);
                h->handles[oldest] = hd;
                return;
        }
        h->handles[h->n_handles++] = hd;
}

static int handles_reserve(ContainerHost *h) {
        if (h->handles)
                return 0;
        h->handles = calloc(CONTAINER_HANDLES_MAX, sizeof(*h->handles));
        return h->handles ? 0 : -ENOMEM;
}

static Handle *handle_find_locked(ContainerHost *h, const char *id) {
        for (size_t i = 0; i < h->n_handles; i++)
                if (strcmp(h->handles[i]->id, id) == 0)
                        return h->handles[i];
        return NULL;
}

/* Takes the handle out of the table; the caller owns it. */
static Handle *handle_take_locked(ContainerHost *h, const char *id) {
        for (size_t i = 0; i < h->n_handles; i++)
                if (strcmp(h->handles[i]->id, id) == 0) {
                        Handle *hd = h->handles[i];
                        h->handles[i] = h->handles[--h->n_handles];
                        return hd;
                }
        return NULL;
}

static Handle *handle_new(void) {
        Handle *hd = calloc(1, sizeof(*hd));
        if (!hd)
                return NULL;
        hd->target = -1;
        hd->files = json_array();
        if (!hd->files)
                return free(hd), NULL;
        random_hex(hd->id, 32);
        return hd;
}

static bool name_taken_locked(ContainerHost *h, const char *name, const char *except_id) {
        for (size_t i = 0; i < h->n_containers; i++)
                if (!h->containers[i]->removed && strcmp(h->containers[i]->name, name) == 0 &&
                    (!except_id || strcmp(h->containers[i]->id, except_id) != 0))
                        return true;
        for (size_t i = 0; i < h->n_handles; i++)
                if (h->handles[i]->is_new && strcmp(h->handles[i]->name, name) == 0)
                        return true;
        return false;
}

int container_host_create(ContainerHost *h, const char *name, const char *image, char **ret_id, char **ret_handle,
                          Error **err) {
        char id[CONTAINER_ID_HEX + 1], gen_name[32];
        random_hex(id, CONTAINER_ID_HEX);
        if (!name) {
                snprintf(gen_name, sizeof gen_name, "pl-%.12s", id);
                name = gen_name;
        }
        if (!name_is_valid(name))
                return error_set(err, EINVAL, "bad container name '%.80s': 1-%d of [A-Za-z0-9_.-], starting with a letter or digit",
                                 name, CONTAINER_NAME_MAX);
        if (!image || !*image)
                return error_set(err, EINVAL, "no image given");
        _cleanup_store_image_ StoreImage *img = NULL;
        int r = store_inspect(h->store, image, &img, err);
        if (r < 0)
                return r == -ENOENT ? error_set(err, ENOENT, "no such image: %s", image) : r;
        Handle *hd = handle_new();
        if (!hd)
                return error_oom(err);
        hd->is_new = true;
        hd->container_id = strdup(id);
        hd->name = strdup(name);
        hd->image = strdup(image);
        hd->image_id = strdup(img->id);
        r = container_config_from_image(img, &hd->config, err);
        if (r >= 0 && (!hd->container_id || !hd->name || !hd->image || !hd->image_id || !(*ret_id = strdup(id)) ||
                       !(*ret_handle = strdup(hd->id))))
                r = error_oom(err);
        if (r < 0) {
                handle_destroy(hd);
                return r;
        }
        pthread_mutex_lock(&h->lock);
        if (name_taken_locked(h, name, NULL))
                r = error_set(err, EEXIST, "the name '%s' is already in use", name);
        else if ((r = handles_reserve(h)) < 0)
                r = error_oom(err);
        else
                handles_add_locked(h, hd);
        pthread_mutex_unlock(&h->lock);
        if (r < 0) {
                handle_destroy(hd);
                *ret_id = mfree(*ret_id);
                *ret_handle = mfree(*ret_handle);
        }
        return r;
}

int container_host_get_handle(ContainerHost *h, const char *ref, char **ret_handle, Error **err) {
        Handle *hd = handle_new();
        if (!hd)
                return error_oom(err);
        pthread_mutex_lock(&h->lock);
        Container *c = container_find_locked(h, ref);
        int r = c ? 0 : error_set(err, ENOENT, "no such container: %s", ref);
        if (r >= 0) {
                hd->container_id = strdup(c->id);
                hd->name = strdup(c->name);
                hd->generation = c->generation;
                hd->config = json_deep_copy(c->config);
                if (!hd->container_id || !hd->name || !hd->config || !(*ret_handle = strdup(hd->id)) ||
                    handles_reserve(h) < 0)
                        r = error_oom(err);
        }
        if (r >= 0)
                handles_add_locked(h, TAKE_PTR(hd));
        pthread_mutex_unlock(&h->lock);
        container_unref(c);
        if (hd)
                handle_destroy(hd);
        return r;
}

int container_handle_update(ContainerHost *h, const char *handle, const json_t *fields, Error **err) {
        int r = container_config_validate(fields, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&h->lock);
        Handle *hd = handle_find_locked(h, handle);
        if (!hd)
                r = error_set(err, ENOENT, "no such handle: %s", handle);
        else {
                _cleanup_json_ json_t *merged = json_deep_copy(hd->config);
                if (!merged || json_object_update(merged, (json_t *) fields) < 0)
                        r = error_oom(err);
                else if ((r = container_config_validate(merged, err)) >= 0) {
                        json_decref(hd->config);
                        hd->config = TAKE_PTR(merged);
                }
        }
        pthread_mutex_unlock(&h->lock);
        return r;
}

int container_handle_set_state(ContainerHost *h, const char *handle, ContainerState target, Error **err) {
        if (target != CONTAINER_RUNNING && target != CONTAINER_STOPPED && target != CONTAINER_PAUSED)
                return error_set(err, EINVAL, "state: must be running, stopped or paused");
        pthread_mutex_lock(&h->lock);
        Handle *hd = handle_find_locked(h, handle);
        if (hd)
                hd->target = target;
        pthread_mutex_unlock(&h->lock);
        return hd ? 0 : error_set(err, ENOENT, "no such handle: %s", handle);
}

/* Copies at most max bytes of fd into a new file under the tmp dir. */
static int spool(ContainerHost *h, int fd, uint64_t max, char **ret_path, Error **err) {
        _cleanup_free_ char *path = NULL;
        char rnd[17];
        random_hex(rnd, 16);
        if (asprintf(&path, "%s/archive-%s.tar", h->tmp_dir, rnd) < 0)
                return error_oom(err);
        _cleanup_close_ int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (out < 0)
                return error_set_errno(err, errno, "create %s", path);
        char buf[65536];
        uint64_t total = 0;
        for (;;) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                int r = n < 0 ? -errno : 0;
                if (r >= 0 && n > 0 && (total += (uint64_t) n) > max)
                        r = error_set(err, EFBIG, "archive larger than %llu bytes", (unsigned long long) max);
                else if (r >= 0 && n > 0)
                        r = write_all(out, buf, (size_t) n);
                if (r < 0) {
                        (void) unlink(path);
                        return err && *err ? r : error_set_errno(err, -r, "spool archive");
                }
                if (n == 0)
                        break;
        }
        *ret_path = TAKE_PTR(path);
        return 0;
}

static int check_dir(const char *dir, Error **err) {
        if (!dir || dir[0] != '/' || strlen(dir) > CONTAINER_STRING_MAX)
                return error_set(err, EINVAL, "path: must be an absolute path inside the container");
        return 0;
}

int container_handle_add_archive(ContainerHost *h, const char *handle, const char *dir, int tar_fd, uint64_t max_bytes,
                                 Error **err) {
        int r = check_dir(dir, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *file = NULL;
        r = spool(h, tar_fd, max_bytes, &file, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&h->lock);
        Handle *hd = handle_find_locked(h, handle);
        if (!hd)
                r = error_set(err, ENOENT, "no such handle: %s", handle);
        else if (json_array_size(hd->files) >= CONTAINER_FILES_MAX)
                r = error_set(err, E2BIG, "a handle holds at most %d archives", CONTAINER_FILES_MAX);
        else if (json_array_append_new(hd->files, json_pack("{s:s, s:s}", "dir", dir, "file", file)) < 0)
                r = error_oom(err);
        pthread_mutex_unlock(&h->lock);
        if (r < 0)
                (void) unlink(file);
        return r;
}

int container_handle_inspect(ContainerHost *h, const char *handle, json_t **ret, Error **err) {
        pthread_mutex_lock(&h->lock);
        Handle *hd = handle_find_locked(h, handle);
        json_t *j = hd ? json_pack("{s:s, s:s, s:I, s:O, s:s?, s:I}", "handle", hd->id, "id", hd->container_id,
                                   "generation", (json_int_t) hd->generation, "config", hd->config, "state",
                                   hd->target >= 0 ? container_state_to_string(hd->target) : NULL, "archives",
                                   (json_int_t) json_array_size(hd->files))
                       : NULL;
        pthread_mutex_unlock(&h->lock);
        if (!hd)
                return error_set(err, ENOENT, "no such handle: %s", handle);
        if (!j)
                return error_oom(err);
        *ret = j;
        return 0;
}

/* Moves the handle's spooled archives into the container's pending list. */
static int pending_adopt(Container *c, Handle *hd, Error **err) {
        size_t i;
        json_t *f;
        json_array_foreach(hd->files, i, f) {
                _cleanup_free_ char *dst = NULL;
                if (asprintf(&dst, "%s/pending-%zu-%s", c->dir, json_array_size(c->pending),
                             strrchr(json_string_value(json_object_get(f, "file")), '/') + 1) < 0)
                        return error_oom(err);
                if (rename(json_string_value(json_object_get(f, "file")), dst) < 0)
                        return error_set_errno(err, errno, "move archive into %s", c->dir);
                if (json_array_append_new(c->pending,
                                          json_pack("{s:O, s:s}", "dir", json_object_get(f, "dir"), "file", dst)) < 0)
                        return error_oom(err);
        }
        json_array_clear(hd->files);
        return 0;
}

/* Forgets the pending copy-ins from index `from` on (what a failed commit
 * had adopted) and deletes their files. Caller holds lock. */
static void pending_drop_locked(Container *c, size_t from) {
        while (json_array_size(c->pending) > from) {
                size_t last = json_array_size(c->pending) - 1;
                (void) unlink(json_string_value(json_object_get(json_array_get(c->pending, last), "file")));
                (void) json_array_remove(c->pending, last);
        }
}

/* A new container: directory, disk, record (generation 1). On failure
 * nothing of it is left. */
static int commit_new(ContainerHost *h, Handle *hd, Container **ret, Error **err) {
        Container *c = container_new(hd->container_id);
        if (!c || container_paths(h, c) < 0 || !(c->name = strdup(hd->name)) || !(c->image = strdup(hd->image)) ||
            !(c->image_id = strdup(hd->image_id)) || !(c->pending = json_array())) {
                container_unref(c);
                return error_oom(err);
        }
        c->config = json_incref(hd->config);
        c->generation = 1;
        c->created_ns = (int64_t) realtime_nsec();
        c->state = c->state_before = CONTAINER_CREATED;
        /* 0711: its QEMU's uid crosses it to the disk, lists nothing */
        int r = mkdir(c->dir, 0711) < 0 || chmod(c->dir, 0711) < 0 ? error_set_errno(err, errno, "create %s", c->dir) : 0;
        if (r >= 0)
                r = container_owner_claim(h, c, err);
        if (r >= 0)
                r = store_container_disk_create(h->store, c->image_id, c->disk, CONTAINER_DISK_SIZE_DEFAULT, err);
        if (r >= 0)
                r = container_owner_give_disk(h, c, err);
        if (r >= 0)
                r = pending_adopt(c, hd, err);
        if (r >= 0)
                r = container_mounts_acquire(h, c->id, c->name, c->config, NULL, err);
        pthread_mutex_lock(&h->lock);
        if (r >= 0 && name_taken_locked(h, c->name, NULL))
                r = error_set(err, EEXIST, "the name '%s' is already in use", c->name);
        if (r >= 0)
                r = container_save(h, c, err);
        if (r >= 0 && container_host_add_locked(h, c) < 0)
                r = error_oom(err);
        if (r >= 0)
                container_event_locked(h, c, "create");
        pthread_mutex_unlock(&h->lock);
        if (r < 0) {
                container_mounts_release(h, c->id, NULL, NULL, c->config);
                (void) store_container_disk_remove(h->store, c->disk, NULL);
                (void) rm_rf(c->dir);
                container_owner_release(h, c);
                container_unref(c);
                return r;
        }
        *ret = c;
        return 0;
}

/* Brings c to target. Caller holds c->op. */
static int commit_state(ContainerHost *h, Container *c, int target, Error **err) {
        pthread_mutex_lock(&h->lock);
        ContainerState s = c->state;
        pthread_mutex_unlock(&h->lock);
        if (target < 0 || (int) s == target)
                return 0;
        switch (target) {
        case CONTAINER_RUNNING:
                if (s == CONTAINER_PAUSED)
                        return container_resume(h, c, err);
                return container_start(h, c, err);
        case CONTAINER_STOPPED:
                if (s == CONTAINER_CREATED)
                        return 0;
                return container_stop(h, c, -1, err);
        case CONTAINER_PAUSED:
                if (s != CONTAINER_RUNNING)
                        return error_set(err, EBADFD, "container %s is %s: only a running container can be paused",
                                         c->name, container_state_to_string(s));
                return container_pause(h, c, err);
        }
        return error_set(err, EINVAL, "bad target state");
}

/* Applies a handle's files to a running container now. */
static int commit_files_now(ContainerHost *h, Container *c, Handle *hd, Error **err) {
        if (json_array_size(hd->files) == 0)
                return 0;
        Runtime *rt = NULL;
        int r = container_runtime_get(h, c, &rt, err);
        size_t i;
        json_t *f;
        json_array_foreach(hd->files, i, f) {
                if (r < 0)
                        break;
                r = container_copy_in_file(rt, json_string_value(json_object_get(f, "dir")),
                                           json_string_value(json_object_get(f, "file")), err);
        }
        if (rt)
                runtime_unref(h, rt);
        return r;
}

static int commit_existing(ContainerHost *h, Container *c, Handle *hd, Error **err) {
        pthread_mutex_lock(&h->lock);
        bool stale = c->removed || c->generation != hd->generation;
        uint64_t now_gen = c->generation;
        ContainerState s = c->state;
        pthread_mutex_unlock(&h->lock);
        if (stale)
                return error_set(err, ESTALE,
                                 "conflict: container %s was changed (generation %llu) after this handle was taken (generation %llu)",
                                 c->name, (unsigned long long) now_gen, (unsigned long long) hd->generation);
        /* Files: now when it runs and stays running, else at the next start. */
        bool running_after = (s == CONTAINER_RUNNING || s == CONTAINER_PAUSED) &&
                             (hd->target < 0 || hd->target == CONTAINER_RUNNING || hd->target == CONTAINER_PAUSED);
        int r = 0;
        if (running_after && s == CONTAINER_RUNNING)
                r = commit_files_now(h, c, hd, err);
        if (r >= 0)
                r = container_mounts_acquire(h, c->id, c->name, hd->config, c->config, err);
        _cleanup_json_ json_t *old_config = NULL;
        pthread_mutex_lock(&h->lock);
        size_t n_pending = json_array_size(c->pending);
        if (r >= 0 && !(running_after && s == CONTAINER_RUNNING))
                r = pending_adopt(c, hd, err);
        if (r >= 0) {
                old_config = c->config;
                c->config = json_incref(hd->config);
                c->generation++;
                c->error = mfree(c->error);
                r = container_save(h, c, err);
                if (r < 0) {
                        json_decref(c->config);
                        c->config = TAKE_PTR(old_config);
                        c->generation--;
                }
        }
        if (r < 0) {
                pending_drop_locked(c, n_pending);
                (void) container_save(h, c, NULL);
        }
        pthread_mutex_unlock(&h->lock);
        if (r < 0) {
                container_mounts_release(h, c->id, c->config, c->started_config, hd->config);
                return r;
        }
        r = container_network_commit(h, c, hd->config, err);
        bool network_changed = r >= 0;
        if (r >= 0)
                r = commit_state(h, c, hd->target, err);
        if (r < 0 && network_changed) /* back to the old address and ports */
                (void) container_network_commit(h, c, old_config, NULL);
        if (r < 0) {
                /* Nothing of the change stays: the old configuration,
                 * generation and copy-ins come back, the error is kept for
                 * inspect. */
                pthread_mutex_lock(&h->lock);
                json_decref(c->config);
                c->config = TAKE_PTR(old_config);
                c->generation--;
                pending_drop_locked(c, n_pending);
                free(c->error);
                c->error = strdup(error_text(err ? *err : NULL));
                container_set_state_locked(h, c, c->state);
                pthread_mutex_unlock(&h->lock);
                container_mounts_release(h, c->id, c->config, c->started_config, hd->config);
        } else
                container_mounts_release(h, c->id, c->config, c->started_config, old_config);
        return r;
}

int container_host_commit(ContainerHost *h, const char *handle, json_t **ret, Error **err) {
        pthread_mutex_lock(&h->lock);
        Handle *hd = handle_take_locked(h, handle);
        Container *c = hd && !hd->is_new ? container_find_locked(h, hd->container_id) : NULL;
        pthread_mutex_unlock(&h->lock);
        if (!hd)
                return error_set(err, ENOENT, "no such handle: %s (handles are used once, and forgotten at a restart)",
                                 handle);
        int r = 0;
        if (hd->is_new) {
                r = commit_new(h, hd, &c, err);
                if (r >= 0) {
                        pthread_mutex_lock(&c->op);
                        r = container_network_commit(h, c, hd->config, err);
                        if (r >= 0)
                                r = commit_state(h, c, hd->target, err);
                        pthread_mutex_unlock(&c->op);
                        if (r < 0) /* a new container whose network or start failed does not exist */
                                (void) container_host_destroy(h, c->id, true, NULL);
                }
        } else if (!c)
                r = error_set(err, ESTALE, "conflict: container %s was removed after this handle was taken", hd->name);
        else {
                pthread_mutex_lock(&c->op);
                r = commit_existing(h, c, hd, err);
                pthread_mutex_unlock(&c->op);
        }
        handle_destroy(hd);
        if (r >= 0 && ret) {
                json_t *j = NULL;
                r = container_host_inspect(h, c->id, &j, err);
                *ret = j;
        }
        container_unref(c);
        return r;
}

int container_host_destroy(ContainerHost *h, const char *ref, bool force, Error **err) {
        Container *c = NULL;
        int r = container_find(h, ref, &c, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&c->op);
        pthread_mutex_lock(&h->lock);
        ContainerState s = c->state;
        bool gone = c->removed;
        pthread_mutex_unlock(&h->lock);
        if (gone)
                r = error_set(err, ENOENT, "no such container: %s", ref);
        else if ((s == CONTAINER_RUNNING || s == CONTAINER_PAUSED || s == CONTAINER_STARTING) && !force)
                r = error_set(err, EBUSY, "container %s is %s: stop it first, or remove it with force", c->name,
                              container_state_to_string(s));
        else if (c->rt)
                r = container_stop(h, c, 0, err);
        if (r >= 0) {
                pthread_mutex_lock(&h->lock);
                container_set_state_locked(h, c, CONTAINER_REMOVING);
                pthread_mutex_unlock(&h->lock);
                (void) vm_driver_destroy(h->driver, c->domain, NULL);
                container_network_release(h, c);
                _cleanup_error_ Error *e = NULL;
                if (store_container_disk_remove(h->store, c->disk, &e) < 0 && e->code != ENOENT)
                        log_warning("container %s: %s", c->name, error_text(e));
                r = rm_rf(c->dir);
                if (r < 0)
                        r = error_set_errno(err, -r, "remove %s", c->dir);
                /* The run directory (agent socket, console log) goes too;
                 * its volumes stay, with one user less (and back to root),
                 * and once nothing of its uid is left the uid is free. */
                (void) rm_rf(c->run_dir);
                container_mounts_release(h, c->id, NULL, NULL, c->config);
                container_mounts_release(h, c->id, NULL, NULL, c->started_config);
                if (r >= 0)
                        container_owner_release(h, c);
                pthread_mutex_lock(&h->lock);
                container_host_forget_locked(h, c);
                pthread_mutex_unlock(&h->lock);
        }
        pthread_mutex_unlock(&c->op);
        container_unref(c);
        return r;
}

int container_host_rename(ContainerHost *h, const char *ref, const char *name, Error **err) {
        if (!name_is_valid(name))
                return error_set(err, EINVAL, "bad container name '%.80s': 1-%d of [A-Za-z0-9_.-], starting with a letter or digit",
                                 name, CONTAINER_NAME_MAX);
        Container *c = NULL;
        int r = container_find(h, ref, &c, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&h->lock);
        char *old = c->name, *n = NULL;
        if (strcmp(old, name) == 0)
                r = 0;
        else if (name_taken_locked(h, name, c->id))
                r = error_set(err, EEXIST, "the name '%s' is already in use", name);
        else if (!(n = strdup(name)))
                r = error_oom(err);
        else {
                c->name = n;
                c->generation++;
                r = container_save(h, c, err);
                if (r < 0) {
                        c->name = old;
                        c->generation--;
                        free(n);
                } else {
                        container_event_locked(h, c, "rename");
                        free(old);
                }
        }
        pthread_mutex_unlock(&h->lock);
        container_unref(c);
        return r;
}
