/* test_store_local.c — the local directory driver (store/store.h) on real files: put,
 * get (whole and ranged), list, delete, verify, the key rules, and what a crash or a
 * changed payload leaves behind. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "store/store.h"
#include "helpers/test_helpers.h"
#include "helpers/test_store.h"

struct fixture {
    char *dir;
    mr_store *st;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    mr_error err;

    if (f == NULL || (f->dir = th_tempdir("mrstore")) == NULL)
        return -1;
    if (store_local_open(f->dir, &f->st, &err) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    store_close(f->st);
    th_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static unsigned char *pattern(size_t n)
{
    unsigned char *b = malloc(n);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)((i * 7919u) >> 3);
    return b;
}

static void test_put_get_roundtrip(void **state)
{
    struct fixture *f = *state;
    size_t n = 3 * 1024 * 1024 + 17;        /* more than one 1 MiB read */
    unsigned char *b = pattern(n), h[32];
    struct test_gathered c = { 0 };
    char path[512];
    struct stat sb;
    mr_error err;

    test_store_sha(b, n, h);
    assert_int_equal(store_put_buf(f->st, "2026-12/vol-0001.cms", b, n, h, &err), 0);
    snprintf(path, sizeof path, "%s/2026-12/vol-0001.cms", f->dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(store_get(f->st, "2026-12/vol-0001.cms", 0, STORE_TO_END, test_gather, &c, &err), 0);
    assert_int_equal(c.n, n);
    assert_memory_equal(c.p, b, n);
    assert_int_equal(store_verify(f->st, "2026-12/vol-0001.cms", n, h, &err), 0);
    free(c.p);
    free(b);
}

static void test_ranged_get(void **state)
{
    struct fixture *f = *state;
    size_t n = 2 * 1024 * 1024 + 5;
    unsigned char *b = pattern(n);
    struct test_gathered c = { 0 };
    mr_error err;

    assert_int_equal(store_put_buf(f->st, "r", b, n, NULL, &err), 0);
    assert_int_equal(store_get(f->st, "r", 1048570, 1048580, test_gather, &c, &err), 0);
    assert_int_equal(c.n, 1048580);
    assert_memory_equal(c.p, b + 1048570, 1048580);
    c.n = 0;
    assert_int_equal(store_get(f->st, "r", n - 3, STORE_TO_END, test_gather, &c, &err), 0);
    assert_int_equal(c.n, 3);
    assert_memory_equal(c.p, b + n - 3, 3);
    c.n = 0;
    /* Past the end: refused before anything is delivered. */
    assert_int_equal(store_get(f->st, "r", n - 3, 4, test_gather, &c, &err), MR_E_INVALID);
    assert_int_equal(store_get(f->st, "r", n, STORE_TO_END, test_gather, &c, &err), MR_E_INVALID);
    assert_int_equal(c.n, 0);
    assert_int_equal(store_get(f->st, "missing", 0, STORE_TO_END, test_gather, &c, &err), MR_E_NOTFOUND);
    free(c.p);
    free(b);
}

struct listed {
    char keys[16][64];
    uint64_t sizes[16];
    int n;
};

static int on_list(void *arg, const char *key, uint64_t size, mr_error *err)
{
    struct listed *l = arg;
    (void)err;
    assert_true(l->n < 16);
    snprintf(l->keys[l->n], sizeof l->keys[0], "%s", key);
    l->sizes[l->n++] = size;
    return 0;
}

static void test_list_delete(void **state)
{
    struct fixture *f = *state;
    const char *keys[] = { "b/2", "a/1", "a/10/x", "a-1", "ab", "a/0" };
    struct listed l = { 0 };
    char tmp[512];
    mr_error err;

    for (size_t i = 0; i < 6; i++)
        assert_int_equal(store_put_buf(f->st, keys[i], keys[i], strlen(keys[i]), NULL, &err), 0);
    /* A writer killed mid-write leaves a temporary file: never an object. */
    snprintf(tmp, sizeof tmp, "%s/a/1.tmp.99999.0", f->dir);
    assert_int_equal(th_write_file(tmp, "half", 4), 0);

    assert_int_equal(store_list(f->st, "a/", on_list, &l, &err), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.keys[0], "a/0");
    assert_string_equal(l.keys[1], "a/1");
    assert_string_equal(l.keys[2], "a/10/x");
    assert_int_equal(l.sizes[2], 6);
    l.n = 0;
    assert_int_equal(store_list(f->st, "", on_list, &l, &err), 0);
    assert_int_equal(l.n, 6);     /* byte order: "a-1" < "a/0" < ... < "ab" < "b/2" */
    assert_string_equal(l.keys[0], "a-1");
    assert_string_equal(l.keys[4], "ab");
    assert_string_equal(l.keys[5], "b/2");
    l.n = 0;
    assert_int_equal(store_list(f->st, "a", on_list, &l, &err), 0);
    assert_int_equal(l.n, 5);

    assert_int_equal(store_delete(f->st, "a/1", &err), 0);
    assert_int_equal(store_delete(f->st, "a/1", &err), 0);     /* already gone: fine */
    l.n = 0;
    assert_int_equal(store_list(f->st, "a/", on_list, &l, &err), 0);
    assert_int_equal(l.n, 2);
    uint64_t size;
    assert_int_equal(store_stat(f->st, "a/1", &size, &err), MR_E_NOTFOUND);
    assert_int_equal(store_stat(f->st, "a/0", &size, &err), 0);
    assert_int_equal(size, 3);
}

