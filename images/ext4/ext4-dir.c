/* ext4-dir.c: the ext4 writer's in-memory directories, so that a directory of
 * N entries costs O(N) to build, not O(N^2).
 *
 * libext2fs's ext2fs_lookup, ext2fs_link and ext2fs_unlink each scan the
 * whole (linear) directory, and a hostile layer may put a million entries in
 * one. Instead, a directory is read once (ext2fs_dir_iterate2) the first time
 * a layer touches it, or registered empty when the layer creates it; from
 * then on its entries live in an array with a chained hash index on the name,
 * keyed with the filesystem's random hash seed (ext2fs_dirhash2, half-MD4) so
 * that a layer cannot aim its names at one chain. At the end of the layer
 * every changed directory is written back in one pass, and everything is
 * freed: memory holds only the directories one layer touches, about 32 bytes
 * per entry (slot and hash head) plus a heap copy of its name (a 34-byte name
 * takes 48), and 12 bytes more per entry of the directory being written:
 * 100 MB of RSS for a layer of a million such names in one directory. A
 * directory is capped at EXT4_DIR_MAX_BYTES of records, which the per-layer
 * entry cap keeps far off.
 *
 * A directory that fits one block is written linearly, like ext2fs_mkdir's.
 * A larger one becomes a hash tree (dir_index), as the kernel builds it: its
 * entries sorted by the kernel's hash of the name (the filesystem's default
 * version and seed) into full leaf blocks, indexed from block 0 by one level
 * of index, or two past 507 leaves (50,000 to 130,000 names); libext2fs
 * sets the leaf and index checksums. Without the tree every lookup in the
 * running container would scan the whole directory. lost+found stays linear,
 * keeping the blocks made for e2fsck to use. A directory that shrinks keeps its blocks when
 * linear (empty ones are valid) and drops the unused ones when indexed (the
 * index must reach them all).
 *
 * Removed slots go on a free list and are reused by the next addition, the
 * way ext2fs_link fills the hole an unlink left. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ext4-writer-internal.h"

#define NONE UINT32_MAX
#define MIN_HEADS 16u

typedef struct DirEnt {
        char *name;    /* NUL-terminated; NULL for a free slot */
        uint32_t hash;
        uint32_t next; /* hash chain, or the free list for a free slot */
        uint32_t ino;
        uint8_t len;
        uint8_t type;
} DirEnt;

struct Ext4Dir {
        ext2_ino_t ino, parent;
        DirEnt *ents;
        uint32_t n, cap, live, free_head;
        uint32_t *heads; /* n_heads chains of entry indexes, a power of two */
        uint32_t n_heads;
        uint64_t bytes;       /* sum of the entries' record lengths */
        uint64_t disk_blocks; /* blocks it has on disk: the rewrite keeps at least these */
        bool dirty;
        Ext4Dir *next;        /* in the writer's chain of its inode's bucket */
};

static uint32_t name_hash(Ext4Writer *w, const char *name, size_t len) {
        ext2_dirhash_t h = 0, minor = 0;
        if (ext2fs_dirhash2(EXT2_HASH_HALF_MD4, name, (int) len, NULL, 0, w->fs->super->s_hash_seed, &h, &minor))
                return 0; /* only for an unknown version: not reached */
        return (uint32_t) h ^ (uint32_t) minor;
}

static size_t ino_bucket(Ext4Writer *w, ext2_ino_t ino) {
        return (size_t) ((ino * 2654435761u) & (uint32_t) (w->n_dir_heads - 1));
}

static Ext4Dir *dir_find(Ext4Writer *w, ext2_ino_t ino) {
        if (!w->dirs)
                return NULL;
        for (Ext4Dir *d = w->dirs[ino_bucket(w, ino)]; d; d = d->next)
                if (d->ino == ino)
                        return d;
        return NULL;
}

static void dir_free(Ext4Dir *d) {
        for (uint32_t i = 0; i < d->n; i++)
                free(d->ents[i].name);
        free(d->ents);
        free(d->heads);
        free(d);
}

