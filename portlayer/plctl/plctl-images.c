/* plctl-images.c: "plctl images pull|import|ls|inspect|rm|gc", the image store
 * through the daemon (docs/api.md, Images). pull reads the ndjson progress
 * stream: a progress bar on a terminal, plain lines otherwise, the lines
 * themselves with --json; a last line with "error" is a failure. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/json/json-util.h"
#include "plctl-internal.h"

#define PULL_LAYERS_MAX 256

/* A path with an image reference: references hold '/' and ':', which the
 * API takes as they are; anything outside a reference's characters is
 * refused here rather than escaped. */
static int image_path(const char *fmt, const char *ref, char *out, size_t size, Error **err) {
        if (!*ref || strspn(ref, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:@") != strlen(ref))
                return error_set(err, EINVAL, "not an image reference: %s", ref);
        int k = snprintf(out, size, fmt, ref);
        return k < 0 || (size_t) k >= size ? error_set(err, ENAMETOOLONG, "image reference too long") : 0;
}

/* --- pull --- */

typedef struct Pull {
        bool json, bar;
        char digests[PULL_LAYERS_MAX][80];
        json_int_t current[PULL_LAYERS_MAX], total[PULL_LAYERS_MAX];
        size_t n;
        char id[128];
        char error[1024];
        bool bar_shown;
} Pull;

static void pull_bar(Pull *pl) {
        json_int_t cur = 0, tot = 0;
        for (size_t i = 0; i < pl->n; i++) {
                cur += pl->current[i];
                tot += pl->total[i];
        }
        int width = 30, filled = tot > 0 ? (int) (cur * width / tot) : 0;
        char bar[64];
        for (int i = 0; i < width; i++)
                bar[i] = i < filled ? '#' : ' ';
        bar[width] = 0;
        fprintf(stderr, "\rdownloading [%s] %5.1f%% of %.1f MiB (%zu layers)", bar,
                tot > 0 ? 100.0 * (double) cur / (double) tot : 0.0, (double) tot / 1048576.0, pl->n);
        pl->bar_shown = true;
}

static void pull_download(Pull *pl, json_t *j) {
        const char *digest = plctl_str(j, "digest");
        size_t i;
        for (i = 0; i < pl->n && strcmp(pl->digests[i], digest) != 0; i++)
                ;
        if (i == pl->n && pl->n < PULL_LAYERS_MAX)
                snprintf(pl->digests[pl->n++], sizeof pl->digests[0], "%s", digest);
        if (i < pl->n) {
                pl->current[i] = json_integer_value(json_object_get(j, "current"));
                pl->total[i] = json_integer_value(json_object_get(j, "total"));
        }
        bool done = json_integer_value(json_object_get(j, "current")) == json_integer_value(json_object_get(j, "total"));
        if (pl->bar)
                pull_bar(pl);
        else if (done)
                printf("verified %s (%" JSON_INTEGER_FORMAT " bytes)\n", digest, json_integer_value(json_object_get(j, "total")));
}

static int pull_line(const char *line, size_t len, void *userdata, Error **err) {
        Pull *pl = userdata;
        _cleanup_json_ json_t *j = json_loadb(line, len, 0, NULL);
        if (!j)
                return error_set(err, EBADMSG, "the daemon sent a progress line that is not JSON");
        if (json_object_get(j, "error"))
                snprintf(pl->error, sizeof pl->error, "%s", plctl_str(j, "error"));
        if (json_object_get(j, "id"))
                snprintf(pl->id, sizeof pl->id, "%s", plctl_str(j, "id"));
        if (pl->json) {
                printf("%s\n", line);
                fflush(stdout);
                return 0;
        }
        const char *status = plctl_str(j, "status");
        if (strcmp(status, "downloading") == 0 || strcmp(status, "verified") == 0) {
                pull_download(pl, j);
                return 0;
        }
        if (pl->bar_shown) {
                fputc('\n', stderr);
                pl->bar_shown = false;
        }
        if (strcmp(status, "writing disk") == 0)
                printf("writing disk: layer %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT "\n",
                       json_integer_value(json_object_get(j, "layer")), json_integer_value(json_object_get(j, "layers")));
        else if (*status && strcmp(status, "done") != 0)
                printf("%s%s%s\n", status, json_object_get(j, "reference") ? " " : "", plctl_str(j, "reference"));
        fflush(stdout);
        return 0;
}

static int images_pull(Plctl *p, PlctlClient *c, int argc, char *argv[]) {
        if (argc != 2)
                return plctl_usage("images pull: name one reference");
        _cleanup_error_ Error *e = NULL;
        _cleanup_free_ Pull *pl = calloc(1, sizeof *pl);
        _cleanup_json_ json_t *body = json_pack("{s:s}", "reference", argv[1]);
        if (!pl || !body)
                return error_oom(&e), plctl_fail(e);
        pl->json = p->json;
        pl->bar = !p->json && isatty(STDERR_FILENO);
        if (plctl_stream_lines(c, "POST", "/images/pull", body, pull_line, pl, &e) < 0)
                return plctl_fail(e);
        if (pl->bar_shown)
                fputc('\n', stderr);
        if (pl->error[0] || !pl->id[0]) {
                error_set(&e, EIO, "pull %s: %s", argv[1], pl->error[0] ? pl->error : "the daemon's stream ended early");
                return plctl_fail(e);
        }
        if (!p->json)
                printf("pulled %s: %s\n", argv[1], pl->id);
        return 0;
}

/* --- ls, inspect, rm --- */

static int images_ls(Plctl *p, PlctlClient *c, int argc, char *argv[]) {
        bool quiet = argc == 2 && (strcmp(argv[1], "-q") == 0 || strcmp(argv[1], "--quiet") == 0);
        if (argc > 2 || (argc == 2 && !quiet))
                return plctl_usage("images ls: takes only -q");
        _cleanup_error_ Error *e = NULL;
        _cleanup_json_ json_t *list = NULL;
        if (plctl_call(c, "GET", "/images", NULL, &list, &e) < 0)
                return plctl_fail(e);
        if (p->json) {
                plctl_print_json(list);
                return 0;
        }
        if (!quiet)
                printf("%-12s  %-40s  %10s  %s\n", "IMAGE ID", "TAGS", "DISK MiB", "CREATED");
        size_t i, k;
        json_t *img, *t;
        json_array_foreach(list, i, img) {
                char id[13], tags[256] = "";
                plctl_short_id(plctl_str(img, "id"), id);
                if (quiet) {
                        printf("%s\n", id);
                        continue;
                }
                size_t n = 0;
                json_array_foreach(json_object_get(img, "tags"), k, t)
                        if (n < sizeof tags)
                                n += (size_t) snprintf(tags + n, sizeof tags - n, "%s%s", n ? "," : "", json_string_value(t));
                if (!tags[0])
                        snprintf(tags, sizeof tags, "%s", plctl_str(img, "source"));
                printf("%-12s  %-40s  %10.1f  %s\n", id, tags,
                       (double) json_integer_value(json_object_get(img, "disk_size")) / 1048576.0, plctl_str(img, "created"));
        }
        return 0;
}

static int images_each(Plctl *p, PlctlClient *c, int argc, char *argv[], bool remove) {
        if (argc < 2)
                return plctl_usage("images %s: name at least one image", argv[0]);
        _cleanup_json_ json_t *out = json_array();
        int status = 0;
        for (int i = 1; i < argc; i++) {
                _cleanup_error_ Error *e = NULL;
                json_t *img = NULL;
                char path[2048];
                if (image_path("/images/%s", argv[i], path, sizeof path, &e) < 0 ||
                    plctl_call(c, remove ? "DELETE" : "GET", path, NULL, &img, &e) < 0) {
                        fprintf(stderr, "plctl: %s: %s\n", argv[i], error_text(e));
                        status = EXIT_FAILURE;
                        continue;
                }
                if (remove && !p->json)
                        printf("%s\n", argv[i]);
                json_array_append_new(out, img ? img : json_pack("{s:s}", "removed", argv[i]));
        }
        if (!remove || p->json)
                plctl_print_json(out);
        return status;
}

/* --- import, gc --- */

static int images_import(Plctl *p, PlctlClient *c, int n, char **args, const char *tag) {
        if (n != 2)
                return plctl_usage("images import: name one archive file (docker save), or - for stdin");
        _cleanup_error_ Error *e = NULL;
        _cleanup_close_ int fd = strcmp(args[1], "-") == 0 ? dup(STDIN_FILENO) : open(args[1], O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *path = NULL, *etag = tag ? plctl_escape(tag) : NULL;
        _cleanup_json_ json_t *img = NULL;
        if (fd < 0) {
                error_set_errno(&e, errno, "open %s", args[1]);
                return plctl_fail(e);
        }
        if ((tag && !etag) || asprintf(&path, "/images/import%s%s", etag ? "?tag=" : "", etag ? etag : "") < 0)
                return error_oom(&e), plctl_fail(e);
        if (plctl_upload(c, "POST", path, fd, &img, &e) < 0)
                return plctl_fail(e);
        if (p->json)
                plctl_print_json(img);
        else
                printf("imported %s: %s\n", args[1], plctl_str(img, "id"));
        return 0;
}

static int images_gc(Plctl *p, PlctlClient *c, int n) {
        if (n != 1)
                return plctl_usage("images gc: takes no arguments");
        _cleanup_error_ Error *e = NULL;
        _cleanup_json_ json_t *st = NULL;
        if (plctl_call(c, "POST", "/images/gc", NULL, &st, &e) < 0)
                return plctl_fail(e);
        if (p->json)
                plctl_print_json(st);
        else
                printf("removed %lld blobs, %lld images, %lld temporary entries; freed %.1f MiB\n",
                       (long long) json_integer_value(json_object_get(st, "blobs_removed")),
                       (long long) json_integer_value(json_object_get(st, "images_removed")),
                       (long long) json_integer_value(json_object_get(st, "tmp_removed")),
                       (double) json_integer_value(json_object_get(st, "bytes_freed")) / 1048576.0);
        return 0;
}

int plctl_verb_images(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        char *args[argc + 1];
        const char *tag = NULL;
        int n = 0;
        for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], "--tag") == 0 && i + 1 < argc)
                        tag = argv[++i];
                else
                        args[n++] = argv[i];
        int r = plctl_group_args(p, "images", &n, args);
        if (r >= 0)
                return r;
        static const char *const commands[] = {"pull", "import", "ls", "inspect", "rm", "gc"};
        bool known = false;
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                known |= strcmp(args[0], commands[i]) == 0;
        if (!known)
                return plctl_usage("images: unknown command: %s", args[0]);
        if (tag && strcmp(args[0], "import") != 0)
                return plctl_usage("images %s: --tag is for images import", args[0]);
        _cleanup_error_ Error *e = NULL;
        PlctlClient *c;
        if (plctl_connect(p, &c, &e) < 0)
                return plctl_fail(e);
        if (strcmp(args[0], "pull") == 0)
                return images_pull(p, c, n, args);
        if (strcmp(args[0], "import") == 0)
                return images_import(p, c, n, args, tag);
        if (strcmp(args[0], "gc") == 0)
                return images_gc(p, c, n);
        if (strcmp(args[0], "ls") == 0)
                return images_ls(p, c, n, args);
        return images_each(p, c, n, args, strcmp(args[0], "rm") == 0);
}
