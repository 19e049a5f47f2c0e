/* docker-map.c: Docker's objects <-> the port layer's, without side
 * effects: create bodies into handle fields, containers into inspect and
 * list entries, states, filters, file modes. */
#include "docker-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/base/macro.h"
#include "common/json/json-util.h"

#define MIB (1024 * 1024)

/* Cmd and Entrypoint: an array of strings, a string (one word), or null. */
static int strings_field(const json_t *body, const char *name, json_t **ret, bool *given, Error **err) {
        json_t *v = json_object_get(body, name);
        *given = v && !json_is_null(v);
        *ret = NULL;
        if (!*given)
                return 0;
        if (json_is_string(v))
                return (*ret = json_pack("[O]", v)) ? 0 : error_oom(err);
        if (!json_is_array(v))
                return error_set(err, EINVAL, "%s: must be an array of strings", name);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) if (!json_is_string(e)) return error_set(err, EINVAL, "%s[%zu]: must be a string",
                                                                              name, i);
        *ret = json_incref(v);
        return 0;
}

static json_t *strings_json(const OciStrings *s) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < s->n; i++)
                (void) json_array_append_new(a, json_string(s->v[i]));
        return a;
}

/* Image env, then the request's: a NAME given again replaces the image's. */
static int env_merge(const OciStrings *image, const json_t *given, json_t **ret, Error **err) {
        _cleanup_json_ json_t *env = strings_json(image);
        if (!env)
                return error_oom(err);
        if (given && !json_is_null(given) && !json_is_array(given))
                return error_set(err, EINVAL, "Env: must be an array of NAME=value strings");
        size_t i;
        json_t *e;
        json_array_foreach(given, i, e) {
                const char *s = json_string_value(e);
                if (!s)
                        return error_set(err, EINVAL, "Env[%zu]: must be a string", i);
                const char *eq = strchr(s, '=');
                size_t klen = eq ? (size_t) (eq - s) : strlen(s);
                if (!eq) /* Docker: "NAME" alone takes the client's value, which the CLI already did */
                        continue;
                size_t k;
                json_t *old;
                bool replaced = false;
                json_array_foreach(env, k, old) {
                        const char *o = json_string_value(old);
                        if (strncmp(o, s, klen) == 0 && o[klen] == '=') {
                                (void) json_array_set(env, k, e);
                                replaced = true;
                                break;
                        }
                }
                if (!replaced)
                        (void) json_array_append(env, e);
        }
        *ret = TAKE_PTR(env);
        return 0;
}

static bool nonempty(const json_t *v) {
        return v && !json_is_null(v) && !(json_is_string(v) && !json_string_length(v)) &&
               !(json_is_array(v) && json_array_size(v) == 0) && !(json_is_object(v) && json_object_size(v) == 0) &&
               !(json_is_false(v)) && !(json_is_integer(v) && json_integer_value(v) == 0);
}

/* One port-layer mount: {"volume" | "source", "target", "read_only"}. */
static int mount_add(json_t *mounts, const char *source, const char *target, bool ro, Error **err) {
        if (!source || !*source || !target || !*target)
                return error_set(err, EINVAL, "a mount needs a source and a target");
        json_t *m = json_pack("{s:s, s:s, s:b}", source[0] == '/' ? "source" : "volume", source, "target", target,
                              "read_only", ro);
        return m && json_array_append_new(mounts, m) >= 0 ? 0 : error_oom(err);
}

/* -v NAME:/path[:ro|rw], -v /host/dir:/path[:ro|rw] (HostConfig.Binds) and
 * --mount type=volume|bind (HostConfig.Mounts) -> the configuration's
 * "mounts"; NULL when there are none. An anonymous volume (-v /path,
 * Volumes without a Bind) is refused: it would need a name. */
