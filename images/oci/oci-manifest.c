/* oci-manifest.c: manifests, indexes and image configs (see oci-manifest.h).
 *
 * jansson parses the bounded buffer into a tree (duplicate keys refused, NUL
 * in strings refused by default); small getters then copy each field out with
 * its type and bound checked, so no jansson type escapes this file. Each
 * getter names the document and field in its error, e.g. "manifest layer 3:
 * bad digest 'sha256:xyz'". Partially filled structures are freed by the
 * cleanup attribute of the caller when a later field fails. */
#include "images/oci/oci-manifest.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "images/oci/digest.h"
#include "common/json/json-util.h"

#define WHAT_MAX 64
#define PLATFORM_LIST_MAX 1024

void oci_strings_clear(OciStrings *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i]);
        free(s->v);
        *s = (OciStrings) {};
}

static void descriptor_clear(OciDescriptor *d) {
        free(d->media_type);
        free(d->digest);
        free(d->platform.os);
        free(d->platform.architecture);
        free(d->platform.variant);
        *d = (OciDescriptor) {};
}

/* ---- generic getters ---- */

static int json_load_bounded(const void *data, size_t size, const char *what, json_t **ret, Error **err) {
        json_error_t e;

        if (size > OCI_JSON_MAX)
                return error_set(err, EFBIG, "%s: %zu bytes exceeds the limit of %u", what, size, OCI_JSON_MAX);
        json_t *j = json_loadb(data ? data : "", size, JSON_REJECT_DUPLICATES, &e);
        if (!j)
                return error_set(err, EBADMSG, "%s: invalid JSON at line %d column %d: %s", what, e.line, e.column,
                                 e.text);
        if (!json_is_object(j)) {
                json_decref(j);
                return error_set(err, EBADMSG, "%s: not a JSON object", what);
        }
        *ret = j;
        return 0;
}

static int string_dup(json_t *v, const char *key, size_t max, const char *what, char **ret, Error **err) {
        if (!json_is_string(v))
                return error_set(err, EBADMSG, "%s: \"%s\" must be a string", what, key);
        if (json_string_length(v) > max)
                return error_set(err, EFBIG, "%s: \"%s\" longer than %zu bytes", what, key, max);
        *ret = strdup(json_string_value(v));
        return *ret ? 0 : error_oom(err);
}

/* Absent or null members leave *ret NULL; an error only when required. */
static int get_string(json_t *obj, const char *key, bool required, size_t max, const char *what, char **ret,
                      Error **err) {
        json_t *v = json_object_get(obj, key);
        if (!v || json_is_null(v))
                return required ? error_set(err, EBADMSG, "%s: missing \"%s\"", what, key) : 0;
        return string_dup(v, key, max, what, ret, err);
}

static int strings_alloc(OciStrings *s, size_t n, Error **err) {
        s->v = calloc(n ? n : 1, sizeof(char *));
        if (!s->v)
                return error_oom(err);
        s->n = n;
        return 0;
}

/* An optional array of strings, at most max items. */
static int get_strings(json_t *obj, const char *key, size_t max, const char *what, OciStrings *ret, Error **err) {
        json_t *a = json_object_get(obj, key);
        if (!a || json_is_null(a))
                return 0;
        if (!json_is_array(a))
                return error_set(err, EBADMSG, "%s: \"%s\" must be an array of strings", what, key);
        if (json_array_size(a) > max)
                return error_set(err, E2BIG, "%s: \"%s\" has more than %zu items", what, key, max);
        int r = strings_alloc(ret, json_array_size(a), err);
        for (size_t i = 0; r >= 0 && i < ret->n; i++)
                r = string_dup(json_array_get(a, i), key, OCI_STRING_MAX, what, &ret->v[i], err);
        return r;
}

