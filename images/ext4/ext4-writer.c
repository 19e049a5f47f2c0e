/* ext4-writer.c: applies OCI layer tars to the ext4 writer's image with
 * libext2fs, without mounting.
 *
 * Entries are written inode by inode: ext2fs_new_inode +
 * ext2fs_write_inode_full for files, devices and fifos, ext2fs_mkdir for
 * directories, ext2fs_symlink for symlinks, ext2fs_file_write for data
 * streamed straight from libarchive. Names go into the in-memory directories
 * of ext4-dir.c (written back at the end of each layer), never through
 * ext2fs_lookup/ext2fs_link, which scan the whole directory. Layer entries
 * are applied in order with OCI semantics: ".wh.<name>" removes <name>,
 * ".wh..wh..opq" removes every child of its directory that this layer did
 * not write (the inodes a layer writes or walks through are marked in a
 * per-layer inode bitmap, so the marker may come before or after its
 * siblings), and an entry of another type replaces what is there. Parents
 * are looked up one component at a time and a symlink parent is an error:
 * nothing in the image is ever followed. The image is created and finished
 * in ext4-format.c. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "common/archive/archive-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/base/path-util.h"
#include "ext4-writer-internal.h"
#include "images/ext4/layer-tar.h"

#define WHITEOUT_PREFIX ".wh."
#define OPAQUE_MARKER ".wh..wh..opq"
#define LINK_MAX_COUNT 65000u /* ext4's limit for a non-directory */

/* One layer being applied. */
typedef struct Layer {
        Ext4Writer *w;
        struct archive *a;
        Ext4LayerStats stats;
        const char *name; /* current entry, for messages */
} Layer;

/* ---- errors -------------------------------------------------------------- */

/* The text of a libext2fs error code, from libext2fs's own table (com_err's
 * error_message() knows it only once someone registered it), else an
 * errno's. */
const char *ext4_fs_strerror(errcode_t rc) {
        const struct error_table *t = &et_ext2_error_table;
        if (rc >= t->base && rc < t->base + t->n_msgs)
                return t->msgs[rc - t->base];
        const char *s = rc > 0 && rc < 4096 ? strerrordesc_np((int) rc) : NULL;
        return s ? s : "unknown libext2fs error";
}

bool ext4_is_nospace(errcode_t rc) {
        return rc == EXT2_ET_BLOCK_ALLOC_FAIL || rc == EXT2_ET_INODE_ALLOC_FAIL ||
               rc == EXT2_ET_DIR_NO_SPACE || rc == ENOSPC;
}

/* Turns a libext2fs code into a negative errno and a message naming what. */
int ext4_fs_fail(Error **err, errcode_t rc, const char *what, const char *name) {
        if (ext4_is_nospace(rc))
                return error_set(err, ENOSPC, "layer entry '%s': %s: filesystem image is full "
                                 "(size it with ext4_size_for())", name, what);
        int code = rc > 0 && rc < 4096 ? (int) rc : EIO;
        if (rc == EXT2_ET_EA_NO_SPACE || rc == EXT2_ET_EA_BAD_NAME_LEN || rc == EXT2_ET_EA_BAD_VALUE_SIZE)
                code = EINVAL; /* an xattr ext4 cannot hold: a bad entry, not a broken image */
        return error_set(err, code, "layer entry '%s': %s: %s", name, what, ext4_fs_strerror(rc));
}

/* ---- names --------------------------------------------------------------- */

/* Fails for a bad name; names past 300 bytes are cut short in the message. */
static int name_fail(Error **err, int code, const char *entry, const char *raw, const char *why) {
        const char *more = strlen(raw) > 300 ? "..." : "";
        if (entry)
                return error_set(err, code, "layer entry '%s': hard link target '%.300s%s': %s", entry, raw, more,
                                 why);
        return error_set(err, code, "layer entry '%.300s%s': %s", raw, more, why);
}

/* Normalizes a layer name into "a/b/c": a leading "/" or "./" is dropped, as
 * are "." and empty components; ".." anywhere, an over-long component or name
 * is refused. "" is the root itself. entry is NULL for an entry's own name,
 * or the entry whose hard link target raw is (errors then name both). */
