/* test-agent-hostile.c: malformed input to the real agent over a raw socket.
 *
 * A process is started and streams output while the test sends a garbage
 * protobuf, an unknown frame type, DATA on a channel that does not exist, an
 * oversize frame, an empty request, and a credit overrun. Each must get its
 * own error (RESPONSE error or RESET on that channel), and the process's
 * output and exit status must still arrive complete and in order. Then a
 * header with reserved bits set loses framing until a new sync + HELLO, and a
 * truncated frame followed by a hang-up leaves an agent that serves the next
 * client. A request with the reserved id 0 goes unanswered, connections
 * that never speak cannot lock clients out, and attach requests naming
 * unknown processes, channels in use or streams never captured are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/pltest.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/proto/wire.h"
#include "lib/agent-harness.h"

typedef struct Raw {
        int fd;
        FrameReader *reader;
} Raw;

typedef struct RawFrame {
        FrameHeader h;
        uint8_t *payload;
} RawFrame;

static void raw_send(Raw *r, FrameType type, uint32_t ch, uint8_t flags, const ProtobufCMessage *m, const void *d,
                     size_t n) {
        uint8_t *buf = NULL;
        size_t len;
        assert_int_equal(wire_frame_build(&buf, &len, type, ch, flags, m, d, n), 0);
        assert_int_equal(write_all(r->fd, buf, len), 0);
        free(buf);
}

static void raw_hello(Raw *r, uint64_t nonce) {
        assert_int_equal(write_all(r->fd, pl_sync_marker, PL_SYNC_SIZE), 0);
        Plagent__Hello h = PLAGENT__HELLO__INIT;
        h.version_min = h.version_max = PL_PROTOCOL_VERSION;
        h.nonce = nonce;
        h.window = PL_DEFAULT_WINDOW;
        raw_send(r, FRAME_HELLO, 0, 0, &h.base, NULL, 0);
}

/* Next frame (sync markers skipped); fails the test after 10 s. */
static RawFrame raw_next(Raw *r) {
        uint64_t deadline = deadline_after_ms(10000);
        for (;;) {
                FrameEvent ev;
                Error *e = NULL;
                int k = frame_reader_next(r->reader, &ev, &e);
                assert_true(k >= 0);
                if (k > 0 && ev.type == FRAME_EVENT_FRAME) {
                        RawFrame f = {.h = ev.header, .payload = malloc(ev.header.length + 1)};
                        memcpy(f.payload, ev.payload, ev.header.length);
                        return f;
                }
                if (k > 0)
                        continue;
                struct pollfd p = {.fd = r->fd, .events = POLLIN};
                int ms = deadline_poll_ms(deadline);
                assert_true(ms > 0);
                assert_int_equal(poll(&p, 1, ms), 1);
                assert_true(frame_reader_read_fd(r->reader, r->fd) > 0);
        }
}

