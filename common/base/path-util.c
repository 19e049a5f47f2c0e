/* path-util.c: lexical normalisation of archive entry names (see path-util.h). */
#include "common/base/path-util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/macro.h"

static int reject(PathReject why, PathReject *ret_why) {
        if (ret_why)
                *ret_why = why;
        return why == PATH_REJECT_TOO_LONG || why == PATH_REJECT_COMPONENT_TOO_LONG ? -ENAMETOOLONG : -EINVAL;
}

/* Appends the components of p to out (n bytes so far) under rules. */
static PathReject append_components(const char *p, const PathRules *rules, char *out, size_t *n) {
        while (*p) {
                size_t k = strcspn(p, "/");
                if (k == 2 && p[0] == '.' && p[1] == '.') {
                        if (!rules->resolve_dotdot)
                                return PATH_REJECT_DOTDOT;
                        if (*n == 0)
                                return PATH_REJECT_ESCAPES;
                        while (*n > 0 && out[*n - 1] != '/')
                                (*n)--;
                        if (*n > 0)
                                (*n)--; /* the '/' before it */
                } else if (rules->max_component > 0 && k > rules->max_component) {
                        return PATH_REJECT_COMPONENT_TOO_LONG;
                } else if (k > 0 && !(k == 1 && p[0] == '.')) {
                        if (*n > 0)
                                out[(*n)++] = '/';
                        memcpy(out + *n, p, k);
                        *n += k;
                }
                p += k;
                p += strspn(p, "/");
        }
        return PATH_REJECT_NONE;
}

int path_normalize(const char *base, const char *raw, const PathRules *rules, char **ret, PathReject *ret_why) {
        static const PathRules none = {0};
        if (!rules)
                rules = &none;
        if (!raw || !*raw)
                return reject(PATH_REJECT_EMPTY, ret_why);
        size_t len = strlen(raw);
        if (rules->max_len > 0 && len > rules->max_len)
                return reject(PATH_REJECT_TOO_LONG, ret_why);
        if (raw[0] == '/' && !rules->strip_root)
                return reject(PATH_REJECT_ABSOLUTE, ret_why);

        size_t blen = base ? strlen(base) : 0;
        _cleanup_free_ char *out = malloc(blen + 1 + len + 1);
        if (!out)
                return -ENOMEM;
        size_t n = 0;
        PathReject why = PATH_REJECT_NONE;
        if (blen > 0)
                why = append_components(base, rules, out, &n);
        if (why == PATH_REJECT_NONE)
                why = append_components(raw + strspn(raw, "/"), rules, out, &n);
        if (why == PATH_REJECT_NONE && n == 0 && rules->refuse_empty)
                why = PATH_REJECT_EMPTY_RESULT;
        if (why != PATH_REJECT_NONE)
                return reject(why, ret_why);
        out[n] = 0;
        *ret = TAKE_PTR(out);
        if (ret_why)
                *ret_why = PATH_REJECT_NONE;
        return 0;
}
