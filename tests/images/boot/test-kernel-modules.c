/* test-kernel-modules.c: resolving module names to .ko files in load order
 * from a fake modules.dep made here (diamond dependency, built-in modules,
 * '-' vs '_', malformed files, cycles, size limits), and, when PL_MODULAR_KERNEL_DIR
 * names a kernel unpacked by scripts/fetch-kernel.sh, from the real one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "images/boot/initramfs.h"
#include "images/boot/kernel-modules.h"

static const char fake_dep[] =
        "kernel/a/top.ko: kernel/b/left.ko kernel/c/right.ko kernel/d/base.ko\n"
        "kernel/b/left.ko: kernel/d/base.ko\n"
        "kernel/c/right.ko: kernel/d/base.ko\n"
        "kernel/d/base.ko:\n"
        "\n"
        "kernel/e/dash-name.ko: kernel/d/base.ko\n"
        "kernel/g/under_score.ko:\n"
        "kernel/f/solo.ko.xz:\n";

static const char fake_builtin[] = "kernel/fs/ext4/ext4.ko\nkernel/crypto/crc32c_generic.ko\n";

typedef struct Fixture {
        char dir[64];
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof *f);
        if (!f || test_tmpdir_make(f->dir, sizeof f->dir, "kmod-test") < 0)
                return -1;
        test_put(f->dir, "modules.dep", fake_dep);
        test_put(f->dir, "modules.builtin", fake_builtin);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        int r = test_tmpdir_remove(f->dir);
        free(f);
        return r < 0 ? -1 : 0;
}

/* Resolves names (NULL-terminated) in dir and compares with want (NULL-terminated). */
static void expect_order(const char *dir, const char *const *names, const char *const *want) {
        _cleanup_error_ Error *e = NULL;
        _cleanup_kernel_modules_ char **paths = NULL;
        size_t n = 99, want_n = 0;
        int r = kernel_modules_resolve(dir, names, &paths, &n, &e);
        if (r < 0)
                fail_msg("resolve failed: %s", error_text(e));
        while (want[want_n])
                want_n++;
        assert_int_equal(n, want_n);
        for (size_t i = 0; i < n; i++)
                assert_string_equal(paths[i], want[i]);
        assert_null(paths[n]);
}

/* Resolves names and expects failure with code, the message containing needle. */
static void expect_error(const char *dir, const char *const *names, int code, const char *needle) {
        _cleanup_error_ Error *e = NULL;
        char **paths = NULL;
        assert_int_equal(kernel_modules_resolve(dir, names, &paths, NULL, &e), -code);
        assert_null(paths);
        assert_non_null(e);
        if (!strstr(e->message, needle))
                fail_msg("message '%s' lacks '%s'", e->message, needle);
}

static void test_diamond(void **state) {
        Fixture *f = *state;
        expect_order(f->dir, (const char *[]){"top", NULL},
                     (const char *[]){"kernel/d/base.ko", "kernel/c/right.ko", "kernel/b/left.ko", "kernel/a/top.ko",
                                      NULL});
}

static void test_shared_dependencies_once(void **state) {
        Fixture *f = *state;
        expect_order(f->dir, (const char *[]){"left", "right", "top", "left", NULL},
                     (const char *[]){"kernel/d/base.ko", "kernel/b/left.ko", "kernel/c/right.ko", "kernel/a/top.ko",
                                      NULL});
}

static void test_dash_and_underscore(void **state) {
        Fixture *f = *state;
        const char *const want_dash[] = {"kernel/d/base.ko", "kernel/e/dash-name.ko", NULL};
        expect_order(f->dir, (const char *[]){"dash_name", NULL}, want_dash);
        expect_order(f->dir, (const char *[]){"dash-name", NULL}, want_dash);
        expect_order(f->dir, (const char *[]){"under-score", NULL}, (const char *[]){"kernel/g/under_score.ko", NULL});
}

