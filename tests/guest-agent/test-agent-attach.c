/* test-agent-attach.c: re-attaching to the output of a process, with the
 * real pl-agent binary on a Unix socket and the real client library.
 *
 * A session that goes away without a word (agent_client_close: what the agent
 * sees of a daemon killed with -9) or that resets its channels (a freed
 * handle) leaves its processes' captured output to the agent, which keeps the
 * newest AGENT_OUTPUT_BUFFER_MAX (1 MiB) per process and never blocks the
 * process. A later attach reads the buffered bytes, then live output, then
 * EOF; the exit status still comes only after that output was delivered. The
 * processes here wait for marker files in the agent's root before writing,
 * so the test knows which bytes were written while nobody was attached. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "lib/agent-harness.h"

#define BUFFER_MAX (1024u * 1024u) /* AGENT_OUTPUT_BUFFER_MAX */

/* The agent on a socket and a connected client, per test. */
typedef AgentFixture Fixture;
#define setup agent_fixture_setup
#define teardown agent_fixture_teardown

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})
/* Shell: wait until the file $1 exists in the working directory (the root). */
#define WAIT_FOR(file) "while [ ! -e " file " ]; do sleep 0.02; done; "

/* Creates the marker file name in the agent's root. */
static void touch(Fixture *f, const char *name) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", f->h.root, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);
}

/* Waits up to 10 s for the marker file name to appear in the agent's root. */
static void wait_for_file(Fixture *f, const char *name) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", f->h.root, name);
        uint64_t deadline = deadline_after_ms(10000);
        while (access(path, F_OK) < 0) {
                assert_true(deadline_poll_ms(deadline) > 0);
                usleep(10000);
        }
}

/* Reads exactly strlen(want) bytes of stream and compares them. */
static void read_expect(AgentProcess *p, AgentStream stream, const char *want) {
        size_t len = strlen(want), got = 0;
        char buf[256];
        assert_true(len < sizeof buf);
        while (got < len) {
                ssize_t n = agent_process_read(p, stream, buf + got, len - got, 10000, NULL);
                assert_true(n > 0);
                got += (size_t) n;
        }
        buf[got] = 0;
        assert_string_equal(buf, want);
}

static void read_eof(AgentProcess *p, AgentStream stream) {
        char buf[16];
        assert_int_equal(agent_process_read(p, stream, buf, sizeof buf, 10000, NULL), 0);
}

/* Attaches once the streams are free. A detach made on another connection (a
 * RESET, or the connection closed) reaches the agent on that connection's
 * own socket, so an attach on this one may still see it attached for a
 * moment: -EBUSY is retried for up to 5 s, anything else is returned. */
static int attach_when_free(AgentClient *c, uint32_t id, bool out, bool err, AgentProcess **ret) {
        for (int i = 0;; i++) {
                int r = agent_client_attach(c, id, out, err, ret, NULL, 5000, NULL);
                if (r != -EBUSY || i == 500)
                        return r;
                usleep(10 * 1000);
        }
}

/* Starts script on a second connection with the given streams captured, then
 * drops that connection without a word, as a daemon killed with -9 would.
 * Returns the process id once the agent has seen that session end: it reads
 * the hang-up on that connection's own socket, in its own time, and output
 * the process writes before then still goes to the vanished session's
 * channel and is lost with it, neither kept nor counted as dropped ("What is
 * lost anyway" in docs/protocol.md). So the streams are attached here as
 * soon as the agent no longer says EBUSY, and reset again; the ping on the
 * same connection is answered only after the agent handled that RESET. The
 * script must not write (beyond first) before a marker the caller creates
 * afterwards. */
