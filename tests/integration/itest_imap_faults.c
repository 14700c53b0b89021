/*
 * itest_imap_faults.c — imap/imap.c with tests/tools/faultproxy.py between it and
 * the real Dovecot: a server that drops, resets, stalls or corrupts the connection in the
 * middle of a FETCH literal must give a clear error within the I/O timeout — never a hang
 * (libetpan 1.9.4 spins forever on EOF mid-literal with a 0-returning stream) — and an
 * attacker who strips STARTTLS from the capabilities must not get a login.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <cmocka.h>

#include "integration/itest_imap_util.h"

#define BIG (1024 * 1024)     /* the message the faults hit the middle of */
#define IO_TIMEOUT 3

/* Each test gets a user whose INBOX holds one small and one 1 MiB message. */
static int setup(void **state)
{
    struct it_fixture *f;
    struct imap_options o;
    imap_conn *c = NULL;
    mr_error err = { 0 };
    size_t len = 0;
    unsigned char *m;
    int rc;

    if (it_fixture_setup(state) != 0)
        return -1;
    f = *state;
    it_options(&o, &f->srv, IMAP_TLS_IMAPS, f->user, f->password);
    if (imap_connect(&o, &c, &err) != 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        it_fixture_teardown(state);
        return -1;
    }
    m = it_make_message(2000, 1, &len);
    rc = imap_append(c, "INBOX", "", 0, 0, m, len, &err);
    free(m);
    m = it_make_message(BIG, 2, &len);
    if (rc == 0)
        rc = imap_append(c, "INBOX", "", 0, 0, m, len, &err);
    free(m);
    imap_close(c);
    if (rc != 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        it_fixture_teardown(state);
        return -1;
    }
    return 0;
}

static int group_setup(void **state)
{
    return it_pool_create(state, 10);
}

/* Connect through a proxy in `mode` that breaks after `after` server->client bytes, fetch
 * everything, and return the fetch's result; *elapsed is the fetch's duration. */
static int fetch_through_proxy(struct it_fixture *f, enum imap_tls_mode tls, const char *mode,
                               const char *after, mr_error *err, double *elapsed,
                               size_t *delivered)
{
    const char *extra[] = { "--mode", mode, "--after", after, NULL };
    struct imap_options o;
    struct it_collect col = { 0 };
    imap_conn *c = NULL;
    int port = 0, rc;
    pid_t proxy;
    double t0;

    it_options(&o, &f->srv, tls, f->user, f->password);
    proxy = it_proxy_start(o.port, &port, extra);
    assert_true(proxy > 0);
    o.port = port;
    o.io_timeout_s = IO_TIMEOUT;
    rc = imap_connect(&o, &c, err);
    if (rc != 0) {
        fprintf(stderr, "connect through proxy: %s\n", err->msg);
        it_proxy_stop(proxy);
        return rc;
    }
    assert_int_equal(imap_examine(c, "INBOX", NULL, err), 0);
    t0 = it_now();
    rc = imap_uid_fetch(c, 1, 0, it_collect_fn, &col, err);
    *elapsed = it_now() - t0;
    *delivered = col.n;
    it_collect_free(&col);
    /* After a transport failure every further call says so at once. */
    if (rc != 0) {
        mr_error e2 = { 0 };
        assert_int_equal(imap_examine(c, "INBOX", NULL, &e2), MR_E_STATE);
    }
    t0 = it_now();
    imap_close(c);   /* must not wait for a LOGOUT reply on a dead connection */
    assert_true(it_now() - t0 < 1.0);
    it_proxy_stop(proxy);
    return rc;
}

/* Control: the proxy itself is transparent in "pass" mode. */
static void test_proxy_pass_is_transparent(void **state)
{
    mr_error err = { 0 };
    double el;
    size_t n;

    assert_int_equal(fetch_through_proxy(*state, IMAP_TLS_IMAPS, "pass", "0", &err, &el, &n),
                     0);
    assert_int_equal(n, 2);
}

/* The server closes the connection half-way through the 1 MiB literal. */
static void test_drop_mid_fetch_is_network_error(void **state)
{
    mr_error err = { 0 };
    double el;
    size_t n;

    assert_int_equal(fetch_through_proxy(*state, IMAP_TLS_IMAPS, "cut", "400000", &err, &el,
                                         &n),
                     MR_E_NETWORK);
    assert_true(el < IO_TIMEOUT);       /* EOF is reported at once, not after a timeout */
    assert_int_equal(n, 1);             /* the small message came through, the big did not */
    assert_non_null(strstr(err.msg, "closed"));
    /* The same over STARTTLS. */
    assert_int_equal(fetch_through_proxy(*state, IMAP_TLS_STARTTLS, "cut", "400000", &err,
                                         &el, &n),
                     MR_E_NETWORK);
    assert_true(el < IO_TIMEOUT);
}

