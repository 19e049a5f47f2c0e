/* portlayerd.c: the port layer daemon's main: options, signals, and the
 * daemon (daemon.c) until SIGINT or SIGTERM. Running containers keep running
 * when it stops; the next start reattaches to them. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base/log.h"
#include "portlayer/daemon/daemon.h"

static void usage(FILE *f) {
        fputs("usage: portlayerd [OPTIONS]\n"
              "\n"
              "Serves the port layer's REST API: containers as microVMs.\n"
              "\n"
              "  --config FILE             settings file (default " DAEMON_DEFAULT_CONFIG ", if present)\n"
              "  --state-dir DIR           records, disks, VMs (default " DAEMON_DEFAULT_STATE_DIR ")\n"
              "  --socket PATH             the API's Unix socket (default " DAEMON_DEFAULT_SOCKET ")\n"
              "  --docker-socket PATH      the Docker API's socket (default: docker.sock beside --socket,\n"
              "                            so " DAEMON_DEFAULT_DOCKER_SOCKET "); none: no Docker API\n"
              "  --libvirt-uri URI         default: the embedded QEMU driver under the state dir\n"
              "  --guest-kernel PATH       default: ours (scripts/build-kernel.sh) when built, else\n"
              "                            Debian's (scripts/fetch-kernel.sh), from /var/cache/portlayer\n"
              "  --guest-initrd PATH       default: built from the agent and the kernel's modules\n"
              "  --agent PATH              the guest agent for that initramfs (default: beside portlayerd)\n"
              "  --image-store DIR         default: <state-dir>/images\n"
              "  --accel auto|kvm|tcg      default auto (KVM when really usable)\n"
              "  --insecure-registries L   host:port,... reached over plain HTTP (loopback always is)\n"
              "  --boot-timeout SECONDS    how long a guest may take to answer (default 60)\n"
              "  --transport T             auto (vsock where /dev/vhost-vsock opens), vsock, virtio-serial\n"
              "  --log-max-size SIZE       rotate a container's main.log past SIZE (default 16M)\n"
              "  --log-max-files N         rotated logs kept per container (default 2)\n"
              "  --tls-listen ADDR:PORT    also serve remote clients over TLS there (off by default;\n"
              "                            client certificates from <state-dir>/tls/trust)\n"
              "  --log-level LEVEL         error, warning, info (default), debug\n"
              "  --pool-size N             pre-booted guests kept ready for fast starts (default 2, 0-16)\n"
              "  --cold-start              no pre-booted guests: every container start boots its VM\n"
              "  --tcg-tb-cache SIZE       TCG's translation cache per VM (default 16M; 0: QEMU's 1G)\n"
              "  --free-page-reporting B   guests hand freed memory back to the host (default true)\n"
              "  --network-mode MODE       bridge (default: a bridge, taps, nftables; needs root) or user\n"
              "  --network-subnet CIDR     the default network's subnet when first made (10.88.0.0/16)\n"
              "  --uid-range FIRST-LAST    container VMs' uids, one each (default " DAEMON_DEFAULT_UID_RANGE ")\n"
              "  --allow-root-qemu         run QEMU as root where no uid per container is possible\n"
              "  --help, --version\n",
              f);
}

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
        stop_signal = sig;
}

static int parse_args(int argc, char **argv, DaemonConfig *cfg) {
        static const struct option opts[] = {
                {"config", required_argument, NULL, 'c'},       {"state-dir", required_argument, NULL, 0},
                {"socket", required_argument, NULL, 0},         {"libvirt-uri", required_argument, NULL, 0},
                {"guest-kernel", required_argument, NULL, 0},   {"guest-initrd", required_argument, NULL, 0},
                {"agent", required_argument, NULL, 0},          {"image-store", required_argument, NULL, 0},
                {"accel", required_argument, NULL, 0},          {"insecure-registries", required_argument, NULL, 0},
                {"boot-timeout", required_argument, NULL, 0},   {"log-level", required_argument, NULL, 0},
                {"transport", required_argument, NULL, 0},     {"log-max-size", required_argument, NULL, 0},
                {"log-max-files", required_argument, NULL, 0},  {"tls-listen", required_argument, NULL, 0},
                {"pool-size", required_argument, NULL, 0},     {"cold-start", no_argument, NULL, 0},
                {"network-mode", required_argument, NULL, 0},   {"network-subnet", required_argument, NULL, 0},
                {"docker-socket", required_argument, NULL, 0},  {"tcg-tb-cache", required_argument, NULL, 0},
                {"free-page-reporting", required_argument, NULL, 0},
                {"uid-range", required_argument, NULL, 0},      {"allow-root-qemu", no_argument, NULL, 0},
                {"help", no_argument, NULL, 'h'},               {"version", no_argument, NULL, 'V'},
                {},
        };
        /* The config file first, so the command line overrides it. */
        const char *config = NULL;
        for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
                        config = argv[i + 1];
                else if (strncmp(argv[i], "--config=", 9) == 0)
                        config = argv[i] + 9;
        _cleanup_error_ Error *e = NULL;
        if (daemon_config_load(cfg, config ? config : DAEMON_DEFAULT_CONFIG, config != NULL, &e) < 0) {
                fprintf(stderr, "portlayerd: %s\n", error_text(e));
                return 1;
        }
        int o, idx;
        while ((o = getopt_long(argc, argv, "h", opts, &idx)) >= 0)
                switch (o) {
                case 0:
                        if (daemon_config_set(cfg, opts[idx].name, optarg ? optarg : "true", &e) < 0) {
                                fprintf(stderr, "portlayerd: --%s\n", error_text(e));
                                return 2;
                        }
                        break;
                case 'c':
                        break;
                case 'h':
                        usage(stdout);
                        exit(0);
                case 'V':
                        puts("portlayerd " PL_VERSION);
                        exit(0);
                default:
                        usage(stderr);
                        return 2;
                }
        if (optind < argc) {
                fprintf(stderr, "portlayerd: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if ((!cfg->state_dir && !(cfg->state_dir = strdup(DAEMON_DEFAULT_STATE_DIR))) ||
            (!cfg->socket && !(cfg->socket = strdup(DAEMON_DEFAULT_SOCKET))))
                return 1;
        return 0;
}

int main(int argc, char **argv) {
        log_setup("portlayerd", LOG_LEVEL_INFO, STDERR_FILENO);
        DaemonConfig cfg;
        daemon_config_init(&cfg);
        int r = parse_args(argc, argv, &cfg);
        if (r != 0) {
                daemon_config_clear(&cfg);
                return r;
        }
        if (cfg.log_level)
                log_set_level((LogLevel) log_level_from_string(cfg.log_level));
        signal(SIGPIPE, SIG_IGN);
        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        self[n > 0 ? n : 0] = 0;
        _cleanup_error_ Error *e = NULL;
        Daemon *d = NULL;
        if (daemon_start(&cfg, self, &d, &e) < 0) {
                log_error("%s", error_text(e));
                daemon_config_clear(&cfg);
                return 1;
        }
        log_info("serving on %s (state in %s)", cfg.socket, cfg.state_dir);
        while (!stop_signal)
                pause();
        log_info("stopping (signal %d): running containers keep running", (int) stop_signal);
        daemon_stop(d);
        daemon_config_clear(&cfg);
        return 0;
}
