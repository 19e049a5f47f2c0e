/* test-guest.c: real guests under QEMU (TCG here), through the libvirt
 * embedded driver, the initramfs builder and the agent as PID 1.
 *
 * Once per run: the initramfs is built from $PL_AGENT_BIN and the kernel in
 * $PL_KERNEL_DIR (scripts/fetch-kernel.sh), the busybox root disk with
 * scripts/make-test-rootfs.sh, and one embedded libvirt root is opened in a
 * temporary directory. Each test boots its own guest on a qcow2 overlay of that
 * disk and destroys it in teardown, also when an assertion failed; the group
 * teardown destroys whatever domain of ours is left and checks that no QEMU
 * process remains. Every guest's root filesystem is grown to its disk by
 * stage 1 (the overlays are larger than the images).
 *
 * Without $PL_KERNEL_DIR the test skips (tests/lib/test-skip.h), unless
 * PL_TESTS_REQUIRED=1 (scripts/test.sh), where a missing kernel is a failure. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/base/proc-util.h"
#include "images/boot/initramfs.h"
#include "images/boot/kernel-modules.h"
#include "images/ext4/ext4-writer.h"
#include "images/oci/oci-manifest.h"
#include "images/registry/registry.h"
#include "images/store/store.h"
#include "lib/agent-harness.h"
#include "lib/registry-harness.h"
#include "common/netlink/netlink.h"
#include "portlayer/guest/guest.h"

static const char *const guest_modules[] = {"virtio_pci",     "virtio_blk", "virtio_console",
                                             "virtio_rng",     "vmw_vsock_virtio_transport",
                                             "vsock_loopback", "virtio_net", "virtiofs", NULL};

typedef struct World {
        char dir[128];
        char kernel[4096];
        char release[128];
        char *initrd;
        char base[300];
        VmDriver *driver;
        pthread_mutex_t lock;
        char events[4096]; /* "name:state " for every lifecycle event seen */
        unsigned seq;
} World;

static World world = {.lock = PTHREAD_MUTEX_INITIALIZER};

typedef struct Fixture {
        Guest *guest;
        char name[64];
        char run_dir[300];
} Fixture;

static void on_event(const VmEvent *ev, void *userdata) {
        World *w = userdata;
        pthread_mutex_lock(&w->lock);
        size_t n = strlen(w->events);
        snprintf(w->events + n, sizeof w->events - n, "%s:%s ", ev->name, vm_state_to_string(ev->state));
        pthread_mutex_unlock(&w->lock);
}

static int read_line(const char *path, char *buf, size_t size) {
        FILE *f = fopen(path, "re");
        if (!f || !fgets(buf, (int) size, f)) {
                if (f)
                        fclose(f);
                return -1;
        }
        fclose(f);
        buf[strcspn(buf, "\n")] = 0;
        return 0;
}

static int world_setup(void **state) {
        const char *kdir = getenv("PL_KERNEL_DIR"), *agent = getenv("PL_AGENT_BIN"), *src = getenv("PL_SOURCE_DIR");
        if (!kdir || !agent || !src) {
                fprintf(stderr, "e2e: PL_KERNEL_DIR, PL_AGENT_BIN and PL_SOURCE_DIR are needed "
                                "(scripts/test.sh sets them)\n");
                return -1;
        }
        snprintf(world.kernel, sizeof world.kernel, "%s/vmlinuz", kdir);
        char path[4096];
        snprintf(path, sizeof path, "%s/release", kdir);
        if (read_line(path, world.release, sizeof world.release) < 0)
                return -1;
        if (test_tmpdir_make(world.dir, sizeof world.dir, "e2e") < 0)
                return -1;
        /* QEMU runs as GUEST_UID: it crosses this directory to its files */
        if (chmod(world.dir, 0711) < 0)
                return -1;

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
        snprintf(path, sizeof path, "%s/state", world.dir);
        if (vm_driver_open(&vm_driver_libvirt, &world.driver, NULL, path, on_event, &world, &e) < 0)
                goto fail;
        return 0;
fail:
        fprintf(stderr, "e2e setup: %s\n", error_text(e));
        error_free(e);
        return -1;
}

static int world_teardown(void **state) {
        int bad = 0;
        if (world.driver) {
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
        /* Only QEMU processes of this run name our directory ("[q]" keeps the
         * shell running pgrep from matching itself). */
        if (test_sh("pgrep -f '[q]emu-system.*%s' >/dev/null", world.dir) == 0) {
                fprintf(stderr, "e2e: QEMU processes of this run are still alive\n");
                test_sh("pgrep -af '[q]emu-system.*%s' >&2; pkill -KILL -f '[q]emu-system.*%s'", world.dir, world.dir);
                bad = 1;
        }
        free(world.initrd);
        test_tmpdir_remove(world.dir);
        return bad ? -1 : 0;
}

/* Every guest's QEMU runs as this uid (a per-domain DAC label), never as
 * root; it owns the guest's disk overlay and run directory. Outside the
 * daemon's default range (docs/security.md), inside no account's. */
#define GUEST_UID 270000u
static const VmOwner guest_owner = {.uid = GUEST_UID, .gid = GUEST_UID};

static void fixture_name(Fixture *f) {
        snprintf(f->name, sizeof f->name, "pl-e2e-%d-%u", (int) getpid(), ++world.seq);
        snprintf(f->run_dir, sizeof f->run_dir, "%s/%s", world.dir, f->name);
        mkdir(f->run_dir, 0700);
}

/* Boots a guest on disk (a qcow2 file), or on a fresh overlay of the base
 * disk when disk is NULL. */
static int boot_disk(Fixture *f, const char *root_disk, const char *extra_cmdline, Error **err) {
        if (!f->name[0])
                fixture_name(f);
        char disk[400];
        snprintf(disk, sizeof disk, "%s/root.qcow2", f->run_dir);
        if (root_disk)
                snprintf(disk, sizeof disk, "%s", root_disk);
        else if (test_sh("qemu-img create -q -f qcow2 -F raw -b '%s' '%s' 256M", world.base, disk) != 0)
                return error_set(err, EIO, "qemu-img create failed");
        if (chown(disk, GUEST_UID, GUEST_UID) < 0 || chmod(disk, 0600) < 0)
                return error_set_errno(err, errno, "give %s to uid %u", disk, GUEST_UID);
        GuestConfig c = {.name = f->name, .kernel = world.kernel, .initrd = world.initrd, .root_disk = disk,
                         .root_format = VM_DISK_QCOW2, .run_dir = f->run_dir, .hostname = "e2e-host",
                         .boot_timeout_ms = 90000, .extra_cmdline = extra_cmdline, .owner = &guest_owner};
        return guest_start(world.driver, &c, &f->guest, err);
}

static int boot(Fixture *f, const char *extra_cmdline, Error **err) {
        return boot_disk(f, NULL, extra_cmdline, err);
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof *f);
        *state = f;
        return f ? 0 : -1;
}

