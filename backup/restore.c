/* restore.c — see restore.h. */
#include "backup/restore.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backup/archive.h"
#include "backup/ledger.h"
#include "backup/locator.h"
#include "backup/reader.h"
#include "common/progress.h"
#include "keys/keys.h"

/* Load the ledger, authenticate it, and check it against the anchor of every signed
 * manifest in the archive: a ledger cut back to before the newest batch, or rewritten,
 * is refused. */
static int ledger_load(const struct restore_options *o, char ***entries, size_t *n,
                       size_t *n_anchors, mr_error *err)
{
    struct archive_batch_ref *refs = NULL;
    size_t n_refs = 0, anchors = 0;
    ledger_reader *l = NULL;
    int rc = ledger_open(o->ledger_path, o->trust->keyring, &l, err);

    if (rc == 0)
        rc = archive_batch_list(o->archive_dir, NULL, &refs, &n_refs, err);
    for (size_t i = 0; rc == 0 && i < n_refs; i++) {
        struct archive_manifest m;
        mr_error merr;
        if (!refs[i].has_manifest)
            continue;
        /* A manifest that does not authenticate anchors nothing (and is refused if
         * selected). */
        if (archive_manifest_read(refs[i].dir, o->trust, &m, &merr)
            != 0)
            continue;
        if (m.has_ledger && m.auth != ARCHIVE_AUTH_OVERRIDDEN) {
            struct ledger_anchor a = { .count = m.ledger_count };
            memcpy(a.head, m.ledger_head, sizeof a.head);
            rc = ledger_check_anchor(l, &a, err);
            if (rc != 0)
                mr_error_prefix(err, "%s (checked against batch %s)", o->ledger_path,
                                m.batch_id);
            anchors++;
        }
        archive_manifest_clear(&m);
    }
    free(refs);
    if (rc == 0)
        rc = ledger_entries(l, o->it_key, entries, n, err);
    *n_anchors = anchors;
    ledger_free(l);
    return rc;
}

struct run {
    const struct restore_options *opt;
    struct restore_stats *stats;
    char **ledger;
    size_t n_ledger;
    restore_dest *out;
    const char *batch_id;
    const char *mailbox;
    char wanted_mid[LOCATOR_MID_MAX];
    size_t batch_listed;        /* list_only: this batch's messages and bytes */
    uint64_t batch_bytes;
    unsigned pseudonym_epoch;       /* the batch's, from its manifest */
};

/* list_only: one message a restore would bring back. */
static void restore_count(struct run *r, size_t bytes)
{
    r->batch_listed++;
    r->batch_bytes += bytes;
    r->stats->listed++;
    r->stats->listed_bytes += bytes;
}

static bool has_token(const struct index_entry *e, const char *const *toks, size_t n)
{
    for (size_t i = 0; i < e->n_tokens; i++)
        for (size_t j = 0; j < n; j++)
            if (strcmp(e->tokens[i], toks[j]) == 0)
                return true;
    return false;
}

/* A person's token selects only in batches of the pseudonym epoch it was made under. */
static bool has_person(const struct run *r, const struct index_entry *e)
{
    const struct restore_options *o = r->opt;

    for (size_t j = 0; j < o->n_tokens; j++)
        if ((o->token_epochs == NULL || o->token_epochs[j] == r->pseudonym_epoch)
            && has_token(e, &o->tokens[j], 1))
            return true;
    return false;
}

static int want(void *ctx, const struct index_entry *e)
{
    struct run *r = ctx;
    const struct restore_options *o = r->opt;

    if ((o->from != 0 && e->internaldate < o->from) || (o->to != 0 && e->internaldate >= o->to)
        || (o->n_tokens > 0 && !has_person(r, e))) {
        r->stats->not_selected++;
        return 0;
    }
    /* The ledger wins over every selection: erased people stay erased. */
    if (has_token(e, (const char *const *)r->ledger, r->n_ledger)) {
        r->stats->erased++;
        return 0;
    }
    /* Listing needs the bytes only to match a Message-ID: otherwise nothing is decrypted. */
    if (o->list_only && r->wanted_mid[0] == '\0') {
        restore_count(r, o->pseudonymised ? e->pseudo_size : e->size);
        return 0;
    }
    return 1;
}

