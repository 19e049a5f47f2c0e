/* tls-util.c: keys, self-signed certificates and fingerprints (tls-util.h). */
#include "common/tls/tls-util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free);

/* The PEM a writer put in a memory BIO, written atomically to path. */
static int bio_save(BIO *b, const char *path, mode_t mode, Error **err) {
        char *data = NULL;
        long len = BIO_get_mem_data(b, &data);
        int r = write_file_atomic(path, data, (size_t) len, mode);
        return r < 0 ? error_set_errno(err, -r, "write %s", path) : 0;
}

static int cert_build(EVP_PKEY *key, const char *cn, int64_t not_before_s, int64_t not_after_s, X509 **ret,
                      Error **err) {
        _cleanup_(X509_freep) X509 *x = X509_new();
        unsigned char serial[16];
        random_bytes(serial, sizeof serial);
        serial[0] &= 0x7f; /* a positive serial */
        BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
        bool ok = x && bn && X509_set_version(x, 2) && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
                  X509_gmtime_adj(X509_getm_notBefore(x), (long) not_before_s) &&
                  X509_gmtime_adj(X509_getm_notAfter(x), (long) not_after_s) && X509_set_pubkey(x, key);
        BN_free(bn);
        X509_NAME *name = ok ? X509_get_subject_name(x) : NULL;
        ok = ok && name &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) cn, -1, -1, 0) &&
             X509_set_issuer_name(x, name);
        if (ok) {
                X509V3_CTX ctx;
                X509V3_set_ctx_nodb(&ctx);
                X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
                X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
                ok = ext && X509_add_ext(x, ext, -1);
                X509_EXTENSION_free(ext);
        }
        if (!ok || !X509_sign(x, key, EVP_sha256()))
                return error_set(err, EIO, "cannot build a certificate for %s", cn);
        *ret = TAKE_PTR(x);
        return 0;
}

int tls_identity_ensure(const char *key_path, const char *cert_path, const char *cn, int64_t not_before_s,
                        int64_t not_after_s, Error **err) {
        bool have_key = access(key_path, F_OK) == 0, have_cert = access(cert_path, F_OK) == 0;
        if (have_key && have_cert)
                return 0;
        if (have_key || have_cert)
                return error_set(err, EEXIST, "%s exists without %s: move it away to make a new identity",
                                 have_key ? key_path : cert_path, have_key ? cert_path : key_path);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_EC_gen("P-256");
        if (!key)
                return error_set(err, EIO, "cannot make an EC P-256 key");
        _cleanup_(X509_freep) X509 *x = NULL;
        int r = cert_build(key, cn, not_before_s, not_after_s, &x, err);
        if (r < 0)
                return r;
        _cleanup_(BIO_freep) BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
        if (!kb || !cb || !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) || !PEM_write_bio_X509(cb, x))
                return error_oom(err);
        /* The key first: a certificate never exists without its key. */
        if ((r = bio_save(kb, key_path, 0600, err)) < 0 || (r = bio_save(cb, cert_path, 0644, err)) < 0)
                return r;
        return 1;
}

int tls_fingerprint_x509(X509 *x, char out[TLS_FINGERPRINT_HEX + 1]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        if (!X509_digest(x, EVP_sha256(), md, &len) || len != 32)
                return -EIO;
        for (unsigned i = 0; i < len; i++)
                snprintf(out + 2 * i, 3, "%02x", md[i]);
        return 0;
}

int tls_cert_parse_pem(const char *pem, size_t len, X509 **ret, char out[TLS_FINGERPRINT_HEX + 1], Error **err) {
        if (len > TLS_CERT_PEM_MAX)
                return error_set(err, EINVAL, "certificate larger than %u bytes", TLS_CERT_PEM_MAX);
        _cleanup_(BIO_freep) BIO *b = BIO_new_mem_buf(pem, (int) len);
        if (!b)
                return error_oom(err);
        _cleanup_(X509_freep) X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!x)
                return error_set(err, EINVAL, "not a PEM certificate");
        if (tls_fingerprint_x509(x, out) < 0)
                return error_set(err, EIO, "cannot hash the certificate");
        if (ret)
                *ret = TAKE_PTR(x);
        return 0;
}

int tls_cert_load(const char *path, X509 **ret, char out[TLS_FINGERPRINT_HEX + 1], Error **err) {
        _cleanup_free_ char *pem = NULL;
        size_t len = 0;
        int r = read_file_bounded(path, TLS_CERT_PEM_MAX, &pem, &len);
        if (r < 0)
                return error_set_errno(err, -r, "read %s", path);
        r = tls_cert_parse_pem(pem, len, ret, out, err);
        return r < 0 ? error_prefix(err, "%s", path) : 0;
}

int tls_fingerprint_parse(const char *s, char out[TLS_FINGERPRINT_HEX + 1]) {
        if (strncasecmp(s, "sha256:", 7) == 0)
                s += 7;
        size_t n = 0;
        for (; *s; s++) {
                if (*s == ':')
                        continue;
                if (!isxdigit((unsigned char) *s) || n >= TLS_FINGERPRINT_HEX)
                        return -EINVAL;
                out[n++] = (char) tolower((unsigned char) *s);
        }
        out[n] = 0;
        return n == TLS_FINGERPRINT_HEX ? 0 : -EINVAL;
}

int tls_cert_check_dates(X509 *x, Error **err) {
        if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0)
                return error_set(err, EKEYREJECTED, "the certificate is not valid yet");
        if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0)
                return error_set(err, EKEYEXPIRED, "the certificate has expired");
        return 0;
}
