/* agent.h: the guest agent's internal objects, shared by its modules.
 *
 * The agent is one single-threaded poll() loop (agent.c) that owns:
 * - the listeners and the Sessions (session.c): one per host connection (the
 *   virtio-serial port is one long-lived session), each with its FrameReader,
 *   outbound queue, request dispatch and its own channel number space;
 * - the Process table (process.c): supervised processes and the internal
 *   copy helpers, each with up to three Streams bound to a session's channel.
 * Processes belong to the agent, not to a session: every session sees and
 * controls all of them, and a session that ends only detaches the streams and
 * waits it owned (stdin is closed; output the host asked for is kept in a
 * bounded buffer per process, newest bytes kept, until a session attaches to
 * it again: output-buffer.c).
 * Nothing here blocks for long: the only blocking work (tar extraction and
 * creation) runs in forked helper processes behind pipes. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/proto/agent.pb-c.h"
#include "common/base/error.h"
#include "common/proto/frame.h"

#define AGENT_VERSION "0.1.0"
#define AGENT_MAX_PROCESSES 1024u     /* running at once */
#define AGENT_KEEP_EXITED 256u        /* exited processes remembered for wait/list */
#define AGENT_OUTQ_HIGH (256u * 1024u) /* stop reading process output above this */
#define AGENT_OUTQ_MAX (16u * 1024u * 1024u) /* a host that never reads is dropped */
#define AGENT_MAX_ARGS 4096u
#define AGENT_MAX_SESSIONS 16u
#define AGENT_HELLO_TIMEOUT_MS 5000u  /* a connection silent this long after accept or a sync marker is closed */
#define AGENT_DEFAULT_GRACE_MS 5000u
#define AGENT_MAIN_LINGER_MS 10000u   /* main process done, nobody waited: shut down after this */
/* Output of a process that nobody reads (its session went away or reset the
 * channel) is kept for a later attach, up to this much per process (split
 * evenly between stdout and stderr when both were captured); beyond it the
 * oldest bytes are dropped and counted, so the process never blocks. */
#define AGENT_OUTPUT_BUFFER_MAX (1024u * 1024u)
#define AGENT_OUTPUT_BUFFER_TOTAL (32u * 1024u * 1024u) /* all processes together */
#define AGENT_OUTPUT_BUFFER_MIN (16u * 1024u)           /* first allocation of a buffer */

typedef struct Agent Agent;
typedef struct Session Session;
typedef struct Process Process;

typedef enum TransportKind {
        TRANSPORT_UNIX,   /* listening Unix socket (host mode, tests) */
        TRANSPORT_VSOCK,  /* listening AF_VSOCK socket (inside a guest only) */
        TRANSPORT_SERIAL, /* a virtio-serial port device: one long-lived stream */
        _TRANSPORT_KIND_MAX,
} TransportKind;

typedef struct AgentConfig {
        const char *root;        /* the container root; "/" when NULL */
        bool chroot;             /* run processes chrooted into root (guest mode) */
        bool pid1;               /* we are init: power off on shutdown, reap orphans */
        const char *unix_path;   /* listen on this Unix socket */
        const char *serial_path; /* serve this virtio-serial port device */
        unsigned vsock_port;     /* listen on this vsock port (0 = no) */
        bool vsock_allow_local;  /* serve vsock peers other than the host (the guest's own processes) */
        bool exit_on_shutdown;   /* host mode: exit after a shutdown request */
        bool allow_network;      /* setup may configure NICs (PID 1; host mode only in a namespace of its own) */
        const char *boot_error;  /* PID 1: why stage 1 failed, reported in guest info */
        const char *root_grow_error; /* PID 1: why the root filesystem was not grown to its disk (not fatal) */
        const struct InitConfig *pool; /* PID 1 booted for the warm pool (pl.pool=1): the boot settings
                                        * an activate request starts from; NULL once activated or
                                        * when booted with a root */
} AgentConfig;

typedef enum ProcessKind {
        PROCESS_EXEC,     /* a container process */
        PROCESS_COPY_IN,  /* internal helper extracting a tar stream */
        PROCESS_COPY_OUT, /* internal helper writing a tar stream */
} ProcessKind;

typedef enum StreamIndex {
        STREAM_STDIN,
        STREAM_STDOUT,
        STREAM_STDERR,
        _STREAM_MAX,
} StreamIndex;

/* Output bytes kept while no session reads a stream: a ring that drops its
 * oldest bytes when full. buf is allocated on demand and freed once empty. */
typedef struct OutputRing {
        uint8_t *buf;
        size_t cap, head, len; /* bytes live at buf[head, head + len) modulo cap */
        uint64_t dropped;      /* bytes lost to the limit since the last attach */
} OutputRing;

