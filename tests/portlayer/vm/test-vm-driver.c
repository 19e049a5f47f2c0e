/* test-vm-driver.c: the VM driver contract, run against both tables.
 *
 * The libvirt table runs against libvirt's test driver (test:///default):
 * real libvirt code for define, start, destroy, undefine, listing, metadata,
 * errors and lifecycle events through the event loop thread, without QEMU.
 * The test driver accepts our domain XML as it is (direct kernel boot,
 * channels, vsock) and never looks at the files, and each test starts from
 * its default state: one foreign running domain named "test". The fake gets
 * the same foreign domain, and the same test cases run against both. Cases
 * that only one side can express (connection errors, the embedded root's
 * qemu.conf, injected failures) follow. Booting a real guest is not a unit
 * test: it needs a kernel and takes seconds under TCG. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "common/base/error.h"
#include "common/base/io-util.h"
#include "portlayer/vm/vm-driver.h"

#define EVENT_TIMEOUT_MS 10000
#define EVENTS_MAX 256

typedef struct Recorded {
        char name[VM_NAME_MAX + 1];
        VmState state;
        char reason[32];
        VmState queried; /* what state() said from inside the callback */
} Recorded;

typedef struct Recorder {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        size_t n;
        Recorded events[EVENTS_MAX];
        VmDriver *query; /* when set, the callback calls state() on it */
} Recorder;

typedef struct Backend {
        const VmDriverOps *ops;
        const char *uri;
} Backend;

typedef struct Ctx {
        const Backend *backend;
        VmDriver *d;
        Recorder rec;
} Ctx;

static const Backend libvirt_backend = { &vm_driver_libvirt, "test:///default" };
static const Backend fake_backend = { &vm_driver_fake, NULL };

static void on_event(const VmEvent *ev, void *userdata) {
        Recorder *rec = userdata;
        VmState queried = VM_STATE_UNKNOWN;
        if (rec->query && vm_driver_state(rec->query, ev->name, &queried, NULL) < 0)
                queried = VM_STATE_UNKNOWN;

        pthread_mutex_lock(&rec->lock);
        if (rec->n < EVENTS_MAX) {
                Recorded *r = &rec->events[rec->n++];
                snprintf(r->name, sizeof r->name, "%s", ev->name);
                snprintf(r->reason, sizeof r->reason, "%s", ev->reason ? ev->reason : "");
                r->state = ev->state;
                r->queried = queried;
        }
        pthread_cond_broadcast(&rec->cond);
        pthread_mutex_unlock(&rec->lock);
}

static void recorder_init(Recorder *rec) {
        memset(rec, 0, sizeof(*rec));
        pthread_mutex_init(&rec->lock, NULL);
        pthread_cond_init(&rec->cond, NULL);
}

static size_t recorder_count(Recorder *rec) {
        pthread_mutex_lock(&rec->lock);
        size_t n = rec->n;
        pthread_mutex_unlock(&rec->lock);
        return n;
}

/* Waits for an event (name, state) at index >= from; returns its index, or
 * fails the test. Finding events in order proves their order. */
static size_t wait_event(Recorder *rec, size_t from, const char *name, VmState state, const char *reason) {
        uint64_t deadline = deadline_after_ms(EVENT_TIMEOUT_MS);
        pthread_mutex_lock(&rec->lock);
        for (;;) {
                for (size_t i = from; i < rec->n; i++) {
                        Recorded *r = &rec->events[i];
                        if (strcmp(r->name, name) == 0 && r->state == state &&
                            (!reason || strcmp(r->reason, reason) == 0)) {
                                pthread_mutex_unlock(&rec->lock);
                                return i;
                        }
                }
                if (deadline_poll_ms(deadline) == 0)
                        break;
                pthread_mutex_unlock(&rec->lock);
                usleep(2000);
                pthread_mutex_lock(&rec->lock);
        }
        pthread_mutex_unlock(&rec->lock);
        fail_msg("no event %s -> %s (%s) after index %zu", name, vm_state_to_string(state), reason ? reason : "*",
                 from);
        return 0;
}

static VmSpec make_spec(const char *name, const char *id) {
        static const VmDisk disk = { .path = "/nonexistent/root.img", .format = VM_DISK_RAW, .serial = "pl-root",
                                     .read_only = true };
        return (VmSpec) {
                .name = name, .container_id = id, .memory_mib = 128, .vcpus = 1, .accel = VM_ACCEL_TCG,
                .kernel = "/nonexistent/vmlinuz", .initrd = "/nonexistent/initrd", .cmdline = "console=ttyS0",
                .disks = &disk, .n_disks = 1, .agent_socket = "/nonexistent/agent.sock",
                .console_log = "/nonexistent/console.log",
        };
}

