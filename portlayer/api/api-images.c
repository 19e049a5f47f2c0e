/* api-images.c: the image calls of the REST API: pull (progress streamed as
 * JSON lines), list, inspect, remove. The pull runs in a thread of its own
 * writing lines into a pipe the response streams; a client that goes away
 * does not stop it, so a started pull always ends in a complete image or in
 * none. */
#include "api-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/json/json-util.h"
#include "images/oci/oci-ref.h"
#include "images/store/docker-archive.h"
#include "images/store/oci-archive.h"
#include "images/store/oci-layout.h"

#define PROGRESS_EVERY_USEC (250 * USEC_PER_MSEC)

typedef struct Pull {
        Api *api;
        char *reference;
        const ApiPullRender *render;
        int fd;
        pthread_mutex_t lock;
        uint64_t last_usec;
} Pull;

/* Lines into the pipe (short lines: one atomic write each); j taken, NULL
 * writes nothing, an array writes each element. */
static void pull_lines(Pull *pl, json_t *j) {
        if (json_is_array(j)) {
                size_t i;
                json_t *line;
                json_array_foreach(j, i, line)(void) json_write_line(pl->fd, line);
        } else if (j)
                (void) json_write_line(pl->fd, j);
        json_decref(j);
}

static void pull_progress(const char *digest, uint64_t done, uint64_t total, void *userdata) {
        Pull *pl = userdata;
        uint64_t now = now_usec();
        pthread_mutex_lock(&pl->lock);
        bool emit = done == total || now - pl->last_usec >= PROGRESS_EVERY_USEC;
        if (emit)
                pl->last_usec = now;
        pthread_mutex_unlock(&pl->lock);
        if (emit)
                pull_lines(pl, pl->render->progress(digest, done, total));
}

static void pull_phase(StorePullPhase phase, size_t index, size_t count, const char *digest, void *userdata) {
        Pull *pl = userdata;
        pull_lines(pl, pl->render->phase(phase, index, count, digest));
}

static int pull_run(Pull *pl, StoreImage **ret, char **ret_tag, Error **err) {
        _cleanup_oci_ref_ OciRef *ref = NULL;
        _cleanup_image_source_ ImageSource *src = NULL;
        int r = oci_ref_parse(pl->reference, &ref, err);
        if (r >= 0)
                r = registry_source_new(pl->api->registry, ref, &src, err);
        if (r >= 0 && ref->tag) {
                OciRef t = *ref;
                t.digest = NULL;
                if (oci_ref_to_string(&t, ret_tag) < 0)
                        r = error_oom(err);
        }
        if (r < 0)
                return r;
        StorePullOptions o = {.digest = ref->digest, .progress = pull_progress, .phase = pull_phase, .userdata = pl};
        return store_pull(pl->api->store, src, *ret_tag, &o, ret, err);
}

static void pull_main(void *arg, int fd) {
        Pull *pl = arg;
        pl->fd = fd;
        _cleanup_error_ Error *e = NULL;
        _cleanup_store_image_ StoreImage *img = NULL;
        _cleanup_free_ char *tag = NULL;
        pull_lines(pl, pl->render->start(pl->reference));
        if (pull_run(pl, &img, &tag, &e) < 0) {
                log_info("pull %s: %s", pl->reference, error_text(e));
                pull_lines(pl, pl->render->error(error_text(e)));
        } else {
                log_info("pulled %s: %s", pl->reference, img->id);
                pull_lines(pl, pl->render->done(pl->reference, tag, img));
        }
}

static void pull_free(void *arg) {
        Pull *pl = arg;
        pthread_mutex_destroy(&pl->lock);
        free(pl->reference);
        free(pl);
}

int api_pull_stream(Api *a, HttpResponse *resp, const char *content_type, const char *reference,
                    const ApiPullRender *render, Error **err) {
        /* A malformed reference is the client's error, answered as such. */
        _cleanup_oci_ref_ OciRef *ref = NULL;
        int r = oci_ref_parse(reference, &ref, err);
        if (r < 0)
                return r;
        Pull *pl = calloc(1, sizeof(*pl));
        if (!pl || !(pl->reference = strdup(reference))) {
                free(pl);
                return error_oom(err);
        }
        pl->api = a;
        pl->render = render;
        pthread_mutex_init(&pl->lock, NULL);
        return api_stream(a, resp, content_type, pull_main, pl, pull_free, err);
}

/* The REST API's lines (docs/api.md, "Images"). */
static json_t *render_start(const char *reference) {
        return json_pack("{s:s, s:s}", "status", "pulling", "reference", reference);
}

static json_t *render_progress(const char *digest, uint64_t done, uint64_t total) {
        return json_pack("{s:s, s:s, s:I, s:I}", "status", done == total ? "verified" : "downloading", "digest", digest,
                         "current", (json_int_t) done, "total", (json_int_t) total);
}

static json_t *render_phase(StorePullPhase phase, size_t index, size_t count, const char *digest) {
        if (phase == STORE_PULL_PHASE_DISK_LAYER)
                return json_pack("{s:s, s:I, s:I, s:s?}", "status", "writing disk", "layer", (json_int_t) index + 1,
                                 "layers", (json_int_t) count, "digest", digest);
        return json_pack("{s:s}", "status", "committing");
}

