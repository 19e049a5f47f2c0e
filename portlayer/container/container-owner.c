/* container-owner.c: who a container's QEMU runs as, and which files that
 * identity owns (docs/security.md).
 *
 * A container holds a uid of the daemon's range (container-uid.c) from its
 * creation until it is destroyed; its QEMU runs as uid:uid (the domain's DAC
 * label, see vm-xml.c) with no supplementary group. That uid owns the
 * container's disk overlay (0600) and its run directory (0700: the agent
 * socket and the console log, given by plguest). Everything else under the
 * state directory stays root's: the record, main.log and pending archives
 * (0600 in a 0711 directory that QEMU may cross but not list), the image
 * store (read-only to QEMU users) and the claims themselves. */
#include "container-internal.h"
#include "container-uid.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/log.h"

int container_uid_range_parse(const char *range, uint32_t *ret_first, uint32_t *ret_count) {
        uint32_t first, count;
        int r = uid_range_parse(range, &first, &count);
        if (r < 0)
                return r;
        if (ret_first)
                *ret_first = first;
        if (ret_count)
                *ret_count = count;
        return 0;
}

int container_uid_range_check(uint32_t first, uint32_t count, Error **err) {
        return uid_range_check(first, count, NULL, NULL, err);
}

const char *container_host_qemu_user(ContainerHost *h) {
        return h->qemu_user;
}

int container_owner_open(ContainerHost *h, const ContainerHostConfig *cfg, Error **err) {
        if (cfg->qemu_user ? !(h->qemu_user = strdup(cfg->qemu_user))
                           : asprintf(&h->qemu_user, "%s", cfg->uid_count ? "a uid per container" : "root") < 0)
                return error_oom(err);
        if (cfg->uid_count == 0) {
                log_warning("QEMU runs as root for every container: no uid range (--allow-root-qemu)");
                return 0;
        }
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s/uids", h->state_dir) < 0)
                return error_oom(err);
        int r = uid_pool_open(dir, cfg->uid_first, cfg->uid_count, NULL, NULL, &h->uids, err);
        if (r < 0)
                return r;
        log_info("container VMs run as uids %u-%u, one each", cfg->uid_first, cfg->uid_first + cfg->uid_count - 1);
        return 0;
}

int container_owner_give_disk(ContainerHost *h, const Container *c, Error **err) {
        if (!c->uid)
                return 0;
        _cleanup_close_ int fd = open(c->disk, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fchown(fd, c->uid, c->uid) < 0 || fchmod(fd, 0600) < 0)
                return error_set_errno(err, errno, "container %.12s: give %s to uid %u", c->id, c->disk, c->uid);
        return 0;
}

int container_owner_claim(ContainerHost *h, Container *c, Error **err) {
        if (!h->uids || c->uid)
                return 0;
        uint32_t uid;
        int r = uid_pool_claim(h->uids, c->id, &uid, err);
        if (r < 0)
                return error_prefix(err, "container %.12s", c->id);
        pthread_mutex_lock(&h->lock);
        c->uid = uid;
        pthread_mutex_unlock(&h->lock);
        if (access(c->disk, F_OK) == 0)
                return container_owner_give_disk(h, c, err);
        return 0;
}

/* Lets QEMU users cross dir (adds o+x; the directory lists nothing to
 * them without o+r). Only below the state directory. */
static int make_crossable(ContainerHost *h, const char *dir) {
        struct stat st;
        size_t n = strlen(h->state_dir);
        if (strncmp(dir, h->state_dir, n) != 0 || dir[n] != '/')
                return 0;
        if (stat(dir, &st) < 0)
                return -errno;
        if ((st.st_mode & 0011) == 0011)
                return 0;
        return chmod(dir, (st.st_mode & 07777) | 0011) < 0 ? -errno : 0;
}

