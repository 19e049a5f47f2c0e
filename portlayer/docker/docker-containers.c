/* docker-containers.c: Docker's container calls as handles and commits of
 * the container host: create, start, stop, restart, kill, pause, unpause,
 * remove, inspect, list, top, stats, resize, and the archive calls of
 * docker cp. */
#include "docker-internal.h"

#include <errno.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/json/json-util.h"

#define AUTO_REMOVE_POLL_MS 1000

static bool stopping(Docker *d);

static const char *ref_of(const char *p) {
        return p[0] == '/' ? p + 1 : p;
}

int docker_containers_create(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_json_ json_t *body = NULL, *fields = NULL, *warnings = NULL, *created = NULL;
        int r = docker_body(req, false, &body, err);
        if (r < 0)
                return r;
        const char *image = json_string_value(json_object_get(body, "Image"));
        if (!image || !*image)
                return error_set(err, EINVAL, "Image: required (a string)");
        const char *name = http_request_query(req, "name");
        if (name && name[0] == '/')
                name++;
        if (name && !*name)
                name = NULL;
        _cleanup_store_image_ StoreImage *img = NULL;
        if ((r = docker_image_get(d, image, &img, err)) < 0)
                return r;
        if ((r = docker_create_map(body, img->config, &fields, &warnings, err)) < 0)
                return r;
        _cleanup_free_ char *id = NULL, *handle = NULL;
        r = container_host_create(d->host, name, image, &id, &handle, err);
        if (r == -EEXIST)
                return error_set(err, EEXIST, "Conflict. The container name \"/%s\" is already in use", name);
        /* mounts go through their own call, which checks the volumes and
         * host directories */
        _cleanup_json_ json_t *mounts = json_incref(json_object_get(fields, "mounts"));
        (void) json_object_del(fields, "mounts");
        if (r >= 0)
                r = container_handle_update(d->host, handle, fields, err);
        if (r >= 0 && mounts)
                r = container_handle_set_mounts(d->host, handle, mounts, err);
        if (r >= 0)
                r = container_host_commit(d->host, handle, &created, err);
        if (r < 0)
                return r;
        return api_reply_json(resp, 201, json_pack("{s:s, s:O}", "Id", id, "Warnings", warnings));
}

int docker_containers_inspect(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_json_ json_t *pl = NULL;
        int r = docker_container_get(d, p[0], &pl, err);
        if (r < 0)
                return r;
        json_t *j = docker_inspect_of(pl);
        return j ? api_reply_json(resp, 200, j) : error_oom(err);
}

int docker_containers_list(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        bool all = api_query_bool(req, "all");
        long limit;
        int r = api_query_int(req, "limit", -1, INT32_MAX, -1, &limit, err);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *filters = NULL, *list = NULL;
        const char *f = http_request_query(req, "filters");
        if (f && *f) {
                filters = json_loads(f, 0, NULL);
                if (!json_is_object(filters))
                        return error_set(err, EINVAL, "filters: must be a JSON object");
        }
        if ((r = container_host_list(d->host, -1, NULL, 0, &list, err)) < 0)
                return r;
        json_t *out = json_array();
        int64_t now = (int64_t) realtime_nsec();
        size_t i;
        json_t *c;
        json_array_foreach(list, i, c) {
                const char *st = docker_state_of(json_string_value(json_object_get(c, "state")));
                bool ok = true;
                /* a status filter asks for states ps leaves out without -a */
                if (!all && !json_object_get(filters, "status") && strcmp(st, "running") != 0 &&
                    strcmp(st, "paused") != 0)
                        continue;
                if (filters && (r = docker_filters_match(filters, c, &ok, err)) < 0) {
                        json_decref(out);
                        return r;
                }
                if (!ok)
                        continue;
                if (limit >= 0 && json_array_size(out) >= (size_t) limit)
                        break;
                if (!out || json_array_append_new(out, docker_ps_of(c, now)) < 0) {
                        json_decref(out);
                        return error_oom(err);
                }
        }
        return api_reply_json(resp, 200, out);
}

