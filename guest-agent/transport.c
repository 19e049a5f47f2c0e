/* transport.c: the byte streams the agent serves on.
 *
 * A Unix socket for host mode and tests, an AF_VSOCK listener inside a guest,
 * and a virtio-serial port device (one long-lived stream, no accept). Each
 * returns a non-blocking, close-on-exec fd; the loop in agent.c drives it.
 * A vsock peer is served only when it is the host, unless told otherwise
 * (transport_vsock_peer_allowed: the policy alone, testable without vsock). */
#include "guest-agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "common/base/macro.h"

static const char *const transport_names[_TRANSPORT_KIND_MAX] = {
        [TRANSPORT_UNIX] = "unix",
        [TRANSPORT_VSOCK] = "vsock",
        [TRANSPORT_SERIAL] = "virtio-serial",
};

const char *transport_kind_to_string(TransportKind k) {
        return k >= 0 && k < _TRANSPORT_KIND_MAX ? transport_names[k] : "?";
}

int transport_listen_unix(const char *path, Error **err) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof sa.sun_path)
                return error_set(err, ENAMETOOLONG, "unix socket path '%s' is longer than %zu bytes", path,
                                 sizeof sa.sun_path - 1);
        strcpy(sa.sun_path, path);

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return error_set_errno(err, errno, "socket(AF_UNIX)");

        /* A stale socket from a previous run would make bind fail; only a socket is removed. */
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
                (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return error_set_errno(err, errno, "bind '%s'", path);
        if (listen(fd, 8) < 0)
                return error_set_errno(err, errno, "listen '%s'", path);
        return TAKE_FD(fd);
}

bool transport_vsock_peer_allowed(const struct sockaddr *peer, socklen_t len, bool allow_local) {
        if (!peer || len < (socklen_t) sizeof(struct sockaddr_vm) || peer->sa_family != AF_VSOCK)
                return false;
        const struct sockaddr_vm *vm = (const struct sockaddr_vm *) peer;
        return vm->svm_cid == VMADDR_CID_HOST || allow_local;
}

int transport_listen_vsock(unsigned port, Error **err) {
        _cleanup_close_ int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return error_set_errno(err, errno, "socket(AF_VSOCK)");
        struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return error_set_errno(err, errno, "bind vsock port %u", port);
        if (listen(fd, 8) < 0)
                return error_set_errno(err, errno, "listen vsock port %u", port);
        return TAKE_FD(fd);
}

int transport_open_serial(const char *path, Error **err) {
        _cleanup_close_ int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return error_set_errno(err, errno, "open virtio-serial port '%s'", path);
        /* A terminal-like port (hvc console, a pty in tests) must pass bytes
         * untouched: no echo, no line editing, no CR/LF translation. */
        struct termios t;
        if (isatty(fd) && tcgetattr(fd, &t) == 0) {
                cfmakeraw(&t);
                if (tcsetattr(fd, TCSANOW, &t) < 0)
                        return error_set_errno(err, errno, "set '%s' to raw mode", path);
        }
        return TAKE_FD(fd);
}
