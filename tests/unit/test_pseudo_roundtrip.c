/*
 * test_pseudo_roundtrip.c — restore(pseudo(m)) == m byte for byte: the hand-written
 * nasty corpus (tests/data/nasty), edge inputs, a huge message, thousands of seeded random
 * mutations, the whole-message fallback, tampered or mismatched reid data, and reid data
 * of format version 1 (tests/data/reid-v1) that must restore forever.
 */
#include "unit/test_pseudo_util.h"


#include <openssl/evp.h>

#include "pseudo/hooks.h"
#include "helpers/test_helpers.h"

static bool has(const unsigned char *hay, size_t n, const char *needle)
{
    size_t l = strlen(needle);

    if (l == 0 || l > n)
        return false;
    for (size_t i = 0; i + l <= n; i++)
        if (hay[i] == (unsigned char)needle[0] && memcmp(hay + i, needle, l) == 0)
            return true;
    return false;
}

struct nasty_expect {
    const char *file;
    const char *gone[6];    /* must not be in the pseudonymised bytes */
    const char *kept[4];    /* must still be there */
};

static const struct nasty_expect NASTY[] = {
    {"02-body-only.eml", {"010203-1234", "12 34 56 78", "mette.hansen@example.dk"}, {"Mit CPR er"}},
    {"03-nul-bytes.eml", {"anna.berg@example.dk", "0102031234", "87654321", "Anna"}, {"nul"}},
    {"04-bare-cr-lf.eml", {"bo.ek@example.dk", "311299-9999"}, {"mixed"}},
    {"05-8bit-headers.eml", {"soren.o@example.dk", "150585-4321", "S\xc3\xb8ren", "S\xf8ren",
                             "12345678"}, {"invalid utf8"}},
    {"07-deep-nesting.eml", {"010101-0101", "deep@example.dk"}, {"boundary=\"b59\""}},
    {"08-unterminated-multipart.eml", {"ida.holm@example.dk", "20 30 40 50", "2233 4455", "Ida,"},
     {"--XYZ"}},
    {"09-boundary-prefix.eml", {"0101901234"}, {"--abc-1--"}},
    {"10-2047-split.eml", {"jm@example.dk", "=?utf-8?q?CPR_0102?="}, {"=?iso-8859-1?Q?"}},
    {"11-qp-soft-break.eml", {"mette.han=", "sen@example.dk", "12 3="}, {"quoted-printable"}},
    {"12-rfc2231.eml", {"anna%40example.dk", "CPR%20010203", "JVBERi0xLjQK"},
     {"X-Mailret-Sealed: type=application/pdf; encoding=base64; size=9;", "filename*=",
      "name*1*="}},
    {"13-token-lookalikes.eml", {"CPR-abcdefghijklmnop", "TLF-abcdefghijklmnop",
                                 "Navn-abcdefghijklmnop", "IP-abcdefghijklmnop",
                                 "p-abcdefghijklmnop@"}, {"CPR-abcdefghijklmno1", "CPR~abcdefghijklmnop"}},
    {"14-html-entities.eml", {"mette.hansen&#64;example.dk", "anna%40example.dk", "Mette&nbsp;Hansen",
                              "010203&#45;1234"}, {"M&#229;l"}},
    {"15-headers-only.eml", {"kim.bo@example.dk", "12345678", "Kim Bo"}, {"Subject: "}},
    /* An unknown transfer encoding means "treat as application/octet-stream" (RFC 2045
     * 6.4): the body is sealed. */
    {"17-bad-content-type.eml", {"x@example.dk", "010203 1234", "bogus"},
     {"X-Mailret-Sealed: type=text/plain; encoding=not-decoded; size=31;"}},
    {"20-utf16-parts.eml", {NULL},
     {"X-Mailret-Sealed: type=text/plain; charset=utf-32; encoding=base64;",
      "X-Mailret-Sealed: type=text/plain; encoding=base64; size=122;", "UTF-16.",
      "charset=UTF-16BE; name=\"be.txt\""}},
    {"22-utf16-in-place.eml", {NULL},
     {"X-Mailret-Sealed: type=text/plain; charset=utf-16le; encoding=base64;",
      "X-Mailret-Sealed: type=text/plain; charset=utf-16be; encoding=quoted-printable;",
      "Content-Type: text/html; charset=utf-16le"}},
    {"21-unencoded-binary.eml", {"Mette Hansen 010203-1234", "0102031234", "CPR=3D010203-1234"},
     {"X-Mailret-Sealed: type=application/pdf; encoding=none;",
      "X-Mailret-Sealed: type=text/plain; encoding=not-decoded;"}},
    {"18-received-ips.eml", {"192.0.2.55", "2001:db8:1::25", "198.51.100.7", "member@example.dk"},
     {"10:00:00", "1.2.3.4", "host.example.net"}},
    {"19-msgid.eml", {"mette.hansen@example.dk"}, {"<abc123@mail.gmail.com>", "<CAF+12345678@mail.gmail.com>"}},
};

