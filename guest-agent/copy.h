/* copy.h: the agent's file operations inside the container root.
 *
 * Every path is resolved relative to root_fd with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS): "..", absolute paths and symlinks (absolute or
 * relative) are clamped to the root, so nothing here can reach outside it even
 * when the container's own processes race to swap a directory for a symlink.
 *
 * copy_in_extract() and copy_out_archive() do blocking I/O and are meant to run
 * in a child process forked by the agent, reading or writing a pipe that the
 * agent's event loop feeds from / drains to a data channel. stat and remove
 * are short and run in the agent itself. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "common/base/error.h"

typedef struct CopyStats {
        uint64_t bytes;   /* archive bytes read or written */
        uint64_t entries; /* archive entries extracted or written */
} CopyStats;

/* Limits on what a copy-in archive may contain; hitting one is an error. */
#define COPY_MAX_PATH 4096u
#define COPY_MAX_ENTRIES 1000000u

/* Opens path inside the root (see above) with open flags (O_CLOEXEC added).
 * Returns an fd or a negative errno. */
int root_open(int root_fd, const char *path, int flags, mode_t mode);

/* mkdir -p inside the root. Every prefix is resolved with root_open(), so a
 * symlink in the path is followed but clamped, exactly as for every other
 * user path; new directories (0755) are made in the directory the previous
 * prefix resolved to. Returns an O_PATH fd of the resulting directory, or a
 * negative errno (-ENOTDIR when a component exists and is not one). */
int root_mkdir_p(int root_fd, const char *path);

/* Reads a tar stream (ustar/pax/gnu, uncompressed) from in_fd until its end and
 * extracts it under the directory path (created with parents, mode 0755, if
 * missing). Preserves modes, mtimes, symlinks, hard links (to entries inside
 * the same extraction root), fifos, device nodes when privileged, and owners
 * when preserve_owner (as root). Refuses entries whose name is absolute or has
 * a ".." component, and hard links whose target does so; never follows a
 * symlink when creating an entry. Returns 0 or a negative errno with *err
 * naming the entry. Already extracted entries stay (as with tar). */
int copy_in_extract(int root_fd, const char *path, int in_fd, bool preserve_owner, CopyStats *ret, Error **err);

/* Writes path (a file, symlink or directory tree) as a pax tar stream to
 * out_fd. Entry names are relative: the basename of path, then its contents
 * ("dir", "dir/a", ...). Hard links within the tree are written as hard links.
 * Returns 0 or a negative errno with *err. */
int copy_out_archive(int root_fd, const char *path, int out_fd, CopyStats *ret, Error **err);

/* lstat() of path inside the root; for a symlink *ret_link_target (if
 * non-NULL) gets its target (malloc'd), else NULL. */
int fs_stat(int root_fd, const char *path, struct stat *ret_st, char **ret_link_target, Error **err);

/* Removes path inside the root (a directory only when empty, unless
 * recursive). Refuses to remove the root itself. */
int fs_remove(int root_fd, const char *path, bool recursive, Error **err);
