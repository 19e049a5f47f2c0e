/* test-user.c: resolving "user[:group]" from a container root's own
 * /etc/passwd and /etc/group, with nothing read from the host's. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest-agent/agent.h"

typedef struct Root {
        char dir[64];
        int fd;
} Root;

static int setup(void **state) {
        Root *r = calloc(1, sizeof *r);
        if (!r || test_tmpdir_make(r->dir, sizeof r->dir, "user-test") < 0)
                return -1;
        test_put(r->dir, "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\n"
            "# a comment line\n"
            "broken line without fields\n"
            "app:x:1000:1001:App:/home/app:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/:/bin/false\n");
        test_put(r->dir, "etc/group",
            "root:x:0:\n"
            "appgrp:x:1001:\n"
            "audio:x:29:app,other\n"
            "video:x:44:other\n"
            "disk:x:6:app\n");
        r->fd = open(r->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        *state = r;
        return r->fd >= 0 ? 0 : -1;
}

static int teardown(void **state) {
        Root *r = *state;
        close(r->fd);
        int k = test_tmpdir_remove(r->dir);
        free(r);
        return k == 0 ? 0 : -1;
}

static void test_names_and_groups(void **state) {
        Root *r = *state;
        UserIds ids;
        assert_int_equal(user_resolve(r->fd, "app", &ids, NULL), 0);
        assert_int_equal(ids.uid, 1000);
        assert_int_equal(ids.gid, 1001);
        assert_int_equal(ids.n_groups, 2); /* audio and disk list app */
        assert_int_equal(ids.groups[0], 29);
        assert_int_equal(ids.groups[1], 6);

        assert_int_equal(user_resolve(r->fd, "app:video", &ids, NULL), 0);
        assert_int_equal(ids.uid, 1000);
        assert_int_equal(ids.gid, 44);

        assert_int_equal(user_resolve(r->fd, "1000", &ids, NULL), 0); /* a known uid finds its entry */
        assert_int_equal(ids.gid, 1001);
        assert_int_equal(user_resolve(r->fd, "4242:7", &ids, NULL), 0); /* unknown ids are taken as given */
        assert_int_equal(ids.uid, 4242);
        assert_int_equal(ids.gid, 7);
        assert_int_equal(user_resolve(r->fd, "4242", &ids, NULL), 0);
        assert_int_equal(ids.gid, 0); /* as Docker: an unknown uid gets gid 0 */
        assert_int_equal(ids.n_groups, 0);
}

static void test_errors(void **state) {
        Root *r = *state;
        UserIds ids;
        Error *e = NULL;
        assert_int_equal(user_resolve(r->fd, "ghost", &ids, &e), -ENOENT);
        assert_non_null(strstr(e->message, "'ghost'"));
        e = error_free(e);
        assert_int_equal(user_resolve(r->fd, "app:nogroup", &ids, &e), -ENOENT);
        assert_non_null(strstr(e->message, "'nogroup'"));
        e = error_free(e);
        assert_int_equal(user_resolve(r->fd, "99999999999", &ids, &e), -ENOENT); /* out of range is not an id */
        e = error_free(e);
        char long_name[400];
        memset(long_name, 'a', sizeof long_name - 1);
        long_name[sizeof long_name - 1] = 0;
        assert_int_equal(user_resolve(r->fd, long_name, &ids, &e), -EINVAL);
        e = error_free(e);
}

/* /etc/passwd as a symlink to the host's file must resolve inside the root. */
static void test_symlinked_database_stays_inside(void **state) {
        Root *r = *state;
        char path[128];
        snprintf(path, sizeof path, "%s/etc/passwd", r->dir);
        unlink(path);
        assert_int_equal(symlink("/etc/passwd", path), 0); /* means <root>/etc/passwd: itself, a loop */
        UserIds ids;
        Error *e = NULL;
        /* "root" exists in the host's /etc/passwd; it must not be found through the link. */
        assert_int_equal(user_resolve(r->fd, "root", &ids, &e), -ENOENT);
        e = error_free(e);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_names_and_groups, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlinked_database_stays_inside, setup, teardown),
        };
        return test_run_group(tests, NULL, NULL);
}
