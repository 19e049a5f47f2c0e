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
