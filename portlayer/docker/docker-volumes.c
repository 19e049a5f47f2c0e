/* docker-volumes.c: docker volume ls, create, inspect, rm over the port
 * layer's named volumes (plvolume). A volume is an ext4 disk image the VM
 * gets as a disk: Docker's "local" driver, its Mountpoint the image file. */
#include "docker-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/io-util.h"
#include "common/base/parse-util.h"
#include "common/json/json-util.h"

/* {"name", "size", "created_at", "users", "path"} -> Docker's Volume. */
static json_t *volume_of(const json_t *v) {
        json_t *j = json_pack("{s:O, s:s, s:O, s:O, s:{}, s:s, s:{}, s:{s:I, s:I}}", "Name", json_object_get(v, "name"),
                              "Driver", "local", "Mountpoint", json_object_get(v, "path"), "CreatedAt",
                              json_object_get(v, "created_at"), "Labels", "Scope", "local", "Options", "UsageData",
                              "Size", json_integer_value(json_object_get(v, "size")), "RefCount",
                              (json_int_t) json_array_size(json_object_get(v, "users")));
        return j;
}

static int need_volumes(Docker *d, Error **err) {
        return d->volumes ? 0 : error_set(err, EOPNOTSUPP, "volumes are not enabled in this daemon");
}

int docker_volumes_list(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_json_ json_t *list = NULL;
        int r = need_volumes(d, err);
        if (r >= 0)
                r = volume_list(d->volumes, &list, err);
        if (r < 0)
                return r;
        json_t *out = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v) if (out) (void) json_array_append_new(out, volume_of(v));
        return out ? api_reply_json(resp, 200, json_pack("{s:o, s:[]}", "Volumes", out, "Warnings"))
                   : error_oom(err);
}

int docker_volumes_create(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_json_ json_t *body = NULL, *v = NULL;
        int r = need_volumes(d, err);
        if (r >= 0)
                r = docker_body(req, true, &body, err);
        if (r < 0)
                return r;
        const char *driver = json_string_value(json_object_get(body, "Driver"));
        if (driver && *driver && strcmp(driver, "local") != 0)
                return error_set(err, EOPNOTSUPP, "volume driver %.64s: not supported by portlayer (local is)", driver);
        json_t *opts = json_object_get(body, "DriverOpts");
        const char *key;
        json_t *o;
        uint64_t size = 0;
        json_object_foreach(opts, key, o) {
                if (strcmp(key, "size") != 0 || !json_is_string(o) || parse_size(json_string_value(o), &size) < 0)
                        return error_set(err, EINVAL, "volume option %.64s: only size=SIZE (like 10G) is supported",
                                         key);
        }
        char generated[CONTAINER_ID_HEX + 1];
        const char *name = json_string_value(json_object_get(body, "Name"));
        if (!name || !*name) { /* docker volume create without a name */
                random_hex(generated, CONTAINER_ID_HEX);
                name = generated;
        }
        r = volume_create(d->volumes, name, size, &v, err);
        if (r == -EEXIST) { /* Docker: creating an existing volume answers it */
                if (err && *err)
                        *err = error_free(*err);
                r = volume_inspect(d->volumes, name, &v, err);
        }
        if (r < 0)
                return r;
        json_t *j = volume_of(v);
        return j ? api_reply_json(resp, 201, j) : error_oom(err);
}

int docker_volumes_inspect(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_json_ json_t *v = NULL;
        int r = need_volumes(d, err);
        if (r >= 0 && (r = volume_inspect(d->volumes, p[0], &v, NULL)) == -ENOENT)
                return error_set(err, ENOENT, "get %s: no such volume", p[0]);
        if (r < 0)
                return error_set_errno(err, -r, "volume %s", p[0]);
        json_t *j = volume_of(v);
        return j ? api_reply_json(resp, 200, j) : error_oom(err);
}

int docker_volumes_remove(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        int r = need_volumes(d, err);
        if (r >= 0)
                r = volume_remove(d->volumes, p[0], err);
        return r < 0 ? r : api_reply_json(resp, 204, NULL);
}
