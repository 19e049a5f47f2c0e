/* test-docker-map.c: the Docker front end's translations
 * (portlayer/docker/docker-map.c): create bodies into handle fields (Docker's
 * Entrypoint/Cmd rule, env merging, limits, labels, what is refused and what
 * only warned), containers into inspect and ps objects, states and status
 * texts, ps filters and Go file modes (the stream frames are tested with
 * the logs in test-container). The fields made
 * are checked by the port layer's own configuration check. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "docker-internal.h"

static char *image_entry[] = {"/bin/sh", "-c"};
static char *image_cmd[] = {"echo hello"};
static char *image_env[] = {"PATH=/bin", "HOME=/root"};
static char *label_keys[] = {"from-image"};
static char *label_values[] = {"yes"};

static OciConfig image(void) {
        return (OciConfig){.entrypoint = {image_entry, 2}, .cmd = {image_cmd, 1}, .env = {image_env, 2},
                           .label_keys = {label_keys, 1}, .label_values = {label_values, 1}};
}

static int map(const char *body_text, const OciConfig *img, json_t **fields, json_t **warnings) {
        json_error_t je;
        json_t *body = json_loads(body_text, 0, &je);
        assert_non_null(body);
        Error *e = NULL;
        int r = docker_create_map(body, img, fields, warnings, &e);
        json_decref(body);
        if (r >= 0) {
                assert_null(e);
                Error *ve = NULL;
                if (container_config_validate(*fields, &ve) < 0)
                        fail_msg("the port layer refuses the fields: %s", error_text(ve));
        } else
                assert_non_null(e);
        error_free(e);
        return r;
}

static const char *str(json_t *j, const char *key) {
        return json_string_value(json_object_get(j, key));
}

static void test_create_full(void **state) {
        OciConfig img = image();
        json_t *f = NULL, *w = NULL;
        assert_int_equal(map("{\"Image\": \"x\", \"Cmd\": [\"echo $X\"], \"Env\": [\"X=1\", \"HOME=/home/u\"],"
                             " \"WorkingDir\": \"/tmp\", \"User\": \"1000\", \"Labels\": {\"a\": \"b\"},"
                             " \"Tty\": true, \"OpenStdin\": true, \"StopSignal\": \"SIGUSR1\", \"StopTimeout\": 3,"
                             " \"HostConfig\": {\"Memory\": 134217729, \"NanoCpus\": 1500000000,"
                             " \"AutoRemove\": true, \"NetworkMode\": \"default\", \"LogConfig\": {\"Type\": \"\"},"
                             " \"ConsoleSize\": [33, 101]}}",
                             &img, &f, &w),
                         0);
        assert_string_equal(str(f, "path"), "/bin/sh");
        json_t *args = json_object_get(f, "args");
        assert_int_equal(json_array_size(args), 2);
        assert_string_equal(json_string_value(json_array_get(args, 0)), "-c");
        assert_string_equal(json_string_value(json_array_get(args, 1)), "echo $X");
        json_t *env = json_object_get(f, "env");
        assert_int_equal(json_array_size(env), 3); /* PATH kept, HOME replaced in place, X added */
        assert_string_equal(json_string_value(json_array_get(env, 0)), "PATH=/bin");
        assert_string_equal(json_string_value(json_array_get(env, 1)), "HOME=/home/u");
        assert_string_equal(json_string_value(json_array_get(env, 2)), "X=1");
        assert_string_equal(str(f, "workdir"), "/tmp");
        assert_string_equal(str(f, "user"), "1000");
        assert_string_equal(str(f, "stop_signal"), "SIGUSR1");
        assert_int_equal(json_integer_value(json_object_get(f, "stop_timeout_s")), 3);
        assert_true(json_is_true(json_object_get(f, "tty")));
        assert_true(json_is_true(json_object_get(f, "open_stdin")));
        assert_int_equal(json_integer_value(json_object_get(f, "tty_rows")), 33);
        assert_int_equal(json_integer_value(json_object_get(f, "tty_cols")), 101);
        assert_int_equal(json_integer_value(json_object_get(f, "memory_mb")), 129); /* rounded up */
        assert_int_equal(json_integer_value(json_object_get(f, "vcpus")), 2);
        json_t *labels = json_object_get(f, "labels");
        assert_string_equal(str(labels, "a"), "b");
        assert_string_equal(str(labels, "from-image"), "yes");
        assert_string_equal(str(labels, DOCKER_LABEL_AUTO_REMOVE), "true");
        assert_int_equal(json_array_size(w), 0);
        json_decref(f);
        json_decref(w);
}

