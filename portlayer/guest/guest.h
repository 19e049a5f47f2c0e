/* guest.h: one container VM with its agent connected.
 *
 * guest_start() turns a GuestConfig into a running VM (through any VmDriver)
 * and a connected AgentClient, or into a clear error with nothing left
 * behind: while it waits for the agent it watches the domain, so a guest that
 * dies at boot (kernel panic, missing root disk) fails at once, quoting the
 * end of its console log, and the domain is destroyed. A stage 1 failure the
 * agent reports (boot_error) fails the start the same way. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/base/error.h"
#include "portlayer/client/agent-client.h"
#include "portlayer/vm/vm-driver.h"

#define GUEST_ROOT_SERIAL "pl-root"
/* Free page reporting from blocks of 2^3 pages (32 KiB) up: measured in
 * docs/templates.md ("Density") against the kernel's 2 MiB. */
#define GUEST_REPORT_ORDER 3

typedef struct GuestConfig {
        const char *name;          /* domain name */
        const char *container_id;
        const char *kernel, *initrd;
        const char *root_disk;     /* the container's disk (absolute) */
        VmDiskFormat root_format;
        const char *run_dir;       /* holds the agent socket and the console log */
        const char *hostname;      /* NULL: the name */
        uint64_t memory_mib;       /* 0: 256 */
        unsigned vcpus;            /* 0: 1 */
        VmAccel accel;
        int boot_timeout_ms;       /* 0: 60000 (TCG boots take seconds) */
        const char *extra_cmdline; /* appended to the kernel command line, or NULL */
        bool vsock;                /* reach the agent over virtio-vsock (the host needs
                                    * vhost-vsock), not the virtio-serial port */
        const VmNic *nics;         /* optional: the VM's NICs (VmSpec.nics) */
        size_t n_nics;
        const VmDisk *extra_disks; /* optional: virtio-blk disks after the root disk (volumes),
                                    * each with its own serial (not GUEST_ROOT_SERIAL) */
        size_t n_extra_disks;      /* at most VM_DISKS_MAX - 1 */
        const VmFilesystem *filesystems; /* optional: virtio-fs shares (VmSpec.filesystems) */
        size_t n_filesystems;
        const char *pool_key;      /* a warm-pool guest (guest-pool.h): no disks, the agent booted
                                    * with pl.pool=1 waits for an activate; VmSpec.pool_key */
        unsigned tb_cache_mib;     /* VmSpec.tb_cache_mib: TCG's translation cache, 0: QEMU's default */
        bool free_page_reporting;  /* VmSpec.free_page_reporting, and the agent reports free
                                    * blocks from GUEST_REPORT_ORDER up */
        bool no_share_pages;       /* VmSpec.no_share_pages: RAM kept from KSM; never a pool guest's */
        const VmOwner *owner;      /* QEMU's uid:gid, which gets run_dir (0700) and the console
                                    * log (0600); NULL: the driver's default user */
        /* guest_pool_take() only: called with the taken pool guest's owner
         * (NULL when it has none) and name before its disks are hot-plugged; owner
         * above is ignored there (the pool guest's QEMU already runs). A
         * failure ends the take (the guest is destroyed). */
        int (*pool_adopt)(void *userdata, const char *pool_name, const VmOwner *owner, Error **err);
        void *pool_adopt_data;
} GuestConfig;

typedef struct Guest {
        VmDriver *driver; /* borrowed */
        char *name;
        char *socket_path;
        char *console_path;
        AgentClient *agent;
        bool vsock;           /* the agent is reached over vsock */
        unsigned cid;         /* then: the guest's CID */
        uint64_t create_usec; /* from create to the VM running (define + start) */
        uint64_t boot_usec;   /* from create to the agent's HELLO */
} Guest;

/* Creates the VM and connects its agent. On failure the domain is destroyed
 * and *err says why (-ETIMEDOUT: no answer in time; -ECHILD: the guest
 * stopped before answering; -EIO: the guest reported a boot error). */
