/* test-oci-manifest.c: manifests, indexes and configs (images/oci/oci-manifest.h):
 * OCI and Docker schema 2 manifests, media-type sniffing, index platform
 * selection (amd64, arm64/v8, missing with the list in the error), and the
 * hostile cases: duplicate keys, wrong types, oversize documents, too many
 * layers, bad digests, foreign and unknown media types, diff_ids mismatch. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "images/oci/oci-manifest.h"

#define H1 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define H2 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define D1 "sha256:" H1
#define D2 "sha256:" H2

#define DESC(mt, d, sz) "{\"mediaType\":\"" mt "\",\"digest\":\"" d "\",\"size\":" #sz "}"

static const char oci_manifest[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MEDIA_TYPE_MANIFEST "\","
        "\"config\":" DESC(OCI_MEDIA_TYPE_CONFIG, D1, 1469) ","
        "\"layers\":[" DESC(OCI_MEDIA_TYPE_LAYER_GZIP, D2, 2479) ","
        "{\"mediaType\":\"" OCI_MEDIA_TYPE_LAYER_ZSTD "\",\"digest\":\"" D1 "\",\"size\":0,"
        "\"urls\":[\"https://example.com/x\"],\"annotations\":{\"a\":\"b\"}},"
        DESC(OCI_MEDIA_TYPE_LAYER_TAR, D1, 68719476736) "]}";

static const char docker_manifest[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" DOCKER_MEDIA_TYPE_MANIFEST "\","
        "\"config\":" DESC(DOCKER_MEDIA_TYPE_CONFIG, D1, 1500) ","
        "\"layers\":[" DESC(DOCKER_MEDIA_TYPE_LAYER, D2, 100) "]}";

#define ENTRY(d, os, arch, variant_json) \
        "{\"mediaType\":\"" OCI_MEDIA_TYPE_MANIFEST "\",\"digest\":\"" d "\",\"size\":500," \
        "\"platform\":{\"os\":\"" os "\",\"architecture\":\"" arch "\"" variant_json "}}"

static const char oci_index[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MEDIA_TYPE_INDEX "\",\"manifests\":["
        ENTRY(D1, "linux", "amd64", "") ","
        ENTRY(D2, "linux", "arm64", ",\"variant\":\"v8\"") ","
        ENTRY(D1, "linux", "arm", ",\"variant\":\"v7\"") ","
        "{\"mediaType\":\"" OCI_MEDIA_TYPE_MANIFEST "\",\"digest\":\"" D2 "\",\"size\":566,"
        "\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"},"
        "\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\"}}]}";

static const char docker_list[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" DOCKER_MEDIA_TYPE_LIST "\",\"manifests\":["
        "{\"mediaType\":\"" DOCKER_MEDIA_TYPE_MANIFEST "\",\"digest\":\"" D2 "\",\"size\":527,"
        "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
        "{\"mediaType\":\"" DOCKER_MEDIA_TYPE_MANIFEST "\",\"digest\":\"" D1 "\",\"size\":527,"
        "\"platform\":{\"os\":\"linux\",\"architecture\":\"s390x\"}}]}";

static const char config_json[] =
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2024-01-01T00:00:00Z\","
        "\"config\":{\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],"
        "\"Env\":[\"PATH=/usr/bin:/bin\",\"A=b=c\"],\"WorkingDir\":\"/work\",\"User\":\"1000:1000\","
        "\"StopSignal\":\"SIGTERM\",\"Labels\":{\"org.opencontainers.image.title\":\"t\",\"x\":\"\"},"
        "\"ExposedPorts\":{\"80/tcp\":{},\"53/udp\":{}}},"
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\",\"" D1 "\"]},"
        "\"history\":[{\"created_by\":\"x\"}]}";

/* Runs one parser on text and checks the code and a word of the message. */
typedef enum Parser { P_MANIFEST, P_INDEX, P_CONFIG } Parser;

static void expect_fail(Parser p, const char *text, size_t size, int code, const char *needle) {
        Error *err = NULL;
        void *obj = NULL;
        int r = p == P_MANIFEST ? oci_manifest_parse(text, size, (OciManifest **) &obj, &err)
                : p == P_INDEX  ? oci_index_parse(text, size, (OciIndex **) &obj, &err)
                                : oci_config_parse(text, size, (OciConfig **) &obj, &err);
        if (r != code || !err || !strstr(err->message, needle))
                fail_msg("got %d '%s', want %d with '%s' for: %.200s", r, error_text(err), code, needle, text);
        assert_null(obj);
        error_free(err);
}

