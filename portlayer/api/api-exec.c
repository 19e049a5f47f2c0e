/* api-exec.c: interactive exec over an HTTP upgrade.
 *
 * POST /containers/{id}/exec with "Upgrade: tcp" starts the process, answers
 * 101 and turns the connection into the process's streams (docs/api.md,
 * "Exec"): with a terminal, raw bytes both ways; without, stdin raw from the
 * client and stdout/stderr to it in Docker's multiplexed frames (an 8-byte
 * header: stream 1 or 2, three zero bytes, a big-endian u32 length), ending
 * with a frame of stream 3 holding {"exit_code": N}. A client that
 * half-closes its side closes the process's stdin; output keeps flowing
 * until the process ends. GET /exec/{id} tells the exit code afterwards,
 * POST /exec/{id}/resize changes the terminal's size. */
#include "api-internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/json/json-util.h"

#define FRAME_HEADER 8

typedef struct ExecSession {
        Api *api;
        ContainerExec *e;
        ApiExecStreams o;
        int fd;
        pthread_mutex_t write_lock; /* frames of two streams never interleave */
        bool client_gone;
} ExecSession;

static int send_frame(ExecSession *s, int stream, const void *data, size_t len) {
        uint8_t hdr[FRAME_HEADER] = {(uint8_t) stream, 0, 0, 0, (uint8_t) (len >> 24), (uint8_t) (len >> 16),
                                     (uint8_t) (len >> 8), (uint8_t) len};
        pthread_mutex_lock(&s->write_lock);
        int r = container_exec_tty(s->e) ? 0 : write_all(s->fd, hdr, sizeof hdr);
        if (r >= 0)
                r = write_all(s->fd, data, len);
        if (r < 0)
                s->client_gone = true;
        pthread_mutex_unlock(&s->write_lock);
        return r;
}

typedef struct Pump {
        ExecSession *s;
        int stream;
} Pump;

static bool session_over(ExecSession *s) {
        return api_stopping(s->api) || fd_peer_gone(s->fd);
}

/* Output of one stream to the client until EOF, or until the client left
 * or the daemon stops (looked at twice a second while the process is
 * quiet). */
static void *pump_out(void *arg) {
        Pump *p = arg;
        char buf[32768];
        for (;;) {
                ssize_t n = container_exec_read(p->s->e, p->stream, buf, sizeof buf, 500, NULL);
                if (n == -ETIMEDOUT && !session_over(p->s))
                        continue;
                bool drop = p->stream == 1 ? p->s->o.no_stdout : p->s->o.no_stderr;
                if (n > 0 && drop)
                        continue;
                if (n <= 0 || send_frame(p->s, p->stream, buf, (size_t) n) < 0) {
                        if (n != 0)
                                p->s->client_gone = true;
                        break;
                }
        }
        return NULL;
}

/* The client's bytes to stdin until it half-closes (or leaves). */
static void *pump_in(void *arg) {
        ExecSession *s = arg;
        char buf[32768];
        for (;;) {
                ssize_t n = read(s->fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0 || container_exec_write(s->e, buf, (size_t) n, NULL) < 0)
                        break;
        }
        (void) container_exec_close_stdin(s->e, NULL);
        return NULL;
}

static void exec_session(void *arg, int fd, const char *extra, size_t extra_len) {
        ExecSession *s = arg;
        s->fd = fd;
        /* microhttpd's sockets are non-blocking; the pumps block. */
        (void) fd_set_nonblock(fd, false);
        api_session_add(s->api, fd);
        pthread_t in, err_thread;
        bool have_in = false, have_err = false;
        if (s->o.open_stdin) {
                if (extra_len > 0)
                        (void) container_exec_write(s->e, extra, extra_len, NULL);
                have_in = pthread_create(&in, NULL, pump_in, s) == 0;
        }
        Pump out = {s, 1}, er = {s, 2};
        if (!container_exec_tty(s->e))
                have_err = pthread_create(&err_thread, NULL, pump_out, &er) == 0;
        pump_out(&out);
        if (have_err)
                pthread_join(err_thread, NULL);
        int code = -1;
        /* the exit is recorded before the connection ends (a Docker client
         * asks for it right after) */
        if (!s->client_gone && container_exec_wait(s->e, -1, &code, NULL) >= 0 && s->o.exit_frame &&
            !container_exec_tty(s->e)) {
                char msg[64];
                int len = snprintf(msg, sizeof msg, "{\"exit_code\": %d}\n", code);
                (void) send_frame(s, 3, msg, (size_t) len);
        }
        /* The stdin pump may still wait for the client: end it. */
        (void) shutdown(fd, SHUT_RDWR);
        if (have_in)
                pthread_join(in, NULL);
        api_session_remove(s->api, fd);
}

