/* fuzz-ext4-layer.c: hostile layer tars through the ext4 writer
 * (images/ext4/ext4-writer.h) under ASan/UBSan. Each run formats a fresh 32 MiB
 * sparse image at one per-process temporary path, applies the input as a
 * layer (two layers when the input says so, to reach replacement and
 * whiteout paths), finishes and frees it, which deletes or keeps the file;
 * the file is unlinked after every run.
 *
 * libarchive is not instrumented, so raw bytes seldom get past its header
 * checksum. The first byte therefore picks a mode:
 *   - structured (most inputs): the rest is decoded into archive entries
 *     (type, a name from a small dictionary of components that collide on
 *     purpose, link targets, modes, owners, xattrs, data sizes) and written
 *     with libarchive's writer as pax, gnutar or ustar, optionally gzipped
 *     and optionally cut short at a chosen byte;
 *   - raw: the rest is the layer itself, with the checksum of every block
 *     that carries the "ustar" magic recomputed, so that mutations reach the
 *     fields behind it.
 * After each run no descriptor may point at the image or a layer memfd: a
 * leaked fd aborts. With FUZZ_EXT4_FSCK set in the environment every
 * finished image must also pass "e2fsck -fn" (slow: for corpus replays);
 * FUZZ_EXT4_KEEP_LAYER=path appends each generated layer to path.  Memory leaks are LeakSanitizer's job. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "images/ext4/ext4-writer.h"

#define IMAGE_SIZE (32ull << 20)
#define MAX_ENTRIES 64
#define MAX_DATA (256u * 1024)

static char image_path[64];

/* A cursor over the fuzz input; reads past the end give zeros. */
typedef struct Input {
        const uint8_t *p;
        size_t left;
} Input;

static uint8_t next8(Input *in) {
        if (in->left == 0)
                return 0;
        in->left--;
        return *in->p++;
}

static uint32_t next32(Input *in) {
        uint32_t v = 0;
        for (int i = 0; i < 4; i++)
                v = v << 8 | next8(in);
        return v;
}

static const char *const components[] = {
        "a", "b", "c", "etc", "passwd", "l", "..", ".", "", ".wh.a", ".wh.b", ".wh..wh..opq", ".wh.", ".wh..",
        "lost+found", "d\nx", "\xff", "a/b", "/",
};

/* Appends 1..4 components to buf: dictionary entries, or raw bytes from the
 * input (no NUL) for a code past the dictionary. */
static void make_name(Input *in, char *buf, size_t size) {
        size_t n = 0;
        buf[0] = 0;
        unsigned count = next8(in) % 4 + 1;
        for (unsigned i = 0; i < count; i++) {
                uint8_t code = next8(in);
                char comp[300];
                if (code < 2 * ELEMENTSOF(components)) {
                        snprintf(comp, sizeof(comp), "%s", components[code % ELEMENTSOF(components)]);
                } else {
                        size_t len = MIN((size_t) (code - 2 * ELEMENTSOF(components)) * 2, sizeof(comp) - 1);
                        size_t k = 0;
                        for (; k < len && in->left; k++) {
                                uint8_t c = next8(in);
                                comp[k] = c ? (char) c : 'z';
                        }
                        comp[k] = 0;
                }
                int w = snprintf(buf + n, size - n, "%s%s", i ? "/" : "", comp);
                if (w < 0 || (size_t) w >= size - n)
                        return;
                n += (size_t) w;
        }
}

