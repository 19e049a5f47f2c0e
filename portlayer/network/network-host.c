/* network-host.c: what bridge mode changes on the host, in the daemon's
 * network namespace: a bridge per network (created when missing, given the
 * gateway address, set up; through plnetlink), the sysctls the rules need
 * (net.ipv4.ip_forward=1, and route_localnet=1 on each bridge so a
 * connection to 127.0.0.1 that the output chain DNATs may be routed out of
 * it), and the taps of VMs that are gone. */
#include "network-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/base/log.h"
#include "common/netlink/netlink.h"

static int sysctl_write(const char *path, const char *value, Error **err) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, value, strlen(value)) != (ssize_t) strlen(value))
                return error_set_errno(err, errno, "write %s", path);
        return 0;
}

int host_sysctls(const Network *net, Error **err) {
        int r = sysctl_write("/proc/sys/net/ipv4/ip_forward", "1", err);
        if (r < 0)
                return r;
        char path[96];
        snprintf(path, sizeof path, "/proc/sys/net/ipv4/conf/%s/route_localnet", net->bridge);
        return sysctl_write(path, "1", err);
}

int host_bridge_ensure(const Network *net, Error **err) {
        _cleanup_netlink_ Netlink *nl = NULL;
        int r = netlink_open(&nl, err);
        if (r < 0)
                return r;
        r = netlink_bridge_add(nl, net->bridge, NULL);
        if (r < 0 && r != -EEXIST)
                return error_set_errno(err, -r, "create bridge %s", net->bridge);
        int index = 0;
        r = netlink_link_index(nl, net->bridge, &index, err);
        if (r < 0)
                return r;
        char cidr[24];
        snprintf(cidr, sizeof cidr, "%s/%u", net->gateway, net->prefix);
        r = netlink_addr_add(nl, index, cidr, err);
        if (r >= 0)
                r = netlink_link_set(nl, index, true, 0, err);
        if (r < 0) {
                error_prefix(err, "bridge %s", net->bridge);
                return r;
        }
        return host_sysctls(net, err);
}

int host_bridge_remove(const Network *net, Error **err) {
        _cleanup_netlink_ Netlink *nl = NULL;
        int r = netlink_open(&nl, err);
        if (r < 0)
                return r;
        int index = 0;
        r = netlink_link_index(nl, net->bridge, &index, NULL);
        if (r == -ENODEV)
                return 0;
        if (r >= 0)
                r = netlink_link_del(nl, index, err);
        if (r < 0)
                return error_set_errno(err, -r, "remove bridge %s", net->bridge);
        return 0;
}

/* "pl" + 12 lower-case hex: the taps network_tap_name() gives. */
static bool tap_name_ours(const char *name) {
        return strlen(name) == 14 && strncmp(name, "pl", 2) == 0 && strspn(name + 2, "0123456789abcdef") == 12;
}

int network_taps_prune(NetworkHost *h, bool (*keep)(const char *tap, void *userdata), void *userdata, Error **err) {
        if (h->mode != NETWORK_MODE_BRIDGE || !h->manage_host)
                return 0;
        _cleanup_netlink_ Netlink *nl = NULL;
        int r = netlink_open(&nl, err);
        if (r < 0)
                return r;
        _cleanup_netlink_names_ char **names = NULL;
        r = netlink_links_with_prefix(nl, "pl", &names, err);
        if (r < 0)
                return r;
        int pruned = 0;
        for (char **n = names; *n; n++) {
                if (!tap_name_ours(*n) || keep(*n, userdata))
                        continue;
                int index = 0;
                if (netlink_link_index(nl, *n, &index, NULL) < 0)
                        continue; /* gone meanwhile */
                r = netlink_link_del(nl, index, err);
                if (r < 0 && r != -ENODEV) {
                        error_prefix(err, "remove tap %s", *n);
                        return r;
                }
                log_info("network: removed tap %s of a VM that is gone", *n);
                pruned++;
        }
        return pruned;
}
