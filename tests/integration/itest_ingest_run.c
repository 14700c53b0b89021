/*
 * itest_ingest_run.c — ingest_run (ingest/ingest.h) against the real Dovecot test server:
 *  - hand-made messages (case/sender/CPR in base64, malformed MIME, 8-bit headers, an
 *    auto-reply, unrouted) routed and stored byte for byte; flags unchanged; re-run idle;
 *  - a UIDVALIDITY change (the mailbox recreated) is detected, recorded, and re-reading
 *    the mailbox duplicates nothing;
 *  - the exec sink refusing a message keeps the state below it, and the next run delivers
 *    exactly the missing one;
 *  - a 50 MB message is ingested intact; with a 10 MB limit it is recorded and skipped.
 * Uses the IMAP test helpers of itest_imap_util.h (users, messages, collector).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "integration/itest_ingest_util.h"
#include "ingest/state.h"

static const char registry[] =
    "member_id,cpr,name,emails,cases\n"
    "M1,010190-1234,Søren Hansen,soren@example.dk,2024-12345\n"
    "M2,0202855678,Jens Jensen,jens@example.org,2023-00777\n";

static const char *const own_domains[] = { "akasse.example" };

static int setup(void **state)
{
    struct it_ingest *f = calloc(1, sizeof *f);
    mr_error err;

    assert_non_null(f);
    if (it_ingest_init(f, "itest_ingest_run", registry, &err) != 0)
        fail_msg("setup: %s", err.msg);
    f->rc = (struct route_config){ .own_domains = own_domains, .n_own_domains = 1 };
    f->opt.batch_size = 3;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    it_ingest_free(*state);
    free(*state);
    return 0;
}

static void append(struct it_ingest *f, const char *flags, const void *msg, size_t len)
{
    imap_conn *c;
    mr_error err;

    if (imap_connect(&f->io, &c, &err) != 0)
        fail_msg("connect: %s", err.msg);
    if (imap_append(c, "INBOX", flags, 1700000000, 60, msg, len, &err) != 0)
        fail_msg("append: %s", err.msg);
    imap_close(c);
}

static struct ingest_mailbox_report run_ok(struct it_ingest *f)
{
    struct ingest_report *rep = NULL;
    struct ingest_mailbox_report m;
    mr_error err;

    if (ingest_run(&f->opt, &rep, &err) != 0)
        fail_msg("ingest_run: %s", err.msg);
    assert_non_null(rep);
    assert_true(rep->connected);
    assert_int_equal(rep->n, 1);
    m = rep->mailboxes[0];
    m.mailbox = NULL;
    ingest_report_free(rep);
    return m;
}

static int64_t q_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* All flags of INBOX, as "uid:flags" lines, through a separate read-only session. */
static void inbox_flags(struct it_ingest *f, struct it_collect *c)
{
    imap_conn *conn;
    struct imap_mailbox_info info;
    mr_error err;

    memset(c, 0, sizeof *c);
    assert_int_equal(imap_connect(&f->io, &conn, &err), 0);
    assert_int_equal(imap_examine(conn, "INBOX", &info, &err), 0);
    assert_int_equal(imap_uid_fetch(conn, 1, 0, it_collect_fn, c, &err), 0);
    imap_close(conn);
}

#define CASE_MSG "From: Someone <x@unknown.example>\r\nSubject: =?utf-8?Q?Sag_2024-12345_l=C3=B8n?=\r\n" \
                 "Message-ID: <case@t>\r\n\r\nhej\r\n"
#define SENDER_MSG "From: \"Jens\" <JENS@example.org>\r\nSubject: hej\r\nMessage-ID: <s@t>\r\n\r\nx\r\n"
#define CPR_MSG "From: a@b.example\r\nSubject: syg\r\nMIME-Version: 1.0\r\n" \
                "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n" \
                "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" \
                "TWl0IENQUiBlciAwMjAyODU1Njc4Lg==\r\n--B--\r\n"
#define MALFORMED_MSG "From: S\xf8ren <soren@example.dk>\r\nSubject: l\xf8n \xe6\xf8\xe5\r\n" \
                      "Content-Type: multipart/mixed; boundary=\"Z\r\n\r\n--Z\r\n" \
                      "Content-Transfer-Encoding: base64\r\n\r\n!!!garbage\r\n"
#define UNROUTED_MSG "From: stranger@unknown.example\r\nSubject: sp\xf8rgsm\xe5l\r\n" \
                     "Message-ID: <u@t>\r\n\r\nnothing here 1234\r\n"
#define AUTO_MSG "From: soren@example.dk\r\nAuto-Submitted: auto-replied\r\n" \
                 "Subject: Autosvar: Sag 2024-12345\r\n\r\nferie\r\n"

