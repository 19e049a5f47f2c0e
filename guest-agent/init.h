/* init.h: the agent as PID 1 inside a guest.
 *
 * Stage 1 (init_stage1) prepares the guest: kernel filesystems, modules from
 * the initramfs, entropy, the container's root disk found by its virtio
 * serial, mounted and grown to the size of its disk (root-grow.c), with the
 * standard mounts inside it, hostname, hosts and
 * resolv.conf; and it finds the agent's virtio-serial port by name. Stage 2 is
 * the ordinary agent loop, chrooted into the root. Stage 3 (init_poweroff)
 * syncs, unmounts and powers off. PID 1 never exits: a failed stage 1 is
 * logged to the console and reported to the host through guest info; only a
 * guest with no way to reach the host powers off at once.
 *
 * Settings come from the kernel command line (pl.* keys, see InitConfig). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/error.h"

#define INIT_ROOT_MOUNT "/mnt/root"
#define INIT_DEFAULT_PORT "org.portlayer.agent.0"
#define INIT_DEFAULT_ROOT_SERIAL "pl-root"
#define INIT_DEFAULT_VSOCK_PORT 1024u
#define INIT_REPORT_ORDER_MAX 10 /* MAX_ORDER on x86 */

typedef struct InitConfig {
        char port_name[64];    /* pl.port=   virtio-serial port name */
        char root_serial[21];  /* pl.root=   virtio-blk serial of the root disk (20 chars max) */
        char fstype[16];       /* pl.fstype= ext4 */
        bool root_ro;          /* pl.ro=1    mount the root read-only */
        bool root_grow;        /* pl.grow=0  leave the root filesystem at its size (default: grow to the disk) */
        char hostname[65];     /* pl.hostname= */
        char dns[256];         /* pl.dns=    comma-separated nameservers */
        unsigned vsock_port;   /* pl.vsock=  0 disables */
        bool vsock_local;      /* pl.vsock_local=1  also serve vsock peers inside the guest */
        bool debug;            /* pl.debug=1 */
        int wait_ms;           /* pl.wait=   how long to wait for devices (default 10000) */
        bool pool;             /* pl.pool=1  boot without a container root (the warm pool): stage 1
                                * stops after the port, an activate request mounts the root later */
        int report_order;      /* pl.report_order=  free page reporting's smallest block (pages, as
                                * a power of two) once the balloon driver is loaded; -1: the kernel's */
} InitConfig;

/* Fills c with defaults, then applies every pl.* key of cmdline. Unknown
 * pl.* keys and values that do not fit are errors (-EINVAL with *err), other
 * words are ignored. */
int init_config_parse(const char *cmdline, InitConfig *c, Error **err);

/* Mounts /proc, /sys, /dev (devtmpfs), /dev/pts, /dev/shm and /run, attaches
 * the console to fds 0-2, and returns the kernel command line (malloc'd). */
int init_early(char **ret_cmdline, Error **err);

/* Stage 1, after init_early(). On success *ret_port is the /dev path of the agent's port (malloc'd)
 * and the root is mounted at INIT_ROOT_MOUNT. Errors that leave the host
 * unreachable return -ENODEV with no port; others still return the port when
 * found, so the agent can serve and report (*err says what failed). A root
 * that could not be grown is not a failure: *ret_grow_error (malloc'd, NULL
 * when fine) says why, for guest info. */
int init_stage1(const InitConfig *c, char **ret_port, char **ret_grow_error, Error **err);

/* Waits up to wait_ms (polling every 10 ms: virtio devices probe
 * asynchronously, disks may be hot-plugged) for the entry of the sysfs
 * directory dir whose name starts with prefix and whose attribute file attr
 * reads want ("/sys/block", "vd", "serial", "pl-root"); its name goes to ret
 * (size bytes). Returns 0, or -ENOENT when none appeared in time. */
int init_wait_for_attr(const char *dir, const char *prefix, const char *attr, const char *want, int wait_ms,
                       char *ret, size_t size);

/* The root part of stage 1: mounts the disk with c->root_serial (waited for
 * up to c->wait_ms) at INIT_ROOT_MOUNT, grows it, mounts the standard
 * filesystems inside it and writes the hostname files. Stage 1 runs it at
 * boot; in pool mode an activate request runs it instead (activate.c). */
int init_root_setup(const InitConfig *c, char **ret_grow_error, Error **err);

/* ---- growing the root filesystem (root-grow.c) ---------------------------- */

#define INIT_EXT4_SUPERBLOCK_SIZE 1024u

/* What the grow needs from an ext4 superblock. */
typedef struct Ext4Geometry {
        uint32_t block_size; /* bytes */
        uint64_t blocks;     /* s_blocks_count: the filesystem's size in blocks */
        bool is_64bit;       /* 64bit feature: block numbers past 2^32 */
} Ext4Geometry;

/* Reads the geometry from the len bytes of a superblock (those at byte 1024
 * of the device). Returns 0, or -EINVAL when it is not an ext4 superblock or
 * its block size or count make no sense. */
int init_ext4_geometry_parse(const uint8_t *sb, size_t len, Ext4Geometry *ret);

/* Decides the block count to grow the filesystem g to on a device of
 * device_bytes: every whole block of the device (at most 2^32 - 1 without the
 * 64bit feature). Returns 1 with *ret_blocks when that is more than g has, 0
 * when the filesystem already fills the device (or the device is smaller:
 * never shrink), -EINVAL for a block size that is not a power of two >= 1024
 * or an empty filesystem. */
int init_root_grow_target(uint64_t device_bytes, const Ext4Geometry *g, uint64_t *ret_blocks);

/* Grows the ext4 mounted read-write at mountpoint, on block device device, to
 * the device's size with EXT4_IOC_RESIZE_FS. Returns 1 when it grew, 0 when
 * there was nothing to do, or a negative errno with *err. */
int init_root_grow(const char *device, const char *mountpoint, Error **err);

/* Stage 3: sync, unmount everything below and at the root, power off. */
_noreturn_ void init_poweroff(void);
