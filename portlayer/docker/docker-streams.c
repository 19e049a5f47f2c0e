/* docker-streams.c: the Docker calls that stream: wait (headers at once,
 * the body at the exit), attach and exec (upgraded connections carrying the
 * process's streams: multiplexed frames without a terminal, raw bytes with
 * one), logs and events. */
#include "docker-internal.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/json/json-util.h"

#define EVENTS_BATCH 64
#define START_WAIT_MS (600 * 1000) /* an attach before start waits this long for it */
#define STDIN_RETRY_MS 50

/* The newest event's number (0 when none). */
static uint64_t events_latest(ContainerHost *h) {
        ContainerEvent ev[EVENTS_BATCH];
        uint64_t after = 0;
        size_t n;
        while ((n = container_host_events(h, after, ev, EVENTS_BATCH, 0)) > 0)
                after = ev[n - 1].seq;
        return after;
}

static bool docker_stopping(Docker *d) {
        pthread_mutex_lock(&d->lock);
        bool s = d->stopping;
        pthread_mutex_unlock(&d->lock);
        return s || api_stopping(d->api);
}

static bool is_active(const char *docker_state) {
        return strcmp(docker_state, "running") == 0 || strcmp(docker_state, "paused") == 0;
}

/* --- wait --- */

typedef enum WaitMode { WAIT_NOT_RUNNING, WAIT_NEXT_EXIT, WAIT_REMOVED } WaitMode;

typedef struct Wait {
        Docker *d;
        char id[CONTAINER_ID_HEX + 1];
        WaitMode mode;
        uint64_t after;
        int code;     /* the exit code known at the call */
        bool done;    /* no need to wait: answer code */
} Wait;

static void wait_reply(int fd, int code) {
        _cleanup_json_ json_t *j = json_pack("{s:i, s:n}", "StatusCode", code, "Error");
        (void) json_write_line(fd, j);
}

static void wait_main(void *arg, int fd) {
        Wait *w = arg;
        if (w->done) {
                wait_reply(fd, w->code);
                return;
        }
        ContainerEvent ev[EVENTS_BATCH];
        for (;;) {
                size_t n = container_host_events(w->d->host, w->after, ev, EVENTS_BATCH, 1000);
                for (size_t i = 0; i < n; i++) {
                        w->after = ev[i].seq;
                        if (strcmp(ev[i].id, w->id) != 0)
                                continue;
                        if (strcmp(ev[i].action, "die") == 0) {
                                w->code = ev[i].exit_code;
                                if (w->mode != WAIT_REMOVED) {
                                        wait_reply(fd, w->code);
                                        return;
                                }
                        } else if (strcmp(ev[i].action, "destroy") == 0) {
                                wait_reply(fd, w->code);
                                return;
                        }
                }
                if (n == 0 && (fd_peer_gone(fd) || docker_stopping(w->d)))
                        return;
        }
}

int docker_containers_wait(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        const char *cond = http_request_query(req, "condition");
        WaitMode mode = WAIT_NOT_RUNNING;
        if (cond && strcmp(cond, "next-exit") == 0)
                mode = WAIT_NEXT_EXIT;
        else if (cond && strcmp(cond, "removed") == 0)
                mode = WAIT_REMOVED;
        else if (cond && *cond && strcmp(cond, "not-running") != 0)
                return error_set(err, EINVAL, "condition=%.32s: not-running, next-exit or removed", cond);
        Wait *w = calloc(1, sizeof(*w));
        if (!w)
                return error_oom(err);
        w->d = d;
        w->mode = mode;
        w->after = events_latest(d->host); /* before the inspect: no exit falls between */
        _cleanup_json_ json_t *pl = NULL;
        int r = docker_container_get(d, p[0], &pl, err);
        if (r < 0) {
                free(w);
                return r;
        }
        snprintf(w->id, sizeof w->id, "%s", json_string_value(json_object_get(pl, "id")));
        int code = (int) json_integer_value(json_object_get(pl, "exit_code"));
        w->code = code < 0 ? 0 : code;
        w->done = mode == WAIT_NOT_RUNNING &&
                  !is_active(docker_state_of(json_string_value(json_object_get(pl, "state")))) &&
                  strcmp(json_string_value(json_object_get(pl, "state")), "starting") != 0;
        return api_stream(d->api, resp, "application/json", wait_main, w, free, err);
}

/* --- attach: an upgraded connection carrying the main process's streams --- */