static void test_create_entrypoint_rules(void **state) {
        OciConfig img = image();
        json_t *f = NULL, *w = NULL;
        /* nothing given: the image's Entrypoint + Cmd */
        assert_int_equal(map("{\"Image\": \"x\", \"Cmd\": null, \"Entrypoint\": null}", &img, &f, &w), 0);
        assert_string_equal(str(f, "path"), "/bin/sh");
        assert_string_equal(json_string_value(json_array_get(json_object_get(f, "args"), 1)), "echo hello");
        json_decref(f);
        json_decref(w);
        /* an Entrypoint drops the image's Cmd */
        assert_int_equal(map("{\"Image\": \"x\", \"Entrypoint\": [\"/bin/echo\"]}", &img, &f, &w), 0);
        assert_string_equal(str(f, "path"), "/bin/echo");
        assert_int_equal(json_array_size(json_object_get(f, "args")), 0);
        json_decref(f);
        json_decref(w);
        /* an Entrypoint as a string, with a Cmd */
        assert_int_equal(map("{\"Image\": \"x\", \"Entrypoint\": \"/bin/echo\", \"Cmd\": [\"a\", \"b\"]}", &img, &f,
                             &w),
                         0);
        assert_string_equal(str(f, "path"), "/bin/echo");
        assert_int_equal(json_array_size(json_object_get(f, "args")), 2);
        json_decref(f);
        json_decref(w);
        /* --entrypoint "" clears it: the Cmd is the program */
        assert_int_equal(map("{\"Image\": \"x\", \"Entrypoint\": [\"\"], \"Cmd\": [\"/bin/ls\", \"/\"]}", &img, &f, &w),
                         0);
        assert_string_equal(str(f, "path"), "/bin/ls");
        json_decref(f);
        json_decref(w);
        /* no command anywhere */
        OciConfig empty = {0};
        assert_int_equal(map("{\"Image\": \"x\"}", &empty, &f, &w), -EINVAL);
        assert_int_equal(map("{\"Image\": \"x\", \"Entrypoint\": [\"\"]}", &img, &f, &w), -EINVAL);
}

static void test_create_refused(void **state) {
        OciConfig img = image();
        json_t *f = NULL, *w = NULL;
        static const char *const opnotsupp[] = {
                "{\"HostConfig\": {\"Mounts\": [{\"Type\": \"tmpfs\", \"Target\": \"/t\"}]}}",
                "{\"HostConfig\": {\"PortBindings\": {\"80/tcp\": [{\"HostPort\": \"\"}]}}}",
                "{\"HostConfig\": {\"NetworkMode\": \"host\"}}",
                "{\"HostConfig\": {\"Privileged\": true}}",
                "{\"Volumes\": {\"/data\": {}}}",
        };
        for (size_t i = 0; i < sizeof opnotsupp / sizeof *opnotsupp; i++)
                if (map(opnotsupp[i], &img, &f, &w) != -EOPNOTSUPP)
                        fail_msg("not refused as unsupported: %s", opnotsupp[i]);
        static const char *const invalid[] = {
                "{\"Cmd\": 5}",
                "{\"Cmd\": [1]}",
                "{\"Env\": \"X=1\"}",
                "{\"Env\": [5]}",
                "{\"WorkingDir\": \"relative\"}",
                "{\"User\": 5}",
                "{\"Tty\": \"yes\"}",
                "{\"Tty\": true, \"HostConfig\": {\"ConsoleSize\": [24]}}",
                "{\"Tty\": true, \"HostConfig\": {\"ConsoleSize\": [-1, 80]}}",
                "{\"StopTimeout\": -1}",
                "{\"Labels\": []}",
                "{\"Labels\": {\"a\": 1}}",
                "{\"Labels\": {\"io.portlayer.docker.auto-remove\": \"x\"}}",
                "{\"HostConfig\": 1}",
                "{\"HostConfig\": {\"Memory\": \"1g\"}}",
                "{\"HostConfig\": {\"Memory\": 1048576}}",
                "{\"HostConfig\": {\"AutoRemove\": 1}}",
                "{\"HostConfig\": {\"Binds\": [\"/data\"]}}",
                "{\"HostConfig\": {\"Binds\": [\"data:/data:z\"]}}",
                "{\"HostConfig\": {\"Binds\": [5]}}",
                "{\"HostConfig\": {\"Mounts\": [{\"Type\": \"bind\", \"Source\": \"rel\", \"Target\": \"/t\"}]}}",
                "{\"StopSignal\": \"SIGNOPE\"}",
                "{\"Env\": [\"=x\"]}",
                "{\"Labels\": {\"a=b\": \"c\"}}",
                "{\"HostConfig\": {\"NanoCpus\": 1000000000000}}",
        };
        for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++)
                if (map(invalid[i], &img, &f, &w) != -EINVAL)
                        fail_msg("not refused as invalid: %s", invalid[i]);
        /* harmless settings only warn */
        assert_int_equal(map("{\"HostConfig\": {\"RestartPolicy\": {\"Name\": \"always\"}, \"CapAdd\": [\"NET_ADMIN\"]}}",
                             &img, &f, &w),
                         0);
        assert_int_equal(json_array_size(w), 2);
        assert_non_null(strstr(json_string_value(json_array_get(w, 0)), "RestartPolicy"));
        json_decref(f);
        json_decref(w);
        assert_int_equal(map("{\"HostConfig\": {\"RestartPolicy\": {\"Name\": \"no\"}}}", &img, &f, &w), 0);
        assert_int_equal(json_array_size(w), 0);
        json_decref(f);
        json_decref(w);
}


