/* plctl.h: plctl, the admin command line over portlayerd's REST API
 * (docs/plctl.md). The library holds the verbs, one file per group in
 * crun's style (plctl-containers.c, plctl-logs.c, plctl-exec.c, plctl-cp.c,
 * plctl-images.c, plctl-system.c) over the REST client (plctl-client.h);
 * main.c only calls plctl_main(). */
#pragma once

/* Parses the global options (--socket, --json, --help, --version), runs one
 * verb and returns the exit status: 0 success, 1 failure (reported once on
 * stderr as "plctl: <message>"), 2 usage; run, exec and wait-like verbs pass
 * a container's exit code through as documented. */
int plctl_main(int argc, char *argv[]);