static int teardown(void **state) {
        Fixture *f = *state;
        if (f->name[0])
                (void) vm_driver_destroy(world.driver, f->name, NULL);
        guest_free(f->guest);
        free(f);
        return 0;
}

static Guest *boot_disk_ok(Fixture *f, const char *disk) {
        Error *e = NULL;
        if (boot_disk(f, disk, NULL, &e) < 0)
                fail_msg("boot: %s", error_text(e));
        fprintf(stderr, "e2e: %s: agent answered %.2f s after create\n", f->name, f->guest->boot_usec / 1e6);
        return f->guest;
}

static Guest *boot_ok(Fixture *f) {
        return boot_disk_ok(f, NULL);
}

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

static void run_ok(Guest *g, const char *const *argv, char **out) {
        int code = -1;
        assert_int_equal(harness_run(g->agent, argv, NULL, out, NULL, &code), 0);
        assert_int_equal(code, 0);
}

/* The value of "Key:" in /proc/<pid>/status of the QEMU of domain name
 * ("" when there is none). */
static void qemu_status(const char *name, const char *key, char *out, size_t size) {
        char want[128], path[300], buf[8192], line[256];
        snprintf(want, sizeof want, "guest=%s,", name);
        out[0] = 0;
        DIR *d = opendir("/proc");
        for (struct dirent *de; d && (de = readdir(d));) {
                proc_cmdline_text(atoi(de->d_name), buf, sizeof buf);
                if (!strstr(buf, "qemu-system") || !strstr(buf, want))
                        continue;
                snprintf(path, sizeof path, "/proc/%s/status", de->d_name);
                FILE *f = fopen(path, "re");
                while (f && fgets(line, sizeof line, f))
                        if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
                                const char *v = line + strlen(key) + 1 + strspn(line + strlen(key) + 1, " \t");
                                snprintf(out, size, "%.*s", (int) strcspn(v, " \t\n"), v);
                        }
                if (f)
                        fclose(f);
                break;
        }
        if (d)
                closedir(d);
}

static void test_boot_and_exec(void **state) {
        Guest *g = boot_ok(*state);
        /* its QEMU: the uid it was given, QEMU's seccomp filter, no_new_privs */
        Fixture *f = *state;
        char v[64], want[16];
        snprintf(want, sizeof want, "%u", GUEST_UID);
        qemu_status(f->name, "Uid", v, sizeof v);
        assert_string_equal(v, want);
        qemu_status(f->name, "Seccomp", v, sizeof v);
        assert_string_equal(v, "2");
        qemu_status(f->name, "NoNewPrivs", v, sizeof v);
        assert_string_equal(v, "1");
        qemu_status(f->name, "CapEff", v, sizeof v);
        assert_string_equal(v, "0000000000000000");
        char *out = NULL, expect[200];
        run_ok(g, ARGV("uname", "-r"), &out);
        snprintf(expect, sizeof expect, "%s\n", world.release);
        assert_string_equal(out, expect);
        free(out);
        run_ok(g, ARGV("cat", "/etc/hostname"), &out);
        assert_string_equal(out, "e2e-host\n");
        free(out);
        run_ok(g, ARGV("ls", "/"), &out);
        assert_non_null(strstr(out, "bin\n"));
        assert_non_null(strstr(out, "etc\n"));
        free(out);
        run_ok(g, ARGV("cat", "/etc/pl-test-marker"), &out); /* the root is our disk, not the initramfs */
        assert_string_equal(out, "pl-test-rootfs\n");
        free(out);
        run_ok(g, ARGV("sh", "-c", "id -u; test -e /dev/vda && echo raw-disk-visible || echo no-raw-disk"), &out);
        assert_string_equal(out, "0\nno-raw-disk\n");
        free(out);
}

