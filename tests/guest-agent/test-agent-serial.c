/* test-agent-serial.c: the agent serving a stream device instead of a socket.
 *
 * A pty stands in for a virtio-serial port: one long-lived byte stream with no
 * connection boundaries, where a new host client finds whatever the previous
 * one left unread. Two clients take turns on the same stream; between them,
 * the stream holds a stale answer to a request nobody read and a stale HELLO
 * with another nonce. The second client must resynchronise on its own nonce,
 * and the agent must keep its processes across the switch. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/proto/wire.h"
#include "lib/agent-harness.h"

typedef struct Fixture {
        AgentHarness h;
        int master;
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof *f);
        *state = f;
        if (!f)
                return -1;
        f->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        char port[64];
        if (f->master < 0 || grantpt(f->master) < 0 || unlockpt(f->master) < 0 ||
            ptsname_r(f->master, port, sizeof port) != 0)
                return -1;
        return harness_start_serial(&f->h, port);
}

static int teardown(void **state) {
        Fixture *f = *state;
        int r = harness_stop(&f->h);
        if (f->master >= 0)
                close(f->master);
        free(f);
        return r;
}

static AgentClient *client_on(int master) {
        AgentClient *c = NULL;
        Error *e = NULL;
        AgentClientOptions o = {.handshake_timeout_ms = 5000};
        if (agent_client_new_fd(&c, fcntl(master, F_DUPFD_CLOEXEC, 3), &o, &e) < 0) {
                fprintf(stderr, "client: %s\n", error_text(e));
                error_free(e);
        }
        return c;
}

static void write_frame(int fd, FrameType type, uint32_t ch, const ProtobufCMessage *m) {
        uint8_t *buf = NULL;
        size_t len;
        assert_int_equal(wire_frame_build(&buf, &len, type, ch, 0, m, NULL, 0), 0);
        assert_int_equal(write_all(fd, buf, len), 0);
        free(buf);
}

static void test_resync_on_one_stream(void **state) {
        Fixture *f = *state;
        AgentClient *c1 = client_on(f->master);
        assert_non_null(c1);
        assert_int_equal(agent_client_ping(c1, 5000, NULL), 0);
        static const char *const argv[] = {"sleep", "60", NULL};
        AgentExecSpec spec = {.argv = argv};
        AgentProcess *p = NULL;
        assert_int_equal(agent_client_exec(c1, &spec, &p, 5000, NULL), 0);
        uint32_t id = agent_process_id(p);
        uint64_t instance = agent_client_peer_instance(c1);
        agent_process_free(p);
        agent_client_free(c1);

        /* Leave stale bytes for the next client: an answer nobody reads, and a
         * HELLO answering someone else's nonce. */
        Plagent__Request req = PLAGENT__REQUEST__INIT;
        Plagent__PingRequest ping = PLAGENT__PING_REQUEST__INIT;
        req.op_case = PLAGENT__REQUEST__OP_PING;
        req.ping = &ping;
        write_frame(f->master, FRAME_REQUEST, 7777, &req.base);
        assert_int_equal(write_all(f->master, pl_sync_marker, PL_SYNC_SIZE), 0);
        Plagent__Hello hello = PLAGENT__HELLO__INIT;
        hello.version_min = hello.version_max = PL_PROTOCOL_VERSION;
        hello.nonce = 0xdeadbeef;
        write_frame(f->master, FRAME_HELLO, 0, &hello.base);
        usleep(300 * 1000); /* let the agent answer into the stream */

        AgentClient *c2 = client_on(f->master);
        assert_non_null(c2);
        assert_int_equal(agent_client_peer_instance(c2), instance);
        assert_int_equal(agent_client_ping(c2, 5000, NULL), 0);

        AgentProcessInfo *list = NULL;
        size_t n = 0;
        bool running = false;
        assert_int_equal(agent_client_list_processes(c2, &list, &n, 5000, NULL), 0);
        for (size_t i = 0; i < n; i++)
                running |= list[i].process_id == id && list[i].state == AGENT_PROCESS_RUNNING;
        free(list);
        assert_true(running);

        AgentProcessInfo info;
        assert_int_equal(agent_client_signal(c2, id, SIGKILL, false, NULL), 0);
        assert_int_equal(agent_client_wait(c2, id, &info, 5000, NULL), 0);
        assert_int_equal(info.exit_code, 137);
        agent_client_free(c2);
}

int main(void) {
        if (!getenv("PL_AGENT_BIN"))
                test_program_skip_or_fail("PL_AGENT_BIN, the agent binary (run through ctest)");
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_resync_on_one_stream, setup, teardown),
        };
        return test_run_group(tests, NULL, NULL);
}
