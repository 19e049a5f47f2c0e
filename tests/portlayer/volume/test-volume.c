/* test-volume.c: named volumes (portlayer/volume/volume.h) in a temporary
 * state directory: create, inspect, list, remove; the disk is a clean ext4
 * (e2fsck) whose root is 0:0 0755 and which is sparse; users (acquire,
 * release, in-use refusal naming the container, prune); everything read back
 * by a second store opened on the same directory; bad names and sizes
 * changing nothing; a create killed half-way and a remove killed half-way
 * finished at open. */
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
#include <sys/stat.h>
#include <unistd.h>

#include "common/json/json-util.h"
#include "lib/ext4-read.h"
#include "portlayer/volume/volume.h"

static VolumeStore *open_store(const char *dir) {
        VolumeStore *vs = NULL;
        _cleanup_error_ Error *e = NULL;
        int r = volume_store_open(dir, &vs, &e);
        if (r < 0)
                fail_msg("volume_store_open: %s", error_text(e));
        return vs;
}

static json_t *inspect(VolumeStore *vs, const char *name) {
        json_t *j = NULL;
        _cleanup_error_ Error *e = NULL;
        if (volume_inspect(vs, name, &j, &e) < 0)
                fail_msg("inspect %s: %s", name, error_text(e));
        return j;
}

static void test_create_inspect_list_remove(void **state) {
        const char *dir = *state;
        _cleanup_(volume_store_freep) VolumeStore *vs = open_store(dir);
        _cleanup_error_ Error *e = NULL;
        _cleanup_json_ json_t *made = NULL;
        assert_int_equal(volume_create(vs, "data", 0, &made, &e), 0);
        assert_string_equal(json_string_value(json_object_get(made, "name")), "data");
        assert_int_equal(json_integer_value(json_object_get(made, "size")), (json_int_t) VOLUME_SIZE_DEFAULT);
        assert_int_equal(json_array_size(json_object_get(made, "users")), 0);
        const char *when = json_string_value(json_object_get(made, "created_at"));
        assert_non_null(when);
        assert_true(strlen(when) >= 20 && when[4] == '-' && when[10] == 'T');
        _cleanup_free_ char *disk = test_pathf("%s/volumes/data/disk.img", dir);
        assert_string_equal(json_string_value(json_object_get(made, "path")), disk);

        /* A clean ext4 whose root a container's root user owns, 0755. */
        ext4_img_assert_fsck(disk);
        Ext4Img *img = NULL;
        assert_int_equal(ext4_img_open(&img, disk), 0);
        Ext4Stat st;
        assert_int_equal(ext4_img_stat(img, "/", &st), 0);
        assert_int_equal(st.mode, S_IFDIR | 0755);
        assert_int_equal(st.uid, 0);
        assert_int_equal(st.gid, 0);
        ext4_img_close(img);
        /* Sparse: 1 GiB apparent, a few MiB of metadata on disk. */
        struct stat sb;
        assert_int_equal(stat(disk, &sb), 0);
        assert_int_equal(sb.st_size, (off_t) VOLUME_SIZE_DEFAULT);
        assert_true((uint64_t) sb.st_blocks * 512 < (64ull << 20));

        assert_int_equal(volume_create(vs, "logs.2", 64ull << 20, NULL, &e), 0);
        assert_int_equal(volume_create(vs, "data", 0, NULL, &e), -EEXIST);
        e = error_free(e);

        _cleanup_json_ json_t *list = NULL;
        assert_int_equal(volume_list(vs, &list, &e), 0);
        assert_int_equal(json_array_size(list), 2);
        assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")), "data");
        assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "name")), "logs.2");
        assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 1), "size")), 64 << 20);

        assert_int_equal(volume_remove(vs, "data", &e), 0);
        assert_false(test_exists(disk));
        assert_int_equal(volume_remove(vs, "data", &e), -ENOENT);
        e = error_free(e);
        json_t *j = NULL;
        assert_int_equal(volume_inspect(vs, "data", &j, &e), -ENOENT);
        e = error_free(e);
}

