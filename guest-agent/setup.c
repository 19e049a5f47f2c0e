/* setup.c: the setup and etc requests (docs/protocol.md, "Setup and /etc").
 *
 * setup configures the container's network through rtnetlink (plnetlink):
 * loopback up, each NIC found by its MAC, brought up with its MTU, given its
 * address and the default route; then it mounts the container's disks
 * (virtio-blk, found by serial in sysfs) and virtio-fs shares at targets
 * resolved inside the root like every other path. etc writes the root's
 * /etc/hostname, /etc/hosts and /etc/resolv.conf, each by an atomic rename.
 *
 * Both check the whole request before they change anything, so bad input
 * changes nothing. They run in the agent's loop: the one wait is for a disk
 * hot-plugged just before, bounded by the request's device_wait_ms. */
#include "guest-agent/agent.h"
#include "guest-agent/copy.h"
#include "guest-agent/init.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "common/base/log.h"
#include "common/base/path-util.h"
#include "common/netlink/netlink.h"

#define SETUP_MAX_INTERFACES 8u
#define SETUP_MAX_MOUNTS 64u
#define SETUP_DEFAULT_WAIT_MS 10000u
#define SETUP_MAX_WAIT_MS 60000u
#define SETUP_MAX_TARGET 4096u
#define SETUP_SERIAL_MAX 20u /* virtio-blk serials */
#define SETUP_TAG_MAX 36u    /* virtio-fs tags */
#define SETUP_FSTYPE_MAX 15u
#define ETC_MAX_HOSTS 256u
#define ETC_MAX_NAMES 16u
#define ETC_MAX_NAMESERVERS 8u
#define ETC_MAX_SEARCH 6u
#define ETC_HOSTNAME_MAX 64u
#define ETC_NAME_MAX 253u

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"
#define ALNUM LOWER_DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

/* s is min..max bytes of letters, digits and the characters of extra. */
static bool chars_ok(const char *s, size_t min, size_t max, const char *alphabet, const char *extra) {
        size_t n = s ? strlen(s) : 0;
        if (n < min || n > max)
                return false;
        for (const char *p = s; *p; p++)
                if (!strchr(alphabet, *p) && !strchr(extra, *p))
                        return false;
        return true;
}

static bool host_name_ok(const char *s, size_t max) {
        return chars_ok(s, 1, max, ALNUM, "-_.") && s[0] != '-' && s[0] != '.';
}

static bool ip_address_ok(const char *s) {
        struct in6_addr a;
        return s && (inet_pton(AF_INET, s, &a) == 1 || inet_pton(AF_INET6, s, &a) == 1);
}

/* ---- network --------------------------------------------------------------- */

typedef struct IfacePlan {
        uint8_t mac[6];
        int index;
        char name[16];
} IfacePlan;

static int interface_check(const Plagent__InterfaceConfig *c, size_t i, IfacePlan *plan, Error **err) {
        struct in_addr a;
        unsigned prefix;
        if (netlink_parse_mac(c->mac, plan->mac) < 0)
                return error_set(err, EINVAL, "setup: interface %zu: bad MAC '%.32s' (want aa:bb:cc:dd:ee:ff)", i,
                                 c->mac);
        if (netlink_parse_cidr(c->address, &a, &prefix) < 0 || prefix == 0)
                return error_set(err, EINVAL, "setup: interface %s: bad address '%.64s' (want a.b.c.d/1-32)", c->mac,
                                 c->address);
        if (c->gateway && c->gateway[0] && netlink_parse_ipv4(c->gateway, &a) < 0)
                return error_set(err, EINVAL, "setup: interface %s: bad gateway '%.64s' (want a.b.c.d)", c->mac,
                                 c->gateway);
        if (c->mtu != 0 && (c->mtu < 68 || c->mtu > 65535))
                return error_set(err, EINVAL, "setup: interface %s: MTU %u out of range (68-65535)", c->mac, c->mtu);
        return 0;
}

static int interfaces_check(const Plagent__SetupRequest *req, IfacePlan *plans, Error **err) {
        if (req->n_interfaces > SETUP_MAX_INTERFACES)
                return error_set(err, E2BIG, "setup: %zu interfaces, at most %u", req->n_interfaces,
                                 SETUP_MAX_INTERFACES);
        for (size_t i = 0; i < req->n_interfaces; i++) {
                int r = interface_check(req->interfaces[i], i, &plans[i], err);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (memcmp(plans[i].mac, plans[j].mac, 6) == 0)
                                return error_set(err, EINVAL, "setup: interface %s given twice",
                                                 req->interfaces[i]->mac);
        }
        return 0;
}

