/* bench-agent.c: agent protocol benchmarks over a Unix socket, each beside a
 * baseline measured in the same run (these machines are noisy):
 *   exec   round trip of `true` through the agent (exec + wait) vs. a local
 *          fork/exec/wait of the same binary;
 *   copy   copy-out of a large file through the agent into /dev/null vs. the
 *          raw throughput of a Unix socket between two processes.
 * Usage: bench-agent SOCKET ROOT [exec-iterations] [copy-MiB] */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-util.h"
#include "common/base/io-util.h"
#include "portlayer/client/agent-client.h"

extern char **environ;

static void report(const char *what, uint64_t *us, int n) {
        bench_sort_u64(us, (size_t) n);
        uint64_t sum = 0;
        for (int i = 0; i < n; i++)
                sum += us[i];
        printf("%-28s n=%d  median %7.3f ms  p90 %7.3f ms  mean %7.3f ms\n", what, n, us[n / 2] / 1000.0,
               us[n * 9 / 10] / 1000.0, (double) sum / n / 1000.0);
}

static double bench_exec(AgentClient *c, int n, uint64_t *us) {
        static const char *const argv[] = {"true", NULL};
        for (int i = 0; i < n; i++) {
                uint64_t t0 = now_usec();
                AgentExecSpec spec = {.argv = argv};
                AgentProcess *p = NULL;
                Error *e = NULL;
                AgentProcessInfo info;
                if (agent_client_exec(c, &spec, &p, 10000, &e) < 0 || agent_process_wait(p, &info, 10000, &e) < 0) {
                        fprintf(stderr, "exec: %s\n", error_text(e));
                        exit(1);
                }
                agent_process_free(p);
                us[i] = now_usec() - t0;
        }
        report("agent exec+wait `true`", us, n);
        for (int i = 0; i < n; i++) {
                uint64_t t0 = now_usec();
                pid_t pid;
                char *const av[] = {(char *) "true", NULL};
                if (posix_spawnp(&pid, "true", NULL, NULL, av, environ) != 0 || waitpid(pid, NULL, 0) != pid)
                        exit(1);
                us[i] = now_usec() - t0;
        }
        report("baseline local spawn+wait", us, n);
        return 0;
}

static double bench_copy(AgentClient *c, const char *root, unsigned mib) {
        char path[4096];
        snprintf(path, sizeof path, "%s/bench.bin", root);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        static char block[1 << 20];
        memset(block, 'x', sizeof block);
        for (unsigned i = 0; i < mib; i++)
                if (write_all(fd, block, sizeof block) < 0)
                        exit(1);
        close(fd);

        int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        AgentCopyStats st;
        Error *e = NULL;
        uint64_t t0 = now_usec();
        if (agent_client_copy_out(c, "/bench.bin", devnull, &st, 120000, &e) < 0) {
                fprintf(stderr, "copy-out: %s\n", error_text(e));
                exit(1);
        }
        double agent_s = (now_usec() - t0) / 1e6;
        close(devnull);
        unlink(path);
        printf("%-28s %u MiB in %.3f s = %7.1f MiB/s (tar bytes %llu)\n", "agent copy-out", mib, agent_s,
               st.bytes / 1048576.0 / agent_s, (unsigned long long) st.bytes);

        /* Baseline: the same number of bytes through a Unix socket between two processes. */
        int sv[2];
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
        t0 = now_usec();
        pid_t pid = fork();
        if (pid == 0) {
                close(sv[0]);
                for (unsigned i = 0; i < mib; i++)
                        (void) write_all(sv[1], block, sizeof block);
                _exit(0);
        }
        close(sv[1]);
        static char rbuf[1 << 16];
        uint64_t got = 0;
        ssize_t n;
        while ((n = read(sv[0], rbuf, sizeof rbuf)) > 0)
                got += (uint64_t) n;
        waitpid(pid, NULL, 0);
        double raw_s = (now_usec() - t0) / 1e6;
        close(sv[0]);
        printf("%-28s %u MiB in %.3f s = %7.1f MiB/s\n", "baseline raw unix socket", mib, raw_s,
               got / 1048576.0 / raw_s);
        printf("%-28s %.2f\n", "ratio agent/raw", (st.bytes / agent_s) / (got / raw_s));
        return 0;
}

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: bench-agent SOCKET ROOT [exec-iterations] [copy-MiB]\n");
                return 2;
        }
        int n = argc > 3 ? atoi(argv[3]) : 200;
        unsigned mib = argc > 4 ? (unsigned) atoi(argv[4]) : 512;
        AgentClient *c = NULL;
        Error *e = NULL;
        if (agent_client_connect_unix(&c, argv[1], NULL, &e) < 0) {
                fprintf(stderr, "connect: %s\n", error_text(e));
                return 1;
        }
        uint64_t *us = calloc((size_t) n, sizeof *us);
        uint64_t t0 = now_usec();
        for (int i = 0; i < 100; i++)
                agent_client_ping(c, 5000, NULL);
        printf("%-28s %.3f ms\n", "ping round trip (mean of 100)", (now_usec() - t0) / 100 / 1000.0);
        bench_exec(c, n, us);
        bench_copy(c, argv[2], mib);
        free(us);
        agent_client_free(c);
        return 0;
}
