/* container-mounts.c: a container's volumes and bind mounts: the "mounts"
 * field of its configuration, the users of its volumes, and what a start
 * gives the VM and the agent.
 *
 * A mount is {"volume": name, "target": path[, "read_only": bool]} (a named
 * volume of plvolume, an ext4 disk attached as an extra virtio-blk disk with
 * serial "plv-" + the volume's id) or {"source": host dir, "target": path[,
 * "read_only": bool]} (a bind mount shared through virtio-fs, tags "plfs0"
 * ...). The agent mounts them in the configuration's order after the boot and
 * before pending copy-ins, so a copy into a mounted path lands on the mount.
 *
 * A volume is one ext4 filesystem on a block device: two VMs mounting it at
 * once would corrupt it (neither kernel knows of the other's cache). So the
 * volumes a container is configured with are recorded as its users (removal
 * answers 409), and a start is refused while another container that uses
 * one of its volumes runs (409 naming it). Sharing live data between running
 * containers is what bind mounts are for. */
#include "container-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/base/log.h"
#include "common/json/json-util.h"

/* Absolute, no empty, "." or ".." component, no trailing "/", no control
 * character, and not "/" itself. */
static bool path_is_clean(const char *p) {
        if (!p || p[0] != '/' || !p[1] || strlen(p) > CONTAINER_STRING_MAX)
                return false;
        for (const char *s = p; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return false;
        for (const char *s = p + 1;;) {
                size_t n = strcspn(s, "/");
                if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                        return false;
                if (!s[n])
                        return true;
                s += n + 1;
        }
}

static bool mount_is_volume(const json_t *m) {
        return json_object_get(m, "volume") != NULL;
}

static const char *mount_str(const json_t *m, const char *key) {
        return json_string_value(json_object_get(m, key));
}

static bool mount_read_only(const json_t *m) {
        return json_is_true(json_object_get(m, "read_only"));
}

/* One entry's fields and types. */
static int check_entry(size_t i, const json_t *m, Error **err) {
        if (!json_is_object(m))
                return error_set(err, EINVAL, "mounts[%zu]: must be an object", i);
        const char *key;
        json_t *v;
        json_object_foreach((json_t *) m, key, v) {
                bool is_str = strcmp(key, "volume") == 0 || strcmp(key, "source") == 0 || strcmp(key, "target") == 0;
                if (!is_str && strcmp(key, "read_only") != 0)
                        return error_set(err, EINVAL, "mounts[%zu]: unknown field '%.64s'", i, key);
                if (is_str && (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)))
                        return error_set(err, EINVAL, "mounts[%zu].%s: must be a string", i, key);
                if (!is_str && !json_is_boolean(v))
                        return error_set(err, EINVAL, "mounts[%zu].read_only: must be true or false", i);
        }
        bool vol = json_object_get(m, "volume"), src = json_object_get(m, "source");
        if (vol == src)
                return error_set(err, EINVAL, "mounts[%zu]: give either \"volume\" (a named volume) or \"source\" (a host directory)", i);
        if (vol && !volume_name_is_valid(mount_str(m, "volume")))
                return error_set(err, EINVAL, "mounts[%zu].volume: bad volume name '%.80s': 1-%d of [a-zA-Z0-9_.-], starting with a letter or digit",
                                 i, mount_str(m, "volume"), VOLUME_NAME_MAX);
        if (src && !path_is_clean(mount_str(m, "source")))
                return error_set(err, EINVAL, "mounts[%zu].source: '%.200s' is not an absolute host path (no '.', '..', '//' or trailing '/')",
                                 i, mount_str(m, "source"));
        if (!path_is_clean(mount_str(m, "target")))
                return error_set(err, EINVAL, "mounts[%zu].target: must be an absolute path other than / (no '.', '..', '//' or trailing '/')", i);
        return 0;
}

