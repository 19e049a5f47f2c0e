/* agent-cli.c: pl-agent-cli, a command-line front end to the agent client.
 *
 *   pl-agent-cli --socket PATH [--timeout MS] [--connect-timeout MS] COMMAND ...
 *
 * One connection per invocation, one command: ping, info, exec, ps, kill,
 * cp-in, cp-out, stat, rm, shutdown. Used by the benchmark scripts and by
 * humans poking at a guest. Errors are printed once as "pl-agent-cli: ..."
 * and exit 1, usage errors exit 2 (the conventions of common/base/verbs.h);
 * exec exits with the process's code, or 125 when the agent could not start
 * it (as docker does) or its output could not be written. --timeout bounds
 * each request (default 30 s);
 * exec's wait and the copies have no deadline unless --timeout is given. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/base/parse-util.h"
#include "common/base/verbs.h"
#include "portlayer/client/agent-client.h"

#define EXIT_AGENT_ERROR 125
#define MAX_ENV 4096

typedef struct Cli {
        const char *socket_path;
        unsigned vsock_cid, vsock_port; /* --vsock CID:PORT instead of --socket */
        int connect_timeout_ms;
        int timeout_ms;       /* per request */
        int long_timeout_ms;  /* exec's wait and copies: -1 unless --timeout */
        AgentClient *client;  /* connected once the command's arguments parsed */
} Cli;

static int fail(Error *e, int code) {
        fprintf(stderr, "pl-agent-cli: %s\n", error_text(e));
        return code;
}

_printf_(1, 2) static int usage_error(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "pl-agent-cli: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, " (see --help)\n");
        va_end(ap);
        return EXIT_USAGE;
}

/* getopt runs with opterr = 0: this reports what it refused. */
static int bad_option(char **argv, const char *where) {
        return usage_error("%s: unknown option or missing argument: %s", where, argv[optind - 1]);
}

