/* registry.c: the registry client object, one HTTP exchange (RegTransfer)
 * with its callbacks, the verdict on an attempt (done, retry, answer a 401,
 * fail), the tables that map libcurl codes and HTTP statuses to errno, and
 * the manifest GET built on them. Auth lives in registry-auth.c, parallel
 * blob transfers in registry-blobs.c.
 *
 * Bounds: a kept header value is at most REG_HEADER_VALUE_MAX bytes, an error
 * body REG_ERROR_BODY_MAX (the rest is dropped), a manifest OCI_JSON_MAX (the
 * transfer is aborted as soon as it is exceeded), redirects
 * REG_MAX_REDIRECTS. */
#include "registry-internal.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/base/io-util.h"
#include "images/oci/digest.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init_once(void) {
        curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *userdata) {
        RegistryClient *c = userdata;
        if ((int) data >= 0 && data < CURL_LOCK_DATA_LAST)
                pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *userdata) {
        RegistryClient *c = userdata;
        if ((int) data >= 0 && data < CURL_LOCK_DATA_LAST)
                pthread_mutex_unlock(&c->share_locks[data]);
}

static int strdup_opt(const char *s, char **ret) {
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int client_copy_options(RegistryClient *c, const RegistryOptions *o, Error **err) {
        if (o->max_parallel > REGISTRY_MAX_PARALLEL_LIMIT)
                return error_set(err, EINVAL, "registry client: max_parallel %u exceeds %d", o->max_parallel,
                                 REGISTRY_MAX_PARALLEL_LIMIT);
        if (o->retries > 100)
                return error_set(err, EINVAL, "registry client: %d retries is too many", o->retries);
        c->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : REGISTRY_DEFAULT_CONNECT_TIMEOUT_MS;
        c->request_timeout_ms = o->request_timeout_ms ? o->request_timeout_ms : REGISTRY_DEFAULT_REQUEST_TIMEOUT_MS;
        c->low_speed_limit = o->low_speed_limit ? o->low_speed_limit : REGISTRY_DEFAULT_LOW_SPEED_LIMIT;
        c->low_speed_time_s = o->low_speed_time_s ? o->low_speed_time_s : REGISTRY_DEFAULT_LOW_SPEED_TIME_S;
        c->max_parallel = o->max_parallel ? o->max_parallel : REGISTRY_DEFAULT_MAX_PARALLEL;
        c->retries = o->retries == 0 ? REGISTRY_DEFAULT_RETRIES : o->retries < 0 ? 0 : (unsigned) o->retries;
        c->retry_base_ms = o->retry_base_ms ? o->retry_base_ms : REGISTRY_DEFAULT_RETRY_BASE_MS;
        c->retry_after_max_ms = o->retry_after_max_ms ? o->retry_after_max_ms : REGISTRY_DEFAULT_RETRY_AFTER_MAX_MS;
        c->credentials_fn = o->credentials_fn;
        c->credentials_userdata = o->credentials_userdata;

        if (strdup_opt(o->user_agent ? o->user_agent : "portlayer/0.1", &c->user_agent) < 0 ||
            strdup_opt(o->ca_file, &c->ca_file) < 0)
                return error_oom(err);
        if (o->n_insecure_registries > 0) {
                c->insecure = calloc(o->n_insecure_registries, sizeof *c->insecure);
                if (!c->insecure)
                        return error_oom(err);
                for (size_t i = 0; i < o->n_insecure_registries; i++, c->n_insecure++)
                        if (!o->insecure_registries[i] || strdup_opt(o->insecure_registries[i], &c->insecure[i]) < 0)
                                return error_set(err, o->insecure_registries[i] ? ENOMEM : EINVAL,
                                                 "registry client: bad insecure registry %zu", i);
        }
        if (o->n_credentials > 0) {
                c->credentials = calloc(o->n_credentials, sizeof *c->credentials);
                if (!c->credentials)
                        return error_oom(err);
                for (size_t i = 0; i < o->n_credentials; i++, c->n_credentials++) {
                        const RegistryCredential *in = &o->credentials[i];
                        RegistryCredential *out = &c->credentials[i];
                        if (!in->registry || !in->username || !in->password)
                                return error_set(err, EINVAL, "registry client: credential %zu is incomplete", i);
                        if (strdup_opt(in->registry, (char **) &out->registry) < 0 ||
                            strdup_opt(in->username, (char **) &out->username) < 0 ||
                            strdup_opt(in->password, (char **) &out->password) < 0)
                                return error_oom(err);
                }
        }
        return 0;
}

int registry_client_new(const RegistryOptions *opts, RegistryClient **ret, Error **err) {
        static const RegistryOptions defaults = {0};
        pthread_once(&curl_once, curl_init_once);
        if (curl_init_result != CURLE_OK)
                return error_set(err, EIO, "registry client: curl_global_init: %s",
                                 curl_easy_strerror(curl_init_result));

        RegistryClient *c = calloc(1, sizeof *c);
        if (!c)
                return error_oom(err);
        for (size_t i = 0; i < ELEMENTSOF(c->share_locks); i++)
                pthread_mutex_init(&c->share_locks[i], NULL);
        pthread_mutex_init(&c->pool_lock, NULL);
        pthread_mutex_init(&c->auth_lock, NULL);

        int r = client_copy_options(c, opts ? opts : &defaults, err);
        if (r < 0) {
                registry_client_free(c);
                return r;
        }
        c->share = curl_share_init();
        if (!c->share || curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
            curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
            curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) != CURLSHE_OK ||
            curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
            curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
                registry_client_free(c);
                return error_set(err, EIO, "registry client: cannot set up the curl share handle");
        }
        *ret = c;
        return 0;
}

