/* vm-driver.h: the VM driver, one small VM per container.
 *
 * A VmDriverOps table of function pointers hides the hypervisor: the real one
 * (vm_driver_libvirt, libvirt's QEMU driver, embedded by default) and an
 * in-memory fake (vm_driver_fake) for unit tests of the layers above. Both
 * honour the same contract, written here. A caller opens a VmDriver through a
 * table and then uses the vm_driver_*() wrappers.
 *
 * Domains are persistent: create() defines and then starts, so a VM that
 * powered off, crashed, or was defined just before the daemon died remains
 * visible to list_ours() and state() until destroy() removes it. That is what
 * crash-safe reconciliation needs; transient domains would vanish on power-off
 * and leave no trace of what the daemon had asked for. Our domains carry a
 * metadata element naming the container (see vm-xml.h), and list_ours()
 * returns only those.
 *
 * Lifecycle events are delivered to the VmEventFn given at open, from a
 * driver thread (libvirt's event loop thread for the real driver, a private
 * thread for the fake), never from inside a driver call, for every domain on
 * the connection (a consumer ignores names it does not know). They are hints
 * that can be lost or come late (a reconnect, a full queue): state() is the
 * truth, and a reconciler polls it after it starts. A callback must be
 * short, must not close the driver that calls it and must not open or close
 * any other driver; other driver calls are allowed. Every other function is
 * thread-safe. Functions return 0 or a negative errno and set *err once. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/error.h"

#define VM_NAME_MAX 64          /* domain, channel and container id names */
#define VM_DISK_SERIAL_MAX 20   /* virtio-blk serials are 20 bytes */
#define VM_DISKS_MAX 16
#define VM_CMDLINE_MAX 2047     /* x86 COMMAND_LINE_SIZE minus the NUL */
#define VM_SOCKET_PATH_MAX 107  /* sun_path minus the NUL */
#define VM_MEMORY_MIB_MIN 64
#define VM_MEMORY_MIB_MAX 1048576
#define VM_VCPUS_MAX 64
#define VM_TB_CACHE_MIB_MAX 4096
#define VM_AGENT_CHANNEL_DEFAULT "org.portlayer.agent.0"
#define VM_NICS_MAX 4
#define VM_FILESYSTEMS_MAX 8
#define VM_TAP_NAME_MAX 15      /* IFNAMSIZ minus the NUL */
#define VM_FS_TAG_MAX 36        /* virtio-fs tags are 36 bytes */
#define VM_MTU_MIN 68           /* IPv4's minimum */
#define VM_MTU_MAX 65535

typedef enum VmAccel {
        VM_ACCEL_AUTO, /* KVM when usable, else TCG */
        VM_ACCEL_KVM,  /* hardware virtualization; an error when unusable */
        VM_ACCEL_TCG,  /* QEMU's emulator */
        _VM_ACCEL_MAX,
} VmAccel;

typedef enum VmState {
        VM_STATE_MISSING,  /* no such domain */
        VM_STATE_SHUTOFF,  /* defined, not running */
        VM_STATE_RUNNING,
        VM_STATE_PAUSED,   /* paused or guest-suspended */
        VM_STATE_SHUTDOWN, /* shutting down */
        VM_STATE_CRASHED,  /* guest panicked, or QEMU failed */
        VM_STATE_UNKNOWN,
        _VM_STATE_MAX,
} VmState;

typedef enum VmDiskFormat {
        VM_DISK_RAW,
        VM_DISK_QCOW2,
        _VM_DISK_FORMAT_MAX,
} VmDiskFormat;

/* Who a VM's QEMU runs as: a per-domain DAC label. libvirt starts QEMU as
 * uid:gid (gid its only group) and changes no file's owner
 * (relabel='no'): the caller gives the files QEMU opens to that uid. */
typedef struct VmOwner {
        uint32_t uid, gid;
} VmOwner;

