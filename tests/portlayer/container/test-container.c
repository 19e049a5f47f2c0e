/* test-container.c: the container lifecycle (portlayer/container/container.h)
 * on the fake VM driver, with the real pl-agent standing in for each guest.
 *
 * The fake driver (vm_fake_set_agent) starts the host-mode agent for every
 * domain the host creates; the agent serves a directory instead of a disk,
 * so the image's root filesystem does not matter, but the store still holds
 * a real image (a one-layer OCI layout built here with tar and sha256sum) and
 * each container gets a real qcow2 disk from qemu-img. Covered: handles and
 * Commit through every state the API allows and the ones it refuses, the
 * conflicts (stale generation, removed container, taken name, used handle),
 * failed starts leaving nothing or the old state, the main process ending
 * (exit code, signal death), the VM dying under a container, exec, signals,
 * wait, archives, labels, bad configurations, and recovery after the host is
 * freed: reattach, rollback of a start, orphan directories, records and
 * domains. Each case checks that no process of it is left behind. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/json/json-util.h"
#include "images/store/oci-layout.h"
#include "portlayer/container/container.h"
#include "portlayer/volume/volume.h"

#define IMAGE "test/img"
#define WAIT_MS 20000

typedef struct Event {
        char name[VM_NAME_MAX + 1];
        VmState state;
        const char *reason;
} Event;

typedef struct T {
        char dir[256];
        char state[300], store_dir[300];
        Store *store;
        VmDriver *d;
        VolumeStore *vs;
        ContainerHost *h;
        NetworkHost *net;       /* test_network_leases only */
        char image_hex[65];
        pthread_mutex_t ev_lock; /* the events and the host they are forwarded to */
        Event events[512];
        size_t n_events;
} T;

static char layout_root[256]; /* the group's OCI layout */

/* ---- errors ---- */

static Error *last_err; /* of the last call given E (the cases run on one thread) */
#define E (&last_err)
#define OK(call) check_ok((call), #call, __LINE__)
#define FAILS(code, call) check_fails((call), (code), #call, __LINE__)

static int check_ok(int r, const char *what, int line) {
        if (r < 0)
                fail_msg("line %d: %s: %d %s", line, what, r, error_text(last_err));
        last_err = error_free(last_err);
        return r;
}

static void check_fails(int r, int code, const char *what, int line) {
        if (r != -code)
                fail_msg("line %d: %s: got %d (%s), want -%d", line, what, r, error_text(last_err), code);
        if (!last_err)
                fail_msg("line %d: %s: no error message", line, what);
        last_err = error_free(last_err);
}

/* ---- the image ---- */

/* A one-layer OCI layout: Entrypoint ["/bin/sh", "-c"], Cmd ["exec sleep
 * 1000"], a label. Built once for the group. */
static const char layout_script[] =
        "set -eu\n"
        "d=$1; mkdir -p \"$d/rootfs/etc\" \"$d/layout/blobs/sha256\"; echo hello > \"$d/rootfs/etc/hello\"\n"
        "put() { h=$(sha256sum \"$1\" | cut -d' ' -f1); s=$(stat -c %s \"$1\"); mv \"$1\" \"$d/layout/blobs/sha256/$h\"; }\n"
        "tar -C \"$d/rootfs\" -cf \"$d/layer\" . && put \"$d/layer\"; lh=$h; ls=$s\n"
        "printf '{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Entrypoint\":[\"/bin/sh\",\"-c\"],"
        "\"Cmd\":[\"exec sleep 1000\"],\"Env\":[\"PATH=/usr/bin:/bin\"],\"Labels\":{\"from\":\"image\"}},"
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:%s\"]}}' $lh > \"$d/config\" && put \"$d/config\"\n"
        "printf '{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:%s\",\"size\":%s},"
        "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:%s\",\"size\":%s}]}'"
        " $h $s $lh $ls > \"$d/manifest\" && put \"$d/manifest\"\n"
        "printf '{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"digest\":\"sha256:%s\",\"size\":%s,\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}]}'"
        " $h $s > \"$d/layout/index.json\"\n"
        "echo '{\"imageLayoutVersion\":\"1.0.0\"}' > \"$d/layout/oci-layout\"\n";

static void store_fill(T *t) {
        _cleanup_free_ char *layout = test_pathf("%s/layout", layout_root);
        ImageSource *src = NULL;
        _cleanup_store_image_ StoreImage *img = NULL;
        OK(store_open(t->store_dir, &t->store, E));
        OK(oci_layout_source_new(layout, "latest", &src, E));
        int r = store_pull(t->store, src, IMAGE, NULL, &img, E);
        image_source_free(src);
        OK(r);
        snprintf(t->image_hex, sizeof t->image_hex, "%s", img->id + strlen("sha256:"));
}

/* Container disks the store has registered for the image. */
static size_t disk_users(T *t) {
        _cleanup_free_ char *users = test_pathf("%s/images/%s/users", t->store_dir, t->image_hex);
        return test_exists(users) ? test_count_entries(users) : 0;
}

/* ---- the driver, its events, the host ---- */

static void on_vm_event(const VmEvent *ev, void *userdata) {
        T *t = userdata;
        pthread_mutex_lock(&t->ev_lock);
        if (t->n_events < ELEMENTSOF(t->events)) {
                Event *e = &t->events[t->n_events++];
                snprintf(e->name, sizeof e->name, "%s", ev->name);
                e->state = ev->state;
                e->reason = ev->reason;
        }
        if (t->h)
                container_host_vm_event(t->h, ev);
        pthread_mutex_unlock(&t->ev_lock);
}

static bool saw_event(T *t, const char *domain, VmState state, const char *reason) {
        vm_fake_flush(t->d);
        bool found = false;
        pthread_mutex_lock(&t->ev_lock);
        for (size_t i = 0; i < t->n_events && !found; i++)
                found = strcmp(t->events[i].name, domain) == 0 && t->events[i].state == state &&
                        strcmp(t->events[i].reason, reason) == 0;
        pthread_mutex_unlock(&t->ev_lock);
        return found;
}

/* Opens the host, with main.log rotated past log_max_size bytes (0: the
 * default) keeping log_max_files rotated files. */
static void host_open_logs(T *t, uint64_t log_max_size, unsigned log_max_files) {
        ContainerHostConfig cfg = {.state_dir = t->state, .driver = t->d, .store = t->store, .volumes = t->vs,
                                   .kernel = "/nonexistent/vmlinuz", .initrd = "/nonexistent/initrd.img",
                                   .accel = VM_ACCEL_TCG, .boot_timeout_ms = 5000,
                                   .log_max_size = log_max_size, .log_max_files = log_max_files,
                                   .network = t->net};
        ContainerHost *h = NULL;
        OK(container_host_open(&cfg, &h, E));
        pthread_mutex_lock(&t->ev_lock);
        t->h = h;
        pthread_mutex_unlock(&t->ev_lock);
}

static void host_open(T *t) {
        host_open_logs(t, 0, 0);
}

/* Frees the host as a daemon that stops does: running VMs keep running. */
static void host_close(T *t) {
        pthread_mutex_lock(&t->ev_lock);
        ContainerHost *h = TAKE_PTR(t->h);
        pthread_mutex_unlock(&t->ev_lock);
        container_host_free(h);
}

/* Live processes whose command line or working directory is under dir. */
static size_t processes_under(const char *dir) {
        size_t n = 0;
        DIR *d = opendir("/proc");
        assert_non_null(d);
        for (struct dirent *de; (de = readdir(d));) {
                int pid = atoi(de->d_name);
                if (pid <= 0 || pid == getpid())
                        continue;
                char path[64], cwd[512] = "";
                snprintf(path, sizeof path, "/proc/%d/stat", pid);
                _cleanup_free_ char *st = test_read_file(path, NULL);
                if (!st || strstr(st, ") Z ") || strstr(st, ") X "))
                        continue;
                snprintf(path, sizeof path, "/proc/%d/cwd", pid);
                ssize_t k = readlink(path, cwd, sizeof cwd - 1);
                cwd[k > 0 ? k : 0] = 0;
                snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
                size_t len = 0;
                _cleanup_free_ char *cmd = test_read_file(path, &len);
                for (size_t i = 0; cmd && i < len; i++)
                        cmd[i] = cmd[i] ? cmd[i] : ' ';
                if (strncmp(cwd, dir, strlen(dir)) == 0 || (cmd && strstr(cmd, dir)))
                        n++;
        }
        closedir(d);
        return n;
}

static int setup(void **state) {
        T *t = calloc(1, sizeof *t);
        assert_non_null(t);
        pthread_mutex_init(&t->ev_lock, NULL);
        assert_int_equal(test_tmpdir_make(t->dir, sizeof t->dir, "test-container"), 0);
        snprintf(t->state, sizeof t->state, "%s/state", t->dir);
        snprintf(t->store_dir, sizeof t->store_dir, "%s/store", t->dir);
        store_fill(t);
        OK(vm_driver_open(&vm_driver_fake, &t->d, NULL, NULL, on_vm_event, t, E));
        assert_int_equal(vm_fake_set_agent(t->d, getenv("PL_AGENT_BIN")), 0);
        OK(volume_store_open(t->state, &t->vs, E));
        host_open(t);
        *state = t;
        return 0;
}

static int teardown(void **state) {
        T *t = *state;
        host_close(t);
        t->net = network_host_free(t->net);
        vm_driver_close(t->d); /* kills the agents that remain */
        store_free(t->store);
        volume_store_free(t->vs);
        last_err = error_free(last_err);
        size_t left = processes_under(t->dir);
        if (left)
                fprintf(stderr, "%zu processes left under %s\n", left, t->dir);
        assert_int_equal(test_tmpdir_remove(t->dir), 0);
        pthread_mutex_destroy(&t->ev_lock);
        free(t);
        assert_int_equal(left, 0);
        return 0;
}

/* ---- containers ---- */

static void handle_set_cmd(T *t, const char *hd, const char *script) {
        json_t *f = json_pack("{s:s, s:[ss]}", "path", "/bin/sh", "args", "-c", script);
        OK(container_handle_update(t->h, hd, f, E));
        json_decref(f);
}

/* A new container running `sh -c script` (NULL: the image's command),
 * committed to target (-1: created). Returns its id. */
static char *run(T *t, const char *name, const char *script, int target) {
        char *id = NULL;
        _cleanup_free_ char *hd = NULL;
        OK(container_host_create(t->h, name, IMAGE, &id, &hd, E));
        if (script)
                handle_set_cmd(t, hd, script);
        if (target >= 0)
                OK(container_handle_set_state(t->h, hd, target, E));
        OK(container_host_commit(t->h, hd, NULL, E));
        return id;
}

static char *handle_of(T *t, const char *ref) {
        char *hd = NULL;
        OK(container_host_get_handle(t->h, ref, &hd, E));
        return hd;
}

/* Takes a handle on ref and commits it with target: commit's result (its
 * error in last_err). */
static int commit_to(T *t, const char *ref, int target) {
        _cleanup_free_ char *hd = handle_of(t, ref);
        OK(container_handle_set_state(t->h, hd, target, E));
        return container_host_commit(t->h, hd, NULL, E);
}

static json_t *inspect(T *t, const char *ref) {
        json_t *j = NULL;
        OK(container_host_inspect(t->h, ref, &j, E));
        return j;
}

