/* check.c — the compliance check (see check.h). */
#include "purge/check.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backup/archive.h"
#include "backup/batchdir.h"
#include "backup/ledger.h"
#include "common/audit.h"
#include "common/mrtime.h"
#include "ingest/state.h"
#include "ingest/unrouted.h"
#include "keys/keys.h"
#include "purge/expire.h"
#include "purge/tombstone.h"

/* Bounded copy that says so to the compiler (snprintf "%s" would warn about truncation,
 * which is what we want here: details are one table cell). */
static void copy(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);

    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void set(struct check_batch *b, const char *status, enum check_level level,
                const char *detail)
{
    b->status = status;
    b->level = level;
    copy(b->detail, sizeof b->detail, detail != NULL ? detail : "");
}

static bool first_volume_present(const char *dir)
{
    char vol[BATCHDIR_NAME_MAX], reid[BATCHDIR_NAME_MAX];

    batchdir_volume_name(1, vol);
    batchdir_reid_name(1, reid);
    return batchdir_exists(dir, vol, NULL) || batchdir_exists(dir, reid, NULL);
}

static void check_tombstone(const struct check_options *opt, const char *dir,
                            struct check_batch *b)
{
    struct purge_tombstone t;
    mr_error e;
    int rc = purge_tombstone_read(dir, opt->trust, &t, &e);

    if (rc == MR_E_NOTFOUND) {
        set(b, "incomplete", CHECK_WARN, "no manifest: an interrupted run, or one running now");
        return;
    }
    if (rc != 0) {
        set(b, "damaged", CHECK_VIOLATION, e.msg);
        return;
    }
    snprintf(b->batch_id, sizeof b->batch_id, "%s", t.batch_id);
    b->period_start = t.period_start;
    b->period_end = t.period_end;
    b->created = t.created;
    b->expires = t.expires;
    b->messages = t.message_count;
    snprintf(b->content_key_id, sizeof b->content_key_id, "%s", t.content_key_id);
    snprintf(b->reid_key_id, sizeof b->reid_key_id, "%s", t.reid_key_id);
    if (keys_epoch_present(opt->vault_dir, t.content_key_id)
        || keys_epoch_present(opt->vault_dir, t.reid_key_id))
        set(b, "key-present-after-expiry", CHECK_VIOLATION,
            "a sealed epoch key survived expiry: the batch is not crypto-shredded");
    else if (first_volume_present(dir))
        set(b, "key-present-after-expiry", CHECK_VIOLATION,
            "volumes survived expiry (keys are gone; run `mailret expire` again)");
    else if (t.manifest_unverified)
        set(b, "expired", CHECK_OK, "keys shredded, volumes deleted (its manifest was not "
            "authentic: expired on the vault's record)");
    else
        set(b, "expired", CHECK_OK, "keys shredded, volumes deleted");
}

/* A manifest that does not authenticate: say so, and whether expire can still destroy
 * the batch on the vault's record of its keys. */
static void check_unverifiable(const struct check_options *opt,
                               const struct archive_batch_ref *ref, struct check_batch *b,
                               const mr_error *why)
{
    struct archive_manifest u;
    char detail[2 * MR_ERROR_MSG_MAX + 160], when[24];
    time_t due = 0;
    mr_error e;

    if (why->code != MR_E_TAMPERED || archive_manifest_read_unverified(ref->dir, &u, &e) != 0) {
        set(b, "damaged", CHECK_VIOLATION, why->msg);
        return;
    }
    b->expires = 0;
    snprintf(b->content_key_id, sizeof b->content_key_id, "%s", u.content_key_id);
    snprintf(b->reid_key_id, sizeof b->reid_key_id, "%s", u.reid_key_id);
    if (expire_unverified_due(opt->vault_dir, ref->dir, &u, &due, &e) != 0) {
        snprintf(detail, sizeof detail, "%s; the vault does not vouch for its expiry (%s)",
                 why->msg, e.msg);
    } else {
        b->expires = due;
        mrtime_format_utc(due, when, sizeof when);
        if (due <= opt->at)
            snprintf(detail, sizeof detail, "%s; past expiry (%s per the vault): `mailret "
                     "expire` will shred its keys", why->msg, when);
        else
            snprintf(detail, sizeof detail, "%s; expires %s per the vault", why->msg, when);
    }
    set(b, "UNVERIFIABLE", CHECK_VIOLATION, detail);
    archive_manifest_clear(&u);
}

