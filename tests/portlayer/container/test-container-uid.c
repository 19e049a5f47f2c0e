/* test-container-uid.c: the uid pool container VMs' QEMU run under
 * (portlayer/container/container-uid.h): ranges and their collision check
 * against passwd/group files, the lowest free uid, exhaustion, reuse only
 * after a release, claims that survive a reopen (a daemon restart), owners
 * that cannot take or give back each other's uid, a release refused while a
 * process still runs as the uid, a claim handed from a pool guest to a
 * container, and many threads claiming at once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container-uid.h"

#define FIRST 300000u

static UidPool *open_pool(const char *dir, uint32_t count) {
        char *claims = test_pathf("%s/uids", dir), *passwd = test_pathf("%s/passwd", dir),
             *group = test_pathf("%s/group", dir);
        UidPool *p = NULL;
        Error *e = NULL;
        int r = uid_pool_open(claims, FIRST, count, passwd, group, &p, &e);
        if (r < 0)
                fail_msg("uid_pool_open: %s", error_text(e));
        free(claims);
        free(passwd);
        free(group);
        return p;
}

static uint32_t claim(UidPool *p, const char *owner) {
        uint32_t uid = 0;
        Error *e = NULL;
        if (uid_pool_claim(p, owner, &uid, &e) < 0)
                fail_msg("claim for %s: %s", owner, error_text(e));
        return uid;
}

static void test_range_parse(void **state) {
        uint32_t first, count;
        assert_int_equal(uid_range_parse("200000-265535", &first, &count), 0);
        assert_int_equal(first, 200000);
        assert_int_equal(count, 65536);
        assert_int_equal(uid_range_parse("70000-70000", &first, &count), 0);
        assert_int_equal(count, 1);
        const char *bad[] = {"", "200000", "-5", "200000-", "0-1000", "1000-2000", "300000-200000",
                             "200000-4294967295", "2x-3", "200000 - 300000", "65535-70000", NULL};
        for (size_t i = 0; bad[i]; i++)
                if (uid_range_parse(bad[i], &first, &count) != -EINVAL)
                        fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(uid_range_parse(NULL, &first, &count), -EINVAL);
}

static void test_range_collides_with_accounts(void **state) {
        const char *dir = *state;
        char *passwd = test_pathf("%s/passwd", dir), *group = test_pathf("%s/group", dir);
        test_write_file(passwd, "root:x:0:0:root:/root:/bin/bash\nbad line\nu:x:300005:100::/:/bin/sh\n");
        test_write_file(group, "root:x:0:\ng:x:300010:\n");
        Error *e = NULL;
        assert_int_equal(uid_range_check(FIRST, 5, passwd, group, &e), 0);
        assert_int_equal(uid_range_check(FIRST, 6, passwd, group, &e), -EEXIST);
        assert_non_null(strstr(error_text(e), "user 'u'"));
        e = error_free(e);
        assert_int_equal(uid_range_check(300006, 100, passwd, group, &e), -EEXIST);
        assert_non_null(strstr(error_text(e), "group 'g'"));
        e = error_free(e);
        /* the pool refuses to open on such a range, and creates nothing */
        char *claims = test_pathf("%s/uids", dir);
        UidPool *p = NULL;
        assert_int_equal(uid_pool_open(claims, FIRST, 100, passwd, group, &p, &e), -EEXIST);
        assert_null(p);
        assert_int_equal(access(claims, F_OK), -1);
        e = error_free(e);
        /* the real files: the default range is free on this host */
        assert_int_equal(uid_range_parse(UID_RANGE_DEFAULT, &(uint32_t){0}, &(uint32_t){0}), 0);
        assert_int_equal(uid_range_check(200000, 65536, NULL, NULL, &e), 0);
        free(passwd);
        free(group);
        free(claims);
}