typedef struct Session {
        Docker *d;
        int fd;
        bool tty;
        /* attach */
        char id[CONTAINER_ID_HEX + 1];
        bool want_stdin, want_stdout, want_stderr;
        int64_t since_ns;
        uint64_t after;
        bool running_at_attach;
        bool over; /* the output side ended: the stdin side stops waiting (atomic) */
} Session;

static Session *session_new(Docker *d, bool tty) {
        Session *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->d = d;
        s->fd = -1;
        s->tty = tty;
        return s;
}

static void session_free(void *arg) {
        free(arg);
}

static int upgrade_reply(HttpRequest *req, HttpResponse *resp, bool tty, void (*fn)(void *, int, const char *, size_t),
                         Session *s, Error **err) {
        resp->upgrade = fn;
        resp->upgrade_free = session_free;
        resp->upgrade_arg = s;
        resp->content_type = tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream";
        return 0;
}

static bool wants_upgrade(HttpRequest *req) {
        const char *u = http_request_header(req, "Upgrade");
        return u && strcasecmp(u, "tcp") == 0;
}

/* Writes to the main process's stdin, waiting for a container that was
 * attached before its start to run. */
static int main_write(Session *s, const char *buf, size_t len, bool close_it) {
        uint64_t deadline = deadline_after_ms(START_WAIT_MS);
        for (;;) {
                int r = close_it ? container_host_main_close_stdin(s->d->host, s->id, NULL)
                                 : container_host_main_write(s->d->host, s->id, buf, len, NULL);
                if (r != -EBADFD)
                        return r;
                _cleanup_json_ json_t *pl = NULL;
                if (container_host_inspect(s->d->host, s->id, &pl, NULL) < 0)
                        return -ENOENT;
                const char *st = json_string_value(json_object_get(pl, "state"));
                /* created or starting: not there yet; anything else: too late */
                if ((strcmp(st, "created") != 0 && strcmp(st, "starting") != 0) || deadline_poll_ms(deadline) == 0 ||
                    docker_stopping(s->d) || __atomic_load_n(&s->over, __ATOMIC_ACQUIRE))
                        return r;
                usleep(STDIN_RETRY_MS * 1000);
        }
}

static void *attach_stdin(void *arg) {
        Session *s = arg;
        char buf[32768];
        for (;;) {
                ssize_t n = read(s->fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0 || main_write(s, buf, (size_t) n, false) < 0)
                        break;
        }
        (void) main_write(s, NULL, 0, true);
        return NULL;
}

/* Waits until the container attached before its start has started. */
static bool attach_wait_start(Session *s) {
        if (s->running_at_attach)
                return true;
        ContainerEvent ev[EVENTS_BATCH];
        uint64_t deadline = deadline_after_ms(START_WAIT_MS);
        while (deadline_poll_ms(deadline) != 0 && !docker_stopping(s->d)) {
                size_t n = container_host_events(s->d->host, s->after, ev, EVENTS_BATCH, 500);
                for (size_t i = 0; i < n; i++) {
                        s->after = ev[i].seq;
                        if (strcmp(ev[i].id, s->id) != 0)
                                continue;
                        if (strcmp(ev[i].action, "start") == 0)
                                return true;
                        if (strcmp(ev[i].action, "destroy") == 0)
                                return false;
                }
                if (n == 0 && fd_peer_gone(s->fd))
                        return false;
        }
        return false;
}

static void attach_session(void *arg, int fd, const char *extra, size_t extra_len) {
        Session *s = arg;
        s->fd = fd;
        (void) fd_set_nonblock(fd, false);
        api_session_add(s->d->api, fd);
        pthread_t in;
        bool have_in = false;
        if (s->want_stdin) {
                if (extra_len > 0)
                        (void) main_write(s, extra, extra_len, false);
                have_in = pthread_create(&in, NULL, attach_stdin, s) == 0;
        }
        if (attach_wait_start(s)) {
                ContainerLogOptions o = {.follow = true, .tail = -1, .since_ns = s->since_ns, .raw = true,
                                         .framed = !s->tty, .no_stdout = !s->want_stdout,
                                         .no_stderr = !s->want_stderr};
                (void) container_host_logs(s->d->host, s->id, &o, fd, NULL);
        }
        __atomic_store_n(&s->over, true, __ATOMIC_RELEASE);
        (void) shutdown(fd, SHUT_RDWR);
        if (have_in)
                pthread_join(in, NULL);
        api_session_remove(s->d->api, fd);
}

