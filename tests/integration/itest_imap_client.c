/*
 * itest_imap_client.c — imap/imap.c against the real Dovecot test server: round trips
 * over IMAPS and STARTTLS with full verification, TLS and login failures, read-only
 * EXAMINE, SEARCH BEFORE, exact UID EXPUNGE and the no-UIDPLUS refusal.
 * Every test makes its own user, so tests never share mailbox state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <cmocka.h>

#include "integration/itest_imap_util.h"

static int group_setup(void **state)
{
    return it_pool_create(state, 16);
}

static imap_conn *connect_ok(struct it_fixture *f, enum imap_tls_mode tls)
{
    struct imap_options o;
    imap_conn *c = NULL;
    mr_error err = { 0 };
    int rc;

    it_options(&o, &f->srv, tls, f->user, f->password);
    rc = imap_connect(&o, &c, &err);
    if (rc != 0)
        fprintf(stderr, "imap_connect: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(c);
    return c;
}

/* Three messages with different flags and INTERNALDATEs in different zones. */
struct sample {
    const char *flags;
    time_t date;
    int tz;
    unsigned char *msg;
    size_t len;
};

static void make_samples(struct sample s[3])
{
    s[0] = (struct sample){ "\\Seen", 1767265200 /* 2026-01-01T11:00:00Z */, 60, NULL, 0 };
    s[1] = (struct sample){ "", 1770000000 /* 2026-02-02T02:40:00Z */, -300, NULL, 0 };
    s[2] = (struct sample){ "\\Flagged \\Answered $Label1", 1772323200, 0, NULL, 0 };
    for (int i = 0; i < 3; i++) {
        s[i].msg = it_make_message(2000 + 5000 * (size_t)i, (unsigned)i + 1, &s[i].len);
        assert_non_null(s[i].msg);
    }
}

static void roundtrip(struct it_fixture *f, enum imap_tls_mode tls)
{
    struct sample s[3];
    struct imap_mailbox_info info;
    struct it_collect col = { 0 };
    mr_error err = { 0 };
    imap_conn *c = connect_ok(f, tls);

    make_samples(s);
    for (int i = 0; i < 3; i++)
        assert_int_equal(imap_append(c, "INBOX", s[i].flags, s[i].date, s[i].tz, s[i].msg,
                                     s[i].len, &err), 0);
    assert_int_equal(imap_examine(c, "INBOX", &info, &err), 0);
    assert_int_equal(info.exists, 3);
    assert_true(info.uidvalidity > 0);
    assert_int_equal(info.uidnext, 4);
    assert_int_equal(imap_uid_fetch(c, 1, 0, it_collect_fn, &col, &err), 0);
    assert_int_equal(col.n, 3);
    for (int i = 0; i < 3; i++) {
        struct it_fetched *m = &col.m[i];
        assert_int_equal(m->uid, (uint32_t)i + 1);
        assert_false(m->oversized);
        assert_int_equal(m->body_len, s[i].len);
        assert_memory_equal(m->body, s[i].msg, s[i].len);
        assert_int_equal(m->rfc822_size, s[i].len);
        assert_true(it_flags_equal(m->flags, s[i].flags));
        assert_int_equal((long long)m->internaldate, (long long)s[i].date);
        free(s[i].msg);
    }
    it_collect_free(&col);
    /* "UID 10:*" matches the highest message on the server; it must not be delivered. */
    assert_int_equal(imap_uid_fetch(c, 10, 0, it_collect_fn, &col, &err), 0);
    assert_int_equal(col.n, 0);
    assert_int_equal(imap_uid_fetch(c, 3, 0, it_collect_fn, &col, &err), 0);
    assert_int_equal(col.n, 1);
    assert_int_equal(col.m[0].uid, 3);
    it_collect_free(&col);
    imap_close(c);
}

static void test_roundtrip_imaps(void **state)
{
    roundtrip(*state, IMAP_TLS_IMAPS);
}

static void test_roundtrip_starttls(void **state)
{
    roundtrip(*state, IMAP_TLS_STARTTLS);
}

/* The certificate names DNS:localhost only: connecting by address must fail the
 * host-name check, before LOGIN (the server logs no login for the user). */
static void test_wrong_host_fails_before_login(void **state)
{
    struct it_fixture *f = *state;
    struct imap_options o;
    imap_conn *c = NULL;
    mr_error err = { 0 };

    for (int tls = 0; tls < 2; tls++) {
        it_options(&o, &f->srv, tls == 0 ? IMAP_TLS_IMAPS : IMAP_TLS_STARTTLS, f->user,
                   f->password);
        o.host = "127.0.0.1";
        assert_int_equal(imap_connect(&o, &c, &err), MR_E_TLS);
        assert_null(c);
        assert_non_null(strstr(err.msg, "verification failed"));
        assert_non_null(strstr(err.msg, "mismatch"));
    }
    /* Control: the same credentials by the right name do log in; the log then shows
     * exactly that one login. */
    imap_close(connect_ok(f, IMAP_TLS_IMAPS));
    assert_int_equal(it_log_wait_logins(&f->srv, f->user, 1), 1);
}

