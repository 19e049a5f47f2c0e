/* container-network-guest.c: the guest's side of a container's network:
 * its interface (address, prefix, default route; found by MAC) that the
 * start's one setup request gives the agent (container-runtime.c, with the
 * mounts), and the /etc files the agent writes:
 * hostname (the container's name), hosts (every running container of the
 * same network by name, so names resolve without a DNS server) and
 * resolv.conf (the host's IPv4 nameservers; loopback ones, which the guest
 * cannot reach, become the gateway; user mode has slirp's 10.0.2.3).
 *
 * A file the user provides is left alone: a mount whose target is the file
 * or /etc. When a container of a network starts or stops, the running
 * peers' /etc/hosts are written again, unless it is no longer the file we
 * wrote (its size or mtime moved: a copy-in, which lands after our files at
 * a start, or the container itself replaced it). What we wrote last is kept
 * in <run dir>/etc-hosts.stat, so a restarted daemon knows it too. */
#include "container-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/json/json-util.h"
#include "common/netlink/netlink.h"

#define NET_RPC_MS 30000
#define RESOLV_CONF_MAX (64u << 10)
#define NAMESERVERS_MAX 3
#define HOSTS_MAX 256 /* what the agent takes */
#define USER_ADDRESS "10.0.2.15/24"
#define USER_GATEWAY "10.0.2.2"
#define USER_DNS "10.0.2.3"

/* true when a mount of config targets path (or /etc). */
static bool user_provides(const json_t *config, const char *path) {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(config, "mounts"), i, m) {
                const char *t = json_string_value(json_object_get(m, "target"));
                if (t && (strcmp(t, path) == 0 || strcmp(t, "/etc") == 0 || strcmp(t, "/etc/") == 0))
                        return true;
        }
        return false;
}

/* Up to NAMESERVERS_MAX IPv4 nameservers of the host (loopback ones
 * replaced by gateway), at least the gateway. */
static size_t nameservers(const char *gateway, char ret[NAMESERVERS_MAX][16]) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0, n = 0;
        if (read_file_bounded("/etc/resolv.conf", RESOLV_CONF_MAX, &text, &len) >= 0) {
                char *save = NULL;
                for (char *line = strtok_r(text, "\n", &save); line && n < NAMESERVERS_MAX;
                     line = strtok_r(NULL, "\n", &save)) {
                        char addr[64];
                        struct in_addr in;
                        if (sscanf(line, " nameserver %63s", addr) != 1 || netlink_parse_ipv4(addr, &in) < 0)
                                continue;
                        const char *use = (ntohl(in.s_addr) >> 24) == 127 ? gateway : addr;
                        bool dup = false;
                        for (size_t k = 0; k < n; k++)
                                dup |= strcmp(ret[k], use) == 0;
                        if (!dup && strlen(use) < 16)
                                memcpy(ret[n++], use, strlen(use) + 1);
                }
        }
        if (n == 0)
                snprintf(ret[n++], 16, "%s", gateway);
        return n;
}

typedef struct Peer {
        char address[16];
        char *name;
        char *run_dir;
        Runtime *rt;      /* a reference, or NULL */
        json_t *config;
} Peer;

typedef struct Peers {
        Peer *v;
        size_t n;
} Peers;

static void peers_clear(ContainerHost *h, Peers *p) {
        for (size_t i = 0; i < p->n; i++) {
                free(p->v[i].name);
                free(p->v[i].run_dir);
                json_decref(p->v[i].config);
                if (p->v[i].rt)
                        runtime_unref(h, p->v[i].rt);
        }
        free(p->v);
        *p = (Peers) {0};
}

/* The running containers of network (and self, running or starting; not
 * the one with id leaving), each with a runtime reference when it has one. */
static int peers_collect(ContainerHost *h, const char *network, const Container *self, const char *leaving,
                         Peers *ret) {
        size_t n = 0;
        Container **list = container_host_snapshot(h, &n);
        Peers p = {.v = calloc(n + 1, sizeof(Peer))};
        int r = list && p.v ? 0 : -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                Container *c = list[i];
                NetworkLease l;
                if (r >= 0 && (!leaving || strcmp(c->id, leaving) != 0) &&
                    network_lease_find(h->network, c->id, &l) == 0 && strcmp(l.network, network) == 0) {
                        pthread_mutex_lock(&h->lock);
                        bool running = c->rt && c->state == CONTAINER_RUNNING;
                        if ((running || c == self) && (p.v[p.n].name = strdup(c->name)) &&
                            (p.v[p.n].run_dir = strdup(c->run_dir))) {
                                snprintf(p.v[p.n].address, 16, "%s", l.address);
                                p.v[p.n].config = json_incref(c->config);
                                if (running && c != self) {
                                        p.v[p.n].rt = c->rt;
                                        c->rt->refs++;
                                }
                                p.n++;
                        }
                        pthread_mutex_unlock(&h->lock);
                }
        }
        container_list_unref(list, n);
        if (r < 0) {
                peers_clear(h, &p);
                return r;
        }
        *ret = p;
        return 0;
}

static int hosts_stat_path(const char *run_dir, char **ret) {
        return asprintf(ret, "%s/etc-hosts.stat", run_dir) < 0 ? -ENOMEM : 0;
}

/* Remembers the guest's /etc/hosts as we left it. */
static void hosts_remember(Runtime *rt, const char *run_dir) {
        AgentStat st;
        _cleanup_free_ char *path = NULL;
        char line[64];
        if (hosts_stat_path(run_dir, &path) < 0 ||
            agent_client_stat(rt->guest->agent, "/etc/hosts", &st, NET_RPC_MS, NULL) < 0)
                return;
        snprintf(line, sizeof line, "%lld %llu\n", (long long) st.mtime_ns, (unsigned long long) st.size);
        (void) write_file_atomic(path, line, strlen(line), 0600);
}

