/* api-internal.h: what the route handlers of plapi share. */
#pragma once

#include <pthread.h>

#include "api.h"

struct Api {
        ContainerHost *host;
        Store *store;
        RegistryClient *registry;
        NetworkHost *network;   /* NULL: the networks calls answer 400 */
        VolumeStore *volumes;
        char *version;
        char *trust_path;        /* <state>/tls/trust; edits under lock */
        /* streamed answers still being written (api_stream): api_free waits
         * for them, so none outlives the host it reads */
        pthread_mutex_t lock;
        pthread_cond_t streams_done;
        unsigned streams;
        /* upgraded exec sessions: their sockets, shut down by api_shutdown() */
        bool stopping;
        int *session_fds;
        size_t n_session_fds;
};

/* A route handler: params are the {} parts of the pattern, in order. It
 * fills resp, or returns a negative errno with *err set (the router then
 * answers {"message"} with api_status_of_errno()). */
typedef int (*ApiHandler)(Api *a, HttpRequest *req, char **params, HttpResponse *resp, Error **err);

/* The request's JSON body parsed with api_json_parse(). */
int api_body(HttpRequest *req, const char *const *allowed, bool empty_ok, json_t **ret, Error **err);
/* A JSON array of strings (or NULL) as a NULL-terminated vector of borrowed
 * strings after first (which may be NULL); free the array only. -EINVAL. */
int api_strv(const json_t *a, const char *what, const char *first, const char ***ret, Error **err);

/* The handlers (api-containers.c, api-images.c). */
int api_ping(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_version(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_images_pull(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_images_list(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_images_inspect(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_images_remove(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_containers_create(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_containers_list(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_containers_inspect(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_containers_handle(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_containers_remove(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_containers_exec_sync(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_containers_signal(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_containers_wait(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_containers_archive_put(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_containers_archive_get(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_containers_logs(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_containers_stats(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_containers_stat(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_containers_exec(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_exec_inspect(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_exec_resize(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_events(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_handles_inspect(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_handles_entrypoint(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_handles_limits(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_handles_labels(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_handles_state(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_handles_archive(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_handles_commit(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_handles_network(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_networks_create(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_networks_list(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_networks_inspect(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_networks_remove(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_handles_mounts(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_volumes_create(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_volumes_list(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_volumes_inspect(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_volumes_remove(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_images_import(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_images_gc(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_trust_list(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_trust_add(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_trust_remove(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_vms_list(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_gc_list(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_gc_run(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);
int api_metrics(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err);

/* api-metrics.c: m in Prometheus' text format (0.0.4), with
 * portlayer_build_info{version}. *ret is malloc'd. 0 or -ENOMEM. */
int api_metrics_render(const ContainerHostMetrics *m, const char *version, char **ret, size_t *ret_len);
