/* vm-fake.c: an in-memory VM driver behind the same table as the real one.
 *
 * Layers above the VM driver (container lifecycle, reconciliation, garbage
 * collection) are tested against this fake. It keeps the real driver's
 * contract, as far as a test can see it: the spec is validated and turned
 * into domain XML by the same code, names and uuids are unique, destroy is
 * idempotent, list_ours() reads the container id back from the XML, and
 * events arrive from another thread, never inside the call that caused them,
 * in the order libvirt would send them (a destroy of a running domain gives
 * SHUTOFF "destroyed" then MISSING "undefined"). Tests steer it with the
 * vm_fake_*() controls: inject a failure into the next call of an operation,
 * move a domain to another state as a guest would (power-off, crash), add a
 * foreign domain, wait until queued events are delivered.
 *
 * With vm_fake_set_agent() it also stands in for the guest: a domain whose
 * spec has an agent socket gets the real agent in host mode, serving that
 * socket and running processes in a root directory beside it. The agent is
 * the VM: it exiting by itself is a power-off (a clean exit) or a crash,
 * suspend stops its process tree and resume continues it, destroy and close
 * kill the tree and reap the agent. A reaper thread notices the exits. */
#include "portlayer/vm/vm-driver.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/base/proc-util.h"
#include "vm-xml-internal.h"

typedef struct FakeForward {
        struct FakeForward *next;
        char protocol[4];
        char host_ip[16]; /* "" = all */
        uint16_t host_port, guest_port;
} FakeForward;

typedef struct FakeDomain {
        struct FakeDomain *next;
        char name[VM_NAME_MAX + 1];
        char uuid[40];   /* empty when none was asked for */
        char *xml;       /* NULL for a foreign domain */
        VmFakeInfo info;
        VmState state;
        pid_t agent;     /* the host-mode agent standing in for the guest, 0 when none */
        bool user_nic;   /* has a VM_NIC_USER NIC: forward() works */
        FakeForward *forwards;
} FakeDomain;

typedef struct FakeEvent {
        struct FakeEvent *next;
        char name[VM_NAME_MAX + 1];
        VmState state;
        const char *reason;
} FakeEvent;

typedef struct FakeDriver {
        VmDriver base;
        pthread_mutex_t lock;
        pthread_cond_t work;     /* an event was queued, or quit */
        pthread_cond_t progress; /* an event was delivered */
        FakeDomain *domains;
        FakeEvent *head, *tail;
        uint64_t queued, delivered;
        bool quit;
        bool has_thread;
        pthread_t thread;
        VmEventFn cb;
        void *userdata;
        int fail[_VM_FAKE_OP_MAX]; /* positive errno for the next call, or 0 */
        char *agent_bin;         /* vm_fake_set_agent(), or NULL */
        bool has_reaper;
        pthread_t reaper;
        pthread_cond_t reap;     /* wakes the reaper: quit */
} FakeDriver;

static const char *const op_names[_VM_FAKE_OP_MAX] = {
        [VM_FAKE_OP_CREATE] = "create domain", [VM_FAKE_OP_START] = "create domain",
        [VM_FAKE_OP_DESTROY] = "destroy domain", [VM_FAKE_OP_STATE] = "state of domain",
        [VM_FAKE_OP_LIST] = "list domains",
};

static FakeDriver *fake_of(VmDriver *d) {
        return d && d->ops == &vm_driver_fake ? (FakeDriver *) d : NULL;
}

/* Call with lock held. Returns the injected failure of op, once. */
static int take_failure(FakeDriver *f, VmFakeOp op, const char *name, Error **err) {
        int code = f->fail[op];
        if (code == 0)
                return 0;
        f->fail[op] = 0;
        return error_set(err, code, "%s '%s': injected failure (fake driver)", op_names[op], name ? name : "");
}

static FakeDomain *find(FakeDriver *f, const char *name) {
        for (FakeDomain *dom = f->domains; dom; dom = dom->next)
                if (strcmp(dom->name, name) == 0)
                        return dom;
        return NULL;
}

static void forwards_free(FakeDomain *dom) {
        while (dom->forwards) {
                FakeForward *fw = dom->forwards;
                dom->forwards = fw->next;
                free(fw);
        }
        dom->info.n_forwards = 0;
}

