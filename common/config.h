/*
 * config.h — the mailret configuration file (INI; see docs/CONFIG.md for every key).
 *
 * config_load parses and checks the whole file; every mistake is an MR_E_CONFIG error
 * "FILE:LINE: message".  The result is a plain struct with every default applied and
 * every relative path already resolved against the configuration file's directory, so
 * other modules just read fields.  Secrets (the IMAP password) are not in the struct:
 * only where they are; read them with secret_read_text (common/secret.h) when needed.
 */
#ifndef MAILRET_COMMON_CONFIG_H
#define MAILRET_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/error.h"
#include "common/log.h"

#define CONFIG_DEFAULT_PATH "/etc/mailret/mailret.conf"

enum config_tls { CONFIG_TLS_IMAPS = 0, CONFIG_TLS_STARTTLS = 1 };

/* How mailret logs in: IMAP LOGIN, or SASL PLAIN, XOAUTH2 or OAUTHBEARER (RFC 7628). */
enum config_auth {
    CONFIG_AUTH_LOGIN = 0,
    CONFIG_AUTH_PLAIN = 1,
    CONFIG_AUTH_XOAUTH2 = 2,
    CONFIG_AUTH_OAUTHBEARER = 3,
};

/* Where batches are mirrored besides [archive] dir (docs/STORE.md). */
enum config_store { CONFIG_STORE_LOCAL = 0, CONFIG_STORE_S3 = 1 };
/* The Object Lock retention mode objects get where the bucket has Object Lock on. */
enum config_lock_mode { CONFIG_LOCK_COMPLIANCE = 0, CONFIG_LOCK_GOVERNANCE = 1 };

enum config_members_backend {
    CONFIG_MEMBERS_SQLITE = 0,
    CONFIG_MEMBERS_MAILDIR = 1,
    CONFIG_MEMBERS_EXEC = 2,
};

/* A list of strings (repeatable keys and comma lists). */
struct config_list {
    char **items;
    size_t n;
};

struct config_imap {
    char *host;                 /* required */
    unsigned port;              /* default 993 (imaps) or 143 (starttls) */
    enum config_tls tls;        /* default imaps */
    char *ca_file;              /* NULL = system trust store */
    bool insecure_skip_verify;  /* true only if spelled "yes-for-testing-only" */
    char *user;                 /* required */
    enum config_auth auth;      /* default login */
    char *password_file;        /* exactly one of password_file / password_env / */
    char *password_env;         /* token_command */
    char **token_command;       /* argv (NULL-terminated), split without a shell */
    unsigned token_timeout;     /* seconds token_command may take, default 30 */
    unsigned throttle_max_wait; /* seconds of server-requested backoff per connection,
                                   default 600; 0 = fail at once */
    unsigned connect_timeout;   /* seconds, default 30 */
    unsigned io_timeout;        /* seconds, default 300 */
    unsigned fetch_batch;       /* messages per UID FETCH range, default 200 */
    uint64_t max_message_size;  /* bytes, default 64 MiB */
};

/* An account name: 1-32 of a-z, 0-9, '-' and '_', starting with a letter or digit, so that
 * it is safe in paths, state keys and logs (it is configuration, never personal data). */
#define CONFIG_ACCOUNT_NAME_MAX 32
#define CONFIG_DEFAULT_ACCOUNT "default"

/* One IMAP login and its mailboxes.  A file with [imap] and [mailboxes] has one account,
 * "default"; otherwise each [account NAME] section is one.  The account "default" keeps
 * the state keys of a file without accounts (legacy_keys), so that renaming [imap] to
 * [account default] changes nothing on disk; every other account's ingest state, purge
 * journal entries and archive batches are keyed by "NAME:" + mailbox. */
struct config_account {
    char *name;
    bool legacy_keys;               /* name is "default" */
    bool borrowed;                  /* internal: imap and mailboxes belong to mr_config */
    int line;                       /* the section's line (0 for [imap]) */
    int *key_lines;                 /* internal: where each [imap]-style key was set */
    struct config_imap imap;
    struct config_list mailboxes;
};

struct mr_config {
    char *path;                     /* the file loaded (absolute) */
    int *key_lines;                 /* internal: config_key_line */

    struct config_imap imap;        /* [imap]: the single account of a file without
                                       [account NAME] sections (see accounts) */

    struct config_list mailboxes;   /* [mailboxes] mailbox = ...; at least one */

    struct config_account *accounts;    /* at least one, in file order */
    size_t n_accounts;