/* Takes a handle on ref, sets the target state (and fields), commits. */
static int commit_state(Docker *d, const char *ref, ContainerState target, const json_t *fields, Error **err) {
        _cleanup_free_ char *handle = NULL;
        int r = container_host_get_handle(d->host, ref, &handle, err);
        if (r == -ENOENT)
                return error_set(err, ENOENT, "No such container: %s", ref);
        if (r >= 0 && fields)
                r = container_handle_update(d->host, handle, fields, err);
        if (r >= 0)
                r = container_handle_set_state(d->host, handle, target, err);
        json_t *j = NULL;
        if (r >= 0)
                r = container_host_commit(d->host, handle, &j, err);
        json_decref(j);
        return r;
}

static int state_of(Docker *d, const char *ref, const char **ret, json_t **pl, Error **err) {
        int r = docker_container_get(d, ref, pl, err);
        if (r >= 0)
                *ret = docker_state_of(json_string_value(json_object_get(*pl, "state")));
        return r;
}

/* Like state_of, but -EBUSY unless it runs (or is paused). */
static int running_of(Docker *d, const char *ref, json_t **pl, Error **err) {
        const char *st;
        int r = state_of(d, ref, &st, pl, err);
        if (r >= 0 && strcmp(st, "running") != 0 && strcmp(st, "paused") != 0)
                return error_set(err, EBUSY, "Container %s is not running", ref);
        return r;
}

static bool auto_remove(const json_t *pl) {
        return json_is_string(json_object_get(json_object_get(json_object_get(pl, "config"), "labels"),
                                              DOCKER_LABEL_AUTO_REMOVE));
}

static int start(Docker *d, const char *ref, Error **err) {
        _cleanup_json_ json_t *pl = NULL;
        const char *st;
        int r = state_of(d, ref, &st, &pl, err);
        if (r < 0)
                return r;
        if (strcmp(st, "running") == 0 || strcmp(st, "paused") == 0)
                return 1;
        if ((r = commit_state(d, ref, CONTAINER_RUNNING, NULL, err)) < 0)
                return r;
        if (auto_remove(pl))
                docker_watch_auto_remove(d, json_string_value(json_object_get(pl, "id")));
        return 0;
}

int docker_containers_start(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        int r = start(d, ref_of(p[0]), err);
        return r < 0 ? r : api_reply_json(resp, r > 0 ? 304 : 204, NULL);
}

/* Stop with Docker's t= (seconds, -1: the container's) and signal=; these
 * are kept as the container's stop settings, as Docker keeps StopTimeout. */
static int stop(Docker *d, HttpRequest *req, const char *ref, Error **err) {
        long t;
        int r = api_query_int(req, "t", -1, 3600, -1, &t, err);
        if (r < 0)
                return r;
        const char *sig = http_request_query(req, "signal");
        if (sig && *sig && container_signal_from_string(sig) < 0)
                return error_set(err, EINVAL, "signal=%.32s: not a signal", sig);
        _cleanup_json_ json_t *pl = NULL, *fields = json_object();
        const char *st;
        if (!fields)
                return error_oom(err);
        if ((r = state_of(d, ref, &st, &pl, err)) < 0)
                return r;
        if (strcmp(st, "running") != 0 && strcmp(st, "paused") != 0)
                return 1;
        if (t >= 0)
                (void) json_object_set_new(fields, "stop_timeout_s", json_integer(t));
        if (sig && *sig)
                (void) json_object_set_new(fields, "stop_signal", json_string(sig));
        return commit_state(d, ref, CONTAINER_STOPPED, fields, err);
}

int docker_containers_stop(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        int r = stop(d, req, ref_of(p[0]), err);
        return r < 0 ? r : api_reply_json(resp, r > 0 ? 304 : 204, NULL);
}

