/* test-agent-setup.c: the setup and etc requests, with the real pl-agent in
 * host mode and the real client, inside a network namespace of the test's
 * own (pl_test NETNS; the program refuses to run outside one).
 *
 * A veth pair stands in for the guest's NIC: the test sets the MAC of one
 * end, the agent finds it by that MAC and configures it, and the test checks
 * the result with `ip`: up, MTU, address, default route. Bad input is
 * refused with nothing changed (the NIC stays down without an address, no
 * mount point is created, no /etc file written). Real mounts need virtio
 * devices and are covered by tests/e2e/test-guest.c; here a disk that never
 * appears is waited for within the deadline and reported as -ENODEV. /etc
 * files are read back from the agent's root: exactly what was asked, only
 * the files whose flag was set, a symlink replaced rather than followed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"
#include "lib/test-net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "lib/agent-harness.h"

#define MAC "0a:70:6c:00:00:0a"
#define TIMEOUT_MS 10000

typedef AgentFixture Fixture;

static int setup(void **state) {
        test_sh("ip link del plta0 2>/dev/null");
        if (test_sh("ip link add plta0 address " MAC " type veth peer name pltb0 && ip link set pltb0 up") != 0)
                return -1;
        return agent_fixture_setup(state);
}

static int teardown(void **state) {
        test_sh("ip link del plta0 2>/dev/null");
        return agent_fixture_teardown(state);
}

/* The NIC as the fixture made it: down, no IPv4 address, no default route. */
static void assert_nic_untouched(void) {
        assert_null(strstr(test_ip("-o link show plta0"), ",UP"));
        assert_null(strstr(test_ip("-o -4 addr show dev plta0"), "inet "));
        assert_null(strstr(test_ip("-4 route show default"), "default"));
}

static char *root_path(Fixture *f, const char *rel) {
        char *p = NULL;
        assert_true(asprintf(&p, "%s/%s", f->h.root, rel) > 0);
        return p;
}

static char *root_read(Fixture *f, const char *rel) {
        _cleanup_free_ char *p = root_path(f, rel);
        return test_read_file(p, NULL);
}

static bool root_exists(Fixture *f, const char *rel) {
        _cleanup_free_ char *p = root_path(f, rel);
        struct stat st;
        return lstat(p, &st) == 0;
}

static void test_setup_interface(void **state) {
        Fixture *f = *state;
        assert_nic_untouched();
        const AgentInterface nic = {.mac = MAC, .address = "10.66.0.5/24", .gateway = "10.66.0.1", .mtu = 1400};
        _cleanup_error_ Error *err = NULL;
        int r = agent_client_setup(f->c, &nic, 1, NULL, 0, TIMEOUT_MS, &err);
        if (r < 0)
                fail_msg("setup: %s", error_text(err));
        const char *link = test_ip("-o link show plta0");
        assert_non_null(strstr(link, ",UP"));
        assert_non_null(strstr(link, "mtu 1400 "));
        assert_non_null(strstr(test_ip("-o -4 addr show dev plta0"), "inet 10.66.0.5/24 brd 10.66.0.255 "));
        assert_non_null(strstr(test_ip("-4 route show default"), "default via 10.66.0.1 dev plta0"));
        assert_non_null(strstr(test_ip("-o link show lo"), ",UP"));

        /* Once per boot. */
        assert_int_equal(agent_client_setup(f->c, &nic, 1, NULL, 0, TIMEOUT_MS, &err), -EALREADY);
}

/* An interface without a gateway or MTU: link up and address only. */
static void test_setup_interface_minimal(void **state) {
        Fixture *f = *state;
        const AgentInterface nic = {.mac = "0A:70:6C:00:00:0A", .address = "192.168.77.2/30"};
        assert_int_equal(agent_client_setup(f->c, &nic, 1, NULL, 0, TIMEOUT_MS, NULL), 0);
        assert_non_null(strstr(test_ip("-o link show plta0"), "mtu 1500 "));
        assert_non_null(strstr(test_ip("-o -4 addr show dev plta0"), "inet 192.168.77.2/30 "));
        assert_null(strstr(test_ip("-4 route show default"), "default"));
}

