/*
 * pseudo_ref.h — an independent reference for the pseudonymiser's e-mail, CPR and phone
 * rules on plain ASCII text, written from docs/PSEUDONYMISER.md ("What is replaced"), not
 * from pseudo/: it shares no table and no code with them.  Slow and simple: every
 * position is tried in turn.  Used by test_pseudo_reference and the differential
 * fuzz target fuzz_pseudo_diff, which compare what it finds with the tokens the
 * fast path emits.  Header-only (static functions) so that both include it.
 *
 * Rules (ASCII text only; the callers feed nothing else):
 *   e-mail  around each '@': the local part is the longest run before it of letters,
 *           digits and . _ + - ' ! # $ * ^ { } | ~ `; the domain the longest run after it of
 *           letters, digits, '-' and '.', cut back to end in a label; at least two labels,
 *           the last one two or more letters (or "xn--…").  A local part does not start with
 *           '.', '-' or one of ' ! # $ * ^ { } | ~ ` (they are dropped: "--mette@…").  Addresses are taken left to right: a local part does
 *           not reach back into the address before it.
 *   CPR     DDMMYY SSSS: ten digits, or six and four apart by '-' or a gap (one to three
 *           spaces or '_': a blank character is up to three bytes of UTF-8, and '_' is a
 *           blank outside addresses);
 *           day valid for the month (29 February always), month 1-12; no digit right
 *           before or after.
 *   phone   eight digits as 12345678, 12 34 56 78, 1234 5678 (each gap as above),
 *           12-34-56-78, 12.34.56.78, optionally after "+45" / "0045" and a gap, or right
 *           after it as eight digits in a row; no digit right before or after; eight
 *           digits followed by 'T' and a digit are a date-time, not a phone.
 *   An identifier inside an e-mail address is part of the address.
 */
#ifndef PSEUDO_REF_H
#define PSEUDO_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

enum ref_kind { REF_EMAIL, REF_CPR, REF_PHONE };

struct ref_hit {
    enum ref_kind kind;
    size_t start, end;      /* t[start, end) */
    char value[320];        /* e-mail as written; CPR: 10 digits; phone: 8 digits */
};

static inline bool ref_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline bool ref_letter(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static inline bool ref_local_char(unsigned char c)
{
    return ref_letter(c) || ref_digit(c) || (c != 0 && strchr("._+-'!#$*^{}|~`", c) != NULL);
}

static inline bool ref_domain_char(unsigned char c)
{
    return ref_letter(c) || ref_digit(c) || c == '-' || c == '.';
}

/* The address around the '@' at t[at], or false. */
static inline bool ref_email_at(const unsigned char *t, size_t len, size_t from, size_t at,
                         struct ref_hit *h)
{
    size_t s = at, e = at + 1, labels = 0, last = 0;
    bool alpha = true;

    while (s > from && ref_local_char(t[s - 1]))
        s--;
    while (s < at && t[s] != 0 && strchr(".-'!#$*^{}|~`", t[s]) != NULL)
        s++;
    if (s == at)
        return false;
    while (e < len && ref_domain_char(t[e]))
        e++;
    while (e > at + 1 && (t[e - 1] == '.' || t[e - 1] == '-'))
        e--;
    /* Labels: non-empty, between dots. */
    for (size_t i = at + 1; i <= e; i++) {
        if (i == e || t[i] == '.') {
            if (i == last || i == at + 1)
                return false;
            labels++;
            last = i + 1;
        }
    }
    (void)last;
    {
        size_t ts = e;
        while (ts > at + 1 && t[ts - 1] != '.')
            ts--;
        for (size_t i = ts; i < e; i++)
            alpha &= ref_letter(t[i]);
        if (!alpha && !(e - ts > 4 && memcmp(t + ts, "xn--", 4) == 0))
            return false;
        if (e - ts < 2)
            return false;
    }
    if (labels < 2 || e - s >= sizeof h->value)
        return false;
    h->kind = REF_EMAIL;
    h->start = s;
    h->end = e;
    memcpy(h->value, t + s, e - s);
    h->value[e - s] = '\0';
    return true;
}

static inline bool ref_date_ok(const unsigned char *d)
{
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int dd = (d[0] - '0') * 10 + (d[1] - '0'), mm = (d[2] - '0') * 10 + (d[3] - '0');

    return mm >= 1 && mm <= 12 && dd >= 1 && dd <= days[mm - 1];
}

/* Digits d[0, n) read from t at i with the gaps of a shape; the end in *end. */
static inline bool ref_blank(unsigned char c)
{
    return c == ' ' || c == '_';    /* '_' counts as a blank outside addresses */
}

static inline size_t ref_spaces(const unsigned char *t, size_t len, size_t i)
{
    size_t j = i;
    while (j < len && ref_blank(t[j]))
        j++;
    return j - i <= 3 ? j : i;      /* one to three spaces are a gap, more are none */
}

static inline bool ref_cpr_at(const unsigned char *t, size_t len, size_t i, struct ref_hit *h)
{
    unsigned char d[10];
    size_t j = i;

    for (int k = 0; k < 10; k++) {
        if (k == 6 && j < len && !ref_digit(t[j])) {
            if (t[j] == '-')
                j++;
            else if (ref_blank(t[j]) && ref_spaces(t, len, j) != j)
                j = ref_spaces(t, len, j);
            else
                return false;
        }
        if (j >= len || !ref_digit(t[j]))
            return false;
        d[k] = t[j++];
    }
    if (j < len && ref_digit(t[j]))
        return false;
    if (!ref_date_ok(d))
        return false;
    h->kind = REF_CPR;
    h->start = i;
    h->end = j;
    memcpy(h->value, d, 10);
    h->value[10] = '\0';
    return true;
}

/* Eight digits in one of the shapes from t[i]. */
static inline bool ref_eight(const unsigned char *t, size_t len, size_t i, size_t *end, unsigned char *d)
{
    /* group sizes and the gap allowed between groups */
    static const struct { int groups[4]; int n; char gap; } shapes[] = {
        {{8}, 1, 0}, {{2, 2, 2, 2}, 4, ' '}, {{4, 4}, 2, ' '}, {{2, 2, 2, 2}, 4, '-'},
        {{2, 2, 2, 2}, 4, '.'},
    };

    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t j = i;
        int k = 0;
        bool ok = true;
        for (int g = 0; ok && g < shapes[s].n; g++) {
            if (g > 0) {
                if (j >= len || (shapes[s].gap == ' ' ? !ref_blank(t[j]) : t[j] != shapes[s].gap)) {
                    ok = false;
                    break;
                }
                if (shapes[s].gap == ' ' && ref_spaces(t, len, j) == j) {
                    ok = false;
                    break;
                }
                j = shapes[s].gap == ' ' ? ref_spaces(t, len, j) : j + 1;
            }
            for (int x = 0; x < shapes[s].groups[g]; x++) {
                if (j >= len || !ref_digit(t[j])) {
                    ok = false;
                    break;
                }
                d[k++] = t[j++];
            }
        }
        if (!ok || (j < len && ref_digit(t[j])))
            continue;
        if (j + 1 < len && t[j] == 'T' && ref_digit(t[j + 1]) && s == 0)
            continue;
        *end = j;
        return true;
    }
    return false;
}

