/* pseudo/out.h — output buffers that record edits (the reversal data), and a pool of
 * temporary buffers. */
#ifndef MAILRET_PSEUDO_OUT_H
#define MAILRET_PSEUDO_OUT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

typedef struct pbuf {
    unsigned char *p;
    size_t len, cap;
} pbuf;

int pbuf_reserve(pbuf *b, size_t extra, mr_error *err);
int pbuf_append(pbuf *b, const void *data, size_t n, mr_error *err);
void pbuf_free(pbuf *b);

/* One edit: out[out_off, out_off+out_len) was original[orig_off, orig_off+orig_len). */
struct pedit {
    size_t out_off, out_len;
    size_t orig_off, orig_len;
};

/* Output under construction.  When base is set (the top-level output), every replacement
 * records an edit whose original bytes lie in base; temporary outputs for decoded parts
 * (base NULL) only collect bytes, since their parent records the whole encoded span. */
typedef struct pout {
    pbuf buf;
    struct pedit *edits;
    size_t n_edits, cap_edits;
    const unsigned char *base;
    size_t base_len;
} pout;

void pout_init(pout *o, const unsigned char *base, size_t base_len);
void pout_free(pout *o);
int pout_copy(pout *o, const unsigned char *p, size_t n, mr_error *err);
int pout_replace(pout *o, const unsigned char *orig, size_t orig_len,
                 const unsigned char *rep, size_t rep_len, mr_error *err);

/* Apply edits to pseudonymised bytes (no checks beyond bounds): used by verification and
 * by pseudo_restore after it has validated the framing. */
int pedits_apply(const unsigned char *pseudo, size_t pseudo_len, const struct pedit *edits,
                 size_t n_edits, const unsigned char *orig_base, pbuf *out, mr_error *err);

/* A pool of temporary buffers that keep their capacity: the same temporaries (decoded
 * parts, re-encoded parts, RFC 2047 runs) are needed again and again within a message.
 * A buffer bigger than PBUF_POOL_KEEP is freed when it comes back, so that one huge part
 * does not pin its memory for the rest of the message. */
#define PBUF_POOL_MAX 8
#define PBUF_POOL_KEEP (1u << 20)
typedef struct pbuf_pool {
    pbuf v[PBUF_POOL_MAX];
    size_t n;
} pbuf_pool;

/* An empty buffer, perhaps with capacity. */
pbuf pbuf_pool_get(pbuf_pool *pool);
/* Back to the pool (or freed); *b is emptied. */
void pbuf_pool_put(pbuf_pool *pool, pbuf *b);
void pbuf_pool_free(pbuf_pool *pool);

#endif
