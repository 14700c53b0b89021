/* find.c — where the scanner has to look.  Most words of a text start nothing: no
 * digit, no token prefix, no learnt name, no greeting.  Visiting them one by one (finding
 * the word's end, then testing each rule) costs a mispredicted branch per word.  So up to
 * 64 bytes at a time are classified into bit
 * masks (word bytes, letters and digits, hex digits, '+', ':', '.').  Word starts and
 * their lengths are read off the masks, and each gets the exact test of its first two
 * bytes and its length (table lookups, no branch); only the positions that pass go to the
 * scanner's rules (scan.c), which decide.  Skipped positions are ones
 * where no rule can fire, so the output is the same as visiting every word: a CPR or
 * phone number starts with two digits ("+45" is '+'), an IP address group is all hex
 * digits followed by ':', '.' or '-' (an address inside a host name, "188-162-151-16"), a
 * token prefix is "CPR-", "TLF-", "Navn-" or "IP-".  A CPR or phone number may also start
 * inside a word, where a run of digits begins after a letter ("CPR0101901234"): under a
 * filter for digits every such digit-run start is a candidate too.
 *
 * With AVX2 (where the CPU has it, checked at run time) the classification also yields a
 * prefilter, in the same pass: a word start is tested only if its first two bytes can
 * begin a class the text is scanned for (two digits; a hex digit and a hex digit, ':' or
 * '.'; a token prefix's pair), or if the row of its first byte (low five bits) holds the
 * group (low three bits) of its second byte in the table of greetings and learnt names —
 * a superset of the exact test, so that most words skip it.  Without AVX2 every word start
 * gets the exact test (an SSE2 prefilter of the pairs, 16 bytes at a time, would cost as
 * much as it saves).  A filter of greetings and sign-offs alone (pass 1's learning scan) has a
 * classifier of its own that computes only the word mask and the keywords' first two
 * bytes (pfind_classify_kw_avx2), so that pass 1 does not pay for masks it does not use.
 *
 * Where the CPU has AVX-512BW both classifiers have a 64-byte form (pfind_classify_avx512,
 * pfind_classify_kw_avx512) that gives the same bits: one register for the window, each
 * class compared straight into a mask, and the end of a text read with masked loads
 * instead of copied into a buffer padded with NULs (most header values are all end).
 *
 * The masks come from AVX-512BW, AVX2, from SSE2 (baseline on x86-64) or from a plain loop
 * elsewhere (also with -DPSEUDO_NO_SIMD, CMake option MAILRET_PSEUDO_NO_SIMD);
 * test_pseudo_find compares whichever are compiled and usable with the plain loop
 * (AVX-512 with AVX2, at every length of a text's end), checks that the prefilters keep
 * every candidate, and compares the search with pfind_candidate (the definition, one
 * position at a time) by each path the CPU has, in either build. */
#include "pseudo/find.h"
#include "pseudo/rules.h"

#include <string.h>

#ifdef PFIND_SSE2
#include <emmintrin.h>
#endif
#ifdef PFIND_AVX2
#include <immintrin.h>
#endif

#define W16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v

/* Class of a first byte: PFIND_HEX, PFIND_DIGIT, PFIND_CTNI (first letters of the token
 * prefixes "CPR-", "TLF-", "Navn-", "IP-"). */
#define HX PFIND_HEX
#define DG (PFIND_HEX | PFIND_DIGIT)
#define HC (PFIND_HEX | PFIND_CTNI)
#define CT PFIND_CTNI
static const unsigned char CLASS[256] = {
    W16(0), W16(0), W16(0),
    DG, DG, DG, DG, DG, DG, DG, DG, DG, DG, 0, 0, 0, 0, 0, 0,          /* '0' .. '?' */
    0, HX, HX, HC, HX, HX, HX, 0, 0, CT, 0, 0, 0, 0, CT, 0,            /* '@' .. 'O' */
    0, 0, 0, 0, CT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,                   /* 'P' .. '_' */
    0, HX, HX, HX, HX, HX, HX, 0, 0, 0, 0, 0, 0, 0, 0, 0,              /* '`' .. 'o' */
    W16(0),
    W16(0), W16(0), W16(0), W16(0), W16(0), W16(0), W16(0), W16(0),
};
#undef HX
#undef DG
#undef HC
#undef CT
#undef W16

/* The second byte of each token prefix ("CPR-", "TLF-", "Navn-", "IP-") by its first. */
static const unsigned char CTNI_SECOND[256] = {['C'] = 'P', ['T'] = 'L', ['N'] = 'a', ['I'] = 'P'};

/* Greeting and sign-off words (rules.def) by their first two bytes: bit n set
 * when one of them is n bytes long (prules_live.len2, ASCII letters in either case).
 * This rejects most ordinary words that share a first letter and a length with a
 * keyword ("har", "min", "vi"). */
static inline unsigned kw_lengths2(unsigned char c0, unsigned char c1)
{
    unsigned i0 = (unsigned)(c0 | 0x20) - 'a';

    return i0 < 26 ? prules_live.len2[i0][prules_live.second[c1]] : 0;
}

static const uint64_t NO_NAMES[256];
static const uint32_t NO_PAIRS[32];