int docker_containers_restart(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        int r = stop(d, req, ref_of(p[0]), err);
        if (r >= 0)
                r = start(d, ref_of(p[0]), err);
        return r < 0 ? r : api_reply_json(resp, 204, NULL);
}

int docker_containers_kill(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        const char *s = http_request_query(req, "signal");
        int sig = s && *s ? container_signal_from_string(s) : SIGKILL;
        if (sig < 0)
                return error_set(err, EINVAL, "signal=%.32s: not a signal", s);
        _cleanup_json_ json_t *pl = NULL;
        int r = running_of(d, ref_of(p[0]), &pl, err);
        if (r < 0)
                return r;
        r = container_host_signal(d->host, ref_of(p[0]), sig, false, err);
        return r < 0 ? r : api_reply_json(resp, 204, NULL);
}

static int pause_to(Docker *d, const char *ref, const char *want, ContainerState target, Error **err) {
        _cleanup_json_ json_t *pl = NULL;
        const char *st;
        int r = state_of(d, ref, &st, &pl, err);
        if (r < 0)
                return r;
        if (strcmp(st, want) != 0)
                return error_set(err, EBUSY, "Container %s is not %s", ref, want);
        return commit_state(d, ref, target, NULL, err);
}

int docker_containers_pause(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        int r = pause_to(d, ref_of(p[0]), "running", CONTAINER_PAUSED, err);
        return r < 0 ? r : api_reply_json(resp, 204, NULL);
}

int docker_containers_unpause(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        int r = pause_to(d, ref_of(p[0]), "paused", CONTAINER_RUNNING, err);
        return r < 0 ? r : api_reply_json(resp, 204, NULL);
}

int docker_containers_remove(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        if (api_query_bool(req, "link"))
                return error_set(err, EOPNOTSUPP, "links are not supported by portlayer");
        int r = container_host_destroy(d->host, ref_of(p[0]), api_query_bool(req, "force"), err);
        if (r == -ENOENT) {
                if (err && *err)
                        *err = error_free(*err);
                return error_set(err, ENOENT, "No such container: %s", p[0]);
        }
        if (r == -EBUSY) {
                if (err && *err)
                        *err = error_free(*err);
                return error_set(err, EBUSY, "cannot remove container \"%s\": container is running: stop the "
                                             "container before removing or force remove", p[0]);
        }
        return r < 0 ? r : api_reply_json(resp, 204, NULL);
}

int docker_containers_rename(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        const char *name = http_request_query(req, "name");
        if (!name || !*name)
                return error_set(err, EINVAL, "name=: the new name is required");
        _cleanup_json_ json_t *pl = NULL;
        int r = docker_container_get(d, p[0], &pl, err);
        if (r < 0)
                return r;
        r = container_host_rename(d->host, ref_of(p[0]), name[0] == '/' ? name + 1 : name, err);
        return r < 0 ? r : api_reply_json(resp, 204, NULL);
}

int docker_containers_top(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_json_ json_t *pl = NULL;
        int r = running_of(d, ref_of(p[0]), &pl, err);
        if (r < 0)
                return r;
        /* The processes the agent started (the main process and execs), as
         * the guest numbers them. */
        json_t *procs = json_array();
        size_t i;
        json_t *pr;
        json_array_foreach(json_object_get(pl, "processes"), i, pr) {
                char pid[32];
                snprintf(pid, sizeof pid, "%d", (int) json_integer_value(json_object_get(pr, "pid")));
                const char *cmd = json_string_value(json_object_get(pr, "command"));
                (void) json_array_append_new(procs, json_pack("[s, s, s]", pid,
                                                              json_string_value(json_object_get(pr, "status")) ?: "",
                                                              cmd ? cmd : ""));
        }
        return api_reply_json(resp, 200, json_pack("{s:[s, s, s], s:o}", "Titles", "PID", "STATUS", "CMD",
                                                    "Processes", procs));
}

/* The CPU counters of the previous sample (zeros: the guest's boot, so the
 * CLI's CPU % is the average since then). */
