/* state.c — see state.h. */
#include "ingest/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <sqlite3.h>

static const char state_schema[] =
    "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS mailbox_state("
    "  account TEXT NOT NULL, mailbox TEXT NOT NULL,"
    "  uidvalidity INTEGER NOT NULL, last_uid INTEGER NOT NULL, updated INTEGER NOT NULL,"
    "  PRIMARY KEY(account, mailbox));"
    "CREATE TABLE IF NOT EXISTS seen("
    "  account TEXT NOT NULL, mailbox TEXT NOT NULL, sha256 TEXT NOT NULL,"
    "  uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,"
    "  outcome TEXT NOT NULL,"          /* case|sender|cpr|none|own|auto */
    "  msgid_hash TEXT,"                /* first 16 bytes of SHA-256(Message-ID), hex */
    "  at INTEGER NOT NULL,"
    "  PRIMARY KEY(account, mailbox, sha256)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS skipped("
    "  account TEXT NOT NULL, mailbox TEXT NOT NULL, uidvalidity INTEGER NOT NULL,"
    "  uid INTEGER NOT NULL, size INTEGER NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL,"
    "  PRIMARY KEY(account, mailbox, uidvalidity, uid));"
    "CREATE TABLE IF NOT EXISTS refused("
    "  account TEXT NOT NULL, mailbox TEXT NOT NULL, uidvalidity INTEGER NOT NULL,"
    "  uid INTEGER NOT NULL, sha256 TEXT NOT NULL, rule TEXT NOT NULL, reason TEXT NOT NULL,"
    "  first_failed INTEGER NOT NULL, last_failed INTEGER NOT NULL, attempts INTEGER NOT NULL,"
    "  PRIMARY KEY(account, mailbox, uidvalidity, uid));"
    "CREATE TABLE IF NOT EXISTS events("
    "  id INTEGER PRIMARY KEY, at INTEGER NOT NULL, account TEXT NOT NULL,"
    "  mailbox TEXT NOT NULL, event TEXT NOT NULL, detail TEXT);"
    "CREATE TABLE IF NOT EXISTS last_run("
    "  account TEXT NOT NULL, mailbox TEXT NOT NULL, at INTEGER NOT NULL,"
    "  status TEXT NOT NULL, error TEXT NOT NULL, fetched INTEGER NOT NULL,"
    "  PRIMARY KEY(account, mailbox));";

enum { SQ_GET, SQ_SET, SQ_SEEN_GET, SQ_SEEN_ADD, SQ_SKIP, SQ_EVENT, SQ_REFUSE, SQ_UNREFUSE,
       SQ_REFUSED, SQ_DROP_OLD, SQ_COUNT };

static const char *const state_sql[SQ_COUNT] = {
    [SQ_GET] = "SELECT uidvalidity, last_uid FROM mailbox_state WHERE account=?1 AND mailbox=?2",
    [SQ_SET] = "INSERT INTO mailbox_state(account, mailbox, uidvalidity, last_uid, updated)"
               " VALUES(?1,?2,?3,?4,strftime('%s','now')) ON CONFLICT(account, mailbox) DO"
               " UPDATE SET uidvalidity=excluded.uidvalidity, last_uid=excluded.last_uid,"
               " updated=excluded.updated",
    [SQ_SEEN_GET] = "SELECT outcome FROM seen WHERE account=?1 AND mailbox=?2 AND sha256=?3",
    [SQ_SEEN_ADD] = "INSERT OR IGNORE INTO seen(account, mailbox, sha256, uidvalidity, uid,"
                    " outcome, msgid_hash, at) VALUES(?1,?2,?3,?4,?5,?6,?7,strftime('%s','now'))",
    [SQ_SKIP] = "INSERT OR REPLACE INTO skipped(account, mailbox, uidvalidity, uid, size,"
                " reason, at) VALUES(?1,?2,?3,?4,?5,?6,strftime('%s','now'))",
    [SQ_EVENT] = "INSERT INTO events(at, account, mailbox, event, detail)"
                 " VALUES(strftime('%s','now'),?1,?2,?3,?4)",
    /* The first refusal's time survives retries and a UIDVALIDITY change (same bytes). */
    [SQ_REFUSE] = "INSERT INTO refused(account, mailbox, uidvalidity, uid, sha256, rule, reason,"
                  " first_failed, last_failed, attempts) VALUES(?1,?2,?3,?4,?5,?6,?7,"
                  " COALESCE((SELECT min(first_failed) FROM refused WHERE account=?1 AND"
                  " mailbox=?2 AND sha256=?5), strftime('%s','now')), strftime('%s','now'), 1)"
                  " ON CONFLICT(account, mailbox, uidvalidity, uid) DO UPDATE SET"
                  " sha256=excluded.sha256, rule=excluded.rule, reason=excluded.reason,"
                  " last_failed=excluded.last_failed, attempts=attempts+1",
    [SQ_UNREFUSE] = "DELETE FROM refused WHERE account=?1 AND mailbox=?2 AND uidvalidity=?3"
                    " AND uid=?4",
    [SQ_REFUSED] = "SELECT uid FROM refused WHERE account=?1 AND mailbox=?2 AND uidvalidity=?3"
                   " ORDER BY uid",
    [SQ_DROP_OLD] = "DELETE FROM refused WHERE account=?1 AND mailbox=?2 AND uidvalidity<>?3",
};

