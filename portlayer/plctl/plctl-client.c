/* plctl-client.c: plctl's REST client (plctl-client.h), libcurl on the
 * daemon's Unix socket or over TLS to a remote. The only file of plctl
 * that includes curl.
 *
 * One easy handle per call: plctl makes a handful of calls per run, and a
 * fresh handle keeps the streamed calls (logs, events, pull) and the short
 * ones (a resize during an exec) independent. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/json/json-util.h"
#include "portlayer/plctl/plctl-client.h"

#define ERROR_BODY_MAX (64 * 1024)
#define LINE_MAX_BYTES (1024 * 1024)
#define BODY_MAX (256 * 1024 * 1024)

struct PlctlClient {
        char *socket_path;
        PlctlRemote remote; /* remote.url NULL: the socket */
        char *strings[5];   /* remote's copies */
};

typedef enum SinkKind { SINK_BUFFER, SINK_LINES, SINK_FD } SinkKind;

typedef struct Transfer {
        CURL *curl;
        SinkKind kind;
        char *buf; /* the body (SINK_BUFFER), the partial line (SINK_LINES) */
        size_t len;
        PlctlLineFn on_line;
        void *userdata;
        int fd;
        int sink_error; /* negative errno that stopped the transfer */
        Error *sink_err;
        char *err_body; /* the answer's body when it is a refusal */
        size_t err_len;
        int upload_fd;
} Transfer;

static void curl_init_once(void) {
        static bool done;
        if (!done) {
                curl_global_init(CURL_GLOBAL_DEFAULT);
                done = true;
        }
}

static int remote_copy(PlctlClient *c, const PlctlRemote *rm) {
        const char *from[] = {rm->name, rm->url, rm->client_cert, rm->client_key, rm->server_cert};
        const char **to[] = {&c->remote.name, &c->remote.url, &c->remote.client_cert, &c->remote.client_key,
                             &c->remote.server_cert};
        for (size_t i = 0; i < ELEMENTSOF(from); i++)
                if (!(*to[i] = c->strings[i] = strdup(from[i])))
                        return -ENOMEM;
        return 0;
}

int plctl_client_new(const char *socket_path, const PlctlRemote *remote, PlctlClient **ret, Error **err) {
        const char *path = socket_path ? socket_path : getenv("PORTLAYER_SOCKET");
        if (!path || !*path)
                path = PLCTL_DEFAULT_SOCKET;
        PlctlClient *c = calloc(1, sizeof *c);
        if (!c || !(c->socket_path = strdup(path)) || (remote && remote_copy(c, remote) < 0)) {
                plctl_client_free(c);
                return error_oom(err);
        }
        curl_init_once();
        *ret = c;
        return 0;
}

PlctlClient *plctl_client_free(PlctlClient *c) {
        if (c) {
                free(c->socket_path);
                for (size_t i = 0; i < ELEMENTSOF(c->strings); i++)
                        free(c->strings[i]);
                free(c);
        }
        return NULL;
}

const char *plctl_client_target(const PlctlClient *c) {
        return c->remote.url ? c->remote.url : c->socket_path;
}

const PlctlRemote *plctl_client_remote(const PlctlClient *c) {
        return c->remote.url ? &c->remote : NULL;
}

/* Where a request goes: the Unix socket, or the remote with our client
 * certificate and its pinned one (the only trust anchor; the name in it is
 * not checked, the pin is the check). */
