/* test-agent.c: the real pl-agent binary on a Unix socket, driven through the
 * real host client library: exec and exit codes, concurrent streaming with a
 * stalled reader, stdin EOF, tty and resize, copy-in/out round trips, escape
 * attempts, signals (also reaching processes that daemonized), process
 * listing, the CLI's exec when it cannot write the output, reconnects, an
 * unresponsive agent, and shutdown. Each test starts its own agent and stops it (by pid) even when an
 * assertion fails (cmocka teardown). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "lib/agent-harness.h"

/* The agent on a socket and a connected client, per test. */
typedef AgentFixture Fixture;
#define setup agent_fixture_setup
#define teardown agent_fixture_teardown

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_echo_and_info(void **state) {
        Fixture *f = *state;
        char *out = NULL, *err = NULL;
        int code = -1;
        assert_int_equal(harness_run(f->c, ARGV("echo", "hello", "world"), NULL, &out, &err, &code), 0);
        assert_string_equal(out, "hello world\n");
        assert_string_equal(err, "");
        assert_int_equal(code, 0);
        free(out);
        free(err);

        assert_int_equal(harness_run(f->c, ARGV("sh", "-c", "echo to-stderr >&2; pwd"), NULL, &out, &err, &code), 0);
        assert_string_equal(err, "to-stderr\n");
        char expect[400];
        snprintf(expect, sizeof expect, "%s\n", f->h.root); /* host mode: cwd is the root */
        assert_string_equal(out, expect);
        free(out);
        free(err);

        assert_int_equal(agent_client_ping(f->c, 5000, NULL), 0);
        AgentGuestInfo gi;
        assert_int_equal(agent_client_guest_info(f->c, &gi, 5000, NULL), 0);
        struct utsname u;
        uname(&u);
        assert_string_equal(gi.kernel_release, u.release);
        assert_string_equal(gi.root, f->h.root);
        assert_true(gi.mem_total_kib > 0);
        assert_true(gi.cpus >= 1);
        assert_non_null(strstr(agent_client_peer_software(f->c), "pl-agent"));
}

static void test_exit_codes(void **state) {
        Fixture *f = *state;
        static const struct {
                const char *script;
                int code;
        } cases[] = {{"exit 0", 0}, {"exit 3", 3}, {"kill -9 $$", 137}, {"kill -TERM $$", 143}};
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                int code = -1;
                assert_int_equal(harness_run(f->c, ARGV("sh", "-c", cases[i].script), NULL, NULL, NULL, &code), 0);
                assert_int_equal(code, cases[i].code);
        }
}

static void test_exec_errors(void **state) {
        Fixture *f = *state;
        AgentProcess *p = NULL;
        Error *e = NULL;
        AgentExecSpec spec = {.argv = ARGV("/nonexistent/binary")};
        assert_int_equal(agent_client_exec(f->c, &spec, &p, 5000, &e), -ENOENT);
        assert_non_null(strstr(error_text(e), "exec '/nonexistent/binary'"));
        e = error_free(e);

        spec = (AgentExecSpec){.argv = ARGV("true"), .workdir = "/no/such/dir"};
        assert_int_equal(agent_client_exec(f->c, &spec, &p, 5000, &e), -ENOENT);
        assert_non_null(strstr(error_text(e), "working directory"));
        e = error_free(e);

        spec = (AgentExecSpec){.argv = ARGV("true"), .user = "nosuchuser"};
        assert_int_equal(agent_client_exec(f->c, &spec, &p, 5000, &e), -ENOENT);
        assert_non_null(strstr(error_text(e), "nosuchuser"));
        e = error_free(e);
        /* The agent is still fine. */
        assert_int_equal(agent_client_ping(f->c, 5000, NULL), 0);
}

typedef struct Reader {
        AgentProcess *p;
        uint64_t bytes;
        int r;
        AgentProcessInfo info;
        int wait_r;
} Reader;

static void *drain(void *arg) {
        Reader *rd = arg;
        static __thread char buf[65536];
        for (;;) {
                ssize_t n = agent_process_read(rd->p, AGENT_STREAM_STDOUT, buf, sizeof buf, 120000, NULL);
                if (n <= 0) {
                        rd->r = (int) n;
                        break;
                }
                rd->bytes += (uint64_t) n;
        }
        rd->wait_r = agent_process_wait(rd->p, &rd->info, 120000, NULL);
        return NULL;
}

