/* members.c — see members.h.  All statements are prepared once per handle. */
#include "ingest/members.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#define MEMBERS_SCHEMA_VERSION 2

static const char members_schema[] =
    "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS members("
    "  member_id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS member_cpr("
    "  cpr TEXT PRIMARY KEY,"                   /* ten digits, no separator */
    "  member_id TEXT NOT NULL REFERENCES members(member_id) ON DELETE CASCADE);"
    "CREATE TABLE IF NOT EXISTS member_addresses("
    "  address TEXT NOT NULL,"                  /* lower case */
    "  member_id TEXT NOT NULL REFERENCES members(member_id) ON DELETE CASCADE,"
    "  PRIMARY KEY(address, member_id)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS cases("
    "  case_id TEXT PRIMARY KEY,"               /* "2024-12345" */
    "  case_num INTEGER,"                       /* 12345: what "[Sag #12345]" cites */
    "  member_id TEXT NOT NULL REFERENCES members(member_id) ON DELETE CASCADE);"
    "CREATE INDEX IF NOT EXISTS cases_num ON cases(case_num);"
    /* Documents outlive registry re-imports, so no foreign key to members. */
    "CREATE TABLE IF NOT EXISTS documents("
    "  id INTEGER PRIMARY KEY,"
    "  member_id TEXT NOT NULL,"
    "  case_id TEXT,"
    "  rule TEXT NOT NULL CHECK(rule IN ('case','sender','cpr','manual')),"
    "  message_id TEXT,"
    "  sha256 TEXT NOT NULL,"
    "  received INTEGER NOT NULL,"              /* INTERNALDATE, Unix time UTC */
    "  source_account TEXT NOT NULL,"
    "  source_mailbox TEXT NOT NULL,"
    "  source_uidvalidity INTEGER NOT NULL,"
    "  source_uid INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  ingested INTEGER NOT NULL,"
    /* Last column on purpose: SQLite keeps a trailing zeroblob() unexpanded, so a large
     * message is written in pieces (members_write_raw) and never held twice in memory. */
    "  raw BLOB NOT NULL,"                      /* the original bytes, as fetched */
    "  UNIQUE(source_account, source_mailbox, source_uidvalidity, source_uid, sha256));"
    "CREATE INDEX IF NOT EXISTS documents_member ON documents(member_id);"
    "CREATE INDEX IF NOT EXISTS documents_sha256 ON documents(sha256);"
    "CREATE TABLE IF NOT EXISTS unrouted("
    "  id INTEGER PRIMARY KEY,"
    "  reason TEXT NOT NULL,"
    "  message_id TEXT,"
    "  sha256 TEXT NOT NULL,"
    "  received INTEGER NOT NULL,"
    "  source_account TEXT NOT NULL,"
    "  source_mailbox TEXT NOT NULL,"
    "  source_uidvalidity INTEGER NOT NULL,"
    "  source_uid INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  ingested INTEGER NOT NULL,"
    "  handled INTEGER NOT NULL DEFAULT 0,"     /* set by the caseworker's tool */
    "  raw BLOB NOT NULL,"                      /* last: see documents */
    "  UNIQUE(source_account, source_mailbox, source_uidvalidity, source_uid, sha256));";

enum {
    ST_FIND_CASE, ST_FIND_ADDR, ST_FIND_CPR, ST_INS_DOC, ST_INS_UNROUTED, ST_ADD_MEMBER,
    ST_ADD_CPR, ST_OWNER_CPR, ST_ADD_ADDR, ST_ADD_CASE, ST_OWNER_CASE, ST_FIND_CASE_NUM,
    ST_HAS_DOC, ST_HAS_UNROUTED, ST_COUNT
};

