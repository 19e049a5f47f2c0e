/* container-config.c: a container's desired configuration, as one JSON
 * object with a fixed schema.
 *
 * The same object travels through the REST API (a handle's fields), the
 * handle, the record on disk and inspect, so it is kept as JSON and checked
 * here, once, wherever it comes from: only known fields, each of its type,
 * every string and list bounded (the API is reachable by any local user of
 * the socket, and a record may have been edited by hand). */
#include "container-internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/parse-util.h"
#include "common/json/json-util.h"

typedef enum FieldKind {
        FIELD_STRING,
        FIELD_STRINGS,
        FIELD_ENV,
        FIELD_LABELS,
        FIELD_INT,
        FIELD_SIGNAL,
        FIELD_BOOL,
        FIELD_NETWORK,
        FIELD_PORTS,
        FIELD_MOUNTS,
} FieldKind;

typedef struct Field {
        const char *name;
        FieldKind kind;
        long long min, max; /* FIELD_INT */
} Field;

static const Field fields[] = {
        {"path", FIELD_STRING},
        {"args", FIELD_STRINGS},
        {"env", FIELD_ENV},
        {"workdir", FIELD_STRING},
        {"user", FIELD_STRING},
        {"memory_mb", FIELD_INT, VM_MEMORY_MIB_MIN, VM_MEMORY_MIB_MAX},
        {"vcpus", FIELD_INT, 1, VM_VCPUS_MAX},
        {"labels", FIELD_LABELS},
        {"stop_signal", FIELD_SIGNAL},
        {"stop_timeout_s", FIELD_INT, 0, 3600},
        {"cold_start", FIELD_BOOL}, /* boot a VM even when the warm pool has a guest ready */
        {"share_pages", FIELD_BOOL}, /* false: the VM's RAM is kept from the host's KSM */
        {"tty", FIELD_BOOL},
        {"open_stdin", FIELD_BOOL},
        {"tty_rows", FIELD_INT, 1, 65535},
        {"tty_cols", FIELD_INT, 1, 65535},
        {"network", FIELD_NETWORK},
        {"ports", FIELD_PORTS},
        {"mounts", FIELD_MOUNTS},
};

static const Field *field_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (strcmp(fields[i].name, name) == 0)
                        return &fields[i];
        return NULL;
}

/* A string without NUL bytes, at most CONTAINER_STRING_MAX bytes. */
static int check_string(const char *what, const json_t *v, Error **err) {
        if (!json_is_string(v))
                return error_set(err, EINVAL, "%s: must be a string", what);
        size_t len = json_string_length(v);
        if (len > CONTAINER_STRING_MAX)
                return error_set(err, EINVAL, "%s: longer than %d bytes", what, CONTAINER_STRING_MAX);
        if (strlen(json_string_value(v)) != len)
                return error_set(err, EINVAL, "%s: contains a NUL byte", what);
        return 0;
}

static int check_strings(const Field *f, const json_t *v, Error **err) {
        if (!json_is_array(v))
                return error_set(err, EINVAL, "%s: must be an array of strings", f->name);
        if (json_array_size(v) > CONTAINER_ARGS_MAX)
                return error_set(err, EINVAL, "%s: more than %d entries", f->name, CONTAINER_ARGS_MAX);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
                char what[64];
                snprintf(what, sizeof what, "%s[%zu]", f->name, i);
                int r = check_string(what, e, err);
                if (r < 0)
                        return r;
                if (f->kind == FIELD_ENV) {
                        const char *s = json_string_value(e), *eq = strchr(s, '=');
                        if (!eq || eq == s)
                                return error_set(err, EINVAL, "%s: '%s' is not NAME=value", what, s);
                }
        }
        return 0;
}

