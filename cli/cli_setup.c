/* cli_setup.c — configuration to options for the commands (see cli_setup.h). */
#include "cli/cli_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/durable.h"
#include "common/secret.h"

int cli_keys_load(const struct mr_config *cfg, unsigned need, struct cli_keys *k,
                    mr_error *err)
{
    int rc = 0;

    memset(k, 0, sizeof *k);
    if (need & CLI_NEED_CERTS) {
        rc = keys_cert_load(cfg->keys.it_cert, &k->it, err);
        if (rc == 0)
            rc = keys_cert_load(cfg->keys.reid_cert != NULL ? cfg->keys.reid_cert
                                                            : cfg->keys.it_cert, &k->reid, err);
        k->have_certs = rc == 0;
    }
    if (rc == 0 && (need & CLI_NEED_PSEUDONYM_KEY)) {
        rc = keys_pseudonym_load_host(cfg->keys.pseudonym_key_file, &k->pkeys, err);
        if (rc == 0) {
            /* keys_pseudonym_load_host insists on epoch 0, so there is a current key. */
            const struct keys_pseudonym *cur = keys_pseudonym_current(&k->pkeys);
            if (cur == NULL) {
                rc = mr_error_set(err, MR_E_NOTFOUND, "%s: no pseudonym key",
                                  cfg->keys.pseudonym_key_file);
            } else {
                memcpy(k->pkey.bytes, cur->key, sizeof k->pkey.bytes);
                k->pepoch = cur->epoch;
            }
        }
        k->have_pkey = rc == 0;
    }
    if (rc == 0 && (need & CLI_NEED_SIGNER)) {
        rc = keys_signing_load(cfg->keys.signing_key_file, &k->signer, err);
        /* A host set up before batches were signed has keys but no signing key. */
        if (rc == MR_E_NOTFOUND && access(cfg->keys.pseudonym_key_file, F_OK) == 0) {
            cli_keys_release(k);
            return mr_error_set(err, MR_E_NOTFOUND, "no batch-signing key at %s: run `mailret "
                                "keys rotate-signing` to create it, and give IT the keyring",
                                cfg->keys.signing_key_file);
        }
    }
    if (rc == 0 && (need & (CLI_NEED_TRUST | CLI_NEED_SIGNER))) {
        k->keyring = keys_keyring_new();
        if (k->keyring == NULL)
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        if (rc == 0 && k->signer != NULL)
            rc = keys_keyring_add(k->keyring, k->signer, err);
        if (rc == 0)
            rc = cli_trust_load(cfg, k->keyring, k->mkey, &k->have_mkey, err);
        k->trust.keyring = k->keyring;
        k->trust.legacy_key = k->have_mkey ? k->mkey : NULL;
    }
    if (rc != 0) {
        cli_keys_release(k);
        return mr_error_prefix(err, "keys (run `mailret keys init-host` first?)");
    }
    pseudo_policy_default(&k->policy);
    k->policy.emails = cfg->pseudonymisation.emails;
    k->policy.cpr = cfg->pseudonymisation.cpr;
    k->policy.phones = cfg->pseudonymisation.phones;
    k->policy.names = cfg->pseudonymisation.names;
    k->policy.ips = cfg->pseudonymisation.ips;
    k->policy.own_addresses = (const char *const *)cfg->pseudonymisation.own_addresses.items;
    k->policy.n_own_addresses = cfg->pseudonymisation.own_addresses.n;
    k->policy.own_domains = (const char *const *)cfg->pseudonymisation.own_domains.items;
    k->policy.n_own_domains = cfg->pseudonymisation.own_domains.n;
    k->policy.keep_types = (const char *const *)cfg->pseudonymisation.keep_types.items;
    k->policy.n_keep_types = cfg->pseudonymisation.keep_types.n;
    k->policy.seal_types = (const char *const *)cfg->pseudonymisation.seal_types.items;
    k->policy.n_seal_types = cfg->pseudonymisation.seal_types.n;
    return 0;
}

