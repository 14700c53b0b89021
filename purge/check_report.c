/* check_report.c — the compliance report as a table (people) and JSON (machines). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "common/mrtime.h"
#include "purge/check.h"

static const char *level_name(enum check_level l)
{
    return l == CHECK_OK ? "ok" : l == CHECK_WARN ? "warning" : "violation";
}

static void day(time_t t, char buf[24])
{
    if (t == 0)
        snprintf(buf, 24, "-");
    else
        mrtime_format_utc(t, buf, 24);
}

void check_report_print(FILE *out, const struct check_report *r)
{
    char at[24];

    day(r->at, at);
    fprintf(out, "mailret compliance check as of %s\n\n", at);
    fprintf(out, "%-16s %-34s %-20s %-20s %-20s %-20s %7s  %s\n", "MAILBOX", "BATCH",
            "PERIOD END", "CREATED", "EXPIRES", "STATUS", "MSGS", "DETAIL");
    for (size_t i = 0; i < r->n_batches; i++) {
        const struct check_batch *b = &r->batches[i];
        char pe[24], c[24], e[24];
        day(b->period_end, pe);
        day(b->created, c);
        day(b->expires, e);
        fprintf(out, "%-16s %-34s %-20s %-20s %-20s %-20s %7zu  %s\n", b->mailbox, b->batch_id,
                pe, c, e, b->status, b->messages, b->detail);
    }
    if (r->n_batches == 0)
        fprintf(out, "(no batches)\n");
    fprintf(out, "\n");
    for (size_t i = 0; i < r->n_mailboxes; i++) {
        const struct check_mailbox *m = &r->mailboxes[i];
        char cut[24];
        day(m->cutoff, cut);
        fprintf(out, "mailbox %-16s %-10s %s%s%s\n", m->mailbox, m->status,
                r->offline ? "(--offline)" : "cutoff ", r->offline ? "" : cut,
                m->detail[0] ? "" : "");
        if (m->detail[0])
            fprintf(out, "        %s\n", m->detail);
        if (m->last.found) {
            char lat[24];
            day(m->last.at, lat);
            fprintf(out, "        last purge %s: %s", lat, m->last.status);
            if (strcmp(m->last.status, "ok") == 0)
                fprintf(out, " (%zu archived and expunged, %zu held back)\n", m->last.expunged,
                        m->last.held);
            else
                fprintf(out, ": %s\n", m->last.error);
        }
    }
    fprintf(out, "audit log: %s", r->audit_status);
    if (r->audit_records > 0)
        fprintf(out, " (%zu records)", r->audit_records);
    if (r->audit_detail[0])
        fprintf(out, ": %s", r->audit_detail);
    fprintf(out, "\n\nresult: %s (%zu warning(s), %zu violation(s))\n", level_name(r->level),
            r->warnings, r->violations);
}

int check_report_json(FILE *out, const struct check_report *r, mr_error *err)
{
    json_t *o, *batches = json_array(), *mbs = json_array();
    char at[24];
    int rc = 0;

    day(r->at, at);
    for (size_t i = 0; batches != NULL && i < r->n_batches; i++) {
        const struct check_batch *b = &r->batches[i];
        char ps[24], pe[24], c[24], e[24];
        day(b->period_start, ps);
        day(b->period_end, pe);
        day(b->created, c);
        day(b->expires, e);
        json_array_append_new(batches,
                              json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s}",
                                        "mailbox", b->mailbox, "batch_id", b->batch_id,
                                        "period_start", ps, "period_end", pe, "created", c,
                                        "expires", e, "messages", (json_int_t)b->messages,
                                        "status", b->status, "level", level_name(b->level),
                                        "detail", b->detail));
    }
    for (size_t i = 0; mbs != NULL && i < r->n_mailboxes; i++) {
        const struct check_mailbox *m = &r->mailboxes[i];
        char cut[24];
        day(m->cutoff, cut);
        char since[24], lat[24], lcut[24];
        day(m->held_since, since);
        day(m->last.at, lat);
        day(m->last.cutoff, lcut);
        json_t *last = m->last.found
            ? json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "at", lat, "cutoff", lcut,
                        "status", m->last.status, "error", m->last.error, "archived",
                        (json_int_t)m->last.archived, "expunged", (json_int_t)m->last.expunged,
                        "held", (json_int_t)m->last.held)
            : json_null();
        json_array_append_new(mbs, json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:I, s:I, s:s,"
                                             " s:s, s:s, s:o}", "mailbox",
                                             m->mailbox, "cutoff", cut, "older",
                                             (json_int_t)m->older, "held", (json_int_t)m->held,
                                             "held_since", since, "held_reason", m->held_reason,
                                             "not_ingested", (json_int_t)m->not_ingested,
                                             "not_purged", (json_int_t)m->not_purged,
                                             "status", m->status,
                                             "level", level_name(m->level), "detail",
                                             m->detail, "last_purge", last));
    }
    o = json_pack("{s:s, s:s, s:I, s:I, s:o, s:o, s:{s:s, s:I, s:s}}", "at", at, "result",
                  level_name(r->level), "warnings", (json_int_t)r->warnings, "violations",
                  (json_int_t)r->violations, "batches", batches, "mailboxes", mbs, "audit",
                  "status", r->audit_status, "records", (json_int_t)r->audit_records, "detail",
                  r->audit_detail);
    if (o == NULL)
        return mr_error_set(err, MR_E_NOMEM, "cannot build the JSON report");
    if (json_dumpf(o, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
        rc = mr_error_set(err, MR_E_IO, "cannot write the JSON report");
    fputc('\n', out);
    json_decref(o);
    return rc;
}