static void test_copy_20mib(void **state) {
        Fixture *f = *state;
        Guest *g = boot_ok(f);
        assert_int_equal(test_sh("set -e; cd '%s'; mkdir -p in out; head -c 20971520 /dev/urandom > in/blob;"
                                    "tar -C in -cf in.tar blob; sha256sum < in/blob | cut -d' ' -f1 > in.sha",
                                    f->run_dir), 0);
        char path[400];
        snprintf(path, sizeof path, "%s/in.tar", f->run_dir);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        AgentCopyStats st;
        Error *e = NULL;
        uint64_t t0 = now_usec();
        if (agent_client_copy_in(g->agent, "/data", fd, &st, 120000, &e) < 0)
                fail_msg("copy-in: %s", error_text(e));
        double in_s = (now_usec() - t0) / 1e6;
        close(fd);

        char *out = NULL;
        run_ok(g, ARGV("sh", "-c", "sha256sum < /data/blob | cut -d' ' -f1"), &out);
        snprintf(path, sizeof path, "%s/in.sha", f->run_dir);
        char host_sha[128];
        assert_int_equal(read_line(path, host_sha, sizeof host_sha), 0);
        out[strcspn(out, "\n")] = 0;
        assert_string_equal(out, host_sha);
        free(out);

        snprintf(path, sizeof path, "%s/out.tar", f->run_dir);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        t0 = now_usec();
        if (agent_client_copy_out(g->agent, "/data/blob", fd, &st, 120000, &e) < 0)
                fail_msg("copy-out: %s", error_text(e));
        double out_s = (now_usec() - t0) / 1e6;
        close(fd);
        assert_int_equal(test_sh("cd '%s' && tar -C out -xf out.tar && cmp in/blob out/blob", f->run_dir), 0);
        fprintf(stderr, "e2e: 20 MiB copy-in %.2f s (%.1f MiB/s), copy-out %.2f s (%.1f MiB/s)\n", in_s, 20 / in_s,
                out_s, 20 / out_s);
}

static void test_signal_sleep(void **state) {
        Guest *g = boot_ok(*state);
        AgentProcess *p = NULL;
        AgentExecSpec spec = {.argv = ARGV("sleep", "600")};
        assert_int_equal(agent_client_exec(g->agent, &spec, &p, 10000, NULL), 0);
        AgentProcessInfo info;
        assert_int_equal(agent_process_signal(p, SIGTERM, NULL), 0);
        assert_int_equal(agent_process_wait(p, &info, 10000, NULL), 0);
        assert_int_equal(info.exit_code, 128 + SIGTERM);
        agent_process_free(p);
}

static void test_shutdown_powers_off(void **state) {
        Fixture *f = *state;
        Guest *g = boot_ok(f);
        Error *e = NULL;
        if (guest_shutdown(g, 2000, 30000, &e) < 0)
                fail_msg("shutdown: %s", error_text(e));
        VmState st;
        assert_int_equal(vm_driver_state(world.driver, f->name, &st, NULL), 0);
        assert_int_equal(st, VM_STATE_MISSING);
        char needle[100];
        snprintf(needle, sizeof needle, "%s:shutoff", f->name);
        pthread_mutex_lock(&world.lock);
        bool seen = strstr(world.events, needle) != NULL;
        pthread_mutex_unlock(&world.lock);
        assert_true(seen); /* the power-off came through libvirt's event loop */
        assert_non_null(strstr(guest_console_tail(g, 4000), "powering off"));
}

/* Size in KiB of the guest's root filesystem, from `df -k /`. */
static unsigned long long root_size_kib(Guest *g) {
        char *out = NULL;
        unsigned long long kib = 0;
        run_ok(g, ARGV("sh", "-c", "df -k / | tail -n 1"), &out);
        assert_int_equal(sscanf(out, "%*s %llu", &kib), 1);
        free(out);
        return kib;
}

/* The container disk is a 1 GiB qcow2 overlay of the 64 MiB test image:
 * stage 1 grows the root ext4 (made by mke2fs, with a resize inode) online
 * to the disk, so the container sees nearly 1 GiB, not 64 MiB, and can write
 * past the image's size. */
static void test_root_grows_to_disk(void **state) {
        Fixture *f = *state;
        fixture_name(f);
        char disk[400];
        snprintf(disk, sizeof disk, "%s/big.qcow2", f->run_dir);
        assert_int_equal(test_sh("qemu-img create -q -f qcow2 -F raw -b '%s' '%s' 1G", world.base, disk), 0);
        Guest *g = boot_disk_ok(f, disk);
        AgentGuestInfo gi;
        assert_int_equal(agent_client_guest_info(g->agent, &gi, 10000, NULL), 0);
        assert_string_equal(gi.root_grow_error, "");
        unsigned long long kib = root_size_kib(g);
        char *tail = guest_console_tail(g, 8000);
        char *line = strstr(tail, "root filesystem grown");
        fprintf(stderr, "e2e: 1 GiB disk over a 64 MiB image: df says %llu KiB; console: %.*s\n", kib,
                line ? (int) strcspn(line, "\r\n") : 4, line ? line : "none");
        free(tail);
        assert_true(kib > 900ull * 1024 && kib <= 1024ull * 1024);
        char *out = NULL;
        /* 200 MiB does not fit in the image's 64 MiB: dd fails with ENOSPC there. */
        run_ok(g, ARGV("sh", "-c", "dd if=/dev/zero of=/fill bs=1M count=200 2>/dev/null && sync && stat -c %s /fill"),
               &out);
        assert_string_equal(out, "209715200\n");
        free(out);
}

/* No init and no root: the kernel panics, panic=-1 reboots, libvirt destroys
 * the domain; the start must fail at once with the console's words, not wait
 * for its 90 s boot timeout, and leave no domain. */
static void test_panicking_guest_fails_fast(void **state) {
        Fixture *f = *state;
        Error *e = NULL;
        uint64_t t0 = now_usec();
        assert_int_equal(boot(f, "rdinit=/no-such-init", &e), -ECHILD);
        double s = (now_usec() - t0) / 1e6;
        assert_non_null(strstr(error_text(e), "Kernel panic"));
        assert_true(s < 45);
        error_free(e);
        VmState st;
        assert_int_equal(vm_driver_state(world.driver, f->name, &st, NULL), 0);
        assert_int_equal(st, VM_STATE_MISSING);
}

