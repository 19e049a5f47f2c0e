/* session.c: one host connection as the agent sees it.
 *
 * Reads frames leniently (a bad frame costs its own channel, not the session),
 * performs the sync + HELLO handshake, accounts credit on every data channel,
 * and dispatches requests to handlers named after the protocol messages. All
 * output is queued in one outbound buffer that agent.c flushes when the socket
 * is writable; process output is only read while that queue is short, and a
 * host that stops reading altogether is dropped once it passes AGENT_OUTQ_MAX. */
#include "guest-agent/agent.h"
#include "guest-agent/copy.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/proto/wire.h"

#define MAX_PATH_LEN 4096u
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct Session {
        Agent *agent;
        int fd;
        TransportKind kind;
        FrameReader *reader;
        bool hello_done;
        uint64_t hello_deadline; /* see session_hello_deadline() */
        bool broken;
        uint8_t *out;
        size_t out_len, out_cap, out_off;
        uint32_t peer_window;
        uint32_t local_window;
};

int session_new(Session **ret, Agent *a, int fd, TransportKind kind) {
        Session *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        int r = frame_reader_new(&s->reader, false);
        if (r < 0) {
                free(s);
                return r;
        }
        s->agent = a;
        s->fd = fd;
        s->kind = kind;
        s->peer_window = PL_DEFAULT_WINDOW;
        s->local_window = PL_DEFAULT_WINDOW;
        s->hello_deadline = kind == TRANSPORT_SERIAL ? USEC_INFINITY
                                                     : now_usec() + AGENT_HELLO_TIMEOUT_MS * USEC_PER_MSEC;
        *ret = s;
        return 0;
}

Session *session_free(Session *s) {
        if (!s)
                return NULL;
        frame_reader_free(s->reader);
        if (s->kind != TRANSPORT_SERIAL)
                safe_close(s->fd);
        free(s->out);
        free(s);
        return NULL;
}

int session_fd(Session *s) {
        return s->fd;
}

TransportKind session_kind(Session *s) {
        return s->kind;
}

bool session_wants_write(Session *s) {
        return s->out_len > s->out_off;
}

bool session_can_take_output(Session *s) {
        return s && s->hello_done && s->out_len - s->out_off < AGENT_OUTQ_HIGH;
}

uint64_t session_hello_deadline(Session *s) {
        return s->hello_done ? USEC_INFINITY : s->hello_deadline;
}

uint32_t session_peer_window(Session *s) {
        return s ? s->peer_window : PL_DEFAULT_WINDOW;
}

uint32_t session_local_window(Session *s) {
        return s ? s->local_window : PL_DEFAULT_WINDOW;
}

/* ---- outbound queue ------------------------------------------------------ */

/* Appends a then b (either may be empty) to the outbound queue as one unit. */
static int session_queue(Session *s, const void *a, size_t alen, const void *b, size_t blen) {
        size_t len = alen + blen;
        if (s->out_off > 0 && s->out_off == s->out_len)
                s->out_off = s->out_len = 0;
        if (s->out_len - s->out_off + len > AGENT_OUTQ_MAX) {
                log_warning("host is not reading: %zu bytes queued, dropping the session", s->out_len - s->out_off);
                s->broken = true;
                return -ENOBUFS;
        }
        if (s->out_len + len > s->out_cap) {
                if (s->out_off > 0) {
                        memmove(s->out, s->out + s->out_off, s->out_len - s->out_off);
                        s->out_len -= s->out_off;
                        s->out_off = 0;
                }
                size_t cap = MAX(MAX(s->out_cap * 2, s->out_len + len), (size_t) 64 * 1024);
                uint8_t *n = realloc(s->out, cap);
                if (!n)
                        return -ENOMEM;
                s->out = n;
                s->out_cap = cap;
        }
        if (alen)
                memcpy(s->out + s->out_len, a, alen);
        if (blen)
                memcpy(s->out + s->out_len + alen, b, blen);
        s->out_len += len;
        return 0;
}

