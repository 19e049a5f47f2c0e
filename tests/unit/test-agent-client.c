/* test-agent-client.c: the agent client against a scripted FAKE agent.
 *
 * Each test connects the client to one end of a socketpair; a thread plays the
 * agent on the other end, built only from common/frame and common/wire, and
 * follows a script. The fake produces what the real agent never does: stale
 * bytes before the handshake, silence, late answers, oversize or malformed
 * frames, garbage protobuf, data beyond credit, huge strings and lists. Every
 * case must end in a clean error, never a crash or a hang.
 *
 * The fake thread never calls cmocka (which longjmps): it records its first
 * failure in Fake.failure, and fake_finish() asserts on it after the join. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/proto/frame.h"
#include "common/base/io-util.h"
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

static void fake_fail(Fake *f, int line, const char *what) {
        if (f->failure[0] == '\0')
                snprintf(f->failure, sizeof f->failure, "fake agent, line %d: %s", line, what);
}

#define FAKE_CHECK(f, cond)                              \
        do {                                             \
                if (!(cond)) {                           \
                        fake_fail((f), __LINE__, #cond); \
                        return;                          \
                }                                        \
        } while (0)

/* --- the fake's I/O --- */

static bool fake_write(Fake *f, const void *buf, size_t len) {
        const uint8_t *p = buf;
        while (len > 0) {
                ssize_t n = send(f->fd, p, len, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return false;
                p += n;
                len -= (size_t) n;
        }
        return true;
}

static bool fake_send(Fake *f, FrameType type, uint32_t channel, uint8_t flags, const ProtobufCMessage *msg,
                      const void *data, size_t len) {
        _cleanup_free_ uint8_t *frame = NULL;
        size_t frame_len;
        if (wire_frame_build(&frame, &frame_len, type, channel, flags, msg, data, len) < 0)
                return false;
        return fake_write(f, frame, frame_len);
}

static bool fake_send_header(Fake *f, uint32_t length, uint32_t channel, uint8_t type) {
        uint8_t hdr[PL_FRAME_HEADER_SIZE];
        FrameHeader h = {.length = length, .channel = channel, .type = type};
        frame_header_encode(&h, hdr);
        return fake_write(f, hdr, sizeof hdr);
}

static bool fake_send_hello(Fake *f, uint64_t nonce) {
        Plagent__Hello hello = PLAGENT__HELLO__INIT;
        hello.version_min = hello.version_max = f->version ? f->version : PL_PROTOCOL_VERSION;
        hello.nonce = nonce;
        hello.software = (char *) FAKE_SOFTWARE;
        hello.instance = FAKE_INSTANCE;
        hello.window = f->window;
        hello.max_frame = PL_FRAME_MAX_PAYLOAD;
        return fake_write(f, pl_sync_marker, PL_SYNC_SIZE) && fake_send(f, FRAME_HELLO, 0, 0, &hello.base, NULL, 0);
}

/* Returns 1 with the next frame (payload in f->payload), 0 at EOF, -ETIMEDOUT. */
static int fake_next(Fake *f, FrameHeader *h, int timeout_ms) {
        uint64_t deadline = deadline_after_ms(timeout_ms);
        for (;;) {
                FrameEvent ev;
                int r = frame_reader_next(f->reader, &ev, NULL);
                if (r > 0 && ev.type == FRAME_EVENT_FRAME) {
                        free(f->payload);
                        f->payload = malloc(ev.header.length + 1u);
                        memcpy(f->payload, ev.payload, ev.header.length);
                        *h = ev.header;
                        return 1;
                }
                if (r > 0)
                        continue;
                int ms = deadline_poll_ms(deadline);
                if (ms == 0)
                        return -ETIMEDOUT;
                struct pollfd pfd = {.fd = f->fd, .events = POLLIN};
                if (poll(&pfd, 1, ms) <= 0)
                        continue;
                ssize_t n = frame_reader_read_fd(f->reader, f->fd);
                if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR))
                        return 0;
        }
}

/* Like fake_next, skipping frames of other types. */
static int fake_next_type(Fake *f, FrameType type, FrameHeader *h, int timeout_ms) {
        for (;;) {
                int r = fake_next(f, h, timeout_ms);
                if (r <= 0 || h->type == type)
                        return r;
        }
}

/* Reads the client's HELLO; answers it unless answer is false. */
static bool fake_handshake(Fake *f, bool answer) {
        FrameHeader h;
        if (fake_next_type(f, FRAME_HELLO, &h, FAKE_IO_TIMEOUT_MS) != 1)
                return false;
        Plagent__Hello *hello =
                (Plagent__Hello *) wire_unpack(&plagent__hello__descriptor, f->payload, h.length, NULL);
        if (!hello)
                return false;
        f->nonce = hello->nonce;
        f->client_window = hello->window;
        wire_message_free(&hello->base);
        return !answer || fake_send_hello(f, f->nonce);
}

/* Reads the next REQUEST (skipping data and credit); NULL on EOF or timeout. */
static Plagent__Request *fake_request(Fake *f, uint32_t *ret_id, int timeout_ms) {
        FrameHeader h;
        if (fake_next_type(f, FRAME_REQUEST, &h, timeout_ms) != 1)
                return NULL;
        *ret_id = h.channel;
        return (Plagent__Request *) wire_unpack(&plagent__request__descriptor, f->payload, h.length, NULL);
}

static bool fake_respond(Fake *f, uint32_t id, Plagent__Response *resp) {
        return fake_send(f, FRAME_RESPONSE, id, 0, &resp->base, NULL, 0);
}

static bool fake_answer_ping(Fake *f, uint32_t id, const Plagent__Request *req) {
        Plagent__PingResponse pong = PLAGENT__PING_RESPONSE__INIT;
        pong.payload = req->ping->payload;
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        resp.result_case = PLAGENT__RESPONSE__RESULT_PING;
        resp.ping = &pong;
        return fake_respond(f, id, &resp);
}

static bool fake_answer_error(Fake *f, uint32_t id, int code, const char *message) {
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        resp.error_code = code;
        resp.error_message = (char *) message;
        return fake_respond(f, id, &resp);
}

static bool fake_send_reset(Fake *f, uint32_t id, int code, const char *message) {
        Plagent__ChannelReset rst = PLAGENT__CHANNEL_RESET__INIT;
        rst.code = code;
        rst.message = (char *) message;
        return fake_send(f, FRAME_RESET, id, 0, &rst.base, NULL, 0);
}

