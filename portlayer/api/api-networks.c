/* api-networks.c: the network calls of the REST API (create, list,
 * inspect, remove) and a handle's network and published ports. Thin
 * translations between HTTP and network.h / container.h; docs/api.md is the
 * contract. */
#include "api-internal.h"

#include <errno.h>
#include <string.h>

#include "common/json/json-util.h"

static int networks_on(Api *a, Error **err) {
        return a->network ? 0 : error_set(err, EOPNOTSUPP, "this daemon has no networks");
}

/* The request's JSON body with only allowed fields, once networks exist. */
static int network_body(Api *a, HttpRequest *req, const char *const *allowed, json_t **ret, Error **err) {
        int r = networks_on(a, err);
        return r < 0 ? r : api_body(req, allowed, false, ret, err);
}

int api_networks_create(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        static const char *const allowed[] = {"name", "subnet", NULL};
        _cleanup_json_ json_t *body = NULL;
        int r = network_body(a, req, allowed, &body, err);
        if (r < 0)
                return r;
        json_t *name = json_object_get(body, "name"), *subnet = json_object_get(body, "subnet");
        if (!json_is_string(name) || !json_is_string(subnet))
                return error_set(err, EINVAL, "\"name\" and \"subnet\" (strings) are required");
        json_t *j = NULL;
        r = network_create(a->network, json_string_value(name), json_string_value(subnet), &j, err);
        return r < 0 ? r : api_reply_json(resp, 201, j);
}

int api_networks_list(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        json_t *j = NULL;
        int r = networks_on(a, err);
        if (r >= 0)
                r = network_list(a->network, &j, err);
        return r < 0 ? r : api_reply_json(resp, 200, j);
}

int api_networks_inspect(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        json_t *j = NULL;
        int r = networks_on(a, err);
        if (r >= 0)
                r = network_inspect(a->network, p[0], &j, err);
        return r < 0 ? r : api_reply_json(resp, 200, j);
}

int api_networks_remove(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        int r = networks_on(a, err);
        if (r >= 0)
                r = network_remove(a->network, p[0], err);
        if (r < 0)
                return r;
        resp->status = 204;
        return 0;
}

int api_handles_network(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        static const char *const allowed[] = {"network", "ports", NULL};
        _cleanup_json_ json_t *body = NULL;
        int r = network_body(a, req, allowed, &body, err);
        if (r < 0)
                return r;
        const char *net = json_string_value(json_object_get(body, "network"));
        if (net && (r = network_exists(a->network, net, err)) < 0)
                return r;
        r = container_handle_update(a->host, p[0], body, err);
        return r < 0 ? r : api_handles_inspect(a, req, p, resp, err);
}