/* Puts a new directory into the writer's table, growing it at load 1. */
static int dir_register(Ext4Writer *w, Ext4Dir *d) {
        if (w->n_dirs >= w->n_dir_heads) {
                size_t n = w->n_dir_heads ? w->n_dir_heads * 2 : 64;
                Ext4Dir **heads = calloc(n, sizeof(*heads));
                if (!heads)
                        return -ENOMEM;
                Ext4Dir **old = w->dirs;
                size_t n_old = w->n_dir_heads;
                w->dirs = heads;
                w->n_dir_heads = n;
                for (size_t i = 0; i < n_old; i++)
                        for (Ext4Dir *x = old[i], *next; x; x = next) {
                                next = x->next;
                                size_t b = ino_bucket(w, x->ino);
                                x->next = heads[b];
                                heads[b] = x;
                        }
                free(old);
        }
        size_t b = ino_bucket(w, d->ino);
        d->next = w->dirs[b];
        w->dirs[b] = d;
        w->n_dirs++;
        return 0;
}

/* Rebuilds the name chains with n_heads heads. */
static int dir_rehash(Ext4Dir *d, uint32_t n_heads) {
        uint32_t *heads = malloc((size_t) n_heads * sizeof(*heads));
        if (!heads)
                return -ENOMEM;
        memset(heads, 0xff, (size_t) n_heads * sizeof(*heads));
        for (uint32_t i = 0; i < d->n; i++) {
                DirEnt *e = &d->ents[i];
                if (!e->name)
                        continue;
                e->next = heads[e->hash & (n_heads - 1)];
                heads[e->hash & (n_heads - 1)] = i;
        }
        free(d->heads);
        d->heads = heads;
        d->n_heads = n_heads;
        return 0;
}

/* Finds name: its index, and the link that points at it (for removal). */
static uint32_t dir_find_name(Ext4Dir *d, uint32_t hash, const char *name, size_t len, uint32_t **ret_link) {
        uint32_t *link = &d->heads[hash & (d->n_heads - 1)];
        for (; *link != NONE; link = &d->ents[*link].next) {
                DirEnt *e = &d->ents[*link];
                if (e->hash == hash && e->len == len && memcmp(e->name, name, len) == 0) {
                        if (ret_link)
                                *ret_link = link;
                        return *link;
                }
        }
        return NONE;
}

/* Adds an entry without checking for a duplicate; -ENOMEM or -EFBIG. */
static int dir_insert(Ext4Writer *w, Ext4Dir *d, const char *name, size_t len, ext2_ino_t ino, int type) {
        uint64_t rec = EXT2_DIR_REC_LEN(len);
        if (d->bytes + rec > EXT4_DIR_MAX_BYTES)
                return -EFBIG;
        if (d->live >= d->n_heads && dir_rehash(d, d->n_heads * 2) < 0)
                return -ENOMEM;
        uint32_t i = d->free_head;
        if (i == NONE && d->n == d->cap) {
                uint32_t cap = d->cap ? d->cap * 2 : 16;
                DirEnt *ents = realloc(d->ents, (size_t) cap * sizeof(*ents));
                if (!ents)
                        return -ENOMEM;
                d->ents = ents;
                d->cap = cap;
        }
        char *copy = malloc(len + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, name, len);
        copy[len] = 0;
        if (i == NONE)
                i = d->n++;
        else
                d->free_head = d->ents[i].next;
        uint32_t hash = name_hash(w, name, len);
        uint32_t *head = &d->heads[hash & (d->n_heads - 1)];
        d->ents[i] = (DirEnt) {.name = copy, .hash = hash, .next = *head, .ino = ino, .len = (uint8_t) len,
                               .type = (uint8_t) type};
        *head = i;
        d->live++;
        d->bytes += rec;
        return 0;
}

static Ext4Dir *dir_alloc(ext2_ino_t ino, ext2_ino_t parent) {
        Ext4Dir *d = calloc(1, sizeof(*d));
        if (!d)
                return NULL;
        d->ino = ino;
        d->parent = parent;
        d->free_head = NONE;
        if (dir_rehash(d, MIN_HEADS) < 0) {
                free(d);
                return NULL;
        }
        return d;
}

typedef struct LoadCtx {
        Ext4Writer *w;
        Ext4Dir *d;
        int r;
} LoadCtx;

