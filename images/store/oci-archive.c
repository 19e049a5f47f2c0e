/* oci-archive.c: an OCI layout in a tar, unpacked (oci-archive.h). */
#include "oci-archive.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/archive/archive-util.h"
#include "common/base/io-util.h"
#include "common/base/path-util.h"

#define CHUNK (64u << 10)
#define NAME_MAX_BYTES 256

static const PathRules member_rules = {.max_len = NAME_MAX_BYTES, .refuse_empty = true, .strip_root = true};

/* The layout's names: the two files, and blobs/sha256/<64 lower-case hex>. */
static bool layout_name(const char *name) {
        if (strcmp(name, "oci-layout") == 0 || strcmp(name, "index.json") == 0)
                return true;
        const char *prefix = "blobs/sha256/";
        size_t n = strlen(prefix);
        return strncmp(name, prefix, n) == 0 && strlen(name + n) == 64 &&
               strspn(name + n, "0123456789abcdef") == 64;
}

static int write_member(struct archive *a, int dfd, const char *name, Error **err) {
        _cleanup_close_ int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return errno == EEXIST ? error_set(err, EINVAL, "member '%s' appears twice", name)
                                       : error_set_errno(err, errno, "write %s", name);
        const void *buf;
        size_t len;
        la_int64_t off;
        for (;;) {
                int r = archive_read_data_block(a, &buf, &len, &off);
                if (r == ARCHIVE_EOF)
                        return 0;
                if (r != ARCHIVE_OK)
                        return error_set(err, archive_errno_or(a, EBADMSG), "member '%s': %s", name, archive_message(a));
                if (pwrite(fd, buf, len, off) != (ssize_t) len)
                        return error_set_errno(err, errno ? errno : EIO, "write %s", name);
        }
}

int oci_archive_unpack(const char *tar_path, const char *dir, Error **err) {
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return error_set_errno(err, errno, "open %s", dir);
        if ((mkdirat(dfd, "blobs", 0700) < 0 && errno != EEXIST) ||
            (mkdirat(dfd, "blobs/sha256", 0700) < 0 && errno != EEXIST))
                return error_set_errno(err, errno, "create %s/blobs/sha256", dir);
        _cleanup_archive_read_ struct archive *a = archive_read_new();
        if (!a)
                return error_oom(err);
        if (archive_read_support_filter_none(a) != ARCHIVE_OK || archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
            archive_read_support_format_tar(a) != ARCHIVE_OK || archive_read_open_filename(a, tar_path, CHUNK) != ARCHIVE_OK)
                return error_set(err, archive_errno_or(a, EBADMSG), "archive: %s", archive_message(a));
        bool layout = false;
        struct archive_entry *e;
        for (unsigned n = 0;; n++) {
                int r = archive_read_next_header(a, &e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
                        return error_set(err, archive_errno_or(a, EBADMSG), "archive: %s", archive_message(a));
                if (n >= OCI_ARCHIVE_MEMBERS_MAX)
                        return error_set(err, E2BIG, "archive: more than %u members", OCI_ARCHIVE_MEMBERS_MAX);
                _cleanup_free_ char *name = NULL;
                if (path_normalize(NULL, entry_pathname(e), &member_rules, &name, NULL) < 0 || !layout_name(name))
                        continue;
                if (archive_entry_filetype(e) != AE_IFREG || entry_hardlink(e))
                        return error_set(err, EINVAL, "archive: '%s' is not a regular file", name);
                if ((r = write_member(a, dfd, name, err)) < 0)
                        return r;
                layout |= strcmp(name, "oci-layout") == 0;
        }
        return layout ? 0 : error_set(err, ENOENT, "the archive holds no oci-layout file");
}
