/* store-private.h: what the store's files (store.c, store-record.c,
 * store-pull.c, store-measure.c, store-gc.c) share and nobody else sees: the Store struct,
 * lock helpers, atomic file writes and the tags table. */
#pragma once

#include <dirent.h>
#include <pthread.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/base/fs-util.h"
#include "images/store/store.h"

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
 * locked fd (close it to unlock) or a negative errno (-EWOULDBLOCK). A lock
 * file unlinked while we waited for it is no lock: we take the new one. */
int store_lock(Store *s, const char *name, int how, Error **err);

/* Takes image hex's lock (locks/image-<hex>.lock) with flock mode how;
 * returns the lock fd as store_lock() does. */
int store_lock_image(Store *s, const char *hex, int how, Error **err);

/* Removes image hex's lock file, which the caller holds exclusively, unless
 * the image has a record: after a failed pull or a removal the store keeps no
 * lock file for an image it does not have. Waiters see it unlinked and take
 * a new one. */
void store_lock_image_unlink(Store *s, const char *hex);

/* Resolves ref (as store_inspect() does) into hex under a shared tags lock. */
int store_resolve_ref(Store *s, const char *ref, char hex[static STORE_HEX_LEN + 1], Error **err);

/* Opens name below dir_fd as a directory stream without following a
 * symlink; NULL with errno set on failure. */
DIR *store_dir_at(int dir_fd, const char *name);

/* Writes data to dir_fd/name atomically: a temp file in tmp/, fsync,
 * rename, fsync of the directory. Not write_file_atomic() (fs-util.h): the
 * temporary lives in tmp/, where gc finds what a killed process left. */
int store_write_atomic(Store *s, int dir_fd, const char *name, const void *data, size_t n, Error **err);

/* fsync of a directory fd. */
int store_fsync_dir(int dir_fd, const char *what, Error **err);

/* A fresh unique name under tmp/ ("<prefix>-<random hex>") in *ret. */
int store_tmp_name(const char *prefix, char **ret);


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
/* Takes the tags lock (flock mode how) and loads tags.json into *ret; returns
 * the lock fd (the caller closes it to unlock) or a negative errno. */
int store_tags_lock_load(Store *s, int how, StoreTags *ret, Error **err);
int store_tags_save(Store *s, const StoreTags *t, Error **err);
/* Sets name -> id (replacing). Returns 0 or -ENOMEM / -E2BIG. */
int store_tags_set(StoreTags *t, const char *name, const char *id, Error **err);
/* Removes name; returns true if it was there. */
bool store_tags_unset(StoreTags *t, const char *name);
/* Index of name or -1. */
ssize_t store_tags_find(const StoreTags *t, const char *name);
/* Points name at id in t and saves tags.json, unless it already does (the
 * caller holds the tags lock exclusively). */
int store_tags_point(Store *s, StoreTags *t, const char *name, const char *id, Error **err);


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

/* Layer measuring (store-measure.c): tar entries and uncompressed bytes of
 * a pull's layers, against caps on their sum (the decompression-bomb
 * guard). */

typedef struct StoreLayerMeasure {
        uint64_t bytes, entries;
        bool known;
} StoreLayerMeasure;

/* The running sum over a pull's layers and its caps; shared by measurers on
 * several threads. */
typedef struct StoreMeasureTotals {
        pthread_mutex_t lock;
        uint64_t bytes, entries;
        uint64_t max_bytes, max_entries;
} StoreMeasureTotals;
void store_measure_totals_init(StoreMeasureTotals *t, uint64_t max_bytes, uint64_t max_entries);
void store_measure_totals_done(StoreMeasureTotals *t);
/* Adds a layer's (part) to t; -EFBIG ("layer <digest> expands past N
 * bytes|entries") and t unchanged when a cap would be crossed. */
int store_measure_totals_add(StoreMeasureTotals *t, const char *digest, uint64_t bytes, uint64_t entries,
                             Error **err);

/* Reads the layer blob open at fd once and measures it into *ret, adding to
 * t. -EBADMSG for a bad archive, -EFBIG past a cap (t then unchanged). */
int store_measure_fd(int fd, const char *digest, StoreMeasureTotals *t, StoreLayerMeasure *ret, Error **err);

/* A layer measured while it streams in: a thread reading a bounded ring
 * (1 MiB) that feed() fills. One writer at a time; free() from any state
 * stops and joins the thread (never leaves it blocked). */
typedef struct StoreStreamMeasure StoreStreamMeasure;
int store_stream_measure_new(StoreStreamMeasure **ret, const char *digest, StoreMeasureTotals *t, Error **err);
/* Appends n bytes (blocks while the ring is full). Returns 0, or -EFBIG as
 * soon as the measurer has seen a cap crossed; other errors (a bad archive)
 * wait for finish(), so the digest check can speak first. */
int store_stream_measure_feed(StoreStreamMeasure *s, const void *data, size_t n, Error **err);
/* Ends the stream and joins the thread: 0 and the layer's counts, or its
 * error (-EBADMSG, -EFBIG). Call free() after. */
int store_stream_measure_finish(StoreStreamMeasure *s, StoreLayerMeasure *ret, Error **err);
/* Stops (abandoning the stream), joins, and frees; unless finish() was
 * called, what it had counted is taken back out of the totals (a restarted
 * blob starts from zero). NULL-safe; returns NULL. */
StoreStreamMeasure *store_stream_measure_free(StoreStreamMeasure *s);

/* Writes images/<hex>/layers.measure (the image dir open at image_dir_fd):
 * one "<digest> <entries> <bytes>" line per known entry of ms (parallel to
 * m->layers), atomically. */
int store_measure_cache_write(Store *s, int image_dir_fd, const OciManifest *m, const StoreLayerMeasure *ms,
                              Error **err);
/* Finds digest's numbers in the cache of any recorded image; false when
 * none has them (or a cache file is malformed). */
bool store_measure_cache_lookup(Store *s, const char *digest, StoreLayerMeasure *ret);
