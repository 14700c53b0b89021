/* purge_report.c — the purge report for people (a table) and machines (--json). */
#include <stdio.h>

#include <jansson.h>

#include "common/mrtime.h"
#include "purge/purge.h"

void purge_report_print(FILE *out, const struct purge_report *r)
{
    char cut[24];

    mrtime_format_utc(r->cutoff, cut, sizeof cut);
    fprintf(out, "%scutoff %s (messages with INTERNALDATE before it)\n",
            r->dry_run ? "DRY RUN: nothing archived or deleted; " : "", cut);
    for (size_t i = 0; i < r->n; i++) {
        const struct purge_mailbox_report *m = &r->mailboxes[i];
        if (!m->attempted) {
            fprintf(out, "%s\tnot purged (the run stopped before this mailbox)\n", m->mailbox);
            continue;
        }
        if (m->resumed_batches > 0 || m->discarded_batches > 0)
            fprintf(out, "%s\tinterrupted run finished: %zu batch(es), %zu message(s) "
                    "expunged now; %zu unfinished batch(es) discarded\n", m->mailbox,
                    m->resumed_batches, m->resumed_expunged, m->discarded_batches);
        if (m->status != 0)
            fprintf(out, "%s\tFAILED: %s\n", m->mailbox, m->error);
        else if (m->selected == 0 && m->n_held == 0)
            fprintf(out, "%s\tnothing older than the cutoff\n", m->mailbox);
        else if (r->dry_run)
            fprintf(out, "%s\twould archive and expunge %zu message(s), %llu bytes%s\n",
                    m->mailbox, m->selected, m->bytes,
                    m->pending_ingest > 0 ? " (some only if the ingest that runs first "
                                            "delivers them)" : "");
        else if (m->selected > 0)
            fprintf(out,
                    "%s\tarchived %zu message(s) in batch %s and expunged %zu; %llu part(s) "
                    "of %zu message(s) sealed\n",
                    m->mailbox, m->archived, m->batch_id, m->expunged, m->sealed_parts,
                    m->sealed_messages);
        if (m->pending_ingest > 0)
            fprintf(out, "%s\t%zu older message(s) not ingested yet: ingest runs first, and "
                    "what it cannot deliver is held back\n", m->mailbox, m->pending_ingest);
        if (m->n_held > 0)
            fprintf(out, "%s\t%s %zu message(s) on the server:\n", m->mailbox,
                    r->dry_run ? "would hold back" : "held back", m->n_held);
        for (size_t k = 0; k < m->n_held; k++) {
            const struct purge_held *h = &m->held[k];
            char since[24] = "";
            if (h->since != 0)
                mrtime_format_utc(h->since, since, sizeof since);
            fprintf(out, "%s\t  UID %u %s%s%s%s%s%s: %s\n", m->mailbox, (unsigned)h->uid,
                    h->why, h->rule[0] ? " (" : "", h->rule, h->rule[0] ? ")" : "",
                    since[0] ? " since " : "", since, h->reason);
        }
    }
    if (r->ingest_status != 0)
        fprintf(out, "ingest before purge FAILED: %s\n", r->ingest_error);
}

int purge_report_json(FILE *out, const struct purge_report *r, mr_error *err)
{
    json_t *o, *arr = json_array();
    char cut[24];
    int rc = 0;

    mrtime_format_utc(r->cutoff, cut, sizeof cut);
    for (size_t i = 0; arr != NULL && i < r->n; i++) {
        const struct purge_mailbox_report *m = &r->mailboxes[i];
        json_t *held = json_array();
        for (size_t k = 0; held != NULL && k < m->n_held; k++) {
            const struct purge_held *h = &m->held[k];
            char since[24] = "";
            if (h->since != 0)
                mrtime_format_utc(h->since, since, sizeof since);
            json_array_append_new(held, json_pack("{s:I, s:s, s:s, s:s, s:s, s:I}", "uid",
                                                  (json_int_t)h->uid, "why", h->why, "rule",
                                                  h->rule, "reason", h->reason, "since", since,
                                                  "attempts", (json_int_t)h->attempts));
        }
        json_array_append_new(
            arr, json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, "
                           "s:s, s:s, s:I, s:o}",
                           "mailbox", m->mailbox, "attempted", (int)m->attempted, "resumed_batches",
                           (json_int_t)m->resumed_batches, "resumed_expunged",
                           (json_int_t)m->resumed_expunged, "discarded_batches",
                           (json_int_t)m->discarded_batches, "candidates",
                           (json_int_t)m->candidates, "selected", (json_int_t)m->selected,
                           "bytes", (json_int_t)m->bytes, "archived", (json_int_t)m->archived,
                           "expunged", (json_int_t)m->expunged, "sealed_parts",
                           (json_int_t)m->sealed_parts, "sealed_messages",
                           (json_int_t)m->sealed_messages, "batch_id", m->batch_id,
                           "status", !m->attempted ? "not-run"
                                     : m->status == 0 ? "ok" : mr_status_name(m->status),
                           "error", m->error, "pending_ingest", (json_int_t)m->pending_ingest,
                           "held", held != NULL ? held : json_array()));
    }
    o = json_pack("{s:s, s:b, s:b, s:s, s:s, s:I, s:o}", "cutoff", cut, "dry_run",
                  (int)r->dry_run, "ingested", (int)r->ingested, "ingest_status",
                  r->ingest_status == 0 ? "ok" : mr_status_name(r->ingest_status),
                  "ingest_error", r->ingest_error, "held", (json_int_t)r->held, "mailboxes", arr);
    if (o == NULL)
        return mr_error_set(err, MR_E_NOMEM, "cannot build the JSON report");
    if (json_dumpf(o, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
        rc = mr_error_set(err, MR_E_IO, "cannot write the JSON report");
    fputc('\n', out);
    json_decref(o);
    return rc;
}
