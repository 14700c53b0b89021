/* test_ingest_route.c — routing rules on hand-made messages: each rule, the order of the
 * rules, RFC 2047 subjects, base64/quoted-printable bodies, auto-replies and bounces, the
 * fund's own mail, ambiguous and unknown keys, malformed MIME and 8-bit headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers/test_helpers.h"
#include "ingest/members.h"
#include "ingest/members_import.h"
#include "ingest/msginfo.h"
#include "ingest/route.h"

struct fixture {
    char *dir;
    members_db *db;
    router *rt;
};

static const char registry[] =
    "member_id,cpr,name,emails,cases\n"
    "M1,010190-1234,Søren Hansen,soren@example.dk,2024-12345\n"
    "M2,0202855678,Jens Jensen,jens@example.org,2023-00777;2022-04711\n"
    "M3,030303-3333,Anne Berg,shared@example.net,\n"
    "M4,040404-4444,Bo Berg,shared@example.net,\n";

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct members_import_result res;
    char path[512];
    mr_error err;
    static const char *const own_addr[] = { "post@akasse.example" };
    static const char *const own_dom[] = { "fund.example" };
    struct route_config cfg = { .own_addresses = own_addr, .n_own_addresses = 1,
                                .own_domains = own_dom, .n_own_domains = 1 };

    f->dir = th_tempdir("test_ingest_route");
    snprintf(path, sizeof path, "%s/members.csv", f->dir);
    assert_int_equal(th_write_file(path, registry, strlen(registry)), 0);
    char dbp[512];
    snprintf(dbp, sizeof dbp, "%s/members.db", f->dir);
    assert_int_equal(members_open(dbp, &f->db, &err), 0);
    if (members_import_csv(f->db, path, NULL, NULL, &res, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(route_new(&cfg, &f->rt, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    route_free(f->rt);
    members_close(f->db);
    th_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static struct route_result route_text(struct fixture *f, const char *msg)
{
    struct msginfo info;
    struct route_result r;
    mr_error err;

    assert_int_equal(msginfo_parse((const unsigned char *)msg, strlen(msg), &info, &err), 0);
    if (route_message(f->rt, f->db, (const unsigned char *)msg, strlen(msg), &info, &r, &err) != 0)
        fail_msg("route_message: %s", err.msg);
    msginfo_free(&info);
    return r;
}

#define EXPECT(msg, rule_, member_, case_)                                                   \
    do {                                                                                     \
        struct route_result r_ = route_text(f, msg);                                         \
        if (r_.rule != (rule_) || strcmp(r_.member, member_) != 0 ||                          \
            strcmp(r_.case_id, case_) != 0)                                                  \
            fail_msg("line %d: got %s/%s/%s", __LINE__, route_rule_name(r_.rule), r_.member, \
                     r_.case_id);                                                            \
    } while (0)

static void test_case_rule(void **state)
{
    struct fixture *f = *state;

    EXPECT("From: x@y.example\r\nSubject: Sag 2024-12345 lønsedler\r\n\r\nhej\r\n", ROUTE_CASE,
           "M1", "2024-12345");
    /* "[Sag #777]" cites the number only; it matches the case ending in 00777. */
    EXPECT("From: x@y.example\r\nSubject: Re: [Sag #00777]\r\n\r\nhej\r\n", ROUTE_CASE, "M2",
           "2023-00777");
    /* Case beats sender: M2's address, M1's case. */
    EXPECT("From: Jens <jens@example.org>\r\nSubject: SAG 2024-12345\r\n\r\nx\r\n", ROUTE_CASE,
           "M1", "2024-12345");
    /* RFC 2047 (Q and B) subjects are decoded before matching. */
    EXPECT("From: x@y.example\r\nSubject: =?iso-8859-1?Q?Vedr=2E_sag_2022-04711_l=F8n?=\r\n\r\nx\r\n",
           ROUTE_CASE, "M2", "2022-04711");
    EXPECT("From: x@y.example\r\nSubject: =?UTF-8?B?U2FnIDIwMjQtMTIzNDUgw7hrb25vbWk=?=\r\n\r\nx\r\n",
           ROUTE_CASE, "M1", "2024-12345");
    /* An unknown case number falls through to the next rule, not to the wrong member. */
    EXPECT("From: jens@example.org\r\nSubject: Sag 2019-55555\r\n\r\nx\r\n", ROUTE_SENDER, "M2",
           "");
    /* A second reference that is known still counts. */
    EXPECT("From: q@q.example\r\nSubject: Sag 2019-55555 og Sag 2024-12345\r\n\r\nx\r\n",
           ROUTE_CASE, "M1", "2024-12345");
}

