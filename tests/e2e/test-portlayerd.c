/* test-portlayerd.c: the daemon through its REST API, with real guests.
 *
 * Once per run: a busybox OCI image (tests/lib/make-oci-image.sh) is
 * imported by the real pl-image into the daemon's image store, and the real
 * portlayerd ($PL_PORTLAYERD_BIN) is started on a temporary state directory
 * with the kernel of $PL_KERNEL_DIR, on libvirt's embedded driver (TCG
 * here). Every call goes through the Unix socket with libcurl. The group
 * teardown removes every container through the API, stops the daemon, and
 * checks that no QEMU process of this state directory is left (ending any,
 * by pid, so a failed run leaks nothing). Volumes and bind mounts share
 * the run (test_volumes_and_binds: two boots).
 *
 * Without $PL_KERNEL_DIR the test skips (exit 77), unless
 * PL_TESTS_REQUIRED=1 (scripts/test.sh), where that is a failure. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glob.h>
#include <grp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/base/proc-util.h"
#include "lib/pltest.h"

#define MIN(a, b) ((a) < (b) ? (a) : (b))

static struct {
        char dir[64];
        char sock[128];
        pid_t daemon;
        const char *network_mode; /* --network-mode, NULL: the default (bridge) */
        bool cold; /* PL_E2E_COLD_START=1: the daemon runs with --cold-start (no warm pool) */
        bool probing; /* a failed connection is an answer (-1), not a failure */
        char unconfined[1024]; /* QEMUs seen running as root, or without their sandbox */
        int qemus_checked;
        unsigned pass_uids[64]; /* the uids of the QEMUs seen in one pass: never two alike */
        size_t n_pass_uids;
} W;

/* --- HTTP over the Unix socket --- */

typedef struct Reply {
        long status;
        char *body;
        size_t len;
} Reply;

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
        Reply *r = ud;
        char *nb = realloc(r->body, r->len + size * n + 1);
        assert_non_null(nb);
        memcpy(nb + r->len, p, size * n);
        r->body = nb;
        r->len += size * n;
        r->body[r->len] = 0;
        return size * n;
}

/* One request; body may be NULL. Returns the status; *ret gets the body
 * parsed as JSON when it is JSON (else NULL). */
static long http(const char *method, const char *path, const char *body, size_t body_len, json_t **ret,
                 char **ret_raw, size_t *ret_len) {
        CURL *c = curl_easy_init();
        assert_non_null(c);
        char url[1024];
        snprintf(url, sizeof url, "http://portlayer%s", path);
        Reply r = {0};
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, W.sock);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
        struct curl_slist *h = curl_slist_append(NULL, "Expect:");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        if (body) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body_len);
        }
        CURLcode cc = curl_easy_perform(c);
        if (cc != CURLE_OK && W.probing) {
                curl_slist_free_all(h);
                curl_easy_cleanup(c);
                free(r.body);
                return -1;
        }
        if (cc != CURLE_OK)
                fail_msg("%s %s: %s", method, path, curl_easy_strerror(cc));
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        if (ret)
                *ret = r.body ? json_loads(r.body, 0, NULL) : NULL;
        if (ret_raw) {
                *ret_raw = r.body;
                *ret_len = r.len;
        } else
                free(r.body);
        return r.status;
}

static long call(const char *method, const char *path, const char *json, json_t **ret) {
        return http(method, path, json, json ? strlen(json) : 0, ret, NULL, NULL);
}

static const char *str(json_t *j, const char *key) {
        const char *s = json_string_value(json_object_get(j, key));
        return s ? s : "";
}

/* Creates name running entrypoint_json with limits_json (PUT
 * /handles/{h}/limits), after checking that bad_limits_json is refused with
 * 400; the commit must succeed. */
static void create_running_limited(const char *name, const char *bad_limits_json, const char *limits_json,
                                   const char *entrypoint_json, char id[65]) {
        char body[256], handle[64], path[256];
        json_t *j = NULL;
        snprintf(body, sizeof body, "{\"name\": \"%s\", \"image\": \"localhost/busybox:latest\"}", name);
        assert_int_equal(call("POST", "/containers", body, &j), 201);
        snprintf(id, 65, "%s", str(j, "id"));
        snprintf(handle, sizeof handle, "%s", str(j, "handle"));
        json_decref(j);
        snprintf(path, sizeof path, "/handles/%s/limits", handle);
        assert_int_equal(call("PUT", path, bad_limits_json, NULL), 400);
        assert_int_equal(call("PUT", path, limits_json, NULL), 200);
        snprintf(path, sizeof path, "/handles/%s/entrypoint", handle);
        assert_int_equal(call("PUT", path, entrypoint_json, NULL), 200);
        snprintf(path, sizeof path, "/handles/%s/state", handle);
        assert_int_equal(call("PUT", path, "{\"state\": \"running\"}", NULL), 200);
        snprintf(path, sizeof path, "/handles/%s/commit", handle);
        assert_int_equal(call("POST", path, NULL, NULL), 200);
}

/* Creates a container from the test image with the given entry point,
 * network settings and mounts (PUT /handles/{h}/network and /mounts bodies,
 * or NULL) and target state; returns the commit's status, its answer in
 * *ret_commit. */
static long create_with(const char *name, const char *entrypoint_json, const char *network_json,
                        const char *mounts_json, const char *state, char id[65], json_t **ret_commit) {
        char body[512];
        json_t *j = NULL;
        snprintf(body, sizeof body, "{\"name\": \"%s\", \"image\": \"localhost/busybox:latest\"}", name);
        assert_int_equal(call("POST", "/containers", body, &j), 201);
        snprintf(id, 65, "%s", str(j, "id"));
        char handle[64], path[256];
        snprintf(handle, sizeof handle, "%s", str(j, "handle"));
        json_decref(j);
        const char *puts[][2] = {{"entrypoint", entrypoint_json}, {"network", network_json}, {"mounts", mounts_json}};
        for (size_t i = 0; i < sizeof puts / sizeof puts[0]; i++)
                if (puts[i][1]) {
                        snprintf(path, sizeof path, "/handles/%s/%s", handle, puts[i][0]);
                        json_t *e = NULL;
                        long st = call("PUT", path, puts[i][1], &e);
                        if (st != 200)
                                fail_msg("PUT %s: %ld %s", puts[i][0], st, e ? json_dumps(e, 0) : "");
                        json_decref(e);
                }
        if (state) {
                snprintf(path, sizeof path, "/handles/%s/state", handle);
                snprintf(body, sizeof body, "{\"state\": \"%s\"}", state);
                assert_int_equal(call("PUT", path, body, NULL), 200);
        }
        snprintf(path, sizeof path, "/handles/%s/commit", handle);
        long st = call("POST", path, NULL, ret_commit);
        if (st == 200 && W.cold && state && strcmp(state, "running") == 0) {
                /* the cold run: every start boots (docs/templates.md) */
                json_t *c = NULL;
                snprintf(path, sizeof path, "/containers/%s", id);
                assert_int_equal(call("GET", path, NULL, &c), 200);
                assert_string_equal(str(c, "start_path"), "cold");
                json_decref(c);
        }
        return st;
}

static long create_run(const char *name, const char *entrypoint_json, const char *state, char id[65],
                       json_t **ret_commit) {
        return create_with(name, entrypoint_json, NULL, NULL, state, id, ret_commit);
}

static void set_state(const char *ref, const char *state, long want_status) {
        char path[256], body[64];
        json_t *j = NULL;
        snprintf(path, sizeof path, "/containers/%s/handle", ref);
        assert_int_equal(call("GET", path, NULL, &j), 200);
        char handle[64];
        snprintf(handle, sizeof handle, "%s", str(j, "handle"));
        json_decref(j);
        snprintf(path, sizeof path, "/handles/%s/state", handle);
        snprintf(body, sizeof body, "{\"state\": \"%s\"}", state);
        assert_int_equal(call("PUT", path, body, NULL), 200);
        snprintf(path, sizeof path, "/handles/%s/commit", handle);
        json_t *c = NULL;
        long st = call("POST", path, NULL, &c);
        if (st != want_status)
                fail_msg("commit %s -> %s: %ld %s", ref, state, st, c ? json_dumps(c, 0) : "");
        json_decref(c);
}

static json_t *inspect(const char *ref) {
        char path[256];
        json_t *j = NULL;
        snprintf(path, sizeof path, "/containers/%s", ref);
        assert_int_equal(call("GET", path, NULL, &j), 200);
        return j;
}

/* exec-sync; returns the exit code and copies stdout into out. */
static int exec_sync(const char *ref, const char *args_json, char *out, size_t out_size) {
        char path[256], body[1024];
        json_t *j = NULL;
        snprintf(path, sizeof path, "/containers/%s/exec-sync", ref);
        snprintf(body, sizeof body, "{\"path\": \"/bin/sh\", \"args\": %s, \"timeout_s\": 60}", args_json);
        long st = call("POST", path, body, &j);
        if (st != 200)
                fail_msg("exec-sync in %s: %ld %s", ref, st, j ? json_dumps(j, 0) : "");
        if (out)
                snprintf(out, out_size, "%s", str(j, "stdout"));
        int code = (int) json_integer_value(json_object_get(j, "exit_code"));
        json_decref(j);
        return code;
}

static void destroy(const char *ref) {
        char path[256];
        json_t *e = NULL;
        snprintf(path, sizeof path, "/containers/%s?force=1", ref);
        long st = call("DELETE", path, NULL, &e);
        if (st != 204)
                fail_msg("remove %s: %ld %s", ref, st, e ? json_dumps(e, 0) : "");
}

/* --- the daemon --- */

static int run(const char *cmd) {
        int r = system(cmd);
        return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

static void daemon_start(void) {
        const char *bin = getenv("PL_PORTLAYERD_BIN"), *kdir = getenv("PL_KERNEL_DIR");
        char kernel[4096], log[256];
        snprintf(kernel, sizeof kernel, "%s/vmlinuz", kdir);
        snprintf(log, sizeof log, "%s/daemon.log", W.dir);
        W.daemon = fork();
        assert_true(W.daemon >= 0);
        if (W.daemon == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
                dup2(fd, 2);
                dup2(fd, 1);
                const char *argv[32] = {bin, "--state-dir", W.dir, "--socket", W.sock, "--guest-kernel", kernel,
                                        "--boot-timeout", "120", "--log-level", "debug",
                                        /* a range of its own: the other e2e daemons run at the same time */
                                        "--uid-range", W.cold ? "240000-249999" : "210000-219999"};
                size_t n = 13;
                if (W.cold)
                        argv[n++] = "--cold-start";
                if (W.network_mode) {
                        argv[n++] = "--network-mode";
                        argv[n++] = W.network_mode;
                }
                execv(bin, (char **) argv);
                _exit(127);
        }
        for (int i = 0; i < 600; i++) {
                W.probing = true;
                long st = access(W.sock, F_OK) == 0 ? call("GET", "/_ping", NULL, NULL) : -1;
                W.probing = false;
                if (st == 200)
                        return;
                int status;
                if (waitpid(W.daemon, &status, WNOHANG) == W.daemon) {
                        char cmd[512];
                        snprintf(cmd, sizeof cmd, "tail -n 30 %s >&2", log);
                        (void) run(cmd);
                        fail_msg("portlayerd exited at start-up");
                }
                usleep(100 * 1000);
        }
        fail_msg("portlayerd did not answer on %s", W.sock);
}

static void daemon_signal(int sig) {
        if (W.daemon <= 0)
                return;
        kill(W.daemon, sig);
        waitpid(W.daemon, NULL, 0);
        W.daemon = 0;
}

/* The value of a "Key:\t..." line of /proc/<pid>/status, "" when absent. */
static void proc_status(const char *pid, const char *key, char *out, size_t size) {
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%s/status", pid);
        out[0] = 0;
        FILE *f = fopen(path, "re");
        size_t klen = strlen(key);
        while (f && fgets(line, sizeof line, f))
                if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
                        const char *v = line + klen + 1;
                        v += strspn(v, " \t");
                        snprintf(out, size, "%.*s", (int) strcspn(v, "\n"), v);
                        break;
                }
        if (f)
                fclose(f);
}

