/* container.h: containers and the handle/Commit lifecycle of the port layer.
 *
 * A ContainerHost keeps every container of one daemon: its records on disk
 * (one directory per container under <state>/containers/, written atomically
 * and guarded by a lock file), the handles clients hold, and, for a running
 * container, the VM and the agent connection behind it.
 *
 * The lifecycle (docs/api.md says it for clients):
 *   - container_host_create() checks a name and an image and returns a handle
 *     for a new container; nothing exists yet, on disk or on the hypervisor.
 *   - container_host_get_handle() snapshots an existing container's desired
 *     configuration and its generation.
 *   - handle setters change the handle's private copy: entry point, limits,
 *     labels, the target run state, files to copy in.
 *   - container_host_commit() applies a handle atomically: it answers
 *     -ESTALE (HTTP 409) when the container's generation moved since the handle
 *     was taken, else realizes the change (creates the record and the disk,
 *     boots the VM and starts the main process, stops, pauses...) and blocks
 *     until that is done or has failed. A failed commit leaves the container
 *     as it was: a VM that was booted is destroyed, a disk that was created is
 *     removed, the record keeps its generation and gets the error text.
 *
 * Every JSON object this module hands out or takes is documented in
 * docs/api.md; the configuration object is validated by container_config_*
 * (unknown fields, types and limits) wherever it comes from, records
 * included. Thread-safe: many API threads call in at once; transitions of one
 * container are serialized, queries never wait for a boot. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/base/error.h"
#include "images/store/store.h"
#include "portlayer/network/network.h"
#include "portlayer/vm/vm-driver.h"
#include "portlayer/volume/volume.h"

#define CONTAINER_NAME_MAX 64
#define CONTAINER_ID_HEX 64
#define CONTAINER_ARGS_MAX 1024      /* entries of args, env */
#define CONTAINER_STRING_MAX 4096    /* bytes of one path, arg, env entry, label */
#define CONTAINER_LABELS_MAX 256
#define CONTAINER_HANDLES_MAX 4096   /* open handles per host */
#define CONTAINER_FILES_MAX 64       /* pending copy-ins per handle */
#define CONTAINER_MEMORY_MB_DEFAULT 256
#define CONTAINER_DISK_SIZE_DEFAULT (1ull << 30)
#define CONTAINER_STOP_TIMEOUT_DEFAULT 10 /* seconds from the stop signal to SIGKILL */
#define CONTAINER_LOG_MAX_SIZE_DEFAULT (16ull << 20) /* main.log is rotated before it passes this */
#define CONTAINER_LOG_MAX_FILES_DEFAULT 2            /* rotated files kept: main.log.1, main.log.2 */
#define CONTAINER_LOG_MAX_FILES_MAX 100
#define CONTAINER_VOLUMES_MAX (VM_DISKS_MAX - 1)   /* named volumes per container */
#define CONTAINER_BINDS_MAX VM_FILESYSTEMS_MAX     /* bind mounts per container */

typedef enum ContainerState {
        CONTAINER_CREATED,
        CONTAINER_STARTING,
        CONTAINER_RUNNING,
        CONTAINER_PAUSED,
        CONTAINER_STOPPING,
        CONTAINER_STOPPED,
        CONTAINER_REMOVING,
        _CONTAINER_STATE_MAX,
} ContainerState;

const char *container_state_to_string(ContainerState s); /* "created", "running"... */
int container_state_from_string(const char *s);          /* a ContainerState or -EINVAL */

typedef struct ContainerHost ContainerHost;

/* Where the parts come from. Strings are copied. */
#define CONTAINER_POOL_MAX 16 /* GUEST_POOL_MAX */

