/* network-ports.c: published ports: parsing, conflicts, the file per
 * container (<state>/networks/ports/<id>.json, written atomically), and the
 * "ports" JSON.
 *
 * A host port is free when no other container publishes it (the same
 * protocol and port on the same address, or either on 0.0.0.0) and a socket
 * of this host can bind it: DNAT would steal a bound port's connections
 * silently, and a user-mode forward could not bind it at all. */
#include "network-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/json/json-util.h"
#include "common/netlink/netlink.h"

#define PORTS_FILE_MAX (64 * 1024)

static int port_number(const json_t *v, const char *what, size_t i, uint16_t *ret, Error **err) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
                return error_set(err, EINVAL, "ports[%zu].%s: must be an integer from 1 to 65535", i, what);
        *ret = (uint16_t) json_integer_value(v);
        return 0;
}

static int port_parse(const json_t *e, size_t i, NetworkPort *p, Error **err) {
        if (!json_is_object(e))
                return error_set(err, EINVAL, "ports[%zu]: must be an object", i);
        const char *key;
        json_t *v;
        json_object_foreach((json_t *) e, key, v)
                if (!strstr(",host_ip,host_port,container_port,protocol,", key) || strchr(key, ',') || !key[0])
                        return error_set(err, EINVAL, "ports[%zu]: unknown field '%.64s'", i, key);
        *p = (NetworkPort) {.host_ip = "0.0.0.0", .protocol = "tcp"};
        int r = port_number(json_object_get(e, "host_port"), "host_port", i, &p->host_port, err);
        if (r < 0)
                return r;
        r = port_number(json_object_get(e, "container_port"), "container_port", i, &p->container_port, err);
        if (r < 0)
                return r;
        if ((v = json_object_get(e, "protocol"))) {
                const char *s = json_string_value(v);
                if (!s || (strcmp(s, "tcp") != 0 && strcmp(s, "udp") != 0))
                        return error_set(err, EINVAL, "ports[%zu].protocol: must be \"tcp\" or \"udp\"", i);
                snprintf(p->protocol, sizeof p->protocol, "%s", s);
        }
        if ((v = json_object_get(e, "host_ip"))) {
                const char *s = json_string_value(v);
                struct in_addr in;
                if (!s || strlen(s) >= sizeof p->host_ip || netlink_parse_ipv4(s, &in) < 0)
                        return error_set(err, EINVAL, "ports[%zu].host_ip: must be an IPv4 address", i);
                inet_ntop(AF_INET, &in, p->host_ip, sizeof p->host_ip); /* canonical */
        }
        return 0;
}

static bool ports_overlap(const NetworkPort *a, const NetworkPort *b) {
        return a->host_port == b->host_port && strcmp(a->protocol, b->protocol) == 0 &&
               (strcmp(a->host_ip, b->host_ip) == 0 || strcmp(a->host_ip, "0.0.0.0") == 0 ||
                strcmp(b->host_ip, "0.0.0.0") == 0);
}

int network_ports_parse(const json_t *ports, NetworkPort *ret, size_t *ret_n, Error **err) {
        if (!json_is_array(ports))
                return error_set(err, EINVAL, "ports: must be an array");
        if (json_array_size(ports) > NETWORK_PORTS_MAX)
                return error_set(err, EINVAL, "ports: more than %d entries", NETWORK_PORTS_MAX);
        NetworkPort v[NETWORK_PORTS_MAX];
        size_t i;
        json_t *e;
        json_array_foreach(ports, i, e) {
                int r = port_parse(e, i, &v[i], err);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < i; k++)
                        if (ports_overlap(&v[k], &v[i]))
                                return error_set(err, EINVAL, "ports[%zu]: %s:%u/%s is published twice", i,
                                                 v[i].host_ip, v[i].host_port, v[i].protocol);
        }
        if (ret)
                memcpy(ret, v, json_array_size(ports) * sizeof *v);
        if (ret_n)
                *ret_n = json_array_size(ports);
        return 0;
}

json_t *network_ports_to_json(const NetworkPort *ports, size_t n) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++)
                if (json_array_append_new(a, json_pack("{s:s, s:i, s:i, s:s}", "host_ip", ports[i].host_ip,
                                                       "host_port", ports[i].host_port, "container_port",
                                                       ports[i].container_port, "protocol", ports[i].protocol)) < 0)
                        return json_decref(a), NULL;
        return a;
}

/* -EADDRINUSE when a socket of this host holds p (or -EINVAL: host_ip is
 * not an address of this host). */
static int port_bind_check(const NetworkPort *p, Error **err) {
        bool tcp = strcmp(p->protocol, "tcp") == 0;
        _cleanup_close_ int fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return error_set_errno(err, errno, "socket");
        int one = 1;
        if (tcp) /* a connection in TIME_WAIT does not hold the port */
                (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(p->host_port)};
        inet_pton(AF_INET, p->host_ip, &sa.sin_addr);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) == 0)
                return 0;
        if (errno == EADDRINUSE || errno == EACCES)
                return error_set(err, EADDRINUSE, "port %s:%u/%s is already in use on the host", p->host_ip,
                                 p->host_port, p->protocol);
        if (errno == EADDRNOTAVAIL)
                return error_set(err, EINVAL, "port %s:%u/%s: %s is not an address of this host", p->host_ip,
                                 p->host_port, p->protocol, p->host_ip);
        return error_set_errno(err, errno, "bind %s:%u/%s", p->host_ip, p->host_port, p->protocol);
}

