/* test-oci-ref.c: image references (images/oci/oci-ref.h) against Docker's
 * normalisation: a table of inputs with the expected registry, repository,
 * tag and digest or error code (and a word the message must contain), the
 * canonical string round trip, and the registry base URL mapping. */
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

#include "images/oci/oci-ref.h"

#define D "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct Case {
        const char *input;
        int code;             /* 0 or negative errno */
        const char *registry; /* on success; for errors: a word the message contains */
        const char *repository;
        const char *tag;
        const char *digest;
} Case;

static const Case cases[] = {
        { "busybox", 0, "docker.io", "library/busybox", "latest", NULL },
        { "library/busybox", 0, "docker.io", "library/busybox", "latest", NULL },
        { "docker.io/busybox:1.36", 0, "docker.io", "library/busybox", "1.36", NULL },
        { "docker.io/library/busybox:1.36", 0, "docker.io", "library/busybox", "1.36", NULL },
        { "index.docker.io/busybox", 0, "docker.io", "library/busybox", "latest", NULL },
        { "user/app", 0, "docker.io", "user/app", "latest", NULL },
        { "localhost:5000/a/b:tag", 0, "localhost:5000", "a/b", "tag", NULL },
        { "localhost/a", 0, "localhost", "a", "latest", NULL },
        { "127.0.0.1:5000/x@" D, 0, "127.0.0.1:5000", "x", NULL, D },
        { "[::1]:5000/x", 0, "[::1]:5000", "x", "latest", NULL },
        { "[::1]/x:v", 0, "[::1]", "x", "v", NULL },
        { "[2001:db8::1]:443/ns/img", 0, "[2001:db8::1]:443", "ns/img", "latest", NULL },
        { "registry.example.com/a/b/c:v1.2_3", 0, "registry.example.com", "a/b/c", "v1.2_3", NULL },
        { "Registry.Example.com/a", 0, "Registry.Example.com", "a", "latest", NULL },
        { "busybox@" D, 0, "docker.io", "library/busybox", NULL, D },
        { "busybox:1.36@" D, 0, "docker.io", "library/busybox", "1.36", D },
        { "a/b__c/d.e/f-g/h--i", 0, "docker.io", "a/b__c/d.e/f-g/h--i", "latest", NULL },
        { "example.com", 0, "docker.io", "library/example.com", "latest", NULL },
        { "foo:_tag", 0, "docker.io", "library/foo", "_tag", NULL },
        { "my-host:1/x", 0, "my-host:1", "x", "latest", NULL },
        /* errors */
        { "", -EINVAL, "empty", NULL, NULL, NULL },
        { "Busybox", -EINVAL, "lowercase", NULL, NULL, NULL },
        { "docker.io/Library/busybox", -EINVAL, "'Library'", NULL, NULL, NULL },
        { "busybox:", -EINVAL, "empty tag", NULL, NULL, NULL },
        { "busybox:-bad", -EINVAL, "tag", NULL, NULL, NULL },
        { "busybox:a+b", -EINVAL, "tag", NULL, NULL, NULL },
        { "busybox@sha256:abc", -EINVAL, "digest", NULL, NULL, NULL },
        { "busybox@sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", -EINVAL, "digest",
          NULL, NULL, NULL },
        { "busybox@md5", -EINVAL, "digest", NULL, NULL, NULL },
        { "busybox@sha512:0123456789abcdef0123456789abcdef", -EOPNOTSUPP, "algorithm", NULL, NULL, NULL },
        { "a//b", -EINVAL, "empty path component", NULL, NULL, NULL },
        { "a/b/", -EINVAL, "empty path component", NULL, NULL, NULL },
        { "/a", -EINVAL, "empty path component", NULL, NULL, NULL },
        { "example.com/", -EINVAL, "empty repository", NULL, NULL, NULL },
        { "a/-b", -EINVAL, "'-b'", NULL, NULL, NULL },
        { "a/b_", -EINVAL, "'b_'", NULL, NULL, NULL },
        { "a/b___c", -EINVAL, "'b___c'", NULL, NULL, NULL },
        { "a/b..c", -EINVAL, "'b..c'", NULL, NULL, NULL },
        { "-host.com/a", -EINVAL, "registry host", NULL, NULL, NULL },
        { "host.com:/a", -EINVAL, "port", NULL, NULL, NULL },
        { "host.com:12x/a", -EINVAL, "port", NULL, NULL, NULL },
        { "[::1/a", -EINVAL, "registry host", NULL, NULL, NULL },
        { "[zz::1]:5000/a", -EINVAL, "registry host", NULL, NULL, NULL },
        { "a b", -EINVAL, "repository component", NULL, NULL, NULL },
        { "@" D, -EINVAL, "empty repository", NULL, NULL, NULL },
        { ":tag", -EINVAL, "empty repository", NULL, NULL, NULL },
        { "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", -EINVAL, "image ID", NULL, NULL, NULL },
};

