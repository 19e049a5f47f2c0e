/* test-golden.h: comparing output with golden files.
 *
 * A golden file lives in golden/ next to the test's source, found through
 * __FILE__ (CMake compiles with absolute paths), and is compared byte for
 * byte. On a difference the test fails naming the file and the first line
 * that differs, after printing "diff -u golden actual". After an intended
 * change, rerun with PL_UPDATE_GOLDEN=1: the files are rewritten instead of
 * compared, and the change shows in git diff for review. */
#pragma once

/* Compares actual with golden/<name> beside the calling source file. */
#define test_assert_golden(actual, name) test_assert_golden_at(__FILE__, __LINE__, (actual), (name))
void test_assert_golden_at(const char *file, int line, const char *actual, const char *name);
