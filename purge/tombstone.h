/*
 * tombstone.h — what remains of an expired batch: its tombstone (named by
 * backup/batchdir.h), no personal data (batch id, mailbox name, period, created, expires,
 * expired, message count, the ids of the shredded epoch keys), signed with the host's signing key like the manifest it
 * replaces (format 2; format 1 carried an HMAC under the legacy manifest key).  A batch
 * whose manifest could not be authenticated is expired on the vault's record of its keys,
 * and its tombstone says so (manifest_verified false).  Auditors see that the batch existed and when it was destroyed;
 * nobody can restore it.
 */
#ifndef MAILRET_PURGE_TOMBSTONE_H
#define MAILRET_PURGE_TOMBSTONE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "backup/archive.h"
#include "common/error.h"

#define PURGE_TOMBSTONE_FORMAT "mailret-tombstone/2"
#define PURGE_TOMBSTONE_FORMAT_V1 "mailret-tombstone/1"

struct purge_tombstone {
    char batch_id[64];
    char mailbox[256];
    time_t period_start, period_end, created, expires, expired;
    size_t message_count;
    char content_key_id[33], reid_key_id[33];
    bool manifest_unverified;   /* expired on the vault's metadata, not the manifest's */
};

/* From a manifest, with expired = when. */
void purge_tombstone_from_manifest(const struct archive_manifest *m, time_t when,
                                   struct purge_tombstone *t);
/* Durable write (temp, fsync, rename, fsync dir). */
int purge_tombstone_write(const char *dir, const struct purge_tombstone *t,
                          EVP_PKEY *signing_key, mr_error *err);
/* MR_E_NOTFOUND if there is none; MR_E_TAMPERED if it is not signed by a key in
 * trust->keyring (format 1: no HMAC match under trust->legacy_key). */
int purge_tombstone_read(const char *dir, const struct archive_trust *trust,
                         struct purge_tombstone *t, mr_error *err);

#endif
