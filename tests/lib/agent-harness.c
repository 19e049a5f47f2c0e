/* agent-harness.c: the real agent binary as a test fixture (see agent-harness.h). */
#include "lib/agent-harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/test-files.h"
#include "lib/test-sh.h"

static int harness_launch(AgentHarness *h, const char *port) {
        const char *bin = getenv("PL_AGENT_BIN");
        memset(h, 0, sizeof *h);
        h->pid = -1;
        if (!bin) {
                fprintf(stderr, "harness: PL_AGENT_BIN is not set (run through ctest)\n");
                return -ENOENT;
        }
        int r = test_tmpdir_make(h->dir, sizeof h->dir, "agent-test");
        if (r < 0)
                return r;
        snprintf(h->socket, sizeof h->socket, "%s/agent.sock", h->dir);
        snprintf(h->root, sizeof h->root, "%s/root", h->dir);
        snprintf(h->log, sizeof h->log, "%s/agent.log", h->dir);
        if (mkdir(h->root, 0755) < 0)
                return -errno;

        h->pid = fork();
        if (h->pid < 0)
                return -errno;
        if (h->pid == 0) {
                FILE *f = freopen(h->log, "w", stderr);
                (void) f;
                /* Inside a test's own network namespace the agent may configure NICs. */
                const char *argv[] = {bin, port ? "--serial" : "--unix", port ? port : h->socket, "--root", h->root,
                                      "--log-level", "debug", getenv("PL_TEST_NETNS") ? "--allow-network" : NULL, NULL};
                execv(bin, (char *const *) argv);
                _exit(127);
        }
        return 0;
}

/* Waits up to 5 s for ready() to hold while the agent is alive. */
static int harness_wait_ready(AgentHarness *h, bool (*ready)(AgentHarness *h)) {
        for (int i = 0; i < 500; i++) {
                if (ready(h))
                        return 0;
                if (waitpid(h->pid, NULL, WNOHANG) == h->pid) {
                        fprintf(stderr, "harness: agent exited at start; log %s\n", h->log);
                        h->pid = -1;
                        return -ECHILD;
                }
                nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
        }
        fprintf(stderr, "harness: agent did not become ready; log %s\n", h->log);
        return -ETIMEDOUT;
}

static bool socket_exists(AgentHarness *h) {
        struct stat st;
        return stat(h->socket, &st) == 0;
}

static bool log_says_serving(AgentHarness *h) {
        return test_sh("grep -q ' serving' '%s'", h->log) == 0;
}

int harness_start(AgentHarness *h) {
        int r = harness_launch(h, NULL);
        return r < 0 ? r : harness_wait_ready(h, socket_exists);
}

int harness_start_serial(AgentHarness *h, const char *port) {
        int r = harness_launch(h, port);
        return r < 0 ? r : harness_wait_ready(h, log_says_serving);
}

AgentClient *harness_connect(AgentHarness *h) {
        AgentClient *c = NULL;
        Error *e = NULL;
        AgentClientOptions o = {.handshake_timeout_ms = 5000, .request_timeout_ms = 30000};
        if (agent_client_connect_unix(&c, h->socket, &o, &e) < 0) {
                fprintf(stderr, "harness: connect: %s\n", error_text(e));
                error_free(e);
                return NULL;
        }
        return c;
}

int harness_stop(AgentHarness *h) {
        int status = 0, bad = 0;
        if (h->pid > 0) {
                kill(h->pid, SIGCONT);
                kill(h->pid, SIGTERM);
                int waited = 0;
                pid_t w;
                while ((w = waitpid(h->pid, &status, WNOHANG)) == 0 && waited < 500) {
                        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
                        waited++;
                }
                if (w == 0) {
                        fprintf(stderr, "harness: agent ignored SIGTERM for 5 s: SIGKILL\n");
                        kill(h->pid, SIGKILL);
                        waitpid(h->pid, &status, 0);
                        bad = 1;
                } else if (WIFSIGNALED(status)) {
                        fprintf(stderr, "harness: agent died of signal %d\n", WTERMSIG(status));
                        bad = 1;
                }
                h->pid = -1;
        }
        if (h->log[0] && test_sh("grep -qE 'runtime error|Sanitizer|SUMMARY:' '%s' 2>/dev/null", h->log) == 0) {
                fprintf(stderr, "harness: sanitizer report in the agent's log:\n");
                test_sh("grep -vE ' (debug|info): ' '%s' >&2", h->log);
                bad = 1;
        }
        test_tmpdir_remove(h->dir);
        h->log[0] = 0;
        return bad ? -1 : 0;
}

