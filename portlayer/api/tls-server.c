/* tls-server.c: the TLS front of the HTTP server (see tls-server.h). */
#include "tls-server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/tls/tls-util.h"

#define PUMP_BUFFER (64u << 10)
#define CONN_THREAD_STACK (256u << 10)

struct TlsServer {
        SSL_CTX *ctx;
        HttpServer *http;
        char *trust;
        int fd;
        int stop_pipe[2];
        pthread_t accept_thread;
        bool accept_started;
        pthread_mutex_t lock;
        pthread_cond_t idle;
        bool stopping;
        int conns[TLS_CONNECTIONS_MAX]; /* the TCP fds being served, -1 free */
        unsigned n_conns;
};

typedef struct Conn {
        TlsServer *t;
        int fd, slot;
        char peer[TLS_NAME_MAX + 1];
        char why[256]; /* why the verification refused it */
} Conn;

static int conn_ex_index = -1;
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;

static void ex_index_init(void) {
        conn_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* The trust decision, inside the handshake: the client's certificate must
 * be valid now and its fingerprint listed. Chains are not looked at. */
static int verify_client(X509_STORE_CTX *sctx, void *arg) {
        TlsServer *t = arg;
        SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
        Conn *c = ssl ? SSL_get_ex_data(ssl, conn_ex_index) : NULL;
        X509 *x = X509_STORE_CTX_get0_cert(sctx);
        char fp[TLS_FINGERPRINT_HEX + 1];
        _cleanup_error_ Error *e = NULL;
        _cleanup_free_ TlsTrustEntry *list = NULL;
        size_t n = 0;
        if (!c || !x || tls_fingerprint_x509(x, fp) < 0) {
                X509_STORE_CTX_set_error(sctx, X509_V_ERR_UNSPECIFIED);
                return 0;
        }
        int r = tls_cert_check_dates(x, &e);
        if (r < 0) {
                X509_STORE_CTX_set_error(sctx, r == -EKEYEXPIRED ? X509_V_ERR_CERT_HAS_EXPIRED
                                                                 : X509_V_ERR_CERT_NOT_YET_VALID);
                snprintf(c->why, sizeof c->why, "certificate %s: %s", fp, error_text(e));
                return 0;
        }
        if (tls_trust_load(t->trust, &list, &n, &e) < 0) {
                X509_STORE_CTX_set_error(sctx, X509_V_ERR_UNSPECIFIED);
                snprintf(c->why, sizeof c->why, "%s", error_text(e));
                return 0;
        }
        const TlsTrustEntry *te = tls_trust_find(list, n, fp);
        if (!te) {
                X509_STORE_CTX_set_error(sctx, X509_V_ERR_CERT_REJECTED);
                snprintf(c->why, sizeof c->why, "certificate %s is not in the trust list", fp);
                return 0;
        }
        snprintf(c->peer, sizeof c->peer, "%s", te->name);
        return 1;
}

static void conn_release(Conn *c) {
        TlsServer *t = c->t;
        pthread_mutex_lock(&t->lock);
        t->conns[c->slot] = -1;
        if (--t->n_conns == 0)
                pthread_cond_broadcast(&t->idle);
        pthread_mutex_unlock(&t->lock);
        safe_close(c->fd);
        free(c);
}

static void set_timeouts(int fd, int seconds) {
        struct timeval tv = {.tv_sec = seconds};
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int ssl_write_all(SSL *ssl, const char *p, size_t n) {
        while (n > 0) {
                size_t done = 0;
                if (SSL_write_ex(ssl, p, n, &done) <= 0)
                        return -EPIPE;
                p += done;
                n -= done;
        }
        return 0;
}

/* Copies both ways until the HTTP server closes its end or the client goes. */
static void pump(SSL *ssl, int net, int local) {
        _cleanup_free_ char *buf = malloc(PUMP_BUFFER);
        bool in_open = true;
        while (buf) {
                struct pollfd pfd[2] = {{.fd = in_open ? net : -1, .events = POLLIN}, {.fd = local, .events = POLLIN}};
                bool pending = in_open && SSL_pending(ssl) > 0;
                if (!pending && poll(pfd, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return;
                }
                if (pending || (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
                        size_t got = 0;
                        if (SSL_read_ex(ssl, buf, PUMP_BUFFER, &got) > 0) {
                                if (write_all(local, buf, got) < 0)
                                        return;
                        } else if (SSL_get_error(ssl, 0) == SSL_ERROR_ZERO_RETURN) {
                                in_open = false; /* close_notify: the client is done sending */
                                (void) shutdown(local, SHUT_WR);
                        } else if (SSL_get_error(ssl, 0) != SSL_ERROR_WANT_READ)
                                return;
                        continue;
                }
                if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t k = read(local, buf, PUMP_BUFFER);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0) {
                                (void) SSL_shutdown(ssl);
                                return;
                        }
                        if (ssl_write_all(ssl, buf, (size_t) k) < 0)
                                return;
                }
        }
}

static void *conn_main(void *arg) {
        Conn *c = arg;
        TlsServer *t = c->t;
        SSL *ssl = SSL_new(t->ctx);
        int pair[2] = {-1, -1};
        Error *err = NULL;
        set_timeouts(c->fd, TLS_HANDSHAKE_TIMEOUT_S);
        if (!ssl || !SSL_set_fd(ssl, c->fd) || !SSL_set_ex_data(ssl, conn_ex_index, c))
                goto out;
        if (SSL_accept(ssl) <= 0) {
                unsigned long e = ERR_peek_last_error();
                log_info("TLS: refused a client: %s", c->why[0] ? c->why : e ? ERR_reason_error_string(e) : "handshake failed");
                goto out;
        }
        set_timeouts(c->fd, 0);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0 ||
            http_server_add_connection(t->http, pair[1], c->peer, &err) < 0) {
                log_warning("TLS: client %s: %s", c->peer, err ? error_text(err) : strerror(errno));
                pair[1] = -1;
                goto out;
        }
        pair[1] = -1; /* the server's now */
        log_debug("TLS: client %s connected", c->peer);
        pump(ssl, c->fd, pair[0]);
out:
        error_free(err);
        ERR_clear_error();
        SSL_free(ssl);
        safe_close(pair[0]);
        safe_close(pair[1]);
        conn_release(c);
        return NULL;
}

static void conn_spawn(TlsServer *t, int fd) {
        pthread_mutex_lock(&t->lock);
        int slot = -1;
        for (int i = 0; i < TLS_CONNECTIONS_MAX && slot < 0 && !t->stopping; i++)
                if (t->conns[i] < 0)
                        slot = i;
        Conn *c = slot >= 0 ? calloc(1, sizeof *c) : NULL;
        if (c) {
                *c = (Conn){.t = t, .fd = fd, .slot = slot};
                t->conns[slot] = fd;
                t->n_conns++;
        }
        pthread_mutex_unlock(&t->lock);
        if (!c) {
                log_warning("TLS: refusing a connection: %u connections already", (unsigned) TLS_CONNECTIONS_MAX);
                safe_close(fd);
                return;
        }
        pthread_attr_t attr;
        pthread_t th;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, CONN_THREAD_STACK);
        if (pthread_create(&th, &attr, conn_main, c) != 0)
                conn_release(c);
        pthread_attr_destroy(&attr);
}

