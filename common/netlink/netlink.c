/* netlink.c: rtnetlink requests on one NETLINK_ROUTE socket (see netlink.h).
 *
 * Each request is built in a fixed buffer, sent with a fresh sequence number
 * and NLM_F_ACK (dumps end with NLMSG_DONE instead), and answered by reading
 * until the kernel's acknowledgement for that sequence number: messages with
 * another sequence number (a reply to an earlier request that gave up) or
 * from a sender other than the kernel are dropped. The socket asks for
 * capped acknowledgements (the request is not echoed back) with extended
 * messages, so a refusal reads as the kernel words it. */
#include "common/netlink/netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* The kernel never builds a dump message larger than 32 KiB for a reader
 * whose buffer is at least that large; a message past it is -EMSGSIZE. */
#define NL_RECV_SIZE 32768
#define NL_REQ_SIZE 512
#define NL_TIMEOUT_SEC 10

struct Netlink {
        int fd;
        uint32_t seq;
        uint8_t *buf; /* NL_RECV_SIZE */
};

/* A request under construction: the header, its fixed part, attributes. */
typedef struct NlReq {
        union {
                struct nlmsghdr h;
                uint8_t bytes[NL_REQ_SIZE];
        };
} NlReq;

typedef int (*NlEach)(const struct nlmsghdr *m, void *userdata);

static void *req_init(NlReq *r, uint16_t type, uint16_t flags, size_t fixed) {
        memset(r, 0, sizeof(*r));
        r->h.nlmsg_len = NLMSG_LENGTH(fixed);
        r->h.nlmsg_type = type;
        r->h.nlmsg_flags = NLM_F_REQUEST | flags;
        return NLMSG_DATA(&r->h);
}

/* Appends one attribute; the builders' sizes are fixed and small, so running
 * out of room is a programming error reported as -ENOBUFS. */
static struct rtattr *req_put(NlReq *r, uint16_t type, const void *data, size_t len) {
        size_t off = NLMSG_ALIGN(r->h.nlmsg_len);
        if (off + RTA_SPACE(len) > sizeof(r->bytes))
                return NULL;
        struct rtattr *a = (struct rtattr *) (r->bytes + off);
        a->rta_type = type;
        a->rta_len = RTA_LENGTH(len);
        if (len > 0)
                memcpy(RTA_DATA(a), data, len);
        r->h.nlmsg_len = off + RTA_ALIGN(a->rta_len);
        return a;
}

static struct rtattr *req_put_u32(NlReq *r, uint16_t type, uint32_t v) {
        return req_put(r, type, &v, sizeof(v));
}

static struct rtattr *req_put_str(NlReq *r, uint16_t type, const char *s) {
        return req_put(r, type, s, strlen(s) + 1);
}

/* Ends a nested attribute opened with req_put(r, type, NULL, 0). */
static void req_nest_end(NlReq *r, struct rtattr *nest) {
        nest->rta_len = (uint16_t) (r->h.nlmsg_len - ((uint8_t *) nest - r->bytes));
}

int netlink_open(Netlink **ret, Error **err) {
        _cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd < 0)
                return error_set_errno(err, errno, "open netlink socket");
        struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return error_set_errno(err, errno, "bind netlink socket");
        int one = 1;
        /* Both are optional: without them errors lose the kernel's text. */
        (void) setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
        (void) setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
        struct timeval tv = {.tv_sec = NL_TIMEOUT_SEC};
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
                return error_set_errno(err, errno, "set netlink receive timeout");

        Netlink *nl = calloc(1, sizeof(*nl));
        uint8_t *buf = malloc(NL_RECV_SIZE);
        if (!nl || !buf) {
                free(nl);
                free(buf);
                return error_oom(err);
        }
        nl->fd = TAKE_FD(fd);
        nl->buf = buf;
        *ret = nl;
        return 0;
}

Netlink *netlink_close(Netlink *nl) {
        if (!nl)
                return NULL;
        safe_close(nl->fd);
        free(nl->buf);
        free(nl);
        return NULL;
}

/* NLMSG_OK and NLMSG_NEXT with an unsigned length: the macros compare the
 * header's __u32 length with a signed int, which -Wsign-compare rejects. */
static bool nl_msg_ok(const struct nlmsghdr *m, size_t len) {
        return len >= sizeof(*m) && m->nlmsg_len >= sizeof(*m) && m->nlmsg_len <= len;
}

