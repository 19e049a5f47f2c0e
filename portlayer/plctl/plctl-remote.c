/* plctl-remote.c: remote daemons and the daemon's trust list
 * (docs/plctl.md, "Remote access").
 *
 * `remote add|ls|rm` keep, under $XDG_CONFIG_HOME/portlayer (or
 * ~/.config/portlayer; 0700): our client identity (client.key 0600,
 * client.crt, made on first use: EC P-256, self-signed, 10 years) and one
 * directory per remote, remotes/NAME/ holding its URL and the server
 * certificate seen when it was added (pinned: later connections accept
 * that certificate only). `trust add|ls|rm` edit the daemon's trust list
 * through its API, which serves them on the Unix socket only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/fs-util.h"
#include "common/base/io-util.h"
#include "common/json/json-util.h"
#include "common/tls/tls-util.h"
#include "plctl-internal.h"
#include "portlayer/plctl/plctl-tls.h"

#define CLIENT_DAYS (10 * 365)
#define URL_MAX 1024

/* --- the configuration directory --- */

static int config_dir(char **ret, Error **err) {
        const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
        int k = xdg && *xdg == '/' ? asprintf(ret, "%s/portlayer", xdg)
                : home && *home   ? asprintf(ret, "%s/.config/portlayer", home)
                                  : (errno = ENOENT, -1);
        if (k < 0)
                return error_set(err, errno == ENOENT ? ENOENT : ENOMEM,
                                 "no configuration directory: set XDG_CONFIG_HOME or HOME");
        return 0;
}

