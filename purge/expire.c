/* expire.c — crypto-shredding expired batches (see expire.h). */
#include "purge/expire.h"

#include <stdlib.h>
#include <string.h>

#include "backup/archive.h"
#include "backup/batchdir.h"
#include "common/mrtime.h"
#include "keys/keys.h"
#include "purge/tombstone.h"

/* A new zeroed item at the end of the report, or NULL when out of memory. */
static struct expire_item *push(struct expire_report *r, size_t *cap)
{
    struct expire_item *it;

    if (r->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct expire_item *nv = realloc(r->items, nc * sizeof *nv);
        if (nv == NULL)
            return NULL;
        r->items = nv;
        *cap = nc;
    }
    it = &r->items[r->n++];
    memset(it, 0, sizeof *it);
    return it;
}

static int remove_content(void *ctx, const char *name, mr_error *err)
{
    return batchdir_is_content(name) ? batchdir_remove(ctx, name, err) : 0;
}

/* Every volume and re-identification file, listed in the manifest or not (a stray
 * volume is archive content too), and the locator (person tokens). */
static int remove_volumes(const char *dir, mr_error *err)
{
    int rc = batchdir_list(dir, remove_content, (void *)dir, err);

    if (rc == MR_E_NOTFOUND)
        rc = mr_error_set(err, MR_E_IO, "cannot read %s", dir);
    if (rc == 0)
        rc = batchdir_remove(dir, batchdir_name(BATCHDIR_LOCATOR), err);
    return rc == 0 ? batchdir_sync(dir, err) : rc;
}

static int expire_batch(const struct expire_options *opt, const char *dir,
                        const struct archive_manifest *m, bool unverified, mr_error *err)
{
    struct purge_tombstone t;
    char exp[24];
    int rc;

    /* 1. Keys first: the moment they are gone, every copy of the volumes is noise. */
    rc = keys_epoch_shred(opt->vault_dir, m->content_key_id, opt->audit, err);
    if (rc == 0)
        rc = keys_epoch_shred(opt->vault_dir, m->reid_key_id, opt->audit, err);
    if (rc == 0 && (keys_epoch_present(opt->vault_dir, m->content_key_id)
                    || keys_epoch_present(opt->vault_dir, m->reid_key_id)))
        rc = mr_error_set(err, MR_E_IO, "epoch key of batch %s still present after shredding",
                          m->batch_id);
    /* 2. The ciphertext. */
    if (rc == 0)
        rc = remove_volumes(dir, err);
    /* 3. The tombstone, then the manifest: the batch never looks complete without keys. */
    if (rc == 0) {
        purge_tombstone_from_manifest(m, time(NULL), &t);
        t.manifest_unverified = unverified;
        rc = purge_tombstone_write(dir, &t, opt->signing_key, err);
    }
    if (rc == 0) {
        rc = batchdir_remove(dir, batchdir_name(BATCHDIR_MANIFEST), err);
        if (rc == 0)
            rc = batchdir_sync(dir, err);
    }
    if (rc == 0 && opt->audit != NULL) {
        char cnt[24];
        snprintf(cnt, sizeof cnt, "%zu", m->message_count);
        mrtime_format_utc(m->expires, exp, sizeof exp);
        const struct audit_field f[] = { { "batch", m->batch_id }, { "mailbox", m->mailbox },
                                         { "expires", exp }, { "messages", cnt },
                                         { "manifest", unverified ? "unverified" : "verified" } };
        rc = audit_append(opt->audit, "batch.expire", f, 5, err);
    }
    if (rc == 0)
        log_info(opt->log, "batch %s: expired (epoch keys shredded, volumes deleted)",
                 m->batch_id);
    /* 4. The object store follows: content objects deleted, the tombstone put, the
     * manifest deleted last.  A failure here leaves a batch expired on this host that a
     * later expire mirrors (expire_run's sweep of tombstones). */
    if (rc == 0 && (rc = batchdir_store_push(dir, 0, err)) != 0)
        mr_error_prefix(err, "keys shredded and files deleted here, but the object store "
                        "still holds the batch (the next expire deletes it there)");
    return rc;
}

/* An expired batch (tombstone, no manifest) whose copy in the object store is not just
 * its tombstone: an expiry whose mirroring failed or was cut off.  Finished now. */
