/* guest.c: a container VM and its agent, started together (see guest.h). */
#include "portlayer/guest/guest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/base/log.h"

#define GUEST_ATTEMPT_MS 1500
#define GUEST_VSOCK_PORT 1024 /* the agent's port in guests (pl.vsock) */
#define GUEST_CONSOLE_TAIL 1500

static char *console_tail_at(const char *path, size_t max_bytes) {
        _cleanup_close_ int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        char *buf = calloc(1, max_bytes + 1);
        if (!buf || fd < 0)
                return buf;
        off_t end = lseek(fd, 0, SEEK_END);
        off_t start = end > (off_t) max_bytes ? end - (off_t) max_bytes : 0;
        ssize_t n = pread(fd, buf, max_bytes, start);
        buf[n > 0 ? n : 0] = 0;
        for (char *p = buf; *p; p++) /* the guest is untrusted: keep it printable */
                if ((unsigned char) *p < 0x20 && *p != '\n')
                        *p = ' ';
        return buf;
}

char *guest_console_tail(const Guest *g, size_t max_bytes) {
        return console_tail_at(g->console_path, max_bytes);
}

Guest *guest_free(Guest *g) {
        if (!g)
                return NULL;
        agent_client_free(g->agent);
        free(g->name);
        free(g->socket_path);
        free(g->console_path);
        free(g);
        return NULL;
}

/* The run directory and the console log belong to QEMU's uid, and to it
 * alone: another VM's uid can neither list the directory nor open its
 * socket or log. The log is made here, so it never is root's. */
static int guest_give_run_dir(Guest *g, const GuestConfig *c) {
        if (!c->owner)
                return 0;
        _cleanup_close_ int dfd = open(c->run_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0 || fchown(dfd, c->owner->uid, c->owner->gid) < 0 || fchmod(dfd, 0700) < 0)
                return -errno;
        _cleanup_close_ int fd = openat(dfd, "console.log", O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 || fchown(fd, c->owner->uid, c->owner->gid) < 0 || fchmod(fd, 0600) < 0)
                return -errno;
        return 0;
}

static int guest_paths(Guest *g, const GuestConfig *c, Error **err) {
        if (!c->run_dir || c->run_dir[0] != '/')
                return error_set(err, EINVAL, "guest '%s': run_dir must be an absolute path", c->name);
        if (mkdir(c->run_dir, 0700) < 0 && errno != EEXIST)
                return error_set_errno(err, errno, "guest '%s': create %s", c->name, c->run_dir);
        if (asprintf(&g->socket_path, "%s/agent.sock", c->run_dir) < 0 ||
            asprintf(&g->console_path, "%s/console.log", c->run_dir) < 0)
                return -ENOMEM;
        int r = guest_give_run_dir(g, c);
        if (r < 0)
                return error_set_errno(err, -r, "guest '%s': give %s to uid %u", c->name, c->run_dir, c->owner->uid);
        if (strlen(g->socket_path) > VM_SOCKET_PATH_MAX)
                return error_set(err, ENAMETOOLONG, "guest '%s': socket path %s is longer than %d bytes", c->name,
                                 g->socket_path, VM_SOCKET_PATH_MAX);
        (void) unlink(g->socket_path);
        return 0;
}

static int guest_create_vm(Guest *g, const GuestConfig *c, Error **err) {
        _cleanup_free_ char *cmdline = NULL;
        /* no_timer_check: under TCG on a loaded host the kernel's check
         * that the IO-APIC timer ticks can fail and panic the boot ("IO-APIC
         * + timer doesn't work!"); the emulated timer is known to work. */
        char report[32] = "";
        if (c->free_page_reporting)
                snprintf(report, sizeof report, " pl.report_order=%d", GUEST_REPORT_ORDER);
        if (asprintf(&cmdline, "console=ttyS0 panic=-1 random.trust_cpu=on loglevel=4 no_timer_check pl.hostname=%s %s%s%s%s%s",
                     c->hostname ? c->hostname : c->name, c->pool_key ? "pl.pool=1" : "pl.root=",
                     c->pool_key ? "" : GUEST_ROOT_SERIAL, report, c->extra_cmdline ? " " : "",
                     c->extra_cmdline ? c->extra_cmdline : "") < 0)
                return -ENOMEM;
        if (c->n_extra_disks > VM_DISKS_MAX - 1 || (c->n_extra_disks > 0 && !c->extra_disks))
                return error_set(err, EINVAL, "guest '%s': %zu extra disks, at most %d", c->name, c->n_extra_disks,
                                 VM_DISKS_MAX - 1);
        VmDisk disks[VM_DISKS_MAX];
        disks[0] = (VmDisk){.path = c->root_disk, .format = c->root_format, .serial = GUEST_ROOT_SERIAL};
        for (size_t i = 0; i < c->n_extra_disks; i++)
                disks[i + 1] = c->extra_disks[i];
        VmSpec spec = {
                .name = c->name, .container_id = c->container_id ? c->container_id : c->name,
                .memory_mib = c->memory_mib ? c->memory_mib : 256, .vcpus = c->vcpus ? c->vcpus : 1,
                .accel = c->accel, .kernel = c->kernel, .initrd = c->initrd, .cmdline = cmdline,
                .disks = c->pool_key ? NULL : disks, .n_disks = c->pool_key ? 0 : 1 + c->n_extra_disks,
                .pool_key = c->pool_key, .agent_socket = g->socket_path,
                .console_log = g->console_path, .vsock = c->vsock, .nics = c->nics, .n_nics = c->n_nics,
                .filesystems = c->filesystems, .n_filesystems = c->n_filesystems, .owner = c->owner,
                .tb_cache_mib = c->tb_cache_mib, .free_page_reporting = c->free_page_reporting,
                .no_share_pages = c->no_share_pages,
        };
        return vm_driver_create(g->driver, &spec, err);
}

