/* test-registry.c: the registry client (images/registry/registry.h) against the real
 * docker-registry on loopback, with real images (tests/images/
 * make-oci-image.sh) pushed by skopeo (label "images").
 *
 * Covers: a manifest by tag (bytes match the layout's digest, Content-Type,
 * Docker-Content-Digest) and by digest, through the ImageSource too
 * (get_manifest(NULL) of a tag and of a digest reference, describe()); every
 * blob of the two-layer image fetched in parallel into a hashing sink, digests
 * and sizes checked; a multi-platform index listing linux/amd64 and
 * linux/arm64; htpasswd basic auth: right credentials work (manifest and
 * blobs), none give -EACCES naming the registry, a wrong password -EACCES; a
 * missing tag -ENOENT "manifest unknown" naming the URL; a registry that is
 * down -ECONNREFUSED quickly; a listening socket that never answers
 * -ETIMEDOUT within the configured low-speed time; a blob longer than its
 * descriptor -EFBIG; four pulls at once sharing one client. Retries and
 * bearer tokens need a scripted server: they are in
 * tests/unit/test-registry-auth.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "images/oci/digest.h"
#include "images/oci/oci-manifest.h"
#include "images/registry/registry.h"
#include "lib/registry-harness.h"

#define REPO "test/busybox"
#define MAX_BLOBS 8

static RegistryHarness anon, authed;
static char layout[256];
static char *latest_digest, *layered_digest;

/* --- a sink that hashes and counts ------------------------------------------ */

typedef struct FakeSink {
        ImageBlobSink base;
        const OciDescriptor *descs;
        Digest *d[MAX_BLOBS];
        uint64_t bytes[MAX_BLOBS];
        int restarts[MAX_BLOBS];
} FakeSink;

static int sink_write(ImageBlobSink *s, size_t i, const void *data, size_t n, Error **err) {
        FakeSink *f = s->userdata;
        if (f->bytes[i] + n > f->descs[i].size)
                return error_set(err, EFBIG, "blob %s: more than %llu bytes", f->descs[i].digest,
                                 (unsigned long long) f->descs[i].size);
        f->bytes[i] += n;
        return digest_update(f->d[i], data, n);
}

static int sink_restart(ImageBlobSink *s, size_t i, Error **err) {
        FakeSink *f = s->userdata;
        digest_free(f->d[i]);
        f->d[i] = NULL;
        f->bytes[i] = 0;
        f->restarts[i]++;
        return digest_new(&f->d[i]);
}

static void sink_init(FakeSink *f, const OciDescriptor *descs, size_t n) {
        memset(f, 0, sizeof *f);
        f->base = (ImageBlobSink){.write = sink_write, .restart = sink_restart, .userdata = f};
        f->descs = descs;
        for (size_t i = 0; i < n; i++)
                assert_int_equal(digest_new(&f->d[i]), 0);
}

/* Checks blob i's size and digest; frees its state. */
static void sink_check(FakeSink *f, size_t i) {
        char *hex = NULL;
        assert_int_equal(digest_final_hex(f->d[i], &hex), 0);
        assert_int_equal(f->bytes[i], f->descs[i].size);
        assert_string_equal(hex, f->descs[i].digest);
        free(hex);
}

static void sink_fini(FakeSink *f) {
        for (size_t i = 0; i < MAX_BLOBS; i++)
                f->d[i] = digest_free(f->d[i]);
}

/* --- helpers ------------------------------------------------------------------ */

static RegistryClient *client(const RegistryOptions *o) {
        RegistryClient *c = NULL;
        Error *e = NULL;
        int r = registry_client_new(o, &c, &e);
        if (r < 0)
                fail_msg("registry_client_new: %s", error_text(e));
        return c;
}

static OciRef *ref_of(const char *host, const char *rest) {
        char s[512];
        snprintf(s, sizeof s, "%s/%s", host, rest);
        OciRef *ref = NULL;
        assert_int_equal(oci_ref_parse(s, &ref, NULL), 0);
        return ref;
}

static int get(RegistryClient *c, const char *host, const char *reference, char **ret, size_t *ret_size,
               char **ret_type, char **ret_digest, Error **err) {
        _cleanup_oci_ref_ OciRef *ref = ref_of(host, REPO);
        void *data = NULL;
        int r = registry_get_manifest(c, ref, reference, &data, ret_size, ret_type, ret_digest, err);
        *ret = data;
        return r;
}

