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

#include "common/error.h"

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

#endif
