/* digest.c: streaming SHA-256 over OpenSSL's EVP interface (see digest.h).
 *
 * The EVP context is the only OpenSSL object; it is created per digest and
 * freed with it. Verification reads in fixed chunks so memory stays flat
 * however large the layer, and stops as soon as more bytes than promised
 * arrive, so a lying peer cannot make us hash an endless stream. */
#include "images/oci/digest.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VERIFY_CHUNK (64 * 1024)
#define ALGORITHM_MAX 64

struct Digest {
        EVP_MD_CTX *ctx;
        bool finalised;
};

int digest_new(Digest **ret) {
        Digest *d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        d->ctx = EVP_MD_CTX_new();
        if (!d->ctx) {
                free(d);
                return -ENOMEM;
        }
        if (EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL) != 1) {
                digest_free(d);
                return -EIO;
        }
        *ret = d;
        return 0;
}

int digest_update(Digest *d, const void *data, size_t n) {
        if (d->finalised)
                return -EINVAL;
        if (n == 0)
                return 0;
        return EVP_DigestUpdate(d->ctx, data, n) == 1 ? 0 : -EIO;
}

int digest_final_hex(Digest *d, char **ret) {
        static const char hex[] = "0123456789abcdef";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;

        if (d->finalised)
                return -EINVAL;
        d->finalised = true;
        if (EVP_DigestFinal_ex(d->ctx, md, &len) != 1 || len * 2 != DIGEST_SHA256_HEX_LEN)
                return -EIO;

        char *s = malloc(DIGEST_STRING_LEN + 1);
        if (!s)
                return -ENOMEM;
        char *p = stpcpy(s, DIGEST_SHA256_PREFIX);
        for (unsigned int i = 0; i < len; i++) {
                *p++ = hex[md[i] >> 4];
                *p++ = hex[md[i] & 0xf];
        }
        *p = '\0';
        *ret = s;
        return 0;
}

Digest *digest_free(Digest *d) {
        if (!d)
                return NULL;
        EVP_MD_CTX_free(d->ctx);
        free(d);
        return NULL;
}

int digest_buffer_hex(const void *data, size_t n, char **ret) {
        _cleanup_digest_ Digest *d = NULL;
        int r = digest_new(&d);
        if (r < 0)
                return r;
        r = digest_update(d, data, n);
        if (r < 0)
                return r;
        return digest_final_hex(d, ret);
}

/* OCI image-spec: algorithm-component := [a-z0-9]+, separated by [+._-]. */
static bool algorithm_valid(const char *s, size_t n) {
        if (n == 0 || n > ALGORITHM_MAX)
                return false;
        bool need_alnum = true;
        for (size_t i = 0; i < n; i++) {
                bool alnum = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9');
                if (alnum)
                        need_alnum = false;
                else if (strchr("+._-", s[i]) && !need_alnum)
                        need_alnum = true;
                else
                        return false;
        }
        return !need_alnum;
}

/* OCI image-spec: encoded := [a-zA-Z0-9=_-]+ */
static bool encoded_valid(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      strchr("=_-", *s)))
                        return false;
        return true;
}

int digest_parse_check(const char *s) {
        if (!s)
                return -EINVAL;
        const char *colon = strchr(s, ':');
        if (!colon || !algorithm_valid(s, colon - s) || !encoded_valid(colon + 1))
                return -EINVAL;
        if ((size_t) (colon - s) != 6 || strncmp(s, "sha256", 6) != 0)
                return -EOPNOTSUPP;
        if (strlen(colon + 1) != DIGEST_SHA256_HEX_LEN)
                return -EINVAL;
        for (const char *p = colon + 1; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return -EINVAL;
        return 0;
}

/* Hashes fd to EOF into d, counting bytes, stopping once past limit. */
static int digest_fd(Digest *d, int fd, uint64_t limit, uint64_t *ret_size, Error **err) {
        _cleanup_free_ char *buf = malloc(VERIFY_CHUNK);
        uint64_t total = 0;

        if (!buf)
                return error_oom(err);
        for (;;) {
                ssize_t n = read(fd, buf, VERIFY_CHUNK);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return error_set_errno(err, errno, "read blob");
                if (n == 0)
                        break;
                total += (uint64_t) n;
                if (total > limit)
                        break;
                if (digest_update(d, buf, (size_t) n) < 0)
                        return error_set(err, EIO, "SHA-256 update failed");
        }
        *ret_size = total;
        return 0;
}

int digest_verify_fd(int fd, const char *expected, uint64_t expected_size, Error **err) {
        _cleanup_digest_ Digest *d = NULL;
        _cleanup_free_ char *got = NULL;
        uint64_t size = 0;

        int r = digest_parse_check(expected);
        if (r < 0)
                return error_set(err, -r, "invalid expected digest '%s'", expected ? expected : "(null)");
        r = digest_new(&d);
        if (r < 0)
                return error_set(err, -r, "cannot start SHA-256");
        r = digest_fd(d, fd, expected_size, &size, err);
        if (r < 0)
                return r;
        if (size != expected_size)
                return error_set(err, EBADMSG, "size mismatch: expected %" PRIu64 " bytes, got %s%" PRIu64,
                                 expected_size, size > expected_size ? "at least " : "", size);
        r = digest_final_hex(d, &got);
        if (r < 0)
                return error_set(err, -r, "cannot finish SHA-256");
        if (strcmp(got, expected) != 0)
                return error_set(err, EBADMSG, "digest mismatch: expected %s, got %s", expected, got);
        return 0;
}