/* Every QEMU of the suite runs under a uid of its own (never root), with
 * QEMU's seccomp filter, no_new_privs and no effective capability; what
 * breaks that is noted for group_teardown to fail on. */
static void check_confined(const char *pid) {
        char uid[64], seccomp[16], nnp[16], capeff[32];
        proc_status(pid, "Uid", uid, sizeof uid);
        proc_status(pid, "Seccomp", seccomp, sizeof seccomp);
        proc_status(pid, "NoNewPrivs", nnp, sizeof nnp);
        proc_status(pid, "CapEff", capeff, sizeof capeff);
        if (!uid[0]) /* gone meanwhile */
                return;
        W.qemus_checked++;
        unsigned u = (unsigned) strtoul(uid, NULL, 10);
        for (size_t i = 0; i < W.n_pass_uids; i++)
                if (W.pass_uids[i] == u) {
                        size_t n = strlen(W.unconfined);
                        snprintf(W.unconfined + n, sizeof W.unconfined - n, "[pid %s: Uid %u of another QEMU too] ",
                                 pid, u);
                }
        if (W.n_pass_uids < sizeof W.pass_uids / sizeof W.pass_uids[0])
                W.pass_uids[W.n_pass_uids++] = u;
        if (atoi(uid) == 0 || strcmp(seccomp, "2") != 0 || strcmp(nnp, "1") != 0 ||
            strcmp(capeff, "0000000000000000") != 0) {
                size_t n = strlen(W.unconfined);
                snprintf(W.unconfined + n, sizeof W.unconfined - n, "[pid %s: Uid %s Seccomp %s NoNewPrivs %s CapEff %s] ",
                         pid, uid, seccomp, nnp, capeff);
        }
}

/* QEMU processes whose command line names our state directory: ours.
 * Counts them (checking that each is confined), and with kill ends them
 * (SIGKILL, by pid); warm-pool guests' QEMUs are among them, and no two
 * run as one uid. With names, each one's domain name (its "-name
 * guest=NAME,") is appended to names, space separated, " NAME " each. */
static int our_qemus_named(bool kill_them, char *names, size_t size) {
        int found = 0;
        W.n_pass_uids = 0;
        DIR *d = opendir("/proc");
        struct dirent *de;
        while (d && (de = readdir(d))) {
                char buf[8192];
                proc_cmdline_text(atoi(de->d_name), buf, sizeof buf);
                if (strstr(buf, "qemu-system") && strstr(buf, W.dir)) {
                        if (kill_them)
                                kill(atoi(de->d_name), SIGKILL);
                        else
                                check_confined(de->d_name);
                        const char *g = strstr(buf, "guest=");
                        if (names && g) {
                                size_t len = strcspn(g + 6, ", ");
                                size_t used = strlen(names);
                                snprintf(names + used, size - used, " %.*s ", (int) len, g + 6);
                        }
                        found++;
                }
        }
        if (d)
                closedir(d);
        return found;
}

static int our_qemus(bool kill_them) {
        return our_qemus_named(kill_them, NULL, 0);
}

static int group_setup(void **state) {
        const char *src = getenv("PL_SOURCE_DIR"), *pli = getenv("PL_IMAGE_BIN");
        snprintf(W.dir, sizeof W.dir, "/tmp/pld-XXXXXX");
        if (!mkdtemp(W.dir))
                return -1;
        snprintf(W.sock, sizeof W.sock, "%s/pl.sock", W.dir);
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "bash %s/tests/lib/make-oci-image.sh %s/oci >/dev/null 2>&1 && "
                 "%s --store %s/images import oci:%s/oci:latest localhost/busybox:latest >/dev/null",
                 src, W.dir, pli, W.dir, W.dir);
        if (run(cmd) != 0)
                return -1;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        daemon_start();
        return 0;
}

static int group_teardown(void **state) {
        /* Nothing here may fail half-way: a dead daemon must not stop the
         * clean-up below. */
        W.probing = true;
        json_t *list = NULL;
        if (W.daemon > 0 && call("GET", "/containers", NULL, &list) == 200) {
                size_t i;
                json_t *c;
                json_array_foreach(list, i, c) {
                        char path[256];
                        snprintf(path, sizeof path, "/containers/%s?force=1", str(c, "id"));
                        (void) call("DELETE", path, NULL, NULL);
                }
        }
        json_decref(list);
        daemon_signal(SIGTERM);
        usleep(500 * 1000);
        int left = our_qemus(true);
        char cmd[256];
        if (!getenv("PL_KEEP_TEST_DIRS")) {
                snprintf(cmd, sizeof cmd, "rm -rf %s", W.dir);
                (void) run(cmd);
        }
        curl_global_cleanup();
        if (left) {
                fprintf(stderr, "%d QEMU processes of this run were still alive (killed)\n", left);
                return -1;
        }
        if (W.unconfined[0] || W.qemus_checked == 0) {
                fprintf(stderr, "QEMU processes not confined (of %d checked): %s\n", W.qemus_checked, W.unconfined);
                return -1;
        }
        return 0;
}

/* --- tests --- */

/* Waits until the warm pool has n guests ready now (GET /version's pool). */
static void wait_pool_guests(json_int_t n) {
        for (int i = 0; i < 3000; i++) {
                json_t *v = NULL;
                assert_int_equal(call("GET", "/version", NULL, &v), 200);
                json_int_t ready = json_integer_value(json_object_get(json_object_get(v, "pool"), "ready"));
                json_decref(v);
                if (ready >= n)
                        return;
                usleep(100 * 1000);
        }
        fail_msg("the warm pool did not have %lld guests ready within 300 s", (long long) n);
}

/* The lifecycle: run, exec, copies, stop, start, remove. The cold run
 * (PL_E2E_COLD_START) boots it; this run starts it from the warm pool. */
static void test_full_life(void **state) {
        char id[65], out[4096];
        json_t *c = NULL;
        if (!W.cold)
                wait_pool_guests(1);
        assert_int_equal(create_run("life", "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"echo started; exec sleep 100000\"]}",
                                    "running", id, &c),
                         200);
        assert_string_equal(str(c, "state"), "running");
        assert_string_equal(str(c, "transport"), "virtio-serial");
        json_decref(c);
        c = inspect("life");
        assert_string_equal(str(c, "start_path"), W.cold ? "cold" : "template");
        json_decref(c);

        /* exec: args never repeat the program */
        assert_int_equal(exec_sync("life", "[\"-c\", \"echo \\\"$0|$1\\\"; exit 3\", \"a\", \"b\"]", out, sizeof out), 3);
        assert_string_equal(out, "a|b\n");

        /* copy in, read back through exec and copy out */
        char cmd[1024], tarpath[256];
        snprintf(tarpath, sizeof tarpath, "%s/in.tar", W.dir);
        snprintf(cmd, sizeof cmd, "mkdir -p %s/in && echo payload > %s/in/data.txt && tar -C %s/in -cf %s data.txt", W.dir,
                 W.dir, W.dir, tarpath);
        assert_int_equal(run(cmd), 0);
        FILE *f = fopen(tarpath, "rb");
        assert_non_null(f);
        char tar[65536];
        size_t n = fread(tar, 1, sizeof tar, f);
        fclose(f);
        assert_int_equal(http("PUT", "/containers/life/archive?path=/srv", tar, n, NULL, NULL, NULL), 200);
        assert_int_equal(exec_sync("life", "[\"-c\", \"cat /srv/data.txt\"]", out, sizeof out), 0);
        assert_string_equal(out, "payload\n");
        char *raw = NULL;
        size_t raw_len = 0;
        assert_int_equal(http("GET", "/containers/life/archive?path=/srv/data.txt", NULL, 0, NULL, &raw, &raw_len), 200);
        assert_true(raw_len >= 1024);
        assert_non_null(memmem(raw, raw_len, "payload\n", 8));
        free(raw);

        /* limits changed on a running container wait for its next start,
         * and the container says so */
        json_t *hj = NULL;
        assert_int_equal(call("GET", "/containers/life/handle", NULL, &hj), 200);
        char hpath[256];
        snprintf(hpath, sizeof hpath, "/handles/%s/limits", str(hj, "handle"));
        assert_int_equal(call("PUT", hpath, "{\"memory_mb\": 320}", NULL), 200);
        snprintf(hpath, sizeof hpath, "/handles/%s/commit", str(hj, "handle"));
        json_decref(hj);
        assert_int_equal(call("POST", hpath, NULL, &c), 200);
        json_t *pend = json_object_get(c, "pending_restart");
        assert_int_equal(json_array_size(pend), 1);
        assert_string_equal(json_string_value(json_array_get(pend, 0)), "memory_mb");
        json_decref(c);

        /* stop: the image's StopSignal (SIGINT, make-oci-image.sh) ends the
         * shell's sleep; the exit code is 128+2 */
        set_state("life", "stopped", 200);
        c = inspect("life");
        assert_string_equal(str(c, "state"), "stopped");
        assert_int_equal(json_integer_value(json_object_get(c, "exit_code")), 130);
        json_decref(c);

        /* start again: the disk kept the file */
        set_state("life", "running", 200);
        c = inspect("life");
        assert_int_equal(json_array_size(json_object_get(c, "pending_restart")), 0);
        json_decref(c);
        /* the guest has the new memory size (MemTotal a little under it) */
        assert_int_equal(exec_sync("life", "[\"-c\", \"awk '/MemTotal/ {print ($2 > 250000)}' /proc/meminfo\"]", out, sizeof out), 0);
        assert_string_equal(out, "1\n");
        assert_int_equal(exec_sync("life", "[\"-c\", \"cat /srv/data.txt\"]", out, sizeof out), 0);
        assert_string_equal(out, "payload\n");

        /* a running container is not removed without force */
        assert_int_equal(call("DELETE", "/containers/life", NULL, NULL), 409);
        destroy(id);
        assert_int_equal(call("GET", "/containers/life", NULL, NULL), 404);
}

/* --- least privilege (docs/security.md) --- */

/* The pid of the QEMU of container id's domain, or 0. */
/* The QEMU of the domain the container runs in (its own "pl-<id16>", or
 * the "plp-..." of the pool guest it was started from). */
static pid_t qemu_of(const char *id) {
        char want[64];
        json_t *c = inspect(id);
        snprintf(want, sizeof want, "guest=%s,", str(c, "domain"));
        json_decref(c);
        pid_t pid = 0;
        DIR *d = opendir("/proc");
        struct dirent *de;
        while (d && !pid && (de = readdir(d))) {
                char buf[8192];
                proc_cmdline_text(atoi(de->d_name), buf, sizeof buf);
                if (strstr(buf, "qemu-system") && strstr(buf, want))
                        pid = atoi(de->d_name);
        }
        if (d)
                closedir(d);
        return pid;
}

static unsigned proc_id(pid_t pid, const char *key) {
        char p[32], v[64];
        snprintf(p, sizeof p, "%d", (int) pid);
        proc_status(p, key, v, sizeof v);
        return (unsigned) strtoul(v, NULL, 10); /* the real id, first of four */
}

static bool uid_has_process(unsigned uid) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        bool found = false;
        while (d && !found && (de = readdir(d))) {
                struct stat st;
                char path[300];
                snprintf(path, sizeof path, "/proc/%s", de->d_name);
                found = de->d_name[0] >= '1' && de->d_name[0] <= '9' && stat(path, &st) == 0 && st.st_uid == uid;
        }
        if (d)
                closedir(d);
        return found;
}

typedef struct Probe {
        const char *what;
        char path[512];
        int flags;     /* open() flags; -1: connect() to a Unix socket */
        int want;      /* the errno expected, 0 for success */
} Probe;

/* Runs each probe in a child that is uid:uid with no supplementary group
 * (what libvirt makes of the domain's DAC label; setpriv --reuid --regid
 * --clear-groups would do the same) and checks what it got. */
