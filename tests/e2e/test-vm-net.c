/* test-vm-net.c: a real guest's NICs and shared directories, through the
 * libvirt driver (TCG here), inside the network namespace tests/lib/in-netns.sh
 * made for this run (pl_test NETNS): nothing here touches the host's network.
 *
 * One guest is booted for the whole group, with everything the VM layer can
 * give it: a bridge NIC (eth0) on a tap we name, enslaved by libvirt to a
 * bridge this test creates in the namespace; a user-mode NIC (eth1, QEMU's
 * slirp) whose ports are forwarded with vm_driver_forward(); and two
 * virtio-fs shares, one read-write and one read-only. The guest configures
 * its addresses with busybox `ip` (the agent's own setup is another layer's).
 * The group teardown destroys the domain, also after a failed assertion, and
 * checks no QEMU or virtiofsd of this run is left. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "images/boot/initramfs.h"
#include "images/boot/kernel-modules.h"
#include "lib/agent-harness.h"
#include "portlayer/guest/guest.h"

#define BRIDGE "plbrtest0"
#define TAP "pltaptest0"
#define BRIDGE_MAC "0a:70:6c:00:00:10"
#define USER_MAC "0a:70:6c:00:00:11"
#define HOST_ADDR "10.99.0.1"
#define GUEST_ADDR "10.99.0.2"

static const char *const guest_modules[] = {"virtio_pci", "virtio_blk", "virtio_console", "virtio_rng",
                                            "virtio_net", "virtiofs", NULL};

typedef struct World {
        char dir[128];
        char kernel[4096];
        char *initrd;
        char base[300];
        char rw_dir[300], ro_dir[300];
        char name[64];
        VmDriver *driver;
        Guest *guest;
        bool bridge_made;
} World;

static World world;

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Runs a shell line in the guest; returns its exit code, output in *out. */
static int guest_sh(const char *line, char **out) {
        int code = -1;
        char *o = NULL, *e = NULL;
        assert_int_equal(harness_run(world.guest->agent, ARGV("sh", "-c", line), NULL, &o, &e, &code), 0);
        if (code != 0)
                fprintf(stderr, "guest: '%s' exited %d: %s%s", line, code, o, e);
        free(e);
        if (out)
                *out = o;
        else
                free(o);
        return code;
}

static void guest_sh_ok(const char *line, char **out) {
        if (guest_sh(line, out) != 0)
                fail_msg("guest command failed: %s", line);
}

/* The guest's QEMU runs as this uid (a per-domain DAC label), never as
 * root, and owns its disk overlay and run directory (docs/security.md). */
#define GUEST_UID 270001u
static const VmOwner guest_owner = {.uid = GUEST_UID, .gid = GUEST_UID};

static int world_boot(Error **err) {
        char disk[400], run_dir[300];
        snprintf(world.name, sizeof world.name, "pl-net-%d", (int) getpid());
        snprintf(run_dir, sizeof run_dir, "%s/%s", world.dir, world.name);
        snprintf(disk, sizeof disk, "%s/root.qcow2", run_dir);
        if (mkdir(run_dir, 0700) < 0 ||
            test_sh("qemu-img create -q -f qcow2 -F raw -b '%s' '%s' 256M", world.base, disk) != 0 ||
            chown(disk, GUEST_UID, GUEST_UID) < 0 || chmod(disk, 0600) < 0)
                return error_set(err, EIO, "cannot make %s", disk);
        VmNic nics[] = {
                {.type = VM_NIC_BRIDGE, .mac = BRIDGE_MAC, .bridge = BRIDGE, .tap = TAP, .mtu = 1400},
                {.type = VM_NIC_USER, .mac = USER_MAC},
        };
        VmFilesystem fss[] = {
                {.source = world.rw_dir, .tag = "plrw"},
                {.source = world.ro_dir, .tag = "plro", .read_only = true},
        };
        GuestConfig c = {.name = world.name, .kernel = world.kernel, .initrd = world.initrd, .root_disk = disk,
                         .root_format = VM_DISK_QCOW2, .run_dir = run_dir, .boot_timeout_ms = 120000,
                         .nics = nics, .n_nics = 2, .filesystems = fss, .n_filesystems = 2,
                         .owner = &guest_owner};
        return guest_start(world.driver, &c, &world.guest, err);
}