static void test_bad_input(void **state) {
        const char *dir = *state;
        _cleanup_(volume_store_freep) VolumeStore *vs = open_store(dir);
        static const char *const bad[] = {"", "-x", ".x", "_x", "a/b", "..", "a b", "é",
                                          "x12345678901234567890123456789012345678901234567890123456789012345"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_error_ Error *e = NULL;
                assert_int_equal(volume_create(vs, bad[i], 0, NULL, &e), -EINVAL);
                assert_non_null(strstr(error_text(e), "bad volume name"));
                assert_false(volume_name_is_valid(bad[i]));
        }
        assert_true(volume_name_is_valid("a"));
        assert_true(volume_name_is_valid("0a_b.c-d"));
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(volume_create(vs, "small", 1 << 20, NULL, &e), -EINVAL);
        assert_non_null(strstr(error_text(e), "size"));
        e = error_free(e);
        assert_int_equal(volume_create(vs, "huge", VOLUME_SIZE_MAX + 4096, NULL, &e), -EINVAL);
        e = error_free(e);
        _cleanup_free_ char *vdir = test_pathf("%s/volumes", dir);
        assert_int_equal(test_count_entries(vdir), 0);
}

static void test_users_and_busy(void **state) {
        const char *dir = *state;
        _cleanup_(volume_store_freep) VolumeStore *vs = open_store(dir);
        _cleanup_error_ Error *e = NULL;
        /* acquire creates a missing volume, as docker run -v name:/path does */
        VolumeDisk d = {0};
        assert_int_equal(volume_acquire(vs, "db", "c1c1c1c1c1c1c1c1", "web", true, &d, &e), 0);
        assert_string_equal(d.name, "db");
        assert_int_equal(strlen(d.serial), 20);
        assert_memory_equal(d.serial, VOLUME_SERIAL_PREFIX, 4);
        _cleanup_free_ char *disk = test_pathf("%s/volumes/db/disk.img", dir);
        assert_string_equal(d.path, disk);
        volume_disk_clear(&d);
        assert_int_equal(volume_acquire(vs, "nope", "c2", "x", false, NULL, &e), -ENOENT);
        e = error_free(e);
        /* idempotent, and a second user */
        assert_int_equal(volume_acquire(vs, "db", "c1c1c1c1c1c1c1c1", "web", false, NULL, &e), 0);
        assert_int_equal(volume_acquire(vs, "db", "c2c2c2c2c2c2c2c2", "worker", false, NULL, &e), 0);
        _cleanup_json_ json_t *j = inspect(vs, "db");
        assert_int_equal(json_array_size(json_object_get(j, "users")), 2);

        assert_int_equal(volume_remove(vs, "db", &e), -EBUSY);
        assert_non_null(strstr(error_text(e), "in use by container web (c1c1c1c1c1c1)"));
        e = error_free(e);
        assert_int_equal(volume_release(vs, "db", "c1c1c1c1c1c1c1c1", &e), 0);
        assert_int_equal(volume_release(vs, "db", "c1c1c1c1c1c1c1c1", &e), 0); /* not a user: fine */
        assert_int_equal(volume_remove(vs, "db", &e), -EBUSY);
        assert_non_null(strstr(error_text(e), "worker"));
        e = error_free(e);
        assert_true(test_exists(disk));
        assert_int_equal(volume_release(vs, "db", "c2c2c2c2c2c2c2c2", &e), 0);
        assert_int_equal(volume_remove(vs, "db", &e), 0);
        assert_int_equal(volume_release(vs, "db", "c2c2c2c2c2c2c2c2", &e), 0); /* no volume: fine */
}

static bool keep_only_c1(void *arg, const char *volume, const char *container_id) {
        (*(int *) arg)++;
        return strcmp(container_id, "c1") == 0;
}