/* A virtio-blk disk; disks[0] is the container's root disk (vda). */
typedef struct VmDisk {
        const char *path;   /* absolute */
        VmDiskFormat format;
        const char *serial; /* [A-Za-z0-9_.-]{1,20}, how the guest finds it */
        bool read_only;
} VmDisk;

typedef enum VmNicType {
        VM_NIC_BRIDGE, /* a tap that libvirt creates and attaches to an existing bridge */
        VM_NIC_USER,   /* user-mode networking: QEMU's slirp, no tap, no bridge, no root needed;
                        * the guest is 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3; ports reach it
                        * through vm_driver_forward() (docs/networking.md) */
        _VM_NIC_TYPE_MAX,
} VmNicType;

/* A virtio-net NIC. */
typedef struct VmNic {
        VmNicType type;
        const char *mac;    /* "0a:70:6c:xx:xx:xx" (lower case), unicast and locally administered; required */
        const char *bridge; /* VM_NIC_BRIDGE: the bridge libvirt attaches the tap to (a valid link name) */
        const char *tap;    /* VM_NIC_BRIDGE: tap name ([A-Za-z0-9_.-]{1,15}), e.g. "pl" + 12 hex; NULL:
                             * libvirt names it (vnetN) */
        unsigned mtu;       /* VM_MTU_MIN..VM_MTU_MAX; 0: the bridge's */
} VmNic;

/* A host directory shared with the guest over virtio-fs (QEMU's virtiofsd,
 * which libvirt starts and stops with the domain). The guest mounts it with
 * `mount -t virtiofs <tag> <dir>`. */
typedef struct VmFilesystem {
        const char *source; /* host directory, absolute */
        const char *tag;    /* virtiofs mount tag, [A-Za-z0-9_.-]{1,36}, unique in the spec */
        bool read_only;     /* the guest can read only: enforced on the host (virtiofsd runs on a
                             * read-only bind mount, through pl-virtiofsd-ro), not by the guest's mount */
} VmFilesystem;

/* Everything a VM is made of. Strings are borrowed for the call. Names match
 * [A-Za-z0-9_.-]{1,64}; paths are absolute, at most PATH_MAX, without control
 * characters. */
typedef struct VmSpec {
        const char *name;         /* domain name, e.g. "pl-<id>" */
        const char *uuid;         /* optional, "8-4-4-4-12" hex; NULL: libvirt picks */
        const char *container_id; /* stored in the domain's metadata */
        uint64_t memory_mib;      /* VM_MEMORY_MIB_MIN..VM_MEMORY_MIB_MAX */
        unsigned vcpus;           /* 1..VM_VCPUS_MAX */
        VmAccel accel;

        const char *kernel;       /* direct kernel boot */
        const char *initrd;       /* optional */
        const char *cmdline;      /* optional, printable, <= VM_CMDLINE_MAX */

        const VmDisk *disks;      /* optional, up to VM_DISKS_MAX */
        size_t n_disks;

        const char *agent_socket;  /* optional: QEMU listens here (<= 107 bytes) */
        const char *agent_channel; /* virtio-serial port name; NULL: VM_AGENT_CHANNEL_DEFAULT */
        const char *console_log;   /* the kernel console (ttyS0) is written here */
        bool vsock;                /* a virtio-vsock device, guest CID chosen by libvirt */

        const VmNic *nics;         /* optional, up to VM_NICS_MAX, in guest order (eth0, eth1...) */
        size_t n_nics;
        /* optional, up to VM_FILESYSTEMS_MAX. n_filesystems > 0 gives the
         * domain shared memory backing (memfd), as virtio-fs needs. */
        const VmFilesystem *filesystems;
        size_t n_filesystems;
        /* optional: a warm-pool VM (docs/templates.md) of this key
         * ([A-Za-z0-9_.-]{1,64}): its metadata marks it as the pool's, so
         * list_ours() never returns it (list_pool() does) until adopt()
         * gives it to a container, and it gets VM_POOL_HOTPLUG_PORTS spare
         * PCIe root ports for devices attached after it resumes. */
        const char *pool_key;

        /* Density (docs/templates.md): QEMU's TCG translation cache in MiB
         * (0: QEMU's default, 1 GiB of address space of which a booted
         * guest touches some 50 MB; ignored under KVM), and a virtio balloon
         * that only reports the guest's free pages to the host, which drops
         * them (no balloon at all when false). */
        unsigned tb_cache_mib;
        bool free_page_reporting;
        /* <memoryBacking><nosharepages/>: QEMU does not offer the guest's RAM
         * to the host's same-page merging (KSM), whatever the host's KSM
         * settings (docs/templates.md: KSM is a side channel between the
         * guests whose pages merge). */
        bool no_share_pages;

        const VmOwner *owner;      /* NULL: the driver's default user (qemu.conf's, never root) */
} VmSpec;

