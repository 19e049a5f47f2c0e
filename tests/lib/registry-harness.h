/* registry-harness.h: a real registry (Debian's docker-registry, the CNCF
 * distribution server) on loopback for image tests, and real test images
 * pushed to it with skopeo.
 *
 * registry_harness_start() writes a config into a fresh temporary directory
 * (storage below it, optionally htpasswd basic auth made with `htpasswd -Bbn`),
 * starts `docker-registry serve CONFIG` on 127.0.0.1 and a free port, and
 * waits until GET /v2/ answers. registry_harness_stop() ends it by its pid
 * (SIGTERM, wait, SIGKILL), reaps it and removes the directory; call it also
 * on failure. The registry serves plain HTTP; basic auth works over it (the
 * registry only warns). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

typedef struct RegistryHarness {
        pid_t pid;
        int port;
        char dir[256];  /* temporary directory: config, storage, htpasswd, log */
        char log[300];
        char host[64];  /* "127.0.0.1:PORT" */
        char user[64];  /* empty without auth */
        char pass[64];
} RegistryHarness;

/* What the harness runs: docker-registry, skopeo (pushes), umoci (layouts),
 * htpasswd (basic auth). */
#define REGISTRY_HARNESS_TOOLS "docker-registry skopeo umoci htpasswd"
/* The first of them that is not installed, or NULL: pass it to
 * test_skip_or_fail() or test_program_skip_or_fail(). */
const char *registry_harness_missing_tool(void);

/* Starts a registry; with user != NULL it requires basic auth user:pass.
 * Returns 0 or a negative errno (and prints why, with the log). */
int registry_harness_start(RegistryHarness *h, const char *user, const char *pass);

/* Stops it and removes its directory (PL_KEEP_TEST_DIRS keeps it). Safe to
 * call twice or after a failed start. */
void registry_harness_stop(RegistryHarness *h);

/* Pushes tag of the OCI layout to REPO:TAG on the registry with skopeo
 * (--all when all is true, for indexes), with the harness's credentials.
 * Returns 0 or -EIO. */
int registry_harness_push(const RegistryHarness *h, const char *layout, const char *tag, const char *repo_tag,
                          bool all);

/* Builds the test layout in dir (must not exist) with
 * tests/lib/make-oci-image.sh (tags latest, layered; $PL_SOURCE_DIR locates
 * the script), then adds tag "multi": an OCI index with linux/amd64 ->
 * latest's manifest and linux/arm64 -> layered's manifest. Returns 0 or a
 * negative errno. */
int registry_harness_make_layout(const char *dir);

/* The digest of tag's manifest in the layout's index.json, malloc'd, or NULL. */
char *registry_harness_layout_digest(const char *layout, const char *tag);

/* A TCP port on 127.0.0.1 that was free a moment ago, or -1. */
int registry_harness_free_port(void);
