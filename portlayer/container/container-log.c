/* container-log.c: the main process's output, kept on the host.
 *
 * <dir>/main.log is a sequence of records, each a 16-byte header (u64 time
 * in Unix nanoseconds, u8 stream: 1 stdout, 2 stderr, 3 bytes zero, u32
 * length; little endian) followed by that many bytes of output. Records are
 * appended with one writev() on an O_APPEND descriptor, so the two stream
 * readers never interleave inside a record, and a reader can always find the
 * record boundaries again. docs/api.md describes how the logs call renders it. */
#include "container-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "common/base/io-util.h"

int container_log_open(const Container *c) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/main.log", c->dir) < 0)
                return -ENOMEM;
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        return fd < 0 ? -errno : fd;
}

int container_log_append(int fd, int stream, const void *data, size_t len) {
        if (len > UINT32_MAX)
                return -EFBIG;
        uint64_t ns = realtime_nsec();
        uint8_t hdr[CONTAINER_LOG_HEADER] = {0};
        for (int i = 0; i < 8; i++)
                hdr[i] = (uint8_t) (ns >> (8 * i));
        hdr[8] = (uint8_t) stream;
        for (int i = 0; i < 4; i++)
                hdr[12 + i] = (uint8_t) (len >> (8 * i));
        struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *) data, len}};
        ssize_t n = writev(fd, iov, 2);
        if (n < 0)
                return -errno;
        return (size_t) n == sizeof hdr + len ? 0 : -EIO;
}
