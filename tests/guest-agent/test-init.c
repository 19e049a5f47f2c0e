/* test-init.c: the PID 1 settings parsed from the kernel command line. The
 * stages themselves run only inside a guest (e2e tests). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <errno.h>
#include <string.h>

#include "guest-agent/init.h"

static void test_defaults(void **state) {
        InitConfig c;
        assert_int_equal(init_config_parse("console=ttyS0 panic=-1 quiet", &c, NULL), 0);
        assert_string_equal(c.port_name, INIT_DEFAULT_PORT);
        assert_string_equal(c.root_serial, INIT_DEFAULT_ROOT_SERIAL);
        assert_string_equal(c.fstype, "ext4");
        assert_string_equal(c.hostname, "container");
        assert_int_equal(c.vsock_port, INIT_DEFAULT_VSOCK_PORT);
        assert_false(c.root_ro);
        assert_int_equal(c.wait_ms, 10000);
        assert_int_equal(init_config_parse(NULL, &c, NULL), 0);
}

static void test_settings(void **state) {
        InitConfig c;
        assert_int_equal(init_config_parse("console=ttyS0 pl.port=org.x.1 pl.root=disk7 pl.hostname=web-1\n"
                                           "pl.dns=10.0.0.2,10.0.0.3 pl.vsock=0 pl.ro=1 pl.debug=1 pl.wait=2500",
                                           &c, NULL), 0);
        assert_string_equal(c.port_name, "org.x.1");
        assert_string_equal(c.root_serial, "disk7");
        assert_string_equal(c.hostname, "web-1");
        assert_string_equal(c.dns, "10.0.0.2,10.0.0.3");
        assert_int_equal(c.vsock_port, 0);
        assert_true(c.root_ro);
        assert_true(c.debug);
        assert_int_equal(c.wait_ms, 2500);
}

static void test_bad_settings(void **state) {
        static const char *const bad[] = {
                "pl.unknown=1", "pl.root", "pl.vsock=abc", "pl.ro=2", "pl.wait=-1",
                "pl.root=a-serial-longer-than-twenty-chars", "pl.vsock=4294967295",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                InitConfig c;
                Error *e = NULL;
                assert_int_equal(init_config_parse(bad[i], &c, &e), -EINVAL);
                assert_non_null(strstr(e->message, "kernel command line"));
                error_free(e);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_settings),
                cmocka_unit_test(test_bad_settings),
        };
        return test_run_group(tests, NULL, NULL);
}
