/* test_purge_retention.c — expiry arithmetic and its enforcement on real batches (real
 * OpenSSL, real files): five calendar years to the day in Europe/Copenhagen, a batch made
 * on 29 February expiring on 1 March, a batch made just after a DST change keeping its
 * wall-clock time; check's status at one second before and at expiry; expire destroys
 * exactly the due, unheld batches (keys first, then volumes, tombstone last) and a held
 * batch survives; the tombstone's HMAC detects tampering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "backup/archive.h"
#include "backup/batchdir.h"
#include "common/mrtime.h"
#include "helpers/test_batch.h"
#include "helpers/test_helpers.h"
#include "keys/keys.h"
#include "purge/check.h"
#include "purge/expire.h"
#include "purge/tombstone.h"

struct fx {
    struct th_batch_env e;          /* archive, vault, IT's keys, pinned signing key */
};

static const char *const ZONE = "Europe/Copenhagen";

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    mr_error err;

    assert_non_null(f);
    if (th_batch_env_init(&f->e, "pretention", &err) != 0)
        fail_msg("setup: %s", err.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    th_batch_env_free(&f->e);
    free(f);
    return 0;
}

static time_t utc(const char *iso)
{
    time_t t;
    mr_error err;

    assert_int_equal(mrtime_parse(iso, ZONE, &t, &err), 0);
    return t;
}

/* One batch of one message, created at `created`, expiring five years later (as purge
 * computes it).  Returns the batch directory in dir. */
static void make_batch(struct fx *f, const char *id, time_t created, char *dir, size_t size,
                       time_t *expires)
{
    static const char msg[] = "From: Anna <anna@example.dk>\r\nSubject: x\r\n\r\nbody\r\n";
    struct archive_options o = { .mailbox = "INBOX", .batch_id = id, .zone = ZONE,
                                 .period_end = created, .created = created, .workers = 1 };
    struct archive_message m = { .uidvalidity = 1, .uid = 1, .internaldate = created - 86400,
                                 .flags = "", .bytes = (const unsigned char *)msg,
                                 .len = sizeof msg - 1 };
    mr_error err;

    assert_int_equal(mrtime_add_years(created, 5, ZONE, &o.expires, &err), 0);
    if (th_batch_write(&f->e, o, &m, 1, dir, size, &err) != 0)
        fail_msg("batch: %s", err.msg);
    *expires = o.expires;
}

static const struct check_batch *find(const struct check_report *r, const char *id)
{
    for (size_t i = 0; i < r->n_batches; i++)
        if (strcmp(r->batches[i].batch_id, id) == 0)
            return &r->batches[i];
    fail_msg("batch %s not in the report", id);
    return NULL;
}

static struct check_report *check_at(struct fx *f, time_t at)
{
    struct check_options o = { .archive_dir = f->e.archive, .vault_dir = f->e.vault,
                               .trust = &f->e.trust, .at = at, .warn_days = 30,
                               .zone = ZONE };
    struct check_report *r = NULL;
    mr_error err;

    assert_int_equal(check_run(&o, &r, &err), 0);
    return r;
}

static struct expire_report *expire_at(struct fx *f, time_t at)
{
    struct expire_options o = { .archive_dir = f->e.archive, .vault_dir = f->e.vault,
                                .trust = &f->e.trust, .signing_key = f->e.sk, .at = at };
    struct expire_report *r = NULL;
    mr_error err;

    if (expire_run(&o, &r, &err) != 0)
        fail_msg("expire: %s", err.msg);
    return r;
}

