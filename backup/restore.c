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
#include "backup/reader.h"
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
    restore_out *out;
    const char *batch_id;
    unsigned pseudonym_epoch;       /* the batch's, from its manifest */
    char wanted_mid[1000];
};

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
    return 1;
}

/* The Message-ID header's value without <> and surrounding blanks (first occurrence in
 * the header section, unfolded). */
static bool message_id_is(const unsigned char *msg, size_t len, const char *wanted)
{
    size_t pos = 0;

    while (pos < len) {
        const unsigned char *nl = memchr(msg + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - msg) : len;
        if (end == pos || (end == pos + 1 && msg[pos] == '\r'))
            return false;   /* end of header */
        if (end - pos > 11 && strncasecmp((const char *)msg + pos, "Message-ID:", 11) == 0) {
            char val[1000];
            size_t n = 0, p = pos + 11;
            /* value plus folded continuation lines */
            for (;;) {
                for (; p < end && n + 1 < sizeof val; p++)
                    if (!isspace(msg[p]) && msg[p] != '<' && msg[p] != '>')
                        val[n++] = (char)msg[p];
                if (end + 1 < len && (msg[end + 1] == ' ' || msg[end + 1] == '\t')) {
                    p = end + 1;
                    nl = memchr(msg + p, '\n', len - p);
                    end = nl != NULL ? (size_t)(nl - msg) : len;
                    continue;
                }
                break;
            }
            val[n] = '\0';
            return strcmp(val, wanted) == 0;
        }
        pos = end + 1;
    }
    return false;
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
    snprintf(unique, sizeof unique, "%s-%u-%u", r->batch_id, (unsigned)m->idx->uidvalidity,
             (unsigned)m->idx->uid);
    if (r->opt->format == RESTORE_SINK)
        rc = r->opt->sink(r->opt->sink_ctx, bytes, len, m->idx->flags, m->idx->internaldate,
                          m->idx->tz_min, err);
    else
        rc = restore_out_write(r->out, bytes, len, m->idx->flags, m->idx->internaldate,
                               unique, err);
    if (rc == RESTORE_SINK_REFUSED && r->opt->format == RESTORE_SINK) {
        r->stats->refused++;
        return 0;
    }
    if (rc == 0)
        r->stats->restored++;
    return rc;
}

static int restore_batch(struct run *r, const char *dir, mr_error *err)
{
    const struct restore_options *o = r->opt;
    struct archive_manifest m;
    EVP_PKEY *ck = NULL, *rk = NULL;
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
    rc = keys_epoch_unseal(o->vault_dir, m.content_key_id, o->it_key, o->audit, &ck, err);
    if (rc == 0 && !o->pseudonymised)
        rc = keys_epoch_unseal(o->vault_dir, m.reid_key_id,
                               o->reid_key != NULL ? o->reid_key : o->it_key, o->audit, &rk,
                               err);
    if (rc != 0) {
        mr_error_prefix(err, "batch %s", m.batch_id);
        goto done;
    }
    r->batch_id = m.batch_id;
    r->pseudonym_epoch = m.pseudonym_epoch;
    {
        struct reader_options ro = {
            .dir = dir, .manifest = &m, .content_key = ck, .reid_key = rk,
            .want = want, .fn = emit, .ctx = r,
        };
        rc = reader_run(&ro, err);
        if (rc != 0)
            mr_error_prefix(err, "batch %s", m.batch_id);
    }
    r->stats->batches++;
done:
    EVP_PKEY_free(ck);      /* frees and clears the private scalars */
    EVP_PKEY_free(rk);
    archive_manifest_clear(&m);
    return rc;
}

static int audit_restore(const struct restore_options *o, const char *event,
                         const struct restore_stats *s, const char *batches, int status,
                         mr_error *err)
{
    char restored[32], erased[32], reason[256];
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
    const struct audit_field f[] = {
        { "batches", batches },
        { "reason", reason },
        { "mode", o->pseudonymised ? "pseudonymised" : "re-identified" },
        { "output", o->format == RESTORE_MAILDIR ? "maildir"
                    : o->format == RESTORE_MBOX ? "mbox" : "imap" },
        { "restored", restored },
        { "erased_left_out", erased },
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
            if (rc == 0 && (dirs[i] = strdup(d)) == NULL)
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
            if (rc == 0)
                n_dirs++;
        }
    } else {
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
    if (rc == 0 && n_dirs == 0)
        rc = mr_error_set(err, MR_E_NOTFOUND, "no batch to restore under %s", opt->archive_dir);
    if (rc == 0)
        rc = audit_restore(opt, "restore.start", stats, batches, 0, err);
    if (rc == 0 && opt->format == RESTORE_SINK && opt->sink == NULL)
        rc = mr_error_set(err, MR_E_INVALID, "restore: no destination");
    if (rc == 0 && opt->format != RESTORE_SINK)
        rc = restore_out_open(opt->format, opt->output, &r.out, err);
    for (size_t i = 0; rc == 0 && i < n_dirs; i++)
        rc = restore_batch(&r, dirs[i], err);
    if (r.out != NULL) {
        int crc;
        stats->keywords_dropped = restore_out_keywords_dropped(r.out);
        if (stats->keywords_dropped > 0)
            log_warn(opt->log, "restore: %zu keyword flags left out (a Maildir has letters for "
                     "26 keywords)", stats->keywords_dropped);
        crc = restore_out_close(r.out, rc == 0 ? err : &aerr);
        if (rc == 0)
            rc = crc;
    }
    if (batches[0] != '\0') {
        int arc = audit_restore(opt, "restore.done", stats, batches, rc,
                                rc == 0 ? err : &aerr);
        if (rc == 0)
            rc = arc;
    }
    if (rc == 0 && opt->ledger_path != NULL)
        log_info(opt->log, "erasure ledger %s: %zu entries, authentic, consistent with %zu "
                 "signed manifest(s)", opt->ledger_path, r.n_ledger, n_anchors);
    if (rc == 0)
        log_info(opt->log, "restore: %zu messages from %zu batches; %zu left out by the "
                 "erasure ledger", stats->restored, stats->batches, stats->erased);
    for (size_t i = 0; i < n_dirs; i++)
        free(dirs[i]);
    free(dirs);
    free(refs);
    ledger_entries_free(r.ledger, r.n_ledger);
    return rc;
}