static void test_compressed_file_name(void **state) {
        Fixture *f = *state;
        expect_order(f->dir, (const char *[]){"solo", NULL}, (const char *[]){"kernel/f/solo.ko.xz", NULL});
}

static void test_builtin(void **state) {
        Fixture *f = *state;
        expect_order(f->dir, (const char *[]){"ext4", "crc32c-generic", NULL}, (const char *[]){NULL});
        expect_order(f->dir, (const char *[]){"ext4", "left", NULL},
                     (const char *[]){"kernel/d/base.ko", "kernel/b/left.ko", NULL});
}

static void test_missing_module(void **state) {
        Fixture *f = *state;
        expect_error(f->dir, (const char *[]){"left", "nosuch", NULL}, ENOENT, "nosuch");
        /* Without modules.builtin, a built-in name is unknown too. */
        char path[128];
        snprintf(path, sizeof path, "%s/modules.builtin", f->dir);
        assert_int_equal(unlink(path), 0);
        expect_error(f->dir, (const char *[]){"ext4", NULL}, ENOENT, "ext4");
        expect_order(f->dir, (const char *[]){"base", NULL}, (const char *[]){"kernel/d/base.ko", NULL});
}

static void test_missing_modules_dep(void **state) {
        expect_error("/nonexistent-pl-modules", (const char *[]){"base", NULL}, ENOENT, "modules.dep");
}

static void test_invalid_names(void **state) {
        Fixture *f = *state;
        expect_error(f->dir, (const char *[]){"kernel/d/base", NULL}, EINVAL, "invalid kernel module name");
        expect_error(f->dir, (const char *[]){"", NULL}, EINVAL, "invalid kernel module name");
}

static void test_malformed(void **state) {
        Fixture *f = *state;
        test_put(f->dir, "modules.dep", "kernel/d/base.ko:\nkernel/x/nocolon.ko kernel/d/base.ko\n");
        expect_error(f->dir, (const char *[]){"base", NULL}, EINVAL, "line 2: no ':'");
        test_put(f->dir, "modules.dep", "kernel/d/base.ko:\n../evil.ko: kernel/d/base.ko\n");
        expect_error(f->dir, (const char *[]){"base", NULL}, EINVAL, "../evil.ko");
        test_put(f->dir, "modules.dep", "kernel/d/base.ko: /abs/dep.ko\n");
        expect_error(f->dir, (const char *[]){"base", NULL}, EINVAL, "/abs/dep.ko");
        test_put(f->dir, "modules.dep", "kernel/d/base.ko:\nkernel/d/base.ko:\n");
        expect_error(f->dir, (const char *[]){"base", NULL}, EINVAL, "listed twice");
        test_put(f->dir, "modules.dep", "kernel/d/base.ko: kernel/z/ghost.ko\n");
        expect_error(f->dir, (const char *[]){"base", NULL}, EINVAL, "no line of its own");
}

static void test_empty_modules_dep(void **state) {
        Fixture *f = *state;
        test_put(f->dir, "modules.dep", "");
        expect_order(f->dir, (const char *[]){"ext4", NULL}, (const char *[]){NULL});
        expect_error(f->dir, (const char *[]){"base", NULL}, ENOENT, "base");
}

static void test_cycle(void **state) {
        Fixture *f = *state;
        test_put(f->dir, "modules.dep", "kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/a.ko\n");
        expect_error(f->dir, (const char *[]){"a", NULL}, ELOOP, "cycle");
}

static void test_limits(void **state) {
        Fixture *f = *state;
        size_t len = KERNEL_MODULES_MAX_LINE + 16;
        char *line = malloc(len + 2);
        assert_non_null(line);
        memset(line, 'x', len);
        memcpy(line, "kernel/long.ko:", strlen("kernel/long.ko:"));
        strcpy(line + len, "\n");
        test_put(f->dir, "modules.dep", line);
        free(line);
        expect_error(f->dir, (const char *[]){"long", NULL}, EINVAL, "longer than");

        char path[128];
        snprintf(path, sizeof path, "%s/modules.dep", f->dir);
        int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (off_t) KERNEL_MODULES_MAX_FILE + 1), 0);
        close(fd);
        expect_error(f->dir, (const char *[]){"base", NULL}, EFBIG, "larger than");
}

