/* test-registry-auth.c: the registry client (images/registry/registry.h) against a
 * scripted HTTP server inside the test (plain sockets, a thread per
 * connection), for what the real registry cannot be made to do.
 *
 * Covers: the WWW-Authenticate parser (several challenges, quoted strings
 * with commas and escapes, unquoted values, case, token68, malformed and
 * oversized input); retries on 503 honouring Retry-After up to its cap, then
 * success; retries exhausted (-EAGAIN, request count = 1 + retries) and no
 * retries; bearer tokens: challenge, token GET with service and scope, the
 * token sent, cached (one token request for two manifests), "access_token"
 * with basic auth on the token request, no credentials (-EACCES naming the
 * registry), a token the registry refuses (-EACCES); blobs behind a bearer
 * token and behind basic auth redirected to another host name ("localhost"),
 * which must not see the Authorization header; a truncated blob retried
 * after sink->restart(); a chunked blob longer than its descriptor (the
 * sink's -EFBIG passed up unchanged); a manifest over OCI_JSON_MAX (-EFBIG,
 * chunked and with Content-Length); a sink that cancels (-ECANCELED); and the
 * parallelism bound (never more than max_parallel blob requests at once). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "images/oci/digest.h"
#include "registry-internal.h"

/* --- a scripted HTTP server ------------------------------------------------- */

typedef struct Req {
        char path[1024];
        char auth[1024]; /* Authorization value, "" when absent */
} Req;

typedef enum Mode {
        MODE_RETRY,        /* 503 (Retry-After 100, capped), 503, then the manifest */
        MODE_ALWAYS_503,
        MODE_BEARER,       /* manifests and blobs need "Bearer tok-1"; blobs redirect to localhost */
        MODE_BEARER_REFUSE, /* the token is issued but never accepted */
        MODE_BASIC,        /* Basic auth u:p; blobs redirect to localhost */
        MODE_TRUNCATE,     /* a blob is cut short the first time */
        MODE_CHUNKED_LONG, /* blobs chunked, 1000 bytes more than asked for */
        MODE_BIG_MANIFEST,
        MODE_SLOW_BLOBS,   /* blobs answered after 150 ms; counts concurrency */
        MODE_SMALL_BEARER, /* like MODE_BEARER, but the blob is small_blob (smaller than the 401's
                            * and the 307's bodies), redirected with a body */
} Mode;

typedef struct Server {
        int lfd, port;
        int stop[2];
        pthread_t thread;
        Mode mode;
        bool token_needs_basic;
        bool access_token; /* answer "access_token" instead of "token" */
        bool big_with_length;
        pthread_mutex_t lock;
        int hits_manifest, hits_token, hits_blob, hits_storage;
        bool storage_saw_auth;
        char last_token_query[1024];
        int active, max_active;
        atomic_int live_conns;
} Server;

static Server srv;

#define BLOB_SIZE 100000
static unsigned char blob_bytes[BLOB_SIZE];
static unsigned char blob_longer[BLOB_SIZE + 1000]; /* blob_bytes and 1000 more */
static char blob_digest[80];
static const char small_blob[] = "tiny blob"; /* 9 bytes, like a 32-byte empty gzip layer */
static char small_digest[80];
static const char manifest_body[] = "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MEDIA_TYPE_MANIFEST "\"}";

static void send_all(int fd, const void *data, size_t n) {
        const char *p = data;
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
                if (k <= 0)
                        return;
                p += k;
                n -= (size_t) k;
        }
}

static void respond(int fd, int status, const char *headers, const void *body, size_t n) {
        char head[2048];
        int k = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                         status, n, headers ? headers : "");
        send_all(fd, head, (size_t) k);
        send_all(fd, body, n);
}

static void respond_chunked(int fd, const void *body, size_t n) {
        const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        send_all(fd, head, sizeof head - 1);
        for (size_t off = 0; off < n; off += 8192) {
                size_t k = MIN((size_t) 8192, n - off);
                char line[32];
                int m = snprintf(line, sizeof line, "%zx\r\n", k);
                send_all(fd, line, (size_t) m);
                send_all(fd, (const char *) body + off, k);
                send_all(fd, "\r\n", 2);
        }
        send_all(fd, "0\r\n\r\n", 5);
}