static void add_entry(struct archive *a, Input *in, char *data) {
        static const mode_t types[] = {AE_IFREG, AE_IFDIR, AE_IFLNK, 0, AE_IFCHR, AE_IFBLK, AE_IFIFO, AE_IFREG};
        uint8_t op = next8(in);
        char name[1200], target[1200];
        make_name(in, name, sizeof(name));
        mode_t type = types[op % ELEMENTSOF(types)];
        if (op % ELEMENTSOF(types) == 7) { /* a whiteout of name */
                char *slash = strrchr(name, '/');
                char leaf[300];
                snprintf(leaf, sizeof(leaf), "%s", slash ? slash + 1 : name);
                snprintf(slash ? slash + 1 : name, sizeof(name) - (size_t) (slash ? slash + 1 - name : 0), ".wh.%s",
                         leaf);
        }
        struct archive_entry *e = archive_entry_new();
        if (!e)
                abort();
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, type ? type : AE_IFREG);
        archive_entry_set_perm(e, (mode_t) (next8(in) << 4 | next8(in)) & 07777);
        archive_entry_set_uid(e, next8(in) == 0xff ? next32(in) : 0);
        archive_entry_set_gid(e, next8(in));
        archive_entry_set_mtime(e, (time_t) (int32_t) next32(in), (long) next8(in) * 3906250);
        if (type == 0 || type == AE_IFLNK) {
                make_name(in, target, sizeof(target));
                if (op & 0x80 && type == AE_IFLNK)
                        memmove(target + 1, target, strlen(target) + 1), target[0] = '/';
                if (type == 0)
                        archive_entry_set_hardlink(e, target);
                else
                        archive_entry_set_symlink(e, target);
        }
        if (type == AE_IFCHR || type == AE_IFBLK)
                archive_entry_set_rdev(e, makedev(next8(in) | (op & 0x80 ? 0x300u : 0), next8(in) << 4 | next8(in)));
        size_t size = 0;
        if (type == AE_IFREG && op % ELEMENTSOF(types) == 0) {
                uint8_t s = next8(in);
                size = s < 0xf0 ? s * 37u : (size_t) (s - 0xef) * 16384u;
                size = MIN(size, (size_t) MAX_DATA);
                if (op & 0x40) { /* a hole in the middle */
                        archive_entry_sparse_add_entry(e, 0, (la_int64_t) (size / 4));
                        archive_entry_sparse_add_entry(e, (la_int64_t) (size / 2), (la_int64_t) (size / 4));
                }
        }
        archive_entry_set_size(e, (la_int64_t) size);
        uint8_t x = next8(in);
        if (x & 1)
                archive_entry_xattr_add_entry(e, "user.fuzz", data, x >> 1);
        if (x & 2)
                archive_entry_xattr_add_entry(e, "security.capability", data, 20);
        if (x & 4) { /* names libext2fs treats specially, or refuses */
                static const char *const odd[] = {"bogus", "system.posix_acl_access", "trusted.t", "user."};
                archive_entry_xattr_add_entry(e, odd[(x >> 3) & 3], data, x >> 5);
        }
        if (archive_write_header(a, e) == ARCHIVE_OK && size)
                (void) archive_write_data(a, data, size);
        archive_entry_free(e);
}

/* Writes the structured layer to fd; returns its length. */
static off_t write_structured(Input *in, int fd, uint8_t mode) {
        static char data[MAX_DATA];
        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (char) (i * 131 + i / 4096);
        struct archive *a = archive_write_new();
        if (!a)
                abort();
        int fmt = (mode >> 2) % 3;
        (void) (fmt == 0 ? archive_write_set_format_pax(a) : fmt == 1 ? archive_write_set_format_gnutar(a)
                                                                     : archive_write_set_format_ustar(a));
        if (mode & 0x20)
                (void) archive_write_add_filter_gzip(a);
        (void) archive_write_set_bytes_in_last_block(a, 1);
        if (archive_write_open_fd(a, fd) != ARCHIVE_OK)
                abort();
        unsigned n = next8(in) % MAX_ENTRIES + 1;
        for (unsigned i = 0; i < n && in->left; i++)
                add_entry(a, in, data);
        (void) archive_write_close(a);
        archive_write_free(a);
        off_t len = lseek(fd, 0, SEEK_CUR);
        if (mode & 0x40 && len > 0) /* cut short */
                len = len * (next8(in) + 1) / 257;
        return len;
}

