/* test-path-util.c: path_normalize() under the three rule sets its callers
 * use (the agent's copy-in, the ext4 layer writer, the docker-archive
 * source): the normal forms, and every refusal with its reason. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/macro.h"
#include "common/base/path-util.h"

static const PathRules agent = {.max_len = 4096};
static const PathRules layer = {.max_len = 4096, .max_component = 255, .strip_root = true};
static const PathRules member = {.max_len = 4096, .refuse_empty = true};
static const PathRules link_target = {.max_len = 4096, .refuse_empty = true, .resolve_dotdot = true};

static void expect_ok(const char *base, const char *raw, const PathRules *rules, const char *want) {
        _cleanup_free_ char *out = NULL;
        PathReject why = PATH_REJECT_ESCAPES;
        int r = path_normalize(base, raw, rules, &out, &why);
        if (r < 0)
                fail_msg("'%s': %d (reason %d), want '%s'", raw, r, why, want);
        assert_int_equal(why, PATH_REJECT_NONE);
        assert_string_equal(out, want);
}

static void expect_reject(const char *base, const char *raw, const PathRules *rules, int code, PathReject reason) {
        char *out = (char *) "untouched";
        PathReject why = PATH_REJECT_NONE;
        assert_int_equal(path_normalize(base, raw, rules, &out, &why), code);
        assert_int_equal(why, reason);
        assert_string_equal(out, "untouched");
}

static void test_normal_forms(void **state) {
        expect_ok(NULL, "a", &agent, "a");
        expect_ok(NULL, "./a/b", &agent, "a/b");
        expect_ok(NULL, "a//b/./c/", &agent, "a/b/c");
        expect_ok(NULL, "a/.", &agent, "a");
        expect_ok(NULL, ".", &agent, "");   /* the destination itself */
        expect_ok(NULL, "./", &agent, "");
        expect_ok(NULL, ".//./", &agent, "");
        expect_ok(NULL, "...", &agent, "..."); /* only ".." is special */
        expect_ok(NULL, "a/..b/c..", &agent, "a/..b/c..");
        expect_ok("", "x", &agent, "x");
}

static void test_strip_root(void **state) {
        expect_ok(NULL, "/etc/passwd", &layer, "etc/passwd");
        expect_ok(NULL, "///etc//", &layer, "etc");
        expect_ok(NULL, "/", &layer, ""); /* the root */
        expect_ok(NULL, "./etc", &layer, "etc");
        expect_reject(NULL, "/etc", &agent, -EINVAL, PATH_REJECT_ABSOLUTE);
        expect_reject(NULL, "/", &member, -EINVAL, PATH_REJECT_ABSOLUTE);
}

static void test_dotdot_refused(void **state) {
        expect_reject(NULL, "..", &agent, -EINVAL, PATH_REJECT_DOTDOT);
        expect_reject(NULL, "../x", &agent, -EINVAL, PATH_REJECT_DOTDOT);
        expect_reject(NULL, "a/../b", &agent, -EINVAL, PATH_REJECT_DOTDOT); /* even when it stays inside */
        expect_reject(NULL, "a/..", &layer, -EINVAL, PATH_REJECT_DOTDOT);
        expect_reject(NULL, "/../etc", &layer, -EINVAL, PATH_REJECT_DOTDOT);
        expect_reject(NULL, "a/b/..", &member, -EINVAL, PATH_REJECT_DOTDOT);
}

static void test_dotdot_resolved(void **state) {
        expect_ok(NULL, "a/../b", &link_target, "b");
        expect_ok(NULL, "a/b/../../c", &link_target, "c");
        expect_ok("dir", "../layer.tar", &link_target, "layer.tar");
        expect_ok("a/b", "../c/./d", &link_target, "a/c/d");
        expect_ok("a/b", "c", &link_target, "a/b/c");
        expect_reject(NULL, "..", &link_target, -EINVAL, PATH_REJECT_ESCAPES);
        expect_reject(NULL, "a/../..", &link_target, -EINVAL, PATH_REJECT_ESCAPES);
        expect_reject("dir", "../../etc", &link_target, -EINVAL, PATH_REJECT_ESCAPES);
        expect_reject(NULL, "a/..", &link_target, -EINVAL, PATH_REJECT_EMPTY_RESULT);
        /* The base is no excuse for an absolute raw. */
        expect_reject("dir", "/etc/passwd", &link_target, -EINVAL, PATH_REJECT_ABSOLUTE);
}

static void test_empty(void **state) {
        expect_reject(NULL, "", &agent, -EINVAL, PATH_REJECT_EMPTY);
        expect_reject(NULL, NULL, &layer, -EINVAL, PATH_REJECT_EMPTY);
        expect_reject(NULL, ".", &member, -EINVAL, PATH_REJECT_EMPTY_RESULT);
        expect_reject(NULL, "././/", &member, -EINVAL, PATH_REJECT_EMPTY_RESULT);
        /* No rules at all: only emptiness is refused. */
        expect_ok(NULL, "/a/../b", &(PathRules) {.strip_root = true, .resolve_dotdot = true}, "b");
        _cleanup_free_ char *out = NULL;
        assert_int_equal(path_normalize(NULL, "x//y", NULL, &out, NULL), 0);
        assert_string_equal(out, "x/y");
}

static void test_lengths(void **state) {
        char name[4098];
        memset(name, 'a', sizeof name);
        name[4096] = 0; /* exactly max_len, but one 4096-byte component */
        expect_reject(NULL, name, &layer, -ENAMETOOLONG, PATH_REJECT_COMPONENT_TOO_LONG);
        _cleanup_free_ char *out = NULL;
        assert_int_equal(path_normalize(NULL, name, &agent, &out, NULL), 0); /* no component limit */
        assert_int_equal(strlen(out), 4096);
        name[4097] = 0;
        name[4096] = 'a'; /* one past max_len */
        expect_reject(NULL, name, &agent, -ENAMETOOLONG, PATH_REJECT_TOO_LONG);
        expect_reject(NULL, name, &layer, -ENAMETOOLONG, PATH_REJECT_TOO_LONG);

        char comp[300];
        memset(comp, 'b', 255);
        comp[255] = 0;
        expect_ok(NULL, comp, &layer, comp); /* exactly max_component */
        comp[255] = 'b';
        comp[256] = 0;
        expect_reject(NULL, comp, &layer, -ENAMETOOLONG, PATH_REJECT_COMPONENT_TOO_LONG);
        /* ".." is judged before the length of later components. */
        char mixed[400];
        snprintf(mixed, sizeof mixed, "x/../%s", comp);
        expect_reject(NULL, mixed, &layer, -EINVAL, PATH_REJECT_DOTDOT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_normal_forms),   cmocka_unit_test(test_strip_root),
                cmocka_unit_test(test_dotdot_refused), cmocka_unit_test(test_dotdot_resolved),
                cmocka_unit_test(test_empty),          cmocka_unit_test(test_lengths),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