static int normalize_name(const char *raw, const char *entry, char **ret, Error **err) {
        static const PathRules rules = {
                .max_len = EXT4_WRITER_MAX_PATH,
                .max_component = EXT4_WRITER_MAX_COMPONENT,
                .strip_root = true,
        };
        PathReject why = PATH_REJECT_NONE;
        int r = path_normalize(NULL, raw, &rules, ret, &why);
        if (r >= 0)
                return 0;
        switch (why) {
        case PATH_REJECT_EMPTY:
                return name_fail(err, EINVAL, entry, "", "empty name");
        case PATH_REJECT_TOO_LONG:
                return name_fail(err, ENAMETOOLONG, entry, raw, "name longer than 4096 bytes");
        case PATH_REJECT_DOTDOT:
                return name_fail(err, EINVAL, entry, raw, "'..' component not allowed");
        case PATH_REJECT_COMPONENT_TOO_LONG:
                return name_fail(err, ENAMETOOLONG, entry, raw, "component longer than 255 bytes");
        default:
                return r == -ENOMEM ? error_oom(err) : name_fail(err, -r, entry, raw, "bad name");
        }
}

_Static_assert(EXT4_WRITER_MAX_PATH == 4096 && EXT4_WRITER_MAX_COMPONENT == 255, "messages above");

/* ---- inode helpers ------------------------------------------------------- */

static int read_inode(Layer *l, ext2_ino_t ino, struct ext2_inode_large *inode, Error **err) {
        memset(inode, 0, sizeof(*inode));
        errcode_t rc = ext2fs_read_inode_full(l->w->fs, ino, EXT2_INODE(inode), sizeof(*inode));
        return rc ? ext4_fs_fail(err, rc, "read inode", l->name) : 0;
}

static int write_inode(Layer *l, ext2_ino_t ino, struct ext2_inode_large *inode, Error **err) {
        errcode_t rc = ext2fs_write_inode_full(l->w->fs, ino, EXT2_INODE(inode), sizeof(*inode));
        return rc ? ext4_fs_fail(err, rc, "write inode", l->name) : 0;
}

static uint32_t time_extra(int64_t sec, long nsec) {
        uint32_t epoch = (uint32_t) (((sec - (int32_t) sec) >> 32) & EXT4_EPOCH_MASK);
        return ((uint32_t) nsec << EXT4_EPOCH_BITS) | epoch;
}

/* Sets permissions, owner and all times of inode from e (mtime for atime and
 * ctime too, so that images are reproducible); keeps the file type. */
static void inode_set_meta(struct ext2_inode_large *inode, struct archive_entry *e) {
        inode->i_mode = (uint16_t) ((inode->i_mode & LINUX_S_IFMT) | (archive_entry_perm(e) & 07777));
        uint32_t uid = (uint32_t) archive_entry_uid(e), gid = (uint32_t) archive_entry_gid(e);
        inode->i_uid = (uint16_t) uid;
        inode->osd2.linux2.l_i_uid_high = (uint16_t) (uid >> 16);
        inode->i_gid = (uint16_t) gid;
        inode->osd2.linux2.l_i_gid_high = (uint16_t) (gid >> 16);
        int64_t sec = archive_entry_mtime_is_set(e) ? archive_entry_mtime(e) : 0;
        long nsec = archive_entry_mtime_is_set(e) ? archive_entry_mtime_nsec(e) : 0;
        if (nsec < 0 || nsec > 999999999)
                nsec = 0;
        /* 32 bits plus 2 epoch bits reach from 1901 to 2446; clamp to that
         * range as the kernel does rather than wrap to another century. */
        sec = MAX(sec, (int64_t) INT32_MIN);
        sec = MIN(sec, (int64_t) INT32_MIN + (1ll << 34) - 1);
        inode->i_mtime = inode->i_atime = inode->i_ctime = inode->i_crtime = (uint32_t) sec;
        uint32_t extra = time_extra(sec, nsec);
        inode->i_mtime_extra = inode->i_atime_extra = inode->i_ctime_extra = inode->i_crtime_extra = extra;
        inode->i_extra_isize = sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
}

