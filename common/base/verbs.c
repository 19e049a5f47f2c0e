/* verbs.c: the verb dispatcher and --version of every tool (see verbs.h). */
#include "common/base/verbs.h"

#include <unistd.h>

#include <errno.h>
#include <string.h>

#ifndef PL_VERSION
#define PL_VERSION "unknown"
#endif

static const Verb *verb_find(const Verb *verbs, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(verbs[i].name, name) == 0)
                        return &verbs[i];
        return NULL;
}

static void verb_line(const Verb *v, FILE *f) {
        fprintf(f, "%s%s%s\n", v->name, v->summary && *v->summary ? " " : "", v->summary ? v->summary : "");
}

void verbs_print(const Verb *verbs, size_t n, FILE *f) {
        for (size_t i = 0; i < n; i++) {
                fputs("  ", f);
                verb_line(&verbs[i], f);
        }
}

int verb_usage(const Verb *verbs, size_t n, const char *name, FILE *f) {
        const Verb *v = verb_find(verbs, n, name);
        if (!v)
                return EXIT_USAGE;
        fprintf(f, "usage: %s ", program_invocation_short_name);
        verb_line(v, f);
        return 0;
}

void version_print(void) {
        printf("%s %s\n", program_invocation_short_name, PL_VERSION);
}

static const char *plural(int k) {
        return k == 1 ? "" : "s";
}

/* The "takes ..." part of a wrong-count message. */
static void count_message(const Verb *v, int got) {
        const char *prog = program_invocation_short_name;
        if (v->max_args == VERB_ANY)
                fprintf(stderr, "%s: '%s' takes at least %d argument%s, got %d\n", prog, v->name, v->min_args,
                        plural(v->min_args), got);
        else if (v->min_args == v->max_args)
                fprintf(stderr, "%s: '%s' takes %d argument%s, got %d\n", prog, v->name, v->min_args,
                        plural(v->min_args), got);
        else
                fprintf(stderr, "%s: '%s' takes %d to %d arguments, got %d\n", prog, v->name, v->min_args, v->max_args,
                        got);
}

/* The built-in "help [VERB]" for tables without their own. */
static int builtin_help(const Verb *verbs, size_t n, int argc, char *argv[]) {
        if (argc > 2) {
                fprintf(stderr, "%s: 'help' takes at most 1 argument, got %d\n", program_invocation_short_name,
                        argc - 1);
                return EXIT_USAGE;
        }
        if (argc == 2) {
                if (verb_usage(verbs, n, argv[1], stdout) == 0)
                        return 0;
                fprintf(stderr, "%s: unknown command '%s' (see '%s --help')\n", program_invocation_short_name,
                        argv[1], program_invocation_short_name);
                return EXIT_USAGE;
        }
        printf("usage: %s [OPTIONS] COMMAND ...\n", program_invocation_short_name);
        verbs_print(verbs, n, stdout);
        return 0;
}

int verbs_dispatch(const Verb *verbs, size_t n, int argc, char *argv[], void *userdata) {
        const char *prog = program_invocation_short_name;
        if (argc < 1 || !argv[0]) {
                fprintf(stderr, "%s: missing command (see '%s --help')\n", prog, prog);
                return EXIT_USAGE;
        }
        const Verb *v = verb_find(verbs, n, argv[0]);
        if (!v && strcmp(argv[0], "help") == 0)
                return builtin_help(verbs, n, argc, argv);
        if (!v) {
                fprintf(stderr, "%s: unknown command '%s' (see '%s --help')\n", prog, argv[0], prog);
                return EXIT_USAGE;
        }
        if (argc >= 2 && strcmp(argv[1], "--help") == 0)
                return verb_usage(verbs, n, v->name, stdout);
        int got = argc - 1;
        if (got < v->min_args || (v->max_args != VERB_ANY && got > v->max_args)) {
                count_message(v, got);
                verb_usage(verbs, n, v->name, stderr);
                return EXIT_USAGE;
        }
        return v->run(argc, argv, userdata);
}

int verbs_dispatch_after_options(const Verb *verbs, size_t n, int argc, char *argv[], void *userdata) {
        int first = optind;
        optind = 0; /* getopt starts afresh on the verb's arguments */
        return verbs_dispatch(verbs, n, argc - first, argv + first, userdata);
}