/* The same reading of the header as the locator's digest, so both paths agree. */
static bool message_id_is(const unsigned char *msg, size_t len, const char *wanted)
{
    char val[LOCATOR_MID_MAX];

    return locator_message_id(msg, len, val, sizeof val) && strcmp(val, wanted) == 0;
}

static int emit(void *ctx, const struct reader_message *m, mr_error *err)
{
    struct run *r = ctx;
    const unsigned char *bytes = m->orig != NULL ? m->orig : m->pseudo;
    size_t len = m->orig != NULL ? m->orig_len : m->pseudo_len;
    char unique[128];
    int rc;

    if (r->wanted_mid[0] != '\0' && !message_id_is(bytes, len, r->wanted_mid)) {
        r->stats->not_selected++;
        return 0;
    }
    if (r->opt->list_only) {
        restore_count(r, len);
        return 0;
    }
    snprintf(unique, sizeof unique, "%s-%u-%u", r->batch_id, (unsigned)m->idx->uidvalidity,
             (unsigned)m->idx->uid);
    struct restore_msg rm = {
        .bytes = bytes, .len = len, .flags = m->idx->flags,
        .internaldate = m->idx->internaldate, .tz_min = m->idx->tz_min, .unique = unique,
    };
    bool dup = false;
    rc = restore_dest_put(r->out, &rm, &dup, err);
    progress_add(r->opt->progress, 1, len);
    if (rc == RESTORE_REFUSED) {
        r->stats->refused++;
        return 0;
    }
    if (rc == 0 && dup) {
        r->stats->duplicates++;
    } else if (rc == 0) {
        r->stats->restored++;
        if (r->opt->restored != NULL)
            r->opt->restored(r->opt->restored_ctx, r->mailbox, r->batch_id,
                             m->idx->internaldate);
    }
    return rc;
}

static bool targeted(const struct restore_options *o, const struct run *r)
{
    return o->from != 0 || o->to != 0 || o->n_tokens > 0 || r->wanted_mid[0] != '\0';
}

/* The locator's verdict for one message.  Only a pre-filter: what it lets through is
 * checked again against the volume's own index (want) and bytes (emit). */
static bool located(const struct run *r, const unsigned char mid_dg[LOCATOR_MID_DIGEST],
                    const struct locator_entry *e)
{
    const struct restore_options *o = r->opt;
    bool tok = o->n_tokens == 0;

    if ((o->from != 0 && e->internaldate < o->from) || (o->to != 0 && e->internaldate >= o->to))
        return false;
    for (size_t i = 0; !tok && i < e->n_tokens; i++)
        for (size_t j = 0; !tok && j < o->n_tokens; j++)
            tok = strcmp(e->tokens[i], o->tokens[j]) == 0;
    if (!tok)
        return false;
    /* A pseudonymised restore compares the Message-ID of the archived bytes, which the
     * locator's digest (of the original) need not match: the volumes decide. */
    return r->wanted_mid[0] == '\0' || o->pseudonymised || locator_mid_is(e, mid_dg);
}

/* For a targeted restore: which of the batch's volumes hold a candidate.  *mask stays
 * NULL (read every volume) when the batch has no locator, or one that is not authentic,
 * which is said and audited and then ignored. */
