/* parse-util.c: whole-string number and size parsing (see parse-util.h). */
#include "common/base/parse-util.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/* Parses the leading decimal digits of s into *ret and points *end past
 * them. Returns 0, -EINVAL when s is NULL or starts with no digit, -ERANGE
 * on overflow. */
static int parse_digits(const char *s, uint64_t *ret, const char **end) {
        if (!s)
                return -EINVAL;
        uint64_t v = 0;
        const char *p = s;
        for (; *p >= '0' && *p <= '9'; p++) {
                unsigned d = (unsigned) (*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        if (p == s)
                return -EINVAL;
        *ret = v;
        *end = p;
        return 0;
}

/* The binary shift of a size suffix ("" 0, K 10, M 20, G 30, T 40, either
 * case), or -EINVAL for anything else, a second character included. */
static int size_shift(const char *suffix) {
        static const char suffixes[] = "KMGT";
        if (!*suffix)
                return 0;
        char c = (char) (*suffix & ~0x20); /* upper case */
        for (size_t i = 0; suffixes[i]; i++)
                if (c == suffixes[i] && !suffix[1])
                        return 10 * (int) (i + 1);
        return -EINVAL;
}

int safe_atou64(const char *s, uint64_t *ret) {
        const char *end;
        uint64_t v;
        int r = parse_digits(s, &v, &end);
        if (r >= 0 && *end)
                r = -EINVAL;
        if (r >= 0)
                *ret = v;
        return r;
}

int safe_atou32(const char *s, uint32_t *ret) {
        uint64_t v;
        int r = safe_atou64(s, &v);
        if (r < 0)
                return r;
        if (v > UINT32_MAX)
                return -ERANGE;
        *ret = (uint32_t) v;
        return 0;
}

int safe_atoi(const char *s, int *ret) {
        if (!s)
                return -EINVAL;
        bool negative = s[0] == '-';
        uint64_t v;
        int r = safe_atou64(s + negative, &v);
        if (r < 0)
                return r;
        if (negative ? v > (uint64_t) INT_MAX + 1 : v > (uint64_t) INT_MAX)
                return -ERANGE;
        *ret = negative ? (int) -(int64_t) v : (int) v;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        const char *end;
        uint64_t v;
        int r = parse_digits(s, &v, &end);
        if (r < 0)
                return r;
        int shift = size_shift(end);
        if (shift < 0)
                return shift;
        if (v > (UINT64_MAX >> shift))
                return -ERANGE;
        *ret = v << shift;
        return 0;
}