/* One direction of a process's stdio, bound to a data channel of the session. */
typedef struct Stream {
        int fd;               /* pipe end or pty master (shared by stdin and stdout with a tty) */
        Session *session;     /* the session the channel belongs to; NULL = not bound */
        uint32_t channel;     /* 0 = not bound (never was, or detached) */
        bool open;            /* fd still in use for this direction */
        bool discard;         /* output: nobody will ever read it, drain and drop */
        /* output */
        bool captured;        /* the host asked for it: kept in ring while unbound, attachable */
        OutputRing ring;      /* kept while unbound; sent first after an attach */
        uint64_t send_credit; /* bytes the host still accepts */
        bool eof_sent;        /* EOF went to the bound channel */
        /* input */
        uint8_t *buf;         /* bytes received, not yet written to fd */
        size_t buf_len;
        uint32_t credit_owed; /* consumed bytes not yet returned as CREDIT */
        bool eof_received;
} Stream;

typedef struct Waiter {
        Session *session;
        uint32_t request_id;
        struct Waiter *next;
} Waiter;

struct Process {
        Process *next;
        ProcessKind kind;
        uint32_t id;
        pid_t pid;
        bool tty;
        bool main;              /* the container's main process: the agent shuts down after it */
        char *command;
        bool exited;
        int exit_code;
        int term_signal;
        uint64_t started_ns, finished_ns;
        Stream streams[_STREAM_MAX];
        Waiter *waiters;        /* wait requests, answered when done */
        /* copy helpers */
        Session *copy_session;  /* where the copy request came from; NULL once it is gone */
        uint32_t copy_request;  /* request answered when the helper is done */
        int status_fd;          /* helper writes "code bytes entries message" here */
        char status[1024];
        size_t status_len;
};

struct Agent {
        AgentConfig config;
        int root_fd;
        int signal_fd;
        int listen_fd[_TRANSPORT_KIND_MAX];
        int serial_fd;
        uint64_t serial_retry_usec; /* host detached from the port: look again then */
        Session *sessions[AGENT_MAX_SESSIONS];
        size_t n_sessions;
        Process *processes;
        uint32_t next_process_id;
        size_t output_buffered;     /* bytes allocated by every OutputRing (AGENT_OUTPUT_BUFFER_TOTAL) */
        uint64_t instance;
        bool shutting_down;
        uint64_t shutdown_deadline; /* SIGKILL everything after this */
        bool killed_all;
        uint64_t main_linger_deadline; /* main process done but its status not yet delivered */
        bool done;                  /* leave the loop */
        bool setup_done;            /* a setup request succeeded: it runs once per boot */
};

/* agent.c */
int agent_new(Agent **ret, const AgentConfig *config, Error **err);
Agent *agent_free(Agent *a);
/* Runs until a shutdown finished (host mode) or forever (pid1 powers off). */
int agent_run(Agent *a);
void agent_begin_shutdown(Agent *a, uint32_t grace_ms);

/* transport.c */
int transport_listen_unix(const char *path, Error **err);
int transport_listen_vsock(unsigned port, Error **err);
int transport_open_serial(const char *path, Error **err);
const char *transport_kind_to_string(TransportKind k);
/* Whether a vsock connection from peer (the address and length accept()
 * gave) may be served: only the host (VMADDR_CID_HOST) unless allow_local,
 * which admits any other CID too (the guest's own processes, over loopback
 * or its own CID). Anything but a whole AF_VSOCK address is refused. */
bool transport_vsock_peer_allowed(const struct sockaddr *peer, socklen_t len, bool allow_local);

/* setup.c: the setup and etc requests (docs/protocol.md, "Setup and /etc").
 * Each checks the whole request first (-EINVAL, -E2BIG: nothing changed),
 * then applies it; *err says what failed. agent_setup() is -EALREADY after a
 * setup succeeded, configures the network only with config.allow_network and
 * never in the initial network namespace when it can tell (-EPERM), and undoes its
 * mounts when one fails. agent_write_etc() sets the UTS hostname only as
 * PID 1. */
int agent_setup(Agent *a, const Plagent__SetupRequest *req, Error **err);
int agent_write_etc(Agent *a, const Plagent__EtcRequest *req, Error **err);

/* activate.c: the activate request of a pool guest (docs/protocol.md,
 * "Activate"): checks everything first (-EINVAL: nothing changed), -EALREADY
 * when the agent was not booted for the pool or is already activated. On
 * success the agent serves the mounted root, chrooted. */
int agent_activate(Agent *a, const Plagent__ActivateRequest *req, Error **err);

/* session.c */
int session_new(Session **ret, Agent *a, int fd, TransportKind kind);
Session *session_free(Session *s);
int session_fd(Session *s);
TransportKind session_kind(Session *s);
bool session_wants_write(Session *s);
bool session_can_take_output(Session *s); /* outbound queue below the high mark */
/* When its handshake must be done by (now_usec() clock): AGENT_HELLO_TIMEOUT_MS
 * after accept or after a sync marker restarted it; USEC_INFINITY once HELLO
 * is answered, and always for the serial port, which waits for a host forever. */
