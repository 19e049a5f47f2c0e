/* agent-ops.c: the request/response operations of the agent client (ping,
 * guest info, exec, attach, wait, signal, resize, list, stat, remove,
 * shutdown).
 *
 * Each builds one Request, goes through agent_call() (agent-client.c) and
 * copies what it needs out of the Response with bounds: strings into fixed
 * arrays (display strings sanitized), list counts capped. An answer of the
 * wrong kind is an error of that call (-EPROTO), not of the connection. */
#include "agent-client-internal.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "common/base/io-util.h"

#define PING_PAYLOAD_SIZE 16u

static int response_expect(const Plagent__Response *resp, Plagent__Response__ResultCase want, const char *op,
                           Error **err) {
        if (resp->result_case != want)
                return error_set(err, EPROTO, "the agent answered %s with the wrong result (case %d)", op,
                                 (int) resp->result_case);
        return 0;
}

static Plagent__Request request_init(Plagent__Request__OpCase op_case) {
        Plagent__Request req = PLAGENT__REQUEST__INIT;
        req.op_case = op_case;
        return req;
}

int agent_client_ping(AgentClient *c, int timeout_ms, Error **err) {
        uint8_t payload[PING_PAYLOAD_SIZE];
        random_bytes(payload, sizeof payload);
        Plagent__PingRequest op = PLAGENT__PING_REQUEST__INIT;
        op.payload = (ProtobufCBinaryData){.len = sizeof payload, .data = payload};
        Plagent__Request req = request_init(PLAGENT__REQUEST__OP_PING);
        req.ping = &op;

        _cleanup_response_ Plagent__Response *resp = NULL;
        int r = agent_call(c, "ping", &req, timeout_ms, &resp, err);
        if (r < 0)
                return r;
        r = response_expect(resp, PLAGENT__RESPONSE__RESULT_PING, "ping", err);
        if (r < 0)
                return r;
        const ProtobufCBinaryData *echo = &resp->ping->payload;
        if (echo->len != sizeof payload || memcmp(echo->data, payload, sizeof payload) != 0)
                return error_set(err, EPROTO, "the agent answered ping with a different payload");
        return 0;
}

int agent_client_guest_info(AgentClient *c, AgentGuestInfo *ret, int timeout_ms, Error **err) {
        Plagent__GuestInfoRequest op = PLAGENT__GUEST_INFO_REQUEST__INIT;
        Plagent__Request req = request_init(PLAGENT__REQUEST__OP_GUEST_INFO);
        req.guest_info = &op;

        _cleanup_response_ Plagent__Response *resp = NULL;
        int r = agent_call(c, "guest-info", &req, timeout_ms, &resp, err);
        if (r < 0)
                return r;
        r = response_expect(resp, PLAGENT__RESPONSE__RESULT_GUEST_INFO, "guest-info", err);
        if (r < 0)
                return r;

        const Plagent__GuestInfoResponse *g = resp->guest_info;
        *ret = (AgentGuestInfo){
                .uptime_ms = g->uptime_ms,
                .mem_total_kib = g->mem_total_kib,
                .mem_available_kib = g->mem_available_kib,
                .cpus = g->cpus,
                .processes = g->processes,
        };
        agent_copy_string(ret->agent_version, sizeof ret->agent_version, g->agent_version, true);
        agent_copy_string(ret->kernel_release, sizeof ret->kernel_release, g->kernel_release, true);
        agent_copy_string(ret->hostname, sizeof ret->hostname, g->hostname, true);
        agent_copy_string(ret->machine, sizeof ret->machine, g->machine, true);
        agent_copy_string(ret->root, sizeof ret->root, g->root, false);
        agent_copy_string(ret->boot_error, sizeof ret->boot_error, g->boot_error, true);
        agent_copy_string(ret->root_grow_error, sizeof ret->root_grow_error, g->root_grow_error, true);
        return 0;
}

/* --- exec and process handles --- */

/* Counts a NULL-terminated vector, failing above max. */
static int strv_count(const char *const *v, size_t max, const char *what, size_t *ret, Error **err) {
        size_t n = 0;
        for (; v && v[n]; n++)
                if (n >= max)
                        return error_set(err, E2BIG, "exec: too many %s (more than %zu)", what, max);
        *ret = n;
        return 0;
}

/* Frees a handle whose process never started: channels only. */
static void process_discard(AgentProcess *p) {
        channel_retire(p->client, p->in);
        channel_retire(p->client, p->out);
        channel_retire(p->client, p->err);
        free(p);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentProcess *, process_discard);

