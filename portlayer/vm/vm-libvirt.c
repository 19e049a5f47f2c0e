/* vm-libvirt.c: the real VM driver, on libvirt (the only file including it).
 *
 * By default it opens libvirt's embedded QEMU driver,
 * qemu:///embed?root=<state_dir>/libvirt, so no libvirtd runs: the driver
 * lives in this process, and the QEMU processes it starts outlive it and are
 * found again by the next open of the same root (only one process may hold a
 * root at a time). Before the first open it writes <root>/etc/qemu.conf with
 * what the embedded driver needs on a host without libvirtd, virtlogd or
 * libvirt-daemon-system; each line says why. Any other URI is used as given.
 *
 * libvirt delivers domain events, and reaps guests that power off, only while
 * someone runs its event loop. The process registers libvirt's default event
 * implementation once, and one event thread runs it for as long as at least
 * one driver is open. Closing a driver deregisters its callback and then
 * waits until the event thread has passed a barrier (or has stopped), so no
 * callback still runs with the freed driver.
 *
 * libvirt errors become our Error with the operation as context,
 * "create domain 'pl-x': <libvirt message>", and an errno chosen from the
 * libvirt error code. libvirt's default error printer is silenced: errors are
 * reported once, by our caller. */
#include "portlayer/vm/vm-driver.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/base/proc-util.h"
#include "vm-xml-internal.h"

#define EMBED_URI_PREFIX "qemu:///embed"
/* libvirt binds <root>/lib/qemu/domain-<id>-<name cut to 20>/monitor.sock:
 * 58 bytes after the root for ids up to 7 digits, and sun_path holds 107. */
#define EMBED_ROOT_MAX 49
#define UNDEFINE_FLAGS (VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)

typedef struct LibvirtDriver {
        VmDriver base;
        virConnectPtr conn;
        int lifecycle_id; /* -1 when no callback is registered */
        VmEventFn cb;
        void *userdata;
        atomic_bool closing;
        bool holds_loop;
        char *root; /* the embedded driver's root; NULL for another URI */
} LibvirtDriver;

#define QEMU_CONF_HEADER "# qemu.conf for libvirt's embedded QEMU driver, written by portlayer\n"

static const char qemu_conf[] =
        QEMU_CONF_HEADER
        "# (portlayer/vm/vm-libvirt.c). It is rewritten while this first line stays;\n"
        "# remove that line to keep edits of your own.\n"
        "\n"
        "# A domain without a <seclabel> of its own runs QEMU as this unprivileged\n"
        "# user (created by scripts/setup.sh; libvirt also looks it up before it reads\n"
        "# this file). The daemon gives every container VM a uid and gid of its own\n"
        "# through a per-domain DAC label instead (docs/security.md); never root.\n"
        "user = \"libvirt-qemu\"\n"
        "group = \"libvirt-qemu\"\n"
        "\n"
        "# QEMU's stdout/stderr go straight to <root>/log/qemu/<name>.log; the\n"
        "# default handler, \"logd\", needs a running virtlogd.\n"
        "stdio_handler = \"file\"\n"
        "\n"
        "# No chown of kernels, initramfs and disk images to the QEMU user and back,\n"
        "# no trusted.libvirt.* xattrs remembering owners: the shared inputs stay\n"
        "# root's (readable, never writable, by QEMU users) and the daemon itself\n"
        "# gives each VM's own files to that VM's uid (relabel='no' per domain).\n"
        "dynamic_ownership = 0\n"
        "remember_owner = 0\n"
        "\n"
        "# QEMU's seccomp filter (-sandbox on, no obsolete calls, no privilege\n"
        "# elevation, no spawning, no resource control), as libvirt's default.\n"
        "seccomp_sandbox = 1\n"
        "\n"
        "# No AppArmor/SELinux confinement: Debian's AppArmor driver needs\n"
        "# virt-aa-helper and the profiles of libvirt-daemon-system, which the\n"
        "# embedded driver does not have. libvirt's DAC driver (the uid per VM)\n"
        "# is always on. For MAC confinement use qemu:///system.\n"
        "security_driver = \"none\"\n"
        "\n"
        "# Left at their defaults on purpose: one cgroup per VM (CPU shares and\n"
        "# accounting need it) and a private /dev mount namespace per QEMU. Where the\n"
        "# daemon may create neither (an unprivileged container), uncomment:\n"
        "#cgroup_controllers = [ ]\n"
        "#namespaces = [ ]\n";

/* --- libvirt errors --- */

static int errno_from_libvirt(const virError *e) {
        if (!e)
                return EIO;
        switch (e->code) {
        case VIR_ERR_NO_MEMORY:
                return ENOMEM;
        case VIR_ERR_NO_DOMAIN:
        case VIR_ERR_NO_DOMAIN_METADATA:
                return ENOENT;
        case VIR_ERR_DOM_EXIST:
                return EEXIST;
        case VIR_ERR_INVALID_ARG:
        case VIR_ERR_XML_ERROR:
        case VIR_ERR_XML_DETAIL:
        case VIR_ERR_OPERATION_INVALID:
                return EINVAL;
        case VIR_ERR_NO_SUPPORT:
        case VIR_ERR_ARGUMENT_UNSUPPORTED:
        case VIR_ERR_CONFIG_UNSUPPORTED:
        case VIR_ERR_OPERATION_UNSUPPORTED:
                return EOPNOTSUPP;
        case VIR_ERR_OPERATION_TIMEOUT:
                return ETIMEDOUT;
        case VIR_ERR_AUTH_FAILED:
        case VIR_ERR_AUTH_CANCELLED:
        case VIR_ERR_OPERATION_DENIED:
        case VIR_ERR_ACCESS_DENIED:
                return EACCES;
        case VIR_ERR_RESOURCE_BUSY:
                return EBUSY;
        case VIR_ERR_NO_CONNECT:
        case VIR_ERR_INVALID_CONN:
                return ENOTCONN;
        case VIR_ERR_SYSTEM_ERROR:
                return e->int1 > 0 ? e->int1 : EIO; /* int1 carries the errno */
        default:
                return EIO;
        }
}

