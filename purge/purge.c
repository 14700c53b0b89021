/* purge.c — the monthly purge run (see purge.h and docs/PURGE.md). */
#include "purge/purge.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "backup/batchdir.h"
#include "common/mrtime.h"
#include "ingest/state.h"
#include "purge/journal.h"

struct purge_ctx {
    const struct purge_options *opt;
    imap_conn *conn;
    purge_journal *journal;
    const struct archive_trust *trust;
};

static void hook(const struct purge_options *opt, const char *step)
{
    if (opt->hook != NULL)
        opt->hook(opt->hook_ctx, step);
}

/* Mirror a finished batch to the object store (none attached: nothing to do) and read it
 * back: until this returns 0 nothing of the batch may be expunged. */
static int push_batch(const struct purge_options *opt, const char *dir, const char *batch_id,
                      time_t expires, mr_error *err)
{
    struct batchdir_push_stats st;
    int rc;

    if (batchdir_store_current() == NULL)
        return 0;
    rc = batchdir_store_push_stats(dir, expires, &st, err);
    if (rc != 0)
        return mr_error_prefix(err, "batch %s is kept here but is not in the object store; "
                               "nothing deleted (the next purge stores and expunges it)",
                               batch_id);
    log_info(opt->log, "batch %s: in the object store and read back (%zu file(s) stored, "
             "%zu there already)", batch_id, st.put, st.skipped);
    return 0;
}

static void sha_hex(const unsigned char *data, size_t len, char out[65])
{
    static const char hexd[] = "0123456789abcdef";
    unsigned char md[32];

    SHA256(data, len, md);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hexd[md[i] >> 4];
        out[2 * i + 1] = hexd[md[i] & 15];
    }
    out[64] = '\0';
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* A growable UID list. */
struct uid_list {
    uint32_t *v;
    size_t n, cap;
};

static int uids_push(struct uid_list *l, uint32_t uid, mr_error *err)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 256;
        uint32_t *nv = realloc(l->v, nc * sizeof *nv);
        if (nv == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = uid;
    return 0;
}

/* ---- deleting ---------------------------------------------------------------------------- */

static int check_no_other_deleted(struct purge_ctx *c, const uint32_t *uids, size_t n,
                                  mr_error *err)
{
    uint32_t *flagged = NULL;
    size_t n_flagged = 0, others = 0;
    int rc = imap_uid_search_deleted(c->conn, &flagged, &n_flagged, err);

    if (rc != 0)
        return mr_error_prefix(err, "checking for other \\Deleted messages");
    for (size_t i = 0; i < n_flagged; i++)
        if (bsearch(&flagged[i], uids, n, sizeof *uids, cmp_u32) == NULL)
            others++;
    free(flagged);
    if (others > 0)
        return mr_error_set(err, MR_E_UNSUPPORTED,
                            "server lacks UIDPLUS and %zu other message(s) carry \\Deleted: "
                            "plain EXPUNGE would remove them too; nothing deleted", others);
    return 0;
}

/* STORE \Deleted + EXPUNGE exactly uids (sorted), chunk by chunk, so that an interrupted
 * run leaves at most one chunk flagged but not expunged (the resume finishes it). */
static int delete_uids(struct purge_ctx *c, uint32_t *uids, size_t n, const char *resume_step,
                       mr_error *err)
{
    const struct purge_options *opt = c->opt;
    size_t chunk = opt->expunge_chunk ? opt->expunge_chunk : PURGE_DEFAULT_EXPUNGE_CHUNK;
    bool uidplus = imap_has_capability(c->conn, "UIDPLUS");
    int rc = 0;

    if (n == 0)
        return 0;
    qsort(uids, n, sizeof *uids, cmp_u32);
    if (!uidplus) {
        if (!opt->allow_plain_expunge)
            return mr_error_set(err, MR_E_UNSUPPORTED,
                                "IMAP server does not support UIDPLUS: refusing to expunge "
                                "(use --allow-plain-expunge if no one else flags \\Deleted)");
        rc = check_no_other_deleted(c, uids, n, err);
        if (rc != 0)
            return rc;
        chunk = n;  /* one EXPUNGE: each extra round widens the window for others */
    }
    for (size_t pos = 0; rc == 0 && pos < n; pos += chunk) {
        size_t k = n - pos < chunk ? n - pos : chunk;
        rc = imap_uid_store_deleted(c->conn, uids + pos, k, err);
        if (rc == 0)
            hook(opt, resume_step != NULL ? resume_step : "after-store");
        if (rc == 0)
            rc = uidplus ? imap_uid_expunge(c->conn, uids + pos, k, err)
                         : imap_expunge(c->conn, err);
    }
    return rc;
}