#define STREAM_BYTES (10u * 1024u * 1024u)

/* Ten processes stream 10 MiB each at once; nobody reads the tenth. The nine
 * others must complete while the tenth is held back, still running, by its
 * own empty credit; then it completes too once read. */
static void test_concurrent_streams_with_stalled_reader(void **state) {
        Fixture *f = *state;
        AgentProcess *procs[10];
        Reader readers[10] = {0};
        pthread_t threads[10];
        for (int i = 0; i < 10; i++) {
                AgentExecSpec spec = {.argv = ARGV("head", "-c", "10485760", "/dev/zero"), .capture_stdout = true};
                assert_int_equal(agent_client_exec(f->c, &spec, &procs[i], 5000, NULL), 0);
                readers[i].p = procs[i];
        }
        for (int i = 0; i < 9; i++)
                pthread_create(&threads[i], NULL, drain, &readers[i]);
        for (int i = 0; i < 9; i++) {
                pthread_join(threads[i], NULL);
                assert_int_equal(readers[i].r, 0);
                assert_int_equal(readers[i].bytes, STREAM_BYTES);
                assert_int_equal(readers[i].wait_r, 0);
                assert_int_equal(readers[i].info.exit_code, 0);
        }

        /* The stalled one is blocked on its pipe, not finished. */
        AgentProcessInfo *list = NULL;
        size_t n = 0;
        assert_int_equal(agent_client_list_processes(f->c, &list, &n, 5000, NULL), 0);
        bool found = false;
        for (size_t i = 0; i < n; i++)
                if (list[i].process_id == agent_process_id(procs[9])) {
                        found = true;
                        assert_int_equal(list[i].state, AGENT_PROCESS_RUNNING);
                }
        free(list);
        assert_true(found);

        pthread_create(&threads[9], NULL, drain, &readers[9]);
        pthread_join(threads[9], NULL);
        assert_int_equal(readers[9].bytes, STREAM_BYTES);
        assert_int_equal(readers[9].info.exit_code, 0);
        for (int i = 0; i < 10; i++)
                agent_process_free(procs[i]);
}

static void test_stdin_eof_reaches_cat(void **state) {
        Fixture *f = *state;
        char *out = NULL;
        int code = -1;
        assert_int_equal(harness_run(f->c, ARGV("cat"), "line one\nline two\n", &out, NULL, &code), 0);
        assert_string_equal(out, "line one\nline two\n");
        assert_int_equal(code, 0);
        free(out);

        /* 3 MiB through cat and back: credit in both directions. */
        size_t big = 3u * 1024u * 1024u;
        char *in = malloc(big + 1);
        for (size_t i = 0; i < big; i++)
                in[i] = (char) ('a' + i % 26);
        in[big] = 0;
        assert_int_equal(harness_run(f->c, ARGV("cat"), in, &out, NULL, &code), 0);
        assert_int_equal(strlen(out), big);
        assert_memory_equal(out, in, big);
        free(out);
        free(in);
}

/* A process writes 300 KiB and exits while nobody reads: 256 KiB of credit
 * and a 64 KiB pipe take it all, so it exits, but the agent still holds the
 * tail for lack of credit. Its exit status must not be given out while that
 * output is undelivered; once the host reads, the status follows, and then
 * every byte and the EOF were already there. */
static void test_exit_status_only_after_output(void **state) {
        Fixture *f = *state;
        AgentExecSpec spec = {.argv = ARGV("sh", "-c", "head -c 307200 /dev/zero; echo bye >&2"),
                              .capture_stdout = true, .capture_stderr = true};
        AgentProcess *p = NULL;
        assert_int_equal(agent_client_exec(f->c, &spec, &p, 5000, NULL), 0);
        usleep(500 * 1000); /* long enough for the process to have exited */
        AgentProcessInfo info;
        Error *e = NULL;
        assert_int_equal(agent_process_wait(p, &info, 300, &e), -ETIMEDOUT);
        e = error_free(e);

        static char buf[65536];
        size_t total = 0;
        ssize_t n;
        while ((n = agent_process_read(p, AGENT_STREAM_STDOUT, buf, sizeof buf, 5000, NULL)) > 0)
                total += (size_t) n;
        assert_int_equal(n, 0);
        assert_int_equal(total, 307200);
        assert_int_equal(agent_process_wait(p, &info, 5000, NULL), 0);
        assert_int_equal(info.exit_code, 0);
        n = agent_process_read(p, AGENT_STREAM_STDERR, buf, sizeof buf, 0, NULL);
        assert_int_equal(n, 4);
        assert_memory_equal(buf, "bye\n", 4);
        assert_int_equal(agent_process_read(p, AGENT_STREAM_STDERR, buf, sizeof buf, 0, NULL), 0);
        agent_process_free(p);
}