static int mounts_map(const json_t *body, const json_t *hc, json_t **ret, Error **err) {
        *ret = NULL;
        json_t *binds = json_object_get(hc, "Binds"), *ms = json_object_get(hc, "Mounts");
        if ((binds && !json_is_null(binds) && !json_is_array(binds)) || (ms && !json_is_null(ms) && !json_is_array(ms)))
                return error_set(err, EINVAL, "HostConfig.Binds and HostConfig.Mounts: must be arrays");
        _cleanup_json_ json_t *mounts = json_array();
        if (!mounts)
                return error_oom(err);
        size_t i;
        json_t *b;
        json_array_foreach(binds, i, b) {
                const char *s = json_string_value(b);
                if (!s)
                        return error_set(err, EINVAL, "HostConfig.Binds[%zu]: must be a string", i);
                _cleanup_free_ char *copy = strdup(s);
                if (!copy)
                        return error_oom(err);
                char *target = strchr(copy, ':'), *mode = NULL;
                if (!target)
                        return error_set(err, EINVAL, "-v %.256s: anonymous volumes are not supported by portlayer: "
                                                      "name it (-v NAME:%.256s)", s, s);
                *target++ = 0;
                if ((mode = strchr(target, ':')))
                        *mode++ = 0;
                if (mode && strcmp(mode, "ro") != 0 && strcmp(mode, "rw") != 0)
                        return error_set(err, EINVAL, "-v %.256s: the mode may be ro or rw", s);
                int r = mount_add(mounts, copy, target, mode && strcmp(mode, "ro") == 0, err);
                if (r < 0)
                        return r;
        }
        json_array_foreach(ms, i, b) {
                const char *type = json_string_value(json_object_get(b, "Type"));
                json_t *ro = json_object_get(b, "ReadOnly");
                if (!type || (strcmp(type, "volume") != 0 && strcmp(type, "bind") != 0))
                        return error_set(err, EOPNOTSUPP, "--mount type=%.32s: not supported by portlayer (volume "
                                                          "and bind are)", type ? type : "");
                const char *src = json_string_value(json_object_get(b, "Source"));
                if (strcmp(type, "bind") == 0 && (!src || src[0] != '/'))
                        return error_set(err, EINVAL, "--mount type=bind: the source must be an absolute path");
                if (strcmp(type, "volume") == 0 && (!src || !*src || src[0] == '/'))
                        return error_set(err, EINVAL, "--mount type=volume: a volume name is required as source");
                int r = mount_add(mounts, src, json_string_value(json_object_get(b, "Target")), json_is_true(ro), err);
                if (r < 0)
                        return r;
        }
        /* Volumes: the image's or -v /path's anonymous volumes, unless a
         * bind above covers the path */
        const char *path;
        json_t *v;
        json_object_foreach((json_t *) json_object_get(body, "Volumes"), path, v) {
                bool covered = false;
                json_array_foreach(mounts, i, b) covered |= strcmp(json_string_value(json_object_get(b, "target")), path) == 0;
                if (!covered)
                        return error_set(err, EOPNOTSUPP, "anonymous volume %.256s: not supported by portlayer: name "
                                                          "it (-v NAME:%.256s)", path, path);
        }
        if (json_array_size(mounts) > 0)
                *ret = TAKE_PTR(mounts);
        return 0;
}

/* HostConfig.PortBindings ({"80/tcp": [{"HostIp", "HostPort"}]}) ->
 * the configuration's "ports"; NULL when there are none. */
static int ports_map(const json_t *hc, json_t **ret, Error **err) {
        *ret = NULL;
        json_t *pb = json_object_get(hc, "PortBindings");
        if (!pb || json_is_null(pb))
                return 0;
        if (!json_is_object(pb))
                return error_set(err, EINVAL, "HostConfig.PortBindings: must be an object");
        _cleanup_json_ json_t *ports = json_array();
        if (!ports)
                return error_oom(err);
        const char *key;
        json_t *binds;
        json_object_foreach(pb, key, binds) {
                unsigned cport = 0;
                char proto[8] = "tcp";
                int n = 0;
                if (sscanf(key, "%u%n/%7[a-z]%n", &cport, &n, proto, &n) < 1 || key[n] != 0 || cport < 1 ||
                    cport > 65535)
                        return error_set(err, EINVAL, "PortBindings: '%.32s' is not PORT/tcp or PORT/udp", key);
                size_t i;
                json_t *b;
                json_array_foreach(binds, i, b) {
                        const char *hp = json_string_value(json_object_get(b, "HostPort"));
                        const char *ip = json_string_value(json_object_get(b, "HostIp"));
                        unsigned hport = 0;
                        if (!hp || !*hp)
                                return error_set(err, EOPNOTSUPP, "-p %u: a host port chosen by the daemon is not "
                                                                  "supported by portlayer: give one", cport);
                        if (sscanf(hp, "%u%n", &hport, &n) != 1 || hp[n] != 0 || hport < 1 || hport > 65535)
                                return error_set(err, EINVAL, "PortBindings: host port '%.32s' is not a port", hp);
                        json_t *e = json_pack("{s:s, s:i, s:i, s:s}", "host_ip", ip && *ip ? ip : "0.0.0.0",
                                              "host_port", (int) hport, "container_port", (int) cport, "protocol",
                                              proto);
                        if (!e || json_array_append_new(ports, e) < 0)
                                return error_oom(err);
                }
        }
        if (json_array_size(ports) > 0)
                *ret = TAKE_PTR(ports);
        return 0;
}

int docker_console_size(const json_t *cs, uint16_t *rows, uint16_t *cols) {
        if (!cs || json_is_null(cs))
                return 0;
        if (!json_is_array(cs) || json_array_size(cs) != 2 || !json_is_integer(json_array_get(cs, 0)) ||
            !json_is_integer(json_array_get(cs, 1)))
                return -EINVAL;
        json_int_t h = json_integer_value(json_array_get(cs, 0)), w = json_integer_value(json_array_get(cs, 1));
        if (h < 0 || h > 65535 || w < 0 || w > 65535)
                return -EINVAL;
        if (h > 0 && w > 0) {
                *rows = (uint16_t) h;
                *cols = (uint16_t) w;
        }
        return 0;
}

