/* test-digest.c: SHA-256 digests (images/oci/digest.h): the FIPS 180-2 vectors,
 * streaming in pieces equals one shot, the textual form check, and verifying
 * a file by digest and size (match, digest mismatch, short and long data). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "images/oci/digest.h"

#define EMPTY_SHA256 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC_SHA256 "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define LONG_MSG "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
#define LONG_SHA256 "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"

static void test_vectors(void **state) {
        char *s = NULL;
        assert_int_equal(digest_buffer_hex("", 0, &s), 0);
        assert_string_equal(s, EMPTY_SHA256);
        free(s);
        assert_int_equal(digest_buffer_hex("abc", 3, &s), 0);
        assert_string_equal(s, ABC_SHA256);
        free(s);
        assert_int_equal(digest_buffer_hex(LONG_MSG, strlen(LONG_MSG), &s), 0);
        assert_string_equal(s, LONG_SHA256);
        free(s);
}

static void test_streaming(void **state) {
        static const size_t pieces[] = { 1, 3, 7, 64, 1000 };
        size_t n = 100000;
        char *buf = malloc(n), *one = NULL, *many = NULL;
        for (size_t i = 0; i < n; i++)
                buf[i] = (char) (i * 31 + 7);
        assert_int_equal(digest_buffer_hex(buf, n, &one), 0);
        for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
                Digest *d = NULL;
                assert_int_equal(digest_new(&d), 0);
                for (size_t off = 0; off < n; off += pieces[p])
                        assert_int_equal(digest_update(d, buf + off, n - off < pieces[p] ? n - off : pieces[p]), 0);
                assert_int_equal(digest_final_hex(d, &many), 0);
                assert_string_equal(one, many);
                /* Finalised digests refuse more work. */
                assert_int_equal(digest_update(d, "x", 1), -EINVAL);
                assert_int_equal(digest_final_hex(d, &many), -EINVAL);
                free(many);
                digest_free(d);
        }
        free(one);
        free(buf);
}

static void test_parse_check(void **state) {
        assert_int_equal(digest_parse_check(EMPTY_SHA256), 0);
        assert_int_equal(digest_parse_check(NULL), -EINVAL);
        assert_int_equal(digest_parse_check(""), -EINVAL);
        assert_int_equal(digest_parse_check("sha256:"), -EINVAL);
        assert_int_equal(digest_parse_check("sha256:abc"), -EINVAL);
        /* Uppercase hex is not canonical. */
        assert_int_equal(digest_parse_check("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"),
                         -EINVAL);
        assert_int_equal(digest_parse_check(EMPTY_SHA256 "0"), -EINVAL);
        assert_int_equal(digest_parse_check("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
                         -EINVAL);
        assert_int_equal(digest_parse_check("sha512:abcdef0123456789abcdef0123456789"), -EOPNOTSUPP);
        assert_int_equal(digest_parse_check("SHA256:abc"), -EINVAL);
        assert_int_equal(digest_parse_check("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"), -EOPNOTSUPP);
        assert_int_equal(digest_parse_check("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85 "),
                         -EINVAL);
}

static int memfd_with(const char *data, size_t n) {
        int fd = memfd_create("digest-test", MFD_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, n), (ssize_t) n);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        return fd;
}

static void verify_expect(const char *data, const char *digest, uint64_t size, int code, const char *needle) {
        Error *err = NULL;
        int fd = memfd_with(data, strlen(data));
        assert_int_equal(digest_verify_fd(fd, digest, size, &err), code);
        if (code == 0)
                assert_null(err);
        else {
                assert_non_null(err);
                assert_non_null(strstr(err->message, needle));
        }
        error_free(err);
        close(fd);
}

static void test_verify(void **state) {
        verify_expect("abc", ABC_SHA256, 3, 0, NULL);
        verify_expect("", EMPTY_SHA256, 0, 0, NULL);
        verify_expect("abd", ABC_SHA256, 3, -EBADMSG, "digest mismatch: expected " ABC_SHA256 ", got sha256:");
        verify_expect("ab", ABC_SHA256, 3, -EBADMSG, "size mismatch: expected 3 bytes, got 2");
        verify_expect("abcd", ABC_SHA256, 3, -EBADMSG, "size mismatch: expected 3 bytes, got at least 4");
        verify_expect("abc", "sha256:zz", 3, -EINVAL, "invalid expected digest");
        verify_expect("abc", "sha512:abcdef0123456789abcdef0123456789", 3, -EOPNOTSUPP, "invalid expected digest");
}

static void test_verify_large(void **state) {
        size_t n = 300000; /* several read chunks */
        char *buf = malloc(n + 1), *d = NULL;
        memset(buf, 'q', n);
        buf[n] = '\0';
        assert_int_equal(digest_buffer_hex(buf, n, &d), 0);
        verify_expect(buf, d, n, 0, NULL);
        verify_expect(buf, d, n - 1, -EBADMSG, "size mismatch");
        free(d);
        free(buf);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vectors),     cmocka_unit_test(test_streaming),
                cmocka_unit_test(test_parse_check), cmocka_unit_test(test_verify),
                cmocka_unit_test(test_verify_large),
        };
        return test_run_group(tests, NULL, NULL);
}
