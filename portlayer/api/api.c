/* api.c: the route table, the one errno-to-status mapping, and the request
 * helpers every handler uses (see api.h). */
#include "api-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/log.h"
#include "common/base/parse-util.h"
#include "common/json/json-util.h"

#define PARAMS_MAX API_ROUTE_PARAMS_MAX

typedef struct Route {
        ApiRouteInfo info; /* first: api_route_find() reads it */
        HttpBody body;
        ApiHandler fn;
} Route;

static const Route routes[] = {
        {{"GET", "/_ping"}, HTTP_BODY_NONE, api_ping},
        {{"HEAD", "/_ping"}, HTTP_BODY_NONE, api_ping},
        {{"GET", "/version"}, HTTP_BODY_NONE, api_version},
        {{"GET", "/metrics"}, HTTP_BODY_NONE, api_metrics},
        {{"POST", "/images/pull"}, HTTP_BODY_JSON, api_images_pull},
        {{"POST", "/images/import"}, HTTP_BODY_STREAM, api_images_import},
        {{"POST", "/images/gc"}, HTTP_BODY_NONE, api_images_gc},
        {{"GET", "/images"}, HTTP_BODY_NONE, api_images_list},
        {{"GET", "/images/{*}"}, HTTP_BODY_NONE, api_images_inspect},
        {{"DELETE", "/images/{*}"}, HTTP_BODY_NONE, api_images_remove},
        {{"POST", "/containers"}, HTTP_BODY_JSON, api_containers_create},
        {{"GET", "/containers"}, HTTP_BODY_NONE, api_containers_list},
        {{"GET", "/containers/{}"}, HTTP_BODY_NONE, api_containers_inspect},
        {{"DELETE", "/containers/{}"}, HTTP_BODY_NONE, api_containers_remove},
        {{"GET", "/containers/{}/handle"}, HTTP_BODY_NONE, api_containers_handle},
        {{"POST", "/containers/{}/exec-sync"}, HTTP_BODY_JSON, api_containers_exec_sync},
        {{"POST", "/containers/{}/signal"}, HTTP_BODY_JSON, api_containers_signal},
        {{"POST", "/containers/{}/wait"}, HTTP_BODY_NONE, api_containers_wait},
        {{"PUT", "/containers/{}/archive"}, HTTP_BODY_STREAM, api_containers_archive_put},
        {{"GET", "/containers/{}/archive"}, HTTP_BODY_NONE, api_containers_archive_get},
        {{"GET", "/containers/{}/logs"}, HTTP_BODY_NONE, api_containers_logs},
        {{"GET", "/containers/{}/stats"}, HTTP_BODY_NONE, api_containers_stats},
        {{"GET", "/containers/{}/stat"}, HTTP_BODY_NONE, api_containers_stat},
        {{"POST", "/containers/{}/exec"}, HTTP_BODY_JSON, api_containers_exec},
        {{"GET", "/exec/{}"}, HTTP_BODY_NONE, api_exec_inspect},
        {{"POST", "/exec/{}/resize"}, HTTP_BODY_NONE, api_exec_resize},
        {{"GET", "/events"}, HTTP_BODY_NONE, api_events},
        {{"POST", "/volumes"}, HTTP_BODY_JSON, api_volumes_create},
        {{"GET", "/volumes"}, HTTP_BODY_NONE, api_volumes_list},
        {{"GET", "/volumes/{}"}, HTTP_BODY_NONE, api_volumes_inspect},
        {{"DELETE", "/volumes/{}"}, HTTP_BODY_NONE, api_volumes_remove},
        {{"GET", "/vms"}, HTTP_BODY_NONE, api_vms_list},
        {{"GET", "/gc"}, HTTP_BODY_NONE, api_gc_list},
        {{"POST", "/gc"}, HTTP_BODY_NONE, api_gc_run},
        {{"GET", "/trust"}, HTTP_BODY_NONE, api_trust_list},
        {{"POST", "/trust"}, HTTP_BODY_JSON, api_trust_add},
        {{"DELETE", "/trust/{}"}, HTTP_BODY_NONE, api_trust_remove},
        {{"GET", "/handles/{}"}, HTTP_BODY_NONE, api_handles_inspect},
        {{"PUT", "/handles/{}/entrypoint"}, HTTP_BODY_JSON, api_handles_entrypoint},
        {{"PUT", "/handles/{}/limits"}, HTTP_BODY_JSON, api_handles_limits},
        {{"PUT", "/handles/{}/labels"}, HTTP_BODY_JSON, api_handles_labels},
        {{"PUT", "/handles/{}/state"}, HTTP_BODY_JSON, api_handles_state},
        {{"PUT", "/handles/{}/archive"}, HTTP_BODY_STREAM, api_handles_archive},
        {{"PUT", "/handles/{}/mounts"}, HTTP_BODY_JSON, api_handles_mounts},
        {{"PUT", "/handles/{}/network"}, HTTP_BODY_JSON, api_handles_network},
        {{"POST", "/handles/{}/commit"}, HTTP_BODY_NONE, api_handles_commit},
        {{"POST", "/networks"}, HTTP_BODY_JSON, api_networks_create},
        {{"GET", "/networks"}, HTTP_BODY_NONE, api_networks_list},
        {{"GET", "/networks/{}"}, HTTP_BODY_NONE, api_networks_inspect},
        {{"DELETE", "/networks/{}"}, HTTP_BODY_NONE, api_networks_remove},
};