/* The port layer's own switches, each a label (Labels) or an annotation
 * (HostConfig.Annotations) of "true" or "false": the value other than the
 * default sets the configuration field in f; the default or absent leaves
 * it out. -EINVAL for another value, or when the label and the annotation
 * disagree. */
static const struct {
        const char *label, *field;
        bool default_value;
} switches[] = {
        {DOCKER_LABEL_COLD_START, "cold_start", false},
        {DOCKER_LABEL_SHARE_PAGES, "share_pages", true},
};

static int switches_map(const json_t *body, const json_t *hc, json_t *f, Error **err) {
        const char *where[] = {"Labels", "HostConfig.Annotations"};
        const json_t *from[] = {json_object_get(body, "Labels"), json_object_get(hc, "Annotations")};
        for (size_t i = 0; i < ELEMENTSOF(from); i++)
                if (from[i] && !json_is_null(from[i]) && !json_is_object(from[i]))
                        return error_set(err, EINVAL, "%s: must be an object of strings", where[i]);
        for (size_t k = 0; k < ELEMENTSOF(switches); k++) {
                const char *label = switches[k].label;
                int want = -1;
                for (size_t i = 0; i < ELEMENTSOF(from); i++) {
                        json_t *v = json_object_get(from[i], label);
                        if (!v)
                                continue;
                        const char *s = json_string_value(v);
                        int b = s && strcmp(s, "true") == 0 ? 1 : s && strcmp(s, "false") == 0 ? 0 : -1;
                        if (b < 0)
                                return error_set(err, EINVAL, "%s.%s: '%.64s' is not true or false", where[i], label,
                                                 s ? s : "(not a string)");
                        if (want >= 0 && b != want)
                                return error_set(err, EINVAL, "%s: the label and the annotation disagree", label);
                        want = b;
                }
                if (want >= 0 && (bool) want != switches[k].default_value)
                        (void) json_object_set_new(f, switches[k].field, json_boolean(want));
        }
        return 0;
}