struct nasty_run {
    pseudo_key key;
    struct pseudo_policy pol;
    size_t checked;
};

static int nasty_one(const char *name, const unsigned char *msg, size_t len, void *arg)
{
    struct nasty_run *nr = arg;
    pseudo_result *res = tp_run(&nr->key, &nr->pol, msg, len);
    const unsigned char *o;
    size_t olen;

    /* Every nasty message is handled part by part, never by the fallback. */
    assert_false(pseudo_result_is_whole(res));
    o = pseudo_result_bytes(res, &olen);
    for (size_t i = 0; i < sizeof NASTY / sizeof NASTY[0]; i++) {
        if (strcmp(NASTY[i].file, name) != 0)
            continue;
        for (size_t g = 0; g < 6 && NASTY[i].gone[g]; g++) {
            if (has(o, olen, NASTY[i].gone[g]))
                fail_msg("%s: \"%s\" survived", name, NASTY[i].gone[g]);
            /* and it was really in the input (the test would prove nothing otherwise) */
            if (!has(msg, len, NASTY[i].gone[g]))
                fail_msg("%s: \"%s\" not in the input", name, NASTY[i].gone[g]);
        }
        for (size_t k = 0; k < 4 && NASTY[i].kept[k]; k++)
            if (!has(o, olen, NASTY[i].kept[k]))
                fail_msg("%s: \"%s\" was lost", name, NASTY[i].kept[k]);
        nr->checked++;
    }
    pseudo_result_free(res);
    return 0;
}

static void test_nasty_corpus(void **state)
{
    char dir[4096];
    struct nasty_run nr = {.checked = 0};

    (void)state;
    tp_key(&nr.key, 1);
    pseudo_policy_default(&nr.pol);
    tp_data_dir(dir, sizeof dir, "nasty");
    assert_true(th_each_file(dir, nasty_one, &nr) >= 19);
    assert_int_equal(nr.checked, sizeof NASTY / sizeof NASTY[0]);
}

static void test_edge_inputs(void **state)
{
    static const char *const cases[] = {
        "", "\n", "\r", "\r\n\r\n", "\0", ":", "From:", "From: <@>", "@", "@@@@.dk",
        "a@b", "a@b.c", "=?", "=?utf-8?q?", "=?utf-8?b?====?=", "=?x?Q?=4?=",
        "Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n----\r\n",
        "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x",
        "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
        "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x--",
        "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n=",
        "Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=",
        "Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=\r",
        "Content-Type: message/rfc822\r\n\r\n",
        "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nZm9vOg==",
        "Content-Disposition: attachment; filename*0*=utf-8''; filename*1*=%",
        "Content-Type: a/b; name*=''%4",
        "Content-Type: a/b; name=\"unterminated",
        "Subject: Hej Ab\r\n\r\nHej Ab\r\nMvh\r\n\r\n\r\n",
        "Subject: +45\r\n\r\n+45 +4512 0045 004512345678 +451234567",
        "To: \"\\\" (((( <<<< ,,,, ;;;; ::::\r\n",
        "Received: from [IPv6:::] [::] [1.2.3] :::: 1:2:3:4:5:6:7:8:9 ffff::1.2.3.4\r\n",
        "X: CPR-aaaaaaaaaaaaaaaa\r\n\r\nNavn-aaaaaaaaaaaaaaa",
    };
    pseudo_key key;
    struct pseudo_policy pol;

    (void)state;
    tp_key(&key, 2);
    pseudo_policy_default(&pol);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i]);
        if (i == 4)
            len = 1;   /* the single NUL byte */
        pseudo_result_free(tp_run(&key, &pol, cases[i], len));
    }
    /* NULL with length 0 is an empty message; NULL with a length is an error. */
    pseudo_result *res = NULL;
    mr_error err = {0};
    assert_int_equal(pseudo_message(&key, &pol, NULL, 0, &res, &err), 0);
    pseudo_result_free(res);
    assert_int_equal(pseudo_message(&key, &pol, NULL, 5, &res, &err), MR_E_INVALID);
    assert_int_equal(pseudo_message(NULL, &pol, (const unsigned char *)"x", 1, &res, &err),
                     MR_E_INVALID);
}

