/* pl-initramfs.c: builds (or finds) the guest initramfs and prints its path.
 *
 *   pl-initramfs --agent PATH --kernel-dir DIR [--cache DIR] [--module NAME]...
 *
 * --kernel-dir is what scripts/fetch-kernel.sh printed (or a modules directory
 * holding modules.dep). Without --module the guest's usual modules are packed:
 * virtio_pci virtio_blk virtio_console virtio_rng vmw_vsock_virtio_transport
 * virtio_net virtiofs, with their dependencies; --no-modules packs none. --cache defaults to
 * ${PL_CACHE:-/var/cache/portlayer}/initramfs. Errors are printed once and
 * exit 1. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/error.h"
#include "common/base/log.h"
#include "common/base/verbs.h"
#include "images/boot/initramfs.h"
#include "images/boot/kernel-modules.h"

#define MAX_MODULE_ARGS 64

typedef struct Args {
        const char *agent;
        const char *kernel_dir;
        const char *cache;
        const char *modules[MAX_MODULE_ARGS + 1];
        size_t n_modules;
        bool no_modules;
} Args;

static void usage(FILE *f) {
        fprintf(f,
                "usage: pl-initramfs --agent PATH --kernel-dir DIR [options]\n"
                "  --agent PATH       the guest agent binary, packed as /init\n"
                "  --kernel-dir DIR   unpacked kernel (scripts/fetch-kernel.sh) or modules directory\n"
                "  --cache DIR        output directory (default $PL_CACHE/initramfs,\n"
                "                     PL_CACHE defaulting to /var/cache/portlayer)\n"
                "  --module NAME      pack this module and its dependencies (repeatable;\n"
                "                     default: virtio_pci virtio_blk virtio_console virtio_rng\n"
                "                     vmw_vsock_virtio_transport virtio_net virtiofs)\n"
                "  --no-modules       pack no modules at all\n"
                "  --log-level LEVEL  error, warning, info (default) or debug\n"
                "  --help, --version\n");
}

static int parse_args(int argc, char **argv, Args *a) {
        static const struct option opts[] = {
                {"agent", required_argument, NULL, 'a'},      {"kernel-dir", required_argument, NULL, 'k'},
                {"cache", required_argument, NULL, 'c'},      {"module", required_argument, NULL, 'm'},
                {"no-modules", no_argument, NULL, 'n'},       {"log-level", required_argument, NULL, 'l'},
                {"help", no_argument, NULL, 'h'},             {"version", no_argument, NULL, 'V'},
                {},
        };
        int o, level;
        while ((o = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (o) {
                case 'a': a->agent = optarg; break;
                case 'k': a->kernel_dir = optarg; break;
                case 'c': a->cache = optarg; break;
                case 'n': a->no_modules = true; break;
                case 'm':
                        if (a->n_modules >= MAX_MODULE_ARGS)
                                return log_error_errno(E2BIG, "more than %d --module options", MAX_MODULE_ARGS);
                        a->modules[a->n_modules++] = optarg;
                        break;
                case 'l':
                        if ((level = log_level_from_string(optarg)) < 0)
                                return log_error_errno(EINVAL, "invalid log level '%s'", optarg);
                        log_set_level((LogLevel) level);
                        break;
                case 'h': usage(stdout); exit(EXIT_SUCCESS);
                case 'V': version_print(); exit(EXIT_SUCCESS);
                default: usage(stderr); return -EINVAL;
                }
        if (optind < argc)
                return log_error_errno(EINVAL, "unexpected argument '%s'", argv[optind]);
        if (!a->agent || (!a->kernel_dir && !a->no_modules))
                return log_error_errno(EINVAL, "--agent and --kernel-dir are required (see --help)");
        if (a->no_modules && a->n_modules > 0)
                return log_error_errno(EINVAL, "--module and --no-modules exclude each other");
        return 0;
}

/* The default cache directory: ${PL_CACHE:-/var/cache/portlayer}/initramfs. */
static char *default_cache(void) {
        const char *root = getenv("PL_CACHE");
        char *dir = NULL;
        if (asprintf(&dir, "%s/initramfs", root && root[0] ? root : "/var/cache/portlayer") < 0)
                return NULL;
        return dir;
}

static int build(const Args *a, char **ret_path, Error **err) {
        _cleanup_free_ char *modules_dir = NULL, *cache = NULL;
        if (!a->no_modules) {
                int r = kernel_modules_find_dir(a->kernel_dir, &modules_dir, err);
                if (r < 0)
                        return r;
        }
        if (!a->cache && !(cache = default_cache()))
                return error_oom(err);
        InitramfsSpec spec = {
                .agent_path = a->agent,
                .modules_dir = modules_dir,
                .modules = a->no_modules ? NULL : a->n_modules > 0 ? a->modules : initramfs_default_modules,
        };
        return initramfs_build(&spec, a->cache ? a->cache : cache, ret_path, err);
}

int main(int argc, char **argv) {
        log_setup("pl-initramfs", LOG_LEVEL_INFO, -1);
        Args a = {0};
        if (parse_args(argc, argv, &a) < 0)
                return EXIT_USAGE;
        _cleanup_error_ Error *e = NULL;
        _cleanup_free_ char *path = NULL;
        if (build(&a, &path, &e) < 0) {
                fprintf(stderr, "pl-initramfs: %s\n", error_text(e));
                return EXIT_FAILURE;
        }
        puts(path);
        return EXIT_SUCCESS;
}