static void challenge_bearer(Server *s, int fd) {
        char h[512];
        snprintf(h, sizeof h,
                 "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:%d/token\",service=\"fake registry\","
                 "scope=\"repository:r:pull\"\r\nContent-Type: application/json\r\n",
                 s->port);
        const char body[] = "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}";
        respond(fd, 401, h, body, sizeof body - 1);
}

static void serve_blob(Server *s, Mode mode, int blob_hits, int fd, const Req *rq) {
        char h[256];
        bool localhost_storage = mode == MODE_BEARER || mode == MODE_BASIC;
        if (localhost_storage) {
                snprintf(h, sizeof h, "Location: http://localhost:%d/storage/%s\r\n", s->port,
                         rq->path + strlen("/v2/r/blobs/"));
                respond(fd, 307, h, "", 0);
        } else if (mode == MODE_TRUNCATE && blob_hits == 1) {
                char head[128];
                int k = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BLOB_SIZE);
                send_all(fd, head, (size_t) k);
                send_all(fd, blob_bytes, BLOB_SIZE / 2);
        } else if (mode == MODE_CHUNKED_LONG) {
                respond_chunked(fd, blob_longer, sizeof blob_longer);
        } else {
                respond(fd, 200, "Content-Type: application/octet-stream\r\n", blob_bytes, BLOB_SIZE);
        }
}

static void handle(Server *s, int fd, const Req *rq) {
        bool is_manifest = strncmp(rq->path, "/v2/r/manifests/", 16) == 0;
        bool is_blob = strncmp(rq->path, "/v2/r/blobs/", 12) == 0;
        bool is_token = strncmp(rq->path, "/token", 6) == 0;
        bool is_storage = strncmp(rq->path, "/storage/", 9) == 0;
        pthread_mutex_lock(&s->lock);
        s->hits_manifest += is_manifest;
        s->hits_blob += is_blob;
        s->hits_token += is_token;
        s->hits_storage += is_storage;
        if (is_storage && rq->auth[0])
                s->storage_saw_auth = true;
        if (is_token)
                snprintf(s->last_token_query, sizeof s->last_token_query, "%s", rq->path);
        int hits = s->hits_manifest, blob_hits = s->hits_blob;
        Mode mode = s->mode;
        bool needs_basic = s->token_needs_basic, access_token = s->access_token, with_length = s->big_with_length;
        pthread_mutex_unlock(&s->lock);

        if (is_token) {
                if (needs_basic && strcmp(rq->auth, "Basic dTpw") != 0) { /* base64("u:p") */
                        respond(fd, 401, "", "{}", 2);
                        return;
                }
                const char *body = access_token ? "{\"access_token\":\"tok-1\",\"expires_in\":300}"
                                                   : "{\"token\":\"tok-1\",\"expires_in\":300}";
                respond(fd, 200, "Content-Type: application/json\r\n", body, strlen(body));
                return;
        }
        if (is_storage) {
                if (mode == MODE_SMALL_BEARER)
                        respond(fd, 200, "", small_blob, sizeof small_blob - 1);
                else
                        respond(fd, 200, "", blob_bytes, BLOB_SIZE);
                return;
        }
        switch (mode) {
        case MODE_RETRY:
                if (hits <= 2) {
                        respond(fd, 503, hits == 1 ? "Retry-After: 100\r\n" : "", "", 0);
                        return;
                }
                break;
        case MODE_ALWAYS_503:
                respond(fd, 503, "", "", 0);
                return;
        case MODE_SMALL_BEARER:
                if (strcmp(rq->auth, "Bearer tok-1") != 0) {
                        challenge_bearer(s, fd);
                        return;
                }
                if (is_blob) {
                        /* As a registry with object storage answers: a 307 with a short HTML body. */
                        char h[256];
                        snprintf(h, sizeof h, "Location: http://localhost:%d/storage/x\r\nContent-Type: text/html\r\n",
                                 s->port);
                        const char body[] = "<a href=\"http://localhost/storage/x\">Temporary Redirect</a>.\n";
                        respond(fd, 307, h, body, sizeof body - 1);
                        return;
                }
                break;
        case MODE_BEARER:
        case MODE_BEARER_REFUSE:
                if (mode == MODE_BEARER_REFUSE || strcmp(rq->auth, "Bearer tok-1") != 0) {
                        challenge_bearer(s, fd);
                        return;
                }
                break;
        case MODE_BASIC:
                if (strcmp(rq->auth, "Basic dTpw") != 0) {
                        respond(fd, 401, "WWW-Authenticate: Basic realm=\"fake\"\r\n", "", 0);
                        return;
                }
                break;
        case MODE_BIG_MANIFEST:
                if (is_manifest) {
                        size_t n = OCI_JSON_MAX + 10;
                        char *big = calloc(1, n);
                        memset(big, ' ', n);
                        if (with_length)
                                respond(fd, 200, "", big, n);
                        else
                                respond_chunked(fd, big, n);
                        free(big);
                        return;
                }
                break;
        default:
                break;
        }
        if (is_manifest) {
                char h[256];
                snprintf(h, sizeof h, "Content-Type: %s; charset=utf-8\r\nDocker-Content-Digest: %s\r\n",
                         OCI_MEDIA_TYPE_MANIFEST, blob_digest);
                respond(fd, 200, h, manifest_body, sizeof manifest_body - 1);
        } else if (is_blob) {
                pthread_mutex_lock(&s->lock);
                s->active++;
                s->max_active = MAX(s->max_active, s->active);
                pthread_mutex_unlock(&s->lock);
                if (mode == MODE_SLOW_BLOBS)
                        nanosleep(&(struct timespec){.tv_nsec = 150 * 1000 * 1000}, NULL);
                serve_blob(s, mode, blob_hits, fd, rq);
                pthread_mutex_lock(&s->lock);
                s->active--;
                pthread_mutex_unlock(&s->lock);
        } else {
                respond(fd, 404, "", "", 0);
        }
}