static void test_route_store_flags(void **state)
{
    struct it_ingest *f = *state;
    struct it_collect before, after;
    sqlite3 *db = members_sqlite(f->db);
    struct ingest_mailbox_report m;
    static const struct { const char *msg, *flags; } in[] = {
        { CASE_MSG, "\\Flagged" }, { SENDER_MSG, "" }, { CPR_MSG, "\\Seen" },
        { MALFORMED_MSG, "\\Answered \\Seen" }, { UNROUTED_MSG, "" }, { AUTO_MSG, "" },
    };

    for (size_t i = 0; i < 6; i++)
        append(f, in[i].flags, in[i].msg, strlen(in[i].msg));
    inbox_flags(f, &before);
    assert_int_equal(before.n, 6);

    m = run_ok(f);
    assert_int_equal(m.fetched, 6);
    assert_int_equal(m.routed[ROUTE_CASE], 1);
    assert_int_equal(m.routed[ROUTE_SENDER], 2);    /* incl. the malformed one */
    assert_int_equal(m.routed[ROUTE_CPR], 1);
    assert_int_equal(m.routed[ROUTE_NONE], 1);
    assert_int_equal(m.routed[ROUTE_AUTO], 1);
    assert_int_equal(m.errors, 0);
    assert_int_equal(m.last_uid, 6);
    assert_int_equal(q_int(db, "SELECT count(*) FROM documents WHERE rule='case' AND "
                               "member_id='M1' AND case_id='2024-12345' AND source_uid=1"), 1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM documents WHERE rule='sender' AND "
                               "member_id='M2' AND message_id='<s@t>'"), 1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM documents WHERE rule='cpr' AND "
                               "member_id='M2'"), 1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM documents WHERE rule='sender' AND "
                               "member_id='M1' AND source_uid=4"), 1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM unrouted WHERE source_uid=5"), 1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM documents"), 4);
    /* Byte for byte, for every stored message (the 8-bit one included). */
    for (size_t i = 0; i < before.n; i++) {
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT raw FROM documents WHERE source_uid=?1"
                                                " UNION ALL SELECT raw FROM unrouted WHERE"
                                                " source_uid=?1", -1, &st, NULL), SQLITE_OK);
        sqlite3_bind_int64(st, 1, before.m[i].uid);
        if (sqlite3_step(st) == SQLITE_ROW) {
            assert_int_equal((size_t)sqlite3_column_bytes(st, 0), before.m[i].body_len);
            assert_memory_equal(sqlite3_column_blob(st, 0), before.m[i].body, before.m[i].body_len);
        } else {
            assert_int_equal(before.m[i].uid, 6);  /* only the auto-reply is not stored */
        }
        sqlite3_finalize(st);
    }
    /* Flags exactly as before: no \Seen from fetching, nothing else either. */
    inbox_flags(f, &after);
    assert_int_equal(after.n, before.n);
    for (size_t i = 0; i < before.n; i++) {
        assert_int_equal(after.m[i].uid, before.m[i].uid);
        if (!it_flags_equal(after.m[i].flags, before.m[i].flags))
            fail_msg("UID %u flags changed: '%s' -> '%s'", before.m[i].uid, before.m[i].flags,
                     after.m[i].flags);
    }
    it_collect_free(&before);
    it_collect_free(&after);
    /* A second run fetches nothing; a new message alone is fetched by a third. */
    m = run_ok(f);
    assert_int_equal(m.fetched, 0);
    append(f, "", SENDER_MSG "more\r\n", strlen(SENDER_MSG "more\r\n"));
    m = run_ok(f);
    assert_int_equal(m.fetched, 1);
    assert_int_equal(m.routed[ROUTE_SENDER], 1);
    assert_int_equal(m.last_uid, 7);
    assert_int_equal(q_int(db, "SELECT count(*) FROM documents"), 5);
}

/* Recreate INBOX's UID list the way a server restore or migration would: Dovecot assigns
 * a new UIDVALIDITY when its uidlist and indexes are gone. */
static void reset_uidvalidity(struct it_ingest *f)
{
    char *root = th_imap_env("MAIL_ROOT"), cmd[8400];
    char md[4096];
    const char *u = strstr(root, "%u");

    assert_non_null(u);
    snprintf(md, sizeof md, "%.*s%s%s", (int)(u - root), root, f->user, u + 2);
    sleep(1);   /* UIDVALIDITY is a timestamp: make sure the new one differs */
    snprintf(cmd, sizeof cmd, "rm -f '%s'/dovecot-uidlist '%s'/dovecot.index*", md, md);
    assert_int_equal(system(cmd), 0);
    free(root);
}

