/* test-init.c: the PID 1 settings parsed from the kernel command line, who
 * may connect to the agent over vsock (decided from the peer's address alone:
 * no vsock socket is opened here), and how stage 1 decides to grow the root
 * filesystem (superblock geometry and target block count; the resize itself
 * runs only inside a guest, in the e2e tests). */
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
        assert_true(c.root_grow);
        assert_int_equal(c.wait_ms, 10000);
        assert_int_equal(init_config_parse(NULL, &c, NULL), 0);
}

static void test_settings(void **state) {
        InitConfig c;
        assert_int_equal(init_config_parse("console=ttyS0 pl.port=org.x.1 pl.root=disk7 pl.hostname=web-1\n"
                                           "pl.dns=10.0.0.2,10.0.0.3 pl.vsock=0 pl.ro=1 pl.debug=1 pl.wait=2500 "
                                           "pl.vsock_local=1 pl.grow=0",
                                           &c, NULL), 0);
        assert_string_equal(c.port_name, "org.x.1");
        assert_string_equal(c.root_serial, "disk7");
        assert_string_equal(c.hostname, "web-1");
        assert_string_equal(c.dns, "10.0.0.2,10.0.0.3");
        assert_int_equal(c.vsock_port, 0);
        assert_true(c.root_ro);
        assert_true(c.debug);
        assert_true(c.vsock_local);
        assert_false(c.root_grow);
        assert_int_equal(c.wait_ms, 2500);
}

static void test_bad_settings(void **state) {
        static const char *const bad[] = {
                "pl.unknown=1", "pl.root", "pl.vsock=abc", "pl.ro=2", "pl.wait=-1",
                "pl.root=a-serial-longer-than-twenty-chars", "pl.vsock=4294967295", "pl.vsock_local=yes", "pl.grow=2",
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

static void put_le32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

/* A superblock with just the fields the grow reads. */
static void make_superblock(uint8_t *sb, uint32_t log_block, uint64_t blocks, bool is_64bit) {
        memset(sb, 0, INIT_EXT4_SUPERBLOCK_SIZE);
        put_le32(sb + 0x04, (uint32_t) blocks);
        put_le32(sb + 0x18, log_block);
        sb[0x38] = 0x53;
        sb[0x39] = 0xEF;
        put_le32(sb + 0x60, 0x242 | (is_64bit ? 0x80 : 0)); /* filetype, extents, flex_bg (+ 64bit) */
        put_le32(sb + 0x150, (uint32_t) (blocks >> 32));
}

static void test_ext4_geometry_parse(void **state) {
        uint8_t sb[INIT_EXT4_SUPERBLOCK_SIZE];
        Ext4Geometry g;
        make_superblock(sb, 2, 49152, false); /* 192 MiB of 4 KiB blocks */
        assert_int_equal(init_ext4_geometry_parse(sb, sizeof sb, &g), 0);
        assert_int_equal(g.block_size, 4096);
        assert_int_equal(g.blocks, 49152);
        assert_false(g.is_64bit);

        /* The high word counts only with the 64bit feature. */
        make_superblock(sb, 2, (5ull << 32) + 7, true);
        assert_int_equal(init_ext4_geometry_parse(sb, sizeof sb, &g), 0);
        assert_int_equal(g.blocks, (5ull << 32) + 7);
        assert_true(g.is_64bit);
        make_superblock(sb, 0, (5ull << 32) + 7, false);
        assert_int_equal(init_ext4_geometry_parse(sb, sizeof sb, &g), 0);
        assert_int_equal(g.block_size, 1024);
        assert_int_equal(g.blocks, 7);

        make_superblock(sb, 2, 1000, false);
        assert_int_equal(init_ext4_geometry_parse(sb, sizeof sb - 1, &g), -EINVAL); /* short read */
        make_superblock(sb, 7, 1000, false);
        assert_int_equal(init_ext4_geometry_parse(sb, sizeof sb, &g), -EINVAL);     /* 128 KiB blocks */
        make_superblock(sb, 2, 0, false);
        assert_int_equal(init_ext4_geometry_parse(sb, sizeof sb, &g), -EINVAL);     /* no blocks */
        make_superblock(sb, 2, 1000, false);
        sb[0x38] = 0;
        assert_int_equal(init_ext4_geometry_parse(sb, sizeof sb, &g), -EINVAL);     /* not ext4 */
}

static void test_root_grow_target(void **state) {
        uint64_t blocks = 0;
        /* The image's 192 MiB in a 1 GiB container disk: every block of it. */
        Ext4Geometry g = {.block_size = 4096, .blocks = 49152};
        assert_int_equal(init_root_grow_target(1ull << 30, &g, &blocks), 1);
        assert_int_equal(blocks, 262144);
        /* A device size that is not a whole number of blocks: the part is left. */
        assert_int_equal(init_root_grow_target((1ull << 30) + 4095, &g, &blocks), 1);
        assert_int_equal(blocks, 262144);
        /* Already the disk's size, less than a block more, or a smaller
         * device: nothing to do (never shrink). */
        blocks = 0;
        assert_int_equal(init_root_grow_target(49152ull * 4096, &g, &blocks), 0);
        assert_int_equal(init_root_grow_target(49152ull * 4096 + 4095, &g, &blocks), 0);
        assert_int_equal(init_root_grow_target(1ull << 20, &g, &blocks), 0);
        assert_int_equal(blocks, 0);
        /* 1 KiB blocks count in 1 KiB. */
        g = (Ext4Geometry){.block_size = 1024, .blocks = 65536};
        assert_int_equal(init_root_grow_target(128ull << 20, &g, &blocks), 1);
        assert_int_equal(blocks, 131072);
        /* Without 64bit, block numbers stop at 2^32 - 1; with it they go on. */
        g = (Ext4Geometry){.block_size = 4096, .blocks = 1u << 20};
        assert_int_equal(init_root_grow_target(32ull << 40, &g, &blocks), 1);
        assert_int_equal(blocks, UINT32_MAX);
        g.is_64bit = true;
        assert_int_equal(init_root_grow_target(32ull << 40, &g, &blocks), 1);
        assert_int_equal(blocks, 8ull << 30);
        /* Nonsense geometry. */
        g = (Ext4Geometry){.block_size = 3000, .blocks = 10};
        assert_int_equal(init_root_grow_target(1ull << 30, &g, &blocks), -EINVAL);
        g = (Ext4Geometry){.block_size = 512, .blocks = 10};
        assert_int_equal(init_root_grow_target(1ull << 30, &g, &blocks), -EINVAL);
        g = (Ext4Geometry){.block_size = 4096, .blocks = 0};
        assert_int_equal(init_root_grow_target(1ull << 30, &g, &blocks), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_settings),
                cmocka_unit_test(test_bad_settings),
                cmocka_unit_test(test_vsock_peer_allowed),
                cmocka_unit_test(test_ext4_geometry_parse),
                cmocka_unit_test(test_root_grow_target),
        };
        return test_run_group(tests, NULL, NULL);
}
