/* imap_guard.c — see imap_guard.h.
 *
 * Per byte, outside literals: a state machine over the first three fields of a line
 * (tag, status word, "[" response code), and, independently, the literal announcement
 * "{N}" that may end any line (then N bytes pass untouched and the line goes on after
 * them).  Literal bytes are skipped in one step, so a FETCH body costs nothing here. */
#include "imap/imap_guard.h"

#include <string.h>

enum {
    G_LINE_START,   /* at the first byte of a line */
    G_TAG,          /* in the tag ("*", "+" or the client's tag) */
    G_SPACE1,       /* blanks after the tag */
    G_STATUS,       /* in the status word */
    G_SPACE2,       /* blanks after the status word */
    G_CODE,         /* matching "[PERMANENTFLAGS" */
    G_REST,         /* the rest of the line: nothing to match */
};

enum { LIT_NONE, LIT_OPEN, LIT_SIGN, LIT_DIGITS, LIT_AFTER, LIT_CLOSED, LIT_CR };

static const char CODE[] = "[PERMANENTFLAGS";
#define CODE_LEN (sizeof CODE - 1)


void imap_guard_init(struct imap_guard *g)
{
    memset(g, 0, sizeof *g);
    g->state = G_LINE_START;
}

static unsigned char upper(unsigned char c)
{
    return (c >= 'a' && c <= 'z') ? (unsigned char)(c - 32) : c;
}

/* libetpan 1.9.4 (built with UNSTRICT_SYNTAX) takes any run of blanks for the one SP
 * between the fields of a response. */
static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* One byte of "[PERMANENTFLAGS": rewrites the last one.  Returns the next state. */
static int code_step(struct imap_guard *g, unsigned char *p, size_t *rewritten)
{
    if (upper(*p) != (unsigned char)CODE[g->pos])
        return G_REST;
    if (++g->pos < CODE_LEN)
        return G_CODE;
    *p = 'X';       /* PERMANENTFLAGS -> PERMANENTFLAGX */
    (*rewritten)++;
    return G_REST;
}

static int is_status(const struct imap_guard *g)
{
    static const char *const words[] = {"OK", "NO", "BAD", "BYE", "PREAUTH"};

    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (g->pos == strlen(words[i]) && memcmp(g->status, words[i], g->pos) == 0)
            return 1;
    return 0;
}

/* Where a body section ends: "BODY[" ... "]", then an optional "<origin>" and blanks; a
 * literal announced right there is a message body. */
static void section_step(struct imap_guard *g, unsigned char c)
{
    static const char BODY[] = "BODY[";

    if (c == '\n') {
        g->body_match = 0;
        g->in_section = g->after_section = 0;
        return;
    }
    if (g->in_section) {
        if (c == ']') {
            g->in_section = 0;
            g->after_section = 1;
        }
        return;
    }
    if (g->after_section && !(is_blank(c) || c == '<' || c == '>' || (c >= '0' && c <= '9')))
        g->after_section = 0;
    if (upper(c) == (unsigned char)BODY[g->body_match]) {
        if (++g->body_match == sizeof BODY - 1) {
            g->body_match = 0;
            g->in_section = 1;
        }
    } else {
        g->body_match = upper(c) == 'B' ? 1 : 0;
    }
}

/* The literal announcement as libetpan 1.9.4 reads it (mailimap_literal_parse_progress,
 * UNSTRICT_SYNTAX): "{", blanks, an optional "-" (the size is then 0), digits (32 bits,
 * wrapping; upstream refuses an overflow only since 6da0610, August 2026), blanks, "}",
 * then blanks and CRLF or LF — or, failing that (its Lotus Domino workaround), blanks
 * and the literal at once.  The guard must take exactly the bytes the parser takes.
 * Returns -1 when no literal starts here, else how many of the literal's bytes this byte
 * and the one before it already are: 0 (it starts after this byte), 1 (this byte is its
 * first), 2 (the CR before this byte was its first). */
