/* docker-archive.c: the ImageSource for `docker save` archives.
 *
 * Opening reads the archive once with libarchive: every regular member is
 * hashed (name, size, SHA-256, first bytes), symlinks and hard links are
 * remembered, manifest.json is kept. The chosen image's config and layers are
 * then resolved to members (following in-archive links a few hops) and an OCI
 * image manifest is synthesised. fetch_blobs opens the archive again and
 * streams the wanted members, matched by their position in the archive, into
 * the sink. Nothing is extracted to disk. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "images/oci/digest.h"
#include "images/store/docker-archive.h"
#include "images/ext4/layer-tar.h"
#include "images/oci/oci-ref.h"
#include "common/archive/archive-util.h"
#include "common/base/path-util.h"
#include "common/json/json-util.h"

#define MEMBER_NAME_MAX 4096
#define ARCHIVE_TOTAL_MAX OCI_BLOB_SIZE_MAX /* bytes of all members together */
#define CHUNK (64u * 1024)

typedef struct Member {
        char *name;   /* normalised: no "./", no "..", not absolute */
        char *link;   /* normalised link target, NULL for a regular file */
        uint64_t size;
        char digest[DIGEST_STRING_LEN + 1];
        unsigned char magic[4];
} Member;

typedef struct ArchiveSource {
        ImageSource base;
        char *path;
        char *description;
        Member *members;
        size_t n_members;
        char *manifest; /* synthesised OCI manifest */
        size_t manifest_size;
        char *manifest_digest;
        char *repo_tag;   /* first RepoTags entry, NULL if none */
        char *index_json; /* manifest.json while opening */
        size_t index_size;
} ArchiveSource;


/* Member names are relative, at most MEMBER_NAME_MAX bytes and name
 * something; link targets may climb with ".." (symlinks are relative to
 * their directory) but never above the top. */
static const PathRules member_rules = {.max_len = MEMBER_NAME_MAX, .refuse_empty = true};
static const PathRules link_rules = {.max_len = MEMBER_NAME_MAX, .refuse_empty = true, .resolve_dotdot = true};

static int archive_open_file(const char *path, struct archive **ret, Error **err) {
        _cleanup_archive_read_ struct archive *a = archive_read_new();
        if (!a)
                return error_oom(err);
        if (archive_read_support_filter_none(a) != ARCHIVE_OK || archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
            archive_read_support_format_tar(a) != ARCHIVE_OK || archive_read_open_filename(a, path, CHUNK) != ARCHIVE_OK)
                return error_set(err, archive_errno_or(a, EBADMSG), "archive '%s': %s", path, archive_error_string(a));
        *ret = TAKE_PTR(a);
        return 0;
}

/* ---- the first pass ---- */

static int member_add(ArchiveSource *x, struct archive *a, struct archive_entry *e, Error **err) {
        const char *raw = archive_entry_pathname(e);
        _cleanup_free_ char *name = NULL;
        mode_t type = archive_entry_filetype(e);
        const char *hl = archive_entry_hardlink(e);
        if (type != AE_IFREG && type != AE_IFLNK && !hl)
                return 0; /* directories and the like are never read */
        if (path_normalize(NULL, raw, &member_rules, &name, NULL) < 0)
                return error_set(err, EINVAL, "archive '%s': member '%.200s' is outside the archive", x->path,
                                 raw ? raw : "");
        if (x->n_members >= DOCKER_ARCHIVE_MEMBERS_MAX)
                return error_set(err, E2BIG, "archive '%s': more than %u members", x->path, DOCKER_ARCHIVE_MEMBERS_MAX);
        Member *ms = realloc(x->members, (x->n_members + 1) * sizeof *ms);
        if (!ms)
                return error_oom(err);
        x->members = ms;
        Member *m = &ms[x->n_members];
        *m = (Member) {.name = TAKE_PTR(name)};
        x->n_members++;
        if (hl || type == AE_IFLNK) {
                /* Hard links name a member; symlinks are relative to their directory. */
                _cleanup_free_ char *dir = strdup(m->name);
                if (!dir)
                        return error_oom(err);
                char *slash = strrchr(dir, '/');
                *(slash ? slash : dir) = 0;
                const char *target = hl ? hl : archive_entry_symlink(e);
                if (path_normalize(hl ? NULL : dir, target, hl ? &member_rules : &link_rules, &m->link, NULL) < 0)
                        return error_set(err, EINVAL, "archive '%s': link '%s' points outside the archive", x->path,
                                         m->name);
                return 0;
        }
        _cleanup_digest_ Digest *d = NULL;
        if (digest_new(&d) < 0)
                return error_oom(err);
        bool keep = strcmp(m->name, "manifest.json") == 0;
        if (keep && x->index_json) {
                x->index_json = mfree(x->index_json);
                x->index_size = 0;
        }
        char buf[CHUNK];
        for (;;) {
                la_ssize_t k = archive_read_data(a, buf, sizeof buf);
                if (k < 0)
                        return error_set(err, EBADMSG, "archive '%s': member '%s': %s", x->path, m->name,
                                         archive_error_string(a));
                if (k == 0)
                        break;
                if (m->size < sizeof m->magic)
                        memcpy(m->magic + m->size, buf, MIN(sizeof m->magic - m->size, (size_t) k));
                m->size += (uint64_t) k;
                if (m->size > OCI_BLOB_SIZE_MAX)
                        return error_set(err, EFBIG, "archive '%s': member '%s' is larger than %llu bytes", x->path,
                                         m->name, (unsigned long long) OCI_BLOB_SIZE_MAX);
                if (digest_update(d, buf, (size_t) k) < 0)
                        return error_set(err, EIO, "digest");
                if (keep) {
                        if (x->index_size + (size_t) k > OCI_JSON_MAX)
                                return error_set(err, EFBIG, "archive '%s': manifest.json is larger than %u bytes",
                                                 x->path, OCI_JSON_MAX);
                        char *p = realloc(x->index_json, x->index_size + (size_t) k + 1);
                        if (!p)
                                return error_oom(err);
                        memcpy(p + x->index_size, buf, (size_t) k);
                        x->index_size += (size_t) k;
                        p[x->index_size] = 0;
                        x->index_json = p;
                }
        }
        _cleanup_free_ char *hex = NULL;
        if (digest_final_hex(d, &hex) < 0)
                return error_oom(err);
        memcpy(m->digest, hex, DIGEST_STRING_LEN + 1);
        return 0;
}