static json_int_t int_of(T *t, const char *ref, const char *key) {
        json_t *j = inspect(t, ref);
        json_int_t v = json_integer_value(json_object_get(j, key));
        json_decref(j);
        return v;
}

static char *str_of(T *t, const char *ref, const char *key) {
        json_t *j = inspect(t, ref);
        const char *s = json_string_value(json_object_get(j, key));
        char *v = s ? strdup(s) : NULL;
        json_decref(j);
        return v;
}

static int state_of(T *t, const char *ref) {
        _cleanup_free_ char *s = str_of(t, ref, "state");
        return container_state_from_string(s);
}

static bool exists(T *t, const char *ref) {
        json_t *j = NULL;
        int r = container_host_inspect(t->h, ref, &j, E);
        json_decref(j);
        last_err = error_free(last_err);
        return r >= 0;
}

static VmState vm_state_of(T *t, const char *ref) {
        _cleanup_free_ char *dom = str_of(t, ref, "domain");
        VmState st = VM_STATE_UNKNOWN;
        OK(vm_driver_state(t->d, dom, &st, E));
        return st;
}

static int wait_exit(T *t, const char *ref) {
        int code = -2;
        OK(container_host_wait(t->h, ref, WAIT_MS, &code, E));
        return code;
}

/* The state letter of a host process (R, S, T...), 0 when it is gone. */
static char proc_state(int pid) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        _cleanup_free_ char *st = test_read_file(path, NULL);
        const char *rp = st ? strrchr(st, ')') : NULL;
        return rp && rp[1] && rp[2] != 'Z' ? rp[2] : 0;
}

static bool proc_stopped(int pid) {
        char st = proc_state(pid);
        return st == 'T' || st == 't';
}

static bool proc_running(int pid) {
        return proc_state(pid) && !proc_stopped(pid);
}

static bool proc_gone(int pid) {
        for (int i = 0; i < 500; i++) {
                if (!proc_state(pid))
                        return true;
                usleep(10 * 1000);
        }
        return false;
}

/* Container directories, plus run directories (socket, console, the fake's
 * root) when run is set. */
static size_t containers_on_disk(T *t, bool run) {
        _cleanup_free_ char *dir = test_pathf("%s/containers", t->state), *rdir = test_pathf("%s/run", t->state);
        return test_count_entries(dir) + (run ? test_count_entries(rdir) : 0);
}

static int exec_sh(T *t, const char *ref, const char *script, int timeout_s, size_t max, ContainerExecResult *res) {
        const char *argv[] = {"/bin/sh", "-c", script, NULL}, *env[] = {"PATH=/usr/bin:/bin", NULL};
        return container_host_exec_sync(t->h, ref, argv, env, NULL, NULL, timeout_s, max, res, E);
}

/* The output of script run in ref (it must exit 0). */
static char *exec_out(T *t, const char *ref, const char *script) {
        ContainerExecResult res;
        OK(exec_sh(t, ref, script, 10, 65536, &res));
        assert_int_equal(res.exit_code, 0);
        char *out = TAKE_PTR(res.out);
        container_exec_result_clear(&res);
        return out;
}

/* ---- handles and Commit ---- */

static void test_create_and_commit(void **state) {
        T *t = *state;
        _cleanup_free_ char *id = NULL, *hd = NULL;
        OK(container_host_create(t->h, "web", IMAGE, &id, &hd, E));
        assert_int_equal(strlen(id), CONTAINER_ID_HEX);
        /* Nothing exists before the commit. */
        assert_false(exists(t, id));
        assert_int_equal(containers_on_disk(t, true), 0);
        assert_int_equal(disk_users(t), 0);
        json_t *j = NULL;
        OK(container_handle_inspect(t->h, hd, &j, E));
        json_t *cfg = json_object_get(j, "config");
        assert_string_equal(json_string_value(json_object_get(cfg, "path")), "/bin/sh");
        assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "args"), 1)), "exec sleep 1000");
        assert_int_equal(json_integer_value(json_object_get(cfg, "memory_mb")), CONTAINER_MEMORY_MB_DEFAULT);
        assert_string_equal(json_string_value(json_object_get(json_object_get(cfg, "labels"), "from")), "image");
        json_decref(j);

        OK(container_host_commit(t->h, hd, &j, E));
        assert_string_equal(json_string_value(json_object_get(j, "state")), "created");
        assert_string_equal(json_string_value(json_object_get(j, "name")), "web");
        assert_int_equal(json_integer_value(json_object_get(j, "generation")), 1);
        assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), -1);
        json_decref(j);
        assert_int_equal(containers_on_disk(t, true), 1);
        assert_int_equal(disk_users(t), 1);
        _cleanup_free_ char *record = test_pathf("%s/containers/%s/container.json", t->state, id);
        assert_true(test_exists(record));
        /* By name and by a 12-digit prefix too. */
        assert_int_equal(state_of(t, "web"), CONTAINER_CREATED);
        char prefix[13];
        snprintf(prefix, sizeof prefix, "%s", id);
        assert_int_equal(state_of(t, prefix), CONTAINER_CREATED);
        /* A handle is used once. */
        FAILS(ENOENT, container_host_commit(t->h, hd, NULL, E));
        OK(container_host_destroy(t->h, id, false, E));
        assert_int_equal(disk_users(t), 0);
        assert_int_equal(containers_on_disk(t, true), 0);
}

static void assert_after_refusal(T *t, const char *id, int st, json_int_t gen) {
        assert_int_equal(state_of(t, id), st);
        assert_int_equal(int_of(t, id, "generation"), gen);
        _cleanup_free_ char *error = str_of(t, id, "error");
        assert_non_null(error);
}

static void test_transitions(void **state) {
        T *t = *state;
        _cleanup_free_ char *id = run(t, "web", NULL, -1);
        /* created -> stopped: nothing to stop; a created one cannot pause. */
        OK(commit_to(t, id, CONTAINER_STOPPED));
        assert_int_equal(state_of(t, id), CONTAINER_CREATED);
        assert_int_equal(int_of(t, id, "generation"), 2);
        FAILS(EBADFD, commit_to(t, id, CONTAINER_PAUSED));
        assert_after_refusal(t, id, CONTAINER_CREATED, 2);

        OK(commit_to(t, id, CONTAINER_RUNNING));
        assert_int_equal(state_of(t, id), CONTAINER_RUNNING);
        assert_int_equal(int_of(t, id, "generation"), 3);
        assert_null(str_of(t, id, "error"));
        int pid = (int) int_of(t, id, "pid");
        assert_true(pid > 0);
        assert_int_equal(vm_state_of(t, id), VM_STATE_RUNNING);
        assert_true(proc_running(pid));

        OK(commit_to(t, id, CONTAINER_PAUSED));
        assert_int_equal(state_of(t, id), CONTAINER_PAUSED);
        assert_int_equal(vm_state_of(t, id), VM_STATE_PAUSED);
        assert_true(proc_stopped(pid));
        ContainerExecResult res;
        FAILS(EBADFD, exec_sh(t, id, "true", 5, 100, &res));
        FAILS(EBUSY, container_host_destroy(t->h, id, false, E));

        OK(commit_to(t, id, CONTAINER_RUNNING));
        assert_int_equal(state_of(t, id), CONTAINER_RUNNING);
        assert_true(proc_running(pid));
        OK(commit_to(t, id, CONTAINER_RUNNING)); /* already there: only the generation moves */
        assert_int_equal(int_of(t, id, "generation"), 6);
        assert_int_equal(int_of(t, id, "pid"), pid);

        OK(commit_to(t, id, CONTAINER_STOPPED));
        assert_int_equal(state_of(t, id), CONTAINER_STOPPED);
        assert_int_equal(int_of(t, id, "exit_code"), 128 + SIGTERM);
        assert_int_equal(int_of(t, id, "pid"), 0);
        assert_int_equal(vm_state_of(t, id), VM_STATE_MISSING);
        assert_true(proc_gone(pid));
        FAILS(EBADFD, commit_to(t, id, CONTAINER_PAUSED));
        assert_after_refusal(t, id, CONTAINER_STOPPED, 7);

        /* Again: a restart clears the exit and the error; paused -> stopped. */
        OK(commit_to(t, id, CONTAINER_RUNNING));
        assert_int_equal(int_of(t, id, "exit_code"), -1);
        assert_null(str_of(t, id, "error"));
        OK(commit_to(t, id, CONTAINER_PAUSED));
        OK(commit_to(t, id, CONTAINER_STOPPED));
        assert_int_equal(state_of(t, id), CONTAINER_STOPPED);
        assert_int_equal(int_of(t, id, "exit_code"), 128 + SIGTERM);

        OK(container_host_destroy(t->h, id, false, E));
        assert_false(exists(t, id));
        FAILS(ENOENT, container_host_destroy(t->h, id, false, E));
        assert_int_equal(containers_on_disk(t, true), 0);
        assert_int_equal(disk_users(t), 0);
}

static void test_remove_running(void **state) {
        T *t = *state;
        _cleanup_free_ char *id = run(t, "web", NULL, CONTAINER_RUNNING);
        _cleanup_free_ char *dom = str_of(t, id, "domain");
        int pid = (int) int_of(t, id, "pid");
        FAILS(EBUSY, container_host_destroy(t->h, id, false, E));
        assert_int_equal(state_of(t, id), CONTAINER_RUNNING);
        _cleanup_free_ char *out = exec_out(t, id, "echo still");
        assert_string_equal(out, "still\n");

        OK(container_host_destroy(t->h, id, true, E));
        assert_false(exists(t, id));
        assert_true(proc_gone(pid));
        VmState st;
        OK(vm_driver_state(t->d, dom, &st, E));
        assert_int_equal(st, VM_STATE_MISSING);
        assert_int_equal(containers_on_disk(t, true), 0);
        assert_int_equal(disk_users(t), 0);
}

static void test_conflicts(void **state) {
        T *t = *state;
        _cleanup_free_ char *id = run(t, "web", NULL, -1), *h1 = handle_of(t, id), *h2 = handle_of(t, "web");
        /* Two handles: the first commit wins, the second is stale. */
        OK(container_handle_set_state(t->h, h1, CONTAINER_RUNNING, E));
        OK(container_host_commit(t->h, h1, NULL, E));
        FAILS(ESTALE, container_host_commit(t->h, h2, NULL, E));
        assert_int_equal(state_of(t, id), CONTAINER_RUNNING);
        assert_int_equal(int_of(t, id, "generation"), 2);
        /* ... and is used up all the same. */
        FAILS(ENOENT, container_host_commit(t->h, h2, NULL, E));
        FAILS(ENOENT, container_handle_set_state(t->h, h2, CONTAINER_STOPPED, E));

        /* A handle on a container removed meanwhile. */
        _cleanup_free_ char *h3 = handle_of(t, id);
        OK(container_host_destroy(t->h, id, true, E));
        FAILS(ESTALE, container_host_commit(t->h, h3, NULL, E));
        char *none = NULL;
        FAILS(ENOENT, container_host_get_handle(t->h, id, &none, E));

        /* Names: taken by a handle, then by a container. */
        _cleanup_free_ char *id2 = NULL, *h4 = NULL, *x = NULL, *hx = NULL;
        OK(container_host_create(t->h, "db", IMAGE, &id2, &h4, E));
        FAILS(EEXIST, container_host_create(t->h, "db", IMAGE, &x, &hx, E));
        OK(container_host_commit(t->h, h4, NULL, E));
        FAILS(EEXIST, container_host_create(t->h, "db", IMAGE, &x, &hx, E));
        assert_null(x);
        assert_null(hx);
        OK(container_host_destroy(t->h, "db", false, E)); /* a removed container's name is free */
        free(run(t, "db", NULL, -1));
        FAILS(EINVAL, container_host_create(t->h, "-bad", IMAGE, &x, &hx, E));
        FAILS(EINVAL, container_host_create(t->h, "a/b", IMAGE, &x, &hx, E));
        FAILS(ENOENT, container_host_create(t->h, "other", "no/such:image", &x, &hx, E));
        /* A generated name. */
        OK(container_host_create(t->h, NULL, IMAGE, &x, &hx, E));
        json_t *j = NULL;
        OK(container_host_commit(t->h, hx, &j, E));
        assert_int_equal(strncmp(json_string_value(json_object_get(j, "name")), "pl-", 3), 0);
        json_decref(j);

        /* Unknown handles and containers. */
        json_t *f = json_pack("{s:i}", "vcpus", 2);
        FAILS(ENOENT, container_handle_update(t->h, "nohandle", f, E));
        json_decref(f);
        FAILS(ENOENT, container_handle_inspect(t->h, "nohandle", &j, E));
        FAILS(ENOENT, container_host_inspect(t->h, "nosuch", &j, E));
        FAILS(EINVAL, container_handle_set_state(t->h, h4, CONTAINER_CREATED, E));
}

