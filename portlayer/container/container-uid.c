/* container-uid.c: the uids the daemon gives container VMs (see
 * container-uid.h and docs/security.md).
 *
 * A claim is a file <dir>/<uid> created with O_EXCL whose content is the
 * owning container's id. The file system is the only truth: two threads, or
 * a daemon and its successor after a kill -9, can never both create it, and
 * a claim outlives the process that made it. The lowest free uid is taken,
 * free meaning unclaimed and no process running as it (another daemon given
 * the same range, or a stray process); a released uid can come back at once,
 * but only after its release, which refuses while any process still runs as
 * that uid. */
#include "container-uid.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/base/parse-util.h"
#include "common/base/proc-util.h"

#define CLAIM_MAX 128 /* a claim holds an id (64 hex) and a newline */

struct UidPool {
        int dir_fd;
        char *dir;
        uint32_t first, count;
};

int uid_range_parse(const char *s, uint32_t *ret_first, uint32_t *ret_count) {
        const char *dash = s ? strchr(s, '-') : NULL;
        char first_s[16];
        uint32_t first, last;
        if (!dash || (size_t) (dash - s) >= sizeof first_s)
                return -EINVAL;
        memcpy(first_s, s, (size_t) (dash - s));
        first_s[dash - s] = 0;
        if (safe_atou32(first_s, &first) < 0 || safe_atou32(dash + 1, &last) < 0)
                return -EINVAL;
        /* 0 is root and 65534 nobody in the first 64 Ki; ids past 2^31 upset
         * tools that store them signed; (uid_t) -1 means "unchanged" */
        if (first < UID_RANGE_MIN || last < first || last > UID_RANGE_MAX)
                return -EINVAL;
        *ret_first = first;
        *ret_count = last - first + 1;
        return 0;
}

/* Each line of an /etc/passwd or /etc/group style file whose third field
 * (the id) falls in the range is a collision. */
static int check_file(const char *path, const char *what, uint32_t first, uint32_t count, Error **err) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_file_bounded(path, 64u << 20, &text, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return error_set_errno(err, -r, "read %s", path);
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *f[4] = {line};
                for (int i = 1; i < 4; i++) {
                        f[i] = f[i - 1] ? strchr(f[i - 1], ':') : NULL;
                        if (f[i])
                                *f[i]++ = 0;
                }
                uint32_t id;
                if (!f[3] || safe_atou32(f[2], &id) < 0)
                        continue;
                if (id >= first && id - first < count)
                        return error_set(err, EEXIST, "uid range %u-%u: %s '%s' (%u in %s) falls inside it", first,
                                         first + count - 1, what, f[0], id, path);
        }
        return 0;
}

int uid_range_check(uint32_t first, uint32_t count, const char *passwd, const char *group, Error **err) {
        int r = check_file(passwd ? passwd : "/etc/passwd", "user", first, count, err);
        return r < 0 ? r : check_file(group ? group : "/etc/group", "group", first, count, err);
}

