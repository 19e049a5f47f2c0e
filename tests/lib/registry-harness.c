/* registry-harness.c: the real docker-registry as a test fixture (see
 * registry-harness.h). */
#include "lib/registry-harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "images/oci/digest.h"
#include "lib/test-files.h"
#include "lib/test-sh.h"
#include "lib/test-skip.h"

static void sleep_ms(long ms) {
        nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L}, NULL);
}

const char *registry_harness_missing_tool(void) {
        return test_missing_tool(REGISTRY_HARNESS_TOOLS);
}

int registry_harness_free_port(void) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -1;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        int port = -1;
        if (bind(fd, (struct sockaddr *) &a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *) &a, &len) == 0)
                port = ntohs(a.sin_port);
        close(fd);
        return port;
}

/* Whether GET /v2/ gets an HTTP answer (200, or 401 with auth). */
static bool registry_answers(int port) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return false;
        struct timeval tv = {.tv_sec = 1};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        bool ok = false;
        if (connect(fd, (struct sockaddr *) &a, sizeof a) == 0) {
                const char req[] = "GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
                char buf[64] = {0};
                if (write(fd, req, sizeof req - 1) == (ssize_t) (sizeof req - 1) && read(fd, buf, sizeof buf - 1) > 12)
                        ok = strncmp(buf, "HTTP/1.", 7) == 0 &&
                             (strncmp(buf + 9, "200", 3) == 0 || strncmp(buf + 9, "401", 3) == 0);
        }
        close(fd);
        return ok;
}

static int write_config(RegistryHarness *h) {
        char path[512];
        snprintf(path, sizeof path, "%s/config.yml", h->dir);
        FILE *f = fopen(path, "we");
        if (!f)
                return -errno;
        fprintf(f,
                "version: 0.1\n"
                "log: {level: info}\n"
                "storage: {filesystem: {rootdirectory: %s/data}, delete: {enabled: true}}\n"
                "http: {addr: 127.0.0.1:%d, secret: pl-test-secret}\n",
                h->dir, h->port);
        if (h->user[0])
                fprintf(f, "auth: {htpasswd: {realm: pl-test, path: %s/htpasswd}}\n", h->dir);
        return fclose(f) == 0 ? 0 : -EIO;
}

static int launch(RegistryHarness *h) {
        char config[512];
        snprintf(config, sizeof config, "%s/config.yml", h->dir);
        h->pid = fork();
        if (h->pid < 0)
                return -errno;
        if (h->pid == 0) {
                int fd = open(h->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                execlp("docker-registry", "docker-registry", "serve", config, (char *) NULL);
                _exit(127);
        }
        /* Up to 10 s for the registry to answer. */
        for (int i = 0; i < 200; i++) {
                if (registry_answers(h->port))
                        return 0;
                if (waitpid(h->pid, NULL, WNOHANG) == h->pid) {
                        h->pid = -1;
                        return -ECHILD;
                }
                sleep_ms(50);
        }
        return -ETIMEDOUT;
}

int registry_harness_start(RegistryHarness *h, const char *user, const char *pass) {
        memset(h, 0, sizeof *h);
        h->pid = -1;
        int r = test_tmpdir_make(h->dir, sizeof h->dir, "registry-test");
        if (r < 0)
                return r;
        snprintf(h->log, sizeof h->log, "%s/registry.log", h->dir);
        if (user) {
                snprintf(h->user, sizeof h->user, "%s", user);
                snprintf(h->pass, sizeof h->pass, "%s", pass);
                if (test_sh("htpasswd -Bbn '%s' '%s' > '%s/htpasswd' 2>/dev/null", user, pass, h->dir) != 0) {
                        fprintf(stderr, "registry harness: htpasswd failed\n");
                        return -EIO;
                }
        }
        r = -EADDRINUSE;
        /* The free port may be taken by someone else before the registry binds it. */
        for (int tries = 0; tries < 3 && r < 0; tries++) {
                h->port = registry_harness_free_port();
                if (h->port < 0)
                        return -EADDRNOTAVAIL;
                snprintf(h->host, sizeof h->host, "127.0.0.1:%d", h->port);
                r = write_config(h);
                if (r < 0)
                        return r;
                r = launch(h);
                if (r == -ETIMEDOUT)
                        break;
        }
        if (r < 0) {
                fprintf(stderr, "registry harness: docker-registry did not come up (%s); log:\n", strerror(-r));
                test_sh("tail -n 20 '%s' >&2", h->log);
        }
        return r;
}

void registry_harness_stop(RegistryHarness *h) {
        if (h->pid > 0) {
                kill(h->pid, SIGTERM);
                pid_t w = 0;
                for (int i = 0; i < 500 && (w = waitpid(h->pid, NULL, WNOHANG)) == 0; i++)
                        sleep_ms(10);
                if (w == 0) {
                        kill(h->pid, SIGKILL);
                        waitpid(h->pid, NULL, 0);
                }
                h->pid = -1;
        }
        test_tmpdir_remove(h->dir);
}

int registry_harness_push(const RegistryHarness *h, const char *layout, const char *tag, const char *repo_tag,
                          bool all) {
        char creds[160] = "";
        if (h->user[0])
                snprintf(creds, sizeof creds, "--dest-creds '%s:%s'", h->user, h->pass);
        int st = test_sh("skopeo --insecure-policy copy -q %s --dest-tls-verify=false %s 'oci:%s:%s' "
                    "'docker://%s/%s' >&2",
                    all ? "--all" : "", creds, layout, tag, h->host, repo_tag);
        if (st != 0) {
                fprintf(stderr, "registry harness: skopeo push of %s:%s failed (%d)\n", layout, tag, st);
                return -EIO;
        }
        return 0;
}

static json_t *layout_entry(json_t *index, const char *tag) {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(index, "manifests"), i, m) {
                const char *name =
                        json_string_value(json_object_get(json_object_get(m, "annotations"), "org.opencontainers.image.ref.name"));
                if (name && strcmp(name, tag) == 0)
                        return m;
        }
        return NULL;
}