static void test_find_dir(void **state) {
        Fixture *f = *state;
        _cleanup_error_ Error *e = NULL;
        _cleanup_free_ char *found = NULL, *lib = NULL;
        assert_int_equal(kernel_modules_find_dir(f->dir, &found, &e), 0);
        assert_string_equal(found, f->dir);

        char kdir[128];
        snprintf(kdir, sizeof kdir, "%s/kernel", f->dir);
        assert_int_equal(mkdir(kdir, 0755), 0);
        assert_int_equal(kernel_modules_find_dir(kdir, &lib, &e), -ENOENT);
        e = error_free(e);

        char path[256];
        snprintf(path, sizeof path, "%s/lib", kdir);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof path, "%s/lib/modules", kdir);
        assert_int_equal(mkdir(path, 0755), 0);
        assert_int_equal(kernel_modules_find_dir(kdir, &lib, &e), -ENOENT);
        e = error_free(e);
        snprintf(path, sizeof path, "%s/lib/modules/6.1.0-test", kdir);
        assert_int_equal(mkdir(path, 0755), 0);
        free(found);
        found = NULL;
        assert_int_equal(kernel_modules_find_dir(kdir, &found, &e), 0);
        assert_string_equal(found, path);

        snprintf(path, sizeof path, "%s/lib/modules/6.2.0-test", kdir);
        assert_int_equal(mkdir(path, 0755), 0);
        assert_int_equal(kernel_modules_find_dir(kdir, &lib, &e), -ENOTUNIQ);
        assert_non_null(strstr(e->message, "several"));
}

/* Index of the path ending in "/<file>" in paths, or -1. */
static int index_of(char **paths, const char *file) {
        for (int i = 0; paths[i]; i++) {
                const char *base = strrchr(paths[i], '/');
                if (strcmp(base ? base + 1 : paths[i], file) == 0)
                        return i;
        }
        return -1;
}

/* The default kernel: ours (kernel/pl-current) before Debian's
 * (kernel/current), each only with a vmlinuz in it; neither: -ENOENT saying
 * how to get one. */
static void test_default_dir(void **state) {
        Fixture *f = *state;
        _cleanup_error_ Error *e = NULL;
        char *dir = NULL, want[256];
        assert_int_equal(kernel_default_dir(f->dir, &dir, &e), -ENOENT);
        assert_null(dir);
        assert_non_null(strstr(error_text(e), "scripts/build-kernel.sh"));
        e = error_free(e);

        test_put(f->dir, "kernel/6.1.0-debian/vmlinuz", "debian");
        test_put(f->dir, "kernel/pl-6.1-x/release", "6.1-pl-x"); /* no vmlinuz: not a kernel */
        snprintf(want, sizeof want, "%s/kernel/current", f->dir);
        assert_int_equal(symlink("6.1.0-debian", want), 0);
        snprintf(want, sizeof want, "%s/kernel/pl-current", f->dir);
        assert_int_equal(symlink("pl-6.1-x", want), 0);
        assert_int_equal(kernel_default_dir(f->dir, &dir, &e), 0);
        snprintf(want, sizeof want, "%s/kernel/current", f->dir);
        assert_string_equal(dir, want);
        free(dir);

        test_put(f->dir, "kernel/pl-6.1-x/vmlinuz", "ours");
        assert_int_equal(kernel_default_dir(f->dir, &dir, &e), 0);
        snprintf(want, sizeof want, "%s/kernel/pl-current", f->dir);
        assert_string_equal(dir, want);
        free(dir);
}