static ApiRouteInfo route_infos[ELEMENTSOF(routes)];

const ApiRouteInfo *api_routes(size_t *ret_n) {
        for (size_t i = 0; i < ELEMENTSOF(routes); i++)
                route_infos[i] = routes[i].info;
        *ret_n = ELEMENTSOF(routes);
        return route_infos;
}

unsigned api_status_of_errno(int r) {
        switch (-r) {
        case ENOENT:
        case ESRCH:
                return 404;
        case EINVAL:
        case EBADMSG:
        case E2BIG:
        case ENAMETOOLONG:
        case EOPNOTSUPP:
        case EDOM:
                return 400;
        case EEXIST:
        case ESTALE:
        case EBUSY:
        case EBADFD:
        case EADDRINUSE: /* a published host port is taken */
                return 409;
        case ENOSPC:     /* no address left in a network's subnet */
                return 507;
        case EFBIG:
                return 413;
        case EPERM:
        case EACCES:
                return 403;
        case ETIMEDOUT:
                return 504;
        case ECONNREFUSED:
        case EHOSTUNREACH:
        case ENETUNREACH:
                return 502;
        default:
                return 500;
        }
}

/* Matches path against pattern; params get malloc'd copies of the {} parts.
 * Returns true on a match. */
bool api_route_match(const char *pattern, const char *path, char **params, size_t *n_params) {
        *n_params = 0;
        const char *p = pattern, *s = path;
        while (*p && *s) {
                if (strcmp(p, "{*}") == 0) {
                        if (!*s)
                                return false;
                        return (params[(*n_params)++] = strdup(s)) != NULL;
                }
                if (strncmp(p, "{}", 2) == 0) {
                        size_t len = strcspn(s, "/");
                        if (len == 0 || *n_params >= PARAMS_MAX || !(params[*n_params] = strndup(s, len)))
                                return false;
                        (*n_params)++;
                        p += 2;
                        s += len;
                        continue;
                }
                if (*p != *s)
                        return false;
                p++;
                s++;
        }
        return *p == 0 && *s == 0;
}

static void params_free(char **params, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(params[i]);
}

ssize_t api_route_find(const void *table, size_t n, size_t stride, const char *method, const char *path, char **params,
                       size_t *n_params, bool *path_known) {
        *path_known = false;
        for (size_t i = 0; i < n; i++) {
                const ApiRouteInfo *r = (const ApiRouteInfo *) ((const char *) table + i * stride);
                size_t k = 0;
                bool m = api_route_match(r->pattern, path, params, &k);
                if (m && strcmp(r->method, method) == 0) {
                        *n_params = k;
                        return (ssize_t) i;
                }
                params_free(params, k);
                *path_known |= m;
        }
        return -1;
}

/* The route for method and path; *path_known tells a 405 from a 404. */
static const Route *route_find(const char *method, const char *path, char **params, size_t *n_params,
                               bool *path_known) {
        ssize_t i = api_route_find(routes, ELEMENTSOF(routes), sizeof(Route), method, path, params, n_params,
                                   path_known);
        return i < 0 ? NULL : &routes[i];
}

static HttpBody body_kind(void *app, const char *method, const char *path) {
        char *params[PARAMS_MAX + 1] = {0};
        size_t n = 0;
        bool known;
        const Route *r = route_find(method, path, params, &n, &known);
        params_free(params, n);
        return r ? r->body : HTTP_BODY_NONE;
}