#define FAIL(p, text, code, needle) expect_fail(p, text, strlen(text), code, needle)

static void test_oci_manifest(void **state) {
        OciManifest *m = NULL;
        OciCompression c;
        assert_int_equal(oci_manifest_parse(oci_manifest, strlen(oci_manifest), &m, NULL), 0);
        assert_string_equal(m->media_type, OCI_MEDIA_TYPE_MANIFEST);
        assert_string_equal(m->config.digest, D1);
        assert_int_equal(m->config.size, 1469);
        assert_int_equal(m->n_layers, 3);
        assert_string_equal(m->layers[0].digest, D2);
        assert_int_equal(m->layers[0].size, 2479);
        assert_int_equal(m->layers[1].size, 0);
        assert_true(m->layers[2].size == 68719476736ull);
        assert_int_equal(oci_layer_compression(m->layers[0].media_type, &c), 0);
        assert_int_equal(c, OCI_COMPRESSION_GZIP);
        assert_int_equal(oci_layer_compression(m->layers[1].media_type, &c), 0);
        assert_int_equal(c, OCI_COMPRESSION_ZSTD);
        assert_int_equal(oci_layer_compression(m->layers[2].media_type, &c), 0);
        assert_int_equal(c, OCI_COMPRESSION_NONE);
        oci_manifest_free(m);
}

static void test_docker_manifest(void **state) {
        OciManifest *m = NULL;
        OciCompression c;
        assert_int_equal(oci_manifest_parse(docker_manifest, strlen(docker_manifest), &m, NULL), 0);
        assert_string_equal(m->config.media_type, DOCKER_MEDIA_TYPE_CONFIG);
        assert_int_equal(m->n_layers, 1);
        assert_int_equal(oci_layer_compression(m->layers[0].media_type, &c), 0);
        assert_int_equal(c, OCI_COMPRESSION_GZIP);
        oci_manifest_free(m);
        /* mediaType is optional in OCI manifests. */
        const char *bare = "{\"schemaVersion\":2,\"config\":" DESC(OCI_MEDIA_TYPE_CONFIG, D1, 2) ",\"layers\":[]}";
        assert_int_equal(oci_manifest_parse(bare, strlen(bare), &m, NULL), 0);
        assert_null(m->media_type);
        assert_int_equal(m->n_layers, 0);
        oci_manifest_free(m);
}

static void test_manifest_errors(void **state) {
        FAIL(P_MANIFEST, "", -EBADMSG, "invalid JSON");
        FAIL(P_MANIFEST, "[1]", -EBADMSG, "not a JSON object");
        FAIL(P_MANIFEST, "{\"schemaVersion\":2,", -EBADMSG, "invalid JSON");
        FAIL(P_MANIFEST, "{\"schemaVersion\":2,\"schemaVersion\":2}", -EBADMSG, "duplicate");
        FAIL(P_MANIFEST, "{\"schemaVersion\":\"2\"}", -EBADMSG, "schemaVersion");
        FAIL(P_MANIFEST, "{\"schemaVersion\":1}", -EOPNOTSUPP, "schemaVersion 1");
        FAIL(P_MANIFEST, "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MEDIA_TYPE_INDEX "\"}", -EBADMSG,
             "not an image manifest");
        FAIL(P_MANIFEST, "{\"schemaVersion\":2,\"mediaType\":5}", -EBADMSG, "must be a string");
        FAIL(P_MANIFEST, "{\"schemaVersion\":2,\"layers\":[]}", -EBADMSG, "manifest config: missing");
        FAIL(P_MANIFEST, "{\"schemaVersion\":2,\"config\":" DESC("text/plain", D1, 2) ",\"layers\":[]}",
             -EOPNOTSUPP, "not an image config");
        FAIL(P_MANIFEST, "{\"schemaVersion\":2,\"config\":" DESC(OCI_MEDIA_TYPE_CONFIG, D1, 2) "}", -EBADMSG,
             "\"layers\"");
        FAIL(P_MANIFEST, "{\"schemaVersion\":2,\"config\":" DESC(OCI_MEDIA_TYPE_CONFIG, D1, 2) ",\"layers\":{}}",
             -EBADMSG, "\"layers\"");
        FAIL(P_MANIFEST, "{\"schemaVersion\":2,\"config\":" DESC(OCI_MEDIA_TYPE_CONFIG, D1, 2) ",\"layers\":[1]}",
             -EBADMSG, "manifest layer 0: missing or not an object");
}