static int session_queue_frame(Session *s, FrameType type, uint32_t channel, uint8_t flags,
                               const ProtobufCMessage *msg, const void *data, size_t len) {
        if (!s || !s->hello_done)
                return -ENOTCONN;
        if (!msg) { /* raw payload: copied once, straight into the queue */
                if (len > PL_FRAME_MAX_PAYLOAD)
                        return -EMSGSIZE;
                uint8_t hdr[PL_FRAME_HEADER_SIZE];
                frame_header_encode(&(FrameHeader){.length = (uint32_t) len, .channel = channel, .type = (uint8_t) type,
                                                   .flags = flags},
                                    hdr);
                return session_queue(s, hdr, sizeof hdr, data, len);
        }
        _cleanup_free_ uint8_t *frame = NULL;
        size_t frame_len;
        int r = wire_frame_build(&frame, &frame_len, type, channel, flags, msg, NULL, 0);
        if (r < 0)
                return r;
        return session_queue(s, frame, frame_len, NULL, 0);
}

int session_send_data(Session *s, uint32_t channel, const void *buf, size_t len, bool eof) {
        return session_queue_frame(s, FRAME_DATA, channel, eof ? FRAME_FLAG_EOF : 0, NULL, buf, len);
}

int session_send_credit(Session *s, uint32_t channel, uint32_t bytes) {
        uint8_t p[4];
        wire_credit_encode(bytes, p);
        return session_queue_frame(s, FRAME_CREDIT, channel, 0, NULL, p, sizeof p);
}

int session_send_response(Session *s, uint32_t request_id, Plagent__Response *resp) {
        int r = session_queue_frame(s, FRAME_RESPONSE, request_id, 0, &resp->base, NULL, 0);
        if (r == -EMSGSIZE)
                return session_send_error(s, request_id, EMSGSIZE, "response does not fit in one frame");
        return r;
}

static int session_send_errorv(Session *s, FrameType type, uint32_t id, int code, const char *fmt, va_list ap) {
        char msg[1024];
        vsnprintf(msg, sizeof msg, fmt, ap);
        if (type == FRAME_RESET) {
                Plagent__ChannelReset cr = PLAGENT__CHANNEL_RESET__INIT;
                cr.code = code;
                cr.message = msg;
                return session_queue_frame(s, FRAME_RESET, id, 0, &cr.base, NULL, 0);
        }
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        resp.error_code = code > 0 ? code : EIO;
        resp.error_message = msg;
        return session_queue_frame(s, FRAME_RESPONSE, id, 0, &resp.base, NULL, 0);
}

int session_send_error(Session *s, uint32_t request_id, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = session_send_errorv(s, FRAME_RESPONSE, request_id, code, fmt, ap);
        va_end(ap);
        return r;
}

int session_send_reset(Session *s, uint32_t channel, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = session_send_errorv(s, FRAME_RESET, channel, code, fmt, ap);
        va_end(ap);
        return r;
}

int session_on_writable(Session *s) {
        while (s->out_off < s->out_len) {
                ssize_t n = write(s->fd, s->out + s->out_off, s->out_len - s->out_off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n < 0)
                        return -ECONNRESET;
                s->out_off += (size_t) n;
        }
        s->out_off = s->out_len = 0;
        return 0;
}

/* ---- handshake ----------------------------------------------------------- */

