/*
 * test_pseudo_names.c — the display-name table (names.c) against its
 * definitions.  A name's canonical value is its token's input: ptoken_normalise_buf's
 * (blanks collapsed, NFC, case-folded).  pnames_add takes a short cut for names of ASCII
 * and precomposed Latin-1 letters, whose folded bytes it uses as that value; random names
 * (with ß, ×, other scripts, decomposed letters and invalid bytes among them, which must
 * not take the short cut) check that the value is the normaliser's in every case, that a
 * name added again adds nothing, and that the prepared table finds every name in text as
 * written, in other case and in Latin-1.
 */
#include "unit/test_pseudo_util.h"

#include "pseudo/arena.h"
#include "pseudo/find.h"
#include "pseudo/names.h"
#include "pseudo/out.h"
#include "pseudo/token.h"

static size_t rnd_below(uint64_t *s, size_t n)
{
    return n == 0 ? 0 : (size_t)(tp_rnd(s) % n);
}

/* One word of a name: letters from a pool that mixes the short cut's alphabet with what
 * must leave it (ß C3 9F, × C3 97, Ł C5 81, a combining ring CC 8A, a Latin-1 byte that is
 * not UTF-8). */
static void random_word(uint64_t *s, pbuf *b)
{
    static const char *const letters[] = {
        "a", "e", "n", "s", "B", "K", "M", "Z", "\xc3\xa6", "\xc3\x86", "\xc3\xb8",
        "\xc3\x98", "\xc3\xa5", "\xc3\x85", "\xc3\xa9", "\xc3\x9e", "\xc3\xbf", "\xc3\x9f",
        "\xc3\x97", "\xc5\x81", "a\xcc\x8a", "\xe6", "1", "_"};
    size_t n = 1 + rnd_below(s, 8);
    mr_error err = {0};

    for (size_t i = 0; i < n; i++) {
        /* Mostly the common letters: the short cut must be taken often to be tested. */
        size_t pool = rnd_below(s, 4) == 0 ? sizeof letters / sizeof letters[0] : 17;
        const char *l = letters[rnd_below(s, pool)];
        assert_int_equal(pbuf_append(b, l, strlen(l), &err), 0);
    }
}

/* The table, its arena and the word under test: set up and torn down per test. */
struct fixture {
    parena arena;
    pnames n;
    pbuf word;
};

static int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);

    if (fx == NULL)
        return -1;
    parena_init(&fx->arena);
    pnames_init(&fx->n, &fx->arena);
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;

    pnames_free(&fx->n);
    parena_free(&fx->arena);
    pbuf_free(&fx->word);
    free(fx);
    return 0;
}

/* An empty table and the next random word, as a new message would see them. */
static void next_word(struct fixture *fx, uint64_t *seed)
{
    pnames_reset(&fx->n);
    parena_reset(&fx->arena);
    fx->word.len = 0;
    random_word(seed, &fx->word);
}

/* Each pattern's canonical value is what the normaliser makes of the text it was added
 * from; for one word the table holds that word (and its Latin-1 form) only. */
static void test_canonical_values(void **state)
{
    struct fixture *fx = *state;
    pnames *n = &fx->n;
    const pbuf *word = &fx->word;
    uint64_t seed = 0x6E616D6573ULL;
    mr_error err = {0};
    size_t shortcut = 0, slow = 0;

    for (int round = 0; round < 20000; round++) {
        unsigned char nbuf[256], *norm = NULL;
        size_t nlen = 0;

        next_word(fx, &seed);
        assert_int_equal(pnames_add(n, word->p, word->len, &err), 0);
        if (n->n_pats == 0)
            continue;
        assert_int_equal(n->n_canon, 1);
        assert_true(n->n_pats <= 2);
        assert_int_equal(ptoken_normalise_buf(PSEUDO_NAME, word->p, word->len, nbuf, sizeof nbuf,
                                              &norm, &nlen, &err),
                         0);
        assert_int_equal(n->canon_len[0], nlen);
        assert_memory_equal(n->canon[0], norm, nlen);
        if (memchr(word->p, 0xCC, word->len) != NULL || memchr(word->p, 0xC5, word->len) != NULL ||
            memmem(word->p, word->len, "\xc3\x9f", 2) != NULL)
            slow++;
        else
            shortcut++;
        if (norm != nbuf)
            free(norm);
        /* Added again (every header, every pass): nothing new. */
        size_t pats = n->n_pats;
        assert_int_equal(pnames_add(n, word->p, word->len, &err), 0);
        assert_int_equal(n->n_pats, pats);
        assert_int_equal(n->n_canon, 1);
    }
    /* Both ways were taken, many times. */
    assert_true(shortcut > 5000);
    assert_true(slow > 1000);
}

/* ASCII and the Latin-1 supplement in upper case (what the table folds). */
static void upper_utf8(const unsigned char *in, size_t len, unsigned char *out)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = in[i];
        if (c >= 'a' && c <= 'z')
            c = (unsigned char)(c - 32);
        else if (i > 0 && in[i - 1] == 0xC3 && c >= 0xA0 && c <= 0xBE && c != 0xB7)
            c = (unsigned char)(c - 32);
        out[i] = c;
    }
}

/* A prepared table finds each added name in text: as written, in upper case (unless a
 * two-letter name, which matches only as written) and, for a name with Latin-1 letters,
 * in Latin-1. */
static void test_found_in_text(void **state)
{
    struct fixture *fx = *state;
    pnames *n = &fx->n;
    const pbuf *word = &fx->word;
    uint64_t seed = 0x66696E64ULL;
    mr_error err = {0};
    size_t found_upper = 0, found_latin1 = 0;

    for (int round = 0; round < 5000; round++) {
        unsigned char text[64], up[64];
        size_t canon = SIZE_MAX;

        next_word(fx, &seed);
        if (word->len + 2 > sizeof text)
            continue;
        assert_int_equal(pnames_add(n, word->p, word->len, &err), 0);
        assert_int_equal(pnames_prepare(n, &err), 0);
        if (n->n_pats > 0) {
            /* " <name>," as written. */
            text[0] = ' ';
            memcpy(text + 1, word->p, word->len);
            text[1 + word->len] = ',';
            size_t we = pfind_word_end(text, word->len + 2, 1);
            assert_int_equal(pnames_match(n, text, word->len + 2, 1, we, &canon), word->len);
            assert_int_equal(canon, 0);
            if (!n->pats[0].exact_case) {
                upper_utf8(text, word->len + 2, up);
                canon = SIZE_MAX;
                assert_int_equal(pnames_match(n, up, word->len + 2, 1, we, &canon), word->len);
                assert_int_equal(canon, 0);
                found_upper++;
            }
            if (n->n_pats == 2) {
                const struct pname_pat *l = &n->pats[1];
                assert_true(l->latin1);
                memcpy(text + 1, l->pat, l->len);
                text[1 + l->len] = ',';
                we = pfind_word_end(text, l->len + 2, 1);
                canon = SIZE_MAX;
                assert_int_equal(pnames_match(n, text, l->len + 2, 1, we, &canon), l->len);
                assert_int_equal(canon, 0);
                found_latin1++;
            }
        }
    }
    assert_true(found_upper > 1000);
    assert_true(found_latin1 > 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_canonical_values, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_found_in_text, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
