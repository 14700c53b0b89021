/*
 * imap_guard.h — private to imap/imap_stream.c: a filter on the bytes the IMAP server
 * sends, before libetpan parses them, against a crash in Debian's libetpan 1.9.4.
 *
 * The crash: a PERMANENTFLAGS response code whose flag list does not parse
 * ("* OK [PERMANENTFLAGS (*] ..."; found by fuzz_imap_client) makes the parser's cleanup
 * call clist_foreach on a NULL list (fixed upstream in 266d59f, May 2026, after the last
 * release).  mailret never uses the permanent flags, so the guard renames every
 * PERMANENTFLAGS response code to PERMANENTFLAGX — one byte, in place — and libetpan
 * reads it as an unknown response code, which it skips.  Only response codes of status
 * responses ("<tag or *> OK|NO|BAD|BYE|PREAUTH [PERMANENTFLAGS", any run of blanks
 * between the fields, as libetpan accepts) and of continuation requests ("+ [...") are
 * touched, never the
 * contents of a literal (a message body that contains the same text arrives unchanged):
 * the guard follows the line and literal framing of the stream, byte by byte, across any
 * split into reads.  Literals are recognised as libetpan 1.9.4 reads them, leniency
 * included ("{ N }", "{-N}", no CRLF after "}"), anywhere in a line, even where the
 * grammar has no literal: where the two could disagree the guard errs towards leaving
 * bytes alone, so a doubt means a byte not rewritten, never a body byte changed.
 *
 * The guard also refuses a literal of more than IMAP_GUARD_STRING_MAX bytes anywhere but
 * after a body section ("BODY[] {N}"): 1.9.4 allocates a string literal's announced size
 * at once (up to 4 GiB; found by the fuzz target; upstream 7bb634c, May 2026), while
 * mailret takes bodies through a handler, piece by piece.  Nothing mailret asks for holds
 * a string that long (mailbox names, capabilities, flags); the stream then fails with a
 * protocol error.
 *
 * And it refuses a line longer than IMAP_GUARD_LINE_MAX bytes, literals not counted:
 * libetpan collects a whole response line in memory, so a server that never ends a line
 * would grow mailret without bound.  The longest line mailret can expect is a SEARCH
 * result (about 8 bytes per UID: 4 million UIDs fit).
 */
#ifndef MAILRET_IMAP_IMAP_GUARD_H
#define MAILRET_IMAP_IMAP_GUARD_H

#include <stddef.h>
#include <stdint.h>

/* The longest literal accepted outside a message body. */
#define IMAP_GUARD_STRING_MAX (1u << 20)
/* The longest response line accepted, literals not counted. */
#define IMAP_GUARD_LINE_MAX ((uint64_t)32 << 20)

struct imap_guard {
    int state;              /* where in a line (see imap_guard.c) */
    int plus;               /* the line's tag is "+" (a continuation request) */
    size_t pos;             /* bytes of the current field matched so far */
    char status[8];         /* the status word, upper-cased */
    int lit;                /* literal announcement "{N}" CRLF being read */
    uint32_t lit_n;         /* its N, modulo 2^32 as libetpan 1.9.4 reads it */
    int lit_neg;            /* "{-N}": libetpan takes it for 0 */
    uint64_t literal_left;  /* bytes of a literal still to pass untouched */
    unsigned body_match;    /* bytes of "BODY[" matched */
    int in_section;         /* inside "BODY[...]" */
    int after_section;      /* right after its "]" (and an "<origin>", blanks) */
    int lit_body;           /* the literal being announced follows a body section */
    uint32_t refused;       /* size of a refused literal (0: none); the stream is dead */
    uint64_t line_len;      /* bytes of the current line outside literals */
    int line_too_long;      /* a line passed IMAP_GUARD_LINE_MAX; the stream is dead */
};

void imap_guard_init(struct imap_guard *g);

/* The next n bytes from the server, in order; rewrites the one byte described above
 * where it occurs.  Returns how many bytes were rewritten.  After a refused literal
 * (g->refused != 0) or line (g->line_too_long) it stops: the caller must fail the
 * stream. */
size_t imap_guard_filter(struct imap_guard *g, unsigned char *buf, size_t n);

#endif
