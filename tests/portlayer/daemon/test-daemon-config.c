/* test-daemon-config.c: portlayerd's settings: the config file's grammar,
 * every key checked, errors naming the file, line and key, and nothing set
 * by a line that fails. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon-internal.h"

static char *write_tmp(const char *text) {
        char *path = strdup("/tmp/pl-config-XXXXXX");
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        close(fd);
        return path;
}

static void test_file(void **state) {
        char *path = write_tmp("# portlayerd\n\n  state-dir = /srv/pl  \nsocket=/run/x.sock\naccel = tcg\n"
                               "boot-timeout = 90\ntransport = virtio-serial\ninsecure-registries = a:5000,b:5000\n"
                               "log-max-size = 64K\nlog-max-files = 5\ntcg-tb-cache = 64M\nfree-page-reporting = false\n");
        DaemonConfig c;
        daemon_config_init(&c);
        Error *e = NULL;
        assert_int_equal(daemon_config_load(&c, path, true, &e), 0);
        assert_string_equal(c.state_dir, "/srv/pl");
        assert_string_equal(c.socket, "/run/x.sock");
        assert_string_equal(c.accel, "tcg");
        assert_string_equal(c.transport, "virtio-serial");
        assert_string_equal(c.insecure_registries, "a:5000,b:5000");
        assert_int_equal(c.boot_timeout_s, 90);
        assert_int_equal(c.log_max_size, 64 << 10);
        assert_int_equal(c.log_max_files, 5);
        assert_int_equal(c.tcg_tb_cache_mib, 64);
        assert_false(c.free_page_reporting);
        /* the command line comes after the file and wins */
        assert_int_equal(daemon_config_set(&c, "state-dir", "/other", &e), 0);
        assert_string_equal(c.state_dir, "/other");
        daemon_config_clear(&c);
        unlink(path);
        free(path);
}