/* Shows an expected failure's message in the test log. */
static void note(const Error *e) {
        fprintf(stderr, "    (expected) %s\n", error_text(e));
}

/* --- setup ---------------------------------------------------------------------- */

static int group_teardown(void **state);

static int setup_inner(void) {
        const char *missing = registry_harness_missing_tool();
        if (missing)
                test_program_skip_or_fail(missing);
        if (test_tmpdir_make(layout, sizeof layout, "registry-layout") < 0)
                return -1;
        char dir[300];
        snprintf(dir, sizeof dir, "%s/lay", layout);
        if (registry_harness_make_layout(dir) < 0)
                return -1;
        latest_digest = registry_harness_layout_digest(dir, "latest");
        layered_digest = registry_harness_layout_digest(dir, "layered");
        if (!latest_digest || !layered_digest)
                return -1;
        if (registry_harness_start(&anon, NULL, NULL) < 0 || registry_harness_start(&authed, "pluser", "plpass") < 0)
                return -1;
        if (registry_harness_push(&anon, dir, "latest", REPO ":latest", false) < 0 ||
            registry_harness_push(&anon, dir, "layered", REPO ":layered", false) < 0 ||
            registry_harness_push(&anon, dir, "multi", REPO ":multi", true) < 0 ||
            registry_harness_push(&authed, dir, "layered", REPO ":layered", false) < 0)
                return -1;
        return 0;
}

static int group_setup(void **state) {
        /* A failed setup stops what it started: cmocka skips the teardown then. */
        if (setup_inner() < 0) {
                group_teardown(state);
                return -1;
        }
        return 0;
}

static int group_teardown(void **state) {
        registry_harness_stop(&anon);
        registry_harness_stop(&authed);
        test_tmpdir_remove(layout);
        free(latest_digest);
        free(layered_digest);
        latest_digest = layered_digest = NULL;
        return 0;
}

/* --- tests ------------------------------------------------------------------------ */

static void test_manifest_by_tag_and_digest(void **state) {
        _cleanup_registry_client_ RegistryClient *c = client(NULL);
        _cleanup_free_ char *data = NULL, *type = NULL, *dg = NULL, *hex = NULL;
        size_t size = 0;
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(get(c, anon.host, "latest", &data, &size, &type, &dg, &e), 0);
        assert_string_equal(type, OCI_MEDIA_TYPE_MANIFEST);
        assert_int_equal(digest_buffer_hex(data, size, &hex), 0);
        assert_string_equal(hex, latest_digest);
        assert_string_equal(dg, latest_digest);
        assert_int_equal(data[size], 0);

        _cleanup_free_ char *data2 = NULL, *type2 = NULL;
        size_t size2 = 0;
        assert_int_equal(get(c, anon.host, layered_digest, &data2, &size2, &type2, NULL, &e), 0);
        _cleanup_oci_manifest_ OciManifest *m = NULL;
        assert_int_equal(oci_manifest_parse(data2, size2, &m, &e), 0);
        assert_int_equal(m->n_layers, 2);
}

static void test_source(void **state) {
        _cleanup_registry_client_ RegistryClient *c = client(NULL);
        char s[400];
        snprintf(s, sizeof s, "%s/%s@%s", anon.host, REPO, layered_digest);
        _cleanup_oci_ref_ OciRef *ref = NULL;
        assert_int_equal(oci_ref_parse(s, &ref, NULL), 0);
        _cleanup_image_source_ ImageSource *src = NULL;
        assert_int_equal(registry_source_new(c, ref, &src, NULL), 0);
        assert_string_equal(src->ops->kind, "registry");
        assert_string_equal(src->ops->describe(src), s);

        void *data = NULL;
        size_t size = 0;
        char *type = NULL, *hex = NULL;
        _cleanup_error_ Error *e = NULL;
        /* Pinned by the reference's digest. */
        assert_int_equal(src->ops->get_manifest(src, NULL, &data, &size, &type, &e), 0);
        assert_int_equal(digest_buffer_hex(data, size, &hex), 0);
        assert_string_equal(hex, layered_digest);
        free(data), free(type), free(hex);
        /* Any document by digest. */
        assert_int_equal(src->ops->get_manifest(src, latest_digest, &data, &size, &type, &e), 0);
        assert_int_equal(digest_buffer_hex(data, size, &hex), 0);
        assert_string_equal(hex, latest_digest);
        free(data), free(type), free(hex);

        /* A tag reference fetches the tag. */
        _cleanup_oci_ref_ OciRef *tagged = ref_of(anon.host, REPO ":latest");
        _cleanup_image_source_ ImageSource *src2 = NULL;
        assert_int_equal(registry_source_new(c, tagged, &src2, NULL), 0);
        assert_int_equal(src2->ops->get_manifest(src2, NULL, &data, &size, &type, &e), 0);
        assert_int_equal(digest_buffer_hex(data, size, &hex), 0);
        assert_string_equal(hex, latest_digest);
        free(data), free(type), free(hex);
}