RegistryClient *registry_client_free(RegistryClient *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_pool; i++)
                curl_easy_cleanup(c->pool[i]);
        if (c->share)
                curl_share_cleanup(c->share);
        reg_auth_cache_clear(c);
        for (size_t i = 0; i < c->n_insecure; i++)
                free(c->insecure[i]);
        free(c->insecure);
        for (size_t i = 0; i < c->n_credentials; i++) {
                free((char *) c->credentials[i].registry);
                free((char *) c->credentials[i].username);
                if (c->credentials[i].password)
                        explicit_bzero((char *) c->credentials[i].password, strlen(c->credentials[i].password));
                free((char *) c->credentials[i].password);
        }
        free(c->credentials);
        free(c->user_agent);
        free(c->ca_file);
        for (size_t i = 0; i < ELEMENTSOF(c->share_locks); i++)
                pthread_mutex_destroy(&c->share_locks[i]);
        pthread_mutex_destroy(&c->pool_lock);
        pthread_mutex_destroy(&c->auth_lock);
        free(c);
        return NULL;
}

CURL *reg_easy_get(RegistryClient *c) {
        CURL *e = NULL;
        pthread_mutex_lock(&c->pool_lock);
        if (c->n_pool > 0)
                e = c->pool[--c->n_pool];
        pthread_mutex_unlock(&c->pool_lock);
        return e ? e : curl_easy_init();
}

void reg_easy_put(RegistryClient *c, CURL *easy) {
        if (!easy)
                return;
        /* Keeps the handle's live connections for the next request. */
        curl_easy_reset(easy);
        pthread_mutex_lock(&c->pool_lock);
        if (c->n_pool < REG_EASY_POOL_MAX) {
                c->pool[c->n_pool++] = easy;
                easy = NULL;
        }
        pthread_mutex_unlock(&c->pool_lock);
        if (easy)
                curl_easy_cleanup(easy);
}

bool reg_registry_insecure(RegistryClient *c, const char *registry) {
        for (size_t i = 0; i < c->n_insecure; i++)
                if (strcasecmp(c->insecure[i], registry) == 0)
                        return true;
        return false;
}

int reg_base_url(RegistryClient *c, const OciRef *ref, char **ret) {
        return oci_ref_registry_url(ref, reg_registry_insecure(c, ref->registry), ret);
}