/* dir/name, or NULL when out of memory. */
static char *path_join(const char *dir, const char *name) {
        char *p = NULL;
        return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

typedef struct RemoteFiles {
        char *dir, *cert, *key, *remote_dir, *url_file, *server_cert;
} RemoteFiles;

static void remote_files_clear(RemoteFiles *f) {
        char **all[] = {&f->dir, &f->cert, &f->key, &f->remote_dir, &f->url_file, &f->server_cert};
        for (size_t i = 0; i < ELEMENTSOF(all); i++)
                *all[i] = mfree(*all[i]);
}

/* The paths of our identity and, when name is given, of that remote. */
static int remote_files(const char *name, RemoteFiles *f, Error **err) {
        *f = (RemoteFiles){0};
        if (name && !tls_name_valid(name))
                return error_set(err, EINVAL, "remote name '%.80s': use 1-64 of A-Z a-z 0-9 _ . @ -", name);
        int r = config_dir(&f->dir, err);
        if (r < 0)
                return r;
        if (!(f->cert = path_join(f->dir, "client.crt")) || !(f->key = path_join(f->dir, "client.key")))
                return error_oom(err);
        if (name && (asprintf(&f->remote_dir, "%s/remotes/%s", f->dir, name) < 0 ||
                     !(f->url_file = path_join(f->remote_dir, "url")) ||
                     !(f->server_cert = path_join(f->remote_dir, "server.crt"))))
                return error_oom(err);
        return 0;
}

/* Our client identity, made on first use; its CN is user@host. */
static int client_identity(const RemoteFiles *f, Error **err) {
        int r = mkdir_p(f->dir, 0700);
        if (r < 0)
                return error_set_errno(err, -r, "create %s", f->dir);
        char host[64] = "host", cn[TLS_NAME_MAX + 1];
        const char *user = getenv("USER");
        (void) gethostname(host, sizeof host - 1);
        snprintf(cn, sizeof cn, "%.20s@%.40s", user && *user ? user : "plctl", host);
        for (char *c = cn; *c; c++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-", *c))
                        *c = '_';
        r = tls_identity_ensure(f->key, f->cert, cn, -3600, (int64_t) CLIENT_DAYS * 86400, err);
        return r < 0 ? error_prefix(err, "client certificate") : 0;
}

int plctl_remote_load(const char *name, PlctlRemote *ret, char **ret_strings, Error **err) {
        _cleanup_(remote_files_clear) RemoteFiles f;
        int r = remote_files(name, &f, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *url = NULL;
        size_t len = 0;
        if ((r = read_file_bounded(f.url_file, URL_MAX, &url, &len)) < 0)
                return r == -ENOENT ? error_set(err, ENOENT, "no remote named '%s' (see plctl remote ls)", name)
                                    : error_set_errno(err, -r, "read %s", f.url_file);
        url[strcspn(url, "\n")] = 0;
        ret_strings[0] = strdup(name);
        ret_strings[1] = TAKE_PTR(url);
        ret_strings[2] = TAKE_PTR(f.cert);
        ret_strings[3] = TAKE_PTR(f.key);
        ret_strings[4] = TAKE_PTR(f.server_cert);
        for (size_t i = 0; i < 5; i++)
                if (!ret_strings[i])
                        return error_oom(err);
        *ret = (PlctlRemote){.name = ret_strings[0], .url = ret_strings[1], .client_cert = ret_strings[2],
                             .client_key = ret_strings[3], .server_cert = ret_strings[4]};
        return 0;
}

/* --- remote add --- */

/* The user's yes to fp, on a terminal; or the fingerprint they gave. */
static int confirm(const char *url, const char *fp, const char *accept, Error **err) {
        char want[TLS_FINGERPRINT_HEX + 1];
        if (accept) {
                if (tls_fingerprint_parse(accept, want) < 0)
                        return error_set(err, EINVAL, "--accept-fingerprint: not a SHA-256 fingerprint: %s", accept);
                if (strcmp(want, fp) != 0)
                        return error_set(err, EKEYREJECTED, "%s presented certificate %s, not %s: not added", url, fp,
                                         want);
                return 0;
        }
        if (!isatty(STDIN_FILENO))
                return error_set(err, EINVAL, "%s presents certificate %s; not on a terminal to ask: give "
                                              "--accept-fingerprint after checking it on the server "
                                              "(openssl x509 -noout -fingerprint -sha256 -in <state>/tls/server.crt)",
                                 url, fp);
        fprintf(stderr, "%s presents the certificate\n  SHA-256 %s\nIs this the server's (plctl trust ls prints it "
                        "on the server too)? [y/N] ", url, fp);
        char line[16] = "";
        if (!fgets(line, sizeof line, stdin) || (line[0] != 'y' && line[0] != 'Y'))
                return error_set(err, ECANCELED, "not added");
        return 0;
}

static int remote_add(Plctl *p, int n, char **args, const char *accept) {
        if (n != 3)
                return plctl_usage("remote add: name a remote and its https://HOST:PORT");
        _cleanup_error_ Error *e = NULL;
        _cleanup_(remote_files_clear) RemoteFiles f;
        _cleanup_free_ char *host = NULL, *port = NULL, *pem = NULL;
        char fp[TLS_FINGERPRINT_HEX + 1], client_fp[TLS_FINGERPRINT_HEX + 1];
        if (remote_files(args[1], &f, &e) < 0 || plctl_url_split(args[2], &host, &port, &e) < 0)
                return plctl_fail(e);
        if (access(f.remote_dir, F_OK) == 0) {
                error_set(&e, EEXIST, "a remote named '%s' exists (plctl remote rm %s first)", args[1], args[1]);
                return plctl_fail(e);
        }
        if (client_identity(&f, &e) < 0 || plctl_tls_fetch_server_cert(args[2], f.cert, f.key, &pem, &e) < 0 ||
            tls_cert_parse_pem(pem, strlen(pem), NULL, fp, &e) < 0 || tls_cert_load(f.cert, NULL, client_fp, &e) < 0 ||
            confirm(args[2], fp, accept, &e) < 0)
                return plctl_fail(e);
        int r = mkdir_p(f.remote_dir, 0700);
        _cleanup_free_ char *url = NULL;
        if (r >= 0 && asprintf(&url, "%s\n", args[2]) < 0)
                r = -ENOMEM;
        if (r >= 0 && (r = write_file_atomic(f.server_cert, pem, strlen(pem), 0600)) >= 0)
                r = write_file_atomic(f.url_file, url, strlen(url), 0600);
        if (r < 0) {
                (void) rm_rf(f.remote_dir);
                error_set_errno(&e, -r, "store the remote in %s", f.remote_dir);
                return plctl_fail(e);
        }
        if (p->json) {
                _cleanup_json_ json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", args[1], "url", args[2],
                                                     "server_fingerprint", fp, "client_certificate", f.cert,
                                                     "client_fingerprint", client_fp);
                plctl_print_json(j);
        } else
                printf("added remote %s (%s)\nThis client's certificate is %s (SHA-256 %s).\n"
                       "On the server, trust it with: plctl trust add client.crt --name NAME\n",
                       args[1], args[2], f.cert, client_fp);
        return 0;
}

static int remote_ls(Plctl *p, int n) {
        if (n != 1)
                return plctl_usage("remote ls: takes no arguments");
        _cleanup_error_ Error *e = NULL;
        _cleanup_(remote_files_clear) RemoteFiles f;
        _cleanup_free_ char *dir = NULL;
        _cleanup_json_ json_t *out = json_array();
        if (remote_files(NULL, &f, &e) < 0 || !out || !(dir = path_join(f.dir, "remotes")))
                return e ? plctl_fail(e) : (error_oom(&e), plctl_fail(e));
        _cleanup_closedir_ DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                PlctlRemote rm;
                char *strings[5] = {0};
                char fp[TLS_FINGERPRINT_HEX + 1] = "";
                if (de->d_name[0] == '.' || plctl_remote_load(de->d_name, &rm, strings, NULL) < 0) {
                        for (size_t i = 0; i < 5; i++)
                                free(strings[i]);
                        continue;
                }
                (void) tls_cert_load(rm.server_cert, NULL, fp, NULL);
                json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "name", rm.name, "url", rm.url,
                                                     "server_fingerprint", fp));
                for (size_t i = 0; i < 5; i++)
                        free(strings[i]);
        }
        if (p->json) {
                plctl_print_json(out);
                return 0;
        }
        printf("%-16s  %-32s  %s\n", "NAME", "URL", "SERVER SHA-256");
        size_t i;
        json_t *j;
        json_array_foreach(out, i, j)
                printf("%-16s  %-32s  %s\n", plctl_str(j, "name"), plctl_str(j, "url"), plctl_str(j, "server_fingerprint"));
        return 0;
}