#define WITH_LAYER(layer) \
        "{\"schemaVersion\":2,\"config\":" DESC(OCI_MEDIA_TYPE_CONFIG, D1, 2) ",\"layers\":[" layer "]}"

static void test_manifest_descriptor_errors(void **state) {
        FAIL(P_MANIFEST, WITH_LAYER(DESC(OCI_MEDIA_TYPE_LAYER_GZIP, "sha256:abc", 1)), -EBADMSG, "bad digest");
        FAIL(P_MANIFEST, WITH_LAYER(DESC(OCI_MEDIA_TYPE_LAYER_GZIP, "sha256:" H1 "00", 1)), -EBADMSG, "bad digest");
        FAIL(P_MANIFEST, WITH_LAYER(DESC(OCI_MEDIA_TYPE_LAYER_GZIP, H1, 1)), -EBADMSG, "bad digest");
        FAIL(P_MANIFEST, WITH_LAYER(DESC(OCI_MEDIA_TYPE_LAYER_GZIP, "sha512:" H1 H1, 1)), -EOPNOTSUPP,
             "unsupported digest algorithm");
        FAIL(P_MANIFEST, WITH_LAYER(DESC(OCI_MEDIA_TYPE_LAYER_GZIP, D1, -1)), -EBADMSG, "negative size");
        FAIL(P_MANIFEST, WITH_LAYER(DESC(OCI_MEDIA_TYPE_LAYER_GZIP, D1, 68719476737)), -EFBIG, "exceeds");
        FAIL(P_MANIFEST, WITH_LAYER(DESC(OCI_MEDIA_TYPE_LAYER_GZIP, D1, 1.5)), -EBADMSG, "non-integer \"size\"");
        FAIL(P_MANIFEST, WITH_LAYER(DESC(OCI_MEDIA_TYPE_LAYER_GZIP, D1, "1")), -EBADMSG, "non-integer \"size\"");
        FAIL(P_MANIFEST, WITH_LAYER("{\"digest\":\"" D1 "\",\"size\":1}"), -EBADMSG, "missing \"mediaType\"");
        FAIL(P_MANIFEST, WITH_LAYER(DESC(DOCKER_MEDIA_TYPE_FOREIGN_LAYER, D1, 1)), -EOPNOTSUPP, "non-distributable");
        FAIL(P_MANIFEST, WITH_LAYER(DESC("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", D1, 1)),
             -EOPNOTSUPP, "non-distributable");
        FAIL(P_MANIFEST, WITH_LAYER(DESC("application/x-bzip2", D1, 1)), -EOPNOTSUPP,
             "unsupported layer media type 'application/x-bzip2'");
}

static char *manifest_with_layers(size_t n) {
        size_t per = strlen(DESC(OCI_MEDIA_TYPE_LAYER_GZIP, D1, 1)) + 1;
        char *s = malloc(256 + n * per), *p = s;
        p += sprintf(p, "{\"schemaVersion\":2,\"config\":" DESC(OCI_MEDIA_TYPE_CONFIG, D1, 2) ",\"layers\":[");
        for (size_t i = 0; i < n; i++)
                p += sprintf(p, "%s" DESC(OCI_MEDIA_TYPE_LAYER_GZIP, D1, 1), i ? "," : "");
        strcpy(p, "]}");
        return s;
}

static void test_manifest_limits(void **state) {
        OciManifest *m = NULL;
        char *s = manifest_with_layers(OCI_LAYERS_MAX);
        assert_int_equal(oci_manifest_parse(s, strlen(s), &m, NULL), 0);
        assert_int_equal(m->n_layers, OCI_LAYERS_MAX);
        oci_manifest_free(m);
        free(s);
        s = manifest_with_layers(OCI_LAYERS_MAX + 1);
        FAIL(P_MANIFEST, s, -E2BIG, "129 layers exceed");
        free(s);

        /* A document over 4 MiB is refused before parsing. */
        size_t big = OCI_JSON_MAX + 1;
        s = malloc(big);
        memset(s, ' ', big);
        expect_fail(P_MANIFEST, s, big, -EFBIG, "exceeds the limit");
        expect_fail(P_INDEX, s, big, -EFBIG, "exceeds the limit");
        expect_fail(P_CONFIG, s, big, -EFBIG, "exceeds the limit");
        free(s);
        /* Not NUL-terminated input: only size bytes are read. */
        assert_int_equal(oci_manifest_parse(docker_manifest, strlen(docker_manifest) - 1, &m, NULL), -EBADMSG);
        /* Embedded NUL in a string. */
        FAIL(P_MANIFEST, "{\"schemaVersion\":2,\"mediaType\":\"a\\u0000b\"}", -EBADMSG, "invalid JSON");
}

