/* agent-channel.c: data channels of the agent client and the streaming calls
 * built on them (process stdin/stdout/stderr, copy-in, copy-out).
 *
 * The host names every channel (from the id counter it shares with requests)
 * before sending the request that uses it, so data the agent sends right
 * behind its answer is always accepted.
 *
 * Inbound (agent -> host): the agent may have at most `window` bytes (our
 * HELLO) unacknowledged. Bytes land in a per-channel buffer that therefore
 * never exceeds the window; readers take them and credit goes back in batches
 * of at least window/4. That alone cannot stall a channel: a sender without
 * credit means buffered + unreturned == window, so a reader that drains the
 * buffer always reaches the threshold. Sending beyond credit, after EOF, or on
 * a channel we never opened breaks the connection; frames for a channel we
 * closed recently are dropped (the ring of retired ids).
 *
 * Outbound (host -> agent): writers wait for credit (the agent's window, then
 * its CREDIT frames) and send DATA in chunks of at most PL_DATA_CHUNK. A RESET
 * from the agent fails the channel's readers and writers with its reason. */
#include "agent-client-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <string.h>

#include "common/base/io-util.h"
#include "common/base/log.h"

#define CHANNEL_MIN_BUFFER (16u * 1024u)
#define STREAM_ABORT_GRACE_MS 2000
#define PROCESS_FREE_EOF_MS 1000

/* --- the channel table --- */

static void channel_free(Channel *ch) {
        pthread_cond_destroy(&ch->cond);
        free(ch->buf);
        free(ch->reset_message);
        free(ch);
}

static Channel *channel_find_locked(AgentClient *c, uint32_t id) {
        for (Channel *ch = c->channels; ch; ch = ch->next)
                if (ch->id == id)
                        return ch;
        return NULL;
}

bool channel_is_retired_locked(AgentClient *c, uint32_t id) {
        return agent_id_in_ring(c->retired, AGENT_RETIRED_CHANNELS, id);
}

void channels_wake_all_locked(AgentClient *c) {
        for (Channel *ch = c->channels; ch; ch = ch->next)
                pthread_cond_broadcast(&ch->cond);
}

int channel_open(AgentClient *c, bool inbound, const char *name, Channel **ret, Error **err) {
        Channel *ch = calloc(1, sizeof(*ch));
        if (!ch)
                return error_oom(err);
        int r = agent_cond_init(&ch->cond);
        if (r < 0) {
                free(ch);
                return error_set_errno(err, r, "cannot create a condition variable");
        }
        ch->name = name;
        ch->inbound = inbound;
        ch->window = c->window;
        ch->peer_credit = c->window;

        pthread_mutex_lock(&c->lock);
        if (c->broken) {
                r = client_fail_locked(c, err);
                pthread_mutex_unlock(&c->lock);
                channel_free(ch);
                return r;
        }
        ch->send_credit = c->peer_window;
        ch->id = client_new_id_locked(c);
        ch->next = c->channels;
        c->channels = ch;
        pthread_mutex_unlock(&c->lock);
        *ret = ch;
        return 0;
}

void channel_retire(AgentClient *c, Channel *ch) {
        if (!ch)
                return;
        pthread_mutex_lock(&c->lock);
        for (Channel **pp = &c->channels; *pp; pp = &(*pp)->next)
                if (*pp == ch) {
                        *pp = ch->next;
                        break;
                }
        c->retired[c->retired_pos++ % AGENT_RETIRED_CHANNELS] = ch->id;
        pthread_mutex_unlock(&c->lock);
        channel_free(ch);
}

/* --- frames from the reader thread --- */

static int channel_unknown_locked(AgentClient *c, const FrameHeader *h) {
        if (channel_is_retired_locked(c, h->channel)) {
                log_debug("dropping a late %s frame on closed channel %u", agent_frame_name(h->type), h->channel);
                return 0;
        }
        return client_break_locked(c, EPROTO, "agent protocol violation: %s on channel %u, which the host never opened",
                                   agent_frame_name(h->type), h->channel);
}

/* Appends n bytes; the caller checked credit, so end - start + n <= window. */
static int channel_append(Channel *ch, const uint8_t *data, size_t n) {
        if (n == 0)
                return 0;
        if (ch->end + n > ch->cap && ch->start > 0) {
                memmove(ch->buf, ch->buf + ch->start, ch->end - ch->start);
                ch->end -= ch->start;
                ch->start = 0;
        }
        if (ch->end + n > ch->cap) {
                size_t cap = MAX(MAX(ch->cap * 2, ch->end + n), (size_t) CHANNEL_MIN_BUFFER);
                cap = MIN(cap, (size_t) ch->window);
                uint8_t *buf = realloc(ch->buf, cap);
                if (!buf)
                        return -ENOMEM;
                ch->buf = buf;
                ch->cap = cap;
        }
        memcpy(ch->buf + ch->end, data, n);
        ch->end += n;
        return 0;
}