/* --- callbacks ------------------------------------------------------------ */

static bool header_is(const char *line, size_t n, const char *name, const char **ret_value, size_t *ret_len) {
        size_t k = strlen(name);
        if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
                return false;
        const char *v = line + k + 1, *end = line + n;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
        *ret_value = v;
        *ret_len = (size_t) (end - v);
        return true;
}

static void copy_value(char *dst, size_t dst_size, const char *v, size_t n) {
        if (n >= dst_size) /* an oversized value is dropped, not truncated */
                n = 0;
        memcpy(dst, v, n);
        dst[n] = 0;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata) {
        RegTransfer *t = userdata;
        size_t n = size * nmemb;
        const char *v;
        size_t vn;

        if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
                /* A new response (the first, or after a redirect or a 100). */
                memset(&t->h, 0, sizeof t->h);
                t->h.retry_after_s = -1;
                t->error_body_len = 0;
                const char *sp = memchr(line, ' ', n);
                if (sp && (size_t) (sp - line) + 4 <= n && isdigit((unsigned char) sp[1]) &&
                    isdigit((unsigned char) sp[2]) && isdigit((unsigned char) sp[3]))
                        t->h.status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
                return n;
        }
        if (header_is(line, n, "content-type", &v, &vn)) {
                const char *semi = memchr(v, ';', vn);
                if (semi)
                        vn = (size_t) (semi - v);
                while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
                        vn--;
                copy_value(t->h.content_type, sizeof t->h.content_type, v, vn);
        } else if (header_is(line, n, "docker-content-digest", &v, &vn)) {
                copy_value(t->h.digest, sizeof t->h.digest, v, vn);
        } else if (header_is(line, n, "www-authenticate", &v, &vn)) {
                /* Several headers form one list of challenges. */
                size_t have = strlen(t->h.www_authenticate);
                size_t need = have + (have ? 2 : 0) + vn;
                if (need >= sizeof t->h.www_authenticate) {
                        t->h.www_authenticate_truncated = true;
                } else {
                        if (have)
                                memcpy(t->h.www_authenticate + have, ", ", 2), have += 2;
                        memcpy(t->h.www_authenticate + have, v, vn);
                        t->h.www_authenticate[have + vn] = 0;
                }
        } else if (header_is(line, n, "content-length", &v, &vn) && t->h.status >= 200 && t->h.status <= 299 &&
                   t->max > 0) {
                /* Only a 2xx body is the document or blob: a 401's or a
                 * redirect's may well be longer than a small blob. */
                uint64_t len = 0;
                bool over = false;
                for (size_t i = 0; i < vn && isdigit((unsigned char) v[i]) && !over; i++) {
                        len = len * 10 + (uint64_t) (v[i] - '0');
                        over = len > t->max;
                }
                if (over) {
                        t->too_big = true;
                        return 0; /* aborts the transfer before any byte is read */
                }
        } else if (header_is(line, n, "retry-after", &v, &vn)) {
                long s = 0;
                bool ok = vn > 0 && vn <= 6;
                for (size_t i = 0; ok && i < vn; i++) {
                        ok = isdigit((unsigned char) v[i]);
                        s = s * 10 + (v[i] - '0');
                }
                /* An HTTP-date is left to our own backoff. */
                t->h.retry_after_s = ok ? s : -1;
        }
        return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata) {
        RegTransfer *t = userdata;
        size_t n = size * nmemb;

        if (t->h.status < 200 || t->h.status > 299) {
                /* An error (or redirect) body: keep the start for the message. */
                size_t room = sizeof t->error_body - 1 - t->error_body_len;
                size_t k = MIN(n, room);
                memcpy(t->error_body + t->error_body_len, data, k);
                t->error_body_len += k;
                t->error_body[t->error_body_len] = 0;
                return n;
        }
        t->body_bytes += n;
        if (t->sink) {
                int r = t->sink->write(t->sink, t->index, data, n, &t->sink_err);
                if (r < 0) {
                        t->sink_r = r;
                        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
                }
                return n;
        }
        if (n > t->max - t->len) {
                t->too_big = true;
                return 0;
        }
        if (t->len + n + 1 > t->cap) {
                size_t cap = MAX(t->cap * 2, (size_t) 16384);
                cap = MIN(MAX(cap, t->len + n + 1), t->max + 1);
                char *b = realloc(t->buf, cap);
                if (!b) {
                        t->sink_r = error_oom(&t->sink_err);
                        return 0;
                }
                t->buf = b;
                t->cap = cap;
        }
        memcpy(t->buf + t->len, data, n);
        t->len += n;
        t->buf[t->len] = 0;
        return n;
}