static const unsigned char NO_GROUPS[32];

_Static_assert(PFIND_CTNI == 0x4u && PFIND_HEX == 0x1u && PFIND_DIGIT == 0x2u,
               "hit() indexes CLASS_LEN by these bits");

/* Word lengths at which a class of first byte can start something:
 *   IPv4 / IPv6: a group of at most 4 hex digits ("2001:db8::1", "192.0.2.1");
 *   CPR / phone: "12 34 56 78", "1234 5678", "010203-1234" end the word after 2, 4, 6
 *     digits; 8, 10 and 12 digits ("+4512345678" is '+'; "004512345678") may be followed
 *     by letters in the same word;
 *   token prefixes: "IP", "CPR", "TLF", "Navn" (and the byte after them is '-'). */
#define LEN_HEX (UINT64_C(1) << 1 | UINT64_C(1) << 2 | UINT64_C(1) << 3 | UINT64_C(1) << 4)
#define LEN_DIGIT (UINT64_C(1) << 2 | UINT64_C(1) << 4 | UINT64_C(1) << 6 | ~((UINT64_C(1) << 8) - 1))
#define LEN_CTNI (UINT64_C(1) << 2 | UINT64_C(1) << 3 | UINT64_C(1) << 4)

/* The lengths of every combination of the three classes (hit() masks the combination
 * with what the filter asks for first). */
static const uint64_t CLASS_LEN[8] = {
    0, LEN_HEX, LEN_DIGIT, LEN_HEX | LEN_DIGIT, LEN_CTNI, LEN_CTNI | LEN_HEX,
    LEN_CTNI | LEN_DIGIT, LEN_CTNI | LEN_HEX | LEN_DIGIT,
};

void pfind_filter_init(struct pfilter *f, unsigned cls, const pnames *names, bool keywords)
{
    f->cls = cls;
    f->first = names != NULL ? names->first : NO_NAMES;
    f->name_pairs = names != NULL ? names->pairs : NO_PAIRS;
    prules_init();
    f->kw_mask = keywords ? 0xFFFFu : 0;
    /* A text scanned for addresses only (a DKIM signature's b= and bh=): the scanner
     * goes from address to address without classifying a byte. */
    f->none = cls == 0 && names == NULL && !keywords;
#ifdef PFIND_AVX2
    f->avx2 = __builtin_cpu_supports("avx2");
#else
    f->avx2 = false;
#endif
#ifdef PFIND_AVX512
    f->avx512 = f->avx2 && __builtin_cpu_supports("avx512bw");
#else
    f->avx512 = false;
#endif
    /* The prefilter tests the group of the second byte, the exact test (hit) the pair. */
    {
        uint64_t g[4], k[4];
        memcpy(g, names != NULL ? names->pair_groups : NO_GROUPS, sizeof g);
        memcpy(k, keywords ? prules_live.groups : NO_GROUPS, sizeof k);
        for (unsigned x = 0; x < 4; x++)
            g[x] |= k[x];
        memcpy(f->pair_groups, g, sizeof g);
    }
}

/* Can the word t[p, p + l) start something under f?  hex: it may consist of hex digits
 * only.  Branch-free: it runs for every word. */
static inline uint64_t hit(const struct pfilter *f, const unsigned char *t, size_t len, size_t p,
                           size_t l, bool hex)
{
    unsigned char c = t[p];
    unsigned char c1 = p + 1 < len ? t[p + 1] : 0;
    unsigned char after = p + l < len ? t[p + l] : 0;
    /* A CPR or phone number has a second digit; a token prefix is one of four pairs and
     * only counts before its '-'; an IP address group is all hex digits and goes on with
     * ':', '.' or '-'. */
    unsigned cls = CLASS[c] & f->cls &
                   ((unsigned)((unsigned)c1 - '0' < 10u) << 1 |
                    (unsigned)(after == '-' && CTNI_SECOND[c] == c1) << 2 |
                    (unsigned)(hex && (after == ':' || after == '.' || after == '-')));
    /* A learnt name's lengths count only when the first two bytes are a name's. */
    uint64_t names = f->first[c] & (UINT64_C(0) - ((f->name_pairs[c & 31] >> (c1 & 31)) & 1u));
    uint64_t bits = names | (kw_lengths2(c, c1) & f->kw_mask) | CLASS_LEN[cls];
    unsigned lc = l < 63 ? (unsigned)l : 63;

    return (bits >> lc) & 1u;
}

static inline bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (unsigned)((c | 0x20) - 'a') < 26;
}

/* Both classifiers (scalar and SSE2) end here, with one bit per byte in each mask. */
static inline void masks_store(struct pfind_masks *m, uint64_t word, uint64_t alnum,
                               uint64_t hex, uint64_t plus, uint64_t colon, uint64_t dot,
                               uint64_t digit)
{
    *m = (struct pfind_masks){ .word = word, .alnum = alnum, .hex = hex, .plus = plus,
                               .colon = colon, .dot = dot, .digit = digit };
}