/* ---- resuming an interrupted run --------------------------------------------------------- */

struct resume_match {
    struct purge_jmsg *msgs;    /* sorted by uid (same uidvalidity) or by sha (changed) */
    bool *used;
    size_t n;
    bool by_sha;
    time_t cutoff;
    struct uid_list del;
    size_t mismatched;
};

static int cmp_jmsg_sha(const void *a, const void *b)
{
    return strcmp(((const struct purge_jmsg *)a)->sha256, ((const struct purge_jmsg *)b)->sha256);
}

static int cmp_jmsg_uid(const void *a, const void *b)
{
    uint32_t x = ((const struct purge_jmsg *)a)->uid, y = ((const struct purge_jmsg *)b)->uid;

    return x < y ? -1 : x > y;
}

static int resume_cb(void *ctx, const struct imap_message *msg, mr_error *err)
{
    struct resume_match *m = ctx;
    struct purge_jmsg key;
    struct purge_jmsg *hit;
    size_t i;

    if (msg->oversized)
        return 0;   /* cannot be compared, so it is not deleted */
    sha_hex(msg->body, msg->body_len, key.sha256);
    if (!m->by_sha) {
        key.uid = msg->uid;
        hit = bsearch(&key, m->msgs, m->n, sizeof *m->msgs, cmp_jmsg_uid);
        if (hit == NULL)
            return 0;
        if (strcmp(hit->sha256, key.sha256) != 0) {
            m->mismatched++;
            return 0;
        }
        return uids_push(&m->del, msg->uid, err);
    }
    if (msg->internaldate >= m->cutoff)
        return 0;
    hit = bsearch(&key, m->msgs, m->n, sizeof *m->msgs, cmp_jmsg_sha);
    if (hit == NULL)
        return 0;
    /* Identical messages may be archived more than once: each archived copy allows
     * exactly one deletion. */
    i = (size_t)(hit - m->msgs);
    while (i > 0 && strcmp(m->msgs[i - 1].sha256, key.sha256) == 0)
        i--;
    for (; i < m->n && strcmp(m->msgs[i].sha256, key.sha256) == 0; i++)
        if (!m->used[i]) {
            m->used[i] = true;
            return uids_push(&m->del, msg->uid, err);
        }
    return 0;
}

/* A batch that reached "verified" (or "closing" with a valid manifest): delete what of it
 * is still on the server. */
static int resume_delete(struct purge_ctx *c, const struct purge_jbatch *b,
                         const struct imap_mailbox_info *info, struct purge_mailbox_report *rep,
                         mr_error *err)
{
    struct resume_match m;
    uint32_t *uids = NULL;
    size_t n_uids = 0;
    int rc;

    memset(&m, 0, sizeof m);
    m.cutoff = b->cutoff;
    rc = purge_journal_messages(c->journal, b->id, &m.msgs, &m.n, err);
    if (rc != 0)
        return rc;
    if (m.n != b->n_messages) {
        free(m.msgs);
        return mr_error_set(err, MR_E_INTERNAL, "purge journal: batch %s lists %zu of %zu "
                            "messages", b->batch_id, m.n, b->n_messages);
    }
    m.used = calloc(m.n ? m.n : 1, sizeof *m.used);
    if (m.used == NULL) {
        free(m.msgs);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    if (info->uidvalidity == b->uidvalidity) {
        uids = malloc((m.n ? m.n : 1) * sizeof *uids);
        if (uids == NULL)
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < m.n; i++)
            uids[n_uids++] = m.msgs[i].uid;
        if (rc == 0 && n_uids > 0)
            rc = imap_uid_fetch_set(c->conn, uids, n_uids, resume_cb, &m, err);
    } else {
        /* The UIDs mean nothing now: find the archived messages by their SHA-256. */
        log_warn(c->opt->log, "mailbox %s: UIDVALIDITY changed since batch %s was verified; "
                 "matching its messages by SHA-256", b->mailbox, b->batch_id);
        m.by_sha = true;
        qsort(m.msgs, m.n, sizeof *m.msgs, cmp_jmsg_sha);
        rc = imap_uid_search(c->conn, 1, 0, b->cutoff, &uids, &n_uids, err);
        if (rc == 0 && n_uids > 0)
            rc = imap_uid_fetch_set(c->conn, uids, n_uids, resume_cb, &m, err);
    }
    free(uids);
    if (rc == 0 && m.mismatched > 0)
        log_warn(c->opt->log, "mailbox %s: %zu message(s) of batch %s no longer match the "
                 "archived SHA-256 and are left on the server", b->mailbox, m.mismatched,
                 b->batch_id);
    if (rc == 0)
        rc = purge_journal_set_state(c->journal, b->id, PJ_EXPUNGING, err);
    if (rc == 0)
        rc = delete_uids(c, m.del.v, m.del.n, "resume-after-store", err);
    if (rc == 0)
        rc = purge_journal_set_state(c->journal, b->id, PJ_DONE, err);
    if (rc == 0) {
        rep->resumed_batches++;
        rep->resumed_expunged += m.del.n;
        log_info(c->opt->log, "mailbox %s: batch %s finished: %zu message(s) expunged now",
                 b->mailbox, b->batch_id, m.del.n);
        if (c->opt->audit != NULL) {
            char cnt[24];
            snprintf(cnt, sizeof cnt, "%zu", m.del.n);
            const struct audit_field f[] = { { "batch", b->batch_id },
                                             { "mailbox", b->mailbox },
                                             { "expunged", cnt }, { "resumed", "yes" } };
            rc = audit_append(c->opt->audit, "purge.expunge", f, 4, err);
        }
    }
    free(m.del.v);
    free(m.used);
    free(m.msgs);
    return rc;
}

