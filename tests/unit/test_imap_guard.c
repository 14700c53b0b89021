/*
 * test_imap_guard.c — the filter between the IMAP server's bytes and libetpan
 * (imap/imap_guard.c):
 *  - a PERMANENTFLAGS response code of a status response, tagged or untagged, in any
 *    case, is renamed PERMANENTFLAGX (one byte), valid or not;
 *  - nothing else changes: the same text in a literal (a message body), after other
 *    words, in other responses; a literal announced with LF only; an empty literal;
 *  - the result does not depend on how the stream is split into reads (every split
 *    into one-byte reads and random ones are compared with one read of the whole).
 * End to end, fuzz_imap_client replays the input that crashed libetpan 1.9.4
 * (tests/data/fuzz-regressions/fuzz_imap_client/permanentflags-star.bin).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_guard.h"

/* in through the guard in pieces of the given sizes (cycled), compared with want. */
static void check_split(const char *in, const char *want, const size_t *sizes, size_t n_sizes)
{
    size_t len = strlen(in), at = 0, k = 0;
    unsigned char *buf = malloc(len + 1);
    struct imap_guard g;

    assert_non_null(buf);
    assert_int_equal(strlen(want), len);
    memcpy(buf, in, len + 1);
    imap_guard_init(&g);
    while (at < len) {
        size_t step = sizes[k++ % n_sizes];
        if (step > len - at)
            step = len - at;
        (void)imap_guard_filter(&g, buf + at, step);
        at += step;
    }
    if (memcmp(buf, want, len) != 0)
        fail_msg("guard output differs:\n got: %s\nwant: %s", (char *)buf, want);
    free(buf);
}

/* One read of the whole, one byte at a time, and 200 random splits. */
static void check(const char *in, const char *want)
{
    static const size_t whole[] = {SIZE_MAX}, ones[] = {1};
    uint64_t s = 0x9E3779B97F4A7C15ull ^ strlen(in);

    check_split(in, want, whole, 1);
    check_split(in, want, ones, 1);
    for (int round = 0; round < 200; round++) {
        size_t sizes[7];
        for (size_t i = 0; i < 7; i++) {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            sizes[i] = 1 + (size_t)((s * 2685821657736338717ull) >> 58);
        }
        check_split(in, want, sizes, 7);
    }
}

static void test_renamed(void **state)
{
    (void)state;
    /* the input that crashed libetpan 1.9.4, and valid codes too */
    check("* OK [PERMANENTFLAGS (*] Read-only mailbox.\r\n",
          "* OK [PERMANENTFLAGX (*] Read-only mailbox.\r\n");
    check("* OK [PERMANENTFLAGS (\\Seen \\*)] Flags permitted.\r\n",
          "* OK [PERMANENTFLAGX (\\Seen \\*)] Flags permitted.\r\n");
    check("* ok [permanentflags ()] x\r\n", "* ok [permanentflagX ()] x\r\n");
    check("A0003 NO [PERMANENTFLAGS (] y\r\n", "A0003 NO [PERMANENTFLAGX (] y\r\n");
    check("* PREAUTH [PERMANENTFLAGS (*] hi\r\n", "* PREAUTH [PERMANENTFLAGX (*] hi\r\n");
    /* blanks: libetpan takes any run of spaces and tabs for one SP (found by the fuzzer) */
    check("* OK  [PERMANENTFLAGS (*] x\r\n", "* OK  [PERMANENTFLAGX (*] x\r\n");
    check("*\t OK\t[PERMANENTFLAGS (*] x\r\n", "*\t OK\t[PERMANENTFLAGX (*] x\r\n");
    /* a continuation request carries a code right after "+" */
    check("+ [PERMANENTFLAGS (*] go on\r\n", "+ [PERMANENTFLAGX (*] go on\r\n");
    check("+  [permanentflags (*]\r\n", "+  [permanentflagX (*]\r\n");
    /* line after line, LF-only lines too */
    check("* 3 EXISTS\r\n* OK [PERMANENTFLAGS (*] a\n* OK [PERMANENTFLAGS (] b\r\n",
          "* 3 EXISTS\r\n* OK [PERMANENTFLAGX (*] a\n* OK [PERMANENTFLAGX (] b\r\n");
}