static void probe_as(unsigned uid, const Probe *probes, size_t n) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                close(fds[0]);
                if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
                        _exit(1);
                for (size_t i = 0; i < n; i++) {
                        int got = 0, fd;
                        if (probes[i].flags == -1) {
                                struct sockaddr_un sa = {.sun_family = AF_UNIX};
                                snprintf(sa.sun_path, sizeof sa.sun_path, "%s", probes[i].path);
                                fd = socket(AF_UNIX, SOCK_STREAM, 0);
                                if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                                        got = errno;
                        } else if ((fd = open(probes[i].path, probes[i].flags | O_CLOEXEC)) < 0)
                                got = errno;
                        if (fd >= 0)
                                close(fd);
                        if (write(fds[1], &got, sizeof got) != sizeof got)
                                _exit(1);
                }
                _exit(0);
        }
        close(fds[1]);
        for (size_t i = 0; i < n; i++) {
                int got = -1;
                if (read(fds[0], &got, sizeof got) != sizeof got)
                        fail_msg("probe child for uid %u died", uid);
                if (got != probes[i].want)
                        fail_msg("as uid %u, %s (%s): got '%s', want '%s'", uid, probes[i].what, probes[i].path,
                                 got ? strerror(got) : "success", probes[i].want ? strerror(probes[i].want) : "success");
        }
        close(fds[0]);
        int status;
        waitpid(child, &status, 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void assert_mode(const char *path, unsigned mode, unsigned uid, const char *what) {
        struct stat st;
        if (lstat(path, &st) < 0)
                fail_msg("%s %s: %s", what, path, strerror(errno));
        if ((st.st_mode & 07777) != mode || st.st_uid != uid)
                fail_msg("%s %s: mode %04o uid %u, want %04o uid %u", what, path, st.st_mode & 07777,
                         (unsigned) st.st_uid, mode, uid);
}

static void test_least_privilege(void **state) {
        char path[512];
        /* the daemon's own files (docs/security.md) */
        assert_mode(W.dir, 0711, 0, "state directory");
        snprintf(path, sizeof path, "%s/containers", W.dir);
        assert_mode(path, 0711, 0, "containers directory");
        snprintf(path, sizeof path, "%s/run", W.dir);
        assert_mode(path, 0711, 0, "run directory");
        snprintf(path, sizeof path, "%s/uids", W.dir);
        assert_mode(path, 0700, 0, "uid claims");
        snprintf(path, sizeof path, "%s/tmp", W.dir);
        assert_mode(path, 0700, 0, "spool");
        snprintf(path, sizeof path, "%s/libvirt/etc", W.dir);
        assert_mode(path, 0700, 0, "libvirt configuration");
        struct stat st;
        assert_int_equal(stat(W.sock, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0660);
        struct group *g = getgrnam("portlayer");
        assert_int_equal(st.st_gid, g ? g->gr_gid : 0);
        json_t *v = NULL;
        assert_int_equal(call("GET", "/version", NULL, &v), 200);
        assert_string_equal(str(v, "qemu_user"), "a uid per container (210000-219999)");
        json_decref(v);

        /* two running containers: each QEMU under its own uid */
        char a[65], b[65], cid[65];
        const char *sleep_ep = "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"exec sleep 100000\"]}";
        assert_int_equal(create_run("lp-a", sleep_ep, "running", a, NULL), 200);
        assert_int_equal(create_run("lp-b", sleep_ep, "running", b, NULL), 200);
        json_t *ja = inspect(a), *jb = inspect(b);
        unsigned ua = (unsigned) json_integer_value(json_object_get(ja, "uid"));
        unsigned ub = (unsigned) json_integer_value(json_object_get(jb, "uid"));
        json_decref(ja);
        json_decref(jb);
        assert_true(ua >= 210000 && ua <= 219999 && ub >= 210000 && ub <= 219999);
        assert_int_not_equal(ua, ub);
        pid_t pa = qemu_of(a), pb = qemu_of(b);
        assert_true(pa > 0 && pb > 0);
        assert_int_equal(proc_id(pa, "Uid"), ua);
        assert_int_equal(proc_id(pa, "Gid"), ua);
        assert_int_equal(proc_id(pb, "Uid"), ub);
        char groups[64];
        snprintf(path, sizeof path, "%d", (int) pa);
        proc_status(path, "Groups", groups, sizeof groups);
        groups[strcspn(groups, " ")] = 0;
        snprintf(path, sizeof path, "%u", ua);
        assert_string_equal(groups, path); /* its own gid only */
        (void) our_qemus(false); /* Seccomp, NoNewPrivs, CapEff of both */
        assert_string_equal(W.unconfined, "");

        /* what each uid owns */
        char disk_a[512], disk_b[512], run_a[512], log_b[512], sock_b[512], rec_b[512], claim_b[512];
        snprintf(disk_a, sizeof disk_a, "%s/containers/%s/disk.qcow2", W.dir, a);
        snprintf(disk_b, sizeof disk_b, "%s/containers/%s/disk.qcow2", W.dir, b);
        snprintf(run_a, sizeof run_a, "%s/run/%.16s", W.dir, a);
        snprintf(log_b, sizeof log_b, "%s/run/%.16s/console.log", W.dir, b);
        snprintf(sock_b, sizeof sock_b, "%s/run/%.16s/agent.sock", W.dir, b);
        snprintf(rec_b, sizeof rec_b, "%s/containers/%s/container.json", W.dir, b);
        snprintf(claim_b, sizeof claim_b, "%s/uids/%u", W.dir, ub);
        assert_mode(disk_a, 0600, ua, "A's disk");
        assert_mode(disk_b, 0600, ub, "B's disk");
        assert_mode(run_a, 0700, ua, "A's run directory");
        assert_mode(log_b, 0600, ub, "B's console log");
        assert_mode(rec_b, 0600, 0, "B's record");
        assert_mode(claim_b, 0600, 0, "B's uid claim");
        snprintf(path, sizeof path, "%s/containers/%s", W.dir, b);
        assert_mode(path, 0711, 0, "B's directory");

        /* acting as A's uid: B's files and the shared inputs are out of reach */
        glob_t gl;
        snprintf(path, sizeof path, "%s/images/images/*/disk.ext4", W.dir);
        assert_int_equal(glob(path, 0, NULL, &gl), 0);
        Probe probes[] = {
                {"B's disk overlay", "", O_RDONLY, EACCES},
                {"B's console log", "", O_RDONLY, EACCES},
                {"B's agent socket", "", -1, EACCES},
                {"B's record", "", O_RDONLY, EACCES},
                {"B's uid claim", "", O_RDONLY, EACCES},
                {"the base image, for writing", "", O_WRONLY, EACCES},
                {"the kernel, for writing", "", O_WRONLY, EACCES},
                {"the base image, for reading", "", O_RDONLY, 0},
                {"the kernel, for reading", "", O_RDONLY, 0},
                {"A's own disk", "", O_RDWR, 0},
        };
        const char *paths[] = {disk_b, log_b, sock_b, rec_b, claim_b, gl.gl_pathv[0], NULL, gl.gl_pathv[0], NULL,
                               disk_a};
        for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
                if (paths[i])
                        snprintf(probes[i].path, sizeof probes[i].path, "%s", paths[i]);
                else
                        snprintf(probes[i].path, sizeof probes[i].path, "%s/vmlinuz", getenv("PL_KERNEL_DIR"));
        globfree(&gl);
        probe_as(ua, probes, sizeof probes / sizeof probes[0]);

        /* A's uid is free once A is destroyed; C gets a free one (with the
         * warm pool, uids a start swapped away are free too, so not
         * necessarily A's): its claim names C */
        destroy(a);
        snprintf(path, sizeof path, "%s/uids/%u", W.dir, ua);
        assert_int_equal(access(path, F_OK), -1);
        assert_false(uid_has_process(ua));
        assert_int_equal(create_run("lp-c", NULL, NULL, cid, NULL), 200);
        json_t *jc = inspect(cid);
        unsigned uc = (unsigned) json_integer_value(json_object_get(jc, "uid"));
        json_decref(jc);
        char held[128] = "";
        snprintf(path, sizeof path, "%s/uids/%u", W.dir, uc);
        FILE *cf = fopen(path, "re");
        if (cf) {
                if (!fgets(held, sizeof held, cf))
                        held[0] = 0;
                fclose(cf);
        }
        held[strcspn(held, "\n")] = 0;
        assert_string_equal(held, cid);
        assert_int_not_equal(uc, ub);
        snprintf(path, sizeof path, "%s/containers/%s/disk.qcow2", W.dir, cid);
        assert_mode(path, 0600, uc, "C's disk");
        destroy(cid);
        destroy(b);
}

static void test_commit_conflict(void **state) {
        char id[65];
        assert_int_equal(create_run("conflict", NULL, NULL, id, NULL), 200);
        json_t *a = NULL, *b = NULL;
        assert_int_equal(call("GET", "/containers/conflict/handle", NULL, &a), 200);
        assert_int_equal(call("GET", "/containers/conflict/handle", NULL, &b), 200);
        char path[256];
        snprintf(path, sizeof path, "/handles/%s/labels", str(a, "handle"));
        assert_int_equal(call("PUT", path, "{\"labels\": {\"who\": \"a\"}}", NULL), 200);
        snprintf(path, sizeof path, "/handles/%s/commit", str(a, "handle"));
        assert_int_equal(call("POST", path, NULL, NULL), 200);
        snprintf(path, sizeof path, "/handles/%s/labels", str(b, "handle"));
        assert_int_equal(call("PUT", path, "{\"labels\": {\"who\": \"b\"}}", NULL), 200);
        snprintf(path, sizeof path, "/handles/%s/commit", str(b, "handle"));
        json_t *e = NULL;
        assert_int_equal(call("POST", path, NULL, &e), 409);
        assert_non_null(strstr(str(e, "message"), "conflict"));
        json_decref(e);
        /* b changed nothing; a used handle is gone */
        json_t *c = inspect("conflict");
        assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(c, "config"), "labels"), "who")), "a");
        assert_int_equal(json_integer_value(json_object_get(c, "generation")), 2);
        json_decref(c);
        snprintf(path, sizeof path, "/handles/%s/commit", str(a, "handle"));
        assert_int_equal(call("POST", path, NULL, NULL), 404);
        json_decref(a);
        json_decref(b);
        destroy(id);
}

static void test_main_exits(void **state) {
        char id1[65], id2[65];
        json_t *w = NULL;
        assert_int_equal(create_run("exits", "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"exit 7\"]}", "running", id1, NULL),
                         200);
        assert_int_equal(call("POST", "/containers/exits/wait?timeout_s=120", NULL, &w), 200);
        assert_int_equal(json_integer_value(json_object_get(w, "exit_code")), 7);
        json_decref(w);
        json_t *c = inspect("exits");
        assert_string_equal(str(c, "state"), "stopped");
        assert_true(json_is_null(json_object_get(c, "error")));
        json_decref(c);

        assert_int_equal(create_run("killed", "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"kill -9 $$\"]}", "running", id2,
                                    NULL),
                         200);
        assert_int_equal(call("POST", "/containers/killed/wait?timeout_s=120", NULL, &w), 200);
        assert_int_equal(json_integer_value(json_object_get(w, "exit_code")), 137);
        json_decref(w);
        destroy(id1);
        destroy(id2);
}

/* The value of the sample line starting with series (name and labels) in
 * GET /metrics' text; -1 when there is none. */
static double metric(const char *text, const char *series) {
        size_t n = strlen(series);
        for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (strncmp(l, series, n) == 0 && l[n] == ' ')
                        return strtod(l + n + 1, NULL);
        return -1;
}

static char *metrics_get(void) {
        char *raw = NULL;
        size_t len = 0;
        assert_int_equal(http("GET", "/metrics", NULL, 0, NULL, &raw, &len), 200);
        assert_non_null(raw);
        return raw;
}

