/* registry-blobs.c: blobs of one repository streamed into an ImageBlobSink,
 * several at once.
 *
 * One fetch runs on the caller's thread, which drives a curl multi handle:
 * at most max_parallel transfers are in it at a time (they share its
 * connection cache, so blobs from one registry reuse connections). A
 * transfer that ends with a transient failure waits out its backoff (or the
 * server's Retry-After) outside the multi handle and starts again after
 * sink->restart(); a 401 is answered (token or basic auth, see
 * registry-auth.c) once per transfer, blocking this thread briefly. The
 * first hard failure, a sink error included, stops every other transfer and
 * is returned.
 *
 * Registries redirect blob GETs to storage hosts; curl follows (at most
 * REG_MAX_REDIRECTS) and, with CURLOPT_UNRESTRICTED_AUTH off, sends neither
 * the bearer header nor basic credentials to a host other than the
 * registry's. */
#include "registry-internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/base/io-util.h"
#include "images/oci/digest.h"

typedef enum BlobState {
        BLOB_PENDING, /* not started */
        BLOB_ACTIVE,  /* in the multi handle */
        BLOB_WAITING, /* between attempts, until not_before */
        BLOB_DONE,
} BlobState;

typedef struct BlobFetch {
        RegistryClient *c;
        CURLM *multi;
        RegTransfer *t;
        BlobState *state;
        size_t n, n_active, n_done;
        ImageBlobSink *sink;
} BlobFetch;

static int blob_start(BlobFetch *f, size_t i, Error **err) {
        RegTransfer *t = &f->t[i];
        if (!t->easy) {
                /* Handles are taken when a transfer first starts and given
                 * back when it is done, so a 100-layer image holds at most
                 * max_parallel of them. */
                t->easy = reg_easy_get(f->c);
                if (!t->easy || reg_transfer_setup(t, NULL, t->max, false) < 0)
                        return error_set(err, ENOMEM, "GET %s: cannot set up the request", t->url);
        }
        if (f->state[i] == BLOB_WAITING) {
                /* A new attempt: the sink forgets the bytes of the last one. */
                int r = f->sink->restart(f->sink, i, err);
                if (r < 0)
                        return r;
        }
        int r = reg_transfer_reset_attempt(t);
        if (r < 0)
                return error_set(err, -r, "GET %s: cannot prepare the request", t->url);
        if (curl_multi_add_handle(f->multi, t->easy) != CURLM_OK)
                return error_set(err, ENOMEM, "GET %s: cannot start the transfer", t->url);
        f->state[i] = BLOB_ACTIVE;
        f->n_active++;
        return 0;
}

/* Starts what may start now; returns the ms until a waiting transfer is due
 * (or 1000) through *ret_wait_ms. */
static int blobs_start_ready(BlobFetch *f, int *ret_wait_ms, Error **err) {
        uint64_t now = now_usec(), next = now + 1000 * USEC_PER_MSEC;
        for (size_t i = 0; i < f->n && f->n_active < f->c->max_parallel; i++) {
                if (f->state[i] == BLOB_WAITING && f->t[i].not_before > now) {
                        next = MIN(next, f->t[i].not_before);
                        continue;
                }
                if (f->state[i] != BLOB_PENDING && f->state[i] != BLOB_WAITING)
                        continue;
                int r = blob_start(f, i, err);
                if (r < 0)
                        return r;
        }
        *ret_wait_ms = (int) ((next - MIN(next, now) + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
        return 0;
}

/* Judges every transfer that finished. Returns 0 or the first failure. */
static int blobs_collect(BlobFetch *f, Error **err) {
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(f->multi, &left))) {
                if (msg->msg != CURLMSG_DONE)
                        continue;
                CURL *easy = msg->easy_handle;
                CURLcode rc = msg->data.result;
                RegTransfer *t = NULL;
                curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &t);
                curl_multi_remove_handle(f->multi, easy);
                size_t i = (size_t) (t - f->t);
                f->n_active--;
                int r;
                switch (reg_transfer_outcome(t, rc, &r, err)) {
                case REG_OUTCOME_DONE:
                        f->state[i] = BLOB_DONE;
                        f->n_done++;
                        reg_easy_put(f->c, t->easy);
                        t->easy = NULL;
                        break;
                case REG_OUTCOME_RETRY:
                        t->not_before = now_usec() + (uint64_t) reg_retry_delay_ms(t) * USEC_PER_MSEC;
                        t->attempt++;
                        f->state[i] = BLOB_WAITING;
                        break;
                case REG_OUTCOME_AUTH:
                        r = reg_auth_answer(t, err);
                        if (r < 0)
                                return r;
                        t->auth_answered = true;
                        t->not_before = 0;
                        f->state[i] = BLOB_WAITING;
                        break;
                case REG_OUTCOME_FAIL:
                        return r;
                }
        }
        return 0;
}

