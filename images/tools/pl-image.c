/* pl-image: the image store from the command line, a thin layer over plstore.
 *
 *     pl-image [--store DIR] pull REF [--platform OS/ARCH[/VARIANT]] [--insecure-registry HOST]...
 *                                      [--creds USER:PASSWORD] [--auth-file FILE]
 *     pl-image [--store DIR] import oci:DIR[:TAG] [NAME:TAG]
 *     pl-image [--store DIR] import docker-archive:FILE [NAME:TAG]
 *     pl-image [--store DIR] list [--json]
 *     pl-image [--store DIR] inspect REF|ID
 *     pl-image [--store DIR] tag REF|ID NAME:TAG
 *     pl-image [--store DIR] rm REF|ID
 *     pl-image [--store DIR] gc
 *     pl-image [--store DIR] disk create IMAGE PATH [--size N[K|M|G]]
 *     pl-image [--store DIR] disk rm PATH
 *
 * The store defaults to $PL_IMAGE_STORE, then /var/lib/portlayer/images.
 * Progress goes to stderr: on a terminal one bar per layer redrawn in place,
 * otherwise one plain line when a layer starts and one when it is done.
 * Errors are one line "pl-image: <message>" and exit 1; usage errors exit 2
 * (the conventions of common/base/verbs.h: --help, --version, COMMAND --help).
 * `pull` reaches loopback registries over plain HTTP, others over HTTPS unless
 * named with --insecure-registry HOST[:PORT]; credentials come from
 * --creds USER:PASSWORD, else from a Docker-style auth file (--auth-file, else
 * $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
 * $DOCKER_CONFIG/config.json, ~/.docker/config.json). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/base/parse-util.h"
#include "common/base/verbs.h"
#include "images/store/docker-archive.h"
#include "images/store/oci-layout.h"
#include "images/oci/oci-ref.h"
#include "images/store/store.h"
#include "images/registry/registry-auth-file.h"
#include "images/registry/registry.h"

#define PROGRESS_SLOTS 256

static void usage(FILE *f);

static int fail(Error *err) {
        fprintf(stderr, "pl-image: %s\n", error_text(err));
        error_free(err);
        return EXIT_FAILURE;
}

static int usage_error(const char *msg) {
        fprintf(stderr, "pl-image: %s\n", msg);
        usage(stderr);
        return EXIT_USAGE;
}

/* ---- progress ---- */

typedef struct Progress {
        pthread_mutex_t lock;
        bool tty;
        struct {
                char digest[80];
                uint64_t start;
                uint64_t drawn; /* when the bar was last drawn */
                bool done;
        } slot[PROGRESS_SLOTS];
        size_t n;
} Progress;

static double mib(uint64_t b) {
        return (double) b / (1024.0 * 1024.0);
}

static void progress_cb(const char *digest, uint64_t done, uint64_t total, void *userdata) {
        Progress *p = userdata;
        pthread_mutex_lock(&p->lock);
        size_t i = 0;
        while (i < p->n && strcmp(p->slot[i].digest, digest) != 0)
                i++;
        if (i == p->n) {
                if (p->n == PROGRESS_SLOTS) {
                        pthread_mutex_unlock(&p->lock);
                        return;
                }
                snprintf(p->slot[i].digest, sizeof p->slot[i].digest, "%s", digest);
                p->slot[i].start = now_usec();
                p->slot[i].drawn = 0;
                p->slot[i].done = false;
                p->n++;
                if (!p->tty)
                        fprintf(stderr, "blob %.19s: fetching %.1f MiB\n", digest, mib(total));
        }
        if (p->slot[i].done) {
                pthread_mutex_unlock(&p->lock);
                return;
        }
        double secs = (double) (now_usec() - p->slot[i].start) / 1e6;
        double rate = secs > 0 ? mib(done) / secs : 0;
        bool complete = done == total;
        uint64_t now = now_usec();
        if (p->tty && !complete && now - p->slot[i].drawn < 100 * USEC_PER_MSEC) {
                pthread_mutex_unlock(&p->lock);
                return; /* at most ten redraws a second */
        }
        p->slot[i].drawn = now;
        if (p->tty) {
                int width = 30, fill = total ? (int) ((double) done / (double) total * width) : width;
                fprintf(stderr, "\r%.19s [%.*s%*s] %7.1f/%.1f MiB %6.1f MiB/s%s", digest, fill,
                        "##############################", width - fill, "", mib(done), mib(total), rate,
                        complete ? "\n" : "");
        } else if (complete) {
                fprintf(stderr, "blob %.19s: done %.1f MiB in %.1fs\n", digest, mib(done), secs);
        }
        fflush(stderr);
        p->slot[i].done = complete;
        pthread_mutex_unlock(&p->lock);
}

