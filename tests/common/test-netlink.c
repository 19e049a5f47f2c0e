/* test-netlink.c: plnetlink against the real kernel, inside a network
 * namespace of the test's own (pl_test NETNS; the program refuses to run
 * outside one). veth pairs made with iproute2 stand in for NICs (the test
 * kernel may lack the dummy driver); what the
 * library does is checked with `ip`, what it reports with its own calls:
 * links by name and MAC, up/MTU, bridges and masters, addresses, the default
 * route, prefix listing, and the kernel's errors (-ENODEV, -EEXIST,
 * -ENETUNREACH, -EOPNOTSUPP) next to our own (-EINVAL for bad input). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"
#include "lib/test-net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/netlink/netlink.h"

static const uint8_t MAC0[6] = {0x0a, 0x70, 0x6c, 0x00, 0x00, 0x01};

static void teardown_links(void) {
        test_sh("ip link del pltd0 2>/dev/null; ip link del pltd1 2>/dev/null; ip link del pltbr0 2>/dev/null");
}

static int setup(void **state) {
        teardown_links();
        if (test_sh("ip link add pltd0 address 0a:70:6c:00:00:01 type veth peer name pltp0 && "
                    "ip link add pltd1 type veth peer name pltp1 && ip link set pltp0 up && ip link set pltp1 up") != 0)
                return -1;
        Netlink *nl = NULL;
        if (netlink_open(&nl, NULL) < 0)
                return -1;
        *state = nl;
        return 0;
}

static int teardown(void **state) {
        netlink_close(*state);
        teardown_links();
        return 0;
}

static void test_parse(void **state) {
        uint8_t mac[6] = {0};
        assert_int_equal(netlink_parse_mac("0a:70:6C:00:00:01", mac), 0);
        assert_memory_equal(mac, MAC0, 6);
        char text[18];
        assert_string_equal(netlink_format_mac(mac, text), "0a:70:6c:00:00:01");
        const char *bad_macs[] = {"", "0a:70:6c:00:00", "0a:70:6c:00:00:01:", "0a-70-6c-00-00-01", "0a:70:6c:00:00:0g",
                                  " a:70:6c:00:00:01", "0a:70:6c:00:00:1"};
        memset(mac, 0x55, 6);
        for (size_t i = 0; i < ELEMENTSOF(bad_macs); i++)
                assert_int_equal(netlink_parse_mac(bad_macs[i], mac), -EINVAL);
        assert_int_equal(netlink_parse_mac(NULL, mac), -EINVAL);
        assert_int_equal(mac[0], 0x55); /* untouched */

        struct in_addr a;
        unsigned prefix = 99;
        assert_int_equal(netlink_parse_cidr("10.88.0.5/16", &a, &prefix), 0);
        assert_string_equal(inet_ntoa(a), "10.88.0.5");
        assert_int_equal(prefix, 16);
        assert_int_equal(netlink_parse_cidr("0.0.0.0/0", &a, &prefix), 0);
        assert_int_equal(prefix, 0);
        assert_int_equal(netlink_parse_cidr("1.2.3.4/32", &a, &prefix), 0);
        assert_int_equal(prefix, 32);
        const char *bad_cidrs[] = {"10.88.0.5",   "10.88.0.5/",  "10.88.0.5/33", "10.88.0.5/016", "10.88.0.5/+8",
                                   "10.88.0.5/ 8", "10.88.0/16", "10.88.0.256/16", "/16", "a.b.c.d/8",
                                   "10.88.0.5/16x", "10.88.0.5/16/1", "1111111111111111.1.1.1/8"};
        prefix = 99;
        for (size_t i = 0; i < ELEMENTSOF(bad_cidrs); i++)
                assert_int_equal(netlink_parse_cidr(bad_cidrs[i], &a, &prefix), -EINVAL);
        assert_int_equal(netlink_parse_cidr(NULL, &a, &prefix), -EINVAL);
        assert_int_equal(prefix, 99);
        assert_int_equal(netlink_parse_ipv4("192.168.1.1", &a), 0);
        assert_int_equal(netlink_parse_ipv4("192.168.1", &a), -EINVAL);
        assert_int_equal(netlink_parse_ipv4("192.168.1.1/24", &a), -EINVAL);
}

