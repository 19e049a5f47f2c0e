/* plctl-host.c: the host behind the containers: `vm ls` (the libvirt
 * domains of running containers, GET /vms) and `gc` (orphans: GET /gc
 * lists them, POST /gc with --remove removes them). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json/json-util.h"
#include "plctl-internal.h"

static int vm_ls(Plctl *p, PlctlClient *c, int n) {
        if (n != 1)
                return plctl_usage("vm ls: takes no arguments");
        _cleanup_error_ Error *e = NULL;
        _cleanup_json_ json_t *list = NULL;
        if (plctl_call(c, "GET", "/vms", NULL, &list, &e) < 0)
                return plctl_fail(e);
        if (p->json) {
                plctl_print_json(list);
                return 0;
        }
        printf("%-20s  %-16s  %-8s  %-5s  %6s  %5s  %-13s  %8s  %10s  %s\n", "DOMAIN", "CONTAINER", "STATE", "ACCEL",
               "MEM MB", "VCPUS", "TRANSPORT", "QEMU PID", "PSS MiB", "DISKS / CONSOLE LOG");
        size_t i, k;
        json_t *v, *d;
        json_array_foreach(list, i, v) {
                json_int_t pss = json_integer_value(json_object_get(v, "pss_kib"));
                char pss_s[32] = "-";
                if (pss >= 0)
                        snprintf(pss_s, sizeof pss_s, "%.1f", (double) pss / 1024.0);
                printf("%-20s  %-16.16s  %-8s  %-5s  %6lld  %5lld  %-13s  %8lld  %10s  ", plctl_str(v, "domain"),
                       plctl_str(v, "name"), plctl_str(v, "state"), plctl_str(v, "accelerator"),
                       (long long) json_integer_value(json_object_get(v, "memory_mb")),
                       (long long) json_integer_value(json_object_get(v, "vcpus")), plctl_str(v, "transport"),
                       (long long) json_integer_value(json_object_get(v, "qemu_pid")), pss_s);
                json_array_foreach(json_object_get(v, "disks"), k, d)
                        printf("%s ", json_string_value(d));
                printf("%s\n", plctl_str(v, "console_log"));
        }
        return 0;
}

int plctl_verb_vm(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        char *args[argc + 1];
        int n = 0;
        for (int i = 1; i < argc; i++)
                args[n++] = argv[i];
        int r = plctl_group_args(p, "vm", &n, args);
        if (r >= 0)
                return r;
        if (strcmp(args[0], "ls") != 0)
                return plctl_usage("vm: unknown command: %s", args[0]);
        _cleanup_error_ Error *e = NULL;
        PlctlClient *c;
        if (plctl_connect(p, &c, &e) < 0)
                return plctl_fail(e);
        return vm_ls(p, c, n);
}

int plctl_verb_gc(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        static const struct option options[] = {{"remove", no_argument, NULL, 'r'}, PLCTL_COMMON_OPTIONS, {}};
        bool remove = false;
        int opt, r;
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                if (opt == 'r')
                        remove = true;
                else if ((r = plctl_common_option(p, opt, "gc", argv)) >= 0)
                        return r;
        if (optind != argc)
                return plctl_usage("gc: takes no arguments");
        _cleanup_error_ Error *e = NULL;
        _cleanup_json_ json_t *list = NULL;
        PlctlClient *c;
        if (plctl_connect(p, &c, &e) < 0 || plctl_call(c, remove ? "POST" : "GET", "/gc", NULL, &list, &e) < 0)
                return plctl_fail(e);
        if (p->json) {
                plctl_print_json(list);
                return 0;
        }
        if (json_array_size(list) == 0) {
                printf("no orphans\n");
                return 0;
        }
        printf("%-13s  %-11s  %-20s  %s\n", "KIND", "ACTION", "NAME", "PATH");
        size_t i;
        json_t *o;
        json_array_foreach(list, i, o)
                printf("%-13s  %-11s  %-20s  %s\n", plctl_str(o, "kind"), plctl_str(o, "action"), plctl_str(o, "name"),
                       plctl_str(o, "path"));
        if (!remove)
                printf("(plctl gc --remove removes them)\n");
        return 0;
}
