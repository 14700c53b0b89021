/* scan.c — finds identifiers in one buffer of (decoded) text.
 * Hand-written scanners, no regex: every byte is looked at a bounded number of times, so
 * a hostile message cannot make this slow.  Two phases: e-mail addresses first (found
 * from each '@', so that a name or digits inside an address are not taken separately),
 * then one left-to-right pass for CPR, phone, IP, names and token-shaped text. */
#include "pseudo/scan.h"
#include "pseudo/find.h"
#include "pseudo/rules.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static inline bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool is_alnum(unsigned char c)
{
    return is_digit(c) || is_alpha(c);
}

static inline bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Word bytes (find.c). */
#define WORD prules_word

static inline bool word_byte(unsigned char c)
{
    return prules_word[c] != 0;
}

/* The bytes of an address: a table, since the runs around every '@' are walked byte by
 * byte.  EC_LOCAL: letters, digits, ". _ + -"; EC_DOMAIN: letters, digits, '-' (and
 * EC_DOT: '.'); EC_ALPHA: letters. */
enum { EC_LOCAL = 1, EC_DOMAIN = 2, EC_DOT = 4, EC_ALPHA = 8, EC_TRIM = 16 };
#define EC_LETTER (EC_LOCAL | EC_DOMAIN | EC_ALPHA)
#define EC_DIGIT (EC_LOCAL | EC_DOMAIN)
#define ECH (EC_LOCAL | EC_DOMAIN | EC_ALPHA)
static const unsigned char ECHAR[256] = {
    ['0'] = EC_DIGIT, ['1'] = EC_DIGIT, ['2'] = EC_DIGIT, ['3'] = EC_DIGIT, ['4'] = EC_DIGIT,
    ['5'] = EC_DIGIT, ['6'] = EC_DIGIT, ['7'] = EC_DIGIT, ['8'] = EC_DIGIT, ['9'] = EC_DIGIT,
    ['a'] = EC_LETTER, ['b'] = EC_LETTER, ['c'] = EC_LETTER, ['d'] = EC_LETTER,
    ['e'] = EC_LETTER, ['f'] = EC_LETTER, ['g'] = EC_LETTER, ['h'] = EC_LETTER,
    ['i'] = EC_LETTER, ['j'] = EC_LETTER, ['k'] = EC_LETTER, ['l'] = EC_LETTER,
    ['m'] = EC_LETTER, ['n'] = EC_LETTER, ['o'] = EC_LETTER, ['p'] = EC_LETTER,
    ['q'] = EC_LETTER, ['r'] = EC_LETTER, ['s'] = EC_LETTER, ['t'] = EC_LETTER,
    ['u'] = EC_LETTER, ['v'] = EC_LETTER, ['w'] = EC_LETTER, ['x'] = EC_LETTER,
    ['y'] = EC_LETTER, ['z'] = EC_LETTER,
    ['A'] = EC_LETTER, ['B'] = EC_LETTER, ['C'] = EC_LETTER, ['D'] = EC_LETTER,
    ['E'] = EC_LETTER, ['F'] = EC_LETTER, ['G'] = EC_LETTER, ['H'] = EC_LETTER,
    ['I'] = EC_LETTER, ['J'] = EC_LETTER, ['K'] = EC_LETTER, ['L'] = EC_LETTER,
    ['M'] = EC_LETTER, ['N'] = EC_LETTER, ['O'] = EC_LETTER, ['P'] = EC_LETTER,
    ['Q'] = EC_LETTER, ['R'] = EC_LETTER, ['S'] = EC_LETTER, ['T'] = EC_LETTER,
    ['U'] = EC_LETTER, ['V'] = EC_LETTER, ['W'] = EC_LETTER, ['X'] = EC_LETTER,
    ['Y'] = EC_LETTER, ['Z'] = EC_LETTER,
    ['.'] = EC_LOCAL | EC_DOT, ['_'] = EC_LOCAL, ['+'] = EC_LOCAL, ['-'] = EC_LOCAL | EC_DOMAIN,
    /* RFC 5322 atext that real local parts use ("o'brien", "a!b", "x{y}") */
    ['\''] = EC_LOCAL | EC_TRIM, ['!'] = EC_LOCAL | EC_TRIM, ['#'] = EC_LOCAL | EC_TRIM,
    ['$'] = EC_LOCAL | EC_TRIM, ['*'] = EC_LOCAL | EC_TRIM, ['^'] = EC_LOCAL | EC_TRIM,
    ['{'] = EC_LOCAL | EC_TRIM, ['}'] = EC_LOCAL | EC_TRIM, ['|'] = EC_LOCAL | EC_TRIM,
    ['~'] = EC_LOCAL | EC_TRIM, ['`'] = EC_LOCAL | EC_TRIM,
    /* UTF-8 (RFC 6531) and Latin-1 letters: in the scanner's view every 8-bit byte left is
     * part of a letter (separators are blanks there) */
    [0x80 ... 0xFF] = ECH,
};
#undef ECH