static int update_meta(Layer *l, ext2_ino_t ino, struct archive_entry *e, Error **err) {
        struct ext2_inode_large inode;
        int r = read_inode(l, ino, &inode, err);
        if (r < 0)
                return r;
        inode_set_meta(&inode, e);
        return write_inode(l, ino, &inode, err);
}

/* Whether the kernel has a namespace for xattr name (a non-empty name
 * after "user.", "trusted." or "security.", or a POSIX ACL). libext2fs
 * stores other names too, but e2fsck calls such a block corrupt. */
static bool xattr_name_known(const char *name) {
        static const char *const prefixes[] = {"user.", "trusted.", "security."};
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
                        return name[strlen(prefixes[i])] != 0;
        return strcmp(name, "system.posix_acl_access") == 0 || strcmp(name, "system.posix_acl_default") == 0;
}

/* Applies the entry's extended attributes (security.capability and others).
 * Names outside the kernel's namespaces (macOS "com.apple.*", say) are
 * skipped, as containerd skips what the filesystem does not support; a POSIX
 * ACL must be a header and whole entries (libext2fs converts it). */
static int apply_xattrs(Layer *l, ext2_ino_t ino, struct archive_entry *e, Error **err) {
        if (archive_entry_xattr_reset(e) == 0)
                return 0;
        struct ext2_xattr_handle *h = NULL;
        errcode_t rc = ext2fs_xattrs_open(l->w->fs, ino, &h);
        if (!rc)
                rc = ext2fs_xattrs_read(h);
        const char *name;
        const void *value;
        size_t size;
        int r = 0;
        while (!rc && r == 0 && archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
                if (!xattr_name_known(name))
                        log_debug("layer entry '%s': skipping extended attribute '%.64s'", l->name, name);
                else if (strncmp(name, "system.posix_acl_", 17) == 0 && (size < 4 || (size - 4) % 8 != 0))
                        r = error_set(err, EINVAL, "layer entry '%s': extended attribute '%s': bad ACL size %zu",
                                      l->name, name, size);
                else
                        rc = ext2fs_xattr_set(h, name, value, size);
        }
        errcode_t rc2 = h ? ext2fs_xattrs_close(&h) : 0;
        if (r < 0)
                return r;
        if (rc || rc2)
                return ext4_fs_fail(err, rc ? rc : rc2, "extended attributes", l->name);
        return 0;
}

/* The directory entry type for an inode mode. */
static int dirent_type(uint16_t mode) {
        switch (mode & LINUX_S_IFMT) {
        case LINUX_S_IFREG: return EXT2_FT_REG_FILE;
        case LINUX_S_IFDIR: return EXT2_FT_DIR;
        case LINUX_S_IFCHR: return EXT2_FT_CHRDEV;
        case LINUX_S_IFBLK: return EXT2_FT_BLKDEV;
        case LINUX_S_IFIFO: return EXT2_FT_FIFO;
        case LINUX_S_IFSOCK: return EXT2_FT_SOCK;
        case LINUX_S_IFLNK: return EXT2_FT_SYMLINK;
        default: return EXT2_FT_UNKNOWN;
        }
}

static void touch(Layer *l, ext2_ino_t ino) {
        ext2fs_mark_inode_bitmap2(l->w->touched, ino);
}

/* Adds leaf -> ino to parent's in-memory entries (see ext4-dir.c). */
static int link_name(Layer *l, ext2_ino_t dir, const char *leaf, ext2_ino_t ino, int type, Error **err) {
        return ext4_dir_add(l->w, dir, leaf, ino, type, l->name, err);
}

/* ---- removal ------------------------------------------------------------- */