int container_mounts_check(const json_t *mounts, Error **err) {
        if (!json_is_array(mounts))
                return error_set(err, EINVAL, "mounts: must be an array of {\"volume\"|\"source\", \"target\", \"read_only\"}");
        size_t i, n_vol = 0, n_bind = 0;
        json_t *m;
        json_array_foreach(mounts, i, m) {
                int r = check_entry(i, m, err);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < i; k++) {
                        const json_t *o = json_array_get(mounts, k);
                        if (strcmp(mount_str(o, "target"), mount_str(m, "target")) == 0)
                                return error_set(err, EINVAL, "mounts[%zu].target: %s is the target of mounts[%zu] too", i,
                                                 mount_str(m, "target"), k);
                        if (mount_is_volume(m) && mount_is_volume(o) &&
                            strcmp(mount_str(o, "volume"), mount_str(m, "volume")) == 0)
                                return error_set(err, EINVAL, "mounts[%zu].volume: volume %s is mounted by mounts[%zu] already", i,
                                                 mount_str(m, "volume"), k);
                }
                if (mount_is_volume(m) ? ++n_vol > CONTAINER_VOLUMES_MAX : ++n_bind > CONTAINER_BINDS_MAX)
                        return error_set(err, EINVAL, "mounts: at most %d volumes and %d bind mounts per container",
                                         CONTAINER_VOLUMES_MAX, CONTAINER_BINDS_MAX);
        }
        return 0;
}

/* Every bind source is an existing directory on the host now. */
static int check_sources(const json_t *mounts, Error **err) {
        size_t i;
        json_t *m;
        json_array_foreach(mounts, i, m) {
                if (mount_is_volume(m))
                        continue;
                struct stat st;
                const char *src = mount_str(m, "source");
                if (stat(src, &st) < 0)
                        return error_set(err, EINVAL, "mounts[%zu].source: %s: %s", i, src, strerror(errno));
                if (!S_ISDIR(st.st_mode))
                        return error_set(err, EINVAL, "mounts[%zu].source: %s is not a directory", i, src);
        }
        return 0;
}

int container_handle_set_mounts(ContainerHost *h, const char *handle, const json_t *mounts, Error **err) {
        int r = container_mounts_check(mounts, err);
        if (r >= 0)
                r = check_sources(mounts, err);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *fields = json_pack("{s:O}", "mounts", mounts);
        return fields ? container_handle_update(h, handle, fields, err) : error_oom(err);
}

static bool uses_volume(const json_t *config, const char *volume) {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(config, "mounts"), i, m)
                if (mount_is_volume(m) && strcmp(mount_str(m, "volume"), volume) == 0)
                        return true;
        return false;
}

void container_mounts_release(ContainerHost *h, const char *id, const json_t *keep, const json_t *keep2,
                              const json_t *drop) {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(drop, "mounts"), i, m) {
                _cleanup_error_ Error *e = NULL;
                if (!mount_is_volume(m) || uses_volume(keep, mount_str(m, "volume")) ||
                    uses_volume(keep2, mount_str(m, "volume")) || !h->volumes)
                        continue;
                if (volume_release(h->volumes, mount_str(m, "volume"), id, &e) < 0)
                        log_warning("container %.12s: %s", id, error_text(e));
        }
}

int container_mounts_acquire(ContainerHost *h, const char *id, const char *name, const json_t *config,
                             const json_t *old_config, Error **err) {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(config, "mounts"), i, m) {
                if (!mount_is_volume(m))
                        continue;
                int r = h->volumes ? volume_acquire(h->volumes, mount_str(m, "volume"), id, name, true, NULL, err)
                                   : error_set(err, EOPNOTSUPP, "this host has no volume store");
                if (r < 0) {
                        /* what this call added goes again */
                        _cleanup_json_ json_t *done = json_pack("{s:o}", "mounts", json_array());
                        for (size_t k = 0; done && k < i; k++)
                                (void) json_array_append(json_object_get(done, "mounts"),
                                                         json_array_get(json_object_get(config, "mounts"), k));
                        container_mounts_release(h, id, old_config, NULL, done);
                        return r;
                }
        }
        return 0;
}

/* The configuration a container holds its volumes with while its VM lives. */
static const json_t *active_config_locked(const Container *o) {
        bool active = o->rt || o->state == CONTAINER_STARTING || o->state == CONTAINER_RUNNING ||
                      o->state == CONTAINER_PAUSED || o->state == CONTAINER_STOPPING;
        if (!active || o->removed)
                return NULL;
        return o->started_config ? o->started_config : o->config;
}

int container_mounts_claim_locked(ContainerHost *h, const Container *c, Error **err) {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(c->config, "mounts"), i, m) {
                if (!mount_is_volume(m))
                        continue;
                for (size_t k = 0; k < h->n_containers; k++) {
                        const Container *o = h->containers[k];
                        const json_t *oc = o == c ? NULL : active_config_locked(o);
                        if (oc && uses_volume(oc, mount_str(m, "volume")))
                                return error_set(err, EBUSY,
                                                 "volume %s is mounted by container %s, which is %s: a volume is an ext4 disk that one VM at a time may mount (stop %s first, or share a host directory with a bind mount)",
                                                 mount_str(m, "volume"), o->name, container_state_to_string(o->state),
                                                 o->name);
                }
        }
        return 0;
}