/* The host-mode agent serves tests: it must never reconfigure the host. It
 * configures NICs only when told it runs in a namespace of its own
 * (--allow-network), and not even then in PID 1's namespace when it can see
 * that one (a container may hide it). */
static bool in_initial_netns(void) {
        struct stat self, init;
        if (stat("/proc/self/ns/net", &self) < 0 || stat("/proc/1/ns/net", &init) < 0)
                return false; /* cannot tell: --allow-network decides */
        return self.st_dev == init.st_dev && self.st_ino == init.st_ino;
}

static int interface_apply(Netlink *nl, const Plagent__InterfaceConfig *c, const IfacePlan *plan, Error **err) {
        int r = netlink_link_set(nl, plan->index, true, c->mtu, err);
        if (r >= 0)
                r = netlink_addr_add(nl, plan->index, c->address, err);
        if (r >= 0 && c->gateway && c->gateway[0])
                r = netlink_route_add_default(nl, plan->index, c->gateway, err);
        if (r < 0) {
                error_prefix(err, "setup: interface %s (%s)", c->mac, plan->name);
                return r;
        }
        log_info("interface %s (%s): %s%s%s", plan->name, c->mac, c->address, c->gateway[0] ? " via " : "",
                 c->gateway);
        return 0;
}

/* Finds every NIC first (an unknown MAC changes nothing), then configures. */
static int network_apply(Agent *a, const Plagent__SetupRequest *req, IfacePlan *plans, Error **err) {
        if (!a->config.allow_network)
                return error_set(err, EPERM,
                                 "setup: network configuration is off (host mode without --allow-network)");
        if (!a->config.pid1 && in_initial_netns())
                return error_set(err, EPERM,
                                 "setup: refusing to configure the host's initial network namespace (host-mode agent)");
        _cleanup_netlink_ Netlink *nl = NULL;
        int r = netlink_open(&nl, err), lo = 0;
        if (r < 0)
                return error_prefix(err, "setup");
        for (size_t i = 0; i < req->n_interfaces; i++)
                if ((r = netlink_link_by_mac(nl, plans[i].mac, &plans[i].index, plans[i].name, err)) < 0) {
                        error_prefix(err, "setup: interface %s", req->interfaces[i]->mac);
                        return r;
                }
        if ((r = netlink_link_index(nl, "lo", &lo, err)) < 0 || (r = netlink_link_set(nl, lo, true, 0, err)) < 0) {
                error_prefix(err, "setup: loopback");
                return r;
        }
        for (size_t i = 0; r >= 0 && i < req->n_interfaces; i++)
                r = interface_apply(nl, req->interfaces[i], &plans[i], err);
        return r;
}

/* ---- mounts ---------------------------------------------------------------- */

static const char *mount_type(const Plagent__MountConfig *m) {
        if (m->kind == PLAGENT__MOUNT_KIND__MOUNT_KIND_VIRTIOFS)
                return "virtiofs";
        return m->fstype && m->fstype[0] ? m->fstype : "ext4";
}

