/* tls-trust.c: the trust list file (tls-util.h): "FINGERPRINT NAME" lines,
 * read whole (bounded) and rewritten atomically. */
#include "common/tls/tls-util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"

#define TRUST_FILE_MAX ((size_t) TLS_TRUST_MAX * (TLS_FINGERPRINT_HEX + TLS_NAME_MAX + 4) + 65536)

bool tls_name_valid(const char *name) {
        size_t n = strlen(name);
        return n >= 1 && n <= TLS_NAME_MAX &&
               strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-") == n;
}

static int parse_line(char *line, TlsTrustEntry *e) {
        char *save = NULL, *fp = strtok_r(line, " \t", &save), *name = strtok_r(NULL, " \t", &save);
        if (!fp || !name || strtok_r(NULL, " \t", &save) || tls_fingerprint_parse(fp, e->fingerprint) < 0 ||
            !tls_name_valid(name))
                return -EBADMSG;
        snprintf(e->name, sizeof e->name, "%s", name);
        return 0;
}

int tls_trust_load(const char *path, TlsTrustEntry **ret, size_t *ret_n, Error **err) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0, n = 0;
        int r = read_file_bounded(path, TRUST_FILE_MAX, &text, &len);
        if (r == -ENOENT) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (r < 0)
                return error_set_errno(err, -r, "read %s", path);
        _cleanup_free_ TlsTrustEntry *list = calloc(TLS_TRUST_MAX, sizeof *list);
        if (!list)
                return error_oom(err);
        unsigned lineno = 0;
        for (char *l = text, *next; l && *l; l = next) {
                next = strchr(l, '\n');
                if (next)
                        *next++ = 0;
                lineno++;
                l += strspn(l, " \t");
                if (!*l || *l == '#')
                        continue;
                if (n >= TLS_TRUST_MAX)
                        return error_set(err, E2BIG, "%s: more than %d entries", path, TLS_TRUST_MAX);
                if (parse_line(l, &list[n]) < 0)
                        return error_set(err, EBADMSG, "%s:%u: expected 'FINGERPRINT NAME'", path, lineno);
                n++;
        }
        *ret = TAKE_PTR(list);
        *ret_n = n;
        return 0;
}

const TlsTrustEntry *tls_trust_find(const TlsTrustEntry *list, size_t n, const char *fp) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(list[i].fingerprint, fp) == 0)
                        return &list[i];
        return NULL;
}

static int trust_save(const char *path, const TlsTrustEntry *list, size_t n, Error **err) {
        size_t size = 128 + n * (TLS_FINGERPRINT_HEX + TLS_NAME_MAX + 3), len = 0;
        _cleanup_free_ char *text = malloc(size);
        if (!text)
                return error_oom(err);
        len += (size_t) snprintf(text, size, "# portlayerd trust list: client certificate SHA-256, name\n");
        for (size_t i = 0; i < n; i++)
                len += (size_t) snprintf(text + len, size - len, "%s %s\n", list[i].fingerprint, list[i].name);
        int r = write_file_atomic(path, text, len, 0600);
        return r < 0 ? error_set_errno(err, -r, "write %s", path) : 0;
}

int tls_trust_add(const char *path, const char *fp, const char *name, Error **err) {
        if (!tls_name_valid(name))
                return error_set(err, EINVAL, "name '%.80s': use 1-64 of A-Z a-z 0-9 _ . @ -", name);
        _cleanup_free_ TlsTrustEntry *list = NULL;
        size_t n = 0;
        int r = tls_trust_load(path, &list, &n, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (strcmp(list[i].fingerprint, fp) == 0 || strcmp(list[i].name, name) == 0)
                        return error_set(err, EEXIST, "already trusted: %s %s", list[i].fingerprint, list[i].name);
        if (n >= TLS_TRUST_MAX)
                return error_set(err, E2BIG, "the trust list holds %d entries already", TLS_TRUST_MAX);
        TlsTrustEntry *nl = realloc(list, (n + 1) * sizeof *nl);
        if (!nl)
                return error_oom(err);
        list = nl;
        snprintf(list[n].fingerprint, sizeof list[n].fingerprint, "%s", fp);
        snprintf(list[n].name, sizeof list[n].name, "%s", name);
        return trust_save(path, list, n + 1, err);
}

int tls_trust_remove(const char *path, const char *key, TlsTrustEntry *ret_removed, Error **err) {
        _cleanup_free_ TlsTrustEntry *list = NULL;
        size_t n = 0;
        char fp[TLS_FINGERPRINT_HEX + 1];
        bool by_fp = tls_fingerprint_parse(key, fp) == 0;
        int r = tls_trust_load(path, &list, &n, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (!(by_fp && strcmp(list[i].fingerprint, fp) == 0) && strcmp(list[i].name, key) != 0)
                        continue;
                if (ret_removed)
                        *ret_removed = list[i];
                memmove(&list[i], &list[i + 1], (n - i - 1) * sizeof *list);
                return trust_save(path, list, n - 1, err);
        }
        return error_set(err, ENOENT, "no trusted certificate with the fingerprint or name '%.80s'", key);
}
