/* registry-auth.c: answering a registry's 401.
 *
 * A registry says how it wants to be authenticated in WWW-Authenticate
 * (RFC 7235). For `Bearer realm=...,service=...,scope=...` (the
 * distribution token protocol) we GET the realm with our service and scope
 * (repository:<repo>:pull), with basic auth when credentials exist, read
 * "token" or "access_token" (and "expires_in") from the JSON answer, and
 * cache the token per registry and scope until shortly before it expires.
 * For `Basic` we send the credentials, if any, and remember that the
 * registry wants them, so later requests (and blob transfers) send them at
 * once. The cache is shared by every thread under a mutex and bounded
 * (REG_TOKEN_CACHE_MAX entries).
 *
 * Everything here comes from the network: the challenge is parsed with
 * bounds (its length, REG_CHALLENGE_PARAMS_MAX params), the token answer is
 * bounded (REG_TOKEN_BODY_MAX) and the token must be printable, without
 * spaces, at most REG_TOKEN_MAX bytes. Credentials never go to a plain-HTTP
 * realm unless the registry itself is reached over plain HTTP. */
#include "registry-internal.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/base/io-util.h"

struct RegToken {
        RegToken *next;
        char *key;     /* "registry|scope", or "registry|basic" */
        char *token;   /* NULL for the basic marker */
        bool with_credentials;
        uint64_t expires; /* now_usec() clock; USEC_INFINITY for basic */
};

#define BASIC_SCOPE "basic"

/* --- challenge parsing ------------------------------------------------------ */