static void test_exhaustion_and_reuse_after_release(void **state) {
        const char *dir = *state;
        UidPool *p = open_pool(dir, 3);
        assert_int_equal(claim(p, "a"), FIRST);
        assert_int_equal(claim(p, "b"), FIRST + 1);
        assert_int_equal(claim(p, "c"), FIRST + 2);
        uint32_t uid = 0;
        Error *e = NULL;
        assert_int_equal(uid_pool_claim(p, "d", &uid, &e), -ENOSPC);
        e = error_free(e);
        /* another owner can neither give b's uid back nor take it */
        assert_int_equal(uid_pool_release(p, FIRST + 1, "a", &e), -EPERM);
        e = error_free(e);
        assert_int_equal(uid_pool_reclaim(p, FIRST + 1, "d", &e), -EBUSY);
        e = error_free(e);
        assert_int_equal(uid_pool_claim(p, "d", &uid, &e), -ENOSPC);
        e = error_free(e);
        /* after b's release its uid, and only it, is free again */
        assert_int_equal(uid_pool_release(p, FIRST + 1, "b", &e), 0);
        assert_int_equal(claim(p, "d"), FIRST + 1);
        assert_int_equal(uid_pool_claim(p, "e", &uid, &e), -ENOSPC);
        e = error_free(e);
        /* releasing what is not claimed is fine; bad owners are refused */
        assert_int_equal(uid_pool_release(p, FIRST + 1, "d", &e), 0);
        assert_int_equal(uid_pool_release(p, FIRST + 1, "d", &e), 0);
        assert_int_equal(uid_pool_claim(p, "../x", &uid, &e), -EINVAL);
        e = error_free(e);
        assert_int_equal(uid_pool_claim(p, "", &uid, &e), -EINVAL);
        e = error_free(e);
        uid_pool_free(p);
}

/* A warm-pool guest's claim passes to the container taking it: only its
 * holder can hand it over, the uid stays claimed throughout, and from then
 * on the container alone releases it. */
static void test_transfer(void **state) {
        const char *dir = *state;
        UidPool *p = open_pool(dir, 3);
        assert_int_equal(claim(p, "plp-0000000000000001"), FIRST);
        assert_int_equal(claim(p, "c1"), FIRST + 1);
        Error *e = NULL;
        assert_int_equal(uid_pool_transfer(p, FIRST, "c1", "c2", &e), -EPERM);
        e = error_free(e);
        assert_int_equal(uid_pool_transfer(p, FIRST + 2, "x", "c2", &e), -ENOENT);
        e = error_free(e);
        assert_int_equal(uid_pool_transfer(p, FIRST, "plp-0000000000000001", "../c", &e), -EINVAL);
        e = error_free(e);
        assert_int_equal(uid_pool_transfer(p, FIRST, "plp-0000000000000001", "c2", &e), 0);
        assert_int_equal(uid_pool_release(p, FIRST, "plp-0000000000000001", &e), -EPERM);
        e = error_free(e);
        UidClaim *list = NULL;
        size_t n = 0;
        assert_int_equal(uid_pool_list(p, &list, &n, &e), 0);
        assert_int_equal(n, 2); /* no temporary file left as a claim */
        for (size_t i = 0; i < n; i++)
                assert_string_equal(list[i].owner, list[i].uid == FIRST ? "c2" : "c1");
        free(list);
        assert_int_equal(claim(p, "c3"), FIRST + 2);
        assert_int_equal(uid_pool_release(p, FIRST, "c2", &e), 0);
        assert_int_equal(claim(p, "c4"), FIRST);
        uid_pool_free(p);
}