static inline bool local_char(unsigned char c)
{
    return (ECHAR[c] & EC_LOCAL) != 0;
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* ---- word boundaries: separator characters --------------------------------------------- */

/* prules_word[] counts every 8-bit byte as part of a word, which keeps "Søren" one word in
 * UTF-8 and in Latin-1.  But typographic punctuation and blanks are 8-bit too: a no-break
 * space, quotes and dashes (“ ” ‘ ’ „ « » – —), bullets and the like.  The scanner therefore
 * looks at a copy of the text in which every such character is blanks, byte for byte (so
 * offsets are the same as in the text): "“Mette”" is "   Mette   " there, and a CPR number
 * after a no-break space starts a word.  A byte sequence that is valid UTF-8 is judged by
 * its code point; any other 8-bit byte as windows-1252 / Latin-1. */

/* Is the code point cp (>= 0x80) punctuation, a symbol or a blank rather than a letter? */
static bool sep_cp(uint32_t cp)
{
    if (cp <= 0xBF)
        return cp != 0xAA && cp != 0xB5 && cp != 0xBA;   /* ª µ º are letters */
    if (cp == 0xD7 || cp == 0xF7)
        return true;                                     /* × ÷ */
    if (cp < 0x2000)
        return false;
    return cp <= 0x206F ||                       /* general punctuation, spaces, ZWSP */
           (cp >= 0x20A0 && cp <= 0x20CF) ||     /* currency */
           (cp >= 0x2100 && cp <= 0x214F) ||     /* letterlike symbols (℅ № ™) */
           (cp >= 0x2190 && cp <= 0x2BFF) ||     /* arrows, maths, shapes, dingbats */
           (cp >= 0x2E00 && cp <= 0x2E7F) ||     /* supplemental punctuation */
           (cp >= 0x3000 && cp <= 0x303F) ||     /* ideographic space and punctuation */
           (cp >= 0xE000 && cp <= 0xF8FF) ||     /* private use: Symbol-font bullets */
           (cp >= 0xFE10 && cp <= 0xFE6F) || cp == 0xFEFF ||
           (cp >= 0xFF00 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) ||
           (cp >= 0xFFF0 && cp <= 0xFFFF) ||
           (cp >= 0x1F000 && cp <= 0x1FAFF);     /* emoji and pictographs */
}

/* A single 8-bit byte that is not part of valid UTF-8, as windows-1252 (0x80-0x9F) or
 * Latin-1: punctuation, symbol or blank?  The letters of windows-1252 (Š Œ Ž š œ ž Ÿ ƒ)
 * and ª µ º are not. */
static bool sep_byte(unsigned char c)
{
    switch (c) {
    case 0x83: case 0x8A: case 0x8C: case 0x8E: case 0x9A: case 0x9C: case 0x9E: case 0x9F:
    case 0xAA: case 0xB5: case 0xBA:
        return false;
    case 0xD7: case 0xF7:
        return true;
    default:
        return c >= 0x80 && c <= 0xBF;
    }
}

/* Length of the valid UTF-8 sequence at t[i] (t[i] >= 0x80) and its code point, or 0. */
static size_t utf8_seq(const unsigned char *t, size_t len, size_t i, uint32_t *cp)
{
    unsigned char c = t[i];
    size_t n;
    uint32_t v;

    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if (len - i < n)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((t[i + k] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (t[i + k] & 0x3F);
    }
    if ((n == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)))
        return 0;
    *cp = v;
    return n;
}

/* A text as the scanner sees it: t itself, or a copy (owned) with separator characters
 * blanked and, after the addresses are found, '_' blanked too. */
struct bview {
    const unsigned char *t;
    unsigned char *own;
    unsigned char inl[512];
};

static void bview_free(struct bview *v)
{
    if (v->own != NULL && v->own != v->inl)
        free(v->own);
}

static int bview_copy(struct bview *v, const unsigned char *t, size_t len, mr_error *err)
{
    if (v->own != NULL)
        return 0;
    v->own = len <= sizeof v->inl ? v->inl : malloc(len);
    if (v->own == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory scanning text");
    memcpy(v->own, t, len);
    v->t = v->own;
    return 0;
}

/* Blank the separator characters of t (copying it at the first one). */
static int bview_init(struct bview *v, const unsigned char *t, size_t len, mr_error *err)
{
    size_t i = 0;

    v->t = t;
    v->own = NULL;
    for (;;) {
        while (i < len && t[i] < 0x80)
            i++;
        if (i >= len)
            return 0;
        uint32_t cp;
        size_t n = utf8_seq(t, len, i, &cp);
        bool sep = n ? sep_cp(cp) : sep_byte(t[i]);
        if (n == 0)
            n = 1;
        if (sep) {
            int rc = bview_copy(v, t, len, err);
            if (rc != 0)
                return rc;
            memset(v->own + i, ' ', n);
        }
        i += n;
    }
}

/* Blank '_' too: a word joined by it ("lægeerklæring_0101901234.pdf") is two words to the
 * rules after the addresses (an address keeps its '_'). */
static int bview_underscores(struct bview *v, const unsigned char *t, size_t len, mr_error *err)
{
    const unsigned char *p = memchr(v->t, '_', len);
    size_t from;
    int rc;

    if (p == NULL)
        return 0;
    from = (size_t)(p - v->t);
    rc = bview_copy(v, t, len, err);
    for (size_t i = from; rc == 0 && i < len; i++)
        if (v->own[i] == '_')
            v->own[i] = ' ';
    return rc;
}

unsigned pscan_policy_flags(const struct pseudo_policy *pol)
{
    unsigned f = PSCAN_ESCAPE;

    if (pol->emails)
        f |= PSCAN_EMAIL;
    if (pol->cpr)
        f |= PSCAN_CPR;
    if (pol->phones)
        f |= PSCAN_PHONE;
    if (pol->names)
        f |= PSCAN_NAME;
    if (pol->ips)
        f |= PSCAN_IP;
    return f;
}

/* ---- e-mail addresses ---------------------------------------------------------------- */

struct span {
    size_t start, end;
};

/* Address spans of one text: a few fit in the inline array (most texts are header
 * values and short bodies), more go to the heap. */
#define SPANS_INLINE 16

struct spans {
    struct span *v;
    size_t n, cap;
    struct span inl[SPANS_INLINE];
};

static int spans_push(struct spans *s, size_t a, size_t b, mr_error *err)
{
    if (s->v == NULL) {
        s->v = s->inl;
        s->cap = SPANS_INLINE;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap * 2;
        struct span *nv = s->v == s->inl ? malloc(cap * sizeof *nv)
                                         : realloc(s->v, cap * sizeof *nv);
        if (nv == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory scanning addresses");
        if (s->v == s->inl)
            memcpy(nv, s->inl, sizeof s->inl);
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = (struct span){a, b};
    return 0;
}

static void spans_free(struct spans *s)
{
    if (s->v != s->inl)
        free(s->v);
}

/* The address around t[at] == '@', not starting before lo; false if it is none. */
static bool email_at(const unsigned char *t, size_t len, size_t at, size_t lo, size_t *s_out,
                     size_t *e_out)
{
    size_t s = at, e = at + 1, labels = 0, last_label = 0, label_start;
    bool tld_alpha = true;

    while (s > lo && local_char(t[s - 1]))
        s--;
    while (s < at && (t[s] == '.' || t[s] == '-' || (ECHAR[t[s]] & EC_TRIM)))
        s++;
    if (s == at)
        return false;
    while (e < len && (ECHAR[t[e]] & (EC_DOMAIN | EC_DOT)))
        e++;
    while (e > at + 1 && (t[e - 1] == '.' || t[e - 1] == '-'))
        e--;
    if (e == at + 1)
        return false;
    /* Labels must be non-empty; the last (top-level) one alphabetic, two or more. */
    label_start = at + 1;
    for (size_t i = at + 1; i <= e; i++) {
        if (i == e || t[i] == '.') {
            if (i == label_start)
                return false;
            labels++;
            last_label = i - label_start;
            label_start = i + 1;
        }
    }
    if (labels < 2 || last_label < 2)
        return false;
    /* The top-level label: letters only, or an IDN one in punycode ("xn--..."). */
    label_start = e - last_label;
    for (size_t k = label_start; k < e && tld_alpha; k++)
        tld_alpha = (ECHAR[t[k]] & EC_ALPHA) != 0;
    if (!tld_alpha && !(last_label >= 4 && lower(t[label_start]) == 'x' &&
                        lower(t[label_start + 1]) == 'n' && t[label_start + 2] == '-' &&
                        t[label_start + 3] == '-'))
        return false;
    *s_out = s;
    *e_out = e;
    return true;
}

static int find_emails(const unsigned char *t, size_t len, struct spans *out, mr_error *err)
{
    size_t lo = 0, i = 0;
    const unsigned char *p;

    while (i < len && (p = memchr(t + i, '@', len - i)) != NULL) {
        size_t at = (size_t)(p - t), s, e;
        if (email_at(t, len, at, lo, &s, &e)) {
            int rc = spans_push(out, s, e, err);
            if (rc != 0)
                return rc;
            lo = e;
            i = e;
        } else {
            i = at + 1;
        }
    }
    return 0;
}

/* Known personal addresses inside Message-ID-like headers, case-insensitively. */
static int find_known(const struct pseudo_ctx *ctx, const unsigned char *t, size_t len,
                      pscan_emit emit, void *arg)
{
    size_t lo = 0, i = 0;
    const unsigned char *p;

    while (i < len && (p = memchr(t + i, '@', len - i)) != NULL) {
        size_t at = (size_t)(p - t), best_s = 0, best_e = 0;
        for (size_t k = 0; k < ctx->addrs.n; k++) {
            const unsigned char *a = ctx->addrs.v[k];
            size_t alen = ctx->addrs.lens[k];
            const unsigned char *aat = memchr(a, '@', alen);
            size_t l, s, m;
            if (aat == NULL)
                continue;
            l = (size_t)(aat - a);
            if (l > at || at - l < lo || alen - l > len - at)
                continue;
            s = at - l;
            for (m = 0; m < alen && lower(t[s + m]) == a[m]; m++)
                ;
            if (m == alen && alen > best_e - best_s) {
                best_s = s;
                best_e = s + alen;
            }
        }
        if (best_e > best_s) {
            struct pmatch m = {.start = best_s, .end = best_e, .kind = PSEUDO_EMAIL};
            int rc = emit(arg, &m);
            if (rc != 0)
                return rc;
            lo = best_e;
            i = best_e;
        } else {
            i = at + 1;
        }
    }
    return 0;
}

/* ---- digits: CPR, phone, IPv4 -------------------------------------------------------- */

static size_t digit_run(const unsigned char *t, size_t len, size_t i)
{
    size_t j = i;

    while (j < len && is_digit(t[j]))
        j++;
    return j - i;
}

static bool valid_date(const unsigned char *d)
{
    static const int dim[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int dd = (d[0] - '0') * 10 + (d[1] - '0');
    int mm = (d[2] - '0') * 10 + (d[3] - '0');

    return mm >= 1 && mm <= 12 && dd >= 1 && dd <= dim[mm - 1];
}

/* The blanks between the groups of a number: one to three blanks in the scanner's view
 * (a space, or a no-break, thin or figure space, which are two or three bytes of UTF-8,
 * blanked).  Their number, or 0. */
static inline size_t gap_at(const unsigned char *t, size_t len, size_t j)
{
    size_t k = j;

    while (k < len && k - j < 4 && t[k] == ' ')
        k++;
    return k - j <= 3 ? k - j : 0;
}

/* CPR at t[i] (a digit-run start): end offset or 0.  DDMMYYSSSS, or DDMMYY and SSSS apart
 * by '-' or a gap (blanks; an en dash or a no-break space is blanks in the view). */
static size_t cpr_at(const unsigned char *t, size_t len, size_t i)
{
    size_t d = digit_run(t, len, i), g;

    if (d == 10)
        return valid_date(t + i) ? i + 10 : 0;
    if (d != 6 || !valid_date(t + i))
        return 0;
    g = (i + 6 < len && t[i + 6] == '-') ? 1 : gap_at(t, len, i + 6);
    if (g != 0 && digit_run(t, len, i + 6 + g) == 4)
        return i + 6 + g + 4;
    return 0;
}

/* A calendar date-time (RFC 5545 "20261015T100000"): eight digits, 'T', digits. */
static inline bool date_time_at(const unsigned char *t, size_t len, size_t e)
{
    return e + 1 < len && t[e] == 'T' && is_digit(t[e + 1]);
}

/* Danish phone number at t[i]: 12345678, 1234 5678, 12 34 56 78 (gaps of blanks as in
 * cpr_at), 12-34-56-78, 12.34.56.78.  End or 0. */
static size_t phone_at(const unsigned char *t, size_t len, size_t i)
{
    size_t d = digit_run(t, len, i), g, j;

    if (d == 8)
        return date_time_at(t, len, i + 8) ? 0 : i + 8;
    if (d == 4) {
        g = gap_at(t, len, i + 4);
        return (g != 0 && digit_run(t, len, i + 4 + g) == 4) ? i + 8 + g : 0;
    }
    if (d != 2 || i + 2 >= len)
        return 0;
    j = i + 2;
    if (t[j] == '-' || t[j] == '.') {
        unsigned char sep = t[j];
        for (int k = 0; k < 3; k++, j += 3)
            if (j + 2 >= len || t[j] != sep || digit_run(t, len, j + 1) != 2)
                return 0;
        return j;
    }
    for (int k = 0; k < 3; k++) {
        g = gap_at(t, len, j);
        if (g == 0 || digit_run(t, len, j + g) != 2)
            return 0;
        j += g + 2;
    }
    return j;
}

/* "+45" / "0045" (optionally followed by a gap) then a phone number. */
static size_t intl_phone_at(const unsigned char *t, size_t len, size_t i)
{
    size_t j, g;

    if (t[i] == '+' && i + 3 <= len && t[i + 1] == '4' && t[i + 2] == '5')
        j = i + 3;
    else if (i + 4 <= len && memcmp(t + i, "0045", 4) == 0)
        j = i + 4;
    else
        return 0;
    g = gap_at(t, len, j);
    j += g;
    if (j >= len || !is_digit(t[j]))
        return 0;
    /* "+4512345678": the run after the prefix is the number itself. */
    if (g == 0) {
        if (digit_run(t, len, j) == 8 && !date_time_at(t, len, j + 8))
            return j + 8;
        return 0;
    }
    return phone_at(t, len, j);
}

static size_t ipv4_at(const unsigned char *t, size_t len, size_t i)
{
    size_t j = i;

    if (i > 0 && (t[i - 1] == '.' || is_alnum(t[i - 1])))
        return 0;
    for (int g = 0; g < 4; g++) {
        size_t d = digit_run(t, len, j);
        int v = 0;
        if (d == 0 || d > 3)
            return 0;
        for (size_t k = 0; k < d; k++)
            v = v * 10 + (t[j + k] - '0');
        if (v > 255)
            return 0;
        j += d;
        if (g < 3) {
            if (j >= len || t[j] != '.')
                return 0;
            j++;
        }
    }
    if (j < len && (is_alnum(t[j]) || (t[j] == '.' && j + 1 < len && is_digit(t[j + 1]))))
        return 0;
    return j;
}

/* An IPv4 address inside a host name, where reverse DNS puts it: "188-162-151-16.dynamic…",
 * "c-73-1-2-3.hsd1…", "host188.162.151.16.example.net".  Four groups of 0-255 apart by
 * '-' or by '.' (the same throughout), starting at a digit-run start after a letter or a
 * '-' (ipv4_at takes the rest), no fifth group.  End or 0. */
static size_t ipv4_embedded_at(const unsigned char *t, size_t len, size_t i)
{
    size_t j = i;
    unsigned char sep = 0;

    if (i > 0 && (is_digit(t[i - 1]) || t[i - 1] == '.'))
        return 0;
    for (int g = 0; g < 4; g++) {
        size_t d = digit_run(t, len, j);
        int v = 0;
        if (d == 0 || d > 3)
            return 0;
        for (size_t k = 0; k < d; k++)
            v = v * 10 + (t[j + k] - '0');
        if (v > 255)
            return 0;
        j += d;
        if (g < 3) {
            if (j >= len || (t[j] != '-' && t[j] != '.') || (sep != 0 && t[j] != sep))
                return 0;
            sep = t[j++];
        }
    }
    if (j < len && (is_digit(t[j]) || (t[j] == sep && j + 1 < len && is_digit(t[j + 1]))))
        return 0;
    return j;
}

/* The bytes an IPv6 address is written with: hex digits, ':' and '.' (IPv4 tail). */
enum { V6_HEX = 1, V6_COLON = 2, V6_DOT = 4 };
#define V6H(c) [c] = V6_HEX
static const unsigned char V6CHAR[256] = {
    V6H('0'), V6H('1'), V6H('2'), V6H('3'), V6H('4'), V6H('5'), V6H('6'), V6H('7'),
    V6H('8'), V6H('9'), V6H('a'), V6H('b'), V6H('c'), V6H('d'), V6H('e'), V6H('f'),
    V6H('A'), V6H('B'), V6H('C'), V6H('D'), V6H('E'), V6H('F'),
    [':'] = V6_COLON, ['.'] = V6_DOT,
};
#undef V6H

static size_t ipv6_at(const unsigned char *t, size_t len, size_t i)
{
    size_t j = i, colons = 0, group = 0, dots = 0;
    bool dbl = false;
    unsigned char prev = 0;

    /* Most runs tried here are times ("04:48:18"), IPv4 addresses and host names: the
     * first walk counts the colons and notes a "::", and the rules below that need only
     * those (at least two colons; seven, or six before an IPv4 tail, unless "::") turn
     * them away before the group-by-group walk. */
    while (j < len && V6CHAR[t[j]] != 0) {
        unsigned char k = V6CHAR[t[j]];
        colons += k == V6_COLON;
        dbl |= (k & prev) == V6_COLON;
        prev = k;
        j++;
    }
    if (colons < 2 || (!dbl && colons != 7 && colons != 6))
        return 0;
    colons = 0;
    dbl = false;
    while (j > i && t[j - 1] == '.')
        j--;
    if (j < len && is_alnum(t[j]))
        return 0;
    for (size_t k = i; k < j; k++) {
        if (t[k] == ':') {
            if (k + 1 < j && t[k + 1] == ':') {
                if (dbl || (k + 2 < j && t[k + 2] == ':'))
                    return 0;
                dbl = true;
            }
            if (dots)
                return 0;
            colons++;
            group = 0;
        } else if (t[k] == '.') {
            dots++;
            group = 0;
        } else if (++group > 4) {
            return 0;
        }
    }
    if (colons < 2 || (!dbl && colons != 7 && !(colons == 6 && dots == 3)))
        return 0;
    if (dots != 0 && dots != 3)
        return 0;
    if (t[j - 1] == ':' && !(j - i >= 2 && t[j - 2] == ':'))
        return 0;
    if (t[i] == ':' && !(j - i >= 2 && t[i + 1] == ':'))
        return 0;
    return j;
}

/* ---- token-shaped text --------------------------------------------------------------- */

static size_t token_shape_at(const unsigned char *t, size_t len, size_t i)
{
    static const char *const prefixes[] = {"CPR-", "TLF-", "Navn-", "IP-"};

    for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++) {
        size_t pl = strlen(prefixes[p]), k;
        if (len - i < pl + PSEUDO_TOKEN_LEN || memcmp(t + i, prefixes[p], pl) != 0)
            continue;
        for (k = 0; k < PSEUDO_TOKEN_LEN; k++) {
            unsigned char c = t[i + pl + k];
            if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')))
                break;
        }
        if (k == PSEUDO_TOKEN_LEN &&
            (i + pl + k == len || !word_byte(t[i + pl + k])))
            return i + pl + k;
    }
    return 0;
}

/* ---- names by position: salutations and signatures ------------------------------------ */

/* Names that are not in any address header still show up in fixed places: "Hej Søren",
 * "Kære Mette," and the line after "Med venlig hilsen".  A capitalised word there (upper
 * case then lower case, in ASCII, UTF-8 or Latin-1) is taken as a name. */

static size_t upper_at(const unsigned char *t, size_t len, size_t i)
{
    if (i < len && t[i] >= 'A' && t[i] <= 'Z')
        return 1;
    if (i + 1 < len && t[i] == 0xC3 && t[i + 1] >= 0x80 && t[i + 1] <= 0x9E && t[i + 1] != 0x97)
        return 2;
    if (i < len && t[i] >= 0xC0 && t[i] <= 0xDE && t[i] != 0xD7 &&
        !(i + 1 < len && (t[i + 1] & 0xC0) == 0x80))
        return 1;
    return 0;
}

static size_t lower_at(const unsigned char *t, size_t len, size_t i)
{
    if (i < len && t[i] >= 'a' && t[i] <= 'z')
        return 1;
    if (i + 1 < len && t[i] == 0xC3 && t[i + 1] >= 0x9F && t[i + 1] <= 0xBF && t[i + 1] != 0xB7)
        return 2;
    if (i < len && t[i] >= 0xDF && t[i] != 0xF7 && !(i + 1 < len && (t[i + 1] & 0xC0) == 0x80))
        return 1;
    return 0;
}

/* "Søren", "Anne-Mette": end of the capitalised word at i, or 0. */
static size_t cap_word(const unsigned char *t, size_t len, size_t i)
{
    size_t j = i, n, lowers = 0;

    for (;;) {
        if ((n = upper_at(t, len, j)) == 0)
            return 0;
        j += n;
        while ((n = lower_at(t, len, j)) != 0) {
            j += n;
            lowers++;
        }
        if (lowers == 0)
            return 0;
        if (j + 1 < len && t[j] == '-' && upper_at(t, len, j + 1)) {
            j++;
            continue;
        }
        break;
    }
    if (j < len && (is_alnum(t[j]) || t[j] >= 0x80))
        return 0;
    return j;
}

/* Capitalised words that are not names although they follow a greeting ("Hej Alle",
 * "Kære Kunde") or stand where a signature's name would ("Med venlig hilsen"): the stop
 * words of rules.def, compared as written.  Rare: only after a keyword or before an
 * address in a body. */
static bool stop_word(const unsigned char *t, size_t len)
{
    static const struct { const char *w; size_t len; } STOP[] = {
#define PRULE_STOP_WORD(w) {w, sizeof w - 1},
#include "pseudo/rules.def"
    };

    for (size_t k = 0; k < sizeof STOP / sizeof STOP[0]; k++)
        if (STOP[k].len == len && memcmp(t, STOP[k].w, len) == 0)
            return true;
    return false;
}

/* One to three capitalised words on one line from i; end in *end, false if none. */
static bool name_words(const unsigned char *t, size_t len, size_t i, size_t *end)
{
    size_t j = i, e = 0, words = 0;

    while (words < 3) {
        size_t we = cap_word(t, len, j);
        if (we == 0 || stop_word(t + j, we - j))
            break;
        e = we;
        words++;
        if (we < len && t[we] == ' ')
            j = we + 1;
        else
            break;
    }
    if (words == 0)
        return false;
    *end = e;
    return true;
}

/* t[0, l) is w (lower case), ASCII letters in either case. */
static inline bool same_word(const unsigned char *t, const char *w, size_t l)
{
    for (size_t k = 0; k < l; k++)
        if (lower(t[k]) != (unsigned char)w[k])
            return false;
    return true;
}

/* The word t[i, we) (a whole word: t[we] is not a word byte): if it is a greeting or
 * sign-off, where the name after it starts, else 0. */
static size_t name_after_keyword(const unsigned char *t, size_t len, size_t i, size_t we)
{
    int kw = prules_keyword(t + i, we - i);
    size_t e = we, j;

    if (kw == PRULE_NONE)
        return 0;
    if (kw == PRULE_KW_GREETING) {
        j = e;
        while (j < len && (t[j] == ' ' || t[j] == '\t'))
            j++;
        return (j > e && upper_at(t, len, j)) ? j : 0;
    }
    {
        int breaks = 0;
        j = e;
        if (j < len && (t[j] == '.' || t[j] == ',' || t[j] == '!'))
            j++;
        /* Blanks, up to two line breaks and simple HTML (<br>, </p><p>) before the name. */
        while (j < len && breaks <= 2) {
            if (t[j] == ' ' || t[j] == '\t' || t[j] == '\r') {
                j++;
            } else if (t[j] == '\n') {
                breaks++;
                j++;
            } else if (t[j] == '<') {
                size_t g = j + 1;
                while (g < len && g - j < 64 && t[g] != '>' && t[g] != '<')
                    g++;
                if (g >= len || t[g] != '>')
                    return 0;
                if (g - j >= 2 && (lower(t[j + 1]) == 'b' || lower(t[j + 1]) == 'p' ||
                                   (t[j + 1] == '/' && (lower(t[j + 2]) == 'p' ||
                                                        lower(t[j + 2]) == 'd'))))
                    breaks++;
                j = g + 1;
            } else {
                break;
            }
        }
        /* "Mvh Per Holm" on one line counts too: a blank after the sign-off. */
        return ((breaks >= 1 || (j > e && (t[e] == ' ' || t[e] == '.' || t[e] == ',' ||
                                           t[e] == '\t'))) &&
                breaks <= 3 && upper_at(t, len, j)) ? j : 0;
    }
}

/* ---- names in quoted header blocks and attributions --------------------------------- */

/* A forwarded message quoted inline carries its own header block ("Fra: Karen Østergaard
 * <karen@…>", "Til: …", "Cc: …", Outlook's "From: Name [mailto:addr]") and a reply its
 * attribution ("Den 5. okt. 2026 skrev Ole Bruun <ole@…>:", "On …, Ida Lund <ida@…>
 * wrote:").  The names there are display names like those of the message's own address
 * headers, so pass 1 learns them: the capitalised words right before an address in angle
 * brackets (or "[mailto:"), and the names listed after such a field name at a line's
 * start. */

/* Is t[s, s + n) a field name of a quoted header block (either case)? */
static bool quoted_field(const unsigned char *t, size_t n)
{
    static const struct { const char *w; size_t len; } F[] = {
#define PRULE_QUOTED_FIELD(w) {w, sizeof w - 1},
#include "pseudo/rules.def"
    };

    for (size_t k = 0; k < sizeof F / sizeof F[0]; k++)
        if (F[k].len == n && same_word(t, F[k].w, n))
            return true;
    return false;
}

/* Learn t[s, e) when it is one to four capitalised words apart by single blanks: the
 * longest such run that ends at e. */
static int learn_words_before(struct pseudo_ctx *ctx, const unsigned char *t, size_t s, size_t e)
{
    size_t run = SIZE_MAX, words = 0, j = s;

    while (e > s && (t[e - 1] == ' ' || t[e - 1] == '\t'))
        e--;
    while (j < e) {
        while (j < e && t[j] == ' ')
            j++;
        if (j >= e)
            break;
        size_t we = cap_word(t, e, j);
        if (we == 0 || stop_word(t + j, we - j)) {
            run = SIZE_MAX;
            words = 0;
            while (j < e && t[j] != ' ')
                j++;
            continue;
        }
        if (run == SIZE_MAX)
            run = j;
        words++;
        j = we;
        if (j < e && t[j] != ' ') {
            run = SIZE_MAX;
            words = 0;
            while (j < e && t[j] != ' ')
                j++;
        }
    }
    if (run == SIZE_MAX || words > 4)
        return 0;
    return pnames_add(&ctx->names, t + run, e - run, ctx->err);
}

/* The address in angle brackets at t[i] == '<' (or after "[mailto:"): end of the
 * bracket, or 0. */
static size_t bracket_address(const unsigned char *t, size_t len, size_t i, unsigned char close)
{
    size_t lim = len - i > 256 ? i + 256 : len, s, e;
    const unsigned char *cl = memchr(t + i, close, lim - i), *at;

    /* Most '<' in HTML open a tag: its '>' comes before any '@'. */
    if (cl == NULL || (at = memchr(t + i, '@', (size_t)(cl - t) - i)) == NULL)
        return 0;
    if (!email_at(t, len, (size_t)(at - t), i + 1, &s, &e) || s != i + 1 || e >= len ||
        t[e] != close)
        return 0;
    return e + 1;
}

static int learn_quoted_headers(struct pseudo_ctx *ctx, const unsigned char *t, size_t len)
{
    int rc = 0;

    /* Names before an address: "Name <addr>", "\"Name\" <addr>", "Name [mailto:addr]". */
    size_t next_lt = 0, next_sq = 0;
    for (size_t i = 0; rc == 0 && i < len; i++) {
        size_t open;
        unsigned char close;
        /* the next '<' or '[' (each found by memchr and kept until passed) */
        if (next_lt < i) {
            const unsigned char *q = memchr(t + i, '<', len - i);
            next_lt = q ? (size_t)(q - t) : len;
        }
        if (next_sq < i) {
            const unsigned char *q = memchr(t + i, '[', len - i);
            next_sq = q ? (size_t)(q - t) : len;
        }
        i = next_lt < next_sq ? next_lt : next_sq;
        if (i >= len)
            break;
        if (t[i] == '<') {
            open = i;
            close = '>';
        } else if (t[i] == '[' && len - i > 8 && same_word(t + i + 1, "mailto:", 7)) {
            open = i + 7;
            close = ']';
        } else {
            continue;
        }
        if (bracket_address(t, len, open, close) == 0)
            continue;
        size_t e = i;
        while (e > 0 && (t[e - 1] == ' ' || t[e - 1] == '\t'))
            e--;
        if (e > 0 && t[e - 1] == '"') {
            size_t q = e - 1;
            while (q > 0 && i - q < 256 && t[q - 1] != '"' && t[q - 1] != '\n')
                q--;
            if (q > 0 && t[q - 1] == '"' && e - 1 > q)
                rc = pnames_add(&ctx->names, t + q, e - 1 - q, ctx->err);
            continue;
        }
        size_t s = e;
        while (s > 0 && e - s < 128 && !memchr(":,;>()\"[]\n\r\t", t[s - 1], 13))
            s--;
        rc = learn_words_before(ctx, t, s, e);
    }
    /* Field lines: "Fra: Karen Østergaard", "Til: Bent Kjær; Lis Bach", "To: Hansen, Mette". */
    for (size_t i = 0; rc == 0 && i < len; i++) {
        const unsigned char *c = memchr(t + i, ':', len - i);
        if (c == NULL)
            break;
        size_t colon = (size_t)(c - t), ws = colon, b;
        i = colon;
        while (ws > 0 && colon - ws < 16 && (is_alpha(t[ws - 1]) || t[ws - 1] == '-' ||
                                             (t[ws - 1] == ' ' && ws - 1 > 0 && is_alpha(t[ws - 2]))))
            ws--;
        while (ws < colon && t[ws] == ' ')
            ws++;
        if (ws == colon || !quoted_field(t + ws, colon - ws))
            continue;
        /* At a line's start: before the field only blanks, '>' quote marks, '*' (bold),
         * or the end of an HTML tag. */
        b = ws;
        while (b > 0 && (t[b - 1] == ' ' || t[b - 1] == '\t' || t[b - 1] == '*' || t[b - 1] == '>'))
            b--;
        if (!(b == 0 || t[b - 1] == '\n' || t[b - 1] == '\r' || (ws > 0 && t[ws - 1] == '>')))
            continue;
        /* The list after it, to the end of the line or a tag, each item on its own. */
        size_t j = colon + 1, item = j;
        while (rc == 0 && j <= len) {
            bool end = j == len || t[j] == '\n' || t[j] == '\r' ||
                       (t[j] == '<' && bracket_address(t, len, j, '>') == 0);
            if (end || t[j] == ';' || t[j] == ',' || t[j] == '<' || t[j] == '[') {
                while (item < j && t[item] == ' ')
                    item++;
                if (j > item)
                    rc = learn_words_before(ctx, t, item, j);
                if (end)
                    break;
                if (t[j] == '<' || t[j] == '[') {
                    /* skip the address */
                    const unsigned char *cl = memchr(t + j, t[j] == '<' ? '>' : ']', len - j);
                    j = cl ? (size_t)(cl - t) : len;
                }
                item = j + 1;
            }
            j++;
        }
        i = j;
    }
    return rc;
}

/* ---- the pass ------------------------------------------------------------------------ */

/* Can anything but the addresses em start a match in t?  Every rule below starts at a
 * word byte, '+' or ':'.  Short header values ("<a@b.dk>", " post@fund.dk") often have
 * nothing else, and then need no classification; in other text the first word byte
 * answers. */
static bool only_addresses(const unsigned char *t, size_t len, const struct spans *em)
{
    size_t i = 0;

    for (size_t k = 0; k <= em->n; k++) {
        size_t end = k < em->n ? em->v[k].start : len;
        for (; i < end; i++)
            if (WORD[t[i]] || t[i] == '+' || t[i] == ':')
                return false;
        if (k < em->n)
            i = em->v[k].end;
    }
    return true;
}

/* The next run of digits that starts inside the word t[from - 1, to): a CPR or phone
 * number after letters ("CPR0101901234").  to if none. */
static size_t next_digit_start(const unsigned char *t, size_t from, size_t to)
{
    for (size_t k = from; k < to; k++)
        if (is_digit(t[k]) && !is_digit(t[k - 1]))
            return k;
    return to;
}

int pscan_run(const struct pseudo_ctx *ctx, const unsigned char *t, size_t len,
              unsigned flags, pscan_emit emit, void *arg, mr_error *err)
{
    struct bview bv;
    struct spans em;
    struct pfilter pf;
    struct pfind it;
    bool names = (flags & PSCAN_NAME) && ctx->names.n_pats > 0;
    size_t ei = 0, next_e, i = 0, forced_s = SIZE_MAX, forced_e = 0;
    bool guess = (flags & PSCAN_NAME) != 0;
    int rc = 0;

    if (len == 0)
        return 0;
    if (flags & PSCAN_MSGID)
        return (flags & PSCAN_EMAIL) ? find_known(ctx, t, len, emit, arg) : 0;
    em.v = NULL;
    em.n = em.cap = 0;
    rc = bview_init(&bv, t, len, err);
    if (rc != 0)
        return rc;
    t = bv.t;
    if (flags & PSCAN_EMAIL)
        rc = find_emails(t, len, &em, err);
    if (rc == 0 && only_addresses(t, len, &em)) {
        for (size_t k = 0; k < em.n && rc == 0; k++) {
            struct pmatch m = {.start = em.v[k].start, .end = em.v[k].end, .kind = PSEUDO_EMAIL};
            rc = emit(arg, &m);
        }
        spans_free(&em);
        bview_free(&bv);
        return rc;
    }
    if (rc == 0)
        rc = bview_underscores(&bv, t, len, err);
    if (rc != 0) {
        spans_free(&em);
        bview_free(&bv);
        return rc;
    }
    t = bv.t;
    /* Names learnt since the last prepare are not in the buckets yet: then no name
     * matching in this text (callers prepare before each text; see ptext_plain). */
    names = names && ctx->names.prepared;
    /* The positions where a rule below can fire; everything else is skipped in bulk. */
    pfind_filter_init(&pf,
                      ((flags & PSCAN_IP) ? PFIND_HEX | PFIND_COLON : 0) |
                          ((flags & (PSCAN_CPR | PSCAN_PHONE | PSCAN_IP)) ? PFIND_DIGIT : 0) |
                          ((flags & PSCAN_PHONE) ? PFIND_PLUS : 0) |
                          ((flags & PSCAN_ESCAPE) ? PFIND_CTNI : 0),
                      names ? &ctx->names : NULL, guess);
    pfind_start(&it, &pf, t, len);
    next_e = em.n ? em.v[0].start : len;
    while (i < len) {
        unsigned char c;
        struct pmatch m = {0};
        size_t end = 0, we;

        if (i == next_e) {
            m.start = em.v[ei].start;
            m.end = em.v[ei].end;
            m.kind = PSEUDO_EMAIL;
            rc = emit(arg, &m);
            if (rc != 0)
                break;
            i = em.v[ei].end;
            ei++;
            next_e = ei < em.n ? em.v[ei].start : len;
            continue;
        }
        {
            /* Up to the next candidate, stopping at the next address and at a name found
             * by position (a word start the rules below must see). */
            size_t lim = next_e, p;
            if (forced_s != SIZE_MAX && forced_s >= i && forced_s < lim)
                lim = forced_s;
            p = pfind_next(&it, i, lim);
            if (p != i) {
                i = p;
                continue;
            }
        }
        c = t[i];
        /* Candidates start at a word start, or at '+' (phone) or ':' (IPv6). */
        if (!WORD[c]) {
            if (c == '+' && (flags & PSCAN_PHONE) && (i == 0 || !is_digit(t[i - 1])) &&
                (end = intl_phone_at(t, len, i)) != 0) {
                m.kind = PSEUDO_PHONE;
            } else if (c == ':' && (flags & PSCAN_IP) &&
                       (i == 0 || !(is_alnum(t[i - 1]) || t[i - 1] == ':' || t[i - 1] == '.')) &&
                       (end = ipv6_at(t, len, i)) != 0) {
                m.kind = PSEUDO_IP;
            } else {
                /* A run of separators (blanks, punctuation) starts nothing: skip it,
                 * stopping at the next address. */
                i++;
                while (i < next_e && !WORD[t[i]] && t[i] != '+' && t[i] != ':')
                    i++;
                continue;
            }
            we = i + 1;
        } else {
            we = pfind_word_end(t, len, i + 1);
            /* An IP address goes on after its first group with ':' or '.', which end the
             * word (ipv4_at and ipv6_at return 0 for any other word: tried first, it is
             * their commonest answer, and the cheapest to give). */
            if ((flags & PSCAN_IP) && is_hex(c) && we < len && (t[we] == ':' || t[we] == '.') &&
                (i == 0 || !WORD[t[i - 1]]) &&   /* not a digit run inside a word ("IPv6:") */
                (i == 0 || !(t[i - 1] == ':' || t[i - 1] == '.') ||
                 (i >= 5 && lower(t[i - 5]) == 'i' && lower(t[i - 4]) == 'p' &&
                  lower(t[i - 3]) == 'v' && t[i - 2] == '6' && t[i - 1] == ':'))) {
                end = ipv6_at(t, len, i);
                if (end == 0 && is_digit(c))
                    end = ipv4_at(t, len, i);
                if (end != 0)
                    m.kind = PSEUDO_IP;
            }
            if (end == 0 && (flags & PSCAN_IP) && is_digit(c)) {
                size_t d = i + digit_run(t, len, i);
                if (d < len && (t[d] == '-' || t[d] == '.') &&
                    (end = ipv4_embedded_at(t, len, i)) != 0)
                    m.kind = PSEUDO_IP;
            }
            if (end == 0 && is_digit(c)) {
                if ((flags & PSCAN_PHONE) && c == '0')
                    end = intl_phone_at(t, len, i);
                if (end != 0) {
                    m.kind = PSEUDO_PHONE;
                } else if ((flags & PSCAN_CPR) && (end = cpr_at(t, len, i)) != 0) {
                    m.kind = PSEUDO_CPR;
                } else if ((flags & PSCAN_PHONE) && (end = phone_at(t, len, i)) != 0) {
                    m.kind = PSEUDO_PHONE;
                }
            } else if (end == 0 && (flags & PSCAN_ESCAPE) &&
                       (c == 'C' || c == 'T' || c == 'N' || c == 'I') && we < len && t[we] == '-' &&
                       (end = token_shape_at(t, len, i)) != 0) {
                m.escape = true;
                m.kind = c == 'C' ? PSEUDO_CPR : c == 'T' ? PSEUDO_PHONE
                         : c == 'N' ? PSEUDO_NAME : PSEUDO_IP;
            }
            if (end == 0 && names && !is_digit(c) && pnames_could_match(&ctx->names, t, i, we)) {
                size_t canon = 0, ml = pnames_match(&ctx->names, t, len, i, we, &canon);
                /* The genitive of a one-word name ("Mølgaards"): the word without its 's'. */
                if (ml == 0 && we - i > 2 && (t[we - 1] | 0x20) == 's' &&
                    pnames_could_match(&ctx->names, t, i, we - 1))
                    ml = pnames_match(&ctx->names, t, len, i, we - 1, &canon);
                if (ml != 0) {
                    end = i + ml;
                    m.kind = PSEUDO_NAME;
                    m.canon = canon;
                }
            }
            if (end == 0 && i == forced_s) {
                /* A name found by its position; the emitter learns it for the rest. */
                end = forced_e;
                m.kind = PSEUDO_NAME;
                m.canon = SIZE_MAX;
            }
            if (guess && end == 0 && is_alpha(c) && (forced_s == SIZE_MAX || i >= forced_e)) {
                size_t ns = name_after_keyword(t, len, i, we), ne = 0;
                if (ns != 0 && name_words(t, len, ns, &ne) && ne <= next_e) {
                    forced_s = ns;
                    forced_e = ne;
                }
            }
        }
        /* A candidate that runs into the next address is not one (the address wins). */
        if (end != 0 && end <= next_e && !(end < len && is_digit(t[end]) && m.kind != PSEUDO_NAME)) {
            m.start = i;
            m.end = end;
            rc = emit(arg, &m);
            if (rc != 0)
                break;
            i = end;
            continue;
        }
        /* Nothing starts inside a word but a run of digits: go to the next one or to the
         * word's end (never past the next address). */
        {
            size_t stop = we < next_e ? we : (i < next_e ? next_e : i + 1);
            if ((pf.cls & PFIND_DIGIT) && stop > i + 1)
                stop = next_digit_start(t, i + 1, stop);
            i = stop;
        }
    }
    spans_free(&em);
    bview_free(&bv);
    return rc;
}

int pscan_learn(struct pseudo_ctx *ctx, const unsigned char *t, size_t len)
{
    struct pfilter pf;
    struct pfind it;
    struct bview bv;
    size_t i = 0;
    int rc = bview_init(&bv, t, len, ctx->err);

    if (rc == 0)
        rc = bview_underscores(&bv, t, len, ctx->err);
    if (rc != 0) {
        bview_free(&bv);
        return rc;
    }
    t = bv.t;

    /* Greeting and sign-off words. */
    pfind_filter_init(&pf, 0, NULL, true);
    pfind_start(&it, &pf, t, len);
    while (rc == 0 && (i = pfind_next(&it, i, len)) < len) {
        size_t we = pfind_word_end(t, len, i + 1), ns, ne = 0;
        ns = name_after_keyword(t, len, i, we);
        if (ns != 0 && name_words(t, len, ns, &ne)) {
            rc = pnames_add(&ctx->names, t + ns, ne - ns, ctx->err);
            i = ne;
            continue;
        }
        i = we;
    }
    if (rc == 0)
        rc = learn_quoted_headers(ctx, t, len);
    bview_free(&bv);
    return rc;
}
