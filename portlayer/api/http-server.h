/* http-server.h: an HTTP/1.1 server on a Unix socket, over libmicrohttpd.
 *
 * The only module that includes microhttpd. It owns the listening socket
 * (mode 0660, replaced when a stale one is found), one thread per connection
 * (handlers may block: a commit waits for a boot), request size limits, and
 * turns what a handler returns into a response: a buffer, or a pipe whose
 * read end is streamed until EOF (progress lines, tar archives) while a
 * worker writes the other end.
 *
 * Bodies: before the body arrives the server asks the route table how to
 * take it: HTTP_BODY_NONE refuses any body, HTTP_BODY_JSON buffers at most
 * HTTP_JSON_MAX bytes, HTTP_BODY_STREAM spools up to HTTP_STREAM_MAX bytes to
 * an unlinked temporary file the handler reads from. Past a limit the client
 * gets 413 and the handler is not called. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/error.h"

#define HTTP_JSON_MAX (1u << 20)
#define HTTP_STREAM_MAX (8ull << 30)
#define HTTP_PATH_MAX 4096
#define HTTP_CONNECTIONS_MAX 1024

typedef enum HttpBody {
        HTTP_BODY_NONE,
        HTTP_BODY_JSON,
        HTTP_BODY_STREAM,
        HTTP_BODY_DISCARD, /* read and dropped: a call refused whatever it carries */
} HttpBody;

typedef struct HttpRequest HttpRequest;

/* What a handler answers: a status and either a body (malloc'd, taken) or a
 * pipe's read end (taken, streamed to EOF). content_type NULL means
 * application/json. */
typedef struct HttpResponse {
        unsigned status;
        char *body;
        size_t body_len;
        int stream_fd;
        const char *content_type;
        char *header_name, *header_value; /* one extra header, both malloc'd, optional */
        char *headers; /* more: "Name: value\n" lines (http_response_add_header), malloc'd */
        /* An upgrade: the server answers 101 with "Upgrade: tcp", then runs
         * upgrade(upgrade_arg, fd, extra, extra_len) on the connection's
         * thread with the raw socket (extra: bytes the client sent after
         * its headers, to be treated as read from fd); the connection is
         * closed when it returns, then upgrade_free(upgrade_arg) runs. */
        void (*upgrade)(void *arg, int fd, const char *extra, size_t extra_len);
        void (*upgrade_free)(void *arg);
        void *upgrade_arg;
} HttpResponse;

/* The application side: how to take a request's body (called once the
 * headers are in), and the handler (called once the body is complete). */
typedef struct HttpApp {
        HttpBody (*body_kind)(void *app, const char *method, const char *path);
        void (*handle)(void *app, HttpRequest *req, HttpResponse *resp);
        void *app;
} HttpApp;

/* Adds a header to resp (kept in resp->headers). 0 or -ENOMEM. An upgrade's
 * 101 carries them too, and its content_type when set. */
int http_response_add_header(HttpResponse *resp, const char *name, const char *value);

const char *http_request_method(const HttpRequest *req);
const char *http_request_path(const HttpRequest *req);
/* A query argument, or NULL. */
const char *http_request_query(const HttpRequest *req, const char *name);
const char *http_request_header(const HttpRequest *req, const char *name);
/* The buffered JSON body (HTTP_BODY_JSON): NULL/0 when none came. */
const char *http_request_body(const HttpRequest *req, size_t *ret_len);
/* The spooled body (HTTP_BODY_STREAM), positioned at its start; -1 when none. */
int http_request_body_fd(const HttpRequest *req);
/* Who sent the request: NULL on the Unix socket, else the name of the
 * trusted client a connection handed over by http_server_add_connection()
 * carries (the TLS listener's). */
const char *http_request_peer(const HttpRequest *req);

typedef struct HttpServer HttpServer;

/* Listens on the Unix socket path (its directory is created; a socket file
 * left by a dead server is replaced, a live one is -EADDRINUSE) and serves
 * app from its own threads. */
int http_server_start_unix(const char *path, const HttpApp *app, HttpServer **ret, Error **err);
/* Serves one more connection: fd (taken, closed by the server) is one end
 * of a stream socket pair another front (the TLS listener) pumps; peer
 * names its client (at most HTTP_PEER_MAX bytes) for http_request_peer().
 * -EMFILE past the server's connection limit. */
#define HTTP_PEER_MAX 64
int http_server_add_connection(HttpServer *s, int fd, const char *peer, Error **err);
/* Stops accepting, waits for the connection threads, removes the socket.
 * NULL-safe; returns NULL. */
HttpServer *http_server_stop(HttpServer *s);