/* Answers pings, counts DATA, ignores the rest, until the client hangs up. */
static void fake_serve(Fake *f) {
        for (;;) {
                FrameHeader h;
                int r = fake_next(f, &h, FAKE_IO_TIMEOUT_MS);
                FAKE_CHECK(f, r >= 0);
                if (r == 0)
                        return;
                if (h.type == FRAME_DATA)
                        atomic_fetch_add(&f->data_total, h.length);
                if (h.type != FRAME_REQUEST)
                        continue;
                Plagent__Request *req =
                        (Plagent__Request *) wire_unpack(&plagent__request__descriptor, f->payload, h.length, NULL);
                FAKE_CHECK(f, req && req->op_case == PLAGENT__REQUEST__OP_PING);
                bool ok = fake_answer_ping(f, h.channel, req);
                wire_message_free(&req->base);
                FAKE_CHECK(f, ok);
        }
}

/* Answers an exec request with process 42; returns its channels. */
static bool fake_answer_exec(Fake *f, uint32_t *in, uint32_t *out, uint32_t *err) {
        uint32_t id;
        Plagent__Request *req = fake_request(f, &id, FAKE_IO_TIMEOUT_MS);
        if (!req || req->op_case != PLAGENT__REQUEST__OP_EXEC) {
                if (req)
                        wire_message_free(&req->base);
                return false;
        }
        *in = req->exec->stdin_channel;
        *out = req->exec->stdout_channel;
        *err = req->exec->stderr_channel;
        wire_message_free(&req->base);

        Plagent__ExecResponse e = PLAGENT__EXEC_RESPONSE__INIT;
        e.process_id = 42;
        e.pid = 4242;
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        resp.result_case = PLAGENT__RESPONSE__RESULT_EXEC;
        resp.exec = &e;
        return fake_respond(f, id, &resp);
}

static uint8_t pattern(size_t i) {
        return (uint8_t) (i % 251u);
}

/* Streams total pattern bytes on channel, honouring the client's credit, then
 * EOF. Sets f->flag the first time it runs out of credit. */
static bool fake_stream(Fake *f, uint32_t channel, size_t total) {
        uint8_t buf[8192];
        size_t sent = 0;
        uint64_t credit = f->client_window;
        while (sent < total) {
                if (credit == 0) {
                        atomic_store(&f->flag, true);
                        FrameHeader h;
                        uint32_t n;
                        if (fake_next_type(f, FRAME_CREDIT, &h, FAKE_IO_TIMEOUT_MS) != 1 ||
                            wire_credit_decode(f->payload, h.length, &n) < 0 || h.channel != channel)
                                return false;
                        atomic_fetch_add(&f->credit_total, n);
                        atomic_fetch_add(&f->credit_frames, 1);
                        credit += n;
                        continue;
                }
                size_t n = MIN(MIN((size_t) credit, total - sent), sizeof buf);
                for (size_t i = 0; i < n; i++)
                        buf[i] = pattern(sent + i);
                if (!fake_send(f, FRAME_DATA, channel, 0, NULL, buf, n))
                        return false;
                sent += n;
                credit -= n;
        }
        return fake_send(f, FRAME_DATA, channel, FRAME_FLAG_EOF, NULL, NULL, 0);
}

/* Waits (in the fake's thread) until the test sets f->flag. */
static bool fake_wait_flag(Fake *f) {
        uint64_t deadline = deadline_after_ms(FAKE_IO_TIMEOUT_MS);
        while (!atomic_load(&f->flag)) {
                if (now_usec() >= deadline)
                        return false;
                usleep(1000);
        }
        return true;
}

/* Shakes hands, then fails on any request until the client hangs up. */
static void script_no_requests(Fake *f) {
        FAKE_CHECK(f, fake_handshake(f, true));
        FrameHeader h;
        int r;
        while ((r = fake_next(f, &h, FAKE_IO_TIMEOUT_MS)) > 0)
                FAKE_CHECK(f, h.type != FRAME_REQUEST);
        FAKE_CHECK(f, r == 0);
}

/* --- the test side --- */

static void *fake_main(void *userdata) {
        Fake *f = userdata;
        f->script(f);
        if (f->fd >= 0)
                close(f->fd);
        return NULL;
}

static void fake_start(Fake *f, FakeScript script, int *ret_client_fd) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        f->fd = sv[1];
        f->script = script;
        assert_int_equal(frame_reader_new(&f->reader, false), 0);
        assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
        *ret_client_fd = sv[0];
}

static AgentClient *fake_connect(Fake *f, FakeScript script, const AgentClientOptions *opts) {
        _cleanup_error_ Error *e = NULL;
        AgentClient *c = NULL;
        int fd;
        fake_start(f, script, &fd);
        int r = agent_client_new_fd(&c, fd, opts, &e);
        if (r < 0)
                fail_msg("connect: %s", error_text(e));
        return c;
}

static void fake_finish(Fake *f) {
        assert_int_equal(pthread_join(f->thread, NULL), 0);
        frame_reader_free(f->reader);
        free(f->payload);
        if (f->failure[0])
                fail_msg("%s", f->failure);
}

static uint64_t elapsed_ms(uint64_t start) {
        return (now_usec() - start) / USEC_PER_MSEC;
}

static void assert_error(int r, int code, const Error *e, const char *substring) {
        if (r != -code || !strstr(error_text(e), substring))
                fail_msg("expected -%d with \"%s\", got %d: %s", code, substring, r, error_text(e));
}

static void wait_flag(Fake *f) {
        uint64_t start = now_usec();
        while (!atomic_load(&f->flag)) {
                assert_true(elapsed_ms(start) < 5000);
                usleep(1000);
        }
}

static void wait_broken(AgentClient *c) {
        uint64_t start = now_usec();
        while (agent_client_is_alive(c)) {
                assert_true(elapsed_ms(start) < 5000);
                usleep(1000);
        }
}

static void ping_ok(AgentClient *c) {
        _cleanup_error_ Error *e = NULL;
        int r = agent_client_ping(c, 5000, &e);
        if (r < 0)
                fail_msg("ping: %s", error_text(e));
}

/* --- handshake --- */

