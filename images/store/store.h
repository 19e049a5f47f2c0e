/* store.h: the local image store: verified blobs, image records, read-only
 * ext4 disks built from the layers, tags, and per-container qcow2 overlays.
 *
 * Layout under the root directory (default STORE_DEFAULT_ROOT):
 *     blobs/sha256/<hex>          manifests, configs, layers (immutable)
 *     images/<config-hex>/image.json   the image record (last thing written)
 *     images/<config-hex>/disk.ext4    read-only ext4 of the layers
 *     images/<config-hex>/users/<h>    one marker per container overlay
 *     images/<config-hex>/layers.measure  entries and uncompressed bytes per
 *                                 layer, so a later pull reusing a layer
 *                                 need not read it again
 *     tags.json                   {"name:tag": "sha256:<config-hex>"}
 *     locks/                      flock files (store, tags, per image present or being pulled)
 *     tmp/                        work in progress, removed on failure / gc
 * Every change is made in tmp/ and renamed into place (fsync file, rename,
 * fsync directory), so a process killed at any point leaves the old or the
 * new state plus leftovers that store_gc() (and store_open(), when no other
 * process uses the store) removes. An image exists once its record exists;
 * the record is written after its disk is complete.
 *
 * Concurrency: a Store may be used from many threads, and several processes
 * may open the same root. Pulls and disk operations hold a shared lock on
 * the store, gc an exclusive one; a pull holds its image's lock while it
 * builds, so a second pull of the same image waits and then finds it done;
 * tags.json is changed under its own lock.
 *
 * Image ids are the config digest "sha256:<64 hex>". Tag names are image
 * references normalised the Docker way ("busybox" is
 * "docker.io/library/busybox:latest"). Anything a source delivers is hostile:
 * manifest size, layer count, blob sizes and digests, the uncompressed size
 * and entry count of the layers (the decompression-bomb guard) are bounded. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/error.h"
#include "common/base/macro.h"
#include "images/oci/image-source.h"
#include "images/oci/oci-manifest.h"

#define STORE_DEFAULT_ROOT "/var/lib/portlayer/images"
#define STORE_ENV_ROOT "PL_IMAGE_STORE"
#define STORE_DEFAULT_OS "linux"
#define STORE_DEFAULT_ARCHITECTURE "amd64"
#define STORE_DEFAULT_MAX_UNCOMPRESSED (64ull << 30) /* bytes in all layers, uncompressed */
#define STORE_DEFAULT_MAX_ENTRIES 4000000ull        /* tar entries in all layers */
#define STORE_ID_PREFIX_MIN 12                      /* hex digits of a short id */
#define STORE_RECORD_MAX (8u * 1024 * 1024)         /* bytes of image.json / tags.json */
#define STORE_TAGS_MAX 65536

typedef struct Store Store;

/* Progress of one blob: called from the thread that delivers it (several at
 * once when the source fetches in parallel) with bytes done so far and the
 * descriptor's size; once with done == total when the blob is verified. */
typedef void (*StoreProgressFn)(const char *digest, uint64_t done, uint64_t total, void *userdata);

/* The steps of a pull after the download, for a progress display: the
 * disk is built layer by layer (index of count), then committed. Called
 * from the pulling thread. */
typedef enum StorePullPhase {
        STORE_PULL_PHASE_DISK_LAYER,
        STORE_PULL_PHASE_COMMIT,
        _STORE_PULL_PHASE_MAX,
} StorePullPhase;
typedef void (*StorePhaseFn)(StorePullPhase phase, size_t index, size_t count, const char *digest,
                             void *userdata);

typedef struct StorePullOptions {
        const char *os;           /* NULL: "linux" */
        const char *architecture; /* NULL: "amd64" */
        const char *variant;      /* NULL: any */
        const char *digest;       /* not NULL: a pull by digest; the top-level
                                   * document is asked for by it and must match */
        StoreProgressFn progress; /* may be NULL */
        StorePhaseFn phase;       /* may be NULL */
        void *userdata;           /* for progress and phase */
        uint64_t max_uncompressed; /* 0: STORE_DEFAULT_MAX_UNCOMPRESSED */
        uint64_t max_entries;      /* 0: STORE_DEFAULT_MAX_ENTRIES */
        size_t max_layers;         /* 0 or above OCI_LAYERS_MAX: OCI_LAYERS_MAX */
        size_t max_manifest;       /* 0 or above OCI_JSON_MAX: OCI_JSON_MAX */
} StorePullOptions;

/* An image as its record describes it. */
typedef struct StoreImage {
        char *id;              /* "sha256:<hex>" of the config blob */
        char *manifest_digest; /* the image manifest's digest */
        char *source;          /* where it was pulled from (ImageSource describe) */
        char *created;         /* the config's "created", NULL when absent */
        int64_t pulled;        /* when the record was written, Unix seconds */
        OciConfig *config;     /* the run configuration (never NULL) */
        OciStrings layers;     /* layer blob digests, base first */
        OciStrings tags;       /* tag names pointing at it (sorted) */
        uint64_t content_size; /* bytes of config + layer blobs */
        uint64_t disk_size;    /* bytes of disk.ext4 (apparent size) */
        char *disk_path;       /* absolute path of disk.ext4 */
} StoreImage;