static const char *const members_sql[ST_COUNT] = {
    [ST_FIND_CASE] = "SELECT member_id, case_id FROM cases WHERE case_id = ?1",
    [ST_FIND_ADDR] = "SELECT member_id FROM member_addresses WHERE address = ?1 LIMIT 2",
    [ST_FIND_CPR] = "SELECT member_id FROM member_cpr WHERE cpr = ?1",
    [ST_INS_DOC] =
        "INSERT INTO documents(member_id, case_id, rule, message_id, sha256,"
        " received, source_account, source_mailbox, source_uidvalidity, source_uid, size,"
        " ingested, raw) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,strftime('%s','now'),"
        " zeroblob(?12)) ON CONFLICT(source_account, source_mailbox, source_uidvalidity,"
        " source_uid, sha256) DO NOTHING",
    [ST_INS_UNROUTED] =
        "INSERT INTO unrouted(reason, message_id, sha256, received,"
        " source_account, source_mailbox, source_uidvalidity, source_uid, size, ingested,"
        " raw) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,strftime('%s','now'),zeroblob(?10))"
        " ON CONFLICT(source_account, source_mailbox, source_uidvalidity, source_uid, sha256)"
        " DO NOTHING",
    [ST_ADD_MEMBER] = "INSERT INTO members(member_id, name) VALUES(?1, ?2)",
    [ST_ADD_CPR] = "INSERT OR IGNORE INTO member_cpr(cpr, member_id) VALUES(?1, ?2)",
    [ST_OWNER_CPR] = "SELECT member_id FROM member_cpr WHERE cpr = ?1",
    [ST_ADD_ADDR] = "INSERT OR IGNORE INTO member_addresses(address, member_id) VALUES(?1, ?2)",
    [ST_ADD_CASE] = "INSERT OR IGNORE INTO cases(case_id, member_id, case_num) VALUES(?1, ?2, ?3)",
    [ST_FIND_CASE_NUM] = "SELECT member_id, case_id FROM cases WHERE case_num = ?1 LIMIT 2",
    [ST_OWNER_CASE] = "SELECT member_id FROM cases WHERE case_id = ?1",
    [ST_HAS_DOC] = "SELECT 1 FROM documents WHERE source_account=?1 AND source_mailbox=?2"
                   " AND source_uidvalidity=?3 AND source_uid=?4 AND sha256=?5",
    [ST_HAS_UNROUTED] = "SELECT 1 FROM unrouted WHERE source_account=?1 AND source_mailbox=?2"
                        " AND source_uidvalidity=?3 AND source_uid=?4 AND sha256=?5",
};

struct members_db {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
};

static int members_migrate(members_db *m, mr_error *err);

static int members_dberr(members_db *m, mr_error *err, const char *what)
{
    int code = MR_E_DB;
    int ec = sqlite3_errcode(m->db);

    if (ec == SQLITE_FULL)
        code = MR_E_NOSPACE;
    return mr_error_set(err, code, "member database: %s: %s", what, sqlite3_errmsg(m->db));
}