static int load_entry(ext2_ino_t dir, int entry, struct ext2_dir_entry *dirent, int offset, int blocksize,
                      char *buf, void *priv) {
        LoadCtx *c = priv;
        if (entry == DIRENT_DOT_DOT_FILE) {
                c->d->parent = dirent->inode;
                return 0;
        }
        if (entry == DIRENT_DOT_FILE || dirent->inode == 0)
                return 0;
        size_t len = (size_t) ext2fs_dirent_name_len(dirent);
        c->r = dir_insert(c->w, c->d, dirent->name, len, dirent->inode, ext2fs_dirent_file_type(dirent));
        return c->r < 0 ? DIRENT_ABORT : 0;
}

/* The loaded directory ino, reading it from disk the first time. */
static int dir_get(Ext4Writer *w, ext2_ino_t ino, Ext4Dir **ret, const char *entry, Error **err) {
        Ext4Dir *d = dir_find(w, ino);
        if (d) {
                *ret = d;
                return 0;
        }
        struct ext2_inode inode;
        errcode_t rc = ext2fs_read_inode(w->fs, ino, &inode);
        if (rc)
                return ext4_fs_fail(err, rc, "read directory inode", entry);
        if (!(d = dir_alloc(ino, 0)))
                return error_oom(err);
        d->disk_blocks = EXT2_I_SIZE(&inode) / w->fs->blocksize;
        LoadCtx c = {.w = w, .d = d};
        rc = ext2fs_dir_iterate2(w->fs, ino, 0, NULL, load_entry, &c);
        int r = c.r < 0 ? c.r : 0;
        if (r == 0 && !rc)
                r = dir_register(w, d);
        if (r < 0 || rc) {
                dir_free(d);
                return r < 0 ? error_set(err, -r, "layer entry '%s': %s reading a directory", entry,
                                         r == -EFBIG ? "directory too large" : "out of memory")
                             : ext4_fs_fail(err, rc, "read directory", entry);
        }
        *ret = d;
        return 0;
}

int ext4_dir_lookup(Ext4Writer *w, ext2_ino_t dir, const char *name, size_t len, ext2_ino_t *ret,
                    const char *entry, Error **err) {
        Ext4Dir *d;
        int r = dir_get(w, dir, &d, entry, err);
        if (r < 0)
                return r;
        uint32_t i = len <= EXT2_NAME_LEN ? dir_find_name(d, name_hash(w, name, len), name, len, NULL) : NONE;
        *ret = i == NONE ? 0 : d->ents[i].ino;
        return 0;
}

int ext4_dir_add(Ext4Writer *w, ext2_ino_t dir, const char *name, ext2_ino_t ino, int type, const char *entry,
                 Error **err) {
        Ext4Dir *d;
        int r = dir_get(w, dir, &d, entry, err);
        if (r < 0)
                return r;
        size_t len = strlen(name);
        if (len == 0 || len > EXT2_NAME_LEN)
                return error_set(err, EINVAL, "layer entry '%s': bad name length %zu", entry, len);
        r = dir_insert(w, d, name, len, ino, type);
        if (r == -EFBIG)
                return error_set(err, EFBIG, "layer entry '%s': directory holds more than %u bytes of entries",
                                 entry, EXT4_DIR_MAX_BYTES);
        if (r < 0)
                return error_set(err, -r, "layer entry '%s': out of memory adding a directory entry", entry);
        d->dirty = true;
        return 0;
}

int ext4_dir_remove(Ext4Writer *w, ext2_ino_t dir, const char *name, const char *entry, Error **err) {
        Ext4Dir *d;
        int r = dir_get(w, dir, &d, entry, err);
        if (r < 0)
                return r;
        size_t len = strlen(name);
        uint32_t *link = NULL;
        uint32_t i = len <= EXT2_NAME_LEN ? dir_find_name(d, name_hash(w, name, len), name, len, &link) : NONE;
        if (i == NONE)
                return error_set(err, ENOENT, "layer entry '%s': unlink: entry not in its directory", entry);
        DirEnt *e = &d->ents[i];
        *link = e->next;
        d->bytes -= EXT2_DIR_REC_LEN(e->len);
        d->live--;
        d->dirty = true;
        char *old = e->name; /* may be the caller's name: freed last */
        *e = (DirEnt) {.next = d->free_head};
        d->free_head = i;
        free(old);
        return 0;
}

