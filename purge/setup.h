/*
 * setup.h — the configuration (common/config.h) mapped onto what purge, check, expire,
 * hold and erase need: IMAP options with the password read from its file or variable, the
 * archive writer's options with the certificates and host keys loaded, and the state paths.
 * (cli/cmd_backup.c maps the same [archive]/[keys]/[pseudonymisation] keys for `backup`;
 * the two should become one helper — see docs/PURGE.md.)
 */
#ifndef MAILRET_PURGE_SETUP_H
#define MAILRET_PURGE_SETUP_H

#include <stdbool.h>

#include <openssl/x509.h>

#include "backup/archive.h"
#include "backup/pseudo.h"
#include "common/config.h"
#include "common/error.h"
#include "ingest/imap.h"
#include "keys/keys.h"

struct purge_keys {
    X509 *it, *reid;                        /* certificates (public) */
    pseudo_key pkey;
    unsigned char mkey[KEYS_SECRET_LEN];    /* manifest key */
    struct pseudo_policy policy;
    bool have_certs, have_pkey, have_mkey;
};

enum purge_keys_need {
    PURGE_NEED_MANIFEST_KEY = 1,
    PURGE_NEED_PSEUDONYM_KEY = 2,
    PURGE_NEED_CERTS = 4,
};

/* Load what `need` (PURGE_NEED_* bits) names; the error says to run `keys init-host`. */
int purge_keys_load(const struct mr_config *cfg, unsigned need, struct purge_keys *k,
                    mr_error *err);
/* Free certificates and wipe the secret keys; safe on a zeroed struct. */
void purge_keys_release(struct purge_keys *k);

/* IMAP options from [imap]; *password is read from password_file/password_env and must be
 * released with config_secret_free after imap_connect.  The options borrow cfg's strings. */
int purge_imap_options(const struct mr_config *cfg, struct imap_options *io, char **password,
                       mr_error *err);

/* The archive writer's options from [archive]/[keys]/[retention] (mailbox, batch id, times
 * are filled per batch by the caller). */
void purge_archive_options(const struct mr_config *cfg, const struct purge_keys *k,
                           audit_log *audit, mr_log *log, struct archive_options *o);

/* "<state dir>/<name>" into buf. */
int purge_state_path(const struct mr_config *cfg, const char *name, char *buf, size_t size,
                     mr_error *err);

#endif