/* Drops one link of ino and frees the inode, its blocks and xattrs at zero. */
static int drop_link(Layer *l, ext2_ino_t ino, Error **err) {
        struct ext2_inode_large inode;
        int r = read_inode(l, ino, &inode, err);
        if (r < 0)
                return r;
        bool dir = LINUX_S_ISDIR(inode.i_mode);
        if (!dir && inode.i_links_count > 1) {
                inode.i_links_count--;
                return write_inode(l, ino, &inode, err);
        }
        ext2_filsys fs = l->w->fs;
        errcode_t rc = ext2fs_free_ext_attr(fs, ino, &inode);
        if (!rc && ext2fs_inode_has_valid_blocks2(fs, EXT2_INODE(&inode)))
                rc = ext2fs_punch(fs, ino, EXT2_INODE(&inode), NULL, 0, ~0ULL);
        if (rc)
                return ext4_fs_fail(err, rc, "free inode", l->name);
        inode.i_links_count = 0;
        inode.i_dtime = (uint32_t) time(NULL);
        r = write_inode(l, ino, &inode, err);
        if (r < 0)
                return r;
        ext2fs_inode_alloc_stats2(fs, ino, -1, dir);
        if (dir)
                ext4_dir_forget(l->w, ino);
        ext2fs_unmark_inode_bitmap2(l->w->touched, ino);
        if (ino == l->w->lost_found) /* replaced by a layer: the number may be reused */
                l->w->lost_found = 0;
        l->stats.removed++;
        return 0;
}

static int remove_entry(Layer *l, ext2_ino_t parent, const char *leaf, ext2_ino_t ino, Error **err);

/* Removes every child of dir; with keep_touched, children this layer wrote
 * stay (and directories among them are pruned the same way): opaque. */
static int prune_dir(Layer *l, ext2_ino_t dir, bool keep_touched, Error **err) {
        size_t pos = 0;
        const char *name;
        ext2_ino_t ino;
        int r;
        while ((r = ext4_dir_next_child(l->w, dir, &pos, &name, &ino, l->name, err)) > 0) {
                /* A root opaque marker hides lower layers, not the
                 * filesystem's lost+found: it is pruned like a touched
                 * directory instead of removed. */
                bool keep = ext2fs_test_inode_bitmap2(l->w->touched, ino) ||
                            (dir == EXT2_ROOT_INO && ino == l->w->lost_found);
                if (!keep_touched || !keep) {
                        if ((r = remove_entry(l, dir, name, ino, err)) < 0)
                                return r;
                        continue;
                }
                struct ext2_inode_large inode;
                if ((r = read_inode(l, ino, &inode, err)) < 0)
                        return r;
                if (LINUX_S_ISDIR(inode.i_mode) && (r = prune_dir(l, ino, true, err)) < 0)
                        return r;
        }
        return r;
}

/* Unlinks leaf (inode ino) from parent, recursively for a directory. */
static int remove_entry(Layer *l, ext2_ino_t parent, const char *leaf, ext2_ino_t ino, Error **err) {
        struct ext2_inode_large inode;
        int r = read_inode(l, ino, &inode, err);
        if (r < 0)
                return r;
        bool dir = LINUX_S_ISDIR(inode.i_mode);
        if (dir && (r = prune_dir(l, ino, false, err)) < 0)
                return r;
        if ((r = ext4_dir_remove(l->w, parent, leaf, l->name, err)) < 0) /* leaf is gone now */
                return r;
        if (dir) {
                struct ext2_inode_large p;
                if ((r = read_inode(l, parent, &p, err)) < 0)
                        return r;
                if (p.i_links_count > 2)
                        p.i_links_count--;
                if ((r = write_inode(l, parent, &p, err)) < 0)
                        return r;
        }
        return drop_link(l, ino, err);
}

/* ---- path walking -------------------------------------------------------- */

/* Looks up leaf in dir: 0 with *ret = 0 when missing. */
static int lookup(Layer *l, ext2_ino_t dir, const char *leaf, size_t len, ext2_ino_t *ret, Error **err) {
        return ext4_dir_lookup(l->w, dir, leaf, len, ret, l->name, err);
}

/* Creates directory leaf in parent. ext2fs_mkdir() adds one to the parent's
 * 16-bit link count, which wraps after 65535 subdirectories; with dir_nlink
 * a count past EXT2_LINK_MAX is stored as 1 instead ("many"), as the kernel
 * and e2fsck expect. Exact counts come back in fix_dir_nlinks(). */