int cli_trust_load(const struct mr_config *cfg, keys_keyring *kr, unsigned char *mkey,
                   bool *legacy_loaded, mr_error *err)
{
    int rc = 0;

    *legacy_loaded = false;
    if (access(cfg->keys.host_keyring, F_OK) == 0)
        rc = keys_keyring_add_file(kr, cfg->keys.host_keyring, err);
    if (rc == 0 && access(cfg->keys.signing_key_file, R_OK) == 0) {
        EVP_PKEY *sk = NULL;
        rc = keys_signing_load(cfg->keys.signing_key_file, &sk, err);
        if (rc == 0)
            rc = keys_keyring_add(kr, sk, err);
        EVP_PKEY_free(sk);
    }
    if (rc == 0 && access(cfg->keys.manifest_key_file, F_OK) == 0) {
        rc = keys_secret_key_read(cfg->keys.manifest_key_file, mkey, err);
        *legacy_loaded = rc == 0;
    }
    if (rc == 0 && keys_keyring_size(kr) == 0 && !*legacy_loaded)
        rc = mr_error_set(err, MR_E_NOTFOUND, "no host signing key or keyring (%s)",
                          cfg->keys.host_keyring);
    return rc;
}

int cli_trust_setup(const struct mr_config *cfg, const char *const *host_keys, size_t n,
                    const char *legacy_key_file, bool trust_unsigned, struct cli_trust *t,
                    mr_error *err)
{
    bool legacy = false;
    int rc = 0;

    memset(t, 0, sizeof *t);
    t->keyring = keys_keyring_new();
    if (t->keyring == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = keys_keyring_add_file(t->keyring, host_keys[i], err);
    if (rc == 0 && n == 0 && cfg != NULL) {
        rc = cli_trust_load(cfg, t->keyring, t->mkey, &legacy, err);
        if (rc == MR_E_NOTFOUND)
            rc = 0;
    }
    if (rc == 0 && legacy_key_file != NULL) {
        rc = keys_secret_key_read(legacy_key_file, t->mkey, err);
        legacy = rc == 0;
    }
    if (rc == 0 && keys_keyring_size(t->keyring) == 0 && !legacy && !trust_unsigned)
        rc = mr_error_set(err, MR_E_AUTH, "no pinned host key: give --host-key FILE (the "
                          "host's keyring, checked against the fingerprint from `keys "
                          "init-host`)");
    if (rc != 0) {
        cli_trust_release(t);
        return rc;
    }
    t->trust.keyring = t->keyring;
    t->trust.legacy_key = legacy ? t->mkey : NULL;
    t->trust.accept_unverified = trust_unsigned;
    if (trust_unsigned)
        fprintf(stderr, "mailret: WARNING: --trust-unsigned: a batch whose manifest is not "
                "authentic is read anyway (and audited)\n");
    return 0;
}

void cli_trust_release(struct cli_trust *t)
{
    keys_keyring_free(t->keyring);
    OPENSSL_cleanse(t->mkey, sizeof t->mkey);
    memset(t, 0, sizeof *t);
}

void cli_keys_release(struct cli_keys *k)
{
    X509_free(k->it);
    X509_free(k->reid);
    k->it = k->reid = NULL;
    OPENSSL_cleanse(&k->pkey, sizeof k->pkey);
    keys_pseudonym_set_free(&k->pkeys);
    OPENSSL_cleanse(k->mkey, sizeof k->mkey);
    EVP_PKEY_free(k->signer);
    keys_keyring_free(k->keyring);
    k->signer = NULL;
    k->keyring = NULL;
    memset(&k->trust, 0, sizeof k->trust);
}

void cli_archive_options(const struct mr_config *cfg, const struct cli_keys *k,
                           audit_log *audit, mr_log *log, struct archive_options *o)
{
    memset(o, 0, sizeof *o);
    o->archive_dir = cfg->archive.dir;
    o->vault_dir = cfg->keys.vault_dir;
    o->zone = cfg->retention.timezone;
    o->volume_size = (size_t)cfg->archive.volume_size;
    o->compression_level = cfg->archive.compression_level;
    /* [archive] workers = 0 means one per CPU (docs/CONFIG.md). */
    o->workers = cfg->archive.workers > 0 ? (int)cfg->archive.workers
                                          : (int)sysconf(_SC_NPROCESSORS_ONLN);
    o->content_holder = k->it;
    o->reid_holder = k->reid;
    o->reid_holder_name = cfg->keys.reid_cert != NULL
                                  && strcmp(cfg->keys.reid_cert, cfg->keys.it_cert) != 0
                              ? "reid" : "it";
    o->pseudonym_key = &k->pkey;
    o->pseudonym_epoch = k->pepoch;
    o->policy = &k->policy;
    o->signing_key = k->signer;
    o->ledger = k->have_ledger ? &k->ledger : NULL;
    o->audit = audit;
    o->log = log;
}

int cli_ledger_anchor(const struct mr_config *cfg, struct cli_keys *k, audit_log *audit,
                      mr_log *log, mr_error *err)
{
    struct ledger_writer w = { .path = cfg->state.erasure_ledger, .it_cert = k->it,
                               .signer = k->signer, .keyring = k->keyring, .audit = audit };
    mr_error lerr;
    int rc;

    k->have_ledger = false;
    mr_error_clear(&lerr);
    rc = ledger_prepare(&w, &k->ledger, &lerr);
    if (rc == 0) {
        k->have_ledger = true;
        return 0;
    }
    log_error(log, "%s", lerr.msg);
    if (audit != NULL) {
        const struct audit_field f[] = { { "status", mr_status_name(rc) } };
        return audit_append(audit, "erasure.ledger_problem", f, 1, err);
    }
    return 0;
}

int cli_sweep_tmp(const struct mr_config *cfg, mr_log *log, mr_error *err)
{
    struct archive_batch_ref *refs = NULL;
    size_t n_refs = 0, n = 0, total = 0;
    int rc = durable_sweep_tmp(cfg->keys.vault_dir, true, &n, err);

    total += n;
    if (rc == 0)
        rc = durable_sweep_tmp(cfg->state.dir, true, &n, err);
    total += rc == 0 ? n : 0;
    /* The erasure ledger and the audit log may live outside the state directory. */
    for (int i = 0; rc == 0 && i < 2; i++) {
        const char *file = i == 0 ? cfg->state.erasure_ledger : cfg->audit.log;
        const char *slash = file != NULL ? strrchr(file, '/') : NULL;
        char dir[4096];
        if (slash == NULL || (size_t)(slash - file) >= sizeof dir)
            continue;
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - file), file);
        if (strcmp(dir, cfg->state.dir) == 0)
            continue;
        rc = durable_sweep_tmp(dir, false, &n, err);
        total += rc == 0 ? n : 0;
    }
    if (rc == 0)
        rc = archive_batch_list(cfg->archive.dir, NULL, &refs, &n_refs, err);
    for (size_t i = 0; rc == 0 && i < n_refs; i++) {
        rc = durable_sweep_tmp(refs[i].dir, false, &n, err);
        total += rc == 0 ? n : 0;
    }
    free(refs);
    if (total > 0)
        log_info(log, "removed %zu temporary file(s) left by interrupted writes", total);
    return rc;
}