typedef struct ContainerHostConfig {
        const char *state_dir;   /* absolute; containers/ and run/ live here */
        VmDriver *driver;        /* borrowed; outlives the host */
        Store *store;            /* borrowed; outlives the host */
        VolumeStore *volumes;    /* borrowed; outlives the host; NULL: volume mounts are refused */
        const char *kernel;      /* guest kernel and initramfs (absolute) */
        const char *initrd;
        VmAccel accel;
        int boot_timeout_ms;     /* 0: 60000 */
        const char *extra_cmdline; /* for the guest kernel, or NULL */
        const char *transport;   /* how the host reaches agents: "auto" (NULL: vsock where
                                  * /dev/vhost-vsock opens, else virtio-serial), "vsock",
                                  * "virtio-serial" */
        uint64_t log_max_size;   /* bytes of main.log before it is rotated; 0: 16 MiB */
        unsigned log_max_files;  /* rotated files kept (main.log.1 ...); 0: 2; at most 100 */
        unsigned pool_size;      /* warm-pool guests kept ready (docs/templates.md); 0: none, every
                                  * start boots cold */
        unsigned tb_cache_mib;   /* TCG's translation cache per VM in MiB; 0: QEMU's default (1 GiB) */
        bool free_page_reporting; /* guests hand freed pages back (a reporting-only balloon) */
        NetworkHost *network;    /* borrowed; outlives the host. NULL: no container gets a NIC */
        /* Each container's QEMU runs as a uid (and gid) of its own from
         * [uid_first, uid_first + uid_count), claimed under <state>/uids
         * (docs/security.md). uid_count 0: as root, which the daemon allows
         * only with --allow-root-qemu. */
        uint32_t uid_first, uid_count;
        const char *qemu_user;   /* how that is said (GET /version), or NULL */
} ContainerHostConfig;

/* "FIRST-LAST" (inclusive, within 65536-2147483646) into first and count
 * (both optional): 0 or -EINVAL. */
int container_uid_range_parse(const char *range, uint32_t *ret_first, uint32_t *ret_count);
/* -EEXIST, naming the account, when a user of /etc/passwd or a group of
 * /etc/group has an id in [first, first + count). */
int container_uid_range_check(uint32_t first, uint32_t count, Error **err);

/* Opens the host: loads every record, then reconciles them with the VMs the
 * driver runs (see container-recover.c): a running container whose VM still
 * runs is reattached, one whose VM vanished becomes stopped with a reason,
 * and VMs, disks and directories that carry our marks but belong to no
 * container are removed. Returns 0 or a negative errno with *err set. */
int container_host_open(const ContainerHostConfig *cfg, ContainerHost **ret, Error **err);

/* Detaches from every running container (their VMs keep running, as after a
 * daemon restart) and frees the host. NULL-safe; returns NULL. */
