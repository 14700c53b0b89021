/*
 * test_pseudo_detect.c — what is replaced, where, and by which token: address
 * headers and display names, CPR and phone forms (and near misses that must stay), IPs
 * only in Received-type headers, RFC 2047 / quoted-printable / base64 re-encoded in the
 * same encoding and charset, HTML and mailto:, RFC 2231 file names, binary attachments
 * untouched, Message-ID rule, the fund's own addresses, token-shaped text, policy switches,
 * and that the output still parses as MIME with the same tree (libetpan).
 */
#include "unit/test_pseudo_util.h"

#include "pseudo/codec.h"
#include "pseudo/out.h"
#include "pseudo/token.h"

/* The shape of a value's token under the test key (fill 7, as tp_text uses). */
static const char *shape(enum pseudo_kind kind, const char *value)
{
    static char buf[8][PSEUDO_SHAPE_MAX];
    static int next;
    char tok[PSEUDO_TOKEN_LEN + 1];
    pseudo_key k;
    mr_error err = {0};
    char *out = buf[next++ % 8];

    tp_key(&k, 7);
    assert_int_equal(pseudo_token(&k, kind, value, tok, &err), 0);
    ptoken_shape(kind, tok, out);
    return out;
}

#define HAS(s, needle) \
    do { \
        if (strstr((s), (needle)) == NULL) \
            fail_msg("missing \"%s\" in:\n%s", (needle), (s)); \
    } while (0)
#define HASNT(s, needle) \
    do { \
        if (strstr((s), (needle)) != NULL) \
            fail_msg("unexpected \"%s\" in:\n%s", (needle), (s)); \
    } while (0)

static void test_address_headers(void **state)
{
    char *o = tp_text("From: \"Hansen, Mette\" <Mette.Hansen@Example.DK>\r\n"
                      "To: Lars Bo <lars@example.dk>, post@akasse.example\r\n"
                      "Cc: anna@example.dk (Anna Berg)\r\n"
                      "Return-Path: <mette.hansen@example.dk>\r\n"
                      "Delivered-To: lars@example.dk\r\nX-Original-To: lars@example.dk\r\n"
                      "Subject: Kære Mette\r\n\r\nHej Lars, hilsen Anna Berg og METTE\r\n");
    (void)state;
    /* Same address in any case: one token. */
    HAS(o, "From: \"Navn-");
    HAS(o, shape(PSEUDO_EMAIL, "mette.hansen@example.dk"));
    HAS(o, "Return-Path: <p-");
    HASNT(o, "Mette");
    HASNT(o, "METTE");
    HASNT(o, "mette");
    HASNT(o, "Lars");
    HASNT(o, "Anna");
    HASNT(o, "Berg");
    HASNT(o, "@example.dk");
    HAS(o, shape(PSEUDO_NAME, "Lars Bo"));
    HAS(o, "Hej " );
    HAS(o, shape(PSEUDO_NAME, "lars"));
    HAS(o, shape(PSEUDO_NAME, "Anna Berg"));
    HAS(o, shape(PSEUDO_NAME, "Mette"));
    HAS(o, "Subject: K\xc3\xa6re Navn-");
    free(o);
}

static void test_own_addresses_kept(void **state)
{
    static const char *const doms[] = {"akasse.example"};
    static const char *const addrs[] = {"Jobs@Partner.example"};
    struct pseudo_policy pol;
    char *o;

    (void)state;
    pseudo_policy_default(&pol);
    pol.own_domains = doms;
    pol.n_own_domains = 1;
    pol.own_addresses = addrs;
    pol.n_own_addresses = 1;
    o = tp_text_pol(&pol, "From: Kundeservice <post@akasse.example>\r\n"
                          "To: Mette Hansen <mette@example.dk>, jobs@partner.example,"
                          " x@mail.akasse.example, y@notakasse.example\r\n\r\n"
                          "Skriv til post@akasse.example eller jobs@partner.example\r\n");
    HAS(o, "From: Kundeservice <post@akasse.example>");
    HAS(o, "Skriv til post@akasse.example eller jobs@partner.example");
    HAS(o, "x@mail.akasse.example");   /* subdomain of the fund's */
    HASNT(o, "y@notakasse.example");   /* merely ends with the same letters */
    HASNT(o, "mette@example.dk");
    free(o);
}

