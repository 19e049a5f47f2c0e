/* daemon-internal.h: the daemon's privilege decisions (daemon-privs.c),
 * shared by the files of pldaemon only. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "daemon.h"

/* Decides who QEMU runs as: a uid per container from cfg's range (*ret_first,
 * *ret_count) or, when that is impossible and cfg allows it, root (count 0,
 * logged). -EPERM, saying why, when it would be root without
 * --allow-root-qemu. *ret_summary: one line for logs and GET /version. */
int daemon_qemu_identity(const DaemonConfig *cfg, uint32_t *ret_first, uint32_t *ret_count, char **ret_summary,
                         Error **err);
/* Creates the state directory, mode 0711 (QEMU users cross it to their own
 * files and list nothing), and with qemu_uids checks that every ancestor is
 * searchable by others. */
int daemon_state_dir_prepare(const char *state_dir, bool qemu_uids, Error **err);
/* A file every QEMU reads (kernel, initramfs): readable by others along its
 * whole path; a warning when anyone but root could write it. */
int daemon_check_shared_input(const char *path, bool qemu_uids, Error **err);
/* A directory QEMU users open files below (the image store): it and every
 * directory above it searchable by others. */
int daemon_check_shared_dir(const char *dir, bool qemu_uids, Error **err);
/* Warns when the KVM device (path, normally /dev/kvm) exists but is not
 * read-writable by every user: QEMU under a per-container uid cannot use it,
 * and libvirt then re-probes QEMU's capabilities at every domain start. */
void daemon_check_kvm_device(const char *path);
/* Gives the API socket to group DAEMON_SOCKET_GROUP (mode 0660); without the
 * group it stays root's alone, with a warning. */
void daemon_socket_group(const char *path);
