/*
 * cli_setup.h — the configuration (common/config.h) mapped onto what backup, purge,
 * check, expire, hold and erase need: the certificates and host keys loaded, the
 * pseudonymisation policy, the archive writer's options, and paths in the state
 * directory.  (IMAP options: ingest_setup_imap_options in ingest/ingest_setup.h.)
 */
#ifndef MAILRET_CLI_SETUP_H
#define MAILRET_CLI_SETUP_H

#include <stdbool.h>

#include <openssl/x509.h>

#include "backup/archive.h"
#include "backup/pseudo.h"
#include "common/config.h"
#include "common/error.h"
#include "ingest/imap.h"
#include "keys/keys.h"

struct cli_keys {
    X509 *it, *reid;                        /* certificates (public) */
    pseudo_key pkey;
    unsigned char mkey[KEYS_SECRET_LEN];    /* manifest key */
    struct pseudo_policy policy;
    bool have_certs, have_pkey, have_mkey;
};

enum cli_keys_need {
    CLI_NEED_MANIFEST_KEY = 1,
    CLI_NEED_PSEUDONYM_KEY = 2,
    CLI_NEED_CERTS = 4,
};

/* Load what `need` (CLI_NEED_* bits) names; the error says to run `keys init-host`. */
int cli_keys_load(const struct mr_config *cfg, unsigned need, struct cli_keys *k,
                    mr_error *err);
/* Free certificates and wipe the secret keys; safe on a zeroed struct. */
void cli_keys_release(struct cli_keys *k);

/* The archive writer's options from [archive]/[keys]/[retention] (mailbox, batch id, times
 * are filled per batch by the caller). */
void cli_archive_options(const struct mr_config *cfg, const struct cli_keys *k,
                           audit_log *audit, mr_log *log, struct archive_options *o);

/* "<state dir>/<name>" into buf. */
int cli_state_path(const struct mr_config *cfg, const char *name, char *buf, size_t size,
                     mr_error *err);

#endif