static int setup(void **state) {
        const Backend *backend = *state;
        Ctx *ctx = calloc(1, sizeof(*ctx));
        _cleanup_error_ Error *err = NULL;
        assert_non_null(ctx);
        ctx->backend = backend;
        recorder_init(&ctx->rec);
        if (vm_driver_open(backend->ops, &ctx->d, backend->uri, NULL, on_event, &ctx->rec, &err) < 0) {
                print_error("open %s: %s\n", backend->ops->name, error_text(err));
                free(ctx);
                return -1;
        }
        if (backend->ops == &vm_driver_fake)
                assert_int_equal(vm_fake_add_foreign(ctx->d, "test"), 0);
        *state = ctx;
        return 0;
}

/* Destroys whatever a failed test left, then closes. */
static int teardown(void **state) {
        Ctx *ctx = *state;
        char **names = NULL;
        size_t n = 0;
        if (vm_driver_list_ours(ctx->d, &names, &n, NULL) == 0) {
                for (size_t i = 0; i < n; i++)
                        vm_driver_destroy(ctx->d, names[i], NULL);
                vm_names_free(names, n);
        }
        vm_driver_close(ctx->d);
        pthread_cond_destroy(&ctx->rec.cond);
        pthread_mutex_destroy(&ctx->rec.lock);
        free(ctx);
        return 0;
}

static VmState state_of(VmDriver *d, const char *name) {
        VmState st = VM_STATE_UNKNOWN;
        _cleanup_error_ Error *err = NULL;
        if (vm_driver_state(d, name, &st, &err) < 0)
                fail_msg("state of %s: %s", name, error_text(err));
        return st;
}

static void create_ok(VmDriver *d, const VmSpec *spec) {
        _cleanup_error_ Error *err = NULL;
        if (vm_driver_create(d, spec, &err) < 0)
                fail_msg("create %s: %s", spec->name, error_text(err));
}

/* --- the shared contract --- */

static void test_create_state_destroy(void **state) {
        Ctx *ctx = *state;
        VmSpec spec = make_spec("pl-a", "a");

        create_ok(ctx->d, &spec);
        assert_int_equal(state_of(ctx->d, "pl-a"), VM_STATE_RUNNING);
        size_t i = wait_event(&ctx->rec, 0, "pl-a", VM_STATE_RUNNING, NULL);

        _cleanup_error_ Error *err = NULL;
        assert_int_equal(vm_driver_destroy(ctx->d, "pl-a", &err), 0);
        assert_int_equal(state_of(ctx->d, "pl-a"), VM_STATE_MISSING);
        i = wait_event(&ctx->rec, i + 1, "pl-a", VM_STATE_SHUTOFF, "destroyed");
        wait_event(&ctx->rec, i + 1, "pl-a", VM_STATE_MISSING, "undefined");

        /* Idempotent, and the name is free again. */
        assert_int_equal(vm_driver_destroy(ctx->d, "pl-a", &err), 0);
        assert_int_equal(vm_driver_destroy(ctx->d, "pl-never", &err), 0);
        assert_null(err);
        create_ok(ctx->d, &spec);
        assert_int_equal(state_of(ctx->d, "pl-a"), VM_STATE_RUNNING);
}

static void test_create_duplicate_name(void **state) {
        Ctx *ctx = *state;
        VmSpec spec = make_spec("pl-a", "a");
        _cleanup_error_ Error *err = NULL;

        create_ok(ctx->d, &spec);
        spec.container_id = "other";
        assert_int_equal(vm_driver_create(ctx->d, &spec, &err), -EEXIST);
        assert_string_equal(error_text(err), "create domain 'pl-a': a domain of that name exists");

        /* Someone else's domain blocks the name too. */
        err = error_free(err);
        spec.name = "test";
        assert_int_equal(vm_driver_create(ctx->d, &spec, &err), -EEXIST);
        assert_int_equal(state_of(ctx->d, "test"), VM_STATE_RUNNING);
}

