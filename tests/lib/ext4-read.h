/* ext4-read.h: a small read-only view of an ext4 image for the ext4 writer
 * tests, with libext2fs (test code only; the product's one libext2fs user is
 * images/ext4/ext4-writer.c).
 *
 * Paths are "a/b/c" or "/a/b/c" from the root; no component is ever
 * followed as a symlink, so what a test sees is exactly what the image
 * holds. Every function returns 0 or a negative errno (-ENOENT, -ENOTDIR,
 * -EINVAL for the wrong file type, -EIO for a libext2fs failure). */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct Ext4Img Ext4Img;

typedef struct Ext4Stat {
        uint32_t ino;
        uint16_t mode; /* type and permission bits, as in struct stat */
        uint32_t uid, gid;
        uint64_t size;
        uint16_t links;
        int64_t mtime;
        uint32_t mtime_nsec;
        unsigned rdev_major, rdev_minor;
        uint64_t blocks; /* 512-byte units */
} Ext4Stat;

int ext4_img_open(Ext4Img **ret, const char *path);
void ext4_img_close(Ext4Img *img);

int ext4_img_stat(Ext4Img *img, const char *path, Ext4Stat *ret);
/* The whole content of a regular file (malloc'd, NUL-terminated beyond len). */
int ext4_img_read(Ext4Img *img, const char *path, char **ret, size_t *ret_len);
/* A symlink's target (malloc'd). */
int ext4_img_readlink(Ext4Img *img, const char *path, char **ret);
/* One extended attribute ("user.x", "security.capability"); -ENODATA if absent. */
int ext4_img_xattr(Ext4Img *img, const char *path, const char *key, char **ret, size_t *ret_len);

/* Calls fn for every entry below the root, parents before children, with the
 * path relative to the root ("etc/passwd"); "." and ".." are skipped. A
 * non-zero return of fn stops the walk and is returned. */
typedef int (*Ext4WalkFn)(const char *path, const Ext4Stat *st, void *userdata);
int ext4_img_walk(Ext4Img *img, Ext4WalkFn fn, void *userdata);

/* Fails the test, with e2fsck's output, unless "e2fsck -fn path" finds the
 * image clean. */
void ext4_img_assert_fsck(const char *path);
