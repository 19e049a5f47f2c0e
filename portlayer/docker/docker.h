/* docker.h: the Docker Engine API front end (docs/docker.md).
 *
 * Serves the calls the stock docker CLI makes, translated onto the port
 * layer's lifecycle: a Docker container is a port-layer container (same id,
 * name, state, exit code and times), created and changed through handles
 * and commits, so each API sees what the other made. What Docker has and
 * the port layer does not (auto-remove) is kept as labels under
 * DOCKER_LABEL_PREFIX, which Docker's answers leave out. Calls the port
 * layer cannot serve answer {"message": "... is not supported by
 * portlayer"}. Served by plapi's HTTP server (a second listener). */
#pragma once

#include "common/base/error.h"
#include "images/registry/registry.h"
#include "images/store/store.h"
#include "portlayer/api/api.h"
#include "portlayer/api/http-server.h"
#include "portlayer/container/container.h"
#include "portlayer/network/network.h"
#include "portlayer/volume/volume.h"

#define DOCKER_API_VERSION "1.45"
#define DOCKER_API_VERSION_MIN "1.41"
#define DOCKER_LABEL_PREFIX "io.portlayer.docker."
#define DOCKER_LABEL_AUTO_REMOVE DOCKER_LABEL_PREFIX "auto-remove"
/* A label (or HostConfig annotation, docker run --annotation) a user sets:
 * "true" boots the container's VM on every start instead of taking a warm
 * pool guest (the configuration's cold_start); "false" is the default. */
#define DOCKER_LABEL_COLD_START "io.portlayer.cold-start"
/* Likewise: "false" keeps the container's VM RAM from the host's KSM (the
 * configuration's share_pages, docs/api.md); "true" is the default. */
#define DOCKER_LABEL_SHARE_PAGES "io.portlayer.share-pages"

typedef struct Docker Docker;

typedef struct DockerConfig {
        Api *api;                 /* borrowed: its streams and upgraded sessions */
        ContainerHost *host;      /* borrowed */
        Store *store;             /* borrowed */
        RegistryClient *registry; /* borrowed */
        VolumeStore *volumes;     /* borrowed; NULL: docker volume and -v are refused */
        NetworkHost *network;     /* borrowed; NULL: docker network is refused */
        const char *version;      /* the daemon's version */
} DockerConfig;

int docker_new(const DockerConfig *cfg, Docker **ret, Error **err);
/* Stops the auto-remove watchers and frees; call after the HTTP server
 * stopped and before api_free(). NULL-safe; returns NULL. */
Docker *docker_free(Docker *d);
/* The HttpApp that serves d. */
HttpApp docker_http_app(Docker *d);
