/* test-network.c: plnetwork without touching the host (manage_host off):
 * network records, address leases (exhaustion of a /30, reuse after a
 * release, persistence across a reopen, a lease file left empty by a kill -9,
 * concurrent allocation from threads), MACs, published ports and their
 * conflicts, and the nftables rule builder against a golden file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/base/error.h"
#include "common/json/json-util.h"
#include "network-internal.h"
#include "portlayer/network/network.h"

#define ID(n) "00000000000000000000000000000000000000000000000000000000000000" #n


static NetworkHost *open_host(const char *dir, const char *subnet) {
        NetworkHostConfig cfg = {.state_dir = dir, .default_subnet = subnet, .mode = NETWORK_MODE_BRIDGE};
        NetworkHost *h = NULL;
        _cleanup_error_ Error *err = NULL;
        int r = network_host_open(&cfg, &h, &err);
        if (r < 0)
                fail_msg("network_host_open: %s", error_text(err));
        return h;
}

static void test_default_network(void **state) {
        const char *dir = *state;
        _cleanup_(network_host_freep) NetworkHost *h = open_host(dir, NULL);
        _cleanup_json_ json_t *j = NULL;
        assert_int_equal(network_inspect(h, "default", &j, NULL), 0);
        assert_string_equal(json_string_value(json_object_get(j, "subnet")), "10.88.0.0/16");
        assert_string_equal(json_string_value(json_object_get(j, "gateway")), "10.88.0.1");
        assert_string_equal(json_string_value(json_object_get(j, "bridge")), "plbr0");
        assert_int_equal(network_remove(h, "default", NULL), -EBUSY);
        assert_int_equal(network_exists(h, "none", NULL), 0);
        assert_int_equal(network_exists(h, "nope", NULL), -ENOENT);
}

static void test_create_remove(void **state) {
        const char *dir = *state;
        _cleanup_(network_host_freep) NetworkHost *h = open_host(dir, "10.77.0.0/24");
        _cleanup_error_ Error *err = NULL;
        _cleanup_json_ json_t *j = NULL;
        assert_int_equal(network_create(h, "none", "10.1.0.0/24", NULL, NULL), -EINVAL);
        assert_int_equal(network_create(h, "bad/name", "10.1.0.0/24", NULL, NULL), -EINVAL);
        assert_int_equal(network_create(h, "a", "10.1.0.1/24", NULL, NULL), -EINVAL); /* host bits */
        assert_int_equal(network_create(h, "a", "10.1.0.0/31", NULL, NULL), -EINVAL);
        assert_int_equal(network_create(h, "a", "300.1.0.0/24", NULL, NULL), -EINVAL);
        assert_int_equal(network_create(h, "a", "10.77.0.128/25", NULL, &err), -EEXIST); /* overlaps default */
        assert_non_null(strstr(error_text(err), "overlaps network default"));
        assert_int_equal(network_create(h, "a", "10.1.0.0/24", &j, NULL), 0);
        const char *br = json_string_value(json_object_get(j, "bridge"));
        assert_int_equal(strlen(br), 13);
        assert_memory_equal(br, "plbr-", 5);
        assert_int_equal(network_create(h, "a", "10.2.0.0/24", NULL, NULL), -EEXIST);

        NetworkLease l;
        assert_int_equal(network_lease_acquire(h, "a", ID(01), &l, NULL), 0);
        assert_string_equal(l.address, "10.1.0.2");
        assert_string_equal(l.gateway, "10.1.0.1");
        assert_int_equal(l.prefix, 24);
        assert_int_equal(network_remove(h, "a", NULL), -EBUSY);
        assert_int_equal(network_lease_acquire(h, "default", ID(01), NULL, NULL), -EEXIST);
        assert_int_equal(network_lease_release(h, ID(01), NULL), 0);
        assert_int_equal(network_remove(h, "a", NULL), 0);
        assert_int_equal(network_inspect(h, "a", &j, NULL), -ENOENT);
        assert_false(test_exists(test_path("%s/networks/a.json", dir)));
}

