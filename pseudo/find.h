/* pseudo/find.h — candidate positions for the scanner, 64 bytes at a time. */
#ifndef MAILRET_PSEUDO_FIND_H
#define MAILRET_PSEUDO_FIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pseudo/names.h"
#include "pseudo/rules.h"

/* The candidate search uses SSE2 where the compiler targets it (x86-64 always), else a
 * plain loop; -DPSEUDO_NO_SIMD (CMake option MAILRET_PSEUDO_NO_SIMD) forces the latter.
 * With GCC or Clang on x86-64 an AVX2 classifier is compiled too and used when the CPU
 * has AVX2 (checked at run time): it also computes the prefilter of word starts.  An
 * AVX-512BW one (64 bytes at once, masks straight from the compares) is used before it
 * where the CPU has that. */
#if defined(__SSE2__) && !defined(PSEUDO_NO_SIMD)
#define PFIND_SSE2 1
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PFIND_AVX2 1
#define PFIND_AVX512 1
#endif
#endif

/* What can start a match, for pfind_next: first-byte classes of a word and two non-word
 * bytes. */
#define PFIND_HEX    0x01u   /* [0-9A-Fa-f]: IPv6 / IPv4 */
#define PFIND_DIGIT  0x02u   /* [0-9]: CPR, phone */
#define PFIND_CTNI   0x04u   /* 'C' 'T' 'N' 'I': token-shaped text */
#define PFIND_PLUS   0x08u   /* '+': international phone number */
#define PFIND_COLON  0x10u   /* ':': IPv6 */

struct pfilter {
    unsigned cls;               /* PFIND_* */
    const uint64_t *first;      /* per first byte, word lengths of learnt names (pnames) */
    const uint32_t *name_pairs; /* pnames.pairs: their first two bytes */
    unsigned kw_mask;           /* 0xFFFF: greetings and sign-offs (prules_live), else 0 */
    bool avx2;                  /* classify with AVX2 and prefilter (the CPU has it) */
    bool avx512;                /* with AVX-512BW instead (the CPU has it; implies avx2) */
    bool none;                  /* nothing asked for: no position is a candidate */
    /* For the AVX2 prefilter: per low five bits of a first byte, bit (b & 7) set when a
     * greeting or a learnt name has such a first byte and a second byte b. */
    unsigned char pair_groups[32];
};

/* names: the learnt names (prepared), or NULL for none; keywords: greetings and sign-offs.
 * f->avx2 is set when the CPU has AVX2, f->avx512 when it has AVX-512BW too (a test may
 * clear either to try the other paths: avx512 first, then avx2). */
void pfind_filter_init(struct pfilter *f, unsigned cls, const pnames *names, bool keywords);

/* An iterator over the candidate positions of one text under one filter: the bit masks of
 * the current 64-byte window are kept, so a scanner that resumes after each candidate does
 * not classify the same bytes again. */
struct pfind {
    const struct pfilter *f;
    const unsigned char *t;
    size_t len;
    size_t base, n;             /* the window t[base, base + n) */
    uint64_t hits;              /* its candidates */
};

void pfind_start(struct pfind *it, const struct pfilter *f, const unsigned char *t, size_t len);

/* The first position p in [from, limit) where the scanner has to look: a word start (a
 * word byte after a non-word byte; from itself counts as one) whose first byte and length
 * pass the filter, a '+' / ':' that it asks for, or (under PFIND_DIGIT) a digit after a
 * word byte that is not a digit.  limit if there is none.  Word
 * lengths are measured to the end of the word even past limit. */
size_t pfind_next(struct pfind *it, size_t from, size_t limit);

/* The definition pfind_next follows, one position at a time (for the tests): is p a
 * candidate when the scanner resumes at from (from <= p)? */
bool pfind_candidate(const struct pfilter *f, const unsigned char *t, size_t len, size_t from,
                     size_t p);

/* First non-word byte at or after j (len if none). */
size_t pfind_word_end(const unsigned char *t, size_t len, size_t j);

/* The masks of up to 64 bytes: bit k set when t[k] is a word byte, an ASCII letter or
 * digit, a hex digit, '+', ':', '.', a digit.  Exposed so that the tests can compare the
 * implementations. */
struct pfind_masks {
    uint64_t word, alnum, hex, plus, colon, dot, digit;
};
void pfind_masks_scalar(const unsigned char *t, size_t n, struct pfind_masks *m);
#ifdef PFIND_SSE2
/* The same for blocks * 16 bytes (1 <= blocks <= 4). */
void pfind_masks_sse2(const unsigned char *t, unsigned blocks, struct pfind_masks *m);
#endif
#ifdef PFIND_AVX2
/* The same for 32 * halves bytes (halves 1 or 2) with AVX2 (only where the CPU has it),
 * and *pre: bit k set when t[k], t[k + 1] may begin something f wants (a superset of the
 * candidates: every word start that passes the exact test passes this).  Reads
 * t[0, 32 * halves + 1); the bits of a half not read are 0. */
void pfind_classify_avx2(const struct pfilter *f, const unsigned char *t, unsigned halves,
                         struct pfind_masks *m, uint64_t *pre);
/* For a filter of greetings and sign-offs only (no class, no names): *word as
 * pfind_masks.word, and *pre bit k set when t[k], t[k + 1] may begin such a word (a
 * superset, as above).  Reads as pfind_classify_avx2. */
void pfind_classify_kw_avx2(const unsigned char *t, unsigned halves, uint64_t *word,
                            uint64_t *pre);
#endif
#ifdef PFIND_AVX512
/* The same with AVX-512BW (only where the CPU has it) for t[0, avail), 64 bytes or fewer:
 * reads t[0, min(avail, 65)) and no byte more (masked loads), and classifies the bytes
 * from avail on as NULs.  So each is bit for bit pfind_classify_avx2 (halves 2) or
 * pfind_classify_kw_avx2 (halves 2) of t padded with NULs to 65 bytes. */
void pfind_classify_avx512(const struct pfilter *f, const unsigned char *t, size_t avail,
                           struct pfind_masks *m, uint64_t *pre);
void pfind_classify_kw_avx512(const unsigned char *t, size_t avail, uint64_t *word,
                              uint64_t *pre);
#endif

#endif
