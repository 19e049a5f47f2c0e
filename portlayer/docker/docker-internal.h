/* docker-internal.h: what the files of pldocker share. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "docker.h"
#include "images/oci/oci-manifest.h"

#define DOCKER_EXECS_KEPT 256

typedef struct DockerExec DockerExec;

struct Docker {
        Api *api;
        ContainerHost *host;
        Store *store;
        RegistryClient *registry;
        VolumeStore *volumes;
        NetworkHost *network;
        char *version;
        pthread_mutex_t lock;
        pthread_cond_t changed;
        bool stopping;
        unsigned watchers;  /* auto-remove threads still running */
        DockerExec *execs;  /* created by POST /containers/{id}/exec, newest first */
        size_t n_execs;
};

typedef int (*DockerHandler)(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);

/* --- docker-map.c: translations without side effects (unit-tested) --- */

/* A create body (Docker's ContainerCreateRequest) and the image's
 * configuration -> the fields of a handle update (path, args, env, workdir,
 * user, labels, tty, open_stdin, memory_mb, vcpus, stop_signal,
 * stop_timeout_s). Settings the port layer does not have are refused when
 * they would change what runs (-EOPNOTSUPP: bind mounts, ports, networks,
 * until those land) and listed in *ret_warnings when harmless. -EINVAL for
 * a malformed body. */
/* HostConfig.ConsoleSize or an exec's ConsoleSize, [height, width]: sets
 * *rows and *cols when both are positive; absent or null changes nothing;
 * -EINVAL for anything else. */
int docker_console_size(const json_t *cs, uint16_t *rows, uint16_t *cols);
int docker_create_map(const json_t *body, const OciConfig *image, json_t **ret_fields, json_t **ret_warnings,
                      Error **err);
/* Docker's state for a port-layer state: created, running, paused,
 * restarting, removing, exited, dead. */
const char *docker_state_of(const char *pl_state);
/* Unix seconds and nanoseconds of an RFC 3339 time ("" or bad: 0). */
int64_t docker_time_ns(const char *rfc3339);
/* "Up 5 seconds", "Exited (0) 2 minutes ago", "Created"... */
char *docker_status_text(const json_t *pl, int64_t now_ns);
/* A port-layer container -> Docker's container inspect object. */
json_t *docker_inspect_of(const json_t *pl);
/* A port-layer container -> one entry of GET /containers/json. */
json_t *docker_ps_of(const json_t *pl, int64_t now_ns);
/* Whether pl passes Docker's filters (the parsed "filters" query: {"status":
 * {"running": true}, "label": {"k=v": true}, "name": {...}, "id": {...}}).
 * -EINVAL for a filter it does not know. */
int docker_filters_match(const json_t *filters, const json_t *pl, bool *ret, Error **err);
/* Go's os.FileMode bits for a st_mode (what X-Docker-Container-Path-Stat
 * carries). */
uint32_t docker_file_mode(uint32_t st_mode);
/* A port-layer image -> Docker's image inspect / list objects. */
json_t *docker_image_inspect_of(const StoreImage *img);
json_t *docker_image_summary_of(const StoreImage *img);

/* --- handlers --- */

/* docker.c */
int docker_reply_error(HttpResponse *resp, unsigned status, const char *fmt, ...) _printf_(3, 4);
/* The parsed JSON body (any object; unknown fields allowed, as Docker's
 * clients send many); an empty body is {} when empty_ok. */
int docker_body(HttpRequest *req, bool empty_ok, json_t **ret, Error **err);
/* The container as the port layer renders it; -ENOENT says "No such container". */
int docker_container_get(Docker *d, const char *ref, json_t **ret, Error **err);

/* docker-containers.c */
int docker_containers_create(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_containers_list(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_containers_inspect(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_containers_start(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_containers_stop(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_containers_restart(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_containers_kill(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_containers_pause(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_containers_unpause(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_containers_remove(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_containers_rename(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_containers_top(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_containers_stats(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_containers_resize(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_archive_head(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_archive_get(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_archive_put(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
/* Removes an auto-remove container once it stops (a watcher thread). */
void docker_watch_auto_remove(Docker *d, const char *id);

/* docker-streams.c */
int docker_containers_wait(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_containers_attach(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_containers_logs(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_events(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_exec_create(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_exec_start(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_exec_inspect(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_exec_resize(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
void docker_execs_free(Docker *d);

/* docker-networks.c */
int docker_networks_list(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_networks_create(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_networks_inspect(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_networks_remove(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);

/* docker-volumes.c */
int docker_volumes_list(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_volumes_create(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_volumes_inspect(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_volumes_remove(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);

/* docker-images.c */
/* The store's image name (tag, id, prefix); -ENOENT says "No such image",
 * which makes the CLI pull. */
int docker_image_get(Docker *d, const char *name, StoreImage **ret, Error **err);
int docker_images_list(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_images_inspect(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_images_remove(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int docker_images_create(Docker *d, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