static void test_exhaust_slash30(void **state) {
        const char *dir = *state;
        _cleanup_(network_host_freep) NetworkHost *h = open_host(dir, NULL);
        assert_int_equal(network_create(h, "tiny", "10.9.0.0/30", NULL, NULL), 0);
        NetworkLease l1, l2;
        _cleanup_error_ Error *err = NULL;
        /* .0 network, .1 gateway, .2 the one address, .3 broadcast */
        assert_int_equal(network_lease_acquire(h, "tiny", ID(01), &l1, NULL), 0);
        assert_string_equal(l1.address, "10.9.0.2");
        assert_int_equal(network_lease_acquire(h, "tiny", ID(02), &l2, &err), -ENOSPC);
        assert_non_null(strstr(error_text(err), "no free address"));
        /* the holder asking again gets its own lease back */
        assert_int_equal(network_lease_acquire(h, "tiny", ID(01), &l2, NULL), 0);
        assert_string_equal(l2.address, "10.9.0.2");
        assert_string_equal(l2.mac, l1.mac);
        /* reuse after release */
        assert_int_equal(network_lease_release(h, ID(01), NULL), 0);
        assert_int_equal(network_lease_find(h, ID(01), NULL), -ENOENT);
        assert_int_equal(network_lease_acquire(h, "tiny", ID(02), &l2, NULL), 0);
        assert_string_equal(l2.address, "10.9.0.2");
}

static bool keep_a(const char *id, void *userdata) {
        return strcmp(id, ID(0a)) == 0;
}

static void test_persistence(void **state) {
        const char *dir = *state;
        NetworkLease a, b, c;
        {
                _cleanup_(network_host_freep) NetworkHost *h = open_host(dir, "10.50.0.0/24");
                assert_int_equal(network_lease_acquire(h, "default", ID(0a), &a, NULL), 0);
                assert_int_equal(network_lease_acquire(h, "default", ID(0b), &b, NULL), 0);
                assert_string_equal(a.address, "10.50.0.2");
                assert_string_equal(b.address, "10.50.0.3");
                assert_memory_equal(a.mac, "0a:70:6c:", 9);
                assert_string_not_equal(a.mac, b.mac);
        }
        /* a kill -9 between create and write leaves an empty file: never
         * handed out, so dropped; .4 is taken by a file this host must not
         * reuse until it is loaded (written by someone: it is kept) */
        test_write_file(test_path("%s/networks/default.leases/10.50.0.4", dir), "");
        test_write_file(test_path("%s/networks/default.leases/10.50.0.5", dir),
                        "{\"container\": \"" ID(0c) "\", \"mac\": \"0a:70:6c:00:00:05\"}");
        {
                /* the subnet option only applies when default is created */
                _cleanup_(network_host_freep) NetworkHost *h = open_host(dir, "10.99.0.0/24");
                assert_false(test_exists(test_path("%s/networks/default.leases/10.50.0.4", dir)));
                assert_int_equal(network_lease_find(h, ID(0a), &c), 0);
                assert_string_equal(c.address, a.address);
                assert_string_equal(c.mac, a.mac);
                assert_int_equal(network_lease_find(h, ID(0c), &c), 0);
                assert_string_equal(c.address, "10.50.0.5");
                assert_int_equal(network_lease_acquire(h, "default", ID(0d), &c, NULL), 0);
                assert_string_equal(c.address, "10.50.0.4");
                assert_int_equal(network_lease_acquire(h, "default", ID(0e), &c, NULL), 0);
                assert_string_equal(c.address, "10.50.0.6");
                /* leases of containers that no longer exist are released */
                assert_int_equal(network_leases_prune(h, keep_a, NULL, NULL), 4);
                _cleanup_json_ json_t *l = network_leases_json(h, "default");
                assert_int_equal(json_array_size(l), 1);
        }
        assert_int_equal(test_count_entries(test_path("%s/networks/default.leases", dir)), 1);
}

#define THREADS 8
#define PER_THREAD 16

typedef struct Worker {
        NetworkHost *h;
        int n;
        NetworkLease leases[PER_THREAD];
} Worker;

static void *worker_run(void *p) {
        Worker *w = p;
        for (int i = 0; i < PER_THREAD; i++) {
                char id[65];
                snprintf(id, sizeof id, "%032x%032x", w->n + 1, i + 1);
                if (network_lease_acquire(w->h, "default", id, &w->leases[i], NULL) < 0)
                        return (void *) 1;
        }
        return NULL;
}

