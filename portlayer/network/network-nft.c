/* network-nft.c: nftables through libnftables, the one file that includes
 * it. A script runs as one transaction (nft_run_cmd_from_buffer); nft's
 * error text is kept in a buffer and handed back in the Error. */
#include "network-internal.h"

#include <errno.h>
#include <string.h>

#include <nftables/libnftables.h>

static void nft_ctx_freep(struct nft_ctx **p) {
        if (*p)
                nft_ctx_free(*p);
}

static int nft_open(struct nft_ctx **ret, Error **err) {
        struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
        if (!ctx)
                return error_oom(err);
        if (nft_ctx_buffer_output(ctx) < 0 || nft_ctx_buffer_error(ctx) < 0) {
                nft_ctx_free(ctx);
                return error_oom(err);
        }
        *ret = ctx;
        return 0;
}

/* nft's message without its trailing newlines, bounded. */
static int nft_failed(struct nft_ctx *ctx, const char *what, Error **err) {
        const char *msg = nft_ctx_get_error_buffer(ctx);
        size_t len = msg ? strlen(msg) : 0;
        while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
                len--;
        int code = len && strstr(msg, "No such file") ? ENOENT : EINVAL;
        return error_set(err, code, "nft %s: %.*s", what, (int) MIN(len, 2000), len ? msg : "failed");
}

int nft_apply(const char *script, Error **err) {
        _cleanup_(nft_ctx_freep) struct nft_ctx *ctx = NULL;
        int r = nft_open(&ctx, err);
        if (r < 0)
                return r;
        if (nft_run_cmd_from_buffer(ctx, script) != 0)
                return nft_failed(ctx, "apply table ip portlayer", err);
        return 0;
}

int nft_list_table(char **ret, Error **err) {
        _cleanup_(nft_ctx_freep) struct nft_ctx *ctx = NULL;
        int r = nft_open(&ctx, err);
        if (r < 0)
                return r;
        if (nft_run_cmd_from_buffer(ctx, "list table ip portlayer") != 0)
                return nft_failed(ctx, "list table ip portlayer", err);
        char *s = strdup(nft_ctx_get_output_buffer(ctx) ?: "");
        if (!s)
                return error_oom(err);
        *ret = s;
        return 0;
}
