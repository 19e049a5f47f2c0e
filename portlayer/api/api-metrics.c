/* api-metrics.c: GET /metrics, the container host's counters in
 * Prometheus' text exposition format (version 0.0.4): "# HELP" and "# TYPE"
 * lines, then one "name{label="value"} number" line per sample. The
 * numbers come from one container_host_metrics() snapshot. */
#include "api-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static void family(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with \, " and newline escaped, as the format asks. */
static void label_value(FILE *f, const char *s) {
        for (; *s; s++)
                if (*s == '\\' || *s == '"')
                        fprintf(f, "\\%c", *s);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
}

static void histogram(FILE *f, const ContainerHostMetrics *m) {
        const char *name = "portlayer_container_start_seconds";
        family(f, name, "histogram", "Time from a start's beginning to the main process running, for starts that succeeded.");
        for (size_t b = 0; b < CONTAINER_START_BUCKETS; b++)
                fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, container_start_buckets[b],
                        (unsigned long long) m->start_le[b]);
        unsigned long long count = (unsigned long long) m->start_le[CONTAINER_START_BUCKETS];
        fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, count, name,
                m->start_seconds_sum, name, count);
}

int api_metrics_render(const ContainerHostMetrics *m, const char *version, char **ret, size_t *ret_len) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        family(f, "portlayer_containers", "gauge", "Containers by state.");
        for (int s = 0; s < _CONTAINER_STATE_MAX; s++)
                fprintf(f, "portlayer_containers{state=\"%s\"} %llu\n", container_state_to_string((ContainerState) s),
                        (unsigned long long) m->containers[s]);
        family(f, "portlayer_container_starts_total", "counter", "Container starts that reached running.");
        fprintf(f, "portlayer_container_starts_total %llu\n", (unsigned long long) m->starts);
        family(f, "portlayer_container_start_failures_total", "counter", "Container starts that failed.");
        fprintf(f, "portlayer_container_start_failures_total %llu\n", (unsigned long long) m->start_failures);
        histogram(f, m);
        family(f, "portlayer_agent_errors_total", "counter",
               "Guest agent calls (exec, copy, stats, wait) that failed through no fault of the client.");
        fprintf(f, "portlayer_agent_errors_total %llu\n", (unsigned long long) m->agent_errors);
        family(f, "portlayer_qemu_memory_bytes", "gauge",
               "Resident memory of the running containers' QEMU processes (refreshed at most every 5 s).");
        fprintf(f, "portlayer_qemu_memory_bytes %llu\n", (unsigned long long) m->qemu_memory_bytes);
        family(f, "portlayer_build_info", "gauge", "The daemon's version.");
        fputs("portlayer_build_info{version=\"", f);
        label_value(f, version ? version : "");
        fputs("\"} 1\n", f);
        if (fclose(f) != 0 || !text) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        *ret_len = len;
        return 0;
}

int api_metrics(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        ContainerHostMetrics m;
        container_host_metrics(a->host, &m);
        int r = api_metrics_render(&m, a->version, &resp->body, &resp->body_len);
        if (r < 0)
                return error_oom(err);
        resp->status = 200;
        resp->content_type = METRICS_CONTENT_TYPE;
        return 0;
}