static void test_create_mounts(void **state) {
        OciConfig img = image();
        json_t *f = NULL, *w = NULL;
        assert_int_equal(map("{\"HostConfig\": {\"Binds\": [\"data:/data:ro\", \"/tmp:/mnt\"],"
                             " \"Mounts\": [{\"Type\": \"volume\", \"Source\": \"other\", \"Target\": \"/o\"}]},"
                             " \"Volumes\": {\"/data\": {}}}",
                             &img, &f, &w),
                         0);
        json_t *m = json_object_get(f, "mounts");
        assert_int_equal(json_array_size(m), 3);
        assert_string_equal(str(json_array_get(m, 0), "volume"), "data");
        assert_string_equal(str(json_array_get(m, 0), "target"), "/data");
        assert_true(json_is_true(json_object_get(json_array_get(m, 0), "read_only")));
        assert_string_equal(str(json_array_get(m, 1), "source"), "/tmp");
        assert_true(json_is_false(json_object_get(json_array_get(m, 1), "read_only")));
        assert_string_equal(str(json_array_get(m, 2), "volume"), "other");
        json_decref(f);
        json_decref(w);
        /* -p and --network */
        assert_int_equal(map("{\"HostConfig\": {\"PortBindings\": {\"80/tcp\": [{\"HostIp\": \"127.0.0.1\","
                             " \"HostPort\": \"8080\"}], \"53/udp\": [{\"HostPort\": \"5353\"}]},"
                             " \"NetworkMode\": \"mynet\"}}",
                             &img, &f, &w),
                         0);
        json_t *p = json_object_get(f, "ports");
        assert_int_equal(json_array_size(p), 2);
        assert_string_equal(str(json_array_get(p, 0), "host_ip"), "127.0.0.1");
        assert_int_equal(json_integer_value(json_object_get(json_array_get(p, 0), "host_port")), 8080);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(p, 0), "container_port")), 80);
        assert_string_equal(str(json_array_get(p, 1), "protocol"), "udp");
        assert_string_equal(str(f, "network"), "mynet");
        json_decref(f);
        json_decref(w);
        assert_int_equal(map("{\"HostConfig\": {\"NetworkMode\": \"bridge\"}}", &img, &f, &w), 0);
        assert_null(json_object_get(f, "network")); /* Docker's bridge is our default */
        json_decref(f);
        json_decref(w);
        assert_int_equal(map("{\"HostConfig\": {\"PortBindings\": {\"x/tcp\": [{\"HostPort\": \"1\"}]}}}", &img, &f, &w),
                         -EINVAL);
        /* an image's (or -v /path's) volume nobody named */
        assert_int_equal(map("{\"Volumes\": {\"/anon\": {}}}", &img, &f, &w), -EOPNOTSUPP);
        /* no mounts: no field */
        assert_int_equal(map("{\"HostConfig\": {\"Binds\": []}}", &img, &f, &w), 0);
        assert_null(json_object_get(f, "mounts"));
        json_decref(f);
        json_decref(w);
}

