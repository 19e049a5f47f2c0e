/* test-files.h: temporary directories and small file helpers for tests.
 *
 * Every helper that can fail inside a test case fails the case through
 * cmocka (assert_*), unless it says it returns an error instead. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* ---- temporary directories ---------------------------------------------- */

/* Makes a fresh directory $TMPDIR/pl-<name>.XXXXXX (/tmp without TMPDIR) and
 * writes its path into buf. Returns 0, or a negative errno after printing why
 * (so a setup can return -1). */
int test_tmpdir_make(char *buf, size_t size, const char *name);

/* Removes path and everything below it without following symlinks; first
 * makes every directory below it writable and searchable, so a test may leave
 * mode 0000 directories behind. With PL_KEEP_TEST_DIRS set, keeps the tree and
 * prints where it is. Does nothing when path is NULL or "", and clears a
 * non-NULL path[0] afterwards, so calling it twice is harmless. Returns 0 or
 * a negative errno. */
int test_tmpdir_remove(char *path);

/* cmocka setup/teardown pair for a case that needs only a temporary
 * directory: *state is its path (a char *), named after the program. */
int test_tmpdir_setup(void **state);
int test_tmpdir_teardown(void **state);

/* ---- files -------------------------------------------------------------- */

/* asprintf() that fails the test instead of returning NULL. */
char *test_pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A formatted path for use in place (nothing to free): it stays valid until
 * eight more were formatted. Fails the test when it does not fit PATH_MAX. */
const char *test_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes text to path (created 0644 or truncated). */
void test_write_file(const char *path, const char *text);
/* Same, creating missing parent directories (0755) first. */
void test_write_file_p(const char *path, const char *text);
/* Writes text to dir/name, creating missing directories of name below dir. */
void test_put(const char *dir, const char *name, const char *text);

/* The whole content of a regular file, malloc'd and NUL-terminated (its length
 * in *ret_len when not NULL). A symlink is not followed: tests check what is
 * there. NULL (errno set) when it cannot be opened or is a /proc/PID file whose
 * process ended before the read (ESRCH); other read errors fail the test. */
char *test_read_file(const char *path, size_t *ret_len);

/* lstat() succeeds. */
bool test_exists(const char *path);
/* A symlink's target, malloc'd, or NULL. */
char *test_read_link(const char *path);
/* Entries in dir, "." and ".." excluded (fails the test when dir cannot be read). */
size_t test_count_entries(const char *dir);
