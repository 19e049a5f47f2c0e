/* network-ipam.c: addresses, MACs and leases.
 *
 * A lease is a file named after the address, <state>/networks/<net>.leases/
 * <a.b.c.d>, holding {"container", "mac"}. It is created with O_EXCL, written
 * and fsync'd (the directory too) before the address is handed out, so two
 * containers never get one address, neither from two threads nor across a
 * daemon killed at any moment: a file created but not yet written names
 * nobody and is dropped at the next load, since its address was never used.
 * Addresses are given lowest first after the gateway (base + 1), up to the
 * one before the broadcast address. MACs are 0a:70:6c plus three random
 * bytes, drawn again while one collides with a lease of this host. */
#include "network-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/base/log.h"
#include "common/json/json-util.h"
#include "common/netlink/netlink.h"

#define LEASE_FILE_MAX 4096

int ipv4_cidr_parse(const char *s, unsigned min_prefix, uint32_t *ret_base, unsigned *ret_prefix, Error **err) {
        struct in_addr in;
        unsigned p = 0;
        if (!s || netlink_parse_cidr(s, &in, &p) < 0)
                return error_set(err, EINVAL, "'%.64s' is not an IPv4 CIDR (a.b.c.d/prefix)", s ?: "");
        if (p < min_prefix || p > 30)
                return error_set(err, EINVAL, "'%.64s': the prefix must be from %u to 30", s, min_prefix);
        uint32_t a = ntohl(in.s_addr), mask = ~0u << (32 - p);
        if (a & ~mask) {
                char net[16];
                ipv4_format(a & mask, net);
                return error_set(err, EINVAL, "'%.64s': host bits are set (the subnet is %s/%u)", s, net, p);
        }
        *ret_base = a;
        *ret_prefix = p;
        return 0;
}