int docker_create_map(const json_t *body, const OciConfig *image, json_t **ret_fields, json_t **ret_warnings,
                      Error **err) {
        _cleanup_json_ json_t *f = json_object(), *warnings = json_array(), *cmd = NULL, *entry = NULL, *env = NULL;
        if (!f || !warnings)
                return error_oom(err);
        bool have_cmd, have_entry;
        int r = strings_field(body, "Cmd", &cmd, &have_cmd, err);
        if (r >= 0)
                r = strings_field(body, "Entrypoint", &entry, &have_entry, err);
        if (r < 0)
                return r;
        /* Docker's rule: an Entrypoint given replaces the image's and drops
         * its Cmd; a Cmd given replaces the image's Cmd. [""] is no entry point. */
        _cleanup_json_ json_t *argv = json_array();
        if (!argv)
                return error_oom(err);
        if (have_entry) {
                if (!(json_array_size(entry) == 1 && json_string_length(json_array_get(entry, 0)) == 0))
                        (void) json_array_extend(argv, entry);
        } else {
                _cleanup_json_ json_t *e = strings_json(&image->entrypoint);
                (void) json_array_extend(argv, e);
        }
        if (have_cmd && json_array_size(cmd) > 0)
                (void) json_array_extend(argv, cmd);
        else if (!have_entry) {
                _cleanup_json_ json_t *c = strings_json(&image->cmd);
                (void) json_array_extend(argv, c);
        }
        if (json_array_size(argv) == 0 || json_string_length(json_array_get(argv, 0)) == 0)
                return error_set(err, EINVAL, "no command specified");
        (void) json_object_set(f, "path", json_array_get(argv, 0));
        (void) json_array_remove(argv, 0);
        (void) json_object_set(f, "args", argv);

        if ((r = env_merge(&image->env, json_object_get(body, "Env"), &env, err)) < 0)
                return r;
        (void) json_object_set(f, "env", env);

        const char *const strings[][2] = {{"WorkingDir", "workdir"}, {"User", "user"}, {"StopSignal", "stop_signal"}};
        for (size_t i = 0; i < ELEMENTSOF(strings); i++) {
                json_t *v = json_object_get(body, strings[i][0]);
                if (v && !json_is_null(v) && !json_is_string(v))
                        return error_set(err, EINVAL, "%s: must be a string", strings[i][0]);
                if (json_string_length(v) > 0)
                        (void) json_object_set(f, strings[i][1], v);
        }
        const char *wd = json_string_value(json_object_get(f, "workdir"));
        if (wd && wd[0] != '/')
                return error_set(err, EINVAL, "WorkingDir: the working directory '%s' is invalid, it needs to be an "
                                              "absolute path", wd);
        const char *const bools[][2] = {{"Tty", "tty"}, {"OpenStdin", "open_stdin"}};
        for (size_t i = 0; i < ELEMENTSOF(bools); i++) {
                json_t *v = json_object_get(body, bools[i][0]);
                if (v && !json_is_boolean(v))
                        return error_set(err, EINVAL, "%s: must be a boolean", bools[i][0]);
                if (json_is_true(v))
                        (void) json_object_set_new(f, bools[i][1], json_true());
        }
        json_t *st = json_object_get(body, "StopTimeout");
        if (st && !json_is_null(st)) {
                if (!json_is_integer(st) || json_integer_value(st) < 0 || json_integer_value(st) > 3600)
                        return error_set(err, EINVAL, "StopTimeout: must be a number of seconds from 0 to 3600");
                (void) json_object_set(f, "stop_timeout_s", st);
        }

        json_t *labels = json_object();
        (void) json_object_set_new(f, "labels", labels);
        for (size_t i = 0; i < image->label_keys.n; i++)
                (void) json_object_set_new(labels, image->label_keys.v[i], json_string(image->label_values.v[i]));
        json_t *given = json_object_get(body, "Labels");
        if (given && !json_is_null(given) && !json_is_object(given))
                return error_set(err, EINVAL, "Labels: must be an object of strings");
        const char *key;
        json_t *v;
        json_object_foreach(given, key, v) {
                if (!json_is_string(v))
                        return error_set(err, EINVAL, "Labels.%.64s: must be a string", key);
                if (strncmp(key, DOCKER_LABEL_PREFIX, strlen(DOCKER_LABEL_PREFIX)) == 0)
                        return error_set(err, EINVAL, "Labels.%.64s: labels under " DOCKER_LABEL_PREFIX
                                                      " are the front end's own", key);
                (void) json_object_set(labels, key, v);
        }

        json_t *hc = json_object_get(body, "HostConfig");
        if (hc && !json_is_null(hc) && !json_is_object(hc))
                return error_set(err, EINVAL, "HostConfig: must be an object");
        if ((r = switches_map(body, hc, f, err)) < 0)
                return r;
        json_t *mem = json_object_get(hc, "Memory"), *cpus = json_object_get(hc, "NanoCpus"),
               *ar = json_object_get(hc, "AutoRemove");
        if ((mem && !json_is_integer(mem)) || (cpus && !json_is_integer(cpus)) || (ar && !json_is_boolean(ar)))
                return error_set(err, EINVAL, "HostConfig: Memory and NanoCpus must be integers, AutoRemove a boolean");
        if (json_integer_value(mem) > 0) {
                json_int_t mb = (json_integer_value(mem) + MIB - 1) / MIB;
                if (mb < 64)
                        return error_set(err, EINVAL, "Minimum memory limit allowed is 64MB");
                (void) json_object_set_new(f, "memory_mb", json_integer(mb));
        }
        if (json_integer_value(cpus) > 0)
                (void) json_object_set_new(f, "vcpus",
                                           json_integer((json_integer_value(cpus) + 999999999) / 1000000000));
        if (json_is_true(ar))
                (void) json_object_set_new(labels, DOCKER_LABEL_AUTO_REMOVE, json_string("true"));
        uint16_t rows = 0, cols = 0;
        if (docker_console_size(json_object_get(hc, "ConsoleSize"), &rows, &cols) < 0)
                return error_set(err, EINVAL, "HostConfig: ConsoleSize must be [height, width]");
        if (rows > 0 && json_is_true(json_object_get(f, "tty"))) {
                (void) json_object_set_new(f, "tty_rows", json_integer(rows));
                (void) json_object_set_new(f, "tty_cols", json_integer(cols));
        }

        json_t *mounts = NULL;
        if ((r = mounts_map(body, hc, &mounts, err)) < 0)
                return r;
        if (mounts)
                (void) json_object_set_new(f, "mounts", mounts);

        json_t *ports = NULL;
        if ((r = ports_map(hc, &ports, err)) < 0)
                return r;
        if (ports)
                (void) json_object_set_new(f, "ports", ports);
        const char *mode = json_string_value(json_object_get(hc, "NetworkMode"));
        if (mode && strcmp(mode, "host") == 0)
                return error_set(err, EOPNOTSUPP, "--network host: not supported by portlayer (each container is a VM)");
        if (mode && strncmp(mode, "container:", 10) == 0)
                return error_set(err, EOPNOTSUPP, "--network container:...: not supported by portlayer");
        if (mode && *mode && strcmp(mode, "default") != 0 && strcmp(mode, "bridge") != 0)
                (void) json_object_set_new(f, "network", json_string(mode));

        /* What would change what runs and is not there: refused. */
        static const char *const refused[][2] = {
                {"Privileged", "--privileged"},
                {"Devices", "--device"}, {"VolumesFrom", "--volumes-from"},
        };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                if (nonempty(json_object_get(hc, refused[i][0])))
                        return error_set(err, EOPNOTSUPP, "%s: not supported by portlayer yet", refused[i][1]);
        /* Harmless: said in Warnings. */
        static const char *const ignored[] = {"RestartPolicy", "CapAdd", "CapDrop", "Dns", "ExtraHosts",
                                              "LogConfig", "MemorySwap", "CpuShares", "Ulimits", "ShmSize"};
        for (size_t i = 0; i < ELEMENTSOF(ignored); i++) {
                json_t *x = json_object_get(hc, ignored[i]);
                if (strcmp(ignored[i], "RestartPolicy") == 0 || strcmp(ignored[i], "LogConfig") == 0)
                        x = json_object_get(x, strcmp(ignored[i], "LogConfig") == 0 ? "Type" : "Name");
                if (nonempty(x) && !(json_is_string(x) && strcmp(json_string_value(x), "no") == 0)) {
                        char w[128];
                        snprintf(w, sizeof w, "HostConfig.%s is not supported by portlayer and was ignored", ignored[i]);
                        (void) json_array_append_new(warnings, json_string(w));
                }
        }
        /* The port layer's own check, before any handle exists: a signal
         * name it does not know, a label key it refuses, a string too long */
        if ((r = container_config_validate(f, err)) < 0)
                return r;
        *ret_fields = TAKE_PTR(f);
        *ret_warnings = TAKE_PTR(warnings);
        return 0;
}

