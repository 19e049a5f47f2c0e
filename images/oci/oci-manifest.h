/* oci-manifest.h: the JSON documents of an image pull, as plain C structures.
 *
 * A registry answers a manifest request with either an image manifest (OCI
 * or Docker schema 2: one config blob and an ordered list of layer blobs) or
 * an index / manifest list (one manifest per platform). The config blob says
 * how to run the image and lists the uncompressed layer digests (diff_ids).
 * Every document comes from the network and is treated as hostile: the input
 * is bounded (OCI_JSON_MAX), duplicate keys are refused, every string and
 * array has a cap, every digest is "sha256:<64 hex>", every size is bounded.
 *
 * Error codes used throughout: EFBIG (document, string or size too large),
 * E2BIG (too many layers, entries or array items), EBADMSG (not JSON, wrong
 * type, missing or bad field), EOPNOTSUPP (digest algorithm, media type or
 * schema we do not handle), ENOENT (no index entry for a platform), ENOMEM. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/error.h"
#include "common/base/macro.h"

#define OCI_MEDIA_TYPE_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_MEDIA_TYPE_INDEX "application/vnd.oci.image.index.v1+json"
#define OCI_MEDIA_TYPE_CONFIG "application/vnd.oci.image.config.v1+json"
#define OCI_MEDIA_TYPE_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"
#define OCI_MEDIA_TYPE_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define OCI_MEDIA_TYPE_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define OCI_MEDIA_TYPE_LAYER_NONDIST_PREFIX "application/vnd.oci.image.layer.nondistributable."
#define DOCKER_MEDIA_TYPE_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define DOCKER_MEDIA_TYPE_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define DOCKER_MEDIA_TYPE_CONFIG "application/vnd.docker.container.image.v1+json"
#define DOCKER_MEDIA_TYPE_LAYER "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define DOCKER_MEDIA_TYPE_FOREIGN_LAYER "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#define DOCKER_MEDIA_TYPE_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"
#define DOCKER_MEDIA_TYPE_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

/* The Accept header a registry client sends for manifests. */
#define OCI_MANIFEST_ACCEPT                                                            \
        OCI_MEDIA_TYPE_INDEX ", " OCI_MEDIA_TYPE_MANIFEST ", " DOCKER_MEDIA_TYPE_LIST \
        ", " DOCKER_MEDIA_TYPE_MANIFEST

#define OCI_JSON_MAX (4u * 1024 * 1024)               /* bytes of one document */
#define OCI_BLOB_SIZE_MAX (64ull * 1024 * 1024 * 1024) /* a descriptor's size */
#define OCI_LAYERS_MAX 128                            /* layers and diff_ids */
#define OCI_INDEX_ENTRIES_MAX 1024
#define OCI_STRING_MAX (64 * 1024)                    /* any string */
#define OCI_PLATFORM_STRING_MAX 128                   /* os, architecture, variant */
#define OCI_ARRAY_MAX 4096                            /* Env, Cmd, Labels, ... */

typedef enum OciKind {
        OCI_KIND_MANIFEST,
        OCI_KIND_INDEX,
        _OCI_KIND_MAX,
} OciKind;

typedef enum OciCompression {
        OCI_COMPRESSION_NONE,
        OCI_COMPRESSION_GZIP,
        OCI_COMPRESSION_ZSTD,
        _OCI_COMPRESSION_MAX,
} OciCompression;

typedef struct OciStrings {
        char **v; /* n strings, none NULL once parsed */
        size_t n;
} OciStrings;

/* Frees the strings and the array; leaves s empty. */
void oci_strings_clear(OciStrings *s);

typedef struct OciPlatform {
        char *os;           /* NULL when the entry has no platform */
        char *architecture;
        char *variant;      /* NULL when absent */
} OciPlatform;

typedef struct OciDescriptor {
        char *media_type;     /* never NULL */
        char *digest;         /* "sha256:<64 hex>" */
        uint64_t size;        /* <= OCI_BLOB_SIZE_MAX */
        OciPlatform platform; /* index entries only */
} OciDescriptor;