static int blobs_run(BlobFetch *f, Error **err) {
        while (f->n_done < f->n) {
                int wait_ms, running, r;
                r = blobs_start_ready(f, &wait_ms, err);
                if (r < 0)
                        return r;
                CURLMcode mc = curl_multi_perform(f->multi, &running);
                if (mc != CURLM_OK)
                        return error_set(err, mc == CURLM_OUT_OF_MEMORY ? ENOMEM : EIO, "blob transfers: %s",
                                         curl_multi_strerror(mc));
                r = blobs_collect(f, err);
                if (r < 0)
                        return r;
                if (f->n_done == f->n)
                        break;
                if (f->n_active == 0 && wait_ms > 0) {
                        /* Only backoffs pending: sleep in poll without fds. */
                        mc = curl_multi_poll(f->multi, NULL, 0, wait_ms, NULL);
                } else if (running > 0) {
                        mc = curl_multi_poll(f->multi, NULL, 0, MIN(wait_ms, 1000), NULL);
                }
                if (mc != CURLM_OK)
                        return error_set(err, EIO, "blob transfers: %s", curl_multi_strerror(mc));
        }
        return 0;
}

static int blobs_prepare(BlobFetch *f, const OciRef *ref, const OciDescriptor *descs, const char *scope,
                         Error **err) {
        _cleanup_free_ char *base = NULL;
        if (reg_base_url(f->c, ref, &base) < 0)
                return error_oom(err);
        for (size_t i = 0; i < f->n; i++) {
                RegTransfer *t = &f->t[i];
                *t = (RegTransfer){.c = f->c, .registry = ref->registry, .scope = scope, .sink = f->sink, .index = i};
                if (asprintf(&t->url, "%s/v2/%s/blobs/%s", base, ref->repository, descs[i].digest) < 0) {
                        t->url = NULL;
                        return error_oom(err);
                }
                /* Size 0 means "no limit" to curl's Content-Length check:
                 * the sink alone bounds empty blobs. */
                t->max = (size_t) descs[i].size;
        }
        return 0;
}

int registry_fetch_blobs(RegistryClient *c, const OciRef *ref, const OciDescriptor *descs, size_t n,
                         ImageBlobSink *sink, Error **err) {
        if (n == 0)
                return 0;
        if (!sink || !sink->write || !sink->restart)
                return error_set(err, EINVAL, "fetch blobs: no sink");
        for (size_t i = 0; i < n; i++) {
                if (!descs[i].digest || digest_parse_check(descs[i].digest) < 0)
                        return error_set(err, EINVAL, "fetch blobs: descriptor %zu has a malformed digest", i);
                if (descs[i].size > OCI_BLOB_SIZE_MAX)
                        return error_set(err, EFBIG, "fetch blobs: blob %s is larger than %llu bytes",
                                         descs[i].digest, (unsigned long long) OCI_BLOB_SIZE_MAX);
        }
        _cleanup_free_ char *scope = NULL;
        if (reg_scope(ref, &scope) < 0)
                return error_oom(err);

        BlobFetch f = {.c = c, .n = n, .sink = sink};
        f.t = calloc(n, sizeof *f.t);
        f.state = calloc(n, sizeof *f.state);
        f.multi = curl_multi_init();
        int r;
        if (!f.t || !f.state || !f.multi)
                r = error_oom(err);
        else
                r = blobs_prepare(&f, ref, descs, scope, err);
        if (r >= 0)
                r = blobs_run(&f, err);

        for (size_t i = 0; f.t && i < n; i++) {
                if (f.state[i] == BLOB_ACTIVE)
                        curl_multi_remove_handle(f.multi, f.t[i].easy);
                if (f.t[i].c)
                        reg_transfer_done(&f.t[i]);
        }
        if (f.multi)
                curl_multi_cleanup(f.multi);
        free(f.t);
        free(f.state);
        return r;
}