static void session_on_hello(Session *s, const FrameEvent *ev) {
        _cleanup_error_ Error *e = NULL;
        Plagent__Hello *h = (Plagent__Hello *) wire_unpack(&plagent__hello__descriptor, ev->payload,
                                                           ev->header.length, &e);
        if (!h) {
                log_warning("ignoring a malformed HELLO: %s", error_text(e));
                return;
        }
        bool compatible = h->version_min <= PL_PROTOCOL_VERSION && h->version_max >= PL_PROTOCOL_VERSION;
        if (h->window)
                s->peer_window = MIN(MAX(h->window, 4096u), PL_MAX_WINDOW);
        uint64_t nonce = h->nonce;
        wire_message_free(&h->base);

        Plagent__Hello reply = PLAGENT__HELLO__INIT;
        reply.version_min = reply.version_max = compatible ? PL_PROTOCOL_VERSION : 0;
        reply.nonce = nonce;
        reply.software = (char *) "pl-agent " AGENT_VERSION;
        reply.instance = s->agent->instance;
        reply.window = s->local_window;
        reply.max_frame = PL_FRAME_MAX_PAYLOAD;
        s->hello_done = true; /* lets session_queue_frame accept the reply */
        if (session_queue(s, pl_sync_marker, PL_SYNC_SIZE, NULL, 0) < 0 ||
            session_queue_frame(s, FRAME_HELLO, 0, 0, &reply.base, NULL, 0) < 0)
                s->broken = true;
        if (!compatible) {
                log_warning("host speaks protocol %u..%u, we speak %u", h->version_min, h->version_max,
                            PL_PROTOCOL_VERSION);
                s->hello_done = false;
        } else
                log_debug("session up (%s), host window %u", transport_kind_to_string(s->kind), s->peer_window);
}

/* ---- data channels ------------------------------------------------------- */

static void session_on_data(Session *s, const FrameEvent *ev) {
        Process *p;
        StreamIndex idx;
        uint32_t ch = ev->header.channel;
        Stream *st = process_find_stream(s->agent, s, ch, &p, &idx);
        if (!st || idx != STREAM_STDIN || !st->open) {
                (void) session_send_reset(s, ch, EBADR, "DATA on channel %u, which is not an open input channel", ch);
                return;
        }
        /* Outstanding = received and not yet credited back: still buffered, or
         * written but owed. The host may never have more than a window of it. */
        uint64_t outstanding = (uint64_t) st->buf_len + st->credit_owed;
        if (outstanding + ev->header.length > s->local_window) {
                (void) session_send_reset(s, ch, EPROTO, "DATA on channel %u exceeds its credit (%llu + %u > %u)", ch,
                                          (unsigned long long) outstanding, ev->header.length, s->local_window);
                st->channel = 0;
                st->session = NULL;
                process_on_stdin_data(s->agent, p, NULL, 0, true);
                return;
        }
        process_on_stdin_data(s->agent, p, ev->payload, ev->header.length,
                              (ev->header.flags & FRAME_FLAG_EOF) != 0);
}

static void session_on_credit(Session *s, const FrameEvent *ev) {
        Process *p;
        StreamIndex idx;
        uint32_t ch = ev->header.channel, bytes;
        Stream *st = process_find_stream(s->agent, s, ch, &p, &idx);
        if (!st || idx == STREAM_STDIN) {
                (void) session_send_reset(s, ch, EBADR, "CREDIT on channel %u, which is not an output channel", ch);
                return;
        }
        if (wire_credit_decode(ev->payload, ev->header.length, &bytes) < 0) {
                (void) session_send_reset(s, ch, EPROTO, "CREDIT payload of %u bytes, expected 4", ev->header.length);
                return;
        }
        st->send_credit = MIN(st->send_credit + bytes, (uint64_t) PL_MAX_WINDOW);
}

static void session_on_reset(Session *s, const FrameEvent *ev) {
        Process *p;
        StreamIndex idx;
        Stream *st = process_find_stream(s->agent, s, ev->header.channel, &p, &idx);
        if (!st)
                return; /* never answer a RESET with a RESET */
        if (idx == STREAM_STDIN) {
                st->channel = 0;
                st->session = NULL;
                process_on_stdin_data(s->agent, p, NULL, 0, true);
        } else
                process_unbind_output(s->agent, p, idx); /* kept for a later attach */
}

/* ---- requests ------------------------------------------------------------ */

typedef int (*RequestHandler)(Session *s, uint32_t id, Plagent__Request *req, Error **err);

static int send_empty(Session *s, uint32_t id) {
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        return session_send_response(s, id, &resp);
}