struct ingest_state {
    sqlite3 *db;
    sqlite3_stmt *st[SQ_COUNT];
    int lock_fd;
};

static int state_dberr(ingest_state *s, mr_error *err, const char *what)
{
    int code = sqlite3_errcode(s->db) == SQLITE_FULL ? MR_E_NOSPACE : MR_E_DB;

    return mr_error_set(err, code, "state database: %s: %s", what, sqlite3_errmsg(s->db));
}

static int state_exec(ingest_state *s, const char *sql, mr_error *err)
{
    char *msg = NULL;

    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = mr_error_set(err, MR_E_DB, "state database: %s",
                              msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

int state_open(const char *path, ingest_state **out, mr_error *err)
{
    ingest_state *s;
    char lock[4096];
    int rc;

    *out = NULL;
    if ((s = calloc(1, sizeof *s)) == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    snprintf(lock, sizeof lock, "%s.lock", path);
    s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot open %s", lock);
        free(s);
        return rc;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK
                 ? mr_error_set(err, MR_E_STATE, "another ingest is running (lock %s held)", lock)
                 : mr_error_errno(err, MR_E_IO, errno, "cannot lock %s", lock);
        close(s->lock_fd);
        free(s);
        return rc;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot open state database %s", path);
        state_close(s);
        return rc;
    }
    close(fd);
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = mr_error_set(err, MR_E_DB, "cannot open state database %s", path);
        state_close(s);
        return rc;
    }
    sqlite3_busy_timeout(s->db, 30000);
    if ((rc = state_exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                            "BEGIN IMMEDIATE;", err)) != 0 ||
        (rc = state_exec(s, state_schema, err)) != 0 ||
        (rc = state_exec(s, "INSERT INTO schema_version SELECT 1 WHERE NOT EXISTS"
                            " (SELECT 1 FROM schema_version); COMMIT;", err)) != 0) {
        state_close(s);
        return mr_error_prefix(err, "%s", path);
    }
    for (int i = 0; i < SQ_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, state_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                               NULL) != SQLITE_OK) {
            rc = state_dberr(s, err, "prepare");
            state_close(s);
            return rc;
        }
    }
    *out = s;
    return 0;
}

