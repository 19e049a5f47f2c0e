/* network.c: the NetworkHost: network records, the public lease calls and
 * the rules of the current state.
 *
 * A network's record is <state>/networks/<name>.json ({"name", "subnet",
 * "bridge", "created"}), written atomically; its leases live beside it in
 * <name>.leases/ (network-ipam.c). "default" is created at the first open
 * from the configured subnet, its bridge is "plbr0"; other networks get
 * "plbr-" + 8 random hex digits (names of links are at most 15 bytes, so a
 * network's name cannot be its bridge's). */
#include "network-internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/json/json-util.h"

#define NETWORK_RECORD_MAX 4096

static const char *const mode_names[_NETWORK_MODE_MAX] = {
        [NETWORK_MODE_BRIDGE] = "bridge",
        [NETWORK_MODE_USER] = "user",
};

const char *network_mode_to_string(NetworkMode m) {
        return m >= 0 && m < _NETWORK_MODE_MAX ? mode_names[m] : NULL;
}

int network_mode_from_string(const char *s) {
        for (int i = 0; s && i < _NETWORK_MODE_MAX; i++)
                if (strcmp(mode_names[i], s) == 0)
                        return i;
        return -EINVAL;
}

NetworkMode network_host_mode(const NetworkHost *h) {
        return h->mode;
}

static bool host_manages(const NetworkHost *h) {
        return h->mode == NETWORK_MODE_BRIDGE && h->manage_host;
}

/* [A-Za-z0-9][A-Za-z0-9_.-]{0,63}, not "none". */
static int network_name_check(const char *name, Error **err) {
        size_t n = name ? strlen(name) : 0;
        if (n == 0 || n > NETWORK_NAME_MAX || !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
                                                       name[0]) ||
            strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n)
                return error_set(err, EINVAL, "'%.80s' is not a network name ([A-Za-z0-9][A-Za-z0-9_.-], at most %d)",
                                 name ?: "", NETWORK_NAME_MAX);
        if (strcmp(name, NETWORK_NONE) == 0)
                return error_set(err, EINVAL, "'none' is reserved (a container without a network)");
        return 0;
}

int network_subnet_validate(const char *subnet, Error **err) {
        uint32_t base;
        unsigned prefix;
        return ipv4_cidr_parse(subnet, 8, &base, &prefix, err);
}

int network_name_validate(const char *name, Error **err) {
        if (name && strcmp(name, NETWORK_NONE) == 0)
                return 0;
        return network_name_check(name, err);
}

static Network *network_find(NetworkHost *h, const char *name) {
        for (size_t i = 0; i < h->n_nets; i++)
                if (strcmp(h->nets[i]->name, name) == 0)
                        return h->nets[i];
        return NULL;
}

static void network_free(Network *n) {
        if (n) {
                free(n->leases_dir);
                free(n);
        }
}

/* A Network from its parts (checked). */
static int network_new(NetworkHost *h, const char *name, const char *subnet, const char *bridge, int64_t created,
                       Network **ret, Error **err) {
        int r = network_name_check(name, err);
        if (r < 0)
                return r;
        uint32_t base;
        unsigned prefix;
        r = ipv4_cidr_parse(subnet, 8, &base, &prefix, err);
        if (r < 0) {
                error_prefix(err, "subnet");
                return r;
        }
        if (!bridge[0] || strlen(bridge) > NETWORK_IFNAME_MAX || strncmp(bridge, "plbr", 4) != 0)
                return error_set(err, EINVAL, "'%.32s' is not a bridge name of ours", bridge);
        Network *n = calloc(1, sizeof *n);
        if (!n || asprintf(&n->leases_dir, "%s/%s.leases", h->dir, name) < 0) {
                free(n);
                return error_oom(err);
        }
        snprintf(n->name, sizeof n->name, "%s", name);
        char a[16];
        ipv4_format(base, a);
        snprintf(n->subnet, sizeof n->subnet, "%s/%u", a, prefix);
        ipv4_format(base + 1, n->gateway);
        snprintf(n->bridge, sizeof n->bridge, "%s", bridge);
        n->base = base;
        n->prefix = prefix;
        n->created_ns = created;
        *ret = n;
        return 0;
}

