/* container-gc.c: what carries our marks but belongs to no container
 * (orphans), found for `plctl gc` and for recovery after a restart, and the
 * VMs behind the containers for `plctl vm ls`.
 *
 * Orphans are domains with our metadata that no record names, container
 * directories without a container (with their registered disk) and run
 * directories no container claims. A container directory whose record
 * exists but does not load is never deleted: it is moved to
 * <state>/quarantine/ for a person to look at. While the daemon serves,
 * directories younger than CONTAINER_GC_MIN_AGE_S are left alone: a create
 * makes its directory and disk before its record joins the list.
 *
 * Taps: the networking work adds its kind here (an orphan tap is a link
 * named pl<12 hex> whose container is gone): orphans_taps() is the hook,
 * called in the same pass, and reports none yet. */
#include "container-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"


typedef struct Gc {
        ContainerHost *h;
        bool remove;
        int64_t min_age_s; /* 0 during recovery */
        json_t *out;       /* may be NULL */
} Gc;

static void orphan_report(Gc *gc, const char *kind, const char *name, const char *path, const char *action) {
        if (gc->out)
                (void) json_array_append_new(gc->out, json_pack("{s:s, s:s, s:s?, s:s}", "kind", kind, "name", name,
                                                                "path", path, "action", action));
}

static bool domain_known_locked(ContainerHost *h, const char *name) {
        for (size_t i = 0; i < h->n_containers; i++)
                if (strcmp(h->containers[i]->domain, name) == 0)
                        return true;
        return false;
}

static int orphans_domains(Gc *gc, Error **err) {
        ContainerHost *h = gc->h;
        char **names = NULL;
        size_t n = 0;
        int r = vm_driver_list_ours(h->driver, &names, &n, err);
        if (r < 0)
                return error_prefix(err, "listing VMs");
        for (size_t i = 0; i < n; i++) {
                pthread_mutex_lock(&h->lock);
                bool known = domain_known_locked(h, names[i]);
                pthread_mutex_unlock(&h->lock);
                if (known)
                        continue;
                if (gc->remove) {
                        log_info("removing VM %s: it belongs to no container", names[i]);
                        (void) vm_driver_destroy(h->driver, names[i], NULL);
                }
                orphan_report(gc, "vm", names[i], NULL, gc->remove ? "removed" : "remove");
        }
        vm_names_free(names, n);
        return 0;
}

static bool too_young(Gc *gc, int dfd, const char *name) {
        struct stat st;
        if (gc->min_age_s <= 0 || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return false;
        return (int64_t) (realtime_nsec() / 1000000000ull) - (int64_t) st.st_mtime < gc->min_age_s;
}

/* Entries of dir that no container claims (by its id, or its first 16 hex
 * for run dirs); in containers/ their disk is unregistered first. */
static void orphans_dirs(Gc *gc, const char *dir, size_t id_len, bool has_disk) {
        ContainerHost *h = gc->h;
        _cleanup_closedir_ DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                bool known = false;
                pthread_mutex_lock(&h->lock);
                for (size_t i = 0; i < h->n_containers && !known; i++)
                        known = strlen(de->d_name) == id_len && strncmp(h->containers[i]->id, de->d_name, id_len) == 0;
                pthread_mutex_unlock(&h->lock);
                if (known || too_young(gc, dirfd(d), de->d_name))
                        continue;
                _cleanup_free_ char *path = NULL, *disk = NULL, *record = NULL, *kept = NULL;
                if (asprintf(&path, "%s/%s", dir, de->d_name) < 0 || asprintf(&disk, "%s/disk.qcow2", path) < 0 ||
                    asprintf(&record, "%s/container.json", path) < 0 ||
                    asprintf(&kept, "%s/quarantine/%s", h->state_dir, de->d_name) < 0)
                        continue;
                const char *kind = has_disk ? "container-dir" : "run-dir";
                /* A record that exists but did not load is kept for a person
                 * to look at, never deleted; a directory without one is what
                 * a create killed half-way leaves. */
                if (has_disk && access(record, F_OK) == 0) {
                        if (gc->remove) {
                                log_warning("moving %s to %s: its record does not load", path, kept);
                                (void) mkdir_p(kept, 0700);
                                if (rename(path, kept) < 0)
                                        log_warning("move %s: %m", path);
                        }
                        orphan_report(gc, kind, de->d_name, path, gc->remove ? "quarantined" : "quarantine");
                        continue;
                }
                if (gc->remove) {
                        log_info("removing %s: it belongs to no container", path);
                        if (has_disk)
                                (void) store_container_disk_remove(h->store, disk, NULL);
                        (void) rm_rf(path);
                }
                orphan_report(gc, kind, de->d_name, path, gc->remove ? "removed" : "remove");
        }
}

