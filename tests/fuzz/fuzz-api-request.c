/* fuzz-api-request.c: the REST request parsers under libFuzzer: the body
 * parser every route uses (api_json_parse) and, on what it accepts, the
 * container configuration checks a handle update applies
 * (container_config_validate). Neither may crash, leak or accept a
 * configuration that breaks its documented limits. */
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "portlayer/api/api.h"
#include "portlayer/container/container.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const allowed[] = {"path", "args", "env", "workdir", "user", "memory_mb", "vcpus",
                                              "labels", "stop_signal", "stop_timeout_s", NULL};
        json_t *j = NULL;
        Error *e = NULL;
        if (api_json_parse((const char *) data, size, allowed, true, &j, &e) >= 0) {
                Error *e2 = NULL;
                if (container_config_validate(j, &e2) >= 0) {
                        json_t *m = json_object_get(j, "memory_mb");
                        if (m && (json_integer_value(m) < 64 || json_integer_value(m) > 1048576))
                                __builtin_trap();
                }
                error_free(e2);
                json_decref(j);
        }
        error_free(e);
        return 0;
}
