/* api-containers.c: the container and handle calls of the REST API: create,
 * list, inspect, handles and their commit, exec-sync, signals, wait, tar
 * archives in and out, removal. Each is a thin translation between HTTP and
 * container.h; docs/api.md is the contract. */
#include "api-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/json/json-util.h"

#define EXEC_OUTPUT_MAX (1u << 20)
#define LABEL_FILTERS_MAX 16

int api_ping(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        resp->status = 200;
        resp->content_type = "text/plain";
        if (strcmp(http_request_method(req), "HEAD") != 0 && (resp->body = strdup("OK")))
                resp->body_len = 2;
        return 0;
}

int api_version(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        unsigned size, ready;
        container_host_pool_state(a->host, &size, &ready);
        return api_reply_json(resp, 200,
                              json_pack("{s:s, s:s, s:s, s:{s:i, s:i, s:b}}", "version", a->version, "api", "v1",
                                        "qemu_user", container_host_qemu_user(a->host), "pool", "size", (int) size,
                                        "ready", (int) ready, "cold_start", size == 0));
}

int api_containers_create(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        static const char *const allowed[] = {"name", "image", NULL};
        _cleanup_json_ json_t *body = NULL;
        int r = api_body(req, allowed, false, &body, err);
        if (r < 0)
                return r;
        json_t *name = json_object_get(body, "name"), *image = json_object_get(body, "image");
        if ((name && !json_is_string(name)) || !json_is_string(image))
                return error_set(err, EINVAL, "\"image\" (a string) is required; \"name\" must be a string");
        _cleanup_free_ char *id = NULL, *handle = NULL;
        r = container_host_create(a->host, json_string_value(name), json_string_value(image), &id, &handle, err);
        if (r < 0)
                return r;
        return api_reply_json(resp, 201, json_pack("{s:s, s:s}", "id", id, "handle", handle));
}

int api_containers_list(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        const char *state = http_request_query(req, "state");
        int st = -1;
        if (state && (st = container_state_from_string(state)) < 0)
                return error_set(err, EINVAL, "state=%.32s: not a container state", state);
        /* label=k or label=k=v, repeated: microhttpd gives the first only,
         * so several are joined with ','. */
        const char *labels = http_request_query(req, "label");
        _cleanup_free_ char *copy = labels ? strdup(labels) : NULL;
        const char *want[LABEL_FILTERS_MAX];
        size_t n = 0;
        char *save = NULL;
        for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
                if (n >= LABEL_FILTERS_MAX)
                        return error_set(err, EINVAL, "at most %d label filters", LABEL_FILTERS_MAX);
                want[n++] = t;
        }
        json_t *list = NULL;
        int r = container_host_list(a->host, st, want, n, &list, err);
        return r < 0 ? r : api_reply_json(resp, 200, list);
}

int api_containers_inspect(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        json_t *j = NULL;
        int r = container_host_inspect(a->host, p[0], &j, err);
        return r < 0 ? r : api_reply_json(resp, 200, j);
}

int api_containers_handle(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_free_ char *handle = NULL;
        int r = container_host_get_handle(a->host, p[0], &handle, err);
        return r < 0 ? r : api_reply_json(resp, 200, json_pack("{s:s}", "handle", handle));
}

int api_containers_remove(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        int r = container_host_destroy(a->host, p[0], api_query_bool(req, "force"), err);
        return r < 0 ? r : api_reply_json(resp, 204, NULL);
}

int api_containers_exec_sync(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        static const char *const allowed[] = {"path", "args", "env", "workdir", "user", "timeout_s", NULL};
        _cleanup_json_ json_t *body = NULL;
        int r = api_body(req, allowed, false, &body, err);
        if (r < 0)
                return r;
        const char *path = json_string_value(json_object_get(body, "path"));
        json_t *t = json_object_get(body, "timeout_s"), *wd = json_object_get(body, "workdir"),
               *user = json_object_get(body, "user");
        if (!path || !*path)
                return error_set(err, EINVAL, "\"path\" (the program, a string) is required");
        if (t && (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > 86400))
                return error_set(err, EINVAL, "timeout_s: must be an integer from 0 to 86400");
        if ((wd && !json_is_string(wd)) || (user && !json_is_string(user)))
                return error_set(err, EINVAL, "workdir and user must be strings");
        _cleanup_free_ const char **argv = NULL, **env = NULL;
        if ((r = api_strv(json_object_get(body, "args"), "args", path, &argv, err)) < 0 ||
            (r = api_strv(json_object_get(body, "env"), "env", NULL, &env, err)) < 0)
                return r;
        ContainerExecResult res;
        r = container_host_exec_sync(a->host, p[0], argv, env, json_string_value(wd), json_string_value(user),
                                     t ? (int) json_integer_value(t) : 0, EXEC_OUTPUT_MAX, &res, err);
        if (r < 0)
                return r;
        json_t *j = json_pack("{s:i, s:o, s:o, s:b}", "exit_code", res.exit_code, "stdout",
                              json_bytes(res.out, res.out_len), "stderr", json_bytes(res.err, res.err_len),
                              "truncated", res.truncated);
        container_exec_result_clear(&res);
        return api_reply_json(resp, 200, j);
}

