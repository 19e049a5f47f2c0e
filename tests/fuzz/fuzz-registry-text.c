/* fuzz-registry-text.c: the registry client's parsers of text a registry or
 * an operator's file controls, under ASan/UBSan: the WWW-Authenticate
 * challenge parser (images/registry/registry-auth.c) and the Docker-style auth file
 * parser (images/registry/registry-auth-file.c). The first byte picks the parser; the
 * rest is the input. A challenge that parses must hand back only bounded,
 * NUL-terminated names and values; an auth file that parses must answer
 * lookups. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "images/registry/registry-auth-file.h"
#include "registry-internal.h"

static void fuzz_challenge(const uint8_t *data, size_t size) {
        char *header = malloc(size + 1);
        if (!header)
                return;
        memcpy(header, data, size);
        header[size] = '\0';
        static const char *const schemes[] = {"bearer", "basic"};
        for (size_t s = 0; s < ELEMENTSOF(schemes); s++) {
                RegChallenge ch = {};
                if (reg_challenge_find(header, schemes[s], &ch) == 0) {
                        if (!ch.scheme || strcmp(ch.scheme, schemes[s]) != 0 || ch.n_params > REG_CHALLENGE_PARAMS_MAX)
                                abort();
                        for (size_t i = 0; i < ch.n_params; i++)
                                if (strlen(ch.params[i].name) > size || strlen(ch.params[i].value) > size)
                                        abort();
                        (void) reg_challenge_param(&ch, "realm");
                }
                reg_challenge_clear(&ch);
        }
        free(header);
}

static void fuzz_auth_file(const uint8_t *data, size_t size) {
        RegistryAuthFile *f = NULL;
        Error *err = NULL;
        if (registry_auth_file_parse((const char *) data, size, &f, &err) == 0) {
                static const char *const registries[] = {"docker.io", "127.0.0.1:5000", "a"};
                for (size_t i = 0; i < ELEMENTSOF(registries); i++) {
                        char *u = NULL, *p = NULL;
                        if (registry_auth_file_lookup(registries[i], &u, &p, f) == 1 && (!u || !p))
                                abort();
                        free(u);
                        free(p);
                }
                registry_auth_file_free(f);
        }
        error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size == 0)
                return 0;
        if (data[0] & 1)
                fuzz_auth_file(data + 1, size - 1);
        else
                fuzz_challenge(data + 1, size - 1);
        return 0;
}
