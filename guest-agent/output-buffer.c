/* output-buffer.c: output of processes that nobody reads, and re-attaching
 * a session to it.
 *
 * Output the host asked for (a non-zero channel at exec) belongs to the
 * process, not to the session: when the session that read it ends, resyncs
 * or resets the channel, the stream is unbound and its bytes go into a ring
 * (AGENT_OUTPUT_BUFFER_MAX per process, AGENT_OUTPUT_BUFFER_TOTAL for the
 * agent) that drops its oldest bytes when full and counts them, so the
 * process never blocks on a pipe nobody drains. An attach binds the stream
 * to a channel of the asking session: the ring is sent first, with the usual
 * credit, and only once it is empty is the pipe read again, so the bytes
 * arrive in order; EOF follows the last of them. Rings are allocated on
 * demand and freed as soon as they are empty, so attached streams cost
 * nothing here. */
#include "guest-agent/agent.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/log.h"

/* ---- the ring ------------------------------------------------------------ */

/* Moves the ring into a buffer of cap bytes (>= len), oldest byte first. */
static int ring_resize(Agent *a, OutputRing *r, size_t cap) {
        uint8_t *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        size_t first = r->len ? MIN(r->len, r->cap - r->head) : 0;
        if (first)
                memcpy(buf, r->buf + r->head, first);
        if (r->len > first)
                memcpy(buf + first, r->buf, r->len - first);
        free(r->buf);
        a->output_buffered = a->output_buffered - r->cap + cap;
        r->buf = buf;
        r->cap = cap;
        r->head = 0;
        return 0;
}

/* Grows r towards need bytes, within limit and the agent's total. */
static void ring_grow(Agent *a, OutputRing *r, size_t need, size_t limit) {
        if (need <= r->cap || r->cap >= limit)
                return;
        size_t cap = MIN(MAX(MAX(r->cap * 2, need), (size_t) AGENT_OUTPUT_BUFFER_MIN), limit);
        size_t others = a->output_buffered - r->cap;
        if (others + cap > AGENT_OUTPUT_BUFFER_TOTAL)
                cap = others < AGENT_OUTPUT_BUFFER_TOTAL ? AGENT_OUTPUT_BUFFER_TOTAL - others : 0;
        if (cap > r->cap && ring_resize(a, r, cap) < 0)
                log_warning("out of memory buffering process output: dropping the oldest bytes");
}

static void ring_drop_oldest(OutputRing *r, size_t n) {
        r->head = (r->head + n) % r->cap;
        r->len -= n;
        r->dropped += n;
}

void output_ring_write(Agent *a, OutputRing *r, size_t limit, const uint8_t *data, size_t n) {
        ring_grow(a, r, r->len + n, limit);
        if (n >= r->cap) { /* only the newest cap bytes of data survive */
                r->dropped += r->len + (n - r->cap);
                data += n - r->cap;
                n = r->cap;
                r->head = r->len = 0;
        } else if (r->len + n > r->cap)
                ring_drop_oldest(r, r->len + n - r->cap);
        if (n == 0)
                return;
        size_t tail = (r->head + r->len) % r->cap;
        size_t first = MIN(n, r->cap - tail);
        memcpy(r->buf + tail, data, first);
        memcpy(r->buf, data + first, n - first);
        r->len += n;
}

size_t output_ring_peek(const OutputRing *r, const uint8_t **ret) {
        if (r->len == 0)
                return 0;
        *ret = r->buf + r->head;
        return MIN(r->len, r->cap - r->head);
}

void output_ring_free(Agent *a, OutputRing *r) {
        free(r->buf);
        a->output_buffered -= r->cap;
        *r = (OutputRing){.dropped = r->dropped};
}

void output_ring_consume(Agent *a, OutputRing *r, size_t n) {
        r->head = (r->head + n) % r->cap;
        r->len -= n;
        if (r->len == 0)
                output_ring_free(a, r);
}

/* ---- streams ------------------------------------------------------------- */

void process_unbind_output(Agent *a, Process *p, StreamIndex idx) {
        Stream *st = &p->streams[idx];
        st->channel = 0;
        st->session = NULL;
        if (!st->captured)
                st->discard = true; /* a copy helper's archive: nobody can take it up */
}

/* Whether stream st is still delivering to a bound channel. */
static bool stream_bound_busy(const Stream *st) {
        return st->channel && !st->eof_sent;
}

static int attach_check(Process *p, StreamIndex idx, const char *name, Error **err) {
        const Stream *st = &p->streams[idx];
        if (!st->captured)
                return error_set(err, EINVAL, "attach: the %s of process %u was not captured", name, p->id);
        if (stream_bound_busy(st))
                return error_set(err, EBUSY, "attach: the %s of process %u is already attached to a reader", name,
                                 p->id);
        return 0;
}

int process_attach(Agent *a, Session *s, Process *p, uint32_t stdout_channel, uint32_t stderr_channel,
                   uint64_t ret_dropped[2], Error **err) {
        uint32_t channels[_STREAM_MAX] = {0, stdout_channel, stderr_channel};
        static const char *const names[_STREAM_MAX] = {"stdin", "stdout", "stderr"};
        int r;
        if (p->tty && stderr_channel)
                return error_set(err, EINVAL, "attach: process %u has a terminal, which has one output (stdout)", p->id);
        for (int i = STREAM_STDOUT; i < _STREAM_MAX; i++)
                if (channels[i] && (r = attach_check(p, (StreamIndex) i, names[i], err)) < 0)
                        return r;
        for (int i = STREAM_STDOUT; i < _STREAM_MAX; i++) {
                Stream *st = &p->streams[i];
                ret_dropped[i - STREAM_STDOUT] = channels[i] ? st->ring.dropped : 0;
                if (!channels[i])
                        continue;
                st->session = s;
                st->channel = channels[i];
                st->send_credit = session_peer_window(s);
                st->eof_sent = false;
                st->ring.dropped = 0;
                log_debug("process %u: %s attached to channel %u with %zu bytes buffered", p->id, names[i],
                          channels[i], st->ring.len);
        }
        return 0;
}

/* Sends what st's ring holds as far as credit and the session's queue
 * allow; then EOF, once the stream is finished and the ring empty. */
static void stream_pump(Agent *a, Stream *st) {
        while (st->ring.len > 0 && st->send_credit > 0 && session_can_take_output(st->session)) {
                const uint8_t *data = NULL;
                size_t n = MIN(output_ring_peek(&st->ring, &data), (size_t) PL_DATA_CHUNK);
                n = (size_t) MIN((uint64_t) n, st->send_credit);
                if (session_send_data(st->session, st->channel, data, n, false) < 0)
                        return;
                st->send_credit -= n;
                output_ring_consume(a, &st->ring, n);
        }
        if (st->ring.len == 0 && !st->open && session_send_data(st->session, st->channel, NULL, 0, true) >= 0)
                st->eof_sent = true;
}

void process_pump_output(Agent *a) {
        for (Process *p = a->processes; p; p = p->next)
                for (int i = STREAM_STDOUT; i < _STREAM_MAX; i++) {
                        Stream *st = &p->streams[i];
                        if (st->session && stream_bound_busy(st) && (st->ring.len > 0 || !st->open))
                                stream_pump(a, st);
                }
}
