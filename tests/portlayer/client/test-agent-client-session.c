/* test-agent-client-session.c: the agent client's framing and handshake
 * against the scripted fake agent (client-fake.h): stale bytes and corrupt
 * frames before the HELLO, a silent agent, a version mismatch, a flood
 * without a HELLO, and connect_unix retrying a socket that appears late and
 * a connection that is never answered. */
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
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "lib/pltest.h"

#include "client-fake.h"

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
        char dir[256];
        assert_int_equal(test_tmpdir_make(dir, sizeof dir, "agent-client"), 0);
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
        test_tmpdir_remove(dir);
}

int main(void) {
        signal(SIGPIPE, SIG_IGN);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_handshake_skips_stale),
                cmocka_unit_test(test_handshake_timeout),
                cmocka_unit_test(test_handshake_version_mismatch),
                cmocka_unit_test(test_handshake_flood),
                cmocka_unit_test(test_connect_unix_retries),
        };
        return test_run_group(tests, NULL, NULL);
}