/* Opens the channels the spec asks for, before the request names them. */
static int process_open_channels(AgentProcess *p, const AgentExecSpec *spec, Error **err) {
        int r = 0;
        if (spec->open_stdin)
                r = channel_open(p->client, false, "stdin", &p->in, err);
        if (r >= 0 && spec->capture_stdout)
                r = channel_open(p->client, true, "stdout", &p->out, err);
        if (r >= 0 && spec->capture_stderr && !spec->tty)
                r = channel_open(p->client, true, "stderr", &p->err, err);
        return r;
}

static void exec_request_fill(Plagent__ExecRequest *op, const AgentExecSpec *spec, const AgentProcess *p,
                              size_t argc, size_t envc) {
        op->n_argv = argc;
        op->argv = (char **) spec->argv;
        op->n_env = envc;
        op->env = envc > 0 ? (char **) spec->env : NULL;
        op->workdir = (char *) (spec->workdir ? spec->workdir : "");
        op->user = (char *) (spec->user ? spec->user : "");
        op->tty = spec->tty;
        op->rows = spec->rows;
        op->cols = spec->cols;
        op->stdin_channel = p->in ? p->in->id : 0;
        op->stdout_channel = p->out ? p->out->id : 0;
        op->stderr_channel = p->err ? p->err->id : 0;
        op->main = spec->main;
}

int agent_client_exec(AgentClient *c, const AgentExecSpec *spec, AgentProcess **ret, int timeout_ms, Error **err) {
        size_t argc = 0, envc = 0;
        if (!spec || !spec->argv || !spec->argv[0])
                return error_set(err, EINVAL, "exec: no command given");
        int r = strv_count(spec->argv, AGENT_MAX_ARGS, "arguments", &argc, err);
        if (r >= 0)
                r = strv_count(spec->env, AGENT_MAX_ARGS, "environment variables", &envc, err);
        if (r < 0)
                return r;

        _cleanup_(process_discardp) AgentProcess *p = calloc(1, sizeof(*p));
        if (!p)
                return error_oom(err);
        p->client = c;
        r = process_open_channels(p, spec, err);
        if (r < 0)
                return r;

        Plagent__ExecRequest op = PLAGENT__EXEC_REQUEST__INIT;
        exec_request_fill(&op, spec, p, argc, envc);
        Plagent__Request req = request_init(PLAGENT__REQUEST__OP_EXEC);
        req.exec = &op;

        _cleanup_response_ Plagent__Response *resp = NULL;
        r = agent_call(c, "exec", &req, timeout_ms, &resp, err);
        if (r < 0)
                return r;
        r = response_expect(resp, PLAGENT__RESPONSE__RESULT_EXEC, "exec", err);
        if (r < 0)
                return r;
        p->process_id = resp->exec->process_id;
        p->pid = resp->exec->pid;
        *ret = TAKE_PTR(p);
        return 0;
}

uint32_t agent_process_id(AgentProcess *p) {
        return p->process_id;
}

int agent_process_pid(AgentProcess *p) {
        return p->pid;
}

static void process_info_from(AgentProcessInfo *dst, const Plagent__ProcessInfo *src) {
        *dst = (AgentProcessInfo){
                .process_id = src->process_id,
                .pid = src->pid,
                .state = src->state == PLAGENT__PROCESS_STATE__PROCESS_STATE_EXITED ? AGENT_PROCESS_EXITED
                                                                                  : AGENT_PROCESS_RUNNING,
                .exit_code = src->exit_code,
                .signal = src->signal,
                .started_unix_ns = src->started_unix_ns,
                .finished_unix_ns = src->finished_unix_ns,
                .tty = src->tty,
        };
        agent_copy_string(dst->command, sizeof dst->command, src->command, true);
}

static int attach_response_read(const Plagent__Response *resp, uint32_t process_id, AgentAttachInfo *ret,
                                Error **err) {
        int r = response_expect(resp, PLAGENT__RESPONSE__RESULT_ATTACH, "attach", err);
        if (r < 0)
                return r;
        const Plagent__AttachResponse *a = resp->attach;
        if (!a->process || a->process->process_id != process_id)
                return error_set(err, EPROTO, "the agent answered attach to process %u about another process",
                                 process_id);
        process_info_from(&ret->process, a->process);
        ret->stdout_dropped = a->stdout_dropped;
        ret->stderr_dropped = a->stderr_dropped;
        return 0;
}

