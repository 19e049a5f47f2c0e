/* plctl-cp.c: "plctl cp SRC DST", files between this host and a running
 * container, through the archive calls (docs/api.md): GET
 * /containers/{id}/archive?path=P answers P as a tar archive, PUT with a
 * tar body extracts under a directory. One side is "ID|NAME:/path"; the
 * other a local path, or "-" for a tar archive on stdin or stdout.
 *
 * As docker cp: copying to an existing directory puts the source inside it
 * under its own name; copying to a path that does not exist (its parent
 * does) gives the copy that name. Local trees are packed and unpacked with
 * libarchive, spooled through an unlinked temporary file; unpacking refuses
 * absolute names, ".." and paths through symlinks. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/archive/archive-util.h"
#include "common/json/json-util.h"
#include "plctl-internal.h"

typedef struct Side {
        char *ref;  /* the container, NULL for the local side */
        char *path; /* inside the container, or local ("-": stdin/stdout) */
} Side;

/* "REF:/path" when REF holds no '/' and the path is absolute. */
static int side_parse(const char *arg, Side *s) {
        const char *colon = strchr(arg, ':');
        if (colon && colon != arg && colon[1] == '/' && !memchr(arg, '/', (size_t) (colon - arg))) {
                s->ref = strndup(arg, (size_t) (colon - arg));
                s->path = strdup(colon + 1);
        } else
                s->path = strdup(arg);
        return s->path && (!colon || s->ref || colon[1] != '/') ? 0 : -ENOMEM;
}

static int spool(int *ret, Error **err) {
        int fd = open("/var/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0)
                fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0)
                return error_set_errno(err, errno, "create a temporary file");
        *ret = fd;
        return 0;
}

/* The last component of a path ("/a/b/" gives "b"), into out. */
static void base_name(const char *path, char *out, size_t size) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s", path);
        size_t n = strlen(tmp);
        while (n > 1 && tmp[n - 1] == '/')
                tmp[--n] = 0;
        snprintf(out, size, "%s", basename(tmp));
}

static void dir_name(const char *path, char *out, size_t size) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s", path);
        size_t n = strlen(tmp);
        while (n > 1 && tmp[n - 1] == '/')
                tmp[--n] = 0;
        snprintf(out, size, "%s", dirname(tmp));
}

/* --- local tree -> tar --- */

/* Packs the local path into fd, its top entry named name. */
static int pack_local(const char *path, const char *name, int fd, Error **err) {
        _cleanup_archive_read_ struct archive *disk = archive_read_disk_new();
        _cleanup_archive_write_ struct archive *w = archive_write_new();
        if (!disk || !w)
                return error_oom(err);
        archive_read_disk_set_symlink_physical(disk);
        archive_read_disk_set_standard_lookup(disk);
        archive_write_set_format_pax_restricted(w);
        if (archive_write_open_fd(w, fd) != ARCHIVE_OK || archive_read_disk_open(disk, path) != ARCHIVE_OK)
                return error_set(err, archive_errno_or(disk, EIO), "%s: %s", path, archive_message(disk));
        size_t prefix = strlen(path);
        for (;;) {
                _cleanup_archive_entry_ struct archive_entry *entry = archive_entry_new();
                if (!entry)
                        return error_oom(err);
                int r = archive_read_next_header2(disk, entry);
                if (r == ARCHIVE_EOF)
                        break;
                if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
                        return error_set(err, archive_errno_or(disk, EIO), "%s: %s", path, archive_message(disk));
                archive_read_disk_descend(disk);
                const char *src = archive_entry_sourcepath(entry);
                char renamed[8192];
                snprintf(renamed, sizeof renamed, "%s%s", name, src && strlen(src) >= prefix ? src + prefix : "");
                archive_entry_copy_pathname(entry, renamed);
                if (archive_write_header(w, entry) != ARCHIVE_OK)
                        return error_set(err, archive_errno_or(w, EIO), "%s: %s", renamed, archive_message(w));
                if (archive_entry_filetype(entry) != AE_IFREG || archive_entry_size(entry) == 0)
                        continue;
                _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                char buf[64 * 1024];
                ssize_t n;
                if (in < 0)
                        return error_set_errno(err, errno, "open %s", src);
                while ((n = read(in, buf, sizeof buf)) > 0)
                        if (archive_write_data(w, buf, (size_t) n) < 0)
                                return error_set(err, archive_errno_or(w, EIO), "%s: %s", renamed, archive_message(w));
                if (n < 0)
                        return error_set_errno(err, errno, "read %s", src);
        }
        if (archive_write_close(w) != ARCHIVE_OK)
                return error_set(err, archive_errno_or(w, EIO), "%s", archive_message(w));
        return 0;
}

