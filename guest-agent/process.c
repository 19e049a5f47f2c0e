/* process.c: the processes the agent supervises.
 *
 * A Process is a container process started by exec, or an internal helper
 * (copy-in / copy-out) forked to run blocking tar work. Its stdio are pipes or
 * one pty master, bound to data channels of the current session. Output is read
 * only while the host has granted credit, so a stalled reader stalls only its
 * own process; output nobody reads any more is kept in a bounded buffer for a
 * later attach (output-buffer.c). A process is "done" once it was reaped AND
 * its output reached EOF on the wire of every channel it is bound to; only
 * then are waiters answered, so the host always has all output before it
 * learns the exit status. Signalling all processes reaches
 * every descendant of the agent (as PID 1: everything but the agent; in host
 * mode: found in /proc), so one that daemonized does not escape it. */
#include "guest-agent/agent.h"
#include "guest-agent/copy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/base/log.h"

extern char **environ;

static uint8_t scratch[PL_DATA_CHUNK];

static Process *process_alloc(Agent *a, ProcessKind kind) {
        Process *p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        p->kind = kind;
        p->id = ++a->next_process_id;
        p->status_fd = -1;
        for (int i = 0; i < _STREAM_MAX; i++)
                p->streams[i].fd = -1;
        return p;
}

static void process_link(Agent *a, Process *p) {
        p->next = a->processes;
        a->processes = p;
}

static void stream_close(Process *p, StreamIndex idx) {
        Stream *st = &p->streams[idx];
        if (!st->open && st->fd < 0)
                return;
        st->open = false;
        free(st->buf);
        st->buf = NULL;
        st->buf_len = 0;
        /* With a tty, stdin and stdout share the master: close it with the last user. */
        int fd = st->fd;
        st->fd = -1;
        for (int i = 0; i < _STREAM_MAX; i++)
                if (p->streams[i].fd == fd)
                        return;
        safe_close(fd);
}

static Process *process_free(Agent *a, Process *p) {
        if (!p)
                return NULL;
        for (int i = 0; i < _STREAM_MAX; i++) {
                stream_close(p, (StreamIndex) i);
                output_ring_free(a, &p->streams[i].ring);
        }
        safe_close(p->status_fd);
        while (p->waiters) {
                Waiter *w = p->waiters;
                p->waiters = w->next;
                free(w);
        }
        free(p->command);
        free(p);
        return NULL;
}

void process_free_all(Agent *a) {
        while (a->processes) {
                Process *p = a->processes;
                a->processes = p->next;
                process_free(a, p);
        }
}

Process *process_find(Agent *a, uint32_t id) {
        for (Process *p = a->processes; p; p = p->next)
                if (p->id == id && p->kind == PROCESS_EXEC)
                        return p;
        return NULL;
}

Stream *process_find_stream(Agent *a, Session *s, uint32_t channel, Process **ret_process, StreamIndex *ret_index) {
        if (channel == 0 || !s)
                return NULL;
        for (Process *p = a->processes; p; p = p->next)
                for (int i = 0; i < _STREAM_MAX; i++)
                        if (p->streams[i].channel == channel && p->streams[i].session == s) {
                                *ret_process = p;
                                *ret_index = (StreamIndex) i;
                                return &p->streams[i];
                        }
        return NULL;
}

bool process_channel_in_use(Agent *a, Session *s, uint32_t channel) {
        Process *p;
        StreamIndex i;
        return process_find_stream(a, s, channel, &p, &i) != NULL;
}

unsigned process_count_running(Agent *a) {
        unsigned n = 0;
        for (Process *p = a->processes; p; p = p->next)
                n += p->kind == PROCESS_EXEC && !p->exited;
        return n;
}

/* ---- child side ---------------------------------------------------------- */

typedef struct ChildError {
        int stage;
        int error;
} ChildError;

static const char *const child_stages[] = {"set up stdio", "change to the working directory", "set the user",
                                           "execute"};

typedef struct ChildSetup {
        int fds[3]; /* child's 0, 1, 2; -1 = /dev/null */
        bool tty;
        Agent *agent;
        const ExecSpec *spec;
        const UserIds *ids;
        int err_fd;
} ChildSetup;

