/* tls-server.h: the optional remote listener: TLS with client certificates
 * in front of the HTTP server (docs/operations.md, "Remote access").
 *
 * The only file of the daemon that includes libssl. It accepts TCP
 * connections on one address, does the TLS handshake requiring a client
 * certificate, and lets it through only when the certificate's SHA-256
 * fingerprint is in the trust list (read again at every handshake, so a
 * `plctl trust rm` refuses the next connection) and it is valid now. A
 * client that fails gets a handshake alert and nothing else: no HTTP byte
 * is read from it or sent to it. No session tickets or cache: every
 * connection is verified in full. A trusted connection is handed to the
 * HTTP server as one end of a socket pair (http_server_add_connection, its
 * peer named after the trust entry) and pumped both ways by a thread of its
 * own, so streamed answers and upgraded exec streams pass unchanged; a
 * client's close_notify half-closes the pair (stdin EOF of an exec). At
 * most TLS_CONNECTIONS_MAX connections at once; no read or write of a
 * handshake waits longer than TLS_HANDSHAKE_TIMEOUT_S. */
#pragma once

#include "common/base/error.h"
#include "portlayer/api/http-server.h"

#define TLS_CONNECTIONS_MAX 256
#define TLS_HANDSHAKE_TIMEOUT_S 10

typedef struct TlsServerConfig {
        const char *listen; /* "ADDR:PORT" ("[ADDR]:PORT" for IPv6) */
        const char *cert;   /* the server's certificate and key (PEM) */
        const char *key;
        const char *trust;  /* the trust list (common/tls/tls-util.h) */
} TlsServerConfig;

typedef struct TlsServer TlsServer;

/* Listens and serves through http (borrowed; stop this server first). */
int tls_server_start(const TlsServerConfig *cfg, HttpServer *http, TlsServer **ret, Error **err);
/* Stops accepting, ends every connection, waits for their threads.
 * NULL-safe; returns NULL. */
TlsServer *tls_server_stop(TlsServer *t);
