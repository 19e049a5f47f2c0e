/* store-record.c: image records (images/<hex>/image.json) to and from
 * StoreImage, and the user markers beside them.
 *
 * A record holds what running the image needs without reading its blobs
 * again: the config's run fields, platform, created time, the manifest and
 * layer digests (gc keeps exactly those blobs), sizes and the source. It is
 * written atomically after the disk is in place and read back strictly:
 * records are ours, but a damaged one must fail cleanly, not crash. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "store-internal.h"
#include "common/json/json-util.h"

StoreImage *store_image_free(StoreImage *img) {
        if (!img)
                return NULL;
        free(img->id);
        free(img->manifest_digest);
        free(img->source);
        free(img->created);
        oci_config_free(img->config);
        oci_strings_clear(&img->layers);
        oci_strings_clear(&img->tags);
        free(img->disk_path);
        free(img);
        return NULL;
}

/* ---- to JSON ---- */

static int put_str(json_t *o, const char *key, const char *v) {
        if (!v)
                return 0;
        return json_object_set_new(o, key, json_string(v));
}

static int put_strings(json_t *o, const char *key, const OciStrings *v) {
        if (v->n == 0)
                return 0;
        json_t *a = json_array();
        if (!a)
                return -1;
        for (size_t i = 0; i < v->n; i++)
                if (json_array_append_new(a, json_string(v->v[i])) < 0) {
                        json_decref(a);
                        return -1;
                }
        return json_object_set_new(o, key, a);
}

