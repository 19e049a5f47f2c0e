/* archive-util.h: what every libarchive user of the tree shares: cleanup
 * attributes for readers, writers and entries, entry accessors that fall
 * back to the UTF-8 names, and the error helpers that turn libarchive's
 * state into our errno + message.
 *
 * Header-only (plarchive is an INTERFACE library giving libarchive's include
 * directory), so that each user links libarchive its own way: the static
 * agent by name, images/ through pkg-config's imported target. Users are the
 * agent's copy-in/out, the initramfs writer, the ext4 layer writer and the
 * store's archive readers (docs/architecture.md). */
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include "common/base/macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct archive *, archive_read_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct archive *, archive_write_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct archive_entry *, archive_entry_free);
#define _cleanup_archive_read_ _cleanup_(archive_read_freep)
#define _cleanup_archive_write_ _cleanup_(archive_write_freep)
#define _cleanup_archive_entry_ _cleanup_(archive_entry_freep)

/* The entry's path name, hard link target or symlink target: the locale
 * form when libarchive has one, else the UTF-8 form (a pax header name that
 * does not convert to the current locale). NULL when the entry has none. */
static inline const char *entry_pathname(struct archive_entry *e) {
        const char *s = archive_entry_pathname(e);
        return s ? s : archive_entry_pathname_utf8(e);
}

static inline const char *entry_hardlink(struct archive_entry *e) {
        const char *s = archive_entry_hardlink(e);
        return s ? s : archive_entry_hardlink_utf8(e);
}

static inline const char *entry_symlink(struct archive_entry *e) {
        const char *s = archive_entry_symlink(e);
        return s ? s : archive_entry_symlink_utf8(e);
}

/* archive_errno(a) when it is a real errno (> 0), else fallback: libarchive
 * leaves 0 or -1 after many format errors. Returns a positive code, for
 * error_set(). */
static inline int archive_errno_or(struct archive *a, int fallback) {
        int e = archive_errno(a);
        return e > 0 ? e : fallback;
}

/* archive_error_string(a), never NULL. */
static inline const char *archive_message(struct archive *a) {
        const char *s = archive_error_string(a);
        return s ? s : "unknown archive error";
}
