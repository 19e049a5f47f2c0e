/* test-api-routes.c: docs/openapi.json and the routes portlayerd serves
 * (api_routes()) name the same calls, both ways; and the request body
 * parser every route uses refuses what docs/api.md says it refuses. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "portlayer/api/api.h"

/* "/containers/{id}/handle" and "/containers/{}/handle" both become the
 * latter; the catch-all "{*}" is a "{}" too. */
static void normalise(const char *in, char *out, size_t size) {
        size_t k = 0;
        for (const char *p = in; *p && k + 3 < size; p++) {
                if (*p == '{') {
                        const char *e = strchr(p, '}');
                        assert_non_null(e);
                        out[k++] = '{';
                        out[k++] = '}';
                        p = e;
                } else
                        out[k++] = *p;
        }
        out[k] = 0;
}

static json_t *load_openapi(void) {
        char path[4096];
        snprintf(path, sizeof path, "%s/docs/openapi.json", getenv("PL_SOURCE_DIR"));
        json_error_t je;
        json_t *doc = json_load_file(path, 0, &je);
        if (!doc)
                fail_msg("%s: %s", path, je.text);
        return doc;
}

static bool served(const char *method, const char *norm) {
        size_t n = 0;
        const ApiRouteInfo *r = api_routes(&n);
        for (size_t i = 0; i < n; i++) {
                char m[256];
                normalise(r[i].pattern, m, sizeof m);
                if (strcasecmp(r[i].method, method) == 0 && strcmp(m, norm) == 0)
                        return true;
        }
        return false;
}

static void test_openapi_lists_what_is_served(void **state) {
        json_t *doc = load_openapi(), *paths = json_object_get(doc, "paths");
        assert_non_null(paths);
        size_t documented = 0, n = 0;
        const char *path;
        json_t *ops;
        json_object_foreach(paths, path, ops) {
                char norm[256];
                normalise(path, norm, sizeof norm);
                const char *method;
                json_t *op;
                json_object_foreach(ops, method, op) {
                        if (!served(method, norm))
                                fail_msg("docs/openapi.json has %s %s, the daemon does not serve it", method, path);
                        documented++;
                }
        }
        const ApiRouteInfo *r = api_routes(&n);
        for (size_t i = 0; i < n; i++) {
                bool found = false;
                char want[256];
                normalise(r[i].pattern, want, sizeof want);
                json_object_foreach(paths, path, ops) {
                        char norm[256], lower[16];
                        normalise(path, norm, sizeof norm);
                        size_t j = 0;
                        for (; r[i].method[j] && j + 1 < sizeof lower; j++)
                                lower[j] = (char) tolower((unsigned char) r[i].method[j]);
                        lower[j] = 0;
                        found |= strcmp(norm, want) == 0 && json_object_get(ops, lower);
                }
                if (!found)
                        fail_msg("the daemon serves %s %s, docs/openapi.json does not list it", r[i].method, r[i].pattern);
        }
        assert_int_equal(documented, n);
        json_decref(doc);
}

static void test_body_parser(void **state) {
        static const char *const allowed[] = {"name", "image", NULL};
        json_t *j = NULL;
        Error *e = NULL;
        assert_int_equal(api_json_parse("{\"name\": \"a\", \"image\": \"b\"}", 27, allowed, false, &j, &e), 0);
        json_decref(j);
        const char *bad[] = {"{\"name\": ", "[1]", "\"s\"", "{\"name\": \"a\", \"name\": \"b\"}", "{\"bogus\": 1}", "{} x"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                j = NULL;
                int r = api_json_parse(bad[i], strlen(bad[i]), allowed, false, &j, &e);
                if (r >= 0)
                        fail_msg("accepted %s", bad[i]);
                assert_int_equal(api_status_of_errno(r), 400);
                assert_null(j);
                assert_non_null(e);
                e = error_free(e);
        }
        assert_true(api_json_parse("", 0, allowed, false, &j, &e) < 0);
        e = error_free(e);
        assert_int_equal(api_json_parse("", 0, allowed, true, &j, &e), 0);
        assert_int_equal(json_object_size(j), 0);
        json_decref(j);
}

static void test_status_table(void **state) {
        assert_int_equal(api_status_of_errno(-ENOENT), 404);
        assert_int_equal(api_status_of_errno(-ESTALE), 409);
        assert_int_equal(api_status_of_errno(-EBUSY), 409);
        assert_int_equal(api_status_of_errno(-EFBIG), 413);
        assert_int_equal(api_status_of_errno(-ETIMEDOUT), 504);
        assert_int_equal(api_status_of_errno(-EIO), 500);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_openapi_lists_what_is_served),
                cmocka_unit_test(test_body_parser),
                cmocka_unit_test(test_status_table),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
