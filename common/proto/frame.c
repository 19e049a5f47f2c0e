/* frame.c: frame header codec and the incremental FrameReader (see frame.h). */
#include "common/proto/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const uint8_t pl_sync_marker[PL_SYNC_SIZE] = {0xFF, 'P', 'L', 'S', 'Y', 'N', 'C', 0xFE};

static const char *const frame_type_names[_FRAME_TYPE_MAX] = {
        [FRAME_HELLO] = "hello", [FRAME_REQUEST] = "request", [FRAME_RESPONSE] = "response",
        [FRAME_DATA] = "data",   [FRAME_CREDIT] = "credit",   [FRAME_RESET] = "reset",
};

const char *frame_type_to_string(int type) {
        return type > 0 && type < _FRAME_TYPE_MAX ? frame_type_names[type] : "unknown";
}

static void put_be32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

static uint32_t get_be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

void frame_header_encode(const FrameHeader *h, uint8_t out[PL_FRAME_HEADER_SIZE]) {
        put_be32(out, h->length);
        put_be32(out + 4, h->channel);
        out[8] = h->type;
        out[9] = h->flags;
        out[10] = 0;
        out[11] = 0;
}

int frame_header_decode(const uint8_t in[PL_FRAME_HEADER_SIZE], FrameHeader *ret) {
        *ret = (FrameHeader){
                .length = get_be32(in),
                .channel = get_be32(in + 4),
                .type = in[8],
                .flags = in[9],
        };
        if (in[10] != 0 || in[11] != 0 || (ret->flags & ~FRAME_FLAGS_KNOWN) != 0)
                return -EPROTO;
        if (ret->length > PL_FRAME_MAX_PAYLOAD)
                return -EMSGSIZE;
        return 0;
}

int frame_reader_new(FrameReader **ret, bool strict) {
        FrameReader *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->cap = PL_FRAME_HEADER_SIZE + PL_FRAME_MAX_PAYLOAD;
        r->buf = malloc(r->cap);
        if (!r->buf) {
                free(r);
                return -ENOMEM;
        }
        r->strict = strict;
        r->hunting = true;
        *ret = r;
        return 0;
}

FrameReader *frame_reader_free(FrameReader *r) {
        if (!r)
                return NULL;
        free(r->buf);
        free(r);
        return NULL;
}

void frame_reader_reset(FrameReader *r) {
        r->start = r->end = 0;
        r->skip = 0;
        r->hunting = true;
}

size_t frame_reader_pending(const FrameReader *r) {
        return r->end - r->start;
}

static void frame_reader_compact(FrameReader *r) {
        if (r->start == 0)
                return;
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
}

size_t frame_reader_feed(FrameReader *r, const void *data, size_t len) {
        frame_reader_compact(r);
        size_t n = MIN(len, r->cap - r->end);
        memcpy(r->buf + r->end, data, n);
        r->end += n;
        return n;
}

ssize_t frame_reader_read_fd(FrameReader *r, int fd) {
        frame_reader_compact(r);
        if (r->end == r->cap)
                return -ENOBUFS;
        ssize_t n = read(fd, r->buf + r->end, r->cap - r->end);
        if (n < 0)
                return errno == EWOULDBLOCK ? -EAGAIN : negative_errno();
        r->end += (size_t) n;
        return n;
}

/* Hunting: drops bytes up to the first possible start of a sync marker. Returns
 * true when a whole marker is at the front (and consumes it). */
static bool frame_reader_hunt(FrameReader *r) {
        while (r->start < r->end) {
                uint8_t *p = memchr(r->buf + r->start, pl_sync_marker[0], r->end - r->start);
                if (!p) {
                        r->discarded += r->end - r->start;
                        r->start = r->end;
                        return false;
                }
                size_t off = (size_t) (p - r->buf);
                r->discarded += off - r->start;
                r->start = off;
                size_t avail = r->end - r->start;
                size_t cmp = MIN(avail, (size_t) PL_SYNC_SIZE);
                if (memcmp(r->buf + r->start, pl_sync_marker, cmp) == 0) {
                        if (avail < PL_SYNC_SIZE)
                                return false; /* a prefix: wait for more */
                        r->start += PL_SYNC_SIZE;
                        return true;
                }
                r->start++;
                r->discarded++;
        }
        return false;
}

int frame_reader_next(FrameReader *r, FrameEvent *ret, Error **err) {
        if (r->skip > 0) {
                size_t n = (size_t) MIN(r->skip, (uint64_t) (r->end - r->start));
                r->start += n;
                r->skip -= n;
                r->discarded += n;
                if (r->skip > 0)
                        return 0;
        }

        if (r->hunting) {
                if (!frame_reader_hunt(r))
                        return 0;
                r->hunting = false;
                *ret = (FrameEvent){.type = FRAME_EVENT_SYNC};
                return 1;
        }

        size_t avail = r->end - r->start;
        const uint8_t *p = r->buf + r->start;

        /* A sync marker at a frame boundary starts a new session. */
        if (avail > 0 && p[0] == pl_sync_marker[0]) {
                size_t cmp = MIN(avail, (size_t) PL_SYNC_SIZE);
                if (memcmp(p, pl_sync_marker, cmp) == 0) {
                        if (avail < PL_SYNC_SIZE)
                                return 0;
                        r->start += PL_SYNC_SIZE;
                        *ret = (FrameEvent){.type = FRAME_EVENT_SYNC};
                        return 1;
                }
        }

        if (avail < PL_FRAME_HEADER_SIZE)
                return 0;

        FrameHeader h;
        int k = frame_header_decode(p, &h);
        if (k == -EMSGSIZE) {
                if (r->strict)
                        return error_set(err, EMSGSIZE, "frame of %u bytes on channel %u exceeds the %u byte limit",
                                         h.length, h.channel, PL_FRAME_MAX_PAYLOAD);
                r->start += PL_FRAME_HEADER_SIZE;
                r->skip = h.length;
                *ret = (FrameEvent){.type = FRAME_EVENT_SKIPPED, .header = h};
                return 1;
        }
        if (k < 0) {
                if (r->strict)
                        return error_set(err, EPROTO, "malformed frame header (flags 0x%02x, reserved bits set or unknown flags)",
                                         h.flags);
                r->hunting = true;
                r->start++;
                r->discarded++;
                *ret = (FrameEvent){.type = FRAME_EVENT_DESYNC, .header = h};
                return 1;
        }
        if (avail < PL_FRAME_HEADER_SIZE + h.length)
                return 0;

        *ret = (FrameEvent){.type = FRAME_EVENT_FRAME, .header = h, .payload = p + PL_FRAME_HEADER_SIZE};
        r->start += PL_FRAME_HEADER_SIZE + h.length;
        return 1;
}
