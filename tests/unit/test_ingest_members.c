/* test_ingest_members.c — member registry: CSV reader, CPR rules, `members import`
 * (good file, bad rows with file:line and no identifiers, all-or-nothing, re-import),
 * lookups and idempotent document storage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "helpers/test_helpers.h"
#include "ingest/cpr.h"
#include "ingest/csv.h"
#include "ingest/members.h"
#include "ingest/members_import.h"
#include "ingest/sink.h"

struct fixture {
    char *dir;
    char db_path[512];
    char csv_path[512];
    members_db *db;
    char *errors[64];
    size_t n_errors;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    mr_error err;

    assert_non_null(f);
    f->dir = th_tempdir("test_ingest_members");
    assert_non_null(f->dir);
    snprintf(f->db_path, sizeof f->db_path, "%s/members.db", f->dir);
    snprintf(f->csv_path, sizeof f->csv_path, "%s/members.csv", f->dir);
    assert_int_equal(members_open(f->db_path, &f->db, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    members_close(f->db);
    for (size_t i = 0; i < f->n_errors; i++)
        free(f->errors[i]);
    th_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void collect(void *ctx, const char *msg)
{
    struct fixture *f = ctx;

    if (f->n_errors < 64)
        f->errors[f->n_errors++] = strdup(msg);
}

static int import_text(struct fixture *f, const char *text, struct members_import_result *res,
                       mr_error *err)
{
    assert_int_equal(th_write_file(f->csv_path, text, strlen(text)), 0);
    return members_import_csv(f->db, f->csv_path, collect, f, res, err);
}

static const char good_csv[] =
    "\xef\xbb\xbfmember_id,cpr,name,emails,cases\r\n"
    "M0001,010190-1234,\"Hansen, S\xc3\xb8ren\",soren@example.dk;S.Hansen@Example.COM,2024-12345\r\n"
    "M0002,0202855678,Jens Jensen,jens@example.org,2023-00001;2023-00002\n"
    "M0003,,\"Anne \"\"Annie\"\" Berg\",,\n"
    "M0004,311299-9999,\"Multi\nLine\",shared@example.net,\n"
    "M0005,150607-4321,Bo,shared@example.net,\n";

static void test_csv_reader(void **state)
{
    const char text[] = "a,\"b,1\",\"c\"\"d\"\r\n\"x\ny\",,\n";
    FILE *fp = fmemopen((void *)text, sizeof text - 1, "rb");
    csv_reader *r;
    char **fl;
    size_t n;
    mr_error err;

    (void)state;
    assert_non_null(fp);
    assert_int_equal(csv_open(fp, "t.csv", &r, &err), 0);
    assert_int_equal(csv_next(r, &fl, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(fl[0], "a");
    assert_string_equal(fl[1], "b,1");
    assert_string_equal(fl[2], "c\"d");
    assert_int_equal(csv_line(r), 1);
    assert_int_equal(csv_next(r, &fl, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(fl[0], "x\ny");
    assert_string_equal(fl[1], "");
    assert_string_equal(fl[2], "");
    assert_int_equal(csv_line(r), 2);
    assert_int_equal(csv_next(r, &fl, &n, &err), 0);
    assert_int_equal(n, 0);
    csv_close(r);
    fclose(fp);
}

static void test_csv_errors(void **state)
{
    const char text[] = "ok,1\nbad\"q,2\nfine,3\n\"open,4\n";
    FILE *fp = fmemopen((void *)text, sizeof text - 1, "rb");
    csv_reader *r;
    char **fl;
    size_t n;
    mr_error err;

    (void)state;
    assert_int_equal(csv_open(fp, "t.csv", &r, &err), 0);
    assert_int_equal(csv_next(r, &fl, &n, &err), 0);
    assert_int_equal(csv_next(r, &fl, &n, &err), MR_E_PARSE);
    assert_non_null(strstr(err.msg, "t.csv:2:"));
    assert_int_equal(csv_next(r, &fl, &n, &err), 0);      /* continues after a bad row */
    assert_string_equal(fl[0], "fine");
    assert_int_equal(csv_next(r, &fl, &n, &err), MR_E_PARSE);
    assert_non_null(strstr(err.msg, "t.csv:4: quoted field not closed"));
    csv_close(r);
    fclose(fp);
}