static int sweep_tombstone(const struct expire_options *opt, const struct archive_batch_ref *ref,
                           struct expire_report *r, size_t *cap, mr_error *err)
{
    struct expire_item *it;
    const char *base;
    bool pushed = false;
    mr_error e;
    int rc;

    if (batchdir_store_current() == NULL
        || !batchdir_exists(ref->dir, batchdir_name(BATCHDIR_TOMBSTONE), NULL))
        return 0;
    mr_error_clear(&e);
    if (!opt->dry_run)
        rc = batchdir_store_sync(ref->dir, 0, &pushed, &e);
    else
        rc = 0;
    if (rc == 0 && !pushed)
        return 0;
    if ((it = push(r, cap)) == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    base = strrchr(ref->dir, '/');
    snprintf(it->batch_id, sizeof it->batch_id, "%s", base != NULL ? base + 1 : "?");
    snprintf(it->mailbox, sizeof it->mailbox, "%s", ref->mailbox);
    if (rc == 0) {
        it->action = EXPIRE_EXPIRED;
        snprintf(it->detail, sizeof it->detail, "expired before; now deleted from the object "
                 "store too");
        log_info(opt->log, "batch %s: expired before; its objects are deleted from the store "
                 "now", it->batch_id);
        return 0;
    }
    it->action = EXPIRE_FAILED;
    snprintf(it->detail, sizeof it->detail, "%s", e.msg);
    if (err != NULL)
        *err = e;
    return rc;
}

int expire_unverified_due(const char *vault_dir, const char *dir,
                          const struct archive_manifest *m, time_t *expires, mr_error *err)
{
    const char *ids[2] = { m->content_key_id, m->reid_key_id };
    const char *base = strrchr(dir, '/');
    size_t blen, ilen = strlen(m->batch_id);
    bool any = false;

    *expires = 0;
    base = base != NULL ? base + 1 : dir;
    blen = strlen(base);
    /* The manifest may claim anything: it must at least name the batch its directory is. */
    if (ilen == 0 || blen <= ilen || strcmp(base + blen - ilen, m->batch_id) != 0
        || base[blen - ilen - 1] != '-')
        return mr_error_set(err, MR_E_TAMPERED, "the manifest names batch %s, not this "
                            "directory's", m->batch_id);
    for (int i = 0; i < 2; i++) {
        char batch[80];
        time_t e;
        mr_error me;
        int rc = keys_epoch_meta_read(vault_dir, ids[i], batch, &e, &me);
        if (rc == MR_E_NOTFOUND && !keys_epoch_present(vault_dir, ids[i]))
            continue;       /* this key is gone already */
        if (rc != 0) {
            if (err != NULL)
                *err = me;
            return rc;
        }
        if (strcmp(batch, m->batch_id) != 0)
            return mr_error_set(err, MR_E_TAMPERED, "epoch key %s belongs to batch %s, not "
                                "%s", ids[i], batch, m->batch_id);
        if (e > *expires)
            *expires = e;
        any = true;
    }
    if (!any)
        return mr_error_set(err, MR_E_NOTFOUND, "no epoch key of batch %s in the vault",
                            m->batch_id);
    return 0;
}

int expire_run(const struct expire_options *opt, struct expire_report **report, mr_error *err)
{
    struct archive_batch_ref *refs = NULL;
    struct expire_report *r;
    size_t n_refs = 0, cap = 0;
    int rc, first = 0;

    *report = NULL;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    *report = r;
    rc = archive_batch_list(opt->archive_dir, NULL, &refs, &n_refs, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n_refs; i++) {
        struct archive_manifest m;
        struct expire_item *it;
        mr_error e;
        int read_rc;

        /* No manifest: an expired batch (tombstone) or an unfinished one (purge's).  An
         * expired one whose store copy was not finished is mirrored now. */
        if (!refs[i].has_manifest) {
            mr_error se;
            size_t before = r->n;
            int src = sweep_tombstone(opt, &refs[i], r, &cap, &se);
            if (src == MR_E_NOMEM) {
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
                break;
            }
            if (r->n > before && r->items[r->n - 1].action == EXPIRE_EXPIRED)
                r->expired++;
            if (src != 0) {
                r->failed++;
                log_error(opt->log, "batch %s: %s", r->items[r->n - 1].batch_id, se.msg);
                if (first == 0) {
                    first = src;
                    if (err != NULL)
                        *err = se;
                    mr_error_prefix(err, "batch %s", r->items[r->n - 1].batch_id);
                }
            }
            continue;
        }
        mr_error_clear(&e);
        read_rc = archive_manifest_read(refs[i].dir, opt->trust, &m, &e);
        if (read_rc == 0 && m.expires > opt->at) {
            archive_manifest_clear(&m);
            continue;
        }
        it = push(r, &cap);
        if (it == NULL) {
            if (read_rc == 0)
                archive_manifest_clear(&m);
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
            break;
        }
        if (read_rc != 0) {
            /* A manifest we cannot trust is not destroyed on its say-so: only if the
             * vault's own record of the batch's keys says they are past expiry. */
            const char *base = strrchr(refs[i].dir, '/');
            struct archive_manifest u;
            time_t due = 0;
            mr_error ue;
            snprintf(it->batch_id, sizeof it->batch_id, "%s", base != NULL ? base + 1 : "?");
            snprintf(it->mailbox, sizeof it->mailbox, "%s", refs[i].mailbox);
            it->action = EXPIRE_FAILED;
            if (read_rc == MR_E_TAMPERED
                && archive_manifest_read_unverified(refs[i].dir, &u, &ue) == 0) {
                if (expire_unverified_due(opt->vault_dir, refs[i].dir, &u, &due, &ue) == 0) {
                    u.expires = due;
                    it->expires = due;
                    if (due > opt->at) {
                        /* Not yet due: leave it to check, which reports it. */
                        archive_manifest_clear(&u);
                        r->n--;
                        continue;
                    } else if (u.hold) {
                        it->action = EXPIRE_HELD;
                        r->held++;
                    } else if (opt->dry_run) {
                        it->action = EXPIRE_WOULD;
                    } else if (expire_batch(opt, refs[i].dir, &u, true, &ue) == 0) {
                        it->action = EXPIRE_EXPIRED;
                        r->expired++;
                        log_warn(opt->log, "batch %s: manifest not authentic (%s); expired "
                                 "on the vault's record of its keys", u.batch_id, e.msg);
                    }
                    if (it->action != EXPIRE_FAILED)
                        snprintf(it->detail, sizeof it->detail, "manifest not authentic");
                }
                archive_manifest_clear(&u);
            }
            if (it->action == EXPIRE_FAILED)
                snprintf(it->detail, sizeof it->detail, "%s", e.msg);
        } else {
            snprintf(it->batch_id, sizeof it->batch_id, "%s", m.batch_id);
            snprintf(it->mailbox, sizeof it->mailbox, "%s", m.mailbox);
            it->expires = m.expires;
            if (m.hold) {
                it->action = EXPIRE_HELD;
                r->held++;
            } else if (opt->dry_run) {
                it->action = EXPIRE_WOULD;
            } else if (expire_batch(opt, refs[i].dir, &m, false, &e) == 0) {
                it->action = EXPIRE_EXPIRED;
                r->expired++;
            } else {
                it->action = EXPIRE_FAILED;
                snprintf(it->detail, sizeof it->detail, "%s", e.msg);
            }
            archive_manifest_clear(&m);
        }
        if (it->action == EXPIRE_FAILED) {
            r->failed++;
            log_error(opt->log, "batch %s: not expired: %s", it->batch_id, it->detail);
            if (first == 0) {
                first = e.code != 0 ? e.code : MR_E_INTERNAL;
                if (err != NULL)
                    *err = e;
                mr_error_prefix(err, "batch %s", it->batch_id);
            }
        }
    }
    free(refs);
    return rc != 0 ? rc : first;
}

void expire_report_free(struct expire_report *r)
{
    if (r == NULL)
        return;
    free(r->items);
    free(r);
}

void expire_report_print(FILE *out, const struct expire_report *r)
{
    static const char *const names[] = { "expired: keys shredded, volumes deleted",
                                         "would expire (dry run)",
                                         "HELD: kept past expiry (legal hold)", "FAILED" };
    for (size_t i = 0; i < r->n; i++) {
        const struct expire_item *it = &r->items[i];
        char exp[24] = "";
        if (it->expires != 0)
            mrtime_format_utc(it->expires, exp, sizeof exp);
        fprintf(out, "%s\t%s\texpires %s\t%s%s%s\n", it->mailbox, it->batch_id, exp,
                names[it->action], it->detail[0] ? ": " : "", it->detail);
    }
    fprintf(out, "%zu batch(es) expired, %zu held, %zu failed\n", r->expired, r->held,
            r->failed);
}
