/* path-util.h: lexical normalisation of the names found in archives (tar
 * members, layer entries, manifest paths), written once for the agent's
 * copy-in, the ext4 layer writer and the docker-archive source (libc only).
 *
 * Normalising is purely textual: nothing is resolved on disk, so a symlink
 * inside the tree is the caller's concern (the agent confines with openat2,
 * the ext4 writer owns its whole image). What the rules decide is which
 * spellings are refused outright, so a hostile archive fails loudly instead
 * of landing somewhere unexpected. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* What a caller accepts. Zero limits mean "no limit". */
typedef struct PathRules {
        size_t max_len;       /* bytes of raw (not of base/raw) */
        size_t max_component; /* bytes of any one component */
        bool strip_root;      /* leading "/"s are dropped (as tar does); else refused */
        bool resolve_dotdot;  /* ".." drops the component before it; else refused */
        bool refuse_empty;    /* a result of "" (the top itself) is refused */
} PathRules;

/* Which rule refused a name, so that each caller keeps its own message. */
typedef enum PathReject {
        PATH_REJECT_NONE,
        PATH_REJECT_EMPTY,               /* raw NULL or "" */
        PATH_REJECT_TOO_LONG,            /* raw longer than max_len */
        PATH_REJECT_ABSOLUTE,            /* raw starts with "/", strip_root unset */
        PATH_REJECT_DOTDOT,              /* a ".." component, resolve_dotdot unset */
        PATH_REJECT_ESCAPES,             /* a ".." above the top (resolve_dotdot set) */
        PATH_REJECT_COMPONENT_TOO_LONG,  /* a component longer than max_component */
        PATH_REJECT_EMPTY_RESULT,        /* nothing left, refuse_empty set */
} PathReject;

/* Normalises raw, relative to base (NULL or "" for the top; else an already
 * normal "a/b", as this function returns), into "a/b/c": no leading or
 * trailing "/", no empty ("//") or "." components; ".." either refused or
 * resolved lexically, never above the top. "" names the top itself ("." or
 * "./", or "/" with strip_root) unless refuse_empty.
 *
 * Checks run in this order: empty raw, raw's length, a leading "/", then
 * each component left to right (".." before its length), then the empty
 * result. On success *ret is a malloc'd string no longer than base/raw and 0
 * is returned. On failure *ret is untouched, *ret_why (if not NULL) names the
 * rule, and the return is -ENAMETOOLONG for the two length rules, -ENOMEM,
 * or -EINVAL for the others. */
int path_normalize(const char *base, const char *raw, const PathRules *rules, char **ret, PathReject *ret_why);