/* Repetitive hostile shapes: bounded time and exact round trip. */
static void test_pathological(void **state)
{
    static const char *const units[] = {"@", "a@", "--x\r\n", "=?a?Q?", "0", "1 ", "&#", "%4",
                                        "Hej ", "Mvh\n", "\r", "\n ", "Mette "};
    size_t n = 1 << 20;
    unsigned char *buf = malloc(n + 64);
    pseudo_key key;
    struct pseudo_policy pol;

    (void)state;
    assert_non_null(buf);
    tp_key(&key, 3);
    pseudo_policy_default(&pol);
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        size_t ul = strlen(units[u]), len;
        /* A Content-Type that makes the body HTML and multipart-ish at once. */
        len = (size_t)snprintf((char *)buf, 64, "From: Mette Hansen <m@x.dk>\n\n");
        while (len + ul <= n) {
            memcpy(buf + len, units[u], ul);
            len += ul;
        }
        pseudo_result_free(tp_run(&key, &pol, buf, len));
    }
    free(buf);
}

/* A large message: 16 MiB of text with identifiers plus a base64 text part. */
static void test_huge(void **state)
{
    const char *head = "From: Lone Dahl <lone.dahl@example.dk>\r\nMIME-Version: 1.0\r\n"
                       "Content-Type: multipart/mixed; boundary=\"HB\"\r\n\r\n--HB\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n\r\n";
    const char *line = "Kaere Lone, CPR 010203-1234 tlf 12 34 56 78 mail lone.dahl@example.dk ok\r\n";
    size_t cap = 17u << 20, len = 0, olen;
    unsigned char *buf = malloc(cap);
    pseudo_key key;
    struct pseudo_policy pol;
    pseudo_result *res;
    const unsigned char *o;

    (void)state;
    assert_non_null(buf);
    tp_key(&key, 4);
    pseudo_policy_default(&pol);
    memcpy(buf, head, strlen(head));
    len = strlen(head);
    while (len + strlen(line) + 200 < (16u << 20)) {
        memcpy(buf + len, line, strlen(line));
        len += strlen(line);
    }
    const char *tail = "\r\n--HB--\r\n";
    memcpy(buf + len, tail, strlen(tail));
    len += strlen(tail);
    res = tp_run(&key, &pol, buf, len);
    o = pseudo_result_bytes(res, &olen);
    assert_false(has(o, olen, "lone.dahl@example.dk"));
    assert_false(has(o, olen, "010203-1234"));
    assert_false(has(o, olen, "12 34 56 78"));
    /* "Lone Dahl" and "Lone" (names), the address, the CPR number, the phone number */
    assert_int_equal(pseudo_result_token_count(res), 5);
    pseudo_result_free(res);
    free(buf);
}