static void exec_session_free(void *arg) {
        ExecSession *s = arg;
        container_exec_unref(s->e);
        pthread_mutex_destroy(&s->write_lock);
        free(s);
}

int api_containers_exec(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        static const char *const allowed[] = {"path", "args", "env", "workdir", "user", "tty", "stdin", "rows", "cols",
                                              NULL};
        const char *upgrade = http_request_header(req, "Upgrade");
        if (!upgrade || strcasecmp(upgrade, "tcp") != 0)
                return error_set(err, EINVAL, "exec streams over an upgraded connection: send \"Upgrade: tcp\" and "
                                              "\"Connection: Upgrade\" (or use exec-sync)");
        _cleanup_json_ json_t *body = NULL;
        int r = api_body(req, allowed, false, &body, err);
        if (r < 0)
                return r;
        const char *path = json_string_value(json_object_get(body, "path"));
        json_t *tty = json_object_get(body, "tty"), *in = json_object_get(body, "stdin"),
               *rows = json_object_get(body, "rows"), *cols = json_object_get(body, "cols");
        if (!path || !*path)
                return error_set(err, EINVAL, "\"path\" (the program, a string) is required");
        if ((tty && !json_is_boolean(tty)) || (in && !json_is_boolean(in)))
                return error_set(err, EINVAL, "tty and stdin must be booleans");
        if ((rows && (!json_is_integer(rows) || json_integer_value(rows) < 1 || json_integer_value(rows) > 65535)) ||
            (cols && (!json_is_integer(cols) || json_integer_value(cols) < 1 || json_integer_value(cols) > 65535)))
                return error_set(err, EINVAL, "rows and cols: integers from 1 to 65535");
        _cleanup_free_ const char **argv = NULL, **env = NULL;
        if ((r = api_strv(json_object_get(body, "args"), "args", path, &argv, err)) < 0 ||
            (r = api_strv(json_object_get(body, "env"), "env", NULL, &env, err)) < 0)
                return r;
        ContainerExecSpec spec = {
                .argv = argv, .env = env, .workdir = json_string_value(json_object_get(body, "workdir")),
                .user = json_string_value(json_object_get(body, "user")), .tty = json_is_true(tty),
                .open_stdin = json_is_true(in), .rows = (uint16_t) json_integer_value(rows),
                .cols = (uint16_t) json_integer_value(cols),
        };
        ContainerExec *e = NULL;
        r = container_host_exec_start(a->host, p[0], &spec, &e, err);
        if (r < 0)
                return r;
        resp->header_name = strdup("X-Portlayer-Exec-Id");
        resp->header_value = strdup(container_exec_id(e));
        ApiExecStreams o = {.open_stdin = spec.open_stdin, .exit_frame = true};
        return api_exec_upgrade(a, e, &o, resp, err);
}

int api_exec_upgrade(Api *a, ContainerExec *e, const ApiExecStreams *o, HttpResponse *resp, Error **err) {
        ExecSession *s = calloc(1, sizeof(*s));
        if (!s) {
                container_exec_unref(e);
                return error_oom(err);
        }
        s->api = a;
        s->e = e;
        s->o = *o;
        pthread_mutex_init(&s->write_lock, NULL);
        resp->upgrade = exec_session;
        resp->upgrade_free = exec_session_free;
        resp->upgrade_arg = s;
        return 0;
}

int api_exec_inspect(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        ContainerExec *e = NULL;
        int r = container_host_exec_find(a->host, p[0], &e, err);
        if (r < 0)
                return r;
        json_t *j = container_exec_to_json(e);
        container_exec_unref(e);
        return j ? api_reply_json(resp, 200, j) : error_oom(err);
}

int api_exec_resize(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        long rows, cols;
        int r = api_query_int(req, "rows", 1, 65535, 24, &rows, err);
        if (r >= 0)
                r = api_query_int(req, "cols", 1, 65535, 80, &cols, err);
        ContainerExec *e = NULL;
        if (r >= 0)
                r = container_host_exec_find(a->host, p[0], &e, err);
        if (r >= 0)
                r = container_exec_resize(e, (uint16_t) rows, (uint16_t) cols, err);
        container_exec_unref(e);
        return r < 0 ? r : api_reply_json(resp, 204, NULL);
}