/* A tar of data/hello.txt ("hello\n") and data/sub/x ("x\n"), opened. */
static int make_tar(T *t) {
        _cleanup_free_ char *src = test_pathf("%s/tar-src", t->dir), *tar = test_pathf("%s/in.tar", t->dir);
        (void) mkdir(src, 0755);
        test_put(src, "data/hello.txt", "hello\n");
        test_put(src, "data/sub/x", "x\n");
        assert_int_equal(test_sh("tar -C '%s' -cf '%s' data", src, tar), 0);
        int fd = open(tar, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        return fd;
}

/* ---- failed starts ---- */

static void assert_no_container(T *t, const char *id) {
        assert_false(exists(t, id));
        assert_int_equal(containers_on_disk(t, true), 0);
        assert_int_equal(disk_users(t), 0);
        json_t *list = NULL;
        OK(container_host_list(t->h, -1, NULL, 0, &list, E));
        assert_int_equal(json_array_size(list), 0);
        json_decref(list);
        char **names = NULL;
        size_t n = 0;
        OK(vm_driver_list_ours(t->d, &names, &n, E));
        vm_names_free(names, n);
        assert_int_equal(n, 0);
}

/* Creates "web" with target running after arranging a failure; the commit
 * must fail with -code and leave nothing. */
static void fail_new(T *t, int code) {
        _cleanup_free_ char *id = NULL, *hd = NULL;
        OK(container_host_create(t->h, "web", IMAGE, &id, &hd, E));
        OK(container_handle_set_state(t->h, hd, CONTAINER_RUNNING, E));
        FAILS(code, container_host_commit(t->h, hd, NULL, E));
        assert_no_container(t, id);
}

static void test_failed_start_new(void **state) {
        T *t = *state;
        vm_fake_fail_next(t->d, VM_FAKE_OP_CREATE, EIO);
        fail_new(t, EIO);
        vm_fake_fail_next(t->d, VM_FAKE_OP_START, ENOSPC);
        fail_new(t, ENOSPC);
        /* The main process cannot start. */
        json_t *f = json_pack("{s:s}", "path", "/nonexistent/program");
        _cleanup_free_ char *id = NULL, *hd = NULL;
        OK(container_host_create(t->h, "web", IMAGE, &id, &hd, E));
        OK(container_handle_update(t->h, hd, f, E));
        json_decref(f);
        OK(container_handle_set_state(t->h, hd, CONTAINER_RUNNING, E));
        assert_true(container_host_commit(t->h, hd, NULL, E) < 0);
        last_err = error_free(last_err);
        assert_no_container(t, id);
        /* The guest dies while booting: its agent exits at once. */
        assert_int_equal(vm_fake_set_agent(t->d, "/bin/false"), 0);
        fail_new(t, ECHILD);
        assert_int_equal(vm_fake_set_agent(t->d, getenv("PL_AGENT_BIN")), 0);
        /* Then it works. */
        _cleanup_free_ char *ok = run(t, "web", NULL, CONTAINER_RUNNING);
        assert_int_equal(state_of(t, ok), CONTAINER_RUNNING);
}

static void test_failed_start_existing(void **state) {
        T *t = *state;
        _cleanup_free_ char *id = run(t, "web", "exit 5", CONTAINER_RUNNING);
        assert_int_equal(wait_exit(t, id), 5);
        json_t *before = inspect(t, id);
        assert_string_equal(json_string_value(json_object_get(before, "state")), "stopped");

        _cleanup_free_ char *hd = handle_of(t, id);
        json_t *f = json_pack("{s:i, s:{s:s}}", "memory_mb", 512, "labels", "new", "yes");
        OK(container_handle_update(t->h, hd, f, E));
        json_decref(f);
        OK(container_handle_set_state(t->h, hd, CONTAINER_RUNNING, E));
        int fd = make_tar(t);
        OK(container_handle_add_archive(t->h, hd, "/", fd, 1 << 20, E));
        close(fd);
        vm_fake_fail_next(t->d, VM_FAKE_OP_START, EIO);
        FAILS(EIO, container_host_commit(t->h, hd, NULL, E));

        json_t *after = inspect(t, id);
        assert_string_equal(json_string_value(json_object_get(after, "state")), "stopped");
        assert_true(json_equal(json_object_get(after, "generation"), json_object_get(before, "generation")));
        assert_true(json_equal(json_object_get(after, "config"), json_object_get(before, "config")));
        assert_int_equal(json_integer_value(json_object_get(after, "exit_code")), 5);
        assert_non_null(strstr(json_string_value(json_object_get(after, "error")), "injected failure"));
        json_decref(before);
        json_decref(after);
        assert_int_equal(containers_on_disk(t, false), 1);
        assert_int_equal(disk_users(t), 1);
        /* Its archive was part of the change: the next start does without it. */
        OK(commit_to(t, id, CONTAINER_RUNNING));
        assert_int_equal(wait_exit(t, id), 5);
        _cleanup_free_ char *data = test_pathf("%s/run/%.16s/root/data", t->state, id);
        assert_false(test_exists(data));

        /* A created container keeps its state too, and the next start works. */
        _cleanup_free_ char *id2 = run(t, "db", NULL, -1);
        vm_fake_fail_next(t->d, VM_FAKE_OP_CREATE, EIO);
        FAILS(EIO, commit_to(t, id2, CONTAINER_RUNNING));
        assert_after_refusal(t, id2, CONTAINER_CREATED, 1);
        OK(commit_to(t, id2, CONTAINER_RUNNING));
        assert_null(str_of(t, id2, "error"));
        assert_int_equal(int_of(t, id2, "generation"), 2);
}

/* ---- the end of a container ---- */

static void test_main_exits(void **state) {
        T *t = *state;
        _cleanup_free_ char *id = run(t, "web", "echo hello from main; exit 3", CONTAINER_RUNNING);
        _cleanup_free_ char *dom = str_of(t, id, "domain");
        assert_int_equal(wait_exit(t, id), 3);
        assert_int_equal(state_of(t, id), CONTAINER_STOPPED);
        assert_null(str_of(t, id, "error"));
        _cleanup_free_ char *finished = str_of(t, id, "finished_at");
        assert_true(strlen(finished) > 0);
        /* The guest powered off by itself, then the host undefined it. */
        assert_true(saw_event(t, dom, VM_STATE_SHUTOFF, "shutdown"));
        assert_int_equal(vm_state_of(t, id), VM_STATE_MISSING);
        _cleanup_free_ char *log_path = test_pathf("%s/containers/%s/main.log", t->state, id);
        size_t len = 0;
        _cleanup_free_ char *log = test_read_file(log_path, &len);
        assert_non_null(log);
        assert_non_null(memmem(log, len, "hello from main\n", 16));

        /* A death by signal is 128 + the signal. */
        _cleanup_free_ char *id2 = run(t, "killed", "kill -KILL $$", CONTAINER_RUNNING);
        assert_int_equal(wait_exit(t, id2), 128 + SIGKILL);
        assert_null(str_of(t, id2, "error"));
        /* Restartable, with the new run's exit. */
        _cleanup_free_ char *hd = handle_of(t, id);
        handle_set_cmd(t, hd, "exit 4");
        OK(container_handle_set_state(t->h, hd, CONTAINER_RUNNING, E));
        OK(container_host_commit(t->h, hd, NULL, E));
        assert_int_equal(wait_exit(t, id), 4);
}

/* The VM ends under a running container: stopped, 255, and why. */
static void assert_vm_died(T *t, const char *id, const char *vm_said) {
        assert_int_equal(wait_exit(t, id), 255);
        assert_int_equal(state_of(t, id), CONTAINER_STOPPED);
        _cleanup_free_ char *error = str_of(t, id, "error");
        assert_non_null(error);
        assert_non_null(strstr(error, vm_said));
        assert_int_equal(vm_state_of(t, id), VM_STATE_MISSING);
}

static void test_vm_dies(void **state) {
        T *t = *state;
        _cleanup_free_ char *id = run(t, "web", NULL, CONTAINER_RUNNING);
        _cleanup_free_ char *dom = str_of(t, id, "domain");
        int pid = (int) int_of(t, id, "pid");
        assert_int_equal(vm_fake_set_state(t->d, dom, VM_STATE_CRASHED, "crashed"), 0);
        assert_vm_died(t, id, "VM crashed");
        assert_true(proc_gone(pid));

        /* QEMU killed: the agent dies of a signal. */
        OK(commit_to(t, id, CONTAINER_RUNNING));
        pid = (int) int_of(t, id, "pid");
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        _cleanup_free_ char *st = test_read_file(path, NULL);
        int agent = 0;
        assert_int_equal(sscanf(strrchr(st, ')') + 2, "%*c %d", &agent), 1);
        assert_int_equal(kill(agent, SIGKILL), 0);
        /* Its processes are orphans now, as in no real guest: end them once
         * it is dead (so it reports no exit). */
        assert_true(proc_gone(agent));
        (void) kill(pid, SIGKILL);
        assert_vm_died(t, id, "VM crashed");

        /* A crash while paused. */
        OK(commit_to(t, id, CONTAINER_RUNNING));
        OK(commit_to(t, id, CONTAINER_PAUSED));
        assert_int_equal(vm_fake_set_state(t->d, dom, VM_STATE_SHUTOFF, "shutdown"), 0);
        assert_vm_died(t, id, "VM shutoff");
}

/* ---- processes and files ---- */

static void test_exec(void **state) {
        T *t = *state;
        _cleanup_free_ char *id = run(t, "web", NULL, CONTAINER_RUNNING);
        ContainerExecResult res;
        OK(exec_sh(t, id, "echo out; echo err >&2; exit 4", 10, 1024, &res));
        assert_int_equal(res.exit_code, 4);
        assert_string_equal(res.out, "out\n");
        assert_string_equal(res.err, "err\n");
        assert_false(res.truncated);
        container_exec_result_clear(&res);

        OK(exec_sh(t, id, "printf 0123456789abcdef", 10, 10, &res));
        assert_true(res.truncated);
        assert_int_equal(res.out_len, 10);
        assert_string_equal(res.out, "0123456789");
        container_exec_result_clear(&res);

        uint64_t t0 = now_usec();
        FAILS(ETIMEDOUT, exec_sh(t, id, "echo $$ > pid; exec sleep 30", 1, 1024, &res));
        assert_true(now_usec() - t0 < 10 * USEC_PER_SEC);
        _cleanup_free_ char *pid = exec_out(t, id, "cat pid");
        assert_true(proc_gone(atoi(pid))); /* killed */

        FAILS(ENOENT, exec_sh(t, "nosuch", "true", 5, 100, &res));
        OK(commit_to(t, id, CONTAINER_STOPPED));
        FAILS(EBADFD, exec_sh(t, id, "true", 5, 100, &res));
}

static void test_signal_and_wait(void **state) {
        T *t = *state;
        _cleanup_free_ char *id = run(t, "web", "trap 'exit 42' USR1; while :; do sleep 0.05; done", CONTAINER_RUNNING);
        int code = 0;
        FAILS(ETIMEDOUT, container_host_wait(t->h, id, 100, &code, E));
        FAILS(EINVAL, container_host_signal(t->h, id, 0, false, E));
        FAILS(EINVAL, container_host_signal(t->h, id, 65, false, E));
        OK(container_host_signal(t->h, id, SIGUSR1, false, E));
        assert_int_equal(wait_exit(t, id), 42);
        /* A stopped container takes no signal and waits return at once. */
        FAILS(EBADFD, container_host_signal(t->h, id, SIGTERM, false, E));
        OK(container_host_wait(t->h, id, 0, &code, E));
        assert_int_equal(code, 42);
        FAILS(ENOENT, container_host_wait(t->h, "nosuch", 0, &code, E));

        /* all: every process, the execs too. */
        OK(commit_to(t, id, CONTAINER_RUNNING));
        OK(container_host_signal(t->h, id, SIGKILL, true, E));
        assert_int_equal(wait_exit(t, id), 128 + SIGKILL);

        /* A main process that ignores the stop signal is killed after
         * stop_timeout_s. */
        _cleanup_free_ char *hd = handle_of(t, id);
        handle_set_cmd(t, hd, "trap '' TERM; while :; do sleep 0.05; done");
        json_t *f = json_pack("{s:i}", "stop_timeout_s", 1);
        OK(container_handle_update(t->h, hd, f, E));
        json_decref(f);
        OK(container_handle_set_state(t->h, hd, CONTAINER_RUNNING, E));
        OK(container_host_commit(t->h, hd, NULL, E));
        uint64_t t0 = now_usec();
        OK(commit_to(t, id, CONTAINER_STOPPED));
        assert_true(now_usec() - t0 >= USEC_PER_SEC);
        assert_int_equal(int_of(t, id, "exit_code"), 128 + SIGKILL);

        assert_int_equal(container_signal_from_string("TERM"), SIGTERM);
        assert_int_equal(container_signal_from_string("sigkill"), SIGKILL);
        assert_int_equal(container_signal_from_string("10"), 10);
        assert_int_equal(container_signal_from_string("BOGUS"), -EINVAL);
        assert_int_equal(container_signal_from_string("65"), -EINVAL);
}

static void test_archives(void **state) {
        T *t = *state;
        _cleanup_free_ char *id = run(t, "web", NULL, CONTAINER_RUNNING);
        int fd = make_tar(t);
        OK(container_host_archive_in(t->h, id, "/", fd, E));
        close(fd);
        _cleanup_free_ char *out = exec_out(t, id, "cat data/hello.txt data/sub/x");
        assert_string_equal(out, "hello\nx\n");

        _cleanup_free_ char *tar = test_pathf("%s/out.tar", t->dir), *list = NULL;
        fd = open(tar, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        OK(container_host_archive_out(t->h, id, "/data", fd, E));
        close(fd);
        assert_int_equal(test_sh_out(&list, NULL, "tar -tf '%s' | sort", tar), 0);
        assert_string_equal(list, "data/\ndata/hello.txt\ndata/sub/\ndata/sub/x\n");
        free(list);
        assert_int_equal(test_sh_out(&list, NULL, "tar -xOf '%s' data/hello.txt", tar), 0);
        assert_string_equal(list, "hello\n");
        fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        FAILS(ENOENT, container_host_archive_out(t->h, id, "/nosuch", fd, E));
        close(fd);

        /* Through a handle: now when it runs and stays running... */
        free(out);
        out = exec_out(t, id, "rm -r data");
        _cleanup_free_ char *hd = handle_of(t, id);
        fd = make_tar(t);
        OK(container_handle_add_archive(t->h, hd, "/", fd, 1 << 20, E));
        close(fd);
        FAILS(EINVAL, container_handle_add_archive(t->h, hd, "relative", -1, 1 << 20, E));
        OK(container_host_commit(t->h, hd, NULL, E));
        free(out);
        out = exec_out(t, id, "cat data/hello.txt");
        assert_string_equal(out, "hello\n");

        /* ... else at the next start. */
        OK(commit_to(t, id, CONTAINER_STOPPED));
        FAILS(EBADFD, container_host_archive_in(t->h, id, "/", 0, E));
        free(hd);
        hd = handle_of(t, id);
        _cleanup_free_ char *src = test_pathf("%s/tar-src2", t->dir), *tar2 = test_pathf("%s/in2.tar", t->dir);
        (void) mkdir(src, 0755);
        test_put(src, "later.txt", "later\n");
        assert_int_equal(test_sh("tar -C '%s' -cf '%s' later.txt", src, tar2), 0);
        fd = open(tar2, O_RDONLY | O_CLOEXEC);
        OK(container_handle_add_archive(t->h, hd, "/data", fd, 1 << 20, E));
        close(fd);
        OK(container_host_commit(t->h, hd, NULL, E));
        OK(commit_to(t, id, CONTAINER_RUNNING));
        free(out);
        out = exec_out(t, id, "cat data/later.txt");
        assert_string_equal(out, "later\n");
}

/* ---- queries and configuration ---- */

static char *run_labeled(T *t, const char *name, const char *labels_json, int target) {
        char *id = NULL;
        _cleanup_free_ char *hd = NULL;
        OK(container_host_create(t->h, name, IMAGE, &id, &hd, E));
        json_t *f = json_pack("{s:o}", "labels", json_loads(labels_json, 0, NULL));
        OK(container_handle_update(t->h, hd, f, E));
        json_decref(f);
        if (target >= 0)
                OK(container_handle_set_state(t->h, hd, target, E));
        OK(container_host_commit(t->h, hd, NULL, E));
        return id;
}

/* The names list() returns for a state and labels, comma separated. */
static char *list_names(T *t, int st, const char *const *labels, size_t n) {
        json_t *list = NULL;
        OK(container_host_list(t->h, st, labels, n, &list, E));
        char buf[256] = "";
        size_t i;
        json_t *c;
        json_array_foreach(list, i, c)
                snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? "," : "",
                         json_string_value(json_object_get(c, "name")));
        json_decref(list);
        return strdup(buf);
}

#define ASSERT_LIST(want, st, ...)                                                                   \
        do {                                                                                         \
                const char *const l_[] = {__VA_ARGS__};                                              \
                _cleanup_free_ char *got_ = list_names(t, (st), l_, ELEMENTSOF(l_) - 1);             \
                assert_string_equal(got_, (want));                                                   \
        } while (0)

static void test_list_labels(void **state) {
        T *t = *state;
        free(run_labeled(t, "a", "{\"tier\": \"web\", \"env\": \"prod\"}", -1));
        free(run_labeled(t, "b", "{\"tier\": \"db\", \"env\": \"prod\"}", CONTAINER_RUNNING));
        free(run_labeled(t, "c", "{\"tier\": \"web\"}", -1));
        ASSERT_LIST("c,b,a", -1, NULL); /* newest first */
        ASSERT_LIST("c,a", -1, "tier=web", NULL);
        ASSERT_LIST("b,a", -1, "env", NULL);
        ASSERT_LIST("a", -1, "tier=web", "env=prod", NULL);
        ASSERT_LIST("", -1, "tier=cache", NULL);
        ASSERT_LIST("", -1, "nosuch", NULL);
        ASSERT_LIST("b", CONTAINER_RUNNING, NULL);
        ASSERT_LIST("c,a", CONTAINER_CREATED, "tier", NULL);
        ASSERT_LIST("", -1, "from", NULL); /* labels given replace the image's */
}

static void test_bad_config(void **state) {
        T *t = *state;
        _cleanup_free_ char *id = NULL, *hd = NULL;
        OK(container_host_create(t->h, "web", IMAGE, &id, &hd, E));
        json_t *before = NULL, *after = NULL;
        OK(container_handle_inspect(t->h, hd, &before, E));
        static const char *const bad[] = {
                "{\"nosuch\": 1}",
                "{\"memory_mb\": 1}",
                "{\"memory_mb\": \"256\"}",
                "{\"vcpus\": 0}",
                "{\"vcpus\": 65}",
                "{\"args\": \"echo\"}",
                "{\"args\": [1]}",
                "{\"env\": [\"NOEQUALS\"]}",
                "{\"env\": [\"=x\"]}",
                "{\"workdir\": \"relative\"}",
                "{\"path\": \"\"}",
                "{\"stop_signal\": \"SIGBOGUS\"}",
                "{\"stop_timeout_s\": -1}",
                "{\"labels\": {\"a=b\": \"c\"}}",
                "{\"labels\": {\"a\": 1}}",
                "{\"vcpus\": 2, \"user\": 0}", /* one bad field: nothing of the rest applies */
                "[]",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                json_t *f = json_loads(bad[i], JSON_DECODE_ANY, NULL);
                assert_non_null(f);
                int r = container_handle_update(t->h, hd, f, E);
                json_decref(f);
                if (r != -EINVAL)
                        fail_msg("%s: got %d, want -EINVAL", bad[i], r);
                last_err = error_free(last_err);
        }
        OK(container_handle_inspect(t->h, hd, &after, E));
        assert_true(json_equal(before, after));
        json_decref(before);
        json_decref(after);
        /* A good one merges: given fields change, the rest stay. */
        json_t *f = json_pack("{s:i, s:s, s:i}", "vcpus", 2, "stop_signal", "KILL", "stop_timeout_s", 0);
        OK(container_handle_update(t->h, hd, f, E));
        json_decref(f);
        OK(container_host_commit(t->h, hd, NULL, E));
        json_t *j = inspect(t, id);
        json_t *cfg = json_object_get(j, "config");
        assert_int_equal(json_integer_value(json_object_get(cfg, "vcpus")), 2);
        assert_int_equal(json_integer_value(json_object_get(cfg, "memory_mb")), CONTAINER_MEMORY_MB_DEFAULT);
        assert_string_equal(json_string_value(json_object_get(cfg, "stop_signal")), "KILL");
        json_decref(j);
        /* ... and the limits reach the VM at the next start. */
        OK(commit_to(t, id, CONTAINER_RUNNING));
        _cleanup_free_ char *dom = str_of(t, id, "domain");
        VmFakeInfo info;
        assert_int_equal(vm_fake_info(t->d, dom, &info), 0);
        assert_int_equal(info.vcpus, 2);
        assert_int_equal(info.memory_mib, CONTAINER_MEMORY_MB_DEFAULT);
        OK(commit_to(t, id, CONTAINER_STOPPED));
        assert_int_equal(int_of(t, id, "exit_code"), 128 + SIGKILL);
}

/* ---- mounts ---- */

static json_t *volume_users(T *t, const char *name) {
        json_t *v = NULL;
        OK(volume_inspect(t->vs, name, &v, E));
        json_t *u = json_incref(json_object_get(v, "users"));
        json_decref(v);
        return u;
}

static void set_mounts(T *t, const char *hd, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        json_t *m = json_vpack_ex(NULL, 0, fmt, ap);
        va_end(ap);
        assert_non_null(m);
        OK(container_handle_set_mounts(t->h, hd, m, E));
        json_decref(m);
}

/* Every bad mounts array is refused with a message and changes nothing. */
static void test_mounts_bad(void **state) {
        T *t = *state;
        _cleanup_free_ char *id = NULL, *hd = NULL, *file = test_pathf("%s/a-file", t->dir);
        test_write_file(file, "x");
        OK(container_host_create(t->h, "web", IMAGE, &id, &hd, E));
        json_t *before = NULL, *after = NULL;
        OK(container_handle_inspect(t->h, hd, &before, E));
        _cleanup_free_ char *many_vols = strdup("["), *many_binds = strdup("[");
        for (int i = 0; i <= CONTAINER_VOLUMES_MAX; i++) {
                char *n = NULL;
                assert_true(asprintf(&n, "%s%s{\"volume\": \"v%d\", \"target\": \"/v%d\"}", many_vols, i ? ", " : "",
                                     i, i) > 0);
                free(many_vols);
                many_vols = n;
        }
        for (int i = 0; i <= CONTAINER_BINDS_MAX; i++) {
                char *n = NULL;
                assert_true(asprintf(&n, "%s%s{\"source\": \"%s\", \"target\": \"/b%d\"}", many_binds,
                                     i ? ", " : "", t->dir, i) > 0);
                free(many_binds);
                many_binds = n;
        }
        char *tail = NULL;
        assert_true(asprintf(&tail, "%s]", many_vols) > 0);
        free(many_vols);
        many_vols = tail;
        assert_true(asprintf(&tail, "%s]", many_binds) > 0);
        free(many_binds);
        many_binds = tail;
        _cleanup_free_ char *src_file = NULL, *src_missing = NULL;
        assert_true(asprintf(&src_file, "[{\"source\": \"%s\", \"target\": \"/x\"}]", file) > 0);
        assert_true(asprintf(&src_missing, "[{\"source\": \"%s/nope\", \"target\": \"/x\"}]", t->dir) > 0);
        const char *bad[] = {
                "{\"volume\": \"a\", \"target\": \"/a\"}",
                "[1]",
                "[{\"target\": \"/a\"}]",
                "[{\"volume\": \"a\", \"source\": \"/tmp\", \"target\": \"/a\"}]",
                "[{\"volume\": \"-a\", \"target\": \"/a\"}]",
                "[{\"volume\": \"a/b\", \"target\": \"/a\"}]",
                "[{\"volume\": \"a\"}]",
                "[{\"volume\": \"a\", \"target\": \"a\"}]",
                "[{\"volume\": \"a\", \"target\": \"/\"}]",
                "[{\"volume\": \"a\", \"target\": \"/a/../etc\"}]",
                "[{\"volume\": \"a\", \"target\": \"/a//b\"}]",
                "[{\"volume\": \"a\", \"target\": \"/a/\"}]",
                "[{\"volume\": \"a\", \"target\": \"/a\", \"read_only\": \"yes\"}]",
                "[{\"volume\": \"a\", \"target\": \"/a\", \"mode\": \"rw\"}]",
                "[{\"volume\": \"a\", \"target\": \"/a\"}, {\"volume\": \"b\", \"target\": \"/a\"}]",
                "[{\"volume\": \"a\", \"target\": \"/a\"}, {\"volume\": \"a\", \"target\": \"/b\"}]",
                "[{\"source\": \"relative\", \"target\": \"/a\"}]",
                "[{\"source\": \"/tmp/../etc\", \"target\": \"/a\"}]",
                src_file,
                src_missing,
                many_vols,
                many_binds,
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                json_t *m = json_loads(bad[i], JSON_DECODE_ANY, NULL);
                assert_non_null(m);
                int r = container_handle_set_mounts(t->h, hd, m, E);
                json_decref(m);
                if (r != -EINVAL || !last_err)
                        fail_msg("%.200s: got %d, want -EINVAL with a message", bad[i], r);
                last_err = error_free(last_err);
        }
        /* The field is checked the same way through the generic update. */
        json_t *f = json_pack("{s:[{s:s}]}", "mounts", "volume", "a");
        FAILS(EINVAL, container_handle_update(t->h, hd, f, E));
        json_decref(f);
        OK(container_handle_inspect(t->h, hd, &after, E));
        assert_true(json_equal(before, after));
        json_decref(before);
        json_decref(after);
        /* Nothing was created by the refused calls. */
        _cleanup_json_ json_t *vols = NULL;
        OK(volume_list(t->vs, &vols, E));
        assert_int_equal(json_array_size(vols), 0);
}

/* Volumes named by a commit are created and used; users follow commits,
 * destroys and host restarts; a used volume cannot go. */
static void test_mounts_users(void **state) {
        T *t = *state;
        _cleanup_free_ char *id1 = NULL, *hd1 = NULL, *id2 = NULL, *hd2 = NULL;
        OK(container_host_create(t->h, "one", IMAGE, &id1, &hd1, E));
        set_mounts(t, hd1, "[{s:s, s:s}, {s:s, s:s, s:b}]", "volume", "data", "target", "/data", "source", t->dir,
                   "target", "/www", "read_only", 1);
        _cleanup_json_ json_t *vols = NULL;
        OK(volume_list(t->vs, &vols, E));
        assert_int_equal(json_array_size(vols), 0); /* a handle is a draft: nothing yet */
        OK(container_host_commit(t->h, hd1, NULL, E));
        json_t *u = volume_users(t, "data");
        assert_int_equal(json_array_size(u), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(u, 0), "id")), id1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(u, 0), "name")), "one");
        json_decref(u);
        json_t *j = inspect(t, id1);
        json_t *m = json_object_get(j, "mounts");
        assert_int_equal(json_array_size(m), 2);
        assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "type")), "volume");
        assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "source")), "data");
        assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "type")), "bind");
        assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "source")), t->dir);
        assert_true(json_is_true(json_object_get(json_array_get(m, 1), "read_only")));
        json_decref(j);

        FAILS(EBUSY, volume_remove(t->vs, "data", E));
        OK(container_host_create(t->h, "two", IMAGE, &id2, &hd2, E));
        set_mounts(t, hd2, "[{s:s, s:s}]", "volume", "data", "target", "/d");
        OK(container_host_commit(t->h, hd2, NULL, E));
        u = volume_users(t, "data");
        assert_int_equal(json_array_size(u), 2);
        json_decref(u);

        /* A restart keeps the users; one no record backs is dropped. */
        OK(volume_acquire(t->vs, "data", "0123456789abcdef", "ghost", false, NULL, E));
        host_close(t);
        host_open(t);
        u = volume_users(t, "data");
        assert_int_equal(json_array_size(u), 2);
        json_decref(u);

        /* Changing one's mounts releases the volume; destroying the other too. */
        _cleanup_free_ char *h1 = handle_of(t, id1);
        set_mounts(t, h1, "[]");
        OK(container_host_commit(t->h, h1, NULL, E));
        u = volume_users(t, "data");
        assert_int_equal(json_array_size(u), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(u, 0), "name")), "two");
        json_decref(u);
        FAILS(EBUSY, volume_remove(t->vs, "data", E));
        OK(container_host_destroy(t->h, id2, false, E));
        u = volume_users(t, "data");
        assert_int_equal(json_array_size(u), 0);
        json_decref(u);
        OK(volume_remove(t->vs, "data", E));
}

