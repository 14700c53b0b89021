/*
 * scrub.c — log_scrub / log_scrub_buf (declared in log.h): the second line of defence
 * that keeps personal identifiers out of logs and operator messages.
 *
 * It recognises, by shape only:
 *   - e-mail addresses: local@domain (dot-atom or "quoted" local part);
 *   - CPR numbers: DDMMYY-SSSS or DDMMYYSSSS with a real day and month, standing alone
 *     (not part of a longer run of digits or letters, so hashes and ids do not match);
 *   - Danish phone numbers: 8 digits starting 2-9 (the Danish numbering plan has no
 *     subscriber numbers starting 0 or 1), written 12345678, 12 34 56 78 or 1234 5678,
 *     optionally after +45 or 0045.
 * Numbers that mailret itself logs in the same shapes (UIDs, UIDVALIDITY, sizes) would
 * otherwise be redacted and make logs useless, so a number directly after one of a few
 * of mailret's own keywords ("uid", "uidvalidity", "size", ...) or directly before
 * "bytes" is left alone, and so is a number joined by '-' to a longer token (batch and
 * key ids such as "20261123T100000Z-23456789").  False positives only cost log detail;
 * false negatives leak, so the shapes are otherwise generous.
 */
#include "common/log.h"

#include <string.h>
#include <strings.h>

static const char MARKER[] = "[redacted]";
#define MARKER_LEN (sizeof MARKER - 1)

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_alnum(unsigned char c) { return is_digit(c) || is_alpha(c); }
/* Part of a "word" for boundary purposes: letters, digits, '_' and non-ASCII bytes. */
static int is_word(unsigned char c) { return is_alnum(c) || c == '_' || c >= 0x80; }

static int is_local_char(unsigned char c)
{
    return is_alnum(c) || c >= 0x80 || (c != '\0' && strchr("!#$%&'*+/=?^_`{|}~.-", c) != NULL);
}

static int is_domain_char(unsigned char c)
{
    return is_alnum(c) || c >= 0x80 || c == '-' || c == '.';
}

/* Replace buf[s, e) by a marker; returns the index just after the marker.  *len is the
 * string length, size the buffer size. */
static size_t replace(char *buf, size_t size, size_t *len, size_t s, size_t e)
{
    size_t mlen = MARKER_LEN, old = e - s;
    char marker[MARKER_LEN + 1];

    if (*len - old + mlen + 1 > size) {
        /* No room for the full marker: shrink it to the identifier's length. */
        mlen = old < MARKER_LEN ? old : MARKER_LEN;
    }
    memcpy(marker, MARKER, mlen);
    if (mlen < MARKER_LEN && mlen >= 2)
        marker[mlen - 1] = ']';
    memmove(buf + s + mlen, buf + e, *len - e + 1);
    memcpy(buf + s, marker, mlen);
    *len = *len - old + mlen;
    return s + mlen;
}

/* The e-mail address around the '@' at `at`, if any, as [*s, *e). */
static int match_email(const char *buf, size_t len, size_t at, size_t *s, size_t *e)
{
    const unsigned char *u = (const unsigned char *)buf;
    size_t l = at, r = at + 1;

    if (at > 0 && u[at - 1] == '"') {
        /* "quoted local part"@domain: look back for the opening quote. */
        size_t q = at - 1;
        while (q > 0 && at - q < 128) {
            q--;
            if (u[q] == '"')
                break;
        }
        if (u[q] != '"' || q == at - 1)
            return 0;
        l = q;
    } else {
        while (l > 0 && is_local_char(u[l - 1]))
            l--;
        if (l == at)
            return 0;
    }
    if (r < len && u[r] == '[') {
        /* domain literal, e.g. user@[192.0.2.1] */
        while (r < len && u[r] != ']' && u[r] != ' ')
            r++;
        if (r >= len || u[r] != ']')
            return 0;
        r++;
    } else {
        while (r < len && is_domain_char(u[r]))
            r++;
        while (r > at + 1 && (u[r - 1] == '.' || u[r - 1] == '-'))
            r--;
        if (r == at + 1 || !(is_alnum(u[at + 1]) || u[at + 1] >= 0x80))
            return 0;
    }
    *s = l;
    *e = r;
    return 1;
}

static int two_digits(const unsigned char *p)
{
    return (p[0] - '0') * 10 + (p[1] - '0');
}

static int all_digits(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_digit(p[i]))
            return 0;
    return 1;
}

/* A plausible CPR date: day within the month (29 February always allowed, since the
 * century is not known for sure from the date alone). */
