/*
 * unrouted.h — the queue of mail no rule could route: the `unrouted` table of the member
 * database (members.h).  The sqlite sink stores each such message there with its bytes;
 * with the maildir and exec sinks ingest records it there without them (the bytes are in
 * the sink and still on the IMAP server).  A caseworker lists the queue, looks at one
 * entry, assigns it to a member (and case) through the configured sink, or marks it done;
 * `handled` holds when (Unix time), 0 while it waits.
 *
 * Entries carry no personal data beyond what the member database already holds; what
 * `unrouted show` prints from the message's header goes to the terminal, never to a log.
 */
#ifndef MAILRET_INGEST_UNROUTED_H
#define MAILRET_INGEST_UNROUTED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"
#include "imap/imap.h"
#include "ingest/members.h"
#include "ingest/sink.h"

struct unrouted_entry {
    int64_t id;
    char account[256];
    char mailbox[256];
    uint32_t uidvalidity, uid;
    time_t received;            /* INTERNALDATE */
    time_t ingested;
    time_t handled;             /* 0 = waiting */
    int64_t size;               /* the message's size */
    bool has_raw;               /* the bytes are in the member database */
    char reason[16];
    char sha256[65];
};

/* Entries by id; all = also the handled ones.  *out malloc'd (free()). */
int unrouted_list(members_db *db, bool all, struct unrouted_entry **out, size_t *n,
                  mr_error *err);

/* One entry; MR_E_NOTFOUND if there is no such id.  raw (may be NULL) receives the stored
 * bytes (malloc'd, NULL when not stored) and *len their length. */
int unrouted_get(members_db *db, int64_t id, struct unrouted_entry *e, unsigned char **raw,
                 size_t *len, mr_error *err);

/* Mark handled at `when`; *was_handled tells whether it already was (then unchanged). */
int unrouted_done(members_db *db, int64_t id, time_t when, bool *was_handled, mr_error *err);

/* Fetch the entry's message from the IMAP server (the same mailbox, UIDVALIDITY and UID,
 * and the same SHA-256, else MR_E_NOTFOUND saying which differs).  *raw malloc'd. */
int unrouted_fetch(const struct imap_options *io, const struct unrouted_entry *e,
                   unsigned char **raw, size_t *len, mr_error *err);

/* Deliver the entry's bytes to member (and case, may be NULL or "") through the sink with
 * rule "manual", then mark the entry handled.  The member must be registered; a case must
 * be registered to that member.  *outcome says delivered or already there (a repeat).
 * A refusal by the sink is MR_E_INVALID with its reason; the entry stays waiting. */
int unrouted_assign(members_db *db, sink *s, const struct unrouted_entry *e,
                    const unsigned char *raw, size_t len, const char *member,
                    const char *case_id, enum sink_outcome *outcome, mr_error *err);

/* The waiting entries for monitoring, read without locking ingest out (read-only SQLite);
 * a missing database reads as an empty queue.  oldest: when the longest-waiting entry was
 * queued (ingested), 0 when none. */
struct unrouted_backlog {
    int64_t waiting;
    time_t oldest;
};
int unrouted_backlog_read(const char *db_path, struct unrouted_backlog *out, mr_error *err);

#endif