static json_t *pl_container(const char *state, int exit_code) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s?, s:i, s:s, s:s, s:{s:s, s:[s, s], s:[s], "
                              "s:s, s:s, s:i, s:i, s:{s:s, s:s}, s:s, s:b}}",
                              "id", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "name", "web",
                              "image", "reg/busybox:latest", "image_id", "sha256:abc", "created",
                              "2026-12-03T07:52:29.095868385Z", "exit_code", exit_code, "error", NULL, "pid", 85,
                              "started_at", "2026-12-03T07:52:30Z", "finished_at",
                              strcmp(state, "stopped") == 0 ? "2026-12-03T07:53:30Z" : "", "config", "path", "/bin/sh",
                              "args", "-c", "echo hi", "env", "PATH=/bin", "workdir", "/", "user", "0:0", "memory_mb",
                              128, "vcpus", 2, "labels", "a", "b", DOCKER_LABEL_AUTO_REMOVE, "true", "stop_signal",
                              "SIGINT", "tty", true);
        assert_non_null(j);
        (void) json_object_set_new(j, "state", json_string(state));
        return j;
}

static void test_inspect_and_ps(void **state) {
        json_t *pl = pl_container("running", -1);
        json_t *d = docker_inspect_of(pl);
        assert_non_null(d);
        assert_string_equal(str(d, "Name"), "/web");
        assert_string_equal(str(d, "Path"), "/bin/sh");
        json_t *st = json_object_get(d, "State");
        assert_string_equal(str(st, "Status"), "running");
        assert_true(json_is_true(json_object_get(st, "Running")));
        assert_int_equal(json_integer_value(json_object_get(st, "ExitCode")), 0);
        assert_string_equal(str(st, "FinishedAt"), "0001-01-01T00:00:00Z");
        json_t *hc = json_object_get(d, "HostConfig");
        assert_int_equal(json_integer_value(json_object_get(hc, "Memory")), 128ll << 20);
        assert_int_equal(json_integer_value(json_object_get(hc, "NanoCpus")), 2000000000ll);
        assert_true(json_is_true(json_object_get(hc, "AutoRemove")));
        json_t *cfg = json_object_get(d, "Config");
        assert_true(json_is_true(json_object_get(cfg, "Tty")));
        assert_string_equal(str(cfg, "StopSignal"), "SIGINT");
        assert_int_equal(json_array_size(json_object_get(cfg, "Cmd")), 3);
        json_t *labels = json_object_get(cfg, "Labels");
        assert_int_equal(json_object_size(labels), 1); /* the front end's own are left out */
        assert_string_equal(str(labels, "a"), "b");
        assert_true(json_is_object(json_object_get(json_object_get(d, "NetworkSettings"), "Ports")));
        json_decref(d);

        int64_t started = docker_time_ns("2026-12-03T07:52:30Z");
        json_t *ps = docker_ps_of(pl, started + 5 * 1000000000ll);
        assert_non_null(ps);
        assert_string_equal(str(ps, "State"), "running");
        assert_string_equal(str(ps, "Status"), "Up 5 seconds");
        assert_string_equal(str(ps, "Command"), "/bin/sh -c echo hi");
        assert_string_equal(json_string_value(json_array_get(json_object_get(ps, "Names"), 0)), "/web");
        assert_int_equal(json_integer_value(json_object_get(ps, "Created")), docker_time_ns("2026-12-03T07:52:29Z") / 1000000000);
        json_decref(ps);
        json_decref(pl);

        pl = pl_container("stopped", 3);
        char *s = docker_status_text(pl, docker_time_ns("2026-12-03T07:55:30Z"));
        assert_string_equal(s, "Exited (3) 2 minutes ago");
        free(s);
        d = docker_inspect_of(pl);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "State"), "ExitCode")), 3);
        assert_string_equal(str(json_object_get(d, "State"), "Status"), "exited");
        json_decref(d);
        json_decref(pl);
}

/* io.portlayer.cold-start and io.portlayer.share-pages, as a label (--label)
 * or an annotation (--annotation): a value other than the default ("true"
 * for cold-start, "false" for share-pages) sets the field, the default and
 * absent leave it out, anything else (or label and annotation disagreeing)
 * is refused. The two are independent. */