static void test_metrics(void **state) {
        char *before = metrics_get();
        double starts = metric(before, "portlayer_container_starts_total");
        double running = metric(before, "portlayer_containers{state=\"running\"}");
        assert_true(starts >= 0 && running >= 0);
        const char *info = strstr(before, "\nportlayer_build_info{version=\"");
        assert_true(info && strstr(info, "\"} 1\n"));
        char id[65];
        assert_int_equal(create_run("metered", "{\"path\": \"/bin/sleep\", \"args\": [\"1000\"]}", "running", id, NULL),
                         200);
        char *after = metrics_get();
        double now = metric(after, "portlayer_container_starts_total");
        if (now != starts + 1 || now < 1)
                fail_msg("starts_total %g after one start, %g before", now, starts);
        assert_true(metric(after, "portlayer_container_start_seconds_count") == now);
        assert_true(metric(after, "portlayer_container_start_seconds_bucket{le=\"+Inf\"}") == now);
        assert_true(metric(after, "portlayer_container_start_seconds_sum") > 0);
        assert_true(metric(after, "portlayer_containers{state=\"running\"}") == running + 1);
        assert_true(metric(after, "portlayer_agent_errors_total") == 0);
        /* a real QEMU holds some memory (the 5 s cache may predate it) */
        sleep(6);
        char *later = metrics_get();
        if (metric(later, "portlayer_qemu_memory_bytes") < (1 << 20))
                fail_msg("qemu memory %g bytes with one running", metric(later, "portlayer_qemu_memory_bytes"));
        destroy(id);
        free(before);
        free(after);
        free(later);
}

static void test_guest_panic(void **state) {
        char id[65];
        assert_int_equal(create_run("panics", "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"exec sleep 100000\"]}", "running",
                                    id, NULL),
                         200);
        char path[256];
        snprintf(path, sizeof path, "/containers/panics/exec-sync");
        /* The exec may not answer: the guest dies under it. */
        (void) call("POST", path, "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"echo c > /proc/sysrq-trigger\"], \"timeout_s\": 30}",
                    NULL);
        json_t *w = NULL;
        assert_int_equal(call("POST", "/containers/panics/wait?timeout_s=120", NULL, &w), 200);
        assert_int_equal(json_integer_value(json_object_get(w, "exit_code")), 255);
        json_decref(w);
        json_t *c = inspect("panics");
        assert_string_equal(str(c, "state"), "stopped");
        assert_non_null(strstr(str(c, "error"), "the VM ended"));
        json_decref(c);
        destroy(id);
}

static void test_bad_requests(void **state) {
        json_t *e = NULL;
        struct {
                const char *method, *path, *body;
                long status;
        } cases[] = {
                {"POST", "/containers", "{\"name\": ", 400},
                {"POST", "/containers", "[1, 2]", 400},
                {"POST", "/containers", "{\"image\": \"localhost/busybox:latest\", \"bogus\": 1}", 400},
                {"POST", "/containers", "{\"name\": \"../etc\", \"image\": \"localhost/busybox:latest\"}", 400},
                {"POST", "/containers", "{\"name\": \"x\", \"image\": \"localhost/nothing:here\"}", 404},
                {"POST", "/containers", "{\"name\": \"x\", \"image\": \"localhost/busybox:latest\", \"name\": \"y\"}", 400},
                {"PUT", "/handles/0123456789abcdef0123456789abcdef/limits", "{\"memory_mb\": 512}", 404},
                {"POST", "/handles/0123456789abcdef0123456789abcdef/commit", NULL, 404},
                {"GET", "/containers/nope", NULL, 404},
                {"DELETE", "/containers/nope", NULL, 404},
                {"GET", "/no/such/call", NULL, 404},
                {"PATCH", "/containers", NULL, 405},
                {"GET", "/containers?state=sleeping", NULL, 400},
                {"POST", "/images/pull", "{\"reference\": \"::not a reference\"}", 400},
                {"POST", "/images/pull", "{}", 400},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                long st = call(cases[i].method, cases[i].path, cases[i].body, &e);
                if (st != cases[i].status || !json_string_value(json_object_get(e, "message")))
                        fail_msg("%s %s %s: %ld %s", cases[i].method, cases[i].path, cases[i].body ? cases[i].body : "", st,
                                 e ? json_dumps(e, 0) : "(no JSON)");
                json_decref(e);
        }
        /* absurd sizes: a 2 MiB body, limits out of range */
        size_t big = 2u << 20;
        char *body = malloc(big);
        memset(body, ' ', big);
        body[0] = '{';
        body[big - 1] = '}';
        assert_int_equal(http("POST", "/containers", body, big, NULL, NULL, NULL), 413);
        free(body);
        char id[65];
        json_t *j = NULL;
        assert_int_equal(call("POST", "/containers", "{\"name\": \"limits\", \"image\": \"localhost/busybox:latest\"}", &j), 201);
        char path[256];
        snprintf(path, sizeof path, "/handles/%s/limits", str(j, "handle"));
        snprintf(id, sizeof id, "%s", str(j, "id"));
        assert_int_equal(call("PUT", path, "{\"memory_mb\": 9999999999}", NULL), 400);
        assert_int_equal(call("PUT", path, "{\"vcpus\": 0}", NULL), 400);
        assert_int_equal(call("PUT", path, "{\"vcpus\": \"2\"}", NULL), 400);
        json_decref(j);
        /* nothing was created by any of it */
        json_t *list = NULL;
        assert_int_equal(call("GET", "/containers", NULL, &list), 200);
        assert_int_equal(json_array_size(list), 0);
        json_decref(list);
}

/* Lines of an ndjson body, parsed; *n gets how many. */
static json_t *ndjson(const char *body) {
        json_t *a = json_array();
        const char *p = body ? body : "";
        while (*p) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t) (nl - p) : strlen(p);
                json_t *j = json_loadb(p, len, 0, NULL);
                if (!j)
                        fail_msg("not a JSON line: %.*s", (int) len, p);
                json_array_append_new(a, j);
                p += len + (nl ? 1 : 0);
        }
        return a;
}

static json_t *get_ndjson(const char *path) {
        char *raw = NULL;
        size_t len = 0;
        assert_int_equal(http("GET", path, NULL, 0, NULL, &raw, &len), 200);
        json_t *a = ndjson(raw);
        free(raw);
        return a;
}

static uint64_t last_event_seq(void) {
        json_t *a = get_ndjson("/events?follow=0");
        size_t n = json_array_size(a);
        uint64_t seq = n ? (uint64_t) json_integer_value(json_object_get(json_array_get(a, n - 1), "seq")) : 0;
        json_decref(a);
        return seq;
}

static void test_logs_events_stats(void **state) {
        uint64_t seq = last_event_seq();
        char id[65], path[256];
        assert_int_equal(create_run("chatty", "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"echo out1; echo err1 >&2; sleep 1; echo out2\"]}",
                                    "running", id, NULL),
                         200);
        /* follow: ends by itself once the container stopped, with every line */
        json_t *lines = get_ndjson("/containers/chatty/logs?follow=1");
        /* Each stream in its own order; how the two interleave is not
         * promised (docs/api.md, Logs): err1 may come before out1. */
        assert_int_equal(json_array_size(lines), 3);
        const char *want_out[] = {"out1\n", "out2\n"};
        size_t n_out = 0, n_err = 0;
        for (size_t i = 0; i < 3; i++) {
                json_t *l = json_array_get(lines, i);
                assert_true(strlen(str(l, "time")) > 20);
                if (strcmp(str(l, "stream"), "stderr") == 0) {
                        assert_string_equal(str(l, "data"), "err1\n");
                        n_err++;
                } else {
                        assert_string_equal(str(l, "stream"), "stdout");
                        assert_true(n_out < 2);
                        assert_string_equal(str(l, "data"), want_out[n_out++]);
                }
        }
        assert_int_equal(n_out, 2);
        assert_int_equal(n_err, 1);
        json_t *c = inspect("chatty");
        assert_string_equal(str(c, "state"), "stopped");
        json_decref(c);

        /* the last record of them all */
        json_t *last = get_ndjson("/containers/chatty/logs?tail=1");
        assert_int_equal(json_array_size(last), 1);
        assert_string_equal(str(json_array_get(last, 0), "data"), str(json_array_get(lines, 2), "data"));
        assert_string_equal(str(json_array_get(last, 0), "time"), str(json_array_get(lines, 2), "time"));
        json_decref(last);
        json_decref(lines);
        lines = get_ndjson("/containers/chatty/logs?stdout=0");
        assert_int_equal(json_array_size(lines), 1);
        assert_string_equal(str(json_array_get(lines, 0), "data"), "err1\n");
        json_decref(lines);
        char *raw = NULL;
        size_t len = 0;
        assert_int_equal(http("GET", "/containers/chatty/logs?format=raw&stderr=0", NULL, 0, NULL, &raw, &len), 200);
        assert_string_equal(raw, "out1\nout2\n");
        free(raw);
        assert_int_equal(call("GET", "/containers/nope/logs", NULL, NULL), 404);
        assert_int_equal(call("GET", "/containers/chatty/logs?tail=x", NULL, NULL), 400);

        /* events: create, start, die with the exit code, in order */
        snprintf(path, sizeof path, "/events?follow=0&since=%llu", (unsigned long long) seq);
        json_t *ev = get_ndjson(path);
        const char *want[] = {"create", "start", "die"};
        size_t k = 0;
        for (size_t i = 0; i < json_array_size(ev) && k < 3; i++) {
                json_t *e = json_array_get(ev, i);
                if (strcmp(str(e, "name"), "chatty") == 0 && strcmp(str(e, "action"), want[k]) == 0)
                        k++;
        }
        assert_int_equal(k, 3);
        json_decref(ev);
        destroy(id);

        /* stats and stat of a running container */
        assert_int_equal(create_run("statty", "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"exec sleep 100000\"]}", "running",
                                    id, NULL),
                         200);
        json_t *st = NULL;
        assert_int_equal(call("GET", "/containers/statty/stats", NULL, &st), 200);
        json_t *host = json_object_get(st, "host"), *guest = json_object_get(st, "guest");
        assert_true(json_integer_value(json_object_get(host, "cpu_time_ns")) > 0);
        assert_true(json_integer_value(json_object_get(host, "rss_kib")) > 1024);
        /* the QEMU's proportional share, from its pid file: part of its resident set */
        json_int_t pss = json_integer_value(json_object_get(host, "pss_kib"));
        assert_true(pss > 1024 && pss <= json_integer_value(json_object_get(host, "rss_kib")));
        assert_true(json_integer_value(json_object_get(guest, "mem_total_kib")) > 100 * 1024);
        assert_true(json_integer_value(json_object_get(guest, "processes")) >= 1);
        json_decref(st);
        assert_int_equal(call("GET", "/containers/statty/stat?path=/etc/passwd", NULL, &st), 200);
        assert_string_equal(str(st, "name"), "passwd");
        assert_true(json_integer_value(json_object_get(st, "size")) > 0);
        json_decref(st);
        assert_int_equal(call("GET", "/containers/statty/stat?path=/no/such/file", NULL, NULL), 404);
        /* density (docs/templates.md): the guest reports freed pages through its
         * balloon from blocks of 32 KiB up */
        char out[256];
        assert_int_equal(exec_sync("statty", "[\"-c\", \"ls /sys/bus/virtio/drivers/virtio_balloon | grep -c virtio; "
                                             "cat /sys/module/page_reporting/parameters/page_reporting_order\"]",
                                   out, sizeof out),
                         0);
        assert_string_equal(out, "1\n3\n");
        json_t *vms = NULL;
        assert_int_equal(call("GET", "/vms", NULL, &vms), 200);
        bool seen = false;
        size_t vi;
        json_t *vm;
        json_array_foreach(vms, vi, vm)
                if (strcmp(str(vm, "name"), "statty") == 0) {
                        seen = true;
                        assert_true(json_integer_value(json_object_get(vm, "qemu_pid")) > 0);
                        assert_true(json_integer_value(json_object_get(vm, "pss_kib")) > 1024);
                }
        assert_true(seen);
        json_decref(vms);
        assert_int_equal(call("GET", "/containers/statty/archive?path=/no/such/file", NULL, NULL), 404);
        destroy(id);
}

