/*
 * audit.h — the append-only audit log: one JSON object per line,
 *   {"seq":N,"time":"2026-11-23T10:00:00Z","user":"root","event":"keys.epoch.create",
 *    ...fields...,"prev":"<SHA-256 hex of the previous line's bytes>"}
 * seq starts at 1; the first record's prev is 64 zeros; a line's hash is the SHA-256 of its
 * bytes without the newline.  A head file beside the log ("<path>.head", written
 * durably: {"seq":N,"hash":"<hex>","size":<log bytes>}) holds the last seq and its hash,
 * so that cutting records off the end is detected too.  Someone with the host's disk can
 * still rewrite the log and recompute chain and head; so every append also sends the new
 * head to syslog (journald) at notice priority, every signed manifest records the head at
 * the time, and audit_verify_anchor checks the log against such a head.  Each append takes an exclusive
 * lock (flock, plus a mutex for threads sharing a handle), fsyncs the log and then the head.
 * Event names and field keys: 1-64 characters of [A-Za-z0-9._-]; the keys seq, time,
 * user, event and prev are reserved.  Field values are stored exactly as given (not
 * scrubbed: ids and sizes often look like phone numbers), so they must never carry a
 * personal identifier (ids, counts, tokens only).
 */
#ifndef MAILRET_COMMON_AUDIT_H
#define MAILRET_COMMON_AUDIT_H

#include <stddef.h>

#include "common/error.h"

typedef struct audit_log audit_log;

struct audit_field {
    const char *key;
    const char *value;      /* written as a JSON string */
};

int audit_open(audit_log **out, const char *path, mr_error *err);
void audit_close(audit_log *log);

int audit_append(audit_log *log, const char *event, const struct audit_field *fields,
                 size_t n_fields, mr_error *err);

/* Where the chain stands now (the last record's seq and hash; 0 and 64 zeros for an
 * empty log), e.g. to record it in a signed manifest. */
int audit_head(audit_log *log, long long *seq, char hash[65], mr_error *err);

/* Check the whole chain: each line parses, seq increases by one, prev matches, and the
 * head file matches the last record.  On failure err names the first bad line number.
 * *n_records (may be NULL) receives the number of records checked. */
int audit_verify(const char *path, size_t *n_records, mr_error *err);

/* As audit_verify, and record `seq` must hash to `hash` (64 hex digits): a head seen
 * outside the host (a signed manifest, the journal) pins the chain up to there, so a log
 * rewritten and re-chained is caught.  MR_E_TAMPERED says which. */
int audit_verify_anchor(const char *path, long long seq, const char *hash,
                        size_t *n_records, mr_error *err);

#endif