static int handle_ping_request(Session *s, uint32_t id, Plagent__Request *req, Error **err) {
        Plagent__PingResponse pr = PLAGENT__PING_RESPONSE__INIT;
        pr.payload = req->ping->payload;
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        resp.result_case = PLAGENT__RESPONSE__RESULT_PING;
        resp.ping = &pr;
        return session_send_response(s, id, &resp);
}

static int handle_guest_info_request(Session *s, uint32_t id, Plagent__Request *req, Error **err) {
        struct utsname u;
        struct sysinfo si;
        char host[256] = "";
        (void) uname(&u);
        (void) sysinfo(&si);
        (void) gethostname(host, sizeof host - 1);
        Plagent__GuestInfoResponse gi = PLAGENT__GUEST_INFO_RESPONSE__INIT;
        gi.agent_version = (char *) AGENT_VERSION;
        gi.kernel_release = u.release;
        gi.hostname = host;
        gi.machine = u.machine;
        gi.uptime_ms = (uint64_t) si.uptime * 1000u;
        gi.mem_total_kib = (uint64_t) si.totalram * si.mem_unit / 1024u;
        gi.mem_available_kib = (uint64_t) (si.freeram + si.bufferram) * si.mem_unit / 1024u;
        gi.cpus = (uint32_t) sysconf(_SC_NPROCESSORS_ONLN);
        gi.processes = process_count_running(s->agent);
        gi.root = (char *) (s->agent->config.root ? s->agent->config.root : "/");
        gi.boot_error = (char *) (s->agent->config.boot_error ? s->agent->config.boot_error : "");
        gi.root_grow_error = (char *) (s->agent->config.root_grow_error ? s->agent->config.root_grow_error : "");
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        resp.result_case = PLAGENT__RESPONSE__RESULT_GUEST_INFO;
        resp.guest_info = &gi;
        return session_send_response(s, id, &resp);
}

/* A host-chosen channel must be new: non-zero and not bound to any stream. */
static int check_new_channel(Session *s, uint32_t ch, const char *what, Error **err) {
        if (ch && process_channel_in_use(s->agent, s, ch))
                return error_set(err, EADDRINUSE, "%s channel %u is already in use", what, ch);
        return 0;
}

static bool env_has(char **env, size_t n, const char *prefix) {
        for (size_t i = 0; i < n; i++)
                if (strncmp(env[i], prefix, strlen(prefix)) == 0)
                        return true;
        return false;
}

/* Builds NULL-terminated argv/env arrays pointing into req (plus defaults). */
static int exec_build_spec(Plagent__ExecRequest *x, ExecSpec *spec, Error **err) {
        if (x->n_argv == 0 || !x->argv[0][0])
                return error_set(err, EINVAL, "exec: empty command");
        if (x->n_argv > AGENT_MAX_ARGS || x->n_env > AGENT_MAX_ARGS)
                return error_set(err, E2BIG, "exec: more than %u arguments or environment entries", AGENT_MAX_ARGS);
        if (x->tty && x->stderr_channel)
                return error_set(err, EINVAL, "exec: a tty has one output stream; stderr_channel must be 0");
        if (x->rows > 65535 || x->cols > 65535)
                return error_set(err, EINVAL, "exec: terminal size %ux%u out of range", x->rows, x->cols);
        uint32_t ch[3] = {x->stdin_channel, x->stdout_channel, x->stderr_channel};
        for (int i = 0; i < 3; i++)
                for (int j = i + 1; j < 3; j++)
                        if (ch[i] && ch[i] == ch[j])
                                return error_set(err, EINVAL, "exec: channel %u used twice", ch[i]);

        char **argv = calloc(x->n_argv + 1, sizeof(char *));
        char **env = calloc(x->n_env + 3, sizeof(char *));
        if (!argv || !env) {
                free(argv);
                free(env);
                return -ENOMEM;
        }
        memcpy(argv, x->argv, x->n_argv * sizeof(char *));
        if (x->n_env > 0) /* protobuf-c leaves an empty list NULL */
                memcpy(env, x->env, x->n_env * sizeof(char *));
        size_t n = x->n_env;
        if (!env_has(env, n, "PATH="))
                env[n++] = (char *) DEFAULT_PATH;
        if (x->tty && !env_has(env, n, "TERM="))
                env[n++] = (char *) "TERM=xterm";
        *spec = (ExecSpec){.argv = argv, .env = env, .workdir = x->workdir, .user = x->user, .tty = x->tty, .main = x->main,
                           .rows = x->rows, .cols = x->cols, .stdin_channel = x->stdin_channel,
                           .stdout_channel = x->stdout_channel, .stderr_channel = x->stderr_channel};
        return 0;
}

