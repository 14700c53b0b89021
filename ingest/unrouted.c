/* unrouted.c — see unrouted.h.  SQL on the member database's own handle. */
#include "ingest/unrouted.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#define UNROUTED_COLS "id, source_account, source_mailbox, source_uidvalidity, source_uid," \
                      " received, ingested, handled, size, length(raw) > 0, reason, sha256"

static int unrouted_dberr(sqlite3 *db, mr_error *err, const char *what)
{
    return mr_error_set(err, MR_E_DB, "member database: %s: %s", what, sqlite3_errmsg(db));
}

static void unrouted_text(sqlite3_stmt *st, int col, char *out, size_t size)
{
    const unsigned char *v = sqlite3_column_text(st, col);

    snprintf(out, size, "%s", v != NULL ? (const char *)v : "");
}

static void unrouted_row(sqlite3_stmt *st, struct unrouted_entry *e)
{
    memset(e, 0, sizeof *e);
    e->id = sqlite3_column_int64(st, 0);
    unrouted_text(st, 1, e->account, sizeof e->account);
    unrouted_text(st, 2, e->mailbox, sizeof e->mailbox);
    e->uidvalidity = (uint32_t)sqlite3_column_int64(st, 3);
    e->uid = (uint32_t)sqlite3_column_int64(st, 4);
    e->received = (time_t)sqlite3_column_int64(st, 5);
    e->ingested = (time_t)sqlite3_column_int64(st, 6);
    e->handled = (time_t)sqlite3_column_int64(st, 7);
    e->size = sqlite3_column_int64(st, 8);
    e->has_raw = sqlite3_column_int(st, 9) != 0;
    unrouted_text(st, 10, e->reason, sizeof e->reason);
    unrouted_text(st, 11, e->sha256, sizeof e->sha256);
}

int unrouted_list(members_db *mdb, bool all, struct unrouted_entry **out, size_t *n,
                  mr_error *err)
{
    sqlite3 *db = members_sqlite(mdb);
    sqlite3_stmt *st;
    struct unrouted_entry *v = NULL;
    size_t cap = 0, cnt = 0;
    int s;

    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(db, all ? "SELECT " UNROUTED_COLS " FROM unrouted ORDER BY id"
                                   : "SELECT " UNROUTED_COLS " FROM unrouted WHERE handled = 0"
                                     " ORDER BY id", -1, &st, NULL) != SQLITE_OK)
        return unrouted_dberr(db, err, "list unrouted");
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 64;
            struct unrouted_entry *nv = realloc(v, nc * sizeof *nv);
            if (nv == NULL) {
                sqlite3_finalize(st);
                free(v);
                return mr_error_set(err, MR_E_NOMEM, "out of memory");
            }
            v = nv;
            cap = nc;
        }
        unrouted_row(st, &v[cnt++]);
    }
    sqlite3_finalize(st);
    if (s != SQLITE_DONE) {
        free(v);
        return unrouted_dberr(db, err, "list unrouted");
    }
    *out = v;
    *n = cnt;
    return 0;
}

int unrouted_get(members_db *mdb, int64_t id, struct unrouted_entry *e, unsigned char **raw,
                 size_t *len, mr_error *err)
{
    sqlite3 *db = members_sqlite(mdb);
    sqlite3_stmt *st;
    int s, rc = 0;

    if (raw != NULL)
        *raw = NULL;
    if (len != NULL)
        *len = 0;
    if (sqlite3_prepare_v2(db, "SELECT " UNROUTED_COLS ", raw FROM unrouted WHERE id = ?1", -1,
                           &st, NULL) != SQLITE_OK)
        return unrouted_dberr(db, err, "read unrouted");
    sqlite3_bind_int64(st, 1, id);
    s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        unrouted_row(st, e);
        if (raw != NULL && e->has_raw) {
            int n = sqlite3_column_bytes(st, 12);
            const void *p = sqlite3_column_blob(st, 12);
            if ((*raw = malloc((size_t)n)) == NULL)
                rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
            else {
                memcpy(*raw, p, (size_t)n);
                *len = (size_t)n;
            }
        }
    } else if (s == SQLITE_DONE) {
        rc = mr_error_set(err, MR_E_NOTFOUND, "no unrouted message with id %lld", (long long)id);
    } else {
        rc = unrouted_dberr(db, err, "read unrouted");
    }
    sqlite3_finalize(st);
    return rc;
}

