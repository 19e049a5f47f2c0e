/* bench-guest.c: our guest path, measured through the real stack: libvirt's
 * embedded driver, the initramfs, the agent as PID 1, virtio-serial.
 *   boot   domain create -> agent HELLO (guest_start), N boots
 *   exec   exec+wait of `true` over virtio-serial
 *   copy   copy-out and copy-in of a file over virtio-serial
 * The baselines (raw QEMU boot to /init, raw channel throughput) are measured
 * by scripts/bench-boot.sh in the same run.
 * Usage: bench-guest KERNEL INITRD ROOTFS(raw) STATE_DIR [boots] [execs] [copy-MiB] */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench-util.h"
#include "common/base/io-util.h"
#include "portlayer/guest/guest.h"

static void report(const char *what, uint64_t *us, int n) {
        bench_sort_u64(us, (size_t) n);
        printf("%-34s n=%-3d median %8.3f ms  min %8.3f  max %8.3f\n", what, n, us[n / 2] / 1e3, us[0] / 1e3,
               us[n - 1] / 1e3);
}

/* The guest being measured: destroyed on every exit path, since a QEMU
 * started through libvirt's embedded driver outlives this process. */
static Guest *live_guest;

static int die(const char *what, Error *e) {
        fprintf(stderr, "bench-guest: %s: %s\n", what, error_text(e));
        if (live_guest)
                (void) guest_destroy(live_guest, NULL);
        exit(1);
}

static Guest *boot_one(VmDriver *d, const char *kernel, const char *initrd, const char *rootfs, const char *state,
                       int i) {
        char name[64], run[512], disk[600], cmd[1400];
        snprintf(name, sizeof name, "pl-bench-%d-%d", (int) getpid(), i);
        snprintf(run, sizeof run, "%s/%s", state, name);
        mkdir(run, 0700);
        snprintf(disk, sizeof disk, "%s/root.qcow2", run);
        snprintf(cmd, sizeof cmd, "qemu-img create -q -f qcow2 -F raw -b '%s' '%s' 1G", rootfs, disk);
        if (system(cmd) != 0)
                die("qemu-img", NULL);
        GuestConfig c = {.name = name, .kernel = kernel, .initrd = initrd, .root_disk = disk,
                         .root_format = VM_DISK_QCOW2, .run_dir = run, .boot_timeout_ms = 120000};
        Guest *g = NULL;
        Error *e = NULL;
        if (guest_start(d, &c, &g, &e) < 0)
                die("boot", e);
        return g;
}

static void bench_copy(Guest *g, const char *state, unsigned mib) {
        char script[128];
        snprintf(script, sizeof script, "dd if=/dev/zero of=/bench.bin bs=1048576 count=%u 2>/dev/null && sync", mib);
        const char *const mk[] = {"sh", "-c", script, NULL};
        AgentExecSpec spec = {.argv = mk};
        AgentProcess *p = NULL;
        AgentProcessInfo info;
        Error *e = NULL;
        if (agent_client_exec(g->agent, &spec, &p, 10000, &e) < 0 || agent_process_wait(p, &info, 600000, &e) < 0)
                die("make file", e);
        agent_process_free(p);
        if (info.exit_code != 0)
                die("make file: dd exited non-zero", NULL);

        char path[600];
        snprintf(path, sizeof path, "%s/out.tar", state);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        AgentCopyStats st;
        uint64_t t0 = now_usec();
        if (agent_client_copy_out(g->agent, "/bench.bin", fd, &st, 600000, &e) < 0)
                die("copy-out", e);
        double s = (now_usec() - t0) / 1e6;
        close(fd);
        printf("%-34s %u MiB in %.2f s = %6.1f MiB/s\n", "agent copy-out (virtio-serial)", mib, s, st.bytes / 1048576.0 / s);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        t0 = now_usec();
        if (agent_client_copy_in(g->agent, "/in", fd, &st, 600000, &e) < 0)
                die("copy-in", e);
        s = (now_usec() - t0) / 1e6;
        close(fd);
        unlink(path);
        printf("%-34s %u MiB in %.2f s = %6.1f MiB/s\n", "agent copy-in (virtio-serial)", mib, s, st.bytes / 1048576.0 / s);
}

int main(int argc, char **argv) {
        if (argc < 5) {
                fprintf(stderr, "usage: bench-guest KERNEL INITRD ROOTFS STATE_DIR [boots] [execs] [copy-MiB]\n");
                return 2;
        }
        int boots = argc > 5 ? atoi(argv[5]) : 5, execs = argc > 6 ? atoi(argv[6]) : 50;
        unsigned mib = argc > 7 ? (unsigned) atoi(argv[7]) : 64;
        char libvirt_state[600];
        snprintf(libvirt_state, sizeof libvirt_state, "%s/vm", argv[4]);
        VmDriver *d = NULL;
        Error *e = NULL;
        if (vm_driver_open(&vm_driver_libvirt, &d, NULL, libvirt_state, NULL, NULL, &e) < 0)
                die("open libvirt", e);

        uint64_t *us = calloc((size_t) (boots > execs ? boots : execs), sizeof *us);
        uint64_t *create_us = calloc((size_t) boots, sizeof *create_us);
        Guest *g = NULL;
        for (int i = 0; i < boots; i++) {
                g = live_guest = boot_one(d, argv[1], argv[2], argv[3], argv[4], i);
                us[i] = g->boot_usec;
                create_us[i] = g->create_usec;
                if (i + 1 < boots) {
                        (void) guest_destroy(g, NULL);
                        g = live_guest = guest_free(g);
                }
        }
        report("domain define + start", create_us, boots);
        report("domain create -> agent HELLO", us, boots);
        free(create_us);

        static const char *const t[] = {"true", NULL};
        for (int i = 0; i < execs; i++) {
                uint64_t t0 = now_usec();
                AgentExecSpec spec = {.argv = t};
                AgentProcess *p = NULL;
                AgentProcessInfo info;
                if (agent_client_exec(g->agent, &spec, &p, 10000, &e) < 0 || agent_process_wait(p, &info, 10000, &e) < 0)
                        die("exec", e);
                agent_process_free(p);
                us[i] = now_usec() - t0;
        }
        report("exec+wait `true` (virtio-serial)", us, execs);
        bench_copy(g, argv[4], mib);
        (void) guest_destroy(g, NULL);
        live_guest = guest_free(g);
        vm_driver_close(d);
        free(us);
        return 0;
}
