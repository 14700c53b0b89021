/*
 * purge.h — the monthly purge (`mailret purge`, docs/PURGE.md).
 *
 * For each mailbox, on one read-write IMAP connection:
 *   1. finish what an interrupted run left in the journal (journal.h): a batch still being
 *      fetched or written is discarded (files and sealed epoch keys); a batch whose
 *      manifest is valid has its UIDs expunged now — only those whose bytes on the server
 *      still hash to the SHA-256 recorded when they were archived, and only while the
 *      UIDVALIDITY is the recorded one (after a UIDVALIDITY change, messages are matched
 *      by SHA-256 instead);
 *   2. UID SEARCH BEFORE the cutoff (a superset: IMAP dates are whole days in the server's
 *      zone), UID FETCH those UIDs and keep the ones whose exact INTERNALDATE is before
 *      the cutoff; archive them as one batch, recording UID + SHA-256 in the journal;
 *   3. when archive_batch_close has verified every volume and written the manifest, and
 *      (with an object store attached to backup/batchdir.h) every file of the batch is in
 *      the store and read back: UID STORE +FLAGS.SILENT (\Deleted) and UID EXPUNGE
 *      exactly those UIDs, in chunks.  A batch the store did not take stays here, its
 *      messages on the server; the next run pushes it (as in 1.) and expunges.
 * Messages added after the SEARCH are never touched.  Without UIDPLUS the purge refuses
 * (MR_E_UNSUPPORTED) unless allow_plain_expunge, and then only if no other message in the
 * mailbox carries \Deleted.
 * Ingest runs first (opt->ingest).  Whatever it could not deliver is held back, not the
 * whole run: a message older than the cutoff stays on the server, listed by UID with its
 * reason, if the ingest state (opt->ingest_state) says it was refused by the member system
 * ("not-delivered"), or it was not ingested at all ("not-ingested": above the state's
 * position, or the mailbox's UIDVALIDITY is not the one ingested), or it is larger than
 * purge can fetch ("too-large").  Unrouted mail sits in the member system's queue and goes
 * like any other.  A mailbox that fails is reported, recorded in the journal and audited,
 * and the run goes on with the next (on a new connection if needed).
 * The caller holds the run lock (lock.h).
 */
#ifndef MAILRET_PURGE_PURGE_H
#define MAILRET_PURGE_PURGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "backup/archive.h"
#include "common/audit.h"
#include "common/error.h"
#include "common/log.h"
#include "common/progress.h"
#include "imap/imap.h"
#include "ingest/ingest.h"

#define PURGE_DEFAULT_EXPUNGE_CHUNK 1000
/* The largest message purge fetches: any a server can announce (RFC822.SIZE is 32-bit).
 * [imap] max_message_size limits ingest only; purge holds one message at a time. */
#define PURGE_MAX_MESSAGE_SIZE ((size_t)UINT32_MAX)

/* Called at named steps ("after-search", "mid-fetch", "before-close", "after-close",
 * "after-push", "after-verified", "after-store", "after-expunge", "resume-after-store").  The CLI
 * installs purge_test_crash_hook (crash.h) for fault-injection tests; NULL = none. */
typedef void (*purge_hook_fn)(void *ctx, const char *step);

