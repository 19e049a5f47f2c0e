/* test-archive-util.c: plarchive's helpers: the cleanup attributes free
 * readers, writers and entries (ASan checks), the entry accessors fall back
 * to the UTF-8 names, and the error helpers never give 0 or NULL. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "common/archive/archive-util.h"

static void test_cleanup(void **state) {
        _cleanup_archive_read_ struct archive *r = archive_read_new();
        _cleanup_archive_write_ struct archive *w = archive_write_new();
        _cleanup_archive_entry_ struct archive_entry *e = archive_entry_new();
        _cleanup_archive_read_ struct archive *none = NULL; /* NULL is fine */
        assert_non_null(r);
        assert_non_null(w);
        assert_non_null(e);
        assert_null(none);
}

static void test_entry_accessors(void **state) {
        _cleanup_archive_entry_ struct archive_entry *e = archive_entry_new();
        assert_null(entry_pathname(e));
        assert_null(entry_hardlink(e));
        assert_null(entry_symlink(e));
        archive_entry_set_pathname(e, "a/b");
        archive_entry_set_hardlink(e, "c");
        assert_string_equal(entry_pathname(e), "a/b");
        assert_string_equal(entry_hardlink(e), "c");

        _cleanup_archive_entry_ struct archive_entry *u = archive_entry_new();
        archive_entry_update_pathname_utf8(u, "d\xc3\xa9j\xc3\xa0");
        archive_entry_update_symlink_utf8(u, "t\xc3\xa9");
        assert_non_null(entry_pathname(u));
        assert_non_null(entry_symlink(u));
}

static void test_errors(void **state) {
        _cleanup_archive_read_ struct archive *a = archive_read_new();
        assert_int_equal(archive_errno_or(a, EBADMSG), EBADMSG); /* nothing failed yet */
        assert_non_null(archive_message(a));
        assert_int_equal(archive_read_support_format_tar(a), ARCHIVE_OK);
        assert_int_not_equal(archive_read_open_filename(a, "/nonexistent/layer.tar", 4096), ARCHIVE_OK);
        assert_int_equal(archive_errno_or(a, EBADMSG), ENOENT);
        assert_non_null(strstr(archive_message(a), "layer.tar"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cleanup),
                cmocka_unit_test(test_entry_accessors),
                cmocka_unit_test(test_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