static void script_stale_handshake(Fake *f) {
        /* Bytes of a previous session, already in the port before we attach. */
        static const uint8_t garbage[] = {0x00, 0xff, 'P', 'L', 0x17, 0xff, 0x00, 0x00, 0x10, 0x00};
        FAKE_CHECK(f, fake_write(f, garbage, sizeof garbage));
        FAKE_CHECK(f, fake_send_hello(f, 0x1111));
        FAKE_CHECK(f, fake_send(f, FRAME_DATA, 9, 0, NULL, "old output", 10));
        FAKE_CHECK(f, fake_handshake(f, false));

        /* An old answer, a corrupt header, a sync followed by an oversize
         * header and one by a truncated frame (its length would swallow what
         * follows), then ours: all in one write, so all buffered at once. */
        FAKE_CHECK(f, fake_send_hello(f, f->nonce ^ 1));
        static const uint8_t bad_header[PL_FRAME_HEADER_SIZE] = {0, 0, 0, 4, 0, 0, 0, 1, 4, 0, 0x5a, 0x5a};
        FAKE_CHECK(f, fake_write(f, bad_header, sizeof bad_header));
        FAKE_CHECK(f, fake_write(f, pl_sync_marker, PL_SYNC_SIZE));
        FAKE_CHECK(f, fake_send_header(f, 0x7fffffff, 3, FRAME_DATA));
        FAKE_CHECK(f, fake_write(f, pl_sync_marker, PL_SYNC_SIZE));
        FAKE_CHECK(f, fake_send_header(f, 500000, 0, FRAME_HELLO));
        FAKE_CHECK(f, fake_write(f, pl_sync_marker, PL_SYNC_SIZE));
        FAKE_CHECK(f, fake_send_header(f, 5000, 0, FRAME_HELLO));
        FAKE_CHECK(f, fake_write(f, "trunc", 5));
        FAKE_CHECK(f, fake_send_hello(f, f->nonce));
        fake_serve(f);
}

static void test_handshake_skips_stale(void **state) {
        Fake f = {0};
        AgentClient *c = fake_connect(&f, script_stale_handshake, NULL);
        assert_string_equal(agent_client_peer_software(c), FAKE_SOFTWARE);
        assert_int_equal(agent_client_peer_instance(c), FAKE_INSTANCE);
        ping_ok(c);
        agent_client_free(c);
        fake_finish(&f);
}

static void script_silent(Fake *f) {
        FAKE_CHECK(f, fake_handshake(f, false));
        FrameHeader h;
        while (fake_next(f, &h, FAKE_IO_TIMEOUT_MS) > 0)
                ;
}

static void test_handshake_timeout(void **state) {
        Fake f = {0};
        _cleanup_error_ Error *e = NULL;
        AgentClient *c = NULL;
        AgentClientOptions opts = {.handshake_timeout_ms = 500};
        int fd;
        fake_start(&f, script_silent, &fd);
        uint64_t start = now_usec();
        int r = agent_client_new_fd(&c, fd, &opts, &e);
        assert_error(r, ETIMEDOUT, e, "handshake");
        assert_true(elapsed_ms(start) >= 450);
        assert_true(elapsed_ms(start) < 500 + 1000);
        assert_null(c);
        fake_finish(&f);
}

static void script_wrong_version(Fake *f) {
        f->version = 7;
        FAKE_CHECK(f, fake_handshake(f, true));
        fake_serve(f);
}

static void test_handshake_version_mismatch(void **state) {
        Fake f = {0};
        _cleanup_error_ Error *e = NULL;
        AgentClient *c = NULL;
        int fd;
        fake_start(&f, script_wrong_version, &fd);
        int r = agent_client_new_fd(&c, fd, NULL, &e);
        assert_error(r, EPROTONOSUPPORT, e, "versions 7..7");
        fake_finish(&f);
}

static void script_flood(Fake *f) {
        FAKE_CHECK(f, fake_handshake(f, false));
        uint8_t *junk = calloc(1, 1024 * 1024);
        FAKE_CHECK(f, junk);
        for (int i = 0; i < 20 && fake_write(f, junk, 1024 * 1024); i++)
                ;
        free(junk);
}

static void test_handshake_flood(void **state) {
        Fake f = {0};
        _cleanup_error_ Error *e = NULL;
        AgentClient *c = NULL;
        int fd;
        fake_start(&f, script_flood, &fd);
        int r = agent_client_new_fd(&c, fd, NULL, &e);
        assert_error(r, EPROTO, e, "without answering the handshake");
        fake_finish(&f);
}

/* The socket appears late, and its first connection is never answered (a
 * guest that has not opened its port yet): the client must retry. */
static void script_listen_late(Fake *f) {
        usleep(300 * 1000);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        FAKE_CHECK(f, lfd >= 0);
        FAKE_CHECK(f, bind(lfd, (struct sockaddr *) &sa, sizeof sa) == 0 && listen(lfd, 4) == 0);
        int silent = accept(lfd, NULL, NULL);
        f->fd = accept(lfd, NULL, NULL);
        close(lfd);
        FAKE_CHECK(f, silent >= 0 && f->fd >= 0);
        close(silent);
        FAKE_CHECK(f, fake_handshake(f, true));
        fake_serve(f);
}

static void test_connect_unix_retries(void **state) {
        char dir[] = "/tmp/test-agent-client.XXXXXX";
        assert_non_null(mkdtemp(dir));
        char path[sizeof dir + 16];
        snprintf(path, sizeof path, "%s/agent.sock", dir);

        Fake f = {.fd = -1, .path = path};
        f.script = script_listen_late;
        assert_int_equal(frame_reader_new(&f.reader, false), 0);
        assert_int_equal(pthread_create(&f.thread, NULL, fake_main, &f), 0);

        _cleanup_error_ Error *e = NULL;
        AgentClient *c = NULL;
        AgentClientOptions opts = {.handshake_timeout_ms = 8000};
        uint64_t start = now_usec();
        int r = agent_client_connect_unix(&c, path, &opts, &e);
        if (r < 0)
                fail_msg("connect_unix: %s", error_text(e));
        assert_true(elapsed_ms(start) >= 1000); /* one silent attempt timed out */
        assert_true(elapsed_ms(start) < 4000);
        ping_ok(c);
        agent_client_free(c);
        fake_finish(&f);
        unlink(path);
        rmdir(dir);
}

/* --- requests --- */

static void script_late_answer(Fake *f) {
        FAKE_CHECK(f, fake_handshake(f, true));
        uint32_t id1, id2;
        Plagent__Request *first = fake_request(f, &id1, FAKE_IO_TIMEOUT_MS);
        FAKE_CHECK(f, first);
        Plagent__Request *second = fake_request(f, &id2, FAKE_IO_TIMEOUT_MS);
        bool ok = second && id1 != id2 && fake_answer_ping(f, id1, first) && fake_answer_ping(f, id2, second);
        wire_message_free(&first->base);
        if (second)
                wire_message_free(&second->base);
        FAKE_CHECK(f, ok);
        fake_serve(f);
}