/* --- one exchange ---------------------------------------------------------- */

int reg_transfer_setup(RegTransfer *t, const char *accept, uint64_t max_body, bool whole_timeout) {
        RegistryClient *c = t->c;
        CURL *e = t->easy;
        t->max = (size_t) max_body;
        t->accept = accept;
        t->h.retry_after_s = -1;

        CURLcode rc = CURLE_OK;
#define SET(opt, val)                                  \
        do {                                           \
                if (rc == CURLE_OK)                    \
                        rc = curl_easy_setopt(e, opt, val); \
        } while (0)
        SET(CURLOPT_URL, t->url);
        SET(CURLOPT_SHARE, c->share);
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_USERAGENT, c->user_agent);
        if (c->ca_file)
                SET(CURLOPT_CAINFO, c->ca_file);
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_FOLLOWLOCATION, 1L);
        SET(CURLOPT_MAXREDIRS, (long) REG_MAX_REDIRECTS);
        /* Credentials never follow a redirect to another host. */
        SET(CURLOPT_UNRESTRICTED_AUTH, 0L);
        SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
        SET(CURLOPT_LOW_SPEED_LIMIT, c->low_speed_limit);
        SET(CURLOPT_LOW_SPEED_TIME, c->low_speed_time_s);
        if (whole_timeout)
                SET(CURLOPT_TIMEOUT_MS, c->request_timeout_ms);
        SET(CURLOPT_TCP_KEEPALIVE, 1L);
        SET(CURLOPT_HEADERFUNCTION, on_header);
        SET(CURLOPT_HEADERDATA, t);
        SET(CURLOPT_WRITEFUNCTION, on_body);
        SET(CURLOPT_WRITEDATA, t);
        SET(CURLOPT_ERRORBUFFER, t->errbuf);
        SET(CURLOPT_PRIVATE, t);
        /* A 2xx Content-Length over the bound fails before any byte is
         * read (on_header; CURLOPT_MAXFILESIZE would also judge the body
         * of a 401 or a redirect). */
#undef SET
        return rc == CURLE_OK ? 0 : rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

int reg_transfer_reset_attempt(RegTransfer *t) {
        memset(&t->h, 0, sizeof t->h);
        t->h.retry_after_s = -1;
        t->errbuf[0] = 0;
        t->error_body_len = 0;
        t->error_body[0] = 0;
        t->body_bytes = 0;
        t->len = 0;
        t->too_big = false;
        t->sink_r = 0;
        t->sink_err = error_free(t->sink_err);
        t->sent_credentials = false;
        t->sent_token = false;

        curl_slist_free_all(t->headers);
        t->headers = NULL;
        if (t->accept) {
                _cleanup_free_ char *h = NULL;
                if (asprintf(&h, "Accept: %s", t->accept) < 0)
                        return -ENOMEM;
                struct curl_slist *l = curl_slist_append(t->headers, h);
                if (!l)
                        return -ENOMEM;
                t->headers = l;
        }
        if (t->basic_user) {
                if (curl_easy_setopt(t->easy, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC) != CURLE_OK ||
                    curl_easy_setopt(t->easy, CURLOPT_USERNAME, t->basic_user) != CURLE_OK ||
                    curl_easy_setopt(t->easy, CURLOPT_PASSWORD, t->basic_pass) != CURLE_OK)
                        return -ENOMEM;
                t->sent_credentials = true;
        }
        int r = reg_auth_apply(t);
        if (r < 0)
                return r;
        return curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers) == CURLE_OK ? 0 : -ENOMEM;
}