#define VM_POOL_HOTPLUG_PORTS 4

/* A host->guest port forward of a VM_NIC_USER NIC. */
typedef struct VmForward {
        const char *protocol; /* "tcp" or "udp" */
        const char *host_ip;  /* an IPv4 address, e.g. "127.0.0.1"; NULL or "" = all */
        uint16_t host_port;   /* 1..65535 */
        uint16_t guest_port;  /* 1..65535, to the guest's 10.0.2.15 */
} VmForward;

/* What the host sees of a running domain. */
typedef struct VmStats {
        uint64_t cpu_time_ns;   /* CPU time QEMU used, all threads */
        uint64_t memory_kib;    /* the guest's memory size */
        uint64_t rss_kib;       /* QEMU's resident set; 0 when unknown */
        uint64_t pss_kib;       /* QEMU's proportional set size (pages shared with other
                                 * processes counted in part); 0 when unknown */
        int qemu_pid;           /* 0 when unknown (a driver with no processes of its own) */
        uint64_t rd_bytes, wr_bytes, rd_reqs, wr_reqs; /* the root disk (vda) */
} VmStats;

typedef struct VmEvent {
        const char *name;   /* domain name */
        VmState state;      /* the new state */
        const char *reason; /* static text: "booted", "shutdown", "destroyed", "crashed"... */
} VmEvent;

typedef void (*VmEventFn)(const VmEvent *event, void *userdata);

typedef struct VmDriverOps VmDriverOps;

/* Every implementation's handle starts with this. */
typedef struct VmDriver {
        const VmDriverOps *ops;
} VmDriver;

struct VmDriverOps {
        const char *name; /* "libvirt", "fake" */

        /* Connects. uri NULL means the default: for libvirt the embedded QEMU
         * driver rooted at <state_dir>/libvirt (state_dir absolute, created,
         * qemu.conf written when missing); other URIs (qemu:///system,
         * qemu+ssh://host/system, test:///default) are used as given and
         * state_dir may be NULL. cb may be NULL. -EBUSY when another
         * process holds the embedded root. */
        int (*open)(VmDriver **ret, const char *uri, const char *state_dir, VmEventFn cb, void *userdata,
                    Error **err);
        /* Stops event delivery (no callback runs once it returns), disconnects
         * and frees. Running VMs keep running. Must not be called from a
         * callback. */
        void (*close)(VmDriver *d);

