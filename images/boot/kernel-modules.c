/* kernel-modules.c: resolving module names to .ko files in load order from a
 * kernel's modules.dep (see kernel-modules.h).
 *
 * modules.dep is read whole (bounded) and split in place: one ModEntry per
 * line pointing at its path, its dependency paths collected in one flat array.
 * Entries are sorted by path so that dependencies are found by bsearch; the
 * order comes from a depth-first walk that emits a module after everything it
 * depends on. The walk visits dependencies in reverse of their listed order,
 * which is the order modprobe loads them in (depmod lists the module needed
 * last first). */
#include "images/boot/kernel-modules.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base/io-util.h"
#include "common/base/macro.h"

#define MAX_DEPTH 64u
#define MAX_NAME 255u

enum { STATE_NEW, STATE_ACTIVE, STATE_DONE };

typedef struct ModEntry {
        const char *path; /* relative to the modules directory, inside ModIndex.buf */
        size_t dep_first; /* index into ModIndex.deps */
        size_t n_deps;
        int state;
} ModEntry;

typedef struct ModIndex {
        char *buf; /* modules.dep, split in place */
        size_t len;
        ModEntry *entries;
        size_t n_entries, cap_entries;
        const char **deps; /* dependency paths of all entries, inside buf */
        size_t n_deps, cap_deps;
} ModIndex;

typedef struct PathList {
        char **paths; /* NULL-terminated once non-empty */
        size_t n, cap;
} PathList;

static void mod_index_done(ModIndex *ix) {
        free(ix->buf);
        free(ix->entries);
        free(ix->deps);
}

/* Grows *array (of elem_size elements, *cap allocated) to hold n + extra. */
static int grow(void *array, size_t *cap, size_t n, size_t extra, size_t elem_size) {
        if (n + extra <= *cap)
                return 0;
        size_t ncap = MAX(*cap * 2, n + extra + 16);
        void *p = reallocarray(*(void **) array, ncap, elem_size);
        if (!p)
                return -ENOMEM;
        *(void **) array = p;
        *cap = ncap;
        return 0;
}

/* Reads the regular file at path into a NUL-terminated buffer, refusing files
 * over KERNEL_MODULES_MAX_FILE bytes and files with NUL bytes. */
static int read_text_file(const char *path, char **ret, size_t *ret_len, Error **err) {
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = read_file_bounded(path, KERNEL_MODULES_MAX_FILE, &buf, &len);
        if (r == -EINVAL)
                return error_set(err, EINVAL, "%s is not a regular file", path);
        if (r == -EFBIG)
                return error_set(err, EFBIG, "%s is larger than %u bytes", path, KERNEL_MODULES_MAX_FILE);
        if (r < 0)
                return error_set_errno(err, -r, "read %s", path);
        if (strlen(buf) != len)
                return error_set(err, EINVAL, "%s contains a NUL byte", path);
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* A module path must stay inside the modules directory and name a .ko file. */
static bool module_path_valid(const char *p) {
        if (!p[0] || p[0] == '/')
                return false;
        const char *base = strrchr(p, '/');
        base = base ? base + 1 : p;
        if (!strstr(base, ".ko") || base == strstr(base, ".ko"))
                return false;
        for (const char *c = p; c;) {
                if (strncmp(c, "..", 2) == 0 && (c[2] == '/' || c[2] == 0))
                        return false;
                c = strchr(c, '/');
                c = c ? c + 1 : NULL;
        }
        return true;
}

/* True when the file name of path (up to ".ko") is name, '-' and '_' alike. */
static bool module_path_matches(const char *path, const char *name) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        const char *end = strstr(base, ".ko");
        if (!end)
                return false;
        size_t len = (size_t) (end - base);
        for (size_t i = 0; i < len; i++) {
                char a = base[i] == '-' ? '_' : base[i];
                char b = name[i] == '-' ? '_' : name[i];
                if (a != b || b == 0)
                        return false;
        }
        return name[len] == 0;
}

static bool module_name_valid(const char *name) {
        size_t len = strlen(name);
        return len > 0 && len <= MAX_NAME && strspn(name,
                                                    "abcdefghijklmnopqrstuvwxyz"
                                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                    "0123456789_-") == len;
}

/* Parses one line ("path: dep dep ...", split in place) into the index. */
static int mod_index_add_line(ModIndex *ix, char *line, size_t lineno, Error **err) {
        char *colon = strchr(line, ':');
        if (!colon)
                return error_set(err, EINVAL, "modules.dep line %zu: no ':'", lineno);
        *colon = 0;
        if (!module_path_valid(line))
                return error_set(err, EINVAL, "modules.dep line %zu: invalid module path '%s'", lineno, line);
        if (grow(&ix->entries, &ix->cap_entries, ix->n_entries, 1, sizeof(ModEntry)) < 0)
                return error_oom(err);
        ModEntry *e = &ix->entries[ix->n_entries++];
        *e = (ModEntry){.path = line, .dep_first = ix->n_deps};

        char *save = NULL;
        for (char *d = strtok_r(colon + 1, " \t\r", &save); d; d = strtok_r(NULL, " \t\r", &save)) {
                if (!module_path_valid(d))
                        return error_set(err, EINVAL, "modules.dep line %zu: invalid dependency '%s'", lineno, d);
                if (grow(&ix->deps, &ix->cap_deps, ix->n_deps, 1, sizeof(char *)) < 0)
                        return error_oom(err);
                ix->deps[ix->n_deps++] = d;
                e->n_deps++;
        }
        return 0;
}