int cli_state_path(const struct mr_config *cfg, const char *name, char *buf, size_t size,
                     mr_error *err)
{
    if ((size_t)snprintf(buf, size, "%s/%s", cfg->state.dir, name) >= size)
        return mr_error_set(err, MR_E_INVALID, "state directory path too long");
    return 0;
}

/* ---- accounts ------------------------------------------------------------------------ */

int cli_accounts_select(const struct mr_config *cfg, const char *name, size_t *first,
                        size_t *count, mr_error *err)
{
    *first = 0;
    *count = cfg->n_accounts;
    if (name == NULL)
        return 0;
    for (size_t i = 0; i < cfg->n_accounts; i++) {
        if (strcmp(cfg->accounts[i].name, name) == 0) {
            *first = i;
            *count = 1;
            return 0;
        }
    }
    return mr_error_set(err, MR_E_NOTFOUND, "no [account %.*s] in the configuration",
                        CONFIG_ACCOUNT_NAME_MAX + 8, name);
}

const char *cli_account_state_key(const struct config_account *a)
{
    return a->legacy_keys ? NULL : a->name;
}

const char *cli_account_prefix(const struct config_account *a, char *buf, size_t size)
{
    if (a->legacy_keys)
        return "";
    snprintf(buf, size, "%s:", a->name);
    return buf;
}