static void test_link_lookup(void **state) {
        Netlink *nl = *state;
        int lo = 0, d0 = 0, found = 0;
        char name[16] = "";
        assert_int_equal(netlink_link_index(nl, "lo", &lo, NULL), 0);
        assert_int_equal(lo, 1);
        assert_int_equal(netlink_link_index(nl, "pltd0", &d0, NULL), 0);
        assert_true(d0 > 1);
        assert_int_equal(netlink_link_by_mac(nl, MAC0, &found, name, NULL), 0);
        assert_int_equal(found, d0);
        assert_string_equal(name, "pltd0");

        _cleanup_error_ Error *err = NULL;
        assert_int_equal(netlink_link_index(nl, "nosuchlink", &found, &err), -ENODEV);
        assert_non_null(strstr(error_text(err), "nosuchlink"));
        err = error_free(err);
        const uint8_t other[6] = {0x0a, 0x70, 0x6c, 0xff, 0xff, 0xfe};
        assert_int_equal(netlink_link_by_mac(nl, other, &found, name, &err), -ENODEV);
        assert_non_null(strstr(error_text(err), "0a:70:6c:ff:ff:fe"));
        assert_int_equal(netlink_link_index(nl, "", &found, NULL), -EINVAL);
        assert_int_equal(netlink_link_index(nl, "a-name-of-16-chr", &found, NULL), -EINVAL);
        assert_int_equal(netlink_link_index(nl, NULL, &found, NULL), -EINVAL);
        assert_int_equal(found, d0); /* untouched on failure */
}

static void test_link_set(void **state) {
        Netlink *nl = *state;
        int d0 = 0;
        assert_int_equal(netlink_link_index(nl, "pltd0", &d0, NULL), 0);
        assert_null(strstr(test_ip("-o link show pltd0"), ",UP"));
        assert_int_equal(netlink_link_set(nl, d0, true, 1400, NULL), 0);
        assert_non_null(strstr(test_ip("-o link show pltd0"), ",UP"));
        assert_non_null(strstr(test_ip("-o link show pltd0"), "mtu 1400 "));
        assert_int_equal(netlink_link_set(nl, d0, true, 0, NULL), 0); /* 0 leaves the MTU */
        assert_non_null(strstr(test_ip("-o link show pltd0"), "mtu 1400 "));
        assert_int_equal(netlink_link_set(nl, d0, false, 0, NULL), 0);
        assert_null(strstr(test_ip("-o link show pltd0"), ",UP"));

        _cleanup_error_ Error *err = NULL;
        assert_int_equal(netlink_link_set(nl, d0, true, 10, &err), -EINVAL); /* below the minimum MTU */
        assert_non_null(err);
        assert_non_null(strstr(test_ip("-o link show pltd0"), "mtu 1400 "));
        assert_null(strstr(test_ip("-o link show pltd0"), ",UP")); /* refused as a whole */
        assert_int_equal(netlink_link_set(nl, 99999, true, 0, NULL), -ENODEV);
        assert_int_equal(netlink_link_set(nl, 0, true, 0, NULL), -EINVAL);
}

static void test_bridge(void **state) {
        Netlink *nl = *state;
        int d0 = 0, br = 0;
        assert_int_equal(netlink_bridge_add(nl, "pltbr0", NULL), 0);
        assert_non_null(strstr(test_ip("-d -o link show pltbr0"), "bridge"));
        _cleanup_error_ Error *err = NULL;
        assert_int_equal(netlink_bridge_add(nl, "pltbr0", &err), -EEXIST);
        assert_non_null(strstr(error_text(err), "pltbr0"));
        assert_int_equal(netlink_bridge_add(nl, "pltd0", NULL), -EEXIST); /* a veth of that name */
        assert_int_equal(netlink_bridge_add(nl, "a-name-of-16-chr", NULL), -EINVAL);
        assert_int_equal(netlink_bridge_add(nl, "", NULL), -EINVAL);

        assert_int_equal(netlink_link_index(nl, "pltbr0", &br, NULL), 0);
        assert_int_equal(netlink_link_index(nl, "pltd0", &d0, NULL), 0);
        assert_int_equal(netlink_link_set_master(nl, d0, br, NULL), 0);
        assert_non_null(strstr(test_ip("-o link show pltd0"), "master pltbr0"));
        assert_int_equal(netlink_link_set_master(nl, d0, 0, NULL), 0);
        assert_null(strstr(test_ip("-o link show pltd0"), "master"));
        assert_int_equal(netlink_link_set_master(nl, d0, 99999, NULL), -EINVAL); /* the kernel's choice */

        assert_int_equal(netlink_link_del(nl, br, NULL), 0);
        assert_int_equal(netlink_link_index(nl, "pltbr0", &br, NULL), -ENODEV);
        assert_int_equal(netlink_link_del(nl, br, NULL), -ENODEV);
        assert_int_equal(netlink_link_del(nl, 1, NULL), -EOPNOTSUPP); /* lo */
}

