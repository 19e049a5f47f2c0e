/* daemon.c: portlayerd's configuration and start-up order (see daemon.h).
 *
 * Order: state directory, image store, registry client, guest kernel and
 * initramfs, VM driver (its event thread), networks (bridges and the nft
 * table of the state on disk), container host (loads records and
 * reconciles with the driver's VMs and the networks), then the REST socket: the socket exists
 * only once the daemon can answer correctly. Stop goes in reverse. */
#include "daemon-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/base/parse-util.h"
#include "images/boot/initramfs.h"
#include "images/boot/kernel-modules.h"
#include "images/registry/registry.h"
#include "images/store/store.h"
#include "common/tls/tls-util.h"
#include "portlayer/api/api.h"
#include "portlayer/docker/docker.h"
#include "portlayer/api/tls-server.h"
#include "portlayer/container/container.h"
#include "portlayer/volume/volume.h"

#define CONFIG_FILE_MAX (64u << 10)

struct Daemon {
        Store *store;
        VolumeStore *volumes;
        RegistryClient *registry;
        VmDriver *driver;
        NetworkHost *network;
        ContainerHost *host;
        Api *api;
        HttpServer *http;
        Docker *docker;
        HttpServer *docker_http;
        TlsServer *tls;
        char **insecure;
        size_t n_insecure;
};

const char *const daemon_config_keys[] = {
        "state-dir",  "socket",       "libvirt-uri",         "guest-kernel", "guest-initrd",  "agent",
        "image-store", "accel",       "insecure-registries", "boot-timeout", "transport",     "log-max-size",
        "log-max-files", "log-level", "tls-listen", "network-mode", "network-subnet", "docker-socket", "uid-range",
        "allow-root-qemu", "pool-size", "cold-start", "tcg-tb-cache", "free-page-reporting", NULL,
};

void daemon_config_init(DaemonConfig *c) {
        *c = (DaemonConfig){.boot_timeout_s = 60, .log_max_size = CONTAINER_LOG_MAX_SIZE_DEFAULT,
                            .log_max_files = CONTAINER_LOG_MAX_FILES_DEFAULT, .pool_size = DAEMON_POOL_SIZE_DEFAULT,
                            .tcg_tb_cache_mib = DAEMON_TCG_TB_CACHE_MIB_DEFAULT, .free_page_reporting = true};
}

void daemon_config_clear(DaemonConfig *c) {
        char **fields[] = {&c->state_dir, &c->socket, &c->docker_socket, &c->libvirt_uri, &c->guest_kernel, &c->guest_initrd,
                           &c->agent, &c->image_store, &c->accel, &c->log_level, &c->insecure_registries,
                           &c->transport, &c->tls_listen, &c->network_mode, &c->network_subnet,
                           &c->uid_range};
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                *fields[i] = mfree(*fields[i]);
}

static int set_string(char **field, const char *value, Error **err) {
        char *v = strdup(value);
        if (!v)
                return error_oom(err);
        free(*field);
        *field = v;
        return 0;
}

