/* oci-ref.c: Docker reference grammar (see oci-ref.h).
 *
 * The input is split from the right: "@digest" first, then ":tag" when the
 * last ':' follows the last '/', then the registry off the front by Docker's
 * domain rule. Each part is then checked against its own grammar with small
 * hand-written matchers (no regex engine), so every error can say which part
 * is wrong:
 *   domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
 *   host             := domain-component ('.' domain-component)* | '[' ipv6 ']'
 *   path-component   := [a-z0-9]+ (separator [a-z0-9]+)*,
 *                       separator := [._] | '__' | '-'+
 *   tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest           := sha256:[0-9a-f]{64} (see digest.h) */
#include "images/oci/oci-ref.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "images/oci/digest.h"

#define DOCKER_HUB_URL "https://registry-1.docker.io"
#define PORT_MAX_DIGITS 5

static bool is_lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c) {
        return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* One path component of [s, s+n): alnum runs joined by separators. */
static bool path_component_valid(const char *s, size_t n) {
        size_t i = 0;
        if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
                return false;
        while (i < n) {
                if (is_lower_alnum(s[i])) {
                        i++;
                        continue;
                }
                size_t sep = i;
                while (i < n && s[i] == '-')
                        i++;
                if (i == sep) {
                        if (s[i] == '_' && i + 1 < n && s[i + 1] == '_')
                                i += 2;
                        else if (s[i] == '.' || s[i] == '_')
                                i++;
                        else
                                return false;
                }
                if (i >= n || !is_lower_alnum(s[i]))
                        return false;
        }
        return true;
}

static int repository_check(const char *repo, Error **err) {
        const char *p = repo;
        if (!*repo)
                return error_set(err, EINVAL, "invalid reference: empty repository name");
        for (;;) {
                const char *slash = strchr(p, '/');
                size_t n = slash ? (size_t) (slash - p) : strlen(p);
                if (n == 0)
                        return error_set(err, EINVAL, "invalid reference: empty path component in repository '%s'",
                                         repo);
                if (!path_component_valid(p, n))
                        return error_set(err, EINVAL,
                                         "invalid reference: repository component '%.*s' must be lowercase "
                                         "[a-z0-9] separated by '.', '_', '__' or '-'",
                                         (int) n, p);
                if (!slash)
                        return 0;
                p = slash + 1;
        }
}

static bool domain_component_valid(const char *s, size_t n) {
        if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_alnum(s[i]) && s[i] != '-')
                        return false;
        return true;
}

static bool host_valid(const char *s, size_t n) {
        if (n >= 2 && s[0] == '[') {
                if (s[n - 1] != ']' || n - 2 >= INET6_ADDRSTRLEN)
                        return false;
                char buf[INET6_ADDRSTRLEN];
                struct in6_addr a;
                memcpy(buf, s + 1, n - 2);
                buf[n - 2] = '\0';
                return inet_pton(AF_INET6, buf, &a) == 1;
        }
        for (;;) {
                const char *dot = memchr(s, '.', n);
                size_t len = dot ? (size_t) (dot - s) : n;
                if (!domain_component_valid(s, len))
                        return false;
                if (!dot)
                        return true;
                n -= len + 1;
                s = dot + 1;
        }
}

/* Returns the length of the host part of a registry ("host[:port]"). */
static size_t registry_host_len(const char *reg) {
        const char *colon = reg[0] == '[' ? strstr(reg, "]:") : strrchr(reg, ':');
        if (!colon)
                return strlen(reg);
        return (size_t) (colon - reg) + (reg[0] == '[' ? 1 : 0);
}

static int registry_check(const char *reg, Error **err) {
        size_t hn = registry_host_len(reg);
        if (!host_valid(reg, hn))
                return error_set(err, EINVAL, "invalid reference: bad registry host '%.*s'", (int) hn, reg);
        if (reg[hn] == '\0')
                return 0;
        const char *port = reg + hn + 1;
        size_t pn = strlen(port);
        if (pn == 0 || pn > PORT_MAX_DIGITS || strspn(port, "0123456789") != pn)
                return error_set(err, EINVAL, "invalid reference: bad registry port '%s'", port);
        return 0;
}

static int tag_check(const char *tag, Error **err) {
        size_t n = strlen(tag);
        if (n == 0)
                return error_set(err, EINVAL, "invalid reference: empty tag");
        if (n > OCI_REF_TAG_MAX)
                return error_set(err, EINVAL, "invalid reference: tag longer than %d characters", OCI_REF_TAG_MAX);
        if (!is_alnum(tag[0]) && tag[0] != '_')
                return error_set(err, EINVAL, "invalid reference: tag '%s' must start with [A-Za-z0-9_]", tag);
        for (size_t i = 1; i < n; i++)
                if (!is_alnum(tag[i]) && !strchr("_.-", tag[i]))
                        return error_set(err, EINVAL, "invalid reference: bad character '%c' in tag '%s'",
                                         isprint((unsigned char) tag[i]) ? tag[i] : '?', tag);
        return 0;
}

static int digest_check(const char *digest, Error **err) {
        int r = digest_parse_check(digest);
        if (r == -EOPNOTSUPP)
                return error_set(err, EOPNOTSUPP, "unsupported digest algorithm in '%s' (only sha256)", digest);
        if (r < 0)
                return error_set(err, EINVAL, "invalid reference: bad digest '%s' (want sha256:<64 hex>)", digest);
        return 0;
}

