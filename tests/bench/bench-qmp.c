/* bench-qmp.c: a minimal QMP client for scripts/bench-template-clone.sh, which
 * drives raw QEMU (no libvirt) to measure VM templating: stop a template,
 * set migration capabilities, migrate its device state to a file, load it
 * in a clone.
 *
 * Connects to QEMU's QMP Unix socket (retrying until the deadline: QEMU may
 * not have created it yet), negotiates capabilities, then runs the commands
 * of the command line in order. Each COMMAND may be followed by one argument
 * that starts with '{': its JSON arguments. The pseudo command
 * `wait-migration` polls query-migrate every 10 ms until the migration
 * (outgoing or incoming) completed and prints how long it waited; a failed
 * migration is an error. Each command's "return" is printed as one JSON
 * line; a QMP error ends the program with its description (exit 1).
 * Asynchronous events are skipped. Everything read from QEMU is bounded.
 *
 * Usage: bench-qmp [--timeout MS] SOCKET COMMAND [{ARGS}] [COMMAND [{ARGS}]]... */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/json/json-util.h"

#define QMP_LINE_MAX (1024 * 1024)

typedef struct Qmp {
        int fd;
        uint64_t deadline;
        char buf[QMP_LINE_MAX];
        size_t len;
} Qmp;

static Qmp qmp = {.fd = -1};

static _noreturn_ void die(const char *fmt, const char *arg) {
        fprintf(stderr, "bench-qmp: ");
        fprintf(stderr, fmt, arg);
        fputc('\n', stderr);
        exit(1);
}

static void qmp_connect(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof sa.sun_path)
                die("socket path '%s' is too long", path);
        strcpy(sa.sun_path, path);
        for (;;) {
                qmp.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (qmp.fd < 0)
                        die("socket: %s", strerror(errno));
                if (connect(qmp.fd, (struct sockaddr *) &sa, sizeof sa) == 0)
                        return;
                int e = errno;
                close(qmp.fd);
                if ((e != ENOENT && e != ECONNREFUSED) || deadline_poll_ms(qmp.deadline) == 0)
                        die("connect: %s", strerror(e));
                usleep(10000);
        }
}

/* The next JSON object QEMU sends (one per line), until the deadline. */
static json_t *qmp_read(void) {
        for (;;) {
                char *nl = memchr(qmp.buf, '\n', qmp.len);
                if (nl) {
                        size_t n = (size_t) (nl - qmp.buf) + 1;
                        json_error_t je;
                        json_t *j = json_loadb(qmp.buf, n, 0, &je);
                        memmove(qmp.buf, qmp.buf + n, qmp.len - n);
                        qmp.len -= n;
                        if (!json_is_object(j))
                                die("QEMU sent something that is not a JSON object: %s", je.text);
                        return j;
                }
                if (qmp.len == sizeof qmp.buf)
                        die("a QMP line is longer than %s", "1 MiB");
                struct pollfd p = {.fd = qmp.fd, .events = POLLIN};
                int r = poll(&p, 1, deadline_poll_ms(qmp.deadline));
                if (r == 0)
                        die("timed out waiting for %s", "QEMU");
                ssize_t k = r < 0 ? -1 : read(qmp.fd, qmp.buf + qmp.len, sizeof qmp.buf - qmp.len);
                if (k < 0 && errno != EINTR)
                        die("read: %s", strerror(errno));
                if (k == 0)
                        die("QEMU closed the %s", "QMP connection");
                if (k > 0)
                        qmp.len += (size_t) k;
        }
}

/* Runs one command; returns its "return" value (a new reference). */
static json_t *qmp_execute(const char *cmd, json_t *args) {
        _cleanup_json_ json_t *req = json_pack("{s:s}", "execute", cmd);
        if (!req || (args && json_object_set(req, "arguments", args) < 0))
                die("out of memory%s", "");
        _cleanup_free_ char *text = json_dumps(req, JSON_COMPACT);
        if (!text || write_all_deadline(qmp.fd, text, strlen(text), qmp.deadline) < 0 ||
            write_all_deadline(qmp.fd, "\n", 1, qmp.deadline) < 0)
                die("cannot send '%s'", cmd);
        for (;;) {
                _cleanup_json_ json_t *j = qmp_read();
                json_t *ret = json_object_get(j, "return");
                if (ret)
                        return json_incref(ret);
                json_t *e = json_object_get(j, "error");
                if (e)
                        die("%s", json_string_value(json_object_get(e, "desc")) ?: "QMP error without a description");
        }
}

/* Polls query-migrate until "completed"; prints the time waited. */
static void wait_migration(void) {
        uint64_t t0 = now_usec();
        for (;;) {
                _cleanup_json_ json_t *r = qmp_execute("query-migrate", NULL);
                const char *status = json_string_value(json_object_get(r, "status"));
                if (status && strcmp(status, "completed") == 0)
                        break;
                if (status && strcmp(status, "failed") == 0)
                        die("migration failed: %s",
                            json_string_value(json_object_get(r, "error-desc")) ?: "no description");
                if (deadline_poll_ms(qmp.deadline) == 0)
                        die("migration still '%s' at the deadline", status ?: "none");
                usleep(10000);
        }
        printf("{\"waited_ms\":%.1f}\n", (double) (now_usec() - t0) / 1e3);
}

int main(int argc, char **argv) {
        int i = 1, timeout_ms = 120000;
        if (argc > 2 && strcmp(argv[1], "--timeout") == 0) {
                timeout_ms = atoi(argv[2]);
                i = 3;
        }
        if (argc - i < 2 || timeout_ms <= 0) {
                fprintf(stderr, "usage: bench-qmp [--timeout MS] SOCKET COMMAND [{ARGS}] [COMMAND [{ARGS}]]...\n");
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        qmp.deadline = deadline_after_ms(timeout_ms);
        qmp_connect(argv[i++]);
        json_decref(qmp_read()); /* the greeting */
        json_decref(qmp_execute("qmp_capabilities", NULL));
        while (i < argc) {
                const char *cmd = argv[i++];
                _cleanup_json_ json_t *args = NULL;
                if (i < argc && argv[i][0] == '{') {
                        json_error_t je;
                        if (!(args = json_loads(argv[i++], 0, &je)) || !json_is_object(args))
                                die("the arguments of %s are not a JSON object", cmd);
                }
                if (strcmp(cmd, "wait-migration") == 0) {
                        wait_migration();
                        continue;
                }
                _cleanup_json_ json_t *ret = qmp_execute(cmd, args);
                if (json_write_line(STDOUT_FILENO, ret) < 0)
                        die("cannot write %s", "stdout");
        }
        close(qmp.fd);
        return 0;
}
