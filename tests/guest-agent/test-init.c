/* test-init.c: the PID 1 settings parsed from the kernel command line, and
 * who may connect to the agent over vsock (decided from the peer's address
 * alone: no vsock socket is opened here). The stages themselves run only
 * inside a guest (e2e tests). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <errno.h>
#include <linux/vm_sockets.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "guest-agent/agent.h"
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
        assert_false(c.vsock_local);
        assert_int_equal(c.wait_ms, 10000);
        assert_int_equal(init_config_parse(NULL, &c, NULL), 0);
}

static void test_settings(void **state) {
        InitConfig c;
        assert_int_equal(init_config_parse("console=ttyS0 pl.port=org.x.1 pl.root=disk7 pl.hostname=web-1\n"
                                           "pl.dns=10.0.0.2,10.0.0.3 pl.vsock=0 pl.ro=1 pl.debug=1 pl.wait=2500 "
                                           "pl.vsock_local=1",
                                           &c, NULL), 0);
        assert_string_equal(c.port_name, "org.x.1");
        assert_string_equal(c.root_serial, "disk7");
        assert_string_equal(c.hostname, "web-1");
        assert_string_equal(c.dns, "10.0.0.2,10.0.0.3");
        assert_int_equal(c.vsock_port, 0);
        assert_true(c.root_ro);
        assert_true(c.debug);
        assert_true(c.vsock_local);
        assert_int_equal(c.wait_ms, 2500);
}

static void test_bad_settings(void **state) {
        static const char *const bad[] = {
                "pl.unknown=1", "pl.root", "pl.vsock=abc", "pl.ro=2", "pl.wait=-1",
                "pl.root=a-serial-longer-than-twenty-chars", "pl.vsock=4294967295", "pl.vsock_local=yes",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                InitConfig c;
                Error *e = NULL;
                assert_int_equal(init_config_parse(bad[i], &c, &e), -EINVAL);
                assert_non_null(strstr(e->message, "kernel command line"));
                error_free(e);
        }
}

static struct sockaddr_vm vsock_peer(unsigned cid) {
        return (struct sockaddr_vm){.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = 49152};
}

static bool allowed(const struct sockaddr_vm *sa, bool allow_local) {
        return transport_vsock_peer_allowed((const struct sockaddr *) sa, sizeof *sa, allow_local);
}

/* Only the host (CID 2) may connect, unless local connections are allowed:
 * the container's own processes (loopback CID 1, or the guest's own CID)
 * must not reach the agent or use up its sessions. */
static void test_vsock_peer_allowed(void **state) {
        struct sockaddr_vm host = vsock_peer(VMADDR_CID_HOST), local = vsock_peer(VMADDR_CID_LOCAL),
                           self = vsock_peer(3), hypervisor = vsock_peer(VMADDR_CID_HYPERVISOR),
                           any = vsock_peer(VMADDR_CID_ANY);
        assert_true(allowed(&host, false));
        assert_false(allowed(&local, false));
        assert_false(allowed(&self, false));
        assert_false(allowed(&hypervisor, false));
        assert_false(allowed(&any, false));

        assert_true(allowed(&host, true));
        assert_true(allowed(&local, true));
        assert_true(allowed(&self, true));

        /* Not a vsock address at all, or a short one: never. */
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        assert_false(transport_vsock_peer_allowed((const struct sockaddr *) &un, sizeof un, true));
        assert_false(transport_vsock_peer_allowed((const struct sockaddr *) &host, sizeof host - 1, false));
        assert_false(transport_vsock_peer_allowed(NULL, 0, true));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_settings),
                cmocka_unit_test(test_bad_settings),
                cmocka_unit_test(test_vsock_peer_allowed),
        };
        return test_run_group(tests, NULL, NULL);
}