static int make_dir(Layer *l, ext2_ino_t parent, const char *leaf, ext2_ino_t *ret, Error **err) {
        ext2_filsys fs = l->w->fs;
        struct ext2_inode_large p;
        int r = read_inode(l, parent, &p, err);
        if (r < 0)
                return r;
        uint16_t links = p.i_links_count;
        ext2_ino_t ino = 0;
        errcode_t rc = ext2fs_new_inode(fs, parent, LINUX_S_IFDIR | 0755, NULL, &ino);
        if (!rc)
                rc = ext2fs_mkdir(fs, parent, ino, NULL); /* unnamed: the name goes in memory */
        if (rc)
                return ext4_fs_fail(err, rc, "mkdir", l->name);
        if ((r = ext4_dir_created(l->w, ino, parent, l->name, err)) < 0 ||
            (r = link_name(l, parent, leaf, ino, EXT2_FT_DIR, err)) < 0)
                return r;
        if (links == 1 || links >= EXT2_LINK_MAX) {
                if ((r = read_inode(l, parent, &p, err)) < 0)
                        return r;
                p.i_links_count = 1;
                if ((r = write_inode(l, parent, &p, err)) < 0)
                        return r;
                l->w->nlink_many = true;
        }
        *ret = ino;
        return 0;
}

/* Walks the parent directories of path ("a/b/c" -> "a/b") from the root.
 * Missing ones are created 0755 0:0 when create is set; otherwise *ret is 0.
 * A parent that is a symlink or not a directory is an error. *ret_leaf
 * points into path. Parents walked are marked touched (see prune_dir). */
static int walk_parent(Layer *l, char *path, bool create, ext2_ino_t *ret, const char **ret_leaf, Error **err) {
        ext2_ino_t dir = EXT2_ROOT_INO;
        char *p = path;
        for (char *slash; (slash = strchr(p, '/')); p = slash + 1) {
                ext2_ino_t ino = 0;
                int r = lookup(l, dir, p, (size_t) (slash - p), &ino, err);
                if (r < 0)
                        return r;
                *slash = 0;
                if (ino == 0 && !create) {
                        *slash = '/';
                        *ret = 0;
                        return 0;
                }
                if (ino == 0) {
                        r = make_dir(l, dir, p, &ino, err);
                } else {
                        struct ext2_inode_large inode;
                        r = read_inode(l, ino, &inode, err);
                        if (r >= 0 && LINUX_S_ISLNK(inode.i_mode))
                                r = error_set(err, ELOOP, "layer entry '%s': parent '%s' is a symlink", l->name,
                                              path);
                        else if (r >= 0 && !LINUX_S_ISDIR(inode.i_mode))
                                r = error_set(err, ENOTDIR, "layer entry '%s': parent '%s' is not a directory",
                                              l->name, path);
                }
                *slash = '/';
                if (r < 0)
                        return r;
                touch(l, ino);
                dir = ino;
        }
        *ret = dir;
        *ret_leaf = p;
        return 0;
}

/* ---- entry kinds --------------------------------------------------------- */

static int write_data(Layer *l, ext2_ino_t ino, struct archive_entry *e, Error **err) {
        ext2_file_t f;
        errcode_t rc = ext2fs_file_open(l->w->fs, ino, EXT2_FILE_WRITE, &f);
        if (rc)
                return ext4_fs_fail(err, rc, "open file", l->name);
        uint64_t pos = 0;
        int r = 0;
        for (;;) {
                const void *buf;
                size_t size;
                la_int64_t offset;
                int ar = archive_read_data_block(l->a, &buf, &size, &offset);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN) {
                        r = error_set(err, archive_errno_or(l->a, EIO), "layer entry '%s': read data: %s", l->name,
                                      archive_message(l->a));
                        break;
                }
                if (offset < 0 || (uint64_t) offset != pos)
                        rc = ext2fs_file_llseek(f, (uint64_t) (offset < 0 ? 0 : offset), EXT2_SEEK_SET, NULL);
                pos = (uint64_t) (offset < 0 ? 0 : offset);
                for (size_t done = 0; !rc && done < size;) {
                        unsigned int n = 0;
                        rc = ext2fs_file_write(f, (const char *) buf + done,
                                               (unsigned int) MIN(size - done, 1u << 20), &n);
                        done += n;
                        pos += n;
                }
                if (rc)
                        break;
                l->stats.data_bytes += size;
        }
        if (!rc && r >= 0)
                rc = ext2fs_file_set_size2(f, MAX(pos, (uint64_t) MAX(archive_entry_size(e), 0)));
        errcode_t rc2 = ext2fs_file_close(f);
        if (r < 0)
                return r;
        if (rc || rc2)
                return ext4_fs_fail(err, rc ? rc : rc2, "write data", l->name);
        return 0;
}

