/*
 * msginfo.h — what routing needs to know about one raw RFC 5322 message, read without
 * rewriting it: the decoded subject, the sender's address, Message-ID, the signs of an
 * auto-reply or bounce, and the decoded text of its text parts.
 *
 * Headers are scanned by hand (unfolded; 8-bit bytes tolerated) because libetpan's strict
 * RFC 5322 parser gives up on the malformed headers real mail carries; RFC 2047 words and
 * body transfer encodings are decoded with libetpan.  Nothing here fails on bad input:
 * what cannot be parsed is simply absent, and routing falls through to "unrouted".
 */
#ifndef MAILRET_INGEST_MSGINFO_H
#define MAILRET_INGEST_MSGINFO_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

struct msginfo {
    char *subject;          /* decoded to UTF-8; NULL if absent */
    char *from_addr;        /* addr-spec of the first From mailbox, lower case; or NULL */
    char *message_id;       /* Message-ID value as sent, trimmed; or NULL */
    bool return_path_null;  /* Return-Path: <> (a bounce) */
    bool auto_submitted;    /* Auto-Submitted other than "no" */
    bool precedence_auto;   /* Precedence: bulk / junk / list / auto_reply */
    bool x_autoreply;       /* X-Autoreply / X-Autorespond / X-Auto-Response */
    bool report;            /* top-level Content-Type multipart/report (DSN, MDN) */
    size_t header_len;      /* bytes up to and including the blank line */
};

/* Fill info (zeroed first).  Fails only on MR_E_NOMEM. */
int msginfo_parse(const unsigned char *msg, size_t len, struct msginfo *info, mr_error *err);
void msginfo_free(struct msginfo *info);

/* Call fn with the decoded text of each text/plain and text/html part (inline or not,
 * nested messages included), at most `cap` bytes per part, in message order; fn returns
 * true to stop.  Without parseable MIME structure, the raw body is passed instead.
 * Returns 0, or MR_E_NOMEM. */
typedef bool (*msginfo_text_fn)(void *ctx, const char *text, size_t len);
int msginfo_each_text(const unsigned char *msg, size_t len, size_t cap, msginfo_text_fn fn,
                      void *ctx, mr_error *err);

#endif
