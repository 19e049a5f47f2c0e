/* fuzz-messages.c: every protocol message through the budgeted unpack, and
 * what unpacks is packed again, under ASan/UBSan: decoding, the budget
 * allocator's bookkeeping and freeing must be memory-safe for any bytes.
 * (No re-encoding invariant: protobuf-c keeps unknown fields verbatim, even
 * malformed ones, and we never re-send a received message.) The first input
 * byte picks the message type. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/proto/wire.h"

static const ProtobufCMessageDescriptor *const descriptors[] = {
        &plagent__hello__descriptor,         &plagent__channel_reset__descriptor,
        &plagent__request__descriptor,       &plagent__response__descriptor,
        &plagent__exec_request__descriptor,  &plagent__process_info__descriptor,
        &plagent__guest_info_response__descriptor, &plagent__list_processes_response__descriptor,
        &plagent__stat_response__descriptor, &plagent__copy_response__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1 || size > PL_FRAME_MAX_PAYLOAD)
                return 0;
        const ProtobufCMessageDescriptor *d = descriptors[data[0] % (sizeof descriptors / sizeof descriptors[0])];
        ProtobufCMessage *m = wire_unpack(d, data + 1, size - 1, NULL);
        if (!m)
                return 0;
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *buf = malloc(n + 1);
        if (!buf)
                abort();
        if (protobuf_c_message_pack(m, buf) != n)
                abort();
        wire_message_free(m);
        free(buf);
        return 0;
}