/* Every NIC is looked up before any is configured. */
static void test_setup_unknown_mac(void **state) {
        Fixture *f = *state;
        const AgentInterface nics[] = {{.mac = MAC, .address = "10.66.0.5/24", .gateway = "10.66.0.1"},
                                       {.mac = "0a:70:6c:00:00:ff", .address = "10.67.0.5/24"}};
        _cleanup_error_ Error *err = NULL;
        assert_int_equal(agent_client_setup(f->c, nics, 2, NULL, 0, TIMEOUT_MS, &err), -ENODEV);
        assert_non_null(strstr(error_text(err), "0a:70:6c:00:00:ff"));
        assert_nic_untouched();
        /* A failed setup does not count: the right one still runs. */
        assert_int_equal(agent_client_setup(f->c, nics, 1, NULL, 0, TIMEOUT_MS, NULL), 0);
        assert_non_null(strstr(test_ip("-o -4 addr show dev plta0"), "inet 10.66.0.5/24 "));
}

static void expect_refused(Fixture *f, const AgentInterface *nics, size_t n_nics, const AgentMount *mounts,
                           size_t n_mounts, int code, const char *what) {
        _cleanup_error_ Error *err = NULL;
        int r = agent_client_setup(f->c, nics, n_nics, mounts, n_mounts, TIMEOUT_MS, &err);
        if (r != -code)
                fail_msg("%s: expected %d, got %d (%s)", what, -code, r, error_text(err));
        assert_nic_untouched();
        assert_false(root_exists(f, "data")); /* no mount point made */
}

static void test_setup_bad_input(void **state) {
        Fixture *f = *state;
        const AgentMount data = {.kind = AGENT_MOUNT_BLOCK, .source = "pl-vol1", .target = "/data"};
        static const struct {
                AgentInterface nic;
                const char *what;
        } bad_nics[] = {
                {{.mac = "0a:70:6c:00:00", .address = "10.66.0.5/24"}, "short MAC"},
                {{.mac = "", .address = "10.66.0.5/24"}, "no MAC"},
                {{.mac = MAC, .address = "10.66.0.5"}, "no prefix"},
                {{.mac = MAC, .address = "10.66.0.5/0"}, "prefix 0"},
                {{.mac = MAC, .address = "10.66.0.5/33"}, "prefix 33"},
                {{.mac = MAC, .address = ""}, "no address"},
                {{.mac = MAC, .address = "10.66.0.5/24", .gateway = "10.66.0"}, "bad gateway"},
                {{.mac = MAC, .address = "10.66.0.5/24", .mtu = 10}, "MTU 10"},
                {{.mac = MAC, .address = "10.66.0.5/24", .mtu = 70000}, "MTU 70000"},
        };
        /* Each bad NIC next to a good mount: the mount must not happen either. */
        for (size_t i = 0; i < ELEMENTSOF(bad_nics); i++)
                expect_refused(f, &bad_nics[i].nic, 1, &data, 1, EINVAL, bad_nics[i].what);
        const AgentInterface twice[] = {{.mac = MAC, .address = "10.66.0.5/24"}, {.mac = MAC, .address = "10.66.0.6/24"}};
        expect_refused(f, twice, 2, NULL, 0, EINVAL, "one MAC twice");

        const AgentInterface nic = {.mac = MAC, .address = "10.66.0.5/24"};
        static const struct {
                AgentMount mount;
                const char *what;
        } bad_mounts[] = {
                {{.kind = AGENT_MOUNT_BLOCK, .source = "pl-vol1", .target = "data"}, "relative target"},
                {{.kind = AGENT_MOUNT_BLOCK, .source = "pl-vol1", .target = "/x/../data"}, "target with .."},
                {{.kind = AGENT_MOUNT_BLOCK, .source = "pl-vol1", .target = "/"}, "target /"},
                {{.kind = AGENT_MOUNT_BLOCK, .source = "pl-vol1", .target = "//./"}, "target /, spelt oddly"},
                {{.kind = AGENT_MOUNT_BLOCK, .source = "", .target = "/vol"}, "no serial"},
                {{.kind = AGENT_MOUNT_BLOCK, .source = "pl vol", .target = "/vol"}, "serial with a blank"},
                {{.kind = AGENT_MOUNT_BLOCK, .source = "a-serial-of-21-chars!", .target = "/vol"}, "long serial"},
                {{.kind = AGENT_MOUNT_BLOCK, .source = "pl-vol1", .target = "/vol", .fstype = "ext4,x"}, "bad fstype"},
                {{.kind = AGENT_MOUNT_VIRTIOFS, .source = "tag/x", .target = "/vol"}, "bad tag"},
                {{.kind = AGENT_MOUNT_VIRTIOFS, .source = "tag", .target = "/vol", .fstype = "ext4"}, "virtiofs as ext4"},
        };
        /* Each bad mount after a good NIC and a good mount: nothing happens. */
        for (size_t i = 0; i < ELEMENTSOF(bad_mounts); i++) {
                const AgentMount mounts[] = {data, bad_mounts[i].mount};
                expect_refused(f, &nic, 1, mounts, 2, EINVAL, bad_mounts[i].what);
        }

        /* Limits, checked by the client before anything is sent. */
        AgentInterface many[9];
        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = nic;
        expect_refused(f, many, ELEMENTSOF(many), NULL, 0, E2BIG, "9 interfaces");
        assert_false(root_exists(f, "vol"));

        /* Still usable afterwards. */
        assert_int_equal(agent_client_setup(f->c, &nic, 1, NULL, 0, TIMEOUT_MS, NULL), 0);
}

