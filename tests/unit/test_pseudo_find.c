/*
 * test_pseudo_find.c — the scanner's candidate search (pseudo/find.c) and the
 * header classification by hash (mime.c) against their plain definitions:
 *   - SSE2 and AVX2 masks == the byte-by-byte ones (where built in and, for AVX2, where
 *     the CPU has it), and the AVX2 prefilters (the general one and the keyword-only one
 *     of pass 1) pass every candidate word start;
 *   - the AVX-512BW classifiers (where the CPU has it) == the AVX2 ones on the same bytes
 *     padded with NULs, bit for bit, for every length of a text's end (masked loads);
 *   - pfind_next == the first position that pfind_candidate accepts, on random text with
 *     random filters (a quarter of them keyword-only), from random resume points, by
 *     each path the CPU has (AVX-512BW, AVX2, SSE2) and in the plain build (configure
 *     with -DMAILRET_PSEUDO_NO_SIMD=ON for that);
 *   - pmime_classify == the linear search over the header table, for every name in it,
 *     its case variants and near misses.
 */
#include "unit/test_pseudo_util.h"

#include "pseudo/find.h"
#include "pseudo/mime.h"
#include "pseudo/names.h"
#include "pseudo/rules.h"

#include <sys/mman.h>
#include <unistd.h>

/* Deterministic generator (tp_rnd), so that a failure can be reproduced. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    return tp_rnd(&rng_state);
}

/* Text biased towards what the search looks at: words, digits, greetings, token prefixes,
 * IP-like groups, '+', ':', '.', '-', 8-bit bytes, NULs. */
static void random_text(unsigned char *t, size_t n)
{
    static const char *const pieces[] = {
        "Hej ", "hej", "Mvh\r\n", "vh", "KH", "k\xc3\xa6re ", "k\xe6re", "Kaere", "dear", "Davs",
        "goddag", "Hilsen", "hilsner", "regards", "Cheers", "hi", "hello", "hallo", "hejsa",
        "CPR-", "TLF-", "Navn-", "IP-", "2001:db8::1", "fe80::", "192.0.2.1", "+45 ", "0045",
        "12 34 56 78", "1234 5678", "010203-1234", "0102031234", "Mette", "Hansen", "S\xc3\xb8ren",
        "\xd8jvind", "Anne-Mette", "ab", "cd", "ef", ":", ".", "-", "_", " ", "\t", "\n", "<br>",
        "har", "min", "det", "vi",
    };
    size_t i = 0, nrules;
    const struct prule *rules = prules_list(&nrules);

    while (i < n) {
        uint64_t r = rnd();
        if (r % 7 == 6) {
            /* Every word of rules.def, so that a word added there is searched for
             * here too (the list above only has the early ones). */
            const struct prule *w = &rules[(r >> 8) % nrules];
            for (size_t k = 0; k < w->len && i < n; k++)
                t[i++] = (unsigned char)(k == 0 && (r >> 40) & 1 ? w->w[k] ^ 0x20 : w->w[k]);
        } else if (r % 3 == 0) {
            const char *p = pieces[(r >> 8) % (sizeof pieces / sizeof pieces[0])];
            for (size_t k = 0; p[k] != '\0' && i < n; k++)
                t[i++] = (unsigned char)p[k];
        } else if (r % 3 == 1) {
            t[i++] = (unsigned char)(r >> 16);
        } else {
            t[i++] = (unsigned char)("abcdefghijklmnopqrstuvwxyz0123456789 "[(r >> 16) % 37]);
        }
    }
}

/* A names table as pnames_prepare leaves it: a few first bytes with length bits, and the
 * first two bytes of the patterns (some with a blank second byte: any). */
static void random_names(pnames *n, unsigned count)
{
    memset(n, 0, sizeof *n);
    for (unsigned i = 0; i < count; i++) {
        unsigned char c = (unsigned char)"MmHhSs\xc3\xd8\xf8" "AaBbOo"[rnd() % 15];
        unsigned char c1 = (unsigned char)"eaiy\xb8\xf8 -"[rnd() % 8];
        n->first[c] |= 1ull << (1 + rnd() % 8);
        if (c1 == ' ')
            n->pairs[c & 31] = UINT32_MAX;
        else
            n->pairs[c & 31] |= UINT32_C(1) << (c1 & 31);
    }
    for (unsigned x = 0; x < 32; x++)
        n->pair_groups[x] = PNAMES_GROUPS(n->pairs[x]);
}

