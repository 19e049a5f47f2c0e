/* guest-pool.c: the warm pool of pre-booted guests (see guest.h and
 * docs/templates.md for why a pool and not a memory template).
 *
 * One filler thread boots pool guests one at a time (two cores are shared
 * with the containers themselves) until size are ready, each paused right
 * after its agent answered. A take pops the oldest ready guest of the right
 * key and turns it into the container's guest; the filler then boots a
 * replacement. Pool domains carry <pl:pool key=.../> metadata, so the
 * container layer's reconciliation never sees them; adopt() switches a taken
 * one to a container's metadata before anything else of the container is
 * attached, so a daemon killed at any moment leaves either a pool domain
 * (destroyed by the next guest_pool_new) or a container domain that recovery
 * knows or removes as an orphan. */
#include "portlayer/guest/guest.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"

#define POOL_KEY_MAX 24
#define POOL_RETRY_MAX_S 60
/* A refill waits until no take is in progress and the last one ended this
 * long ago: a boot beside a take halves the CPU the take's guest gets on a
 * small host (docs/templates.md), and a burst of takes is served first. */
#define POOL_REFILL_SETTLE_USEC (500 * 1000)

typedef struct PoolGuest {
        Guest *guest;
        char *dir; /* its run directory under the pool's */
        char key[POOL_KEY_MAX];
        VmOwner owner; /* its QEMU's uid while has_owner: claimed for its name */
        bool has_owner;
} PoolGuest;

struct GuestPool {
        VmDriver *driver;
        char *dir;
        unsigned size;
        GuestConfig base; /* strings owned: kernel, initrd, extra_cmdline */
        int (*owner_claim)(void *userdata, const char *name, VmOwner *ret, Error **err);
        void (*owner_release)(void *userdata, const char *name, const VmOwner *owner);
        void *owner_data;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pthread_t thread;
        bool quit;
        PoolGuest ready[GUEST_POOL_MAX];
        unsigned n_ready;
        unsigned taking;       /* takes in progress */
        uint64_t last_take_usec; /* when the last one ended (monotonic) */
};

static void fnv(uint64_t *h, const void *data, size_t len) {
        const unsigned char *p = data;
        for (size_t i = 0; i < len; i++) {
                *h ^= p[i];
                *h *= 1099511628211ULL;
        }
}

static void fnv_file(uint64_t *h, const char *path) {
        struct stat st = {0};
        fnv(h, path ? path : "", path ? strlen(path) + 1 : 1);
        if (path && stat(path, &st) == 0) {
                uint64_t v[] = {st.st_dev, st.st_ino, (uint64_t) st.st_size, (uint64_t) st.st_mtim.tv_sec,
                                (uint64_t) st.st_mtim.tv_nsec};
                fnv(h, v, sizeof v);
        }
}

/* What a booted guest depends on. The initramfs holds the agent (and is
 * content-addressed), so a new agent is a new file; the files are identified
 * by device, inode, size and modification time, looked at on every take. */
static void pool_key(const GuestConfig *c, char key[POOL_KEY_MAX]) {
        uint64_t h = 14695981039346656037ULL;
        fnv_file(&h, c->kernel);
        fnv_file(&h, c->initrd);
        uint64_t v[] = {c->memory_mib ? c->memory_mib : 256, c->vcpus ? c->vcpus : 1, c->accel, c->vsock,
                        c->tb_cache_mib, c->free_page_reporting, c->no_share_pages};
        fnv(&h, v, sizeof v);
        fnv(&h, "q35", 4);
        fnv(&h, c->extra_cmdline ? c->extra_cmdline : "", c->extra_cmdline ? strlen(c->extra_cmdline) + 1 : 1);
        snprintf(key, POOL_KEY_MAX, "t%016" PRIx64, h);
}

/* Destroys the guest, then (its QEMU gone) gives back its uid. */
static void pool_guest_destroy(GuestPool *p, PoolGuest *pg) {
        if (pg->guest) {
                (void) vm_driver_destroy(p->driver, pg->guest->name, NULL);
                if (pg->has_owner && p->owner_release)
                        p->owner_release(p->owner_data, pg->guest->name, &pg->owner);
                pg->has_owner = false;
                pg->guest = guest_free(pg->guest);
        }
        if (pg->dir)
                (void) rm_rf(pg->dir);
        pg->dir = mfree(pg->dir);
}

