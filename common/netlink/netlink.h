/* netlink.h: the few rtnetlink operations the port layer needs, on one
 * NETLINK_ROUTE socket of the caller's network namespace (libc and the
 * kernel's uapi headers only, so the static guest agent links it too).
 *
 * The guest agent uses it to bring up the container's NICs (found by MAC),
 * give them an address and a default route; the daemon uses it for bridges
 * and the taps on them. Every request asks for an acknowledgement and
 * returns the kernel's own errno (negative) with its extended message when
 * the kernel gives one; replies are matched by sequence number and sender,
 * and read into a bounded buffer (a reply that does not fit is -EMSGSIZE,
 * never a truncation). A Netlink is not thread-safe: one per thread.
 *
 * Also here: the strict IPv4 address, CIDR and MAC parsers both sides use
 * on what they are about to hand to the kernel. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/base/error.h"
#include "common/base/macro.h"

#define NETLINK_IFNAME_MAX 15 /* IFNAMSIZ - 1 */

typedef struct Netlink Netlink;

/* Opens a NETLINK_ROUTE socket (close-on-exec) in the calling thread's
 * network namespace. Returns 0, or a negative errno (socket/bind). */
int netlink_open(Netlink **ret, Error **err);

/* Closes nl (NULL-safe); returns NULL. */
Netlink *netlink_close(Netlink *nl);
DEFINE_TRIVIAL_CLEANUP_FUNC(Netlink *, netlink_close);
#define _cleanup_netlink_ _cleanup_(netlink_closep)

/* The index of the link called name. Returns 0, -EINVAL for a name that is
 * empty or longer than NETLINK_IFNAME_MAX, -ENODEV when there is none. */
int netlink_link_index(Netlink *nl, const char *name, int *ret_index, Error **err);

/* The link whose hardware address is mac (the lowest index when several
 * share it, as a bridge and its first port may): its index and name.
 * Returns 0 or -ENODEV. */
int netlink_link_by_mac(Netlink *nl, const uint8_t mac[6], int *ret_index, char ret_name[16], Error **err);

/* Sets link index up (or down) and, when mtu is not 0, its MTU. Returns 0,
 * or the kernel's negative errno (-ENODEV, -EINVAL for an MTU the device
 * refuses, -EPERM). */
int netlink_link_set(Netlink *nl, int index, bool up, unsigned mtu, Error **err);

/* Enslaves link index to master_index (a bridge), or frees it from its
 * master when master_index is 0. Returns 0 or the kernel's negative errno. */
int netlink_link_set_master(Netlink *nl, int index, int master_index, Error **err);

/* Creates a bridge called name (down, no address). Returns 0, -EINVAL for a
 * bad name, -EEXIST when a link of that name exists (of any kind). */
int netlink_bridge_add(Netlink *nl, const char *name, Error **err);

/* Deletes link index. Returns 0, -ENODEV, or -EOPNOTSUPP for a link that
 * cannot be deleted (a physical NIC, lo). */
int netlink_link_del(Netlink *nl, int index, Error **err);

/* Adds the IPv4 address cidr ("10.88.0.1/16", host bits kept; the broadcast
 * is derived) to link index. Adding an address that is already there with
 * that prefix is not an error (0): callers reconcile by adding again.
 * Returns 0, -EINVAL for a bad CIDR or a /0, -ENODEV. */
int netlink_addr_add(Netlink *nl, int index, const char *cidr, Error **err);

/* Sets the main table's IPv4 default route: via gateway (a dotted quad) out
 * of link index, replacing a default route that is there. Returns 0,
 * -EINVAL for a bad address, -ENETUNREACH when gateway is not on a network
 * of the link (add the address first), -ENODEV. */
int netlink_route_add_default(Netlink *nl, int index, const char *gateway, Error **err);

/* Every link whose name starts with prefix (for reconciling taps), as a
 * malloc'd NULL-terminated array of malloc'd names in index order (free
 * with netlink_names_free()). An empty prefix lists every link. Returns 0 or
 * a negative errno. */
int netlink_links_with_prefix(Netlink *nl, const char *prefix, char ***ret_names, Error **err);

/* Frees a name list from netlink_links_with_prefix() (NULL-safe); returns NULL. */
char **netlink_names_free(char **names);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, netlink_names_free);
#define _cleanup_netlink_names_ _cleanup_(netlink_names_freep)

/* Parses "aa:bb:cc:dd:ee:ff" (two hex digits per byte, either case, ':'
 * only) into ret. Returns 0 or -EINVAL; ret is only written on success. */
int netlink_parse_mac(const char *s, uint8_t ret[6]);

/* Writes mac as "aa:bb:cc:dd:ee:ff" (lower case) into buf; returns buf. */
char *netlink_format_mac(const uint8_t mac[6], char buf[18]);

/* Parses a dotted-quad IPv4 address (exactly four decimal parts, as
 * inet_pton() takes them). Returns 0 or -EINVAL. */
int netlink_parse_ipv4(const char *s, struct in_addr *ret);

/* Parses "a.b.c.d/n" with n in 0..32 (decimal, no sign, no leading zero
 * beyond "0") into the address (host bits kept) and the prefix length.
 * Returns 0 or -EINVAL; outputs are only written on success. */
int netlink_parse_cidr(const char *s, struct in_addr *ret_addr, unsigned *ret_prefix);
