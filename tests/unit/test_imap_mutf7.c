/* test_imap_mutf7.c — modified UTF-7 mailbox names (RFC 3501 5.1.3): the RFC's own
 * examples, hand-checked vectors (Danish letters, '&', astral characters as surrogate
 * pairs), every kind of invalid input refused with an error in both directions, and
 * round trips of random names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap/mutf7.h"

static const struct {
    const char *utf8;
    const char *mutf7;
} vectors[] = {
    /* RFC 3501 5.1.3 */
    { "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
      "~peter/mail/&U,BTFw-/&ZeVnLIqe-" },
    /* RFC 2152's smiley, as RFC 3501 writes it */
    { "\xe2\x98\xba!", "&Jjo-!" },
    { "INBOX", "INBOX" },
    { "", "" },
    { "&", "&-" },
    { "R&D", "R&-D" },
    { "Sager \xc3\xa6\xc3\xb8\xc3\xa5", "Sager &AOYA+ADl-" },
    { "\xc3\x86r\xc3\xb8", "&AMY-r&APg-" },
    { "\xc3\xa6&\xc3\xb8", "&AOY-&-&APg-" },
    { "a/b.c \"d\" \\e %*", "a/b.c \"d\" \\e %*" },
    { "\xf0\x9f\x98\x80", "&2D3eAA-" },                  /* U+1F600, one surrogate pair */
    { "x\xf0\x9f\x98\x80\xc3\xa6y", "x&2D3eAADm-y" },     /* pair then BMP in one run */
    { "\xf4\x8f\xbf\xbf", "&2,,f,w-" },                   /* U+10FFFF */
    { "\xc2\xa0", "&AKA-" },                              /* U+00A0, just above C1 */
    { "~", "~" },
};

static void test_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char *enc = NULL, *dec = NULL;
        mr_error err = { 0 };

        assert_int_equal(mutf7_encode(vectors[i].utf8, &enc, &err), 0);
        assert_string_equal(enc, vectors[i].mutf7);
        assert_int_equal(mutf7_decode(vectors[i].mutf7, &dec, &err), 0);
        assert_string_equal(dec, vectors[i].utf8);
        free(enc);
        free(dec);
    }
}

static void test_encode_rejects(void **state)
{
    static const char *const bad[] = {
        "\xff", "a\xc3", "\xc3(", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
        "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", "\x80",
        "a\x01", "tab\there", "line\nbreak", "del\x7f", "c1\xc2\x85", "\xc3\xa6\x01",
        "\xc3\xa6\xff",
    };

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = (char *)1;
        mr_error err = { 0 };

        assert_int_equal(mutf7_encode(bad[i], &out, &err), MR_E_INVALID);
        assert_null(out);
        assert_non_null(strstr(err.msg, "mailbox name"));
    }
}

static void test_decode_rejects(void **state)
{
    static const char *const bad[] = {
        "&",            /* shift without end */
        "&AOY",         /* run without '-' */
        "&AGE-",        /* 'a' in BASE64 */
        "&ACA-",        /* blank in BASE64 */
        "&2D0-",        /* lone high surrogate */
        "&3gA-",        /* lone low surrogate */
        "&2D3YPQ-",     /* high followed by high */
        "&AOY-&APg-",   /* two runs back to back */
        "&A-",          /* 6 stray bits */
        "&AOZ-",        /* stray bits not zero */
        "&AOYA-",       /* a whole extra BASE64 character */
        "&-&",
        "&AO/-",        /* '/' is not modified BASE64 */
        "&AOY=-",       /* padding */
        "&-\xc3\xa6",   /* 8-bit byte */
        "a\tb",         /* control */
        "&AAA-",        /* U+0000 */
        "&AIU-",        /* U+0085, a C1 control */
        "&--",          /* fine "&-" then "-": valid, checked below */
    };

    (void)state;
    for (size_t i = 0; i + 1 < sizeof bad / sizeof bad[0]; i++) {
        char *out = (char *)1;
        mr_error err = { 0 };

        assert_int_equal(mutf7_decode(bad[i], &out, &err), MR_E_INVALID);
        assert_null(out);
        assert_non_null(strstr(err.msg, "modified UTF-7"));
    }
    {
        char *out = NULL;
        mr_error err = { 0 };
        assert_int_equal(mutf7_decode("&--", &out, &err), 0);
        assert_string_equal(out, "&-");
        free(out);
    }
}

/* Random names from a mix of ASCII (with '&' and '-' often), Latin-1, BMP and astral
 * code points: decode(encode(x)) == x, and the encoding is printable ASCII only. */
static size_t put_cp(char *p, uint32_t cp)
{
    if (cp < 0x80) { p[0] = (char)cp; return 1; }
    if (cp < 0x800) { p[0] = (char)(0xC0 | (cp >> 6)); p[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        p[0] = (char)(0xE0 | (cp >> 12)); p[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        p[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    p[0] = (char)(0xF0 | (cp >> 18)); p[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    p[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); p[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static void test_round_trip(void **state)
{
    uint32_t seed = 12345;

    (void)state;
    for (int round = 0; round < 20000; round++) {
        char name[256];
        size_t len = 0;
        int n;

        seed = seed * 1103515245u + 12345u;
        n = (int)((seed >> 16) % 20);
        for (int k = 0; k < n; k++) {
            uint32_t cp;
            seed = seed * 1103515245u + 12345u;
            switch ((seed >> 16) % 6) {
            case 0: cp = "&-a/ ."[(seed >> 8) % 6]; break;
            case 1: cp = 0x20 + (seed >> 9) % 0x5F; break;
            case 2: cp = 0xA0 + (seed >> 9) % 0x60; break;
            case 3: cp = 0x100 + (seed >> 9) % 0xD700; break;
            case 4: cp = 0xE000 + (seed >> 9) % 0x2000; break;
            default: cp = 0x10000 + (seed >> 5) % 0x100000; break;
            }
            len += put_cp(name + len, cp);
        }
        name[len] = '\0';
        char *enc = NULL, *dec = NULL;
        mr_error err = { 0 };
        assert_int_equal(mutf7_encode(name, &enc, &err), 0);
        for (const char *p = enc; *p != '\0'; p++)
            assert_true(*p >= 0x20 && *p <= 0x7E);
        assert_int_equal(mutf7_decode(enc, &dec, &err), 0);
        assert_string_equal(dec, name);
        free(enc);
        free(dec);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_encode_rejects),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
