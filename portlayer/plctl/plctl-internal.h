/* plctl-internal.h: what the verb files of plctl share: the run's context,
 * reporting, option helpers and the handle/commit steps (docs/api.md). */
#pragma once

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>

#include "common/base/error.h"
#include "common/base/verbs.h"
#include "portlayer/plctl/plctl-client.h"

typedef struct Plctl {
        const char *socket_path; /* --socket, or NULL */
        const char *remote;      /* --remote or $PORTLAYER_REMOTE, or NULL */
        bool json;               /* --json: machine output */
        PlctlClient *client;
} Plctl;

/* Every verb takes --json and --help besides its own options. */
#define PLCTL_COMMON_OPTIONS {"json", no_argument, NULL, 'J'}, {"help", no_argument, NULL, 'h'}

/* Handles 'J' and 'h' (and getopt's '?') for verb: returns -1 when the verb
 * goes on, else the exit status to return (0 after --help, 2 after a bad
 * option). */
int plctl_common_option(Plctl *p, int opt, const char *verb, char *argv[]);

/* "plctl: <error>" on stderr; returns 1. */
int plctl_fail(const Error *e);
/* "plctl: <message> (see --help)" on stderr; returns EXIT_USAGE. */
int plctl_usage(const char *fmt, ...) _printf_(1, 2);
/* Prints "usage: plctl VERB ..." for verb (the table of plctl.c). */
int plctl_verb_help(const char *verb);

/* For verb groups ("images pull ..."): takes --json and --help out of the
 * *n args (argv after the group's name, NULL-terminated room for *n + 1).
 * Returns -1 when the group goes on (args[0] is its command), else the exit
 * status (0 after --help, EXIT_USAGE without a command). */
int plctl_group_args(Plctl *p, const char *verb, int *n, char **args);

/* The remote called name (plctl-remote.c): *ret points into ret_strings[5],
 * which the caller frees. -ENOENT when there is none. */
int plctl_remote_load(const char *name, PlctlRemote *ret, char **ret_strings, Error **err);

/* The client, created on first use: the remote when one is chosen, else the
 * Unix socket. Returns 0 or a negative errno. */
int plctl_connect(Plctl *p, PlctlClient **ret, Error **err);
/* j on stdout, indented, with a newline. */
void plctl_print_json(json_t *j);

/* A path with one escaped argument: fmt holds one "%s" for ref. Returns a
 * string to free, or NULL on allocation failure. */
char *plctl_path(const char *fmt, const char *ref);

/* A string member, "" when missing. */
const char *plctl_str(json_t *j, const char *key);
/* The first 12 characters of an id (after "sha256:" for images). */
void plctl_short_id(const char *id, char out[13]);

/* The handle steps: a handle on the container ref, a PUT of one handle
 * call (what: "entrypoint", "limits", "labels", "state"), the commit
 * (*ret: the container, optional). */
int plctl_handle_take(PlctlClient *c, const char *ref, char **ret_handle, Error **err);
int plctl_handle_put(PlctlClient *c, const char *handle, const char *what, json_t *body, Error **err);
int plctl_handle_commit(PlctlClient *c, const char *handle, json_t **ret, Error **err);
/* Takes a handle on ref, sets its state, commits. */
int plctl_set_state(PlctlClient *c, const char *ref, const char *state, json_t **ret, Error **err);

/* Waits for the container to stop; *ret_code its exit code. */
int plctl_wait_exit(PlctlClient *c, const char *ref, int *ret_code, Error **err);
/* Follows the container's logs to stdout and stderr until it stops
 * (follow) or the end; tail < 0 for all, timestamps prefixes each piece. */
int plctl_logs_print(PlctlClient *c, const char *ref, bool follow, long tail, bool timestamps, bool json,
                     Error **err);

/* The verbs (argv[0] is the verb's name; userdata is the Plctl). */
int plctl_verb_ps(int argc, char *argv[], void *userdata);
int plctl_verb_inspect(int argc, char *argv[], void *userdata);
int plctl_verb_create(int argc, char *argv[], void *userdata);
int plctl_verb_run(int argc, char *argv[], void *userdata);
int plctl_verb_start(int argc, char *argv[], void *userdata);
int plctl_verb_stop(int argc, char *argv[], void *userdata);
int plctl_verb_kill(int argc, char *argv[], void *userdata);
int plctl_verb_pause(int argc, char *argv[], void *userdata);
int plctl_verb_unpause(int argc, char *argv[], void *userdata);
int plctl_verb_rm(int argc, char *argv[], void *userdata);
int plctl_verb_wait(int argc, char *argv[], void *userdata);
int plctl_verb_logs(int argc, char *argv[], void *userdata);
int plctl_verb_stats(int argc, char *argv[], void *userdata);
int plctl_verb_events(int argc, char *argv[], void *userdata);
int plctl_verb_exec(int argc, char *argv[], void *userdata);
int plctl_verb_cp(int argc, char *argv[], void *userdata);
int plctl_verb_images(int argc, char *argv[], void *userdata);
int plctl_verb_version(int argc, char *argv[], void *userdata);
int plctl_verb_doctor(int argc, char *argv[], void *userdata);
int plctl_verb_remote(int argc, char *argv[], void *userdata);
int plctl_verb_trust(int argc, char *argv[], void *userdata);
int plctl_verb_vm(int argc, char *argv[], void *userdata);
int plctl_verb_gc(int argc, char *argv[], void *userdata);