/* Mounts changed on a running container wait for its next start and are
 * listed in pending_restart; fields absent before and after are not. */
static void test_mounts_pending_restart(void **state) {
        T *t = *state;
        _cleanup_free_ char *id = run(t, "runner", NULL, CONTAINER_RUNNING);
        _cleanup_free_ char *hd = handle_of(t, id);
        json_t *f = json_pack("{s:{s:s}}", "labels", "k", "v");
        OK(container_handle_update(t->h, hd, f, E));
        json_decref(f);
        OK(container_host_commit(t->h, hd, NULL, E));
        json_t *j = inspect(t, id);
        assert_int_equal(json_array_size(json_object_get(j, "pending_restart")), 0);
        json_decref(j);
        _cleanup_free_ char *hd2 = handle_of(t, id);
        set_mounts(t, hd2, "[{s:s, s:s}]", "source", t->dir, "target", "/share");
        OK(container_host_commit(t->h, hd2, NULL, E));
        j = inspect(t, id);
        json_t *p = json_object_get(j, "pending_restart");
        assert_int_equal(json_array_size(p), 1);
        assert_string_equal(json_string_value(json_array_get(p, 0)), "mounts");
        json_decref(j);
        OK(commit_to(t, id, CONTAINER_STOPPED));
}

/* ---- recovery ---- */