static void test_claims_survive_reopen(void **state) {
        const char *dir = *state;
        UidPool *p = open_pool(dir, 10);
        assert_int_equal(claim(p, "a"), FIRST);
        assert_int_equal(claim(p, "b"), FIRST + 1);
        uid_pool_free(p); /* as a kill -9 would: nothing released */

        p = open_pool(dir, 10);
        assert_int_equal(claim(p, "c"), FIRST + 2);
        UidClaim *list = NULL;
        size_t n = 0;
        Error *e = NULL;
        assert_int_equal(uid_pool_list(p, &list, &n, &e), 0);
        assert_int_equal(n, 3);
        int seen = 0;
        for (size_t i = 0; i < n; i++) {
                const char *want = list[i].uid == FIRST ? "a" : list[i].uid == FIRST + 1 ? "b" : "c";
                assert_string_equal(list[i].owner, want);
                seen |= 1 << (list[i].uid - FIRST);
        }
        assert_int_equal(seen, 7);
        free(list);
        /* a recorded uid is claimed again by its owner (a no-op), or anew */
        assert_int_equal(uid_pool_reclaim(p, FIRST, "a", &e), 0);
        assert_int_equal(uid_pool_reclaim(p, FIRST + 5, "f", &e), 0);
        assert_int_equal(uid_pool_reclaim(p, FIRST + 10, "g", &e), -ERANGE);
        e = error_free(e);
        assert_int_equal(claim(p, "h"), FIRST + 3);
        /* the claims are root's alone */
        struct stat st;
        char *path = test_pathf("%s/uids/%u", dir, FIRST);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        free(path);
        path = test_pathf("%s/uids", dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        free(path);
        uid_pool_free(p);
}

/* A child process running as uid (until it is killed), once it does. */
static pid_t run_as(uint32_t uid) {
        int ready[2];
        assert_int_equal(pipe(ready), 0);
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                if (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
                        _exit(1);
                (void) write(ready[1], "x", 1);
                pause();
                _exit(0);
        }
        close(ready[1]);
        char c;
        assert_int_equal(read(ready[0], &c, 1), 1);
        close(ready[0]);
        return child;
}

static void test_release_waits_for_processes(void **state) {
        const char *dir = *state;
        if (geteuid() != 0)
                test_skip_or_fail("root (a process under another uid)");
        UidPool *p = open_pool(dir, 2);
        uint32_t uid = claim(p, "a");
        pid_t child = run_as(uid);
        assert_int_equal(uid_in_use(NULL, uid), 1);
        Error *e = NULL;
        assert_int_equal(uid_pool_release(p, uid, "a", &e), -EBUSY);
        e = error_free(e);
        uint32_t other = 0;
        assert_int_equal(uid_pool_claim(p, "b", &other, &e), 0);
        assert_int_not_equal(other, uid);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        assert_int_equal(uid_in_use(NULL, uid), 0);
        assert_int_equal(uid_pool_release(p, uid, "a", &e), 0);
        assert_int_equal(claim(p, "c"), uid);
        uid_pool_free(p);
}

/* A uid some process already runs as without a claim (another daemon given
 * the same range) is not handed out; once that process is gone it is. */
static void test_claim_skips_a_uid_in_use(void **state) {
        const char *dir = *state;
        if (geteuid() != 0)
                test_skip_or_fail("root (a process under another uid)");
        UidPool *p = open_pool(dir, 3);
        pid_t child = run_as(FIRST);
        assert_int_equal(claim(p, "a"), FIRST + 1);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        assert_int_equal(claim(p, "b"), FIRST);
        uid_pool_free(p);
}

typedef struct Racer {
        UidPool *pool;
        char owner[16];
        uint32_t got[16];
        size_t n_got, n_full;
} Racer;

static void *racer_main(void *arg) {
        Racer *r = arg;
        for (int i = 0; i < 16; i++) {
                uint32_t uid;
                Error *e = NULL;
                if (uid_pool_claim(r->pool, r->owner, &uid, &e) == 0)
                        r->got[r->n_got++] = uid;
                else if (e->code == ENOSPC)
                        r->n_full++;
                error_free(e);
        }
        return NULL;
}

static void test_concurrent_claims(void **state) {
        const char *dir = *state;
        /* two pools on one directory: two daemons, or threads, racing */
        UidPool *p[2] = {open_pool(dir, 100), open_pool(dir, 100)};
        Racer racers[8] = {0};
        pthread_t t[8];
        for (int i = 0; i < 8; i++) {
                racers[i].pool = p[i % 2];
                snprintf(racers[i].owner, sizeof racers[i].owner, "r%d", i);
                assert_int_equal(pthread_create(&t[i], NULL, racer_main, &racers[i]), 0);
        }
        bool seen[100] = {0};
        size_t got = 0, full = 0;
        for (int i = 0; i < 8; i++) {
                pthread_join(t[i], NULL);
                for (size_t k = 0; k < racers[i].n_got; k++) {
                        uint32_t u = racers[i].got[k];
                        assert_true(u >= FIRST && u < FIRST + 100);
                        if (seen[u - FIRST])
                                fail_msg("uid %u was handed out twice", u);
                        seen[u - FIRST] = true;
                }
                got += racers[i].n_got;
                full += racers[i].n_full;
        }
        assert_int_equal(got, 100); /* 128 asked, the range holds 100 */
        assert_int_equal(full, 28);
        uid_pool_free(p[0]);
        uid_pool_free(p[1]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_range_parse),
                cmocka_unit_test_setup_teardown(test_range_collides_with_accounts, test_tmpdir_setup,
                                                test_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_exhaustion_and_reuse_after_release, test_tmpdir_setup,
                                                test_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_claims_survive_reopen, test_tmpdir_setup, test_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_claim_skips_a_uid_in_use, test_tmpdir_setup, test_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_transfer, test_tmpdir_setup, test_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_release_waits_for_processes, test_tmpdir_setup,
                                                test_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_claims, test_tmpdir_setup, test_tmpdir_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
