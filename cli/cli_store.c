/* cli_store.c — see cli_store.h. */
#include "cli/cli_store.h"

#include <stddef.h>

#include "backup/batchdir.h"

int cli_store_open(const struct mr_config *cfg, mr_store **out, mr_error *err)
{
    struct store_s3_options o = {
        .endpoint = cfg->archive.store_endpoint,
        .region = cfg->archive.store_region,
        .bucket = cfg->archive.store_bucket,
        .path_style = cfg->archive.store_path_style,
        .ca_file = cfg->archive.store_ca_file,
        .credentials_file = cfg->archive.store_credentials_file,
        .multipart_threshold = cfg->archive.store_multipart_threshold,
        .part_size = cfg->archive.store_part_size,
        .request_timeout_s = (int)cfg->archive.store_timeout,
        .require_object_lock = cfg->archive.require_object_lock,
        .lock_governance = cfg->archive.object_lock_mode == CONFIG_LOCK_GOVERNANCE,
    };
    int rc;

    *out = NULL;
    if (cfg->archive.store != CONFIG_STORE_S3)
        return 0;
    rc = store_s3_open(&o, out, err);
    if (rc != 0)
        mr_error_prefix(err, "object store ([archive] store = s3)");
    return rc;
}

int cli_store_attach(const struct mr_config *cfg, mr_store **out, mr_error *err)
{
    int rc = cli_store_open(cfg, out, err);

    if (rc != 0 || *out == NULL)
        return rc;
    rc = batchdir_store_attach(cfg->archive.dir, *out, cfg->archive.store_prefix, err);
    if (rc != 0) {
        store_close(*out);
        *out = NULL;
    }
    return rc;
}

void cli_store_detach(mr_store *st)
{
    if (st == NULL)
        return;
    if (batchdir_store_current() == st)
        batchdir_store_detach();
    store_close(st);
}

const char *cli_store_lock_mode(const struct mr_config *cfg)
{
    return cfg->archive.object_lock_mode == CONFIG_LOCK_GOVERNANCE ? "governance"
                                                                    : "compliance";
}
