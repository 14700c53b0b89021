/* journal.c — purge's SQLite journal (see journal.h). */
#include "purge/journal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

struct purge_journal {
    sqlite3 *db;
};

static const char *const state_names[] = { "fetching", "closing", "verified",
                                           "expunging", "done", "discarded" };

const char *purge_journal_state_name(enum purge_jstate s)
{
    return (unsigned)s < sizeof state_names / sizeof state_names[0] ? state_names[s] : "?";
}

static int db_fail(purge_journal *j, const char *what, mr_error *err)
{
    return mr_error_set(err, MR_E_DB, "purge journal: %s: %s", what, sqlite3_errmsg(j->db));
}

static int exec_sql(purge_journal *j, const char *sql, mr_error *err)
{
    char *msg = NULL;

    if (sqlite3_exec(j->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = mr_error_set(err, MR_E_DB, "purge journal: %s", msg != NULL ? msg : "failed");
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

int purge_journal_open(const char *path, purge_journal **out, mr_error *err)
{
    purge_journal *j = calloc(1, sizeof *j);
    int rc;

    *out = NULL;
    if (j == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    if (sqlite3_open_v2(path, &j->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL)
        != SQLITE_OK) {
        rc = mr_error_set(err, MR_E_DB, "cannot open purge journal %s: %s", path,
                          j->db != NULL ? sqlite3_errmsg(j->db) : "out of memory");
        sqlite3_close(j->db);
        free(j);
        return rc;
    }
    sqlite3_busy_timeout(j->db, 10000);
    /* FULL: a state change must be durable before the IMAP step it allows is taken. */
    rc = exec_sql(j,
                  "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;"
                  "CREATE TABLE IF NOT EXISTS batches("
                  " id INTEGER PRIMARY KEY, mailbox TEXT NOT NULL,"
                  " uidvalidity INTEGER NOT NULL, cutoff INTEGER NOT NULL,"
                  " batch_id TEXT NOT NULL UNIQUE, state INTEGER NOT NULL,"
                  " created INTEGER NOT NULL, updated INTEGER NOT NULL,"
                  " n_messages INTEGER NOT NULL DEFAULT 0);"
                  "CREATE TABLE IF NOT EXISTS messages("
                  " batch INTEGER NOT NULL REFERENCES batches(id), uid INTEGER NOT NULL,"
                  " sha256 TEXT NOT NULL, PRIMARY KEY(batch, uid));"
                  "CREATE TABLE IF NOT EXISTS results("
                  " mailbox TEXT PRIMARY KEY, at INTEGER NOT NULL, cutoff INTEGER NOT NULL,"
                  " status TEXT NOT NULL, error TEXT NOT NULL, archived INTEGER NOT NULL,"
                  " expunged INTEGER NOT NULL, held INTEGER NOT NULL);",
                  err);
    if (rc != 0) {
        mr_error_prefix(err, "%s", path);
        purge_journal_close(j);
        return rc;
    }
    *out = j;
    return 0;
}

void purge_journal_close(purge_journal *j)
{
    if (j == NULL)
        return;
    sqlite3_close(j->db);
    free(j);
}

int purge_journal_begin(purge_journal *j, const char *mailbox, uint32_t uidvalidity,
                        time_t cutoff, const char *batch_id, int64_t *id, mr_error *err)
{
    sqlite3_stmt *st = NULL;
    time_t now = time(NULL);
    int rc = 0;

    if (sqlite3_prepare_v2(j->db,
                           "INSERT INTO batches(mailbox, uidvalidity, cutoff, batch_id, state,"
                           " created, updated) VALUES(?,?,?,?,?,?,?)", -1, &st, NULL)
        != SQLITE_OK)
        return db_fail(j, "prepare", err);
    sqlite3_bind_text(st, 1, mailbox, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, uidvalidity);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)cutoff);
    sqlite3_bind_text(st, 4, batch_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, PJ_FETCHING);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)now);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)now);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(j, "insert batch", err);
    else
        *id = sqlite3_last_insert_rowid(j->db);
    sqlite3_finalize(st);
    return rc;
}