static void check_batch_dir(const struct check_options *opt, const struct archive_batch_ref *ref,
                            struct check_batch *b)
{
    struct archive_manifest m;
    const char *base = strrchr(ref->dir, '/');
    time_t warn = (time_t)opt->warn_days * 86400;
    char when[24], detail[256];
    mr_error e;

    memset(b, 0, sizeof *b);
    snprintf(b->mailbox, sizeof b->mailbox, "%s", ref->mailbox);
    base = base != NULL ? base + 1 : ref->dir;
    /* "<YYYY-MM>-<batch id>": until a manifest says otherwise, the id is the name's tail. */
    copy(b->batch_id, sizeof b->batch_id, strlen(base) > 8 && base[7] == '-' ? base + 8 : base);
    if (!ref->has_manifest) {
        check_tombstone(opt, ref->dir, b);
        return;
    }
    if (archive_manifest_read(ref->dir, opt->trust, &m, &e) != 0) {
        check_unverifiable(opt, ref, b, &e);
        return;
    }
    snprintf(b->batch_id, sizeof b->batch_id, "%s", m.batch_id);
    snprintf(b->mailbox, sizeof b->mailbox, "%s", m.mailbox);
    b->period_start = m.period_start;
    b->period_end = m.period_end;
    b->created = m.created;
    b->expires = m.expires;
    b->messages = m.message_count;
    snprintf(b->content_key_id, sizeof b->content_key_id, "%s", m.content_key_id);
    snprintf(b->reid_key_id, sizeof b->reid_key_id, "%s", m.reid_key_id);
    /* Only a manifest that authenticated vouches for where the ledger stood. */
    if (m.has_ledger && m.auth != ARCHIVE_AUTH_OVERRIDDEN) {
        b->has_ledger = true;
        b->ledger.count = m.ledger_count;
        copy(b->ledger.head, sizeof b->ledger.head, m.ledger_head);
    }
    detail[0] = '\0';
    for (size_t i = 0; i < m.n_volumes && detail[0] == '\0'; i++) {
        unsigned long long size = 0, rsize = 0;
        if (!batchdir_exists(ref->dir, m.volumes[i].name, &size)
            || !batchdir_exists(ref->dir, m.volumes[i].reid_name, &rsize))
            snprintf(detail, sizeof detail, "%s or %s is missing", m.volumes[i].name,
                     m.volumes[i].reid_name);
        else if (size != m.volumes[i].size || rsize != m.volumes[i].reid_size)
            snprintf(detail, sizeof detail, "%s or %s has the wrong size", m.volumes[i].name,
                     m.volumes[i].reid_name);
    }
    mrtime_format_utc(m.expires, when, sizeof when);
    if (detail[0] != '\0') {
        set(b, "damaged", CHECK_VIOLATION, detail);
    } else if (!keys_epoch_present(opt->vault_dir, m.content_key_id)
               || !keys_epoch_present(opt->vault_dir, m.reid_key_id)) {
        set(b, "key-missing", CHECK_VIOLATION,
            "a sealed epoch key is missing from the vault: the batch cannot be restored");
    } else if (m.hold) {
        char since[24] = "";
        if (m.hold_since != 0)
            mrtime_format_utc(m.hold_since, since, sizeof since);
        snprintf(detail, sizeof detail, "legal hold%s%s%s", since[0] ? " since " : "", since,
                 m.expires <= opt->at ? "; past expiry, kept for the hold" : "");
        set(b, "held", CHECK_OK, detail);
    } else if (m.expires <= opt->at) {
        snprintf(detail, sizeof detail, "expired %s and still restorable: run mailret expire",
                 when);
        set(b, "OVERDUE", CHECK_VIOLATION, detail);
    } else if (m.expires - warn <= opt->at) {
        snprintf(detail, sizeof detail, "expires %s", when);
        set(b, "expiring", CHECK_WARN, detail);
    } else {
        set(b, "ok", CHECK_OK, NULL);
    }
    archive_manifest_clear(&m);
}