/* A libvirt error (uuid taken) comes back with our context in front. */
static void test_create_duplicate_uuid(void **state) {
        Ctx *ctx = *state;
        VmSpec a = make_spec("pl-a", "a"), b = make_spec("pl-b", "b");
        a.uuid = b.uuid = "4c03f284-fa8a-43b9-8515-2a9fdd0586e4";
        _cleanup_error_ Error *err = NULL;

        create_ok(ctx->d, &a);
        assert_true(vm_driver_create(ctx->d, &b, &err) < 0);
        const char *msg = error_text(err);
        print_message("%s: %s\n", ctx->backend->ops->name, msg);
        assert_int_equal(strncmp(msg, "create domain 'pl-b': ", 22), 0);
        assert_non_null(strstr(msg, "pl-a"));
        assert_int_equal(state_of(ctx->d, "pl-b"), VM_STATE_MISSING);
}

static bool names_contain(char **names, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(names[i], name) == 0)
                        return true;
        return false;
}

static void test_list_ours(void **state) {
        Ctx *ctx = *state;
        char **names = NULL;
        size_t n = 99;
        _cleanup_error_ Error *err = NULL;

        assert_int_equal(vm_driver_list_ours(ctx->d, &names, &n, &err), 0);
        assert_int_equal(n, 0);
        names = vm_names_free(names, n);

        VmSpec a = make_spec("pl-a", "a"), b = make_spec("pl-b", "b");
        create_ok(ctx->d, &a);
        create_ok(ctx->d, &b);
        assert_int_equal(vm_driver_list_ours(ctx->d, &names, &n, &err), 0);
        assert_int_equal(n, 2);
        assert_true(names_contain(names, n, "pl-a"));
        assert_true(names_contain(names, n, "pl-b"));
        assert_false(names_contain(names, n, "test"));
        assert_null(names[n]);
        names = vm_names_free(names, n);

        assert_int_equal(vm_driver_destroy(ctx->d, "pl-a", &err), 0);
        assert_int_equal(vm_driver_list_ours(ctx->d, &names, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_string_equal(names[0], "pl-b");
        vm_names_free(names, n);
}

static void test_invalid_input(void **state) {
        Ctx *ctx = *state;
        VmSpec spec = make_spec("pl/a", "a");
        _cleanup_error_ Error *err = NULL;
        VmState st;

        assert_int_equal(vm_driver_create(ctx->d, &spec, &err), -EINVAL);
        assert_string_equal(error_text(err), "invalid VM spec: name 'pl/a': must match [A-Za-z0-9_.-]{1,64}");
        err = error_free(err);
        spec = make_spec("pl-a", "a");
        spec.cmdline = "console=ttyS0\ninit=/bin/sh";
        assert_int_equal(vm_driver_create(ctx->d, &spec, &err), -EINVAL);
        assert_int_equal(state_of(ctx->d, "pl-a"), VM_STATE_MISSING);
        assert_int_equal(vm_driver_create(ctx->d, NULL, NULL), -EINVAL);

        err = error_free(err);
        assert_int_equal(vm_driver_state(ctx->d, "../x", &st, &err), -EINVAL);
        assert_string_equal(error_text(err), "state of domain '../x': invalid name");
        assert_int_equal(vm_driver_destroy(ctx->d, "", NULL), -EINVAL);
        assert_int_equal(vm_driver_destroy(ctx->d, NULL, NULL), -EINVAL);
        assert_int_equal(vm_driver_state(ctx->d, "pl-missing", &st, NULL), 0);
        assert_int_equal(st, VM_STATE_MISSING);
}

/* The contract allows driver calls from a callback. */
static void test_callback_may_call_driver(void **state) {
        Ctx *ctx = *state;
        VmSpec spec = make_spec("pl-a", "a");

        ctx->rec.query = ctx->d;
        create_ok(ctx->d, &spec);
        size_t i = wait_event(&ctx->rec, 0, "pl-a", VM_STATE_RUNNING, NULL);
        assert_int_equal(vm_driver_destroy(ctx->d, "pl-a", NULL), 0);
        i = wait_event(&ctx->rec, i + 1, "pl-a", VM_STATE_MISSING, "undefined");
        pthread_mutex_lock(&ctx->rec.lock);
        VmState queried = ctx->rec.events[i].queried;
        pthread_mutex_unlock(&ctx->rec.lock);
        assert_int_equal(queried, VM_STATE_MISSING);
}

/* --- libvirt only --- */

static void test_libvirt_open_errors(void **state) {
        VmDriver *d = NULL;
        _cleanup_error_ Error *err = NULL;

        assert_true(vm_driver_open(&vm_driver_libvirt, &d, "bogus:///nothing", NULL, NULL, NULL, &err) < 0);
        assert_null(d);
        print_message("bogus URI: %s\n", error_text(err));
        assert_int_equal(strncmp(error_text(err), "open 'bogus:///nothing': ", 25), 0);

        err = error_free(err);
        assert_int_equal(vm_driver_open(&vm_driver_libvirt, &d, NULL, "relative/dir", NULL, NULL, &err), -EINVAL);
        assert_string_equal(error_text(err), "VM driver: an absolute state directory is required");
        assert_int_equal(vm_driver_open(&vm_driver_libvirt, &d, NULL, NULL, NULL, NULL, NULL), -EINVAL);

        err = error_free(err);
        const char *deep = "/tmp/0123456789/0123456789/0123456789/0123456789";
        assert_int_equal(vm_driver_open(&vm_driver_libvirt, &d, NULL, deep, NULL, NULL, &err), -ENAMETOOLONG);
        assert_non_null(strstr(error_text(err), "QEMU's monitor socket path would not fit"));

        err = error_free(err);
        assert_int_equal(vm_driver_open(&vm_driver_libvirt, &d, "qemu:///embed?x=1", NULL, NULL, NULL, &err), -EINVAL);
        assert_string_equal(error_text(err), "URI 'qemu:///embed?x=1': no root= parameter");
        err = error_free(err);
        assert_int_equal(vm_driver_open(&vm_driver_libvirt, &d, "qemu:///embed?root=/a%20b", NULL, NULL, NULL, &err),
                         -EINVAL);
        assert_null(d);
}

/* Two connections share the one event thread; closing one must not stop
 * the other's events. test:///default connections share their domains. */
static void test_libvirt_two_connections(void **state) {
        Ctx *ctx = *state;
        Recorder other;
        VmDriver *d2 = NULL;
        recorder_init(&other);
        assert_int_equal(vm_driver_open(&vm_driver_libvirt, &d2, "test:///default", NULL, on_event, &other, NULL), 0);

        VmSpec a = make_spec("pl-a", "a"), b = make_spec("pl-b", "b");
        create_ok(ctx->d, &a);
        wait_event(&ctx->rec, 0, "pl-a", VM_STATE_RUNNING, NULL);
        wait_event(&other, 0, "pl-a", VM_STATE_RUNNING, NULL);
        assert_int_equal(state_of(d2, "pl-a"), VM_STATE_RUNNING);

        size_t seen = recorder_count(&other);
        vm_driver_close(d2);
        create_ok(ctx->d, &b);
        wait_event(&ctx->rec, 0, "pl-b", VM_STATE_RUNNING, NULL);
        usleep(100000);
        assert_int_equal(recorder_count(&other), seen); /* nothing after close */
        pthread_cond_destroy(&other.cond);
        pthread_mutex_destroy(&other.lock);
}

static void test_libvirt_kvm_unusable(void **state) {
        Ctx *ctx = *state;
        VmAccel accel;
        _cleanup_free_ char *reason = NULL;
        VmSpec spec = make_spec("pl-k", "k");
        spec.accel = VM_ACCEL_KVM;
        _cleanup_error_ Error *err = NULL;
        if (vm_accel_detect(VM_ACCEL_KVM, &accel, &reason) == 0) {
                /* KVM works here: nothing to refuse, and the driver must not
                 * refuse it either (the test driver may still reject the
                 * domain on its own terms). Not a skip: this is the other
                 * half of the same rule. */
                if (vm_driver_create(ctx->d, &spec, &err) < 0)
                        assert_null(strstr(error_text(err), "KVM unusable"));
                return;
        }
        assert_int_equal(vm_driver_create(ctx->d, &spec, &err), -ENODEV);
        print_message("%s\n", error_text(err));
        assert_int_equal(strncmp(error_text(err), "create domain 'pl-k': KVM unusable: ", 36), 0);
        assert_int_equal(state_of(ctx->d, "pl-k"), VM_STATE_MISSING);
}

/* The default URI: the embedded driver, with a generated qemu.conf. Opening
 * it needs the libvirt-qemu user and QEMU (capabilities are probed once);
 * where that fails the error must still say what was opened. */
static void test_libvirt_embed_root(void **state) {
        char dir[256];
        _cleanup_free_ char *conf_path = NULL, *conf = NULL;
        _cleanup_error_ Error *err = NULL;
        VmDriver *d = NULL;

        assert_int_equal(test_tmpdir_make(dir, sizeof dir, "vm-driver"), 0);
        assert_true(asprintf(&conf_path, "%s/libvirt/etc/qemu.conf", dir) > 0);
        /* an older qemu.conf of ours (its first line says so) is brought up
         * to date: it ran QEMU as root */
        test_write_file_p(conf_path, "# qemu.conf for libvirt's embedded QEMU driver, written by portlayer\n"
                                     "user = \"root\"\ngroup = \"root\"\n");
        int r = vm_driver_open(&vm_driver_libvirt, &d, NULL, dir, NULL, NULL, &err);
        conf = test_read_file(conf_path, NULL);
        assert_non_null(conf);
        assert_null(strstr(conf, "\"root\""));
        assert_non_null(strstr(conf, "\nuser = \"libvirt-qemu\"\n"));
        assert_non_null(strstr(conf, "\ngroup = \"libvirt-qemu\"\n"));
        assert_non_null(strstr(conf, "\ndynamic_ownership = 0\n"));
        assert_non_null(strstr(conf, "\nseccomp_sandbox = 1\n"));
        assert_non_null(strstr(conf, "\nstdio_handler = \"file\"\n"));
        /* QEMU users cross the root to libvirt's per-domain directories */
        struct stat st;
        char *root = test_pathf("%s/libvirt", dir);
        assert_int_equal(stat(root, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0711);
        free(root);
        if (r < 0) {
                print_message("embedded driver unavailable here: %s\n", error_text(err));
                assert_int_equal(strncmp(error_text(err), "open 'qemu:///embed?root=", 25), 0);
        } else {
                char **names = NULL;
                size_t n = 99;
                assert_int_equal(vm_driver_list_ours(d, &names, &n, NULL), 0);
                assert_int_equal(n, 0);
                vm_names_free(names, n);
                vm_driver_close(d);
                d = NULL;
        }
        /* someone else's qemu.conf (no such first line) is left alone */
        test_write_file(conf_path, "user = \"someone\"\n");
        _cleanup_error_ Error *err2 = NULL;
        if (vm_driver_open(&vm_driver_libvirt, &d, NULL, dir, NULL, NULL, &err2) >= 0)
                vm_driver_close(d);
        free(conf);
        conf = test_read_file(conf_path, NULL);
        assert_string_equal(conf, "user = \"someone\"\n");
        assert_int_equal(test_tmpdir_remove(dir), 0);
}

/* An existing qemu.conf is the operator's: never overwritten. */
static void test_libvirt_embed_conf_kept(void **state) {
        char dir[256];
        _cleanup_free_ char *root = NULL, *etc = NULL, *conf_path = NULL, *uri = NULL, *conf = NULL;
        VmDriver *d = NULL;

        assert_int_equal(test_tmpdir_make(dir, sizeof dir, "vm-driver"), 0);
        assert_true(asprintf(&root, "%s/root", dir) > 0);
        assert_true(asprintf(&etc, "%s/etc", root) > 0);
        assert_true(asprintf(&conf_path, "%s/qemu.conf", etc) > 0);
        assert_true(asprintf(&uri, "qemu:///embed?root=%s", root) > 0);
        assert_int_equal(mkdir(root, 0700), 0);
        assert_int_equal(mkdir(etc, 0700), 0);
        FILE *f = fopen(conf_path, "we");
        assert_non_null(f);
        fputs("# mine\nuser = \"root\"\ngroup = \"root\"\nstdio_handler = \"file\"\n", f);
        fclose(f);
        if (vm_driver_open(&vm_driver_libvirt, &d, uri, NULL, NULL, NULL, NULL) == 0)
                vm_driver_close(d);
        conf = test_read_file(conf_path, NULL);
        assert_non_null(conf);
        assert_int_equal(strncmp(conf, "# mine\n", 7), 0);
        assert_int_equal(test_tmpdir_remove(dir), 0);
}

/* --- fake only --- */

static void test_fake_failures(void **state) {
        Ctx *ctx = *state;
        VmSpec spec = make_spec("pl-a", "a");
        _cleanup_error_ Error *err = NULL;
        char **names = NULL;
        size_t n = 0;
        VmState st;

        vm_fake_fail_next(ctx->d, VM_FAKE_OP_CREATE, EIO);
        assert_int_equal(vm_driver_create(ctx->d, &spec, &err), -EIO);
        assert_string_equal(error_text(err), "create domain 'pl-a': injected failure (fake driver)");
        assert_int_equal(state_of(ctx->d, "pl-a"), VM_STATE_MISSING);

        /* A start failure undoes the define, as the real driver does. */
        vm_fake_fail_next(ctx->d, VM_FAKE_OP_START, -ENOSPC);
        assert_int_equal(vm_driver_create(ctx->d, &spec, NULL), -ENOSPC);
        assert_int_equal(state_of(ctx->d, "pl-a"), VM_STATE_MISSING);
        wait_event(&ctx->rec, 0, "pl-a", VM_STATE_MISSING, "undefined");

        create_ok(ctx->d, &spec);
        vm_fake_fail_next(ctx->d, VM_FAKE_OP_DESTROY, EBUSY);
        assert_int_equal(vm_driver_destroy(ctx->d, "pl-a", NULL), -EBUSY);
        vm_fake_fail_next(ctx->d, VM_FAKE_OP_STATE, ETIMEDOUT);
        assert_int_equal(vm_driver_state(ctx->d, "pl-a", &st, NULL), -ETIMEDOUT);
        vm_fake_fail_next(ctx->d, VM_FAKE_OP_LIST, ENOTCONN);
        assert_int_equal(vm_driver_list_ours(ctx->d, &names, &n, NULL), -ENOTCONN);
        /* Each failure happened once. */
        assert_int_equal(state_of(ctx->d, "pl-a"), VM_STATE_RUNNING);
        assert_int_equal(vm_driver_list_ours(ctx->d, &names, &n, NULL), 0);
        assert_int_equal(n, 1);
        vm_names_free(names, n);
        assert_int_equal(vm_driver_destroy(ctx->d, "pl-a", NULL), 0);
}

static void test_fake_guest_power_off(void **state) {
        Ctx *ctx = *state;
        VmSpec spec = make_spec("pl-a", "a");
        char **names = NULL;
        size_t n = 0;

        create_ok(ctx->d, &spec);
        assert_int_equal(vm_fake_set_state(ctx->d, "pl-a", VM_STATE_SHUTOFF, "shutdown"), 0);
        size_t i = wait_event(&ctx->rec, 0, "pl-a", VM_STATE_SHUTOFF, "shutdown");
        assert_int_equal(state_of(ctx->d, "pl-a"), VM_STATE_SHUTOFF);

        /* Persistent: still listed until destroyed, for reconciliation. */
        assert_int_equal(vm_driver_list_ours(ctx->d, &names, &n, NULL), 0);
        assert_int_equal(n, 1);
        vm_names_free(names, n);

        assert_int_equal(vm_driver_destroy(ctx->d, "pl-a", NULL), 0);
        size_t j = wait_event(&ctx->rec, i + 1, "pl-a", VM_STATE_MISSING, "undefined");
        assert_int_equal(j, i + 1); /* no "destroyed": it was not running */
        assert_int_equal(vm_fake_set_state(ctx->d, "pl-a", VM_STATE_RUNNING, NULL), -ENOENT);
        assert_int_equal(vm_fake_set_state(ctx->d, "test", VM_STATE_MISSING, NULL), -EINVAL);
}

static void test_fake_info_and_xml(void **state) {
        Ctx *ctx = *state;
        VmSpec spec = make_spec("pl-a", "cid-1");
        VmFakeInfo info;
        _cleanup_free_ char *xml = NULL;

        spec.accel = VM_ACCEL_AUTO;
        spec.vsock = true;
        create_ok(ctx->d, &spec);
        assert_int_equal(vm_fake_info(ctx->d, "pl-a", &info), 0);
        assert_string_equal(info.container_id, "cid-1");
        assert_int_equal(info.accel, VM_ACCEL_TCG);
        assert_int_equal(info.memory_mib, 128);
        assert_int_equal(info.n_disks, 1);
        assert_true(info.vsock);
        assert_int_equal(vm_fake_domain_xml(ctx->d, "pl-a", &xml), 0);
        assert_non_null(strstr(xml, "<pl:container xmlns:pl=\"https://portlayer.dev/xmlns/vm/1\" id=\"cid-1\"/>"));
        assert_non_null(strstr(xml, "<vsock model=\"virtio\">"));

        assert_int_equal(vm_fake_info(ctx->d, "test", &info), -ENOENT);
        assert_int_equal(vm_fake_add_foreign(ctx->d, "test"), -EEXIST);
        vm_fake_flush(ctx->d);
        assert_true(recorder_count(&ctx->rec) >= 1);
}

/* What both drivers say before any QEMU is asked: a bad forward, a missing
 * domain, a domain without a user-mode NIC. */
static void test_forward_errors(void **state) {
        Ctx *ctx = *state;
        VmSpec spec = make_spec("pl-a", "a");
        VmNic nic = { .type = VM_NIC_BRIDGE, .mac = "0a:70:6c:00:00:01", .bridge = "plbr0" };
        spec.nics = &nic;
        spec.n_nics = 1;
        create_ok(ctx->d, &spec);
        VmForward fw = { .protocol = "tcp", .host_ip = "127.0.0.1", .host_port = 8080, .guest_port = 80 };
        _cleanup_error_ Error *err = NULL;
        assert_int_equal(vm_driver_forward(ctx->d, "pl-a", &fw, true, &err), -EOPNOTSUPP);
        assert_string_equal(error_text(err), "port forward of domain 'pl-a': no user-mode NIC");
        err = error_free(err);
        assert_int_equal(vm_driver_forward(ctx->d, "pl-none", &fw, true, &err), -ENOENT);
        assert_string_equal(error_text(err), "port forward of domain 'pl-none': no such domain");
        err = error_free(err);
        fw.protocol = "icmp";
        assert_int_equal(vm_driver_forward(ctx->d, "pl-a", &fw, true, &err), -EINVAL);
        assert_string_equal(error_text(err), "invalid port forward: protocol 'icmp': must be tcp or udp");
}

/* The fake keeps forwards as QEMU would: per running domain, a host port
 * once across the host, gone when the domain stops. */
static void test_fake_forwards(void **state) {
        Ctx *ctx = *state;
        VmNic user = { .type = VM_NIC_USER, .mac = "0a:70:6c:00:00:01" };
        VmSpec a = make_spec("pl-a", "a"), b = make_spec("pl-b", "b");
        a.nics = b.nics = &user;
        a.n_nics = b.n_nics = 1;
        create_ok(ctx->d, &a);
        create_ok(ctx->d, &b);
        VmForward fw = { .protocol = "tcp", .host_ip = "127.0.0.1", .host_port = 8080, .guest_port = 80 };
        VmForward any = { .protocol = "tcp", .host_port = 8080, .guest_port = 81 };
        VmForward udp = { .protocol = "udp", .host_ip = "127.0.0.1", .host_port = 8080, .guest_port = 80 };
        _cleanup_error_ Error *err = NULL;
        assert_int_equal(vm_driver_forward(ctx->d, "pl-a", &fw, true, NULL), 0);
        assert_int_equal(vm_driver_forward(ctx->d, "pl-a", &fw, true, NULL), 0); /* the same again */
        assert_int_equal(vm_fake_forward_exists(ctx->d, "pl-a", &fw), 1);
        assert_int_equal(vm_fake_forward_exists(ctx->d, "pl-b", &fw), 0);
        assert_int_equal(vm_driver_forward(ctx->d, "pl-b", &fw, true, &err), -EADDRINUSE);
        assert_string_equal(error_text(err), "add port forward of domain 'pl-b': host port tcp 127.0.0.1:8080 is taken");
        err = error_free(err);
        assert_int_equal(vm_driver_forward(ctx->d, "pl-b", &any, true, &err), -EADDRINUSE); /* all addresses */
        err = error_free(err);
        fw.guest_port = 90; /* the same host port to another guest port: taken too */
        assert_int_equal(vm_driver_forward(ctx->d, "pl-a", &fw, true, &err), -EADDRINUSE);
        fw.guest_port = 80;
        assert_int_equal(vm_driver_forward(ctx->d, "pl-b", &udp, true, NULL), 0); /* another protocol */

        VmFakeInfo info;
        assert_int_equal(vm_fake_info(ctx->d, "pl-a", &info), 0);
        assert_int_equal(info.n_forwards, 1);
        assert_int_equal(info.n_nics, 1);
        assert_int_equal(vm_driver_forward(ctx->d, "pl-a", &fw, false, NULL), 0);
        err = error_free(err);
        assert_int_equal(vm_driver_forward(ctx->d, "pl-a", &fw, false, &err), -ENOENT);
        assert_string_equal(error_text(err),
                            "remove port forward tcp:127.0.0.1:8080 of domain 'pl-a': no such forward");
        assert_int_equal(vm_driver_forward(ctx->d, "pl-b", &any, true, NULL), 0); /* free now */

        /* A stopped domain has no QEMU and no forwards. */
        assert_int_equal(vm_fake_set_state(ctx->d, "pl-b", VM_STATE_SHUTOFF, "shutdown"), 0);
        assert_int_equal(vm_fake_forward_exists(ctx->d, "pl-b", &any), 0);
        err = error_free(err);
        assert_int_equal(vm_driver_forward(ctx->d, "pl-b", &any, true, &err), -EBADFD);
        assert_int_equal(vm_driver_forward(ctx->d, "pl-a", &any, true, NULL), 0);
        assert_int_equal(vm_fake_forward_exists(ctx->d, "pl-x", &any), -ENOENT);
}

/* --- accelerator detection --- */

static char *write_temp(const char *text) {
        char *path = strdup("/tmp/plvt-cpuinfo.XXXXXX");
        int fd = path ? mkstemp(path) : -1;
        assert_true(fd >= 0);
        assert_int_equal(write_all(fd, text, strlen(text)), 0);
        close(fd);
        return path;
}

static void test_accel_detect(void **state) {
        _cleanup_free_ char *plain = write_temp("processor\t: 0\nflags\t\t: fpu vme svmx vmxx sse2\n\n");
        _cleanup_free_ char *virt = write_temp("processor\t: 0\nflags\t\t: fpu vmx sse2\n");
        VmAccel accel = VM_ACCEL_AUTO;
        char *reason = NULL;

        assert_int_equal(vm_accel_detect_at(VM_ACCEL_AUTO, plain, "/dev/null", &accel, &reason), 0);
        assert_int_equal(accel, VM_ACCEL_TCG);
        assert_non_null(strstr(reason, "no vmx/svm in /tmp/plvt-cpuinfo."));
        free(reason);
        assert_int_equal(vm_accel_detect_at(VM_ACCEL_KVM, plain, "/dev/null", &accel, &reason), -ENODEV);
        free(reason);

        /* vmx, but the device does not answer KVM_GET_API_VERSION. */
        assert_int_equal(vm_accel_detect_at(VM_ACCEL_AUTO, virt, "/dev/null", &accel, &reason), 0);
        assert_int_equal(accel, VM_ACCEL_TCG);
        assert_non_null(strstr(reason, "/dev/null: KVM_GET_API_VERSION returned -1, not 12"));
        free(reason);
        assert_int_equal(vm_accel_detect_at(VM_ACCEL_AUTO, virt, "/nonexistent/kvm", &accel, &reason), 0);
        assert_string_equal(reason, "cannot open /nonexistent/kvm: No such file or directory");
        free(reason);
        assert_int_equal(vm_accel_detect_at(VM_ACCEL_KVM, "/nonexistent/cpuinfo", "/dev/kvm", &accel, NULL), -ENODEV);

        assert_int_equal(vm_accel_detect_at(VM_ACCEL_TCG, plain, "/dev/null", &accel, &reason), 0);
        assert_int_equal(accel, VM_ACCEL_TCG);
        assert_string_equal(reason, "TCG requested");
        free(reason);
        assert_int_equal(vm_accel_detect_at((VmAccel) 9, plain, "/dev/null", &accel, NULL), -EINVAL);

        /* This host: whatever it is, AUTO resolves and says why. */
        assert_int_equal(vm_accel_detect(VM_ACCEL_AUTO, &accel, &reason), 0);
        print_message("this host: %s (%s)\n", vm_accel_to_string(accel), reason);
        free(reason);
        unlink(plain);
        unlink(virt);
}

#define BOTH(f)                                                                        \
        cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, (void *) &libvirt_backend), \
                cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, (void *) &fake_backend)
#define LIBVIRT(f) cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, (void *) &libvirt_backend)
#define FAKE(f) cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, (void *) &fake_backend)

int main(void) {
        const struct CMUnitTest tests[] = {
                BOTH(test_create_state_destroy),
                BOTH(test_create_duplicate_name),
                BOTH(test_create_duplicate_uuid),
                BOTH(test_list_ours),
                BOTH(test_invalid_input),
                BOTH(test_callback_may_call_driver),
                BOTH(test_forward_errors),
                FAKE(test_fake_forwards),
                cmocka_unit_test(test_libvirt_open_errors),
                LIBVIRT(test_libvirt_two_connections),
                LIBVIRT(test_libvirt_kvm_unusable),
                cmocka_unit_test(test_libvirt_embed_root),
                cmocka_unit_test(test_libvirt_embed_conf_kept),
                FAKE(test_fake_failures),
                FAKE(test_fake_guest_power_off),
                FAKE(test_fake_info_and_xml),
                cmocka_unit_test(test_accel_detect),
        };
        return test_run_group(tests, NULL, NULL);
}
