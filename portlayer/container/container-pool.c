/* container-pool.c: a container start from the warm pool (docs/templates.md).
 *
 * The pool guest keeps its domain name ("plp-<16 hex>", libvirt renames only
 * stopped domains), so the container records it: c->domain is the pool
 * guest's while it runs from one and goes back to "pl-<16 hex of id>" for a
 * cold start. Its run directory is moved to the container's own, so recovery
 * finds the agent's socket where it always does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/log.h"
#include "container-internal.h"
#include "container-uid.h"

typedef struct Adopt {
        ContainerHost *h;
        Container *c;
        const GuestConfig *gc;
} Adopt;

static int adopt(void *userdata, const char *pool_name, const VmOwner *owner, Error **err) {
        Adopt *a = userdata;
        return container_owner_adopt(a->h, a->c, pool_name, owner, a->gc->extra_disks, a->gc->n_extra_disks, err);
}

int container_start_from_pool(ContainerHost *h, Container *c, const GuestConfig *gc, Guest **ret) {
        pthread_mutex_lock(&h->lock);
        bool cold = !h->pool || json_is_true(json_object_get(c->config, "cold_start"));
        pthread_mutex_unlock(&h->lock);
        _cleanup_free_ char *domain = NULL;
        int r = 0;
        if (!cold) {
                _cleanup_error_ Error *e = NULL;
                Adopt a = {h, c, gc};
                GuestConfig take = *gc;
                take.pool_adopt = adopt;
                take.pool_adopt_data = &a;
                r = guest_pool_take(h->pool, &take, ret, &e);
                if (r == -EAGAIN)
                        log_info("container %s (%.12s): a cold start: %s", c->name, c->id, error_text(e));
                else if (r < 0)
                        log_warning("container %s (%.12s): the pool failed, starting cold: %s", c->name, c->id,
                                    error_text(e));
        }
        if (cold || r < 0) {
                if (asprintf(&domain, "pl-%.16s", c->id) < 0)
                        return -ENOMEM;
        } else if (!(domain = strdup((*ret)->name))) {
                (void) guest_destroy(*ret, NULL);
                *ret = guest_free(*ret);
                return -ENOMEM;
        }
        pthread_mutex_lock(&h->lock);
        free(c->domain);
        c->domain = TAKE_PTR(domain);
        c->start_path = cold || r < 0 ? "cold" : "template";
        pthread_mutex_unlock(&h->lock);
        return cold || r < 0 ? 0 : 1;
}

int container_pool_open(ContainerHost *h, unsigned size, Error **err) {
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s/pool", h->state_dir) < 0)
                return error_oom(err);
        /* claims of an earlier run's pool guests, listed before this pool claims any */
        UidClaim *old = NULL;
        size_t n_old = 0;
        _cleanup_error_ Error *le = NULL;
        if (container_owner_pool_claims(h, &old, &n_old, &le) < 0)
                log_warning("pool: %s", error_text(le));
        if (size == 0) {
                guest_pool_clean(h->driver, dir);
                container_owner_pool_claims_release(h, old, n_old);
                free(old);
                return 0;
        }
        GuestPoolConfig pc = {
                .dir = dir, .size = size,
                .owner_claim = h->uids ? container_owner_pool_claim : NULL,
                .owner_release = h->uids ? container_owner_pool_release : NULL,
                .owner_data = h,
                .guest = {.kernel = h->kernel, .initrd = h->initrd, .accel = h->accel,
                          .memory_mib = CONTAINER_MEMORY_MB_DEFAULT, .vcpus = 1,
                          .boot_timeout_ms = h->boot_timeout_ms, .extra_cmdline = h->extra_cmdline,
                          .vsock = strcmp(h->transport, "vsock") == 0, .tb_cache_mib = h->tb_cache_mib,
                          .free_page_reporting = h->free_page_reporting},
        };
        int r = guest_pool_new(h->driver, &pc, &h->pool, err);
        /* guest_pool_new() destroyed the earlier run's pool domains first */
        container_owner_pool_claims_release(h, old, n_old);
        free(old);
        if (r < 0)
                return error_prefix(err, "warm pool");
        log_info("warm pool: keeping %u guests ready in %s", size, dir);
        return 0;
}

void container_host_pool_state(ContainerHost *h, unsigned *ret_size, unsigned *ret_ready) {
        /* h->pool is set once, after recovery, and freed with the host */
        pthread_mutex_lock(&h->lock);
        GuestPool *pool = h->pool;
        pthread_mutex_unlock(&h->lock);
        *ret_size = pool ? guest_pool_size(pool) : 0;
        *ret_ready = pool ? guest_pool_ready(pool) : 0;
}