/* Creates a new inode of type (LINUX_S_IF*) with e's metadata, linked as leaf. */
static int create_inode(Layer *l, ext2_ino_t parent, const char *leaf, struct archive_entry *e, uint16_t type,
                        ext2_ino_t *ret, Error **err) {
        ext2_filsys fs = l->w->fs;
        ext2_ino_t ino = 0;
        errcode_t rc = ext2fs_new_inode(fs, parent, type, NULL, &ino);
        if (rc)
                return ext4_fs_fail(err, rc, "allocate inode", l->name);
        struct ext2_inode_large inode = {.i_mode = type, .i_links_count = 1};
        inode_set_meta(&inode, e);
        if (type == LINUX_S_IFCHR || type == LINUX_S_IFBLK) {
                unsigned major = major(archive_entry_rdev(e)), minor = minor(archive_entry_rdev(e));
                if (major > 0xfff || minor > 0xfffff) /* what the kernel's dev_t holds */
                        return error_set(err, EINVAL, "layer entry '%s': device number %u:%u out of range", l->name,
                                         major, minor);
                if (major < 256 && minor < 256)
                        inode.i_block[0] = major * 256 + minor;
                else
                        inode.i_block[1] = (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
        } else if (type == LINUX_S_IFREG) {
                ext2_extent_handle_t h;
                rc = ext2fs_extent_open2(fs, ino, EXT2_INODE(&inode), &h);
                if (rc)
                        return ext4_fs_fail(err, rc, "extent tree", l->name);
                ext2fs_extent_free(h);
        }
        int r = write_inode(l, ino, &inode, err);
        if (r < 0)
                return r;
        ext2fs_inode_alloc_stats2(fs, ino, +1, 0);
        r = link_name(l, parent, leaf, ino, dirent_type(type), err);
        if (r < 0)
                return r;
        touch(l, ino);
        *ret = ino;
        return 0;
}

static int apply_symlink(Layer *l, ext2_ino_t parent, const char *leaf, struct archive_entry *e, Error **err) {
        const char *target = entry_symlink(e);
        if (!target || !*target || strlen(target) >= EXT4_BLOCK_SIZE)
                return error_set(err, EINVAL, "layer entry '%s': symlink target empty or too long", l->name);
        ext2_filsys fs = l->w->fs;
        ext2_ino_t ino = 0;
        errcode_t rc = ext2fs_new_inode(fs, parent, LINUX_S_IFLNK | 0777, NULL, &ino);
        if (!rc)
                rc = ext2fs_symlink(fs, parent, ino, NULL, target); /* unnamed: the name goes in memory */
        if (rc)
                return ext4_fs_fail(err, rc, "symlink", l->name);
        int r = link_name(l, parent, leaf, ino, EXT2_FT_SYMLINK, err);
        if (r < 0)
                return r;
        touch(l, ino);
        struct ext2_inode_large inode;
        if ((r = read_inode(l, ino, &inode, err)) < 0)
                return r;
        inode_set_meta(&inode, e);
        inode.i_mode = LINUX_S_IFLNK | 0777;
        if ((r = write_inode(l, ino, &inode, err)) < 0)
                return r;
        l->stats.symlinks++;
        return apply_xattrs(l, ino, e, err);
}

static int apply_hardlink(Layer *l, ext2_ino_t parent, const char *leaf, ext2_ino_t existing, const char *link,
                          Error **err) {
        _cleanup_free_ char *target = NULL;
        int r = normalize_name(link, l->name, &target, err);
        if (r < 0)
                return r;
        ext2_ino_t tdir = 0, tino = 0;
        const char *tleaf;
        if (*target && (r = walk_parent(l, target, false, &tdir, &tleaf, err)) < 0)
                return r;
        if (tdir && (r = lookup(l, tdir, tleaf, strlen(tleaf), &tino, err)) < 0)
                return r;
        struct ext2_inode_large inode;
        if (tino == 0 || (r = read_inode(l, tino, &inode, err)) < 0)
                return r < 0 ? r : error_set(err, ENOENT, "layer entry '%s': hard link target '%s' not found",
                                             l->name, link);
        if (LINUX_S_ISDIR(inode.i_mode))
                return error_set(err, EPERM, "layer entry '%s': hard link to directory '%s'", l->name, link);
        l->stats.hardlinks++;
        touch(l, tino);
        if (existing == tino)
                return 0;
        if (existing && (r = remove_entry(l, parent, leaf, existing, err)) < 0)
                return r;
        if ((r = read_inode(l, tino, &inode, err)) < 0) /* removal may have changed it */
                return r;
        if (inode.i_links_count == 0) /* "d" -> "d/f": replacing d freed the target */
                return error_set(err, EINVAL, "layer entry '%s': hard link target '%s' removed by this entry",
                                 l->name, link);
        if (inode.i_links_count >= LINK_MAX_COUNT)
                return error_set(err, EMLINK, "layer entry '%s': too many links to '%s'", l->name, link);
        inode.i_links_count++;
        if ((r = write_inode(l, tino, &inode, err)) < 0)
                return r;
        return link_name(l, parent, leaf, tino, dirent_type(inode.i_mode), err);
}

static int apply_dir(Layer *l, ext2_ino_t parent, const char *leaf, ext2_ino_t existing, struct archive_entry *e,
                     Error **err) {
        int r;
        if (existing) {
                struct ext2_inode_large inode;
                if ((r = read_inode(l, existing, &inode, err)) < 0)
                        return r;
                if (!LINUX_S_ISDIR(inode.i_mode) && (r = remove_entry(l, parent, leaf, existing, err)) < 0)
                        return r;
                if (!LINUX_S_ISDIR(inode.i_mode))
                        existing = 0;
        }
        if (!existing && (r = make_dir(l, parent, leaf, &existing, err)) < 0)
                return r;
        touch(l, existing);
        l->stats.dirs++;
        if ((r = update_meta(l, existing, e, err)) < 0)
                return r;
        return apply_xattrs(l, existing, e, err);
}

static int apply_other(Layer *l, ext2_ino_t parent, const char *leaf, ext2_ino_t existing, struct archive_entry *e,
                       Error **err) {
        uint16_t type;
        switch (archive_entry_filetype(e)) {
        case AE_IFREG: type = LINUX_S_IFREG; break;
        case AE_IFCHR: type = LINUX_S_IFCHR; break;
        case AE_IFBLK: type = LINUX_S_IFBLK; break;
        case AE_IFIFO: type = LINUX_S_IFIFO; break;
        default:
                return error_set(err, EINVAL, "layer entry '%s': unsupported file type 0%o", l->name,
                                 (unsigned) archive_entry_filetype(e));
        }
        int r;
        if (existing && (r = remove_entry(l, parent, leaf, existing, err)) < 0)
                return r;
        ext2_ino_t ino = 0;
        if ((r = create_inode(l, parent, leaf, e, type, &ino, err)) < 0)
                return r;
        if (type == LINUX_S_IFREG) {
                l->stats.files++;
                if ((r = write_data(l, ino, e, err)) < 0)
                        return r;
        } else {
                l->stats.specials++;
        }
        return apply_xattrs(l, ino, e, err);
}

/* ---- entries ------------------------------------------------------------- */

static int apply_whiteout(Layer *l, const char *path, Error **err) {
        _cleanup_free_ char *walk = strdup(path);
        if (!walk)
                return error_oom(err);
        ext2_ino_t dir = 0;
        const char *leaf;
        l->stats.whiteouts++;
        int r = walk_parent(l, walk, false, &dir, &leaf, err);
        if (r < 0 || dir == 0)
                return r;
        if (strcmp(leaf, OPAQUE_MARKER) == 0)
                return prune_dir(l, dir, true, err);
        const char *victim = leaf + strlen(WHITEOUT_PREFIX);
        if (!*victim || strcmp(victim, ".") == 0 || strcmp(victim, "..") == 0)
                return error_set(err, EINVAL, "layer entry '%s': bad whiteout", l->name);
        ext2_ino_t ino = 0;
        if ((r = lookup(l, dir, victim, strlen(victim), &ino, err)) < 0 || ino == 0)
                return r;
        return remove_entry(l, dir, victim, ino, err);
}

static int apply_entry(Layer *l, struct archive_entry *e, Error **err) {
        _cleanup_free_ char *path = NULL;
        int r = normalize_name(entry_pathname(e), NULL, &path, err);
        if (r < 0)
                return r;
        l->name = path;
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (strncmp(base, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX)) == 0)
                return apply_whiteout(l, path, err);

        bool is_dir = archive_entry_filetype(e) == AE_IFDIR && !entry_hardlink(e);
        if (!*path) {
                if (!is_dir)
                        return error_set(err, EINVAL, "layer entry '%s': the root must be a directory",
                                         entry_pathname(e));
                touch(l, EXT2_ROOT_INO);
                return update_meta(l, EXT2_ROOT_INO, e, err);
        }
        _cleanup_free_ char *walk = strdup(path); /* walk_parent() cuts it up, l->name stays */
        if (!walk)
                return error_oom(err);
        ext2_ino_t parent = 0, existing = 0;
        const char *leaf;
        if ((r = walk_parent(l, walk, true, &parent, &leaf, err)) < 0)
                return r;
        if ((r = lookup(l, parent, leaf, strlen(leaf), &existing, err)) < 0)
                return r;
        if (entry_hardlink(e))
                return apply_hardlink(l, parent, leaf, existing, entry_hardlink(e), err);
        if (is_dir)
                return apply_dir(l, parent, leaf, existing, e, err);
        if (archive_entry_filetype(e) == AE_IFLNK) {
                if (existing && (r = remove_entry(l, parent, leaf, existing, err)) < 0)
                        return r;
                return apply_symlink(l, parent, leaf, e, err);
        }
        return apply_other(l, parent, leaf, existing, e, err);
}