static void test_cpr(void **state)
{
    char out[CPR_LEN + 1];

    (void)state;
    assert_true(cpr_normalise("010190-1234", out));
    assert_string_equal(out, "0101901234");
    assert_true(cpr_normalise("0101901234", out));
    assert_true(cpr_normalise("290200 1234", out));     /* 29 Feb: century unknown, allowed */
    /* Fails modulus 11 but valid since 2007: must be accepted. */
    assert_true(cpr_normalise("010190-1230", out));
    assert_false(cpr_normalise("320190-1234", out));
    assert_false(cpr_normalise("011390-1234", out));
    assert_false(cpr_normalise("010190-123", out));
    assert_false(cpr_normalise("010190-12345", out));
    assert_false(cpr_normalise("x010190-1234", out));
}

struct found { char list[8][CPR_LEN + 1]; size_t n; };

static bool on_cpr(void *ctx, const char *cpr)
{
    struct found *fd = ctx;

    if (fd->n < 8)
        strcpy(fd->list[fd->n++], cpr);
    return false;
}

static void test_cpr_scan(void **state)
{
    const char text[] = "konto 12345678901234, cpr 010190-1234 og 0202855678; tlf 12 34 56 78, "
                        "dato 2024-01-01, ugyldig 999999-9999, lang 0101901234567";
    struct found fd = { .n = 0 };

    (void)state;
    cpr_scan(text, strlen(text), on_cpr, &fd);
    assert_int_equal(fd.n, 2);
    assert_string_equal(fd.list[0], "0101901234");
    assert_string_equal(fd.list[1], "0202855678");
}

static void test_import_good(void **state)
{
    struct fixture *f = *state;
    struct members_import_result res;
    struct members_counts cnt;
    char member[MEMBERS_ID_MAX], case_id[MEMBERS_ID_MAX];
    bool found, amb;
    mr_error err;

    assert_int_equal(import_text(f, good_csv, &res, &err), 0);
    assert_int_equal(f->n_errors, 0);
    assert_int_equal(res.rows, 5);
    assert_int_equal(res.members, 5);
    assert_int_equal(res.cprs, 4);
    assert_int_equal(res.addresses, 5);
    assert_int_equal(res.cases, 3);
    assert_int_equal(members_count(f->db, &cnt, &err), 0);
    assert_int_equal(cnt.members, 5);
    assert_int_equal(cnt.cases, 3);

    assert_int_equal(members_find_case(f->db, "2023-00002", &found, member, case_id, &err), 0);
    assert_true(found);
    assert_string_equal(member, "M0002");
    assert_string_equal(case_id, "2023-00002");
    assert_int_equal(members_find_case(f->db, "2023-99999", &found, member, case_id, &err), 0);
    assert_false(found);
    /* Addresses are matched case-insensitively. */
    assert_int_equal(members_find_address(f->db, "s.hansen@EXAMPLE.com", &found, &amb, member,
                                          &err), 0);
    assert_true(found);
    assert_string_equal(member, "M0001");
    /* An address shared by two members routes nowhere. */
    assert_int_equal(members_find_address(f->db, "shared@example.net", &found, &amb, member,
                                          &err), 0);
    assert_false(found);
    assert_true(amb);
    assert_int_equal(members_find_cpr(f->db, "0202855678", &found, member, &err), 0);
    assert_true(found);
    assert_string_equal(member, "M0002");

    /* The name with a quoted comma and a doubled quote survived RFC 4180 decoding. */
    {
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(members_sqlite(f->db),
                                            "SELECT name FROM members WHERE member_id='M0003'",
                                            -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), "Anne \"Annie\" Berg");
        sqlite3_finalize(st);
    }
    /* The database holds CPR numbers: it must not be readable by others. */
    {
        struct stat st;
        assert_int_equal(stat(f->db_path, &st), 0);
        assert_int_equal(st.st_mode & 077, 0);
    }
}