int daemon_config_set(DaemonConfig *c, const char *key, const char *value, Error **err) {
        const struct {
                const char *key;
                char **field;
                bool path;
        } strings[] = {
                {"state-dir", &c->state_dir, true},       {"socket", &c->socket, true},
                {"libvirt-uri", &c->libvirt_uri, false},  {"guest-kernel", &c->guest_kernel, true},
                {"guest-initrd", &c->guest_initrd, true}, {"agent", &c->agent, true},
                {"image-store", &c->image_store, true},   {"accel", &c->accel, false},
                {"log-level", &c->log_level, false},      {"insecure-registries", &c->insecure_registries, false},
                {"transport", &c->transport, false},      {"tls-listen", &c->tls_listen, false},
                {"docker-socket", &c->docker_socket, false},
                {"network-mode", &c->network_mode, false}, {"network-subnet", &c->network_subnet, false},
                {"uid-range", &c->uid_range, false},
        };
        for (size_t i = 0; i < ELEMENTSOF(strings); i++) {
                if (strcmp(strings[i].key, key) != 0)
                        continue;
                if (strings[i].path && value[0] != '/')
                        return error_set(err, EINVAL, "%s: '%s' is not an absolute path", key, value);
                if (strcmp(key, "docker-socket") == 0 && value[0] != '/' && strcmp(value, "none") != 0)
                        return error_set(err, EINVAL, "docker-socket: '%s' is neither an absolute path nor none", value);
                if (strcmp(key, "accel") == 0 && vm_accel_from_string(value) < 0)
                        return error_set(err, EINVAL, "accel: '%s' is not auto, kvm or tcg", value);
                if (strcmp(key, "transport") == 0 && strcmp(value, "auto") != 0 && strcmp(value, "vsock") != 0 &&
                    strcmp(value, "virtio-serial") != 0)
                        return error_set(err, EINVAL, "transport: '%s' is not auto, vsock or virtio-serial", value);
                if (strcmp(key, "network-mode") == 0 && network_mode_from_string(value) < 0)
                        return error_set(err, EINVAL, "network-mode: '%s' is not bridge or user", value);
                if (strcmp(key, "network-subnet") == 0 && network_subnet_validate(value, NULL) < 0)
                        return error_set(err, EINVAL, "network-subnet: '%s' is not an IPv4 subnet (a.b.c.0/8-30)",
                                         value);
                if (strcmp(key, "uid-range") == 0 && container_uid_range_parse(value, NULL, NULL) < 0)
                        return error_set(err, EINVAL, "uid-range: '%s' is not FIRST-LAST (65536-2147483646)", value);
                if (strcmp(key, "log-level") == 0 && log_level_from_string(value) < 0)
                        return error_set(err, EINVAL, "log-level: '%s' is not error, warning, info or debug", value);
                return set_string(strings[i].field, value, err);
        }
        if (strcmp(key, "allow-root-qemu") == 0) {
                bool yes = strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 || strcmp(value, "1") == 0;
                if (!yes && strcmp(value, "false") != 0 && strcmp(value, "no") != 0 && strcmp(value, "0") != 0)
                        return error_set(err, EINVAL, "allow-root-qemu: '%s' is not true or false", value);
                c->allow_root_qemu = yes;
                return 0;
        }
        if (strcmp(key, "boot-timeout") == 0) {
                int v;
                if (safe_atoi(value, &v) < 0 || v < 1 || v > 3600)
                        return error_set(err, EINVAL, "boot-timeout: '%s' is not a number of seconds (1-3600)", value);
                c->boot_timeout_s = v;
                return 0;
        }
        if (strcmp(key, "log-max-size") == 0) {
                uint64_t v;
                if (parse_size(value, &v) < 0 || v < 4096)
                        return error_set(err, EINVAL, "log-max-size: '%s' is not a size of at least 4K (like 16M)", value);
                c->log_max_size = v;
                return 0;
        }
        if (strcmp(key, "log-max-files") == 0) {
                int v;
                if (safe_atoi(value, &v) < 0 || v < 1 || v > CONTAINER_LOG_MAX_FILES_MAX)
                        return error_set(err, EINVAL, "log-max-files: '%s' is not a number of files (1-%d)", value,
                                         CONTAINER_LOG_MAX_FILES_MAX);
                c->log_max_files = (unsigned) v;
                return 0;
        }
        if (strcmp(key, "pool-size") == 0) {
                int v;
                if (safe_atoi(value, &v) < 0 || v < 0 || v > CONTAINER_POOL_MAX)
                        return error_set(err, EINVAL, "pool-size: '%s' is not a number of guests (0-%d)", value,
                                         CONTAINER_POOL_MAX);
                c->pool_size = (unsigned) v;
                return 0;
        }
        if (strcmp(key, "tcg-tb-cache") == 0) {
                uint64_t v;
                if (parse_size(value, &v) < 0 || v % (1u << 20) != 0 || (v >> 20) > VM_TB_CACHE_MIB_MAX)
                        return error_set(err, EINVAL,
                                         "tcg-tb-cache: '%s' is not a size in whole MiB up to %dM (0: QEMU's default)",
                                         value, VM_TB_CACHE_MIB_MAX);
                c->tcg_tb_cache_mib = (unsigned) (v >> 20);
                return 0;
        }
        if (strcmp(key, "free-page-reporting") == 0) {
                if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
                        return error_set(err, EINVAL, "free-page-reporting: '%s' is not true or false", value);
                c->free_page_reporting = strcmp(value, "true") == 0;
                return 0;
        }
        if (strcmp(key, "cold-start") == 0) {
                if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
                        return error_set(err, EINVAL, "cold-start: '%s' is not true or false", value);
                c->cold_start = strcmp(value, "true") == 0;
                return 0;
        }
        return error_set(err, EINVAL, "unknown setting '%s'", key);
}