static void test_recover_running(void **state) {
        T *t = *state;
        _cleanup_free_ char *id = run(t, "web", NULL, CONTAINER_RUNNING);
        _cleanup_free_ char *p = run(t, "paused", NULL, CONTAINER_RUNNING);
        OK(commit_to(t, p, CONTAINER_PAUSED));
        int pid = (int) int_of(t, id, "pid");
        json_int_t gen = int_of(t, id, "generation");
        _cleanup_free_ char *hd = handle_of(t, id);

        host_close(t);
        assert_true(proc_running(pid)); /* the VM runs on without us */
        host_open(t);

        assert_int_equal(state_of(t, id), CONTAINER_RUNNING);
        assert_int_equal(int_of(t, id, "pid"), pid);
        assert_int_equal(int_of(t, id, "generation"), gen);
        assert_int_equal(state_of(t, p), CONTAINER_PAUSED);
        assert_int_equal(vm_state_of(t, p), VM_STATE_PAUSED);
        /* Handles are forgotten. */
        FAILS(ENOENT, container_host_commit(t->h, hd, NULL, E));
        /* Usable again: exec, then a stop that sees the exit. */
        _cleanup_free_ char *out = exec_out(t, id, "echo back");
        assert_string_equal(out, "back\n");
        json_t *j = inspect(t, id);
        assert_true(json_array_size(json_object_get(j, "processes")) >= 1);
        json_decref(j);
        OK(commit_to(t, id, CONTAINER_STOPPED));
        assert_int_equal(int_of(t, id, "exit_code"), 128 + SIGTERM);
        OK(commit_to(t, p, CONTAINER_RUNNING));
        OK(container_host_signal(t->h, p, SIGKILL, false, E));
        assert_int_equal(wait_exit(t, p), 128 + SIGKILL);

        /* The main process ended while the host was away. */
        OK(commit_to(t, id, CONTAINER_RUNNING));
        pid = (int) int_of(t, id, "pid");
        host_close(t);
        assert_int_equal(kill(pid, SIGKILL), 0);
        host_open(t);
        assert_int_equal(wait_exit(t, id), 128 + SIGKILL);
        assert_int_equal(vm_state_of(t, id), VM_STATE_MISSING);
}

