/* container-exec.c: interactive processes of a running container.
 *
 * An exec holds a reference on the runtime (the VM and its agent client), so
 * a stop can tear the VM down under it: its reads and writes then fail with
 * the agent's error. The host keeps the last CONTAINER_EXECS_KEPT execs in a
 * table so a client can resize one or ask for its exit code after its stream
 * ended; older ones are forgotten (their processes are not affected). */
#include "container-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/io-util.h"

struct ContainerExec {
        unsigned refs; /* under the host lock */
        ContainerHost *host;
        char id[33];
        Runtime *rt;
        AgentProcess *p;
        bool tty, done;
        int exit_code;
        int pid;
};

static void exec_free(ContainerExec *e) {
        agent_process_free(e->p);
        runtime_unref(e->host, e->rt);
        free(e);
}

void container_exec_unref(ContainerExec *e) {
        if (!e)
                return;
        pthread_mutex_lock(&e->host->lock);
        bool last = --e->refs == 0;
        pthread_mutex_unlock(&e->host->lock);
        if (last)
                exec_free(e);
}

/* Puts e in the table (a reference), forgetting the oldest past the cap.
 * Returns the forgotten exec when that was its last reference: the caller
 * frees it once the lock is released (runtime_unref takes the lock). */
static ContainerExec *execs_add_locked(ContainerHost *h, ContainerExec *e) {
        e->refs++;
        ContainerExec *old = h->execs[h->exec_next % CONTAINER_EXECS_KEPT];
        h->execs[h->exec_next++ % CONTAINER_EXECS_KEPT] = e;
        return old && --old->refs == 0 ? old : NULL;
}

int container_host_exec_start(ContainerHost *h, const char *ref, const ContainerExecSpec *spec, ContainerExec **ret,
                              Error **err) {
        Runtime *rt = NULL;
        int r = container_runtime_of(h, ref, &rt, err);
        if (r < 0)
                return r;
        ContainerExec *e = calloc(1, sizeof(*e));
        if (!e) {
                runtime_unref(h, rt);
                return error_oom(err);
        }
        *e = (ContainerExec){.refs = 1, .host = h, .rt = rt, .tty = spec->tty, .exit_code = -1};
        random_hex(e->id, 32);
        AgentExecSpec as = {
                .argv = spec->argv, .env = spec->env, .workdir = spec->workdir, .user = spec->user, .tty = spec->tty,
                .rows = spec->rows ? spec->rows : 24, .cols = spec->cols ? spec->cols : 80,
                .open_stdin = spec->open_stdin, .capture_stdout = true, .capture_stderr = !spec->tty,
        };
        r = container_metrics_agent_result(h, agent_client_exec(rt->guest->agent, &as, &e->p, 30000, err));
        if (r < 0) {
                exec_free(e);
                return r;
        }
        e->pid = agent_process_pid(e->p);
        pthread_mutex_lock(&h->lock);
        ContainerExec *dropped = execs_add_locked(h, e);
        pthread_mutex_unlock(&h->lock);
        if (dropped)
                exec_free(dropped);
        *ret = e;
        return 0;
}

int container_host_exec_find(ContainerHost *h, const char *id, ContainerExec **ret, Error **err) {
        pthread_mutex_lock(&h->lock);
        ContainerExec *found = NULL;
        for (size_t i = 0; i < CONTAINER_EXECS_KEPT && !found; i++)
                if (h->execs[i] && strcmp(h->execs[i]->id, id) == 0)
                        found = h->execs[i];
        if (found)
                found->refs++;
        pthread_mutex_unlock(&h->lock);
        if (!found)
                return error_set(err, ENOENT, "no such exec: %.40s", id);
        *ret = found;
        return 0;
}

const char *container_exec_id(const ContainerExec *e) {
        return e->id;
}

bool container_exec_tty(const ContainerExec *e) {
        return e->tty;
}

ssize_t container_exec_read(ContainerExec *e, int stream, void *buf, size_t len, int timeout_ms, Error **err) {
        return agent_process_read(e->p, stream == 2 ? AGENT_STREAM_STDERR : AGENT_STREAM_STDOUT, buf, len, timeout_ms,
                                  err);
}

int container_exec_write(ContainerExec *e, const void *buf, size_t len, Error **err) {
        return agent_process_write_stdin(e->p, buf, len, 30000, err);
}

int container_exec_close_stdin(ContainerExec *e, Error **err) {
        return agent_process_close_stdin(e->p, err);
}

int container_exec_resize(ContainerExec *e, uint16_t rows, uint16_t cols, Error **err) {
        if (!e->tty)
                return error_set(err, EBADFD, "exec %s has no terminal", e->id);
        if (rows == 0 || cols == 0)
                return error_set(err, EINVAL, "a terminal needs at least one row and one column");
        return agent_process_resize(e->p, rows, cols, err);
}

int container_exec_wait(ContainerExec *e, int timeout_ms, int *ret, Error **err) {
        AgentProcessInfo info;
        int r = agent_process_wait(e->p, &info, timeout_ms, err);
        if (r < 0) /* a timeout is the caller's own deadline */
                return r == -ETIMEDOUT ? r : container_metrics_agent_result(e->host, r);
        pthread_mutex_lock(&e->host->lock);
        e->done = true;
        e->exit_code = info.exit_code;
        pthread_mutex_unlock(&e->host->lock);
        *ret = info.exit_code;
        return 0;
}

json_t *container_exec_to_json(ContainerExec *e) {
        pthread_mutex_lock(&e->host->lock);
        json_t *j = json_pack("{s:s, s:b, s:i, s:i, s:b}", "id", e->id, "running", !e->done, "exit_code", e->exit_code,
                              "pid", e->pid, "tty", e->tty);
        pthread_mutex_unlock(&e->host->lock);
        return j;
}

void container_host_execs_clear(ContainerHost *h) {
        for (size_t i = 0; i < CONTAINER_EXECS_KEPT; i++)
                if (h->execs[i]) {
                        ContainerExec *e = TAKE_PTR(h->execs[i]);
                        if (--e->refs == 0)
                                exec_free(e);
                }
}