static void test_request_timeout(void **state) {
        Fake f = {0};
        AgentClient *c = fake_connect(&f, script_late_answer, NULL);
        _cleanup_error_ Error *e = NULL;
        uint64_t start = now_usec();
        int r = agent_client_ping(c, 300, &e);
        assert_error(r, ETIMEDOUT, e, "did not answer ping within 300 ms");
        assert_true(elapsed_ms(start) < 300 + 1000);
        assert_true(agent_client_is_alive(c));

        /* The fake answers the abandoned request first: dropped quietly. */
        ping_ok(c);
        assert_true(agent_client_is_alive(c));
        agent_client_free(c);
        fake_finish(&f);
}

static void script_close_mid_request(Fake *f) {
        FAKE_CHECK(f, fake_handshake(f, true));
        uint32_t id;
        Plagent__Request *req = fake_request(f, &id, FAKE_IO_TIMEOUT_MS);
        FAKE_CHECK(f, req);
        wire_message_free(&req->base);
        close(f->fd);
        f->fd = -1;
}

static void test_peer_closes_mid_request(void **state) {
        Fake f = {0};
        AgentClient *c = fake_connect(&f, script_close_mid_request, NULL);
        _cleanup_error_ Error *e = NULL, *e2 = NULL, *e3 = NULL;
        uint64_t start = now_usec();
        int r = agent_client_ping(c, 10000, &e);
        assert_error(r, ECONNRESET, e, "closed the connection");
        assert_true(elapsed_ms(start) < 2000);

        /* Broken: every later call fails fast with the same reason. */
        start = now_usec();
        r = agent_client_ping(c, 10000, &e2);
        assert_error(r, ECONNRESET, e2, "closed the connection");
        assert_true(elapsed_ms(start) < 100);
        assert_false(agent_client_is_alive(c));
        assert_int_equal(agent_client_error(c, &e3), -ECONNRESET);
        agent_client_free(c);
        fake_finish(&f);
}

/* --- hostile frames after a request --- */

typedef struct HostileCase {
        const char *name;
        void (*send)(Fake *f, uint32_t request_id);
        const char *expect;
} HostileCase;

static void hostile_oversize(Fake *f, uint32_t id) {
        (void) fake_send_header(f, 2u * 1024u * 1024u, id, FRAME_RESPONSE);
}

static void hostile_malformed_header(Fake *f, uint32_t id) {
        uint8_t hdr[PL_FRAME_HEADER_SIZE] = {0, 0, 0, 0, 0, 0, 0, 1, FRAME_RESPONSE, 0x80, 0, 0};
        (void) fake_write(f, hdr, sizeof hdr);
}

static void hostile_garbage_response(Fake *f, uint32_t id) {
        static const uint8_t garbage[] = {0x12, 0x7f, 'x', 0xff, 0xff};
        (void) fake_send(f, FRAME_RESPONSE, id, 0, NULL, garbage, sizeof garbage);
}

static void hostile_unknown_type(Fake *f, uint32_t id) {
        (void) fake_send(f, 9, id, 0, NULL, "?", 1);
}

static void hostile_unknown_request(Fake *f, uint32_t id) {
        (void) fake_answer_error(f, id + 1000, EIO, "who asked?");
}

static void hostile_data_unopened(Fake *f, uint32_t id) {
        (void) fake_send(f, FRAME_DATA, id + 77, 0, NULL, "boo", 3);
}

static void hostile_data_channel_zero(Fake *f, uint32_t id) {
        (void) fake_send(f, FRAME_DATA, 0, 0, NULL, "boo", 3);
}

static void hostile_response_zero(Fake *f, uint32_t id) {
        (void) fake_answer_error(f, 0, EIO, "zero");
}

static void hostile_sync(Fake *f, uint32_t id) {
        (void) fake_send_hello(f, 1);
}

static void hostile_request(Fake *f, uint32_t id) {
        Plagent__PingRequest ping = PLAGENT__PING_REQUEST__INIT;
        Plagent__Request req = PLAGENT__REQUEST__INIT;
        req.op_case = PLAGENT__REQUEST__OP_PING;
        req.ping = &ping;
        (void) fake_send(f, FRAME_REQUEST, 5, 0, &req.base, NULL, 0);
}

static void hostile_garbage_reset(Fake *f, uint32_t id) {
        (void) fake_send(f, FRAME_RESET, id, 0, NULL, "\x0a\x05", 2);
}

static const HostileCase hostile_cases[] = {
        {"oversize", hostile_oversize, "exceeds the 1048576 byte limit"},
        {"malformed-header", hostile_malformed_header, "malformed frame header"},
        {"garbage-response", hostile_garbage_response, "undecodable RESPONSE"},
        {"unknown-type", hostile_unknown_type, "unexpected unknown frame (type 9, id "},
        {"unknown-request", hostile_unknown_request, "RESPONSE to unknown request"},
        {"data-unopened", hostile_data_unopened, "which the host never opened"},
        {"data-channel-zero", hostile_data_channel_zero, "DATA on channel 0, which the host never opened"},
        {"response-zero", hostile_response_zero, "RESPONSE to unknown request 0"},
        {"sync-mid-session", hostile_sync, "sync marker in the middle"},
        {"request-from-agent", hostile_request, "unexpected REQUEST frame"},
        {"garbage-reset", hostile_garbage_reset, "undecodable RESET"},
};

static void script_hostile(Fake *f) {
        const HostileCase *hc = f->param;
        FAKE_CHECK(f, fake_handshake(f, true));
        uint32_t id;
        Plagent__Request *req = fake_request(f, &id, FAKE_IO_TIMEOUT_MS);
        FAKE_CHECK(f, req);
        wire_message_free(&req->base);
        hc->send(f, id);
        fake_serve(f);
}

static void test_hostile(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(hostile_cases); i++) {
                const HostileCase *hc = &hostile_cases[i];
                Fake f = {.param = hc};
                AgentClient *c = fake_connect(&f, script_hostile, NULL);
                _cleanup_error_ Error *e = NULL, *e2 = NULL;
                uint64_t start = now_usec();
                int r = agent_client_ping(c, 5000, &e);
                print_message("hostile %s: %s\n", hc->name, error_text(e));
                assert_error(r, EPROTO, e, "agent protocol violation");
                assert_error(r, EPROTO, e, hc->expect);
                assert_true(elapsed_ms(start) < 2000);
                assert_false(agent_client_is_alive(c));
                r = agent_client_ping(c, 5000, &e2);
                assert_error(r, EPROTO, e2, hc->expect);
                agent_client_free(c);
                fake_finish(&f);
        }
}

