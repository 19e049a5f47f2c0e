/* copy.c: the agent's file operations inside the container root (see copy.h).
 *
 * The root is hostile: the container's processes may swap any directory for a
 * symlink at any time. So user paths are resolved only by openat2() with
 * RESOLVE_IN_ROOT, and everything below the resolved directory is reached one
 * component at a time from a directory fd with O_NOFOLLOW, never by a path
 * string. Metadata is applied through fds wherever the kernel allows it, and
 * with AT_SYMLINK_NOFOLLOW relative to a parent fd otherwise.
 *
 * libarchive only parses and produces the tar stream; its disk reader and
 * writer are not used because they resolve paths themselves. */
#include "guest-agent/copy.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/archive/archive-util.h"
#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/base/macro.h"
#include "common/base/path-util.h"

#define COPY_BLOCK_SIZE (64u * 1024u)
#define COPY_OUT_BLOCK_SIZE 10240
/* openat2() fails with EAGAIN when a rename races the lookup; a container
 * could do that forever, so give up eventually. */
#define ROOT_OPEN_RETRIES 32
#define LINK_TARGET_MAX (64u * 1024u)

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static inline bool is_dot_or_dotdot(const char *s) {
        return streq(s, ".") || streq(s, "..");
}

/* How user paths are shown in messages: "" is the root. */
static const char *display_path(const char *path) {
        return path && *path ? path : "/";
}

/* libarchive's errno is often 0, -1 or EILSEQ ("file format"), none of which
 * means anything to the host: report those as a bad message. */
static int archive_code(struct archive *a) {
        int e = archive_errno_or(a, EBADMSG);
        return e == EILSEQ ? EBADMSG : e;
}

int root_open(int root_fd, const char *path, int flags, mode_t mode) {
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC),
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        /* openat2() rejects a mode that cannot be used. */
        if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
                how.mode = mode & 07777;
        if (!path || !*path || streq(path, "/"))
                path = ".";

        for (int i = 0; i < ROOT_OPEN_RETRIES; i++) {
                int fd = (int) syscall(SYS_openat2, root_fd, path, &how, sizeof how);
                if (fd >= 0)
                        return fd;
                if (errno != EAGAIN && errno != EINTR)
                        return negative_errno();
        }
        return -EAGAIN;
}

/* ---- names ----------------------------------------------------------------- */

/* Turns an archive name into "a/b/c": no empty or "." components, no leading
 * or trailing slash. "" means the destination itself ("." or "./"). Absolute
 * names and ".." components are refused rather than clamped, so that a
 * hostile archive fails loudly instead of landing somewhere unexpected. */
static int normalize_name(const char *raw, const char *what, char **ret, Error **err) {
        static const PathRules rules = {.max_len = COPY_MAX_PATH};
        PathReject why = PATH_REJECT_NONE;
        int r = path_normalize(NULL, raw, &rules, ret, &why);
        if (r >= 0)
                return 0;
        switch (why) {
        case PATH_REJECT_EMPTY:
                return error_set(err, EINVAL, "%s has an empty name", what);
        case PATH_REJECT_TOO_LONG:
                return error_set(err, ENAMETOOLONG, "%s: name longer than %u bytes", what, COPY_MAX_PATH);
        case PATH_REJECT_ABSOLUTE:
                return error_set(err, EINVAL, "%s '%s': absolute path not allowed", what, raw);
        case PATH_REJECT_DOTDOT:
                return error_set(err, EINVAL, "%s '%s': path escapes the destination", what, raw);
        default:
                return r == -ENOMEM ? error_oom(err) : error_set(err, -r, "%s '%s': bad name", what, raw);
        }
}

/* The entry name copy-out gives path: its last component after lexically
 * dropping "." and "..", or "." when that leaves nothing (the root). This is
 * cosmetic only; what is archived is what openat2() resolved. */
static int archive_base_name(const char *path, char **ret) {
        /* A stack of the components kept so far; a component has at least one
         * byte and a separator, so there are at most strlen / 2 + 1. */
        size_t max = strlen(path) / 2 + 1, depth = 0;
        _cleanup_free_ size_t *starts = calloc(max, sizeof(size_t));
        _cleanup_free_ size_t *lens = calloc(max, sizeof(size_t));
        if (!starts || !lens)
                return -ENOMEM;

        for (const char *p = path; *p;) {
                size_t k = strcspn(p, "/");
                if (k == 2 && p[0] == '.' && p[1] == '.') {
                        if (depth > 0)
                                depth--;
                } else if (k > 0 && !(k == 1 && p[0] == '.')) {
                        starts[depth] = (size_t) (p - path);
                        lens[depth] = k;
                        depth++;
                }
                p += k;
                p += strspn(p, "/");
        }
        *ret = depth > 0 ? strndup(path + starts[depth - 1], lens[depth - 1]) : strdup(".");
        return *ret ? 0 : -ENOMEM;
}

/* ---- confined walking ---------------------------------------------------- */

/* Opens the parent directory of name ("a/b/c" -> "a/b") below dir_fd, one
 * component at a time with O_NOFOLLOW, so that a symlink (from the archive or
 * planted by the container) is never traversed. Missing directories are
 * created (0755) when create is set. *ret_leaf points into name. */
