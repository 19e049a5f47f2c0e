/* pl-mkext4: builds a read-only ext4 image from OCI layer tars, no mounting.
 *
 *     pl-mkext4 [--size MiB] OUTPUT LAYER.tar[.gz|.zst]...
 *
 * Layers are applied in the order given. Without --size the image is sized
 * with ext4_size_for() from the layers' on-disk sizes (an estimate that is
 * too small for highly compressed layers: pass --size then). A thin tool over
 * plext4; it reports the one error and exits 1. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/base/parse-util.h"
#include "common/base/verbs.h"
#include "images/ext4/ext4-writer.h"

static void usage(FILE *f) {
        fprintf(f, "usage: pl-mkext4 [--size MiB] OUTPUT LAYER.tar[.gz|.zst]...\n"
                   "       pl-mkext4 --help | --version\n");
}

/* Guesses a size from the layer files: 3x their bytes (compression), one
 * entry per 4 KiB. */
static uint64_t guess_size(char **layers, int n) {
        uint64_t bytes = 0;
        for (int i = 0; i < n; i++) {
                struct stat st;
                if (stat(layers[i], &st) == 0)
                        bytes += (uint64_t) st.st_size;
        }
        return ext4_size_for(bytes * 3, bytes / 4096 + 1024);
}

static int apply(Ext4Writer *w, const char *layer, Error **err) {
        _cleanup_close_ int fd = open(layer, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return error_set_errno(err, errno, "open layer '%s'", layer);
        Ext4LayerStats st;
        int r = ext4_writer_apply_layer(w, fd, &st, err);
        if (r < 0)
                return error_prefix(err, "layer '%s'", layer);
        fprintf(stderr, "%s: %llu entries, %llu files, %llu bytes, %llu removed\n", layer,
                (unsigned long long) st.entries, (unsigned long long) st.files,
                (unsigned long long) st.data_bytes, (unsigned long long) st.removed);
        return 0;
}

static int build(const char *output, uint64_t size, char **layers, int n, Error **err) {
        _cleanup_ext4_writer_ Ext4Writer *w = NULL;
        int r = ext4_writer_new(&w, output, size, err);
        for (int i = 0; r >= 0 && i < n; i++)
                r = apply(w, layers[i], err);
        if (r >= 0)
                r = ext4_writer_finish(w, err);
        return r;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"size", required_argument, NULL, 's'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {0},
        };
        uint64_t size = 0;
        for (int c; (c = getopt_long(argc, argv, "s:h", options, NULL)) != -1;) {
                uint64_t mib;
                switch (c) {
                case 's':
                        if (safe_atou64(optarg, &mib) < 0 || mib == 0 || mib > (UINT64_MAX >> 20)) {
                                fprintf(stderr, "pl-mkext4: bad --size '%s'\n", optarg);
                                return EXIT_USAGE;
                        }
                        size = mib << 20;
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
        if (argc - optind < 2) {
                usage(stderr);
                return EXIT_USAGE;
        }
        char **layers = argv + optind + 1;
        int n = argc - optind - 1;
        _cleanup_error_ Error *err = NULL;
        if (build(argv[optind], size ? size : guess_size(layers, n), layers, n, &err) < 0) {
                fprintf(stderr, "pl-mkext4: %s\n", error_text(err));
                return 1;
        }
        return 0;
}