static void curl_target(CURL *curl, const PlctlClient *c, const char *path, char *url, size_t size) {
        if (!c->remote.url) {
                curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
                snprintf(url, size, "http://portlayer%s", path);
        } else {
                snprintf(url, size, "%s%s", c->remote.url, path);
                curl_easy_setopt(curl, CURLOPT_SSLCERT, c->remote.client_cert);
                curl_easy_setopt(curl, CURLOPT_SSLKEY, c->remote.client_key);
                curl_easy_setopt(curl, CURLOPT_CAINFO, c->remote.server_cert);
                curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
                curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
                curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        curl_easy_setopt(curl, CURLOPT_URL, url);
}

char *plctl_escape(const char *s) {
        char *e = curl_easy_escape(NULL, s, 0);
        char *copy = e ? strdup(e) : NULL;
        curl_free(e);
        return copy;
}

static int append(char **buf, size_t *len, const char *p, size_t n, size_t max) {
        if (*len + n > max)
                return -EFBIG;
        char *nb = realloc(*buf, *len + n + 1);
        if (!nb)
                return -ENOMEM;
        memcpy(nb + *len, p, n);
        *len += n;
        nb[*len] = 0;
        *buf = nb;
        return 0;
}

/* Hands every complete line in t->buf to on_line and keeps the rest. */
static int lines_flush(Transfer *t, bool last) {
        size_t start = 0;
        for (;;) {
                char *nl = t->buf ? memchr(t->buf + start, '\n', t->len - start) : NULL;
                if (!nl && !(last && start < t->len))
                        break;
                size_t end = nl ? (size_t) (nl - t->buf) : t->len;
                t->buf[end] = 0;
                int r = end > start ? t->on_line(t->buf + start, end - start, t->userdata, &t->sink_err) : 0;
                if (r < 0)
                        return r;
                start = nl ? end + 1 : t->len;
        }
        if (start > 0) {
                memmove(t->buf, t->buf + start, t->len - start);
                t->len -= start;
        }
        return t->len > LINE_MAX_BYTES ? -EFBIG : 0;
}

static size_t on_data(char *p, size_t size, size_t n, void *userdata) {
        Transfer *t = userdata;
        size_t total = size * n;
        long status = 0;
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
        int r = 0;
        if (status >= 300)
                r = t->err_len >= ERROR_BODY_MAX ? 0 : append(&t->err_body, &t->err_len, p, MIN(total, ERROR_BODY_MAX - t->err_len), ERROR_BODY_MAX);
        else if (t->kind == SINK_BUFFER)
                r = append(&t->buf, &t->len, p, total, BODY_MAX);
        else if (t->kind == SINK_LINES) {
                r = append(&t->buf, &t->len, p, total, 2 * LINE_MAX_BYTES);
                if (r >= 0)
                        r = lines_flush(t, false);
        } else
                r = write_all(t->fd, p, total);
        if (r < 0) {
                t->sink_error = r;
                return total == 0 ? 1 : 0; /* anything but total aborts */
        }
        return total;
}

static size_t on_read(char *p, size_t size, size_t n, void *userdata) {
        Transfer *t = userdata;
        ssize_t k;
        do
                k = read(t->upload_fd, p, size * n);
        while (k < 0 && errno == EINTR);
        if (k < 0) {
                t->sink_error = negative_errno();
                return CURL_READFUNC_ABORT;
        }
        return (size_t) k;
}

/* The API's errno-to-status table, backwards. */
static int status_to_errno(long status) {
        switch (status) {
        case 400: return EINVAL;
        case 404: return ENOENT;
        case 409: return EBUSY;
        case 413: return EFBIG;
        case 502: return ECONNREFUSED;
        case 504: return ETIMEDOUT;
        default: return EIO;
        }
}

static int refusal(Transfer *t, long status, Error **err) {
        _cleanup_json_ json_t *j = t->err_body ? json_loads(t->err_body, 0, NULL) : NULL;
        const char *msg = json_string_value(json_object_get(j, "message"));
        if (msg)
                return error_set(err, status_to_errno(status), "%s", msg);
        return error_set(err, status_to_errno(status), "the daemon answered HTTP %ld", status);
}

static int transfer_run(PlctlClient *c, const char *method, const char *path, json_t *body, Transfer *t,
                        Error **err) {
        _cleanup_free_ char *json = body ? json_dumps(body, JSON_COMPACT) : NULL;
        if (body && !json)
                return error_oom(err);
        t->curl = curl_easy_init();
        if (!t->curl)
                return error_oom(err);
        char url[8192];
        curl_target(t->curl, c, path, url, sizeof url);
        struct curl_slist *h = curl_slist_append(NULL, "Expect:");
        if (json)
                h = curl_slist_append(h, "Content-Type: application/json");
        if (t->upload_fd >= 0)
                h = curl_slist_append(h, "Content-Type: application/x-tar");
        curl_easy_setopt(t->curl, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
        curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, t);
        if (json) {
                curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, json);
                curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(json));
        } else if (t->upload_fd >= 0) {
                struct stat st;
                off_t pos = lseek(t->upload_fd, 0, SEEK_CUR);
                curl_easy_setopt(t->curl, CURLOPT_UPLOAD, 1L);
                curl_easy_setopt(t->curl, CURLOPT_READFUNCTION, on_read);
                curl_easy_setopt(t->curl, CURLOPT_READDATA, t);
                if (fstat(t->upload_fd, &st) == 0 && S_ISREG(st.st_mode) && pos >= 0)
                        curl_easy_setopt(t->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t) (st.st_size - pos));
        }
        CURLcode cc = curl_easy_perform(t->curl);
        curl_slist_free_all(h);
        long status = 0;
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(t->curl);
        t->curl = NULL;

        if (t->sink_err) {
                int code = t->sink_err->code;
                int r = error_set(err, code, "%s", error_text(t->sink_err));
                error_free(t->sink_err);
                return r;
        }
        if (t->sink_error < 0)
                return error_set_errno(err, -t->sink_error, "%s %s", method, path);
        if (c->remote.url && cc == CURLE_PEER_FAILED_VERIFICATION)
                return error_set(err, EKEYREJECTED,
                                 "%s presented a certificate other than the one pinned for remote %s (if the "
                                 "server's was replaced: plctl remote rm, then remote add)",
                                 c->remote.url, c->remote.name);
        if (c->remote.url && status == 0 && cc != CURLE_COULDNT_CONNECT && cc != CURLE_OPERATION_TIMEDOUT &&
            cc != CURLE_COULDNT_RESOLVE_HOST)
                return error_set(err, EACCES,
                                 "%s refused this client (%s): is its certificate in the daemon's trust list? "
                                 "(plctl trust add on the server)",
                                 c->remote.url, curl_easy_strerror(cc));
        if (cc == CURLE_COULDNT_CONNECT || (cc != CURLE_OK && status == 0))
                return error_set(err, ECONNREFUSED, "cannot reach portlayerd at %s: %s (is it running? see %s)",
                                 plctl_client_target(c), curl_easy_strerror(cc),
                                 c->remote.url ? "plctl remote ls, plctl trust ls on the server" : "--socket");
        if (status >= 300)
                return refusal(t, status, err);
        if (cc != CURLE_OK)
                return error_set(err, EIO, "%s %s: %s", method, path, curl_easy_strerror(cc));
        if (t->kind == SINK_LINES) {
                int r = lines_flush(t, true);
                if (r < 0)
                        return t->sink_err ? error_set(err, r, "%s", error_text(t->sink_err))
                                           : error_set_errno(err, -r, "%s %s", method, path);
        }
        return (int) status;
}

