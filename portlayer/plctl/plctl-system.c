/* plctl-system.c: version (client and daemon) and doctor, the local
 * checks that need no daemon: the accelerator (KVM or TCG, through plvm's
 * detection), /dev/vhost-vsock, QEMU's and libvirt's versions, the guest
 * kernel, free disk in the state directory, free memory, and whether the
 * daemon's socket answers. Each check is OK, WARN or FAIL with what to do;
 * doctor exits 1 when one FAILs. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "common/json/json-util.h"
#include "images/boot/kernel-modules.h"
#include "plctl-internal.h"
#include "portlayer/vm/vm-driver.h"

#ifndef PLCTL_VERSION
#define PLCTL_VERSION "unknown"
#endif
#define DOCTOR_STATE_DIR "/var/lib/portlayer"

/* --- version --- */

/* The daemon's warm pool (GET /version's "pool", docs/templates.md); an
 * older daemon has none. */
static void print_pool(json_t *pool) {
        if (!json_is_object(pool))
                return;
        json_int_t size = json_integer_value(json_object_get(pool, "size"));
        if (json_is_true(json_object_get(pool, "cold_start")))
                printf("pool:   off (cold start: every container start boots its VM)\n");
        else
                printf("pool:   %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT " guests ready\n",
                       json_integer_value(json_object_get(pool, "ready")), size);
}

int plctl_verb_version(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        static const struct option options[] = {PLCTL_COMMON_OPTIONS, {}};
        int opt, r;
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                if ((r = plctl_common_option(p, opt, "version", argv)) >= 0)
                        return r;
        if (optind != argc)
                return plctl_usage("version: takes no arguments");
        _cleanup_error_ Error *e = NULL;
        _cleanup_json_ json_t *daemon = NULL;
        PlctlClient *c;
        r = plctl_connect(p, &c, &e);
        if (r >= 0)
                r = plctl_call(c, "GET", "/version", NULL, &daemon, &e);
        if (p->json) {
                _cleanup_json_ json_t *out = json_pack("{s:{s:s}, s:O?}", "client", "version", PLCTL_VERSION, "daemon",
                                                       r >= 0 ? daemon : NULL);
                plctl_print_json(out);
        } else {
                printf("client: plctl %s\n", PLCTL_VERSION);
                if (r >= 0) {
                        printf("daemon: portlayerd %s (API %s) at %s\n", plctl_str(daemon, "version"),
                               plctl_str(daemon, "api"), plctl_client_target(c));
                        print_pool(json_object_get(daemon, "pool"));
                }
        }
        return r < 0 ? plctl_fail(e) : 0;
}

/* --- doctor --- */

typedef enum Level { LEVEL_OK, LEVEL_WARN, LEVEL_FAIL } Level;

typedef struct Doctor {
        json_t *checks;
        bool json, failed;
} Doctor;

