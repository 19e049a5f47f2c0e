/* container-host.c: the set of containers of one daemon: opening it (load
 * and reconcile), finding containers, queries, and freeing it. */
#include "container-internal.h"
#include "container-uid.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/json/json-util.h"

static const char *const state_names[_CONTAINER_STATE_MAX] = {
        [CONTAINER_CREATED] = "created",   [CONTAINER_STARTING] = "starting", [CONTAINER_RUNNING] = "running",
        [CONTAINER_PAUSED] = "paused",     [CONTAINER_STOPPING] = "stopping", [CONTAINER_STOPPED] = "stopped",
        [CONTAINER_REMOVING] = "removing",
};

const char *container_state_to_string(ContainerState s) {
        return s < _CONTAINER_STATE_MAX ? state_names[s] : "unknown";
}

int container_state_from_string(const char *s) {
        for (int i = 0; s && i < _CONTAINER_STATE_MAX; i++)
                if (strcmp(state_names[i], s) == 0)
                        return i;
        return -EINVAL;
}

static int host_dirs(ContainerHost *h, const ContainerHostConfig *cfg, Error **err) {
        if (!cfg->state_dir || cfg->state_dir[0] != '/')
                return error_set(err, EINVAL, "state directory must be an absolute path");
        if (!(h->state_dir = strdup(cfg->state_dir)) || asprintf(&h->containers_dir, "%s/containers", cfg->state_dir) < 0 ||
            asprintf(&h->run_dir, "%s/run", cfg->state_dir) < 0 || asprintf(&h->tmp_dir, "%s/tmp", cfg->state_dir) < 0)
                return error_oom(err);
        /* Handles and their spooled archives do not survive a restart. */
        int r = rm_rf(h->tmp_dir);
        if (r < 0)
                return error_set_errno(err, -r, "remove %s", h->tmp_dir);
        /* QEMU users cross containers/ and run/ to their own disk and run
         * directory (0711: no listing); tmp/ is the daemon's alone. */
        const char *dirs[] = {h->containers_dir, h->run_dir, h->tmp_dir};
        const mode_t modes[] = {0711, 0711, 0700};
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                r = mkdir_p(dirs[i], modes[i]);
                if (r >= 0 && chmod(dirs[i], modes[i]) < 0)
                        r = -errno;
                if (r < 0)
                        return error_set_errno(err, -r, "create %s", dirs[i]);
        }
        return 0;
}