static void test_uidvalidity_change(void **state)
{
    struct it_ingest *f = *state;
    sqlite3 *db = members_sqlite(f->db);
    struct ingest_mailbox_report m;
    ingest_state *st;
    mr_error err;

    append(f, "", CASE_MSG, strlen(CASE_MSG));
    append(f, "", SENDER_MSG, strlen(SENDER_MSG));
    append(f, "", UNROUTED_MSG, strlen(UNROUTED_MSG));
    m = run_ok(f);
    assert_int_equal(m.fetched, 3);
    uint32_t uv1 = m.uidvalidity;
    reset_uidvalidity(f);
    append(f, "", CPR_MSG, strlen(CPR_MSG));
    m = run_ok(f);
    assert_true(m.uidvalidity_changed);
    assert_int_not_equal(m.uidvalidity, uv1);
    assert_int_equal(m.fetched, 4);         /* everything re-read ... */
    assert_int_equal(m.duplicates, 3);      /* ... and recognised by SHA-256 */
    assert_int_equal(m.routed[ROUTE_CPR], 1);
    assert_int_equal(m.routed[ROUTE_CASE] + m.routed[ROUTE_SENDER] + m.routed[ROUTE_NONE], 0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM documents"), 3);
    assert_int_equal(q_int(db, "SELECT count(*) FROM unrouted"), 1);
    /* The change is on record in the state, with both values. */
    assert_int_equal(state_open(f->state, &st, &err), 0);
    {
        sqlite3_stmt *q;
        char want[64];
        snprintf(want, sizeof want, "old=%u new=%u", uv1, m.uidvalidity);
        assert_int_equal(sqlite3_prepare_v2(state_sqlite(st), "SELECT detail FROM events WHERE"
                                            " event='uidvalidity-changed'", -1, &q, NULL), 0);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(q, 0), want);
        sqlite3_finalize(q);
    }
    state_close(st);
    m = run_ok(f);
    assert_int_equal(m.fetched, 0);
    assert_false(m.uidvalidity_changed);
}

static void test_exec_retry(void **state)
{
    struct it_ingest *f = *state;
    char cmd[2048], journal[512], path[512];
    struct ingest_report *rep = NULL;
    ingest_state *st;
    bool found;
    uint32_t uv, last;
    mr_error err;
    sink *ex;

    append(f, "", CASE_MSG, strlen(CASE_MSG));
    append(f, "", UNROUTED_MSG "FAILME\r\n", strlen(UNROUTED_MSG "FAILME\r\n"));
    append(f, "", SENDER_MSG, strlen(SENDER_MSG));
    snprintf(journal, sizeof journal, "%s/exec.sqlite", f->dir);
    /* Refuses any message containing FAILME while the file "refuse" exists; appends one
     * line per delivery so that double deliveries show. */
    snprintf(cmd, sizeof cmd,
             "m=$(cat); if [ -e '%s/refuse' ] && printf '%%s' \"$m\" | grep -q FAILME; then "
             "exit 1; fi; echo \"$MAILRET_UID $MAILRET_RULE $MAILRET_MEMBER\" >> '%s/delivered'",
             f->dir, f->dir);
    snprintf(path, sizeof path, "%s/refuse", f->dir);
    assert_int_equal(th_write_file(path, "", 0), 0);
    assert_int_equal(sink_exec_open(cmd, journal, 30, &ex, &err), 0);
    f->opt.sink = ex;
    f->opt.batch_size = 10;
    assert_int_equal(ingest_run(&f->opt, &rep, &err), MR_E_IO);
    assert_non_null(strstr(err.msg, "1 message not delivered"));
    assert_int_equal(rep->mailboxes[0].errors, 1);
    /* The position moves past the refused UID 2; the refusal is kept by UID. */
    assert_int_equal(rep->mailboxes[0].last_uid, 3);
    ingest_report_free(rep);
    /* The state on disk says the same (the account defaults to user@host). */
    char account[256];
    uint32_t *ref = NULL;
    size_t n_ref = 0;
    snprintf(account, sizeof account, "%s@%s", f->user, f->srv.host);
    assert_int_equal(state_open(f->state, &st, &err), 0);
    assert_int_equal(state_get(st, account, "INBOX", &found, &uv, &last, &err), 0);
    assert_int_equal(state_refused_uids(st, account, "INBOX", uv, &ref, &n_ref, &err), 0);
    state_close(st);
    assert_true(found);
    assert_int_equal(last, 3);
    assert_int_equal(n_ref, 1);
    assert_int_equal(ref[0], 2);
    free(ref);
    /* Still refused: retried, counted again, nothing else fetched or delivered. */
    assert_int_equal(ingest_run(&f->opt, &rep, &err), MR_E_IO);
    assert_int_equal(rep->mailboxes[0].errors, 1);
    assert_int_equal(rep->mailboxes[0].fetched, 1);
    ingest_report_free(rep);
    unlink(path);
    assert_int_equal(ingest_run(&f->opt, &rep, &err), 0);
    assert_int_equal(rep->mailboxes[0].routed[ROUTE_NONE], 1);
    assert_int_equal(rep->mailboxes[0].fetched, 1);     /* only the refused UID 2 again */
    assert_int_equal(rep->mailboxes[0].last_uid, 3);
    assert_int_equal(state_open(f->state, &st, &err), 0);
    assert_int_equal(state_refused_uids(st, account, "INBOX", uv, &ref, &n_ref, &err), 0);
    state_close(st);
    assert_int_equal(n_ref, 0);
    free(ref);
    ingest_report_free(rep);
    snprintf(path, sizeof path, "%s/delivered", f->dir);
    size_t len;
    char *got = (char *)th_read_file(path, &len);
    assert_non_null(got);
    assert_string_equal(got, "1 case M1\n3 sender M2\n2 none \n");
    free(got);
    sink_close(ex);
    f->opt.sink = f->sink;
}