int channel_on_data_locked(AgentClient *c, const FrameHeader *h, const uint8_t *payload) {
        Channel *ch = channel_find_locked(c, h->channel);
        if (!ch)
                return channel_unknown_locked(c, h);
        if (!ch->inbound)
                return client_break_locked(c, EPROTO, "agent protocol violation: DATA on channel %u, the host's %s",
                                           h->channel, ch->name);
        if (ch->eof)
                return client_break_locked(c, EPROTO, "agent protocol violation: DATA on channel %u after its EOF",
                                           h->channel);
        if (ch->reset_code)
                return 0; /* the agent aborted the channel itself: nothing more to deliver */
        if (h->length > ch->peer_credit)
                return client_break_locked(c, EPROTO,
                                           "agent protocol violation: DATA on channel %u beyond credit (%" PRIu64
                                           " > %u)",
                                           h->channel, (uint64_t) (ch->window - ch->peer_credit) + h->length,
                                           ch->window);
        if (channel_append(ch, payload, h->length) < 0)
                return client_break_locked(c, ENOMEM, "out of memory buffering data of channel %u", h->channel);

        ch->peer_credit -= h->length;
        if (h->flags & FRAME_FLAG_EOF)
                ch->eof = true;
        if (h->length > 0 || ch->eof)
                pthread_cond_broadcast(&ch->cond);
        return 0;
}

int channel_on_credit_locked(AgentClient *c, const FrameHeader *h, const uint8_t *payload) {
        uint32_t n;
        if (wire_credit_decode(payload, h->length, &n) < 0)
                return client_break_locked(c, EPROTO, "agent protocol violation: CREDIT of %u bytes on channel %u",
                                           h->length, h->channel);
        Channel *ch = channel_find_locked(c, h->channel);
        if (!ch)
                return channel_unknown_locked(c, h);
        if (ch->inbound)
                return client_break_locked(c, EPROTO, "agent protocol violation: CREDIT on channel %u, the agent's %s",
                                           h->channel, ch->name);

        /* More than the window back is a peer bug; clamping it is always safe. */
        ch->send_credit = (uint32_t) MIN((uint64_t) ch->send_credit + n, (uint64_t) c->peer_window);
        if (n > 0)
                pthread_cond_broadcast(&ch->cond);
        return 0;
}

bool channel_on_reset_locked(AgentClient *c, uint32_t id, int code, const char *message) {
        Channel *ch = channel_find_locked(c, id);
        if (!ch)
                return channel_is_retired_locked(c, id);
        /* An output that already reached EOF is complete: keep its data. */
        if ((ch->inbound && ch->eof) || ch->reset_code)
                return true;
        ch->reset_code = code;
        ch->reset_message = message[0] ? strdup(message) : NULL;
        pthread_cond_broadcast(&ch->cond);
        return true;
}

/* --- reading and writing --- */

static int channel_reset_error(const Channel *ch, Error **err) {
        return error_set(err, ch->reset_code, "the agent reset %s (channel %u): %s", ch->name, ch->id,
                         ch->reset_message ? ch->reset_message : strerror(ch->reset_code));
}

static int channel_send_credit(AgentClient *c, Channel *ch, uint32_t grant, Error **err) {
        uint8_t payload[4];
        wire_credit_encode(grant, payload);
        return client_send(c, FRAME_CREDIT, ch->id, 0, NULL, payload, sizeof payload,
                           client_write_deadline(c, USEC_INFINITY), false, err);
}

static size_t channel_consume_locked(Channel *ch, uint8_t *buf, size_t len, uint32_t *ret_grant) {
        size_t n = MIN(len, ch->end - ch->start);
        memcpy(buf, ch->buf + ch->start, n);
        ch->start += n;
        if (ch->start == ch->end)
                ch->start = ch->end = 0;

        ch->unreturned += (uint32_t) n;
        if (!ch->eof && !ch->reset_code && ch->unreturned >= ch->window / 4) {
                *ret_grant = ch->unreturned;
                ch->peer_credit += ch->unreturned;
                ch->unreturned = 0;
        }
        return n;
}

/* Buffered bytes come first, even after EOF, a reset or a break. Returns
 * -ECANCELED (err untouched) when linked got its answer and nothing is left. */