/* Freeing a handle without reading its output must not leave the process
 * blocked on a full pipe: the agent drains and drops that output. */
static void test_freed_handle_output_is_drained(void **state) {
        Fixture *f = *state;
        AgentExecSpec spec = {.argv = ARGV("head", "-c", "10485760", "/dev/zero"), .capture_stdout = true};
        AgentProcess *p = NULL;
        assert_int_equal(agent_client_exec(f->c, &spec, &p, 5000, NULL), 0);
        uint32_t id = agent_process_id(p);
        agent_process_free(p);
        AgentProcessInfo info;
        assert_int_equal(agent_client_wait(f->c, id, &info, 10000, NULL), 0);
        assert_int_equal(info.exit_code, 0);
        assert_int_equal(agent_client_ping(f->c, 5000, NULL), 0); /* no late frame broke the connection */
}

/* Reads the tty output until it contains needle (or fails after 10 s). */
static void read_until(AgentProcess *p, char *acc, size_t cap, const char *needle) {
        size_t len = strlen(acc);
        uint64_t deadline = deadline_after_ms(10000);
        while (!strstr(acc, needle)) {
                assert_true(deadline_poll_ms(deadline) > 0);
                ssize_t n = agent_process_read(p, AGENT_STREAM_STDOUT, acc + len, cap - len - 1, 10000, NULL);
                assert_true(n > 0);
                len += (size_t) n;
                acc[len] = 0;
        }
}

static void test_tty_and_resize(void **state) {
        Fixture *f = *state;
        AgentExecSpec spec = {.argv = ARGV("sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty; stty size; read x; stty size"),
                              .tty = true, .rows = 24, .cols = 80, .open_stdin = true, .capture_stdout = true};
        AgentProcess *p = NULL;
        assert_int_equal(agent_client_exec(f->c, &spec, &p, 5000, NULL), 0);
        char acc[4096] = "";
        read_until(p, acc, sizeof acc, "24 80");
        assert_non_null(strstr(acc, "is-a-tty\r\n"));
        assert_int_equal(agent_process_resize(p, 50, 132, NULL), 0);
        assert_int_equal(agent_process_write_stdin(p, "\n", 1, 5000, NULL), 0);
        read_until(p, acc, sizeof acc, "50 132");
        AgentProcessInfo info;
        /* Drain to EOF, then wait. */
        char tail[256];
        while (agent_process_read(p, AGENT_STREAM_STDOUT, tail, sizeof tail, 10000, NULL) > 0)
                ;
        assert_int_equal(agent_process_wait(p, &info, 10000, NULL), 0);
        assert_int_equal(info.exit_code, 0);
        assert_true(info.tty);
        agent_process_free(p);
}

