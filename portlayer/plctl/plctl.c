/* plctl.c: plctl's entry (plctl.h): the verb table, the global options and
 * the helpers every verb file shares (plctl-internal.h). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/macro.h"
#include "common/json/json-util.h"
#include "plctl-internal.h"
#include "portlayer/plctl/plctl.h"

static const Verb verbs[] = {
        {"ps", 0, VERB_ANY, plctl_verb_ps, "[-a] [-q] [--filter state=S|label=K[=V]]..."},
        {"inspect", 1, VERB_ANY, plctl_verb_inspect, "ID|NAME..."},
        {"create", 1, VERB_ANY, plctl_verb_create,
         "IMAGE [--name N] [-e K=V]... [-w DIR] [-u USER] [-m MIB] [--cpus N] [--label K=V]... [--cold-start]"
         " [--no-share-pages]"
         " [-- CMD ARGS...]"},
        {"run", 1, VERB_ANY, plctl_verb_run, "[-d] [--rm] IMAGE [create's options] [-- CMD ARGS...]"},
        {"start", 1, VERB_ANY, plctl_verb_start, "ID|NAME..."},
        {"stop", 1, VERB_ANY, plctl_verb_stop, "[-t SECONDS] ID|NAME..."},
        {"kill", 1, VERB_ANY, plctl_verb_kill, "[-s SIGNAL] ID|NAME..."},
        {"pause", 1, VERB_ANY, plctl_verb_pause, "ID|NAME..."},
        {"unpause", 1, VERB_ANY, plctl_verb_unpause, "ID|NAME..."},
        {"rm", 1, VERB_ANY, plctl_verb_rm, "[-f] ID|NAME..."},
        {"wait", 1, VERB_ANY, plctl_verb_wait, "ID|NAME..."},
        {"logs", 1, VERB_ANY, plctl_verb_logs, "[-f] [--tail N] [-t] ID|NAME"},
        {"stats", 1, VERB_ANY, plctl_verb_stats, "[--no-stream] ID|NAME..."},
        {"events", 0, VERB_ANY, plctl_verb_events, "[--since N] [--no-follow]"},
        {"exec", 2, VERB_ANY, plctl_verb_exec, "[-i] [-t] [-e K=V]... [-w DIR] [-u USER] ID|NAME CMD [ARGS...]"},
        {"cp", 2, VERB_ANY, plctl_verb_cp, "SRC DST (one of them ID|NAME:/path; - for a tar on stdin/stdout)"},
        {"images", 1, VERB_ANY, plctl_verb_images,
         "pull REF | import FILE [--tag T] | ls [-q] | inspect REF... | rm REF... | gc"},
        {"vm", 1, VERB_ANY, plctl_verb_vm, "ls"},
        {"gc", 0, VERB_ANY, plctl_verb_gc, "[--remove]"},
        {"version", 0, VERB_ANY, plctl_verb_version, ""},
        {"doctor", 0, VERB_ANY, plctl_verb_doctor, "[--state-dir DIR]"},
        {"remote", 1, VERB_ANY, plctl_verb_remote, "add NAME https://HOST:PORT [--accept-fingerprint FP] | ls | rm NAME"},
        {"trust", 1, VERB_ANY, plctl_verb_trust, "add CERT.pem [--name N] | ls | rm FINGERPRINT|NAME"},
};

int plctl_verb_help(const char *verb) {
        return verb_usage(verbs, ELEMENTSOF(verbs), verb, stdout);
}

int plctl_common_option(Plctl *p, int opt, const char *verb, char *argv[]) {
        switch (opt) {
        case 'J': p->json = true; return -1;
        case 'h': plctl_verb_help(verb); return 0;
        default: return plctl_usage("%s: unknown option or missing argument: %s", verb, argv[optind - 1]);
        }
}

int plctl_fail(const Error *e) {
        fprintf(stderr, "plctl: %s\n", error_text(e));
        return EXIT_FAILURE;
}

int plctl_usage(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("plctl: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputs(" (see --help)\n", stderr);
        va_end(ap);
        return EXIT_USAGE;
}

int plctl_group_args(Plctl *p, const char *verb, int *n, char **args) {
        int k = 0;
        bool help = false;
        for (int i = 0; i < *n; i++)
                if (strcmp(args[i], "--json") == 0)
                        p->json = true;
                else if (strcmp(args[i], "--help") == 0 || strcmp(args[i], "-h") == 0)
                        help = true;
                else
                        args[k++] = args[i];
        args[k] = NULL;
        *n = k;
        if (help || k == 0) {
                plctl_verb_help(verb);
                return help ? 0 : EXIT_USAGE;
        }
        return -1;
}

int plctl_connect(Plctl *p, PlctlClient **ret, Error **err) {
        if (!p->client) {
                PlctlRemote rm;
                char *strings[5] = {0};
                int r = p->remote ? plctl_remote_load(p->remote, &rm, strings, err) : 0;
                if (r >= 0)
                        r = plctl_client_new(p->socket_path, p->remote ? &rm : NULL, &p->client, err);
                for (size_t i = 0; i < ELEMENTSOF(strings); i++)
                        free(strings[i]);
                if (r < 0)
                        return r;
        }
        *ret = p->client;
        return 0;
}

void plctl_print_json(json_t *j) {
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
        putchar('\n');
}

char *plctl_path(const char *fmt, const char *ref) {
        _cleanup_free_ char *e = plctl_escape(ref);
        char *s = NULL;
        if (!e || asprintf(&s, fmt, e) < 0)
                return NULL;
        return s;
}

const char *plctl_str(json_t *j, const char *key) {
        const char *s = json_string_value(json_object_get(j, key));
        return s ? s : "";
}

void plctl_short_id(const char *id, char out[13]) {
        if (strncmp(id, "sha256:", 7) == 0)
                id += 7;
        snprintf(out, 13, "%s", id);
}

int plctl_handle_take(PlctlClient *c, const char *ref, char **ret_handle, Error **err) {
        _cleanup_free_ char *path = plctl_path("/containers/%s/handle", ref);
        _cleanup_json_ json_t *j = NULL;
        if (!path)
                return error_oom(err);
        int r = plctl_call(c, "GET", path, NULL, &j, err);
        if (r < 0)
                return r;
        const char *h = json_string_value(json_object_get(j, "handle"));
        if (!h)
                return error_set(err, EBADMSG, "the daemon's answer holds no handle");
        return (*ret_handle = strdup(h)) ? 0 : error_oom(err);
}

int plctl_handle_put(PlctlClient *c, const char *handle, const char *what, json_t *body, Error **err) {
        char path[512];
        snprintf(path, sizeof path, "/handles/%s/%s", handle, what);
        int r = plctl_call(c, "PUT", path, body, NULL, err);
        return MIN(r, 0);
}

int plctl_handle_commit(PlctlClient *c, const char *handle, json_t **ret, Error **err) {
        char path[512];
        snprintf(path, sizeof path, "/handles/%s/commit", handle);
        int r = plctl_call(c, "POST", path, NULL, ret, err);
        return MIN(r, 0);
}

int plctl_set_state(PlctlClient *c, const char *ref, const char *state, json_t **ret, Error **err) {
        _cleanup_free_ char *handle = NULL;
        _cleanup_json_ json_t *body = json_pack("{s:s}", "state", state);
        if (!body)
                return error_oom(err);
        int r = plctl_handle_take(c, ref, &handle, err);
        if (r >= 0)
                r = plctl_handle_put(c, handle, "state", body, err);
        if (r >= 0)
                r = plctl_handle_commit(c, handle, ret, err);
        return r;
}

int plctl_wait_exit(PlctlClient *c, const char *ref, int *ret_code, Error **err) {
        _cleanup_free_ char *path = plctl_path("/containers/%s/wait", ref);
        _cleanup_json_ json_t *j = NULL;
        if (!path)
                return error_oom(err);
        int r = plctl_call(c, "POST", path, NULL, &j, err);
        if (r < 0)
                return r;
        if (!json_is_integer(json_object_get(j, "exit_code")))
                return error_set(err, EBADMSG, "the daemon's answer holds no exit_code");
        *ret_code = (int) json_integer_value(json_object_get(j, "exit_code"));
        return 0;
}

static void help(void) {
        printf("Usage: plctl [--socket PATH | --remote NAME] [--json] COMMAND [ARGS]\n\n"
               "The admin command line of portlayerd, over its REST API (docs/plctl.md).\n\n"
               "Options:\n"
               "  -s, --socket PATH   the daemon's socket (default $PORTLAYER_SOCKET, else\n"
               "                      " PLCTL_DEFAULT_SOCKET ")\n"
               "  -r, --remote NAME   a daemon added with plctl remote add, over TLS\n"
               "                      (default $PORTLAYER_REMOTE; --socket wins over it)\n"
               "      --json          machine output: the daemon's JSON (every command takes it)\n"
               "  -h, --help          this text (COMMAND --help: that command's usage)\n"
               "      --version       the version\n\n"
               "Commands:\n");
        verbs_print(verbs, ELEMENTSOF(verbs), stdout);
        printf("\nExit status: 0 success, 1 failure, 2 usage; run (without -d) and exec exit\n"
               "with the container's or the process's exit code.\n");
}

static int parse_global(int argc, char *argv[], Plctl *p) {
        static const struct option options[] = {
                {"socket", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'J'},
                {"remote", required_argument, NULL, 'r'},
                {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
                {},
        };
        int opt;
        bool socket_given = false;
        p->remote = getenv("PORTLAYER_REMOTE");
        if (p->remote && !*p->remote)
                p->remote = NULL;
        while ((opt = getopt_long(argc, argv, "+s:r:h", options, NULL)) >= 0)
                switch (opt) {
                case 's': p->socket_path = optarg; socket_given = true; break;
                case 'r': p->remote = optarg; break;
                case 'J': p->json = true; break;
                case 'h': help(); exit(0);
                case 'V': version_print(); exit(0);
                default: return plctl_usage("unknown option or missing argument: %s", argv[optind - 1]);
                }
        if (socket_given && p->remote && getenv("PORTLAYER_REMOTE") != p->remote)
                return plctl_usage("--socket and --remote name two daemons: give one");
        if (socket_given)
                p->remote = NULL;
        return 0;
}

int plctl_main(int argc, char *argv[]) {
        Plctl p = {0};
        opterr = 0;
        signal(SIGPIPE, SIG_IGN);
        int r = parse_global(argc, argv, &p);
        if (r != 0)
                return r;
        r = verbs_dispatch_after_options(verbs, ELEMENTSOF(verbs), argc, argv, &p);
        plctl_client_free(p.client);
        fflush(stdout);
        return r;
}
