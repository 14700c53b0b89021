/*
 * hold.h — legal hold: `mailret hold BATCH --reason ...` and `--release`.  A held batch is
 * kept past its expiry (expire skips it) and check shows it as held.  The reason goes to
 * the audit log, scrubbed of anything shaped like an address, CPR or phone number (a
 * reason should name a case, not a person).  With an object store attached
 * (backup/batchdir.h) the re-signed manifest is mirrored to it.
 */
#ifndef MAILRET_PURGE_HOLD_H
#define MAILRET_PURGE_HOLD_H

#include <stdbool.h>
#include <stddef.h>

#include "backup/archive.h"
#include "common/audit.h"
#include "common/error.h"

/* batch: batch id or directory name.  dir (may be NULL) receives the batch directory. */
int hold_set(const char *archive_dir, const char *vault_dir, const char *batch, bool hold,
             const char *reason, const struct archive_trust *trust, EVP_PKEY *signing_key,
             audit_log *audit, char *dir, size_t dir_size, mr_error *err);

#endif
