/*
 * check.h — `mailret check`, the compliance check for monitoring and auditors.
 *
 * Batches (every directory under the archive), one status each:
 *   ok                        verified batch, keys present, volumes present, not expiring
 *   expiring      (warning)   expires within warn_days
 *   OVERDUE       (violation) past its expiry, not held: expire has not run
 *   held                      under legal hold (kept past expiry on purpose); ok level
 *   damaged       (violation) the manifest cannot be read, or a volume is missing or
 *                             has the wrong size
 *   UNVERIFIABLE  (violation) the manifest does not authenticate (altered, unsigned,
 *                             unknown signer); the detail says whether expire can still
 *                             shred it on the vault's record of its keys
 *   key-missing   (violation) a sealed epoch key is gone while the batch should be
 *                             restorable
 *   key-present-after-expiry  (violation) an expired batch whose epoch key or volumes
 *                             survive: it was not crypto-shredded
 *   expired                   tombstone only, keys gone; ok level
 *   incomplete    (warning)   a directory without manifest or tombstone (an interrupted
 *                             purge, or one running now)
 *   orphan-key    (violation) a file of an epoch key in the vault (sealed key,
 *                             certificate or metadata) that no batch's manifest or
 *                             tombstone names and whose batch directory does not exist
 *                             (mailbox "(vault)"); no one would ever shred it
 *   stale-temp    (warning)   a temporary file of an interrupted write (the next purge,
 *                             backup or expire removes it)
 * Mailboxes (unless offline): nothing with INTERNALDATE before the last cutoff whose
 * purge should have run (the month start of at - grace).  What is there is explained per
 * class: held back (the member system has not accepted it since DATE: a warning for
 * held_days after the first refusal, then a violation), not ingested, and not purged
 * (with the last purge's result: its one-line error if it failed) — both violations.
 * The last purge's result is shown for every mailbox.
 * The unrouted queue (members_db, when set): a warning when more than unrouted_warn_count
 * messages wait, or one has waited more than unrouted_warn_days (0 turns either off).
 * The audit log's hash chain must verify (violation otherwise).  So must the erasure
 * ledger (backup/ledger.h): its chain and signatures by a pinned host key, and every
 * authentic manifest's anchor (a ledger cut back to an older state is a valid chain on
 * its own); one that does not, or cannot be read, is a violation.  A missing ledger is
 * fine only while no manifest anchors an entry.  TLS verification turned off ([imap]
 * insecure_skip_verify) is a violation.
 * Level of the whole report: the worst item; exit status 0/1/2 in the CLI.
 */
#ifndef MAILRET_PURGE_CHECK_H
#define MAILRET_PURGE_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "backup/archive.h"
#include "common/error.h"
#include "common/log.h"
#include "imap/imap.h"
#include "purge/journal.h"

enum check_level { CHECK_OK = 0, CHECK_WARN = 1, CHECK_VIOLATION = 2 };

/* One IMAP account's mailboxes, each checked on the account's own connection. */
struct check_account {
    const struct imap_options *imap;    /* NULL = offline */
    const char *const *mailboxes;
    size_t n_mailboxes;
    const char *account;                /* its ingest-state key */
    const char *key_prefix;             /* its purge-journal name: key_prefix + mailbox
                                           (NULL = "") */
};

struct check_options {
    const char *archive_dir;
    const char *vault_dir;
    const struct archive_trust *trust;  /* pinned host keys, legacy manifest key */
    time_t at;                          /* evaluate as of this time */
    int warn_days;                      /* "expiring" window */
    const char *zone;                   /* NULL = Europe/Copenhagen */
    const struct imap_options *imap;    /* NULL = offline: mailboxes not checked */
    const char *const *mailboxes;
    size_t n_mailboxes;
    time_t grace;                       /* seconds after the month start before the
                                           purge must have run; e.g. 86400 */
    const char *audit_path;             /* NULL = not checked */
    const char *ledger_path;            /* the erasure ledger, checked against
                                           trust->keyring; NULL = not checked */
    const char *ingest_state;           /* ingest's state: why a message stays; NULL = not
                                           read (every old message is NOT PURGED) */
    const char *account;                /* its account key */
    const struct check_account *accounts;   /* n_accounts > 0: these instead of imap,
                                               mailboxes and account above */
    size_t n_accounts;
    const char *journal_path;           /* purge journal: the last run per mailbox */
    int held_days;                      /* held back longer than this: a violation */
    bool insecure_tls;                  /* [imap] insecure_skip_verify is on: a violation
                                           (mail and the password open to anyone between) */
    const char *members_db;             /* the member database (unrouted queue); NULL =
                                           not checked */
    unsigned unrouted_warn_count;       /* 0 = no warning on the count */
    unsigned unrouted_warn_days;        /* 0 = no warning on the age */
    mr_log *log;
};

