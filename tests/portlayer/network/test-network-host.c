/* test-network-host.c: plnetwork's bridge mode against the real kernel and
 * real nftables, inside a network namespace of the test's own (pl_test
 * NETNS; the program refuses to run outside one): the default bridge with
 * its gateway address and sysctls, the table ip portlayer applied and read
 * back (`nft list table ip portlayer`), a restart that replaces rules a
 * killed daemon left by exactly the current ones, a removed network's bridge
 * gone, and taps of VMs that are gone pruned while the others stay. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"
#include "lib/test-net.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/error.h"
#include "common/json/json-util.h"
#include "portlayer/network/network.h"

#define ID1 "1111111111111111111111111111111111111111111111111111111111111111"
#define ID2 "2222222222222222222222222222222222222222222222222222222222222222"

static NetworkHost *open_host(const char *dir) {
        NetworkHostConfig cfg = {
                .state_dir = dir, .default_subnet = "10.88.0.0/16", .mode = NETWORK_MODE_BRIDGE, .manage_host = true};
        NetworkHost *h = NULL;
        _cleanup_error_ Error *err = NULL;
        if (network_host_open(&cfg, &h, &err) < 0)
                fail_msg("network_host_open: %s", error_text(err));
        return h;
}

/* A command's stdout in a static buffer (it must succeed). */
static const char *sh(const char *cmd) {
        static char *out;
        free(out);
        out = NULL;
        int r = test_sh_out(&out, NULL, "%s", cmd);
        if (r != 0)
                fail_msg("'%s' exited %d", cmd, r);
        return out;
}

static void cleanup_host(void) {
        test_sh("nft delete table ip portlayer 2>/dev/null; for l in plbr0 pl0123456789ab pl111111111111 plbr-x; do "
                "ip link del $l 2>/dev/null; done; true");
}

static int setup(void **state) {
        cleanup_host();
        return test_tmpdir_setup(state);
}

static int teardown(void **state) {
        cleanup_host();
        return test_tmpdir_teardown(state);
}

static void test_bridge_and_rules(void **state) {
        const char *dir = *state;
        _cleanup_(network_host_freep) NetworkHost *h = open_host(dir);
        assert_non_null(strstr(test_ip("-4 addr show dev plbr0"), "inet 10.88.0.1/16"));
        assert_non_null(strstr(test_ip("link show dev plbr0"), ",UP"));
        assert_string_equal(sh("cat /proc/sys/net/ipv4/ip_forward"), "1\n");
        assert_string_equal(sh("cat /proc/sys/net/ipv4/conf/plbr0/route_localnet"), "1\n");
        const char *t = sh("nft list table ip portlayer");
        assert_non_null(strstr(t, "ip saddr 10.88.0.0/16 oifname != \"plbr0\" masquerade"));
        assert_null(strstr(t, "dnat"));

        NetworkLease l;
        assert_int_equal(network_lease_acquire(h, "default", ID1, &l, NULL), 0);
        NetworkPort p[] = {
                {.host_ip = "0.0.0.0", .host_port = 8080, .container_port = 80, .protocol = "tcp"},
                {.host_ip = "127.0.0.1", .host_port = 5353, .container_port = 53, .protocol = "udp"},
        };
        _cleanup_error_ Error *err = NULL;
        if (network_ports_set(h, ID1, p, 2, &err) < 0)
                fail_msg("ports: %s", error_text(err));
        t = sh("nft list table ip portlayer");
        assert_non_null(strstr(t, "tcp dport 8080 dnat to 10.88.0.2:80"));
        assert_non_null(strstr(t, "ip daddr 127.0.0.1 udp dport 5353 dnat to 10.88.0.2:53"));

        /* a daemon killed with other rules in place: a stale DNAT and a chain
         * of its own; reopening replaces the table by exactly the current one */
        network_host_free(TAKE_PTR(h));
        assert_int_equal(test_sh("nft add rule ip portlayer prerouting tcp dport 9999 dnat to 10.88.0.9:99 && "
                                 "nft add chain ip portlayer stale"),
                         0);
        assert_non_null(strstr(sh("nft list table ip portlayer"), "dport 9999"));
        h = open_host(dir);
        t = sh("nft list table ip portlayer");
        assert_null(strstr(t, "9999"));
        assert_null(strstr(t, "stale"));
        assert_non_null(strstr(t, "tcp dport 8080 dnat to 10.88.0.2:80"));
        _cleanup_free_ char *mine = NULL;
        assert_int_equal(network_rules_text(h, &mine, NULL), 0);

        /* released: its rules go */
        assert_int_equal(network_lease_release(h, ID1, NULL), 0);
        assert_null(strstr(sh("nft list table ip portlayer"), "dnat"));
}

static void test_network_bridge_lifecycle(void **state) {
        const char *dir = *state;
        _cleanup_(network_host_freep) NetworkHost *h = open_host(dir);
        _cleanup_json_ json_t *j = NULL;
        _cleanup_error_ Error *err = NULL;
        if (network_create(h, "second", "10.89.0.0/24", &j, &err) < 0)
                fail_msg("create: %s", error_text(err));
        const char *br = json_string_value(json_object_get(j, "bridge"));
        char cmd[128];
        assert_non_null(strstr(test_ip("-4 addr show dev %s", br), "inet 10.89.0.1/24"));
        assert_non_null(strstr(sh("nft list table ip portlayer"), "ip saddr 10.89.0.0/24"));
        assert_int_equal(network_remove(h, "second", NULL), 0);
        snprintf(cmd, sizeof cmd, "ip link show dev %s 2>/dev/null", br);
        assert_int_not_equal(test_sh("%s", cmd), 0);
        assert_null(strstr(sh("nft list table ip portlayer"), "10.89.0.0/24"));
}

static bool keep_id1(const char *tap, void *userdata) {
        char want[NETWORK_IFNAME_MAX + 1];
        network_tap_name(ID1, want);
        return strcmp(tap, want) == 0;
}

static void test_taps_prune(void **state) {
        const char *dir = *state;
        _cleanup_(network_host_freep) NetworkHost *h = open_host(dir);
        char tap[NETWORK_IFNAME_MAX + 1];
        network_tap_name(ID1, tap);
        assert_string_equal(tap, "pl111111111111");
        assert_int_equal(test_sh("ip tuntap add pl111111111111 mode tap && ip tuntap add pl0123456789ab mode tap"),
                         0);
        _cleanup_error_ Error *err = NULL;
        int r = network_taps_prune(h, keep_id1, NULL, &err);
        if (r < 0)
                fail_msg("prune: %s", error_text(err));
        assert_int_equal(r, 1);
        assert_int_equal(test_sh("ip link show dev pl111111111111 >/dev/null"), 0);
        assert_int_not_equal(test_sh("ip link show dev pl0123456789ab >/dev/null 2>&1"), 0);
        assert_int_equal(test_sh("ip link show dev plbr0 >/dev/null"), 0); /* not a tap of ours */
}

int main(void) {
        test_netns_require();
        const char *missing = test_missing_tool("nft");
        if (missing)
                test_program_skip_or_fail(missing);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_bridge_and_rules, setup, teardown),
                cmocka_unit_test_setup_teardown(test_network_bridge_lifecycle, setup, teardown),
                cmocka_unit_test_setup_teardown(test_taps_prune, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