static int resume_batch(struct purge_ctx *c, const struct purge_jbatch *b,
                        const struct imap_mailbox_info *info, struct purge_mailbox_report *rep,
                        mr_error *err)
{
    const struct archive_options *ao = c->opt->archive;
    struct archive_manifest m;
    char dir[4096];
    int rc;

    if (c->opt->dry_run) {
        printf("%s\twould finish interrupted batch %s (journal state %s)\n", b->mailbox,
               b->batch_id, purge_journal_state_name(b->state));
        return 0;
    }
    log_info(c->opt->log, "mailbox %s: batch %s was interrupted in state %s", b->mailbox,
             b->batch_id, purge_journal_state_name(b->state));
    if (b->state == PJ_FETCHING) {
        rc = purge_batch_discard(ao->archive_dir, ao->vault_dir, b->batch_id, c->opt->audit,
                                 c->opt->log, err);
        if (rc == 0)
            rc = purge_journal_set_state(c->journal, b->id, PJ_DISCARDED, err);
        if (rc == 0)
            rep->discarded_batches++;
        return rc;
    }
    /* closing, verified, expunging: the manifest decides whether the batch exists. */
    rc = archive_batch_find(ao->archive_dir, b->batch_id, dir, sizeof dir, err);
    if (rc == 0)
        rc = archive_manifest_read(dir, c->trust, &m, err);
    if (rc == MR_E_NOTFOUND && b->state == PJ_CLOSING) {
        /* Killed while writing or verifying: nothing was deleted; redo it. */
        rc = purge_batch_discard(ao->archive_dir, ao->vault_dir, b->batch_id, c->opt->audit,
                                 c->opt->log, err);
        if (rc == 0)
            rc = purge_journal_set_state(c->journal, b->id, PJ_DISCARDED, err);
        if (rc == 0)
            rep->discarded_batches++;
        return rc;
    }
    if (rc != 0)
        return mr_error_prefix(err, "batch %s (journal state %s): refusing to delete its "
                               "messages", b->batch_id, purge_journal_state_name(b->state));
    if (strcmp(m.batch_id, b->batch_id) != 0 || m.message_count != b->n_messages)
        rc = mr_error_set(err, MR_E_TAMPERED, "batch %s: manifest does not match the purge "
                          "journal (%zu vs %zu messages); refusing to delete", b->batch_id,
                          m.message_count, b->n_messages);
    /* In every state: a push is idempotent (what verifies is not sent again), and a
     * batch whose push was cut off is completed here before anything is expunged. */
    if (rc == 0)
        rc = push_batch(c->opt, dir, b->batch_id, m.expires, err);
    archive_manifest_clear(&m);
    if (rc == 0)
        hook(c->opt, "resume-after-push");
    if (rc == 0 && b->state == PJ_CLOSING)
        rc = purge_journal_set_state(c->journal, b->id, PJ_VERIFIED, err);
    if (rc == 0)
        rc = resume_delete(c, b, info, rep, err);
    return rc;
}

