/* ext4-writer.h: OCI image layers into a read-only ext4 disk, without mounting.
 *
 * An Ext4Writer creates a new ext4 filesystem in a new sparse file and applies
 * layer tar streams to it in order, with OCI layer semantics (whiteouts,
 * opaque directories, type replacement), writing inodes, directories and file
 * data directly with libext2fs: no root, no unpacked tree on disk. Layer input
 * is hostile: names are validated, parents are walked one component at a time
 * and a symlink in the image is never followed. This is the only module that
 * includes libext2fs.
 *
 * Typical use:
 *     ext4_writer_new(&w, "disk.img", ext4_size_for(bytes, entries), &err);
 *     for each layer: ext4_writer_apply_layer(w, fd, &stats, &err);
 *     ext4_writer_finish(w, &err);
 *     ext4_writer_free(w);
 * Any failure leaves the writer unusable except for ext4_writer_free(), which
 * deletes the unfinished image. */
#pragma once

#include <stdint.h>

#include "common/base/error.h"

#define EXT4_WRITER_MAX_ENTRIES 1000000u /* per layer */
#define EXT4_WRITER_MAX_PATH 4096u       /* bytes in an entry name */
#define EXT4_WRITER_MAX_COMPONENT 255u   /* bytes in one path component */
#define EXT4_WRITER_MIN_SIZE (32ull << 20)

typedef struct Ext4Writer Ext4Writer;

typedef struct Ext4LayerStats {
        uint64_t entries;    /* archive entries read, whiteouts included */
        uint64_t files;      /* regular files written */
        uint64_t dirs;       /* directories created or updated */
        uint64_t symlinks;
        uint64_t hardlinks;
        uint64_t specials;   /* devices and fifos */
        uint64_t whiteouts;  /* .wh.<name> and opaque markers */
        uint64_t removed;    /* inodes freed by whiteouts and replacements */
        uint64_t data_bytes; /* file content written */
} Ext4LayerStats;

/* Image size for content_bytes of file data in entries entries (summed over
 * all layers, uncompressed): data plus a block of slack and an inode per
 * entry, 20 % headroom, at least EXT4_WRITER_MIN_SIZE, rounded up to 4 MiB.
 * The inode count of ext4_writer_new() grows with the size (one per 8 KiB),
 * and this size always leaves room for entries inodes. The file is sparse,
 * so generous sizing costs little disk. */
uint64_t ext4_size_for(uint64_t content_bytes, uint64_t entries);

/* Creates path (which must not exist) as a sparse file of size_bytes (rounded
 * down to 4 KiB blocks, at least EXT4_WRITER_MIN_SIZE) holding an empty ext4
 * filesystem: 4 KiB blocks, 256-byte inodes, extents, dir_index, filetype,
 * sparse_super, large_file, huge_file, flex_bg, 64bit, dir_nlink,
 * extra_isize, ext_attr, metadata_csum (crc32c); no journal, no resize
 * inode. Implicit directories and the root get the creation time. Root is 0:0 0755, with lost+found.
 * Returns 0 or a negative errno (-EEXIST, -EINVAL, -ENOSPC, -EIO...). */
int ext4_writer_new(Ext4Writer **ret, const char *path, uint64_t size_bytes, Error **err);

/* Reads one layer tar (uncompressed, gzip or zstd) from tar_fd to its end and
 * applies it on top of the image. ret (optional) receives the counters. On
 * failure the image is in an undefined state: free the writer. Errors name the
 * entry: "layer entry 'a/b': parent 'a' is a symlink". -ENOSPC when the image
 * is full, -E2BIG after EXT4_WRITER_MAX_ENTRIES entries, -EINVAL for a bad
 * name or entry, -EIO (or the archive's errno) for a corrupt stream.
 * Names: a leading "/" is stripped (as tar does), ".." is refused, any other
 * byte is kept. Times outside ext4's range (1901..2446) are clamped to it;
 * device numbers beyond the kernel's 12:20 bits are -EINVAL; xattrs outside
 * the kernel's namespaces (user., trusted., security., POSIX ACLs) are
 * skipped. A root opaque marker keeps the filesystem's lost+found.
 * Time is linear in the entries (N log N for a directory's hash tree): the
 * directories the layer touches are held in memory (about 32 bytes plus the
 * name per entry) and written back at the end of the layer, those over one
 * block as hash trees (dir_index). */
int ext4_writer_apply_layer(Ext4Writer *w, int tar_fd, Ext4LayerStats *ret, Error **err);

/* Writes the superblock, group descriptors and bitmaps and closes the file
 * (after giving exact link counts back to directories that once had more
 * than 65000 subdirectories and now have fewer).
 * After success the image is kept by ext4_writer_free(). */
int ext4_writer_finish(Ext4Writer *w, Error **err);

/* Creates path (which must not exist) as a sparse file of size_bytes holding
 * an empty, finished ext4 filesystem: ext4_writer_new() then
 * ext4_writer_finish() with no layer, so a root directory owned by 0:0 with
 * mode 0755 (a container's root user can write it, others read it, as a
 * Docker volume's fresh directory), lost+found and a journal. Nothing is left
 * at path on failure. Errors as ext4_writer_new(). */
int ext4_image_create_empty(const char *path, uint64_t size_bytes, Error **err);

/* Frees w (NULL-safe); deletes the image file unless finished. */
void ext4_writer_free(Ext4Writer *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(Ext4Writer *, ext4_writer_free);
#define _cleanup_ext4_writer_ _cleanup_(ext4_writer_freep)