int ext4_dir_next_child(Ext4Writer *w, ext2_ino_t dir, size_t *pos, const char **ret_name, ext2_ino_t *ret_ino,
                        const char *entry, Error **err) {
        Ext4Dir *d;
        int r = dir_get(w, dir, &d, entry, err);
        if (r < 0)
                return r;
        for (size_t i = *pos; i < d->n; i++)
                if (d->ents[i].name) {
                        *ret_name = d->ents[i].name;
                        *ret_ino = d->ents[i].ino;
                        *pos = i + 1;
                        return 1;
                }
        *pos = d->n;
        return 0;
}

int ext4_dir_created(Ext4Writer *w, ext2_ino_t dir, ext2_ino_t parent, const char *entry, Error **err) {
        ext4_dir_forget(w, dir); /* a stale copy of a freed, reused inode: not expected, but harmless */
        Ext4Dir *d = dir_alloc(dir, parent);
        if (!d || dir_register(w, d) < 0) {
                if (d)
                        dir_free(d);
                return error_oom(err);
        }
        d->disk_blocks = 1;
        return 0;
}

void ext4_dir_forget(Ext4Writer *w, ext2_ino_t dir) {
        if (!w->dirs)
                return;
        for (Ext4Dir **p = &w->dirs[ino_bucket(w, dir)]; *p; p = &(*p)->next)
                if ((*p)->ino == dir) {
                        Ext4Dir *d = *p;
                        *p = d->next;
                        w->n_dirs--;
                        dir_free(d);
                        return;
                }
}

/* ---- writing back -------------------------------------------------------- */

typedef struct BlockWriter {
        ext2_filsys fs;
        Ext4Dir *d;
        struct ext2_inode_large inode;
        char *buf;
        unsigned usable;              /* block bytes before the checksum tail */
        unsigned off;                 /* where the next record goes */
        struct ext2_dir_entry *last;  /* the block's last record, which takes the slack */
        blk64_t lblk;                 /* logical block being filled */
} BlockWriter;

/* Maps the buffer's logical block, allocating past the old end, writes it
 * (libext2fs sets the checksum of a leaf or index block) and clears the
 * buffer for the next one. */
static errcode_t block_store(BlockWriter *b) {
        ext2_filsys fs = b->fs;
        blk64_t pblk = 0;
        int flags = b->lblk >= b->d->disk_blocks ? BMAP_ALLOC : 0;
        errcode_t rc = ext2fs_bmap2(fs, b->d->ino, EXT2_INODE(&b->inode), NULL, flags, b->lblk, NULL, &pblk);
        if (!rc && pblk == 0)
                rc = EXT2_ET_BAD_BLOCK_NUM; /* a hole in a directory we wrote: not expected */
        if (!rc)
                rc = ext2fs_write_dir_block4(fs, pblk, b->buf, 0, b->d->ino);
        if (rc)
                return rc;
        b->lblk++;
        b->off = 0;
        b->last = NULL;
        memset(b->buf, 0, fs->blocksize);
        return 0;
}

/* Ends the current leaf block (the last record, or one empty record, spans
 * the rest, then the checksum tail) and stores it. */
static errcode_t block_flush(BlockWriter *b) {
        ext2_filsys fs = b->fs;
        errcode_t rc;
        if (!b->last) {
                b->last = (struct ext2_dir_entry *) b->buf;
                b->last->inode = 0;
                ext2fs_dirent_set_name_len(b->last, 0);
                ext2fs_dirent_set_file_type(b->last, 0);
                b->off = 0;
        }
        unsigned off_last = (unsigned) ((char *) b->last - b->buf);
        if ((rc = ext2fs_set_rec_len(fs, b->usable - off_last, b->last)))
                return rc;
        if (b->usable < fs->blocksize)
                ext2fs_initialize_dirent_tail(fs, EXT2_DIRENT_TAIL(b->buf, fs->blocksize));
        return block_store(b);
}