_noreturn_ static void child_fail(int err_fd, int stage) {
        ChildError ce = {.stage = stage, .error = errno};
        (void) write_all(err_fd, &ce, sizeof ce);
        _exit(127);
}

static void child_reset_signals(void) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        signal(sig, SIG_DFL);
}

static int child_setup_stdio(const ChildSetup *c) {
        int devnull = open("/dev/null", O_RDWR);
        int fds[3];
        for (int i = 0; i < 3; i++)
                fds[i] = c->fds[i] >= 0 ? c->fds[i] : devnull;
        if (c->tty && ioctl(fds[0], TIOCSCTTY, 0) < 0)
                return -1;
        /* Move sources above 2 first so that dup2 never overwrites one still needed. */
        for (int i = 0; i < 3; i++)
                if (fds[i] >= 0 && fds[i] < 3 && (fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) < 0)
                        return -1;
        for (int i = 0; i < 3; i++)
                if (fds[i] < 0 || dup2(fds[i], i) < 0)
                        return -1;
        return 0;
}

static int child_enter_root(const ChildSetup *c) {
        Agent *a = c->agent;
        const char *wd = c->spec->workdir && *c->spec->workdir ? c->spec->workdir : "/";
        if (fchdir(a->root_fd) < 0)
                return -1;
        if (a->config.chroot) {
                if (chroot(".") < 0)
                        return -1;
                return chdir(wd);
        }
        /* Host mode: no chroot; the working directory is taken relative to the root. */
        while (*wd == '/')
                wd++;
        return *wd ? chdir(wd) : 0;
}

_noreturn_ static void child_exec(const ChildSetup *c) {
        child_reset_signals();
        if (setsid() < 0 || child_setup_stdio(c) < 0)
                child_fail(c->err_fd, 0);
        if (child_enter_root(c) < 0)
                child_fail(c->err_fd, 1);
        if (c->ids && (setgroups(c->ids->n_groups, c->ids->groups) < 0 || setgid(c->ids->gid) < 0 ||
                       setuid(c->ids->uid) < 0))
                child_fail(c->err_fd, 2);
        environ = c->spec->env;
        execvp(c->spec->argv[0], c->spec->argv);
        child_fail(c->err_fd, 3);
}

/* ---- exec ---------------------------------------------------------------- */

/* Opens a pty pair in the container's own devpts when it has one (so the
 * process sees its terminal under its /dev/pts), else in the agent's. */
static int open_pty(Agent *a, unsigned rows, unsigned cols, int *ret_master, int *ret_slave) {
        int flags = O_RDWR | O_NOCTTY | O_NONBLOCK;
        _cleanup_close_ int master = root_open(a->root_fd, "/dev/ptmx", flags, 0);
        if (master < 0)
                master = open("/dev/ptmx", flags | O_CLOEXEC);
        if (master < 0)
                return negative_errno();
        int unlock = 0;
        if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
                return negative_errno();
        int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0)
                return negative_errno();
        struct winsize ws = {.ws_row = (unsigned short) (rows ? rows : 24), .ws_col = (unsigned short) (cols ? cols : 80)};
        (void) ioctl(master, TIOCSWINSZ, &ws);
        *ret_master = TAKE_FD(master);
        *ret_slave = slave;
        return 0;
}

/* Makes a pipe; the agent's end is non-blocking. agent_reads selects the direction. */
static int make_pipe(bool agent_reads, int *ret_agent, int *ret_child) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return negative_errno();
        *ret_agent = agent_reads ? p[0] : p[1];
        *ret_child = agent_reads ? p[1] : p[0];
        (void) fd_set_nonblock(*ret_agent, true);
        return 0;
}

static void close_fds(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                fds[i] = safe_close(fds[i]);
}