static void *accept_main(void *arg) {
        TlsServer *t = arg;
        for (;;) {
                struct pollfd pfd[2] = {{.fd = t->fd, .events = POLLIN}, {.fd = t->stop_pipe[0], .events = POLLIN}};
                if (poll(pfd, 2, -1) < 0 && errno != EINTR)
                        break;
                if (pfd[1].revents)
                        break;
                if (!(pfd[0].revents & POLLIN))
                        continue;
                int fd = accept4(t->fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd >= 0)
                        conn_spawn(t, fd);
                else if (errno == EMFILE || errno == ENFILE)
                        usleep(100 * 1000);
        }
        return NULL;
}

/* "ADDR:PORT" or "[ADDR]:PORT", numeric, into a listening socket. */
static int listen_tcp(const char *spec, Error **err) {
        _cleanup_free_ char *host = strdup(spec);
        if (!host)
                return error_oom(err);
        char *colon = strrchr(host, ':'), *h = host;
        if (!colon || colon == host || !colon[1])
                return error_set(err, EINVAL, "tls-listen '%s': expected ADDR:PORT", spec);
        *colon = 0;
        if (h[0] == '[' && colon[-1] == ']') {
                h++;
                colon[-1] = 0;
        }
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV},
                        *ai = NULL;
        int g = getaddrinfo(h, colon + 1, &hints, &ai);
        if (g != 0)
                return error_set(err, EINVAL, "tls-listen '%s': %s", spec, gai_strerror(g));
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, r = 0;
        if (fd < 0)
                r = error_set_errno(err, errno, "socket");
        else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
                 bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0)
                r = error_set_errno(err, errno, "listen on %s", spec);
        freeaddrinfo(ai);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        return fd;
}