static void test_verify_detects(void **state)
{
    struct fixture *f = *state;
    unsigned char h[32], h2[32];
    char path[512];
    mr_error err;

    test_store_sha("payload", 7, h);
    assert_int_equal(store_put_buf(f->st, "v", "payload", 7, h, &err), 0);
    assert_int_equal(store_verify(f->st, "v", 7, h, &err), 0);
    assert_int_equal(store_verify(f->st, "v", 8, h, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "size"));
    /* Same size, one byte changed on disk. */
    snprintf(path, sizeof path, "%s/v", f->dir);
    assert_int_equal(th_write_file(path, "paylOad", 7), 0);
    assert_int_equal(store_verify(f->st, "v", 7, h, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "SHA-256"));
    assert_int_equal(store_verify(f->st, "nothing", 7, h, &err), MR_E_NOTFOUND);
    /* The empty object. */
    test_store_sha("", 0, h2);
    assert_int_equal(store_put_buf(f->st, "empty", NULL, 0, NULL, &err), 0);
    assert_int_equal(store_verify(f->st, "empty", 0, h2, &err), 0);
}

/* A payload that is not what its SHA-256 says is refused and leaves no object (nor a
 * temporary file), and the object that was there stays. */
static void test_wrong_sha_refused(void **state)
{
    struct fixture *f = *state;
    unsigned char h[32];
    struct listed l = { 0 };
    char src[512];
    mr_error err;

    test_store_sha("old", 3, h);
    assert_int_equal(store_put_buf(f->st, "k", "old", 3, h, &err), 0);
    assert_int_equal(store_put_buf(f->st, "k", "new", 3, h, &err), MR_E_TAMPERED);
    assert_int_equal(store_verify(f->st, "k", 3, h, &err), 0);
    snprintf(src, sizeof src, "%s/../mrstore-src-%d", f->dir, (int)getpid());
    assert_int_equal(th_write_file(src, "new", 3), 0);
    assert_int_equal(store_put_file(f->st, "k", src, h, &err), MR_E_TAMPERED);
    assert_int_equal(store_put_file(f->st, "k2", src, NULL, &err), 0);
    unlink(src);
    assert_int_equal(store_list(f->st, "", on_list, &l, &err), 0);
    assert_int_equal(l.n, 2);
    {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "find '%s' -name '*.tmp.*' | grep -q .", f->dir);
        assert_int_not_equal(system(cmd), 0);
    }
}

static void test_key_rules(void **state)
{
    struct fixture *f = *state;
    const char *bad[] = { "", "/a", "a/", "a//b", "./a", "a/./b", "a/..", "..", "a\nb", "a\x7f",
                          "x.tmp.1.2" };
    char longkey[STORE_KEY_MAX + 2];
    mr_error err;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(store_key_check(bad[i], &err), MR_E_INVALID);
        assert_int_equal(store_put_buf(f->st, bad[i], "x", 1, NULL, &err), MR_E_INVALID);
    }
    memset(longkey, 'a', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    assert_int_equal(store_key_check(longkey, &err), MR_E_INVALID);
    assert_int_equal(store_key_check("2026-12/vol 1+ä&=%.cms", &err), 0);
    assert_int_equal(store_put_buf(f->st, "2026-12/vol 1+ä&=%.cms", "x", 1, NULL, &err), 0);
    assert_int_equal(store_verify(f->st, "2026-12/vol 1+ä&=%.cms", 1,
                                  (const unsigned char[32]){ 0 }, &err), MR_E_TAMPERED);
}

static void test_get_file(void **state)
{
    struct fixture *f = *state;
    size_t n = 1500000, len = 0;
    unsigned char *b = pattern(n), *got;
    char out[512];
    mr_error err;

    assert_int_equal(store_put_buf(f->st, "g", b, n, NULL, &err), 0);
    snprintf(out, sizeof out, "%s/../mrstore-out-%d", f->dir, (int)getpid());
    assert_int_equal(store_get_file(f->st, "g", out, 0600, &err), 0);
    got = th_read_file(out, &len);
    assert_int_equal(len, n);
    assert_memory_equal(got, b, n);
    unlink(out);
    assert_int_equal(store_get_file(f->st, "none", out, 0600, &err), MR_E_NOTFOUND);
    assert_int_equal(access(out, F_OK), -1);     /* nothing under the final name */
    free(got);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranged_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_detects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_sha_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