char *registry_harness_layout_digest(const char *layout, const char *tag) {
        char path[512];
        snprintf(path, sizeof path, "%s/index.json", layout);
        json_t *index = json_load_file(path, 0, NULL);
        json_t *e = index ? layout_entry(index, tag) : NULL;
        const char *d = e ? json_string_value(json_object_get(e, "digest")) : NULL;
        char *out = d ? strdup(d) : NULL;
        json_decref(index);
        return out;
}

/* Adds tag "multi": an index over latest (amd64) and layered (arm64). */
static int add_multi_index(const char *dir) {
        char path[512];
        snprintf(path, sizeof path, "%s/index.json", dir);
        json_t *index = json_load_file(path, 0, NULL);
        if (!index)
                return -EBADMSG;
        json_t *doc = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType",
                                "application/vnd.oci.image.index.v1+json", "manifests");
        const char *tags[] = {"latest", "layered"}, *arches[] = {"amd64", "arm64"};
        int r = 0;
        for (size_t i = 0; i < 2 && r == 0; i++) {
                json_t *m = layout_entry(index, tags[i]);
                if (!m) {
                        r = -ENOENT;
                        break;
                }
                json_array_append_new(json_object_get(doc, "manifests"),
                                      json_pack("{s:O, s:O, s:O, s:{s:s, s:s}}", "mediaType", json_object_get(m, "mediaType"),
                                                "digest", json_object_get(m, "digest"), "size", json_object_get(m, "size"),
                                                "platform", "os", "linux", "architecture", arches[i]));
        }
        char *text = r == 0 ? json_dumps(doc, JSON_COMPACT) : NULL;
        char *digest = NULL;
        if (text && digest_buffer_hex(text, strlen(text), &digest) == 0) {
                snprintf(path, sizeof path, "%s/blobs/sha256/%s", dir, digest + strlen("sha256:"));
                FILE *f = fopen(path, "we");
                if (!f || fwrite(text, 1, strlen(text), f) != strlen(text))
                        r = -EIO;
                if (f && fclose(f) != 0)
                        r = -EIO;
                json_array_append_new(json_object_get(index, "manifests"),
                                      json_pack("{s:s, s:s, s:I, s:{s:s}}", "mediaType",
                                                "application/vnd.oci.image.index.v1+json", "digest", digest, "size",
                                                (json_int_t) strlen(text), "annotations",
                                                "org.opencontainers.image.ref.name", "multi"));
                snprintf(path, sizeof path, "%s/index.json", dir);
                if (r == 0 && json_dump_file(index, path, JSON_COMPACT) != 0)
                        r = -EIO;
        } else if (r == 0)
                r = -ENOMEM;
        free(text);
        free(digest);
        json_decref(doc);
        json_decref(index);
        return r;
}

int registry_harness_make_layout(const char *dir) {
        const char *src = getenv("PL_SOURCE_DIR");
        if (!src) {
                fprintf(stderr, "registry harness: PL_SOURCE_DIR is not set (run through ctest)\n");
                return -ENOENT;
        }
        if (test_sh("bash '%s/tests/lib/make-oci-image.sh' '%s' >/dev/null", src, dir) != 0) {
                fprintf(stderr, "registry harness: make-oci-image.sh failed\n");
                return -EIO;
        }
        int r = add_multi_index(dir);
        if (r < 0)
                fprintf(stderr, "registry harness: cannot add the multi-platform index: %s\n", strerror(-r));
        return r;
}
