/* agent.c: the agent's event loop.
 *
 * One poll() over: a signalfd (SIGCHLD reaps; SIGTERM/SIGINT shut down in
 * host mode), the listeners, the current session, and every process stream
 * that can make progress (output only while its channel has credit and its
 * session's outbound queue is short; stdin only while bytes wait). After each
 * round, buffered output goes to the sessions that attached to it, finished
 * processes are completed (waiters answered, history trimmed) and the
 * outbound queues are flushed. Sessions are independent: a new
 * connection adds one (up to AGENT_MAX_SESSIONS) and processes outlive them.
 * A connection must finish its handshake within AGENT_HELLO_TIMEOUT_MS, and
 * when the sessions are all taken, one still in its handshake gives way. */
#include "guest-agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/base/log.h"
#include "guest-agent/init.h"

#define SERIAL_RETRY_USEC (200u * USEC_PER_MSEC)

static int agent_setup_signals(Agent *a, Error **err) {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        if (!a->config.pid1) {
                sigaddset(&mask, SIGTERM);
                sigaddset(&mask, SIGINT);
        }
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return error_set_errno(err, errno, "block signals");
        a->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (a->signal_fd < 0)
                return error_set_errno(err, errno, "signalfd");
        signal(SIGPIPE, SIG_IGN);
        /* Orphaned grandchildren come to us, so every process is reaped. */
        if (!a->config.pid1)
                (void) prctl(PR_SET_CHILD_SUBREAPER, 1);
        return 0;
}

static int agent_add_session(Agent *a, int fd, TransportKind kind) {
        if (a->n_sessions >= AGENT_MAX_SESSIONS)
                return -EMFILE;
        Session *s;
        int r = session_new(&s, a, fd, kind);
        if (r < 0)
                return r;
        a->sessions[a->n_sessions++] = s;
        return 0;
}

static int agent_setup_transports(Agent *a, Error **err) {
        const AgentConfig *c = &a->config;
        if (!c->unix_path && !c->serial_path && !c->vsock_port)
                return error_set(err, EINVAL, "no transport: give a Unix socket, a virtio-serial port or a vsock port");
        if (c->unix_path && (a->listen_fd[TRANSPORT_UNIX] = transport_listen_unix(c->unix_path, err)) < 0)
                return a->listen_fd[TRANSPORT_UNIX];
        if (c->vsock_port && (a->listen_fd[TRANSPORT_VSOCK] = transport_listen_vsock(c->vsock_port, err)) < 0)
                return a->listen_fd[TRANSPORT_VSOCK];
        if (c->serial_path) {
                if ((a->serial_fd = transport_open_serial(c->serial_path, err)) < 0)
                        return a->serial_fd;
                int r = agent_add_session(a, a->serial_fd, TRANSPORT_SERIAL);
                if (r < 0)
                        return error_set_errno(err, -r, "session");
        }
        return 0;
}