/* Sets err from this thread's last libvirt error, prefixed with the
 * formatted context, and clears the libvirt error. */
_printf_(2, 3) static int libvirt_error(Error **err, const char *fmt, ...) {
        _cleanup_free_ char *context = NULL;
        const virError *e = virGetLastError();
        int code = errno_from_libvirt(e);
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&context, fmt, ap) < 0)
                context = NULL;
        va_end(ap);
        int r = error_set(err, code, "%s: %s", context ? context : "libvirt",
                          e && e->message ? e->message : "unknown libvirt error");
        virResetLastError();
        return r;
}

/* True (and the error cleared) when the last libvirt error has this code. */
static bool libvirt_error_is(int code) {
        if (virGetLastErrorCode() != code)
                return false;
        virResetLastError();
        return true;
}

static void libvirt_quiet(void *userdata, virErrorPtr e) {
        if (e && e->message)
                log_debug("libvirt: %s", e->message);
}

/* --- the process-wide event loop --- */

static pthread_once_t loop_once = PTHREAD_ONCE_INIT;
static int loop_init_error;
static pthread_mutex_t loop_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned loop_users;
static pthread_t loop_thread;
static atomic_bool loop_quit;

typedef struct LoopBarrier {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool passed;
} LoopBarrier;

static void loop_init(void) {
        if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0) {
                loop_init_error = -EIO;
                return;
        }
        virSetErrorFunc(NULL, libvirt_quiet);
}

static void *loop_main(void *arg) {
        while (!atomic_load(&loop_quit))
                if (virEventRunDefaultImpl() < 0) {
                        log_debug("libvirt event loop: %s", virGetLastErrorMessage());
                        virResetLastError();
                }
        return NULL;
}

/* A zero timeout wakes the loop; the callback removes it after one run. */
static void loop_wake_cb(int timer, void *opaque) {
        virEventRemoveTimeout(timer);
}

static void loop_barrier_cb(int timer, void *opaque) {
        LoopBarrier *b = opaque;
        virEventRemoveTimeout(timer);
        pthread_mutex_lock(&b->lock);
        b->passed = true;
        pthread_cond_signal(&b->cond);
        pthread_mutex_unlock(&b->lock);
}

/* Returns once the event thread has finished whatever callback it was
 * running when this was called. Call with loop_lock held (so the thread
 * cannot stop meanwhile), never from the event thread. */
static void loop_barrier(void) {
        LoopBarrier b = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false };
        if (virEventAddTimeout(0, loop_barrier_cb, &b, NULL) < 0) {
                log_debug("libvirt event loop: cannot add a timeout: %s", virGetLastErrorMessage());
                virResetLastError();
                return;
        }
        pthread_mutex_lock(&b.lock);
        while (!b.passed)
                pthread_cond_wait(&b.cond, &b.lock);
        pthread_mutex_unlock(&b.lock);
        pthread_cond_destroy(&b.cond);
        pthread_mutex_destroy(&b.lock);
}

static int loop_acquire(Error **err) {
        pthread_once(&loop_once, loop_init);
        if (loop_init_error < 0)
                return error_set(err, -loop_init_error, "libvirt: cannot register the event loop");

        pthread_mutex_lock(&loop_lock);
        if (loop_users == 0) {
                atomic_store(&loop_quit, false);
                int r = pthread_create(&loop_thread, NULL, loop_main, NULL);
                if (r != 0) {
                        pthread_mutex_unlock(&loop_lock);
                        return error_set_errno(err, r, "libvirt: cannot start the event thread");
                }
        }
        loop_users++;
        pthread_mutex_unlock(&loop_lock);
        return 0;
}

/* The last user stops and joins the thread; the others pass a barrier. */
static void loop_release(void) {
        pthread_mutex_lock(&loop_lock);
        if (--loop_users > 0) {
                loop_barrier();
        } else {
                atomic_store(&loop_quit, true);
                if (virEventAddTimeout(0, loop_wake_cb, NULL, NULL) < 0)
                        virResetLastError(); /* the loop still wakes on its next event */
                pthread_join(loop_thread, NULL);
        }
        pthread_mutex_unlock(&loop_lock);
}

/* --- the embedded driver's root --- */

static bool root_char_is_plain(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("/+_.-", c);
}

/* The root goes into a URI query and into socket paths: plain characters only. */
static int check_root(const char *root, Error **err) {
        if (root[0] != '/')
                return error_set(err, EINVAL, "libvirt root '%s': must be an absolute path", root);
        if (strlen(root) > EMBED_ROOT_MAX)
                return error_set(err, ENAMETOOLONG,
                                 "libvirt root '%s': longer than %d bytes, QEMU's monitor socket path would not fit",
                                 root, EMBED_ROOT_MAX);
        for (const char *p = root; *p; p++)
                if (!root_char_is_plain(*p))
                        return error_set(err, EINVAL, "libvirt root '%s': only [A-Za-z0-9/+_.-] allowed", root);
        return 0;
}

