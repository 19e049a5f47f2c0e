/* frame.h: the agent protocol's framing, shared by the guest agent and the host.
 *
 * A stream carries frames: a 12-byte header (big-endian u32 payload length,
 * u32 channel, u8 type, u8 flags, u16 reserved = 0) and then the payload.
 * A sync marker (8 fixed bytes, first byte 0xFF, so never a valid header since
 * a valid length is below 16 MiB) precedes every HELLO: it lets a receiver that
 * is reading a stream holding stale bytes (virtio-serial keeps them) find the
 * start of a new session. See docs/protocol.md for the whole protocol.
 *
 * FrameReader is an incremental parser with two modes:
 * - strict (the host reading an untrusted guest): any malformed header is an
 *   error and the caller drops the connection;
 * - lenient (the agent): an oversize frame is skipped without being buffered
 *   and reported, a header with unknown flags or reserved bits set loses
 *   framing and the reader hunts for the next sync marker, reporting it once.
 * Neither mode ever buffers more than one maximum frame. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/base/error.h"

#define PL_PROTOCOL_VERSION 1u
#define PL_FRAME_HEADER_SIZE 12u
#define PL_FRAME_MAX_PAYLOAD (1024u * 1024u) /* hard limit, both directions */
#define PL_DATA_CHUNK (64u * 1024u)          /* largest DATA payload a sender makes */
#define PL_DEFAULT_WINDOW (256u * 1024u)     /* initial credit per channel and direction */
#define PL_MAX_WINDOW (16u * 1024u * 1024u)
#define PL_SYNC_SIZE 8u

extern const uint8_t pl_sync_marker[PL_SYNC_SIZE];

typedef enum FrameType {
        FRAME_HELLO = 1,    /* channel 0, protobuf Hello; always after a sync marker */
        FRAME_REQUEST = 2,  /* channel = request id chosen by the host, protobuf Request */
        FRAME_RESPONSE = 3, /* channel = the request id, protobuf Response */
        FRAME_DATA = 4,     /* channel = data channel, raw bytes, flag EOF = half-close */
        FRAME_CREDIT = 5,   /* channel = data channel, payload u32 BE: more bytes the peer may send */
        FRAME_RESET = 6,    /* channel = data channel or request id, protobuf ChannelReset */
        _FRAME_TYPE_MAX,
} FrameType;

#define FRAME_FLAG_EOF 0x01u
#define FRAME_FLAGS_KNOWN FRAME_FLAG_EOF

typedef struct FrameHeader {
        uint32_t length;
        uint32_t channel;
        uint8_t type;
        uint8_t flags;
} FrameHeader;

const char *frame_type_to_string(int type);

/* Writes the 12-byte wire form of h into out. */
void frame_header_encode(const FrameHeader *h, uint8_t out[PL_FRAME_HEADER_SIZE]);

/* Decodes 12 bytes without judging the type (an unknown type is reported by
 * the reader as a frame, so the receiver can refuse it on its channel).
 * Returns 0, -EPROTO for reserved bits or unknown flags, -EMSGSIZE for a
 * length above PL_FRAME_MAX_PAYLOAD (ret is filled in both error cases). */
int frame_header_decode(const uint8_t in[PL_FRAME_HEADER_SIZE], FrameHeader *ret);

typedef enum FrameEventType {
        FRAME_EVENT_SYNC,     /* a sync marker: a new session starts, a HELLO follows */
        FRAME_EVENT_FRAME,    /* a whole frame: header + payload */
        FRAME_EVENT_SKIPPED,  /* lenient only: an oversize frame (header given) is being discarded */
        FRAME_EVENT_DESYNC,   /* lenient only: framing lost, hunting for a sync marker */
} FrameEventType;

typedef struct FrameEvent {
        FrameEventType type;
        FrameHeader header;     /* FRAME and SKIPPED */
        const uint8_t *payload; /* FRAME: valid until the next call on the reader */
} FrameEvent;

typedef struct FrameReader {
        uint8_t *buf;
        size_t start, end, cap;
        bool strict;
        bool hunting;          /* discarding bytes until a sync marker */
        uint64_t skip;         /* bytes of an oversize payload still to discard */
        uint64_t discarded;    /* bytes dropped while hunting or skipping, for diagnostics */
} FrameReader;

/* Allocates a reader. A new reader is hunting: every session begins with a
 * sync marker, and whatever precedes it is stale. */
int frame_reader_new(FrameReader **ret, bool strict);
FrameReader *frame_reader_free(FrameReader *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(FrameReader *, frame_reader_free);

/* Drops buffered bytes and goes back to hunting (a new connection). */
void frame_reader_reset(FrameReader *r);

/* Appends up to len bytes; returns how many fit (0 when the buffer is full and
 * frame_reader_next() must be called first). */
size_t frame_reader_feed(FrameReader *r, const void *data, size_t len);

/* Reads once from fd into the free space. Returns bytes read, 0 on EOF,
 * -EAGAIN when nothing is ready, or a negative errno. */
ssize_t frame_reader_read_fd(FrameReader *r, int fd);

/* Returns 1 and fills *ret when an event is ready, 0 when more input is
 * needed, or (strict mode only) -EPROTO / -EMSGSIZE with *err set. */
int frame_reader_next(FrameReader *r, FrameEvent *ret, Error **err);

/* Bytes buffered but not yet consumed (for tests and diagnostics). */
size_t frame_reader_pending(const FrameReader *r);