/* The root disk is not there: the agent serves anyway and says why. */
static void test_boot_error_is_reported(void **state) {
        Fixture *f = *state;
        Error *e = NULL;
        assert_int_equal(boot(f, "pl.root=nosuchdisk pl.wait=1000", &e), -EIO);
        assert_non_null(strstr(error_text(e), "no virtio disk with serial 'nosuchdisk'"));
        error_free(e);
        VmState st;
        assert_int_equal(vm_driver_state(world.driver, f->name, &st, NULL), 0);
        assert_int_equal(st, VM_STATE_MISSING);
}

/* Inside the guest, a client reaches the agent's vsock listener over vsock
 * loopback (CID 1), as a second session beside the host's: only because the
 * guest was booted with pl.vsock_local=1 (by default only the host may). */
static void test_vsock_loopback_in_guest(void **state) {
        Fixture *f = *state;
        Error *e = NULL;
        if (boot(f, "pl.vsock_local=1", &e) < 0)
                fail_msg("boot: %s", error_text(e));
        Guest *g = f->guest;
        const char *cli = getenv("PL_AGENT_CLI_STATIC");
        assert_non_null(cli);
        assert_int_equal(test_sh("set -e; cd '%s'; mkdir -p cli/usr/bin; cp '%s' cli/usr/bin/pl-agent-cli;"
                                    "tar -C cli -cf cli.tar usr", f->run_dir, cli), 0);
        char path[400];
        snprintf(path, sizeof path, "%s/cli.tar", f->run_dir);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        AgentCopyStats st;
        assert_int_equal(agent_client_copy_in(g->agent, "/", fd, &st, 60000, NULL), 0);
        close(fd);

        char *out = NULL;
        int code = -1;
        assert_int_equal(harness_run(g->agent, ARGV("pl-agent-cli", "--vsock", "1:1024", "--connect-timeout", "20000",
                                                    "exec", "--", "cat", "/etc/hostname"),
                                     NULL, &out, NULL, &code), 0);
        fprintf(stderr, "e2e: in-guest vsock client: exit %d, output %s", code, out);
        assert_int_equal(code, 0);
        assert_string_equal(out, "e2e-host\n");
        free(out);
        assert_int_equal(agent_client_ping(g->agent, 5000, NULL), 0); /* the host's session was not disturbed */
}

/* The whole image path: an OCI image built by umoci is pushed with skopeo to
 * a real registry on loopback, pulled into the image store (layers written
 * into ext4 by the ext4 writer), given a qcow2 container disk, and booted:
 * the container sees the image's files with the second layer applied. */
static RegistryHarness image_registry;
static Store *image_store;

static void test_boot_pulled_image(void **state) {
        Fixture *f = *state;
        const char *missing = registry_harness_missing_tool();
        if (missing) /* a failure, not a skip: e2e always has the image tools */
                fail_msg("%s is missing (scripts/setup.sh)", missing);
        fixture_name(f);
        char layout[400], store_dir[400], disk[400];
        snprintf(layout, sizeof layout, "%s/layout", f->run_dir);
        snprintf(store_dir, sizeof store_dir, "%s/store", f->run_dir);
        snprintf(disk, sizeof disk, "%s/container.qcow2", f->run_dir);
        assert_int_equal(registry_harness_make_layout(layout), 0);
        assert_int_equal(registry_harness_start(&image_registry, NULL, NULL), 0);
        assert_int_equal(registry_harness_push(&image_registry, layout, "layered", "e2e/busybox:layered", false), 0);

        char name[200];
        snprintf(name, sizeof name, "%s/e2e/busybox:layered", image_registry.host);
        Error *e = NULL;
        OciRef *ref = NULL;
        RegistryClient *rc = NULL;
        ImageSource *src = NULL;
        StoreImage *img = NULL;
        if (store_open(store_dir, &image_store, &e) < 0 || oci_ref_parse(name, &ref, &e) < 0 ||
            registry_client_new(NULL, &rc, &e) < 0 || registry_source_new(rc, ref, &src, &e) < 0 ||
            store_pull(image_store, src, name, NULL, &img, &e) < 0 ||
            store_container_disk_create(image_store, name, disk, 256ull << 20, &e) < 0)
                fail_msg("pull %s: %s", name, error_text(e));
        image_source_free(src);
        registry_client_free(rc);
        oci_ref_free(ref);
        registry_harness_stop(&image_registry);
        assert_int_equal(img->layers.n, 2);
        store_image_free(img);

        Guest *g = boot_disk_ok(f, disk);
        /* Our ext4 writer makes no resize inode: the kernel's online resize
         * converts it to meta_bg and still grows it to the 256 MiB disk. */
        AgentGuestInfo gi;
        assert_int_equal(agent_client_guest_info(g->agent, &gi, 10000, NULL), 0);
        assert_string_equal(gi.root_grow_error, "");
        unsigned long long kib = root_size_kib(g);
        fprintf(stderr, "e2e: 256 MiB disk over a pulled image: df says %llu KiB\n", kib);
        assert_true(kib > 200ull * 1024 && kib <= 256ull * 1024);
        char *out = NULL;
        run_ok(g, ARGV("cat", "/etc/pl-test-marker", "/etc/layer2", "/etc/opaque/new"), &out);
        assert_string_equal(out, "pl-test-image\nlayer 2\nnew in layer 2\n");
        free(out);
        run_ok(g, ARGV("sh", "-c", "test ! -e /etc/deleted-later && ls /etc/opaque && stat -c %a:%u /usr/bin/suid-tool"),
               &out);
        assert_string_equal(out, "new\n4755:0\n");
        free(out);
        /* /etc/many (1,500 entries) is an htree written by our ext4 writer:
         * the guest kernel lists it and finds a name in it. */
        run_ok(g, ARGV("sh", "-c", "ls /etc/many | wc -l && cat /etc/many/entry-with-a-longer-name-0777"), &out);
        assert_string_equal(out, "1500\n0777\n");
        free(out);
        /* The container disk is writable, the image under it is not touched. */
        run_ok(g, ARGV("sh", "-c", "echo written > /etc/new-file && cat /etc/new-file"), &out);
        assert_string_equal(out, "written\n");
        free(out);
        Error *e2 = NULL;
        assert_int_equal(store_remove(image_store, name, &e2), -EBUSY); /* a container uses it */
        error_free(e2);
}