static int members_exec(members_db *m, const char *sql, mr_error *err)
{
    char *msg = NULL;

    if (sqlite3_exec(m->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = mr_error_set(err, MR_E_DB, "member database: %s",
                              msg != NULL ? msg : sqlite3_errmsg(m->db));
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

int members_open(const char *path, members_db **out, mr_error *err)
{
    members_db *m;
    int fd, rc;

    *out = NULL;
    /* Create the file ourselves so that it is 0600 from the first byte: it holds CPR
     * numbers and mail. */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return mr_error_errno(err, MR_E_IO, errno, "cannot open member database %s", path);
    close(fd);
    m = calloc(1, sizeof *m);
    if (m == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    if (sqlite3_open_v2(path, &m->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = mr_error_set(err, MR_E_DB, "cannot open member database %s: %s", path,
                          m->db ? sqlite3_errmsg(m->db) : "out of memory");
        members_close(m);
        return rc;
    }
    sqlite3_busy_timeout(m->db, 30000);
    /* WAL: readers (caseworkers' tools) do not block ingest; synchronous=FULL so that a
     * committed batch survives a power cut before state says it was delivered. */
    if ((rc = members_exec(m, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                              "PRAGMA foreign_keys=ON;", err)) != 0 ||
        (rc = members_exec(m, "BEGIN IMMEDIATE", err)) != 0) {
        members_close(m);
        return rc;
    }
    if ((rc = members_exec(m, members_schema, err)) != 0 ||
        (rc = members_exec(m, "INSERT INTO schema_version SELECT 2 WHERE NOT EXISTS"
                              " (SELECT 1 FROM schema_version)", err)) != 0 ||
        (rc = members_migrate(m, err)) != 0 ||
        (rc = members_exec(m, "COMMIT", err)) != 0) {
        members_exec(m, "ROLLBACK", NULL);
        members_close(m);
        return mr_error_prefix(err, "%s", path);
    }
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(m->db, members_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &m->st[i],
                               NULL) != SQLITE_OK) {
            rc = members_dberr(m, err, "prepare");
            members_close(m);
            return rc;
        }
    }
    *out = m;
    return 0;
}

/* A database created before the rule "manual" existed: widen the CHECK constraint of
 * documents in place.  Only loosening a CHECK, which SQLite documents as safe to do by
 * editing the stored schema (lang_altertable.html, "other kinds of schema changes");
 * rebuilding the table would copy every stored message. */
static int members_migrate(members_db *m, mr_error *err)
{
    static const char old_check[] = "CHECK(rule IN ('case','sender','cpr'))";
    sqlite3_stmt *st;
    bool old = false;
    int s, version = 0, rc;
    char sql[160];

    if (sqlite3_prepare_v2(m->db, "SELECT sql FROM sqlite_schema WHERE type='table' AND"
                                  " name='documents'", -1, &st, NULL) != SQLITE_OK)
        return members_dberr(m, err, "read schema");
    if ((s = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
        old = strstr((const char *)sqlite3_column_text(st, 0), old_check) != NULL;
    sqlite3_finalize(st);
    if (s != SQLITE_ROW)
        return members_dberr(m, err, "read schema");
    if (!old)
        return 0;
    if (sqlite3_prepare_v2(m->db, "PRAGMA schema_version", -1, &st, NULL) != SQLITE_OK)
        return members_dberr(m, err, "read schema version");
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    snprintf(sql, sizeof sql, "PRAGMA schema_version=%d", version + 1);
    if ((rc = members_exec(m, "PRAGMA writable_schema=ON", err)) != 0)
        return rc;
    rc = members_exec(m, "UPDATE sqlite_schema SET sql=replace(sql,"
                         " 'CHECK(rule IN (''case'',''sender'',''cpr''))',"
                         " 'CHECK(rule IN (''case'',''sender'',''cpr'',''manual''))')"
                         " WHERE type='table' AND name='documents'", err);
    if (rc == 0)
        rc = members_exec(m, sql, err);
    if (members_exec(m, "PRAGMA writable_schema=OFF", rc == 0 ? err : NULL) != 0 && rc == 0)
        rc = MR_E_DB;
    if (rc == 0)
        rc = members_exec(m, "UPDATE schema_version SET version=2", err);
    return rc;
}

void members_close(members_db *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(m->st[i]);
    sqlite3_close(m->db);
    free(m);
}

struct sqlite3 *members_sqlite(members_db *m)
{
    return m->db;
}

static void members_copy_col(sqlite3_stmt *st, int col, char out[MEMBERS_ID_MAX])
{
    const unsigned char *v = sqlite3_column_text(st, col);

    snprintf(out, MEMBERS_ID_MAX, "%s", v != NULL ? (const char *)v : "");
}

/* The number a case id ends in ("2024-01234" -> 1234), or -1 if it does not end in one.
 * References often cite only the number ("[Sag #01234]"). */
static long long members_case_num(const char *id)
{
    const char *p = strrchr(id, '-');
    long long v = 0;

    p = p != NULL ? p + 1 : id;
    if (*p == '#')
        p++;
    if (*p == '\0' || strlen(p) > 12)
        return -1;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

int members_find_case(members_db *m, const char *case_ref, bool *found,
                      char member[MEMBERS_ID_MAX], char case_id[MEMBERS_ID_MAX], mr_error *err)
{
    sqlite3_stmt *st = m->st[ST_FIND_CASE];
    long long num;
    int s, rows = 0;

    *found = false;
    sqlite3_bind_text(st, 1, case_ref, -1, SQLITE_STATIC);
    s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        *found = true;
        members_copy_col(st, 0, member);
        members_copy_col(st, 1, case_id);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        return members_dberr(m, err, "case lookup");
    /* A bare number matches the case ending in it, if exactly one does. */
    if (*found || strchr(case_ref, '-') != NULL || (num = members_case_num(case_ref)) < 0)
        return 0;
    st = m->st[ST_FIND_CASE_NUM];
    sqlite3_bind_int64(st, 1, num);
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (rows++ == 0) {
            members_copy_col(st, 0, member);
            members_copy_col(st, 1, case_id);
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (s != SQLITE_DONE)
        return members_dberr(m, err, "case lookup");
    *found = rows == 1;
    return 0;
}

/* ASCII lower case: domains are case-insensitive and local parts are in practice. */
static void members_lower(const char *in, char *out, size_t size)
{
    size_t i;

    for (i = 0; in[i] != '\0' && i + 1 < size; i++)
        out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] + 32) : in[i];
    out[i] = '\0';
}

int members_find_address(members_db *m, const char *addr, bool *found, bool *ambiguous,
                         char member[MEMBERS_ID_MAX], mr_error *err)
{
    sqlite3_stmt *st = m->st[ST_FIND_ADDR];
    char low[512];
    int s, rows = 0;

    *found = *ambiguous = false;
    members_lower(addr, low, sizeof low);
    sqlite3_bind_text(st, 1, low, -1, SQLITE_STATIC);
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (rows++ == 0)
            members_copy_col(st, 0, member);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (s != SQLITE_DONE)
        return members_dberr(m, err, "address lookup");
    if (rows == 1)
        *found = true;
    else if (rows > 1)
        *ambiguous = true;
    return 0;
}

int members_find_cpr(members_db *m, const char *cpr, bool *found,
                     char member[MEMBERS_ID_MAX], mr_error *err)
{
    sqlite3_stmt *st = m->st[ST_FIND_CPR];
    int s;

    *found = false;
    sqlite3_bind_text(st, 1, cpr, -1, SQLITE_STATIC);
    s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        *found = true;
        members_copy_col(st, 0, member);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        return members_dberr(m, err, "CPR lookup");
    return 0;
}

static int members_count_one(members_db *m, const char *sql, int64_t *out, mr_error *err)
{
    sqlite3_stmt *st;
    int s;

    if (sqlite3_prepare_v2(m->db, sql, -1, &st, NULL) != SQLITE_OK)
        return members_dberr(m, err, "count");
    s = sqlite3_step(st);
    *out = s == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (s != SQLITE_ROW)
        return members_dberr(m, err, "count");
    return 0;
}

int members_count(members_db *m, struct members_counts *out, mr_error *err)
{
    int rc;

    if ((rc = members_count_one(m, "SELECT count(*) FROM members", &out->members, err)) ||
        (rc = members_count_one(m, "SELECT count(*) FROM member_addresses", &out->addresses,
                                err)) ||
        (rc = members_count_one(m, "SELECT count(*) FROM member_cpr", &out->cprs, err)) ||
        (rc = members_count_one(m, "SELECT count(*) FROM cases", &out->cases, err)) ||
        (rc = members_count_one(m, "SELECT count(*) FROM documents", &out->documents, err)) ||
        (rc = members_count_one(m, "SELECT count(*) FROM unrouted", &out->unrouted, err)))
        return rc;
    return 0;
}

int members_begin(members_db *m, mr_error *err)
{
    return members_exec(m, "BEGIN IMMEDIATE", err);
}

int members_commit(members_db *m, mr_error *err)
{
    int rc = members_exec(m, "COMMIT", err);

    if (rc != 0 && sqlite3_get_autocommit(m->db) == 0)
        members_exec(m, "ROLLBACK", NULL);
    return rc;
}

void members_rollback(members_db *m)
{
    if (sqlite3_get_autocommit(m->db) == 0)
        members_exec(m, "ROLLBACK", NULL);
}

int members_savepoint(members_db *m, mr_error *err)
{
    return members_exec(m, "SAVEPOINT doc", err);
}

int members_release(members_db *m, mr_error *err)
{
    return members_exec(m, "RELEASE doc", err);
}

int members_undo(members_db *m, mr_error *err)
{
    if (sqlite3_get_autocommit(m->db) != 0)
        return mr_error_set(err, MR_E_DB, "member database: the transaction was rolled back "
                                          "(a trigger or constraint ended it)");
    return members_exec(m, "ROLLBACK TO doc; RELEASE doc", err);
}

/* A statement that failed for this document only (a constraint, a trigger's RAISE, a value
 * too big, a full disk) is a refusal: MR_E_INVALID / MR_E_NOSPACE / MR_E_LIMIT. */
static int members_store_err(members_db *m, mr_error *err)
{
    int ec = sqlite3_errcode(m->db) & 0xff;

    if (ec == SQLITE_CONSTRAINT || ec == SQLITE_MISMATCH)
        return mr_error_set(err, MR_E_INVALID, "member database refused the document: %s",
                            sqlite3_errmsg(m->db));
    if (ec == SQLITE_TOOBIG)
        return mr_error_set(err, MR_E_LIMIT, "member database refused the document: %s",
                            sqlite3_errmsg(m->db));
    return members_dberr(m, err, "store document");
}

/* An insert that changed nothing is a duplicate only if the row is really there: a
 * trigger's RAISE(IGNORE) also changes nothing. */
static int members_has(members_db *m, const struct members_doc *d, bool *has, mr_error *err)
{
    sqlite3_stmt *st = m->st[d->member_id != NULL ? ST_HAS_DOC : ST_HAS_UNROUTED];
    int s;

    sqlite3_bind_text(st, 1, d->account, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, d->mailbox, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, d->uidvalidity);
    sqlite3_bind_int64(st, 4, d->uid);
    sqlite3_bind_text(st, 5, d->sha256_hex, -1, SQLITE_STATIC);
    s = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        return members_dberr(m, err, "look up document");
    *has = s == SQLITE_ROW;
    return 0;
}

/* Fill the zeroblob of row `rowid` with the message, a megabyte at a time. */
static int members_write_raw(members_db *m, const char *table, sqlite3_int64 rowid,
                             const unsigned char *raw, size_t len, mr_error *err)
{
    sqlite3_blob *blob;
    size_t off = 0;

    if (len > INT_MAX)
        return mr_error_set(err, MR_E_LIMIT, "message of %zu bytes too large for the member "
                                             "database", len);
    if (sqlite3_blob_open(m->db, "main", table, "raw", rowid, 1, &blob) != SQLITE_OK)
        return members_dberr(m, err, "store document");
    while (off < len) {
        size_t n = len - off < (1u << 20) ? len - off : (1u << 20);
        if (sqlite3_blob_write(blob, raw + off, (int)n, (int)off) != SQLITE_OK) {
            int rc = members_dberr(m, err, "store document");
            sqlite3_blob_close(blob);
            return rc;
        }
        off += n;
    }
    if (sqlite3_blob_close(blob) != SQLITE_OK)
        return members_dberr(m, err, "store document");
    return 0;
}

int members_store(members_db *m, const struct members_doc *d, bool *duplicate, mr_error *err)
{
    sqlite3_stmt *st;
    int i = 1, s;

    *duplicate = false;
    if (d->member_id != NULL) {
        st = m->st[ST_INS_DOC];
        sqlite3_bind_text(st, i++, d->member_id, -1, SQLITE_STATIC);
        if (d->case_id != NULL)
            sqlite3_bind_text(st, i++, d->case_id, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, i++);
    } else {
        st = m->st[ST_INS_UNROUTED];
    }
    sqlite3_bind_text(st, i++, d->rule, -1, SQLITE_STATIC);
    if (d->message_id != NULL)
        sqlite3_bind_text(st, i++, d->message_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i++);
    sqlite3_bind_text(st, i++, d->sha256_hex, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, i++, (sqlite3_int64)d->received);
    sqlite3_bind_text(st, i++, d->account, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, d->mailbox, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, i++, d->uidvalidity);
    sqlite3_bind_int64(st, i++, d->uid);
    sqlite3_bind_int64(st, i++, (sqlite3_int64)d->raw_len);
    /* The bytes go in afterwards through incremental blob I/O: binding them would make
     * SQLite assemble the whole record in memory, a second copy of a large message. */
    sqlite3_bind_int64(st, i++, d->no_raw ? 0 : (sqlite3_int64)d->raw_len);
    s = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (s != SQLITE_DONE)
        return members_store_err(m, err);
    *duplicate = sqlite3_changes(m->db) == 0;
    if (*duplicate) {
        bool has = false;
        int rc = members_has(m, d, &has, err);
        if (rc != 0)
            return rc;
        if (!has)
            return mr_error_set(err, MR_E_INVALID, "member database did not store the "
                                                   "document (a trigger ignored it)");
        return 0;
    }
    if (d->raw_len == 0 || d->no_raw)
        return 0;
    return members_write_raw(m, d->member_id != NULL ? "documents" : "unrouted",
                             sqlite3_last_insert_rowid(m->db), d->raw, d->raw_len, err);
}

int members_registry_clear(members_db *m, mr_error *err)
{
    return members_exec(m, "DELETE FROM member_addresses; DELETE FROM member_cpr;"
                           "DELETE FROM cases; DELETE FROM members;", err);
}

int members_add_member(members_db *m, const char *member_id, const char *name, mr_error *err)
{
    sqlite3_stmt *st = m->st[ST_ADD_MEMBER];
    int s;

    sqlite3_bind_text(st, 1, member_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    s = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (s == SQLITE_CONSTRAINT)
        return mr_error_set(err, MR_E_EXISTS, "member id %s appears twice", member_id);
    if (s != SQLITE_DONE)
        return members_dberr(m, err, "add member");
    return 0;
}

/* INSERT OR IGNORE, then on "ignored" look up who holds the key, for the error message. */
static int members_add_keyed(members_db *m, int ins, int owner_st, const char *member_id,
                             const char *key, char owner[MEMBERS_ID_MAX], mr_error *err)
{
    sqlite3_stmt *st = m->st[ins];
    int s;

    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, member_id, -1, SQLITE_STATIC);
    s = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (s != SQLITE_DONE)
        return members_dberr(m, err, "add");
    if (sqlite3_changes(m->db) > 0)
        return 0;
    if (owner != NULL) {
        owner[0] = '\0';
        st = m->st[owner_st];
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            members_copy_col(st, 0, owner);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    return mr_error_set(err, MR_E_EXISTS, "already registered");
}

int members_add_cpr(members_db *m, const char *member_id, const char *cpr,
                    char owner[MEMBERS_ID_MAX], mr_error *err)
{
    return members_add_keyed(m, ST_ADD_CPR, ST_OWNER_CPR, member_id, cpr, owner, err);
}

int members_add_case(members_db *m, const char *member_id, const char *case_id,
                     char owner[MEMBERS_ID_MAX], mr_error *err)
{
    long long num = members_case_num(case_id);

    if (num >= 0)
        sqlite3_bind_int64(m->st[ST_ADD_CASE], 3, num);
    else
        sqlite3_bind_null(m->st[ST_ADD_CASE], 3);
    return members_add_keyed(m, ST_ADD_CASE, ST_OWNER_CASE, member_id, case_id, owner, err);
}

int members_add_address(members_db *m, const char *member_id, const char *addr, mr_error *err)
{
    sqlite3_stmt *st = m->st[ST_ADD_ADDR];
    char low[512];
    int s;

    members_lower(addr, low, sizeof low);
    sqlite3_bind_text(st, 1, low, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, member_id, -1, SQLITE_STATIC);
    s = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (s != SQLITE_DONE)
        return members_dberr(m, err, "add address");
    return 0;       /* the same address twice for one member is harmless */
}
