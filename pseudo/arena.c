/* arena.c — memory that lives as long as one pseudo_message call.
 *
 * A message makes a few dozen small allocations that all die together (name patterns and
 * their canonical forms, known addresses, token cache entries) and keeps needing the same
 * temporary buffers (decoded parts, re-encoded parts, RFC 2047 runs).  So small objects
 * come from a bump allocator (one block for an ordinary message, more for big ones) and
 * temporary buffers from a small pool that keeps their capacity (pbuf_pool, out.c), not
 * from malloc per object.  A pseudo_session keeps both from one message to the next
 * (parena_reset), so an ordinary message allocates almost nothing. */
#include "pseudo/arena.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A block after the first: its size, then the bytes (aligned like max_align_t). */
struct parena_block {
    struct parena_block *next;
    size_t cap;
    _Alignas(max_align_t) unsigned char bytes[];
};

#define PARENA_ALIGN (_Alignof(max_align_t))
#define PARENA_BLOCK (8u << 10)

void parena_init(parena *a)
{
    a->blocks = NULL;
    a->cur = NULL;
    a->used = 0;
    a->cap = 0;
}

void *parena_alloc(parena *a, size_t n, mr_error *err)
{
    size_t at = (a->used + PARENA_ALIGN - 1) & ~(size_t)(PARENA_ALIGN - 1);
    struct parena_block *b;
    size_t cap;

    if (n == 0)
        n = 1;
    if (a->cur != NULL && at <= a->cap && n <= a->cap - at) {
        a->used = at + n;
        return a->cur + at;
    }
    /* A new block; the rest of the old one is left unused. */
    if (n > SIZE_MAX - sizeof *b - PARENA_BLOCK) {
        mr_error_set(err, MR_E_NOMEM, "pseudonymiser allocation too large");
        return NULL;
    }
    cap = n > PARENA_BLOCK ? n : PARENA_BLOCK;
    b = malloc(sizeof *b + cap);
    if (b == NULL) {
        mr_error_set(err, MR_E_NOMEM, "out of memory (%zu bytes) in pseudonymiser", cap);
        return NULL;
    }
    b->next = a->blocks;
    b->cap = cap;
    a->blocks = b;
    a->cur = b->bytes;
    a->cap = cap;
    a->used = n;
    return b->bytes;
}

void *parena_dup(parena *a, const void *p, size_t n, mr_error *err)
{
    unsigned char *c = parena_alloc(a, n + 1, err);

    if (c != NULL) {
        if (n > 0)
            memcpy(c, p, n);
        c[n] = '\0';
    }
    return c;
}

void parena_reset(parena *a)
{
    struct parena_block *keep = NULL;

    /* The oldest block is the standard size unless the message's first object was
     * bigger: keep it, free the rest (a big message should not pin its memory). */
    while (a->blocks != NULL) {
        struct parena_block *b = a->blocks;
        a->blocks = b->next;
        if (a->blocks == NULL && b->cap == PARENA_BLOCK)
            keep = b;
        else
            free(b);
    }
    parena_init(a);
    if (keep != NULL) {
        keep->next = NULL;
        a->blocks = keep;
        a->cur = keep->bytes;
        a->cap = keep->cap;
    }
}

void parena_free(parena *a)
{
    while (a->blocks != NULL) {
        struct parena_block *b = a->blocks;
        a->blocks = b->next;
        free(b);
    }
    parena_init(a);
}
