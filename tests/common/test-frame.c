/* test-frame.c: frame header codec, the FrameReader in both modes, and wire
 * packing with the budgeted unpack. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <errno.h>
#include <string.h>

#include "common/proto/frame.h"
#include "common/proto/wire.h"

static size_t put_frame(uint8_t *out, FrameType type, uint32_t channel, uint8_t flags, const char *payload) {
        size_t len = payload ? strlen(payload) : 0;
        FrameHeader h = {.length = (uint32_t) len, .channel = channel, .type = (uint8_t) type, .flags = flags};
        frame_header_encode(&h, out);
        memcpy(out + PL_FRAME_HEADER_SIZE, payload, len);
        return PL_FRAME_HEADER_SIZE + len;
}

static void test_header_roundtrip(void **state) {
        uint8_t b[PL_FRAME_HEADER_SIZE];
        FrameHeader h = {.length = 70000, .channel = 0xdeadbeef, .type = FRAME_DATA, .flags = FRAME_FLAG_EOF}, d;
        frame_header_encode(&h, b);
        assert_int_equal(b[0], 0x00);
        assert_int_equal(b[1], 0x01); /* big-endian length */
        assert_int_equal(frame_header_decode(b, &d), 0);
        assert_int_equal(d.length, 70000);
        assert_int_equal(d.channel, 0xdeadbeef);
        assert_int_equal(d.type, FRAME_DATA);
        assert_int_equal(d.flags, FRAME_FLAG_EOF);

        b[11] = 1;
        assert_int_equal(frame_header_decode(b, &d), -EPROTO);
        b[11] = 0;
        b[9] = 0x80;
        assert_int_equal(frame_header_decode(b, &d), -EPROTO);
        h = (FrameHeader){.length = PL_FRAME_MAX_PAYLOAD + 1, .type = FRAME_DATA};
        frame_header_encode(&h, b);
        assert_int_equal(frame_header_decode(b, &d), -EMSGSIZE);
}

/* Stale bytes (including a half marker and a whole stale frame) before the
 * sync marker are dropped; frames after it come out one by one, even when fed
 * one byte at a time. */
static void test_reader_hunts_then_frames(void **state) {
        static uint8_t stream[256];
        size_t n = 0;
        const char stale[] = "garbage\xffPLS";
        memcpy(stream, stale, sizeof stale - 1);
        n += sizeof stale - 1;
        n += put_frame(stream + n, FRAME_DATA, 9, 0, "stale");
        memcpy(stream + n, pl_sync_marker, PL_SYNC_SIZE);
        n += PL_SYNC_SIZE;
        n += put_frame(stream + n, FRAME_HELLO, 0, 0, "hi");
        n += put_frame(stream + n, FRAME_DATA, 5, FRAME_FLAG_EOF, "");

        for (int bytewise = 0; bytewise < 2; bytewise++) {
                _cleanup_(frame_reader_freep) FrameReader *r = NULL;
                assert_int_equal(frame_reader_new(&r, true), 0);
                FrameEvent ev[8];
                int got = 0;
                for (size_t off = 0; off < n;) {
                        size_t step = bytewise ? 1 : n - off;
                        assert_int_equal(frame_reader_feed(r, stream + off, step), step);
                        off += step;
                        while (got < 8 && frame_reader_next(r, &ev[got], NULL) == 1) {
                                if (ev[got].type == FRAME_EVENT_FRAME && ev[got].header.type == FRAME_HELLO)
                                        assert_memory_equal(ev[got].payload, "hi", 2);
                                got++;
                        }
                }
                assert_int_equal(got, 3);
                assert_int_equal(ev[0].type, FRAME_EVENT_SYNC);
                assert_int_equal(ev[1].type, FRAME_EVENT_FRAME);
                assert_int_equal(ev[1].header.type, FRAME_HELLO);
                assert_int_equal(ev[2].header.channel, 5);
                assert_int_equal(ev[2].header.flags, FRAME_FLAG_EOF);
                assert_int_equal(r->discarded, sizeof stale - 1 + PL_FRAME_HEADER_SIZE + 5);
        }
}

static void test_reader_strict_rejects(void **state) {
        _cleanup_(frame_reader_freep) FrameReader *r = NULL;
        assert_int_equal(frame_reader_new(&r, true), 0);
        uint8_t b[64];
        memcpy(b, pl_sync_marker, PL_SYNC_SIZE);
        FrameHeader h = {.length = PL_FRAME_MAX_PAYLOAD + 1, .channel = 3, .type = FRAME_DATA};
        frame_header_encode(&h, b + PL_SYNC_SIZE);
        frame_reader_feed(r, b, PL_SYNC_SIZE + PL_FRAME_HEADER_SIZE);
        FrameEvent ev;
        assert_int_equal(frame_reader_next(r, &ev, NULL), 1);
        assert_int_equal(ev.type, FRAME_EVENT_SYNC);
        _cleanup_error_ Error *e = NULL;
        assert_int_equal(frame_reader_next(r, &ev, &e), -EMSGSIZE);
        assert_non_null(strstr(e->message, "exceeds"));
}

/* Lenient mode: an oversize frame is skipped without being buffered, a bad
 * header makes the reader hunt, and a sync marker recovers. */
