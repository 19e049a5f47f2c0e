/* wire.c: protobuf payload packing and budgeted unpacking (see wire.h). */
#include "common/proto/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int wire_frame_build(uint8_t **ret, size_t *ret_len, FrameType type, uint32_t channel, uint8_t flags,
                     const ProtobufCMessage *msg, const void *data, size_t data_len) {
        size_t payload = msg ? protobuf_c_message_get_packed_size(msg) : data_len;
        if (payload > PL_FRAME_MAX_PAYLOAD)
                return -EMSGSIZE;

        uint8_t *buf = malloc(PL_FRAME_HEADER_SIZE + payload + (payload == 0));
        if (!buf)
                return -ENOMEM;
        FrameHeader h = {.length = (uint32_t) payload, .channel = channel, .type = (uint8_t) type, .flags = flags};
        frame_header_encode(&h, buf);
        if (msg)
                protobuf_c_message_pack(msg, buf + PL_FRAME_HEADER_SIZE);
        else if (data_len > 0)
                memcpy(buf + PL_FRAME_HEADER_SIZE, data, data_len);
        *ret = buf;
        *ret_len = PL_FRAME_HEADER_SIZE + payload;
        return 0;
}

/* Each allocation carries its size in front so that free can return it to the budget. */
typedef struct Budget {
        size_t left;
} Budget;

static void *budget_alloc(void *data, size_t size) {
        Budget *b = data;
        size_t need = size + sizeof(max_align_t);
        if (size > PL_UNPACK_BUDGET || need > b->left)
                return NULL;
        uint8_t *p = malloc(need);
        if (!p)
                return NULL;
        b->left -= need;
        memcpy(p, &need, sizeof need);
        return p + sizeof(max_align_t);
}

static void budget_free(void *data, void *ptr) {
        if (!ptr)
                return;
        Budget *b = data;
        uint8_t *p = (uint8_t *) ptr - sizeof(max_align_t);
        size_t need;
        memcpy(&need, p, sizeof need);
        if (b)
                b->left += need;
        free(p);
}

/* The allocator must outlive the message (protobuf-c frees through it), so
 * the budget lives in a small block allocated with the message and is found
 * again through this header. */
typedef struct BudgetedAllocator {
        ProtobufCAllocator allocator;
        Budget budget;
} BudgetedAllocator;

ProtobufCMessage *wire_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *payload, size_t len,
                              Error **err) {
        BudgetedAllocator a = {
                .allocator = {.alloc = budget_alloc, .free = budget_free},
                .budget = {.left = PL_UNPACK_BUDGET},
        };
        a.allocator.allocator_data = &a.budget;
        ProtobufCMessage *m = protobuf_c_message_unpack(desc, &a.allocator, len, payload);
        if (!m) {
                error_set(err, EBADMSG, "malformed %s message (%zu bytes)", desc->short_name, len);
                return NULL;
        }
        return m;
}

/* Messages from wire_unpack() were allocated by budget_alloc; the budget itself
 * is gone, so free with a NULL budget (budget_free tolerates it). */
void wire_message_free(ProtobufCMessage *msg) {
        if (!msg)
                return;
        ProtobufCAllocator a = {.alloc = budget_alloc, .free = budget_free, .allocator_data = NULL};
        protobuf_c_message_free_unpacked(msg, &a);
}

void wire_credit_encode(uint32_t bytes, uint8_t out[4]) {
        out[0] = (uint8_t) (bytes >> 24);
        out[1] = (uint8_t) (bytes >> 16);
        out[2] = (uint8_t) (bytes >> 8);
        out[3] = (uint8_t) bytes;
}

int wire_credit_decode(const uint8_t *payload, size_t len, uint32_t *ret) {
        if (len != 4)
                return -EPROTO;
        *ret = (uint32_t) payload[0] << 24 | (uint32_t) payload[1] << 16 | (uint32_t) payload[2] << 8 | payload[3];
        return 0;
}
