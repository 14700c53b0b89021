/* check_report.c — the compliance report as a table (people) and JSON (machines). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
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
    if (strcmp(r->unrouted.status, "skipped") != 0) {
        fprintf(out, "unrouted queue: %s, %lld waiting", r->unrouted.status,
                r->unrouted.waiting);
        if (r->unrouted.waiting > 0)
            fprintf(out, ", the oldest for %lld days", r->unrouted.oldest_days);
        if (r->unrouted.detail[0])
            fprintf(out, "\n        %s", r->unrouted.detail);
        fputc('\n', out);
    }
    fprintf(out, "audit log: %s", r->audit_status);
    if (r->audit_records > 0)
        fprintf(out, " (%zu records)", r->audit_records);
    if (r->audit_detail[0])
        fprintf(out, ": %s", r->audit_detail);
    if (strcmp(r->ledger.status, "ok") == 0)
        fprintf(out, "\nerasure ledger: ok (%llu entries, consistent with %zu signed "
                "manifest(s))", r->ledger.entries, r->ledger.anchors);
    else if (strcmp(r->ledger.status, "absent") == 0)
        fprintf(out, "\nerasure ledger: absent (no manifest anchors one; the first purge, "
                "backup or erase creates it)");
    else if (strcmp(r->ledger.status, "skipped") != 0)
        fprintf(out, "\nerasure ledger: %s: %s", r->ledger.status, r->ledger.detail);
    if (r->insecure_tls)
        fprintf(out, "\nIMAP TLS verification: DISABLED ([imap] insecure_skip_verify): "
                "VIOLATION");
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
    if (o != NULL &&
        json_object_set_new(o, "unrouted",
                            json_pack("{s:s, s:s, s:I, s:I, s:s}", "status", r->unrouted.status,
                                      "level", level_name(r->unrouted.level), "waiting",
                                      (json_int_t)r->unrouted.waiting, "oldest_days",
                                      (json_int_t)r->unrouted.oldest_days, "detail",
                                      r->unrouted.detail)) != 0) {
        json_decref(o);
        o = NULL;
    }
    if (o == NULL)
        return mr_error_set(err, MR_E_NOMEM, "cannot build the JSON report");
    if (json_object_set_new(o, "erasure_ledger",
                            json_pack("{s:s, s:I, s:I, s:s}", "status", r->ledger.status,
                                      "entries", (json_int_t)r->ledger.entries, "anchors",
                                      (json_int_t)r->ledger.anchors, "detail",
                                      r->ledger.detail)) != 0) {
        json_decref(o);
        return mr_error_set(err, MR_E_NOMEM, "cannot build the JSON report");
    }
    json_object_set_new(o, "insecure_tls", json_boolean(r->insecure_tls));
    if (json_dumpf(o, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
        rc = mr_error_set(err, MR_E_IO, "cannot write the JSON report");
    fputc('\n', out);
    json_decref(o);
    return rc;
}

/* Append to a fixed buffer, silently cut at its end (the summary is best effort; the
 * perfdata that follows is written separately and never cut). */