static errcode_t block_put(BlockWriter *b, const char *name, unsigned len, ext2_ino_t ino, int type) {
        unsigned rec = EXT2_DIR_REC_LEN(len);
        errcode_t rc;
        if (b->off + rec > b->usable && (rc = block_flush(b)))
                return rc;
        struct ext2_dir_entry *e = (struct ext2_dir_entry *) (b->buf + b->off);
        e->inode = ino;
        if ((rc = ext2fs_set_rec_len(b->fs, rec, e)))
                return rc;
        ext2fs_dirent_set_name_len(e, (int) len);
        ext2fs_dirent_set_file_type(e, type);
        memcpy(e->name, name, len);
        b->last = e;
        b->off += rec;
        return 0;
}

/* Writes d linearly: ".", "..", then its entries in slot order. */
static errcode_t write_linear(BlockWriter *b) {
        Ext4Dir *d = b->d;
        errcode_t rc = block_put(b, ".", 1, d->ino, EXT2_FT_DIR);
        if (!rc)
                rc = block_put(b, "..", 2, d->parent, EXT2_FT_DIR);
        for (uint32_t i = 0; !rc && i < d->n; i++)
                if (d->ents[i].name)
                        rc = block_put(b, d->ents[i].name, d->ents[i].len, d->ents[i].ino, d->ents[i].type);
        return rc ? rc : block_flush(b);
}

/* ---- hash tree ----------------------------------------------------------- */

typedef struct HashKey {
        uint32_t hash, minor, slot;
} HashKey;

static int key_cmp(const void *x, const void *y) {
        const HashKey *a = x, *b = y;
        if (a->hash != b->hash)
                return a->hash < b->hash ? -1 : 1;
        if (a->minor != b->minor)
                return a->minor < b->minor ? -1 : 1;
        return a->slot < b->slot ? -1 : a->slot > b->slot;
}

/* The entries as the kernel hashes them (the filesystem's default version,
 * unsigned variant if so flagged), sorted by hash. */
static errcode_t hash_keys(ext2_filsys fs, Ext4Dir *d, HashKey **ret) {
        HashKey *keys = malloc((size_t) d->live * sizeof(*keys));
        if (!keys)
                return EXT2_ET_NO_MEMORY;
        int version = fs->super->s_def_hash_version;
        if (version <= EXT2_HASH_TEA && (fs->super->s_flags & EXT2_FLAGS_UNSIGNED_HASH))
                version += 3;
        size_t n = 0;
        errcode_t rc = 0;
        for (uint32_t i = 0; !rc && i < d->n; i++) {
                DirEnt *e = &d->ents[i];
                if (!e->name)
                        continue;
                ext2_dirhash_t h = 0, minor = 0;
                rc = ext2fs_dirhash2(version, e->name, e->len, NULL, 0, fs->super->s_hash_seed, &h, &minor);
                keys[n++] = (HashKey) {.hash = h, .minor = minor, .slot = i};
        }
        if (rc) {
                free(keys);
                return rc;
        }
        qsort(keys, n, sizeof(*keys), key_cmp);
        *ret = keys;
        return 0;
}

/* Splits the sorted keys into full leaf blocks: starts[k] is leaf k's first
 * key. A run of equal hashes moves whole to the next leaf when it fits
 * there, so that a hash spans two leaves (the index then sets the collision
 * bit) only when its run is longer than a block: with the seed secret, not
 * something a layer can aim at. */
static errcode_t plan_leaves(BlockWriter *b, const HashKey *keys, uint32_t **ret, uint32_t *ret_n) {
        uint32_t n = b->d->live, cap = 16, nleaves = 1;
        uint32_t *starts = malloc(cap * sizeof(*starts));
        if (!starts)
                return EXT2_ET_NO_MEMORY;
        starts[0] = 0;
        unsigned used = 0;
        for (uint32_t i = 0, run = 0; i < n; i++) {
                unsigned rec = EXT2_DIR_REC_LEN(b->d->ents[keys[i].slot].len);
                if (i > 0 && keys[i].hash != keys[i - 1].hash)
                        run = i;
                if (used + rec <= b->usable) {
                        used += rec;
                        continue;
                }
                unsigned run_used = 0;
                for (uint32_t j = run; j <= i && run_used <= b->usable; j++)
                        run_used += EXT2_DIR_REC_LEN(b->d->ents[keys[j].slot].len);
                bool move = run > starts[nleaves - 1] && run_used <= b->usable;
                if (nleaves == cap) {
                        uint32_t *more = realloc(starts, (cap *= 2) * sizeof(*starts));
                        if (!more) {
                                free(starts);
                                return EXT2_ET_NO_MEMORY;
                        }
                        starts = more;
                }
                starts[nleaves++] = move ? run : i;
                used = move ? run_used : rec;
        }
        *ret = starts;
        *ret_n = nleaves;
        return 0;
}