static int archive_scan(ArchiveSource *x, Error **err) {
        _cleanup_archive_read_ struct archive *a = NULL;
        int r = archive_open_file(x->path, &a, err);
        if (r < 0)
                return r;
        uint64_t total = 0;
        for (;;) {
                struct archive_entry *e;
                int ar = archive_read_next_header(a, &e);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN)
                        return error_set(err, EBADMSG, "archive '%s': %s", x->path, archive_error_string(a));
                if ((r = member_add(x, a, e, err)) < 0)
                        return r;
                if (x->n_members > 0 && !x->members[x->n_members - 1].link)
                        total += x->members[x->n_members - 1].size;
                if (total > ARCHIVE_TOTAL_MAX)
                        return error_set(err, EFBIG, "archive '%s' holds more than %llu bytes", x->path,
                                         (unsigned long long) ARCHIVE_TOTAL_MAX);
        }
        if (!x->index_json)
                return error_set(err, ENOENT, "archive '%s' has no manifest.json (not a docker save archive)", x->path);
        return 0;
}

/* The last member called name (a later one replaces an earlier), links
 * followed. Returns its index or -ENOENT / -ELOOP. */
static ssize_t member_find(const ArchiveSource *x, const char *name) {
        for (int hop = 0; hop <= DOCKER_ARCHIVE_LINK_HOPS; hop++) {
                ssize_t found = -1;
                for (size_t i = x->n_members; i > 0 && found < 0; i--)
                        if (strcmp(x->members[i - 1].name, name) == 0)
                                found = (ssize_t) i - 1;
                if (found < 0)
                        return -ENOENT;
                if (!x->members[found].link)
                        return found;
                name = x->members[found].link;
        }
        return -ELOOP;
}

/* ---- manifest.json -> OCI manifest ---- */

static bool tag_matches(const char *want, const char *have) {
        _cleanup_oci_ref_ OciRef *a = NULL, *b = NULL;
        _cleanup_free_ char *sa = NULL, *sb = NULL;
        if (strcmp(want, have) == 0)
                return true;
        if (oci_ref_parse(want, &a, NULL) < 0 || oci_ref_parse(have, &b, NULL) < 0 || oci_ref_to_string(a, &sa) < 0 ||
            oci_ref_to_string(b, &sb) < 0)
                return false;
        return strcmp(sa, sb) == 0;
}

static int image_pick(ArchiveSource *x, json_t *list, const char *name, json_t **ret, Error **err) {
        if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > DOCKER_ARCHIVE_IMAGES_MAX)
                return error_set(err, EBADMSG, "archive '%s': manifest.json is not a list of images", x->path);
        if (!name) {
                if (json_array_size(list) != 1)
                        return error_set(err, EINVAL, "archive '%s' holds %zu images; name one", x->path,
                                         json_array_size(list));
                *ret = json_array_get(list, 0);
                return 0;
        }
        size_t i, j;
        json_t *img, *tag;
        json_array_foreach(list, i, img) {
                json_t *tags = json_object_get(img, "RepoTags");
                if (!json_is_array(tags) || json_array_size(tags) > OCI_ARRAY_MAX)
                        continue;
                json_array_foreach(tags, j, tag) if (json_is_string(tag) && tag_matches(name, json_string_value(tag))) {
                        *ret = img;
                        return 0;
                }
        }
        return error_set(err, ENOENT, "archive '%s' has no image '%s'", x->path, name);
}

