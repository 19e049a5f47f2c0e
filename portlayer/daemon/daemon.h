/* daemon.h: portlayerd put together: configuration, the parts it owns (one
 * registry client, one image store, one VM driver, the container host with
 * the agent clients) and the REST server, started and stopped in order.
 *
 * Configuration comes from defaults, then a config file ("key = value"
 * lines, '#' comments; the keys are the long options without "--"), then the
 * command line; docs/operations.md lists them. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/base/error.h"
#include "portlayer/vm/vm-driver.h"

#define DAEMON_DEFAULT_STATE_DIR "/var/lib/portlayer"
#define DAEMON_DEFAULT_SOCKET "/run/portlayer/portlayer.sock"
#define DAEMON_DEFAULT_DOCKER_SOCKET "/run/portlayer/docker.sock"
#define DAEMON_DEFAULT_CONFIG "/etc/portlayer/portlayerd.conf"
#define DAEMON_POOL_SIZE_DEFAULT 2
#define DAEMON_TCG_TB_CACHE_MIB_DEFAULT 16 /* docs/templates.md, "Density" */
#define DAEMON_DEFAULT_UID_RANGE "200000-265535" /* container VMs' uids, one each */
#define DAEMON_SOCKET_GROUP "portlayer"           /* the API socket's group (scripts/setup.sh) */

typedef struct DaemonConfig {
        char *state_dir;
        char *socket;
        char *docker_socket; /* the Docker API's socket; NULL: docker.sock beside socket, "none": off */
        char *libvirt_uri;   /* NULL: the embedded driver under <state>/libvirt */
        char *guest_kernel;  /* NULL: ${PL_CACHE:-/var/cache/portlayer}/kernel/current/vmlinuz */
        char *guest_initrd;  /* NULL: built from the agent and the kernel's modules */
        char *agent;         /* NULL: pl-agent beside the portlayerd binary */
        char *image_store;   /* NULL: <state>/images */
        char *accel;         /* "auto", "kvm", "tcg" */
        char *log_level;
        char *insecure_registries; /* comma-separated host:port reached over plain HTTP */
        char *transport;     /* "auto" (NULL), "vsock", "virtio-serial" */
        char *tls_listen;    /* "ADDR:PORT" of the TLS listener; NULL: none */
        char *network_mode;  /* "bridge" (NULL), "user" */
        char *network_subnet; /* of the default network when first created; NULL: 10.88.0.0/16 */
        int boot_timeout_s;
        uint64_t log_max_size;   /* a container's main.log is rotated past this (16 MiB) */
        unsigned log_max_files;  /* rotated files kept (2) */
        unsigned pool_size;      /* warm-pool guests kept ready (2; docs/templates.md) */
        bool cold_start;         /* no warm pool: every start boots (--cold-start) */
        unsigned tcg_tb_cache_mib; /* TCG translation cache per VM (16 MiB; 0: QEMU's 1 GiB) */
        bool free_page_reporting;  /* guests hand freed memory back (true) */
        char *uid_range;         /* "FIRST-LAST" for container VMs' uids; NULL: DAEMON_DEFAULT_UID_RANGE */
        bool allow_root_qemu;    /* run QEMU as root where no uid per container is possible */
} DaemonConfig;

/* Every key daemon_config_set() takes, NULL-terminated. */
extern const char *const daemon_config_keys[];

void daemon_config_init(DaemonConfig *c);
void daemon_config_clear(DaemonConfig *c);
/* Sets key to value (a config-file line or a long option). -EINVAL for an
 * unknown key or a bad value. */
int daemon_config_set(DaemonConfig *c, const char *key, const char *value, Error **err);
/* Reads a config file; a missing file is fine when !required. */
int daemon_config_load(DaemonConfig *c, const char *path, bool required, Error **err);

typedef struct Daemon Daemon;

/* Opens everything and starts serving. Returns 0 or a negative errno with
 * *err saying which part failed. */
int daemon_start(const DaemonConfig *cfg, const char *self_exe, Daemon **ret, Error **err);
/* Stops serving, detaches from running containers (they keep running) and
 * frees. NULL-safe. */
void daemon_stop(Daemon *d);
