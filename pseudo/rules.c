/* rules.c — the fast filters of the word rules, derived from rules.def.
 *
 * The scanner finds greetings and sign-offs through several tables that must agree: a
 * lookup of the whole word (scan.c), a table of word lengths by first two bytes
 * (every search path of find.c), prefilter groups (AVX2 general search) and nibble
 * tables (AVX2 / AVX-512 keyword-only search).  Kept by hand they could drift apart
 * unnoticed, so they are computed from the one list once, before the first scan: a word
 * is either in all of them or in none. */
#include "pseudo/rules.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes that continue a word: ASCII letters and digits, '_' and every 8-bit byte. */
#define W16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
const unsigned char prules_word[256] = {
    W16(0), W16(0),
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,          /* ' ' .. '/' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,          /* '0' .. '?' */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,          /* '@' .. 'O' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1,          /* 'P' .. '_' */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,          /* '`' .. 'o' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,          /* 'p' .. DEL */
    W16(1), W16(1), W16(1), W16(1), W16(1), W16(1), W16(1), W16(1),
};
#undef W16

static const struct prule RULES[] = {
#define PRULE_GREETING(w) {w, sizeof w - 1, PRULE_KW_GREETING},
#define PRULE_SIGN_OFF(w) {w, sizeof w - 1, PRULE_KW_SIGN_OFF},
#define PRULE_STOP_WORD(w) {w, sizeof w - 1, PRULE_STOP},
#define PRULE_QUOTED_FIELD(w) {w, sizeof w - 1, PRULE_FIELD},
#include "pseudo/rules.def"
};

struct prules prules_live;

const struct prule *prules_list(size_t *n)
{
    *n = sizeof RULES / sizeof RULES[0];
    return RULES;
}

static unsigned char fold(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static bool ascii_letter(unsigned char c)
{
    return (unsigned)(fold(c) - 'a') < 26u;
}

int prules_derive(const struct prule *r, size_t n, struct prules *d)
{
    unsigned char firsts[26];
    unsigned nfirst = 0, ncol = 1;

    memset(d, 0, sizeof *d);
    memset(firsts, 0xFF, sizeof firsts);
    /* The keywords grouped by first letter and length, so that a lookup compares only
     * the words of one bucket. */
    for (unsigned i0 = 0; i0 < 26; i0++) {
        for (unsigned l = 0; l <= PRULES_KW_LEN; l++) {
            d->bucket[i0][l][0] = (unsigned char)d->nkw;
            for (size_t k = 0; k < n; k++) {
                if (r[k].kind != PRULE_KW_GREETING && r[k].kind != PRULE_KW_SIGN_OFF)
                    continue;
                if (r[k].len < 2 || r[k].len > PRULES_KW_LEN || !ascii_letter((unsigned char)r[k].w[0]))
                    return -1;
                if (fold((unsigned char)r[k].w[0]) - 'a' != (int)i0 || r[k].len != l)
                    continue;
                if (d->nkw == PRULES_KW_MAX)
                    return -1;
                d->kw[d->nkw++] = k;
            }
            d->bucket[i0][l][1] = (unsigned char)(d->nkw - d->bucket[i0][l][0]);
        }
    }
    for (unsigned x = 0; x < d->nkw; x++) {
        const struct prule *k = &r[d->kw[x]];
        unsigned char c0 = fold((unsigned char)k->w[0]), c1 = fold((unsigned char)k->w[1]);
        unsigned i0 = c0 - 'a', bit;

        for (size_t j = 0; j < k->len; j++)
            if (!prules_word[(unsigned char)k->w[j]])
                return -1;      /* never one word: it could not match */
        /* Length table: a column per second byte (ASCII letters in either case). */
        if (d->second[c1] == 0) {
            if (ncol == PRULES_SECOND_MAX)
                return -1;
            d->second[c1] = (unsigned char)ncol;
            if (ascii_letter(c1))
                d->second[c1 - 32] = (unsigned char)ncol;
            ncol++;
        }
        d->len2[i0][d->second[c1]] |= (uint16_t)(1u << k->len);
        /* Prefilter groups of the general AVX2 search: row (first & 31), bit (second & 7). */
        d->groups[c0 & 31] |= (unsigned char)(1u << (c1 & 7));
        /* Nibble tables of the keyword-only search: a bit per first letter (shared when
         * there are more than eight, which keeps a superset); the second byte's tables
         * carry the bits of the first letters it follows. */
        if (firsts[i0] == 0xFF)
            firsts[i0] = (unsigned char)(nfirst++ % 8);
        bit = 1u << firsts[i0];
        d->first_lo[c0 & 15] |= (unsigned char)bit;
        d->first_hi[c0 >> 4] |= (unsigned char)bit;
        d->first_hi[(c0 - 32) >> 4] |= (unsigned char)bit;
        d->second_lo[c1 & 15] |= (unsigned char)bit;
        d->second_hi[c1 >> 4] |= (unsigned char)bit;
        if (ascii_letter(c1))
            d->second_hi[(c1 - 32) >> 4] |= (unsigned char)bit;
    }
    d->rules = r;
    return 0;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void derive_live(void)
{
    size_t n;
    const struct prule *r = prules_list(&n);

    if (prules_derive(r, n, &prules_live) != 0) {
        /* A malformed rules.def: every test stops here. */
        fputs("mailret: pseudo/rules.def has a word the scanner cannot match\n", stderr);
        abort();
    }
}

void prules_init(void)
{
    pthread_once(&once, derive_live);
}

int prules_keyword(const unsigned char *w, size_t wl)
{
    const struct prules *d = &prules_live;
    unsigned i0;

    prules_init();
    if (wl < 2 || wl > PRULES_KW_LEN)
        return PRULE_NONE;
    i0 = (unsigned)fold(w[0]) - 'a';
    if (i0 >= 26)
        return PRULE_NONE;
    for (unsigned x = d->bucket[i0][wl][0], e = x + d->bucket[i0][wl][1]; x < e; x++) {
        const struct prule *k = &d->rules[d->kw[x]];
        size_t j = 1;
        while (j < wl && fold(w[j]) == fold((unsigned char)k->w[j]))
            j++;
        if (j == wl)
            return k->kind;
    }
    return PRULE_NONE;
}
