/* api.h: the port layer's REST API (docs/api.md, docs/openapi.yaml).
 *
 * Routes requests to the container host, the image store and the registry
 * client, maps errors to HTTP statuses once (api_status_of_errno), and
 * renders every answer as JSON: errors as {"message": "..."}. Request bodies
 * are parsed by api_json_parse(), which every route goes through: bounded
 * size (the server's), duplicate keys refused, only the route's fields
 * allowed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/base/error.h"
#include "images/registry/registry.h"
#include "images/store/store.h"
#include "portlayer/api/http-server.h"
#include "portlayer/container/container.h"
#include "portlayer/volume/volume.h"

typedef struct Api Api;

typedef struct ApiConfig {
        ContainerHost *host;     /* borrowed */
        Store *store;            /* borrowed */
        RegistryClient *registry;/* borrowed */
        NetworkHost *network;    /* borrowed; NULL: no networks */
        VolumeStore *volumes;    /* borrowed */
        const char *version;     /* "0.1.0" */
        const char *trust_path;  /* the TLS listener's trust list (Unix-socket-only calls) */
} ApiConfig;

int api_new(const ApiConfig *cfg, Api **ret, Error **err);
/* Ends every upgraded exec session (their sockets are shut down, their
 * pumps stop), so the HTTP server can stop; call before
 * http_server_stop(). */
void api_shutdown(Api *a);
Api *api_free(Api *a);

/* The HttpApp that serves a. */
HttpApp api_http_app(Api *a);

/* One route as docs/openapi.yaml lists it. */
typedef struct ApiRouteInfo {
        const char *method;
        const char *pattern; /* "/containers/{id}/handle" */
} ApiRouteInfo;
/* The routes the API serves (for the test that checks the OpenAPI file). */
const ApiRouteInfo *api_routes(size_t *ret_n);

/* Parses a JSON request body: an object, no duplicate keys, no field outside
 * allowed (NULL-terminated). An empty body is an empty object when
 * empty_ok. -EINVAL/-EBADMSG with a message naming the problem. */
int api_json_parse(const char *body, size_t len, const char *const *allowed, bool empty_ok, json_t **ret,
                   Error **err);

/* 400, 404, 409, 413, 500, 504... for a negative errno. */
unsigned api_status_of_errno(int r);

/* --- for a second front end on the same server code (portlayer/docker) --- */

/* Matches path against a route pattern ("{}" one segment, a final "{*}"
 * the rest); params (room for API_ROUTE_PARAMS_MAX) get malloc'd copies of
 * the parts. */
#define API_ROUTE_PARAMS_MAX 2
bool api_route_match(const char *pattern, const char *path, char **params, size_t *n_params);
/* The first of n routes matching method and path: table holds n structs of
 * stride bytes, each starting with an ApiRouteInfo. Returns its index with
 * params filled, or -1 with *path_known telling a 405 from a 404. */
ssize_t api_route_find(const void *table, size_t n, size_t stride, const char *method, const char *path, char **params,
                       size_t *n_params, bool *path_known);
/* resp = status + JSON of j (taken; NULL gives no body). Returns 0. */
int api_reply_json(HttpResponse *resp, unsigned status, json_t *j);
/* A boolean query argument: "1", "true", "yes" (absent: false). */
bool api_query_bool(HttpRequest *req, const char *name);
/* An integer query argument in [min, max]; def when absent. -EINVAL. */
int api_query_int(HttpRequest *req, const char *name, long min, long max, long def, long *ret, Error **err);
/* Streams a response: fn(arg, fd) runs in a thread of its own writing the
 * body into fd (a pipe the server reads to EOF); fd is closed and free_fn(arg)
 * called when fn returns. A reader that goes away makes writes fail (EPIPE),
 * which fn takes as its cue to stop. On failure to start, free_fn(arg) is
 * called and a negative errno returned. api_free() waits for every stream. */
int api_stream(Api *a, HttpResponse *resp, const char *content_type, void (*fn)(void *arg, int fd), void *arg,
               void (*free_fn)(void *arg), Error **err);
/* A pull from a registry into the store, streamed as JSON lines: the one
 * pull both front ends run (the pull goes on when the client leaves, so an
 * image is whole or absent). render turns its steps into lines (a JSON
 * value each, an array for several, NULL for none); progress is called at
 * most every 250 ms per pull and at each blob's end. A malformed reference
 * is -EINVAL before any line. */
typedef struct ApiPullRender {
        json_t *(*start)(const char *reference);
        json_t *(*progress)(const char *digest, uint64_t done, uint64_t total);
        json_t *(*phase)(StorePullPhase phase, size_t index, size_t count, const char *digest);
        json_t *(*done)(const char *reference, const char *tag, const StoreImage *img); /* tag: NULL by digest */
        json_t *(*error)(const char *message);
} ApiPullRender;
int api_pull_stream(Api *a, HttpResponse *resp, const char *content_type, const char *reference,
                    const ApiPullRender *render, Error **err);
/* Makes resp the upgrade that carries e's streams (docs/api.md, "Exec"),
 * taking the reference e (also on failure): stdin from the client when
 * open_stdin (its half-close closes it), stdout and stderr to it in
 * multiplexed frames (raw with a terminal), a stream left out read and
 * dropped; exit_frame ends with the stream-3 frame {"exit_code": N}. The
 * exit is recorded before the connection closes. */
typedef struct ApiExecStreams {
        bool open_stdin, exit_frame, no_stdout, no_stderr;
} ApiExecStreams;
int api_exec_upgrade(Api *a, ContainerExec *e, const ApiExecStreams *o, HttpResponse *resp, Error **err);
/* An upgraded connection's socket, registered while its pumps run so that
 * api_shutdown() shuts it down; api_stopping() tells a pump to give up. */
void api_session_add(Api *a, int fd);
void api_session_remove(Api *a, int fd);
bool api_stopping(Api *a);
