/* wire.h: protobuf payloads in frames, shared by the agent and the host.
 *
 * Packing builds one contiguous buffer (header + payload) ready to write.
 * Unpacking goes through an allocator with a budget, so a hostile 1 MiB
 * payload cannot make the receiver allocate more than PL_UNPACK_BUDGET. */
#pragma once

#include <protobuf-c/protobuf-c.h>

#include "common/proto/agent.pb-c.h"
#include "common/base/error.h"
#include "common/proto/frame.h"

#define PL_UNPACK_BUDGET (32u * 1024u * 1024u)

/* Allocates *ret (header + packed msg, or header + data when msg is NULL) and
 * sets *ret_len. Returns 0, -ENOMEM, or -EMSGSIZE when the payload would
 * exceed PL_FRAME_MAX_PAYLOAD. */
int wire_frame_build(uint8_t **ret, size_t *ret_len, FrameType type, uint32_t channel, uint8_t flags,
                     const ProtobufCMessage *msg, const void *data, size_t data_len);

/* Unpacks payload as desc with the budgeted allocator. Returns the message
 * (free with wire_message_free) or NULL with *err set (-EBADMSG). */
ProtobufCMessage *wire_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *payload, size_t len,
                              Error **err);
void wire_message_free(ProtobufCMessage *msg);

/* Encodes / decodes the 4-byte CREDIT payload. */
void wire_credit_encode(uint32_t bytes, uint8_t out[4]);
int wire_credit_decode(const uint8_t *payload, size_t len, uint32_t *ret);
