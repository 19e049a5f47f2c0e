/* test-agent-client-channels.c: data channels and credit against the
 * scripted fake agent (client-fake.h): data beyond credit, a reset stdout,
 * credit returned as the host reads, stdin waiting for credit, frames for a
 * freed process, and copy-in/copy-out streams with their refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "lib/pltest.h"

#include "client-fake.h"

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
                cmocka_unit_test(test_data_beyond_credit),
                cmocka_unit_test(test_reset_stdout),
                cmocka_unit_test(test_credit_returned_on_read),
                cmocka_unit_test(test_stdin_waits_for_credit),
                cmocka_unit_test(test_late_frames_after_free),
                cmocka_unit_test(test_copy_in),
                cmocka_unit_test(test_copy_out),
        };
        return test_run_group(tests, NULL, NULL);
}
