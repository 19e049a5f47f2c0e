/* json-util.c: the jansson helpers more than one module needs (see
 * json-util.h). */
#include "common/json/json-util.h"

#include <stdlib.h>
#include <string.h>

#include "common/base/io-util.h"

json_t *json_bytes(const char *data, size_t len) {
        json_t *j = json_stringn(data, len);
        if (j)
                return j;
        _cleanup_free_ char *clean = malloc(len * 3 + 1);
        if (!clean)
                return NULL;
        size_t k = 0;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) data[i];
                if (c < 0x80 && c != 0)
                        clean[k++] = (char) c;
                else { /* U+FFFD in UTF-8 */
                        clean[k++] = (char) 0xef;
                        clean[k++] = (char) 0xbf;
                        clean[k++] = (char) 0xbd;
                }
        }
        return json_stringn(clean, k);
}

int json_write_line(int fd, const json_t *j) {
        _cleanup_free_ char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (!line)
                return -ENOMEM;
        size_t len = strlen(line);
        line[len] = '\n'; /* over json_dumps's NUL: the line goes out as one write */
        return write_all(fd, line, len + 1);
}