typedef struct CpuSample {
        json_int_t total, system;
        char read[TIME_RFC3339_MAX];
} CpuSample;

#define NO_TIME "0001-01-01T00:00:00Z"

/* Docker's stats object for the running container id; prev becomes this
 * sample. */
static int stats_render(Docker *d, const char *id, const char *docker_name, CpuSample *prev, json_t **ret,
                        Error **err) {
        _cleanup_json_ json_t *s = NULL;
        int r = container_host_stats(d->host, id, &s, err);
        if (r < 0)
                return r;
        json_t *host = json_object_get(s, "host"), *guest = json_object_get(s, "guest"),
               *block = json_object_get(s, "block");
        json_int_t cpu = json_integer_value(json_object_get(host, "cpu_time_ns"));
        json_int_t uptime = json_integer_value(json_object_get(host, "uptime_ms"));
        json_int_t cpus = json_integer_value(json_object_get(guest, "cpus"));
        json_int_t system = uptime * 1000000 * (cpus > 0 ? cpus : 1);
        char read[TIME_RFC3339_MAX];
        time_rfc3339_ns(json_integer_value(json_object_get(s, "read_ns")), read);
        json_t *j = json_pack(
                "{s:s, s:s, s:s, s:s, s:{s:{s:I, s:[], s:I, s:I}, s:I, s:I}, s:{s:{s:I}, s:I, s:I}, "
                "s:{s:I, s:I, s:{}}, s:{s:[{s:i, s:i, s:s, s:I}, {s:i, s:i, s:s, s:I}]}, s:{s:I}, s:{}}",
                "read", read, "preread", prev->read[0] ? prev->read : NO_TIME, "id", id, "name", docker_name,
                "cpu_stats", "cpu_usage", "total_usage", cpu, "percpu_usage", "usage_in_kernelmode", (json_int_t) 0,
                "usage_in_usermode", cpu, "system_cpu_usage", system, "online_cpus", cpus, "precpu_stats", "cpu_usage",
                "total_usage", prev->total, "system_cpu_usage", prev->system, "online_cpus", cpus,
                "memory_stats", "usage", json_integer_value(json_object_get(guest, "mem_used_kib")) * 1024, "limit",
                json_integer_value(json_object_get(guest, "mem_total_kib")) * 1024, "stats", "blkio_stats",
                "io_service_bytes_recursive", "major", 254, "minor", 0, "op", "read", "value",
                json_integer_value(json_object_get(block, "read_bytes")), "major", 254, "minor", 0, "op", "write",
                "value", json_integer_value(json_object_get(block, "write_bytes")), "pids_stats", "current",
                json_integer_value(json_object_get(guest, "processes")), "networks");
        if (!j)
                return error_oom(err);
        prev->total = cpu;
        prev->system = system;
        snprintf(prev->read, sizeof prev->read, "%s", read);
        *ret = j;
        return 0;
}

typedef struct StatsStream {
        Docker *d;
        char id[CONTAINER_ID_HEX + 1];
        char name[CONTAINER_NAME_MAX + 2];
} StatsStream;

/* One object a second while the container runs and the client reads. */
static void stats_main(void *arg, int fd) {
        StatsStream *st = arg;
        CpuSample prev = {0};
        for (;;) {
                _cleanup_json_ json_t *j = NULL;
                if (stats_render(st->d, st->id, st->name, &prev, &j, NULL) < 0 || json_write_line(fd, j) < 0)
                        return;
                for (int i = 0; i < 10; i++) {
                        if (fd_peer_gone(fd) || stopping(st->d))
                                return;
                        usleep(100 * 1000);
                }
        }
}

