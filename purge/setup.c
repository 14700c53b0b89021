/* setup.c — configuration to options for purge and its sibling commands (see setup.h). */
#include "purge/setup.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

int purge_keys_load(const struct mr_config *cfg, unsigned need, struct purge_keys *k,
                    mr_error *err)
{
    int rc = 0;

    memset(k, 0, sizeof *k);
    if (need & PURGE_NEED_CERTS) {
        rc = keys_cert_load(cfg->keys.it_cert, &k->it, err);
        if (rc == 0)
            rc = keys_cert_load(cfg->keys.reid_cert != NULL ? cfg->keys.reid_cert
                                                            : cfg->keys.it_cert, &k->reid, err);
        k->have_certs = rc == 0;
    }
    if (rc == 0 && (need & PURGE_NEED_PSEUDONYM_KEY)) {
        rc = keys_secret_key_read(cfg->keys.pseudonym_key_file, k->pkey.bytes, err);
        k->have_pkey = rc == 0;
    }
    if (rc == 0 && (need & PURGE_NEED_MANIFEST_KEY)) {
        rc = keys_secret_key_read(cfg->keys.manifest_key_file, k->mkey, err);
        k->have_mkey = rc == 0;
    }
    if (rc != 0) {
        purge_keys_release(k);
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
    return 0;
}

void purge_keys_release(struct purge_keys *k)
{
    X509_free(k->it);
    X509_free(k->reid);
    k->it = k->reid = NULL;
    OPENSSL_cleanse(&k->pkey, sizeof k->pkey);
    OPENSSL_cleanse(k->mkey, sizeof k->mkey);
}

int purge_imap_options(const struct mr_config *cfg, struct imap_options *io, char **password,
                       mr_error *err)
{
    memset(io, 0, sizeof *io);
    io->host = cfg->imap.host;
    io->port = (int)cfg->imap.port;
    io->tls = cfg->imap.tls == CONFIG_TLS_STARTTLS ? IMAP_TLS_STARTTLS : IMAP_TLS_IMAPS;
    io->ca_file = cfg->imap.ca_file;
    io->insecure_skip_verify = cfg->imap.insecure_skip_verify;
    io->user = cfg->imap.user;
    io->connect_timeout_s = (int)cfg->imap.connect_timeout;
    io->io_timeout_s = (int)cfg->imap.io_timeout;
    io->max_literal = (size_t)cfg->imap.max_message_size;
    *password = NULL;
    return config_read_secret(cfg->imap.password_file, cfg->imap.password_env, password, err);
}

void purge_archive_options(const struct mr_config *cfg, const struct purge_keys *k,
                           audit_log *audit, mr_log *log, struct archive_options *o)
{
    memset(o, 0, sizeof *o);
    o->archive_dir = cfg->archive.dir;
    o->vault_dir = cfg->keys.vault_dir;
    o->zone = cfg->retention.timezone;
    o->volume_size = (size_t)cfg->archive.volume_size;
    o->compression_level = cfg->archive.compression_level;
    o->workers = (int)cfg->archive.workers;
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

int purge_state_path(const struct mr_config *cfg, const char *name, char *buf, size_t size,
                     mr_error *err)
{
    if ((size_t)snprintf(buf, size, "%s/%s", cfg->state.dir, name) >= size)
        return mr_error_set(err, MR_E_INVALID, "state directory path too long");
    return 0;
}