static void script_bad_answers(Fake *f) {
        FAKE_CHECK(f, fake_handshake(f, true));
        size_t big = 900u * 1024u;
        char *huge = malloc(big + 1);
        FAKE_CHECK(f, huge);
        memset(huge, 'x', big);
        memcpy(huge, "no such file\x1b[2J", 16);
        huge[big] = '\0';

        uint32_t id;
        Plagent__Request *req = fake_request(f, &id, FAKE_IO_TIMEOUT_MS);
        bool ok = req && fake_answer_error(f, id, ENOENT, huge);
        free(huge);
        if (req)
                wire_message_free(&req->base);
        FAKE_CHECK(f, ok);

        static const int codes[] = {99999, -5, 0};
        for (size_t i = 0; i < ELEMENTSOF(codes); i++) {
                req = fake_request(f, &id, FAKE_IO_TIMEOUT_MS);
                FAKE_CHECK(f, req);
                wire_message_free(&req->base);
                if (codes[i] == 0) { /* success without the stat result */
                        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
                        FAKE_CHECK(f, fake_respond(f, id, &resp));
                } else
                        FAKE_CHECK(f, fake_answer_error(f, id, codes[i], ""));
        }
        fake_serve(f);
}

static void test_bad_answers(void **state) {
        Fake f = {0};
        AgentClient *c = fake_connect(&f, script_bad_answers, NULL);
        AgentStat st;
        _cleanup_error_ Error *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL;

        int r = agent_client_stat(c, "/nope", &st, 5000, &e1);
        assert_error(r, ENOENT, e1, "no such file");
        assert_true(strlen(error_text(e1)) < 1100);
        assert_null(strchr(error_text(e1), '\x1b'));

        r = agent_client_stat(c, "/nope", &st, 5000, &e2);
        assert_error(r, EPROTO, e2, "stat failed");
        r = agent_client_stat(c, "/nope", &st, 5000, &e3);
        assert_error(r, EPROTO, e3, "stat failed");
        r = agent_client_stat(c, "/nope", &st, 5000, &e4);
        assert_error(r, EPROTO, e4, "wrong result");

        assert_true(agent_client_is_alive(c));
        ping_ok(c);
        agent_client_free(c);
        fake_finish(&f);
}

static bool fake_answer_list(Fake *f, size_t n) {
        uint32_t id;
        Plagent__Request *req = fake_request(f, &id, FAKE_IO_TIMEOUT_MS);
        if (!req)
                return false;
        bool ok = req->op_case == PLAGENT__REQUEST__OP_LIST_PROCESSES;
        wire_message_free(&req->base);

        Plagent__ProcessInfo *infos = calloc(n, sizeof(*infos));
        Plagent__ProcessInfo **ptrs = calloc(n, sizeof(*ptrs));
        for (size_t i = 0; infos && ptrs && i < n; i++) {
                infos[i] = (Plagent__ProcessInfo) PLAGENT__PROCESS_INFO__INIT;
                infos[i].process_id = (uint32_t) i + 1;
                infos[i].pid = 100 + (int32_t) i;
                infos[i].state = PLAGENT__PROCESS_STATE__PROCESS_STATE_EXITED;
                infos[i].exit_code = 137;
                infos[i].signal = 9;
                infos[i].command = (char *) "sleep\n";
                ptrs[i] = &infos[i];
        }
        Plagent__ListProcessesResponse list = PLAGENT__LIST_PROCESSES_RESPONSE__INIT;
        list.n_processes = n;
        list.processes = ptrs;
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        resp.result_case = PLAGENT__RESPONSE__RESULT_LIST_PROCESSES;
        resp.list_processes = &list;
        ok = ok && infos && ptrs && fake_respond(f, id, &resp);
        free(infos);
        free(ptrs);
        return ok;
}

static void script_list(Fake *f) {
        FAKE_CHECK(f, fake_handshake(f, true));
        FAKE_CHECK(f, fake_answer_list(f, 5000));
        FAKE_CHECK(f, fake_answer_list(f, 3));
        fake_serve(f);
}

static void test_list_processes_limits(void **state) {
        Fake f = {0};
        AgentClient *c = fake_connect(&f, script_list, NULL);
        _cleanup_error_ Error *e = NULL, *e2 = NULL;
        _cleanup_free_ AgentProcessInfo *v = NULL;
        size_t n = 0;

        int r = agent_client_list_processes(c, &v, &n, 5000, &e);
        assert_error(r, EPROTO, e, "5000 processes");
        assert_null(v);
        assert_true(agent_client_is_alive(c));

        r = agent_client_list_processes(c, &v, &n, 5000, &e2);
        assert_int_equal(r, 0);
        assert_int_equal(n, 3);
        assert_int_equal(v[2].process_id, 3);
        assert_int_equal(v[2].state, AGENT_PROCESS_EXITED);
        assert_int_equal(v[2].exit_code, 137);
        assert_string_equal(v[2].command, "sleep?");
        agent_client_free(c);
        fake_finish(&f);
}

/* --- data channels --- */

static AgentProcess *exec_capture(AgentClient *c, bool in, bool out, bool err_stream) {
        static const char *const argv[] = {"/bin/cat", NULL};
        AgentExecSpec spec = {.argv = argv, .open_stdin = in, .capture_stdout = out, .capture_stderr = err_stream};
        _cleanup_error_ Error *e = NULL;
        AgentProcess *p = NULL;
        int r = agent_client_exec(c, &spec, &p, 5000, &e);
        if (r < 0)
                fail_msg("exec: %s", error_text(e));
        assert_int_equal(agent_process_id(p), 42);
        assert_int_equal(agent_process_pid(p), 4242);
        return p;
}

static void script_beyond_credit(Fake *f) {
        uint32_t in, out, err;
        FAKE_CHECK(f, fake_handshake(f, true));
        FAKE_CHECK(f, fake_answer_exec(f, &in, &out, &err));
        FAKE_CHECK(f, out != 0);
        uint8_t *buf = calloc(1, f->client_window);
        FAKE_CHECK(f, buf);
        bool ok = fake_send(f, FRAME_DATA, out, 0, NULL, buf, f->client_window) &&
                  fake_send(f, FRAME_DATA, out, 0, NULL, buf, 1);
        free(buf);
        FAKE_CHECK(f, ok);
        fake_serve(f);
}

static void test_data_beyond_credit(void **state) {
        Fake f = {0};
        AgentClientOptions opts = {.window = 16384};
        AgentClient *c = fake_connect(&f, script_beyond_credit, &opts);
        AgentProcess *p = exec_capture(c, false, true, false);
        wait_broken(c);

        /* What arrived within credit is still readable, then the reason. */
        _cleanup_free_ uint8_t *buf = malloc(65536);
        _cleanup_error_ Error *e = NULL;
        ssize_t n = agent_process_read(p, AGENT_STREAM_STDOUT, buf, 65536, 1000, &e);
        assert_int_equal(n, 16384);
        n = agent_process_read(p, AGENT_STREAM_STDOUT, buf, 65536, 1000, &e);
        assert_error((int) n, EPROTO, e, "beyond credit (16385 > 16384)");
        agent_process_free(p);
        agent_client_free(c);
        fake_finish(&f);
}