/* The index hash of leaf k: its first hash, with the collision bit when
 * the previous leaf ends with the same hash. */
static uint32_t leaf_hash(const HashKey *keys, const uint32_t *starts, uint32_t k) {
        uint32_t first = starts[k];
        return keys[first].hash | (k > 0 && keys[first - 1].hash == keys[first].hash ? 1u : 0u);
}

/* Fills an index node's count, limit and entries: children first..first+n
 * of level (leaves, or nodes of per leaves each), found at block base+i. */
static void dx_fill(char *at, unsigned limit, const HashKey *keys, const uint32_t *starts, uint32_t first,
                    uint32_t n, uint32_t per, uint32_t base) {
        struct ext2_dx_countlimit *cl = (struct ext2_dx_countlimit *) at;
        struct ext2_dx_entry *ents = (struct ext2_dx_entry *) at;
        for (uint32_t i = 0; i < n; i++) {
                if (i > 0)
                        ents[i].hash = ext2fs_cpu_to_le32(leaf_hash(keys, starts, (first + i) * per));
                ents[i].block = ext2fs_cpu_to_le32(base + first + i);
        }
        cl->limit = ext2fs_cpu_to_le16((uint16_t) limit);
        cl->count = ext2fs_cpu_to_le16((uint16_t) n);
}

static void put_dirent(ext2_filsys fs, char *at, ext2_ino_t ino, const char *name, unsigned rec) {
        struct ext2_dir_entry *e = (struct ext2_dir_entry *) at;
        e->inode = ino;
        ext2fs_set_rec_len(fs, rec, e);
        ext2fs_dirent_set_name_len(e, (int) strlen(name));
        ext2fs_dirent_set_file_type(e, *name ? EXT2_FT_DIR : 0);
        memcpy(e->name, name, strlen(name));
}

/* Writes d as a hash tree: the root in block 0 (one or two levels of
 * index), then the leaves in hash order. Returns EXT2_ET_DIR_NO_SPACE,
 * having written nothing, when it would need more than two levels. */
static errcode_t write_htree(BlockWriter *b) {
        ext2_filsys fs = b->fs;
        Ext4Dir *d = b->d;
        unsigned tail = ext2fs_has_feature_metadata_csum(fs->super) ? sizeof(struct ext2_dx_tail) : 0;
        unsigned root_limit = (fs->blocksize - 32 - tail) / 8, node_limit = (fs->blocksize - 8 - tail) / 8;
        _cleanup_free_ HashKey *keys = NULL;
        _cleanup_free_ uint32_t *starts = NULL;
        uint32_t nleaves = 0;
        errcode_t rc = hash_keys(fs, d, &keys);
        if (!rc)
                rc = plan_leaves(b, keys, &starts, &nleaves);
        if (rc)
                return rc;
        uint32_t nodes = nleaves <= root_limit ? 0 : (nleaves + node_limit - 1) / node_limit;
        if (nodes > root_limit)
                return EXT2_ET_DIR_NO_SPACE;
        put_dirent(fs, b->buf, d->ino, ".", 12);
        put_dirent(fs, b->buf + 12, d->parent, "..", fs->blocksize - 12);
        struct ext2_dx_root_info *info = (struct ext2_dx_root_info *) (b->buf + 24);
        info->hash_version = fs->super->s_def_hash_version;
        info->info_length = sizeof(*info);
        info->indirect_levels = nodes ? 1 : 0;
        if (nodes)
                dx_fill(b->buf + 32, root_limit, keys, starts, 0, nodes, node_limit, 1);
        else
                dx_fill(b->buf + 32, root_limit, keys, starts, 0, nleaves, 1, 1);
        rc = block_store(b);
        for (uint32_t k = 0; !rc && k < nodes; k++) {
                put_dirent(fs, b->buf, 0, "", fs->blocksize);
                uint32_t first = k * node_limit, n = MIN(node_limit, nleaves - first);
                dx_fill(b->buf + 8, node_limit, keys, starts, first, n, 1, 1 + nodes);
                rc = block_store(b);
        }
        for (uint32_t k = 0; !rc && k < nleaves; k++) {
                uint32_t end = k + 1 < nleaves ? starts[k + 1] : d->live;
                for (uint32_t i = starts[k]; !rc && i < end; i++) {
                        DirEnt *e = &d->ents[keys[i].slot];
                        rc = block_put(b, e->name, e->len, e->ino, e->type);
                }
                if (!rc)
                        rc = block_flush(b);
        }
        return rc;
}