static int remote_rm(Plctl *p, int n, char **args) {
        if (n != 2)
                return plctl_usage("remote rm: name one remote");
        _cleanup_error_ Error *e = NULL;
        _cleanup_(remote_files_clear) RemoteFiles f;
        if (remote_files(args[1], &f, &e) < 0)
                return plctl_fail(e);
        if (access(f.url_file, F_OK) < 0) {
                error_set(&e, ENOENT, "no remote named '%s'", args[1]);
                return plctl_fail(e);
        }
        int r = rm_rf(f.remote_dir);
        if (r < 0) {
                error_set_errno(&e, -r, "remove %s", f.remote_dir);
                return plctl_fail(e);
        }
        if (p->json) {
                _cleanup_json_ json_t *j = json_pack("{s:s}", "removed", args[1]);
                plctl_print_json(j);
        } else
                printf("%s\n", args[1]);
        return 0;
}

int plctl_verb_remote(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        char *args[argc + 1];
        const char *accept = NULL;
        int n = 0;
        for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], "--accept-fingerprint") == 0 && i + 1 < argc)
                        accept = argv[++i];
                else
                        args[n++] = argv[i];
        int r = plctl_group_args(p, "remote", &n, args);
        if (r >= 0)
                return r;
        if (strcmp(args[0], "add") == 0)
                return remote_add(p, n, args, accept);
        if (accept)
                return plctl_usage("remote %s: --accept-fingerprint is for remote add", args[0]);
        if (strcmp(args[0], "ls") == 0)
                return remote_ls(p, n);
        if (strcmp(args[0], "rm") == 0)
                return remote_rm(p, n, args);
        return plctl_usage("remote: unknown command: %s", args[0]);
}

