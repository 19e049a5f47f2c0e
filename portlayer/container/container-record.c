/* container-record.c: one container's record on disk, and its JSON.
 *
 * <state>/containers/<id>/container.json holds everything the daemon must
 * know after a restart: identity, image, generation, configuration, pending
 * copy-ins, and the last known state. It is written whole, atomically
 * (temp + fsync + rename + fsync of the directory), under the host lock, so a
 * daemon killed at any moment leaves the old or the new record. A record is
 * read back through the same checks the API applies (container-config.c),
 * and one that fails them is not trusted (the directory is then an orphan). */
#include "container-internal.h"
#include "container-uid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/json/json-util.h"

#define RECORD_NAME "container.json"
#define RECORD_MAX (4u << 20)

Container *container_new(const char *id) {
        Container *c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->refs = 1;
        snprintf(c->id, sizeof c->id, "%s", id);
        c->transport = "virtio-serial";
        c->exit_code = -1;
        pthread_mutex_init(&c->op, NULL);
        return c;
}

Container *container_ref(Container *c) {
        __atomic_add_fetch(&c->refs, 1, __ATOMIC_SEQ_CST);
        return c;
}

void container_unref(Container *c) {
        if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_SEQ_CST) > 0)
                return;
        free(c->name);
        free(c->image);
        free(c->image_id);
        free(c->dir);
        free(c->domain);
        free(c->disk);
        free(c->run_dir);
        free(c->error);
        json_decref(c->config);
        json_decref(c->started_config);
        json_decref(c->pending);
        pthread_mutex_destroy(&c->op);
        free(c);
}

/* RFC 3339 in UTC with nanoseconds, "" for 0. */
static json_t *time_json(int64_t ns) {
        char buf[TIME_RFC3339_MAX];
        time_rfc3339_ns(ns, buf);
        return json_string(buf);
}

/* The fields whose change waits for the next start: everything but labels
 * and the stop settings (a VM keeps the memory, vCPUs and main process it
 * was started with). */
static json_t *pending_restart(const Container *c) {
        static const char *const keys[] = {"path", "args", "env", "workdir", "user", "memory_mb", "vcpus", "mounts",
                                           "tty", "open_stdin"};
        json_t *a = json_array();
        for (size_t i = 0; a && c->started_config && i < ELEMENTSOF(keys); i++) {
                const json_t *now = json_object_get(c->config, keys[i]);
                const json_t *then = json_object_get(c->started_config, keys[i]);
                if (now != then && !json_equal(now, then)) /* json_equal() is false when either is absent */
                        (void) json_array_append_new(a, json_string(keys[i]));
        }
        return a;
}

json_t *container_to_json(const Container *c) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:s, s:i, s:s?, s:i, s:o, s:o, s:s, s:s, s:O}", "id", c->id,
                         "name", c->name, "image", c->image, "image_id", c->image_id, "created",
                         time_json(c->created_ns), "generation", (json_int_t) c->generation, "state",
                         container_state_to_string(c->state), "exit_code", c->exit_code, "error", c->error, "pid",
                         c->pid, "started_at", time_json(c->started_ns), "finished_at", time_json(c->finished_ns),
                         "transport", c->transport, "domain", c->domain, "config", c->config);
        if (j)
                (void) json_object_set_new(j, "mounts", container_mounts_to_json(c->config));
        if (j && c->rt)
                (void) json_object_set_new(j, "pending_restart", pending_restart(c));
        if (j)
                (void) json_object_set_new(j, "start_path", c->start_path ? json_string(c->start_path) : json_null());
        if (j)
                (void) json_object_set_new(j, "uid", json_integer(c->uid));
        return j;
}

static json_t *record_json(const Container *c) {
        json_t *j = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:O, s:O, s:s, s:s, s:i, s:s*, s:i, s:I, s:I, s:I, s:s, s:O*, "
                              "s:s, s:s*}",
                         "version", 1, "id", c->id, "name", c->name, "image", c->image, "image_id", c->image_id,
                         "created_ns", (json_int_t) c->created_ns, "generation", (json_int_t) c->generation,
                         "config", c->config, "pending", c->pending, "state", container_state_to_string(c->state),
                         "state_before", container_state_to_string(c->state_before), "exit_code", c->exit_code,
                         "error", c->error, "pid", c->pid, "started_ns", (json_int_t) c->started_ns,
                         "finished_ns", (json_int_t) c->finished_ns, "main_id", (json_int_t) c->main_id, "transport",
                         c->transport, "started_config", c->started_config, "domain", c->domain, "start_path",
                         c->start_path);
        if (j && c->uid && json_object_set_new(j, "uid", json_integer(c->uid)) < 0) {
                json_decref(j);
                return NULL;
        }
        return j;
}

int container_save(ContainerHost *h, Container *c, Error **err) {
        _cleanup_json_ json_t *j = record_json(c);
        _cleanup_free_ char *text = j ? json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
        _cleanup_free_ char *path = NULL;
        if (!text || asprintf(&path, "%s/" RECORD_NAME, c->dir) < 0)
                return error_oom(err);
        int r = write_file_atomic(path, text, strlen(text), 0600);
        if (r < 0)
                return error_set_errno(err, -r, "container %.12s: write %s", c->id, path);
        return 0;
}

