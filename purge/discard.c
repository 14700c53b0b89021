/* discard.c — removing an unfinished batch (a purge killed while fetching or writing):
 * the equivalent of archive_batch_abort for a batch whose process is gone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/archive.h"
#include "backup/batchdir.h"
#include "keys/keys.h"
#include "purge/purge.h"

int purge_batch_discard(const char *archive_dir, const char *vault_dir, const char *batch_id,
                        audit_log *audit, mr_log *log, mr_error *err)
{
    struct keys_list_options lo = { .vault_dir = vault_dir };
    struct keys_entry *keys = NULL;
    size_t n_keys = 0, shredded = 0;
    char dir[4096];
    int rc;

    rc = archive_batch_find(archive_dir, batch_id, dir, sizeof dir, err);
    if (rc == 0)
        rc = batchdir_destroy(dir, err);
    else if (rc == MR_E_NOTFOUND)
        rc = 0;     /* killed before the directory was made */
    if (rc != 0)
        return mr_error_prefix(err, "discarding batch %s", batch_id);
    /* The sealed keys would decrypt nothing any more, but a key without a batch is
     * exactly what the compliance check must not find. */
    rc = keys_list(&lo, &keys, &n_keys, err);
    for (size_t i = 0; rc == 0 && i < n_keys; i++) {
        if (strncmp(keys[i].kind, "epoch-", 6) != 0 || strcmp(keys[i].batch, batch_id) != 0)
            continue;
        rc = keys_epoch_shred(vault_dir, keys[i].id, audit, err);
        shredded++;
    }
    free(keys);
    if (rc != 0)
        return mr_error_prefix(err, "discarding batch %s", batch_id);
    if (audit != NULL) {
        char nk[16];
        snprintf(nk, sizeof nk, "%zu", shredded);
        const struct audit_field f[] = { { "batch", batch_id }, { "keys_shredded", nk } };
        rc = audit_append(audit, "purge.batch.discard", f, 2, err);
        if (rc != 0)
            return rc;
    }
    log_info(log, "batch %s: unfinished batch discarded (%zu epoch keys shredded)", batch_id,
             shredded);
    return 0;
}
