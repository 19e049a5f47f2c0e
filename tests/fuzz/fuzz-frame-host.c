/* fuzz-frame-host.c: the real host client against a hostile agent.
 *
 * Each input is what a hostile guest sends after a correct handshake, while
 * the client is busy with real calls from another thread (list processes,
 * exec with captured output and reads, wait, stat, guest info). The fake
 * agent waits for the client's first request, writes the input, and hangs up,
 * so every run ends. Any crash, sanitizer report or hang is a finding; errors
 * are the expected outcome. */
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/proto/wire.h"
#include "portlayer/client/agent-client.h"

typedef struct Run {
        int fd;
} Run;

static void *client_main(void *arg) {
        Run *run = arg;
        AgentClientOptions o = {.handshake_timeout_ms = 5000, .request_timeout_ms = 5000};
        AgentClient *c = NULL;
        if (agent_client_new_fd(&c, run->fd, &o, NULL) < 0)
                return NULL;
        AgentProcessInfo *list = NULL;
        size_t n = 0;
        if (agent_client_list_processes(c, &list, &n, 5000, NULL) >= 0)
                free(list);
        static const char *const argv[] = {"x", NULL};
        AgentExecSpec spec = {.argv = argv, .capture_stdout = true, .capture_stderr = true, .open_stdin = true};
        AgentProcess *p = NULL;
        if (agent_client_exec(c, &spec, &p, 5000, NULL) >= 0) {
                char buf[4096];
                while (agent_process_read(p, AGENT_STREAM_STDOUT, buf, sizeof buf, 5000, NULL) > 0)
                        ;
                (void) agent_process_write_stdin(p, "in", 2, 1000, NULL);
                AgentProcessInfo info;
                (void) agent_process_wait(p, &info, 5000, NULL);
                agent_process_free(p);
        }
        AgentStat st;
        (void) agent_client_stat(c, "/x", &st, 5000, NULL);
        AgentGuestInfo gi;
        (void) agent_client_guest_info(c, &gi, 5000, NULL);
        agent_client_free(c);
        return NULL;
}

/* Plays the agent's side of the handshake. Returns 0 once the client's first
 * REQUEST arrived. */
static int fake_handshake(int fd) {
        FrameReader *r = NULL;
        if (frame_reader_new(&r, true) < 0)
                return -1;
        int state = 0, ret = -1;
        while (state < 2) {
                FrameEvent ev;
                int k = frame_reader_next(r, &ev, NULL);
                if (k < 0)
                        break;
                if (k == 0) {
                        if (frame_reader_read_fd(r, fd) <= 0)
                                break;
                        continue;
                }
                if (ev.type != FRAME_EVENT_FRAME)
                        continue;
                if (state == 0 && ev.header.type == FRAME_HELLO) {
                        Plagent__Hello *h = (Plagent__Hello *) wire_unpack(&plagent__hello__descriptor, ev.payload,
                                                                           ev.header.length, NULL);
                        if (!h)
                                break;
                        Plagent__Hello reply = PLAGENT__HELLO__INIT;
                        reply.version_min = reply.version_max = PL_PROTOCOL_VERSION;
                        reply.nonce = h->nonce;
                        reply.software = (char *) "fuzz";
                        reply.window = PL_DEFAULT_WINDOW;
                        reply.max_frame = PL_FRAME_MAX_PAYLOAD;
                        wire_message_free(&h->base);
                        uint8_t *buf = NULL;
                        size_t len;
                        if (wire_frame_build(&buf, &len, FRAME_HELLO, 0, 0, &reply.base, NULL, 0) < 0)
                                break;
                        int w = write_all(fd, pl_sync_marker, PL_SYNC_SIZE);
                        if (w >= 0)
                                w = write_all(fd, buf, len);
                        free(buf);
                        if (w < 0)
                                break;
                        state = 1;
                } else if (state == 1 && ev.header.type == FRAME_REQUEST) {
                        state = 2;
                        ret = 0;
                }
        }
        frame_reader_free(r);
        return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static int once;
        if (!once++)
                signal(SIGPIPE, SIG_IGN);
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return 0;
        Run run = {.fd = sv[0]};
        pthread_t t;
        if (pthread_create(&t, NULL, client_main, &run) != 0) {
                close(sv[0]);
                close(sv[1]);
                return 0;
        }
        if (fake_handshake(sv[1]) == 0)
                (void) write_all(sv[1], data, size);
        shutdown(sv[1], SHUT_RDWR);
        close(sv[1]);
        pthread_join(t, NULL);
        return 0;
}