int api_reply_json(HttpResponse *resp, unsigned status, json_t *j) {
        resp->status = status;
        if (j) {
                resp->body = json_dumps(j, JSON_COMPACT);
                json_decref(j);
                if (!resp->body) {
                        resp->status = 500;
                        return -ENOMEM;
                }
                resp->body_len = strlen(resp->body);
        }
        return 0;
}

static void reply_error(HttpResponse *resp, unsigned status, const char *message) {
        free(resp->body);
        resp->body = NULL;
        resp->body_len = 0;
        if (resp->stream_fd >= 0)
                resp->stream_fd = safe_close(resp->stream_fd);
        (void) api_reply_json(resp, status, json_pack("{s:s}", "message", message));
}

static void handle(void *app, HttpRequest *req, HttpResponse *resp) {
        Api *a = app;
        char *params[PARAMS_MAX + 1] = {0};
        size_t n = 0;
        bool known;
        const char *method = http_request_method(req), *path = http_request_path(req);
        const Route *route = route_find(method, path, params, &n, &known);
        if (!route) {
                reply_error(resp, known ? 405 : 404, known ? "method not allowed" : "no such API call");
                return;
        }
        _cleanup_error_ Error *e = NULL;
        int r = route->fn(a, req, params, resp, &e);
        params_free(params, n);
        if (r < 0) {
                unsigned status = api_status_of_errno(r);
                const char *text = e ? error_text(e) : strerror(-r);
                if (status >= 500)
                        log_warning("%s %s: %s", method, path, text);
                else
                        log_debug("%s %s: %s", method, path, text);
                reply_error(resp, status, text);
        }
}

HttpApp api_http_app(Api *a) {
        return (HttpApp){.body_kind = body_kind, .handle = handle, .app = a};
}

int api_json_parse(const char *body, size_t len, const char *const *allowed, bool empty_ok, json_t **ret,
                   Error **err) {
        if (len == 0) {
                if (!empty_ok)
                        return error_set(err, EINVAL, "a JSON object is required as the request body");
                *ret = json_object();
                return *ret ? 0 : error_oom(err);
        }
        json_error_t je;
        _cleanup_json_ json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
        if (!j)
                return error_set(err, EINVAL, "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
        if (!json_is_object(j))
                return error_set(err, EINVAL, "the request body must be a JSON object");
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v) {
                bool ok = false;
                for (size_t i = 0; allowed && allowed[i] && !ok; i++)
                        ok = strcmp(allowed[i], key) == 0;
                if (!ok)
                        return error_set(err, EINVAL, "unknown field '%.64s'", key);
        }
        *ret = TAKE_PTR(j);
        return 0;
}

int api_body(HttpRequest *req, const char *const *allowed, bool empty_ok, json_t **ret, Error **err) {
        size_t len = 0;
        const char *body = http_request_body(req, &len);
        return api_json_parse(body, len, allowed, empty_ok, ret, err);
}

bool api_query_bool(HttpRequest *req, const char *name) {
        const char *v = http_request_query(req, name);
        return v && (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0);
}

int api_query_int(HttpRequest *req, const char *name, long min, long max, long def, long *ret, Error **err) {
        const char *v = http_request_query(req, name);
        if (!v) {
                *ret = def;
                return 0;
        }
        int x;
        if (safe_atoi(v, &x) < 0 || x < min || x > max)
                return error_set(err, EINVAL, "query %s=%.32s: must be an integer from %ld to %ld", name, v, min, max);
        *ret = (long) x;
        return 0;
}

typedef struct Stream {
        Api *api;
        void (*fn)(void *arg, int fd);
        void (*free_fn)(void *arg);
        void *arg;
        int fd;
} Stream;

static void *stream_main(void *p) {
        Stream *st = p;
        st->fn(st->arg, st->fd);
        safe_close(st->fd);
        if (st->free_fn)
                st->free_fn(st->arg);
        Api *a = st->api;
        free(st);
        pthread_mutex_lock(&a->lock);
        if (--a->streams == 0)
                pthread_cond_broadcast(&a->streams_done);
        pthread_mutex_unlock(&a->lock);
        return NULL;
}

