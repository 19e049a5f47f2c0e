/* docker-images.c: docker images, image inspect, rmi, and pull
 * (POST /images/create) with Docker's JSON progress lines. */
#include "docker-internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/json/json-util.h"

int docker_image_get(Docker *d, const char *name, StoreImage **ret, Error **err) {
        int r = store_inspect(d->store, name, ret, NULL);
        if (r == -ENOENT || r == -EINVAL)
                return error_set(err, ENOENT, "No such image: %s", name);
        return r < 0 ? error_set_errno(err, -r, "image %s", name) : 0;
}

int docker_images_list(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        StoreImage **list = NULL;
        size_t n = 0;
        int r = store_list(d->store, &list, &n, err);
        if (r < 0)
                return r;
        bool all = api_query_bool(req, "all");
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n; i++) {
                if (!all && list[i]->tags.n == 0)
                        continue; /* Docker leaves untagged images out without -a */
                if (json_array_append_new(arr, docker_image_summary_of(list[i])) < 0)
                        arr = (json_decref(arr), NULL);
        }
        store_image_list_free(list, n);
        return arr ? api_reply_json(resp, 200, arr) : error_oom(err);
}

/* "/images/{name}/json": the name may hold '/'. */
static int image_name(const char *param, char **ret, Error **err) {
        size_t len = strlen(param);
        if (len <= 5 || strcmp(param + len - 5, "/json") != 0)
                return error_set(err, ENOENT, "no such image call");
        return (*ret = strndup(param, len - 5)) ? 0 : error_oom(err);
}

int docker_images_inspect(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_free_ char *name = NULL;
        int r = image_name(p[0], &name, err);
        if (r < 0)
                return r;
        _cleanup_store_image_ StoreImage *img = NULL;
        if ((r = docker_image_get(d, name, &img, err)) < 0)
                return r;
        json_t *j = docker_image_inspect_of(img);
        return j ? api_reply_json(resp, 200, j) : error_oom(err);
}

int docker_images_remove(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_store_image_ StoreImage *img = NULL;
        int r = docker_image_get(d, p[0], &img, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *id = strdup(img->id);
        if (!id)
                return error_oom(err);
        if ((r = store_remove(d->store, p[0], err)) < 0)
                return r;
        return api_reply_json(resp, 200, json_pack("[{s:s}, {s:s}]", "Untagged", p[0], "Deleted", id));
}

/* Docker names a layer by the first 12 hex digits of its digest. */
static void short_id(const char *digest, char out[13]) {
        const char *hex = strchr(digest, ':');
        snprintf(out, 13, "%s", hex ? hex + 1 : digest);
}

static json_t *render_start(const char *reference) {
        return json_pack("{s:s}", "status", "Pulling from portlayer's registry client");
}

static json_t *render_progress(const char *digest, uint64_t done, uint64_t total) {
        char id[13];
        short_id(digest, id);
        if (done == total)
                return json_pack("{s:s, s:s}", "status", "Download complete", "id", id);
        return json_pack("{s:s, s:{s:I, s:I}, s:s}", "status", "Downloading", "progressDetail", "current",
                         (json_int_t) done, "total", (json_int_t) total, "id", id);
}

static json_t *render_phase(StorePullPhase phase, size_t index, size_t count, const char *digest) {
        char id[13];
        if (phase != STORE_PULL_PHASE_DISK_LAYER || !digest)
                return NULL;
        short_id(digest, id);
        return json_pack("{s:s, s:s}", "status", "Pull complete", "id", id);
}

static json_t *render_done(const char *reference, const char *tag, const StoreImage *img) {
        _cleanup_free_ char *digest = NULL, *status = NULL;
        if ((img->manifest_digest && asprintf(&digest, "Digest: %s", img->manifest_digest) < 0) ||
            asprintf(&status, "Status: Downloaded newer image for %s", tag ? tag : reference) < 0)
                return NULL;
        json_t *lines = json_array();
        if (lines && digest)
                (void) json_array_append_new(lines, json_pack("{s:s}", "status", digest));
        if (lines)
                (void) json_array_append_new(lines, json_pack("{s:s}", "status", status));
        return lines;
}

static json_t *render_error(const char *message) {
        return json_pack("{s:{s:s}, s:s}", "errorDetail", "message", message, "error", message);
}

int docker_images_create(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        static const ApiPullRender render = {render_start, render_progress, render_phase, render_done, render_error};
        const char *from = http_request_query(req, "fromImage"), *tag = http_request_query(req, "tag");
        if (http_request_query(req, "fromSrc"))
                return error_set(err, EOPNOTSUPP, "docker import is not supported by portlayer");
        if (!from || !*from)
                return error_set(err, EINVAL, "fromImage=: the image to pull is required");
        const char *platform = http_request_query(req, "platform");
        if (platform && *platform && strncmp(platform, "linux", 5) != 0)
                return error_set(err, EOPNOTSUPP, "platform %.64s: only linux images run here", platform);
        _cleanup_free_ char *reference = NULL;
        int r = tag && *tag ? asprintf(&reference, "%s%s%s", from, strncmp(tag, "sha256:", 7) == 0 ? "@" : ":", tag)
                            : asprintf(&reference, "%s", from);
        if (r < 0)
                return error_oom(err);
        return api_pull_stream(d->api, resp, "application/json", reference, &render, err);
}