void pfind_masks_scalar(const unsigned char *t, size_t n, struct pfind_masks *m)
{
    uint64_t w = 0, a = 0, h = 0, plus = 0, colon = 0, dot = 0, dg = 0;

    for (size_t k = 0; k < n && k < 64; k++) {
        unsigned char c = t[k];
        dg |= (uint64_t)(c >= '0' && c <= '9') << k;
        w |= (uint64_t)prules_word[c] << k;
        a |= (uint64_t)is_alnum(c) << k;
        h |= (uint64_t)((CLASS[c] & PFIND_HEX) != 0) << k;
        plus |= (uint64_t)(c == '+') << k;
        colon |= (uint64_t)(c == ':') << k;
        dot |= (uint64_t)(c == '.') << k;
    }
    masks_store(m, w, a, h, plus, colon, dot, dg);
}

#ifdef PFIND_SSE2
/* Bit k set when t[k] (0 <= k < 16) is an ASCII letter or digit; *word gets the word
 * bytes (those, '_' and every 8-bit byte: the classes of prules_word[]). */
static inline unsigned alnum_mask16(__m128i b, unsigned *word, unsigned *hex, unsigned *digit)
{
    const __m128i lo_d = _mm_set1_epi8('0' - 1), hi_d = _mm_set1_epi8('9' + 1);
    const __m128i lo_a = _mm_set1_epi8('a' - 1), hi_a = _mm_set1_epi8('z' + 1);
    const __m128i hi_h = _mm_set1_epi8('f' + 1);
    /* Signed compares: bytes >= 0x80 are negative, so only ASCII falls in the ranges;
     * those bytes are word bytes through the sign-bit mask instead. */
    __m128i dig = _mm_and_si128(_mm_cmpgt_epi8(b, lo_d), _mm_cmplt_epi8(b, hi_d));
    __m128i l = _mm_or_si128(b, _mm_set1_epi8(0x20));
    __m128i above_a = _mm_cmpgt_epi8(l, lo_a);
    __m128i alpha = _mm_and_si128(above_a, _mm_cmplt_epi8(l, hi_a));
    unsigned a = (unsigned)_mm_movemask_epi8(_mm_or_si128(dig, alpha));

    *digit = (unsigned)_mm_movemask_epi8(dig);

    *word = a | (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(b, _mm_set1_epi8('_'))) |
            (unsigned)_mm_movemask_epi8(b);
    *hex = (unsigned)_mm_movemask_epi8(
        _mm_or_si128(dig, _mm_and_si128(above_a, _mm_cmplt_epi8(l, hi_h))));
    return a;
}

static inline unsigned word_mask16(__m128i b)
{
    unsigned w, h, d;

    (void)alnum_mask16(b, &w, &h, &d);
    return w;
}

void pfind_masks_sse2(const unsigned char *t, unsigned blocks, struct pfind_masks *m)
{
    const __m128i plus = _mm_set1_epi8('+'), colon = _mm_set1_epi8(':');
    const __m128i dot = _mm_set1_epi8('.');
    uint64_t w = 0, a = 0, h = 0, p = 0, c = 0, d = 0, dg = 0;

    for (unsigned k = 0; k < 16 * blocks; k += 16) {
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(t + k));
        unsigned wk, hk, dk;
        a |= (uint64_t)alnum_mask16(b, &wk, &hk, &dk) << k;
        dg |= (uint64_t)dk << k;
        w |= (uint64_t)wk << k;
        h |= (uint64_t)hk << k;
        p |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(b, plus)) << k;
        c |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(b, colon)) << k;
        d |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(b, dot)) << k;
    }
    masks_store(m, w, a, h, p, c, d, dg);
}

#endif

#ifdef PFIND_AVX2
__attribute__((target("avx2"))) static inline __m256i eq32(__m256i b, unsigned char c)
{
    return _mm256_cmpeq_epi8(b, _mm256_set1_epi8((char)c));
}