int api_stream(Api *a, HttpResponse *resp, const char *content_type, void (*fn)(void *arg, int fd), void *arg,
               void (*free_fn)(void *arg), Error **err) {
        int fds[2] = {-1, -1};
        Stream *st = calloc(1, sizeof(*st));
        int r = !st ? error_oom(err) : pipe2(fds, O_CLOEXEC) < 0 ? error_set_errno(err, errno, "pipe") : 0;
        pthread_t t;
        if (r >= 0) {
                *st = (Stream){.api = a, .fn = fn, .free_fn = free_fn, .arg = arg, .fd = fds[1]};
                pthread_mutex_lock(&a->lock);
                a->streams++;
                pthread_mutex_unlock(&a->lock);
                pthread_attr_t attr;
                pthread_attr_init(&attr);
                pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                if (pthread_create(&t, &attr, stream_main, st) != 0) {
                        r = error_set(err, EAGAIN, "cannot start a thread for the response");
                        pthread_mutex_lock(&a->lock);
                        a->streams--;
                        pthread_mutex_unlock(&a->lock);
                }
                pthread_attr_destroy(&attr);
        }
        if (r < 0) {
                safe_close(fds[0]);
                safe_close(fds[1]);
                free(st);
                if (free_fn)
                        free_fn(arg);
                return r;
        }
        resp->status = 200;
        resp->stream_fd = fds[0];
        resp->content_type = content_type;
        return 0;
}

/* A JSON array of strings as a NULL-terminated vector of borrowed strings
 * after first (which may be NULL). */
int api_strv(const json_t *a, const char *what, const char *first, const char ***ret, Error **err) {
        if (a && !json_is_array(a))
                return error_set(err, EINVAL, "%s: must be an array of strings", what);
        size_t n = json_array_size(a), k = 0;
        if (n > 1024)
                return error_set(err, EINVAL, "%s: more than 1024 entries", what);
        const char **v = calloc(n + 2, sizeof(char *));
        if (!v)
                return error_oom(err);
        if (first)
                v[k++] = first;
        for (size_t i = 0; i < n; i++)
                if (!(v[k++] = json_string_value(json_array_get(a, i)))) {
                        free(v);
                        return error_set(err, EINVAL, "%s[%zu]: must be a string", what, i);
                }
        *ret = v;
        return 0;
}

int api_new(const ApiConfig *cfg, Api **ret, Error **err) {
        Api *a = calloc(1, sizeof(*a));
        if (!a || !(a->version = strdup(cfg->version ? cfg->version : "0.0.0")) ||
            !(a->trust_path = strdup(cfg->trust_path ? cfg->trust_path : "/dev/null/trust"))) {
                if (a)
                        free(a->version);
                free(a);
                return error_oom(err);
        }
        a->host = cfg->host;
        a->store = cfg->store;
        a->registry = cfg->registry;
        a->network = cfg->network;
        a->volumes = cfg->volumes;
        pthread_mutex_init(&a->lock, NULL);
        pthread_cond_init(&a->streams_done, NULL);
        *ret = a;
        return 0;
}

void api_shutdown(Api *a) {
        if (!a)
                return;
        pthread_mutex_lock(&a->lock);
        a->stopping = true;
        for (size_t i = 0; i < a->n_session_fds; i++)
                (void) shutdown(a->session_fds[i], SHUT_RDWR);
        pthread_mutex_unlock(&a->lock);
}

void api_session_add(Api *a, int fd) {
        pthread_mutex_lock(&a->lock);
        int *n = realloc(a->session_fds, (a->n_session_fds + 1) * sizeof(int));
        if (n) {
                a->session_fds = n;
                a->session_fds[a->n_session_fds++] = fd;
        }
        if (a->stopping)
                (void) shutdown(fd, SHUT_RDWR);
        pthread_mutex_unlock(&a->lock);
}

void api_session_remove(Api *a, int fd) {
        pthread_mutex_lock(&a->lock);
        for (size_t i = 0; i < a->n_session_fds; i++)
                if (a->session_fds[i] == fd) {
                        a->session_fds[i] = a->session_fds[--a->n_session_fds];
                        break;
                }
        pthread_mutex_unlock(&a->lock);
}

bool api_stopping(Api *a) {
        pthread_mutex_lock(&a->lock);
        bool stopping = a->stopping;
        pthread_mutex_unlock(&a->lock);
        return stopping;
}

Api *api_free(Api *a) {
        if (!a)
                return NULL;
        /* Once the server stopped, every stream's reader is gone: the
         * writers notice at their next write or check (a pull finishes its
         * pull first, so an image is never left half-made). */
        pthread_mutex_lock(&a->lock);
        while (a->streams > 0)
                pthread_cond_wait(&a->streams_done, &a->lock);
        pthread_mutex_unlock(&a->lock);
        pthread_cond_destroy(&a->streams_done);
        pthread_mutex_destroy(&a->lock);
        free(a->session_fds);
        free(a->version);
        free(a->trust_path);
        free(a);
        return NULL;
}