static int write_qemu_conf(const char *root, Error **err) {
        _cleanup_free_ char *etc = NULL, *path = NULL;
        if (asprintf(&etc, "%s/etc", root) < 0 || asprintf(&path, "%s/qemu.conf", etc) < 0)
                return error_oom(err);
        /* QEMU, under the uid of its VM, opens files libvirt prepares for
         * it below <root>/lib/qemu/domain-*: it crosses the root (and the
         * directories made for it here), lists nothing; etc/ stays 0700 */
        int r = mkdir_p(root, 0711);
        if (r >= 0 && chmod(root, 0711) < 0)
                r = -errno;
        if (r < 0)
                return error_set_errno(err, r, "cannot create %s", root);
        if ((r = mkdir_p(etc, 0700)) < 0)
                return error_set_errno(err, r, "cannot create %s", etc);
        /* Ours (the first line says so) is brought up to date; anyone
         * else's is left alone. */
        _cleanup_free_ char *old = NULL;
        size_t len = 0;
        r = read_file_bounded(path, 1u << 20, &old, &len);
        if (r >= 0 && (strncmp(old, QEMU_CONF_HEADER, strlen(QEMU_CONF_HEADER)) != 0 ||
                       (len == sizeof qemu_conf - 1 && memcmp(old, qemu_conf, len) == 0)))
                return 0;
        if (r < 0 && r != -ENOENT)
                return error_set_errno(err, r, "cannot read %s", path);
        r = write_file_atomic(path, qemu_conf, sizeof qemu_conf - 1, 0644);
        if (r < 0)
                return error_set_errno(err, r, "cannot write %s", path);
        return 0;
}

/* For qemu:///embed?root=<root>[&...]: the root; NULL for any other URI. */
static int embed_root_of(const char *uri, char **ret_root, Error **err) {
        *ret_root = NULL;
        if (strncmp(uri, EMBED_URI_PREFIX, strlen(EMBED_URI_PREFIX)) != 0)
                return 0;
        const char *q = strchr(uri, '?');
        const char *root = q ? strstr(q, "root=") : NULL;
        if (!root || (root[-1] != '?' && root[-1] != '&'))
                return error_set(err, EINVAL, "URI '%s': no root= parameter", uri);
        root += strlen("root=");
        *ret_root = strndup(root, strcspn(root, "&"));
        if (!*ret_root)
                return error_oom(err);
        return check_root(*ret_root, err);
}

/* Resolves the URI to open and prepares an embedded root. */
static int prepare_uri(const char *uri, const char *state_dir, char **ret_uri, char **ret_root, Error **err) {
        _cleanup_free_ char *root = NULL, *resolved = NULL;
        int r;

        if (uri) {
                if ((r = embed_root_of(uri, &root, err)) < 0)
                        return r;
                resolved = strdup(uri);
        } else {
                if (!state_dir || state_dir[0] != '/')
                        return error_set(err, EINVAL, "VM driver: an absolute state directory is required");
                if (asprintf(&root, "%s/libvirt", state_dir) < 0)
                        return error_oom(err);
                if ((r = check_root(root, err)) < 0)
                        return r;
                if (asprintf(&resolved, EMBED_URI_PREFIX "?root=%s", root) < 0)
                        resolved = NULL;
        }
        if (!resolved)
                return error_oom(err);
        if (root && (r = write_qemu_conf(root, err)) < 0)
                return r;
        *ret_uri = TAKE_PTR(resolved);
        *ret_root = TAKE_PTR(root);
        return 0;
}

/* --- events --- */

static bool event_map(int event, int detail, VmEvent *ev) {
        static const char *const stopped[] = {
                [VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN] = "shutdown", [VIR_DOMAIN_EVENT_STOPPED_DESTROYED] = "destroyed",
                [VIR_DOMAIN_EVENT_STOPPED_CRASHED] = "crashed",   [VIR_DOMAIN_EVENT_STOPPED_MIGRATED] = "migrated",
                [VIR_DOMAIN_EVENT_STOPPED_SAVED] = "saved",       [VIR_DOMAIN_EVENT_STOPPED_FAILED] = "failed",
                [VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT] = "from snapshot",
        };
        switch (event) {
        case VIR_DOMAIN_EVENT_STARTED:
                *ev = (VmEvent) { .state = VM_STATE_RUNNING, .reason = "started" };
                return true;
        case VIR_DOMAIN_EVENT_RESUMED:
                *ev = (VmEvent) { .state = VM_STATE_RUNNING, .reason = "resumed" };
                return true;
        case VIR_DOMAIN_EVENT_SUSPENDED:
        case VIR_DOMAIN_EVENT_PMSUSPENDED:
                *ev = (VmEvent) { .state = VM_STATE_PAUSED, .reason = "suspended" };
                return true;
        case VIR_DOMAIN_EVENT_SHUTDOWN:
                *ev = (VmEvent) { .state = VM_STATE_SHUTDOWN, .reason = "shutting down" };
                return true;
        case VIR_DOMAIN_EVENT_CRASHED:
                *ev = (VmEvent) { .state = VM_STATE_CRASHED, .reason = "panicked" };
                return true;
        case VIR_DOMAIN_EVENT_STOPPED: {
                bool known = detail >= 0 && (size_t) detail < ELEMENTSOF(stopped) && stopped[detail];
                bool crash = detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED || detail == VIR_DOMAIN_EVENT_STOPPED_FAILED;
                *ev = (VmEvent) { .state = crash ? VM_STATE_CRASHED : VM_STATE_SHUTOFF,
                                  .reason = known ? stopped[detail] : "stopped" };
                return true;
        }
        case VIR_DOMAIN_EVENT_UNDEFINED:
                *ev = (VmEvent) { .state = VM_STATE_MISSING, .reason = "undefined" };
                return true;
        default: /* DEFINED: nothing changes for a caller that just created it */
                return false;
        }
}