typedef struct Conn {
        Server *s;
        int fd;
} Conn;

static void *conn_main(void *arg) {
        Conn *c = arg;
        char buf[16384];
        size_t len = 0;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        while (len < sizeof buf - 1 && !memmem(buf, len, "\r\n\r\n", 4) && poll(&p, 1, 5000) > 0) {
                ssize_t k = recv(c->fd, buf + len, sizeof buf - 1 - len, 0);
                if (k <= 0)
                        break;
                len += (size_t) k;
        }
        buf[len] = 0;
        Req rq = {{0}};
        char *sp = strchr(buf, ' ');
        if (sp && sscanf(sp + 1, "%1023s", rq.path) == 1) {
                char *a = strcasestr(buf, "\r\nAuthorization: ");
                if (a) {
                        a += strlen("\r\nAuthorization: ");
                        size_t n = strcspn(a, "\r\n");
                        snprintf(rq.auth, sizeof rq.auth, "%.*s", (int) MIN(n, sizeof rq.auth - 1), a);
                }
                handle(c->s, c->fd, &rq);
        }
        shutdown(c->fd, SHUT_WR);
        close(c->fd);
        atomic_fetch_sub(&c->s->live_conns, 1);
        free(c);
        return NULL;
}

static void *server_main(void *arg) {
        Server *s = arg;
        for (;;) {
                struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN}, {.fd = s->stop[0], .events = POLLIN}};
                if (poll(p, 2, -1) < 0 || p[1].revents)
                        break;
                int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                Conn *c = malloc(sizeof *c);
                *c = (Conn){.s = s, .fd = fd};
                atomic_fetch_add(&s->live_conns, 1);
                pthread_t t;
                if (pthread_create(&t, NULL, conn_main, c) == 0)
                        pthread_detach(t);
                else {
                        close(fd);
                        free(c);
                        atomic_fetch_sub(&s->live_conns, 1);
                }
        }
        return NULL;
}

static int server_start(void **state) {
        memset(&srv, 0, sizeof srv);
        pthread_mutex_init(&srv.lock, NULL);
        srv.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        if (srv.lfd < 0 || bind(srv.lfd, (struct sockaddr *) &a, sizeof a) < 0 || listen(srv.lfd, 64) < 0 ||
            getsockname(srv.lfd, (struct sockaddr *) &a, &len) < 0 || pipe2(srv.stop, O_CLOEXEC) < 0)
                return -1;
        srv.port = ntohs(a.sin_port);
        return pthread_create(&srv.thread, NULL, server_main, &srv) == 0 ? 0 : -1;
}

static int server_stop(void **state) {
        if (write(srv.stop[1], "x", 1) != 1)
                return -1;
        pthread_join(srv.thread, NULL);
        for (int i = 0; i < 500 && atomic_load(&srv.live_conns) > 0; i++)
                nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
        close(srv.lfd);
        close(srv.stop[0]);
        close(srv.stop[1]);
        pthread_mutex_destroy(&srv.lock);
        return 0;
}

