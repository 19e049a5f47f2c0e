/* plctl-exec.c: "plctl exec", a process in a running container over the
 * upgraded stream of POST /containers/{id}/exec (docs/api.md, Exec).
 *
 * The upgrade is spoken by hand on a stream of plctl-tls.c, the daemon's
 * Unix socket or TLS to a remote (libcurl's easy interface hands over no
 * raw two-way stream with a half-close): one
 * request, the answer's header read byte by byte up to its blank line,
 * then the connection is the process's streams. With -t the bytes are raw
 * both ways, the local terminal is put in raw mode (with -i, when stdin is
 * a terminal) and restored on every way out, and its size goes in the body
 * and, on SIGWINCH, to POST /exec/{id}/resize. Without -t the answer is
 * Docker's multiplexed frames: stdout, stderr, and a last stream-3 frame
 * holding the exit code. With -i stdin is copied and the socket half-closed
 * at EOF. plctl exits with the process's exit code. With --json the process
 * runs through exec-sync and its JSON answer is printed. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/json/json-util.h"
#include "plctl-internal.h"
#include "portlayer/plctl/plctl-tls.h"

#define EXEC_ENV_MAX 1024
#define HEADER_MAX (16 * 1024)
#define FRAME_MAX (64u * 1024 * 1024)

typedef struct ExecArgs {
        bool interactive, tty;
        const char *env[EXEC_ENV_MAX];
        size_t n_env;
        const char *workdir, *user, *ref;
        char **cmd;
        int n_cmd;
} ExecArgs;

/* --- the local terminal --- */

static struct termios saved_termios;
static volatile sig_atomic_t terminal_is_raw;
static int winch_pipe[2] = {-1, -1};

static void terminal_restore(void) {
        if (terminal_is_raw) {
                tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
                terminal_is_raw = 0;
        }
}

/* A signal that ends us: the terminal back first, then the default. */
static void on_fatal_signal(int sig) {
        terminal_restore();
        signal(sig, SIG_DFL);
        raise(sig);
}

static void on_winch(int sig) {
        int saved = errno;
        if (winch_pipe[1] >= 0)
                (void) !write(winch_pipe[1], "w", 1);
        errno = saved;
}

static void terminal_raw(void) {
        if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_termios) < 0)
                return;
        static const int fatal[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT};
        for (size_t i = 0; i < ELEMENTSOF(fatal); i++)
                signal(fatal[i], on_fatal_signal);
        atexit(terminal_restore);
        struct termios raw = saved_termios;
        cfmakeraw(&raw);
        if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
                terminal_is_raw = 1;
}

static bool terminal_size(unsigned short *rows, unsigned short *cols) {
        struct winsize ws;
        if ((ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0) || ws.ws_row == 0 ||
            ws.ws_col == 0)
                return false;
        *rows = ws.ws_row;
        *cols = ws.ws_col;
        return true;
}

/* --- the upgrade --- */

static int exec_body(const ExecArgs *a, json_t **ret, Error **err) {
        _cleanup_json_ json_t *args = json_array(), *b = NULL;
        for (int i = 1; args && i < a->n_cmd; i++)
                json_array_append_new(args, json_string(a->cmd[i]));
        b = json_pack("{s:s, s:O, s:b, s:b}", "path", a->cmd[0], "args", args, "tty", a->tty, "stdin", a->interactive);
        if (!b)
                return error_oom(err);
        if (a->n_env > 0) {
                json_t *env = json_array();
                for (size_t i = 0; env && i < a->n_env; i++)
                        json_array_append_new(env, json_string(a->env[i]));
                json_object_set_new(b, "env", env);
        }
        if (a->workdir)
                json_object_set_new(b, "workdir", json_string(a->workdir));
        if (a->user)
                json_object_set_new(b, "user", json_string(a->user));
        unsigned short rows, cols;
        if (a->tty && terminal_size(&rows, &cols)) {
                json_object_set_new(b, "rows", json_integer(rows));
                json_object_set_new(b, "cols", json_integer(cols));
        }
        *ret = TAKE_PTR(b);
        return 0;
}

