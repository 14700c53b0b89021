/*
 * archive.h — the archive module's whole interface: write a batch, list batches, read and
 * update their manifests.  (Reading messages back is backup/restore.h and backup/verify.h,
 * which are IT's side.)  The on-disk format is docs/ARCHIVE.md.
 *
 * A batch = one backup/purge run of one mailbox:
 *   ARCHIVE_DIR/<mailbox>/<YYYY-MM>-<batch id>/, holding (backup/batchdir.h names them)
 *     content volumes  gzip(tar(<uidvalidity>-<uid>.eml..., index.jsonl)) in CMS
 *                      AuthEnvelopedData (AES-256-GCM) to the content epoch certificate
 *     reid files       gzip(tar(<uidvalidity>-<uid>.reid...)) to the reid epoch certificate
 *     the locator      where each message is and which person tokens it carries
 *                      (backup/locator.h), to the reid epoch certificate
 *     the manifest     no personal data, signed with the host's Ed25519 key; written last
 * A directory without a valid manifest is not a batch (an interrupted run): purge must not
 * expunge for it, check reports it as incomplete, and a re-run makes a new batch.
 *
 * Writing (purge and `backup` both use this):
 *     archive_batch_open(&opt, &b, &err);
 *     for each fetched message: archive_batch_add(b, &msg, &err);   (one thread)
 *     archive_batch_close(b, &result, &err);   // 0 = every message verified
 *     ... expunge exactly result->uids ...
 *     archive_result_free(result);
 * add pseudonymises the message at once (the caller may free its bytes on return);
 * volumes are compressed, encrypted, fsynced, read back, decrypted with the still-held
 * epoch keys and checked message by message (SHA-256 of pseudo_restore(archived bytes)
 * == SHA-256 of the bytes the caller gave) in worker threads.  close waits for all of
 * them, writes the manifest atomically, and only then reports the UIDs as verified.  Any
 * failure: close (or add) returns the error; the batch has no manifest and its UIDs must
 * not be deleted.  archive_batch_abort discards an unfinished batch.
 */
#ifndef MAILRET_BACKUP_ARCHIVE_H
#define MAILRET_BACKUP_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "pseudo/pseudo.h"
#include "backup/ledger.h"
#include "common/audit.h"
#include "common/error.h"
#include "common/log.h"
#include "keys/keys.h"

#define ARCHIVE_DEFAULT_VOLUME_MIB 8
#define ARCHIVE_MAX_WORKERS 16
#define ARCHIVE_FORMAT "mailret-batch/2"      /* signed (Ed25519) */
#define ARCHIVE_FORMAT_V1 "mailret-batch/1"   /* legacy: HMAC under the manifest key */
#define ARCHIVE_KEY_LEN 32

/* One message as the caller fetched it.  flags: space-separated IMAP flags ("" allowed). */
struct archive_message {
    uint32_t uidvalidity;
    uint32_t uid;
    time_t internaldate;        /* UTC seconds */
    int internaldate_tz_min;    /* the server's zone offset, for a faithful re-APPEND */
    const char *flags;
    const unsigned char *bytes; /* exact BODY.PEEK[] bytes */
    size_t len;
};

struct archive_options {
    const char *archive_dir;
    const char *vault_dir;          /* key vault, apart from archive_dir */
    const char *mailbox;            /* the mailbox's configured name (path component) */
    const char *batch_id;           /* NULL = generated: <UTC time>-<8 hex random> */
    const char *zone;               /* for the <YYYY-MM> directory prefix; NULL = C'hagen */
    time_t period_start;            /* 0 = unknown */
    time_t period_end;              /* the cutoff: messages before this */
    time_t created;                 /* 0 = now */
    time_t expires;                 /* required: created + retention, computed by caller */
    size_t volume_size;             /* bytes, 0 = 8 MiB; see docs/ARCHIVE.md on the bound */
    int compression_level;          /* 0-9; -1 = zlib default (6) */
    int workers;                    /* compression/encryption threads; 0 = 2; at most
                                       ARCHIVE_MAX_WORKERS (more are clamped) */
    X509 *content_holder;           /* IT's certificate */
    X509 *reid_holder;              /* re-identification holder's certificate (may = IT) */
    const char *reid_holder_name;   /* role name for listings; NULL = "it" */
    const pseudo_key *pseudonym_key;
    unsigned pseudonym_epoch;       /* that key's epoch (keys.h), named in the manifest */
    const struct pseudo_policy *policy;     /* NULL = pseudo_policy_default() */
    EVP_PKEY *signing_key;          /* the host's Ed25519 batch-signing key */
    /* Where the erasure ledger stood when this run began (the run lock keeps erase out),
     * recorded in the signed manifest so that IT notices a ledger cut back to an older
     * state; NULL only in unit tests. */
    const struct ledger_anchor *ledger;
    audit_log *audit;               /* NULL only in unit tests; its head is recorded in the
                                       signed manifest (audit verify --anchor) */
    mr_log *log;                    /* may be NULL */
};