/* ---- a new batch --------------------------------------------------------------------------- */

struct fetch_ctx {
    const struct purge_options *opt;
    struct purge_ctx *c;
    const char *mailbox;
    struct archive_options ao;  /* the batch's options, once it is opened */
    char batch_id[64];
    int64_t jid;                /* journal row, 0 until the batch is opened */
    archive_batch *batch;       /* opened at the first selected message; never in a dry
                                   run, so that a SEARCH superset of only newer messages
                                   makes no batch and no epoch keys */
    uint32_t uidvalidity;
    struct purge_jmsg *msgs;
    size_t n, cap;
    size_t expected;            /* candidates, for the mid-fetch hook */
    unsigned long long bytes;
    const struct state_view *view;  /* the ingest state: what must stay; NULL = nothing */
    struct purge_mailbox_report *rep;
};

static int make_batch_id(time_t now, char out[64], mr_error *err)
{
    unsigned char rnd[4];
    char stamp[24];
    struct tm tm;

    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return mr_error_set(err, MR_E_CRYPTO, "random generator failed");
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(out, 64, "%s-%02x%02x%02x%02x", stamp, rnd[0], rnd[1], rnd[2], rnd[3]);
    return 0;
}

/* Journal first, then the archive: a batch directory never exists that the journal does
 * not know, so a crash anywhere after this leaves something the next run can clean up. */
static int open_batch(struct fetch_ctx *f, mr_error *err)
{
    const struct purge_options *opt = f->opt;
    int rc;

    f->ao = *opt->archive;
    f->ao.mailbox = f->mailbox;
    f->ao.period_end = opt->cutoff;
    f->ao.created = time(NULL);
    rc = mrtime_add_years(f->ao.created, opt->retention_years, opt->zone, &f->ao.expires, err);
    if (rc == 0)
        rc = make_batch_id(f->ao.created, f->batch_id, err);
    f->ao.batch_id = f->batch_id;
    if (rc == 0)
        rc = purge_journal_begin(f->c->journal, f->mailbox, f->uidvalidity, opt->cutoff,
                                 f->batch_id, &f->jid, err);
    if (rc == 0)
        rc = archive_batch_open(&f->ao, &f->batch, err);
    return rc;
}

