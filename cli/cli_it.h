/*
 * cli_it.h — what IT's commands (restore, access-request, verify, locate) share: the
 * options that say where the archive, the vault and the audit log are, which host keys
 * are trusted, and IT's (and the re-identification holder's) private keys; and setting
 * them up the same way in each command: the configuration is optional on IT's machine
 * (explicit options win), and a configuration with `[archive] store = s3` makes
 * `[archive] dir` a cache of the bucket (backup/batchdir.h).
 */
#ifndef MAILRET_CLI_IT_H
#define MAILRET_CLI_IT_H

#include <getopt.h>
#include <stdbool.h>

#include <openssl/evp.h>

#include "cli/cli.h"
#include "cli/cli_setup.h"
#include "common/audit.h"
#include "common/config.h"
#include "store/store.h"

#define CLI_IT_MAX_HOST_KEYS 64

/* getopt_long codes of the shared options, clear of any command's own letters. */
enum {
    CLI_IT_OPT_IT_KEY = 0x1000,
    CLI_IT_OPT_IT_PASS,
    CLI_IT_OPT_REID_KEY,
    CLI_IT_OPT_REID_PASS,
    CLI_IT_OPT_HOST_KEY,
    CLI_IT_OPT_LEGACY_KEY,
    CLI_IT_OPT_TRUST_UNSIGNED,
    CLI_IT_OPT_ARCHIVE_DIR,
    CLI_IT_OPT_VAULT_DIR,
    CLI_IT_OPT_AUDIT_LOG,
};

/* Every IT command takes these (put them in its getopt_long table)... */
#define CLI_IT_LONG_OPTIONS                                                       \
    { "it-key", required_argument, NULL, CLI_IT_OPT_IT_KEY },                     \
    { "it-passphrase-file", required_argument, NULL, CLI_IT_OPT_IT_PASS },        \
    { "reid-key", required_argument, NULL, CLI_IT_OPT_REID_KEY },                 \
    { "reid-passphrase-file", required_argument, NULL, CLI_IT_OPT_REID_PASS },    \
    { "host-key", required_argument, NULL, CLI_IT_OPT_HOST_KEY },                 \
    { "legacy-manifest-key", required_argument, NULL, CLI_IT_OPT_LEGACY_KEY },    \
    { "archive-dir", required_argument, NULL, CLI_IT_OPT_ARCHIVE_DIR },           \
    { "vault-dir", required_argument, NULL, CLI_IT_OPT_VAULT_DIR },               \
    { "audit-log", required_argument, NULL, CLI_IT_OPT_AUDIT_LOG }
/* ...and those that may read a batch whose manifest is not authentic, this one. */
#define CLI_IT_TRUST_UNSIGNED_OPTION \
    { "trust-unsigned", no_argument, NULL, CLI_IT_OPT_TRUST_UNSIGNED }

struct cli_it_args {
    const char *archive_dir, *vault_dir, *audit_path;
    const char *it_key, *it_pass, *reid_key, *reid_pass;
    const char *host_keys[CLI_IT_MAX_HOST_KEYS];
    size_t n_host_keys;
    const char *legacy_key;
    bool trust_unsigned;
};

/* Take getopt_long's opt/arg if it is one of the shared options: 1 taken, 0 not one of
 * them, CLI_EXIT_USAGE (printed, naming command) for too many --host-key. */
int cli_it_arg(struct cli_it_args *a, const char *command, int opt, const char *arg);

/* What the shared options and the configuration come to. */
struct cli_it {
    struct mr_config *cfg;      /* NULL on IT's machine without a configuration */
    const char *archive_dir, *vault_dir, *audit_path;
    struct cli_trust trust;
    EVP_PKEY *it, *reid;
    audit_log *audit;
    mr_store *store;            /* attached over archive_dir; NULL: a local archive */
};

/* The configuration — loaded when a path is not given, when -c or MAILRET_CONFIG named
 * one, or when need_config — then the paths (options first) and the trusted host keys
 * (cli_trust_setup; --trust-unsigned only where the command offers it). */
int cli_it_open(struct cli_ctx *ctx, const struct cli_it_args *a, bool need_config,
                struct cli_it *it, mr_error *err);
/* IT's private key (when want_it) and the re-identification holder's (when want_reid and
 * --reid-key was given); passphrases from the files, the environment or the terminal. */
int cli_it_keys(struct cli_it *it, const struct cli_it_args *a, bool want_it, bool want_reid,
                mr_error *err);
/* Open the audit log and, with `[archive] store = s3`, the store.  On IT's machine (no
 * batch-signing key at [keys] signing_key_file) it is attached over the archive
 * directory, which becomes its cache (the listing is read now).  On the host, whose
 * directory is the complete copy, the store is opened only when the command writes
 * (writes: to mirror what it changes) and never read from. */
int cli_it_ready(struct cli_it *it, bool writes, mr_error *err);
/* Everything released, the store detached and closed; safe on a zeroed struct. */
void cli_it_close(struct cli_it *it);

#endif