void container_mounts_clear(ContainerMounts *cm) {
        for (size_t i = 0; i < cm->n_disks; i++)
                volume_disk_clear(&cm->volumes[i]);
        json_decref(cm->config);
        *cm = (ContainerMounts){0};
}

static int prepare_one(ContainerHost *h, ContainerMounts *cm, const json_t *m, Error **err) {
        AgentMount *am = &cm->mounts[cm->n_mounts];
        *am = (AgentMount){.target = mount_str(m, "target"), .read_only = mount_read_only(m)};
        if (mount_is_volume(m)) {
                VolumeDisk *vd = &cm->volumes[cm->n_disks];
                int r = h->volumes ? volume_get_disk(h->volumes, mount_str(m, "volume"), vd, err)
                                   : error_set(err, EOPNOTSUPP, "this host has no volume store");
                if (r < 0)
                        return r;
                cm->disks[cm->n_disks++] = (VmDisk){.path = vd->path, .format = VM_DISK_RAW, .serial = vd->serial,
                                                    .read_only = am->read_only};
                am->kind = AGENT_MOUNT_BLOCK;
                am->source = vd->serial;
        } else {
                char *tag = cm->tags[cm->n_filesystems];
                snprintf(tag, sizeof cm->tags[0], "plfs%zu", cm->n_filesystems);
                cm->filesystems[cm->n_filesystems++] = (VmFilesystem){.source = mount_str(m, "source"), .tag = tag,
                                                                      .read_only = am->read_only};
                am->kind = AGENT_MOUNT_VIRTIOFS;
                am->source = tag;
        }
        cm->n_mounts++;
        return 0;
}

int container_mounts_prepare(ContainerHost *h, Container *c, ContainerMounts *ret, Error **err) {
        *ret = (ContainerMounts){0};
        pthread_mutex_lock(&h->lock);
        ret->config = json_incref(c->config);
        pthread_mutex_unlock(&h->lock);
        const json_t *mounts = json_object_get(ret->config, "mounts");
        /* A record's mounts passed container_mounts_check(); the limits hold. */
        int r = check_sources(mounts, err);
        size_t i;
        json_t *m;
        json_array_foreach(mounts, i, m) {
                if (r < 0)
                        break;
                r = prepare_one(h, ret, m, err);
        }
        if (r < 0) {
                container_mounts_clear(ret);
                return error_prefix(err, "mounts");
        }
        return 0;
}

json_t *container_mounts_to_json(const json_t *config) {
        json_t *a = json_array();
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(config, "mounts"), i, m) {
                bool vol = mount_is_volume(m);
                if (json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:b}", "type", vol ? "volume" : "bind",
                                                       "source", mount_str(m, vol ? "volume" : "source"), "target",
                                                       mount_str(m, "target"), "read_only", mount_read_only(m))) < 0)
                        return json_decref(a), NULL;
        }
        return a;
}

static bool keep_user(void *arg, const char *volume, const char *container_id) {
        ContainerHost *h = arg;
        for (size_t i = 0; i < h->n_containers; i++) {
                const Container *c = h->containers[i];
                if (!c->removed && strcmp(c->id, container_id) == 0) {
                        /* a running VM keeps what it was started with */
                        const json_t *live = active_config_locked(c);
                        return uses_volume(c->config, volume) || (live && uses_volume(live, volume));
                }
        }
        return false;
}

int container_mounts_recover(ContainerHost *h, Error **err) {
        if (!h->volumes)
                return 0;
        pthread_mutex_lock(&h->lock);
        /* A user the records do not back goes; one they name but the volume
         * lost (a record restored by hand) comes back. */
        int r = volume_prune_users(h->volumes, keep_user, h, err);
        for (size_t i = 0; i < h->n_containers; i++) {
                const Container *c = h->containers[i];
                size_t k;
                json_t *m;
                json_array_foreach(json_object_get(c->config, "mounts"), k, m) {
                        _cleanup_error_ Error *e = NULL;
                        if (mount_is_volume(m) &&
                            volume_acquire(h->volumes, mount_str(m, "volume"), c->id, c->name, false, NULL, &e) < 0)
                                log_warning("container %s: %s", c->name, error_text(e));
                }
        }
        pthread_mutex_unlock(&h->lock);
        return r;
}
