/* layer-tar.h: the one definition of what an image layer stream may be.
 *
 * A layer is a tar archive, uncompressed, gzip or zstd; nothing else is
 * accepted (libarchive's other filters may run external programs on the
 * input). Both readers of layers use this: the ext4 writer, which applies
 * them, and the store's measuring pass, which counts them against the
 * decompression-bomb caps; they must agree on what a layer is. Cleanup
 * attributes and error helpers come from common/archive/archive-util.h. */
#pragma once

#include <archive.h>
#include <errno.h>

#include "common/archive/archive-util.h"

/* A new libarchive reader in *ret, set up for layer streams (not yet
 * opened). Returns 0, -ENOMEM, or -EOPNOTSUPP when this libarchive cannot
 * read one of the formats natively. */
static inline int layer_tar_reader_new(struct archive **ret) {
        struct archive *a = archive_read_new();
        if (!a)
                return -ENOMEM;
        if (archive_read_support_filter_gzip(a) != ARCHIVE_OK || archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
            archive_read_support_filter_none(a) != ARCHIVE_OK || archive_read_support_format_tar(a) != ARCHIVE_OK) {
                archive_read_free(a);
                return -EOPNOTSUPP;
        }
        *ret = a;
        return 0;
}
