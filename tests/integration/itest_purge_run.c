/* itest_purge_run.c — purge_run against the real Dovecot, at the edges of the cutoff:
 * IMAP SEARCH BEFORE is whole days in the server's zone, so a message at 00:30 on the 1st
 * in Copenhagen (23:30 UTC the day before) is a SEARCH hit but must stay; a message at
 * exactly 00:00 stays; one second earlier goes.  A message the server receives after the
 * SEARCH (here: APPENDed with an old INTERNALDATE from a second connection, at the
 * "after-search" step) is never touched by that run.  The expunged messages are exactly
 * the verified ones; the next run picks up the late one.
 * And: a purge killed (SIGKILL) right after its batch was verified, followed by a
 * UIDVALIDITY change of the mailbox (Dovecot's uidlist and index removed), is finished
 * by the next run matching the archived messages by SHA-256 — expunged, not archived
 * again, and nothing else touched. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "backup/archive.h"
#include "common/mrtime.h"
#include "integration/itest_imap_util.h"
#include "keys/keys.h"
#include "purge/journal.h"
#include "purge/purge.h"

struct fx {
    struct it_server srv;
    char user[40], password[40];
    struct imap_options io;
    char *root;
    char archive[512], vault[512], journal[512];
    EVP_PKEY *it;
    X509 *it_cert;
    pseudo_key pkey;
    EVP_PKEY *sk;                   /* host signing key */
    keys_keyring *kr;               /* its public half, pinned */
    struct archive_trust trust;
    int appended;
};

static time_t utc(const char *iso)
{
    time_t t;
    mr_error err;

    assert_int_equal(mrtime_parse(iso, "Europe/Copenhagen", &t, &err), 0);
    return t;
}

static void append(struct fx *f, unsigned seed, time_t when)
{
    imap_conn *c = NULL;
    unsigned char *m;
    size_t len;
    mr_error err;

    m = it_make_message(2000, seed, &len);
    assert_int_equal(imap_connect(&f->io, &c, &err), 0);
    if (imap_append(c, "INBOX", "\\Seen", when, 60, m, len, &err) != 0)
        fail_msg("append: %s", err.msg);
    imap_close(c);
    free(m);
}

static void after_search(void *ctx, const char *step)
{
    struct fx *f = ctx;

    if (strcmp(step, "after-search") == 0 && !f->appended) {
        f->appended = 1;
        append(f, 99, utc("2026-09-01T08:00:00Z"));
    }
}

/* INTERNALDATEs now on the server, ascending by UID. */
static size_t server_dates(struct fx *f, time_t *out, size_t max)
{
    struct it_collect col;
    imap_conn *c = NULL;
    struct imap_mailbox_info info;
    mr_error err;
    size_t n;

    memset(&col, 0, sizeof col);
    assert_int_equal(imap_connect(&f->io, &c, &err), 0);
    assert_int_equal(imap_examine(c, "INBOX", &info, &err), 0);
    if (info.exists > 0)
        assert_int_equal(imap_uid_fetch(c, 1, 0, it_collect_fn, &col, &err), 0);
    imap_close(c);
    n = col.n < max ? col.n : max;
    for (size_t i = 0; i < n; i++)
        out[i] = col.m[i].internaldate;
    it_collect_free(&col);
    return n;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    mr_error err;

    it_server_load(&f->srv);
    assert_int_equal(it_new_user(&f->srv, f->user, f->password), 0);
    it_options(&f->io, &f->srv, IMAP_TLS_IMAPS, f->user, f->password);
    f->root = th_tempdir("itpurge");
    snprintf(f->archive, sizeof f->archive, "%s/archive", f->root);
    snprintf(f->vault, sizeof f->vault, "%s/vault", f->root);
    snprintf(f->journal, sizeof f->journal, "%s/%s", f->root, PURGE_JOURNAL_FILE);
    assert_int_equal(keys_generate(KEYS_ALGO_P256, &f->it, &err), 0);
    assert_int_equal(keys_self_signed(f->it, "IT", 30, &f->it_cert, &err), 0);
    RAND_bytes(f->pkey.bytes, sizeof f->pkey.bytes);
    f->sk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(f->sk);
    f->kr = keys_keyring_new();
    assert_int_equal(keys_keyring_add(f->kr, f->sk, &err), 0);
    f->trust.keyring = f->kr;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    EVP_PKEY_free(f->it);
    EVP_PKEY_free(f->sk);
    keys_keyring_free(f->kr);
    X509_free(f->it_cert);
    th_rmtree(f->root);
    free(f->root);
    it_server_free(&f->srv);
    free(f);
    return 0;
}

static void run(struct fx *f, purge_hook_fn hook, struct purge_report **rep)
{
    const char *mb[] = { "INBOX" };
    struct archive_options ao = {
        .archive_dir = f->archive, .vault_dir = f->vault, .zone = "Europe/Copenhagen",
        .workers = 1, .content_holder = f->it_cert, .reid_holder = f->it_cert,
        .pseudonym_key = &f->pkey, .signing_key = f->sk,
    };
    struct purge_options o = {
        .imap = &f->io, .mailboxes = mb, .n_mailboxes = 1, .archive = &ao, .trust = &f->trust,
        .retention_years = 5, .zone = "Europe/Copenhagen", .cutoff = utc("2026-11-01"),
        .journal_path = f->journal, .expunge_chunk = 2, .hook = hook, .hook_ctx = f,
    };
    mr_error err;

    if (purge_run(&o, rep, &err) != 0)
        fail_msg("purge: %s", err.msg);
}