static void check_case(const Case *c) {
        OciRef *ref = NULL;
        Error *err = NULL;
        int r = oci_ref_parse(c->input, &ref, &err);
        if (r != c->code)
                fail_msg("'%s': got %d (%s), want %d", c->input, r, error_text(err), c->code);
        if (r < 0) {
                assert_null(ref);
                if (!strstr(err->message, c->registry))
                        fail_msg("'%s': message '%s' lacks '%s'", c->input, err->message, c->registry);
                error_free(err);
                return;
        }
        assert_null(err);
        assert_string_equal(ref->registry, c->registry);
        assert_string_equal(ref->repository, c->repository);
        if (c->tag)
                assert_string_equal(ref->tag, c->tag);
        else
                assert_null(ref->tag);
        if (c->digest)
                assert_string_equal(ref->digest, c->digest);
        else
                assert_null(ref->digest);
        oci_ref_free(ref);
}

static void test_table(void **state) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
                check_case(&cases[i]);
}

/* The canonical string parses back to itself. */
static void test_round_trip(void **state) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                OciRef *a = NULL, *b = NULL;
                char *s = NULL, *t = NULL;
                if (cases[i].code != 0)
                        continue;
                assert_int_equal(oci_ref_parse(cases[i].input, &a, NULL), 0);
                assert_int_equal(oci_ref_to_string(a, &s), 0);
                assert_int_equal(oci_ref_parse(s, &b, NULL), 0);
                assert_int_equal(oci_ref_to_string(b, &t), 0);
                assert_string_equal(s, t);
                free(s);
                free(t);
                oci_ref_free(a);
                oci_ref_free(b);
        }
}

static void expect_canonical(const char *input, const char *canonical) {
        OciRef *ref = NULL;
        char *s = NULL;
        assert_int_equal(oci_ref_parse(input, &ref, NULL), 0);
        assert_int_equal(oci_ref_to_string(ref, &s), 0);
        assert_string_equal(s, canonical);
        free(s);
        oci_ref_free(ref);
}

static void test_to_string(void **state) {
        expect_canonical("busybox", "docker.io/library/busybox:latest");
        expect_canonical("busybox@" D, "docker.io/library/busybox@" D);
        expect_canonical("busybox:1@" D, "docker.io/library/busybox:1@" D);
        expect_canonical("[::1]:5000/x", "[::1]:5000/x:latest");
}

static void test_limits(void **state) {
        char buf[OCI_REF_MAX + 16];
        Error *err = NULL;
        OciRef *ref = NULL;

        /* Whole input over 4096 bytes. */
        memset(buf, 'a', sizeof buf - 1);
        buf[sizeof buf - 1] = '\0';
        assert_int_equal(oci_ref_parse(buf, &ref, &err), -ENAMETOOLONG);
        error_free(err);
        err = NULL;
        /* Name over 255 characters. */
        memset(buf, 'a', 300);
        buf[300] = '\0';
        assert_int_equal(oci_ref_parse(buf, &ref, &err), -ENAMETOOLONG);
        assert_non_null(strstr(err->message, "name longer"));
        error_free(err);
        err = NULL;
        /* Tag of 128 characters is fine, 129 is not. */
        strcpy(buf, "busybox:");
        memset(buf + 8, 't', 128);
        buf[8 + 128] = '\0';
        assert_int_equal(oci_ref_parse(buf, &ref, NULL), 0);
        oci_ref_free(ref);
        strcat(buf, "t");
        assert_int_equal(oci_ref_parse(buf, &ref, &err), -EINVAL);
        assert_non_null(strstr(err->message, "tag longer"));
        error_free(err);
        assert_int_equal(oci_ref_parse(NULL, &ref, NULL), -EINVAL);
}

static void expect_url(const char *input, bool insecure, const char *url) {
        OciRef *ref = NULL;
        char *s = NULL;
        assert_int_equal(oci_ref_parse(input, &ref, NULL), 0);
        assert_int_equal(oci_ref_registry_url(ref, insecure, &s), 0);
        assert_string_equal(s, url);
        free(s);
        oci_ref_free(ref);
}

static void test_registry_url(void **state) {
        expect_url("busybox", false, "https://registry-1.docker.io");
        expect_url("docker.io/library/busybox", false, "https://registry-1.docker.io");
        expect_url("localhost:5000/a/b:tag", false, "http://localhost:5000");
        expect_url("localhost/a", false, "http://localhost");
        expect_url("127.0.0.1:5000/x", false, "http://127.0.0.1:5000");
        expect_url("127.1.2.3/x", false, "http://127.1.2.3");
        expect_url("[::1]:5000/x", false, "http://[::1]:5000");
        expect_url("[::1]/x", false, "http://[::1]");
        expect_url("128.0.0.1:5000/x", false, "https://128.0.0.1:5000");
        expect_url("127.example.com/x", false, "https://127.example.com");
        expect_url("registry.example.com/a/b/c:v1.2_3", false, "https://registry.example.com");
        expect_url("registry.example.com:8443/a", true, "http://registry.example.com:8443");
        expect_url("[2001:db8::1]:443/ns/img", false, "https://[2001:db8::1]:443");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table),  cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_to_string), cmocka_unit_test(test_limits),
                cmocka_unit_test(test_registry_url),
        };
        return test_run_group(tests, NULL, NULL);
}
