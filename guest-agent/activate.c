/* activate.c: a pool guest becomes a container's guest (see agent.h).
 *
 * A guest booted with pl.pool=1 stopped stage 1 after finding its port and
 * serves the initramfs, not chrooted. The host takes it from the pool,
 * resumes it, hot-plugs the container's root disk and sends activate: the
 * rest of stage 1 runs now (init_root_setup), the clock is set from the
 * host's, and the host's entropy goes into the kernel's pool with a forced
 * CRNG reseed, so no two guests of one pool share RNG state or time, even
 * if their memory came from one image. */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/base/log.h"
#include "guest-agent/agent.h"
#include "guest-agent/init.h"

#define ACTIVATE_ENTROPY_MIN 32
#define ACTIVATE_ENTROPY_MAX 512
#define ACTIVATE_DEFAULT_WAIT_MS 10000
#define ACTIVATE_MAX_WAIT_MS 60000

static bool serial_ok(const char *s) {
        size_t n = strlen(s);
        if (n < 1 || n > 20)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      strchr("_.-", *s)))
                        return false;
        return true;
}

static bool hostname_ok(const char *s) {
        size_t n = strlen(s);
        if (n < 1 || n > 64)
                return false;
        for (; *s; s++)
                if ((unsigned char) *s <= ' ' || (unsigned char) *s >= 0x7f || *s == '/')
                        return false;
        return true;
}

static int activate_check(const Plagent__ActivateRequest *req, InitConfig *c, Error **err) {
        if (!serial_ok(req->root_serial))
                return error_set(err, EINVAL, "activate: root_serial '%.32s' must match [A-Za-z0-9_.-]{1,20}",
                                 req->root_serial);
        if (req->fstype[0] && (strlen(req->fstype) >= sizeof c->fstype || strchr(req->fstype, '/')))
                return error_set(err, EINVAL, "activate: bad fstype");
        if (!hostname_ok(req->hostname))
                return error_set(err, EINVAL, "activate: hostname must be 1..64 printable bytes");
        if (req->entropy.len < ACTIVATE_ENTROPY_MIN || req->entropy.len > ACTIVATE_ENTROPY_MAX)
                return error_set(err, EINVAL, "activate: %zu bytes of entropy, need %d..%d", req->entropy.len,
                                 ACTIVATE_ENTROPY_MIN, ACTIVATE_ENTROPY_MAX);
        if (req->device_wait_ms > ACTIVATE_MAX_WAIT_MS)
                return error_set(err, EINVAL, "activate: device wait of %u ms, at most %d", req->device_wait_ms,
                                 ACTIVATE_MAX_WAIT_MS);
        if (req->realtime_ns < 0)
                return error_set(err, EINVAL, "activate: negative realtime_ns");
        strcpy(c->root_serial, req->root_serial);
        strcpy(c->fstype, req->fstype[0] ? req->fstype : "ext4");
        strcpy(c->hostname, req->hostname);
        c->root_ro = req->read_only;
        c->root_grow = !req->no_grow;
        c->wait_ms = req->device_wait_ms ? (int) req->device_wait_ms : ACTIVATE_DEFAULT_WAIT_MS;
        return 0;
}

/* Credits the host's bytes to the input pool and makes the CRNG reseed from
 * it now, rather than at its next scheduled reseed. */
static int mix_entropy(const uint8_t *bytes, size_t len, Error **err) {
        struct {
                struct rand_pool_info info;
                uint8_t buf[ACTIVATE_ENTROPY_MAX];
        } e;
        e.info.entropy_count = (int) (len * 8);
        e.info.buf_size = (int) len;
        memcpy(e.buf, bytes, len);
        _cleanup_close_ int fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return error_set_errno(err, errno, "activate: open /dev/urandom");
        int r = 0;
        if (ioctl(fd, RNDADDENTROPY, &e.info) < 0)
                r = error_set_errno(err, errno, "activate: RNDADDENTROPY");
        else if (ioctl(fd, RNDRESEEDCRNG) < 0)
                r = error_set_errno(err, errno, "activate: RNDRESEEDCRNG");
        explicit_bzero(&e, sizeof e);
        return r;
}

int agent_activate(Agent *a, const Plagent__ActivateRequest *req, Error **err) {
        if (!a->config.pool)
                return error_set(err, EALREADY, "activate: this agent was not booted for the pool, or is active");
        InitConfig c = *a->config.pool;
        int r = activate_check(req, &c, err);
        if (r < 0)
                return r;
        if (req->realtime_ns > 0) {
                struct timespec ts = {.tv_sec = req->realtime_ns / 1000000000, .tv_nsec = req->realtime_ns % 1000000000};
                if (clock_settime(CLOCK_REALTIME, &ts) < 0)
                        log_warning("activate: set the clock: %m");
        }
        if ((r = mix_entropy(req->entropy.data, req->entropy.len, err)) < 0)
                return r;
        char *grow_error = NULL;
        if ((r = init_root_setup(&c, &grow_error, err)) < 0) {
                free(grow_error);
                return error_prefix(err, "activate");
        }
        int fd = open(INIT_ROOT_MOUNT, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                free(grow_error);
                return error_set_errno(err, errno, "activate: open %s", INIT_ROOT_MOUNT);
        }
        safe_close(a->root_fd);
        a->root_fd = fd;
        a->config.root = INIT_ROOT_MOUNT;
        a->config.chroot = true;
        a->config.root_grow_error = grow_error; /* kept for guest info until power-off */
        a->config.pool = NULL;
        log_info("activated: serving %s as %s", INIT_ROOT_MOUNT, c.hostname);
        return 0;
}