void ipv4_format(uint32_t a, char ret[16]) {
        snprintf(ret, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

Lease *ipam_find(NetworkHost *h, const char *container) {
        for (size_t i = 0; i < h->n_leases; i++)
                if (strcmp(h->leases[i]->container, container) == 0)
                        return h->leases[i];
        return NULL;
}

static bool mac_taken(NetworkHost *h, const char *mac) {
        for (size_t i = 0; i < h->n_leases; i++)
                if (strcmp(h->leases[i]->mac, mac) == 0)
                        return true;
        return false;
}

static bool address_taken(NetworkHost *h, const Network *net, uint32_t a) {
        for (size_t i = 0; i < h->n_leases; i++)
                if (h->leases[i]->net == net && h->leases[i]->address == a)
                        return true;
        return false;
}

static bool container_id_valid(const char *s) {
        size_t n = strlen(s);
        return n > 0 && n <= NETWORK_ID_MAX && strspn(s, "0123456789abcdef") == n;
}

static bool mac_valid(const char *s) {
        if (strlen(s) != 17 || strncmp(s, NETWORK_MAC_PREFIX ":", 9) != 0)
                return false;
        for (size_t i = 0; i < 17; i++)
                if (i % 3 == 2 ? s[i] != ':' : !strchr("0123456789abcdef", s[i]))
                        return false;
        return true;
}

static int lease_add(NetworkHost *h, Network *net, const char *container, uint32_t a, const char *mac, Lease **ret) {
        Lease **v = realloc(h->leases, (h->n_leases + 1) * sizeof *v);
        if (!v)
                return -ENOMEM;
        h->leases = v;
        Lease *l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        snprintf(l->container, sizeof l->container, "%s", container);
        snprintf(l->mac, sizeof l->mac, "%s", mac);
        l->net = net;
        l->address = a;
        h->leases[h->n_leases++] = l;
        if (ret)
                *ret = l;
        return 0;
}

static int lease_path(const Network *net, uint32_t a, char **ret) {
        char addr[16];
        ipv4_format(a, addr);
        return asprintf(ret, "%s/%s", net->leases_dir, addr) < 0 ? -ENOMEM : 0;
}

/* One lease file: 1 loaded, 0 dropped (empty: never handed out). */
static int ipam_load_one(NetworkHost *h, Network *net, const char *name, Error **err) {
        struct in_addr in;
        if (netlink_parse_ipv4(name, &in) < 0)
                return 0;
        uint32_t a = ntohl(in.s_addr);
        _cleanup_free_ char *path = NULL, *data = NULL;
        if (lease_path(net, a, &path) < 0)
                return error_oom(err);
        size_t len = 0;
        int r = read_file_bounded(path, LEASE_FILE_MAX, &data, &len);
        if (r < 0)
                return error_set_errno(err, -r, "read lease %s", path);
        _cleanup_json_ json_t *j = len ? json_loadb(data, len, 0, NULL) : NULL;
        const char *container = json_string_value(json_object_get(j, "container"));
        const char *mac = json_string_value(json_object_get(j, "mac"));
        if (!container || !mac || !container_id_valid(container) || !mac_valid(mac) || (a >> (32 - net->prefix)) !=
                    (net->base >> (32 - net->prefix)) || ipam_find(h, container) || mac_taken(h, mac)) {
                /* Created but never written (kill -9 between the two), so
                 * never handed out; or not ours to trust. */
                log_warning("network %s: dropping lease file %s (%s)", net->name, name,
                            len ? "not a valid lease" : "empty: never handed out");
                if (unlink(path) < 0 && errno != ENOENT)
                        return error_set_errno(err, errno, "remove %s", path);
                return 0;
        }
        if (lease_add(h, net, container, a, mac, NULL) < 0)
                return error_oom(err);
        return 1;
}

int ipam_load(NetworkHost *h, Network *net, Error **err) {
        int r = mkdir_p(net->leases_dir, 0755);
        if (r < 0)
                return error_set_errno(err, -r, "create %s", net->leases_dir);
        _cleanup_closedir_ DIR *d = opendir(net->leases_dir);
        if (!d)
                return error_set_errno(err, errno, "open %s", net->leases_dir);
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                r = ipam_load_one(h, net, de->d_name, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void mac_random(char ret[18]) {
        uint8_t b[3];
        random_bytes(b, sizeof b);
        snprintf(ret, 18, NETWORK_MAC_PREFIX ":%02x:%02x:%02x", b[0], b[1], b[2]);
}

static int fsync_dir(const char *dir) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return negative_errno();
        return 0;
}

/* Creates the lease file of a for container: 0, -EEXIST (someone holds it). */
static int lease_file_create(const Network *net, uint32_t a, const char *container, const char *mac, Error **err) {
        _cleanup_free_ char *path = NULL, *data = NULL;
        if (lease_path(net, a, &path) < 0 ||
            asprintf(&data, "{\"container\": \"%s\", \"mac\": \"%s\"}\n", container, mac) < 0)
                return error_oom(err);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return errno == EEXIST ? -EEXIST : error_set_errno(err, errno, "create lease %s", path);
        int r = write_all(fd, data, strlen(data));
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0)
                r = fsync_dir(net->leases_dir);
        if (r < 0) {
                unlink(path);
                return error_set_errno(err, -r, "write lease %s", path);
        }
        return 0;
}

int ipam_acquire(NetworkHost *h, Network *net, const char *container, Lease **ret, Error **err) {
        if (!container_id_valid(container))
                return error_set(err, EINVAL, "'%.80s' is not a container id", container);
        char mac[18];
        do
                mac_random(mac);
        while (mac_taken(h, mac));
        uint32_t last = net->base + (uint32_t) ((1ull << (32 - net->prefix)) - 2);
        for (uint32_t a = net->base + 2; a <= last; a++) {
                if (address_taken(h, net, a))
                        continue;
                int r = lease_file_create(net, a, container, mac, err);
                if (r == -EEXIST)
                        continue; /* a file this host did not load: not ours to take */
                if (r < 0)
                        return r;
                if (lease_add(h, net, container, a, mac, ret) < 0) {
                        _cleanup_free_ char *path = NULL;
                        if (lease_path(net, a, &path) == 0)
                                unlink(path);
                        return error_oom(err);
                }
                return 0;
        }
        return error_set(err, ENOSPC, "network %s: no free address left in %s", net->name, net->subnet);
}

int ipam_release(NetworkHost *h, Lease *l, Error **err) {
        _cleanup_free_ char *path = NULL;
        if (lease_path(l->net, l->address, &path) < 0)
                return error_oom(err);
        int r = ports_save(h, l, NULL, 0, err);
        if (r < 0)
                return r;
        if (unlink(path) < 0 && errno != ENOENT)
                return error_set_errno(err, errno, "remove lease %s", path);
        (void) fsync_dir(l->net->leases_dir);
        for (size_t i = 0; i < h->n_leases; i++)
                if (h->leases[i] == l) {
                        memmove(h->leases + i, h->leases + i + 1, (h->n_leases - i - 1) * sizeof *h->leases);
                        h->n_leases--;
                        break;
                }
        free(l->ports);
        free(l);
        return 0;
}