        /* Validates spec, defines the domain and starts it. -EEXIST when a
         * domain of that name exists; -ENODEV when KVM was asked for and is
         * unusable. A domain that fails to start is undefined again. */
        int (*create)(VmDriver *d, const VmSpec *spec, Error **err);
        /* Stops the domain hard if it runs and undefines it. A missing domain
         * is success, so it is safe to repeat. */
        int (*destroy)(VmDriver *d, const char *name, Error **err);
        /* The domain's state; VM_STATE_MISSING (and 0) when it does not exist. */
        int (*state)(VmDriver *d, const char *name, VmState *ret, Error **err);
        /* Pauses / resumes a running domain (its vCPUs stop; memory stays).
         * -ENOENT for a missing domain, -EBADFD when it is not running /
         * not paused. */
        int (*suspend)(VmDriver *d, const char *name, Error **err);
        int (*resume)(VmDriver *d, const char *name, Error **err);
        /* The guest CID of a running domain's vsock device (given by the
         * hypervisor). -ENOENT when it has none. */
        int (*vsock_cid)(VmDriver *d, const char *name, unsigned *ret, Error **err);
        /* Host-side statistics of a running domain. -ENOENT when missing,
         * -EBADFD when not running. */
        int (*stats)(VmDriver *d, const char *name, VmStats *ret, Error **err);
        /* Names of the domains, running or not, that carry our metadata, in
         * no particular order. Free with vm_names_free(). */
        int (*list_ours)(VmDriver *d, char ***ret_names, size_t *ret_n, Error **err);
        /* Adds (add=true) or removes a host->guest port forward of the
         * VM_NIC_USER NIC of a running domain. Forwards live in the QEMU
         * process only: they do not survive a restart of the domain, and a
         * daemon that restarts does not know which exist, so callers re-add
         * theirs after every start and after a daemon restart. Adding the
         * very same forward again (protocol, host_ip, host_port, guest_port)
         * is success, so re-adding is safe; a host port that is taken
         * otherwise (another forward, another process) is -EADDRINUSE, the
         * message naming it. Removing a forward that is not there is -ENOENT.
         * -ENOENT for a missing domain, -EBADFD when it is not running,
         * -EINVAL for a bad forward, -EOPNOTSUPP when the domain has no
         * user-mode NIC or the driver cannot forward. */
        int (*forward)(VmDriver *d, const char *name, const VmForward *fw, bool add, Error **err);

        /* --- the warm pool (docs/templates.md); the fake answers -EOPNOTSUPP --- */
        /* Names and keys of the domains created with a pool_key, running or
         * not (two parallel lists). Free both with vm_names_free(). */
        int (*list_pool)(VmDriver *d, char ***ret_names, char ***ret_keys, size_t *ret_n, Error **err);
        /* Gives pool domain name to container_id: its metadata becomes a
         * container's, live and in its definition, so from now on
         * list_ours() returns it and list_pool() does not. -ENOENT when
         * missing, -EINVAL when it is not a pool domain. */
        int (*adopt)(VmDriver *d, const char *name, const char *container_id, Error **err);
        /* Hot-plugs disk into the running domain as vd<a + index> (a spare
         * root port: only pool domains have them). -ENOENT when missing,
         * -EBADFD when not running. */
        int (*attach_disk)(VmDriver *d, const char *name, const VmDisk *disk, size_t index, Error **err);
        /* Hot-plugs a NIC into the running domain, as attach_disk(). */
        int (*attach_nic)(VmDriver *d, const char *name, const VmNic *nic, Error **err);
};

extern const VmDriverOps vm_driver_libvirt;
extern const VmDriverOps vm_driver_fake;

/* The version of the libvirt library this program runs with ("9.0.0"), as
 * virGetVersion() gives it; no connection is opened. Returns 0, or -EIO
 * when libvirt does not say. */
int vm_libvirt_version(char *buf, size_t size);

