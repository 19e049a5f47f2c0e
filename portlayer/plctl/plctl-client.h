/* plctl-client.h: the REST client plctl talks to portlayerd with: libcurl
 * over the daemon's Unix socket, or over TLS to a remote (a client
 * certificate, the server pinned to its stored certificate), JSON bodies
 * with jansson (docs/api.md).
 *
 * A status of 400 or more becomes an error whose message is the daemon's
 * {"message"} and whose code follows the API's table backwards (404 ENOENT,
 * 409 EBUSY, 400 EINVAL, ...), so the caller prints it once as "plctl: ...".
 * Not thread-safe: one client per thread. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/base/error.h"
#include "common/base/macro.h"

typedef struct PlctlClient PlctlClient;

/* A daemon reached over TLS (plctl-remote.c keeps them). */
typedef struct PlctlRemote {
        const char *name;
        const char *url;                       /* "https://HOST:PORT" */
        const char *client_cert, *client_key;  /* ours (PEM) */
        const char *server_cert;               /* the pinned server certificate (PEM) */
} PlctlRemote;

/* remote (copied) when given; else the socket: socket_path when given,
 * else $PORTLAYER_SOCKET, else PLCTL_DEFAULT_SOCKET. Connects lazily, on the
 * first call. Returns 0 or -ENOMEM. */
#define PLCTL_DEFAULT_SOCKET "/run/portlayer/portlayer.sock"
int plctl_client_new(const char *socket_path, const PlctlRemote *remote, PlctlClient **ret, Error **err);
PlctlClient *plctl_client_free(PlctlClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(PlctlClient *, plctl_client_free);
#define _cleanup_plctl_client_ _cleanup_(plctl_client_freep)

/* The socket path, or the remote's URL (for messages). */
const char *plctl_client_target(const PlctlClient *c);
/* The remote, or NULL for the Unix socket. */
const PlctlRemote *plctl_client_remote(const PlctlClient *c);

/* A path component escaped for a URL (a container name, an image
 * reference). Returns a string to free, or NULL on allocation failure. */
char *plctl_escape(const char *s);

/* One request; body (optional) is sent as JSON. On a 2xx answer returns the
 * status and, when ret is given, the body parsed as JSON (NULL for an empty
 * body). On a refusal returns the negative code with the daemon's message;
 * on a connection failure -ECONNREFUSED "cannot reach portlayerd at ...". */
int plctl_call(PlctlClient *c, const char *method, const char *path, json_t *body, json_t **ret, Error **err);

/* Like plctl_call but hands each line of a streamed 2xx answer (ndjson) to
 * on_line, without its newline and NUL-terminated; a line longer than 1 MiB
 * is an error. on_line returns 0, or a negative errno after setting *err to
 * stop (the call then returns that error). */
typedef int (*PlctlLineFn)(const char *line, size_t len, void *userdata, Error **err);
int plctl_stream_lines(PlctlClient *c, const char *method, const char *path, json_t *body, PlctlLineFn on_line,
                       void *userdata, Error **err);

/* GET path, the 2xx answer's bytes written to fd. */
int plctl_download(PlctlClient *c, const char *path, int fd, Error **err);

/* method path with fd's bytes (from its offset to EOF) as the body
 * (application/x-tar); *ret (optional) the answer as JSON, as plctl_call. */
int plctl_upload(PlctlClient *c, const char *method, const char *path, int fd, json_t **ret, Error **err);

/* "GET /_ping" answered 200 within timeout_ms. */
bool plctl_client_ping(PlctlClient *c, long timeout_ms);