/* --- helpers ------------------------------------------------------------------ */

static RegistryClient *client(RegistryOptions o, bool with_creds) {
        static char host[64];
        static RegistryCredential cred;
        snprintf(host, sizeof host, "127.0.0.1:%d", srv.port);
        cred = (RegistryCredential){.registry = host, .username = "u", .password = "p"};
        if (with_creds) {
                o.credentials = &cred;
                o.n_credentials = 1;
        }
        if (!o.retry_base_ms)
                o.retry_base_ms = 20;
        RegistryClient *c = NULL;
        assert_int_equal(registry_client_new(&o, &c, NULL), 0);
        return c;
}

static OciRef *ref_r(void) {
        char s[64];
        snprintf(s, sizeof s, "127.0.0.1:%d/r:latest", srv.port);
        OciRef *ref = NULL;
        assert_int_equal(oci_ref_parse(s, &ref, NULL), 0);
        return ref;
}

static int get_manifest(RegistryClient *c, Error **err) {
        _cleanup_oci_ref_ OciRef *ref = ref_r();
        void *data = NULL;
        size_t size = 0;
        char *type = NULL, *dg = NULL;
        int r = registry_get_manifest(c, ref, "latest", &data, &size, &type, &dg, err);
        if (r == 0) {
                assert_int_equal(size, sizeof manifest_body - 1);
                assert_memory_equal(data, manifest_body, size);
                assert_string_equal(type, OCI_MEDIA_TYPE_MANIFEST);
                assert_string_equal(dg, blob_digest);
        }
        free(data);
        free(type);
        free(dg);
        return r;
}

/* Reads a server counter under its lock (connection threads may still run). */
static int counter(const int *p) {
        pthread_mutex_lock(&srv.lock);
        int v = *p;
        pthread_mutex_unlock(&srv.lock);
        return v;
}

static bool counter_bool(const bool *p) {
        pthread_mutex_lock(&srv.lock);
        bool v = *p;
        pthread_mutex_unlock(&srv.lock);
        return v;
}

static void note(const Error *e) {
        fprintf(stderr, "    (expected) %s\n", error_text(e));
}

typedef struct Sink {
        ImageBlobSink base;
        Digest *d[8];
        uint64_t n[8], size;
        int restarts[8];
        int cancel_index; /* -1: none */
} Sink;

static int sink_write(ImageBlobSink *b, size_t i, const void *data, size_t n, Error **err) {
        Sink *s = b->userdata;
        if ((int) i == s->cancel_index)
                return error_set(err, ECANCELED, "pull abandoned");
        if (s->n[i] + n > s->size)
                return error_set(err, EFBIG, "sink: blob %zu grew past %llu bytes", i, (unsigned long long) s->size);
        s->n[i] += n;
        return digest_update(s->d[i], data, n);
}

static int sink_restart(ImageBlobSink *b, size_t i, Error **err) {
        Sink *s = b->userdata;
        digest_free(s->d[i]);
        s->d[i] = NULL;
        s->n[i] = 0;
        s->restarts[i]++;
        return digest_new(&s->d[i]);
}

/* Fetches n copies of the test blob; checks each when the fetch succeeded. */
static int fetch(RegistryClient *c, size_t n, Sink *s, uint64_t desc_size, Error **err) {
        memset(s, 0, sizeof *s);
        s->base = (ImageBlobSink){.write = sink_write, .restart = sink_restart, .userdata = s};
        s->size = desc_size;
        s->cancel_index = -1;
        OciDescriptor descs[8];
        for (size_t i = 0; i < n; i++) {
                descs[i] = (OciDescriptor){.media_type = (char *) OCI_MEDIA_TYPE_LAYER_GZIP, .digest = blob_digest,
                                           .size = desc_size};
                assert_int_equal(digest_new(&s->d[i]), 0);
        }
        _cleanup_oci_ref_ OciRef *ref = ref_r();
        int r = registry_fetch_blobs(c, ref, descs, n, &s->base, err);
        for (size_t i = 0; i < n; i++) {
                char *hex = NULL;
                if (r == 0) {
                        assert_int_equal(digest_final_hex(s->d[i], &hex), 0);
                        assert_string_equal(hex, blob_digest);
                        assert_int_equal(s->n[i], BLOB_SIZE);
                }
                free(hex);
                s->d[i] = digest_free(s->d[i]);
        }
        return r;
}