static OciManifest *layered_manifest(RegistryClient *c, const RegistryHarness *h) {
        char *data = NULL, *type = NULL;
        size_t size = 0;
        Error *e = NULL;
        if (get(c, h->host, "layered", &data, &size, &type, NULL, &e) < 0)
                fail_msg("get layered: %s", error_text(e));
        OciManifest *m = NULL;
        assert_int_equal(oci_manifest_parse(data, size, &m, NULL), 0);
        free(data);
        free(type);
        return m;
}

/* config + layers of m in descs; returns the count. */
static size_t blob_descs(const OciManifest *m, OciDescriptor *descs) {
        descs[0] = m->config;
        for (size_t i = 0; i < m->n_layers; i++)
                descs[1 + i] = m->layers[i];
        return 1 + m->n_layers;
}

static void test_blobs_parallel(void **state) {
        _cleanup_registry_client_ RegistryClient *c = client(&(RegistryOptions){.max_parallel = 3});
        _cleanup_oci_manifest_ OciManifest *m = layered_manifest(c, &anon);
        OciDescriptor descs[MAX_BLOBS];
        size_t n = blob_descs(m, descs);
        assert_int_equal(n, 3);
        FakeSink f;
        sink_init(&f, descs, n);
        _cleanup_oci_ref_ OciRef *ref = ref_of(anon.host, REPO);
        _cleanup_error_ Error *e = NULL;
        int r = registry_fetch_blobs(c, ref, descs, n, &f.base, &e);
        if (r < 0)
                fail_msg("fetch: %s", error_text(e));
        for (size_t i = 0; i < n; i++) {
                sink_check(&f, i);
                assert_int_equal(f.restarts[i], 0);
        }
        assert_true(descs[1].size > 100000); /* the busybox layer: a real stream */
        sink_fini(&f);
}

static void test_index_platforms(void **state) {
        _cleanup_registry_client_ RegistryClient *c = client(NULL);
        _cleanup_free_ char *data = NULL, *type = NULL;
        size_t size = 0;
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(get(c, anon.host, "multi", &data, &size, &type, NULL, &e), 0);
        assert_string_equal(type, OCI_MEDIA_TYPE_INDEX);
        OciKind kind;
        assert_int_equal(oci_media_type_sniff(data, size, type, &kind, NULL), 0);
        assert_int_equal(kind, OCI_KIND_INDEX);
        _cleanup_oci_index_ OciIndex *idx = NULL;
        assert_int_equal(oci_index_parse(data, size, &idx, NULL), 0);
        assert_int_equal(idx->n_manifests, 2);
        const OciDescriptor *d = NULL;
        assert_int_equal(oci_index_select(idx, "linux", "amd64", NULL, &d, NULL), 0);
        assert_string_equal(d->digest, latest_digest);
        assert_int_equal(oci_index_select(idx, "linux", "arm64", NULL, &d, NULL), 0);
        assert_string_equal(d->digest, layered_digest);
}

static void test_basic_auth(void **state) {
        RegistryCredential good = {.registry = authed.host, .username = "pluser", .password = "plpass"};
        _cleanup_registry_client_ RegistryClient *c = client(&(RegistryOptions){.credentials = &good, .n_credentials = 1});
        _cleanup_oci_manifest_ OciManifest *m = layered_manifest(c, &authed);
        OciDescriptor descs[MAX_BLOBS];
        size_t n = blob_descs(m, descs);
        FakeSink f;
        sink_init(&f, descs, n);
        _cleanup_oci_ref_ OciRef *ref = ref_of(authed.host, REPO);
        _cleanup_error_ Error *e = NULL;
        int r = registry_fetch_blobs(c, ref, descs, n, &f.base, &e);
        if (r < 0)
                fail_msg("fetch: %s", error_text(e));
        for (size_t i = 0; i < n; i++)
                sink_check(&f, i);
        sink_fini(&f);

        /* Blobs alone, on a fresh client: the 401 is answered per transfer. */
        _cleanup_registry_client_ RegistryClient *c2 = client(&(RegistryOptions){.credentials = &good, .n_credentials = 1});
        sink_init(&f, descs, n);
        r = registry_fetch_blobs(c2, ref, descs, n, &f.base, &e);
        if (r < 0)
                fail_msg("fetch: %s", error_text(e));
        for (size_t i = 0; i < n; i++)
                sink_check(&f, i);
        sink_fini(&f);
}

