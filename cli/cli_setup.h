/*
 * cli_setup.h — the configuration (common/config.h) mapped onto what backup, purge,
 * check, expire, hold and erase need: the certificates and host keys loaded, the
 * pseudonymisation policy, the archive writer's options, and paths in the state
 * directory; and each account's IMAP options and ingest run (members, sink, routing).
 * Only cli/ reads the configuration: the modules take these option structs.
 */
#ifndef MAILRET_CLI_SETUP_H
#define MAILRET_CLI_SETUP_H

#include <stdbool.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "backup/archive.h"
#include "backup/ledger.h"
#include "pseudo/pseudo.h"
#include "common/config.h"
#include "common/error.h"
#include "imap/imap.h"
#include "ingest/ingest.h"
#include "keys/keys.h"

struct cli_keys {
    X509 *it, *reid;                        /* certificates (public) */
    pseudo_key pkey;                        /* the pseudonym key's newest epoch */
    unsigned pepoch;                        /* its epoch number */
    struct keys_pseudonym_set pkeys;        /* every epoch (erase: a token under each) */
    EVP_PKEY *signer;                       /* the host's batch-signing key */
    keys_keyring *keyring;                  /* pinned host keys */
    unsigned char mkey[KEYS_SECRET_LEN];    /* legacy manifest key, when present */
    struct archive_trust trust;             /* keyring + legacy key, no override */
    struct pseudo_policy policy;
    struct ledger_anchor ledger;            /* where the erasure ledger stands */
    bool have_certs, have_pkey, have_mkey, have_ledger;
};

enum cli_keys_need {
    CLI_NEED_TRUST = 1,         /* keyring ([keys] host_keyring, plus the signing key's
                                   public half if readable) and the legacy manifest key */
    CLI_NEED_PSEUDONYM_KEY = 2,
    CLI_NEED_CERTS = 4,
    CLI_NEED_SIGNER = 8,        /* the signing key itself (implies CLI_NEED_TRUST) */
};

/* IT's (or the re-identification holder's) private key from path, its passphrase from
 * pass_file, else the environment variable env, else the terminal with prompt. */
int cli_private_key_load(const char *path, const char *pass_file, const char *env,
                         const char *prompt, EVP_PKEY **out, mr_error *err);

/* The pinned keys from the configuration: [keys] host_keyring if it exists, and the
 * public half of the signing key if it is readable.  MR_E_NOTFOUND if neither gives one.
 * *legacy_loaded tells whether mkey was filled from [keys] manifest_key_file. */
int cli_trust_load(const struct mr_config *cfg, keys_keyring *kr, unsigned char *mkey,
                   bool *legacy_loaded, mr_error *err);

/* Load what `need` (CLI_NEED_* bits) names; the error says to run `keys init-host`. */
int cli_keys_load(const struct mr_config *cfg, unsigned need, struct cli_keys *k,
                    mr_error *err);
/* IT's side (restore, verify): what a batch is checked against.  host_keys: files given
 * with --host-key (each one or more PEM public keys); when none, the configuration's
 * (cfg may be NULL on IT's machine).  legacy_key_file: --legacy-manifest-key (or the
 * configuration's manifest key when present).  Without any pinned key and without
 * trust_unsigned this is an error (MR_E_AUTH) telling IT to pin the host key.
 * trust_unsigned is the override: printed on stderr here; callers audit it. */
struct cli_trust {
    keys_keyring *keyring;
    unsigned char mkey[KEYS_SECRET_LEN];
    struct archive_trust trust;
};
int cli_trust_setup(const struct mr_config *cfg, const char *const *host_keys, size_t n,
                    const char *legacy_key_file, bool trust_unsigned, struct cli_trust *t,
                    mr_error *err);
void cli_trust_release(struct cli_trust *t);

/* Free certificates and wipe the secret keys; safe on a zeroed struct. */
void cli_keys_release(struct cli_keys *k);

