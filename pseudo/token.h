/* pseudo/token.h — normalisation of values, HMAC tokens, the per-message token cache
 * and list. */
#ifndef MAILRET_PSEUDO_TOKEN_H
#define MAILRET_PSEUDO_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "pseudo/arena.h"
#include "pseudo/pseudo.h"
#include "pseudo/sha.h"

/* Longest token shape: "p-" + token + "@pseudonym.invalid" (and escaped forms). */
#define PSEUDO_SHAPE_MAX 64

struct ptok_entry;

typedef struct ptokens {
    struct ptok_entry **slots;   /* open-addressing hash of (kind, normalised value) */
    size_t n_slots, n_used;
    struct ptok_entry **order;   /* distinct tokens actually used, first-seen order */
    size_t n_order, cap_order;
    /* HMAC-SHA-256 keyed at the first token (for a session, once for all messages). */
    psha_hmac *hmac;
    psha *sha;                  /* the message's SHA-256 (not owned) */
    parena *arena;              /* where the entries live (not owned) */
} ptokens;

/* A hash table bigger than this is freed between messages, not cleared. */
#define PTOKENS_KEEP_SLOTS 1024

void ptokens_init(ptokens *t, psha *sha, parena *arena);
/* Forget the tokens of a message (before the arena is reset); the HMAC key schedule is
 * kept for the next message under the same key. */
void ptokens_reset(ptokens *t);
void ptokens_free(ptokens *t);

/* Normalise a raw value of a kind into out (malloc'd).  Email: trimmed, lower-cased;
 * CPR: 10 digits; phone: 8 national digits (+45/0045 dropped); name: NFC + case-folded,
 * whitespace collapsed; IP: lower-cased, trimmed.  MR_E_INVALID if nothing is left. */
int ptoken_normalise(enum pseudo_kind kind, const unsigned char *v, size_t len,
                     unsigned char **out, size_t *out_len, mr_error *err);

/* The same, into buf (cap bytes) when it fits: then *out == buf and nothing is to be
 * freed; otherwise *out is malloc'd. */
int ptoken_normalise_buf(enum pseudo_kind kind, const unsigned char *v, size_t len,
                         unsigned char *buf, size_t cap, unsigned char **out, size_t *out_len,
                         mr_error *err);

/* Bare token of an already normalised value. */
int ptoken_compute(const pseudo_key *key, enum pseudo_kind kind, const unsigned char *norm,
                   size_t len, char out[PSEUDO_TOKEN_LEN + 1], mr_error *err);

/* Token of a normalised value, cached per message; remembered in the token list when
 * list is true.  *token points into the cache. */
int ptokens_get(ptokens *t, const pseudo_key *key, enum pseudo_kind kind,
                const unsigned char *norm, size_t len, bool list, const char **token,
                mr_error *err);
/* Forget the token list (not the cache), for a pass that starts over. */
void ptokens_reset_list(ptokens *t);
size_t ptokens_count(const ptokens *t);
void ptokens_at(const ptokens *t, size_t i, enum pseudo_kind *kind, const char **token);

/* Writes the shape of a token ("CPR-<token>" ...) into out; returns its length. */
size_t ptoken_shape(enum pseudo_kind kind, const char *token, char out[PSEUDO_SHAPE_MAX]);

#endif