static int lifecycle_cb(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque) {
        LibvirtDriver *d = opaque;
        VmEvent ev;

        if (atomic_load(&d->closing) || !d->cb || !event_map(event, detail, &ev))
                return 0;
        ev.name = virDomainGetName(dom);
        if (ev.name)
                d->cb(&ev, d->userdata);
        return 0;
}

/* --- the table --- */

static void lv_close(VmDriver *base) {
        LibvirtDriver *d = (LibvirtDriver *) base;

        atomic_store(&d->closing, true);
        if (d->lifecycle_id >= 0 && virConnectDomainEventDeregisterAny(d->conn, d->lifecycle_id) < 0)
                virResetLastError();
        if (d->conn && virConnectClose(d->conn) < 0)
                virResetLastError();
        if (d->holds_loop)
                loop_release();
        free(d->root);
        free(d);
}

static int lv_connect(LibvirtDriver *d, const char *uri, Error **err) {
        d->conn = virConnectOpen(uri);
        if (!d->conn) {
                const virError *e = virGetLastError();
                /* The embedded driver's pid file lock: another process has the root. */
                if (e && e->code == VIR_ERR_SYSTEM_ERROR && e->int1 == EAGAIN) {
                        int r = error_set(err, EBUSY, "open '%s': another process holds this root: %s", uri,
                                          e->message ? e->message : "");
                        virResetLastError();
                        return r;
                }
                return libvirt_error(err, "open '%s'", uri);
        }
        if (d->cb) {
                d->lifecycle_id = virConnectDomainEventRegisterAny(
                        d->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                        VIR_DOMAIN_EVENT_CALLBACK((void (*)(void)) lifecycle_cb), d, NULL);
                if (d->lifecycle_id < 0)
                        return libvirt_error(err, "register lifecycle events on '%s'", uri);
        }
        /* Remote URIs notice a dead peer; local drivers do not support it. */
        if (virConnectSetKeepAlive(d->conn, 5, 3) < 0)
                virResetLastError();
        /* The QEMU driver probes the QEMU binary's capabilities (starting
         * it once with QMP) the first time a domain needs them, and caches
         * the result under the root; measured 4 s under TCG. Asking now
         * moves that cost from the first container's start to opening. A
         * failure here is not fatal: the first start will probe again. */
        char *caps = virConnectGetDomainCapabilities(d->conn, NULL, "x86_64", "q35", NULL, 0);
        if (!caps)
                virResetLastError();
        free(caps);
        return 0;
}

static int lv_open(VmDriver **ret, const char *uri, const char *state_dir, VmEventFn cb, void *userdata,
                   Error **err) {
        _cleanup_free_ char *resolved = NULL, *root = NULL;
        int r = prepare_uri(uri, state_dir, &resolved, &root, err);
        if (r < 0)
                return r;

        LibvirtDriver *d = calloc(1, sizeof(*d));
        if (!d)
                return error_oom(err);
        *d = (LibvirtDriver) { .base.ops = &vm_driver_libvirt, .lifecycle_id = -1, .cb = cb, .userdata = userdata,
                               .root = TAKE_PTR(root) };
        if ((r = loop_acquire(err)) < 0) {
                free(d);
                return r;
        }
        d->holds_loop = true;
        if ((r = lv_connect(d, resolved, err)) < 0) {
                lv_close(&d->base);
                return r;
        }
        log_debug("VM driver: connected to %s", resolved);
        *ret = &d->base;
        return 0;
}

/* 1 and *ret when name exists, 0 when it does not, < 0 on error. */
static int lookup(LibvirtDriver *d, const char *name, virDomainPtr *ret, const char *what, Error **err) {
        if (!vm_name_is_valid(name, VM_NAME_MAX))
                return error_set(err, EINVAL, "%s domain '%.*s': invalid name", what, 80, name ? name : "");
        *ret = virDomainLookupByName(d->conn, name);
        if (*ret)
                return 1;
        if (libvirt_error_is(VIR_ERR_NO_DOMAIN))
                return 0;
        return libvirt_error(err, "%s domain '%s'", what, name);
}

static int lv_define_and_start(LibvirtDriver *d, const char *name, const char *xml, Error **err) {
        virDomainPtr dom = virDomainDefineXMLFlags(d->conn, xml, VIR_DOMAIN_DEFINE_VALIDATE);
        if (!dom)
                return libvirt_error(err, "create domain '%s'", name);
        if (virDomainCreate(dom) < 0) {
                int r = libvirt_error(err, "create domain '%s'", name);
                if (virDomainUndefineFlags(dom, UNDEFINE_FLAGS) < 0) {
                        log_debug("domain '%s': undefine after failed start: %s", name,
                                    virGetLastErrorMessage());
                        virResetLastError();
                }
                virDomainFree(dom);
                return r;
        }
        virDomainFree(dom);
        return 0;
}

