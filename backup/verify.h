/*
 * verify.h — `mailret verify BATCH`.
 * Host side (no private keys): the manifest's signature against the pinned host keys
 * (or a legacy manifest's HMAC), every volume and reid file present with the manifest's
 * size and SHA-256 (and the locator's, when the manifest lists one), no stray volume
 * files, both sealed epoch keys in the vault and their certificates the ones the manifest
 * names.
 * Deep (IT side, --deep): additionally unseal the epoch keys with IT's key, decrypt every
 * volume and reid file, and check every message's SHA-256 before and after
 * re-identification against the index and the message count against the manifest, and
 * the batch's locator (if any) authentic and saying of every message what its index says.
 * The first problem found is returned, naming the file (MR_E_TAMPERED, MR_E_NOTFOUND...).
 */
#ifndef MAILRET_BACKUP_VERIFY_H
#define MAILRET_BACKUP_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "common/audit.h"
#include "common/error.h"
#include "backup/archive.h"

struct verify_options {
    const char *dir;                    /* batch directory */
    const char *vault_dir;
    const struct archive_trust *trust;  /* required: pinned host keys, legacy key, override */
    bool deep;
    EVP_PKEY *it_key;                   /* deep only */
    EVP_PKEY *reid_key;                 /* deep only; NULL = it_key */
    audit_log *audit;
};

struct verify_report {
    char batch_id[64];
    size_t volumes;
    size_t messages;                    /* deep: messages decrypted and checked */
    enum archive_auth auth;             /* how the manifest was authenticated */
    char signer[33];                    /* format 2: the signing key's id */
    char auth_problem[MR_ERROR_MSG_MAX];  /* ARCHIVE_AUTH_OVERRIDDEN: why it did not verify */
};

int verify_batch(const struct verify_options *opt, struct verify_report *rep, mr_error *err);

#endif