const char *docker_state_of(const char *s) {
        if (!s)
                return "dead";
        if (strcmp(s, "created") == 0)
                return "created";
        if (strcmp(s, "starting") == 0 || strcmp(s, "running") == 0 || strcmp(s, "stopping") == 0)
                return "running";
        if (strcmp(s, "paused") == 0)
                return "paused";
        if (strcmp(s, "removing") == 0)
                return "removing";
        if (strcmp(s, "stopped") == 0)
                return "exited";
        return "dead";
}

int64_t docker_time_ns(const char *s) {
        struct tm tm = {0};
        const char *rest = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
        if (!rest)
                return 0;
        int64_t ns = 0;
        if (*rest == '.') {
                int64_t scale = 100000000;
                for (rest++; *rest >= '0' && *rest <= '9'; rest++, scale /= 10)
                        ns += (*rest - '0') * scale;
        }
        return (int64_t) timegm(&tm) * 1000000000 + ns;
}

/* Docker's HumanDuration, roughly. */
static void human(int64_t ns, char *buf, size_t len) {
        int64_t s = ns / 1000000000;
        if (s < 1)
                snprintf(buf, len, "Less than a second");
        else if (s == 1)
                snprintf(buf, len, "1 second");
        else if (s < 60)
                snprintf(buf, len, "%lld seconds", (long long) s);
        else if (s / 60 == 1)
                snprintf(buf, len, "About a minute");
        else if (s < 46 * 60)
                snprintf(buf, len, "%lld minutes", (long long) s / 60);
        else if (s < 90 * 60)
                snprintf(buf, len, "About an hour");
        else if (s < 48 * 3600)
                snprintf(buf, len, "%lld hours", (long long) (s + 1800) / 3600);
        else
                snprintf(buf, len, "%lld days", (long long) s / 86400);
}

char *docker_status_text(const json_t *pl, int64_t now_ns) {
        const char *state = docker_state_of(json_string_value(json_object_get(pl, "state")));
        char d[64], *out = NULL;
        if (strcmp(state, "running") == 0 || strcmp(state, "paused") == 0) {
                human(now_ns - docker_time_ns(json_string_value(json_object_get(pl, "started_at"))), d, sizeof d);
                if (asprintf(&out, "Up %s%s", d, strcmp(state, "paused") == 0 ? " (Paused)" : "") < 0)
                        return NULL;
        } else if (strcmp(state, "exited") == 0) {
                int64_t fin = docker_time_ns(json_string_value(json_object_get(pl, "finished_at")));
                if (fin == 0)
                        return strdup("Exited");
                human(now_ns - fin, d, sizeof d);
                if (asprintf(&out, "Exited (%d) %s ago", (int) json_integer_value(json_object_get(pl, "exit_code")),
                             d) < 0)
                        return NULL;
        } else if (strcmp(state, "created") == 0)
                return strdup("Created");
        else if (strcmp(state, "removing") == 0)
                return strdup("Removal In Progress");
        else
                return strdup("Dead");
        return out;
}

/* Labels without the front end's own. */
static json_t *user_labels(const json_t *labels) {
        json_t *out = json_object();
        const char *k;
        json_t *v;
        json_object_foreach((json_t *) labels, k, v) if (strncmp(k, DOCKER_LABEL_PREFIX, strlen(DOCKER_LABEL_PREFIX)))
                (void) json_object_set(out, k, v);
        return out;
}

static json_t *command_argv(const json_t *config) {
        json_t *a = json_array();
        json_t *path = json_object_get(config, "path");
        if (a && path)
                (void) json_array_append(a, path);
        json_t *args = json_object_get(config, "args");
        if (a && json_is_array(args))
                (void) json_array_extend(a, args);
        return a;
}

/* The port layer's resolved mounts ([{"type", "source", "target",
 * "read_only"}]) as Docker's Mounts. */