/* The archive writer's options from [archive]/[keys]/[retention] (mailbox, batch id, times
 * are filled per batch by the caller). */
void cli_archive_options(const struct mr_config *cfg, const struct cli_keys *k,
                           audit_log *audit, mr_log *log, struct archive_options *o);

/* Prepare the erasure ledger ([state] erasure_ledger: created, or sealed if it is in the
 * old plaintext format) and note where it stands in k->ledger, for the manifests this run
 * signs.  Needs the certificates and the signer.  A ledger that does not authenticate is
 * logged at error level and audited, and the run goes on without the anchor: the monthly
 * deletion must not wait for it, and IT's restore refuses that ledger anyway. */
int cli_ledger_anchor(const struct mr_config *cfg, struct cli_keys *k, audit_log *audit,
                      mr_log *log, mr_error *err);

/* Remove the temporary files that interrupted durable writes left in the vault, the state
 * directory (both shredded: key material) and every batch directory; logged when any. */
int cli_sweep_tmp(const struct mr_config *cfg, mr_log *log, mr_error *err);

/* "<state dir>/<name>" into buf. */
int cli_state_path(const struct mr_config *cfg, const char *name, char *buf, size_t size,
                     mr_error *err);

/* ---- accounts ------------------------------------------------------------------------ */

#define CLI_INGEST_STATE_FILE "ingest-state.sqlite"
#define CLI_EXEC_JOURNAL_FILE "exec-sink.sqlite"
/* An account's mailbox as the purge journal and the archive name it: "NAME:mailbox", or
 * the bare mailbox for the account "default" (the layout from before accounts). */
#define CLI_MAILBOX_KEY_MAX 320

/* The accounts a command covers: all, or the one --account names (NULL = all).
 * MR_E_NOTFOUND naming the account when there is none of that name. */
int cli_accounts_select(const struct mr_config *cfg, const char *name, size_t *first,
                        size_t *count, mr_error *err);

/* The key the ingest state, the member system and the exec sink's journal file an
 * account's messages under: NULL for "default" (ingest_account_key's "user@host", as
 * before accounts), else the account's name. */
const char *cli_account_state_key(const struct config_account *a);

/* The prefix of its purge-journal and archive mailbox names: "" or "NAME:". */
const char *cli_account_prefix(const struct config_account *a, char *buf, size_t size);

/* prefix + mailbox into buf. */
int cli_mailbox_key(const struct config_account *a, const char *mailbox, char *buf,
                    size_t size, mr_error *err);

/* --json with named accounts: every account's report object, with "account": NAME
 * added, in an array; dumped as {"accounts":[...]} and a newline (malloc'd, NULL when out
 * of memory).  Without named accounts the one report is printed as it is. */
int cli_json_account_add(json_t *arr, const char *account, const char *report, mr_error *err);
char *cli_json_accounts_dump(json_t *arr);

/* The IMAP options of account a, for every command that connects (ingest, purge, backup,
 * restore into IMAP, check).  *password is read from password_file/password_env; release
 * it with secret_free once connected.  With token_command, *password stays NULL and the
 * options run the command for every connection (a must outlive them).  The options
 * borrow a's strings. */
int cli_imap_options(const struct config_account *a, struct imap_options *io,
                     char **password, mr_error *err);

/* Everything an ingest run of account a needs: its IMAP options, the member database,
 * the configured sink, routing rules and the state path (<state dir>/ingest-state.sqlite,
 * shared, keyed by account).  `mailret ingest` and purge's "ingest first" use it.  cfg
 * must outlive the setup; log may be NULL. */
typedef struct cli_ingest cli_ingest;
int cli_ingest_open(const struct mr_config *cfg, const struct config_account *a, mr_log *log,
                    cli_ingest **out, mr_error *err);
/* The options; callers may change batch_size, max_size and the mailbox list. */
struct ingest_options *cli_ingest_options(cli_ingest *s);
void cli_ingest_close(cli_ingest *s);

#endif