static int lv_create(VmDriver *base, const VmSpec *spec, Error **err) {
        LibvirtDriver *d = (LibvirtDriver *) base;
        _cleanup_free_ char *reason = NULL, *xml = NULL;
        virDomainPtr existing = NULL;
        VmAccel accel;

        int r = vm_spec_validate(spec, err);
        if (r < 0)
                return r;
        r = vm_accel_detect(spec->accel, &accel, &reason);
        if (r < 0)
                return error_set(err, r, "create domain '%s': KVM unusable: %s", spec->name,
                                 reason ? reason : "unknown reason");
        log_debug("domain '%s': %s (%s)", spec->name, vm_accel_to_string(accel), reason ? reason : "");
        if ((r = vm_xml_build(spec, accel, &xml, err)) < 0)
                return r;
        for (size_t i = 0; i < spec->n_filesystems; i++) {
                char ro[PATH_MAX];
                if (spec->filesystems[i].read_only && vm_xml_virtiofsd_ro(ro, sizeof ro) == 0 &&
                    access(ro, X_OK) < 0)
                        return error_set_errno(err, errno, "create domain '%s': read-only share '%s' needs %s",
                                               spec->name, spec->filesystems[i].tag, ro);
        }

        r = lookup(d, spec->name, &existing, "create", err);
        if (r < 0)
                return r;
        if (r > 0) {
                virDomainFree(existing);
                return error_set(err, EEXIST, "create domain '%s': a domain of that name exists", spec->name);
        }
        return lv_define_and_start(d, spec->name, xml, err);
}

static int lv_destroy(VmDriver *base, const char *name, Error **err) {
        LibvirtDriver *d = (LibvirtDriver *) base;
        virDomainPtr dom = NULL;
        int r = lookup(d, name, &dom, "destroy", err);
        if (r <= 0)
                return r;

        r = 0;
        /* Each step tolerates the domain stopping or vanishing under it. */
        if (virDomainIsActive(dom) == 1 && virDomainDestroy(dom) < 0 && !libvirt_error_is(VIR_ERR_OPERATION_INVALID) &&
            !libvirt_error_is(VIR_ERR_NO_DOMAIN))
                r = libvirt_error(err, "destroy domain '%s'", name);
        if (r == 0 && virDomainIsPersistent(dom) == 1 && virDomainUndefineFlags(dom, UNDEFINE_FLAGS) < 0 &&
            !libvirt_error_is(VIR_ERR_NO_DOMAIN))
                r = libvirt_error(err, "undefine domain '%s'", name);
        virResetLastError(); /* IsActive/IsPersistent on a vanished domain */
        virDomainFree(dom);
        return r;
}

static VmState state_map(int state, int reason) {
        switch (state) {
        case VIR_DOMAIN_RUNNING:
        case VIR_DOMAIN_BLOCKED:
                return VM_STATE_RUNNING;
        case VIR_DOMAIN_PAUSED:
        case VIR_DOMAIN_PMSUSPENDED:
                return VM_STATE_PAUSED;
        case VIR_DOMAIN_SHUTDOWN:
                return VM_STATE_SHUTDOWN;
        case VIR_DOMAIN_SHUTOFF:
                return reason == VIR_DOMAIN_SHUTOFF_CRASHED ? VM_STATE_CRASHED : VM_STATE_SHUTOFF;
        case VIR_DOMAIN_CRASHED:
                return VM_STATE_CRASHED;
        default:
                return VM_STATE_UNKNOWN;
        }
}

static int lv_state(VmDriver *base, const char *name, VmState *ret, Error **err) {
        LibvirtDriver *d = (LibvirtDriver *) base;
        virDomainPtr dom = NULL;
        int state, reason;

        int r = lookup(d, name, &dom, "state of", err);
        if (r < 0)
                return r;
        *ret = VM_STATE_MISSING;
        if (r == 0)
                return 0;
        r = 0;
        if (virDomainGetState(dom, &state, &reason, 0) == 0)
                *ret = state_map(state, reason);
        else if (!libvirt_error_is(VIR_ERR_NO_DOMAIN))
                r = libvirt_error(err, "state of domain '%s'", name);
        virDomainFree(dom);
        return r;
}

static int lv_suspend_resume(LibvirtDriver *d, const char *name, bool suspend, Error **err) {
        const char *what = suspend ? "suspend" : "resume";
        virDomainPtr dom = NULL;
        int r = lookup(d, name, &dom, what, err);
        if (r < 0)
                return r;
        if (r == 0)
                return error_set(err, ENOENT, "%s domain '%s': no such domain", what, name);
        r = 0;
        if ((suspend ? virDomainSuspend(dom) : virDomainResume(dom)) < 0)
                r = libvirt_error_is(VIR_ERR_OPERATION_INVALID)
                            ? error_set(err, EBADFD, "%s domain '%s': %s", what, name, virGetLastErrorMessage())
                            : libvirt_error(err, "%s domain '%s'", what, name);
        virResetLastError();
        virDomainFree(dom);
        return r;
}

static int lv_suspend(VmDriver *base, const char *name, Error **err) {
        return lv_suspend_resume((LibvirtDriver *) base, name, true, err);
}

static int lv_resume(VmDriver *base, const char *name, Error **err) {
        return lv_suspend_resume((LibvirtDriver *) base, name, false, err);
}

static int lv_vsock_cid(VmDriver *base, const char *name, unsigned *ret, Error **err) {
        LibvirtDriver *d = (LibvirtDriver *) base;
        virDomainPtr dom = NULL;
        int r = lookup(d, name, &dom, "vsock of", err);
        if (r < 0)
                return r;
        if (r == 0)
                return error_set(err, ENOENT, "vsock of domain '%s': no such domain", name);
        char *xml = virDomainGetXMLDesc(dom, 0); /* the live definition: the CID libvirt picked */
        virDomainFree(dom);
        if (!xml)
                return libvirt_error(err, "vsock of domain '%s'", name);
        r = vm_xml_vsock_cid(xml, ret);
        free(xml);
        if (r < 0)
                return error_set(err, -r, "vsock of domain '%s': %s", name,
                                 r == -ENOENT ? "no vsock device with a CID" : "unreadable domain XML");
        return 0;
}