typedef struct Collector {
        AgentProcess *p;
        AgentStream stream;
        char *buf;
        size_t len;
        int r;
} Collector;

static void *collect(void *arg) {
        Collector *c = arg;
        char chunk[65536];
        for (;;) {
                ssize_t n = agent_process_read(c->p, c->stream, chunk, sizeof chunk, 60000, NULL);
                if (n <= 0) {
                        c->r = (int) n;
                        break;
                }
                char *nb = realloc(c->buf, c->len + (size_t) n + 1);
                if (!nb) {
                        c->r = -ENOMEM;
                        break;
                }
                c->buf = nb;
                memcpy(c->buf + c->len, chunk, (size_t) n);
                c->len += (size_t) n;
        }
        if (!c->buf)
                c->buf = calloc(1, 1);
        else
                c->buf[c->len] = 0;
        return NULL;
}

int harness_run(AgentClient *c, const char *const *argv, const char *stdin_data, char **ret_out, char **ret_err,
                int *ret_exit) {
        AgentExecSpec spec = {.argv = argv, .open_stdin = stdin_data != NULL, .capture_stdout = true,
                              .capture_stderr = true};
        AgentProcess *p = NULL;
        Error *e = NULL;
        int r = agent_client_exec(c, &spec, &p, 10000, &e);
        if (r < 0) {
                fprintf(stderr, "harness: exec %s: %s\n", argv[0], error_text(e));
                error_free(e);
                return r;
        }
        Collector out = {.p = p, .stream = AGENT_STREAM_STDOUT}, err = {.p = p, .stream = AGENT_STREAM_STDERR};
        pthread_t t1, t2;
        pthread_create(&t1, NULL, collect, &out);
        pthread_create(&t2, NULL, collect, &err);
        if (stdin_data) {
                r = agent_process_write_stdin(p, stdin_data, strlen(stdin_data), 10000, NULL);
                if (r >= 0)
                        r = agent_process_close_stdin(p, NULL);
        }
        AgentProcessInfo info;
        int w = agent_process_wait(p, &info, 60000, NULL);
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
        agent_process_free(p);
        if (r >= 0)
                r = w;
        if (r >= 0)
                r = out.r < 0 ? out.r : err.r;
        if (ret_out)
                *ret_out = out.buf;
        else
                free(out.buf);
        if (ret_err)
                *ret_err = err.buf;
        else
                free(err.buf);
        if (ret_exit && w >= 0)
                *ret_exit = info.exit_code;
        return r;
}

int agent_fixture_setup(void **state) {
        AgentFixture *f = calloc(1, sizeof *f);
        if (!f || harness_start(&f->h) < 0) {
                free(f);
                return -1;
        }
        f->c = harness_connect(&f->h);
        *state = f;
        return f->c ? 0 : -1;
}

int agent_fixture_teardown(void **state) {
        AgentFixture *f = *state;
        if (!f)
                return 0;
        agent_client_free(f->c);
        int r = harness_stop(&f->h);
        free(f);
        return r;
}

int harness_sh(AgentClient *c, const char *line, char **ret_out) {
        int code = -1;
        char *out = NULL, *err = NULL;
        if (harness_run(c, (const char *const[]){"sh", "-c", line, NULL}, NULL, &out, &err, &code) < 0)
                code = -1;
        if (code != 0)
                fprintf(stderr, "agent: '%s' exited %d: %s%s", line, code, out ? out : "", err ? err : "");
        free(err);
        if (ret_out)
                *ret_out = code < 0 ? (free(out), NULL) : out;
        else
                free(out);
        return code;
}
