/* out.c — growable buffers and the edit-recording output of the pseudonymiser.
 * Every byte of the pseudonymised message is written through pout_copy (unchanged input)
 * or pout_replace (an edit), so the edit list is complete by construction. */
#include "pseudo/out.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int pbuf_reserve(pbuf *b, size_t extra, mr_error *err)
{
    size_t need, cap;
    unsigned char *np;

    if (extra > SIZE_MAX - b->len - 1)
        return mr_error_set(err, MR_E_NOMEM, "pseudonymiser buffer size overflow");
    need = b->len + extra;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    np = realloc(b->p, cap);
    if (np == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory (%zu bytes) in pseudonymiser",
                            cap);
    b->p = np;
    b->cap = cap;
    return 0;
}

int pbuf_append(pbuf *b, const void *data, size_t n, mr_error *err)
{
    int rc;

    /* Room already there (nearly always): no call, no overflow check (n <= cap - len). */
    if (n <= b->cap - b->len) {
        if (n > 0) {
            memcpy(b->p + b->len, data, n);
            b->len += n;
        }
        return 0;
    }
    rc = pbuf_reserve(b, n, err);
    if (rc != 0)
        return rc;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

void pbuf_free(pbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void pout_init(pout *o, const unsigned char *base, size_t base_len)
{
    memset(o, 0, sizeof *o);
    o->base = base;
    o->base_len = base_len;
}

void pout_free(pout *o)
{
    pbuf_free(&o->buf);
    free(o->edits);
    o->edits = NULL;
    o->n_edits = o->cap_edits = 0;
}

int pout_copy(pout *o, const unsigned char *p, size_t n, mr_error *err)
{
    pbuf *b = &o->buf;

    /* As pbuf_append, its common case here: most copies are the few bytes between two
     * matches, into a buffer that has room. */
    if (n <= b->cap - b->len) {
        if (n > 0) {
            memcpy(b->p + b->len, p, n);
            b->len += n;
        }
        return 0;
    }
    return pbuf_append(b, p, n, err);
}

int pout_replace(pout *o, const unsigned char *orig, size_t orig_len,
                 const unsigned char *rep, size_t rep_len, mr_error *err)
{
    size_t out_off = o->buf.len;
    int rc;

    if (orig_len == rep_len && memcmp(orig, rep, rep_len) == 0)
        return pout_copy(o, rep, rep_len, err);
    rc = pbuf_append(&o->buf, rep, rep_len, err);
    if (rc != 0 || o->base == NULL)
        return rc;
    /* The original bytes must lie in the message itself: the reid data refers to them
     * by offset until it is serialised. */
    if (orig < o->base || (size_t)(orig - o->base) > o->base_len ||
        orig_len > o->base_len - (size_t)(orig - o->base))
        return mr_error_set(err, MR_E_INTERNAL, "pseudonymiser edit outside the message");
    if (o->n_edits > 0) {
        struct pedit *last = &o->edits[o->n_edits - 1];
        /* Adjacent edits (e.g. a token right after another) merge into one. */
        if (last->out_off + last->out_len == out_off &&
            last->orig_off + last->orig_len == (size_t)(orig - o->base)) {
            last->out_len += rep_len;
            last->orig_len += orig_len;
            return 0;
        }
    }
    if (o->n_edits == o->cap_edits) {
        size_t cap = o->cap_edits ? o->cap_edits * 2 : 32;
        struct pedit *ne = realloc(o->edits, cap * sizeof *ne);
        if (ne == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory for pseudonymiser edits");
        o->edits = ne;
        o->cap_edits = cap;
    }
    o->edits[o->n_edits++] = (struct pedit){
        .out_off = out_off,
        .out_len = rep_len,
        .orig_off = (size_t)(orig - o->base),
        .orig_len = orig_len,
    };
    return 0;
}

int pedits_apply(const unsigned char *pseudo, size_t pseudo_len, const struct pedit *edits,
                 size_t n_edits, const unsigned char *orig_base, pbuf *out, mr_error *err)
{
    size_t pos = 0;
    int rc;

    for (size_t i = 0; i < n_edits; i++) {
        const struct pedit *e = &edits[i];
        if (e->out_off < pos || e->out_off > pseudo_len || e->out_len > pseudo_len - e->out_off)
            return mr_error_set(err, MR_E_PARSE, "re-identification edit %zu out of range", i);
        rc = pbuf_append(out, pseudo + pos, e->out_off - pos, err);
        if (rc == 0)
            rc = pbuf_append(out, orig_base + e->orig_off, e->orig_len, err);
        if (rc != 0)
            return rc;
        pos = e->out_off + e->out_len;
    }
    return pbuf_append(out, pseudo + pos, pseudo_len - pos, err);
}

pbuf pbuf_pool_get(pbuf_pool *pool)
{
    if (pool->n > 0) {
        pbuf b = pool->v[--pool->n];
        b.len = 0;
        return b;
    }
    return (pbuf){0};
}

void pbuf_pool_put(pbuf_pool *pool, pbuf *b)
{
    /* Kept for the next user unless the pool is full or the buffer is big (a huge
     * part should not pin its memory for the rest of the message). */
    if (b->p != NULL && pool->n < PBUF_POOL_MAX && b->cap <= PBUF_POOL_KEEP)
        pool->v[pool->n++] = *b;
    else
        pbuf_free(b);
    *b = (pbuf){0};
}

void pbuf_pool_free(pbuf_pool *pool)
{
    while (pool->n > 0)
        pbuf_free(&pool->v[--pool->n]);
}
