/*
 * test_pseudo_qppatch.c — quoted-printable bodies written back with only their
 * changed lines re-encoded (pqp_patch), and the property that makes it sound: the decoder
 * decodes a body line by line, and says where the lines are (pcodec_qp_decode).  Random bodies, well-formed and broken,
 * with random edits; every patched body must decode to the edited text, keep every line
 * it did not replace byte for byte, keep the lines it wrote within 76 characters, and give
 * the original back through its edits.  And, through pseudo_message, that a real message
 * keeps its untouched lines and its re-identification data holds only the changed ones.
 */
#include "unit/test_pseudo_util.h"

#include "pseudo/codec.h"
#include "pseudo/hooks.h"
#include "pseudo/out.h"

static size_t rnd_below(uint64_t *s, size_t n)
{
    return n == 0 ? 0 : (size_t)(tp_rnd(s) % n);
}

/* A body an encoder or a broken sender might write: QP escapes (valid and not), soft
 * breaks (with blanks, without a line end at the very end), bare LF and CR, 8-bit bytes,
 * blanks before line ends, long lines. */
static void random_body(uint64_t *s, pbuf *b)
{
    static const char *const pieces[] = {
        "mette", "Hansen", " ", "\t", "=3D", "=C3=A6", "=c3=a6", "=\r\n", "= \r\n", "=\n",
        "\r\n", "\n", "\r", "=", "=4", "=ZZ", "=\t \r\n", "12 34 56 78", "@", ".dk",
        "\xc3\xb8", "\xa1", "  \r\n", "x", "=0D=0A", "--", "abcdefghij"};
    size_t n = rnd_below(s, 60);
    mr_error err = {0};

    b->len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = pieces[rnd_below(s, sizeof pieces / sizeof pieces[0])];
        assert_int_equal(pbuf_append(b, p, strlen(p), &err), 0);
    }
    if (rnd_below(s, 4) == 0)
        assert_int_equal(pbuf_append(b, "=", 1, &err), 0);   /* '=' at the very end */
}

/* Lines end after each '\n' (pcodec_qp_decode's lines). */
static bool is_line_start(const unsigned char *p, size_t len, size_t off)
{
    return off == 0 || off == len || p[off - 1] == '\n';
}

/* The lines the decoder records tile the body and the decoded text, each ends after a
 * '\n' or at the end of the body, and each decodes on its own to its share of the text:
 * what pqp_patch relies on. */
static void test_decoder_lines(void **state)
{
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    int partial = 0;
    pbuf body = {0}, whole = {0}, part = {0}, plain = {0};
    pqp_lines lines = {0};
    mr_error err = {0};

    (void)state;
    for (int iter = 0; iter < 20000; iter++) {
        size_t enc = 0, dec = 0;
        random_body(&s, &body);
        whole.len = plain.len = 0;
        assert_int_equal(pcodec_qp_decode(body.p, body.len, &whole, &lines, &err), 0);
        /* Recording the lines changes nothing in the decoding. */
        assert_int_equal(pcodec_qp_decode(body.p, body.len, &plain, NULL, &err), 0);
        assert_int_equal(plain.len, whole.len);
        assert_true(whole.len == 0 || memcmp(plain.p, whole.p, whole.len) == 0);
        assert_true(body.len == 0 ? lines.n == 0 : lines.n > 0);
        for (size_t k = 0; k < lines.n; k++) {
            const struct pqp_line *l = &lines.v[k];
            assert_true(l->enc_end > enc && l->enc_end <= body.len);
            assert_true(l->dec_end >= dec && l->dec_end <= whole.len);
            assert_true(l->enc_end == body.len || body.p[l->enc_end - 1] == '\n');
            /* No '\n' inside a line. */
            assert_null(memchr(body.p + enc, '\n', l->enc_end - enc - 1));
            part.len = 0;
            assert_int_equal(pcodec_qp_decode(body.p + enc, l->enc_end - enc, &part, NULL, &err),
                             0);
            assert_int_equal(part.len, l->dec_end - dec);
            assert_true(part.len == 0 || memcmp(part.p, whole.p + dec, part.len) == 0);
            enc = l->enc_end;
            dec = l->dec_end;
        }
        if (lines.partial) {
            /* Lines under PQP_LINE_MIN bytes on average: a prefix, at the bound. */
            assert_int_equal(lines.n, body.len / PQP_LINE_MIN + 1);
            partial++;
            continue;
        }
        assert_int_equal(enc, body.len);
        assert_int_equal(dec, whole.len);
    }
    print_message("%d of 20000 bodies had lines too short for a table\n", partial);
    assert_true(partial < 2000);   /* most bodies were checked whole */
    pqp_lines_free(&lines);
    pbuf_free(&body);
    pbuf_free(&whole);
    pbuf_free(&part);
    pbuf_free(&plain);
}