static int hold(struct purge_mailbox_report *rep, uint32_t uid, const char *why,
                const struct state_refusal *ref, const char *reason, mr_error *err)
{
    struct purge_held *h, *nv;

    if ((nv = realloc(rep->held, (rep->n_held + 1) * sizeof *nv)) == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    rep->held = nv;
    h = &rep->held[rep->n_held++];
    memset(h, 0, sizeof *h);
    h->uid = uid;
    h->why = why;
    if (ref != NULL) {
        snprintf(h->rule, sizeof h->rule, "%s", ref->rule);
        snprintf(h->reason, sizeof h->reason, "%s", ref->reason);
        h->since = ref->first_failed;
        h->attempts = ref->attempts;
    } else {
        snprintf(h->reason, sizeof h->reason, "%s", reason);
    }
    return 0;
}

/* What must stay on the server although it is older than the cutoff: casework the member
 * system has not accepted, and anything ingest has not seen.  Returns the reason class or
 * NULL; in a dry run, a message ingest has not seen yet is counted as pending (the real
 * run ingests it first). */
static const char *must_stay(struct fetch_ctx *f, const struct imap_message *msg,
                             const struct state_refusal **ref)
{
    const struct state_view *v = f->view;

    *ref = NULL;
    if (msg->oversized)
        return "too-large";
    if (v == NULL)
        return NULL;
    if (!v->found || v->uidvalidity != f->uidvalidity || msg->uid > v->last_uid) {
        if (f->opt->dry_run) {
            f->rep->pending_ingest++;
            return NULL;
        }
        return "not-ingested";
    }
    if ((*ref = state_view_refusal(v, msg->uid)) != NULL)
        return "not-delivered";
    return NULL;
}

static int fetch_cb(void *ctx, const struct imap_message *msg, mr_error *err)
{
    struct fetch_ctx *f = ctx;
    const struct state_refusal *ref;
    const char *why;
    int rc;

    progress_add(f->opt->progress, 1, msg->body_len);
    if (msg->internaldate >= f->opt->cutoff)
        return 0;   /* IMAP BEFORE is day-granular: the exact time says it stays */
    if ((why = must_stay(f, msg, &ref)) != NULL) {
        char reason[128];
        if (msg->oversized)
            snprintf(reason, sizeof reason, "%u bytes: larger than purge can fetch",
                     (unsigned)msg->rfc822_size);
        else
            snprintf(reason, sizeof reason, "not yet ingested into the member system");
        if (!f->opt->dry_run)
            log_warn(f->opt->log, "mailbox %s UID %u: held back on the server (%s)",
                     f->mailbox, (unsigned)msg->uid, why);
        return hold(f->rep, msg->uid, why, ref, reason, err);
    }
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 256;
        struct purge_jmsg *nv = realloc(f->msgs, nc * sizeof *nv);
        if (nv == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        f->msgs = nv;
        f->cap = nc;
    }
    if (!f->opt->dry_run && f->batch == NULL) {
        rc = open_batch(f, err);
        if (rc != 0)
            return rc;
    }
    if (f->batch != NULL) {
        struct archive_message am = {
            .uidvalidity = f->uidvalidity, .uid = msg->uid, .internaldate = msg->internaldate,
            .internaldate_tz_min = msg->internaldate_tz_min, .flags = msg->flags,
            .bytes = msg->body, .len = msg->body_len,
        };
        rc = archive_batch_add(f->batch, &am, err);
        if (rc != 0)
            return rc;
    }
    f->msgs[f->n].uid = msg->uid;
    sha_hex(msg->body, msg->body_len, f->msgs[f->n].sha256);
    f->n++;
    f->bytes += msg->body_len;
    if (f->n == f->expected / 2 + 1)
        hook(f->opt, "mid-fetch");
    return 0;
}

static int new_batch(struct purge_ctx *c, const char *mailbox,
                     const struct imap_mailbox_info *info, const struct state_view *view,
                     struct purge_mailbox_report *rep, mr_error *err)
{
    const struct purge_options *opt = c->opt;
    struct fetch_ctx f;
    struct archive_result *res = NULL;
    uint32_t *uids = NULL, *del = NULL;
    size_t n_uids = 0;
    const char *batch_id;
    int64_t jid;
    int rc;

    memset(&f, 0, sizeof f);
    batch_id = f.batch_id;
    f.opt = opt;
    f.c = c;
    f.mailbox = mailbox;
    f.uidvalidity = info->uidvalidity;
    f.view = view;
    f.rep = rep;
    rc = imap_uid_search(c->conn, 1, 0, opt->cutoff, &uids, &n_uids, err);
    if (rc != 0)
        return rc;
    rep->candidates = n_uids;
    hook(opt, "after-search");
    if (n_uids == 0) {
        free(uids);
        return 0;
    }
    f.expected = n_uids;
    /* Without UIDPLUS, refuse before archiving rather than leave a verified batch that
     * cannot be expunged (delete_uids checks again, with the exact UIDs, right before). */
    if (!opt->dry_run && !imap_has_capability(c->conn, "UIDPLUS")) {
        rc = check_no_other_deleted(c, uids, n_uids, err);
        if (rc != 0) {
            free(uids);
            return rc;
        }
    }
    {
        char label[300];
        snprintf(label, sizeof label, "%s %s", opt->dry_run ? "dry run" : "purge", f.mailbox);
        progress_start(opt->progress, label, n_uids);
    }
    rc = imap_uid_fetch_set(c->conn, uids, n_uids, fetch_cb, &f, err);
    progress_finish(opt->progress);
    free(uids);
    rep->selected = f.n;
    rep->bytes = f.bytes;
    jid = f.jid;
    if (opt->dry_run) {
        free(f.msgs);
        return rc;
    }
    if (rc != 0 || f.n == 0) {
        if (f.batch != NULL)
            archive_batch_abort(f.batch);
        if (jid != 0) {
            mr_error jerr;
            if (purge_journal_set_state(c->journal, jid, PJ_DISCARDED, &jerr) != 0)
                log_error(opt->log, "%s", jerr.msg);
        }
        free(f.msgs);
        return rc;
    }
    snprintf(rep->batch_id, sizeof rep->batch_id, "%s", batch_id);
    rc = purge_journal_record(c->journal, jid, f.msgs, f.n, err);
    if (rc != 0) {
        archive_batch_abort(f.batch);
        free(f.msgs);
        return rc;
    }
    hook(opt, "before-close");
    rc = archive_batch_close(f.batch, &res, err);
    if (rc != 0) {
        /* No manifest: nothing may be deleted.  Clean up now (a full disk wants the space
         * back); the error already says what went wrong. */
        mr_error derr;
        if (purge_batch_discard(f.ao.archive_dir, f.ao.vault_dir, batch_id, opt->audit,
                                opt->log, &derr) == 0)
            (void)purge_journal_set_state(c->journal, jid, PJ_DISCARDED, &derr);
        else
            log_error(opt->log, "%s", derr.msg);
        free(f.msgs);
        return mr_error_prefix(err, "batch not verified, nothing deleted");
    }
    hook(opt, "after-close");
    /* Still closing in the journal: a failed or killed push leaves a batch the next run
     * pushes before it expunges. */
    rc = push_batch(opt, res->dir, batch_id, f.ao.expires, err);
    if (rc != 0) {
        free(f.msgs);
        archive_result_free(res);
        return rc;
    }
    hook(opt, "after-push");
    rc = purge_journal_set_state(c->journal, jid, PJ_VERIFIED, err);
    if (rc == 0)
        hook(opt, "after-verified");
    /* Exactly the verified UIDs, which must be exactly the ones journalled. */
    if (rc == 0 && res->n_messages != f.n)
        rc = mr_error_set(err, MR_E_INTERNAL, "batch %s verified %zu of %zu messages",
                          batch_id, res->n_messages, f.n);
    if (rc == 0 && (del = malloc(res->n_messages * sizeof *del)) == NULL)
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < res->n_messages; i++) {
        if (res->uids[i].uidvalidity != info->uidvalidity || res->uids[i].uid != f.msgs[i].uid)
            rc = mr_error_set(err, MR_E_INTERNAL, "batch %s: verified UID list differs from "
                              "the fetched one", batch_id);
        else
            del[i] = res->uids[i].uid;
    }
    rep->archived = res->n_messages;
    rep->sealed_parts = res->sealed_parts;
    rep->sealed_messages = res->sealed_messages;
    if (rc == 0)
        rc = purge_journal_set_state(c->journal, jid, PJ_EXPUNGING, err);
    if (rc == 0)
        rc = delete_uids(c, del, res->n_messages, NULL, err);
    if (rc == 0)
        hook(opt, "after-expunge");
    if (rc == 0)
        rc = purge_journal_set_state(c->journal, jid, PJ_DONE, err);
    if (rc == 0) {
        rep->expunged = res->n_messages;
        if (opt->audit != NULL) {
            char cnt[24], cut[24];
            snprintf(cnt, sizeof cnt, "%zu", res->n_messages);
            mrtime_format_utc(opt->cutoff, cut, sizeof cut);
            const struct audit_field af[] = { { "batch", batch_id }, { "mailbox", mailbox },
                                              { "cutoff", cut }, { "expunged", cnt } };
            rc = audit_append(opt->audit, "purge.expunge", af, 4, err);
        }
    }
    free(del);
    free(f.msgs);
    archive_result_free(res);
    return rc;
}

