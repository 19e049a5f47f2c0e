/* docker.c: the Docker front end's routes, version negotiation, the
 * answers to what is not supported, and ping, version and info. */
#include "docker-internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/base/log.h"
#include "common/base/macro.h"
#include "common/json/json-util.h"

typedef struct Route {
        ApiRouteInfo info; /* first: api_route_find() reads it */
        HttpBody body;
        DockerHandler fn;
} Route;

static int docker_ping(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
static int docker_version(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
static int docker_info(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);

static const Route routes[] = {
        {{"GET", "/_ping"}, HTTP_BODY_NONE, docker_ping},
        {{"HEAD", "/_ping"}, HTTP_BODY_NONE, docker_ping},
        {{"GET", "/version"}, HTTP_BODY_NONE, docker_version},
        {{"GET", "/info"}, HTTP_BODY_NONE, docker_info},
        {{"GET", "/events"}, HTTP_BODY_NONE, docker_events},
        {{"GET", "/containers/json"}, HTTP_BODY_NONE, docker_containers_list},
        {{"POST", "/containers/create"}, HTTP_BODY_JSON, docker_containers_create},
        {{"GET", "/containers/{}/json"}, HTTP_BODY_NONE, docker_containers_inspect},
        {{"POST", "/containers/{}/start"}, HTTP_BODY_DISCARD, docker_containers_start},
        {{"POST", "/containers/{}/stop"}, HTTP_BODY_DISCARD, docker_containers_stop},
        {{"POST", "/containers/{}/restart"}, HTTP_BODY_DISCARD, docker_containers_restart},
        {{"POST", "/containers/{}/kill"}, HTTP_BODY_DISCARD, docker_containers_kill},
        {{"POST", "/containers/{}/pause"}, HTTP_BODY_DISCARD, docker_containers_pause},
        {{"POST", "/containers/{}/unpause"}, HTTP_BODY_DISCARD, docker_containers_unpause},
        {{"POST", "/containers/{}/rename"}, HTTP_BODY_DISCARD, docker_containers_rename},
        {{"POST", "/containers/{}/wait"}, HTTP_BODY_DISCARD, docker_containers_wait},
        {{"POST", "/containers/{}/attach"}, HTTP_BODY_DISCARD, docker_containers_attach},
        {{"POST", "/containers/{}/resize"}, HTTP_BODY_DISCARD, docker_containers_resize},
        {{"GET", "/containers/{}/logs"}, HTTP_BODY_NONE, docker_containers_logs},
        {{"GET", "/containers/{}/top"}, HTTP_BODY_NONE, docker_containers_top},
        {{"GET", "/containers/{}/stats"}, HTTP_BODY_NONE, docker_containers_stats},
        {{"HEAD", "/containers/{}/archive"}, HTTP_BODY_NONE, docker_archive_head},
        {{"GET", "/containers/{}/archive"}, HTTP_BODY_NONE, docker_archive_get},
        {{"PUT", "/containers/{}/archive"}, HTTP_BODY_STREAM, docker_archive_put},
        {{"POST", "/containers/{}/exec"}, HTTP_BODY_JSON, docker_exec_create},
        {{"DELETE", "/containers/{}"}, HTTP_BODY_NONE, docker_containers_remove},
        {{"POST", "/exec/{}/start"}, HTTP_BODY_JSON, docker_exec_start},
        {{"POST", "/exec/{}/resize"}, HTTP_BODY_DISCARD, docker_exec_resize},
        {{"GET", "/exec/{}/json"}, HTTP_BODY_NONE, docker_exec_inspect},
        {{"GET", "/networks"}, HTTP_BODY_NONE, docker_networks_list},
        {{"POST", "/networks/create"}, HTTP_BODY_JSON, docker_networks_create},
        {{"GET", "/networks/{}"}, HTTP_BODY_NONE, docker_networks_inspect},
        {{"DELETE", "/networks/{}"}, HTTP_BODY_NONE, docker_networks_remove},
        {{"GET", "/volumes"}, HTTP_BODY_NONE, docker_volumes_list},
        {{"POST", "/volumes/create"}, HTTP_BODY_JSON, docker_volumes_create},
        {{"GET", "/volumes/{}"}, HTTP_BODY_NONE, docker_volumes_inspect},
        {{"DELETE", "/volumes/{}"}, HTTP_BODY_NONE, docker_volumes_remove},
        {{"GET", "/images/json"}, HTTP_BODY_NONE, docker_images_list},
        {{"POST", "/images/create"}, HTTP_BODY_DISCARD, docker_images_create},
        {{"GET", "/images/{*}"}, HTTP_BODY_NONE, docker_images_inspect},
        {{"DELETE", "/images/{*}"}, HTTP_BODY_NONE, docker_images_remove},
};

/* Docker calls the port layer does not serve, by path prefix, and what to
 * call them in the answer. */
static const struct {
        const char *prefix, *what;
} unsupported[] = {
        {"/build", "docker build"},
        {"/session", "docker build (BuildKit sessions)"},
        {"/commit", "docker commit"},
        {"/swarm", "swarm mode"},
        {"/nodes", "swarm mode (nodes)"},
        {"/services", "swarm mode (services)"},
        {"/tasks", "swarm mode (tasks)"},
        {"/secrets", "swarm mode (secrets)"},
        {"/configs", "swarm mode (configs)"},
        {"/plugins", "plugins"},
        {"/auth", "docker login (registry credentials are read from the daemon's auth file)"},
        {"/distribution", "registry distribution inspection"},
        {"/system/df", "docker system df"},
        {"/grpc", "the gRPC endpoint"},
        {"/images/load", "docker load (use plctl images import)"},
        {"/images/get", "docker save"},
        {"/images/search", "docker search"},
        {"/images/prune", "docker image prune"},
        {"/containers/prune", "docker container prune"},
        {"/build/prune", "docker builder prune"},
};

/* Image and container sub-calls without a route of their own. */
static const struct {
        const char *suffix, *what;
} unsupported_suffixes[] = {
        {"/push", "docker push"},
        {"/tag", "docker tag"},
        {"/history", "docker history"},
        {"/checkpoints", "checkpoints"},
        {"/update", "docker update"},
        {"/changes", "docker diff"},
        {"/export", "docker export"},
};

int docker_reply_error(HttpResponse *resp, unsigned status, const char *fmt, ...) {
        free(resp->body);
        resp->body = NULL;
        resp->body_len = 0;
        _cleanup_free_ char *text = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&text, fmt, ap);
        va_end(ap);
        return api_reply_json(resp, status, json_pack("{s:s}", "message", n < 0 ? "out of memory" : text));
}

int docker_body(HttpRequest *req, bool empty_ok, json_t **ret, Error **err) {
        size_t len = 0;
        const char *body = http_request_body(req, &len);
        if (len == 0) {
                if (!empty_ok)
                        return error_set(err, EINVAL, "a JSON object is required as the request body");
                return (*ret = json_object()) ? 0 : error_oom(err);
        }
        json_error_t je;
        json_t *j = json_loadb(body, len, 0, &je);
        if (!j)
                return error_set(err, EINVAL, "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
        if (!json_is_object(j)) {
                json_decref(j);
                return error_set(err, EINVAL, "the request body must be a JSON object");
        }
        *ret = j;
        return 0;
}

int docker_container_get(Docker *d, const char *ref, json_t **ret, Error **err) {
        int r = container_host_inspect(d->host, ref[0] == '/' ? ref + 1 : ref, ret, NULL);
        if (r == -ENOENT)
                return error_set(err, ENOENT, "No such container: %s", ref);
        if (r < 0)
                return error_set_errno(err, -r, "container %s", ref);
        return 0;
}

/* Strips a "/v1.NN" prefix into *ret_path; -EINVAL (with the status's text)
 * for a version below the minimum. */
static int strip_version(const char *path, const char **ret_path, Error **err) {
        *ret_path = path;
        if (strncmp(path, "/v", 2) != 0)
                return 0;
        unsigned major, minor;
        int n = 0;
        if (sscanf(path + 2, "%u.%u%n", &major, &minor, &n) != 2 || (path[2 + n] != '/' && path[2 + n] != 0))
                return 0;
        if (major != 1 || minor < 41)
                return error_set(err, EINVAL, "client version %u.%u is too old. Minimum supported API version is "
                                              DOCKER_API_VERSION_MIN ", please upgrade your client to a newer version",
                                 major, minor);
        *ret_path = path + 2 + n;
        if (!**ret_path)
                *ret_path = "/";
        return 0;
}

static const Route *route_find(const char *method, const char *path, char **params, size_t *n_params,
                               bool *path_known) {
        ssize_t i = api_route_find(routes, ELEMENTSOF(routes), sizeof(Route), method, path, params, n_params,
                                   path_known);
        return i < 0 ? NULL : &routes[i];
}

static HttpBody body_kind(void *app, const char *method, const char *path) {
        const char *p;
        if (strip_version(path, &p, NULL) < 0)
                return HTTP_BODY_DISCARD;
        char *params[API_ROUTE_PARAMS_MAX + 1] = {0};
        size_t n = 0;
        bool known;
        const Route *r = route_find(method, p, params, &n, &known);
        for (size_t k = 0; k < n; k++)
                free(params[k]);
        return r ? r->body : HTTP_BODY_DISCARD;
}

/* 501 for what Docker has and the port layer does not, else 404. */
static void reply_unsupported(HttpResponse *resp, const char *method, const char *path, bool path_known) {
        if (path_known) {
                (void) docker_reply_error(resp, 405, "%s %s is not supported by portlayer", method, path);
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(unsupported); i++) {
                size_t len = strlen(unsupported[i].prefix);
                if (strncmp(path, unsupported[i].prefix, len) == 0 && (path[len] == 0 || path[len] == '/')) {
                        (void) docker_reply_error(resp, 501, "%s is not supported by portlayer", unsupported[i].what);
                        return;
                }
        }
        if (strncmp(path, "/images/", 8) == 0 || strncmp(path, "/containers/", 12) == 0)
                for (size_t i = 0; i < ELEMENTSOF(unsupported_suffixes); i++) {
                        const char *s = strstr(path, unsupported_suffixes[i].suffix);
                        if (s && s[strlen(unsupported_suffixes[i].suffix)] == 0) {
                                (void) docker_reply_error(resp, 501, "%s is not supported by portlayer",
                                                          unsupported_suffixes[i].what);
                                return;
                        }
                }
        (void) docker_reply_error(resp, 404, "%s %s is not supported by portlayer", method, path);
}

static void handle(void *app, HttpRequest *req, HttpResponse *resp) {
        Docker *d = app;
        const char *method = http_request_method(req), *full = http_request_path(req), *path;
        _cleanup_error_ Error *e = NULL;
        if (strip_version(full, &path, &e) < 0) {
                (void) docker_reply_error(resp, 400, "%s", error_text(e));
                return;
        }
        char *params[API_ROUTE_PARAMS_MAX + 1] = {0};
        size_t n = 0;
        bool known;
        const Route *route = route_find(method, path, params, &n, &known);
        if (!route) {
                reply_unsupported(resp, method, path, known);
                return;
        }
        int r = route->fn(d, req, params, resp, &e);
        for (size_t k = 0; k < n; k++)
                free(params[k]);
        if (r < 0) {
                unsigned status = api_status_of_errno(r);
                if (r == -EOPNOTSUPP)
                        status = 501;
                const char *text = e ? error_text(e) : strerror(-r);
                if (status >= 500 && status != 501)
                        log_warning("docker %s %s: %s", method, path, text);
                else
                        log_debug("docker %s %s: %s", method, path, text);
                if (resp->stream_fd >= 0)
                        resp->stream_fd = safe_close(resp->stream_fd);
                (void) docker_reply_error(resp, status, "%s", text);
        }
}

HttpApp docker_http_app(Docker *d) {
        return (HttpApp){.body_kind = body_kind, .handle = handle, .app = d};
}

static int version_headers(HttpResponse *resp) {
        int r = http_response_add_header(resp, "Api-Version", DOCKER_API_VERSION);
        if (r >= 0)
                r = http_response_add_header(resp, "Ostype", "linux");
        if (r >= 0)
                r = http_response_add_header(resp, "Docker-Experimental", "false");
        if (r >= 0)
                r = http_response_add_header(resp, "Cache-Control", "no-cache, no-store, must-revalidate");
        return r;
}

static int docker_ping(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        if (version_headers(resp) < 0)
                return error_oom(err);
        resp->status = 200;
        resp->content_type = "text/plain; charset=utf-8";
        if (strcmp(http_request_method(req), "HEAD") != 0 && (resp->body = strdup("OK")))
                resp->body_len = 2;
        return 0;
}

static const char *machine(void) {
        static struct utsname u;
        return uname(&u) == 0 ? u.machine : "unknown";
}

static const char *go_arch(void) {
        const char *m = machine();
        return strcmp(m, "x86_64") == 0 ? "amd64" : strcmp(m, "aarch64") == 0 ? "arm64" : m;
}

static const char *kernel_release(void) {
        static struct utsname u;
        return uname(&u) == 0 ? u.release : "unknown";
}

static int docker_version(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        if (version_headers(resp) < 0)
                return error_oom(err);
        json_t *j = json_pack("{s:{s:s}, s:[{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}}], s:s, s:s, s:s, "
                              "s:s, s:s, s:s, s:s, s:s, s:s}",
                              "Platform", "Name", "portlayer",
                              "Components", "Name", "Engine", "Version", d->version, "Details", "ApiVersion",
                              DOCKER_API_VERSION, "MinAPIVersion", DOCKER_API_VERSION_MIN, "Os", "linux", "Arch",
                              go_arch(), "KernelVersion", kernel_release(), "GitCommit", "portlayer", "GoVersion",
                              "none (C)", "Experimental", "false",
                              "Version", d->version, "ApiVersion", DOCKER_API_VERSION, "MinAPIVersion",
                              DOCKER_API_VERSION_MIN, "GitCommit", "portlayer", "GoVersion", "none (C)", "Os", "linux",
                              "Arch", go_arch(), "KernelVersion", kernel_release(), "BuildTime", "");
        return j ? api_reply_json(resp, 200, j) : error_oom(err);
}

/* The warm pool as info's DriverStatus pairs (the CLI prints them under
 * "Storage Driver"). */
static json_t *pool_status(ContainerHost *h) {
        unsigned size, ready;
        container_host_pool_state(h, &size, &ready);
        char text[64];
        if (size == 0)
                snprintf(text, sizeof text, "off (cold start: every start boots)");
        else
                snprintf(text, sizeof text, "%u of %u guests ready", ready, size);
        return json_pack("[[s, s]]", "Warm pool", text);
}

static int docker_info(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        json_t *list = NULL;
        int r = container_host_list(d->host, -1, NULL, 0, &list, err);
        if (r < 0)
                return r;
        json_int_t running = 0, paused = 0, stopped = 0;
        size_t i;
        json_t *c;
        json_array_foreach(list, i, c) {
                const char *s = docker_state_of(json_string_value(json_object_get(c, "state")));
                running += strcmp(s, "running") == 0;
                paused += strcmp(s, "paused") == 0;
                stopped += strcmp(s, "exited") == 0 || strcmp(s, "created") == 0;
        }
        json_int_t n_containers = (json_int_t) json_array_size(list);
        json_decref(list);
        StoreImage **images = NULL;
        size_t n_images = 0;
        if (store_list(d->store, &images, &n_images, NULL) >= 0)
                store_image_list_free(images, n_images);
        char host[256] = "portlayer";
        (void) gethostname(host, sizeof host - 1);
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        json_int_t mem = (json_int_t) sysconf(_SC_PHYS_PAGES) * (json_int_t) sysconf(_SC_PAGESIZE);
        json_t *j = json_pack(
                "{s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:[], s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s, "
                "s:b, s:{s:[], s:{}, s:[]}, s:{s:s, s:s, s:b}, s:[s], s:{s:{}}, s:s, s:s, s:{s:[], s:[], s:[]}, "
                "s:s}",
                "ID", "portlayer", "Containers", n_containers, "ContainersRunning", running, "ContainersPaused", paused,
                "ContainersStopped", stopped, "Images", (json_int_t) n_images, "Driver", "portlayer (ext4 disk per "
                "container)", "DriverStatus", "OperatingSystem", "portlayer (a microVM per container)", "OSType", "linux",
                "Architecture", machine(), "KernelVersion", kernel_release(), "Name", host, "NCPU", (json_int_t) ncpu,
                "MemTotal", mem, "ServerVersion", d->version, "LoggingDriver", "portlayer", "CgroupDriver", "none",
                "DockerRootDir", "", "Debug", false, "RegistryConfig", "InsecureRegistryCIDRs", "IndexConfigs",
                "Mirrors", "Swarm", "LocalNodeState", "inactive", "NodeID", "", "ControlAvailable",
                false, "SecurityOptions", "name=microvm", "Runtimes", "portlayer", "DefaultRuntime", "portlayer",
                "Isolation", "", "Plugins", "Volume", "Network", "Log", "InitBinary", "");
        if (!j)
                return error_oom(err);
        (void) json_object_set_new(j, "DriverStatus", pool_status(d->host));
        return api_reply_json(resp, 200, j);
}

int docker_new(const DockerConfig *cfg, Docker **ret, Error **err) {
        Docker *d = calloc(1, sizeof(*d));
        if (!d || !(d->version = strdup(cfg->version ? cfg->version : "0.0.0"))) {
                free(d);
                return error_oom(err);
        }
        d->api = cfg->api;
        d->host = cfg->host;
        d->store = cfg->store;
        d->registry = cfg->registry;
        d->volumes = cfg->volumes;
        d->network = cfg->network;
        pthread_mutex_init(&d->lock, NULL);
        pthread_cond_init(&d->changed, NULL);
        /* --rm containers of an earlier run: watched again, or removed
         * when they stopped meanwhile */
        json_t *list = NULL;
        if (container_host_list(d->host, -1, (const char *const[]){DOCKER_LABEL_AUTO_REMOVE}, 1, &list, NULL) >= 0) {
                size_t i;
                json_t *c;
                json_array_foreach(list, i, c) {
                        const char *st = json_string_value(json_object_get(c, "state"));
                        if (strcmp(st, "created") != 0)
                                docker_watch_auto_remove(d, json_string_value(json_object_get(c, "id")));
                }
                json_decref(list);
        }
        *ret = d;
        return 0;
}

Docker *docker_free(Docker *d) {
        if (!d)
                return NULL;
        pthread_mutex_lock(&d->lock);
        d->stopping = true;
        pthread_cond_broadcast(&d->changed);
        while (d->watchers > 0)
                pthread_cond_wait(&d->changed, &d->lock);
        pthread_mutex_unlock(&d->lock);
        docker_execs_free(d);
        pthread_cond_destroy(&d->changed);
        pthread_mutex_destroy(&d->lock);
        free(d->version);
        free(d);
        return NULL;
}