int api_containers_signal(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        static const char *const allowed[] = {"signal", "all", NULL};
        _cleanup_json_ json_t *body = NULL;
        int r = api_body(req, allowed, true, &body, err);
        if (r < 0)
                return r;
        json_t *s = json_object_get(body, "signal"), *all = json_object_get(body, "all");
        int sig = 15;
        if (json_is_integer(s))
                sig = (int) json_integer_value(s);
        else if (json_is_string(s) && (sig = container_signal_from_string(json_string_value(s))) < 0)
                return error_set(err, EINVAL, "signal: not a signal name");
        else if (s && !json_is_string(s))
                return error_set(err, EINVAL, "signal: a name (\"TERM\") or a number");
        if (all && !json_is_boolean(all))
                return error_set(err, EINVAL, "all: must be a boolean");
        r = container_host_signal(a->host, p[0], sig, json_is_true(all), err);
        return r < 0 ? r : api_reply_json(resp, 204, NULL);
}

int api_containers_wait(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        long timeout_s;
        int r = api_query_int(req, "timeout_s", 0, 86400 * 365, 0, &timeout_s, err);
        if (r < 0)
                return r;
        int code = -1;
        r = container_host_wait(a->host, p[0], timeout_s ? (int) MIN(timeout_s * 1000, (long) INT32_MAX) : -1, &code,
                                err);
        return r < 0 ? r : api_reply_json(resp, 200, json_pack("{s:i}", "exit_code", code));
}

static int archive_dir(HttpRequest *req, const char **ret, Error **err) {
        const char *path = http_request_query(req, "path");
        if (!path || path[0] != '/')
                return error_set(err, EINVAL, "query path= must be an absolute path inside the container");
        *ret = path;
        return 0;
}

int api_containers_archive_put(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        const char *dir = NULL;
        int r = archive_dir(req, &dir, err);
        if (r < 0)
                return r;
        r = container_host_archive_in(a->host, p[0], dir, http_request_body_fd(req), err);
        return r < 0 ? r : api_reply_json(resp, 200, json_pack("{s:s}", "path", dir));
}

typedef struct Streamed {
        ContainerHost *host;
        char *ref, *path;
        ContainerLogOptions log;
} Streamed;

static Streamed *streamed_new(Api *a, const char *ref, const char *path) {
        Streamed *s = calloc(1, sizeof(*s));
        if (s && (!(s->ref = strdup(ref)) || (path && !(s->path = strdup(path))))) {
                free(s->ref);
                free(s);
                return NULL;
        }
        if (s)
                s->host = a->host;
        return s;
}

static void streamed_free(void *arg) {
        Streamed *s = arg;
        free(s->ref);
        free(s->path);
        free(s);
}

static void copy_out_main(void *arg, int fd) {
        Streamed *s = arg;
        (void) container_host_archive_out(s->host, s->ref, s->path, fd, NULL);
}

int api_containers_archive_get(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        const char *path = NULL;
        int r = archive_dir(req, &path, err);
        if (r < 0)
                return r;
        /* Errors a client can act on come first, as a status: the container
         * must run and the path must exist. A failure after that can only cut
         * the stream short (the tar then lacks its end). */
        json_t *st = NULL;
        if ((r = container_host_stat_path(a->host, p[0], path, &st, err)) < 0)
                return r;
        json_decref(st);
        Streamed *s = streamed_new(a, p[0], path);
        return s ? api_stream(a, resp, "application/x-tar", copy_out_main, s, streamed_free, err) : error_oom(err);
}

int api_containers_stat(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        const char *path = NULL;
        json_t *j = NULL;
        int r = archive_dir(req, &path, err);
        if (r >= 0)
                r = container_host_stat_path(a->host, p[0], path, &j, err);
        return r < 0 ? r : api_reply_json(resp, 200, j);
}

int api_containers_stats(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        json_t *j = NULL;
        int r = container_host_stats(a->host, p[0], &j, err);
        return r < 0 ? r : api_reply_json(resp, 200, j);
}

static void logs_main(void *arg, int fd) {
        Streamed *s = arg;
        (void) container_host_logs(s->host, s->ref, &s->log, fd, NULL);
}