__attribute__((target("avx2")))
void pfind_classify_avx2(const struct pfilter *f, const unsigned char *t, unsigned halves,
                         struct pfind_masks *m, uint64_t *pre)
{
    const __m128i g_lo = _mm_loadu_si128((const __m128i *)(const void *)f->pair_groups);
    const __m128i g_hi = _mm_loadu_si128((const __m128i *)(const void *)(f->pair_groups + 16));
    const __m256i groups_lo = _mm256_broadcastsi128_si256(g_lo);
    const __m256i groups_hi = _mm256_broadcastsi128_si256(g_hi);
    /* Bit (i & 7) for index i: the group of a second byte. */
    const __m256i group_bit = _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16,
                                               32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128, 1, 2,
                                               4, 8, 16, 32, 64, -128);
    const __m256i low5 = _mm256_set1_epi8(0x1F), low3 = _mm256_set1_epi8(7);
    const __m256i bit4 = _mm256_set1_epi8(0x10), zero = _mm256_setzero_si256();
    const bool want_digit = (f->cls & PFIND_DIGIT) != 0;
    const bool want_hex = (f->cls & PFIND_HEX) != 0, want_ctni = (f->cls & PFIND_CTNI) != 0;
    uint64_t w = 0, a = 0, h = 0, p = 0, c = 0, d = 0, pr = 0, dg = 0;

    for (unsigned k = 0; k < 32 * halves; k += 32) {
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(t + k));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(t + k + 1));
        /* The classes, as alnum_mask16 (signed compares: 8-bit bytes are negative). */
        __m256i dig = _mm256_and_si256(_mm256_cmpgt_epi8(b, _mm256_set1_epi8('0' - 1)),
                                       _mm256_cmpgt_epi8(_mm256_set1_epi8('9' + 1), b));
        __m256i l = _mm256_or_si256(b, _mm256_set1_epi8(0x20));
        __m256i above_a = _mm256_cmpgt_epi8(l, _mm256_set1_epi8('a' - 1));
        __m256i alpha = _mm256_and_si256(above_a,
                                         _mm256_cmpgt_epi8(_mm256_set1_epi8('z' + 1), l));
        __m256i hexl = _mm256_and_si256(above_a,
                                        _mm256_cmpgt_epi8(_mm256_set1_epi8('f' + 1), l));
        __m256i alnum = _mm256_or_si256(dig, alpha);
        uint64_t ak = (uint32_t)_mm256_movemask_epi8(alnum);
        a |= ak << k;
        dg |= (uint64_t)(uint32_t)_mm256_movemask_epi8(dig) << k;
        w |= (ak | (uint32_t)_mm256_movemask_epi8(eq32(b, '_')) |
              (uint32_t)_mm256_movemask_epi8(b)) << k;
        h |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_or_si256(dig, hexl)) << k;
        p |= (uint64_t)(uint32_t)_mm256_movemask_epi8(eq32(b, '+')) << k;
        c |= (uint64_t)(uint32_t)_mm256_movemask_epi8(eq32(b, ':')) << k;
        d |= (uint64_t)(uint32_t)_mm256_movemask_epi8(eq32(b, '.')) << k;

        /* The prefilter: a first byte of a class asked for, or a first byte whose row
         * has the second byte's group. */
        __m256i x = _mm256_and_si256(b, low5);
        __m256i row = _mm256_blendv_epi8(_mm256_shuffle_epi8(groups_lo, x),
                                         _mm256_shuffle_epi8(groups_hi, x),
                                         _mm256_cmpeq_epi8(_mm256_and_si256(x, bit4), bit4));
        __m256i grp = _mm256_shuffle_epi8(group_bit, _mm256_and_si256(b1, low3));
        __m256i miss = _mm256_cmpeq_epi8(_mm256_and_si256(row, grp), zero);
        uint64_t pk = ~(uint64_t)(uint32_t)_mm256_movemask_epi8(miss) & 0xFFFFFFFFu;
        if (want_digit || want_hex) {
            /* The classes of the second byte, as hit() asks for them. */
            __m256i dig1 = _mm256_and_si256(_mm256_cmpgt_epi8(b1, _mm256_set1_epi8('0' - 1)),
                                            _mm256_cmpgt_epi8(_mm256_set1_epi8('9' + 1), b1));
            if (want_digit)
                pk |= (uint32_t)_mm256_movemask_epi8(_mm256_and_si256(dig, dig1));
            if (want_hex) {
                __m256i l1 = _mm256_or_si256(b1, _mm256_set1_epi8(0x20));
                __m256i hex1 = _mm256_or_si256(
                    dig1, _mm256_and_si256(_mm256_cmpgt_epi8(l1, _mm256_set1_epi8('a' - 1)),
                                           _mm256_cmpgt_epi8(_mm256_set1_epi8('f' + 1), l1)));
                __m256i go_on = _mm256_or_si256(
                    _mm256_or_si256(hex1, eq32(b1, '-')),
                    _mm256_or_si256(eq32(b1, ':'), eq32(b1, '.')));
                pk |= (uint32_t)_mm256_movemask_epi8(
                    _mm256_and_si256(_mm256_or_si256(dig, hexl), go_on));
            }
        }
        if (want_ctni)
            pk |= (uint32_t)_mm256_movemask_epi8(_mm256_or_si256(
                _mm256_or_si256(_mm256_and_si256(eq32(b, 'C'), eq32(b1, 'P')),
                                _mm256_and_si256(eq32(b, 'T'), eq32(b1, 'L'))),
                _mm256_or_si256(_mm256_and_si256(eq32(b, 'N'), eq32(b1, 'a')),
                                _mm256_and_si256(eq32(b, 'I'), eq32(b1, 'P')))));
        pr |= pk << k;
    }
    masks_store(m, w, a, h, p, c, d, dg);
    *pre = pr;
}
#endif

#ifdef PFIND_AVX2
/* The keyword-only search (pass 1 looks for greetings and sign-offs, nothing else) needs
 * the word bytes and the keywords' first two bytes, not the six masks and the group
 * prefilter of pfind_classify_avx2.  Both come from nibble tables: a byte's classes are
 * LO[b & 15] & HI[b >> 4], one bit per class, two shuffles for 32 bytes.
 *
 * Word bytes (prules_word[]): digits (row 3), 'A'-'O' and 'a'-'o' (rows 4, 6, low nibble
 * 1-F), 'P'-'Z' and 'p'-'z' (rows 5, 7, low nibble 0-A), '_' (row 5, F), 8-bit bytes. */