/* One connection attempt over the guest's transport. */
static int guest_connect_once(Guest *g, const AgentClientOptions *o, Error **err) {
        if (!g->vsock)
                return agent_client_connect_unix(&g->agent, g->socket_path, o, err);
        if (g->cid == 0) {
                int r = vm_driver_vsock_cid(g->driver, g->name, &g->cid, err);
                if (r < 0)
                        return r;
        }
        return agent_client_connect_vsock(&g->agent, g->cid, GUEST_VSOCK_PORT, o, err);
}

/* Connects to the agent, attempt by attempt, as long as the VM runs. */
static int guest_connect(Guest *g, int timeout_ms, Error **err) {
        uint64_t deadline = deadline_after_ms(timeout_ms);
        AgentClientOptions o = {.handshake_timeout_ms = GUEST_ATTEMPT_MS};
        for (;;) {
                _cleanup_error_ Error *e = NULL;
                if (guest_connect_once(g, &o, &e) >= 0)
                        return 0;
                VmState st = VM_STATE_UNKNOWN;
                (void) vm_driver_state(g->driver, g->name, &st, NULL);
                if (st != VM_STATE_RUNNING) {
                        _cleanup_free_ char *tail = guest_console_tail(g, GUEST_CONSOLE_TAIL);
                        return error_set(err, ECHILD, "guest '%s' stopped (%s) before its agent answered; console:\n%s",
                                         g->name, vm_state_to_string(st), tail);
                }
                if (deadline_poll_ms(deadline) == 0) {
                        _cleanup_free_ char *tail = guest_console_tail(g, GUEST_CONSOLE_TAIL);
                        return error_set(err, ETIMEDOUT, "guest '%s': agent did not answer within %d ms (%s); console:\n%s",
                                         g->name, timeout_ms, error_text(e), tail);
                }
        }
}

static int guest_check_boot(Guest *g, Error **err) {
        AgentGuestInfo info;
        int r = agent_client_guest_info(g->agent, &info, 10000, err);
        if (r < 0)
                return error_prefix(err, "guest '%s'", g->name);
        if (info.boot_error[0])
                return error_set(err, EIO, "guest '%s' failed to boot: %s", g->name, info.boot_error);
        /* Not fatal: the container runs with the image's filesystem size. */
        if (info.root_grow_error[0])
                log_warning("guest '%s': %s", g->name, info.root_grow_error);
        return 0;
}

int guest_start(VmDriver *d, const GuestConfig *c, Guest **ret, Error **err) {
        Guest *g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->driver = d;
        g->vsock = c->vsock;
        g->name = strdup(c->name ? c->name : "");
        if (!g->name) {
                guest_free(g);
                return -ENOMEM;
        }
        uint64_t t0 = now_usec();
        int r = guest_paths(g, c, err);
        if (r >= 0)
                r = guest_create_vm(g, c, err);
        if (r < 0)
                goto fail_free;
        g->create_usec = now_usec() - t0;
        r = guest_connect(g, c->boot_timeout_ms ? c->boot_timeout_ms : 60000, err);
        if (r >= 0) {
                g->boot_usec = now_usec() - t0;
                r = guest_check_boot(g, err);
        }
        if (r < 0)
                goto fail_destroy;
        log_debug("guest '%s': agent answered after %.3f s", g->name, g->boot_usec / 1e6);
        *ret = g;
        return 0;

fail_destroy:
        (void) vm_driver_destroy(d, g->name, NULL);
fail_free:
        guest_free(g);
        return r;
}

int guest_attach(VmDriver *d, const char *name, const char *run_dir, bool vsock, int timeout_ms, Guest **ret,
                 Error **err) {
        VmState st = VM_STATE_MISSING;
        int r = vm_driver_state(d, name, &st, err);
        if (r < 0)
                return r;
        if (st != VM_STATE_RUNNING)
                return error_set(err, ENOENT, "guest '%s' is %s, not running", name, vm_state_to_string(st));
        _cleanup_(guest_freep) Guest *g = calloc(1, sizeof(*g));
        if (!g || !(g->name = strdup(name)) || asprintf(&g->socket_path, "%s/agent.sock", run_dir) < 0 ||
            asprintf(&g->console_path, "%s/console.log", run_dir) < 0)
                return error_oom(err);
        g->driver = d;
        g->vsock = vsock;
        AgentClientOptions o = {.handshake_timeout_ms = timeout_ms};
        r = guest_connect_once(g, &o, err);
        if (r < 0)
                return error_prefix(err, "guest '%s'", name);
        *ret = TAKE_PTR(g);
        return 0;
}

int guest_destroy(Guest *g, Error **err) {
        return vm_driver_destroy(g->driver, g->name, err);
}

int guest_shutdown(Guest *g, uint32_t grace_ms, int timeout_ms, Error **err) {
        int r = g->agent ? agent_client_shutdown(g->agent, grace_ms, 5000, NULL) : -ENOTCONN;
        uint64_t deadline = deadline_after_ms(timeout_ms);
        VmState st = VM_STATE_RUNNING;
        while (r >= 0 && deadline_poll_ms(deadline) > 0) {
                if (vm_driver_state(g->driver, g->name, &st, NULL) < 0 || st != VM_STATE_RUNNING)
                        break;
                usleep(50 * 1000);
        }
        bool clean = r >= 0 && st != VM_STATE_RUNNING;
        int k = guest_destroy(g, err);
        if (k < 0)
                return k;
        if (!clean)
                return error_set(err, ETIMEDOUT, "guest '%s' did not power off within %d ms: destroyed", g->name,
                                 timeout_ms);
        return 0;
}