static void expect_sniff(const char *text, const char *content_type, int code, OciKind kind) {
        OciKind k = _OCI_KIND_MAX;
        Error *err = NULL;
        int r = oci_media_type_sniff(text, strlen(text), content_type, &k, &err);
        if (r != code)
                fail_msg("sniff %.80s: got %d (%s), want %d", text, r, error_text(err), code);
        if (r == 0)
                assert_int_equal(k, kind);
        error_free(err);
}

static void test_sniff(void **state) {
        expect_sniff(oci_manifest, OCI_MEDIA_TYPE_INDEX, 0, OCI_KIND_MANIFEST); /* header lies */
        expect_sniff(oci_index, OCI_MEDIA_TYPE_MANIFEST, 0, OCI_KIND_INDEX);
        expect_sniff(docker_list, NULL, 0, OCI_KIND_INDEX);
        expect_sniff(docker_manifest, "application/json", 0, OCI_KIND_MANIFEST);
        expect_sniff("{\"schemaVersion\":2,\"manifests\":[]}", "application/octet-stream", 0, OCI_KIND_INDEX);
        expect_sniff("{\"schemaVersion\":2,\"layers\":[]}", NULL, 0, OCI_KIND_MANIFEST);
        expect_sniff("{\"schemaVersion\":2}", OCI_MEDIA_TYPE_INDEX "; charset=utf-8", 0, OCI_KIND_INDEX);
        expect_sniff("{\"schemaVersion\":2}", DOCKER_MEDIA_TYPE_MANIFEST, 0, OCI_KIND_MANIFEST);
        expect_sniff("{\"schemaVersion\":2}", "text/html", -EBADMSG, 0);
        expect_sniff("{\"schemaVersion\":2,\"manifests\":[],\"layers\":[]}", NULL, -EBADMSG, 0);
        expect_sniff("{\"mediaType\":\"" DOCKER_MEDIA_TYPE_SCHEMA1_SIGNED "\"}", NULL, -EOPNOTSUPP, 0);
        expect_sniff("{\"mediaType\":\"application/vnd.example+json\"}", NULL, -EOPNOTSUPP, 0);
        expect_sniff("nope", NULL, -EBADMSG, 0);
}

static void expect_select(const char *text, const char *os, const char *arch, const char *variant, const char *digest,
                          size_t entry) {
        OciIndex *index = NULL;
        const OciDescriptor *d = NULL;
        assert_int_equal(oci_index_parse(text, strlen(text), &index, NULL), 0);
        assert_int_equal(oci_index_select(index, os, arch, variant, &d, NULL), 0);
        assert_ptr_equal(d, &index->manifests[entry]);
        assert_string_equal(d->digest, digest);
        oci_index_free(index);
}

static void test_index_select(void **state) {
        expect_select(oci_index, "linux", "amd64", NULL, D1, 0);
        expect_select(oci_index, "linux", "arm64", "v8", D2, 1);
        expect_select(oci_index, "linux", "arm64", NULL, D2, 1);
        expect_select(oci_index, "linux", "arm", "v7", D1, 2);
        /* Docker list: arm64 entry without variant matches a v8 request. */
        expect_select(docker_list, "linux", "arm64", "v8", D2, 0);
        expect_select(docker_list, "linux", "s390x", NULL, D1, 1);
}

static void test_index_missing(void **state) {
        OciIndex *index = NULL;
        const OciDescriptor *d = NULL;
        Error *err = NULL;

        assert_int_equal(oci_index_parse(oci_index, strlen(oci_index), &index, NULL), 0);
        assert_int_equal(index->n_manifests, 4);
        assert_int_equal(oci_index_select(index, "linux", "riscv64", NULL, &d, &err), -ENOENT);
        assert_string_equal(err->message, "no image for platform linux/riscv64 in index; available: linux/amd64, "
                                          "linux/arm64/v8, linux/arm/v7, unknown/unknown");
        error_free(err);
        err = NULL;
        assert_int_equal(oci_index_select(index, "linux", "arm", "v6", &d, &err), -ENOENT);
        assert_non_null(strstr(err->message, "linux/arm/v6"));
        error_free(err);
        err = NULL;
        assert_int_equal(oci_index_select(index, "windows", "amd64", NULL, &d, &err), -ENOENT);
        error_free(err);
        err = NULL;
        oci_index_free(index);

        const char *empty = "{\"schemaVersion\":2,\"manifests\":[]}";
        assert_int_equal(oci_index_parse(empty, strlen(empty), &index, NULL), 0);
        assert_int_equal(oci_index_select(index, "linux", "amd64", NULL, &d, &err), -ENOENT);
        assert_non_null(strstr(err->message, "available: (none)"));
        error_free(err);
        oci_index_free(index);
}

