/* initramfs.c: the content-addressed guest initramfs (see initramfs.h).
 *
 * Every input is read into memory once, so the bytes hashed are the bytes
 * archived even if a file changes meanwhile. The hash names the output; when
 * that file exists the build is over. Otherwise the entries (fixed directories,
 * /init, the modules, the order file) are sorted by name and written by
 * libarchive as newc cpio through its gzip filter into a temporary file beside
 * the target, which is fsync'd and renamed into place. */
#include "images/boot/initramfs.h"
#include "images/oci/digest.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/archive/archive-util.h"
#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/base/macro.h"
#include "images/boot/kernel-modules.h"

const char *const initramfs_default_modules[] = {
        "virtio_pci", "virtio_blk",   "virtio_console", "virtio_rng", "vmw_vsock_virtio_transport",
        "virtio_net", "virtiofs",     "virtio_balloon", NULL,
};

#define DIGEST_HEX_LEN 64

typedef struct Blob {
        char *data;
        size_t size;
} Blob;

typedef struct Inputs {
        Blob agent;
        char **module_paths; /* relative to the modules directory, load order */
        size_t n_modules;
        Blob *modules;       /* contents, same order */
        char **entry_names;  /* "lib/modules/<file name>", same order */
        char *order;         /* the order file */
} Inputs;

typedef struct Entry {
        const char *name; /* inside the archive, without a leading '/' */
        mode_t mode;      /* file type and permissions */
        const void *data; /* regular files only */
        size_t size;
} Entry;

static const Entry skeleton[] = {
        {"dev", S_IFDIR | 0755, NULL, 0},  {"lib", S_IFDIR | 0755, NULL, 0},
        {"lib/modules", S_IFDIR | 0755, NULL, 0}, {"mnt", S_IFDIR | 0755, NULL, 0},
        {"mnt/root", S_IFDIR | 0755, NULL, 0},    {"proc", S_IFDIR | 0755, NULL, 0},
        {"run", S_IFDIR | 0755, NULL, 0},  {"sys", S_IFDIR | 0755, NULL, 0},
        {"tmp", S_IFDIR | 01777, NULL, 0},
};

static void inputs_done(Inputs *in) {
        free(in->agent.data);
        for (size_t i = 0; i < in->n_modules; i++) {
                free(in->modules ? in->modules[i].data : NULL);
                free(in->entry_names ? in->entry_names[i] : NULL);
        }
        free(in->modules);
        free(in->entry_names);
        free(in->order);
        kernel_modules_free(in->module_paths);
}

/* Reads the regular file at path (at most max bytes) into b. */
static int load_file(const char *path, size_t max, Blob *b, Error **err) {
        int r = read_file_bounded(path, max, &b->data, &b->size);
        if (r == -EINVAL)
                return error_set(err, EINVAL, "%s is not a regular file", path);
        if (r == -EFBIG)
                return error_set(err, EFBIG, "%s is larger than %zu bytes", path, max);
        if (r < 0)
                return error_set_errno(err, -r, "read %s", path);
        return 0;
}

/* Reads every module of in->module_paths and derives its archive name and
 * the order file. */
static int load_modules(const char *modules_dir, Inputs *in, Error **err) {
        in->modules = calloc(in->n_modules + 1, sizeof(Blob));
        in->entry_names = calloc(in->n_modules + 1, sizeof(char *));
        size_t order_len = 0;
        if (!in->modules || !in->entry_names)
                return error_oom(err);
        for (size_t i = 0; i < in->n_modules; i++) {
                const char *rel = in->module_paths[i], *base = strrchr(rel, '/');
                base = base ? base + 1 : rel;
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s/%s", modules_dir, rel) < 0 ||
                    asprintf(&in->entry_names[i], "lib/modules/%s", base) < 0)
                        return error_oom(err);
                int r = load_file(path, INITRAMFS_MAX_MODULE, &in->modules[i], err);
                if (r < 0)
                        return r;
                order_len += strlen(base) + 1;
        }
        in->order = malloc(order_len + 1);
        if (!in->order)
                return error_oom(err);
        char *o = in->order;
        for (size_t i = 0; i < in->n_modules; i++)
                o = stpcpy(stpcpy(o, in->entry_names[i] + strlen("lib/modules/")), "\n");
        *o = 0;
        return 0;
}