static void test_bad(void **state) {
        const struct {
                const char *key, *value, *needle;
        } cases[] = {
                {"state-dir", "relative/dir", "absolute"}, {"socket", "x.sock", "absolute"},
                {"accel", "hvf", "accel"},                 {"transport", "tcp", "transport"},
                {"boot-timeout", "0", "boot-timeout"},     {"boot-timeout", "9999", "boot-timeout"},
                {"boot-timeout", "12s", "boot-timeout"},   {"log-level", "loud", "log-level"},
                {"log-max-size", "1K", "log-max-size"},    {"log-max-size", "16 M", "log-max-size"},
                {"log-max-files", "0", "log-max-files"},   {"log-max-files", "101", "log-max-files"},
                {"tcg-tb-cache", "1500K", "whole MiB"},  {"tcg-tb-cache", "5G", "tcg-tb-cache"},
                {"free-page-reporting", "yes please", "free-page-reporting"},
                {"no-such-key", "1", "unknown setting"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                DaemonConfig c;
                daemon_config_init(&c);
                Error *e = NULL;
                assert_true(daemon_config_set(&c, cases[i].key, cases[i].value, &e) < 0);
                if (!strstr(error_text(e), cases[i].needle))
                        fail_msg("%s=%s: '%s' lacks '%s'", cases[i].key, cases[i].value, error_text(e), cases[i].needle);
                error_free(e);
                assert_null(c.state_dir);
                assert_null(c.accel);
                assert_int_equal(c.boot_timeout_s, 60);
                assert_int_equal(c.log_max_size, 16 << 20);
                assert_int_equal(c.log_max_files, 2);
                assert_int_equal(c.tcg_tb_cache_mib, DAEMON_TCG_TB_CACHE_MIB_DEFAULT);
                assert_true(c.free_page_reporting);
                daemon_config_clear(&c);
        }
        char *path = write_tmp("state-dir = /a\nthis line has no equals sign\n");
        DaemonConfig c;
        daemon_config_init(&c);
        Error *e = NULL;
        assert_true(daemon_config_load(&c, path, true, &e) < 0);
        assert_non_null(strstr(error_text(e), ":2:"));
        error_free(e);
        daemon_config_clear(&c);
        unlink(path);
        free(path);
        /* a missing file: fine unless asked for */
        daemon_config_init(&c);
        e = NULL;
        assert_int_equal(daemon_config_load(&c, "/nonexistent/portlayerd.conf", false, &e), 0);
        assert_true(daemon_config_load(&c, "/nonexistent/portlayerd.conf", true, &e) < 0);
        error_free(e);
        daemon_config_clear(&c);
}

/* scripts/systemd/portlayerd.conf.example names every key (set or
 * commented out), loads, and sets only the defaults. */
static void test_example(void **state) {
        char path[4096];
        snprintf(path, sizeof path, "%s/scripts/systemd/portlayerd.conf.example", getenv("PL_SOURCE_DIR"));
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        char text[16384];
        size_t len = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[len] = 0;
        for (size_t i = 0; daemon_config_keys[i]; i++) {
                char set[128], commented[128];
                snprintf(set, sizeof set, "\n%s =", daemon_config_keys[i]);
                snprintf(commented, sizeof commented, "\n#%s =", daemon_config_keys[i]);
                if (!strstr(text, set) && !strstr(text, commented))
                        fail_msg("%s does not list '%s'", path, daemon_config_keys[i]);
        }
        DaemonConfig c, def;
        daemon_config_init(&c);
        daemon_config_init(&def);
        Error *e = NULL;
        if (daemon_config_load(&c, path, true, &e) < 0)
                fail_msg("%s", error_text(e));
        assert_string_equal(c.state_dir, DAEMON_DEFAULT_STATE_DIR);
        assert_string_equal(c.socket, DAEMON_DEFAULT_SOCKET);
        assert_string_equal(c.accel, "auto");
        assert_string_equal(c.transport, "auto");
        assert_string_equal(c.log_level, "info");
        assert_string_equal(c.insecure_registries, "");
        /* the ones without a fixed default stay unset */
        assert_null(c.libvirt_uri);
        assert_null(c.guest_kernel);
        assert_null(c.guest_initrd);
        assert_null(c.agent);
        assert_null(c.image_store);
        assert_int_equal(c.boot_timeout_s, def.boot_timeout_s);
        assert_int_equal(c.log_max_size, def.log_max_size);
        assert_int_equal(c.log_max_files, def.log_max_files);
        assert_string_equal(c.uid_range, DAEMON_DEFAULT_UID_RANGE);
        assert_false(c.allow_root_qemu);
        daemon_config_clear(&c);
        daemon_config_clear(&def);
}

/* Every key in the list is one daemon_config_set() knows. */
static void test_keys_known(void **state) {
        for (size_t i = 0; daemon_config_keys[i]; i++) {
                DaemonConfig c;
                daemon_config_init(&c);
                Error *e = NULL;
                (void) daemon_config_set(&c, daemon_config_keys[i], "?", &e);
                if (e && strstr(error_text(e), "unknown setting"))
                        fail_msg("'%s' is listed but not taken", daemon_config_keys[i]);
                error_free(e);
                daemon_config_clear(&c);
        }
}

/* Who QEMU runs as: a uid per container where the daemon can decide it,
 * root only when allowed, and then said (daemon-privs.c). */
static void test_qemu_identity(void **state) {
        DaemonConfig c;
        daemon_config_init(&c);
        uint32_t first = 1, count = 1;
        char *summary = NULL;
        Error *e = NULL;
        assert_int_equal(daemon_qemu_identity(&c, &first, &count, &summary, &e), 0);
        assert_int_equal(first, 200000);
        assert_int_equal(count, 65536);
        assert_string_equal(summary, "a uid per container (200000-265535)");
        summary = mfree(summary);
        assert_int_equal(daemon_config_set(&c, "uid-range", "300000-300009", &e), 0);
        assert_int_equal(daemon_qemu_identity(&c, &first, &count, &summary, &e), 0);
        assert_int_equal(count, 10);
        summary = mfree(summary);
        assert_int_equal(daemon_config_set(&c, "uid-range", "100-200", &e), -EINVAL);
        e = error_free(e);
        assert_int_equal(daemon_config_set(&c, "allow-root-qemu", "maybe", &e), -EINVAL);
        e = error_free(e);

        /* another libvirt decides QEMU's user: refused, unless allowed */
        assert_int_equal(daemon_config_set(&c, "libvirt-uri", "qemu:///system", &e), 0);
        assert_int_equal(daemon_qemu_identity(&c, &first, &count, &summary, &e), -EPERM);
        assert_null(summary);
        assert_non_null(strstr(error_text(e), "refusing to run QEMU as root: libvirt URI 'qemu:///system'"));
        assert_non_null(strstr(error_text(e), "--allow-root-qemu"));
        e = error_free(e);
        assert_int_equal(daemon_config_set(&c, "allow-root-qemu", "true", &e), 0);
        assert_int_equal(daemon_qemu_identity(&c, &first, &count, &summary, &e), 0);
        assert_int_equal(count, 0);
        assert_non_null(strstr(summary, "root (allowed by --allow-root-qemu: libvirt URI 'qemu:///system'"));
        summary = mfree(summary);
        /* the embedded driver at another root is still ours to decide */
        assert_int_equal(daemon_config_set(&c, "libvirt-uri", "qemu:///embed?root=/tmp/x", &e), 0);
        assert_int_equal(daemon_qemu_identity(&c, &first, &count, &summary, &e), 0);
        assert_int_equal(count, 10);
        free(summary);
        daemon_config_clear(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_file),
                cmocka_unit_test(test_bad),
                cmocka_unit_test(test_example),
                cmocka_unit_test(test_keys_known),
                cmocka_unit_test(test_qemu_identity),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