static int parse_int(const char *s, int min, int max, int *ret) {
        int v;
        if (safe_atoi(s, &v) < 0 || v < min || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* "CID:PORT", both unsigned 32-bit numbers, the port not 0. */
static int parse_vsock(const char *s, unsigned *ret_cid, unsigned *ret_port) {
        const char *colon = strchr(s, ':');
        if (!colon || colon == s || colon - s >= 16)
                return -EINVAL;
        char cid[16];
        memcpy(cid, s, (size_t) (colon - s));
        cid[colon - s] = 0;
        uint32_t c, p;
        if (safe_atou32(cid, &c) < 0 || safe_atou32(colon + 1, &p) < 0 || p == 0)
                return -EINVAL;
        *ret_cid = c;
        *ret_port = p;
        return 0;
}

/* Connects after the command checked its arguments. Returns 0, or the exit
 * code after reporting the failure. */
static int cli_connect(Cli *cli, int fail_code) {
        if (!cli->socket_path == !cli->vsock_port)
                return usage_error("give exactly one of --socket or --vsock");
        _cleanup_error_ Error *e = NULL;
        AgentClientOptions opts = {
                .handshake_timeout_ms = cli->connect_timeout_ms,
                .request_timeout_ms = cli->timeout_ms,
        };
        int r = cli->vsock_port ? agent_client_connect_vsock(&cli->client, cli->vsock_cid, cli->vsock_port, &opts, &e)
                                : agent_client_connect_unix(&cli->client, cli->socket_path, &opts, &e);
        if (r < 0)
                return fail(e, fail_code);
        return 0;
}

#define CONNECT_OR_RETURN(cli, code)                      \
        do {                                              \
                int _r_ = cli_connect((cli), (code));     \
                if (_r_ != 0)                             \
                        return _r_;                       \
        } while (0)

/* --- ping, info, ps --- */

static int verb_ping(int argc, char *argv[], void *userdata) {
        Cli *cli = userdata;
        _cleanup_error_ Error *e = NULL;
        CONNECT_OR_RETURN(cli, 1);
        uint64_t start = now_usec();
        if (agent_client_ping(cli->client, cli->timeout_ms, &e) < 0)
                return fail(e, 1);
        printf("pong from %s in %.3f ms\n", agent_client_peer_software(cli->client),
               (double) (now_usec() - start) / 1000.0);
        return 0;
}

static int verb_info(int argc, char *argv[], void *userdata) {
        Cli *cli = userdata;
        _cleanup_error_ Error *e = NULL;
        AgentGuestInfo g;
        CONNECT_OR_RETURN(cli, 1);
        if (agent_client_guest_info(cli->client, &g, cli->timeout_ms, &e) < 0)
                return fail(e, 1);
        printf("agent:       %s\n", g.agent_version);
        printf("instance:    %016" PRIx64 "\n", agent_client_peer_instance(cli->client));
        printf("kernel:      %s\n", g.kernel_release);
        printf("machine:     %s\n", g.machine);
        printf("hostname:    %s\n", g.hostname);
        printf("root:        %s\n", g.root);
        printf("cpus:        %" PRIu32 "\n", g.cpus);
        printf("memory:      %" PRIu64 " KiB total, %" PRIu64 " KiB available\n", g.mem_total_kib,
               g.mem_available_kib);
        printf("uptime:      %.3f s\n", (double) g.uptime_ms / 1000.0);
        printf("processes:   %" PRIu32 " running\n", g.processes);
        if (g.boot_error[0])
                printf("boot error:  %s\n", g.boot_error);
        if (g.root_grow_error[0])
                printf("root grow:   %s\n", g.root_grow_error);
        return 0;
}

static int verb_ps(int argc, char *argv[], void *userdata) {
        Cli *cli = userdata;
        _cleanup_error_ Error *e = NULL;
        _cleanup_free_ AgentProcessInfo *v = NULL;
        size_t n = 0;
        CONNECT_OR_RETURN(cli, 1);
        if (agent_client_list_processes(cli->client, &v, &n, cli->timeout_ms, &e) < 0)
                return fail(e, 1);
        printf("%-8s %-8s %-8s %-5s %s\n", "ID", "PID", "STATE", "EXIT", "COMMAND");
        for (size_t i = 0; i < n; i++) {
                char exit_code[16] = "-";
                if (v[i].state == AGENT_PROCESS_EXITED)
                        snprintf(exit_code, sizeof exit_code, "%d", v[i].exit_code);
                printf("%-8" PRIu32 " %-8d %-8s %-5s %s%s\n", v[i].process_id, v[i].pid,
                       v[i].state == AGENT_PROCESS_EXITED ? "exited" : "running", exit_code, v[i].command,
                       v[i].tty ? " (tty)" : "");
        }
        return 0;
}

/* --- exec --- */

typedef struct Pump {
        AgentProcess *process;
        AgentStream stream;
        int fd;
        atomic_bool *stop;
        Error *error;
        int sink_error;       /* output: the first failed write to fd (negative errno) */
} Pump;

/* Copies one output stream to fd until EOF; keeps draining if fd fails so
 * that the process never blocks on a full pipe, and remembers the failure. */
static void *pump_output(void *userdata) {
        Pump *pump = userdata;
        char buf[64 * 1024];
        for (;;) {
                ssize_t n = agent_process_read(pump->process, pump->stream, buf, sizeof buf, -1, &pump->error);
                if (n <= 0)
                        break;
                if (!pump->sink_error)
                        pump->sink_error = MIN(write_all(pump->fd, buf, (size_t) n), 0);
        }
        return NULL;
}

/* Forwards our stdin until EOF, then half-closes the process's stdin. Polls
 * so that it notices when the process is gone. */
static void *pump_input(void *userdata) {
        Pump *pump = userdata;
        char buf[64 * 1024];
        while (!atomic_load(pump->stop)) {
                struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
                int k = poll(&pfd, 1, 100);
                if (k <= 0)
                        continue;
                ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n <= 0)
                        break;
                if (agent_process_write_stdin(pump->process, buf, (size_t) n, -1, NULL) < 0)
                        return NULL; /* the process closed its input or exited */
        }
        (void) agent_process_close_stdin(pump->process, NULL);
        return NULL;
}

typedef struct ExecArgs {
        const char *env[MAX_ENV + 1];
        size_t n_env;
        AgentExecSpec spec;
} ExecArgs;

static int exec_parse(int argc, char **argv, ExecArgs *a) {
        static const struct option options[] = {
                {"tty", no_argument, NULL, 't'},        {"stdin", no_argument, NULL, 'i'},
                {"interactive", no_argument, NULL, 'i'}, {"env", required_argument, NULL, 'e'},
                {"workdir", required_argument, NULL, 'w'}, {"user", required_argument, NULL, 'u'},
                {},
        };
        int opt;
        a->spec.capture_stdout = a->spec.capture_stderr = true;
        while ((opt = getopt_long(argc, argv, "+tie:w:u:", options, NULL)) >= 0)
                switch (opt) {
                case 't': a->spec.tty = true; break;
                case 'i': a->spec.open_stdin = true; break;
                case 'w': a->spec.workdir = optarg; break;
                case 'u': a->spec.user = optarg; break;
                case 'e':
                        if (a->n_env >= MAX_ENV || !strchr(optarg, '='))
                                return usage_error("exec: bad or too many --env: %s", optarg);
                        a->env[a->n_env++] = optarg;
                        break;
                default: return bad_option(argv, "exec");
                }
        if (optind >= argc)
                return usage_error("exec: no command given");
        a->spec.argv = (const char *const *) argv + optind;
        a->spec.env = a->n_env > 0 ? a->env : NULL;
        return 0;
}

/* Puts our terminal in raw mode for a tty session; returns whether it did. */
static bool terminal_raw(struct termios *saved) {
        if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, saved) < 0)
                return false;
        struct termios raw = *saved;
        cfmakeraw(&raw);
        return tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
}