enum { WB_DIGIT = 1, WB_AO = 2, WB_PZ = 4, WB_UNDER = 8, WB_HIGH = 16 };
static const unsigned char WORD_LO[16] = {
    [0] = WB_DIGIT | WB_PZ | WB_HIGH,
    [1] = WB_DIGIT | WB_AO | WB_PZ | WB_HIGH, [2] = WB_DIGIT | WB_AO | WB_PZ | WB_HIGH,
    [3] = WB_DIGIT | WB_AO | WB_PZ | WB_HIGH, [4] = WB_DIGIT | WB_AO | WB_PZ | WB_HIGH,
    [5] = WB_DIGIT | WB_AO | WB_PZ | WB_HIGH, [6] = WB_DIGIT | WB_AO | WB_PZ | WB_HIGH,
    [7] = WB_DIGIT | WB_AO | WB_PZ | WB_HIGH, [8] = WB_DIGIT | WB_AO | WB_PZ | WB_HIGH,
    [9] = WB_DIGIT | WB_AO | WB_PZ | WB_HIGH, [10] = WB_AO | WB_PZ | WB_HIGH,
    [11] = WB_AO | WB_HIGH, [12] = WB_AO | WB_HIGH, [13] = WB_AO | WB_HIGH,
    [14] = WB_AO | WB_HIGH, [15] = WB_AO | WB_UNDER | WB_HIGH,
};
static const unsigned char WORD_HI[16] = {
    [3] = WB_DIGIT, [4] = WB_AO, [5] = WB_PZ | WB_UNDER, [6] = WB_AO, [7] = WB_PZ,
    [8] = WB_HIGH, [9] = WB_HIGH, [10] = WB_HIGH, [11] = WB_HIGH, [12] = WB_HIGH,
    [13] = WB_HIGH, [14] = WB_HIGH, [15] = WB_HIGH,
};

/* The keywords' first bytes and second bytes come from prules_live (rules.c):
 * FIRST_LO[b & 15] & FIRST_HI[b >> 4] of a first byte has the bit of its letter (either
 * case), SECOND_LO & SECOND_HI of a second byte the bits of the first letters it follows
 * in a keyword; their AND is a superset of the keywords' pairs ("kf" passes too): the
 * exact test follows. */
#define FIRST_LO prules_live.first_lo
#define FIRST_HI prules_live.first_hi
#define SECOND_LO prules_live.second_lo
#define SECOND_HI prules_live.second_hi

__attribute__((target("avx2"))) static inline __m256i table16(const unsigned char *tab)
{
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)tab));
}

__attribute__((target("avx2")))
void pfind_classify_kw_avx2(const unsigned char *t, unsigned halves, uint64_t *word,
                            uint64_t *pre)
{
    const __m256i word_lo = table16(WORD_LO), word_hi = table16(WORD_HI);
    const __m256i first_lo = table16(FIRST_LO), first_hi = table16(FIRST_HI);
    const __m256i second_lo = table16(SECOND_LO), second_hi = table16(SECOND_HI);
    const __m256i nib = _mm256_set1_epi8(0x0F), zero = _mm256_setzero_si256();
    uint64_t w = 0, pr = 0;

    for (unsigned k = 0; k < 32 * halves; k += 32) {
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(t + k));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(t + k + 1));
        __m256i lo = _mm256_and_si256(b, nib);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), nib);
        __m256i lo1 = _mm256_and_si256(b1, nib);
        __m256i hi1 = _mm256_and_si256(_mm256_srli_epi16(b1, 4), nib);
        __m256i wd = _mm256_and_si256(_mm256_shuffle_epi8(word_lo, lo),
                                      _mm256_shuffle_epi8(word_hi, hi));
        __m256i pair = _mm256_and_si256(
            _mm256_and_si256(_mm256_shuffle_epi8(first_lo, lo), _mm256_shuffle_epi8(first_hi, hi)),
            _mm256_and_si256(_mm256_shuffle_epi8(second_lo, lo1),
                             _mm256_shuffle_epi8(second_hi, hi1)));
        w |= (uint64_t)(~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(wd, zero))) << k;
        pr |= (uint64_t)(~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(pair, zero))) << k;
    }
    *word = w;
    *pre = pr;
}
#endif

#ifdef PFIND_AVX512
/* 64 bytes in one register, and each class straight into a 64-bit mask register (a
 * compare or a test into a mask): no movemask, shift and or per half.  The end of a text
 * is read with masked loads, which do not fault on the bytes masked off and read them as
 * 0, so no copy into a padded buffer.  Only AVX-512BW (and AVX-512F) instructions:
 * the group lookup uses vpshufb on 16-byte tables, as the AVX2 code does, not vpermb
 * (VBMI), so that one path serves every AVX-512BW CPU. */
#define PFIND_TARGET_AVX512 __attribute__((target("avx512bw")))

/* The bytes to load from t + 0 and from t + 1 for a window of avail bytes (avail > 64:
 * all of both). */
PFIND_TARGET_AVX512 static inline void load_avx512(const unsigned char *t, size_t avail,
                                                   __m512i *b, __m512i *b1)
{
    __mmask64 in = avail >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << avail) - 1;
    __mmask64 in1 = avail > 64 ? ~(__mmask64)0 : in >> 1;

    *b = _mm512_maskz_loadu_epi8(in, t);
    *b1 = _mm512_maskz_loadu_epi8(in1, t + 1);
}

