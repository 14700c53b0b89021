/*
 * ingest.h — one ingest run: for each mailbox, EXAMINE (read-only), read the state,
 * UID SEARCH for UIDs above the last one ingested, UID FETCH them in batches (streaming,
 * BODY.PEEK[] so that flags stay as they are), and per message: SHA-256, content dedup,
 * routing, delivery to the sink; then commit the sink and the state for the batch.
 *
 * Guarantees (tests/integration/itest_ingest_*.c prove them):
 *  - a crash or kill -9 repeats at most the batch in flight, and nothing is stored twice;
 *  - a UIDVALIDITY change is logged and recorded, and the mailbox is re-read with every
 *    message already handled skipped by SHA-256;
 *  - a message the sink did not take (exec sink non-zero exit, a refused SQLite document)
 *    is recorded by UID with its reason in the state's refusals; the position moves past
 *    it, every later run retries it first, and purge keeps it on the server until then;
 *  - a mailbox that fails is reported and the run goes on with the next one (on a new
 *    connection if the failure may have broken the old one);
 *  - messages over max_size are recorded in the state and skipped with a warning;
 *  - nothing personal is logged: mailbox, UID, Message-ID hash and member id only.
 * purge calls ingest_run first ("ingest before delete").
 */
#ifndef MAILRET_INGEST_INGEST_H
#define MAILRET_INGEST_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/error.h"
#include "common/log.h"
#include "imap/imap.h"
#include "ingest/members.h"
#include "ingest/route.h"
#include "ingest/sink.h"

#define INGEST_DEFAULT_BATCH 200
#define INGEST_DEFAULT_MAX_SIZE (64u * 1024 * 1024)

struct ingest_options {
    const struct imap_options *imap;    /* max_literal is set from max_size */
    const char *account;                /* state key; NULL = "user@host" */
    const char *const *mailboxes;
    size_t n_mailboxes;
    sink *sink;                         /* where routed and unrouted mail goes */
    members_db *members;                /* the registry routing looks up */
    bool queue_unrouted;                /* also record unrouted mail (without its bytes) in
                                           members' unrouted table, the queue `mailret
                                           unrouted` works: for sinks other than sqlite */
    const struct route_config *routing;
    const char *state_db;               /* path of the state database */
    size_t batch_size;                  /* messages per UID FETCH; 0 = INGEST_DEFAULT_BATCH */
    uint64_t max_size;                  /* larger messages are skipped; 0 = default */
    mr_log *log;                        /* may be NULL */
};

struct ingest_mailbox_report {
    char *mailbox;
    uint32_t uidvalidity;
    bool uidvalidity_changed;
    uint64_t fetched;                   /* messages fetched (incl. duplicates, skipped) */
    uint64_t bytes;                     /* bytes fetched */
    uint64_t routed[ROUTE_RULE_COUNT];  /* by rule: case, sender, cpr, none, own, auto */
    uint64_t duplicates;                /* already handled (content or sink dedup) */
    uint64_t oversized;                 /* over max_size: recorded and skipped */
    uint64_t errors;                    /* not delivered (sink refused); retried next run */
    uint32_t last_uid;                  /* state after the run */
    double elapsed_s;
    int status;                         /* 0, or the MR_E_* code that stopped this mailbox */
    char error[MR_ERROR_MSG_MAX];
};

struct ingest_report {
    struct ingest_mailbox_report *mailboxes;
    size_t n;
    double elapsed_s;
    bool connected;                     /* false: failed before any mailbox (TLS, login) */
};

/* Runs every mailbox; a mailbox that fails is reported and the others still run.
 * Returns 0 if every mailbox completed without errors, else the
 * first failure's code (err says which mailbox and why; undelivered messages give
 * MR_E_IO "N messages not delivered").  *report is filled either way (free it). */
int ingest_run(const struct ingest_options *opt, struct ingest_report **report,
               mr_error *err);
void ingest_report_free(struct ingest_report *report);

/* The account name the state is keyed by: account, or "user@host" when it is NULL. */
void ingest_account_key(const struct imap_options *imap, const char *account, char *out,
                        size_t size);

/* Human-readable table / one JSON object (ingest_report.c). */
void ingest_report_print(FILE *out, const struct ingest_report *report);
int ingest_report_json(FILE *out, const struct ingest_report *report, mr_error *err);

#endif