static json_t *mounts_of(const json_t *pl) {
        json_t *out = json_array();
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(pl, "mounts"), i, m) {
                const char *type = json_string_value(json_object_get(m, "type"));
                const char *src = json_string_value(json_object_get(m, "source"));
                bool ro = json_is_true(json_object_get(m, "read_only"));
                bool volume = type && strcmp(type, "volume") == 0;
                json_t *e = json_pack("{s:s, s:s, s:O, s:s, s:b, s:s}", "Type", volume ? "volume" : "bind", "Source",
                                      src ? src : "", "Destination", json_object_get(m, "target"), "Mode",
                                      ro ? "ro" : "", "RW", !ro, "Propagation", volume ? "" : "rprivate");
                if (e && volume) {
                        (void) json_object_set_new(e, "Name", json_string(src ? src : ""));
                        (void) json_object_set_new(e, "Driver", json_string("local"));
                }
                if (out && e)
                        (void) json_array_append_new(out, e);
        }
        return out;
}

/* What Docker has no field for: how the container last started ("template"
 * from the warm pool, "cold", "" before its first start), the domain it
 * runs in, whether it asked for cold starts and whether its RAM may be
 * merged by KSM. */
static json_t *portlayer_of(const json_t *pl) {
        const char *path = json_string_value(json_object_get(pl, "start_path"));
        const char *domain = json_string_value(json_object_get(pl, "domain"));
        const json_t *config = json_object_get(pl, "config");
        return json_pack("{s:s, s:s, s:b, s:b}", "StartPath", path ? path : "", "Domain", domain ? domain : "",
                         "ColdStart", json_is_true(json_object_get(config, "cold_start")), "SharePages",
                         !json_is_false(json_object_get(config, "share_pages")));
}

json_t *docker_inspect_of(const json_t *pl) {
        const json_t *config = json_object_get(pl, "config");
        const char *state = docker_state_of(json_string_value(json_object_get(pl, "state")));
        const char *pl_state = json_string_value(json_object_get(pl, "state"));
        int exit_code = (int) json_integer_value(json_object_get(pl, "exit_code"));
        const char *error = json_string_value(json_object_get(pl, "error"));
        const char *name = json_string_value(json_object_get(pl, "name"));
        char docker_name[CONTAINER_NAME_MAX + 2];
        snprintf(docker_name, sizeof docker_name, "/%s", name ? name : "");
        const json_t *labels = json_object_get(config, "labels");
        json_int_t mem = json_integer_value(json_object_get(config, "memory_mb"));
        json_int_t vcpus = json_integer_value(json_object_get(config, "vcpus"));
        const char *stop_signal = json_string_value(json_object_get(config, "stop_signal"));
        json_t *timeout = json_object_get(config, "stop_timeout_s");
        bool running = strcmp(state, "running") == 0 || strcmp(state, "paused") == 0;
        const char *created = json_string_value(json_object_get(pl, "created"));
        const char *started = json_string_value(json_object_get(pl, "started_at"));
        const char *finished = json_string_value(json_object_get(pl, "finished_at"));
        json_t *argv = command_argv(config);
        json_t *args = json_deep_copy(json_object_get(config, "args"));
        json_t *j = json_pack(
                "{s:O, s:s, s:O?, s:o, s:{s:s, s:b, s:b, s:b, s:b, s:b, s:b, s:i, s:i, s:s, s:s, s:s}, s:O, s:s, "
                "s:i, s:s, s:s, s:s, "
                "s:{s:I, s:I, s:b, s:s, s:{s:s}, s:{}, s:[i, i]}, "
                "s:{s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:b, s:O?, s:o, s:n, s:O, s:s, s:o, s:s?, s:O?, s:{}}, "
                "s:{s:{}, s:{}, s:s, s:s, s:i, s:s}, s:[], s:s, s:s, s:s}",
                "Id", json_object_get(pl, "id"), "Created", created ? created : "", "Path", json_object_get(config, "path"),
                "Args", args ? args : json_array(),
                "State", "Status", state, "Running", running, "Paused", strcmp(state, "paused") == 0, "Restarting",
                false, "OOMKilled", false, "Dead", strcmp(state, "dead") == 0, "Removing",
                strcmp(state, "removing") == 0, "Pid", (int) json_integer_value(json_object_get(pl, "pid")),
                "ExitCode", exit_code < 0 ? 0 : exit_code, "Error", error ? error : "", "StartedAt",
                started && *started ? started : "0001-01-01T00:00:00Z", "FinishedAt",
                finished && *finished ? finished : "0001-01-01T00:00:00Z",
                "Image", json_object_get(pl, "image_id"), "Name", docker_name, "RestartCount", 0, "Driver",
                "portlayer", "Platform", "linux", "ProcessLabel", pl_state ? pl_state : "",
                "HostConfig", "Memory", mem * MIB, "NanoCpus", vcpus * 1000000000, "AutoRemove",
                json_is_string(json_object_get(labels, DOCKER_LABEL_AUTO_REMOVE)), "NetworkMode", "default",
                "RestartPolicy", "Name", "no", "PortBindings", "ConsoleSize", 0, 0,
                "Config", "Hostname", name ? name : "", "Domainname", "", "User",
                json_string_value(json_object_get(config, "user")) ?: "", "AttachStdin", false, "AttachStdout", false,
                "AttachStderr", false, "Tty", json_is_true(json_object_get(config, "tty")), "OpenStdin",
                json_is_true(json_object_get(config, "open_stdin")), "StdinOnce", false, "Env",
                json_object_get(config, "env"), "Cmd", argv, "Entrypoint", "Image", json_object_get(pl, "image"),
                "WorkingDir", json_string_value(json_object_get(config, "workdir")) ?: "", "Labels",
                user_labels(labels), "StopSignal", stop_signal, "StopTimeout", timeout, "ExposedPorts",
                "NetworkSettings", "Ports", "Networks", "IPAddress", "", "Gateway", "", "IPPrefixLen", 0, "MacAddress",
                "", "Mounts", "LogPath", "", "ResolvConfPath", "", "HostnamePath", "");
        if (j) {
                (void) json_object_set_new(j, "Mounts", mounts_of(pl));
                (void) json_object_set_new(j, "PortLayer", portlayer_of(pl));
                json_t *ns = json_object_get(j, "NetworkSettings");
                const char *ip = json_string_value(json_object_get(pl, "ip_address"));
                if (ip)
                        (void) json_object_set_new(ns, "IPAddress", json_string(ip));
                json_t *ports = json_object_get(ns, "Ports");
                size_t i;
                json_t *pp;
                json_array_foreach(json_object_get(pl, "ports"), i, pp) {
                        char key[32], hport[8];
                        snprintf(key, sizeof key, "%d/%s", (int) json_integer_value(json_object_get(pp, "container_port")),
                                 json_string_value(json_object_get(pp, "protocol")) ?: "tcp");
                        snprintf(hport, sizeof hport, "%d", (int) json_integer_value(json_object_get(pp, "host_port")));
                        const char *hip = json_string_value(json_object_get(pp, "host_ip"));
                        json_t *list = json_object_get(ports, key);
                        if (!list && json_object_set_new(ports, key, list = json_array()) < 0)
                                continue;
                        (void) json_array_append_new(list, json_pack("{s:s, s:s}", "HostIp", hip && *hip ? hip : "0.0.0.0",
                                                                     "HostPort", hport));
                }
                const char *net = json_string_value(json_object_get(pl, "network"));
                if (net)
                        (void) json_object_set_new(json_object_get(j, "HostConfig"), "NetworkMode", json_string(net));
        }
        return j;
}