static uint32_t exec_then_vanish(Fixture *f, const char *script, bool out, bool err, bool tty, const char *first) {
        AgentClient *c2 = harness_connect(&f->h);
        assert_non_null(c2);
        AgentExecSpec spec = {.argv = ARGV("sh", "-c", script), .capture_stdout = out, .capture_stderr = err,
                              .tty = tty};
        AgentProcess *p = NULL;
        assert_int_equal(agent_client_exec(c2, &spec, &p, 5000, NULL), 0);
        if (first) /* the process streams to this session first */
                read_expect(p, AGENT_STREAM_STDOUT, first);
        uint32_t id = agent_process_id(p);
        agent_client_close(c2, "the daemon was killed");
        agent_process_free(p); /* the connection is down: no RESET reaches the agent */
        agent_client_free(c2);

        AgentProcess *q = NULL;
        assert_int_equal(attach_when_free(f->c, id, out, err, &q), 0);
        agent_process_free(q); /* RESET: buffered again from here on */
        assert_int_equal(agent_client_ping(f->c, 5000, NULL), 0);
        return id;
}

/* Output written while no session is attached is read by a new session,
 * then the live output, then EOF, then the exit status. */
static void test_attach_after_session_vanished(void **state) {
        Fixture *f = *state;
        uint32_t id = exec_then_vanish(f,
                                       "echo started; " WAIT_FOR("go1") "echo out-1; echo err-1 >&2; touch wrote; "
                                       WAIT_FOR("go2") "echo out-2; echo err-2 >&2",
                                       true, true, false, "started\n");
        touch(f, "go1");
        wait_for_file(f, "wrote"); /* written while no session was attached */

        AgentProcess *p = NULL;
        AgentAttachInfo info;
        assert_int_equal(agent_client_attach(f->c, id, true, true, &p, &info, 5000, NULL), 0);
        assert_int_equal(agent_process_id(p), id);
        assert_true(agent_process_pid(p) > 0);
        assert_int_equal(info.process.state, AGENT_PROCESS_RUNNING);
        assert_int_equal(info.stdout_dropped, 0);
        assert_int_equal(info.stderr_dropped, 0);
        read_expect(p, AGENT_STREAM_STDOUT, "out-1\n");
        read_expect(p, AGENT_STREAM_STDERR, "err-1\n");

        touch(f, "go2");
        read_expect(p, AGENT_STREAM_STDOUT, "out-2\n");
        read_eof(p, AGENT_STREAM_STDOUT);
        read_expect(p, AGENT_STREAM_STDERR, "err-2\n");
        read_eof(p, AGENT_STREAM_STDERR);
        AgentProcessInfo pi;
        assert_int_equal(agent_process_wait(p, &pi, 5000, NULL), 0);
        assert_int_equal(pi.exit_code, 0);
        agent_process_free(p);
}

/* Expected output of `seq 1 n; echo END` (malloc'd). */
static char *seq_output(unsigned n, size_t *ret_len) {
        size_t cap = (size_t) n * 8 + 16, len = 0;
        char *s = malloc(cap);
        assert_non_null(s);
        for (unsigned i = 1; i <= n; i++)
                len += (size_t) snprintf(s + len, cap - len, "%u\n", i);
        len += (size_t) snprintf(s + len, cap - len, "END\n");
        *ret_len = len;
        return s;
}

/* Reads a stream to EOF into a malloc'd buffer. */
static char *read_all(AgentProcess *p, AgentStream stream, size_t max, size_t *ret_len) {
        char *buf = malloc(max + 1);
        size_t len = 0;
        ssize_t n;
        assert_non_null(buf);
        while ((n = agent_process_read(p, stream, buf + len, max + 1 - len, 10000, NULL)) > 0) {
                len += (size_t) n;
                assert_true(len <= max);
        }
        assert_int_equal(n, 0);
        *ret_len = len;
        return buf;
}

/* 2 MiB written while nobody reads: the process is not blocked (it exits and
 * its exit status is there at once), the agent kept the newest 1 MiB and says
 * how much it dropped; an attach to the exited process reads exactly that
 * tail, then EOF, and the exit status only once the tail was delivered. A
 * second attach finds nothing more: EOF at once. */
