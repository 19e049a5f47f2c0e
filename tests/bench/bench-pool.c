/* bench-pool.c: a container guest from the warm pool against a cold boot,
 * through the real stack (libvirt's embedded driver, the initramfs, the agent
 * as PID 1), in one run (scripts/bench-pool.sh adds the raw QEMU baseline):
 *   cold   guest_start (define + boot + agent HELLO), then exec `sleep`
 *   pool   guest_pool_take (resume, adopt, hot-plug the root disk, activate),
 *          then exec `sleep`; the pool refilled before each take
 *   par    N takes at once from a pool of N (and N cold boots at once)
 *   mem    QEMU PSS summed over N idle guests each way
 *   unique two clones' boot_id and 16 bytes of /dev/urandom
 * Usage: bench-pool KERNEL INITRD ROOTFS(raw) STATE_DIR [starts] [parallel] */
#include <errno.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench-util.h"
#include "common/base/io-util.h"
#include "portlayer/guest/guest.h"

#define MAX_GUESTS 16

static VmDriver *driver;
static const char *kernel, *initrd, *rootfs, *state;
static Guest *live[MAX_GUESTS * 2];
static GuestPool *pool;

static void cleanup(void) {
        for (size_t i = 0; i < MAX_GUESTS * 2; i++)
                if (live[i]) {
                        (void) guest_destroy(live[i], NULL);
                        live[i] = guest_free(live[i]);
                }
        pool = guest_pool_free(pool);
}

static _noreturn_ void die(const char *what, Error *e) {
        fprintf(stderr, "bench-pool: %s: %s\n", what, error_text(e));
        cleanup();
        exit(1);
}

static void report(const char *what, uint64_t *us, int n) {
        bench_sort_u64(us, (size_t) n);
        printf("%-44s n=%-3d median %8.0f ms  min %8.0f  max %8.0f\n", what, n, us[n / 2] / 1e3, us[0] / 1e3,
               us[n - 1] / 1e3);
}

/* The guests' QEMU runs as this uid (as the daemon's run as one of their
 * own), outside the daemon's default range; it gets each guest's disk and
 * run directory, and reads the shared files bench-pool.sh made readable. */
#define BENCH_UID 266000u
static const VmOwner bench_owner = {.uid = BENCH_UID, .gid = BENCH_UID};

/* Every pool guest's QEMU runs as BENCH_UID too, so a taken one opens the
 * disk config() gave that uid (one uid for all: this is a benchmark, not
 * the daemon's isolation). */
static int pool_owner_claim(void *userdata, const char *name, VmOwner *ret, Error **err) {
        (void) userdata, (void) name, (void) err;
        *ret = bench_owner;
        return 0;
}

static GuestConfig config(int i, char *name, char *run, char *disk) {
        snprintf(name, 64, "pl-bench-%d-%d", (int) getpid(), i);
        snprintf(run, 512, "%s/%s", state, name);
        snprintf(disk, 600, "%s/%s.qcow2", state, name);
        char cmd[1400];
        snprintf(cmd, sizeof cmd, "qemu-img create -q -f qcow2 -F raw -b '%s' '%s' 1G", rootfs, disk);
        if (system(cmd) != 0)
                die("qemu-img", NULL);
        if (chown(disk, BENCH_UID, BENCH_UID) < 0 || chmod(disk, 0600) < 0) {
                fprintf(stderr, "bench-pool: give %s to uid %u: %m\n", disk, BENCH_UID);
                cleanup();
                exit(1);
        }
        return (GuestConfig){.name = name, .container_id = name, .kernel = kernel, .initrd = initrd,
                             .root_disk = disk, .root_format = VM_DISK_QCOW2, .run_dir = run,
                             .boot_timeout_ms = 180000, .hostname = name, .owner = &bench_owner};
}

/* The container's main process: `sleep` started; returns once the agent
 * said it runs. */
static void start_main(Guest *g) {
        static const char *const argv[] = {"sleep", "100000", NULL};
        AgentExecSpec spec = {.argv = argv, .main = true};
        AgentProcess *p = NULL;
        Error *e = NULL;
        if (agent_client_exec(g->agent, &spec, &p, 30000, &e) < 0)
                die("exec sleep", e);
        agent_process_free(p);
}

typedef struct Start {
        int i;
        bool from_pool;
        uint64_t ready_us, main_us;
        Guest *g;
} Start;

static void *start_one(void *arg) {
        Start *s = arg;
        char name[64], run[512], disk[600];
        GuestConfig c = config(s->i, name, run, disk);
        Error *e = NULL;
        uint64_t t0 = now_usec();
        int r = s->from_pool ? guest_pool_take(pool, &c, &s->g, &e) : guest_start(driver, &c, &s->g, &e);
        if (r < 0)
                die(s->from_pool ? "take" : "boot", e);
        s->ready_us = now_usec() - t0;
        start_main(s->g);
        s->main_us = now_usec() - t0;
        return NULL;
}

static void wait_ready(unsigned n) {
        uint64_t deadline = deadline_after_ms(600000);
        while (guest_pool_ready(pool) < n)
                if (deadline_poll_ms(deadline) == 0)
                        die("the pool did not fill in 10 minutes", NULL);
                else
                        usleep(20000);
}

/* PSS (KiB) of the QEMU process of domain name (its "-name guest=NAME,"):
 * the pool's own ready guests are not counted. */
static unsigned long long qemu_pss_kib(const char *name) {
        char cmd[700];
        snprintf(cmd, sizeof cmd,
                 "for p in $(pgrep -f '[q]emu-system.*guest=%s,'); do awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup; "
                 "done | awk '{s+=$1} END {print s+0}'",
                 name);
        FILE *f = popen(cmd, "r");
        unsigned long long kib = 0;
        if (!f || fscanf(f, "%llu", &kib) != 1)
                kib = 0;
        if (f)
                pclose(f);
        return kib;
}

