/* bench-util.h: what the benchmark programs share (header only). */
#pragma once

#include <stdint.h>
#include <stdlib.h>

static inline int bench_cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* Sorts n samples in place, for medians and percentiles by index. */
static inline void bench_sort_u64(uint64_t *v, size_t n) {
        qsort(v, n, sizeof *v, bench_cmp_u64);
}
