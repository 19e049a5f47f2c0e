/* container-metrics.c: the host's counters for GET /metrics (rendered by
 * plapi's api-metrics.c).
 *
 * Starts, failed starts, agent errors and the start-time histogram are
 * relaxed atomics bumped where they happen, so counting takes no lock on any
 * path a container's work goes through. A snapshot counts containers by
 * state under the host lock (short: one pass over the list) and adds the
 * QEMU processes' resident memory, asked of the VM driver at most every
 * CONTAINER_METRICS_MEMORY_TTL_MS so frequent scrapes stay cheap; only that
 * cache has a mutex of its own. */
#include "container-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/io-util.h"

#define CONTAINER_METRICS_MEMORY_TTL_MS 5000

const double container_start_buckets[CONTAINER_START_BUCKETS] = {0.5, 1, 2, 3, 5, 8, 13, 20, 30, 45, 60};

static void counter_add(uint64_t *c, uint64_t v) {
        __atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

static uint64_t counter_get(const uint64_t *c) {
        return __atomic_load_n(c, __ATOMIC_RELAXED);
}

void container_metrics_start(ContainerHost *h, bool ok, uint64_t usec) {
        if (!ok) {
                counter_add(&h->metrics.start_failures, 1);
                return;
        }
        size_t b = 0;
        while (b < CONTAINER_START_BUCKETS && (double) usec / 1e6 > container_start_buckets[b])
                b++;
        counter_add(&h->metrics.start_buckets[b], 1);
        counter_add(&h->metrics.start_usec_sum, usec);
        counter_add(&h->metrics.starts, 1);
}

/* The agent or its connection failed, rather than the client asking for
 * something wrong (no such path, permission, a bad argument). */
static bool agent_fault(int r) {
        switch (-r) {
        case ECONNRESET:
        case ECONNABORTED:
        case ECONNREFUSED:
        case ENOTCONN:
        case ESHUTDOWN:
        case EPIPE:
        case EPROTO:
        case EBADMSG:
        case EIO:
        case ETIMEDOUT:
        case ENOMEM:
        case EAGAIN:
                return true;
        default:
                return false;
        }
}

int container_metrics_agent_result(ContainerHost *h, int r) {
        if (r < 0 && agent_fault(r))
                counter_add(&h->metrics.agent_errors, 1);
        return r;
}

/* The summed RSS of the running containers' QEMUs, cached. */
static uint64_t qemu_memory(ContainerHost *h) {
        pthread_mutex_lock(&h->metrics.memory_lock);
        uint64_t now = now_usec();
        if (h->metrics.memory_at && now - h->metrics.memory_at < CONTAINER_METRICS_MEMORY_TTL_MS * 1000ull) {
                uint64_t v = h->metrics.memory_bytes;
                pthread_mutex_unlock(&h->metrics.memory_lock);
                return v;
        }
        char (*names)[VM_NAME_MAX + 1] = NULL;
        size_t n = 0;
        pthread_mutex_lock(&h->lock);
        names = calloc(h->n_containers ? h->n_containers : 1, sizeof(*names));
        for (size_t i = 0; names && i < h->n_containers; i++)
                if (h->containers[i]->rt)
                        snprintf(names[n++], sizeof names[0], "%s", h->containers[i]->domain);
        pthread_mutex_unlock(&h->lock);
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
                VmStats st;
                if (vm_driver_stats(h->driver, names[i], &st, NULL) >= 0)
                        sum += st.rss_kib * 1024;
        }
        free(names);
        h->metrics.memory_bytes = sum;
        h->metrics.memory_at = now;
        pthread_mutex_unlock(&h->metrics.memory_lock);
        return sum;
}

void container_host_metrics(ContainerHost *h, ContainerHostMetrics *ret) {
        *ret = (ContainerHostMetrics){0};
        pthread_mutex_lock(&h->lock);
        for (size_t i = 0; i < h->n_containers; i++)
                if (h->containers[i]->state < _CONTAINER_STATE_MAX)
                        ret->containers[h->containers[i]->state]++;
        pthread_mutex_unlock(&h->lock);
        ret->starts = counter_get(&h->metrics.starts);
        ret->start_failures = counter_get(&h->metrics.start_failures);
        ret->agent_errors = counter_get(&h->metrics.agent_errors);
        ret->start_seconds_sum = (double) counter_get(&h->metrics.start_usec_sum) / 1e6;
        uint64_t total = 0;
        for (size_t b = 0; b <= CONTAINER_START_BUCKETS; b++)
                ret->start_le[b] = total += counter_get(&h->metrics.start_buckets[b]);
        ret->qemu_memory_bytes = qemu_memory(h);
}