struct check_batch {
    char mailbox[256];
    char batch_id[80];
    time_t period_start, period_end, created, expires;
    size_t messages;
    const char *status;                 /* one of the names above */
    enum check_level level;
    char detail[512];
    char content_key_id[33], reid_key_id[33];   /* the keys it names, if known */
    bool has_ledger;                    /* an authentic manifest anchors the ledger: */
    struct ledger_anchor ledger;        /*   where it stood when the batch was signed */
};

struct check_mailbox {
    char mailbox[256];                  /* key_prefix + name, as the journal knows it */
    char name[256];                     /* on the server */
    size_t account;                     /* index into the accounts checked */
    time_t cutoff;
    size_t older;                       /* messages before the cutoff still there, of which */
    size_t held;                        /*   the member system has not accepted (purge
                                             keeps them: a warning for held_days) */
    size_t not_ingested;                /*   ingest has not seen */
    size_t not_purged;                  /*   nothing explains: the purge failed or not ran */
    time_t held_since;                  /* the oldest first refusal among the held */
    char held_reason[256];              /* the sink's reason for that one */
    struct purge_jresult last;          /* the last purge's result (last.found) */
    const char *status;                 /* "ok", "HELD BACK", "NOT PURGED", "error",
                                           "skipped" */
    enum check_level level;
    char detail[2 * MR_ERROR_MSG_MAX];
};

struct check_report {
    time_t at;
    struct check_batch *batches;
    size_t n_batches;
    struct check_mailbox *mailboxes;
    size_t n_mailboxes;
    bool offline;
    const char *audit_status;           /* "ok", "BROKEN", "skipped" */
    size_t audit_records;
    char audit_detail[MR_ERROR_MSG_MAX];
    struct {
        const char *status;             /* "ok", "BROKEN", "absent", "skipped" */
        unsigned long long entries;     /* when it opened */
        size_t anchors;                 /* manifests it was checked against */
        char detail[MR_ERROR_MSG_MAX];  /* why BROKEN; names no person (entries are
                                           sealed, the reason names file and line) */
    } ledger;
    bool insecure_tls;                  /* counted among the violations */
    enum check_level level;
    size_t warnings, violations;
    size_t unchecked;                   /* mailboxes that could not be checked ("error",
                                           counted among the violations too) */
    struct {
        const char *status;             /* "ok", "BACKLOG", "skipped", "error" */
        enum check_level level;
        long long waiting;
        long long oldest_days;          /* days the oldest waiting one has waited */
        unsigned warn_count, warn_days; /* the thresholds (perfdata) */
        char detail[MR_ERROR_MSG_MAX];
    } unrouted;
};

/* Fills *report even when some part fails (that part becomes a violation or an error
 * entry); returns non-zero only when the check itself could not run (e.g. no memory,
 * unreadable archive directory). */
int check_run(const struct check_options *opt, struct check_report **report, mr_error *err);
void check_report_free(struct check_report *r);
void check_report_print(FILE *out, const struct check_report *r);
int check_report_json(FILE *out, const struct check_report *r, mr_error *err);

/* Nagios/Icinga plugin states. */
enum check_nagios_state { NAGIOS_OK = 0, NAGIOS_WARNING = 1, NAGIOS_CRITICAL = 2,
                          NAGIOS_UNKNOWN = 3 };

/* One line in the plugin format, "MAILRET STATE - summary | perfdata", scrubbed, and its
 * state: CRITICAL for a violation found, else UNKNOWN when a mailbox could not be
 * checked, else WARNING for a warning, else OK. */
enum check_nagios_state check_report_nagios(FILE *out, const struct check_report *r);

#endif