/* Checks m and sets *ret_target to its normalised target ("a/b", malloc'd). */
static int mount_check(const Plagent__MountConfig *m, size_t i, char **ret_target, Error **err) {
        static const PathRules rules = {.max_len = SETUP_MAX_TARGET, .strip_root = true, .refuse_empty = true};
        switch (m->kind) {
        case PLAGENT__MOUNT_KIND__MOUNT_KIND_BLOCK:
                if (!chars_ok(m->source, 1, SETUP_SERIAL_MAX, ALNUM, "_.:-"))
                        return error_set(err, EINVAL, "setup: mount %zu: bad disk serial '%.64s'", i, m->source);
                if (m->fstype[0] && !chars_ok(m->fstype, 1, SETUP_FSTYPE_MAX, LOWER_DIGITS, ""))
                        return error_set(err, EINVAL, "setup: mount %zu: bad file system type '%.32s'", i, m->fstype);
                break;
        case PLAGENT__MOUNT_KIND__MOUNT_KIND_VIRTIOFS:
                if (!chars_ok(m->source, 1, SETUP_TAG_MAX, ALNUM, "_.-"))
                        return error_set(err, EINVAL, "setup: mount %zu: bad virtio-fs tag '%.64s'", i, m->source);
                if (m->fstype[0] && strcmp(m->fstype, "virtiofs") != 0)
                        return error_set(err, EINVAL, "setup: mount %zu: a virtio-fs share is mounted as virtiofs", i);
                break;
        default:
                return error_set(err, EINVAL, "setup: mount %zu: unknown kind %d", i, (int) m->kind);
        }
        if (!m->target || m->target[0] != '/')
                return error_set(err, EINVAL, "setup: mount %zu: target '%.64s' is not an absolute path", i,
                                 m->target ? m->target : "");
        PathReject why = PATH_REJECT_NONE;
        int r = path_normalize(NULL, m->target, &rules, ret_target, &why);
        if (r == -ENOMEM)
                return error_oom(err);
        if (why == PATH_REJECT_TOO_LONG)
                return error_set(err, ENAMETOOLONG, "setup: mount %zu: target longer than %u bytes", i,
                                 SETUP_MAX_TARGET);
        if (why == PATH_REJECT_EMPTY_RESULT)
                return error_set(err, EINVAL, "setup: mount %zu: cannot mount over the container root", i);
        if (r < 0)
                return error_set(err, EINVAL, "setup: mount %zu: bad target '%.64s' (no '..' allowed)", i, m->target);
        return 0;
}

/* Unmounts what fd (an O_PATH fd of a mount's root) names. */
static void unmount_fd(int fd) {
        char path[32];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        if (umount2(path, 0) < 0 && umount2(path, MNT_DETACH) < 0)
                log_warning("undo a mount: %m");
}

/* Mounting over the root itself (a target that is a symlink to "/") would
 * hide the whole container: refused. */
static int target_not_root(Agent *a, int fd, const char *target, Error **err) {
        struct stat st, root;
        if (fstat(fd, &st) < 0 || fstat(a->root_fd, &root) < 0)
                return error_set_errno(err, errno, "target /%s", target);
        if (st.st_dev == root.st_dev && st.st_ino == root.st_ino)
                return error_set(err, EINVAL, "target /%s resolves to the container root", target);
        return 0;
}

/* Before anything is mounted: a target that exists must be a directory other
 * than the root (one that does not exist yet is created by mount_one()). */
static int target_check(Agent *a, const char *target, size_t i, Error **err) {
        _cleanup_close_ int fd = root_open(a->root_fd, target, O_PATH | O_DIRECTORY, 0);
        if (fd == -ENOENT)
                return 0;
        if (fd < 0)
                return error_set_errno(err, -fd, "setup: mount %zu: target /%s", i, target);
        int r = target_not_root(a, fd, target, err);
        if (r < 0)
                error_prefix(err, "setup: mount %zu", i);
        return r;
}

/* The device of the disk with serial, waited for up to wait_ms. */
static int block_device(const char *serial, unsigned wait_ms, char *ret, size_t size, Error **err) {
        char name[32];
        if (init_wait_for_attr("/sys/block", "vd", "serial", serial, (int) wait_ms, name, sizeof name) < 0)
                return error_set(err, ENODEV, "no virtio disk with serial '%s' appeared within %u ms", serial, wait_ms);
        snprintf(ret, size, "/dev/%s", name);
        return 0;
}

/* Mounts m at target (normalised) inside the root; *ret_fd is an O_PATH fd of
 * the new mount's root, for an undo. */
static int mount_one(Agent *a, const Plagent__MountConfig *m, const char *target, unsigned wait_ms, int *ret_fd,
                     Error **err) {
        char dev[64];
        const char *source = m->source;
        int r;
        if (m->kind == PLAGENT__MOUNT_KIND__MOUNT_KIND_BLOCK) {
                if ((r = block_device(m->source, wait_ms, dev, sizeof dev, err)) < 0)
                        return r;
                source = dev;
        }
        _cleanup_close_ int fd = root_mkdir_p(a->root_fd, target);
        if (fd < 0)
                return error_set_errno(err, -fd, "target /%s", target);
        if ((r = target_not_root(a, fd, target, err)) < 0)
                return r;
        char path[32];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        unsigned long flags = MS_NODEV | MS_NOSUID | (m->read_only ? MS_RDONLY : 0);
        if (mount(source, path, mount_type(m), flags, NULL) < 0)
                return error_set_errno(err, errno, "mount %s (%s) on /%s", source, mount_type(m), target);
        *ret_fd = root_open(a->root_fd, target, O_PATH | O_DIRECTORY, 0);
        log_info("mounted %s (%s%s) on /%s", source, mount_type(m), m->read_only ? ", read-only" : "", target);
        return 0;
}