/* --- tar -> local tree --- */

/* name with its first component replaced by top (when top is given). */
static void rename_top(const char *name, const char *first, const char *top, char *out, size_t size) {
        size_t n = strlen(first);
        if (top && strncmp(name, first, n) == 0 && (name[n] == 0 || name[n] == '/'))
                snprintf(out, size, "%s%s", top, name + n);
        else
                snprintf(out, size, "%s", name);
}

/* Unpacks fd (from its start) into dir; with top, the archive's first
 * component is renamed to it. */
static int unpack_local(int fd, const char *dir, const char *top, Error **err) {
        _cleanup_archive_read_ struct archive *rd = archive_read_new();
        _cleanup_archive_write_ struct archive *disk = archive_write_disk_new();
        if (!rd || !disk)
                return error_oom(err);
        archive_read_support_format_tar(rd);
        archive_write_disk_set_options(disk, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                                     ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                     ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
        archive_write_disk_set_standard_lookup(disk);
        if (lseek(fd, 0, SEEK_SET) < 0 || archive_read_open_fd(rd, fd, 64 * 1024) != ARCHIVE_OK)
                return error_set(err, archive_errno_or(rd, EIO), "the archive: %s", archive_message(rd));
        _cleanup_close_ int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cwd < 0 || chdir(dir) < 0)
                return error_set_errno(err, errno, "enter %s", dir);
        char first[4096] = "";
        int r = 0;
        struct archive_entry *entry;
        for (;;) {
                int k = archive_read_next_header(rd, &entry);
                if (k == ARCHIVE_EOF)
                        break;
                if (k != ARCHIVE_OK && k != ARCHIVE_WARN) {
                        r = error_set(err, archive_errno_or(rd, EIO), "the archive: %s", archive_message(rd));
                        break;
                }
                char name[8192];
                const char *path = entry_pathname(entry);
                if (!first[0] && path)
                        snprintf(first, sizeof first, "%.*s", (int) strcspn(path, "/"), path);
                rename_top(path ? path : "", first, top, name, sizeof name);
                archive_entry_copy_pathname(entry, name);
                const char *link = entry_hardlink(entry);
                if (link) {
                        rename_top(link, first, top, name, sizeof name);
                        archive_entry_copy_hardlink(entry, name);
                }
                if (archive_write_header(disk, entry) != ARCHIVE_OK) {
                        r = error_set(err, archive_errno_or(disk, EIO), "%s: %s", entry_pathname(entry),
                                      archive_message(disk));
                        break;
                }
                const void *buf;
                size_t size;
                la_int64_t off;
                while ((k = archive_read_data_block(rd, &buf, &size, &off)) == ARCHIVE_OK)
                        if (archive_write_data_block(disk, buf, size, off) != ARCHIVE_OK) {
                                k = ARCHIVE_FATAL;
                                break;
                        }
                if (k != ARCHIVE_EOF || archive_write_finish_entry(disk) != ARCHIVE_OK) {
                        r = error_set(err, archive_errno_or(disk, EIO), "%s: %s", entry_pathname(entry),
                                      archive_message(disk));
                        break;
                }
        }
        if (fchdir(cwd) < 0 && r >= 0)
                r = error_set_errno(err, errno, "return to the working directory");
        return r;
}

/* --- the two directions --- */

/* True when the container's path is a directory; -ENOENT when missing. */
static int container_is_dir(PlctlClient *c, const Side *s, Error **err) {
        _cleanup_free_ char *base = plctl_path("/containers/%s/stat", s->ref), *p = plctl_escape(s->path),
                            *path = NULL;
        _cleanup_json_ json_t *st = NULL;
        if (!base || !p || asprintf(&path, "%s?path=%s", base, p) < 0)
                return error_oom(err);
        int r = plctl_call(c, "GET", path, NULL, &st, err);
        if (r < 0)
                return r;
        return S_ISDIR((mode_t) json_integer_value(json_object_get(st, "mode")));
}