static int sha_equal(const unsigned char *a, size_t na, const void *b, size_t nb)
{
    unsigned char ma[32], mb[32];
    unsigned int l = 32;

    EVP_Digest(a, na, ma, &l, EVP_sha256(), NULL);
    EVP_Digest(b, nb, mb, &l, EVP_sha256(), NULL);
    return na == nb && memcmp(ma, mb, 32) == 0;
}

static void test_large_message(void **state)
{
    struct it_ingest *f = *state;
    sqlite3 *db = members_sqlite(f->db);
    struct ingest_mailbox_report m;
    size_t len;
    unsigned char *big = it_make_message(50u * 1024 * 1024, 7, &len);
    /* Route it: put a registered sender on it. */
    memcpy(big, "From: soren@example.dk   ", 25);
    assert_non_null(big);
    append(f, "", big, len);
    append(f, "", SENDER_MSG, strlen(SENDER_MSG));

    /* With a 10 MB limit: recorded and skipped, not fatal; the small one goes through. */
    f->opt.max_size = 10u * 1024 * 1024;
    m = run_ok(f);
    assert_int_equal(m.oversized, 1);
    assert_int_equal(m.routed[ROUTE_SENDER], 1);
    assert_int_equal(m.last_uid, 2);
    {
        ingest_state *st;
        mr_error err;
        assert_int_equal(state_open(f->state, &st, &err), 0);
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_prepare_v2(state_sqlite(st), "SELECT uid, size, reason FROM"
                                            " skipped", -1, &q, NULL), 0);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int64(q, 0), 1);
        assert_int_equal(sqlite3_column_int64(q, 1), (int64_t)len);
        assert_string_equal((const char *)sqlite3_column_text(q, 2), "oversized");
        sqlite3_finalize(q);
        state_close(st);
    }
    /* Default limit (64 MiB), fresh state: the 50 MB message is stored intact. */
    snprintf(f->state, sizeof f->state, "%s/state2.sqlite", f->dir);
    f->opt.max_size = 0;
    m = run_ok(f);
    assert_int_equal(m.oversized, 0);
    assert_int_equal(m.routed[ROUTE_SENDER], 1);    /* the big one (the small: duplicate) */
    assert_int_equal(m.duplicates, 1);
    {
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT raw FROM documents WHERE source_uid=1",
                                            -1, &q, NULL), 0);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_true(sha_equal(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0),
                              big, len));
        sqlite3_finalize(q);
    }
    free(big);
}

/* A mailbox that does not exist is reported; the others are still ingested. */
static void test_missing_mailbox(void **state)
{
    struct it_ingest *f = *state;
    const char *boxes[] = { "NoSuchMailbox", "INBOX" };
    struct ingest_report *rep = NULL;
    mr_error err;
    int rc;

    append(f, "", SENDER_MSG, strlen(SENDER_MSG));
    f->opt.mailboxes = boxes;
    f->opt.n_mailboxes = 2;
    rc = ingest_run(&f->opt, &rep, &err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err.msg, "mailbox NoSuchMailbox"));
    assert_int_not_equal(rep->mailboxes[0].status, 0);
    assert_int_equal(rep->mailboxes[1].status, 0);
    assert_int_equal(rep->mailboxes[1].routed[ROUTE_SENDER], 1);
    ingest_report_free(rep);
    f->opt.mailboxes = f->mailboxes;
    f->opt.n_mailboxes = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_route_store_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uidvalidity_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_mailbox, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