/* Rewrites fields of a container's record, as a daemon killed at that point
 * would have left it. */
static void record_edit(T *t, const char *id, const char *state, const char *state_before) {
        _cleanup_free_ char *path = test_pathf("%s/containers/%s/container.json", t->state, id);
        json_t *j = json_load_file(path, 0, NULL);
        assert_non_null(j);
        assert_int_equal(json_object_set_new(j, "state", json_string(state)), 0);
        assert_int_equal(json_object_set_new(j, "state_before", json_string(state_before)), 0);
        assert_int_equal(json_dump_file(j, path, 0), 0);
        json_decref(j);
}

static void create_domain(T *t, const char *name, const char *container_id) {
        VmDisk disk = {.path = "/nonexistent/disk.qcow2", .format = VM_DISK_QCOW2, .serial = "pl-root"};
        VmSpec spec = {.name = name, .container_id = container_id, .memory_mib = 256, .vcpus = 1,
                       .kernel = "/nonexistent/vmlinuz", .disks = &disk, .n_disks = 1, .console_log = "/dev/null"};
        OK(vm_driver_create(t->d, &spec, E));
}

static void test_recover_leftovers(void **state) {
        T *t = *state;
        _cleanup_free_ char *starting = run(t, "starting", NULL, -1), *was_running = run(t, "gone", NULL, CONTAINER_RUNNING);
        _cleanup_free_ char *starting_dom = str_of(t, starting, "domain"), *gone_dom = str_of(t, was_running, "domain");
        _cleanup_free_ char *removing = run(t, "removing", NULL, -1);
        host_close(t);
        /* A removal the daemon was in the middle of. */
        record_edit(t, removing, "removing", "created");

        /* A start the daemon was in the middle of, its VM half up. */
        record_edit(t, starting, "starting", "created");
        create_domain(t, starting_dom, starting);
        /* A VM that ended while the daemon was down. */
        OK(vm_driver_destroy(t->d, gone_dom, E));
        /* A create killed half-way: a directory without a record. */
        static const char orphan[] = "00000000000000000000000000000000000000000000000000000000000000aa";
        static const char broken[] = "00000000000000000000000000000000000000000000000000000000000000bb";
        _cleanup_free_ char *orphan_dir = test_pathf("%s/containers/%s", t->state, orphan);
        _cleanup_free_ char *broken_dir = test_pathf("%s/containers/%s", t->state, broken);
        _cleanup_free_ char *orphan_disk = test_pathf("%s/disk.qcow2", orphan_dir);
        _cleanup_free_ char *broken_record = test_pathf("%s/container.json", broken_dir);
        test_write_file_p(orphan_disk, "not a disk");
        test_write_file_p(broken_record, "{not json");
        /* Domains: ours without a record, and someone else's. */
        create_domain(t, "pl-00000000000000cc", "00000000000000000000000000000000000000000000000000000000000000cc");
        assert_int_equal(vm_fake_add_foreign(t->d, "someone-else"), 0);

        host_open(t);
        assert_false(exists(t, removing));
        assert_int_equal(state_of(t, starting), CONTAINER_CREATED);
        _cleanup_free_ char *why = str_of(t, starting, "error");
        assert_non_null(strstr(why, "starting"));
        assert_int_equal(vm_state_of(t, starting), VM_STATE_MISSING);
        OK(commit_to(t, starting, CONTAINER_RUNNING)); /* and it can start */

        assert_int_equal(state_of(t, was_running), CONTAINER_STOPPED);
        assert_int_equal(int_of(t, was_running, "exit_code"), 255);
        free(why);
        why = str_of(t, was_running, "error");
        assert_non_null(strstr(why, "while the daemon was down"));

        assert_false(test_exists(orphan_dir));
        assert_false(test_exists(broken_dir));
        _cleanup_free_ char *kept = test_pathf("%s/quarantine/%s/container.json", t->state, broken);
        _cleanup_free_ char *text = test_read_file(kept, NULL);
        assert_non_null(text);
        assert_string_equal(text, "{not json");

        VmState st;
        OK(vm_driver_state(t->d, "pl-00000000000000cc", &st, E));
        assert_int_equal(st, VM_STATE_MISSING);
        OK(vm_driver_state(t->d, "someone-else", &st, E));
        assert_int_equal(st, VM_STATE_RUNNING);
        OK(vm_driver_destroy(t->d, "someone-else", E));
        assert_int_equal(disk_users(t), 2);
}

/* ---- the uid of each container's QEMU (container-owner.c) ---- */

#define UID_FIRST 310000

static void host_open_uids(T *t, uint32_t count) {
        ContainerHostConfig cfg = {.state_dir = t->state, .driver = t->d, .store = t->store,
                                   .kernel = "/nonexistent/vmlinuz", .initrd = "/nonexistent/initrd.img",
                                   .accel = VM_ACCEL_TCG, .boot_timeout_ms = 5000, .uid_first = UID_FIRST,
                                   .uid_count = count};
        ContainerHost *h = NULL;
        OK(container_host_open(&cfg, &h, E));
        pthread_mutex_lock(&t->ev_lock);
        t->h = h;
        pthread_mutex_unlock(&t->ev_lock);
}

static void assert_owned(const char *path, unsigned uid, unsigned mode) {
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_uid, uid);
        assert_int_equal(st.st_gid, uid);
        assert_int_equal(st.st_mode & 07777, mode);
}

static bool claimed(T *t, unsigned uid) {
        _cleanup_free_ char *path = test_pathf("%s/uids/%u", t->state, uid);
        return test_exists(path);
}

static void test_uids(void **state) {
        T *t = *state;
        if (geteuid() != 0)
                test_skip_or_fail("root (files given to other uids)");
        host_close(t);
        host_open_uids(t, 2);
        _cleanup_free_ char *a = run(t, "ua", NULL, CONTAINER_RUNNING), *b = run(t, "ub", NULL, -1);
        assert_int_equal(int_of(t, a, "uid"), UID_FIRST);
        assert_int_equal(int_of(t, b, "uid"), UID_FIRST + 1);
        _cleanup_free_ char *disk_a = test_pathf("%s/containers/%s/disk.qcow2", t->state, a);
        _cleanup_free_ char *disk_b = test_pathf("%s/containers/%s/disk.qcow2", t->state, b);
        _cleanup_free_ char *run_a = test_pathf("%s/run/%.16s", t->state, a);
        _cleanup_free_ char *log_a = test_pathf("%s/console.log", run_a);
        _cleanup_free_ char *dir_a = test_pathf("%s/containers/%s", t->state, a);
        assert_owned(disk_a, UID_FIRST, 0600);
        assert_owned(disk_b, UID_FIRST + 1, 0600);
        assert_owned(run_a, UID_FIRST, 0700);
        assert_owned(log_a, UID_FIRST, 0600);
        assert_owned(dir_a, 0, 0711);
        _cleanup_free_ char *xml = NULL;
        _cleanup_free_ char *dom_a = str_of(t, a, "domain");
        OK(vm_fake_domain_xml(t->d, dom_a, &xml));
        assert_non_null(strstr(xml, "<label>+310000:+310000</label>"));
        assert_non_null(strstr(xml, "relabel=\"no\""));

        /* the range is exhausted: a create fails and leaves nothing */
        _cleanup_free_ char *id = NULL, *hd = NULL;
        OK(container_host_create(t->h, "uc", IMAGE, &id, &hd, E));
        FAILS(ENOSPC, container_host_commit(t->h, hd, NULL, E));
        assert_false(exists(t, id));
        assert_int_equal(containers_on_disk(t, false), 2);

        /* a kill -9 in the middle of a removal left b's claim behind, its
         * record gone: the next start releases it, and claims a's again */
        host_close(t);
        _cleanup_free_ char *rec_a = test_pathf("%s/container.json", dir_a);
        json_t *j = json_load_file(rec_a, 0, NULL);
        assert_non_null(j);
        assert_int_equal(json_integer_value(json_object_get(j, "uid")), UID_FIRST);
        json_decref(j);
        _cleanup_free_ char *dir_b = test_pathf("%s/containers/%s", t->state, b);
        OK(store_container_disk_remove(t->store, disk_b, E));
        assert_int_equal(rm_rf(dir_b), 0);
        assert_true(claimed(t, UID_FIRST + 1));
        host_open_uids(t, 2);
        assert_false(claimed(t, UID_FIRST + 1));
        assert_true(claimed(t, UID_FIRST));
        assert_int_equal(int_of(t, a, "uid"), UID_FIRST);
        assert_int_equal(state_of(t, a), CONTAINER_RUNNING);

        /* a uid comes back once its container is gone, and only then */
        _cleanup_free_ char *c = run(t, "uc", NULL, -1);
        assert_int_equal(int_of(t, c, "uid"), UID_FIRST + 1);
        OK(container_host_destroy(t->h, a, true, E));
        assert_false(claimed(t, UID_FIRST));
        _cleanup_free_ char *d = run(t, "ud", NULL, -1);
        assert_int_equal(int_of(t, d, "uid"), UID_FIRST);
        OK(container_host_destroy(t->h, c, false, E));
        OK(container_host_destroy(t->h, d, false, E));
        assert_false(claimed(t, UID_FIRST) || claimed(t, UID_FIRST + 1));
}

/* ---- gc and vms, while the host serves ---- */