static void test_untrusted_ca_fails(void **state)
{
    struct it_fixture *f = *state;
    struct imap_options o;
    imap_conn *c = NULL;
    mr_error err = { 0 };

    it_options(&o, &f->srv, IMAP_TLS_IMAPS, f->user, f->password);
    o.ca_file = f->srv.other_ca;
    assert_int_equal(imap_connect(&o, &c, &err), MR_E_TLS);
    assert_null(c);
    assert_non_null(strstr(err.msg, "verification failed"));
    /* The system store does not know the test CA either. */
    o.ca_file = NULL;
    assert_int_equal(imap_connect(&o, &c, &err), MR_E_TLS);
    /* STARTTLS verifies the same way. */
    it_options(&o, &f->srv, IMAP_TLS_STARTTLS, f->user, f->password);
    o.ca_file = f->srv.other_ca;
    assert_int_equal(imap_connect(&o, &c, &err), MR_E_TLS);
    /* insecure_skip_verify (tests only) does connect despite the unknown CA — and that is
     * the only login the server saw. */
    o.insecure_skip_verify = true;
    assert_int_equal(imap_connect(&o, &c, &err), 0);
    imap_close(c);
    assert_int_equal(it_log_wait_logins(&f->srv, f->user, 1), 1);
}

static void test_wrong_password_is_auth(void **state)
{
    struct it_fixture *f = *state;
    struct imap_options o;
    imap_conn *c = NULL;
    mr_error err = { 0 };

    it_options(&o, &f->srv, IMAP_TLS_IMAPS, f->user, "not-the-password");
    assert_int_equal(imap_connect(&o, &c, &err), MR_E_AUTH);
    assert_null(c);
    assert_non_null(strstr(err.msg, "login failed for the configured user"));
    assert_null(strstr(err.msg, f->user));                /* no identifier in the message */
    assert_null(strstr(err.msg, "not-the-password"));
    o.user = "no-such-user";
    assert_int_equal(imap_connect(&o, &c, &err), MR_E_AUTH);
}

/* A password with IMAP specials (quote, backslash, space, brackets, non-ASCII) must be
 * sent so that the server sees exactly it. */
static void test_password_with_specials(void **state)
{
    struct it_fixture *f = *state;
    const char *pw = "a \"q\" b\\c {5}(x)%*\xc3\xa6";
    char cmd[8192];
    FILE *p;
    struct imap_options o;
    imap_conn *c = NULL;
    mr_error err = { 0 };

    snprintf(cmd, sizeof cmd, "'%s' add-user --dir '%s' '%s' -", f->srv.script, f->srv.dir,
             f->user);
    p = popen(cmd, "w");
    assert_non_null(p);
    fprintf(p, "%s\n", pw);
    assert_int_equal(pclose(p), 0);
    it_options(&o, &f->srv, IMAP_TLS_IMAPS, f->user, pw);
    if (imap_connect(&o, &c, &err) != 0)
        fprintf(stderr, "%s\n", err.msg);
    assert_non_null(c);
    imap_close(c);
    o.password = "a \"q\" b\\c {5}";   /* a prefix is not enough */
    assert_int_equal(imap_connect(&o, &c, &err), MR_E_AUTH);
}

/* EXAMINE + BODY.PEEK[] must not change any flag (in particular not set \Seen). */
static void test_examine_fetch_leaves_flags(void **state)
{
    struct it_fixture *f = *state;
    struct it_collect a = { 0 }, b = { 0 };
    mr_error err = { 0 };
    imap_conn *c = connect_ok(f, IMAP_TLS_IMAPS);
    const char *flags[3] = { "", "\\Flagged", "\\Answered $Custom" };

    for (int i = 0; i < 3; i++) {
        size_t len = 0;
        unsigned char *m = it_make_message(3000, 10 + (unsigned)i, &len);
        assert_int_equal(imap_append(c, "INBOX", flags[i], 0, 0, m, len, &err), 0);
        free(m);
    }
    imap_close(c);
    for (int round = 0; round < 2; round++) {
        struct it_collect *col = round == 0 ? &a : &b;
        c = connect_ok(f, IMAP_TLS_IMAPS);
        assert_int_equal(imap_examine(c, "INBOX", NULL, &err), 0);
        assert_int_equal(imap_uid_fetch(c, 1, 0, it_collect_fn, col, &err), 0);
        imap_close(c);
    }
    assert_int_equal(a.n, 3);
    assert_int_equal(b.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_true(it_flags_equal(a.m[i].flags, flags[i]));
        assert_true(it_flags_equal(b.m[i].flags, flags[i]));
        assert_false(it_flag_has(b.m[i].flags, "\\Seen"));
    }
    it_collect_free(&a);
    it_collect_free(&b);
}