void reg_transfer_done(RegTransfer *t) {
        curl_slist_free_all(t->headers);
        t->headers = NULL;
        if (t->easy)
                reg_easy_put(t->c, t->easy);
        t->easy = NULL;
        free(t->buf);
        t->buf = NULL;
        free(t->url);
        t->url = NULL;
        t->sink_err = error_free(t->sink_err);
}

/* --- error tables ---------------------------------------------------------- */

int reg_errno_from_curl(CURLcode rc) {
        static const struct {
                CURLcode code;
                int err;
        } table[] = {
                {CURLE_OK, 0},
                {CURLE_OPERATION_TIMEDOUT, ETIMEDOUT},
                {CURLE_COULDNT_CONNECT, ECONNREFUSED},
                {CURLE_COULDNT_RESOLVE_HOST, EHOSTUNREACH},
                {CURLE_COULDNT_RESOLVE_PROXY, EHOSTUNREACH},
                {CURLE_SSL_CONNECT_ERROR, EPROTO},
                {CURLE_PEER_FAILED_VERIFICATION, EPROTO},
                {CURLE_SSL_CERTPROBLEM, EPROTO},
                {CURLE_SSL_CIPHER, EPROTO},
                {CURLE_SSL_CACERT_BADFILE, EPROTO},
                {CURLE_SSL_ENGINE_NOTFOUND, EPROTO},
                {CURLE_SSL_ENGINE_SETFAILED, EPROTO},
                {CURLE_SSL_ENGINE_INITFAILED, EPROTO},
                {CURLE_SSL_ISSUER_ERROR, EPROTO},
                {CURLE_SSL_CRL_BADFILE, EPROTO},
                {CURLE_SSL_PINNEDPUBKEYNOTMATCH, EPROTO},
                {CURLE_SSL_INVALIDCERTSTATUS, EPROTO},
                {CURLE_SSL_SHUTDOWN_FAILED, EPROTO},
                {CURLE_USE_SSL_FAILED, EPROTO},
                {CURLE_WEIRD_SERVER_REPLY, EPROTO},
                {CURLE_HTTP2, EPROTO},
                {CURLE_HTTP2_STREAM, ECONNRESET},
                {CURLE_HTTP3, EPROTO},
                {CURLE_BAD_CONTENT_ENCODING, EBADMSG},
                {CURLE_FILESIZE_EXCEEDED, EFBIG},
                {CURLE_TOO_MANY_REDIRECTS, ELOOP},
                {CURLE_URL_MALFORMAT, EINVAL},
                {CURLE_UNSUPPORTED_PROTOCOL, EPROTONOSUPPORT},
                {CURLE_OUT_OF_MEMORY, ENOMEM},
                {CURLE_ABORTED_BY_CALLBACK, ECANCELED},
                {CURLE_GOT_NOTHING, ECONNRESET},
                {CURLE_SEND_ERROR, ECONNRESET},
                {CURLE_RECV_ERROR, ECONNRESET},
                {CURLE_PARTIAL_FILE, ECONNRESET},
                {CURLE_WRITE_ERROR, EIO},
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (table[i].code == rc)
                        return table[i].err ? -table[i].err : 0;
        return -EIO;
}

int reg_errno_from_http(long status) {
        static const struct {
                long status;
                int err;
        } table[] = {
                {400, EINVAL},     {401, EACCES},        {403, EACCES}, {404, ENOENT}, {405, EOPNOTSUPP},
                {408, ETIMEDOUT},  {413, EFBIG},         {414, ENAMETOOLONG},          {416, ERANGE},
                {429, EAGAIN},     {501, EOPNOTSUPP},    {502, EAGAIN}, {503, EAGAIN}, {504, EAGAIN},
        };
        if (status >= 200 && status <= 299)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (table[i].status == status)
                        return -table[i].err;
        return status >= 300 && status <= 399 ? -EPROTO : -EIO;
}

static const char *http_reason(long status) {
        switch (status) {
        case 400: return "bad request";
        case 401: return "unauthorized";
        case 403: return "denied";
        case 404: return "not found";
        case 405: return "method not allowed";
        case 429: return "too many requests";
        case 500: return "internal server error";
        case 502: return "bad gateway";
        case 503: return "service unavailable";
        case 504: return "gateway timeout";
        default: return status >= 300 && status <= 399 ? "unexpected redirect" : "unexpected status";
        }
}

/* The registry's own message from an error body ({"errors":[{"message":...}]}),
 * printable ASCII only, at most 200 bytes; NULL when there is none. */
static char *registry_error_message(const RegTransfer *t) {
        if (t->error_body_len == 0)
                return NULL;
        json_t *root = json_loadb(t->error_body, t->error_body_len, JSON_REJECT_DUPLICATES, NULL);
        const char *m = NULL;
        json_t *errors = root ? json_object_get(root, "errors") : NULL;
        if (json_is_array(errors) && json_array_size(errors) > 0)
                m = json_string_value(json_object_get(json_array_get(errors, 0), "message"));
        char *out = NULL;
        if (m && *m) {
                size_t n = MIN(strlen(m), (size_t) 200);
                out = malloc(n + 1);
                for (size_t i = 0; out && i < n; i++)
                        out[i] = (m[i] >= 0x20 && m[i] < 0x7f) ? m[i] : '?';
                if (out)
                        out[n] = 0;
        }
        json_decref(root);
        return out;
}

static bool curl_retryable(CURLcode rc, const RegTransfer *t) {
        switch (rc) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
                return true;
        case CURLE_OPERATION_TIMEDOUT:
                /* A stall after progress is worth another try; a server that
                 * never answered is not: the timeout is the caller's bound. */
                return t->body_bytes > 0;
        default:
                return false;
        }
}