static void reset_with(Mode mode, bool needs_basic, bool access_token, bool with_length);

static void reset(Mode mode) {
        reset_with(mode, false, false, false);
}

static void reset_with(Mode mode, bool needs_basic, bool access_token, bool with_length) {
        /* Connections of the last test (aborted transfers) finish first. */
        for (int i = 0; i < 500 && atomic_load(&srv.live_conns) > 0; i++)
                nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
        pthread_mutex_lock(&srv.lock);
        srv.mode = mode;
        srv.hits_manifest = srv.hits_token = srv.hits_blob = srv.hits_storage = 0;
        srv.storage_saw_auth = false;
        srv.token_needs_basic = needs_basic;
        srv.access_token = access_token;
        srv.big_with_length = with_length;
        srv.last_token_query[0] = 0;
        srv.active = srv.max_active = 0;
        pthread_mutex_unlock(&srv.lock);
}

/* --- challenge parser ------------------------------------------------------------ */

static void expect_param(const RegChallenge *ch, const char *name, const char *value) {
        const char *v = reg_challenge_param(ch, name);
        assert_non_null(v);
        assert_string_equal(v, value);
}

static void test_challenge_parse(void **state) {
        RegChallenge ch;
        assert_int_equal(reg_challenge_find("Bearer realm=\"https://auth.example.com/token\",service=\"registry.example.com\","
                                            "scope=\"repository:a/b:pull\"", "bearer", &ch), 0);
        assert_string_equal(ch.scheme, "bearer");
        expect_param(&ch, "realm", "https://auth.example.com/token");
        expect_param(&ch, "service", "registry.example.com");
        expect_param(&ch, "scope", "repository:a/b:pull");
        reg_challenge_clear(&ch);

        const char *two = "Basic realm=\"basic, with comma\", Bearer realm=\"https://a/t?x=1,2\", "
                          "error=\"insufficient_scope\" , scope=\"repository:a:pull,push\",service=\"say \\\"hi\\\"\"";
        assert_int_equal(reg_challenge_find(two, "bearer", &ch), 0);
        expect_param(&ch, "realm", "https://a/t?x=1,2");
        expect_param(&ch, "scope", "repository:a:pull,push");
        expect_param(&ch, "service", "say \"hi\"");
        expect_param(&ch, "error", "insufficient_scope");
        reg_challenge_clear(&ch);
        assert_int_equal(reg_challenge_find(two, "basic", &ch), 0);
        expect_param(&ch, "realm", "basic, with comma");
        assert_null(reg_challenge_param(&ch, "scope"));
        reg_challenge_clear(&ch);

        assert_int_equal(reg_challenge_find("BEARER Realm=https://a/t,Service=s", "bearer", &ch), 0);
        expect_param(&ch, "realm", "https://a/t");
        expect_param(&ch, "service", "s");
        reg_challenge_clear(&ch);

        assert_int_equal(reg_challenge_find("Negotiate abc==, Bearer realm=\"r\"", "bearer", &ch), 0);
        expect_param(&ch, "realm", "r");
        reg_challenge_clear(&ch);

        assert_int_equal(reg_challenge_find("Bearer", "bearer", &ch), 0);
        assert_int_equal(ch.n_params, 0);
        reg_challenge_clear(&ch);

        assert_int_equal(reg_challenge_find("Basic realm=\"x\"", "bearer", &ch), -ENOENT);
        assert_int_equal(reg_challenge_find("", "bearer", &ch), -ENOENT);
        assert_int_equal(reg_challenge_find(NULL, "bearer", &ch), -ENOENT);
        assert_int_equal(reg_challenge_find("Bearer realm=\"unterminated", "bearer", &ch), -EBADMSG);
        assert_int_equal(reg_challenge_find("Bearer realm=\"x\" junk", "bearer", &ch), -EBADMSG);
        assert_int_equal(reg_challenge_find("=x", "bearer", &ch), -EBADMSG);
        assert_int_equal(reg_challenge_find("Bearer realm=\"a\x01\"", "bearer", &ch), -EBADMSG);

        char many[1024] = "Bearer ";
        for (int i = 0; i < REG_CHALLENGE_PARAMS_MAX + 1; i++)
                snprintf(many + strlen(many), sizeof many - strlen(many), "p%d=v,", i);
        assert_int_equal(reg_challenge_find(many, "bearer", &ch), -E2BIG);

        char *huge = malloc(REG_HEADER_VALUE_MAX + 10);
        memset(huge, 'a', REG_HEADER_VALUE_MAX + 9);
        memcpy(huge, "Bearer realm=", 13);
        huge[REG_HEADER_VALUE_MAX + 9] = 0;
        assert_int_equal(reg_challenge_find(huge, "bearer", &ch), -EBADMSG);
        free(huge);
}

