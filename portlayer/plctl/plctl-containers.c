/* plctl-containers.c: the container verbs of plctl: ps, inspect, create,
 * run, start, stop, kill, pause, unpause, rm, wait. Every change goes
 * through a handle and one commit (docs/api.md); a verb naming several
 * containers goes on past a failure, reports each, and exits 1 if any
 * failed. With --json these verbs print the daemon's JSON: a list, one
 * entry per container named. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/parse-util.h"
#include "common/json/json-util.h"
#include "plctl-internal.h"

#define CREATE_LIST_MAX 1024

/* --- ps, inspect --- */

typedef struct PsFilter {
        const char *state;
        char labels[4096]; /* label=k=v,k2 as the API takes it */
} PsFilter;

static int ps_filter_add(PsFilter *f, const char *arg) {
        if (strncmp(arg, "state=", 6) == 0 && arg[6]) {
                f->state = arg + 6;
                return 0;
        }
        if (strncmp(arg, "label=", 6) == 0 && arg[6] && !strchr(arg + 6, ',')) {
                size_t n = strlen(f->labels);
                int k = snprintf(f->labels + n, sizeof f->labels - n, "%s%s", n ? "," : "", arg + 6);
                return k < 0 || (size_t) k >= sizeof f->labels - n ? -E2BIG : 0;
        }
        return -EINVAL;
}

static void ps_row(json_t *c, bool quiet) {
        char id[13], status[32], command[64];
        plctl_short_id(plctl_str(c, "id"), id);
        if (quiet) {
                printf("%s\n", id);
                return;
        }
        const char *state = plctl_str(c, "state");
        json_int_t code = json_integer_value(json_object_get(c, "exit_code"));
        if (strcmp(state, "stopped") == 0 && code >= 0)
                snprintf(status, sizeof status, "stopped (%" JSON_INTEGER_FORMAT ")", code);
        else
                snprintf(status, sizeof status, "%s", state);
        json_t *cfg = json_object_get(c, "config"), *a;
        size_t i, n = (size_t) snprintf(command, sizeof command, "%s", plctl_str(cfg, "path"));
        json_array_foreach(json_object_get(cfg, "args"), i, a)
                if (n < sizeof command)
                        n += (size_t) snprintf(command + n, sizeof command - n, " %s", json_string_value(a));
        if (strlen(command) > 30)
                strcpy(command + 27, "...");
        char created[20];
        snprintf(created, sizeof created, "%s", plctl_str(c, "created"));
        if (strlen(created) == 19)
                created[10] = ' ';
        /* how it last started: from the warm pool ("template") or booted ("cold") */
        const char *start = plctl_str(c, "start_path");
        printf("%-12s  %-24s  %-30s  %-19s  %-14s  %-8s  %s\n", id, plctl_str(c, "image"), command, created, status,
               *start ? start : "-", plctl_str(c, "name"));
}

int plctl_verb_ps(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        static const struct option options[] = {{"all", no_argument, NULL, 'a'}, {"quiet", no_argument, NULL, 'q'},
                                                {"filter", required_argument, NULL, 'f'}, PLCTL_COMMON_OPTIONS, {}};
        bool all = false, quiet = false;
        PsFilter f = {0};
        int opt, r;
        while ((opt = getopt_long(argc, argv, "aqf:h", options, NULL)) >= 0)
                if (opt == 'a' || opt == 'q')
                        *(opt == 'a' ? &all : &quiet) = true;
                else if (opt == 'f') {
                        if (ps_filter_add(&f, optarg) < 0)
                                return plctl_usage("ps: bad --filter (state=S or label=K[=V]): %s", optarg);
                } else if ((r = plctl_common_option(p, opt, "ps", argv)) >= 0)
                        return r;
        if (optind != argc)
                return plctl_usage("ps: unexpected argument: %s", argv[optind]);

        _cleanup_error_ Error *e = NULL;
        _cleanup_json_ json_t *list = NULL;
        _cleanup_free_ char *state = f.state ? plctl_escape(f.state) : NULL, *labels = plctl_escape(f.labels);
        PlctlClient *c;
        char path[8192];
        snprintf(path, sizeof path, "/containers?%s%s%s%s", state ? "state=" : "", state ? state : "",
                 f.labels[0] ? (state ? "&label=" : "label=") : "", f.labels[0] && labels ? labels : "");
        if (plctl_connect(p, &c, &e) < 0 || plctl_call(c, "GET", path, NULL, &list, &e) < 0)
                return plctl_fail(e);
        if (!json_is_array(list))
                return error_set(&e, EBADMSG, "the daemon's list is not an array"), plctl_fail(e);

        /* Without -a or a state filter: what runs (paused included), as docker ps. */
        for (size_t i = json_array_size(list); !all && !f.state && i-- > 0;) {
                const char *s = plctl_str(json_array_get(list, i), "state");
                if (strcmp(s, "created") == 0 || strcmp(s, "stopped") == 0)
                        json_array_remove(list, i);
        }
        if (p->json) {
                plctl_print_json(list);
                return 0;
        }
        if (!quiet)
                printf("%-12s  %-24s  %-30s  %-19s  %-14s  %-8s  %s\n", "CONTAINER ID", "IMAGE", "COMMAND", "CREATED",
                       "STATUS", "START", "NAME");
        size_t i;
        json_t *ct;
        json_array_foreach(list, i, ct)
                ps_row(ct, quiet);
        return 0;
}