PFIND_TARGET_AVX512 static inline __m512i table16_avx512(const unsigned char *tab)
{
    return _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)tab));
}

PFIND_TARGET_AVX512 static inline __mmask64 eq64(__m512i b, unsigned char c)
{
    return _mm512_cmpeq_epi8_mask(b, _mm512_set1_epi8((char)c));
}

/* Bytes b with lo <= b < lo + count (unsigned: one subtraction and one compare). */
PFIND_TARGET_AVX512 static inline __mmask64 range64(__m512i b, unsigned char lo,
                                                    unsigned char count)
{
    return _mm512_cmplt_epu8_mask(_mm512_sub_epi8(b, _mm512_set1_epi8((char)lo)),
                                  _mm512_set1_epi8((char)count));
}

PFIND_TARGET_AVX512
void pfind_classify_avx512(const struct pfilter *f, const unsigned char *t, size_t avail,
                           struct pfind_masks *m, uint64_t *pre)
{
    const __m512i groups_lo = table16_avx512(f->pair_groups);
    const __m512i groups_hi = table16_avx512(f->pair_groups + 16);
    /* Bit (i & 7) for index i: the group of a second byte. */
    const __m512i group_bit = _mm512_broadcast_i32x4(
        _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128));
    const __m512i case_bit = _mm512_set1_epi8(0x20);
    __m512i b, b1;

    load_avx512(t, avail, &b, &b1);
    /* The classes, as pfind_classify_avx2: letters either case by (b | 0x20), and the
     * unsigned ranges leave out every 8-bit byte, which is a word byte by its sign bit. */
    __m512i l = _mm512_or_si512(b, case_bit);
    __mmask64 dig = range64(b, '0', 10);
    __mmask64 alnum = dig | range64(l, 'a', 26);
    __mmask64 hex = dig | range64(l, 'a', 6);

    *m = (struct pfind_masks){
        .word = alnum | eq64(b, '_') | _mm512_movepi8_mask(b),
        .alnum = alnum, .hex = hex,
        .plus = eq64(b, '+'), .colon = eq64(b, ':'), .dot = eq64(b, '.'), .digit = dig,
    };

    /* The prefilter: a first byte of a class asked for, or a first byte whose row has
     * the second byte's group.  vpshufb looks at the low four bits of an index (and
     * gives 0 for bit 7 set): rows 16-31 come from the second table where bit 4 is set. */
    __m512i x = _mm512_and_si512(b, _mm512_set1_epi8(0x0F));
    __m512i row = _mm512_mask_shuffle_epi8(_mm512_shuffle_epi8(groups_lo, x),
                                           _mm512_test_epi8_mask(b, _mm512_set1_epi8(0x10)),
                                           groups_hi, x);
    __m512i grp = _mm512_shuffle_epi8(group_bit, _mm512_and_si512(b1, _mm512_set1_epi8(7)));
    __mmask64 pk = _mm512_test_epi8_mask(row, grp);

    if (f->cls & (PFIND_DIGIT | PFIND_HEX)) {
        /* The classes of the second byte, as hit() asks for them. */
        __mmask64 dig1 = range64(b1, '0', 10);
        if (f->cls & PFIND_DIGIT)
            pk |= dig & dig1;
        if (f->cls & PFIND_HEX)
            pk |= hex & (dig1 | range64(_mm512_or_si512(b1, case_bit), 'a', 6) |
                         eq64(b1, ':') | eq64(b1, '.') | eq64(b1, '-'));
    }
    if (f->cls & PFIND_CTNI)
        pk |= (eq64(b, 'C') & eq64(b1, 'P')) | (eq64(b, 'T') & eq64(b1, 'L')) |
              (eq64(b, 'N') & eq64(b1, 'a')) | (eq64(b, 'I') & eq64(b1, 'P'));
    *pre = pk;
}

/* pfind_classify_kw_avx2 in one pass of 64 bytes: the same nibble tables, and a byte's
 * classes tested straight into a mask (LO[b & 15] & HI[b >> 4] != 0). */
PFIND_TARGET_AVX512
void pfind_classify_kw_avx512(const unsigned char *t, size_t avail, uint64_t *word,
                              uint64_t *pre)
{
    const __m512i nib = _mm512_set1_epi8(0x0F);
    __m512i b, b1;

    load_avx512(t, avail, &b, &b1);
    __m512i lo = _mm512_and_si512(b, nib);
    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(b, 4), nib);
    __m512i lo1 = _mm512_and_si512(b1, nib);
    __m512i hi1 = _mm512_and_si512(_mm512_srli_epi16(b1, 4), nib);

    *word = _mm512_test_epi8_mask(_mm512_shuffle_epi8(table16_avx512(WORD_LO), lo),
                                  _mm512_shuffle_epi8(table16_avx512(WORD_HI), hi));
    *pre = _mm512_test_epi8_mask(
        _mm512_and_si512(_mm512_shuffle_epi8(table16_avx512(FIRST_LO), lo),
                         _mm512_shuffle_epi8(table16_avx512(FIRST_HI), hi)),
        _mm512_and_si512(_mm512_shuffle_epi8(table16_avx512(SECOND_LO), lo1),
                         _mm512_shuffle_epi8(table16_avx512(SECOND_HI), hi1)));
}
#endif