static bool status_retryable(long status) {
        return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

RegOutcome reg_transfer_outcome(RegTransfer *t, CURLcode rc, int *ret_errno, Error **err) {
        *ret_errno = 0;
        if (t->sink_r < 0) {
                /* The sink's verdict goes up unchanged. */
                *ret_errno = t->sink_r;
                if (err && !*err)
                        *err = TAKE_PTR(t->sink_err);
                else
                        t->sink_err = error_free(t->sink_err);
                return REG_OUTCOME_FAIL;
        }
        if (t->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
                *ret_errno = error_set(err, EFBIG, "GET %s: response larger than the %zu bytes expected", t->url, t->max);
                return REG_OUTCOME_FAIL;
        }
        if (rc != CURLE_OK) {
                if (curl_retryable(rc, t) && t->attempt < t->c->retries)
                        return REG_OUTCOME_RETRY;
                /* curl's error buffer says more than curl_easy_strerror(). */
                *ret_errno = error_set(err, -reg_errno_from_curl(rc), "GET %s: %s", t->url,
                          t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
                return REG_OUTCOME_FAIL;
        }
        long status = t->h.status;
        if (status >= 200 && status <= 299)
                return REG_OUTCOME_DONE;
        if (status == 401 && t->registry && !t->auth_answered)
                return REG_OUTCOME_AUTH;
        if (status_retryable(status) && t->attempt < t->c->retries)
                return REG_OUTCOME_RETRY;

        _cleanup_free_ char *m = registry_error_message(t);
        const char *what = m ? m : http_reason(status);
        if (status == 401 && t->registry)
                *ret_errno = error_set(err, EACCES, "GET %s: 401 %s: registry %s %s", t->url, what, t->registry,
                          t->sent_credentials ? "rejected the credentials"
                          : t->sent_token     ? "refused its anonymous token (credentials needed?)"
                                              : "requires credentials and none are configured for it");
        else
                *ret_errno = error_set(err, -reg_errno_from_http(status), "GET %s: %ld %s", t->url, status, what);
        return REG_OUTCOME_FAIL;
}

unsigned reg_retry_delay_ms(const RegTransfer *t) {
        const RegistryClient *c = t->c;
        if (t->h.retry_after_s >= 0)
                return (unsigned) MIN((uint64_t) t->h.retry_after_s * 1000, (uint64_t) c->retry_after_max_ms);
        uint64_t d = (uint64_t) c->retry_base_ms << MIN(t->attempt, 10u);
        d = MIN(d, (uint64_t) c->retry_after_max_ms);
        uint32_t jitter;
        random_bytes(&jitter, sizeof jitter);
        return (unsigned) (d + (d / 4 ? jitter % (d / 4) : 0));
}

int reg_perform(RegTransfer *t, Error **err) {
        for (;;) {
                int r = reg_transfer_reset_attempt(t);
                if (r < 0)
                        return error_set(err, -r, "GET %s: cannot prepare the request", t->url);
                CURLcode rc = curl_easy_perform(t->easy);
                switch (reg_transfer_outcome(t, rc, &r, err)) {
                case REG_OUTCOME_DONE:
                        return 0;
                case REG_OUTCOME_RETRY: {
                        unsigned ms = reg_retry_delay_ms(t);
                        t->attempt++;
                        nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L},
                                  NULL);
                        break;
                }
                case REG_OUTCOME_AUTH:
                        r = reg_auth_answer(t, err);
                        if (r < 0)
                                return r;
                        t->auth_answered = true;
                        break;
                case REG_OUTCOME_FAIL:
                        return r;
                }
        }
}