static void test_basic_auth_refused(void **state) {
        _cleanup_registry_client_ RegistryClient *none = client(NULL);
        _cleanup_free_ char *data = NULL, *type = NULL;
        size_t size = 0;
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(get(none, authed.host, "layered", &data, &size, &type, NULL, &e), -EACCES);
        note(e);
        assert_non_null(strstr(e->message, authed.host));
        assert_non_null(strstr(e->message, "credentials"));
        e = error_free(e);

        RegistryCredential bad = {.registry = authed.host, .username = "pluser", .password = "wrong"};
        _cleanup_registry_client_ RegistryClient *c = client(&(RegistryOptions){.credentials = &bad, .n_credentials = 1});
        assert_int_equal(get(c, authed.host, "layered", &data, &size, &type, NULL, &e), -EACCES);
        note(e);
        assert_non_null(strstr(e->message, "rejected the credentials"));
        e = error_free(e);

        /* Credentials for another registry are not sent. */
        RegistryCredential other = {.registry = anon.host, .username = "pluser", .password = "plpass"};
        _cleanup_registry_client_ RegistryClient *c3 = client(&(RegistryOptions){.credentials = &other, .n_credentials = 1});
        assert_int_equal(get(c3, authed.host, "layered", &data, &size, &type, NULL, &e), -EACCES);
}

static int cred_fn(const char *registry, char **ret_user, char **ret_pass, void *userdata) {
        int *calls = userdata;
        (*calls)++;
        if (strcmp(registry, authed.host) != 0)
                return 0;
        *ret_user = strdup("pluser");
        *ret_pass = strdup("plpass");
        return 1;
}

static void test_credentials_callback(void **state) {
        int calls = 0;
        _cleanup_registry_client_ RegistryClient *c =
                client(&(RegistryOptions){.credentials_fn = cred_fn, .credentials_userdata = &calls});
        _cleanup_oci_manifest_ OciManifest *m = layered_manifest(c, &authed);
        assert_int_equal(m->n_layers, 2);
        assert_true(calls >= 1);
}

static void test_missing_tag(void **state) {
        _cleanup_registry_client_ RegistryClient *c = client(NULL);
        _cleanup_free_ char *data = NULL, *type = NULL;
        size_t size = 0;
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(get(c, anon.host, "nope", &data, &size, &type, NULL, &e), -ENOENT);
        char want[200];
        snprintf(want, sizeof want, "GET http://%s/v2/" REPO "/manifests/nope: 404 manifest unknown", anon.host);
        note(e);
        assert_string_equal(e->message, want);
}

static void test_blob_too_long(void **state) {
        _cleanup_registry_client_ RegistryClient *c = client(NULL);
        _cleanup_oci_manifest_ OciManifest *m = layered_manifest(c, &anon);
        OciDescriptor descs[MAX_BLOBS];
        size_t n = blob_descs(m, descs);
        descs[1].size -= 100;
        FakeSink f;
        sink_init(&f, descs, n);
        _cleanup_oci_ref_ OciRef *ref = ref_of(anon.host, REPO);
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(registry_fetch_blobs(c, ref, descs, n, &f.base, &e), -EFBIG);
        note(e);
        assert_non_null(strstr(e->message, descs[1].digest));
        sink_fini(&f);
}

static void test_registry_down(void **state) {
        int port = registry_harness_free_port();
        char host[64];
        snprintf(host, sizeof host, "127.0.0.1:%d", port);
        /* Default retries and backoff: refused connections are retried (a
         * registry restarting), and still give up within about 2 s. */
        _cleanup_registry_client_ RegistryClient *c = client(NULL);
        _cleanup_free_ char *data = NULL, *type = NULL;
        size_t size = 0;
        _cleanup_error_ Error *e = NULL;
        uint64_t t0 = now_usec();
        assert_int_equal(get(c, host, "latest", &data, &size, &type, NULL, &e), -ECONNREFUSED);
        assert_true(now_usec() - t0 < 4 * USEC_PER_SEC);
        note(e);
        assert_non_null(strstr(e->message, host));
}

