/* image-source.h: where an image's documents and blobs come from.
 *
 * The image store (store.c) pulls an image through an ImageSource: a small
 * driver table implemented by the registry client (registry-source.c), an OCI
 * image layout directory (oci-layout.c) and a `docker save` archive
 * (docker-archive.c); unit tests add fakes. The store drives the pull: it asks
 * for the top-level manifest or index, picks a platform, asks for the image
 * manifest by digest, then asks for the blobs it does not have yet.
 *
 * Blob bytes flow into an ImageBlobSink the store implements: the store
 * hashes every byte as it arrives, refuses more bytes than the descriptor
 * says, and on completion checks size and digest before an atomic rename
 * into the blob directory. Sources therefore never verify blobs themselves
 * and never touch the store's files; they only stream. Manifests are
 * returned whole (at most OCI_JSON_MAX bytes) and verified by the store
 * against the digest asked for.
 *
 * Threading: one source is used by one pull at a time. A source may deliver
 * several blobs at once from several threads; calls for one blob index are
 * never concurrent. Every source call has its own deadline (a source
 * configured with timeouts), so a pull never hangs. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/base/error.h"
#include "common/base/macro.h"
#include "images/oci/oci-manifest.h"

typedef struct ImageBlobSink ImageBlobSink;
struct ImageBlobSink {
        /* Appends n bytes to blob `index` (the position in the descriptor
         * array passed to fetch_blobs). Returns 0, or a negative errno that
         * the source must pass back up unchanged after stopping that blob:
         * -EFBIG when the blob grows past its descriptor's size, -ECANCELED
         * when the pull is being abandoned. */
        int (*write)(ImageBlobSink *sink, size_t index, const void *data, size_t n, Error **err);
        /* Forgets what was written to blob `index`: a retry starts it again
         * from byte 0. Returns 0 or a negative errno. */
        int (*restart)(ImageBlobSink *sink, size_t index, Error **err);
        void *userdata;
};

typedef struct ImageSource ImageSource;
typedef struct ImageSourceOps {
        const char *kind; /* "registry", "oci-layout", "docker-archive", "fake" */

        /* The manifest or index the source's reference names (digest ==
         * NULL), or the document with that digest (from an index).
         * *ret_data is malloc'd (caller frees), at most OCI_JSON_MAX bytes
         * (larger: -EFBIG, without reading the rest). *ret_media_type is the
         * Content-Type or the layout's declared type (NULL when unknown).
         * -ENOENT when the source has no such manifest / tag. */
        int (*get_manifest)(ImageSource *s, const char *digest, void **ret_data, size_t *ret_size,
                            char **ret_media_type, Error **err);

        /* Streams blobs descs[0..n) into sink, several at once where the
         * source can (registry: up to its parallelism bound). Returns 0 when
         * every blob was delivered in full, else the first error, after
         * stopping the other transfers. -ENOENT for a blob the source does
         * not have. The source retries transient failures itself (calling
         * sink->restart first). */
        int (*fetch_blobs)(ImageSource *s, const OciDescriptor *descs, size_t n, ImageBlobSink *sink,
                           Error **err);

        /* A human-readable name of where this comes from, for messages and
         * the image record ("127.0.0.1:5000/test/busybox:latest",
         * "oci:/path:tag", "docker-archive:/path"). Never NULL. */
        const char *(*describe)(ImageSource *s);

        void (*free)(ImageSource *s);
} ImageSourceOps;

struct ImageSource {
        const ImageSourceOps *ops;
};

static inline void image_source_free(ImageSource *s) {
        if (s)
                s->ops->free(s);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(ImageSource *, image_source_free);
#define _cleanup_image_source_ _cleanup_(image_source_freep)