static void test_sender_rule(void **state)
{
    struct fixture *f = *state;

    EXPECT("From: \"Hansen, Søren\" <SOREN@Example.DK>\r\nSubject: hej\r\n\r\nx\r\n",
           ROUTE_SENDER, "M1", "");
    EXPECT("From: soren@example.dk (Søren)\r\nSubject: hej\r\n\r\nx\r\n", ROUTE_SENDER, "M1", "");
    /* Folded From header. */
    EXPECT("From: =?utf-8?q?S=C3=B8ren?=\r\n <soren@example.dk>\r\nSubject: hej\r\n\r\nx\r\n",
           ROUTE_SENDER, "M1", "");
    /* Sender beats CPR. */
    EXPECT("From: soren@example.dk\r\nSubject: cpr 0202855678\r\n\r\nx\r\n", ROUTE_SENDER, "M1",
           "");
    /* An address two members share routes by neither; CPR then decides. */
    EXPECT("From: shared@example.net\r\nSubject: hej\r\n\r\nmit cpr 040404-4444\r\n", ROUTE_CPR,
           "M4", "");
    EXPECT("From: shared@example.net\r\nSubject: hej\r\n\r\nx\r\n", ROUTE_NONE, "", "");
}

static void test_cpr_rule(void **state)
{
    struct fixture *f = *state;

    EXPECT("From: a@b.example\r\nSubject: Syg - CPR 010190-1234\r\n\r\nx\r\n", ROUTE_CPR, "M1",
           "");
    /* In a base64 text part of a multipart message. "Mit CPR er 0202855678." */
    EXPECT("From: a@b.example\r\nSubject: hej\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=\"BB\"\r\n\r\n"
           "--BB\r\nContent-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\nTWl0IENQUiBlciAwMjAyODU1Njc4Lg==\r\n"
           "--BB\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           "AAAA\r\n--BB--\r\n",
           ROUTE_CPR, "M2", "");
    /* Quoted-printable with a soft line break inside the number. */
    EXPECT("From: a@b.example\r\nSubject: hej\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=iso-8859-1\r\n"
           "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
           "Mit CPR-nummer er 01019=\r\n0-1234 tak\r\n",
           ROUTE_CPR, "M1", "");
    /* CPR only inside an attachment that is not text: not used. */
    EXPECT("From: a@b.example\r\nSubject: hej\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=BB\r\n\r\n"
           "--BB\r\nContent-Type: text/plain\r\n\r\nse vedhæftet\r\n"
           "--BB\r\nContent-Type: application/octet-stream\r\n\r\n010190-1234\r\n--BB--\r\n",
           ROUTE_NONE, "", "");
    /* An unregistered CPR before a registered one. */
    EXPECT("From: a@b.example\r\nSubject: x\r\n\r\n050505-5555 og 030303-3333\r\n", ROUTE_CPR,
           "M3", "");
    EXPECT("From: a@b.example\r\nSubject: x\r\n\r\nkonto 0101901234999\r\n", ROUTE_NONE, "", "");
}

