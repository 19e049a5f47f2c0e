/* plctl-tls.h: plctl's own byte streams to the daemon, for the one call
 * libcurl's easy interface cannot carry (the exec upgrade: a raw two-way
 * stream with a half-close), and the TLS handshake `remote add` uses to
 * fetch a server's certificate. The only file of plctl that includes libssl.
 *
 * A stream is the daemon's Unix socket, or, for a remote (plctl-client.h),
 * TLS to its address with our client certificate, the server pinned to the
 * certificate stored for the remote (no CA, no host name check). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/base/error.h"
#include "portlayer/plctl/plctl-client.h"

typedef struct PlctlStream PlctlStream;

int plctl_stream_open(PlctlClient *c, PlctlStream **ret, Error **err);
PlctlStream *plctl_stream_close(PlctlStream *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(PlctlStream *, plctl_stream_close);
#define _cleanup_plctl_stream_ _cleanup_(plctl_stream_closep)

/* The fd to poll for input; with TLS, bytes may already wait decrypted:
 * plctl_stream_pending() says so, and a read then does not block. */
int plctl_stream_fd(const PlctlStream *s);
bool plctl_stream_pending(PlctlStream *s);
/* > 0 bytes, 0 at EOF, or a negative errno. */
ssize_t plctl_stream_read(PlctlStream *s, void *buf, size_t len);
int plctl_stream_write(PlctlStream *s, const void *buf, size_t len);
/* Ends our direction (shutdown(SHUT_WR), or TLS close_notify); reading goes on. */
void plctl_stream_shutdown_write(PlctlStream *s);

/* "https://HOST:PORT" (PORT defaults to PLCTL_TLS_PORT) split. */
#define PLCTL_TLS_PORT "8443"
int plctl_url_split(const char *url, char **ret_host, char **ret_port, Error **err);

/* Connects to url presenting the client certificate, and returns the
 * server's certificate as PEM (*ret_pem) whatever the server then thinks of
 * us (an untrusted client still sees the server's certificate). */
int plctl_tls_fetch_server_cert(const char *url, const char *client_cert, const char *client_key, char **ret_pem,
                                Error **err);
