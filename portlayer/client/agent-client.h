/* agent-client.h: the host side of the agent protocol (docs/protocol.md).
 *
 * One AgentClient per connection to one guest agent. It is thread-safe: a
 * daemon calls it from many threads at once (one per API request), many
 * processes stream at the same time, and each blocking call takes a timeout.
 * A private reader thread demultiplexes frames into pending requests and data
 * channels. The guest is untrusted: every length, count and string read from
 * it is bounded, and a dead, slow or hostile agent yields an error (-ETIMEDOUT,
 * -EPROTO, -ECONNRESET...), never a hang or a crash. Once the connection is
 * broken every call fails fast with the reason; the owner frees the client and
 * connects anew.
 *
 * Timeouts are in milliseconds; a negative timeout means "no deadline" and is
 * meant only for calls the user asked to block (wait on a long process). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/base/error.h"

typedef struct AgentClient AgentClient;
typedef struct AgentProcess AgentProcess;

typedef struct AgentClientOptions {
        int handshake_timeout_ms; /* default 10000 */
        int request_timeout_ms;   /* default for RPCs without their own; default 30000 */
        uint32_t window;          /* credit granted per channel; default PL_DEFAULT_WINDOW */
} AgentClientOptions;

/* Connects to a Unix socket (agent in host mode, or QEMU's virtio-serial
 * chardev socket) and performs the handshake. For virtio-serial the handshake
 * is retried until handshake_timeout_ms, since the guest may not listen yet. */
int agent_client_connect_unix(AgentClient **ret, const char *path, const AgentClientOptions *opts, Error **err);

/* Connects over AF_VSOCK to cid:port (the agent listens on 1024 in guests)
 * and performs the handshake, retried until handshake_timeout_ms like
 * agent_client_connect_unix(). Only for hosts with vhost-vsock, and for
 * clients inside a guest (cid 1 is the guest's own loopback). */
int agent_client_connect_vsock(AgentClient **ret, unsigned cid, unsigned port, const AgentClientOptions *opts,
                               Error **err);

/* Takes ownership of a connected stream fd and performs the handshake. */
int agent_client_new_fd(AgentClient **ret, int fd, const AgentClientOptions *opts, Error **err);

/* Closes the connection, fails every pending call, joins the reader thread.
 * Every AgentProcess must be freed before. NULL-safe; returns NULL. */
AgentClient *agent_client_free(AgentClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentClient *, agent_client_free);
#define _cleanup_agent_client_ _cleanup_(agent_client_freep)

/* Breaks the connection at once, from any thread: every pending and later
 * call fails with -ECONNRESET and the message why. The client must still be
 * freed. */
void agent_client_close(AgentClient *c, const char *why);

/* True until the connection broke; then agent_client_error() says why. */
bool agent_client_is_alive(AgentClient *c);
/* 0 while the connection is alive; else sets *err to why it broke and returns
 * the negative errno (-ECONNRESET, -EPROTO...). */
int agent_client_error(AgentClient *c, Error **err);

/* The agent's software string and instance id from its HELLO. */
const char *agent_client_peer_software(AgentClient *c);
uint64_t agent_client_peer_instance(AgentClient *c);

int agent_client_ping(AgentClient *c, int timeout_ms, Error **err);

typedef struct AgentGuestInfo {
        char agent_version[64];
        char kernel_release[128];
        char hostname[256];
        char machine[64];
        char root[4096];
        char boot_error[1024]; /* PID 1: why stage 1 failed (the agent serves anyway); "" when fine */
        char root_grow_error[1024]; /* PID 1: why the root filesystem was not grown to its disk; "" when fine */
        uint64_t uptime_ms;
        uint64_t mem_total_kib;
        uint64_t mem_available_kib;
        uint32_t cpus;
        uint32_t processes;
} AgentGuestInfo;

int agent_client_guest_info(AgentClient *c, AgentGuestInfo *ret, int timeout_ms, Error **err);

typedef struct AgentExecSpec {
        const char *const *argv; /* NULL-terminated, argv[0] required */
        const char *const *env;  /* NULL-terminated or NULL */
        const char *workdir;     /* NULL = "/" */
        const char *user;        /* NULL = agent's user; "uid[:gid]" or "name[:group]" */
        bool tty;
        uint16_t rows, cols;     /* tty size */
        bool open_stdin;         /* false: stdin is /dev/null */
        bool capture_stdout;     /* false: discarded by the agent */
        bool capture_stderr;     /* ignored with tty (one output stream) */
        bool main;               /* the container's main process: the agent shuts down once it is done */
} AgentExecSpec;