static void test_persistence_and_prune(void **state) {
        const char *dir = *state;
        char serial[32];
        {
                _cleanup_(volume_store_freep) VolumeStore *vs = open_store(dir);
                _cleanup_error_ Error *e = NULL;
                VolumeDisk d = {0};
                assert_int_equal(volume_create(vs, "keep", 40ull << 20, NULL, &e), 0);
                assert_int_equal(volume_acquire(vs, "keep", "c1", "one", false, &d, &e), 0);
                assert_int_equal(volume_acquire(vs, "keep", "c9", "gone", false, NULL, &e), 0);
                snprintf(serial, sizeof serial, "%s", d.serial);
                volume_disk_clear(&d);
        }
        _cleanup_(volume_store_freep) VolumeStore *vs = open_store(dir);
        _cleanup_json_ json_t *j = inspect(vs, "keep");
        assert_int_equal(json_integer_value(json_object_get(j, "size")), 40 << 20);
        assert_int_equal(json_array_size(json_object_get(j, "users")), 2);
        VolumeDisk d = {0};
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(volume_get_disk(vs, "keep", &d, &e), 0);
        assert_string_equal(d.serial, serial); /* the guest finds it by this, every boot */
        volume_disk_clear(&d);

        int calls = 0;
        assert_int_equal(volume_prune_users(vs, keep_only_c1, &calls, &e), 0);
        assert_int_equal(calls, 2);
        json_decref(j);
        j = inspect(vs, "keep");
        json_t *users = json_object_get(j, "users");
        assert_int_equal(json_array_size(users), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(users, 0), "name")), "one");
}

static void test_crash_leftovers(void **state) {
        const char *dir = *state;
        {
                _cleanup_(volume_store_freep) VolumeStore *vs = open_store(dir);
                _cleanup_error_ Error *e = NULL;
                assert_int_equal(volume_create(vs, "whole", 0, NULL, &e), 0);
        }
        /* A create killed before its record (disk built, or half-built), a
         * disk left beside a whole volume, a remove killed after its rename. */
        _cleanup_free_ char *half = test_pathf("%s/volumes/half", dir);
        _cleanup_free_ char *half2 = test_pathf("%s/volumes/half2", dir);
        _cleanup_free_ char *tmp = test_pathf("%s/volumes/whole/.disk.img.tmp", dir);
        _cleanup_free_ char *trash = test_pathf("%s/volumes/.trash-0123abcd-old", dir);
        test_put(dir, "volumes/half/disk.img", "x");
        test_put(dir, "volumes/half2/.disk.img.tmp", "x");
        test_write_file(tmp, "x");
        test_put(dir, "volumes/.trash-0123abcd-old/disk.img", "x");
        _cleanup_(volume_store_freep) VolumeStore *vs = open_store(dir);
        assert_false(test_exists(half));
        assert_false(test_exists(half2));
        assert_false(test_exists(tmp));
        assert_false(test_exists(trash));
        _cleanup_json_ json_t *list = NULL;
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(volume_list(vs, &list, &e), 0);
        assert_int_equal(json_array_size(list), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")), "whole");
}

static void test_bad_record(void **state) {
        const char *dir = *state;
        _cleanup_(volume_store_freep) VolumeStore *vs = open_store(dir);
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(volume_create(vs, "ok", 0, NULL, &e), 0);
        assert_int_equal(volume_create(vs, "edited", 0, NULL, &e), 0);
        _cleanup_free_ char *rec = test_pathf("%s/volumes/edited/volume.json", dir);
        test_write_file(rec, "{\"name\": \"other\", \"id\": \"x\", \"size\": 1, \"created_ns\": 0, \"users\": []}");
        json_t *j = NULL;
        assert_int_equal(volume_inspect(vs, "edited", &j, &e), -EBADMSG);
        e = error_free(e);
        _cleanup_json_ json_t *list = NULL;
        assert_int_equal(volume_list(vs, &list, &e), 0);
        assert_int_equal(json_array_size(list), 1); /* logged and left out */
        assert_int_equal(volume_remove(vs, "edited", &e), -EBADMSG); /* never deleted blindly */
        assert_true(test_exists(rec));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_create_inspect_list_remove, test_tmpdir_setup, test_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_bad_input, test_tmpdir_setup, test_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_users_and_busy, test_tmpdir_setup, test_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_persistence_and_prune, test_tmpdir_setup, test_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_crash_leftovers, test_tmpdir_setup, test_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_bad_record, test_tmpdir_setup, test_tmpdir_teardown),
        };
        return test_run_group(tests, NULL, NULL);
}
