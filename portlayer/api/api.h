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

#include <jansson.h>

#include "common/base/error.h"
#include "images/registry/registry.h"
#include "images/store/store.h"
#include "portlayer/api/http-server.h"
#include "portlayer/container/container.h"

typedef struct Api Api;

typedef struct ApiConfig {
        ContainerHost *host;     /* borrowed */
        Store *store;            /* borrowed */
        RegistryClient *registry;/* borrowed */
        const char *version;     /* "0.1.0" */
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
/* An upgraded connection's socket, registered while its pumps run so that
 * api_shutdown() shuts it down; api_stopping() tells a pump to give up. */
void api_session_add(Api *a, int fd);
void api_session_remove(Api *a, int fd);
bool api_stopping(Api *a);
