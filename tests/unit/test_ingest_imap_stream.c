/*
 * test_ingest_imap_stream.c — the transport under ingest/imap.c, without a mail server:
 * the peer is the other end of a loopback socket that the test writes canned bytes into.
 * (The real protocol is tested against Dovecot in tests/integration/itest_ingest_imap*.c;
 * these tests pin down transport behaviour no real server produces on demand.)
 *
 *  - EOF in the middle of a literal makes libetpan's parser fail at once (Debian's 1.9.4
 *    loops forever when a stream read returns 0 there); the cause is "closed".
 *  - a silent peer gives MR_E_TIMEOUT after io_timeout; a dead stream stays dead.
 *  - a plain-text peer on an IMAPS connection is a TLS error, quickly; a silent one gives
 *    up after connect_timeout, not io_timeout.
 *  - STARTTLS: bytes the server sent after "OK Begin TLS" but before the handshake are
 *    refused (command injection), and a server without STARTTLS is refused.
 *  - a literal of more than 1 MiB outside a message body is refused (imap_guard.h).
 *  - argument checks of imap_connect.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ingest/imap.h"
#include "ingest/imap_stream.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int listen_loopback(int *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void write_all(int fd, const char *s)
{
    size_t n = strlen(s);

    assert_int_equal(write(fd, s, n), (ssize_t)n);
}

/* An open stream and the peer's end of it. */
struct pair {
    int lfd, peer;
    mailstream *s;
    imap_stream *st;
};

static void pair_open(struct pair *p, int io_timeout_s)
{
    mr_error err = { 0 };
    int port;

    p->lfd = listen_loopback(&port);
    assert_int_equal(imap_stream_open("127.0.0.1", port, 5, io_timeout_s, &p->s, &p->st, &err),
                     0);
    p->peer = accept(p->lfd, NULL, NULL);
    assert_true(p->peer >= 0);
}

static void pair_close(struct pair *p)
{
    if (p->s != NULL)
        mailstream_close(p->s);
    close(p->peer);
    close(p->lfd);
}

static void test_eof_mid_literal_fails_fast(void **state)
{
    struct pair p;
    mailimap *imap = mailimap_new(0, NULL);
    struct mailimap_set *set = mailimap_set_new_single(5);
    struct mailimap_fetch_type *ft =
        mailimap_fetch_type_new_fetch_att(mailimap_fetch_att_new_body_peek_section(
            mailimap_section_new(NULL)));
    clist *result = NULL;
    mr_error err = { 0 };
    double t0;
    int r;

    (void)state;
    pair_open(&p, 30);
    write_all(p.peer, "* OK ready\r\n");
    assert_int_equal(mailimap_connect(imap, p.s), MAILIMAP_NO_ERROR_NON_AUTHENTICATED);
    imap->imap_state = MAILIMAP_STATE_SELECTED;   /* skip LOGIN/SELECT: the peer is canned */
    /* The FETCH response announces 100000 bytes, sends 3, and the server half-closes. */
    write_all(p.peer, "* 1 FETCH (UID 5 BODY[] {100000}\r\nabc");
    shutdown(p.peer, SHUT_WR);
    alarm(20);      /* the libetpan bug would spin here: let the alarm kill the test */
    t0 = now_s();
    r = mailimap_uid_fetch(imap, set, ft, &result);
    alarm(0);
    assert_int_equal(r, MAILIMAP_ERROR_STREAM);
    assert_true(now_s() - t0 < 5.0);               /* no waiting for the 30 s timeout */
    assert_true(imap_stream_failed(p.st));
    assert_int_equal(imap_stream_error(p.st, &err), MR_E_NETWORK);
    assert_non_null(strstr(err.msg, "closed"));
    mailimap_fetch_type_free(ft);
    mailimap_set_free(set);
    /* mailimap owns the stream now: close it without a LOGOUT round trip. */
    mailstream_close(imap->imap_stream);
    imap->imap_stream = NULL;
    mailimap_free(imap);
    p.s = NULL;
    pair_close(&p);
}

static void test_silent_peer_times_out_and_stays_dead(void **state)
{
    struct pair p;
    char buf[64];
    mr_error err = { 0 };
    double t0;

    (void)state;
    pair_open(&p, 1);
    t0 = now_s();
    assert_int_equal(mailstream_read(p.s, buf, sizeof buf), -1);
    assert_true(now_s() - t0 >= 0.9);
    assert_true(now_s() - t0 < 4.0);
    assert_int_equal(imap_stream_error(p.st, &err), MR_E_TIMEOUT);
    assert_non_null(strstr(err.msg, "timed out"));
    /* Data arriving later does not revive it: the protocol state is lost. */
    write_all(p.peer, "* OK late\r\n");
    t0 = now_s();
    assert_int_equal(mailstream_read(p.s, buf, sizeof buf), -1);
    assert_true(now_s() - t0 < 0.5);
    pair_close(&p);
}

static void test_data_then_eof_is_minus_one_not_zero(void **state)
{
    struct pair p;
    char buf[64];
    mr_error err = { 0 };

    (void)state;
    pair_open(&p, 5);
    write_all(p.peer, "abc");
    shutdown(p.peer, SHUT_WR);
    assert_int_equal(mailstream_read(p.s, buf, sizeof buf), 3);
    assert_memory_equal(buf, "abc", 3);
    assert_int_equal(mailstream_read(p.s, buf, sizeof buf), -1);
    assert_int_equal(mailstream_read(p.s, buf, sizeof buf), -1);
    assert_int_equal(imap_stream_error(p.st, &err), MR_E_NETWORK);
    pair_close(&p);
}