/* The hook for host networking: taps named after containers that are gone. */
static void orphans_taps(Gc *gc) {
        (void) gc;
}

static int orphans(Gc *gc, Error **err) {
        int r = orphans_domains(gc, err);
        orphans_dirs(gc, gc->h->containers_dir, CONTAINER_ID_HEX, true);
        orphans_dirs(gc, gc->h->run_dir, 16, false);
        orphans_taps(gc);
        return r;
}

void container_host_remove_orphans(ContainerHost *h) {
        Gc gc = {.h = h, .remove = true};
        _cleanup_error_ Error *e = NULL;
        if (orphans(&gc, &e) < 0)
                log_warning("%s", error_text(e));
}

int container_host_gc(ContainerHost *h, bool remove, json_t **ret, Error **err) {
        Gc gc = {.h = h, .remove = remove, .min_age_s = CONTAINER_GC_MIN_AGE_S, .out = json_array()};
        if (!gc.out)
                return error_oom(err);
        int r = orphans(&gc, err);
        if (r < 0) {
                json_decref(gc.out);
                return r;
        }
        *ret = gc.out;
        return 0;
}

/* --- the VMs behind containers --- */

/* What vm ls shows of a container, copied under the lock so that /proc and
 * the driver are read without it. */
typedef struct VmRow {
        char domain[VM_NAME_MAX + 1], id[CONTAINER_ID_HEX + 1], name[CONTAINER_NAME_MAX + 1];
        char disk[PATH_MAX], console[PATH_MAX], transport[32];
        json_int_t memory_mb, vcpus;
} VmRow;

static void vm_row_locked(const Container *c, VmRow *r) {
        const json_t *cfg = c->started_config ? c->started_config : c->config;
        snprintf(r->domain, sizeof r->domain, "%s", c->domain);
        snprintf(r->id, sizeof r->id, "%s", c->id);
        snprintf(r->name, sizeof r->name, "%s", c->name);
        snprintf(r->disk, sizeof r->disk, "%s", c->disk);
        snprintf(r->console, sizeof r->console, "%s/console.log", c->run_dir);
        snprintf(r->transport, sizeof r->transport, "%s", c->transport ? c->transport : "");
        r->memory_mb = json_integer_value(json_object_get(cfg, "memory_mb"));
        r->vcpus = json_integer_value(json_object_get(cfg, "vcpus"));
}

static json_t *vm_json(ContainerHost *h, const VmRow *r, const char *accel) {
        VmState st = VM_STATE_MISSING;
        VmStats vs = {0};
        (void) vm_driver_state(h->driver, r->domain, &st, NULL);
        (void) vm_driver_stats(h->driver, r->domain, &vs, NULL);
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:[s], s:s, s:s, s:i, s:I}", "domain", r->domain,
                         "container", r->id, "name", r->name, "state", vm_state_to_string(st), "accelerator", accel,
                         "memory_mb", r->memory_mb, "vcpus", r->vcpus, "disks", r->disk, "transport", r->transport,
                         "console_log", r->console, "qemu_pid", vs.qemu_pid, "pss_kib",
                         vs.qemu_pid > 0 ? (json_int_t) vs.pss_kib : -1);
}

int container_host_vms(ContainerHost *h, json_t **ret, Error **err) {
        VmAccel accel = VM_ACCEL_TCG;
        _cleanup_free_ char *reason = NULL;
        (void) vm_accel_detect(h->accel, &accel, &reason);
        _cleanup_free_ VmRow *rows = NULL;
        size_t n = 0;
        pthread_mutex_lock(&h->lock);
        rows = calloc(h->n_containers ? h->n_containers : 1, sizeof *rows);
        for (size_t i = 0; rows && i < h->n_containers; i++)
                if (h->containers[i]->rt)
                        vm_row_locked(h->containers[i], &rows[n++]);
        pthread_mutex_unlock(&h->lock);
        json_t *out = rows ? json_array() : NULL;
        for (size_t i = 0; out && i < n; i++)
                if (json_array_append_new(out, vm_json(h, &rows[i], vm_accel_to_string(accel))) < 0)
                        out = (json_decref(out), NULL);
        if (!out)
                return error_oom(err);
        *ret = out;
        return 0;
}
