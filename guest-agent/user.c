/* user.c: resolving "user[:group]" inside the container root.
 *
 * The agent is static (no NSS), and the container's own /etc/passwd and
 * /etc/group are the right source of truth anyway. Files are opened with
 * root_open(), so a hostile image cannot point us outside its root, and read
 * with a size bound. */
#include "guest-agent/agent.h"
#include "guest-agent/copy.h"

#include "common/base/io-util.h"
#include "common/base/parse-util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USER_DB_MAX (4u * 1024u * 1024u)

static int parse_id(const char *s, unsigned long *ret) {
        uint32_t v;
        int r = safe_atou32(s, &v);
        if (r < 0)
                return r;
        if (v >= UINT_MAX) /* (uid_t) -1 means "no change" to chown() and setresuid() */
                return -ERANGE;
        *ret = v;
        return 0;
}

/* Reads the root's file into a NUL-terminated buffer; a missing file is empty. */
static int read_db(int root_fd, const char *path, char **ret) {
        _cleanup_close_ int fd = root_open(root_fd, path, O_RDONLY, 0);
        if (fd < 0) {
                *ret = calloc(1, 1);
                return *ret ? 0 : -ENOMEM;
        }
        size_t len;
        return read_fd_bounded(fd, USER_DB_MAX, ret, &len);
}

/* Splits a colon-separated line into at most n fields (in place). */
static size_t split_fields(char *line, char **fields, size_t n) {
        size_t i = 0;
        fields[i++] = line;
        for (char *p = line; *p && i < n; p++)
                if (*p == ':') {
                        *p = 0;
                        fields[i++] = p + 1;
                }
        return i;
}

/* Finds name (or numeric id) in a passwd/group database; fields[0] is the name,
 * fields[2] the id. Returns 1 and the line's fields when found. */
static int db_find(char *db, const char *key, char **fields, size_t n) {
        for (char *save = NULL, *line = strtok_r(db, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (split_fields(line, fields, n) < 4)
                        continue;
                if (strcmp(fields[0], key) == 0 || strcmp(fields[2], key) == 0)
                        return 1;
        }
        return 0;
}

static void add_supplementary(const char *group_db, const char *user, UserIds *ids) {
        _cleanup_free_ char *db = strdup(group_db);
        if (!db)
                return;
        for (char *save = NULL, *line = strtok_r(db, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *f[4];
                unsigned long gid;
                if (split_fields(line, f, 4) < 4 || parse_id(f[2], &gid) < 0)
                        continue;
                for (char *s2 = NULL, *m = strtok_r(f[3], ",", &s2); m; m = strtok_r(NULL, ",", &s2))
                        if (strcmp(m, user) == 0 && ids->n_groups < ELEMENTSOF(ids->groups))
                                ids->groups[ids->n_groups++] = (gid_t) gid;
        }
}

int user_resolve(int root_fd, const char *spec, UserIds *ret, Error **err) {
        if (strlen(spec) > 256)
                return error_set(err, EINVAL, "user '%.32s...' is too long", spec);
        _cleanup_free_ char *copy = strdup(spec), *passwd = NULL, *group = NULL;
        if (!copy)
                return -ENOMEM;
        char *grp = strchr(copy, ':');
        if (grp)
                *grp++ = 0;
        int r = read_db(root_fd, "/etc/passwd", &passwd);
        if (r >= 0)
                r = read_db(root_fd, "/etc/group", &group);
        if (r < 0)
                return error_set_errno(err, -r, "read the container's user database");

        UserIds ids = {0};
        unsigned long v;
        char *f[7];
        _cleanup_free_ char *pw = strdup(passwd);
        if (!pw)
                return -ENOMEM;
        unsigned long pw_gid;
        if (db_find(pw, copy, f, 7) && parse_id(f[2], &v) >= 0 && parse_id(f[3], &pw_gid) >= 0) {
                ids.uid = (uid_t) v;
                ids.gid = (gid_t) pw_gid;
                add_supplementary(group, f[0], &ids);
        } else if (parse_id(copy, &v) >= 0) {
                /* Like Docker: a uid the image does not know runs with gid 0. */
                ids.uid = (uid_t) v;
                ids.gid = 0;
        } else
                return error_set(err, ENOENT, "user '%s' not found in the container's /etc/passwd", copy);

        if (grp) {
                _cleanup_free_ char *gr = strdup(group);
                if (!gr)
                        return -ENOMEM;
                if (db_find(gr, grp, f, 4) && parse_id(f[2], &v) >= 0)
                        ids.gid = (gid_t) v;
                else if (parse_id(grp, &v) >= 0)
                        ids.gid = (gid_t) v;
                else
                        return error_set(err, ENOENT, "group '%s' not found in the container's /etc/group", grp);
        }
        *ret = ids;
        return 0;
}
