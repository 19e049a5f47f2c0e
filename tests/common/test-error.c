/* test-error.c: the error type and logging helpers. */
#include <stdarg.h>
#include <time.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/error.h"
#include "common/base/io-util.h"
#include "common/base/log.h"

static int fails_with_context(Error **err) {
        int r = error_set(err, ENOENT, "open '%s'", "/nope");
        return error_prefix(err, "pull layer %s", "sha256:ab") ? r : 0;
}

static void test_set_once_and_prefix(void **state) {
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(fails_with_context(&e), -ENOENT);
        assert_non_null(e);
        assert_int_equal(e->code, ENOENT);
        assert_string_equal(e->message, "pull layer sha256:ab: open '/nope'");
        /* The first error wins: a second set keeps the message but returns its own code. */
        assert_int_equal(error_set(&e, EPERM, "other"), -EPERM);
        assert_string_equal(error_text(e), "pull layer sha256:ab: open '/nope'");
}

static void test_null_err_and_zero_code(void **state) {
        assert_int_equal(error_set(NULL, EINVAL, "x"), -EINVAL);
        assert_int_equal(error_set(NULL, -EINVAL, "x"), -EINVAL);
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(error_set(&e, 0, "no code"), -EIO);
        assert_int_equal(e->code, EIO);
        assert_int_equal(error_prefix(NULL, "ctx"), -EIO);
        assert_string_equal(error_text(NULL), "unknown error");
}

static void test_set_errno_appends_strerror(void **state) {
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(error_set_errno(&e, EACCES, "open '%s'", "f"), -EACCES);
        assert_string_equal(e->message, "open 'f': Permission denied");
}

static void test_log_levels(void **state) {
        assert_int_equal(log_level_from_string("debug"), LOG_LEVEL_DEBUG);
        assert_int_equal(log_level_from_string("WARNING"), LOG_LEVEL_WARNING);
        assert_int_equal(log_level_from_string("loud"), -EINVAL);
        assert_int_equal(log_level_from_string(NULL), -EINVAL);
        assert_string_equal(log_level_to_string(LOG_LEVEL_ERROR), "error");

        int p[2];
        assert_int_equal(pipe(p), 0);
        log_setup("t", LOG_LEVEL_WARNING, p[1]);
        assert_int_equal(log_debug("hidden"), 0);
        assert_int_equal(log_error_errno(-ENOENT, "shown: %m"), -ENOENT);
        char buf[256] = "";
        ssize_t n = read(p[0], buf, sizeof buf - 1);
        assert_true(n > 0);
        assert_non_null(strstr(buf, "shown: No such file or directory\n"));
        assert_null(strstr(buf, "hidden"));
        log_setup("t", LOG_LEVEL_INFO, STDERR_FILENO);
        close(p[0]);
        close(p[1]);
}

static void test_deadlines(void **state) {
        assert_int_equal(deadline_poll_ms(USEC_INFINITY), -1);
        assert_int_equal(deadline_after_ms(-1), USEC_INFINITY);
        assert_int_equal(deadline_poll_ms(now_usec() - 1), 0);
        int ms = deadline_poll_ms(deadline_after_ms(500));
        assert_true(ms > 400 && ms <= 500);
        /* a realtime timespec, normalized across a second's boundary */
        uint64_t before = realtime_nsec();
        struct timespec ts;
        realtime_after_usec(1500 * USEC_PER_MSEC, &ts);
        assert_true(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
        uint64_t at = (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
        assert_true(at >= before + 1500000000u && at < before + 1600000000u);
}

static void test_read_bounded(void **state) {
        char path[] = "/tmp/pl-read-bounded.XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        static char data[10000];
        memset(data, 'x', sizeof data);
        assert_int_equal(write_all(fd, data, sizeof data), 0);
        close(fd);

        char *buf = NULL;
        size_t len = 0;
        assert_int_equal(read_file_bounded(path, sizeof data, &buf, &len), 0); /* exactly max */
        assert_int_equal(len, sizeof data);
        assert_int_equal(buf[len], 0);
        free(buf);
        assert_int_equal(read_file_bounded(path, sizeof data - 1, &buf, &len), -EFBIG); /* one past */
        assert_int_equal(read_file_bounded("/tmp", 100, &buf, &len), -EINVAL);          /* not a file */
        assert_int_equal(read_file_bounded("/nonexistent/x", 100, &buf, &len), -ENOENT);

        fd = open(path, O_WRONLY | O_TRUNC);
        close(fd);
        assert_int_equal(read_file_bounded(path, 0, &buf, &len), 0); /* empty */
        assert_int_equal(len, 0);
        assert_string_equal(buf, "");
        free(buf);
        unlink(path);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_set_once_and_prefix),
                cmocka_unit_test(test_null_err_and_zero_code),
                cmocka_unit_test(test_set_errno_appends_strerror),
                cmocka_unit_test(test_log_levels),
                cmocka_unit_test(test_deadlines),
                cmocka_unit_test(test_read_bounded),
        };
        return test_run_group(tests, NULL, NULL);
}