/* Creates the agent and child ends of stdio for spec into p and child_fds. */
static int exec_make_stdio(Agent *a, Session *s, const ExecSpec *spec, Process *p, int child_fds[3]) {
        uint32_t channels[3] = {spec->stdin_channel, spec->stdout_channel, spec->stderr_channel};
        if (spec->tty) {
                int master, slave;
                int r = open_pty(a, spec->rows, spec->cols, &master, &slave);
                if (r < 0)
                        return r;
                child_fds[0] = slave;
                child_fds[1] = fcntl(slave, F_DUPFD_CLOEXEC, 3);
                child_fds[2] = fcntl(slave, F_DUPFD_CLOEXEC, 3);
                p->streams[STREAM_STDIN] = (Stream){.fd = spec->stdin_channel ? master : -1,
                                                    .session = spec->stdin_channel ? s : NULL,
                                                    .channel = spec->stdin_channel,
                                                    .open = spec->stdin_channel != 0};
                /* The master is always drained, or a process writing to the terminal would block. */
                p->streams[STREAM_STDOUT] = (Stream){.fd = master, .session = spec->stdout_channel ? s : NULL,
                                                     .channel = spec->stdout_channel, .open = true,
                                                     .discard = spec->stdout_channel == 0,
                                                     .captured = spec->stdout_channel != 0};
                return 0;
        }
        for (int i = 0; i < 3; i++) {
                if (channels[i] == 0)
                        continue;
                int mine;
                int r = make_pipe(i != STREAM_STDIN, &mine, &child_fds[i]);
                if (r < 0)
                        return r;
                p->streams[i] = (Stream){.fd = mine, .session = s, .channel = channels[i], .open = true,
                                         .captured = i != STREAM_STDIN};
        }
        return 0;
}

static int fork_and_exec(Agent *a, const ExecSpec *spec, const UserIds *ids, Process *p, int child_fds[3],
                         Error **err) {
        int errp[2];
        if (pipe2(errp, O_CLOEXEC) < 0)
                return error_set_errno(err, errno, "pipe");
        ChildSetup c = {.fds = {child_fds[0], child_fds[1], child_fds[2]}, .tty = spec->tty, .agent = a,
                        .spec = spec, .ids = ids, .err_fd = errp[1]};
        pid_t pid = fork();
        if (pid < 0) {
                close_fds(errp, 2);
                return error_set_errno(err, errno, "fork");
        }
        if (pid == 0)
                child_exec(&c);

        safe_close(errp[1]);
        ChildError ce;
        int r = read_exact(errp[0], &ce, sizeof ce);
        safe_close(errp[0]);
        if (r == -EPIPE) { /* the pipe closed on exec: success */
                p->pid = pid;
                return 0;
        }
        (void) waitpid(pid, NULL, 0);
        if (r < 0)
                return error_set_errno(err, -r, "read exec status of '%s'", spec->argv[0]);
        int stage = ce.stage >= 0 && ce.stage < (int) ELEMENTSOF(child_stages) ? ce.stage : 3;
        return error_set(err, ce.error ? ce.error : EIO, "exec '%s': %s: %s", spec->argv[0], child_stages[stage],
                         strerror(ce.error ? ce.error : EIO));
}

int process_exec(Agent *a, Session *s, const ExecSpec *spec, Process **ret, Error **err) {
        if (process_count_running(a) >= AGENT_MAX_PROCESSES)
                return error_set(err, EAGAIN, "too many processes (limit %u)", AGENT_MAX_PROCESSES);

        UserIds ids, *idsp = NULL;
        if (spec->user && *spec->user) {
                int r = user_resolve(a->root_fd, spec->user, &ids, err);
                if (r < 0)
                        return r;
                idsp = &ids;
        }

        Process *p = process_alloc(a, PROCESS_EXEC);
        if (!p)
                return -ENOMEM;
        p->tty = spec->tty;
        p->main = spec->main;
        p->command = strdup(spec->argv[0]);
        int child_fds[3] = {-1, -1, -1};
        int r = exec_make_stdio(a, s, spec, p, child_fds);
        if (r < 0) {
                error_set_errno(err, -r, "exec '%s': create stdio", spec->argv[0]);
                goto fail;
        }
        for (int i = STREAM_STDOUT; i < _STREAM_MAX; i++)
                p->streams[i].send_credit = session_peer_window(s);
        p->started_ns = realtime_nsec();
        r = fork_and_exec(a, spec, idsp, p, child_fds, err);
        close_fds(child_fds, 3);
        if (r < 0)
                goto fail;

        process_link(a, p);
        log_debug("process %u: started '%s' as pid %d", p->id, p->command, (int) p->pid);
        *ret = p;
        return 0;
fail:
        close_fds(child_fds, 3);
        process_free(a, p);
        return r;
}