static void test_error_tables(void **state) {
        assert_int_equal(reg_errno_from_curl(CURLE_OPERATION_TIMEDOUT), -ETIMEDOUT);
        assert_int_equal(reg_errno_from_curl(CURLE_COULDNT_CONNECT), -ECONNREFUSED);
        assert_int_equal(reg_errno_from_curl(CURLE_COULDNT_RESOLVE_HOST), -EHOSTUNREACH);
        assert_int_equal(reg_errno_from_curl(CURLE_PEER_FAILED_VERIFICATION), -EPROTO);
        assert_int_equal(reg_errno_from_curl(CURLE_SSL_CONNECT_ERROR), -EPROTO);
        assert_int_equal(reg_errno_from_curl(CURLE_OK), 0);
        assert_int_equal(reg_errno_from_http(200), 0);
        assert_int_equal(reg_errno_from_http(401), -EACCES);
        assert_int_equal(reg_errno_from_http(403), -EACCES);
        assert_int_equal(reg_errno_from_http(404), -ENOENT);
        assert_int_equal(reg_errno_from_http(429), -EAGAIN);
        assert_int_equal(reg_errno_from_http(503), -EAGAIN);
        assert_int_equal(reg_errno_from_http(500), -EIO);
}

/* --- retries ---------------------------------------------------------------------- */

static void test_retry_then_success(void **state) {
        reset(MODE_RETRY);
        /* Retry-After: 100 is capped at 1 s. */
        _cleanup_registry_client_ RegistryClient *c = client((RegistryOptions){.retry_after_max_ms = 1000}, false);
        _cleanup_error_ Error *e = NULL;
        uint64_t t0 = now_usec();
        int r = get_manifest(c, &e);
        uint64_t took = now_usec() - t0;
        if (r < 0)
                fail_msg("%s", error_text(e));
        assert_int_equal(counter(&srv.hits_manifest), 3);
        assert_true(took >= 1000 * USEC_PER_MSEC);
        assert_true(took < 4 * USEC_PER_SEC);
}

static void test_retry_exhausted(void **state) {
        reset(MODE_ALWAYS_503);
        _cleanup_registry_client_ RegistryClient *c = client((RegistryOptions){.retries = 2}, false);
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(get_manifest(c, &e), -EAGAIN);
        note(e);
        assert_int_equal(counter(&srv.hits_manifest), 3);
        assert_non_null(strstr(e->message, ": 503 service unavailable"));
        e = error_free(e);

        reset(MODE_ALWAYS_503);
        _cleanup_registry_client_ RegistryClient *c2 = client((RegistryOptions){.retries = -1}, false);
        assert_int_equal(get_manifest(c2, &e), -EAGAIN);
        assert_int_equal(counter(&srv.hits_manifest), 1);
}

/* --- bearer tokens ------------------------------------------------------------------ */

static void test_bearer_token(void **state) {
        reset(MODE_BEARER);
        _cleanup_registry_client_ RegistryClient *c = client((RegistryOptions){0}, false);
        _cleanup_error_ Error *e = NULL;
        if (get_manifest(c, &e) < 0)
                fail_msg("%s", error_text(e));
        assert_int_equal(get_manifest(c, &e), 0);
        assert_int_equal(counter(&srv.hits_token), 1);    /* cached */
        assert_int_equal(counter(&srv.hits_manifest), 3); /* 401, 200, 200 */
        assert_non_null(strstr(srv.last_token_query, "service=fake%20registry"));
        assert_non_null(strstr(srv.last_token_query, "scope=repository%3Ar%3Apull"));
}