static void test_reset_mid_fetch_is_network_error(void **state)
{
    mr_error err = { 0 };
    double el;
    size_t n;

    assert_int_equal(fetch_through_proxy(*state, IMAP_TLS_IMAPS, "reset", "400000", &err, &el,
                                         &n),
                     MR_E_NETWORK);
    assert_true(el < IO_TIMEOUT);
}

/* A server that stops sending (but keeps the connection) hits the I/O timeout. */
static void test_stall_mid_fetch_times_out(void **state)
{
    mr_error err = { 0 };
    double el;
    size_t n;

    assert_int_equal(fetch_through_proxy(*state, IMAP_TLS_IMAPS, "stall", "400000", &err, &el,
                                         &n),
                     MR_E_TIMEOUT);
    assert_true(el >= IO_TIMEOUT - 0.5);
    assert_true(el < IO_TIMEOUT + 5);
    assert_non_null(strstr(err.msg, "timed out"));
}

/* A flipped byte inside the TLS stream is detected (record MAC), never delivered. */
static void test_corrupt_byte_is_tls_error(void **state)
{
    mr_error err = { 0 };
    double el;
    size_t n;

    assert_int_equal(fetch_through_proxy(*state, IMAP_TLS_IMAPS, "corrupt", "400000", &err,
                                         &el, &n),
                     MR_E_TLS);
    assert_int_equal(n, 1);
}

/* An active attacker removes STARTTLS from the capability list: mailret refuses, and
 * the server never sees a login. */
static void test_starttls_stripped_is_refused(void **state)
{
    struct it_fixture *f = *state;
    const char *extra[] = { "--replace", "STARTTLS", "XTARTTLS", NULL };
    struct imap_options o;
    imap_conn *c = NULL;
    mr_error err = { 0 };
    int port = 0;
    pid_t proxy;
    int before = it_log_logins(&f->srv, f->user);

    it_options(&o, &f->srv, IMAP_TLS_STARTTLS, f->user, f->password);
    proxy = it_proxy_start(o.port, &port, extra);
    assert_true(proxy > 0);
    o.port = port;
    assert_int_equal(imap_connect(&o, &c, &err), MR_E_TLS);
    assert_null(c);
    assert_non_null(strstr(err.msg, "STARTTLS"));
    it_proxy_stop(proxy);
    /* Control login afterwards; the log must show only that one more login. */
    it_options(&o, &f->srv, IMAP_TLS_STARTTLS, f->user, f->password);
    assert_int_equal(imap_connect(&o, &c, &err), 0);
    imap_close(c);
    assert_int_equal(it_log_wait_logins(&f->srv, f->user, before + 1), before + 1);
}

/* A server that is not there, or does not answer the handshake, fails within the
 * connect/I/O timeouts. */
static void test_no_server_and_silent_server(void **state)
{
    struct it_fixture *f = *state;
    const char *extra[] = { "--mode", "stall", "--after", "0", NULL };
    struct imap_options o;
    imap_conn *c = NULL;
    mr_error err = { 0 };
    int port = 0;
    pid_t proxy;
    double t0;

    it_options(&o, &f->srv, IMAP_TLS_IMAPS, f->user, f->password);
    o.port = 1;   /* nothing listens on port 1 */
    assert_int_equal(imap_connect(&o, &c, &err), MR_E_NETWORK);
    proxy = it_proxy_start(f->srv.imap_port, &port, extra);
    assert_true(proxy > 0);
    it_options(&o, &f->srv, IMAP_TLS_STARTTLS, f->user, f->password);
    o.port = port;
    o.io_timeout_s = 2;
    t0 = it_now();
    assert_int_equal(imap_connect(&o, &c, &err), MR_E_TIMEOUT);   /* no greeting */
    assert_true(it_now() - t0 < 6);
    it_proxy_stop(proxy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        IT_FIXTURE_TEST_SETUP(test_proxy_pass_is_transparent, setup),
        IT_FIXTURE_TEST_SETUP(test_drop_mid_fetch_is_network_error, setup),
        IT_FIXTURE_TEST_SETUP(test_reset_mid_fetch_is_network_error, setup),
        IT_FIXTURE_TEST_SETUP(test_stall_mid_fetch_times_out, setup),
        IT_FIXTURE_TEST_SETUP(test_corrupt_byte_is_tls_error, setup),
        IT_FIXTURE_TEST_SETUP(test_starttls_stripped_is_refused, setup),
        IT_FIXTURE_TEST_SETUP(test_no_server_and_silent_server, setup),
    };

    /* A hang (the libetpan EOF spin) must fail the test, not stall the suite. */
    alarm(300);
    return cmocka_run_group_tests(tests, group_setup, it_pool_free);
}