static void test_cpr(void **state)
{
    char *o = tp_text("Subject: x\r\n\r\n"
                      "a 010203-1234 b 0102031234 c 010203 1234 d 290200-1234\r\n"
                      "keep: 320103-1234 011303-1234 300203-1234 000103-1234 01020312345 "
                      "90102031234 0102031234567 010203-12345 1234567890123\r\n");
    const char *t = shape(PSEUDO_CPR, "0102031234");

    (void)state;
    HAS(o, "a ");
    /* All three spellings give one token (reduced to digits); mod 11 is not required. */
    char expect[256];
    snprintf(expect, sizeof expect, "a %s b %s c %s d CPR-", t, t, t);
    HAS(o, expect);
    HASNT(o, "290200-1234");
    HAS(o, "keep: 320103-1234 011303-1234 300203-1234 000103-1234 01020312345 "
           "90102031234 0102031234567 010203-12345 1234567890123");
    free(o);
}

static void test_phone(void **state)
{
    char *o = tp_text("Subject: x\r\n\r\n"
                      "1: 12345678\r\n2: 12 34 56 78\r\n3: 1234 5678\r\n4: +45 12 34 56 78\r\n"
                      "5: +4512345678\r\n6: 0045 12345678\r\n7: +45 1234 5678\r\n"
                      "8: 12-34-56-78\r\n9: 12.34.56.78\r\n10: 12\xc2\xa0" "34\xc2\xa0" "56\xc2\xa0" "78\r\n"
                      "11: 1234\xe2\x80\xaf" "5678\r\n12: +45\xc2\xa0" "12\xe2\x80\x89" "34\xe2\x80\x89"
                      "56\xe2\x80\x89" "78\r\n13: 12\xa0" "34\xa0" "56\xa0" "78\r\n"
                      "14: Tlf12345678\r\n15: \xe2\x80\x9c" "12345678\xe2\x80\x9d\r\n"
                      "keep: 123456789 1234567 2019-2020 12-34-5678 20261015T100000 1234_56789\r\n");
    const char *t = shape(PSEUDO_PHONE, "12345678");
    char line[128];

    (void)state;
    for (int i = 1; i <= 13; i++) {
        snprintf(line, sizeof line, "%d: %s\r\n", i, t);
        HAS(o, line);
    }
    snprintf(line, sizeof line, "14: Tlf%s\r\n", t);
    HAS(o, line);
    snprintf(line, sizeof line, "15: \xe2\x80\x9c%s\xe2\x80\x9d\r\n", t);
    HAS(o, line);
    HAS(o, "keep: 123456789 1234567 2019-2020 12-34-5678 20261015T100000 1234_56789");
    assert_string_equal(shape(PSEUDO_PHONE, "+45 12 34 56 78"), t);
    free(o);
}

static void test_ips_only_in_received(void **state)
{
    char *o = tp_text("Received: from h.example.net (h.example.net [192.0.2.55]) by mx\r\n"
                      "\tid 4F3A; Mon, 1 Jan 2024 10:00:00 +0100\r\n"
                      "Received: from [IPv6:2001:db8::25] by x\r\n"
                      "X-Originating-IP: [198.51.100.7]\r\n"
                      "Subject: server 192.0.2.1\r\n\r\nbody 192.0.2.55 and 2001:db8::25\r\n");
    (void)state;
    HAS(o, "[IP-");
    HAS(o, shape(PSEUDO_IP, "192.0.2.55"));
    HAS(o, shape(PSEUDO_IP, "2001:db8::25"));
    HAS(o, shape(PSEUDO_IP, "198.51.100.7"));
    HAS(o, "10:00:00 +0100");
    HAS(o, "Subject: server 192.0.2.1");
    HAS(o, "body 192.0.2.55 and 2001:db8::25");
    free(o);
}

static void test_rfc2047(void **state)
{
    char *o = tp_text("From: =?iso-8859-1?Q?S=F8ren_Hansen?= <s@example.dk>\r\n"
                      "Subject: =?utf-8?B?Q1BSIDAxMDIwMy0xMjM0?= and =?UTF-8?q?tlf_12345678?=\r\n"
                      "\r\nHej S\xf8ren\r\n");
    (void)state;
    /* Same charset and encoding as the original words. */
    HAS(o, "From: =?iso-8859-1?Q?Navn-");
    HAS(o, "Subject: =?utf-8?B?");
    HAS(o, "=?UTF-8?Q?tlf_TLF-");
    HASNT(o, "S=F8ren");
    HASNT(o, "Q1BSIDAxMDIwMy0xMjM0");
    /* The Latin-1 body matches the name decoded from the header. */
    HAS(o, "Hej Navn-");
    HASNT(o, "S\xf8ren");
    /* The B word decodes to the CPR token. */
    const char *b = strstr(o, "Subject: =?utf-8?B?") + strlen("Subject: =?utf-8?B?");
    const char *e = strstr(b, "?=");
    pbuf dec = {0};
    mr_error err = {0};
    assert_int_equal(pcodec_b64_decode((const unsigned char *)b, (size_t)(e - b), &dec, &err), 0);
    assert_int_equal(pbuf_append(&dec, "", 1, &err), 0);
    HAS((char *)dec.p, shape(PSEUDO_CPR, "010203-1234"));
    pbuf_free(&dec);
    free(o);
}