static int cpr_date_ok(const unsigned char *p)
{
    static const int dim[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int day = two_digits(p), month = two_digits(p + 2);

    return month >= 1 && month <= 12 && day >= 1 && day <= dim[month - 1];
}

static size_t match_cpr(const unsigned char *u, size_t len, size_t i)
{
    if (i + 10 > len || !all_digits(u + i, 6) || !cpr_date_ok(u + i))
        return 0;
    if (all_digits(u + i + 6, 4) && (i + 10 == len || !is_word(u[i + 10])))
        return 10;
    if (i + 11 <= len && u[i + 6] == '-' && all_digits(u + i + 7, 4) &&
        (i + 11 == len || !is_word(u[i + 11])))
        return 11;
    return 0;
}

/* The 8-digit national part at i: 12345678, 12 34 56 78 or 1234 5678. */
static size_t match_national(const unsigned char *u, size_t len, size_t i)
{
    size_t n = 0;

    if (i >= len || u[i] < '2' || u[i] > '9')
        return 0;
    if (i + 8 <= len && all_digits(u + i, 8))
        n = 8;
    else if (i + 11 <= len && all_digits(u + i, 2) && u[i + 2] == ' ' &&
             all_digits(u + i + 3, 2) && u[i + 5] == ' ' && all_digits(u + i + 6, 2) &&
             u[i + 8] == ' ' && all_digits(u + i + 9, 2))
        n = 11;
    else if (i + 9 <= len && all_digits(u + i, 4) && u[i + 4] == ' ' &&
             all_digits(u + i + 5, 4))
        n = 9;
    if (n == 0 || (i + n < len && is_word(u[i + n])))
        return 0;
    return n;
}

static size_t match_phone(const unsigned char *u, size_t len, size_t i)
{
    size_t p = 0, n;

    if (i + 3 <= len && u[i] == '+' && u[i + 1] == '4' && u[i + 2] == '5')
        p = 3;
    else if (i + 4 <= len && memcmp(u + i, "0045", 4) == 0)
        p = 4;
    if (p > 0) {
        size_t q = p;
        if (i + q < len && u[i + q] == ' ')
            q++;
        n = match_national(u, len, i + q);
        if (n > 0)
            return q + n;
    }
    return match_national(u, len, i);
}

/* mailret's own numbers that share a shape with identifiers: "uid 12345678",
 * "UIDVALIDITY=1701234567", "size 23456789", "23456789 bytes". */
static int exempt_number(const char *buf, size_t len, size_t s, size_t e)
{
    static const char *const before[] = { "uid", "uidvalidity", "uidnext", "size", "seq",
                                          "pid", "offset", "line", "modseq" };
    size_t k = s;

    if (k > 0 && (buf[k - 1] == ' ' || buf[k - 1] == '=' || buf[k - 1] == ':')) {
        k--;
        if (k > 0 && buf[k] == ' ' && (buf[k - 1] == '=' || buf[k - 1] == ':'))
            k--;
        for (size_t w = 0; w < sizeof before / sizeof before[0]; w++) {
            size_t wl = strlen(before[w]);
            if (k >= wl && strncasecmp(buf + k - wl, before[w], wl) == 0 &&
                (k == wl || !is_word((unsigned char)buf[k - wl - 1])))
                return 1;
        }
    }
    if (e + 6 <= len && strncasecmp(buf + e, " bytes", 6) == 0)
        return 1;
    return 0;
}

/* Part of a compound identifier of mailret's own, joined by '-' to letters or digits:
 * "20261123T100000Z-23456789" (a batch id), "vol-0101901234", "23456789-ab". */
static int joined(const unsigned char *u, size_t len, size_t s, size_t e)
{
    return (s >= 2 && u[s - 1] == '-' && is_alnum(u[s - 2])) ||
           (e + 1 < len && u[e] == '-' && is_alnum(u[e + 1]));
}

size_t log_scrub_buf(char *buf, size_t size)
{
    size_t len, n = 0, i;
    unsigned char *u = (unsigned char *)buf;

    if (buf == NULL || size == 0)
        return 0;
    len = strnlen(buf, size);
    if (len == size) {
        buf[size - 1] = '\0';
        len = size - 1;
    }
    /* Addresses first: their local parts may hold digits that look like phone numbers. */
    for (i = 0; i < len; i++) {
        size_t s, e;
        if (buf[i] != '@' || !match_email(buf, len, i, &s, &e))
            continue;
        i = replace(buf, size, &len, s, e) - 1;
        n++;
    }
    i = 0;
    while (i < len) {
        size_t m;
        if (!(is_digit(u[i]) || u[i] == '+') || (i > 0 && is_word(u[i - 1]))) {
            i++;
            continue;
        }
        m = is_digit(u[i]) ? match_cpr(u, len, i) : 0;
        if (m == 0)
            m = match_phone(u, len, i);
        if (m > 0 && !exempt_number(buf, len, i, i + m) && !joined(u, len, i, i + m)) {
            i = replace(buf, size, &len, i, i + m);
            n++;
            continue;
        }
        /* Not an identifier: skip the whole run so that its tail cannot match alone. */
        i++;
        while (i < len && is_word(u[i]))
            i++;
    }
    return n;
}

size_t log_scrub(char *line)
{
    if (line == NULL)
        return 0;
    return log_scrub_buf(line, strlen(line) + 1);
}