/* ---- copy helpers -------------------------------------------------------- */

/* In a forked helper: moves the fds it needs to 3, 4, 5 and closes all others,
 * so that the helper does not keep the session socket or other pipes alive. */
static int helper_fds(int data_fd, int status_fd, int root_fd) {
        int src[3] = {data_fd, status_fd, root_fd}, tmp[3];
        for (int i = 0; i < 3; i++)
                if ((tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 64)) < 0)
                        return -1;
        for (int i = 0; i < 3; i++)
                if (dup3(tmp[i], 3 + i, O_CLOEXEC) < 0)
                        return -1;
        return close_range(6, ~0u, 0);
}

_noreturn_ static void helper_main(ProcessKind kind, const char *path, int data_fd, int status_fd, int root_fd) {
        child_reset_signals();
        signal(SIGPIPE, SIG_IGN);
        if (helper_fds(data_fd, status_fd, root_fd) < 0)
                _exit(2);
        (void) fd_set_nonblock(3, false);
        _cleanup_error_ Error *e = NULL;
        CopyStats stats = {0};
        int r = kind == PROCESS_COPY_IN ? copy_in_extract(5, path, 3, geteuid() == 0, &stats, &e)
                                        : copy_out_archive(5, path, 3, &stats, &e);
        safe_close(3); /* copy-out: EOF for the reader before the status */
        char line[1100];
        int n = snprintf(line, sizeof line, "%d %llu %llu %s", r < 0 ? -r : 0, (unsigned long long) stats.bytes,
                         (unsigned long long) stats.entries, r < 0 ? error_text(e) : "");
        (void) write_all(4, line, (size_t) MIN(n, (int) sizeof line - 1));
        _exit(r < 0 ? 1 : 0);
}

static int process_copy(Agent *a, Session *s, ProcessKind kind, const char *path, uint32_t channel,
                        uint32_t request_id, Error **err) {
        const char *what = kind == PROCESS_COPY_IN ? "copy-in" : "copy-out";
        Process *p = process_alloc(a, kind);
        if (!p)
                return -ENOMEM;
        p->command = strdup(what);
        p->copy_session = s;
        p->copy_request = request_id;
        StreamIndex idx = kind == PROCESS_COPY_IN ? STREAM_STDIN : STREAM_STDOUT;
        int child_data = -1, child_status = -1, r;
        if ((r = make_pipe(idx == STREAM_STDOUT, &p->streams[idx].fd, &child_data)) < 0 ||
            (r = make_pipe(true, &p->status_fd, &child_status)) < 0) {
                safe_close(child_data);
                process_free(a, p);
                return error_set_errno(err, -r, "%s '%s': pipe", what, path);
        }
        p->streams[idx].session = s;
        p->streams[idx].channel = channel;
        p->streams[idx].open = true;
        p->streams[idx].send_credit = session_peer_window(s);
        p->started_ns = realtime_nsec();

        pid_t pid = fork();
        if (pid == 0)
                helper_main(kind, path, child_data, child_status, a->root_fd);
        int saved = errno;
        safe_close(child_data);
        safe_close(child_status);
        if (pid < 0) {
                process_free(a, p);
                return error_set_errno(err, saved, "%s '%s': fork", what, path);
        }
        p->pid = pid;
        process_link(a, p);
        return 0;
}

int process_copy_in(Agent *a, Session *s, const char *path, uint32_t channel, uint32_t request_id, Error **err) {
        return process_copy(a, s, PROCESS_COPY_IN, path, channel, request_id, err);
}

int process_copy_out(Agent *a, Session *s, const char *path, uint32_t channel, uint32_t request_id, Error **err) {
        return process_copy(a, s, PROCESS_COPY_OUT, path, channel, request_id, err);
}