static int mounts_check(Agent *a, const Plagent__SetupRequest *req, char **targets, Error **err) {
        if (req->n_mounts > SETUP_MAX_MOUNTS)
                return error_set(err, E2BIG, "setup: %zu mounts, at most %u", req->n_mounts, SETUP_MAX_MOUNTS);
        if (req->device_wait_ms > SETUP_MAX_WAIT_MS)
                return error_set(err, EINVAL, "setup: device wait of %u ms, at most %u", req->device_wait_ms,
                                 SETUP_MAX_WAIT_MS);
        for (size_t i = 0; i < req->n_mounts; i++) {
                int r = mount_check(req->mounts[i], i, &targets[i], err);
                if (r < 0 || (r = target_check(a, targets[i], i, err)) < 0)
                        return r;
        }
        return 0;
}

/* Mounts in order; on a failure the mounts made so far are undone. */
static int mounts_apply(Agent *a, const Plagent__SetupRequest *req, char **targets, Error **err) {
        unsigned wait_ms = req->device_wait_ms ? req->device_wait_ms : SETUP_DEFAULT_WAIT_MS;
        _cleanup_free_ int *fds = calloc(req->n_mounts + 1, sizeof(int));
        if (!fds)
                return error_oom(err);
        size_t done = 0;
        int r = 0;
        for (; done < req->n_mounts; done++) {
                fds[done] = -1;
                if ((r = mount_one(a, req->mounts[done], targets[done], wait_ms, &fds[done], err)) < 0) {
                        error_prefix(err, "setup: mount %zu", done);
                        break;
                }
        }
        for (size_t i = done; i-- > 0;) {
                if (r < 0 && fds[i] >= 0)
                        unmount_fd(fds[i]);
                safe_close(fds[i]);
        }
        return r;
}

int agent_setup(Agent *a, const Plagent__SetupRequest *req, Error **err) {
        if (a->setup_done)
                return error_set(err, EALREADY, "setup: already done for this boot");
        IfacePlan plans[SETUP_MAX_INTERFACES] = {0};
        char **targets = calloc(req->n_mounts + 1, sizeof(char *));
        if (!targets)
                return error_oom(err);
        int r = interfaces_check(req, plans, err);
        if (r >= 0)
                r = mounts_check(a, req, targets, err);
        /* As PID 1, loopback comes up even when there is no NIC. */
        if (r >= 0 && (a->config.pid1 || req->n_interfaces > 0))
                r = network_apply(a, req, plans, err);
        if (r >= 0)
                r = mounts_apply(a, req, targets, err);
        for (size_t i = 0; i < req->n_mounts; i++)
                free(targets[i]);
        free(targets);
        if (r >= 0)
                a->setup_done = true;
        return r;
}

/* ---- /etc ------------------------------------------------------------------ */

static int etc_check(const Plagent__EtcRequest *req, Error **err) {
        if ((req->write_hostname || req->hostname[0]) && !host_name_ok(req->hostname, ETC_HOSTNAME_MAX))
                return error_set(err, EINVAL, "etc: bad hostname '%.80s' (1-%u letters, digits, '-', '_', '.')",
                                 req->hostname, ETC_HOSTNAME_MAX);
        if (req->n_hosts > ETC_MAX_HOSTS || req->n_nameservers > ETC_MAX_NAMESERVERS ||
            req->n_search > ETC_MAX_SEARCH)
                return error_set(err, E2BIG, "etc: at most %u hosts entries, %u nameservers and %u search domains",
                                 ETC_MAX_HOSTS, ETC_MAX_NAMESERVERS, ETC_MAX_SEARCH);
        for (size_t i = 0; i < req->n_hosts; i++) {
                const Plagent__HostEntry *h = req->hosts[i];
                if (!ip_address_ok(h->address))
                        return error_set(err, EINVAL, "etc: hosts entry %zu: bad address '%.64s'", i, h->address);
                if (h->n_names == 0 || h->n_names > ETC_MAX_NAMES)
                        return error_set(err, EINVAL, "etc: hosts entry %s: 1 to %u names", h->address, ETC_MAX_NAMES);
                for (size_t j = 0; j < h->n_names; j++)
                        if (!host_name_ok(h->names[j], ETC_NAME_MAX))
                                return error_set(err, EINVAL, "etc: hosts entry %s: bad name '%.80s'", h->address,
                                                 h->names[j]);
        }
        for (size_t i = 0; i < req->n_nameservers; i++)
                if (!ip_address_ok(req->nameservers[i]))
                        return error_set(err, EINVAL, "etc: bad nameserver '%.64s'", req->nameservers[i]);
        for (size_t i = 0; i < req->n_search; i++)
                if (!host_name_ok(req->search[i], ETC_NAME_MAX))
                        return error_set(err, EINVAL, "etc: bad search domain '%.80s'", req->search[i]);
        return 0;
}