int docker_containers_attach(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        if (!wants_upgrade(req))
                return error_set(err, EINVAL, "attach needs an upgraded connection (\"Upgrade: tcp\")");
        if (api_query_bool(req, "logs"))
                return error_set(err, EOPNOTSUPP, "attach with logs=1 is not supported by portlayer: use docker logs");
        _cleanup_json_ json_t *pl = NULL;
        uint64_t after = events_latest(d->host);
        int r = docker_container_get(d, p[0], &pl, err);
        if (r < 0)
                return r;
        const json_t *config = json_object_get(pl, "config");
        const char *st = docker_state_of(json_string_value(json_object_get(pl, "state")));
        if (strcmp(st, "removing") == 0 || strcmp(st, "dead") == 0)
                return error_set(err, EBUSY, "You cannot attach to a stopped container, start it first");
        bool tty = json_is_true(json_object_get(config, "tty"));
        Session *s = session_new(d, tty);
        if (!s)
                return error_oom(err);
        snprintf(s->id, sizeof s->id, "%s", json_string_value(json_object_get(pl, "id")));
        s->want_stdin = api_query_bool(req, "stdin") && json_is_true(json_object_get(config, "open_stdin"));
        s->want_stdout = api_query_bool(req, "stdout");
        s->want_stderr = api_query_bool(req, "stderr");
        s->since_ns = (int64_t) realtime_nsec();
        s->after = after;
        s->running_at_attach = strcmp(json_string_value(json_object_get(pl, "state")), "running") == 0 ||
                               strcmp(json_string_value(json_object_get(pl, "state")), "paused") == 0;
        return upgrade_reply(req, resp, tty, attach_session, s, err);
}

/* --- logs --- */

typedef struct Logs {
        ContainerHost *host;
        char id[CONTAINER_ID_HEX + 1];
        ContainerLogOptions o;
} Logs;

static void logs_main(void *arg, int fd) {
        Logs *l = arg;
        (void) container_host_logs(l->host, l->id, &l->o, fd, NULL);
}

/* Docker's times in a query: Unix seconds, maybe with a fraction. */
static int query_time(HttpRequest *req, const char *name, int64_t *ret, Error **err) {
        const char *v = http_request_query(req, name);
        *ret = 0;
        if (!v || !*v)
                return 0;
        char *end = NULL;
        errno = 0;
        double s = strtod(v, &end);
        if (errno || !end || *end || s < 0 || s > 1e11 || isnan(s))
                return error_set(err, EINVAL, "%s=%.40s: not a Unix time", name, v);
        *ret = (int64_t) (s * 1e9);
        return 0;
}

int docker_containers_logs(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_json_ json_t *pl = NULL;
        int r = docker_container_get(d, p[0], &pl, err);
        if (r < 0)
                return r;
        bool out = api_query_bool(req, "stdout"), er = api_query_bool(req, "stderr");
        if (!out && !er)
                return error_set(err, EINVAL, "Bad parameters: you must choose at least one stream");
        long tail = -1;
        const char *t = http_request_query(req, "tail");
        if (t && *t && strcmp(t, "all") != 0 && (r = api_query_int(req, "tail", 0, INT32_MAX, -1, &tail, err)) < 0)
                return r;
        int64_t since;
        if ((r = query_time(req, "since", &since, err)) < 0)
                return r;
        bool tty = json_is_true(json_object_get(json_object_get(pl, "config"), "tty"));
        Logs *l = calloc(1, sizeof(*l));
        if (!l)
                return error_oom(err);
        l->host = d->host;
        snprintf(l->id, sizeof l->id, "%s", json_string_value(json_object_get(pl, "id")));
        l->o = (ContainerLogOptions){.follow = api_query_bool(req, "follow"), .tail = tail, .since_ns = since,
                                     .raw = true, .framed = !tty, .timestamps = api_query_bool(req, "timestamps"),
                                     .no_stdout = !out, .no_stderr = !er};
        return api_stream(d->api, resp,
                          tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream",
                          logs_main, l, free, err);
}

/* --- events --- */

typedef struct Events {
        Docker *d;
        uint64_t after;
        int64_t since_ns, until_ns;
        json_t *filters;
} Events;

