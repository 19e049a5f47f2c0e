/* http-server.c: the HTTP server over libmicrohttpd (see http-server.h). */
#include "http-server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/base/macro.h"

#define HTTP_THREAD_STACK (256u << 10)
#define HTTP_IDLE_TIMEOUT_S 300

struct HttpRequest {
        struct MHD_Connection *conn;
        char *method, *path;
        HttpBody kind;
        char *body;
        size_t body_len;
        int body_fd;
        uint64_t stream_len;
        char *peer;           /* http_request_peer() */
        unsigned refuse;      /* a status to answer instead of calling the handler */
        const char *refuse_message;
};

struct HttpServer {
        struct MHD_Daemon *mhd;
        HttpApp app;
        char *path;
        int fd;
};

const char *http_request_method(const HttpRequest *req) {
        return req->method;
}

const char *http_request_path(const HttpRequest *req) {
        return req->path;
}

const char *http_request_query(const HttpRequest *req, const char *name) {
        return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_request_header(const HttpRequest *req, const char *name) {
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_request_body(const HttpRequest *req, size_t *ret_len) {
        *ret_len = req->body_len;
        return req->body;
}

int http_request_body_fd(const HttpRequest *req) {
        if (req->body_fd >= 0)
                (void) lseek(req->body_fd, 0, SEEK_SET);
        return req->body_fd;
}

int http_response_add_header(HttpResponse *resp, const char *name, const char *value) {
        char *n = NULL;
        if (asprintf(&n, "%s%s: %s\n", resp->headers ? resp->headers : "", name, value) < 0)
                return -ENOMEM;
        free(resp->headers);
        resp->headers = n;
        return 0;
}

/* The lines of http_response_add_header() onto r. */
static void add_headers(struct MHD_Response *r, char *lines) {
        char *save = NULL;
        for (char *l = lines ? strtok_r(lines, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
                char *colon = strstr(l, ": ");
                if (colon) {
                        *colon = 0;
                        (void) MHD_add_response_header(r, l, colon + 2);
                }
        }
}

const char *http_request_peer(const HttpRequest *req) {
        return req->peer;
}

/* Connections handed over by another front carry "tls:<peer>" as their
 * (Unix) client address; those accepted on our socket have none, unless a
 * local client bound its socket to such a name: that only makes it look
 * remote, which never grants more (remote requests are refused the trust
 * calls, nothing else differs). */
#define PEER_PREFIX "tls:"

static char *connection_peer(struct MHD_Connection *conn) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr_un *sa = ci ? (const struct sockaddr_un *) ci->client_addr : NULL;
        if (!sa || sa->sun_family != AF_UNIX || strncmp(sa->sun_path, PEER_PREFIX, strlen(PEER_PREFIX)) != 0)
                return NULL;
        return strndup(sa->sun_path + strlen(PEER_PREFIX), HTTP_PEER_MAX);
}

static void request_free(HttpRequest *req) {
        if (!req)
                return;
        free(req->peer);
        free(req->method);
        free(req->path);
        free(req->body);
        safe_close(req->body_fd);
        free(req);
}

/* An unlinked temporary file for a streamed body. */
static int spool_fd(void) {
        int fd = open("/var/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0)
                return fd;
        char tmpl[] = "/var/tmp/portlayer-body-XXXXXX";
        fd = mkostemp(tmpl, O_CLOEXEC);
        if (fd >= 0)
                (void) unlink(tmpl);
        return fd;
}

static HttpRequest *request_new(HttpServer *s, struct MHD_Connection *conn, const char *method, const char *url) {
        HttpRequest *req = calloc(1, sizeof(*req));
        if (!req)
                return NULL;
        req->conn = conn;
        req->body_fd = -1;
        req->method = strdup(method);
        req->path = strdup(url);
        if (!req->method || !req->path)
                return request_free(req), NULL;
        req->peer = connection_peer(conn);
        if (strlen(url) > HTTP_PATH_MAX) {
                req->refuse = 414;
                req->refuse_message = "request path too long";
                return req;
        }
        req->kind = s->app.body_kind(s->app.app, method, url);
        if (req->kind == HTTP_BODY_STREAM && (req->body_fd = spool_fd()) < 0) {
                req->refuse = 500;
                req->refuse_message = "cannot create a temporary file for the request body";
        }
        return req;
}

/* Takes one piece of the body as the route wants it. */
static void request_take(HttpRequest *req, const char *data, size_t len) {
        if (req->refuse)
                return;
        switch (req->kind) {
        case HTTP_BODY_NONE:
                req->refuse = 400;
                req->refuse_message = "this call takes no request body";
                return;
        case HTTP_BODY_JSON: {
                if (req->body_len + len > HTTP_JSON_MAX) {
                        req->refuse = 413;
                        req->refuse_message = "request body larger than 1 MiB";
                        return;
                }
                char *n = realloc(req->body, req->body_len + len + 1);
                if (!n) {
                        req->refuse = 500;
                        req->refuse_message = "out of memory";
                        return;
                }
                memcpy(n + req->body_len, data, len);
                req->body = n;
                req->body_len += len;
                req->body[req->body_len] = 0;
                return;
        }
        case HTTP_BODY_DISCARD:
                return;
        case HTTP_BODY_STREAM:
                if ((req->stream_len += len) > HTTP_STREAM_MAX) {
                        req->refuse = 413;
                        req->refuse_message = "request body larger than 8 GiB";
                } else if (write_all(req->body_fd, data, len) < 0) {
                        req->refuse = 507;
                        req->refuse_message = "cannot store the request body (disk full?)";
                }
                return;
        }
}

typedef struct Upgrade {
        void (*fn)(void *arg, int fd, const char *extra, size_t extra_len);
        void (*free_fn)(void *arg);
        void *arg;
} Upgrade;

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
        Upgrade *u = cls;
        /* Thread per connection: blocking here is allowed. */
        u->fn(u->arg, sock, extra_in, extra_in_size);
        (void) MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        if (u->free_fn)
                u->free_fn(u->arg);
        free(u);
}

static struct MHD_Response *upgrade_response(HttpResponse *resp) {
        Upgrade *u = calloc(1, sizeof(*u));
        if (!u)
                return NULL;
        *u = (Upgrade){.fn = resp->upgrade, .free_fn = resp->upgrade_free, .arg = resp->upgrade_arg};
        struct MHD_Response *r = MHD_create_response_for_upgrade(on_upgrade, u);
        if (!r) {
                free(u);
                return NULL;
        }
        resp->upgrade_arg = NULL; /* the Upgrade owns it now */
        resp->status = MHD_HTTP_SWITCHING_PROTOCOLS;
        (void) MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "tcp");
        (void) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
        return r;
}

static enum MHD_Result queue(struct MHD_Connection *conn, HttpResponse *resp) {
        struct MHD_Response *r;
        if (resp->upgrade)
                r = upgrade_response(resp);
        else if (resp->stream_fd >= 0)
                r = MHD_create_response_from_pipe(TAKE_FD(resp->stream_fd));
        else
                r = MHD_create_response_from_buffer(resp->body_len, resp->body ? TAKE_PTR(resp->body) : "",
                                                    resp->body_len ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        free(resp->body);
        if (!r) {
                if (resp->upgrade && resp->upgrade_arg && resp->upgrade_free)
                        resp->upgrade_free(resp->upgrade_arg);
                free(resp->header_name);
                free(resp->header_value);
                free(resp->headers);
                return MHD_NO;
        }
        if (!resp->upgrade || resp->content_type)
                (void) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                               resp->content_type ? resp->content_type : "application/json");
        (void) MHD_add_response_header(r, "Server", "portlayerd");
        if (resp->header_name && resp->header_value)
                (void) MHD_add_response_header(r, resp->header_name, resp->header_value);
        add_headers(r, resp->headers);
        free(resp->header_name);
        free(resp->header_value);
        free(resp->headers);
        enum MHD_Result ok = MHD_queue_response(conn, resp->status, r);
        MHD_destroy_response(r);
        return ok;
}

static enum MHD_Result refuse(struct MHD_Connection *conn, unsigned status, const char *message) {
        HttpResponse resp = {.status = status, .stream_fd = -1};
        if (asprintf(&resp.body, "{\"message\": \"%s\"}\n", message) < 0)
                return MHD_NO;
        resp.body_len = strlen(resp.body);
        return queue(conn, &resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        HttpServer *s = cls;
        HttpRequest *req = *con_cls;
        if (!req) {
                *con_cls = req = request_new(s, conn, method, url);
                return req ? MHD_YES : MHD_NO;
        }
        if (*upload_data_size > 0) {
                request_take(req, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (req->refuse)
                return refuse(conn, req->refuse, req->refuse_message);
        HttpResponse resp = {.status = 500, .stream_fd = -1};
        s->app.handle(s->app.app, req, &resp);
        return queue(conn, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode t) {
        request_free(*con_cls);
        *con_cls = NULL;
}

/* A socket file nobody answers on is a leftover and goes; a live one stays. */
static int clear_stale(const char *path, Error **err) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return error_set_errno(err, errno, "socket");
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0)
                return error_set(err, EADDRINUSE, "%s: another server is listening there", path);
        if (errno != ENOENT && unlink(path) < 0 && errno != ENOENT)
                return error_set_errno(err, errno, "remove stale socket %s", path);
        return 0;
}

static int listen_unix(const char *path, Error **err) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof sa.sun_path)
                return error_set(err, ENAMETOOLONG, "socket path %s is longer than %zu bytes", path,
                                 sizeof sa.sun_path - 1);
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return error_oom(err);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = 0;
                int r = mkdir_p(dir, 0755);
                if (r < 0)
                        return error_set_errno(err, -r, "create %s", dir);
        }
        int r = clear_stale(path, err);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return error_set_errno(err, errno, "socket");
        mode_t old = umask(0117); /* born 0660: no window with a wider mode */
        r = bind(fd, (struct sockaddr *) &sa, sizeof sa);
        umask(old);
        if (r < 0)
                return error_set_errno(err, errno, "bind %s", path);
        if (chmod(path, 0660) < 0 || listen(fd, 128) < 0)
                return error_set_errno(err, errno, "listen on %s", path);
        return TAKE_FD(fd);
}

