/* registry-auth-file.h: registry credentials from a Docker-style auth file.
 *
 * Operators already keep registry logins in `~/.docker/config.json` (what
 * `docker login` writes) or `${XDG_RUNTIME_DIR}/containers/auth.json` (what
 * `skopeo login` / `podman login` write). Both have the same shape:
 *     {"auths": {"registry.example.com": {"auth": "<base64 user:password>"},
 *                "https://index.docker.io/v1/": {"username": "u", "password": "p"}}}
 * This module reads such a file once, keeps the logins in memory and answers
 * lookups as a RegistryCredentialsFn, so the registry client asks it per
 * registry. Keys are normalised the way Docker does: a scheme and a path are
 * dropped, and Docker Hub's aliases (index.docker.io, registry-1.docker.io,
 * the v1 URL) all mean "docker.io". Credential helpers ("credsStore",
 * "credHelpers") and identity tokens are not supported: such entries are
 * skipped, and a lookup for them finds nothing (anonymous).
 *
 * The file is input we did not write: at most REGISTRY_AUTH_FILE_MAX bytes,
 * at most REGISTRY_AUTH_FILE_ENTRIES logins, every string bounded. */
#pragma once

#include <stddef.h>

#include "common/base/error.h"
#include "common/base/macro.h"

#define REGISTRY_AUTH_FILE_MAX (1024 * 1024)
#define REGISTRY_AUTH_FILE_ENTRIES 1024

typedef struct RegistryAuthFile RegistryAuthFile;

/* Parses the auth file at path. Returns 0; -ENOENT when it does not exist;
 * -EFBIG when larger than REGISTRY_AUTH_FILE_MAX; -E2BIG with too many
 * entries; -EBADMSG for bad JSON, a non-object "auths", an "auth" that is not
 * base64 of "user:password", or a too-long value (the message names the
 * registry key); -ENOMEM. */
int registry_auth_file_load(const char *path, RegistryAuthFile **ret, Error **err);

/* Parses an auth file held in memory (what _load() does after reading). */
int registry_auth_file_parse(const char *data, size_t size, RegistryAuthFile **ret, Error **err);

/* The path an operator expects when none is given, or NULL when none of them
 * exists: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
 * $DOCKER_CONFIG/config.json, ~/.docker/config.json, in this order. The
 * result is malloc'd. */
char *registry_auth_file_default_path(void);

/* Number of usable logins in f. */
size_t registry_auth_file_count(const RegistryAuthFile *f);

/* A RegistryCredentialsFn (images/registry/registry.h) with userdata = the
 * RegistryAuthFile: 1 with copies of the login for registry (an OciRef
 * registry: "127.0.0.1:5000", "docker.io"), 0 when there is none, -ENOMEM. */
int registry_auth_file_lookup(const char *registry, char **ret_username, char **ret_password, void *userdata);

RegistryAuthFile *registry_auth_file_free(RegistryAuthFile *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(RegistryAuthFile *, registry_auth_file_free);
#define _cleanup_registry_auth_file_ _cleanup_(registry_auth_file_freep)
