/* ext4-read.c: reads ext4 images for the writer tests with libext2fs:
 * lookups one component at a time without following symlinks, inode
 * metadata decoded the way the kernel does (uid/gid high halves, the
 * nanosecond and epoch bits of i_mtime_extra, old and new device number
 * encodings), file contents, symlink targets (fast and block), extended
 * attributes and a whole-tree walk. See ext4-read.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ext2fs/ext2fs.h>

#include "lib/ext4-read.h"
#include "lib/test-sh.h"

struct Ext4Img {
        ext2_filsys fs;
};

int ext4_img_open(Ext4Img **ret, const char *path) {
        Ext4Img *img = calloc(1, sizeof(*img));
        if (!img)
                return -ENOMEM;
        if (ext2fs_open(path, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &img->fs)) {
                free(img);
                return -EIO;
        }
        *ret = img;
        return 0;
}

void ext4_img_close(Ext4Img *img) {
        if (!img)
                return;
        ext2fs_close_free(&img->fs);
        free(img);
}

static int read_inode(Ext4Img *img, ext2_ino_t ino, struct ext2_inode_large *inode) {
        memset(inode, 0, sizeof(*inode));
        return ext2fs_read_inode_full(img->fs, ino, EXT2_INODE(inode), sizeof(*inode)) ? -EIO : 0;
}

static int lookup(Ext4Img *img, const char *path, ext2_ino_t *ret) {
        ext2_ino_t ino = EXT2_ROOT_INO;
        for (const char *p = path; *p;) {
                size_t k = strcspn(p, "/");
                if (k > 0) {
                        struct ext2_inode_large inode;
                        if (read_inode(img, ino, &inode) < 0)
                                return -EIO;
                        if (!LINUX_S_ISDIR(inode.i_mode))
                                return -ENOTDIR;
                        errcode_t rc = ext2fs_lookup(img->fs, ino, p, (int) k, NULL, &ino);
                        if (rc == EXT2_ET_FILE_NOT_FOUND)
                                return -ENOENT;
                        if (rc)
                                return -EIO;
                }
                p += k;
                p += strspn(p, "/");
        }
        *ret = ino;
        return 0;
}

static void fill_stat(Ext4Img *img, ext2_ino_t ino, const struct ext2_inode_large *inode, Ext4Stat *st) {
        memset(st, 0, sizeof(*st));
        st->ino = ino;
        st->mode = inode->i_mode;
        st->uid = inode->i_uid | (uint32_t) inode->osd2.linux2.l_i_uid_high << 16;
        st->gid = inode->i_gid | (uint32_t) inode->osd2.linux2.l_i_gid_high << 16;
        st->size = EXT2_I_SIZE(inode);
        st->links = inode->i_links_count;
        st->mtime = (int32_t) inode->i_mtime;
        if (inode->i_extra_isize >= offsetof(struct ext2_inode_large, i_mtime_extra) + 4 - EXT2_GOOD_OLD_INODE_SIZE) {
                st->mtime += (int64_t) (inode->i_mtime_extra & EXT4_EPOCH_MASK) << 32;
                st->mtime_nsec = inode->i_mtime_extra >> EXT4_EPOCH_BITS;
        }
        if (LINUX_S_ISCHR(inode->i_mode) || LINUX_S_ISBLK(inode->i_mode)) {
                uint32_t old = inode->i_block[0], neu = inode->i_block[1];
                if (old) {
                        st->rdev_major = (old >> 8) & 0xff;
                        st->rdev_minor = old & 0xff;
                } else {
                        st->rdev_major = (neu >> 8) & 0xfff;
                        st->rdev_minor = (neu & 0xff) | ((neu >> 12) & 0xfff00);
                }
        }
        st->blocks = ext2fs_get_stat_i_blocks(img->fs, EXT2_INODE((struct ext2_inode_large *) inode));
}

int ext4_img_stat(Ext4Img *img, const char *path, Ext4Stat *ret) {
        ext2_ino_t ino;
        struct ext2_inode_large inode;
        int r = lookup(img, path, &ino);
        if (r < 0 || (r = read_inode(img, ino, &inode)) < 0)
                return r;
        fill_stat(img, ino, &inode, ret);
        return 0;
}

static int read_data(Ext4Img *img, ext2_ino_t ino, uint64_t size, char **ret) {
        char *buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        ext2_file_t f;
        if (ext2fs_file_open(img->fs, ino, 0, &f)) {
                free(buf);
                return -EIO;
        }
        uint64_t done = 0;
        errcode_t rc = 0;
        while (!rc && done < size) {
                unsigned int n = 0;
                rc = ext2fs_file_read(f, buf + done, (unsigned int) (size - done > (1u << 20) ? 1u << 20 : size - done),
                                      &n);
                if (n == 0)
                        break;
                done += n;
        }
        ext2fs_file_close(f);
        if (rc || done != size) {
                free(buf);
                return -EIO;
        }
        buf[size] = 0;
        *ret = buf;
        return 0;
}

int ext4_img_read(Ext4Img *img, const char *path, char **ret, size_t *ret_len) {
        ext2_ino_t ino;
        struct ext2_inode_large inode;
        int r = lookup(img, path, &ino);
        if (r < 0 || (r = read_inode(img, ino, &inode)) < 0)
                return r;
        if (!LINUX_S_ISREG(inode.i_mode))
                return -EINVAL;
        if ((r = read_data(img, ino, EXT2_I_SIZE(&inode), ret)) < 0)
                return r;
        *ret_len = EXT2_I_SIZE(&inode);
        return 0;
}

int ext4_img_readlink(Ext4Img *img, const char *path, char **ret) {
        ext2_ino_t ino;
        struct ext2_inode_large inode;
        int r = lookup(img, path, &ino);
        if (r < 0 || (r = read_inode(img, ino, &inode)) < 0)
                return r;
        if (!LINUX_S_ISLNK(inode.i_mode) || EXT2_I_SIZE(&inode) >= 65536)
                return -EINVAL;
        if (!ext2fs_is_fast_symlink(EXT2_INODE(&inode)))
                return read_data(img, ino, EXT2_I_SIZE(&inode), ret);
        *ret = strndup((const char *) inode.i_block, EXT2_I_SIZE(&inode));
        return *ret ? 0 : -ENOMEM;
}

int ext4_img_xattr(Ext4Img *img, const char *path, const char *key, char **ret, size_t *ret_len) {
        ext2_ino_t ino;
        int r = lookup(img, path, &ino);
        if (r < 0)
                return r;
        struct ext2_xattr_handle *h = NULL;
        if (ext2fs_xattrs_open(img->fs, ino, &h))
                return -EIO;
        void *value = NULL;
        size_t len = 0;
        errcode_t rc = ext2fs_xattrs_read(h);
        if (!rc)
                rc = ext2fs_xattr_get(h, key, &value, &len);
        ext2fs_xattrs_close(&h);
        if (rc == EXT2_ET_EA_KEY_NOT_FOUND)
                return -ENODATA;
        if (rc)
                return -EIO;
        *ret = malloc(len + 1);
        if (*ret) {
                memcpy(*ret, value, len);
                (*ret)[len] = 0;
        }
        ext2fs_free_mem(&value);
        *ret_len = len;
        return *ret ? 0 : -ENOMEM;
}

typedef struct Walk {
        Ext4Img *img;
        Ext4WalkFn fn;
        void *userdata;
        char path[8192];
        size_t len;
        int r;
} Walk;

static int walk_dir(Walk *walk, ext2_ino_t dir);

static int walk_entry(ext2_ino_t dir, int entry, struct ext2_dir_entry *dirent, int offset, int blocksize,
                      char *buf, void *priv) {
        Walk *walk = priv;
        int len = ext2fs_dirent_name_len(dirent);
        if (dirent->inode == 0 || (len == 1 && dirent->name[0] == '.') ||
            (len == 2 && dirent->name[0] == '.' && dirent->name[1] == '.'))
                return 0;
        size_t saved = walk->len;
        if (saved + (size_t) len + 2 > sizeof(walk->path)) {
                walk->r = -ENAMETOOLONG;
                return DIRENT_ABORT;
        }
        if (saved)
                walk->path[walk->len++] = '/';
        memcpy(walk->path + walk->len, dirent->name, (size_t) len);
        walk->len += (size_t) len;
        walk->path[walk->len] = 0;
        struct ext2_inode_large inode;
        Ext4Stat st;
        walk->r = read_inode(walk->img, dirent->inode, &inode);
        if (walk->r == 0) {
                fill_stat(walk->img, dirent->inode, &inode, &st);
                walk->r = walk->fn(walk->path, &st, walk->userdata);
        }
        if (walk->r == 0 && LINUX_S_ISDIR(inode.i_mode))
                walk->r = walk_dir(walk, dirent->inode);
        walk->len = saved;
        walk->path[saved] = 0;
        return walk->r ? DIRENT_ABORT : 0;
}

static int walk_dir(Walk *walk, ext2_ino_t dir) {
        errcode_t rc = ext2fs_dir_iterate2(walk->img->fs, dir, 0, NULL, walk_entry, walk);
        if (walk->r)
                return walk->r;
        return rc ? -EIO : 0;
}

int ext4_img_walk(Ext4Img *img, Ext4WalkFn fn, void *userdata) {
        Walk *walk = calloc(1, sizeof(*walk));
        if (!walk)
                return -ENOMEM;
        *walk = (Walk){.img = img, .fn = fn, .userdata = userdata};
        int r = walk_dir(walk, EXT2_ROOT_INO);
        free(walk);
        return r;
}

void ext4_img_assert_fsck(const char *path) {
        char *out = NULL;
        int status = test_sh_out(&out, NULL, "e2fsck -fn '%s' 2>&1", path);
        if (status != 0)
                fail_msg("e2fsck -fn %s: exit %d\n%s", path, status, out ? out : "");
        free(out);
}
