/* ingest_report.c — the per-mailbox report of an ingest run, as a table or as JSON. */
#include "ingest/ingest.h"

#include <jansson.h>

static double report_rate(uint64_t n, double s)
{
    return s > 0 ? (double)n / s : 0.0;
}

void ingest_report_print(FILE *out, const struct ingest_report *rep)
{
    fprintf(out, "%-24s %8s %6s %6s %6s %8s %5s %5s %6s %6s %6s %8s %9s\n", "mailbox", "fetched",
            "case", "sender", "cpr", "unrouted", "own", "auto", "dups", "large", "errors",
            "elapsed", "msg/s");
    for (size_t i = 0; i < rep->n; i++) {
        const struct ingest_mailbox_report *m = &rep->mailboxes[i];
        fprintf(out, "%-24s %8llu %6llu %6llu %6llu %8llu %5llu %5llu %6llu %6llu %6llu %7.1fs %9.1f\n",
                m->mailbox, (unsigned long long)m->fetched,
                (unsigned long long)m->routed[ROUTE_CASE],
                (unsigned long long)m->routed[ROUTE_SENDER],
                (unsigned long long)m->routed[ROUTE_CPR],
                (unsigned long long)m->routed[ROUTE_NONE],
                (unsigned long long)m->routed[ROUTE_OWN],
                (unsigned long long)m->routed[ROUTE_AUTO], (unsigned long long)m->duplicates,
                (unsigned long long)m->oversized, (unsigned long long)m->errors, m->elapsed_s,
                report_rate(m->fetched, m->elapsed_s));
        if (m->status != 0)
            fprintf(out, "  %s: %s\n", m->mailbox, m->error);
        if (m->uidvalidity_changed)
            fprintf(out, "  %s: UIDVALIDITY changed; re-read with SHA-256 dedup\n", m->mailbox);
    }
}

int ingest_report_json(FILE *out, const struct ingest_report *rep, mr_error *err)
{
    json_t *root = json_object(), *arr = json_array();
    int rc = 0;

    if (root == NULL || arr == NULL) {
        json_decref(root);
        json_decref(arr);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < rep->n; i++) {
        const struct ingest_mailbox_report *m = &rep->mailboxes[i];
        json_t *routed = json_pack("{sIsIsIsIsIsI}", "case", (json_int_t)m->routed[ROUTE_CASE],
                                   "sender", (json_int_t)m->routed[ROUTE_SENDER], "cpr",
                                   (json_int_t)m->routed[ROUTE_CPR], "none",
                                   (json_int_t)m->routed[ROUTE_NONE], "own",
                                   (json_int_t)m->routed[ROUTE_OWN], "auto",
                                   (json_int_t)m->routed[ROUTE_AUTO]);
        json_t *o = json_pack(
            "{sssIsbsIsIsosIsIsIsIsIsfsfsfss}", "mailbox", m->mailbox, "uidvalidity",
            (json_int_t)m->uidvalidity, "uidvalidity_changed", m->uidvalidity_changed,
            "fetched", (json_int_t)m->fetched, "bytes", (json_int_t)m->bytes, "routed", routed,
            "unrouted", (json_int_t)m->routed[ROUTE_NONE], "duplicates",
            (json_int_t)m->duplicates, "oversized", (json_int_t)m->oversized, "errors",
            (json_int_t)m->errors, "last_uid", (json_int_t)m->last_uid, "elapsed_s",
            m->elapsed_s, "messages_per_s", report_rate(m->fetched, m->elapsed_s), "mb_per_s",
            report_rate(m->bytes, m->elapsed_s) / (1024.0 * 1024.0), "status",
            mr_status_name(m->status));
        if (o == NULL) {
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
            break;
        }
        if (m->status != 0)
            json_object_set_new(o, "error", json_string(m->error));
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "mailboxes", arr);
    json_object_set_new(root, "elapsed_s", json_real(rep->elapsed_s));
    json_object_set_new(root, "connected", json_boolean(rep->connected));
    if (rc == 0 && (json_dumpf(root, out, JSON_COMPACT) != 0 || fputc('\n', out) == EOF))
        rc = mr_error_set(err, MR_E_IO, "cannot write the JSON report");
    json_decref(root);
    return rc;
}