static void random_filter(struct pfilter *f, pnames *names)
{
    unsigned cls = (unsigned)(rnd() & 0x1F), n = (unsigned)(rnd() % 4);

    /* A quarter of the filters ask for greetings and sign-offs only (pass 1's scan, which
     * has a search of its own with AVX2). */
    if (rnd() % 4 == 0) {
        pfind_filter_init(f, 0, NULL, true);
        return;
    }
    random_names(names, n == 3 ? 20 : n * 3);
    pfind_filter_init(f, cls, n == 0 ? NULL : names, (rnd() & 1) != 0);
}

#ifdef PFIND_AVX2
/* A digit run that starts inside a word ("CPR0101901234"): a candidate under a filter for
 * digits by its own rule, which the prefilter of word starts does not cover. */
static bool mid_word_digit(const struct pfilter *f, const unsigned char *t, size_t p)
{
    return (f->cls & PFIND_DIGIT) && t[p] >= '0' && t[p] <= '9' && p > 0 &&
           prules_word[t[p - 1]] && !(t[p - 1] >= '0' && t[p - 1] <= '9');
}
#endif

static void test_masks(void **state)
{
    unsigned char t[80];

    (void)state;
    for (int round = 0; round < 20000; round++) {
        struct pfind_masks a;
        random_text(t, sizeof t);
        pfind_masks_scalar(t, 64, &a);
        /* every mask against its definition */
        for (unsigned k = 0; k < 64; k++) {
            unsigned char c = t[k];
            assert_int_equal((a.word >> k) & 1, prules_word[c] != 0);
            assert_int_equal((a.plus >> k) & 1, c == '+');
            assert_int_equal((a.colon >> k) & 1, c == ':');
            assert_int_equal((a.dot >> k) & 1, c == '.');
            assert_int_equal((a.digit >> k) & 1, c >= '0' && c <= '9');
        }
#ifdef PFIND_SSE2
        for (unsigned blocks = 1; blocks <= 4; blocks++) {
            struct pfind_masks b, s;
            uint64_t keep = blocks == 4 ? ~0ull : (1ull << (16 * blocks)) - 1;
            pfind_masks_scalar(t, 16 * blocks, &s);
            pfind_masks_sse2(t, blocks, &b);
            assert_true(b.word == s.word && b.alnum == s.alnum && b.hex == s.hex &&
                        b.plus == s.plus && b.colon == s.colon && b.dot == s.dot &&
                        b.digit == s.digit);
            assert_int_equal(b.word & ~keep, 0);
        }
#endif
    }
}

/* The AVX2 classifiers against the scalar masks (which test_avx2 checks against the
 * scalar masks), and their prefilters against the candidate test. */
