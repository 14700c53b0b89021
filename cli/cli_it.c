/* cli_it.c — the options and set-up IT's commands share (see cli_it.h). */
#include "cli/cli_it.h"

#include <string.h>
#include <unistd.h>

#include "backup/batchdir.h"
#include "cli/cli_store.h"

int cli_it_arg(struct cli_it_args *a, const char *command, int opt, const char *arg)
{
    switch (opt) {
    case CLI_IT_OPT_IT_KEY: a->it_key = arg; return 1;
    case CLI_IT_OPT_IT_PASS: a->it_pass = arg; return 1;
    case CLI_IT_OPT_REID_KEY: a->reid_key = arg; return 1;
    case CLI_IT_OPT_REID_PASS: a->reid_pass = arg; return 1;
    case CLI_IT_OPT_LEGACY_KEY: a->legacy_key = arg; return 1;
    case CLI_IT_OPT_TRUST_UNSIGNED: a->trust_unsigned = true; return 1;
    case CLI_IT_OPT_ARCHIVE_DIR: a->archive_dir = arg; return 1;
    case CLI_IT_OPT_VAULT_DIR: a->vault_dir = arg; return 1;
    case CLI_IT_OPT_AUDIT_LOG: a->audit_path = arg; return 1;
    case CLI_IT_OPT_HOST_KEY:
        if (a->n_host_keys == CLI_IT_MAX_HOST_KEYS)
            return cli_usage_error(command, "too many --host-key");
        a->host_keys[a->n_host_keys++] = arg;
        return 1;
    default:
        return 0;
    }
}

int cli_it_open(struct cli_ctx *ctx, const struct cli_it_args *a, bool need_config,
                struct cli_it *it, mr_error *err)
{
    int rc = 0;

    memset(it, 0, sizeof *it);
    it->archive_dir = a->archive_dir;
    it->vault_dir = a->vault_dir;
    it->audit_path = a->audit_path;
    /* The configuration is optional on IT's machine; explicit options win. */
    if (a->archive_dir == NULL || a->vault_dir == NULL || a->audit_path == NULL
        || ctx->config_explicit || need_config) {
        rc = cli_config_load(ctx, &it->cfg, err);
        if (rc != 0)
            return rc;
        if (it->archive_dir == NULL)
            it->archive_dir = it->cfg->archive.dir;
        if (it->vault_dir == NULL)
            it->vault_dir = it->cfg->keys.vault_dir;
        if (it->audit_path == NULL)
            it->audit_path = it->cfg->audit.log;
    }
    rc = cli_trust_setup(it->cfg, a->host_keys, a->n_host_keys, a->legacy_key,
                         a->trust_unsigned, &it->trust, err);
    if (rc != 0) {
        config_free(it->cfg);
        it->cfg = NULL;
    }
    return rc;
}

int cli_it_keys(struct cli_it *it, const struct cli_it_args *a, bool want_it, bool want_reid,
                mr_error *err)
{
    int rc = 0;

    if (want_it)
        rc = cli_private_key_load(a->it_key, a->it_pass, "MAILRET_IT_PASSPHRASE",
                                  "IT key passphrase: ", &it->it, err);
    if (rc == 0 && want_reid && a->reid_key != NULL)
        rc = cli_private_key_load(a->reid_key, a->reid_pass, "MAILRET_REID_PASSPHRASE",
                                  "Re-identification key passphrase: ", &it->reid, err);
    return rc;
}

/* The host writes and signs the batches: its [archive] dir is the complete copy and the
 * store a mirror of it, so its own restore or verify reads the directory.  Anywhere
 * else (IT's machine) the store is the archive and the directory its cache. */
static bool on_host(const struct mr_config *cfg)
{
    return cfg->keys.signing_key_file != NULL && access(cfg->keys.signing_key_file, F_OK) == 0;
}

int cli_it_ready(struct cli_it *it, bool writes, mr_error *err)
{
    int rc = audit_open(&it->audit, it->audit_path, err);
    bool host;

    if (rc != 0 || it->cfg == NULL || it->cfg->archive.store != CONFIG_STORE_S3)
        return rc;
    /* On the host only a command that changes a batch needs the store (to mirror the
     * change); its reads stay with the local copy, whatever the store's state. */
    host = on_host(it->cfg);
    if (host && !writes)
        return 0;
    rc = cli_store_open(it->cfg, &it->store, err);
    if (rc == 0 && it->store != NULL) {
        rc = batchdir_store_attach(it->archive_dir, it->store, it->cfg->archive.store_prefix,
                                   err);
        if (rc != 0) {
            store_close(it->store);
            it->store = NULL;
        }
    }
    if (rc == 0 && it->store != NULL && !host)
        rc = batchdir_store_pull_tree(it->archive_dir, err);
    return rc;
}

void cli_it_close(struct cli_it *it)
{
    if (it->store != NULL) {
        batchdir_store_pull_release();
        cli_store_detach(it->store);
    }
    audit_close(it->audit);
    cli_trust_release(&it->trust);
    EVP_PKEY_free(it->it);
    EVP_PKEY_free(it->reid);
    config_free(it->cfg);
    memset(it, 0, sizeof *it);
}