int api_containers_logs(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        long tail, since;
        int r = api_query_int(req, "tail", -1, INT32_MAX, -1, &tail, err);
        if (r >= 0)
                r = api_query_int(req, "since", 0, INT32_MAX, 0, &since, err);
        const char *format = http_request_query(req, "format");
        if (r >= 0 && format && strcmp(format, "json") != 0 && strcmp(format, "raw") != 0)
                r = error_set(err, EINVAL, "format=%.16s: json or raw", format);
        json_t *j = NULL;
        if (r >= 0) /* a missing container is a 404, not an empty stream */
                r = container_host_inspect(a->host, p[0], &j, err);
        json_decref(j);
        if (r < 0)
                return r;
        Streamed *s = streamed_new(a, p[0], NULL);
        if (!s)
                return error_oom(err);
        s->log = (ContainerLogOptions){
                .follow = api_query_bool(req, "follow"), .tail = tail, .since_ns = (int64_t) since * 1000000000,
                .raw = format && strcmp(format, "raw") == 0,
                .no_stdout = http_request_query(req, "stdout") && !api_query_bool(req, "stdout"),
                .no_stderr = http_request_query(req, "stderr") && !api_query_bool(req, "stderr"),
        };
        return api_stream(a, resp, s->log.raw ? "application/octet-stream" : "application/x-ndjson", logs_main, s,
                          streamed_free, err);
}

typedef struct EventsStream {
        ContainerHost *host;
        uint64_t after;
        bool follow;
} EventsStream;

static void events_main(void *arg, int fd) {
        EventsStream *es = arg;
        ContainerEvent ev[64];
        for (;;) {
                size_t n = container_host_events(es->host, es->after, ev, ELEMENTSOF(ev), es->follow ? 1000 : 0);
                for (size_t i = 0; i < n; i++) {
                        _cleanup_json_ json_t *j = json_pack("{s:I, s:I, s:s, s:s, s:s, s:i}", "seq",
                                                             (json_int_t) ev[i].seq, "time_ns", (json_int_t) ev[i].time_ns,
                                                             "action", ev[i].action, "id", ev[i].id, "name", ev[i].name,
                                                             "exit_code", ev[i].exit_code);
                        if (json_write_line(fd, j) < 0)
                                return;
                        es->after = ev[i].seq;
                }
                if (!es->follow && n < ELEMENTSOF(ev))
                        return;
                /* with nothing to write, the pipe says whether its reader
                 * (the client's connection) is still there */
                if (n == 0 && fd_peer_gone(fd))
                        return;
        }
}

int api_events(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        long since;
        int r = api_query_int(req, "since", 0, INT32_MAX, 0, &since, err);
        if (r < 0)
                return r;
        EventsStream *es = calloc(1, sizeof(*es));
        if (!es)
                return error_oom(err);
        *es = (EventsStream){.host = a->host, .after = (uint64_t) since, .follow = !http_request_query(req, "follow") ||
                                                                                     api_query_bool(req, "follow")};
        return api_stream(a, resp, "application/x-ndjson", events_main, es, free, err);
}

/* --- handles --- */

int api_handles_inspect(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        json_t *j = NULL;
        int r = container_handle_inspect(a->host, p[0], &j, err);
        return r < 0 ? r : api_reply_json(resp, 200, j);
}

static int handle_update(Api *a, HttpRequest *req, const char *handle, const char *const *allowed,
                         HttpResponse *resp, Error **err) {
        _cleanup_json_ json_t *body = NULL;
        int r = api_body(req, allowed, false, &body, err);
        if (r < 0)
                return r;
        r = container_handle_update(a->host, handle, body, err);
        if (r < 0)
                return r;
        return api_handles_inspect(a, req, (char *[]){(char *) handle}, resp, err);
}

int api_handles_entrypoint(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        static const char *const allowed[] = {"path", "args", "env", "workdir", "user", "stop_signal",
                                              "stop_timeout_s", "tty", "open_stdin", "tty_rows", "tty_cols",
                                              NULL};
        return handle_update(a, req, p[0], allowed, resp, err);
}

int api_handles_limits(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        static const char *const allowed[] = {"memory_mb", "vcpus", "cold_start", "share_pages", NULL};
        return handle_update(a, req, p[0], allowed, resp, err);
}

int api_handles_labels(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        static const char *const allowed[] = {"labels", NULL};
        return handle_update(a, req, p[0], allowed, resp, err);
}

int api_handles_state(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        static const char *const allowed[] = {"state", NULL};
        _cleanup_json_ json_t *body = NULL;
        int r = api_body(req, allowed, false, &body, err);
        if (r < 0)
                return r;
        int st = container_state_from_string(json_string_value(json_object_get(body, "state")));
        if (st < 0)
                return error_set(err, EINVAL, "state: must be \"running\", \"stopped\" or \"paused\"");
        r = container_handle_set_state(a->host, p[0], (ContainerState) st, err);
        return r < 0 ? r : api_handles_inspect(a, req, p, resp, err);
}

int api_handles_archive(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        const char *dir = NULL;
        int r = archive_dir(req, &dir, err);
        if (r < 0)
                return r;
        r = container_handle_add_archive(a->host, p[0], dir, http_request_body_fd(req), HTTP_STREAM_MAX, err);
        return r < 0 ? r : api_handles_inspect(a, req, p, resp, err);
}

int api_handles_commit(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        json_t *j = NULL;
        int r = container_host_commit(a->host, p[0], &j, err);
        return r < 0 ? r : api_reply_json(resp, 200, j);
}