/* Writes d back: as a hash tree when it needs more than one block (but for
 * lost+found), else linearly over at least as many blocks as it had; then
 * frees blocks past the end and sets the size and the index flag. */
static errcode_t dir_write(Ext4Writer *w, Ext4Dir *d) {
        ext2_filsys fs = w->fs;
        BlockWriter b = {.fs = fs, .d = d, .buf = calloc(1, fs->blocksize)};
        if (!b.buf)
                return EXT2_ET_NO_MEMORY;
        bool csum = ext2fs_has_feature_metadata_csum(fs->super);
        b.usable = fs->blocksize - (csum ? (unsigned) sizeof(struct ext2_dir_entry_tail) : 0);
        bool indexed = ext2fs_has_feature_dir_index(fs->super) && d->ino != w->lost_found &&
                       24 + d->bytes > b.usable;
        errcode_t rc = ext2fs_read_inode_full(fs, d->ino, EXT2_INODE(&b.inode), sizeof(b.inode));
        if (!rc && indexed && (rc = write_htree(&b)) == EXT2_ET_DIR_NO_SPACE && b.lblk == 0) {
                indexed = false; /* too large for two levels: linear */
                rc = 0;
        }
        if (!rc && !indexed)
                rc = write_linear(&b);
        while (!rc && !indexed && b.lblk < d->disk_blocks)
                rc = block_flush(&b);
        if (!rc && b.lblk < d->disk_blocks) /* the index must reach every block: drop the rest */
                rc = ext2fs_punch(fs, d->ino, EXT2_INODE(&b.inode), NULL, b.lblk, ~0ULL);
        if (indexed)
                b.inode.i_flags |= EXT2_INDEX_FL;
        else
                b.inode.i_flags &= ~EXT2_INDEX_FL;
        if (!rc)
                rc = ext2fs_inode_size_set(fs, EXT2_INODE(&b.inode), b.lblk * fs->blocksize);
        if (!rc)
                rc = ext2fs_write_inode_full(fs, d->ino, EXT2_INODE(&b.inode), sizeof(b.inode));
        free(b.buf);
        return rc;
}

int ext4_dirs_flush(Ext4Writer *w, Error **err) {
        errcode_t rc = 0;
        ext2_ino_t failed = 0;
        for (size_t i = 0; !rc && i < w->n_dir_heads; i++)
                for (Ext4Dir *d = w->dirs[i]; !rc && d; d = d->next)
                        if (d->dirty && (rc = dir_write(w, d)))
                                failed = d->ino;
        ext4_dirs_free(w);
        if (!rc)
                return 0;
        if (ext4_is_nospace(rc))
                return error_set(err, ENOSPC, "ext4 image '%s': write directory (inode %u): filesystem image is "
                                 "full (size it with ext4_size_for())", w->path, failed);
        return error_set(err, EIO, "ext4 image '%s': write directory (inode %u): %s", w->path, failed,
                         ext4_fs_strerror(rc));
}

void ext4_dirs_free(Ext4Writer *w) {
        for (size_t i = 0; i < w->n_dir_heads; i++)
                for (Ext4Dir *d = w->dirs[i], *next; d; d = next) {
                        next = d->next;
                        dir_free(d);
                }
        free(w->dirs);
        w->dirs = NULL;
        w->n_dirs = w->n_dir_heads = 0;
}
