/* api-host.c: the host's own calls (docs/api.md, "Host"): the VMs behind
 * the containers, and the orphans gc finds and removes. */
#include "api-internal.h"

int api_vms_list(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        json_t *out = NULL;
        int r = container_host_vms(a->host, &out, err);
        return r < 0 ? r : api_reply_json(resp, 200, out);
}

int api_gc_list(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        json_t *out = NULL;
        int r = container_host_gc(a->host, false, &out, err);
        return r < 0 ? r : api_reply_json(resp, 200, out);
}

int api_gc_run(Api *a, HttpRequest *req, char **p, HttpResponse *resp, Error **err) {
        json_t *out = NULL;
        int r = container_host_gc(a->host, true, &out, err);
        return r < 0 ? r : api_reply_json(resp, 200, out);
}
