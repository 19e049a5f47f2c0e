/* test-initramfs.c: the content-addressed initramfs, built from a fake agent
 * and fake modules and read back with libarchive: names, order, modes,
 * owners, times and contents; reuse without rewriting; byte-identical output;
 * a new name for any changed input byte; clean failures that leave no
 * temporary file. With PL_MODULAR_KERNEL_DIR set, also a build from the real kernel's
 * modules. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
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

#define MAX_ITEMS 64

static const char fake_dep[] =
        "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n"
        "kernel/drivers/virtio/virtio_ring.ko:\n"
        "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n"
        "kernel/net/vsock.ko.xz:\n"
        "kernel/other/virtio.ko:\n";

static const char *const fake_modules[] = {
        "kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko",
        "kernel/drivers/block/virtio_blk.ko", "kernel/net/vsock.ko.xz", "kernel/other/virtio.ko", NULL,
};

static const char agent_text[] = "\177ELF fake agent\n";

typedef struct Fixture {
        char dir[64];
        char agent[128];
        char mods[128];
        char cache[128];
} Fixture;

typedef struct Item {
        char name[128];
        mode_t mode;
        int64_t uid, gid, mtime, ino;
        unsigned nlink;
        char data[4096];
        size_t size;
} Item;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof *f);
        if (!f || test_tmpdir_make(f->dir, sizeof f->dir, "initramfs-test") < 0)
                return -1;
        snprintf(f->agent, sizeof f->agent, "%s/agent", f->dir);
        snprintf(f->mods, sizeof f->mods, "%s/lib/modules/6.1.0-test", f->dir);
        snprintf(f->cache, sizeof f->cache, "%s/cache/initramfs", f->dir);
        test_write_file_p(f->agent, agent_text);
        char path[512], text[256];
        snprintf(path, sizeof path, "%s/modules.dep", f->mods);
        test_write_file_p(path, fake_dep);
        snprintf(path, sizeof path, "%s/modules.builtin", f->mods);
        test_write_file_p(path, "kernel/fs/ext4/ext4.ko\n");
        for (size_t i = 0; fake_modules[i]; i++) {
                snprintf(path, sizeof path, "%s/%s", f->mods, fake_modules[i]);
                snprintf(text, sizeof text, "module bytes of %s\n", fake_modules[i]);
                test_write_file_p(path, text);
        }
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        int r = test_tmpdir_remove(f->dir);
        free(f);
        return r < 0 ? -1 : 0;
}

/* Entries in the cache directory; 0 before the first build made it. */
static size_t cache_entries(const Fixture *f) {
        return test_exists(f->cache) ? test_count_entries(f->cache) : 0;
}

static char *build(const Fixture *f, const char *const *modules) {
        _cleanup_error_ Error *e = NULL;
        char *path = NULL;
        InitramfsSpec spec = {.agent_path = f->agent, .modules_dir = f->mods, .modules = modules};
        if (initramfs_build(&spec, f->cache, &path, &e) < 0)
                fail_msg("initramfs_build: %s", error_text(e));
        return path;
}

/* Reads the archive at path into items; returns their number. */
static size_t read_back(const char *path, Item *items) {
        struct archive *a = archive_read_new();
        assert_non_null(a);
        archive_read_support_filter_gzip(a);
        archive_read_support_format_cpio(a);
        assert_int_equal(archive_read_open_filename(a, path, 16384), ARCHIVE_OK);
        struct archive_entry *ae;
        size_t n = 0;
        while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
                assert_true(n < MAX_ITEMS);
                Item *it = &items[n++];
                snprintf(it->name, sizeof it->name, "%s", archive_entry_pathname(ae));
                it->mode = archive_entry_mode(ae);
                it->uid = archive_entry_uid(ae);
                it->gid = archive_entry_gid(ae);
                it->mtime = archive_entry_mtime(ae);
                it->ino = archive_entry_ino64(ae);
                it->nlink = archive_entry_nlink(ae);
                la_ssize_t k = archive_read_data(a, it->data, sizeof it->data - 1);
                assert_true(k >= 0);
                it->size = (size_t) k;
                it->data[k] = 0;
        }
        assert_int_equal(archive_filter_code(a, 0), ARCHIVE_FILTER_GZIP);
        assert_int_equal(archive_format(a), ARCHIVE_FORMAT_CPIO_SVR4_NOCRC);
        archive_read_free(a);
        return n;
}