static bool event_filter_match(const json_t *filters, const char *kind, const char *value, const char *value2) {
        json_t *want = json_object_get(filters, kind);
        if (!want)
                return true;
        const char *k;
        json_t *v;
        size_t i;
        if (json_is_object(want)) {
                json_object_foreach(want, k, v) if (strcmp(k, value) == 0 || (value2 && strcmp(k, value2) == 0) ||
                                                    (strlen(k) >= 12 && strncmp(value, k, strlen(k)) == 0)) return true;
        } else
                json_array_foreach(want, i, v) if (json_is_string(v) && (strcmp(json_string_value(v), value) == 0 ||
                                                                         (value2 && strcmp(json_string_value(v),
                                                                                           value2) == 0))) return true;
        return false;
}

static int event_write(Events *es, int fd, const ContainerEvent *ev) {
        if (ev->time_ns < es->since_ns || !event_filter_match(es->filters, "type", "container", NULL) ||
            !event_filter_match(es->filters, "event", ev->action, NULL) ||
            !event_filter_match(es->filters, "container", ev->id, ev->name))
                return 0;
        _cleanup_json_ json_t *pl = NULL;
        (void) container_host_inspect(es->d->host, ev->id, &pl, NULL);
        const char *image = json_string_value(json_object_get(pl, "image"));
        _cleanup_json_ json_t *attrs = json_pack("{s:s}", "name", ev->name);
        if (!attrs)
                return -ENOMEM;
        if (image)
                (void) json_object_set_new(attrs, "image", json_string(image));
        if (strcmp(ev->action, "die") == 0) {
                char code[16];
                snprintf(code, sizeof code, "%d", ev->exit_code);
                (void) json_object_set_new(attrs, "exitCode", json_string(code));
        }
        _cleanup_json_ json_t *j = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:{s:s, s:O}, s:s, s:I, s:I}", "status",
                                             ev->action, "id", ev->id, "from", image, "Type", "container", "Action",
                                             ev->action, "Actor", "ID", ev->id, "Attributes", attrs, "scope", "local",
                                             "time", (json_int_t) (ev->time_ns / 1000000000), "timeNano",
                                             (json_int_t) ev->time_ns);
        return j ? json_write_line(fd, j) : -ENOMEM;
}

static void events_main(void *arg, int fd) {
        Events *es = arg;
        ContainerEvent ev[EVENTS_BATCH];
        for (;;) {
                size_t n = container_host_events(es->d->host, es->after, ev, EVENTS_BATCH, 1000);
                for (size_t i = 0; i < n; i++) {
                        if (es->until_ns && ev[i].time_ns > es->until_ns)
                                return;
                        if (event_write(es, fd, &ev[i]) < 0)
                                return;
                        es->after = ev[i].seq;
                }
                if (n == 0 && ((es->until_ns && (int64_t) realtime_nsec() > es->until_ns) || fd_peer_gone(fd) ||
                               docker_stopping(es->d)))
                        return;
        }
}

static void events_free(void *arg) {
        Events *es = arg;
        json_decref(es->filters);
        free(es);
}

int docker_events(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        Events *es = calloc(1, sizeof(*es));
        if (!es)
                return error_oom(err);
        es->d = d;
        int r = query_time(req, "since", &es->since_ns, err);
        if (r >= 0)
                r = query_time(req, "until", &es->until_ns, err);
        const char *f = http_request_query(req, "filters");
        if (r >= 0 && f && *f && !json_is_object(es->filters = json_loads(f, 0, NULL)))
                r = error_set(err, EINVAL, "filters: must be a JSON object");
        if (r < 0) {
                events_free(es);
                return r;
        }
        /* without since: only what comes from now on */
        es->after = http_request_query(req, "since") ? 0 : events_latest(d->host);
        return api_stream(d->api, resp, "application/json", events_main, es, events_free, err);
}

/* --- exec --- */

struct DockerExec {
        DockerExec *next;
        char id[CONTAINER_ID_HEX + 1];
        char container[CONTAINER_ID_HEX + 1];
        json_t *argv, *env;
        char *workdir, *user;
        bool tty, attach_stdin, attach_stdout, attach_stderr;
        uint16_t rows, cols;
        ContainerExec *e; /* once started */
        bool started;
};

static DockerExec *exec_free(DockerExec *x) {
        DockerExec *next = x->next;
        json_decref(x->argv);
        json_decref(x->env);
        free(x->workdir);
        free(x->user);
        if (x->e)
                container_exec_unref(x->e);
        free(x);
        return next;
}

void docker_execs_free(Docker *d) {
        for (DockerExec *x = d->execs; x;)
                x = exec_free(x);
        d->execs = NULL;
        d->n_execs = 0;
}