static const char *layer_media_type(const Member *m) {
        static const unsigned char gz[] = {0x1f, 0x8b}, zst[] = {0x28, 0xb5, 0x2f, 0xfd};
        if (m->size >= 2 && memcmp(m->magic, gz, 2) == 0)
                return OCI_MEDIA_TYPE_LAYER_GZIP;
        if (m->size >= 4 && memcmp(m->magic, zst, 4) == 0)
                return OCI_MEDIA_TYPE_LAYER_ZSTD;
        return OCI_MEDIA_TYPE_LAYER_TAR;
}

static json_t *descriptor(const char *media_type, const Member *m) {
        return json_pack("{s:s, s:s, s:I}", "mediaType", media_type, "digest", m->digest, "size", (json_int_t) m->size);
}

static int member_resolve(ArchiveSource *x, json_t *v, const char *what, const Member **ret, Error **err) {
        _cleanup_free_ char *name = NULL;
        if (!json_is_string(v) || path_normalize(NULL, json_string_value(v), &member_rules, &name, NULL) < 0)
                return error_set(err, EINVAL, "archive '%s': %s path is missing or outside the archive", x->path, what);
        ssize_t i = member_find(x, name);
        if (i < 0)
                return error_set(err, -i, "archive '%s': %s '%s' %s", x->path, what, name,
                                 i == -ELOOP ? "is a link loop" : "is not in the archive");
        *ret = &x->members[i];
        return 0;
}

static int manifest_build(ArchiveSource *x, const char *name, Error **err) {
        json_error_t jerr;
        _cleanup_json_ json_t *list = json_loadb(x->index_json, x->index_size, JSON_REJECT_DUPLICATES, &jerr);
        json_t *img = NULL;
        int r = image_pick(x, list, name, &img, err);
        if (r < 0)
                return r;
        const Member *config = NULL;
        json_t *layers = json_object_get(img, "Layers");
        const char *tag0 = json_string_value(json_array_get(json_object_get(img, "RepoTags"), 0));
        if (tag0 && strlen(tag0) <= OCI_REF_MAX && !(x->repo_tag = strdup(tag0)))
                return error_oom(err);
        if ((r = member_resolve(x, json_object_get(img, "Config"), "config", &config, err)) < 0)
                return r;
        if (config->size > OCI_JSON_MAX)
                return error_set(err, EFBIG, "archive '%s': config is larger than %u bytes", x->path, OCI_JSON_MAX);
        if (!json_is_array(layers) || json_array_size(layers) > OCI_LAYERS_MAX)
                return error_set(err, json_is_array(layers) ? E2BIG : EBADMSG,
                                 "archive '%s': Layers must be a list of at most %d members", x->path, OCI_LAYERS_MAX);
        _cleanup_json_ json_t *descs = json_array();
        _cleanup_json_ json_t *m = json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType", OCI_MEDIA_TYPE_MANIFEST,
                                             "config", descriptor(OCI_MEDIA_TYPE_CONFIG, config));
        if (!descs || !m)
                return error_oom(err);
        size_t i;
        json_t *v;
        json_array_foreach(layers, i, v) {
                const Member *layer = NULL;
                char what[32];
                snprintf(what, sizeof what, "layer %zu", i);
                if ((r = member_resolve(x, v, what, &layer, err)) < 0)
                        return r;
                if (json_array_append_new(descs, descriptor(layer_media_type(layer), layer)) < 0)
                        return error_oom(err);
        }
        if (json_object_set(m, "layers", descs) < 0 || !(x->manifest = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER)))
                return error_oom(err);
        x->manifest_size = strlen(x->manifest);
        if (digest_buffer_hex(x->manifest, x->manifest_size, &x->manifest_digest) < 0)
                return error_oom(err);
        return 0;
}

/* ---- ImageSource ---- */

static int archive_get_manifest(ImageSource *s, const char *digest, void **ret_data, size_t *ret_size,
                                char **ret_media_type, Error **err) {
        ArchiveSource *x = (ArchiveSource *) s;
        if (digest && strcmp(digest, x->manifest_digest) != 0)
                return error_set(err, ENOENT, "archive '%s' has no manifest %s", x->path, digest);
        char *data = malloc(x->manifest_size + 1), *mt = strdup(OCI_MEDIA_TYPE_MANIFEST);
        if (!data || !mt) {
                free(data);
                free(mt);
                return error_oom(err);
        }
        memcpy(data, x->manifest, x->manifest_size + 1);
        *ret_data = data;
        *ret_size = x->manifest_size;
        *ret_media_type = mt;
        return 0;
}

