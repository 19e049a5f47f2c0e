/* plctl-logs.c: the verbs that read what the daemon records: logs (the
 * main process's output, ndjson from GET /containers/{id}/logs), stats
 * (sampled from GET /containers/{id}/stats) and events (GET /events).
 * With --json the streamed verbs print the daemon's lines as they come
 * (one JSON document per line); stats --no-stream prints one list. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/base/parse-util.h"
#include "common/json/json-util.h"
#include "plctl-internal.h"

/* --- logs --- */

typedef struct LogsOut {
        bool timestamps, json;
} LogsOut;

static int log_line(const char *line, size_t len, void *userdata, Error **err) {
        LogsOut *o = userdata;
        if (o->json) {
                printf("%s\n", line);
                fflush(stdout);
                return 0;
        }
        _cleanup_json_ json_t *j = json_loadb(line, len, 0, NULL);
        const char *data = json_string_value(json_object_get(j, "data"));
        if (!data)
                return error_set(err, EBADMSG, "the daemon sent a log line without data");
        FILE *f = strcmp(plctl_str(j, "stream"), "stderr") == 0 ? stderr : stdout;
        if (o->timestamps)
                fprintf(f, "%s ", plctl_str(j, "time"));
        fwrite(data, 1, json_string_length(json_object_get(j, "data")), f);
        fflush(f);
        return 0;
}

int plctl_logs_print(PlctlClient *c, const char *ref, bool follow, long tail, bool timestamps, bool json,
                     Error **err) {
        _cleanup_free_ char *base = plctl_path("/containers/%s/logs", ref);
        if (!base)
                return error_oom(err);
        char path[1024];
        snprintf(path, sizeof path, "%s?follow=%d", base, follow);
        if (tail >= 0)
                snprintf(path + strlen(path), sizeof path - strlen(path), "&tail=%ld", tail);
        LogsOut o = {timestamps, json};
        return MIN(plctl_stream_lines(c, "GET", path, NULL, log_line, &o, err), 0);
}

int plctl_verb_logs(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        static const struct option options[] = {{"follow", no_argument, NULL, 'f'},
                                                {"tail", required_argument, NULL, 'n'},
                                                {"timestamps", no_argument, NULL, 't'}, PLCTL_COMMON_OPTIONS, {}};
        bool follow = false, timestamps = false;
        long tail = -1;
        int opt, r, v;
        while ((opt = getopt_long(argc, argv, "fn:th", options, NULL)) >= 0)
                if (opt == 'f' || opt == 't')
                        *(opt == 'f' ? &follow : &timestamps) = true;
                else if (opt == 'n') {
                        if (safe_atoi(optarg, &v) < 0 || v < 0)
                                return plctl_usage("logs: bad --tail: %s", optarg);
                        tail = v;
                } else if ((r = plctl_common_option(p, opt, "logs", argv)) >= 0)
                        return r;
        if (argc - optind != 1)
                return plctl_usage("logs: name one container");
        _cleanup_error_ Error *e = NULL;
        PlctlClient *c;
        if (plctl_connect(p, &c, &e) < 0 || plctl_logs_print(c, argv[optind], follow, tail, timestamps, p->json, &e) < 0)
                return plctl_fail(e);
        return 0;
}

/* --- stats --- */

static json_int_t num(json_t *j, const char *a, const char *b) {
        return json_integer_value(json_object_get(json_object_get(j, a), b));
}

static int stats_get(PlctlClient *c, const char *ref, json_t **ret, Error **err) {
        _cleanup_free_ char *path = plctl_path("/containers/%s/stats", ref);
        if (!path)
                return error_oom(err);
        int r = plctl_call(c, "GET", path, NULL, ret, err);
        if (r >= 0 && !*ret)
                return error_set(err, EBADMSG, "the daemon sent empty stats");
        return MIN(r, 0);
}

static void human_bytes(double v, char *out, size_t size) {
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        size_t u = 0;
        while (v >= 1024 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024;
                u++;
        }
        snprintf(out, size, u ? "%.1f%s" : "%.0f%s", v, units[u]);
}

/* One row; prev (optional) is the previous sample, for the CPU share. */
static void stats_row(const char *ref, json_t *s, json_t *prev) {
        char cpu[16] = "-", used[16], total[16], rd[16], wr[16];
        if (prev) {
                double dt = (double) (json_integer_value(json_object_get(s, "read_ns")) -
                                      json_integer_value(json_object_get(prev, "read_ns")));
                double dc = (double) (num(s, "host", "cpu_time_ns") - num(prev, "host", "cpu_time_ns"));
                if (dt > 0)
                        snprintf(cpu, sizeof cpu, "%.1f%%", 100.0 * dc / dt);
        }
        double mu = (double) num(s, "guest", "mem_used_kib"), mt = (double) num(s, "guest", "mem_total_kib");
        human_bytes(mu * 1024, used, sizeof used);
        human_bytes(mt * 1024, total, sizeof total);
        human_bytes((double) num(s, "block", "read_bytes"), rd, sizeof rd);
        human_bytes((double) num(s, "block", "write_bytes"), wr, sizeof wr);
        printf("%-20.20s  %7s  %9s / %-9s  %6.1f%%  %9s / %-9s  %" JSON_INTEGER_FORMAT "\n", ref, cpu, used, total,
               mt > 0 ? 100.0 * mu / mt : 0.0, rd, wr, num(s, "guest", "processes"));
}

