/* container-process.c: processes and files of a running container: exec with
 * captured output, signals, waiting for the end, tar archives in and out.
 * Each call holds a reference on the runtime, so a concurrent stop tears the
 * VM down under it safely: the call then fails with the agent's error. */
#include "container-internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/base/io-util.h"

#define EXEC_POLL_MS 20

void container_exec_result_clear(ContainerExecResult *r) {
        r->out = mfree(r->out);
        r->err = mfree(r->err);
        r->out_len = r->err_len = 0;
}

int container_runtime_of(ContainerHost *h, const char *ref, Runtime **ret, Error **err) {
        Container *c = NULL;
        int r = container_find(h, ref, &c, err);
        if (r >= 0)
                r = container_runtime_get(h, c, ret, err);
        container_unref(c);
        return r;
}

typedef struct Capture {
        char *buf;
        size_t len, max;
        bool eof;
} Capture;

/* Reads what is there of one stream into c (past max: read and dropped). */
static int capture_step(AgentProcess *p, AgentStream s, Capture *c, bool *truncated, Error **err) {
        char tmp[16384];
        ssize_t n = agent_process_read(p, s, tmp, sizeof tmp, EXEC_POLL_MS, err);
        if (n == -ETIMEDOUT) {
                if (err && *err)
                        *err = error_free(*err);
                return 0;
        }
        if (n < 0)
                return (int) n;
        if (n == 0) {
                c->eof = true;
                return 0;
        }
        size_t keep = MIN((size_t) n, c->max - c->len);
        if (keep < (size_t) n)
                *truncated = true;
        memcpy(c->buf + c->len, tmp, keep);
        c->len += keep;
        return 0;
}

static int exec_collect(AgentProcess *p, uint64_t deadline, size_t max, ContainerExecResult *ret, Error **err) {
        Capture out = {.buf = malloc(max + 1), .max = max}, er = {.buf = malloc(max + 1), .max = max};
        int r = out.buf && er.buf ? 0 : error_oom(err);
        while (r >= 0 && (!out.eof || !er.eof)) {
                if (deadline_poll_ms(deadline) == 0) {
                        r = error_set(err, ETIMEDOUT, "the process did not finish in time: killed");
                        break;
                }
                if (!out.eof)
                        r = capture_step(p, AGENT_STREAM_STDOUT, &out, &ret->truncated, err);
                if (r >= 0 && !er.eof)
                        r = capture_step(p, AGENT_STREAM_STDERR, &er, &ret->truncated, err);
        }
        if (r < 0) {
                free(out.buf);
                free(er.buf);
                return r;
        }
        out.buf[out.len] = er.buf[er.len] = 0;
        ret->out = out.buf;
        ret->out_len = out.len;
        ret->err = er.buf;
        ret->err_len = er.len;
        return 0;
}

int container_host_exec_sync(ContainerHost *h, const char *ref, const char *const *argv, const char *const *env,
                             const char *workdir, const char *user, int timeout_s, size_t max_output,
                             ContainerExecResult *ret, Error **err) {
        *ret = (ContainerExecResult){.exit_code = -1};
        Runtime *rt = NULL;
        int r = container_runtime_of(h, ref, &rt, err);
        if (r < 0)
                return r;
        AgentExecSpec spec = {.argv = argv, .env = env, .workdir = workdir, .user = user, .capture_stdout = true,
                              .capture_stderr = true};
        _cleanup_agent_process_ AgentProcess *p = NULL;
        uint64_t deadline = timeout_s > 0 ? deadline_after_ms(timeout_s * 1000) : USEC_INFINITY;
        r = container_metrics_agent_result(h, agent_client_exec(rt->guest->agent, &spec, &p, 30000, err));
        if (r >= 0)
                r = exec_collect(p, deadline, max_output, ret, err);
        AgentProcessInfo info;
        if (r >= 0)
                r = agent_process_wait(p, &info, deadline_poll_ms(deadline), err);
        if (p && r != -ETIMEDOUT) /* a timeout here is the client's own deadline */
                (void) container_metrics_agent_result(h, r);
        if (r == -ETIMEDOUT && p)
                (void) agent_process_signal(p, SIGKILL, NULL);
        if (r >= 0)
                ret->exit_code = info.exit_code;
        else
                container_exec_result_clear(ret);
        runtime_unref(h, rt);
        return r;
}

int container_host_signal(ContainerHost *h, const char *ref, int sig, bool all, Error **err) {
        if (sig < 1 || sig > 64)
                return error_set(err, EINVAL, "signal %d: must be 1..64", sig);
        Runtime *rt = NULL;
        int r = container_runtime_of(h, ref, &rt, err);
        if (r < 0)
                return r;
        r = agent_client_signal(rt->guest->agent, all ? 0 : rt->main_id, sig, all, err);
        runtime_unref(h, rt);
        return r;
}

/* The main process of ref's runtime with a reference held (runtime_unref). */
static int main_of(ContainerHost *h, const char *ref, Runtime **ret, Error **err) {
        int r = container_runtime_of(h, ref, ret, err);
        if (r >= 0 && !(*ret)->main) {
                runtime_unref(h, *ret);
                return error_set(err, EBADFD, "container %s: its main process was reattached after a restart: its "
                                              "stdin and terminal are gone", ref);
        }
        return r;
}

int container_host_main_write(ContainerHost *h, const char *ref, const void *buf, size_t len, Error **err) {
        Runtime *rt = NULL;
        int r = main_of(h, ref, &rt, err);
        if (r < 0)
                return r;
        r = agent_process_write_stdin(rt->main, buf, len, 30000, err);
        runtime_unref(h, rt);
        return r;
}