static int world_setup(void **state) {
        const char *kdir = getenv("PL_KERNEL_DIR"), *agent = getenv("PL_AGENT_BIN"), *src = getenv("PL_SOURCE_DIR");
        if (!kdir || !agent || !src || !getenv("PL_TEST_NETNS")) {
                fprintf(stderr, "e2e: PL_KERNEL_DIR, PL_AGENT_BIN, PL_SOURCE_DIR and a namespace of our own "
                                "(tests/lib/in-netns.sh) are needed\n");
                return -1;
        }
        snprintf(world.kernel, sizeof world.kernel, "%s/vmlinuz", kdir);
        /* QEMU, as GUEST_UID, crosses it to its disk and the base image */
        if (test_tmpdir_make(world.dir, sizeof world.dir, "e2e-net") < 0 || chmod(world.dir, 0711) < 0)
                return -1;
        snprintf(world.rw_dir, sizeof world.rw_dir, "%s/share-rw", world.dir);
        snprintf(world.ro_dir, sizeof world.ro_dir, "%s/share-ro", world.dir);
        if (mkdir(world.rw_dir, 0755) < 0 || mkdir(world.ro_dir, 0755) < 0)
                return -1;
        char path[4096];
        Error *e = NULL;
        char *modules_dir = NULL;
        if (kernel_modules_find_dir(kdir, &modules_dir, &e) < 0)
                goto fail;
        InitramfsSpec spec = {.agent_path = agent, .modules_dir = modules_dir, .modules = guest_modules};
        snprintf(path, sizeof path, "%s/initramfs", world.dir);
        int r = initramfs_build(&spec, path, &world.initrd, &e);
        free(modules_dir);
        if (r < 0)
                goto fail;
        snprintf(world.base, sizeof world.base, "%s/base.ext4", world.dir);
        if (test_sh("bash '%s/scripts/make-test-rootfs.sh' '%s' >/dev/null", src, world.base) != 0)
                return -1;

        /* The bridge, inside this run's namespace only. */
        if (test_sh("ip link add " BRIDGE " type bridge && ip addr add " HOST_ADDR "/24 dev " BRIDGE
                    " && ip link set " BRIDGE " up") != 0)
                return -1;
        world.bridge_made = true;

        snprintf(path, sizeof path, "%s/state", world.dir);
        if (vm_driver_open(&vm_driver_libvirt, &world.driver, NULL, path, NULL, NULL, &e) < 0)
                goto fail;
        if (world_boot(&e) < 0)
                goto fail;
        fprintf(stderr, "e2e: %s: agent answered %.2f s after create\n", world.name, world.guest->boot_usec / 1e6);
        return 0;
fail:
        fprintf(stderr, "e2e setup: %s\n", error_text(e));
        error_free(e);
        return -1;
}

static int world_teardown(void **state) {
        int bad = 0;
        world.guest = guest_free(world.guest);
        if (world.driver) {
                if (world.name[0])
                        (void) vm_driver_destroy(world.driver, world.name, NULL);
                char **names = NULL;
                size_t n = 0;
                if (vm_driver_list_ours(world.driver, &names, &n, NULL) >= 0) {
                        for (size_t i = 0; i < n; i++) {
                                fprintf(stderr, "e2e: domain %s left behind: destroying it\n", names[i]);
                                (void) vm_driver_destroy(world.driver, names[i], NULL);
                                bad = 1;
                        }
                        vm_names_free(names, n);
                }
                world.driver = vm_driver_close(world.driver);
        }
        /* QEMU and virtiofsd of this run name our directory. */
        if (world.dir[0] && test_sh("pgrep -f '[q]emu-system.*%s|[v]irtiofsd.*%s' >/dev/null", world.dir, world.dir) == 0) {
                fprintf(stderr, "e2e: QEMU or virtiofsd processes of this run are still alive\n");
                test_sh("pgrep -af '[q]emu-system.*%s|[v]irtiofsd.*%s' >&2", world.dir, world.dir);
                bad = 1;
        }
        /* libvirt removed the tap with the domain. */
        if (test_sh("ip link show " TAP " >/dev/null 2>&1") == 0) {
                fprintf(stderr, "e2e: tap " TAP " left behind\n");
                bad = 1;
        }
        if (world.bridge_made)
                (void) test_sh("ip link del " BRIDGE);
        free(world.initrd);
        if (world.dir[0])
                test_tmpdir_remove(world.dir);
        return bad ? -1 : 0;
}