StoreImage *store_image_free(StoreImage *img);
DEFINE_TRIVIAL_CLEANUP_FUNC(StoreImage *, store_image_free);
#define _cleanup_store_image_ _cleanup_(store_image_freep)

/* Renders img as a JSON object (the record plus tags and disk path), pretty
 * printed, malloc'd in *ret. Returns 0 or -ENOMEM. */
int store_image_to_json(const StoreImage *img, char **ret);

/* Opens (creating when missing) the store at root (NULL: $PL_IMAGE_STORE or
 * STORE_DEFAULT_ROOT). Removes leftovers of interrupted work when no other
 * user holds the store. Returns 0, or a negative errno (-EACCES, -ENOTDIR...)
 * with a message naming the path. */
int store_open(const char *root, Store **ret, Error **err);

/* Closes the store (NULL-safe); returns NULL. */
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);
#define _cleanup_store_ _cleanup_(store_freep)

/* The absolute root directory. */
const char *store_root(const Store *s);

/* Pulls the image src names: manifest or index (platform from opts),
 * manifest (verified against the digest asked for), config, the layers not
 * yet in blobs/, sizes and builds the ext4, writes the record, then tags it
 * tag_name (may be NULL). An image already present is only tagged. opts may
 * be NULL. *ret (may be NULL) receives the image. Errors: -EBADMSG (digest or
 * size mismatch, bad document), -EFBIG (manifest or blob too large; layers
 * past the uncompressed-bytes or entries cap: "layer ... expands past ..."),
 * -E2BIG (too many layers), -ENOENT
 * (no such manifest / platform), -EOPNOTSUPP, the source's or the ext4
 * writer's errors. On failure the store is as before (no blob, record, tag). */
int store_pull(Store *s, ImageSource *src, const char *tag_name, const StorePullOptions *opts, StoreImage **ret,
               Error **err);

/* All images, sorted by id, in *ret (array of n pointers, free each and the
 * array with store_image_list_free()). Returns 0 or a negative errno. */
int store_list(Store *s, StoreImage ***ret, size_t *ret_n, Error **err);
void store_image_list_free(StoreImage **list, size_t n);

/* Finds an image by tag name ("busybox", "host:5000/a:b"), full id
 * ("sha256:<hex>" or "<hex>") or a unique id prefix of at least
 * STORE_ID_PREFIX_MIN hex digits. Returns 0; -ENOENT when nothing matches;
 * -EINVAL for an ambiguous prefix (the message says so). */
int store_inspect(Store *s, const char *ref, StoreImage **ret, Error **err);

/* Points tag_name at the image ref names (as store_inspect() resolves it),
 * moving the tag if it pointed elsewhere. Returns 0, -ENOENT, -EINVAL for a
 * bad tag name. */
int store_tag(Store *s, const char *ref, const char *tag_name, Error **err);

/* Removes ref: a tag name is untagged, and the image is removed when no tag
 * is left; an id removes all of its tags and the image. An image in use by a
 * container disk is not removed: -EBUSY and nothing changes (an untag that
 * leaves other tags is still done). Returns 0 or -ENOENT. */
int store_remove(Store *s, const char *ref, Error **err);

typedef struct StoreGcStats {
        uint64_t blobs_removed;
        uint64_t images_removed; /* records without tags and without users, and record-less dirs */
        uint64_t tmp_removed;
        uint64_t bytes_freed;
} StoreGcStats;

/* Removes blobs no record references, stale tmp/ entries, image directories
 * without a record, and untagged images without users (keep_untagged false).
 * Waits for running pulls to finish. ret may be NULL. Returns 0 or a
 * negative errno. */
int store_gc(Store *s, bool keep_untagged, StoreGcStats *ret, Error **err);

/* Creates path (which must not exist) as a qcow2 overlay backed by the
 * image's disk.ext4 (backing format raw) of size_bytes virtual size (0: the
 * ext4's size; smaller than that: -EINVAL), with `qemu-img create`, and
 * registers it as a user of the image. Returns 0, -ENOENT (no image), -EEXIST,
 * or qemu-img's failure as -EIO with its message. */
int store_container_disk_create(Store *s, const char *image_ref, const char *path, uint64_t size_bytes,
                                Error **err);

/* Deletes the overlay at path and its user registration. Only a path this
 * store registered is deleted: -ENOENT (and nothing deleted) for any other
 * path, existing or not. A registration whose file is already gone is
 * removed and counts as success. */
int store_container_disk_remove(Store *s, const char *path, Error **err);

/* Normalises a tag name ("busybox" -> "docker.io/library/busybox:latest") in
 * *ret. Returns 0, -EINVAL for a name with a digest or a malformed one. */
int store_tag_name_normalize(const char *name, char **ret, Error **err);