static ssize_t channel_read_locked(AgentClient *c, Channel *ch, uint8_t *buf, size_t len, uint64_t deadline,
                                   int timeout_ms, const Pending *linked, uint32_t *ret_grant, Error **err) {
        for (;;) {
                if (ch->end > ch->start)
                        return (ssize_t) channel_consume_locked(ch, buf, len, ret_grant);
                if (ch->eof)
                        return 0;
                if (ch->reset_code)
                        return channel_reset_error(ch, err);
                if (c->broken)
                        return client_fail_locked(c, err);
                if (linked && linked->done)
                        return -ECANCELED;
                if (agent_cond_wait(c, &ch->cond, deadline) < 0)
                        return error_set(err, ETIMEDOUT, "no data on %s (channel %u) within %d ms", ch->name, ch->id,
                                         timeout_ms);
        }
}

static ssize_t channel_read(AgentClient *c, Channel *ch, void *buf, size_t len, uint64_t deadline, int timeout_ms,
                            const Pending *linked, Error **err) {
        uint32_t grant = 0;
        if (len == 0)
                return 0;
        len = MIN(len, (size_t) SSIZE_MAX);

        pthread_mutex_lock(&c->lock);
        ssize_t n = channel_read_locked(c, ch, buf, len, deadline, timeout_ms, linked, &grant, err);
        pthread_mutex_unlock(&c->lock);

        /* A failed CREDIT breaks the connection; the bytes read are still good. */
        if (grant > 0)
                (void) channel_send_credit(c, ch, grant, NULL);
        return n;
}

/* Waits for credit and takes up to len bytes of it. Returns -ECANCELED (err
 * untouched) when linked got its answer. */
