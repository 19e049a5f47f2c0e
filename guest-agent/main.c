/* main.c: the pl-agent command line.
 *
 * Host mode (tests, development):  pl-agent --unix PATH --root DIR
 * As PID 1 in a guest it takes no arguments: settings come from the kernel
 * command line (see init.h), stage 1 prepares the guest, and the agent serves
 * the virtio-serial port (and vsock when present) chrooted into the
 * container's root. PID 1 never returns: on a fatal error it powers off. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base/log.h"
#include "common/base/parse-util.h"
#include "common/base/verbs.h"
#include "guest-agent/agent.h"
#include "guest-agent/init.h"

static void usage(FILE *f) {
        fprintf(f,
                "usage: pl-agent [options]\n"
                "  --unix PATH        serve on a Unix socket (host mode)\n"
                "  --serial DEVICE    serve on a virtio-serial port device\n"
                "  --vsock PORT       serve on a vsock port (inside a guest only)\n"
                "  --vsock-allow-local  serve vsock peers other than the host too\n"
                "  --root DIR         container root (default /)\n"
                "  --chroot           run processes chrooted into the root\n"
                "  --allow-network    let setup configure NICs (host mode: only inside a network\n"
                "                     namespace of its own, never the host's)\n"
                "  --log-level LEVEL  error, warning, info (default) or debug\n"
                "  --help, --version\n");
}

/* Makes sure fds 0, 1 and 2 are open, so that no pipe we create lands there. */
static void ensure_std_fds(void) {
        for (int fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) < 0)
                        (void) open("/dev/null", O_RDWR);
}

static int parse_args(int argc, char **argv, AgentConfig *c) {
        static const struct option opts[] = {
                {"unix", required_argument, NULL, 'u'},   {"serial", required_argument, NULL, 's'},
                {"vsock", required_argument, NULL, 'v'},  {"root", required_argument, NULL, 'r'},
                {"vsock-allow-local", no_argument, NULL, 'L'}, {"allow-network", no_argument, NULL, 'N'},
                {"chroot", no_argument, NULL, 'c'},       {"log-level", required_argument, NULL, 'l'},
                {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
                {},
        };
        int o, level;
        while ((o = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (o) {
                case 'u': c->unix_path = optarg; break;
                case 's': c->serial_path = optarg; break;
                case 'r': c->root = optarg; break;
                case 'c': c->chroot = true; break;
                case 'L': c->vsock_allow_local = true; break;
                case 'N': c->allow_network = true; break;
                case 'v':
                        if (safe_atou32(optarg, &c->vsock_port) < 0 || c->vsock_port == 0)
                                return log_error_errno(EINVAL, "invalid vsock port '%s'", optarg);
                        break;
                case 'l':
                        if ((level = log_level_from_string(optarg)) < 0)
                                return log_error_errno(EINVAL, "invalid log level '%s'", optarg);
                        log_set_level((LogLevel) level);
                        break;
                case 'h': usage(stdout); exit(EXIT_SUCCESS);
                case 'V': puts("pl-agent " AGENT_VERSION); exit(EXIT_SUCCESS);
                default: usage(stderr); return -EINVAL;
                }
        if (optind < argc)
                return log_error_errno(EINVAL, "unexpected argument '%s'", argv[optind]);
        return 0;
}

/* Builds the agent configuration from stage 1; boot_error keeps what failed
 * for guest info (stage 1 errors short of "no port" still let us serve), and
 * grow_error why the root filesystem could not be grown (the boot goes on). */
static int pid1_configure(AgentConfig *config, char **ret_port, char **ret_boot_error, char **ret_grow_error) {
        _cleanup_free_ char *cmdline = NULL;
        _cleanup_error_ Error *e = NULL;
        static InitConfig ic; /* a pool guest's activate starts from it */
        int r = init_early(&cmdline, &e);
        if (r >= 0)
                r = init_config_parse(cmdline, &ic, &e);
        if (r < 0) {
                log_error("stage 1: %s", error_text(e));
                return r;
        }
        if (ic.debug)
                log_set_level(LOG_LEVEL_DEBUG);
        r = init_stage1(&ic, ret_port, ret_grow_error, &e);
        if (r < 0) {
                log_error("stage 1: %s", error_text(e));
                if (!*ret_port)
                        return r;
                *ret_boot_error = strdup(error_text(e));
        }
        bool rooted = r >= 0 && !ic.pool;
        *config = (AgentConfig){.root = rooted ? INIT_ROOT_MOUNT : "/", .chroot = rooted, .pid1 = true, .allow_network = true,
                                .serial_path = *ret_port, .boot_error = *ret_boot_error,
                                .root_grow_error = *ret_grow_error,
                                .vsock_port = access("/dev/vsock", F_OK) == 0 ? ic.vsock_port : 0,
                                .vsock_allow_local = ic.vsock_local, .pool = ic.pool && r >= 0 ? &ic : NULL};
        return 0;
}

_noreturn_ static void pid1_main(void) {
        log_setup("pl-agent", LOG_LEVEL_INFO, STDERR_FILENO);
        AgentConfig config;
        char *port = NULL, *boot_error = NULL, *grow_error = NULL;
        _cleanup_error_ Error *e = NULL;
        Agent *a = NULL;
        if (pid1_configure(&config, &port, &boot_error, &grow_error) >= 0) {
                if (agent_new(&a, &config, &e) < 0 && config.vsock_port) {
                        /* vsock is a bonus: retry without it before giving up. */
                        log_warning("%s; serving without vsock", error_text(e));
                        e = error_free(e);
                        config.vsock_port = 0;
                        (void) agent_new(&a, &config, &e);
                }
                if (a) {
                        log_info("pl-agent %s as PID 1: serving %s%s", AGENT_VERSION, port,
                                 config.vsock_port ? " and vsock" : "");
                        agent_run(a);
                } else
                        log_error("%s", error_text(e));
        }
        log_error("PID 1 cannot reach the host: powering off");
        init_poweroff();
}

int main(int argc, char **argv) {
        ensure_std_fds();
        log_setup("pl-agent", LOG_LEVEL_INFO, STDERR_FILENO);
        AgentConfig config = {.exit_on_shutdown = true};
        if (parse_args(argc, argv, &config) < 0)
                return EXIT_USAGE;
        if (getpid() == 1)
                pid1_main();

        _cleanup_error_ Error *e = NULL;
        Agent *a = NULL;
        if (agent_new(&a, &config, &e) < 0) {
                log_error("%s", error_text(e));
                return EXIT_FAILURE;
        }
        log_info("pl-agent %s serving%s%s%s%s root %s", AGENT_VERSION, config.unix_path ? " unix:" : "",
                 config.unix_path ? config.unix_path : "", config.serial_path ? " serial:" : "",
                 config.serial_path ? config.serial_path : "", config.root ? config.root : "/");
        int r = agent_run(a);
        agent_free(a);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
