/* fuzz-docker-create.c: the Docker front end's create mapping under
 * libFuzzer (portlayer/docker/docker-map.c): any JSON body, against an
 * image with an entry point, a command, an environment and a label. It may
 * refuse, but what it accepts the port layer's configuration check must
 * accept too (so a Docker create never reaches a handle with fields the
 * handle refuses), and nothing may crash or leak. */
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "docker-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char *entry[] = {"/bin/sh", "-c"}, *cmd[] = {"echo hi"}, *env[] = {"PATH=/bin"}, *keys[] = {"k"},
                    *values[] = {"v"};
        OciConfig img = {.entrypoint = {entry, 2}, .cmd = {cmd, 1}, .env = {env, 1}, .label_keys = {keys, 1},
                         .label_values = {values, 1}};
        json_t *body = json_loadb((const char *) data, size, 0, NULL);
        if (!json_is_object(body)) {
                json_decref(body);
                return 0;
        }
        json_t *fields = NULL, *warnings = NULL;
        Error *e = NULL;
        if (docker_create_map(body, &img, &fields, &warnings, &e) >= 0) {
                Error *e2 = NULL;
                if (container_config_validate(fields, &e2) < 0 || !json_is_array(warnings))
                        __builtin_trap();
                json_decref(fields);
                json_decref(warnings);
        } else if (!e)
                __builtin_trap(); /* a refusal says why */
        error_free(e);
        json_decref(body);
        return 0;
}
