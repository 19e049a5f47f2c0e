/* fuzz-manifest.c: any bytes through the image-pull JSON parsers
 * (images/oci/oci-manifest.h) and the reference parser (images/oci/oci-ref.h) under
 * ASan/UBSan: parsing, the error paths that free half-built structures, and
 * whatever the result feeds (platform selection, layer checks, canonical
 * reference strings) must be memory-safe for any input. The first byte picks
 * the parser; the rest is the document. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "images/oci/oci-manifest.h"
#include "images/oci/oci-ref.h"

static void fuzz_manifest(const uint8_t *data, size_t size) {
        OciManifest *m = NULL;
        Error *err = NULL;
        OciCompression c;
        if (oci_manifest_parse(data, size, &m, &err) == 0) {
                for (size_t i = 0; i < m->n_layers; i++)
                        if (oci_layer_compression(m->layers[i].media_type, &c) < 0)
                                abort(); /* the parser must have refused it */
                oci_manifest_free(m);
        }
        error_free(err);
}

static void fuzz_index(const uint8_t *data, size_t size) {
        static const char *const arches[] = { "amd64", "arm64", "arm" };
        OciIndex *index = NULL;
        const OciDescriptor *d = NULL;
        Error *err = NULL;
        if (oci_index_parse(data, size, &index, &err) == 0) {
                for (size_t i = 0; i < ELEMENTSOF(arches); i++) {
                        if (oci_index_select(index, "linux", arches[i], i == 1 ? "v8" : NULL, &d, &err) == 0 &&
                            (d < index->manifests || d >= index->manifests + index->n_manifests))
                                abort();
                        err = error_free(err);
                }
                oci_index_free(index);
        }
        error_free(err);
}

static void fuzz_config(const uint8_t *data, size_t size) {
        OciConfig *c = NULL;
        Error *err = NULL;
        OciManifest empty = {};
        if (oci_config_parse(data, size, &c, &err) == 0) {
                if (c->label_keys.n != c->label_values.n)
                        abort();
                (void) oci_config_check_layers(c, &empty, &err);
                oci_config_free(c);
        }
        error_free(err);
}

static void fuzz_sniff_and_ref(const uint8_t *data, size_t size) {
        OciKind k;
        OciRef *ref = NULL;
        char *s = NULL, *url = NULL;
        Error *err = NULL;
        (void) oci_media_type_sniff(data, size, "application/json", &k, &err);
        err = error_free(err);
        if (size > OCI_REF_MAX + 1 || !(s = strndup((const char *) data, size)))
                return;
        if (oci_ref_parse(s, &ref, &err) == 0) {
                free(s);
                s = NULL;
                if (oci_ref_to_string(ref, &s) < 0 || oci_ref_registry_url(ref, false, &url) < 0)
                        abort();
                oci_ref_free(ref);
        }
        free(url);
        free(s);
        error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1 || size > OCI_JSON_MAX + 1)
                return 0;
        switch (data[0] % 4) {
        case 0:
                fuzz_manifest(data + 1, size - 1);
                break;
        case 1:
                fuzz_index(data + 1, size - 1);
                break;
        case 2:
                fuzz_config(data + 1, size - 1);
                break;
        default:
                fuzz_sniff_and_ref(data + 1, size - 1);
        }
        return 0;
}
