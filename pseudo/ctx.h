/* pseudo/ctx.h — the state of one message's run through the pseudonymiser, shared by the
 * scanner, the text layer and the MIME walk. */
#ifndef MAILRET_PSEUDO_CTX_H
#define MAILRET_PSEUDO_CTX_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "pseudo/arena.h"
#include "pseudo/codec.h"
#include "pseudo/names.h"
#include "pseudo/out.h"
#include "pseudo/pseudo.h"
#include "pseudo/sha.h"
#include "pseudo/token.h"

/* Decoded (base64 / quoted-printable) bodies kept from pass 1 for the passes after it:
 * decoding twice costs more than keeping them, up to these bounds. */
#define PDEC_CACHE_MAX 32
#define PDEC_CACHE_BYTES (4u << 20)

struct pdec_entry {
    const unsigned char *src;   /* the encoded body, in the message itself */
    size_t src_len;
    pbuf dec;
    pqp_lines lines;            /* quoted-printable: its lines (kept with their capacity) */
};

struct pseudo_ctx {
    const pseudo_key *key;
    const struct pseudo_policy *pol;
    bool collecting;        /* pass 1: only collect names and addresses */
    parena arena;
    pbuf_pool scratch;
    pnames names;
    paddrs addrs;
    psha sha;
    ptokens tokens;
    /* Scratch buffers reused for every address header (pass 1), freed with the context. */
    pbuf phrase, addr, comment, utf8;
    const unsigned char *msg;   /* the whole message (bodies inside it can be cached) */
    size_t msg_len;
    struct pdec_entry dec_cache[PDEC_CACHE_MAX];
    size_t n_dec, dec_bytes;
    struct pmime_cache *hcache;     /* header blocks parsed in pass 1 (mime.c) */
    size_t n_sealed;                /* parts sealed by the writing pass */
    mr_error *err;
};

/* A temporary buffer (empty, perhaps with capacity) and its return; pscratch_free at the
 * end of the message. */
static inline pbuf pscratch_get(struct pseudo_ctx *ctx)
{
    return pbuf_pool_get(&ctx->scratch);
}
static inline void pscratch_put(struct pseudo_ctx *ctx, pbuf *b)
{
    pbuf_pool_put(&ctx->scratch, b);
}
static inline void pscratch_free(struct pseudo_ctx *ctx)
{
    pbuf_pool_free(&ctx->scratch);
}

#endif