static char *strip(char *s) {
        while (*s == ' ' || *s == '\t')
                s++;
        char *e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
                *--e = 0;
        return s;
}

int daemon_config_load(DaemonConfig *c, const char *path, bool required, Error **err) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_file_bounded(path, CONFIG_FILE_MAX, &text, &len);
        if (r == -ENOENT && !required)
                return 0;
        if (r < 0)
                return error_set_errno(err, -r, "config file %s", path);
        unsigned line = 0;
        char *save = NULL;
        for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                line++;
                char *s = strip(l);
                if (!*s || *s == '#')
                        continue;
                char *eq = strchr(s, '=');
                if (!eq)
                        return error_set(err, EINVAL, "%s:%u: expected 'key = value'", path, line);
                *eq = 0;
                r = daemon_config_set(c, strip(s), strip(eq + 1), err);
                if (r < 0)
                        return error_prefix(err, "%s:%u", path, line);
        }
        return 0;
}

/* The default guest kernel (ours when built, else Debian's: images/boot's
 * kernel_default_dir), and its directory. */
static int default_kernel(char **ret_kernel, char **ret_dir, Error **err) {
        int r = kernel_default_dir(NULL, ret_dir, err);
        if (r < 0)
                return r;
        return asprintf(ret_kernel, "%s/vmlinuz", *ret_dir) < 0 ? error_oom(err) : 0;
}

/* The initramfs: given, or built (once, content-addressed) from the agent
 * and the modules of the kernel's directory. */
static int guest_boot_files(const DaemonConfig *cfg, const char *self_exe, char **ret_kernel, char **ret_initrd,
                            Error **err) {
        _cleanup_free_ char *kdir = NULL, *agent = NULL, *modules = NULL, *cache = NULL;
        int r = 0;
        if (cfg->guest_kernel) {
                /* Its modules are looked for beside it (a fetch-kernel.sh
                 * or build-kernel.sh directory). */
                if (!(*ret_kernel = strdup(cfg->guest_kernel)) || !(kdir = strdup(cfg->guest_kernel)))
                        return error_oom(err);
                *strrchr(kdir, '/') = 0;
        } else if ((r = default_kernel(ret_kernel, &kdir, err)) < 0)
                return r;
        if (cfg->guest_initrd)
                return (*ret_initrd = strdup(cfg->guest_initrd)) ? 0 : error_oom(err);
        if (cfg->agent)
                agent = strdup(cfg->agent);
        else {
                _cleanup_free_ char *dir = strdup(self_exe);
                char *slash = dir ? strrchr(dir, '/') : NULL;
                if (slash)
                        *slash = 0;
                if (asprintf(&agent, "%s/pl-agent", slash ? dir : ".") < 0)
                        agent = NULL;
        }
        if (!agent || asprintf(&cache, "%s/initramfs", cfg->state_dir) < 0)
                return error_oom(err);
        if ((r = kernel_modules_find_dir(kdir, &modules, err)) < 0)
                return r;
        InitramfsSpec spec = {.agent_path = agent, .modules_dir = modules, .modules = initramfs_default_modules};
        r = initramfs_build(&spec, cache, ret_initrd, err);
        return r < 0 ? error_prefix(err, "guest initramfs") : 0;
}

static void on_vm_event(const VmEvent *ev, void *userdata) {
        Daemon *d = userdata;
        if (d->host)
                container_host_vm_event(d->host, ev);
}

