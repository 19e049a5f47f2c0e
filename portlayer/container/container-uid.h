/* container-uid.h: the uid range container VMs run under, one uid per
 * container (docs/security.md).
 *
 * The daemon owns a range of ids no account uses (checked against
 * /etc/passwd and /etc/group when the pool opens). Each container holds one
 * uid, used as its gid too, from its creation until its destruction: the
 * claim is a file <state>/uids/<uid> naming the container, created
 * exclusively, so no two containers (and no two daemons, one killed with
 * -9 and its successor) ever get the same uid. A uid is released only when
 * no process runs as it any more; the caller removes or gives back the
 * files first. Internal to plcontainer (and its white-box tests). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/error.h"

#define UID_RANGE_MIN 65536u      /* above the ids of the first 64 Ki (nobody is 65534) */
#define UID_RANGE_MAX 2147483646u /* below 2^31: some tools store ids signed */
#define UID_RANGE_DEFAULT "200000-265535"

typedef struct UidPool UidPool;

typedef struct UidClaim {
        uint32_t uid;
        char owner[128];
} UidClaim;

/* "FIRST-LAST" (inclusive) into first and count. -EINVAL unless
 * UID_RANGE_MIN <= FIRST <= LAST <= UID_RANGE_MAX. */
int uid_range_parse(const char *s, uint32_t *ret_first, uint32_t *ret_count);
/* -EEXIST (with the account named) when a user of passwd or a group of
 * group (NULL: /etc/passwd, /etc/group) has an id in the range. */
int uid_range_check(uint32_t first, uint32_t count, const char *passwd, const char *group, Error **err);

/* Opens the pool of [first, first + count) whose claims live in dir (created
 * 0700), after uid_range_check(). */
int uid_pool_open(const char *dir, uint32_t first, uint32_t count, const char *passwd, const char *group,
                  UidPool **ret, Error **err);
UidPool *uid_pool_free(UidPool *p); /* NULL-safe; returns NULL */
uint32_t uid_pool_first(const UidPool *p);
uint32_t uid_pool_count(const UidPool *p);

/* Claims the lowest free uid for owner (a container id): unclaimed, and no
 * process runs as it (one that does is skipped with a warning: another
 * daemon's or a stray). -ENOSPC when none is left. Thread- and process-safe. */
int uid_pool_claim(UidPool *p, const char *owner, uint32_t *ret, Error **err);
/* Claims uid for owner again (recovery of a recorded uid): 0 when owner
 * holds it now (already or newly), -EBUSY when another owner does, -ERANGE
 * outside the range. */
int uid_pool_reclaim(UidPool *p, uint32_t uid, const char *owner, Error **err);
/* Gives uid back. 0 also when it was not claimed; -EPERM when another owner
 * holds it; -EBUSY while a process runs as uid (QEMU not gone yet). */
int uid_pool_release(UidPool *p, uint32_t uid, const char *owner, Error **err);
/* Every claim, in no order; free(*ret). */
/* Passes the claim of uid from owner from to owner to in one rename (the
 * QEMU running as uid keeps running): -EPERM when from does not hold it. */
int uid_pool_transfer(UidPool *p, uint32_t uid, const char *from, const char *to, Error **err);
int uid_pool_list(UidPool *p, UidClaim **ret, size_t *ret_n, Error **err);

/* 1 when a process of proc (NULL: /proc) runs with effective uid uid, 0
 * when none, or a negative errno. */
int uid_in_use(const char *proc, uint32_t uid);