static int inputs_load(const InitramfsSpec *spec, Inputs *in, Error **err) {
        int r = load_file(spec->agent_path, INITRAMFS_MAX_AGENT, &in->agent, err);
        if (r < 0)
                return error_prefix(err, "initramfs agent");
        if (in->agent.size == 0)
                return error_set(err, EINVAL, "initramfs agent %s is empty", spec->agent_path);
        if (spec->modules && spec->modules[0]) {
                if (!spec->modules_dir)
                        return error_set(err, EINVAL, "initramfs: modules asked for without a modules directory");
                r = kernel_modules_resolve(spec->modules_dir, spec->modules, &in->module_paths, &in->n_modules,
                                           err);
                if (r < 0)
                        return r;
                if (in->n_modules > INITRAMFS_MAX_MODULES)
                        return error_set(err, EFBIG, "initramfs: %zu modules, more than %u", in->n_modules,
                                         INITRAMFS_MAX_MODULES);
        }
        return load_modules(spec->modules_dir, in, err);
}

static int digest_update_blob(Digest *d, const char *tag, const char *path, const Blob *b) {
        uint8_t size[8];
        for (int i = 0; i < 8; i++)
                size[i] = (uint8_t) ((uint64_t) b->size >> (8 * i));
        int r = digest_update(d, tag, strlen(tag) + 1);
        if (r >= 0)
                r = digest_update(d, path, strlen(path) + 1);
        if (r >= 0)
                r = digest_update(d, size, sizeof size);
        if (r >= 0)
                r = digest_update(d, b->data, b->size);
        return r;
}

/* SHA-256 over the format version, the agent and each module (path, size,
 * bytes), as lowercase hex in hex[DIGEST_HEX_LEN + 1]. */
static int inputs_digest(const Inputs *in, char *hex, Error **err) {
        _cleanup_(digest_freep) Digest *d = NULL;
        _cleanup_free_ char *full = NULL;
        char version[64];
        snprintf(version, sizeof version, "portlayer-initramfs %d", INITRAMFS_FORMAT_VERSION);
        int r = digest_new(&d);
        if (r >= 0)
                r = digest_update(d, version, strlen(version) + 1);
        if (r >= 0)
                r = digest_update_blob(d, "agent", "", &in->agent);
        for (size_t i = 0; r >= 0 && i < in->n_modules; i++)
                r = digest_update_blob(d, "module", in->module_paths[i], &in->modules[i]);
        if (r >= 0)
                r = digest_final_hex(d, &full); /* "sha256:<hex>" */
        if (r < 0 || strlen(full) != strlen("sha256:") + DIGEST_HEX_LEN)
                return error_set(err, EIO, "initramfs: computing SHA-256 failed");
        memcpy(hex, full + strlen("sha256:"), DIGEST_HEX_LEN + 1);
        return 0;
}

static int entry_compare(const void *a, const void *b) {
        return strcmp(((const Entry *) a)->name, ((const Entry *) b)->name);
}

/* Fills entries (room for ELEMENTSOF(skeleton) + 2 + n_modules) sorted by
 * name; -EEXIST when two modules share a file name. */
static int entries_collect(const Inputs *in, Entry *entries, size_t *ret_n, Error **err) {
        size_t n = 0;
        for (size_t i = 0; i < ELEMENTSOF(skeleton); i++)
                entries[n++] = skeleton[i];
        entries[n++] = (Entry){"init", S_IFREG | 0755, in->agent.data, in->agent.size};
        entries[n++] = (Entry){"lib/modules/order", S_IFREG | 0644, in->order, strlen(in->order)};
        for (size_t i = 0; i < in->n_modules; i++)
                entries[n++] = (Entry){in->entry_names[i], S_IFREG | 0644, in->modules[i].data, in->modules[i].size};
        qsort(entries, n, sizeof(Entry), entry_compare);
        for (size_t i = 1; i < n; i++)
                if (strcmp(entries[i - 1].name, entries[i].name) == 0)
                        return error_set(err, EEXIST, "initramfs: two inputs would both be /%s", entries[i].name);
        *ret_n = n;
        return 0;
}

static int archive_fail(struct archive *a, const char *what, Error **err) {
        return error_set(err, archive_errno_or(a, EIO), "initramfs: %s: %s", what, archive_message(a));
}