/* Starts a process. On success *ret is a handle whose streams can be read and
 * written from any thread. Freeing the handle does not kill the process; it
 * closes its channels (the agent then keeps the newest 1 MiB of its captured
 * output for agent_client_attach() and drops the rest). */
int agent_client_exec(AgentClient *c, const AgentExecSpec *spec, AgentProcess **ret, int timeout_ms, Error **err);
AgentProcess *agent_process_free(AgentProcess *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentProcess *, agent_process_free);
#define _cleanup_agent_process_ _cleanup_(agent_process_freep)

uint32_t agent_process_id(AgentProcess *p);
int agent_process_pid(AgentProcess *p);

typedef enum AgentStream {
        AGENT_STREAM_STDOUT = 1,
        AGENT_STREAM_STDERR = 2,
} AgentStream;

/* Writes all of buf to the process's stdin, waiting for credit as needed.
 * Returns 0, -EPIPE when stdin is closed or was not opened, -ETIMEDOUT. */
int agent_process_write_stdin(AgentProcess *p, const void *buf, size_t len, int timeout_ms, Error **err);
/* Half-closes stdin: the process reads end of input; output keeps flowing.
 * A write_stdin() still waiting for credit in another thread fails (-EPIPE). */
int agent_process_close_stdin(AgentProcess *p, Error **err);

/* Reads up to len bytes of one output stream. Returns bytes read (> 0), 0 at
 * EOF, -ETIMEDOUT, or another negative errno. Reading returns credit to the
 * agent; a stream nobody reads stalls only its own process. */
ssize_t agent_process_read(AgentProcess *p, AgentStream stream, void *buf, size_t len, int timeout_ms, Error **err);

typedef enum AgentProcessState {
        AGENT_PROCESS_RUNNING = 1,
        AGENT_PROCESS_EXITED = 2,
} AgentProcessState;

typedef struct AgentProcessInfo {
        uint32_t process_id;
        int pid;
        AgentProcessState state;
        int exit_code; /* 128 + signal for a signal death */
        int signal;
        uint64_t started_unix_ns;
        uint64_t finished_unix_ns;
        char command[256];
        bool tty;
} AgentProcessInfo;

/* Waits until the process exited and its output was delivered (all output is
 * readable before this returns). The caller should keep reading captured
 * streams, or the agent cannot drain them. */
int agent_process_wait(AgentProcess *p, AgentProcessInfo *ret, int timeout_ms, Error **err);
int agent_client_wait(AgentClient *c, uint32_t process_id, AgentProcessInfo *ret, int timeout_ms, Error **err);

typedef struct AgentAttachInfo {
        AgentProcessInfo process; /* as it was at the attach (it may have exited) */
        uint64_t stdout_dropped;  /* bytes the agent's buffer limit dropped (oldest first) since the last attach */
        uint64_t stderr_dropped;
} AgentAttachInfo;

/* Re-attaches to the captured stdout and/or stderr of process process_id
 * (one started by any session, for example before a daemon restart): the
 * handle's streams read like an exec's, first what the agent kept while
 * nobody read them (its newest 1 MiB per process), then live output, then
 * EOF. The handle has no stdin. *ret_info (may be NULL) says how many bytes
 * were lost to the agent's limit. Errors from the agent: -ESRCH (no such
 * process, or forgotten), -EINVAL (a stream the exec did not capture, or
 * stderr of a tty process), -EBUSY (a stream still attached elsewhere).
 * Freeing the handle leaves the process running and its output buffered for
 * the next attach. */
int agent_client_attach(AgentClient *c, uint32_t process_id, bool attach_stdout, bool attach_stderr,
                        AgentProcess **ret, AgentAttachInfo *ret_info, int timeout_ms, Error **err);

int agent_process_resize(AgentProcess *p, uint16_t rows, uint16_t cols, Error **err);
int agent_process_signal(AgentProcess *p, int sig, Error **err);
/* process_id 0 with all = true signals every running process. */
int agent_client_signal(AgentClient *c, uint32_t process_id, int sig, bool all, Error **err);

/* *ret is a malloc'd array of *ret_n entries (at most 4096 are accepted). */
int agent_client_list_processes(AgentClient *c, AgentProcessInfo **ret, size_t *ret_n, int timeout_ms, Error **err);

typedef struct AgentCopyStats {
        uint64_t bytes;
        uint64_t entries;
} AgentCopyStats;

/* Streams a tar archive read from tar_fd (until EOF) into the guest, extracted
 * under path. Blocks until the agent finished extracting. */