/* --- manifests ------------------------------------------------------------- */

static bool tag_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > OCI_REF_TAG_MAX || !(isalnum((unsigned char) s[0]) || s[0] == '_'))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!isalnum((unsigned char) s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
                        return false;
        return true;
}

int reg_scope(const OciRef *ref, char **ret) {
        return asprintf(ret, "repository:%s:pull", ref->repository) < 0 ? -ENOMEM : 0;
}

int registry_get_manifest(RegistryClient *c, const OciRef *ref, const char *reference, void **ret_data,
                          size_t *ret_size, char **ret_media_type, char **ret_digest, Error **err) {
        if (!reference || (digest_parse_check(reference) < 0 && !tag_valid(reference)))
                return error_set(err, EINVAL, "manifest reference '%s' is neither a tag nor a sha256 digest",
                                 reference ? reference : "(null)");
        _cleanup_free_ char *base = NULL, *scope = NULL;
        if (reg_base_url(c, ref, &base) < 0 || reg_scope(ref, &scope) < 0)
                return error_oom(err);

        RegTransfer t = {.c = c, .registry = ref->registry, .scope = scope};
        int r;
        if (asprintf(&t.url, "%s/v2/%s/manifests/%s", base, ref->repository, reference) < 0) {
                t.url = NULL;
                return error_oom(err);
        }
        t.easy = reg_easy_get(c);
        if (!t.easy || reg_transfer_setup(&t, OCI_MANIFEST_ACCEPT, OCI_JSON_MAX, true) < 0) {
                r = error_set(err, ENOMEM, "GET %s: cannot set up the request", t.url);
                goto out;
        }
        r = reg_perform(&t, err);
        if (r < 0)
                goto out;
        if (!t.buf && !(t.buf = calloc(1, 1))) {
                r = error_oom(err);
                goto out;
        }
        char *mt = NULL, *dg = NULL;
        if ((ret_media_type && t.h.content_type[0] && !(mt = strdup(t.h.content_type))) ||
            (ret_digest && digest_parse_check(t.h.digest) == 0 && !(dg = strdup(t.h.digest)))) {
                free(mt);
                r = error_oom(err);
                goto out;
        }
        *ret_data = TAKE_PTR(t.buf);
        *ret_size = t.len;
        if (ret_media_type)
                *ret_media_type = mt;
        if (ret_digest)
                *ret_digest = dg;
        r = 0;
out:
        reg_transfer_done(&t);
        return r;
}
