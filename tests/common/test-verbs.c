/* test-verbs.c: verbs_dispatch() and its conventions: the verb runs with its
 * own argv and the userdata; unknown verbs, wrong argument counts and a
 * missing verb are usage errors (2) with a message naming the verb; "VERB
 * --help" and the built-in "help" print usage and run nothing. stdout and
 * stderr are captured in temporary files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/base/macro.h"
#include "common/base/verbs.h"

typedef struct Calls {
        int n;
        int argc;
        char first_arg[32];
} Calls;

static int run_record(int argc, char *argv[], void *userdata) {
        Calls *c = userdata;
        c->n++;
        c->argc = argc;
        snprintf(c->first_arg, sizeof c->first_arg, "%s", argc > 1 ? argv[1] : "");
        return 0;
}

static int run_fails(int argc, char *argv[], void *userdata) {
        return EXIT_FAILURE;
}

static const Verb verbs[] = {
        {"ping", 0, 0, run_record, ""},
        {"tag", 2, 2, run_record, "REF NAME:TAG"},
        {"import", 1, 2, run_record, "SOURCE [NAME:TAG]"},
        {"exec", 1, VERB_ANY, run_record, "-- ARGV..."},
        {"broken", 0, VERB_ANY, run_fails, ""},
};

/* Runs verbs_dispatch on the NULL-terminated args with stdout and stderr
 * going to *ret_out and *ret_err; returns its result. */
static int dispatch(Calls *calls, char **ret_out, char **ret_err, char *args[]) {
        int argc = 0;
        while (args[argc])
                argc++;
        char out_path[] = "/tmp/pl-verbs-out.XXXXXX", err_path[] = "/tmp/pl-verbs-err.XXXXXX";
        int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
        assert_true(out_fd >= 0 && err_fd >= 0);
        fflush(stdout);
        fflush(stderr);
        int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
        assert_true(dup2(out_fd, STDOUT_FILENO) >= 0 && dup2(err_fd, STDERR_FILENO) >= 0);
        int r = verbs_dispatch(verbs, ELEMENTSOF(verbs), argc, args, calls);
        fflush(stdout);
        fflush(stderr);
        assert_true(dup2(saved_out, STDOUT_FILENO) >= 0 && dup2(saved_err, STDERR_FILENO) >= 0);
        close(saved_out);
        close(saved_err);
        close(out_fd);
        close(err_fd);
        size_t len;
        assert_int_equal(read_file_bounded(out_path, 65536, ret_out, &len), 0);
        assert_int_equal(read_file_bounded(err_path, 65536, ret_err, &len), 0);
        unlink(out_path);
        unlink(err_path);
        return r;
}

#define ARGS(...) ((char *[]){__VA_ARGS__, NULL})

static void test_runs_the_verb(void **state) {
        Calls c = {0};
        _cleanup_free_ char *out = NULL, *err = NULL;
        assert_int_equal(dispatch(&c, &out, &err, ARGS("tag", "a", "b:1")), 0);
        assert_int_equal(c.n, 1);
        assert_int_equal(c.argc, 3); /* argv[0] is the verb */
        assert_string_equal(c.first_arg, "a");
        assert_string_equal(err, "");
        out = mfree(out);
        err = mfree(err);
        assert_int_equal(dispatch(&c, &out, &err, ARGS("exec", "--", "sh", "-c", "x --help")), 0);
        assert_int_equal(c.n, 2);
        assert_int_equal(c.argc, 5);
        out = mfree(out);
        err = mfree(err);
        /* "--help" further on belongs to the verb (exec's command line). */
        assert_int_equal(dispatch(&c, &out, &err, ARGS("exec", "grep", "--help")), 0);
        assert_int_equal(c.n, 3);
        out = mfree(out);
        err = mfree(err);
        assert_int_equal(dispatch(&c, &out, &err, ARGS("broken", "x")), EXIT_FAILURE); /* passed through */
}

