/* pseudo/sha.h — SHA-256 of the reid record and keyed HMAC-SHA-256 of the tokens. */
#ifndef MAILRET_PSEUDO_SHA_H
#define MAILRET_PSEUDO_SHA_H

#include <stddef.h>

#include "common/error.h"

/* SHA-256 fetched at most once per pseudo_message call (lazily) and shared by the HMAC
 * tokens and the reid record; ctx is a scratch context for whole-buffer digests. */
typedef struct psha {
    struct evp_md_st *md;
    struct evp_md_ctx_st *ctx;
} psha;

/* Fetch s->md if not yet done. */
int psha_md(psha *s, mr_error *err);
int psha_digest(psha *s, const unsigned char *p, size_t len, unsigned char out[32],
                mr_error *err);
void psha_free(psha *s);

/* HMAC-SHA-256 under one key, keyed once (the states after key^ipad and key^opad) and
 * wiped by psha_hmac_free.  s: for the algorithm where the EVP path needs it. */
typedef struct psha_hmac psha_hmac;
int psha_hmac_new(psha *s, const unsigned char *key, size_t key_len, psha_hmac **out,
                  mr_error *err);
/* HMAC over a || b. */
int psha_hmac_compute(psha_hmac *h, const unsigned char *a, size_t a_len,
                      const unsigned char *b, size_t b_len, unsigned char out[32],
                      mr_error *err);
void psha_hmac_free(psha_hmac *h);

#endif
