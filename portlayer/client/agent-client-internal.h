/* agent-client-internal.h: state shared by the three files of the agent
 * client, private to them.
 *
 * - agent-client.c: the connection (handshake, reader thread, frame writes,
 *   broken state) and the request machinery (ids, pending entries, waits);
 * - agent-channel.c: data channels (receive buffers, credit both ways, EOF,
 *   RESET) and the streaming calls built on them (process stdio, copy-in/out);
 * - agent-ops.c: the one-shot operations (ping, exec, wait, stat...).
 *
 * Locking: one mutex (AgentClient.lock) guards every field below except the
 * ones marked otherwise; it is held only briefly and never across I/O. Frame
 * writes are serialized by write_lock, which is taken without holding lock.
 * All condition variables use lock and CLOCK_MONOTONIC. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/proto/wire.h"
#include "portlayer/client/agent-client.h"

#define AGENT_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define AGENT_DEFAULT_REQUEST_TIMEOUT_MS 30000
#define AGENT_MIN_WINDOW (4u * 1024u)
#define AGENT_MESSAGE_MAX 1024u          /* longest agent error message we keep */
#define AGENT_SOFTWARE_MAX 128u
#define AGENT_RETIRED_CHANNELS 4096u     /* closed channels whose late frames are dropped */
#define AGENT_ABANDONED_REQUESTS 4096u   /* timed-out requests whose late answers are dropped */
#define AGENT_MAX_ARGS 4096u
#define AGENT_MAX_PROCESSES 4096u

typedef struct Channel {
        uint32_t id;
        const char *name;       /* "stdin", "stdout", "copy-in"...: for messages */
        bool inbound;           /* agent -> host (stdout, stderr, copy-out) */
        pthread_cond_t cond;    /* data, credit, EOF, RESET, a linked answer, a break */

        /* inbound: received bytes not yet read live in buf[start, end). The
         * invariant end - start + peer_credit + unreturned == window holds, so
         * the buffer never exceeds the window we granted. */
        uint8_t *buf;
        size_t start, end, cap;
        uint32_t window;
        uint32_t peer_credit;   /* bytes the agent may still send */
        uint32_t unreturned;    /* bytes read but not yet given back as credit */
        bool eof;               /* inbound: the agent sent EOF; outbound: we did */

        /* outbound */
        uint32_t send_credit;   /* bytes we may still send */

        int reset_code;         /* the agent reset the channel: positive errno */
        char *reset_message;

        struct Channel *next;
} Channel;

/* One request waiting for its RESPONSE; lives on the caller's stack. */
typedef struct Pending {
        uint32_t id;
        const char *op;
        int timeout_ms;
        pthread_cond_t own_cond;
        pthread_cond_t *cond;   /* own_cond, or a channel's for streaming calls */
        bool done;              /* set by the reader, which also unlinks the entry */
        Plagent__Response *response;
        int reset_code;         /* the agent reset the request instead of answering */
        char *reset_message;
        struct Pending *next;
} Pending;

struct AgentClient {
        int fd;                 /* non-blocking; read by the reader thread only */
        bool fd_is_socket;
        int wake_fd;            /* eventfd: stops the reader thread */
        FrameReader *reader;    /* the handshake, then the reader thread only */
        pthread_t thread;
        bool thread_started;

        int request_timeout_ms;
        uint32_t window;        /* credit we grant per inbound channel */

        /* From the agent's HELLO; constant after the handshake. */
        uint32_t peer_window;
        uint32_t peer_max_frame;
        uint64_t peer_instance;
        char peer_software[AGENT_SOFTWARE_MAX];

        pthread_mutex_t write_lock; /* serializes frames on fd */
        pthread_mutex_t lock;

        uint32_t next_id;       /* request ids and channel ids share one counter */
        Pending *pending;
        Channel *channels;
        uint32_t retired[AGENT_RETIRED_CHANNELS];
        size_t retired_pos;
        uint32_t abandoned[AGENT_ABANDONED_REQUESTS];
        size_t abandoned_pos;

        int broken;             /* positive errno once the connection broke */
        char *broken_message;
};