static void domain_free(FakeDomain *dom) {
        forwards_free(dom);
        free(dom->xml);
        free(dom);
}

/* Call with lock held. Events are dropped when out of memory, as a real
 * event stream may lose them; state() stays the truth. */
static void queue_event(FakeDriver *f, const char *name, VmState state, const char *reason) {
        if (!f->cb)
                return;
        FakeEvent *ev = calloc(1, sizeof(*ev));
        if (!ev)
                return;
        snprintf(ev->name, sizeof ev->name, "%s", name);
        ev->state = state;
        ev->reason = reason;
        if (f->tail)
                f->tail->next = ev;
        else
                f->head = ev;
        f->tail = ev;
        f->queued++;
        pthread_cond_signal(&f->work);
}

/* --- the agent standing in for a guest --- */

typedef struct ProcLink {
        pid_t pid, ppid;
        bool live;    /* not a zombie */
        bool stopped; /* by a signal */
} ProcLink;

/* pid, parent and liveness of every process in /proc; *ret is malloc'd. */
static size_t proc_links(ProcLink **ret) {
        *ret = NULL;
        DIR *d = opendir("/proc");
        if (!d)
                return 0;
        size_t n = 0, cap = 0;
        for (struct dirent *de; (de = readdir(d));) {
                char path[64], buf[512], state;
                int pid = atoi(de->d_name), ppid;
                if (pid <= 0)
                        continue;
                snprintf(path, sizeof path, "/proc/%d/stat", pid);
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                ssize_t k = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
                if (fd >= 0)
                        close(fd);
                if (k <= 0)
                        continue; /* gone meanwhile */
                buf[k] = 0;
                const char *rp = strrchr(buf, ')'); /* the command name may hold anything */
                if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2)
                        continue;
                if (n == cap) {
                        ProcLink *nv = realloc(*ret, (cap = cap ? cap * 2 : 256) * sizeof(*nv));
                        if (!nv)
                                break;
                        *ret = nv;
                }
                (*ret)[n++] = (ProcLink){.pid = pid, .ppid = ppid, .live = state != 'Z' && state != 'X',
                                         .stopped = state == 'T' || state == 't'};
        }
        closedir(d);
        return n;
}

/* Sends sig to every live descendant of root (the agent is a subreaper, so
 * processes that daemonized stay below it) and returns how many it found;
 * with sig 0, the number of those not stopped, root included. */
static size_t signal_descendants(pid_t root, int sig) {
        ProcLink *v = NULL;
        size_t n = proc_links(&v), found = 0;
        _cleanup_free_ pid_t *set = calloc(n + 1, sizeof(pid_t));
        _cleanup_free_ bool *in = calloc(n + 1, sizeof(bool));
        size_t n_set = 0;
        if (set && in) {
                set[n_set++] = root;
                for (bool more = true; more;) { /* one generation per pass */
                        more = false;
                        for (size_t i = 0; i < n; i++)
                                for (size_t j = 0; !in[i] && j < n_set; j++)
                                        if (v[i].ppid == set[j]) {
                                                in[i] = more = true;
                                                set[n_set++] = v[i].pid;
                                        }
                }
                for (size_t i = 0; i < n; i++) {
                        if (sig == 0 && ((in[i] && v[i].live) || v[i].pid == root))
                                found += !v[i].stopped;
                        else if (in[i] && v[i].live) {
                                (void) kill(v[i].pid, sig);
                                found++;
                        }
                }
        }
        free(v);
        return found;
}

/* Call with lock held. A powered-off guest: the agent and every process it
 * started are killed. The agent is stopped first, so that it reports no
 * exit of its processes (a guest that is gone reports nothing), and its
 * processes are killed until none is left (one may fork meanwhile), then the
 * agent is killed and reaped. */
static void agent_kill(FakeDomain *dom) {
        if (dom->agent <= 0)
                return;
        (void) kill(dom->agent, SIGSTOP);
        for (int i = 0; i < 1000 && signal_descendants(dom->agent, SIGKILL) > 0; i++)
                usleep(1000);
        (void) kill(dom->agent, SIGKILL);
        while (waitpid(dom->agent, NULL, 0) < 0 && errno == EINTR)
                ;
        dom->agent = 0;
}

