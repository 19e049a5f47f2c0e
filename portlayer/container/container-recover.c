/* container-recover.c: after a restart (or a kill -9), make the records and
 * what libvirt runs agree again.
 *
 * For each record: a container that was running and whose VM still runs is
 * reattached (a new agent connection, its main process found again by the
 * agent's id for it, a new monitor); one whose VM is gone becomes stopped
 * with the reason; a start or a removal the daemon was in the middle of is
 * rolled back or finished. Then what carries our marks but belongs to no
 * record goes (container-gc.c): domains with our metadata, container
 * directories (and their registered disks) and run directories. */
#include "container-internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"

#define ATTACH_TIMEOUT_MS 5000
#define CONTAINER_EXIT_UNKNOWN 255

static void mark_stopped(ContainerHost *h, Container *c, int exit_code, const char *why) {
        log_warning("container %s (%.12s): %s", c->name, c->id, why);
        pthread_mutex_lock(&h->lock);
        free(c->error);
        c->error = strdup(why);
        c->exit_code = exit_code;
        c->pid = 0;
        c->finished_ns = (int64_t) realtime_nsec();
        container_set_state_locked(h, c, CONTAINER_STOPPED);
        pthread_mutex_unlock(&h->lock);
}

/* Finds the main process again; 1 when it still runs, 0 when it ended
 * (*info says how), or a negative errno. */
