/* registry.h: an OCI distribution (Docker registry v2) client over HTTP(S).
 *
 * One RegistryClient serves every pull of the daemon: it is thread-safe, and
 * its calls may run concurrently from many threads. It fetches manifests
 * (whole, at most OCI_JSON_MAX bytes) and streams blobs into an
 * ImageBlobSink (images/oci/image-source.h), several at once. It speaks the
 * registry auth dance itself: anonymous, bearer tokens from a
 * `WWW-Authenticate: Bearer realm=...` challenge (cached per registry and
 * scope until they expire), and basic auth, with credentials from a list or a
 * callback. Transient failures (429, 5xx, dropped connections) are retried
 * with exponential backoff, honouring Retry-After up to a cap.
 *
 * Registries are reached over HTTPS with certificate verification, except
 * loopback registries (see oci_ref_registry_url()) and those listed as
 * insecure, which are reached over plain HTTP. libcurl is an implementation
 * detail: this header does not include it.
 *
 * Errors (negative errno, message naming the URL):
 *   -EACCES    401/403, or a 401 we cannot answer (no credentials, wrong ones)
 *   -ENOENT    404 (manifest or blob unknown)
 *   -EFBIG     a manifest over OCI_JSON_MAX; a blob over its descriptor's size
 *   -EAGAIN    429 / 503 still after every retry; -EIO other 5xx
 *   -ETIMEDOUT connect or low-speed timeout; -ECONNREFUSED; -EHOSTUNREACH
 *              (name does not resolve); -EPROTO (TLS or protocol errors)
 *   -ECANCELED or any error the sink returned, unchanged. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/error.h"
#include "common/base/macro.h"
#include "images/oci/image-source.h"
#include "images/oci/oci-manifest.h"
#include "images/oci/oci-ref.h"

#define REGISTRY_DEFAULT_CONNECT_TIMEOUT_MS 15000
#define REGISTRY_DEFAULT_REQUEST_TIMEOUT_MS 120000 /* whole manifest or token request */
#define REGISTRY_DEFAULT_LOW_SPEED_LIMIT 1024      /* bytes/s ... */
#define REGISTRY_DEFAULT_LOW_SPEED_TIME_S 30       /* ... for this long aborts a transfer */
#define REGISTRY_DEFAULT_MAX_PARALLEL 3
#define REGISTRY_DEFAULT_RETRIES 3
#define REGISTRY_DEFAULT_RETRY_BASE_MS 250        /* first backoff; doubles per attempt */
#define REGISTRY_DEFAULT_RETRY_AFTER_MAX_MS 30000 /* cap on a server's Retry-After */
#define REGISTRY_MAX_PARALLEL_LIMIT 32
#define REGISTRY_CREDENTIAL_MAX 4096 /* bytes of a user name or password */

typedef struct RegistryClient RegistryClient;

/* A static credential: registry is matched exactly against OciRef.registry
 * ("127.0.0.1:5000", "docker.io"). */
typedef struct RegistryCredential {
        const char *registry;
        const char *username;
        const char *password;
} RegistryCredential;

/* Looks up credentials for registry. Returns 1 with *ret_username and
 * *ret_password malloc'd (the client frees them), 0 for "none" (anonymous),
 * or a negative errno that fails the request. Called from any thread. */
typedef int (*RegistryCredentialsFn)(const char *registry, char **ret_username, char **ret_password,
                                     void *userdata);

/* Every field may be left zero for its default. */
typedef struct RegistryOptions {
        const char *const *insecure_registries; /* "host:port" reached over plain HTTP */
        size_t n_insecure_registries;
        const RegistryCredential *credentials; /* consulted first */
        size_t n_credentials;
        RegistryCredentialsFn credentials_fn; /* then this, if set */
        void *credentials_userdata;
        unsigned connect_timeout_ms;
        unsigned request_timeout_ms; /* manifests and tokens; blobs have no total limit */
        unsigned low_speed_limit;    /* bytes/s */
        unsigned low_speed_time_s;
        unsigned max_parallel;       /* blob transfers of one fetch at once, <= 32 */
        int retries;                 /* 0: default 3; < 0: no retries */
        unsigned retry_base_ms;
        unsigned retry_after_max_ms;
        const char *user_agent;      /* default "portlayer/0.1" */
        const char *ca_file;         /* PEM bundle; default: the system's */
} RegistryOptions;

/* Creates a client with copies of everything in opts (opts may be NULL for
 * all defaults). Returns 0; -EINVAL for an option out of range (the message
 * names it); -ENOMEM; -EIO when libcurl cannot be initialised. */
int registry_client_new(const RegistryOptions *opts, RegistryClient **ret, Error **err);

/* Frees c (NULL-safe); returns NULL. No call may be running on c, and no
 * source made from it may be used afterwards. */
RegistryClient *registry_client_free(RegistryClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(RegistryClient *, registry_client_free);
#define _cleanup_registry_client_ _cleanup_(registry_client_freep)

/* GETs the manifest or index `reference` (a tag or a "sha256:..." digest) of
 * ref's repository on ref's registry (ref's own tag and digest are ignored).
 * Returns 0 with *ret_data (malloc'd, NUL-terminated beyond *ret_size),
 * when ret_media_type is not NULL *ret_media_type (the Content-Type without
 * parameters, or NULL) and, when ret_digest is not NULL, *ret_digest (Docker-Content-Digest if the registry
 * sent a well-formed one, else NULL). Errors as listed at the top; -EINVAL
 * for a malformed reference. The bytes are not verified against a digest:
 * the caller does that. */
int registry_get_manifest(RegistryClient *c, const OciRef *ref, const char *reference, void **ret_data,
                          size_t *ret_size, char **ret_media_type, char **ret_digest, Error **err);

/* Streams the blobs descs[0..n) of ref's repository into sink (index i for
 * descs[i]), at most max_parallel at once on one thread (the caller's),
 * following redirects to storage hosts without forwarding credentials there.
 * A retry calls sink->restart(i) first. Returns 0 when every transfer ended
 * with a complete 200 response (the sink checks sizes and digests), else the
 * first error after stopping the other transfers: a sink error unchanged,
 * -EFBIG when the server announces more than descs[i].size bytes, or one of
 * the errors at the top. */
int registry_fetch_blobs(RegistryClient *c, const OciRef *ref, const OciDescriptor *descs, size_t n,
                         ImageBlobSink *sink, Error **err);

/* An ImageSource (kind "registry") for ref: get_manifest(NULL) fetches ref's
 * digest if it has one, else its tag; get_manifest(digest) that digest;
 * fetch_blobs as registry_fetch_blobs(); describe() is the canonical
 * reference. c must outlive the source. Returns 0, -ENOMEM. */
int registry_source_new(RegistryClient *c, const OciRef *ref, ImageSource **ret, Error **err);