static int open_parent(int dir_fd, const char *name, bool create, int *ret_fd, const char **ret_leaf) {
        _cleanup_close_ int cur = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        if (cur < 0)
                return negative_errno();

        const char *p = name;
        for (const char *slash; (slash = strchr(p, '/')); p = slash + 1) {
                char comp[NAME_MAX + 1];
                size_t k = (size_t) (slash - p);
                if (k > NAME_MAX)
                        return -ENAMETOOLONG;
                memcpy(comp, p, k);
                comp[k] = 0;

                int fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0 && errno == ENOENT && create) {
                        if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST)
                                return negative_errno();
                        fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                }
                if (fd < 0)
                        return negative_errno();
                safe_close(cur);
                cur = fd;
        }
        *ret_fd = TAKE_FD(cur);
        *ret_leaf = p;
        return 0;
}

int root_mkdir_p(int root_fd, const char *path) {
        int fd = root_open(root_fd, path, O_PATH | O_DIRECTORY, 0);
        if (fd != -ENOENT)
                return fd;

        _cleanup_free_ char *prefix = strdup(path);
        if (!prefix)
                return -ENOMEM;
        _cleanup_close_ int parent = root_open(root_fd, "", O_PATH | O_DIRECTORY, 0);
        if (parent < 0)
                return parent;

        for (const char *p = path + strspn(path, "/"); *p;) {
                size_t k = strcspn(p, "/");
                size_t end = (size_t) (p - path) + k;
                p += k;
                p += strspn(p, "/");
                const char *comp = prefix + end - k;
                if (k == 1 && comp[0] == '.')
                        continue;

                char saved = prefix[end];
                prefix[end] = 0;
                fd = root_open(root_fd, prefix, O_PATH | O_DIRECTORY, 0);
                if (fd == -ENOENT && !(k == 2 && comp[0] == '.' && comp[1] == '.')) {
                        if (mkdirat(parent, comp, 0755) < 0 && errno != EEXIST)
                                return negative_errno();
                        fd = root_open(root_fd, prefix, O_PATH | O_DIRECTORY, 0);
                }
                prefix[end] = saved;
                if (fd < 0)
                        return fd;
                safe_close(parent);
                parent = fd;
        }
        return TAKE_FD(parent);
}

/* ---- copy-in --------------------------------------------------------------- */

/* A directory whose mode, owner and mtime are applied after all entries, so
 * that a read-only directory still receives its children and their creation
 * does not bump its mtime. */
typedef struct DirFixup {
        char *name;
        size_t index;
        mode_t mode;
        uid_t uid;
        gid_t gid;
        struct timespec mtime;
} DirFixup;

typedef struct Extract {
        struct archive *a;
        int dest_fd; /* O_PATH */
        bool preserve_owner;
        bool privileged;
        DirFixup *fixups;
        size_t n_fixups, cap_fixups;
} Extract;

static void extract_done(Extract *x) {
        for (size_t i = 0; i < x->n_fixups; i++)
                free(x->fixups[i].name);
        free(x->fixups);
        x->fixups = NULL;
        x->n_fixups = x->cap_fixups = 0;
        x->dest_fd = safe_close(x->dest_fd);
}

/* Without preserved owners the file belongs to the agent (root), and a
 * setuid/setgid bit would hand the container a privileged binary. */
static mode_t entry_mode(const Extract *x, struct archive_entry *e) {
        mode_t mode = archive_entry_perm(e) & 07777;
        if (!x->preserve_owner && archive_entry_filetype(e) != AE_IFDIR)
                mode &= ~(mode_t) (S_ISUID | S_ISGID);
        return mode;
}

static struct timespec entry_mtime(struct archive_entry *e) {
        if (!archive_entry_mtime_is_set(e))
                return (struct timespec) {.tv_nsec = UTIME_OMIT};
        return (struct timespec) {.tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e)};
}

static bool want_chown(const Extract *x) {
        return x->preserve_owner && x->privileged;
}

/* Owner before mode: chown() clears the setuid bits. */
static int apply_meta_fd(const Extract *x, int fd, mode_t mode, uid_t uid, gid_t gid, struct timespec mtime,
                         const char *name, Error **err) {
        if (want_chown(x) && fchown(fd, uid, gid) < 0)
                return error_set_errno(err, errno, "archive entry '%s': chown", name);
        if (fchmod(fd, mode) < 0)
                return error_set_errno(err, errno, "archive entry '%s': chmod", name);
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, mtime};
        if (mtime.tv_nsec != UTIME_OMIT && futimens(fd, ts) < 0)
                return error_set_errno(err, errno, "archive entry '%s': set mtime", name);
        return 0;
}

/* Makes room for a new entry: tar replaces what is there, but only an empty
 * directory may be replaced by a non-directory. */
static int remove_existing(int parent_fd, const char *leaf, const char *name, Error **err) {
        if (unlinkat(parent_fd, leaf, 0) >= 0 || errno == ENOENT)
                return 0;
        if (errno == EISDIR && unlinkat(parent_fd, leaf, AT_REMOVEDIR) >= 0)
                return 0;
        return error_set_errno(err, errno, "archive entry '%s': replace existing file", name);
}

static int write_full_at(int fd, const void *buf, size_t size, off_t offset) {
        const char *p = buf;
        while (size > 0) {
                ssize_t n = pwrite(fd, p, size, offset);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                p += n;
                size -= (size_t) n;
                offset += n;
        }
        return 0;
}

/* Copies the entry's data into fd; blocks may skip holes of a sparse file,
 * and a trailing hole is made by extending the file to its full size. */