static void test_left_alone(void **state)
{
    static const char *const same[] = {
        /* not a status response, or not its response code */
        "* FLAGS (\\Seen) [PERMANENTFLAGS (*]\r\n",
        "* OK text [PERMANENTFLAGS (*]\r\n",
        "* OKAY [PERMANENTFLAGS (*]\r\n",
        " * OK [PERMANENTFLAGS (*]\r\n",
        "* OK [PERMANENTFLAG (*]\r\n",
        "* OK [UIDVALIDITY 3] [PERMANENTFLAGS (*]\r\n",
        "+ OK [PERMANENTFLAGS (*]\r\n",
        "++ [PERMANENTFLAGS (*]\r\n",
        /* in a literal: a message body is never changed, and framing goes on after it */
        "* 1 FETCH (UID 5 BODY[] {41}\r\n* OK [PERMANENTFLAGS (*] in a body\r\nxxxxx FLAGS ())\r\n",
        "* 1 FETCH (BODY[] {28}\n* OK [PERMANENTFLAGS (*] b\r\n)\r\n",
        "* 1 FETCH (BODY[] ~{28}\r\n* OK [PERMANENTFLAGS (*] b\r\n)\r\n",
        "* 2 FETCH (BODY[] {0}\r\n)\r\n* 3 FETCH (BODY[] {30}\r\n\r\n* NO [PERMANENTFLAGS (*] c\r\n)\r\n",
        /* libetpan's leniencies: blanks inside, and no CRLF after "}" (its Lotus Domino
         * workaround: the literal starts at the first byte that is not a blank) */
        "* 1 FETCH (BODY[] { 28 } \r\n* OK [PERMANENTFLAGS (*] b\r\n)\r\n",
        "* 1 FETCH (BODY[] {28}* OK [PERMANENTFLAGS (*] b\r\n)\r\n",
        "* 1 FETCH (BODY[] {30}  \r\n* OK [PERMANENTFLAGS (*] b\r\n)\r\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        check(same[i], same[i]);
    /* "{-5}" is an empty literal for libetpan: the next line is looked at again */
    check("* 1 FETCH (BODY[] {-5}\r\n)\r\n* OK [PERMANENTFLAGS (*] x\r\n",
          "* 1 FETCH (BODY[] {-5}\r\n)\r\n* OK [PERMANENTFLAGX (*] x\r\n");
    /* after a literal and its line, the next line is looked at again */
    check("* 1 FETCH (BODY[] {28}\r\n* OK [PERMANENTFLAGS (*] b\r\n)\r\n"
          "* OK [PERMANENTFLAGS (*] after\r\n",
          "* 1 FETCH (BODY[] {28}\r\n* OK [PERMANENTFLAGS (*] b\r\n)\r\n"
          "* OK [PERMANENTFLAGX (*] after\r\n");
}

/* The count of rewritten bytes, and a literal longer than the data seen so far. */
static void test_count_and_long_literal(void **state)
{
    struct imap_guard g;
    char a[] = "* OK [PERMANENTFLAGS (*] x\r\n* 1 FETCH (BODY[] {1000000}\r\n";
    char b[] = "* OK [PERMANENTFLAGS (*] inside the literal\r\n";

    (void)state;
    imap_guard_init(&g);
    assert_int_equal(imap_guard_filter(&g, (unsigned char *)a, strlen(a)), 1);
    assert_int_equal(imap_guard_filter(&g, (unsigned char *)b, strlen(b)), 0);
    assert_non_null(strstr(b, "PERMANENTFLAGS"));
    assert_int_equal(g.literal_left, 1000000 - strlen(b));

    /* big literals: a body may be any size, anything else at most IMAP_GUARD_STRING_MAX */
    {
        static const char *const ok[] = {
            "* 1 FETCH (UID 3 BODY[] {2000000}\r\n",
            "* 1 FETCH (BODY[]<0> {2000000}\r\n",
            "* LIST () \"/\" {1048576}\r\n",
        };
        static const char *const refused[] = {
            "* LIST () \"/\" {1048577}\r\n",
            "* OK [UIDVALIDITY 3]{2147483648}\r\n",   /* a "]" that closes no body section */
            "* OK x {777777777777}C\r\n",              /* wraps to 388697201; no CRLF */
        };
        for (size_t i = 0; i < 3; i++) {
            char x[64];
            snprintf(x, sizeof x, "%s", ok[i]);
            imap_guard_init(&g);
            (void)imap_guard_filter(&g, (unsigned char *)x, strlen(x));
            assert_int_equal(g.refused, 0);
            snprintf(x, sizeof x, "%s", refused[i]);
            imap_guard_init(&g);
            (void)imap_guard_filter(&g, (unsigned char *)x, strlen(x));
            assert_true(g.refused > IMAP_GUARD_STRING_MAX);
            /* and nothing more is looked at */
            assert_int_equal(imap_guard_filter(&g, (unsigned char *)a, strlen(a)), 0);
        }
    }

    /* a size past 32 bits: libetpan 1.9.4 wraps it (4294967301 -> 5), so must the guard */
    {
        char c[] = "* 1 FETCH (BODY[] {4294967301}\r\n";
        imap_guard_init(&g);
        (void)imap_guard_filter(&g, (unsigned char *)c, strlen(c));
        assert_int_equal(g.literal_left, 5);
    }
}

/* A line that never ends is refused at IMAP_GUARD_LINE_MAX bytes, however it is split;
 * a line just that long passes, and literal bytes (a message body) do not count. */
static void test_line_cap(void **state)
{
    size_t chunk = 1 << 20;
    unsigned char *buf = malloc(chunk);
    struct imap_guard g;
    uint64_t fed;

    (void)state;
    assert_non_null(buf);
    memset(buf, 'a', chunk);
    imap_guard_init(&g);
    for (fed = 0; fed + chunk < IMAP_GUARD_LINE_MAX; fed += chunk)
        (void)imap_guard_filter(&g, buf, chunk);
    (void)imap_guard_filter(&g, buf, chunk - 1);
    assert_false(g.line_too_long);
    assert_int_equal(g.line_len, IMAP_GUARD_LINE_MAX - 1);
    (void)imap_guard_filter(&g, (unsigned char *)"\r\n", 2);     /* the cap with its CR */
    assert_false(g.line_too_long);
    assert_int_equal(g.line_len, 0);
    for (fed = 0; fed + chunk <= IMAP_GUARD_LINE_MAX; fed += chunk)
        (void)imap_guard_filter(&g, buf, chunk);
    (void)imap_guard_filter(&g, buf, 1);                         /* one byte more */
    assert_true(g.line_too_long);
    assert_int_equal(imap_guard_filter(&g, buf, 10), 0);         /* and nothing after */

    /* a body literal far longer than the cap, inside one FETCH line */
    {
        char head[] = "* 1 FETCH (UID 7 BODY[] {67108864}\r\n";
        imap_guard_init(&g);
        (void)imap_guard_filter(&g, (unsigned char *)head, strlen(head));
        for (fed = 0; fed < ((uint64_t)64 << 20); fed += chunk)
            (void)imap_guard_filter(&g, buf, chunk);
        (void)imap_guard_filter(&g, (unsigned char *)")\r\n", 3);
        assert_false(g.line_too_long);
        assert_int_equal(g.line_len, 0);
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_renamed),
        cmocka_unit_test(test_left_alone),
        cmocka_unit_test(test_count_and_long_literal),
        cmocka_unit_test(test_line_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