/* Runs one(c, ref, &result, &e) for each ref in argv[optind..]; prints
 * what each gives back (the ref itself without --json, the results as a
 * list with it; echo false: nothing but the list) and each failure as "plctl: REF: message". */
typedef int (*EachFn)(PlctlClient *c, const char *ref, void *arg, json_t **ret, Error **err);

static int for_each_ref(Plctl *p, int argc, char *argv[], EachFn one, void *arg, bool echo) {
        _cleanup_error_ Error *e = NULL;
        _cleanup_json_ json_t *out = json_array();
        PlctlClient *c;
        if (!out)
                return error_oom(&e), plctl_fail(e);
        if (plctl_connect(p, &c, &e) < 0)
                return plctl_fail(e);
        int status = 0;
        for (int i = optind; i < argc; i++) {
                _cleanup_error_ Error *ei = NULL;
                json_t *result = NULL;
                if (one(c, argv[i], arg, &result, &ei) < 0) {
                        fprintf(stderr, "plctl: %s: %s\n", argv[i], error_text(ei));
                        status = EXIT_FAILURE;
                        continue;
                }
                if (!result)
                        result = json_pack("{s:s}", "id", argv[i]);
                if (!p->json && echo)
                        printf("%s\n", argv[i]);
                json_array_append_new(out, result);
        }
        if (p->json)
                plctl_print_json(out);
        return status;
}

/* Parses the options of verbs that take only the common ones. */
static int only_common(Plctl *p, int argc, char *argv[], const char *verb) {
        static const struct option options[] = {PLCTL_COMMON_OPTIONS, {}};
        int opt, r;
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                if ((r = plctl_common_option(p, opt, verb, argv)) >= 0)
                        return r;
        if (optind >= argc)
                return plctl_usage("%s: name at least one container", verb);
        return -1;
}

static int inspect_one(PlctlClient *c, const char *ref, void *arg, json_t **ret, Error **err) {
        _cleanup_free_ char *path = plctl_path("/containers/%s", ref);
        if (!path)
                return error_oom(err);
        return MIN(plctl_call(c, "GET", path, NULL, ret, err), 0);
}

int plctl_verb_inspect(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        int r = only_common(p, argc, argv, "inspect");
        if (r >= 0)
                return r;
        p->json = true; /* inspect's output is the daemon's JSON either way */
        return for_each_ref(p, argc, argv, inspect_one, NULL, true);
}

/* --- create, run --- */

typedef struct CreateArgs {
        const char *image, *name, *workdir, *user;
        const char *env[CREATE_LIST_MAX], *labels[CREATE_LIST_MAX];
        size_t n_env, n_labels;
        uint64_t memory_mb;
        unsigned vcpus;
        char **cmd; /* NULL: the image's */
        int n_cmd;
        bool detach, remove, cold_start, no_share_pages;
} CreateArgs;

