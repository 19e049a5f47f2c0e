/* oci-archive.h: an OCI image layout packed in a tar (skopeo's
 * "oci-archive:", or `tar -C LAYOUT -cf`), unpacked into a directory for
 * oci_layout_source_new(), which then reads it with its usual checks.
 *
 * Only the layout's own names are written: "oci-layout", "index.json" and
 * "blobs/sha256/<64 hex>", as regular files created exclusively beneath
 * dir (openat with O_EXCL | O_NOFOLLOW from dir's fd, the blobs directories
 * made here); every other member (directories, a Docker manifest.json) is
 * skipped, and one of those names as a link, device or duplicate refuses
 * the archive. The archive may be plain tar or gzip. */
#pragma once

#include "common/base/error.h"

#define OCI_ARCHIVE_MEMBERS_MAX 100000u

/* Unpacks tar_path into dir (existing, empty, the caller's). Returns 0;
 * -ENOENT when the archive holds no "oci-layout" (not a layout); -EINVAL
 * for a refused member; -EBADMSG for a corrupt archive; -E2BIG past
 * OCI_ARCHIVE_MEMBERS_MAX members; a write's errno. On failure dir may hold
 * a part: the caller removes it. */
int oci_archive_unpack(const char *tar_path, const char *dir, Error **err);