static void test_create_switches(void **state) {
        OciConfig img = image();
        static const struct {
                const char *body;
                int cold;  /* 1 cold_start true, 0 not set, -1 -EINVAL */
                int share; /* 0 share_pages false, 1 not set */
        } cases[] = {
                {"{\"Labels\": {\"" DOCKER_LABEL_COLD_START "\": \"true\"}}", 1, 1},
                {"{\"HostConfig\": {\"Annotations\": {\"" DOCKER_LABEL_COLD_START "\": \"true\"}}}", 1, 1},
                {"{\"Labels\": {\"" DOCKER_LABEL_COLD_START "\": \"true\"}, \"HostConfig\": {\"Annotations\": {\""
                 DOCKER_LABEL_COLD_START "\": \"true\"}}}", 1, 1},
                {"{\"Labels\": {\"" DOCKER_LABEL_COLD_START "\": \"false\"}}", 0, 1},
                {"{\"HostConfig\": {\"Annotations\": {\"other\": \"x\"}}}", 0, 1},
                {"{\"Labels\": {\"a\": \"b\"}}", 0, 1},
                {"{\"Labels\": {\"" DOCKER_LABEL_COLD_START "\": \"yes\"}}", -1, 1},
                {"{\"Labels\": {\"" DOCKER_LABEL_COLD_START "\": \"\"}}", -1, 1},
                {"{\"Labels\": {\"" DOCKER_LABEL_COLD_START "\": \"TRUE\"}}", -1, 1},
                {"{\"HostConfig\": {\"Annotations\": {\"" DOCKER_LABEL_COLD_START "\": 1}}}", -1, 1},
                {"{\"HostConfig\": {\"Annotations\": [\"" DOCKER_LABEL_COLD_START "=true\"]}}", -1, 1},
                {"{\"Labels\": {\"" DOCKER_LABEL_COLD_START "\": \"true\"}, \"HostConfig\": {\"Annotations\": {\""
                 DOCKER_LABEL_COLD_START "\": \"false\"}}}", -1, 1},
                {"{\"Labels\": {\"" DOCKER_LABEL_SHARE_PAGES "\": \"false\"}}", 0, 0},
                {"{\"HostConfig\": {\"Annotations\": {\"" DOCKER_LABEL_SHARE_PAGES "\": \"false\"}}}", 0, 0},
                {"{\"Labels\": {\"" DOCKER_LABEL_SHARE_PAGES "\": \"true\"}}", 0, 1},
                {"{\"Labels\": {\"" DOCKER_LABEL_SHARE_PAGES "\": \"false\", \"" DOCKER_LABEL_COLD_START "\": \"true\"}}",
                 1, 0},
                {"{\"Labels\": {\"" DOCKER_LABEL_SHARE_PAGES "\": \"no\"}}", -1, 1},
                {"{\"Labels\": {\"" DOCKER_LABEL_SHARE_PAGES "\": \"false\"}, \"HostConfig\": {\"Annotations\": {\""
                 DOCKER_LABEL_SHARE_PAGES "\": \"true\"}}}", -1, 1},
        };
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
                json_t *f = NULL, *w = NULL;
                int r = map(cases[i].body, &img, &f, &w);
                if (cases[i].cold < 0) {
                        if (r != -EINVAL)
                                fail_msg("not refused as invalid (%d): %s", r, cases[i].body);
                        continue;
                }
                if (r < 0)
                        fail_msg("refused (%d): %s", r, cases[i].body);
                json_t *cold = json_object_get(f, "cold_start"), *share = json_object_get(f, "share_pages");
                if (cases[i].cold ? !json_is_true(cold) : cold != NULL)
                        fail_msg("cold_start is %s for %s", cold ? "set" : "not set", cases[i].body);
                if (cases[i].share ? share != NULL : !json_is_false(share))
                        fail_msg("share_pages is %s for %s", share ? "set" : "not set", cases[i].body);
                json_decref(f);
                json_decref(w);
        }
}