/* Boots one pool guest of key and pauses it. */
static int pool_boot(GuestPool *p, const char *key, PoolGuest *ret, Error **err) {
        uint64_t id;
        if (getrandom(&id, sizeof id, 0) != sizeof id)
                return error_set_errno(err, errno, "pool: getrandom");
        char name[32];
        snprintf(name, sizeof name, "plp-%016" PRIx64, id);
        *ret = (PoolGuest){0};
        snprintf(ret->key, sizeof ret->key, "%s", key);
        if (asprintf(&ret->dir, "%s/%016" PRIx64, p->dir, id) < 0)
                return error_oom(err);
        GuestConfig gc = p->base;
        gc.name = name;
        gc.container_id = name;
        gc.run_dir = ret->dir;
        gc.hostname = "pool";
        gc.pool_key = key;
        gc.owner = NULL;
        int r = 0;
        if (p->owner_claim) {
                r = p->owner_claim(p->owner_data, name, &ret->owner, err);
                if (r < 0) {
                        ret->dir = mfree(ret->dir);
                        return r;
                }
                ret->has_owner = true;
                gc.owner = &ret->owner;
        }
        r = guest_start(p->driver, &gc, &ret->guest, err);
        if (r >= 0 && (r = vm_driver_suspend(p->driver, name, err)) < 0)
                pool_guest_destroy(p, ret);
        if (r < 0 && ret->has_owner && p->owner_release) {
                /* guest_start() destroyed what it created */
                (void) vm_driver_destroy(p->driver, name, NULL);
                p->owner_release(p->owner_data, name, &ret->owner);
        }
        if (r < 0)
                (void) rm_rf(ret->dir), ret->dir = mfree(ret->dir);
        return r;
}