struct AgentProcess {
        AgentClient *client;
        uint32_t process_id;
        int pid;
        Channel *in, *out, *err; /* NULL when not opened */
};

/* --- agent-client.c --- */

/* Copies at most size - 1 bytes of src (NULL = "") into dst. With sanitize,
 * control characters become '?' (guest strings end up on terminals). */
void agent_copy_string(char *dst, size_t size, const char *src, bool sanitize);
/* Maps a code read from the agent to a positive errno: 1..4095, else EPROTO. */
int agent_errno(int32_t code);
/* Whether id (never 0) is in a ring of recently closed ids. */
bool agent_id_in_ring(const uint32_t *ring, size_t n, uint32_t id);
/* "DATA", "RESET"...: frame type names for protocol messages. */
const char *agent_frame_name(uint8_t type);

int agent_cond_init(pthread_cond_t *cond);
/* Waits on cond (with c->lock held) until deadline: 0, or -ETIMEDOUT. */
int agent_cond_wait(AgentClient *c, pthread_cond_t *cond, uint64_t deadline);

/* With c->lock held: sets *err from the broken state and returns its code. */
int client_fail_locked(AgentClient *c, Error **err);
/* With c->lock held: marks the connection broken (the first reason wins),
 * wakes every waiter and stops the reader. Returns -code. */
int client_break_locked(AgentClient *c, int code, const char *fmt, ...) _printf_(3, 4);
int client_break(AgentClient *c, int code, const char *fmt, ...) _printf_(3, 4);

/* A fresh id, unique among live requests and channels, never 0. */
uint32_t client_new_id_locked(AgentClient *c);
/* A deadline for writing one frame: deadline, or request_timeout_ms from now
 * when deadline is infinite. */
uint64_t client_write_deadline(AgentClient *c, uint64_t deadline);

/* Builds and writes one frame. A write that fails or times out after part of
 * the frame went out breaks the connection. With abortable, a timeout before
 * the first byte returns -ETIMEDOUT and leaves the connection usable. */
int client_send(AgentClient *c, FrameType type, uint32_t channel, uint8_t flags, const ProtobufCMessage *msg,
                const void *data, size_t len, uint64_t deadline, bool abortable, Error **err);

/* Registers p (cond = NULL: its own condvar) and sends the request. On error
 * nothing stays registered. */
int request_begin(AgentClient *c, Pending *p, const char *op, Plagent__Request *req, pthread_cond_t *cond,
                  int timeout_ms, uint64_t deadline, Error **err);
/* Waits for p's answer until deadline and always releases p. Returns 0 with
 * *ret (free with wire_message_free) when the agent answered error_code 0;
 * else the agent's error, the reset, the break, or -ETIMEDOUT. */
int request_finish(AgentClient *c, Pending *p, uint64_t deadline, Plagent__Response **ret, Error **err);
/* request_begin + request_finish; timeout_ms < 0 = no deadline. */
int agent_call(AgentClient *c, const char *op, Plagent__Request *req, int timeout_ms, Plagent__Response **ret,
               Error **err);

static inline void response_freep(Plagent__Response **r) {
        if (*r)
                wire_message_free(&(*r)->base);
}
#define _cleanup_response_ _cleanup_(response_freep)

/* --- agent-channel.c --- */

int channel_open(AgentClient *c, bool inbound, const char *name, Channel **ret, Error **err);
/* Forgets a channel: its id joins the retired ring so late frames are dropped. */
void channel_retire(AgentClient *c, Channel *ch);

/* Reader thread, c->lock held: frames for data channels. Return 0, or a
 * negative errno after breaking the connection (protocol violation). */
int channel_on_data_locked(AgentClient *c, const FrameHeader *h, const uint8_t *payload);
int channel_on_credit_locked(AgentClient *c, const FrameHeader *h, const uint8_t *payload);
/* Returns true when id names a channel, open (reset recorded) or recently
 * closed (dropped); false when it may name a request. */
bool channel_on_reset_locked(AgentClient *c, uint32_t id, int code, const char *message);
/* Wakes every channel waiter (the connection broke). */
void channels_wake_all_locked(AgentClient *c);
bool channel_is_retired_locked(AgentClient *c, uint32_t id);
