/* container-network.c: a container's place on a network (plnetwork): its
 * address lease, taken at its first commit and kept until it is destroyed;
 * its published ports; the NIC its VM boots with; and, in user mode, the
 * port forwards of its running VM.
 *
 * The configuration says "network" (a name, default "default"; "none" for
 * no NIC) and "ports". In bridge mode the NIC is a tap named from the id
 * ("pl" + 12 hex) that libvirt attaches to the network's bridge and the
 * published ports are nftables DNAT rules (plnetwork); in user mode the NIC
 * is QEMU's slirp (the guest is 10.0.2.15/24) and the ports are forwards
 * added to the running VM (vm_driver_forward), again after a daemon
 * restart. The guest's side (address, /etc files) is in
 * container-network-guest.c. */
#include "container-internal.h"

#include <errno.h>
#include <string.h>

#include "common/base/log.h"
#include "common/json/json-util.h"

const char *container_network_name(const json_t *config) {
        const char *n = json_string_value(json_object_get(config, "network"));
        return n ? n : NETWORK_DEFAULT;
}

static int config_ports(const json_t *config, NetworkPort ports[NETWORK_PORTS_MAX], size_t *ret_n, Error **err) {
        const json_t *p = json_object_get(config, "ports");
        *ret_n = 0;
        return p ? network_ports_parse(p, ports, ret_n, err) : 0;
}

static bool user_mode(const ContainerHost *h) {
        return network_host_mode(h->network) == NETWORK_MODE_USER;
}

/* Adds or removes the user-mode forwards of ports on c's running VM. */
static int forwards_apply(ContainerHost *h, Container *c, const NetworkPort *ports, size_t n, bool add,
                          Error **err) {
        for (size_t i = 0; i < n; i++) {
                VmForward fw = {.protocol = ports[i].protocol, .host_ip = ports[i].host_ip,
                                .host_port = ports[i].host_port, .guest_port = ports[i].container_port};
                int r = vm_driver_forward(h->driver, c->domain, &fw, add, err);
                if (r < 0 && (add || r != -ENOENT))
                        return r;
        }
        return 0;
}

static int forwards_of_json(const json_t *ports, NetworkPort v[NETWORK_PORTS_MAX], size_t *ret_n) {
        *ret_n = 0;
        return ports ? network_ports_parse(ports, v, ret_n, NULL) : 0;
}

/* User mode, c running: its forwards follow the new ports. */
static int forwards_replace(ContainerHost *h, Container *c, const json_t *old_ports, Error **err) {
        pthread_mutex_lock(&h->lock);
        bool running = c->rt != NULL;
        pthread_mutex_unlock(&h->lock);
        if (!running || !user_mode(h))
                return 0;
        NetworkPort old[NETWORK_PORTS_MAX], now[NETWORK_PORTS_MAX];
        size_t n_old = 0, n_now = 0;
        _cleanup_json_ json_t *cur = network_ports_json(h->network, c->id);
        (void) forwards_of_json(old_ports, old, &n_old);
        (void) forwards_of_json(cur, now, &n_now);
        (void) forwards_apply(h, c, old, n_old, false, NULL);
        return forwards_apply(h, c, now, n_now, true, err);
}

int container_network_commit(ContainerHost *h, Container *c, const json_t *config, Error **err) {
        if (!h->network)
                return 0;
        const char *net = container_network_name(config);
        NetworkPort ports[NETWORK_PORTS_MAX];
        size_t n_ports = 0;
        int r = config_ports(config, ports, &n_ports, err);
        if (r < 0)
                return r;
        if (strcmp(net, NETWORK_NONE) == 0 && n_ports > 0)
                return error_set(err, EINVAL, "ports: a container on network none publishes nothing");
        pthread_mutex_lock(&h->lock);
        bool running = c->rt != NULL;
        pthread_mutex_unlock(&h->lock);
        NetworkLease cur;
        bool had = network_lease_find(h->network, c->id, &cur) == 0;
        if (had && strcmp(cur.network, net) != 0) {
                if (running)
                        return error_set(err, EBUSY, "container %s runs on network %s: stop it before moving it to %s",
                                         c->name, cur.network, net);
                r = network_lease_release(h->network, c->id, err);
                if (r < 0)
                        return r;
                had = false;
        }
        if (strcmp(net, NETWORK_NONE) == 0)
                return 0;
        if (!had && running)
                return error_set(err, EBUSY, "container %s runs without a NIC: stop it before putting it on %s",
                                 c->name, net);
        r = network_lease_acquire(h->network, net, c->id, NULL, err);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *old_ports = network_ports_json(h->network, c->id);
        _cleanup_json_ json_t *new_ports = network_ports_to_json(ports, n_ports);
        if (!old_ports || !new_ports)
                return error_oom(err);
        if (json_equal(old_ports, new_ports))
                return 0; /* nothing to publish anew (a state change, a label) */
        r = network_ports_set(h->network, c->id, ports, n_ports, err);
        if (r >= 0)
                r = forwards_replace(h, c, old_ports, err);
        if (r < 0 && !had)
                (void) network_lease_release(h->network, c->id, NULL);
        return r;
}