static const Item *find_item(const Item *items, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(items[i].name, name) == 0)
                        return &items[i];
        fail_msg("no %s in the archive", name);
        return NULL;
}

/* Number of entries in dir (0 when it does not exist). */
static void test_contents(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *path = build(f, (const char *[]){"virtio-blk", "ext4", "vsock", NULL});
        char prefix[256];
        snprintf(prefix, sizeof prefix, "%s/initramfs-", f->cache);
        assert_int_equal(strncmp(path, prefix, strlen(prefix)), 0);
        assert_int_equal(strlen(path), strlen(prefix) + 64 + strlen(".cpio.gz"));
        assert_string_equal(path + strlen(path) - strlen(".cpio.gz"), ".cpio.gz");
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);

        static Item items[MAX_ITEMS];
        size_t n = read_back(path, items);
        static const char *const names[] = {
                "dev", "init", "lib", "lib/modules", "lib/modules/order", "lib/modules/virtio.ko",
                "lib/modules/virtio_blk.ko", "lib/modules/virtio_ring.ko", "lib/modules/vsock.ko.xz", "mnt",
                "mnt/root", "proc", "run", "sys", "tmp",
        };
        assert_int_equal(n, ELEMENTSOF(names));
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(items[i].name, names[i]); /* sorted, parents first */
                assert_int_equal(items[i].uid, 0);
                assert_int_equal(items[i].gid, 0);
                assert_int_equal(items[i].mtime, 0);
                assert_int_equal(items[i].ino, (int64_t) i + 1);
        }
        const Item *init = find_item(items, n, "init");
        assert_int_equal(init->mode, S_IFREG | 0755);
        assert_string_equal(init->data, agent_text);
        assert_int_equal(find_item(items, n, "tmp")->mode, S_IFDIR | 01777);
        assert_int_equal(find_item(items, n, "mnt/root")->mode, S_IFDIR | 0755);
        const Item *blk = find_item(items, n, "lib/modules/virtio_blk.ko");
        assert_int_equal(blk->mode, S_IFREG | 0644);
        assert_string_equal(blk->data, "module bytes of kernel/drivers/block/virtio_blk.ko\n");
        assert_string_equal(find_item(items, n, "lib/modules/vsock.ko.xz")->data,
                            "module bytes of kernel/net/vsock.ko.xz\n");
        const Item *order = find_item(items, n, "lib/modules/order");
        assert_int_equal(order->mode, S_IFREG | 0644);
        assert_string_equal(order->data, "virtio_ring.ko\nvirtio.ko\nvirtio_blk.ko\nvsock.ko.xz\n");
}

static void test_no_modules(void **state) {
        Fixture *f = *state;
        _cleanup_error_ Error *e = NULL;
        _cleanup_free_ char *path = NULL;
        InitramfsSpec spec = {.agent_path = f->agent};
        assert_int_equal(initramfs_build(&spec, f->cache, &path, &e), 0);
        static Item items[MAX_ITEMS];
        size_t n = read_back(path, items);
        assert_int_equal(n, 11);
        assert_int_equal(find_item(items, n, "lib/modules/order")->size, 0);
}

