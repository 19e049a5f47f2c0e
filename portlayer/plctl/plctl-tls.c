/* plctl-tls.c: streams to the daemon, plain or TLS (plctl-tls.h). */
#include "portlayer/plctl/plctl-tls.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "common/base/io-util.h"

#define CONNECT_TIMEOUT_S 10

struct PlctlStream {
        int fd;
        SSL_CTX *ctx;
        SSL *ssl;
};

int plctl_url_split(const char *url, char **ret_host, char **ret_port, Error **err) {
        if (strncmp(url, "https://", 8) != 0)
                return error_set(err, EINVAL, "'%s': a remote is https://HOST[:PORT]", url);
        const char *h = url + 8, *end = h + strcspn(h, "/");
        if (*end && end[1])
                return error_set(err, EINVAL, "'%s': a remote is https://HOST[:PORT], without a path", url);
        const char *colon = NULL;
        if (*h == '[') {
                const char *close = memchr(h, ']', (size_t) (end - h));
                if (!close)
                        return error_set(err, EINVAL, "'%s': unclosed '['", url);
                colon = close[1] == ':' ? close + 1 : NULL;
                *ret_host = strndup(h + 1, (size_t) (close - h - 1));
        } else {
                colon = memchr(h, ':', (size_t) (end - h));
                *ret_host = strndup(h, (size_t) ((colon ? colon : end) - h));
        }
        *ret_port = colon ? strndup(colon + 1, (size_t) (end - colon - 1)) : strdup(PLCTL_TLS_PORT);
        if (!*ret_host || !*ret_port)
                return error_oom(err);
        if (!**ret_host || !**ret_port)
                return error_set(err, EINVAL, "'%s': no host or no port", url);
        return 0;
}

static int tcp_connect(const char *url, Error **err) {
        _cleanup_free_ char *host = NULL, *port = NULL;
        int r = plctl_url_split(url, &host, &port, err);
        if (r < 0)
                return r;
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai = NULL;
        int g = getaddrinfo(host, port, &hints, &ai);
        if (g != 0)
                return error_set(err, EHOSTUNREACH, "%s: %s", host, gai_strerror(g));
        int fd = -1, saved = 0;
        for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
                fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
                struct timeval tv = {.tv_sec = CONNECT_TIMEOUT_S};
                (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
                if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
                        saved = errno;
                        fd = safe_close(fd);
                }
        }
        freeaddrinfo(ai);
        if (fd < 0)
                return error_set_errno(err, saved ? saved : ECONNREFUSED, "cannot reach portlayerd at %s", url);
        struct timeval zero = {0};
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof zero);
        return fd;
}

static int unix_connect(const char *path, Error **err) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof sa.sun_path)
                return error_set(err, ENAMETOOLONG, "socket path too long: %s", path);
        strcpy(sa.sun_path, path);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return error_set_errno(err, errno, "cannot reach portlayerd at %s (is it running? see --socket)", path);
        return TAKE_FD(fd);
}

static const char *ssl_error_text(void) {
        unsigned long e = ERR_peek_last_error();
        const char *s = e ? ERR_reason_error_string(e) : NULL;
        return s ? s : "handshake failed";
}

static SSL_CTX *client_ctx(const char *cert, const char *key, Error **err) {
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx) {
                error_oom(err);
                return NULL;
        }
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        if (SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) <= 0 ||
            SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) <= 0) {
                error_set(err, EINVAL, "cannot use the client certificate %s with its key %s: %s", cert, key,
                          ssl_error_text());
                SSL_CTX_free(ctx);
                return NULL;
        }
        return ctx;
}