static int copy_in_file(AgentClient *c, const char *tar, const char *dest, AgentCopyStats *stats, Error **err) {
        int fd = open(tar, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        int r = agent_client_copy_in(c, dest, fd, stats, 60000, err);
        close(fd);
        return r;
}

static int copy_out_file(AgentClient *c, const char *path, const char *tar, Error **err) {
        int fd = open(tar, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        AgentCopyStats stats;
        int r = agent_client_copy_out(c, path, fd, &stats, 60000, err);
        close(fd);
        return r;
}

/* A tree with nested dirs, modes, a symlink, a hard link pair, an empty dir
 * and a 100 MiB file goes in, comes out, and is byte- and mode-identical. */
static void test_copy_roundtrip(void **state) {
        Fixture *f = *state;
        const char *d = f->h.dir;
        assert_int_equal(test_sh("set -e; cd '%s'; mkdir -p src/tree/sub/deeper src/tree/empty out;"
                                    "echo alpha > src/tree/a; chmod 0640 src/tree/a;"
                                    "printf '#!/bin/sh\\necho hi\\n' > src/tree/sub/exe; chmod 0755 src/tree/sub/exe;"
                                    "ln -s a src/tree/link; ln -s ../a src/tree/sub/uplink;"
                                    "ln src/tree/a src/tree/hard; echo deep > src/tree/sub/deeper/file;"
                                    "head -c 104857600 /dev/urandom > src/tree/big;"
                                    "touch -d '2020-02-02 02:02:02' src/tree/a;"
                                    "tar -C src -cf in.tar tree", d), 0);
        char tar[400], outtar[400];
        snprintf(tar, sizeof tar, "%s/in.tar", d);
        snprintf(outtar, sizeof outtar, "%s/out.tar", d);

        AgentCopyStats st;
        Error *e = NULL;
        assert_int_equal(copy_in_file(f->c, tar, "/dst", &st, &e), 0);
        assert_true(st.entries >= 9);
        assert_true(st.bytes > 100u * 1024u * 1024u);
        assert_int_equal(test_sh("cmp -s '%s/src/tree/big' '%s/dst/tree/big'", d, f->h.root), 0);

        assert_int_equal(copy_out_file(f->c, "/dst/tree", outtar, &e), 0);
        assert_int_equal(test_sh("set -e; cd '%s'; tar -C out -xf out.tar; diff -r --no-dereference src/tree out/tree;"
                                    "(cd src && find tree -printf '%%p %%m %%y %%l %%n\\n' | sort) > a.lst;"
                                    "(cd out && find tree -printf '%%p %%m %%y %%l %%n\\n' | sort) > b.lst;"
                                    "cmp a.lst b.lst;"
                                    "test \"$(stat -c %%i out/tree/a)\" = \"$(stat -c %%i out/tree/hard)\";"
                                    "test \"$(stat -c %%Y out/tree/a)\" = \"$(stat -c %%Y src/tree/a)\"", d), 0);

        /* A single file comes out as a one-entry archive named after it. */
        assert_int_equal(copy_out_file(f->c, "/dst/tree/sub/deeper/file", outtar, &e), 0);
        assert_int_equal(test_sh("cd '%s' && test \"$(tar -tf out.tar)\" = file", d), 0);
        if (e)
                fail_msg("unexpected error: %s", error_text(e));
}

/* Writes one ustar header + data at *off; type is '0', '1' (hard link), '2' (symlink), '5' (dir). */
static void tar_put(uint8_t *buf, size_t *off, const char *name, char type, const char *link, const char *data) {
        uint8_t *h = buf + *off;
        size_t len = data ? strlen(data) : 0;
        memset(h, 0, 512);
        snprintf((char *) h, 100, "%s", name);
        snprintf((char *) h + 100, 8, "%07o", type == '5' ? 0755 : 0644);
        snprintf((char *) h + 108, 8, "%07o", 0);
        snprintf((char *) h + 116, 8, "%07o", 0);
        snprintf((char *) h + 124, 12, "%011o", (unsigned) (len & 07777777777));
        snprintf((char *) h + 136, 12, "%011o", 0);
        h[156] = (uint8_t) type;
        if (link)
                snprintf((char *) h + 157, 100, "%s", link);
        memcpy(h + 257, "ustar", 6);
        memcpy(h + 263, "00", 2);
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (int i = 0; i < 512; i++)
                sum += h[i];
        snprintf((char *) h + 148, 8, "%06o", sum);
        *off += 512;
        if (len) {
                memcpy(buf + *off, data, len);
                *off += (len + 511) / 512 * 512;
        }
}

static int copy_in_bytes(Fixture *f, const uint8_t *buf, size_t len, const char *dest, Error **err) {
        char path[400];
        snprintf(path, sizeof path, "%s/hostile.tar", f->h.dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, buf, len), (ssize_t) len);
        close(fd);
        AgentCopyStats st;
        return copy_in_file(f->c, path, dest, &st, err);
}

/* Names with "..", absolute names, symlinks leading out and hard links to
 * outside files are refused or stay inside the root; nothing appears outside. */
static void test_escape_attempts(void **state) {
        Fixture *f = *state;
        static uint8_t buf[16384];
        assert_int_equal(test_sh("touch '%s/marker-inside-root'", f->h.root), 0);
        const char *names[] = {"../escaped-dotdot", "/escaped-abs", "a/../../escaped-mid"};
        for (size_t i = 0; i < 3; i++) {
                size_t off = 0;
                memset(buf, 0, sizeof buf);
                tar_put(buf, &off, names[i], '0', NULL, "evil\n");
                Error *e = NULL;
                assert_true(copy_in_bytes(f, buf, off + 1024, "/in", &e) < 0);
                assert_non_null(e);
                error_free(e);
        }

        /* A symlink to / (and to ../../..) then a file written "through" it. */
        size_t off = 0;
        memset(buf, 0, sizeof buf);
        tar_put(buf, &off, "up", '2', "../../../../../../..", NULL);
        tar_put(buf, &off, "up/escaped-through-link", '0', NULL, "evil\n");
        Error *e = NULL;
        (void) copy_in_bytes(f, buf, off + 1024, "/in2", &e); /* refusing or clamping are both fine */
        e = error_free(e);

        off = 0;
        memset(buf, 0, sizeof buf);
        tar_put(buf, &off, "pw", '1', "../../../../etc/passwd", NULL);
        assert_true(copy_in_bytes(f, buf, off + 1024, "/in3", &e) < 0);
        e = error_free(e);

        /* Nothing landed outside the root: not beside it, not in the host's /. */
        assert_int_equal(test_sh("test ! -e '%s/escaped-dotdot' && test ! -e '%s/escaped-mid' && "
                                    "test ! -e /escaped-abs && test ! -e /escaped-through-link && "
                                    "test ! -e '%s/escaped-through-link'",
                                    f->h.dir, f->h.dir, f->h.dir), 0);

        /* Paths given to stat and copy-out are clamped to the root as well. */
        AgentStat sst;
        assert_int_equal(agent_client_stat(f->c, "../../../../etc/passwd", &sst, 5000, &e), -ENOENT);
        e = error_free(e);
        char outtar[400];
        snprintf(outtar, sizeof outtar, "%s/up.tar", f->h.dir);
        assert_int_equal(copy_out_file(f->c, "../../..", outtar, &e), 0);
        assert_int_equal(test_sh("tar -tf '%s' | grep -q 'etc/passwd'", outtar), 1);
        assert_int_equal(test_sh("tar -tf '%s' | grep -q 'marker-inside-root'", outtar), 0);
        if (e)
                fail_msg("unexpected error: %s", error_text(e));
}

static void test_stat_and_remove(void **state) {
        Fixture *f = *state;
        assert_int_equal(test_sh("set -e; cd '%s/root'; mkdir -p d/e; printf 12345 > d/file; chmod 0600 d/file;"
                                    "ln -s file d/sym", f->h.dir), 0);
        AgentStat st;
        Error *e = NULL;
        assert_int_equal(agent_client_stat(f->c, "/d/file", &st, 5000, &e), 0);
        assert_string_equal(st.name, "file");
        assert_int_equal(st.size, 5);
        assert_true(S_ISREG(st.mode));
        assert_int_equal(st.mode & 07777, 0600);
        assert_int_equal(agent_client_stat(f->c, "/d/sym", &st, 5000, &e), 0);
        assert_true(S_ISLNK(st.mode));
        assert_string_equal(st.link_target, "file");

        assert_int_equal(agent_client_remove(f->c, "/d", false, 5000, &e), -ENOTEMPTY);
        e = error_free(e);
        assert_int_equal(agent_client_remove(f->c, "/", true, 5000, &e), -EBUSY);
        e = error_free(e);
        assert_int_equal(agent_client_remove(f->c, "/d", true, 5000, &e), 0);
        assert_int_equal(agent_client_stat(f->c, "/d", &st, 5000, &e), -ENOENT);
        e = error_free(e);
        assert_int_equal(test_sh("test ! -e '%s/root/d' && test -d '%s/root'", f->h.dir, f->h.dir), 0);
}

static void test_signal_and_list(void **state) {
        Fixture *f = *state;
        AgentProcess *p = NULL, *q = NULL;
        AgentExecSpec spec = {.argv = ARGV("sleep", "60")};
        assert_int_equal(agent_client_exec(f->c, &spec, &p, 5000, NULL), 0);
        assert_int_equal(agent_client_exec(f->c, &spec, &q, 5000, NULL), 0);
        assert_true(agent_process_pid(p) > 0);

        AgentProcessInfo *list = NULL;
        size_t n = 0;
        assert_int_equal(agent_client_list_processes(f->c, &list, &n, 5000, NULL), 0);
        int running = 0;
        for (size_t i = 0; i < n; i++)
                if (list[i].state == AGENT_PROCESS_RUNNING && strcmp(list[i].command, "sleep") == 0)
                        running++;
        free(list);
        assert_int_equal(running, 2);

        AgentProcessInfo info;
        assert_int_equal(agent_process_signal(p, SIGTERM, NULL), 0);
        assert_int_equal(agent_process_wait(p, &info, 5000, NULL), 0);
        assert_int_equal(info.exit_code, 128 + SIGTERM);
        assert_int_equal(info.signal, SIGTERM);
        assert_true(info.finished_unix_ns >= info.started_unix_ns);

        /* Signalling an exited process is a clear error; "all" reaches the rest. */
        Error *e = NULL;
        assert_int_equal(agent_process_signal(p, SIGTERM, &e), -ESRCH);
        e = error_free(e);
        assert_int_equal(agent_client_signal(f->c, 0, SIGKILL, true, NULL), 0);
        assert_int_equal(agent_process_wait(q, &info, 5000, NULL), 0);
        assert_int_equal(info.exit_code, 137);
        agent_process_free(p);
        agent_process_free(q);
}

/* Starts a process that daemonizes: a background child that calls setsid
 * and execs sleep, while its parent exits. It is reparented to the agent
 * (the subreaper) and appears in no process list. ignore_term makes it
 * ignore SIGTERM. Returns the sleep's pid, read from a file it wrote. */
static pid_t start_daemon(Fixture *f, bool ignore_term) {
        char script[256];
        snprintf(script, sizeof script, "setsid sh -c '%secho $$ > daemon.pid; exec sleep 1000' </dev/null >/dev/null 2>&1 &",
                 ignore_term ? "trap \"\" TERM; " : "");
        int code = -1;
        assert_int_equal(harness_run(f->c, ARGV("sh", "-c", script), NULL, NULL, NULL, &code), 0);
        assert_int_equal(code, 0);
        char path[400];
        snprintf(path, sizeof path, "%s/daemon.pid", f->h.root);
        int pid = 0;
        uint64_t deadline = deadline_after_ms(5000);
        for (;;) {
                FILE *fp = fopen(path, "r");
                bool ok = fp && fscanf(fp, "%d", &pid) == 1;
                if (fp)
                        fclose(fp);
                if (ok && pid > 0 && test_sh("grep -qx sleep /proc/%d/comm 2>/dev/null", pid) == 0)
                        return pid;
                assert_true(deadline_poll_ms(deadline) > 0);
                usleep(20000);
        }
}

/* Whether pid is gone from /proc (killed and reaped) within ms; if not, it
 * is killed here so that the test leaves nothing behind. */
static bool gone_within(pid_t pid, int ms) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d", (int) pid);
        uint64_t deadline = deadline_after_ms(ms);
        while (access(path, F_OK) == 0) {
                if (deadline_poll_ms(deadline) <= 0) {
                        kill(pid, SIGKILL);
                        return false;
                }
                usleep(20000);
        }
        return true;
}