/* Call with lock held. A paused guest stops as a whole, agent first, and is
 * stopped when suspend returns, as a VM's vCPUs are. */
static void agent_stop_or_cont(FakeDomain *dom, bool stop) {
        if (dom->agent <= 0)
                return;
        if (stop)
                (void) kill(dom->agent, SIGSTOP);
        (void) signal_descendants(dom->agent, stop ? SIGSTOP : SIGCONT);
        if (!stop)
                (void) kill(dom->agent, SIGCONT);
        for (int i = 0; stop && i < 1000 && signal_descendants(dom->agent, 0) > 0; i++)
                usleep(1000);
}

/* Call with lock held. Starts the agent for spec: it serves agent_socket
 * and runs processes in <dirname(agent_socket)>/root (created here); its
 * output goes to the console log, as a guest's console would. */
static int agent_spawn(FakeDriver *f, const VmSpec *spec, pid_t *ret, Error **err) {
        _cleanup_free_ char *root = NULL;
        const char *sock = spec->agent_socket, *slash = strrchr(sock, '/');
        if (asprintf(&root, "%.*s/root", (int) (slash - sock), sock) < 0)
                return error_oom(err);
        if (mkdir(root, 0755) < 0 && errno != EEXIST)
                return error_set_errno(err, errno, "create domain '%s': create %s", spec->name, root);
        (void) unlink(sock);
        const char *argv[] = {f->agent_bin, "--unix", sock, "--root", root, NULL};
        const char *console = spec->console_log ? spec->console_log : "/dev/null";
        pid_t pid = fork();
        if (pid < 0)
                return error_set_errno(err, errno, "create domain '%s': fork", spec->name);
        if (pid == 0) { /* async-signal-safe calls only until the exec */
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
                int out = open(console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
                        _exit(126);
                execv(argv[0], (char **) argv);
                _exit(127);
        }
        *ret = pid;
        return 0;
}

/* Call with lock held. An agent that exited by itself: the guest powered off
 * (exit status 0) or crashed (anything else). */
static void agent_reap(FakeDriver *f, FakeDomain *dom) {
        int status;
        if (dom->agent <= 0 || waitpid(dom->agent, &status, WNOHANG) != dom->agent)
                return;
        dom->agent = 0;
        forwards_free(dom);
        bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        dom->state = clean ? VM_STATE_SHUTOFF : VM_STATE_CRASHED;
        queue_event(f, dom->name, dom->state, clean ? "shutdown" : "crashed");
}

static void *reaper_main(void *arg) {
        FakeDriver *f = arg;
        pthread_mutex_lock(&f->lock);
        while (!f->quit) {
                for (FakeDomain *dom = f->domains; dom; dom = dom->next)
                        agent_reap(f, dom);
                struct timespec ts;
                realtime_after_usec(20 * USEC_PER_MSEC, &ts);
                pthread_cond_timedwait(&f->reap, &f->lock, &ts);
        }
        pthread_mutex_unlock(&f->lock);
        return NULL;
}

static void *event_main(void *arg) {
        FakeDriver *f = arg;
        pthread_mutex_lock(&f->lock);
        for (;;) {
                while (!f->head && !f->quit)
                        pthread_cond_wait(&f->work, &f->lock);
                if (f->quit)
                        break;
                FakeEvent *ev = f->head;
                f->head = ev->next;
                if (!f->head)
                        f->tail = NULL;
                pthread_mutex_unlock(&f->lock);
                f->cb(&(VmEvent) { .name = ev->name, .state = ev->state, .reason = ev->reason }, f->userdata);
                free(ev);
                pthread_mutex_lock(&f->lock);
                f->delivered++;
                pthread_cond_broadcast(&f->progress);
        }
        pthread_mutex_unlock(&f->lock);
        return NULL;
}

static void fake_close(VmDriver *base) {
        FakeDriver *f = (FakeDriver *) base;

        pthread_mutex_lock(&f->lock);
        f->quit = true;
        pthread_cond_signal(&f->work);
        pthread_cond_broadcast(&f->progress);
        pthread_cond_broadcast(&f->reap);
        pthread_mutex_unlock(&f->lock);
        if (f->has_thread)
                pthread_join(f->thread, NULL);
        if (f->has_reaper)
                pthread_join(f->reaper, NULL);

        while (f->head) {
                FakeEvent *ev = f->head;
                f->head = ev->next;
                free(ev);
        }
        while (f->domains) {
                FakeDomain *dom = f->domains;
                f->domains = dom->next;
                agent_kill(dom); /* a test that failed half-way leaves no process */
                domain_free(dom);
        }
        free(f->agent_bin);
        pthread_cond_destroy(&f->reap);
        pthread_cond_destroy(&f->progress);
        pthread_cond_destroy(&f->work);
        pthread_mutex_destroy(&f->lock);
        free(f);
}

static int fake_open(VmDriver **ret, const char *uri, const char *state_dir, VmEventFn cb, void *userdata,
                     Error **err) {
        FakeDriver *f = calloc(1, sizeof(*f));
        if (!f)
                return error_oom(err);
        f->base.ops = &vm_driver_fake;
        f->cb = cb;
        f->userdata = userdata;
        pthread_mutex_init(&f->lock, NULL);
        pthread_cond_init(&f->work, NULL);
        pthread_cond_init(&f->progress, NULL);
        pthread_cond_init(&f->reap, NULL);
        if (cb) {
                int r = pthread_create(&f->thread, NULL, event_main, f);
                if (r != 0) {
                        fake_close(&f->base);
                        return error_set_errno(err, r, "fake VM driver: cannot start the event thread");
                }
                f->has_thread = true;
        }
        *ret = &f->base;
        return 0;
}

static FakeDomain *domain_new(const VmSpec *spec, VmAccel accel, char *xml) {
        FakeDomain *dom = calloc(1, sizeof(*dom));
        if (!dom)
                return NULL;
        snprintf(dom->name, sizeof dom->name, "%s", spec->name);
        snprintf(dom->uuid, sizeof dom->uuid, "%s", spec->uuid ? spec->uuid : "");
        snprintf(dom->info.container_id, sizeof dom->info.container_id, "%s", spec->container_id);
        dom->info.accel = accel;
        dom->info.memory_mib = spec->memory_mib;
        dom->info.vcpus = spec->vcpus;
        dom->info.n_disks = spec->n_disks;
        dom->info.vsock = spec->vsock;
        dom->info.n_nics = spec->n_nics;
        dom->info.n_filesystems = spec->n_filesystems;
        for (size_t i = 0; i < spec->n_nics; i++)
                dom->user_nic |= spec->nics[i].type == VM_NIC_USER;
        dom->state = VM_STATE_RUNNING;
        dom->xml = xml;
        return dom;
}

/* Call with lock held: the checks libvirt makes at define time. */
static int check_unique(FakeDriver *f, const VmSpec *spec, Error **err) {
        if (find(f, spec->name))
                return error_set(err, EEXIST, "create domain '%s': a domain of that name exists", spec->name);
        for (FakeDomain *dom = f->domains; spec->uuid && dom; dom = dom->next)
                if (strcasecmp(dom->uuid, spec->uuid) == 0)
                        return error_set(err, EEXIST, "create domain '%s': domain '%s' already has uuid %s",
                                         spec->name, dom->name, spec->uuid);
        return 0;
}

static int fake_create(VmDriver *base, const VmSpec *spec, Error **err) {
        FakeDriver *f = (FakeDriver *) base;
        _cleanup_free_ char *xml = NULL;
        VmAccel accel = spec && spec->accel == VM_ACCEL_KVM ? VM_ACCEL_KVM : VM_ACCEL_TCG;
        FakeDomain *dom = NULL;

        int r = vm_xml_build(spec, accel, &xml, err); /* validates */
        if (r < 0)
                return r;
        pthread_mutex_lock(&f->lock);
        if ((r = take_failure(f, VM_FAKE_OP_CREATE, spec->name, err)) < 0 || (r = check_unique(f, spec, err)) < 0)
                goto out;
        if ((r = take_failure(f, VM_FAKE_OP_START, spec->name, err)) < 0) {
                queue_event(f, spec->name, VM_STATE_MISSING, "undefined"); /* the rollback */
                goto out;
        }
        dom = domain_new(spec, accel, xml);
        if (!dom) {
                r = error_oom(err);
                goto out;
        }
        TAKE_PTR(xml);
        if (f->agent_bin && spec->agent_socket && (r = agent_spawn(f, spec, &dom->agent, err)) < 0) {
                queue_event(f, spec->name, VM_STATE_MISSING, "undefined");
                domain_free(dom);
                goto out;
        }
        dom->next = f->domains;
        f->domains = dom;
        queue_event(f, spec->name, VM_STATE_RUNNING, "started");
out:
        pthread_mutex_unlock(&f->lock);
        return r;
}

static int fake_destroy(VmDriver *base, const char *name, Error **err) {
        FakeDriver *f = (FakeDriver *) base;
        if (!vm_name_is_valid(name, VM_NAME_MAX))
                return error_set(err, EINVAL, "destroy domain '%.*s': invalid name", 80, name ? name : "");

        pthread_mutex_lock(&f->lock);
        int r = take_failure(f, VM_FAKE_OP_DESTROY, name, err);
        for (FakeDomain **p = &f->domains; r == 0 && *p; p = &(*p)->next) {
                FakeDomain *dom = *p;
                if (strcmp(dom->name, name) != 0)
                        continue;
                if (dom->state != VM_STATE_SHUTOFF && dom->state != VM_STATE_CRASHED)
                        queue_event(f, name, VM_STATE_SHUTOFF, "destroyed");
                queue_event(f, name, VM_STATE_MISSING, "undefined");
                *p = dom->next;
                agent_kill(dom);
                domain_free(dom);
                break;
        }
        pthread_mutex_unlock(&f->lock);
        return r;
}

static int fake_state(VmDriver *base, const char *name, VmState *ret, Error **err) {
        FakeDriver *f = (FakeDriver *) base;
        if (!vm_name_is_valid(name, VM_NAME_MAX))
                return error_set(err, EINVAL, "state of domain '%.*s': invalid name", 80, name ? name : "");

        pthread_mutex_lock(&f->lock);
        int r = take_failure(f, VM_FAKE_OP_STATE, name, err);
        if (r == 0) {
                FakeDomain *dom = find(f, name);
                *ret = dom ? dom->state : VM_STATE_MISSING;
        }
        pthread_mutex_unlock(&f->lock);
        return r;
}

static int fake_suspend_resume(VmDriver *base, const char *name, bool suspend, Error **err) {
        FakeDriver *f = (FakeDriver *) base;
        const char *what = suspend ? "suspend" : "resume";
        VmState from = suspend ? VM_STATE_RUNNING : VM_STATE_PAUSED, to = suspend ? VM_STATE_PAUSED : VM_STATE_RUNNING;
        pthread_mutex_lock(&f->lock);
        FakeDomain *dom = find(f, name);
        int r = 0;
        if (!dom)
                r = error_set(err, ENOENT, "%s domain '%s': no such domain", what, name);
        else if (dom->state != from)
                r = error_set(err, EBADFD, "%s domain '%s': domain is %s", what, name, vm_state_to_string(dom->state));
        else {
                agent_stop_or_cont(dom, suspend);
                dom->state = to;
                queue_event(f, name, to, suspend ? "suspended" : "resumed");
        }
        pthread_mutex_unlock(&f->lock);
        return r;
}

static int fake_suspend(VmDriver *base, const char *name, Error **err) {
        return fake_suspend_resume(base, name, true, err);
}

static int fake_resume(VmDriver *base, const char *name, Error **err) {
        return fake_suspend_resume(base, name, false, err);
}

static int fake_vsock_cid(VmDriver *base, const char *name, unsigned *ret, Error **err) {
        FakeDriver *f = (FakeDriver *) base;
        pthread_mutex_lock(&f->lock);
        FakeDomain *dom = find(f, name);
        int r = 0;
        if (!dom || !dom->xml || !dom->info.vsock)
                r = error_set(err, ENOENT, "vsock of domain '%s': no vsock device", name);
        else /* a CID derived from the name: stable, and never 0-2 */
                *ret = 3 + (unsigned) (strlen(dom->name) * 131u + (unsigned char) dom->name[0]) % 100000u;
        pthread_mutex_unlock(&f->lock);
        return r;
}

static int fake_stats(VmDriver *base, const char *name, VmStats *ret, Error **err) {
        FakeDriver *f = (FakeDriver *) base;
        pthread_mutex_lock(&f->lock);
        FakeDomain *dom = find(f, name);
        int r = 0;
        if (!dom)
                r = error_set(err, ENOENT, "statistics of domain '%s': no such domain", name);
        else if (dom->state != VM_STATE_RUNNING && dom->state != VM_STATE_PAUSED)
                r = error_set(err, EBADFD, "statistics of domain '%s': not running", name);
        else {
                /* the host-mode agent standing in for the guest is "QEMU" */
                *ret = (VmStats){.memory_kib = dom->info.memory_mib * 1024, .qemu_pid = dom->agent};
                if (dom->agent > 0 && proc_pss_kib(dom->agent, &ret->pss_kib) < 0)
                        ret->pss_kib = 0;
        }
        pthread_mutex_unlock(&f->lock);
        return r;
}

/* Call with lock held. */
static int collect_ours(FakeDriver *f, char **names, size_t *n, Error **err) {
        for (FakeDomain *dom = f->domains; dom; dom = dom->next) {
                _cleanup_free_ char *id = NULL;
                if (!dom->xml || vm_xml_container_id(dom->xml, &id) < 0)
                        continue;
                if (!(names[*n] = strdup(dom->name)))
                        return error_oom(err);
                (*n)++;
        }
        return 0;
}

static int fake_list_ours(VmDriver *base, char ***ret_names, size_t *ret_n, Error **err) {
        FakeDriver *f = (FakeDriver *) base;
        char **names = NULL;
        size_t n = 0, count = 0;

        pthread_mutex_lock(&f->lock);
        int r = take_failure(f, VM_FAKE_OP_LIST, NULL, err);
        for (FakeDomain *dom = f->domains; dom; dom = dom->next)
                count++;
        if (r == 0 && !(names = calloc(count + 1, sizeof(char *))))
                r = error_oom(err);
        if (r == 0)
                r = collect_ours(f, names, &n, err);
        pthread_mutex_unlock(&f->lock);
        if (r < 0) {
                vm_names_free(names, n);
                return r;
        }
        *ret_names = names;
        *ret_n = n;
        return 0;
}

static bool forward_same_port(const FakeForward *have, const VmForward *fw) {
        const char *ip = fw->host_ip ? fw->host_ip : "";
        return strcmp(have->protocol, fw->protocol) == 0 && have->host_port == fw->host_port &&
               (!have->host_ip[0] || !ip[0] || strcmp(have->host_ip, ip) == 0);
}

static bool forward_equal(const FakeForward *have, const VmForward *fw) {
        const char *ip = fw->host_ip ? fw->host_ip : "";
        return strcmp(have->protocol, fw->protocol) == 0 && have->host_port == fw->host_port &&
               strcmp(have->host_ip, ip) == 0 && have->guest_port == fw->guest_port;
}

/* Call with lock held. */
static int forward_add(FakeDriver *f, FakeDomain *dom, const VmForward *fw, Error **err) {
        for (FakeForward *have = dom->forwards; have; have = have->next)
                if (forward_equal(have, fw))
                        return 0;
        for (FakeDomain *other = f->domains; other; other = other->next)
                for (FakeForward *have = other->forwards; have; have = have->next)
                        if (forward_same_port(have, fw))
                                return error_set(err, EADDRINUSE,
                                                 "add port forward of domain '%s': host port %s %s:%u is taken",
                                                 dom->name, fw->protocol,
                                                 fw->host_ip && fw->host_ip[0] ? fw->host_ip : "*", fw->host_port);
        FakeForward *n = calloc(1, sizeof(*n));
        if (!n)
                return error_oom(err);
        snprintf(n->protocol, sizeof n->protocol, "%s", fw->protocol);
        snprintf(n->host_ip, sizeof n->host_ip, "%s", fw->host_ip ? fw->host_ip : "");
        n->host_port = fw->host_port;
        n->guest_port = fw->guest_port;
        n->next = dom->forwards;
        dom->forwards = n;
        dom->info.n_forwards++;
        return 0;
}

/* Call with lock held. QEMU names a rule by protocol, address and port. */
static int forward_remove(FakeDomain *dom, const VmForward *fw, Error **err) {
        const char *ip = fw->host_ip ? fw->host_ip : "";
        for (FakeForward **p = &dom->forwards; *p; p = &(*p)->next) {
                FakeForward *have = *p;
                if (strcmp(have->protocol, fw->protocol) == 0 && have->host_port == fw->host_port &&
                    strcmp(have->host_ip, ip) == 0) {
                        *p = have->next;
                        free(have);
                        dom->info.n_forwards--;
                        return 0;
                }
        }
        return error_set(err, ENOENT, "remove port forward %s:%s:%u of domain '%s': no such forward", fw->protocol, ip,
                         fw->host_port, dom->name);
}

static int fake_forward(VmDriver *base, const char *name, const VmForward *fw, bool add, Error **err) {
        FakeDriver *f = (FakeDriver *) base;
        int r = vm_forward_validate(fw, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&f->lock);
        FakeDomain *dom = find(f, name ? name : "");
        if (!dom)
                r = error_set(err, ENOENT, "port forward of domain '%s': no such domain", name ? name : "");
        else if (dom->state != VM_STATE_RUNNING && dom->state != VM_STATE_PAUSED)
                r = error_set(err, EBADFD, "port forward of domain '%s': not running", name);
        else if (!dom->user_nic)
                r = error_set(err, EOPNOTSUPP, "port forward of domain '%s': no user-mode NIC", name);
        else
                r = add ? forward_add(f, dom, fw, err) : forward_remove(dom, fw, err);
        pthread_mutex_unlock(&f->lock);
        return r;
}

static int fake_attach_nic(VmDriver *base, const char *name, const VmNic *nic, Error **err) {
        (void) base;
        (void) nic;
        return error_set(err, EOPNOTSUPP, "attach to domain '%s': the fake driver has no hotplug", name);
}

/* The fake has no warm pool: daemons over it always boot cold. */
static int fake_list_pool(VmDriver *base, char ***ret_names, char ***ret_keys, size_t *ret_n, Error **err) {
        (void) base;
        *ret_names = calloc(1, sizeof(char *));
        *ret_keys = calloc(1, sizeof(char *));
        *ret_n = 0;
        if (!*ret_names || !*ret_keys) {
                *ret_names = vm_names_free(*ret_names, 0);
                *ret_keys = vm_names_free(*ret_keys, 0);
                return error_oom(err);
        }
        return 0;
}

static int fake_adopt(VmDriver *base, const char *name, const char *container_id, Error **err) {
        (void) base;
        (void) container_id;
        return error_set(err, EOPNOTSUPP, "adopt domain '%s': the fake driver has no pool", name);
}

static int fake_attach_disk(VmDriver *base, const char *name, const VmDisk *disk, size_t index, Error **err) {
        (void) base;
        (void) disk;
        (void) index;
        return error_set(err, EOPNOTSUPP, "attach to domain '%s': the fake driver has no hotplug", name);
}

const VmDriverOps vm_driver_fake = {
        .name = "fake",
        .open = fake_open,
        .close = fake_close,
        .create = fake_create,
        .destroy = fake_destroy,
        .state = fake_state,
        .suspend = fake_suspend,
        .resume = fake_resume,
        .vsock_cid = fake_vsock_cid,
        .stats = fake_stats,
        .list_ours = fake_list_ours,
        .forward = fake_forward,
        .list_pool = fake_list_pool,
        .adopt = fake_adopt,
        .attach_disk = fake_attach_disk,
        .attach_nic = fake_attach_nic,
};

/* --- controls --- */

void vm_fake_fail_next(VmDriver *d, VmFakeOp op, int code) {
        FakeDriver *f = fake_of(d);
        if (!f || (unsigned) op >= _VM_FAKE_OP_MAX)
                return;
        pthread_mutex_lock(&f->lock);
        f->fail[op] = code < 0 ? -code : code;
        pthread_mutex_unlock(&f->lock);
}

int vm_fake_set_state(VmDriver *d, const char *name, VmState state, const char *reason) {
        FakeDriver *f = fake_of(d);
        if (!f || !name || (unsigned) state >= _VM_STATE_MAX || state == VM_STATE_MISSING)
                return -EINVAL;
        pthread_mutex_lock(&f->lock);
        FakeDomain *dom = find(f, name);
        if (dom) {
                /* The agent is the guest: it runs, stops, or is gone. */
                if (state == VM_STATE_RUNNING || state == VM_STATE_PAUSED)
                        agent_stop_or_cont(dom, state == VM_STATE_PAUSED);
                else {
                        agent_kill(dom);
                        forwards_free(dom); /* they lived in the QEMU process */
                }
                dom->state = state;
                queue_event(f, name, state, reason ? reason : "set by test");
        }
        pthread_mutex_unlock(&f->lock);
        return dom ? 0 : -ENOENT;
}

int vm_fake_add_foreign(VmDriver *d, const char *name) {
        FakeDriver *f = fake_of(d);
        if (!f || !vm_name_is_valid(name, VM_NAME_MAX))
                return -EINVAL;
        FakeDomain *dom = calloc(1, sizeof(*dom));
        if (!dom)
                return -ENOMEM;
        snprintf(dom->name, sizeof dom->name, "%s", name);
        dom->state = VM_STATE_RUNNING;
        pthread_mutex_lock(&f->lock);
        bool exists = find(f, name) != NULL;
        if (!exists) {
                dom->next = f->domains;
                f->domains = dom;
        }
        pthread_mutex_unlock(&f->lock);
        if (exists)
                free(dom);
        return exists ? -EEXIST : 0;
}

int vm_fake_forward_exists(VmDriver *d, const char *name, const VmForward *fw) {
        FakeDriver *f = fake_of(d);
        if (!f || !name || vm_forward_validate(fw, NULL) < 0)
                return -EINVAL;
        pthread_mutex_lock(&f->lock);
        FakeDomain *dom = find(f, name);
        int r = dom ? 0 : -ENOENT;
        for (FakeForward *have = dom ? dom->forwards : NULL; have && r == 0; have = have->next)
                r = forward_equal(have, fw);
        pthread_mutex_unlock(&f->lock);
        return r;
}

int vm_fake_info(VmDriver *d, const char *name, VmFakeInfo *ret) {
        FakeDriver *f = fake_of(d);
        if (!f || !name)
                return -EINVAL;
        pthread_mutex_lock(&f->lock);
        FakeDomain *dom = find(f, name);
        bool ours = dom && dom->xml;
        if (ours)
                *ret = dom->info;
        pthread_mutex_unlock(&f->lock);
        return ours ? 0 : -ENOENT;
}

int vm_fake_domain_xml(VmDriver *d, const char *name, char **ret_xml) {
        FakeDriver *f = fake_of(d);
        if (!f || !name)
                return -EINVAL;
        int r = -ENOENT;
        pthread_mutex_lock(&f->lock);
        FakeDomain *dom = find(f, name);
        if (dom && dom->xml)
                r = (*ret_xml = strdup(dom->xml)) ? 0 : -ENOMEM;
        pthread_mutex_unlock(&f->lock);
        return r;
}

void vm_fake_flush(VmDriver *d) {
        FakeDriver *f = fake_of(d);
        if (!f)
                return;
        pthread_mutex_lock(&f->lock);
        uint64_t target = f->queued;
        while (f->delivered < target && !f->quit)
                pthread_cond_wait(&f->progress, &f->lock);
        pthread_mutex_unlock(&f->lock);
}

int vm_fake_set_agent(VmDriver *d, const char *agent_bin) {
        FakeDriver *f = fake_of(d);
        if (!f || (agent_bin && agent_bin[0] != '/'))
                return -EINVAL;
        char *copy = agent_bin ? strdup(agent_bin) : NULL;
        if (agent_bin && !copy)
                return -ENOMEM;
        pthread_mutex_lock(&f->lock);
        free(f->agent_bin);
        f->agent_bin = copy;
        int r = 0;
        if (copy && !f->has_reaper) {
                r = -pthread_create(&f->reaper, NULL, reaper_main, f);
                f->has_reaper = r == 0;
        }
        pthread_mutex_unlock(&f->lock);
        return r;
}