static void test_cutoff_edges_and_late_arrival(void **state)
{
    struct fx *f = *state;
    struct purge_report *rep = NULL;
    time_t dates[16];
    size_t n;

    assert_int_equal(utc("2026-11-01"), utc("2026-10-31T23:00:00Z"));
    append(f, 1, utc("2026-09-10T10:00:00Z"));     /* goes */
    append(f, 2, utc("2026-10-31T22:30:00Z"));     /* goes: 23:30 on 31 Oct in CPH */
    append(f, 3, utc("2026-10-31T22:59:59Z"));     /* goes: one second before */
    append(f, 4, utc("2026-10-31T23:00:00Z"));     /* stays: exactly the cutoff */
    append(f, 5, utc("2026-10-31T23:30:00Z"));     /* stays: 00:30 on 1 Nov in CPH */
    append(f, 6, utc("2026-11-05T12:00:00Z"));     /* stays */

    run(f, after_search, &rep);
    assert_int_equal(f->appended, 1);
    assert_true(rep->mailboxes[0].candidates >= 3);
    assert_int_equal(rep->mailboxes[0].selected, 3);
    assert_int_equal(rep->mailboxes[0].archived, 3);
    assert_int_equal(rep->mailboxes[0].expunged, 3);
    purge_report_free(rep);
    n = server_dates(f, dates, 16);
    assert_int_equal(n, 4);
    assert_int_equal(dates[0], utc("2026-10-31T23:00:00Z"));
    assert_int_equal(dates[1], utc("2026-10-31T23:30:00Z"));
    assert_int_equal(dates[2], utc("2026-11-05T12:00:00Z"));
    assert_int_equal(dates[3], utc("2026-09-01T08:00:00Z"));   /* the late arrival */

    /* The next run takes the late one, and nothing else. */
    run(f, NULL, &rep);
    assert_int_equal(rep->mailboxes[0].archived, 1);
    purge_report_free(rep);
    assert_int_equal(server_dates(f, dates, 16), 3);
    /* And then there is nothing left to do: the SEARCH superset still names the
     * messages of the evening of 31 Oct UTC, but no batch (and no epoch key) is made. */
    run(f, NULL, &rep);
    assert_true(rep->mailboxes[0].candidates >= 1);
    assert_int_equal(rep->mailboxes[0].selected, 0);
    assert_int_equal(rep->mailboxes[0].batch_id[0], '\0');
    purge_report_free(rep);
    {
        struct archive_batch_ref *refs = NULL;
        struct keys_list_options lo = { .vault_dir = f->vault };
        struct keys_entry *keys = NULL;
        size_t n_refs = 0, n_keys = 0;
        mr_error err;
        assert_int_equal(archive_batch_list(f->archive, NULL, &refs, &n_refs, &err), 0);
        assert_int_equal(n_refs, 2);
        free(refs);
        assert_int_equal(keys_list(&lo, &keys, &n_keys, &err), 0);
        assert_int_equal(n_keys, 4);
        free(keys);
    }
}

/* Forget every UID: Dovecot rebuilds the mailbox with a new UIDVALIDITY. */
static void reset_uidvalidity(struct fx *f)
{
    char *root = th_imap_env("MAIL_ROOT"), dir[1024], path[1200];
    const char *const files[] = { "dovecot-uidlist", "dovecot.index", "dovecot.index.log",
                                  "dovecot.index.cache", "dovecot.index.log.2" };
    char *at;

    assert_non_null(root);
    at = strstr(root, "%u");
    assert_non_null(at);
    snprintf(dir, sizeof dir, "%.*s%s%s", (int)(at - root), root, f->user, at + 2);
    free(root);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        (void)unlink(path);
    }
}

static void test_uidvalidity_change_after_verify(void **state)
{
    struct fx *f = *state;
    struct purge_report *rep = NULL;
    struct imap_mailbox_info before, after;
    struct archive_batch_ref *refs = NULL;
    imap_conn *c = NULL;
    time_t dates[16];
    size_t n_refs = 0;
    mr_error err;
    int status;
    pid_t pid;

    append(f, 11, utc("2026-08-10T10:00:00Z"));
    append(f, 12, utc("2026-09-10T10:00:00Z"));
    append(f, 13, utc("2026-10-10T10:00:00Z"));
    append(f, 14, utc("2026-11-10T10:00:00Z"));
    assert_int_equal(imap_connect(&f->io, &c, &err), 0);
    assert_int_equal(imap_examine(c, "INBOX", &before, &err), 0);
    imap_close(c);

    /* kill -9 right after the batch is verified, before anything is deleted. */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("MAILRET_TEST_CRASH_AT", "after-verified", 1);
        run(f, purge_test_crash_hook, &rep);
        _exit(3);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_int_equal(server_dates(f, dates, 16), 4);

    reset_uidvalidity(f);
    assert_int_equal(imap_connect(&f->io, &c, &err), 0);
    assert_int_equal(imap_examine(c, "INBOX", &after, &err), 0);
    imap_close(c);
    assert_int_not_equal(after.uidvalidity, before.uidvalidity);

    run(f, NULL, &rep);
    assert_int_equal(rep->mailboxes[0].resumed_batches, 1);
    assert_int_equal(rep->mailboxes[0].resumed_expunged, 3);
    assert_int_equal(rep->mailboxes[0].selected, 0);      /* not archived a second time */
    assert_int_equal(rep->mailboxes[0].batch_id[0], '\0');
    purge_report_free(rep);
    assert_int_equal(server_dates(f, dates, 16), 1);
    assert_int_equal(dates[0], utc("2026-11-10T10:00:00Z"));
    assert_int_equal(archive_batch_list(f->archive, NULL, &refs, &n_refs, &err), 0);
    assert_int_equal(n_refs, 1);
    assert_true(refs[0].has_manifest);
    free(refs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cutoff_edges_and_late_arrival, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uidvalidity_change_after_verify, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
