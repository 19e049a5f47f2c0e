/* ext4-writer-internal.h: what the files of the ext4 writer share (private).
 *
 * The writer is split by sub-concern: ext4-writer.c applies layer entries,
 * ext4-dir.c keeps the directories a layer touches in memory (name -> inode
 * hash tables, written back as linear or hash-indexed directory blocks at
 * the end of the layer), ext4-format.c creates, finishes and frees the filesystem. Only
 * these files include libext2fs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <ext2fs/ext2fs.h>

#include "images/ext4/ext4-writer.h"

#define EXT4_BLOCK_SIZE 4096u
#define EXT4_DIR_MAX_BYTES (1u << 30) /* of directory records: far below ext4's 2 GiB without largedir */

typedef struct Ext4Dir Ext4Dir;

struct Ext4Writer {
        ext2_filsys fs;
        char *path;
        bool finished;
        bool broken;                   /* a layer failed: only free is allowed */
        ext2fs_inode_bitmap touched;   /* inodes written or walked by the current layer */
        ext2_ino_t lost_found;         /* the filesystem's own, not an image entry */
        bool nlink_many;               /* a directory's link count went to 1 (see make_dir) */
        Ext4Dir **dirs;                /* loaded directories by inode (chained hash) */
        size_t n_dirs, n_dir_heads;
};

/* ---- errors (ext4-writer.c) ---------------------------------------------- */

/* The text of a libext2fs error code (or errno). */
const char *ext4_fs_strerror(errcode_t rc);
/* Whether rc means the image is out of blocks or inodes. */
bool ext4_is_nospace(errcode_t rc);
/* Sets err for a libext2fs failure of what on layer entry name; returns the
 * negative errno (-ENOSPC when the image is full, -EIO mostly). */
int ext4_fs_fail(Error **err, errcode_t rc, const char *what, const char *name);

/* ---- directories (ext4-dir.c) --------------------------------------------
 *
 * Between the first touch of a directory in a layer and ext4_dirs_flush(),
 * its entries live in memory only: its blocks on disk are stale, so nothing
 * may read them (no ext2fs_lookup/link/unlink/dir_iterate on it). entry names
 * the layer entry for messages. Names are 1..255 bytes, not "." or "..". */

/* Looks name up in dir (loading dir from disk on first use): 0 with *ret
 * the inode, or 0 with *ret = 0 when absent. */
int ext4_dir_lookup(Ext4Writer *w, ext2_ino_t dir, const char *name, size_t len, ext2_ino_t *ret,
                    const char *entry, Error **err);
/* Adds name -> ino (an EXT2_FT_* type) to dir; name must be absent. -EFBIG
 * when the directory would pass EXT4_DIR_MAX_BYTES of entries. */
int ext4_dir_add(Ext4Writer *w, ext2_ino_t dir, const char *name, ext2_ino_t ino, int type, const char *entry,
                 Error **err);
/* Removes name from dir (it must be there). name may point into dir's own
 * entry (from ext4_dir_next_child()): it is not read after the removal. */
int ext4_dir_remove(Ext4Writer *w, ext2_ino_t dir, const char *name, const char *entry, Error **err);
/* Iterates dir's entries ("." and ".." excluded) from *pos: 1 with the next
 * one's name and inode and *pos advanced past it, 0 at the end. Removing the
 * returned entry (or any other) while iterating is allowed; adding is not. */
int ext4_dir_next_child(Ext4Writer *w, ext2_ino_t dir, size_t *pos, const char **ret_name, ext2_ino_t *ret_ino,
                        const char *entry, Error **err);
/* Registers dir, just made by ext2fs_mkdir() without a name (one block, "."
 * and ".." -> parent), as loaded and empty. */
int ext4_dir_created(Ext4Writer *w, ext2_ino_t dir, ext2_ino_t parent, const char *entry, Error **err);
/* Drops what is kept of dir, whose inode was just freed. */
void ext4_dir_forget(Ext4Writer *w, ext2_ino_t dir);
/* Writes every changed directory back (one block: linear; more: a hash
 * tree) and frees them all. -ENOSPC when the image is full. */
int ext4_dirs_flush(Ext4Writer *w, Error **err);
/* Frees what is kept without writing (NULL-safe for a writer without any). */
void ext4_dirs_free(Ext4Writer *w);