/* The QEMU process of domain name: the embedded driver's pid file
 * <root>/run/qemu/<name>.pid, and only while that process is still the
 * guest's QEMU (its command line names it), not a pid reused since. 0 when
 * unknown. */
static pid_t qemu_pid(LibvirtDriver *d, const char *name) {
        char path[PATH_MAX], arg[VM_NAME_MAX + 16];
        pid_t pid = 0;
        if (!d->root || snprintf(path, sizeof path, "%s/run/qemu/%s.pid", d->root, name) >= (int) sizeof path ||
            proc_read_pid_file(path, &pid) < 0)
                return 0;
        snprintf(arg, sizeof arg, "guest=%s,", name);
        return proc_cmdline_has_prefix(pid, arg) ? pid : 0;
}

static int lv_stats(VmDriver *base, const char *name, VmStats *ret, Error **err) {
        LibvirtDriver *d = (LibvirtDriver *) base;
        virDomainPtr dom = NULL;
        int r = lookup(d, name, &dom, "statistics of", err);
        if (r < 0)
                return r;
        if (r == 0)
                return error_set(err, ENOENT, "statistics of domain '%s': no such domain", name);
        *ret = (VmStats){0};
        virDomainInfo info;
        r = 0;
        if (virDomainGetInfo(dom, &info) < 0)
                r = libvirt_error(err, "statistics of domain '%s'", name);
        else if (info.state != VIR_DOMAIN_RUNNING && info.state != VIR_DOMAIN_PAUSED &&
                 info.state != VIR_DOMAIN_BLOCKED)
                r = error_set(err, EBADFD, "statistics of domain '%s': not running", name);
        if (r >= 0) {
                ret->cpu_time_ns = info.cpuTime;
                ret->memory_kib = info.memory;
                virDomainMemoryStatStruct mem[VIR_DOMAIN_MEMORY_STAT_NR];
                int n = virDomainMemoryStats(dom, mem, VIR_DOMAIN_MEMORY_STAT_NR, 0);
                for (int i = 0; i < n; i++)
                        if (mem[i].tag == VIR_DOMAIN_MEMORY_STAT_RSS)
                                ret->rss_kib = mem[i].val;
                ret->qemu_pid = qemu_pid(d, name);
                if (ret->qemu_pid > 0 && proc_pss_kib(ret->qemu_pid, &ret->pss_kib) < 0)
                        ret->pss_kib = 0;
                virDomainBlockStatsStruct bs;
                if (virDomainBlockStats(dom, "vda", &bs, sizeof bs) == 0) {
                        ret->rd_bytes = bs.rd_bytes > 0 ? (uint64_t) bs.rd_bytes : 0;
                        ret->wr_bytes = bs.wr_bytes > 0 ? (uint64_t) bs.wr_bytes : 0;
                        ret->rd_reqs = bs.rd_req > 0 ? (uint64_t) bs.rd_req : 0;
                        ret->wr_reqs = bs.wr_req > 0 ? (uint64_t) bs.wr_req : 0;
                }
        }
        virResetLastError();
        virDomainFree(dom);
        return r;
}

/* --- port forwards of the user-mode NIC (QEMU's slirp) ---
 *
 * libvirt has no API for slirp's host forwards, so they go through QEMU's
 * human monitor (libvirt-qemu's passthrough, which marks the domain
 * "tainted: custom-monitor" in its log; nothing else changes). QEMU answers
 * an HMP command with text: nothing on success, a message otherwise. */

#define MONITOR_REPLY_MAX 65536 /* bounded: the reply is QEMU's, the guest cannot grow it much */

/* Runs one HMP command; *ret_reply is QEMU's answer, cut at
 * MONITOR_REPLY_MAX and stripped of control characters but newlines. */
static int monitor_hmp(virDomainPtr dom, const char *name, const char *cmd, char **ret_reply, Error **err) {
        char *reply = NULL;
        if (virDomainQemuMonitorCommand(dom, cmd, &reply, VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP) < 0)
                return libvirt_error(err, "monitor of domain '%s': '%s'", name, cmd);
        if (!reply && !(reply = strdup("")))
                return error_oom(err);
        if (strlen(reply) > MONITOR_REPLY_MAX)
                reply[MONITOR_REPLY_MAX] = 0;
        for (char *p = reply; *p; p++)
                if ((unsigned char) *p < 0x20 && *p != '\n')
                        *p = *p == '\r' ? ' ' : '?';
        *ret_reply = reply;
        return 0;
}

/* 1 when QEMU's `info usernet` lists exactly this forward on netdev, 0 when
 * not. Its lines read "TCP[HOST_FORWARD]  FD  <host ip>  <host port>
 * <guest ip>  <guest port>  RecvQ SendQ", the host ip * or 0.0.0.0 for all. */