int guest_start(VmDriver *d, const GuestConfig *c, Guest **ret, Error **err);

/* Reconnects to the agent of a VM that already runs (after a daemon
 * restart): name, run_dir and vsock as guest_start() was given them. The
 * handshake takes at most timeout_ms. -ENOENT when the domain is not
 * running. */
int guest_attach(VmDriver *d, const char *name, const char *run_dir, bool vsock, int timeout_ms, Guest **ret,
                 Error **err);

/* Asks the agent to stop everything and power off, waits up to timeout_ms for
 * the domain to stop, then destroys (undefines) it either way. */
int guest_shutdown(Guest *g, uint32_t grace_ms, int timeout_ms, Error **err);

/* Destroys the domain at once (idempotent). */
int guest_destroy(Guest *g, Error **err);

/* Disconnects and frees; the VM itself is left as it is. NULL-safe. */
Guest *guest_free(Guest *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(Guest *, guest_free);

/* The last max_bytes of the console log (malloc'd, "" when none). */
char *guest_console_tail(const Guest *g, size_t max_bytes);

/* --- the warm pool (guest-pool.c, docs/templates.md) --- */

/* A few guests booted ahead of time with no container attached (pl.pool=1),
 * paused, their agents connected. Taking one resumes it, gives it to the
 * container (domain metadata), moves its run directory to the container's,
 * hot-plugs the root disk and activates the agent: no boot on the start
 * path. Pool guests are keyed by what their boot depends on (kernel and
 * initramfs files, which hold the agent, memory, vCPUs, accelerator, machine,
 * command line, transport): a request with another key boots cold, and
 * guests of a stale key are destroyed. */
typedef struct GuestPool GuestPool;

typedef struct GuestPoolConfig {
        const char *dir;   /* absolute: the pool guests' run directories */
        unsigned size;     /* guests kept ready, 1..GUEST_POOL_MAX */
        GuestConfig guest; /* the guest each pool VM is booted as (name, root disk, run_dir and
                            * container_id are the pool's own) */
        /* optional: the uid each pool guest's QEMU runs as, claimed for its
         * domain name before it boots; owner_release gives it back after
         * its QEMU was destroyed (a guest taken by guest_pool_take() is the
         * pool_adopt callback's business). */
        int (*owner_claim)(void *userdata, const char *name, VmOwner *ret, Error **err);
        void (*owner_release)(void *userdata, const char *name, const VmOwner *owner);
        void *owner_data;
} GuestPoolConfig;

#define GUEST_POOL_MAX 16

/* Destroys every pool domain the driver holds (left by an earlier run: a
 * paused guest of another daemon's life is not trusted to be fresh) and their
 * run directories, then starts a thread that keeps size guests ready. */
int guest_pool_new(VmDriver *d, const GuestPoolConfig *c, GuestPool **ret, Error **err);
/* Just the first part of guest_pool_new(): destroys every pool domain of an
 * earlier run and removes dir (a daemon started without a pool). */
void guest_pool_clean(VmDriver *d, const char *dir);
/* Stops the thread and destroys the guests not taken. NULL-safe. */
GuestPool *guest_pool_free(GuestPool *p);

/* True when c can start from the pool: the same key, at most one NIC
 * (hot-plugged) and no virtio-fs shares (pool guests have private memory). */
bool guest_pool_fits(GuestPool *p, const GuestConfig *c);
/* Starts c from a ready pool guest; *ret is like guest_start()'s, but its
 * name is the pool guest's, not c->name, and c->run_dir is replaced by the
 * pool guest's run directory (whatever was there is removed). -EAGAIN when no ready guest fits
 * (nothing changed: boot cold); other errors after the guest was taken (it
 * is destroyed; booting cold is still possible). */
int guest_pool_take(GuestPool *p, const GuestConfig *c, Guest **ret, Error **err);
/* Guests ready now. */
unsigned guest_pool_ready(GuestPool *p);
/* Guests the pool keeps ready (GuestPoolConfig.size). */
unsigned guest_pool_size(GuestPool *p);
