/*
 * expire.h — `mailret expire`: destroy every batch whose expiry has passed and that is not
 * under legal hold.  Per batch, in this order (each step idempotent, so a re-run after a
 * crash finishes the job):
 *   1. shred both sealed epoch private keys in the vault (keys_epoch_shred: overwrite,
 *      fsync, unlink, fsync the directory) — from here on no copy of the volumes,
 *      wherever it survives, can be decrypted;
 *   2. delete the volumes and re-identification files;
 *   3. write the tombstone (tombstone.h), then remove the manifest;
 *   4. with an object store attached (backup/batchdir.h), mirror that: the content
 *      objects are deleted, the tombstone put, the store's manifest deleted last.  An
 *      expired batch whose store copy is more than its tombstone (a failed or cut-off
 *      step 4) is mirrored by the next run.
 * Audited ("batch.expire").  The caller holds the run lock.
 */
#ifndef MAILRET_PURGE_EXPIRE_H
#define MAILRET_PURGE_EXPIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "backup/archive.h"
#include "common/audit.h"
#include "common/error.h"
#include "common/log.h"

struct expire_options {
    const char *archive_dir;
    const char *vault_dir;
    const struct archive_trust *trust;  /* pinned host keys, legacy manifest key */
    EVP_PKEY *signing_key;              /* signs the tombstones */
    time_t at;                  /* "now" (tests and auditors pass another date) */
    bool dry_run;
    audit_log *audit;
    mr_log *log;
};

enum expire_action {
    EXPIRE_EXPIRED = 0,         /* destroyed now */
    EXPIRE_WOULD = 1,           /* dry run */
    EXPIRE_HELD = 2,            /* past expiry, kept for a legal hold */
    EXPIRE_FAILED = 3,          /* error (see detail); other batches still processed */
};

struct expire_item {
    char batch_id[64];
    char mailbox[256];
    time_t expires;
    enum expire_action action;
    char detail[MR_ERROR_MSG_MAX];
};

struct expire_report {
    struct expire_item *items;  /* only batches past expiry */
    size_t n;
    size_t expired, held, failed;
};

/* A batch whose manifest does not authenticate (m read unverified from dir): its expiry
 * according to the vault's metadata of its epoch keys, which must name the batch, as must
 * the directory.  Expire shreds such a batch when this date has passed (and check says
 * so); MR_E_TAMPERED / MR_E_NOTFOUND when the vault does not vouch for it. */
int expire_unverified_due(const char *vault_dir, const char *dir,
                          const struct archive_manifest *m, time_t *expires, mr_error *err);

/* Returns 0 if no batch failed, else the first failure's code (err says which). */
int expire_run(const struct expire_options *opt, struct expire_report **report, mr_error *err);
void expire_report_free(struct expire_report *r);
void expire_report_print(FILE *out, const struct expire_report *r);

#endif