int container_host_main_close_stdin(ContainerHost *h, const char *ref, Error **err) {
        Runtime *rt = NULL;
        int r = main_of(h, ref, &rt, err);
        if (r < 0)
                return r;
        r = agent_process_close_stdin(rt->main, err);
        runtime_unref(h, rt);
        return r;
}

int container_host_main_resize(ContainerHost *h, const char *ref, uint16_t rows, uint16_t cols, Error **err) {
        Runtime *rt = NULL;
        int r = main_of(h, ref, &rt, err);
        if (r < 0)
                return r;
        r = agent_process_resize(rt->main, rows, cols, err);
        runtime_unref(h, rt);
        return r;
}

static bool is_active(ContainerState s) {
        return s == CONTAINER_STARTING || s == CONTAINER_RUNNING || s == CONTAINER_PAUSED || s == CONTAINER_STOPPING;
}

int container_host_wait(ContainerHost *h, const char *ref, int timeout_ms, int *ret_exit_code, Error **err) {
        Container *c = NULL;
        int r = container_find(h, ref, &c, err);
        if (r < 0)
                return r;
        uint64_t deadline = deadline_after_ms(timeout_ms);
        pthread_mutex_lock(&h->lock);
        while (!c->removed && is_active(c->state) && r >= 0) {
                if (!container_host_wait_locked(h, deadline)) {
                        r = -ETIMEDOUT;
                        break;
                }
        }
        int code = c->exit_code;
        pthread_mutex_unlock(&h->lock);
        container_unref(c);
        if (r < 0)
                return error_set(err, ETIMEDOUT, "container %s still runs", ref);
        *ret_exit_code = code;
        return 0;
}

/* Copies a tar archive into (in) or out of the running container. */
static int archive_copy(ContainerHost *h, const char *ref, const char *path, int fd, bool in, Error **err) {
        Runtime *rt = NULL;
        int r = container_runtime_of(h, ref, &rt, err);
        if (r < 0)
                return r;
        r = in ? agent_client_copy_in(rt->guest->agent, path, fd, NULL, 300000, err)
               : agent_client_copy_out(rt->guest->agent, path, fd, NULL, 300000, err);
        (void) container_metrics_agent_result(h, r);
        runtime_unref(h, rt);
        return r;
}

int container_host_archive_in(ContainerHost *h, const char *ref, const char *dir, int tar_fd, Error **err) {
        return archive_copy(h, ref, dir, tar_fd, true, err);
}

int container_host_archive_out(ContainerHost *h, const char *ref, const char *path, int out_fd, Error **err) {
        return archive_copy(h, ref, path, out_fd, false, err);
}

int container_host_stats(ContainerHost *h, const char *ref, json_t **ret, Error **err) {
        Runtime *rt = NULL;
        int r = container_runtime_of(h, ref, &rt, err);
        if (r < 0)
                return r;
        VmStats vs;
        AgentGuestInfo gi;
        r = vm_driver_stats(h->driver, rt->guest->name, &vs, err);
        if (r >= 0)
                r = container_metrics_agent_result(h, agent_client_guest_info(rt->guest->agent, &gi, 10000, err));
        runtime_unref(h, rt);
        if (r < 0)
                return r;
        json_t *j = json_pack("{s:I, s:{s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:i}, s:{s:I, s:I, s:I, s:I}}",
                              "read_ns", (json_int_t) realtime_nsec(),
                              "host", "cpu_time_ns", (json_int_t) vs.cpu_time_ns, "rss_kib", (json_int_t) vs.rss_kib,
                              "pss_kib", (json_int_t) vs.pss_kib,
                              "memory_kib", (json_int_t) vs.memory_kib, "uptime_ms", (json_int_t) gi.uptime_ms,
                              "guest", "mem_total_kib", (json_int_t) gi.mem_total_kib, "mem_available_kib",
                              (json_int_t) gi.mem_available_kib, "mem_used_kib",
                              (json_int_t) (gi.mem_total_kib - MIN(gi.mem_available_kib, gi.mem_total_kib)),
                              "processes", (json_int_t) gi.processes, "cpus", (int) gi.cpus, "block", "read_bytes",
                              (json_int_t) vs.rd_bytes, "write_bytes", (json_int_t) vs.wr_bytes, "reads",
                              (json_int_t) vs.rd_reqs, "writes", (json_int_t) vs.wr_reqs);
        if (!j)
                return error_oom(err);
        *ret = j;
        return 0;
}

int container_host_stat_path(ContainerHost *h, const char *ref, const char *path, json_t **ret, Error **err) {
        Runtime *rt = NULL;
        int r = container_runtime_of(h, ref, &rt, err);
        if (r < 0)
                return r;
        AgentStat st;
        r = container_metrics_agent_result(h, agent_client_stat(rt->guest->agent, path, &st, 10000, err));
        runtime_unref(h, rt);
        if (r < 0)
                return r;
        json_t *j = json_pack("{s:s, s:I, s:i, s:I, s:s, s:i, s:i}", "name", st.name, "size", (json_int_t) st.size,
                              "mode", (int) st.mode, "mtime_ns", (json_int_t) st.mtime_ns, "link_target",
                              st.link_target, "uid", (int) st.uid, "gid", (int) st.gid);
        if (!j)
                return error_oom(err);
        *ret = j;
        return 0;
}
