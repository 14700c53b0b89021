/*
 * test_pseudo_token.c — tokens: deterministic across messages, different under
 * another key, normalised as documented (case, blanks, digits only, +45), separated by
 * kind, lower-case base32 of the right length; known-answer vector pins the construction
 * HMAC-SHA-256(key, kind || 0x00 || value) so a change of it cannot go unnoticed.
 */
#include "unit/test_pseudo_util.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>



static void tok(const pseudo_key *k, enum pseudo_kind kind, const char *v,
                char out[PSEUDO_TOKEN_LEN + 1])
{
    mr_error err = {0};

    assert_int_equal(pseudo_token(k, kind, v, out, &err), 0);
}

static void test_format_and_kat(void **state)
{
    pseudo_key k;
    char t[PSEUDO_TOKEN_LEN + 1];
    unsigned char md[32];
    unsigned int mdlen = 0;
    const char msg[] = "email\0anna@example.dk";
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    char expect[PSEUDO_TOKEN_LEN + 1];

    (void)state;
    tp_key(&k, 0x11);
    tok(&k, PSEUDO_EMAIL, "anna@example.dk", t);
    assert_int_equal(strlen(t), PSEUDO_TOKEN_LEN);
    for (size_t i = 0; i < PSEUDO_TOKEN_LEN; i++)
        assert_non_null(strchr(b32, t[i]));
    /* Independent computation: first 80 bits of the HMAC, base32. */
    assert_non_null(HMAC(EVP_sha256(), k.bytes, 32, (const unsigned char *)msg, sizeof msg - 1,
                         md, &mdlen));
    for (int i = 0; i < PSEUDO_TOKEN_LEN; i++) {
        int bit = i * 5, v = 0;
        for (int b = 0; b < 5; b++)
            v = (v << 1) | ((md[(bit + b) / 8] >> (7 - (bit + b) % 8)) & 1);
        expect[i] = b32[v];
    }
    expect[PSEUDO_TOKEN_LEN] = '\0';
    assert_string_equal(t, expect);
    assert_string_equal(pseudo_kind_name(PSEUDO_EMAIL), "email");
    assert_string_equal(pseudo_kind_name(PSEUDO_CPR), "cpr");
    assert_string_equal(pseudo_kind_name(PSEUDO_PHONE), "phone");
    assert_string_equal(pseudo_kind_name(PSEUDO_NAME), "name");
    assert_string_equal(pseudo_kind_name(PSEUDO_IP), "ip");
}

static void test_normalisation(void **state)
{
    pseudo_key k;
    char a[PSEUDO_TOKEN_LEN + 1], b[PSEUDO_TOKEN_LEN + 1];
    mr_error err = {0};

    (void)state;
    tp_key(&k, 0x22);
    static const char *const same[][2] = {
        {"Anna@Example.DK", " anna@example.dk "}, {"<anna@example.dk>", "anna@example.dk"},
    };
    for (size_t i = 0; i < 2; i++) {
        tok(&k, PSEUDO_EMAIL, same[i][0], a);
        tok(&k, PSEUDO_EMAIL, same[i][1], b);
        assert_string_equal(a, b);
    }
    tok(&k, PSEUDO_CPR, "010203-1234", a);
    tok(&k, PSEUDO_CPR, "010203 1234", b);
    assert_string_equal(a, b);
    tok(&k, PSEUDO_CPR, "0102031234", b);
    assert_string_equal(a, b);
    static const char *const phones[] = {"12 34 56 78", "1234 5678", "+45 12345678",
                                         "0045 12 34 56 78", "+4512345678"};
    tok(&k, PSEUDO_PHONE, "12345678", a);
    for (size_t i = 0; i < 5; i++) {
        tok(&k, PSEUDO_PHONE, phones[i], b);
        assert_string_equal(a, b);
    }
    /* Names: case folding, NFC (decomposed ø), blanks. */
    tok(&k, PSEUDO_NAME, "S\xc3\xb8ren  Hansen", a);
    tok(&k, PSEUDO_NAME, "S\xc3\x98REN HANSEN", b);
    assert_string_equal(a, b);
    tok(&k, PSEUDO_NAME, "So\xcc\xb8ren Hansen", b);   /* o + combining stroke is not ø */
    tok(&k, PSEUDO_NAME, "\xc3\x85se", a);
    tok(&k, PSEUDO_NAME, "A\xcc\x8ase", b);           /* A + combining ring = Å (NFC) */
    assert_string_equal(a, b);
    /* Latin-1 input of a name equals its UTF-8 form. */
    tok(&k, PSEUDO_NAME, "S\xf8ren", a);
    tok(&k, PSEUDO_NAME, "S\xc3\xb8ren", b);
    assert_string_equal(a, b);
    /* Invalid values are refused. */
    assert_int_equal(pseudo_token(&k, PSEUDO_CPR, "12345", a, &err), MR_E_INVALID);
    assert_int_equal(pseudo_token(&k, PSEUDO_PHONE, "123", a, &err), MR_E_INVALID);
    assert_int_equal(pseudo_token(&k, PSEUDO_EMAIL, "   ", a, &err), MR_E_INVALID);
    assert_int_equal(pseudo_token(&k, (enum pseudo_kind)9, "x", a, &err), MR_E_INVALID);
}