/* The exec id's entry (lock held). */
static DockerExec *exec_find_locked(Docker *d, const char *id) {
        for (DockerExec *x = d->execs; x; x = x->next)
                if (strcmp(x->id, id) == 0)
                        return x;
        return NULL;
}

int docker_exec_create(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_json_ json_t *body = NULL, *pl = NULL;
        int r = docker_body(req, false, &body, err);
        if (r < 0)
                return r;
        if ((r = docker_container_get(d, p[0], &pl, err)) < 0)
                return r;
        const char *st = json_string_value(json_object_get(pl, "state"));
        if (strcmp(st, "running") != 0)
                return error_set(err, EBUSY, "container %s is not running", p[0]);
        json_t *cmd = json_object_get(body, "Cmd"), *env = json_object_get(body, "Env");
        if (!json_is_array(cmd) || json_array_size(cmd) == 0 || json_array_size(cmd) > CONTAINER_ARGS_MAX)
                return error_set(err, EINVAL, "No exec command specified");
        if (env && !json_is_null(env) && (!json_is_array(env) || json_array_size(env) > CONTAINER_ARGS_MAX))
                return error_set(err, EINVAL, "Env: must be an array of strings");
        size_t i;
        json_t *v;
        json_array_foreach(cmd, i, v) if (!json_is_string(v)) return error_set(err, EINVAL, "Cmd: must be strings");
        json_array_foreach(env, i, v) if (!json_is_string(v)) return error_set(err, EINVAL, "Env: must be strings");
        if (json_is_true(json_object_get(body, "Privileged")))
                return error_set(err, EOPNOTSUPP, "privileged exec is not supported by portlayer");
        const char *wd = json_string_value(json_object_get(body, "WorkingDir")),
                   *user = json_string_value(json_object_get(body, "User"));
        DockerExec *x = calloc(1, sizeof(*x));
        if (!x)
                return error_oom(err);
        random_hex(x->id, CONTAINER_ID_HEX);
        snprintf(x->container, sizeof x->container, "%s", json_string_value(json_object_get(pl, "id")));
        x->argv = json_incref(cmd);
        x->env = json_is_array(env) ? json_incref(env) : NULL;
        x->workdir = wd && *wd ? strdup(wd) : NULL;
        x->user = user && *user ? strdup(user) : NULL;
        x->tty = json_is_true(json_object_get(body, "Tty"));
        x->attach_stdin = json_is_true(json_object_get(body, "AttachStdin"));
        x->attach_stdout = json_is_true(json_object_get(body, "AttachStdout"));
        x->attach_stderr = json_is_true(json_object_get(body, "AttachStderr"));
        if (docker_console_size(json_object_get(body, "ConsoleSize"), &x->rows, &x->cols) < 0) {
                exec_free(x);
                return error_set(err, EINVAL, "ConsoleSize: [height, width]");
        }
        pthread_mutex_lock(&d->lock);
        x->next = d->execs;
        d->execs = x;
        /* the oldest beyond the window go (a started one keeps its process) */
        if (++d->n_execs > DOCKER_EXECS_KEPT) {
                DockerExec **pp = &d->execs;
                for (size_t k = 0; k + 1 < DOCKER_EXECS_KEPT && *pp; k++)
                        pp = &(*pp)->next;
                while (*pp) {
                        *pp = exec_free(*pp);
                        d->n_execs--;
                }
        }
        pthread_mutex_unlock(&d->lock);
        return api_reply_json(resp, 201, json_pack("{s:s}", "Id", x->id));
}

