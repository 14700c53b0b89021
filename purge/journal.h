/*
 * journal.h — purge's journal: <state dir>/purge-journal.sqlite (SQLite, synchronous=FULL,
 * so that every state change is on disk before the step it announces is taken).
 *
 * One row per batch a purge started, moving through
 *   fetching  -> the batch directory may hold partial volumes; no manifest can exist yet
 *   closing   -> every message (UID + SHA-256 of the fetched bytes) is recorded; the archive
 *                is being finished; a valid manifest means it was verified
 *   verified  -> manifest written and checked: these UIDs may be deleted
 *   expunging -> UID STORE \Deleted / UID EXPUNGE under way
 *   done | discarded
 * plus the (uid, sha256) list of each batch, and per mailbox the result of the last real
 * run (ok / failed with its one-line error, counts archived, expunged and held back) that
 * `check` shows.  The journal holds no personal data: mailbox
 * names from the configuration, batch ids, UIDs, SHA-256 digests, times.  See docs/PURGE.md.
 */
#ifndef MAILRET_PURGE_JOURNAL_H
#define MAILRET_PURGE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"

#define PURGE_JOURNAL_FILE "purge-journal.sqlite"

enum purge_jstate {
    PJ_FETCHING = 0,
    PJ_CLOSING = 1,
    PJ_VERIFIED = 2,
    PJ_EXPUNGING = 3,
    PJ_DONE = 4,
    PJ_DISCARDED = 5,
};

struct purge_jbatch {
    int64_t id;
    char mailbox[256];
    uint32_t uidvalidity;
    time_t cutoff;
    char batch_id[64];
    enum purge_jstate state;
    time_t created, updated;
    size_t n_messages;
};

struct purge_jmsg {
    uint32_t uid;
    char sha256[65];            /* hex of the bytes fetched with BODY.PEEK[] */
};

typedef struct purge_journal purge_journal;

int purge_journal_open(const char *path, purge_journal **out, mr_error *err);
void purge_journal_close(purge_journal *j);

const char *purge_journal_state_name(enum purge_jstate s);

/* A new batch in state fetching; *id is its journal row. */
int purge_journal_begin(purge_journal *j, const char *mailbox, uint32_t uidvalidity,
                        time_t cutoff, const char *batch_id, int64_t *id, mr_error *err);
/* Record all messages of batch id and move it to closing, in one transaction. */
int purge_journal_record(purge_journal *j, int64_t id, const struct purge_jmsg *msgs, size_t n,
                         mr_error *err);
int purge_journal_set_state(purge_journal *j, int64_t id, enum purge_jstate state,
                            mr_error *err);
/* Batches of mailbox (NULL = all) not yet done or discarded, oldest first; *out malloc'd. */
int purge_journal_pending(purge_journal *j, const char *mailbox, struct purge_jbatch **out,
                          size_t *n, mr_error *err);
/* The messages of batch id, by UID; *out malloc'd. */
int purge_journal_messages(purge_journal *j, int64_t id, struct purge_jmsg **out, size_t *n,
                           mr_error *err);

/* The last real run's result for one mailbox. */
struct purge_jresult {
    char mailbox[256];
    bool found;                 /* result_read: false if no run was recorded */
    time_t at, cutoff;
    char status[24];            /* "ok" or "failed" */
    char error[MR_ERROR_MSG_MAX];
    size_t archived, expunged, held;
};
int purge_journal_result_set(purge_journal *j, const struct purge_jresult *r, mr_error *err);
/* Read-only, without a purge_journal (check runs beside a purge); a missing journal or
 * mailbox leaves r->found false. */
int purge_journal_result_read(const char *path, const char *mailbox, struct purge_jresult *r,
                              mr_error *err);

#endif
