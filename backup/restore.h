/*
 * restore.h — `mailret restore`, IT's command: batches back into mail.
 *
 * Keys: the batch's epoch private keys are unsealed from the vault with the IT private key
 * (content) and the re-identification holder's key (reid; by default the same IT key).
 * With `pseudonymised` only the content key is needed and the archived (pseudonymised)
 * bytes are written as they are.
 * Selection (all given criteria must hold): batches, INTERNALDATE range, Message-ID,
 * person tokens ("kind:token" as in index.jsonl; the caller computes them with
 * pseudo_token from an address or CPR).  A targeted selection (any but batches) first
 * consults each batch's locator (backup/locator.h) and decrypts only the volumes that
 * hold a candidate; a batch without an authentic locator is read whole.  The audit
 * record names the kinds of selection, never the identifiers.  The erasure ledger
 * (backup/ledger.h) is required (or the audited --no-ledger): it must authenticate and
 * agree with every signed manifest's anchor, and every message that carries a listed
 * token is left out.
 * Output: a destination driver (struct restore_driver, as ingest's sink_driver): a Maildir
 * (flags in the file name, mtime = INTERNALDATE), an mboxrd file, or an IMAP mailbox
 * (APPEND with flags and INTERNALDATE).  Restoring is idempotent: each driver knows the
 * SHA-256 of every message already in the destination (of the bytes as that destination
 * stores them), and a message whose bytes are there already is counted as a duplicate and
 * not written again — so a restore repeated into the same place adds nothing.
 * list_only reports per batch what a restore would bring back, writing no mail.
 * Every run is audited (who, batches, reason, counts) before and after.
 */
#ifndef MAILRET_BACKUP_RESTORE_H
#define MAILRET_BACKUP_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>

#include "common/audit.h"
#include "common/error.h"
#include "common/log.h"
#include "backup/archive.h"

enum restore_format { RESTORE_MAILDIR = 0, RESTORE_MBOX = 1 };

struct mr_progress;
struct imap_options;

/* ---- destinations ---------------------------------------------------------------------- */

/* One message to write: the bytes as restored, its flags ("\\Seen ..."), INTERNALDATE with
 * the server's zone offset, and a name unique within the restore (Maildir file names). */
struct restore_msg {
    const unsigned char *bytes;
    size_t len;
    const char *flags;
    time_t internaldate;
    int tz_min;
    const char *unique;
};

/* put's "this one message was refused, the next may go" (the driver said why on one line,
 * in the log); the restore goes on and counts it. */
#define RESTORE_REFUSED 1

struct restore_driver {
    const char *name;                   /* "maildir", "mbox", "imap": the audit's output */
    /* SHA-256 (hex) of msg as this destination will store it, the key of idempotence. */
    int (*key)(void *self, const unsigned char *msg, size_t len, char hex[65], mr_error *err);
    /* Call fn with the key of every message already in the destination. */
    int (*scan)(void *self, int (*fn)(void *ctx, const char *hex, mr_error *err), void *ctx,
                mr_error *err);
    /* 0 stored, RESTORE_REFUSED, or a negative MR_E_* code that stops the restore. */
    int (*put)(void *self, const struct restore_msg *m, mr_error *err);
    int (*finish)(void *self, mr_error *err);   /* durable when it returns 0 */
    size_t (*keywords_dropped)(void *self);     /* may be NULL */
    void (*close)(void *self);
};

typedef struct restore_dest restore_dest;

/* For drivers: wrap drv and its state (closed by restore_dest_close), and scan what the
 * destination holds already. */
int restore_dest_new(const struct restore_driver *drv, void *self, restore_dest **out,
                     mr_error *err);
/* Write m unless its key is there already (*duplicate); 0, RESTORE_REFUSED or < 0. */
int restore_dest_put(restore_dest *d, const struct restore_msg *m, bool *duplicate,
                     mr_error *err);
int restore_dest_finish(restore_dest *d, mr_error *err);
void restore_dest_close(restore_dest *d);
const char *restore_dest_name(const restore_dest *d);
size_t restore_dest_keywords_dropped(const restore_dest *d);
size_t restore_dest_present(const restore_dest *d);  /* keys found by the scan */

/* The drivers.  Maildir: DIR/{tmp,new,cur} created as needed; the key is the SHA-256 of
 * the file.  mbox (mboxrd): appended to PATH; the key is the SHA-256 of the message as
 * the mbox holds it (">From " unquoted, with the final newline mbox adds).  IMAP: APPEND
 * to mailbox (created if missing) with flags except \\Recent and, unless keep_deleted,
 * \\Deleted; the key is the SHA-256 of the bytes with bare LF as CRLF, as APPEND sends
 * them and the server returns them. */
int restore_maildir_open(const char *dir, restore_dest **out, mr_error *err);
int restore_mbox_open(const char *path, restore_dest **out, mr_error *err);
struct restore_imap_options {
    const struct imap_options *imap;
    const char *mailbox;
    bool keep_deleted;
    mr_log *log;
};
int restore_imap_open(const struct restore_imap_options *o, restore_dest **out,
                      mr_error *err);

/* --list: called once per batch with what a restore would bring back. */
typedef void (*restore_list_fn)(void *ctx, const char *batch_id, const char *mailbox,
                                size_t messages, uint64_t bytes);

struct restore_options {
    const char *archive_dir;
    const char *vault_dir;
    const char *const *batches;     /* batch ids or directory names; n_batches 0 = all */
    size_t n_batches;
    const char *mailbox;            /* limit "all" to one mailbox; NULL = every mailbox */
    const char *account;            /* only this account's batches (archive_batch_account):
                                       "all" is limited to them (mailbox is one of its
                                       mailboxes), a batch of another is refused;
                                       NULL = every account's */
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
    bool no_locator;                /* targeted restores: read every volume anyway */
    restore_dest *dest;             /* where to; NULL = open format/output */
    enum restore_format format;
    const char *output;             /* Maildir directory or mbox file (without dest) */
    bool list_only;                 /* write nothing; call list per batch */
    restore_list_fn list;
    void *list_ctx;
    struct mr_progress *progress;   /* NULL = none */
    /* Optional: told of every message restored (an access request's summary). */
    void (*restored)(void *ctx, const char *mailbox, const char *batch_id,
                     time_t internaldate);
    void *restored_ctx;
    const char *reason;             /* required, goes to the audit log */
    audit_log *audit;               /* required outside unit tests */
    mr_log *log;
};

struct restore_stats {
    size_t batches;
    size_t restored;
    size_t erased;          /* left out because of the erasure ledger */
    size_t not_selected;
    size_t refused;         /* messages the destination refused (RESTORE_REFUSED) */
    size_t duplicates;      /* already in the destination: not written again */
    size_t listed;          /* list_only: messages a restore would bring back */
    uint64_t listed_bytes;
    size_t keywords_dropped;    /* Maildir: keyword occurrences past the 26 letters */
    size_t unverified;          /* batches restored under the override */
    size_t legacy;              /* batches authenticated by the legacy HMAC */
    size_t volumes_read;        /* volumes decrypted */
    size_t volumes_skipped;     /* volumes the locators showed to hold no match */
    size_t located_batches;     /* targeted: batches whose locator chose the volumes */
    size_t slow_batches;        /* targeted: batches read whole (no usable locator) */
    size_t locators_refused;    /* locators present but not authentic: not used */
};

int restore_run(const struct restore_options *opt, struct restore_stats *stats,
                mr_error *err);


#endif
