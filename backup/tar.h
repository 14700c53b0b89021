/*
 * tar.h — a small POSIX ustar/pax writer and reader for archive volumes.
 *
 * Writer: deterministic (mode 0600, uid/gid 0, no user names, mtime given by the caller),
 * regular files only; a pax extended header ('x') is added only when a name does not fit
 * ustar's 100 bytes or a size does not fit its 11 octal digits.  The image ends with two
 * zero blocks, so GNU tar, bsdtar and Python's tarfile read it.
 * Reader: regular files ('0' or NUL) and pax 'x' headers (path, size); every header's
 * checksum is verified; anything else is refused (a volume holds nothing else).
 */
#ifndef MAILRET_BACKUP_TAR_H
#define MAILRET_BACKUP_TAR_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "backup/buf.h"
#include "common/error.h"

#define TAR_BLOCK 512
#define TAR_NAME_MAX 255

/* Bytes the entry will take in the image (headers + data + padding). */
size_t tar_entry_size(const char *name, size_t len);
/* Bytes of the end-of-archive marker. */
#define TAR_END_SIZE (2 * TAR_BLOCK)

int tar_write_entry(struct mr_buf *out, const char *name, time_t mtime,
                    const unsigned char *data, size_t len, mr_error *err);
int tar_write_end(struct mr_buf *out, mr_error *err);

/* Reader over a byte source: read exactly n bytes or fail (MR_E_PARSE on early EOF). */
typedef int (*tar_read_fn)(void *ctx, void *buf, size_t n, mr_error *err);

struct tar_entry {
    char name[TAR_NAME_MAX + 1];
    time_t mtime;
    unsigned char *data;    /* malloc'd, owned by the caller after tar_read_next */
    size_t len;
};

/* Returns 1 with *e filled, 0 at the end-of-archive marker, or a negative MR_E_* code.
 * Entries larger than max_len are refused (MR_E_LIMIT). */
int tar_read_next(tar_read_fn fn, void *ctx, size_t max_len, struct tar_entry *e,
                  mr_error *err);

/* Streaming: the next entry's header only (e->data NULL, e->len its size; 1), or 0 at the
 * end marker.  The caller then reads exactly e->len bytes through fn and calls
 * tar_skip_padding(fn, ctx, e->len) before the next header. */
int tar_read_header(tar_read_fn fn, void *ctx, size_t max_len, struct tar_entry *e,
                    mr_error *err);
int tar_skip_padding(tar_read_fn fn, void *ctx, size_t len, mr_error *err);

/* A tar_read_fn over a memory buffer. */
struct tar_mem_src {
    const unsigned char *data;
    size_t len, pos;
};
int tar_mem_read(void *ctx, void *buf, size_t n, mr_error *err);

#endif