typedef struct archive_batch archive_batch;

struct archive_uid {
    uint32_t uidvalidity;
    uint32_t uid;
};

struct archive_result {
    char batch_id[64];
    char dir[4096];                 /* the batch directory */
    size_t n_messages;
    struct archive_uid *uids;       /* every message archived and verified, in add order */
    size_t n_volumes;
    unsigned long long bytes_original;  /* sum of message sizes */
    unsigned long long bytes_archived;  /* sum of volume, reid and locator file sizes */
    unsigned long long sealed_parts;    /* parts sealed into the reid data */
    size_t sealed_messages;             /* messages with at least one */
};

int archive_batch_open(const struct archive_options *opt, archive_batch **out, mr_error *err);
int archive_batch_add(archive_batch *b, const struct archive_message *msg, mr_error *err);
/* Finish, verify, write the manifest, forget the epoch private keys.  Frees b whatever the
 * result; on failure the partial batch stays on disk without a manifest (for diagnosis;
 * `check` lists it as incomplete) and *out is NULL. */
int archive_batch_close(archive_batch *b, struct archive_result **out, mr_error *err);
/* Give up: stop workers, remove the batch's files and shred its sealed epoch keys. */
void archive_batch_abort(archive_batch *b);
void archive_result_free(struct archive_result *r);

/* ---- manifests -------------------------------------------------------------------------- */

struct archive_volume {
    char name[32];                  /* the content volume (batchdir_volume_name) */
    unsigned long long size;
    char sha256[65];
    size_t messages;
    char reid_name[32];             /* its reid file (batchdir_reid_name) */
    unsigned long long reid_size;
    char reid_sha256[65];
};

/* How a manifest's authenticity was established when it was read. */
enum archive_auth {
    ARCHIVE_AUTH_NONE = 0,          /* not checked (archive_manifest_read_unverified) */
    ARCHIVE_AUTH_SIGNED,            /* mailret-batch/2, signature by a pinned host key */
    ARCHIVE_AUTH_LEGACY_HMAC,       /* mailret-batch/1, HMAC under the legacy manifest key */
    ARCHIVE_AUTH_OVERRIDDEN,        /* did not verify; accepted by the explicit override */
};

/* "signed", "legacy-hmac", "UNVERIFIED (override)", "unchecked". */
const char *archive_auth_name(enum archive_auth auth);

/* What a reader trusts.  Nothing here is secret except legacy_key. */
struct archive_trust {
    const keys_keyring *keyring;        /* pinned host public keys (may be NULL/empty) */
    const unsigned char *legacy_key;    /* manifest HMAC key for mailret-batch/1, or NULL */
    bool accept_unverified;             /* the audited override (--trust-unsigned) */
};

struct archive_manifest {
    char format[32];
    char batch_id[64];
    char mailbox[256];
    time_t period_start, period_end, created, expires, verified;
    char content_key_id[33], reid_key_id[33];   /* epoch key ids in the vault */
    char content_cert_fpr[65], reid_cert_fpr[65];   /* SHA-256 of the epoch certificates
                                                       (format 2; "" in format 1) */
    char content_holder[64], reid_holder[64];   /* role names */
    unsigned pseudonym_epoch;       /* the pseudonym key's epoch; 0 when not named */
    size_t message_count;
    unsigned long long bytes_original;
    bool hold;
    time_t hold_since;              /* 0 when not held */
    struct archive_volume *volumes;
    size_t n_volumes;
    /* Anchors (absent in manifests written before they existed): the erasure ledger's
     * count and head, and the audit log's last seq and its hash, when it was signed. */
    bool has_ledger, has_audit;
    unsigned long long ledger_count, audit_seq;
    char ledger_head[65], audit_head[65];
    char locator_name[32];          /* the batch's locator (backup/locator.h); "" = none */
    unsigned long long locator_size;
    char locator_sha256[65];
    /* Set by reading: */
    char signer[33];                /* format 2: id of the host key that signed it */
    enum archive_auth auth;
    char auth_problem[MR_ERROR_MSG_MAX];   /* ARCHIVE_AUTH_OVERRIDDEN: why it did not verify */
};