static void test_unknown_and_missing(void **state) {
        Calls c = {0};
        _cleanup_free_ char *out = NULL, *err = NULL;
        assert_int_equal(dispatch(&c, &out, &err, ARGS("bogus", "x")), EXIT_USAGE);
        assert_non_null(strstr(err, "unknown command 'bogus'"));
        assert_string_equal(out, "");
        out = mfree(out);
        err = mfree(err);
        char *none[] = {NULL};
        assert_int_equal(dispatch(&c, &out, &err, none), EXIT_USAGE);
        assert_non_null(strstr(err, "missing command"));
        assert_int_equal(c.n, 0);
}

static void test_argument_counts(void **state) {
        Calls c = {0};
        _cleanup_free_ char *out = NULL, *err = NULL;
        assert_int_equal(dispatch(&c, &out, &err, ARGS("tag", "a")), EXIT_USAGE);
        assert_non_null(strstr(err, "'tag' takes 2 arguments, got 1"));
        assert_non_null(strstr(err, "usage: "));
        assert_non_null(strstr(err, " tag REF NAME:TAG\n"));
        out = mfree(out);
        err = mfree(err);
        assert_int_equal(dispatch(&c, &out, &err, ARGS("ping", "extra")), EXIT_USAGE);
        assert_non_null(strstr(err, "'ping' takes 0 arguments, got 1"));
        out = mfree(out);
        err = mfree(err);
        assert_int_equal(dispatch(&c, &out, &err, ARGS("import", "a", "b", "c")), EXIT_USAGE);
        assert_non_null(strstr(err, "'import' takes 1 to 2 arguments, got 3"));
        out = mfree(out);
        err = mfree(err);
        assert_int_equal(dispatch(&c, &out, &err, ARGS("exec")), EXIT_USAGE);
        assert_non_null(strstr(err, "'exec' takes at least 1 argument, got 0"));
        assert_int_equal(c.n, 0);
}

static void test_help(void **state) {
        Calls c = {0};
        _cleanup_free_ char *out = NULL, *err = NULL;
        assert_int_equal(dispatch(&c, &out, &err, ARGS("tag", "--help")), 0);
        assert_non_null(strstr(out, "usage: "));
        assert_non_null(strstr(out, " tag REF NAME:TAG\n"));
        assert_string_equal(err, "");
        out = mfree(out);
        err = mfree(err);
        assert_int_equal(dispatch(&c, &out, &err, ARGS("help")), 0);
        assert_non_null(strstr(out, "\n  ping\n  tag REF NAME:TAG\n  import SOURCE [NAME:TAG]\n"));
        out = mfree(out);
        err = mfree(err);
        assert_int_equal(dispatch(&c, &out, &err, ARGS("help", "import")), 0);
        assert_non_null(strstr(out, " import SOURCE [NAME:TAG]\n"));
        out = mfree(out);
        err = mfree(err);
        assert_int_equal(dispatch(&c, &out, &err, ARGS("help", "bogus")), EXIT_USAGE);
        assert_non_null(strstr(err, "unknown command 'bogus'"));
        assert_int_equal(c.n, 0);
}

static void test_print_and_usage(void **state) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        assert_non_null(f);
        verbs_print(verbs, 2, f);
        assert_int_equal(verb_usage(verbs, ELEMENTSOF(verbs), "exec", f), 0);
        assert_int_equal(verb_usage(verbs, ELEMENTSOF(verbs), "nope", f), EXIT_USAGE);
        fclose(f);
        char want[256];
        snprintf(want, sizeof want, "  ping\n  tag REF NAME:TAG\nusage: %s exec -- ARGV...\n", program_invocation_short_name);
        assert_string_equal(buf, want);
        free(buf);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_runs_the_verb), cmocka_unit_test(test_unknown_and_missing),
                cmocka_unit_test(test_argument_counts), cmocka_unit_test(test_help),
                cmocka_unit_test(test_print_and_usage),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