/* A two-level htree written by our ext4 writer, read by the guest kernel:
 * the busybox layer of the test image plus a generated layer whose /big
 * holds 70,000 entries (past 507 leaf blocks, so the index has two levels).
 * The guest lists it, finds names in it and misses a name not in it. */
static void test_big_htree_in_guest(void **state) {
        Fixture *f = *state;
        fixture_name(f);
        char layout[400], path[600], disk[400], qcow[400];
        snprintf(layout, sizeof layout, "%s/layout", f->run_dir);
        snprintf(disk, sizeof disk, "%s/big.ext4", f->run_dir);
        snprintf(qcow, sizeof qcow, "%s/big.qcow2", f->run_dir);
        assert_int_equal(registry_harness_make_layout(layout), 0);
        char *mdigest = registry_harness_layout_digest(layout, "latest");
        assert_non_null(mdigest);
        snprintf(path, sizeof path, "%s/blobs/sha256/%s", layout, mdigest + 7);
        free(mdigest);
        char *text = NULL;
        size_t len = 0;
        assert_int_equal(read_file_bounded(path, 1 << 20, &text, &len), 0);
        OciManifest *m = NULL;
        assert_int_equal(oci_manifest_parse(text, len, &m, NULL), 0);
        free(text);
        assert_int_equal(test_sh("set -e; cd '%s'; mkdir -p t/big; cd t/big;"
                                    "seq -f 'name-%%06g-of-the-big-directory' 1 70000 | xargs touch;"
                                    "cd ..; tar -cf ../big.tar big",
                                    f->run_dir),
                         0);

        Error *e = NULL;
        Ext4Writer *w = NULL;
        uint64_t size = ext4_size_for(8ull << 20, 72000); /* an inode per entry */
        assert_int_equal(ext4_writer_new(&w, disk, size, &e), 0);
        snprintf(path, sizeof path, "%s/blobs/sha256/%s", layout, m->layers[0].digest + 7);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(ext4_writer_apply_layer(w, fd, NULL, &e), 0);
        close(fd);
        snprintf(path, sizeof path, "%s/big.tar", f->run_dir);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        if (ext4_writer_apply_layer(w, fd, NULL, &e) < 0)
                fail_msg("big layer: %s", error_text(e));
        close(fd);
        assert_int_equal(ext4_writer_finish(w, &e), 0);
        ext4_writer_free(w);
        oci_manifest_free(m);
        assert_int_equal(test_sh("debugfs -R 'htree /big' '%s' 2>/dev/null | grep -q 'Indirect levels: 1'", disk), 0);
        assert_int_equal(test_sh("qemu-img create -q -f qcow2 -F raw -b '%s' '%s' %llu", disk, qcow,
                                    (unsigned long long) size),
                         0);

        Guest *g = boot_disk_ok(f, qcow);
        char *out = NULL;
        run_ok(g, ARGV("sh", "-c", "ls /big | wc -l; ls -d /big/name-000001-of-the-big-directory "
                                   "/big/name-035000-of-the-big-directory /big/name-070000-of-the-big-directory;"
                                   "test ! -e /big/name-070001-of-the-big-directory && echo absent"),
               &out);
        assert_string_equal(out, "70000\n/big/name-000001-of-the-big-directory\n/big/name-035000-of-the-big-directory\n"
                                 "/big/name-070000-of-the-big-directory\nabsent\n");
        free(out);
}

static int teardown_image(void **state) {
        Fixture *f = *state;
        char disk[400];
        snprintf(disk, sizeof disk, "%s/container.qcow2", f->run_dir);
        int r = teardown(state);
        registry_harness_stop(&image_registry);
        if (image_store) {
                (void) store_container_disk_remove(image_store, disk, NULL);
                image_store = store_free(image_store);
        }
        return r;
}

/* ---- setup: a volume, a share and a NIC configured by the agent ----------- */

#define SETUP_BRIDGE "plbrsetup0"
#define SETUP_TAP "pltapsetup0"
#define SETUP_MAC "0a:70:6c:00:00:20"
#define SETUP_HOST "10.97.0.1"
#define SETUP_GUEST "10.97.0.2"
#define SETUP_SERIAL "pl-vol-e2e"

/* A shell line in the guest: its exit code (-1 fails the test), output in *out. */
static int guest_sh(Guest *g, const char *line, char **out) {
        int code = harness_sh(g->agent, line, out);
        assert_true(code >= 0);
        return code;
}

/* The bridge the NIC's tap goes on, made through plnetlink in this test's
 * namespace, with the host's address on it. */
static void setup_bridge_make(void) {
        _cleanup_netlink_ Netlink *nl = NULL;
        _cleanup_error_ Error *e = NULL;
        int br = 0;
        if (netlink_open(&nl, &e) < 0 || netlink_bridge_add(nl, SETUP_BRIDGE, &e) < 0 ||
            netlink_link_index(nl, SETUP_BRIDGE, &br, &e) < 0 || netlink_addr_add(nl, br, SETUP_HOST "/24", &e) < 0 ||
            netlink_link_set(nl, br, true, 0, &e) < 0)
                fail_msg("bridge: %s", error_text(e));
}