int agent_client_attach(AgentClient *c, uint32_t process_id, bool attach_stdout, bool attach_stderr,
                        AgentProcess **ret, AgentAttachInfo *ret_info, int timeout_ms, Error **err) {
        if (!attach_stdout && !attach_stderr)
                return error_set(err, EINVAL, "attach: neither stdout nor stderr asked for");
        _cleanup_(process_discardp) AgentProcess *p = calloc(1, sizeof(*p));
        if (!p)
                return error_oom(err);
        p->client = c;
        p->process_id = process_id;
        int r = 0;
        if (attach_stdout)
                r = channel_open(c, true, "stdout", &p->out, err);
        if (r >= 0 && attach_stderr)
                r = channel_open(c, true, "stderr", &p->err, err);
        if (r < 0)
                return r;

        Plagent__AttachRequest op = PLAGENT__ATTACH_REQUEST__INIT;
        op.process_id = process_id;
        op.stdout_channel = p->out ? p->out->id : 0;
        op.stderr_channel = p->err ? p->err->id : 0;
        Plagent__Request req = request_init(PLAGENT__REQUEST__OP_ATTACH);
        req.attach = &op;

        _cleanup_response_ Plagent__Response *resp = NULL;
        AgentAttachInfo info;
        r = agent_call(c, "attach", &req, timeout_ms, &resp, err);
        if (r >= 0)
                r = attach_response_read(resp, process_id, &info, err);
        if (r < 0)
                return r;
        p->pid = info.process.pid;
        if (ret_info)
                *ret_info = info;
        *ret = TAKE_PTR(p);
        return 0;
}

int agent_client_wait(AgentClient *c, uint32_t process_id, AgentProcessInfo *ret, int timeout_ms, Error **err) {
        Plagent__WaitRequest op = PLAGENT__WAIT_REQUEST__INIT;
        op.process_id = process_id;
        Plagent__Request req = request_init(PLAGENT__REQUEST__OP_WAIT);
        req.wait = &op;

        _cleanup_response_ Plagent__Response *resp = NULL;
        int r = agent_call(c, "wait", &req, timeout_ms, &resp, err);
        if (r < 0)
                return r;
        r = response_expect(resp, PLAGENT__RESPONSE__RESULT_PROCESS, "wait", err);
        if (r < 0)
                return r;
        process_info_from(ret, resp->process);
        return 0;
}

int agent_process_wait(AgentProcess *p, AgentProcessInfo *ret, int timeout_ms, Error **err) {
        return agent_client_wait(p->client, p->process_id, ret, timeout_ms, err);
}

/* For calls whose answer is empty. */
static int call_simple(AgentClient *c, const char *op, Plagent__Request *req, int timeout_ms, Error **err) {
        _cleanup_response_ Plagent__Response *resp = NULL;
        return agent_call(c, op, req, timeout_ms, &resp, err);
}

int agent_process_resize(AgentProcess *p, uint16_t rows, uint16_t cols, Error **err) {
        Plagent__ResizeRequest op = PLAGENT__RESIZE_REQUEST__INIT;
        op.process_id = p->process_id;
        op.rows = rows;
        op.cols = cols;
        Plagent__Request req = request_init(PLAGENT__REQUEST__OP_RESIZE);
        req.resize = &op;
        return call_simple(p->client, "resize", &req, p->client->request_timeout_ms, err);
}

int agent_client_signal(AgentClient *c, uint32_t process_id, int sig, bool all, Error **err) {
        if (sig <= 0)
                return error_set(err, EINVAL, "invalid signal %d", sig);
        Plagent__SignalRequest op = PLAGENT__SIGNAL_REQUEST__INIT;
        op.process_id = process_id;
        op.signal = sig;
        op.all = all;
        Plagent__Request req = request_init(PLAGENT__REQUEST__OP_SIGNAL);
        req.signal = &op;
        return call_simple(c, "signal", &req, c->request_timeout_ms, err);
}

int agent_process_signal(AgentProcess *p, int sig, Error **err) {
        return agent_client_signal(p->client, p->process_id, sig, false, err);
}

int agent_client_list_processes(AgentClient *c, AgentProcessInfo **ret, size_t *ret_n, int timeout_ms,
                                Error **err) {
        Plagent__ListProcessesRequest op = PLAGENT__LIST_PROCESSES_REQUEST__INIT;
        Plagent__Request req = request_init(PLAGENT__REQUEST__OP_LIST_PROCESSES);
        req.list_processes = &op;

        _cleanup_response_ Plagent__Response *resp = NULL;
        int r = agent_call(c, "list-processes", &req, timeout_ms, &resp, err);
        if (r < 0)
                return r;
        r = response_expect(resp, PLAGENT__RESPONSE__RESULT_LIST_PROCESSES, "list-processes", err);
        if (r < 0)
                return r;

        const Plagent__ListProcessesResponse *l = resp->list_processes;
        if (l->n_processes > AGENT_MAX_PROCESSES)
                return error_set(err, EPROTO, "the agent listed %zu processes (at most %u are accepted)",
                                 l->n_processes, AGENT_MAX_PROCESSES);
        AgentProcessInfo *v = calloc(MAX(l->n_processes, (size_t) 1), sizeof(*v));
        if (!v)
                return error_oom(err);
        for (size_t i = 0; i < l->n_processes; i++)
                process_info_from(&v[i], l->processes[i]);
        *ret = v;
        *ret_n = l->n_processes;
        return 0;
}