/* An optional object: its keys, and if values is not NULL its string values. */
static int get_map(json_t *obj, const char *key, const char *what, OciStrings *keys, OciStrings *values,
                   Error **err) {
        json_t *m = json_object_get(obj, key), *v;
        const char *k;
        size_t i = 0;
        int r;

        if (!m || json_is_null(m))
                return 0;
        if (!json_is_object(m))
                return error_set(err, EBADMSG, "%s: \"%s\" must be an object", what, key);
        if (json_object_size(m) > OCI_ARRAY_MAX)
                return error_set(err, E2BIG, "%s: \"%s\" has more than %d entries", what, key, OCI_ARRAY_MAX);
        if ((r = strings_alloc(keys, json_object_size(m), err)) < 0 ||
            (values && (r = strings_alloc(values, json_object_size(m), err)) < 0))
                return r;
        json_object_foreach(m, k, v) {
                if (strlen(k) > OCI_STRING_MAX)
                        return error_set(err, EFBIG, "%s: a key of \"%s\" is too long", what, key);
                if (!(keys->v[i] = strdup(k)))
                        return error_oom(err);
                if (values && (r = string_dup(v, k, OCI_STRING_MAX, what, &values->v[i], err)) < 0)
                        return r;
                i++;
        }
        return 0;
}

static int schema_version_check(json_t *j, const char *what, Error **err) {
        json_t *v = json_object_get(j, "schemaVersion");
        if (!json_is_integer(v))
                return error_set(err, EBADMSG, "%s: missing or non-integer \"schemaVersion\"", what);
        if (json_integer_value(v) != 2)
                return error_set(err, EOPNOTSUPP, "%s: unsupported schemaVersion %" JSON_INTEGER_FORMAT " (want 2)",
                                 what, json_integer_value(v));
        return 0;
}

static int digest_check(const char *digest, const char *what, Error **err) {
        int r = digest_parse_check(digest);
        if (r == -EOPNOTSUPP)
                return error_set(err, EOPNOTSUPP, "%s: unsupported digest algorithm in '%s' (only sha256)", what,
                                 digest);
        if (r < 0)
                return error_set(err, EBADMSG, "%s: bad digest '%s' (want sha256:<64 hex>)", what, digest);
        return 0;
}

/* ---- descriptors ---- */

static int platform_parse(json_t *p, const char *what, OciPlatform *ret, Error **err) {
        int r;
        if (!p || json_is_null(p))
                return 0;
        if (!json_is_object(p))
                return error_set(err, EBADMSG, "%s: \"platform\" must be an object", what);
        if ((r = get_string(p, "os", true, OCI_PLATFORM_STRING_MAX, what, &ret->os, err)) < 0 ||
            (r = get_string(p, "architecture", true, OCI_PLATFORM_STRING_MAX, what, &ret->architecture, err)) < 0)
                return r;
        return get_string(p, "variant", false, OCI_PLATFORM_STRING_MAX, what, &ret->variant, err);
}

static int descriptor_parse(json_t *j, const char *what, OciDescriptor *d, Error **err) {
        int r;
        if (!json_is_object(j))
                return error_set(err, EBADMSG, "%s: missing or not an object", what);
        if ((r = get_string(j, "mediaType", true, OCI_STRING_MAX, what, &d->media_type, err)) < 0 ||
            (r = get_string(j, "digest", true, OCI_STRING_MAX, what, &d->digest, err)) < 0 ||
            (r = digest_check(d->digest, what, err)) < 0)
                return r;
        json_t *s = json_object_get(j, "size");
        if (!json_is_integer(s))
                return error_set(err, EBADMSG, "%s: missing or non-integer \"size\"", what);
        if (json_integer_value(s) < 0)
                return error_set(err, EBADMSG, "%s: negative size", what);
        if ((unsigned long long) json_integer_value(s) > OCI_BLOB_SIZE_MAX)
                return error_set(err, EFBIG, "%s: size %" JSON_INTEGER_FORMAT " exceeds %llu", what,
                                 json_integer_value(s), OCI_BLOB_SIZE_MAX);
        d->size = (uint64_t) json_integer_value(s);
        return 0;
}

/* ---- media types ---- */

bool oci_media_type_is_manifest(const char *media_type) {
        return media_type && (strcmp(media_type, OCI_MEDIA_TYPE_MANIFEST) == 0 ||
                              strcmp(media_type, DOCKER_MEDIA_TYPE_MANIFEST) == 0);
}