static void script_reset_stdout(Fake *f) {
        uint32_t in, out, err;
        FAKE_CHECK(f, fake_handshake(f, true));
        FAKE_CHECK(f, fake_answer_exec(f, &in, &out, &err));
        FAKE_CHECK(f, out != 0 && err != 0 && out != err);
        FAKE_CHECK(f, fake_send(f, FRAME_DATA, out, 0, NULL, "hello", 5));
        FAKE_CHECK(f, fake_send_reset(f, out, EIO, "pipe broke"));
        FAKE_CHECK(f, fake_send(f, FRAME_DATA, err, FRAME_FLAG_EOF, NULL, "warn", 4));
        fake_serve(f);
}

static void test_reset_stdout(void **state) {
        Fake f = {0};
        AgentClient *c = fake_connect(&f, script_reset_stdout, NULL);
        AgentProcess *p = exec_capture(c, false, true, true);
        char buf[64];
        _cleanup_error_ Error *e = NULL;

        assert_int_equal(agent_process_read(p, AGENT_STREAM_STDERR, buf, sizeof buf, 5000, NULL), 4);
        assert_int_equal(agent_process_read(p, AGENT_STREAM_STDERR, buf, sizeof buf, 5000, NULL), 0);
        assert_int_equal(agent_process_read(p, AGENT_STREAM_STDOUT, buf, sizeof buf, 5000, NULL), 5);
        assert_memory_equal(buf, "hello", 5);
        ssize_t n = agent_process_read(p, AGENT_STREAM_STDOUT, buf, sizeof buf, 5000, &e);
        assert_error((int) n, EIO, e, "pipe broke");

        assert_true(agent_client_is_alive(c));
        ping_ok(c);
        agent_process_free(p);
        agent_client_free(c);
        fake_finish(&f);
}

static void script_credit(Fake *f) {
        uint32_t in, out, err;
        FAKE_CHECK(f, fake_handshake(f, true));
        FAKE_CHECK(f, fake_answer_exec(f, &in, &out, &err));
        FAKE_CHECK(f, fake_stream(f, out, 2u * f->client_window));
        fake_serve(f);
}

static void test_credit_returned_on_read(void **state) {
        Fake f = {0};
        AgentClientOptions opts = {.window = 16384};
        AgentClient *c = fake_connect(&f, script_credit, &opts);
        AgentProcess *p = exec_capture(c, false, true, false);

        /* The fake sent exactly one window and waits: no credit before reads. */
        wait_flag(&f);
        usleep(200 * 1000);
        assert_int_equal(atomic_load(&f.credit_total), 0);

        uint8_t buf[1000];
        size_t total = 0;
        for (;;) {
                _cleanup_error_ Error *e = NULL;
                ssize_t n = agent_process_read(p, AGENT_STREAM_STDOUT, buf, sizeof buf, 5000, &e);
                if (n < 0)
                        fail_msg("read: %s", error_text(e));
                if (n == 0)
                        break;
                for (ssize_t i = 0; i < n; i++)
                        assert_int_equal(buf[i], pattern(total + (size_t) i));
                total += (size_t) n;
        }
        assert_int_equal(total, 2 * 16384);
        /* Credit goes back in batches of at least window/4. */
        assert_true(atomic_load(&f.credit_frames) >= 1);
        assert_true(atomic_load(&f.credit_frames) <= 8);
        agent_process_free(p);
        agent_client_free(c);
        fake_finish(&f);
}

/* Reads DATA on channel until want bytes (or EOF when want is 0). Fails if
 * more than want arrive. */
static bool fake_absorb(Fake *f, uint32_t channel, size_t want, bool *ret_eof) {
        size_t got = 0;
        *ret_eof = false;
        while (want == 0 || got < want) {
                FrameHeader h;
                if (fake_next_type(f, FRAME_DATA, &h, FAKE_IO_TIMEOUT_MS) != 1 || h.channel != channel)
                        return false;
                got += h.length;
                if (h.flags & FRAME_FLAG_EOF) {
                        *ret_eof = true;
                        break;
                }
        }
        return want == 0 || got == want;
}

/* True when no frame arrives within ms. */
static bool fake_quiet(Fake *f, int ms) {
        FrameHeader h;
        return fake_next(f, &h, ms) == -ETIMEDOUT;
}

static void script_stdin_credit(Fake *f) {
        uint32_t in, out, err;
        bool eof;
        f->window = 4096;
        FAKE_CHECK(f, fake_handshake(f, true));
        FAKE_CHECK(f, fake_answer_exec(f, &in, &out, &err));
        FAKE_CHECK(f, in != 0);
        FAKE_CHECK(f, fake_absorb(f, in, 4096, &eof));
        FAKE_CHECK(f, fake_quiet(f, 300));
        uint8_t credit[4];
        wire_credit_encode(4096, credit);
        FAKE_CHECK(f, fake_send(f, FRAME_CREDIT, in, 0, NULL, credit, sizeof credit));
        FAKE_CHECK(f, fake_absorb(f, in, 100, &eof));
        /* The next write gets 3996 bytes of credit and then times out. */
        FAKE_CHECK(f, fake_absorb(f, in, 3996, &eof));
        FAKE_CHECK(f, fake_absorb(f, in, 0, &eof) && eof);
        fake_serve(f);
}

static void test_stdin_waits_for_credit(void **state) {
        Fake f = {0};
        AgentClient *c = fake_connect(&f, script_stdin_credit, NULL);
        AgentProcess *p = exec_capture(c, true, false, false);
        _cleanup_free_ uint8_t *buf = calloc(1, 8192);
        _cleanup_error_ Error *e = NULL, *e2 = NULL;

        uint64_t start = now_usec();
        int r = agent_process_write_stdin(p, buf, 4096 + 100, 5000, &e);
        if (r < 0)
                fail_msg("write: %s", error_text(e));
        assert_true(elapsed_ms(start) >= 250);

        r = agent_process_write_stdin(p, buf, 5000, 200, &e2);
        assert_error(r, ETIMEDOUT, e2, "no credit on stdin");
        assert_int_equal(agent_process_close_stdin(p, NULL), 0);
        ping_ok(c);
        agent_process_free(p);
        agent_client_free(c);
        fake_finish(&f);
}