static void test_built_once(void **state) {
        Fixture *f = *state;
        const char *const mods[] = {"virtio_blk", NULL};
        _cleanup_free_ char *first = build(f, mods);
        struct stat a, b;
        assert_int_equal(stat(first, &a), 0);
        usleep(20 * 1000);
        _cleanup_free_ char *second = build(f, mods);
        assert_string_equal(first, second);
        assert_int_equal(stat(second, &b), 0);
        assert_int_equal(a.st_ino, b.st_ino);
        assert_int_equal(a.st_mtim.tv_sec, b.st_mtim.tv_sec);
        assert_int_equal(a.st_mtim.tv_nsec, b.st_mtim.tv_nsec);
        assert_int_equal(cache_entries(f), 1);
}

static void test_deterministic(void **state) {
        Fixture *f = *state;
        const char *const mods[] = {"virtio_blk", "vsock", NULL};
        _cleanup_free_ char *first = build(f, mods);
        char moved[256];
        snprintf(moved, sizeof moved, "%s/first.cpio.gz", f->dir);
        assert_int_equal(rename(first, moved), 0);
        sleep(1); /* a clock in the output (gzip or cpio mtime) would now differ */
        _cleanup_free_ char *second = build(f, mods);
        assert_string_equal(first, second);
        size_t la, lb;
        _cleanup_free_ char *x = test_read_file(moved, &la), *y = test_read_file(second, &lb);
        assert_non_null(x);
        assert_non_null(y);
        assert_int_equal(la, lb);
        assert_memory_equal(x, y, la);
        assert_int_equal(x[4] | x[5] | x[6] | x[7], 0); /* gzip MTIME */
}

/* Overwrites byte at of path with value. */
static void poke(const char *path, off_t at, char value) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, &value, 1, at), 1);
        close(fd);
}

static void test_changed_input(void **state) {
        Fixture *f = *state;
        const char *const mods[] = {"virtio_blk", NULL};
        _cleanup_free_ char *base = build(f, mods);
        poke(f->agent, 5, 'F');
        _cleanup_free_ char *agent_changed = build(f, mods);
        assert_string_not_equal(base, agent_changed);
        char mod[256];
        snprintf(mod, sizeof mod, "%s/kernel/drivers/virtio/virtio_ring.ko", f->mods);
        poke(mod, 0, 'M');
        _cleanup_free_ char *module_changed = build(f, mods);
        assert_string_not_equal(agent_changed, module_changed);
        assert_string_not_equal(base, module_changed);
        /* Different module sets differ too; old files stay. */
        _cleanup_free_ char *fewer = build(f, (const char *[]){"virtio", NULL});
        assert_string_not_equal(fewer, module_changed);
        assert_int_equal(cache_entries(f), 4);
}

static void expect_failure(const Fixture *f, const InitramfsSpec *spec, int code, const char *needle) {
        _cleanup_error_ Error *e = NULL;
        char *path = NULL;
        assert_int_equal(initramfs_build(spec, f->cache, &path, &e), -code);
        assert_null(path);
        assert_non_null(e);
        if (!strstr(e->message, needle))
                fail_msg("message '%s' lacks '%s'", e->message, needle);
        assert_int_equal(cache_entries(f), 0);
}

static void test_failures_leave_nothing(void **state) {
        Fixture *f = *state;
        char missing[256];
        snprintf(missing, sizeof missing, "%s/no-such-agent", f->dir);
        expect_failure(f, &(InitramfsSpec){.agent_path = missing}, ENOENT, missing);
        expect_failure(f, &(InitramfsSpec){.agent_path = f->dir}, EINVAL, "not a regular file");

        const char *const unknown[] = {"virtio_blk", "no_such_module", NULL};
        expect_failure(f, &(InitramfsSpec){.agent_path = f->agent, .modules_dir = f->mods, .modules = unknown}, ENOENT,
                       "no_such_module");

        char ring[256];
        snprintf(ring, sizeof ring, "%s/kernel/drivers/virtio/virtio_ring.ko", f->mods);
        assert_int_equal(unlink(ring), 0);
        const char *const blk[] = {"virtio_blk", NULL};
        expect_failure(f, &(InitramfsSpec){.agent_path = f->agent, .modules_dir = f->mods, .modules = blk}, ENOENT,
                       "virtio_ring.ko");
        expect_failure(f, &(InitramfsSpec){.agent_path = f->agent, .modules = blk}, EINVAL, "modules directory");
}