static int find_main(Guest *g, uint32_t main_id, AgentProcessInfo *info, Error **err) {
        _cleanup_free_ AgentProcessInfo *list = NULL;
        size_t n = 0;
        int r = agent_client_list_processes(g->agent, &list, &n, ATTACH_TIMEOUT_MS, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (list[i].process_id == main_id) {
                        *info = list[i];
                        return info->state == AGENT_PROCESS_RUNNING;
                }
        return error_set(err, ESRCH, "the agent does not know the main process (id %u)", main_id);
}

/* The output an exited main process left in the agent's buffer goes to
 * main.log (stdout's, then stderr's). */
static void recover_tail(ContainerHost *h, Guest *g, Container *c) {
        _cleanup_agent_process_ AgentProcess *p = NULL;
        if (agent_client_attach(g->agent, c->main_id, true, true, &p, NULL, ATTACH_TIMEOUT_MS, NULL) < 0)
                return;
        _cleanup_(container_log_closep) ContainerLog *log = NULL;
        if (container_log_open(h, c, &log) < 0)
                return;
        char buf[32768];
        for (int s = AGENT_STREAM_STDOUT; s <= AGENT_STREAM_STDERR; s++)
                for (;;) {
                        ssize_t n = agent_process_read(p, (AgentStream) s, buf, sizeof buf, ATTACH_TIMEOUT_MS, NULL);
                        if (n <= 0)
                                break;
                        (void) container_log_append(log, s, buf, (size_t) n);
                }
}

static int reattach(ContainerHost *h, Container *c, Error **err) {
        VmState st = VM_STATE_MISSING;
        (void) vm_driver_state(h->driver, c->domain, &st, NULL);
        /* A paused guest cannot answer the handshake: it runs for that long. */
        bool paused = st == VM_STATE_PAUSED;
        if (paused)
                (void) vm_driver_resume(h->driver, c->domain, NULL);
        Guest *g = NULL;
        int r = guest_attach(h->driver, c->domain, c->run_dir, strcmp(c->transport, "vsock") == 0, ATTACH_TIMEOUT_MS,
                             &g, err);
        AgentProcessInfo info = {0};
        if (r >= 0)
                r = find_main(g, c->main_id, &info, err);
        if (paused)
                (void) vm_driver_suspend(h->driver, c->domain, NULL);
        if (r < 0) {
                guest_free(g);
                return r;
        }
        if (r == 0) { /* it ended while we were away; the agent is powering off */
                recover_tail(h, g, c);
                guest_free(g);
                (void) vm_driver_destroy(h->driver, c->domain, NULL);
                pthread_mutex_lock(&h->lock);
                c->exit_code = info.exit_code;
                c->finished_ns = (int64_t) info.finished_unix_ns;
                c->pid = 0;
                container_set_state_locked(h, c, CONTAINER_STOPPED);
                pthread_mutex_unlock(&h->lock);
                return 0;
        }
        Runtime *rt = calloc(1, sizeof(*rt));
        if (!rt) {
                guest_free(g);
                return error_oom(err);
        }
        rt->refs = 1;
        rt->guest = g;
        rt->main_id = c->main_id;
        /* What the main process wrote while nobody listened is in the
         * agent's buffer (its newest 1 MiB): attaching delivers it first,
         * then the live output, into main.log as before. */
        AgentAttachInfo ai = {0};
        _cleanup_error_ Error *ae = NULL;
        if (agent_client_attach(g->agent, c->main_id, true, true, &rt->main, &ai, ATTACH_TIMEOUT_MS, &ae) < 0)
                log_warning("container %s (%.12s): output written while the daemon was away is lost: %s", c->name,
                            c->id, error_text(ae));
        else if (ai.stdout_dropped || ai.stderr_dropped)
                log_warning("container %s (%.12s): %llu bytes of output written while the daemon was away were "
                            "dropped (the agent keeps the newest 1 MiB)",
                            c->name, c->id, (unsigned long long) (ai.stdout_dropped + ai.stderr_dropped));
        pthread_mutex_lock(&h->lock);
        c->rt = rt;
        container_set_state_locked(h, c, paused ? CONTAINER_PAUSED : CONTAINER_RUNNING);
        pthread_mutex_unlock(&h->lock);
        log_info("container %s (%.12s): reattached to VM %s", c->name, c->id, c->domain);
        return container_monitor_start(h, c);
}

static void recover_one(ContainerHost *h, Container *c) {
        _cleanup_error_ Error *e = NULL;
        char why[512];
        VmState st = VM_STATE_MISSING;
        switch (c->state) {
        case CONTAINER_STARTING:
                (void) vm_driver_destroy(h->driver, c->domain, NULL);
                pthread_mutex_lock(&h->lock);
                free(c->error);
                c->error = strdup("the daemon stopped while the container was starting");
                container_set_state_locked(h, c, c->state_before == CONTAINER_CREATED ? CONTAINER_CREATED
                                                                                      : CONTAINER_STOPPED);
                pthread_mutex_unlock(&h->lock);
                return;
        case CONTAINER_RUNNING:
        case CONTAINER_PAUSED:
        case CONTAINER_STOPPING:
                (void) vm_driver_state(h->driver, c->domain, &st, NULL);
                if (st != VM_STATE_RUNNING && st != VM_STATE_PAUSED) {
                        (void) vm_driver_destroy(h->driver, c->domain, NULL);
                        snprintf(why, sizeof why, "the VM ended while the daemon was down (%s)", vm_state_to_string(st));
                        mark_stopped(h, c, CONTAINER_EXIT_UNKNOWN, why);
                        return;
                }
                if (reattach(h, c, &e) < 0) {
                        (void) vm_driver_destroy(h->driver, c->domain, NULL);
                        snprintf(why, sizeof why, "could not reattach after a daemon restart, VM destroyed: %s",
                                 error_text(e));
                        mark_stopped(h, c, CONTAINER_EXIT_UNKNOWN, why);
                }
                return;
        case CONTAINER_REMOVING:
                (void) vm_driver_destroy(h->driver, c->domain, NULL);
                (void) store_container_disk_remove(h->store, c->disk, NULL);
                (void) rm_rf(c->dir);
                (void) rm_rf(c->run_dir);
                container_owner_release(h, c);
                pthread_mutex_lock(&h->lock);
                container_host_forget_locked(h, c);
                pthread_mutex_unlock(&h->lock);
                return;
        default: /* created, stopped: no VM should exist */
                (void) vm_driver_destroy(h->driver, c->domain, NULL);
                return;
        }
}

int container_host_recover(ContainerHost *h, Error **err) {
        size_t n = 0;
        Container **list = container_host_snapshot(h, &n);
        if (!list)
                return error_oom(err);
        for (size_t i = 0; i < n; i++)
                recover_one(h, list[i]);
        container_list_unref(list, n);
        container_host_remove_orphans(h);
        /* last: an orphan's uid goes once its VM and files are gone */
        container_owner_reconcile(h);
        return 0;
}