static void test_kind_and_key_separation(void **state)
{
    pseudo_key k1, k2;
    char a[PSEUDO_TOKEN_LEN + 1], b[PSEUDO_TOKEN_LEN + 1];

    (void)state;
    tp_key(&k1, 0x33);
    tp_key(&k2, 0x33);
    k2.bytes[31] ^= 1;   /* one bit of key difference */
    tok(&k1, PSEUDO_CPR, "0102031234", a);
    tok(&k2, PSEUDO_CPR, "0102031234", b);
    assert_string_not_equal(a, b);
    /* Same digits, different kind: different token. */
    tok(&k1, PSEUDO_PHONE, "12345678", a);
    tok(&k1, PSEUDO_NAME, "12345678", b);
    assert_string_not_equal(a, b);
}

/* Same identifier in two different messages: the same token; another key: another. */
static void test_stability_across_messages(void **state)
{
    const char *m1 = "From: Mette Hansen <mette@example.dk>\r\n\r\nCPR 010203-1234\r\n";
    const char *m2 = "Subject: =?utf-8?q?CPR_0102031234?=\r\nMIME-Version: 1.0\r\n"
                     "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                     "c2tyaXYgdGlsIE1FVFRFQEVYQU1QTEUuREs=\r\n";   /* "skriv til METTE@EXAMPLE.DK" */
    pseudo_key k, other;
    struct pseudo_policy pol;
    pseudo_result *r1, *r2, *r3;
    char tc[PSEUDO_TOKEN_LEN + 1], te[PSEUDO_TOKEN_LEN + 1];
    size_t l1, l2, l3;
    const unsigned char *o1, *o2, *o3;

    (void)state;
    tp_key(&k, 0x44);
    tp_key(&other, 0x45);
    pseudo_policy_default(&pol);
    tok(&k, PSEUDO_CPR, "0102031234", tc);
    tok(&k, PSEUDO_EMAIL, "mette@example.dk", te);
    r1 = tp_run(&k, &pol, m1, strlen(m1));
    r2 = tp_run(&k, &pol, m2, strlen(m2));
    r3 = tp_run(&other, &pol, m1, strlen(m1));
    o1 = pseudo_result_bytes(r1, &l1);
    o2 = pseudo_result_bytes(r2, &l2);
    o3 = pseudo_result_bytes(r3, &l3);
    char *s1 = strndup((const char *)o1, l1), *s2 = strndup((const char *)o2, l2),
         *s3 = strndup((const char *)o3, l3);
    assert_non_null(strstr(s1, tc));
    assert_non_null(strstr(s1, te));
    assert_non_null(strstr(s2, tc));   /* inside the re-encoded Q word */
    assert_null(strstr(s3, tc));
    assert_null(strstr(s3, te));
    /* The token lists agree on the shared values. */
    bool found = false;
    for (size_t i = 0; i < pseudo_result_token_count(r2); i++) {
        enum pseudo_kind kind;
        const char *t;
        assert_int_equal(pseudo_result_token(r2, i, &kind, &t), 0);
        if (kind == PSEUDO_EMAIL)
            found = strcmp(t, te) == 0;
    }
    assert_true(found);   /* the base64 body's address, upper case, same token */
    free(s1);
    free(s2);
    free(s3);
    pseudo_result_free(r1);
    pseudo_result_free(r2);
    pseudo_result_free(r3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_and_kat),
        cmocka_unit_test(test_normalisation),
        cmocka_unit_test(test_kind_and_key_separation),
        cmocka_unit_test(test_stability_across_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