int container_owner_give_volumes(ContainerHost *h, const Container *c, const VmDisk *disks, size_t n_disks,
                                 Error **err) {
        for (size_t i = 0; c->uid && i < n_disks; i++) {
                _cleanup_free_ char *dir = strdup(disks[i].path);
                char *slash = dir ? strrchr(dir, '/') : NULL;
                if (!slash)
                        return error_oom(err);
                *slash = 0; /* <state>/volumes/<name> */
                int r = make_crossable(h, dir);
                if (r >= 0 && (slash = strrchr(dir, '/'))) {
                        *slash = 0; /* <state>/volumes */
                        r = make_crossable(h, dir);
                }
                _cleanup_close_ int fd = r < 0 ? -1 : open(disks[i].path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (r >= 0 && (fd < 0 || fchown(fd, c->uid, c->uid) < 0 || fchmod(fd, 0600) < 0))
                        r = -errno;
                if (r < 0)
                        return error_set_errno(err, -r, "container %.12s: give %s to uid %u", c->id, disks[i].path,
                                               c->uid);
        }
        return 0;
}

/* Every volume file uid still owns goes back to root (0600): the uid may
 * go to another container next. */
static void give_back_volumes(ContainerHost *h, uint32_t uid) {
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s/volumes", h->state_dir) < 0)
                return;
        DIR *d = opendir(dir);
        for (struct dirent *de; d && (de = readdir(d));) {
                _cleanup_free_ char *path = NULL;
                struct stat st;
                if (de->d_name[0] == '.' || asprintf(&path, "%s/%s/disk.img", dir, de->d_name) < 0)
                        continue;
                if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == uid &&
                    (lchown(path, 0, 0) < 0 || chmod(path, 0600) < 0))
                        log_warning("give %s back to root: %m", path);
        }
        if (d)
                closedir(d);
}

/* Releases uid of owner once no process runs as it (its QEMU gets up to
 * 15 s to end), after giving back the volumes it still owns. */
static int release_when_unused(ContainerHost *h, uint32_t uid, const char *owner, Error **err) {
        for (int i = 0; i < 150 && uid_in_use(NULL, uid) > 0; i++)
                usleep(100 * 1000);
        if (uid_in_use(NULL, uid) == 0)
                give_back_volumes(h, uid);
        return uid_pool_release(h->uids, uid, owner, err);
}

int container_owner_pool_claim(void *userdata, const char *name, VmOwner *ret, Error **err) {
        ContainerHost *h = userdata;
        uint32_t uid;
        int r = uid_pool_claim(h->uids, name, &uid, err);
        if (r < 0)
                return error_prefix(err, "pool guest %s", name);
        *ret = (VmOwner){.uid = uid, .gid = uid};
        return 0;
}

void container_owner_pool_release(void *userdata, const char *name, const VmOwner *owner) {
        ContainerHost *h = userdata;
        _cleanup_error_ Error *e = NULL;
        if (release_when_unused(h, owner->uid, name, &e) < 0)
                log_warning("pool guest %s: uid %u stays claimed until the next start: %s", name, owner->uid,
                            error_text(e));
}

int container_owner_adopt(ContainerHost *h, Container *c, const char *pool_name, const VmOwner *owner,
                          const VmDisk *volumes, size_t n_volumes, Error **err) {
        if (!h->uids || !owner)
                return 0;
        int r = uid_pool_transfer(h->uids, owner->uid, pool_name, c->id, err);
        if (r < 0)
                return error_prefix(err, "container %.12s", c->id);
        pthread_mutex_lock(&h->lock);
        uint32_t old = c->uid;
        c->uid = owner->uid;
        _cleanup_error_ Error *se = NULL;
        if (!c->removed && container_save(h, c, &se) < 0)
                log_warning("%s", error_text(se));
        pthread_mutex_unlock(&h->lock);
        /* its old uid runs nothing now (the start destroyed its last VM);
         * the volumes it was given go back to root first */
        _cleanup_error_ Error *re = NULL;
        if (old && old != owner->uid && release_when_unused(h, old, c->id, &re) < 0)
                log_warning("container %.12s: uid %u stays claimed until the next start: %s", c->id, old,
                            error_text(re));
        r = container_owner_give_disk(h, c, err);
        if (r >= 0)
                r = container_owner_give_volumes(h, c, volumes, n_volumes, err);
        return r;
}

/* Pool guests' claims (owner "plp-..."), listed before the pool of this
 * run claims any: after guest_pool_new()/guest_pool_clean() destroyed the
 * old pool's domains, release them. */