json_t *docker_ps_of(const json_t *pl, int64_t now_ns) {
        const json_t *config = json_object_get(pl, "config");
        const char *name = json_string_value(json_object_get(pl, "name"));
        char docker_name[CONTAINER_NAME_MAX + 2];
        snprintf(docker_name, sizeof docker_name, "/%s", name ? name : "");
        _cleanup_free_ char *status = docker_status_text(pl, now_ns);
        /* Command: the program and its arguments, space-joined as Docker does. */
        _cleanup_json_ json_t *argv = command_argv(config);
        size_t len = 1, i;
        json_t *a;
        json_array_foreach(argv, i, a) len += json_string_length(a) + 1;
        _cleanup_free_ char *command = calloc(1, len);
        json_array_foreach(argv, i, a) if (command) {
                if (i)
                        strcat(command, " ");
                strcat(command, json_string_value(a));
        }
        return json_pack("{s:O, s:[s], s:O, s:O, s:s, s:I, s:[], s:o, s:s, s:s, s:{s:s}, s:{s:{}}, s:[]}", "Id",
                         json_object_get(pl, "id"), "Names", docker_name, "Image", json_object_get(pl, "image"),
                         "ImageID", json_object_get(pl, "image_id"), "Command", command ? command : "", "Created",
                         (json_int_t) (docker_time_ns(json_string_value(json_object_get(pl, "created"))) / 1000000000),
                         "Ports", "Labels", user_labels(json_object_get(config, "labels")), "State",
                         docker_state_of(json_string_value(json_object_get(pl, "state"))), "Status",
                         status ? status : "", "HostConfig", "NetworkMode", "default", "NetworkSettings", "Networks",
                         "Mounts");
}

/* Does one value of a filter match? */
static bool filter_one(const char *kind, const char *want, const json_t *pl) {
        const json_t *config = json_object_get(pl, "config");
        if (strcmp(kind, "status") == 0)
                return strcmp(want, docker_state_of(json_string_value(json_object_get(pl, "state")))) == 0;
        if (strcmp(kind, "name") == 0) {
                const char *name = json_string_value(json_object_get(pl, "name"));
                return name && strstr(name, want[0] == '/' ? want + 1 : want); /* Docker: a substring (a regexp) */
        }
        if (strcmp(kind, "id") == 0) {
                const char *id = json_string_value(json_object_get(pl, "id"));
                return id && strncmp(id, want, strlen(want)) == 0;
        }
        if (strcmp(kind, "label") == 0) {
                const char *eq = strchr(want, '=');
                _cleanup_free_ char *key = eq ? strndup(want, (size_t) (eq - want)) : strdup(want);
                const char *have = key ? json_string_value(json_object_get(json_object_get(config, "labels"), key)) : NULL;
                return have && (!eq || strcmp(have, eq + 1) == 0);
        }
        return false;
}