void container_network_release(ContainerHost *h, Container *c) {
        if (!h->network)
                return;
        _cleanup_error_ Error *e = NULL;
        if (network_lease_release(h->network, c->id, &e) < 0)
                log_warning("container %s: release its address: %s", c->name, error_text(e));
}

int container_network_nic(ContainerHost *h, Container *c, NetworkLease *lease, char tap[NETWORK_IFNAME_MAX + 1],
                          VmNic *ret) {
        if (!h->network || network_lease_find(h->network, c->id, lease) < 0)
                return 0;
        if (user_mode(h)) {
                *ret = (VmNic) {.type = VM_NIC_USER, .mac = lease->mac};
                return 1;
        }
        network_tap_name(c->id, tap);
        *ret = (VmNic) {.type = VM_NIC_BRIDGE, .mac = lease->mac, .bridge = lease->bridge, .tap = tap};
        return 1;
}

/* The user-mode forwards of c's ports on its running VM (at its start and
 * again after a daemon restart: adding the very same forward again is
 * fine). */
int container_network_forwards_add(ContainerHost *h, Container *c, Error **err) {
        if (!h->network || !user_mode(h))
                return 0;
        _cleanup_json_ json_t *cur = network_ports_json(h->network, c->id);
        NetworkPort v[NETWORK_PORTS_MAX];
        size_t n = 0;
        (void) forwards_of_json(cur, v, &n);
        return forwards_apply(h, c, v, n, true, err);
}

void container_network_json(ContainerHost *h, const char *id, const json_t *config, json_t *j) {
        const char *net = container_network_name(config);
        NetworkLease l;
        bool has = h->network && network_lease_find(h->network, id, &l) == 0;
        const char *addr = !has ? "" : user_mode(h) ? "10.0.2.15" : l.address;
        (void) json_object_set_new(j, "network", json_string(h->network ? net : NETWORK_NONE));
        (void) json_object_set_new(j, "ip_address", json_string(addr));
        (void) json_object_set_new(j, "mac_address", json_string(has ? l.mac : ""));
        (void) json_object_set_new(j, "ports", has ? network_ports_json(h->network, id) : json_array());
}

static bool container_exists(const char *id, void *userdata) {
        ContainerHost *h = userdata;
        pthread_mutex_lock(&h->lock);
        Container *c = container_find_locked(h, id);
        pthread_mutex_unlock(&h->lock);
        if (c)
                container_unref(c);
        return c != NULL;
}

/* A tap is kept while a container of that tap name has a running VM. */
static bool tap_in_use(const char *tap, void *userdata) {
        ContainerHost *h = userdata;
        bool used = false;
        pthread_mutex_lock(&h->lock);
        for (size_t i = 0; i < h->n_containers && !used; i++) {
                char name[NETWORK_IFNAME_MAX + 1];
                network_tap_name(h->containers[i]->id, name);
                used = strcmp(name, tap) == 0 && h->containers[i]->rt;
        }
        pthread_mutex_unlock(&h->lock);
        return used;
}

/* At open only, before the API serves: the prune holds the network's lock
 * while container_exists() takes the host's (the opposite order of
 * inspect's). */
void container_network_recover(ContainerHost *h) {
        if (!h->network)
                return;
        _cleanup_error_ Error *e = NULL;
        int r = network_leases_prune(h->network, container_exists, h, &e);
        if (r < 0)
                log_warning("network: release the leases of vanished containers: %s", error_text(e));
        e = error_free(e);
        r = network_taps_prune(h->network, tap_in_use, h, &e);
        if (r < 0)
                log_warning("network: remove stale taps: %s", error_text(e));
        size_t n = 0;
        Container **list = container_host_snapshot(h, &n);
        for (size_t i = 0; i < n; i++) {
                pthread_mutex_lock(&h->lock);
                bool running = list[i]->rt != NULL;
                pthread_mutex_unlock(&h->lock);
                e = error_free(e);
                if (running && container_network_forwards_add(h, list[i], &e) < 0)
                        log_warning("container %s: forward its ports again: %s", list[i]->name, error_text(e));
        }
        container_list_unref(list, n);
}