static void test_failed_rename_removes_temp(void **state) {
        Fixture *f = *state;
        const char *const mods[] = {"virtio_blk", NULL};
        _cleanup_free_ char *path = build(f, mods);
        /* The target name taken by a non-empty directory: the write succeeds,
         * the rename fails, and the temporary file must go. */
        assert_int_equal(unlink(path), 0);
        assert_int_equal(mkdir(path, 0755), 0);
        char inside[512];
        snprintf(inside, sizeof inside, "%s/keep", path);
        test_write_file_p(inside, "x");
        _cleanup_error_ Error *e = NULL;
        char *again = NULL;
        InitramfsSpec spec = {.agent_path = f->agent, .modules_dir = f->mods, .modules = mods};
        assert_true(initramfs_build(&spec, f->cache, &again, &e) < 0);
        assert_null(again);
        assert_non_null(strstr(e->message, "rename"));
        assert_int_equal(cache_entries(f), 1);
}

static void test_same_file_name(void **state) {
        Fixture *f = *state;
        /* kernel/other/virtio.ko and kernel/drivers/virtio/virtio.ko both want /lib/modules/virtio.ko. */
        char path[512];
        snprintf(path, sizeof path, "%s/modules.dep", f->mods);
        test_write_file_p(path, "kernel/drivers/virtio/virtio.ko:\nkernel/other/virtio-x.ko: kernel/other/virtio.ko\n"
                  "kernel/other/virtio.ko:\n");
        snprintf(path, sizeof path, "%s/kernel/other/virtio-x.ko", f->mods);
        test_write_file_p(path, "x\n");
        const char *const both[] = {"virtio", "virtio_x", NULL};
        expect_failure(f, &(InitramfsSpec){.agent_path = f->agent, .modules_dir = f->mods, .modules = both}, EEXIST,
                       "lib/modules/virtio.ko");
}

static void test_real_kernel(void **state) {
        Fixture *f = *state;
        const char *kdir = getenv("PL_MODULAR_KERNEL_DIR");
        if (!kdir || !kdir[0])
                test_skip_or_fail("PL_MODULAR_KERNEL_DIR, a kernel with loadable modules (scripts/fetch-kernel.sh prints it)");
        _cleanup_error_ Error *e = NULL;
        _cleanup_free_ char *mdir = NULL, *path = NULL;
        const char *const mods[] = {"virtio_pci", "virtio_blk", "virtio_console", "vmw_vsock_virtio_transport", NULL};
        InitramfsSpec spec = {.agent_path = f->agent, .modules = mods};
        if (kernel_modules_find_dir(kdir, &mdir, &e) < 0)
                fail_msg("%s", error_text(e));
        spec.modules_dir = mdir;
        if (initramfs_build(&spec, f->cache, &path, &e) < 0)
                fail_msg("%s", error_text(e));
        static Item items[MAX_ITEMS];
        size_t n = read_back(path, items);
        const Item *order = find_item(items, n, "lib/modules/order");
        fprintf(stderr, "%s\n%s", path, order->data);
        assert_non_null(strstr(order->data, "virtio_pci.ko"));
        assert_non_null(strstr(order->data, "vmw_vsock_virtio_transport.ko"));
        assert_int_equal(strncmp(order->data, "virtio_ring.ko\n", 15), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_contents, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_modules, setup, teardown),
                cmocka_unit_test_setup_teardown(test_built_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
                cmocka_unit_test_setup_teardown(test_changed_input, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failures_leave_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failed_rename_removes_temp, setup, teardown),
                cmocka_unit_test_setup_teardown(test_same_file_name, setup, teardown),
                cmocka_unit_test_setup_teardown(test_real_kernel, setup, teardown),
        };
        return test_run_group(tests, NULL, NULL);
}
