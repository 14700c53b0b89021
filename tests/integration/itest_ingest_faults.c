/*
 * itest_ingest_faults.c — ingest_run when the connection is wrong or breaks:
 *  - wrong password: MR_E_AUTH, one-line error without the password, nothing stored,
 *    no state written;
 *  - a certificate whose name does not match the host we dialled (127.0.0.1 instead of
 *    localhost), and a server certificate from a CA we do not trust: MR_E_TLS before LOGIN;
 *  - the server connection dropping mid-FETCH (tests/tools/faultproxy.py: clean EOF and
 *    TCP reset): a network error naming the mailbox; what was complete is kept; a re-run
 *    ends with every message stored exactly once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "integration/itest_ingest_util.h"

static const char registry[] =
    "member_id,cpr,name,emails,cases\n"
    "M1,010190-1234,A,sender1@example.invalid;sender3@example.invalid,\n";

static int setup(void **state)
{
    struct it_ingest *f = calloc(1, sizeof *f);
    mr_error err;

    assert_non_null(f);
    if (it_ingest_init(f, "itest_ingest_faults", registry, &err) != 0)
        fail_msg("setup: %s", err.msg);
    f->io.io_timeout_s = 10;
    f->opt.batch_size = 5;
    f->opt.account = "acct";
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    it_ingest_free(*state);
    free(*state);
    return 0;
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

/* n messages of about size bytes, senders sender<seed>@example.invalid. */
static void fill(struct it_ingest *f, unsigned n, size_t size)
{
    imap_conn *c;
    mr_error err;

    assert_int_equal(imap_connect(&f->io, &c, &err), 0);
    for (unsigned i = 1; i <= n; i++) {
        size_t len;
        unsigned char *m = it_make_message(size, i, &len);
        if (imap_append(c, "INBOX", "", 0, 0, m, len, &err) != 0)
            fail_msg("append: %s", err.msg);
        free(m);
    }
    imap_close(c);
}

static int run(struct it_ingest *f, struct ingest_report **rep, mr_error *err)
{
    *rep = NULL;
    return ingest_run(&f->opt, rep, err);
}

static void test_wrong_password(void **state)
{
    struct it_ingest *f = *state;
    struct ingest_report *rep;
    struct imap_options bad = f->io;
    mr_error err;

    fill(f, 2, 500);
    bad.password = "wrong-password-7f3a";
    f->opt.imap = &bad;
    assert_int_equal(run(f, &rep, &err), MR_E_AUTH);
    assert_null(strchr(err.msg, '\n'));
    assert_null(strstr(err.msg, "wrong-password-7f3a"));
    assert_false(rep->connected);
    assert_int_equal(rep->mailboxes[0].fetched, 0);
    ingest_report_free(rep);
    assert_int_equal(q_int(members_sqlite(f->db), "SELECT count(*) FROM documents"), 0);
}

static void test_tls_name_and_ca(void **state)
{
    struct it_ingest *f = *state;
    struct ingest_report *rep;
    struct imap_options bad = f->io;
    mr_error err;

    fill(f, 1, 500);
    /* The certificate is for "localhost": dialling the address must fail the name check. */
    bad.host = "127.0.0.1";
    f->opt.imap = &bad;
    f->opt.account = "acct";
    assert_int_equal(run(f, &rep, &err), MR_E_TLS);
    ingest_report_free(rep);
    /* A CA we do not trust. */
    bad = f->io;
    bad.ca_file = f->srv.other_ca;
    assert_int_equal(run(f, &rep, &err), MR_E_TLS);
    ingest_report_free(rep);
    /* Nothing got as far as LOGIN (so no password went to an unverified peer). */
    assert_int_equal(it_log_wait_logins(&f->srv, f->user, 1), 1);  /* fill()'s login only */
    f->opt.imap = &f->io;
    assert_int_equal(run(f, &rep, &err), 0);
    assert_int_equal(rep->mailboxes[0].fetched, 1);
    ingest_report_free(rep);
}

static void drop_mid_fetch(struct it_ingest *f, const char *mode)
{
    const char *extra[] = { "--mode", mode, "--after", "400000", NULL };
    struct ingest_report *rep;
    struct imap_options via = f->io;
    sqlite3 *db = members_sqlite(f->db);
    int port = 0, rc;
    pid_t proxy;
    mr_error err;

    fill(f, 40, 20000);     /* ~800 kB: the cut lands inside the FETCH of batch 4 or so */
    proxy = it_proxy_start(f->srv.imaps_port, &port, extra);
    assert_true(proxy > 0);
    via.port = port;
    f->opt.imap = &via;
    rc = run(f, &rep, &err);
    it_proxy_stop(proxy);
    if (rc != MR_E_NETWORK && rc != MR_E_TLS && rc != MR_E_PROTOCOL)
        fail_msg("%s mid-FETCH: got %d (%s)", mode, rc, err.msg);
    assert_non_null(strstr(err.msg, "mailbox INBOX"));
    uint64_t before = rep->mailboxes[0].fetched;
    assert_true(before > 0 && before < 40);     /* it really broke in the middle */
    ingest_report_free(rep);
    int64_t kept = q_int(db, "SELECT count(*) FROM documents");
    assert_true(kept > 0 && kept < 40);         /* complete batches were kept */

    f->opt.imap = &f->io;
    assert_int_equal(run(f, &rep, &err), 0);
    ingest_report_free(rep);
    /* Every message exactly once (senders 1 and 3 are registered, the rest unrouted). */
    assert_int_equal(q_int(db, "SELECT count(*) FROM documents"), 2);
    assert_int_equal(q_int(db, "SELECT count(*) FROM unrouted"), 38);
    assert_int_equal(q_int(db, "SELECT count(DISTINCT source_uid) FROM unrouted"), 38);
}

static void test_cut_mid_fetch(void **state)
{
    drop_mid_fetch(*state, "cut");
}

static void test_reset_mid_fetch(void **state)
{
    drop_mid_fetch(*state, "reset");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wrong_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_name_and_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_mid_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_mid_fetch, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
