/*
 * batchdir.h — the files of one batch, by logical name.  This module alone knows how a
 * batch's files are called and where they live; everyone else asks it.  A batch holds:
 *   vol-NNNN.p7m    a content volume (backup/volume.h), NNNN from 0001
 *   reid-NNNN.p7m   its re-identification volume
 *   locator.p7m     the encrypted per-message locator (backup/locator.h; newer batches)
 *   manifest.json   the signed table of contents, written last (backup/archive.h)
 *   expired.json    the tombstone of an expired batch (purge/tombstone.h)
 *
 * Storage is addressed as (batch directory, logical name).  The only store today is a
 * local directory; the operations are the ones an object store can also offer (read,
 * write whole, exists, list, remove), so that another store can sit under this interface.
 * Volumes are streamed by volume.c from a local path: batchdir_path is that store's way
 * of handing one out.
 */
#ifndef MAILRET_BACKUP_BATCHDIR_H
#define MAILRET_BACKUP_BATCHDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/error.h"
#include "store/store.h"

#define BATCHDIR_NAME_MAX 32
#define BATCHDIR_PATH_MAX 4400

enum batchdir_file {
    BATCHDIR_MANIFEST,
    BATCHDIR_TOMBSTONE,
    BATCHDIR_LOCATOR,
};

/* The logical name of a single-instance file ("manifest.json", ...). */
const char *batchdir_name(enum batchdir_file f);
/* The names of volume no (1-based) and its re-identification file. */
void batchdir_volume_name(unsigned no, char out[BATCHDIR_NAME_MAX]);
void batchdir_reid_name(unsigned no, char out[BATCHDIR_NAME_MAX]);
/* A manifest's volume names are used to open files: only our own shape is accepted
 * (the right prefix, no path separator, shorter than BATCHDIR_NAME_MAX). */
bool batchdir_is_volume_name(const char *name);
bool batchdir_is_reid_name(const char *name);
/* Archive content: any file with a volume's or a reid file's prefix, listed or not. */
bool batchdir_is_content(const char *name);

/* The local path of name in dir (for streaming readers and writers, and for messages). */
int batchdir_path(const char *dir, const char *name, char *out, size_t size, mr_error *err);
/* True if name exists in dir; its size into *size (may be NULL). */
bool batchdir_exists(const char *dir, const char *name, unsigned long long *size);
/* Read a whole file of at most max bytes into a malloc'd buffer with a NUL after the
 * last byte.  MR_E_NOTFOUND when absent, MR_E_LIMIT when larger than max. */
int batchdir_read(const char *dir, const char *name, size_t max, unsigned char **out,
                  size_t *len, mr_error *err);
/* Write a whole file durably (temporary file, fsync, rename, fsync directory); an
 * existing file of that name is replaced atomically. */
int batchdir_write(const char *dir, const char *name, const void *data, size_t len,
                   mr_error *err);
/* Remove name (absent is not an error); batchdir_sync makes removals durable. */
int batchdir_remove(const char *dir, const char *name, mr_error *err);
int batchdir_sync(const char *dir, mr_error *err);
/* Call fn for every file in dir ("." and ".." left out); stops at fn's first non-zero. */
typedef int (*batchdir_list_fn)(void *ctx, const char *name, mr_error *err);
int batchdir_list(const char *dir, batchdir_list_fn fn, void *ctx, mr_error *err);
/* Remove every file and then the directory itself (best effort, for discarding an
 * unfinished batch); MR_E_NOTFOUND-free: a missing dir is 0. */
int batchdir_destroy(const char *dir, mr_error *err);

/* ---- the object store mirror (batchdir_store.c, docs/STORE.md) ------------------------
 * With [archive] store = s3 every batch directory under the archive root is mirrored to
 * the store: the object of a file is <prefix>/<path relative to root>/<name>.  The local
 * directory stays the complete copy; these functions only copy it out. */

/* Mirror batches under root to st (not owned; NULL = none) with key prefix (NULL or ""
 * = none; no leading or trailing '/').  One store per process: the command attaches it
 * after reading the configuration, and every module that changes a batch pushes it. */
int batchdir_store_attach(const char *root, mr_store *st, const char *prefix, mr_error *err);
void batchdir_store_detach(void);
/* The attached store; NULL when none. */
mr_store *batchdir_store_current(void);
/* The object key of file name in batch directory dir (which must lie under root). */
int batchdir_store_key(const char *dir, const char *name, char *key, size_t size,
                       mr_error *err);