static int create_parse(Plctl *p, int argc, char *argv[], const char *verb, CreateArgs *a) {
        static const struct option options[] = {
                {"name", required_argument, NULL, 'n'},   {"env", required_argument, NULL, 'e'},
                {"workdir", required_argument, NULL, 'w'}, {"user", required_argument, NULL, 'u'},
                {"memory", required_argument, NULL, 'm'}, {"cpus", required_argument, NULL, 'c'},
                {"label", required_argument, NULL, 'l'},  {"detach", no_argument, NULL, 'd'},
                {"rm", no_argument, NULL, 'R'},           {"cold-start", no_argument, NULL, 'C'},
                {"no-share-pages", no_argument, NULL, 'P'},
                PLCTL_COMMON_OPTIONS,
                {},
        };
        bool run = strcmp(verb, "run") == 0;
        int opt, r;
        uint32_t v;
        while ((opt = getopt_long(argc, argv, run ? "n:e:w:u:m:dh" : "n:e:w:u:m:h", options, NULL)) >= 0)
                switch (opt) {
                case 'n': a->name = optarg; break;
                case 'w': a->workdir = optarg; break;
                case 'u': a->user = optarg; break;
                case 'C': a->cold_start = true; break;
                case 'P': a->no_share_pages = true; break;
                case 'e':
                case 'l':
                        if (!strchr(optarg, '=') || optarg[0] == '=' ||
                            (opt == 'e' ? a->n_env : a->n_labels) >= CREATE_LIST_MAX)
                                return plctl_usage("%s: bad %s (want K=V): %s", verb, opt == 'e' ? "-e" : "--label",
                                                   optarg);
                        if (opt == 'e')
                                a->env[a->n_env++] = optarg;
                        else
                                a->labels[a->n_labels++] = optarg;
                        break;
                case 'm':
                        if (safe_atou64(optarg, &a->memory_mb) < 0 || a->memory_mb == 0)
                                return plctl_usage("%s: bad -m (MiB): %s", verb, optarg);
                        break;
                case 'c':
                        if (safe_atou32(optarg, &v) < 0 || v == 0)
                                return plctl_usage("%s: bad --cpus: %s", verb, optarg);
                        a->vcpus = v;
                        break;
                case 'd':
                case 'R':
                        if (!run)
                                return plctl_usage("%s: unknown option: %s", verb, argv[optind - 1]);
                        *(opt == 'd' ? &a->detach : &a->remove) = true;
                        break;
                default:
                        if ((r = plctl_common_option(p, opt, verb, argv)) >= 0)
                                return r;
                }
        if (optind >= argc)
                return plctl_usage("%s: no image given", verb);
        a->image = argv[optind];
        if (optind + 1 < argc) {
                a->cmd = argv + optind + 1;
                a->n_cmd = argc - optind - 1;
        }
        return -1;
}

