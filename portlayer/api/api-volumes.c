/* api-volumes.c: named volumes (POST/GET/DELETE /volumes) and a handle's
 * mounts (PUT /handles/{handle}/mounts), docs/api.md "Volumes and mounts".
 * The work is plvolume's and plcontainer's; this file parses and renders. */
#include "api-internal.h"

#include <errno.h>
#include <string.h>

#include "common/base/parse-util.h"
#include "common/json/json-util.h"

/* "size": bytes as an integer, or a string with a K/M/G/T suffix ("10G"). */
static int body_size(const json_t *v, uint64_t *ret, Error **err) {
        *ret = 0;
        if (!v)
                return 0;
        if (json_is_integer(v) && json_integer_value(v) > 0) {
                *ret = (uint64_t) json_integer_value(v);
                return 0;
        }
        if (json_is_string(v) && parse_size(json_string_value(v), ret) >= 0 && *ret > 0)
                return 0;
        return error_set(err, EINVAL, "size: must be a positive number of bytes, or a string such as \"512M\" or \"10G\"");
}

int api_volumes_create(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        static const char *const allowed[] = {"name", "size", NULL};
        _cleanup_json_ json_t *body = NULL;
        int r = api_body(req, allowed, false, &body, err);
        if (r < 0)
                return r;
        const char *name = json_string_value(json_object_get(body, "name"));
        if (!name)
                return error_set(err, EINVAL, "name: a volume name is required");
        uint64_t size;
        r = body_size(json_object_get(body, "size"), &size, err);
        json_t *v = NULL;
        if (r >= 0)
                r = volume_create(a->volumes, name, size, &v, err);
        return r < 0 ? r : api_reply_json(resp, 201, v);
}

int api_volumes_list(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        json_t *list = NULL;
        int r = volume_list(a->volumes, &list, err);
        return r < 0 ? r : api_reply_json(resp, 200, list);
}

int api_volumes_inspect(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        json_t *v = NULL;
        int r = volume_inspect(a->volumes, p[0], &v, err);
        return r < 0 ? r : api_reply_json(resp, 200, v);
}

int api_volumes_remove(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        int r = volume_remove(a->volumes, p[0], err);
        return r < 0 ? r : api_reply_json(resp, 204, NULL);
}

/* The body is a JSON array (the contract of issue 10), so it does not go
 * through api_body(), which takes objects; duplicate keys are refused the
 * same way, and the entries are checked by container_handle_set_mounts(). */
int api_handles_mounts(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        size_t len = 0;
        const char *body = http_request_body(req, &len);
        json_error_t je;
        _cleanup_json_ json_t *mounts = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
        if (!len)
                return error_set(err, EINVAL, "a JSON array of mounts is required as the request body");
        if (!mounts)
                return error_set(err, EINVAL, "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
        if (!json_is_array(mounts))
                return error_set(err, EINVAL,
                                 "the request body must be a JSON array: [{\"volume\": \"data\", \"target\": \"/data\"}, ...]");
        int r = container_handle_set_mounts(a->host, p[0], mounts, err);
        return r < 0 ? r : api_handles_inspect(a, req, p, resp, err);
}