/* ---- I/O ----------------------------------------------------------------- */

/* How much one output stream of p may keep while nobody reads it. */
static size_t output_buffer_limit(const Process *p) {
        unsigned n = p->streams[STREAM_STDOUT].captured + p->streams[STREAM_STDERR].captured;
        return AGENT_OUTPUT_BUFFER_MAX / MAX(n, 1u);
}

void process_on_output(Agent *a, Process *p, StreamIndex idx) {
        Stream *st = &p->streams[idx];
        if (!st->open)
                return;
        bool bound = st->channel && st->session;
        if (bound && st->ring.len > 0)
                return; /* the buffered bytes go first (process_pump_output) */
        size_t want = bound ? (size_t) MIN(st->send_credit, (uint64_t) sizeof scratch) : sizeof scratch;
        if (want == 0)
                return;
        ssize_t n = read(st->fd, scratch, want);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n > 0) {
                if (bound) {
                        st->send_credit -= (uint64_t) n;
                        (void) session_send_data(st->session, st->channel, scratch, (size_t) n, false);
                } else if (st->captured && !st->discard)
                        output_ring_write(a, &st->ring, output_buffer_limit(p), scratch, (size_t) n);
                return;
        }
        /* EOF, or EIO from a pty master whose last slave closed. Unbound, the
         * EOF is sent after the buffered bytes once a session attaches. */
        if (bound) {
                (void) session_send_data(st->session, st->channel, NULL, 0, true);
                st->eof_sent = true;
        }
        stream_close(p, idx);
        if (p->tty && idx == STREAM_STDOUT)
                stream_close(p, STREAM_STDIN);
}

static void stdin_return_credit(Agent *a, Stream *st, bool force) {
        uint32_t quarter = session_local_window(st->session) / 4;
        if (st->credit_owed > 0 && (force || st->credit_owed >= quarter || st->buf_len == 0)) {
                (void) session_send_credit(st->session, st->channel, st->credit_owed);
                st->credit_owed = 0;
        }
}

/* The writer side of stdin is finished: a pipe is closed, a terminal gets VEOF. */
static void stdin_finish(Process *p) {
        Stream *st = &p->streams[STREAM_STDIN];
        if (p->tty && st->fd >= 0) {
                struct termios t;
                char eof = tcgetattr(st->fd, &t) == 0 ? (char) t.c_cc[VEOF] : 4;
                (void) write(st->fd, &eof, 1);
        }
        stream_close(p, STREAM_STDIN);
}

void process_on_input_writable(Agent *a, Process *p) {
        Stream *st = &p->streams[STREAM_STDIN];
        while (st->open && st->buf_len > 0) {
                ssize_t n = write(st->fd, st->buf, st->buf_len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n < 0) { /* EPIPE: the process closed its stdin */
                        (void) session_send_reset(st->session, st->channel, errno, "stdin of process %u: %s", p->id,
                                                  strerror(errno));
                        st->channel = 0;
                        st->session = NULL;
                        stream_close(p, STREAM_STDIN);
                        return;
                }
                memmove(st->buf, st->buf + n, st->buf_len - (size_t) n);
                st->buf_len -= (size_t) n;
                st->credit_owed += (uint32_t) n;
        }
        if (!st->open)
                return;
        stdin_return_credit(a, st, false);
        if (st->buf_len == 0 && st->eof_received)
                stdin_finish(p);
}

void process_on_stdin_data(Agent *a, Process *p, const uint8_t *data, size_t len, bool eof) {
        Stream *st = &p->streams[STREAM_STDIN];
        if (len > 0) {
                if (!st->buf)
                        st->buf = malloc(session_local_window(st->session));
                if (!st->buf) {
                        (void) session_send_reset(st->session, st->channel, ENOMEM, "stdin of process %u: out of memory",
                                                  p->id);
                        return;
                }
                memcpy(st->buf + st->buf_len, data, len);
                st->buf_len += len;
        }
        if (eof)
                st->eof_received = true;
        process_on_input_writable(a, p);
}

