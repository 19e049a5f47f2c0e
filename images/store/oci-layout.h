/* oci-layout.h: an OCI image layout directory as an ImageSource.
 *
 * The layout (image-spec "image-layout.md") is a directory holding an
 * "oci-layout" file ({"imageLayoutVersion": "1.0.0"}), an index.json whose
 * entries name images by the org.opencontainers.image.ref.name annotation,
 * and blobs/sha256/<hex>. umoci, skopeo ("oci:DIR:TAG") and buildah write
 * it. The directory is read, never written; every file is opened beneath it
 * with O_NOFOLLOW, one component at a time, and only digests that pass
 * digest_parse_check() name files, so nothing outside the layout is read. */
#pragma once

#include "common/base/error.h"
#include "images/oci/image-source.h"

#define OCI_LAYOUT_REF_NAME_ANNOTATION "org.opencontainers.image.ref.name"

/* Opens the layout at dir. tag_or_digest picks the image: a ref name
 * ("latest"), the digest of an index.json entry ("sha256:..."), or NULL for the only image
 * of the layout (or the one named "latest" when there are several).
 * get_manifest(NULL) returns the index entry's document (an index entry that
 * is itself an index is returned as such). Returns 0; -ENOENT (no such dir,
 * no oci-layout file); -EBADMSG (bad oci-layout / index.json);
 * -EOPNOTSUPP (layout version other than 1.x). */
int oci_layout_source_new(const char *dir, const char *tag_or_digest, ImageSource **ret, Error **err);