static void test_import_bad_rows(void **state)
{
    struct fixture *f = *state;
    struct members_import_result res;
    struct members_counts cnt;
    mr_error err;
    const char bad[] =
        "member_id,cpr,name,emails,cases\n"
        "M1,010190-1234,A,a@example.dk,C-1\n"               /* 2 ok */
        "M2,321390-1234,B,b@example.dk,\n"                  /* 3 bad CPR */
        "M3,020290-1111,C,not-an-address,\n"                /* 4 bad e-mail */
        "M1,030390-2222,D,d@example.dk,\n"                  /* 5 duplicate id */
        "M5,010190-1234,E,e@example.dk,\n"                  /* 6 CPR of M1 */
        "M6,,F,f@example.dk\n"                              /* 7 four fields */
        "M7,,\"G\"x,g@example.dk,\n"                        /* 8 quote error */
        "M8,,H,h@example.dk,C-1\n"                          /* 9 case of M1 */
        "M9,,\xff\xfe,,\n";                                 /* 10 not UTF-8 */

    /* A good registry first: a failed import must leave it untouched. */
    assert_int_equal(import_text(f, good_csv, &res, &err), 0);
    assert_int_equal(import_text(f, bad, &res, &err), MR_E_PARSE);
    assert_int_equal(res.bad_rows, 8);
    assert_int_equal(f->n_errors, 8);
    const char *want[] = { ":3: invalid CPR", ":4: invalid e-mail", ":5: member_id M1 appears",
                           ":6: CPR number already registered to member M1",
                           ":7: 4 fields", ":8: characters after a closing quote",
                           ":9: case C-1 already belongs to member M1", ":10: field 3 is not valid UTF-8" };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        bool hit = false;
        for (size_t j = 0; j < f->n_errors; j++)
            hit = hit || strstr(f->errors[j], want[i]) != NULL;
        if (!hit)
            fail_msg("missing error %s", want[i]);
    }
    /* Messages name file and line, never the identifiers on the row. */
    for (size_t j = 0; j < f->n_errors; j++) {
        assert_non_null(strstr(f->errors[j], f->csv_path));
        assert_null(strstr(f->errors[j], "321390"));
        assert_null(strstr(f->errors[j], "010190"));
        assert_null(strstr(f->errors[j], "not-an-address"));
    }
    assert_non_null(strstr(err.msg, "8 bad rows"));
    assert_int_equal(members_count(f->db, &cnt, &err), 0);
    assert_int_equal(cnt.members, 5);                   /* still the good registry */
}

static void test_import_header_and_replace(void **state)
{
    struct fixture *f = *state;
    struct members_import_result res;
    struct members_counts cnt;
    char member[MEMBERS_ID_MAX];
    bool found;
    mr_error err;

    assert_int_equal(import_text(f, "id,cpr,name\nM1,,x\n", &res, &err), MR_E_PARSE);
    assert_non_null(strstr(err.msg, ":1: header must be"));
    assert_int_equal(import_text(f, "", &res, &err), MR_E_PARSE);

    assert_int_equal(import_text(f, good_csv, &res, &err), 0);
    /* Re-import of a smaller registry replaces, not merges. */
    assert_int_equal(import_text(f, "member_id,cpr,name,emails,cases\n"
                                    "M0009,010190-1234,X,x@example.dk,\n", &res, &err), 0);
    assert_int_equal(members_count(f->db, &cnt, &err), 0);
    assert_int_equal(cnt.members, 1);
    assert_int_equal(members_find_cpr(f->db, "0101901234", &found, member, &err), 0);
    assert_true(found);
    assert_string_equal(member, "M0009");
}