bool oci_media_type_is_index(const char *media_type) {
        return media_type &&
               (strcmp(media_type, OCI_MEDIA_TYPE_INDEX) == 0 || strcmp(media_type, DOCKER_MEDIA_TYPE_LIST) == 0);
}

static bool media_type_is_config(const char *media_type) {
        return strcmp(media_type, OCI_MEDIA_TYPE_CONFIG) == 0 || strcmp(media_type, DOCKER_MEDIA_TYPE_CONFIG) == 0;
}

static bool media_type_is_schema1(const char *media_type) {
        return strcmp(media_type, DOCKER_MEDIA_TYPE_SCHEMA1) == 0 ||
               strcmp(media_type, DOCKER_MEDIA_TYPE_SCHEMA1_SIGNED) == 0;
}

int oci_layer_compression(const char *media_type, OciCompression *ret) {
        static const struct {
                const char *media_type;
                OciCompression compression;
        } table[] = {
                { OCI_MEDIA_TYPE_LAYER_TAR, OCI_COMPRESSION_NONE },
                { OCI_MEDIA_TYPE_LAYER_GZIP, OCI_COMPRESSION_GZIP },
                { OCI_MEDIA_TYPE_LAYER_ZSTD, OCI_COMPRESSION_ZSTD },
                { DOCKER_MEDIA_TYPE_LAYER, OCI_COMPRESSION_GZIP },
        };
        for (size_t i = 0; media_type && i < ELEMENTSOF(table); i++)
                if (strcmp(media_type, table[i].media_type) == 0) {
                        *ret = table[i].compression;
                        return 0;
                }
        return -EOPNOTSUPP;
}

static int layer_media_type_check(const char *media_type, const char *what, Error **err) {
        OciCompression c;
        if (strncmp(media_type, OCI_MEDIA_TYPE_LAYER_NONDIST_PREFIX, strlen(OCI_MEDIA_TYPE_LAYER_NONDIST_PREFIX)) ==
                    0 ||
            strcmp(media_type, DOCKER_MEDIA_TYPE_FOREIGN_LAYER) == 0)
                return error_set(err, EOPNOTSUPP,
                                 "%s: foreign / non-distributable layer '%s' is not supported (its blob lives "
                                 "outside the registry)",
                                 what, media_type);
        if (oci_layer_compression(media_type, &c) < 0)
                return error_set(err, EOPNOTSUPP, "%s: unsupported layer media type '%s'", what, media_type);
        return 0;
}

/* Decides from a Content-Type value, ignoring parameters. */
static int kind_from_content_type(const char *content_type, OciKind *ret) {
        char buf[128];
        if (!content_type)
                return -EBADMSG;
        size_t n = strcspn(content_type, "; \t");
        if (n >= sizeof buf)
                return -EBADMSG;
        memcpy(buf, content_type, n);
        buf[n] = '\0';
        if (oci_media_type_is_manifest(buf) || oci_media_type_is_index(buf)) {
                *ret = oci_media_type_is_index(buf) ? OCI_KIND_INDEX : OCI_KIND_MANIFEST;
                return 0;
        }
        return -EBADMSG;
}

static int kind_from_media_type_field(const char *mt, OciKind *ret, Error **err) {
        if (oci_media_type_is_manifest(mt) || oci_media_type_is_index(mt)) {
                *ret = oci_media_type_is_index(mt) ? OCI_KIND_INDEX : OCI_KIND_MANIFEST;
                return 0;
        }
        if (media_type_is_schema1(mt))
                return error_set(err, EOPNOTSUPP, "manifest: Docker schema 1 ('%s') is not supported", mt);
        return error_set(err, EOPNOTSUPP, "manifest: unsupported media type '%s'", mt);
}