/* The answer's header, byte by byte so that no stream byte is consumed. */
static int read_header(PlctlStream *st, char *buf, size_t size, Error **err) {
        size_t n = 0;
        while (n + 1 < size) {
                ssize_t k = plctl_stream_read(st, buf + n, 1);
                if (k == -EAGAIN)
                        continue;
                if (k <= 0)
                        return error_set(err, EPROTO, "the daemon closed the connection before answering");
                n++;
                buf[n] = 0;
                if (n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0)
                        return 0;
        }
        return error_set(err, EPROTO, "the daemon's answer header is too long");
}

static const char *header_value(const char *head, const char *name) {
        size_t len = strlen(name);
        for (const char *l = strstr(head, "\r\n"); l; l = strstr(l + 2, "\r\n"))
                if (strncasecmp(l + 2, name, len) == 0 && l[2 + len] == ':')
                        return l + 3 + len + strspn(l + 3 + len, " \t");
        return NULL;
}

/* A refusal: the body (Content-Length bytes, at most 64 KiB) holds the message. */
static int stream_read_exact(PlctlStream *st, char *buf, size_t len) {
        while (len > 0) {
                ssize_t k = plctl_stream_read(st, buf, len);
                if (k == -EAGAIN)
                        continue;
                if (k <= 0)
                        return k < 0 ? (int) k : -EPIPE;
                buf += k;
                len -= (size_t) k;
        }
        return 0;
}

static int read_refusal(PlctlStream *st, int status, const char *head, Error **err) {
        const char *cl = header_value(head, "Content-Length");
        size_t len = cl ? strtoul(cl, NULL, 10) : 0;
        _cleanup_free_ char *body = len > 0 && len <= 65536 ? calloc(1, len + 1) : NULL;
        _cleanup_json_ json_t *j = body && stream_read_exact(st, body, len) >= 0 ? json_loads(body, 0, NULL) : NULL;
        const char *msg = json_string_value(json_object_get(j, "message"));
        int code = status == 404 ? ENOENT : status == 409 ? EBUSY : status == 400 ? EINVAL : EIO;
        return msg ? error_set(err, code, "%s", msg) : error_set(err, code, "the daemon answered HTTP %d", status);
}