static bool lease_publishes(const Lease *l, const NetworkPort *p) {
        for (size_t i = 0; i < l->n_ports; i++)
                if (ports_overlap(&l->ports[i], p))
                        return true;
        return false;
}

static int ports_check(NetworkHost *h, const Lease *self, const NetworkPort *ports, size_t n, Error **err) {
        for (size_t i = 0; i < n; i++) {
                const NetworkPort *p = &ports[i];
                for (size_t k = 0; k < h->n_leases; k++)
                        if (h->leases[k] != self && lease_publishes(h->leases[k], p))
                                return error_set(err, EADDRINUSE,
                                                 "port %s:%u/%s is already published by container %.12s",
                                                 p->host_ip, p->host_port, p->protocol, h->leases[k]->container);
                if (lease_publishes(self, p))
                        continue; /* ours already (a user-mode forward binds it itself) */
                int r = port_bind_check(p, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int ports_path(NetworkHost *h, const Lease *l, char **ret) {
        return asprintf(ret, "%s/%s.json", h->ports_dir, l->container) < 0 ? -ENOMEM : 0;
}

int ports_save(NetworkHost *h, const Lease *l, const NetworkPort *ports, size_t n, Error **err) {
        _cleanup_free_ char *path = NULL;
        if (ports_path(h, l, &path) < 0)
                return error_oom(err);
        if (n == 0) {
                if (unlink(path) < 0 && errno != ENOENT)
                        return error_set_errno(err, errno, "remove %s", path);
                return 0;
        }
        _cleanup_json_ json_t *j = network_ports_to_json(ports, n);
        _cleanup_free_ char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (!text)
                return error_oom(err);
        int r = write_file_atomic(path, text, strlen(text), 0644);
        if (r < 0)
                return error_set_errno(err, -r, "write %s", path);
        return 0;
}

static int lease_ports_replace(Lease *l, const NetworkPort *ports, size_t n) {
        NetworkPort *v = NULL;
        if (n > 0) {
                v = malloc(n * sizeof *v);
                if (!v)
                        return -ENOMEM;
                memcpy(v, ports, n * sizeof *v);
        }
        free(l->ports);
        l->ports = v;
        l->n_ports = n;
        return 0;
}

int ports_load(NetworkHost *h, Error **err) {
        for (size_t i = 0; i < h->n_leases; i++) {
                Lease *l = h->leases[i];
                _cleanup_free_ char *path = NULL, *data = NULL;
                if (ports_path(h, l, &path) < 0)
                        return error_oom(err);
                size_t len = 0;
                int r = read_file_bounded(path, PORTS_FILE_MAX, &data, &len);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return error_set_errno(err, -r, "read %s", path);
                _cleanup_json_ json_t *j = json_loadb(data, len, 0, NULL);
                NetworkPort v[NETWORK_PORTS_MAX];
                size_t n = 0;
                _cleanup_error_ Error *e = NULL;
                if (!j || network_ports_parse(j, v, &n, &e) < 0)
                        return error_set(err, EBADMSG, "%s: not a ports file: %s", path, e ? error_text(e) : "bad JSON");
                if (lease_ports_replace(l, v, n) < 0)
                        return error_oom(err);
        }
        return 0;
}

int network_ports_set(NetworkHost *h, const char *container_id, const NetworkPort *ports, size_t n_ports,
                      Error **err) {
        pthread_mutex_lock(&h->lock);
        Lease *l = ipam_find(h, container_id);
        NetworkPort *old = NULL;
        size_t n_old = 0;
        int r;
        if (!l) {
                r = error_set(err, ENOENT, "container %.12s holds no address", container_id);
                goto out;
        }
        r = ports_check(h, l, ports, n_ports, err);
        if (r < 0)
                goto out;
        r = ports_save(h, l, ports, n_ports, err);
        if (r < 0)
                goto out;
        old = TAKE_PTR(l->ports);
        n_old = l->n_ports;
        l->n_ports = 0;
        if (lease_ports_replace(l, ports, n_ports) < 0) {
                r = error_oom(err);
                goto restore;
        }
        r = rules_apply_locked(h, err);
        if (r >= 0)
                goto out;
restore:
        (void) lease_ports_replace(l, old, n_old);
        (void) ports_save(h, l, old, n_old, NULL);
        (void) rules_apply_locked(h, NULL);
out:
        free(old);
        pthread_mutex_unlock(&h->lock);
        return r;
}

json_t *network_ports_json(NetworkHost *h, const char *container_id) {
        pthread_mutex_lock(&h->lock);
        Lease *l = ipam_find(h, container_id);
        json_t *j = l ? network_ports_to_json(l->ports, l->n_ports) : json_array();
        pthread_mutex_unlock(&h->lock);
        return j;
}