void state_close(ingest_state *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < SQ_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    if (s->db != NULL && sqlite3_get_autocommit(s->db) == 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(s->db);
    if (s->lock_fd >= 0)
        close(s->lock_fd);      /* releases the flock */
    free(s);
}

struct sqlite3 *state_sqlite(ingest_state *s)
{
    return s->db;
}

static int state_step_done(ingest_state *s, sqlite3_stmt *q, const char *what, mr_error *err)
{
    int r = sqlite3_step(q);

    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return r == SQLITE_DONE ? 0 : state_dberr(s, err, what);
}

int state_get(ingest_state *s, const char *account, const char *mailbox, bool *found,
              uint32_t *uidvalidity, uint32_t *last_uid, mr_error *err)
{
    sqlite3_stmt *q = s->st[SQ_GET];
    int r;

    *found = false;
    *uidvalidity = *last_uid = 0;
    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, mailbox, -1, SQLITE_STATIC);
    r = sqlite3_step(q);
    if (r == SQLITE_ROW) {
        *found = true;
        *uidvalidity = (uint32_t)sqlite3_column_int64(q, 0);
        *last_uid = (uint32_t)sqlite3_column_int64(q, 1);
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return state_dberr(s, err, "read mailbox state");
    return 0;
}

int state_begin(ingest_state *s, mr_error *err)
{
    return state_exec(s, "BEGIN IMMEDIATE", err);
}

int state_commit(ingest_state *s, mr_error *err)
{
    int rc = state_exec(s, "COMMIT", err);

    if (rc != 0)
        state_rollback(s);
    return rc;
}

void state_rollback(ingest_state *s)
{
    if (sqlite3_get_autocommit(s->db) == 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int state_set(ingest_state *s, const char *account, const char *mailbox, uint32_t uidvalidity,
              uint32_t last_uid, mr_error *err)
{
    sqlite3_stmt *q = s->st[SQ_SET];

    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, mailbox, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, uidvalidity);
    sqlite3_bind_int64(q, 4, last_uid);
    return state_step_done(s, q, "write mailbox state", err);
}

int state_seen_get(ingest_state *s, const char *account, const char *mailbox,
                   const char *sha256_hex, bool *seen, char outcome[16], mr_error *err)
{
    sqlite3_stmt *q = s->st[SQ_SEEN_GET];
    int r;

    *seen = false;
    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, mailbox, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, sha256_hex, -1, SQLITE_STATIC);
    r = sqlite3_step(q);
    if (r == SQLITE_ROW) {
        *seen = true;
        if (outcome != NULL) {
            const unsigned char *o = sqlite3_column_text(q, 0);
            snprintf(outcome, 16, "%s", o ? (const char *)o : "");
        }
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return state_dberr(s, err, "read seen");
    return 0;
}

int state_seen_add(ingest_state *s, const char *account, const char *mailbox,
                   const char *sha256_hex, uint32_t uidvalidity, uint32_t uid,
                   const char *outcome, const char *msgid_hash, mr_error *err)
{
    sqlite3_stmt *q = s->st[SQ_SEEN_ADD];

    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, mailbox, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, sha256_hex, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, uidvalidity);
    sqlite3_bind_int64(q, 5, uid);
    sqlite3_bind_text(q, 6, outcome, -1, SQLITE_STATIC);
    if (msgid_hash != NULL)
        sqlite3_bind_text(q, 7, msgid_hash, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, 7);
    return state_step_done(s, q, "write seen", err);
}

int state_skip_add(ingest_state *s, const char *account, const char *mailbox,
                   uint32_t uidvalidity, uint32_t uid, uint64_t size, const char *reason,
                   mr_error *err)
{
    sqlite3_stmt *q = s->st[SQ_SKIP];

    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, mailbox, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, uidvalidity);
    sqlite3_bind_int64(q, 4, uid);
    sqlite3_bind_int64(q, 5, (sqlite3_int64)size);
    sqlite3_bind_text(q, 6, reason, -1, SQLITE_STATIC);
    return state_step_done(s, q, "write skipped", err);
}

int state_event(ingest_state *s, const char *account, const char *mailbox, const char *event,
                const char *detail, mr_error *err)
{
    sqlite3_stmt *q = s->st[SQ_EVENT];

    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, mailbox, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, event, -1, SQLITE_STATIC);
    if (detail != NULL)
        sqlite3_bind_text(q, 4, detail, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, 4);
    return state_step_done(s, q, "write event", err);
}