struct purge_options {
    const struct imap_options *imap;
    const char *const *mailboxes;
    size_t n_mailboxes;
    const struct archive_options *archive;  /* template: mailbox, batch id, period and
                                               times are set per batch */
    const struct archive_trust *trust;      /* to read back a resumed batch's manifest */
    int retention_years;                    /* expires = created + years (mrtime) */
    const char *zone;                       /* NULL = Europe/Copenhagen */
    time_t cutoff;                          /* messages with INTERNALDATE < cutoff go */
    const char *journal_path;
    struct ingest_options *ingest;          /* NULL: no ingest first (dry run, tests) */
    const char *ingest_state;               /* ingest's state database: what to hold
                                               back; NULL = hold nothing (unit tests) */
    const char *account;                    /* its account key (ingest_account_key) */
    const char *key_prefix;                 /* journal and archive name of a mailbox:
                                               key_prefix + its name (NULL = "") */
    bool dry_run;
    bool allow_plain_expunge;
    const mr_error *store_error;            /* the object store could not be opened: every
                                               mailbox fails with it (after ingest),
                                               nothing archived or deleted; NULL = fine */
    size_t expunge_chunk;                   /* UIDs per STORE+EXPUNGE round; 0 = default */
    audit_log *audit;
    mr_log *log;
    mr_progress *progress;                  /* NULL = none; messages fetched per mailbox */
    purge_hook_fn hook;
    void *hook_ctx;
};

/* A message older than the cutoff that stays on the server, and why.  No personal data:
 * the sink's reason is its one-line error (exit status, constraint or trigger text). */
struct purge_held {
    uint32_t uid;
    const char *why;            /* "not-delivered", "not-ingested", "too-large" */
    char rule[16];              /* routing rule of a refused message, else "" */
    char reason[256];
    time_t since;               /* first refusal, 0 if not known */
    unsigned attempts;
};

struct purge_mailbox_report {
    char mailbox[256];
    size_t resumed_batches;     /* batches of an interrupted run finished now */
    size_t resumed_expunged;    /* messages those expunged */
    size_t discarded_batches;   /* unfinished batches removed */
    size_t candidates;          /* UIDs the SEARCH returned */
    size_t selected;            /* exact INTERNALDATE before the cutoff */
    unsigned long long bytes;   /* of the selected messages */
    size_t archived;            /* in the new, verified batch */
    size_t expunged;            /* removed from the server by this run's new batch */
    unsigned long long sealed_parts;    /* parts of the new batch sealed into its reid data */
    size_t sealed_messages;     /* its messages with at least one */
    char batch_id[64];          /* the new batch, "" if none */
    struct purge_held *held;    /* kept on the server, by UID */
    size_t n_held;
    size_t pending_ingest;      /* dry run: older, not yet ingested; the real run ingests
                                   them first and holds back what is not delivered */
    bool attempted;             /* false: the run stopped before this mailbox */
    int status;                 /* 0 or the MR_E_* code that stopped this mailbox */
    char error[MR_ERROR_MSG_MAX];
};

struct purge_report {
    time_t cutoff;
    bool dry_run;
    bool ingested;
    int ingest_status;          /* 0 or the ingest's failure: the run went on around it */
    char ingest_error[MR_ERROR_MSG_MAX];
    size_t held;                /* messages held back in all mailboxes */
    struct purge_mailbox_report *mailboxes;
    size_t n;
};

/* Returns 0 if every mailbox completed and nothing was held back; else the first
 * mailbox failure (err names the mailbox), or the ingest's failure when every mailbox was
 * purged around what it did not deliver.  *report is filled either way
 * (purge_report_free). */
int purge_run(const struct purge_options *opt, struct purge_report **report, mr_error *err);
void purge_report_free(struct purge_report *r);
void purge_report_print(FILE *out, const struct purge_report *r);
int purge_report_json(FILE *out, const struct purge_report *r, mr_error *err);

/* Remove an unfinished batch: every file of its directory (if any), the directory, and its
 * sealed epoch keys (found by batch id in the vault's metadata).  Audited. */
int purge_batch_discard(const char *archive_dir, const char *vault_dir, const char *batch_id,
                        audit_log *audit, mr_log *log, mr_error *err);

/* The test crash hook: if $MAILRET_TEST_CRASH_AT names this step, raise SIGKILL (as if an
 * operator ran kill -9 at exactly that point).  Test-only; harmless otherwise: a crash at
 * any point is what the journal is for.  Logs nothing. */
void purge_test_crash_hook(void *ctx, const char *step);

#endif