/* 3 MiB of HTML: scanned in pieces (bounded memory), nothing lost at the seams. */
static void test_huge_html(void **state)
{
    const char *head = "From: Mette Hansen <mette@example.dk>\r\nContent-Type: text/html\r\n\r\n";
    const char *line = "<p>Hej Mette, skriv til mette&#64;example.dk eller ring 12 34 56 78</p>\n";
    size_t cap = 3u << 20, len, olen;
    unsigned char *buf = malloc(cap + 256);
    pseudo_key key;
    struct pseudo_policy pol;
    pseudo_result *res;
    const unsigned char *o;

    (void)state;
    assert_non_null(buf);
    tp_key(&key, 10);
    pseudo_policy_default(&pol);
    len = strlen(head);
    memcpy(buf, head, len);
    while (len + strlen(line) < cap) {
        memcpy(buf + len, line, strlen(line));
        len += strlen(line);
    }
    res = tp_run(&key, &pol, buf, len);
    o = pseudo_result_bytes(res, &olen);
    assert_false(has(o, olen, "mette&#64;example.dk"));
    assert_false(has(o, olen, "12 34 56 78"));
    assert_false(has(o, olen, "Hej Mette"));
    pseudo_result_free(res);
    free(buf);
}

/* Many display names and a text full of words that start like them: bounded work. */
static void test_many_names(void **state)
{
    size_t cap = 2u << 20, len = 0;
    unsigned char *buf = malloc(cap + 256);
    pseudo_key key;
    struct pseudo_policy pol;

    (void)state;
    assert_non_null(buf);
    tp_key(&key, 11);
    pseudo_policy_default(&pol);
    len += (size_t)sprintf((char *)buf + len, "To: ");
    for (int i = 0; i < 2000; i++)
        len += (size_t)sprintf((char *)buf + len, "\"Maaa%04d Maab%04d\" <m%d@example.dk>,\r\n ",
                               i, i, i);
    len += (size_t)sprintf((char *)buf + len, "x@example.dk\r\n\r\n");
    while (len + 8 < cap) {
        memcpy(buf + len, "Maaa01x ", 8);
        len += 8;
    }
    pseudo_result_free(tp_run(&key, &pol, buf, len));
    free(buf);
}

