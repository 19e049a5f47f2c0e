/* kernel-modules.h: which kernel module files a guest must load, and in what
 * order, read from a kernel's own modules.dep (libc only).
 *
 * The guest kernel is a distribution kernel unpacked by scripts/fetch-kernel.sh
 * into <kernel-dir>/lib/modules/<release>/. Its modules.dep (written by depmod)
 * lists every module with all of its dependencies; modules.builtin lists what is
 * compiled into the kernel image. Given a few module names, the resolver returns
 * the .ko files to pack into the initramfs, dependencies first, each once. */
#pragma once

#include <stddef.h>

#include "common/base/error.h"

/* Limits on the files read: refuse larger ones rather than trust them. */
#define KERNEL_MODULES_MAX_FILE (16u * 1024u * 1024u)
#define KERNEL_MODULES_MAX_LINE (64u * 1024u)

/* Resolves the NULL-terminated list names against modules_dir (a directory
 * holding modules.dep, normally .../lib/modules/<release>). A name may spell
 * '-' or '_' interchangeably ("virtio-pci" == "virtio_pci"). On success
 * *ret_paths is a NULL-terminated array of malloc'd paths relative to
 * modules_dir ("kernel/drivers/virtio/virtio_ring.ko"), in load order: every
 * module after all its dependencies, none twice. *ret_n (if ret_n is not NULL)
 * is its length, possibly 0 when everything asked for is built in.
 *
 * A name found only in modules.builtin is satisfied without a file; a missing
 * modules.builtin counts as empty. Errors: -ENOENT naming the module that is
 * neither a module nor built in (or when modules.dep is missing), -EFBIG for a
 * file over KERNEL_MODULES_MAX_FILE, -EINVAL for a malformed modules.dep (line
 * without ':', line over KERNEL_MODULES_MAX_LINE, absolute or ".." path,
 * duplicate entry, dependency without its own line, invalid name), -ELOOP for
 * a dependency cycle or a chain deeper than 64, -EBUSY when a file changes
 * size while read. */
int kernel_modules_resolve(const char *modules_dir, const char *const *names, char ***ret_paths, size_t *ret_n,
                           Error **err);

/* Frees a NULL-terminated array from kernel_modules_resolve() (NULL-safe);
 * returns NULL. */
char **kernel_modules_free(char **paths);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, kernel_modules_free);
#define _cleanup_kernel_modules_ _cleanup_(kernel_modules_freep)

/* Finds the modules directory of an unpacked kernel: kernel_dir itself when it
 * holds modules.dep, else the only subdirectory of kernel_dir/lib/modules
 * (the layout scripts/fetch-kernel.sh writes). Sets *ret (malloc'd). -ENOENT
 * when there is none, -ENOTUNIQ when lib/modules holds several releases. */
int kernel_modules_find_dir(const char *kernel_dir, char **ret, Error **err);

/* The guest kernel a daemon boots when not told which: the directory of our
 * own kernel (cache/kernel/pl-current, scripts/build-kernel.sh) when it holds a
 * readable vmlinuz, else Debian's cloud kernel (cache/kernel/current,
 * scripts/fetch-kernel.sh). cache NULL or empty: $PL_CACHE, else
 * /var/cache/portlayer. Sets *ret_dir (malloc'd). -ENOENT, saying how to get
 * one, when neither is there; another errno when one is there but unreadable. */
int kernel_default_dir(const char *cache, char **ret_dir, Error **err);