int http_server_start_unix(const char *path, const HttpApp *app, HttpServer **ret, Error **err) {
        HttpServer *s = calloc(1, sizeof(*s));
        if (!s || !(s->path = strdup(path))) {
                free(s);
                return error_oom(err);
        }
        s->app = *app;
        s->fd = listen_unix(path, err);
        if (s->fd < 0) {
                int r = s->fd;
                free(s->path);
                free(s);
                return r;
        }
        s->mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                                          MHD_USE_ITC | MHD_ALLOW_UPGRADE,
                                  0,
                                  NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, s->fd,
                                  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
                                  (unsigned) HTTP_CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
                                  (unsigned) HTTP_IDLE_TIMEOUT_S, MHD_OPTION_THREAD_STACK_SIZE,
                                  (size_t) HTTP_THREAD_STACK, MHD_OPTION_END);
        if (!s->mhd) {
                (void) unlink(path);
                safe_close(s->fd);
                free(s->path);
                free(s);
                return error_set(err, EIO, "cannot start the HTTP server on %s", path);
        }
        *ret = s;
        return 0;
}

int http_server_add_connection(HttpServer *s, int fd, const char *peer, Error **err) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, PEER_PREFIX "%.*s", HTTP_PEER_MAX, peer);
        /* MHD takes fd even when it refuses it. */
        if (MHD_add_connection(s->mhd, fd, (const struct sockaddr *) &sa, sizeof sa) != MHD_YES)
                return error_set_errno(err, errno ? errno : EMFILE, "the HTTP server takes no more connections");
        return 0;
}

HttpServer *http_server_stop(HttpServer *s) {
        if (!s)
                return NULL;
        MHD_stop_daemon(s->mhd); /* closes the listening socket too */
        (void) unlink(s->path);
        free(s->path);
        free(s);
        return NULL;
}