static int copy_in(PlctlClient *c, const Side *src, const Side *dst, Error **err) {
        char dir[4096], name[4096];
        _cleanup_error_ Error *stat_err = NULL;
        int r = container_is_dir(c, dst, &stat_err);
        if (r < 0 && r != -ENOENT)
                return error_set(err, stat_err->code, "%s", error_text(stat_err));
        bool into = r > 0 || strcmp(src->path, "-") == 0;
        snprintf(dir, sizeof dir, "%s", dst->path);
        if (!into) {
                dir_name(dst->path, dir, sizeof dir);
                base_name(dst->path, name, sizeof name);
        } else
                base_name(src->path, name, sizeof name);

        _cleanup_close_ int tmp = -1;
        int body = STDIN_FILENO;
        if (strcmp(src->path, "-") != 0) {
                if ((r = spool(&tmp, err)) < 0 || (r = pack_local(src->path, name, tmp, err)) < 0)
                        return r;
                if (lseek(tmp, 0, SEEK_SET) < 0)
                        return error_set_errno(err, errno, "rewind the archive");
                body = tmp;
        }
        _cleanup_free_ char *base = plctl_path("/containers/%s/archive", dst->ref), *d = plctl_escape(dir), *path = NULL;
        if (!base || !d || asprintf(&path, "%s?path=%s", base, d) < 0)
                return error_oom(err);
        return MIN(plctl_upload(c, "PUT", path, body, NULL, err), 0);
}

static int copy_out(PlctlClient *c, const Side *src, const Side *dst, Error **err) {
        _cleanup_free_ char *base = plctl_path("/containers/%s/archive", src->ref), *p = plctl_escape(src->path),
                            *path = NULL;
        if (!base || !p || asprintf(&path, "%s?path=%s", base, p) < 0)
                return error_oom(err);
        if (strcmp(dst->path, "-") == 0) {
                if (isatty(STDOUT_FILENO))
                        return error_set(err, EINVAL, "refusing to write a tar archive to a terminal");
                return MIN(plctl_download(c, path, STDOUT_FILENO, err), 0);
        }
        _cleanup_close_ int tmp = -1;
        int r = spool(&tmp, err);
        if (r < 0 || (r = plctl_download(c, path, tmp, err)) < 0)
                return r;
        struct stat st;
        char dir[4096], top[4096];
        if (stat(dst->path, &st) == 0 && S_ISDIR(st.st_mode))
                return unpack_local(tmp, dst->path, NULL, err);
        dir_name(dst->path, dir, sizeof dir);
        base_name(dst->path, top, sizeof top);
        return unpack_local(tmp, dir, top, err);
}

int plctl_verb_cp(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        static const struct option options[] = {PLCTL_COMMON_OPTIONS, {}};
        int opt, r;
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                if ((r = plctl_common_option(p, opt, "cp", argv)) >= 0)
                        return r;
        if (argc - optind != 2)
                return plctl_usage("cp: want SRC DST");
        Side src = {0}, dst = {0};
        _cleanup_error_ Error *e = NULL;
        if (side_parse(argv[optind], &src) < 0 || side_parse(argv[optind + 1], &dst) < 0)
                return error_oom(&e), plctl_fail(e);
        if (!src.ref == !dst.ref) {
                free(src.ref), free(src.path), free(dst.ref), free(dst.path);
                return plctl_usage("cp: exactly one side is a container's ID|NAME:/path");
        }
        PlctlClient *c;
        r = plctl_connect(p, &c, &e);
        if (r >= 0)
                r = src.ref ? copy_out(c, &src, &dst, &e) : copy_in(c, &src, &dst, &e);
        if (r >= 0 && p->json && strcmp(dst.path, "-") != 0) {
                _cleanup_json_ json_t *out = json_pack("{s:s, s:s}", "source", argv[optind], "destination", argv[optind + 1]);
                plctl_print_json(out);
        }
        free(src.ref), free(src.path), free(dst.ref), free(dst.path);
        return r < 0 ? plctl_fail(e) : 0;
}