int unrouted_done(members_db *mdb, int64_t id, time_t when, bool *was_handled, mr_error *err)
{
    sqlite3 *db = members_sqlite(mdb);
    struct unrouted_entry e;
    sqlite3_stmt *st;
    int rc, s;

    if ((rc = unrouted_get(mdb, id, &e, NULL, NULL, err)) != 0)
        return rc;
    *was_handled = e.handled != 0;
    if (*was_handled)
        return 0;
    if (sqlite3_prepare_v2(db, "UPDATE unrouted SET handled = ?2 WHERE id = ?1 AND handled = 0",
                           -1, &st, NULL) != SQLITE_OK)
        return unrouted_dberr(db, err, "mark handled");
    sqlite3_bind_int64(st, 1, id);
    /* 0 means waiting: a clock at the epoch still marks the entry handled. */
    sqlite3_bind_int64(st, 2, when > 0 ? (sqlite3_int64)when : 1);
    s = sqlite3_step(st);
    sqlite3_finalize(st);
    if (s != SQLITE_DONE)
        return unrouted_dberr(db, err, "mark handled");
    return 0;
}

static int unrouted_sha256_hex(const unsigned char *p, size_t n, char hex[65], mr_error *err)
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return mr_error_set(err, MR_E_CRYPTO, "SHA-256 failed");
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

struct unrouted_fetch_ctx {
    uint32_t uid;
    unsigned char *raw;
    size_t len;
    bool got;
};

