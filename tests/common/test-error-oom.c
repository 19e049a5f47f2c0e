/* test-error-oom.c: error_oom(), the one way an allocation failure is
 * reported: ENOMEM, "out of memory", -ENOMEM, first error wins, NULL err. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>

#include "common/base/error.h"

static void test_error_oom(void **state) {
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(error_oom(&e), -ENOMEM);
        assert_non_null(e);
        assert_int_equal(e->code, ENOMEM);
        assert_string_equal(error_text(e), "out of memory");
        assert_int_equal(error_oom(NULL), -ENOMEM);

        _cleanup_error_ Error *first = NULL;
        assert_int_equal(error_set(&first, ENOENT, "earlier"), -ENOENT);
        assert_int_equal(error_oom(&first), -ENOMEM); /* its own code, the first message */
        assert_string_equal(error_text(first), "earlier");
        assert_int_equal(first->code, ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_error_oom),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