static void setup_bridge_remove(void) {
        _cleanup_netlink_ Netlink *nl = NULL;
        int br = 0;
        if (netlink_open(&nl, NULL) >= 0 && netlink_link_index(nl, SETUP_BRIDGE, &br, NULL) >= 0)
                (void) netlink_link_del(nl, br, NULL);
}

static int teardown_setup(void **state) {
        int r = teardown(state);
        setup_bridge_remove();
        return r;
}

static Guest *setup_boot(Fixture *f, const char *volume, const char *share) {
        char disk[400];
        snprintf(disk, sizeof disk, "%s/root.qcow2", f->run_dir);
        assert_int_equal(test_sh("qemu-img create -q -f qcow2 -F raw -b '%s' '%s' 256M", world.base, disk), 0);
        /* the root disk and the volume belong to the VM's uid while attached */
        assert_int_equal(chown(disk, GUEST_UID, GUEST_UID), 0);
        assert_int_equal(chown(volume, GUEST_UID, GUEST_UID), 0);
        const VmNic nic = {.type = VM_NIC_BRIDGE, .mac = SETUP_MAC, .bridge = SETUP_BRIDGE, .tap = SETUP_TAP};
        const VmDisk extra = {.path = volume, .format = VM_DISK_RAW, .serial = SETUP_SERIAL};
        const VmFilesystem fs = {.source = share, .tag = "plshare"};
        GuestConfig c = {.name = f->name, .kernel = world.kernel, .initrd = world.initrd, .root_disk = disk,
                         .root_format = VM_DISK_QCOW2, .run_dir = f->run_dir, .hostname = "e2e-host",
                         .boot_timeout_ms = 90000, .nics = &nic, .n_nics = 1, .extra_disks = &extra,
                         .n_extra_disks = 1, .filesystems = &fs, .n_filesystems = 1, .owner = &guest_owner};
        _cleanup_error_ Error *e = NULL;
        if (guest_start(world.driver, &c, &f->guest, &e) < 0)
                fail_msg("boot: %s", error_text(e));
        return f->guest;
}

/* The container's volume (an empty ext4 image on an extra virtio-blk disk),
 * a read-only virtio-fs share and a NIC on a bridge, all configured by the
 * agent's setup; then /etc through etc. A setup whose second disk never
 * comes fails and leaves the first unmounted again. After a clean shutdown
 * the volume is a clean ext4 with the guest's file in it. */
static void test_setup_volume_network_etc(void **state) {
        Fixture *f = *state;
        if (!getenv("PL_TEST_NETNS"))
                test_skip_or_fail("a network namespace of its own (tests/lib/in-netns.sh)");
        const char *missing = test_missing_tool("mkfs.ext4 dumpe2fs debugfs");
        if (missing)
                test_skip_or_fail(missing);
        fixture_name(f);
        char volume[400], share[400], path[500];
        snprintf(volume, sizeof volume, "%s/volume.ext4", f->run_dir);
        snprintf(share, sizeof share, "%s/share", f->run_dir);
        assert_int_equal(test_sh("truncate -s 32M '%s' && mkfs.ext4 -q -F '%s'", volume, volume), 0);
        assert_int_equal(mkdir(share, 0755), 0);
        snprintf(path, sizeof path, "%s/from-host", share);
        test_write_file(path, "host-data\n");
        setup_bridge_make();
        Guest *g = setup_boot(f, volume, share);
        char *out = NULL;

        /* All or nothing: the second disk never appears, the first is unmounted again. */
        const AgentMount bad[] = {{.kind = AGENT_MOUNT_BLOCK, .source = SETUP_SERIAL, .target = "/data"},
                                  {.kind = AGENT_MOUNT_BLOCK, .source = "pl-nodisk", .target = "/nodisk"}};
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(agent_client_setup(g->agent, NULL, 0, bad, 2, 3000, &e), -ENODEV);
        assert_non_null(strstr(error_text(e), "pl-nodisk"));
        e = error_free(e);
        assert_int_equal(guest_sh(g, "grep -c ' /data ' /proc/mounts", &out), 1); /* none */
        free(out);

        const AgentInterface nic = {.mac = SETUP_MAC, .address = SETUP_GUEST "/24", .gateway = SETUP_HOST, .mtu = 1400};
        const AgentMount mounts[] = {
                {.kind = AGENT_MOUNT_BLOCK, .source = SETUP_SERIAL, .target = "/data"},
                {.kind = AGENT_MOUNT_VIRTIOFS, .source = "plshare", .target = "/mnt/share", .read_only = true},
        };
        if (agent_client_setup(g->agent, &nic, 1, mounts, 2, 30000, &e) < 0)
                fail_msg("setup: %s", error_text(e));
        assert_int_equal(agent_client_setup(g->agent, &nic, 1, mounts, 2, 30000, NULL), -EALREADY);

        /* The volume: ext4, writable, in the container's view of its root. */
        assert_int_equal(guest_sh(g, "echo guest-data > /data/f && sync && cat /data/f && "
                                     "grep ' /data ' /proc/mounts | cut -d' ' -f3", &out), 0);
        assert_string_equal(out, "guest-data\next4\n");
        free(out);
        /* The share: the host's file, read-only in the guest. */
        assert_int_equal(guest_sh(g, "cat /mnt/share/from-host && grep ' /mnt/share ' /proc/mounts | cut -d' ' -f3,4 "
                                     "| cut -d, -f1", &out), 0);
        assert_string_equal(out, "host-data\nvirtiofs ro\n");
        free(out);
        assert_int_not_equal(guest_sh(g, "echo x > /mnt/share/new", NULL), 0);

        /* The NIC: found by its MAC, MTU, address, default route; the bridge answers. */
        assert_int_equal(guest_sh(g, "cat /sys/class/net/eth0/address /sys/class/net/eth0/mtu /sys/class/net/lo/flags",
                                  &out), 0);
        assert_string_equal(out, SETUP_MAC "\n1400\n0x9\n"); /* lo: IFF_UP | IFF_LOOPBACK */
        free(out);
        assert_int_equal(guest_sh(g, "ip addr show dev eth0; ip route", &out), 0);
        if (!strstr(out, "inet " SETUP_GUEST "/24 ") || !strstr(out, "default via " SETUP_HOST " dev eth0"))
                fail_msg("guest network: %s", out);
        free(out);
        assert_int_equal(guest_sh(g, "for i in 1 2 3 4 5; do ping -c1 -W2 " SETUP_HOST " >/dev/null && exit 0; done;"
                                     " exit 1", NULL), 0);

        /* /etc, and the guest's hostname with it. */
        static const char *const names[] = {"db", "db.internal"};
        static const char *const dns[] = {SETUP_HOST};
        const AgentHostEntry hosts[] = {{"10.97.0.9", names, 2}};
        const AgentEtc etc = {.write_hostname = true, .write_hosts = true, .write_resolv = true,
                              .hostname = "e2e-setup", .hosts = hosts, .n_hosts = 1, .nameservers = dns,
                              .n_nameservers = 1};
        if (agent_client_write_etc(g->agent, &etc, 10000, &e) < 0)
                fail_msg("etc: %s", error_text(e));
        assert_int_equal(guest_sh(g, "hostname; cat /etc/hostname; tail -n 1 /etc/hosts; cat /etc/resolv.conf", &out), 0);
        assert_string_equal(out, "e2e-setup\ne2e-setup\n10.97.0.9\tdb db.internal\nnameserver " SETUP_HOST "\n");
        free(out);

        /* A clean power-off unmounts the volume: clean, no journal to replay. */
        if (guest_shutdown(g, 2000, 30000, &e) < 0)
                fail_msg("shutdown: %s", error_text(e));
        assert_int_equal(test_sh("dumpe2fs -h '%s' 2>/dev/null | grep -Eq '^Filesystem state: +clean$'", volume), 0);
        assert_int_not_equal(test_sh("dumpe2fs -h '%s' 2>/dev/null | grep -q needs_recovery", volume), 0);
        assert_int_equal(test_sh_out(&out, NULL, "debugfs -R 'cat /f' '%s' 2>/dev/null", volume), 0);
        assert_string_equal(out, "guest-data\n");
        free(out);
}

