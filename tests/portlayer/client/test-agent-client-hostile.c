/* test-agent-client-hostile.c: a hostile guest behind the scripted fake
 * agent (client-fake.h): protocol violations after a request (oversize,
 * malformed and undecodable frames, answers to requests never made, data on
 * channels never opened, a sync marker or a request from the agent) end the
 * connection with a clear error; bad answers (huge or escape-laden messages,
 * odd error codes, missing results, attach answers about another process)
 * and too many processes fail only the call. */
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

/* Answers an attach with info about process_id (0: no process info at all),
 * or with no result when wrong_result; then sends a byte on its stdout
 * channel, which the client has retired by then or must still accept. */
static bool fake_answer_attach(Fake *f, uint32_t process_id, bool wrong_result) {
        uint32_t id;
        Plagent__Request *req = fake_request(f, &id, FAKE_IO_TIMEOUT_MS);
        if (!req)
                return false;
        bool ok = req->op_case == PLAGENT__REQUEST__OP_ATTACH && req->attach->stdout_channel;
        uint32_t channel = ok ? req->attach->stdout_channel : 0;
        wire_message_free(&req->base);
        Plagent__ProcessInfo info = PLAGENT__PROCESS_INFO__INIT;
        info.process_id = process_id;
        info.command = (char *) "sh\x1b[2J";
        Plagent__AttachResponse ar = PLAGENT__ATTACH_RESPONSE__INIT;
        ar.process = process_id ? &info : NULL;
        ar.stdout_dropped = 12345;
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        if (!wrong_result) {
                resp.result_case = PLAGENT__RESPONSE__RESULT_ATTACH;
                resp.attach = &ar;
        }
        return ok && fake_respond(f, id, &resp) && fake_send(f, FRAME_DATA, channel, 0, NULL, "x", 1);
}

static void script_attach(Fake *f) {
        FAKE_CHECK(f, fake_handshake(f, true));
        FAKE_CHECK(f, fake_answer_attach(f, 0, false));
        FAKE_CHECK(f, fake_answer_attach(f, 8, false));
        FAKE_CHECK(f, fake_answer_attach(f, 7, true));
        FAKE_CHECK(f, fake_answer_attach(f, 7, false));
        fake_serve(f);
}

/* Attach answers about no process, another process or of the wrong kind
 * fail that call only (late data on its channel is dropped); a good one
 * gives a handle whose stream reads, with the command sanitized. */
static void test_attach_bad_answers(void **state) {
        Fake f = {0};
        AgentClient *c = fake_connect(&f, script_attach, NULL);
        _cleanup_error_ Error *e1 = NULL, *e2 = NULL, *e3 = NULL;
        AgentProcess *p = NULL;
        AgentAttachInfo info;

        int r = agent_client_attach(c, 7, true, false, &p, &info, 5000, &e1);
        assert_error(r, EPROTO, e1, "another process");
        r = agent_client_attach(c, 7, true, false, &p, &info, 5000, &e2);
        assert_error(r, EPROTO, e2, "another process");
        r = agent_client_attach(c, 7, true, false, &p, &info, 5000, &e3);
        assert_error(r, EPROTO, e3, "wrong result");
        assert_null(p);
        assert_true(agent_client_is_alive(c));

        assert_int_equal(agent_client_attach(c, 7, true, false, &p, &info, 5000, NULL), 0);
        assert_int_equal(agent_process_id(p), 7);
        assert_int_equal(info.process.process_id, 7);
        assert_int_equal(info.stdout_dropped, 12345);
        assert_null(strchr(info.process.command, '\x1b'));
        char buf[4];
        assert_int_equal(agent_process_read(p, AGENT_STREAM_STDOUT, buf, sizeof buf, 5000, NULL), 1);
        assert_int_equal(agent_process_read(p, AGENT_STREAM_STDERR, buf, sizeof buf, 0, NULL), -EBADF);
        agent_process_free(p);
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

int main(void) {
        signal(SIGPIPE, SIG_IGN);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hostile),
                cmocka_unit_test(test_bad_answers),
                cmocka_unit_test(test_list_processes_limits),
                cmocka_unit_test(test_attach_bad_answers),
        };
        return test_run_group(tests, NULL, NULL);
}