static int select_volumes(struct run *r, const char *dir, const struct archive_manifest *m,
                          EVP_PKEY *reid_key, bool **mask, mr_error *err)
{
    const struct restore_options *o = r->opt;
    locator *l = NULL;
    unsigned char mid_dg[LOCATOR_MID_DIGEST] = { 0 };
    mr_error lerr;
    int rc;

    *mask = NULL;
    mr_error_clear(&lerr);
    rc = reid_key != NULL ? locator_open(dir, m, reid_key, &l, &lerr)
                          : mr_error_set(&lerr, MR_E_NOTFOUND, "batch %s: no reid key to open "
                                         "its locator", m->batch_id);
    if (rc == MR_E_NOMEM)
        return mr_error_set(err, rc, "%s", lerr.msg);
    if (rc == MR_E_NOTFOUND) {
        log_info(o->log, "%s: reading every volume", lerr.msg);
        r->stats->slow_batches++;
        return 0;
    }
    if (rc != 0) {
        const struct audit_field f[] = { { "batch", m->batch_id }, { "problem", lerr.msg } };
        log_warn(o->log, "%s: NOT USED; reading every volume", lerr.msg);
        r->stats->slow_batches++;
        r->stats->locators_refused++;
        return o->audit != NULL ? audit_append(o->audit, "restore.locator_refused", f, 2, err)
                                : 0;
    }
    *mask = calloc(m->n_volumes ? m->n_volumes : 1, sizeof **mask);
    if (*mask == NULL) {
        locator_free(l);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    if (r->wanted_mid[0] != '\0')
        locator_mid_digest(l, r->wanted_mid, mid_dg);
    for (size_t i = 0; i < locator_count(l); i++) {
        const struct locator_entry *e = locator_at(l, i);
        if (located(r, mid_dg, e))
            (*mask)[e->volume - 1] = true;
    }
    locator_free(l);
    for (size_t i = 0; i < m->n_volumes; i++)
        if (!(*mask)[i]) {
            r->stats->volumes_skipped++;
            r->stats->not_selected += m->volumes[i].messages;
        }
    r->stats->located_batches++;
    return 0;
}

static bool any_selected(const bool *mask, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (mask[i])
            return true;
    return false;
}

static int restore_batch(struct run *r, const char *dir, mr_error *err)
{
    const struct restore_options *o = r->opt;
    struct archive_manifest m;
    EVP_PKEY *ck = NULL, *rk = NULL, *lk = NULL;
    bool *mask = NULL;
    int rc = archive_manifest_read(dir, o->trust, &m, err);

    if (rc != 0)
        return rc;
    if (m.auth == ARCHIVE_AUTH_OVERRIDDEN) {
        /* Restoring what could not be authenticated is IT's explicit decision: said
         * loudly and recorded with the reason it did not verify. */
        const struct audit_field f[] = { { "batch", m.batch_id },
                                         { "problem", m.auth_problem } };
        log_warn(o->log, "batch %s: NOT AUTHENTIC (%s): restoring anyway (--trust-unsigned)",
                 m.batch_id, m.auth_problem);
        r->stats->unverified++;
        if (o->audit != NULL && (rc = audit_append(o->audit, "restore.unverified_batch", f, 2,
                                                   err)) != 0)
            goto done;
    } else if (m.auth == ARCHIVE_AUTH_LEGACY_HMAC) {
        log_warn(o->log, "batch %s: legacy manifest (HMAC, format 1), authenticated with the "
                 "host's manifest key", m.batch_id);
        r->stats->legacy++;
    }
    /* A listing re-identifies nothing unless it must read a Message-ID. */
    if (!o->pseudonymised && (!o->list_only || r->wanted_mid[0] != '\0'))
        rc = keys_epoch_unseal(o->vault_dir, m.reid_key_id,
                               o->reid_key != NULL ? o->reid_key : o->it_key, o->audit, &rk,
                               err);
    if (rc != 0) {
        mr_error_prefix(err, "batch %s", m.batch_id);
        goto done;
    }
    /* The locator is sealed to the reid holder: a pseudonymised restore may not have
     * that key, and then reads every volume. */
    if (targeted(o, r) && !o->no_locator) {
        if (rk == NULL && keys_epoch_unseal(o->vault_dir, m.reid_key_id,
                                            o->reid_key != NULL ? o->reid_key : o->it_key,
                                            o->audit, &lk, NULL) != 0)
            lk = NULL;
        rc = select_volumes(r, dir, &m, rk != NULL ? rk : lk, &mask, err);
        if (rc != 0)
            goto done;
    } else if (targeted(o, r)) {
        r->stats->slow_batches++;
    }
    /* The content key is unsealed (and audited) only for a batch that has something to
     * read: a targeted restore across years of batches mostly reads none. */
    if (mask == NULL || any_selected(mask, m.n_volumes))
        rc = keys_epoch_unseal(o->vault_dir, m.content_key_id, o->it_key, o->audit, &ck, err);
    if (rc != 0) {
        mr_error_prefix(err, "batch %s", m.batch_id);
        goto done;
    }
    r->batch_id = m.batch_id;
    r->mailbox = m.mailbox;
    r->batch_listed = 0;
    r->batch_bytes = 0;
    if (!o->list_only) {
        char label[128];
        snprintf(label, sizeof label, "restore %s", m.batch_id);
        progress_start(o->progress, label, m.message_count);
    }
    r->pseudonym_epoch = m.pseudonym_epoch;
    if (ck != NULL) {
        struct reader_options ro = {
            .dir = dir, .manifest = &m, .content_key = ck, .reid_key = rk,
            .want = want, .fn = emit, .ctx = r, .volumes = mask,
            .volumes_read = &r->stats->volumes_read,
        };
        rc = reader_run(&ro, err);
        if (rc != 0)
            mr_error_prefix(err, "batch %s", m.batch_id);
    }
    if (!o->list_only)
        progress_finish(o->progress);
    if (rc == 0 && o->list_only && o->list != NULL)
        o->list(o->list_ctx, m.batch_id, m.mailbox, r->batch_listed, r->batch_bytes);
    r->stats->batches++;
done:
    free(mask);
    EVP_PKEY_free(ck);      /* frees and clears the private scalars */
    EVP_PKEY_free(rk);
    EVP_PKEY_free(lk);
    archive_manifest_clear(&m);
    return rc;
}

static int audit_restore(const struct restore_options *o, const char *event,
                         const struct restore_stats *s, const char *batches, int status,
                         mr_error *err)
{
    char restored[32], erased[32], dups[32], reason[256], sel[64] = "", vols[32];
    const char *st = status == 0 ? "ok" : mr_status_name(status);

    if (o->audit == NULL)
        return 0;
    /* The reason is free text typed by IT: scrub anything shaped like an address, CPR or
     * phone number before it reaches the audit log (names cannot be caught; the help text
     * asks for a ticket reference instead). */
    snprintf(reason, sizeof reason, "%s", o->reason);
    log_scrub(reason);
    snprintf(restored, sizeof restored, "%zu", s->restored);
    snprintf(erased, sizeof erased, "%zu", s->erased);
    snprintf(dups, sizeof dups, "%zu", s->duplicates);
    snprintf(vols, sizeof vols, "%zu", s->volumes_read);
    /* What kind of search, never its terms: those name a person or a message. */
    if (o->n_tokens > 0)
        strcat(sel, "person,");
    if (o->message_id != NULL)
        strcat(sel, "message-id,");
    if (o->from != 0 || o->to != 0)
        strcat(sel, "dates,");
    if (sel[0] == '\0')
        strcat(sel, "all,");
    sel[strlen(sel) - 1] = '\0';
    const struct audit_field f[] = {
        { "selection", sel },
        { "volumes_read", vols },
        { "batches", batches },
        { "reason", reason },
        { "mode", o->pseudonymised ? "pseudonymised" : "re-identified" },
        { "output", o->list_only ? "list"
                    : o->dest != NULL ? restore_dest_name(o->dest)
                    : o->format == RESTORE_MAILDIR ? "maildir" : "mbox" },
        { "restored", restored },
        { "erased_left_out", erased },
        { "already_present", dups },
        { "status", st },
        { "trust", o->trust != NULL && o->trust->accept_unverified ? "unsigned-accepted"
                                                                   : "pinned-keys" },
    };
    return audit_append(o->audit, event, f, sizeof f / sizeof f[0], err);
}

int restore_run(const struct restore_options *opt, struct restore_stats *stats,
                mr_error *err)
{
    struct run r = { .opt = opt, .stats = stats };
    struct archive_batch_ref *refs = NULL;
    char **dirs = NULL, batches[1024] = "";
    size_t n_dirs = 0, n_refs = 0, n_anchors = 0;
    int rc = 0;
    mr_error aerr;

    memset(stats, 0, sizeof *stats);
    if (opt->reason == NULL || strlen(opt->reason) < 3)
        return mr_error_set(err, MR_E_INVALID, "a --reason for the restore is required");
    if (opt->it_key == NULL)
        return mr_error_set(err, MR_E_AUTH, "restore needs IT's private key (--it-key)");
    if (opt->trust == NULL)
        return mr_error_set(err, MR_E_INVALID, "restore: no trust settings");
    if (opt->message_id != NULL) {
        size_t n = 0;
        for (const char *p = opt->message_id; *p != '\0' && n + 1 < sizeof r.wanted_mid; p++)
            if (!isspace((unsigned char)*p) && *p != '<' && *p != '>')
                r.wanted_mid[n++] = *p;
        r.wanted_mid[n] = '\0';
    }
    if (opt->ledger_path != NULL && opt->no_ledger)
        return mr_error_set(err, MR_E_INVALID, "give either --ledger or --no-ledger");
    if (opt->ledger_path == NULL && !opt->no_ledger)
        return mr_error_set(err, MR_E_INVALID, "restore needs the erasure ledger (--ledger "
                            "FILE, copied from the host), or --no-ledger");
    if (opt->ledger_path != NULL) {
        rc = ledger_load(opt, &r.ledger, &r.n_ledger, &n_anchors, err);
        if (rc != 0)
            return rc;
    } else {
        /* IT's explicit decision, said loudly and recorded: erased people may come back. */
        const struct audit_field f[] = { { "reason", "--no-ledger" } };
        log_warn(opt->log, "restoring WITHOUT the erasure ledger (--no-ledger): mail of "
                 "people who asked to be erased is restored too");
        if (opt->audit != NULL
            && (rc = audit_append(opt->audit, "restore.no_ledger", f, 1, err)) != 0)
            return rc;
    }
    /* Resolve the batches first, so that the audit record names them. */
    if (opt->n_batches > 0) {
        dirs = calloc(opt->n_batches, sizeof *dirs);
        if (dirs == NULL)
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < opt->n_batches; i++) {
            char d[4096];
            rc = archive_batch_find(opt->archive_dir, opt->batches[i], d, sizeof d, err);
            if (rc == 0 && opt->account != NULL) {
                char owner[ARCHIVE_ACCOUNT_NAME_MAX + 1];
                archive_batch_account(d, owner);
                if (strcmp(owner, opt->account) != 0)
                    rc = mr_error_set(err, MR_E_INVALID, "batch %s is account %s's, not %.*s's",
                                      opt->batches[i], owner, ARCHIVE_ACCOUNT_NAME_MAX + 8,
                                      opt->account);
            }
            if (rc == 0 && (dirs[i] = strdup(d)) == NULL)
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
            if (rc == 0)
                n_dirs++;
        }
    } else {
        if (opt->account != NULL && opt->mailbox == NULL)
            rc = archive_batch_list_account(opt->archive_dir, opt->account, &refs, &n_refs,
                                            err);
        else
            rc = archive_batch_list(opt->archive_dir, opt->mailbox, &refs, &n_refs, err);
        dirs = calloc(n_refs ? n_refs : 1, sizeof *dirs);
        if (rc == 0 && dirs == NULL)
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < n_refs; i++) {
            if (!refs[i].has_manifest)
                continue;   /* an interrupted run is not a batch */
            if ((dirs[n_dirs] = strdup(refs[i].dir)) == NULL)
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
            else
                n_dirs++;
        }
    }
    for (size_t i = 0; rc == 0 && i < n_dirs; i++) {
        const char *base = strrchr(dirs[i], '/');
        size_t used = strlen(batches);
        snprintf(batches + used, sizeof batches - used, "%s%s", used ? "," : "",
                 base != NULL ? base + 1 : dirs[i]);
    }
    if (rc == 0 && n_dirs == 0 && opt->n_batches == 0 && opt->account != NULL
        && opt->mailbox == NULL)
        rc = mr_error_set(err, MR_E_NOTFOUND, "no batch of account %.*s under %s",
                          ARCHIVE_ACCOUNT_NAME_MAX + 8, opt->account, opt->archive_dir);
    else if (rc == 0 && n_dirs == 0)
        rc = mr_error_set(err, MR_E_NOTFOUND, "no batch to restore under %s", opt->archive_dir);
    if (rc == 0)
        rc = audit_restore(opt, "restore.start", stats, batches, 0, err);
    restore_dest *own = NULL;
    if (rc == 0 && !opt->list_only && opt->dest == NULL) {
        if (opt->output == NULL)
            rc = mr_error_set(err, MR_E_INVALID, "restore: no destination");
        else if (opt->format == RESTORE_MAILDIR)
            rc = restore_maildir_open(opt->output, &own, err);
        else
            rc = restore_mbox_open(opt->output, &own, err);
    }
    r.out = opt->dest != NULL ? opt->dest : own;
    if (rc == 0 && r.out != NULL && restore_dest_present(r.out) > 0)
        log_info(opt->log, "restore: the %s destination holds %zu messages already; those "
                 "are not written again", restore_dest_name(r.out),
                 restore_dest_present(r.out));
    for (size_t i = 0; rc == 0 && i < n_dirs; i++)
        rc = restore_batch(&r, dirs[i], err);
    if (r.out != NULL && !opt->list_only) {
        int crc;
        stats->keywords_dropped = restore_dest_keywords_dropped(r.out);
        if (stats->keywords_dropped > 0)
            log_warn(opt->log, "restore: %zu keyword flags left out (a Maildir has letters for "
                     "26 keywords)", stats->keywords_dropped);
        /* Synced even after a failure: what was written is then complete on disk. */
        crc = restore_dest_finish(r.out, rc == 0 ? err : &aerr);
        if (rc == 0)
            rc = crc;
    }
    restore_dest_close(own);
    if (batches[0] != '\0') {
        int arc = audit_restore(opt, "restore.done", stats, batches, rc,
                                rc == 0 ? err : &aerr);
        if (rc == 0)
            rc = arc;
    }
    if (rc == 0 && opt->ledger_path != NULL)
        log_info(opt->log, "erasure ledger %s: %zu entries, authentic, consistent with %zu "
                 "signed manifest(s)", opt->ledger_path, r.n_ledger, n_anchors);
    if (rc == 0 && opt->list_only)
        log_info(opt->log, "restore --list: %zu messages (%llu bytes) in %zu batches; %zu left "
                 "out by the erasure ledger", stats->listed,
                 (unsigned long long)stats->listed_bytes, stats->batches, stats->erased);
    else if (rc == 0)
        log_info(opt->log, "restore: %zu messages from %zu batches, %zu already there; %zu "
                 "left out by the erasure ledger", stats->restored, stats->batches,
                 stats->duplicates, stats->erased);
    for (size_t i = 0; i < n_dirs; i++)
        free(dirs[i]);
    free(dirs);
    free(refs);
    ledger_entries_free(r.ledger, r.n_ledger);
    return rc;
}
