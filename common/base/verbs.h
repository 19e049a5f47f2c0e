/* verbs.h: one verb dispatcher and one set of conventions for every command
 * line tool (after systemd's src/shared/verbs.c; libc only).
 *
 * Conventions every tool follows:
 *   - "--help" prints the tool's usage to stdout and exits 0; "VERB --help"
 *     (as the verb's first argument) prints that verb's usage line.
 *   - "--version" prints "<program> <version>" to stdout and exits 0.
 *   - Exit status 0 is success, 1 (EXIT_FAILURE) a failure that was reported
 *     once on stderr as "<program>: <message>", 2 (EXIT_USAGE) a usage error:
 *     an unknown verb or option, a wrong argument count, a bad value.
 *     (pl-agent-cli exec passes the process's own status through, as docker
 *     exec does.)
 * Messages name the program by program_invocation_short_name. */
#pragma once

#include <stddef.h>
#include <stdio.h>

#define EXIT_USAGE 2

/* min_args/max_args: no limit. */
#define VERB_ANY (-1)

typedef struct Verb {
        const char *name;
        /* How many arguments may follow the verb's name (options and their
         * values count: a verb with getopt options gives room for them). */
        int min_args, max_args;
        /* Runs the verb: argv[0] is the verb's name, argv[1..argc-1] its
         * arguments. Returns the exit status (0, EXIT_FAILURE, EXIT_USAGE). */
        int (*run)(int argc, char *argv[], void *userdata);
        /* The verb's arguments as usage shows them ("REF|ID NAME:TAG"); "" for
         * none. Printed after the name, in the tool's help and on misuse. */
        const char *summary;
} Verb;

/* Runs the verb named by argv[0] with argv (argc entries: the verb and its
 * arguments, as left after the tool's global options) and userdata.
 * Returns the verb's exit status, or, after a one-line message on stderr
 * that names the verb, EXIT_USAGE for: no verb at all, an unknown verb, or
 * an argument count outside [min_args, max_args] (the message is followed by
 * the verb's usage line). "VERB --help" prints the verb's usage line to
 * stdout and returns 0 without running it. "help" and "help VERB", unless
 * the table has its own "help", print the verb list or one verb's usage
 * line to stdout and return 0. */
int verbs_dispatch(const Verb *verbs, size_t n, int argc, char *argv[], void *userdata);

/* verbs_dispatch() of what getopt left after a tool's global options
 * (argv[optind..]), with getopt reset for the verb's own options. */
int verbs_dispatch_after_options(const Verb *verbs, size_t n, int argc, char *argv[], void *userdata);

/* Prints one line per verb, "  NAME SUMMARY", to f: the command list of a
 * tool's help. */
void verbs_print(const Verb *verbs, size_t n, FILE *f);

/* Prints "usage: PROGRAM NAME SUMMARY" for the verb called name to f. Returns 0, or EXIT_USAGE (and prints nothing) when there is no such
 * verb. */
int verb_usage(const Verb *verbs, size_t n, const char *name, FILE *f);

/* Prints "<program> <version>" (the project's version) to stdout: --version. */
void version_print(void);