static int entry_compare(const void *a, const void *b) {
        return strcmp(((const ModEntry *) a)->path, ((const ModEntry *) b)->path);
}

/* Splits ix->buf into lines, parses each, and sorts the entries by path. */
static int mod_index_parse(ModIndex *ix, Error **err) {
        char *p = ix->buf, *end = ix->buf + ix->len;
        for (size_t lineno = 1; p < end; lineno++) {
                char *nl = memchr(p, '\n', (size_t) (end - p));
                char *eol = nl ? nl : end;
                if ((size_t) (eol - p) > KERNEL_MODULES_MAX_LINE)
                        return error_set(err, EINVAL, "modules.dep line %zu: longer than %u bytes", lineno,
                                         KERNEL_MODULES_MAX_LINE);
                *eol = 0;
                if (p[strspn(p, " \t\r")] != 0) {
                        int r = mod_index_add_line(ix, p, lineno, err);
                        if (r < 0)
                                return r;
                }
                p = eol + 1;
        }
        if (ix->n_entries > 1)
                qsort(ix->entries, ix->n_entries, sizeof(ModEntry), entry_compare);
        for (size_t i = 1; i < ix->n_entries; i++)
                if (strcmp(ix->entries[i - 1].path, ix->entries[i].path) == 0)
                        return error_set(err, EINVAL, "modules.dep: %s listed twice", ix->entries[i].path);
        return 0;
}

static ModEntry *mod_index_find_path(ModIndex *ix, const char *path) {
        ModEntry key = {.path = path};
        if (ix->n_entries == 0)
                return NULL;
        return bsearch(&key, ix->entries, ix->n_entries, sizeof(ModEntry), entry_compare);
}

static ModEntry *mod_index_find_name(ModIndex *ix, const char *name) {
        for (size_t i = 0; i < ix->n_entries; i++)
                if (module_path_matches(ix->entries[i].path, name))
                        return &ix->entries[i];
        return NULL;
}

static int path_list_push(PathList *l, const char *path, Error **err) {
        if (grow(&l->paths, &l->cap, l->n, 2, sizeof(char *)) < 0)
                return error_oom(err);
        l->paths[l->n] = strdup(path);
        if (!l->paths[l->n])
                return error_oom(err);
        l->paths[++l->n] = NULL;
        return 0;
}

/* Appends e to out after everything it depends on (depth-first). */
static int mod_index_visit(ModIndex *ix, ModEntry *e, unsigned depth, PathList *out, Error **err) {
        if (e->state == STATE_DONE)
                return 0;
        if (e->state == STATE_ACTIVE)
                return error_set(err, ELOOP, "modules.dep: dependency cycle through %s", e->path);
        if (depth > MAX_DEPTH)
                return error_set(err, ELOOP, "modules.dep: dependency chain deeper than %u at %s", MAX_DEPTH,
                                 e->path);
        e->state = STATE_ACTIVE;
        for (size_t i = e->n_deps; i > 0; i--) {
                const char *dep = ix->deps[e->dep_first + i - 1];
                ModEntry *d = mod_index_find_path(ix, dep);
                if (!d)
                        return error_set(err, EINVAL, "modules.dep: %s needs %s, which has no line of its own",
                                         e->path, dep);
                int r = mod_index_visit(ix, d, depth + 1, out, err);
                if (r < 0)
                        return r;
        }
        e->state = STATE_DONE;
        return path_list_push(out, e->path, err);
}

/* True when modules.builtin (NULL: none) lists name. */
static bool builtin_has(char *builtin, const char *name) {
        if (!builtin)
                return false;
        for (char *line = builtin; *line;) {
                size_t len = strcspn(line, "\n");
                char saved = line[len];
                line[len] = 0;
                bool match = module_path_matches(line, name);
                line[len] = saved;
                if (match)
                        return true;
                line += len + (saved ? 1 : 0);
        }
        return false;
}

/* Reads modules.builtin into *ret, or sets NULL when the kernel has none. */
static int load_builtin(const char *modules_dir, char **ret, Error **err) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/modules.builtin", modules_dir) < 0)
                return error_oom(err);
        *ret = NULL;
        if (access(path, F_OK) < 0 && errno == ENOENT)
                return 0;
        size_t len;
        return read_text_file(path, ret, &len, err);
}