int docker_exec_start(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_json_ json_t *body = NULL;
        int r = docker_body(req, true, &body, err);
        if (r < 0)
                return r;
        bool detach = json_is_true(json_object_get(body, "Detach"));
        if (!detach && !wants_upgrade(req))
                return error_set(err, EINVAL, "exec start needs an upgraded connection (\"Upgrade: tcp\") unless "
                                              "Detach is set");
        pthread_mutex_lock(&d->lock);
        DockerExec *x = exec_find_locked(d, p[0]);
        bool started = x && x->started;
        if (x && !started)
                x->started = true;
        pthread_mutex_unlock(&d->lock);
        if (!x)
                return error_set(err, ENOENT, "No such exec instance: %s", p[0]);
        if (started)
                return error_set(err, EBUSY, "Exec %s has already run", p[0]);
        uint16_t rows = x->rows, cols = x->cols;
        (void) docker_console_size(json_object_get(body, "ConsoleSize"), &rows, &cols);
        _cleanup_free_ const char **argv = calloc(json_array_size(x->argv) + 1, sizeof(char *)),
                                  **env = calloc(json_array_size(x->env) + 1, sizeof(char *));
        if (!argv || !env)
                return error_oom(err);
        size_t i;
        json_t *v;
        json_array_foreach(x->argv, i, v) argv[i] = json_string_value(v);
        json_array_foreach(x->env, i, v) env[i] = json_string_value(v);
        ContainerExecSpec spec = {.argv = argv, .env = env, .workdir = x->workdir, .user = x->user, .tty = x->tty,
                                  .open_stdin = x->attach_stdin && !detach, .rows = rows, .cols = cols};
        ContainerExec *e = NULL, *mine = NULL;
        r = container_host_exec_start(d->host, x->container, &spec, &e, err);
        if (r >= 0 && !detach && container_host_exec_find(d->host, container_exec_id(e), &mine, err) < 0)
                r = -ENOENT;
        if (r < 0) {
                if (e)
                        container_exec_unref(e);
                return r;
        }
        bool attach_stdout = x->attach_stdout, attach_stderr = x->attach_stderr;
        /* x was found under the lock above; it is dropped only 256 creates
         * later, so it is still the one to hold e */
        pthread_mutex_lock(&d->lock);
        if (exec_find_locked(d, p[0]) == x)
                x->e = e;
        else
                container_exec_unref(e);
        pthread_mutex_unlock(&d->lock);
        if (detach)
                return api_reply_json(resp, 200, NULL);
        ApiExecStreams o = {.open_stdin = spec.open_stdin, .no_stdout = !attach_stdout, .no_stderr = !attach_stderr};
        r = api_exec_upgrade(d->api, mine, &o, resp, err);
        if (r >= 0)
                resp->content_type = spec.tty ? "application/vnd.docker.raw-stream"
                                              : "application/vnd.docker.multiplexed-stream";
        return r;
}

int docker_exec_inspect(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        pthread_mutex_lock(&d->lock);
        DockerExec *x = exec_find_locked(d, p[0]);
        json_t *info = x && x->e ? container_exec_to_json(x->e) : NULL;
        json_t *j = x ? json_pack("{s:s, s:s, s:b, s:n, s:b, s:b, s:b, s:b, s:{s:b, s:O, s:O, s:s, s:b}, s:i}", "ID",
                                  x->id, "ContainerID", x->container, "Running", false, "ExitCode", "OpenStdin",
                                  x->attach_stdin, "OpenStdout", x->attach_stdout, "OpenStderr", x->attach_stderr,
                                  "CanRemove", false, "ProcessConfig", "tty", x->tty, "entrypoint",
                                  json_array_get(x->argv, 0), "arguments", x->argv, "user", x->user ? x->user : "",
                                  "privileged", false, "Pid", 0)
                  : NULL;
        pthread_mutex_unlock(&d->lock);
        if (!x)
                return error_set(err, ENOENT, "No such exec instance: %s", p[0]);
        if (!j) {
                json_decref(info);
                return error_oom(err);
        }
        if (info) {
                bool running = json_is_true(json_object_get(info, "running"));
                (void) json_object_set_new(j, "Running", json_boolean(running));
                if (!running)
                        (void) json_object_set(j, "ExitCode", json_object_get(info, "exit_code"));
                (void) json_object_set(j, "Pid", json_object_get(info, "pid"));
                json_decref(info);
        }
        return api_reply_json(resp, 200, j);
}

int docker_exec_resize(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        long h, w;
        int r = api_query_int(req, "h", 0, 65535, 24, &h, err);
        if (r >= 0)
                r = api_query_int(req, "w", 0, 65535, 80, &w, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&d->lock);
        DockerExec *x = exec_find_locked(d, p[0]);
        ContainerExec *e = x ? x->e : NULL;
        if (x && !e && h > 0 && w > 0) { /* before the start: its initial size */
                x->rows = (uint16_t) h;
                x->cols = (uint16_t) w;
        }
        pthread_mutex_unlock(&d->lock);
        if (!x)
                return error_set(err, ENOENT, "No such exec instance: %s", p[0]);
        if (e && h > 0 && w > 0 && (r = container_exec_resize(e, (uint16_t) h, (uint16_t) w, err)) < 0)
                return r;
        return api_reply_json(resp, 200, NULL);
}