/* The guest's /etc/hosts is still the one we wrote last. */
static bool hosts_ours(Runtime *rt, const char *run_dir) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len = 0;
        long long mtime;
        unsigned long long size;
        AgentStat st;
        return hosts_stat_path(run_dir, &path) >= 0 && read_file_bounded(path, 64, &text, &len) >= 0 &&
               sscanf(text, "%lld %llu", &mtime, &size) == 2 &&
               agent_client_stat(rt->guest->agent, "/etc/hosts", &st, NET_RPC_MS, NULL) >= 0 &&
               st.mtime_ns == mtime && st.size == size;
}

static int etc_write(Runtime *rt, const char *run_dir, const Peers *peers, const json_t *config,
                     const char *hostname, const char *gateway, bool user, bool hosts_only, Error **err) {
        AgentHostEntry *hosts = calloc(peers->n + 1, sizeof(*hosts));
        if (!hosts)
                return error_oom(err);
        for (size_t i = 0; i < peers->n; i++)
                hosts[i] = (AgentHostEntry) {.address = peers->v[i].address,
                                             .names = (const char *const *) &peers->v[i].name, .n_names = 1};
        char ns[NAMESERVERS_MAX][16];
        size_t n_ns = user ? (snprintf(ns[0], 16, USER_DNS), 1) : nameservers(gateway, ns);
        const char *ns_v[NAMESERVERS_MAX];
        for (size_t i = 0; i < n_ns; i++)
                ns_v[i] = ns[i];
        AgentEtc etc = {
                .write_hostname = !hosts_only && !user_provides(config, "/etc/hostname"),
                .write_hosts = !user_provides(config, "/etc/hosts"),
                .write_resolv = !hosts_only && !user_provides(config, "/etc/resolv.conf"),
                .hostname = hostname, .hosts = hosts, .n_hosts = user ? 0 : MIN(peers->n, HOSTS_MAX),
                .nameservers = ns_v, .n_nameservers = n_ns,
        };
        int r = 0;
        if (etc.write_hostname || etc.write_hosts || etc.write_resolv)
                r = agent_client_write_etc(rt->guest->agent, &etc, NET_RPC_MS, err);
        free(hosts);
        if (r >= 0 && etc.write_hosts)
                hosts_remember(rt, run_dir);
        return r;
}

int container_network_interface(ContainerHost *h, Container *c, NetworkLease *lease, char cidr[24],
                                AgentInterface *ret) {
        if (!h->network || network_lease_find(h->network, c->id, lease) < 0)
                return 0;
        bool user = network_host_mode(h->network) == NETWORK_MODE_USER;
        if (user)
                snprintf(cidr, 24, USER_ADDRESS);
        else
                snprintf(cidr, 24, "%s/%u", lease->address, lease->prefix);
        *ret = (AgentInterface) {.mac = lease->mac, .address = cidr, .gateway = user ? USER_GATEWAY : lease->gateway};
        return 1;
}

int container_network_etc(ContainerHost *h, Container *c, Runtime *rt, Error **err) {
        NetworkLease l;
        if (!h->network || network_lease_find(h->network, c->id, &l) < 0)
                return 0;
        int r;
        Peers peers = {0};
        if (peers_collect(h, l.network, c, NULL, &peers) < 0)
                return error_oom(err);
        pthread_mutex_lock(&h->lock);
        _cleanup_json_ json_t *config = json_incref(c->config);
        pthread_mutex_unlock(&h->lock);
        r = etc_write(rt, c->run_dir, &peers, config, c->name, l.gateway,
                      network_host_mode(h->network) == NETWORK_MODE_USER, false, err);
        peers_clear(h, &peers);
        if (r < 0)
                error_prefix(err, "write the guest's /etc files");
        return r;
}

void container_network_peers_changed(ContainerHost *h, const char *id, bool leaving) {
        NetworkLease l;
        if (!h->network || network_host_mode(h->network) == NETWORK_MODE_USER ||
            network_lease_find(h->network, id, &l) < 0)
                return;
        const char *network = l.network;
        pthread_mutex_lock(&h->lock);
        bool closing = h->closing;
        Container *origin = container_find_locked(h, id);
        pthread_mutex_unlock(&h->lock);
        /* One rewrite at a time (two starts at once): the last one sees
         * every peer, and a runtime's record of its file has one writer. A
         * container that starts is listed but not rewritten (its files were
         * written a moment ago); one that stops is left out. */
        static pthread_mutex_t rewrite = PTHREAD_MUTEX_INITIALIZER;
        pthread_mutex_lock(&rewrite);
        Peers peers = {0};
        int r = closing ? -ESHUTDOWN
                        : peers_collect(h, network, leaving ? NULL : origin, leaving ? id : NULL, &peers);
        if (origin)
                container_unref(origin);
        if (r < 0) {
                pthread_mutex_unlock(&rewrite);
                return;
        }
        for (size_t i = 0; i < peers.n; i++) {
                Peer *p = &peers.v[i];
                if (!p->rt || !hosts_ours(p->rt, p->run_dir))
                        continue;
                _cleanup_error_ Error *e = NULL;
                if (etc_write(p->rt, p->run_dir, &peers, p->config, p->name, "", false, true, &e) < 0)
                        log_warning("container %s: rewrite /etc/hosts: %s", peers.v[i].name, error_text(e));
        }
        peers_clear(h, &peers);
        pthread_mutex_unlock(&rewrite);
}