/* K=V entries of add into the list (replacing an entry with the same K). */
static int env_merge(json_t *list, const char *const *add, size_t n) {
        for (size_t i = 0; i < n; i++) {
                size_t klen = (size_t) (strchr(add[i], '=') - add[i]) + 1;
                size_t j;
                json_t *v;
                bool replaced = false;
                json_array_foreach(list, j, v)
                        if (json_is_string(v) && strncmp(json_string_value(v), add[i], klen) == 0) {
                                json_array_set_new(list, j, json_string(add[i]));
                                replaced = true;
                                break;
                        }
                if (!replaced && json_array_append_new(list, json_string(add[i])) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* The handle's calls for the options: entry point, limits, labels. */
static int create_configure(PlctlClient *c, const char *handle, const CreateArgs *a, Error **err) {
        char path[256];
        _cleanup_json_ json_t *h = NULL;
        snprintf(path, sizeof path, "/handles/%s", handle);
        int r = plctl_call(c, "GET", path, NULL, &h, err);
        if (r < 0)
                return r;
        json_t *cfg = json_object_get(h, "config");

        _cleanup_json_ json_t *ep = json_object();
        if (!ep)
                return error_oom(err);
        if (a->cmd) {
                json_t *args = json_array();
                for (int i = 1; args && i < a->n_cmd; i++)
                        json_array_append_new(args, json_string(a->cmd[i]));
                json_object_set_new(ep, "path", json_string(a->cmd[0]));
                json_object_set_new(ep, "args", args);
        }
        if (a->n_env > 0) {
                json_t *env = json_copy(json_object_get(cfg, "env"));
                if (!env)
                        env = json_array();
                if (!env || env_merge(env, a->env, a->n_env) < 0)
                        return json_decref(env), error_oom(err);
                json_object_set_new(ep, "env", env);
        }
        if (a->workdir)
                json_object_set_new(ep, "workdir", json_string(a->workdir));
        if (a->user)
                json_object_set_new(ep, "user", json_string(a->user));
        if (json_object_size(ep) > 0 && (r = plctl_handle_put(c, handle, "entrypoint", ep, err)) < 0)
                return r;

        if (a->memory_mb || a->vcpus || a->cold_start || a->no_share_pages) {
                _cleanup_json_ json_t *lim = json_object();
                if (a->memory_mb)
                        json_object_set_new(lim, "memory_mb", json_integer((json_int_t) a->memory_mb));
                if (a->vcpus)
                        json_object_set_new(lim, "vcpus", json_integer(a->vcpus));
                if (a->cold_start)
                        json_object_set_new(lim, "cold_start", json_true());
                if (a->no_share_pages)
                        json_object_set_new(lim, "share_pages", json_false());
                if ((r = plctl_handle_put(c, handle, "limits", lim, err)) < 0)
                        return r;
        }
        if (a->n_labels > 0) {
                json_t *labels = json_copy(json_object_get(cfg, "labels"));
                if (!labels)
                        labels = json_object();
                for (size_t i = 0; labels && i < a->n_labels; i++) {
                        char *eq = strchr(a->labels[i], '=');
                        _cleanup_free_ char *k = strndup(a->labels[i], (size_t) (eq - a->labels[i]));
                        if (k)
                                json_object_set_new(labels, k, json_string(eq + 1));
                }
                _cleanup_json_ json_t *body = json_pack("{s:o}", "labels", labels);
                if (!body)
                        return error_oom(err);
                if ((r = plctl_handle_put(c, handle, "labels", body, err)) < 0)
                        return r;
        }
        return 0;
}

/* POST /containers, the options, optionally the running state, commit. */
static int create_commit(PlctlClient *c, const CreateArgs *a, bool start, json_t **ret, Error **err) {
        _cleanup_json_ json_t *body = json_pack("{s:s}", "image", a->image), *created = NULL;
        if (!body || (a->name && json_object_set_new(body, "name", json_string(a->name)) < 0))
                return error_oom(err);
        int r = plctl_call(c, "POST", "/containers", body, &created, err);
        if (r < 0)
                return r;
        const char *handle = plctl_str(created, "handle");
        r = create_configure(c, handle, a, err);
        if (r >= 0 && start) {
                _cleanup_json_ json_t *st = json_pack("{s:s}", "state", "running");
                r = st ? plctl_handle_put(c, handle, "state", st, err) : error_oom(err);
        }
        if (r >= 0)
                r = plctl_handle_commit(c, handle, ret, err);
        return r;
}

int plctl_verb_create(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        CreateArgs a = {0};
        int r = create_parse(p, argc, argv, "create", &a);
        if (r >= 0)
                return r;
        _cleanup_error_ Error *e = NULL;
        _cleanup_json_ json_t *ct = NULL;
        PlctlClient *c;
        if (plctl_connect(p, &c, &e) < 0 || create_commit(c, &a, false, &ct, &e) < 0)
                return plctl_fail(e);
        if (p->json)
                plctl_print_json(ct);
        else
                printf("%s\n", plctl_str(ct, "id"));
        return 0;
}

static int remove_one(PlctlClient *c, const char *ref, void *arg, json_t **ret, Error **err);

int plctl_verb_run(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        CreateArgs a = {0};
        int r = create_parse(p, argc, argv, "run", &a);
        if (r >= 0)
                return r;
        _cleanup_error_ Error *e = NULL;
        _cleanup_json_ json_t *ct = NULL;
        PlctlClient *c;
        if (plctl_connect(p, &c, &e) < 0 || create_commit(c, &a, true, &ct, &e) < 0)
                return plctl_fail(e);
        const char *id = plctl_str(ct, "id");
        if (a.detach) {
                if (p->json)
                        plctl_print_json(ct);
                else
                        printf("%s\n", id);
                return 0;
        }
        int code = 0;
        if (plctl_logs_print(c, id, true, -1, false, p->json, &e) < 0 || plctl_wait_exit(c, id, &code, &e) < 0)
                return plctl_fail(e);
        bool force = true;
        if (a.remove && remove_one(c, id, &force, NULL, &e) < 0)
                return plctl_fail(e);
        return code;
}

/* --- start, stop, kill, pause, unpause, rm, wait --- */

static int state_one(PlctlClient *c, const char *ref, void *arg, json_t **ret, Error **err) {
        return plctl_set_state(c, ref, arg, ret, err);
}

static int state_verb(int argc, char *argv[], void *userdata, const char *verb, const char *state) {
        Plctl *p = userdata;
        int r = only_common(p, argc, argv, verb);
        return r >= 0 ? r : for_each_ref(p, argc, argv, state_one, (void *) state, true);
}

int plctl_verb_start(int argc, char *argv[], void *userdata) {
        return state_verb(argc, argv, userdata, "start", "running");
}

int plctl_verb_pause(int argc, char *argv[], void *userdata) {
        return state_verb(argc, argv, userdata, "pause", "paused");
}

int plctl_verb_unpause(int argc, char *argv[], void *userdata) {
        return state_verb(argc, argv, userdata, "unpause", "running");
}

/* stop -t: the stop timeout is part of the configuration (it applies at
 * once, and stays); one commit sets it and the state. */
static int stop_one(PlctlClient *c, const char *ref, void *arg, json_t **ret, Error **err) {
        const long *timeout = arg;
        _cleanup_free_ char *handle = NULL;
        _cleanup_json_ json_t *st = json_pack("{s:s}", "state", "stopped");
        if (!st)
                return error_oom(err);
        int r = plctl_handle_take(c, ref, &handle, err);
        if (r >= 0 && *timeout >= 0) {
                _cleanup_json_ json_t *ep = json_pack("{s:I}", "stop_timeout_s", (json_int_t) *timeout);
                r = ep ? plctl_handle_put(c, handle, "entrypoint", ep, err) : error_oom(err);
        }
        if (r >= 0)
                r = plctl_handle_put(c, handle, "state", st, err);
        if (r >= 0)
                r = plctl_handle_commit(c, handle, ret, err);
        return r;
}

int plctl_verb_stop(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        static const struct option options[] = {{"time", required_argument, NULL, 't'}, PLCTL_COMMON_OPTIONS, {}};
        long timeout = -1;
        int opt, r, v;
        while ((opt = getopt_long(argc, argv, "t:h", options, NULL)) >= 0)
                if (opt == 't') {
                        if (safe_atoi(optarg, &v) < 0 || v < 0 || v > 3600)
                                return plctl_usage("stop: bad -t (0..3600 seconds): %s", optarg);
                        timeout = v;
                } else if ((r = plctl_common_option(p, opt, "stop", argv)) >= 0)
                        return r;
        if (optind >= argc)
                return plctl_usage("stop: name at least one container");
        return for_each_ref(p, argc, argv, stop_one, &timeout, true);
}

static int kill_one(PlctlClient *c, const char *ref, void *arg, json_t **ret, Error **err) {
        const char *sig = arg;
        int num;
        _cleanup_free_ char *path = plctl_path("/containers/%s/signal", ref);
        _cleanup_json_ json_t *body = safe_atoi(sig, &num) == 0 ? json_pack("{s:i}", "signal", num)
                                                                : json_pack("{s:s}", "signal", sig);
        if (!path || !body)
                return error_oom(err);
        return MIN(plctl_call(c, "POST", path, body, NULL, err), 0);
}

int plctl_verb_kill(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        static const struct option options[] = {{"signal", required_argument, NULL, 's'}, PLCTL_COMMON_OPTIONS, {}};
        const char *sig = "KILL";
        int opt, r;
        while ((opt = getopt_long(argc, argv, "s:h", options, NULL)) >= 0)
                if (opt == 's')
                        sig = optarg;
                else if ((r = plctl_common_option(p, opt, "kill", argv)) >= 0)
                        return r;
        if (optind >= argc)
                return plctl_usage("kill: name at least one container");
        return for_each_ref(p, argc, argv, kill_one, (void *) sig, true);
}

static int remove_one(PlctlClient *c, const char *ref, void *arg, json_t **ret, Error **err) {
        const bool *force = arg;
        _cleanup_free_ char *path = plctl_path(*force ? "/containers/%s?force=1" : "/containers/%s", ref);
        if (!path)
                return error_oom(err);
        return MIN(plctl_call(c, "DELETE", path, NULL, NULL, err), 0);
}

int plctl_verb_rm(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        static const struct option options[] = {{"force", no_argument, NULL, 'f'}, PLCTL_COMMON_OPTIONS, {}};
        bool force = false;
        int opt, r;
        while ((opt = getopt_long(argc, argv, "fh", options, NULL)) >= 0)
                if (opt == 'f')
                        force = true;
                else if ((r = plctl_common_option(p, opt, "rm", argv)) >= 0)
                        return r;
        if (optind >= argc)
                return plctl_usage("rm: name at least one container");
        return for_each_ref(p, argc, argv, remove_one, &force, true);
}

static int wait_one(PlctlClient *c, const char *ref, void *arg, json_t **ret, Error **err) {
        int code;
        int r = plctl_wait_exit(c, ref, &code, err);
        if (r < 0)
                return r;
        *ret = json_pack("{s:s, s:i}", "id", ref, "exit_code", code);
        if (!*((bool *) arg))
                printf("%d\n", code);
        return 0;
}

int plctl_verb_wait(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        int r = only_common(p, argc, argv, "wait");
        if (r >= 0)
                return r;
        return for_each_ref(p, argc, argv, wait_one, &p->json, false);
}
