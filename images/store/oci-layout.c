/* oci-layout.c: the ImageSource for an OCI image layout directory.
 *
 * Small and synchronous: documents come from index.json and blobs/sha256,
 * blobs are streamed file by file into the store's sink. The layout is as
 * hostile as a registry: index.json is bounded and parsed strictly, a file is
 * only ever named by a validated digest, opened with openat() and O_NOFOLLOW
 * below descriptors held on the layout's directories, and must be a regular
 * file. Verification of what we read is the store's job. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "images/oci/digest.h"
#include "images/store/oci-layout.h"
#include "common/json/json-util.h"

#define LAYOUT_CHUNK (64u * 1024)
#define LAYOUT_FILE_MAX (64u * 1024) /* the oci-layout file */

typedef struct LayoutSource {
        ImageSource base;
        char *dir;
        char *ref; /* NULL: the only (or "latest") image */
        char *description;
        int dir_fd;
        int blobs_fd; /* blobs/sha256 */
} LayoutSource;

/* Reads dir_fd/name, a regular file of at most max bytes. */
static int file_read(int dir_fd, const char *name, size_t max, char **ret, size_t *ret_n, Error **err) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return error_set_errno(err, errno, "open '%s'", name);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return error_set_errno(err, errno, "stat '%s'", name);
        if (!S_ISREG(st.st_mode))
                return error_set(err, EBADMSG, "'%s' is not a regular file", name);
        if ((uint64_t) st.st_size > max)
                return error_set(err, EFBIG, "'%s' is larger than %zu bytes", name, max);
        int r = read_fd_bounded(fd, max, ret, ret_n);
        if (r < 0)
                return error_set_errno(err, -r, "read '%s'", name);
        return 0;
}

static int blob_open(LayoutSource *l, const char *digest, Error **err) {
        int r = digest_parse_check(digest);
        if (r < 0)
                return error_set(err, -r, "bad digest '%.80s'", digest ? digest : "(null)");
        int fd = openat(l->blobs_fd, digest + 7, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return error_set_errno(err, errno, "layout '%s': blob %s", l->dir, digest);
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                safe_close(fd);
                return error_set(err, EBADMSG, "layout '%s': blob %s is not a regular file", l->dir, digest);
        }
        return fd;
}

static int blob_read(LayoutSource *l, const char *digest, void **ret, size_t *ret_n, Error **err) {
        _cleanup_close_ int fd = blob_open(l, digest, err);
        if (fd < 0)
                return fd;
        char *data = NULL;
        int r = read_fd_bounded(fd, OCI_JSON_MAX, &data, ret_n);
        if (r == -EFBIG)
                return error_set(err, EFBIG, "blob %s is larger than %u bytes", digest, OCI_JSON_MAX);
        if (r < 0)
                return error_set_errno(err, -r, "read blob %s", digest);
        *ret = data;
        return 0;
}

/* Finds the index.json entry for l->ref: its digest and media type. */
static int index_lookup(LayoutSource *l, char **ret_digest, char **ret_media_type, Error **err) {
        _cleanup_free_ char *data = NULL;
        size_t n = 0;
        int r = file_read(l->dir_fd, "index.json", OCI_JSON_MAX, &data, &n, err);
        if (r < 0) {
                error_prefix(err, "layout '%s'", l->dir);
                return r;
        }
        json_error_t jerr;
        _cleanup_json_ json_t *j = json_loadb(data, n, JSON_REJECT_DUPLICATES, &jerr);
        json_t *ms = json_object_get(j, "manifests");
        if (!json_is_array(ms) || json_array_size(ms) > OCI_INDEX_ENTRIES_MAX)
                return error_set(err, EBADMSG, "layout '%s': index.json has no valid manifests array", l->dir);
        json_t *found = NULL, *latest = NULL;
        size_t i;
        json_t *e;
        char names[256] = "";
        json_array_foreach(ms, i, e) {
                json_t *d = json_object_get(e, "digest");
                const char *name = json_string_value(json_object_get(json_object_get(e, "annotations"),
                                                                     OCI_LAYOUT_REF_NAME_ANNOTATION));
                if (!json_is_string(d))
                        return error_set(err, EBADMSG, "layout '%s': index entry %zu has no digest", l->dir, i);
                if (name && strlen(names) + strlen(name) + 3 < sizeof names)
                        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", *names ? ", " : "",
                                 name);
                if (name && strcmp(name, "latest") == 0)
                        latest = e;
                if (l->ref && ((name && strcmp(name, l->ref) == 0) || strcmp(json_string_value(d), l->ref) == 0) &&
                    !found)
                        found = e;
        }
        if (!l->ref)
                found = json_array_size(ms) == 1 ? json_array_get(ms, 0) : latest;
        if (!found) {
                if (!l->ref && json_array_size(ms) > 1)
                        return error_set(err, ENOENT, "layout '%s' holds %zu images; name one (%s)", l->dir,
                                         json_array_size(ms), names);
                return error_set(err, ENOENT, "layout '%s' has no image '%s' (names: %s)", l->dir,
                                 l->ref ? l->ref : "", *names ? names : "none");
        }
        const char *digest = json_string_value(json_object_get(found, "digest"));
        const char *mt = json_string_value(json_object_get(found, "mediaType"));
        if ((r = digest_parse_check(digest)) < 0)
                return error_set(err, -r, "layout '%s': bad digest '%.80s'", l->dir, digest);
        if (!(*ret_digest = strdup(digest)) || (mt && !(*ret_media_type = strdup(mt))))
                return error_oom(err);
        return 0;
}