static int forward_listed(virDomainPtr dom, const char *name, const VmForward *fw, Error **err) {
        _cleanup_free_ char *reply = NULL;
        int r = monitor_hmp(dom, name, "info usernet", &reply, err);
        if (r < 0)
                return r;
        const char *want_proto = strcmp(fw->protocol, "udp") == 0 ? "UDP[HOST_FORWARD]" : "TCP[HOST_FORWARD]";
        const char *want_ip = fw->host_ip && fw->host_ip[0] ? fw->host_ip : "0.0.0.0";
        for (char *line = reply, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                char proto[32], host_ip[64], guest_ip[64];
                int fd;
                unsigned host_port, guest_port;
                if (sscanf(line, " %31s %d %63s %u %63s %u", proto, &fd, host_ip, &host_port, guest_ip,
                           &guest_port) != 6)
                        continue;
                bool ip_match = strcmp(host_ip, want_ip) == 0 || (strcmp(host_ip, "*") == 0 && !strcmp(want_ip, "0.0.0.0"));
                if (strcmp(proto, want_proto) == 0 && ip_match && host_port == fw->host_port &&
                    guest_port == fw->guest_port)
                        return 1;
        }
        return 0;
}

/* "tcp:127.0.0.1:8080", the rule as QEMU names it. */
static int forward_rule(const VmForward *fw, char *buf, size_t size) {
        int n = snprintf(buf, size, "%s:%s:%u", fw->protocol, fw->host_ip ? fw->host_ip : "", fw->host_port);
        return n > 0 && (size_t) n < size ? 0 : -ENAMETOOLONG;
}

static int lv_forward_on(virDomainPtr dom, const char *name, const char *netdev, const VmForward *fw, bool add,
                         Error **err) {
        _cleanup_free_ char *cmd = NULL, *reply = NULL;
        char rule[96];
        if (forward_rule(fw, rule, sizeof rule) < 0)
                return error_set(err, EINVAL, "port forward of domain '%s': rule too long", name);
        int k = add ? asprintf(&cmd, "hostfwd_add %s %s-:%u", netdev, rule, fw->guest_port)
                    : asprintf(&cmd, "hostfwd_remove %s %s", netdev, rule);
        if (k < 0)
                return error_oom(err);
        int r = monitor_hmp(dom, name, cmd, &reply, err);
        if (r < 0)
                return r;
        const char *what = add ? "add port forward" : "remove port forward";
        if (add) {
                if (!reply[0])
                        return 0;
                /* QEMU could not bind the port; taken by this very forward is success. */
                if (strstr(reply, "Could not set up host forwarding rule")) {
                        r = forward_listed(dom, name, fw, err);
                        if (r != 0)
                                return r < 0 ? r : 0;
                        return error_set(err, EADDRINUSE, "%s %s -> %u of domain '%s': host port %s %s:%u is taken",
                                         what, rule, fw->guest_port, name, fw->protocol,
                                         fw->host_ip && fw->host_ip[0] ? fw->host_ip : "*", fw->host_port);
                }
        } else {
                if (strstr(reply, "removed"))
                        return 0;
                if (strstr(reply, "not found"))
                        return error_set(err, ENOENT, "%s %s of domain '%s': no such forward", what, rule, name);
        }
        return error_set(err, EIO, "%s %s of domain '%s': QEMU says: %.200s", what, rule, name, reply);
}

static int lv_forward(VmDriver *base, const char *name, const VmForward *fw, bool add, Error **err) {
        LibvirtDriver *d = (LibvirtDriver *) base;
        virDomainPtr dom = NULL;
        int r = vm_forward_validate(fw, err);
        if (r < 0)
                return r;
        r = lookup(d, name, &dom, "port forward of", err);
        if (r < 0)
                return r;
        if (r == 0)
                return error_set(err, ENOENT, "port forward of domain '%s': no such domain", name);
        _cleanup_free_ char *netdev = NULL;
        char *xml = NULL;
        if (virDomainIsActive(dom) != 1)
                r = error_set(err, EBADFD, "port forward of domain '%s': not running", name);
        else if (!(xml = virDomainGetXMLDesc(dom, 0)))
                r = libvirt_error(err, "port forward of domain '%s'", name);
        else if ((r = vm_xml_user_netdev(xml, &netdev)) < 0)
                r = r == -ENOENT ? error_set(err, EOPNOTSUPP, "port forward of domain '%s': no user-mode NIC", name)
                                 : error_set(err, -r, "port forward of domain '%s': unreadable domain XML", name);
        else
                r = lv_forward_on(dom, name, netdev, fw, add, err);
        free(xml);
        virResetLastError();
        virDomainFree(dom);
        return r;
}

typedef int (*MetadataReader)(const char *domain_xml, char **ret);

/* 1 when dom carries our metadata element that read finds (*ret_value its
 * attribute, or NULL when damaged), 0 when not, < 0 on error. */
static int domain_metadata(virDomainPtr dom, const char *name, MetadataReader read, char **ret_value, Error **err) {
        *ret_value = NULL;
        char *xml = virDomainGetXMLDesc(dom, 0);
        if (!xml) {
                if (libvirt_error_is(VIR_ERR_NO_DOMAIN)) /* gone meanwhile */
                        return 0;
                return libvirt_error(err, "XML of domain '%s'", name);
        }
        int r = read(xml, ret_value);
        free(xml);
        if (r == -ENOMEM)
                return error_oom(err);
        if (r == -EINVAL) /* our element, damaged: still ours, so it can be collected */
                log_debug("domain '%s': invalid portlayer metadata", name);
        else if (r < 0 && r != -ENOENT)
                log_debug("domain '%s': unreadable domain XML (%s), skipped", name, strerror(-r));
        return r == 0 || r == -EINVAL;
}

/* The domains whose metadata read finds: names and (ret_values non-NULL)
 * the attribute read returns, "" when damaged. */
