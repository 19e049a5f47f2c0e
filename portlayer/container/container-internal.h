/* container-internal.h: the structures behind container.h, shared by the
 * files of plcontainer only.
 *
 * Locking: one host-wide mutex (ContainerHost.lock) guards the container
 * list, the handle table and every Container field except `op`; it is only
 * ever held for short, non-blocking work. Each Container has an `op` mutex
 * held for a whole transition (commit, destroy, stop), which may take
 * seconds (a boot); take `op` before `lock`, never the other way. Containers
 * are reference counted so a request keeps one alive while another thread
 * removes it. */
#pragma once

#include <pthread.h>

#include "container.h"
#include "portlayer/guest/guest.h"
#include "portlayer/volume/volume.h"

/* A running VM with its agent: what a started container has. Reference
 * counted, so an exec keeps it alive while a stop tears the VM down. */
typedef struct Runtime {
        unsigned refs;         /* under ContainerHost.lock */
        Guest *guest;
        uint32_t main_id;      /* the agent's id of the main process */
        AgentProcess *main;    /* NULL when reattached after a restart */
        bool monitor_running;  /* the monitor thread has not finished */
} Runtime;

typedef struct Container {
        unsigned refs;
        char id[CONTAINER_ID_HEX + 1];
        char *name, *image, *image_id;
        char *dir;             /* <state>/containers/<id> */
        char *domain;          /* "pl-<first 16 hex of id>", or the pool guest's "plp-<16 hex>" it
                               * last started from (recorded) */
        const char *start_path; /* static: "template" or "cold", how it last started; NULL: never */
        char *disk;            /* <dir>/disk.qcow2 */
        char *run_dir;         /* <state>/run/<first 16 hex of id>: agent socket, console log */
        uint64_t generation;
        int64_t created_ns;
        json_t *config;        /* validated, see container-config.c */
        json_t *started_config; /* the configuration its running VM was started with, or NULL */
        json_t *pending;       /* [{"dir", "file"}] copy-ins for the next start */

        ContainerState state;
        ContainerState state_before; /* while STARTING: what a failed start returns to */
        int exit_code;
        char *error;           /* why the last transition failed, or NULL */
        int pid;               /* the main process's pid in the guest, 0 when none */
        uint32_t main_id;      /* the agent's id of it, to find it again after a restart */
        int64_t started_ns, finished_ns;
        const char *transport; /* static: "virtio-serial" or "vsock", chosen at its start */
        uint32_t uid;          /* its QEMU's uid and gid (container-owner.c); 0: root, only
                                * with --allow-root-qemu */

        Runtime *rt;           /* while starting, running, paused, stopping */
        bool removed;
        pthread_mutex_t op;
} Container;

typedef struct Handle {
        char id[33];
        uint64_t serial;       /* for eviction of the oldest */
        bool is_new;           /* a container to create */
        char *container_id;
        char *name, *image, *image_id;
        uint64_t generation;   /* the container's generation when taken */
        json_t *config;
        int target;            /* a ContainerState, or -1 for "as it is" */
        json_t *files;         /* [{"dir", "file"}] spooled under <state>/tmp */
} Handle;

struct ContainerHost {
        char *state_dir, *containers_dir, *run_dir, *tmp_dir;
        char *kernel, *initrd, *extra_cmdline;
        unsigned tb_cache_mib;     /* ContainerHostConfig's */
        bool free_page_reporting;
        VmAccel accel;
        int boot_timeout_ms;
        const char *transport;  /* static: what new starts use */
        VmDriver *driver;
        Store *store;
        struct UidPool *uids;   /* NULL: QEMU runs as root (--allow-root-qemu) */
        char *qemu_user;        /* GET /version's "qemu_user" */
        NetworkHost *network;   /* or NULL: no NICs */
        VolumeStore *volumes;   /* NULL: volume mounts are refused */

        pthread_mutex_t lock;
        pthread_cond_t changed; /* any container's state changed */
        Container **containers;
        size_t n_containers;
        Handle **handles;
        size_t n_handles;
        uint64_t handle_serial;
        bool closing;           /* monitors must leave containers as they are */
        ContainerEvent events[CONTAINER_EVENTS_KEPT]; /* a ring: seq % KEPT */
        uint64_t event_seq;     /* the last event's number */
        struct ContainerExec *execs[CONTAINER_EXECS_KEPT]; /* a ring of recent execs */
        size_t exec_next;
        unsigned monitors;      /* monitor threads still running */
        struct {                /* container-metrics.c: atomics, no lock */
                uint64_t starts, start_failures, agent_errors, start_usec_sum;
                uint64_t start_buckets[CONTAINER_START_BUCKETS + 1]; /* per bucket, not cumulative */
                pthread_mutex_t memory_lock; /* the QEMU memory cache only */
                uint64_t memory_bytes, memory_at;
        } metrics;
        uint64_t log_max_size;  /* main.log is rotated before it passes this */
        unsigned log_max_files; /* rotated files kept: main.log.1 ... */
        GuestPool *pool;        /* NULL: every start boots cold */
};

