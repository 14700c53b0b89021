/*
 * state.h — ingest's own state, a SQLite database (WAL) in the state directory:
 *   mailbox_state  per (account, mailbox): UIDVALIDITY and the highest UID ingested
 *   seen           per (account, mailbox, SHA-256 of the raw message): outcome, UID,
 *                  UIDVALIDITY, Message-ID hash — the content dedup that makes a
 *                  UIDVALIDITY change (or a repeated batch) harmless
 *   skipped        messages over the size limit, by UID and size
 *   events         UIDVALIDITY changes and other things an operator should see later
 * No personal data: mailboxes, UIDs, hashes, member-free outcomes only.
 * One transaction per fetched batch, committed after the sink's.  An exclusive lock on
 * "<path>.lock" keeps two ingest runs from working on the same state.
 */
#ifndef MAILRET_INGEST_STATE_H
#define MAILRET_INGEST_STATE_H

#include <stdbool.h>
#include <stdint.h>

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

struct sqlite3 *state_sqlite(ingest_state *st);

#endif
