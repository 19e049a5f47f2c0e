/* api-trust.c: the trust list of the TLS listener (docs/api.md, "Trust"):
 * list, add a client certificate, remove one. These calls are served on the
 * Unix socket only: over TLS they answer 403 whoever asks, so a remote
 * client, even a trusted one, can never widen the list (a stolen client key
 * stays one client until the owner of the host removes it). */
#include "api-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json/json-util.h"
#include "common/tls/tls-util.h"

static int local_only(HttpRequest *req, Error **err) {
        if (http_request_peer(req))
                return error_set(err, EPERM, "the trust list is managed on the daemon's Unix socket only");
        return 0;
}

static json_t *entry_json(const TlsTrustEntry *e) {
        return json_pack("{s:s, s:s}", "fingerprint", e->fingerprint, "name", e->name);
}

int api_trust_list(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_free_ TlsTrustEntry *list = NULL;
        size_t n = 0;
        int r = local_only(req, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&a->lock);
        r = tls_trust_load(a->trust_path, &list, &n, err);
        pthread_mutex_unlock(&a->lock);
        if (r < 0)
                return r;
        json_t *out = json_array();
        for (size_t i = 0; out && i < n; i++)
                if (json_array_append_new(out, entry_json(&list[i])) < 0)
                        out = (json_decref(out), NULL);
        return out ? api_reply_json(resp, 200, out) : error_oom(err);
}

/* The certificate's CN when it makes a valid name, else "client-" and the
 * fingerprint's first 12 digits. */
static void default_name(X509 *x, const char *fp, char out[TLS_NAME_MAX + 1]) {
        char cn[TLS_NAME_MAX + 1] = "";
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn) > 0 &&
            tls_name_valid(cn)) {
                snprintf(out, TLS_NAME_MAX + 1, "%s", cn);
                return;
        }
        snprintf(out, TLS_NAME_MAX + 1, "client-%.12s", fp);
}

int api_trust_add(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        static const char *const allowed[] = {"certificate", "name", NULL};
        _cleanup_json_ json_t *body = NULL;
        int r = local_only(req, err);
        if (r < 0 || (r = api_body(req, allowed, false, &body, err)) < 0)
                return r;
        const char *pem = json_string_value(json_object_get(body, "certificate"));
        const char *name = json_string_value(json_object_get(body, "name"));
        if (!pem)
                return error_set(err, EINVAL, "\"certificate\" (a PEM string) is required");
        if (json_object_get(body, "name") && !name)
                return error_set(err, EINVAL, "\"name\" must be a string");
        char fp[TLS_FINGERPRINT_HEX + 1], dn[TLS_NAME_MAX + 1];
        X509 *x = NULL;
        if ((r = tls_cert_parse_pem(pem, strlen(pem), &x, fp, err)) < 0)
                return r;
        default_name(x, fp, dn);
        r = tls_cert_check_dates(x, err);
        X509_free(x);
        if (r < 0) {
                (void) error_prefix(err, "refusing to trust it");
                return -EINVAL;
        }
        pthread_mutex_lock(&a->lock);
        r = tls_trust_add(a->trust_path, fp, name ? name : dn, err);
        pthread_mutex_unlock(&a->lock);
        if (r < 0)
                return r;
        TlsTrustEntry e = {0};
        snprintf(e.fingerprint, sizeof e.fingerprint, "%s", fp);
        snprintf(e.name, sizeof e.name, "%s", name ? name : dn);
        return api_reply_json(resp, 201, entry_json(&e));
}

int api_trust_remove(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        TlsTrustEntry e;
        int r = local_only(req, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&a->lock);
        r = tls_trust_remove(a->trust_path, p[0], &e, err);
        pthread_mutex_unlock(&a->lock);
        return r < 0 ? r : api_reply_json(resp, 200, entry_json(&e));
}