static int text_hosts(const Plagent__EtcRequest *req, char **ret, size_t *ret_len) {
        FILE *f = open_memstream(ret, ret_len);
        if (!f)
                return -ENOMEM;
        fputs("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n", f);
        if (req->hostname[0])
                fprintf(f, "127.0.1.1\t%s\n", req->hostname);
        for (size_t i = 0; i < req->n_hosts; i++) {
                fputs(req->hosts[i]->address, f);
                for (size_t j = 0; j < req->hosts[i]->n_names; j++)
                        fprintf(f, "%c%s", j ? ' ' : '\t', req->hosts[i]->names[j]);
                fputc('\n', f);
        }
        return fclose(f) == 0 ? 0 : -ENOMEM;
}

static int text_resolv(const Plagent__EtcRequest *req, char **ret, size_t *ret_len) {
        FILE *f = open_memstream(ret, ret_len);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < req->n_nameservers; i++)
                fprintf(f, "nameserver %s\n", req->nameservers[i]);
        if (req->n_search > 0) {
                fputs("search", f);
                for (size_t i = 0; i < req->n_search; i++)
                        fprintf(f, " %s", req->search[i]);
                fputc('\n', f);
        }
        return fclose(f) == 0 ? 0 : -ENOMEM;
}

/* Writes the n texts to their names in the root's /etc. */
static int etc_write_files(Agent *a, const char *const *names, char *const *texts, const size_t *lens, size_t n,
                           Error **err) {
        _cleanup_close_ int etc = root_mkdir_p(a->root_fd, "etc");
        if (etc < 0)
                return error_set_errno(err, -etc, "etc: /etc");
        for (size_t i = 0; i < n; i++) {
                int r = write_file_atomic_at(etc, names[i], texts[i], lens[i], 0644);
                if (r < 0)
                        return error_set_errno(err, -r, "etc: write /etc/%s", names[i]);
        }
        return 0;
}

int agent_write_etc(Agent *a, const Plagent__EtcRequest *req, Error **err) {
        int r = etc_check(req, err);
        if (r < 0)
                return r;
        const char *names[3];
        char *texts[3] = {NULL, NULL, NULL};
        size_t lens[3], n = 0;
        if (req->write_hostname) {
                names[n] = "hostname";
                r = asprintf(&texts[n], "%s\n", req->hostname) < 0 ? -ENOMEM : 0;
                lens[n++] = r < 0 ? 0 : strlen(req->hostname) + 1;
        }
        if (r >= 0 && req->write_hosts) {
                names[n] = "hosts";
                r = text_hosts(req, &texts[n], &lens[n]);
                n++;
        }
        if (r >= 0 && req->write_resolv) {
                names[n] = "resolv.conf";
                r = text_resolv(req, &texts[n], &lens[n]);
                n++;
        }
        if (r < 0)
                error_oom(err);
        else if (n > 0)
                r = etc_write_files(a, names, texts, lens, n, err);
        for (size_t i = 0; i < n; i++)
                free(texts[i]);
        if (r < 0)
                return r;
        /* The host-mode agent shares its host's hostname: never rename it. */
        if (req->write_hostname && a->config.pid1 && sethostname(req->hostname, strlen(req->hostname)) < 0)
                return error_set_errno(err, errno, "etc: set hostname '%s'", req->hostname);
        return 0;
}