/* Masks of t[0, n), n <= 64: with SSE2 16 bytes at a time. */
static inline void masks_plain(const unsigned char *t, size_t n, struct pfind_masks *m)
{
#ifdef PFIND_SSE2
    /* As many 16-byte blocks as the window has bytes: most texts (header values) are
     * short. */
    unsigned blocks = (unsigned)((n + 15) / 16);

    if (n >= 16 * blocks) {
        pfind_masks_sse2(t, blocks, m);
    } else {
        /* The tail of a text: padded with NULs (nothing of interest), which costs less
         * than classifying byte by byte. */
        unsigned char pad[64] = {0};
        memcpy(pad, t, n);
        pfind_masks_sse2(pad, blocks, m);
    }
#else
    pfind_masks_scalar(t, n, m);
#endif
}

/* Masks of t[0, n), n <= 64 (avail bytes readable), and the prefilter of the word starts
 * there: with AVX2 the prefilter lets the exact test (hit) run only for the few word
 * starts whose first two bytes can begin something; without it every word start gets
 * the exact test. */
static inline void masks(const struct pfilter *f, const unsigned char *t, size_t n,
                         size_t avail, struct pfind_masks *m, uint64_t *pre)
{
#ifdef PFIND_AVX512
    if (f->avx512) {
        pfind_classify_avx512(f, t, avail, m, pre);
        return;
    }
#endif
#ifdef PFIND_AVX2
    if (f->avx2) {
        if (avail > 64) {
            pfind_classify_avx2(f, t, 2, m, pre);
        } else {
            /* The end of a text (most header values are all of one): padded with NULs,
             * and only the 32-byte halves that hold some of it classified. */
            unsigned char pad[65] = {0};
            memcpy(pad, t, avail);
            pfind_classify_avx2(f, pad, n > 32 ? 2 : 1, m, pre);
        }
        return;
    }
#else
    (void)f;
    (void)avail;
#endif
    *pre = ~(uint64_t)0;
    masks_plain(t, n, m);
}

size_t pfind_word_end(const unsigned char *t, size_t len, size_t j)
{
    /* Words end unpredictably, so a byte-at-a-time loop mispredicts once per word; with
     * SSE2 the bytes are classified 16 at a time. */
#ifdef PFIND_SSE2
    while (len - j >= 16) {
        unsigned m = word_mask16(_mm_loadu_si128((const __m128i *)(const void *)(t + j))) ^ 0xFFFFu;
        if (m != 0)
            return j + (size_t)__builtin_ctz(m);
        j += 16;
    }
#endif
    while (j < len && prules_word[t[j]])
        j++;
    return j;
}

void pfind_start(struct pfind *it, const struct pfilter *f, const unsigned char *t, size_t len)
{
    it->f = f;
    it->t = t;
    it->len = len;
    it->base = it->n = 0;
    it->hits = 0;
}

static bool all_hex(const unsigned char *w, size_t l)
{
    for (size_t k = 0; k < l; k++)
        if (!(CLASS[w[k]] & PFIND_HEX))
            return false;
    return true;
}

#ifdef PFIND_AVX2
/* Does f ask for greetings and sign-offs only (pass 1's scan, or a text scanned for names
 * before any is learnt)? */
static inline bool kw_only(const struct pfilter *f)
{
    return f->cls == 0 && f->first == NO_NAMES && f->kw_mask != 0;
}

/* The word mask and the keywords' pairs of t[0, n), n <= 64 (avail bytes readable), as
 * masks() does for the general filter. */
static inline void kw_masks(const struct pfilter *f, const unsigned char *t, size_t n,
                            size_t avail, uint64_t *word, uint64_t *pre)
{
#ifdef PFIND_AVX512
    if (f->avx512) {
        pfind_classify_kw_avx512(t, avail, word, pre);
        return;
    }
#else
    (void)f;
#endif
    if (avail > 64) {
        pfind_classify_kw_avx2(t, 2, word, pre);
    } else {
        unsigned char pad[65] = {0};
        memcpy(pad, t, avail);
        pfind_classify_kw_avx2(pad, n > 32 ? 2 : 1, word, pre);
    }
}

/* window() under such a filter, with AVX2: the word mask and the keywords' pairs
 * (pfind_classify_kw_avx2, much less work than pfind_classify_avx2),
 * then the length test of the few word starts that pass. */
static void window_kw(struct pfind *it, size_t base)
{
    const unsigned char *t = it->t;
    size_t len = it->len, n = len - base < 64 ? len - base : 64;
    uint64_t valid = n == 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1);
    unsigned char prev = base > 0 ? t[base - 1] : 0;
    uint64_t word, pre, nonword, starts, hits = 0;

    kw_masks(it->f, t + base, n, len - base, &word, &pre);
    word &= valid;
    nonword = ~word & valid;
    starts = word & ~((word << 1) | prules_word[prev]) & pre;
    while (starts != 0) {
        unsigned b = (unsigned)__builtin_ctzll(starts);
        uint64_t rest = nonword >> b;
        size_t p = base + b;
        size_t l = rest != 0 ? (size_t)__builtin_ctzll(rest) : pfind_word_end(t, len, base + n) - p;
        unsigned char c1 = p + 1 < len ? t[p + 1] : 0;
        /* hit() with no class and no names: the keywords' lengths for the first two bytes
         * (at most PRULES_KW_LEN, bits of a uint16_t: bit 16 is always clear). */
        hits |= (uint64_t)((kw_lengths2(t[p], c1) >> (l < 16 ? l : 16)) & 1u) << b;
        starts &= starts - 1;
    }
    it->base = base;
    it->n = n;
    it->hits = hits;
}
#endif