static void script_exec_wait(Fake *f) {
        uint32_t in, out, err;
        FAKE_CHECK(f, fake_handshake(f, true));
        FAKE_CHECK(f, fake_answer_exec(f, &in, &out, &err));
        FAKE_CHECK(f, in == 0 && out != 0 && err == 0); /* tty: one output */
        FAKE_CHECK(f, fake_send(f, FRAME_DATA, out, FRAME_FLAG_EOF, NULL, "out", 3));

        uint32_t id;
        Plagent__Request *req = fake_request(f, &id, FAKE_IO_TIMEOUT_MS);
        FAKE_CHECK(f, req);
        bool is_wait = req->op_case == PLAGENT__REQUEST__OP_WAIT && req->wait->process_id == 42;
        wire_message_free(&req->base);
        FAKE_CHECK(f, is_wait);
        Plagent__ProcessInfo info = PLAGENT__PROCESS_INFO__INIT;
        info.process_id = 42;
        info.pid = 4242;
        info.state = PLAGENT__PROCESS_STATE__PROCESS_STATE_EXITED;
        info.exit_code = 3;
        info.command = (char *) "/bin/cat";
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        resp.result_case = PLAGENT__RESPONSE__RESULT_PROCESS;
        resp.process = &info;
        FAKE_CHECK(f, fake_respond(f, id, &resp));
        fake_serve(f);
}

static void test_exec_wait(void **state) {
        Fake f = {0};
        AgentClient *c = fake_connect(&f, script_exec_wait, NULL);
        static const char *const argv[] = {"/bin/cat", NULL};
        static const char *const env[] = {"A=1", NULL};
        AgentExecSpec spec = {.argv = argv, .env = env, .tty = true, .rows = 24, .cols = 80,
                              .capture_stdout = true, .capture_stderr = true};
        _cleanup_error_ Error *e = NULL;
        AgentProcess *p = NULL;
        assert_int_equal(agent_client_exec(c, &spec, &p, 5000, &e), 0);

        char buf[16];
        assert_int_equal(agent_process_read(p, AGENT_STREAM_STDOUT, buf, sizeof buf, 5000, NULL), 3);
        assert_int_equal(agent_process_read(p, AGENT_STREAM_STDOUT, buf, sizeof buf, 5000, NULL), 0);
        assert_int_equal(agent_process_read(p, AGENT_STREAM_STDERR, buf, sizeof buf, 5000, NULL), -EBADF);
        assert_int_equal(agent_process_write_stdin(p, "x", 1, 100, NULL), -EPIPE);

        AgentProcessInfo info;
        assert_int_equal(agent_process_wait(p, &info, 5000, NULL), 0);
        assert_int_equal(info.exit_code, 3);
        assert_int_equal(info.state, AGENT_PROCESS_EXITED);
        assert_string_equal(info.command, "/bin/cat");
        agent_process_free(p);
        ping_ok(c);
        agent_client_free(c);
        fake_finish(&f);
}

static void script_late_data(Fake *f) {
        uint32_t in, out, err;
        FAKE_CHECK(f, fake_handshake(f, true));
        FAKE_CHECK(f, fake_answer_exec(f, &in, &out, &err));
        FAKE_CHECK(f, out != 0);
        FAKE_CHECK(f, fake_wait_flag(f));
        FAKE_CHECK(f, fake_send(f, FRAME_DATA, out, 0, NULL, "late", 4));
        FAKE_CHECK(f, fake_send(f, FRAME_DATA, out, FRAME_FLAG_EOF, NULL, NULL, 0));
        FAKE_CHECK(f, fake_send_reset(f, out, EPIPE, "gone"));
        fake_serve(f);
}

static void test_late_frames_after_free(void **state) {
        Fake f = {0};
        AgentClient *c = fake_connect(&f, script_late_data, NULL);
        AgentProcess *p = exec_capture(c, false, true, false);
        agent_process_free(p);
        atomic_store(&f.flag, true);
        usleep(100 * 1000);
        ping_ok(c);
        assert_true(agent_client_is_alive(c));
        agent_client_free(c);
        fake_finish(&f);
}

static void test_exec_too_big(void **state) {
        Fake f = {0};
        AgentClient *c = fake_connect(&f, script_no_requests, NULL);
        _cleanup_error_ Error *e = NULL, *e2 = NULL;
        AgentProcess *p = NULL;

        const char **many = calloc(4098, sizeof(char *));
        for (size_t i = 0; i < 4097; i++)
                many[i] = "x";
        AgentExecSpec spec = {.argv = many};
        int r = agent_client_exec(c, &spec, &p, 5000, &e);
        assert_error(r, E2BIG, e, "too many arguments");

        char *huge = malloc(2u * 1024u * 1024u);
        memset(huge, 'a', 2u * 1024u * 1024u - 1);
        huge[2u * 1024u * 1024u - 1] = '\0';
        const char *argv[] = {"/bin/echo", huge, NULL};
        spec.argv = argv;
        r = agent_client_exec(c, &spec, &p, 5000, &e2);
        assert_error(r, E2BIG, e2, "frame limit");
        assert_null(p);
        free(huge);
        free(many);
        assert_true(agent_client_is_alive(c));
        agent_client_free(c);
        fake_finish(&f);
}

/* --- copy-in and copy-out --- */

static int memfd_with_pattern(size_t size) {
        int fd = memfd_create("tar", MFD_CLOEXEC);
        assert_true(fd >= 0);
        uint8_t *buf = malloc(size);
        for (size_t i = 0; i < size; i++)
                buf[i] = pattern(i);
        assert_int_equal(write_all(fd, buf, size), 0);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        free(buf);
        return fd;
}

/* Reads a copy request; returns its channel or 0. */
static uint32_t fake_copy_request(Fake *f, Plagent__Request__OpCase op, uint32_t *ret_id) {
        Plagent__Request *req = fake_request(f, ret_id, FAKE_IO_TIMEOUT_MS);
        uint32_t channel = 0;
        if (req && req->op_case == op && op == PLAGENT__REQUEST__OP_COPY_IN)
                channel = req->copy_in->channel;
        else if (req && req->op_case == op && op == PLAGENT__REQUEST__OP_COPY_OUT)
                channel = req->copy_out->channel;
        if (req)
                wire_message_free(&req->base);
        return channel;
}

static bool fake_answer_copy(Fake *f, uint32_t id, uint64_t bytes, uint64_t entries) {
        Plagent__CopyResponse copy = PLAGENT__COPY_RESPONSE__INIT;
        copy.bytes = bytes;
        copy.entries = entries;
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        resp.result_case = PLAGENT__RESPONSE__RESULT_COPY;
        resp.copy = &copy;
        return fake_respond(f, id, &resp);
}

/* Consumes a copy-in stream like an extractor: credit back for every frame,
 * the pattern checked, until EOF. Returns the byte count or -1. */