static void start_thread(pthread_t *t, void *(*fn)(void *), void *arg) {
        if (pthread_create(t, NULL, fn, arg) != 0) {
                fprintf(stderr, "pl-agent-cli: cannot create a thread\n");
                exit(1);
        }
}

static int exec_stream(Cli *cli, AgentProcess *p, const AgentExecSpec *spec, AgentProcessInfo *info, Error **err) {
        atomic_bool stop = false;
        Pump out = {p, AGENT_STREAM_STDOUT, STDOUT_FILENO, &stop, NULL};
        Pump errp = {p, AGENT_STREAM_STDERR, STDERR_FILENO, &stop, NULL};
        Pump in = {p, 0, STDIN_FILENO, &stop, NULL};
        pthread_t t_out, t_err, t_in;
        bool with_out = spec->capture_stdout, with_err = spec->capture_stderr && !spec->tty;

        if (with_out)
                start_thread(&t_out, pump_output, &out);
        if (with_err)
                start_thread(&t_err, pump_output, &errp);
        if (spec->open_stdin)
                start_thread(&t_in, pump_input, &in);
        if (with_out)
                pthread_join(t_out, NULL);
        if (with_err)
                pthread_join(t_err, NULL);

        int r = agent_process_wait(p, info, cli->long_timeout_ms, err);
        if (spec->open_stdin) {
                atomic_store(&stop, true);
                (void) agent_process_close_stdin(p, NULL); /* wakes a writer waiting for credit */
                pthread_join(t_in, NULL);
        }
        if (r >= 0 && (out.error || errp.error))
                r = error_set(err, (out.error ? out.error : errp.error)->code, "%s",
                              error_text(out.error ? out.error : errp.error));
        else if (r >= 0 && (out.sink_error || errp.sink_error))
                r = error_set_errno(err, -(out.sink_error ? out.sink_error : errp.sink_error),
                                    "write the process's standard %s", out.sink_error ? "output" : "error");
        error_free(out.error);
        error_free(errp.error);
        return r;
}

static int verb_exec(int argc, char *argv[], void *userdata) {
        Cli *cli = userdata;
        ExecArgs a = {0};
        int r = exec_parse(argc, argv, &a);
        if (r != 0)
                return r;
        struct winsize ws;
        if (a.spec.tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
                a.spec.rows = ws.ws_row;
                a.spec.cols = ws.ws_col;
        }

        _cleanup_error_ Error *e = NULL;
        _cleanup_agent_process_ AgentProcess *p = NULL;
        CONNECT_OR_RETURN(cli, EXIT_AGENT_ERROR);
        if (agent_client_exec(cli->client, &a.spec, &p, cli->timeout_ms, &e) < 0)
                return fail(e, EXIT_AGENT_ERROR);

        struct termios saved;
        bool raw = a.spec.tty && a.spec.open_stdin && terminal_raw(&saved);
        AgentProcessInfo info;
        r = exec_stream(cli, p, &a.spec, &info, &e);
        if (raw)
                tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        if (r < 0)
                return fail(e, EXIT_AGENT_ERROR);
        return info.exit_code;
}

