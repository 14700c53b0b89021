/* hold.c — placing and releasing a legal hold (see hold.h). */
#include "purge/hold.h"

#include <stdio.h>
#include <string.h>

#include "backup/archive.h"
#include "backup/batchdir.h"
#include "common/log.h"

int hold_set(const char *archive_dir, const char *vault_dir, const char *batch, bool hold,
             const char *reason, const struct archive_trust *trust, EVP_PKEY *signing_key,
             audit_log *audit, char *dir, size_t dir_size, mr_error *err)
{
    char found[4096], why[512];
    int rc;

    if (reason == NULL || strlen(reason) < 3)
        return mr_error_set(err, MR_E_INVALID, "a legal hold needs a reason (--reason)");
    if (strlen(reason) > 300)
        return mr_error_set(err, MR_E_INVALID, "--reason is longer than 300 characters");
    rc = archive_batch_find(archive_dir, batch, found, sizeof found, err);
    if (rc != 0)
        return rc;
    snprintf(why, sizeof why, "%s", reason);
    log_scrub_buf(why, sizeof why);
    if (audit != NULL) {
        const struct audit_field f[] = { { "batch", batch }, { "action", hold ? "place"
                                                                               : "release" },
                                         { "reason", why } };
        rc = audit_append(audit, "batch.hold.request", f, 3, err);
        if (rc != 0)
            return rc;
    }
    rc = archive_batch_set_hold(found, hold, trust, signing_key, vault_dir, audit, err);
    if (rc != 0)
        return mr_error_prefix(err, "batch %s", batch);
    /* The re-signed manifest goes to the object store too (no store: nothing to do). */
    if (batchdir_store_current() != NULL) {
        struct archive_manifest m;
        rc = archive_manifest_read_unverified(found, &m, err);
        if (rc == 0) {
            rc = batchdir_store_push(found, m.expires, err);
            archive_manifest_clear(&m);
        }
        if (rc != 0)
            return mr_error_prefix(err, "batch %s: legal hold %s here, but not yet in the "
                                   "object store (run the command again)", batch,
                                   hold ? "placed" : "released");
    }
    if (dir != NULL)
        snprintf(dir, dir_size, "%s", found);
    return 0;
}
