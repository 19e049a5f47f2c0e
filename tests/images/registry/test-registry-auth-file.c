/* test-registry-auth-file: Docker-style auth files (registry-auth-file.c).
 *
 * Covers the two entry forms ("auth" base64, username/password), key
 * normalisation (scheme, path, Docker Hub aliases), entries that are skipped
 * (identity tokens, empty), and every refusal: bad JSON, duplicate keys,
 * a non-object "auths", base64 that is not "user:password", oversize input,
 * a missing file. */
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
#include <unistd.h>

#include "images/registry/registry-auth-file.h"

static RegistryAuthFile *parse_ok(const char *json) {
        RegistryAuthFile *f = NULL;
        Error *err = NULL;
        int r = registry_auth_file_parse(json, strlen(json), &f, &err);
        if (r < 0)
                fail_msg("parse: %s", error_text(err));
        return f;
}

static int parse_err(const char *json, char **msg) {
        RegistryAuthFile *f = NULL;
        Error *err = NULL;
        int r = registry_auth_file_parse(json, strlen(json), &f, &err);
        assert_null(f);
        *msg = strdup(err ? error_text(err) : "");
        error_free(err);
        return r;
}

static void expect_login(RegistryAuthFile *f, const char *registry, const char *user, const char *pass) {
        char *u = NULL, *p = NULL;
        assert_int_equal(registry_auth_file_lookup(registry, &u, &p, f), 1);
        assert_string_equal(u, user);
        assert_string_equal(p, pass);
        free(u);
        free(p);
}

static void expect_none(RegistryAuthFile *f, const char *registry) {
        char *u = NULL, *p = NULL;
        assert_int_equal(registry_auth_file_lookup(registry, &u, &p, f), 0);
        assert_null(u);
        assert_null(p);
}

static void test_forms_and_keys(void **state) {
        /* dXNlcjpwYTpzcw== is "user:pa:ss" (a colon in the password), YTpi is "a:b". */
        RegistryAuthFile *f = parse_ok("{\"auths\": {"
                                       "\"https://index.docker.io/v1/\": {\"auth\": \"dXNlcjpwYTpzcw==\"},"
                                       "\"http://127.0.0.1:5000/v2/\": {\"auth\": \"YTpi\"},"
                                       "\"Registry.Example.com\": {\"username\": \"u\", \"password\": \"p\"},"
                                       "\"token.example.com\": {\"identitytoken\": \"xyz\"},"
                                       "\"empty.example.com\": {}"
                                       "}, \"credsStore\": \"desktop\"}");
        assert_int_equal(registry_auth_file_count(f), 3);
        expect_login(f, "docker.io", "user", "pa:ss");
        expect_login(f, "127.0.0.1:5000", "a", "b");
        expect_login(f, "registry.example.com", "u", "p");
        expect_none(f, "127.0.0.1:5001");
        expect_none(f, "token.example.com");
        expect_none(f, "empty.example.com");
        registry_auth_file_free(f);

        f = parse_ok("{}");
        assert_int_equal(registry_auth_file_count(f), 0);
        expect_none(f, "docker.io");
        registry_auth_file_free(f);
}

static void test_refused(void **state) {
        char *msg = NULL;
        assert_int_equal(parse_err("{\"auths\": ", &msg), -EBADMSG);
        free(msg);
        assert_int_equal(parse_err("[1]", &msg), -EBADMSG);
        free(msg);
        assert_int_equal(parse_err("{\"auths\": []}", &msg), -EBADMSG);
        free(msg);
        assert_int_equal(parse_err("{\"auths\": {\"a\": {}, \"a\": {}}}", &msg), -EBADMSG);
        free(msg);
        /* "bm9jb2xvbg==" is "nocolon"; "!!!!" is not base64; "OnBhc3M=" is ":pass". */
        assert_int_equal(parse_err("{\"auths\": {\"h.example\": {\"auth\": \"bm9jb2xvbg==\"}}}", &msg), -EBADMSG);
        assert_non_null(strstr(msg, "h.example"));
        free(msg);
        assert_int_equal(parse_err("{\"auths\": {\"h.example\": {\"auth\": \"!!!!\"}}}", &msg), -EBADMSG);
        free(msg);
        assert_int_equal(parse_err("{\"auths\": {\"h.example\": {\"auth\": \"OnBhc3M=\"}}}", &msg), -EBADMSG);
        free(msg);
        assert_int_equal(parse_err("{\"auths\": {\"h.example\": {\"auth\": \"YTpi=\"}}}", &msg), -EBADMSG);
        free(msg);
        assert_int_equal(parse_err("{\"auths\": {\"h.example\": 3}}", &msg), -EBADMSG);
        free(msg);

        size_t big = REGISTRY_AUTH_FILE_MAX + 1;
        char *data = malloc(big + 1);
        memset(data, ' ', big);
        data[big] = '\0';
        RegistryAuthFile *f = NULL;
        Error *err = NULL;
        assert_int_equal(registry_auth_file_parse(data, big, &f, &err), -EFBIG);
        error_free(err);
        free(data);

        err = NULL;
        assert_int_equal(registry_auth_file_load("/nonexistent/auth.json", &f, &err), -ENOENT);
        assert_non_null(strstr(error_text(err), "/nonexistent/auth.json"));
        error_free(err);

        /* A file that is no JSON: -EBADMSG, with or without an Error. */
        char path[] = "/tmp/test-auth-file.XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "{\"auths\": ", 11), 11);
        close(fd);
        err = NULL;
        assert_int_equal(registry_auth_file_load(path, &f, &err), -EBADMSG);
        assert_non_null(strstr(error_text(err), path));
        error_free(err);
        assert_int_equal(registry_auth_file_load(path, &f, NULL), -EBADMSG);
        unlink(path);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_forms_and_keys),
                cmocka_unit_test(test_refused),
        };
        return test_run_group(tests, NULL, NULL);
}