/* Sets path's modification time age_s seconds back. */
static void age(const char *path, int age_s) {
        struct timespec ts[2] = {{.tv_sec = time(NULL) - age_s}, {.tv_sec = time(NULL) - age_s}};
        assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static size_t gc_count(json_t *list, const char *kind, const char *name, const char *action) {
        size_t i, n = 0;
        json_t *o;
        json_array_foreach(list, i, o)
                n += strcmp(json_string_value(json_object_get(o, "kind")), kind) == 0 &&
                     strcmp(json_string_value(json_object_get(o, "name")), name) == 0 &&
                     strcmp(json_string_value(json_object_get(o, "action")), action) == 0;
        return n;
}

static void test_gc_and_vms(void **state) {
        T *t = *state;
        _cleanup_free_ char *live = run(t, "live", NULL, CONTAINER_RUNNING);
        static const char orphan[] = "00000000000000000000000000000000000000000000000000000000000000aa";
        static const char broken[] = "00000000000000000000000000000000000000000000000000000000000000bb";
        _cleanup_free_ char *orphan_dir = test_pathf("%s/containers/%s", t->state, orphan);
        _cleanup_free_ char *broken_dir = test_pathf("%s/containers/%s", t->state, broken);
        _cleanup_free_ char *run_old = test_pathf("%s/run/00000000000000dd", t->state);
        _cleanup_free_ char *run_young = test_pathf("%s/run/00000000000000ee", t->state);
        _cleanup_free_ char *broken_record = test_pathf("%s/container.json", broken_dir);
        test_write_file_p(broken_record, "{not json");
        assert_int_equal(mkdir(orphan_dir, 0700), 0);
        assert_int_equal(mkdir(run_old, 0700), 0);
        assert_int_equal(mkdir(run_young, 0700), 0);
        age(orphan_dir, 3600);
        age(broken_dir, 3600);
        age(run_old, 3600);
        create_domain(t, "pl-00000000000000cc", "00000000000000000000000000000000000000000000000000000000000000cc");
        assert_int_equal(vm_fake_add_foreign(t->d, "someone-else"), 0);

        json_t *list = NULL;
        OK(container_host_gc(t->h, false, &list, E));
        assert_int_equal(json_array_size(list), 4);
        assert_int_equal(gc_count(list, "vm", "pl-00000000000000cc", "remove"), 1);
        assert_int_equal(gc_count(list, "container-dir", orphan, "remove"), 1);
        assert_int_equal(gc_count(list, "container-dir", broken, "quarantine"), 1);
        assert_int_equal(gc_count(list, "run-dir", "00000000000000dd", "remove"), 1);
        json_decref(list);
        assert_true(test_exists(orphan_dir)); /* listing removes nothing */

        OK(container_host_gc(t->h, true, &list, E));
        assert_int_equal(json_array_size(list), 4);
        assert_int_equal(gc_count(list, "vm", "pl-00000000000000cc", "removed"), 1);
        assert_int_equal(gc_count(list, "container-dir", broken, "quarantined"), 1);
        json_decref(list);
        assert_false(test_exists(orphan_dir));
        assert_false(test_exists(run_old));
        assert_true(test_exists(run_young)); /* young: a create in progress looks so */
        _cleanup_free_ char *kept = test_pathf("%s/quarantine/%s/container.json", t->state, broken);
        assert_true(test_exists(kept));
        VmState st;
        OK(vm_driver_state(t->d, "pl-00000000000000cc", &st, E));
        assert_int_equal(st, VM_STATE_MISSING);
        OK(vm_driver_state(t->d, "someone-else", &st, E));
        assert_int_equal(st, VM_STATE_RUNNING);
        OK(vm_driver_destroy(t->d, "someone-else", E));
        /* the live container is untouched and still answers */
        assert_int_equal(state_of(t, live), CONTAINER_RUNNING);
        OK(container_host_gc(t->h, false, &list, E));
        assert_int_equal(json_array_size(list), 0);
        json_decref(list);

        /* vms: the live container's VM, with what it was started with; the
         * fake's "QEMU" is the host-mode agent standing in for the guest, whose
         * pid and PSS the driver reports */
        OK(container_host_vms(t->h, &list, E));
        assert_int_equal(json_array_size(list), 1);
        json_t *v = json_array_get(list, 0);
        assert_string_equal(json_string_value(json_object_get(v, "container")), live);
        assert_string_equal(json_string_value(json_object_get(v, "name")), "live");
        assert_string_equal(json_string_value(json_object_get(v, "state")), "running");
        assert_string_equal(json_string_value(json_object_get(v, "accelerator")), "tcg");
        assert_int_equal(json_integer_value(json_object_get(v, "memory_mb")), CONTAINER_MEMORY_MB_DEFAULT);
        assert_true(json_integer_value(json_object_get(v, "qemu_pid")) > 1);
        assert_true(json_integer_value(json_object_get(v, "pss_kib")) > 0);
        assert_non_null(strstr(json_string_value(json_array_get(json_object_get(v, "disks"), 0)), live));
        assert_non_null(strstr(json_string_value(json_object_get(v, "console_log")), "/console.log"));
        json_decref(list);
}

/* ---- metrics ---- */

static void test_metrics(void **state) {
        T *t = *state;
        ContainerHostMetrics m;
        container_host_metrics(t->h, &m);
        assert_int_equal(m.starts, 0);
        _cleanup_free_ char *id = run(t, "web", NULL, CONTAINER_RUNNING);
        _cleanup_free_ char *id2 = run(t, "other", NULL, -1);
        vm_fake_fail_next(t->d, VM_FAKE_OP_CREATE, EIO);
        FAILS(EIO, commit_to(t, id2, CONTAINER_RUNNING));
        ContainerExecResult res;
        OK(exec_sh(t, id, "true", 10, 100, &res));
        container_exec_result_clear(&res);
        /* the client's own deadline is not the agent's fault */
        FAILS(ETIMEDOUT, exec_sh(t, id, "exec sleep 30", 1, 100, &res));
        container_host_metrics(t->h, &m);
        assert_int_equal(m.starts, 1);
        assert_int_equal(m.start_failures, 1);
        assert_int_equal(m.start_le[CONTAINER_START_BUCKETS], 1);
        assert_int_equal(m.start_le[0], 1); /* the fake boots in well under 0.5 s */
        assert_true(m.start_seconds_sum > 0 && m.start_seconds_sum < 0.5);
        assert_int_equal(m.containers[CONTAINER_RUNNING], 1);
        assert_int_equal(m.containers[CONTAINER_CREATED], 1);
        assert_int_equal(m.agent_errors, 0);
        /* an agent that dies under an exec-sync is */
        _cleanup_free_ char *dom = str_of(t, id, "domain");
        assert_int_equal(vm_fake_set_state(t->d, dom, VM_STATE_CRASHED, "crashed"), 0);
        assert_int_equal(wait_exit(t, id), 255);
        container_host_metrics(t->h, &m);
        assert_int_equal(m.agent_errors, 1); /* the monitor's wait */
        assert_int_equal(m.containers[CONTAINER_STOPPED], 1);
}

/* ---- main.log rotation ---- */

#define ROT_LINES 1500

/* What the rotation test's main process writes to stream s (1 or 2). */
static char *rot_expected(int s, size_t *ret_len) {
        char *text = malloc(ROT_LINES * 16);
        assert_non_null(text);
        size_t n = 0;
        for (int i = 0; i < ROT_LINES; i++)
                n += (size_t) sprintf(text + n, "%s %04d\n", s == 1 ? "out" : "err", i);
        *ret_len = n;
        return text;
}

typedef struct LogsCall {
        T *t;
        const char *id;
        ContainerLogOptions o;
        int fd;
        int r;
} LogsCall;

static void *logs_main(void *arg) {
        LogsCall *lc = arg;
        lc->r = container_host_logs(lc->t->h, lc->id, &lc->o, lc->fd, NULL);
        close(lc->fd);
        return NULL;
}

/* Runs container_host_logs in a thread into a pipe and collects its output
 * here, as the REST layer does. */
static char *logs_collect(T *t, const char *id, ContainerLogOptions o, size_t *ret_len) {
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        LogsCall lc = {.t = t, .id = id, .o = o, .fd = p[1]};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, logs_main, &lc), 0);
        size_t size = 1 << 16, n = 0;
        char *buf = malloc(size + 1);
        for (ssize_t k; buf && (k = read(p[0], buf + n, size - n)) > 0;) {
                n += (size_t) k;
                if (n == size)
                        buf = realloc(buf, (size *= 2) + 1);
        }
        assert_non_null(buf);
        pthread_join(th, NULL);
        close(p[0]);
        assert_int_equal(lc.r, 0);
        buf[n] = 0;
        *ret_len = n;
        return buf;
}

/* got must be the end of want, starting at a record boundary of the
 * writer (so anywhere) but with nothing lost or repeated inside it. */
static void assert_suffix(const char *got, size_t got_len, const char *want, size_t want_len) {
        if (got_len > want_len || memcmp(got, want + want_len - got_len, got_len) != 0)
                fail_msg("log of %zu bytes is not the end of the %zu bytes written: '%.40s...'", got_len, want_len, got);
}

static void test_log_rotation(void **state) {
        T *t = *state;
        host_close(t);
        host_open_logs(t, 1024, 3);
        /* A follower starts before the output and keeps up (it polls every
         * 200 ms; the process writes about 2 KiB a second, the kept files
         * hold 4 KiB), so it must see every byte exactly once. */
        _cleanup_free_ char *id = run(t, "chatty",
                                      "sleep 0.5; i=0; while [ $i -lt 1500 ]; do printf 'out %04d\\n' $i;"
                                      " printf 'err %04d\\n' $i >&2; i=$((i+1));"
                                      " [ $((i % 30)) -eq 0 ] && sleep 0.1; done; exit 0",
                                      CONTAINER_RUNNING);
        size_t out_len, err_len, got_len;
        _cleanup_free_ char *out = rot_expected(1, &out_len), *err = rot_expected(2, &err_len);
        _cleanup_free_ char *followed =
                logs_collect(t, id, (ContainerLogOptions){.follow = true, .tail = -1, .raw = true, .no_stderr = true},
                             &got_len);
        assert_int_equal(got_len, out_len);
        assert_memory_equal(followed, out, out_len);
        assert_int_equal(wait_exit(t, id), 0);

        /* Rotated: main.log and main.log.1-3, no more; the rotated ones
         * within the limit (the agent's chunks of 10-byte lines are far
         * smaller than 1 KiB at this pace). */
        for (int i = 0; i <= 4; i++) {
                _cleanup_free_ char *p = i ? test_pathf("%s/containers/%s/main.log.%d", t->state, id, i)
                                           : test_pathf("%s/containers/%s/main.log", t->state, id);
                assert_int_equal(test_exists(p), i < 4);
                struct stat st;
                if (i < 4 && stat(p, &st) == 0 && st.st_size > 1024 && i > 0)
                        fail_msg("%s: %lld bytes", p, (long long) st.st_size);
        }
        /* What is kept reads back in order, per stream and as JSON. */
        _cleanup_free_ char *kept_out = logs_collect(t, id, (ContainerLogOptions){.tail = -1, .raw = true, .no_stderr = true},
                                                     &got_len);
        assert_true(got_len > 0 && got_len < out_len);
        assert_suffix(kept_out, got_len, out, out_len);
        _cleanup_free_ char *kept_err = logs_collect(t, id, (ContainerLogOptions){.tail = -1, .raw = true, .no_stdout = true},
                                                     &got_len);
        assert_true(got_len > 0);
        assert_suffix(kept_err, got_len, err, err_len);
        size_t all_len, tail_len;
        _cleanup_free_ char *all = logs_collect(t, id, (ContainerLogOptions){.tail = -1}, &all_len);
        _cleanup_free_ char *tail = logs_collect(t, id, (ContainerLogOptions){.tail = 3}, &tail_len);
        size_t lines = 0;
        for (char *l = all, *nl; (nl = memchr(l, '\n', all_len - (size_t) (l - all))); l = nl + 1) {
                json_error_t je;
                json_t *j = json_loadb(l, (size_t) (nl - l), 0, &je);
                assert_non_null(j);
                json_decref(j);
                lines++;
        }
        assert_true(lines > 3);
        /* the last three records span the files' boundary or not: either way
         * they are the end of everything */
        assert_true(tail_len < all_len);
        assert_memory_equal(tail, all + all_len - tail_len, tail_len);
        assert_int_equal(tail[tail_len - 1], '\n');
        size_t tail_lines = 0;
        for (size_t i = 0; i < tail_len; i++)
                tail_lines += tail[i] == '\n';
        assert_int_equal(tail_lines, 3);
}


/* A new container running `sh -c script` with a terminal and/or an open
 * stdin (the Docker front end's -t and -i), started. */
static char *run_interactive(T *t, const char *name, const char *script, bool tty, bool open_stdin) {
        char *id = NULL;
        _cleanup_free_ char *hd = NULL;
        OK(container_host_create(t->h, name, IMAGE, &id, &hd, E));
        handle_set_cmd(t, hd, script);
        json_t *f = json_pack("{s:b, s:b}", "tty", tty, "open_stdin", open_stdin);
        OK(container_handle_update(t->h, hd, f, E));
        json_decref(f);
        OK(container_handle_set_state(t->h, hd, CONTAINER_RUNNING, E));
        OK(container_host_commit(t->h, hd, NULL, E));
        return id;
}