/* ---- mailboxes --------------------------------------------------------------------------- */

struct older_ctx {
    time_t cutoff;
    size_t older;
    uint32_t uidvalidity;
    const struct state_view *view;      /* NULL: not classified */
    struct check_mailbox *mb;
};

static int older_cb(void *ctx, const struct imap_message *msg, mr_error *err)
{
    struct older_ctx *o = ctx;
    const struct state_view *v = o->view;
    const struct state_refusal *ref;

    (void)err;
    if (msg->internaldate >= o->cutoff)
        return 0;
    o->older++;
    if (v == NULL) {
        o->mb->not_purged++;
    } else if (!v->found || v->uidvalidity != o->uidvalidity || msg->uid > v->last_uid) {
        o->mb->not_ingested++;
    } else if ((ref = state_view_refusal(v, msg->uid)) != NULL) {
        o->mb->held++;
        if (o->mb->held_since == 0 || ref->first_failed < o->mb->held_since) {
            o->mb->held_since = ref->first_failed;
            copy(o->mb->held_reason, sizeof o->mb->held_reason, ref->reason);
        }
    } else {
        o->mb->not_purged++;
    }
    return 0;
}

/* The mailbox's verdict from its classes of old messages. */
static void judge_mailbox(const struct check_options *opt, struct check_mailbox *mb)
{
    char when[24], since[24], part[MR_ERROR_MSG_MAX + 128];
    size_t used = 0;

    mrtime_format_utc(mb->cutoff, when, sizeof when);
    mb->older = mb->held + mb->not_ingested + mb->not_purged;
    if (mb->older == 0) {
        mb->status = "ok";
        mb->level = CHECK_OK;
        return;
    }
    mb->detail[0] = '\0';
#define ADD(...)                                                                            \
    do {                                                                                    \
        snprintf(part, sizeof part, __VA_ARGS__);                                           \
        if (used < sizeof mb->detail - 1) {                                                 \
            copy(mb->detail + used, sizeof mb->detail - used, part);                        \
            used += strlen(mb->detail + used);                                              \
        }                                                                                   \
    } while (0)
    ADD("%zu message(s) older than the cutoff %s", mb->older, when);
    if (mb->held > 0) {
        mrtime_format_utc(mb->held_since, since, sizeof since);
        ADD("; %zu held back: not delivered to the member system since %s (%s)", mb->held,
            since, mb->held_reason);
    }
    if (mb->not_ingested > 0)
        ADD("; %zu not ingested yet (held back until ingest delivers them)", mb->not_ingested);
    if (mb->not_purged > 0) {
        if (!mb->last.found)
            ADD("; %zu not purged: no purge recorded", mb->not_purged);
        else if (strcmp(mb->last.status, "ok") != 0)
            ADD("; %zu not purged: purge failed: %s", mb->not_purged, mb->last.error);
        else
            ADD("; %zu not purged: the last purge succeeded before they were old enough or "
                "arrived", mb->not_purged);
    }
#undef ADD
    if (mb->not_ingested > 0 || mb->not_purged > 0) {
        mb->status = "NOT PURGED";
        mb->level = CHECK_VIOLATION;
    } else {
        mb->status = "HELD BACK";
        mb->level = opt->at - mb->held_since >= (time_t)opt->held_days * 86400
                        ? CHECK_VIOLATION : CHECK_WARN;
    }
}