static const struct nlmsghdr *nl_msg_next(const struct nlmsghdr *m, size_t *len) {
        size_t step = NLMSG_ALIGN(m->nlmsg_len);
        *len = step < *len ? *len - step : 0;
        return (const struct nlmsghdr *) ((const uint8_t *) m + step);
}

static int nl_send(Netlink *nl, NlReq *r) {
        r->h.nlmsg_seq = ++nl->seq;
        struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
        for (;;) {
                ssize_t n = sendto(nl->fd, r->bytes, r->h.nlmsg_len, 0, (struct sockaddr *) &kernel, sizeof(kernel));
                if (n == (ssize_t) r->h.nlmsg_len)
                        return 0;
                if (n >= 0)
                        return -EIO;
                if (errno != EINTR)
                        return -errno;
        }
}

/* Reads one datagram from the kernel into nl->buf; others are dropped. */
static int nl_recv(Netlink *nl, size_t *ret_len) {
        for (;;) {
                struct sockaddr_nl from = {0};
                struct iovec iov = {.iov_base = nl->buf, .iov_len = NL_RECV_SIZE};
                struct msghdr msg = {.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1};
                ssize_t n = recvmsg(nl->fd, &msg, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
                }
                if (msg.msg_flags & MSG_TRUNC)
                        return -EMSGSIZE;
                if (from.nl_pid != 0)
                        continue;
                *ret_len = (size_t) n;
                return 0;
        }
}

/* The extended ack's message ("Invalid MTU" ...), or NULL. */
static const char *ack_message(const struct nlmsghdr *m) {
        if (!(m->nlmsg_flags & NLM_F_ACK_TLVS))
                return NULL;
        const struct nlmsgerr *e = NLMSG_DATA(m);
        size_t off = NLMSG_LENGTH(sizeof(*e));
        if (!(m->nlmsg_flags & NLM_F_CAPPED)) {
                if (e->msg.nlmsg_len < sizeof(struct nlmsghdr))
                        return NULL;
                off += NLMSG_ALIGN(e->msg.nlmsg_len - sizeof(struct nlmsghdr));
        }
        if (off >= m->nlmsg_len)
                return NULL;
        int left = (int) (m->nlmsg_len - off);
        for (const struct rtattr *a = (const struct rtattr *) ((const uint8_t *) m + off); RTA_OK(a, left);
             a = RTA_NEXT(a, left)) {
                const char *s = RTA_DATA(a);
                size_t len = RTA_PAYLOAD(a);
                if (a->rta_type == NLMSGERR_ATTR_MSG && len > 1 && memchr(s, '\0', len))
                        return s;
        }
        return NULL;
}

/* Sends r and reads its answer: each reply message of r's sequence number
 * goes to each (when set) until the acknowledgement, the kernel's error or,
 * for a dump, NLMSG_DONE. Returns 0, the kernel's negative errno (message
 * "<what>[: <kernel's text>]: strerror"), or each's negative return. */