int docker_filters_match(const json_t *filters, const json_t *pl, bool *ret, Error **err) {
        *ret = true;
        const char *kind;
        json_t *values;
        json_object_foreach((json_t *) filters, kind, values) {
                if (strcmp(kind, "status") != 0 && strcmp(kind, "name") != 0 && strcmp(kind, "id") != 0 &&
                    strcmp(kind, "label") != 0)
                        return error_set(err, EINVAL, "invalid filter '%.64s'", kind);
                /* {"v": true} (the CLI) or ["v"] (older clients) */
                bool any = false, all_labels = true;
                if (json_is_object(values)) {
                        const char *v;
                        json_t *x;
                        json_object_foreach(values, v, x) {
                                bool m = filter_one(kind, v, pl);
                                any |= m;
                                all_labels &= m;
                        }
                } else if (json_is_array(values)) {
                        size_t i;
                        json_t *x;
                        json_array_foreach(values, i, x) {
                                bool m = json_is_string(x) && filter_one(kind, json_string_value(x), pl);
                                any |= m;
                                all_labels &= m;
                        }
                } else
                        return error_set(err, EINVAL, "filter '%.64s': must be an object or an array", kind);
                /* labels must all match, other kinds any of their values */
                if (strcmp(kind, "label") == 0 ? !all_labels : !any)
                        *ret = false;
        }
        return 0;
}

uint32_t docker_file_mode(uint32_t m) {
        uint32_t out = m & 0777;
        switch (m & S_IFMT) {
        case S_IFDIR:
                out |= 1u << 31;
                break;
        case S_IFLNK:
                out |= 1u << 27;
                break;
        case S_IFBLK:
                out |= 1u << 26;
                break;
        case S_IFCHR:
                out |= (1u << 26) | (1u << 21);
                break;
        case S_IFIFO:
                out |= 1u << 25;
                break;
        case S_IFSOCK:
                out |= 1u << 24;
                break;
        }
        if (m & S_ISUID)
                out |= 1u << 23;
        if (m & S_ISGID)
                out |= 1u << 22;
        if (m & S_ISVTX)
                out |= 1u << 20;
        return out;
}

static json_t *labels_of(const OciConfig *oc) {
        json_t *l = json_object();
        for (size_t i = 0; l && i < oc->label_keys.n; i++)
                (void) json_object_set_new(l, oc->label_keys.v[i], json_string(oc->label_values.v[i]));
        return l;
}

json_t *docker_image_summary_of(const StoreImage *img) {
        json_t *digests = json_array();
        for (size_t i = 0; digests && i < img->tags.n; i++) {
                /* repo@digest for each tagged repository */
                const char *t = img->tags.v[i], *colon = strrchr(t, ':'), *slash = strrchr(t, '/');
                size_t repo = colon && (!slash || colon > slash) ? (size_t) (colon - t) : strlen(t);
                char *d = NULL;
                if (img->manifest_digest && asprintf(&d, "%.*s@%s", (int) repo, t, img->manifest_digest) >= 0)
                        (void) json_array_append_new(digests, json_string(d));
                free(d);
        }
        return json_pack("{s:s, s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:o, s:i}", "Id", img->id, "ParentId", "",
                         "RepoTags", strings_json(&img->tags), "RepoDigests", digests, "Created",
                         (json_int_t) (docker_time_ns(img->created) / 1000000000), "Size", (json_int_t) img->disk_size,
                         "SharedSize", (json_int_t) -1, "VirtualSize", (json_int_t) img->disk_size, "Labels",
                         labels_of(img->config), "Containers", -1);
}

json_t *docker_image_inspect_of(const StoreImage *img) {
        const OciConfig *oc = img->config;
        json_t *j = docker_image_summary_of(img);
        json_t *ports = json_object();
        for (size_t i = 0; ports && i < oc->exposed_ports.n; i++)
                (void) json_object_set_new(ports, oc->exposed_ports.v[i], json_object());
        if (j)
                (void) json_object_set_new(j, "Created", json_string(img->created ? img->created : ""));
        _cleanup_json_ json_t *more = json_pack("{s:s, s:s, s:s?, s:{s:o, s:o, s:o, s:s, s:s, s:o, s:s?, s:o}, "
                                                 "s:{s:s, s:o}, s:{}, s:s}",
                                                 "Architecture", oc->architecture ? oc->architecture : "", "Os",
                                                 oc->os ? oc->os : "", "Variant", oc->variant, "Config", "Env",
                                                 strings_json(&oc->env), "Cmd", strings_json(&oc->cmd), "Entrypoint",
                                                 strings_json(&oc->entrypoint), "WorkingDir",
                                                 oc->working_dir ? oc->working_dir : "", "User",
                                                 oc->user ? oc->user : "", "Labels", labels_of(oc), "StopSignal",
                                                 oc->stop_signal, "ExposedPorts", ports, "RootFS", "Type", "layers",
                                                 "Layers", strings_json(&oc->diff_ids), "Metadata", "Comment",
                                                 "");
        if (j && (!more || json_object_update(j, more) < 0)) {
                json_decref(j);
                return NULL;
        }
        return j;
}
