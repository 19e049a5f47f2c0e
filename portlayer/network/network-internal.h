/* network-internal.h: what the files of plnetwork share. */
#pragma once

#include <netinet/in.h>
#include <pthread.h>

#include "network.h"

typedef struct Network {
        char name[NETWORK_NAME_MAX + 1];
        char subnet[19];            /* canonical CIDR, "10.88.0.0/16" */
        uint32_t base;              /* host order, the subnet's first address */
        unsigned prefix;
        char gateway[16];           /* base + 1 */
        char bridge[NETWORK_IFNAME_MAX + 1];
        char *leases_dir;           /* <state>/networks/<name>.leases */
        int64_t created_ns;
} Network;

typedef struct Lease {
        char container[NETWORK_ID_MAX + 1];
        Network *net;
        uint32_t address;           /* host order */
        char mac[18];
        NetworkPort *ports;         /* published, or NULL */
        size_t n_ports;
} Lease;

struct NetworkHost {
        char *dir;                  /* <state>/networks */
        char *ports_dir;            /* <state>/networks/ports */
        NetworkMode mode;
        bool manage_host;
        pthread_mutex_t lock;
        Network **nets;
        size_t n_nets;
        Lease **leases;
        size_t n_leases;
};

/* --- network-ipam.c: addresses and leases --- */

/* "a.b.c.d/p" into base (host order, host bits must be 0) and prefix
 * (min_prefix..30). -EINVAL. */
int ipv4_cidr_parse(const char *s, unsigned min_prefix, uint32_t *ret_base, unsigned *ret_prefix, Error **err);
void ipv4_format(uint32_t a, char ret[16]);
/* Loads the lease files of net (dropping empty ones, which were never
 * handed out). Caller holds lock. */
int ipam_load(NetworkHost *h, Network *net, Error **err);
/* Takes the lowest free address of net for container (O_EXCL, fsync'd).
 * Caller holds lock. */
int ipam_acquire(NetworkHost *h, Network *net, const char *container, Lease **ret, Error **err);
/* Unlinks the lease's file and forgets it (its ports file too). Caller holds
 * lock. */
int ipam_release(NetworkHost *h, Lease *l, Error **err);
Lease *ipam_find(NetworkHost *h, const char *container);
/* Loads <ports_dir>/<id>.json of every lease. Caller holds lock. */
int ports_load(NetworkHost *h, Error **err);
/* Writes (n > 0) or removes the ports file of l. */
int ports_save(NetworkHost *h, const Lease *l, const NetworkPort *ports, size_t n, Error **err);

/* --- network-rules.c: the ruleset text, a pure function of this --- */

typedef struct RulesNetwork {
        const char *bridge;
        const char *subnet;         /* CIDR */
} RulesNetwork;

typedef struct RulesPort {
        const NetworkPort *port;
        const char *address;        /* the container's */
} RulesPort;

/* The nft script that replaces table ip portlayer with exactly these
 * networks and ports (one transaction when run as one buffer). */
int rules_build(const RulesNetwork *nets, size_t n_nets, const RulesPort *ports, size_t n_ports, char **ret,
                Error **err);

/* --- network-nft.c: the only user of libnftables --- */

/* Runs script as one nft transaction. -EINVAL with nft's message. */
int nft_apply(const char *script, Error **err);
/* The current `nft list table ip portlayer` text, or -ENOENT. */
int nft_list_table(char **ret, Error **err);

/* --- network-host.c: bridges and sysctls (bridge mode) --- */

int host_bridge_ensure(const Network *net, Error **err);
int host_bridge_remove(const Network *net, Error **err);
int host_sysctls(const Network *net, Error **err);

/* --- network.c --- */

/* Builds and (bridge mode with manage_host) applies the rules of the
 * current state. Caller holds lock. */
int rules_apply_locked(NetworkHost *h, Error **err);
int network_rules_text_locked(NetworkHost *h, char **ret, Error **err);