/* Writes one entry: owner 0:0, mtime 0, inode ino, no device numbers. */
static int write_entry(struct archive *a, const Entry *e, int64_t ino, Error **err) {
        _cleanup_archive_entry_ struct archive_entry *ae = archive_entry_new();
        if (!ae)
                return error_oom(err);
        archive_entry_set_pathname(ae, e->name);
        archive_entry_set_mode(ae, e->mode);
        archive_entry_set_uid(ae, 0);
        archive_entry_set_gid(ae, 0);
        archive_entry_set_mtime(ae, 0, 0);
        archive_entry_set_ino64(ae, ino);
        archive_entry_set_nlink(ae, S_ISDIR(e->mode) ? 2 : 1);
        archive_entry_set_size(ae, S_ISREG(e->mode) ? (int64_t) e->size : 0);
        if (archive_write_header(a, ae) != ARCHIVE_OK)
                return archive_fail(a, e->name, err);
        if (S_ISREG(e->mode) && e->size > 0 && archive_write_data(a, e->data, e->size) != (la_ssize_t) e->size)
                return archive_fail(a, e->name, err);
        return 0;
}

/* Writes the gzip'd newc archive of entries to fd. */
static int archive_write_all(int fd, const Entry *entries, size_t n, Error **err) {
        _cleanup_archive_write_ struct archive *a = archive_write_new();
        if (!a)
                return error_oom(err);
        /* "!timestamp": a zero gzip mtime, or equal inputs would differ by the clock. */
        if (archive_write_set_format_cpio_newc(a) != ARCHIVE_OK || archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
            archive_write_set_filter_option(a, "gzip", "timestamp", NULL) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK || archive_write_open_fd(a, fd) != ARCHIVE_OK)
                return archive_fail(a, "set up the cpio writer", err);
        for (size_t i = 0; i < n; i++) {
                int r = write_entry(a, &entries[i], (int64_t) i + 1, err);
                if (r < 0)
                        return r;
        }
        if (archive_write_close(a) != ARCHIVE_OK)
                return archive_fail(a, "finish the archive", err);
        return 0;
}

/* Writes the archive into a temporary file beside path and renames it over path. */
static int write_atomic(const char *path, const Inputs *in, Error **err) {
        _cleanup_free_ Entry *entries = calloc(ELEMENTSOF(skeleton) + 2 + in->n_modules, sizeof(Entry));
        _cleanup_free_ char *tmp = NULL;
        size_t n = 0;
        if (!entries)
                return error_oom(err);
        int r = entries_collect(in, entries, &n, err);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = tmpfile_open_beside(path, &tmp);
        if (fd < 0)
                return error_set_errno(err, -fd, "initramfs: create a temporary file beside %s", path);
        r = archive_write_all(fd, entries, n, err);
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        r = tmpfile_link(fd, tmp, path, 0644);
        if (r < 0)
                return error_set_errno(err, -r, "initramfs: sync and rename %s to %s", tmp, path);
        return 0;
}

int initramfs_build(const InitramfsSpec *spec, const char *cache_dir, char **ret_path, Error **err) {
        if (!spec || !spec->agent_path || !cache_dir || !cache_dir[0])
                return error_set(err, EINVAL, "initramfs: agent path and cache directory are required");
        Inputs in = {0};
        char hex[DIGEST_HEX_LEN + 1];
        _cleanup_free_ char *path = NULL;
        int r = inputs_load(spec, &in, err);
        if (r >= 0)
                r = inputs_digest(&in, hex, err);
        if (r >= 0 && asprintf(&path, "%s/initramfs-%s.cpio.gz", cache_dir, hex) < 0)
                r = error_oom(err);
        struct stat st;
        if (r >= 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                log_debug("initramfs %s is cached", path);
        } else if (r >= 0) {
                r = mkdir_p(cache_dir, 0755);
                if (r < 0)
                        r = error_set_errno(err, -r, "initramfs: create %s", cache_dir);
                if (r >= 0)
                        r = write_atomic(path, &in, err);
                if (r >= 0)
                        log_debug("initramfs %s built with %zu modules", path, in.n_modules);
        }
        inputs_done(&in);
        if (r < 0)
                return r;
        *ret_path = TAKE_PTR(path);
        return 0;
}