static void test_reader_lenient_recovers(void **state) {
        _cleanup_(frame_reader_freep) FrameReader *r = NULL;
        assert_int_equal(frame_reader_new(&r, false), 0);
        FrameEvent ev;
        frame_reader_feed(r, pl_sync_marker, PL_SYNC_SIZE);
        assert_int_equal(frame_reader_next(r, &ev, NULL), 1);

        uint8_t b[PL_FRAME_HEADER_SIZE];
        FrameHeader big = {.length = 3 * PL_FRAME_MAX_PAYLOAD, .channel = 7, .type = FRAME_REQUEST};
        frame_header_encode(&big, b);
        frame_reader_feed(r, b, sizeof b);
        assert_int_equal(frame_reader_next(r, &ev, NULL), 1);
        assert_int_equal(ev.type, FRAME_EVENT_SKIPPED);
        assert_int_equal(ev.header.channel, 7);
        static uint8_t junk[64 * 1024];
        memset(junk, 0x11, sizeof junk);
        for (uint64_t left = big.length; left > 0;) {
                size_t k = frame_reader_feed(r, junk, (size_t) (left < sizeof junk ? left : sizeof junk));
                left -= k;
                assert_int_equal(frame_reader_next(r, &ev, NULL), 0);
                assert_true(frame_reader_pending(r) <= sizeof junk);
        }
        uint8_t f[64];
        size_t n = put_frame(f, FRAME_DATA, 8, 0, "ok");
        frame_reader_feed(r, f, n);
        assert_int_equal(frame_reader_next(r, &ev, NULL), 1);
        assert_int_equal(ev.type, FRAME_EVENT_FRAME);
        assert_int_equal(ev.header.channel, 8);

        /* Unknown flag bits: framing is lost until the next marker. */
        n = put_frame(f, FRAME_DATA, 8, 0x40, "zz");
        frame_reader_feed(r, f, n);
        assert_int_equal(frame_reader_next(r, &ev, NULL), 1);
        assert_int_equal(ev.type, FRAME_EVENT_DESYNC);
        assert_int_equal(frame_reader_next(r, &ev, NULL), 0);
        frame_reader_feed(r, pl_sync_marker, PL_SYNC_SIZE);
        n = put_frame(f, FRAME_HELLO, 0, 0, "x");
        frame_reader_feed(r, f, n);
        assert_int_equal(frame_reader_next(r, &ev, NULL), 1);
        assert_int_equal(ev.type, FRAME_EVENT_SYNC);
        assert_int_equal(frame_reader_next(r, &ev, NULL), 1);
        assert_int_equal(ev.header.type, FRAME_HELLO);
}

static void test_wire_pack_unpack(void **state) {
        Plagent__Request req = PLAGENT__REQUEST__INIT;
        Plagent__ExecRequest x = PLAGENT__EXEC_REQUEST__INIT;
        char *argv[] = {(char *) "echo", (char *) "hi"};
        x.n_argv = 2;
        x.argv = argv;
        x.stdout_channel = 3;
        req.op_case = PLAGENT__REQUEST__OP_EXEC;
        req.exec = &x;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        assert_int_equal(wire_frame_build(&buf, &len, FRAME_REQUEST, 42, 0, &req.base, NULL, 0), 0);
        FrameHeader h;
        assert_int_equal(frame_header_decode(buf, &h), 0);
        assert_int_equal(h.channel, 42);
        assert_int_equal(h.length, len - PL_FRAME_HEADER_SIZE);

        Plagent__Request *back = (Plagent__Request *) wire_unpack(&plagent__request__descriptor,
                                                                  buf + PL_FRAME_HEADER_SIZE, h.length, NULL);
        assert_non_null(back);
        assert_int_equal(back->op_case, PLAGENT__REQUEST__OP_EXEC);
        assert_string_equal(back->exec->argv[1], "hi");
        assert_int_equal(back->exec->stdout_channel, 3);
        wire_message_free(&back->base);

        _cleanup_error_ Error *e = NULL;
        const uint8_t garbage[] = {0x1a, 0xff, 0xff, 0xff, 0x0f, 0x00};
        assert_null(wire_unpack(&plagent__request__descriptor, garbage, sizeof garbage, &e));
        assert_int_equal(e->code, EBADMSG);

        static uint8_t big[PL_FRAME_MAX_PAYLOAD + 1];
        assert_int_equal(wire_frame_build(&buf, &len, FRAME_DATA, 1, 0, NULL, big, sizeof big), -EMSGSIZE);

        uint8_t c[4];
        uint32_t v;
        wire_credit_encode(262144, c);
        assert_int_equal(wire_credit_decode(c, 4, &v), 0);
        assert_int_equal(v, 262144);
        assert_int_equal(wire_credit_decode(c, 3, &v), -EPROTO);
}

/* A payload of many empty repeated strings is small on the wire but costly to
 * unpack: the budget turns it into a clean failure. */
static void test_wire_budget(void **state) {
        size_t n = PL_FRAME_MAX_PAYLOAD;
        uint8_t *p = malloc(n);
        assert_non_null(p);
        /* ExecRequest.argv (field 1, wire type 2) with empty strings: 0x0a 0x00, repeated. */
        for (size_t i = 0; i + 1 < n; i += 2) {
                p[i] = 0x0a;
                p[i + 1] = 0x00;
        }
        _cleanup_error_ Error *e = NULL;
        ProtobufCMessage *m = wire_unpack(&plagent__exec_request__descriptor, p, n, &e);
        assert_null(m);
        assert_int_equal(e->code, EBADMSG);
        free(p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_header_roundtrip),        cmocka_unit_test(test_reader_hunts_then_frames),
                cmocka_unit_test(test_reader_strict_rejects),   cmocka_unit_test(test_reader_lenient_recovers),
                cmocka_unit_test(test_wire_pack_unpack),        cmocka_unit_test(test_wire_budget),
        };
        return test_run_group(tests, NULL, NULL);
}