/* Random edits over the decoded text dec, written into text (base dec). */
static void random_edits(uint64_t *s, const pbuf *dec, pout *text)
{
    static const char *const reps[] = {
        "p-abcdefghijklmnop@pseudonym.invalid", "CPR-abcdefghijklmnop", "", "=", " ",
        "TLF-abcdefghijklmnop \r\n", "Navn-abcdefghijklmnop", "\xc3\xa6\xc3\xb8",
        "a very long replacement that runs past the end of any quoted-printable line "
        "at all, and then some more of it"};
    size_t cursor = 0;
    mr_error err = {0};

    while (cursor < dec->len && rnd_below(s, 3) != 0) {
        size_t st = cursor + rnd_below(s, dec->len - cursor + 1);
        size_t en = st + rnd_below(s, dec->len - st + 1 < 12 ? dec->len - st + 1 : 12);
        const char *r = reps[rnd_below(s, sizeof reps / sizeof reps[0])];
        assert_int_equal(pout_copy(text, dec->p + cursor, st - cursor, &err), 0);
        assert_int_equal(pout_replace(text, dec->p + st, en - st, (const unsigned char *)r,
                                      strlen(r), &err), 0);
        cursor = en;
    }
    assert_int_equal(pout_copy(text, dec->p + cursor, dec->len - cursor, &err), 0);
}

static void check_patch(const pbuf *body, const char *eol, const pout *text, const pout *out)
{
    pbuf dec = {0}, back = {0};
    mr_error err = {0};

    /* Decodes to the edited text. */
    assert_int_equal(pcodec_qp_decode(out->buf.p, out->buf.len, &dec, NULL, &err), 0);
    assert_int_equal(dec.len, text->buf.len);
    assert_true(dec.len == 0 || memcmp(dec.p, text->buf.p, dec.len) == 0);
    /* The edits give the original back, and each replaces whole lines. */
    assert_int_equal(pedits_apply(out->buf.p, out->buf.len, out->edits, out->n_edits, body->p,
                                  &back, &err), 0);
    assert_int_equal(back.len, body->len);
    assert_true(back.len == 0 || memcmp(back.p, body->p, back.len) == 0);
    for (size_t i = 0; i < out->n_edits; i++) {
        const struct pedit *e = &out->edits[i];
        assert_true(is_line_start(body->p, body->len, e->orig_off));
        assert_true(is_line_start(body->p, body->len, e->orig_off + e->orig_len));
        /* What was written: lines of at most 76 characters, ending with a line end
         * when the lines they replace did. */
        const unsigned char *w = out->buf.p + e->out_off;
        size_t col = 0;
        for (size_t k = 0; k < e->out_len; k++) {
            if (w[k] == '\n') {
                col = 0;
                continue;
            }
            if (w[k] != '\r' || strcmp(eol, "\r\n") != 0 || k + 1 >= e->out_len ||
                w[k + 1] != '\n')
                col++;
            assert_true(col <= 76);
        }
        if (e->orig_len > 0 && body->p[e->orig_off + e->orig_len - 1] == '\n')
            assert_true(e->out_len > 0 && w[e->out_len - 1] == '\n');
    }
    pbuf_free(&dec);
    pbuf_free(&back);
}

