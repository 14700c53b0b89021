/*
 * cli_store.h — the object store of the configuration ([archive] store, docs/STORE.md):
 * opened from the [archive] store_* keys and attached to the batch-directory module
 * (backup/batchdir.h), which mirrors every batch the commands write or change.
 */
#ifndef MAILRET_CLI_STORE_H
#define MAILRET_CLI_STORE_H

#include "common/config.h"
#include "common/error.h"
#include "store/store.h"

/* Open the configured store: *out = NULL and 0 when store = local.  An S3 store is
 * probed at open (credentials, bucket, Object Lock): one line naming the cause when it
 * cannot be used.  Credentials come from store_credentials_file or the environment,
 * never from argv, and are never logged. */
int cli_store_open(const struct mr_config *cfg, mr_store **out, mr_error *err);

/* cli_store_open, then batchdir_store_attach under [archive] dir with store_prefix.
 * *out (NULL with store = local) is closed with cli_store_detach. */
int cli_store_attach(const struct mr_config *cfg, mr_store **out, mr_error *err);
void cli_store_detach(mr_store *st);

/* "compliance" or "governance": the configured retention mode (for reports). */
const char *cli_store_lock_mode(const struct mr_config *cfg);

#endif