static void test_plain_peer_on_tls_is_tls_error(void **state)
{
    struct pair p;
    mr_error err = { 0 };
    double t0;

    (void)state;
    pair_open(&p, 5);
    write_all(p.peer, "* OK IMAP4rev1 plain text, not TLS\r\n");
    t0 = now_s();
    assert_int_equal(imap_stream_start_tls(p.st, "localhost", NULL, false, &err), MR_E_TLS);
    assert_true(now_s() - t0 < 5.0);
    pair_close(&p);
}

/* A peer that accepts TCP and never answers the ClientHello: the handshake gives up after
 * connect_timeout (1 s), not io_timeout (30 s). */
static void test_silent_tls_peer_bounded_by_connect_timeout(void **state)
{
    mr_error err = { 0 };
    mailstream *s = NULL;
    imap_stream *st = NULL;
    double t0, took;
    int lfd, port, peer;

    (void)state;
    lfd = listen_loopback(&port);
    assert_int_equal(imap_stream_open("127.0.0.1", port, 1, 30, &s, &st, &err), 0);
    peer = accept(lfd, NULL, NULL);
    assert_true(peer >= 0);
    t0 = now_s();
    assert_int_equal(imap_stream_start_tls(st, "localhost", NULL, false, &err), MR_E_TLS);
    took = now_s() - t0;
    assert_true(took >= 0.9);
    assert_true(took < 5.0);
    assert_non_null(strstr(err.msg, "timed out"));
    mailstream_close(s);
    close(peer);
    close(lfd);
}

/* A canned plain-text server in a child process: writes `script` after accepting, then
 * drains until the client goes away. */
static pid_t canned_server(const char *script, int *port)
{
    int lfd = listen_loopback(port);
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        char buf[4096];
        int fd = accept(lfd, NULL, NULL);
        if (fd >= 0) {
            if (write(fd, script, strlen(script)) < 0)
                _exit(1);
            while (read(fd, buf, sizeof buf) > 0)
                ;
        }
        _exit(0);
    }
    close(lfd);
    return pid;
}

static void connect_canned(const char *script, int want, const char *want_text)
{
    struct imap_options o = { 0 };
    imap_conn *c = NULL;
    mr_error err = { 0 };
    int port, status;
    pid_t pid = canned_server(script, &port);

    o.host = "localhost";
    o.port = port;
    o.tls = IMAP_TLS_STARTTLS;
    o.user = "u";
    o.password = "p";
    o.io_timeout_s = 5;
    assert_int_equal(imap_connect(&o, &c, &err), want);
    assert_null(c);
    if (strstr(err.msg, want_text) == NULL)
        fprintf(stderr, "error was: %s\n", err.msg);
    assert_non_null(strstr(err.msg, want_text));
    waitpid(pid, &status, 0);
}

static void test_starttls_injection_refused(void **state)
{
    (void)state;
    /* Everything arrives in one segment: the injected untagged line sits in the buffer
     * when STARTTLS completes. */
    connect_canned("* OK ready\r\n"
                   "* CAPABILITY IMAP4rev1 STARTTLS\r\n1 OK done\r\n"
                   "2 OK Begin TLS\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n",
                   MR_E_TLS, "after STARTTLS");
}

static void test_no_starttls_capability_refused(void **state)
{
    (void)state;
    connect_canned("* OK ready\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n1 OK done\r\n",
                   MR_E_TLS, "does not offer STARTTLS");
}

static void test_preauth_on_starttls_refused(void **state)
{
    (void)state;
    connect_canned("* PREAUTH welcome\r\n", MR_E_TLS, "pre-authenticated");
}

/* A huge literal where no message body can be (1.9.4 would allocate its size at once):
 * refused before libetpan sees it, as a protocol error that says why. */
static void test_huge_string_literal_refused(void **state)
{
    (void)state;
    connect_canned("* OK ready\r\n* CAPABILITY IMAP4rev1 {2147483648}\r\nSTARTTLS\r\n",
                   MR_E_PROTOCOL, "outside a message body");
}

static void test_connect_argument_checks(void **state)
{
    struct imap_options o = { 0 };
    imap_conn *c = NULL;
    mr_error err = { 0 };

    (void)state;
    assert_int_equal(imap_connect(&o, &c, &err), MR_E_CONFIG);       /* no host */
    o.host = "localhost";
    assert_int_equal(imap_connect(&o, &c, &err), MR_E_CONFIG);       /* no user */
    o.user = "u";
    o.password = "p";
    o.port = 70000;
    assert_int_equal(imap_connect(&o, &c, &err), MR_E_CONFIG);
    o.port = 1;   /* nothing listens there */
    assert_int_equal(imap_connect(&o, &c, &err), MR_E_NETWORK);
    assert_null(c);
    imap_close(NULL);
    assert_false(imap_has_capability(NULL, "UIDPLUS"));
    assert_int_equal(imap_uid_fetch(NULL, 1, 0, NULL, NULL, &err), MR_E_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eof_mid_literal_fails_fast),
        cmocka_unit_test(test_silent_peer_times_out_and_stays_dead),
        cmocka_unit_test(test_data_then_eof_is_minus_one_not_zero),
        cmocka_unit_test(test_plain_peer_on_tls_is_tls_error),
        cmocka_unit_test(test_silent_tls_peer_bounded_by_connect_timeout),
        cmocka_unit_test(test_starttls_injection_refused),
        cmocka_unit_test(test_no_starttls_capability_refused),
        cmocka_unit_test(test_preauth_on_starttls_refused),
        cmocka_unit_test(test_huge_string_literal_refused),
        cmocka_unit_test(test_connect_argument_checks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
