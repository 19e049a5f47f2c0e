/* registry-internal.h: what the registry client's files share (registry.c:
 * the client, requests, retries and error tables; registry-auth.c:
 * challenges, credentials and the token cache; registry-blobs.c: parallel
 * blob transfers). Includes libcurl, so only those files and the registry
 * unit test include it. */
#pragma once

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "images/registry/registry.h"

#define REG_HEADER_VALUE_MAX 4096 /* one kept header value (WWW-Authenticate joins) */
#define REG_ERROR_BODY_MAX 8192   /* kept bytes of an error response */
#define REG_TOKEN_BODY_MAX (64 * 1024)
#define REG_TOKEN_MAX (16 * 1024)
#define REG_TOKEN_CACHE_MAX 256
#define REG_EASY_POOL_MAX 8
#define REG_CHALLENGE_PARAMS_MAX 16
#define REG_MAX_REDIRECTS 5

typedef struct RegToken RegToken;

struct RegistryClient {
        char **insecure;
        size_t n_insecure;
        RegistryCredential *credentials; /* strings owned */
        size_t n_credentials;
        RegistryCredentialsFn credentials_fn;
        void *credentials_userdata;
        long connect_timeout_ms, request_timeout_ms, low_speed_limit, low_speed_time_s;
        unsigned max_parallel;
        unsigned retries;
        unsigned retry_base_ms, retry_after_max_ms;
        char *user_agent, *ca_file;

        /* DNS and TLS sessions are shared by every handle. The connection
         * cache is not: libcurl does not support sharing connections between
         * concurrent threads, so single requests reuse connections through a
         * pool of idle easy handles and each blob fetch through its multi
         * handle. */
        CURLSH *share;
        pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
        pthread_mutex_t pool_lock;
        CURL *pool[REG_EASY_POOL_MAX];
        size_t n_pool;

        pthread_mutex_t auth_lock;
        RegToken *tokens; /* most recently added first */
        size_t n_tokens;
};

/* What we keep of a response's headers; reset at every status line, so after
 * redirects it describes the last response. */
typedef struct RegHeaders {
        long status;
        char content_type[256];
        char digest[128];
        char www_authenticate[REG_HEADER_VALUE_MAX];
        bool www_authenticate_truncated;
        long retry_after_s; /* -1 when absent or not a number of seconds */
} RegHeaders;

/* One HTTP exchange on one easy handle, for single requests and blobs. */
typedef struct RegTransfer {
        RegistryClient *c;
        CURL *easy;
        struct curl_slist *headers;
        char *url;
        const char *registry; /* for auth; NULL for token requests */
        const char *scope;
        const char *accept; /* Accept header value or NULL */
        const char *basic_user, *basic_pass; /* explicit basic auth (token requests) */
        RegHeaders h;
        char errbuf[CURL_ERROR_SIZE];
        char error_body[REG_ERROR_BODY_MAX];
        size_t error_body_len;
        uint64_t body_bytes; /* 2xx body bytes of this attempt */

        /* body into a buffer (max bytes) ... */
        char *buf;
        size_t len, cap, max;
        bool too_big;
        /* ... or into a sink */
        ImageBlobSink *sink;
        size_t index;
        int sink_r;
        Error *sink_err;

        unsigned attempt;   /* retries used */
        bool auth_answered; /* we already answered a 401 for this transfer */
        bool sent_credentials; /* this attempt carried credentials (basic, or a token got with them) */
        bool sent_token;       /* this attempt carried a bearer token */
        uint64_t not_before; /* now_usec() before which a retry waits */
} RegTransfer;

typedef enum RegOutcome {
        REG_OUTCOME_DONE,  /* 2xx, complete */
        REG_OUTCOME_RETRY, /* transient: try again after reg_retry_delay_ms() */
        REG_OUTCOME_AUTH,  /* 401 not yet answered: reg_auth_answer(), then again */
        REG_OUTCOME_FAIL,  /* error set */
} RegOutcome;

/* registry.c */
CURL *reg_easy_get(RegistryClient *c);
void reg_easy_put(RegistryClient *c, CURL *easy);
/* Prepares t->easy for GET t->url with auth from the cache; body to a buffer
 * (max > 0) or t->sink. Returns 0, -ENOMEM. */
int reg_transfer_setup(RegTransfer *t, const char *accept, uint64_t max_body, bool whole_timeout);
/* Resets the per-attempt state and applies auth; before every attempt.
 * Returns 0, -ENOMEM. */
int reg_transfer_reset_attempt(RegTransfer *t);
void reg_transfer_done(RegTransfer *t);
/* Judges a finished attempt; on FAIL sets *ret_errno (negative) and *err (a
 * sink's error is moved there unchanged). */
RegOutcome reg_transfer_outcome(RegTransfer *t, CURLcode rc, int *ret_errno, Error **err);
unsigned reg_retry_delay_ms(const RegTransfer *t);
/* Runs t on its easy handle to the end: retries, answers one 401. Returns 0
 * or the failure (error set). */
int reg_perform(RegTransfer *t, Error **err);
/* "repository:<repo>:pull" in *ret. Returns 0, -ENOMEM. */
int reg_scope(const OciRef *ref, char **ret);
int reg_errno_from_curl(CURLcode rc);
int reg_errno_from_http(long status);
/* Base URL for registry (http:// for loopback and insecure ones). */
int reg_base_url(RegistryClient *c, const OciRef *ref, char **ret);
bool reg_registry_insecure(RegistryClient *c, const char *registry);

/* registry-auth.c */
typedef struct RegChallengeParam {
        char *name;  /* lower-cased */
        char *value; /* unquoted */
} RegChallengeParam;

typedef struct RegChallenge {
        char *scheme; /* lower-cased: "bearer", "basic", ... */
        RegChallengeParam params[REG_CHALLENGE_PARAMS_MAX];
        size_t n_params;
} RegChallenge;

/* Parses a WWW-Authenticate value (RFC 7235: several challenges, each a
 * scheme and comma-separated auth-params, token or quoted-string values)
 * and returns the first challenge whose scheme is `scheme` (lower case).
 * Returns 0; -ENOENT when there is none; -EBADMSG for malformed syntax;
 * -E2BIG for too many params; -ENOMEM. */
int reg_challenge_find(const char *header, const char *scheme, RegChallenge *ret);
void reg_challenge_clear(RegChallenge *ch);
/* The value of param name (lower case) or NULL. */
const char *reg_challenge_param(const RegChallenge *ch, const char *name);

/* Credentials for registry: 1 with malloc'd strings, 0 none, < 0 error. */
int reg_credentials_get(RegistryClient *c, const char *registry, char **ret_user, char **ret_pass, Error **err);
/* Adds what the cache holds for (registry, scope) to the transfer: a bearer
 * header or basic credentials. Returns 0, -ENOMEM. */
int reg_auth_apply(RegTransfer *t);
/* Answers the 401 t just got: fetches a bearer token or enables basic auth
 * for the registry. Returns 0 (try again) or -EACCES / a transfer error. */
int reg_auth_answer(RegTransfer *t, Error **err);
void reg_auth_cache_clear(RegistryClient *c);
