/* store-private.h: what the store's files (store.c, store-record.c,
 * store-pull.c, store-gc.c) share and nobody else sees: the Store struct,
 * lock helpers, atomic file writes and the tags table. */
#pragma once

#include <dirent.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "images/store.h"

#define STORE_HEX_LEN 64
#define STORE_ID_BUF (7 + STORE_HEX_LEN + 1) /* "sha256:<hex>" and NUL */

struct Store {
        char *root;  /* absolute */
        int root_fd; /* O_DIRECTORY */
        int blobs_fd; /* blobs/sha256 */
        int images_fd;
        int locks_fd;
        int tmp_fd;
};

/* flock() on locks/<name>.lock, LOCK_SH or LOCK_EX (| LOCK_NB). Returns the
 * locked fd (close it to unlock) or a negative errno (-EWOULDBLOCK). */
int store_lock(Store *s, const char *name, int how, Error **err);

/* Takes image hex's lock (locks/image-<hex>.lock) with flock mode how;
 * returns the lock fd as store_lock() does. */
int store_lock_image(Store *s, const char *hex, int how, Error **err);

/* Resolves ref (as store_inspect() does) into hex under a shared tags lock. */
int store_resolve_ref(Store *s, const char *ref, char hex[static STORE_HEX_LEN + 1], Error **err);

static inline void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}
#define _cleanup_closedir_ _cleanup_(closedirp)

/* Opens name below dir_fd as a directory stream without following a
 * symlink; NULL with errno set on failure. */
DIR *store_dir_at(int dir_fd, const char *name);

/* Writes data to dir_fd/name atomically: a temp file in tmp/, fsync,
 * rename, fsync of the directory. */
int store_write_atomic(Store *s, int dir_fd, const char *name, const void *data, size_t n, Error **err);

/* fsync of a directory fd. */
int store_fsync_dir(int dir_fd, const char *what, Error **err);

/* A fresh unique name under tmp/ ("<prefix>-<random hex>") in *ret. */
int store_tmp_name(const char *prefix, char **ret);

/* Removes dir_fd/name recursively (files and directories, no symlink is
 * followed); adds the bytes of regular files to *bytes (may be NULL).
 * Missing is fine. Returns 0 or a negative errno. */
int store_rm_rf_at(int dir_fd, const char *name, uint64_t *bytes);

/* Whether s is "sha256:<hex>" or "<hex>" with 64 lowercase hex digits;
 * *ret_hex points at the hex part. */
bool store_id_hex(const char *s, const char **ret_hex);

/* The tags table (tags.json), names sorted. Caller holds the tags lock. */
typedef struct StoreTags {
        char **names;
        char **ids;
        size_t n;
} StoreTags;
void store_tags_clear(StoreTags *t);
int store_tags_load(Store *s, StoreTags *ret, Error **err);
int store_tags_save(Store *s, const StoreTags *t, Error **err);
/* Sets name -> id (replacing). Returns 0 or -ENOMEM / -E2BIG. */
int store_tags_set(StoreTags *t, const char *name, const char *id, Error **err);
/* Removes name; returns true if it was there. */
bool store_tags_unset(StoreTags *t, const char *name);
/* Index of name or -1. */
ssize_t store_tags_find(const StoreTags *t, const char *name);

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

/* Records (store-record.c). */
/* The "created" string of a config document, or NULL (absent, bad, ENOMEM). */
char *store_config_created(const void *data, size_t n);
/* Writes images/<hex>/image.json for img (id, disk_size etc. filled). */
int store_record_write(Store *s, const StoreImage *img, Error **err);
/* Reads the record of id hex into *ret (tags empty). -ENOENT when absent. */
int store_record_read(Store *s, const char *hex, StoreImage **ret, Error **err);
/* Whether images/<hex>/image.json exists. */
bool store_record_exists(Store *s, const char *hex);
/* Fills img->tags from t. */
int store_image_fill_tags(StoreImage *img, const StoreTags *t);
/* Number of users registered in images/<hex>/users (0 when none). */
int store_record_users(Store *s, const char *hex, size_t *ret);

/* Resolves ref (tag, id, prefix) to a 64-hex id in ret (65 bytes) using t. */
int store_resolve(Store *s, const StoreTags *t, const char *ref, char ret[static STORE_HEX_LEN + 1], Error **err);

/* Removes the tmp/ leftovers and record-less image dirs (caller holds the
 * store lock exclusively). */
int store_clean_leftovers(Store *s, StoreGcStats *stats, Error **err);