uint64_t session_hello_deadline(Session *s);
/* Handles readable / writable; returns 0, or -ECONNRESET when the session ended. */
int session_on_readable(Session *s);
int session_on_writable(Session *s);
/* Queue frames. */
int session_send_data(Session *s, uint32_t channel, const void *buf, size_t len, bool eof);
int session_send_credit(Session *s, uint32_t channel, uint32_t bytes);
int session_send_response(Session *s, uint32_t request_id, Plagent__Response *resp);
int session_send_error(Session *s, uint32_t request_id, int code, const char *fmt, ...) _printf_(4, 5);
int session_send_reset(Session *s, uint32_t channel, int code, const char *fmt, ...) _printf_(4, 5);
uint32_t session_peer_window(Session *s);
uint32_t session_local_window(Session *s);

/* process.c */
typedef struct ExecSpec {
        char **argv;
        char **env;
        const char *workdir;
        const char *user;
        bool tty;
        bool main;
        unsigned rows, cols;
        uint32_t stdin_channel, stdout_channel, stderr_channel;
} ExecSpec;

/* Starts a process whose channels belong to session s. */
int process_exec(Agent *a, Session *s, const ExecSpec *spec, Process **ret, Error **err);
int process_copy_in(Agent *a, Session *s, const char *path, uint32_t channel, uint32_t request_id, Error **err);
int process_copy_out(Agent *a, Session *s, const char *path, uint32_t channel, uint32_t request_id, Error **err);
Process *process_find(Agent *a, uint32_t id);
/* Finds the stream bound to channel of session s. */
Stream *process_find_stream(Agent *a, Session *s, uint32_t channel, Process **ret_process, StreamIndex *ret_index);
bool process_channel_in_use(Agent *a, Session *s, uint32_t channel);
void process_reap(Agent *a);
/* Output or stdin made progress possible; moves bytes, sends EOF, completes. */
void process_on_output(Agent *a, Process *p, StreamIndex idx);
void process_on_input_writable(Agent *a, Process *p);
/* Host sent DATA for a stdin stream (already checked against credit). */
void process_on_stdin_data(Agent *a, Process *p, const uint8_t *data, size_t len, bool eof);
/* Session s is gone or restarting: the streams, waits and copies it owned
 * are detached (captured output buffered, stdin closed, copies aborted). */
void process_detach_session(Agent *a, Session *s);
/* The host reset the output stream idx of p: it is unbound, and its output
 * kept for a later attach (a copy helper's is dropped). */
void process_unbind_output(Agent *a, Process *p, StreamIndex idx);
/* Binds the captured stdout and/or stderr of p to new channels of session s
 * (0 = leave that stream alone); what was buffered goes first, then live
 * output. *ret_dropped[i] (stdout, stderr) is how many bytes the buffer limit
 * cost since the last attach. -EINVAL when a stream was not captured or p has
 * a tty and stderr is asked for, -EBUSY when a stream is still delivering to
 * another channel. */
int process_attach(Agent *a, Session *s, Process *p, uint32_t stdout_channel, uint32_t stderr_channel,
                   uint64_t ret_dropped[2], Error **err);
/* Sends buffered output of attached streams as far as credit and the
 * sessions' queues allow, and EOF once a finished stream is empty. Called
 * every round of the loop, before process_complete(). */
void process_pump_output(Agent *a);
/* Answers waiters / copy requests of finished processes; trims history. */
void process_complete(Agent *a);
int process_signal(Agent *a, Process *p, int sig);
/* Signals every process but the agent: as PID 1 all of them, in host mode
 * every descendant (found in /proc, so daemonized ones too). */
int process_signal_all(Agent *a, int sig);
/* Host mode: whether a live descendant of the agent that we may signal is
 * left, such as a process that daemonized, which no Process tracks. Always
 * false as PID 1 (power-off ends everything). */
bool process_descendants_running(Agent *a);
unsigned process_count_running(Agent *a);
void process_fill_info(const Process *p, Plagent__ProcessInfo *info);
void process_free_all(Agent *a);

/* output-buffer.c */
/* Appends n bytes to r, growing it up to limit bytes within the agent's
 * total (AGENT_OUTPUT_BUFFER_TOTAL) and dropping the oldest bytes beyond;
 * never fails (bytes that find no room are counted in r->dropped). */
void output_ring_write(Agent *a, OutputRing *r, size_t limit, const uint8_t *data, size_t n);
/* The oldest buffered bytes that are contiguous in memory: returns their
 * count (0 when empty) and sets *ret to them. */
size_t output_ring_peek(const OutputRing *r, const uint8_t **ret);
/* Forgets the n oldest bytes (n <= len); frees the buffer once it is empty. */
void output_ring_consume(Agent *a, OutputRing *r, size_t n);
void output_ring_free(Agent *a, OutputRing *r);

/* user.c */
/* Resolves "uid[:gid]" or "name[:group]" against the root's /etc/passwd and
 * /etc/group. Supplementary groups are those listing the user in /etc/group. */
typedef struct UserIds {
        uid_t uid;
        gid_t gid;
        gid_t groups[64];
        size_t n_groups;
} UserIds;
int user_resolve(int root_fd, const char *spec, UserIds *ret, Error **err);