static inline int vm_driver_open(const VmDriverOps *ops, VmDriver **ret, const char *uri, const char *state_dir,
                                 VmEventFn cb, void *userdata, Error **err) {
        return ops->open(ret, uri, state_dir, cb, userdata, err);
}
static inline int vm_driver_create(VmDriver *d, const VmSpec *spec, Error **err) {
        return d->ops->create(d, spec, err);
}
static inline int vm_driver_destroy(VmDriver *d, const char *name, Error **err) {
        return d->ops->destroy(d, name, err);
}
static inline int vm_driver_state(VmDriver *d, const char *name, VmState *ret, Error **err) {
        return d->ops->state(d, name, ret, err);
}
static inline int vm_driver_suspend(VmDriver *d, const char *name, Error **err) {
        return d->ops->suspend(d, name, err);
}
static inline int vm_driver_resume(VmDriver *d, const char *name, Error **err) {
        return d->ops->resume(d, name, err);
}
static inline int vm_driver_vsock_cid(VmDriver *d, const char *name, unsigned *ret, Error **err) {
        return d->ops->vsock_cid(d, name, ret, err);
}
static inline int vm_driver_stats(VmDriver *d, const char *name, VmStats *ret, Error **err) {
        return d->ops->stats(d, name, ret, err);
}
static inline int vm_driver_list_ours(VmDriver *d, char ***ret_names, size_t *ret_n, Error **err) {
        return d->ops->list_ours(d, ret_names, ret_n, err);
}
static inline int vm_driver_forward(VmDriver *d, const char *name, const VmForward *fw, bool add, Error **err) {
        return d->ops->forward(d, name, fw, add, err);
}
static inline int vm_driver_list_pool(VmDriver *d, char ***ret_names, char ***ret_keys, size_t *ret_n, Error **err) {
        return d->ops->list_pool(d, ret_names, ret_keys, ret_n, err);
}
static inline int vm_driver_adopt(VmDriver *d, const char *name, const char *container_id, Error **err) {
        return d->ops->adopt(d, name, container_id, err);
}
static inline int vm_driver_attach_disk(VmDriver *d, const char *name, const VmDisk *disk, size_t index,
                                        Error **err) {
        return d->ops->attach_disk(d, name, disk, index, err);
}
static inline int vm_driver_attach_nic(VmDriver *d, const char *name, const VmNic *nic, Error **err) {
        return d->ops->attach_nic(d, name, nic, err);
}
/* NULL-safe; returns NULL. */
static inline VmDriver *vm_driver_close(VmDriver *d) {
        if (d)
                d->ops->close(d);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(VmDriver *, vm_driver_close);
#define _cleanup_vm_driver_ _cleanup_(vm_driver_closep)

/* Frees a name list from list_ours(); returns NULL. */
char **vm_names_free(char **names, size_t n);

/* --- the spec (vm-spec.c) --- */

/* Checks every field against the rules above; the message names the field
 * and the rule ("memory_mib 32: must be 64..1048576"). -EINVAL on failure. */
int vm_spec_validate(const VmSpec *spec, Error **err);
/* True when s matches [A-Za-z0-9_.-]{1,max}. */
bool vm_name_is_valid(const char *s, size_t max);
/* Checks a forward (protocol, an IPv4 host_ip or none, ports 1..65535);
 * -EINVAL with a message naming the field. */
int vm_forward_validate(const VmForward *fw, Error **err);
/* Checks nics[i] as vm_spec_validate() does; -EINVAL naming the field. */
int vm_nic_validate(const VmNic *nic, size_t i, Error **err);

const char *vm_state_to_string(VmState s);   /* "missing", "running"... */
const char *vm_accel_to_string(VmAccel a);   /* "auto", "kvm", "tcg" */
int vm_accel_from_string(const char *s);     /* VmAccel or -EINVAL */
const char *vm_disk_format_to_string(VmDiskFormat f); /* "raw", "qcow2" */
const char *vm_nic_type_to_string(VmNicType t);       /* "bridge", "user" */

/* --- the agent's transport (vm-accel.c) --- */

/* True when this host can give guests a virtio-vsock device: the vhost
 * device (path, normally VM_VHOST_VSOCK_DEV) opens read-write. Only the
 * device is opened, never an AF_VSOCK socket. */
#define VM_VHOST_VSOCK_DEV "/dev/vhost-vsock"
bool vm_vsock_usable(const char *path);

/* --- the accelerator (vm-accel.c) --- */

/* Resolves requested into VM_ACCEL_KVM or VM_ACCEL_TCG. KVM is usable only
 * when /proc/cpuinfo's flags name vmx or svm, /dev/kvm opens read-write and
 * KVM_GET_API_VERSION returns 12. *ret_reason (optional, free it) says why
 * the result was chosen ("no vmx/svm in /proc/cpuinfo"). Asking for KVM when
 * it is unusable returns -ENODEV, with the reason. */
int vm_accel_detect(VmAccel requested, VmAccel *ret, char **ret_reason);
/* The same with other files, for tests. */
int vm_accel_detect_at(VmAccel requested, const char *cpuinfo_path, const char *kvm_path, VmAccel *ret,
                       char **ret_reason);

/* --- fake-only controls (vm-fake.c); d must come from vm_driver_fake --- */

typedef enum VmFakeOp {
        VM_FAKE_OP_CREATE,
        VM_FAKE_OP_START, /* create fails after the define: tests the rollback */
        VM_FAKE_OP_DESTROY,
        VM_FAKE_OP_STATE,
        VM_FAKE_OP_LIST,
        _VM_FAKE_OP_MAX,
} VmFakeOp;

typedef struct VmFakeInfo {
        char container_id[VM_NAME_MAX + 1];
        VmAccel accel;     /* as resolved: AUTO becomes TCG */
        uint64_t memory_mib;
        unsigned vcpus;
        size_t n_disks;
        bool vsock;
        size_t n_nics;
        size_t n_filesystems;
        size_t n_forwards; /* forwards added and not removed */
} VmFakeInfo;

/* The next call of op fails with -code (once). */
void vm_fake_fail_next(VmDriver *d, VmFakeOp op, int code);
/* Changes a domain's state as the guest or QEMU would (power-off, crash),
 * and queues the event. -ENOENT when there is no such domain. */
int vm_fake_set_state(VmDriver *d, const char *name, VmState state, const char *reason);
/* Adds a running domain without our metadata (someone else's VM). */
int vm_fake_add_foreign(VmDriver *d, const char *name);
/* The fake's forward() keeps forwards per domain (only for a domain with a
 * VM_NIC_USER NIC, -EOPNOTSUPP otherwise) and answers -EADDRINUSE when any
 * domain of the driver holds the same protocol and host port on the same or
 * an overlapping address (all-addresses overlaps every one), as a real bind
 * would, except the very same forward on the same domain (success).
 * vm_fake_forward_exists(): 1 when that forward exists on name, 0 when not,
 * -ENOENT when there is no such domain. */
int vm_fake_forward_exists(VmDriver *d, const char *name, const VmForward *fw);
/* What create() was given for name; -ENOENT when missing or foreign. */
int vm_fake_info(VmDriver *d, const char *name, VmFakeInfo *ret);
/* The domain XML the real driver would have defined (vm_xml_build()). */
int vm_fake_domain_xml(VmDriver *d, const char *name, char **ret_xml);
/* Returns once every event queued so far has been delivered. Not from a
 * callback. */
void vm_fake_flush(VmDriver *d);
/* Makes the fake stand in for whole guests: from now on create() of a spec
 * with an agent_socket starts agent_bin (absolute; pl-agent) in host mode,
 * `--unix <agent_socket> --root <dirname(agent_socket)>/root`, the root
 * created when missing and the agent's output appended to console_log. The
 * agent is the guest: when it exits by itself the domain becomes SHUTOFF
 * (exit status 0, as the agent does once its main process ended) or CRASHED
 * (anything else), with an event; suspend/resume stop and continue its
 * process tree; destroy, a set_state to a stopped state and close kill the
 * tree and reap the agent, so nothing is left behind. NULL turns it off for
 * later creates. 0, -EINVAL or a negative errno. */
int vm_fake_set_agent(VmDriver *d, const char *agent_bin);