/* After the download: one line per layer written into the disk, then the
 * commit (the disk is finished, synced and renamed into place). */
static void phase_cb(StorePullPhase phase, size_t index, size_t count, const char *digest, void *userdata) {
        Progress *p = userdata;
        pthread_mutex_lock(&p->lock);
        if (phase == STORE_PULL_PHASE_DISK_LAYER)
                fprintf(stderr, "disk: layer %zu/%zu %.19s\n", index + 1, count, digest);
        else
                fprintf(stderr, "disk: finishing and committing\n");
        fflush(stderr);
        pthread_mutex_unlock(&p->lock);
}

/* ---- commands ---- */

static int pull_into(Store *s, ImageSource *src, const char *tag, const StorePullOptions *base) {
        Progress prog = {.lock = PTHREAD_MUTEX_INITIALIZER, .tty = isatty(STDERR_FILENO)};
        StorePullOptions o = base ? *base : (StorePullOptions) {};
        o.progress = progress_cb;
        o.phase = phase_cb;
        o.userdata = &prog;
        Error *err = NULL;
        StoreImage *img = NULL;
        if (store_pull(s, src, tag, &o, &img, &err) < 0)
                return fail(err);
        printf("%s%s%s\n", img->id, tag ? " " : "", tag ? tag : "");
        store_image_free(img);
        return 0;
}

#define PULL_INSECURE_MAX 16

/* Registry credentials for a pull: --creds USER:PASS for the reference's
 * registry, else the auth file (--auth-file, else the usual places). */
typedef struct PullAuth {
        RegistryCredential cred;
        char *cred_buf; /* "USER\0PASSWORD", cred_len bytes */
        size_t cred_len;
        RegistryAuthFile *file;
} PullAuth;

static void pull_auth_done(PullAuth *a) {
        if (a->cred_buf)
                explicit_bzero(a->cred_buf, a->cred_len);
        free(a->cred_buf);
        registry_auth_file_free(a->file);
}

static int pull_auth_setup(PullAuth *a, const OciRef *ref, const char *creds, const char *auth_file,
                           RegistryOptions *o, Error **err) {
        if (creds) {
                a->cred_buf = strdup(creds);
                a->cred_len = strlen(creds);
                char *colon = a->cred_buf ? strchr(a->cred_buf, ':') : NULL;
                if (!colon || colon == a->cred_buf)
                        return error_set(err, -EINVAL, "--creds wants USER:PASSWORD");
                *colon = '\0';
                a->cred = (RegistryCredential){.registry = ref->registry, .username = a->cred_buf, .password = colon + 1};
                o->credentials = &a->cred;
                o->n_credentials = 1;
        }
        _cleanup_free_ char *def = auth_file ? NULL : registry_auth_file_default_path();
        const char *path = auth_file ? auth_file : def;
        if (path) {
                int r = registry_auth_file_load(path, &a->file, err);
                if (r < 0)
                        return r;
                o->credentials_fn = registry_auth_file_lookup;
                o->credentials_userdata = a->file;
        }
        return 0;
}

