/* docker-networks.c: docker network ls, create, inspect, rm over the port
 * layer's networks (plnetwork): a bridge with a subnet and its leases. */
#include "docker-internal.h"

#include <errno.h>
#include <string.h>

#include "common/json/json-util.h"

/* {"name", "subnet", "gateway", ...} -> Docker's network object. */
static json_t *network_of(const json_t *n) {
        const char *name = json_string_value(json_object_get(n, "name"));
        return json_pack("{s:s, s:s, s:s, s:s, s:b, s:{s:s, s:[{s:O, s:O}]}, s:{}, s:{}, s:{}}", "Name", name ? name : "",
                         "Id", name ? name : "", "Driver", "bridge", "Scope", "local", "Internal", false, "IPAM",
                         "Driver", "default", "Config", "Subnet", json_object_get(n, "subnet"), "Gateway",
                         json_object_get(n, "gateway"), "Containers", "Options", "Labels");
}

static int need_networks(Docker *d, Error **err) {
        return d->network ? 0 : error_set(err, EOPNOTSUPP, "networks are not enabled in this daemon");
}

/* Docker's default network is "bridge"; ours is "default". */
static const char *name_of(const char *docker_name) {
        return strcmp(docker_name, "bridge") == 0 ? "default" : docker_name;
}

int docker_networks_list(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_json_ json_t *list = NULL;
        int r = need_networks(d, err);
        if (r >= 0)
                r = network_list(d->network, &list, err);
        if (r < 0)
                return r;
        json_t *out = json_array();
        size_t i;
        json_t *n;
        json_array_foreach(list, i, n) if (out) (void) json_array_append_new(out, network_of(n));
        return out ? api_reply_json(resp, 200, out) : error_oom(err);
}

int docker_networks_create(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_json_ json_t *body = NULL, *n = NULL;
        int r = need_networks(d, err);
        if (r >= 0)
                r = docker_body(req, false, &body, err);
        if (r < 0)
                return r;
        const char *name = json_string_value(json_object_get(body, "Name"));
        const char *driver = json_string_value(json_object_get(body, "Driver"));
        if (!name || !*name)
                return error_set(err, EINVAL, "Name: a network name is required");
        if (driver && *driver && strcmp(driver, "bridge") != 0)
                return error_set(err, EOPNOTSUPP, "network driver %.64s: not supported by portlayer (bridge is)", driver);
        json_t *cfg = json_object_get(json_object_get(body, "IPAM"), "Config");
        const char *subnet = json_string_value(json_object_get(json_array_get(cfg, 0), "Subnet"));
        if (!subnet)
                return error_set(err, EINVAL, "a subnet is required: docker network create --subnet 10.89.0.0/24 NAME");
        if ((r = network_create(d->network, name, subnet, &n, err)) < 0)
                return r;
        return api_reply_json(resp, 201, json_pack("{s:s, s:s}", "Id", name, "Warning", ""));
}

int docker_networks_inspect(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_json_ json_t *n = NULL;
        int r = need_networks(d, err);
        if (r >= 0 && (r = network_inspect(d->network, name_of(p[0]), &n, NULL)) == -ENOENT)
                return error_set(err, ENOENT, "network %s not found", p[0]);
        if (r < 0)
                return error_set_errno(err, -r, "network %s", p[0]);
        json_t *j = network_of(n);
        return j ? api_reply_json(resp, 200, j) : error_oom(err);
}

int docker_networks_remove(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        int r = need_networks(d, err);
        if (r >= 0)
                r = network_remove(d->network, name_of(p[0]), err);
        return r < 0 ? r : api_reply_json(resp, 204, NULL);
}