static bool is_tchar(char ch) {
        return isalnum((unsigned char) ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static void skip_ows(const char **p) {
        while (**p == ' ' || **p == '\t')
                (*p)++;
}

static char *dup_lower(const char *s, size_t n) {
        char *d = strndup(s, n);
        for (size_t i = 0; d && i < n; i++)
                d[i] = (char) tolower((unsigned char) d[i]);
        return d;
}

/* A token or quoted-string at *p, unquoted into a malloc'd *ret. */
static int parse_value(const char **p, char **ret) {
        const char *s = *p;
        if (*s != '"') {
                const char *e = s;
                while (is_tchar(*e) || *e == '/' || *e == ':' || *e == '=') /* lenient: unquoted URLs */
                        e++;
                if (e == s)
                        return -EBADMSG;
                *ret = strndup(s, (size_t) (e - s));
                *p = e;
                return *ret ? 0 : -ENOMEM;
        }
        s++;
        size_t n = 0;
        _cleanup_free_ char *out = malloc(strlen(s) + 1);
        if (!out)
                return -ENOMEM;
        for (;; s++) {
                if (*s == 0)
                        return -EBADMSG; /* unterminated */
                if (*s == '"')
                        break;
                if (*s == '\\') {
                        s++;
                        if (*s == 0)
                                return -EBADMSG;
                }
                if ((unsigned char) *s < 0x20 && *s != '\t')
                        return -EBADMSG;
                out[n++] = *s;
        }
        out[n] = 0;
        *p = s + 1;
        *ret = TAKE_PTR(out);
        return 0;
}

void reg_challenge_clear(RegChallenge *ch) {
        free(ch->scheme);
        for (size_t i = 0; i < ch->n_params; i++) {
                free(ch->params[i].name);
                free(ch->params[i].value);
        }
        memset(ch, 0, sizeof *ch);
}

const char *reg_challenge_param(const RegChallenge *ch, const char *name) {
        for (size_t i = 0; i < ch->n_params; i++)
                if (strcmp(ch->params[i].name, name) == 0)
                        return ch->params[i].value;
        return NULL;
}

/* Parses the auth-params after a scheme into ch (ch == NULL: skip them).
 * Stops before the next challenge's scheme or at the end. */
static int parse_params(const char **pp, RegChallenge *ch) {
        const char *p = *pp;
        bool first = true;
        for (;;) {
                skip_ows(&p);
                if (*p == ',') {
                        p++;
                        first = false;
                        continue;
                }
                if (*p == 0)
                        break;
                const char *name = p;
                while (is_tchar(*p))
                        p++;
                if (p == name)
                        return -EBADMSG;
                size_t name_len = (size_t) (p - name);
                const char *after = p;
                skip_ows(&p);
                if (*p != '=') {
                        /* A token not followed by '=' starts the next challenge. */
                        p = name;
                        break;
                }
                if (first && (p[1] == '=' || p[1] == 0 || p[1] == ',')) {
                        /* token68 ("Negotiate abc=="): not something we use. */
                        p = after;
                        while (*p == '=')
                                p++;
                        first = false;
                        continue;
                }
                p++;
                skip_ows(&p);
                _cleanup_free_ char *value = NULL;
                int r = parse_value(&p, &value);
                if (r < 0)
                        return r;
                first = false;
                skip_ows(&p);
                if (*p != ',' && *p != 0)
                        return -EBADMSG;
                if (!ch)
                        continue;
                _cleanup_free_ char *lname = dup_lower(name, name_len);
                if (!lname)
                        return -ENOMEM;
                if (reg_challenge_param(ch, lname))
                        continue; /* the first of duplicates wins */
                if (ch->n_params >= REG_CHALLENGE_PARAMS_MAX)
                        return -E2BIG;
                ch->params[ch->n_params].name = TAKE_PTR(lname);
                ch->params[ch->n_params].value = TAKE_PTR(value);
                ch->n_params++;
        }
        *pp = p;
        return 0;
}

int reg_challenge_find(const char *header, const char *scheme, RegChallenge *ret) {
        memset(ret, 0, sizeof *ret);
        if (!header)
                return -ENOENT;
        if (strlen(header) >= REG_HEADER_VALUE_MAX)
                return -EBADMSG;
        const char *p = header;
        for (;;) {
                while (*p == ' ' || *p == '\t' || *p == ',')
                        p++;
                if (*p == 0)
                        return -ENOENT;
                const char *s = p;
                while (is_tchar(*p))
                        p++;
                if (p == s)
                        return -EBADMSG;
                _cleanup_free_ char *name = dup_lower(s, (size_t) (p - s));
                if (!name)
                        return -ENOMEM;
                if (*p != 0 && *p != ' ' && *p != '\t' && *p != ',')
                        return -EBADMSG;
                bool want = strcmp(name, scheme) == 0;
                if (want)
                        ret->scheme = TAKE_PTR(name);
                int r = parse_params(&p, want ? ret : NULL);
                if (r < 0 || want) {
                        if (r < 0)
                                reg_challenge_clear(ret);
                        return r;
                }
        }
}

/* --- credentials -------------------------------------------------------------- */

int reg_credentials_get(RegistryClient *c, const char *registry, char **ret_user, char **ret_pass, Error **err) {
        _cleanup_free_ char *u = NULL, *p = NULL;
        int r = 0;
        *ret_user = *ret_pass = NULL;
        for (size_t i = 0; i < c->n_credentials; i++)
                if (strcasecmp(c->credentials[i].registry, registry) == 0) {
                        u = strdup(c->credentials[i].username);
                        p = strdup(c->credentials[i].password);
                        if (!u || !p)
                                return error_oom(err);
                        r = 1;
                        break;
                }
        if (r == 0 && c->credentials_fn) {
                r = c->credentials_fn(registry, &u, &p, c->credentials_userdata);
                if (r < 0)
                        return error_set(err, -r, "credentials for registry %s: lookup failed", registry);
                if (r > 0 && (!u || !p))
                        return error_set(err, EINVAL, "credentials for registry %s: incomplete", registry);
        }
        if (r == 0)
                return 0;
        if (strlen(u) > REGISTRY_CREDENTIAL_MAX || strlen(p) > REGISTRY_CREDENTIAL_MAX || strchr(u, ':'))
                return error_set(err, EINVAL, "credentials for registry %s: user name or password not usable",
                                 registry);
        *ret_user = TAKE_PTR(u);
        *ret_pass = TAKE_PTR(p);
        return 1;
}

static void free_secret(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

/* --- the cache ----------------------------------------------------------------- */

static RegToken *token_free(RegToken *t) {
        if (t) {
                free(t->key);
                free_secret(t->token);
                free(t);
        }
        return NULL;
}

void reg_auth_cache_clear(RegistryClient *c) {
        while (c->tokens) {
                RegToken *next = c->tokens->next;
                token_free(c->tokens);
                c->tokens = next;
        }
        c->n_tokens = 0;
}

static char *cache_key(const char *registry, const char *scope) {
        char *k = NULL;
        return asprintf(&k, "%s|%s", registry, scope) < 0 ? NULL : k;
}

/* Called with auth_lock held. */
static RegToken *cache_find(RegistryClient *c, const char *key) {
        uint64_t now = now_usec();
        for (RegToken *t = c->tokens; t; t = t->next)
                if (strcmp(t->key, key) == 0 && t->expires > now)
                        return t;
        return NULL;
}

/* Takes key and token. Drops an entry with the same key, then expired ones
 * and finally the oldest when the cache is full. */
static void cache_put(RegistryClient *c, char *key, char *token, bool with_credentials, uint64_t expires) {
        RegToken *e = calloc(1, sizeof *e);
        if (!e) {
                free(key);
                free_secret(token);
                return;
        }
        *e = (RegToken){.key = key, .token = token, .with_credentials = with_credentials, .expires = expires};
        uint64_t now = now_usec();
        pthread_mutex_lock(&c->auth_lock);
        for (RegToken **pp = &c->tokens; *pp;) {
                RegToken *t = *pp;
                if (strcmp(t->key, key) == 0 || t->expires <= now) {
                        *pp = t->next;
                        token_free(t);
                        c->n_tokens--;
                } else
                        pp = &t->next;
        }
        if (c->n_tokens >= REG_TOKEN_CACHE_MAX) {
                RegToken **pp = &c->tokens;
                while ((*pp)->next)
                        pp = &(*pp)->next;
                *pp = token_free(*pp);
                c->n_tokens--;
        }
        e->next = c->tokens;
        c->tokens = e;
        c->n_tokens++;
        pthread_mutex_unlock(&c->auth_lock);
}

int reg_auth_apply(RegTransfer *t) {
        if (!t->registry)
                return 0;
        RegistryClient *c = t->c;
        _cleanup_free_ char *bearer_key = cache_key(t->registry, t->scope ? t->scope : "");
        _cleanup_free_ char *basic_key = cache_key(t->registry, BASIC_SCOPE);
        if (!bearer_key || !basic_key)
                return -ENOMEM;

        char *header = NULL;
        bool basic = false, with_credentials = false;
        pthread_mutex_lock(&c->auth_lock);
        RegToken *e = cache_find(c, bearer_key);
        if (e) {
                with_credentials = e->with_credentials;
                if (asprintf(&header, "Authorization: Bearer %s", e->token) < 0)
                        header = NULL;
        } else
                basic = cache_find(c, basic_key) != NULL;
        pthread_mutex_unlock(&c->auth_lock);

        if (e) {
                if (!header)
                        return -ENOMEM;
                struct curl_slist *l = curl_slist_append(t->headers, header);
                free_secret(header);
                if (!l)
                        return -ENOMEM;
                t->headers = l;
                t->sent_credentials = with_credentials;
                t->sent_token = true;
                return 0;
        }
        if (!basic)
                return 0;
        char *u = NULL, *p = NULL;
        int r = reg_credentials_get(c, t->registry, &u, &p, NULL);
        if (r <= 0)
                return 0; /* the 401 that follows says what is missing */
        CURLcode rc = curl_easy_setopt(t->easy, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
        if (rc == CURLE_OK)
                rc = curl_easy_setopt(t->easy, CURLOPT_USERNAME, u);
        if (rc == CURLE_OK)
                rc = curl_easy_setopt(t->easy, CURLOPT_PASSWORD, p);
        free(u);
        free_secret(p);
        if (rc != CURLE_OK)
                return -ENOMEM;
        t->sent_credentials = true;
        return 0;
}

/* --- answering a 401 ---------------------------------------------------------- */

static int token_from_json(const char *body, size_t len, char **ret_token, long *ret_expires_in) {
        json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(root)) {
                json_decref(root);
                return -EBADMSG;
        }
        const char *tok = json_string_value(json_object_get(root, "token"));
        if (!tok || !*tok)
                tok = json_string_value(json_object_get(root, "access_token"));
        json_t *exp = json_object_get(root, "expires_in");
        long expires_in = json_is_integer(exp) ? (long) MIN(MAX(json_integer_value(exp), 0), 86400) : 60;
        int r = -EBADMSG;
        if (tok && *tok && strlen(tok) <= REG_TOKEN_MAX) {
                r = 0;
                for (const char *s = tok; *s && r == 0; s++)
                        if (*s <= 0x20 || *s >= 0x7f)
                                r = -EBADMSG;
        }
        if (r == 0) {
                *ret_token = strdup(tok);
                r = *ret_token ? 0 : -ENOMEM;
        }
        *ret_expires_in = expires_in ? expires_in : 60;
        json_decref(root);
        return r;
}

static int fetch_token(RegTransfer *t, const RegChallenge *ch, Error **err) {
        RegistryClient *c = t->c;
        const char *realm = reg_challenge_param(ch, "realm");
        const char *service = reg_challenge_param(ch, "service");
        if (!realm)
                return error_set(err, EACCES, "GET %s: 401 with a Bearer challenge without realm", t->url);
        bool plain_ok = strncmp(t->url, "http://", 7) == 0;
        if (strncmp(realm, "https://", 8) != 0 && !(plain_ok && strncmp(realm, "http://", 7) == 0))
                return error_set(err, EACCES, "GET %s: 401: refusing token realm '%.200s' (must be https://)",
                                 t->url, realm);

        _cleanup_free_ char *user = NULL;
        char *pass = NULL;
        int have = reg_credentials_get(c, t->registry, &user, &pass, err);
        if (have < 0)
                return have;

        CURL *easy = reg_easy_get(c);
        char *esc_service = easy && service ? curl_easy_escape(easy, service, 0) : NULL;
        char *esc_scope = easy && t->scope ? curl_easy_escape(easy, t->scope, 0) : NULL;
        RegTransfer tt = {.c = c, .easy = easy, .basic_user = have ? user : NULL, .basic_pass = pass};
        int r = asprintf(&tt.url, "%s%s%s%s%s%s", realm, strchr(realm, '?') ? "&" : "?",
                         esc_service ? "service=" : "", esc_service ? esc_service : "",
                         esc_scope ? (esc_service ? "&scope=" : "scope=") : "", esc_scope ? esc_scope : "");
        curl_free(esc_service);
        curl_free(esc_scope);
        if (r < 0)
                tt.url = NULL;
        if (!easy || !tt.url || (service && !esc_service) || reg_transfer_setup(&tt, "application/json", REG_TOKEN_BODY_MAX, true) < 0) {
                reg_transfer_done(&tt);
                free_secret(pass);
                return error_set(err, ENOMEM, "registry %s: cannot set up the token request", t->registry);
        }
        _cleanup_error_ Error *e = NULL;
        r = reg_perform(&tt, &e);
        free_secret(pass);
        if (r < 0) {
                r = error_set(err, r == -EACCES || r == -ENOENT ? EACCES : -r, "registry %s: token request: %s%s",
                              t->registry, error_text(e),
                              r != -EACCES ? ""
                              : have       ? " (the credentials were rejected)"
                                           : " (no credentials are configured for this registry)");
                reg_transfer_done(&tt);
                return r;
        }
        char *token = NULL;
        long expires_in = 0;
        r = token_from_json(tt.buf ? tt.buf : "", tt.len, &token, &expires_in);
        if (r < 0) {
                r = error_set(err, r == -ENOMEM ? ENOMEM : EPROTO,
                              "registry %s: token request %s: no usable token in the answer", t->registry,
                              tt.url);
                reg_transfer_done(&tt);
                return r;
        }
        reg_transfer_done(&tt);

        /* Renew a little early so a token does not expire mid-request. */
        long margin = MIN(30L, expires_in / 2);
        char *key = cache_key(t->registry, t->scope ? t->scope : "");
        if (!key) {
                free_secret(token);
                return error_oom(err);
        }
        cache_put(c, key, token, have > 0, now_usec() + (uint64_t) (expires_in - margin) * USEC_PER_SEC);
        return 0;
}

int reg_auth_answer(RegTransfer *t, Error **err) {
        if (t->h.www_authenticate_truncated)
                return error_set(err, EACCES, "GET %s: 401 with an oversized WWW-Authenticate header", t->url);
        RegChallenge ch;
        int r = reg_challenge_find(t->h.www_authenticate, "bearer", &ch);
        if (r == 0) {
                r = fetch_token(t, &ch, err);
                reg_challenge_clear(&ch);
                return r;
        }
        if (r == -ENOENT)
                r = reg_challenge_find(t->h.www_authenticate, "basic", &ch);
        if (r == -ENOENT)
                return error_set(err, EACCES, "GET %s: 401 unauthorized: registry %s offers no usable challenge ('%.200s')",
                                 t->url, t->registry, t->h.www_authenticate);
        if (r < 0)
                return error_set(err, EACCES, "GET %s: 401 unauthorized: malformed WWW-Authenticate from registry %s",
                                 t->url, t->registry);
        reg_challenge_clear(&ch);

        _cleanup_free_ char *u = NULL;
        char *p = NULL;
        r = reg_credentials_get(t->c, t->registry, &u, &p, err);
        free_secret(p);
        if (r < 0)
                return r;
        if (r == 0)
                return error_set(err, EACCES,
                                 "GET %s: 401 unauthorized: registry %s requires credentials and none are configured for it",
                                 t->url, t->registry);
        char *key = cache_key(t->registry, BASIC_SCOPE);
        if (!key)
                return error_oom(err);
        cache_put(t->c, key, NULL, true, USEC_INFINITY);
        return 0;
}
