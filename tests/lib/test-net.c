/* test-net.c: see test-net.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/test-net.h"

#include <stdio.h>
#include <stdlib.h>

#include "lib/test-sh.h"
#include "lib/test-skip.h"

void test_netns_require(void) {
        if (!getenv("PL_TEST_NETNS"))
                test_program_skip_or_fail("a network namespace of its own (run through tests/lib/in-netns.sh)");
        const char *missing = test_missing_tool("ip");
        if (missing)
                test_program_skip_or_fail(missing);
}

const char *test_ip(const char *fmt, ...) {
        static char *out;
        free(out);
        out = NULL;
        char *args = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&args, fmt, ap);
        va_end(ap);
        if (n < 0)
                fail_msg("test_ip: out of memory");
        int r = test_sh_out(&out, NULL, "ip %s", args);
        if (r != 0)
                fail_msg("'ip %s' exited %d", args, r);
        free(args);
        return out;
}