static int list_marked(LibvirtDriver *d, MetadataReader read, char ***ret_names, char ***ret_values, size_t *ret_n,
                       Error **err) {
        virDomainPtr *doms = NULL;
        char **names = NULL, **values = NULL;
        size_t n = 0;

        int count = virConnectListAllDomains(d->conn, &doms, 0);
        if (count < 0)
                return libvirt_error(err, "list domains");
        int r = 0;
        names = calloc((size_t) count + 1, sizeof(char *));
        values = calloc((size_t) count + 1, sizeof(char *));
        if (!names || !values)
                r = error_oom(err);
        for (int i = 0; r >= 0 && i < count; i++) {
                const char *name = virDomainGetName(doms[i]);
                char *value = NULL;
                if (!name || !vm_name_is_valid(name, VM_NAME_MAX)) /* never one of ours */
                        continue;
                r = domain_metadata(doms[i], name, read, &value, err);
                if (r > 0) {
                        values[n] = value ? value : strdup("");
                        if (!(names[n++] = strdup(name)) || !values[n - 1])
                                r = error_oom(err);
                } else
                        free(value);
        }
        for (int i = 0; i < count; i++)
                virDomainFree(doms[i]);
        free(doms);
        if (r < 0 || !ret_values)
                values = vm_names_free(values, n);
        if (r < 0) {
                vm_names_free(names, n);
                return r;
        }
        *ret_names = names;
        if (ret_values)
                *ret_values = values;
        *ret_n = n;
        return 0;
}

static int lv_list_ours(VmDriver *base, char ***ret_names, size_t *ret_n, Error **err) {
        return list_marked((LibvirtDriver *) base, vm_xml_container_id, ret_names, NULL, ret_n, err);
}

static int lv_list_pool(VmDriver *base, char ***ret_names, char ***ret_keys, size_t *ret_n, Error **err) {
        return list_marked((LibvirtDriver *) base, vm_xml_pool_key, ret_names, ret_keys, ret_n, err);
}

static int lv_adopt(VmDriver *base, const char *name, const char *container_id, Error **err) {
        LibvirtDriver *d = (LibvirtDriver *) base;
        virDomainPtr dom = NULL;
        if (!vm_name_is_valid(container_id, VM_NAME_MAX))
                return error_set(err, EINVAL, "adopt domain '%s': invalid container id", name);
        int r = lookup(d, name, &dom, "adopt", err);
        if (r < 0)
                return r;
        if (r == 0)
                return error_set(err, ENOENT, "adopt domain '%s': no such domain", name);
        _cleanup_free_ char *key = NULL;
        r = domain_metadata(dom, name, vm_xml_pool_key, &key, err);
        if (r == 0)
                r = error_set(err, EINVAL, "adopt domain '%s': not a pool domain", name);
        _cleanup_free_ char *xml = NULL;
        if (r > 0 && asprintf(&xml, "<" VM_XML_METADATA_ELEMENT " id='%s'/>", container_id) < 0)
                r = error_oom(err);
        /* One element per namespace: setting ours replaces the pool's. */
        if (r > 0 && virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, xml, VM_XML_PREFIX, VM_XML_NAMESPACE,
                                          VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG) < 0)
                r = libvirt_error(err, "adopt domain '%s'", name);
        virDomainFree(dom);
        return r < 0 ? r : 0;
}

static int attach_xml(LibvirtDriver *d, const char *name, const char *what, const char *xml, Error **err) {
        virDomainPtr dom = NULL;
        int r = lookup(d, name, &dom, "attach to", err);
        if (r < 0)
                return r;
        if (r == 0)
                return error_set(err, ENOENT, "attach to domain '%s': no such domain", name);
        r = 0;
        if (virDomainAttachDeviceFlags(dom, xml, VIR_DOMAIN_AFFECT_LIVE) < 0)
                r = libvirt_error_is(VIR_ERR_OPERATION_INVALID)
                            ? error_set(err, EBADFD, "attach to domain '%s': %s", name, virGetLastErrorMessage())
                            : libvirt_error(err, "attach %s to domain '%s'", what, name);
        virResetLastError();
        virDomainFree(dom);
        return r;
}

static int lv_attach_disk(VmDriver *base, const char *name, const VmDisk *disk, size_t index, Error **err) {
        _cleanup_free_ char *xml = NULL;
        int r = vm_xml_disk(disk, index, &xml, err);
        if (r < 0)
                return error_prefix(err, "attach to domain '%s'", name);
        return attach_xml((LibvirtDriver *) base, name, "disk", xml, err);
}

static int lv_attach_nic(VmDriver *base, const char *name, const VmNic *nic, Error **err) {
        _cleanup_free_ char *xml = NULL;
        int r = vm_xml_interface(nic, &xml, err);
        if (r < 0)
                return error_prefix(err, "attach to domain '%s'", name);
        return attach_xml((LibvirtDriver *) base, name, "NIC", xml, err);
}

const VmDriverOps vm_driver_libvirt = {
        .name = "libvirt",
        .open = lv_open,
        .close = lv_close,
        .create = lv_create,
        .destroy = lv_destroy,
        .state = lv_state,
        .suspend = lv_suspend,
        .resume = lv_resume,
        .vsock_cid = lv_vsock_cid,
        .stats = lv_stats,
        .list_ours = lv_list_ours,
        .forward = lv_forward,
        .list_pool = lv_list_pool,
        .adopt = lv_adopt,
        .attach_disk = lv_attach_disk,
        .attach_nic = lv_attach_nic,
};

int vm_libvirt_version(char *buf, size_t size) {
        unsigned long v = 0;
        if (virGetVersion(&v, NULL, NULL) < 0)
                return -EIO;
        snprintf(buf, size, "%lu.%lu.%lu", v / 1000000, v / 1000 % 1000, v % 1000);
        return 0;
}
