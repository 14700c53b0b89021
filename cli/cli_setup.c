/* cli_setup.c — configuration to options for the commands that write or read batches
 * (see cli_setup.h). */
#include "cli/cli_setup.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

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
        rc = keys_secret_key_read(cfg->keys.pseudonym_key_file, k->pkey.bytes, err);
        k->have_pkey = rc == 0;
    }
    if (rc == 0 && (need & CLI_NEED_MANIFEST_KEY)) {
        rc = keys_secret_key_read(cfg->keys.manifest_key_file, k->mkey, err);
        k->have_mkey = rc == 0;
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

void cli_keys_release(struct cli_keys *k)
{
    X509_free(k->it);
    X509_free(k->reid);
    k->it = k->reid = NULL;
    OPENSSL_cleanse(&k->pkey, sizeof k->pkey);
    OPENSSL_cleanse(k->mkey, sizeof k->mkey);
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
    o->policy = &k->policy;
    o->manifest_key = k->mkey;
    o->audit = audit;
    o->log = log;
}

int cli_state_path(const struct mr_config *cfg, const char *name, char *buf, size_t size,
                     mr_error *err)
{
    if ((size_t)snprintf(buf, size, "%s/%s", cfg->state.dir, name) >= size)
        return mr_error_set(err, MR_E_INVALID, "state directory path too long");
    return 0;
}
