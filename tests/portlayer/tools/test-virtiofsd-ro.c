/* test-virtiofsd-ro.c: pl-virtiofsd-ro, the wrapper libvirt starts for a
 * read-only virtio-fs share, with a stand-in for virtiofsd.
 *
 * PL_VIRTIOFSD names a shell script that reports, from inside the wrapper's
 * mount namespace, the arguments it got and whether the shared directory
 * takes a write. The share's name holds a comma, which libvirt doubles in
 * "-o source=...". Needs root (a mount namespace and bind mounts), as
 * virtiofsd does; the real virtiofsd behind it is covered by
 * tests/e2e/test-vm-net.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/fs-util.h"

static char dir[128], share[256], fake[256], wrapper[4096];

static int setup(void **state) {
        if (geteuid() != 0)
                return 0; /* the case skips */
        if (test_tmpdir_make(dir, sizeof dir, "virtiofsd-ro") < 0)
                return -1;
        snprintf(share, sizeof share, "%s/a,b", dir);
        snprintf(fake, sizeof fake, "%s/fake-virtiofsd", dir);
        static const char script[] = "#!/bin/sh\n"
                                     "echo \"args: $*\"\n"
                                     "if echo x > \"$SHARE/new\" 2>/dev/null; then echo writable; else echo read-only; fi\n";
        if (mkdir(share, 0755) < 0 || write_file_atomic(fake, script, sizeof script - 1, 0755) < 0)
                return -1;
        const char *bin = getenv("PL_VIRTIOFSD_RO_BIN");
        snprintf(wrapper, sizeof wrapper, "%s", bin ? bin : "");
        return 0;
}

static int teardown(void **state) {
        test_tmpdir_remove(dir);
        return 0;
}

static void test_share_is_read_only_inside_only(void **state) {
        if (geteuid() != 0)
                test_skip_or_fail("root (a mount namespace and bind mounts)");
        assert_true(wrapper[0] == '/');
        char *out = NULL;
        int r = test_sh_out(&out, NULL, "SHARE='%s' PL_VIRTIOFSD='%s' '%s' --fd=3 -o source='%s/a,,b',xattr",
                            share, fake, wrapper, dir);
        assert_int_equal(r, 0);
        char want[1024];
        snprintf(want, sizeof want, "args: --fd=3 -o source=%s/a,,b,xattr\nread-only\n", dir);
        assert_string_equal(out, want);
        free(out);

        /* Nothing leaked into this mount namespace: the share is writable here. */
        char path[400];
        snprintf(path, sizeof path, "%s/host-file", share);
        assert_int_equal(write_file_atomic(path, "x", 1, 0644), 0);
        assert_int_equal(test_sh("grep -q ' %s ' /proc/self/mountinfo", share), 1);

        /* No source (--print-capabilities): passed straight through. */
        assert_int_equal(test_sh_out(&out, NULL, "SHARE='%s' PL_VIRTIOFSD='%s' '%s' --print-capabilities", share,
                                     fake, wrapper),
                         0);
        assert_string_equal(out, "args: --print-capabilities\nwritable\n");
        free(out);

        /* A source that is not absolute, or not there: refused, virtiofsd never runs. */
        assert_int_not_equal(test_sh("PL_VIRTIOFSD='%s' '%s' -o source=relative 2>/dev/null", fake, wrapper), 0);
        assert_int_not_equal(test_sh("PL_VIRTIOFSD='%s' '%s' -osource=%s/missing 2>/dev/null", fake, wrapper, dir), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_share_is_read_only_inside_only, setup, teardown),
        };
        return test_run_group(tests, NULL, NULL);
}