/* ---- exit, completion ---------------------------------------------------- */

void process_reap(Agent *a) {
        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG);
                if (pid <= 0)
                        return;
                Process *p = a->processes;
                while (p && !(p->pid == pid && !p->exited))
                        p = p->next;
                if (!p)
                        continue; /* an orphan we inherited as init or subreaper */
                p->exited = true;
                p->finished_ns = realtime_nsec();
                if (WIFSIGNALED(status)) {
                        p->term_signal = WTERMSIG(status);
                        p->exit_code = 128 + p->term_signal;
                } else
                        p->exit_code = WEXITSTATUS(status);
                log_debug("process %u (pid %d) exited with %d", p->id, (int) pid, p->exit_code);
        }
}

static void process_read_status(Process *p) {
        while (p->status_fd >= 0) {
                size_t room = sizeof p->status - 1 - p->status_len;
                ssize_t n = room ? read(p->status_fd, p->status + p->status_len, room) : 0;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        p->status_fd = safe_close(p->status_fd);
                        break;
                }
                p->status_len += (size_t) n;
        }
        p->status[p->status_len] = 0;
}

/* Exited, and every output delivered: read to EOF, and that EOF sent on
 * the channel it is bound to (an unbound stream keeps its bytes for an
 * attach, which does not hold up the exit status). */
static bool process_done(Process *p) {
        if (p->kind != PROCESS_EXEC)
                process_read_status(p);
        for (int i = STREAM_STDOUT; i < _STREAM_MAX; i++) {
                const Stream *st = &p->streams[i];
                if (st->open || (st->channel && !st->eof_sent))
                        return false;
        }
        return p->exited && p->status_fd < 0;
}

void process_fill_info(const Process *p, Plagent__ProcessInfo *info) {
        plagent__process_info__init(info);
        info->process_id = p->id;
        info->pid = p->pid;
        info->state = p->exited ? PLAGENT__PROCESS_STATE__PROCESS_STATE_EXITED
                                : PLAGENT__PROCESS_STATE__PROCESS_STATE_RUNNING;
        info->exit_code = p->exited ? p->exit_code : 0;
        info->signal = p->term_signal;
        info->started_unix_ns = p->started_ns;
        info->finished_unix_ns = p->finished_ns;
        info->command = p->command ? p->command : (char *) "";
        info->tty = p->tty;
}

static void answer_copy(Agent *a, Process *p) {
        int code = 0;
        unsigned long long bytes = 0, entries = 0;
        int msg_at = 0;
        if (sscanf(p->status, "%d %llu %llu %n", &code, &bytes, &entries, &msg_at) < 3)
                code = -1;
        const char *what = p->kind == PROCESS_COPY_IN ? "copy-in" : "copy-out";
        if (code < 0 || (code == 0 && p->exit_code != 0)) {
                (void) session_send_error(p->copy_session, p->copy_request, EIO, "%s helper died (exit status %d)", what,
                                          p->exit_code);
                return;
        }
        if (code > 0) {
                (void) session_send_error(p->copy_session, p->copy_request, code, "%s", p->status + msg_at);
                return;
        }
        Plagent__CopyResponse cr = PLAGENT__COPY_RESPONSE__INIT;
        cr.bytes = bytes;
        cr.entries = entries;
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        resp.result_case = PLAGENT__RESPONSE__RESULT_COPY;
        resp.copy = &cr;
        (void) session_send_response(p->copy_session, p->copy_request, &resp);
}

/* Answers every wait on p; returns how many were answered. */
static unsigned answer_waiters(Agent *a, Process *p) {
        Plagent__ProcessInfo info;
        process_fill_info(p, &info);
        Plagent__Response resp = PLAGENT__RESPONSE__INIT;
        resp.result_case = PLAGENT__RESPONSE__RESULT_PROCESS;
        resp.process = &info;
        unsigned n = 0;
        while (p->waiters) {
                Waiter *w = p->waiters;
                p->waiters = w->next;
                n += session_send_response(w->session, w->request_id, &resp) >= 0;
                free(w);
        }
        return n;
}