/* mailbox: its name on the server; key: its name in the journal and the archive
 * (opt->key_prefix + mailbox), which is also rep->mailbox. */
static int purge_mailbox(struct purge_ctx *c, const char *mailbox, const char *key,
                         struct purge_mailbox_report *rep, mr_error *err)
{
    struct imap_mailbox_info info;
    struct purge_jbatch *pending = NULL;
    struct state_view view;
    size_t n_pending = 0;
    int rc;

    memset(&view, 0, sizeof view);
    rc = c->opt->dry_run ? imap_examine(c->conn, mailbox, &info, err)
                         : imap_select(c->conn, mailbox, &info, err);
    if (rc == 0)
        rc = purge_journal_pending(c->journal, key, &pending, &n_pending, err);
    for (size_t i = 0; rc == 0 && i < n_pending; i++)
        rc = resume_batch(c, &pending[i], &info, rep, err);
    free(pending);
    /* Read after this run's ingest, right before the SEARCH: a message that arrives later
     * is above the position read here and stays. */
    if (rc == 0 && c->opt->ingest_state != NULL)
        rc = state_view_read(c->opt->ingest_state, c->opt->account, mailbox, &view, err);
    if (rc == 0)
        rc = new_batch(c, key, &info, c->opt->ingest_state != NULL ? &view : NULL, rep, err);
    state_view_clear(&view);
    return rc;
}

