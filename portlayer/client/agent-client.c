/* agent-client.c: the connection half of the agent client (see agent-client.h
 * for the contract and agent-client-internal.h for the shared state).
 *
 * A connection starts with the handshake in the caller's thread: sync marker
 * + HELLO with a fresh nonce, then everything read is discarded until a sync
 * marker followed by a HELLO echoing that nonce (bounded in bytes and time).
 * Then a private reader thread owns the read side: it blocks in poll() on the
 * socket and on an eventfd used to stop it, and demultiplexes frames into
 * pending requests (RESPONSE, RESET) and data channels (DATA, CREDIT, RESET).
 * The guest is untrusted: after the handshake the reader is strict, and any
 * violation breaks the connection, waking every waiter with the reason.
 *
 * Writers share the non-blocking fd under write_lock and give each frame a
 * deadline; a frame cut in the middle corrupts the stream, so that too breaks
 * the connection. Requests carry ids from one counter shared with data
 * channels, so a RESET frame (which may name either) is never ambiguous. */
#include "agent-client-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/vm_sockets.h>
#include <time.h>

#include "common/base/io-util.h"
#include "common/base/log.h"

#define AGENT_CLIENT_SOFTWARE "portlayer 0.1.0"
#define HANDSHAKE_DISCARD_MAX (16u * 1024u * 1024u)
#define HANDSHAKE_HELLO_MAX (16u * 1024u)    /* a real HELLO is ~100 bytes */
#define HANDSHAKE_SCAN_BUFFER (64u * 1024u) /* > sync + header + HELLO_MAX */
#define CONNECT_ATTEMPT_MS_MIN 1000
#define CONNECT_ATTEMPT_MS_MAX 4000
#define CONNECT_BACKOFF_MS_MIN 50
#define CONNECT_BACKOFF_MS_MAX 200

typedef struct ClientConfig {
        int handshake_timeout_ms; /* < 0: no deadline */
        int request_timeout_ms;   /* < 0: no deadline */
        uint32_t window;
} ClientConfig;

/* --- small helpers shared by the three files --- */

void agent_copy_string(char *dst, size_t size, const char *src, bool sanitize) {
        size_t i = 0;
        if (size == 0)
                return;
        for (; src && src[i] != '\0' && i < size - 1; i++) {
                unsigned char ch = (unsigned char) src[i];
                dst[i] = sanitize && (ch < 0x20 || ch == 0x7f) ? '?' : (char) ch;
        }
        dst[i] = '\0';
}

int agent_errno(int32_t code) {
        return code >= 1 && code <= 4095 ? code : EPROTO;
}

int agent_cond_init(pthread_cond_t *cond) {
        pthread_condattr_t attr;
        int r = pthread_condattr_init(&attr);
        if (r != 0)
                return -r;
        r = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        if (r == 0)
                r = pthread_cond_init(cond, &attr);
        pthread_condattr_destroy(&attr);
        return -r;
}

/* Returns -ETIMEDOUT only when called after the deadline, so that callers
 * always re-check their condition after the last wake-up. */
int agent_cond_wait(AgentClient *c, pthread_cond_t *cond, uint64_t deadline) {
        if (deadline == USEC_INFINITY) {
                pthread_cond_wait(cond, &c->lock);
                return 0;
        }
        if (now_usec() >= deadline)
                return -ETIMEDOUT;
        struct timespec ts = {
                .tv_sec = (time_t) (deadline / USEC_PER_SEC),
                .tv_nsec = (long) (deadline % USEC_PER_SEC) * 1000L,
        };
        pthread_cond_timedwait(cond, &c->lock, &ts);
        return 0;
}

const char *agent_frame_name(uint8_t type) {
        static const char *const names[_FRAME_TYPE_MAX] = {
                [FRAME_HELLO] = "HELLO", [FRAME_REQUEST] = "REQUEST", [FRAME_RESPONSE] = "RESPONSE",
                [FRAME_DATA] = "DATA",   [FRAME_CREDIT] = "CREDIT",   [FRAME_RESET] = "RESET",
        };
        return type > 0 && type < _FRAME_TYPE_MAX ? names[type] : "unknown";
}

