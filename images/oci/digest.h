/* digest.h: content digests for the image store.
 *
 * Every blob a registry hands us (manifest, config, layer) is named by its
 * SHA-256 digest, written "sha256:<64 lowercase hex>". This module computes
 * such digests in a streaming fashion (layers are large and arrive in pieces),
 * checks the textual form, and verifies a file against an expected digest and
 * size. Other algorithms are recognised as such and refused with EOPNOTSUPP. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/base/error.h"
#include "common/base/macro.h"

#define DIGEST_SHA256_PREFIX "sha256:"
#define DIGEST_SHA256_HEX_LEN 64
/* strlen("sha256:") + 64 */
#define DIGEST_STRING_LEN (sizeof(DIGEST_SHA256_PREFIX) - 1 + DIGEST_SHA256_HEX_LEN)

typedef struct Digest Digest;

/* Starts a SHA-256 computation. Returns 0, or -ENOMEM (or -EIO when OpenSSL
 * refuses to initialise). */
int digest_new(Digest **ret);

/* Feeds n bytes. Returns 0, or -EIO on an OpenSSL failure or when the digest
 * was already finalised (-EINVAL). */
int digest_update(Digest *d, const void *data, size_t n);

/* Finishes the computation and returns "sha256:<hex>" in *ret (caller frees).
 * The Digest cannot be updated afterwards. Returns 0, -EINVAL when already
 * finalised, -ENOMEM or -EIO. */
int digest_final_hex(Digest *d, char **ret);

/* Frees d (NULL-safe); returns NULL. */
Digest *digest_free(Digest *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(Digest *, digest_free);
#define _cleanup_digest_ _cleanup_(digest_freep)

/* One-shot: digest of a buffer as "sha256:<hex>" in *ret (caller frees). */
int digest_buffer_hex(const void *data, size_t n, char **ret);

/* Checks the textual form of a digest. Returns 0 for "sha256:" followed by
 * exactly 64 lowercase hex digits; -EOPNOTSUPP for a well-formed digest of
 * another algorithm ("sha512:...", per the OCI grammar
 * algorithm ":" encoded); -EINVAL for anything else (NULL included). */
int digest_parse_check(const char *s);

/* Reads fd from its current offset to EOF and checks that exactly
 * expected_size bytes with digest `expected` came out. Returns 0; -EBADMSG
 * with "digest mismatch: expected X, got Y" or "size mismatch: expected N
 * bytes, got M" (reading stops as soon as the size is exceeded); -EINVAL for
 * a malformed expected digest, -EOPNOTSUPP for another algorithm; a negative
 * errno from read(). */
int digest_verify_fd(int fd, const char *expected, uint64_t expected_size, Error **err);