static void test_attach_overflow_keeps_newest(void **state) {
        Fixture *f = *state;
        size_t total = 0;
        char *expect = seq_output(300000, &total); /* ~2 MiB */
        uint32_t id = exec_then_vanish(f, WAIT_FOR("go") "seq 1 300000; echo END", true, false, false, NULL);
        touch(f, "go");
        AgentProcessInfo pi;
        assert_int_equal(agent_client_wait(f->c, id, &pi, 30000, NULL), 0);
        assert_int_equal(pi.exit_code, 0);

        AgentProcess *p = NULL;
        AgentAttachInfo info;
        assert_int_equal(agent_client_attach(f->c, id, true, false, &p, &info, 5000, NULL), 0);
        assert_int_equal(info.process.state, AGENT_PROCESS_EXITED);
        assert_int_equal(info.process.exit_code, 0);
        assert_int_equal(info.stdout_dropped, total - BUFFER_MAX);
        assert_int_equal(info.stderr_dropped, 0);
        Error *e = NULL;
        /* 1 MiB is four windows: the exit status waits for all of it. */
        assert_int_equal(agent_process_wait(p, &pi, 300, &e), -ETIMEDOUT);
        e = error_free(e);
        size_t len = 0;
        char *got = read_all(p, AGENT_STREAM_STDOUT, 2 * BUFFER_MAX, &len);
        assert_int_equal(len, BUFFER_MAX);
        assert_memory_equal(got, expect + total - BUFFER_MAX, BUFFER_MAX);
        free(got);
        assert_int_equal(agent_process_wait(p, &pi, 5000, NULL), 0);
        assert_int_equal(pi.exit_code, 0);
        agent_process_free(p);

        assert_int_equal(agent_client_attach(f->c, id, true, false, &p, &info, 5000, NULL), 0);
        assert_int_equal(info.stdout_dropped, 0);
        read_eof(p, AGENT_STREAM_STDOUT);
        agent_process_free(p);
        free(expect);
}

/* A process that exited while nobody was attached: its buffered tail, then
 * EOF on both streams, and the exit status. */
static void test_attach_to_exited_process(void **state) {
        Fixture *f = *state;
        uint32_t id = exec_then_vanish(f, WAIT_FOR("go") "echo last words; echo oops >&2; exit 3", true, true, false,
                                       NULL);
        touch(f, "go");
        AgentProcessInfo pi;
        assert_int_equal(agent_client_wait(f->c, id, &pi, 10000, NULL), 0);
        assert_int_equal(pi.exit_code, 3);

        AgentProcess *p = NULL;
        AgentAttachInfo info;
        assert_int_equal(agent_client_attach(f->c, id, true, true, &p, &info, 5000, NULL), 0);
        assert_int_equal(info.process.state, AGENT_PROCESS_EXITED);
        assert_int_equal(info.process.exit_code, 3);
        read_expect(p, AGENT_STREAM_STDOUT, "last words\n");
        read_eof(p, AGENT_STREAM_STDOUT);
        read_expect(p, AGENT_STREAM_STDERR, "oops\n");
        read_eof(p, AGENT_STREAM_STDERR);
        assert_int_equal(agent_process_wait(p, &pi, 5000, NULL), 0);
        assert_int_equal(pi.exit_code, 3);
        agent_process_free(p);
}

/* A stream has one reader at a time: attaching to one still read elsewhere
 * is EBUSY; once that reader freed its handle (a RESET to the agent) the
 * output is buffered again and the next attach takes it up. stdout and
 * stderr can be attached separately, from different sessions. */
