/* test_store_lock.c — Object Lock retention on puts, without a server: the headers a put
 * carries (store/s3_util.h: s3_lock_headers, the one place the S3 driver decides it)
 * exactly as S3 documents them, none at all unless the bucket's lock is on and the date
 * lies ahead, the Content-MD5 S3 wants beside them (checked against known digests), and
 * that store_put_file_until hands a driver's put_retained nothing unless the store's
 * probe said the lock is on (a driver that records its calls: no store is faked). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/s3_util.h"
#include "store/store.h"
#include "helpers/test_helpers.h"

/* 2031-12-07T06:33:06Z, computed apart from the code under test (Python's calendar). */
#define UNTIL ((time_t)1954391586)
#define NOW ((time_t)1796625186)        /* five years before, give or take */

static void test_headers_when_lock_is_on(void **state)
{
    char mode[64], until[96];

    (void)state;
    assert_int_equal(s3_lock_headers(true, false, UNTIL, NOW, mode, until), 2);
    assert_string_equal(mode, "x-amz-object-lock-mode: COMPLIANCE");
    assert_string_equal(until, "x-amz-object-lock-retain-until-date: 2031-12-07T06:33:06.000Z");
    assert_int_equal(s3_lock_headers(true, true, UNTIL, NOW, mode, until), 2);
    assert_string_equal(mode, "x-amz-object-lock-mode: GOVERNANCE");
    assert_string_equal(until, "x-amz-object-lock-retain-until-date: 2031-12-07T06:33:06.000Z");
    /* One second ahead is still ahead. */
    assert_int_equal(s3_lock_headers(true, false, NOW + 1, NOW, mode, until), 2);
}

/* No header at all: lock off or unsupported (Swift), no date, a date not ahead. */
static void test_no_headers_otherwise(void **state)
{
    char mode[64], until[96];

    (void)state;
    memset(mode, 'x', sizeof mode);
    memset(until, 'x', sizeof until);
    assert_int_equal(s3_lock_headers(false, false, UNTIL, NOW, mode, until), 0);
    assert_string_equal(mode, "");
    assert_string_equal(until, "");
    assert_int_equal(s3_lock_headers(false, true, UNTIL, NOW, mode, until), 0);
    assert_string_equal(mode, "");
    assert_int_equal(s3_lock_headers(true, false, 0, NOW, mode, until), 0);
    assert_string_equal(until, "");
    assert_int_equal(s3_lock_headers(true, false, NOW, NOW, mode, until), 0);
    assert_int_equal(s3_lock_headers(true, false, NOW - 86400, NOW, mode, until), 0);
    assert_string_equal(mode, "");
    assert_string_equal(until, "");
}

static void test_content_md5(void **state)
{
    static const char fox[] = "The quick brown fox jumps over the lazy dog";
    char h[64];

    (void)state;
    assert_true(s3_content_md5_header(fox, strlen(fox), h));
    assert_string_equal(h, "Content-MD5: nhB9nTcrtoJr2B01QqQZ1g==");
    assert_true(s3_content_md5_header("", 0, h));
    assert_string_equal(h, "Content-MD5: 1B2M2Y8AsgTpgAmY7PhCfg==");
}

/* ---- the store's gate: put_retained only where the probe said "on" ---- */

struct calls {
    int put, retained;
};

static int rec_put(void *self, const char *key, const struct store_source *src,
                   const unsigned char sha256[32], mr_error *err)
{
    (void)key; (void)src; (void)sha256; (void)err;
    ((struct calls *)self)->put++;
    return 0;
}

static int rec_retained(void *self, const char *key, const struct store_source *src,
                        const unsigned char sha256[32], time_t until, mr_error *err)
{
    (void)key; (void)src; (void)sha256; (void)until; (void)err;
    ((struct calls *)self)->retained++;
    return 0;
}

static const struct store_driver rec_driver = {
    .name = "recorder", .put = rec_put, .put_retained = rec_retained,
};

static void test_store_sends_no_retention_without_lock(void **state)
{
    struct calls calls = { 0, 0 };
    mr_store *st = NULL;
    char *dir = th_tempdir("mrlock"), path[600];
    mr_error err;

    (void)state;
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/f", dir);
    assert_int_equal(th_write_file(path, "abc", 3), 0);
    assert_int_equal(store_new(&rec_driver, &calls, &st, &err), 0);
    /* A store that is not S3 has no probe: its lock state is "unsupported". */
    assert_int_equal(store_object_lock(st), STORE_LOCK_UNSUPPORTED);
    assert_int_equal(store_put_file_until(st, "a/f", path, NULL, time(NULL) + 86400, &err), 0);
    assert_int_equal(store_put_file_until(st, "a/f", path, NULL, 0, &err), 0);
    assert_int_equal(store_put_file(st, "a/f", path, NULL, &err), 0);
    assert_int_equal(calls.put, 3);
    assert_int_equal(calls.retained, 0);
    store_close(st);

    /* The local driver stores the object either way. */
    {
        char odir[600];
        size_t len = 0;
        unsigned char *back;
        snprintf(odir, sizeof odir, "%s/objects", dir);
        assert_int_equal(store_local_open(odir, &st, &err), 0);
        assert_int_equal(store_put_file_until(st, "a/f", path, NULL, time(NULL) + 86400, &err),
                         0);
        snprintf(odir, sizeof odir, "%s/objects/a/f", dir);
        back = th_read_file(odir, &len);
        assert_non_null(back);
        assert_int_equal(len, 3);
        assert_memory_equal(back, "abc", 3);
        free(back);
        store_close(st);
    }
    th_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_when_lock_is_on),
        cmocka_unit_test(test_no_headers_otherwise),
        cmocka_unit_test(test_content_md5),
        cmocka_unit_test(test_store_sends_no_retention_without_lock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