static int network_save(NetworkHost *h, const Network *n, Error **err) {
        _cleanup_json_ json_t *j = json_pack("{s:s, s:s, s:s, s:I}", "name", n->name, "subnet", n->subnet, "bridge",
                                             n->bridge, "created", (json_int_t) n->created_ns);
        _cleanup_free_ char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL, *path = NULL;
        if (!text || asprintf(&path, "%s/%s.json", h->dir, n->name) < 0)
                return error_oom(err);
        int r = write_file_atomic(path, text, strlen(text), 0644);
        if (r < 0)
                return error_set_errno(err, -r, "write %s", path);
        return 0;
}

static bool subnets_overlap(const Network *a, uint32_t base, unsigned prefix) {
        unsigned p = MIN(a->prefix, prefix);
        uint32_t mask = ~0u << (32 - p);
        return (a->base & mask) == (base & mask);
}

static int network_add_locked(NetworkHost *h, Network *n, Error **err) {
        for (size_t i = 0; i < h->n_nets; i++) {
                if (strcmp(h->nets[i]->name, n->name) == 0)
                        return error_set(err, EEXIST, "network %s exists", n->name);
                if (strcmp(h->nets[i]->bridge, n->bridge) == 0)
                        return error_set(err, EEXIST, "bridge %s is network %s's", n->bridge, h->nets[i]->name);
                if (subnets_overlap(h->nets[i], n->base, n->prefix))
                        return error_set(err, EEXIST, "subnet %s overlaps network %s (%s)", n->subnet,
                                         h->nets[i]->name, h->nets[i]->subnet);
        }
        Network **v = realloc(h->nets, (h->n_nets + 1) * sizeof *v);
        if (!v)
                return error_oom(err);
        h->nets = v;
        h->nets[h->n_nets++] = n;
        return 0;
}

static int network_load(NetworkHost *h, const char *file, Error **err) {
        _cleanup_free_ char *path = NULL, *data = NULL;
        if (asprintf(&path, "%s/%s", h->dir, file) < 0)
                return error_oom(err);
        size_t len = 0;
        int r = read_file_bounded(path, NETWORK_RECORD_MAX, &data, &len);
        if (r < 0)
                return error_set_errno(err, -r, "read %s", path);
        _cleanup_json_ json_t *j = json_loadb(data, len, 0, NULL);
        const char *name = json_string_value(json_object_get(j, "name"));
        const char *subnet = json_string_value(json_object_get(j, "subnet"));
        const char *bridge = json_string_value(json_object_get(j, "bridge"));
        json_t *created = json_object_get(j, "created");
        size_t nl = strlen(file) - strlen(".json");
        if (!name || !subnet || !bridge || !json_is_integer(created) || strlen(name) != nl || strncmp(file, name, nl))
                return error_set(err, EBADMSG, "%s: not a network record", path);
        Network *n = NULL;
        r = network_new(h, name, subnet, bridge, json_integer_value(created), &n, err);
        if (r >= 0)
                r = network_add_locked(h, n, err);
        if (r < 0) {
                network_free(n);
                error_prefix(err, "%s", path);
                return r;
        }
        return ipam_load(h, n, err);
}