/* Targets are resolved inside the root before anything is mounted: a file is
 * not a mount point, and a symlink to "/" would hide the whole container. */
static void test_setup_mount_targets(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *file = root_path(f, "afile"), *up = root_path(f, "up");
        test_write_file(file, "x");
        assert_int_equal(symlink("/", up), 0);
        const AgentMount not_dir = {.kind = AGENT_MOUNT_BLOCK, .source = "pl-vol1", .target = "/afile"};
        const AgentMount below_file = {.kind = AGENT_MOUNT_BLOCK, .source = "pl-vol1", .target = "/afile/x"};
        const AgentMount root = {.kind = AGENT_MOUNT_VIRTIOFS, .source = "share", .target = "/up"};
        const AgentMount root2 = {.kind = AGENT_MOUNT_VIRTIOFS, .source = "share", .target = "/up/../up/."};
        _cleanup_error_ Error *err = NULL;
        assert_int_equal(agent_client_setup(f->c, NULL, 0, &not_dir, 1, TIMEOUT_MS, &err), -ENOTDIR);
        err = error_free(err);
        assert_int_equal(agent_client_setup(f->c, NULL, 0, &below_file, 1, TIMEOUT_MS, &err), -ENOTDIR);
        err = error_free(err);
        assert_int_equal(agent_client_setup(f->c, NULL, 0, &root, 1, TIMEOUT_MS, &err), -EINVAL);
        assert_non_null(strstr(error_text(err), "container root"));
        err = error_free(err);
        assert_int_equal(agent_client_setup(f->c, NULL, 0, &root2, 1, TIMEOUT_MS, &err), -EINVAL);
}

/* A disk that never appears: waited for (the host's timeout minus a second),
 * then -ENODEV, and the mount point is not made. */
static void test_setup_disk_missing(void **state) {
        Fixture *f = *state;
        const AgentMount m = {.kind = AGENT_MOUNT_BLOCK, .source = "pl-nosuchdisk", .target = "/vol"};
        _cleanup_error_ Error *err = NULL;
        uint64_t start = now_usec();
        assert_int_equal(agent_client_setup(f->c, NULL, 0, &m, 1, 2500, &err), -ENODEV);
        uint64_t ms = (now_usec() - start) / 1000;
        assert_non_null(strstr(error_text(err), "pl-nosuchdisk"));
        assert_true(ms >= 1400 && ms < 2500); /* waited 1500 ms, answered before the host gave up */
        assert_false(root_exists(f, "vol"));
        assert_int_equal(agent_client_ping(f->c, TIMEOUT_MS, NULL), 0);
}

static const char *const NAMES_DB[] = {"db", "db.internal"};
static const char *const NAMES_WEB[] = {"web"};
static const AgentHostEntry HOSTS[] = {{"10.88.0.7", NAMES_DB, 2}, {"fd00::8", NAMES_WEB, 1}};
static const char *const DNS[] = {"10.88.0.1", "2001:db8::53"};
static const char *const SEARCH[] = {"example.com", "svc.local"};

