/* tls-util.h: the TLS material of the daemon's remote access (docs/operations.md,
 * "Remote access"), shared by portlayerd and plctl.
 *
 * Identities: an EC P-256 key (mode 0600) and a self-signed X.509 v3
 * certificate. Peers are not checked against a CA but pinned: a client by
 * the SHA-256 fingerprint of its certificate in the daemon's trust list, the
 * daemon by the certificate plctl stored when the remote was added. A
 * fingerprint is the SHA-256 of the certificate's DER, 64 lower-case hex
 * digits; input may carry a "sha256:" prefix, colons and upper case.
 *
 * The trust list is a text file, one "FINGERPRINT NAME" per line ('#' lines
 * are comments); names are [A-Za-z0-9_.@-]{1,64}, unique, as are
 * fingerprints. It is rewritten atomically (mode 0600); callers serialize
 * writers (the daemon holds a lock). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "common/base/error.h"

#define TLS_FINGERPRINT_HEX 64
#define TLS_NAME_MAX 64
#define TLS_TRUST_MAX 4096 /* entries in a trust list */
#define TLS_CERT_PEM_MAX (64u << 10)

/* Creates key_path (0600) and cert_path (0644), a new key and a certificate
 * for it with subject CN=cn, valid from not_before_s to not_after_s seconds
 * from now (negative: in the past), unless both files exist already.
 * Returns 1 when it made them, 0 when they were there; -EEXIST when only one
 * of them exists (a person must look). Both are written atomically. */
int tls_identity_ensure(const char *key_path, const char *cert_path, const char *cn, int64_t not_before_s,
                        int64_t not_after_s, Error **err);

/* out: the fingerprint of x (64 hex + NUL). 0 or -EIO. */
int tls_fingerprint_x509(X509 *x, char out[TLS_FINGERPRINT_HEX + 1]);
/* A PEM certificate (the first one of pem) parsed: *ret (optional, to
 * X509_free) and its fingerprint. -EINVAL when it is not one. */
int tls_cert_parse_pem(const char *pem, size_t len, X509 **ret, char out[TLS_FINGERPRINT_HEX + 1], Error **err);
/* The same for a file (at most TLS_CERT_PEM_MAX bytes). */
int tls_cert_load(const char *path, X509 **ret, char out[TLS_FINGERPRINT_HEX + 1], Error **err);
/* Normalizes a fingerprint as a person may type it. -EINVAL. */
int tls_fingerprint_parse(const char *s, char out[TLS_FINGERPRINT_HEX + 1]);
/* A certificate that is valid now: 0, or -EKEYEXPIRED (expired) /
 * -EKEYREJECTED (not yet valid) with a message. */
int tls_cert_check_dates(X509 *x, Error **err);

typedef struct TlsTrustEntry {
        char fingerprint[TLS_FINGERPRINT_HEX + 1];
        char name[TLS_NAME_MAX + 1];
} TlsTrustEntry;

bool tls_name_valid(const char *name);
/* The entries of the trust list at path (a missing file is an empty list);
 * *ret to free(). -EBADMSG names the bad line. */
int tls_trust_load(const char *path, TlsTrustEntry **ret, size_t *ret_n, Error **err);
/* The entry whose fingerprint is fp, or NULL. */
const TlsTrustEntry *tls_trust_find(const TlsTrustEntry *list, size_t n, const char *fp);
/* Adds an entry: -EEXIST when the fingerprint or the name is listed already,
 * -EINVAL for a bad name, -E2BIG past TLS_TRUST_MAX. */
int tls_trust_add(const char *path, const char *fp, const char *name, Error **err);
/* Removes the entry whose fingerprint (full, as tls_fingerprint_parse takes
 * it) or name is key; *ret_removed (optional) gets it. -ENOENT. */
int tls_trust_remove(const char *path, const char *key, TlsTrustEntry *ret_removed, Error **err);