int oci_media_type_sniff(const void *data, size_t size, const char *content_type, OciKind *ret, Error **err) {
        _cleanup_json_ json_t *j = NULL;
        _cleanup_free_ char *mt = NULL;

        int r = json_load_bounded(data, size, "manifest", &j, err);
        if (r < 0)
                return r;
        r = get_string(j, "mediaType", false, OCI_STRING_MAX, "manifest", &mt, err);
        if (r < 0)
                return r;
        if (mt)
                return kind_from_media_type_field(mt, ret, err);
        bool has_manifests = json_object_get(j, "manifests"), has_layers = json_object_get(j, "layers");
        if (has_manifests != has_layers) {
                *ret = has_manifests ? OCI_KIND_INDEX : OCI_KIND_MANIFEST;
                return 0;
        }
        if (kind_from_content_type(content_type, ret) == 0)
                return 0;
        return error_set(err, EBADMSG, "manifest: cannot tell an image manifest from an index (Content-Type '%s')",
                         content_type ? content_type : "(none)");
}

/* ---- image manifest ---- */

static int layers_parse(json_t *j, OciManifest *m, Error **err) {
        json_t *a = json_object_get(j, "layers");
        char what[WHAT_MAX];
        int r;

        if (!json_is_array(a))
                return error_set(err, EBADMSG, "manifest: missing or non-array \"layers\"");
        if (json_array_size(a) > OCI_LAYERS_MAX)
                return error_set(err, E2BIG, "manifest: %zu layers exceed the limit of %d", json_array_size(a),
                                 OCI_LAYERS_MAX);
        m->layers = calloc(json_array_size(a) ?: 1, sizeof *m->layers);
        if (!m->layers)
                return error_oom(err);
        m->n_layers = json_array_size(a);
        for (size_t i = 0; i < m->n_layers; i++) {
                snprintf(what, sizeof what, "manifest layer %zu", i);
                if ((r = descriptor_parse(json_array_get(a, i), what, &m->layers[i], err)) < 0 ||
                    (r = layer_media_type_check(m->layers[i].media_type, what, err)) < 0)
                        return r;
        }
        return 0;
}