/* names resolved on the modular kernel in $PL_MODULAR_KERNEL_DIR (Debian's;
 * skips without one). */
static char **resolve_real(const char *const *names) {
        const char *kdir = getenv("PL_MODULAR_KERNEL_DIR");
        if (!kdir || !kdir[0])
                test_skip_or_fail("PL_MODULAR_KERNEL_DIR, a kernel with loadable modules (scripts/fetch-kernel.sh prints it)");
        _cleanup_error_ Error *e = NULL;
        _cleanup_free_ char *mdir = NULL;
        char **paths = NULL;
        size_t n = 0;
        if (kernel_modules_find_dir(kdir, &mdir, &e) < 0 || kernel_modules_resolve(mdir, names, &paths, &n, &e) < 0)
                fail_msg("%s", error_text(e));
        return paths;
}

static void test_real_kernel(void **state) {
        _cleanup_kernel_modules_ char **paths = resolve_real((const char *[]){
                "virtio_pci", "virtio_blk", "virtio_console", "vmw_vsock_virtio_transport", "ext4", NULL});
        for (size_t i = 0; paths[i]; i++)
                fprintf(stderr, "  %zu %s\n", i, paths[i]);
        /* A dependency always comes before what needs it; the four asked for are
         * there; ext4 resolves whether built in (Debian's cloud kernel) or not. */
        int ring = index_of(paths, "virtio_ring.ko"), virtio = index_of(paths, "virtio.ko");
        int pci = index_of(paths, "virtio_pci.ko"), blk = index_of(paths, "virtio_blk.ko");
        int con = index_of(paths, "virtio_console.ko"), vsock = index_of(paths, "vsock.ko");
        int common = index_of(paths, "vmw_vsock_virtio_transport_common.ko");
        int transport = index_of(paths, "vmw_vsock_virtio_transport.ko");
        assert_true(ring >= 0 && virtio > ring && pci > virtio && blk > virtio && con > virtio);
        assert_true(vsock >= 0 && common > vsock && transport > common && transport > virtio);
}

/* The default list of the initramfs resolves on the real kernel, networking
 * and virtio-fs included, each after what it needs. */
static void test_real_kernel_defaults(void **state) {
        _cleanup_kernel_modules_ char **paths = resolve_real(initramfs_default_modules);
        int virtio = index_of(paths, "virtio.ko"), failover = index_of(paths, "failover.ko");
        int net_failover = index_of(paths, "net_failover.ko"), net = index_of(paths, "virtio_net.ko");
        int fuse = index_of(paths, "fuse.ko"), virtiofs = index_of(paths, "virtiofs.ko");
        assert_true(virtio >= 0 && failover >= 0 && fuse >= 0);
        assert_true(net_failover > failover && net > net_failover && net > virtio);
        assert_true(virtiofs > fuse && virtiofs > virtio);
        assert_true(index_of(paths, "virtio_blk.ko") >= 0 && index_of(paths, "vmw_vsock_virtio_transport.ko") >= 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_diamond, setup, teardown),
                cmocka_unit_test(test_real_kernel_defaults),
                cmocka_unit_test_setup_teardown(test_shared_dependencies_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dash_and_underscore, setup, teardown),
                cmocka_unit_test_setup_teardown(test_compressed_file_name, setup, teardown),
                cmocka_unit_test_setup_teardown(test_builtin, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_module, setup, teardown),
                cmocka_unit_test(test_missing_modules_dep),
                cmocka_unit_test_setup_teardown(test_invalid_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_empty_modules_dep, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cycle, setup, teardown),
                cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
                cmocka_unit_test_setup_teardown(test_find_dir, setup, teardown),
                cmocka_unit_test_setup_teardown(test_default_dir, setup, teardown),
                cmocka_unit_test(test_real_kernel),
        };
        return test_run_group(tests, NULL, NULL);
}