/* UIDs listed in one purge.held record (the count is always complete). */
#define PURGE_AUDIT_HELD_MAX 1000

/* The end of one mailbox: its result in the journal (for check), and in the audit log
 * what failed and what was held back. */
static int record_result(struct purge_ctx *c, const struct purge_mailbox_report *mr,
                         mr_error *err)
{
    const struct purge_options *opt = c->opt;
    struct purge_jresult jr;
    char cut[24], cnt[24];
    int rc = 0;

    if (opt->dry_run)
        return 0;
    memset(&jr, 0, sizeof jr);
    snprintf(jr.mailbox, sizeof jr.mailbox, "%s", mr->mailbox);
    jr.at = time(NULL);
    jr.cutoff = opt->cutoff;
    snprintf(jr.status, sizeof jr.status, "%s", mr->status == 0 ? "ok" : "failed");
    snprintf(jr.error, sizeof jr.error, "%s", mr->error);
    jr.archived = mr->archived;
    jr.expunged = mr->expunged;
    jr.held = mr->n_held;
    if (c->journal != NULL)
        rc = purge_journal_result_set(c->journal, &jr, err);
    if (opt->audit == NULL)
        return rc;
    mrtime_format_utc(opt->cutoff, cut, sizeof cut);
    if (rc == 0 && mr->status != 0) {
        const struct audit_field f[] = { { "mailbox", mr->mailbox }, { "cutoff", cut },
                                         { "error", mr->error } };
        rc = audit_append(opt->audit, "purge.failed", f, 3, err);
    }
    if (rc == 0 && mr->n_held > 0) {
        /* UIDs and reason classes only: no sink text, nothing from the messages. */
        size_t shown = mr->n_held < PURGE_AUDIT_HELD_MAX ? mr->n_held : PURGE_AUDIT_HELD_MAX;
        size_t cap = shown * 32 + 64, used = 0;
        char *list = malloc(cap);
        if (list == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        list[0] = '\0';
        for (size_t i = 0; i < shown; i++) {
            int n = snprintf(list + used, cap - used, "%s%u:%s", i ? "," : "",
                             (unsigned)mr->held[i].uid, mr->held[i].why);
            if (n > 0 && (size_t)n < cap - used)
                used += (size_t)n;
        }
        if (shown < mr->n_held)
            snprintf(list + used, cap - used, ",... %zu more", mr->n_held - shown);
        snprintf(cnt, sizeof cnt, "%zu", mr->n_held);
        const struct audit_field f[] = { { "mailbox", mr->mailbox }, { "cutoff", cut },
                                         { "held", cnt }, { "uids", list } };
        rc = audit_append(opt->audit, "purge.held", f, 4, err);
        free(list);
    }
    return rc;
}

int purge_run(const struct purge_options *opt, struct purge_report **report, mr_error *err)
{
    struct purge_report *r;
    struct purge_ctx c = { .opt = opt, .trust = opt->trust };
    mr_error serr, ierr_ignored;    /* serr: what kept every mailbox from running */
    int rc = 0, src = 0;

    mr_error_clear(&serr);

    *report = NULL;
    r = calloc(1, sizeof *r);
    if (r == NULL || (r->mailboxes = calloc(opt->n_mailboxes ? opt->n_mailboxes : 1,
                                            sizeof *r->mailboxes)) == NULL) {
        free(r);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    r->cutoff = opt->cutoff;
    r->dry_run = opt->dry_run;
    *report = r;
    for (size_t i = 0; i < opt->n_mailboxes; i++)
        if ((size_t)snprintf(r->mailboxes[i].mailbox, sizeof r->mailboxes[i].mailbox, "%s%s",
                             opt->key_prefix != NULL ? opt->key_prefix : "", opt->mailboxes[i])
            >= sizeof r->mailboxes[i].mailbox)
            return mr_error_set(err, MR_E_INVALID, "mailbox name too long");
    r->n = opt->n_mailboxes;
    if (opt->cutoff > time(NULL))
        return mr_error_set(err, MR_E_INVALID, "the cutoff lies in the future");
    /* Ingest before delete.  What it could not deliver stays on the server (the ingest
     * state says which UIDs); it does not stop the rest. */
    if (opt->ingest != NULL && !opt->dry_run) {
        struct ingest_report *ir = NULL;
        mr_error ierr;
        mr_error_clear(&ierr);
        int irc = ingest_run(opt->ingest, &ir, &ierr);
        r->ingested = ir != NULL && ir->connected;
        ingest_report_free(ir);
        if (irc != 0 && !r->ingested) {
            /* Not even connected (TLS, login, state): the purge could not do better, and
             * the one error says why. */
            src = mr_error_set(&serr, irc, "ingest before purge failed: %s; nothing archived "
                                           "or deleted", ierr.msg);
        } else if (irc != 0) {
            r->ingest_status = irc;
            snprintf(r->ingest_error, sizeof r->ingest_error, "%s", ierr.msg);
            log_warn(opt->log, "ingest before purge: %s; purging around what was not "
                               "delivered", ierr.msg);
        }
    }
    if (src == 0 && opt->store_error != NULL && !opt->dry_run)
        src = mr_error_set(&serr, opt->store_error->code != 0 ? opt->store_error->code
                                                              : MR_E_NETWORK,
                           "%s; nothing archived or deleted", opt->store_error->msg);
    if (src == 0)
        src = purge_journal_open(opt->journal_path, &c.journal, &serr);
    else
        (void)purge_journal_open(opt->journal_path, &c.journal, &ierr_ignored);
    if (src == 0)
        src = imap_connect(opt->imap, &c.conn, &serr);
    if (src == 0 && !opt->dry_run && !imap_has_capability(c.conn, "UIDPLUS")
        && !opt->allow_plain_expunge)
        src = mr_error_set(&serr, MR_E_UNSUPPORTED,
                           "IMAP server does not support UIDPLUS: refusing to purge, because "
                           "plain EXPUNGE would also remove messages others flagged \\Deleted "
                           "(--allow-plain-expunge overrides when no one else does); nothing "
                           "archived or deleted");
    for (size_t i = 0; i < opt->n_mailboxes; i++) {
        struct purge_mailbox_report *mr = &r->mailboxes[i];
        mr_error merr;
        int mrc;

        mr_error_clear(&merr);
        mr->attempted = true;
        if (src != 0) {
            mrc = src;
            merr = serr;
        } else {
            mrc = purge_mailbox(&c, opt->mailboxes[i], mr->mailbox, mr, &merr);
        }
        r->held += mr->n_held;
        if (mrc != 0) {
            mr->status = mrc;
            snprintf(mr->error, sizeof mr->error, "%s", merr.msg);
            mr_error named = merr;
            named.code = mrc;
            mr_error_prefix(&named, "mailbox %s", mr->mailbox);   /* once, if not there */
            if (i + 1 < opt->n_mailboxes)
                log_error(opt->log, "%s; nothing unverified deleted, going on with the next "
                                    "mailbox", named.msg);
            if (rc == 0) {
                rc = mrc;
                if (err != NULL)
                    *err = named;
            }
        } else if (!opt->dry_run) {
            log_info(opt->log, "mailbox %s: %zu message(s) archived and expunged%s%s, %zu held "
                               "back", mr->mailbox, mr->expunged,
                     mr->batch_id[0] ? " in batch " : "", mr->batch_id, mr->n_held);
        }
        mr_error rerr;
        if (record_result(&c, mr, &rerr) != 0) {
            log_error(opt->log, "mailbox %s: %s", mr->mailbox, rerr.msg);
            if (rc == 0) {
                rc = rerr.code;
                if (err != NULL) {
                    *err = rerr;
                    mr_error_prefix(err, "mailbox %s", mr->mailbox);
                }
            }
        }
        /* A failure may leave the session unusable: the next mailbox gets a new one. */
        if (src == 0 && mrc != 0 && mrc != MR_E_PROTOCOL && mrc != MR_E_NOTFOUND &&
            i + 1 < opt->n_mailboxes) {
            imap_close(c.conn);
            c.conn = NULL;
            src = imap_connect(opt->imap, &c.conn, &serr);
        }
    }
    if (rc == 0 && r->ingest_status != 0)
        rc = mr_error_set(err, r->ingest_status, "ingest before purge: %s; %zu message(s) held "
                          "back on the server, everything else purged", r->ingest_error,
                          r->held);
    imap_close(c.conn);
    purge_journal_close(c.journal);
    return rc;
}

void purge_report_free(struct purge_report *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->mailboxes[i].held);
    free(r->mailboxes);
    free(r);
}
