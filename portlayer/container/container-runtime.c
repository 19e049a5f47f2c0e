/* container-runtime.c: a container's VM and main process: start, the
 * monitor that notices the end, stop, pause and resume.
 *
 * Start boots the VM on the container's disk (guest.c), extracts pending
 * copy-ins, and starts the main process with its output captured. A monitor
 * thread then waits for that process; its output goes to <dir>/main.log
 * (container-log.c). When the process ends, the agent powers the guest off
 * by itself (it was started as the main process) and the monitor records the
 * exit code, undefines the VM and drops the runtime. When the agent
 * connection breaks instead (QEMU died, the guest panicked), the monitor asks
 * the driver what happened and records that as the reason. */
#include "container-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/json/json-util.h"

#define AGENT_RPC_MS 30000
#define POWEROFF_WAIT_MS 10000
#define VM_SETTLE_MS 2000 /* a broken connection can come before the driver sees the VM end */
#define KILL_WAIT_MS 5000
#define CONTAINER_EXIT_UNKNOWN 255 /* no exit status: the VM ended first */

void runtime_unref(ContainerHost *h, Runtime *rt) {
        if (!rt)
                return;
        pthread_mutex_lock(&h->lock);
        bool last = --rt->refs == 0;
        pthread_mutex_unlock(&h->lock);
        if (!last)
                return;
        agent_process_free(rt->main);
        guest_free(rt->guest);
        free(rt);
}

int container_runtime_get(ContainerHost *h, Container *c, Runtime **ret, Error **err) {
        pthread_mutex_lock(&h->lock);
        Runtime *rt = c->state == CONTAINER_RUNNING ? c->rt : NULL;
        if (rt)
                rt->refs++;
        ContainerState s = c->state;
        pthread_mutex_unlock(&h->lock);
        if (!rt)
                return error_set(err, EBADFD, "container %s is %s, not running", c->name, container_state_to_string(s));
        *ret = rt;
        return 0;
}

int container_copy_in_file(Runtime *rt, const char *dir, const char *file, Error **err) {
        _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return error_set_errno(err, errno, "open %s", file);
        int r = agent_client_copy_in(rt->guest->agent, dir, fd, NULL, AGENT_RPC_MS * 10, err);
        return r < 0 ? error_prefix(err, "copy into %s", dir) : 0;
}