int container_owner_pool_claims(ContainerHost *h, UidClaim **ret, size_t *ret_n, Error **err) {
        *ret = NULL;
        *ret_n = 0;
        if (!h->uids)
                return 0;
        UidClaim *claims = NULL;
        size_t n = 0, k = 0;
        int r = uid_pool_list(h->uids, &claims, &n, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (strncmp(claims[i].owner, CONTAINER_POOL_PREFIX, strlen(CONTAINER_POOL_PREFIX)) == 0)
                        claims[k++] = claims[i];
        *ret = claims;
        *ret_n = k;
        return 0;
}

void container_owner_pool_claims_release(ContainerHost *h, const UidClaim *claims, size_t n) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_error_ Error *e = NULL;
                if (release_when_unused(h, claims[i].uid, claims[i].owner, &e) < 0)
                        log_warning("uid %u of the earlier pool guest %s stays claimed: %s", claims[i].uid,
                                    claims[i].owner, error_text(e));
                else
                        log_info("uid %u released: pool guest %s of an earlier run is gone", claims[i].uid,
                                 claims[i].owner);
        }
}

/* The removed container's uid goes. A second claim naming it (a pool take
 * handed one over and the daemon was killed before the record said so) is
 * container_owner_reconcile()'s at the next start: the record's uid does
 * not match it. */
void container_owner_release(ContainerHost *h, Container *c) {
        _cleanup_error_ Error *e = NULL;
        if (h->uids && c->uid && release_when_unused(h, c->uid, c->id, &e) < 0)
                log_warning("container %.12s: uid %u stays claimed until the next start: %s", c->id, c->uid,
                            error_text(e));
}

static bool owner_known_locked(ContainerHost *h, const UidClaim *claim) {
        for (size_t i = 0; i < h->n_containers; i++)
                if (h->containers[i]->uid == claim->uid && strcmp(h->containers[i]->id, claim->owner) == 0)
                        return true;
        return false;
}

void container_owner_reconcile(ContainerHost *h) {
        if (!h->uids)
                return;
        pthread_mutex_lock(&h->lock);
        size_t n = h->n_containers;
        Container **list = calloc(n ? n : 1, sizeof(*list));
        for (size_t i = 0; list && i < n; i++)
                list[i] = container_ref(h->containers[i]);
        pthread_mutex_unlock(&h->lock);
        for (size_t i = 0; list && i < n; i++) {
                Container *c = list[i];
                _cleanup_error_ Error *e = NULL;
                if (c->uid && uid_pool_reclaim(h->uids, c->uid, c->id, &e) < 0) {
                        /* another container's uid, or one outside a changed range: a new one */
                        log_warning("container %.12s: %s; it gets a new uid", c->id, error_text(e));
                        e = error_free(e);
                        c->uid = 0;
                }
                if (container_owner_claim(h, c, &e) < 0)
                        log_warning("%s", error_text(e));
                pthread_mutex_lock(&h->lock);
                if (!c->removed && container_save(h, c, &e) < 0)
                        log_warning("%s", error_text(e));
                pthread_mutex_unlock(&h->lock);
                container_unref(c);
        }
        free(list);

        UidClaim *claims = NULL;
        size_t n_claims = 0;
        _cleanup_error_ Error *e = NULL;
        if (uid_pool_list(h->uids, &claims, &n_claims, &e) < 0) {
                log_warning("%s", error_text(e));
                return;
        }
        for (size_t i = 0; i < n_claims; i++) {
                pthread_mutex_lock(&h->lock);
                /* pool guests' claims are container_pool_open()'s */
                bool known = owner_known_locked(h, &claims[i]) ||
                             strncmp(claims[i].owner, CONTAINER_POOL_PREFIX, strlen(CONTAINER_POOL_PREFIX)) == 0;
                pthread_mutex_unlock(&h->lock);
                if (known)
                        continue;
                _cleanup_error_ Error *re = NULL;
                if (release_when_unused(h, claims[i].uid, claims[i].owner, &re) < 0)
                        log_warning("uid %u of the removed container %.12s stays claimed: %s", claims[i].uid,
                                    claims[i].owner, error_text(re));
                else
                        log_info("uid %u released: container %.12s is gone", claims[i].uid, claims[i].owner);
        }
        free(claims);
}