static void test_etc_write(void **state) {
        Fixture *f = *state;
        char host_before[256] = "", host_after[256] = "";
        assert_int_equal(gethostname(host_before, sizeof host_before - 1), 0);
        const AgentEtc etc = {.write_hostname = true, .write_hosts = true, .write_resolv = true, .hostname = "web-1",
                              .hosts = HOSTS, .n_hosts = 2, .nameservers = DNS, .n_nameservers = 2, .search = SEARCH,
                              .n_search = 2};
        _cleanup_error_ Error *err = NULL;
        if (agent_client_write_etc(f->c, &etc, TIMEOUT_MS, &err) < 0)
                fail_msg("etc: %s", error_text(err));
        _cleanup_free_ char *hostname = root_read(f, "etc/hostname"), *hosts = root_read(f, "etc/hosts"),
                            *resolv = root_read(f, "etc/resolv.conf");
        assert_string_equal(hostname, "web-1\n");
        assert_string_equal(hosts, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                                   "127.0.1.1\tweb-1\n10.88.0.7\tdb db.internal\nfd00::8\tweb\n");
        assert_string_equal(resolv, "nameserver 10.88.0.1\nnameserver 2001:db8::53\nsearch example.com svc.local\n");
        /* The host-mode agent leaves its host's name alone. */
        assert_int_equal(gethostname(host_after, sizeof host_after - 1), 0);
        assert_string_equal(host_before, host_after);

        /* Again, hosts only (a peer left): the other files stay as they were. */
        const AgentEtc peers = {.write_hosts = true, .hostname = "web-1", .hosts = HOSTS, .n_hosts = 1};
        assert_int_equal(agent_client_write_etc(f->c, &peers, TIMEOUT_MS, NULL), 0);
        free(hosts);
        hosts = root_read(f, "etc/hosts");
        assert_null(strstr(hosts, "fd00::8"));
        assert_non_null(strstr(hosts, "10.88.0.7\tdb db.internal\n"));
        free(resolv);
        resolv = root_read(f, "etc/resolv.conf");
        assert_string_equal(resolv, "nameserver 10.88.0.1\nnameserver 2001:db8::53\nsearch example.com svc.local\n");

        /* Only /etc remains of the temporary files: none left over. */
        _cleanup_free_ char *etc_dir = root_path(f, "etc");
        assert_int_equal(test_count_entries(etc_dir), 3);
}

static void test_etc_flags_off(void **state) {
        Fixture *f = *state;
        const AgentEtc etc = {.hostname = "quiet", .nameservers = DNS, .n_nameservers = 1};
        assert_int_equal(agent_client_write_etc(f->c, &etc, TIMEOUT_MS, NULL), 0);
        assert_false(root_exists(f, "etc/hostname"));
        assert_false(root_exists(f, "etc/hosts"));
        assert_false(root_exists(f, "etc/resolv.conf"));
        const AgentEtc resolv_only = {.write_resolv = true};
        assert_int_equal(agent_client_write_etc(f->c, &resolv_only, TIMEOUT_MS, NULL), 0);
        _cleanup_free_ char *resolv = root_read(f, "etc/resolv.conf");
        assert_string_equal(resolv, "");
        assert_false(root_exists(f, "etc/hosts"));
}

/* A symlink in /etc pointing out of the root is replaced, not written through. */
static void test_etc_symlink(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *etc_dir = root_path(f, "etc"), *link = root_path(f, "etc/resolv.conf"), *outside = NULL;
        assert_true(asprintf(&outside, "%s/outside", f->h.dir) > 0);
        test_write_file(outside, "keep\n");
        assert_int_equal(mkdir(etc_dir, 0755), 0);
        assert_int_equal(symlink(outside, link), 0);
        const AgentEtc etc = {.write_resolv = true, .nameservers = DNS, .n_nameservers = 1};
        assert_int_equal(agent_client_write_etc(f->c, &etc, TIMEOUT_MS, NULL), 0);
        _cleanup_free_ char *kept = test_read_file(outside, NULL), *resolv = root_read(f, "etc/resolv.conf");
        assert_string_equal(kept, "keep\n");
        assert_string_equal(resolv, "nameserver 10.88.0.1\n");
        struct stat st;
        assert_int_equal(lstat(link, &st), 0);
        assert_true(S_ISREG(st.st_mode));
}