static int handle_exec_request(Session *s, uint32_t id, Plagent__Request *req, Error **err) {
        Plagent__ExecRequest *x = req->exec;
        if (s->agent->shutting_down)
                return error_set(err, ESHUTDOWN, "exec: the agent is shutting down");
        int r;
        if ((r = check_new_channel(s, x->stdin_channel, "stdin", err)) < 0 ||
            (r = check_new_channel(s, x->stdout_channel, "stdout", err)) < 0 ||
            (r = check_new_channel(s, x->stderr_channel, "stderr", err)) < 0)
                return r;
        ExecSpec spec;
        if ((r = exec_build_spec(x, &spec, err)) < 0)
                return r;
        Process *p;
        r = process_exec(s->agent, s, &spec, &p, err);
        free(spec.argv);
        free(spec.env);
        if (r < 0)
                return r;
        Plagent__ExecResponse er = PLAGENT__EXEC_RESPONSE__INIT;
        er.process_id = p->id;
        er.pid = p->pid;
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        resp.result_case = PLAGENT__RESPONSE__RESULT_EXEC;
        resp.exec = &er;
        return session_send_response(s, id, &resp);
}

static int find_process(Session *s, uint32_t pid, Process **ret, Error **err) {
        *ret = process_find(s->agent, pid);
        return *ret ? 0 : error_set(err, ESRCH, "no process %u", pid);
}

static int handle_signal_request(Session *s, uint32_t id, Plagent__Request *req, Error **err) {
        Plagent__SignalRequest *x = req->signal;
        if (x->signal <= 0 || x->signal >= NSIG)
                return error_set(err, EINVAL, "signal %d out of range", x->signal);
        int r;
        if (x->all)
                r = process_signal_all(s->agent, x->signal);
        else {
                Process *p;
                if ((r = find_process(s, x->process_id, &p, err)) < 0)
                        return r;
                r = process_signal(s->agent, p, x->signal);
                if (r == -ESRCH)
                        return error_set(err, ESRCH, "process %u has already exited", x->process_id);
        }
        if (r < 0)
                return error_set_errno(err, -r, "signal %d", x->signal);
        return send_empty(s, id);
}

static int handle_wait_request(Session *s, uint32_t id, Plagent__Request *req, Error **err) {
        Process *p;
        int r = find_process(s, req->wait->process_id, &p, err);
        if (r < 0)
                return r;
        Waiter *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->session = s;
        w->request_id = id;
        w->next = p->waiters;
        p->waiters = w;
        process_complete(s->agent); /* answers at once if it is already done */
        return 0;
}

static int handle_attach_request(Session *s, uint32_t id, Plagent__Request *req, Error **err) {
        Plagent__AttachRequest *x = req->attach;
        Process *p;
        int r = find_process(s, x->process_id, &p, err);
        if (r < 0)
                return r;
        if (!x->stdout_channel && !x->stderr_channel)
                return error_set(err, EINVAL, "attach: no channel given");
        if (x->stdout_channel == x->stderr_channel)
                return error_set(err, EINVAL, "attach: channel %u used twice", x->stdout_channel);
        if ((r = check_new_channel(s, x->stdout_channel, "stdout", err)) < 0 ||
            (r = check_new_channel(s, x->stderr_channel, "stderr", err)) < 0)
                return r;
        uint64_t dropped[2];
        if ((r = process_attach(s->agent, s, p, x->stdout_channel, x->stderr_channel, dropped, err)) < 0)
                return r;
        Plagent__ProcessInfo info;
        process_fill_info(p, &info);
        Plagent__AttachResponse ar = PLAGENT__ATTACH_RESPONSE__INIT;
        ar.process = &info;
        ar.stdout_dropped = dropped[0];
        ar.stderr_dropped = dropped[1];
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        resp.result_case = PLAGENT__RESPONSE__RESULT_ATTACH;
        resp.attach = &ar;
        /* Queued before any DATA: the buffered bytes go out after this round. */
        return session_send_response(s, id, &resp);
}