static void test_concurrent(void **state) {
        const char *dir = *state;
        _cleanup_(network_host_freep) NetworkHost *h = open_host(dir, "10.60.0.0/24");
        static Worker w[THREADS];
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++) {
                w[i] = (Worker) {.h = h, .n = i};
                assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
        }
        for (int i = 0; i < THREADS; i++) {
                void *ret = NULL;
                pthread_join(t[i], &ret);
                assert_null(ret);
        }
        /* every address and every MAC once */
        for (int i = 0; i < THREADS * PER_THREAD; i++)
                for (int k = i + 1; k < THREADS * PER_THREAD; k++) {
                        const NetworkLease *a = &w[i / PER_THREAD].leases[i % PER_THREAD];
                        const NetworkLease *b = &w[k / PER_THREAD].leases[k % PER_THREAD];
                        assert_string_not_equal(a->address, b->address);
                        assert_string_not_equal(a->mac, b->mac);
                }
        assert_int_equal(test_count_entries(test_path("%s/networks/default.leases", dir)), THREADS * PER_THREAD);
}

static json_t *ports_of(const char *text) {
        json_t *j = json_loads(text, 0, NULL);
        assert_non_null(j);
        return j;
}

static void test_ports_parse(void **state) {
        NetworkPort p[NETWORK_PORTS_MAX];
        size_t n = 0;
        _cleanup_json_ json_t *ok = ports_of("[{\"host_port\": 8080, \"container_port\": 80},"
                                             " {\"host_ip\": \"127.0.0.1\", \"host_port\": 53, \"container_port\": 53,"
                                             "  \"protocol\": \"udp\"}]");
        assert_int_equal(network_ports_parse(ok, p, &n, NULL), 0);
        assert_int_equal(n, 2);
        assert_string_equal(p[0].host_ip, "0.0.0.0");
        assert_string_equal(p[0].protocol, "tcp");
        assert_int_equal(p[1].host_port, 53);
        const char *bad[] = {
                "{}",
                "[{\"host_port\": 0, \"container_port\": 80}]",
                "[{\"host_port\": 65536, \"container_port\": 80}]",
                "[{\"host_port\": 80}]",
                "[{\"host_port\": 80, \"container_port\": 80, \"protocol\": \"sctp\"}]",
                "[{\"host_port\": 80, \"container_port\": 80, \"host_ip\": \"::1\"}]",
                "[{\"host_port\": 80, \"container_port\": 80, \"extra\": 1}]",
                ("[{\"host_port\": 80, \"container_port\": 80}, {\"host_port\": 80, \"container_port\": 81,"
                 " \"host_ip\": \"127.0.0.1\"}]"),
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_json_ json_t *j = ports_of(bad[i]);
                _cleanup_error_ Error *err = NULL;
                assert_int_equal(network_ports_parse(j, NULL, NULL, &err), -EINVAL);
                assert_non_null(err);
        }
}

static void test_ports_conflict(void **state) {
        const char *dir = *state;
        _cleanup_(network_host_freep) NetworkHost *h = open_host(dir, NULL);
        NetworkPort p[2];
        size_t n = 0;
        _cleanup_json_ json_t *j = ports_of("[{\"host_port\": 18080, \"container_port\": 80},"
                                            " {\"host_ip\": \"127.0.0.1\", \"host_port\": 18053, \"container_port\": 53,"
                                            " \"protocol\": \"udp\"}]");
        assert_int_equal(network_ports_parse(j, p, &n, NULL), 0);
        assert_int_equal(network_ports_set(h, ID(01), p, n, NULL), -ENOENT); /* no lease */
        assert_int_equal(network_lease_acquire(h, "default", ID(01), NULL, NULL), 0);
        assert_int_equal(network_lease_acquire(h, "default", ID(02), NULL, NULL), 0);
        assert_int_equal(network_ports_set(h, ID(01), p, n, NULL), 0);
        assert_int_equal(network_ports_set(h, ID(01), p, n, NULL), 0); /* again: its own */

        /* another container: the same port on a specific address conflicts with 0.0.0.0 */
        NetworkPort q = {.host_ip = "127.0.0.1", .host_port = 18080, .container_port = 80, .protocol = "tcp"};
        _cleanup_error_ Error *err = NULL;
        assert_int_equal(network_ports_set(h, ID(02), &q, 1, &err), -EADDRINUSE);
        assert_non_null(strstr(error_text(err), "127.0.0.1:18080/tcp"));
        /* another protocol is another port */
        q.protocol[0] = 'u', q.protocol[1] = 'd', q.protocol[2] = 'p';
        assert_int_equal(network_ports_set(h, ID(02), &q, 1, NULL), 0);

        /* a host socket holding the port */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(listen(fd, 1), 0);
        socklen_t sl = sizeof sa;
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &sl), 0);
        NetworkPort busy = {.host_ip = "127.0.0.1", .host_port = ntohs(sa.sin_port), .container_port = 80,
                            .protocol = "tcp"};
        err = error_free(err);
        assert_int_equal(network_ports_set(h, ID(02), &busy, 1, &err), -EADDRINUSE);
        char want[64];
        snprintf(want, sizeof want, "127.0.0.1:%u/tcp", busy.host_port);
        assert_non_null(strstr(error_text(err), want));
        close(fd);
        /* the failed set changed nothing */
        _cleanup_json_ json_t *now = network_ports_json(h, ID(02));
        assert_int_equal(json_array_size(now), 1);

        /* persisted, and released with the lease */
        network_host_free(TAKE_PTR(h));
        h = open_host(dir, NULL);
        _cleanup_json_ json_t *back = network_ports_json(h, ID(01));
        assert_int_equal(json_array_size(back), 2);
        _cleanup_json_ json_t *want_ports = network_ports_to_json(p, n);
        assert_true(json_equal(back, want_ports));
        assert_int_equal(json_integer_value(json_object_get(json_array_get(back, 0), "host_port")), 18080);
        assert_int_equal(network_lease_release(h, ID(01), NULL), 0);
        assert_false(test_exists(test_path("%s/networks/ports/%s.json", dir, ID(01))));
}