static void test_store_idempotent(void **state)
{
    struct fixture *f = *state;
    static const unsigned char raw[] = "Subject: x\r\n\r\nbody\r\n";
    struct members_doc d = { .member_id = "M0001", .case_id = NULL, .rule = "sender",
                             .message_id = "<a@b>", .sha256_hex = "00ff", .received = 1000,
                             .account = "acct", .mailbox = "INBOX", .uidvalidity = 7,
                             .uid = 42, .raw = raw, .raw_len = sizeof raw - 1 };
    struct members_counts cnt;
    bool dup;
    mr_error err;

    assert_int_equal(members_begin(f->db, &err), 0);
    assert_int_equal(members_store(f->db, &d, &dup, &err), 0);
    assert_false(dup);
    assert_int_equal(members_store(f->db, &d, &dup, &err), 0);
    assert_true(dup);
    d.member_id = NULL;
    d.rule = "none";
    assert_int_equal(members_store(f->db, &d, &dup, &err), 0);
    assert_false(dup);
    assert_int_equal(members_commit(f->db, &err), 0);
    assert_int_equal(members_count(f->db, &cnt, &err), 0);
    assert_int_equal(cnt.documents, 1);
    assert_int_equal(cnt.unrouted, 1);
    /* The exact bytes in both tables (written through incremental blob I/O). */
    {
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(members_sqlite(f->db),
                                            "SELECT raw, size FROM documents UNION ALL "
                                            "SELECT raw, size FROM unrouted", -1, &st, NULL),
                         SQLITE_OK);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(sqlite3_step(st), SQLITE_ROW);
            assert_int_equal(sqlite3_column_bytes(st, 0), sizeof raw - 1);
            assert_int_equal(sqlite3_column_int(st, 1), sizeof raw - 1);
            assert_memory_equal(sqlite3_column_blob(st, 0), raw, sizeof raw - 1);
        }
        sqlite3_finalize(st);
    }
    /* A rolled-back batch leaves nothing behind. */
    d.uid = 43;
    d.member_id = "M0001";
    d.rule = "case";
    assert_int_equal(members_begin(f->db, &err), 0);
    assert_int_equal(members_store(f->db, &d, &dup, &err), 0);
    members_rollback(f->db);
    assert_int_equal(members_count(f->db, &cnt, &err), 0);
    assert_int_equal(cnt.documents, 1);
}

/* One refused document never takes the batch's others with it: a trigger's RAISE(ABORT),
 * a trigger's silent RAISE(IGNORE) and a CHECK constraint are each a refusal of that
 * document only (SINK_REJECTED through the sink, MR_E_INVALID from members_store), never a
 * "duplicate"; the documents around them are committed. */
static void test_store_refusals(void **state)
{
    struct fixture *f = *state;
    static const unsigned char raw[] = "Subject: x\r\n\r\nbody\r\n";
    struct route_result route = { .rule = ROUTE_SENDER, .member = "M0001", .case_id = "" };
    struct sink_message m = { .account = "acct", .mailbox = "INBOX", .uidvalidity = 7,
                              .internaldate = 1000, .raw = raw, .len = sizeof raw - 1,
                              .route = &route };
    const char *shas[] = { "a1", "b2", "c3", "d4", "e5" };
    enum sink_outcome out;
    struct members_counts cnt;
    sink *sk;
    bool dup;
    mr_error err;

    assert_int_equal(sqlite3_exec(members_sqlite(f->db),
                                  "CREATE TRIGGER t_abort BEFORE INSERT ON documents"
                                  " WHEN NEW.sha256 = 'b2' BEGIN"
                                  " SELECT RAISE(ABORT, 'refused by trigger'); END;"
                                  "CREATE TRIGGER t_ignore BEFORE INSERT ON documents"
                                  " WHEN NEW.sha256 = 'd4' BEGIN SELECT RAISE(IGNORE); END;",
                                  NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sink_sqlite_open(f->db, &sk, &err), 0);
    assert_int_equal(sink_begin(sk, &err), 0);
    for (int i = 0; i < 5; i++) {
        m.uid = (uint32_t)(10 + i);
        m.sha256_hex = shas[i];
        mr_error_clear(&err);
        assert_int_equal(sink_deliver(sk, &m, &out, &err), 0);
        if (i == 1 || i == 3) {
            assert_int_equal(out, SINK_REJECTED);
            assert_non_null(strstr(err.msg, i == 1 ? "refused by trigger" : "did not store"));
        } else {
            assert_int_equal(out, SINK_DELIVERED);
        }
    }
    assert_int_equal(sink_commit(sk, &err), 0);
    sink_close(sk);
    assert_int_equal(members_count(f->db, &cnt, &err), 0);
    assert_int_equal(cnt.documents, 3);
    /* A CHECK constraint (no such rule) is a refusal, not a silent duplicate. */
    struct members_doc d = { .member_id = "M0001", .rule = "bogus", .sha256_hex = "f6",
                             .received = 1000, .account = "acct", .mailbox = "INBOX",
                             .uidvalidity = 7, .uid = 99, .raw = raw, .raw_len = sizeof raw - 1 };
    assert_int_equal(members_begin(f->db, &err), 0);
    assert_int_equal(members_store(f->db, &d, &dup, &err), MR_E_INVALID);
    members_rollback(f->db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_reader),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_cpr),
        cmocka_unit_test(test_cpr_scan),
        cmocka_unit_test_setup_teardown(test_import_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_bad_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_header_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