static int load_index(const char *modules_dir, ModIndex *ix, Error **err) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/modules.dep", modules_dir) < 0)
                return error_oom(err);
        int r = read_text_file(path, &ix->buf, &ix->len, err);
        if (r < 0)
                return r;
        r = mod_index_parse(ix, err);
        if (r < 0)
                return error_prefix(err, "%s", modules_dir);
        return 0;
}

/* Resolves one requested name into out (or accepts it as built in). */
static int resolve_one(ModIndex *ix, char **builtin, const char *modules_dir, const char *name, PathList *out,
                       Error **err) {
        if (!module_name_valid(name))
                return error_set(err, EINVAL, "invalid kernel module name '%s'", name);
        ModEntry *e = mod_index_find_name(ix, name);
        if (e)
                return mod_index_visit(ix, e, 0, out, err);
        if (!*builtin) {
                int r = load_builtin(modules_dir, builtin, err);
                if (r < 0)
                        return r;
        }
        if (builtin_has(*builtin, name))
                return 0;
        return error_set(err, ENOENT, "kernel module %s is neither in %s/modules.dep nor built in", name,
                         modules_dir);
}

int kernel_modules_resolve(const char *modules_dir, const char *const *names, char ***ret_paths, size_t *ret_n,
                           Error **err) {
        ModIndex ix = {0};
        PathList out = {0};
        _cleanup_free_ char *builtin = NULL;
        int r = load_index(modules_dir, &ix, err);
        for (size_t i = 0; r >= 0 && names && names[i]; i++)
                r = resolve_one(&ix, &builtin, modules_dir, names[i], &out, err);
        mod_index_done(&ix);
        if (r >= 0 && !out.paths)
                r = grow(&out.paths, &out.cap, 0, 1, sizeof(char *)) < 0 ? error_oom(err)
                                                                         : 0;
        if (r < 0) {
                kernel_modules_free(out.paths);
                return r;
        }
        out.paths[out.n] = NULL;
        *ret_paths = out.paths;
        if (ret_n)
                *ret_n = out.n;
        return 0;
}

char **kernel_modules_free(char **paths) {
        for (size_t i = 0; paths && paths[i]; i++)
                free(paths[i]);
        free(paths);
        return NULL;
}

/* Sets *ret to the only subdirectory of dir; -ENOENT or -ENOTUNIQ otherwise. */
static int only_subdir(const char *dir, char **ret, Error **err) {
        DIR *d = opendir(dir);
        if (!d)
                return error_set_errno(err, errno, "open %s", dir);
        _cleanup_free_ char *found = NULL;
        int r = 0;
        struct dirent *de;
        while (r == 0 && (de = readdir(d))) {
                struct stat st;
                if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                if (found)
                        r = error_set(err, ENOTUNIQ, "%s holds several kernel releases (%s, %s)", dir, found,
                                      de->d_name);
                else if (!(found = strdup(de->d_name)))
                        r = error_oom(err);
        }
        closedir(d);
        if (r < 0)
                return r;
        if (!found)
                return error_set(err, ENOENT, "%s holds no kernel release", dir);
        if (asprintf(ret, "%s/%s", dir, found) < 0)
                return error_oom(err);
        return 0;
}

int kernel_modules_find_dir(const char *kernel_dir, char **ret, Error **err) {
        _cleanup_free_ char *dep = NULL, *lib = NULL;
        if (asprintf(&dep, "%s/modules.dep", kernel_dir) < 0 || asprintf(&lib, "%s/lib/modules", kernel_dir) < 0)
                return error_oom(err);
        if (access(dep, F_OK) == 0) {
                *ret = strdup(kernel_dir);
                return *ret ? 0 : error_oom(err);
        }
        if (access(lib, F_OK) < 0 && errno == ENOENT)
                return error_set(err, ENOENT, "%s holds neither modules.dep nor lib/modules/<release>", kernel_dir);
        return only_subdir(lib, ret, err);
}

int kernel_default_dir(const char *cache, char **ret_dir, Error **err) {
        if (!cache || !*cache)
                cache = getenv("PL_CACHE");
        if (!cache || !*cache)
                cache = "/var/cache/portlayer";
        static const char *const links[] = {"pl-current", "current"};
        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                _cleanup_free_ char *dir = NULL, *kernel = NULL;
                if (asprintf(&dir, "%s/kernel/%s", cache, links[i]) < 0 || asprintf(&kernel, "%s/vmlinuz", dir) < 0)
                        return error_oom(err);
                if (access(kernel, R_OK) == 0) {
                        *ret_dir = TAKE_PTR(dir);
                        return 0;
                }
                if (errno != ENOENT)
                        return error_set_errno(err, errno, "guest kernel %s", kernel);
        }
        return error_set(err, ENOENT,
                         "no guest kernel in %s/kernel (run scripts/build-kernel.sh or scripts/fetch-kernel.sh, or give "
                         "--guest-kernel)",
                         cache);
}