/* How the container last started, in the inspect object's "PortLayer". */
static void test_inspect_portlayer(void **state) {
        json_t *pl = pl_container("running", -1);
        json_t *d = docker_inspect_of(pl);
        json_t *x = json_object_get(d, "PortLayer");
        assert_string_equal(str(x, "StartPath"), ""); /* never started: start_path null */
        assert_string_equal(str(x, "Domain"), "");
        assert_true(json_is_false(json_object_get(x, "ColdStart")));
        assert_true(json_is_true(json_object_get(x, "SharePages")));
        json_decref(d);
        (void) json_object_set_new(pl, "start_path", json_string("template"));
        (void) json_object_set_new(pl, "domain", json_string("plp-0123456789abcdef"));
        (void) json_object_set_new(json_object_get(pl, "config"), "cold_start", json_true());
        (void) json_object_set_new(json_object_get(pl, "config"), "share_pages", json_false());
        d = docker_inspect_of(pl);
        x = json_object_get(d, "PortLayer");
        assert_string_equal(str(x, "StartPath"), "template");
        assert_string_equal(str(x, "Domain"), "plp-0123456789abcdef");
        assert_true(json_is_true(json_object_get(x, "ColdStart")));
        assert_true(json_is_false(json_object_get(x, "SharePages")));
        json_decref(d);
        json_decref(pl);
}

static void test_states(void **state) {
        static const char *const pairs[][2] = {{"created", "created"},   {"starting", "running"}, {"running", "running"},
                                               {"paused", "paused"},     {"stopping", "running"}, {"stopped", "exited"},
                                               {"removing", "removing"}, {"bogus", "dead"}};
        for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++)
                assert_string_equal(docker_state_of(pairs[i][0]), pairs[i][1]);
        assert_int_equal(docker_time_ns("1970-01-01T00:00:01.5Z"), 1500000000ll);
        assert_int_equal(docker_time_ns(""), 0);
        assert_int_equal(docker_time_ns("garbage"), 0);
}

static bool matches(const char *filters, const json_t *pl) {
        json_t *f = json_loads(filters, 0, NULL);
        assert_non_null(f);
        bool ok = false;
        Error *e = NULL;
        assert_int_equal(docker_filters_match(f, pl, &ok, &e), 0);
        json_decref(f);
        return ok;
}

static void test_filters(void **state) {
        json_t *pl = pl_container("stopped", 0);
        assert_true(matches("{\"status\": {\"exited\": true}}", pl));
        assert_false(matches("{\"status\": {\"running\": true}}", pl));
        assert_true(matches("{\"status\": {\"running\": true, \"exited\": true}}", pl)); /* any of a kind */
        assert_true(matches("{\"label\": {\"a=b\": true}}", pl));
        assert_true(matches("{\"label\": {\"a\": true}}", pl));
        assert_false(matches("{\"label\": {\"a=c\": true}}", pl));
        assert_false(matches("{\"label\": {\"a=b\": true, \"x\": true}}", pl)); /* every label */
        assert_true(matches("{\"name\": {\"we\": true}}", pl));
        assert_false(matches("{\"name\": {\"db\": true}}", pl));
        assert_true(matches("{\"id\": [\"0123456789ab\"]}", pl));
        assert_false(matches("{\"status\": {\"exited\": true}, \"name\": {\"db\": true}}", pl)); /* every kind */
        json_t *f = json_pack("{s:{s:b}}", "ancestor", "x", true);
        bool ok;
        Error *e = NULL;
        assert_int_equal(docker_filters_match(f, pl, &ok, &e), -EINVAL);
        error_free(e);
        json_decref(f);
        json_decref(pl);
}

static void test_file_mode(void **state) {
        assert_int_equal(docker_file_mode(S_IFDIR | 0755), (1u << 31) | 0755);
        assert_int_equal(docker_file_mode(S_IFLNK | 0777), (1u << 27) | 0777);
        assert_int_equal(docker_file_mode(S_IFREG | 0644), 0644);
        assert_int_equal(docker_file_mode(S_IFREG | S_ISUID | 0755), (1u << 23) | 0755);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_create_full),     cmocka_unit_test(test_create_entrypoint_rules),
                cmocka_unit_test(test_create_refused),
                cmocka_unit_test(test_create_mounts),  cmocka_unit_test(test_inspect_and_ps),
                cmocka_unit_test(test_create_switches),
                cmocka_unit_test(test_inspect_portlayer),
                cmocka_unit_test(test_states),          cmocka_unit_test(test_filters),
                cmocka_unit_test(test_file_mode),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