/* Attaches to the captured output of a process (its buffered bytes, then
 * live output) and exits with its exit code, as exec does. A tty process has
 * one output; a process that captured only one stream takes --stdout or
 * --stderr. */
static int verb_attach(int argc, char *argv[], void *userdata) {
        Cli *cli = userdata;
        static const struct option options[] = {{"stdout", no_argument, NULL, 'o'}, {"stderr", no_argument, NULL, 'e'},
                                                {"tty", no_argument, NULL, 't'}, {}};
        bool want_out = false, want_err = false, tty = false;
        int opt, id = 0;
        while ((opt = getopt_long(argc, argv, "+", options, NULL)) >= 0)
                if (opt == 'o' || opt == 'e' || opt == 't')
                        *(opt == 'o' ? &want_out : opt == 'e' ? &want_err : &tty) = true;
                else
                        return bad_option(argv, "attach");
        if (argc - optind != 1 || parse_int(argv[optind], 1, INT32_MAX, &id) < 0)
                return usage_error("attach: expected one PROCESS_ID");
        if (!want_out && !want_err) {
                want_out = true;
                want_err = !tty;
        }

        _cleanup_error_ Error *e = NULL;
        _cleanup_agent_process_ AgentProcess *p = NULL;
        AgentAttachInfo ai;
        CONNECT_OR_RETURN(cli, EXIT_AGENT_ERROR);
        if (agent_client_attach(cli->client, (uint32_t) id, want_out, want_err, &p, &ai, cli->timeout_ms, &e) < 0)
                return fail(e, EXIT_AGENT_ERROR);
        if (ai.stdout_dropped || ai.stderr_dropped)
                fprintf(stderr, "pl-agent-cli: the agent dropped %" PRIu64 " bytes of stdout and %" PRIu64
                                " of stderr while nobody read them\n",
                        ai.stdout_dropped, ai.stderr_dropped);
        AgentExecSpec spec = {.tty = tty, .capture_stdout = want_out, .capture_stderr = want_err};
        AgentProcessInfo info;
        if (exec_stream(cli, p, &spec, &info, &e) < 0)
                return fail(e, EXIT_AGENT_ERROR);
        return info.exit_code;
}

/* --- kill --- */