static void test_bearer_with_credentials(void **state) {
        reset_with(MODE_BEARER, true, true, false);
        _cleanup_registry_client_ RegistryClient *c = client((RegistryOptions){0}, true);
        _cleanup_error_ Error *e = NULL;
        if (get_manifest(c, &e) < 0)
                fail_msg("%s", error_text(e));
        assert_int_equal(counter(&srv.hits_token), 1);

        /* Without credentials the token endpoint refuses. */
        reset_with(MODE_BEARER, true, false, false);
        _cleanup_registry_client_ RegistryClient *anon = client((RegistryOptions){0}, false);
        assert_int_equal(get_manifest(anon, &e), -EACCES);
        note(e);
        char host[64];
        snprintf(host, sizeof host, "registry 127.0.0.1:%d", srv.port);
        assert_non_null(strstr(e->message, host));
        assert_non_null(strstr(e->message, "no credentials are configured"));
}

static void test_bearer_refused(void **state) {
        reset(MODE_BEARER_REFUSE);
        _cleanup_registry_client_ RegistryClient *c = client((RegistryOptions){0}, false);
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(get_manifest(c, &e), -EACCES);
        note(e);
        assert_int_equal(counter(&srv.hits_manifest), 2); /* answered once, not in a loop */
        assert_non_null(strstr(e->message, "401 authentication required"));
        assert_non_null(strstr(e->message, "refused its anonymous token"));
}

/* --- blobs ---------------------------------------------------------------------------- */

static void test_blobs_bearer_redirect(void **state) {
        reset(MODE_BEARER);
        _cleanup_registry_client_ RegistryClient *c = client((RegistryOptions){0}, false);
        _cleanup_error_ Error *e = NULL;
        Sink s;
        int r = fetch(c, 3, &s, BLOB_SIZE, &e);
        if (r < 0)
                fail_msg("%s", error_text(e));
        assert_int_equal(counter(&srv.hits_storage), 3);
        assert_false(counter_bool(&srv.storage_saw_auth));
        assert_true(counter(&srv.hits_token) >= 1);
}

/* A blob smaller than the bodies of the 401 and the 307 in front of it (a
 * 32-byte empty gzip layer is common): those bodies are not the blob and
 * must not be held to its size. */
static void test_small_blob_behind_401_and_redirect(void **state) {
        reset(MODE_SMALL_BEARER);
        _cleanup_registry_client_ RegistryClient *c = client((RegistryOptions){0}, false);
        _cleanup_error_ Error *e = NULL;
        Sink s;
        memset(&s, 0, sizeof s);
        s.base = (ImageBlobSink){.write = sink_write, .restart = sink_restart, .userdata = &s};
        s.size = sizeof small_blob - 1;
        s.cancel_index = -1;
        assert_int_equal(digest_new(&s.d[0]), 0);
        OciDescriptor d = {.media_type = (char *) OCI_MEDIA_TYPE_LAYER_GZIP, .digest = small_digest,
                           .size = sizeof small_blob - 1};
        _cleanup_oci_ref_ OciRef *ref = ref_r();
        int r = registry_fetch_blobs(c, ref, &d, 1, &s.base, &e);
        char *hex = NULL;
        assert_int_equal(digest_final_hex(s.d[0], &hex), 0);
        digest_free(s.d[0]);
        if (r < 0) {
                free(hex);
                fail_msg("%s", error_text(e));
        }
        assert_string_equal(hex, small_digest);
        free(hex);
        assert_int_equal(s.n[0], sizeof small_blob - 1);
        assert_int_equal(counter(&srv.hits_token), 1);
        assert_int_equal(counter(&srv.hits_storage), 1);
}

static void test_blobs_basic_redirect(void **state) {
        reset(MODE_BASIC);
        _cleanup_registry_client_ RegistryClient *c = client((RegistryOptions){0}, true);
        _cleanup_error_ Error *e = NULL;
        Sink s;
        int r = fetch(c, 2, &s, BLOB_SIZE, &e);
        if (r < 0)
                fail_msg("%s", error_text(e));
        assert_int_equal(counter(&srv.hits_storage), 2);
        assert_false(counter_bool(&srv.storage_saw_auth));
        /* The manifest path works with basic too, and the registry is remembered. */
        assert_int_equal(get_manifest(c, &e), 0);
}

static void test_blob_truncated_is_retried(void **state) {
        reset(MODE_TRUNCATE);
        _cleanup_registry_client_ RegistryClient *c = client((RegistryOptions){0}, false);
        _cleanup_error_ Error *e = NULL;
        Sink s;
        int r = fetch(c, 1, &s, BLOB_SIZE, &e);
        if (r < 0)
                fail_msg("%s", error_text(e));
        assert_int_equal(counter(&srv.hits_blob), 2);
        assert_int_equal(s.restarts[0], 1);
}