/* Multiplexed frames (stream 1/2, three zeros, big-endian length) back
 * into the two streams; fails on anything else. */
static void unframe(const char *buf, size_t len, char *out, char *err, bool stamped) {
        size_t o = 0, e = 0;
        for (size_t i = 0; i < len;) {
                assert_true(len - i >= 8);
                const uint8_t *h = (const uint8_t *) buf + i;
                assert_true((h[0] == 1 || h[0] == 2) && h[1] == 0 && h[2] == 0 && h[3] == 0);
                size_t n = (size_t) h[4] << 24 | (size_t) h[5] << 16 | (size_t) h[6] << 8 | h[7];
                assert_true(len - i - 8 >= n);
                const char *data = buf + i + 8;
                if (stamped) { /* "2026-12-03T10:20:11.431676343Z " before the bytes */
                        const char *sp = memchr(data, ' ', n);
                        assert_non_null(sp);
                        assert_true(sp - data >= 20 && data[4] == '-' && sp[-1] == 'Z');
                        n -= (size_t) (sp + 1 - data);
                        data = sp + 1;
                }
                memcpy(h[0] == 1 ? out + o : err + e, data, n);
                *(h[0] == 1 ? &o : &e) += n;
                i = (size_t) (data - buf) + n;
        }
        out[o] = err[e] = 0;
}

static void test_main_stdin_tty_frames(void **state) {
        T *t = *state;
        /* stdin open, no terminal: what is written arrives, closing it ends
         * the read loop */
        _cleanup_free_ char *id = run_interactive(t, "inter", "while read x; do echo \"got $x\"; done; echo bye >&2; exit 2",
                                                  false, true);
        OK(container_host_main_write(t->h, id, "one\ntwo\n", 8, E));
        OK(container_host_main_close_stdin(t->h, id, E));
        assert_int_equal(wait_exit(t, id), 2);
        FAILS(EBADFD, container_host_main_write(t->h, id, "x", 1, E));
        size_t len;
        char out[256], err[256];
        _cleanup_free_ char *framed = logs_collect(t, id, (ContainerLogOptions){.tail = -1, .raw = true, .framed = true},
                                                   &len);
        unframe(framed, len, out, err, false);
        assert_string_equal(out, "got one\ngot two\n");
        assert_string_equal(err, "bye\n");
        _cleanup_free_ char *stamped = logs_collect(
                t, id, (ContainerLogOptions){.tail = -1, .raw = true, .framed = true, .timestamps = true}, &len);
        unframe(stamped, len, out, err, true);
        assert_string_equal(out, "got one\ngot two\n");
        _cleanup_free_ char *only_err = logs_collect(
                t, id, (ContainerLogOptions){.tail = -1, .raw = true, .framed = true, .no_stdout = true}, &len);
        unframe(only_err, len, out, err, false);
        assert_string_equal(out, "");
        assert_string_equal(err, "bye\n");
        /* without stdin the main process has none to write to */
        _cleanup_free_ char *quiet = run(t, "quiet", "sleep 30", CONTAINER_RUNNING);
        /* fields absent from both the configuration and what it was
         * started with (tty, open_stdin) are no pending change */
        json_t *qj = inspect(t, quiet);
        assert_int_equal(json_array_size(json_object_get(qj, "pending_restart")), 0);
        json_decref(qj);
        assert_true(container_host_main_write(t->h, quiet, "x", 1, E) < 0);
        last_err = error_free(last_err);
        OK(container_host_destroy(t->h, quiet, true, E));

        /* a terminal: one stream, its size set from the host */
        _cleanup_free_ char *tid = run_interactive(t, "term", "read x; tty; stty size; exit 0", true, true);
        OK(container_host_main_resize(t->h, tid, 33, 101, E));
        OK(container_host_main_write(t->h, tid, "\n", 1, E));
        assert_int_equal(wait_exit(t, tid), 0);
        _cleanup_free_ char *raw = logs_collect(t, tid, (ContainerLogOptions){.tail = -1, .raw = true}, &len);
        assert_non_null(strstr(raw, "/dev/pts/"));
        assert_non_null(strstr(raw, "33 101"));
}

static void test_rename(void **state) {
        T *t = *state;
        _cleanup_free_ char *id = run(t, "old", NULL, -1);
        _cleanup_free_ _unused_ char *other = run(t, "other", NULL, -1);
        json_t *j = inspect(t, id);
        json_int_t gen = json_integer_value(json_object_get(j, "generation"));
        json_decref(j);
        _cleanup_free_ char *hd = handle_of(t, id);
        OK(container_host_rename(t->h, "old", "new", E));
        j = inspect(t, "new");
        assert_string_equal(json_string_value(json_object_get(j, "id")), id);
        assert_int_equal(json_integer_value(json_object_get(j, "generation")), gen + 1);
        json_decref(j);
        FAILS(ENOENT, container_host_inspect(t->h, "old", &j, E));
        FAILS(EEXIST, container_host_rename(t->h, id, "other", E));
        FAILS(EINVAL, container_host_rename(t->h, id, "-bad", E));
        FAILS(ENOENT, container_host_rename(t->h, "nope", "x", E));
        /* a handle taken before the rename conflicts */
        OK(container_handle_set_state(t->h, hd, CONTAINER_STOPPED, E));
        FAILS(ESTALE, container_host_commit(t->h, hd, NULL, E));
        /* the record keeps it across a restart of the host */
        host_close(t);
        host_open_logs(t, 0, 0);
        j = inspect(t, id);
        assert_string_equal(json_string_value(json_object_get(j, "name")), "new");
        json_decref(j);
}

/* Leases and published ports through commits and destroys (plnetwork with
 * manage_host off: records and rules text, no bridge): an address from the
 * first commit, a taken port refused with nothing left, "none" without one,
 * an unknown network, leases of vanished containers released at open. */
static void network_open(T *t) {
        NetworkHostConfig nc = {.state_dir = t->state, .mode = NETWORK_MODE_BRIDGE};
        OK(network_host_open(&nc, &t->net, E));
}

static char *run_net(T *t, const char *name, const char *fields_json, int want_errno) {
        char *id = NULL;
        _cleanup_free_ char *hd = NULL;
        OK(container_host_create(t->h, name, IMAGE, &id, &hd, E));
        json_t *f = json_loads(fields_json, 0, NULL);
        assert_non_null(f);
        OK(container_handle_update(t->h, hd, f, E));
        json_decref(f);
        if (want_errno)
                FAILS(want_errno, container_host_commit(t->h, hd, NULL, E));
        else
                OK(container_host_commit(t->h, hd, NULL, E));
        return id;
}

static void test_network_leases(void **state) {
        T *t = *state;
        host_close(t);
        network_open(t);
        host_open(t);
        _cleanup_free_ char *a = run_net(t, "a", "{\"ports\": [{\"host_port\": 18181, \"container_port\": 80}]}", 0);
        json_t *j = inspect(t, "a");
        assert_string_equal(json_string_value(json_object_get(j, "ip_address")), "10.88.0.2");
        assert_string_equal(json_string_value(json_object_get(j, "network")), "default");
        assert_memory_equal(json_string_value(json_object_get(j, "mac_address")), "0a:70:6c:", 9);
        assert_int_equal(json_array_size(json_object_get(j, "ports")), 1);
        json_decref(j);
        _cleanup_free_ char *rules = NULL;
        OK(network_rules_text(t->net, &rules, E));
        assert_non_null(strstr(rules, "tcp dport 18181 dnat to 10.88.0.2:80"));

        /* a taken port: the new container does not exist, holds nothing */
        _cleanup_free_ _unused_ char *b = run_net(t, "b", "{\"ports\": [{\"host_ip\": \"127.0.0.1\", \"host_port\": 18181, "
                                                 "\"container_port\": 81}]}", EADDRINUSE);
        assert_false(exists(t, "b"));
        json_t *leases = network_leases_json(t->net, "default");
        assert_int_equal(json_array_size(leases), 1);
        json_decref(leases);
        _cleanup_free_ _unused_ char *c = run_net(t, "c", "{\"network\": \"none\"}", 0);
        _cleanup_free_ char *ip = str_of(t, "c", "ip_address");
        assert_string_equal(ip, "");
        _cleanup_free_ _unused_ char *d = run_net(t, "d", "{\"network\": \"nope\"}", ENOENT);
        assert_false(exists(t, "d"));
        _cleanup_free_ _unused_ char *e = run_net(t, "e", "{\"network\": \"none\", \"ports\": [{\"host_port\": 18182, "
                                                 "\"container_port\": 80}]}", EINVAL);

        /* a lease whose container vanished while the daemon was down */
        host_close(t);
        t->net = network_host_free(t->net);
        test_write_file(test_path("%s/networks/default.leases/10.88.0.50", t->state),
                        "{\"container\": \"00000000000000000000000000000000000000000000000000000000000000aa\", "
                        "\"mac\": \"0a:70:6c:00:00:50\"}");
        network_open(t);
        host_open(t);
        assert_false(test_exists(test_path("%s/networks/default.leases/10.88.0.50", t->state)));
        _cleanup_free_ char *ip_a = str_of(t, "a", "ip_address");
        assert_string_equal(ip_a, "10.88.0.2");

        /* destroy: the address and the ports go */
        OK(container_host_destroy(t->h, a, false, E));
        assert_int_equal(network_lease_find(t->net, a, NULL), -ENOENT);
        assert_false(test_exists(test_path("%s/networks/ports/%s.json", t->state, a)));
        _cleanup_free_ char *rules2 = NULL;
        OK(network_rules_text(t->net, &rules2, E));
        assert_null(strstr(rules2, "dnat"));
}

int main(void) {
        if (!getenv("PL_AGENT_BIN"))
                test_program_skip_or_fail("PL_AGENT_BIN, the agent binary (run through ctest)");
        const char *missing = test_missing_tool("qemu-img tar sha256sum");
        if (missing)
                test_program_skip_or_fail(missing);
        if (test_tmpdir_make(layout_root, sizeof layout_root, "test-container-image") < 0)
                return 1;
        _cleanup_free_ char *script = test_pathf("%s/make-layout.sh", layout_root);
        test_write_file(script, layout_script);
        if (test_sh("sh '%s' '%s'", script, layout_root) != 0) {
                fprintf(stderr, "building the test image failed\n");
                return 1;
        }
#define CASE(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        const struct CMUnitTest tests[] = {
                CASE(test_create_and_commit),
                CASE(test_transitions),
                CASE(test_remove_running),
                CASE(test_conflicts),
                CASE(test_failed_start_new),
                CASE(test_failed_start_existing),
                CASE(test_main_exits),
                CASE(test_vm_dies),
                CASE(test_exec),
                CASE(test_signal_and_wait),
                CASE(test_archives),
                CASE(test_list_labels),
                CASE(test_bad_config),
                CASE(test_mounts_bad),
                CASE(test_mounts_users),
                CASE(test_mounts_pending_restart),
                CASE(test_recover_running),
                CASE(test_recover_leftovers),
                CASE(test_log_rotation),
                CASE(test_main_stdin_tty_frames),
                CASE(test_rename),
                CASE(test_gc_and_vms),
                CASE(test_metrics),
                CASE(test_uids),
                CASE(test_network_leases),
        };
        int r = test_run_group(tests, NULL, NULL);
        test_tmpdir_remove(layout_root);
        return r;
}