static int literal_step(struct imap_guard *g, unsigned char c)
{
    int digit = c >= '0' && c <= '9';

    switch (g->lit) {
    case LIT_OPEN:          /* after "{" */
        if (is_blank(c))
            return -1;
        if (c == '-') {
            g->lit = LIT_SIGN;
            g->lit_neg = 1;
            return -1;
        }
        if (digit) {
            g->lit = LIT_DIGITS;
            g->lit_n = (uint32_t)(c - '0');
            return -1;
        }
        break;
    case LIT_SIGN:          /* after "{-": the size is 0 */
        if (digit) {
            g->lit = LIT_DIGITS;
            return -1;
        }
        break;
    case LIT_DIGITS:
        if (digit) {
            if (!g->lit_neg)
                g->lit_n = (uint32_t)(g->lit_n * 10 + (uint32_t)(c - '0'));
            return -1;
        }
        if (is_blank(c)) {
            g->lit = LIT_AFTER;
            return -1;
        }
        if (c == '}') {
            g->lit = LIT_CLOSED;
            return -1;
        }
        break;
    case LIT_AFTER:         /* blanks after the digits */
        if (is_blank(c))
            return -1;
        if (c == '}') {
            g->lit = LIT_CLOSED;
            return -1;
        }
        break;
    case LIT_CLOSED:        /* after "}" (and blanks) */
        if (is_blank(c))
            return -1;
        if (c == '\r') {
            g->lit = LIT_CR;
            return -1;
        }
        g->lit = LIT_NONE;
        return c == '\n' ? 0 : 1;
    case LIT_CR:
        g->lit = LIT_NONE;
        return c == '\n' ? 0 : 2;
    default:
        break;
    }
    /* Not (or no longer) an announcement; "{" may begin one. */
    g->lit = LIT_NONE;
    if (c == '{') {
        g->lit = LIT_OPEN;
        g->lit_n = 0;
        g->lit_neg = 0;
        /* A message body comes as "BODY[...] {N}" (or "BODY[...]<origin> {N}"). */
        g->lit_body = g->after_section;
    }
    return -1;
}

size_t imap_guard_filter(struct imap_guard *g, unsigned char *buf, size_t n)
{
    size_t rewritten = 0;

    if (g->refused != 0 || g->line_too_long)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c;

        if (g->literal_left > 0) {
            uint64_t skip = g->literal_left < n - i ? g->literal_left : n - i;
            g->literal_left -= skip;
            i += (size_t)skip - 1;
            continue;
        }
        c = buf[i];
        int taken = literal_step(g, c);
        if (taken >= 0) {
            if (!g->lit_body && g->lit_n > IMAP_GUARD_STRING_MAX) {
                g->refused = g->lit_n;
                return rewritten;
            }
            g->state = G_REST;      /* the line goes on after the literal */
            if ((uint32_t)taken <= g->lit_n) {
                g->literal_left = g->lit_n - (uint32_t)taken;
                continue;           /* this byte is the announcement's or the literal's */
            }
            /* An empty literal (or one taken by the CR before): this byte is after it. */
        }
        section_step(g, c);
        if (c == '\n') {
            g->state = G_LINE_START;
            g->line_len = 0;
            continue;
        }
        if (++g->line_len > IMAP_GUARD_LINE_MAX) {
            g->line_too_long = 1;
            return rewritten;
        }
        switch (g->state) {
        case G_LINE_START:
            /* "+": a continuation request, whose text may begin with a code at once */
            g->plus = c == '+';
            g->state = is_blank(c) ? G_REST : G_TAG;
            break;
        case G_TAG:
            if (is_blank(c))
                g->state = G_SPACE1;
            else
                g->plus = 0;
            break;
        case G_SPACE1:
            if (is_blank(c))
                break;
            g->pos = 0;
            if (g->plus) {
                g->state = code_step(g, &buf[i], &rewritten);
            } else {
                g->status[g->pos++] = (char)upper(c);
                g->state = G_STATUS;
            }
            break;
        case G_STATUS:
            if (is_blank(c)) {
                g->state = is_status(g) ? G_SPACE2 : G_REST;
            } else if (g->pos < sizeof g->status) {
                g->status[g->pos++] = (char)upper(c);
            } else {
                g->state = G_REST;
            }
            break;
        case G_SPACE2:
            if (is_blank(c))
                break;
            g->pos = 0;
            g->state = code_step(g, &buf[i], &rewritten);
            break;
        case G_CODE:
            g->state = code_step(g, &buf[i], &rewritten);
            break;
        default:
            break;
        }
    }
    return rewritten;
}
