/* itest_store_readonly.c — IT's credentials on the Swift test server (fixture
 * swift_server): the `reader` user (tempauth, not an admin of the account; the bucket's
 * read ACL names it) opens the store, lists, stats, gets and verifies what the host's
 * user stored, and every put, multipart put and delete it tries is refused with one
 * line (MR_E_AUTH) and leaves the object as it was. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "store/store.h"
#include "helpers/test_helpers.h"
#include "helpers/test_store.h"

static char *env_file;

static char *swift_env(const char *key)
{
    size_t len = 0, klen = strlen(key);
    char *data = (char *)th_read_file(env_file, &len), *line, *save = NULL, *v = NULL;

    if (data == NULL)
        return NULL;
    for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            v = strdup(line + klen + 1);
            break;
        }
    free(data);
    return v;
}

static struct { char *endpoint, *region, *bucket, *admin, *reader; } sw;

static int group_setup(void **state)
{
    const char *dir = getenv("MAILRET_TEST_SWIFT_DIR");
    (void)state;
    if (dir == NULL || asprintf(&env_file, "%s/env", dir) < 0)
        return -1;
    sw.endpoint = swift_env("ENDPOINT");
    sw.region = swift_env("REGION");
    sw.bucket = swift_env("BUCKET");
    sw.admin = swift_env("CREDENTIALS_FILE");
    sw.reader = swift_env("READONLY_CREDENTIALS_FILE");
    return sw.endpoint && sw.region && sw.bucket && sw.admin && sw.reader ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    free(sw.endpoint); free(sw.region); free(sw.bucket); free(sw.admin); free(sw.reader);
    free(env_file);
    return 0;
}

static mr_store *open_as(const char *cred)
{
    struct store_s3_options o = { 0 };
    mr_store *st = NULL;
    mr_error err;

    o.endpoint = sw.endpoint;
    o.region = sw.region;
    o.bucket = sw.bucket;
    o.path_style = true;
    o.credentials_file = cred;
    o.request_timeout_s = 120;
    o.retries = 1;
    o.backoff_max_ms = 300;
    o.multipart_threshold = 5u << 20;
    o.part_size = 5u << 20;
    if (store_s3_open(&o, &st, &err) != 0)
        print_message("open: %s\n", err.msg);
    assert_non_null(st);
    return st;
}

static int count_key(void *arg, const char *key, uint64_t size, mr_error *err)
{
    (void)key; (void)size; (void)err;
    (*(size_t *)arg)++;
    return 0;
}

static void refused(int rc, const mr_error *err)
{
    print_message("refused: %s\n", err->msg);
    assert_int_equal(rc, MR_E_AUTH);
    assert_null(strchr(err->msg, '\n'));
}

static void test_reader_reads_only(void **state)
{
    mr_store *host = open_as(sw.admin), *it = open_as(sw.reader);
    const char text[] = "a batch file the host stored";
    unsigned char h[32], *big;
    unsigned int hl = 0;
    size_t listed = 0, big_len = 6u << 20;
    struct test_gathered c = { 0 };
    char prefix[128], key[160], key2[160];
    uint64_t size = 0;
    mr_error err;

    (void)state;
    snprintf(prefix, sizeof prefix, "readonly-%d-%ld/", (int)getpid(), (long)time(NULL));
    snprintf(key, sizeof key, "%sINBOX/2026-12-x/vol-0001.p7m", prefix);
    snprintf(key2, sizeof key2, "%sINBOX/2026-12-x/vol-0002.p7m", prefix);
    assert_int_equal(EVP_Digest(text, sizeof text - 1, h, &hl, EVP_sha256(), NULL), 1);
    assert_int_equal(store_put_buf(host, key, text, sizeof text - 1, h, &err), 0);

    /* What IT needs works. */
    assert_int_equal(store_list(it, prefix, count_key, &listed, &err), 0);
    assert_int_equal(listed, 1);
    assert_int_equal(store_stat(it, key, &size, &err), 0);
    assert_int_equal(size, sizeof text - 1);
    assert_int_equal(store_get(it, key, 0, STORE_TO_END, test_gather, &c, &err), 0);
    assert_int_equal(c.n, sizeof text - 1);
    assert_memory_equal(c.p, text, c.n);
    assert_int_equal(store_verify(it, key, sizeof text - 1, h, &err), 0);

    /* Nothing that changes the bucket does. */
    refused(store_put_buf(it, key, "x", 1, NULL, &err), &err);
    refused(store_put_buf(it, key2, "x", 1, NULL, &err), &err);
    big = malloc(big_len);
    assert_non_null(big);
    memset(big, 'b', big_len);
    refused(store_put_buf(it, key2, big, big_len, NULL, &err), &err);   /* multipart */
    free(big);
    refused(store_delete(it, key, &err), &err);
    assert_int_equal(store_verify(host, key, sizeof text - 1, h, &err), 0);
    assert_int_equal(store_stat(host, key2, &size, &err), MR_E_NOTFOUND);

    assert_int_equal(store_delete(host, key, &err), 0);
    free(c.p);
    store_close(it);
    store_close(host);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_reads_only),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
