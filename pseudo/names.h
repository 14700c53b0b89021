/* pseudo/names.h — display names learnt from a message and matched in its text, and the
 * message's known personal addresses. */
#ifndef MAILRET_PSEUDO_NAMES_H
#define MAILRET_PSEUDO_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "pseudo/arena.h"

struct pname_pat {
    unsigned char *pat;     /* folded pattern bytes (see pnames_match) */
    size_t len;
    bool latin1;            /* pattern is ISO-8859-1, else UTF-8 */
    bool exact_case;        /* short parts: must match as written */
    size_t canon;           /* index into canon[] */
    /* Computed once when the pattern is added, not at every prepare: the hash of its
     * folded first word (the chain it goes in) and that word's length. */
    uint64_t khash;
    size_t first_word;
};

#define PNAMES_SEEN 16

/* A pairs row folded to the groups of pnames.pair_groups. */
#define PNAMES_GROUPS(row) ((unsigned char)(((row) | (row) >> 8 | (row) >> 16 | (row) >> 24) & 0xFFu))

typedef struct pnames {
    struct pname_pat *pats; /* sorted longest first before scanning */
    size_t n_pats, cap_pats;
    unsigned char **canon;  /* normalised (NFC, case-folded) value per distinct name */
    size_t *canon_len;
    size_t n_canon, cap_canon;
    /* Per text byte: bit l (l < 63; bit 63: 63 or longer) set when some pattern can start
     * with that byte and has a first word of l bytes.  A word that passes neither is not
     * hashed at all (see pnames_could_match). */
    uint64_t first[256];
    /* The first two bytes of every pattern, by their low five bits: bit (b1 & 31) of
     * pairs[b0 & 31], a whole row when the second byte is a blank (it matches any
     * blanks).  Folding a letter either way only touches bit 5, so a text word can only
     * match a pattern if its own first two bytes pass this (pfind's exact test). */
    uint32_t pairs[32];
    /* The same rows folded to eight groups by the second byte's low three bits: bit
     * (b1 & 7) of pair_groups[b0 & 31] (for the AVX2 prefilter, find.c). */
    unsigned char pair_groups[32];
    /* Patterns chained by the hash of their folded first word (longest first), so a word
     * of text is compared only with patterns that begin with that same word.  The arrays
     * are kept between prepares (cap_index entries of next, 2 * cap_heads of heads: the
     * second half is scratch). */
    size_t *next, *heads;
    size_t n_heads, cap_index, cap_heads;
    size_t n_indexed;       /* patterns in the tables (pnames_prepare adds the rest) */
    bool prepared;
    /* The display names most recently added, cleaned: most are added again (every
     * address header, signature and pass names the same person), and a name added before
     * adds nothing, so it is recognised before it is split and folded.  A ring; the bytes
     * live in the arena. */
    struct pname_seen {
        uint64_t hash;
        const unsigned char *p;
        size_t len;
    } seen[PNAMES_SEEN];
    size_t n_seen;
    parena *arena;          /* patterns and canonical values live here (not owned) */
} pnames;

/* Arrays of more entries than this are freed between messages, not kept. */
#define PNAMES_KEEP 1024

void pnames_init(pnames *n, parena *arena);
/* Forget the names (before the arena is reset), keep the arrays' capacity. */
void pnames_reset(pnames *n);
void pnames_free(pnames *n);
/* Add a display name given in UTF-8 (the full name and its parts). */
int pnames_add(pnames *n, const unsigned char *utf8, size_t len, mr_error *err);
int pnames_prepare(pnames *n, mr_error *err);
/* Longest pattern matching at t[i], whose first word is t[i, we) (word boundary before
 * is the caller's job; after is checked here).  Returns the match length (0 if none) and
 * the canon index. */
size_t pnames_match(const pnames *n, const unsigned char *t, size_t len, size_t i, size_t we,
                    size_t *canon);

/* Quick filter before pnames_match: can a pattern start with the word t[i, we)? */
static inline bool pnames_could_match(const pnames *n, const unsigned char *t, size_t i,
                                      size_t we)
{
    size_t l = we - i;

    return (n->first[t[i]] >> (l < 63 ? l : 63)) & 1u;
}

/* Known personal addresses (normalised), for Message-ID rules. */
typedef struct paddrs {
    unsigned char **v;      /* the addresses live in arena */
    size_t *lens;
    size_t n, cap;
    parena *arena;
} paddrs;
void paddrs_reset(paddrs *a);
void paddrs_free(paddrs *a);
int paddrs_add(paddrs *a, const unsigned char *norm, size_t len, mr_error *err);

#endif
