/* ext4-format.c: creating, finishing and freeing the ext4 writer's image.
 *
 * ext4_writer_new() lays out an empty ext4 filesystem in a new sparse file
 * with ext2fs_initialize() (the features listed in ext4-writer.h, a random
 * uuid and hash seed, crc32c metadata checksums), makes the root and a 16 KiB
 * lost+found, reserves inodes 1..10 as mke2fs does, and adds a journal of
 * mke2fs's default size. ext4_writer_finish()
 * gives exact link counts back to directories that once had too many
 * subdirectories and writes the superblock, descriptors and bitmaps. Layers
 * are applied in ext4-writer.c. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/base/log.h"
#include "ext4-writer-internal.h"

#define INODE_SIZE 256u
#define BYTES_PER_INODE 8192u
#define LOST_FOUND_SIZE 16384u

uint64_t ext4_size_for(uint64_t content_bytes, uint64_t entries) {
        uint64_t data = content_bytes + entries * (EXT4_BLOCK_SIZE + INODE_SIZE);
        uint64_t size = data + data / 5 + (16ull << 20);
        uint64_t for_inodes = (entries + entries / 5 + 64) * BYTES_PER_INODE;
        size = MAX(size, for_inodes);
        int journal = ext2fs_default_journal_size(size / EXT4_BLOCK_SIZE);
        size = MAX(size + (journal > 0 ? (uint64_t) journal * EXT4_BLOCK_SIZE : 0), EXT4_WRITER_MIN_SIZE);
        uint64_t step = 4ull << 20;
        return (size + step - 1) / step * step;
}

static void init_params(struct ext2_super_block *p, uint64_t blocks) {
        memset(p, 0, sizeof(*p));
        ext2fs_blocks_count_set(p, blocks);
        p->s_log_block_size = 2; /* 1024 << 2 */
        p->s_rev_level = EXT2_DYNAMIC_REV;
        p->s_inode_size = INODE_SIZE;
        p->s_inodes_count = (uint32_t) MIN(blocks * EXT4_BLOCK_SIZE / BYTES_PER_INODE, (uint64_t) UINT32_MAX - 1);
        p->s_min_extra_isize = p->s_want_extra_isize = sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
        p->s_log_groups_per_flex = 4;
        p->s_desc_size = EXT2_MIN_DESC_SIZE_64BIT;
        p->s_feature_compat = EXT2_FEATURE_COMPAT_DIR_INDEX | EXT2_FEATURE_COMPAT_EXT_ATTR;
        p->s_feature_incompat = EXT2_FEATURE_INCOMPAT_FILETYPE | EXT3_FEATURE_INCOMPAT_EXTENTS |
                                EXT4_FEATURE_INCOMPAT_64BIT | EXT4_FEATURE_INCOMPAT_FLEX_BG;
        p->s_feature_ro_compat = EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER | EXT2_FEATURE_RO_COMPAT_LARGE_FILE |
                                 EXT4_FEATURE_RO_COMPAT_HUGE_FILE | EXT4_FEATURE_RO_COMPAT_DIR_NLINK |
                                 EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE | EXT4_FEATURE_RO_COMPAT_METADATA_CSUM;
}

/* Marks the reserved inodes (1..10 but root) in use, as mke2fs does, and
 * writes an empty bad block inode. */
static errcode_t reserve_inodes(ext2_filsys fs) {
        for (ext2_ino_t i = EXT2_ROOT_INO + 1; i < EXT2_FIRST_INODE(fs->super); i++)
                ext2fs_inode_alloc_stats2(fs, i, +1, 0);
        ext2fs_inode_alloc_stats2(fs, EXT2_BAD_INO, +1, 0);
        return ext2fs_update_bb_inode(fs, NULL);
}

static errcode_t make_root(ext2_filsys fs) {
        errcode_t rc = ext2fs_mkdir(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, NULL);
        if (!rc)
                rc = ext2fs_mkdir(fs, EXT2_ROOT_INO, 0, "lost+found");
        ext2_ino_t lf = 0;
        if (!rc)
                rc = ext2fs_lookup(fs, EXT2_ROOT_INO, "lost+found", 10, NULL, &lf);
        struct ext2_inode inode;
        while (!rc && !(rc = ext2fs_read_inode(fs, lf, &inode)) && EXT2_I_SIZE(&inode) < LOST_FOUND_SIZE)
                rc = ext2fs_expand_dir(fs, lf);
        return rc;
}

