/* agent-harness.h: starts the real pl-agent binary in host mode for a test.
 *
 * The agent serves a Unix socket in a fresh temporary directory and runs its
 * processes in a root directory beside it. Stopping it ends the agent by its
 * pid (SIGTERM, then SIGKILL), reaps it and removes the directory (test_tmpdir_remove: PL_KEEP_TEST_DIRS keeps it), so a test
 * leaves nothing behind even when it fails. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "portlayer/client/agent-client.h"

typedef struct AgentHarness {
        pid_t pid;
        char dir[256];    /* temporary directory holding the socket, root and logs */
        char socket[300];
        char root[300];
        char log[300];
} AgentHarness;

/* Starts the agent binary named by $PL_AGENT_BIN; waits for its socket.
 * Returns 0 or a negative errno (and prints why). */
int harness_start(AgentHarness *h);
/* Like harness_start(), but the agent serves the stream device at port (for
 * example a pty slave standing in for a virtio-serial port) instead of a
 * socket; returns once the agent says it is serving. */
int harness_start_serial(AgentHarness *h, const char *port);
/* Connects a client with default options (fails the test on error). */
AgentClient *harness_connect(AgentHarness *h);
/* Stops the agent and removes its directory. Returns -1 (after printing the
 * log) when the agent's log holds a sanitizer report or it died of a signal,
 * so a teardown can fail the test; else 0. */
int harness_stop(AgentHarness *h);

/* A cmocka fixture: the agent started and one client connected
 * (*state is an AgentFixture); teardown frees the client and stops it. */
typedef struct AgentFixture {
        AgentHarness h;
        AgentClient *c;
} AgentFixture;
int agent_fixture_setup(void **state);
int agent_fixture_teardown(void **state);


/* Runs argv in the agent, feeding stdin_data (if not NULL, then EOF), and
 * collects stdout/stderr (NUL-terminated, malloc'd) and the exit code. */
int harness_run(AgentClient *c, const char *const *argv, const char *stdin_data, char **ret_out, char **ret_err,
                int *ret_exit);

/* Runs the shell line with `sh -c` in the agent; returns its exit code
 * (printing line, code and output when that is not 0), or -1 when it could
 * not be run. Its stdout goes to *ret_out (malloc'd, NULL after -1) when
 * ret_out is not NULL. */
int harness_sh(AgentClient *c, const char *line, char **ret_out);