/* --- container-config.c --- */

/* The defaults an image gives a new container (entry point, env, workdir,
 * user, stop signal) plus ours (memory, vcpus). */
int container_config_from_image(const StoreImage *img, json_t **ret, Error **err);
/* argv (NULL-terminated, malloc'd array of borrowed strings) and env for the
 * main process. -EINVAL when the configuration names no program. */
int container_config_argv(const json_t *config, const char ***ret_argv, const char ***ret_env, Error **err);
/* The stop signal number (SIGTERM by default). */
int container_config_stop_signal(const json_t *config);

/* --- container-handle.c --- */

/* Frees a handle and unlinks its spooled archives. NULL-safe. */
void handle_destroy(Handle *hd);

/* --- container-record.c --- */

Container *container_new(const char *id);
/* Fills dir, disk, domain and run_dir from the id. */
int container_paths(ContainerHost *h, Container *c);
Container *container_ref(Container *c);
void container_unref(Container *c);
/* Writes the record atomically (<dir>/container.json). Caller holds lock. */
int container_save(ContainerHost *h, Container *c, Error **err);
/* Loads the record in dir. -EBADMSG for a record that is not ours to trust. */
int container_load(ContainerHost *h, const char *dir, Container **ret, Error **err);
/* The JSON of container.h's inspect. Caller holds lock. */
json_t *container_to_json(const Container *c);

/* --- container-gc.c --- */

/* Removes every orphan now, whatever its age (recovery). */
void container_host_remove_orphans(ContainerHost *h);

/* --- container-host.c --- */

/* Adds c to the list (a new reference) / removes it (drops the list's
 * reference, marks it removed). Caller holds lock. */
int container_host_add_locked(ContainerHost *h, Container *c);
void container_host_forget_locked(ContainerHost *h, Container *c);

/* A new reference to every container (a snapshot to walk without the lock),
 * *ret_n of them; NULL when out of memory. Release with
 * container_list_unref(). */
Container **container_host_snapshot(ContainerHost *h, size_t *ret_n);
void container_list_unref(Container **list, size_t n);

/* Finds by id, unique id prefix (>= 12 hex) or name; a new reference.
 * Caller holds lock. */
Container *container_find_locked(ContainerHost *h, const char *ref);
int container_find(ContainerHost *h, const char *ref, Container **ret, Error **err);
/* Waits on h->changed (lock held) for at most 500 ms or until deadline (a
 * now_usec() value, USEC_INFINITY for none). False once the deadline passed. */
bool container_host_wait_locked(ContainerHost *h, uint64_t deadline);
/* Records an event of c (caller holds lock) and wakes waiters. */
void container_event_locked(ContainerHost *h, const Container *c, const char *action);
/* Sets the state, saves, wakes waiters. Caller holds lock. */
void container_set_state_locked(ContainerHost *h, Container *c, ContainerState s);

/* --- container-runtime.c --- */

/* Boots the VM, applies pending copy-ins and starts the main process. Caller
 * holds c->op (not lock). On failure nothing runs and *err says why. */
int container_start(ContainerHost *h, Container *c, Error **err);
/* Stop signal, timeout, SIGKILL, power-off; waits for the monitor to record
 * the exit. Caller holds c->op. */
int container_stop(ContainerHost *h, Container *c, int timeout_s, Error **err);
int container_pause(ContainerHost *h, Container *c, Error **err);
int container_resume(ContainerHost *h, Container *c, Error **err);
/* A new reference to c's runtime, or -EBADFD when it is not running. */
int container_runtime_get(ContainerHost *h, Container *c, Runtime **ret, Error **err);
void runtime_unref(ContainerHost *h, Runtime *rt);
/* The same for the container ref names (id, prefix or name). */
int container_runtime_of(ContainerHost *h, const char *ref, Runtime **ret, Error **err);
/* Starts the thread that waits for the main process (and, when it ends,
 * records the exit and tears the VM down). */
int container_monitor_start(ContainerHost *h, Container *c);
/* Extracts the archive at file under dir through rt's agent. */
int container_copy_in_file(Runtime *rt, const char *dir, const char *file, Error **err);

