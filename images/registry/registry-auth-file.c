/* registry-auth-file.c: Docker-style auth files (config.json, auth.json) as a
 * credentials lookup for the registry client. See registry-auth-file.h.
 *
 * jansson parses the file, OpenSSL's EVP_DecodeBlock the base64 "auth"
 * values. Logins are kept in a small array (an auth file holds a handful);
 * lookups copy them out, so the table is read-only after parsing and safe
 * to share between threads. */
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "images/registry/registry-auth-file.h"
#include "images/registry/registry.h"

typedef struct Login {
        char *registry; /* normalised key */
        char *username;
        char *password;
} Login;

struct RegistryAuthFile {
        Login *logins;
        size_t n;
};

RegistryAuthFile *registry_auth_file_free(RegistryAuthFile *f) {
        if (!f)
                return NULL;
        for (size_t i = 0; i < f->n; i++) {
                free(f->logins[i].registry);
                if (f->logins[i].password)
                        explicit_bzero(f->logins[i].password, strlen(f->logins[i].password));
                free(f->logins[i].username);
                free(f->logins[i].password);
        }
        free(f->logins);
        free(f);
        return NULL;
}

size_t registry_auth_file_count(const RegistryAuthFile *f) {
        return f ? f->n : 0;
}

/* "https://index.docker.io/v1/" -> "docker.io"; "http://h:5000/x" -> "h:5000". */
static char *key_normalize(const char *key) {
        const char *p = key;
        if (strncasecmp(p, "https://", 8) == 0)
                p += 8;
        else if (strncasecmp(p, "http://", 7) == 0)
                p += 7;
        size_t len = strcspn(p, "/");
        if (len == 0)
                return NULL;
        char *host = strndup(p, len);
        if (!host)
                return NULL;
        static const char *const hub[] = {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"};
        for (size_t i = 0; i < ELEMENTSOF(hub); i++)
                if (strcasecmp(host, hub[i]) == 0) {
                        free(host);
                        return strdup(OCI_REF_DEFAULT_REGISTRY);
                }
        return host;
}

/* Decodes base64 "user:password" into its two halves. */
static int auth_decode(const char *b64, char **ret_user, char **ret_pass) {
        size_t in = strlen(b64);
        if (in == 0 || in % 4 != 0 || in > 4 * REGISTRY_CREDENTIAL_MAX)
                return -EBADMSG;
        _cleanup_free_ unsigned char *out = malloc(in / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        int n = EVP_DecodeBlock(out, (const unsigned char *) b64, (int) in);
        if (n < 0)
                return -EBADMSG;
        /* EVP_DecodeBlock counts padding as zero bytes. */
        if (b64[in - 1] == '=')
                n--;
        if (b64[in - 2] == '=')
                n--;
        out[n] = '\0';
        if (memchr(out, '\0', (size_t) n))
                return -EBADMSG;
        char *colon = strchr((char *) out, ':');
        if (!colon || colon == (char *) out)
                return -EBADMSG;
        *colon = '\0';
        _cleanup_free_ char *user = strdup((char *) out);
        char *pass = strdup(colon + 1);
        explicit_bzero(out, (size_t) n);
        if (!user || !pass) {
                free(pass);
                return -ENOMEM;
        }
        *ret_user = TAKE_PTR(user);
        *ret_pass = pass;
        return 0;
}

static int entry_parse(const char *key, json_t *v, Login *ret, Error **err) {
        if (!json_is_object(v))
                return error_set(err, -EBADMSG, "auth file: entry '%.64s' is not an object", key);
        json_t *auth = json_object_get(v, "auth");
        json_t *user = json_object_get(v, "username");
        json_t *pass = json_object_get(v, "password");
        _cleanup_free_ char *u = NULL, *p = NULL;
        if (json_is_string(auth) && json_string_length(auth) > 0) {
                int r = auth_decode(json_string_value(auth), &u, &p);
                if (r == -ENOMEM)
                        return error_oom(err);
                if (r < 0)
                        return error_set(err, r, "auth file: entry '%.64s': \"auth\" is not base64 of user:password",
                                         key);
        } else if (json_is_string(user) && json_is_string(pass)) {
                u = strdup(json_string_value(user));
                p = strdup(json_string_value(pass));
                if (!u || !p)
                        return error_oom(err);
        } else
                return 0; /* identity token, credential helper, or empty: skip */
        if (strlen(u) > REGISTRY_CREDENTIAL_MAX || strlen(p) > REGISTRY_CREDENTIAL_MAX)
                return error_set(err, -EBADMSG, "auth file: entry '%.64s': user name or password too long", key);
        ret->registry = key_normalize(key);
        if (!ret->registry)
                return error_set(err, -EBADMSG, "auth file: bad registry key '%.64s'", key);
        ret->username = TAKE_PTR(u);
        ret->password = TAKE_PTR(p);
        return 1;
}

int registry_auth_file_parse(const char *data, size_t size, RegistryAuthFile **ret, Error **err) {
        if (size > REGISTRY_AUTH_FILE_MAX)
                return error_set(err, -EFBIG, "auth file: larger than %d bytes", REGISTRY_AUTH_FILE_MAX);
        json_error_t jerr;
        json_t *root = json_loadb(data, size, JSON_REJECT_DUPLICATES, &jerr);
        if (!root || !json_is_object(root)) {
                json_decref(root);
                return error_set(err, -EBADMSG, "auth file: not a JSON object (line %d: %s)", jerr.line,
                                 root ? "top level" : jerr.text);
        }
        _cleanup_(registry_auth_file_freep) RegistryAuthFile *f = calloc(1, sizeof *f);
        int r = 0;
        json_t *auths = json_object_get(root, "auths");
        if (!f)
                r = error_oom(err);
        else if (auths && !json_is_object(auths))
                r = error_set(err, -EBADMSG, "auth file: \"auths\" is not an object");
        else if (auths && json_object_size(auths) > REGISTRY_AUTH_FILE_ENTRIES)
                r = error_set(err, -E2BIG, "auth file: more than %d entries", REGISTRY_AUTH_FILE_ENTRIES);
        else if (auths && !(f->logins = calloc(json_object_size(auths) + 1, sizeof *f->logins)))
                r = error_oom(err);
        const char *key;
        json_t *v;
        if (r == 0 && auths)
                json_object_foreach(auths, key, v) {
                        r = entry_parse(key, v, &f->logins[f->n], err);
                        if (r < 0)
                                break;
                        f->n += (size_t) r;
                        r = 0;
                }
        json_decref(root);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(f);
        return 0;
}

int registry_auth_file_load(const char *path, RegistryAuthFile **ret, Error **err) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = read_file_bounded(path, REGISTRY_AUTH_FILE_MAX, &data, &len);
        if (r == -EFBIG)
                return error_set(err, r, "auth file '%s': larger than %d bytes", path, REGISTRY_AUTH_FILE_MAX);
        if (r < 0)
                return error_set_errno(err, -r, "auth file '%s'", path);
        r = registry_auth_file_parse(data, len, ret, err);
        explicit_bzero(data, len);
        if (r < 0) {
                error_prefix(err, "'%s'", path);
                return r;
        }
        return 0;
}

static char *path_if_exists(const char *dir, const char *rest) {
        if (!dir || !*dir)
                return NULL;
        char *p = NULL;
        if (asprintf(&p, "%s%s", dir, rest) < 0)
                return NULL;
        if (access(p, F_OK) == 0)
                return p;
        free(p);
        return NULL;
}

char *registry_auth_file_default_path(void) {
        char *p = path_if_exists(getenv("REGISTRY_AUTH_FILE"), "");
        if (!p)
                p = path_if_exists(getenv("XDG_RUNTIME_DIR"), "/containers/auth.json");
        if (!p)
                p = path_if_exists(getenv("DOCKER_CONFIG"), "/config.json");
        if (!p)
                p = path_if_exists(getenv("HOME"), "/.docker/config.json");
        return p;
}

int registry_auth_file_lookup(const char *registry, char **ret_username, char **ret_password, void *userdata) {
        const RegistryAuthFile *f = userdata;
        for (size_t i = 0; f && i < f->n; i++) {
                if (strcasecmp(f->logins[i].registry, registry) != 0)
                        continue;
                _cleanup_free_ char *u = strdup(f->logins[i].username);
                char *p = strdup(f->logins[i].password);
                if (!u || !p) {
                        free(p);
                        return -ENOMEM;
                }
                *ret_username = TAKE_PTR(u);
                *ret_password = p;
                return 1;
        }
        return 0;
}