static int cmd_pull(Store *s, int argc, char **argv) {
        const char *platform = NULL, *creds = NULL, *auth_file = NULL;
        const char *insecure[PULL_INSECURE_MAX];
        size_t n_insecure = 0;
        static const struct option opts[] = {{"platform", required_argument, NULL, 'p'},
                                             {"insecure-registry", required_argument, NULL, 'i'},
                                             {"creds", required_argument, NULL, 'c'},
                                             {"auth-file", required_argument, NULL, 'a'},
                                             {0}};
        optind = 0;
        for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
                switch (c) {
                case 'p':
                        platform = optarg;
                        break;
                case 'i':
                        if (n_insecure == PULL_INSECURE_MAX)
                                return usage_error("too many --insecure-registry");
                        insecure[n_insecure++] = optarg;
                        break;
                case 'c':
                        creds = optarg;
                        break;
                case 'a':
                        auth_file = optarg;
                        break;
                default:
                        return usage_error("bad pull option");
                }
        }
        if (argc - optind != 1)
                return usage_error("pull takes one image reference");
        StorePullOptions o = {};
        _cleanup_free_ char *plat = platform ? strdup(platform) : NULL;
        if (plat) {
                char *save = NULL;
                o.os = strtok_r(plat, "/", &save);
                o.architecture = strtok_r(NULL, "/", &save);
                o.variant = strtok_r(NULL, "/", &save);
                if (!o.os || !o.architecture)
                        return usage_error("--platform wants OS/ARCH[/VARIANT]");
        }
        Error *err = NULL;
        _cleanup_oci_ref_ OciRef *ref = NULL;
        _cleanup_registry_client_ RegistryClient *c = NULL;
        _cleanup_image_source_ ImageSource *src = NULL;
        _cleanup_free_ char *tag = NULL;
        _cleanup_(pull_auth_done) PullAuth auth = {};
        RegistryOptions ro = {.insecure_registries = insecure, .n_insecure_registries = n_insecure};
        if (oci_ref_parse(argv[optind], &ref, &err) < 0 || pull_auth_setup(&auth, ref, creds, auth_file, &ro, &err) < 0 ||
            registry_client_new(&ro, &c, &err) < 0 || registry_source_new(c, ref, &src, &err) < 0)
                return fail(err);
        if (ref->tag) {
                OciRef t = *ref;
                t.digest = NULL;
                if (oci_ref_to_string(&t, &tag) < 0)
                        return fail(NULL);
        }
        o.digest = ref->digest;
        return pull_into(s, src, tag, &o);
}

/* "oci:DIR[:TAG]": DIR itself may contain ':', so a suffix counts as a tag
 * only when DIR without it is a directory. */
static int import_oci(Store *s, const char *spec, const char *tag) {
        _cleanup_free_ char *dir = strdup(spec);
        if (!dir)
                return fail(NULL);
        char *ref = NULL;
        struct stat st;
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                char *colon = strrchr(dir, ':');
                if (colon && !strchr(colon, '/')) {
                        *colon = 0;
                        ref = colon + 1;
                }
        }
        Error *err = NULL;
        _cleanup_image_source_ ImageSource *src = NULL;
        if (oci_layout_source_new(dir, ref, &src, &err) < 0)
                return fail(err);
        return pull_into(s, src, tag, NULL);
}

static int import_archive(Store *s, const char *file, const char *tag) {
        Error *err = NULL;
        _cleanup_image_source_ ImageSource *src = NULL;
        if (docker_archive_source_new(file, NULL, &src, &err) < 0)
                return fail(err);
        return pull_into(s, src, tag ? tag : docker_archive_source_repo_tag(src), NULL);
}

static int cmd_import(Store *s, int argc, char **argv) {
        const char *tag = argc == 3 ? argv[2] : NULL;
        if (strncmp(argv[1], "oci:", 4) == 0)
                return import_oci(s, argv[1] + 4, tag);
        if (strncmp(argv[1], "docker-archive:", 15) == 0)
                return import_archive(s, argv[1] + 15, tag);
        return usage_error("import source must be oci:DIR[:TAG] or docker-archive:FILE");
}

