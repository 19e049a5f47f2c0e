/* network.h: container networks of the port layer (library plnetwork).
 *
 * A NetworkHost keeps every network of one daemon: its record under
 * <state>/networks/<name>.json (written atomically, loaded at open), the
 * address leases of its containers (one file per address under
 * <state>/networks/<name>.leases/, created with O_EXCL and fsync'd before the
 * address is handed out, so no address is given twice, also across a
 * kill -9), the ports containers publish (<state>/networks/ports/<id>.json),
 * and, in bridge mode, what the host needs for them: a Linux bridge per
 * network (through plnetlink), the sysctls (ip_forward; route_localnet on each
 * bridge so a DNAT from 127.0.0.1 may leave through it) and one nftables table
 * `ip portlayer` rebuilt whole, in one transaction, on every change
 * (network-rules.c builds its text, network-nft.c applies it: the only user
 * of libnftables).
 *
 * A network named "default" exists from the first open; "none" is reserved
 * (a container without a NIC). Thread-safe: one mutex guards the host; it is
 * held across file and netlink work (short), never across a VM boot. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/base/error.h"

#define NETWORK_NAME_MAX 64
#define NETWORK_DEFAULT "default"
#define NETWORK_NONE "none"
#define NETWORK_DEFAULT_SUBNET "10.88.0.0/16"
#define NETWORK_MAC_PREFIX "0a:70:6c" /* locally administered, unicast: docs/networking.md */
#define NETWORK_PORTS_MAX 64          /* published ports per container */
#define NETWORK_ID_MAX 64             /* bytes of a container id */
#define NETWORK_IFNAME_MAX 15         /* IFNAMSIZ - 1 */

typedef enum NetworkMode {
        NETWORK_MODE_BRIDGE, /* a bridge per network, taps, nftables: needs root */
        NETWORK_MODE_USER,   /* user-mode NICs: nothing on the host */
        _NETWORK_MODE_MAX,
} NetworkMode;

const char *network_mode_to_string(NetworkMode m); /* "bridge", "user" */
int network_mode_from_string(const char *s);       /* a NetworkMode or -EINVAL */

typedef struct NetworkHost NetworkHost;

typedef struct NetworkHostConfig {
        const char *state_dir;      /* absolute; networks/ lives here */
        const char *default_subnet; /* of "default" when it is created; NULL: 10.88.0.0/16 */
        NetworkMode mode;
        bool manage_host;           /* bridge mode: make bridges, set sysctls, apply the nft table
                                     * (false in unit tests: records, leases and rule text only) */
} NetworkHostConfig;

/* Opens the host: loads every network record, creating "default" when
 * missing, drops lease files that were created but never written (a kill -9
 * in between: the address was never handed out), and with manage_host sets
 * the bridges up and applies the rules of the state on disk, replacing any a
 * killed daemon left. */
int network_host_open(const NetworkHostConfig *cfg, NetworkHost **ret, Error **err);
/* Frees the host; bridges and rules stay (containers keep running).
 * NULL-safe; returns NULL. */
