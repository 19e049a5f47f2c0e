/* fuzz-frame-agent.c: the agent's decoders on arbitrary host bytes.
 *
 * The input goes through a lenient FrameReader in uneven pieces (as a socket
 * delivers them); every frame is decoded the way the agent's session decodes
 * it: HELLO and REQUEST payloads through the budgeted unpack, RESET payloads,
 * CREDIT payloads. Executing requests is not fuzzed here: it would run
 * arbitrary commands; the request handlers' validation is covered by the
 * hostile-input integration test against the real agent. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/proto/wire.h"

static void decode(const FrameEvent *ev) {
        const ProtobufCMessageDescriptor *d = NULL;
        switch (ev->header.type) {
        case FRAME_HELLO: d = &plagent__hello__descriptor; break;
        case FRAME_REQUEST: d = &plagent__request__descriptor; break;
        case FRAME_RESET: d = &plagent__channel_reset__descriptor; break;
        case FRAME_CREDIT: {
                uint32_t v;
                (void) wire_credit_decode(ev->payload, ev->header.length, &v);
                return;
        }
        default: return;
        }
        ProtobufCMessage *m = wire_unpack(d, ev->payload, ev->header.length, NULL);
        if (m && ev->header.type == FRAME_REQUEST) {
                Plagent__Request *r = (Plagent__Request *) m;
                if (r->op_case == PLAGENT__REQUEST__OP_EXEC)
                        for (size_t i = 0; i < r->exec->n_argv; i++)
                                (void) strlen(r->exec->argv[i]);
        }
        wire_message_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static FrameReader *r;
        if (!r && frame_reader_new(&r, false) < 0)
                return 0;
        frame_reader_reset(r);
        /* Start in a session (as after a sync) half of the time, per the first byte. */
        if (size > 0 && (data[0] & 1))
                frame_reader_feed(r, pl_sync_marker, PL_SYNC_SIZE);
        size_t off = 0, step = 1;
        while (off < size) {
                size_t n = frame_reader_feed(r, data + off, step < size - off ? step : size - off);
                off += n;
                step = step * 3 + 1; /* uneven pieces */
                FrameEvent ev;
                while (frame_reader_next(r, &ev, NULL) > 0)
                        if (ev.type == FRAME_EVENT_FRAME)
                                decode(&ev);
        }
        return 0;
}