typedef struct OciManifest {
        char *media_type; /* as written in the document; NULL if absent */
        OciDescriptor config;
        OciDescriptor *layers; /* base layer first */
        size_t n_layers;
} OciManifest;

typedef struct OciIndex {
        char *media_type; /* NULL if absent */
        OciDescriptor *manifests;
        size_t n_manifests;
} OciIndex;

typedef struct OciConfig {
        char *architecture;
        char *os;
        char *variant;     /* NULL if absent */
        OciStrings entrypoint;
        OciStrings cmd;
        OciStrings env;    /* "KEY=value" */
        char *working_dir; /* NULL if absent, likewise user and stop_signal */
        char *user;
        char *stop_signal;
        OciStrings label_keys;   /* label_keys.v[i] = label_values.v[i] */
        OciStrings label_values;
        OciStrings exposed_ports; /* "80/tcp" */
        OciStrings diff_ids;      /* uncompressed layer digests, base first */
} OciConfig;

/* Tells an image manifest from an index, trusting the document over the
 * Content-Type header: the "mediaType" field if present, else the presence of
 * "manifests" or "layers", else content_type (may be NULL; parameters after
 * ';' are ignored). Returns 0; -EOPNOTSUPP for schema 1 or an unknown media
 * type; -EBADMSG when nothing decides; -EFBIG. */
int oci_media_type_sniff(const void *data, size_t size, const char *content_type, OciKind *ret, Error **err);

/* Whether media_type names an image manifest / an index (OCI or Docker). */
bool oci_media_type_is_manifest(const char *media_type);
bool oci_media_type_is_index(const char *media_type);

/* Maps a layer media type to its compression. Returns 0, or -EOPNOTSUPP for
 * a foreign / non-distributable or unknown layer type. */
int oci_layer_compression(const char *media_type, OciCompression *ret);

/* Parses an image manifest (schemaVersion 2, config, layers). Returns 0 or an
 * error listed at the top; a config that is not an image config and a layer
 * type oci_layer_compression() refuses are -EOPNOTSUPP. */
int oci_manifest_parse(const void *data, size_t size, OciManifest **ret, Error **err);
OciManifest *oci_manifest_free(OciManifest *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(OciManifest *, oci_manifest_free);
#define _cleanup_oci_manifest_ _cleanup_(oci_manifest_freep)

/* Parses an index / manifest list (schemaVersion 2, manifests[] with
 * optional platforms, at most OCI_INDEX_ENTRIES_MAX). */
int oci_index_parse(const void *data, size_t size, OciIndex **ret, Error **err);
OciIndex *oci_index_free(OciIndex *index);
DEFINE_TRIVIAL_CLEANUP_FUNC(OciIndex *, oci_index_free);
#define _cleanup_oci_index_ _cleanup_(oci_index_freep)

/* Picks the first image-manifest entry for os/architecture and, if variant
 * is not NULL, that variant (an entry without variant counts as "v8" for
 * arm64). os and architecture must not be NULL. *ret points into index.
 * Returns 0, or -ENOENT with a message listing the platforms available. */
int oci_index_select(const OciIndex *index, const char *os, const char *architecture, const char *variant,
                     const OciDescriptor **ret, Error **err);

/* Parses an image config (OCI or Docker): architecture and os required,
 * the "config" section optional, rootfs.type "layers" with sha256 diff_ids. */
int oci_config_parse(const void *data, size_t size, OciConfig **ret, Error **err);
OciConfig *oci_config_free(OciConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(OciConfig *, oci_config_free);
#define _cleanup_oci_config_ _cleanup_(oci_config_freep)

/* Checks that config lists one diff_id per manifest layer. Returns 0 or
 * -EBADMSG naming both counts. */
int oci_config_check_layers(const OciConfig *config, const OciManifest *manifest, Error **err);
