/*
 * locator.h — the per-batch locator: for every message of a batch, where it is (volume
 * and position), its INTERNALDATE, a keyed digest of its Message-ID and the person tokens
 * it carries, so that a targeted restore decrypts only the volumes that hold a match.
 *
 * The file (batchdir.h names it) is gzip + CMS AuthEnvelopedData to the batch's reid
 * epoch certificate, like a reid volume: the tokens say which person is in which message,
 * so only the re-identification holder can read it, and expiry's crypto-shredding of the
 * reid epoch key destroys it with the rest of the batch.  Plaintext (big-endian):
 *   "MRLOC1"  batch id (u8 length + bytes)  u32 volumes, each the content volume's SHA-256
 *   (32 bytes)  32-byte Message-ID key  u32 entries, each: u16 volume (1-based),
 *   u32 position, i64 INTERNALDATE, u8 has Message-ID, 16-byte digest
 *   (HMAC-SHA-256 under the Message-ID key, truncated), u16 tokens, each u8 length + bytes;
 *   and last HMAC-SHA-256 of everything before it under a key derived from the reid
 *   epoch private key.
 * Trust: a locator the signed manifest lists must have the listed SHA-256; one added
 * later to an older batch (locator_add, on IT's machine) is trusted by its MAC, which
 * only a holder of the reid epoch private key can compute (the host held it only while
 * writing the batch).  Either way it must name the batch and its volumes' SHA-256 as the
 * manifest does.  Anything else is MR_E_TAMPERED and the locator is not used.
 */
#ifndef MAILRET_BACKUP_LOCATOR_H
#define MAILRET_BACKUP_LOCATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "backup/archive.h"
#include "common/error.h"

#define LOCATOR_MID_DIGEST 16
#define LOCATOR_MID_MAX 1000

struct locator_entry {
    unsigned volume;                /* 1-based, as the manifest lists volumes */
    unsigned position;              /* 0-based entry in the volume's index */
    time_t internaldate;
    bool has_mid;
    unsigned char mid[LOCATOR_MID_DIGEST];
    char **tokens;                  /* "kind:token", as in index.jsonl */
    size_t n_tokens;
};

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct locator_builder locator_builder;

int locator_builder_new(locator_builder **out, mr_error *err);
/* One message, in the order of the batch (msg: the original bytes, for its Message-ID). */
int locator_builder_add(locator_builder *lb, unsigned volume, unsigned position,
                        time_t internaldate, const unsigned char *msg, size_t len,
                        const char *const *tokens, size_t n_tokens, mr_error *err);
/* Encrypt to reid_cert, authenticate with reid_priv and write it durably into dir; the
 * file's size and SHA-256 (hex) for the manifest. */
int locator_builder_write(locator_builder *lb, const char *dir, const char *batch_id,
                          const struct archive_volume *vols, size_t n_vols, X509 *reid_cert,
                          EVP_PKEY *reid_priv, unsigned long long *size, char sha256[65],
                          mr_error *err);
void locator_builder_free(locator_builder *lb);

/* ---- reading ---------------------------------------------------------------------------- */

typedef struct locator locator;

/* Open dir's locator for the authenticated manifest m with the reid epoch private key.
 * MR_E_NOTFOUND: the batch has none (m does not list one and none was added);
 * MR_E_TAMPERED: it is there but not authentic or not this batch's. */
int locator_open(const char *dir, const struct archive_manifest *m, EVP_PKEY *reid_key,
                 locator **out, mr_error *err);
size_t locator_count(const locator *l);
const struct locator_entry *locator_at(const locator *l, size_t i);
/* The keyed digest of a wanted Message-ID (as locator_message_id normalises it) under l's
 * key: computed once per locator, then compared with every entry by locator_mid_is. */
void locator_mid_digest(const locator *l, const char *wanted,
                        unsigned char out[LOCATOR_MID_DIGEST]);
bool locator_mid_is(const struct locator_entry *e, const unsigned char dg[LOCATOR_MID_DIGEST]);
void locator_free(locator *l);

/* Build the locator of a batch that has none, from its volumes, on IT's machine: the
 * manifest must be authentic; both epoch keys are unsealed (it_key; reid_key, NULL =
 * it_key) and every volume is decrypted and checked as a restore would.  The manifest is
 * not re-written (only the host can sign it): the locator stands on its MAC.  Audited
 * ("batch.locator.add").  MR_E_EXISTS when the batch has a locator already. */
struct locator_add_options {
    const char *dir;                    /* batch directory */
    const char *vault_dir;
    const struct archive_trust *trust;
    EVP_PKEY *it_key, *reid_key;
    audit_log *audit;                   /* may be NULL in unit tests */
};
int locator_add(const struct locator_add_options *o, char batch_id[64], size_t *messages,
                mr_error *err);

/* The Message-ID header's value without <>, blanks and folding (first occurrence in the
 * header section) into out; false when the message has none.  Restore compares with
 * this, so that the locator's digest and the slow path agree on what a Message-ID is. */
bool locator_message_id(const unsigned char *msg, size_t len, char *out, size_t size);

#endif
