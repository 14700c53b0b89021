/* buf.h — a growable byte buffer for the archive pipeline (tar images, gzip output). */
#ifndef MAILRET_BACKUP_BUF_H
#define MAILRET_BACKUP_BUF_H

#include <stddef.h>

#include "common/error.h"

struct mr_buf {
    unsigned char *data;
    size_t len, cap;
    size_t cap_hint;    /* expected final size (0 = none): growth stops doubling past it,
                           so a 64 MiB volume image does not sit in a 128 MiB allocation */
};

int buf_append(struct mr_buf *b, const void *data, size_t len, mr_error *err);
/* Room for extra more bytes without changing len. */
int buf_reserve(struct mr_buf *b, size_t extra, mr_error *err);
/* Append len zero bytes. */
int buf_zeros(struct mr_buf *b, size_t len, mr_error *err);
/* Free (wiping the bytes in use first: buffers may hold message plaintext) and reset.
 * Rule for every user: shrink len only through buf_wipe_reset. */
void buf_free(struct mr_buf *b);
/* Wipe the bytes in use and set len to 0, keeping the allocation for reuse. */
void buf_wipe_reset(struct mr_buf *b);

#endif
