/*
 * state.h — ingest's own state, a SQLite database (WAL) in the state directory:
 *   mailbox_state  per (account, mailbox): UIDVALIDITY and the highest UID ingested
 *   seen           per (account, mailbox, SHA-256 of the raw message): outcome, UID,
 *                  UIDVALIDITY, Message-ID hash — the content dedup that makes a
 *                  UIDVALIDITY change (or a repeated batch) harmless
 *   skipped        messages over the size limit, by UID and size
 *   refused        messages the sink did not accept, by UID: the rule, the sink's one-line
 *                  reason, the first and last failure and the number of attempts; the
 *                  position moves past them, each run retries them, a delivery removes
 *                  the row, and purge keeps every one of them on the server
 *   events         UIDVALIDITY changes and other things an operator should see later
 *   last_run       per (account, mailbox): the last run's time, result and error
 * No personal data: mailboxes, UIDs, hashes, member-free outcomes only.
 * One transaction per fetched batch, committed after the sink's.  An exclusive lock on
 * "<path>.lock" keeps two ingest runs from working on the same state.
 */
#ifndef MAILRET_INGEST_STATE_H
#define MAILRET_INGEST_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"

typedef struct ingest_state ingest_state;

/* MR_E_STATE if another process holds the lock. */
int state_open(const char *path, ingest_state **out, mr_error *err);
void state_close(ingest_state *st);

/* *found false for a mailbox never ingested. */
int state_get(ingest_state *st, const char *account, const char *mailbox, bool *found,
              uint32_t *uidvalidity, uint32_t *last_uid, mr_error *err);

int state_begin(ingest_state *st, mr_error *err);
int state_commit(ingest_state *st, mr_error *err);
void state_rollback(ingest_state *st);

int state_set(ingest_state *st, const char *account, const char *mailbox,
              uint32_t uidvalidity, uint32_t last_uid, mr_error *err);

/* Content dedup: has this exact message (SHA-256 hex) been handled in this mailbox under
 * any UIDVALIDITY?  *outcome (may be NULL; 16 bytes) receives how. */
int state_seen_get(ingest_state *st, const char *account, const char *mailbox,
                   const char *sha256_hex, bool *seen, char outcome[16], mr_error *err);
int state_seen_add(ingest_state *st, const char *account, const char *mailbox,
                   const char *sha256_hex, uint32_t uidvalidity, uint32_t uid,
                   const char *outcome, const char *msgid_hash, mr_error *err);

int state_skip_add(ingest_state *st, const char *account, const char *mailbox,
                   uint32_t uidvalidity, uint32_t uid, uint64_t size, const char *reason,
                   mr_error *err);

int state_event(ingest_state *st, const char *account, const char *mailbox,
                const char *event, const char *detail, mr_error *err);

/* A message the sink refused: recorded (or its retry counted) / removed once delivered. */
int state_refused_add(ingest_state *st, const char *account, const char *mailbox,
                      uint32_t uidvalidity, uint32_t uid, const char *sha256_hex,
                      const char *rule, const char *reason, mr_error *err);
int state_refused_clear(ingest_state *st, const char *account, const char *mailbox,
                        uint32_t uidvalidity, uint32_t uid, mr_error *err);
/* After a UIDVALIDITY change: the old UIDs mean nothing (the re-read retries the bytes). */
int state_refused_drop_other(ingest_state *st, const char *account, const char *mailbox,
                             uint32_t uidvalidity, mr_error *err);
/* The refused UIDs of a mailbox under uidvalidity, ascending; *uids malloc'd. */
int state_refused_uids(ingest_state *st, const char *account, const char *mailbox,
                       uint32_t uidvalidity, uint32_t **uids, size_t *n, mr_error *err);

/* The last run per mailbox: when, "ok" or "failed" and its one-line error (scrubbed by
 * the caller: the state holds no personal data), messages fetched.  state_run_read is
 * read-only and without the lock, like state_view_read; found false when never run. */
int state_run_set(ingest_state *st, const char *account, const char *mailbox, bool ok,
                  const char *error, uint64_t fetched, mr_error *err);
struct state_run {
    bool found;
    time_t at;
    char status[16];
    char error[256];
    uint64_t fetched;
};
int state_run_read(const char *path, const char *account, const char *mailbox,
                   struct state_run *out, mr_error *err);

struct sqlite3 *state_sqlite(ingest_state *st);

/* What purge and check need to know about one mailbox, read without the ingest lock (a
 * read-only SQLite connection; a missing file reads as never ingested). */
struct state_refusal {
    uint32_t uid;
    char rule[16];
    char reason[256];
    time_t first_failed, last_failed;
    unsigned attempts;
};
struct state_view {
    bool found;                     /* the mailbox was ever ingested */
    uint32_t uidvalidity, last_uid;
    struct state_refusal *refused;  /* under uidvalidity, by UID ascending */
    size_t n;
};
int state_view_read(const char *path, const char *account, const char *mailbox,
                    struct state_view *v, mr_error *err);
const struct state_refusal *state_view_refusal(const struct state_view *v, uint32_t uid);
void state_view_clear(struct state_view *v);

#endif