static int apply_all(Layer *l, Error **err) {
        for (;;) {
                struct archive_entry *e;
                int ar = archive_read_next_header(l->a, &e);
                if (ar == ARCHIVE_EOF)
                        return 0;
                if (ar < ARCHIVE_WARN)
                        return error_set(err, archive_errno_or(l->a, EIO), "read layer after %llu entries: %s",
                                         (unsigned long long) l->stats.entries, archive_message(l->a));
                if (++l->stats.entries > EXT4_WRITER_MAX_ENTRIES)
                        return error_set(err, E2BIG, "layer has more than %u entries", EXT4_WRITER_MAX_ENTRIES);
                int r = apply_entry(l, e, err);
                if (r < 0)
                        return r;
        }
}

int ext4_writer_apply_layer(Ext4Writer *w, int tar_fd, Ext4LayerStats *ret, Error **err) {
        if (!w || w->finished || w->broken || tar_fd < 0)
                return error_set(err, EINVAL, "ext4 writer: apply layer on a finished or failed writer");
        _cleanup_archive_read_ struct archive *a = NULL;
        int r = layer_tar_reader_new(&a);
        if (r < 0)
                return error_set(err, r, "read layer: %s", r == -ENOMEM ? "out of memory" : "libarchive lacks tar, gzip or zstd");
        if (archive_read_open_fd(a, tar_fd, 1 << 16) != ARCHIVE_OK)
                return error_set(err, archive_errno_or(a, EIO), "read layer: %s", archive_message(a));
        ext2fs_clear_inode_bitmap(w->touched);
        Layer l = {.w = w, .a = a, .name = ""};
        r = apply_all(&l, err);
        if (r >= 0)
                r = ext4_dirs_flush(w, err);
        if (r < 0)
                w->broken = true;
        if (ret)
                *ret = l.stats;
        return r;
}