static int open_registry(Daemon *d, const DaemonConfig *cfg, Error **err) {
        _cleanup_free_ char *list = cfg->insecure_registries ? strdup(cfg->insecure_registries) : NULL;
        char *save = NULL;
        for (char *t = list ? strtok_r(list, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
                char **n = realloc(d->insecure, (d->n_insecure + 1) * sizeof(char *));
                if (!n || !(n[d->n_insecure] = strdup(t)))
                        return error_oom(err);
                d->insecure = n;
                d->n_insecure++;
        }
        RegistryOptions ro = {.insecure_registries = (const char *const *) d->insecure,
                              .n_insecure_registries = d->n_insecure};
        return registry_client_new(&ro, &d->registry, err);
}

static int daemon_open_parts(Daemon *d, const DaemonConfig *cfg, const char *self_exe, Error **err) {
        _cleanup_free_ char *kernel = NULL, *initrd = NULL, *store_root = NULL, *qemu_user = NULL;
        uint32_t uid_first = 0, uid_count = 0;
        int r = daemon_qemu_identity(cfg, &uid_first, &uid_count, &qemu_user, err);
        if (r < 0 || (r = daemon_state_dir_prepare(cfg->state_dir, uid_count > 0, err)) < 0)
                return r;
        if (uid_count > 0 && !cfg->libvirt_uri)
                daemon_check_kvm_device("/dev/kvm");
        if (asprintf(&store_root, "%s/images", cfg->state_dir) < 0)
                return error_oom(err);
        if ((r = store_open(cfg->image_store ? cfg->image_store : store_root, &d->store, err)) < 0 ||
            (r = daemon_check_shared_dir(cfg->image_store ? cfg->image_store : store_root, uid_count > 0, err)) < 0 ||
            (r = open_registry(d, cfg, err)) < 0 || (r = guest_boot_files(cfg, self_exe, &kernel, &initrd, err)) < 0 ||
            (r = daemon_check_shared_input(kernel, uid_count > 0, err)) < 0 ||
            (r = daemon_check_shared_input(initrd, uid_count > 0, err)) < 0 ||
            (r = volume_store_open(cfg->state_dir, &d->volumes, err)) < 0)
                return r;
        r = vm_driver_open(&vm_driver_libvirt, &d->driver, cfg->libvirt_uri, cfg->libvirt_uri ? NULL : cfg->state_dir,
                           on_vm_event, d, err);
        if (r < 0)
                return error_prefix(err, "VM driver");
        NetworkHostConfig nc = {
                .state_dir = cfg->state_dir, .default_subnet = cfg->network_subnet, .manage_host = true,
                .mode = cfg->network_mode ? (NetworkMode) network_mode_from_string(cfg->network_mode)
                                          : NETWORK_MODE_BRIDGE,
        };
        r = network_host_open(&nc, &d->network, err);
        if (r < 0) {
                error_prefix(err, "networks (%s mode)", network_mode_to_string(nc.mode));
                return r;
        }
        ContainerHostConfig hc = {
                .network = d->network,
                .state_dir = cfg->state_dir, .driver = d->driver, .store = d->store, .volumes = d->volumes,
                .kernel = kernel,
                .initrd = initrd, .accel = cfg->accel ? (VmAccel) vm_accel_from_string(cfg->accel) : VM_ACCEL_AUTO,
                .boot_timeout_ms = cfg->boot_timeout_s * 1000, .transport = cfg->transport,
                .log_max_size = cfg->log_max_size, .log_max_files = cfg->log_max_files,
                .pool_size = cfg->cold_start ? 0 : cfg->pool_size,
                .tb_cache_mib = cfg->tcg_tb_cache_mib, .free_page_reporting = cfg->free_page_reporting,
                .uid_first = uid_first, .uid_count = uid_count, .qemu_user = qemu_user,
        };
        log_info("guest kernel %s, initramfs %s; QEMU runs as %s", kernel, initrd, qemu_user);
        return container_host_open(&hc, &d->host, err);
}

/* <state>/tls/ (0700): the server's key and certificate, made on the first
 * start (EC P-256, self-signed, 20 years), and the trust list. */
#define TLS_SERVER_DAYS (20 * 365)
static int tls_paths(const DaemonConfig *cfg, char **ret_dir, Error **err) {
        if (asprintf(ret_dir, "%s/tls", cfg->state_dir) < 0)
                return error_oom(err);
        int r = mkdir_p(*ret_dir, 0700);
        if (r < 0 || chmod(*ret_dir, 0700) < 0)
                return error_set_errno(err, r < 0 ? -r : errno, "create %s", *ret_dir);
        _cleanup_free_ char *key = NULL, *cert = NULL;
        char host[128] = "localhost", cn[TLS_NAME_MAX + 1];
        (void) gethostname(host, sizeof host - 1);
        snprintf(cn, sizeof cn, "portlayerd@%.48s", host);
        if (asprintf(&key, "%s/server.key", *ret_dir) < 0 || asprintf(&cert, "%s/server.crt", *ret_dir) < 0)
                return error_oom(err);
        r = tls_identity_ensure(key, cert, cn, -3600, (int64_t) TLS_SERVER_DAYS * 86400, err);
        if (r > 0)
                log_info("made the TLS server certificate %s", cert);
        return r < 0 ? error_prefix(err, "TLS identity") : 0;
}

static int start_tls(Daemon *d, const DaemonConfig *cfg, const char *dir, Error **err) {
        _cleanup_free_ char *key = NULL, *cert = NULL, *trust = NULL;
        if (asprintf(&key, "%s/server.key", dir) < 0 || asprintf(&cert, "%s/server.crt", dir) < 0 ||
            asprintf(&trust, "%s/trust", dir) < 0)
                return error_oom(err);
        TlsServerConfig tc = {.listen = cfg->tls_listen, .cert = cert, .key = key, .trust = trust};
        int r = tls_server_start(&tc, d->http, &d->tls, err);
        if (r < 0)
                return error_prefix(err, "TLS listener");
        log_info("serving TLS on %s (clients in %s)", cfg->tls_listen, trust);
        return 0;
}

int daemon_start(const DaemonConfig *cfg, const char *self_exe, Daemon **ret, Error **err) {
        Daemon *d = calloc(1, sizeof(*d));
        _cleanup_free_ char *tls_dir = NULL, *trust = NULL;
        if (!d)
                return error_oom(err);
        int r = daemon_open_parts(d, cfg, self_exe, err);
        if (r >= 0 && (r = tls_paths(cfg, &tls_dir, err)) >= 0 && asprintf(&trust, "%s/trust", tls_dir) < 0)
                r = error_oom(err);
        if (r >= 0) {
                ApiConfig ac = {.host = d->host, .store = d->store, .registry = d->registry, .volumes = d->volumes,
                                .network = d->network, .version = PL_VERSION, .trust_path = trust};
                r = api_new(&ac, &d->api, err);
        }
        if (r >= 0) {
                HttpApp app = api_http_app(d->api);
                r = http_server_start_unix(cfg->socket, &app, &d->http, err);
        }
        if (r >= 0)
                daemon_socket_group(cfg->socket);
        /* By default beside the API's socket: /run/portlayer/docker.sock */
        _cleanup_free_ char *docker_socket = NULL;
        if (r >= 0 && !cfg->docker_socket) {
                const char *slash = strrchr(cfg->socket, '/');
                if (asprintf(&docker_socket, "%.*s/docker.sock", (int) (slash ? slash - cfg->socket : 0),
                             cfg->socket) < 0)
                        r = error_oom(err);
        } else if (r >= 0 && !(docker_socket = strdup(cfg->docker_socket)))
                r = error_oom(err);
        if (r >= 0 && strcmp(docker_socket, "none") != 0) {
                DockerConfig dc = {.api = d->api, .host = d->host, .store = d->store, .registry = d->registry,
                                   .volumes = d->volumes, .network = d->network, .version = PL_VERSION};
                r = docker_new(&dc, &d->docker, err);
                if (r >= 0) {
                        HttpApp app = docker_http_app(d->docker);
                        r = http_server_start_unix(docker_socket, &app, &d->docker_http, err);
                        if (r < 0)
                                error_prefix(err, "Docker API socket");
                        else
                                daemon_socket_group(docker_socket);
                }
        }
        if (r >= 0 && cfg->tls_listen)
                r = start_tls(d, cfg, tls_dir, err);
        if (r < 0) {
                daemon_stop(d);
                return r;
        }
        *ret = d;
        return 0;
}

void daemon_stop(Daemon *d) {
        if (!d)
                return;
        tls_server_stop(d->tls);
        api_shutdown(d->api);
        http_server_stop(d->docker_http);
        http_server_stop(d->http);
        docker_free(d->docker);
        api_free(d->api);
        container_host_free(d->host);
        d->host = NULL;
        network_host_free(d->network);
        vm_driver_close(d->driver);
        registry_client_free(d->registry);
        store_free(d->store);
        volume_store_free(d->volumes);
        for (size_t i = 0; i < d->n_insecure; i++)
                free(d->insecure[i]);
        free(d->insecure);
        free(d);
}