static void test_expiry_dates(void **state)
{
    struct fx *f = *state;
    char leap[4096], dst[4096], plain[4096], path[4400];
    time_t e_leap, e_dst, e_plain;
    struct check_report *r;
    struct expire_report *x;
    struct archive_manifest m;
    struct purge_tombstone t;
    mr_error err;

    /* 29 Feb 2024 12:00 CET -> 1 Mar 2029 12:00 CET (never shorter than five years). */
    make_batch(f, "leap", utc("2024-02-29T11:00:00Z"), leap, sizeof leap, &e_leap);
    assert_int_equal(e_leap, utc("2029-03-01T11:00:00Z"));
    /* 29 Mar 2026 03:30 CEST (just after the spring change) -> 29 Mar 2031 03:30, which is
     * still CET then (DST starts 30 Mar 2031): same wall clock, one hour later in UTC. */
    make_batch(f, "dst", utc("2026-03-29T01:30:00Z"), dst, sizeof dst, &e_dst);
    assert_int_equal(e_dst, utc("2031-03-29T02:30:00Z"));
    make_batch(f, "plain", utc("2026-11-01T01:00:00Z"), plain, sizeof plain, &e_plain);
    assert_int_equal(e_plain, utc("2031-11-01T01:00:00Z"));

    /* One second before expiry: expiring (a warning); at expiry: OVERDUE. */
    r = check_at(f, e_leap - 1);
    assert_string_equal(find(r, "leap")->status, "expiring");
    assert_string_equal(find(r, "dst")->status, "ok");
    assert_int_equal(r->level, CHECK_WARN);
    check_report_free(r);
    r = check_at(f, e_leap);
    assert_string_equal(find(r, "leap")->status, "OVERDUE");
    assert_int_equal(r->level, CHECK_VIOLATION);
    check_report_free(r);

    /* expire one second early does nothing; at the second it expires the leap batch only. */
    x = expire_at(f, e_leap - 1);
    assert_int_equal(x->expired, 0);
    expire_report_free(x);
    assert_int_equal(archive_manifest_read(leap, &f->e.trust, &m, &err), 0);
    x = expire_at(f, e_leap);
    assert_int_equal(x->expired, 1);
    assert_string_equal(x->items[0].batch_id, "leap");
    expire_report_free(x);
    assert_false(keys_epoch_present(f->e.vault, m.content_key_id));
    assert_false(keys_epoch_present(f->e.vault, m.reid_key_id));
    snprintf(path, sizeof path, "%s/vol-0001.p7m", leap);
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/reid-0001.p7m", leap);
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/%s", leap, batchdir_name(BATCHDIR_MANIFEST));
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(purge_tombstone_read(leap, &f->e.trust, &t, &err), 0);
    assert_string_equal(t.batch_id, "leap");
    assert_int_equal(t.expires, e_leap);
    assert_int_equal(t.message_count, 1);
    assert_string_equal(t.content_key_id, m.content_key_id);
    archive_manifest_clear(&m);
    r = check_at(f, e_leap);
    assert_string_equal(find(r, "leap")->status, "expired");
    assert_int_equal(r->level, CHECK_OK);
    check_report_free(r);

    /* A held batch survives its expiry; released, it goes. */
    assert_int_equal(archive_batch_set_hold(dst, true, &f->e.trust, f->e.sk, f->e.vault, NULL,
                                            &err), 0);
    x = expire_at(f, e_dst + 86400);
    assert_int_equal(x->expired, 0);
    assert_int_equal(x->held, 1);
    expire_report_free(x);
    snprintf(path, sizeof path, "%s/vol-0001.p7m", dst);
    assert_int_equal(access(path, F_OK), 0);
    r = check_at(f, e_dst + 86400);
    assert_string_equal(find(r, "dst")->status, "held");
    assert_int_equal(find(r, "dst")->level, CHECK_OK);
    check_report_free(r);
    assert_int_equal(archive_batch_set_hold(dst, false, &f->e.trust, f->e.sk, f->e.vault, NULL,
                                            &err), 0);
    x = expire_at(f, e_dst + 86400);
    assert_int_equal(x->expired, 1);
    expire_report_free(x);
    /* Re-running expire is harmless. */
    x = expire_at(f, e_dst + 86400);
    assert_int_equal(x->expired, 0);
    assert_int_equal(x->n, 0);
    expire_report_free(x);

    /* The still-live batch is untouched and ok. */
    r = check_at(f, e_dst + 86400);
    assert_string_equal(find(r, "plain")->status, "ok");
    check_report_free(r);

    /* The tombstone's HMAC: another key or an edited byte is detected. */
    {
        struct archive_trust other = { 0 };
        keys_keyring *okr = keys_keyring_new();
        EVP_PKEY *ok = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        char tpath[4400];
        unsigned char *data;
        size_t len;
        assert_int_equal(keys_keyring_add(okr, ok, &err), 0);
        other.keyring = okr;
        assert_int_equal(purge_tombstone_read(leap, &other, &t, &err), MR_E_TAMPERED);
        EVP_PKEY_free(ok);
        keys_keyring_free(okr);
        snprintf(tpath, sizeof tpath, "%s/%s", leap, batchdir_name(BATCHDIR_TOMBSTONE));
        data = th_read_file(tpath, &len);
        assert_non_null(data);
        char *p = strstr((char *)data, "\"message_count\":1");
        assert_non_null(p);
        p[16] = '7';
        assert_int_equal(th_write_file(tpath, data, len), 0);
        free(data);
        assert_int_equal(purge_tombstone_read(leap, &f->e.trust, &t, &err), MR_E_TAMPERED);
        r = check_at(f, e_leap);
        assert_string_equal(find(r, "leap")->status, "damaged");
        check_report_free(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_expiry_dates, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