static void stats_header(void) {
        printf("%-20s  %7s  %21s  %7s  %21s  %s\n", "CONTAINER", "CPU %", "MEM USAGE / LIMIT", "MEM %",
               "BLOCK I/O", "PIDS");
}

int plctl_verb_stats(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        static const struct option options[] = {{"no-stream", no_argument, NULL, 'N'}, PLCTL_COMMON_OPTIONS, {}};
        bool stream = true;
        int opt, r;
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                if (opt == 'N')
                        stream = false;
                else if ((r = plctl_common_option(p, opt, "stats", argv)) >= 0)
                        return r;
        int n = argc - optind;
        if (n < 1 || n > 256)
                return plctl_usage("stats: name 1 to 256 containers");
        _cleanup_error_ Error *e = NULL;
        PlctlClient *c;
        if (plctl_connect(p, &c, &e) < 0)
                return plctl_fail(e);
        json_t *prev[256] = {0};
        int status = 0;
        for (unsigned round = 0; status == 0; round++) {
                _cleanup_json_ json_t *list = json_array();
                if (!p->json && round == 0)
                        stats_header();
                for (int i = 0; i < n && status == 0; i++) {
                        json_t *s = NULL;
                        if (stats_get(c, argv[optind + i], &s, &e) < 0) {
                                status = plctl_fail(e);
                                break;
                        }
                        if (p->json && stream) {
                                json_dumpf(s, stdout, JSON_COMPACT);
                                putchar('\n');
                        } else if (p->json)
                                json_array_append(list, s);
                        else if (stream || prev[i])
                                stats_row(argv[optind + i], s, prev[i]);
                        json_decref(prev[i]);
                        prev[i] = s;
                }
                fflush(stdout);
                if (status || (!stream && round == 1)) {
                        if (status == 0 && p->json)
                                plctl_print_json(list);
                        break;
                }
                /* --no-stream samples twice, half a second apart, for the CPU share */
                usleep(stream ? 1000 * 1000 : 500 * 1000);
        }
        for (int i = 0; i < n; i++)
                json_decref(prev[i]);
        return status;
}

/* --- events --- */

static int event_line(const char *line, size_t len, void *userdata, Error **err) {
        const bool *json = userdata;
        if (*json) {
                printf("%s\n", line);
                fflush(stdout);
                return 0;
        }
        _cleanup_json_ json_t *j = json_loadb(line, len, 0, NULL);
        if (!j)
                return error_set(err, EBADMSG, "the daemon sent an event that is not JSON");
        json_int_t ns = json_integer_value(json_object_get(j, "time_ns"));
        time_t t = (time_t) (ns / 1000000000);
        struct tm tm;
        char when[32] = "";
        if (gmtime_r(&t, &tm))
                strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        char id[13];
        plctl_short_id(plctl_str(j, "id"), id);
        printf("%" JSON_INTEGER_FORMAT "  %s.%09" JSON_INTEGER_FORMAT "Z  %-8s %s (%s)", json_integer_value(json_object_get(j, "seq")),
               when, ns % 1000000000, plctl_str(j, "action"), plctl_str(j, "name"), id);
        if (strcmp(plctl_str(j, "action"), "die") == 0)
                printf(" exit_code=%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(j, "exit_code")));
        putchar('\n');
        fflush(stdout);
        return 0;
}

int plctl_verb_events(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        static const struct option options[] = {{"since", required_argument, NULL, 'S'},
                                                {"no-follow", no_argument, NULL, 'N'}, PLCTL_COMMON_OPTIONS, {}};
        uint64_t since = 0;
        bool follow = true;
        int opt, r;
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                if (opt == 'S') {
                        if (safe_atou64(optarg, &since) < 0)
                                return plctl_usage("events: bad --since (an event number): %s", optarg);
                } else if (opt == 'N')
                        follow = false;
                else if ((r = plctl_common_option(p, opt, "events", argv)) >= 0)
                        return r;
        if (optind != argc)
                return plctl_usage("events: unexpected argument: %s", argv[optind]);
        char path[128];
        snprintf(path, sizeof path, "/events?since=%" PRIu64 "&follow=%d", since, follow);
        _cleanup_error_ Error *e = NULL;
        PlctlClient *c;
        if (plctl_connect(p, &c, &e) < 0 || plctl_stream_lines(c, "GET", path, NULL, event_line, &p->json, &e) < 0)
                return plctl_fail(e);
        return 0;
}