/* --- files and power --- */

int agent_client_stat(AgentClient *c, const char *path, AgentStat *ret, int timeout_ms, Error **err) {
        Plagent__StatRequest op = PLAGENT__STAT_REQUEST__INIT;
        op.path = (char *) path;
        Plagent__Request req = request_init(PLAGENT__REQUEST__OP_STAT);
        req.stat = &op;

        _cleanup_response_ Plagent__Response *resp = NULL;
        int r = agent_call(c, "stat", &req, timeout_ms, &resp, err);
        if (r < 0)
                return r;
        r = response_expect(resp, PLAGENT__RESPONSE__RESULT_STAT, "stat", err);
        if (r < 0)
                return r;

        const Plagent__StatResponse *s = resp->stat;
        *ret = (AgentStat){
                .mode = (mode_t) s->mode,
                .size = s->size,
                .mtime_ns = s->mtime_ns,
                .uid = (uid_t) s->uid,
                .gid = (gid_t) s->gid,
        };
        agent_copy_string(ret->name, sizeof ret->name, s->name, false);
        agent_copy_string(ret->link_target, sizeof ret->link_target, s->link_target, false);
        return 0;
}

int agent_client_remove(AgentClient *c, const char *path, bool recursive, int timeout_ms, Error **err) {
        Plagent__RemoveRequest op = PLAGENT__REMOVE_REQUEST__INIT;
        op.path = (char *) path;
        op.recursive = recursive;
        Plagent__Request req = request_init(PLAGENT__REQUEST__OP_REMOVE);
        req.remove = &op;
        return call_simple(c, "remove", &req, timeout_ms, err);
}

int agent_client_shutdown(AgentClient *c, uint32_t grace_ms, int timeout_ms, Error **err) {
        Plagent__ShutdownRequest op = PLAGENT__SHUTDOWN_REQUEST__INIT;
        op.grace_ms = grace_ms;
        Plagent__Request req = request_init(PLAGENT__REQUEST__OP_SHUTDOWN);
        req.shutdown = &op;
        return call_simple(c, "shutdown", &req, timeout_ms, err);
}

/* ---- setup and /etc ------------------------------------------------------ */

#define SETUP_MAX_INTERFACES 8u
#define SETUP_MAX_MOUNTS 64u
#define SETUP_MAX_DEVICE_WAIT_MS 60000

static char *str_or_empty(const char *s) {
        return (char *) (s ? s : "");
}

/* The agent answers a setup only once its disks appeared: let it give up on
 * one a second before we give up on the answer. */
static uint32_t setup_device_wait_ms(int timeout_ms) {
        if (timeout_ms < 0)
                return 0; /* the agent's default */
        int wait = timeout_ms > 2000 ? timeout_ms - 1000 : timeout_ms / 2;
        return (uint32_t) MAX(MIN(wait, SETUP_MAX_DEVICE_WAIT_MS), 1);
}