int cli_mailbox_key(const struct config_account *a, const char *mailbox, char *buf,
                    size_t size, mr_error *err)
{
    char prefix[CONFIG_ACCOUNT_NAME_MAX + 2];

    if ((size_t)snprintf(buf, size, "%s%s", cli_account_prefix(a, prefix, sizeof prefix),
                         mailbox) >= size)
        return mr_error_set(err, MR_E_INVALID, "mailbox name too long");
    return 0;
}

int cli_json_account_add(json_t *arr, const char *account, const char *report, mr_error *err)
{
    json_t *o = report != NULL ? json_loads(report, 0, NULL) : NULL;

    if (o == NULL || !json_is_object(o)
        || json_object_set_new(o, "account", json_string(account)) != 0
        || json_array_append_new(arr, o) != 0) {
        json_decref(o);
        return mr_error_set(err, MR_E_NOMEM, "cannot build the JSON report");
    }
    return 0;
}

char *cli_json_accounts_dump(json_t *arr)
{
    json_t *o = json_pack("{s:O}", "accounts", arr);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    char *nl = text != NULL ? realloc(text, strlen(text) + 2) : NULL;

    json_decref(o);
    if (nl == NULL) {
        free(text);
        return NULL;
    }
    strcat(nl, "\n");
    return nl;
}

/* imap_secret_fn for token_command: run once per connection. */
static int setup_token_command(void *ctx, char **secret, mr_error *err)
{
    const struct config_imap *imap = ctx;

    return secret_command_run(imap->token_command, (int)imap->token_timeout, secret, err);
}

int cli_imap_options(const struct config_account *a, struct imap_options *io,
                     char **password, mr_error *err)
{
    static const enum imap_auth auth[] = {
        [CONFIG_AUTH_LOGIN] = IMAP_AUTH_LOGIN,
        [CONFIG_AUTH_PLAIN] = IMAP_AUTH_PLAIN,
        [CONFIG_AUTH_XOAUTH2] = IMAP_AUTH_XOAUTH2,
        [CONFIG_AUTH_OAUTHBEARER] = IMAP_AUTH_OAUTHBEARER,
    };
    const struct config_imap *imap = &a->imap;
    int rc;

    memset(io, 0, sizeof *io);
    io->host = imap->host;
    io->port = (int)imap->port;
    io->tls = imap->tls == CONFIG_TLS_STARTTLS ? IMAP_TLS_STARTTLS : IMAP_TLS_IMAPS;
    io->ca_file = imap->ca_file;
    io->insecure_skip_verify = imap->insecure_skip_verify;
    io->user = imap->user;
    io->connect_timeout_s = (int)imap->connect_timeout;
    io->io_timeout_s = (int)imap->io_timeout;
    io->max_literal = (size_t)imap->max_message_size;
    io->auth = auth[imap->auth];
    io->throttle_max_wait_s = (int)imap->throttle_max_wait;
    *password = NULL;
    if (imap->token_command != NULL) {
        /* ctx is the account's own settings: they outlive every connection. */
        io->secret_fn = setup_token_command;
        io->secret_ctx = (void *)imap;
        return 0;
    }
    rc = secret_read_text(imap->password_file, imap->password_env, password, err);
    if (rc != 0)
        return a->legacy_keys ? mr_error_prefix(err, "IMAP password")
                              : mr_error_prefix(err, "account %s: IMAP password", a->name);
    io->password = *password;
    return 0;
}