static int parse_signal(const char *s, int *ret) {
        static const struct {
                const char *name;
                int sig;
        } table[] = {
                {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},   {"USR1", SIGUSR1},
                {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM},   {"CONT", SIGCONT},
                {"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"WINCH", SIGWINCH},
        };
        if (parse_int(s, 1, 64, ret) == 0)
                return 0;
        if (strncasecmp(s, "SIG", 3) == 0)
                s += 3;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (strcasecmp(s, table[i].name) == 0) {
                        *ret = table[i].sig;
                        return 0;
                }
        return -EINVAL;
}

static int verb_kill(int argc, char *argv[], void *userdata) {
        Cli *cli = userdata;
        static const struct option options[] = {{"all", no_argument, NULL, 'a'}, {}};
        bool all = false;
        int opt, sig, id = 0;
        while ((opt = getopt_long(argc, argv, "+a", options, NULL)) >= 0)
                if (opt == 'a')
                        all = true;
                else
                        return bad_option(argv, "kill");
        int left = argc - optind;
        if (left != 2 && !(all && left == 1))
                return usage_error("kill: expected %sPROCESS_ID SIGNAL", all ? "[PROCESS_ID] " : "");
        if (left == 2 && parse_int(argv[optind], 0, INT32_MAX, &id) < 0)
                return usage_error("kill: bad process id: %s", argv[optind]);
        if (parse_signal(argv[argc - 1], &sig) < 0)
                return usage_error("kill: bad signal: %s", argv[argc - 1]);

        _cleanup_error_ Error *e = NULL;
        CONNECT_OR_RETURN(cli, 1);
        if (agent_client_signal(cli->client, (uint32_t) id, sig, all, &e) < 0)
                return fail(e, 1);
        return 0;
}

/* --- files --- */

static int verb_cp_in(int argc, char *argv[], void *userdata) {
        Cli *cli = userdata;
        _cleanup_close_ int fd = -1;
        int tar_fd = STDIN_FILENO;
        if (strcmp(argv[1], "-") != 0) {
                fd = open(argv[1], O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                        fprintf(stderr, "pl-agent-cli: cannot open %s: %m\n", argv[1]);
                        return 1;
                }
                tar_fd = fd;
        }
        _cleanup_error_ Error *e = NULL;
        AgentCopyStats stats;
        CONNECT_OR_RETURN(cli, 1);
        if (agent_client_copy_in(cli->client, argv[2], tar_fd, &stats, cli->long_timeout_ms, &e) < 0)
                return fail(e, 1);
        printf("copied %" PRIu64 " bytes, %" PRIu64 " entries\n", stats.bytes, stats.entries);
        return 0;
}

static int verb_cp_out(int argc, char *argv[], void *userdata) {
        Cli *cli = userdata;
        if (isatty(STDOUT_FILENO))
                return usage_error("cp-out: refusing to write a tar archive to a terminal");
        _cleanup_error_ Error *e = NULL;
        AgentCopyStats stats;
        CONNECT_OR_RETURN(cli, 1);
        if (agent_client_copy_out(cli->client, argv[1], STDOUT_FILENO, &stats, cli->long_timeout_ms, &e) < 0)
                return fail(e, 1);
        return 0;
}

static const char *mode_type(mode_t mode) {
        switch (mode & S_IFMT) {
        case S_IFREG: return "regular file";
        case S_IFDIR: return "directory";
        case S_IFLNK: return "symbolic link";
        case S_IFCHR: return "character device";
        case S_IFBLK: return "block device";
        case S_IFIFO: return "fifo";
        case S_IFSOCK: return "socket";
        default: return "unknown";
        }
}

static int verb_stat(int argc, char *argv[], void *userdata) {
        Cli *cli = userdata;
        _cleanup_error_ Error *e = NULL;
        AgentStat st;
        CONNECT_OR_RETURN(cli, 1);
        if (agent_client_stat(cli->client, argv[1], &st, cli->timeout_ms, &e) < 0)
                return fail(e, 1);
        printf("name:   %s\n", st.name);
        printf("type:   %s\n", mode_type(st.mode));
        printf("mode:   %04o\n", (unsigned) (st.mode & 07777));
        printf("size:   %" PRIu64 "\n", st.size);
        printf("owner:  %u:%u\n", (unsigned) st.uid, (unsigned) st.gid);
        printf("mtime:  %" PRId64 ".%09" PRId64 "\n", st.mtime_ns / 1000000000, st.mtime_ns % 1000000000);
        if (S_ISLNK(st.mode))
                printf("target: %s\n", st.link_target);
        return 0;
}

static int verb_rm(int argc, char *argv[], void *userdata) {
        Cli *cli = userdata;
        static const struct option options[] = {{"recursive", no_argument, NULL, 'r'}, {}};
        bool recursive = false;
        int opt;
        while ((opt = getopt_long(argc, argv, "+r", options, NULL)) >= 0)
                if (opt == 'r')
                        recursive = true;
                else
                        return bad_option(argv, "rm");
        if (argc - optind != 1)
                return usage_error("rm: expected [-r] PATH");
        _cleanup_error_ Error *e = NULL;
        CONNECT_OR_RETURN(cli, 1);
        if (agent_client_remove(cli->client, argv[optind], recursive, cli->timeout_ms, &e) < 0)
                return fail(e, 1);
        return 0;
}

static int verb_shutdown(int argc, char *argv[], void *userdata) {
        Cli *cli = userdata;
        static const struct option options[] = {{"grace", required_argument, NULL, 'g'}, {}};
        int opt, grace = 0;
        while ((opt = getopt_long(argc, argv, "+g:", options, NULL)) >= 0)
                if (opt != 'g' || parse_int(optarg, 0, INT32_MAX, &grace) < 0)
                        return bad_option(argv, "shutdown");
        _cleanup_error_ Error *e = NULL;
        CONNECT_OR_RETURN(cli, 1);
        if (agent_client_shutdown(cli->client, (uint32_t) grace, cli->timeout_ms, &e) < 0)
                return fail(e, 1);
        return 0;
}

/* --- main --- */

static const Verb verbs[] = {
        {"ping", 0, 0, verb_ping, ""},
        {"info", 0, 0, verb_info, ""},
        {"exec", 1, VERB_ANY, verb_exec, "[--tty] [--stdin] [--env K=V]... [--workdir D] [--user U] -- ARGV..."},
        {"attach", 1, 3, verb_attach, "[--tty | --stdout | --stderr] PROCESS_ID"},
        {"ps", 0, 0, verb_ps, ""},
        {"kill", 1, 3, verb_kill, "[--all] PROCESS_ID SIGNAL"},
        {"cp-in", 2, 2, verb_cp_in, "SRC_TAR_FILE|- DEST"},
        {"cp-out", 1, 1, verb_cp_out, "PATH > archive.tar"},
        {"stat", 1, 1, verb_stat, "PATH"},
        {"rm", 1, 2, verb_rm, "[-r] PATH"},
        {"shutdown", 0, 2, verb_shutdown, "[--grace MS]"},
};

static void help(void) {
        printf("Usage: pl-agent-cli --socket PATH [OPTIONS] COMMAND [ARGS]\n\n"
               "Talks to a portlayer guest agent over its Unix socket.\n\n"
               "Options:\n"
               "  -s, --socket PATH          the agent's socket (or QEMU's virtio-serial socket)\n"
               "      --vsock CID:PORT       the agent over vsock (hosts with vhost-vsock; 1:1024 inside a guest)\n"
               "  -t, --timeout MS           per-request timeout (default 30000); also bounds\n"
               "                             exec's wait and copies, which otherwise have none\n"
               "  -c, --connect-timeout MS   handshake deadline, retried until then (default 10000)\n"
               "  -v, --verbose              debug logging\n"
               "  -h, --help                 this text (COMMAND --help: that command's usage)\n"
               "      --version              the version\n\n"
               "Commands:\n");
        verbs_print(verbs, ELEMENTSOF(verbs), stdout);
}

static int parse_global(int argc, char **argv, Cli *cli) {
        static const struct option options[] = {
                {"socket", required_argument, NULL, 's'},  {"timeout", required_argument, NULL, 't'},
                {"vsock", required_argument, NULL, 'V'},
                {"connect-timeout", required_argument, NULL, 'c'}, {"verbose", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},          {"version", no_argument, NULL, 'R'},
                {},
        };
        int opt;
        while ((opt = getopt_long(argc, argv, "+s:t:c:vh", options, NULL)) >= 0)
                switch (opt) {
                case 's': cli->socket_path = optarg; break;
                case 'V':
                        if (parse_vsock(optarg, &cli->vsock_cid, &cli->vsock_port) < 0)
                                return usage_error("bad --vsock (want CID:PORT): %s", optarg);
                        break;
                case 't':
                        if (parse_int(optarg, 1, INT32_MAX, &cli->timeout_ms) < 0)
                                return usage_error("bad --timeout: %s", optarg);
                        cli->long_timeout_ms = cli->timeout_ms;
                        break;
                case 'c':
                        if (parse_int(optarg, 1, INT32_MAX, &cli->connect_timeout_ms) < 0)
                                return usage_error("bad --connect-timeout: %s", optarg);
                        break;
                case 'v': log_set_level(LOG_LEVEL_DEBUG); break;
                case 'h': help(); exit(0);
                case 'R': version_print(); exit(0);
                default: return usage_error("unknown option or missing argument: %s", argv[optind - 1]);
                }
        return 0;
}

int main(int argc, char **argv) {
        Cli cli = {.timeout_ms = 30000, .long_timeout_ms = -1, .connect_timeout_ms = 10000};

        log_setup("pl-agent-cli", LOG_LEVEL_WARNING, -1);
        opterr = 0;
        signal(SIGPIPE, SIG_IGN);
        int r = parse_global(argc, argv, &cli);
        if (r != 0)
                return r;

        r = verbs_dispatch_after_options(verbs, ELEMENTSOF(verbs), argc, argv, &cli);
        agent_client_free(cli.client);
        return r;
}