    struct {
        enum config_members_backend backend;    /* default sqlite */
        char *database;             /* sqlite: default <state dir>/members.sqlite */
        char *maildir;              /* maildir backend: required there */
        char *command;              /* exec backend: required there (not a path: as given) */
        char *case_pattern;         /* POSIX ERE (REG_ICASE); NULL = ingest's default */
        struct config_list own_addresses;
        struct config_list own_domains;
    } members;

    /* [members] unrouted_warn_*: when `check` and `status` warn about the unrouted queue. */
    struct {
        unsigned warn_count;        /* more waiting than this; default 100, 0 = never */
        unsigned warn_days;         /* one waiting longer than this; default 7, 0 = never */
    } unrouted;

    struct {
        char *dir;                  /* required */
        uint64_t volume_size;       /* bytes, default 8 MiB (memory: see docs/CONFIG.md) */
        int compression_level;      /* 0-9, default 6 */
        unsigned workers;           /* 0 = number of CPUs (default) */
        /* The object store every batch is mirrored to (docs/STORE.md); local = none. */
        enum config_store store;    /* default local */
        char *store_endpoint;       /* s3: required; https://, http:// only to loopback */
        char *store_region;         /* s3: required (signing region) */
        char *store_bucket;         /* s3: required */
        bool store_path_style;      /* default yes */
        char *store_prefix;         /* NULL = none; no leading or trailing '/' */
        char *store_ca_file;        /* NULL = system bundle */
        char *store_credentials_file;   /* NULL = AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY */
        uint64_t store_multipart_threshold;     /* 0 = the driver's default (64 MiB) */
        uint64_t store_part_size;   /* 0 = the driver's default (16 MiB) */
        unsigned store_timeout;     /* seconds per request, 0 = the driver's (900) */
        enum config_lock_mode object_lock_mode;     /* default compliance */
        bool require_object_lock;   /* default no */
    } archive;

    struct {
        char *vault_dir;            /* required */
        char *it_cert;              /* required */
        char *reid_cert;            /* default: it_cert */
        char *pseudonym_key_file;   /* default <state dir>/pseudonym.key */
        char *manifest_key_file;    /* legacy (format-1 manifests); <state dir>/manifest.key */
        char *signing_key_file;     /* Ed25519, default <state dir>/signing-key.pem */
        char *host_keyring;         /* pinned public keys, default <state dir>/host-keys.pem */
    } keys;

    struct {
        int years;                  /* default 5, at least 1 */
        char *timezone;             /* default Europe/Copenhagen; checked to exist */
        int expiring_warn_days;     /* default 30 */
        int held_back_days;         /* default 30: held-back casework is a warning in check
                                       until this many days after its first refusal */
    } retention;

    struct {
        bool emails, cpr, phones, names, ips;   /* default all true */
        struct config_list own_addresses;       /* default: [members] own_addresses */
        struct config_list own_domains;         /* default: [members] own_domains */
        struct config_list keep_types;          /* keep = MIME type patterns kept in clear */
        struct config_list seal_types;          /* seal = patterns sealed (the default) */
    } pseudonymisation;

    struct {
        char *dir;                  /* default /var/lib/mailret */
        char *erasure_ledger;       /* default <state dir>/erasure.ledger */
    } state;

    struct {
        enum log_level level;       /* default info */
        bool level_set;             /* level given in the file (the CLI's -v/-q win) */
        char *file;                 /* NULL = stderr */
    } log;

    struct {
        char *log;                  /* default <state dir>/audit.log */
    } audit;
};

/* Parse and check path.  On success *out is a new config (config_free it). */
int config_load(const char *path, struct mr_config **out, mr_error *err);
void config_free(struct mr_config *cfg);

/* The line of cfg->path that set [section] key; 0 when it was not set (a default). */
int config_key_line(const struct mr_config *cfg, const char *section, const char *key);

/* Print every key with its effective value, defaults included, as an INI file that
 * config_load accepts; a default is preceded by a "# default" line.  Secret values (none
 * are stored today; only where they are) would be shown as "(redacted)". */
int config_show(const struct mr_config *cfg, FILE *out, mr_error *err);

/* The account called name, or NULL. */
const struct config_account *config_account_find(const struct mr_config *cfg,
                                                 const char *name);

/* The line of an account's key ([account NAME] or [imap]); 0 when not set. */
int config_account_key_line(const struct config_account *a, const char *key);

/* Parse a size "123", "64K", "64M", "2G" (binary multiples). */
int config_parse_size(const char *text, uint64_t *out, mr_error *err);

#endif
