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
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/netlink/netlink.h"
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
        uint8_t mac[6];
        if (req->n_wait_macs > 4)
                return error_set(err, E2BIG, "activate: %zu NICs to wait for, at most 4", req->n_wait_macs);
        for (size_t i = 0; i < req->n_wait_macs; i++)
                if (netlink_parse_mac(req->wait_macs[i], mac) < 0)
                        return error_set(err, EINVAL, "activate: wait_macs[%zu] is not a MAC address", i);
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
        /* the kernel's struct ends in a flexible array: room for it after */
        union {
                struct rand_pool_info info;
                uint8_t raw[sizeof(struct rand_pool_info) + ACTIVATE_ENTROPY_MAX];
        } e;
        if (len > ACTIVATE_ENTROPY_MAX)
                return error_set(err, EINVAL, "activate: %zu bytes of entropy, at most %d", len, ACTIVATE_ENTROPY_MAX);
        e.info.entropy_count = (int) (len * 8);
        e.info.buf_size = (int) len;
        memcpy(e.raw + offsetof(struct rand_pool_info, buf), bytes, len);
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

/* Hot-plugged NICs probe asynchronously: setup finds them by MAC only once
 * they exist, so activate answers after they do. */
static int wait_nics(char **macs, size_t n, int wait_ms, Error **err) {
        _cleanup_(netlink_closep) Netlink *nl = NULL;
        if (n == 0)
                return 0;
        int r = netlink_open(&nl, err);
        if (r < 0)
                return error_prefix(err, "activate");
        uint64_t deadline = deadline_after_ms(wait_ms);
        for (size_t i = 0; i < n; i++) {
                uint8_t mac[6];
                int index;
                char name[16];
                (void) netlink_parse_mac(macs[i], mac);
                while (netlink_link_by_mac(nl, mac, &index, name, NULL) < 0)
                        if (deadline_poll_ms(deadline) == 0)
                                return error_set(err, ENODEV, "activate: no NIC %s appeared within %d ms", macs[i],
                                                 wait_ms);
                        else
                                nanosleep(&(struct timespec){.tv_nsec = 10 * 1000000L}, NULL);
        }
        return 0;
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
        if ((r = wait_nics(req->wait_macs, req->n_wait_macs, c.wait_ms, err)) < 0) {
                free(grow_error);
                return r;
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