/* The failing case, for the log. */
static void print_case(const pbuf *body, const pout *text, const mr_error *err)
{
    print_error("%s; body of %zu bytes:", err->msg, body->len);
    for (size_t i = 0; i < body->len; i++)
        print_error(body->p[i] >= 32 && body->p[i] < 127 ? "%c" : "\\x%02x", body->p[i]);
    for (size_t i = 0; i < text->n_edits; i++)
        print_error("\nedit %zu+%zu -> %zu+%zu", text->edits[i].orig_off,
                    text->edits[i].orig_len, text->edits[i].out_off, text->edits[i].out_len);
    print_error("\n");
}

static void test_patch_random(void **state)
{
    uint64_t s = 0xD1B54A32D192ED03ULL;
    pbuf body = {0}, dec = {0}, scratch = {0};
    pqp_lines lines = {0};
    mr_error err = {0};
    int patched = 0;

    (void)state;
    for (int iter = 0; iter < 20000; iter++) {
        const char *eol;
        pout text, out;
        random_body(&s, &body);
        if (body.len == 0)
            continue;
        eol = pcodec_eol_of(body.p, body.len);
        dec.len = 0;
        assert_int_equal(pcodec_qp_decode(body.p, body.len, &dec, &lines, &err), 0);
        if (lines.partial)
            continue;   /* re-encoded whole instead (test_short_lines_partial) */
        pout_init(&text, dec.p, dec.len);
        random_edits(&s, &dec, &text);
        pout_init(&out, body.p, body.len);
        if (text.n_edits > 0) {
            int prc = pqp_patch(body.p, body.len, eol, &lines, &text, &scratch, &out, &err);
            if (prc != 0)
                print_case(&body, &text, &err);
            assert_int_equal(prc, 0);
            check_patch(&body, eol, &text, &out);
            patched++;
        }
        pout_free(&text);
        pout_free(&out);
    }
    print_message("%d of 20000 bodies patched\n", patched);
    assert_true(patched > 5000);   /* the loop did test something */
    pqp_lines_free(&lines);
    pbuf_free(&body);
    pbuf_free(&dec);
    pbuf_free(&scratch);
}

/* Lines or edits that do not fit the body are refused, not written somewhere. */
static void test_patch_refuses_bad_input(void **state)
{
    const unsigned char b[] = "abc\r\ndef\r\n";
    unsigned char dec[16] = "abc\r\ndef\r\n";
    struct pqp_line short_lines[] = {{5, 5}, {8, 8}}, ok_lines[] = {{5, 5}, {10, 10}};
    pqp_lines bad = {.v = short_lines, .n = 2, .cap = 2}, good = {.v = ok_lines, .n = 2, .cap = 2},
              none = {0};
    pbuf scratch = {0};
    pout text, out;
    mr_error err = {0};

    (void)state;
    pout_init(&text, dec, 10);
    assert_int_equal(pout_copy(&text, dec, 5, &err), 0);
    assert_int_equal(pout_replace(&text, dec + 5, 3, (const unsigned char *)"X", 1, &err), 0);
    assert_int_equal(pout_copy(&text, dec + 8, 2, &err), 0);
    pout_init(&out, b, 10);
    /* Lines that end before the body does, or none. */
    assert_int_equal(pqp_patch(b, 10, "\r\n", &bad, &text, &scratch, &out, &err),
                     MR_E_INTERNAL);
    assert_int_equal(pqp_patch(b, 10, "\r\n", &none, &text, &scratch, &out, &err),
                     MR_E_INTERNAL);
    /* An edit past the decoded text. */
    text.edits[0].orig_off = 9;
    assert_int_equal(pqp_patch(b, 10, "\r\n", &good, &text, &scratch, &out, &err),
                     MR_E_INTERNAL);
    /* And the same edit in place is written: line 2 replaced, line 1 kept. */
    text.edits[0].orig_off = 5;
    assert_int_equal(pqp_patch(b, 10, "\r\n", &good, &text, &scratch, &out, &err), 0);
    assert_int_equal(out.buf.len, 8);
    assert_memory_equal(out.buf.p, "abc\r\nX\r\n", 8);
    assert_int_equal(out.n_edits, 1);
    assert_int_equal(out.edits[0].orig_off, 5);
    assert_int_equal(out.edits[0].orig_len, 5);
    pout_free(&text);
    pout_free(&out);
    pbuf_free(&scratch);
}