/* --- trust --- */

static int trust_add(Plctl *p, PlctlClient *c, int n, char **args, const char *name) {
        if (n != 2)
                return plctl_usage("trust add: name one certificate file (PEM)");
        _cleanup_error_ Error *e = NULL;
        _cleanup_free_ char *pem = NULL;
        _cleanup_json_ json_t *res = NULL;
        size_t len = 0;
        int r = read_file_bounded(args[1], TLS_CERT_PEM_MAX, &pem, &len);
        if (r < 0) {
                error_set_errno(&e, -r, "read %s", args[1]);
                return plctl_fail(e);
        }
        _cleanup_json_ json_t *body = json_pack("{s:s}", "certificate", pem);
        if (body && name)
                json_object_set_new(body, "name", json_string(name));
        if (!body) {
                error_set(&e, EINVAL, "%s: not a text certificate", args[1]);
                return plctl_fail(e);
        }
        if (plctl_call(c, "POST", "/trust", body, &res, &e) < 0)
                return plctl_fail(e);
        if (p->json)
                plctl_print_json(res);
        else
                printf("trusted %s %s\n", plctl_str(res, "name"), plctl_str(res, "fingerprint"));
        return 0;
}

static int trust_ls(Plctl *p, PlctlClient *c, int n) {
        if (n != 1)
                return plctl_usage("trust ls: takes no arguments");
        _cleanup_error_ Error *e = NULL;
        _cleanup_json_ json_t *list = NULL;
        if (plctl_call(c, "GET", "/trust", NULL, &list, &e) < 0)
                return plctl_fail(e);
        if (p->json) {
                plctl_print_json(list);
                return 0;
        }
        printf("%-24s  %s\n", "NAME", "SHA-256");
        size_t i;
        json_t *j;
        json_array_foreach(list, i, j)
                printf("%-24s  %s\n", plctl_str(j, "name"), plctl_str(j, "fingerprint"));
        return 0;
}

static int trust_rm(Plctl *p, PlctlClient *c, int n, char **args) {
        if (n != 2)
                return plctl_usage("trust rm: name one fingerprint or name");
        _cleanup_error_ Error *e = NULL;
        _cleanup_json_ json_t *res = NULL;
        _cleanup_free_ char *path = plctl_path("/trust/%s", args[1]);
        if (!path)
                return error_oom(&e), plctl_fail(e);
        if (plctl_call(c, "DELETE", path, NULL, &res, &e) < 0)
                return plctl_fail(e);
        if (p->json)
                plctl_print_json(res);
        else
                printf("removed %s %s\n", plctl_str(res, "name"), plctl_str(res, "fingerprint"));
        return 0;
}

int plctl_verb_trust(int argc, char *argv[], void *userdata) {
        Plctl *p = userdata;
        char *args[argc + 1];
        const char *name = NULL;
        int n = 0;
        for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
                        name = argv[++i];
                else
                        args[n++] = argv[i];
        int r = plctl_group_args(p, "trust", &n, args);
        if (r >= 0)
                return r;
        if (name && strcmp(args[0], "add") != 0)
                return plctl_usage("trust %s: --name is for trust add", args[0]);
        if (strcmp(args[0], "add") && strcmp(args[0], "ls") && strcmp(args[0], "rm"))
                return plctl_usage("trust: unknown command: %s", args[0]);
        _cleanup_error_ Error *e = NULL;
        PlctlClient *c;
        if (plctl_connect(p, &c, &e) < 0)
                return plctl_fail(e);
        if (strcmp(args[0], "add") == 0)
                return trust_add(p, c, n, args, name);
        if (strcmp(args[0], "ls") == 0)
                return trust_ls(p, c, n);
        return trust_rm(p, c, n, args);
}