int plctl_stream_open(PlctlClient *c, PlctlStream **ret, Error **err) {
        const PlctlRemote *rm = plctl_client_remote(c);
        PlctlStream *s = calloc(1, sizeof *s);
        if (!s)
                return error_oom(err);
        s->fd = rm ? tcp_connect(rm->url, err) : unix_connect(plctl_client_target(c), err);
        int r = s->fd < 0 ? s->fd : 0;
        if (r >= 0 && rm) {
                s->ctx = client_ctx(rm->client_cert, rm->client_key, err);
                if (!s->ctx)
                        r = -EINVAL;
                else if (SSL_CTX_load_verify_locations(s->ctx, rm->server_cert, NULL) <= 0)
                        r = error_set(err, EINVAL, "cannot load the server certificate %s", rm->server_cert);
        }
        if (r >= 0 && rm) {
                /* Pinned: the stored certificate is the only anchor. */
                SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, NULL);
                s->ssl = SSL_new(s->ctx);
                if (!s->ssl || !SSL_set_fd(s->ssl, s->fd) || SSL_connect(s->ssl) <= 0)
                        r = error_set(err, ECONNREFUSED, "TLS to %s: %s", rm->url, ssl_error_text());
        }
        if (r < 0) {
                plctl_stream_close(s);
                return r;
        }
        *ret = s;
        return 0;
}

PlctlStream *plctl_stream_close(PlctlStream *s) {
        if (!s)
                return NULL;
        SSL_free(s->ssl);
        SSL_CTX_free(s->ctx);
        safe_close(s->fd);
        ERR_clear_error();
        free(s);
        return NULL;
}

int plctl_stream_fd(const PlctlStream *s) {
        return s->fd;
}

bool plctl_stream_pending(PlctlStream *s) {
        return s->ssl && SSL_pending(s->ssl) > 0;
}

ssize_t plctl_stream_read(PlctlStream *s, void *buf, size_t len) {
        if (!s->ssl) {
                ssize_t n;
                do
                        n = read(s->fd, buf, len);
                while (n < 0 && errno == EINTR);
                return n < 0 ? -errno : n;
        }
        size_t got = 0;
        if (SSL_read_ex(s->ssl, buf, len, &got) > 0)
                return (ssize_t) got;
        int e = SSL_get_error(s->ssl, 0);
        if (e == SSL_ERROR_ZERO_RETURN)
                return 0;
        /* A peer that closed without close_notify is an EOF too: the
         * daemon's answer ends where its stream does. */
        if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_SSL) {
                ERR_clear_error();
                return errno == 0 || e == SSL_ERROR_SSL ? 0 : -errno;
        }
        return -EAGAIN;
}

int plctl_stream_write(PlctlStream *s, const void *buf, size_t len) {
        if (!s->ssl)
                return write_all(s->fd, buf, len);
        const char *p = buf;
        while (len > 0) {
                size_t done = 0;
                if (SSL_write_ex(s->ssl, p, len, &done) <= 0)
                        return -EPIPE;
                p += done;
                len -= done;
        }
        return 0;
}

void plctl_stream_shutdown_write(PlctlStream *s) {
        if (s->ssl)
                (void) SSL_shutdown(s->ssl);
        else
                (void) shutdown(s->fd, SHUT_WR);
}

static int capture_cert(X509_STORE_CTX *sctx, void *arg) {
        X509 **out = arg;
        X509 *x = X509_STORE_CTX_get0_cert(sctx);
        if (x && !*out)
                *out = X509_dup(x);
        return 1;
}

int plctl_tls_fetch_server_cert(const char *url, const char *client_cert, const char *client_key, char **ret_pem,
                                Error **err) {
        _cleanup_close_ int fd = tcp_connect(url, err);
        if (fd < 0)
                return fd;
        SSL_CTX *ctx = client_ctx(client_cert, client_key, err);
        if (!ctx)
                return -EINVAL;
        X509 *server = NULL;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_cert_verify_callback(ctx, capture_cert, &server);
        SSL *ssl = SSL_new(ctx);
        struct timeval tv = {.tv_sec = CONNECT_TIMEOUT_S};
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (ssl && SSL_set_fd(ssl, fd))
                (void) SSL_connect(ssl); /* an untrusted client may be refused: the certificate came first */
        SSL_free(ssl);
        SSL_CTX_free(ctx);
        ERR_clear_error();
        if (!server)
                return error_set(err, EPROTO, "%s sent no TLS certificate (is it portlayerd's --tls-listen?)", url);
        BIO *b = BIO_new(BIO_s_mem());
        char *data = NULL;
        long len = b && PEM_write_bio_X509(b, server) ? BIO_get_mem_data(b, &data) : 0;
        *ret_pem = len > 0 ? strndup(data, (size_t) len) : NULL;
        BIO_free(b);
        X509_free(server);
        return *ret_pem ? 0 : error_oom(err);
}