/* The tap libvirt made has our name, sits on our bridge; the guest sees
 * the MAC, and once it has an address, the host and the guest ping each
 * other across the bridge. */
static void test_bridge_nic(void **state) {
        char *out = NULL;
        assert_int_equal(test_sh_out(&out, NULL, "ip -o link show " TAP), 0);
        if (!strstr(out, "master " BRIDGE) || !strstr(out, "mtu 1400"))
                fail_msg("tap not on the bridge with mtu 1400: %s", out);
        free(out);

        guest_sh_ok("cat /sys/class/net/eth0/address", &out);
        assert_string_equal(out, BRIDGE_MAC "\n");
        free(out);
        guest_sh_ok("cat /sys/class/net/eth1/address", &out);
        assert_string_equal(out, USER_MAC "\n");
        free(out);

        guest_sh_ok("ip link set lo up && ip link set eth0 up && ip addr add " GUEST_ADDR "/24 dev eth0", NULL);
        /* The first packets wait for the link and ARP: a few tries. */
        assert_int_equal(test_sh("for i in 1 2 3 4 5 6 7 8 9 10; do busybox ping -c1 -W2 " GUEST_ADDR
                                 " >/dev/null && exit 0; done; exit 1"),
                         0);
        guest_sh_ok("ping -c1 -W5 " HOST_ADDR, NULL);
}

/* One HTTP GET to 127.0.0.1:port, the reply (bounded) in buf. */
static int http_get(uint16_t port, char *buf, size_t size) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return -errno;
        const char req[] = "GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n";
        if (write_all(fd, req, sizeof req - 1) < 0)
                return -EIO;
        size_t n = 0;
        uint64_t deadline = deadline_after_ms(20000);
        while (n + 1 < size) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int ms = deadline_poll_ms(deadline);
                if (ms == 0 || poll(&p, 1, ms) <= 0)
                        return -ETIMEDOUT;
                ssize_t k = read(fd, buf + n, size - 1 - n);
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = 0;
        return 0;
}

/* A free TCP port on 127.0.0.1, found by binding port 0. */
static uint16_t free_port(void) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET};
        socklen_t len = sizeof sa;
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        return ntohs(sa.sin_port);
}

/* QEMU's slirp: the guest at 10.0.2.15 serves busybox httpd, a forward from
 * 127.0.0.1 reaches it; the same host port twice is refused, the same
 * forward again is fine, removal stops it. */