/* Read dir's manifest and establish that it is authentic: a format-2 manifest must
 * carry a signature by a key in trust->keyring; a format-1 manifest an HMAC under
 * trust->legacy_key.  Anything else (unsigned, another key, altered, format 1 without the
 * legacy key) is MR_E_TAMPERED naming the manifest, unless trust->accept_unverified, in
 * which case it is returned with auth = ARCHIVE_AUTH_OVERRIDDEN and the reason in
 * auth_problem.  Malformed JSON or fields are refused either way. */
int archive_manifest_read(const char *dir, const struct archive_trust *trust,
                          struct archive_manifest *m, mr_error *err);
/* Parse only (auth = ARCHIVE_AUTH_NONE): for expiring or reporting a batch whose manifest
 * cannot be trusted.  Nothing read this way may be restored. */
int archive_manifest_read_unverified(const char *dir, struct archive_manifest *m,
                                     mr_error *err);
/* Write atomically (durable) as format 2, signed with signing_key (m->content_cert_fpr
 * and reid_cert_fpr must be set). */
int archive_manifest_write(const char *dir, const struct archive_manifest *m,
                           EVP_PKEY *signing_key, mr_error *err);
void archive_manifest_clear(struct archive_manifest *m);

/* Legal hold: re-writes the manifest (authenticity checked first, then signed afresh; a
 * legacy format-1 manifest is re-written as format 2 with its epoch certificates'
 * fingerprints taken from vault_dir); audited. */
int archive_batch_set_hold(const char *dir, bool hold, const struct archive_trust *trust,
                           EVP_PKEY *signing_key, const char *vault_dir, audit_log *audit,
                           mr_error *err);

/* Expiry (crypto-shredding, tombstone) is the retention policy's job: purge/expire.h. */

/* ---- listing ------------------------------------------------------------------------------ */

struct archive_batch_ref {
    char mailbox[256];
    char dir[4096];                 /* full path of the batch directory */
    bool has_manifest;              /* false: an interrupted run, not a batch */
};

/* Every batch directory under archive_dir (mailbox NULL = all mailboxes), sorted by path.
 * *out is malloc'd (free()). */
int archive_batch_list(const char *archive_dir, const char *mailbox,
                       struct archive_batch_ref **out, size_t *n, mr_error *err);

/* Accounts file their mailboxes under one archive: the default account under the bare
 * name ("INBOX"), every other account as "NAME:mailbox" ("bob:INBOX", directory
 * "bob%3AINBOX").  An account name is 1 to ARCHIVE_ACCOUNT_NAME_MAX of [a-z0-9_-], not
 * starting with '-' or '_' (what the configuration accepts), so a key that starts with
 * such a name and ':' is that account's and any other key the default account's.  (The
 * configuration refuses a mailbox of the default account that starts with a configured
 * account's "NAME:"; one of an account since removed is read as that account's.) */
#define ARCHIVE_DEFAULT_ACCOUNT "default"
#define ARCHIVE_ACCOUNT_NAME_MAX 32

/* The account whose mailbox key this is, into out. */
void archive_mailbox_account(const char *key, char out[ARCHIVE_ACCOUNT_NAME_MAX + 1]);

/* The account a batch directory belongs to: by the mailbox its manifest names (read only
 * to choose: restore authenticates it before trusting anything in it), else by the name
 * of the mailbox directory it is in. */
void archive_batch_account(const char *dir, char out[ARCHIVE_ACCOUNT_NAME_MAX + 1]);

/* As archive_batch_list for every mailbox, keeping the batches of one account
 * (archive_batch_account). */
int archive_batch_list_account(const char *archive_dir, const char *account,
                               struct archive_batch_ref **out, size_t *n, mr_error *err);

/* Find a batch directory by its batch id (or "<YYYY-MM>-<id>" directory name). */
int archive_batch_find(const char *archive_dir, const char *batch, char *dir, size_t size,
                       mr_error *err);

/* The mailbox name as a safe path component: bytes outside [A-Za-z0-9._@+-], and a
 * leading '.', as %XX (upper-case hex), so the mapping is one to one ("A/B" is "A%2FB",
 * "A_B" stays "A_B") and names of safe bytes only are unchanged.  "" is refused, and a
 * result over 255 bytes.  Listing by mailbox also finds batches that older versions
 * wrote under the '_'-replaced name, where their manifest names the mailbox. */
int archive_mailbox_dirname(const char *mailbox, char *out, size_t size, mr_error *err);

/* The inverse: the mailbox name a directory made by archive_mailbox_dirname stands for;
 * MR_E_INVALID for a name it cannot have made. */
int archive_mailbox_from_dirname(const char *dirname, char *out, size_t size, mr_error *err);

#endif