static void check_mailboxes(const struct check_options *opt, const struct check_account *acc,
                            size_t n_acc, struct check_report *r)
{
    imap_conn *conn = NULL;
    time_t cutoff = 0;
    mr_error e, ce;
    int rc, crc = 0;
    size_t connected = n_acc;   /* the account conn belongs to */

    rc = mrtime_month_start(opt->at - opt->grace, opt->zone != NULL ? opt->zone
                                                                    : MRTIME_DEFAULT_ZONE,
                            &cutoff, &e);
    for (size_t i = 0; i < r->n_mailboxes; i++) {
        struct check_mailbox *mb = &r->mailboxes[i];
        const struct check_account *a = &acc[mb->account];
        struct imap_mailbox_info info;
        struct state_view view;
        struct older_ctx oc = { .cutoff = cutoff, .mb = mb };
        uint32_t *uids = NULL;
        size_t n = 0;
        mr_error me;
        int mrc = rc;

        memset(&view, 0, sizeof view);
        memset(&info, 0, sizeof info);
        mb->cutoff = cutoff;
        if (mrc == 0 && connected != mb->account) {
            /* Each account on its own connection, made when its first mailbox comes. */
            imap_close(conn);
            conn = NULL;
            connected = mb->account;
            crc = imap_connect(a->imap, &conn, &ce);
        }
        if (mrc == 0 && crc != 0) {
            mrc = crc;
            e = ce;
        }
        if (mrc != 0) {
            me = e;
        } else {
            mrc = imap_examine(conn, mb->name, &info, &me);
            oc.uidvalidity = info.uidvalidity;
            if (mrc == 0 && opt->ingest_state != NULL) {
                mrc = state_view_read(opt->ingest_state, a->account, mb->name, &view, &me);
                oc.view = &view;
            }
            /* SEARCH BEFORE is a superset (whole days in the server's zone): the exact
             * INTERNALDATE decides. */
            if (mrc == 0)
                mrc = imap_uid_search(conn, 1, 0, cutoff, &uids, &n, &me);
            if (mrc == 0 && n > 0)
                mrc = imap_uid_fetch_set(conn, uids, n, older_cb, &oc, &me);
            free(uids);
        }
        state_view_clear(&view);
        if (mrc != 0) {
            mb->status = "error";
            mb->level = CHECK_VIOLATION;
            snprintf(mb->detail, sizeof mb->detail, "cannot check: %s", me.msg);
        } else {
            judge_mailbox(opt, mb);
        }
    }
    imap_close(conn);
}

/* ---- the vault: every key file must belong to a batch -------------------------------- */

static bool key_owned(const struct check_report *r, const char *id, const char *meta_batch)
{
    for (size_t i = 0; i < r->n_batches; i++) {
        const struct check_batch *b = &r->batches[i];
        if (strcmp(b->content_key_id, id) == 0 || strcmp(b->reid_key_id, id) == 0)
            return true;
        /* an interrupted or running batch: its directory exists, its manifest not yet */
        if (meta_batch[0] != '\0' && strcmp(b->status, "incomplete") == 0
            && strcmp(b->batch_id, meta_batch) == 0)
            return true;
    }
    return false;
}

static int push_row(struct check_report *r, size_t *cap, struct check_batch **out)
{
    if (r->n_batches == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct check_batch *nv = realloc(r->batches, nc * sizeof *nv);
        if (nv == NULL)
            return MR_E_NOMEM;
        r->batches = nv;
        *cap = nc;
    }
    *out = &r->batches[r->n_batches++];
    memset(*out, 0, sizeof **out);
    snprintf((*out)->mailbox, sizeof (*out)->mailbox, "(vault)");
    return 0;
}