_printf_(5, 6) static void report(Doctor *d, Level level, const char *check, const char *hint, const char *fmt, ...) {
        static const char *const names[] = {"OK", "WARN", "FAIL"};
        char detail[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
        if (level == LEVEL_FAIL)
                d->failed = true;
        json_array_append_new(d->checks, json_pack("{s:s, s:s, s:s, s:s?}", "check", check, "status", names[level],
                                                   "detail", detail, "hint", level == LEVEL_OK ? NULL : hint));
        if (d->json)
                return;
        printf("%-4s  %-12s  %s\n", names[level], check, detail);
        if (level != LEVEL_OK && hint)
                printf("      %-12s  -> %s\n", "", hint);
}

static void check_accel(Doctor *d) {
        _cleanup_free_ char *reason = NULL;
        VmAccel a;
        if (vm_accel_detect(VM_ACCEL_AUTO, &a, &reason) < 0)
                report(d, LEVEL_FAIL, "accelerator", "see the host's virtualization settings",
                       "cannot tell: %s", reason ? reason : "unknown");
        else if (a == VM_ACCEL_KVM)
                report(d, LEVEL_OK, "accelerator", NULL, "KVM usable");
        else
                report(d, LEVEL_WARN, "accelerator",
                       "enable VT-x/AMD-V (or nested virtualization), load kvm_intel or kvm_amd, and give the daemon "
                       "read-write access to /dev/kvm",
                       "TCG (QEMU's emulator; guests boot slowly): %s", reason ? reason : "KVM is not usable");
}

static void check_vsock(Doctor *d) {
        if (vm_vsock_usable(VM_VHOST_VSOCK_DEV))
                report(d, LEVEL_OK, "vhost-vsock", NULL, "%s usable: agents may use vsock", VM_VHOST_VSOCK_DEV);
        else
                report(d, LEVEL_WARN, "vhost-vsock", "modprobe vhost_vsock (needs KVM) to let agents use vsock",
                       "no usable %s: the agent is reached over virtio-serial", VM_VHOST_VSOCK_DEV);
}

/* The first line of a command's output, "" when it printed none. */
static void first_line(const char *cmd, char *out, size_t size) {
        out[0] = 0;
        FILE *f = popen(cmd, "re");
        if (!f)
                return;
        if (!fgets(out, (int) size, f))
                out[0] = 0;
        out[strcspn(out, "\n")] = 0;
        pclose(f);
}

static void check_versions(Doctor *d) {
        char line[256];
        first_line("qemu-system-x86_64 --version 2>/dev/null", line, sizeof line);
        if (line[0])
                report(d, LEVEL_OK, "qemu", NULL, "%s", line);
        else
                report(d, LEVEL_FAIL, "qemu", "install qemu-system-x86 (scripts/setup.sh)",
                       "qemu-system-x86_64 not found or not runnable");
        if (vm_libvirt_version(line, sizeof line) == 0)
                report(d, LEVEL_OK, "libvirt", NULL, "libvirt %s (the library portlayerd links)", line);
        else
                report(d, LEVEL_WARN, "libvirt", "install libvirt (scripts/setup.sh)", "libvirt's version unknown");
}

/* The kernel portlayerd boots by default (images/boot's kernel_default_dir:
 * ours when built, else Debian's). */
static void check_kernel(Doctor *d) {
        _cleanup_error_ Error *e = NULL;
        _cleanup_free_ char *dir = NULL;
        if (kernel_default_dir(NULL, &dir, &e) < 0) {
                report(d, LEVEL_FAIL, "kernel", "run scripts/build-kernel.sh (or scripts/fetch-kernel.sh)", "%s",
                       error_text(e));
                return;
        }
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/vmlinuz", dir);
        bool ours = strcmp(strrchr(dir, '/'), "/pl-current") == 0;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
                report(d, LEVEL_OK, "kernel", NULL, "%s (%.1f MiB%s)", path, (double) st.st_size / 1048576.0,
                       ours ? ", ours" : ", Debian's: scripts/build-kernel.sh makes a smaller one");
        else
                report(d, LEVEL_FAIL, "kernel", "run scripts/build-kernel.sh (or scripts/fetch-kernel.sh)",
                       "%s is empty or not a file", path);
}

static void check_disk(Doctor *d, const char *state_dir) {
        char dir[4096];
        struct statvfs vfs;
        snprintf(dir, sizeof dir, "%s", state_dir);
        /* the nearest existing directory: the state directory may not exist yet */
        while (statvfs(dir, &vfs) < 0) {
                char *slash = strrchr(dir, '/');
                if (!slash || slash == dir) {
                        snprintf(dir, sizeof dir, "/");
                        if (statvfs(dir, &vfs) < 0) {
                                report(d, LEVEL_FAIL, "disk", NULL, "cannot read the free space of %s: %m", state_dir);
                                return;
                        }
                        break;
                }
                *slash = 0;
        }
        double gib = (double) vfs.f_bavail * (double) vfs.f_frsize / 1073741824.0;
        Level level = gib < 0.25 ? LEVEL_FAIL : gib < 2 ? LEVEL_WARN : LEVEL_OK;
        report(d, level, "disk", "free space for images and container disks (or move --state-dir)",
               "%.1f GiB free in %s (for %s)", gib, dir, state_dir);
}

static void check_memory(Doctor *d) {
        FILE *f = fopen("/proc/meminfo", "re");
        char line[256];
        uint64_t kib = 0;
        bool found = false;
        while (f && fgets(line, sizeof line, f))
                if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &kib) == 1) {
                        found = true;
                        break;
                }
        if (f)
                fclose(f);
        if (!found) {
                report(d, LEVEL_WARN, "memory", NULL, "MemAvailable not found in /proc/meminfo");
                return;
        }
        double mib = (double) kib / 1024.0;
        Level level = mib < 300 ? LEVEL_FAIL : mib < 1024 ? LEVEL_WARN : LEVEL_OK;
        report(d, level, "memory", "each container VM takes its memory_mb (256 MiB by default): free memory",
               "%.0f MiB available (%.0f containers of 256 MiB)", mib, mib / 256.0);
}

