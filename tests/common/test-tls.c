/* test-tls.c: pltls, the TLS material the daemon and plctl share: an
 * identity made once (key 0600, certificate parsed back, its dates checked;
 * a half identity refused), fingerprints as people type them, and the trust
 * list: add, duplicates, bad names, remove by fingerprint and by name, a
 * corrupt file named by its line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/tls/tls-util.h"
#include "lib/test-files.h"

static void test_identity(void **state) {
        const char *dir = *state;
        char *key = test_pathf("%s/k.key", dir), *cert = test_pathf("%s/k.crt", dir);
        char fp[TLS_FINGERPRINT_HEX + 1], fp2[TLS_FINGERPRINT_HEX + 1];
        Error *e = NULL;
        assert_int_equal(tls_identity_ensure(key, cert, "alice@host", -60, 86400, &e), 1);
        struct stat st;
        assert_int_equal(stat(key, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        X509 *x = NULL;
        assert_int_equal(tls_cert_load(cert, &x, fp, &e), 0);
        assert_int_equal(strlen(fp), TLS_FINGERPRINT_HEX);
        assert_int_equal(tls_cert_check_dates(x, &e), 0);
        X509_free(x);
        /* a second call keeps it */
        assert_int_equal(tls_identity_ensure(key, cert, "alice@host", -60, 86400, &e), 0);
        assert_int_equal(tls_cert_load(cert, NULL, fp2, &e), 0);
        assert_string_equal(fp, fp2);
        /* a key without its certificate is for a person to look at */
        assert_int_equal(unlink(cert), 0);
        assert_int_equal(tls_identity_ensure(key, cert, "alice@host", -60, 86400, &e), -EEXIST);
        assert_non_null(strstr(error_text(e), "k.key"));
        e = error_free(e);
        free(key);
        free(cert);
}

static void test_dates(void **state) {
        const char *dir = *state;
        char *key = test_pathf("%s/old.key", dir), *cert = test_pathf("%s/old.crt", dir);
        char *key2 = test_pathf("%s/new.key", dir), *cert2 = test_pathf("%s/new.crt", dir);
        char fp[TLS_FINGERPRINT_HEX + 1];
        Error *e = NULL;
        X509 *x = NULL;
        assert_int_equal(tls_identity_ensure(key, cert, "old", -7200, -3600, &e), 1);
        assert_int_equal(tls_cert_load(cert, &x, fp, &e), 0);
        assert_int_equal(tls_cert_check_dates(x, &e), -EKEYEXPIRED);
        assert_non_null(strstr(error_text(e), "expired"));
        e = error_free(e);
        X509_free(x);
        assert_int_equal(tls_identity_ensure(key2, cert2, "new", 3600, 7200, &e), 1);
        assert_int_equal(tls_cert_load(cert2, &x, fp, &e), 0);
        assert_int_equal(tls_cert_check_dates(x, &e), -EKEYREJECTED);
        e = error_free(e);
        X509_free(x);
        assert_int_equal(tls_cert_parse_pem("nonsense", 8, NULL, fp, &e), -EINVAL);
        e = error_free(e);
        free(key);
        free(cert);
        free(key2);
        free(cert2);
}

static void test_fingerprint_parse(void **state) {
        char out[TLS_FINGERPRINT_HEX + 1];
        const char *hex = "5f0c9a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7";
        assert_int_equal(tls_fingerprint_parse(hex, out), 0);
        assert_string_equal(out, hex);
        assert_int_equal(tls_fingerprint_parse("sha256:5F:0C:9A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:"
                                               "3D:4E:5F:60:71:82:93:A4:B5:C6:D7",
                                               out),
                         0);
        assert_string_equal(out, hex);
        assert_int_equal(tls_fingerprint_parse("5f0c", out), -EINVAL);
        assert_int_equal(tls_fingerprint_parse("zz0c9a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7", out),
                         -EINVAL);
        char longer[80];
        snprintf(longer, sizeof longer, "%s00", hex);
        assert_int_equal(tls_fingerprint_parse(longer, out), -EINVAL);
}

static void test_trust(void **state) {
        const char *dir = *state;
        char *path = test_pathf("%s/trust", dir);
        const char *a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        const char *b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        TlsTrustEntry *list = NULL, removed;
        size_t n = 99;
        Error *e = NULL;
        /* a missing file is an empty list */
        assert_int_equal(tls_trust_load(path, &list, &n, &e), 0);
        assert_int_equal(n, 0);
        assert_int_equal(tls_trust_add(path, a, "alice", &e), 0);
        assert_int_equal(tls_trust_add(path, b, "bob@lab", &e), 0);
        assert_int_equal(tls_trust_add(path, a, "again", &e), -EEXIST);
        e = error_free(e);
        assert_int_equal(tls_trust_add(path, "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc", "alice", &e),
                         -EEXIST);
        e = error_free(e);
        assert_int_equal(tls_trust_add(path, "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc", "a b", &e),
                         -EINVAL);
        e = error_free(e);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(tls_trust_load(path, &list, &n, &e), 0);
        assert_int_equal(n, 2);
        assert_string_equal(tls_trust_find(list, n, b)->name, "bob@lab");
        assert_null(tls_trust_find(list, n, "cccc"));
        free(list);
        /* by name, then by fingerprint with colons and upper case */
        assert_int_equal(tls_trust_remove(path, "bob@lab", &removed, &e), 0);
        assert_string_equal(removed.fingerprint, b);
        assert_int_equal(tls_trust_remove(path, "AA:aa:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &removed, &e), 0);
        assert_string_equal(removed.name, "alice");
        assert_int_equal(tls_trust_remove(path, "alice", NULL, &e), -ENOENT);
        e = error_free(e);
        assert_int_equal(tls_trust_load(path, &list, &n, &e), 0);
        assert_int_equal(n, 0);
        free(list);
        /* a corrupt line is named; comments and blank lines are fine */
        test_write_file(path, "# comment\n\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa alice\nnot a line\n");
        assert_int_equal(tls_trust_load(path, &list, &n, &e), -EBADMSG);
        assert_non_null(strstr(error_text(e), ":4:"));
        e = error_free(e);
        free(path);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_identity, test_tmpdir_setup, test_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_dates, test_tmpdir_setup, test_tmpdir_teardown),
                cmocka_unit_test(test_fingerprint_parse),
                cmocka_unit_test_setup_teardown(test_trust, test_tmpdir_setup, test_tmpdir_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
