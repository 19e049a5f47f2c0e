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
        const VmOwner *owner;      /* QEMU's uid:gid, which gets run_dir (0700) and the console
                                    * log (0600); NULL: the driver's default user */
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
