/* initramfs.h: the guest's boot image, a gzip-compressed newc cpio archive
 * built with libarchive, content-addressed and built once (libarchive,
 * libcrypto).
 *
 * The archive holds the guest agent as /init, the empty directories it mounts
 * on (/dev /proc /sys /run /tmp /mnt /mnt/root /lib /lib/modules), the kernel
 * modules the guest needs as /lib/modules/<file name> (stored as shipped,
 * compressed or not) and /lib/modules/order, their file names in load order,
 * one per line. No device nodes: the agent mounts devtmpfs.
 *
 * Output is deterministic (mtime 0, uid/gid 0, fixed inode numbers, sorted
 * entries, no gzip timestamp): the same inputs give the same bytes. Its name
 * is the SHA-256 of the inputs (format version, agent bytes, each module's
 * path and bytes), so an existing file is reused as is. No root is needed. */
#pragma once

#include "common/base/error.h"

/* Bumped whenever the archive layout changes, so old cache files are not reused. */
#define INITRAMFS_FORMAT_VERSION 1

/* Bounds on the inputs, which are read into memory whole. */
#define INITRAMFS_MAX_AGENT (256u * 1024u * 1024u)
#define INITRAMFS_MAX_MODULE (64u * 1024u * 1024u)
#define INITRAMFS_MAX_MODULES 256u

/* The modules a container guest needs on the distribution's kernel (virtio
 * transport, disk, console port, RNG, vsock, NIC, virtio-fs), NULL-terminated;
 * their dependencies (virtio_net: net_failover, failover; virtiofs: fuse)
 * come from modules.dep. */
extern const char *const initramfs_default_modules[];

typedef struct InitramfsSpec {
        const char *agent_path;      /* becomes /init (mode 0755) */
        const char *modules_dir;     /* .../lib/modules/<release>; may be NULL when modules is empty */
        const char *const *modules;  /* NULL-terminated module names (dependencies are added), or NULL */
} InitramfsSpec;

/* Builds (or finds) <cache_dir>/initramfs-<sha256 hex>.cpio.gz for spec and
 * sets *ret_path (malloc'd). cache_dir is created (with parents) if needed.
 * A new file is written to a temporary file in cache_dir, fsync'd and renamed
 * into place; on failure no temporary file is left behind.
 *
 * Errors: those of kernel_modules_resolve() (-ENOENT for an unknown module),
 * -ENOENT/-EACCES... for an unreadable agent or module (naming it), -EFBIG
 * for an input over its bound, -EEXIST when two modules share a file name,
 * -EIO with libarchive's message when writing fails. */
int initramfs_build(const InitramfsSpec *spec, const char *cache_dir, char **ret_path, Error **err);