static int check_vault(const struct check_options *opt, struct check_report *r, size_t cap,
                       mr_error *err)
{
    char file_id[KEYS_ID_LEN + 1];
    DIR *d = opendir(opt->vault_dir);
    struct dirent *de;
    char (*ids)[KEYS_ID_LEN + 1] = NULL;
    size_t n_ids = 0, id_cap = 0, n_batches = r->n_batches;
    int rc = 0;

    if (d == NULL)
        return errno == ENOENT ? 0 : mr_error_errno(err, MR_E_IO, errno, "cannot read %s",
                                                    opt->vault_dir);
    while (rc == 0 && (de = readdir(d)) != NULL) {
        bool known = false, key_file = false;
        struct check_batch *b;
        if (strstr(de->d_name, ".tmp.") != NULL) {
            rc = push_row(r, &cap, &b);
            if (rc == 0) {
                char detail[600];
                snprintf(detail, sizeof detail, "%s: left by an interrupted write",
                         de->d_name);
                set(b, "stale-temp", CHECK_WARN, detail);
            }
            continue;
        }
        key_file = keys_vault_epoch_file(de->d_name, file_id);
        if (!key_file)
            continue;
        for (size_t i = 0; i < n_ids && !known; i++)
            known = strcmp(ids[i], file_id) == 0;
        if (known)
            continue;
        if (n_ids == id_cap) {
            size_t nc = id_cap ? id_cap * 2 : 64;
            char(*nv)[KEYS_ID_LEN + 1] = realloc(ids, nc * sizeof *nv);
            if (nv == NULL) {
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
                break;
            }
            ids = nv;
            id_cap = nc;
        }
        memcpy(ids[n_ids], file_id, sizeof file_id);
        n_ids++;
    }
    closedir(d);
    for (size_t i = 0; rc == 0 && i < n_ids; i++) {
        char batch[80] = "", detail[600];
        time_t exp;
        mr_error me;
        struct check_batch *b;
        struct check_report view = *r;
        view.n_batches = n_batches;     /* the batches, not the rows added here */
        (void)keys_epoch_meta_read(opt->vault_dir, ids[i], batch, &exp, &me);
        if (key_owned(&view, ids[i], batch))
            continue;
        if (push_row(r, &cap, &b) != 0) {
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
            break;
        }
        copy(b->batch_id, sizeof b->batch_id, batch);
        snprintf(detail, sizeof detail, "epoch key %s%s%s%s belongs to no batch or tombstone "
                 "in the archive: nothing would ever shred it", ids[i],
                 keys_epoch_present(opt->vault_dir, ids[i]) ? " (sealed private key)" : "",
                 batch[0] ? ", made for batch " : " (no metadata)", batch);
        set(b, "orphan-key", CHECK_VIOLATION, detail);
    }
    free(ids);
    return rc;
}

static int cmp_batch(const void *a, const void *b)
{
    const struct check_batch *x = a, *y = b;
    int c = strcmp(x->mailbox, y->mailbox);

    if (c != 0)
        return c;
    return x->created < y->created ? -1 : x->created > y->created;
}

/* The unrouted queue is no compliance matter (the mail stays on the server until purged and
 * archived either way) but work piling up: warnings only. */
static void check_unrouted(const struct check_options *opt, struct check_report *r)
{
    struct unrouted_backlog b;
    mr_error e;
    bool count, age;

    r->unrouted.status = "skipped";
    r->unrouted.level = CHECK_OK;
    r->unrouted.warn_count = opt->unrouted_warn_count;
    r->unrouted.warn_days = opt->unrouted_warn_days;
    if (opt->members_db == NULL)
        return;
    if (unrouted_backlog_read(opt->members_db, &b, &e) != 0) {
        r->unrouted.status = "error";
        r->unrouted.level = CHECK_WARN;
        snprintf(r->unrouted.detail, sizeof r->unrouted.detail, "%s", e.msg);
        return;
    }
    r->unrouted.waiting = b.waiting;
    r->unrouted.oldest_days = b.waiting > 0 && b.oldest > 0 && r->at > b.oldest
                              ? (long long)((r->at - b.oldest) / 86400) : 0;
    count = opt->unrouted_warn_count > 0 && b.waiting > (long long)opt->unrouted_warn_count;
    age = opt->unrouted_warn_days > 0 && r->unrouted.oldest_days > opt->unrouted_warn_days;
    r->unrouted.status = count || age ? "BACKLOG" : "ok";
    r->unrouted.level = count || age ? CHECK_WARN : CHECK_OK;
    if (count || age)
        snprintf(r->unrouted.detail, sizeof r->unrouted.detail,
                 "%lld waiting (warn above %u), the oldest for %lld days (warn above %u):"
                 " mailret unrouted list", (long long)b.waiting, opt->unrouted_warn_count,
                 r->unrouted.oldest_days, opt->unrouted_warn_days);
}

