/* pseudo/rules.h — the word rules of rules.def (greetings, sign-offs, stop words, field
 * labels) and the fast tables derived from them. */
#ifndef MAILRET_PSEUDO_RULES_H
#define MAILRET_PSEUDO_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes that continue a word: ASCII letters and digits, '_' and every 8-bit byte. */
extern const unsigned char prules_word[256];

enum prule_kind { PRULE_NONE, PRULE_KW_GREETING, PRULE_KW_SIGN_OFF, PRULE_STOP, PRULE_FIELD };

struct prule {
    const char *w;
    size_t len;
    unsigned char kind;         /* enum prule_kind */
};

#define PRULES_KW_MAX 64        /* greetings and sign-offs */
#define PRULES_KW_LEN 15        /* longest one: its length is a bit of a uint16_t */
#define PRULES_SECOND_MAX 32    /* distinct second bytes */

/* The fast filters of the greetings and sign-offs, all computed by prules_derive. */
struct prules {
    const struct prule *rules;
    unsigned char kw[PRULES_KW_MAX];            /* indexes of the keywords in rules */
    unsigned nkw;
    unsigned char bucket[26][PRULES_KW_LEN + 1][2]; /* by first letter, length: kw[] range */
    unsigned char second[256];                  /* second byte -> column of len2 (0: none) */
    uint16_t len2[26][PRULES_SECOND_MAX];       /* bit n: a keyword of n bytes begins so */
    unsigned char groups[32];                   /* AVX2 prefilter, as pfilter.pair_groups */
    unsigned char first_lo[16], first_hi[16];   /* keyword-only search: nibble tables */
    unsigned char second_lo[16], second_hi[16];
};

/* The rules of rules.def, in its order. */
const struct prule *prules_list(size_t *n);
/* Fills *d from r[0, n); -1 when a keyword cannot be matched (first byte not an ASCII
 * letter, a byte that ends a word, longer than PRULES_KW_LEN) or the tables are full. */
int prules_derive(const struct prule *r, size_t n, struct prules *d);
/* The tables every scan uses, derived once by prules_init (pfind_filter_init calls it;
 * thread-safe).  Tests may overwrite them to show that a table missing a word is noticed. */
extern struct prules prules_live;
void prules_init(void);
/* PRULE_KW_GREETING / PRULE_KW_SIGN_OFF if w[0, wl) is one (ASCII letters in either
 * case), else PRULE_NONE. */
int prules_keyword(const unsigned char *w, size_t wl);

#endif