static void test_auto_and_own(void **state)
{
    struct fixture *f = *state;

    EXPECT("From: soren@example.dk\r\nAuto-Submitted: auto-replied\r\nSubject: Sag 2024-12345"
           "\r\n\r\nx\r\n", ROUTE_AUTO, "", "");
    EXPECT("From: soren@example.dk\r\nAuto-Submitted: no\r\nSubject: x\r\n\r\nx\r\n",
           ROUTE_SENDER, "M1", "");
    EXPECT("From: soren@example.dk\r\nPrecedence: bulk\r\nSubject: x\r\n\r\nx\r\n", ROUTE_AUTO,
           "", "");
    EXPECT("From: soren@example.dk\r\nX-Autoreply: yes\r\nSubject: x\r\n\r\nx\r\n", ROUTE_AUTO,
           "", "");
    EXPECT("Return-Path: <>\r\nFrom: soren@example.dk\r\nSubject: x\r\n\r\nx\r\n", ROUTE_AUTO,
           "", "");
    EXPECT("Return-Path: <soren@example.dk>\r\nFrom: soren@example.dk\r\nSubject: x\r\n\r\nx\r\n",
           ROUTE_SENDER, "M1", "");
    EXPECT("From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\nSubject: Undelivered\r\n"
           "\r\n010190-1234\r\n", ROUTE_AUTO, "", "");
    EXPECT("From: x@y.example\r\nContent-Type: multipart/report; report-type=delivery-status;"
           "\r\n boundary=R\r\nSubject: x\r\n\r\n--R\r\n\r\n010190-1234\r\n--R--\r\n",
           ROUTE_AUTO, "", "");
    /* The fund's own mail, even when it cites a case or a CPR. */
    EXPECT("From: A-kassen <POST@akasse.example>\r\nSubject: Sag 2024-12345\r\n\r\nx\r\n",
           ROUTE_OWN, "", "");
    EXPECT("From: sagsbehandler@mail.fund.example\r\nSubject: Sag 2024-12345\r\n\r\nx\r\n",
           ROUTE_OWN, "", "");
    EXPECT("From: x@notfund.example\r\nSubject: x\r\n\r\nx\r\n", ROUTE_NONE, "", "");
}

static void test_malformed(void **state)
{
    struct fixture *f = *state;

    /* 8-bit (Latin-1) header bytes, no MIME labels. */
    EXPECT("From: S\xf8ren <soren@example.dk>\r\nSubject: l\xf8n\r\n\r\nx\r\n", ROUTE_SENDER, "M1",
           "");
    EXPECT("From: x@y.example\r\nSubject: Sag 2024-12345 \xf8\xe6\xe5\r\n\r\nx\r\n", ROUTE_CASE,
           "M1", "2024-12345");
    /* Missing final boundary, broken base64, bare LF line ends. */
    EXPECT("From: a@b.example\nSubject: x\nContent-Type: multipart/mixed; boundary=Z\n\n--Z\n"
           "Content-Type: text/plain\n\n010190-1234\n--Z\nContent-Transfer-Encoding: base64\n"
           "Content-Type: text/plain\n\n!!!!not base64!!!!\n", ROUTE_CPR, "M1", "");
    /* No header/body separator, no From, garbage lines. */
    EXPECT("garbage line without colon\r\nSubject: x", ROUTE_NONE, "", "");
    EXPECT("", ROUTE_NONE, "", "");
    /* Message-ID is kept as sent; headers are case-insensitive. */
    {
        struct msginfo info;
        mr_error err;
        const char *m = "message-id:  <abc@def>  \r\nSUBJECT: a\r\n  b\r\n\r\n";
        assert_int_equal(msginfo_parse((const unsigned char *)m, strlen(m), &info, &err), 0);
        assert_string_equal(info.message_id, "<abc@def>");
        assert_string_equal(info.subject, "a b");   /* unfolded; the phrase decoder collapses runs of spaces */
        msginfo_free(&info);
    }
}

/* The configuration's own default pattern captures the whole reference. */
static void test_whole_reference_pattern(void **state)
{
    struct fixture *f = *state;
    struct route_config cfg = {
        .case_pattern = "(Sag[[:space:]]+[0-9]{4}-[0-9]+|\\[Sag[[:space:]]*#[0-9]+\\])" };
    router *old = f->rt;
    mr_error err;

    assert_int_equal(route_new(&cfg, &f->rt, &err), 0);
    EXPECT("From: x@y.example\r\nSubject: Sag 2024-12345\r\n\r\nx\r\n", ROUTE_CASE, "M1",
           "2024-12345");
    EXPECT("From: x@y.example\r\nSubject: Re: [Sag #00777] tak\r\n\r\nx\r\n", ROUTE_CASE, "M2",
           "2023-00777");
    route_free(f->rt);
    f->rt = old;
}

static void test_bad_pattern(void **state)
{
    struct route_config cfg = { .case_pattern = "sag (" };
    router *r = NULL;
    mr_error err;

    (void)state;
    assert_int_equal(route_new(&cfg, &r, &err), MR_E_CONFIG);
    assert_non_null(strstr(err.msg, "case_pattern"));
    assert_null(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_case_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sender_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cpr_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auto_and_own, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whole_reference_pattern, setup, teardown),
        cmocka_unit_test(test_bad_pattern),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
