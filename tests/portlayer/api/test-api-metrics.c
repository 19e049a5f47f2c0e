/* test-api-metrics.c: GET /metrics' rendering (portlayer/api/api-metrics.c)
 * read back with a small parser of Prometheus' text format: every line is a
 * comment or "name{label="value",...} number", every sample's family was
 * announced by "# TYPE", the histogram is cumulative and its +Inf bucket is
 * its count, and label values are escaped. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-internal.h"

typedef struct Sample {
        char name[128];
        char labels[256]; /* as written between the braces, unescaped */
        double value;
} Sample;

/* Parses one sample line; false when it is not one. */
static bool sample_parse(const char *line, Sample *s) {
        const char *p = line;
        size_t n = 0;
        if (!isalpha((unsigned char) *p) && *p != '_' && *p != ':')
                return false;
        while (isalnum((unsigned char) *p) || *p == '_' || *p == ':')
                if (n + 1 < sizeof s->name)
                        s->name[n++] = *p++;
                else
                        return false;
        s->name[n] = 0;
        n = 0;
        s->labels[0] = 0;
        if (*p == '{') {
                p++;
                while (*p && *p != '}') {
                        /* label name, =, a quoted value with \\ \" \n escapes */
                        if (!isalpha((unsigned char) *p) && *p != '_')
                                return false;
                        while (isalnum((unsigned char) *p) || *p == '_')
                                s->labels[n++] = *p++;
                        if (*p++ != '=' || *p++ != '"')
                                return false;
                        s->labels[n++] = '=';
                        while (*p && *p != '"') {
                                if (*p == '\\') {
                                        p++;
                                        if (*p != '\\' && *p != '"' && *p != 'n')
                                                return false;
                                        s->labels[n++] = *p == 'n' ? '\n' : *p;
                                        p++;
                                } else
                                        s->labels[n++] = *p++;
                                if (n + 4 >= sizeof s->labels)
                                        return false;
                        }
                        if (*p++ != '"')
                                return false;
                        if (*p == ',') {
                                s->labels[n++] = ',';
                                p++;
                        }
                }
                if (*p++ != '}')
                        return false;
                s->labels[n] = 0;
        }
        if (*p++ != ' ')
                return false;
        char *end = NULL;
        s->value = strtod(p, &end);
        return end != p && *end == 0;
}

static char *render(const ContainerHostMetrics *m, const char *version) {
        char *text = NULL;
        size_t len = 0;
        assert_int_equal(api_metrics_render(m, version, &text, &len), 0);
        assert_int_equal(strlen(text), len);
        assert_true(len > 0 && text[len - 1] == '\n');
        return text;
}

/* Every line parses; returns the samples (and checks the TYPE lines). */
static size_t parse_all(char *text, Sample *out, size_t max) {
        char typed[32][128];
        size_t n_typed = 0, n = 0;
        char *save = NULL;
        for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                char fam[128], type[32];
                if (sscanf(l, "# TYPE %127s %31s", fam, type) == 2) {
                        assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                                    strcmp(type, "histogram") == 0);
                        assert_true(n_typed < 32);
                        snprintf(typed[n_typed++], sizeof typed[0], "%s", fam);
                        continue;
                }
                if (strncmp(l, "# HELP ", 7) == 0)
                        continue;
                assert_true(n < max);
                if (!sample_parse(l, &out[n]))
                        fail_msg("not a sample line: '%s'", l);
                bool known = false;
                for (size_t i = 0; i < n_typed && !known; i++)
                        known = strncmp(out[n].name, typed[i], strlen(typed[i])) == 0;
                if (!known)
                        fail_msg("sample %s before its # TYPE", out[n].name);
                n++;
        }
        return n;
}

static const Sample *find(const Sample *s, size_t n, const char *name, const char *labels) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(s[i].name, name) == 0 && strcmp(s[i].labels, labels) == 0)
                        return &s[i];
        fail_msg("no sample %s{%s}", name, labels);
        return NULL;
}

static void test_render(void **state) {
        ContainerHostMetrics m = {.starts = 7, .start_failures = 2, .agent_errors = 3,
                                  .start_seconds_sum = 12.5, .qemu_memory_bytes = 123456789};
        m.containers[CONTAINER_RUNNING] = 4;
        m.containers[CONTAINER_STOPPED] = 1;
        uint64_t per_bucket[CONTAINER_START_BUCKETS + 1] = {0, 1, 3, 2, 0, 0, 0, 0, 0, 0, 0, 1};
        uint64_t total = 0;
        for (size_t b = 0; b <= CONTAINER_START_BUCKETS; b++)
                m.start_le[b] = total += per_bucket[b];
        char *text = render(&m, "1.2.3");
        Sample s[64];
        size_t n = parse_all(text, s, 64);
        assert_int_equal(find(s, n, "portlayer_containers", "state=running")->value, 4);
        assert_int_equal(find(s, n, "portlayer_containers", "state=stopped")->value, 1);
        assert_int_equal(find(s, n, "portlayer_containers", "state=created")->value, 0);
        assert_int_equal(find(s, n, "portlayer_container_starts_total", "")->value, 7);
        assert_int_equal(find(s, n, "portlayer_container_start_failures_total", "")->value, 2);
        assert_int_equal(find(s, n, "portlayer_agent_errors_total", "")->value, 3);
        assert_int_equal(find(s, n, "portlayer_qemu_memory_bytes", "")->value, 123456789);
        assert_int_equal(find(s, n, "portlayer_build_info", "version=1.2.3")->value, 1);
        assert_true(find(s, n, "portlayer_container_start_seconds_sum", "")->value == 12.5);
        assert_int_equal(find(s, n, "portlayer_container_start_seconds_count", "")->value, 7);
        /* buckets: ascending bounds, cumulative, +Inf last and equal to the count */
        double last_le = 0, last = 0;
        size_t buckets = 0;
        for (size_t i = 0; i < n; i++) {
                if (strcmp(s[i].name, "portlayer_container_start_seconds_bucket") != 0)
                        continue;
                assert_true(strncmp(s[i].labels, "le=", 3) == 0);
                double le = strcmp(s[i].labels + 3, "+Inf") == 0 ? 1e300 : strtod(s[i].labels + 3, NULL);
                assert_true(le > last_le);
                assert_true(s[i].value >= last);
                last_le = le;
                last = s[i].value;
                buckets++;
        }
        assert_int_equal(buckets, CONTAINER_START_BUCKETS + 1);
        assert_true(last_le == 1e300);
        assert_int_equal(last, 7);
        assert_int_equal(find(s, n, "portlayer_container_start_seconds_bucket", "le=0.5")->value, 0);
        assert_int_equal(find(s, n, "portlayer_container_start_seconds_bucket", "le=2")->value, 4);
        assert_int_equal(find(s, n, "portlayer_container_start_seconds_bucket", "le=60")->value, 6);
        free(text);
}

static void test_label_escaping(void **state) {
        ContainerHostMetrics m = {0};
        char *text = render(&m, "1.0 \"beta\"\\x\nnext");
        Sample s[64];
        size_t n = parse_all(text, s, 64);
        assert_int_equal(find(s, n, "portlayer_build_info", "version=1.0 \"beta\"\\x\nnext")->value, 1);
        assert_int_equal(find(s, n, "portlayer_container_start_seconds_count", "")->value, 0);
        free(text);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_render),
                cmocka_unit_test(test_label_escaping),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