static void test_two_attaches(void **state) {
        Fixture *f = *state;
        AgentExecSpec spec = {.argv = ARGV("sh", "-c", "echo a; " WAIT_FOR("go") "echo b; echo b-err >&2; "
                                                       WAIT_FOR("go2") "echo c"),
                              .capture_stdout = true, .capture_stderr = true};
        AgentProcess *p = NULL, *q1 = NULL, *q2 = NULL, *q3 = NULL;
        assert_int_equal(agent_client_exec(f->c, &spec, &p, 5000, NULL), 0);
        uint32_t id = agent_process_id(p);
        read_expect(p, AGENT_STREAM_STDOUT, "a\n");

        AgentClient *c2 = harness_connect(&f->h);
        assert_non_null(c2);
        Error *e = NULL;
        assert_int_equal(agent_client_attach(c2, id, true, false, &q1, NULL, 5000, &e), -EBUSY);
        assert_non_null(strstr(error_text(e), "already attached"));
        e = error_free(e);
        assert_int_equal(agent_client_attach(c2, id, false, true, &q1, NULL, 5000, NULL), -EBUSY);
        assert_int_equal(agent_client_attach(f->c, id, true, false, &q1, NULL, 5000, NULL), -EBUSY);

        agent_process_free(p); /* RESET on both: the agent buffers them again */
        touch(f, "go");
        assert_int_equal(attach_when_free(c2, id, true, false, &q1), 0);
        read_expect(q1, AGENT_STREAM_STDOUT, "b\n");
        assert_int_equal(agent_client_attach(f->c, id, false, true, &q2, NULL, 5000, NULL), 0);
        read_expect(q2, AGENT_STREAM_STDERR, "b-err\n");
        assert_int_equal(agent_client_attach(f->c, id, true, false, &q3, NULL, 5000, NULL), -EBUSY);

        agent_process_free(q1);
        agent_client_free(c2);
        assert_int_equal(attach_when_free(f->c, id, true, false, &q3), 0);
        touch(f, "go2");
        read_expect(q3, AGENT_STREAM_STDOUT, "c\n");
        read_eof(q3, AGENT_STREAM_STDOUT);
        read_eof(q2, AGENT_STREAM_STDERR);
        AgentProcessInfo pi;
        assert_int_equal(agent_process_wait(q3, &pi, 5000, NULL), 0);
        assert_int_equal(pi.exit_code, 0);
        agent_process_free(q2);
        agent_process_free(q3);
}

/* A terminal's output is buffered and attachable like stdout. */
static void test_attach_tty(void **state) {
        Fixture *f = *state;
        uint32_t id = exec_then_vanish(f, WAIT_FOR("go") "echo tty-out", true, false, true, NULL);
        touch(f, "go");
        AgentProcessInfo pi;
        assert_int_equal(agent_client_wait(f->c, id, &pi, 10000, NULL), 0);
        AgentProcess *p = NULL;
        Error *e = NULL;
        assert_int_equal(agent_client_attach(f->c, id, true, true, &p, NULL, 5000, &e), -EINVAL);
        assert_non_null(strstr(error_text(e), "terminal"));
        e = error_free(e);
        assert_int_equal(agent_client_attach(f->c, id, true, false, &p, NULL, 5000, NULL), 0);
        read_expect(p, AGENT_STREAM_STDOUT, "tty-out\r\n");
        read_eof(p, AGENT_STREAM_STDOUT);
        agent_process_free(p);
}

/* The agent as a whole keeps at most AGENT_OUTPUT_BUFFER_TOTAL (32 MiB):
 * 36 processes writing 1 MiB each while nobody reads all finish, every byte
 * is either kept or counted as dropped, and no more than 32 MiB is kept.
 * Reading it frees it: a process started afterwards is kept whole again. */
#define TOTAL_MAX (32u * 1024u * 1024u) /* AGENT_OUTPUT_BUFFER_TOTAL */
#define MANY 36