int oci_manifest_parse(const void *data, size_t size, OciManifest **ret, Error **err) {
        _cleanup_json_ json_t *j = NULL;
        _cleanup_oci_manifest_ OciManifest *m = NULL;
        int r;

        if ((r = json_load_bounded(data, size, "manifest", &j, err)) < 0 ||
            (r = schema_version_check(j, "manifest", err)) < 0)
                return r;
        if (!(m = calloc(1, sizeof *m)))
                return error_oom(err);
        if ((r = get_string(j, "mediaType", false, OCI_STRING_MAX, "manifest", &m->media_type, err)) < 0)
                return r;
        if (m->media_type && !oci_media_type_is_manifest(m->media_type))
                return error_set(err, EBADMSG, "manifest: mediaType '%s' is not an image manifest", m->media_type);
        if ((r = descriptor_parse(json_object_get(j, "config"), "manifest config", &m->config, err)) < 0)
                return r;
        if (!media_type_is_config(m->config.media_type))
                return error_set(err, EOPNOTSUPP, "manifest config: media type '%s' is not an image config",
                                 m->config.media_type);
        if ((r = layers_parse(j, m, err)) < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

OciManifest *oci_manifest_free(OciManifest *m) {
        if (!m)
                return NULL;
        free(m->media_type);
        descriptor_clear(&m->config);
        for (size_t i = 0; i < m->n_layers; i++)
                descriptor_clear(&m->layers[i]);
        free(m->layers);
        free(m);
        return NULL;
}

/* ---- index ---- */

static int index_entries_parse(json_t *j, OciIndex *index, Error **err) {
        json_t *a = json_object_get(j, "manifests");
        char what[WHAT_MAX];
        int r;

        if (!json_is_array(a))
                return error_set(err, EBADMSG, "index: missing or non-array \"manifests\"");
        if (json_array_size(a) > OCI_INDEX_ENTRIES_MAX)
                return error_set(err, E2BIG, "index: %zu entries exceed the limit of %d", json_array_size(a),
                                 OCI_INDEX_ENTRIES_MAX);
        index->manifests = calloc(json_array_size(a) ?: 1, sizeof *index->manifests);
        if (!index->manifests)
                return error_oom(err);
        index->n_manifests = json_array_size(a);
        for (size_t i = 0; i < index->n_manifests; i++) {
                json_t *e = json_array_get(a, i);
                snprintf(what, sizeof what, "index entry %zu", i);
                if ((r = descriptor_parse(e, what, &index->manifests[i], err)) < 0 ||
                    (r = platform_parse(json_object_get(e, "platform"), what, &index->manifests[i].platform,
                                        err)) < 0)
                        return r;
        }
        return 0;
}

int oci_index_parse(const void *data, size_t size, OciIndex **ret, Error **err) {
        _cleanup_json_ json_t *j = NULL;
        _cleanup_oci_index_ OciIndex *index = NULL;
        int r;

        if ((r = json_load_bounded(data, size, "index", &j, err)) < 0 ||
            (r = schema_version_check(j, "index", err)) < 0)
                return r;
        if (!(index = calloc(1, sizeof *index)))
                return error_oom(err);
        if ((r = get_string(j, "mediaType", false, OCI_STRING_MAX, "index", &index->media_type, err)) < 0)
                return r;
        if (index->media_type && !oci_media_type_is_index(index->media_type))
                return error_set(err, EBADMSG, "index: mediaType '%s' is not an index", index->media_type);
        if ((r = index_entries_parse(j, index, err)) < 0)
                return r;
        *ret = TAKE_PTR(index);
        return 0;
}

OciIndex *oci_index_free(OciIndex *index) {
        if (!index)
                return NULL;
        free(index->media_type);
        for (size_t i = 0; i < index->n_manifests; i++)
                descriptor_clear(&index->manifests[i]);
        free(index->manifests);
        free(index);
        return NULL;
}

static bool platform_matches(const OciPlatform *p, const char *os, const char *arch, const char *variant) {
        if (!p->os || !p->architecture || strcmp(p->os, os) != 0 || strcmp(p->architecture, arch) != 0)
                return false;
        if (!variant)
                return true;
        if (p->variant)
                return strcmp(p->variant, variant) == 0;
        return strcmp(arch, "arm64") == 0 && strcmp(variant, "v8") == 0;
}

/* "linux/amd64, linux/arm64/v8, ..." into buf, cut short with ", ...". */
static void platforms_list(const OciIndex *index, char *buf, size_t size) {
        static const char more[] = ", ...";
        size_t used = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < index->n_manifests; i++) {
                const OciPlatform *p = &index->manifests[i].platform;
                if (!p->os || !oci_media_type_is_manifest(index->manifests[i].media_type))
                        continue;
                int n = snprintf(buf + used, size - sizeof more - used, "%s%s/%s%s%s", used ? ", " : "", p->os,
                                 p->architecture, p->variant ? "/" : "", p->variant ? p->variant : "");
                if (n < 0 || (size_t) n >= size - sizeof more - used) {
                        strcpy(buf + used, more);
                        return;
                }
                used += (size_t) n;
        }
        if (used == 0)
                snprintf(buf, size, "(none)");
}

int oci_index_select(const OciIndex *index, const char *os, const char *architecture, const char *variant,
                     const OciDescriptor **ret, Error **err) {
        char list[PLATFORM_LIST_MAX];

        for (size_t i = 0; i < index->n_manifests; i++) {
                const OciDescriptor *d = &index->manifests[i];
                if (oci_media_type_is_manifest(d->media_type) &&
                    platform_matches(&d->platform, os, architecture, variant)) {
                        *ret = d;
                        return 0;
                }
        }
        platforms_list(index, list, sizeof list);
        return error_set(err, ENOENT, "no image for platform %s/%s%s%s in index; available: %s", os, architecture,
                         variant ? "/" : "", variant ? variant : "", list);
}

/* ---- image config ---- */

static int config_section_parse(json_t *cfg, OciConfig *c, Error **err) {
        const char *w = "config";
        int r;

        if (!cfg || json_is_null(cfg))
                return 0;
        if (!json_is_object(cfg))
                return error_set(err, EBADMSG, "config: \"config\" must be an object");
        if ((r = get_strings(cfg, "Entrypoint", OCI_ARRAY_MAX, w, &c->entrypoint, err)) < 0 ||
            (r = get_strings(cfg, "Cmd", OCI_ARRAY_MAX, w, &c->cmd, err)) < 0 ||
            (r = get_strings(cfg, "Env", OCI_ARRAY_MAX, w, &c->env, err)) < 0 ||
            (r = get_string(cfg, "WorkingDir", false, OCI_STRING_MAX, w, &c->working_dir, err)) < 0 ||
            (r = get_string(cfg, "User", false, OCI_STRING_MAX, w, &c->user, err)) < 0 ||
            (r = get_string(cfg, "StopSignal", false, OCI_STRING_MAX, w, &c->stop_signal, err)) < 0 ||
            (r = get_map(cfg, "Labels", w, &c->label_keys, &c->label_values, err)) < 0 ||
            (r = get_map(cfg, "ExposedPorts", w, &c->exposed_ports, NULL, err)) < 0)
                return r;
        return 0;
}

static int rootfs_parse(json_t *rootfs, OciConfig *c, Error **err) {
        _cleanup_free_ char *type = NULL;
        int r;

        if (!json_is_object(rootfs))
                return error_set(err, EBADMSG, "config: missing or non-object \"rootfs\"");
        if ((r = get_string(rootfs, "type", true, OCI_STRING_MAX, "config rootfs", &type, err)) < 0)
                return r;
        if (strcmp(type, "layers") != 0)
                return error_set(err, EOPNOTSUPP, "config rootfs: unsupported type '%s' (want 'layers')", type);
        if (!json_is_array(json_object_get(rootfs, "diff_ids")))
                return error_set(err, EBADMSG, "config rootfs: missing or non-array \"diff_ids\"");
        if ((r = get_strings(rootfs, "diff_ids", OCI_LAYERS_MAX, "config rootfs", &c->diff_ids, err)) < 0)
                return r;
        for (size_t i = 0; i < c->diff_ids.n; i++)
                if ((r = digest_check(c->diff_ids.v[i], "config rootfs diff_ids", err)) < 0)
                        return r;
        return 0;
}

int oci_config_parse(const void *data, size_t size, OciConfig **ret, Error **err) {
        _cleanup_json_ json_t *j = NULL;
        _cleanup_oci_config_ OciConfig *c = NULL;
        int r;

        if ((r = json_load_bounded(data, size, "config", &j, err)) < 0)
                return r;
        if (!(c = calloc(1, sizeof *c)))
                return error_oom(err);
        if ((r = get_string(j, "architecture", true, OCI_PLATFORM_STRING_MAX, "config", &c->architecture, err)) < 0 ||
            (r = get_string(j, "os", true, OCI_PLATFORM_STRING_MAX, "config", &c->os, err)) < 0 ||
            (r = get_string(j, "variant", false, OCI_PLATFORM_STRING_MAX, "config", &c->variant, err)) < 0 ||
            (r = config_section_parse(json_object_get(j, "config"), c, err)) < 0 ||
            (r = rootfs_parse(json_object_get(j, "rootfs"), c, err)) < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

OciConfig *oci_config_free(OciConfig *c) {
        if (!c)
                return NULL;
        free(c->architecture);
        free(c->os);
        free(c->variant);
        oci_strings_clear(&c->entrypoint);
        oci_strings_clear(&c->cmd);
        oci_strings_clear(&c->env);
        free(c->working_dir);
        free(c->user);
        free(c->stop_signal);
        oci_strings_clear(&c->label_keys);
        oci_strings_clear(&c->label_values);
        oci_strings_clear(&c->exposed_ports);
        oci_strings_clear(&c->diff_ids);
        free(c);
        return NULL;
}

int oci_config_check_layers(const OciConfig *config, const OciManifest *manifest, Error **err) {
        if (config->diff_ids.n != manifest->n_layers)
                return error_set(err, EBADMSG, "config lists %zu diff_ids but the manifest has %zu layers",
                                 config->diff_ids.n, manifest->n_layers);
        return 0;
}