static char *index_with_entries(size_t n) {
        size_t per = strlen(ENTRY(D1, "linux", "amd64", "")) + 1;
        char *s = malloc(128 + n * per), *p = s;
        p += sprintf(p, "{\"schemaVersion\":2,\"manifests\":[");
        for (size_t i = 0; i < n; i++)
                p += sprintf(p, "%s" ENTRY(D1, "linux", "amd64", ""), i ? "," : "");
        strcpy(p, "]}");
        return s;
}

static void test_index_errors(void **state) {
        OciIndex *index = NULL;
        char *s = index_with_entries(OCI_INDEX_ENTRIES_MAX);
        assert_int_equal(oci_index_parse(s, strlen(s), &index, NULL), 0);
        oci_index_free(index);
        free(s);
        s = index_with_entries(OCI_INDEX_ENTRIES_MAX + 1);
        FAIL(P_INDEX, s, -E2BIG, "1025 entries");
        free(s);
        FAIL(P_INDEX, "{\"schemaVersion\":2}", -EBADMSG, "\"manifests\"");
        FAIL(P_INDEX, "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MEDIA_TYPE_MANIFEST "\",\"manifests\":[]}",
             -EBADMSG, "not an index");
        FAIL(P_INDEX, "{\"schemaVersion\":2,\"manifests\":[" DESC(OCI_MEDIA_TYPE_MANIFEST, "sha256:0", 1) "]}",
             -EBADMSG, "index entry 0: bad digest");
        FAIL(P_INDEX,
             "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MEDIA_TYPE_MANIFEST "\",\"digest\":\"" D1
             "\",\"size\":1,\"platform\":{\"os\":\"linux\"}}]}",
             -EBADMSG, "missing \"architecture\"");
        FAIL(P_INDEX,
             "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MEDIA_TYPE_MANIFEST "\",\"digest\":\"" D1
             "\",\"size\":1,\"platform\":\"linux/amd64\"}]}",
             -EBADMSG, "\"platform\" must be an object");
        FAIL(P_INDEX, "{\"schemaVersion\":2,\"manifests\":[],\"manifests\":[]}", -EBADMSG, "duplicate");
}

static void test_config(void **state) {
        OciConfig *c = NULL;
        assert_int_equal(oci_config_parse(config_json, strlen(config_json), &c, NULL), 0);
        assert_string_equal(c->architecture, "amd64");
        assert_string_equal(c->os, "linux");
        assert_null(c->variant);
        assert_int_equal(c->entrypoint.n, 2);
        assert_string_equal(c->entrypoint.v[1], "-c");
        assert_int_equal(c->cmd.n, 1);
        assert_string_equal(c->cmd.v[0], "echo hi");
        assert_int_equal(c->env.n, 2);
        assert_string_equal(c->env.v[0], "PATH=/usr/bin:/bin");
        assert_string_equal(c->env.v[1], "A=b=c");
        assert_string_equal(c->working_dir, "/work");
        assert_string_equal(c->user, "1000:1000");
        assert_string_equal(c->stop_signal, "SIGTERM");
        assert_int_equal(c->label_keys.n, 2);
        assert_int_equal(c->label_values.n, 2);
        for (size_t i = 0; i < c->label_keys.n; i++)
                if (strcmp(c->label_keys.v[i], "x") == 0)
                        assert_string_equal(c->label_values.v[i], "");
                else
                        assert_string_equal(c->label_values.v[i], "t");
        assert_int_equal(c->exposed_ports.n, 2);
        assert_int_equal(c->diff_ids.n, 3);
        assert_string_equal(c->diff_ids.v[1], D2);
        oci_config_free(c);
}

static void test_config_minimal(void **state) {
        OciConfig *c = NULL;
        const char *s = "{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\",\"config\":{\"Cmd\":null,"
                        "\"Labels\":null},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
        assert_int_equal(oci_config_parse(s, strlen(s), &c, NULL), 0);
        assert_string_equal(c->variant, "v8");
        assert_int_equal(c->cmd.n, 0);
        assert_null(c->cmd.v);
        assert_int_equal(c->label_keys.n, 0);
        assert_null(c->working_dir);
        oci_config_free(c);
}