static void test_uid_search_before(void **state)
{
    struct it_fixture *f = *state;
    mr_error err = { 0 };
    imap_conn *c = connect_ok(f, IMAP_TLS_IMAPS);
    /* 2026-01-10, 2026-02-15, 2026-03-20, all 12:00 UTC */
    const time_t dates[3] = { 1768046400, 1771156800, 1774008000 };
    const time_t cutoff = 1772323200;   /* 2026-03-01T00:00:00Z */
    uint32_t *uids = NULL;
    size_t n = 0;

    for (int i = 0; i < 3; i++) {
        size_t len = 0;
        unsigned char *m = it_make_message(1000, 20 + (unsigned)i, &len);
        assert_int_equal(imap_append(c, "INBOX", "", dates[i], 0, m, len, &err), 0);
        free(m);
    }
    assert_int_equal(imap_examine(c, "INBOX", NULL, &err), 0);
    assert_int_equal(imap_uid_search(c, 1, 0, cutoff, &uids, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(uids[0], 1);
    assert_int_equal(uids[1], 2);
    free(uids);
    /* A cutoff before everything finds nothing; none finds all. */
    assert_int_equal(imap_uid_search(c, 1, 0, 1767225600 /* 2026-01-01 */, &uids, &n, &err), 0);
    assert_int_equal(n, 0);
    free(uids);
    assert_int_equal(imap_uid_search(c, 1, 0, 0, &uids, &n, &err), 0);
    assert_int_equal(n, 3);
    free(uids);
    /* UID range limits, including the "n:*" trap (matches the highest UID below n). */
    assert_int_equal(imap_uid_search(c, 2, 2, 0, &uids, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(uids[0], 2);
    free(uids);
    assert_int_equal(imap_uid_search(c, 10, 0, 0, &uids, &n, &err), 0);
    assert_int_equal(n, 0);
    free(uids);
    imap_close(c);
}

/* UID EXPUNGE removes exactly the given UIDs, not another message someone marked
 * \Deleted. */
static void test_uid_expunge_exact(void **state)
{
    struct it_fixture *f = *state;
    mr_error err = { 0 };
    imap_conn *c = connect_ok(f, IMAP_TLS_IMAPS);
    const uint32_t other[] = { 2 }, mine[] = { 1, 3, 4 };
    struct it_collect col = { 0 };
    uint32_t *uids = NULL;
    size_t n = 0;

    assert_true(imap_has_capability(c, "UIDPLUS"));
    assert_true(imap_has_capability(c, "uidplus"));
    assert_false(imap_has_capability(c, "NO-SUCH-CAPABILITY"));
    for (int i = 0; i < 6; i++) {
        size_t len = 0;
        unsigned char *m = it_make_message(800, 30 + (unsigned)i, &len);
        assert_int_equal(imap_append(c, "INBOX", "", 0, 0, m, len, &err), 0);
        free(m);
    }
    assert_int_equal(imap_select(c, "INBOX", NULL, &err), 0);
    assert_int_equal(imap_uid_store_deleted(c, other, 1, &err), 0);
    assert_int_equal(imap_uid_store_deleted(c, mine, 3, &err), 0);
    assert_int_equal(imap_uid_expunge(c, mine, 3, &err), 0);
    assert_int_equal(imap_uid_search(c, 1, 0, 0, &uids, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(uids[0], 2);
    assert_int_equal(uids[1], 5);
    assert_int_equal(uids[2], 6);
    free(uids);
    /* The other \Deleted message is still there and still marked, and UID SEARCH DELETED
     * (purge's check before a plain EXPUNGE) finds exactly it. */
    assert_int_equal(imap_uid_search_deleted(c, &uids, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(uids[0], 2);
    free(uids);
    assert_int_equal(imap_uid_fetch(c, 2, 2, it_collect_fn, &col, &err), 0);
    assert_int_equal(col.n, 1);
    assert_true(it_flag_has(col.m[0].flags, "\\Deleted"));
    it_collect_free(&col);
    /* Unsorted input is refused rather than guessed at. */
    {
        const uint32_t bad[] = { 5, 2 };
        assert_int_equal(imap_uid_expunge(c, bad, 2, &err), MR_E_INVALID);
    }
    imap_close(c);
}

/* On the listener that does not advertise UIDPLUS, UID EXPUNGE is refused and nothing is
 * removed. */
static void test_no_uidplus_refuses_expunge(void **state)
{
    struct it_fixture *f = *state;
    struct imap_options o;
    mr_error err = { 0 };
    imap_conn *c = NULL;
    const uint32_t one[] = { 1 };
    uint32_t *uids = NULL;
    size_t n = 0;

    it_options(&o, &f->srv, IMAP_TLS_IMAPS, f->user, f->password);
    o.port = f->srv.noplus_port;
    assert_int_equal(imap_connect(&o, &c, &err), 0);
    assert_false(imap_has_capability(c, "UIDPLUS"));
    assert_true(imap_has_capability(c, "IMAP4rev1"));
    for (int i = 0; i < 2; i++) {
        size_t len = 0;
        unsigned char *m = it_make_message(800, 40 + (unsigned)i, &len);
        assert_int_equal(imap_append(c, "INBOX", "", 0, 0, m, len, &err), 0);
        free(m);
    }
    assert_int_equal(imap_select(c, "INBOX", NULL, &err), 0);
    assert_int_equal(imap_uid_store_deleted(c, one, 1, &err), 0);
    assert_int_equal(imap_uid_expunge(c, one, 1, &err), MR_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "UIDPLUS"));
    assert_int_equal(imap_uid_search(c, 1, 0, 0, &uids, &n, &err), 0);
    assert_int_equal(n, 2);
    free(uids);
    imap_close(c);
}

static void test_create_and_examine_missing(void **state)
{
    struct it_fixture *f = *state;
    mr_error err = { 0 };
    imap_conn *c = connect_ok(f, IMAP_TLS_IMAPS);
    struct imap_mailbox_info info;

    assert_int_equal(imap_append(c, "INBOX", "bad(flag", 0, 0, (const unsigned char *)"x", 1,
                                 &err), MR_E_INVALID);
    assert_int_equal(imap_append(c, "NoSuchBox", "", 0, 0,
                                 (const unsigned char *)"Subject: x\r\n\r\nx\r\n", 17, &err),
                     MR_E_PROTOCOL);
    assert_int_equal(imap_examine(c, "Nope", &info, &err), MR_E_PROTOCOL);
    assert_non_null(strstr(err.msg, "Nope"));
    assert_int_equal(imap_create(c, "Archive", false, &err), 0);
    assert_int_equal(imap_create(c, "Archive", true, &err), 0);
    assert_int_equal(imap_create(c, "Archive", false, &err), MR_E_PROTOCOL);
    assert_int_equal(imap_examine(c, "Archive", &info, &err), 0);
    assert_int_equal(info.exists, 0);
    /* The session is still usable after a refused command. */
    assert_int_equal(imap_examine(c, "INBOX", &info, &err), 0);
    imap_close(c);
}

/* A callback error stops the fetch and is returned as is. */
static void test_callback_error_stops_fetch(void **state)
{
    struct it_fixture *f = *state;
    mr_error err = { 0 };
    imap_conn *c = connect_ok(f, IMAP_TLS_IMAPS);
    struct it_collect col = { .fail_at = 2 };

    for (int i = 0; i < 3; i++) {
        size_t len = 0;
        unsigned char *m = it_make_message(200000, 50 + (unsigned)i, &len);
        assert_int_equal(imap_append(c, "INBOX", "", 0, 0, m, len, &err), 0);
        free(m);
    }
    assert_int_equal(imap_examine(c, "INBOX", NULL, &err), 0);
    assert_int_equal(imap_uid_fetch(c, 1, 0, it_collect_fn, &col, &err), MR_E_IO);
    assert_string_equal(err.msg, "collector asked to fail");
    assert_int_equal(col.n, 1);
    it_collect_free(&col);
    imap_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        IT_FIXTURE_TEST(test_roundtrip_imaps),
        IT_FIXTURE_TEST(test_roundtrip_starttls),
        IT_FIXTURE_TEST(test_wrong_host_fails_before_login),
        IT_FIXTURE_TEST(test_untrusted_ca_fails),
        IT_FIXTURE_TEST(test_wrong_password_is_auth),
        IT_FIXTURE_TEST(test_password_with_specials),
        IT_FIXTURE_TEST(test_examine_fetch_leaves_flags),
        IT_FIXTURE_TEST(test_uid_search_before),
        IT_FIXTURE_TEST(test_uid_expunge_exact),
        IT_FIXTURE_TEST(test_no_uidplus_refuses_expunge),
        IT_FIXTURE_TEST(test_create_and_examine_missing),
        IT_FIXTURE_TEST(test_callback_error_stops_fetch),
    };

    /* A hang (the libetpan EOF spin) must fail the test, not stall the suite. */
    alarm(300);
    return cmocka_run_group_tests(tests, group_setup, it_pool_free);
}