int state_run_set(ingest_state *s, const char *account, const char *mailbox, bool ok,
                  const char *error, uint64_t fetched, mr_error *err)
{
    sqlite3_stmt *q;
    int r;

    if (sqlite3_prepare_v2(s->db, "INSERT INTO last_run(account, mailbox, at, status, error,"
                                  " fetched) VALUES(?1,?2,strftime('%s','now'),?3,?4,?5)"
                                  " ON CONFLICT(account, mailbox) DO UPDATE SET at=excluded.at,"
                                  " status=excluded.status, error=excluded.error,"
                                  " fetched=excluded.fetched", -1, &q, NULL) != SQLITE_OK)
        return mr_error_set(err, MR_E_DB, "state: record the run: %s", sqlite3_errmsg(s->db));
    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, mailbox, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, ok ? "ok" : "failed", -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, error != NULL ? error : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 5, (sqlite3_int64)fetched);
    r = sqlite3_step(q);
    sqlite3_finalize(q);
    if (r != SQLITE_DONE)
        return mr_error_set(err, MR_E_DB, "state: record the run: %s", sqlite3_errmsg(s->db));
    return 0;
}

int state_run_read(const char *path, const char *account, const char *mailbox,
                   struct state_run *out, mr_error *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int r, rc = 0;

    memset(out, 0, sizeof *out);
    if (access(path, F_OK) != 0)
        return 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = mr_error_set(err, MR_E_DB, "cannot open state database %s", path);
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, 30000);
    if (sqlite3_prepare_v2(db, "SELECT at, status, error, fetched FROM last_run WHERE"
                               " account=?1 AND mailbox=?2", -1, &q, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return 0;       /* a state file from before runs were recorded */
    }
    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, mailbox, -1, SQLITE_STATIC);
    r = sqlite3_step(q);
    if (r == SQLITE_ROW) {
        const unsigned char *st = sqlite3_column_text(q, 1), *er = sqlite3_column_text(q, 2);
        out->found = true;
        out->at = (time_t)sqlite3_column_int64(q, 0);
        snprintf(out->status, sizeof out->status, "%s", st ? (const char *)st : "");
        snprintf(out->error, sizeof out->error, "%s", er ? (const char *)er : "");
        out->fetched = (uint64_t)sqlite3_column_int64(q, 3);
    } else if (r != SQLITE_DONE) {
        rc = mr_error_set(err, MR_E_DB, "state database %s: %s", path, sqlite3_errmsg(db));
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return rc;
}

int state_refused_add(ingest_state *s, const char *account, const char *mailbox,
                      uint32_t uidvalidity, uint32_t uid, const char *sha256_hex,
                      const char *rule, const char *reason, mr_error *err)
{
    sqlite3_stmt *q = s->st[SQ_REFUSE];

    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, mailbox, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, uidvalidity);
    sqlite3_bind_int64(q, 4, uid);
    sqlite3_bind_text(q, 5, sha256_hex, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 6, rule, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 7, reason, -1, SQLITE_STATIC);
    return state_step_done(s, q, "write refused", err);
}

int state_refused_clear(ingest_state *s, const char *account, const char *mailbox,
                        uint32_t uidvalidity, uint32_t uid, mr_error *err)
{
    sqlite3_stmt *q = s->st[SQ_UNREFUSE];

    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, mailbox, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, uidvalidity);
    sqlite3_bind_int64(q, 4, uid);
    return state_step_done(s, q, "clear refused", err);
}

int state_refused_drop_other(ingest_state *s, const char *account, const char *mailbox,
                             uint32_t uidvalidity, mr_error *err)
{
    sqlite3_stmt *q = s->st[SQ_DROP_OLD];

    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, mailbox, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, uidvalidity);
    return state_step_done(s, q, "drop refused", err);
}

