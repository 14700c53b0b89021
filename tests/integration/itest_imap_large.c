/*
 * itest_imap_large.c — FETCH streams: a 50 MB message arrives byte-exact while the
 * process's peak memory grows by well under twice the message size (libetpan's default
 * would hold the literal and our copy at once), and a message over max_literal is reported
 * as oversized while the fetch goes on with the next message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <sys/resource.h>

#include "integration/itest_imap_util.h"

#define HUGE_SIZE ((size_t)50 * 1000 * 1000)

static int group_setup(void **state)
{
    return it_pool_create(state, 4);
}

static imap_conn *connect_ok(struct it_fixture *f, size_t max_literal)
{
    struct imap_options o;
    imap_conn *c = NULL;
    mr_error err = { 0 };

    it_options(&o, &f->srv, IMAP_TLS_IMAPS, f->user, f->password);
    o.max_literal = max_literal;
    o.io_timeout_s = 120;
    if (imap_connect(&o, &c, &err) != 0)
        fprintf(stderr, "imap_connect: %s\n", err.msg);
    assert_non_null(c);
    return c;
}

struct hash_ctx {
    unsigned char digest[32];
    size_t len;
    size_t calls;
    bool oversized;
};

static int hash_fn(void *ctx, const struct imap_message *msg, mr_error *err)
{
    struct hash_ctx *h = ctx;
    unsigned int dl = 0;

    (void)err;
    h->calls++;
    h->oversized = msg->oversized;
    h->len = msg->body_len;
    if (msg->body != NULL)
        EVP_Digest(msg->body, msg->body_len, h->digest, &dl, EVP_sha256(), NULL);
    return 0;
}

static long maxrss_kib(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void test_50mb_message_streams(void **state)
{
    struct it_fixture *f = *state;
    unsigned char want[32];
    unsigned int dl = 0;
    mr_error err = { 0 };
    size_t len = 0;
    unsigned char *m = it_make_message(HUGE_SIZE, 7, &len);
    imap_conn *c = connect_ok(f, 0);
    int status = 0;
    pid_t pid;

    assert_non_null(m);
    EVP_Digest(m, len, want, &dl, EVP_sha256(), NULL);
    assert_int_equal(imap_append(c, "INBOX", "", 0, 0, m, len, &err), 0);
    free(m);
    imap_close(c);

    /* Measure in a fresh child: ru_maxrss is a high-water mark, and the parent's peak
     * already includes the 50 MB it built for APPEND. */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct hash_ctx h = { .len = 0 };
        long before = maxrss_kib(), grown;
        imap_conn *cc = connect_ok(f, 0);
        int rc;

        rc = imap_examine(cc, "INBOX", NULL, &err);
        if (rc == 0)
            rc = imap_uid_fetch(cc, 1, 0, hash_fn, &h, &err);
        imap_close(cc);
        grown = maxrss_kib() - before;
        fprintf(stderr, "50 MB fetch: rc=%d calls=%zu len=%zu peak growth %ld KiB (%.2f x)\n",
                rc, h.calls, h.len, grown, grown * 1024.0 / (double)len);
        if (rc != 0)
            fprintf(stderr, "fetch: %s\n", err.msg);
        /* _exit: no leak check of the parent's state copied into the child. */
        if (rc != 0 || h.calls != 1 || h.oversized || h.len != len)
            _exit(1);
        if (memcmp(h.digest, want, 32) != 0)
            _exit(2);
        if ((double)grown * 1024.0 > 1.5 * (double)len)
            _exit(3);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* max_literal 1 MiB: the 2 MiB message in the middle is reported oversized (no body),
 * the ones before and after arrive intact. */
static void test_oversized_message_is_skipped(void **state)
{
    struct it_fixture *f = *state;
    const size_t sizes[3] = { 10000, 2 * 1024 * 1024, 20000 };
    unsigned char *msgs[3];
    size_t lens[3];
    struct it_collect col = { 0 };
    mr_error err = { 0 };
    imap_conn *c = connect_ok(f, 1024 * 1024);

    for (int i = 0; i < 3; i++) {
        msgs[i] = it_make_message(sizes[i], 60 + (unsigned)i, &lens[i]);
        assert_int_equal(imap_append(c, "INBOX", "\\Seen", 0, 0, msgs[i], lens[i], &err), 0);
    }
    assert_int_equal(imap_examine(c, "INBOX", NULL, &err), 0);
    assert_int_equal(imap_uid_fetch(c, 1, 0, it_collect_fn, &col, &err), 0);
    assert_int_equal(col.n, 3);
    assert_false(col.m[0].oversized);
    assert_true(col.m[1].oversized);
    assert_null(col.m[1].body);
    assert_int_equal(col.m[1].body_len, 0);
    assert_int_equal(col.m[1].uid, 2);
    assert_int_equal(col.m[1].rfc822_size, lens[1]);
    assert_true(it_flag_has(col.m[1].flags, "\\Seen"));
    assert_false(col.m[2].oversized);
    for (int i = 0; i < 3; i += 2) {
        assert_int_equal(col.m[i].body_len, lens[i]);
        assert_memory_equal(col.m[i].body, msgs[i], lens[i]);
    }
    /* The session is still in step: the same fetch by explicit UID set works again. */
    it_collect_free(&col);
    {
        const uint32_t set[] = { 1, 3 };
        assert_int_equal(imap_uid_fetch_set(c, set, 2, it_collect_fn, &col, &err), 0);
        assert_int_equal(col.n, 2);
        assert_int_equal(col.m[1].uid, 3);
        assert_memory_equal(col.m[1].body, msgs[2], lens[2]);
    }
    it_collect_free(&col);
    for (int i = 0; i < 3; i++)
        free(msgs[i]);
    imap_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        IT_FIXTURE_TEST(test_oversized_message_is_skipped),
        IT_FIXTURE_TEST(test_50mb_message_streams),
    };

    alarm(500);
    return cmocka_run_group_tests(tests, group_setup, it_pool_free);
}