/* ---- the erasure ledger: authentic, and not older than any manifest saw it ---------- */

static void ledger_broken(struct check_report *r, const char *why)
{
    r->ledger.status = "BROKEN";
    copy(r->ledger.detail, sizeof r->ledger.detail, why);
    /* One line, and no identifier even if a bug let one into a message. */
    for (char *p = r->ledger.detail; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    log_scrub(r->ledger.detail);
}

static void check_ledger(const struct check_options *opt, struct check_report *r)
{
    const keys_keyring *kr = opt->trust != NULL ? opt->trust->keyring : NULL;
    const struct check_batch *newest = NULL;
    struct ledger_anchor have;
    ledger_reader *l = NULL;
    struct stat st;
    mr_error e;
    int rc;

    r->ledger.status = "skipped";
    if (opt->ledger_path == NULL)
        return;
    for (size_t i = 0; i < r->n_batches; i++) {
        const struct check_batch *b = &r->batches[i];
        if (b->has_ledger && (newest == NULL || b->ledger.count > newest->ledger.count))
            newest = b;
    }
    /* Created by the first purge, backup or erase: missing is harmless until a manifest
     * has anchored an entry, and deletion after that. */
    if (lstat(opt->ledger_path, &st) != 0 && errno == ENOENT) {
        char why[MR_ERROR_MSG_MAX];
        if (newest == NULL || newest->ledger.count == 0) {
            r->ledger.status = "absent";
            return;
        }
        snprintf(why, sizeof why, "erasure ledger missing, but batch %.80s anchored %llu "
                 "entries", newest->batch_id, newest->ledger.count);
        ledger_broken(r, why);
        return;
    }
    mr_error_clear(&e);
    rc = ledger_open(opt->ledger_path, kr, &l, &e);
    if (rc != 0) {
        ledger_broken(r, e.msg);
        return;
    }
    ledger_anchor_get(l, &have);
    r->ledger.entries = have.count;
    r->ledger.status = "ok";
    /* Every anchor, so that a rewrite behind an older batch is caught too; the report
     * names the batch with the most entries among those that disagree. */
    newest = NULL;
    for (size_t i = 0; i < r->n_batches; i++) {
        const struct check_batch *b = &r->batches[i];
        mr_error ae;
        if (!b->has_ledger)
            continue;
        r->ledger.anchors++;
        if (ledger_check_anchor(l, &b->ledger, &ae) != 0
            && (newest == NULL || b->ledger.count > newest->ledger.count)) {
            newest = b;
            e = ae;
        }
    }
    ledger_free(l);
    if (newest != NULL) {
        mr_error_prefix(&e, "checked against batch %s", newest->batch_id);
        ledger_broken(r, e.msg);
    }
}

int check_run(const struct check_options *opt, struct check_report **report, mr_error *err)
{
    struct archive_batch_ref *refs = NULL;
    struct check_report *r;
    /* Without accounts, the one the single-account fields describe. */
    const struct check_account single = { .imap = opt->imap, .mailboxes = opt->mailboxes,
                                          .n_mailboxes = opt->n_mailboxes,
                                          .account = opt->account };
    const struct check_account *acc = &single;
    size_t n_refs = 0, n_acc = 1, n_mb = 0;
    int rc;

    *report = NULL;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    r->at = opt->at;
    if (opt->n_accounts > 0) {
        acc = opt->accounts;
        n_acc = opt->n_accounts;
    }
    for (size_t i = 0; i < n_acc; i++)
        n_mb += acc[i].n_mailboxes;
    rc = archive_batch_list(opt->archive_dir, NULL, &refs, &n_refs, err);
    if (rc != 0) {
        free(r);
        return rc;
    }
    r->batches = calloc(n_refs ? n_refs : 1, sizeof *r->batches);
    r->mailboxes = calloc(n_mb ? n_mb : 1, sizeof *r->mailboxes);
    if (r->batches == NULL || r->mailboxes == NULL) {
        free(refs);
        check_report_free(r);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n_refs; i++)
        check_batch_dir(opt, &refs[i], &r->batches[i]);
    r->n_batches = n_refs;
    free(refs);
    rc = opt->vault_dir != NULL ? check_vault(opt, r, n_refs ? n_refs : 1, err) : 0;
    if (rc != 0) {
        check_report_free(r);
        return rc;
    }
    qsort(r->batches, r->n_batches, sizeof *r->batches, cmp_batch);

    r->n_mailboxes = 0;
    for (size_t a = 0; a < n_acc; a++) {
        for (size_t i = 0; i < acc[a].n_mailboxes; i++) {
            struct check_mailbox *mb = &r->mailboxes[r->n_mailboxes++];
            mb->account = a;
            snprintf(mb->name, sizeof mb->name, "%s", acc[a].mailboxes[i]);
            snprintf(mb->mailbox, sizeof mb->mailbox, "%s%s",
                     acc[a].key_prefix != NULL ? acc[a].key_prefix : "", acc[a].mailboxes[i]);
            mb->status = "skipped";
            /* The last purge's result, online or not. */
            mr_error je;
            if (opt->journal_path != NULL &&
                purge_journal_result_read(opt->journal_path, mb->mailbox, &mb->last, &je) != 0)
                log_warn(opt->log, "mailbox %s: %s", mb->mailbox, je.msg);
        }
    }
    r->offline = n_acc == 0 || acc[0].imap == NULL;
    if (!r->offline)
        check_mailboxes(opt, acc, n_acc, r);

    check_unrouted(opt, r);

    r->audit_status = "skipped";
    if (opt->audit_path != NULL) {
        mr_error e;
        if (audit_verify(opt->audit_path, &r->audit_records, &e) == 0) {
            r->audit_status = "ok";
        } else {
            r->audit_status = "BROKEN";
            snprintf(r->audit_detail, sizeof r->audit_detail, "%s", e.msg);
        }
    }

    check_ledger(opt, r);

    for (size_t i = 0; i < r->n_batches; i++) {
        enum check_level l = r->batches[i].level;
        r->warnings += l == CHECK_WARN;
        r->violations += l == CHECK_VIOLATION;
    }
    for (size_t i = 0; i < r->n_mailboxes; i++) {
        enum check_level l = r->mailboxes[i].level;
        r->unchecked += strcmp(r->mailboxes[i].status, "error") == 0;
        r->warnings += l == CHECK_WARN;
        r->violations += l == CHECK_VIOLATION;
    }
    if (strcmp(r->audit_status, "BROKEN") == 0)
        r->violations++;
    if (strcmp(r->ledger.status, "BROKEN") == 0)
        r->violations++;
    r->insecure_tls = opt->insecure_tls;
    if (r->insecure_tls)
        r->violations++;
    r->warnings += r->unrouted.level == CHECK_WARN;
    r->level = r->violations > 0 ? CHECK_VIOLATION : r->warnings > 0 ? CHECK_WARN : CHECK_OK;
    *report = r;
    return 0;
}

void check_report_free(struct check_report *r)
{
    if (r == NULL)
        return;
    free(r->batches);
    free(r->mailboxes);
    free(r);
}