static void test_address_and_route(void **state) {
        Netlink *nl = *state;
        int d0 = 0;
        assert_int_equal(netlink_link_index(nl, "pltd0", &d0, NULL), 0);
        assert_int_equal(netlink_link_set(nl, d0, true, 0, NULL), 0);
        assert_int_equal(netlink_addr_add(nl, d0, "10.77.0.5/24", NULL), 0);
        assert_non_null(strstr(test_ip("-o -4 addr show dev pltd0"), "inet 10.77.0.5/24 brd 10.77.0.255 "));
        assert_int_equal(netlink_addr_add(nl, d0, "10.77.0.5/24", NULL), 0); /* again: not an error */

        _cleanup_error_ Error *err = NULL;
        const char *bad[] = {"10.77.0.6", "10.77.0.6/0", "10.77.0.6/33", "10.77.0/24", ""};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(netlink_addr_add(nl, d0, bad[i], &err), -EINVAL);
                err = error_free(err);
        }
        assert_int_equal(netlink_addr_add(nl, d0, NULL, NULL), -EINVAL);
        assert_int_equal(netlink_addr_add(nl, 99999, "10.78.0.1/24", NULL), -ENODEV);
        assert_null(strstr(test_ip("-o -4 addr show dev pltd0"), "10.77.0.6"));

        assert_int_equal(netlink_route_add_default(nl, d0, "10.99.0.1", &err), -ENETUNREACH);
        err = error_free(err);
        assert_int_equal(netlink_route_add_default(nl, d0, "10.77.0.1", NULL), 0);
        assert_non_null(strstr(test_ip("-4 route show default"), "default via 10.77.0.1 dev pltd0"));
        assert_int_equal(netlink_route_add_default(nl, d0, "10.77.0.254", NULL), 0); /* replaces */
        const char *routes = test_ip("-4 route show default");
        assert_non_null(strstr(routes, "default via 10.77.0.254 dev pltd0"));
        assert_null(strstr(routes, "10.77.0.1 "));
        assert_int_equal(netlink_route_add_default(nl, d0, "10.77.0", NULL), -EINVAL);
        assert_int_equal(netlink_route_add_default(nl, d0, NULL, NULL), -EINVAL);
}

static void test_prefix_list(void **state) {
        Netlink *nl = *state;
        _cleanup_netlink_names_ char **names = NULL;
        assert_int_equal(netlink_links_with_prefix(nl, "pltd", &names, NULL), 0);
        assert_non_null(names);
        assert_string_equal(names[0], "pltd0");
        assert_string_equal(names[1], "pltd1");
        assert_null(names[2]);
        names = netlink_names_free(names);
        assert_int_equal(netlink_links_with_prefix(nl, "zzz", &names, NULL), 0);
        assert_non_null(names);
        assert_null(names[0]);
        names = netlink_names_free(names);
        assert_int_equal(netlink_links_with_prefix(nl, "", &names, NULL), 0);
        size_t n = 0;
        while (names[n])
                n++;
        assert_int_equal(n, 5); /* lo, pltd0, pltp0, pltd1, pltp1 */
}

/* Many requests on one socket: sequence numbers keep answers apart. */
static void test_many_requests(void **state) {
        Netlink *nl = *state;
        for (int i = 0; i < 200; i++) {
                int index = 0;
                _cleanup_error_ Error *err = NULL;
                int r = netlink_link_index(nl, i % 2 ? "pltd1" : "nosuch", &index, &err);
                if (r != (i % 2 ? 0 : -ENODEV))
                        fail_msg("request %d: %d %s", i, r, error_text(err));
        }
}

int main(void) {
        test_netns_require();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test_setup_teardown(test_link_lookup, setup, teardown),
                cmocka_unit_test_setup_teardown(test_link_set, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bridge, setup, teardown),
                cmocka_unit_test_setup_teardown(test_address_and_route, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prefix_list, setup, teardown),
                cmocka_unit_test_setup_teardown(test_many_requests, setup, teardown),
        };
        return test_run_group(tests, NULL, NULL);
}