int state_refused_uids(ingest_state *s, const char *account, const char *mailbox,
                       uint32_t uidvalidity, uint32_t **uids, size_t *n, mr_error *err)
{
    sqlite3_stmt *q = s->st[SQ_REFUSED];
    uint32_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int r;

    *uids = NULL;
    *n = 0;
    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, mailbox, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, uidvalidity);
    while ((r = sqlite3_step(q)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 64;
            uint32_t *nv = realloc(v, nc * sizeof *nv);
            if (nv == NULL) {
                sqlite3_reset(q);
                sqlite3_clear_bindings(q);
                free(v);
                return mr_error_set(err, MR_E_NOMEM, "out of memory");
            }
            v = nv;
            cap = nc;
        }
        v[cnt++] = (uint32_t)sqlite3_column_int64(q, 0);
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (r != SQLITE_DONE) {
        free(v);
        return state_dberr(s, err, "read refused");
    }
    *uids = v;
    *n = cnt;
    return 0;
}

/* ---- the read-only view for purge and check ---------------------------------------------- */

static int view_fail(sqlite3 *db, const char *path, mr_error *err)
{
    return mr_error_set(err, MR_E_DB, "state database %s: %s", path, sqlite3_errmsg(db));
}

int state_view_read(const char *path, const char *account, const char *mailbox,
                    struct state_view *v, mr_error *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int r, rc = 0;

    memset(v, 0, sizeof *v);
    if (access(path, F_OK) != 0)
        return 0;       /* never ingested: found stays false */
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = mr_error_set(err, MR_E_DB, "cannot open state database %s", path);
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, 30000);
    if (sqlite3_prepare_v2(db, "SELECT uidvalidity, last_uid FROM mailbox_state WHERE"
                               " account=?1 AND mailbox=?2", -1, &q, NULL) != SQLITE_OK) {
        /* An old state file without the table: nothing was ingested into it. */
        sqlite3_close(db);
        return 0;
    }
    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, mailbox, -1, SQLITE_STATIC);
    r = sqlite3_step(q);
    if (r == SQLITE_ROW) {
        v->found = true;
        v->uidvalidity = (uint32_t)sqlite3_column_int64(q, 0);
        v->last_uid = (uint32_t)sqlite3_column_int64(q, 1);
    } else if (r != SQLITE_DONE) {
        rc = view_fail(db, path, err);
    }
    sqlite3_finalize(q);
    q = NULL;
    if (rc == 0 && v->found) {
        if (sqlite3_prepare_v2(db, "SELECT uid, rule, reason, first_failed, last_failed,"
                                   " attempts FROM refused WHERE account=?1 AND mailbox=?2"
                                   " AND uidvalidity=?3 ORDER BY uid", -1, &q, NULL)
            != SQLITE_OK) {
            sqlite3_close(db);
            return 0;   /* a state file from before refusals were recorded */
        }
        sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, mailbox, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, v->uidvalidity);
        size_t cap = 0;
        while (rc == 0 && (r = sqlite3_step(q)) == SQLITE_ROW) {
            if (v->n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                struct state_refusal *nv = realloc(v->refused, nc * sizeof *nv);
                if (nv == NULL) {
                    rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
                    break;
                }
                v->refused = nv;
                cap = nc;
            }
            struct state_refusal *f = &v->refused[v->n++];
            const unsigned char *rule = sqlite3_column_text(q, 1);
            const unsigned char *reason = sqlite3_column_text(q, 2);
            f->uid = (uint32_t)sqlite3_column_int64(q, 0);
            snprintf(f->rule, sizeof f->rule, "%s", rule ? (const char *)rule : "");
            snprintf(f->reason, sizeof f->reason, "%s", reason ? (const char *)reason : "");
            f->first_failed = (time_t)sqlite3_column_int64(q, 3);
            f->last_failed = (time_t)sqlite3_column_int64(q, 4);
            f->attempts = (unsigned)sqlite3_column_int64(q, 5);
        }
        if (rc == 0 && r != SQLITE_DONE)
            rc = view_fail(db, path, err);
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
    if (rc != 0)
        state_view_clear(v);
    return rc;
}

const struct state_refusal *state_view_refusal(const struct state_view *v, uint32_t uid)
{
    size_t lo = 0, hi = v->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->refused[mid].uid == uid)
            return &v->refused[mid];
        if (v->refused[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void state_view_clear(struct state_view *v)
{
    free(v->refused);
    memset(v, 0, sizeof *v);
}
