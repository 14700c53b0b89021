/*
 * itest_imap_auth.c — against the real Dovecot, with tests/tools/faultproxy.py
 * recording what the client sends:
 *  - no login method sends anything on a connection without TLS: the refusal comes
 *    before a single byte (control: the test-only override does send AUTHENTICATE);
 *  - Exchange's throttling ("NO ... Request is throttled. Suggested Backoff Time: N
 *    milliseconds", injected by the proxy, which ends TLS on both sides to do so) in the
 *    middle of a UID FETCH and on a UID STORE: mailret waits as suggested and resumes
 *    where it stopped — every message delivered exactly once, the STORE applied — and
 *    gives up with a one-line error when the wait would pass its budget.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "integration/itest_imap_util.h"

#define N_MSG 7

struct fixture {
    struct it_server srv;
    char user[40], password[40];
    char dir[4096];             /* scratch: the proxy's recording */
    char wire[4200];
    char cert[4200], key[4200];
};

static int group_setup(void **state)
{
    return it_pool_create(state, 8);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct imap_options o;
    imap_conn *c = NULL;
    mr_error err = { 0 };
    char *tmp;
    int rc = 0;

    if (f == NULL)
        return -1;
    it_server_load(&f->srv);
    if (it_take_user(*state, &f->srv, f->user, f->password) != 0)
        return -1;
    tmp = th_tempdir("mailret-itest-auth");
    if (tmp == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "%s", tmp);
    free(tmp);
    snprintf(f->wire, sizeof f->wire, "%s/wire", f->dir);
    snprintf(f->cert, sizeof f->cert, "%s/tls/server.crt", f->srv.dir);
    snprintf(f->key, sizeof f->key, "%s/tls/server.key", f->srv.dir);
    it_options(&o, &f->srv, IMAP_TLS_IMAPS, f->user, f->password);
    if (imap_connect(&o, &c, &err) != 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    for (unsigned i = 0; rc == 0 && i < N_MSG; i++) {
        size_t len = 0;
        unsigned char *m = it_make_message(3000 + 1000 * i, 40 + i, &len);
        rc = imap_append(c, "INBOX", "", 0, 0, m, len, &err);
        free(m);
    }
    imap_close(c);
    if (rc != 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    th_rmtree(f->dir);
    it_server_free(&f->srv);
    free(f);
    return 0;
}

static int tcp_connect(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* What the client sent through the proxy ("" if nothing). */
static char *wire_read(struct fixture *f)
{
    size_t len = 0;
    unsigned char *d = th_read_file(f->wire, &len);

    return d != NULL ? (char *)d : strdup("");
}

static int count(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static int fake_token(void *ctx, char **secret, mr_error *err)
{
    (void)ctx;
    (void)err;
    *secret = strdup("eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl");
    return *secret != NULL ? 0 : MR_E_NOMEM;
}

/* A plain connection (Dovecot's IMAP port, STARTTLS not done): every method refuses
 * before sending anything at all. */
static void test_no_credentials_without_tls(void **state)
{
    struct fixture *f = *state;
    static const enum imap_auth methods[] = { IMAP_AUTH_LOGIN, IMAP_AUTH_PLAIN,
                                              IMAP_AUTH_XOAUTH2, IMAP_AUTH_OAUTHBEARER };

    for (size_t i = 0; i < 5; i++) {
        const char *extra[] = { "--record-client", f->wire, NULL };
        struct imap_options o;
        imap_conn *c = NULL;
        mr_error err = { 0 };
        int port = 0, fd, rc;
        pid_t proxy;
        char *wire;
        bool control = i == 4;   /* the test-only override: the LOGIN does go out */

        unlink(f->wire);
        proxy = it_proxy_start(f->srv.imap_port, &port, extra);
        assert_true(proxy > 0);
        fd = tcp_connect(port);
        assert_true(fd >= 0);
        it_options(&o, &f->srv, IMAP_TLS_STARTTLS, f->user, f->password);
        o.auth = control ? IMAP_AUTH_LOGIN : methods[i];
        if (o.auth == IMAP_AUTH_XOAUTH2 || o.auth == IMAP_AUTH_OAUTHBEARER)
            o.secret_fn = fake_token;
        o.plaintext_auth_for_tests = control;
        o.io_timeout_s = 5;
        rc = imap_connect_fd(fd, &o, &c, &err);
        if (control)
            imap_close(c);      /* Dovecot trusts loopback and may even accept it */
        else
            assert_null(c);
        usleep(200 * 1000);   /* let the proxy write down anything that was sent */
        it_proxy_stop(proxy);
        wire = wire_read(f);
        if (control) {
            /* The LOGIN did go out: the recording sees what is sent. */
            (void)rc;
            assert_non_null(strstr(wire, " LOGIN "));
        } else {
            assert_int_equal(rc, MR_E_TLS);
            assert_non_null(strstr(err.msg, "refusing to send credentials"));
            assert_non_null(strstr(err.msg, "without TLS"));
            if (wire[0] != '\0')
                fail_msg("method %zu sent %zu bytes before refusing: %s", i, strlen(wire),
                         wire);
        }
        free(wire);
    }
}

/* Connect through a TLS-ending proxy that throttles as given; returns the proxy pid. */
static pid_t throttle_connect(struct fixture *f, const char *const *throttle,
                              int budget_s, imap_conn **c)
{
    const char *extra[24];
    struct imap_options o;
    mr_error err = { 0 };
    int port = 0, n = 0;
    pid_t proxy;

    extra[n++] = "--record-client";
    extra[n++] = f->wire;
    extra[n++] = "--tls-cert";
    extra[n++] = f->cert;
    extra[n++] = "--tls-key";
    extra[n++] = f->key;
    for (size_t i = 0; throttle[i] != NULL; i++)
        extra[n++] = throttle[i];
    extra[n] = NULL;
    unlink(f->wire);
    proxy = it_proxy_start(f->srv.imaps_port, &port, extra);
    assert_true(proxy > 0);
    it_options(&o, &f->srv, IMAP_TLS_IMAPS, f->user, f->password);
    o.port = port;
    o.throttle_max_wait_s = budget_s;
    if (imap_connect(&o, c, &err) != 0)
        fail_msg("connect through the throttling proxy: %s", err.msg);
    return proxy;
}

/* The reference: every message fetched directly, once. */
static void fetch_direct(struct fixture *f, struct it_collect *col)
{
    struct imap_options o;
    imap_conn *c = NULL;
    mr_error err = { 0 };

    it_options(&o, &f->srv, IMAP_TLS_IMAPS, f->user, f->password);
    assert_int_equal(imap_connect(&o, &c, &err), 0);
    assert_int_equal(imap_examine(c, "INBOX", NULL, &err), 0);
    assert_int_equal(imap_uid_fetch(c, 1, 0, it_collect_fn, col, &err), 0);
    imap_close(c);
    assert_int_equal(col->n, N_MSG);
}

static void expect_same_once(const struct it_collect *want, const struct it_collect *got)
{
    assert_int_equal(got->n, want->n);
    for (size_t i = 0; i < want->n; i++) {
        size_t hits = 0;
        for (size_t j = 0; j < got->n; j++) {
            if (got->m[j].uid != want->m[i].uid)
                continue;
            hits++;
            assert_int_equal(got->m[j].body_len, want->m[i].body_len);
            assert_memory_equal(got->m[j].body, want->m[i].body, want->m[i].body_len);
        }
        if (hits != 1)
            fail_msg("UID %u delivered %zu times", want->m[i].uid, hits);
    }
}

static void test_throttled_fetch_resumes(void **state)
{
    struct fixture *f = *state;
    const char *throttle[] = { "--throttle", "UID FETCH", "--throttle-mode", "mid",
                               "--throttle-after", "3", "--backoff-ms", "800", NULL };
    struct it_collect want = { 0 }, got = { 0 };
    imap_conn *c = NULL;
    mr_error err = { 0 };
    pid_t proxy;
    double t0, dt;
    char *wire;

    fetch_direct(f, &want);
    proxy = throttle_connect(f, throttle, 60, &c);
    assert_int_equal(imap_examine(c, "INBOX", NULL, &err), 0);
    t0 = it_now();
    if (imap_uid_fetch(c, 1, 0, it_collect_fn, &got, &err) != 0)
        fail_msg("throttled fetch failed: %s", err.msg);
    dt = it_now() - t0;
    expect_same_once(&want, &got);
    assert_true(dt >= 0.75);            /* it waited as suggested */
    assert_true(dt < 10);
    /* The session is still good afterwards. */
    assert_int_equal(imap_examine(c, "INBOX", NULL, &err), 0);
    imap_close(c);
    it_proxy_stop(proxy);
    wire = wire_read(f);
    /* Two FETCHes: the first for everything, the second after the third message. */
    assert_int_equal(count(wire, "UID FETCH"), 2);
    {
        char again[64];
        snprintf(again, sizeof again, "UID FETCH %u:*", want.m[3].uid);
        if (strstr(wire, again) == NULL)
            fail_msg("the second FETCH does not resume after the third message: %s", wire);
    }
    free(wire);
    it_collect_free(&want);
    it_collect_free(&got);
}

static void test_throttled_fetch_set_resumes(void **state)
{
    struct fixture *f = *state;
    const char *throttle[] = { "--throttle", "UID FETCH", "--throttle-mode", "mid",
                               "--throttle-after", "2", "--backoff-ms", "300", NULL };
    struct it_collect want = { 0 }, got = { 0 }, sub = { 0 };
    uint32_t set[N_MSG];
    size_t n = 0;
    imap_conn *c = NULL;
    mr_error err = { 0 };
    pid_t proxy;

    fetch_direct(f, &want);
    for (size_t i = 0; i < want.n; i += 2)      /* every other message: 1, 3, 5, 7 */
        set[n++] = want.m[i].uid;
    for (size_t i = 0; i < want.n; i += 2)
        sub.m[sub.n++] = want.m[i];
    proxy = throttle_connect(f, throttle, 60, &c);
    assert_int_equal(imap_examine(c, "INBOX", NULL, &err), 0);
    if (imap_uid_fetch_set(c, set, n, it_collect_fn, &got, &err) != 0)
        fail_msg("throttled fetch failed: %s", err.msg);
    expect_same_once(&sub, &got);
    imap_close(c);
    it_proxy_stop(proxy);
    {
        char *wire = wire_read(f), again[64];
        assert_int_equal(count(wire, "UID FETCH"), 2);
        /* the repeat asks only for the two that had not arrived */
        snprintf(again, sizeof again, "UID FETCH %u,%u ", set[2], set[3]);
        if (strstr(wire, again) == NULL)
            fail_msg("the second FETCH is not the rest of the set: %s", wire);
        free(wire);
    }
    it_collect_free(&want);
    it_collect_free(&got);
}

static void test_throttled_store_retried(void **state)
{
    struct fixture *f = *state;
    const char *throttle[] = { "--throttle", "UID STORE", "--throttle-mode", "before",
                               "--throttle-times", "2", "--backoff-ms", "400", NULL };
    struct it_collect want = { 0 }, after = { 0 };
    uint32_t uids[2];
    imap_conn *c = NULL;
    mr_error err = { 0 };
    pid_t proxy;
    double t0;
    char *wire;

    fetch_direct(f, &want);
    uids[0] = want.m[1].uid;
    uids[1] = want.m[4].uid;
    proxy = throttle_connect(f, throttle, 60, &c);
    assert_int_equal(imap_select(c, "INBOX", NULL, &err), 0);
    t0 = it_now();
    if (imap_uid_store_deleted(c, uids, 2, &err) != 0)
        fail_msg("throttled STORE failed: %s", err.msg);
    assert_true(it_now() - t0 >= 0.75);     /* two waits of 400 ms */
    imap_close(c);
    it_proxy_stop(proxy);
    wire = wire_read(f);
    assert_int_equal(count(wire, "UID STORE"), 3);     /* refused twice, then done */
    free(wire);
    /* The flags really are on exactly those two messages now. */
    fetch_direct(f, &after);
    for (size_t i = 0; i < after.n; i++) {
        bool want_del = after.m[i].uid == uids[0] || after.m[i].uid == uids[1];
        assert_int_equal(it_flag_has(after.m[i].flags, "\\Deleted"), want_del);
    }
    it_collect_free(&want);
    it_collect_free(&after);
}

/* Over budget: the refusal stands, as one line, without waiting; the session lives on. */
static void test_throttle_budget(void **state)
{
    struct fixture *f = *state;
    const char *throttle[] = { "--throttle", "UID STORE", "--throttle-mode", "before",
                               "--backoff-ms", "120000", NULL };
    const char *never[] = { "--throttle", "UID STORE", "--throttle-mode", "before",
                            "--backoff-ms", "100", NULL };
    uint32_t uid = 1;
    imap_conn *c = NULL;
    mr_error err = { 0 };
    pid_t proxy;
    double t0;

    /* 120 s suggested, 30 s budget: even the 60 s cap does not fit; fail at once. */
    proxy = throttle_connect(f, throttle, 30, &c);
    assert_int_equal(imap_select(c, "INBOX", NULL, &err), 0);
    t0 = it_now();
    assert_int_equal(imap_uid_store_deleted(c, &uid, 1, &err), MR_E_PROTOCOL);
    assert_true(it_now() - t0 < 5);
    assert_non_null(strstr(err.msg, "Request is throttled"));
    assert_null(strchr(err.msg, '\n'));
    assert_int_equal(imap_select(c, "INBOX", NULL, &err), 0);
    imap_close(c);
    it_proxy_stop(proxy);

    /* Budget 0: never wait. */
    proxy = throttle_connect(f, never, 0, &c);
    assert_int_equal(imap_select(c, "INBOX", NULL, &err), 0);
    assert_int_equal(imap_uid_store_deleted(c, &uid, 1, &err), MR_E_PROTOCOL);
    imap_close(c);
    it_proxy_stop(proxy);
}

/* APPEND always carries an INTERNALDATE: the archived one as given, else the current time;
 * checked in the bytes sent and in what the server then reports. */
static void test_append_sends_internaldate(void **state)
{
    struct fixture *f = *state;
    const char *none[] = { NULL };
    struct it_collect got = { 0 };
    imap_conn *c = NULL;
    mr_error err = { 0 };
    unsigned char *m;
    size_t len = 0;
    pid_t proxy;
    char *wire;
    time_t t0 = time(NULL);

    m = it_make_message(500, 99, &len);
    proxy = throttle_connect(f, none, 0, &c);
    assert_int_equal(imap_create(c, "Dated", true, &err), 0);
    /* 2019-03-04 05:06:07 UTC shown at +0130 */
    assert_int_equal(imap_append(c, "Dated", "\\Seen", 1551675967, 90, m, len, &err), 0);
    assert_int_equal(imap_append(c, "Dated", "", 0, 0, m, len, &err), 0);
    imap_close(c);
    it_proxy_stop(proxy);
    free(m);
    wire = wire_read(f);
    /* RFC 3501 date-day-fixed: a one-digit day is written with a leading blank. */
    if (strstr(wire, "APPEND Dated (\\Seen) \" 4-Mar-2019 06:36:07 +0130\" {") == NULL)
        fail_msg("APPEND without the given date: %s", wire);
    {
        /* the second: a date-time (now), not none */
        if (strstr(wire, "APPEND Dated \"") == NULL)
            fail_msg("APPEND without a date: %s", wire);
    }
    free(wire);
    {
        struct imap_options o;
        it_options(&o, &f->srv, IMAP_TLS_IMAPS, f->user, f->password);
        assert_int_equal(imap_connect(&o, &c, &err), 0);
        assert_int_equal(imap_examine(c, "Dated", NULL, &err), 0);
        assert_int_equal(imap_uid_fetch(c, 1, 0, it_collect_fn, &got, &err), 0);
        imap_close(c);
    }
    assert_int_equal(got.n, 2);
    assert_int_equal(got.m[0].internaldate, 1551675967);  /* (Maildir keeps it in UTC) */
    assert_true(got.m[1].internaldate >= t0 && got.m[1].internaldate <= time(NULL) + 1);
    it_collect_free(&got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_credentials_without_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttled_fetch_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttled_fetch_set_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttled_store_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_sends_internaldate, setup, teardown),
    };

    alarm(300);
    return cmocka_run_group_tests(tests, group_setup, it_pool_free);
}