struct cli_ingest {
    struct ingest_options opt;
    struct imap_options imap;
    struct route_config routing;
    char *password;
    char state_path[4096];
    char journal_path[4096];
    members_db *members;
    sink *sink;
};

int cli_ingest_open(const struct mr_config *cfg, const struct config_account *a, mr_log *log,
                    cli_ingest **out, mr_error *err)
{
    cli_ingest *s = calloc(1, sizeof *s);
    int rc;

    *out = NULL;
    if (s == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    if ((rc = durable_mkdirs(cfg->state.dir, 0700, err)) != 0 ||
        (rc = cli_state_path(cfg, CLI_INGEST_STATE_FILE, s->state_path, sizeof s->state_path,
                             err)) != 0 ||
        (rc = cli_state_path(cfg, CLI_EXEC_JOURNAL_FILE, s->journal_path,
                             sizeof s->journal_path, err)) != 0 ||
        (rc = cli_imap_options(a, &s->imap, &s->password, err)) != 0)
        goto fail;
    s->imap.log = log;     /* for the loud insecure_skip_verify warning */
    s->routing = (struct route_config){
        .case_pattern = cfg->members.case_pattern,
        .own_addresses = (const char *const *)cfg->members.own_addresses.items,
        .n_own_addresses = cfg->members.own_addresses.n,
        .own_domains = (const char *const *)cfg->members.own_domains.items,
        .n_own_domains = cfg->members.own_domains.n,
    };
    /* The registry is always the SQLite member database: routing needs it whichever sink
     * receives the mail. */
    if ((rc = members_open(cfg->members.database, &s->members, err)) != 0)
        goto fail;
    switch (cfg->members.backend) {
    case CONFIG_MEMBERS_MAILDIR:
        rc = sink_maildir_open(cfg->members.maildir, &s->sink, err);
        break;
    case CONFIG_MEMBERS_EXEC:
        rc = sink_exec_open(cfg->members.command, s->journal_path, (int)a->imap.io_timeout,
                            &s->sink, err);
        /* The member-system command inherits our environment, but no account's IMAP
         * password. */
        for (size_t i = 0; rc == 0 && i < cfg->n_accounts; i++)
            if (cfg->accounts[i].imap.password_env != NULL)
                rc = sink_exec_hide_env(s->sink, cfg->accounts[i].imap.password_env, err);
        break;
    default:
        rc = sink_sqlite_open(s->members, &s->sink, err);
        break;
    }
    if (rc != 0)
        goto fail;
    s->opt = (struct ingest_options){
        .imap = &s->imap,
        .account = cli_account_state_key(a),
        .mailboxes = (const char *const *)a->mailboxes.items,
        .n_mailboxes = a->mailboxes.n,
        .sink = s->sink,
        .members = s->members,
        .queue_unrouted = cfg->members.backend != CONFIG_MEMBERS_SQLITE,
        .routing = &s->routing,
        .state_db = s->state_path,
        .batch_size = a->imap.fetch_batch,
        .max_size = a->imap.max_message_size,
        .log = log,
    };
    *out = s;
    return 0;
fail:
    cli_ingest_close(s);
    return rc;
}

struct ingest_options *cli_ingest_options(cli_ingest *s)
{
    return &s->opt;
}

void cli_ingest_close(cli_ingest *s)
{
    if (s == NULL)
        return;
    sink_close(s->sink);
    members_close(s->members);
    secret_free(s->password);
    free(s);
}

int cli_private_key_load(const char *path, const char *pass_file, const char *env,
                         const char *prompt, EVP_PKEY **out, mr_error *err)
{
    struct keys_secret_source src = { .file = pass_file, .env = env, .terminal = true,
                                       .prompt = prompt };
    char *pass = NULL;
    int rc = keys_secret_read(&src, &pass, err);

    if (rc == 0)
        rc = keys_private_load(path, pass, out, err);
    secret_free(pass);
    return rc;
}