/* Connects to the agent's socket without saying anything yet. */
static Raw raw_open(AgentHarness *h) {
        Raw r = {.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        size_t len = strlen(h->socket);
        assert_true(len < sizeof sa.sun_path);
        memcpy(sa.sun_path, h->socket, len + 1);
        assert_int_equal(connect(r.fd, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(frame_reader_new(&r.reader, true), 0);
        return r;
}

static Raw raw_connect(AgentHarness *h, uint64_t nonce) {
        Raw r = raw_open(h);
        raw_hello(&r, nonce);
        RawFrame f = raw_next(&r);
        assert_int_equal(f.h.type, FRAME_HELLO);
        Plagent__Hello *hello = (Plagent__Hello *) wire_unpack(&plagent__hello__descriptor, f.payload, f.h.length, NULL);
        assert_non_null(hello);
        assert_int_equal(hello->nonce, nonce);
        assert_int_equal(hello->version_max, PL_PROTOCOL_VERSION);
        wire_message_free(&hello->base);
        free(f.payload);
        return r;
}

static void raw_close(Raw *r) {
        close(r->fd);
        frame_reader_free(r->reader);
}

static void raw_request(Raw *r, uint32_t id, Plagent__Request *req) {
        raw_send(r, FRAME_REQUEST, id, 0, &req->base, NULL, 0);
}

/* What the test saw while waiting for things. */
typedef struct Seen {
        char out[256];
        size_t out_len;
        bool out_eof;
        bool wait_before_eof;
        int wait_exit;
        int errors[16];   /* RESPONSE error code by request id */
        int resets[1024]; /* RESET code by channel (small channels only) */
        int reset0;
} Seen;

static void seen_frame(Seen *s, RawFrame *f) {
        if (f->h.type == FRAME_DATA && f->h.channel == 100) {
                assert_true(s->out_len + f->h.length < sizeof s->out);
                memcpy(s->out + s->out_len, f->payload, f->h.length);
                s->out_len += f->h.length;
                s->out_eof |= (f->h.flags & FRAME_FLAG_EOF) != 0;
        } else if (f->h.type == FRAME_RESPONSE) {
                Plagent__Response *resp = (Plagent__Response *) wire_unpack(&plagent__response__descriptor, f->payload,
                                                                            f->h.length, NULL);
                assert_non_null(resp);
                if (f->h.channel < 16)
                        s->errors[f->h.channel] = resp->error_code ? resp->error_code : -1;
                if (resp->result_case == PLAGENT__RESPONSE__RESULT_PROCESS) {
                        s->wait_before_eof = !s->out_eof;
                        s->wait_exit = resp->process->exit_code;
                }
                wire_message_free(&resp->base);
        } else if (f->h.type == FRAME_RESET) {
                Plagent__ChannelReset *cr = (Plagent__ChannelReset *) wire_unpack(&plagent__channel_reset__descriptor,
                                                                                 f->payload, f->h.length, NULL);
                assert_non_null(cr);
                if (f->h.channel == 0)
                        s->reset0 = cr->code;
                else if (f->h.channel < 1024 && !s->resets[f->h.channel])
                        s->resets[f->h.channel] = cr->code; /* the first one says why; later ones "closed" */
                wire_message_free(&cr->base);
        }
        free(f->payload);
}

static void exec_request(Raw *r, uint32_t id, const char *script, uint32_t in_ch, uint32_t out_ch) {
        Plagent__Request req = PLAGENT__REQUEST__INIT;
        Plagent__ExecRequest x = PLAGENT__EXEC_REQUEST__INIT;
        char *argv[] = {(char *) "sh", (char *) "-c", (char *) script};
        x.n_argv = 3;
        x.argv = argv;
        x.stdin_channel = in_ch;
        x.stdout_channel = out_ch;
        req.op_case = PLAGENT__REQUEST__OP_EXEC;
        req.exec = &x;
        raw_request(r, id, &req);
}

static void test_malformed_frames_keep_other_channels_alive(void **state) {
        AgentHarness *h = *state;
        Raw r = raw_connect(h, 0x1111);
        Seen s = {0};

        exec_request(&r, 1, "i=0; while [ $i -lt 8 ]; do echo line$i; i=$((i+1)); sleep 0.1; done", 0, 100);

        /* 2: garbage protobuf */
        const uint8_t garbage[] = {0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
        raw_send(&r, FRAME_REQUEST, 2, 0, NULL, garbage, sizeof garbage);
        /* 3: a request with no operation */
        raw_send(&r, FRAME_REQUEST, 3, 0, NULL, NULL, 0);
        /* unknown frame type 77 on channel 7, with a payload to skip */
        uint8_t hdr[PL_FRAME_HEADER_SIZE];
        frame_header_encode(&(FrameHeader){.length = 5, .channel = 7, .type = 77}, hdr);
        assert_int_equal(write_all(r.fd, hdr, sizeof hdr), 0);
        assert_int_equal(write_all(r.fd, "abcde", 5), 0);
        /* DATA and CREDIT on channels nobody opened */
        raw_send(&r, FRAME_DATA, 555, 0, NULL, "x", 1);
        raw_send(&r, FRAME_CREDIT, 556, 0, NULL, "\0\0\0\1", 4);
        /* an oversize frame (2 MiB) on channel 9: skipped, not buffered */
        size_t big = 2u * PL_FRAME_MAX_PAYLOAD;
        frame_header_encode(&(FrameHeader){.length = (uint32_t) big, .channel = 9, .type = FRAME_DATA}, hdr);
        assert_int_equal(write_all(r.fd, hdr, sizeof hdr), 0);
        uint8_t *junk = calloc(1, big);
        assert_int_equal(write_all(r.fd, junk, big), 0);
        free(junk);
        /* 4: a credit overrun: a process that never reads its stdin fills its pipe
         * (64 KiB), then the agent's window; whatever comes on top is an overrun. */
        exec_request(&r, 4, "sleep 2", 200, 0);
        uint8_t *chunk = calloc(1, PL_DATA_CHUNK);
        for (uint32_t sent = 0; sent < 2 * PL_DEFAULT_WINDOW; sent += PL_DATA_CHUNK)
                raw_send(&r, FRAME_DATA, 200, 0, NULL, chunk, PL_DATA_CHUNK);
        free(chunk);

        /* 5: wait for the streaming process. */
        Plagent__Request req = PLAGENT__REQUEST__INIT;
        Plagent__WaitRequest w = PLAGENT__WAIT_REQUEST__INIT;
        w.process_id = 1; /* the first process of a fresh agent */
        req.op_case = PLAGENT__REQUEST__OP_WAIT;
        req.wait = &w;
        raw_request(&r, 5, &req);

        while (!s.errors[5]) {
                RawFrame f = raw_next(&r);
                seen_frame(&s, &f);
        }
        assert_int_equal(s.errors[1], -1); /* exec ok */
        assert_int_equal(s.errors[2], EBADMSG);
        assert_int_equal(s.errors[3], EOPNOTSUPP);
        assert_int_equal(s.errors[4], -1);
        assert_int_equal(s.resets[7], EPROTONOSUPPORT);
        assert_int_equal(s.resets[555 % 1024], EBADR);
        assert_int_equal(s.resets[556 % 1024], EBADR);
        assert_int_equal(s.resets[9], EMSGSIZE);
        assert_int_equal(s.resets[200], EPROTO);
        /* The streaming process was not disturbed: all of its output, then EOF, then the exit. */
        assert_true(s.out_eof);
        assert_false(s.wait_before_eof);
        assert_int_equal(s.wait_exit, 0);
        s.out[s.out_len] = 0;
        assert_string_equal(s.out, "line0\nline1\nline2\nline3\nline4\nline5\nline6\nline7\n");

        /* Reserved bits set: framing is lost, the agent says so on channel 0 and
         * ignores everything until a new sync + HELLO, after which it serves again. */
        frame_header_encode(&(FrameHeader){.length = 0, .channel = 1, .type = FRAME_REQUEST}, hdr);
        hdr[10] = 0x55;
        assert_int_equal(write_all(r.fd, hdr, sizeof hdr), 0);
        while (!s.reset0) {
                RawFrame f = raw_next(&r);
                seen_frame(&s, &f);
        }
        assert_int_equal(s.reset0, EPROTO);
        raw_hello(&r, 0x2222);
        RawFrame f = raw_next(&r);
        assert_int_equal(f.h.type, FRAME_HELLO);
        free(f.payload);
        Plagent__PingRequest ping = PLAGENT__PING_REQUEST__INIT;
        req = (Plagent__Request) PLAGENT__REQUEST__INIT;
        req.op_case = PLAGENT__REQUEST__OP_PING;
        req.ping = &ping;
        raw_request(&r, 6, &req);
        f = raw_next(&r);
        assert_int_equal(f.h.type, FRAME_RESPONSE);
        assert_int_equal(f.h.channel, 6);
        free(f.payload);

        /* A truncated frame, then hang up: the agent serves the next client. */
        frame_header_encode(&(FrameHeader){.length = 1000, .channel = 8, .type = FRAME_REQUEST}, hdr);
        assert_int_equal(write_all(r.fd, hdr, sizeof hdr), 0);
        assert_int_equal(write_all(r.fd, "partial", 7), 0);
        raw_close(&r);
        AgentClient *c = harness_connect(h);
        assert_non_null(c);
        assert_int_equal(agent_client_ping(c, 5000, NULL), 0);
        agent_client_free(c);
}

/* Connections that never say a word must not lock clients out. With more
 * silent connections than the agent has sessions, a real client still
 * connects and pings at once (a connection that has not finished its
 * handshake gives way to a new one), an established session is never the one
 * that gives way, and every silent connection is closed once the handshake
 * deadline (AGENT_HELLO_TIMEOUT_MS, 5 s) passed. With every slot held by an
 * established session, a new connection is refused and the others go on. */
#define SILENT 20
#define SESSIONS 16 /* AGENT_MAX_SESSIONS */

static bool raw_closed_within(Raw *r, int ms) {
        uint64_t deadline = deadline_after_ms(ms);
        char buf[256];
        for (;;) {
                struct pollfd p = {.fd = r->fd, .events = POLLIN};
                int left = deadline_poll_ms(deadline);
                if (left <= 0 || poll(&p, 1, left) != 1)
                        return false;
                ssize_t n = read(r->fd, buf, sizeof buf);
                if (n == 0 || (n < 0 && errno == ECONNRESET))
                        return true;
                if (n < 0)
                        return false;
        }
}

static void test_silent_connections_do_not_lock_out(void **state) {
        AgentHarness *h = *state;
        AgentClient *first = harness_connect(h);
        assert_non_null(first);
        Raw silent[SILENT];
        for (int i = 0; i < SILENT; i++)
                silent[i] = raw_open(h);
        uint64_t t0 = now_usec();
        AgentClient *c = harness_connect(h);
        assert_non_null(c);
        assert_int_equal(agent_client_ping(c, 2000, NULL), 0);
        assert_true(now_usec() - t0 < 2000 * 1000);
        assert_int_equal(agent_client_ping(first, 2000, NULL), 0);

        for (int i = 0; i < SILENT; i++) {
                assert_true(raw_closed_within(&silent[i], 10000));
                raw_close(&silent[i]);
        }
        assert_true(now_usec() - t0 >= 4000 * 1000); /* the newest ones were given their time */

        /* Every slot established: the next connection is refused, not served
         * at the cost of one of them. */
        Raw held[SESSIONS - 2];
        for (int i = 0; i < SESSIONS - 2; i++)
                held[i] = raw_connect(h, 0x5000 + (uint64_t) i);
        Raw extra = raw_open(h);
        /* The agent may close it before the HELLO is even written (EPIPE):
         * that is the refusal too. */
        Plagent__Hello hello = PLAGENT__HELLO__INIT;
        hello.version_min = hello.version_max = PL_PROTOCOL_VERSION;
        hello.nonce = 0x6000;
        uint8_t *frame = NULL;
        size_t frame_len;
        assert_int_equal(wire_frame_build(&frame, &frame_len, FRAME_HELLO, 0, 0, &hello.base, NULL, 0), 0);
        if (write_all(extra.fd, pl_sync_marker, PL_SYNC_SIZE) == 0)
                (void) write_all(extra.fd, frame, frame_len);
        free(frame);
        assert_true(raw_closed_within(&extra, 5000));
        raw_close(&extra);
        assert_int_equal(agent_client_ping(first, 2000, NULL), 0);
        assert_int_equal(agent_client_ping(c, 2000, NULL), 0);
        for (int i = 0; i < SESSIONS - 2; i++)
                raw_close(&held[i]);
        agent_client_free(c);
        agent_client_free(first);
}

/* Request id 0 is reserved (protocol.md): a request carrying it, whether it
 * decodes or not, is dropped unanswered and the session goes on. The first
 * frame the agent sends afterwards is the answer to the next valid request. */
static void test_request_id_zero_is_dropped(void **state) {
        AgentHarness *h = *state;
        Raw r = raw_connect(h, 0x4444);
        Plagent__PingRequest ping = PLAGENT__PING_REQUEST__INIT;
        Plagent__Request req = PLAGENT__REQUEST__INIT;
        req.op_case = PLAGENT__REQUEST__OP_PING;
        req.ping = &ping;
        raw_request(&r, 0, &req);
        const uint8_t garbage[] = {0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
        raw_send(&r, FRAME_REQUEST, 0, 0, NULL, garbage, sizeof garbage);
        raw_send(&r, FRAME_REQUEST, 0, 0, NULL, NULL, 0); /* no operation */
        raw_request(&r, 7, &req);
        RawFrame f = raw_next(&r);
        assert_int_equal(f.h.type, FRAME_RESPONSE);
        assert_int_equal(f.h.channel, 7);
        free(f.payload);
        raw_close(&r);
}

static void attach_request(Raw *r, uint32_t id, uint32_t process_id, uint32_t out_ch, uint32_t err_ch) {
        Plagent__Request req = PLAGENT__REQUEST__INIT;
        Plagent__AttachRequest x = PLAGENT__ATTACH_REQUEST__INIT;
        x.process_id = process_id;
        x.stdout_channel = out_ch;
        x.stderr_channel = err_ch;
        req.op_case = PLAGENT__REQUEST__OP_ATTACH;
        req.attach = &x;
        raw_request(r, id, &req);
}

/* Attach requests a client library would never send: each gets its own
 * error and changes nothing. Then the host resets its output channel, takes
 * the output up again on the same channel id, and still gets all of it, EOF,
 * then the exit status. */
static void test_attach_hostile(void **state) {
        AgentHarness *h = *state;
        Raw r = raw_connect(h, 0x4444);
        Seen s = {0};
        exec_request(&r, 1, "sleep 1; echo x", 0, 100); /* process 1, stdout on 100, no stderr */
        attach_request(&r, 2, 999, 300, 0);            /* no such process */
        attach_request(&r, 3, 1, 100, 0);              /* channel 100 is in use */
        attach_request(&r, 4, 1, 300, 300);            /* one channel twice */
        attach_request(&r, 5, 1, 0, 0);                /* no channel */
        attach_request(&r, 6, 1, 0, 301);              /* stderr was not captured */
        attach_request(&r, 7, 1, 302, 0);              /* stdout is read on 100 */
        while (!s.errors[7]) {
                RawFrame f = raw_next(&r);
                seen_frame(&s, &f);
        }
        assert_int_equal(s.errors[1], -1);
        assert_int_equal(s.errors[2], ESRCH);
        assert_int_equal(s.errors[3], EADDRINUSE);
        assert_int_equal(s.errors[4], EINVAL);
        assert_int_equal(s.errors[5], EINVAL);
        assert_int_equal(s.errors[6], EINVAL);
        assert_int_equal(s.errors[7], EBUSY);

        Plagent__ChannelReset rst = PLAGENT__CHANNEL_RESET__INIT;
        rst.code = ECANCELED;
        raw_send(&r, FRAME_RESET, 100, 0, &rst.base, NULL, 0);
        attach_request(&r, 8, 1, 100, 0); /* the id is free again */
        raw_send(&r, FRAME_DATA, 100, 0, NULL, "in", 2); /* an output channel takes no DATA */
        Plagent__Request req = PLAGENT__REQUEST__INIT;
        Plagent__WaitRequest w = PLAGENT__WAIT_REQUEST__INIT;
        w.process_id = 1;
        req.op_case = PLAGENT__REQUEST__OP_WAIT;
        req.wait = &w;
        raw_request(&r, 9, &req);
        while (!s.errors[9]) {
                RawFrame f = raw_next(&r);
                seen_frame(&s, &f);
        }
        assert_int_equal(s.errors[8], -1);
        assert_int_equal(s.resets[100], EBADR);
        assert_true(s.out_eof);
        assert_false(s.wait_before_eof);
        assert_int_equal(s.wait_exit, 0);
        s.out[s.out_len] = 0;
        assert_string_equal(s.out, "x\n");
        raw_close(&r);
}

/* Stale bytes and an old HELLO ahead of a session: the agent skips them. */
static void test_stale_bytes_before_sync(void **state) {
        AgentHarness *h = *state;
        Raw r = raw_open(h);
        const char stale[] = "\xff\xff stale bytes from an earlier host \xffPLS";
        assert_int_equal(write_all(r.fd, stale, sizeof stale - 1), 0);
        raw_hello(&r, 0x3333);
        RawFrame f = raw_next(&r);
        assert_int_equal(f.h.type, FRAME_HELLO);
        Plagent__Hello *hello = (Plagent__Hello *) wire_unpack(&plagent__hello__descriptor, f.payload, f.h.length, NULL);
        assert_int_equal(hello->nonce, 0x3333);
        wire_message_free(&hello->base);
        free(f.payload);
        raw_close(&r);
}

/* Sends req as request id and returns the error code of its answer. */
static int raw_call_error(Raw *r, uint32_t id, Plagent__Request *req) {
        raw_request(r, id, req);
        RawFrame f = raw_next(r);
        assert_int_equal(f.h.type, FRAME_RESPONSE);
        assert_int_equal(f.h.channel, id);
        Plagent__Response *resp = (Plagent__Response *) wire_unpack(&plagent__response__descriptor, f.payload,
                                                                    f.h.length, NULL);
        assert_non_null(resp);
        int code = resp->error_code;
        wire_message_free(&resp->base);
        free(f.payload);
        return code;
}

/* setup and etc past the limits the client enforces, and values it never
 * sends: clear errors, nothing written, and the session goes on. */
static void test_setup_and_etc_limits(void **state) {
        AgentHarness *h = *state;
        Raw r = raw_connect(h, 0x4444);
        enum { MANY = 300 };
        Plagent__InterfaceConfig ic[MANY], *icp[MANY];
        Plagent__MountConfig mc[MANY], *mcp[MANY];
        Plagent__HostEntry he[MANY], *hep[MANY];
        char *names[MANY], *servers[MANY];
        for (size_t i = 0; i < MANY; i++) {
                ic[i] = (Plagent__InterfaceConfig) PLAGENT__INTERFACE_CONFIG__INIT;
                ic[i].mac = (char *) "0a:70:6c:00:00:01";
                ic[i].address = (char *) "10.1.0.2/24";
                icp[i] = &ic[i];
                mc[i] = (Plagent__MountConfig) PLAGENT__MOUNT_CONFIG__INIT;
                mc[i].kind = PLAGENT__MOUNT_KIND__MOUNT_KIND_BLOCK;
                mc[i].source = (char *) "pl-vol";
                mc[i].target = (char *) "/data";
                mcp[i] = &mc[i];
                names[i] = (char *) "peer";
                servers[i] = (char *) "10.1.0.1";
                he[i] = (Plagent__HostEntry) PLAGENT__HOST_ENTRY__INIT;
                he[i].address = (char *) "10.1.0.3";
                he[i].n_names = 1;
                he[i].names = names;
                hep[i] = &he[i];
        }
        Plagent__SetupRequest sr = PLAGENT__SETUP_REQUEST__INIT;
        Plagent__Request req = PLAGENT__REQUEST__INIT;
        req.op_case = PLAGENT__REQUEST__OP_SETUP;
        req.setup = &sr;
        sr.n_interfaces = 9;
        sr.interfaces = icp;
        assert_int_equal(raw_call_error(&r, 1, &req), E2BIG);
        sr.n_interfaces = 0;
        sr.n_mounts = 65;
        sr.mounts = mcp;
        assert_int_equal(raw_call_error(&r, 2, &req), E2BIG);
        sr.n_mounts = 1;
        sr.device_wait_ms = 60001;
        assert_int_equal(raw_call_error(&r, 3, &req), EINVAL);
        sr.device_wait_ms = 100;
        mc[0].kind = 7; /* no such kind */
        assert_int_equal(raw_call_error(&r, 4, &req), EINVAL);
        mc[0].kind = PLAGENT__MOUNT_KIND__MOUNT_KIND_UNSPECIFIED;
        assert_int_equal(raw_call_error(&r, 5, &req), EINVAL);
        static char long_mac[100000];
        memset(long_mac, 'a', sizeof long_mac - 1);
        sr.n_mounts = 0;
        sr.n_interfaces = 1;
        ic[0].mac = long_mac;
        assert_int_equal(raw_call_error(&r, 6, &req), EINVAL);

        Plagent__EtcRequest er = PLAGENT__ETC_REQUEST__INIT;
        req.op_case = PLAGENT__REQUEST__OP_ETC;
        req.etc = &er;
        er.write_hosts = er.write_resolv = er.write_hostname = true;
        er.hostname = long_mac;
        assert_int_equal(raw_call_error(&r, 7, &req), EINVAL);
        er.hostname = (char *) "ok";
        er.n_hosts = 257;
        er.hosts = hep;
        assert_int_equal(raw_call_error(&r, 8, &req), E2BIG);
        er.n_hosts = 1;
        he[0].n_names = 17;
        assert_int_equal(raw_call_error(&r, 9, &req), EINVAL);
        he[0].n_names = 1;
        er.n_nameservers = 9;
        er.nameservers = servers;
        assert_int_equal(raw_call_error(&r, 10, &req), E2BIG);
        er.n_nameservers = 1;
        er.n_search = 7;
        er.search = names;
        assert_int_equal(raw_call_error(&r, 11, &req), E2BIG);

        char etc[400];
        snprintf(etc, sizeof etc, "%s/etc", h->root);
        assert_int_not_equal(access(etc, F_OK), 0); /* nothing written */
        Plagent__PingRequest ping = PLAGENT__PING_REQUEST__INIT;
        req.op_case = PLAGENT__REQUEST__OP_PING;
        req.ping = &ping;
        assert_int_equal(raw_call_error(&r, 12, &req), 0);
        raw_close(&r);
}

static int setup(void **state) {
        AgentHarness *h = calloc(1, sizeof *h);
        *state = h;
        return h && harness_start(h) == 0 ? 0 : -1;
}

static int teardown(void **state) {
        int r = harness_stop(*state);
        free(*state);
        return r;
}

int main(void) {
        signal(SIGPIPE, SIG_IGN); /* a dead agent must fail an assertion, not kill the test */
        if (!getenv("PL_AGENT_BIN"))
                test_program_skip_or_fail("PL_AGENT_BIN, the agent binary (run through ctest)");
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_malformed_frames_keep_other_channels_alive, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stale_bytes_before_sync, setup, teardown),
                cmocka_unit_test_setup_teardown(test_request_id_zero_is_dropped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_silent_connections_do_not_lock_out, setup, teardown),
                cmocka_unit_test_setup_teardown(test_attach_hostile, setup, teardown),
                cmocka_unit_test_setup_teardown(test_setup_and_etc_limits, setup, teardown),
        };
        return test_run_group(tests, NULL, NULL);
}
