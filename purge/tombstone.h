/*
 * tombstone.h — what remains of an expired batch: <batch dir>/expired.json, no personal
 * data (batch id, mailbox name, period, created, expires, expired, message count, the ids
 * of the shredded epoch keys), authenticated with an HMAC under the manifest key like the
 * manifest it replaces.  Auditors see that the batch existed and when it was destroyed;
 * nobody can restore it.
 */
#ifndef MAILRET_PURGE_TOMBSTONE_H
#define MAILRET_PURGE_TOMBSTONE_H

#include <stddef.h>
#include <time.h>

#include "backup/archive.h"
#include "common/error.h"

#define PURGE_TOMBSTONE "expired.json"
#define PURGE_TOMBSTONE_FORMAT "mailret-tombstone/1"

struct purge_tombstone {
    char batch_id[64];
    char mailbox[256];
    time_t period_start, period_end, created, expires, expired;
    size_t message_count;
    char content_key_id[33], reid_key_id[33];
};

/* From a manifest, with expired = when. */
void purge_tombstone_from_manifest(const struct archive_manifest *m, time_t when,
                                   struct purge_tombstone *t);
/* Durable write (temp, fsync, rename, fsync dir). */
int purge_tombstone_write(const char *dir, const struct purge_tombstone *t,
                          const unsigned char key[ARCHIVE_KEY_LEN], mr_error *err);
/* MR_E_NOTFOUND if there is none; MR_E_TAMPERED if the HMAC does not match (key NULL
 * skips the HMAC). */
int purge_tombstone_read(const char *dir, const unsigned char *key, struct purge_tombstone *t,
                         mr_error *err);

#endif
