/* fs-util.h: directory and file helpers (libc only). */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Creates path and its missing parents; an existing directory is fine. */
int mkdir_p(const char *path, mode_t mode);
/* Writes data to path atomically: temp file, fsync, rename, fsync of the dir. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Removes path recursively without following symlinks; missing is 0. */
int rm_rf(const char *path);
