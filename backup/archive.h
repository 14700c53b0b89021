/*
 * archive.h — the archive module's whole interface: write a batch, list batches, read and
 * update their manifests.  (Reading messages back is backup/restore.h and backup/verify.h,
 * which are IT's side.)  The on-disk format is docs/ARCHIVE.md.
 *
 * A batch = one backup/purge run of one mailbox:
 *   ARCHIVE_DIR/<mailbox>/<YYYY-MM>-<batch id>/
 *     vol-NNNN.p7m    gzip(tar(<uidvalidity>-<uid>.eml..., index.jsonl)) in CMS
 *                     AuthEnvelopedData (AES-256-GCM) to the content epoch certificate
 *     reid-NNNN.p7m   gzip(tar(<uidvalidity>-<uid>.reid...)) to the reid epoch certificate
 *     manifest.json   no personal data, HMAC-SHA-256 under the manifest key; written last
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

#include "backup/pseudo.h"
#include "common/audit.h"
#include "common/error.h"
#include "common/log.h"

#define ARCHIVE_DEFAULT_VOLUME_MIB 8
#define ARCHIVE_MAX_WORKERS 16
#define ARCHIVE_MANIFEST "manifest.json"
#define ARCHIVE_FORMAT "mailret-batch/1"
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
    const struct pseudo_policy *policy;     /* NULL = pseudo_policy_default() */
    const unsigned char *manifest_key;      /* ARCHIVE_KEY_LEN bytes */
    audit_log *audit;               /* NULL only in unit tests */
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
    unsigned long long bytes_archived;  /* sum of volume + reid file sizes */
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
    char name[32];                  /* vol-NNNN.p7m */
    unsigned long long size;
    char sha256[65];
    size_t messages;
    char reid_name[32];             /* reid-NNNN.p7m */
    unsigned long long reid_size;
    char reid_sha256[65];
};

struct archive_manifest {
    char format[32];
    char batch_id[64];
    char mailbox[256];
    time_t period_start, period_end, created, expires, verified;
    char content_key_id[33], reid_key_id[33];   /* epoch key ids in the vault */
    char content_holder[64], reid_holder[64];   /* role names */
    size_t message_count;
    unsigned long long bytes_original;
    bool hold;
    time_t hold_since;              /* 0 when not held */
    struct archive_volume *volumes;
    size_t n_volumes;
};

/* Read <dir>/manifest.json.  With key: the HMAC must check (MR_E_TAMPERED otherwise).
 * key NULL skips the HMAC (IT's machine, which may not hold the manifest key; volume
 * integrity then rests on the GCM tags). */
int archive_manifest_read(const char *dir, const unsigned char *key,
                          struct archive_manifest *m, mr_error *err);
/* Write atomically (durable) with a fresh HMAC. */
int archive_manifest_write(const char *dir, const struct archive_manifest *m,
                           const unsigned char *key, mr_error *err);
void archive_manifest_clear(struct archive_manifest *m);

/* Legal hold: re-writes the manifest (HMAC checked first, then renewed); audited. */
int archive_batch_set_hold(const char *dir, bool hold, const unsigned char *key,
                           audit_log *audit, mr_error *err);

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
