/* json-util.h: the jansson helpers shared by every module that reads or
 * writes JSON (image documents, store records, registry bodies, container
 * records, the REST API): the cleanup attribute, output bytes as a JSON
 * string, one JSON value as one line of a stream. */
#pragma once

#include <errno.h>
#include <stddef.h>

#include <jansson.h>

#include "common/base/macro.h"

static inline void json_unrefp(json_t **j) {
        if (*j)
                json_decref(*j);
}
#define _cleanup_json_ _cleanup_(json_unrefp)

/* A JSON string of len bytes of a process's output: bytes are not always
 * UTF-8, so where they are not, each byte outside ASCII (and NUL) becomes
 * U+FFFD rather than failing. NULL only when out of memory. */
json_t *json_bytes(const char *data, size_t len);

/* Writes j compactly and a newline to fd in one write (a JSON-lines
 * stream). 0, -ENOMEM, or write_all()'s error. */
int json_write_line(int fd, const json_t *j);