int agent_new(Agent **ret, const AgentConfig *config, Error **err) {
        Agent *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->config = *config;
        a->signal_fd = a->serial_fd = -1;
        for (int i = 0; i < _TRANSPORT_KIND_MAX; i++)
                a->listen_fd[i] = -1;
        random_bytes(&a->instance, sizeof a->instance);

        const char *root = config->root ? config->root : "/";
        int r;
        a->root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (a->root_fd < 0)
                r = error_set_errno(err, errno, "open root directory '%s'", root);
        else if ((r = agent_setup_signals(a, err)) >= 0)
                r = agent_setup_transports(a, err);
        if (r < 0) {
                agent_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

Agent *agent_free(Agent *a) {
        if (!a)
                return NULL;
        for (size_t i = 0; i < a->n_sessions; i++)
                session_free(a->sessions[i]);
        a->n_sessions = 0;
        process_free_all(a);
        for (int i = 0; i < _TRANSPORT_KIND_MAX; i++)
                safe_close(a->listen_fd[i]);
        if (a->config.unix_path && a->listen_fd[TRANSPORT_UNIX] >= 0)
                (void) unlink(a->config.unix_path);
        safe_close(a->serial_fd);
        safe_close(a->signal_fd);
        safe_close(a->root_fd);
        free(a);
        return NULL;
}

void agent_begin_shutdown(Agent *a, uint32_t grace_ms) {
        if (a->shutting_down)
                return;
        a->shutting_down = true;
        a->shutdown_deadline = now_usec() + (uint64_t) (grace_ms ? grace_ms : AGENT_DEFAULT_GRACE_MS) * USEC_PER_MSEC;
        log_info("shutting down: SIGTERM to every process, SIGKILL after %u ms",
                 grace_ms ? grace_ms : AGENT_DEFAULT_GRACE_MS);
        (void) process_signal_all(a, SIGTERM);
}

/* Ends session s: the streams and waits it owned detach (processes keep
 * running). The serial port is never closed: its session restarts at once,
 * hunting for the next sync marker, and the port is polled again only after
 * a pause, as one with no host attached reads EOF at once, forever. */
static void agent_end_session(Agent *a, Session *s) {
        size_t i = 0;
        while (i < a->n_sessions && a->sessions[i] != s)
                i++;
        if (i == a->n_sessions)
                return;
        bool serial = session_kind(s) == TRANSPORT_SERIAL;
        process_detach_session(a, s);
        session_free(s);
        a->sessions[i] = a->sessions[--a->n_sessions];
        if (serial && !a->shutting_down && agent_add_session(a, a->serial_fd, TRANSPORT_SERIAL) >= 0)
                a->serial_retry_usec = now_usec() + SERIAL_RETRY_USEC;
}

/* The cap is full: the connection that has waited longest without finishing
 * its handshake gives way to a new one. Established sessions never do; when
 * they hold every slot, the new connection is refused. */
static void agent_evict_handshake(Agent *a) {
        Session *oldest = NULL;
        for (size_t i = 0; i < a->n_sessions; i++) {
                uint64_t d = session_hello_deadline(a->sessions[i]);
                if (d != USEC_INFINITY && (!oldest || d < session_hello_deadline(oldest)))
                        oldest = a->sessions[i];
        }
        if (!oldest)
                return;
        log_info("session limit reached: closing a %s connection that has not finished its handshake",
                 transport_kind_to_string(session_kind(oldest)));
        agent_end_session(a, oldest);
}

/* Closes the connections whose handshake deadline passed. */
static void agent_expire_handshakes(Agent *a) {
        uint64_t now = now_usec();
        for (size_t i = a->n_sessions; i-- > 0;) {
                Session *s = a->sessions[i];
                if (session_hello_deadline(s) > now)
                        continue;
                log_info("closing a %s connection: no handshake within %u ms", transport_kind_to_string(session_kind(s)),
                         AGENT_HELLO_TIMEOUT_MS);
                agent_end_session(a, s);
        }
}

static void agent_accept(Agent *a, TransportKind kind) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        int fd = accept4(a->listen_fd[kind], (struct sockaddr *) &peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
                return;
        if (kind == TRANSPORT_VSOCK &&
            !transport_vsock_peer_allowed((struct sockaddr *) &peer, peer_len, a->config.vsock_allow_local)) {
                log_warning("refusing a vsock connection that does not come from the host");
                safe_close(fd);
                return;
        }
        if (a->n_sessions >= AGENT_MAX_SESSIONS)
                agent_evict_handshake(a);
        int r = agent_add_session(a, fd, kind);
        if (r < 0) {
                log_warning("refusing a %s connection: %s", transport_kind_to_string(kind),
                            r == -EMFILE ? "too many sessions" : strerror(-r));
                safe_close(fd);
        }
}

static bool agent_sessions_flushed(Agent *a) {
        for (size_t i = 0; i < a->n_sessions; i++)
                if (session_wants_write(a->sessions[i]))
                        return false;
        return true;
}

static void agent_on_signal(Agent *a) {
        struct signalfd_siginfo si;
        while (read(a->signal_fd, &si, sizeof si) == (ssize_t) sizeof si) {
                if (si.ssi_signo == SIGCHLD)
                        process_reap(a);
                else if (!a->shutting_down) {
                        log_info("received signal %u", si.ssi_signo);
                        agent_begin_shutdown(a, 0);
                }
        }
        process_reap(a); /* signals coalesce: reap whatever is left */
}

static bool agent_shutdown_progress(Agent *a) {
        if (!a->shutting_down)
                return false;
        bool busy = false;
        for (Process *p = a->processes; p; p = p->next)
                busy |= !p->exited;
        if (!busy) /* processes that daemonized are part of the container too */
                busy = process_descendants_running(a);
        if (busy && !a->killed_all && now_usec() >= a->shutdown_deadline) {
                log_warning("processes still running after the grace period: SIGKILL");
                (void) process_signal_all(a, SIGKILL);
                a->killed_all = true;
        }
        if (busy || !agent_sessions_flushed(a))
                return false;
        if (a->config.pid1)
                init_poweroff(); /* stage 3 */
        return a->config.exit_on_shutdown;
}

typedef struct PollSlot {
        Process *process; /* a stream or status pipe of this process, or NULL */
        Session *session; /* this session's connection, or NULL */
        int stream;       /* StreamIndex, -1 for the status pipe; for the rest: 0 signalfd, 1 + listener kind */
} PollSlot;

typedef struct PollSet {
        struct pollfd *fds;
        PollSlot *slots;
        size_t n, cap;
} PollSet;

static int pollset_add(PollSet *ps, int fd, short events, Process *p, Session *session, int stream) {
        if (ps->n == ps->cap) {
                size_t cap = MAX(ps->cap * 2, (size_t) 32);
                struct pollfd *f = realloc(ps->fds, cap * sizeof(*f));
                if (!f)
                        return -ENOMEM;
                ps->fds = f;
                PollSlot *s = realloc(ps->slots, cap * sizeof(*s));
                if (!s)
                        return -ENOMEM;
                ps->slots = s;
                ps->cap = cap;
        }
        ps->fds[ps->n] = (struct pollfd){.fd = fd, .events = events};
        ps->slots[ps->n] = (PollSlot){.process = p, .session = session, .stream = stream};
        ps->n++;
        return 0;
}

/* An unbound output is always read (dropped or buffered), so its process
 * never blocks; a bound one only once its buffer went out and while there is
 * credit and room in its session's queue. */
static bool stream_wants_read(Agent *a, const Stream *st) {
        if (!st->open)
                return false;
        if (st->discard || !st->channel)
                return true;
        return st->ring.len == 0 && st->send_credit > 0 && session_can_take_output(st->session);
}

static void pollset_add_processes(Agent *a, PollSet *ps) {
        for (Process *p = a->processes; p; p = p->next) {
                Stream *in = &p->streams[STREAM_STDIN];
                if (in->open && in->buf_len > 0)
                        (void) pollset_add(ps, in->fd, POLLOUT, p, NULL, STREAM_STDIN);
                for (int i = STREAM_STDOUT; i < _STREAM_MAX; i++)
                        if (stream_wants_read(a, &p->streams[i]))
                                (void) pollset_add(ps, p->streams[i].fd, POLLIN, p, NULL, i);
                if (p->status_fd >= 0)
                        (void) pollset_add(ps, p->status_fd, POLLIN, p, NULL, -1);
        }
}

static bool session_paused(Agent *a, Session *s) {
        return session_kind(s) == TRANSPORT_SERIAL && now_usec() < a->serial_retry_usec;
}

static int agent_build_pollset(Agent *a, PollSet *ps) {
        ps->n = 0;
        int r = pollset_add(ps, a->signal_fd, POLLIN, NULL, NULL, 0);
        for (int k = 0; k < _TRANSPORT_KIND_MAX && r >= 0; k++)
                if (a->listen_fd[k] >= 0)
                        r = pollset_add(ps, a->listen_fd[k], POLLIN, NULL, NULL, 1 + k);
        for (size_t i = 0; i < a->n_sessions && r >= 0; i++) {
                Session *s = a->sessions[i];
                if (!session_paused(a, s))
                        r = pollset_add(ps, session_fd(s), (short) (POLLIN | (session_wants_write(s) ? POLLOUT : 0)),
                                        NULL, s, 0);
        }
        if (r >= 0)
                pollset_add_processes(a, ps);
        return r;
}

static int agent_poll_timeout(Agent *a) {
        uint64_t deadline = USEC_INFINITY;
        if (a->shutting_down && !a->killed_all)
                deadline = a->shutdown_deadline;
        if (a->serial_retry_usec > now_usec())
                deadline = MIN(deadline, a->serial_retry_usec);
        if (a->shutting_down && a->killed_all)
                deadline = MIN(deadline, now_usec() + 100 * USEC_PER_MSEC);
        if (a->main_linger_deadline)
                deadline = MIN(deadline, a->main_linger_deadline);
        for (size_t i = 0; i < a->n_sessions; i++)
                deadline = MIN(deadline, session_hello_deadline(a->sessions[i]));
        return deadline_poll_ms(deadline);
}

/* A session slot may refer to a session ended earlier in the same round. */
static bool agent_has_session(Agent *a, Session *s) {
        for (size_t i = 0; i < a->n_sessions; i++)
                if (a->sessions[i] == s)
                        return true;
        return false;
}

static void agent_dispatch(Agent *a, PollSet *ps) {
        for (size_t i = 0; i < ps->n; i++) {
                short re = ps->fds[i].revents;
                if (!re)
                        continue;
                PollSlot *slot = &ps->slots[i];
                if (slot->process) {
                        if (slot->stream == STREAM_STDIN)
                                process_on_input_writable(a, slot->process);
                        else if (slot->stream > 0)
                                process_on_output(a, slot->process, (StreamIndex) slot->stream);
                        continue; /* the status pipe is read in process_complete() */
                }
                if (slot->session) {
                        Session *s = slot->session;
                        if (!agent_has_session(a, s))
                                continue;
                        int r = 0;
                        if (re & (POLLIN | POLLHUP | POLLERR))
                                r = session_on_readable(s);
                        if (r >= 0 && (re & POLLOUT))
                                r = session_on_writable(s);
                        if (r < 0)
                                agent_end_session(a, s);
                } else if (slot->stream == 0)
                        agent_on_signal(a);
                else
                        agent_accept(a, (TransportKind) (slot->stream - 1));
        }
}

/* Writes what each session has queued; ends the sessions whose peer is gone. */
static void agent_flush_sessions(Agent *a) {
        for (size_t i = a->n_sessions; i-- > 0;) {
                Session *s = a->sessions[i];
                if (session_wants_write(s) && session_on_writable(s) < 0)
                        agent_end_session(a, s);
        }
}

int agent_run(Agent *a) {
        PollSet ps = {0};
        int r = 0;
        while (!a->done) {
                if ((r = agent_build_pollset(a, &ps)) < 0)
                        break;
                int k = poll(ps.fds, ps.n, agent_poll_timeout(a));
                if (k < 0 && errno != EINTR) {
                        r = log_error_errno(errno, "poll: %m");
                        break;
                }
                if (k > 0)
                        agent_dispatch(a, &ps);
                agent_expire_handshakes(a);
                process_pump_output(a);
                process_complete(a);
                agent_flush_sessions(a);
                a->done = agent_shutdown_progress(a);
        }
        free(ps.fds);
        free(ps.slots);
        return r;
}