static int layout_get_manifest(ImageSource *s, const char *digest, void **ret_data, size_t *ret_size,
                               char **ret_media_type, Error **err) {
        LayoutSource *l = (LayoutSource *) s;
        _cleanup_free_ char *found = NULL, *mt = NULL;
        _cleanup_free_ void *data = NULL;
        size_t n = 0;
        int r;
        if (!digest) {
                if ((r = index_lookup(l, &found, &mt, err)) < 0)
                        return r;
                digest = found;
        }
        if ((r = blob_read(l, digest, &data, &n, err)) < 0)
                return r;
        if (found) {
                /* The index promised this digest: hold the layout to it. */
                _cleanup_free_ char *got = NULL;
                if (digest_buffer_hex(data, n, &got) < 0)
                        return error_oom(err);
                if (strcmp(got, found) != 0)
                        return error_set(err, EBADMSG, "layout '%s': blob %s: digest mismatch: got %s", l->dir, found,
                                         got);
        }
        *ret_data = TAKE_PTR(data);
        *ret_size = n;
        *ret_media_type = TAKE_PTR(mt);
        return 0;
}

static int layout_fetch_blobs(ImageSource *s, const OciDescriptor *descs, size_t n, ImageBlobSink *sink,
                              Error **err) {
        LayoutSource *l = (LayoutSource *) s;
        _cleanup_free_ char *buf = malloc(LAYOUT_CHUNK);
        if (!buf)
                return error_oom(err);
        for (size_t i = 0; i < n; i++) {
                _cleanup_close_ int fd = blob_open(l, descs[i].digest, err);
                if (fd < 0)
                        return fd;
                for (;;) {
                        ssize_t k = read(fd, buf, LAYOUT_CHUNK);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0)
                                return error_set_errno(err, errno, "read blob %s", descs[i].digest);
                        if (k == 0)
                                break;
                        int r = sink->write(sink, i, buf, (size_t) k, err);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static const char *layout_describe(ImageSource *s) {
        return ((LayoutSource *) s)->description;
}

static void layout_free(ImageSource *s) {
        LayoutSource *l = (LayoutSource *) s;
        safe_close(l->dir_fd);
        safe_close(l->blobs_fd);
        free(l->dir);
        free(l->ref);
        free(l->description);
        free(l);
}

static const ImageSourceOps layout_ops = {
        .kind = "oci-layout",
        .get_manifest = layout_get_manifest,
        .fetch_blobs = layout_fetch_blobs,
        .describe = layout_describe,
        .free = layout_free,
};

static int layout_version_check(LayoutSource *l, Error **err) {
        _cleanup_free_ char *data = NULL;
        size_t n = 0;
        int r = file_read(l->dir_fd, "oci-layout", LAYOUT_FILE_MAX, &data, &n, err);
        if (r < 0) {
                error_prefix(err, "layout '%s'", l->dir);
                return r;
        }
        json_error_t jerr;
        _cleanup_json_ json_t *j = json_loadb(data, n, JSON_REJECT_DUPLICATES, &jerr);
        const char *v = json_string_value(json_object_get(j, "imageLayoutVersion"));
        if (!v)
                return error_set(err, EBADMSG, "layout '%s': oci-layout has no imageLayoutVersion", l->dir);
        if (strncmp(v, "1.", 2) != 0)
                return error_set(err, EOPNOTSUPP, "layout '%s': unsupported imageLayoutVersion '%.32s'", l->dir, v);
        return 0;
}

int oci_layout_source_new(const char *dir, const char *tag_or_digest, ImageSource **ret, Error **err) {
        LayoutSource *l = calloc(1, sizeof *l);
        _cleanup_image_source_ ImageSource *s = (ImageSource *) l;
        if (!l)
                return error_oom(err);
        l->base.ops = &layout_ops;
        l->dir_fd = l->blobs_fd = -1;
        if (!(l->dir = strdup(dir)) || (tag_or_digest && !(l->ref = strdup(tag_or_digest))) ||
            asprintf(&l->description, "oci:%s%s%s", dir, tag_or_digest ? ":" : "", tag_or_digest ? tag_or_digest : "") < 0) {
                l->description = NULL;
                return error_oom(err);
        }
        if (l->ref && strlen(l->ref) > OCI_STRING_MAX)
                return error_set(err, EINVAL, "layout reference too long");
        if ((l->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
                return error_set_errno(err, errno, "layout '%s'", dir);
        int r = layout_version_check(l, err);
        if (r < 0)
                return r;
        _cleanup_close_ int blobs = openat(l->dir_fd, "blobs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (blobs < 0 || (l->blobs_fd = openat(blobs, "sha256", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                return error_set_errno(err, errno, "layout '%s': blobs/sha256", dir);
        *ret = TAKE_PTR(s);
        return 0;
}