/* Rings start zeroed; 0 is never a valid id. */
bool agent_id_in_ring(const uint32_t *ring, size_t n, uint32_t id) {
        if (id == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (ring[i] == id)
                        return true;
        return false;
}

/* --- broken state --- */

int client_fail_locked(AgentClient *c, Error **err) {
        return error_set(err, c->broken, "%s",
                         c->broken_message ? c->broken_message : "the connection to the agent is broken");
}

static int client_break_locked_v(AgentClient *c, int code, const char *fmt, va_list ap) {
        if (c->broken)
                return -c->broken;
        code = code < 0 ? -code : code;
        c->broken = code ? code : EIO;
        if (vasprintf(&c->broken_message, fmt, ap) < 0)
                c->broken_message = NULL;
        log_debug("agent connection broken: %s", c->broken_message ? c->broken_message : "?");

        for (Pending *p = c->pending; p; p = p->next)
                pthread_cond_broadcast(p->cond);
        channels_wake_all_locked(c);

        /* Stop the reader and let the agent see the end of the session. */
        uint64_t one = 1;
        if (write(c->wake_fd, &one, sizeof one) < 0)
                log_debug("waking the agent reader failed: %m");
        (void) shutdown(c->fd, SHUT_RDWR);
        return -c->broken;
}

int client_break_locked(AgentClient *c, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = client_break_locked_v(c, code, fmt, ap);
        va_end(ap);
        return r;
}

int client_break(AgentClient *c, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        pthread_mutex_lock(&c->lock);
        int r = client_break_locked_v(c, code, fmt, ap);
        pthread_mutex_unlock(&c->lock);
        va_end(ap);
        return r;
}

/* --- writing frames --- */

uint64_t client_write_deadline(AgentClient *c, uint64_t deadline) {
        if (deadline != USEC_INFINITY)
                return deadline;
        return deadline_after_ms(c->request_timeout_ms);
}

/* Writes buf to the non-blocking fd until deadline; *ret_written says how far
 * it got. Sockets use MSG_NOSIGNAL: a dead agent must not kill us by SIGPIPE. */
static int fd_write_deadline(AgentClient *c, const uint8_t *buf, size_t len, uint64_t deadline, size_t *ret_written) {
        size_t done = 0;
        int r = 0;
        while (done < len) {
                ssize_t n = c->fd_is_socket ? send(c->fd, buf + done, len - done, MSG_NOSIGNAL)
                                            : write(c->fd, buf + done, len - done);
                if (n > 0) {
                        done += (size_t) n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno != EAGAIN) {
                        r = negative_errno();
                        break;
                }
                int ms = deadline_poll_ms(deadline);
                if (ms == 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
                if (poll(&pfd, 1, ms) < 0 && errno != EINTR) {
                        r = negative_errno();
                        break;
                }
        }
        *ret_written = done;
        return r;
}

int client_send(AgentClient *c, FrameType type, uint32_t channel, uint8_t flags, const ProtobufCMessage *msg,
                const void *data, size_t len, uint64_t deadline, bool abortable, Error **err) {
        _cleanup_free_ uint8_t *frame = NULL;
        size_t frame_len = 0, written = 0;
        int r = wire_frame_build(&frame, &frame_len, type, channel, flags, msg, data, len);
        if (r < 0)
                return error_set(err, -r, "cannot build a %s frame for the agent: %s", agent_frame_name(type),
                                 strerror(-r));

        pthread_mutex_lock(&c->write_lock);
        pthread_mutex_lock(&c->lock);
        bool broken = c->broken != 0;
        pthread_mutex_unlock(&c->lock);
        if (!broken)
                r = fd_write_deadline(c, frame, frame_len, deadline, &written);
        pthread_mutex_unlock(&c->write_lock);

        if (!broken && r == 0)
                return 0;
        pthread_mutex_lock(&c->lock);
        if (!broken && r == -ETIMEDOUT && written == 0 && abortable)
                r = error_set(err, ETIMEDOUT, "the agent accepted no data in time (%s frame not sent)",
                              agent_frame_name(type));
        else {
                if (!broken && r == -ETIMEDOUT)
                        client_break_locked(c, ECONNRESET,
                                            "writing to the agent timed out after %zu of %zu bytes of a %s frame; "
                                            "the stream is corrupt, connection dropped",
                                            written, frame_len, agent_frame_name(type));
                else if (!broken)
                        client_break_locked(c, ECONNRESET, "writing to the agent failed: %s", strerror(-r));
                r = client_fail_locked(c, err);
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

/* --- requests --- */

static bool id_in_use_locked(AgentClient *c, uint32_t id) {
        for (Pending *p = c->pending; p; p = p->next)
                if (p->id == id)
                        return true;
        for (Channel *ch = c->channels; ch; ch = ch->next)
                if (ch->id == id)
                        return true;
        return false;
}

uint32_t client_new_id_locked(AgentClient *c) {
        for (;;) {
                uint32_t id = ++c->next_id;
                if (id != 0 && !id_in_use_locked(c, id))
                        return id;
        }
}

static Pending *pending_take_locked(AgentClient *c, uint32_t id) {
        for (Pending **pp = &c->pending; *pp; pp = &(*pp)->next) {
                Pending *p = *pp;
                if (p->id == id) {
                        *pp = p->next;
                        p->next = NULL;
                        return p;
                }
        }
        return NULL;
}

/* Unregisters p (unless the reader already did) and frees what it holds. An
 * abandoned id is remembered so that its late answer is dropped quietly. */
static void request_release(AgentClient *c, Pending *p, bool abandon) {
        pthread_mutex_lock(&c->lock);
        if (!p->done)
                (void) pending_take_locked(c, p->id);
        if (abandon)
                c->abandoned[c->abandoned_pos++ % AGENT_ABANDONED_REQUESTS] = p->id;
        pthread_mutex_unlock(&c->lock);

        response_freep(&p->response);
        p->response = NULL;
        free(p->reset_message);
        p->reset_message = NULL;
        pthread_cond_destroy(&p->own_cond);
}

int request_begin(AgentClient *c, Pending *p, const char *op, Plagent__Request *req, pthread_cond_t *cond,
                  int timeout_ms, uint64_t deadline, Error **err) {
        size_t size = protobuf_c_message_get_packed_size(&req->base);
        if (size > c->peer_max_frame)
                return error_set(err, E2BIG, "%s request of %zu bytes exceeds the agent's frame limit of %u bytes", op,
                                 size, c->peer_max_frame);

        *p = (Pending){.op = op, .timeout_ms = timeout_ms};
        int r = agent_cond_init(&p->own_cond);
        if (r < 0)
                return error_set_errno(err, r, "cannot create a condition variable");
        p->cond = cond ? cond : &p->own_cond;

        pthread_mutex_lock(&c->lock);
        if (c->broken) {
                r = client_fail_locked(c, err);
                pthread_mutex_unlock(&c->lock);
                pthread_cond_destroy(&p->own_cond);
                return r;
        }
        p->id = client_new_id_locked(c);
        p->next = c->pending;
        c->pending = p;
        pthread_mutex_unlock(&c->lock);

        r = client_send(c, FRAME_REQUEST, p->id, 0, &req->base, NULL, 0, client_write_deadline(c, deadline), true,
                        err);
        if (r < 0)
                request_release(c, p, false);
        return r;
}

/* Turns a finished request into its result; the response moves to *ret. */
static int request_result(Pending *p, Plagent__Response **ret, Error **err) {
        if (p->reset_code)
                return error_set(err, p->reset_code, "the agent refused the %s request: %s", p->op,
                                 p->reset_message ? p->reset_message : strerror(p->reset_code));

        Plagent__Response *resp = p->response;
        if (resp->error_code != 0) {
                int code = agent_errno(resp->error_code);
                char message[AGENT_MESSAGE_MAX];
                agent_copy_string(message, sizeof message, resp->error_message, true);
                if (message[0] == '\0')
                        return error_set(err, code, "agent: %s failed: %s", p->op, strerror(code));
                return error_set(err, code, "%s", message);
        }
        *ret = TAKE_PTR(p->response);
        return 0;
}

int request_finish(AgentClient *c, Pending *p, uint64_t deadline, Plagent__Response **ret, Error **err) {
        int r = 0;
        bool abandon = false;

        pthread_mutex_lock(&c->lock);
        while (!p->done && !c->broken)
                if (agent_cond_wait(c, p->cond, deadline) < 0)
                        break;
        if (p->done)
                r = request_result(p, ret, err);
        else if (c->broken)
                r = client_fail_locked(c, err);
        else {
                abandon = true;
                if (p->timeout_ms >= 0)
                        r = error_set(err, ETIMEDOUT, "agent did not answer %s within %d ms", p->op, p->timeout_ms);
                else
                        r = error_set(err, ETIMEDOUT, "agent did not answer %s in time", p->op);
        }
        pthread_mutex_unlock(&c->lock);

        request_release(c, p, abandon);
        return r;
}

int agent_call(AgentClient *c, const char *op, Plagent__Request *req, int timeout_ms, Plagent__Response **ret,
               Error **err) {
        uint64_t deadline = deadline_after_ms(timeout_ms);
        Pending p;
        int r = request_begin(c, &p, op, req, NULL, timeout_ms, deadline, err);
        if (r < 0)
                return r;
        return request_finish(c, &p, deadline, ret, err);
}

/* --- the reader thread --- */

static int reader_on_response(AgentClient *c, const FrameHeader *h, const uint8_t *payload) {
        /* Decode before taking the lock: a 1 MiB answer takes a while. */
        Plagent__Response *resp =
                (Plagent__Response *) wire_unpack(&plagent__response__descriptor, payload, h->length, NULL);
        if (!resp)
                return client_break(c, EPROTO, "agent protocol violation: undecodable RESPONSE (%u bytes) to request %u",
                                    h->length, h->channel);

        pthread_mutex_lock(&c->lock);
        Pending *p = pending_take_locked(c, h->channel);
        if (p) {
                p->response = TAKE_PTR(resp);
                p->done = true;
                pthread_cond_broadcast(p->cond);
        }
        int r = 0;
        if (!p && !agent_id_in_ring(c->abandoned, AGENT_ABANDONED_REQUESTS, h->channel))
                r = client_break_locked(c, EPROTO, "agent protocol violation: RESPONSE to unknown request %u",
                                        h->channel);
        else if (!p)
                log_debug("dropping the late answer to abandoned request %u", h->channel);
        pthread_mutex_unlock(&c->lock);
        response_freep(&resp);
        return r;
}

/* RESET names a channel, or a request the agent could not even decode. */
static int reader_on_reset(AgentClient *c, const FrameHeader *h, const uint8_t *payload) {
        Plagent__ChannelReset *rst =
                (Plagent__ChannelReset *) wire_unpack(&plagent__channel_reset__descriptor, payload, h->length, NULL);
        if (!rst)
                return client_break(c, EPROTO, "agent protocol violation: undecodable RESET (%u bytes, id %u)",
                                    h->length, h->channel);
        int code = agent_errno(rst->code);
        char message[AGENT_MESSAGE_MAX];
        agent_copy_string(message, sizeof message, rst->message, true);
        wire_message_free(&rst->base);

        pthread_mutex_lock(&c->lock);
        if (!channel_on_reset_locked(c, h->channel, code, message)) {
                Pending *p = pending_take_locked(c, h->channel);
                if (p) {
                        p->reset_code = code;
                        p->reset_message = message[0] ? strdup(message) : NULL;
                        p->done = true;
                        pthread_cond_broadcast(p->cond);
                } else
                        log_debug("dropping a RESET for unknown id %u", h->channel);
        }
        pthread_mutex_unlock(&c->lock);
        return 0;
}

static int reader_dispatch(AgentClient *c, const FrameEvent *ev) {
        if (ev->type == FRAME_EVENT_SYNC)
                return client_break(c, EPROTO, "agent protocol violation: sync marker in the middle of the session");
        if (ev->type != FRAME_EVENT_FRAME)
                return client_break(c, EPROTO, "agent protocol violation: framing lost");

        const FrameHeader *h = &ev->header;
        int r;
        switch (h->type) {
        case FRAME_RESPONSE:
                return reader_on_response(c, h, ev->payload);
        case FRAME_RESET:
                return reader_on_reset(c, h, ev->payload);
        case FRAME_DATA:
        case FRAME_CREDIT:
                pthread_mutex_lock(&c->lock);
                if (h->type == FRAME_DATA)
                        r = channel_on_data_locked(c, h, ev->payload);
                else
                        r = channel_on_credit_locked(c, h, ev->payload);
                pthread_mutex_unlock(&c->lock);
                return r;
        default:
                return client_break(c, EPROTO, "agent protocol violation: unexpected %s frame (type %u, id %u)",
                                    agent_frame_name(h->type), h->type, h->channel);
        }
}

/* Handles every complete event in the reader's buffer. */
static int reader_drain(AgentClient *c) {
        for (;;) {
                _cleanup_error_ Error *e = NULL;
                FrameEvent ev;
                int r = frame_reader_next(c->reader, &ev, &e);
                if (r < 0)
                        return client_break(c, EPROTO, "agent protocol violation: %s", error_text(e));
                if (r == 0)
                        return 0;
                r = reader_dispatch(c, &ev);
                if (r < 0)
                        return r;
        }
}

static int reader_fill(AgentClient *c) {
        struct pollfd pfd[2] = {
                {.fd = c->fd, .events = POLLIN},
                {.fd = c->wake_fd, .events = POLLIN},
        };
        if (poll(pfd, 2, -1) < 0)
                return errno == EINTR ? 0 : client_break(c, ECONNRESET, "polling the agent connection failed: %m");
        if (pfd[1].revents)
                return client_break(c, ECONNRESET, "the connection to the agent was closed");

        ssize_t n = frame_reader_read_fd(c->reader, c->fd);
        if (n == -EAGAIN || n == -EINTR)
                return 0;
        if (n < 0)
                return client_break(c, ECONNRESET, "reading from the agent failed: %s", strerror((int) -n));
        if (n == 0)
                return client_break(c, ECONNRESET, "the agent closed the connection");
        return 0;
}

static void *reader_main(void *userdata) {
        AgentClient *c = userdata;
        /* The handshake may have buffered frames already: drain before reading. */
        while (reader_drain(c) >= 0 && reader_fill(c) >= 0)
                ;
        return NULL;
}

static int client_start_reader(AgentClient *c, Error **err) {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int r = pthread_create(&c->thread, NULL, reader_main, c);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r != 0)
                return error_set_errno(err, r, "cannot start the agent reader thread");
        c->thread_started = true;
        return 0;
}

/* --- the handshake --- */

static void hello_freep(Plagent__Hello **h) {
        if (*h)
                wire_message_free(&(*h)->base);
}

static int handshake_send(AgentClient *c, uint64_t nonce, uint64_t deadline, Error **err) {
        Plagent__Hello hello = PLAGENT__HELLO__INIT;
        hello.version_min = PL_PROTOCOL_VERSION;
        hello.version_max = PL_PROTOCOL_VERSION;
        hello.nonce = nonce;
        hello.software = (char *) AGENT_CLIENT_SOFTWARE;
        hello.window = c->window;
        hello.max_frame = PL_FRAME_MAX_PAYLOAD;

        _cleanup_free_ uint8_t *frame = NULL;
        size_t frame_len = 0, written = 0;
        int r = wire_frame_build(&frame, &frame_len, FRAME_HELLO, 0, 0, &hello.base, NULL, 0);
        if (r < 0)
                return error_set_errno(err, r, "cannot build the HELLO frame");
        _cleanup_free_ uint8_t *buf = malloc(PL_SYNC_SIZE + frame_len);
        if (!buf)
                return error_oom(err);
        memcpy(buf, pl_sync_marker, PL_SYNC_SIZE);
        memcpy(buf + PL_SYNC_SIZE, frame, frame_len);

        r = fd_write_deadline(c, buf, PL_SYNC_SIZE + frame_len, deadline, &written);
        if (r == -ETIMEDOUT)
                return error_set(err, ETIMEDOUT, "the agent did not accept the handshake in time");
        if (r < 0)
                return error_set_errno(err, r, "sending the handshake to the agent");
        return 0;
}

/* Checks and records the agent's answer. */
static int handshake_accept(AgentClient *c, const Plagent__Hello *h, Error **err) {
        if (h->version_min > h->version_max || h->version_min > PL_PROTOCOL_VERSION ||
            h->version_max < PL_PROTOCOL_VERSION)
                return error_set(err, EPROTONOSUPPORT,
                                 "the agent speaks protocol versions %u..%u, this host speaks version %u",
                                 h->version_min, h->version_max, PL_PROTOCOL_VERSION);

        uint32_t window = h->window ? h->window : PL_DEFAULT_WINDOW;
        c->peer_window = MIN(MAX(window, AGENT_MIN_WINDOW), PL_MAX_WINDOW);
        uint32_t max_frame = h->max_frame ? h->max_frame : PL_FRAME_MAX_PAYLOAD;
        c->peer_max_frame = MIN(MAX(max_frame, AGENT_MIN_WINDOW), PL_FRAME_MAX_PAYLOAD);
        c->peer_instance = h->instance;
        agent_copy_string(c->peer_software, sizeof c->peer_software, h->software, true);
        return 0;
}

/* The bytes read while hunting for the answer. Only "sync marker + HELLO
 * header + small payload" is ever parsed: a stale stream may hold truncated
 * frames and garbage lengths, and trusting one would swallow the answer. */
typedef struct HandshakeScan {
        uint8_t *buf;
        size_t len;
        uint64_t received;
        uint64_t discarded;
        Plagent__Hello *hello; /* the answer, once found */
        size_t end;            /* where it ends in buf */
} HandshakeScan;

/* Returns the length of a possible sync + HELLO at p (avail bytes), 0 when
 * none starts there, or SIZE_MAX when more bytes are needed to tell. */
static size_t handshake_candidate(const uint8_t *p, size_t avail) {
        if (memcmp(p, pl_sync_marker, MIN(avail, (size_t) PL_SYNC_SIZE)) != 0)
                return 0;
        if (avail < PL_SYNC_SIZE + PL_FRAME_HEADER_SIZE)
                return SIZE_MAX;
        FrameHeader h;
        if (frame_header_decode(p + PL_SYNC_SIZE, &h) < 0 || h.type != FRAME_HELLO || h.channel != 0 ||
            h.length > HANDSHAKE_HELLO_MAX)
                return 0;
        size_t len = PL_SYNC_SIZE + PL_FRAME_HEADER_SIZE + h.length;
        return len <= avail ? len : SIZE_MAX;
}

/* Scans s->buf for the HELLO echoing nonce, dropping whatever cannot be part
 * of it. An incomplete candidate is kept but does not stop the scan: its
 * length may be garbage covering the real answer. Returns true when found
 * (s->hello, s->end). */
static bool handshake_scan(HandshakeScan *s, uint64_t nonce) {
        size_t i = 0, keep = SIZE_MAX;
        while (i < s->len) {
                const uint8_t *m = memchr(s->buf + i, pl_sync_marker[0], s->len - i);
                if (!m) {
                        i = s->len;
                        break;
                }
                i = (size_t) (m - s->buf);
                size_t n = handshake_candidate(s->buf + i, s->len - i);
                if (n == SIZE_MAX)
                        keep = MIN(keep, i);
                if (n == 0 || n == SIZE_MAX) {
                        i++;
                        continue;
                }
                const uint8_t *payload = s->buf + i + PL_SYNC_SIZE + PL_FRAME_HEADER_SIZE;
                Plagent__Hello *h = (Plagent__Hello *) wire_unpack(&plagent__hello__descriptor, payload,
                                                                    n - PL_SYNC_SIZE - PL_FRAME_HEADER_SIZE, NULL);
                if (h && h->nonce == nonce) {
                        s->hello = h;
                        s->end = i + n;
                        s->discarded += i;
                        return true;
                }
                log_debug("skipping a stale HELLO from the agent");
                hello_freep(&h);
                i += n;
        }
        i = MIN(i, keep);
        memmove(s->buf, s->buf + i, s->len - i);
        s->len -= i;
        s->discarded += i;
        return false;
}

static int handshake_read(AgentClient *c, HandshakeScan *s, uint64_t deadline, int timeout_ms, Error **err) {
        if (s->received > HANDSHAKE_DISCARD_MAX)
                return error_set(err, EPROTO, "the agent sent %" PRIu64 " bytes without answering the handshake",
                                 s->received);
        int ms = deadline_poll_ms(deadline);
        if (ms == 0)
                return error_set(err, ETIMEDOUT, "the agent did not answer the handshake within %d ms", timeout_ms);
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
                return error_set_errno(err, errno, "waiting for the agent's handshake");

        ssize_t n = read(c->fd, s->buf + s->len, HANDSHAKE_SCAN_BUFFER - s->len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n < 0)
                return error_set_errno(err, errno, "reading the agent's handshake");
        if (n == 0)
                return error_set(err, ECONNRESET, "the agent closed the connection during the handshake");
        s->len += (size_t) n;
        s->received += (uint64_t) n;
        return 0;
}

/* Hands what followed the answer to the strict reader, which starts out
 * hunting: a sync marker fed first puts it at a frame boundary. */
static int handshake_handover(AgentClient *c, const HandshakeScan *s, Error **err) {
        FrameEvent ev;
        frame_reader_reset(c->reader);
        if (frame_reader_feed(c->reader, pl_sync_marker, PL_SYNC_SIZE) != PL_SYNC_SIZE ||
            frame_reader_next(c->reader, &ev, NULL) != 1 || ev.type != FRAME_EVENT_SYNC)
                return error_set(err, EIO, "cannot prime the frame reader");
        size_t rest = s->len - s->end;
        if (frame_reader_feed(c->reader, s->buf + s->end, rest) != rest)
                return error_set(err, EIO, "cannot prime the frame reader");
        return 0;
}

static int client_handshake(AgentClient *c, uint64_t deadline, int timeout_ms, Error **err) {
        _cleanup_free_ uint8_t *buf = malloc(HANDSHAKE_SCAN_BUFFER);
        if (!buf)
                return error_oom(err);
        HandshakeScan s = {.buf = buf};
        uint64_t nonce;
        random_bytes(&nonce, sizeof nonce);

        int r = handshake_send(c, nonce, deadline, err);
        while (r >= 0 && !handshake_scan(&s, nonce))
                r = handshake_read(c, &s, deadline, timeout_ms, err);
        if (r < 0)
                return r;

        _cleanup_(hello_freep) Plagent__Hello *hello = s.hello;
        r = handshake_accept(c, hello, err);
        if (r < 0)
                return r;
        r = handshake_handover(c, &s, err);
        if (r < 0)
                return r;
        log_debug("agent handshake done: %s, instance %016" PRIx64 ", window %u, %" PRIu64 " bytes skipped",
                  c->peer_software, c->peer_instance, c->peer_window, s.discarded);
        return 0;
}

/* --- lifecycle --- */

static ClientConfig config_resolve(const AgentClientOptions *opts) {
        ClientConfig cfg = {
                .handshake_timeout_ms = AGENT_DEFAULT_HANDSHAKE_TIMEOUT_MS,
                .request_timeout_ms = AGENT_DEFAULT_REQUEST_TIMEOUT_MS,
                .window = PL_DEFAULT_WINDOW,
        };
        if (opts && opts->handshake_timeout_ms != 0)
                cfg.handshake_timeout_ms = opts->handshake_timeout_ms;
        if (opts && opts->request_timeout_ms != 0)
                cfg.request_timeout_ms = opts->request_timeout_ms;
        if (opts && opts->window != 0)
                cfg.window = MIN(MAX(opts->window, AGENT_MIN_WINDOW), PL_MAX_WINDOW);
        return cfg;
}

/* Frees a client whose reader thread is not running (or was joined). */
static void client_destroy(AgentClient *c) {
        if (!c)
                return;
        while (c->channels) {
                Channel *ch = c->channels;
                log_debug("agent client freed with channel %u (%s) still open", ch->id, ch->name);
                channel_retire(c, ch);
        }
        frame_reader_free(c->reader);
        safe_close(c->fd);
        safe_close(c->wake_fd);
        pthread_mutex_destroy(&c->lock);
        pthread_mutex_destroy(&c->write_lock);
        free(c->broken_message);
        free(c);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentClient *, client_destroy);

static int client_alloc(AgentClient **ret, const ClientConfig *cfg, Error **err) {
        _cleanup_(client_destroyp) AgentClient *c = calloc(1, sizeof(*c));
        if (!c)
                return error_oom(err);
        c->fd = -1;
        c->wake_fd = -1;
        pthread_mutex_init(&c->lock, NULL);
        pthread_mutex_init(&c->write_lock, NULL);
        c->request_timeout_ms = cfg->request_timeout_ms;
        c->window = cfg->window;
        c->peer_window = PL_DEFAULT_WINDOW;
        c->peer_max_frame = PL_FRAME_MAX_PAYLOAD;

        int r = frame_reader_new(&c->reader, true);
        if (r < 0)
                return error_oom(err);
        c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->wake_fd < 0)
                return error_set_errno(err, errno, "cannot create an eventfd");
        *ret = TAKE_PTR(c);
        return 0;
}

/* Takes fd, shakes hands until deadline and starts the reader. */
static int client_open(AgentClient **ret, int fd, const ClientConfig *cfg, uint64_t deadline, int timeout_ms,
                       Error **err) {
        _cleanup_close_ int owned = fd;
        _cleanup_(client_destroyp) AgentClient *c = NULL;
        int r = client_alloc(&c, cfg, err);
        if (r < 0)
                return r;
        c->fd = TAKE_FD(owned);

        r = fd_set_nonblock(c->fd, true);
        if (r < 0)
                return error_set_errno(err, r, "cannot make the agent connection non-blocking");
        int type = 0;
        socklen_t type_len = sizeof type;
        c->fd_is_socket = getsockopt(c->fd, SOL_SOCKET, SO_TYPE, &type, &type_len) == 0;

        r = client_handshake(c, deadline, timeout_ms, err);
        if (r < 0)
                return r;
        r = client_start_reader(c, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

int agent_client_new_fd(AgentClient **ret, int fd, const AgentClientOptions *opts, Error **err) {
        ClientConfig cfg = config_resolve(opts);
        if (fd < 0)
                return error_set(err, EBADF, "invalid file descriptor for the agent connection");
        return client_open(ret, fd, &cfg, deadline_after_ms(cfg.handshake_timeout_ms), cfg.handshake_timeout_ms,
                           err);
}

typedef struct Endpoint {
        struct sockaddr_storage addr;
        socklen_t len;
        int family;
        char name[160]; /* "/path/agent.sock", "vsock 3:1024" */
} Endpoint;

/* Waits for a non-blocking connect (vsock answers EINPROGRESS). */
static int connect_finish(int fd, int attempt_ms) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int k = poll(&pfd, 1, attempt_ms);
        if (k < 0)
                return negative_errno();
        if (k == 0)
                return -ETIMEDOUT;
        int so_error = 0;
        socklen_t len = sizeof so_error;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) < 0)
                return negative_errno();
        return so_error ? -so_error : 0;
}

static int connect_attempt(AgentClient **ret, const Endpoint *ep, const ClientConfig *cfg, int attempt_ms,
                           Error **err) {
        /* Non-blocking before connect(): a full listen backlog gives EAGAIN
         * instead of blocking past our deadline. */
        _cleanup_close_ int fd = socket(ep->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return error_set_errno(err, errno, "cannot create a socket for %s", ep->name);
        int r = connect(fd, (const struct sockaddr *) &ep->addr, ep->len) < 0 ? negative_errno() : 0;
        if (r == -EINPROGRESS)
                r = connect_finish(fd, attempt_ms);
        if (r < 0)
                return error_set_errno(err, -r, "cannot connect to %s", ep->name);
        return client_open(ret, TAKE_FD(fd), cfg, deadline_after_ms(attempt_ms), attempt_ms, err);
}

static bool connect_retryable(int r) {
        return r == -ENOENT || r == -ECONNREFUSED || r == -EAGAIN || r == -ETIMEDOUT || r == -ECONNRESET ||
               r == -EPIPE;
}

/* Connects and shakes hands, attempt after attempt, until the handshake
 * deadline: a guest's agent may not listen yet. */
static int connect_retrying(AgentClient **ret, const Endpoint *ep, const AgentClientOptions *opts, Error **err) {
        ClientConfig cfg = config_resolve(opts);
        uint64_t deadline = deadline_after_ms(cfg.handshake_timeout_ms);
        int attempt_ms = CONNECT_ATTEMPT_MS_MIN, backoff_ms = CONNECT_BACKOFF_MS_MIN;
        unsigned attempts = 0;

        for (;;) {
                _cleanup_error_ Error *e = NULL;
                int left = deadline_poll_ms(deadline);
                int ms = left < 0 ? attempt_ms : MIN(attempt_ms, MAX(left, 1));
                attempts++;
                int r = connect_attempt(ret, ep, &cfg, ms, &e);
                if (r >= 0)
                        return 0;
                left = deadline_poll_ms(deadline);
                if (!connect_retryable(r))
                        return error_set(err, -r, "agent at %s: %s", ep->name, error_text(e));
                if (left >= 0 && left <= backoff_ms)
                        return error_set(err, -r, "cannot reach the agent at %s within %d ms (%u attempts): %s",
                                         ep->name, cfg.handshake_timeout_ms, attempts, error_text(e));
                log_debug("agent at %s: attempt %u failed: %s", ep->name, attempts, error_text(e));
                usleep((useconds_t) backoff_ms * 1000u);
                backoff_ms = MIN(backoff_ms * 2, CONNECT_BACKOFF_MS_MAX);
                /* A silent peer may only be slow: give the next answer longer. */
                if (r == -ETIMEDOUT)
                        attempt_ms = MIN(attempt_ms * 2, CONNECT_ATTEMPT_MS_MAX);
        }
}

int agent_client_connect_unix(AgentClient **ret, const char *path, const AgentClientOptions *opts, Error **err) {
        Endpoint ep = {.family = AF_UNIX, .len = sizeof(struct sockaddr_un)};
        struct sockaddr_un *sa = (struct sockaddr_un *) &ep.addr;
        sa->sun_family = AF_UNIX;
        if (strlen(path) >= sizeof sa->sun_path)
                return error_set(err, ENAMETOOLONG, "socket path too long: %s", path);
        memcpy(sa->sun_path, path, strlen(path) + 1);
        snprintf(ep.name, sizeof ep.name, "%s", path);
        return connect_retrying(ret, &ep, opts, err);
}

int agent_client_connect_vsock(AgentClient **ret, unsigned cid, unsigned port, const AgentClientOptions *opts,
                               Error **err) {
        Endpoint ep = {.family = AF_VSOCK, .len = sizeof(struct sockaddr_vm)};
        struct sockaddr_vm *sa = (struct sockaddr_vm *) &ep.addr;
        sa->svm_family = AF_VSOCK;
        sa->svm_cid = cid;
        sa->svm_port = port;
        snprintf(ep.name, sizeof ep.name, "vsock %u:%u", cid, port);
        return connect_retrying(ret, &ep, opts, err);
}

AgentClient *agent_client_free(AgentClient *c) {
        if (!c)
                return NULL;
        if (c->thread_started) {
                pthread_mutex_lock(&c->lock);
                client_break_locked(c, ECONNRESET, "the agent client was closed");
                pthread_mutex_unlock(&c->lock);
                pthread_join(c->thread, NULL);
        }
        client_destroy(c);
        return NULL;
}

void agent_client_close(AgentClient *c, const char *why) {
        pthread_mutex_lock(&c->lock);
        client_break_locked(c, ECONNRESET, "%s", why ? why : "the agent client was closed");
        pthread_mutex_unlock(&c->lock);
}

bool agent_client_is_alive(AgentClient *c) {
        pthread_mutex_lock(&c->lock);
        bool alive = c->broken == 0;
        pthread_mutex_unlock(&c->lock);
        return alive;
}

int agent_client_error(AgentClient *c, Error **err) {
        pthread_mutex_lock(&c->lock);
        int r = c->broken ? client_fail_locked(c, err) : 0;
        pthread_mutex_unlock(&c->lock);
        return r;
}

const char *agent_client_peer_software(AgentClient *c) {
        return c->peer_software;
}

uint64_t agent_client_peer_instance(AgentClient *c) {
        return c->peer_instance;
}