static int handle_resize_request(Session *s, uint32_t id, Plagent__Request *req, Error **err) {
        Plagent__ResizeRequest *x = req->resize;
        Process *p;
        int r = find_process(s, x->process_id, &p, err);
        if (r < 0)
                return r;
        int fd = p->streams[STREAM_STDOUT].fd;
        if (!p->tty || fd < 0 || p->exited)
                return error_set(err, ENOTTY, "process %u has no open terminal", x->process_id);
        if (x->rows == 0 || x->cols == 0 || x->rows > 65535 || x->cols > 65535)
                return error_set(err, EINVAL, "terminal size %ux%u out of range", x->rows, x->cols);
        struct winsize ws = {.ws_row = (unsigned short) x->rows, .ws_col = (unsigned short) x->cols};
        if (ioctl(fd, TIOCSWINSZ, &ws) < 0)
                return error_set_errno(err, errno, "resize terminal of process %u", x->process_id);
        return send_empty(s, id);
}

static int handle_list_processes_request(Session *s, uint32_t id, Plagent__Request *req, Error **err) {
        size_t n = 0;
        for (Process *p = s->agent->processes; p; p = p->next)
                n += p->kind == PROCESS_EXEC;
        _cleanup_free_ Plagent__ProcessInfo *infos = calloc(n + 1, sizeof(*infos));
        _cleanup_free_ Plagent__ProcessInfo **ptrs = calloc(n + 1, sizeof(*ptrs));
        if (!infos || !ptrs)
                return -ENOMEM;
        size_t i = 0;
        for (Process *p = s->agent->processes; p; p = p->next)
                if (p->kind == PROCESS_EXEC) {
                        process_fill_info(p, &infos[i]);
                        ptrs[i] = &infos[i];
                        i++;
                }
        Plagent__ListProcessesResponse lr = PLAGENT__LIST_PROCESSES_RESPONSE__INIT;
        lr.n_processes = i;
        lr.processes = ptrs;
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        resp.result_case = PLAGENT__RESPONSE__RESULT_LIST_PROCESSES;
        resp.list_processes = &lr;
        return session_send_response(s, id, &resp);
}

static int check_path(const char *path, const char *what, Error **err) {
        if (!path || !*path)
                return error_set(err, EINVAL, "%s: empty path", what);
        if (strlen(path) > MAX_PATH_LEN)
                return error_set(err, ENAMETOOLONG, "%s: path longer than %u bytes", what, MAX_PATH_LEN);
        return 0;
}

static int handle_copy(Session *s, uint32_t id, const char *path, uint32_t channel, bool in, Error **err) {
        const char *what = in ? "copy-in" : "copy-out";
        int r = check_path(path, what, err);
        if (r < 0)
                return r;
        if (channel == 0)
                return error_set(err, EINVAL, "%s: no data channel", what);
        if ((r = check_new_channel(s, channel, what, err)) < 0)
                return r;
        return in ? process_copy_in(s->agent, s, path, channel, id, err)
                  : process_copy_out(s->agent, s, path, channel, id, err);
}

static int handle_copy_in_request(Session *s, uint32_t id, Plagent__Request *req, Error **err) {
        return handle_copy(s, id, req->copy_in->path, req->copy_in->channel, true, err);
}

static int handle_copy_out_request(Session *s, uint32_t id, Plagent__Request *req, Error **err) {
        return handle_copy(s, id, req->copy_out->path, req->copy_out->channel, false, err);
}