/* Through pseudo_message: an address split by a soft break and a name are replaced; the
 * lines between them and after them stay as they were (a long line is not re-wrapped),
 * and the re-identification data holds the replaced lines, not the body. */
static void test_message_keeps_untouched_lines(void **state)
{
    static const char long_line[] =
        "Denne linje er lang og uden identifikatorer, den er skrevet af en anden afsender "
        "og er 100 tegn.\r\n";
    char msg[2048];
    pseudo_key key;
    struct pseudo_policy pol;
    pseudo_result *res;
    const unsigned char *o;
    size_t olen, rlen;

    (void)state;
    snprintf(msg, sizeof msg,
             "From: Mette Hansen <mette.hansen@example.dk>\r\n"
             "To: post@akasse.example\r\nSubject: Ny adresse\r\nMIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=utf-8\r\n"
             "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
             "Skriv til mette.han=\r\nsen@example.dk i stedet.\r\n"
             "%s%s%s"
             "Med venlig hilsen\r\nMette Hansen\r\n",
             long_line, long_line, long_line);
    tp_key(&key, 7);
    pseudo_policy_default(&pol);
    res = tp_run(&key, &pol, msg, strlen(msg));
    o = pseudo_result_bytes(res, &olen);
    pseudo_result_reid(res, &rlen);
    char *out = strndup((const char *)o, olen);
    assert_non_null(out);
    /* The untouched lines, byte for byte (76+ characters, so a re-encode would wrap). */
    char three[512];
    snprintf(three, sizeof three, "%s%s%sMed venlig hilsen\r\n", long_line, long_line,
             long_line);
    assert_non_null(strstr(out, three));
    assert_null(strstr(out, "mette"));
    assert_null(strstr(out, "Mette"));
    assert_null(strstr(out, "han=\r\nsen"));
    /* The reid data holds the replaced lines and the header fields, not a copy of the
     * body: smaller than the body alone (whole re-encoding made it larger). */
    const char *body = strstr(msg, "\r\n\r\n") + 4;
    print_message("reid %zu bytes, body %zu\n", rlen, strlen(body));
    assert_true(rlen < strlen(body));
    free(out);
    pseudo_result_free(res);
}

/* A body of very short lines is not given a line table 16 times its size: the table is
 * left partial, and such a part is re-encoded whole (still pseudonymised, still exact). */
static void test_short_lines_partial(void **state)
{
    static const char head[] =
        "From: a@example.dk\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n";
    pbuf body = {0}, dec = {0}, msg = {0};
    pqp_lines lines = {0};
    mr_error err = {0};
    pseudo_key key;
    struct pseudo_policy pol;
    pseudo_result *res;
    const unsigned char *o;
    size_t olen;

    (void)state;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(pbuf_append(&body, "a=\r\n", 4, &err), 0);
    assert_int_equal(pbuf_append(&body, "skriv til mette@example.dk\r\n", 28, &err), 0);
    assert_int_equal(pcodec_qp_decode(body.p, body.len, &dec, &lines, &err), 0);
    assert_true(lines.partial);
    assert_true(lines.n <= body.len / PQP_LINE_MIN + 1);
    /* Decoding is unaffected. */
    assert_int_equal(dec.len, 1000 + 28);

    assert_int_equal(pbuf_append(&msg, head, strlen(head), &err), 0);
    assert_int_equal(pbuf_append(&msg, body.p, body.len, &err), 0);
    tp_key(&key, 7);
    pseudo_policy_default(&pol);
    res = tp_run(&key, &pol, msg.p, msg.len);   /* restores exactly */
    assert_false(pseudo_result_is_whole(res));
    o = pseudo_result_bytes(res, &olen);
    assert_null(memmem(o, olen, "mette", 5));
    pseudo_result_free(res);
    pqp_lines_free(&lines);
    pbuf_free(&body);
    pbuf_free(&dec);
    pbuf_free(&msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoder_lines),
        cmocka_unit_test(test_patch_random),
        cmocka_unit_test(test_patch_refuses_bad_input),
        cmocka_unit_test(test_message_keeps_untouched_lines),
        cmocka_unit_test(test_short_lines_partial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
