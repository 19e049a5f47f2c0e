/* oci-ref.h: image references ("busybox", "localhost:5000/a/b:tag",
 * "registry.example.com/x@sha256:...") parsed by Docker's reference grammar
 * (distribution/reference) and normalised the way the Docker CLI does.
 *
 * The first '/'-separated component is a registry when it contains '.' or
 * ':', equals "localhost", or has an uppercase letter; otherwise the registry
 * is docker.io. On docker.io a single-component repository gets "library/".
 * Without tag and digest the tag is "latest". Registry hosts may be DNS names,
 * IPv4 addresses or bracketed IPv6 addresses ("[::1]:5000"), with a port. */
#pragma once

#include <stdbool.h>

#include "common/base/error.h"
#include "common/base/macro.h"

#define OCI_REF_MAX 4096          /* whole input, in bytes */
#define OCI_REF_NAME_MAX 255      /* registry + '/' + repository (Docker's limit) */
#define OCI_REF_TAG_MAX 128
#define OCI_REF_DEFAULT_REGISTRY "docker.io"
#define OCI_REF_DEFAULT_TAG "latest"

typedef struct OciRef {
        char *registry;   /* "docker.io", "localhost:5000", "[::1]:5000"; never NULL */
        char *repository; /* "library/busybox", "a/b"; never NULL */
        char *tag;        /* "latest" by default; NULL when only a digest was given */
        char *digest;     /* "sha256:<64 hex>" or NULL */
} OciRef;

/* Parses s into a normalised reference. Returns 0; -ENAMETOOLONG when s
 * exceeds OCI_REF_MAX or the name OCI_REF_NAME_MAX; -EINVAL for any malformed
 * part (the message names it: registry, repository component, tag, digest);
 * -EOPNOTSUPP for a digest of an algorithm other than sha256; -ENOMEM. */
int oci_ref_parse(const char *s, OciRef **ret, Error **err);

/* Frees ref (NULL-safe); returns NULL. */
OciRef *oci_ref_free(OciRef *ref);
DEFINE_TRIVIAL_CLEANUP_FUNC(OciRef *, oci_ref_free);
#define _cleanup_oci_ref_ _cleanup_(oci_ref_freep)

/* Canonical form "registry/repository[:tag][@digest]" in *ret (caller frees).
 * Parsing the result gives the same reference. Returns 0 or -ENOMEM. */
int oci_ref_to_string(const OciRef *ref, char **ret);

/* Base URL of the registry's API, without a trailing '/': "http://" for
 * loopback registries (127.0.0.0/8, "localhost", "[::1]", any port),
 * "https://" otherwise unless insecure_override asks for "http://". docker.io
 * maps to "https://registry-1.docker.io" (http:// with insecure_override).
 * Returns 0 or -ENOMEM. */
int oci_ref_registry_url(const OciRef *ref, bool insecure_override, char **ret_base_url);
