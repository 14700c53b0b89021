/* cli_setup.c — configuration to options for the commands that write or read batches
 * (see cli_setup.h). */
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
            const struct keys_pseudonym *cur = keys_pseudonym_current(&k->pkeys);
            memcpy(k->pkey.bytes, cur->key, sizeof k->pkey.bytes);
            k->pepoch = cur->epoch;
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