#define CFG(inner) "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":" inner "," \
                   "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}"
#define ROOTFS(inner) "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":" inner "}"

static void test_config_errors(void **state) {
        FAIL(P_CONFIG, "{\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}", -EBADMSG,
             "missing \"architecture\"");
        FAIL(P_CONFIG, "{\"architecture\":\"amd64\",\"os\":\"linux\"}", -EBADMSG, "\"rootfs\"");
        FAIL(P_CONFIG, CFG("[]"), -EBADMSG, "\"config\" must be an object");
        FAIL(P_CONFIG, CFG("{\"Cmd\":\"echo\"}"), -EBADMSG, "\"Cmd\" must be an array");
        FAIL(P_CONFIG, CFG("{\"Env\":[1]}"), -EBADMSG, "\"Env\" must be a string");
        FAIL(P_CONFIG, CFG("{\"WorkingDir\":[]}"), -EBADMSG, "\"WorkingDir\" must be a string");
        FAIL(P_CONFIG, CFG("{\"Labels\":[]}"), -EBADMSG, "\"Labels\" must be an object");
        FAIL(P_CONFIG, CFG("{\"Labels\":{\"a\":1}}"), -EBADMSG, "\"a\" must be a string");
        FAIL(P_CONFIG, CFG("{\"Labels\":{\"a\":\"1\",\"a\":\"2\"}}"), -EBADMSG, "duplicate");
        FAIL(P_CONFIG, ROOTFS("{\"type\":\"layers\"}"), -EBADMSG, "\"diff_ids\"");
        FAIL(P_CONFIG, ROOTFS("{\"type\":\"squash\",\"diff_ids\":[]}"), -EOPNOTSUPP, "'squash'");
        FAIL(P_CONFIG, ROOTFS("{\"type\":\"layers\",\"diff_ids\":[\"sha256:1\"]}"), -EBADMSG, "bad digest");
        FAIL(P_CONFIG, ROOTFS("{\"type\":\"layers\",\"diff_ids\":[\"md5:abcd\"]}"), -EOPNOTSUPP, "algorithm");
}

static void test_config_bounds(void **state) {
        size_t n = OCI_STRING_MAX + 1;
        char *s = malloc(n + 256), *p = s;
        p += sprintf(p, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"");
        memset(p, 'u', n);
        strcpy(p + n, "\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
        FAIL(P_CONFIG, s, -EFBIG, "\"User\" longer");
        free(s);

        n = OCI_ARRAY_MAX + 1;
        s = malloc(n * 4 + 256);
        p = s + sprintf(s, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[");
        for (size_t i = 0; i < n; i++)
                p += sprintf(p, "%s\"\"", i ? "," : "");
        strcpy(p, "]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
        FAIL(P_CONFIG, s, -E2BIG, "\"Env\" has more than 4096");
        free(s);
}

static void test_check_layers(void **state) {
        OciConfig *c = NULL;
        OciManifest *m = NULL;
        Error *err = NULL;
        assert_int_equal(oci_config_parse(config_json, strlen(config_json), &c, NULL), 0);
        assert_int_equal(oci_manifest_parse(oci_manifest, strlen(oci_manifest), &m, NULL), 0);
        assert_int_equal(oci_config_check_layers(c, m, NULL), 0);
        oci_manifest_free(m);
        assert_int_equal(oci_manifest_parse(docker_manifest, strlen(docker_manifest), &m, NULL), 0);
        assert_int_equal(oci_config_check_layers(c, m, &err), -EBADMSG);
        assert_string_equal(err->message, "config lists 3 diff_ids but the manifest has 1 layers");
        error_free(err);
        oci_manifest_free(m);
        oci_config_free(c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_oci_manifest),     cmocka_unit_test(test_docker_manifest),
                cmocka_unit_test(test_manifest_errors),  cmocka_unit_test(test_manifest_descriptor_errors),
                cmocka_unit_test(test_manifest_limits),  cmocka_unit_test(test_sniff),
                cmocka_unit_test(test_index_select),     cmocka_unit_test(test_index_missing),
                cmocka_unit_test(test_index_errors),     cmocka_unit_test(test_config),
                cmocka_unit_test(test_config_minimal),   cmocka_unit_test(test_config_errors),
                cmocka_unit_test(test_config_bounds),    cmocka_unit_test(test_check_layers),
        };
        return test_run_group(tests, NULL, NULL);
}