int purge_journal_set_state(purge_journal *j, int64_t id, enum purge_jstate state,
                            mr_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;

    if (sqlite3_prepare_v2(j->db, "UPDATE batches SET state = ?, updated = ? WHERE id = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(j, "prepare", err);
    sqlite3_bind_int(st, 1, state);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
    sqlite3_bind_int64(st, 3, id);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(j, "update state", err);
    else if (sqlite3_changes(j->db) != 1)
        rc = mr_error_set(err, MR_E_INTERNAL, "purge journal: batch row %lld missing",
                          (long long)id);
    sqlite3_finalize(st);
    return rc;
}

int purge_journal_record(purge_journal *j, int64_t id, const struct purge_jmsg *msgs, size_t n,
                         mr_error *err)
{
    sqlite3_stmt *st = NULL, *up = NULL;
    int rc = exec_sql(j, "BEGIN IMMEDIATE", err);

    if (rc != 0)
        return rc;
    if (sqlite3_prepare_v2(j->db, "INSERT INTO messages(batch, uid, sha256) VALUES(?,?,?)", -1,
                           &st, NULL) != SQLITE_OK
        || sqlite3_prepare_v2(j->db, "UPDATE batches SET state = ?, n_messages = ?, updated = ?"
                              " WHERE id = ?", -1, &up, NULL) != SQLITE_OK)
        rc = db_fail(j, "prepare", err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, msgs[i].uid);
        sqlite3_bind_text(st, 3, msgs[i].sha256, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(j, "insert message", err);
    }
    if (rc == 0) {
        sqlite3_bind_int(up, 1, PJ_CLOSING);
        sqlite3_bind_int64(up, 2, (sqlite3_int64)n);
        sqlite3_bind_int64(up, 3, (sqlite3_int64)time(NULL));
        sqlite3_bind_int64(up, 4, id);
        if (sqlite3_step(up) != SQLITE_DONE)
            rc = db_fail(j, "update batch", err);
    }
    sqlite3_finalize(st);
    sqlite3_finalize(up);
    if (rc == 0)
        return exec_sql(j, "COMMIT", err);
    (void)sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int purge_journal_pending(purge_journal *j, const char *mailbox, struct purge_jbatch **out,
                          size_t *n, mr_error *err)
{
    sqlite3_stmt *st = NULL;
    struct purge_jbatch *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0, s;

    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(j->db,
                           "SELECT id, mailbox, uidvalidity, cutoff, batch_id, state, created,"
                           " updated, n_messages FROM batches WHERE state NOT IN (?1, ?2)"
                           " AND (?3 IS NULL OR mailbox = ?3) ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(j, "prepare", err);
    sqlite3_bind_int(st, 1, PJ_DONE);
    sqlite3_bind_int(st, 2, PJ_DISCARDED);
    if (mailbox != NULL)
        sqlite3_bind_text(st, 3, mailbox, -1, SQLITE_STATIC);
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        struct purge_jbatch *b;
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 8;
            struct purge_jbatch *nv = realloc(v, nc * sizeof *nv);
            if (nv == NULL) {
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
                break;
            }
            v = nv;
            cap = nc;
        }
        b = &v[cnt++];
        memset(b, 0, sizeof *b);
        b->id = sqlite3_column_int64(st, 0);
        snprintf(b->mailbox, sizeof b->mailbox, "%s",
                 (const char *)sqlite3_column_text(st, 1));
        b->uidvalidity = (uint32_t)sqlite3_column_int64(st, 2);
        b->cutoff = (time_t)sqlite3_column_int64(st, 3);
        snprintf(b->batch_id, sizeof b->batch_id, "%s",
                 (const char *)sqlite3_column_text(st, 4));
        b->state = (enum purge_jstate)sqlite3_column_int(st, 5);
        b->created = (time_t)sqlite3_column_int64(st, 6);
        b->updated = (time_t)sqlite3_column_int64(st, 7);
        b->n_messages = (size_t)sqlite3_column_int64(st, 8);
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = db_fail(j, "select batches", err);
    sqlite3_finalize(st);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int purge_journal_messages(purge_journal *j, int64_t id, struct purge_jmsg **out, size_t *n,
                           mr_error *err)
{
    sqlite3_stmt *st = NULL;
    struct purge_jmsg *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0, s;

    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(j->db, "SELECT uid, sha256 FROM messages WHERE batch = ? ORDER BY uid",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(j, "prepare", err);
    sqlite3_bind_int64(st, 1, id);
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 256;
            struct purge_jmsg *nv = realloc(v, nc * sizeof *nv);
            if (nv == NULL) {
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
                break;
            }
            v = nv;
            cap = nc;
        }
        v[cnt].uid = (uint32_t)sqlite3_column_int64(st, 0);
        snprintf(v[cnt].sha256, sizeof v[cnt].sha256, "%s",
                 (const char *)sqlite3_column_text(st, 1));
        cnt++;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = db_fail(j, "select messages", err);
    sqlite3_finalize(st);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int purge_journal_result_set(purge_journal *j, const struct purge_jresult *r, mr_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;

    if (sqlite3_prepare_v2(j->db, "INSERT OR REPLACE INTO results(mailbox, at, cutoff, status,"
                                  " error, archived, expunged, held) VALUES(?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(j, "prepare", err);
    sqlite3_bind_text(st, 1, r->mailbox, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)r->at);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)r->cutoff);
    sqlite3_bind_text(st, 4, r->status, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r->error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)r->archived);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)r->expunged);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)r->held);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(j, "record the result", err);
    sqlite3_finalize(st);
    return rc;
}

int purge_journal_result_read(const char *path, const char *mailbox, struct purge_jresult *r,
                              mr_error *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int s, rc = 0;

    memset(r, 0, sizeof *r);
    snprintf(r->mailbox, sizeof r->mailbox, "%s", mailbox);
    if (access(path, F_OK) != 0)
        return 0;       /* no purge ever ran */
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rc = mr_error_set(err, MR_E_DB, "cannot open purge journal %s", path);
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, 10000);
    if (sqlite3_prepare_v2(db, "SELECT at, cutoff, status, error, archived, expunged, held"
                               " FROM results WHERE mailbox = ?", -1, &st, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return 0;       /* a journal from before results were kept */
    }
    sqlite3_bind_text(st, 1, mailbox, -1, SQLITE_STATIC);
    s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        const unsigned char *status = sqlite3_column_text(st, 2);
        const unsigned char *error = sqlite3_column_text(st, 3);
        r->found = true;
        r->at = (time_t)sqlite3_column_int64(st, 0);
        r->cutoff = (time_t)sqlite3_column_int64(st, 1);
        snprintf(r->status, sizeof r->status, "%s", status ? (const char *)status : "");
        snprintf(r->error, sizeof r->error, "%s", error ? (const char *)error : "");
        r->archived = (size_t)sqlite3_column_int64(st, 4);
        r->expunged = (size_t)sqlite3_column_int64(st, 5);
        r->held = (size_t)sqlite3_column_int64(st, 6);
    } else if (s != SQLITE_DONE) {
        rc = mr_error_set(err, MR_E_DB, "purge journal %s: %s", path, sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