static int ctx_new(const TlsServerConfig *cfg, TlsServer *t, Error **err) {
        t->ctx = SSL_CTX_new(TLS_server_method());
        if (!t->ctx)
                return error_oom(err);
        SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
        if (SSL_CTX_use_certificate_file(t->ctx, cfg->cert, SSL_FILETYPE_PEM) <= 0 ||
            SSL_CTX_use_PrivateKey_file(t->ctx, cfg->key, SSL_FILETYPE_PEM) <= 0 ||
            SSL_CTX_check_private_key(t->ctx) <= 0) {
                ERR_clear_error();
                return error_set(err, EINVAL, "cannot use the server certificate %s with its key %s", cfg->cert, cfg->key);
        }
        /* Every connection is verified in full: no resumption. */
        SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(t->ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(t->ctx, 0);
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX_set_cert_verify_callback(t->ctx, verify_client, t);
        return 0;
}

int tls_server_start(const TlsServerConfig *cfg, HttpServer *http, TlsServer **ret, Error **err) {
        pthread_once(&ex_once, ex_index_init);
        TlsServer *t = calloc(1, sizeof *t);
        if (!t || !(t->trust = strdup(cfg->trust))) {
                free(t);
                return error_oom(err);
        }
        t->http = http;
        t->fd = t->stop_pipe[0] = t->stop_pipe[1] = -1;
        for (size_t i = 0; i < TLS_CONNECTIONS_MAX; i++)
                t->conns[i] = -1;
        pthread_mutex_init(&t->lock, NULL);
        pthread_cond_init(&t->idle, NULL);
        int r = ctx_new(cfg, t, err);
        if (r >= 0 && (t->fd = listen_tcp(cfg->listen, err)) < 0)
                r = t->fd;
        if (r >= 0 && pipe2(t->stop_pipe, O_CLOEXEC) < 0)
                r = error_set_errno(err, errno, "pipe");
        if (r >= 0 && pthread_create(&t->accept_thread, NULL, accept_main, t) != 0)
                r = error_set(err, EAGAIN, "cannot start the TLS accept thread");
        if (r < 0) {
                tls_server_stop(t);
                return r;
        }
        t->accept_started = true;
        *ret = t;
        return 0;
}

TlsServer *tls_server_stop(TlsServer *t) {
        if (!t)
                return NULL;
        if (t->accept_started) {
                (void) !write(t->stop_pipe[1], "x", 1);
                pthread_join(t->accept_thread, NULL);
        }
        pthread_mutex_lock(&t->lock);
        t->stopping = true;
        for (size_t i = 0; i < TLS_CONNECTIONS_MAX; i++)
                if (t->conns[i] >= 0)
                        (void) shutdown(t->conns[i], SHUT_RDWR);
        while (t->n_conns > 0)
                pthread_cond_wait(&t->idle, &t->lock);
        pthread_mutex_unlock(&t->lock);
        safe_close(t->fd);
        safe_close(t->stop_pipe[0]);
        safe_close(t->stop_pipe[1]);
        SSL_CTX_free(t->ctx);
        pthread_cond_destroy(&t->idle);
        pthread_mutex_destroy(&t->lock);
        free(t->trust);
        free(t);
        return NULL;
}