static int handle_stat_request(Session *s, uint32_t id, Plagent__Request *req, Error **err) {
        const char *path = req->stat->path;
        int r = check_path(path, "stat", err);
        if (r < 0)
                return r;
        struct stat st;
        _cleanup_free_ char *target = NULL;
        if ((r = fs_stat(s->agent->root_fd, path, &st, &target, err)) < 0)
                return r;
        const char *slash = strrchr(path, '/');
        const char *name = slash && slash[1] ? slash + 1 : (slash ? "/" : path);
        Plagent__StatResponse sr = PLAGENT__STAT_RESPONSE__INIT;
        sr.name = (char *) name;
        sr.mode = st.st_mode;
        sr.size = (uint64_t) st.st_size;
        sr.mtime_ns = (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        sr.link_target = target ? target : (char *) "";
        sr.uid = st.st_uid;
        sr.gid = st.st_gid;
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        resp.result_case = PLAGENT__RESPONSE__RESULT_STAT;
        resp.stat = &sr;
        return session_send_response(s, id, &resp);
}

static int handle_remove_request(Session *s, uint32_t id, Plagent__Request *req, Error **err) {
        int r = check_path(req->remove->path, "remove", err);
        if (r < 0 || (r = fs_remove(s->agent->root_fd, req->remove->path, req->remove->recursive, err)) < 0)
                return r;
        return send_empty(s, id);
}

static int handle_shutdown_request(Session *s, uint32_t id, Plagent__Request *req, Error **err) {
        int r = send_empty(s, id);
        agent_begin_shutdown(s->agent, req->shutdown->grace_ms);
        return r;
}

static int handle_setup_request(Session *s, uint32_t id, Plagent__Request *req, Error **err) {
        int r = agent_setup(s->agent, req->setup, err);
        return r < 0 ? r : send_empty(s, id);
}

static int handle_etc_request(Session *s, uint32_t id, Plagent__Request *req, Error **err) {
        int r = agent_write_etc(s->agent, req->etc, err);
        return r < 0 ? r : send_empty(s, id);
}

static int handle_activate_request(Session *s, uint32_t id, Plagent__Request *req, Error **err) {
        int r = agent_activate(s->agent, req->activate, err);
        return r < 0 ? r : send_empty(s, id);
}

static const RequestHandler request_handlers[] = {
        [PLAGENT__REQUEST__OP_PING] = handle_ping_request,
        [PLAGENT__REQUEST__OP_GUEST_INFO] = handle_guest_info_request,
        [PLAGENT__REQUEST__OP_EXEC] = handle_exec_request,
        [PLAGENT__REQUEST__OP_SIGNAL] = handle_signal_request,
        [PLAGENT__REQUEST__OP_WAIT] = handle_wait_request,
        [PLAGENT__REQUEST__OP_RESIZE] = handle_resize_request,
        [PLAGENT__REQUEST__OP_LIST_PROCESSES] = handle_list_processes_request,
        [PLAGENT__REQUEST__OP_COPY_IN] = handle_copy_in_request,
        [PLAGENT__REQUEST__OP_COPY_OUT] = handle_copy_out_request,
        [PLAGENT__REQUEST__OP_STAT] = handle_stat_request,
        [PLAGENT__REQUEST__OP_REMOVE] = handle_remove_request,
        [PLAGENT__REQUEST__OP_SHUTDOWN] = handle_shutdown_request,
        [PLAGENT__REQUEST__OP_ATTACH] = handle_attach_request,
        [PLAGENT__REQUEST__OP_SETUP] = handle_setup_request,
        [PLAGENT__REQUEST__OP_ETC] = handle_etc_request,
        [PLAGENT__REQUEST__OP_ACTIVATE] = handle_activate_request,
};

static void session_on_request(Session *s, const FrameEvent *ev) {
        uint32_t id = ev->header.channel;
        if (id == 0) { /* reserved: an answer to it would name no request */
                log_warning("dropping a request with the reserved id 0");
                return;
        }
        _cleanup_error_ Error *e = NULL;
        Plagent__Request *req = (Plagent__Request *) wire_unpack(&plagent__request__descriptor, ev->payload,
                                                                 ev->header.length, &e);
        if (!req) {
                (void) session_send_error(s, id, EBADMSG, "request %u: %s", id, error_text(e));
                return;
        }
        unsigned op = req->op_case;
        RequestHandler h = op < ELEMENTSOF(request_handlers) ? request_handlers[op] : NULL;
        int r = h ? h(s, id, req, &e) : error_set(&e, EOPNOTSUPP, "request %u: unknown operation %u", id, op);
        if (r < 0) {
                if (!e)
                        error_set_errno(&e, -r, "request %u", id);
                log_debug("request %u failed: %s", id, error_text(e));
                (void) session_send_error(s, id, -r, "%s", error_text(e));
        }
        wire_message_free(&req->base);
}

/* ---- input --------------------------------------------------------------- */

static void session_on_frame(Session *s, const FrameEvent *ev) {
        const FrameHeader *h = &ev->header;
        if (!s->hello_done) {
                if (h->type == FRAME_HELLO)
                        session_on_hello(s, ev);
                return; /* anything else before the handshake is stale */
        }
        switch (h->type) {
        case FRAME_REQUEST:
                session_on_request(s, ev);
                break;
        case FRAME_DATA:
                session_on_data(s, ev);
                break;
        case FRAME_CREDIT:
                session_on_credit(s, ev);
                break;
        case FRAME_RESET:
                session_on_reset(s, ev);
                break;
        case FRAME_HELLO:
        case FRAME_RESPONSE:
                (void) session_send_reset(s, h->channel, EPROTO, "unexpected %s frame from the host",
                                          frame_type_to_string(h->type));
                break;
        default:
                (void) session_send_reset(s, h->channel, EPROTONOSUPPORT, "unknown frame type %u on channel %u",
                                          h->type, h->channel);
        }
}

static void session_on_event(Session *s, const FrameEvent *ev) {
        switch (ev->type) {
        case FRAME_EVENT_SYNC:
                if (s->hello_done) {
                        log_info("host resynchronised: starting a new session");
                        s->hello_done = false;
                        if (s->kind != TRANSPORT_SERIAL)
                                s->hello_deadline = now_usec() + AGENT_HELLO_TIMEOUT_MS * USEC_PER_MSEC;
                        process_detach_session(s->agent, s);
                }
                break;
        case FRAME_EVENT_FRAME:
                session_on_frame(s, ev);
                break;
        case FRAME_EVENT_SKIPPED:
                if (ev->header.type == FRAME_REQUEST && ev->header.channel == 0)
                        log_warning("dropping an oversize request with the reserved id 0");
                else if (ev->header.type == FRAME_REQUEST)
                        (void) session_send_error(s, ev->header.channel, EMSGSIZE,
                                                  "request of %u bytes exceeds the %u byte frame limit",
                                                  ev->header.length, PL_FRAME_MAX_PAYLOAD);
                else
                        (void) session_send_reset(s, ev->header.channel, EMSGSIZE,
                                                  "frame of %u bytes exceeds the %u byte frame limit",
                                                  ev->header.length, PL_FRAME_MAX_PAYLOAD);
                break;
        case FRAME_EVENT_DESYNC:
                log_warning("malformed frame header from the host: waiting for a sync marker");
                (void) session_send_reset(s, 0, EPROTO, "malformed frame header: framing lost, send a sync marker");
                break;
        }
}

int session_on_readable(Session *s) {
        ssize_t n = frame_reader_read_fd(s->reader, s->fd);
        if (n == -EAGAIN || n == -EINTR)
                return 0;
        if (n <= 0)
                return -ECONNRESET;
        FrameEvent ev;
        while (!s->broken && frame_reader_next(s->reader, &ev, NULL) > 0)
                session_on_event(s, &ev);
        return s->broken ? -ECONNRESET : 0;
}