/* kill --all reaches a process that daemonized, and the agent reaps it. */
static void test_kill_all_reaches_daemonized(void **state) {
        Fixture *f = *state;
        pid_t pid = start_daemon(f, false);
        assert_int_equal(agent_client_signal(f->c, 0, SIGKILL, true, NULL), 0);
        assert_true(gone_within(pid, 5000));
        assert_int_equal(agent_client_ping(f->c, 5000, NULL), 0);
}

/* Shutdown does not leave a daemonized process behind, even one that
 * ignores SIGTERM: after the grace period it is killed like the rest. */
static void test_shutdown_reaches_daemonized(void **state) {
        Fixture *f = *state;
        pid_t pid = start_daemon(f, true);
        assert_int_equal(agent_client_shutdown(f->c, 1000, 5000, NULL), 0);
        int status = 0;
        pid_t w = 0;
        uint64_t deadline = deadline_after_ms(10000);
        while ((w = waitpid(f->h.pid, &status, WNOHANG)) == 0 && deadline_poll_ms(deadline) > 0)
                usleep(20000);
        bool daemon_gone = gone_within(pid, 0);
        assert_int_equal(w, f->h.pid);
        f->h.pid = -1;
        assert_true(daemon_gone);
}

/* Runs `pl-agent-cli --socket S exec -- echo hello` against the fixture's
 * agent with its stdout on out_fd; returns its exit status, its stderr in
 * err (NUL-terminated). */
