/* fs-util.h: the file system helpers every component needs, written once
 * (libc only): mkdir -p, atomic file replacement by rename, and a recursive
 * remove that never follows a symlink.
 *
 * All of them return 0 or a negative errno and set no Error: callers know
 * which path they passed and add it to their own message. */
#pragma once

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/base/macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);
#define _cleanup_closedir_ _cleanup_(closedirp)

/* Creates path and its missing parents, each with mode (before the umask).
 * An existing directory (or symlink to one) is fine at every level; an
 * existing non-directory is -ENOTDIR. Returns 0, -EINVAL for an empty path,
 * -ENOMEM, or mkdir()'s negative errno. */
int mkdir_p(const char *path, mode_t mode);

/* Creates a new temporary file beside path, "<dir>/.<name>.XXXXXX", opened
 * O_RDWR|O_CLOEXEC with mode 0600. Returns the fd and sets *ret_tmp to its
 * (malloc'd) name, or returns a negative errno and creates nothing. The
 * caller writes it, then calls tmpfile_link(), or unlinks *ret_tmp itself
 * when it gives up before that. */
int tmpfile_open_beside(const char *path, char **ret_tmp);

/* Puts the temporary file tmp (open as fd, from tmpfile_open_beside()) in
 * place as path: sets mode, fsyncs the file, renames it over path, fsyncs the
 * directory. On failure tmp is unlinked, path is untouched (or already the
 * new file when only the directory sync failed), and a negative errno is
 * returned. fd stays the caller's to close. */
int tmpfile_link(int fd, const char *tmp, const char *path, mode_t mode);

/* Replaces path with the len bytes of data, atomically: readers see the old
 * file or the new one, never a part. The bytes go to a temporary file in the
 * same directory, which is fsynced and renamed over path; the directory is
 * fsynced last. Nothing is left behind on failure. Returns 0 or a negative
 * errno (-ENOENT when the directory does not exist). */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* write_file_atomic() for the file name (one component: no '/', not "." or
 * "..") in the directory dir_fd (which may be an O_PATH fd, as the agent's
 * confined lookups give): a temporary ".<name>.XXXXXX" made there with
 * O_EXCL is written, fsynced and renamed over name, then the directory is
 * fsynced. A symlink at name is replaced, never followed. Nothing is left
 * behind on failure. Returns 0, -EINVAL for a bad name, or a negative errno. */
int write_file_atomic_at(int dir_fd, const char *name, const void *data, size_t len, mode_t mode);

/* Removes name below dir_fd (AT_FDCWD for a path) and, if it is a directory,
 * everything in it. Symlinks are never followed, at any depth: a link is
 * removed, not its target, and a directory swapped for a link while we walk
 * fails to open (O_NOFOLLOW) rather than be entered. A missing name is 0.
 * Goes on past errors and returns the first one (a negative errno). When
 * freed_bytes is not NULL, adds the allocated size of every regular file
 * removed to it. */
int rm_rf_at(int dir_fd, const char *name, uint64_t *freed_bytes);

/* rm_rf_at(AT_FDCWD, path, NULL): removes path recursively, never following
 * a symlink (a symlink path removes the link). A missing path is 0. */
int rm_rf(const char *path);