static void test_qp_soft_break(void **state)
{
    char *o = tp_text("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                      "Skriv til mette.han=\r\nsen@example.dk eller ring 12 3=\r\n4 56 78=2E\r\n");
    const char *body;
    pbuf dec = {0};
    mr_error err = {0};

    (void)state;
    HAS(o, "Content-Transfer-Encoding: quoted-printable");
    body = strstr(o, "\r\n\r\n") + 4;
    assert_int_equal(
        pcodec_qp_decode((const unsigned char *)body, strlen(body), &dec, NULL, &err), 0);
    assert_int_equal(pbuf_append(&dec, "", 1, &err), 0);
    HAS((char *)dec.p, shape(PSEUDO_EMAIL, "mette.hansen@example.dk"));
    HAS((char *)dec.p, shape(PSEUDO_PHONE, "12345678"));
    HASNT((char *)dec.p, "mette");
    /* Valid QP: no line longer than 76 characters. */
    for (const char *l = body; *l;) {
        const char *nl = strstr(l, "\r\n");
        size_t n = nl ? (size_t)(nl - l) : strlen(l);
        assert_true(n <= 76);
        l = nl ? nl + 2 : l + n;
    }
    pbuf_free(&dec);
    free(o);
}

static void test_base64_text_and_binary(void **state)
{
    /* text part: "Hej Mette, CPR 010203-1234 mette@example.dk"; binary part: the same
     * bytes as application/octet-stream, sealed by default and left as they are when the
     * policy keeps the type. */
    const char *b64 = "SGVqIE1ldHRlLCBDUFIgMDEwMjAzLTEyMzQgbWV0dGVAZXhhbXBsZS5kaw==";
    char msg[2048], *o;
    const char *p, *e;
    pbuf dec = {0};
    mr_error err = {0};

    (void)state;
    snprintf(msg, sizeof msg,
             "From: Mette <mette@example.dk>\r\nMIME-Version: 1.0\r\n"
             "Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n"
             "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
             "%s\r\n--B\r\nContent-Type: application/octet-stream; name=\"cpr 010203-1234.bin\"\r\n"
             "Content-Disposition: attachment; filename=\"Mette 010203-1234.bin\"\r\n"
             "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--B--\r\n", b64, b64);
    struct pseudo_policy keep;
    static const char *const keep_types[] = {"application/octet-stream"};
    pseudo_policy_default(&keep);
    keep.keep_types = keep_types;
    keep.n_keep_types = 1;
    o = tp_text_pol(&keep, msg);
    /* Kept: the binary part's body is byte-identical, its names are not. */
    p = strstr(o, "application/octet-stream");
    assert_non_null(p);
    HAS(p, b64);
    HAS(p, "name=\"cpr CPR-");
    HAS(p, "filename=\"Navn-");
    HASNT(p, "010203-1234.bin");
    HASNT(o, "X-Mailret-Sealed");
    free(o);
    /* Sealed (the default): the body is gone, the names are pseudonymised as above, and
     * the placeholder states the original type and the decoded size (43 bytes). */
    o = tp_text(msg);
    HASNT(o, "Content-Type: application/octet-stream");
    HAS(o, "X-Mailret-Sealed: type=application/octet-stream; encoding=base64; size=43;");
    HAS(o, "name=\"cpr CPR-");
    HAS(o, "filename=\"Navn-");
    HASNT(o, "010203-1234.bin");
    p = strstr(o, "X-Mailret-Sealed");
    assert_non_null(p);
    HASNT(p, b64);
    /* The text part was re-encoded as base64 and decodes to tokens. */
    p = strstr(o, "Content-Transfer-Encoding: base64\r\n\r\n") + 37;
    e = strstr(p, "\r\n--B");
    assert_true(strncmp(p, b64, strlen(b64)) != 0);
    assert_int_equal(pcodec_b64_decode((const unsigned char *)p, (size_t)(e - p), &dec, &err), 0);
    assert_int_equal(pbuf_append(&dec, "", 1, &err), 0);
    HAS((char *)dec.p, "Hej Navn-");
    HAS((char *)dec.p, shape(PSEUDO_CPR, "0102031234"));
    HAS((char *)dec.p, shape(PSEUDO_EMAIL, "mette@example.dk"));
    pbuf_free(&dec);
    free(o);
}

static void test_html(void **state)
{
    char *o = tp_text("From: Mette Hansen <mette@example.dk>\r\nContent-Type: text/html\r\n\r\n"
                      "<p>K&aelig;re Mette&nbsp;Hansen</p><a href=\"mailto:anna&#64;example.dk\">"
                      "skriv</a> <a href=\"mailto:bo%40example.dk?subject=x\">bo</a>"
                      " 010203&#45;1234 <b>tlf</b> 12&#32;34&#32;56&#32;78 &amp; &lt;tag&gt;</p>\r\n");
    (void)state;
    HAS(o, "K&aelig;re Navn-");
    HAS(o, shape(PSEUDO_NAME, "Mette Hansen"));
    HAS(o, "mailto:" );
    HAS(o, shape(PSEUDO_EMAIL, "anna@example.dk"));
    HAS(o, shape(PSEUDO_EMAIL, "bo@example.dk"));
    HAS(o, "?subject=x");
    HAS(o, shape(PSEUDO_CPR, "0102031234"));
    HAS(o, shape(PSEUDO_PHONE, "12345678"));
    HAS(o, "&amp; &lt;tag&gt;");
    free(o);
}

static void test_rfc2231(void **state)
{
    char *o = tp_text("Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
                      "Content-Type: application/pdf; name*0*=utf-8''CPR%20010203; "
                      "name*1*=-1234.pdf\r\nContent-Disposition: attachment;\r\n"
                      " filename*=utf-8''anna%40example.dk%20%C3%B8.pdf\r\n\r\nJVBERi0=\r\n--B--\r\n");
    (void)state;
    /* The token spread over the two sections: joined, they read "CPR-<token>.pdf", and
     * no section is emptied. */
    {
        const char *tok = shape(PSEUDO_CPR, "0102031234");
        const char *s0 = strstr(o, "name*0*=utf-8''CPR%20"), *s1 = strstr(o, "name*1*=");
        char joined[128];
        assert_non_null(s0);
        assert_non_null(s1);
        s0 += strlen("name*0*=utf-8''CPR%20");
        size_t l0 = strcspn(s0, ";"), l1 = strcspn(s1 + 8, "\r");
        assert_true(l0 > 0 && l1 > 4);
        snprintf(joined, sizeof joined, "%.*s%.*s", (int)l0, s0, (int)l1, s1 + 8);
        char want[128];
        snprintf(want, sizeof want, "%s.pdf", tok);
        assert_string_equal(joined, want);
    }
    HASNT(o, "010203");
    /* '@' is percent-encoded in an extended value. */
    HAS(o, "filename*=utf-8''p-");
    HAS(o, "%40pseudonym.invalid%20%C3%B8.pdf");
    free(o);
}

static void test_message_id(void **state)
{
    char *o = tp_text("From: Mette <mette.hansen@example.dk>\r\n"
                      "Message-ID: <CAF+abc.12345678.0102031234@mail.gmail.com>\r\n"
                      "References: <x1@example.dk> <20240101.mette.hansen@example.dk>\r\n\r\nx\r\n");
    (void)state;
    /* Ordinary message ids are not personal data (and digits in them are not phones). */
    HAS(o, "Message-ID: <CAF+abc.12345678.0102031234@mail.gmail.com>");
    HAS(o, "<x1@example.dk>");
    /* One that embeds a personal address gets that address replaced. */
    char expect[128];
    snprintf(expect, sizeof expect, "<20240101.%s>", shape(PSEUDO_EMAIL, "mette.hansen@example.dk"));
    HAS(o, expect);
    free(o);
}

static void test_token_lookalikes(void **state)
{
    char *o = tp_text("Subject: CPR-abcdefghijklmnop TLF-abcdefghijklmnop\r\n\r\n"
                      "Navn-abcdefghijklmnop IP-abcdefghijklmnop CPR-abcdefghijklmno1 "
                      "CPR-abcdefghijklmnopq\r\n");
    (void)state;
    /* Text shaped like a token is escaped, so every token in the output is a real one. */
    HAS(o, "Subject: CPR~abcdefghijklmnop TLF~abcdefghijklmnop");
    HAS(o, "Navn~abcdefghijklmnop IP~abcdefghijklmnop");
    HAS(o, "CPR-abcdefghijklmno1 CPR-abcdefghijklmnopq");
    free(o);
}

static void test_policy_off(void **state)
{
    struct pseudo_policy pol;
    char *o;
    const char *msg = "From: Mette <mette@example.dk>\r\nReceived: from x [192.0.2.1]\r\n\r\n"
                      "Hej Mette 010203-1234 12345678\r\n";

    (void)state;
    memset(&pol, 0, sizeof pol);
    o = tp_text_pol(&pol, msg);
    assert_string_equal(o, msg);
    free(o);
    pseudo_policy_default(&pol);
    pol.cpr = false;
    pol.names = false;
    o = tp_text_pol(&pol, msg);
    HAS(o, "010203-1234");
    HAS(o, "Hej Mette");
    HASNT(o, "12345678");
    HASNT(o, "mette@");
    HASNT(o, "192.0.2.1");
    free(o);
}

static void test_token_list(void **state)
{
    const char *msg = "From: Mette Hansen <mette@example.dk>\r\nTo: mette@example.dk\r\n\r\n"
                      "CPR 010203-1234 og 0102031234, tlf 12345678\r\n";
    pseudo_key k;
    struct pseudo_policy pol;
    pseudo_result *res;
    enum pseudo_kind kind;
    const char *tok;
    char want[PSEUDO_TOKEN_LEN + 1];
    mr_error err = {0};
    size_t n;

    (void)state;
    tp_key(&k, 7);
    pseudo_policy_default(&pol);
    res = tp_run(&k, &pol, msg, strlen(msg));
    n = pseudo_result_token_count(res);
    assert_int_equal(n, 4);   /* distinct: name, email, cpr, phone */
    static const struct {
        enum pseudo_kind kind;
        const char *value;
    } expect[] = {{PSEUDO_NAME, "Mette Hansen"}, {PSEUDO_EMAIL, "mette@example.dk"},
                  {PSEUDO_CPR, "0102031234"}, {PSEUDO_PHONE, "12345678"}};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(pseudo_result_token(res, i, &kind, &tok), 0);
        assert_int_equal(kind, expect[i].kind);
        assert_int_equal(pseudo_token(&k, kind, expect[i].value, want, &err), 0);
        assert_string_equal(tok, want);
    }
    assert_int_equal(pseudo_result_token(res, n, &kind, &tok), MR_E_INVALID);
    pseudo_result_free(res);
}