static int stream_member(ArchiveSource *x, struct archive *a, const bool *want, size_t n, ImageBlobSink *sink,
                         const char *name, Error **err) {
        char buf[CHUNK];
        for (;;) {
                la_ssize_t k = archive_read_data(a, buf, sizeof buf);
                if (k < 0)
                        return error_set(err, EIO, "archive '%s': member '%s': %s", x->path, name, archive_error_string(a));
                if (k == 0)
                        return 0;
                for (size_t i = 0; i < n; i++)
                        if (want[i]) {
                                int r = sink->write(sink, i, buf, (size_t) k, err);
                                if (r < 0)
                                        return r;
                        }
        }
}

static int archive_fetch_blobs(ImageSource *s, const OciDescriptor *descs, size_t n, ImageBlobSink *sink,
                               Error **err) {
        ArchiveSource *x = (ArchiveSource *) s;
        _cleanup_free_ ssize_t *at = calloc(n + 1, sizeof *at);
        _cleanup_free_ bool *want = calloc(n + 1, sizeof *want);
        if (!at || !want)
                return error_oom(err);
        for (size_t i = 0; i < n; i++) {
                at[i] = -1;
                for (size_t j = 0; j < x->n_members && at[i] < 0; j++)
                        if (!x->members[j].link && strcmp(x->members[j].digest, descs[i].digest) == 0)
                                at[i] = (ssize_t) j;
                if (at[i] < 0)
                        return error_set(err, ENOENT, "archive '%s' has no blob %s", x->path, descs[i].digest);
        }
        _cleanup_archive_read_ struct archive *a = NULL;
        int r = archive_open_file(x->path, &a, err);
        if (r < 0)
                return r;
        /* Members are counted the way archive_scan() counted them. */
        size_t ordinal = 0, left = n;
        while (left > 0) {
                struct archive_entry *e;
                int ar = archive_read_next_header(a, &e);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN)
                        return error_set(err, EIO, "archive '%s': %s", x->path, archive_error_string(a));
                mode_t type = archive_entry_filetype(e);
                if (type != AE_IFREG && type != AE_IFLNK && !archive_entry_hardlink(e))
                        continue;
                size_t here = ordinal++;
                bool any = false;
                for (size_t i = 0; i < n; i++) {
                        want[i] = at[i] == (ssize_t) here;
                        any |= want[i];
                }
                if (!any)
                        continue;
                if ((r = stream_member(x, a, want, n, sink, x->members[here].name, err)) < 0)
                        return r;
                for (size_t i = 0; i < n; i++)
                        left -= want[i];
        }
        return 0; /* the store notices a blob that came short */
}

static const char *archive_describe(ImageSource *s) {
        return ((ArchiveSource *) s)->description;
}

static void archive_source_free(ImageSource *s) {
        ArchiveSource *x = (ArchiveSource *) s;
        for (size_t i = 0; i < x->n_members; i++) {
                free(x->members[i].name);
                free(x->members[i].link);
        }
        free(x->members);
        free(x->path);
        free(x->description);
        free(x->manifest);
        free(x->manifest_digest);
        free(x->index_json);
        free(x->repo_tag);
        free(x);
}

const char *docker_archive_source_repo_tag(ImageSource *s) {
        return s && strcmp(s->ops->kind, "docker-archive") == 0 ? ((ArchiveSource *) s)->repo_tag : NULL;
}

static const ImageSourceOps archive_ops = {
        .kind = "docker-archive",
        .get_manifest = archive_get_manifest,
        .fetch_blobs = archive_fetch_blobs,
        .describe = archive_describe,
        .free = archive_source_free,
};

int docker_archive_source_new(const char *path, const char *name, ImageSource **ret, Error **err) {
        ArchiveSource *x = calloc(1, sizeof *x);
        _cleanup_image_source_ ImageSource *s = (ImageSource *) x;
        if (!x)
                return error_oom(err);
        x->base.ops = &archive_ops;
        if (!(x->path = strdup(path)) ||
            asprintf(&x->description, "docker-archive:%s%s%s", path, name ? ":" : "", name ? name : "") < 0) {
                x->description = NULL;
                return error_oom(err);
        }
        struct stat st;
        if (stat(path, &st) < 0)
                return error_set_errno(err, errno, "archive '%s'", path);
        if (!S_ISREG(st.st_mode))
                return error_set(err, EINVAL, "archive '%s' is not a regular file", path);
        int r;
        if ((r = archive_scan(x, err)) < 0 || (r = manifest_build(x, name, err)) < 0)
                return r;
        x->index_json = mfree(x->index_json);
        *ret = TAKE_PTR(s);
        return 0;
}