/* Sends the request; *ret the connected stream, *exec_id set. */
static int exec_open(PlctlClient *c, const ExecArgs *a, PlctlStream **ret, char exec_id[128], Error **err) {
        _cleanup_json_ json_t *body = NULL;
        _cleanup_free_ char *ref = plctl_escape(a->ref), *json = NULL, *req = NULL;
        int r = exec_body(a, &body, err);
        if (r < 0)
                return r;
        if (!ref || !(json = json_dumps(body, JSON_COMPACT)) ||
            asprintf(&req,
                     "POST /containers/%s/exec HTTP/1.1\r\nHost: portlayer\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     ref, strlen(json), json) < 0)
                return error_oom(err);
        _cleanup_plctl_stream_ PlctlStream *st = NULL;
        if ((r = plctl_stream_open(c, &st, err)) < 0)
                return r;
        if ((r = plctl_stream_write(st, req, strlen(req))) < 0)
                return error_set_errno(err, -r, "send the exec request");
        char head[HEADER_MAX];
        if ((r = read_header(st, head, sizeof head, err)) < 0)
                return r;
        int status = 0;
        if (sscanf(head, "HTTP/1.%*c %d", &status) != 1)
                return error_set(err, EPROTO, "the daemon's answer is not HTTP");
        if (status != 101)
                return read_refusal(st, status, head, err);
        const char *id = header_value(head, "X-Portlayer-Exec-Id");
        size_t id_len = id ? strcspn(id, "\r\n") : 0;
        if (id_len == 0 || id_len >= 128)
                return error_set(err, EPROTO, "the daemon's answer names no exec id");
        memcpy(exec_id, id, id_len);
        exec_id[id_len] = 0;
        *ret = TAKE_PTR(st);
        return 0;
}

/* --- the streams --- */

typedef struct Demux {
        unsigned char header[8];
        size_t header_len;
        uint32_t left; /* payload bytes left in the current frame */
        char status[4096];
        size_t status_len;
        int exit_code; /* -1 until the stream-3 frame */
} Demux;

static int demux_feed(Demux *d, const char *p, size_t n, Error **err) {
        while (n > 0) {
                if (d->left == 0 && d->header_len < 8) {
                        size_t k = MIN(n, 8 - d->header_len);
                        memcpy(d->header + d->header_len, p, k);
                        d->header_len += k;
                        p += k;
                        n -= k;
                        if (d->header_len == 8) {
                                d->left = (uint32_t) d->header[4] << 24 | (uint32_t) d->header[5] << 16 |
                                          (uint32_t) d->header[6] << 8 | d->header[7];
                                if (d->header[0] < 1 || d->header[0] > 3 || d->left > FRAME_MAX)
                                        return error_set(err, EPROTO, "the daemon sent a bad stream frame");
                                d->status_len = 0;
                                if (d->left == 0)
                                        d->header_len = 0;
                        }
                        continue;
                }
                size_t k = MIN(n, d->left);
                int stream = d->header[0];
                if (stream == 3) {
                        if (d->status_len + k >= sizeof d->status)
                                return error_set(err, EPROTO, "the daemon's exit frame is too long");
                        memcpy(d->status + d->status_len, p, k);
                        d->status_len += k;
                } else
                        (void) write_all(stream == 1 ? STDOUT_FILENO : STDERR_FILENO, p, k);
                p += k;
                n -= k;
                d->left -= (uint32_t) k;
                if (d->left == 0) {
                        d->header_len = 0;
                        if (stream == 3) {
                                _cleanup_json_ json_t *j = json_loadb(d->status, d->status_len, 0, NULL);
                                json_t *code = json_object_get(j, "exit_code");
                                if (!json_is_integer(code))
                                        return error_set(err, EPROTO, "the daemon's exit frame holds no exit code");
                                d->exit_code = (int) json_integer_value(code);
                        }
                }
        }
        return 0;
}

static void send_resize(PlctlClient *c, const char *exec_id) {
        unsigned short rows, cols;
        char path[256];
        if (!terminal_size(&rows, &cols))
                return;
        snprintf(path, sizeof path, "/exec/%s/resize?rows=%u&cols=%u", exec_id, rows, cols);
        _cleanup_error_ Error *e = NULL;
        (void) plctl_call(c, "POST", path, NULL, NULL, &e); /* a late resize of an ended process is harmless */
}

/* Copies until the daemon closes the connection. */
static int exec_pump(PlctlStream *st, const ExecArgs *a, PlctlClient *c, const char *exec_id, Demux *d,
                     Error **err) {
        bool in_open = a->interactive;
        char buf[64 * 1024];
        for (;;) {
                struct pollfd pfd[3] = {{.fd = plctl_stream_fd(st), .events = POLLIN},
                                        {.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN},
                                        {.fd = winch_pipe[0], .events = POLLIN}};
                if (plctl_stream_pending(st))
                        pfd[0].revents = POLLIN; /* decrypted bytes wait: no poll */
                else if (poll(pfd, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return error_set_errno(err, errno, "poll");
                }
                if (pfd[2].revents & POLLIN) {
                        while (read(winch_pipe[0], buf, sizeof buf) > 0)
                                ;
                        send_resize(c, exec_id);
                }
                if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
                        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                                continue;
                        if (n <= 0 || plctl_stream_write(st, buf, (size_t) n) < 0) {
                                plctl_stream_shutdown_write(st); /* the process's stdin reaches EOF */
                                in_open = false;
                        }
                }
                if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t n = plctl_stream_read(st, buf, sizeof buf);
                        if (n == -EAGAIN || n == -EINTR)
                                continue;
                        if (n < 0)
                                return error_set_errno(err, (int) -n, "read the exec stream");
                        if (n == 0)
                                return 0;
                        int r = a->tty ? write_all(STDOUT_FILENO, buf, (size_t) n) : demux_feed(d, buf, (size_t) n, err);
                        if (r < 0 && a->tty)
                                return error_set_errno(err, -r, "write the process's output");
                        if (r < 0)
                                return r;
                }
        }
}

/* A terminal's process has no exit frame: GET /exec/{id} (the daemon
 * closes the stream as the process ends; its record may lag a moment). */
static int exec_exit_code(PlctlClient *c, const char *exec_id, int *ret, Error **err) {
        char path[256];
        snprintf(path, sizeof path, "/exec/%s", exec_id);
        for (int i = 0; i < 100; i++) {
                _cleanup_json_ json_t *j = NULL;
                int r = plctl_call(c, "GET", path, NULL, &j, err);
                if (r < 0)
                        return r;
                if (!json_is_true(json_object_get(j, "running"))) {
                        *ret = (int) json_integer_value(json_object_get(j, "exit_code"));
                        return 0;
                }
                usleep(100 * 1000);
        }
        return error_set(err, ETIMEDOUT, "exec %s: the stream ended but the process still runs", exec_id);
}

/* --- the verb --- */

static int exec_parse(Plctl *p, int argc, char *argv[], ExecArgs *a) {
        static const struct option options[] = {
                {"interactive", no_argument, NULL, 'i'},  {"tty", no_argument, NULL, 't'},
                {"env", required_argument, NULL, 'e'},    {"workdir", required_argument, NULL, 'w'},
                {"user", required_argument, NULL, 'u'},   PLCTL_COMMON_OPTIONS,
                {},
        };
        int opt, r;
        while ((opt = getopt_long(argc, argv, "+ite:w:u:h", options, NULL)) >= 0)
                switch (opt) {
                case 'i': a->interactive = true; break;
                case 't': a->tty = true; break;
                case 'w': a->workdir = optarg; break;
                case 'u': a->user = optarg; break;
                case 'e':
                        if (a->n_env >= EXEC_ENV_MAX || !strchr(optarg, '=') || optarg[0] == '=')
                                return plctl_usage("exec: bad or too many -e (want K=V): %s", optarg);
                        a->env[a->n_env++] = optarg;
                        break;
                default:
                        if ((r = plctl_common_option(p, opt, "exec", argv)) >= 0)
                                return r;
                }
        if (argc - optind < 2)
                return plctl_usage("exec: name a container and a command");
        a->ref = argv[optind];
        a->cmd = argv + optind + 1;
        a->n_cmd = argc - optind - 1;
        return -1;
}

/* --json: exec-sync, its answer printed; exits with the process's code. */
static int exec_sync(Plctl *p, PlctlClient *c, const ExecArgs *a) {
        _cleanup_error_ Error *e = NULL;
        _cleanup_json_ json_t *body = NULL, *res = NULL;
        _cleanup_free_ char *path = plctl_path("/containers/%s/exec-sync", a->ref);
        if (!path || exec_body(a, &body, &e) < 0)
                return error_oom(&e), plctl_fail(e);
        json_object_del(body, "tty");
        json_object_del(body, "stdin");
        json_object_del(body, "rows");
        json_object_del(body, "cols");
        if (plctl_call(c, "POST", path, body, &res, &e) < 0)
                return plctl_fail(e);
        plctl_print_json(res);
        return (int) json_integer_value(json_object_get(res, "exit_code"));
}

int plctl_verb_exec(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        ExecArgs a = {0};
        int r = exec_parse(p, argc, argv, &a);
        if (r >= 0)
                return r;
        _cleanup_error_ Error *e = NULL;
        PlctlClient *c;
        if (plctl_connect(p, &c, &e) < 0)
                return plctl_fail(e);
        if (p->json)
                return exec_sync(p, c, &a);

        char exec_id[128];
        _cleanup_plctl_stream_ PlctlStream *st = NULL;
        if (exec_open(c, &a, &st, exec_id, &e) < 0)
                return plctl_fail(e);
        if (a.tty && pipe2(winch_pipe, O_CLOEXEC | O_NONBLOCK) == 0)
                signal(SIGWINCH, on_winch);
        if (a.tty && a.interactive)
                terminal_raw();
        Demux d = {.exit_code = -1};
        r = exec_pump(st, &a, c, exec_id, &d, &e);
        terminal_restore();
        if (r < 0)
                return plctl_fail(e);
        int code = d.exit_code;
        if (code < 0 && exec_exit_code(c, exec_id, &code, &e) < 0)
                return plctl_fail(e);
        return code;
}