static void test_mime_structure(void **state)
{
    static const char *const msgs[] = {
        "From: Mette <mette@example.dk>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n"
        "Content-Type: multipart/alternative; boundary=\"C\"\r\n\r\n--C\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "Hej Mette, mette@example.dk 12 34 56 78\r\n--C\r\nContent-Type: text/html\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nPHA+SGVqIE1ldHRlPC9wPg==\r\n--C--\r\n--B\r\n"
        "Content-Type: message/rfc822\r\n\r\nFrom: Inner <in@example.dk>\r\nSubject: x\r\n\r\n"
        "Hej Inner 0102031234\r\n--B\r\nContent-Type: image/png; name=\"Mette.png\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--B--\r\n",
    };
    pseudo_key k;
    struct pseudo_policy pol;

    (void)state;
    tp_key(&k, 9);
    pseudo_policy_default(&pol);
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        char a[512], b[512];
        size_t olen;
        pseudo_result *res = tp_run(&k, &pol, msgs[i], strlen(msgs[i]));
        const unsigned char *o = pseudo_result_bytes(res, &olen);
        assert_int_equal(tp_shape(msgs[i], strlen(msgs[i]), a, sizeof a), 0);
        assert_int_equal(tp_shape(o, olen, b, sizeof b), 0);
        assert_string_equal(a, "G(M(M(SS)G(S)S))");
        assert_string_equal(a, b);
        pseudo_result_free(res);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_headers),
        cmocka_unit_test(test_own_addresses_kept),
        cmocka_unit_test(test_cpr),
        cmocka_unit_test(test_phone),
        cmocka_unit_test(test_ips_only_in_received),
        cmocka_unit_test(test_rfc2047),
        cmocka_unit_test(test_qp_soft_break),
        cmocka_unit_test(test_base64_text_and_binary),
        cmocka_unit_test(test_html),
        cmocka_unit_test(test_rfc2231),
        cmocka_unit_test(test_message_id),
        cmocka_unit_test(test_token_lookalikes),
        cmocka_unit_test(test_policy_off),
        cmocka_unit_test(test_token_list),
        cmocka_unit_test(test_mime_structure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