static errcode_t format(ext2_filsys *ret, const char *path, uint64_t blocks) {
        struct ext2_super_block param;
        init_params(&param, blocks);
        ext2_filsys fs;
        errcode_t rc = ext2fs_initialize(path, EXT2_FLAG_64BITS | EXT2_FLAG_RW, &param, unix_io_manager, &fs);
        if (rc)
                return rc;
        random_bytes(fs->super->s_uuid, sizeof(fs->super->s_uuid));
        random_bytes(fs->super->s_hash_seed, sizeof(fs->super->s_hash_seed));
        fs->super->s_checksum_type = EXT2_CRC32C_CHKSUM; /* not taken from param */
        ext2fs_init_csum_seed(fs); /* after the uuid: every checksum derives from it */
        fs->super->s_def_hash_version = EXT2_HASH_HALF_MD4;
        fs->super->s_flags |= (char) -1 < 0 ? EXT2_FLAGS_SIGNED_HASH : EXT2_FLAGS_UNSIGNED_HASH;
        fs->super->s_max_mnt_count = -1;
        fs->umask = 022;
        rc = ext2fs_allocate_tables(fs);
        if (!rc)
                rc = make_root(fs);
        if (!rc)
                rc = reserve_inodes(fs);
        /* A journal, as mke2fs makes one: a container's guest mounts its
         * copy read-write, and a VM powered off hard (a daemon killed
         * mid-start, a crash) must find its filesystem replayable, not in
         * need of e2fsck. Lazily initialised: the blocks stay sparse. */
        struct ext2fs_journal_params jp;
        if (!rc)
                rc = ext2fs_get_journal_params(&jp, fs);
        if (!rc)
                rc = ext2fs_add_journal_inode3(fs, &jp, ~0ULL, EXT2_MKJOURNAL_LAZYINIT | EXT2_MKJOURNAL_NO_MNT_CHECK);
        if (rc) {
                ext2fs_free(fs);
                return rc;
        }
        *ret = fs;
        return 0;
}

int ext4_writer_new(Ext4Writer **ret, const char *path, uint64_t size_bytes, Error **err) {
        if (!path || size_bytes < EXT4_WRITER_MIN_SIZE)
                return error_set(err, EINVAL, "ext4 image: size %llu below the minimum of %llu bytes",
                                 (unsigned long long) size_bytes, EXT4_WRITER_MIN_SIZE);
        _cleanup_(ext4_writer_freep) Ext4Writer *w = calloc(1, sizeof(Ext4Writer));
        if (!w || !(w->path = strdup(path)))
                return error_oom(err);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
                int code = errno;
                free(w->path);
                w->path = NULL; /* not ours: do not delete it */
                return error_set_errno(err, code, "ext4 image '%s': create", path);
        }
        uint64_t blocks = size_bytes / EXT4_BLOCK_SIZE;
        if (ftruncate(fd, (off_t) (blocks * EXT4_BLOCK_SIZE)) < 0)
                return error_set_errno(err, errno, "ext4 image '%s': set size", path);
        errcode_t rc = format(&w->fs, path, blocks);
        if (!rc)
                rc = ext2fs_allocate_inode_bitmap(w->fs, "layer", &w->touched);
        if (!rc)
                rc = ext2fs_lookup(w->fs, EXT2_ROOT_INO, "lost+found", 10, NULL, &w->lost_found);
        if (rc)
                return error_set(err, ext4_is_nospace(rc) ? ENOSPC : EIO, "ext4 image '%s': format: %s", path,
                                 ext4_fs_strerror(rc));
        *ret = TAKE_PTR(w);
        return 0;
}