static bool is_hex_id(const char *s) {
        if (strlen(s) != CONTAINER_ID_HEX)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

static int record_state(const json_t *j, const char *key, ContainerState *ret, Error **err) {
        int s = container_state_from_string(json_string_value(json_object_get(j, key)));
        if (s < 0)
                return error_set(err, EBADMSG, "%s: bad state", key);
        *ret = (ContainerState) s;
        return 0;
}

static int record_fill(Container *c, json_t *j, Error **err) {
        const char *name = NULL, *image = NULL, *image_id = NULL, *error = NULL;
        json_int_t created = 0, generation = 0, started = 0, finished = 0, main_id = 0;
        int exit_code = -1, pid = 0;
        json_t *config = NULL, *pending = NULL;
        if (json_unpack(j, "{s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:i, s?s, s:i, s:I, s:I, s:I}", "name", &name,
                        "image", &image, "image_id", &image_id, "created_ns", &created, "generation", &generation,
                        "config", &config, "pending", &pending, "exit_code", &exit_code, "error", &error, "pid", &pid,
                        "started_ns", &started, "finished_ns", &finished, "main_id", &main_id) < 0 ||
            !json_is_array(pending))
                return error_set(err, EBADMSG, "missing or mistyped fields");
        int r = container_config_validate(config, err);
        if (r < 0)
                return error_set(err, EBADMSG, "bad configuration");
        if (record_state(j, "state", &c->state, err) < 0 || record_state(j, "state_before", &c->state_before, err) < 0)
                return -EBADMSG;
        c->name = strdup(name);
        c->image = strdup(image);
        c->image_id = strdup(image_id);
        c->error = error ? strdup(error) : NULL;
        c->config = json_incref(config);
        c->pending = json_incref(pending);
        c->created_ns = created;
        c->generation = (uint64_t) generation;
        c->started_ns = started;
        c->finished_ns = finished;
        c->exit_code = exit_code;
        c->pid = pid;
        c->main_id = (uint32_t) main_id;
        /* the uid its QEMU runs as; records from before it have none yet */
        json_t *uid = json_object_get(j, "uid");
        if (uid && (!json_is_integer(uid) || json_integer_value(uid) < UID_RANGE_MIN ||
                    json_integer_value(uid) > UID_RANGE_MAX))
                return error_set(err, EBADMSG, "uid: not an id of the container range");
        c->uid = uid ? (uint32_t) json_integer_value(uid) : 0;
        json_t *sc = json_object_get(j, "started_config");
        if (sc && container_config_validate(sc, NULL) >= 0)
                c->started_config = json_incref(sc);
        /* The domain it runs in: a pool guest's name when it started from
         * one; records from before the field existed had the default. Only
         * our two shapes are taken, so a record cannot point at any domain. */
        const char *domain = json_string_value(json_object_get(j, "domain"));
        if (domain && strncmp(domain, "plp-", 4) == 0 && strlen(domain) == 20 && vm_name_is_valid(domain, 20)) {
                free(c->domain);
                if (!(c->domain = strdup(domain)))
                        return error_oom(err);
        }
        const char *sp = json_string_value(json_object_get(j, "start_path"));
        c->start_path = !sp ? NULL : strcmp(sp, "template") == 0 ? "template" : strcmp(sp, "cold") == 0 ? "cold" : NULL;
        /* records from before the field existed were all virtio-serial */
        c->transport = strcmp(json_string_value(json_object_get(j, "transport")) ?: "", "vsock") == 0 ? "vsock"
                                                                                                     : "virtio-serial";
        if (!c->name || !c->image || !c->image_id || (error && !c->error))
                return error_oom(err);
        return 0;
}

int container_paths(ContainerHost *h, Container *c) {
        if (asprintf(&c->dir, "%s/%s", h->containers_dir, c->id) < 0 ||
            asprintf(&c->disk, "%s/%s/disk.qcow2", h->containers_dir, c->id) < 0 ||
            asprintf(&c->domain, "pl-%.16s", c->id) < 0 ||
            asprintf(&c->run_dir, "%s/%.16s", h->run_dir, c->id) < 0)
                return -ENOMEM;
        return 0;
}

int container_load(ContainerHost *h, const char *id, Container **ret, Error **err) {
        if (!is_hex_id(id))
                return error_set(err, EBADMSG, "'%s' is not a container id", id);
        Container *c = container_new(id);
        if (!c || container_paths(h, c) < 0) {
                container_unref(c);
                return error_oom(err);
        }
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len = 0;
        json_error_t je;
        int r = asprintf(&path, "%s/" RECORD_NAME, c->dir) < 0 ? -ENOMEM : 0;
        if (r >= 0)
                r = read_file_bounded(path, RECORD_MAX, &text, &len);
        if (r < 0) {
                container_unref(c);
                return error_set_errno(err, -r, "container %.12s: read record", id);
        }
        _cleanup_json_ json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
        const char *rid = json_string_value(json_object_get(j, "id"));
        if (!j || !rid || strcmp(rid, id) != 0)
                r = error_set(err, EBADMSG, "container %.12s: record is not valid JSON of this container", id);
        else
                r = record_fill(c, j, err);
        if (r < 0) {
                container_unref(c);
                return error_prefix(err, "container %.12s: record %s", id, path);
        }
        *ret = c;
        return 0;
}