int docker_containers_stats(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_json_ json_t *pl = NULL, *j = NULL;
        int r = docker_container_get(d, p[0], &pl, err);
        if (r < 0)
                return r;
        const char *id = json_string_value(json_object_get(pl, "id"));
        char docker_name[CONTAINER_NAME_MAX + 2];
        snprintf(docker_name, sizeof docker_name, "/%s", json_string_value(json_object_get(pl, "name")));
        bool stream = !http_request_query(req, "stream") || api_query_bool(req, "stream");
        const char *st = docker_state_of(json_string_value(json_object_get(pl, "state")));
        if (strcmp(st, "running") != 0) { /* Docker answers zeros for a container that does not run */
                j = json_pack("{s:s, s:s, s:s, s:{}, s:{}, s:{}, s:{}, s:{}}", "read", NO_TIME, "id", id, "name",
                              docker_name, "cpu_stats", "precpu_stats", "memory_stats", "blkio_stats", "pids_stats");
                return j ? api_reply_json(resp, 200, TAKE_PTR(j)) : error_oom(err);
        }
        if (stream) {
                StatsStream *ss = calloc(1, sizeof(*ss));
                if (!ss)
                        return error_oom(err);
                ss->d = d;
                snprintf(ss->id, sizeof ss->id, "%s", id);
                snprintf(ss->name, sizeof ss->name, "%s", docker_name);
                return api_stream(d->api, resp, "application/json", stats_main, ss, free, err);
        }
        CpuSample prev = {0};
        if ((r = stats_render(d, id, docker_name, &prev, &j, err)) < 0)
                return r;
        return api_reply_json(resp, 200, TAKE_PTR(j));
}

int docker_containers_resize(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        long h, w;
        int r = api_query_int(req, "h", 0, 65535, 24, &h, err);
        if (r >= 0)
                r = api_query_int(req, "w", 0, 65535, 80, &w, err);
        if (r >= 0 && h > 0 && w > 0)
                r = container_host_main_resize(d->host, ref_of(p[0]), (uint16_t) h, (uint16_t) w, err);
        return r < 0 ? r : api_reply_json(resp, 200, NULL);
}

/* --- docker cp --- */

static int archive_path(HttpRequest *req, const char **ret, Error **err) {
        const char *path = http_request_query(req, "path");
        if (!path || !*path)
                return error_set(err, EINVAL, "path=: required");
        if (path[0] != '/')
                return error_set(err, EINVAL, "path=%.256s: must be absolute", path);
        *ret = path;
        return 0;
}

/* The X-Docker-Container-Path-Stat header: base64 of
 * {"name","size","mode","mtime","linkTarget"}. */
static int stat_header(Docker *d, const char *ref, const char *path, HttpResponse *resp, Error **err) {
        _cleanup_json_ json_t *st = NULL;
        int r = container_host_stat_path(d->host, ref, path, &st, err);
        if (r == -ENOENT) {
                if (err && *err)
                        *err = error_free(*err);
                return error_set(err, ENOENT, "Could not find the file %s in container %s", path, ref);
        }
        if (r < 0)
                return r;
        char mtime[TIME_RFC3339_MAX];
        time_rfc3339_ns(json_integer_value(json_object_get(st, "mtime_ns")), mtime);
        _cleanup_json_ json_t *j = json_pack("{s:O, s:O, s:I, s:s, s:O}", "name", json_object_get(st, "name"), "size",
                                             json_object_get(st, "size"), "mode",
                                             (json_int_t) docker_file_mode(
                                                     (uint32_t) json_integer_value(json_object_get(st, "mode"))),
                                             "mtime", mtime, "linkTarget", json_object_get(st, "link_target"));
        _cleanup_free_ char *text = NULL;
        if (!j || !(text = json_dumps(j, JSON_COMPACT)))
                return error_oom(err);
        size_t len = strlen(text);
        _cleanup_free_ char *b64 = malloc(4 * ((len + 2) / 3) + 1);
        if (!b64)
                return error_oom(err);
        EVP_EncodeBlock((unsigned char *) b64, (const unsigned char *) text, (int) len);
        return http_response_add_header(resp, "X-Docker-Container-Path-Stat", b64) < 0 ? error_oom(err) : 0;
}