static int check_labels(const json_t *v, Error **err) {
        if (!json_is_object(v))
                return error_set(err, EINVAL, "labels: must be an object of strings");
        if (json_object_size(v) > CONTAINER_LABELS_MAX)
                return error_set(err, EINVAL, "labels: more than %d labels", CONTAINER_LABELS_MAX);
        const char *key;
        json_t *e;
        json_object_foreach((json_t *) v, key, e) {
                if (!key[0] || strlen(key) > 256 || strchr(key, '='))
                        return error_set(err, EINVAL, "labels: bad key '%.64s' (1-256 bytes, no '=')", key);
                char what[300];
                snprintf(what, sizeof what, "labels.%s", key);
                int r = check_string(what, e, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_field(const Field *f, const json_t *v, Error **err) {
        switch (f->kind) {
        case FIELD_STRING:
                return check_string(f->name, v, err);
        case FIELD_STRINGS:
        case FIELD_ENV:
                return check_strings(f, v, err);
        case FIELD_LABELS:
                return check_labels(v, err);
        case FIELD_INT:
                if (!json_is_integer(v) || json_integer_value(v) < f->min || json_integer_value(v) > f->max)
                        return error_set(err, EINVAL, "%s: must be an integer from %lld to %lld", f->name, f->min,
                                         f->max);
                return 0;
        case FIELD_SIGNAL:
                if (check_string(f->name, v, err) < 0 || container_signal_from_string(json_string_value(v)) < 0)
                        return error_set(err, EINVAL, "%s: not a signal name or number", f->name);
                return 0;
        case FIELD_BOOL:
                return json_is_boolean(v) ? 0 : error_set(err, EINVAL, "%s: must be a boolean", f->name);
        case FIELD_NETWORK:
                if (!json_is_string(v))
                        return error_set(err, EINVAL, "network: must be a string");
                return network_name_validate(json_string_value(v), err);
        case FIELD_PORTS:
                return network_ports_parse(v, NULL, NULL, err);
        case FIELD_MOUNTS:
                return container_mounts_check(v, err);
        }
        return -EINVAL;
}

int container_config_validate(const json_t *config, Error **err) {
        if (!json_is_object(config))
                return error_set(err, EINVAL, "configuration: must be a JSON object");
        const char *key;
        json_t *v;
        json_object_foreach((json_t *) config, key, v) {
                const Field *f = field_find(key);
                if (!f)
                        return error_set(err, EINVAL, "unknown field '%.64s'", key);
                int r = check_field(f, v, err);
                if (r < 0)
                        return r;
        }
        const json_t *path = json_object_get(config, "path");
        if (path && json_string_length(path) == 0)
                return error_set(err, EINVAL, "path: must not be empty");
        const json_t *wd = json_object_get(config, "workdir");
        if (wd && json_string_value(wd)[0] != '/')
                return error_set(err, EINVAL, "workdir: must be an absolute path");
        return 0;
}

static json_t *strings_to_json(const OciStrings *s, size_t from) {
        json_t *a = json_array();
        for (size_t i = from; a && i < s->n; i++)
                if (json_array_append_new(a, json_string(s->v[i])) < 0)
                        return json_decref(a), NULL;
        return a;
}

int container_config_from_image(const StoreImage *img, json_t **ret, Error **err) {
        const OciConfig *oc = img->config;
        /* Docker's rule: the program is Entrypoint + Cmd; args never repeat it. */
        OciStrings all = {0};
        _cleanup_free_ char **v = calloc(oc->entrypoint.n + oc->cmd.n + 1, sizeof(char *));
        if (!v)
                return error_oom(err);
        for (size_t i = 0; i < oc->entrypoint.n; i++)
                v[all.n++] = oc->entrypoint.v[i];
        for (size_t i = 0; i < oc->cmd.n; i++)
                v[all.n++] = oc->cmd.v[i];
        all.v = v;
        _cleanup_json_ json_t *c = json_pack("{s:o, s:o, s:i, s:i, s:o}", "args", strings_to_json(&all, 1), "env",
                                             strings_to_json(&oc->env, 0), "memory_mb", CONTAINER_MEMORY_MB_DEFAULT,
                                             "vcpus", 1, "labels", json_object());
        if (!c)
                return error_oom(err);
        if (all.n > 0 && json_object_set_new(c, "path", json_string(all.v[0])) < 0)
                return error_oom(err);
        for (size_t i = 0; i < oc->label_keys.n; i++)
                (void) json_object_set_new(json_object_get(c, "labels"), oc->label_keys.v[i],
                                           json_string(oc->label_values.v[i]));
        if (oc->working_dir && oc->working_dir[0] == '/')
                (void) json_object_set_new(c, "workdir", json_string(oc->working_dir));
        if (oc->user && oc->user[0])
                (void) json_object_set_new(c, "user", json_string(oc->user));
        if (oc->stop_signal && container_signal_from_string(oc->stop_signal) > 0)
                (void) json_object_set_new(c, "stop_signal", json_string(oc->stop_signal));
        /* The image is untrusted too: what it gives must pass the same checks. */
        int r = container_config_validate(c, err);
        if (r < 0)
                return error_prefix(err, "image %s", img->id);
        *ret = TAKE_PTR(c);
        return 0;
}

static const char **strings_of(const json_t *a, const char *first) {
        size_t n = json_array_size(a), k = 0;
        const char **v = calloc(n + 2, sizeof(char *));
        if (!v)
                return NULL;
        if (first)
                v[k++] = first;
        for (size_t i = 0; i < n; i++)
                v[k++] = json_string_value(json_array_get(a, i));
        return v;
}

int container_config_argv(const json_t *config, const char ***ret_argv, const char ***ret_env, Error **err) {
        const char *path = json_string_value(json_object_get(config, "path"));
        if (!path)
                return error_set(err, EINVAL, "no program to run: the image has no Entrypoint or Cmd and no path was set");
        _cleanup_free_ const char **argv = strings_of(json_object_get(config, "args"), path);
        _cleanup_free_ const char **env = strings_of(json_object_get(config, "env"), NULL);
        if (!argv || !env)
                return error_oom(err);
        *ret_argv = TAKE_PTR(argv);
        *ret_env = TAKE_PTR(env);
        return 0;
}

int container_config_stop_signal(const json_t *config) {
        const char *s = json_string_value(json_object_get(config, "stop_signal"));
        int sig = s ? container_signal_from_string(s) : -EINVAL;
        return sig > 0 ? sig : SIGTERM;
}

int container_signal_from_string(const char *s) {
        static const struct {
                const char *name;
                int sig;
        } names[] = {
                {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL}, {"USR1", SIGUSR1},
                {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"STOP", SIGSTOP}, {"CONT", SIGCONT}, {"WINCH", SIGWINCH},
                {"PWR", SIGPWR},   {"ALRM", SIGALRM}, {"ABRT", SIGABRT},
        };
        if (!s || !*s)
                return -EINVAL;
        if (s[0] >= '0' && s[0] <= '9') {
                int v;
                return safe_atoi(s, &v) < 0 || v < 1 || v > 64 ? -EINVAL : v;
        }
        if (strncasecmp(s, "SIG", 3) == 0)
                s += 3;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcasecmp(s, names[i].name) == 0)
                        return names[i].sig;
        return -EINVAL;
}