int agent_client_setup(AgentClient *c, const AgentInterface *ifs, size_t n_ifs, const AgentMount *mounts,
                       size_t n_mounts, int timeout_ms, Error **err) {
        if (n_ifs > SETUP_MAX_INTERFACES || n_mounts > SETUP_MAX_MOUNTS)
                return error_set(err, E2BIG, "setup: at most %u interfaces and %u mounts", SETUP_MAX_INTERFACES,
                                 SETUP_MAX_MOUNTS);
        Plagent__InterfaceConfig ic[SETUP_MAX_INTERFACES], *icp[SETUP_MAX_INTERFACES];
        for (size_t i = 0; i < n_ifs; i++) {
                ic[i] = (Plagent__InterfaceConfig) PLAGENT__INTERFACE_CONFIG__INIT;
                ic[i].mac = str_or_empty(ifs[i].mac);
                ic[i].address = str_or_empty(ifs[i].address);
                ic[i].gateway = str_or_empty(ifs[i].gateway);
                ic[i].mtu = ifs[i].mtu;
                icp[i] = &ic[i];
        }
        _cleanup_free_ Plagent__MountConfig *mc = calloc(n_mounts + 1, sizeof(*mc));
        _cleanup_free_ Plagent__MountConfig **mcp = calloc(n_mounts + 1, sizeof(*mcp));
        if (!mc || !mcp)
                return error_oom(err);
        for (size_t i = 0; i < n_mounts; i++) {
                mc[i] = (Plagent__MountConfig) PLAGENT__MOUNT_CONFIG__INIT;
                mc[i].kind = mounts[i].kind == AGENT_MOUNT_VIRTIOFS ? PLAGENT__MOUNT_KIND__MOUNT_KIND_VIRTIOFS
                                                                     : PLAGENT__MOUNT_KIND__MOUNT_KIND_BLOCK;
                mc[i].source = str_or_empty(mounts[i].source);
                mc[i].target = str_or_empty(mounts[i].target);
                mc[i].fstype = str_or_empty(mounts[i].fstype);
                mc[i].read_only = mounts[i].read_only;
                mcp[i] = &mc[i];
        }
        Plagent__SetupRequest op = PLAGENT__SETUP_REQUEST__INIT;
        op.n_interfaces = n_ifs;
        op.interfaces = n_ifs > 0 ? icp : NULL;
        op.n_mounts = n_mounts;
        op.mounts = n_mounts > 0 ? mcp : NULL;
        op.device_wait_ms = setup_device_wait_ms(timeout_ms);
        Plagent__Request req = request_init(PLAGENT__REQUEST__OP_SETUP);
        req.setup = &op;
        return call_simple(c, "setup", &req, timeout_ms, err);
}

int agent_client_write_etc(AgentClient *c, const AgentEtc *etc, int timeout_ms, Error **err) {
        if (etc->n_hosts > 256 || etc->n_nameservers > 8 || etc->n_search > 6)
                return error_set(err, E2BIG, "etc: at most 256 hosts entries, 8 nameservers and 6 search domains");
        _cleanup_free_ Plagent__HostEntry *he = calloc(etc->n_hosts + 1, sizeof(*he));
        _cleanup_free_ Plagent__HostEntry **hep = calloc(etc->n_hosts + 1, sizeof(*hep));
        if (!he || !hep)
                return error_oom(err);
        for (size_t i = 0; i < etc->n_hosts; i++) {
                he[i] = (Plagent__HostEntry) PLAGENT__HOST_ENTRY__INIT;
                he[i].address = str_or_empty(etc->hosts[i].address);
                he[i].n_names = etc->hosts[i].n_names;
                he[i].names = (char **) etc->hosts[i].names;
                hep[i] = &he[i];
        }
        Plagent__EtcRequest op = PLAGENT__ETC_REQUEST__INIT;
        op.write_hostname = etc->write_hostname;
        op.write_hosts = etc->write_hosts;
        op.write_resolv = etc->write_resolv;
        op.hostname = str_or_empty(etc->hostname);
        op.n_hosts = etc->n_hosts;
        op.hosts = etc->n_hosts > 0 ? hep : NULL;
        op.n_nameservers = etc->n_nameservers;
        op.nameservers = (char **) etc->nameservers;
        op.n_search = etc->n_search;
        op.search = (char **) etc->search;
        Plagent__Request req = request_init(PLAGENT__REQUEST__OP_ETC);
        req.etc = &op;
        return call_simple(c, "etc", &req, timeout_ms, err);
}

int agent_client_activate(AgentClient *c, const AgentActivate *a, int timeout_ms, Error **err) {
        uint8_t entropy[AGENT_ACTIVATE_ENTROPY];
        if (getrandom(entropy, sizeof entropy, 0) != (ssize_t) sizeof entropy)
                return error_set_errno(err, errno, "activate: getrandom");
        Plagent__ActivateRequest op = PLAGENT__ACTIVATE_REQUEST__INIT;
        op.root_serial = str_or_empty(a->root_serial);
        op.fstype = str_or_empty(a->fstype);
        op.read_only = a->read_only;
        op.no_grow = a->no_grow;
        op.hostname = str_or_empty(a->hostname);
        op.device_wait_ms = setup_device_wait_ms(timeout_ms);
        op.entropy = (ProtobufCBinaryData){.len = sizeof entropy, .data = entropy};
        op.realtime_ns = (int64_t) realtime_nsec();
        op.wait_macs = (char **) a->wait_macs;
        op.n_wait_macs = a->n_wait_macs;
        Plagent__Request req = request_init(PLAGENT__REQUEST__OP_ACTIVATE);
        req.activate = &op;
        int r = call_simple(c, "activate", &req, timeout_ms, err);
        explicit_bzero(entropy, sizeof entropy);
        return r;
}