/* Docker's splitDockerDomain: which part of "name" is the registry. */
static bool first_component_is_registry(const char *name, size_t n) {
        if (n == 9 && strncmp(name, "localhost", 9) == 0)
                return true;
        for (size_t i = 0; i < n; i++)
                if (name[i] == '.' || name[i] == ':' || (name[i] >= 'A' && name[i] <= 'Z'))
                        return true;
        return false;
}

/* Splits "name" (no tag, no digest) into registry and repository. */
static int split_name(const char *name, OciRef *ref) {
        const char *slash = strchr(name, '/');
        const char *repo = name;
        if (slash && first_component_is_registry(name, slash - name)) {
                ref->registry = strndup(name, slash - name);
                repo = slash + 1;
        } else
                ref->registry = strdup(OCI_REF_DEFAULT_REGISTRY);
        if (!ref->registry)
                return -ENOMEM;
        if (strcmp(ref->registry, "index.docker.io") == 0) {
                free(ref->registry);
                if (!(ref->registry = strdup(OCI_REF_DEFAULT_REGISTRY)))
                        return -ENOMEM;
        }
        bool library = strcmp(ref->registry, OCI_REF_DEFAULT_REGISTRY) == 0 && !strchr(repo, '/') && *repo;
        if (library ? asprintf(&ref->repository, "library/%s", repo) < 0 : !(ref->repository = strdup(repo)))
                return -ENOMEM;
        return 0;
}

/* Cuts "@digest" and ":tag" off buf (modified in place) into ref. */
static int split_suffixes(char *buf, OciRef *ref) {
        char *at = strchr(buf, '@');
        if (at) {
                *at = '\0';
                if (!(ref->digest = strdup(at + 1)))
                        return -ENOMEM;
        }
        char *colon = strrchr(buf, ':');
        char *slash = strrchr(buf, '/');
        if (colon && (!slash || colon > slash)) {
                *colon = '\0';
                if (!(ref->tag = strdup(colon + 1)))
                        return -ENOMEM;
        }
        return 0;
}

static int ref_validate(OciRef *ref, Error **err) {
        int r;
        if (ref->digest && (r = digest_check(ref->digest, err)) < 0)
                return r;
        if (ref->tag && (r = tag_check(ref->tag, err)) < 0)
                return r;
        if ((r = registry_check(ref->registry, err)) < 0)
                return r;
        if (strlen(ref->registry) + 1 + strlen(ref->repository) > OCI_REF_NAME_MAX)
                return error_set(err, ENAMETOOLONG, "invalid reference: name longer than %d characters",
                                 OCI_REF_NAME_MAX);
        return repository_check(ref->repository, err);
}

/* Docker refuses a bare 64-hex name: it would be mistaken for an image ID. */
static bool is_image_id(const char *s) {
        return strlen(s) == DIGEST_SHA256_HEX_LEN && strspn(s, "0123456789abcdef") == DIGEST_SHA256_HEX_LEN;
}

int oci_ref_parse(const char *s, OciRef **ret, Error **err) {
        _cleanup_oci_ref_ OciRef *ref = NULL;
        _cleanup_free_ char *buf = NULL;
        int r;

        if (!s || !*s)
                return error_set(err, EINVAL, "invalid reference: empty string");
        if (strnlen(s, OCI_REF_MAX + 1) > OCI_REF_MAX)
                return error_set(err, ENAMETOOLONG, "invalid reference: longer than %d bytes", OCI_REF_MAX);
        if (is_image_id(s))
                return error_set(err, EINVAL, "invalid reference: a 64-character hex name looks like an image ID");
        ref = calloc(1, sizeof *ref);
        buf = strdup(s);
        if (!ref || !buf)
                return error_oom(err);
        if (split_suffixes(buf, ref) < 0 || split_name(buf, ref) < 0)
                return error_oom(err);
        r = ref_validate(ref, err);
        if (r < 0)
                return r;
        if (!ref->tag && !ref->digest && !(ref->tag = strdup(OCI_REF_DEFAULT_TAG)))
                return error_oom(err);
        *ret = TAKE_PTR(ref);
        return 0;
}

OciRef *oci_ref_free(OciRef *ref) {
        if (!ref)
                return NULL;
        free(ref->registry);
        free(ref->repository);
        free(ref->tag);
        free(ref->digest);
        free(ref);
        return NULL;
}

int oci_ref_to_string(const OciRef *ref, char **ret) {
        int n = asprintf(ret, "%s/%s%s%s%s%s", ref->registry, ref->repository, ref->tag ? ":" : "",
                         ref->tag ? ref->tag : "", ref->digest ? "@" : "", ref->digest ? ref->digest : "");
        return n < 0 ? -ENOMEM : 0;
}

static bool registry_is_loopback(const char *reg) {
        size_t hn = registry_host_len(reg);
        char host[INET6_ADDRSTRLEN + 2];
        struct in_addr a;

        if (hn >= sizeof host)
                return false;
        memcpy(host, reg, hn);
        host[hn] = '\0';
        if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
                return true;
        return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

int oci_ref_registry_url(const OciRef *ref, bool insecure_override, char **ret_base_url) {
        int n;
        if (strcmp(ref->registry, OCI_REF_DEFAULT_REGISTRY) == 0 && !insecure_override)
                n = asprintf(ret_base_url, "%s", DOCKER_HUB_URL);
        else if (strcmp(ref->registry, OCI_REF_DEFAULT_REGISTRY) == 0)
                n = asprintf(ret_base_url, "http://registry-1.docker.io");
        else {
                bool plain = insecure_override || registry_is_loopback(ref->registry);
                n = asprintf(ret_base_url, "%s://%s", plain ? "http" : "https", ref->registry);
        }
        return n < 0 ? -ENOMEM : 0;
}