ContainerHost *container_host_free(ContainerHost *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(ContainerHost *, container_host_free);

/* Who QEMU runs as: ContainerHostConfig.qemu_user, or a summary of it. */
const char *container_host_qemu_user(ContainerHost *h);

/* The warm pool's state (GET /version's "pool"): *ret_size guests kept
 * ready (0: no pool, every start boots cold), *ret_ready ready now. */
void container_host_pool_state(ContainerHost *h, unsigned *ret_size, unsigned *ret_ready);

/* Lets the host know a VM changed state (the driver's event callback). */
void container_host_vm_event(ContainerHost *h, const VmEvent *ev);

/* Validates a configuration object as a whole (docs/api.md): only known
 * fields, each of its type and within its limits. -EINVAL with the field
 * named. */
int container_config_validate(const json_t *config, Error **err);

/* --- handles --- */

/* A handle for a new container named name (NULL: a generated name) from
 * image (resolved now through the store: -ENOENT when missing). *ret_id is
 * the id the container will have; *ret_handle the handle. -EEXIST when the
 * name is taken, -EINVAL for a bad name. */
int container_host_create(ContainerHost *h, const char *name, const char *image, char **ret_id, char **ret_handle,
                          Error **err);
/* A handle on container ref (id, unique id prefix or name). -ENOENT. */
int container_host_get_handle(ContainerHost *h, const char *ref, char **ret_handle, Error **err);

/* Merges fields into the handle's configuration ("path", "args", "env",
 * "workdir", "user", "memory_mb", "vcpus", "labels", "stop_signal",
 * "stop_timeout_s"): validated first, nothing changes on -EINVAL. -ENOENT for
 * an unknown or already committed handle. */
int container_handle_update(ContainerHost *h, const char *handle, const json_t *fields, Error **err);
/* Sets the handle's "mounts" (docs/api.md): [{"volume": name | "source":
 * host dir, "target": path in the container, "read_only": bool}], replacing
 * what it had. Checked now: names, absolute clean paths, unique targets and
 * volumes, at most CONTAINER_VOLUMES_MAX volumes and CONTAINER_BINDS_MAX
 * binds, every source an existing host directory (-EINVAL naming the entry).
 * A volume that does not exist is created at commit, as `docker run -v
 * name:/path` does. The change takes effect at the next start. */
int container_handle_set_mounts(ContainerHost *h, const char *handle, const json_t *mounts, Error **err);
/* Sets the state the commit must reach: running, stopped or paused. */
int container_handle_set_state(ContainerHost *h, const char *handle, ContainerState target, Error **err);
/* Adds a tar archive (read from tar_fd to EOF, at most max_bytes) to be
 * extracted under dir when the container next starts, or at commit when it
 * runs. */
int container_handle_add_archive(ContainerHost *h, const char *handle, const char *dir, int tar_fd, uint64_t max_bytes,
                                 Error **err);
/* The handle's pending configuration as JSON (new reference). */
int container_handle_inspect(ContainerHost *h, const char *handle, json_t **ret, Error **err);

/* Applies the handle (see the top of this file) and forgets it. *ret (may be
 * NULL) receives the container as container_host_inspect() renders it.
 * Errors: -ENOENT (no such handle), -ESTALE (the generation moved: conflict),
 * -EEXIST (a new container's name was taken meanwhile), the start's errors
 * (-ETIMEDOUT when the agent never answered, with the console's last lines). */
int container_host_commit(ContainerHost *h, const char *handle, json_t **ret, Error **err);

/* --- queries --- */

/* The container as JSON: id, name, image, generation, config, state (status,
 * exit_code, error, pid, started_at, finished_at, transport), processes. */
int container_host_inspect(ContainerHost *h, const char *ref, json_t **ret, Error **err);
/* Every container as inspect renders it, newest first, filtered by state
 * (-1: any) and by labels ("key" or "key=value" entries, all must match). */
int container_host_list(ContainerHost *h, int state, const char *const *labels, size_t n_labels, json_t **ret,
                        Error **err);

/* Gives the container ref a new name (checked as at create; -EEXIST when
 * taken); its generation moves, so handles taken before conflict. */
int container_host_rename(ContainerHost *h, const char *ref, const char *name, Error **err);

/* --- removal --- */

/* Removes the container: record, disk, VM. A running or paused one is
 * refused with -EBUSY unless force, which kills it first. -ENOENT. */
int container_host_destroy(ContainerHost *h, const char *ref, bool force, Error **err);

/* --- processes and files (running containers; -EBADFD otherwise) --- */

typedef struct ContainerExecResult {
        int exit_code;
        char *out, *err;   /* captured, NUL-terminated */
        size_t out_len, err_len;
        bool truncated;    /* output past the cap was dropped */
} ContainerExecResult;
void container_exec_result_clear(ContainerExecResult *r);

/* Runs argv (argv[0] is the program) in the container with env (NULL-
 * terminated or NULL), waits up to timeout_s (0: no limit), and captures up to
 * max_output bytes of each stream. -ETIMEDOUT kills the process. */
int container_host_exec_sync(ContainerHost *h, const char *ref, const char *const *argv, const char *const *env,
                             const char *workdir, const char *user, int timeout_s, size_t max_output,
                             ContainerExecResult *ret, Error **err);
/* Signal names and numbers: "SIGTERM", "TERM", "15". -EINVAL. */
int container_signal_from_string(const char *s);

/* An interactive process: exec with streams the caller pumps (a terminal or
 * pipes), found again by its id for resize and inspect. The host keeps the
 * last CONTAINER_EXECS_KEPT of them. */
#define CONTAINER_EXECS_KEPT 256
typedef struct ContainerExec ContainerExec;
typedef struct ContainerExecSpec {
        const char *const *argv;  /* argv[0] is the program */
        const char *const *env;   /* NULL-terminated or NULL */
        const char *workdir, *user;
        bool tty, open_stdin;
        uint16_t rows, cols;
} ContainerExecSpec;
/* Starts it; *ret is a new reference (container_exec_unref). */
int container_host_exec_start(ContainerHost *h, const char *ref, const ContainerExecSpec *spec, ContainerExec **ret,
                              Error **err);
/* A new reference to exec id, or -ENOENT. */
int container_host_exec_find(ContainerHost *h, const char *id, ContainerExec **ret, Error **err);
void container_exec_unref(ContainerExec *e);
const char *container_exec_id(const ContainerExec *e);
bool container_exec_tty(const ContainerExec *e);
/* stream 1 stdout, 2 stderr: as agent_process_read(). */
ssize_t container_exec_read(ContainerExec *e, int stream, void *buf, size_t len, int timeout_ms, Error **err);
int container_exec_write(ContainerExec *e, const void *buf, size_t len, Error **err);
int container_exec_close_stdin(ContainerExec *e, Error **err);
int container_exec_resize(ContainerExec *e, uint16_t rows, uint16_t cols, Error **err);
/* Waits for the end (after its output was read); records and returns the
 * exit code in *ret. */
int container_exec_wait(ContainerExec *e, int timeout_ms, int *ret, Error **err);
/* {"id", "running", "exit_code", "pid", "tty"} (new reference). */
json_t *container_exec_to_json(ContainerExec *e);

/* The main process's stdin (a configuration with "open_stdin": true) and
 * terminal ("tty": true) while it runs: -EBADFD when the container does not
 * run or its main process was reattached after a daemon restart (whose
 * stdin is not ours any more), -EINVAL without a terminal for resize. */
int container_host_main_write(ContainerHost *h, const char *ref, const void *buf, size_t len, Error **err);
int container_host_main_close_stdin(ContainerHost *h, const char *ref, Error **err);
int container_host_main_resize(ContainerHost *h, const char *ref, uint16_t rows, uint16_t cols, Error **err);

/* Sends sig to the main process (or, with all, to every process). */
int container_host_signal(ContainerHost *h, const char *ref, int sig, bool all, Error **err);
/* Blocks until the container is not running (stopped or removed) or
 * timeout_ms passes (-1: no limit); *ret_exit_code gets the exit code.
 * -ETIMEDOUT. */
int container_host_wait(ContainerHost *h, const char *ref, int timeout_ms, int *ret_exit_code, Error **err);
/* The main process's output (docs/api.md, "Logs"). */
typedef struct ContainerLogOptions {
        bool follow;       /* keep going while the container runs */
        bool no_stdout, no_stderr;
        long tail;         /* the last n records only; -1: all */
        int64_t since_ns;  /* records from then on (Unix ns); 0: all */
        bool raw;          /* the bytes as written, instead of JSON lines */
        bool framed;       /* with raw: each record in a multiplexed frame (an 8-byte header: stream 1 or
                            * 2, three zero bytes, a big-endian u32 length), as the exec upgrade sends */
        bool timestamps;   /* with raw: each record's bytes after its time (RFC 3339, ns) and a space */
} ContainerLogOptions;
/* Writes the output kept for ref's main process to out_fd as JSON lines
 * ({"time", "stream", "data"}) or raw bytes, and with follow what comes while
 * it runs. The rotated files (main.log.N ... main.log.1) come first, then
 * main.log; a follower moves on across rotations (container-log.c). Ends at
 * the end of the log (or, following, once the container stopped), or when
 * out_fd fails (a reader gone). */
int container_host_logs(ContainerHost *h, const char *ref, const ContainerLogOptions *o, int out_fd, Error **err);

/* Events: create, start, die (with exit_code), pause, unpause, destroy. The
 * host keeps the last CONTAINER_EVENTS_KEPT, numbered from 1. */
#define CONTAINER_EVENTS_KEPT 1024
typedef struct ContainerEvent {
        uint64_t seq;
        int64_t time_ns;
        const char *action; /* static */
        char id[CONTAINER_ID_HEX + 1];
        char name[CONTAINER_NAME_MAX + 1];
        int exit_code;      /* die: the exit code; else 0 */
} ContainerEvent;
/* Copies up to max events numbered after `after` into ret, waiting up to
 * timeout_ms (-1: no limit) for one when there is none. Returns how many
 * (0 on timeout). Events older than the kept window are skipped: a caller
 * sees the gap in seq. */
size_t container_host_events(ContainerHost *h, uint64_t after, ContainerEvent *ret, size_t max, int timeout_ms);

/* --- metrics (GET /metrics; container-metrics.c) --- */

#define CONTAINER_START_BUCKETS 11
/* The histogram's upper bounds in seconds: 0.5 1 2 3 5 8 13 20 30 45 60. */
extern const double container_start_buckets[CONTAINER_START_BUCKETS];
typedef struct ContainerHostMetrics {
        uint64_t containers[_CONTAINER_STATE_MAX]; /* how many are in each state */
        uint64_t starts;          /* since the daemon started: starts that reached running */
        uint64_t start_failures;  /* starts that failed */
        uint64_t agent_errors;    /* agent calls that failed through no fault of the client */
        /* start_le[i]: starts that took at most container_start_buckets[i]
         * seconds (cumulative); start_le[CONTAINER_START_BUCKETS]: all, the
         * histogram's count. */
        uint64_t start_le[CONTAINER_START_BUCKETS + 1];
        double start_seconds_sum;
        uint64_t qemu_memory_bytes; /* resident memory of the running containers' QEMUs, up to 5 s old */
} ContainerHostMetrics;
/* A snapshot. Cheap: the counters are atomics, the QEMU memory is cached. */
void container_host_metrics(ContainerHost *h, ContainerHostMetrics *ret);

/* --- the host (container-gc.c) --- */

#define CONTAINER_GC_MIN_AGE_S 60
/* What carries our marks but belongs to no container: [{"kind": "vm",
 * "container-dir", "run-dir" (later "tap"), "name", "path", "action":
 * "remove"/"quarantine", or with remove "removed"/"quarantined"}].
 * Directories younger than CONTAINER_GC_MIN_AGE_S are left out (a create
 * in progress). */
int container_host_gc(ContainerHost *h, bool remove, json_t **ret, Error **err);
/* The VMs of running and paused containers: [{"domain", "container",
 * "name", "state", "accelerator", "memory_mb", "vcpus", "disks",
 * "transport", "console_log", "qemu_pid" (0: not found), "pss_kib" (-1:
 * unknown)}]. */
int container_host_vms(ContainerHost *h, json_t **ret, Error **err);

/* Statistics of a running container (docs/api.md, "Stats"). */
int container_host_stats(ContainerHost *h, const char *ref, json_t **ret, Error **err);
/* Stat of a path in the running container (never follows a final symlink). */
int container_host_stat_path(ContainerHost *h, const char *ref, const char *path, json_t **ret, Error **err);

/* Extracts the tar read from tar_fd under dir in the running container. */
int container_host_archive_in(ContainerHost *h, const char *ref, const char *dir, int tar_fd, Error **err);
/* Writes path of the running container as tar to out_fd. */
int container_host_archive_out(ContainerHost *h, const char *ref, const char *path, int out_fd, Error **err);
