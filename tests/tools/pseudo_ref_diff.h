/*
 * pseudo_ref_diff.h — the differential check between the pseudonymiser (fast path) and
 * the reference of pseudo_ref.h: a text becomes the body of a text/plain message, and the
 * set of e-mail, CPR and phone tokens the fast path emits must equal the tokens of the
 * values the reference finds (pseudo_token of each).  Header-only, for
 * test_pseudo_reference and fuzz_pseudo_diff.
 */
#ifndef PSEUDO_REF_DIFF_H
#define PSEUDO_REF_DIFF_H

#include <stdio.h>
#include <stdlib.h>

#include "pseudo/pseudo.h"
#include "pseudo_ref.h"

#define REF_MAX_HITS 4096

static const enum pseudo_kind REF_TO_KIND[] = {PSEUDO_EMAIL, PSEUDO_CPR, PSEUDO_PHONE};

/* Does the fast path agree with the reference on text[0, len) (ASCII)?  0 if so, 1 and a
 * description in why if not, -1 on an error of the pseudonymiser.  *found: how many
 * identifiers the reference found.  kinds: a bit (1 << REF_EMAIL …) per kind compared. */
static inline int ref_diff(const unsigned char *text, size_t len, unsigned kinds, char *why, size_t cap,
                    size_t *found)
{
    static const char head[] = "Subject: t\r\nMIME-Version: 1.0\r\n"
                               "Content-Type: text/plain; charset=us-ascii\r\n\r\n";
    static struct ref_hit hits[REF_MAX_HITS];
    struct pseudo_policy pol;
    pseudo_key key;
    pseudo_result *res = NULL;
    mr_error err = {0};
    unsigned char *msg;

    if (len > 65536)
        len = 65536;        /* what ref_scan reads */
    msg = malloc(sizeof head - 1 + len + 1);
    size_t n, m;
    int rc = 0;

    if (msg == NULL)
        return -1;
    memcpy(msg, head, sizeof head - 1);
    memcpy(msg + sizeof head - 1, text, len);
    memset(key.bytes, 0x5A, sizeof key.bytes);
    pseudo_policy_default(&pol);
    pol.names = false;
    pol.ips = false;
    if (pseudo_message(&key, &pol, msg, sizeof head - 1 + len, &res, &err) != 0) {
        free(msg);
        return -1;
    }
    free(msg);
    n = ref_scan(text, len, hits, REF_MAX_HITS);
    *found = n;
    if (n > REF_MAX_HITS)
        n = REF_MAX_HITS;
    m = pseudo_result_token_count(res);
    why[0] = '\0';
    /* Every reference value has its token in the result ... */
    for (size_t i = 0; i < n && rc == 0; i++) {
        char tok[PSEUDO_TOKEN_LEN + 1];
        bool seen = false;
        if (!(kinds >> hits[i].kind & 1u))
            continue;
        if (pseudo_token(&key, REF_TO_KIND[hits[i].kind], hits[i].value, tok, &err) != 0) {
            rc = -1;
            break;
        }
        for (size_t k = 0; k < m && !seen; k++) {
            enum pseudo_kind kind;
            const char *t;
            if (pseudo_result_token(res, k, &kind, &t) == 0 && kind == REF_TO_KIND[hits[i].kind] &&
                strcmp(t, tok) == 0)
                seen = true;
        }
        if (!seen) {
            snprintf(why, cap, "missed by the fast path: %s \"%s\" at %zu..%zu",
                     pseudo_kind_name(REF_TO_KIND[hits[i].kind]), hits[i].value, hits[i].start,
                     hits[i].end);
            rc = 1;
        }
    }
    /* ... and every token of the result is one of a reference value. */
    for (size_t k = 0; k < m && rc == 0; k++) {
        enum pseudo_kind kind;
        const char *t;
        bool seen = false;
        if (pseudo_result_token(res, k, &kind, &t) != 0) {
            rc = -1;
            break;
        }
        if (!((kind == PSEUDO_EMAIL && (kinds & 1u << REF_EMAIL)) ||
              (kind == PSEUDO_CPR && (kinds & 1u << REF_CPR)) ||
              (kind == PSEUDO_PHONE && (kinds & 1u << REF_PHONE))))
            continue;
        for (size_t i = 0; i < n && !seen; i++) {
            char tok[PSEUDO_TOKEN_LEN + 1];
            if (REF_TO_KIND[hits[i].kind] == kind &&
                pseudo_token(&key, kind, hits[i].value, tok, &err) == 0 && strcmp(t, tok) == 0)
                seen = true;
        }
        if (!seen) {
            snprintf(why, cap, "replaced by the fast path, not by the reference: a %s (token %s)",
                     pseudo_kind_name(kind), t);
            rc = 1;
        }
    }
    pseudo_result_free(res);
    return rc;
}

/* A random ASCII text biased towards the shapes: digits in groups, gaps, prefixes,
 * addresses, dates, letters next to numbers.  r: the caller's random source. */
static inline size_t ref_random_text(unsigned char *t, size_t cap, uint64_t (*r)(void *), void *rs)
{
    static const char *const pieces[] = {
        "0101901234", "010190-1234", "010190 1234", "290288-1234", "310490 1234", "3112991234",
        "12345678", "12 34 56 78", "1234 5678", "12-34-56-78", "12.34.56.78", "+45", "+45 ",
        "0045", "0045 ", "@", "a@b.dk", "mette.hansen@example.dk", ".", "-", "_", " ", "  ",
        "\n", "T1", "T", "CPR", "tlf", "nr", "20261015T100000", "dk", "xn--bcher-kva", "com",
        "example", "'", "+", ",", ":", "(", ")", "<", ">", "/", "12", "34", "5678", "0000",
    };
    size_t i = 0, want = (size_t)(r(rs) % cap);

    while (i < want) {
        uint64_t x = r(rs);
        if (x % 2 == 0) {
            const char *p = pieces[(x >> 8) % (sizeof pieces / sizeof pieces[0])];
            for (size_t k = 0; p[k] != '\0' && i < want; k++)
                t[i++] = (unsigned char)p[k];
        } else {
            t[i++] = (unsigned char)"abcdefxyzABT0123456789 .-@_+\n"[(x >> 16) % 29];
        }
    }
    return i;
}

#endif