/* pause and unpause suspend and resume the VM; signals reach the main
 * process. */
static void test_pause_and_signal(void **state) {
        char id[65];
        assert_int_equal(create_run("pausy", "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"trap 'exit 42' USR1; while :; do sleep 0.1; done\"]}",
                                    "running", id, NULL),
                         200);
        set_state("pausy", "paused", 200);
        json_t *c = inspect("pausy");
        assert_string_equal(str(c, "state"), "paused");
        json_decref(c);
        /* a paused guest runs nothing: its agent does not answer */
        json_t *e = NULL;
        assert_int_equal(call("POST", "/containers/pausy/exec-sync", "{\"path\": \"/bin/true\"}", &e), 409);
        json_decref(e);
        set_state("pausy", "running", 200);
        char out[64];
        assert_int_equal(exec_sync("pausy", "[\"-c\", \"echo awake\"]", out, sizeof out), 0);
        assert_string_equal(out, "awake\n");
        assert_int_equal(call("POST", "/containers/pausy/signal", "{\"signal\": \"NOPE\"}", NULL), 400);
        assert_int_equal(call("POST", "/containers/pausy/signal", "{\"signal\": \"USR1\"}", NULL), 204);
        json_t *w = NULL;
        assert_int_equal(call("POST", "/containers/pausy/wait?timeout_s=60", NULL, &w), 200);
        assert_int_equal(json_integer_value(json_object_get(w, "exit_code")), 42);
        json_decref(w);
        /* pausing a stopped container is refused */
        set_state("pausy", "paused", 409);
        destroy(id);
}

/* --- exec over an upgraded connection --- */

/* Sends an exec request on a raw Unix socket and reads the 101 answer's
 * headers; returns the connected fd and the exec id. */
static int exec_upgrade(const char *ref, const char *body, char exec_id[64]) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%.100s", W.sock);
        assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        char req[2048];
        int n = snprintf(req, sizeof req,
                         "POST /containers/%s/exec HTTP/1.1\r\nHost: pl\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                         ref, strlen(body), body);
        assert_int_equal(write(fd, req, (size_t) n), n);
        char hdr[4096] = {0};
        size_t got = 0;
        while (!strstr(hdr, "\r\n\r\n")) {
                assert_true(got < sizeof hdr - 1);
                ssize_t k = read(fd, hdr + got, 1); /* byte by byte: nothing past the headers */
                assert_true(k == 1);
                got++;
        }
        if (strncmp(hdr, "HTTP/1.1 101", 12) != 0)
                fail_msg("exec: %s", hdr);
        const char *id = strcasestr(hdr, "X-Portlayer-Exec-Id: ");
        assert_non_null(id);
        snprintf(exec_id, 64, "%.32s", id + 21);
        return fd;
}

static size_t read_all(int fd, char *buf, size_t size) {
        size_t got = 0;
        for (;;) {
                ssize_t k = read(fd, buf + got, size - 1 - got);
                if (k <= 0)
                        break;
                got += (size_t) k;
        }
        buf[got] = 0;
        return got;
}

static void test_exec_streams(void **state) {
        char id[65], exec_id[64], path[256];
        assert_int_equal(create_run("execy", "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"exec sleep 100000\"]}", "running",
                                    id, NULL),
                         200);
        /* pipes: stdin in, stdout and stderr as frames, then the exit code */
        int fd = exec_upgrade("execy", "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"cat; echo err >&2; exit 4\"], \"stdin\": true}",
                              exec_id);
        assert_int_equal(write(fd, "hello\n", 6), 6);
        assert_int_equal(shutdown(fd, SHUT_WR), 0);
        static char buf[65536];
        size_t n = read_all(fd, buf, sizeof buf);
        close(fd);
        char out[256] = "", err[256] = "", sys[256] = "";
        for (size_t at = 0; at + 8 <= n;) {
                size_t len = (size_t) (uint8_t) buf[at + 4] << 24 | (size_t) (uint8_t) buf[at + 5] << 16 |
                             (size_t) (uint8_t) buf[at + 6] << 8 | (uint8_t) buf[at + 7];
                assert_true(at + 8 + len <= n);
                char *dst = buf[at] == 1 ? out : buf[at] == 2 ? err : sys;
                strncat(dst, buf + at + 8, MIN(len, 255 - strlen(dst)));
                at += 8 + len;
        }
        assert_string_equal(out, "hello\n");
        assert_string_equal(err, "err\n");
        assert_string_equal(sys, "{\"exit_code\": 4}\n");
        json_t *j = NULL;
        snprintf(path, sizeof path, "/exec/%s", exec_id);
        assert_int_equal(call("GET", path, NULL, &j), 200);
        assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 4);
        assert_true(json_is_false(json_object_get(j, "running")));
        json_decref(j);

        /* a terminal: its size, a resize, input echoed, raw bytes */
        fd = exec_upgrade("execy",
                          "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"stty size; read x; stty size; echo got:$x\"], "
                          "\"tty\": true, \"stdin\": true, \"rows\": 40, \"cols\": 100}",
                          exec_id);
        size_t got = 0;
        while (!memmem(buf, got, "40 100", 6)) {
                ssize_t k = read(fd, buf + got, sizeof buf - 1 - got);
                assert_true(k > 0);
                got += (size_t) k;
        }
        snprintf(path, sizeof path, "/exec/%s/resize?rows=50&cols=120", exec_id);
        assert_int_equal(call("POST", path, NULL, NULL), 204);
        assert_int_equal(write(fd, "abc\n", 4), 4);
        n = read_all(fd, buf, sizeof buf);
        close(fd);
        if (!strstr(buf, "50 120") || !strstr(buf, "got:abc"))
                fail_msg("terminal output: '%s'", buf);
        snprintf(path, sizeof path, "/exec/%s", exec_id);
        assert_int_equal(call("GET", path, NULL, &j), 200);
        assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 0);
        json_decref(j);

        /* no upgrade, no stream */
        assert_int_equal(call("POST", "/containers/execy/exec", "{\"path\": \"/bin/true\"}", NULL), 400);
        assert_int_equal(call("GET", "/exec/0123456789abcdef0123456789abcdef", NULL, NULL), 404);
        destroy(id);
}

typedef struct Par {
        char name[32];
        char id[65];
        long status;
        char *answer;
} Par;

static void *par_main(void *arg) {
        Par *p = arg;
        json_t *j = NULL;
        p->status = create_run(p->name, "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"exec sleep 100000\"]}", "running", p->id,
                               &j);
        p->answer = j ? json_dumps(j, 0) : NULL;
        json_decref(j);
        return NULL;
}

static void test_parallel_and_restart(void **state) {
        Par p[5];
        pthread_t t[5];
        for (int i = 0; i < 5; i++) {
                memset(&p[i], 0, sizeof p[i]);
                snprintf(p[i].name, sizeof p[i].name, "par%d", i);
                assert_int_equal(pthread_create(&t[i], NULL, par_main, &p[i]), 0);
        }
        for (int i = 0; i < 5; i++) {
                pthread_join(t[i], NULL);
                if (p[i].status != 200)
                        fail_msg("parallel start %d: %ld %s", i, p[i].status, p[i].answer ? p[i].answer : "");
                free(p[i].answer);
        }
        for (int i = 0; i < 5; i++) {
                json_t *c = inspect(p[i].name);
                assert_string_equal(str(c, "state"), "running");
                json_decref(c);
        }

        /* kill -9 the daemon and start it again: every container is still
         * running and usable, under the uid it had; the claim of a
         * container that no longer exists (left by a kill -9 between the
         * removal and the release) is released */
        unsigned uids[5];
        for (int i = 0; i < 5; i++) {
                json_t *c = inspect(p[i].name);
                uids[i] = (unsigned) json_integer_value(json_object_get(c, "uid"));
                json_decref(c);
        }
        char orphan[256], claim[256], owner[128];
        snprintf(orphan, sizeof orphan, "%s/uids/219999", W.dir);
        FILE *f = fopen(orphan, "we");
        assert_non_null(f);
        fprintf(f, "%064d\n", 0);
        fclose(f);
        daemon_signal(SIGKILL);
        daemon_start();
        assert_int_equal(access(orphan, F_OK), -1);
        for (int i = 0; i < 5; i++) {
                json_t *c = inspect(p[i].name);
                assert_string_equal(str(c, "state"), "running");
                assert_int_equal(json_integer_value(json_object_get(c, "uid")), uids[i]);
                assert_int_equal(proc_id(qemu_of(p[i].id), "Uid"), uids[i]);
                snprintf(claim, sizeof claim, "%s/uids/%u", W.dir, uids[i]);
                f = fopen(claim, "re");
                assert_non_null(f);
                assert_non_null(fgets(owner, sizeof owner, f));
                fclose(f);
                owner[strcspn(owner, "\n")] = 0;
                assert_string_equal(owner, p[i].id);
                json_decref(c);
                char out[64];
                assert_int_equal(exec_sync(p[i].name, "[\"-c\", \"echo alive\"]", out, sizeof out), 0);
                assert_string_equal(out, "alive\n");
        }
        for (int i = 0; i < 5; i++)
                destroy(p[i].id);
}

/* Every uid claim names a container of list or a guest of the running
 * daemon's warm pool (its run directory exists): the killed daemon's pool
 * guests gave theirs back. The first stray one goes into why. */
static void stray_claims(json_t *list, char *why, size_t size) {
        char dir[600];
        snprintf(dir, sizeof dir, "%s/uids", W.dir);
        DIR *d = opendir(dir);
        assert_non_null(d);
        for (struct dirent *de; (de = readdir(d));) {
                if (de->d_name[0] < '0' || de->d_name[0] > '9')
                        continue;
                char path[900], owner[128] = "";
                snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
                FILE *f = fopen(path, "re");
                if (!f)
                        continue; /* released meanwhile */
                if (!fgets(owner, sizeof owner, f))
                        owner[0] = 0;
                fclose(f);
                owner[strcspn(owner, "\n")] = 0;
                bool known = false;
                size_t i;
                json_t *c;
                json_array_foreach(list, i, c)
                        known = known || strcmp(str(c, "id"), owner) == 0;
                snprintf(path, sizeof path, "%s/pool/%s", W.dir, owner + (strncmp(owner, "plp-", 4) == 0 ? 4 : 0));
                if (!known && (strncmp(owner, "plp-", 4) != 0 || access(path, F_OK) != 0))
                        snprintf(why, size, "uid %s is still claimed by %s", de->d_name, owner);
        }
        closedir(d);
}

/* After a restart: no container is caught half-way, every running one has
 * exactly its VM, every stopped or created one none, and each has its disk;
 * no uid stays claimed for a guest of the killed daemon's pool. */