static void check_daemon(Doctor *d, Plctl *p) {
        _cleanup_error_ Error *e = NULL;
        PlctlClient *c;
        if (plctl_connect(p, &c, &e) < 0)
                report(d, LEVEL_FAIL, "daemon", NULL, "%s", error_text(e));
        else if (plctl_client_ping(c, 2000))
                report(d, LEVEL_OK, "daemon", NULL, "portlayerd answers at %s", plctl_client_target(c));
        else
                report(d, LEVEL_WARN, "daemon", "start portlayerd, or point --socket / $PORTLAYER_SOCKET at it",
                       "nothing answers at %s", plctl_client_target(c));
}

/* Who the daemon runs QEMU as (GET /version's "qemu_user"): a uid per
 * container, or root by --allow-root-qemu (docs/security.md). */
static void check_qemu_user(Doctor *d, Plctl *p) {
        _cleanup_error_ Error *e = NULL;
        _cleanup_json_ json_t *v = NULL;
        PlctlClient *c;
        if (plctl_connect(p, &c, &e) < 0 || !plctl_client_ping(c, 2000) ||
            plctl_call(c, "GET", "/version", NULL, &v, &e) < 0)
                return; /* the daemon check said why */
        const char *who = plctl_str(v, "qemu_user");
        if (!who || !*who)
                report(d, LEVEL_WARN, "qemu user", "upgrade portlayerd", "the daemon does not say who QEMU runs as");
        else if (strncmp(who, "a uid per container", 19) == 0)
                report(d, LEVEL_OK, "qemu user", NULL, "%s", who);
        else
                report(d, LEVEL_WARN, "qemu user",
                       "use the embedded libvirt driver and a --uid-range no account uses (docs/security.md)",
                       "QEMU runs as %s", who);
}

int plctl_verb_doctor(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        static const struct option options[] = {{"state-dir", required_argument, NULL, 'S'}, PLCTL_COMMON_OPTIONS, {}};
        const char *state_dir = DOCTOR_STATE_DIR;
        int opt, r;
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                if (opt == 'S')
                        state_dir = optarg;
                else if ((r = plctl_common_option(p, opt, "doctor", argv)) >= 0)
                        return r;
        if (optind != argc)
                return plctl_usage("doctor: takes no arguments");
        _cleanup_json_ json_t *checks = json_array();
        Doctor d = {.checks = checks, .json = p->json};
        check_accel(&d);
        check_vsock(&d);
        check_versions(&d);
        check_kernel(&d);
        check_disk(&d, state_dir);
        check_memory(&d);
        check_daemon(&d, p);
        check_qemu_user(&d, p);
        if (p->json) {
                _cleanup_json_ json_t *out = json_pack("{s:O, s:b}", "checks", checks, "ok", !d.failed);
                plctl_print_json(out);
        }
        return d.failed ? EXIT_FAILURE : 0;
}