int uid_pool_open(const char *dir, uint32_t first, uint32_t count, const char *passwd, const char *group,
                  UidPool **ret, Error **err) {
        if (count == 0 || first < UID_RANGE_MIN || first + (uint64_t) count - 1 > UID_RANGE_MAX)
                return error_set(err, EINVAL, "uid range %u+%u: must lie in %u-%u", first, count, UID_RANGE_MIN,
                                 UID_RANGE_MAX);
        int r = uid_range_check(first, count, passwd, group, err);
        if (r < 0)
                return r;
        if ((r = mkdir_p(dir, 0700)) < 0)
                return error_set_errno(err, -r, "create %s", dir);
        UidPool *p = calloc(1, sizeof(*p));
        if (!p || !(p->dir = strdup(dir))) {
                free(p);
                return error_oom(err);
        }
        p->first = first;
        p->count = count;
        p->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (p->dir_fd < 0) {
                r = error_set_errno(err, errno, "open %s", dir);
                uid_pool_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

UidPool *uid_pool_free(UidPool *p) {
        if (!p)
                return NULL;
        safe_close(p->dir_fd);
        free(p->dir);
        free(p);
        return NULL;
}

uint32_t uid_pool_first(const UidPool *p) {
        return p->first;
}

uint32_t uid_pool_count(const UidPool *p) {
        return p->count;
}

/* The owner a claim names: 0, -ENOENT when there is no claim. */
static int claim_read(UidPool *p, uint32_t uid, char owner[CLAIM_MAX]) {
        char name[16];
        snprintf(name, sizeof name, "%u", uid);
        _cleanup_close_ int fd = openat(p->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, owner, CLAIM_MAX - 1);
        if (n < 0)
                return -errno;
        owner[n] = 0;
        owner[strcspn(owner, "\n")] = 0;
        return 0;
}

/* Creates the claim: 0, -EEXIST when uid is claimed. The content is written
 * before the file gets its name, so a claim is never seen empty. */
static int claim_create(UidPool *p, uint32_t uid, const char *owner) {
        char name[16], tmp[32];
        snprintf(name, sizeof name, "%u", uid);
        int fd = openat(p->dir_fd, ".", O_WRONLY | O_TMPFILE | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        size_t len = strlen(owner);
        int r = 0;
        if (write(fd, owner, len) != (ssize_t) len || write(fd, "\n", 1) != 1 || fsync(fd) < 0)
                r = errno ? -errno : -EIO;
        snprintf(tmp, sizeof tmp, "/proc/self/fd/%d", fd);
        /* linkat() never replaces: this is the O_EXCL of the claim */
        if (r == 0 && linkat(AT_FDCWD, tmp, p->dir_fd, name, AT_SYMLINK_FOLLOW) < 0)
                r = -errno;
        safe_close(fd);
        if (r == 0)
                (void) fsync(p->dir_fd);
        return r;
}

static bool owner_is_valid(const char *owner) {
        size_t n = owner ? strlen(owner) : 0;
        if (n == 0 || n >= CLAIM_MAX - 1)
                return false;
        for (size_t i = 0; i < n; i++)
                if (owner[i] <= ' ' || owner[i] == '/' || owner[i] > '~')
                        return false;
        return true;
}

static int uid_holder(const char *proc, uint32_t uid);

int uid_pool_claim(UidPool *p, const char *owner, uint32_t *ret, Error **err) {
        if (!owner_is_valid(owner))
                return error_set(err, EINVAL, "uid claim: invalid owner");
        for (uint32_t i = 0; i < p->count; i++) {
                char held[CLAIM_MAX];
                if (claim_read(p, p->first + i, held) == 0)
                        continue; /* ours already: no /proc walk for it */
                /* A uid some process runs as without a claim here is another
                 * daemon's (the same range configured twice) or a stray
                 * process's: never hand it out as if it were free. */
                int holder = uid_holder(NULL, p->first + i);
                if (holder > 0) {
                        char cmd[160];
                        proc_cmdline_text(holder, cmd, sizeof cmd);
                        log_warning("uid %u: process %d runs as it without a claim in %s (%s): skipped; give each "
                                    "daemon a uid range of its own (--uid-range)",
                                    p->first + i, holder, p->dir, cmd);
                        continue;
                }
                int r = claim_create(p, p->first + i, owner);
                if (r == 0) {
                        *ret = p->first + i;
                        return 0;
                }
                if (r != -EEXIST)
                        return error_set_errno(err, -r, "claim uid %u in %s", p->first + i, p->dir);
        }
        return error_set(err, ENOSPC, "no free uid left in %u-%u (%u containers hold one each)", p->first,
                         p->first + p->count - 1, p->count);
}

int uid_pool_reclaim(UidPool *p, uint32_t uid, const char *owner, Error **err) {
        if (!owner_is_valid(owner))
                return error_set(err, EINVAL, "uid claim: invalid owner");
        if (uid < p->first || uid - p->first >= p->count)
                return error_set(err, ERANGE, "uid %u is outside the range %u-%u", uid, p->first,
                                 p->first + p->count - 1);
        char held[CLAIM_MAX];
        int r = claim_create(p, uid, owner);
        if (r == -EEXIST && (r = claim_read(p, uid, held)) == 0 && strcmp(held, owner) != 0)
                return error_set(err, EBUSY, "uid %u is claimed by %.64s", uid, held);
        if (r < 0)
                return error_set_errno(err, -r, "claim uid %u in %s", uid, p->dir);
        return 0;
}

/* True when <proc>/<pid>/stat says Z (or X): exited, not yet reaped. */
static bool is_zombie(int proc_fd, const char *pid) {
        char path[300], buf[512];
        snprintf(path, sizeof path, "%.255s/stat", pid);
        _cleanup_close_ int fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
        if (n <= 0)
                return false;
        buf[n] = 0;
        const char *paren = strrchr(buf, ')'); /* the command may hold spaces and parentheses */
        return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

/* The pid of a live process of proc with effective uid uid, 0 when none,
 * or a negative errno. */
static int uid_holder(const char *proc, uint32_t uid) {
        DIR *d = opendir(proc ? proc : "/proc");
        if (!d)
                return -errno;
        struct dirent *de;
        int found = 0;
        while (!found && (de = readdir(d))) {
                struct stat st;
                if (de->d_name[0] < '0' || de->d_name[0] > '9')
                        continue;
                /* /proc/<pid> belongs to the process's effective uid; a
                 * zombie holds nothing any more */
                if (fstatat(dirfd(d), de->d_name, &st, 0) == 0 && st.st_uid == uid && !is_zombie(dirfd(d), de->d_name))
                        found = atoi(de->d_name);
        }
        closedir(d);
        return found;
}

int uid_in_use(const char *proc, uint32_t uid) {
        int r = uid_holder(proc, uid);
        return r > 0 ? 1 : r;
}

int uid_pool_release(UidPool *p, uint32_t uid, const char *owner, Error **err) {
        char held[CLAIM_MAX], name[16];
        int r = claim_read(p, uid, held);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return error_set_errno(err, -r, "read the claim of uid %u", uid);
        if (strcmp(held, owner) != 0)
                return error_set(err, EPERM, "uid %u is claimed by %.64s, not %.64s", uid, held, owner);
        int holder = uid_holder(NULL, uid);
        if (holder > 0) {
                char cmd[160];
                proc_cmdline_text(holder, cmd, sizeof cmd);
                return error_set(err, EBUSY, "uid %u: process %d still runs as it (%s)", uid, holder, cmd);
        }
        snprintf(name, sizeof name, "%u", uid);
        if (unlinkat(p->dir_fd, name, 0) < 0 && errno != ENOENT)
                return error_set_errno(err, errno, "release uid %u", uid);
        (void) fsync(p->dir_fd);
        return 0;
}

int uid_pool_transfer(UidPool *p, uint32_t uid, const char *from, const char *to, Error **err) {
        if (!owner_is_valid(to))
                return error_set(err, EINVAL, "uid claim: invalid owner");
        char held[CLAIM_MAX], name[16], tmp[32], fdpath[32];
        int r = claim_read(p, uid, held);
        if (r < 0)
                return error_set_errno(err, -r, "read the claim of uid %u", uid);
        if (strcmp(held, from) != 0)
                return error_set(err, EPERM, "uid %u is claimed by %.64s, not %.64s", uid, held, from);
        snprintf(name, sizeof name, "%u", uid);
        snprintf(tmp, sizeof tmp, ".%u.new", uid);
        _cleanup_close_ int fd = openat(p->dir_fd, ".", O_WRONLY | O_TMPFILE | O_CLOEXEC, 0600);
        if (fd < 0)
                return error_set_errno(err, errno, "transfer uid %u", uid);
        size_t len = strlen(to);
        snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
        (void) unlinkat(p->dir_fd, tmp, 0);
        if (write(fd, to, len) != (ssize_t) len || write(fd, "\n", 1) != 1 || fsync(fd) < 0 ||
            linkat(AT_FDCWD, fdpath, p->dir_fd, tmp, AT_SYMLINK_FOLLOW) < 0 ||
            renameat(p->dir_fd, tmp, p->dir_fd, name) < 0) {
                r = errno ? errno : EIO;
                (void) unlinkat(p->dir_fd, tmp, 0);
                return error_set_errno(err, r, "transfer uid %u to %.64s", uid, to);
        }
        (void) fsync(p->dir_fd);
        return 0;
}

int uid_pool_list(UidPool *p, UidClaim **ret, size_t *ret_n, Error **err) {
        int fd = openat(p->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                safe_close(fd);
                return error_set_errno(err, errno, "open %s", p->dir);
        }
        UidClaim *list = NULL;
        size_t n = 0;
        struct dirent *de;
        int r = 0;
        while (r >= 0 && (de = readdir(d))) {
                uint32_t uid;
                if (safe_atou32(de->d_name, &uid) < 0 || uid < p->first || uid - p->first >= p->count)
                        continue;
                UidClaim c = {.uid = uid};
                if (claim_read(p, uid, c.owner) < 0)
                        continue;
                UidClaim *grown = realloc(list, (n + 1) * sizeof(*list));
                if (!grown)
                        r = error_oom(err);
                else
                        (list = grown)[n++] = c;
        }
        closedir(d);
        if (r < 0) {
                free(list);
                return r;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}