static void test_etc_bad_input(void **state) {
        Fixture *f = *state;
        const AgentEtc good = {.write_hostname = true, .write_hosts = true, .write_resolv = true, .hostname = "web-1",
                               .hosts = HOSTS, .n_hosts = 2, .nameservers = DNS, .n_nameservers = 2};
        assert_int_equal(agent_client_write_etc(f->c, &good, TIMEOUT_MS, NULL), 0);
        _cleanup_free_ char *hosts_before = root_read(f, "etc/hosts");

        static const char *const bad_name[] = {"ok", "bad name"};
        static const char *const bad_dns[] = {"10.88.0.1", "dns.example.com"};
        static const char *const bad_search[] = {"-lead"};
        static const AgentHostEntry bad_addr[] = {{"10.88.0.300", NAMES_WEB, 1}};
        static const AgentHostEntry bad_names[] = {{"10.88.0.3", bad_name, 2}};
        static const AgentHostEntry no_names[] = {{"10.88.0.3", NULL, 0}};
        char long_name[80];
        memset(long_name, 'a', sizeof long_name - 1);
        long_name[sizeof long_name - 1] = 0;
        const struct {
                AgentEtc etc;
                int code;
        } bad[] = {
                {{.write_hostname = true, .write_hosts = true, .hostname = ""}, EINVAL},
                {{.write_hostname = true, .write_hosts = true, .hostname = "a/b"}, EINVAL},
                {{.write_hostname = true, .write_hosts = true, .hostname = "-x"}, EINVAL},
                {{.write_hostname = true, .write_hosts = true, .hostname = long_name}, EINVAL},
                {{.write_hostname = true, .write_hosts = true, .hostname = "x", .hosts = bad_addr, .n_hosts = 1}, EINVAL},
                {{.write_hostname = true, .write_hosts = true, .hostname = "x", .hosts = bad_names, .n_hosts = 1}, EINVAL},
                {{.write_hostname = true, .write_hosts = true, .hostname = "x", .hosts = no_names, .n_hosts = 1}, EINVAL},
                {{.write_hostname = true, .write_resolv = true, .hostname = "x", .nameservers = bad_dns, .n_nameservers = 2},
                 EINVAL},
                {{.write_hostname = true, .write_resolv = true, .hostname = "x", .search = bad_search, .n_search = 1},
                 EINVAL},
                {{.write_hostname = true, .write_resolv = true, .hostname = "x", .nameservers = DNS, .n_nameservers = 9},
                 E2BIG},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_error_ Error *err = NULL;
                int r = agent_client_write_etc(f->c, &bad[i].etc, TIMEOUT_MS, &err);
                if (r != -bad[i].code)
                        fail_msg("case %zu: expected %d, got %d (%s)", i, -bad[i].code, r, error_text(err));
                _cleanup_free_ char *hostname = root_read(f, "etc/hostname"), *hosts = root_read(f, "etc/hosts");
                assert_string_equal(hostname, "web-1\n");
                assert_string_equal(hosts, hosts_before);
        }
}

int main(void) {
        test_netns_require();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_setup_interface, setup, teardown),
                cmocka_unit_test_setup_teardown(test_setup_interface_minimal, setup, teardown),
                cmocka_unit_test_setup_teardown(test_setup_unknown_mac, setup, teardown),
                cmocka_unit_test_setup_teardown(test_setup_bad_input, setup, teardown),
                cmocka_unit_test_setup_teardown(test_setup_mount_targets, setup, teardown),
                cmocka_unit_test_setup_teardown(test_setup_disk_missing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_etc_write, setup, teardown),
                cmocka_unit_test_setup_teardown(test_etc_flags_off, setup, teardown),
                cmocka_unit_test_setup_teardown(test_etc_symlink, setup, teardown),
                cmocka_unit_test_setup_teardown(test_etc_bad_input, setup, teardown),
        };
        return test_run_group(tests, NULL, NULL);
}