static void test_user_nic_forward(void **state) {
        guest_sh_ok("ip link set eth1 up && ip addr add 10.0.2.15/24 dev eth1 && mkdir -p /www && "
                    "echo hello-from-guest > /www/index.html && httpd -p 80 -h /www",
                    NULL);
        uint16_t port = free_port();
        VmForward fw = {.protocol = "tcp", .host_ip = "127.0.0.1", .host_port = port, .guest_port = 80};
        _cleanup_error_ Error *err = NULL;
        if (vm_driver_forward(world.driver, world.name, &fw, true, &err) < 0)
                fail_msg("forward: %s", error_text(err));
        char reply[4096] = "";
        int r = http_get(port, reply, sizeof reply);
        if (r < 0 || !strstr(reply, "hello-from-guest"))
                fail_msg("GET through the forward: %s, reply '%s'", strerror(-r), reply);

        assert_int_equal(vm_driver_forward(world.driver, world.name, &fw, true, NULL), 0); /* the same again */
        VmForward other = fw;
        other.guest_port = 8080;
        assert_int_equal(vm_driver_forward(world.driver, world.name, &other, true, &err), -EADDRINUSE);
        char want[128];
        snprintf(want, sizeof want, "host port tcp 127.0.0.1:%u is taken", port);
        if (!strstr(error_text(err), want))
                fail_msg("'%s' does not say '%s'", error_text(err), want);

        /* A port another process holds. */
        _cleanup_close_ int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET};
        socklen_t len = sizeof sa;
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        assert_int_equal(bind(holder, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(listen(holder, 1), 0);
        assert_int_equal(getsockname(holder, (struct sockaddr *) &sa, &len), 0);
        VmForward taken = {.protocol = "tcp", .host_ip = "127.0.0.1", .host_port = ntohs(sa.sin_port), .guest_port = 80};
        err = error_free(err);
        assert_int_equal(vm_driver_forward(world.driver, world.name, &taken, true, &err), -EADDRINUSE);

        /* All addresses (QEMU lists it as 0.0.0.0 or *): also found again. */
        VmForward all = {.protocol = "tcp", .host_port = free_port(), .guest_port = 80};
        err = error_free(err);
        if (vm_driver_forward(world.driver, world.name, &all, true, &err) < 0)
                fail_msg("forward on all addresses: %s", error_text(err));
        assert_int_equal(vm_driver_forward(world.driver, world.name, &all, true, NULL), 0);
        memset(reply, 0, sizeof reply);
        r = http_get(all.host_port, reply, sizeof reply);
        if (r < 0 || !strstr(reply, "hello-from-guest"))
                fail_msg("GET through the all-addresses forward: %s, reply '%s'", strerror(-r), reply);
        assert_int_equal(vm_driver_forward(world.driver, world.name, &all, false, NULL), 0);

        assert_int_equal(vm_driver_forward(world.driver, world.name, &fw, false, NULL), 0);
        assert_true(http_get(port, reply, sizeof reply) < 0); /* nothing listens any more */
        err = error_free(err);
        assert_int_equal(vm_driver_forward(world.driver, world.name, &fw, false, &err), -ENOENT);
}

/* virtio-fs: a file written on either side is seen on the other; the
 * read-only share refuses writes even to root in the guest. */
static void test_virtiofs(void **state) {
        char path[400], *out = NULL;
        snprintf(path, sizeof path, "%s/from-host", world.rw_dir);
        assert_int_equal(write_file_atomic(path, "host-data\n", 10, 0644), 0);
        snprintf(path, sizeof path, "%s/ro-file", world.ro_dir);
        assert_int_equal(write_file_atomic(path, "ro-data\n", 8, 0644), 0);

        guest_sh_ok("mkdir -p /mnt/rw /mnt/ro && mount -t virtiofs plrw /mnt/rw && mount -t virtiofs plro /mnt/ro",
                    NULL);
        guest_sh_ok("cat /mnt/rw/from-host /mnt/ro/ro-file && echo guest-data > /mnt/rw/from-guest", &out);
        assert_string_equal(out, "host-data\nro-data\n");
        free(out);
        snprintf(path, sizeof path, "%s/from-guest", world.rw_dir);
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        assert_int_equal(read_file_bounded(path, 4096, &data, &len), 0);
        assert_string_equal(data, "guest-data\n");

        /* Read-only, whatever the guest's mount says. */
        assert_int_not_equal(guest_sh("echo x > /mnt/ro/new", NULL), 0);
        assert_int_not_equal(guest_sh("mount -o remount,rw /mnt/ro && echo x > /mnt/ro/new2", NULL), 0);
        assert_int_not_equal(guest_sh("rm /mnt/ro/ro-file", NULL), 0);
        snprintf(path, sizeof path, "%s/new", world.ro_dir);
        assert_int_not_equal(access(path, F_OK), 0);
        snprintf(path, sizeof path, "%s/ro-file", world.ro_dir);
        assert_int_equal(access(path, F_OK), 0);
}

int main(void) {
        if (!getenv("PL_KERNEL_DIR"))
                test_program_skip_or_fail("PL_KERNEL_DIR, a guest kernel (scripts/fetch-kernel.sh prints it)");
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bridge_nic),
                cmocka_unit_test(test_user_nic_forward),
                cmocka_unit_test(test_virtiofs),
        };
        return test_run_group(tests, world_setup, world_teardown);
}