NetworkHost *network_host_free(NetworkHost *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(NetworkHost *, network_host_free);

NetworkMode network_host_mode(const NetworkHost *h);

/* --- networks --- */

/* Creates network name on subnet (an IPv4 CIDR with prefix 8-30; NULL: not
 * allowed except for "default"). -EINVAL bad name or subnet, -EEXIST name
 * taken or the subnet overlaps another network's (message says which).
 * *ret (may be NULL): the network as network_inspect renders it. */
int network_create(NetworkHost *h, const char *name, const char *subnet, json_t **ret, Error **err);
/* {"name", "subnet", "gateway", "bridge", "created", "containers"} (new
 * reference); -ENOENT. */
int network_inspect(NetworkHost *h, const char *name, json_t **ret, Error **err);
/* Every network as inspect renders it, by name. */
int network_list(NetworkHost *h, json_t **ret, Error **err);
/* Removes an unused network (and its bridge). -ENOENT, -EBUSY while a
 * container holds a lease on it, and for "default" (the message says
 * which). */
int network_remove(NetworkHost *h, const char *name, Error **err);
/* Checks a subnet a network may have: an IPv4 CIDR, prefix 8-30, no host
 * bits. -EINVAL. */
int network_subnet_validate(const char *subnet, Error **err);
/* Checks what a container may name: a network name
 * ([A-Za-z0-9][A-Za-z0-9_.-], at most 64 bytes) or "none". -EINVAL. */
int network_name_validate(const char *name, Error **err);
/* 0 when name is a network (or "none"), -ENOENT otherwise. */
int network_exists(NetworkHost *h, const char *name, Error **err);

/* --- leases --- */

typedef struct NetworkLease {
        char network[NETWORK_NAME_MAX + 1];
        char address[16];           /* dotted quad */
        unsigned prefix;            /* of the network's subnet */
        char gateway[16];
        char mac[18];               /* "0a:70:6c:xx:xx:xx" */
        char bridge[NETWORK_IFNAME_MAX + 1];
} NetworkLease;

/* The lease container_id holds on network, taken now when it holds none: the
 * lowest free address after the gateway (a file created with O_EXCL, naming
 * the container and its MAC, fsync'd), and a MAC unique among the leases.
 * -ENOENT unknown network, -ENOSPC the subnet is full, -EEXIST the container
 * holds a lease on another network (release it first). */
int network_lease_acquire(NetworkHost *h, const char *network, const char *container_id, NetworkLease *ret,
                          Error **err);
/* The lease of container_id: 0, or -ENOENT when it holds none. */
int network_lease_find(NetworkHost *h, const char *container_id, NetworkLease *ret);
/* Releases the lease (and the published ports) of container_id; 0 when it
 * held none. */
int network_lease_release(NetworkHost *h, const char *container_id, Error **err);
/* Releases every lease whose container exists(id) denies (daemon open, after
 * the containers were loaded): returns how many, or a negative errno. */
int network_leases_prune(NetworkHost *h, bool (*exists)(const char *id, void *userdata), void *userdata,
                         Error **err);
/* The leases of network (running or not) as [{"container", "address",
 * "mac"}] (new reference). */
json_t *network_leases_json(NetworkHost *h, const char *network);

/* --- published ports --- */

typedef struct NetworkPort {
        char host_ip[16];           /* "0.0.0.0": every local address */
        uint16_t host_port, container_port;
        char protocol[4];           /* "tcp" or "udp" */
} NetworkPort;

/* Parses and checks a "ports" array ([{"host_ip", "host_port",
 * "container_port", "protocol"}]; host_ip defaults to 0.0.0.0, protocol to
 * tcp): ports 1-65535, an IPv4 host_ip, no mapping twice. ret may be NULL
 * (check only); else *ret_n entries are written (at most NETWORK_PORTS_MAX).
 * -EINVAL naming the entry. */
int network_ports_parse(const json_t *ports, NetworkPort *ret, size_t *ret_n, Error **err);
/* Publishes ports of container_id (which holds a lease), replacing what it
 * published before: -EADDRINUSE naming "host_ip:host_port/proto" when another
 * container publishes it (the same port on 0.0.0.0 and a specific address
 * conflict) or a host socket is bound to it (bind() is tried); then the rules
 * are applied. Nothing changes on failure. */
int network_ports_set(NetworkHost *h, const char *container_id, const NetworkPort *ports, size_t n_ports,
                      Error **err);
/* ports as the "ports" array (new reference; NULL when out of memory). */
json_t *network_ports_to_json(const NetworkPort *ports, size_t n);
/* The ports container_id publishes, as the "ports" array (new reference; an
 * empty array when none). */
json_t *network_ports_json(NetworkHost *h, const char *container_id);

/* --- host side of the bridge mode --- */

/* The tap name of a container's NIC: "pl" + the first 12 characters of its
 * id. */
void network_tap_name(const char *container_id, char ret[NETWORK_IFNAME_MAX + 1]);
/* Deletes links named pl<12 hex> that keep(name) denies (taps of VMs that
 * are gone; a running VM's tap is libvirt's to remove). Returns how many. */
int network_taps_prune(NetworkHost *h, bool (*keep)(const char *tap, void *userdata), void *userdata, Error **err);
/* Applies the nftables table for the current state again (bridge mode with
 * manage_host; a no-op otherwise). */
int network_rules_apply(NetworkHost *h, Error **err);
/* The nftables ruleset text of the current state (new string). */
int network_rules_text(NetworkHost *h, char **ret, Error **err);