static int channel_reserve(AgentClient *c, Channel *ch, size_t len, uint64_t deadline, int timeout_ms,
                           const Pending *linked, size_t *ret, Error **err) {
        size_t chunk = MIN((size_t) PL_DATA_CHUNK, (size_t) c->peer_max_frame);
        int r = 0;

        pthread_mutex_lock(&c->lock);
        for (;;) {
                if (ch->eof)
                        r = error_set(err, EPIPE, "%s (channel %u) is closed", ch->name, ch->id);
                else if (ch->reset_code)
                        r = channel_reset_error(ch, err);
                else if (c->broken)
                        r = client_fail_locked(c, err);
                else if (linked && linked->done)
                        r = -ECANCELED;
                else if (ch->send_credit > 0) {
                        *ret = MIN(MIN(len, chunk), (size_t) ch->send_credit);
                        ch->send_credit -= (uint32_t) *ret;
                } else if (agent_cond_wait(c, &ch->cond, deadline) < 0)
                        r = error_set(err, ETIMEDOUT, "the agent granted no credit on %s (channel %u) within %d ms",
                                      ch->name, ch->id, timeout_ms);
                else
                        continue;
                break;
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

static int channel_write(AgentClient *c, Channel *ch, const void *buf, size_t len, uint64_t deadline, int timeout_ms,
                         const Pending *linked, Error **err) {
        const uint8_t *p = buf;
        while (len > 0) {
                size_t n = 0;
                int r = channel_reserve(c, ch, len, deadline, timeout_ms, linked, &n, err);
                if (r < 0)
                        return r;
                r = client_send(c, FRAME_DATA, ch->id, 0, NULL, p, n, client_write_deadline(c, deadline), true, err);
                if (r < 0) {
                        pthread_mutex_lock(&c->lock);
                        ch->send_credit += (uint32_t) n; /* not sent: give it back */
                        pthread_mutex_unlock(&c->lock);
                        return r;
                }
                p += n;
                len -= n;
        }
        return 0;
}

/* Half-closes an outbound channel; a no-op when closed or reset already.
 * Writers still waiting for credit fail with -EPIPE, as on a closed pipe. */
static int channel_send_eof(AgentClient *c, Channel *ch, uint64_t deadline, Error **err) {
        pthread_mutex_lock(&c->lock);
        bool skip = ch->eof || ch->reset_code;
        ch->eof = true;
        pthread_cond_broadcast(&ch->cond);
        pthread_mutex_unlock(&c->lock);
        if (skip)
                return 0;

        int r = client_send(c, FRAME_DATA, ch->id, FRAME_FLAG_EOF, NULL, NULL, 0, client_write_deadline(c, deadline),
                            true, err);
        if (r < 0) {
                pthread_mutex_lock(&c->lock);
                ch->eof = false;
                pthread_mutex_unlock(&c->lock);
        }
        return r;
}

/* Tells the agent we abort a channel (best effort). */
static void channel_send_reset(AgentClient *c, Channel *ch, int code, const char *message) {
        Plagent__ChannelReset rst = PLAGENT__CHANNEL_RESET__INIT;
        char text[AGENT_MESSAGE_MAX];
        agent_copy_string(text, sizeof text, message, false);
        rst.code = code < 0 ? -code : code;
        rst.message = text;
        (void) client_send(c, FRAME_RESET, ch->id, 0, &rst.base, NULL, 0, client_write_deadline(c, USEC_INFINITY),
                           true, NULL);
}

/* --- process streams --- */

int agent_process_write_stdin(AgentProcess *p, const void *buf, size_t len, int timeout_ms, Error **err) {
        if (!p->in)
                return error_set(err, EPIPE, "stdin of process %u was not opened", p->process_id);
        return channel_write(p->client, p->in, buf, len, deadline_after_ms(timeout_ms), timeout_ms, NULL, err);
}

int agent_process_close_stdin(AgentProcess *p, Error **err) {
        if (!p->in)
                return error_set(err, EPIPE, "stdin of process %u was not opened", p->process_id);
        return channel_send_eof(p->client, p->in, USEC_INFINITY, err);
}

ssize_t agent_process_read(AgentProcess *p, AgentStream stream, void *buf, size_t len, int timeout_ms, Error **err) {
        Channel *ch = stream == AGENT_STREAM_STDOUT ? p->out : stream == AGENT_STREAM_STDERR ? p->err : NULL;
        if (!ch)
                return error_set(err, EBADF, "%s of process %u was not captured",
                                 stream == AGENT_STREAM_STDERR ? "stderr" : "this stream", p->process_id);
        return channel_read(p->client, ch, buf, len, deadline_after_ms(timeout_ms), timeout_ms, NULL, err);
}

AgentProcess *agent_process_free(AgentProcess *p) {
        if (!p)
                return NULL;
        /* stdin gets its end; output nobody will read is reset, so the agent
         * buffers it for a later attach (the newest 1 MiB) instead of leaving
         * the process blocked on a pipe. */
        if (p->in)
                (void) channel_send_eof(p->client, p->in, deadline_after_ms(PROCESS_FREE_EOF_MS), NULL);
        Channel *outputs[] = {p->out, p->err};
        for (size_t i = 0; i < ELEMENTSOF(outputs); i++) {
                if (!outputs[i])
                        continue;
                pthread_mutex_lock(&p->client->lock);
                bool open = !outputs[i]->eof && !outputs[i]->reset_code && !p->client->broken;
                pthread_mutex_unlock(&p->client->lock);
                if (open)
                        channel_send_reset(p->client, outputs[i], ECANCELED, "the host no longer reads this stream");
        }
        channel_retire(p->client, p->in);
        channel_retire(p->client, p->out);
        channel_retire(p->client, p->err);
        free(p);
        return NULL;
}

/* --- copy-in and copy-out --- */

static int error_move(Error **dst, Error **src, int r) {
        if (dst && !*dst)
                *dst = TAKE_PTR(*src);
        return r;
}

/* Reads up to len bytes of fd, polling so that a pipe cannot outlive deadline. */
static ssize_t read_deadline(int fd, void *buf, size_t len, uint64_t deadline, int timeout_ms, Error **err) {
        for (;;) {
                ssize_t n = read(fd, buf, len);
                if (n >= 0)
                        return n;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return error_set_errno(err, errno, "reading the archive to copy in");
                int ms = deadline_poll_ms(deadline);
                if (ms == 0)
                        return error_set(err, ETIMEDOUT, "no archive data to copy in within %d ms", timeout_ms);
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
                        return error_set_errno(err, errno, "waiting for the archive to copy in");
        }
}

static int copy_in_stream(AgentClient *c, Channel *ch, int tar_fd, uint64_t deadline, int timeout_ms,
                          const Pending *p, Error **err) {
        _cleanup_free_ uint8_t *buf = malloc(PL_DATA_CHUNK);
        if (!buf)
                return error_oom(err);
        for (;;) {
                ssize_t n = read_deadline(tar_fd, buf, PL_DATA_CHUNK, deadline, timeout_ms, err);
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        break;
                int r = channel_write(c, ch, buf, (size_t) n, deadline, timeout_ms, p, err);
                if (r < 0)
                        return r;
        }
        return channel_send_eof(c, ch, deadline, err);
}

static int copy_out_stream(AgentClient *c, Channel *ch, int out_fd, uint64_t deadline, int timeout_ms,
                           const Pending *p, Error **err) {
        _cleanup_free_ uint8_t *buf = malloc(PL_DATA_CHUNK);
        if (!buf)
                return error_oom(err);
        for (;;) {
                ssize_t n = channel_read(c, ch, buf, PL_DATA_CHUNK, deadline, timeout_ms, p, err);
                if (n <= 0)
                        return (int) n;
                int r = write_all_deadline(out_fd, buf, (size_t) n, deadline);
                if (r < 0)
                        return error_set_errno(err, r, "writing the copied archive");
        }
}

/* Ends a streaming request whose stream returned sr. A finished stream (or an
 * early answer) waits for the answer. A failure of ours aborts the channel
 * towards the agent and abandons the request. A reset by the agent waits
 * briefly for the answer, which usually says why. */
static int stream_finish(AgentClient *c, Channel *ch, Pending *p, int sr, Error **stream_err, uint64_t deadline,
                         Plagent__Response **ret, Error **err) {
        if (sr >= 0 || sr == -ECANCELED)
                return request_finish(c, p, deadline, ret, err);

        pthread_mutex_lock(&c->lock);
        bool agent_reset = ch->reset_code != 0, broken = c->broken != 0;
        pthread_mutex_unlock(&c->lock);

        _cleanup_response_ Plagent__Response *resp = NULL;
        _cleanup_error_ Error *answer = NULL;
        if (!agent_reset && !broken) {
                channel_send_reset(c, ch, ECANCELED, error_text(*stream_err));
                (void) request_finish(c, p, now_usec(), &resp, NULL);
                return error_move(err, stream_err, sr);
        }
        uint64_t grace = MIN(deadline, deadline_after_ms(STREAM_ABORT_GRACE_MS));
        int r = request_finish(c, p, grace, &resp, &answer);
        if (r < 0 && p->done)
                return error_move(err, &answer, r);
        return error_move(err, stream_err, sr);
}

static void copy_stats_from(AgentCopyStats *ret, const Plagent__Response *resp) {
        if (!ret)
                return;
        *ret = (AgentCopyStats){0};
        if (resp->result_case == PLAGENT__RESPONSE__RESULT_COPY && resp->copy) {
                ret->bytes = resp->copy->bytes;
                ret->entries = resp->copy->entries;
        }
}

/* One copy operation: a request naming a fresh channel, the stream in the
 * given direction, then the agent's answer. */
static int copy_run(AgentClient *c, bool in, const char *path, int fd, AgentCopyStats *ret, int timeout_ms,
                    Error **err) {
        const char *name = in ? "copy-in" : "copy-out";
        uint64_t deadline = deadline_after_ms(timeout_ms);
        Channel *ch = NULL;
        int r = channel_open(c, !in, name, &ch, err);
        if (r < 0)
                return r;

        Plagent__CopyInRequest op_in = PLAGENT__COPY_IN_REQUEST__INIT;
        Plagent__CopyOutRequest op_out = PLAGENT__COPY_OUT_REQUEST__INIT;
        Plagent__Request req = PLAGENT__REQUEST__INIT;
        if (in) {
                op_in.path = (char *) path;
                op_in.channel = ch->id;
                req.op_case = PLAGENT__REQUEST__OP_COPY_IN;
                req.copy_in = &op_in;
        } else {
                op_out.path = (char *) path;
                op_out.channel = ch->id;
                req.op_case = PLAGENT__REQUEST__OP_COPY_OUT;
                req.copy_out = &op_out;
        }

        Pending p;
        r = request_begin(c, &p, name, &req, &ch->cond, timeout_ms, deadline, err);
        if (r < 0) {
                channel_retire(c, ch);
                return r;
        }
        _cleanup_error_ Error *stream_err = NULL;
        _cleanup_response_ Plagent__Response *resp = NULL;
        int sr = in ? copy_in_stream(c, ch, fd, deadline, timeout_ms, &p, &stream_err)
                    : copy_out_stream(c, ch, fd, deadline, timeout_ms, &p, &stream_err);
        r = stream_finish(c, ch, &p, sr, &stream_err, deadline, &resp, err);
        channel_retire(c, ch);
        if (r < 0)
                return r;
        copy_stats_from(ret, resp);
        return 0;
}

int agent_client_copy_in(AgentClient *c, const char *path, int tar_fd, AgentCopyStats *ret, int timeout_ms,
                         Error **err) {
        return copy_run(c, true, path, tar_fd, ret, timeout_ms, err);
}

int agent_client_copy_out(AgentClient *c, const char *path, int out_fd, AgentCopyStats *ret, int timeout_ms,
                          Error **err) {
        return copy_run(c, false, path, out_fd, ret, timeout_ms, err);
}