/* The session's result for msg equals pseudo_message's: bytes, reid data, tokens. */
static void session_same(pseudo_session *s, const pseudo_key *key,
                         const struct pseudo_policy *pol, const void *msg, size_t len)
{
    pseudo_result *a = tp_run(key, pol, msg, len), *b = NULL;
    mr_error err = {0};
    const unsigned char *pa, *pb;
    size_t la, lb;

    assert_int_equal(pseudo_session_message(s, msg, len, &b, &err), 0);
    pa = pseudo_result_bytes(a, &la);
    pb = pseudo_result_bytes(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(pa, pb, la);
    pa = pseudo_result_reid(a, &la);
    pb = pseudo_result_reid(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(pa, pb, la);
    assert_int_equal(pseudo_result_token_count(a), pseudo_result_token_count(b));
    for (size_t i = 0; i < pseudo_result_token_count(a); i++) {
        enum pseudo_kind ka, kb;
        const char *ta, *tb;
        assert_int_equal(pseudo_result_token(a, i, &ka, &ta), 0);
        assert_int_equal(pseudo_result_token(b, i, &kb, &tb), 0);
        assert_int_equal(ka, kb);
        assert_string_equal(ta, tb);
    }
    pseudo_result_free(a);
    pseudo_result_free(b);
}

struct session_run {
    pseudo_session *s;
    const pseudo_key *key;
    const struct pseudo_policy *pol;
    const char *after;          /* a small message done after each */
};

static int session_one(const char *name, const unsigned char *msg, size_t len, void *arg)
{
    struct session_run *sr = arg;

    (void)name;
    session_same(sr->s, sr->key, sr->pol, msg, len);
    session_same(sr->s, sr->key, sr->pol, sr->after, strlen(sr->after));
    return 0;
}

/* A session gives every message the result pseudo_message gives it, whatever came
 * before: nothing learnt from one message (a name, an address, a token) carries over,
 * and the buffers kept after a big message do not change a small one. */
static void test_session(void **state)
{
    static const char learn[] =
        "From: Kasper Holm <kasper@example.dk>\r\nTo: post@akasse.example\r\n\r\n"
        "Hej Kasper, ring 12 34 56 78.\r\nMvh\r\nLinnea Bach\r\n";
    static const char later[] =
        "From: x@example.dk\r\n\r\nKasper Holm og Linnea Bach kommer i morgen.\r\n";
    char dir[4096];
    pseudo_key key;
    struct pseudo_policy pol;
    pseudo_session *s = NULL;
    mr_error err = {0};
    struct session_run sr = {.key = &key, .pol = &pol, .after = later};

    (void)state;
    tp_key(&key, 3);
    pseudo_policy_default(&pol);
    assert_int_equal(pseudo_session_new(&key, &pol, &s, &err), 0);
    sr.s = s;
    session_same(s, &key, &pol, learn, sizeof learn - 1);
    /* The names of the first message are not the second's: they stay. */
    {
        pseudo_result *r = NULL;
        size_t olen;
        const unsigned char *o;
        assert_int_equal(pseudo_session_message(s, (const unsigned char *)later,
                                                sizeof later - 1, &r, &err), 0);
        o = pseudo_result_bytes(r, &olen);
        assert_true(has(o, olen, "Kasper Holm og Linnea Bach"));
        assert_int_equal(pseudo_result_token_count(r), 1);   /* the address only */
        pseudo_result_free(r);
    }
    tp_data_dir(dir, sizeof dir, "nasty");
    assert_true(th_each_file(dir, session_one, &sr) >= 19);
    /* A message that grows every table past what a session keeps, then small ones. */
    {
        size_t cap = 256u << 10, len = 0;
        char *big = malloc(cap + 256);
        assert_non_null(big);
        len += (size_t)sprintf(big + len, "To: ");
        for (int i = 0; i < 1500 && len + 128 < cap; i++)
            len += (size_t)sprintf(big + len, "\"Navn%04d Efter%04d\" <n%d@example.dk>,\r\n ",
                                   i, i, i);
        len += (size_t)sprintf(big + len, "x@example.dk\r\n\r\nNavn0001 Efter0001 ringer.\r\n");
        session_same(s, &key, &pol, big, len);
        free(big);
    }
    session_same(s, &key, &pol, later, sizeof later - 1);
    session_same(s, &key, &pol, learn, sizeof learn - 1);
    session_same(s, &key, &pol, "", 0);
    assert_int_equal(pseudo_session_message(s, NULL, 3, &(pseudo_result *){NULL}, &err),
                     MR_E_INVALID);
    pseudo_session_free(s);
    pseudo_session_free(NULL);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Seeded random mutations of well-formed messages: the round trip must always hold. */
static void test_mutations(void **state)
{
    static const char *const seeds[] = {
        "From: \"Mette Hansen\" <mette@example.dk>\r\nTo: =?utf-8?q?S=C3=B8ren?= <s@example.dk>\r\n"
        "Subject: =?iso-8859-1?b?Q1BSIDAxMDIwMy0xMjM0?=\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"ZZ\"\r\n\r\npre\r\n--ZZ\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "Hej Mette=2C mette=40example.dk 12 34 =\r\n56 78\r\n--ZZ\r\n"
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "PHA+S8OmcmUgTWV0dGUsIDxhIGhyZWY9Im1haWx0bzptZXR0ZUBleGFtcGxlLmRrIj54PC9hPjwvcD4=\r\n"
        "--ZZ\r\nContent-Type: application/pdf; name*0*=utf-8''a%20; name*1*=010203-1234\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--ZZ--\r\nepi\r\n",
        "Received: from a (a [10.1.2.3]) by b for <x@example.dk>; Mon, 1 Jan 2024 10:00:00 +0100\r\n"
        "From: Bo <bo@example.dk>\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: Inner Name <in@example.dk>\r\n\r\nHej Inner\r\n",
    };
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    pseudo_key key;
    struct pseudo_policy pol;
    unsigned char buf[4096];

    (void)state;
    tp_key(&key, 5);
    pseudo_policy_default(&pol);
    for (int iter = 0; iter < 3000; iter++) {
        const char *seed = seeds[iter % 2];
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        int muts = 1 + (int)(rng_next(&s) % 8);
        for (int m = 0; m < muts && len > 0; m++) {
            size_t pos = rng_next(&s) % len;
            switch (rng_next(&s) % 6) {
            case 0:
                buf[pos] = (unsigned char)rng_next(&s);
                break;
            case 1:
                len = pos;   /* truncate */
                break;
            case 2: {         /* insert a structural token */
                static const char *const ins[] = {"\r\n", "--ZZ", "=?", "?=", "\n--ZZ--\n",
                                                  "=", "@", "\0", "\r", "; name*=x'y'%"};
                const char *t = ins[rng_next(&s) % 10];
                size_t tl = t[0] ? strlen(t) : 1;
                if (len + tl < sizeof buf) {
                    memmove(buf + pos + tl, buf + pos, len - pos);
                    memcpy(buf + pos, t, tl);
                    len += tl;
                }
                break;
            }
            case 3:           /* delete a run */
            {
                size_t n = rng_next(&s) % 16;
                if (n > len - pos)
                    n = len - pos;
                memmove(buf + pos, buf + pos + n, len - pos - n);
                len -= n;
                break;
            }
            case 4:           /* duplicate a run */
            {
                size_t n = rng_next(&s) % 64;
                if (n > len - pos)
                    n = len - pos;
                if (len + n < sizeof buf) {
                    memmove(buf + pos + n, buf + pos, len - pos);
                    len += n;
                }
                break;
            }
            default:
                buf[pos] ^= 0x80;
            }
        }
        pseudo_result_free(tp_run(&key, &pol, buf, len));
    }
}

static void test_fallback(void **state)
{
    const char *msg = "From: Mette Hansen <mette@example.dk>\r\n\r\nCPR 010203-1234\r\n";
    pseudo_key key;
    struct pseudo_policy pol;
    pseudo_result *res = NULL;
    mr_error err = {0};
    const unsigned char *o, *r;
    unsigned char *back = NULL;
    size_t olen, rlen, blen;

    (void)state;
    tp_key(&key, 6);
    pseudo_policy_default(&pol);
    assert_int_equal(pseudo_message_ex(&key, &pol, (const unsigned char *)msg, strlen(msg),
                                       PSEUDO_TEST_FORCE_WHOLE, &res, &err), 0);
    assert_true(pseudo_result_is_whole(res));
    o = pseudo_result_bytes(res, &olen);
    r = pseudo_result_reid(res, &rlen);
    assert_false(has(o, olen, "mette"));
    assert_false(has(o, olen, "010203"));
    assert_true(has(o, olen, "X-Mailret-Pseudonymised: whole-message"));
    assert_int_equal(pseudo_restore(o, olen, r, rlen, &back, &blen, &err), 0);
    assert_int_equal(blen, strlen(msg));
    assert_memory_equal(back, msg, blen);
    free(back);
    pseudo_result_free(res);
}

static void test_reid_tamper(void **state)
{
    const char *m1 = "From: A <a@example.dk>\r\n\r\nCPR 010203-1234\r\n";
    const char *m2 = "From: B <b@example.dk>\r\n\r\nCPR 020304-1234\r\n";
    pseudo_key key;
    struct pseudo_policy pol;
    pseudo_result *r1, *r2;
    const unsigned char *o1, *d1, *o2, *d2;
    size_t o1l, d1l, o2l, d2l, bl;
    unsigned char *po, *pd, *back = NULL;
    mr_error err = {0};

    (void)state;
    tp_key(&key, 8);
    pseudo_policy_default(&pol);
    r1 = tp_run(&key, &pol, m1, strlen(m1));
    r2 = tp_run(&key, &pol, m2, strlen(m2));
    o1 = pseudo_result_bytes(r1, &o1l);
    d1 = pseudo_result_reid(r1, &d1l);
    o2 = pseudo_result_bytes(r2, &o2l);
    d2 = pseudo_result_reid(r2, &d2l);
    assert_memory_equal(d1, "MRPR\x02", 5);
    po = malloc(o1l);
    pd = malloc(d1l);
    assert_non_null(po);
    assert_non_null(pd);

    /* Another message's reid: wrong pairing. */
    assert_int_equal(pseudo_restore(o1, o1l, d2, d2l, &back, &bl, &err), MR_E_TAMPERED);
    assert_null(back);
    assert_int_equal(pseudo_restore(o2, o2l, d1, d1l, &back, &bl, &err), MR_E_TAMPERED);
    /* Other pseudonymised bytes of another length. */
    assert_int_equal(pseudo_restore(o1, o1l - 1, d1, d1l, &back, &bl, &err), MR_E_TAMPERED);
    assert_null(back);
    /* One flipped bit in the pseudonymised bytes that the restore keeps ("From"). */
    memcpy(po, o1, o1l);
    po[0] ^= 1;
    assert_int_equal(pseudo_restore(po, o1l, d1, d1l, &back, &bl, &err), MR_E_TAMPERED);
    /* A flipped bit inside a replaced span (the token of the address) is dropped by the
     * restore: the result is still exactly the original (format version 2 does not hash
     * the pseudonymised bytes; it never gives wrong bytes). */
    {
        const unsigned char *tok = memchr(o1, '@', o1l);
        assert_non_null(tok);
        memcpy(po, o1, o1l);
        po[tok - o1 - 3] ^= 1;
        assert_int_equal(pseudo_restore(po, o1l, d1, d1l, &back, &bl, &err), 0);
        assert_int_equal(bl, strlen(m1));
        assert_memory_equal(back, m1, bl);
        free(back);
        back = NULL;
    }
    /* One flipped bit anywhere in the reid data (every byte, every bit position). */
    for (size_t i = 0; i < d1l; i++) {
        memcpy(pd, d1, d1l);
        pd[i] ^= (unsigned char)(1u << (i % 8));
        int rc = pseudo_restore(o1, o1l, pd, d1l, &back, &bl, &err);
        if (!(rc == MR_E_TAMPERED || rc == MR_E_PARSE || rc == MR_E_UNSUPPORTED))
            fail_msg("flipped bit in reid byte %zu not detected (rc %d)", i, rc);
        assert_null(back);
    }
    /* Truncated, empty, unknown version. */
    assert_int_equal(pseudo_restore(o1, o1l, d1, d1l - 1, &back, &bl, &err), MR_E_PARSE);
    assert_int_equal(pseudo_restore(o1, o1l, d1, 0, &back, &bl, &err), MR_E_PARSE);
    assert_int_equal(pseudo_restore(o1, o1l, d1, 20, &back, &bl, &err), MR_E_PARSE);
    memcpy(pd, d1, d1l);
    pd[4] = 3;
    assert_int_equal(pseudo_restore(o1, o1l, pd, d1l, &back, &bl, &err), MR_E_UNSUPPORTED);
    /* The untouched pair still restores. */
    assert_int_equal(pseudo_restore(o1, o1l, d1, d1l, &back, &bl, &err), 0);
    assert_memory_equal(back, m1, strlen(m1));
    free(back);
    free(po);
    free(pd);
    pseudo_result_free(r1);
    pseudo_result_free(r2);
}

/* pseudo_result_original_sha256 is the SHA-256 of the input, for every path (part by
 * part, empty, whole-message fallback), and pseudo_restore_digest hands out the same. */
static void test_original_sha256(void **state)
{
    static const char *const msgs[] = {
        "", "From: Mette Hansen <mette@example.dk>\r\n\r\nHej Mette, CPR 010203-1234\r\n",
    };
    pseudo_key key;
    struct pseudo_policy pol;

    (void)state;
    tp_key(&key, 4);
    pseudo_policy_default(&pol);
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        for (unsigned flags = 0; flags <= PSEUDO_TEST_FORCE_WHOLE; flags++) {
            unsigned char md[32];
            unsigned int mdl = 0;
            pseudo_result *res = NULL;
            mr_error err = {0};
            size_t len = strlen(msgs[i]);
            assert_int_equal(pseudo_message_ex(&key, &pol, (const unsigned char *)msgs[i], len,
                                               flags, &res, &err), 0);
            assert_int_equal(EVP_Digest(msgs[i], len, md, &mdl, EVP_sha256(), NULL), 1);
            assert_memory_equal(pseudo_result_original_sha256(res), md, 32);
            const unsigned char *o, *r;
            unsigned char *back = NULL, got[32];
            size_t olen, rlen, blen = 0;
            o = pseudo_result_bytes(res, &olen);
            r = pseudo_result_reid(res, &rlen);
            assert_int_equal(pseudo_restore_digest(o, olen, r, rlen, &back, &blen, got, &err),
                             0);
            assert_memory_equal(got, md, 32);
            assert_int_equal(blen, len);
            free(back);
            pseudo_result_free(res);
        }
    }
}

/* Reid data of format version 1, written by the version-1 writer (tests/data/reid-v1,
 * see its README): archives are kept five years, so it must restore byte for byte, and
 * its checks (record checksum, digest of the pseudonymised bytes) must still hold. */
static unsigned char *fixture(const char *name, size_t *len)
{
    char dir[4096], path[8192];
    unsigned char *p;

    tp_data_dir(dir, sizeof dir, "reid-v1");
    snprintf(path, sizeof path, "%s/%s", dir, name);
    p = th_read_file(path, len);
    if (p == NULL)
        fail_msg("cannot read %s", path);
    return p;
}

static void test_reid_v1(void **state)
{
    size_t ml, pl, rl, bl;
    unsigned char *msg = fixture("message.eml", &ml), *ps = fixture("message.pseudo", &pl);
    unsigned char *rd = fixture("message.reid", &rl), *back = NULL, *cp;
    mr_error err = {0};

    (void)state;
    assert_memory_equal(rd, "MRPR\x01", 5);
    assert_int_equal(pseudo_restore(ps, pl, rd, rl, &back, &bl, &err), 0);
    assert_int_equal(bl, ml);
    assert_memory_equal(back, msg, ml);
    free(back);
    back = NULL;
    /* A flipped bit anywhere in the record, or anywhere in the pseudonymised bytes
     * (version 1 hashes them), is refused. */
    cp = malloc(rl > pl ? rl : pl);
    assert_non_null(cp);
    for (size_t i = 0; i < rl; i++) {
        memcpy(cp, rd, rl);
        cp[i] ^= (unsigned char)(1u << (i % 8));
        int rc = pseudo_restore(ps, pl, cp, rl, &back, &bl, &err);
        if (!(rc == MR_E_TAMPERED || rc == MR_E_PARSE || rc == MR_E_UNSUPPORTED))
            fail_msg("flipped bit in v1 reid byte %zu not detected (rc %d)", i, rc);
        assert_null(back);
    }
    for (size_t i = 0; i < pl; i += 3) {
        memcpy(cp, ps, pl);
        cp[i] ^= 0x04;
        assert_int_equal(pseudo_restore(cp, pl, rd, rl, &back, &bl, &err), MR_E_TAMPERED);
        assert_null(back);
    }
    /* Truncated record or output. */
    assert_int_equal(pseudo_restore(ps, pl, rd, rl - 1, &back, &bl, &err), MR_E_PARSE);
    assert_int_equal(pseudo_restore(ps, pl, rd, 120, &back, &bl, &err), MR_E_PARSE);
    assert_int_equal(pseudo_restore(ps, pl - 1, rd, rl, &back, &bl, &err), MR_E_TAMPERED);
    free(cp);
    free(msg);
    free(ps);
    free(rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nasty_corpus),
        cmocka_unit_test(test_edge_inputs),
        cmocka_unit_test(test_pathological),
        cmocka_unit_test(test_huge),
        cmocka_unit_test(test_huge_html),
        cmocka_unit_test(test_many_names),
        cmocka_unit_test(test_session),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_reid_tamper),
        cmocka_unit_test(test_original_sha256),
        cmocka_unit_test(test_reid_v1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
