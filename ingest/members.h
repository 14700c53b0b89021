/*
 * members.h — the built-in member system: one SQLite database (WAL) holding the member
 * registry (members, their addresses, CPR numbers and cases) and the documents that ingest
 * copies into it (the original message bytes with SHA-256, Message-ID, received time,
 * source mailbox/UIDVALIDITY/UID and the routing rule), plus the queue of unrouted mail
 * for manual handling.  Schema: docs/INGEST.md.
 *
 * This is the fund's member system, so it legitimately holds identifiers; nothing read
 * from it may be copied into a log line, error message, state or audit record except the
 * member id and case id.
 */
#ifndef MAILRET_INGEST_MEMBERS_H
#define MAILRET_INGEST_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"

typedef struct members_db members_db;

#define MEMBERS_ID_MAX 64       /* member ids and case ids, incl. NUL */

/* Open (creating the file, mode 0600, and the schema if missing). */
int members_open(const char *path, members_db **out, mr_error *err);
void members_close(members_db *db);

/* Lookups for routing.  Each returns 0 with *found set; member (and case_id) are filled
 * when found.  An address registered to several members is ambiguous: *found is false and
 * *ambiguous true, because routing a message to the wrong member is worse than manual
 * handling.  addr is compared case-insensitively; cpr is normalised (10 digits). */
int members_find_case(members_db *db, const char *case_ref, bool *found,
                      char member[MEMBERS_ID_MAX], char case_id[MEMBERS_ID_MAX], mr_error *err);
int members_find_address(members_db *db, const char *addr, bool *found, bool *ambiguous,
                         char member[MEMBERS_ID_MAX], mr_error *err);
int members_find_cpr(members_db *db, const char *cpr, bool *found,
                     char member[MEMBERS_ID_MAX], mr_error *err);

/* Number of members, addresses, CPR numbers, cases, documents, unrouted messages. */
struct members_counts {
    int64_t members, addresses, cprs, cases, documents, unrouted;
};
int members_count(members_db *db, struct members_counts *out, mr_error *err);

/* A document or an unrouted message as stored (sink_sqlite writes these). */
struct members_doc {
    const char *member_id;      /* NULL for unrouted */
    const char *case_id;        /* NULL if not routed by case */
    const char *rule;           /* "case", "sender", "cpr"; "none"/"own"/"auto" unrouted */
    const char *message_id;     /* may be NULL */
    const char *sha256_hex;
    time_t received;            /* INTERNALDATE */
    const char *account, *mailbox;
    uint32_t uidvalidity, uid;
    const unsigned char *raw;
    size_t raw_len;
    bool no_raw;                /* unrouted only: record the message (size raw_len) without
                                   its bytes, which another sink keeps */
};

/* Transactions: the sink wraps each fetched batch in one. */
int members_begin(members_db *db, mr_error *err);
int members_commit(members_db *db, mr_error *err);
void members_rollback(members_db *db);

/* One document inside the batch's transaction: SAVEPOINT, then RELEASE on success or
 * undo (ROLLBACK TO + RELEASE) after a refusal, so one refused document leaves the rest of
 * the batch in place.  undo fails (MR_E_DB) if the refusal ended the whole transaction. */
int members_savepoint(members_db *db, mr_error *err);
int members_release(members_db *db, mr_error *err);
int members_undo(members_db *db, mr_error *err);

/* Insert a document (member_id set) or an unrouted message (member_id NULL).  Idempotent:
 * the same (account, mailbox, uidvalidity, uid, sha256) again sets *duplicate (checked to
 * be there).  A refusal of this document alone (constraint, trigger, too big, disk full)
 * returns MR_E_INVALID, MR_E_LIMIT or MR_E_NOSPACE; anything else is MR_E_DB. */
int members_store(members_db *db, const struct members_doc *doc, bool *duplicate,
                  mr_error *err);

/* Registry replacement used by the CSV import (members_import.c): inside a transaction,
 * clear the registry (documents stay) and add rows. */
int members_registry_clear(members_db *db, mr_error *err);
int members_add_member(members_db *db, const char *member_id, const char *name,
                       mr_error *err);
/* The add functions return MR_E_EXISTS if the key is already taken; *owner (may be NULL)
 * receives the member that holds it. */
int members_add_cpr(members_db *db, const char *member_id, const char *cpr,
                    char owner[MEMBERS_ID_MAX], mr_error *err);
int members_add_address(members_db *db, const char *member_id, const char *addr,
                        mr_error *err);
int members_add_case(members_db *db, const char *member_id, const char *case_id,
                     char owner[MEMBERS_ID_MAX], mr_error *err);

/* The underlying handle, for tests and reports that query the schema directly. */
struct sqlite3 *members_sqlite(members_db *db);

#endif