static void assert_reconciled(void) {
        json_t *list = NULL;
        assert_int_equal(call("GET", "/containers", NULL, &list), 200);
        size_t i;
        json_t *c;
        int running = 0;
        json_array_foreach(list, i, c) {
                const char *st = str(c, "state");
                if (strcmp(st, "starting") == 0 || strcmp(st, "stopping") == 0 || strcmp(st, "removing") == 0)
                        fail_msg("container %s is still %s after the restart", str(c, "name"), st);
                running += strcmp(st, "running") == 0;
                char disk[512];
                snprintf(disk, sizeof disk, "%s/containers/%s/disk.qcow2", W.dir, str(c, "id"));
                assert_int_equal(access(disk, F_OK), 0);
        }
        /* QEMU processes of destroyed domains may take a moment to go. Each
         * running container has its VM; every other QEMU is a guest of the
         * new daemon's warm pool (its run directory in <state>/pool), never
         * one of the pool guests the killed daemon left (docs/templates.md). */
        char domains[4096] = "", qemus[4096] = "", why[300] = "";
        json_array_foreach(list, i, c)
                if (strcmp(str(c, "state"), "running") == 0) {
                        size_t used = strlen(domains);
                        snprintf(domains + used, sizeof domains - used, " %s ", str(c, "domain"));
                }
        for (int t = 0; t < 50; t++) {
                qemus[0] = why[0] = 0;
                (void) our_qemus_named(false, qemus, sizeof qemus);
                int vms = 0;
                for (char *save = NULL, *q = strtok_r(qemus, " ", &save); q; q = strtok_r(NULL, " ", &save)) {
                        char key[80], dir[300];
                        snprintf(key, sizeof key, " %s ", q);
                        snprintf(dir, sizeof dir, "%s/pool/%s", W.dir, q + 4);
                        if (strstr(domains, key))
                                vms++;
                        else if (strncmp(q, "plp-", 4) != 0 || access(dir, F_OK) != 0)
                                snprintf(why, sizeof why, "QEMU of %s belongs to no container and is not in the pool", q);
                }
                if (vms != running && !why[0])
                        snprintf(why, sizeof why, "%d running containers, %d with a QEMU", running, vms);
                if (!why[0])
                        stray_claims(list, why, sizeof why);
                if (!why[0])
                        break;
                usleep(100 * 1000);
        }
        if (why[0]) {
                /* what the daemons said of uids and pool guests, for the post-mortem */
                char cmd[600];
                snprintf(cmd, sizeof cmd, "grep -E 'uid|pool|orphan' %s/daemon.log | tail -n 60 >&2", W.dir);
                (void) run(cmd);
                fail_msg("after the restart: %s", why);
        }
        /* no directory without a container */
        char cmd[512];
        snprintf(cmd, sizeof cmd, "test $(ls %s/containers | wc -l) -eq %zu", W.dir, json_array_size(list));
        assert_int_equal(run(cmd), 0);
        json_decref(list);
}

typedef struct Bg {
        const char *name, *state;
} Bg;

static void *bg_commit(void *arg) {
        Bg *b = arg;
        char path[256], body[64];
        json_t *j = NULL;
        snprintf(path, sizeof path, "/containers/%s/handle", b->name);
        if (call("GET", path, NULL, &j) != 200)
                return NULL;
        char handle[64];
        snprintf(handle, sizeof handle, "%s", str(j, "handle"));
        json_decref(j);
        snprintf(path, sizeof path, "/handles/%s/state", handle);
        snprintf(body, sizeof body, "{\"state\": \"%s\"}", b->state);
        (void) call("PUT", path, body, NULL);
        snprintf(path, sizeof path, "/handles/%s/commit", handle);
        (void) call("POST", path, NULL, NULL); /* the daemon dies under it */
        return NULL;
}

/* kill -9 of the daemon while containers start, then while they stop. */
static void test_kill_during_transitions(void **state) {
        const char *names[] = {"k0", "k1", "k2"};
        char ids[3][65];
        for (int i = 0; i < 3; i++)
                assert_int_equal(create_run(names[i], "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"exec sleep 100000\"]}",
                                            NULL, ids[i], NULL),
                                 200);
        for (int round = 0; round < 2; round++) {
                const char *target = round == 0 ? "running" : "stopped";
                Bg b[3];
                pthread_t t[3];
                W.probing = true; /* the calls in flight fail with the daemon */
                for (int i = 0; i < 3; i++) {
                        b[i] = (Bg){names[i], target};
                        assert_int_equal(pthread_create(&t[i], NULL, bg_commit, &b[i]), 0);
                }
                usleep(round == 0 ? 1500 * 1000 : 300 * 1000); /* boots under way / signals sent */
                daemon_signal(SIGKILL);
                for (int i = 0; i < 3; i++)
                        pthread_join(t[i], NULL);
                W.probing = false;
                daemon_start();
                assert_reconciled();
                if (round == 0) /* whatever made it, the rest runs now */
                        for (int i = 0; i < 3; i++) {
                                json_t *c = inspect(names[i]);
                                bool running = strcmp(str(c, "state"), "running") == 0;
                                json_decref(c);
                                if (!running)
                                        set_state(names[i], "running", 200);
                                char out[64];
                                assert_int_equal(exec_sync(names[i], "[\"-c\", \"echo ok\"]", out, sizeof out), 0);
                        }
        }
        for (int i = 0; i < 3; i++)
                destroy(ids[i]);
        assert_reconciled();
}

/* The raw logs of ref, polled until they hold want (the monitor writes
 * what it reads at once, but a loaded machine may take a while). */
static char *logs_until(const char *ref, const char *want) {
        char path[256];
        snprintf(path, sizeof path, "/containers/%s/logs?format=raw", ref);
        char *raw = NULL;
        size_t len = 0;
        for (int i = 0; i < 300; i++) {
                free(raw);
                raw = NULL;
                assert_int_equal(http("GET", path, NULL, 0, NULL, &raw, &len), 200);
                if (raw && strstr(raw, want))
                        break;
                usleep(100 * 1000);
        }
        return raw;
}

/* Output the main process writes while the daemon is down is not lost
 * (docs/protocol.md, "Detached processes"). What the agent had already sent
 * on the old connection when the daemon was killed is outside that promise
 * (the in-flight window), so "before" is first seen in main.log; "during" is
 * written only after the kill, once the process is told to (the file an
 * exec creates just before the kill, then a pause for the agent to see the
 * connection end). */
static void test_output_across_restart(void **state) {
        char id[65];
        assert_int_equal(create_run("talker",
                                    "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"echo before; "
                                    "while [ ! -e /tmp/go ]; do sleep 0.1; done; sleep 3; echo during; "
                                    "exec sleep 100000\"]}",
                                    "running", id, NULL),
                         200);
        char *raw = logs_until("talker", "before");
        if (!raw || strcmp(raw, "before\n") != 0)
                fail_msg("logs before the restart: '%s'", raw ? raw : "");
        free(raw);
        assert_int_equal(exec_sync("talker", "[\"-c\", \"touch /tmp/go\"]", NULL, 0), 0);
        daemon_signal(SIGKILL);
        sleep(6);
        daemon_start();
        /* the monitor attaches at start-up and writes the buffered bytes */
        raw = logs_until("talker", "during");
        if (!raw || strcmp(raw, "before\nduring\n") != 0)
                fail_msg("logs after the restart: '%s'", raw ? raw : "");
        free(raw);
        destroy(id);
}

/* --- the warm pool (docs/templates.md) --- */

/* Waits until the daemon's log says n pool guests became ready in all. */
/* boot_id, 16 bytes of /dev/urandom, hostname and the clock (seconds) of a
 * running container, one line each. */
static void identity(const char *ref, char *out, size_t size) {
        assert_int_equal(exec_sync(ref, "[\"-c\", \"cat /proc/sys/kernel/random/boot_id; "
                                        "od -An -tx1 -N16 /dev/urandom; hostname; date +%s; cat /etc/machine-id\"]",
                                   out, size),
                         0);
}

static void test_start_paths(void **state) {
        char id1[65], id2[65], id3[65], a[512], b[512], out[256];
        json_t *c = NULL;
        wait_pool_guests(2);
        const char *sleeper = "{\"path\": \"/bin/sleep\", \"args\": [\"100000\"]}";
        assert_int_equal(create_run("tpl1", sleeper, "running", id1, NULL), 200);
        assert_int_equal(create_run("tpl2", sleeper, "running", id2, NULL), 200);
        for (int i = 0; i < 2; i++) {
                c = inspect(i ? "tpl2" : "tpl1");
                assert_string_equal(str(c, "start_path"), "template");
                assert_memory_equal(str(c, "domain"), "plp-", 4);
                json_decref(c);
        }
        /* two clones of one pool: their own boot, RNG, hostname; the host's clock */
        identity("tpl1", a, sizeof a);
        identity("tpl2", b, sizeof b);
        fprintf(stderr, "tpl1: %stpl2: %s", a, b);
        char *la[5], *lb[5], *sa = NULL, *sb = NULL;
        la[0] = strtok_r(a, "\n", &sa), lb[0] = strtok_r(b, "\n", &sb);
        for (int i = 1; i < 5; i++)
                la[i] = strtok_r(NULL, "\n", &sa), lb[i] = strtok_r(NULL, "\n", &sb);
        for (int i = 0; i < 5; i++)
                assert_true(la[i] && lb[i]);
        /* a machine id of its own (the image has none): 32 hex digits */
        assert_int_equal(strlen(la[4]), 32);
        assert_int_equal(strspn(la[4], "0123456789abcdef"), 32);
        assert_string_not_equal(la[4], lb[4]);
        assert_string_not_equal(la[0], lb[0]);
        assert_string_not_equal(la[1], lb[1]);
        assert_string_equal(la[2], "tpl1");
        assert_string_equal(lb[2], "tpl2");
        long now = (long) time(NULL);
        assert_true(labs(atol(la[3]) - now) < 30 && labs(atol(lb[3]) - now) < 30);

        /* the default network's NIC was hot-plugged, set up by the agent, and
         * reaches the bridge */
        char addrs[4096];
        assert_int_equal(exec_sync("tpl2", "[\"-c\", \"ip -4 addr show dev eth0; ip route; ping -c1 -W5 10.88.0.1 && echo PINGOK\"]", addrs, sizeof addrs), 0);
        assert_non_null(strstr(addrs, "inet 10.88."));
        assert_non_null(strstr(addrs, "PINGOK"));

        /* exec, copy out, stop and start again like a cold-booted one */
        char *raw = NULL;
        size_t raw_len = 0;
        assert_int_equal(http("GET", "/containers/tpl1/archive?path=/etc/hostname", NULL, 0, NULL, &raw, &raw_len), 200);
        assert_non_null(memmem(raw, raw_len, "tpl1\n", 5));
        free(raw);
        set_state("tpl1", "stopped", 200);
        c = inspect("tpl1");
        assert_string_equal(str(c, "state"), "stopped");
        json_decref(c);
        set_state("tpl1", "running", 200);
        assert_int_equal(exec_sync("tpl1", "[\"-c\", \"echo again\"]", out, sizeof out), 0);
        assert_string_equal(out, "again\n");

        /* per container: cold_start boots its own VM */
        create_running_limited("coldone", "{\"cold_start\": \"yes\"}", "{\"cold_start\": true}", sleeper, id3);
        c = inspect("coldone");
        assert_string_equal(str(c, "start_path"), "cold");
        assert_memory_equal(str(c, "domain"), "pl-", 3);
        json_decref(c);

        /* share_pages false keeps the VM's RAM from KSM: QEMU runs with
         * mem-merge=off, which no pool guest has, so it boots cold */
        char id4[65];
        create_running_limited("nomerge", "{\"share_pages\": 0}", "{\"share_pages\": false}", sleeper, id4);
        c = inspect("nomerge");
        assert_string_equal(str(c, "start_path"), "cold");
        assert_false(json_is_true(json_object_get(json_object_get(c, "config"), "share_pages")));
        json_decref(c);
        json_t *vms = NULL;
        assert_int_equal(call("GET", "/vms", NULL, &vms), 200);
        size_t vi;
        json_t *vm;
        int merged = 0, unmerged = 0;
        json_array_foreach(vms, vi, vm) {
                int pid = (int) json_integer_value(json_object_get(vm, "qemu_pid"));
                char cmd[8192] = "";
                if (pid <= 0)
                        continue;
                proc_cmdline_text(pid, cmd, sizeof cmd);
                bool off = strstr(cmd, "mem-merge=off") != NULL;
                if (strcmp(str(vm, "name"), "nomerge") == 0)
                        unmerged += off;
                else
                        merged += !off;
        }
        json_decref(vms);
        assert_int_equal(unmerged, 1);
        assert_true(merged >= 1); /* the other containers' RAM is offered to KSM as before */
        destroy(id1);
        destroy(id2);
        destroy(id3);
        destroy(id4);
}

/* --- networking (docs/networking.md) --- */