/* Load the window t[base, base + 64) (or to the end): its candidates.  A word start is a
 * word byte after a non-word byte; the byte before base counts. */
static void window(struct pfind *it, size_t base)
{
    const unsigned char *t = it->t;
    const struct pfilter *f = it->f;
    size_t len = it->len, n = len - base < 64 ? len - base : 64;
    uint64_t valid = n == 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1);
    unsigned char prev = base > 0 ? t[base - 1] : 0;
    uint64_t nonword, nonhex, starts, hits = 0, pre;
    struct pfind_masks m;

#ifdef PFIND_AVX2
    if (f->avx2 && kw_only(f)) {
        window_kw(it, base);
        return;
    }
#endif
    masks(f, t + base, n, len - base, &m, &pre);
    m.word &= valid;
    nonword = ~m.word & valid;
    nonhex = m.word & ~m.hex;
    starts = m.word & ~((m.word << 1) | prules_word[prev]) & pre;
    /* '+' of a phone number and ':' of an IPv6 address, where the scanner would try
     * them: '+' not right after a digit ("Tlf+4512345678" is a number), ':' not after a
     * letter, digit, ':' or '.'. */
    if (f->cls & PFIND_PLUS)
        hits |= m.plus & ~((m.digit << 1) | (uint64_t)(prev >= '0' && prev <= '9'));
    if (f->cls & PFIND_COLON)
        hits |= m.colon & ~(((m.alnum | m.colon | m.dot) << 1) |
                            (is_alnum(prev) || prev == ':' || prev == '.'));
    /* A run of digits that starts inside a word (after a letter): "CPR0101901234". */
    if (f->cls & PFIND_DIGIT)
        hits |= m.digit & valid & ~((m.digit << 1) | (uint64_t)(prev >= '0' && prev <= '9')) &
                ((m.word << 1) | prules_word[prev]);
    /* Each word start against the table: no branch per word, only per window. */
    while (starts != 0) {
        unsigned b = (unsigned)__builtin_ctzll(starts);
        uint64_t rest = nonword >> b;
        size_t l = rest != 0 ? (size_t)__builtin_ctzll(rest)
                             : pfind_word_end(t, len, base + n) - (base + b);
        /* All hex digits?  From the masks, or for a word that runs past the window from
         * its bytes. */
        uint64_t in_word = l < 64 ? ((uint64_t)1 << l) - 1 : ~(uint64_t)0;
        bool hex = b + l <= n ? ((nonhex >> b) & in_word) == 0 : all_hex(t + base + b, l);
        starts &= starts - 1;
        hits |= hit(f, t, len, base + b, l, hex) << b;
    }
    it->base = base;
    it->n = n;
    it->hits = hits;
}

size_t pfind_next(struct pfind *it, size_t from, size_t limit)
{
    const unsigned char *t = it->t;
    size_t len = it->len;

    if (limit > len)
        limit = len;
    if (from >= limit || it->f->none)
        return limit;
    /* A position the scanner resumes at inside a word (after a match) counts as a word
     * start too; the windows only know the real ones. */
    if (from > 0 && prules_word[t[from]] && prules_word[t[from - 1]] &&
        pfind_candidate(it->f, t, len, from, from))
        return from;
    if (from < it->base || from >= it->base + it->n)
        window(it, from);
    for (;;) {
        uint64_t h = it->hits & (~(uint64_t)0 << (from - it->base));
        if (h != 0) {
            size_t p = it->base + (size_t)__builtin_ctzll(h);
            return p < limit ? p : limit;
        }
        if (it->base + it->n >= limit)
            return limit;
        from = it->base + it->n;
        window(it, from);
    }
}

bool pfind_candidate(const struct pfilter *f, const unsigned char *t, size_t len, size_t from,
                     size_t p)
{
    unsigned char c = t[p], prev = p > 0 ? t[p - 1] : 0;
    size_t l;

    if (c == '+')
        return (f->cls & PFIND_PLUS) && !(p > 0 && prev >= '0' && prev <= '9');
    if (c == ':')
        return (f->cls & PFIND_COLON) &&
               !(p > 0 && (is_alnum(prev) || prev == ':' || prev == '.'));
    if ((f->cls & PFIND_DIGIT) && c >= '0' && c <= '9' && p > 0 && prules_word[prev] &&
        !(prev >= '0' && prev <= '9'))
        return true;
    if (!prules_word[c] || (p > from && prules_word[prev]))
        return false;
    for (l = 1; p + l < len && prules_word[t[p + l]]; l++)
        ;
    return hit(f, t, len, p, l, all_hex(t + p, l)) != 0;
}
