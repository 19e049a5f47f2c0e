/* test-parse-util.c: safe_atou64/safe_atou32/safe_atoi and parse_size on
 * good input, at the limits, and on what strtoul() would let through:
 * signs on unsigned, blanks, trailing garbage, overflow. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>

#include "common/base/parse-util.h"

static void test_atou64(void **state) {
        uint64_t v = 7;
        assert_int_equal(safe_atou64("0", &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(safe_atou64("0042", &v), 0);
        assert_int_equal(v, 42);
        assert_int_equal(safe_atou64("18446744073709551615", &v), 0);
        assert_true(v == UINT64_MAX);

        v = 7;
        assert_int_equal(safe_atou64("18446744073709551616", &v), -ERANGE);
        assert_int_equal(safe_atou64("99999999999999999999999", &v), -ERANGE);
        assert_int_equal(safe_atou64("-1", &v), -EINVAL); /* strtoull: UINT64_MAX */
        assert_int_equal(safe_atou64("+1", &v), -EINVAL);
        assert_int_equal(safe_atou64(" 1", &v), -EINVAL);
        assert_int_equal(safe_atou64("1 ", &v), -EINVAL);
        assert_int_equal(safe_atou64("12abc", &v), -EINVAL);
        assert_int_equal(safe_atou64("0x10", &v), -EINVAL);
        assert_int_equal(safe_atou64("", &v), -EINVAL);
        assert_int_equal(safe_atou64(NULL, &v), -EINVAL);
        assert_int_equal(v, 7); /* untouched on failure */
}

static void test_atou32(void **state) {
        uint32_t v = 7;
        assert_int_equal(safe_atou32("4294967295", &v), 0);
        assert_true(v == UINT32_MAX);
        assert_int_equal(safe_atou32("5000", &v), 0);
        assert_int_equal(v, 5000);
        v = 7;
        assert_int_equal(safe_atou32("4294967296", &v), -ERANGE);
        assert_int_equal(safe_atou32("-4294967295", &v), -EINVAL); /* strtoul: 1 */
        assert_int_equal(safe_atou32("1:2", &v), -EINVAL);
        assert_int_equal(safe_atou32("1.5", &v), -EINVAL);
        assert_int_equal(v, 7);
}

static void test_atoi(void **state) {
        int v = 7;
        assert_int_equal(safe_atoi("-2147483648", &v), 0);
        assert_int_equal(v, INT_MIN);
        assert_int_equal(safe_atoi("2147483647", &v), 0);
        assert_int_equal(v, INT_MAX);
        assert_int_equal(safe_atoi("-0", &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(safe_atoi("-15", &v), 0);
        assert_int_equal(v, -15);
        v = 7;
        assert_int_equal(safe_atoi("2147483648", &v), -ERANGE);
        assert_int_equal(safe_atoi("-2147483649", &v), -ERANGE);
        assert_int_equal(safe_atoi("-", &v), -EINVAL);
        assert_int_equal(safe_atoi("--1", &v), -EINVAL);
        assert_int_equal(safe_atoi("+1", &v), -EINVAL);
        assert_int_equal(safe_atoi("10s", &v), -EINVAL);
        assert_int_equal(safe_atoi("", &v), -EINVAL);
        assert_int_equal(safe_atoi(NULL, &v), -EINVAL);
        assert_int_equal(v, 7);
}

static void test_parse_size(void **state) {
        uint64_t v = 7;
        assert_int_equal(parse_size("512", &v), 0);
        assert_int_equal(v, 512);
        assert_int_equal(parse_size("4K", &v), 0);
        assert_int_equal(v, 4096);
        assert_int_equal(parse_size("64M", &v), 0);
        assert_int_equal(v, 64ull << 20);
        assert_int_equal(parse_size("2g", &v), 0);
        assert_int_equal(v, 2ull << 30);
        assert_int_equal(parse_size("3t", &v), 0);
        assert_int_equal(v, 3ull << 40);
        assert_int_equal(parse_size("0M", &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(parse_size("16777215T", &v), 0); /* the largest T that fits */
        assert_true(v == 16777215ull << 40);

        v = 7;
        assert_int_equal(parse_size("16777216T", &v), -ERANGE);
        assert_int_equal(parse_size("18446744073709551616", &v), -ERANGE);
        assert_int_equal(parse_size("-1M", &v), -EINVAL);
        assert_int_equal(parse_size("M", &v), -EINVAL);
        assert_int_equal(parse_size("1MB", &v), -EINVAL);
        assert_int_equal(parse_size("1KM", &v), -EINVAL);
        assert_int_equal(parse_size("1X", &v), -EINVAL);
        assert_int_equal(parse_size("1 M", &v), -EINVAL);
        assert_int_equal(parse_size("1.5G", &v), -EINVAL);
        assert_int_equal(parse_size("", &v), -EINVAL);
        assert_int_equal(parse_size(NULL, &v), -EINVAL);
        assert_int_equal(v, 7);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_atou64),
                cmocka_unit_test(test_atou32),
                cmocka_unit_test(test_atoi),
                cmocka_unit_test(test_parse_size),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
