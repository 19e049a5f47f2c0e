/* registry-source.c: the ImageSource (images/oci/image-source.h) of a registry
 * reference, a thin adapter over the shared RegistryClient: the top-level
 * manifest is fetched by the reference's digest when it has one (so a
 * "name@sha256:..." pull is pinned), else by its tag. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "images/oci/digest.h"
#include "images/registry/registry.h"

typedef struct RegistrySource {
        ImageSource base; /* first: the ImageSource pointer is the RegistrySource */
        RegistryClient *client;
        OciRef ref; /* strings owned */
        char *name; /* canonical reference */
} RegistrySource;

static RegistrySource *to_rs(ImageSource *s) {
        return (RegistrySource *) s;
}

static int rs_get_manifest(ImageSource *s, const char *digest, void **ret_data, size_t *ret_size,
                           char **ret_media_type, Error **err) {
        RegistrySource *rs = to_rs(s);
        const char *reference = digest ? digest : rs->ref.digest ? rs->ref.digest : rs->ref.tag;
        if (!reference)
                return error_set(err, EINVAL, "%s: no tag or digest to fetch", rs->name);
        if (digest && digest_parse_check(digest) < 0)
                return error_set(err, EINVAL, "%s: malformed manifest digest", rs->name);
        return registry_get_manifest(rs->client, &rs->ref, reference, ret_data, ret_size, ret_media_type, NULL, err);
}

static int rs_fetch_blobs(ImageSource *s, const OciDescriptor *descs, size_t n, ImageBlobSink *sink, Error **err) {
        RegistrySource *rs = to_rs(s);
        return registry_fetch_blobs(rs->client, &rs->ref, descs, n, sink, err);
}

static const char *rs_describe(ImageSource *s) {
        return to_rs(s)->name;
}

static void rs_free(ImageSource *s) {
        RegistrySource *rs = to_rs(s);
        if (!rs)
                return;
        free(rs->ref.registry);
        free(rs->ref.repository);
        free(rs->ref.tag);
        free(rs->ref.digest);
        free(rs->name);
        free(rs);
}

static const ImageSourceOps registry_source_ops = {
        .kind = "registry",
        .get_manifest = rs_get_manifest,
        .fetch_blobs = rs_fetch_blobs,
        .describe = rs_describe,
        .free = rs_free,
};

static int dup_or_null(const char *s, char **ret) {
        *ret = s ? strdup(s) : NULL;
        return !s || *ret ? 0 : -ENOMEM;
}

int registry_source_new(RegistryClient *c, const OciRef *ref, ImageSource **ret, Error **err) {
        if (!c || !ref || !ref->registry || !ref->repository)
                return error_set(err, EINVAL, "registry source: incomplete reference");
        RegistrySource *rs = calloc(1, sizeof *rs);
        if (!rs)
                return error_oom(err);
        rs->base.ops = &registry_source_ops;
        rs->client = c;
        if (dup_or_null(ref->registry, &rs->ref.registry) < 0 || dup_or_null(ref->repository, &rs->ref.repository) < 0 ||
            dup_or_null(ref->tag, &rs->ref.tag) < 0 || dup_or_null(ref->digest, &rs->ref.digest) < 0 ||
            oci_ref_to_string(&rs->ref, &rs->name) < 0) {
                rs_free(&rs->base);
                return error_oom(err);
        }
        *ret = &rs->base;
        return 0;
}