static json_t *render_done(const char *reference, const char *tag, const StoreImage *img) {
        return json_pack("{s:s, s:s}", "status", "done", "id", img->id);
}

static json_t *render_error(const char *message) {
        return json_pack("{s:s}", "error", message);
}

int api_images_pull(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        static const char *const allowed[] = {"reference", NULL};
        static const ApiPullRender render = {render_start, render_progress, render_phase, render_done, render_error};
        _cleanup_json_ json_t *body = NULL;
        int r = api_body(req, allowed, false, &body, err);
        if (r < 0)
                return r;
        const char *reference = json_string_value(json_object_get(body, "reference"));
        if (!reference)
                return error_set(err, EINVAL, "\"reference\" (a string) is required");
        return api_pull_stream(a, resp, "application/x-ndjson", reference, &render, err);
}

static json_t *image_json(const StoreImage *img) {
        _cleanup_free_ char *text = NULL;
        if (store_image_to_json(img, &text) < 0)
                return NULL;
        return json_loads(text, 0, NULL);
}

int api_images_list(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        StoreImage **list = NULL;
        size_t n = 0;
        int r = store_list(a->store, &list, &n, err);
        if (r < 0)
                return r;
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n; i++)
                if (json_array_append_new(arr, image_json(list[i])) < 0)
                        arr = (json_decref(arr), NULL);
        store_image_list_free(list, n);
        if (!arr)
                return error_oom(err);
        return api_reply_json(resp, 200, arr);
}

int api_images_inspect(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        _cleanup_store_image_ StoreImage *img = NULL;
        int r = store_inspect(a->store, p[0], &img, err);
        if (r < 0)
                return r;
        json_t *j = image_json(img);
        return j ? api_reply_json(resp, 200, j) : error_oom(err);
}

int api_images_remove(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        int r = store_remove(a->store, p[0], err);
        return r < 0 ? r : api_reply_json(resp, 204, NULL);
}

/* An OCI layout tar: unpacked under /var/tmp (as the body was spooled), read
 * by the store's layout source, removed after the pull. */
static int import_oci_archive(Api *a, const char *path, const char *tag, StoreImage **ret, Error **err) {
        char dir[] = "/var/tmp/portlayer-import-XXXXXX";
        if (!mkdtemp(dir))
                return error_set_errno(err, errno, "create a directory to unpack into");
        _cleanup_image_source_ ImageSource *src = NULL;
        int r = oci_archive_unpack(path, dir, err);
        if (r >= 0)
                r = oci_layout_source_new(dir, NULL, &src, err);
        if (r >= 0) {
                StorePullOptions o = {0};
                r = store_pull(a->store, src, tag, &o, ret, err);
        }
        image_source_free(TAKE_PTR(src));
        (void) rm_rf(dir);
        return r;
}

/* POST /images/import?tag=T: a `docker save` archive (plain or gzip; Docker
 * 25's, which holds an OCI layout too, included) or an OCI layout tar,
 * spooled by the server and read through its /proc/self/fd name: the
 * docker-archive source reopens it for the blobs. Without a tag, a
 * docker-archive's first RepoTags entry; an OCI layout's image stays
 * untagged. */
int api_images_import(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        int fd = http_request_body_fd(req);
        const char *tag = http_request_query(req, "tag");
        if (fd < 0 || lseek(fd, 0, SEEK_END) <= 0)
                return error_set(err, EINVAL, "the request body must be an image archive (docker save, or an OCI layout tar)");
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        _cleanup_image_source_ ImageSource *src = NULL;
        _cleanup_store_image_ StoreImage *img = NULL;
        _cleanup_error_ Error *docker_err = NULL;
        int r = docker_archive_source_new(path, NULL, &src, &docker_err);
        if (r >= 0) {
                const char *t = tag ? tag : docker_archive_source_repo_tag(src);
                StorePullOptions o = {0};
                r = store_pull(a->store, src, t, &o, &img, err);
        } else if (r == -ENOENT) {
                r = import_oci_archive(a, path, tag, &img, err);
                if (r == -ENOENT)
                        return error_set(err, EINVAL, "neither a docker save archive (%s) nor an OCI layout tar (%s)",
                                         error_text(docker_err), error_text(*err));
        } else
                r = error_set(err, -r, "%s", error_text(docker_err));
        if (r < 0)
                return error_prefix(err, "import");
        log_info("imported %s%s%s", img->id, tag ? " as " : "", tag ? tag : "");
        json_t *j = image_json(img);
        return j ? api_reply_json(resp, 200, j) : error_oom(err);
}

int api_images_gc(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        StoreGcStats st = {0};
        int r = store_gc(a->store, false, &st, err);
        if (r < 0)
                return r;
        return api_reply_json(resp, 200,
                              json_pack("{s:I, s:I, s:I, s:I}", "blobs_removed", (json_int_t) st.blobs_removed,
                                        "images_removed", (json_int_t) st.images_removed, "tmp_removed",
                                        (json_int_t) st.tmp_removed, "bytes_freed", (json_int_t) st.bytes_freed));
}