static int networks_load(NetworkHost *h, Error **err) {
        _cleanup_closedir_ DIR *d = opendir(h->dir);
        if (!d)
                return error_set_errno(err, errno, "open %s", h->dir);
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t n = strlen(de->d_name);
                if (de->d_name[0] == '.' || n <= 5 || strcmp(de->d_name + n - 5, ".json") != 0)
                        continue;
                int r = network_load(h, de->d_name, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Creates, saves and (bridge mode) sets up a network. Caller holds lock. */
static int network_create_locked(NetworkHost *h, const char *name, const char *subnet, const char *bridge,
                                 Network **ret, Error **err) {
        Network *n = NULL;
        int r = network_new(h, name, subnet, bridge, (int64_t) realtime_nsec(), &n, err);
        if (r >= 0)
                r = network_add_locked(h, n, err);
        if (r < 0) {
                network_free(n);
                return r;
        }
        r = mkdir_p(n->leases_dir, 0755);
        if (r < 0)
                r = error_set_errno(err, -r, "create %s", n->leases_dir);
        if (r >= 0 && host_manages(h))
                r = host_bridge_ensure(n, err);
        if (r >= 0)
                r = network_save(h, n, err);
        if (r < 0) {
                h->n_nets--;
                (void) rm_rf(n->leases_dir);
                network_free(n);
                return r;
        }
        if (ret)
                *ret = n;
        return 0;
}

int rules_apply_locked(NetworkHost *h, Error **err) {
        if (!host_manages(h))
                return 0;
        _cleanup_free_ char *text = NULL;
        int r = network_rules_text_locked(h, &text, err);
        if (r < 0)
                return r;
        return nft_apply(text, err);
}

int network_rules_text_locked(NetworkHost *h, char **ret, Error **err) {
        _cleanup_free_ RulesNetwork *nets = calloc(h->n_nets + 1, sizeof *nets);
        size_t n_ports = 0;
        for (size_t i = 0; i < h->n_leases; i++)
                n_ports += h->leases[i]->n_ports;
        _cleanup_free_ RulesPort *ports = calloc(n_ports + 1, sizeof *ports);
        _cleanup_free_ char *addrs = calloc(h->n_leases + 1, 16);
        if (!nets || !ports || !addrs)
                return error_oom(err);
        for (size_t i = 0; i < h->n_nets; i++)
                nets[i] = (RulesNetwork) {.bridge = h->nets[i]->bridge, .subnet = h->nets[i]->subnet};
        size_t k = 0;
        for (size_t i = 0; i < h->n_leases; i++) {
                ipv4_format(h->leases[i]->address, addrs + 16 * i);
                for (size_t p = 0; p < h->leases[i]->n_ports; p++)
                        ports[k++] = (RulesPort) {.port = &h->leases[i]->ports[p], .address = addrs + 16 * i};
        }
        return rules_build(nets, h->n_nets, ports, n_ports, ret, err);
}

int network_rules_apply(NetworkHost *h, Error **err) {
        pthread_mutex_lock(&h->lock);
        int r = rules_apply_locked(h, err);
        pthread_mutex_unlock(&h->lock);
        return r;
}

int network_rules_text(NetworkHost *h, char **ret, Error **err) {
        pthread_mutex_lock(&h->lock);
        int r = network_rules_text_locked(h, ret, err);
        pthread_mutex_unlock(&h->lock);
        return r;
}

/* Bridges up, sysctls, rules: what bridge mode needs on the host. */
static int host_setup_locked(NetworkHost *h, Error **err) {
        if (!host_manages(h))
                return 0;
        for (size_t i = 0; i < h->n_nets; i++) {
                int r = host_bridge_ensure(h->nets[i], err);
                if (r < 0)
                        return r;
        }
        return rules_apply_locked(h, err);
}

int network_host_open(const NetworkHostConfig *cfg, NetworkHost **ret, Error **err) {
        if (!cfg->state_dir || cfg->state_dir[0] != '/')
                return error_set(err, EINVAL, "network: the state directory must be absolute");
        if (cfg->mode < 0 || cfg->mode >= _NETWORK_MODE_MAX)
                return error_set(err, EINVAL, "network: bad mode");
        _cleanup_(network_host_freep) NetworkHost *h = calloc(1, sizeof *h);
        if (!h)
                return error_oom(err);
        pthread_mutex_init(&h->lock, NULL);
        h->mode = cfg->mode;
        h->manage_host = cfg->manage_host;
        if (asprintf(&h->dir, "%s/networks", cfg->state_dir) < 0 ||
            asprintf(&h->ports_dir, "%s/networks/ports", cfg->state_dir) < 0)
                return error_oom(err);
        int r = mkdir_p(h->ports_dir, 0755);
        if (r < 0)
                return error_set_errno(err, -r, "create %s", h->ports_dir);
        r = networks_load(h, err);
        if (r < 0)
                return r;
        r = ports_load(h, err);
        if (r < 0)
                return r;
        if (!network_find(h, NETWORK_DEFAULT)) {
                r = network_create_locked(h, NETWORK_DEFAULT, cfg->default_subnet ?: NETWORK_DEFAULT_SUBNET, "plbr0",
                                          NULL, err);
                if (r < 0) {
                        error_prefix(err, "network default");
                        return r;
                }
        }
        r = host_setup_locked(h, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(h);
        return 0;
}

NetworkHost *network_host_free(NetworkHost *h) {
        if (!h)
                return NULL;
        for (size_t i = 0; i < h->n_leases; i++) {
                free(h->leases[i]->ports);
                free(h->leases[i]);
        }
        free(h->leases);
        for (size_t i = 0; i < h->n_nets; i++)
                network_free(h->nets[i]);
        free(h->nets);
        free(h->dir);
        free(h->ports_dir);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return NULL;
}

static size_t network_users(NetworkHost *h, const Network *n) {
        size_t k = 0;
        for (size_t i = 0; i < h->n_leases; i++)
                k += h->leases[i]->net == n;
        return k;
}

static json_t *network_to_json(NetworkHost *h, const Network *n) {
        char created[TIME_RFC3339_MAX];
        time_rfc3339_ns(n->created_ns, created);
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "name", n->name, "subnet", n->subnet, "gateway",
                         n->gateway, "bridge", h->mode == NETWORK_MODE_BRIDGE ? n->bridge : "", "created", created,
                         "containers", (json_int_t) network_users(h, n));
}

int network_create(NetworkHost *h, const char *name, const char *subnet, json_t **ret, Error **err) {
        if (!subnet)
                return error_set(err, EINVAL, "subnet: required (an IPv4 CIDR, e.g. 10.89.0.0/24)");
        char bridge[NETWORK_IFNAME_MAX + 1] = "plbr-";
        random_hex(bridge + 5, 8);
        pthread_mutex_lock(&h->lock);
        Network *n = NULL;
        int r = network_create_locked(h, name, subnet, bridge, &n, err);
        if (r >= 0)
                r = rules_apply_locked(h, err);
        if (r >= 0 && ret && !(*ret = network_to_json(h, n)))
                r = error_oom(err);
        pthread_mutex_unlock(&h->lock);
        return r;
}

int network_inspect(NetworkHost *h, const char *name, json_t **ret, Error **err) {
        pthread_mutex_lock(&h->lock);
        Network *n = network_find(h, name);
        int r = 0;
        if (!n)
                r = error_set(err, ENOENT, "no network %.80s", name);
        else if (!(*ret = network_to_json(h, n)))
                r = error_oom(err);
        pthread_mutex_unlock(&h->lock);
        return r;
}

static int network_cmp(const void *a, const void *b) {
        return strcmp((*(Network *const *) a)->name, (*(Network *const *) b)->name);
}

int network_list(NetworkHost *h, json_t **ret, Error **err) {
        _cleanup_json_ json_t *a = json_array();
        if (!a)
                return error_oom(err);
        pthread_mutex_lock(&h->lock);
        qsort(h->nets, h->n_nets, sizeof *h->nets, network_cmp);
        int r = 0;
        for (size_t i = 0; i < h->n_nets && r >= 0; i++)
                if (json_array_append_new(a, network_to_json(h, h->nets[i])) < 0)
                        r = error_oom(err);
        pthread_mutex_unlock(&h->lock);
        if (r >= 0)
                *ret = TAKE_PTR(a);
        return r;
}

int network_exists(NetworkHost *h, const char *name, Error **err) {
        if (name && strcmp(name, NETWORK_NONE) == 0)
                return 0;
        pthread_mutex_lock(&h->lock);
        bool found = name && network_find(h, name);
        pthread_mutex_unlock(&h->lock);
        return found ? 0 : error_set(err, ENOENT, "no network %.80s", name ?: "");
}

static int network_remove_locked(NetworkHost *h, const char *name, Error **err) {
        Network *n = network_find(h, name);
        if (!n)
                return error_set(err, ENOENT, "no network %.80s", name);
        if (strcmp(name, NETWORK_DEFAULT) == 0)
                return error_set(err, EBUSY, "network default cannot be removed");
        size_t users = network_users(h, n);
        if (users > 0)
                return error_set(err, EBUSY, "network %s is in use by %zu container(s)", name, users);
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s.json", h->dir, n->name) < 0)
                return error_oom(err);
        if (unlink(path) < 0 && errno != ENOENT)
                return error_set_errno(err, errno, "remove %s", path);
        (void) rm_rf(n->leases_dir);
        for (size_t i = 0; i < h->n_nets; i++)
                if (h->nets[i] == n) {
                        memmove(h->nets + i, h->nets + i + 1, (h->n_nets - i - 1) * sizeof *h->nets);
                        h->n_nets--;
                        break;
                }
        int r = rules_apply_locked(h, err);
        if (r >= 0 && host_manages(h))
                r = host_bridge_remove(n, err);
        network_free(n);
        return r;
}

int network_remove(NetworkHost *h, const char *name, Error **err) {
        pthread_mutex_lock(&h->lock);
        int r = network_remove_locked(h, name, err);
        pthread_mutex_unlock(&h->lock);
        return r;
}

/* --- leases --- */

static void lease_fill(const Lease *l, NetworkLease *ret) {
        *ret = (NetworkLease) {.prefix = l->net->prefix};
        snprintf(ret->network, sizeof ret->network, "%s", l->net->name);
        ipv4_format(l->address, ret->address);
        snprintf(ret->gateway, sizeof ret->gateway, "%s", l->net->gateway);
        snprintf(ret->mac, sizeof ret->mac, "%s", l->mac);
        snprintf(ret->bridge, sizeof ret->bridge, "%s", l->net->bridge);
}

int network_lease_acquire(NetworkHost *h, const char *network, const char *container_id, NetworkLease *ret,
                          Error **err) {
        pthread_mutex_lock(&h->lock);
        Network *n = network_find(h, network);
        Lease *l = ipam_find(h, container_id);
        int r = 0;
        if (!n)
                r = error_set(err, ENOENT, "no network %.80s", network);
        else if (l && l->net != n)
                r = error_set(err, EEXIST, "container %.12s holds an address on network %s", container_id,
                              l->net->name);
        else if (!l)
                r = ipam_acquire(h, n, container_id, &l, err);
        if (r >= 0 && ret)
                lease_fill(l, ret);
        pthread_mutex_unlock(&h->lock);
        return r;
}

int network_lease_find(NetworkHost *h, const char *container_id, NetworkLease *ret) {
        pthread_mutex_lock(&h->lock);
        Lease *l = ipam_find(h, container_id);
        if (l && ret)
                lease_fill(l, ret);
        pthread_mutex_unlock(&h->lock);
        return l ? 0 : -ENOENT;
}

int network_lease_release(NetworkHost *h, const char *container_id, Error **err) {
        pthread_mutex_lock(&h->lock);
        Lease *l = ipam_find(h, container_id);
        bool had_ports = l && l->n_ports > 0;
        int r = l ? ipam_release(h, l, err) : 0;
        if (r >= 0 && had_ports)
                r = rules_apply_locked(h, err);
        pthread_mutex_unlock(&h->lock);
        return r;
}

int network_leases_prune(NetworkHost *h, bool (*exists)(const char *id, void *userdata), void *userdata,
                         Error **err) {
        pthread_mutex_lock(&h->lock);
        int r = 0, pruned = 0;
        for (size_t i = 0; i < h->n_leases && r >= 0;) {
                Lease *l = h->leases[i];
                if (exists(l->container, userdata)) {
                        i++;
                        continue;
                }
                log_info("network %s: releasing the address of vanished container %.12s", l->net->name, l->container);
                r = ipam_release(h, l, err);
                pruned++;
        }
        if (r >= 0 && pruned > 0)
                r = rules_apply_locked(h, err);
        pthread_mutex_unlock(&h->lock);
        return r < 0 ? r : pruned;
}

json_t *network_leases_json(NetworkHost *h, const char *network) {
        json_t *a = json_array();
        pthread_mutex_lock(&h->lock);
        for (size_t i = 0; a && i < h->n_leases; i++) {
                const Lease *l = h->leases[i];
                if (strcmp(l->net->name, network) != 0)
                        continue;
                char addr[16];
                ipv4_format(l->address, addr);
                if (json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "container", l->container, "address", addr,
                                                       "mac", l->mac)) < 0)
                        a = (json_decref(a), NULL);
        }
        pthread_mutex_unlock(&h->lock);
        return a;
}

void network_tap_name(const char *container_id, char ret[NETWORK_IFNAME_MAX + 1]) {
        snprintf(ret, NETWORK_IFNAME_MAX + 1, "pl%.12s", container_id);
}
