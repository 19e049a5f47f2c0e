/* volume.h: named volumes of the port layer (library plvolume).
 *
 * A volume is an ext4 filesystem in a sparse raw image, made with libext2fs
 * (plext4), that a container's VM gets as an extra virtio-blk disk and its
 * agent mounts at the requested path. Its data outlives every container that
 * uses it, a daemon restart and a host reboot: everything lives under
 * <state>/volumes/<name>/ (volume.json, the record, written atomically; and
 * disk.img), never in /run or a tmpfs.
 *
 * A fresh volume's root directory is owned by 0:0 with mode 0755, as
 * Docker's fresh named volume is: a container running as root writes it at
 * once; one running as another user needs a chown from a root process first
 * (a Docker volume would be copied from the image's directory and take its
 * owner; ours starts empty).
 *
 * Users: the containers configured with a volume are recorded in its record
 * (volume_acquire when a container's configuration names it, volume_release
 * when the container goes), so removing it answers -EBUSY naming one of them,
 * also after a restart. volume_prune_users() reconciles the list with the
 * containers that really exist after a crash between the two records.
 *
 * Creation order: directory, then disk.img (built beside it and renamed), then
 * the record. volume_store_open() removes a directory without a record (a
 * create killed half-way) and the temporary files; removal renames the
 * directory to a hidden trash name first, so a killed remove is finished at
 * the next open. Thread-safe: one mutex per store serializes every call (a
 * create formats an image of a few MiB of metadata, milliseconds). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "common/base/error.h"
#include "common/base/macro.h"

#define VOLUME_NAME_MAX 64
#define VOLUME_ID_HEX 16                        /* the disk serial is "plv-" + id: 20 bytes */
#define VOLUME_SERIAL_PREFIX "plv-"
#define VOLUME_SIZE_DEFAULT (1ull << 30)
#define VOLUME_SIZE_MIN (32ull << 20)           /* plext4's smallest image */
#define VOLUME_SIZE_MAX (1ull << 40)
#define VOLUME_USERS_MAX 4096

typedef struct VolumeStore VolumeStore;

/* What a container needs to attach a volume. */
typedef struct VolumeDisk {
        char name[VOLUME_NAME_MAX + 1];
        char serial[sizeof(VOLUME_SERIAL_PREFIX) + VOLUME_ID_HEX]; /* "plv-" + 16 hex */
        char *path;                                                 /* <dir>/disk.img, absolute */
} VolumeDisk;
void volume_disk_clear(VolumeDisk *d);

/* [a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}, as Docker's volume names. */
bool volume_name_is_valid(const char *name);

/* Opens (creating it when missing) <state_dir>/volumes, finishing what a
 * crash left: half-created volumes and half-removed ones are deleted,
 * temporary files go. state_dir must be absolute. */
int volume_store_open(const char *state_dir, VolumeStore **ret, Error **err);
/* NULL-safe; returns NULL. */
VolumeStore *volume_store_free(VolumeStore *vs);
DEFINE_TRIVIAL_CLEANUP_FUNC(VolumeStore *, volume_store_free);

/* Creates volume name of size_bytes (0: VOLUME_SIZE_DEFAULT; rounded down to
 * 4 KiB; VOLUME_SIZE_MIN..VOLUME_SIZE_MAX). *ret (may be NULL) gets it as
 * volume_inspect() renders it. -EINVAL (name, size), -EEXIST, -ENOSPC, -EIO. */
int volume_create(VolumeStore *vs, const char *name, uint64_t size_bytes, json_t **ret, Error **err);

/* {"name", "size", "created_at" (RFC 3339), "users" [{"id", "name"}], "path"
 * (the host file of the disk)} as a new reference. -ENOENT. */
int volume_inspect(VolumeStore *vs, const char *name, json_t **ret, Error **err);

/* Every volume as volume_inspect() renders it, by name. A record that does
 * not load is logged and left out. */
int volume_list(VolumeStore *vs, json_t **ret, Error **err);

/* Removes the volume and its data. -ENOENT; -EBUSY while a container uses it
 * ("volume data is in use by container web (0123456789ab)"). */
int volume_remove(VolumeStore *vs, const char *name, Error **err);

/* Records container container_id (named container_name) as a user of volume
 * name, creating the volume (default size) first when it does not exist and
 * create is set (Docker's `-v name:/path` does the same). Idempotent. *ret
 * (may be NULL) gets what the container needs to attach it. -ENOENT without
 * create, -EINVAL for a bad name, -E2BIG past VOLUME_USERS_MAX users. */
int volume_acquire(VolumeStore *vs, const char *name, const char *container_id, const char *container_name,
                   bool create, VolumeDisk *ret, Error **err);

/* Drops container_id from the users of volume name; the data stays. A volume
 * or user that is not there is 0. */
int volume_release(VolumeStore *vs, const char *name, const char *container_id, Error **err);

/* What a user needs to attach volume name. -ENOENT. */
int volume_get_disk(VolumeStore *vs, const char *name, VolumeDisk *ret, Error **err);

/* Drops every user for which keep(arg, volume, container_id) says false,
 * over every volume: the reconciliation after a restart. Returns 0 or the
 * first error (the rest is still done). */
int volume_prune_users(VolumeStore *vs, bool (*keep)(void *arg, const char *volume, const char *container_id),
                       void *arg, Error **err);
