/* client-fake.h: a scripted FAKE agent for the agent client's tests
 * (test-agent-client-*.c).
 *
 * Each test connects the client to one end of a socketpair; a thread plays the
 * agent on the other end, built only from common/proto/frame and wire, and
 * follows a script. The fake produces what the real agent never does: stale
 * bytes before the handshake, silence, late answers, oversize or malformed
 * frames, garbage protobuf, data beyond credit, huge strings and lists. Every
 * case must end in a clean error, never a crash or a hang.
 *
 * The fake thread never calls cmocka (which longjmps): it records its first
 * failure in Fake.failure, and fake_finish() asserts on it after the join. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/error.h"
#include "common/proto/frame.h"
#include "common/proto/wire.h"
#include "portlayer/client/agent-client.h"

#define FAKE_IO_TIMEOUT_MS 10000
#define FAKE_INSTANCE 0x1234abcdull
#define FAKE_SOFTWARE "fake-agent 1.0"

typedef struct Fake Fake;
typedef void (*FakeScript)(Fake *f);

struct Fake {
        int fd;
        FrameReader *reader;
        uint8_t *payload;         /* the last frame's payload (fake_next) */
        FakeScript script;
        pthread_t thread;
        const void *param;        /* script input */

        uint32_t window;          /* announced in our HELLO; 0 = default */
        uint32_t version;         /* announced version; 0 = PL_PROTOCOL_VERSION */
        uint32_t client_window;   /* from the client's HELLO */
        uint64_t nonce;

        char failure[512];        /* first failure, empty when none */
        atomic_bool flag;         /* a script milestone the test waits for */
        atomic_uint credit_total; /* CREDIT bytes received by fake_stream */
        atomic_uint credit_frames;
        atomic_uint data_total;   /* DATA bytes received by fake_serve */

        /* connect_unix test */
        const char *path;
};

/* Records the fake's first failure (see FAKE_CHECK). */
void fake_fail(Fake *f, int line, const char *what);
/* In a script: records the failed condition and returns from the script. */
#define FAKE_CHECK(f, cond)                              \
        do {                                             \
                if (!(cond)) {                           \
                        fake_fail((f), __LINE__, #cond); \
                        return;                          \
                }                                        \
        } while (0)

/* --- the fake's side (its thread) --- */

bool fake_write(Fake *f, const void *buf, size_t len);
bool fake_send(Fake *f, FrameType type, uint32_t channel, uint8_t flags, const ProtobufCMessage *msg,
               const void *data, size_t len);
/* A bare frame header announcing length bytes that never come. */
bool fake_send_header(Fake *f, uint32_t length, uint32_t channel, uint8_t type);
/* A sync marker and a HELLO (version f->version, window f->window). */
bool fake_send_hello(Fake *f, uint64_t nonce);
/* Returns 1 with the next frame (payload in f->payload), 0 at EOF, -ETIMEDOUT. */
int fake_next(Fake *f, FrameHeader *h, int timeout_ms);
/* Like fake_next, skipping frames of other types. */
int fake_next_type(Fake *f, FrameType type, FrameHeader *h, int timeout_ms);
/* Reads the client's HELLO; answers it unless answer is false. */
bool fake_handshake(Fake *f, bool answer);
/* Reads the next REQUEST (skipping data and credit); NULL on EOF or timeout. */
Plagent__Request *fake_request(Fake *f, uint32_t *ret_id, int timeout_ms);
bool fake_respond(Fake *f, uint32_t id, Plagent__Response *resp);
bool fake_answer_ping(Fake *f, uint32_t id, const Plagent__Request *req);
bool fake_answer_error(Fake *f, uint32_t id, int code, const char *message);
bool fake_send_reset(Fake *f, uint32_t id, int code, const char *message);
/* Answers pings, counts DATA, ignores the rest, until the client hangs up. */
void fake_serve(Fake *f);
/* Answers an exec request with process 42 (pid 4242); returns its channels. */
bool fake_answer_exec(Fake *f, uint32_t *in, uint32_t *out, uint32_t *err);
/* The byte at offset i of every test stream. */
uint8_t pattern(size_t i);
/* Streams total pattern bytes on channel, honouring the client's credit, then
 * EOF. Sets f->flag the first time it runs out of credit. */
bool fake_stream(Fake *f, uint32_t channel, size_t total);
/* Waits (in the fake's thread) until the test sets f->flag. */
bool fake_wait_flag(Fake *f);
/* Script: shakes hands, then fails on any request until the client hangs up. */
void script_no_requests(Fake *f);

/* --- the test's side --- */

/* The fake's thread: runs f->script, then closes f->fd. */
void *fake_main(void *userdata);
/* Starts script on one end of a socketpair; the other end is the client's. */
void fake_start(Fake *f, FakeScript script, int *ret_client_fd);
/* fake_start() and agent_client_new_fd() (fails the test on error). */
AgentClient *fake_connect(Fake *f, FakeScript script, const AgentClientOptions *opts);
/* Joins the fake's thread and fails the test with its failure, if any. */
void fake_finish(Fake *f);
uint64_t elapsed_ms(uint64_t start);
/* Fails unless r is -code and the error's text contains substring. */
void assert_error(int r, int code, const Error *e, const char *substring);
/* Waits up to 5 s for f->flag. */
void wait_flag(Fake *f);
/* Waits up to 5 s for the client to be broken. */
void wait_broken(AgentClient *c);
void ping_ok(AgentClient *c);
