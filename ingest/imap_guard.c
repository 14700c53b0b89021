/* imap_guard.c — see imap_guard.h.
 *
 * Per byte, outside literals: a state machine over the first three fields of a line
 * (tag, status word, "[" response code), and, independently, the literal announcement
 * "{N}" that may end any line (then N bytes pass untouched and the line goes on after
 * them).  Literal bytes are skipped in one step, so a FETCH body costs nothing here. */
#include "ingest/imap_guard.h"

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

enum { LIT_NONE, LIT_DIGITS, LIT_CLOSED, LIT_CR };

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

/* The literal announcement: "{" digits "}" then CRLF (or LF).  Returns 1 when c is the
 * LF that starts a literal. */
static int literal_step(struct imap_guard *g, unsigned char c)
{
    if (c == '{') {
        g->lit = LIT_DIGITS;
        g->lit_n = 0;
        return 0;
    }
    switch (g->lit) {
    case LIT_DIGITS:
        if (c >= '0' && c <= '9') {
            /* As libetpan 1.9.4 reads the number: 32 bits, wrapping (upstream only
             * refuses an overflow since 6da0610, August 2026).  The guard must skip
             * exactly the bytes the parser takes for the literal. */
            g->lit_n = (uint32_t)(g->lit_n * 10 + (uint32_t)(c - '0'));
            return 0;
        }
        /* "{N+}" is the client's form; accepted here too, it costs nothing. */
        g->lit = c == '}' ? LIT_CLOSED : c == '+' ? LIT_DIGITS : LIT_NONE;
        return 0;
    case LIT_CLOSED:
        if (c == '\r') {
            g->lit = LIT_CR;
            return 0;
        }
        g->lit = LIT_NONE;
        return c == '\n';     /* LF right after "}" also starts it */
    case LIT_CR:
        g->lit = LIT_NONE;
        return c == '\n';
    default:
        return 0;
    }
}

size_t imap_guard_filter(struct imap_guard *g, unsigned char *buf, size_t n)
{
    size_t rewritten = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c;

        if (g->literal_left > 0) {
            uint64_t skip = g->literal_left < n - i ? g->literal_left : n - i;
            g->literal_left -= skip;
            i += (size_t)skip - 1;
            continue;
        }
        c = buf[i];
        if (literal_step(g, c)) {
            g->literal_left = g->lit_n;
            g->state = G_REST;      /* the line goes on after the literal */
            continue;
        }
        if (c == '\n') {
            g->state = G_LINE_START;
            continue;
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