static void test_avx2(void **state)
{
    (void)state;
#ifdef PFIND_AVX2
    unsigned char t[80];

    if (!__builtin_cpu_supports("avx2")) {
        print_message("no AVX2 on this CPU: its classifiers not tested\n");
        skip();
    }
    for (int round = 0; round < 20000; round++) {
        struct pfind_masks a;
        random_text(t, sizeof t);
        pfind_masks_scalar(t, 64, &a);
        {
            struct pfind_masks v;
            struct pfilter f;
            pnames names;
            uint64_t pre;
            random_filter(&f, &names);
            pfind_classify_avx2(&f, t, 2, &v, &pre);
            assert_true(v.word == a.word && v.alnum == a.alnum && v.hex == a.hex &&
                        v.plus == a.plus && v.colon == a.colon && v.dot == a.dot &&
                        v.digit == a.digit);
            {
                /* One half: the low 32 bits of each mask, nothing above. */
                struct pfind_masks h;
                uint64_t pre1, lo = 0xFFFFFFFFu;
                pfind_classify_avx2(&f, t, 1, &h, &pre1);
                assert_true(h.word == (a.word & lo) && h.alnum == (a.alnum & lo) &&
                            h.hex == (a.hex & lo) && h.plus == (a.plus & lo) &&
                            h.colon == (a.colon & lo) && h.dot == (a.dot & lo) &&
                            h.digit == (a.digit & lo) &&
                            pre1 == (pre & lo));
            }
            /* Every candidate word start passes the prefilter (t has 80 bytes, so the
             * candidate test sees the same bytes as the prefilter). */
            for (size_t p = 0; p < 64; p++)
                if (prules_word[t[p]] && pfind_candidate(&f, t, sizeof t, p, p) &&
                    !mid_word_digit(&f, t, p) && !((pre >> p) & 1))
                    fail_msg("round %d: candidate at %zu not in the prefilter", round, p);
        }
        {
            /* The keyword-only classifier: the same word mask, one half or two, and a
             * prefilter that keeps every candidate of a keyword-only filter. */
            struct pfilter kw;
            uint64_t w, pre, w1, pre1;
            pfind_filter_init(&kw, 0, NULL, true);
            pfind_classify_kw_avx2(t, 2, &w, &pre);
            pfind_classify_kw_avx2(t, 1, &w1, &pre1);
            assert_true(w == a.word && w1 == (a.word & 0xFFFFFFFFu) &&
                        pre1 == (pre & 0xFFFFFFFFu));
            for (size_t p = 0; p < 64; p++)
                if (prules_word[t[p]] && pfind_candidate(&kw, t, sizeof t, p, p) &&
                    !((pre >> p) & 1))
                    fail_msg("round %d: keyword at %zu not in the prefilter", round, p);
        }
    }
#else
    print_message("built without the AVX2 classifiers\n");
    skip();
#endif
}

#ifdef PFIND_AVX512
/* The AVX-512BW classifiers against the AVX2 ones (which test_avx2 checks against the
 * scalar masks): for a text's end of avail bytes, the AVX2 ones see a copy padded with
 * NULs, the AVX-512 ones the bytes in place, ending where an unreadable page begins (a
 * masked load must neither need nor use a byte past them). */
static void test_avx512(void **state)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *map, *end;

    (void)state;
    if (!__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx2")) {
        print_message("no AVX-512BW on this CPU: its classifiers not tested\n");
        skip();
    }
    map = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
               -1, 0);
    assert_true(map != MAP_FAILED);
    end = map + page;
    assert_int_equal(mprotect(end, (size_t)page, PROT_NONE), 0);
    for (int round = 0; round < 20000; round++) {
        /* 1 to 64 bytes: a text's end; 65 to 80: a window with more after it (the AVX-512
         * classifier then reads 65 bytes, as the AVX2 one does). */
        size_t avail = 1 + (size_t)(rnd() % 80), readable = avail < 65 ? avail : 65;
        const unsigned char *t = end - readable;
        unsigned char pad[65] = {0};
        struct pfind_masks v, w;
        struct pfilter f;
        pnames names;
        uint64_t pre_v, pre_w, kw_v, kw_w, kpre_v, kpre_w;

        random_text(end - readable, readable);
        memcpy(pad, t, readable);
        random_filter(&f, &names);
        pfind_classify_avx2(&f, pad, 2, &w, &pre_w);
        pfind_classify_avx512(&f, t, avail, &v, &pre_v);
        if (v.word != w.word || v.alnum != w.alnum || v.hex != w.hex || v.plus != w.plus ||
            v.colon != w.colon || v.dot != w.dot || v.digit != w.digit || pre_v != pre_w)
            fail_msg("round %d, %zu bytes: AVX-512 masks or prefilter differ from AVX2", round,
                     avail);
        pfind_classify_kw_avx2(pad, 2, &kw_w, &kpre_w);
        pfind_classify_kw_avx512(t, avail, &kw_v, &kpre_v);
        if (kw_v != kw_w || kpre_v != kpre_w)
            fail_msg("round %d, %zu bytes: AVX-512 keyword masks differ from AVX2", round,
                     avail);
    }
    munmap(map, 2 * (size_t)page);
}
#else
static void test_avx512(void **state)
{
    (void)state;
    print_message("built without the AVX-512BW classifiers\n");
    skip();
}
#endif