static void add(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;

    if (len + 1 >= size)
        return;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

static size_t count_batches(const struct check_report *r, const char *status)
{
    size_t n = 0;

    for (size_t i = 0; i < r->n_batches; i++)
        n += strcmp(r->batches[i].status, status) == 0;
    return n;
}

enum check_nagios_state check_report_nagios(FILE *out, const struct check_report *r)
{
    static const char *const names[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };
    enum check_nagios_state state;
    char text[1024] = "";
    size_t shown = 0, not_purged = 0, held = 0, purged = 0;
    long held_days = 0;

    if (r->violations > r->unchecked)
        state = NAGIOS_CRITICAL;
    else if (r->unchecked > 0)
        state = NAGIOS_UNKNOWN;
    else if (r->warnings > 0)
        state = NAGIOS_WARNING;
    else
        state = NAGIOS_OK;
    for (size_t i = 0; i < r->n_mailboxes; i++) {
        const struct check_mailbox *m = &r->mailboxes[i];
        not_purged += m->not_purged + m->not_ingested;
        held += m->held;
        purged += strcmp(m->status, "ok") == 0;
        if (m->held > 0 && m->held_since != 0 && r->at > m->held_since
            && (r->at - m->held_since) / 86400 > held_days)
            held_days = (long)((r->at - m->held_since) / 86400);
    }
    if (state == NAGIOS_OK) {
        add(text, sizeof text, "%zu batches ok, %zu held, %zu expired; ",
            count_batches(r, "ok"), count_batches(r, "held"), count_batches(r, "expired"));
        if (r->offline)
            add(text, sizeof text, "mailboxes not checked (--offline)");
        else
            add(text, sizeof text, "%zu mailboxes purged", purged);
        add(text, sizeof text, "; audit log %s", r->audit_status);
    } else {
        add(text, sizeof text, "%zu violation(s), %zu warning(s)", r->violations, r->warnings);
        if (r->unchecked > 0)
            add(text, sizeof text, ", %zu mailbox(es) not checked", r->unchecked);
        /* The problems worth a glance, the could-not-check ones with their reason. */
        for (size_t i = 0; i < r->n_mailboxes && shown < 3; i++) {
            const struct check_mailbox *m = &r->mailboxes[i];
            if (m->level == CHECK_OK)
                continue;
            add(text, sizeof text, "%s mailbox %s %s", shown++ ? ";" : ":", m->mailbox,
                m->status);
            if (strcmp(m->status, "error") == 0)
                add(text, sizeof text, " (%s)", m->detail);
        }
        for (size_t i = 0; i < r->n_batches && shown < 3; i++) {
            const struct check_batch *b = &r->batches[i];
            if (b->level != CHECK_OK)
                add(text, sizeof text, "%s batch %s %s", shown++ ? ";" : ":", b->batch_id,
                    b->status);
        }
        if (r->unrouted.level != CHECK_OK && shown < 3)
            add(text, sizeof text, "%s unrouted queue %s (%lld waiting, oldest %lld days)",
                shown++ ? ";" : ":", r->unrouted.status, r->unrouted.waiting,
                r->unrouted.oldest_days);
        if (strcmp(r->audit_status, "BROKEN") == 0 && shown < 3)
            add(text, sizeof text, "%s audit log BROKEN", shown++ ? ";" : ":");
        if (strcmp(r->ledger.status, "BROKEN") == 0 && shown < 3)
            add(text, sizeof text, "%s erasure ledger BROKEN", shown++ ? ";" : ":");
        if (r->insecure_tls && shown < 3)
            add(text, sizeof text, "%s IMAP TLS verification DISABLED", shown++ ? ";" : ":");
        if (shown < r->violations + r->warnings)
            add(text, sizeof text, "; ...");
    }
    /* Thresholds in the perfdata only where a warning is configured. */
    char wcount[16] = "", wdays[16] = "";
    if (r->unrouted.warn_count > 0)
        snprintf(wcount, sizeof wcount, "%u", r->unrouted.warn_count);
    if (r->unrouted.warn_days > 0)
        snprintf(wdays, sizeof wdays, "%u", r->unrouted.warn_days);
    /* One line, and '|' starts the perfdata: neither may come from a name or message. */
    for (char *p = text; *p != '\0'; p++)
        if (*p == '|' || *p == '\n' || *p == '\r')
            *p = ' ';
    log_scrub(text);
    fprintf(out, "MAILRET %s - %s | batches=%zu;;;0 ok=%zu;;;0 expiring=%zu;;;0 "
            "overdue=%zu;;;0 damaged=%zu;;;0 key_missing=%zu;;;0 not_shredded=%zu;;;0 "
            "incomplete=%zu;;;0 held=%zu;;;0 expired=%zu;;;0 mailboxes_unchecked=%zu;;;0 "
            "not_purged=%zu;;;0 held_back=%zu;;;0 held_back_days=%ld;;;0 "
            "audit_broken=%d;;;0;1 ledger_broken=%d;;;0;1 warnings=%zu;;;0 violations=%zu;;;0 "
            "unrouted=%lld;%s;;0 unrouted_oldest_days=%lld;%s;;0\n",
            names[state], text, r->n_batches, count_batches(r, "ok"),
            count_batches(r, "expiring"), count_batches(r, "OVERDUE"),
            count_batches(r, "damaged"), count_batches(r, "key-missing"),
            count_batches(r, "key-present-after-expiry"), count_batches(r, "incomplete"),
            count_batches(r, "held"), count_batches(r, "expired"), r->unchecked, not_purged,
            held, held_days, strcmp(r->audit_status, "BROKEN") == 0,
            strcmp(r->ledger.status, "BROKEN") == 0, r->warnings,
            r->violations, r->unrouted.waiting, wcount, r->unrouted.oldest_days, wdays);
    return state;
}
