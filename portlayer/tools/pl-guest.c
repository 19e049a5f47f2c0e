/* guest-cli.c: pl-guest, one container VM by hand, until the daemon exists.
 *
 *   pl-guest --state DIR --kernel VMLINUZ --initrd INITRD --disk ROOT.qcow2 [--name N] [--uid UID]
 *
 * Boots the VM through libvirt's embedded driver (rooted at DIR/libvirt),
 * waits for its agent, prints where to reach it, and keeps it running until
 * SIGINT/SIGTERM (then shuts it down cleanly and destroys it) or until the
 * guest stops by itself. Errors are reported once, exit code 1; usage
 * errors exit 2 (the conventions of common/base/verbs.h). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/log.h"
#include "common/base/parse-util.h"
#include "common/base/verbs.h"
#include "portlayer/guest/guest.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
        stop_requested = sig;
}

typedef struct Args {
        const char *state, *kernel, *initrd, *disk, *name, *accel;
        unsigned memory_mib;
        uint32_t uid;
} Args;

static int parse_args(int argc, char **argv, Args *a) {
        static const struct option opts[] = {
                {"state", required_argument, NULL, 's'},  {"kernel", required_argument, NULL, 'k'},
                {"initrd", required_argument, NULL, 'i'}, {"disk", required_argument, NULL, 'd'},
                {"name", required_argument, NULL, 'n'},   {"accel", required_argument, NULL, 'a'},
                {"memory", required_argument, NULL, 'm'}, {"uid", required_argument, NULL, 'u'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},      {},
        };
        int o;
        while ((o = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (o) {
                case 's': a->state = optarg; break;
                case 'k': a->kernel = optarg; break;
                case 'i': a->initrd = optarg; break;
                case 'd': a->disk = optarg; break;
                case 'n': a->name = optarg; break;
                case 'a': a->accel = optarg; break;
                case 'm':
                        if (safe_atou32(optarg, &a->memory_mib) < 0)
                                return log_error_errno(EINVAL, "pl-guest: bad --memory '%s' (MiB)", optarg);
                        break;
                case 'u':
                        if (safe_atou32(optarg, &a->uid) < 0 || a->uid == 0)
                                return log_error_errno(EINVAL, "pl-guest: bad --uid '%s' (not 0: never root)", optarg);
                        break;
                case 'h':
                        puts("usage: pl-guest --state DIR --kernel VMLINUZ --initrd INITRD --disk ROOT.qcow2 "
                             "[--name NAME] [--accel auto|kvm|tcg] [--memory MiB] [--uid UID]\n"
                             "QEMU runs as UID:UID (default 269999), which gets the disk; the directories\n"
                             "above the disk, kernel and initramfs must be searchable by others.");
                        exit(0);
                case 'V': version_print(); exit(0);
                default: return -EINVAL;
                }
        if (optind < argc)
                return log_error_errno(EINVAL, "pl-guest: unexpected argument '%s'", argv[optind]);
        if (!a->state || !a->kernel || !a->initrd || !a->disk)
                return log_error_errno(EINVAL, "pl-guest: --state, --kernel, --initrd and --disk are required");
        return 0;
}

/* Runs until a signal or until the guest is no longer running. */
static void supervise(Guest *g) {
        while (!stop_requested) {
                VmState st = VM_STATE_UNKNOWN;
                if (vm_driver_state(g->driver, g->name, &st, NULL) < 0 || st != VM_STATE_RUNNING) {
                        log_info("guest %s is %s", g->name, vm_state_to_string(st));
                        return;
                }
                sleep(1);
        }
}

int main(int argc, char **argv) {
        log_setup("pl-guest", LOG_LEVEL_INFO, STDERR_FILENO);
        Args a = {.name = "pl-guest", .accel = "auto", .memory_mib = 256, .uid = 269999};
        if (parse_args(argc, argv, &a) < 0)
                return EXIT_USAGE;
        int accel = vm_accel_from_string(a.accel);
        if (accel < 0)
                return log_error("pl-guest: unknown accelerator '%s'", a.accel), 1;

        char libvirt_root[4096], run_dir[4096];
        snprintf(libvirt_root, sizeof libvirt_root, "%s/libvirt", a.state);
        snprintf(run_dir, sizeof run_dir, "%s/%s", a.state, a.name);
        _cleanup_error_ Error *e = NULL;
        _cleanup_vm_driver_ VmDriver *d = NULL;
        if (vm_driver_open(&vm_driver_libvirt, &d, NULL, libvirt_root, NULL, NULL, &e) < 0)
                return log_error("pl-guest: %s", error_text(e)), 1;
        /* A guest of this name left by an earlier run is replaced. */
        (void) vm_driver_destroy(d, a.name, NULL);

        /* QEMU runs as its own uid, never root (docs/security.md): the
         * disk is given to it */
        VmOwner owner = {.uid = a.uid, .gid = a.uid};
        if (chown(a.disk, owner.uid, owner.gid) < 0 || chmod(a.disk, 0600) < 0)
                return log_error("pl-guest: give %s to uid %u: %m", a.disk, owner.uid), 1;
        if (chmod(a.state, 0711) < 0)
                return log_error("pl-guest: chmod %s: %m", a.state), 1;
        GuestConfig c = {.name = a.name, .kernel = a.kernel, .initrd = a.initrd, .root_disk = a.disk,
                         .root_format = VM_DISK_QCOW2, .run_dir = run_dir, .memory_mib = a.memory_mib,
                         .accel = (VmAccel) accel, .owner = &owner};
        /* Handlers first: a Ctrl-C while the guest boots must not kill us
         * and leave its QEMU running (it outlives us); the boot finishes or
         * times out, then the VM is destroyed. */
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        _cleanup_(guest_freep) Guest *g = NULL;
        if (guest_start(d, &c, &g, &e) < 0)
                return log_error("pl-guest: %s", error_text(e)), 1;
        if (stop_requested) {
                log_info("guest %s: interrupted while booting; destroying it", g->name);
                (void) guest_destroy(g, NULL);
                return 1;
        }
        AgentGuestInfo info;
        if (agent_client_guest_info(g->agent, &info, 10000, NULL) >= 0)
                log_info("guest %s up in %.2f s: kernel %s, %" PRIu64 " KiB, agent %s", g->name, g->boot_usec / 1e6,
                         info.kernel_release, info.mem_total_kib, info.agent_version);
        /* QEMU's end of a virtio-serial port takes one client at a time: let
         * go of it, so a person can use pl-agent-cli meanwhile. */
        g->agent = agent_client_free(g->agent);
        printf("agent socket: %s\nconsole log:  %s\n", g->socket_path, g->console_path);
        fflush(stdout);

        supervise(g);
        AgentClientOptions o = {.handshake_timeout_ms = 5000};
        if (agent_client_connect_unix(&g->agent, g->socket_path, &o, &e) < 0) {
                log_warning("pl-guest: %s; destroying the VM", error_text(e));
                e = error_free(e);
        }
        if (guest_shutdown(g, 3000, 20000, &e) < 0)
                log_warning("pl-guest: %s", error_text(e));
        log_info("guest %s stopped and removed", g->name);
        return 0;
}