static void test_buffer_total_is_bounded(void **state) {
        Fixture *f = *state;
        uint32_t ids[MANY + 1];
        for (int i = 0; i < MANY; i++)
                ids[i] = exec_then_vanish(f, WAIT_FOR("go") "head -c 1048576 /dev/zero", true, false, false, NULL);
        touch(f, "go");
        AgentProcessInfo pi;
        for (int i = 0; i < MANY; i++) {
                assert_int_equal(agent_client_wait(f->c, ids[i], &pi, 30000, NULL), 0);
                assert_int_equal(pi.exit_code, 0);
        }
        uint64_t kept = 0;
        for (int i = 0; i <= MANY; i++) {
                if (i == MANY) { /* everything was read: room again */
                        ids[i] = exec_then_vanish(f, WAIT_FOR("go-last") "head -c 1048576 /dev/zero", true, false,
                                                  false, NULL);
                        touch(f, "go-last");
                        assert_int_equal(agent_client_wait(f->c, ids[i], &pi, 30000, NULL), 0);
                }
                AgentProcess *p = NULL;
                AgentAttachInfo info;
                assert_int_equal(agent_client_attach(f->c, ids[i], true, false, &p, &info, 5000, NULL), 0);
                size_t len = 0;
                free(read_all(p, AGENT_STREAM_STDOUT, BUFFER_MAX, &len));
                agent_process_free(p);
                assert_int_equal(len + info.stdout_dropped, BUFFER_MAX);
                if (i < MANY)
                        kept += len;
                else
                        assert_int_equal(len, BUFFER_MAX);
        }
        fprintf(stderr, "kept %llu of %u bytes written while nobody read\n", (unsigned long long) kept,
                MANY * BUFFER_MAX);
        assert_true(kept <= TOTAL_MAX);
        assert_true(kept >= TOTAL_MAX / 2);
}

/* Attaches that cannot be: an unknown process, no stream asked for, a
 * stream the exec did not capture. The connection stays usable. */
static void test_attach_errors(void **state) {
        Fixture *f = *state;
        AgentProcess *p = NULL;
        Error *e = NULL;
        assert_int_equal(agent_client_attach(f->c, 4242, true, true, &p, NULL, 5000, &e), -ESRCH);
        e = error_free(e);
        assert_int_equal(agent_client_attach(f->c, 1, false, false, &p, NULL, 5000, &e), -EINVAL);
        e = error_free(e);

        AgentExecSpec spec = {.argv = ARGV("sh", "-c", WAIT_FOR("go") "echo hidden; echo seen >&2"),
                              .capture_stderr = true};
        assert_int_equal(agent_client_exec(f->c, &spec, &p, 5000, NULL), 0);
        uint32_t id = agent_process_id(p);
        agent_process_free(p);
        touch(f, "go");
        assert_int_equal(agent_client_attach(f->c, id, true, false, &p, NULL, 5000, &e), -EINVAL);
        assert_non_null(strstr(error_text(e), "not captured"));
        e = error_free(e);
        assert_int_equal(agent_client_attach(f->c, id, false, true, &p, NULL, 5000, NULL), 0);
        read_expect(p, AGENT_STREAM_STDERR, "seen\n");
        read_eof(p, AGENT_STREAM_STDERR);
        agent_process_free(p);
        assert_int_equal(agent_client_ping(f->c, 5000, NULL), 0);
}

int main(void) {
        if (!getenv("PL_AGENT_BIN"))
                test_program_skip_or_fail("PL_AGENT_BIN, the agent binary (run through ctest)");
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_attach_after_session_vanished, setup, teardown),
                cmocka_unit_test_setup_teardown(test_attach_overflow_keeps_newest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_attach_to_exited_process, setup, teardown),
                cmocka_unit_test_setup_teardown(test_two_attaches, setup, teardown),
                cmocka_unit_test_setup_teardown(test_attach_tty, setup, teardown),
                cmocka_unit_test_setup_teardown(test_attach_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_buffer_total_is_bounded, setup, teardown),
        };
        return test_run_group(tests, NULL, NULL);
}