static int nl_transact(Netlink *nl, NlReq *r, NlEach each, void *userdata, Error **err, const char *what) {
        bool dump = (r->h.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
        if (!dump)
                r->h.nlmsg_flags |= NLM_F_ACK;
        int k = nl_send(nl, r);
        if (k < 0)
                return error_set_errno(err, -k, "%s: send", what);
        for (;;) {
                size_t n = 0;
                k = nl_recv(nl, &n);
                if (k < 0)
                        return error_set_errno(err, -k, "%s: receive", what);
                size_t len = n;
                for (const struct nlmsghdr *m = (const struct nlmsghdr *) nl->buf; nl_msg_ok(m, len);
                     m = nl_msg_next(m, &len)) {
                        if (m->nlmsg_seq != nl->seq)
                                continue;
                        if (m->nlmsg_type == NLMSG_ERROR) {
                                if (m->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
                                        return error_set(err, EBADMSG, "%s: short netlink error message", what);
                                const struct nlmsgerr *e = NLMSG_DATA(m);
                                if (e->error == 0)
                                        return 0;
                                if (e->error > 0 || e->error < -4095)
                                        return error_set(err, EBADMSG, "%s: bad netlink error %d", what, e->error);
                                const char *text = ack_message(m);
                                if (text)
                                        return error_set_errno(err, -e->error, "%s: %s", what, text);
                                return error_set_errno(err, -e->error, "%s", what);
                        }
                        if (m->nlmsg_type == NLMSG_DONE) {
                                int e = 0;
                                if (m->nlmsg_len >= NLMSG_LENGTH(sizeof(int)))
                                        memcpy(&e, NLMSG_DATA(m), sizeof(e));
                                if (e < 0 && e >= -4095)
                                        return error_set_errno(err, -e, "%s", what);
                                return 0;
                        }
                        if (m->nlmsg_type == NLMSG_NOOP || !each)
                                continue;
                        k = each(m, userdata);
                        if (k < 0)
                                return error_set_errno(err, -k, "%s", what);
                }
        }
}

static bool ifname_valid(const char *name) {
        return name && name[0] != '\0' && strlen(name) <= NETLINK_IFNAME_MAX && !strchr(name, '/') &&
               strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* What one RTM_NEWLINK message says about a link; the name bounded. */
typedef struct LinkInfo {
        int index;
        const char *name; /* points into the message; NULL if absent */
        const uint8_t *mac; /* 6 bytes when set */
} LinkInfo;

static int link_info(const struct nlmsghdr *m, LinkInfo *ret) {
        if (m->nlmsg_type != RTM_NEWLINK || m->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
                return -EBADMSG;
        const struct ifinfomsg *ifi = NLMSG_DATA(m);
        *ret = (LinkInfo){.index = ifi->ifi_index};
        int left = (int) NLMSG_PAYLOAD(m, sizeof(*ifi));
        for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, left); a = RTA_NEXT(a, left)) {
                size_t len = RTA_PAYLOAD(a);
                if (a->rta_type == IFLA_IFNAME && len > 0 && strnlen(RTA_DATA(a), len) < MIN(len, IFNAMSIZ))
                        ret->name = RTA_DATA(a);
                else if (a->rta_type == IFLA_ADDRESS && len == 6)
                        ret->mac = RTA_DATA(a);
        }
        return 0;
}

static int each_index(const struct nlmsghdr *m, void *userdata) {
        LinkInfo info;
        if (link_info(m, &info) < 0)
                return 0;
        *(int *) userdata = info.index;
        return 0;
}

int netlink_link_index(Netlink *nl, const char *name, int *ret_index, Error **err) {
        if (!ifname_valid(name))
                return error_set(err, EINVAL, "bad link name '%s'", name ? name : "");
        NlReq r;
        struct ifinfomsg *ifi = req_init(&r, RTM_GETLINK, 0, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        if (!req_put_str(&r, IFLA_IFNAME, name) || !req_put_u32(&r, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS))
                return error_set(err, ENOBUFS, "link %s: request too large", name);
        int index = 0;
        char what[32];
        snprintf(what, sizeof(what), "link %s", name);
        int k = nl_transact(nl, &r, each_index, &index, err, what);
        if (k < 0)
                return k;
        if (index <= 0)
                return error_set(err, ENODEV, "link %s: no such link", name);
        *ret_index = index;
        return 0;
}

/* Dumps every link to each. */
static int links_dump(Netlink *nl, NlEach each, void *userdata, Error **err) {
        NlReq r;
        struct ifinfomsg *ifi = req_init(&r, RTM_GETLINK, NLM_F_DUMP, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        if (!req_put_u32(&r, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS))
                return error_set(err, ENOBUFS, "list links: request too large");
        return nl_transact(nl, &r, each, userdata, err, "list links");
}

typedef struct MacMatch {
        const uint8_t *mac;
        int index;
        char name[IFNAMSIZ];
} MacMatch;

static int each_mac(const struct nlmsghdr *m, void *userdata) {
        MacMatch *match = userdata;
        LinkInfo info;
        if (link_info(m, &info) < 0 || !info.mac || !info.name || memcmp(info.mac, match->mac, 6) != 0)
                return 0;
        if (match->index == 0 || info.index < match->index) {
                match->index = info.index;
                snprintf(match->name, sizeof(match->name), "%s", info.name);
        }
        return 0;
}

int netlink_link_by_mac(Netlink *nl, const uint8_t mac[6], int *ret_index, char ret_name[16], Error **err) {
        MacMatch match = {.mac = mac};
        int k = links_dump(nl, each_mac, &match, err);
        if (k < 0)
                return k;
        char text[18];
        if (match.index <= 0)
                return error_set(err, ENODEV, "no link with address %s", netlink_format_mac(mac, text));
        *ret_index = match.index;
        if (ret_name)
                memcpy(ret_name, match.name, IFNAMSIZ);
        return 0;
}

typedef struct PrefixList {
        const char *prefix;
        char **names;
        size_t n, cap;
} PrefixList;

static int each_prefix(const struct nlmsghdr *m, void *userdata) {
        PrefixList *l = userdata;
        LinkInfo info;
        if (link_info(m, &info) < 0 || !info.name || strncmp(info.name, l->prefix, strlen(l->prefix)) != 0)
                return 0;
        if (l->n + 2 > l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 8;
                char **names = realloc(l->names, cap * sizeof(char *));
                if (!names)
                        return -ENOMEM;
                l->names = names;
                l->cap = cap;
        }
        l->names[l->n] = strdup(info.name);
        if (!l->names[l->n])
                return -ENOMEM;
        l->names[++l->n] = NULL;
        return 0;
}

int netlink_links_with_prefix(Netlink *nl, const char *prefix, char ***ret_names, Error **err) {
        PrefixList l = {.prefix = prefix ? prefix : ""};
        int k = links_dump(nl, each_prefix, &l, err);
        if (k >= 0 && !l.names) {
                l.names = calloc(1, sizeof(char *));
                if (!l.names)
                        k = error_oom(err);
        }
        if (k < 0) {
                netlink_names_free(l.names);
                return k;
        }
        *ret_names = l.names;
        return 0;
}

char **netlink_names_free(char **names) {
        if (names)
                for (char **p = names; *p; p++)
                        free(*p);
        free(names);
        return NULL;
}

/* An RTM_NEWLINK (or DELLINK) request on an existing link. */
static struct ifinfomsg *link_req(NlReq *r, uint16_t type, int index) {
        struct ifinfomsg *ifi = req_init(r, type, 0, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        ifi->ifi_index = index;
        return ifi;
}

int netlink_link_set(Netlink *nl, int index, bool up, unsigned mtu, Error **err) {
        if (index <= 0)
                return error_set(err, EINVAL, "bad link index %d", index);
        NlReq r;
        struct ifinfomsg *ifi = link_req(&r, RTM_NEWLINK, index);
        ifi->ifi_change = IFF_UP;
        ifi->ifi_flags = up ? IFF_UP : 0;
        if (mtu > 0 && !req_put_u32(&r, IFLA_MTU, mtu))
                return error_set(err, ENOBUFS, "set link %d: request too large", index);
        char what[64];
        snprintf(what, sizeof(what), "set link %d %s mtu %u", index, up ? "up" : "down", mtu);
        return nl_transact(nl, &r, NULL, NULL, err, what);
}

int netlink_link_set_master(Netlink *nl, int index, int master_index, Error **err) {
        if (index <= 0 || master_index < 0)
                return error_set(err, EINVAL, "bad link index %d or master %d", index, master_index);
        NlReq r;
        link_req(&r, RTM_NEWLINK, index);
        if (!req_put_u32(&r, IFLA_MASTER, (uint32_t) master_index))
                return error_set(err, ENOBUFS, "set master: request too large");
        char what[64];
        snprintf(what, sizeof(what), "set master of link %d to %d", index, master_index);
        return nl_transact(nl, &r, NULL, NULL, err, what);
}

int netlink_bridge_add(Netlink *nl, const char *name, Error **err) {
        if (!ifname_valid(name))
                return error_set(err, EINVAL, "bad bridge name '%s'", name ? name : "");
        NlReq r;
        struct ifinfomsg *ifi = req_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        struct rtattr *info = NULL;
        if (!req_put_str(&r, IFLA_IFNAME, name) || !(info = req_put(&r, IFLA_LINKINFO, NULL, 0)) ||
            !req_put_str(&r, IFLA_INFO_KIND, "bridge"))
                return error_set(err, ENOBUFS, "add bridge %s: request too large", name);
        req_nest_end(&r, info);
        char what[64];
        snprintf(what, sizeof(what), "add bridge %s", name);
        return nl_transact(nl, &r, NULL, NULL, err, what);
}

int netlink_link_del(Netlink *nl, int index, Error **err) {
        if (index <= 0)
                return error_set(err, EINVAL, "bad link index %d", index);
        NlReq r;
        link_req(&r, RTM_DELLINK, index);
        char what[64];
        snprintf(what, sizeof(what), "delete link %d", index);
        return nl_transact(nl, &r, NULL, NULL, err, what);
}

int netlink_addr_add(Netlink *nl, int index, const char *cidr, Error **err) {
        struct in_addr addr;
        unsigned prefix;
        if (!cidr || netlink_parse_cidr(cidr, &addr, &prefix) < 0 || prefix == 0)
                return error_set(err, EINVAL, "bad IPv4 address '%s' (want a.b.c.d/1-32)", cidr ? cidr : "");
        if (index <= 0)
                return error_set(err, EINVAL, "bad link index %d", index);
        NlReq r;
        /* NLM_F_REPLACE: the same address again updates it instead of -EEXIST. */
        struct ifaddrmsg *ifa = req_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, sizeof(*ifa));
        ifa->ifa_family = AF_INET;
        ifa->ifa_prefixlen = (uint8_t) prefix;
        ifa->ifa_scope = RT_SCOPE_UNIVERSE;
        ifa->ifa_index = (uint32_t) index;
        uint32_t host = prefix == 32 ? 0 : 0xffffffffu >> prefix;
        struct in_addr brd = {.s_addr = addr.s_addr | htonl(host)};
        if (!req_put(&r, IFA_LOCAL, &addr, 4) || !req_put(&r, IFA_ADDRESS, &addr, 4) ||
            (prefix < 31 && !req_put(&r, IFA_BROADCAST, &brd, 4)))
                return error_set(err, ENOBUFS, "add address: request too large");
        char what[80];
        snprintf(what, sizeof(what), "add address %s to link %d", cidr, index);
        return nl_transact(nl, &r, NULL, NULL, err, what);
}

int netlink_route_add_default(Netlink *nl, int index, const char *gateway, Error **err) {
        struct in_addr gw;
        if (!gateway || netlink_parse_ipv4(gateway, &gw) < 0)
                return error_set(err, EINVAL, "bad gateway '%s' (want a.b.c.d)", gateway ? gateway : "");
        if (index <= 0)
                return error_set(err, EINVAL, "bad link index %d", index);
        NlReq r;
        struct rtmsg *rt = req_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, sizeof(*rt));
        rt->rtm_family = AF_INET;
        rt->rtm_dst_len = 0;
        rt->rtm_table = RT_TABLE_MAIN;
        rt->rtm_protocol = RTPROT_BOOT;
        rt->rtm_scope = RT_SCOPE_UNIVERSE;
        rt->rtm_type = RTN_UNICAST;
        if (!req_put(&r, RTA_GATEWAY, &gw, 4) || !req_put_u32(&r, RTA_OIF, (uint32_t) index))
                return error_set(err, ENOBUFS, "add default route: request too large");
        char what[80];
        snprintf(what, sizeof(what), "add default route via %s on link %d", gateway, index);
        return nl_transact(nl, &r, NULL, NULL, err, what);
}

static int hex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int netlink_parse_mac(const char *s, uint8_t ret[6]) {
        if (!s || strlen(s) != 17)
                return -EINVAL;
        uint8_t mac[6];
        for (size_t i = 0; i < 6; i++) {
                const char *p = s + i * 3;
                int hi = hex_digit(p[0]), lo = hex_digit(p[1]);
                if (hi < 0 || lo < 0 || (i < 5 && p[2] != ':'))
                        return -EINVAL;
                mac[i] = (uint8_t) (hi << 4 | lo);
        }
        memcpy(ret, mac, 6);
        return 0;
}

char *netlink_format_mac(const uint8_t mac[6], char buf[18]) {
        snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
        return buf;
}

int netlink_parse_ipv4(const char *s, struct in_addr *ret) {
        struct in_addr a;
        if (!s || inet_pton(AF_INET, s, &a) != 1)
                return -EINVAL;
        *ret = a;
        return 0;
}

int netlink_parse_cidr(const char *s, struct in_addr *ret_addr, unsigned *ret_prefix) {
        const char *slash = s ? strchr(s, '/') : NULL;
        if (!slash || slash - s >= INET_ADDRSTRLEN)
                return -EINVAL;
        char addr_text[INET_ADDRSTRLEN];
        memcpy(addr_text, s, (size_t) (slash - s));
        addr_text[slash - s] = '\0';
        const char *p = slash + 1;
        size_t digits = strlen(p);
        if (digits < 1 || digits > 2 || (digits == 2 && p[0] == '0') || strspn(p, "0123456789") != digits)
                return -EINVAL;
        unsigned prefix = (unsigned) atoi(p);
        struct in_addr a;
        if (prefix > 32 || netlink_parse_ipv4(addr_text, &a) < 0)
                return -EINVAL;
        *ret_addr = a;
        *ret_prefix = prefix;
        return 0;
}