int agent_client_copy_in(AgentClient *c, const char *path, int tar_fd, AgentCopyStats *ret, int timeout_ms, Error **err);
/* Writes path (file or tree) as a tar archive to out_fd. */
int agent_client_copy_out(AgentClient *c, const char *path, int out_fd, AgentCopyStats *ret, int timeout_ms, Error **err);

typedef struct AgentStat {
        char name[256];
        mode_t mode;
        uint64_t size;
        int64_t mtime_ns;
        char link_target[4096];
        uid_t uid;
        gid_t gid;
} AgentStat;

int agent_client_stat(AgentClient *c, const char *path, AgentStat *ret, int timeout_ms, Error **err);
int agent_client_remove(AgentClient *c, const char *path, bool recursive, int timeout_ms, Error **err);
/* Asks the agent to stop every process (SIGTERM, grace_ms, SIGKILL) and, as
 * PID 1, power off. */
int agent_client_shutdown(AgentClient *c, uint32_t grace_ms, int timeout_ms, Error **err);

/* ---- setup and /etc (docs/protocol.md, "Setup and /etc") ----------------- */

typedef struct AgentInterface {
        const char *mac;     /* which guest NIC: matched by MAC */
        const char *address; /* CIDR, "10.88.0.5/16" */
        const char *gateway; /* default route via this, or NULL/"" for none */
        unsigned mtu;        /* 0: leave */
} AgentInterface;

typedef enum AgentMountKind { AGENT_MOUNT_BLOCK, AGENT_MOUNT_VIRTIOFS } AgentMountKind;

typedef struct AgentMount {
        AgentMountKind kind;
        const char *source; /* BLOCK: the virtio-blk serial; VIRTIOFS: the tag */
        const char *target; /* absolute path inside the container's root; created if missing */
        const char *fstype; /* BLOCK: NULL = "ext4" */
        bool read_only;
} AgentMount;

/* Once per boot, before the main process: configures each interface (link
 * up, MTU, address, default route; loopback up) and mounts each mount in
 * order. All or nothing where it can be: the agent checks the whole request
 * before it changes anything (-EINVAL, -E2BIG past 8 interfaces or 64
 * mounts), finds every NIC before it configures one (-ENODEV for an unknown
 * MAC), and unmounts what it mounted when a later mount fails. A disk may
 * take up to timeout_ms minus a second to appear (-ENODEV after that).
 * -EALREADY after a setup succeeded. */
int agent_client_setup(AgentClient *c, const AgentInterface *ifs, size_t n_ifs, const AgentMount *mounts,
                       size_t n_mounts, int timeout_ms, Error **err);

typedef struct AgentHostEntry {
        const char *address;
        const char *const *names;
        size_t n_names;
} AgentHostEntry;

typedef struct AgentEtc {
        bool write_hostname, write_hosts, write_resolv; /* which files the agent (re)writes */
        const char *hostname;                           /* /etc/hostname and the UTS name */
        const AgentHostEntry *hosts;                    /* /etc/hosts: localhost lines + these */
        size_t n_hosts;
        const char *const *nameservers; /* /etc/resolv.conf */
        size_t n_nameservers;
        const char *const *search;
        size_t n_search;
} AgentEtc;

/* May be sent any number of times (peers come and go): rewrites the chosen
 * files atomically, and only those. Bad names or addresses are -EINVAL with
 * nothing written; at most 256 hosts entries of 1-16 names, 8 nameservers
 * and 6 search domains (-E2BIG). */
int agent_client_write_etc(AgentClient *c, const AgentEtc *etc, int timeout_ms, Error **err);

/* ---- activate (docs/protocol.md, "Activate") ------------------------------ */

#define AGENT_ACTIVATE_ENTROPY 64 /* bytes of host entropy sent with an activate */

typedef struct AgentActivate {
        const char *root_serial; /* the hot-plugged root disk's virtio-blk serial */
        const char *fstype;      /* NULL = "ext4" */
        bool read_only;
        bool no_grow;
        const char *hostname;
        const char *const *wait_macs; /* hot-plugged NICs the agent waits for, at most 4 */
        size_t n_wait_macs;
} AgentActivate;

/* Turns a guest booted for the warm pool (pl.pool=1) into a container's
 * guest: the agent mounts the root disk (waiting up to timeout_ms minus a
 * second for it to appear), sets the hostname, takes the host's clock
 * (CLOCK_REALTIME, read here) and AGENT_ACTIVATE_ENTROPY fresh bytes from
 * getrandom() into its kernel's pool with a forced reseed, and then serves
 * the root chrooted. -EALREADY when the guest was not booted for the pool or
 * is already active; -ENODEV when the disk did not appear. */
int agent_client_activate(AgentClient *c, const AgentActivate *a, int timeout_ms, Error **err);