int docker_archive_head(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        const char *path;
        int r = archive_path(req, &path, err);
        if (r >= 0)
                r = stat_header(d, ref_of(p[0]), path, resp, err);
        return r < 0 ? r : api_reply_json(resp, 200, NULL);
}

typedef struct CopyOut {
        ContainerHost *host;
        char *ref, *path;
} CopyOut;

static void copy_out_main(void *arg, int fd) {
        CopyOut *c = arg;
        (void) container_host_archive_out(c->host, c->ref, c->path, fd, NULL);
}

static void copy_out_free(void *arg) {
        CopyOut *c = arg;
        free(c->ref);
        free(c->path);
        free(c);
}

int docker_archive_get(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        const char *path;
        int r = archive_path(req, &path, err);
        if (r >= 0)
                r = stat_header(d, ref_of(p[0]), path, resp, err);
        if (r < 0)
                return r;
        CopyOut *c = calloc(1, sizeof(*c));
        if (!c || !(c->ref = strdup(ref_of(p[0]))) || !(c->path = strdup(path))) {
                if (c)
                        copy_out_free(c);
                return error_oom(err);
        }
        c->host = d->host;
        return api_stream(d->api, resp, "application/x-tar", copy_out_main, c, copy_out_free, err);
}

int docker_archive_put(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        const char *path;
        int r = archive_path(req, &path, err);
        if (r < 0)
                return r;
        /* Docker wants the destination to be an existing directory. */
        _cleanup_json_ json_t *st = NULL;
        r = container_host_stat_path(d->host, ref_of(p[0]), path, &st, err);
        if (r == -ENOENT) {
                if (err && *err)
                        *err = error_free(*err);
                return error_set(err, ENOENT, "Could not find the file %s in container %s", path, p[0]);
        }
        if (r < 0)
                return r;
        if (!(docker_file_mode((uint32_t) json_integer_value(json_object_get(st, "mode"))) & (1u << 31)))
                return error_set(err, EINVAL, "extraction point is not a directory");
        r = container_host_archive_in(d->host, ref_of(p[0]), path, http_request_body_fd(req), err);
        return r < 0 ? r : api_reply_json(resp, 200, NULL);
}

/* --- auto-remove (docker run --rm) --- */

typedef struct Watch {
        Docker *d;
        char id[CONTAINER_ID_HEX + 1];
} Watch;

static bool stopping(Docker *d) {
        pthread_mutex_lock(&d->lock);
        bool s = d->stopping;
        pthread_mutex_unlock(&d->lock);
        return s;
}

static void *watch_main(void *arg) {
        Watch *w = arg;
        Docker *d = w->d;
        for (;;) {
                int code;
                int r = container_host_wait(d->host, w->id, AUTO_REMOVE_POLL_MS, &code, NULL);
                if (r == -ETIMEDOUT && !stopping(d))
                        continue;
                if (r >= 0) {
                        _cleanup_error_ Error *e = NULL;
                        r = container_host_destroy(d->host, w->id, false, &e);
                        if (r < 0 && r != -ENOENT)
                                log_warning("docker: auto-remove of %.12s: %s", w->id, error_text(e));
                }
                break;
        }
        free(w);
        pthread_mutex_lock(&d->lock);
        d->watchers--;
        pthread_cond_broadcast(&d->changed);
        pthread_mutex_unlock(&d->lock);
        return NULL;
}

void docker_watch_auto_remove(Docker *d, const char *id) {
        Watch *w = calloc(1, sizeof(*w));
        if (!w)
                return;
        w->d = d;
        snprintf(w->id, sizeof w->id, "%s", id);
        pthread_mutex_lock(&d->lock);
        d->watchers++;
        pthread_mutex_unlock(&d->lock);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_t t;
        if (pthread_create(&t, &attr, watch_main, w) != 0) {
                log_warning("docker: cannot watch %.12s for auto-remove", id);
                free(w);
                pthread_mutex_lock(&d->lock);
                d->watchers--;
                pthread_mutex_unlock(&d->lock);
        }
        pthread_attr_destroy(&attr);
}