static int start_copy_pending(ContainerHost *h, Container *c, Runtime *rt, Error **err) {
        pthread_mutex_lock(&h->lock);
        _cleanup_json_ json_t *pending = json_incref(c->pending);
        pthread_mutex_unlock(&h->lock);
        size_t i;
        json_t *f;
        json_array_foreach(pending, i, f) {
                int r = container_copy_in_file(rt, json_string_value(json_object_get(f, "dir")),
                                               json_string_value(json_object_get(f, "file")), err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int start_main(ContainerHost *h, Container *c, Runtime *rt, Error **err) {
        pthread_mutex_lock(&h->lock);
        _cleanup_json_ json_t *config = json_incref(c->config);
        pthread_mutex_unlock(&h->lock);
        _cleanup_free_ const char **argv = NULL, **env = NULL;
        int r = container_config_argv(config, &argv, &env, err);
        if (r < 0)
                return r;
        AgentExecSpec spec = {
                .argv = argv, .env = env, .workdir = json_string_value(json_object_get(config, "workdir")),
                .user = json_string_value(json_object_get(config, "user")), .capture_stdout = true,
                .capture_stderr = true, .main = true, .tty = json_is_true(json_object_get(config, "tty")),
                .open_stdin = json_is_true(json_object_get(config, "open_stdin")), .rows = 24, .cols = 80,
        };
        /* The terminal's first size: a client that resizes only after the
         * start would lose the race against a short-lived process. */
        json_int_t rows = json_integer_value(json_object_get(config, "tty_rows"));
        json_int_t cols = json_integer_value(json_object_get(config, "tty_cols"));
        if (rows > 0 && cols > 0) {
                spec.rows = (uint16_t) rows;
                spec.cols = (uint16_t) cols;
        }
        r = agent_client_exec(rt->guest->agent, &spec, &rt->main, AGENT_RPC_MS, err);
        if (r < 0)
                return error_prefix(err, "start %s", argv[0]);
        rt->main_id = agent_process_id(rt->main);
        return 0;
}

static int start_guest(ContainerHost *h, Container *c, const ContainerMounts *cm, Guest **ret, Error **err) {
        pthread_mutex_lock(&h->lock);
        json_int_t mem = json_integer_value(json_object_get(c->config, "memory_mb"));
        json_int_t vcpus = json_integer_value(json_object_get(c->config, "vcpus"));
        bool no_share_pages = json_is_false(json_object_get(c->config, "share_pages"));
        /* its own uid, or root where the daemon was told to allow it */
        VmOwner owner = {.uid = c->uid, .gid = c->uid};
        pthread_mutex_unlock(&h->lock);
        GuestConfig gc = {
                .owner = &owner,
                .name = c->domain, .container_id = c->id, .kernel = h->kernel, .initrd = h->initrd,
                .root_disk = c->disk, .root_format = VM_DISK_QCOW2, .run_dir = c->run_dir, .hostname = c->name,
                .memory_mib = mem > 0 ? (uint64_t) mem : CONTAINER_MEMORY_MB_DEFAULT,
                .vcpus = vcpus > 0 ? (unsigned) vcpus : 1, .accel = h->accel, .boot_timeout_ms = h->boot_timeout_ms,
                .extra_cmdline = h->extra_cmdline, .vsock = strcmp(h->transport, "vsock") == 0,
                .extra_disks = cm->disks, .n_extra_disks = cm->n_disks, .filesystems = cm->filesystems,
                .n_filesystems = cm->n_filesystems, .tb_cache_mib = h->tb_cache_mib,
                .free_page_reporting = h->free_page_reporting,
                .no_share_pages = no_share_pages,
        };
        NetworkLease lease;
        char tap[NETWORK_IFNAME_MAX + 1];
        VmNic nic;
        if (container_network_nic(h, c, &lease, tap, &nic) > 0) {
                gc.nics = &nic;
                gc.n_nics = 1;
        }
        /* A domain left defined by an earlier run of this container goes. */
        (void) vm_driver_destroy(h->driver, c->domain, NULL);
        if (container_start_from_pool(h, c, &gc, ret) > 0)
                return 0;
        /* a take that failed after the hand-over left c the pool guest's
         * uid: the cold boot runs as that, with the disk and volumes its */
        pthread_mutex_lock(&h->lock);
        uint32_t before = owner.uid;
        owner = (VmOwner){.uid = c->uid, .gid = c->uid};
        pthread_mutex_unlock(&h->lock);
        if (owner.uid != before) {
                int r = container_owner_give_disk(h, c, err);
                if (r >= 0)
                        r = container_owner_give_volumes(h, c, cm->disks, cm->n_disks, err);
                if (r < 0)
                        return r;
        }
        gc.name = c->domain;
        return guest_start(h->driver, &gc, ret, err);
}

/* Once per boot, before anything runs in the guest: the agent mounts the
 * volumes and bind mounts in order. */
/* Once per boot, before anything runs in the guest: the agent configures
 * the container's NIC (container-network-guest.c) and mounts the volumes
 * and bind mounts in order, in one request. */
static int start_setup(ContainerHost *h, Container *c, Runtime *rt, const ContainerMounts *cm, Error **err) {
        NetworkLease lease;
        char cidr[24];
        AgentInterface ifc;
        size_t n_ifs = container_network_interface(h, c, &lease, cidr, &ifc) > 0 ? 1 : 0;
        if (cm->n_mounts == 0 && n_ifs == 0)
                return 0;
        int r = agent_client_setup(rt->guest->agent, &ifc, n_ifs, cm->mounts, cm->n_mounts, AGENT_RPC_MS, err);
        return r < 0 ? error_prefix(err, "set up the guest") : 0;
}

static void pending_clear_locked(Container *c) {
        size_t i;
        json_t *f;
        json_array_foreach(c->pending, i, f)
                (void) unlink(json_string_value(json_object_get(f, "file")));
        json_array_clear(c->pending);
}

int container_start(ContainerHost *h, Container *c, Error **err) {
        uint64_t t0 = now_usec();
        /* a container recorded before uids existed gets one now */
        int r = container_owner_claim(h, c, err);
        if (r < 0)
                return error_prefix(err, "start container %s", c->name);
        pthread_mutex_lock(&h->lock);
        if (c->rt) {
                pthread_mutex_unlock(&h->lock);
                return error_set(err, EBUSY, "container %s is already running", c->name);
        }
        r = container_mounts_claim_locked(h, c, err);
        if (r < 0) {
                pthread_mutex_unlock(&h->lock);
                return error_prefix(err, "start container %s", c->name);
        }
        c->state_before = c->state;
        c->transport = h->transport; /* recorded: a restart reattaches the same way */
        container_set_state_locked(h, c, CONTAINER_STARTING);
        pthread_mutex_unlock(&h->lock);

        ContainerMounts cm = {0};
        Runtime *rt = calloc(1, sizeof(*rt));
        r = rt ? container_mounts_prepare(h, c, &cm, err) : error_oom(err);
        if (r >= 0)
                r = container_owner_give_volumes(h, c, cm.disks, cm.n_disks, err);
        if (r >= 0)
                r = start_guest(h, c, &cm, &rt->guest, err);
        if (r >= 0)
                r = start_setup(h, c, rt, &cm, err);
        container_mounts_clear(&cm);
        if (r >= 0)
                r = container_network_etc(h, c, rt, err);
        if (r >= 0)
                r = container_network_forwards_add(h, c, err);
        if (r >= 0)
                r = start_copy_pending(h, c, rt, err);
        if (r >= 0)
                r = start_main(h, c, rt, err);
        if (r < 0) {
                if (rt && rt->guest)
                        (void) guest_destroy(rt->guest, NULL);
                if (rt) {
                        agent_process_free(rt->main);
                        guest_free(rt->guest);
                        free(rt);
                }
                pthread_mutex_lock(&h->lock);
                container_set_state_locked(h, c, c->state_before);
                pthread_mutex_unlock(&h->lock);
                container_metrics_start(h, false, 0);
                return error_prefix(err, "start container %s", c->name);
        }
        rt->refs = 1;
        pthread_mutex_lock(&h->lock);
        c->rt = rt;
        c->pid = agent_process_pid(rt->main);
        c->main_id = rt->main_id;
        _cleanup_json_ json_t *was_started = TAKE_PTR(c->started_config);
        c->started_config = json_incref(c->config);
        c->started_ns = (int64_t) realtime_nsec();
        c->finished_ns = 0;
        c->exit_code = -1;
        c->error = mfree(c->error);
        pending_clear_locked(c);
        container_set_state_locked(h, c, CONTAINER_RUNNING);
        pthread_mutex_unlock(&h->lock);
        /* Volumes only the earlier start's configuration mounted are free now. */
        container_mounts_release(h, c->id, c->config, NULL, was_started);
        container_metrics_start(h, true, now_usec() - t0);
        log_info("container %s (%.12s) running: VM %s booted in %.2f s", c->name, c->id, c->domain,
                 rt->guest->boot_usec / 1e6);
        r = container_monitor_start(h, c);
        /* After the monitor runs: the main process's output is drained
         * meanwhile. */
        container_network_peers_changed(h, c->id, false);
        return r;
}

/* Waits (lock held) until the monitor dropped c's runtime or deadline. */
static bool wait_stopped_locked(ContainerHost *h, Container *c, uint64_t deadline) {
        while (c->rt)
                if (!container_host_wait_locked(h, deadline))
                        return false;
        return true;
}

int container_stop(ContainerHost *h, Container *c, int timeout_s, Error **err) {
        pthread_mutex_lock(&h->lock);
        Runtime *rt = c->rt;
        if (!rt) {
                pthread_mutex_unlock(&h->lock);
                return 0;
        }
        rt->refs++;
        bool paused = c->state == CONTAINER_PAUSED;
        int sig = container_config_stop_signal(c->config);
        if (timeout_s < 0) {
                json_t *t = json_object_get(c->config, "stop_timeout_s");
                timeout_s = t ? (int) json_integer_value(t) : CONTAINER_STOP_TIMEOUT_DEFAULT;
        }
        container_set_state_locked(h, c, CONTAINER_STOPPING);
        pthread_mutex_unlock(&h->lock);

        /* A paused guest cannot take a signal: it runs again first. */
        if (paused)
                (void) vm_driver_resume(h->driver, c->domain, NULL);
        if (timeout_s > 0)
                (void) agent_client_signal(rt->guest->agent, rt->main_id, sig, false, NULL);
        pthread_mutex_lock(&h->lock);
        bool done = wait_stopped_locked(h, c, deadline_after_ms(timeout_s * 1000));
        pthread_mutex_unlock(&h->lock);
        if (!done) {
                (void) agent_client_signal(rt->guest->agent, 0, SIGKILL, true, NULL);
                pthread_mutex_lock(&h->lock);
                done = wait_stopped_locked(h, c, deadline_after_ms(KILL_WAIT_MS));
                pthread_mutex_unlock(&h->lock);
        }
        if (!done) {
                /* Power off: the agent connection breaks and the monitor ends. */
                (void) vm_driver_destroy(h->driver, c->domain, NULL);
                agent_client_close(rt->guest->agent, "the VM was destroyed");
                pthread_mutex_lock(&h->lock);
                done = wait_stopped_locked(h, c, deadline_after_ms(AGENT_RPC_MS));
                pthread_mutex_unlock(&h->lock);
        }
        runtime_unref(h, rt);
        return done ? 0 : error_set(err, ETIMEDOUT, "container %s did not stop", c->name);
}

static int pause_or_resume(ContainerHost *h, Container *c, bool pause, Error **err) {
        int r = pause ? vm_driver_suspend(h->driver, c->domain, err) : vm_driver_resume(h->driver, c->domain, err);
        if (r < 0)
                return error_prefix(err, "%s container %s", pause ? "pause" : "unpause", c->name);
        pthread_mutex_lock(&h->lock);
        container_set_state_locked(h, c, pause ? CONTAINER_PAUSED : CONTAINER_RUNNING);
        pthread_mutex_unlock(&h->lock);
        return 0;
}

int container_pause(ContainerHost *h, Container *c, Error **err) {
        return pause_or_resume(h, c, true, err);
}

int container_resume(ContainerHost *h, Container *c, Error **err) {
        return pause_or_resume(h, c, false, err);
}

/* --- the monitor --- */

typedef struct Monitor {
        ContainerHost *h;
        Container *c;
        Runtime *rt;
} Monitor;

typedef struct LogReader {
        Runtime *rt;
        AgentStream stream;
        ContainerLog *log;
} LogReader;

static void *log_reader_main(void *arg) {
        LogReader *lr = arg;
        char buf[32768];
        for (;;) {
                ssize_t n = agent_process_read(lr->rt->main, lr->stream, buf, sizeof buf, -1, NULL);
                if (n <= 0)
                        break;
                (void) container_log_append(lr->log, lr->stream, buf, (size_t) n);
        }
        return NULL;
}

/* Why the main process has no exit status: what the driver says of the VM. */
static char *vm_end_reason(ContainerHost *h, Container *c, const Error *e) {
        VmState st = VM_STATE_UNKNOWN;
        (void) vm_driver_state(h->driver, c->domain, &st, NULL);
        char *s = NULL;
        if (asprintf(&s, "the VM ended before the main process (VM %s; agent: %s)", vm_state_to_string(st),
                     error_text(e)) < 0)
                return NULL;
        return s;
}

static void monitor_wait(Monitor *m, AgentProcessInfo *info, int *ret_r, Error **err) {
        if (m->rt->main)
                *ret_r = agent_process_wait(m->rt->main, info, -1, err);
        else
                *ret_r = agent_client_wait(m->rt->guest->agent, m->rt->main_id, info, -1, err);
}

static void monitor_finish(Monitor *m, int r, const AgentProcessInfo *info, const Error *e) {
        ContainerHost *h = m->h;
        Container *c = m->c;
        /* The agent powers the guest off after the main process; the domain
         * (persistent) is undefined once it is off, or after a while if it
         * hangs. A broken agent connection is waited on too, more briefly:
         * QEMU's end of the socket closes as it dies, before the driver has
         * seen the domain stop, and the reason must say what the VM did. */
        uint64_t deadline = deadline_after_ms(r >= 0 ? POWEROFF_WAIT_MS : VM_SETTLE_MS);
        VmState st = VM_STATE_RUNNING;
        while (deadline_poll_ms(deadline) > 0 && vm_driver_state(h->driver, c->domain, &st, NULL) >= 0 &&
               st == VM_STATE_RUNNING)
                usleep(50 * 1000);
        _cleanup_free_ char *reason = NULL;
        pthread_mutex_lock(&h->lock);
        bool stopping = c->state == CONTAINER_STOPPING;
        pthread_mutex_unlock(&h->lock);
        if (r < 0 && !stopping) {
                reason = vm_end_reason(h, c, e);
                (void) container_metrics_agent_result(h, r);
        }
        (void) vm_driver_destroy(h->driver, c->domain, NULL);
        /* Before the stop is reported: whoever waits for it finds the
         * peers' /etc/hosts without c. */
        container_network_peers_changed(h, c->id, true);

        pthread_mutex_lock(&h->lock);
        c->exit_code = r >= 0 ? info->exit_code : stopping ? 128 + SIGKILL : CONTAINER_EXIT_UNKNOWN;
        c->finished_ns = r >= 0 && info->finished_unix_ns ? (int64_t) info->finished_unix_ns : (int64_t) realtime_nsec();
        c->pid = 0;
        free(c->error);
        c->error = TAKE_PTR(reason);
        if (c->rt == m->rt)
                c->rt = NULL;
        container_set_state_locked(h, c, CONTAINER_STOPPED);
        pthread_mutex_unlock(&h->lock);
        log_info("container %s (%.12s) stopped: exit code %d%s%s", c->name, c->id, c->exit_code,
                 c->error ? ": " : "", c->error ? c->error : "");
        runtime_unref(h, m->rt); /* the container's reference */
}

static void *monitor_main(void *arg) {
        Monitor *m = arg;
        pthread_t readers[2];
        LogReader lr[2];
        int n_readers = 0;
        _cleanup_(container_log_closep) ContainerLog *log = NULL;
        if (m->rt->main && container_log_open(m->h, m->c, &log) >= 0)
                for (int i = 0; i < 2; i++) {
                        lr[i] = (LogReader){.rt = m->rt, .stream = i ? AGENT_STREAM_STDERR : AGENT_STREAM_STDOUT,
                                            .log = log};
                        if (pthread_create(&readers[n_readers], NULL, log_reader_main, &lr[i]) == 0)
                                n_readers++;
                }
        AgentProcessInfo info = {0};
        _cleanup_error_ Error *e = NULL;
        int r;
        monitor_wait(m, &info, &r, &e);
        for (int i = 0; i < n_readers; i++)
                pthread_join(readers[i], NULL);

        pthread_mutex_lock(&m->h->lock);
        bool closing = m->h->closing;
        pthread_mutex_unlock(&m->h->lock);
        if (!closing)
                monitor_finish(m, r, &info, e);

        ContainerHost *h = m->h;
        runtime_unref(h, m->rt);
        container_unref(m->c);
        free(m);
        pthread_mutex_lock(&h->lock);
        h->monitors--;
        pthread_cond_broadcast(&h->changed);
        pthread_mutex_unlock(&h->lock);
        return NULL;
}

int container_monitor_start(ContainerHost *h, Container *c) {
        Monitor *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        pthread_mutex_lock(&h->lock);
        m->h = h;
        m->c = container_ref(c);
        m->rt = c->rt;
        m->rt->refs++;
        m->rt->monitor_running = true;
        h->monitors++;
        pthread_mutex_unlock(&h->lock);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_t t;
        int r = pthread_create(&t, &attr, monitor_main, m);
        pthread_attr_destroy(&attr);
        if (r != 0) {
                pthread_mutex_lock(&h->lock);
                h->monitors--;
                m->rt->refs--;
                pthread_mutex_unlock(&h->lock);
                container_unref(m->c);
                free(m);
                return -r;
        }
        return 0;
}