static int extract_data(Extract *x, struct archive_entry *e, int fd, const char *name, Error **err) {
        int64_t end = 0;
        for (;;) {
                const void *buf;
                size_t size;
                la_int64_t offset;
                int r = archive_read_data_block(x->a, &buf, &size, &offset);
                if (r == ARCHIVE_EOF)
                        break;
                if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
                        return error_set(err, archive_code(x->a), "archive entry '%s': read: %s", name,
                                         archive_message(x->a));
                if ((r = write_full_at(fd, buf, size, (off_t) offset)) < 0)
                        return error_set_errno(err, -r, "archive entry '%s': write", name);
                end = MAX(end, (int64_t) offset + (int64_t) size);
        }
        if (archive_entry_size_is_set(e) && archive_entry_size(e) > end &&
            ftruncate(fd, (off_t) archive_entry_size(e)) < 0)
                return error_set_errno(err, errno, "archive entry '%s': truncate", name);
        return 0;
}

static int extract_file(Extract *x, struct archive_entry *e, int parent_fd, const char *leaf, const char *name,
                        Error **err) {
        int r = remove_existing(parent_fd, leaf, name, err);
        if (r < 0)
                return r;
        /* 0600 until the data is in: nobody else may open it half written. */
        _cleanup_close_ int fd = openat(parent_fd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return error_set_errno(err, errno, "archive entry '%s': create", name);
        if ((r = extract_data(x, e, fd, name, err)) < 0)
                return r;
        return apply_meta_fd(x, fd, entry_mode(x, e), archive_entry_uid(e), archive_entry_gid(e), entry_mtime(e),
                             name, err);
}

static int add_fixup(Extract *x, struct archive_entry *e, const char *name) {
        if (x->n_fixups == x->cap_fixups) {
                size_t cap = x->cap_fixups ? x->cap_fixups * 2 : 64;
                DirFixup *n = reallocarray(x->fixups, cap, sizeof(DirFixup));
                if (!n)
                        return -ENOMEM;
                x->fixups = n;
                x->cap_fixups = cap;
        }
        char *copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        x->fixups[x->n_fixups] = (DirFixup) {
                .name = copy,
                .index = x->n_fixups,
                .mode = entry_mode(x, e),
                .uid = archive_entry_uid(e),
                .gid = archive_entry_gid(e),
                .mtime = entry_mtime(e),
        };
        x->n_fixups++;
        return 0;
}

static int extract_dir(Extract *x, struct archive_entry *e, int parent_fd, const char *leaf, const char *name,
                       Error **err) {
        /* 0700 until the fixup: an unprivileged agent must still be able to
         * fill a directory that ends up read-only. */
        if (mkdirat(parent_fd, leaf, 0700) < 0) {
                if (errno != EEXIST)
                        return error_set_errno(err, errno, "archive entry '%s': mkdir", name);
                struct stat st;
                if (fstatat(parent_fd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return error_set_errno(err, errno, "archive entry '%s': stat", name);
                if (!S_ISDIR(st.st_mode)) {
                        int r = remove_existing(parent_fd, leaf, name, err);
                        if (r < 0)
                                return r;
                        if (mkdirat(parent_fd, leaf, 0700) < 0)
                                return error_set_errno(err, errno, "archive entry '%s': mkdir", name);
                }
        }
        if (add_fixup(x, e, name) < 0)
                return error_oom(err);
        return 0;
}

/* Metadata of a node that cannot be opened (symlink, device): through the
 * parent fd without following the final component. */
static int apply_meta_at(const Extract *x, struct archive_entry *e, int parent_fd, const char *leaf,
                         const char *name, Error **err) {
        if (want_chown(x) &&
            fchownat(parent_fd, leaf, archive_entry_uid(e), archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
                return error_set_errno(err, errno, "archive entry '%s': chown", name);
        /* Linux symlinks have no mode; without /proc (old glibc) nor
         * fchmodat2() the mode stays as created, minus the umask. */
        if (archive_entry_filetype(e) != AE_IFLNK &&
            fchmodat(parent_fd, leaf, entry_mode(x, e), AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno != EOPNOTSUPP && errno != ENOSYS)
                        return error_set_errno(err, errno, "archive entry '%s': chmod", name);
                log_debug("archive entry '%s': chmod not supported without following links, kept", name);
        }
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, entry_mtime(e)};
        if (ts[1].tv_nsec != UTIME_OMIT && utimensat(parent_fd, leaf, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return error_set_errno(err, errno, "archive entry '%s': set mtime", name);
        return 0;
}

static int extract_symlink(Extract *x, struct archive_entry *e, int parent_fd, const char *leaf, const char *name,
                           Error **err) {
        /* Stored verbatim: every later resolution is clamped to the root and
         * copy-in itself never follows it. */
        const char *target = entry_symlink(e);
        if (!target || !*target)
                return error_set(err, EINVAL, "archive entry '%s': symlink without a target", name);
        int r = remove_existing(parent_fd, leaf, name, err);
        if (r < 0)
                return r;
        if (symlinkat(target, parent_fd, leaf) < 0)
                return error_set_errno(err, errno, "archive entry '%s': create symlink", name);
        return apply_meta_at(x, e, parent_fd, leaf, name, err);
}

/* A fifo can be opened without side effects, so its metadata goes through an
 * fd and cannot be redirected by a swapped-in symlink. */
static int extract_fifo(Extract *x, struct archive_entry *e, int parent_fd, const char *leaf, const char *name,
                        Error **err) {
        int r = remove_existing(parent_fd, leaf, name, err);
        if (r < 0)
                return r;
        if (mknodat(parent_fd, leaf, S_IFIFO | 0600, 0) < 0)
                return error_set_errno(err, errno, "archive entry '%s': create fifo", name);
        _cleanup_close_ int fd = openat(parent_fd, leaf, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return error_set_errno(err, errno, "archive entry '%s': open fifo", name);
        if (!S_ISFIFO(st.st_mode))
                return error_set(err, EBUSY, "archive entry '%s': replaced while being created", name);
        return apply_meta_fd(x, fd, entry_mode(x, e), archive_entry_uid(e), archive_entry_gid(e), entry_mtime(e),
                             name, err);
}

/* Opening a device may have side effects (a tape rewinds), so its metadata
 * is applied by name. */
static int extract_device(Extract *x, struct archive_entry *e, int parent_fd, const char *leaf, const char *name,
                          Error **err) {
        int r = remove_existing(parent_fd, leaf, name, err);
        if (r < 0)
                return r;
        mode_t type = archive_entry_filetype(e) == AE_IFCHR ? S_IFCHR : S_IFBLK;
        if (mknodat(parent_fd, leaf, type | (entry_mode(x, e) & 0777), archive_entry_rdev(e)) < 0) {
                if (errno == EPERM && !x->privileged) {
                        log_debug("archive entry '%s': device node skipped (unprivileged)", name);
                        return 0;
                }
                return error_set_errno(err, errno, "archive entry '%s': create device node", name);
        }
        return apply_meta_at(x, e, parent_fd, leaf, name, err);
}

static int extract_hardlink(Extract *x, struct archive_entry *e, int parent_fd, const char *leaf, const char *name,
                            Error **err) {
        _cleanup_free_ char *target = NULL;
        _cleanup_free_ char *what = NULL;
        if (asprintf(&what, "archive entry '%s': hard link target", name) < 0)
                return error_oom(err);
        int r = normalize_name(entry_hardlink(e), what, &target, err);
        if (r < 0)
                return r;
        if (!*target)
                return error_set(err, EPERM, "archive entry '%s': hard link to the destination directory", name);
        if (streq(target, name)) /* some writers emit a file as a link to itself */
                return 0;

        _cleanup_close_ int target_parent = -1;
        const char *target_leaf;
        if ((r = open_parent(x->dest_fd, target, false, &target_parent, &target_leaf)) < 0)
                return error_set_errno(err, -r, "archive entry '%s': hard link target '%s'", name, target);
        if ((r = remove_existing(parent_fd, leaf, name, err)) < 0)
                return r;
        /* flags 0: a target that is a symlink is linked, not followed. */
        if (linkat(target_parent, target_leaf, parent_fd, leaf, 0) < 0)
                return error_set_errno(err, errno, "archive entry '%s': hard link to '%s'", name, target);
        return 0;
}

static int extract_entry(Extract *x, struct archive_entry *e, Error **err) {
        _cleanup_free_ char *name = NULL;
        int r = normalize_name(entry_pathname(e), "archive entry", &name, err);
        if (r < 0)
                return r;

        mode_t type = archive_entry_filetype(e);
        bool hardlink = entry_hardlink(e) != NULL;
        if (!*name) {
                /* "./": the destination itself, which exists; leave it alone
                 * rather than retouch e.g. the container's "/". */
                if (type == AE_IFDIR && !hardlink)
                        return 0;
                return error_set(err, EINVAL, "archive entry '%s': names the destination but is not a directory",
                                 entry_pathname(e));
        }

        _cleanup_close_ int parent_fd = -1;
        const char *leaf;
        if ((r = open_parent(x->dest_fd, name, true, &parent_fd, &leaf)) < 0) {
                if (r == -ENOTDIR)
                        return error_set(err, ENOTDIR,
                                         "archive entry '%s': a parent is a symlink or not a directory", name);
                return error_set_errno(err, -r, "archive entry '%s': open parent directory", name);
        }

        if (hardlink)
                return extract_hardlink(x, e, parent_fd, leaf, name, err);
        switch (type) {
        case AE_IFREG:
                return extract_file(x, e, parent_fd, leaf, name, err);
        case AE_IFDIR:
                return extract_dir(x, e, parent_fd, leaf, name, err);
        case AE_IFLNK:
                return extract_symlink(x, e, parent_fd, leaf, name, err);
        case AE_IFIFO:
                return extract_fifo(x, e, parent_fd, leaf, name, err);
        case AE_IFCHR:
        case AE_IFBLK:
                return extract_device(x, e, parent_fd, leaf, name, err);
        default:
                log_debug("archive entry '%s': unsupported type 0%o skipped", name, (unsigned) type);
                return 0;
        }
}

/* Children before parents (a longer name sorts after its prefix), and for one
 * name the archive's last entry last. */
static int fixup_cmp(const void *a, const void *b) {
        const DirFixup *x = a, *y = b;
        int c = strcmp(y->name, x->name);
        if (c != 0)
                return c;
        return x->index < y->index ? -1 : x->index > y->index;
}

/* A directory that a later entry replaced or removed is skipped. */
static int apply_fixups(Extract *x, Error **err) {
        if (x->n_fixups > 1)
                qsort(x->fixups, x->n_fixups, sizeof(DirFixup), fixup_cmp);
        for (size_t i = 0; i < x->n_fixups; i++) {
                const DirFixup *f = &x->fixups[i];
                _cleanup_close_ int parent_fd = -1, fd = -1;
                const char *leaf;
                int r = open_parent(x->dest_fd, f->name, false, &parent_fd, &leaf);
                if (r >= 0) {
                        fd = openat(parent_fd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        r = fd < 0 ? negative_errno() : 0;
                }
                if (r == -ENOENT || r == -ENOTDIR)
                        continue;
                if (r < 0)
                        return error_set_errno(err, -r, "archive entry '%s': open directory", f->name);
                if ((r = apply_meta_fd(x, fd, f->mode, f->uid, f->gid, f->mtime, f->name, err)) < 0)
                        return r;
        }
        return 0;
}

static int extract_all(Extract *x, CopyStats *stats, Error **err) {
        for (;;) {
                struct archive_entry *e;
                int r = archive_read_next_header(x->a, &e);
                if (r == ARCHIVE_EOF)
                        return 0;
                /* RETRY is a damaged header: tar would resync, but a damaged
                 * stream from the host is a failed copy. */
                if (r < ARCHIVE_WARN || r == ARCHIVE_RETRY)
                        return error_set(err, archive_code(x->a), "read archive after %llu entries: %s",
                                         (unsigned long long) stats->entries, archive_message(x->a));
                if (r == ARCHIVE_WARN)
                        log_debug("archive entry '%s': %s", entry_pathname(e) ?: "?", archive_message(x->a));
                if (stats->entries >= COPY_MAX_ENTRIES)
                        return error_set(err, E2BIG, "archive has more than %u entries", COPY_MAX_ENTRIES);
                stats->entries++;
                if ((r = extract_entry(x, e, err)) < 0)
                        return r;
        }
}

/* The input as libarchive sees it. Our own callback rather than
 * archive_read_open_fd() so that every byte taken from the fd is counted,
 * including what libarchive reads ahead past the end-of-archive marker. */
typedef struct Source {
        int fd;
        char *buf;
        uint64_t bytes;
} Source;

/* One block from the fd: its size, 0 at EOF, or a negative errno. */
static ssize_t source_fill(Source *src) {
        for (;;) {
                ssize_t n = read(src->fd, src->buf, COPY_BLOCK_SIZE);
                if (n >= 0) {
                        src->bytes += (uint64_t) n;
                        return n;
                }
                if (errno != EINTR)
                        return negative_errno();
        }
}

static la_ssize_t source_read(struct archive *a, void *userdata, const void **ret) {
        Source *src = userdata;
        ssize_t n = source_fill(src);
        if (n < 0) {
                archive_set_error(a, (int) -n, "read input: %s", strerror((int) -n));
                return -1;
        }
        *ret = src->buf;
        return n;
}

/* Reads what follows the end-of-archive marker (block padding) up to EOF, so
 * that the writer feeding the pipe sees a consumer until the end. */
static int drain(Source *src) {
        for (;;) {
                ssize_t n = source_fill(src);
                if (n <= 0)
                        return (int) n;
        }
}

static int extract_stream(Extract *x, Source *src, CopyStats *stats, Error **err) {
        if (archive_read_support_format_tar(x->a) != ARCHIVE_OK ||
            archive_read_support_filter_none(x->a) != ARCHIVE_OK ||
            archive_read_open(x->a, src, NULL, source_read, NULL) != ARCHIVE_OK)
                return error_set(err, archive_code(x->a), "read archive: %s", archive_message(x->a));
        int r = extract_all(x, stats, err);

        /* Even after a failure, so that extracted directories do not stay
         * 0700 (tar does the same); the first error is the one reported. */
        int q = apply_fixups(x, r < 0 ? NULL : err);
        if (r < 0 || q < 0)
                return r < 0 ? r : q;
        if ((r = drain(src)) < 0)
                return error_set_errno(err, -r, "read after the end of the archive");
        return 0;
}

int copy_in_extract(int root_fd, const char *path, int in_fd, bool preserve_owner, CopyStats *ret, Error **err) {
        CopyStats stats = {0};
        Extract x = {
                .dest_fd = -1,
                .preserve_owner = preserve_owner,
                .privileged = geteuid() == 0,
        };
        Source src = {.fd = in_fd};
        int r;

        x.dest_fd = root_mkdir_p(root_fd, path ? path : "");
        if (x.dest_fd < 0)
                r = error_set_errno(err, -x.dest_fd, "create destination");
        else if (!(x.a = archive_read_new()) || !(src.buf = malloc(COPY_BLOCK_SIZE)))
                r = error_oom(err);
        else
                r = extract_stream(&x, &src, &stats, err);

        if (x.a)
                archive_read_free(x.a);
        free(src.buf);
        stats.bytes = src.bytes;
        extract_done(&x);
        if (ret)
                *ret = stats;
        if (r < 0)
                error_prefix(err, "copy-in '%s'", display_path(path));
        return r;
}

/* ---- copy-out -------------------------------------------------------------- */

typedef struct LinkKey {
        dev_t dev;
        ino_t ino;
        char *name; /* the entry that carries the data */
} LinkKey;

/* The output: our own callback so that the count includes libarchive's final
 * block padding, which archive_filter_bytes() leaves out. Once closed, it
 * refuses what libarchive still flushes when freed (the end-of-archive
 * marker): a failed copy must not look like a complete archive. */
typedef struct Sink {
        int fd;
        bool closed;
        uint64_t bytes;
} Sink;

static la_ssize_t sink_write(struct archive *a, void *userdata, const void *buf, size_t size) {
        Sink *sink = userdata;
        if (sink->closed) {
                archive_set_error(a, EPIPE, "output already failed");
                return -1;
        }
        int r = write_all(sink->fd, buf, size);
        if (r < 0) {
                archive_set_error(a, -r, "write output: %s", strerror(-r));
                return -1;
        }
        sink->bytes += size;
        return (la_ssize_t) size;
}

typedef struct Writer {
        struct archive *a;
        void *links; /* tsearch() tree of LinkKey */
        char *buf;
        uint64_t entries;
} Writer;

static int link_key_cmp(const void *a, const void *b) {
        const LinkKey *x = a, *y = b;
        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        if (x->ino != y->ino)
                return x->ino < y->ino ? -1 : 1;
        return 0;
}

static void link_key_free(void *p) {
        LinkKey *k = p;
        free(k->name);
        free(k);
}

/* Reads a symlink's target; at = "" reads the symlink fd itself (O_PATH). */
static int read_link_at(int dir_fd, const char *at, char **ret) {
        for (size_t size = 256; size <= LINK_TARGET_MAX; size *= 2) {
                _cleanup_free_ char *buf = malloc(size);
                if (!buf)
                        return -ENOMEM;
                ssize_t n = readlinkat(dir_fd, at, buf, size);
                if (n < 0)
                        return negative_errno();
                if ((size_t) n < size) {
                        buf[n] = 0;
                        *ret = TAKE_PTR(buf);
                        return 0;
                }
        }
        return -ENAMETOOLONG;
}

static int write_header(Writer *w, const char *name, const struct stat *st, const char *symlink_target,
                        const char *hardlink_target, Error **err) {
        _cleanup_archive_entry_ struct archive_entry *e = archive_entry_new();
        if (!e)
                return error_oom(err);
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, st->st_mode & S_IFMT);
        archive_entry_set_perm(e, st->st_mode & 07777);
        archive_entry_set_uid(e, st->st_uid);
        archive_entry_set_gid(e, st->st_gid);
        archive_entry_set_mtime(e, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
        archive_entry_set_size(e, 0);
        if (hardlink_target)
                archive_entry_set_hardlink(e, hardlink_target);
        else if (S_ISREG(st->st_mode))
                archive_entry_set_size(e, st->st_size);
        else if (S_ISLNK(st->st_mode))
                archive_entry_set_symlink(e, symlink_target);
        else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
                archive_entry_set_rdev(e, st->st_rdev);

        int r = archive_write_header(w->a, e);
        if (r < ARCHIVE_WARN)
                return error_set(err, archive_code(w->a), "'%s': write header: %s", name, archive_message(w->a));
        if (r == ARCHIVE_WARN)
                log_debug("'%s': %s", name, archive_message(w->a));
        w->entries++;
        return 0;
}

/* Exactly st_size bytes are announced; a file that grows is cut, one that
 * shrinks is padded with zeros by libarchive when the entry is finished. */
static int write_file_data(Writer *w, int fd, off_t size, const char *name, Error **err) {
        off_t done = 0;
        while (done < size) {
                size_t want = (size_t) MIN((off_t) COPY_BLOCK_SIZE, size - done);
                ssize_t n = read(fd, w->buf, want);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return error_set_errno(err, errno, "'%s': read", name);
                if (n == 0) {
                        log_debug("'%s': shrank while being archived, padded with zeros", name);
                        break;
                }
                if (archive_write_data(w->a, w->buf, (size_t) n) != n)
                        return error_set(err, archive_code(w->a), "'%s': write archive: %s", name,
                                         archive_message(w->a));
                done += n;
        }
        return 0;
}

/* Returns 1 and writes a hard link entry when (dev, ino) was archived
 * before, else remembers name as its first occurrence and returns 0. */
static int write_if_hardlink(Writer *w, const char *name, const struct stat *st, Error **err) {
        if (S_ISDIR(st->st_mode) || st->st_nlink < 2)
                return 0;
        LinkKey key = {.dev = st->st_dev, .ino = st->st_ino};
        LinkKey **found = tfind(&key, &w->links, link_key_cmp);
        if (found) {
                int r = write_header(w, name, st, NULL, (*found)->name, err);
                return r < 0 ? r : 1;
        }
        LinkKey *k = calloc(1, sizeof *k);
        if (!k || !(k->name = strdup(name))) {
                free(k);
                return error_oom(err);
        }
        k->dev = st->st_dev;
        k->ino = st->st_ino;
        if (!tsearch(k, &w->links, link_key_cmp)) {
                link_key_free(k);
                return error_oom(err);
        }
        return 0;
}

static int write_regular(Writer *w, int fd, const char *name, Error **err) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return error_set_errno(err, errno, "'%s': stat", name);
        if (!S_ISREG(st.st_mode))
                return error_set(err, EBUSY, "'%s': replaced while being archived", name);
        int r = write_if_hardlink(w, name, &st, err);
        if (r != 0)
                return r < 0 ? r : 0;
        if ((r = write_header(w, name, &st, NULL, NULL, err)) < 0)
                return r;
        return write_file_data(w, fd, st.st_size, name, err);
}

/* A symlink, fifo or device: only a header. */
static int write_special(Writer *w, const char *name, const struct stat *st, const char *link_target,
                         Error **err) {
        if (S_ISSOCK(st->st_mode)) {
                log_debug("'%s': socket skipped", name);
                return 0;
        }
        int r = write_if_hardlink(w, name, st, err);
        if (r != 0)
                return r < 0 ? r : 0;
        return write_header(w, name, st, link_target, NULL, err);
}

static int write_dir(Writer *w, int dir_fd, const char *name, Error **err);

/* One directory entry, reached from its parent fd without following it. */
static int write_child(Writer *w, int parent_fd, const char *leaf, const char *name, Error **err) {
        struct stat st;
        if (fstatat(parent_fd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT) /* removed meanwhile, as if it never was */
                        return 0;
                return error_set_errno(err, errno, "'%s': stat", name);
        }
        if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) {
                int flags = S_ISDIR(st.st_mode) ? O_RDONLY | O_DIRECTORY : O_RDONLY | O_NONBLOCK | O_NOCTTY;
                _cleanup_close_ int fd = openat(parent_fd, leaf, flags | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return error_set_errno(err, errno, "'%s': open", name);
                if (S_ISDIR(st.st_mode))
                        return write_dir(w, TAKE_FD(fd), name, err);
                return write_regular(w, fd, name, err);
        }
        _cleanup_free_ char *target = NULL;
        if (S_ISLNK(st.st_mode)) {
                int r = read_link_at(parent_fd, leaf, &target);
                if (r < 0)
                        return error_set_errno(err, -r, "'%s': readlink", name);
        }
        return write_special(w, name, &st, target, err);
}

/* Takes ownership of dir_fd (O_RDONLY|O_DIRECTORY). */
static int write_dir(Writer *w, int dir_fd, const char *name, Error **err) {
        struct stat st;
        if (fstat(dir_fd, &st) < 0) {
                int r = error_set_errno(err, errno, "'%s': stat", name);
                safe_close(dir_fd);
                return r;
        }
        _cleanup_closedir_ DIR *d = fdopendir(dir_fd);
        if (!d) {
                int r = error_set_errno(err, errno, "'%s': opendir", name);
                safe_close(dir_fd);
                return r;
        }
        int r = write_header(w, name, &st, NULL, NULL, err);
        if (r < 0)
                return r;

        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                return error_set_errno(err, errno, "'%s': readdir", name);
                        return 0;
                }
                if (is_dot_or_dotdot(de->d_name))
                        continue;
                _cleanup_free_ char *child = NULL;
                if (asprintf(&child, "%s/%s", name, de->d_name) < 0)
                        return error_oom(err);
                if ((r = write_child(w, dirfd(d), de->d_name, child, err)) < 0)
                        return r;
        }
}

/* The top-level path: resolved once by root_open(), not following its last
 * component, so copying out a symlink archives the symlink. */
static int write_top(Writer *w, int root_fd, const char *path, const char *name, Error **err) {
        _cleanup_close_ int fd = root_open(root_fd, path, O_PATH | O_NOFOLLOW, 0);
        struct stat st;
        if (fd < 0)
                return error_set_errno(err, -fd, "open");
        if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
                return error_set_errno(err, errno, "stat");

        if (S_ISDIR(st.st_mode)) {
                int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0)
                        return error_set_errno(err, errno, "open");
                return write_dir(w, dfd, name, err);
        }
        if (S_ISREG(st.st_mode)) {
                /* An O_PATH fd cannot be reopened without /proc: resolve
                 * again and make sure it is still the same file. */
                _cleanup_close_ int rfd = root_open(root_fd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0);
                struct stat rst;
                if (rfd < 0)
                        return error_set_errno(err, -rfd, "open");
                if (fstat(rfd, &rst) < 0)
                        return error_set_errno(err, errno, "stat");
                if (rst.st_dev != st.st_dev || rst.st_ino != st.st_ino)
                        return error_set(err, EBUSY, "replaced while being archived");
                return write_regular(w, rfd, name, err);
        }
        _cleanup_free_ char *target = NULL;
        if (S_ISLNK(st.st_mode)) {
                int r = read_link_at(fd, "", &target);
                if (r < 0)
                        return error_set_errno(err, -r, "readlink");
        }
        return write_special(w, name, &st, target, err);
}

static int archive_tree(struct archive *a, int root_fd, const char *path, Sink *sink, uint64_t *entries,
                        Error **err) {
        _cleanup_free_ char *name = NULL;
        _cleanup_free_ char *buf = malloc(COPY_BLOCK_SIZE);
        if (!buf || archive_base_name(path, &name) < 0)
                return error_oom(err);

        if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
            archive_write_set_bytes_per_block(a, COPY_OUT_BLOCK_SIZE) != ARCHIVE_OK ||
            archive_write_open(a, sink, NULL, sink_write, NULL) != ARCHIVE_OK)
                return error_set(err, archive_code(a), "write archive: %s", archive_message(a));

        Writer w = {.a = a, .buf = buf};
        int r = write_top(&w, root_fd, path, name, err);
        tdestroy(w.links, link_key_free);
        *entries = w.entries;
        if (r < 0)
                return r;
        if (archive_write_close(a) != ARCHIVE_OK)
                return error_set(err, archive_code(a), "write archive: %s", archive_message(a));
        return 0;
}

int copy_out_archive(int root_fd, const char *path, int out_fd, CopyStats *ret, Error **err) {
        CopyStats stats = {0};
        Sink sink = {.fd = out_fd};
        _cleanup_archive_write_ struct archive *a = archive_write_new();
        int r;

        if (!a)
                r = error_oom(err);
        else
                r = archive_tree(a, root_fd, path ? path : "", &sink, &stats.entries, err);
        sink.closed = true;
        stats.bytes = sink.bytes;
        if (ret)
                *ret = stats;
        if (r < 0)
                error_prefix(err, "copy-out '%s'", display_path(path));
        return r;
}

/* ---- stat and remove --------------------------------------------------------- */

int fs_stat(int root_fd, const char *path, struct stat *ret_st, char **ret_link_target, Error **err) {
        _cleanup_close_ int fd = root_open(root_fd, path, O_PATH | O_NOFOLLOW, 0);
        struct stat st;
        _cleanup_free_ char *target = NULL;

        if (fd < 0)
                return error_set_errno(err, -fd, "stat '%s'", display_path(path));
        if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
                return error_set_errno(err, errno, "stat '%s'", display_path(path));
        if (S_ISLNK(st.st_mode) && ret_link_target) {
                int r = read_link_at(fd, "", &target);
                if (r < 0)
                        return error_set_errno(err, -r, "stat '%s': readlink", display_path(path));
        }
        if (ret_st)
                *ret_st = st;
        if (ret_link_target)
                *ret_link_target = TAKE_PTR(target);
        return 0;
}

/* Empties the directory dir_fd (taken over). Never follows a symlink
 * (unlinkat removes the link) and never descends into another file system:
 * a mount inside the root (a volume, /dev) is not ours to wipe. */
static int remove_children(int dir_fd, dev_t dev, const char *path, Error **err) {
        _cleanup_closedir_ DIR *d = fdopendir(dir_fd);
        if (!d) {
                int r = error_set_errno(err, errno, "remove '%s': opendir", path);
                safe_close(dir_fd);
                return r;
        }
        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de)
                        return errno ? error_set_errno(err, errno, "remove '%s': readdir", path) : 0;
                if (is_dot_or_dotdot(de->d_name))
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) >= 0 || errno == ENOENT)
                        continue;
                if (errno != EISDIR)
                        return error_set_errno(err, errno, "remove '%s/%s'", path, de->d_name);

                int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                struct stat st;
                if (fd < 0 || fstat(fd, &st) < 0) {
                        int r = error_set_errno(err, errno, "remove '%s/%s': open", path, de->d_name);
                        safe_close(fd);
                        return r;
                }
                if (st.st_dev != dev) {
                        safe_close(fd);
                        return error_set(err, EBUSY, "remove '%s/%s': is a mount point", path, de->d_name);
                }
                _cleanup_free_ char *child = NULL;
                if (asprintf(&child, "%s/%s", path, de->d_name) < 0) {
                        safe_close(fd);
                        return error_oom(err);
                }
                int r = remove_children(fd, dev, child, err);
                if (r < 0)
                        return r;
                if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                        return error_set_errno(err, errno, "remove '%s'", child);
        }
}