static int unrouted_on_message(void *vctx, const struct imap_message *msg, mr_error *err)
{
    struct unrouted_fetch_ctx *c = vctx;

    if (msg->uid != c->uid || c->got)
        return 0;
    if (msg->oversized)
        return mr_error_set(err, MR_E_LIMIT, "UID %u is over the size limit", msg->uid);
    if ((c->raw = malloc(msg->body_len ? msg->body_len : 1)) == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    memcpy(c->raw, msg->body, msg->body_len);
    c->len = msg->body_len;
    c->got = true;
    return 0;
}

int unrouted_fetch(const struct imap_options *io, const struct unrouted_entry *e,
                   unsigned char **raw, size_t *len, mr_error *err)
{
    struct unrouted_fetch_ctx c = { .uid = e->uid };
    struct imap_mailbox_info info;
    imap_conn *conn = NULL;
    char hex[65];
    int rc;

    *raw = NULL;
    *len = 0;
    if ((rc = imap_connect(io, &conn, err)) != 0)
        return rc;
    rc = imap_examine(conn, e->mailbox, &info, err);
    if (rc == 0 && info.uidvalidity != e->uidvalidity)
        rc = mr_error_set(err, MR_E_NOTFOUND, "mailbox %s: UIDVALIDITY is %u, the entry's %u: "
                          "the message is no longer at its UID", e->mailbox, info.uidvalidity,
                          e->uidvalidity);
    if (rc == 0)
        rc = imap_uid_fetch(conn, e->uid, e->uid, unrouted_on_message, &c, err);
    imap_close(conn);
    if (rc == 0 && !c.got)
        rc = mr_error_set(err, MR_E_NOTFOUND, "mailbox %s UID %u: no longer on the server",
                          e->mailbox, e->uid);
    if (rc == 0)
        rc = unrouted_sha256_hex(c.raw, c.len, hex, err);
    if (rc == 0 && strcmp(hex, e->sha256) != 0)
        rc = mr_error_set(err, MR_E_NOTFOUND, "mailbox %s UID %u: the server's message is not "
                          "the one queued (SHA-256 differs)", e->mailbox, e->uid);
    if (rc != 0) {
        free(c.raw);
        return rc;
    }
    *raw = c.raw;
    *len = c.len;
    return 0;
}

/* Is member_id in the registry? */
static int unrouted_member_known(members_db *mdb, const char *member_id, bool *known,
                                 mr_error *err)
{
    sqlite3 *db = members_sqlite(mdb);
    sqlite3_stmt *st;
    int s;

    if (sqlite3_prepare_v2(db, "SELECT 1 FROM members WHERE member_id = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return unrouted_dberr(db, err, "member lookup");
    sqlite3_bind_text(st, 1, member_id, -1, SQLITE_STATIC);
    s = sqlite3_step(st);
    sqlite3_finalize(st);
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        return unrouted_dberr(db, err, "member lookup");
    *known = s == SQLITE_ROW;
    return 0;
}

int unrouted_assign(members_db *mdb, sink *s, const struct unrouted_entry *e,
                    const unsigned char *raw, size_t len, const char *member,
                    const char *case_id, enum sink_outcome *outcome, mr_error *err)
{
    struct route_result route = { .rule = ROUTE_MANUAL };
    char hex[65];
    bool known = false, was = false;
    mr_error derr;
    int rc;

    if (member == NULL || *member == '\0' || strlen(member) >= MEMBERS_ID_MAX)
        return mr_error_set(err, MR_E_INVALID, "a member id is needed (at most %d characters)",
                            MEMBERS_ID_MAX - 1);
    if ((rc = unrouted_member_known(mdb, member, &known, err)) != 0)
        return rc;
    if (!known)
        return mr_error_set(err, MR_E_NOTFOUND, "member %s is not in the registry", member);
    snprintf(route.member, sizeof route.member, "%s", member);
    if (case_id != NULL && *case_id != '\0') {
        char owner[MEMBERS_ID_MAX], cid[MEMBERS_ID_MAX];
        bool found;
        if (strlen(case_id) >= MEMBERS_ID_MAX)
            return mr_error_set(err, MR_E_INVALID, "case id too long");
        if ((rc = members_find_case(mdb, case_id, &found, owner, cid, err)) != 0)
            return rc;
        if (!found || strcmp(cid, case_id) != 0)
            return mr_error_set(err, MR_E_NOTFOUND, "case %s is not in the registry", case_id);
        if (strcmp(owner, member) != 0)
            return mr_error_set(err, MR_E_INVALID, "case %s belongs to member %s, not %s",
                                case_id, owner, member);
        snprintf(route.case_id, sizeof route.case_id, "%s", case_id);
    }
    /* Only the bytes that were queued go out. */
    if ((rc = unrouted_sha256_hex(raw, len, hex, err)) != 0)
        return rc;
    if (strcmp(hex, e->sha256) != 0)
        return mr_error_set(err, MR_E_INVALID, "the message's SHA-256 is not the queued one");
    struct sink_message sm = {
        .account = e->account,
        .mailbox = e->mailbox,
        .uidvalidity = e->uidvalidity,
        .uid = e->uid,
        .internaldate = e->received,
        .raw = raw,
        .len = len,
        .sha256_hex = e->sha256,
        .message_id = NULL,
        .route = &route,
    };
    if ((rc = sink_begin(s, err)) != 0)
        return rc;
    mr_error_clear(&derr);
    rc = sink_deliver(s, &sm, outcome, &derr);
    if (rc != 0) {
        sink_rollback(s);
        return mr_error_set(err, rc, "%s", derr.msg);
    }
    if (*outcome == SINK_REJECTED) {
        sink_rollback(s);
        return mr_error_set(err, MR_E_INVALID, "the member system refused it: %s",
                            derr.msg[0] ? derr.msg : "no reason given");
    }
    if ((rc = sink_commit(s, err)) != 0)
        return rc;
    /* After the sink's commit: a crash in between leaves the entry waiting, and assigning
     * it again is a duplicate for every sink, not a second copy. */
    return unrouted_done(mdb, e->id, time(NULL), &was, err);
}

int unrouted_backlog_read(const char *db_path, struct unrouted_backlog *out, mr_error *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct stat sb;
    int s, rc = 0;

    memset(out, 0, sizeof *out);
    if (stat(db_path, &sb) != 0) {
        if (errno == ENOENT)
            return 0;
        return mr_error_errno(err, MR_E_IO, errno, "member database %s", db_path);
    }
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = mr_error_set(err, MR_E_DB, "cannot open member database %s: %s", db_path,
                          db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, 10000);
    if (sqlite3_prepare_v2(db, "SELECT count(*), coalesce(min(ingested), 0) FROM unrouted"
                               " WHERE handled = 0", -1, &st, NULL) != SQLITE_OK) {
        /* A database ingest has not created the queue in yet reads as empty. */
        if (strstr(sqlite3_errmsg(db), "no such table") == NULL)
            rc = unrouted_dberr(db, err, "read the unrouted queue");
        sqlite3_close(db);
        return rc;
    }
    s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        out->waiting = sqlite3_column_int64(st, 0);
        out->oldest = (time_t)sqlite3_column_int64(st, 1);
    } else {
        rc = unrouted_dberr(db, err, "read the unrouted queue");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