/* A command's stdout (trailing newline kept) into out; its exit status. */
static int sh_out(char *out, size_t size, const char *cmd) {
        char *o = NULL;
        int r = test_sh_out(&o, NULL, "%s", cmd);
        snprintf(out, size, "%s", o ? o : "");
        free(o);
        return r;
}

/* A new container on network net publishing ports (JSON or NULL), running
 * cmd; the commit's status (its answer in *ret when not NULL). */
static long create_net(const char *name, const char *net, const char *ports, const char *cmd, const char *state,
                       char id[65], json_t **ret) {
        char entry[512], network[512];
        snprintf(entry, sizeof entry, "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"%s\"]}", cmd);
        snprintf(network, sizeof network, "{\"network\": \"%s\", \"ports\": %s}", net, ports ? ports : "[]");
        return create_with(name, entry, network, NULL, state, id, ret);
}

static void expect_message(json_t *j, const char *want) {
        const char *m = str(j, "message");
        if (!strstr(m, want))
                fail_msg("expected a message naming '%s', got '%s'", want, m);
}

/* Retries cmd until it prints want (a fresh NIC, a DNAT rule: give them a
 * moment), then asserts. */
static void expect_sh(const char *cmd, const char *want) {
        char out[4096] = "";
        for (int i = 0; i < 50; i++) {
                if (sh_out(out, sizeof out, cmd) == 0 && strstr(out, want))
                        return;
                usleep(200 * 1000);
        }
        fail_msg("'%s' printed '%s', not '%s'", cmd, out, want);
}

static int count_lines(const char *cmd) {
        char out[8192];
        (void) sh_out(out, sizeof out, cmd);
        int n = 0;
        for (char *p = out; *p; p++)
                n += *p == '\n';
        return n;
}

/* busybox httpd in the namespace on listen, serving <dir>/<sub>/hello
 * (holding text); its pid, for the caller to end. */