/* The main process is done: the container is over once its exit status
 * reached the host (or nobody asked for it within AGENT_MAIN_LINGER_MS). */
static void main_process_done(Agent *a, Process *p, bool delivered) {
        if (!delivered && !a->main_linger_deadline) {
                a->main_linger_deadline = now_usec() + AGENT_MAIN_LINGER_MS * USEC_PER_MSEC;
                return;
        }
        if (!delivered && now_usec() < a->main_linger_deadline)
                return;
        log_info("main process %u exited with %d: shutting down", p->id, p->exit_code);
        p->main = false;
        a->main_linger_deadline = 0;
        agent_begin_shutdown(a, 0);
}

void process_complete(Agent *a) {
        unsigned kept = 0;
        for (Process **pp = &a->processes; *pp;) {
                Process *p = *pp;
                if (!process_done(p)) {
                        pp = &p->next;
                        continue;
                }
                if (p->kind == PROCESS_EXEC) {
                        unsigned answered = answer_waiters(a, p);
                        if (p->main && !a->shutting_down)
                                main_process_done(a, p, answered > 0);
                        /* The list is newest first: keep the most recent exited ones. */
                        if (++kept <= AGENT_KEEP_EXITED) {
                                pp = &p->next;
                                continue;
                        }
                } else if (p->copy_session && p->copy_request)
                        answer_copy(a, p);
                *pp = p->next;
                process_free(a, p);
        }
}

static void waiters_drop_session(Process *p, Session *s) {
        for (Waiter **pw = &p->waiters; *pw;) {
                Waiter *w = *pw;
                if (w->session != s) {
                        pw = &w->next;
                        continue;
                }
                *pw = w->next;
                free(w);
        }
}

void process_detach_session(Agent *a, Session *s) {
        for (Process *p = a->processes; p; p = p->next) {
                Stream *in = &p->streams[STREAM_STDIN];
                if (in->session == s && in->channel) {
                        in->channel = 0;
                        in->session = NULL;
                        stdin_finish(p);
                }
                for (int i = STREAM_STDOUT; i < _STREAM_MAX; i++)
                        if (p->streams[i].session == s)
                                process_unbind_output(a, p, (StreamIndex) i);
                waiters_drop_session(p, s);
                if (p->kind != PROCESS_EXEC && p->copy_session == s) {
                        p->copy_session = NULL; /* nobody to answer: abort the copy */
                        p->copy_request = 0;
                        if (!p->exited)
                                (void) kill(p->pid, SIGKILL);
                }
        }
}

int process_signal(Agent *a, Process *p, int sig) {
        if (p->exited)
                return -ESRCH;
        return kill(p->pid, sig) < 0 ? negative_errno() : 0;
}

/* ---- descendants (host mode) --------------------------------------------- */

typedef struct ProcEntry {
        pid_t pid, ppid;
        bool live;       /* not a zombie */
        int parent;      /* index of the parent in the table, -1 when not in it */
        int descendant;  /* -1 unknown, 0 no, 1 yes */
} ProcEntry;

static int proc_entry_cmp(const void *x, const void *y) {
        const ProcEntry *a = x, *b = y;
        return (a->pid > b->pid) - (a->pid < b->pid);
}

