/* buf.c — see buf.h. */
#include "backup/buf.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

int buf_reserve(struct mr_buf *b, size_t extra, mr_error *err)
{
    size_t need, cap;
    unsigned char *p;

    if (extra > (size_t)-1 - b->len)
        return mr_error_set(err, MR_E_LIMIT, "buffer size overflow");
    need = b->len + extra;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap = cap > (size_t)-1 / 2 ? need : cap * 2;
    if (b->cap_hint != 0 && need <= b->cap_hint && cap > b->cap_hint)
        cap = b->cap_hint;
    p = realloc(b->data, cap);
    if (p == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory (%zu bytes)", cap);
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(struct mr_buf *b, const void *data, size_t len, mr_error *err)
{
    int rc = buf_reserve(b, len, err);

    if (rc != 0)
        return rc;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int buf_zeros(struct mr_buf *b, size_t len, mr_error *err)
{
    int rc = buf_reserve(b, len, err);

    if (rc != 0)
        return rc;
    memset(b->data + b->len, 0, len);
    b->len += len;
    return 0;
}

void buf_free(struct mr_buf *b)
{
    if (b->data != NULL) {
        /* Only the bytes in use: len never shrinks without a wipe (buf_wipe_reset), so
         * nothing sensitive lies beyond it, and wiping the whole capacity would touch (and
         * fault in) pages that were never written. */
        OPENSSL_cleanse(b->data, b->len);
        free(b->data);
    }
    b->data = NULL;
    b->len = b->cap = 0;
}

void buf_wipe_reset(struct mr_buf *b)
{
    if (b->data != NULL)
        OPENSSL_cleanse(b->data, b->len);
    b->len = 0;
}