/* ---- the warm pool (docs/templates.md) ------------------------------------ */

static GuestPool *test_pool;

/* The owner hooks a pool's user gives (the daemon claims from its uid
 * range): pool guest n runs as POOL_UID + n; a release must come only once
 * that guest's QEMU is gone; an adopt gives the container's disk to the
 * taken guest's uid before it is hot-plugged. */
#define POOL_UID 270010u
static struct {
        pthread_mutex_t lock;
        unsigned claims, releases, released_live;
        char adopted[64];
        uint32_t adopted_uid;
        const char *disk;
} hooks = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int hook_claim(void *userdata, const char *name, VmOwner *ret, Error **err) {
        (void) userdata, (void) name, (void) err;
        pthread_mutex_lock(&hooks.lock);
        uint32_t uid = POOL_UID + hooks.claims++;
        pthread_mutex_unlock(&hooks.lock);
        *ret = (VmOwner){.uid = uid, .gid = uid};
        return 0;
}

static void hook_release(void *userdata, const char *name, const VmOwner *owner) {
        (void) userdata, (void) owner;
        char v[64];
        qemu_status(name, "Uid", v, sizeof v);
        pthread_mutex_lock(&hooks.lock);
        hooks.releases++;
        hooks.released_live += v[0] != 0;
        pthread_mutex_unlock(&hooks.lock);
}

static int hook_adopt(void *userdata, const char *pool_name, const VmOwner *owner, Error **err) {
        (void) userdata;
        snprintf(hooks.adopted, sizeof hooks.adopted, "%s", pool_name);
        hooks.adopted_uid = owner ? owner->uid : 0;
        if (owner && (chown(hooks.disk, owner->uid, owner->gid) < 0 || chmod(hooks.disk, 0600) < 0))
                return error_set_errno(err, errno, "give %s to uid %u", hooks.disk, owner->uid);
        return 0;
}

static int teardown_pool(void **state) {
        test_pool = guest_pool_free(test_pool); /* destroys the guests not taken */
        return teardown(state);
}

static bool domain_listed(const char *name, bool pool) {
        char **names = NULL, **keys = NULL;
        size_t n = 0;
        bool found = false;
        int r = pool ? vm_driver_list_pool(world.driver, &names, &keys, &n, NULL)
                     : vm_driver_list_ours(world.driver, &names, &n, NULL);
        assert_int_equal(r, 0);
        for (size_t i = 0; i < n; i++)
                found = found || strcmp(names[i], name) == 0;
        vm_names_free(names, n);
        vm_names_free(keys, n);
        return found;
}

static void pool_wait_ready(void) {
        for (int i = 0; i < 1800 && guest_pool_ready(test_pool) < 1; i++)
                usleep(100 * 1000);
        assert_int_equal(guest_pool_ready(test_pool), 1);
}

/* A guest taken from the pool runs like a cold-booted one on its own root
 * disk; the pool guest was never one of ours until adopted; a changed
 * initramfs (the agent lives there) makes a ready pool guest stale. */
