/* client-fake.c: the scripted fake agent for the plclient tests (see
 * client-fake.h). */
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

#include "client-fake.h"

void fake_fail(Fake *f, int line, const char *what) {
        if (f->failure[0] == '\0')
                snprintf(f->failure, sizeof f->failure, "fake agent, line %d: %s", line, what);
}

/* --- the fake's I/O --- */

bool fake_write(Fake *f, const void *buf, size_t len) {
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

bool fake_send(Fake *f, FrameType type, uint32_t channel, uint8_t flags, const ProtobufCMessage *msg,
                      const void *data, size_t len) {
        _cleanup_free_ uint8_t *frame = NULL;
        size_t frame_len;
        if (wire_frame_build(&frame, &frame_len, type, channel, flags, msg, data, len) < 0)
                return false;
        return fake_write(f, frame, frame_len);
}

bool fake_send_header(Fake *f, uint32_t length, uint32_t channel, uint8_t type) {
        uint8_t hdr[PL_FRAME_HEADER_SIZE];
        FrameHeader h = {.length = length, .channel = channel, .type = type};
        frame_header_encode(&h, hdr);
        return fake_write(f, hdr, sizeof hdr);
}

bool fake_send_hello(Fake *f, uint64_t nonce) {
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
int fake_next(Fake *f, FrameHeader *h, int timeout_ms) {
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
int fake_next_type(Fake *f, FrameType type, FrameHeader *h, int timeout_ms) {
        for (;;) {
                int r = fake_next(f, h, timeout_ms);
                if (r <= 0 || h->type == type)
                        return r;
        }
}

/* Reads the client's HELLO; answers it unless answer is false. */
bool fake_handshake(Fake *f, bool answer) {
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
Plagent__Request *fake_request(Fake *f, uint32_t *ret_id, int timeout_ms) {
        FrameHeader h;
        if (fake_next_type(f, FRAME_REQUEST, &h, timeout_ms) != 1)
                return NULL;
        *ret_id = h.channel;
        return (Plagent__Request *) wire_unpack(&plagent__request__descriptor, f->payload, h.length, NULL);
}

bool fake_respond(Fake *f, uint32_t id, Plagent__Response *resp) {
        return fake_send(f, FRAME_RESPONSE, id, 0, &resp->base, NULL, 0);
}

bool fake_answer_ping(Fake *f, uint32_t id, const Plagent__Request *req) {
        Plagent__PingResponse pong = PLAGENT__PING_RESPONSE__INIT;
        pong.payload = req->ping->payload;
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        resp.result_case = PLAGENT__RESPONSE__RESULT_PING;
        resp.ping = &pong;
        return fake_respond(f, id, &resp);
}

bool fake_answer_error(Fake *f, uint32_t id, int code, const char *message) {
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        resp.error_code = code;
        resp.error_message = (char *) message;
        return fake_respond(f, id, &resp);
}

bool fake_send_reset(Fake *f, uint32_t id, int code, const char *message) {
        Plagent__ChannelReset rst = PLAGENT__CHANNEL_RESET__INIT;
        rst.code = code;
        rst.message = (char *) message;
        return fake_send(f, FRAME_RESET, id, 0, &rst.base, NULL, 0);
}

/* Answers pings, counts DATA, ignores the rest, until the client hangs up. */
void fake_serve(Fake *f) {
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
bool fake_answer_exec(Fake *f, uint32_t *in, uint32_t *out, uint32_t *err) {
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

uint8_t pattern(size_t i) {
        return (uint8_t) (i % 251u);
}

/* Streams total pattern bytes on channel, honouring the client's credit, then
 * EOF. Sets f->flag the first time it runs out of credit. */
bool fake_stream(Fake *f, uint32_t channel, size_t total) {
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
bool fake_wait_flag(Fake *f) {
        uint64_t deadline = deadline_after_ms(FAKE_IO_TIMEOUT_MS);
        while (!atomic_load(&f->flag)) {
                if (now_usec() >= deadline)
                        return false;
                usleep(1000);
        }
        return true;
}

/* Shakes hands, then fails on any request until the client hangs up. */
void script_no_requests(Fake *f) {
        FAKE_CHECK(f, fake_handshake(f, true));
        FrameHeader h;
        int r;
        while ((r = fake_next(f, &h, FAKE_IO_TIMEOUT_MS)) > 0)
                FAKE_CHECK(f, h.type != FRAME_REQUEST);
        FAKE_CHECK(f, r == 0);
}

/* --- the test side --- */

void *fake_main(void *userdata) {
        Fake *f = userdata;
        f->script(f);
        if (f->fd >= 0)
                close(f->fd);
        return NULL;
}

void fake_start(Fake *f, FakeScript script, int *ret_client_fd) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        f->fd = sv[1];
        f->script = script;
        assert_int_equal(frame_reader_new(&f->reader, false), 0);
        assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
        *ret_client_fd = sv[0];
}

AgentClient *fake_connect(Fake *f, FakeScript script, const AgentClientOptions *opts) {
        _cleanup_error_ Error *e = NULL;
        AgentClient *c = NULL;
        int fd;
        fake_start(f, script, &fd);
        int r = agent_client_new_fd(&c, fd, opts, &e);
        if (r < 0)
                fail_msg("connect: %s", error_text(e));
        return c;
}

void fake_finish(Fake *f) {
        assert_int_equal(pthread_join(f->thread, NULL), 0);
        frame_reader_free(f->reader);
        free(f->payload);
        if (f->failure[0])
                fail_msg("%s", f->failure);
}

uint64_t elapsed_ms(uint64_t start) {
        return (now_usec() - start) / USEC_PER_MSEC;
}

void assert_error(int r, int code, const Error *e, const char *substring) {
        if (r != -code || !strstr(error_text(e), substring))
                fail_msg("expected -%d with \"%s\", got %d: %s", code, substring, r, error_text(e));
}

void wait_flag(Fake *f) {
        uint64_t start = now_usec();
        while (!atomic_load(&f->flag)) {
                assert_true(elapsed_ms(start) < 5000);
                usleep(1000);
        }
}

void wait_broken(AgentClient *c) {
        uint64_t start = now_usec();
        while (agent_client_is_alive(c)) {
                assert_true(elapsed_ms(start) < 5000);
                usleep(1000);
        }
}

void ping_ok(AgentClient *c) {
        _cleanup_error_ Error *e = NULL;
        int r = agent_client_ping(c, 5000, &e);
        if (r < 0)
                fail_msg("ping: %s", error_text(e));
}