static void human_size(uint64_t b, char *buf, size_t n) {
        static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = (double) b;
        size_t u = 0;
        while (v >= 1024 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024;
                u++;
        }
        snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static int cmd_list(Store *s, int argc, char **argv) {
        bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
        if (argc == 2 && !json)
                return usage_error("list takes only --json");
        Error *err = NULL;
        StoreImage **list = NULL;
        size_t n = 0;
        if (store_list(s, &list, &n, &err) < 0)
                return fail(err);
        if (json)
                printf("[");
        else
                printf("%-50s %-12s %10s %s\n", "NAME:TAG", "ID", "SIZE", "CREATED");
        for (size_t i = 0; i < n; i++) {
                StoreImage *img = list[i];
                if (json) {
                        _cleanup_free_ char *text = NULL;
                        if (store_image_to_json(img, &text) < 0) {
                                store_image_list_free(list, n);
                                return fail(NULL);
                        }
                        printf("%s%s", i ? ",\n" : "\n", text);
                        continue;
                }
                char size[32];
                human_size(img->disk_size, size, sizeof size);
                for (size_t t = 0; t < MAX(img->tags.n, (size_t) 1); t++)
                        printf("%-50s %.12s %10s %.19s\n", img->tags.n ? img->tags.v[t] : "<none>", img->id + 7, size,
                               img->created ? img->created : "-");
        }
        if (json)
                printf("\n]\n");
        store_image_list_free(list, n);
        return 0;
}

static int cmd_inspect(Store *s, int argc, char **argv) {
        Error *err = NULL;
        _cleanup_store_image_ StoreImage *img = NULL;
        _cleanup_free_ char *text = NULL;
        if (store_inspect(s, argv[1], &img, &err) < 0)
                return fail(err);
        if (store_image_to_json(img, &text) < 0)
                return fail(NULL);
        printf("%s\n", text);
        return 0;
}

static int cmd_tag(Store *s, int argc, char **argv) {
        Error *err = NULL;
        return store_tag(s, argv[1], argv[2], &err) < 0 ? fail(err) : 0;
}

static int cmd_rm(Store *s, int argc, char **argv) {
        Error *err = NULL;
        return store_remove(s, argv[1], &err) < 0 ? fail(err) : 0;
}

static int cmd_gc(Store *s, int argc, char **argv) {
        Error *err = NULL;
        StoreGcStats st;
        if (store_gc(s, false, &st, &err) < 0)
                return fail(err);
        char freed[32];
        human_size(st.bytes_freed, freed, sizeof freed);
        printf("removed %" PRIu64 " blobs, %" PRIu64 " images, %" PRIu64 " temporary files; freed %s\n",
               st.blobs_removed, st.images_removed, st.tmp_removed, freed);
        return 0;
}

static int cmd_disk(Store *s, int argc, char **argv) {
        Error *err = NULL;
        if (argc >= 2 && strcmp(argv[1], "rm") == 0) {
                if (argc != 3)
                        return usage_error("disk rm takes one path");
                return store_container_disk_remove(s, argv[2], &err) < 0 ? fail(err) : 0;
        }
        if (argc < 2 || strcmp(argv[1], "create") != 0)
                return usage_error("disk wants create or rm");
        static const struct option opts[] = {{"size", required_argument, NULL, 's'}, {0}};
        uint64_t size = 0;
        optind = 0;
        argc--;
        argv++;
        for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;)
                if (c != 's' || parse_size(optarg, &size) < 0)
                        return usage_error("bad --size (N, NK, NM or NG)");
        if (argc - optind != 2)
                return usage_error("disk create takes IMAGE PATH");
        if (store_container_disk_create(s, argv[optind], argv[optind + 1], size, &err) < 0)
                return fail(err);
        return 0;
}

/* Every command runs on the store, opened once its arguments passed the
 * count check (so "COMMAND --help" and usage errors never create it). */
static int with_store(void *userdata, int (*fn)(Store *s, int argc, char **argv), int argc, char **argv) {
        const char *const *root = userdata;
        Error *err = NULL;
        _cleanup_store_ Store *s = NULL;
        if (store_open(*root, &s, &err) < 0)
                return fail(err);
        return fn(s, argc, argv);
}

#define STORE_VERB(name)                                                      \
        static int verb_##name(int argc, char *argv[], void *userdata) {      \
                return with_store(userdata, cmd_##name, argc, argv);          \
        }
STORE_VERB(pull)
STORE_VERB(import)
STORE_VERB(list)
STORE_VERB(inspect)
STORE_VERB(tag)
STORE_VERB(rm)
STORE_VERB(gc)
STORE_VERB(disk)

static const Verb verbs[] = {
        {"pull", 1, VERB_ANY, verb_pull,
         "REF [--platform OS/ARCH[/VARIANT]] [--insecure-registry HOST]...\n"
         "           [--creds USER:PASSWORD] [--auth-file FILE]"},
        {"import", 1, 2, verb_import, "oci:DIR[:TAG]|docker-archive:FILE [NAME:TAG]"},
        {"list", 0, 1, verb_list, "[--json]"},
        {"inspect", 1, 1, verb_inspect, "REF|ID"},
        {"tag", 2, 2, verb_tag, "REF|ID NAME:TAG"},
        {"rm", 1, 1, verb_rm, "REF|ID"},
        {"gc", 0, 0, verb_gc, ""},
        {"disk", 1, VERB_ANY, verb_disk, "create IMAGE PATH [--size N[K|M|G]] | rm PATH"},
};

static void usage(FILE *f) {
        fprintf(f, "usage: pl-image [--store DIR] COMMAND ...\n"
                   "       pl-image --help | --version\n");
        verbs_print(verbs, ELEMENTSOF(verbs), f);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"store", required_argument, NULL, 's'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {0},
        };
        const char *root = NULL;
        for (int c; (c = getopt_long(argc, argv, "+h", options, NULL)) != -1;) {
                switch (c) {
                case 's':
                        root = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        version_print();
                        return 0;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
        }
        return verbs_dispatch(verbs, ELEMENTSOF(verbs), argc - optind, argv + optind, &root);
}