/* pfind_next against pfind_candidate over whole texts, as the scanner uses it: resuming
 * at the candidate's word end or at a random later point, with random limits. */
static void test_next(void **state)
{
    static unsigned char t[700];
    pnames names;

    (void)state;
    for (int round = 0; round < 3000; round++) {
        size_t len = (size_t)(rnd() % sizeof t), from = 0;
        struct pfilter f;
        struct pfind it;
        random_text(t, len);
        random_filter(&f, &names);
        /* A third of the rounds by each path: the best the CPU has, without AVX-512BW
         * (AVX2, where the CPU has it) and without either (SSE2 or the plain loop). */
        if (round % 3 != 0)
            f.avx512 = false;
        if (round % 3 == 2)
            f.avx2 = false;
        pfind_start(&it, &f, t, len);
        while (from < len) {
            size_t limit = (rnd() & 3) == 0 ? from + (size_t)(rnd() % 80) : len, want, got;
            if (limit > len)
                limit = len;
            for (want = from; want < limit && !pfind_candidate(&f, t, len, from, want); want++)
                ;
            got = pfind_next(&it, from, limit);
            if (got != want)
                fail_msg("round %d: from %zu limit %zu: got %zu, want %zu", round, from, limit,
                         got, want);
            if (got >= len)
                break;
            /* Resume like the scanner: after the word, at a match end inside a word, or
             * at the limit. */
            switch (rnd() % 3) {
            case 0:
                from = pfind_word_end(t, len, got + 1);
                break;
            case 1:
                from = got + 1 + (size_t)(rnd() % 5);
                break;
            default:
                from = got == from ? got + 1 : got;
                break;
            }
        }
    }
}

static void test_word_end(void **state)
{
    unsigned char t[200];

    (void)state;
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rnd() % sizeof t), j = len ? (size_t)(rnd() % len) : 0, want = j;
        random_text(t, len);
        while (want < len && prules_word[t[want]])
            want++;
        assert_int_equal(pfind_word_end(t, len, j), want);
    }
}

static void test_classify(void **state)
{
    char name[80];

    (void)state;
    for (size_t i = 0; pmime_header_name(i) != NULL; i++) {
        const char *h = pmime_header_name(i);
        size_t n = strlen(h);
        assert_int_equal(pmime_classify((const unsigned char *)h, n),
                         pmime_classify_linear((const unsigned char *)h, n));
        assert_int_not_equal(pmime_classify((const unsigned char *)h, n), 0);
        /* upper case, mixed case, one byte off, one byte short */
        for (size_t k = 0; k < n; k++)
            name[k] = (char)((h[k] >= 'a' && h[k] <= 'z') ? h[k] - 32 : h[k]);
        assert_int_equal(pmime_classify((const unsigned char *)name, n),
                         pmime_classify_linear((const unsigned char *)h, n));
        for (size_t k = 0; k < n; k++) {
            memcpy(name, h, n);
            name[k] = (char)(name[k] ^ 1);
            assert_int_equal(pmime_classify((const unsigned char *)name, n),
                             pmime_classify_linear((const unsigned char *)name, n));
        }
        assert_int_equal(pmime_classify((const unsigned char *)h, n - 1),
                         pmime_classify_linear((const unsigned char *)h, n - 1));
    }
    for (int round = 0; round < 100000; round++) {
        size_t n = (size_t)(rnd() % 70);
        for (size_t k = 0; k < n; k++)
            name[k] = "abcdefghijklmnoprstuvwxyz-ABCDEFGHIJKLMNOPRSTUVWXYZ"[rnd() % 51];
        assert_int_equal(pmime_classify((const unsigned char *)name, n),
                         pmime_classify_linear((const unsigned char *)name, n));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_masks),
        cmocka_unit_test(test_avx2),
        cmocka_unit_test(test_avx512),
        cmocka_unit_test(test_next),
        cmocka_unit_test(test_word_end),
        cmocka_unit_test(test_classify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