static void test_blob_longer_than_descriptor(void **state) {
        reset(MODE_CHUNKED_LONG);
        _cleanup_registry_client_ RegistryClient *c = client((RegistryOptions){0}, false);
        _cleanup_error_ Error *e = NULL;
        Sink s;
        assert_int_equal(fetch(c, 2, &s, BLOB_SIZE, &e), -EFBIG);
        note(e);
        assert_non_null(strstr(e->message, "sink: blob")); /* the sink's own error */
}

static void test_sink_cancels(void **state) {
        reset(MODE_SLOW_BLOBS);
        _cleanup_registry_client_ RegistryClient *c = client((RegistryOptions){.max_parallel = 2}, false);
        _cleanup_error_ Error *e = NULL;
        Sink s;
        memset(&s, 0, sizeof s);
        OciDescriptor descs[6];
        s.base = (ImageBlobSink){.write = sink_write, .restart = sink_restart, .userdata = &s};
        s.size = BLOB_SIZE;
        s.cancel_index = 0;
        for (size_t i = 0; i < 6; i++) {
                descs[i] = (OciDescriptor){.media_type = (char *) OCI_MEDIA_TYPE_LAYER_GZIP, .digest = blob_digest,
                                           .size = BLOB_SIZE};
                assert_int_equal(digest_new(&s.d[i]), 0);
        }
        _cleanup_oci_ref_ OciRef *ref = ref_r();
        assert_int_equal(registry_fetch_blobs(c, ref, descs, 6, &s.base, &e), -ECANCELED);
        assert_string_equal(e->message, "pull abandoned");
        assert_true(counter(&srv.hits_blob) < 6); /* the rest never started */
        for (size_t i = 0; i < 6; i++)
                digest_free(s.d[i]);
}

static void test_parallel_bound(void **state) {
        reset(MODE_SLOW_BLOBS);
        _cleanup_registry_client_ RegistryClient *c = client((RegistryOptions){.max_parallel = 2}, false);
        _cleanup_error_ Error *e = NULL;
        Sink s;
        if (fetch(c, 6, &s, BLOB_SIZE, &e) < 0)
                fail_msg("%s", error_text(e));
        assert_int_equal(counter(&srv.hits_blob), 6);
        assert_int_equal(counter(&srv.max_active), 2);
}

static void test_manifest_too_big(void **state) {
        for (int with_length = 0; with_length < 2; with_length++) {
                reset_with(MODE_BIG_MANIFEST, false, false, with_length);
                _cleanup_registry_client_ RegistryClient *c = client((RegistryOptions){0}, false);
                _cleanup_error_ Error *e = NULL;
                assert_int_equal(get_manifest(c, &e), -EFBIG);
                note(e);
                assert_int_equal(counter(&srv.hits_manifest), 1);
        }
}

int main(void) {
        signal(SIGPIPE, SIG_IGN);
        for (size_t i = 0; i < BLOB_SIZE; i++)
                blob_bytes[i] = (unsigned char) (i * 7 + i / 251);
        memcpy(blob_longer, blob_bytes, BLOB_SIZE);
        char *hex = NULL;
        if (digest_buffer_hex(blob_bytes, BLOB_SIZE, &hex) < 0)
                return 1;
        snprintf(blob_digest, sizeof blob_digest, "%s", hex);
        free(hex);
        if (digest_buffer_hex(small_blob, sizeof small_blob - 1, &hex) < 0)
                return 1;
        snprintf(small_digest, sizeof small_digest, "%s", hex);
        free(hex);

        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_challenge_parse),
                cmocka_unit_test(test_error_tables),
                cmocka_unit_test(test_retry_then_success),
                cmocka_unit_test(test_retry_exhausted),
                cmocka_unit_test(test_bearer_token),
                cmocka_unit_test(test_bearer_with_credentials),
                cmocka_unit_test(test_bearer_refused),
                cmocka_unit_test(test_blobs_bearer_redirect),
                cmocka_unit_test(test_blobs_basic_redirect),
                cmocka_unit_test(test_small_blob_behind_401_and_redirect),
                cmocka_unit_test(test_blob_truncated_is_retried),
                cmocka_unit_test(test_blob_longer_than_descriptor),
                cmocka_unit_test(test_sink_cancels),
                cmocka_unit_test(test_parallel_bound),
                cmocka_unit_test(test_manifest_too_big),
        };
        return test_run_group(tests, server_start, server_stop);
}