static void test_rules_golden(void **state) {
        RulesNetwork nets[] = {
                {.bridge = "plbr0", .subnet = "10.88.0.0/16"},
                {.bridge = "plbr-0123abcd", .subnet = "10.89.0.0/24"},
        };
        NetworkPort p[] = {
                {.host_ip = "0.0.0.0", .host_port = 8080, .container_port = 80, .protocol = "tcp"},
                {.host_ip = "127.0.0.1", .host_port = 5353, .container_port = 53, .protocol = "udp"},
                {.host_ip = "10.88.0.1", .host_port = 2222, .container_port = 22, .protocol = "tcp"},
        };
        RulesPort ports[] = {
                {.port = &p[0], .address = "10.88.0.2"},
                {.port = &p[1], .address = "10.88.0.2"},
                {.port = &p[2], .address = "10.89.0.7"},
        };
        _cleanup_free_ char *text = NULL;
        assert_int_equal(rules_build(nets, 2, ports, 3, &text, NULL), 0);
        test_assert_golden(text, "rules-two-networks.nft");
        _cleanup_free_ char *empty = NULL;
        assert_int_equal(rules_build(NULL, 0, NULL, 0, &empty, NULL), 0);
        test_assert_golden(empty, "rules-empty.nft");
}

/* The host's text follows its state: leases' ports in, released ones out. */
static void test_rules_from_state(void **state) {
        const char *dir = *state;
        _cleanup_(network_host_freep) NetworkHost *h = open_host(dir, "10.88.0.0/16");
        NetworkPort p = {.host_ip = "0.0.0.0", .host_port = 18081, .container_port = 80, .protocol = "tcp"};
        assert_int_equal(network_lease_acquire(h, "default", ID(01), NULL, NULL), 0);
        assert_int_equal(network_ports_set(h, ID(01), &p, 1, NULL), 0);
        _cleanup_free_ char *a = NULL, *b = NULL;
        assert_int_equal(network_rules_text(h, &a, NULL), 0);
        assert_non_null(strstr(a, "tcp dport 18081 dnat to 10.88.0.2:80"));
        assert_int_equal(network_lease_release(h, ID(01), NULL), 0);
        assert_int_equal(network_rules_text(h, &b, NULL), 0);
        assert_null(strstr(b, "dnat"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_default_network, test_tmpdir_setup, test_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_create_remove, test_tmpdir_setup, test_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_exhaust_slash30, test_tmpdir_setup, test_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_persistence, test_tmpdir_setup, test_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_concurrent, test_tmpdir_setup, test_tmpdir_teardown),
                cmocka_unit_test(test_ports_parse),
                cmocka_unit_test_setup_teardown(test_ports_conflict, test_tmpdir_setup, test_tmpdir_teardown),
                cmocka_unit_test(test_rules_golden),
                cmocka_unit_test_setup_teardown(test_rules_from_state, test_tmpdir_setup, test_tmpdir_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