/* --- container-exec.c --- */

/* Drops the table's references (host teardown, lock not held). */
void container_host_execs_clear(ContainerHost *h);

/* --- container-log.c --- */

#define CONTAINER_LOG_HEADER 16
/* The writing end of a container's main.log, rotated by h's limits. One per
 * container at a time (the monitor's, or recovery's before the monitor
 * starts); its threads share it. */
typedef struct ContainerLog ContainerLog;
/* Opens <dir>/main.log for appending: 0 or a negative errno. */
int container_log_open(ContainerHost *h, const Container *c, ContainerLog **ret);
/* Appends one record of stream (1 stdout, 2 stderr), rotating the files
 * first when the record would take main.log past the limit. Thread-safe. */
int container_log_append(ContainerLog *l, int stream, const void *data, size_t len);
/* NULL-safe; returns NULL. */
ContainerLog *container_log_close(ContainerLog *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(ContainerLog *, container_log_close);

/* --- container-metrics.c --- */

/* Counts a start that reached running (ok, taking usec) or failed. */
void container_metrics_start(ContainerHost *h, bool ok, uint64_t usec);
/* Counts r (an agent call's result) as an agent error when it is one the
 * client did not cause (a broken connection, a protocol violation, an RPC
 * timeout). Returns r. */
int container_metrics_agent_result(ContainerHost *h, int r);

/* --- container-owner.c: who a container's QEMU runs as --- */

/* Opens h->uids from cfg (nothing when cfg->uid_count is 0). */
int container_owner_open(ContainerHost *h, const ContainerHostConfig *cfg, Error **err);
/* Claims a uid for c when it has none (and the host has a pool) and gives
 * it c's disk (owner, mode 0600) when the disk exists. Caller holds c->op
 * or owns c alone, and saves the record. */
int container_owner_claim(ContainerHost *h, Container *c, Error **err);
/* Gives c's disk to c's uid (mode 0600). */
int container_owner_give_disk(ContainerHost *h, const Container *c, Error **err);
/* Gives the volume disks a start attaches to c's uid (mode 0600; their
 * directories made crossable). They stay its until its uid is released:
 * no process runs as the uid of a stopped container, and the uid is handed
 * out again only after they went back to root. */
int container_owner_give_volumes(ContainerHost *h, const Container *c, const VmDisk *disks, size_t n_disks,
                                 Error **err);
/* Releases c's uid once its VM, disk and run directory are gone; a uid a
 * process still runs as stays claimed (recovery releases it later). */
void container_owner_release(ContainerHost *h, Container *c);
/* Recovery: claims every recorded uid again and releases the claims no
 * container holds. */
void container_owner_reconcile(ContainerHost *h);
/* The warm pool's owner hooks (GuestPoolConfig): a pool guest's uid is
 * claimed for its domain name ("plp-...") and released once its QEMU is gone. */
#define CONTAINER_POOL_PREFIX "plp-"
int container_owner_pool_claim(void *userdata, const char *name, VmOwner *ret, Error **err);
void container_owner_pool_release(void *userdata, const char *name, const VmOwner *owner);
/* A start from the pool: the pool guest's claim passes to c (its record
 * gets that uid, its old uid is released), and its disk and volumes go to
 * that uid before they are hot-plugged. */
int container_owner_adopt(ContainerHost *h, Container *c, const char *pool_name, const VmOwner *owner,
                          const VmDisk *volumes, size_t n_volumes, Error **err);
struct UidClaim;
/* The claims pool guests of an earlier run left, and their release once
 * those guests were destroyed. */
int container_owner_pool_claims(ContainerHost *h, struct UidClaim **ret, size_t *ret_n, Error **err);
void container_owner_pool_claims_release(ContainerHost *h, const struct UidClaim *claims, size_t n);
/* --- container-mounts.c --- */

/* The "mounts" field's schema and limits (container_config_validate). */
int container_mounts_check(const json_t *mounts, Error **err);
/* Records container id (named name) as a user of every volume config
 * mounts, creating missing ones; on failure what it added is released
 * again, except volumes old_config (may be NULL) mounts. Caller holds
 * neither lock nor op constraints beyond its own commit. */
int container_mounts_acquire(ContainerHost *h, const char *id, const char *name, const json_t *config,
                             const json_t *old_config, Error **err);
/* Drops id from the users of every volume drop mounts that neither keep nor
 * keep2 (either may be NULL) mounts. Failures are logged. */
void container_mounts_release(ContainerHost *h, const char *id, const json_t *keep, const json_t *keep2,
                              const json_t *drop);
/* -EBUSY naming the holder when another container whose VM lives (starting,
 * running, paused, stopping) mounts one of c's volumes. Caller holds lock. */
int container_mounts_claim_locked(ContainerHost *h, const Container *c, Error **err);
/* What a start gives the VM (extra disks, virtio-fs shares) and the agent
 * (mounts, in the configuration's order). */
typedef struct ContainerMounts {
        json_t *config;                          /* holds the strings the arrays borrow */
        VolumeDisk volumes[CONTAINER_VOLUMES_MAX];
        VmDisk disks[CONTAINER_VOLUMES_MAX];
        size_t n_disks;
        char tags[CONTAINER_BINDS_MAX][8];       /* "plfs0".."plfs7" */
        VmFilesystem filesystems[CONTAINER_BINDS_MAX];
        size_t n_filesystems;
        AgentMount mounts[CONTAINER_VOLUMES_MAX + CONTAINER_BINDS_MAX];
        size_t n_mounts;
} ContainerMounts;
/* Fills ret from c's configuration: the volumes' disks and the bind sources
 * (each still an existing directory, else -EINVAL). */
int container_mounts_prepare(ContainerHost *h, Container *c, ContainerMounts *ret, Error **err);
void container_mounts_clear(ContainerMounts *cm);
/* [{"type": "volume"|"bind", "source", "target", "read_only"}] (new reference). */
json_t *container_mounts_to_json(const json_t *config);
/* After the records loaded: the volumes' users made to match them. */
int container_mounts_recover(ContainerHost *h, Error **err);

/* --- container-network.c --- */

/* config's "network", or "default". */
const char *container_network_name(const json_t *config);
/* User mode: c's ports forwarded to its running VM (again). */
int container_network_forwards_add(ContainerHost *h, Container *c, Error **err);

/* Takes (or keeps) the address of c's network and publishes its ports as
 * config says ("network", default "default"; "none" releases). Caller holds
 * c->op. -ENOENT unknown network, -EADDRINUSE a port taken, -EBUSY moving a
 * running container to another network. */
int container_network_commit(ContainerHost *h, Container *c, const json_t *config, Error **err);
/* Releases c's address and ports (destroy). */
void container_network_release(ContainerHost *h, Container *c);
/* c's NIC for its next boot: 1 and *ret filled (strings in *lease and tap),
 * or 0 when it has none. */
int container_network_nic(ContainerHost *h, Container *c, NetworkLease *lease, char tap[NETWORK_IFNAME_MAX + 1],
                          VmNic *ret);

/* --- container-network-guest.c --- */

/* c's interface for the agent's setup: 1 and *ret filled (strings in *lease
 * and cidr), or 0 when it has no NIC. */
int container_network_interface(ContainerHost *h, Container *c, NetworkLease *lease, char cidr[24],
                                AgentInterface *ret);
/* After the setup request, before the copy-ins and the main process: the
 * guest's /etc files (hostname, hosts with the running peers, resolv.conf)
 * unless a mount provides them. 0 for a container without a NIC. */
int container_network_etc(ContainerHost *h, Container *c, Runtime *rt, Error **err);
/* Container id started (or, leaving, stops: it is left out even while its
 * state still says running): rewrite the /etc/hosts of the running
 * containers of its network (best effort, logged; none while the host
 * closes). Lock not held. */
void container_network_peers_changed(ContainerHost *h, const char *id, bool leaving);
/* Adds "network", "ip_address", "mac_address", "ports" of container id
 * (whose configuration is config) to inspect's j. Lock not held. */
void container_network_json(ContainerHost *h, const char *id, const json_t *config, json_t *j);
/* At open, after recovery: leases of containers that are gone, taps of VMs
 * that are gone, forwards of running user-mode containers again. */
void container_network_recover(ContainerHost *h);

/* --- container-recover.c --- */

/* Reconciles loaded records with the driver's VMs and removes orphans. */
int container_host_recover(ContainerHost *h, Error **err);

/* container-pool.c: the warm pool. Takes a pool guest for c unless the
 * daemon or c's "cold_start" says no, or none fits; sets c->domain and
 * c->start_path either way. 1 with *ret (started from the pool), 0 (boot
 * cold, as c->domain now says), -ENOMEM. */
int container_start_from_pool(ContainerHost *h, Container *c, const GuestConfig *gc, Guest **ret);
/* Opens h->pool (none when size is 0), after recovery: pool guests of an
 * earlier run are destroyed first. */
int container_pool_open(ContainerHost *h, unsigned size, Error **err);