struct batchdir_push_stats {
    size_t put;         /* files stored now (and read back) */
    size_t skipped;     /* already in the store: read back and equal to the local file */
    size_t deleted;     /* objects the local directory no longer has */
};

/* Mirror one batch directory (it must hold a manifest or a tombstone) to the attached
 * store; 0 at once when none is attached.  Every file is put unless the store's object
 * already verifies (store_verify: read back, size and SHA-256), then read back; the
 * manifest goes last, so a store never holds a manifest before the files it lists.
 * Objects the directory no longer has are deleted only when it holds no manifest (an
 * expired batch: content first, the manifest last, after the tombstone is in); while
 * the manifest is there a local file that went missing never takes the store's copy
 * with it.  retain_until (0 = none) locks new objects where the bucket has Object Lock
 * enabled (store_put_file_until).  Idempotent: a push interrupted at any point is
 * completed by the next. */
int batchdir_store_push(const char *dir, time_t retain_until, mr_error *err);
/* The same, counting what was done (stats may be NULL). */
int batchdir_store_push_stats(const char *dir, time_t retain_until,
                              struct batchdir_push_stats *stats, mr_error *err);
/* Push only when the store's listing of the batch differs from the local files by name
 * or size (one listing request when they agree; a same-size change is verify's to find):
 * for expired batches, and for batches written before the store was configured or whose
 * push failed.  *pushed says whether it did. */
int batchdir_store_sync(const char *dir, time_t retain_until, bool *pushed, mr_error *err);

/* ---- reading from the object store on IT's machine (batchdir_fetch.c) ----
 * With a store attached (batchdir_store_attach) and batchdir_store_pull_tree called,
 * the directory given as root is a cache of the store, and the store decides what
 * exists: batchdir_exists, batchdir_read, batchdir_read_path and batchdir_list answer
 * from the store's listing for directories under root, and a file is fetched into the
 * cache when it is first read.  Volumes and reid files, which never change once
 * written, are taken from the cache when its copy has the listed size; manifest,
 * locator and tombstone are fetched again once per process (a hold re-signs the
 * manifest).  Nothing here checks content: every reader checks what it reads against
 * the signed manifest as it does for local files, and drops a cached copy that fails
 * (batchdir_store_evict).  Without pull_tree (the host, whose [archive] dir is the
 * primary copy) none of this is active. */

/* List the store, create root/<mailbox>/<batch>/ for every batch in it and make root a
 * cache of the store; 0 and nothing done when no store is attached. */
int batchdir_store_pull_tree(const char *root, mr_error *err);
/* Forget the listing (root is a plain directory again). */
void batchdir_store_pull_release(void);
/* True while root is a cache of the attached store. */
bool batchdir_store_caching(void);
/* When caching: 1 if the store holds name in dir (its size into *size, may be NULL), 0
 * if not; -1 when dir is not under the cache (ask the local file system). */
int batchdir_store_lookup(const char *dir, const char *name, unsigned long long *size);
/* When caching: batchdir_list over the store's objects in dir; 1 when dir is not under
 * the cache (list the local directory). */
int batchdir_store_list(const char *dir, batchdir_list_fn fn, void *ctx, mr_error *err);
/* True if dir is under the cache root and the store holds no object in it. */
bool batchdir_store_dir_gone(const char *dir);
/* Fetch name into dir unless the cache holds it already (see above): MR_E_NOTFOUND,
 * naming the file, when the store has no such object.  0 when not caching. */
int batchdir_store_fetch(const char *dir, const char *name, mr_error *err);
/* The path of name in dir for reading: batchdir_path, fetched first when caching. */
int batchdir_read_path(const char *dir, const char *name, char *out, size_t size,
                       mr_error *err);
/* A cached copy that failed its check: removed from the cache (never a file of a plain
 * local archive), so that the next run fetches it again. */
void batchdir_store_evict(const char *dir, const char *name);
/* When caching: read the stored object back and compare its size and SHA-256 (64 hex
 * digits) with the manifest's; MR_E_NOTFOUND / MR_E_TAMPERED naming the file.  Returns
 * 1 without checking anything when dir is not under the cache (check the local file). */
int batchdir_store_verify(const char *dir, const char *name, unsigned long long size,
                          const char *sha256_hex, mr_error *err);
/* Put a file IT wrote into a cached batch (the locator of `locate --add`) into the
 * store, read it back, and list it; 1 when not caching (nothing to do). */
int batchdir_store_put_new(const char *dir, const char *name, mr_error *err);

#endif