static void destroy_all(Start *s, int n) {
        for (int i = 0; i < n; i++) {
                (void) guest_destroy(s[i].g, NULL);
                s[i].g = guest_free(s[i].g);
        }
}

/* n starts at once (from the pool or cold); then the idle guests' PSS. */
static void parallel(int n, bool from_pool, int base) {
        Start s[MAX_GUESTS] = {0};
        pthread_t t[MAX_GUESTS];
        uint64_t t0 = now_usec(), ready[MAX_GUESTS], main_us[MAX_GUESTS];
        for (int i = 0; i < n; i++) {
                s[i] = (Start){.i = base + i, .from_pool = from_pool};
                pthread_create(&t[i], NULL, start_one, &s[i]);
        }
        for (int i = 0; i < n; i++) {
                pthread_join(t[i], NULL);
                live[i] = s[i].g;
                ready[i] = s[i].ready_us;
                main_us[i] = s[i].main_us;
        }
        uint64_t wall = now_usec() - t0;
        char what[80];
        snprintf(what, sizeof what, "%d at once, %s: to main running", n, from_pool ? "pool" : "cold");
        report(what, main_us, n);
        printf("%-44s %.0f ms\n", "  wall time for all", wall / 1e3);
        (void) ready;
        sleep(5); /* idle */
        unsigned long long kib = 0;
        for (int i = 0; i < n; i++)
                kib += qemu_pss_kib(s[i].g->name);
        printf("%-44s %llu MiB total, %llu MiB each\n", from_pool ? "  QEMU PSS, idle, pool" : "  QEMU PSS, idle, cold",
               kib / 1024, kib / 1024 / (unsigned long long) n);
        destroy_all(s, n);
        memset(live, 0, sizeof live);
}

static void unique(void) {
        Start s[2] = {{.i = 900, .from_pool = true}, {.i = 901, .from_pool = true}};
        for (int i = 0; i < 2; i++) {
                wait_ready(1);
                start_one(&s[i]);
                live[i] = s[i].g;
        }
        char out[2][512] = {{0}};
        for (int i = 0; i < 2; i++) {
                static const char *const argv[] = {
                        "sh", "-c", "cat /proc/sys/kernel/random/boot_id; od -An -tx1 -N16 /dev/urandom; date +%s", NULL};
                AgentExecSpec spec = {.argv = argv, .capture_stdout = true};
                AgentProcess *p = NULL;
                AgentProcessInfo info;
                Error *e = NULL;
                if (agent_client_exec(s[i].g->agent, &spec, &p, 30000, &e) < 0)
                        die("uniqueness probe", e);
                size_t n = 0;
                ssize_t k;
                while ((k = agent_process_read(p, AGENT_STREAM_STDOUT, out[i] + n, sizeof out[i] - 1 - n, 30000, &e)) > 0)
                        n += (size_t) k;
                if (k < 0 || agent_process_wait(p, &info, 30000, &e) < 0)
                        die("uniqueness probe", e);
                agent_process_free(p);
                printf("clone %d: %s", i, out[i]);
        }
        printf("clones differ: %s\n", strcmp(out[0], out[1]) != 0 ? "yes" : "NO");
        destroy_all(s, 2);
        memset(live, 0, sizeof live);
}

int main(int argc, char **argv) {
        if (argc < 5) {
                fprintf(stderr, "usage: bench-pool KERNEL INITRD ROOTFS STATE_DIR [starts] [parallel]\n");
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        kernel = argv[1], initrd = argv[2], rootfs = argv[3], state = argv[4];
        int starts = argc > 5 ? atoi(argv[5]) : 5, par = argc > 6 ? atoi(argv[6]) : 5;
        if (starts < 1 || starts > MAX_GUESTS || par < 1 || par > MAX_GUESTS)
                return 2;
        char path[600];
        snprintf(path, sizeof path, "%s/vm", state);
        Error *e = NULL;
        if (vm_driver_open(&vm_driver_libvirt, &driver, NULL, path, NULL, NULL, &e) < 0)
                die("open libvirt", e);

        uint64_t ready[MAX_GUESTS], main_us[MAX_GUESTS];
        for (int i = 0; i < starts; i++) {
                Start s = {.i = i};
                start_one(&s);
                ready[i] = s.ready_us, main_us[i] = s.main_us;
                destroy_all(&s, 1);
        }
        report("cold: create -> agent ready", ready, starts);
        report("cold: create -> main process running", main_us, starts);

        snprintf(path, sizeof path, "%s/pool", state);
        char n0[64], r0[512], d0[600];
        GuestPoolConfig pc = {.dir = path, .size = (unsigned) par, .guest = config(999, n0, r0, d0),
                              .owner_claim = pool_owner_claim};
        uint64_t t0 = now_usec();
        if (guest_pool_new(driver, &pc, &pool, &e) < 0)
                die("pool", e);
        wait_ready(1);
        printf("%-44s %.0f ms\n", "pool: first guest ready after", (now_usec() - t0) / 1e3);
        for (int i = 0; i < starts; i++) {
                wait_ready(1);
                Start s = {.i = 100 + i, .from_pool = true};
                start_one(&s);
                ready[i] = s.ready_us, main_us[i] = s.main_us;
                destroy_all(&s, 1);
        }
        report("pool: take -> agent ready (activated)", ready, starts);
        report("pool: take -> main process running", main_us, starts);

        unique();

        wait_ready((unsigned) par);
        parallel(par, true, 200);
        pool = guest_pool_free(pool);
        parallel(par, false, 300);
        vm_driver_close(driver);
        return 0;
}
