/* daemon-privs.c: who QEMU runs as, and the modes of the daemon's own files
 * (docs/security.md).
 *
 * Each container VM's QEMU runs under a uid of its own, from a range no
 * account uses, which only the embedded libvirt driver lets the daemon
 * decide. Where that is impossible (another libvirt URI, a range that
 * collides with an account) the daemon says why and refuses to start,
 * unless it was told --allow-root-qemu: then every QEMU runs as root, and
 * each start says so again. */
#include "daemon-internal.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "common/base/log.h"
#include "portlayer/container/container.h"

/* Why no uid per container is possible, or NULL when it is. */
static int no_uids_reason(const DaemonConfig *cfg, uint32_t *first, uint32_t *count, char **ret, Error **err) {
        *ret = NULL;
        if (cfg->libvirt_uri && strncmp(cfg->libvirt_uri, "qemu:///embed", 13) != 0)
                return asprintf(ret, "libvirt URI '%s' is not the embedded driver: that libvirt decides QEMU's user",
                                cfg->libvirt_uri) < 0 ? error_oom(err) : 0;
        const char *range = cfg->uid_range ? cfg->uid_range : DAEMON_DEFAULT_UID_RANGE;
        if (container_uid_range_parse(range, first, count) < 0)
                return error_set(err, EINVAL, "uid-range '%s' is not FIRST-LAST", range);
        _cleanup_error_ Error *e = NULL;
        if (container_uid_range_check(*first, *count, &e) < 0)
                return asprintf(ret, "no usable uid range: %s (choose another --uid-range)", error_text(e)) < 0
                               ? error_oom(err)
                               : 0;
        return 0;
}

int daemon_qemu_identity(const DaemonConfig *cfg, uint32_t *ret_first, uint32_t *ret_count, char **ret_summary,
                         Error **err) {
        _cleanup_free_ char *why = NULL;
        uint32_t first = 0, count = 0;
        int r = no_uids_reason(cfg, &first, &count, &why, err);
        if (r < 0)
                return r;
        if (why && !cfg->allow_root_qemu)
                return error_set(err, EPERM, "refusing to run QEMU as root: %s; pass --allow-root-qemu to run it so",
                                 why);
        if (why) {
                log_warning("QEMU runs as root for every container (--allow-root-qemu): %s", why);
                *ret_first = *ret_count = 0;
                return asprintf(ret_summary, "root (allowed by --allow-root-qemu: %s)", why) < 0 ? error_oom(err) : 0;
        }
        *ret_first = first;
        *ret_count = count;
        return asprintf(ret_summary, "a uid per container (%u-%u)", first, first + count - 1) < 0 ? error_oom(err) : 0;
}

/* QEMU users open files below path by name: every directory above it (path
 * itself excluded) must let others search it. */
static int check_searchable(const char *path, Error **err) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return error_oom(err);
        for (char *end = strrchr(p, '/'); end; end = *p ? strrchr(p, '/') : NULL) {
                *end = 0;
                const char *dir = *p ? p : "/";
                struct stat st;
                if (stat(dir, &st) < 0)
                        return error_set_errno(err, errno, "stat %s", dir);
                if (!(st.st_mode & S_IXOTH))
                        return error_set(err, EACCES,
                                         "%s (mode %04o) is not searchable by others: container VMs' QEMU, running "
                                         "under uids of their own, cannot reach %s below it (chmod o+x, or choose "
                                         "another directory)",
                                         dir, (unsigned) (st.st_mode & 07777), path);
        }
        return 0;
}

int daemon_state_dir_prepare(const char *state_dir, bool qemu_uids, Error **err) {
        int r = mkdir_p(state_dir, 0711);
        if (r >= 0 && chmod(state_dir, 0711) < 0)
                r = -errno;
        if (r < 0)
                return error_set_errno(err, -r, "create %s", state_dir);
        return qemu_uids ? check_searchable(state_dir, err) : 0;
}

int daemon_check_shared_input(const char *path, bool qemu_uids, Error **err) {
        struct stat st;
        if (!qemu_uids)
                return 0;
        if (stat(path, &st) < 0)
                return error_set_errno(err, errno, "stat %s", path);
        if (!(st.st_mode & S_IROTH))
                return error_set(err, EACCES, "%s (mode %04o) is not readable by others: container VMs' QEMU cannot "
                                 "open it", path, (unsigned) (st.st_mode & 07777));
        if ((st.st_mode & S_IWOTH) || st.st_uid != 0)
                log_warning("%s is owned by uid %u, mode %04o: QEMU users must never be able to write it", path,
                            (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777));
        return check_searchable(path, err);
}

int daemon_check_shared_dir(const char *dir, bool qemu_uids, Error **err) {
        _cleanup_free_ char *below = NULL;
        if (!qemu_uids)
                return 0;
        if (asprintf(&below, "%s/.", dir) < 0)
                return error_oom(err);
        return check_searchable(below, err);
}

void daemon_check_kvm_device(const char *path) {
        struct stat st;
        if (stat(path, &st) < 0 || (st.st_mode & (S_IROTH | S_IWOTH)) == (S_IROTH | S_IWOTH))
                return;
        log_warning("%s is mode %04o: container VMs' QEMU, under uids of their own, cannot use KVM, and libvirt "
                    "probes QEMU again at every start (slow); make it 0666 (scripts/setup.sh)",
                    path, (unsigned) (st.st_mode & 07777));
}

void daemon_socket_group(const char *path) {
        struct group *g = getgrnam(DAEMON_SOCKET_GROUP);
        if (!g) {
                log_warning("no group '%s' (scripts/setup.sh creates it): the API socket %s is root's alone",
                            DAEMON_SOCKET_GROUP, path);
                return;
        }
        if (chown(path, 0, g->gr_gid) < 0 || chmod(path, 0660) < 0)
                log_warning("API socket %s: cannot give it to group '%s': %m; it stays root's alone", path,
                            DAEMON_SOCKET_GROUP);
}
