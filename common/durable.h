/*
 * durable.h — crash-safe file writes: write a temporary file beside the target, fsync it,
 * rename it over the target, fsync the directory.  After durable_commit returns 0 the new
 * content survives a power cut; before, the old content (or nothing) is what survives —
 * never a half-written file under the final name.
 */
#ifndef MAILRET_COMMON_DURABLE_H
#define MAILRET_COMMON_DURABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"

typedef struct durable_file durable_file;

/* Start writing path (created with mode, e.g. 0600) via "path.tmp.<pid>.<n>". */
int durable_open(durable_file **out, const char *path, mode_t mode, mr_error *err);
/* Append bytes; a short write or ENOSPC is an error (MR_E_NOSPACE for a full disk). */
int durable_write(durable_file *f, const void *data, size_t len, mr_error *err);
/* The file descriptor, for callers that stream with their own writer (e.g. a BIO). */
int durable_fd(const durable_file *f);
/* fsync, close, rename over path, fsync directory; frees f whatever the result. */
int durable_commit(durable_file *f, mr_error *err);
/* Close and unlink the temporary file; frees f.  NULL is allowed. */
void durable_abort(durable_file *f);

/* The whole thing for a buffer in memory. */
int durable_write_file(const char *path, const void *data, size_t len, mode_t mode,
                       mr_error *err);
/* fsync a directory (after creating, renaming or unlinking in it). */
int durable_fsync_dir(const char *dir, mr_error *err);
/* mkdir -p with mode, fsyncing each parent whose entries changed. */
int durable_mkdirs(const char *dir, mode_t mode, mr_error *err);
/* Overwrite the file's bytes with zeros, fsync, unlink, fsync the directory.  (On
 * copy-on-write or journalled-data file systems the overwrite is best effort; mailret's
 * guarantee against old copies is crypto-shredding, not this.) */
int durable_shred(const char *path, mr_error *err);

/* Remove the temporary files (<name>.tmp.<pid>.<n>) that writers killed mid-write left in
 * dir: those whose process is gone.  shred: overwrite them first (key material).  A
 * missing dir is not an error; *removed (may be NULL) counts them. */
int durable_sweep_tmp(const char *dir, bool shred, size_t *removed, mr_error *err);

#endif