static void test_pool_take_and_stale(void **state) {
        Fixture *f = *state;
        fixture_name(f);
        char disk[400], pool_dir[300];
        snprintf(disk, sizeof disk, "%s.qcow2", f->run_dir); /* a take replaces the run directory */
        assert_int_equal(test_sh("qemu-img create -q -f qcow2 -F raw -b '%s' '%s' 256M", world.base, disk), 0);
        snprintf(pool_dir, sizeof pool_dir, "%s/pool", world.dir);
        GuestConfig c = {.name = f->name, .container_id = f->name, .kernel = world.kernel, .initrd = world.initrd,
                         .root_disk = disk, .root_format = VM_DISK_QCOW2, .run_dir = f->run_dir,
                         .hostname = "pooled", .boot_timeout_ms = 90000, .pool_adopt = hook_adopt};
        hooks.disk = disk;
        GuestPoolConfig pc = {.dir = pool_dir, .size = 1, .guest = c, .owner_claim = hook_claim,
                              .owner_release = hook_release};
        Error *e = NULL;
        assert_int_equal(guest_pool_new(world.driver, &pc, &test_pool, &e), 0);
        pool_wait_ready();
        char **names = NULL, **keys = NULL;
        size_t n = 0;
        assert_int_equal(vm_driver_list_pool(world.driver, &names, &keys, &n, NULL), 0);
        assert_int_equal(n, 1);
        char pooled[64];
        snprintf(pooled, sizeof pooled, "%s", names[0]);
        vm_names_free(names, n);
        vm_names_free(keys, n);
        assert_false(domain_listed(pooled, false));
        /* its QEMU runs as the uid claimed for it */
        char v[64], want[16];
        qemu_status(pooled, "Uid", v, sizeof v);
        snprintf(want, sizeof want, "%u", POOL_UID);
        assert_string_equal(v, want);

        /* another shape does not fit and changes nothing */
        GuestConfig bigger = c;
        bigger.memory_mib = 320;
        Guest *g = NULL;
        assert_int_equal(guest_pool_take(test_pool, &bigger, &g, &e), -EAGAIN);
        e = error_free(e);
        assert_int_equal(guest_pool_ready(test_pool), 1);

        if (guest_pool_take(test_pool, &c, &f->guest, &e) < 0)
                fail_msg("take: %s", error_text(e));
        snprintf(f->name, sizeof f->name, "%s", f->guest->name); /* teardown destroys it */
        /* the claim went to the taker, with the disk, and is not released */
        assert_string_equal(hooks.adopted, pooled);
        assert_int_equal(hooks.adopted_uid, POOL_UID);
        qemu_status(pooled, "Uid", v, sizeof v);
        assert_string_equal(v, want);
        struct stat st;
        assert_int_equal(stat(f->run_dir, &st), 0);
        assert_int_equal(st.st_uid, POOL_UID);
        fprintf(stderr, "e2e: %s taken from the pool in %.3f s\n", f->name, f->guest->boot_usec / 1e6);
        assert_true(domain_listed(pooled, false));
        assert_false(domain_listed(pooled, true));
        char *out = NULL;
        run_ok(f->guest, ARGV("sh", "-c", "hostname; cat /etc/hostname; df -k / | tail -n 1 | awk '{print ($2 > 200000)}'"),
               &out);
        assert_string_equal(out, "pooled\npooled\n1\n");
        free(out);
        AgentGuestInfo info;
        assert_int_equal(agent_client_guest_info(f->guest->agent, &info, 10000, NULL), 0);
        assert_string_equal(info.root, "/mnt/root");

        /* a new initramfs file (same bytes, new inode): the ready guest is stale */
        pool_wait_ready();
        assert_int_equal(test_sh("cp '%s' '%s.new' && mv '%s.new' '%s'", world.initrd, world.initrd, world.initrd,
                                 world.initrd), 0);
        char run2[320], disk2[400];
        snprintf(run2, sizeof run2, "%s-2", f->run_dir);
        snprintf(disk2, sizeof disk2, "%s-2.qcow2", f->run_dir);
        assert_int_equal(test_sh("qemu-img create -q -f qcow2 -F raw -b '%s' '%s' 256M", world.base, disk2), 0);
        GuestConfig c2 = c;
        c2.run_dir = run2, c2.root_disk = disk2;
        hooks.disk = disk2;
        pthread_mutex_lock(&hooks.lock);
        unsigned releases = hooks.releases;
        pthread_mutex_unlock(&hooks.lock);
        assert_int_equal(releases, 0);
        assert_int_equal(guest_pool_take(test_pool, &c2, &g, &e), -EAGAIN);
        e = error_free(e);
        assert_null(g);
        /* the stale guest was destroyed, then its uid given back */
        pthread_mutex_lock(&hooks.lock);
        releases = hooks.releases;
        unsigned live = hooks.released_live;
        pthread_mutex_unlock(&hooks.lock);
        assert_int_equal(releases, 1);
        assert_int_equal(live, 0);
}

int main(void) {
        if (!getenv("PL_KERNEL_DIR"))
                test_program_skip_or_fail("PL_KERNEL_DIR, a guest kernel (scripts/fetch-kernel.sh prints it)");
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_boot_and_exec, setup, teardown),
                cmocka_unit_test_setup_teardown(test_copy_20mib, setup, teardown),
                cmocka_unit_test_setup_teardown(test_signal_sleep, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shutdown_powers_off, setup, teardown),
                cmocka_unit_test_setup_teardown(test_root_grows_to_disk, setup, teardown),
                cmocka_unit_test_setup_teardown(test_panicking_guest_fails_fast, setup, teardown),
                cmocka_unit_test_setup_teardown(test_boot_error_is_reported, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vsock_loopback_in_guest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_boot_pulled_image, setup, teardown_image),
                cmocka_unit_test_setup_teardown(test_big_htree_in_guest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_setup_volume_network_etc, setup, teardown_setup),
                cmocka_unit_test_setup_teardown(test_pool_take_and_stale, setup, teardown_pool),
        };
        return test_run_group(tests, world_setup, world_teardown);
}