static void test_no_answer(void **state) {
        /* The kernel completes the handshake; nobody ever reads or answers. */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof a), 0);
        assert_int_equal(listen(fd, 8), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        char host[64];
        snprintf(host, sizeof host, "127.0.0.1:%d", ntohs(a.sin_port));

        _cleanup_registry_client_ RegistryClient *c =
                client(&(RegistryOptions){.low_speed_time_s = 2, .request_timeout_ms = 10000});
        _cleanup_free_ char *data = NULL, *type = NULL;
        size_t size = 0;
        _cleanup_error_ Error *e = NULL;
        uint64_t t0 = now_usec();
        int r = get(c, host, "latest", &data, &size, &type, NULL, &e);
        uint64_t took = now_usec() - t0;
        close(fd);
        note(e);
        assert_int_equal(r, -ETIMEDOUT);
        assert_true(took >= 1500 * USEC_PER_MSEC);
        assert_true(took < 5 * USEC_PER_SEC);
}

typedef struct Puller {
        RegistryClient *c;
        pthread_t thread;
        int r;
        char message[512];
} Puller;

/* One pull: manifest by tag, then every blob, digests checked (no cmocka
 * asserts off the main thread). */
static void *puller_main(void *arg) {
        Puller *p = arg;
        Error *e = NULL;
        char *data = NULL, *type = NULL;
        size_t size = 0;
        OciManifest *m = NULL;
        OciRef *ref = NULL;
        FakeSink f;
        memset(&f, 0, sizeof f);
        char s[128];
        snprintf(s, sizeof s, "%s/%s", anon.host, REPO);
        p->r = oci_ref_parse(s, &ref, &e);
        if (p->r >= 0)
                p->r = registry_get_manifest(p->c, ref, "layered", (void **) &data, &size, &type, NULL, &e);
        if (p->r >= 0)
                p->r = oci_manifest_parse(data, size, &m, &e);
        OciDescriptor descs[MAX_BLOBS];
        size_t n = 0;
        if (p->r >= 0) {
                n = blob_descs(m, descs);
                f.base = (ImageBlobSink){.write = sink_write, .restart = sink_restart, .userdata = &f};
                f.descs = descs;
                for (size_t i = 0; i < n && p->r >= 0; i++)
                        p->r = digest_new(&f.d[i]);
        }
        if (p->r >= 0)
                p->r = registry_fetch_blobs(p->c, ref, descs, n, &f.base, &e);
        for (size_t i = 0; i < n && p->r >= 0; i++) {
                char *hex = NULL;
                p->r = digest_final_hex(f.d[i], &hex);
                if (p->r >= 0 && (strcmp(hex, descs[i].digest) != 0 || f.bytes[i] != descs[i].size))
                        p->r = error_set(&e, EBADMSG, "blob %zu differs", i);
                free(hex);
        }
        snprintf(p->message, sizeof p->message, "%s", e ? error_text(e) : "");
        sink_fini(&f);
        error_free(e);
        oci_manifest_free(m);
        oci_ref_free(ref);
        free(data);
        free(type);
        return NULL;
}

static void test_concurrent_pulls(void **state) {
        /* One client shared by several pulls at once, as in the daemon. */
        _cleanup_registry_client_ RegistryClient *c = client(&(RegistryOptions){.max_parallel = 2});
        Puller p[4];
        for (size_t i = 0; i < ELEMENTSOF(p); i++) {
                p[i] = (Puller){.c = c};
                assert_int_equal(pthread_create(&p[i].thread, NULL, puller_main, &p[i]), 0);
        }
        for (size_t i = 0; i < ELEMENTSOF(p); i++)
                pthread_join(p[i].thread, NULL);
        for (size_t i = 0; i < ELEMENTSOF(p); i++)
                if (p[i].r < 0)
                        fail_msg("puller %zu: %s", i, p[i].message);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_manifest_by_tag_and_digest),
                cmocka_unit_test(test_source),
                cmocka_unit_test(test_blobs_parallel),
                cmocka_unit_test(test_concurrent_pulls),
                cmocka_unit_test(test_index_platforms),
                cmocka_unit_test(test_basic_auth),
                cmocka_unit_test(test_basic_auth_refused),
                cmocka_unit_test(test_credentials_callback),
                cmocka_unit_test(test_missing_tag),
                cmocka_unit_test(test_blob_too_long),
                cmocka_unit_test(test_registry_down),
                cmocka_unit_test(test_no_answer),
        };
        return test_run_group(tests, group_setup, group_teardown);
}
