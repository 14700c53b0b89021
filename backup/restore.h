/*
 * restore.h — `mailret restore`, IT's command: batches back into mail.
 *
 * Keys: the batch's epoch private keys are unsealed from the vault with the IT private key
 * (content) and the re-identification holder's key (reid; by default the same IT key).
 * With `pseudonymised` only the content key is needed and the archived (pseudonymised)
 * bytes are written as they are.
 * Selection (all given criteria must hold): batches, INTERNALDATE range, Message-ID,
 * person tokens ("kind:token" as in index.jsonl; the caller computes them with
 * pseudo_token from an address or CPR).  The erasure ledger (backup/ledger.h) is
 * required (or the audited --no-ledger): it must authenticate and agree with every signed
 * manifest's anchor, and every message that carries a listed token is left out.
 * Output: a Maildir (flags in the file name, mtime = INTERNALDATE) or an mboxrd file.
 * Every run is audited (who, batches, reason, counts) before and after.
 */
#ifndef MAILRET_BACKUP_RESTORE_H
#define MAILRET_BACKUP_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>

#include "common/audit.h"
#include "common/error.h"
#include "common/log.h"
#include "backup/archive.h"

enum restore_format { RESTORE_MAILDIR = 0, RESTORE_MBOX = 1, RESTORE_SINK = 2 };

/* A caller-supplied destination (RESTORE_SINK), e.g. IMAP APPEND in cli/cmd_restore.c:
 * the backup module does not link the IMAP client.  Returns 0 (stored), a negative
 * MR_E_* code (stop the restore), or RESTORE_SINK_REFUSED: the destination refused this
 * one message and can take the next (the sink has said why, on one line); the restore
 * goes on and counts it. */
#define RESTORE_SINK_REFUSED 1
typedef int (*restore_sink_fn)(void *ctx, const unsigned char *msg, size_t len,
                               const char *flags, time_t internaldate, int tz_min,
                               mr_error *err);

struct restore_options {
    const char *archive_dir;
    const char *vault_dir;
    const char *const *batches;     /* batch ids or directory names; n_batches 0 = all */
    size_t n_batches;
    const char *mailbox;            /* limit "all" to one mailbox; NULL = every mailbox */
    time_t from, to;                /* INTERNALDATE in [from, to); 0 = open */
    const char *message_id;         /* with or without <>; NULL = any */
    const char *const *tokens;      /* person selection; a message must carry one of them */
    size_t n_tokens;
    const unsigned *token_epochs;   /* per token, the pseudonym-key epoch it was made
                                       under: it selects only in batches of that epoch
                                       (manifest pseudonym_epoch); NULL = in any batch */
    bool pseudonymised;
    EVP_PKEY *it_key;               /* content holder's private key */
    EVP_PKEY *reid_key;             /* NULL = it_key */
    const struct archive_trust *trust;  /* required: a batch is restored only if its
                                           manifest is authentic (or the override says) */
    const char *ledger_path;        /* the erasure ledger (backup/ledger.h), checked against
                                       trust->keyring and every manifest's anchor */
    bool no_ledger;                 /* restore without one: audited, warned (exactly one of
                                       ledger_path and no_ledger) */
    enum restore_format format;
    const char *output;             /* Maildir directory or mbox file (or a label for
                                       RESTORE_SINK, for the audit record) */
    restore_sink_fn sink;           /* RESTORE_SINK only */
    void *sink_ctx;
    const char *reason;             /* required, goes to the audit log */
    audit_log *audit;               /* required outside unit tests */
    mr_log *log;
};

struct restore_stats {
    size_t batches;
    size_t restored;
    size_t erased;          /* left out because of the erasure ledger */
    size_t not_selected;
    size_t refused;         /* RESTORE_SINK: messages the destination refused */
    size_t keywords_dropped;    /* Maildir: keyword occurrences past the 26 letters */
    size_t unverified;          /* batches restored under the override */
    size_t legacy;              /* batches authenticated by the legacy HMAC */
};

int restore_run(const struct restore_options *opt, struct restore_stats *stats,
                mr_error *err);

/* Output writers (restore_out.c). */
typedef struct restore_out restore_out;
int restore_out_open(enum restore_format format, const char *path, restore_out **out,
                     mr_error *err);
int restore_out_write(restore_out *o, const unsigned char *msg, size_t len, const char *flags,
                      time_t internaldate, const char *unique, mr_error *err);
/* fsync and close; frees o. */
int restore_out_close(restore_out *o, mr_error *err);
/* Keyword occurrences a Maildir had no letter left for (0 for other formats). */
size_t restore_out_keywords_dropped(const restore_out *o);

#endif