static pid_t host_httpd(const char *listen, const char *sub, const char *text) {
        char www[300], cmd[1024];
        snprintf(www, sizeof www, "%s/%s", W.dir, sub);
        snprintf(cmd, sizeof cmd, "mkdir -p %s && echo %s > %s/hello", www, text, www);
        assert_int_equal(run(cmd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                execl("/bin/busybox", "busybox", "httpd", "-f", "-p", listen, "-h", www, (char *) NULL);
                _exit(127);
        }
        return pid;
}

#define WEB_CMD "mkdir -p /www && echo web-ok > /www/index.html && exec httpd -f -p 80 -h /www"
#define SLEEP_CMD "exec sleep 100000"

static void test_networking(void **state) {
        json_t *j = NULL;
        char web[65], cli[65], out[4096], cmd[1024];

        /* the default network and its bridge */
        assert_int_equal(call("GET", "/networks/default", NULL, &j), 200);
        assert_string_equal(str(j, "subnet"), "10.88.0.0/16");
        assert_string_equal(str(j, "gateway"), "10.88.0.1");
        json_decref(j);
        expect_sh("ip -4 addr show dev plbr0", "10.88.0.1/16");

        /* an HTTP server of the test's own on the gateway address */
        pid_t httpd = host_httpd("10.88.0.1:18000", "www", "from-the-host");

        /* a web server publishing port 80 on every address and on 127.0.0.1,
         * and a client */
        long st = create_net("web", "default",
                             "[{\"host_port\": 18080, \"container_port\": 80},"
                             " {\"host_ip\": \"127.0.0.1\", \"host_port\": 18081, \"container_port\": 80}]",
                             WEB_CMD, "running", web, &j);
        if (st != 200)
                fail_msg("web: %ld %s", st, j ? json_dumps(j, 0) : "");
        const char *web_ip = str(j, "ip_address");
        char web_addr[16];
        snprintf(web_addr, sizeof web_addr, "%s", web_ip);
        assert_memory_equal(str(j, "mac_address"), "0a:70:6c:", 9);
        assert_string_equal(str(j, "network"), "default");
        assert_int_equal(json_array_size(json_object_get(j, "ports")), 2);
        json_decref(j);
        assert_int_equal(create_net("client", "default", NULL, SLEEP_CMD, "running", cli, NULL), 200);

        /* by address and by name, both ways; hostname is the name */
        snprintf(cmd, sizeof cmd, "[\"-c\", \"ping -c1 -W5 %s >/dev/null && wget -qO- http://web/\"]", web_addr);
        assert_int_equal(exec_sync("client", cmd, out, sizeof out), 0);
        assert_string_equal(out, "web-ok\n");
        assert_int_equal(exec_sync("web", "[\"-c\", \"ping -c1 -W5 client >/dev/null && hostname\"]", out,
                                   sizeof out),
                         0);
        assert_string_equal(out, "web\n");
        /* the gateway's HTTP server, through the bridge */
        assert_int_equal(exec_sync("client", "[\"-c\", \"wget -qO- http://10.88.0.1:18000/hello\"]", out,
                                   sizeof out),
                         0);
        assert_string_equal(out, "from-the-host\n");

        /* published ports from the namespace: loopback, the gateway address */
        expect_sh("curl -s --max-time 10 http://127.0.0.1:18081/", "web-ok");
        expect_sh("curl -s --max-time 10 http://10.88.0.1:18080/", "web-ok");
        expect_sh("curl -s --max-time 10 http://127.0.0.1:18080/", "web-ok");

        /* port conflicts: another container's port, a host socket's */
        char other[65];
        st = create_net("other", "default", "[{\"host_ip\": \"127.0.0.1\", \"host_port\": 18080, \"container_port\": 80}]",
                        SLEEP_CMD, NULL, other, &j);
        assert_int_equal(st, 409);
        expect_message(j, "127.0.0.1:18080/tcp");
        json_decref(j);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(18090), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(listen(fd, 1), 0);
        st = create_net("other", "default", "[{\"host_port\": 18090, \"container_port\": 80}]", SLEEP_CMD, NULL, other,
                        &j);
        assert_int_equal(st, 409);
        expect_message(j, "0.0.0.0:18090/tcp");
        json_decref(j);
        close(fd);
        assert_int_equal(call("GET", "/containers/other", NULL, NULL), 404); /* a failed commit leaves nothing */

        /* address conflicts: a /30 has one address */
        assert_int_equal(call("POST", "/networks", "{\"name\": \"tiny\", \"subnet\": \"10.99.0.0/30\"}", &j), 201);
        json_decref(j);
        assert_int_equal(call("POST", "/networks", "{\"name\": \"dup\", \"subnet\": \"10.99.0.0/24\"}", NULL), 409);
        char t1[65], t2[65];
        assert_int_equal(create_net("tiny1", "tiny", NULL, SLEEP_CMD, NULL, t1, &j), 200);
        assert_string_equal(str(j, "ip_address"), "10.99.0.2");
        json_decref(j);
        assert_int_equal(create_net("tiny2", "tiny", NULL, SLEEP_CMD, NULL, t2, &j), 507);
        expect_message(j, "no free address");
        json_decref(j);
        assert_int_equal(call("DELETE", "/networks/tiny", NULL, &j), 409);
        json_decref(j);
        assert_int_equal(call("DELETE", "/networks/default", NULL, &j), 409);
        expect_message(j, "cannot be removed");
        json_decref(j);
        destroy(t1);
        assert_int_equal(call("DELETE", "/networks/tiny", NULL, NULL), 204);

        /* kill -9 with published ports, leftovers of a crash planted: a stale
         * rule, a tap of no VM, the lease file of a container that is gone */
        daemon_signal(SIGKILL);
        assert_int_equal(run("nft add rule ip portlayer prerouting tcp dport 9999 dnat to 10.88.0.99:99"), 0);
        assert_int_equal(run("ip tuntap add pl0123456789ab mode tap"), 0);
        snprintf(cmd, sizeof cmd,
                 "echo '{\"container\": \"%064d\", \"mac\": \"0a:70:6c:00:00:99\"}' > %s/networks/default.leases/10.88.0.99",
                 9, W.dir);
        assert_int_equal(run(cmd), 0);
        daemon_start();
        expect_sh("curl -s --max-time 10 http://127.0.0.1:18081/", "web-ok");
        assert_int_equal(exec_sync("client", "[\"-c\", \"wget -qO- http://web/\"]", out, sizeof out), 0);
        assert_string_equal(out, "web-ok\n");
        assert_int_equal(count_lines("nft list table ip portlayer | grep 9999"), 0);
        assert_int_equal(count_lines("nft list table ip portlayer | grep dnat"), 4); /* 2 ports x 2 chains */
        /* one tap per running container, one lease per container (an
         * earlier case that failed may have left one of its own) */
        json_t *all = NULL, *running = NULL;
        assert_int_equal(call("GET", "/containers", NULL, &all), 200);
        assert_int_equal(call("GET", "/containers?state=running", NULL, &running), 200);
        assert_int_equal(count_lines("ip -o link show | grep -E ': pl[0-9a-f]{12}[:@]'"), json_array_size(running));
        snprintf(cmd, sizeof cmd, "ls %s/networks/default.leases", W.dir);
        assert_int_equal(count_lines(cmd), json_array_size(all));
        char planted[300];
        snprintf(planted, sizeof planted, "%s/networks/default.leases/10.88.0.99", W.dir);
        assert_false(test_exists(planted));
        assert_false(test_exists("/sys/class/net/pl0123456789ab"));
        json_decref(all);
        json_decref(running);

        /* a file the user copies in stays the user's: a third container
         * starting rewrites web's /etc/hosts, not client's */
        snprintf(cmd, sizeof cmd, "mkdir -p %s/etc && echo '10.1.2.3 custom' > %s/etc/hosts && tar -C %s/etc -cf %s/hosts.tar hosts",
                 W.dir, W.dir, W.dir, W.dir);
        assert_int_equal(run(cmd), 0);
        snprintf(cmd, sizeof cmd, "%s/hosts.tar", W.dir);
        size_t tar_len = 0;
        char *tar = test_read_file(cmd, &tar_len);
        assert_non_null(tar);
        assert_int_equal(http("PUT", "/containers/client/archive?path=/etc", tar, tar_len, NULL, NULL, NULL), 200);
        free(tar);
        char third[65];
        assert_int_equal(create_net("third", "default", NULL, SLEEP_CMD, "running", third, NULL), 200);
        assert_int_equal(exec_sync("web", "[\"-c\", \"ping -c1 -W5 third >/dev/null && echo ok\"]", out, sizeof out), 0);
        assert_int_equal(exec_sync("client", "[\"-c\", \"cat /etc/hosts\"]", out, sizeof out), 0);
        assert_string_equal(out, "10.1.2.3 custom\n");
        destroy(third);

        /* stop one: the other's /etc/hosts forgets it; destroy: its lease,
         * tap and rules go */
        snprintf(cmd, sizeof cmd, "ls %s/networks/default.leases", W.dir);
        set_state("client", "stopped", 200);
        assert_int_equal(exec_sync("web", "[\"-c\", \"grep -c client /etc/hosts || true\"]", out, sizeof out), 0);
        assert_string_equal(out, "0\n");
        int leases = count_lines(cmd);
        destroy(web);
        destroy(cli);
        assert_int_equal(count_lines("nft list table ip portlayer | grep dnat"), 0);
        char tap[64];
        snprintf(tap, sizeof tap, "/sys/class/net/pl%.12s", web);
        assert_false(test_exists(tap));
        snprintf(tap, sizeof tap, "/sys/class/net/pl%.12s", cli);
        assert_false(test_exists(tap));
        assert_int_equal(count_lines(cmd), leases - 2);
        assert_int_not_equal(run("curl -s --max-time 3 http://127.0.0.1:18081/ >/dev/null"), 0);

        kill(httpd, SIGTERM);
        waitpid(httpd, NULL, 0);
}

/* The user mode: QEMU's slirp per container, published ports as forwards of
 * the VM, nothing on the host; forwards again after a kill -9. */
static void test_user_mode(void **state) {
        char id[65], out[4096];
        daemon_signal(SIGTERM);
        W.network_mode = "user";
        daemon_start();
        W.network_mode = NULL;
        /* the test's HTTP server on the namespace's loopback: slirp's 10.0.2.2 */
        pid_t httpd = host_httpd("127.0.0.1:18001", "www-user", "via-slirp");
        json_t *j = NULL;
        long st = create_net("uweb", "default", "[{\"host_ip\": \"127.0.0.1\", \"host_port\": 18085, \"container_port\": 80}]",
                             WEB_CMD, "running", id, &j);
        if (st != 200)
                fail_msg("uweb: %ld %s", st, j ? json_dumps(j, 0) : "");
        assert_string_equal(str(j, "ip_address"), "10.0.2.15");
        json_decref(j);
        expect_sh("curl -s --max-time 10 http://127.0.0.1:18085/", "web-ok");
        assert_int_equal(exec_sync("uweb", "[\"-c\", \"wget -qO- http://10.0.2.2:18001/hello\"]", out, sizeof out), 0);
        assert_string_equal(out, "via-slirp\n");
        /* a port a forward holds is taken for others too */
        char other[65];
        assert_int_equal(create_net("uother", "default", "[{\"host_port\": 18085, \"container_port\": 80}]",
                                    SLEEP_CMD, "running", other, &j),
                         409);
        expect_message(j, "18085/tcp");
        json_decref(j);
        daemon_signal(SIGKILL);
        W.network_mode = "user";
        daemon_start();
        W.network_mode = NULL;
        expect_sh("curl -s --max-time 10 http://127.0.0.1:18085/", "web-ok");
        destroy(id);
        assert_int_not_equal(run("curl -s --max-time 3 http://127.0.0.1:18085/ >/dev/null"), 0);
        kill(httpd, SIGTERM);
        waitpid(httpd, NULL, 0);
        daemon_signal(SIGTERM);
        daemon_start();
}

/* --- volumes and bind mounts --- */

/* A sleeping container with mounts (a JSON array) committed running: the
 * commit's status; its answer in *ret. */
static long create_mounted(const char *name, const char *mounts_json, char id[65], json_t **ret) {
        return create_with(name, "{\"path\": \"/bin/sleep\", \"args\": [\"100000\"]}", NULL, mounts_json, "running", id,
                           ret);
}

static bool message_has(json_t *j, const char *what) {
        return j && strstr(str(j, "message"), what);
}

/* The volume API, a volume and two bind mounts (one read-only) in one guest,
 * the host and the guest seeing each other's writes, the 409s (a used
 * volume, a second VM on it); then the volume's data read by the next
 * container after the first is gone and the daemon restarted. */
static void test_volumes_and_binds(void **state) {
        char id[65], id2[65], out[4096], share[128], ro[128], mounts[1024], file[256];
        json_t *j = NULL;
        snprintf(share, sizeof share, "%s/share", W.dir);
        snprintf(ro, sizeof ro, "%s/share-ro", W.dir);
        snprintf(out, sizeof out, "mkdir -p %s %s && echo from-host > %s/host.txt && echo keep > %s/keep.txt", share, ro,
                 share, ro);
        assert_int_equal(run(out), 0);

        assert_int_equal(call("POST", "/volumes", "{\"name\": \"vdata\", \"size\": \"64M\"}", &j), 201);
        assert_int_equal(json_integer_value(json_object_get(j, "size")), 64 << 20);
        json_decref(j);
        assert_int_equal(call("POST", "/volumes", "{\"name\": \"vdata\"}", NULL), 409);
        assert_int_equal(call("POST", "/volumes", "{\"name\": \"../x\"}", NULL), 400);
        assert_int_equal(call("POST", "/volumes", "{\"name\": \"x\", \"size\": \"1K\"}", NULL), 400);
        assert_int_equal(call("GET", "/volumes/nope", NULL, NULL), 404);
        /* a bind source that is not there is refused at once */
        assert_int_equal(call("POST", "/containers", "{\"name\": \"badmount\", \"image\": \"localhost/busybox:latest\"}", &j), 201);
        char path[256];
        snprintf(path, sizeof path, "/handles/%s/mounts", str(j, "handle"));
        json_decref(j);
        assert_int_equal(call("PUT", path, "[{\"source\": \"/nonexistent/dir\", \"target\": \"/x\"}]", &j), 400);
        assert_true(message_has(j, "/nonexistent/dir"));
        json_decref(j);
        assert_int_equal(call("PUT", path, "{\"volume\": \"a\", \"target\": \"/a\"}", &j), 400); /* not an array */
        assert_true(message_has(j, "array"));
        json_decref(j);
        assert_int_equal(call("PUT", path, "[{\"volume\": \"a\", \"target\": \"/a\"", NULL), 400);
        assert_int_equal(call("PUT", path, "[{\"volume\": \"a\", \"target\": \"/a\", \"target\": \"/b\"}]", NULL), 400);
        assert_int_equal(call("PUT", "/handles/nosuch/mounts", "[]", NULL), 404);

        snprintf(mounts, sizeof mounts,
                 "[{\"volume\": \"vdata\", \"target\": \"/data\"}, {\"volume\": \"vauto\", \"target\": \"/auto\"},"
                 " {\"source\": \"%s\", \"target\": \"/www\"}, {\"source\": \"%s\", \"target\": \"/ro\", \"read_only\": true}]",
                 share, ro);
        long st = create_mounted("vol1", mounts, id, &j);
        if (st != 200)
                fail_msg("start with mounts: %ld %s", st, j ? json_dumps(j, 0) : "");
        assert_int_equal(json_array_size(json_object_get(j, "mounts")), 4);
        json_decref(j);

        /* the volume: empty, root's 0755, writable */
        assert_int_equal(exec_sync("vol1", "[\"-c\", \"stat -c %a:%u:%g /data; ls /data\"]", out, sizeof out), 0);
        assert_string_equal(out, "755:0:0\nlost+found\n");
        assert_int_equal(exec_sync("vol1", "[\"-c\", \"echo persisted > /data/f && echo auto > /auto/g && sync\"]", NULL, 0), 0);
        /* the bind mount both ways */
        assert_int_equal(exec_sync("vol1", "[\"-c\", \"cat /www/host.txt\"]", out, sizeof out), 0);
        assert_string_equal(out, "from-host\n");
        assert_int_equal(exec_sync("vol1", "[\"-c\", \"echo from-guest > /www/guest.txt\"]", NULL, 0), 0);
        snprintf(file, sizeof file, "%s/guest.txt", share);
        char *got = test_read_file(file, NULL);
        assert_non_null(got);
        assert_string_equal(got, "from-guest\n");
        free(got);
        snprintf(out, sizeof out, "echo later > %s/later.txt", share);
        assert_int_equal(run(out), 0);
        assert_int_equal(exec_sync("vol1", "[\"-c\", \"cat /www/later.txt\"]", out, sizeof out), 0);
        assert_string_equal(out, "later\n");
        /* read-only is enforced */
        assert_int_equal(exec_sync("vol1", "[\"-c\", \"cat /ro/keep.txt\"]", out, sizeof out), 0);
        assert_string_equal(out, "keep\n");
        assert_true(exec_sync("vol1", "[\"-c\", \"echo no > /ro/new.txt\"]", NULL, 0) != 0);
        snprintf(file, sizeof file, "%s/new.txt", ro);
        assert_int_equal(access(file, F_OK), -1);

        /* the volume's disk is its running VM's uid's alone (docs/security.md) */
        json_t *c1 = inspect("vol1");
        unsigned uid1 = (unsigned) json_integer_value(json_object_get(c1, "uid"));
        json_decref(c1);
        char vdisk[512];
        snprintf(vdisk, sizeof vdisk, "%s/volumes/vdata/disk.img", W.dir);
        assert_true(uid1 >= 210000);
        assert_mode(vdisk, 0600, uid1, "a running container's volume");

        /* in use: no removal, no second VM */
        assert_int_equal(call("GET", "/volumes/vauto", NULL, &j), 200); /* created by the commit */
        assert_string_equal(str(json_array_get(json_object_get(j, "users"), 0), "name"), "vol1");
        json_decref(j);
        assert_int_equal(call("DELETE", "/volumes/vdata", NULL, &j), 409);
        assert_true(message_has(j, "vol1"));
        json_decref(j);
        st = create_mounted("vol2", "[{\"volume\": \"vdata\", \"target\": \"/d\"}]", id2, &j);
        assert_int_equal(st, 409);
        assert_true(message_has(j, "vol1"));
        json_decref(j);
        assert_int_equal(call("GET", "/containers/vol2", NULL, NULL), 404); /* a failed new container is gone */

        /* the data outlives its container and a daemon restart; the disk
         * goes back to root before the container's uid is free */
        destroy(id);
        assert_mode(vdisk, 0600, 0, "a volume of a destroyed container");
        daemon_signal(SIGTERM);
        daemon_start();
        assert_int_equal(call("GET", "/volumes/vdata", NULL, &j), 200);
        assert_int_equal(json_array_size(json_object_get(j, "users")), 0);
        json_decref(j);
        st = create_mounted("vol3", "[{\"volume\": \"vdata\", \"target\": \"/again\", \"read_only\": true}]", id2, &j);
        if (st != 200)
                fail_msg("second start on the volume: %ld %s", st, j ? json_dumps(j, 0) : "");
        json_decref(j);
        assert_int_equal(exec_sync("vol3", "[\"-c\", \"cat /again/f\"]", out, sizeof out), 0);
        assert_string_equal(out, "persisted\n");
        assert_true(exec_sync("vol3", "[\"-c\", \"echo x > /again/y\"]", NULL, 0) != 0);
        destroy(id2);
        assert_int_equal(call("DELETE", "/volumes/vdata", NULL, NULL), 204);
        assert_int_equal(call("DELETE", "/volumes/vauto", NULL, NULL), 204);
        assert_int_equal(call("GET", "/volumes", NULL, &j), 200);
        assert_int_equal(json_array_size(j), 0);
        json_decref(j);
}

int main(void) {
        if (!getenv("PL_KERNEL_DIR"))
                test_program_skip_or_fail("PL_KERNEL_DIR, a guest kernel (scripts/fetch-kernel.sh)");
        /* The lifecycle again with every start a cold boot (ctest's
         * test-portlayerd-cold); the full run below starts from the pool
         * whenever it has a guest ready. */
        const struct CMUnitTest cold[] = {
                cmocka_unit_test(test_full_life),
                cmocka_unit_test(test_commit_conflict),
                cmocka_unit_test(test_main_exits),
                cmocka_unit_test(test_logs_events_stats),
                cmocka_unit_test(test_exec_streams),
                cmocka_unit_test(test_pause_and_signal),
        };
        W.cold = getenv("PL_E2E_COLD_START") && strcmp(getenv("PL_E2E_COLD_START"), "1") == 0;
        if (W.cold) {
                if (getenv("PL_TEST_FILTER"))
                        cmocka_set_test_filter(getenv("PL_TEST_FILTER"));
                return test_run_group(cold, group_setup, group_teardown);
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bad_requests),
                cmocka_unit_test(test_start_paths),
                cmocka_unit_test(test_full_life),
                cmocka_unit_test(test_least_privilege),
                cmocka_unit_test(test_commit_conflict),
                cmocka_unit_test(test_main_exits),
                cmocka_unit_test(test_metrics),
                cmocka_unit_test(test_guest_panic),
                cmocka_unit_test(test_logs_events_stats),
                cmocka_unit_test(test_exec_streams),
                cmocka_unit_test(test_pause_and_signal),
                cmocka_unit_test(test_parallel_and_restart),
                cmocka_unit_test(test_kill_during_transitions),
                cmocka_unit_test(test_output_across_restart),
                cmocka_unit_test(test_networking),
                cmocka_unit_test(test_user_mode),
                cmocka_unit_test(test_volumes_and_binds),
        };
        /* PL_TEST_FILTER=test_networking runs the matching cases only */
        if (getenv("PL_TEST_FILTER"))
                cmocka_set_test_filter(getenv("PL_TEST_FILTER"));
        return test_run_group(tests, group_setup, group_teardown);
}