/* Reads pid, ppid and state of every process in /proc, sorted by pid. */
static int proc_table(ProcEntry **ret, size_t *ret_n) {
        DIR *d = opendir("/proc");
        if (!d)
                return negative_errno();
        ProcEntry *v = NULL;
        size_t n = 0, cap = 0;
        int r = 0;
        for (struct dirent *de; r >= 0 && (de = readdir(d));) {
                char *end, path[64], buf[512];
                long pid = strtol(de->d_name, &end, 10);
                if (*end || pid <= 0)
                        continue;
                snprintf(path, sizeof path, "/proc/%ld/stat", pid);
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                ssize_t k = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
                if (k <= 0)
                        continue; /* gone meanwhile */
                buf[k] = 0;
                char state;
                int ppid;
                const char *rp = strrchr(buf, ')'); /* the command name may hold anything */
                if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2)
                        continue;
                if (n == cap) {
                        cap = MAX(cap * 2, (size_t) 256);
                        ProcEntry *nv = realloc(v, cap * sizeof *v);
                        if (!nv) {
                                r = -ENOMEM;
                                break;
                        }
                        v = nv;
                }
                v[n++] = (ProcEntry){.pid = (pid_t) pid, .ppid = ppid, .live = state != 'Z' && state != 'X',
                                     .descendant = -1};
        }
        closedir(d);
        if (r < 0) {
                free(v);
                return r;
        }
        qsort(v, n, sizeof *v, proc_entry_cmp);
        for (size_t i = 0; i < n; i++) {
                ProcEntry key = {.pid = v[i].ppid};
                ProcEntry *parent = n ? bsearch(&key, v, n, sizeof *v, proc_entry_cmp) : NULL;
                v[i].parent = parent ? (int) (parent - v) : -1;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* Whether entry i descends from self. Walks up the parent links to an
 * answer (a child of self, an entry already decided, or the top) and
 * records it on every entry passed, so a whole table costs O(n). */
static bool proc_descends(ProcEntry *v, size_t i, pid_t self) {
        int verdict = 0, j = (int) i;
        for (size_t steps = 0; j >= 0 && steps < 4096; steps++, j = v[j].parent) {
                if (v[j].descendant >= 0) {
                        verdict = v[j].descendant;
                        break;
                }
                if (v[j].ppid == self) {
                        verdict = 1;
                        break;
                }
        }
        /* Up to and including j: above a child of self are self and its own
         * ancestors, which this walk says nothing about. */
        for (int k = (int) i; k >= 0 && v[k].descendant < 0; k = v[k].parent) {
                v[k].descendant = verdict;
                if (k == j)
                        break;
        }
        return verdict == 1;
}

/* Host mode: sends sig to every live descendant of the agent, found in /proc
 * by parent links, so that processes that daemonized (double fork, setsid)
 * and were reparented to us as subreaper are reached too although no
 * Process names them. Passes repeat while they find processes not yet
 * signalled (a fork racing the walk); none is signalled twice. Returns the
 * number signalled, or a negative errno when none was because /proc could
 * not be read. */
static int signal_descendants(int sig) {
        pid_t self = getpid(), *done = NULL;
        size_t n_done = 0;
        int r = 0;
        for (int pass = 0; pass < 16; pass++) {
                ProcEntry *v;
                size_t n;
                if ((r = proc_table(&v, &n)) < 0)
                        break;
                size_t before = n_done;
                pid_t *nd = realloc(done, (n_done + n + 1) * sizeof *done);
                if (!nd) {
                        free(v);
                        r = -ENOMEM;
                        break;
                }
                done = nd;
                for (size_t i = 0; i < n; i++) {
                        if (!v[i].live || !proc_descends(v, i, self))
                                continue;
                        bool seen = false;
                        for (size_t k = 0; k < before && !seen; k++)
                                seen = done[k] == v[i].pid;
                        if (seen)
                                continue;
                        (void) kill(v[i].pid, sig);
                        done[n_done++] = v[i].pid;
                }
                free(v);
                if (n_done == before)
                        break;
        }
        free(done);
        return r < 0 && n_done == 0 ? r : (int) n_done;
}

bool process_descendants_running(Agent *a) {
        if (a->config.pid1)
                return false;
        ProcEntry *v;
        size_t n;
        if (proc_table(&v, &n) < 0)
                return false;
        bool found = false;
        /* One we may not signal (setuid) cannot be stopped: it does not count. */
        for (size_t i = 0; i < n && !found; i++)
                found = v[i].live && proc_descends(v, i, getpid()) && kill(v[i].pid, 0) == 0;
        free(v);
        return found;
}

int process_signal_all(Agent *a, int sig) {
        if (a->config.pid1)
                return kill(-1, sig) < 0 && errno != ESRCH ? negative_errno() : 0;
        if (signal_descendants(sig) >= 0)
                return 0;
        /* No /proc: at least the processes we started. */
        for (Process *p = a->processes; p; p = p->next)
                if (!p->exited)
                        (void) kill(p->pid, sig);
        return 0;
}
