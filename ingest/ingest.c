/* ingest.c — see ingest.h. */
#include "ingest/ingest.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "ingest/msginfo.h"
#include "ingest/state.h"

enum { MSG_NOT_RETURNED = 0, MSG_DONE = 1 };

struct run {
    const struct ingest_options *opt;
    const char *account;
    ingest_state *state;
    router *router;
    imap_conn *conn;
};

/* Per-batch context for the fetch callback. */
struct batch {
    struct run *run;
    const char *mailbox;
    uint32_t uidvalidity;
    const uint32_t *uids;
    unsigned char *status;      /* per UID in uids: MSG_* */
    size_t n;
    bool retry;                 /* these UIDs were refused before: clear them once handled */
    struct ingest_mailbox_report *rep;
};

static double ingest_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void ingest_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int ingest_sha256(const void *data, size_t len, unsigned char md[32], mr_error *err)
{
    unsigned int mdlen = 32;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
        return mr_error_openssl(err, MR_E_CRYPTO, "SHA-256");
    return 0;
}

static long ingest_find_uid(const struct batch *b, uint32_t uid)
{
    size_t lo = 0, hi = b->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->uids[mid] == uid)
            return (long)mid;
        if (b->uids[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* A message handled for good: on a retry, its refusal row goes. */
static int ingest_handled(struct batch *b, long idx, uint32_t uid, mr_error *err)
{
    b->status[idx] = MSG_DONE;
    if (!b->retry)
        return 0;
    return state_refused_clear(b->run->state, b->run->account, b->mailbox, b->uidvalidity, uid,
                               err);
}

/* One fetched message.  Returns non-zero only for failures that must stop the run. */
static int ingest_on_message(void *vctx, const struct imap_message *msg, mr_error *err)
{
    struct batch *b = vctx;
    struct run *run = b->run;
    struct ingest_mailbox_report *rep = b->rep;
    mr_log *log = run->opt->log;
    unsigned char md[32];
    char sha_hex[65], msgid_hash[33], outcome[16];
    struct msginfo info;
    struct route_result route;
    enum sink_outcome out;
    mr_error derr;
    bool seen;
    long idx = ingest_find_uid(b, msg->uid);
    int rc;

    if (idx < 0 || b->status[idx] != MSG_NOT_RETURNED)
        return 0;       /* not asked for (or sent twice): ignore */
    rep->fetched++;
    if (msg->oversized) {
        rep->oversized++;
        rep->bytes += msg->rfc822_size;
        log_warn(log, "mailbox %s UID %u: message of %u bytes is over the size limit of %llu "
                      "bytes; skipped and recorded in the state (not ingested)",
                 b->mailbox, msg->uid, msg->rfc822_size,
                 (unsigned long long)run->opt->max_size);
        if ((rc = state_skip_add(run->state, run->account, b->mailbox, b->uidvalidity,
                                 msg->uid, msg->rfc822_size, "oversized", err)) != 0)
            return rc;
        return ingest_handled(b, idx, msg->uid, err);
    }
    rep->bytes += msg->body_len;
    if ((rc = ingest_sha256(msg->body, msg->body_len, md, err)) != 0)
        return rc;
    ingest_hex(md, 32, sha_hex);
    if ((rc = state_seen_get(run->state, run->account, b->mailbox, sha_hex, &seen, outcome,
                             err)) != 0)
        return rc;
    if (seen) {
        rep->duplicates++;
        log_debug(log, "mailbox %s UID %u: already ingested (same SHA-256, %s)", b->mailbox,
                  msg->uid, outcome);
        return ingest_handled(b, idx, msg->uid, err);
    }
    if ((rc = msginfo_parse(msg->body, msg->body_len, &info, err)) != 0)
        return rc;
    rc = route_message(run->router, run->opt->members, msg->body, msg->body_len, &info, &route,
                       err);
    if (rc != 0) {
        msginfo_free(&info);
        return rc;
    }
    msgid_hash[0] = '\0';
    if (info.message_id != NULL) {
        unsigned char mh[32];
        if ((rc = ingest_sha256(info.message_id, strlen(info.message_id), mh, err)) != 0) {
            msginfo_free(&info);
            return rc;
        }
        ingest_hex(mh, 16, msgid_hash);
    }
    struct sink_message sm = {
        .account = run->account,
        .mailbox = b->mailbox,
        .uidvalidity = b->uidvalidity,
        .uid = msg->uid,
        .internaldate = msg->internaldate,
        .raw = msg->body,
        .len = msg->body_len,
        .sha256_hex = sha_hex,
        .message_id = info.message_id,
        .route = &route,
    };
    mr_error_clear(&derr);
    rc = sink_deliver(run->opt->sink, &sm, &out, &derr);
    if (rc != 0 || out == SINK_REJECTED || route.rule != ROUTE_NONE ||
        !run->opt->queue_unrouted)
        msginfo_free(&info);
    if (rc != 0)
        return mr_error_set(err, rc, "mailbox %s UID %u: %s", b->mailbox, msg->uid, derr.msg);
    if (out == SINK_REJECTED) {
        /* Recorded by UID: the position moves on (nothing else waits for it), every run
         * retries it, and purge keeps it on the server until it is delivered. */
        rep->errors++;
        log_warn(log, "mailbox %s UID %u: not delivered (%s); kept on the server and retried "
                      "next run", b->mailbox, msg->uid, derr.msg);
        if ((rc = state_refused_add(run->state, run->account, b->mailbox, b->uidvalidity,
                                    msg->uid, sha_hex, route_rule_name(route.rule),
                                    derr.msg[0] ? derr.msg : "refused by the sink", err)) != 0)
            return rc;
        b->status[idx] = MSG_DONE;
        return 0;
    }
    if (route.rule == ROUTE_NONE && run->opt->queue_unrouted) {
        /* Also after a duplicate: the run that delivered it may have died before this. */
        struct members_doc qd = {
            .rule = "none", .message_id = sm.message_id, .sha256_hex = sha_hex,
            .received = msg->internaldate, .account = run->account, .mailbox = b->mailbox,
            .uidvalidity = b->uidvalidity, .uid = msg->uid, .raw_len = msg->body_len,
            .no_raw = true,
        };
        bool qdup;
        rc = members_store(run->opt->members, &qd, &qdup, err);
        msginfo_free(&info);
        if (rc != 0)
            return mr_error_prefix(err, "mailbox %s UID %u: unrouted queue", b->mailbox,
                                   msg->uid);
    }
    if (out == SINK_DUPLICATE) {
        rep->duplicates++;
    } else {
        rep->routed[route.rule]++;
        if (route.rule == ROUTE_NONE)
            log_debug(log, "mailbox %s UID %u: unrouted (Message-ID hash %s), queued for manual "
                          "handling", b->mailbox, msg->uid, msgid_hash[0] ? msgid_hash : "none");
        else if (route.rule <= ROUTE_CPR)
            log_debug(log, "mailbox %s UID %u: routed by %s to member %s", b->mailbox, msg->uid,
                      route_rule_name(route.rule), route.member);
    }
    if ((rc = state_seen_add(run->state, run->account, b->mailbox, sha_hex, b->uidvalidity,
                             msg->uid, route_rule_name(route.rule),
                             msgid_hash[0] ? msgid_hash : NULL, err)) != 0)
        return rc;
    return ingest_handled(b, idx, msg->uid, err);
}

/* Fetch and commit one batch.  *blocked is set (and stays set) once a message was not
 * handled (the fetch broke off before it): from then on the stored last UID must not move
 * past it.  A retry batch (last_uid NULL) fetches earlier refusals by UID set and leaves
 * the position alone. */
static int ingest_batch(struct run *run, const char *mailbox, uint32_t uidvalidity,
                        const uint32_t *uids, size_t n, uint32_t *last_uid, bool *blocked,
                        struct ingest_mailbox_report *rep, mr_error *err)
{
    struct batch b = { .run = run, .mailbox = mailbox, .uidvalidity = uidvalidity,
                       .uids = uids, .n = n, .retry = last_uid == NULL, .rep = rep };
    mr_error ferr;
    int rc, frc;

    if ((b.status = calloc(n, 1)) == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    if ((rc = sink_begin(run->opt->sink, err)) != 0) {
        free(b.status);
        return rc;
    }
    if ((rc = state_begin(run->state, err)) != 0) {
        sink_rollback(run->opt->sink);
        free(b.status);
        return rc;
    }
    mr_error_clear(&ferr);
    frc = b.retry ? imap_uid_fetch_set(run->conn, uids, n, ingest_on_message, &b, &ferr)
                  : imap_uid_fetch(run->conn, uids[0], uids[n - 1], ingest_on_message, &b,
                                   &ferr);
    if (frc == 0) {
        /* UIDs the server did not return were expunged meanwhile: nothing to ingest (and
         * no refusal left to retry). */
        for (size_t i = 0; frc == 0 && i < n; i++)
            if (b.status[i] == MSG_NOT_RETURNED)
                frc = ingest_handled(&b, (long)i, uids[i], &ferr);
    }
    if (frc != 0 && (frc == MR_E_DB || frc == MR_E_NOSPACE || frc == MR_E_NOMEM ||
                     frc == MR_E_INTERNAL || frc == MR_E_CRYPTO)) {
        /* Our own side failed: keep nothing of this batch. */
        sink_rollback(run->opt->sink);
        state_rollback(run->state);
        free(b.status);
        return mr_error_set(err, frc, "%s", ferr.msg);
    }
    /* Commit what was handled, even after a broken connection: each message was complete
     * when the callback saw it, and saving it spares the next run the work. */
    for (size_t i = 0; last_uid != NULL && i < n && !*blocked; i++) {
        if (b.status[i] != MSG_DONE) {
            *blocked = true;
            break;
        }
        *last_uid = uids[i];
    }
    if ((rc = sink_commit(run->opt->sink, err)) != 0) {
        state_rollback(run->state);
        free(b.status);
        return rc;
    }
    if ((last_uid != NULL &&
         (rc = state_set(run->state, run->account, mailbox, uidvalidity, *last_uid, err)) != 0) ||
        (rc = state_commit(run->state, err)) != 0) {
        state_rollback(run->state);
        free(b.status);
        return rc;
    }
    free(b.status);
    if (frc != 0)
        return mr_error_set(err, frc, "%s", ferr.msg);
    return 0;
}

static int ingest_mailbox(struct run *run, const char *mailbox,
                          struct ingest_mailbox_report *rep, mr_error *err)
{
    const struct ingest_options *opt = run->opt;
    size_t batch = opt->batch_size ? opt->batch_size : INGEST_DEFAULT_BATCH;
    struct imap_mailbox_info info;
    uint32_t old_uv, last_uid, *uids = NULL;
    size_t n_uids = 0, first = 0;
    bool found, blocked = false;
    int rc;

    if ((rc = imap_examine(run->conn, mailbox, &info, err)) != 0)
        return rc;
    rep->uidvalidity = info.uidvalidity;
    if ((rc = state_get(run->state, run->account, mailbox, &found, &old_uv, &last_uid, err)) !=
        0)
        return rc;
    if (!found || old_uv != info.uidvalidity) {
        if (found) {
            char detail[64];
            rep->uidvalidity_changed = true;
            log_warn(opt->log, "mailbox %s: UIDVALIDITY changed from %u to %u; re-reading the "
                               "mailbox, messages already ingested are skipped by SHA-256",
                     mailbox, old_uv, info.uidvalidity);
            snprintf(detail, sizeof detail, "old=%u new=%u", old_uv, info.uidvalidity);
            if ((rc = state_event(run->state, run->account, mailbox, "uidvalidity-changed",
                                  detail, err)) != 0)
                return rc;
        }
        last_uid = 0;
        if ((rc = state_set(run->state, run->account, mailbox, info.uidvalidity, 0, err)) != 0)
            return rc;
    }
    rep->last_uid = last_uid;
    /* Earlier refusals first: each is retried once per run. */
    if ((rc = state_refused_uids(run->state, run->account, mailbox, info.uidvalidity, &uids,
                                 &n_uids, err)) != 0)
        return rc;
    if (n_uids > 0)
        log_info(opt->log, "mailbox %s: retrying %zu message%s not delivered before", mailbox,
                 n_uids, n_uids == 1 ? "" : "s");
    for (size_t i = 0; i < n_uids; i += batch) {
        size_t n = n_uids - i < batch ? n_uids - i : batch;
        if ((rc = ingest_batch(run, mailbox, info.uidvalidity, uids + i, n, NULL, &blocked, rep,
                               err)) != 0) {
            free(uids);
            return rc;
        }
    }
    free(uids);
    uids = NULL;
    n_uids = 0;
    if (last_uid == UINT32_MAX || (info.uidnext != 0 && last_uid + 1 >= info.uidnext) ||
        info.exists == 0)
        return 0;
    if ((rc = imap_uid_search(run->conn, last_uid + 1, 0, 0, &uids, &n_uids, err)) != 0)
        return rc;
    /* "n:*" also matches the highest UID when it is below n (RFC 3501 6.4.8). */
    while (first < n_uids && uids[first] <= last_uid)
        first++;
    log_info(opt->log, "mailbox %s: %zu new message%s above UID %u", mailbox, n_uids - first,
             n_uids - first == 1 ? "" : "s", last_uid);
    for (size_t i = first; i < n_uids; i += batch) {
        size_t n = n_uids - i < batch ? n_uids - i : batch;
        rc = ingest_batch(run, mailbox, info.uidvalidity, uids + i, n, &last_uid, &blocked, rep,
                          err);
        rep->last_uid = last_uid;
        if (rc != 0)
            break;
    }
    free(uids);
    /* Refusals under an older UIDVALIDITY go once the mailbox has been re-read: a message
     * refused again by then took its first-failure time over (same SHA-256). */
    if (rc == 0 && !blocked)
        rc = state_refused_drop_other(run->state, run->account, mailbox, info.uidvalidity,
                                      err);
    return rc;
}

int ingest_run(const struct ingest_options *opt, struct ingest_report **report, mr_error *err)
{
    struct ingest_report *rep;
    struct imap_options io = *opt->imap;
    struct run run = { .opt = opt };
    char account[512];
    double t0 = ingest_now();
    uint64_t undelivered = 0;
    int rc = 0;

    *report = NULL;
    if ((rep = calloc(1, sizeof *rep)) == NULL ||
        (rep->mailboxes = calloc(opt->n_mailboxes ? opt->n_mailboxes : 1,
                                 sizeof *rep->mailboxes)) == NULL) {
        free(rep);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    rep->n = opt->n_mailboxes;
    for (size_t i = 0; i < opt->n_mailboxes; i++) {
        if ((rep->mailboxes[i].mailbox = strdup(opt->mailboxes[i])) == NULL) {
            ingest_report_free(rep);
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        }
        rep->mailboxes[i].status = MR_E_STATE;
        snprintf(rep->mailboxes[i].error, sizeof rep->mailboxes[i].error, "not run");
    }
    *report = rep;
    ingest_account_key(opt->imap, opt->account, account, sizeof account);
    run.account = account;
    io.max_literal = opt->max_size ? (size_t)opt->max_size : INGEST_DEFAULT_MAX_SIZE;
    if ((rc = route_new(opt->routing, &run.router, err)) != 0)
        return rc;
    if ((rc = state_open(opt->state_db, &run.state, err)) != 0)
        goto out;
    if ((rc = imap_connect(&io, &run.conn, err)) != 0)
        goto out;
    rep->connected = true;
    for (size_t i = 0; i < opt->n_mailboxes; i++) {
        struct ingest_mailbox_report *mb = &rep->mailboxes[i];
        double m0 = ingest_now();
        mr_error merr;

        mr_error_clear(&merr);
        mb->status = 0;
        mb->error[0] = '\0';
        int mrc = ingest_mailbox(&run, opt->mailboxes[i], mb, &merr);
        mb->elapsed_s = ingest_now() - m0;
        undelivered += mb->errors;
        log_info(opt->log, "mailbox %s: fetched %llu, case %llu, sender %llu, cpr %llu, "
                           "unrouted %llu, own %llu, auto %llu, duplicates %llu, oversized %llu, "
                           "errors %llu in %.1f s",
                 mb->mailbox, (unsigned long long)mb->fetched,
                 (unsigned long long)mb->routed[ROUTE_CASE],
                 (unsigned long long)mb->routed[ROUTE_SENDER],
                 (unsigned long long)mb->routed[ROUTE_CPR],
                 (unsigned long long)mb->routed[ROUTE_NONE],
                 (unsigned long long)mb->routed[ROUTE_OWN],
                 (unsigned long long)mb->routed[ROUTE_AUTO],
                 (unsigned long long)mb->duplicates, (unsigned long long)mb->oversized,
                 (unsigned long long)mb->errors, mb->elapsed_s);
        if (mrc != 0) {
            mb->status = mrc;
            snprintf(mb->error, sizeof mb->error, "%s", merr.msg);
            mr_error named = merr;
            named.code = mrc;
            mr_error_prefix(&named, "mailbox %s", mb->mailbox);   /* once, if not there */
            if (i + 1 < opt->n_mailboxes)
                log_error(opt->log, "%s; going on with the next mailbox", named.msg);
            if (rc == 0) {
                rc = mrc;
                if (err != NULL)
                    *err = named;
            }
            /* A missing mailbox leaves the session usable; anything else may not: the
             * other mailboxes get a new connection, so one mailbox never stops them. */
            if (mrc != MR_E_NOTFOUND && mrc != MR_E_PROTOCOL && i + 1 < opt->n_mailboxes) {
                mr_error cerr;
                imap_close(run.conn);
                run.conn = NULL;
                if (imap_connect(&io, &run.conn, &cerr) != 0) {
                    for (size_t k = i + 1; k < opt->n_mailboxes; k++) {
                        rep->mailboxes[k].status = cerr.code;
                        snprintf(rep->mailboxes[k].error, sizeof rep->mailboxes[k].error,
                                 "%s", cerr.msg);
                    }
                    break;
                }
            }
        }
    }
    if (rc == 0 && undelivered > 0)
        rc = mr_error_set(err, MR_E_IO, "%llu message%s not delivered to the %s sink; they "
                                        "will be retried next run",
                          (unsigned long long)undelivered, undelivered == 1 ? "" : "s",
                          sink_name(opt->sink));
out:
    /* Each mailbox's result, for `mailret status`; best effort, the run's own result
     * stands either way. */
    for (size_t i = 0; run.state != NULL && i < rep->n; i++) {
        const struct ingest_mailbox_report *mb = &rep->mailboxes[i];
        char line[MR_ERROR_MSG_MAX];
        mr_error serr;
        if (!rep->connected)
            snprintf(line, sizeof line, "%s", err != NULL ? err->msg : "not connected");
        else if (mb->status != 0)
            snprintf(line, sizeof line, "%s", mb->error);
        else if (mb->errors > 0)
            snprintf(line, sizeof line, "%llu message(s) not delivered",
                     (unsigned long long)mb->errors);
        else
            line[0] = '\0';
        log_scrub(line);
        if (state_run_set(run.state, account, mb->mailbox, line[0] == '\0', line, mb->fetched,
                          &serr) != 0)
            log_warn(opt->log, "mailbox %s: %s", mb->mailbox, serr.msg);
    }
    imap_close(run.conn);
    state_close(run.state);
    route_free(run.router);
    rep->elapsed_s = ingest_now() - t0;
    return rc;
}

void ingest_report_free(struct ingest_report *rep)
{
    if (rep == NULL)
        return;
    for (size_t i = 0; i < rep->n; i++)
        free(rep->mailboxes[i].mailbox);
    free(rep->mailboxes);
    free(rep);
}

void ingest_account_key(const struct imap_options *imap, const char *account, char *out,
                        size_t size)
{
    if (account != NULL)
        snprintf(out, size, "%s", account);
    else
        snprintf(out, size, "%s@%s", imap->user ? imap->user : "", imap->host ? imap->host : "");
}
