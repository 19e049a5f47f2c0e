/* network-rules.c: the nftables ruleset of the port layer, as text.
 *
 * A pure function of the networks and the published ports, so a unit test
 * pins it (golden text) and every change, start or restart after a kill -9
 * applies exactly the current state: the script first adds then deletes
 * table ip portlayer (adding an existing table is a no-op, so the delete
 * never fails) and adds it back whole, and nft runs the buffer as one
 * transaction: no moment without rules, no rule of a killed daemon left.
 *
 *   postrouting  masquerade each subnet leaving through anything but its
 *                bridge (NAT to the uplink); masquerade 127.0.0.0/8 leaving
 *                through a bridge (a DNAT of a loopback connection needs a
 *                source the container can answer; route_localnet lets the
 *                packet be routed at all)
 *   forward      accept what enters or leaves a bridge (a host whose own
 *                filter drops forwarding still needs its rules for that)
 *   prerouting   DNAT of published ports arriving from outside
 *   output       the same DNAT for connections the host itself opens,
 *                127.0.0.1 included */
#include "network-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void rules_dnat(FILE *f, const RulesPort *ports, size_t n_ports) {
        for (size_t i = 0; i < n_ports; i++) {
                const NetworkPort *p = ports[i].port;
                if (strcmp(p->host_ip, "0.0.0.0") == 0)
                        fprintf(f, "\t\tfib daddr type local ");
                else
                        fprintf(f, "\t\tip daddr %s ", p->host_ip);
                fprintf(f, "%s dport %u dnat to %s:%u\n", p->protocol, p->host_port, ports[i].address,
                        p->container_port);
        }
}

/* nft names the priority -100 "dstnat" in prerouting only. */
static void rules_nat_chain(FILE *f, const char *hook, const char *priority, const RulesPort *ports,
                            size_t n_ports) {
        fprintf(f, "\tchain %s {\n\t\ttype nat hook %s priority %s; policy accept;\n", hook, hook, priority);
        rules_dnat(f, ports, n_ports);
        fprintf(f, "\t}\n");
}

int rules_build(const RulesNetwork *nets, size_t n_nets, const RulesPort *ports, size_t n_ports, char **ret,
                Error **err) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return error_oom(err);

        fprintf(f, "table ip portlayer\ndelete table ip portlayer\ntable ip portlayer {\n");
        rules_nat_chain(f, "prerouting", "dstnat", ports, n_ports);
        rules_nat_chain(f, "output", "-100", ports, n_ports);
        fprintf(f, "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
        for (size_t i = 0; i < n_nets; i++) {
                fprintf(f, "\t\tip saddr %s oifname != \"%s\" masquerade\n", nets[i].subnet, nets[i].bridge);
                fprintf(f, "\t\tip saddr 127.0.0.0/8 oifname \"%s\" masquerade\n", nets[i].bridge);
        }
        fprintf(f, "\t}\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n");
        for (size_t i = 0; i < n_nets; i++) {
                fprintf(f, "\t\tiifname \"%s\" accept\n", nets[i].bridge);
                fprintf(f, "\t\toifname \"%s\" accept\n", nets[i].bridge);
        }
        fprintf(f, "\t}\n}\n");
        if (fclose(f) != 0 || !buf) {
                free(buf);
                return error_oom(err);
        }
        *ret = buf;
        return 0;
}
