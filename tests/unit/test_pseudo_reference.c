/*
 * test_pseudo_reference.c — the fast path against an independent reference
 * (tests/tools/pseudo_ref.h, written from docs/PSEUDONYMISER.md, sharing no code or table
 * with pseudo/): on hand-written texts the e-mail, CPR and phone tokens the
 * pseudonymiser emits for a text/plain body are exactly the tokens of what the reference
 * finds there, and on 20,000 random texts biased towards the shapes (a disagreement is
 * shortened byte by byte to the smallest text that still shows it).  In the nosimd build (scripts/test) the same runs on the
 * plain candidate search.  The reference is checked too, on values whose answer is known.
 */
#include "unit/test_pseudo_util.h"

#include "helpers/test_helpers.h"
#include "tools/pseudo_ref_diff.h"

static uint64_t rng(void *s)
{
    return tp_rnd(s);
}

static void expect_ref(const char *text, const char *values)
{
    struct ref_hit h[16];
    size_t n = ref_scan((const unsigned char *)text, strlen(text), h, 16);
    char got[512] = "";

    for (size_t i = 0; i < n && i < 16; i++) {
        strcat(got, i ? " " : "");
        strcat(got, h[i].value);
    }
    if (strcmp(got, values) != 0)
        fail_msg("reference on \"%s\": \"%s\", expected \"%s\"", text, got, values);
}

/* The reference itself, on what the design states. */
static void test_reference_rules(void **state)
{
    (void)state;
    expect_ref("cpr 0101901234 ok", "0101901234");
    expect_ref("cpr 010190-1234 ok", "0101901234");
    expect_ref("cpr 010190 1234 ok", "0101901234");
    expect_ref("CPR0101901234lon", "0101901234");
    expect_ref("3201901234 0113901234 2902881234 3004901234 3104901234", "2902881234 3004901234");
    expect_ref("01019012345 10101901234", "");
    expect_ref("tlf 12345678, 12 34 56 78, 1234 5678", "12345678 12345678 12345678");
    expect_ref("12-34-56-78 12.34.56.78 +4587654321 0045 87654321", "12345678 12345678 87654321 87654321");
    expect_ref("123456789 20261015T100000 Tlf12345678", "12345678");
    expect_ref("mail Mette.Hansen@Example.DK.", "Mette.Hansen@Example.DK");
    expect_ref("12345678@example.dk a@b c@d.e1", "12345678@example.dk");
}

static void check(const char *text)
{
    char why[256];
    size_t found;
    int rc = ref_diff((const unsigned char *)text, strlen(text), 7u, why, sizeof why, &found);

    assert_int_not_equal(rc, -1);
    if (rc != 0)
        fail_msg("fast path and reference differ on \"%s\": %s", text, why);
}

static void test_hand_written(void **state)
{
    (void)state;
    check("Mit cpr er 010190-1234 og tlf 12 34 56 78, mail mette@example.dk\n");
    check("CPR0101901234 laegeerklaering_0101901234.pdf Tlf12345678 +45 87654321\n");
    check("DTSTART:20261015T100000 ordre 123456789 kode 01019012345\n");
    check("anne_marie@example.dk o'brien@example.com a.b-c+d@sub.example.org\n");
    check("1234 5678 12.34.56.78 12-34-56-78 004512345678 +4512345678\n");
    check("DTSTART:+4520261015T100000 0045 20261015T100000\n");
    check("Tlf+45 12 34 56 78, mobil+4587654321, 1+45 11 22 33 44\n");
    check("--mette@example.dk 'ole@example.dk' -@b.dk _x@example.dk\n");
    check("bilag_12_34_56_78 og 5534_0045 og lon_010190_1234.pdf\n");
}

/* The shortest text (dropping one byte at a time) on which the two still disagree, so
 * that a failure names the shape, not 600 bytes of noise. */
static size_t shrink(unsigned char *t, size_t len, unsigned kinds)
{
    char why[256];
    size_t found;
    bool again = true;

    while (again) {
        again = false;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = t[i];
            memmove(t + i, t + i + 1, len - i - 1);
            if (ref_diff(t, len - 1, kinds, why, sizeof why, &found) == 1) {
                len--;
                again = true;
                i--;
                continue;
            }
            memmove(t + i + 1, t + i, len - i - 1);
            t[i] = c;
        }
    }
    return len;
}

static void test_random_texts(void **state)
{
    uint64_t s = 0x243F6A8885A308D3ull;
    unsigned char t[600];
    size_t total = 0, disagree = 0;
    char first[1024] = "";

    (void)state;
    for (int round = 0; round < 20000; round++) {
        size_t len = ref_random_text(t, sizeof t, rng, &s), found;
        char why[256];
        int rc = ref_diff(t, len, 7u, why, sizeof why, &found);
        assert_int_not_equal(rc, -1);
        total += found;
        if (rc != 0 && disagree++ == 0) {
            len = shrink(t, len, 7u);
            ref_diff(t, len, 7u, why, sizeof why, &found);
            snprintf(first, sizeof first, "round %d: %s in \"%.*s\"", round, why, (int)len, t);
        }
    }
    print_message("reference: %zu identifiers in 20000 random texts, %zu disagreements\n",
                  total, disagree);
    if (disagree != 0)
        fail_msg("%zu disagreements, the first (shortened): %s", disagree, first);
    assert_true(total > 20000);
}

/* ---- the corpora: every text part, decoded ------------------------------------------ */

struct corpus_stats {
    size_t messages, texts, ascii, identifiers, disagree;
    char first[1024];
};