int ext4_image_create_empty(const char *path, uint64_t size_bytes, Error **err) {
        _cleanup_(ext4_writer_freep) Ext4Writer *w = NULL;
        int r = ext4_writer_new(&w, path, size_bytes, err);
        return r < 0 ? r : ext4_writer_finish(w, err);
}

static int count_subdir(ext2_ino_t dir, int entry, struct ext2_dir_entry *dirent, int offset, int blocksize,
                        char *buf, void *priv) {
        int len = ext2fs_dirent_name_len(dirent);
        if (dirent->inode && ext2fs_dirent_file_type(dirent) == EXT2_FT_DIR &&
            !(len == 1 && dirent->name[0] == '.') && !(len == 2 && dirent->name[0] == '.' && dirent->name[1] == '.'))
                (*(uint64_t *) priv)++;
        return 0;
}

/* A directory whose count went to 1 may have lost subdirectories since
 * (whiteouts, replacements): e2fsck wants the exact count again when it is
 * EXT2_LINK_MAX or less. One pass over the inodes, only when needed. */
static errcode_t fix_dir_nlinks(ext2_filsys fs) {
        ext2_inode_scan scan;
        errcode_t rc = ext2fs_open_inode_scan(fs, 0, &scan);
        if (rc)
                return rc;
        ext2_ino_t *dirs = NULL;
        size_t n = 0, cap = 0;
        struct ext2_inode_large inode;
        for (ext2_ino_t ino; !rc;) {
                rc = ext2fs_get_next_inode_full(scan, &ino, EXT2_INODE(&inode), sizeof(inode));
                if (rc || ino == 0)
                        break;
                if (!LINUX_S_ISDIR(inode.i_mode) || inode.i_links_count != 1 ||
                    !ext2fs_test_inode_bitmap2(fs->inode_map, ino))
                        continue;
                if (n == cap) {
                        ext2_ino_t *more = realloc(dirs, (cap = cap ? cap * 2 : 16) * sizeof(*dirs));
                        if (!more) {
                                rc = EXT2_ET_NO_MEMORY;
                                break;
                        }
                        dirs = more;
                }
                dirs[n++] = ino;
        }
        ext2fs_close_inode_scan(scan);
        for (size_t i = 0; !rc && i < n; i++) {
                uint64_t subdirs = 0;
                rc = ext2fs_dir_iterate2(fs, dirs[i], 0, NULL, count_subdir, &subdirs);
                if (!rc && subdirs + 2 <= EXT2_LINK_MAX &&
                    !(rc = ext2fs_read_inode_full(fs, dirs[i], EXT2_INODE(&inode), sizeof(inode)))) {
                        inode.i_links_count = (uint16_t) (subdirs + 2);
                        rc = ext2fs_write_inode_full(fs, dirs[i], EXT2_INODE(&inode), sizeof(inode));
                }
        }
        free(dirs);
        return rc;
}

int ext4_writer_finish(Ext4Writer *w, Error **err) {
        if (!w || w->finished || w->broken)
                return error_set(err, EINVAL, "ext4 writer: finish on a finished or failed writer");
        ext2fs_free_inode_bitmap(w->touched);
        w->touched = NULL;
        errcode_t rc = w->nlink_many ? fix_dir_nlinks(w->fs) : 0;
        if (rc) {
                w->broken = true;
                return error_set(err, EIO, "ext4 image '%s': directory link counts: %s", w->path, ext4_fs_strerror(rc));
        }
        rc = ext2fs_close_free(&w->fs);
        if (rc) {
                w->broken = true;
                return error_set(err, ext4_is_nospace(rc) ? ENOSPC : EIO, "ext4 image '%s': close: %s", w->path,
                                 ext4_fs_strerror(rc));
        }
        w->finished = true;
        return 0;
}

void ext4_writer_free(Ext4Writer *w) {
        if (!w)
                return;
        ext4_dirs_free(w);
        if (w->touched)
                ext2fs_free_inode_bitmap(w->touched);
        if (w->fs)
                ext2fs_free(w->fs);
        if (!w->finished && w->path && unlink(w->path) < 0 && errno != ENOENT)
                log_debug("ext4 image '%s': unlink: %m", w->path);
        free(w->path);
        free(w);
}