int container_host_add_locked(ContainerHost *h, Container *c) {
        Container **n = realloc(h->containers, (h->n_containers + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        h->containers = n;
        h->containers[h->n_containers++] = container_ref(c);
        return 0;
}

/* Loads every record; a directory whose record does not load is left for
 * container_host_recover() to remove. */
static int host_load(ContainerHost *h, Error **err) {
        DIR *d = opendir(h->containers_dir);
        if (!d)
                return error_set_errno(err, errno, "open %s", h->containers_dir);
        struct dirent *de;
        int r = 0;
        while (r >= 0 && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_error_ Error *e = NULL;
                Container *c = NULL;
                if (container_load(h, de->d_name, &c, &e) < 0) {
                        log_warning("%s", error_text(e));
                        continue;
                }
                r = container_host_add_locked(h, c);
                container_unref(c);
        }
        closedir(d);
        return r < 0 ? error_set(err, -r, "out of memory") : 0;
}

int container_host_open(const ContainerHostConfig *cfg, ContainerHost **ret, Error **err) {
        ContainerHost *h = calloc(1, sizeof(*h));
        if (!h)
                return error_oom(err);
        pthread_mutex_init(&h->lock, NULL);
        pthread_cond_init(&h->changed, NULL);
        pthread_mutex_init(&h->metrics.memory_lock, NULL);
        h->driver = cfg->driver;
        h->store = cfg->store;
        h->network = cfg->network;
        h->volumes = cfg->volumes;
        h->accel = cfg->accel;
        h->boot_timeout_ms = cfg->boot_timeout_ms > 0 ? cfg->boot_timeout_ms : 60000;
        h->log_max_size = cfg->log_max_size > 0 ? cfg->log_max_size : CONTAINER_LOG_MAX_SIZE_DEFAULT;
        h->log_max_files = cfg->log_max_files > 0 ? MIN(cfg->log_max_files, CONTAINER_LOG_MAX_FILES_MAX)
                                                  : CONTAINER_LOG_MAX_FILES_DEFAULT;
        const char *t = cfg->transport ? cfg->transport : "auto";
        if (strcmp(t, "auto") == 0)
                h->transport = vm_vsock_usable(VM_VHOST_VSOCK_DEV) ? "vsock" : "virtio-serial";
        else if (strcmp(t, "vsock") == 0 || strcmp(t, "virtio-serial") == 0)
                h->transport = strcmp(t, "vsock") == 0 ? "vsock" : "virtio-serial";
        else {
                container_host_free(h);
                return error_set(err, EINVAL, "transport '%.32s': auto, vsock or virtio-serial", t);
        }
        h->tb_cache_mib = cfg->tb_cache_mib;
        h->free_page_reporting = cfg->free_page_reporting;
        int r = host_dirs(h, cfg, err);
        if (r >= 0 && (!(h->kernel = strdup(cfg->kernel ? cfg->kernel : "")) ||
                       !(h->initrd = strdup(cfg->initrd ? cfg->initrd : "")) ||
                       (cfg->extra_cmdline && !(h->extra_cmdline = strdup(cfg->extra_cmdline)))))
                r = error_oom(err);
        if (r >= 0)
                r = container_owner_open(h, cfg, err);
        if (r >= 0)
                r = host_load(h, err);
        if (r >= 0)
                r = container_host_recover(h, err);
        if (r >= 0)
                r = container_mounts_recover(h, err);
        if (r >= 0)
                container_network_recover(h);
        if (r >= 0)
                r = container_pool_open(h, cfg->pool_size, err);
        if (r < 0) {
                container_host_free(h);
                return r;
        }
        *ret = h;
        return 0;
}

ContainerHost *container_host_free(ContainerHost *h) {
        if (!h)
                return NULL;
        /* Monitors leave their containers as they are: the VMs keep running
         * and the next daemon reattaches to them. */
        pthread_mutex_lock(&h->lock);
        h->closing = true;
        for (size_t i = 0; i < h->n_containers; i++) {
                Runtime *rt = h->containers[i]->rt;
                if (rt && rt->guest && rt->guest->agent)
                        agent_client_close(rt->guest->agent, "the daemon is shutting down");
        }
        while (h->monitors > 0)
                pthread_cond_wait(&h->changed, &h->lock);
        pthread_mutex_unlock(&h->lock);
        container_host_execs_clear(h);
        for (size_t i = 0; i < h->n_containers; i++) {
                Container *c = h->containers[i];
                if (c->rt)
                        runtime_unref(h, TAKE_PTR(c->rt));
                container_unref(c);
        }
        for (size_t i = 0; i < h->n_handles; i++)
                handle_destroy(h->handles[i]);
        h->pool = guest_pool_free(h->pool);
        free(h->containers);
        free(h->handles);
        free(h->state_dir);
        free(h->containers_dir);
        free(h->run_dir);
        free(h->tmp_dir);
        free(h->kernel);
        free(h->initrd);
        free(h->extra_cmdline);
        uid_pool_free(h->uids);
        free(h->qemu_user);
        pthread_cond_destroy(&h->changed);
        pthread_mutex_destroy(&h->lock);
        pthread_mutex_destroy(&h->metrics.memory_lock);
        free(h);
        return NULL;
}

Container *container_find_locked(ContainerHost *h, const char *ref) {
        size_t len = strlen(ref);
        Container *found = NULL;
        for (size_t i = 0; i < h->n_containers; i++) {
                Container *c = h->containers[i];
                if (c->removed)
                        continue;
                if (strcmp(c->id, ref) == 0 || strcmp(c->name, ref) == 0)
                        return container_ref(c);
                if (len >= 12 && strncmp(c->id, ref, len) == 0) {
                        if (found)
                                return NULL; /* ambiguous prefix */
                        found = c;
                }
        }
        return found ? container_ref(found) : NULL;
}

Container **container_host_snapshot(ContainerHost *h, size_t *ret_n) {
        pthread_mutex_lock(&h->lock);
        size_t n = h->n_containers;
        Container **list = calloc(n + 1, sizeof(*list));
        for (size_t i = 0; list && i < n; i++)
                list[i] = container_ref(h->containers[i]);
        pthread_mutex_unlock(&h->lock);
        *ret_n = list ? n : 0;
        return list;
}

void container_list_unref(Container **list, size_t n) {
        for (size_t i = 0; list && i < n; i++)
                container_unref(list[i]);
        free(list);
}

int container_find(ContainerHost *h, const char *ref, Container **ret, Error **err) {
        pthread_mutex_lock(&h->lock);
        Container *c = container_find_locked(h, ref);
        pthread_mutex_unlock(&h->lock);
        if (!c)
                return error_set(err, ENOENT, "no such container: %s", ref);
        *ret = c;
        return 0;
}

bool container_host_wait_locked(ContainerHost *h, uint64_t deadline) {
        int ms = deadline_poll_ms(deadline);
        if (ms == 0)
                return false;
        /* Bounded, so a lost wake-up costs at most this long. */
        ms = ms < 0 || ms > 500 ? 500 : ms;
        struct timespec ts;
        realtime_after_usec((uint64_t) ms * USEC_PER_MSEC, &ts);
        pthread_cond_timedwait(&h->changed, &h->lock, &ts);
        return true;
}

void container_event_locked(ContainerHost *h, const Container *c, const char *action) {
        ContainerEvent *ev = &h->events[++h->event_seq % CONTAINER_EVENTS_KEPT];
        *ev = (ContainerEvent){.seq = h->event_seq, .time_ns = (int64_t) realtime_nsec(), .action = action,
                               .exit_code = strcmp(action, "die") == 0 ? c->exit_code : 0};
        snprintf(ev->id, sizeof ev->id, "%s", c->id);
        snprintf(ev->name, sizeof ev->name, "%s", c->name);
        pthread_cond_broadcast(&h->changed);
}

/* The event a state change is, or NULL. */
static const char *event_of(ContainerState from, ContainerState to) {
        if (to == CONTAINER_RUNNING)
                return from == CONTAINER_STARTING ? "start" : from == CONTAINER_PAUSED ? "unpause" : NULL;
        if (to == CONTAINER_PAUSED && from != CONTAINER_PAUSED)
                return "pause";
        if (to == CONTAINER_STOPPED && (from == CONTAINER_RUNNING || from == CONTAINER_PAUSED ||
                                        from == CONTAINER_STOPPING))
                return "die";
        return NULL;
}

size_t container_host_events(ContainerHost *h, uint64_t after, ContainerEvent *ret, size_t max, int timeout_ms) {
        uint64_t deadline = deadline_after_ms(timeout_ms);
        size_t n = 0;
        pthread_mutex_lock(&h->lock);
        while (h->event_seq <= after && !h->closing && container_host_wait_locked(h, deadline))
                ;
        uint64_t first = h->event_seq > CONTAINER_EVENTS_KEPT ? h->event_seq - CONTAINER_EVENTS_KEPT + 1 : 1;
        for (uint64_t seq = MAX(after + 1, first); seq <= h->event_seq && n < max; seq++)
                ret[n++] = h->events[seq % CONTAINER_EVENTS_KEPT];
        pthread_mutex_unlock(&h->lock);
        return n;
}

void container_set_state_locked(ContainerHost *h, Container *c, ContainerState s) {
        const char *ev = event_of(c->state, s);
        c->state = s;
        if (ev && !c->removed)
                container_event_locked(h, c, ev);
        _cleanup_error_ Error *e = NULL;
        if (!c->removed && container_save(h, c, &e) < 0)
                log_error("%s", error_text(e));
        pthread_cond_broadcast(&h->changed);
}

/* inspect's JSON plus, for a running container, its processes. */
static json_t *container_render(ContainerHost *h, Container *c) {
        pthread_mutex_lock(&h->lock);
        json_t *j = container_to_json(c);
        Runtime *rt = NULL;
        if (j && c->rt && c->state == CONTAINER_RUNNING) {
                rt = c->rt;
                rt->refs++;
        }
        pthread_mutex_unlock(&h->lock);
        if (j)
                container_network_json(h, c->id, json_object_get(j, "config"), j);
        json_t *procs = json_array();
        AgentProcessInfo *p = NULL;
        size_t n = 0;
        if (rt && agent_client_list_processes(rt->guest->agent, &p, &n, 5000, NULL) >= 0)
                for (size_t i = 0; i < n; i++)
                        (void) json_array_append_new(
                                procs, json_pack("{s:i, s:i, s:s, s:b, s:s, s:i, s:i, s:I, s:I, s:b}", "process_id",
                                                 (int) p[i].process_id, "pid", p[i].pid, "command", p[i].command,
                                                 "main", p[i].process_id == rt->main_id, "status",
                                                 p[i].state == AGENT_PROCESS_RUNNING ? "running" : "exited",
                                                 "exit_code", p[i].exit_code, "signal", p[i].signal, "started_ns",
                                                 (json_int_t) p[i].started_unix_ns, "finished_ns",
                                                 (json_int_t) p[i].finished_unix_ns, "tty", p[i].tty));
        free(p);
        if (rt)
                runtime_unref(h, rt);
        if (j)
                (void) json_object_set_new(j, "processes", procs);
        else
                json_decref(procs);
        return j;
}

int container_host_inspect(ContainerHost *h, const char *ref, json_t **ret, Error **err) {
        Container *c = NULL;
        int r = container_find(h, ref, &c, err);
        if (r < 0)
                return r;
        json_t *j = container_render(h, c);
        container_unref(c);
        if (!j)
                return error_oom(err);
        *ret = j;
        return 0;
}

static bool labels_match(const json_t *labels, const char *const *want, size_t n) {
        for (size_t i = 0; i < n; i++) {
                const char *eq = strchr(want[i], '=');
                size_t klen = eq ? (size_t) (eq - want[i]) : strlen(want[i]);
                char key[257];
                if (klen >= sizeof key)
                        return false;
                memcpy(key, want[i], klen);
                key[klen] = 0;
                const char *v = json_string_value(json_object_get(labels, key));
                if (!v || (eq && strcmp(v, eq + 1) != 0))
                        return false;
        }
        return true;
}

int container_host_list(ContainerHost *h, int state, const char *const *labels, size_t n_labels, json_t **ret,
                        Error **err) {
        _cleanup_json_ json_t *list = json_array();
        if (!list)
                return error_oom(err);
        pthread_mutex_lock(&h->lock);
        for (size_t i = h->n_containers; i-- > 0;) {
                Container *c = h->containers[i];
                if (c->removed || (state >= 0 && (int) c->state != state) ||
                    !labels_match(json_object_get(c->config, "labels"), labels, n_labels))
                        continue;
                if (json_array_append_new(list, container_to_json(c)) < 0) {
                        pthread_mutex_unlock(&h->lock);
                        return error_oom(err);
                }
        }
        pthread_mutex_unlock(&h->lock);
        *ret = TAKE_PTR(list);
        return 0;
}

void container_host_vm_event(ContainerHost *h, const VmEvent *ev) {
        /* Only a hint: the monitor of a running container sees its agent
         * connection break and asks the driver for the truth. */
        log_debug("VM %s: %s (%s)", ev->name, vm_state_to_string(ev->state), ev->reason ? ev->reason : "");
        pthread_mutex_lock(&h->lock);
        pthread_cond_broadcast(&h->changed);
        pthread_mutex_unlock(&h->lock);
}

void container_host_forget_locked(ContainerHost *h, Container *c) {
        for (size_t i = 0; i < h->n_containers; i++)
                if (h->containers[i] == c) {
                        memmove(h->containers + i, h->containers + i + 1,
                                (h->n_containers - i - 1) * sizeof(*h->containers));
                        h->n_containers--;
                        c->removed = true;
                        container_event_locked(h, c, "destroy");
                        container_unref(c);
                        break;
                }
        pthread_cond_broadcast(&h->changed);
}