static ssize_t fake_extract(Fake *f, uint32_t channel) {
        size_t got = 0;
        for (;;) {
                FrameHeader h;
                if (fake_next_type(f, FRAME_DATA, &h, FAKE_IO_TIMEOUT_MS) != 1 || h.channel != channel)
                        return -1;
                for (size_t i = 0; i < h.length; i++)
                        if (f->payload[i] != pattern(got + i))
                                return -1;
                got += h.length;
                if (h.flags & FRAME_FLAG_EOF)
                        return (ssize_t) got;
                uint8_t credit[4];
                wire_credit_encode(h.length, credit);
                if (h.length > 0 && !fake_send(f, FRAME_CREDIT, channel, 0, NULL, credit, sizeof credit))
                        return -1;
        }
}

static void script_copy_in(Fake *f) {
        uint32_t id;
        bool eof;
        f->window = 4096;
        FAKE_CHECK(f, fake_handshake(f, true));

        /* 1: a full archive. */
        uint32_t ch = fake_copy_request(f, PLAGENT__REQUEST__OP_COPY_IN, &id);
        FAKE_CHECK(f, ch != 0);
        FAKE_CHECK(f, fake_extract(f, ch) == 100000);
        FAKE_CHECK(f, fake_answer_copy(f, id, 100000, 7));

        /* 2: refused after the first window, without a reset. */
        ch = fake_copy_request(f, PLAGENT__REQUEST__OP_COPY_IN, &id);
        FAKE_CHECK(f, ch != 0);
        FAKE_CHECK(f, fake_absorb(f, ch, 4096, &eof));
        FAKE_CHECK(f, fake_answer_error(f, id, EACCES, "permission denied: /dst"));

        /* 3: the agent resets the channel, then says why. */
        ch = fake_copy_request(f, PLAGENT__REQUEST__OP_COPY_IN, &id);
        FAKE_CHECK(f, ch != 0);
        FAKE_CHECK(f, fake_absorb(f, ch, 4096, &eof));
        FAKE_CHECK(f, fake_send_reset(f, ch, ENOSPC, "disk full"));
        FAKE_CHECK(f, fake_answer_error(f, id, ENOSPC, "extracting into /dst: disk full"));
        fake_serve(f);
}

static void test_copy_in(void **state) {
        Fake f = {0};
        AgentClient *c = fake_connect(&f, script_copy_in, NULL);
        _cleanup_error_ Error *e = NULL, *e2 = NULL, *e3 = NULL;
        AgentCopyStats stats;

        int fd = memfd_with_pattern(100000);
        int r = agent_client_copy_in(c, "/dst", fd, &stats, 5000, &e);
        if (r < 0)
                fail_msg("copy-in: %s", error_text(e));
        assert_int_equal(stats.bytes, 100000);
        assert_int_equal(stats.entries, 7);

        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        uint64_t start = now_usec();
        r = agent_client_copy_in(c, "/dst", fd, &stats, 5000, &e2);
        assert_error(r, EACCES, e2, "permission denied: /dst");
        assert_true(elapsed_ms(start) < 1000);

        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        r = agent_client_copy_in(c, "/dst", fd, &stats, 5000, &e3);
        assert_error(r, ENOSPC, e3, "extracting into /dst: disk full");
        close(fd);

        ping_ok(c);
        agent_client_free(c);
        fake_finish(&f);
        assert_int_equal(atomic_load(&f.data_total), 0); /* nothing after the refusals */
}

static void script_copy_out(Fake *f) {
        uint32_t id;
        FAKE_CHECK(f, fake_handshake(f, true));

        /* 1: the path does not exist: an answer, no data, no EOF. */
        uint32_t ch = fake_copy_request(f, PLAGENT__REQUEST__OP_COPY_OUT, &id);
        FAKE_CHECK(f, ch != 0);
        FAKE_CHECK(f, fake_answer_error(f, id, ENOENT, "no such file: /x"));

        /* 2: 100000 bytes with credit, EOF, then the answer. */
        ch = fake_copy_request(f, PLAGENT__REQUEST__OP_COPY_OUT, &id);
        FAKE_CHECK(f, ch != 0);
        FAKE_CHECK(f, fake_stream(f, ch, 100000));
        FAKE_CHECK(f, fake_answer_copy(f, id, 100000, 1));
        fake_serve(f);
}

static void test_copy_out(void **state) {
        Fake f = {0};
        AgentClientOptions opts = {.window = 16384};
        AgentClient *c = fake_connect(&f, script_copy_out, &opts);
        _cleanup_error_ Error *e = NULL, *e2 = NULL;
        AgentCopyStats stats;
        int fd = memfd_create("out", MFD_CLOEXEC);
        assert_true(fd >= 0);

        uint64_t start = now_usec();
        int r = agent_client_copy_out(c, "/x", fd, &stats, 5000, &e);
        assert_error(r, ENOENT, e, "no such file: /x");
        assert_true(elapsed_ms(start) < 1000);

        r = agent_client_copy_out(c, "/y", fd, &stats, 5000, &e2);
        if (r < 0)
                fail_msg("copy-out: %s", error_text(e2));
        assert_int_equal(stats.bytes, 100000);
        assert_int_equal(lseek(fd, 0, SEEK_CUR), 100000);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        _cleanup_free_ uint8_t *buf = malloc(100000);
        assert_int_equal(read_exact(fd, buf, 100000), 0);
        for (size_t i = 0; i < 100000; i++)
                assert_int_equal(buf[i], pattern(i));
        close(fd);
        assert_true(atomic_load(&f.credit_frames) >= 1);
        agent_client_free(c);
        fake_finish(&f);
}

int main(void) {
        signal(SIGPIPE, SIG_IGN);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_handshake_skips_stale),
                cmocka_unit_test(test_handshake_timeout),
                cmocka_unit_test(test_handshake_version_mismatch),
                cmocka_unit_test(test_handshake_flood),
                cmocka_unit_test(test_connect_unix_retries),
                cmocka_unit_test(test_request_timeout),
                cmocka_unit_test(test_peer_closes_mid_request),
                cmocka_unit_test(test_hostile),
                cmocka_unit_test(test_bad_answers),
                cmocka_unit_test(test_list_processes_limits),
                cmocka_unit_test(test_data_beyond_credit),
                cmocka_unit_test(test_reset_stdout),
                cmocka_unit_test(test_credit_returned_on_read),
                cmocka_unit_test(test_stdin_waits_for_credit),
                cmocka_unit_test(test_exec_wait),
                cmocka_unit_test(test_late_frames_after_free),
                cmocka_unit_test(test_exec_too_big),
                cmocka_unit_test(test_copy_in),
                cmocka_unit_test(test_copy_out),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