static inline bool ref_phone_at(const unsigned char *t, size_t len, size_t i, struct ref_hit *h)
{
    size_t j = i, end;
    unsigned char d[8];

    if (len - i >= 3 && memcmp(t + i, "+45", 3) == 0)
        j = ref_spaces(t, len, i + 3);
    else if (len - i >= 4 && memcmp(t + i, "0045", 4) == 0)
        j = ref_spaces(t, len, i + 4);
    if (j != i && ref_eight(t, len, j, &end, d) &&
        (j > i + 4 || (t[i] == '+' && j > i + 3) || end == j + 8)) {
        /* with the prefix: right after it only eight digits in a row */
    } else if (ref_digit(t[i]) && ref_eight(t, len, i, &end, d)) {
        j = i;
    } else {
        return false;
    }
    h->kind = REF_PHONE;
    h->start = i;
    h->end = end;
    memcpy(h->value, d, 8);
    h->value[8] = '\0';
    return true;
}

/* Every identifier of t[0, len): at most cap in hits; the number found (may exceed cap). */
static inline size_t ref_scan(const unsigned char *t, size_t len, struct ref_hit *hits, size_t cap)
{
    size_t n = 0, covered = 0;
    struct ref_hit h;

    /* Addresses first: digits inside one are part of it. */
    static unsigned char in_email[1 << 16];
    size_t lim = len < sizeof in_email ? len : sizeof in_email;
    memset(in_email, 0, lim);
    for (size_t i = 0, from = 0; i < lim; i++)
        if (t[i] == '@' && ref_email_at(t, lim, from, i, &h)) {
            from = h.end;
            for (size_t k = h.start; k < h.end; k++)
                in_email[k] = 1;
            if (n < cap)
                hits[n] = h;
            n++;
        }
    for (size_t i = 0; i < lim; i++) {
        if (i < covered || in_email[i] || (i > 0 && ref_digit(t[i - 1])))
            continue;
        if (!ref_digit(t[i]) && t[i] != '+')
            continue;
        if (ref_cpr_at(t, lim, i, &h) || ref_phone_at(t, lim, i, &h)) {
            bool clash = false;
            for (size_t k = h.start; k < h.end; k++)
                clash |= in_email[k] != 0;
            if (clash)
                continue;
            if (n < cap)
                hits[n] = h;
            n++;
            covered = h.end;
        }
    }
    return n;
}

#endif