static void transfer_done(Transfer *t) {
        free(t->buf);
        free(t->err_body);
        error_free(t->sink_err);
        t->sink_err = NULL;
}

/* The buffered answer as JSON into *ret (NULL for an empty body). */
static int transfer_json(Transfer *t, int r, const char *method, const char *path, json_t **ret, Error **err) {
        if (r >= 0 && ret) {
                *ret = NULL;
                if (t->len > 0 && !(*ret = json_loadb(t->buf, t->len, 0, NULL)))
                        r = error_set(err, EBADMSG, "%s %s: the daemon's answer is not JSON", method, path);
        }
        transfer_done(t);
        return r;
}

int plctl_call(PlctlClient *c, const char *method, const char *path, json_t *body, json_t **ret, Error **err) {
        Transfer t = {.kind = SINK_BUFFER, .fd = -1, .upload_fd = -1};
        int r = transfer_run(c, method, path, body, &t, err);
        return transfer_json(&t, r, method, path, ret, err);
}

int plctl_stream_lines(PlctlClient *c, const char *method, const char *path, json_t *body, PlctlLineFn on_line,
                       void *userdata, Error **err) {
        Transfer t = {.kind = SINK_LINES, .on_line = on_line, .userdata = userdata, .fd = -1, .upload_fd = -1};
        int r = transfer_run(c, method, path, body, &t, err);
        transfer_done(&t);
        return r;
}

int plctl_download(PlctlClient *c, const char *path, int fd, Error **err) {
        Transfer t = {.kind = SINK_FD, .fd = fd, .upload_fd = -1};
        int r = transfer_run(c, "GET", path, NULL, &t, err);
        transfer_done(&t);
        return r;
}

int plctl_upload(PlctlClient *c, const char *method, const char *path, int fd, json_t **ret, Error **err) {
        Transfer t = {.kind = SINK_BUFFER, .fd = -1, .upload_fd = fd};
        int r = transfer_run(c, method, path, NULL, &t, err);
        return transfer_json(&t, r, method, path, ret, err);
}

bool plctl_client_ping(PlctlClient *c, long timeout_ms) {
        CURL *curl = curl_easy_init();
        if (!curl)
                return false;
        char url[8192];
        curl_target(curl, c, "/_ping", url, sizeof url);
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        long status = 0;
        if (curl_easy_perform(curl) == CURLE_OK)
                curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(curl);
        return status == 200;
}