/* Writes the raw layer with the ustar header checksums fixed. */
static off_t write_raw(Input *in, int fd) {
        uint8_t *buf = malloc(in->left + 1);
        if (!buf)
                abort();
        size_t len = in->left;
        memcpy(buf, in->p, len);
        for (size_t off = 0; off + 512 <= len; off += 512) {
                uint8_t *h = buf + off;
                if (memcmp(h + 257, "ustar", 5) != 0)
                        continue;
                memset(h + 148, ' ', 8);
                unsigned sum = 0;
                for (int i = 0; i < 512; i++)
                        sum += h[i];
                snprintf((char *) h + 148, 8, "%06o", sum & 0777777);
        }
        ssize_t w = write(fd, buf, len);
        free(buf);
        return w < 0 ? 0 : (off_t) w;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        snprintf(image_path, sizeof(image_path), "/tmp/fuzz-ext4-layer-%d.img", (int) getpid());
        return 0;
}

/* Aborts when a descriptor of ours (the image or a layer memfd) is still
 * open: libFuzzer itself opens pipes now and then, so counting is no use. */
static void check_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                abort();
        for (struct dirent *de; (de = readdir(d));) {
                char link[PATH_MAX], target[PATH_MAX];
                snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
                ssize_t n = readlink(link, target, sizeof(target) - 1);
                if (n <= 0)
                        continue;
                target[n] = 0;
                if (strstr(target, "fuzz-ext4-layer-") || strstr(target, "memfd:layer"))
                        abort(); /* a descriptor leaked */
        }
        closedir(d);
}

static int layer_fd(Input *in, uint8_t mode) {
        int fd = memfd_create("layer", MFD_CLOEXEC);
        if (fd < 0)
                abort();
        off_t len = mode & 0x01 ? write_raw(in, fd) : write_structured(in, fd, mode);
        if (ftruncate(fd, len) < 0 || lseek(fd, 0, SEEK_SET) < 0)
                abort();
        const char *keep = getenv("FUZZ_EXT4_KEEP_LAYER"); /* triage: the tar a crash came from */
        if (keep) {
                char cmd[512];
                snprintf(cmd, sizeof(cmd), "cat /proc/%d/fd/%d >> '%s'", (int) getpid(), fd, keep);
                if (system(cmd) != 0)
                        abort();
        }
        return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Input in = {.p = data, .left = size};
        uint8_t mode = next8(&in);
        unlink(image_path);
        Ext4Writer *w = NULL;
        Error *err = NULL;
        if (ext4_writer_new(&w, image_path, IMAGE_SIZE, &err) < 0) {
                fprintf(stderr, "ext4_writer_new: %s\n", error_text(err));
                abort();
        }
        int r = 0;
        unsigned layers = mode & 0x80 && !(mode & 0x01) ? 2 : 1;
        for (unsigned i = 0; r == 0 && i < layers; i++) {
                int fd = layer_fd(&in, mode);
                Ext4LayerStats stats;
                r = ext4_writer_apply_layer(w, fd, &stats, &err);
                if (r > 0 || (r < 0 && (!err || !error_text(err)[0])))
                        abort(); /* failures must say what */
                close(fd);
        }
        if (r == 0 && (r = ext4_writer_finish(w, &err)) < 0 && !err)
                abort();
        ext4_writer_free(w);
        if (r == 0 && getenv("FUZZ_EXT4_FSCK")) {
                char cmd[256];
                snprintf(cmd, sizeof(cmd), "e2fsck -fn %1$s >/dev/null 2>&1 || e2fsck -fn %1$s >&2", image_path);
                if (system(cmd) != 0)
                        abort(); /* the writer made an inconsistent filesystem */
        }
        error_free(err);
        if (r < 0 && access(image_path, F_OK) == 0)
                abort(); /* a failed image must be deleted */
        unlink(image_path);
        check_fds();
        return 0;
}
