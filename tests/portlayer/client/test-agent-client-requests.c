/* test-agent-client-requests.c: requests and their deadlines against the
 * scripted fake agent (client-fake.h): a request that times out while the
 * connection lives on (its late answer dropped), the peer closing mid
 * request, exec and wait, and requests too big to send. */
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
#include <unistd.h>

#include "common/base/io-util.h"
#include "lib/pltest.h"

#include "client-fake.h"

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

static bool str_is(const char *s, const char *want) {
        return s && strcmp(s, want) == 0;
}

/* What agent_client_setup() puts on the wire: every field, "" for NULL, the
 * kinds mapped, and a device wait a second short of the caller's timeout. */
static bool setup_request_ok(const Plagent__SetupRequest *x) {
        if (x->n_interfaces != 2 || x->n_mounts != 2 || x->device_wait_ms != 4000)
                return false;
        const Plagent__InterfaceConfig *a = x->interfaces[0], *b = x->interfaces[1];
        const Plagent__MountConfig *m = x->mounts[0], *n = x->mounts[1];
        return str_is(a->mac, "0a:70:6c:00:00:01") && str_is(a->address, "10.88.0.5/16") &&
               str_is(a->gateway, "10.88.0.1") && a->mtu == 1400 && str_is(b->mac, "0a:70:6c:00:00:02") &&
               str_is(b->gateway, "") && b->mtu == 0 && m->kind == PLAGENT__MOUNT_KIND__MOUNT_KIND_BLOCK &&
               str_is(m->source, "pl-vol1") && str_is(m->target, "/data") && str_is(m->fstype, "") && !m->read_only &&
               n->kind == PLAGENT__MOUNT_KIND__MOUNT_KIND_VIRTIOFS && str_is(n->source, "share") &&
               str_is(n->target, "/www") && n->read_only;
}

static bool etc_request_ok(const Plagent__EtcRequest *x) {
        return x->write_hostname && x->write_hosts && !x->write_resolv && str_is(x->hostname, "web") &&
               x->n_hosts == 1 && str_is(x->hosts[0]->address, "10.88.0.7") && x->hosts[0]->n_names == 2 &&
               str_is(x->hosts[0]->names[1], "db.internal") && x->n_nameservers == 1 &&
               str_is(x->nameservers[0], "10.88.0.1") && x->n_search == 0;
}

static void script_setup_etc(Fake *f) {
        FAKE_CHECK(f, fake_handshake(f, true));
        uint32_t id;
        Plagent__Request *req = fake_request(f, &id, FAKE_IO_TIMEOUT_MS);
        FAKE_CHECK(f, req);
        bool ok = req->op_case == PLAGENT__REQUEST__OP_SETUP && setup_request_ok(req->setup);
        wire_message_free(&req->base);
        FAKE_CHECK(f, ok);
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        FAKE_CHECK(f, fake_respond(f, id, &resp));

        req = fake_request(f, &id, FAKE_IO_TIMEOUT_MS);
        FAKE_CHECK(f, req);
        ok = req->op_case == PLAGENT__REQUEST__OP_ETC && etc_request_ok(req->etc);
        wire_message_free(&req->base);
        FAKE_CHECK(f, ok);
        FAKE_CHECK(f, fake_answer_error(f, id, EROFS, "etc: write /etc/hosts: Read-only file system"));
        fake_serve(f);
}

static void test_setup_and_etc(void **state) {
        Fake f = {0};
        AgentClient *c = fake_connect(&f, script_setup_etc, NULL);
        const AgentInterface ifs[] = {
                {.mac = "0a:70:6c:00:00:01", .address = "10.88.0.5/16", .gateway = "10.88.0.1", .mtu = 1400},
                {.mac = "0a:70:6c:00:00:02", .address = "10.89.0.5/16"},
        };
        const AgentMount mounts[] = {{.kind = AGENT_MOUNT_BLOCK, .source = "pl-vol1", .target = "/data"},
                                     {.kind = AGENT_MOUNT_VIRTIOFS, .source = "share", .target = "/www", .read_only = true}};
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(agent_client_setup(c, ifs, 2, mounts, 2, 5000, &e), 0);

        static const char *const names[] = {"db", "db.internal"};
        static const char *const dns[] = {"10.88.0.1"};
        const AgentHostEntry hosts[] = {{"10.88.0.7", names, 2}};
        const AgentEtc etc = {.write_hostname = true, .write_hosts = true, .hostname = "web", .hosts = hosts,
                              .n_hosts = 1, .nameservers = dns, .n_nameservers = 1};
        int r = agent_client_write_etc(c, &etc, 5000, &e);
        assert_error(r, EROFS, e, "Read-only file system");

        /* Past the limits: refused here, nothing sent (the fake sees only pings). */
        AgentInterface many[9];
        for (size_t i = 0; i < 9; i++)
                many[i] = ifs[0];
        e = error_free(e);
        r = agent_client_setup(c, many, 9, NULL, 0, 5000, &e);
        assert_error(r, E2BIG, e, "at most 8 interfaces");
        const AgentEtc big = {.write_resolv = true, .nameservers = dns, .n_nameservers = 9};
        e = error_free(e);
        r = agent_client_write_etc(c, &big, 5000, &e);
        assert_error(r, E2BIG, e, "8 nameservers");
        ping_ok(c);
        agent_client_free(c);
        fake_finish(&f);
}

int main(void) {
        signal(SIGPIPE, SIG_IGN);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_timeout),
                cmocka_unit_test(test_peer_closes_mid_request),
                cmocka_unit_test(test_exec_wait),
                cmocka_unit_test(test_exec_too_big),
                cmocka_unit_test(test_setup_and_etc),
        };
        return test_run_group(tests, NULL, NULL);
}
