/* json-util.h: the one cleanup helper for jansson values, shared by the
 * images/ modules that read or write JSON (manifests, store records, layouts,
 * archives, auth files). Include after <jansson.h>. */
#pragma once

#include <jansson.h>

#include "common/base/macro.h"

static inline void json_unrefp(json_t **j) {
        if (*j)
                json_decref(*j);
}
#define _cleanup_json_ _cleanup_(json_unrefp)