static void *pool_main(void *arg) {
        GuestPool *p = arg;
        unsigned failures = 0;
        pthread_mutex_lock(&p->lock);
        while (!p->quit) {
                if (p->n_ready >= p->size) {
                        pthread_cond_wait(&p->cond, &p->lock);
                        continue;
                }
                uint64_t settled = p->last_take_usec + POOL_REFILL_SETTLE_USEC, now = now_usec();
                if (p->taking > 0 || now < settled) {
                        struct timespec ts;
                        realtime_after_usec(p->taking > 0 ? POOL_REFILL_SETTLE_USEC : settled - now, &ts);
                        (void) pthread_cond_timedwait(&p->cond, &p->lock, &ts);
                        continue;
                }
                pthread_mutex_unlock(&p->lock);
                char key[POOL_KEY_MAX];
                pool_key(&p->base, key);
                PoolGuest pg;
                _cleanup_error_ Error *e = NULL;
                uint64_t t0 = now_usec();
                int r = pool_boot(p, key, &pg, &e);
                pthread_mutex_lock(&p->lock);
                if (r < 0) {
                        failures++;
                        log_warning("pool: booting a guest failed (%u in a row): %s", failures, error_text(e));
                        unsigned wait_s = MIN(POOL_RETRY_MAX_S, 2u * failures);
                        struct timespec ts;
                        realtime_after_usec(wait_s * USEC_PER_SEC, &ts);
                        if (!p->quit)
                                (void) pthread_cond_timedwait(&p->cond, &p->lock, &ts);
                        continue;
                }
                failures = 0;
                log_debug("pool: guest %s ready after %.2f s", pg.guest->name, (now_usec() - t0) / 1e6);
                if (p->quit || p->n_ready >= GUEST_POOL_MAX) {
                        pthread_mutex_unlock(&p->lock);
                        pool_guest_destroy(p, &pg);
                        pthread_mutex_lock(&p->lock);
                        continue;
                }
                p->ready[p->n_ready++] = pg;
                pthread_cond_broadcast(&p->cond);
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

/* Pool domains and run directories of an earlier run go. */
void guest_pool_clean(VmDriver *d, const char *dir) {
        char **names = NULL, **keys = NULL;
        size_t n = 0;
        _cleanup_error_ Error *e = NULL;
        if (vm_driver_list_pool(d, &names, &keys, &n, &e) < 0)
                log_warning("pool: listing pool VMs: %s", error_text(e));
        for (size_t i = 0; i < n; i++) {
                log_info("pool: removing VM %s (key %s) of an earlier run", names[i], keys[i]);
                (void) vm_driver_destroy(d, names[i], NULL);
        }
        vm_names_free(names, n);
        vm_names_free(keys, n);
        (void) rm_rf(dir);
}

int guest_pool_new(VmDriver *d, const GuestPoolConfig *c, GuestPool **ret, Error **err) {
        if (!c->dir || c->dir[0] != '/' || c->size < 1 || c->size > GUEST_POOL_MAX)
                return error_set(err, EINVAL, "pool: needs an absolute directory and a size of 1..%d", GUEST_POOL_MAX);
        guest_pool_clean(d, c->dir);
        /* 0711: each pool guest's QEMU (its own uid) crosses it to its run directory */
        int r = mkdir_p(c->dir, 0711);
        if (r >= 0 && chmod(c->dir, 0711) < 0)
                r = -errno;
        if (r < 0)
                return error_set_errno(err, -r, "pool: create %s", c->dir);
        GuestPool *p = calloc(1, sizeof(*p));
        if (!p)
                return error_oom(err);
        p->driver = d;
        p->size = c->size;
        p->base = c->guest;
        p->base.owner = NULL;
        p->base.pool_adopt = NULL, p->base.pool_adopt_data = NULL;
        p->owner_claim = c->owner_claim;
        p->owner_release = c->owner_release;
        p->owner_data = c->owner_data;
        p->base.nics = NULL, p->base.n_nics = 0;
        p->base.extra_disks = NULL, p->base.n_extra_disks = 0;
        p->base.filesystems = NULL, p->base.n_filesystems = 0;
        p->dir = strdup(c->dir);
        p->base.kernel = c->guest.kernel ? strdup(c->guest.kernel) : NULL;
        p->base.initrd = c->guest.initrd ? strdup(c->guest.initrd) : NULL;
        p->base.extra_cmdline = c->guest.extra_cmdline ? strdup(c->guest.extra_cmdline) : NULL;
        if (!p->dir || !p->base.kernel || (c->guest.initrd && !p->base.initrd) ||
            (c->guest.extra_cmdline && !p->base.extra_cmdline)) {
                guest_pool_free(p);
                return error_oom(err);
        }
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->cond, NULL);
        if ((r = -pthread_create(&p->thread, NULL, pool_main, p)) < 0) {
                free((char *) p->base.kernel);
                free((char *) p->base.initrd);
                free((char *) p->base.extra_cmdline);
                free(p->dir);
                free(p);
                return error_set_errno(err, -r, "pool: start the thread");
        }
        *ret = p;
        return 0;
}

GuestPool *guest_pool_free(GuestPool *p) {
        if (!p)
                return NULL;
        if (p->thread) {
                pthread_mutex_lock(&p->lock);
                p->quit = true;
                pthread_cond_broadcast(&p->cond);
                pthread_mutex_unlock(&p->lock);
                pthread_join(p->thread, NULL);
        }
        for (unsigned i = 0; i < p->n_ready; i++)
                pool_guest_destroy(p, &p->ready[i]);
        if (p->dir)
                (void) rm_rf(p->dir);
        free((char *) p->base.kernel);
        free((char *) p->base.initrd);
        free((char *) p->base.extra_cmdline);
        free(p->dir);
        free(p);
        return NULL;
}

unsigned guest_pool_ready(GuestPool *p) {
        pthread_mutex_lock(&p->lock);
        unsigned n = p->n_ready;
        pthread_mutex_unlock(&p->lock);
        return n;
}

unsigned guest_pool_size(GuestPool *p) {
        return p->size;
}

bool guest_pool_fits(GuestPool *p, const GuestConfig *c) {
        char want[POOL_KEY_MAX], have[POOL_KEY_MAX];
        pool_key(c, want);
        pool_key(&p->base, have);
        return c->n_nics <= 1 && c->n_filesystems == 0 && strcmp(want, have) == 0;
}

/* Pops the oldest ready guest of key; stale ones (another key) go. */
static bool pool_pop(GuestPool *p, const char *key, PoolGuest *ret) {
        PoolGuest stale[GUEST_POOL_MAX];
        unsigned n_stale = 0;
        bool found = false;
        pthread_mutex_lock(&p->lock);
        for (unsigned i = 0; i < p->n_ready;) {
                bool match = strcmp(p->ready[i].key, key) == 0;
                if (match && found) {
                        i++;
                        continue;
                }
                if (match)
                        *ret = p->ready[i], found = true, p->taking++;
                else
                        stale[n_stale++] = p->ready[i];
                memmove(&p->ready[i], &p->ready[i + 1], (p->n_ready - i - 1) * sizeof(PoolGuest));
                p->n_ready--;
        }
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        for (unsigned i = 0; i < n_stale; i++) {
                log_info("pool: guest %s is stale (key %s, now %s): destroyed", stale[i].guest->name, stale[i].key,
                         key);
                pool_guest_destroy(p, &stale[i]);
        }
        return found;
}

/* The taken guest's run directory becomes the container's: QEMU keeps its
 * sockets and console file open, and a later guest_attach() finds the
 * agent's socket under the container's run_dir. */
static int pool_move_dir(PoolGuest *pg, const char *run_dir, Error **err) {
        (void) rm_rf(run_dir);
        if (rename(pg->dir, run_dir) < 0)
                return error_set_errno(err, errno, "pool: move %s to %s", pg->dir, run_dir);
        pg->dir = mfree(pg->dir);
        Guest *g = pg->guest;
        free(g->socket_path);
        free(g->console_path);
        g->console_path = NULL;
        if (asprintf(&g->socket_path, "%s/agent.sock", run_dir) < 0 ||
            asprintf(&g->console_path, "%s/console.log", run_dir) < 0)
                return error_oom(err);
        return 0;
}

static int pool_attach_disks(VmDriver *d, const Guest *g, const GuestConfig *c, Error **err) {
        VmDisk root = {.path = c->root_disk, .format = c->root_format, .serial = GUEST_ROOT_SERIAL};
        int r = vm_driver_attach_disk(d, g->name, &root, 0, err);
        for (size_t i = 0; r >= 0 && i < c->n_extra_disks; i++)
                r = vm_driver_attach_disk(d, g->name, &c->extra_disks[i], i + 1, err);
        for (size_t i = 0; r >= 0 && i < c->n_nics; i++)
                r = vm_driver_attach_nic(d, g->name, &c->nics[i], err);
        return r;
}

int guest_pool_take(GuestPool *p, const GuestConfig *c, Guest **ret, Error **err) {
        if (!guest_pool_fits(p, c))
                return error_set(err, EAGAIN, "pool: the request does not fit the pool's guests");
        if (c->n_extra_disks + c->n_nics > VM_POOL_HOTPLUG_PORTS - 1)
                return error_set(err, EAGAIN, "pool: %zu extra disks, at most %d hot-plugged", c->n_extra_disks,
                                 VM_POOL_HOTPLUG_PORTS - 1);
        char key[POOL_KEY_MAX];
        pool_key(c, key);
        PoolGuest pg;
        if (!pool_pop(p, key, &pg))
                return error_set(err, EAGAIN, "pool: no guest ready");
        uint64_t t0 = now_usec(), t_adopt = 0, t_attach = 0;
        Guest *g = pg.guest;
        const char *macs[1] = {c->n_nics ? c->nics[0].mac : NULL};
        AgentActivate act = {.root_serial = GUEST_ROOT_SERIAL, .hostname = c->hostname ? c->hostname : c->name,
                             .wait_macs = macs, .n_wait_macs = c->n_nics};
        int timeout_ms = c->boot_timeout_ms ? c->boot_timeout_ms : 60000;
        int r = vm_driver_resume(p->driver, g->name, err);
        if (r >= 0)
                r = vm_driver_adopt(p->driver, g->name, c->container_id ? c->container_id : c->name, err);
        if (r >= 0 && c->pool_adopt && (r = c->pool_adopt(c->pool_adopt_data, g->name,
                                                          pg.has_owner ? &pg.owner : NULL, err)) >= 0)
                pg.has_owner = false; /* the claim is the container's now */
        if (r >= 0)
                r = pool_move_dir(&pg, c->run_dir, err);
        t_adopt = now_usec();
        if (r >= 0)
                r = pool_attach_disks(p->driver, g, c, err);
        t_attach = now_usec();
        if (r >= 0)
                r = agent_client_activate(g->agent, &act, MIN(timeout_ms, 30000), err);
        pthread_mutex_lock(&p->lock);
        p->taking--;
        p->last_take_usec = now_usec();
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        if (r < 0) {
                _cleanup_free_ char *tail = guest_console_tail(g, 1500);
                log_warning("pool: guest %s failed to start %s; console:\n%s", g->name, c->name, tail);
                pool_guest_destroy(p, &pg);
                return error_prefix(err, "pool guest for '%s'", c->name);
        }
        g->create_usec = 0;
        g->boot_usec = now_usec() - t0;
        log_debug("pool: guest %s is %s's after %.3f s (resume + adopt %.0f ms, hot-plug %.0f ms, activate %.0f ms)",
                  g->name, c->name, g->boot_usec / 1e6, (t_adopt - t0) / 1e3, (t_attach - t_adopt) / 1e3,
                  (now_usec() - t_attach) / 1e3);
        *ret = g;
        return 0;
}