static int cli_exec_echo(Fixture *f, int out_fd, char *err, size_t err_size) {
        const char *cli = getenv("PL_AGENT_CLI");
        assert_non_null(cli);
        char err_path[400];
        snprintf(err_path, sizeof err_path, "%s/cli.err", f->h.dir);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int efd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (efd < 0 || dup2(out_fd, STDOUT_FILENO) < 0 || dup2(efd, STDERR_FILENO) < 0)
                        _exit(127);
                execl(cli, cli, "--socket", f->h.socket, "exec", "--", "echo", "hello", (char *) NULL);
                _exit(127);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        int fd = open(err_path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        ssize_t n = read(fd, err, err_size - 1);
        close(fd);
        err[n > 0 ? n : 0] = 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* pl-agent-cli exec must not claim success when it could not write the
 * process's output: to /dev/full (ENOSPC) and to a pipe whose reader is gone
 * (EPIPE) it exits non-zero and says why. To a file it works. */
static void test_cli_exec_output_write_errors(void **state) {
        Fixture *f = *state;
        char err[4096], path[400];
        snprintf(path, sizeof path, "%s/cli.out", f->h.dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(cli_exec_echo(f, fd, err, sizeof err), 0);
        close(fd);
        assert_int_equal(test_sh("test \"$(cat '%s')\" = hello", path), 0);

        fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_not_equal(cli_exec_echo(f, fd, err, sizeof err), 0);
        close(fd);
        if (!strstr(err, "standard output") || !strstr(err, strerror(ENOSPC)))
                fail_msg("stderr: '%s'", err);

        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        close(p[0]);
        assert_int_not_equal(cli_exec_echo(f, p[1], err, sizeof err), 0);
        close(p[1]);
        if (!strstr(err, "standard output") || !strstr(err, strerror(EPIPE)))
                fail_msg("stderr: '%s'", err);
}

/* Sessions are independent: a second client does not disturb the first,
 * both see and control the same processes, and each keeps its own streams;
 * when one goes away, the other's streaming process is unaffected. */
static void test_sessions_are_independent(void **state) {
        Fixture *f = *state;
        AgentProcess *p = NULL;
        AgentExecSpec spec = {.argv = ARGV("sh", "-c", "read x; echo got-$x"), .open_stdin = true,
                              .capture_stdout = true};
        assert_int_equal(agent_client_exec(f->c, &spec, &p, 5000, NULL), 0);
        uint32_t id = agent_process_id(p);

        AgentClient *c2 = harness_connect(&f->h);
        assert_non_null(c2);
        assert_int_equal(agent_client_peer_instance(c2), agent_client_peer_instance(f->c));
        assert_int_equal(agent_client_ping(f->c, 3000, NULL), 0); /* the first still works */
        AgentProcess *q = NULL;
        AgentExecSpec sleeper = {.argv = ARGV("sleep", "60")};
        assert_int_equal(agent_client_exec(c2, &sleeper, &q, 5000, NULL), 0);

        AgentProcessInfo *list = NULL;
        size_t n = 0;
        int seen = 0;
        assert_int_equal(agent_client_list_processes(f->c, &list, &n, 5000, NULL), 0);
        for (size_t i = 0; i < n; i++)
                seen += list[i].process_id == id || list[i].process_id == agent_process_id(q);
        free(list);
        assert_int_equal(seen, 2);

        /* The second client ends; the first one's process streams on. */
        uint32_t qid = agent_process_id(q);
        agent_process_free(q);
        agent_client_free(c2);
        assert_int_equal(agent_process_write_stdin(p, "yes\n", 4, 5000, NULL), 0);
        char buf[64] = "";
        assert_int_equal(agent_process_read(p, AGENT_STREAM_STDOUT, buf, sizeof buf - 1, 5000, NULL), 8);
        assert_string_equal(buf, "got-yes\n");
        AgentProcessInfo info;
        assert_int_equal(agent_process_wait(p, &info, 5000, NULL), 0);
        assert_int_equal(info.exit_code, 0);
        agent_process_free(p);
        assert_int_equal(agent_client_signal(f->c, qid, SIGKILL, false, NULL), 0);
        assert_int_equal(agent_client_wait(f->c, qid, &info, 5000, NULL), 0);
        assert_int_equal(info.exit_code, 137);
}

/* An agent that stops answering (SIGSTOP) makes calls time out in bounded
 * time; once it runs again the same client works. */
static void test_unresponsive_agent_times_out(void **state) {
        Fixture *f = *state;
        assert_int_equal(kill(f->h.pid, SIGSTOP), 0);
        Error *e = NULL;
        uint64_t t0 = now_usec();
        assert_int_equal(agent_client_ping(f->c, 500, &e), -ETIMEDOUT);
        uint64_t elapsed = now_usec() - t0;
        assert_true(elapsed >= 450 * 1000 && elapsed < 2000 * 1000);
        assert_non_null(e);
        e = error_free(e);
        assert_int_equal(kill(f->h.pid, SIGCONT), 0);
        assert_int_equal(agent_client_ping(f->c, 5000, NULL), 0);
}

static void test_shutdown_stops_everything(void **state) {
        Fixture *f = *state;
        AgentProcess *p = NULL;
        AgentExecSpec spec = {.argv = ARGV("sleep", "60")};
        assert_int_equal(agent_client_exec(f->c, &spec, &p, 5000, NULL), 0);
        int pid = agent_process_pid(p);
        agent_process_free(p);
        assert_int_equal(agent_client_shutdown(f->c, 2000, 5000, NULL), 0);
        int status = 0;
        uint64_t deadline = deadline_after_ms(10000);
        pid_t w = 0;
        while ((w = waitpid(f->h.pid, &status, WNOHANG)) == 0 && deadline_poll_ms(deadline) > 0)
                usleep(20000);
        assert_int_equal(w, f->h.pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        f->h.pid = -1;
        assert_int_equal(kill(pid, 0), -1); /* the sleep is gone too */
}

/* When the main process is done (exit status delivered), the agent shuts
 * down by itself, stopping the other processes: the container is over. */
static void test_main_process_exit_shuts_down(void **state) {
        Fixture *f = *state;
        AgentProcess *side = NULL, *p = NULL;
        AgentExecSpec sleeper = {.argv = ARGV("sleep", "60")};
        assert_int_equal(agent_client_exec(f->c, &sleeper, &side, 5000, NULL), 0);
        int side_pid = agent_process_pid(side);
        agent_process_free(side);
        AgentExecSpec spec = {.argv = ARGV("sh", "-c", "echo main-out; exit 5"), .capture_stdout = true, .main = true};
        assert_int_equal(agent_client_exec(f->c, &spec, &p, 5000, NULL), 0);
        char buf[64] = "";
        assert_int_equal(agent_process_read(p, AGENT_STREAM_STDOUT, buf, sizeof buf - 1, 5000, NULL), 9);
        assert_string_equal(buf, "main-out\n");
        AgentProcessInfo info;
        assert_int_equal(agent_process_wait(p, &info, 5000, NULL), 0);
        assert_int_equal(info.exit_code, 5);
        agent_process_free(p);

        int status = 0;
        pid_t w = 0;
        uint64_t deadline = deadline_after_ms(10000);
        while ((w = waitpid(f->h.pid, &status, WNOHANG)) == 0 && deadline_poll_ms(deadline) > 0)
                usleep(20000);
        assert_int_equal(w, f->h.pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        f->h.pid = -1;
        assert_int_equal(kill(side_pid, 0), -1);
}

int main(void) {
        if (!getenv("PL_AGENT_BIN"))
                test_program_skip_or_fail("PL_AGENT_BIN, the agent binary (run through ctest)");
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_echo_and_info, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exit_codes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exec_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_streams_with_stalled_reader, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stdin_eof_reaches_cat, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exit_status_only_after_output, setup, teardown),
                cmocka_unit_test_setup_teardown(test_freed_handle_output_is_drained, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tty_and_resize, setup, teardown),
                cmocka_unit_test_setup_teardown(test_copy_roundtrip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_escape_attempts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stat_and_remove, setup, teardown),
                cmocka_unit_test_setup_teardown(test_signal_and_list, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kill_all_reaches_daemonized, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shutdown_reaches_daemonized, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cli_exec_output_write_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sessions_are_independent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unresponsive_agent_times_out, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shutdown_stops_everything, setup, teardown),
                cmocka_unit_test_setup_teardown(test_main_process_exit_shuts_down, setup, teardown),
        };
        return test_run_group(tests, NULL, NULL);
}