/* Splits path into its parent ("" for the root) and last component. */
static int split_path(const char *path, char **ret_parent, char **ret_leaf) {
        size_t len = strlen(path);
        while (len > 0 && path[len - 1] == '/')
                len--;
        size_t start = len;
        while (start > 0 && path[start - 1] != '/')
                start--;
        *ret_parent = strndup(path, start);
        *ret_leaf = strndup(path + start, len - start);
        if (!*ret_parent || !*ret_leaf) {
                free(*ret_parent);
                free(*ret_leaf);
                return -ENOMEM;
        }
        return 0;
}

static int check_not_root(int root_fd, const char *path, Error **err) {
        struct stat root_st, st;
        _cleanup_close_ int fd = root_open(root_fd, path, O_PATH | O_NOFOLLOW, 0);
        if (fd < 0)
                return error_set_errno(err, -fd, "remove '%s'", display_path(path));
        if (fstat(root_fd, &root_st) < 0 || fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
                return error_set_errno(err, errno, "remove '%s': stat", display_path(path));
        if (st.st_dev == root_st.st_dev && st.st_ino == root_st.st_ino)
                return error_set(err, EBUSY, "remove '%s': refusing to remove the container root",
                                 display_path(path));
        return 0;
}

int fs_remove(int root_fd, const char *path, bool recursive, Error **err) {
        if (!path || !*path || strspn(path, "/") == strlen(path))
                return error_set(err, EBUSY, "remove '%s': refusing to remove the container root", display_path(path));
        int r = check_not_root(root_fd, path, err);
        if (r < 0)
                return r;

        _cleanup_free_ char *parent = NULL, *leaf = NULL;
        if (split_path(path, &parent, &leaf) < 0)
                return error_oom(err);
        if (is_dot_or_dotdot(leaf))
                return error_set(err, EINVAL, "remove '%s': refusing to remove '.' or '..'", path);

        _cleanup_close_ int parent_fd = root_open(root_fd, parent, O_PATH | O_DIRECTORY, 0);
        struct stat st, parent_st;
        if (parent_fd < 0)
                return error_set_errno(err, -parent_fd, "remove '%s': open parent directory", path);
        if (fstatat(parent_fd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0 || fstat(parent_fd, &parent_st) < 0)
                return error_set_errno(err, errno, "remove '%s'", path);

        if (S_ISDIR(st.st_mode) && recursive) {
                if (st.st_dev != parent_st.st_dev)
                        return error_set(err, EBUSY, "remove '%s': is a mount point", path);
                int fd = openat(parent_fd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return error_set_errno(err, errno, "remove '%s': open", path);
                if ((r = remove_children(fd, st.st_dev, path, err)) < 0)
                        return r;
        }
        if (unlinkat(parent_fd, leaf, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
                return error_set_errno(err, errno, "remove '%s'", path);
        return 0;
}