static json_t *config_json(const OciConfig *c) {
        json_t *o = json_object(), *labels = json_object(), *ports = json_object();
        int r = o && labels && ports ? 0 : -1;
        for (size_t i = 0; r == 0 && i < c->label_keys.n; i++)
                r = json_object_set_new(labels, c->label_keys.v[i], json_string(c->label_values.v[i]));
        for (size_t i = 0; r == 0 && i < c->exposed_ports.n; i++)
                r = json_object_set_new(ports, c->exposed_ports.v[i], json_object());
        if (r == 0)
                r = put_strings(o, "Entrypoint", &c->entrypoint) | put_strings(o, "Cmd", &c->cmd) |
                    put_strings(o, "Env", &c->env) | put_str(o, "WorkingDir", c->working_dir) |
                    put_str(o, "User", c->user) | put_str(o, "StopSignal", c->stop_signal);
        if (r == 0 && c->label_keys.n)
                r = json_object_set(o, "Labels", labels);
        if (r == 0 && c->exposed_ports.n)
                r = json_object_set(o, "ExposedPorts", ports);
        json_decref(labels);
        json_decref(ports);
        if (r != 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

/* The record's JSON; with_extra adds tags and the disk path (inspect). */
static json_t *record_json(const StoreImage *img, bool with_extra) {
        _cleanup_json_ json_t *o = json_object();
        if (!o)
                return NULL;
        const OciConfig *c = img->config;
        int r = put_str(o, "id", img->id) | put_str(o, "manifest", img->manifest_digest) |
                put_str(o, "source", img->source) | put_str(o, "created", img->created) |
                json_object_set_new(o, "pulled", json_integer(img->pulled)) | put_str(o, "os", c->os) |
                put_str(o, "architecture", c->architecture) | put_str(o, "variant", c->variant) |
                json_object_set_new(o, "config", config_json(c)) | put_strings(o, "diff_ids", &c->diff_ids) |
                put_strings(o, "layers", &img->layers) |
                json_object_set_new(o, "content_size", json_integer((json_int_t) img->content_size)) |
                json_object_set_new(o, "disk_size", json_integer((json_int_t) img->disk_size));
        if (r == 0 && with_extra) {
                json_t *tags = json_array();
                for (size_t i = 0; tags && i < img->tags.n; i++)
                        r |= json_array_append_new(tags, json_string(img->tags.v[i]));
                r |= json_object_set_new(o, "tags", tags) | put_str(o, "disk", img->disk_path);
        }
        return r == 0 ? TAKE_PTR(o) : NULL;
}

int store_image_to_json(const StoreImage *img, char **ret) {
        _cleanup_json_ json_t *o = record_json(img, true);
        if (!o)
                return -ENOMEM;
        *ret = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        return *ret ? 0 : -ENOMEM;
}

int store_record_write(Store *s, const StoreImage *img, Error **err) {
        const char *hex;
        if (!store_id_hex(img->id, &hex))
                return error_set(err, EINVAL, "bad image id '%s'", img->id);
        _cleanup_json_ json_t *o = record_json(img, false);
        _cleanup_free_ char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (!text)
                return error_oom(err);
        _cleanup_close_ int dir = openat(s->images_fd, hex, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir < 0)
                return error_set_errno(err, errno, "open '%s/images/%s'", s->root, hex);
        return store_write_atomic(s, dir, "image.json", text, strlen(text), err);
}

/* ---- from JSON ---- */

static int get_str(json_t *o, const char *key, bool required, char **ret) {
        json_t *v = json_object_get(o, key);
        if (!v)
                return required ? -EBADMSG : 0;
        if (!json_is_string(v) || json_string_length(v) > OCI_STRING_MAX)
                return -EBADMSG;
        return (*ret = strdup(json_string_value(v))) ? 0 : -ENOMEM;
}

static int get_strings(json_t *o, const char *key, OciStrings *ret) {
        json_t *a = json_object_get(o, key);
        if (!a)
                return 0;
        if (!json_is_array(a) || json_array_size(a) > OCI_ARRAY_MAX)
                return -EBADMSG;
        if (!(ret->v = calloc(json_array_size(a) + 1, sizeof *ret->v)))
                return -ENOMEM;
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v) {
                if (!json_is_string(v))
                        return -EBADMSG;
                if (!(ret->v[i] = strdup(json_string_value(v))))
                        return -ENOMEM;
                ret->n = i + 1;
        }
        return 0;
}

static int get_map(json_t *o, const char *key, OciStrings *keys, OciStrings *values) {
        json_t *m = json_object_get(o, key);
        if (!m)
                return 0;
        if (!json_is_object(m) || json_object_size(m) > OCI_ARRAY_MAX)
                return -EBADMSG;
        size_t n = json_object_size(m);
        if (!(keys->v = calloc(n + 1, sizeof *keys->v)) || (values && !(values->v = calloc(n + 1, sizeof *values->v))))
                return -ENOMEM;
        const char *k;
        json_t *v;
        json_object_foreach(m, k, v) {
                if (values && !json_is_string(v))
                        return -EBADMSG;
                if (!(keys->v[keys->n] = strdup(k)))
                        return -ENOMEM;
                keys->n++;
                if (values) {
                        if (!(values->v[values->n] = strdup(json_string_value(v))))
                                return -ENOMEM;
                        values->n++;
                }
        }
        return 0;
}

static int get_u64(json_t *o, const char *key, uint64_t *ret) {
        json_t *v = json_object_get(o, key);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EBADMSG;
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

static int record_parse(json_t *o, StoreImage *img) {
        OciConfig *c = img->config;
        json_t *cfg = json_object_get(o, "config");
        json_t *pulled = json_object_get(o, "pulled");
        int r;
        if (!json_is_object(cfg) || !json_is_integer(pulled))
                return -EBADMSG;
        img->pulled = json_integer_value(pulled);
        if ((r = get_str(o, "id", true, &img->id)) < 0 || (r = get_str(o, "manifest", true, &img->manifest_digest)) < 0 ||
            (r = get_str(o, "source", true, &img->source)) < 0 || (r = get_str(o, "created", false, &img->created)) < 0 ||
            (r = get_str(o, "os", true, &c->os)) < 0 || (r = get_str(o, "architecture", true, &c->architecture)) < 0 ||
            (r = get_str(o, "variant", false, &c->variant)) < 0 || (r = get_strings(o, "diff_ids", &c->diff_ids)) < 0 ||
            (r = get_strings(o, "layers", &img->layers)) < 0 || (r = get_u64(o, "content_size", &img->content_size)) < 0 ||
            (r = get_u64(o, "disk_size", &img->disk_size)) < 0 || (r = get_strings(cfg, "Entrypoint", &c->entrypoint)) < 0 ||
            (r = get_strings(cfg, "Cmd", &c->cmd)) < 0 || (r = get_strings(cfg, "Env", &c->env)) < 0 ||
            (r = get_str(cfg, "WorkingDir", false, &c->working_dir)) < 0 || (r = get_str(cfg, "User", false, &c->user)) < 0 ||
            (r = get_str(cfg, "StopSignal", false, &c->stop_signal)) < 0 ||
            (r = get_map(cfg, "Labels", &c->label_keys, &c->label_values)) < 0 ||
            (r = get_map(cfg, "ExposedPorts", &c->exposed_ports, NULL)) < 0)
                return r;
        if (!store_id_hex(img->id, NULL) || !store_id_hex(img->manifest_digest, NULL))
                return -EBADMSG;
        for (size_t i = 0; i < img->layers.n; i++)
                if (!store_id_hex(img->layers.v[i], NULL))
                        return -EBADMSG;
        return 0;
}

int store_record_read(Store *s, const char *hex, StoreImage **ret, Error **err) {
        char path[STORE_HEX_LEN + 16];
        snprintf(path, sizeof path, "%s/image.json", hex);
        _cleanup_close_ int fd = openat(s->images_fd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return error_set_errno(err, errno, "image %s", hex);
        _cleanup_free_ char *data = NULL;
        size_t n = 0;
        int r = read_fd_bounded(fd, STORE_RECORD_MAX, &data, &n);
        if (r < 0)
                return error_set_errno(err, -r, "read '%s/images/%s'", s->root, path);
        json_error_t jerr;
        _cleanup_json_ json_t *o = json_loadb(data, n, JSON_REJECT_DUPLICATES, &jerr);
        _cleanup_store_image_ StoreImage *img = calloc(1, sizeof *img);
        if (!img || !(img->config = calloc(1, sizeof *img->config)))
                return error_oom(err);
        r = json_is_object(o) ? record_parse(o, img) : -EBADMSG;
        if (r == -ENOMEM)
                return error_oom(err);
        if (r < 0 || strcmp(img->id + 7, hex) != 0)
                return error_set(err, EBADMSG, "damaged image record '%s/images/%s'", s->root, path);
        if (asprintf(&img->disk_path, "%s/images/%s/disk.ext4", s->root, hex) < 0) {
                img->disk_path = NULL;
                return error_oom(err);
        }
        *ret = TAKE_PTR(img);
        return 0;
}

bool store_record_exists(Store *s, const char *hex) {
        char path[STORE_HEX_LEN + 16];
        snprintf(path, sizeof path, "%s/image.json", hex);
        struct stat st;
        return fstatat(s->images_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

int store_image_fill_tags(StoreImage *img, const StoreTags *t) {
        oci_strings_clear(&img->tags);
        if (!(img->tags.v = calloc(t->n + 1, sizeof *img->tags.v)))
                return -ENOMEM;
        for (size_t i = 0; i < t->n; i++) {
                if (strcmp(t->ids[i], img->id) != 0)
                        continue;
                if (!(img->tags.v[img->tags.n] = strdup(t->names[i])))
                        return -ENOMEM;
                img->tags.n++;
        }
        return 0;
}

int store_record_users(Store *s, const char *hex, size_t *ret) {
        char path[STORE_HEX_LEN + 16];
        snprintf(path, sizeof path, "%s/users", hex);
        *ret = 0;
        DIR *d = store_dir_at(s->images_fd, path);
        if (!d)
                return errno == ENOENT ? 0 : negative_errno();
        for (struct dirent *de; (de = readdir(d));)
                if (de->d_name[0] != '.')
                        (*ret)++;
        closedir(d);
        return 0;
}

char *store_config_created(const void *data, size_t n) {
        json_error_t jerr;
        _cleanup_json_ json_t *o = json_loadb(data, n, 0, &jerr);
        json_t *v = json_object_get(o, "created");
        if (!json_is_string(v) || json_string_length(v) > OCI_PLATFORM_STRING_MAX)
                return NULL;
        return strdup(json_string_value(v));
}