/* The decoded text of each text leaf of m (libetpan: the reference shares no MIME code
 * with the pseudonymiser either) that is all printable ASCII, through ref_diff. */
static void walk_texts(struct mailmime *m, struct corpus_stats *st, const char *name, int depth)
{
    if (m == NULL || depth > 40)
        return;
    if (m->mm_type == MAILMIME_MULTIPLE) {
        for (clistiter *it = clist_begin(m->mm_data.mm_multipart.mm_mp_list); it != NULL;
             it = clist_next(it))
            walk_texts(clist_content(it), st, name, depth + 1);
        return;
    }
    if (m->mm_type == MAILMIME_MESSAGE) {
        walk_texts(m->mm_data.mm_message.mm_msg_mime, st, name, depth + 1);
        return;
    }
    struct mailmime_content *ct = m->mm_content_type;
    struct mailmime_data *body = m->mm_data.mm_single;
    if (ct == NULL || ct->ct_type == NULL || body == NULL ||
        ct->ct_type->tp_type != MAILMIME_TYPE_DISCRETE_TYPE ||
        ct->ct_type->tp_data.tp_discrete_type == NULL ||
        ct->ct_type->tp_data.tp_discrete_type->dt_type != MAILMIME_DISCRETE_TYPE_TEXT)
        return;
    size_t idx = 0, dlen = 0;
    char *dec = NULL;
    if (mailmime_part_parse(body->dt_data.dt_text.dt_data, body->dt_data.dt_text.dt_length, &idx,
                            body->dt_encoding, &dec, &dlen) != MAILIMF_NO_ERROR)
        return;
    st->texts++;
    /* The reference reads ASCII: a UTF-8 letter (U+00C0-U+024F but the multiplication and
     * division signs) becomes 'e', any other non-ASCII character or control a blank, and
     * both sides read that text. */
    size_t o = 0;
    bool changed = false;
    for (size_t i = 0; i < dlen; i++) {
        unsigned char c = (unsigned char)dec[i];
        if ((c >= 0x20 && c < 0x7F) || c == '\n' || c == '\r') {
            dec[o++] = (char)c;
            continue;
        }
        changed = true;
        if (c >= 0xC2 && c <= 0xDF && i + 1 < dlen && ((unsigned char)dec[i + 1] & 0xC0) == 0x80) {
            unsigned cp = (unsigned)(c & 0x1F) << 6 | ((unsigned char)dec[i + 1] & 0x3F);
            i++;
            dec[o++] = (cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7) ? 'e' : ' ';
            continue;
        }
        while (c >= 0xC0 && i + 1 < dlen && ((unsigned char)dec[i + 1] & 0xC0) == 0x80)
            i++;
        dec[o++] = ' ';
    }
    {
        char why[256];
        size_t found;
        int rc = ref_diff((const unsigned char *)dec, o, 7u, why, sizeof why, &found);
        assert_int_not_equal(rc, -1);
        st->ascii += !changed;
        st->identifiers += found;
        if (rc != 0 && st->disagree++ == 0)
            snprintf(st->first, sizeof st->first, "%s: %s", name, why);
    }
    mailmime_decoded_part_free(dec);
}

static int corpus_one(const char *name, const unsigned char *data, size_t len, void *arg)
{
    struct corpus_stats *st = arg;
    struct mailmime *mime = NULL;
    size_t idx = 0;

    st->messages++;
    if (mailmime_parse((const char *)data, len, &idx, &mime) == MAILIMF_NO_ERROR && mime != NULL) {
        walk_texts(mime, st, name, 0);
        mailmime_free(mime);
    }
    return 0;
}

/* The text parts of tests/data/nasty and of a generated corpus (scripts/gen-corpus, fixed
 * seed): the fast path and the reference find the same e-mail, CPR and phone values in
 * each (non-ASCII characters mapped to ASCII first, as walk_texts says). */
static void test_corpus_texts(void **state)
{
    char src[4096], dir[4200], cmd[9000];
    char *tmp = th_tempdir("mailret-pseudo-reference");
    struct corpus_stats nasty = {0}, gen = {0};

    (void)state;
    assert_non_null(tmp);
    tp_source_dir(src, sizeof src);
    snprintf(dir, sizeof dir, "%s/tests/data/nasty", src);
    assert_true(th_each_file(dir, corpus_one, &nasty) > 10);
    snprintf(cmd, sizeof cmd,
             "python3 '%s/scripts/gen-corpus' --count 600 --seed 20261207 --out '%s/corpus' "
             "--format eml >/dev/null", src, tmp);
    assert_int_equal(system(cmd), 0);
    snprintf(dir, sizeof dir, "%s/corpus/eml", tmp);
    assert_int_equal(th_each_file(dir, corpus_one, &gen), 600);
    th_rmtree(tmp);
    free(tmp);
    print_message("reference: nasty: %zu messages, %zu text parts (%zu ASCII as written), %zu identifiers, "
                  "%zu disagreements\n", nasty.messages, nasty.texts, nasty.ascii,
                  nasty.identifiers, nasty.disagree);
    print_message("reference: generated: %zu messages, %zu text parts (%zu ASCII as written), %zu "
                  "identifiers, %zu disagreements\n", gen.messages, gen.texts, gen.ascii,
                  gen.identifiers, gen.disagree);
    if (nasty.disagree != 0)
        fail_msg("nasty corpus: %s", nasty.first);
    if (gen.disagree != 0)
        fail_msg("generated corpus: %s", gen.first);
    assert_true(gen.texts > 900 && gen.identifiers > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_rules),
        cmocka_unit_test(test_hand_written),
        cmocka_unit_test(test_random_texts),
        cmocka_unit_test(test_corpus_texts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
