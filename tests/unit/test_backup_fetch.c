/* test_backup_fetch.c — the archive directory as a cache of the object store
 * (backup/batchdir_fetch.c), over the local directory driver (the S3 path is
 * store_restore.sh against Swift): the listing decides what exists; a file is fetched
 * when first read and not before; a volume already cached at the listed size is not
 * fetched again, a manifest is fetched once per run; a file the store does not hold (no
 * longer, or never: planted) is not read and leaves the cache; a dropped copy is fetched again; verify reads the
 * store's object, not the cache's; objects outside the batch shape are ignored; and with
 * nothing pulled (the host) every call is the plain directory's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "backup/archive.h"
#include "backup/batchdir.h"
#include "store/store.h"
#include "helpers/test_helpers.h"

struct fx {
    char *bucket, *cache;
    char batch[4400];       /* the cache's batch directory */
    mr_store *st;
};

#define PREFIX "site1"
#define BATCH "INBOX/2026-12-20261207T063306Z-723824fd"

static void put(struct fx *f, const char *rel, const char *data)
{
    char key[512];
    mr_error err;

    snprintf(key, sizeof key, PREFIX "/%s", rel);
    assert_int_equal(store_put_buf(f->st, key, data, strlen(data), NULL, &err), 0);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    mr_error err;

    f->bucket = th_tempdir("fetch-bucket");
    f->cache = th_tempdir("fetch-cache");
    assert_int_equal(store_local_open(f->bucket, &f->st, &err), 0);
    put(f, BATCH "/manifest.json", "{\"mailbox\":\"INBOX\",\"v\":1}");
    put(f, BATCH "/vol-0001.p7m", "volume one");
    put(f, BATCH "/reid-0001.p7m", "reid one");
    put(f, BATCH "/vol-0002.p7m", "volume two");
    put(f, "Sager/2026-11-20261101T010101Z-00000001/manifest.json", "{\"mailbox\":\"Sager\"}");
    put(f, "stray-top-level-object", "not a batch file");
    put(f, "INBOX/.hidden/manifest.json", "not a batch either");
    put(f, "INBOX/a/b/manifest.json", "too deep");
    snprintf(f->batch, sizeof f->batch, "%s/" BATCH, f->cache);
    assert_int_equal(batchdir_store_attach(f->cache, f->st, PREFIX, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    batchdir_store_pull_release();
    batchdir_store_detach();
    store_close(f->st);
    th_rmtree(f->bucket);
    th_rmtree(f->cache);
    free(f->bucket);
    free(f->cache);
    free(f);
    return 0;
}

static bool cached(const struct fx *f, const char *name)
{
    char p[4600];
    struct stat sb;

    snprintf(p, sizeof p, "%s/%s", f->batch, name);
    return stat(p, &sb) == 0;
}

static int collect(void *ctx, const char *name, mr_error *err)
{
    (void)err;
    strcat(ctx, name);
    strcat(ctx, " ");
    return 0;
}

static void test_nothing_pulled_is_plain(void **state)
{
    struct fx *f = *state;
    unsigned char *buf = NULL;
    size_t len = 0;
    mr_error err;

    /* Attached but not pulled, as on the host: the directory alone answers. */
    assert_false(batchdir_store_caching());
    assert_false(batchdir_exists(f->batch, "manifest.json", NULL));
    assert_int_equal(batchdir_read(f->batch, "manifest.json", 4096, &buf, &len, &err),
                     MR_E_NOTFOUND);
    assert_int_equal(batchdir_store_fetch(f->batch, "vol-0001.p7m", &err), 0);
    assert_false(cached(f, "vol-0001.p7m"));
}

static void test_listing_and_fetch(void **state)
{
    struct fx *f = *state;
    struct archive_batch_ref *refs = NULL;
    unsigned long long size = 0;
    unsigned char *buf = NULL;
    size_t len = 0, n = 0;
    char names[512] = "", path[4600];
    mr_error err;

    assert_int_equal(batchdir_store_pull_tree(f->cache, &err), 0);
    assert_true(batchdir_store_caching());
    /* Directories for both batches, no file yet; the odd objects made nothing. */
    assert_false(cached(f, "manifest.json"));
    assert_int_equal(archive_batch_list(f->cache, NULL, &refs, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_true(refs[0].has_manifest && refs[1].has_manifest);
    assert_non_null(strstr(refs[0].dir, "/INBOX/2026-12-"));
    assert_non_null(strstr(refs[1].dir, "/Sager/2026-11-"));
    free(refs);
    assert_int_equal(archive_batch_list(f->cache, "Sager", &refs, &n, &err), 0);
    assert_int_equal(n, 1);
    free(refs);
    snprintf(path, sizeof path, "%s/INBOX/.hidden", f->cache);
    assert_int_equal(access(path, F_OK), -1);

    /* exists and list from the listing, without fetching. */
    assert_true(batchdir_exists(f->batch, "vol-0002.p7m", &size));
    assert_int_equal(size, strlen("volume two"));
    assert_false(batchdir_exists(f->batch, "vol-0003.p7m", NULL));
    assert_int_equal(batchdir_list(f->batch, collect, names, &err), 0);
    assert_string_equal(names, "manifest.json reid-0001.p7m vol-0001.p7m vol-0002.p7m ");
    assert_false(cached(f, "vol-0002.p7m"));

    /* Read: fetched then. */
    assert_int_equal(batchdir_read(f->batch, "manifest.json", 4096, &buf, &len, &err), 0);
    assert_string_equal((char *)buf, "{\"mailbox\":\"INBOX\",\"v\":1}");
    free(buf);
    assert_int_equal(batchdir_read_path(f->batch, "vol-0001.p7m", path, sizeof path, &err), 0);
    buf = th_read_file(path, &len);
    assert_non_null(buf);
    assert_string_equal((char *)buf, "volume one");
    free(buf);
    assert_false(cached(f, "vol-0002.p7m"));
    assert_true(cached(f, "vol-0001.p7m"));

    /* Missing in the store: one line naming the file. */
    assert_int_equal(batchdir_read_path(f->batch, "vol-0003.p7m", path, sizeof path, &err),
                     MR_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "vol-0003.p7m"));
    assert_null(strchr(err.msg, '\n'));
}

static void test_cache_rules(void **state)
{
    struct fx *f = *state;
    unsigned char *buf = NULL;
    size_t len = 0;
    char path[4600];
    mr_error err;

    assert_int_equal(batchdir_store_pull_tree(f->cache, &err), 0);
    assert_int_equal(batchdir_read_path(f->batch, "vol-0001.p7m", path, sizeof path, &err), 0);
    assert_int_equal(batchdir_read(f->batch, "manifest.json", 4096, &buf, &len, &err), 0);
    free(buf);

    /* The store's objects change behind the cache (same sizes). */
    put(f, BATCH "/vol-0001.p7m", "VOLUME ONE");
    put(f, BATCH "/manifest.json", "{\"mailbox\":\"INBOX\",\"v\":2}");
    /* Within this run, nothing is fetched twice. */
    assert_int_equal(batchdir_read(f->batch, "manifest.json", 4096, &buf, &len, &err), 0);
    assert_string_equal((char *)buf, "{\"mailbox\":\"INBOX\",\"v\":1}");
    free(buf);
    /* A new run: the manifest is fetched again, the cached volume of the listed size is
     * used as it is (the readers check it against the manifest). */
    assert_int_equal(batchdir_store_pull_tree(f->cache, &err), 0);
    assert_int_equal(batchdir_read(f->batch, "manifest.json", 4096, &buf, &len, &err), 0);
    assert_string_equal((char *)buf, "{\"mailbox\":\"INBOX\",\"v\":2}");
    free(buf);
    assert_int_equal(batchdir_read(f->batch, "vol-0001.p7m", 4096, &buf, &len, &err), 0);
    assert_string_equal((char *)buf, "volume one");
    free(buf);
    /* A copy that failed its check is dropped and fetched again. */
    batchdir_store_evict(f->batch, "vol-0001.p7m");
    assert_false(cached(f, "vol-0001.p7m"));
    assert_int_equal(batchdir_read(f->batch, "vol-0001.p7m", 4096, &buf, &len, &err), 0);
    assert_string_equal((char *)buf, "VOLUME ONE");
    free(buf);
    /* A cached copy of another size is replaced. */
    snprintf(path, sizeof path, "%s/reid-0001.p7m", f->batch);
    assert_int_equal(th_write_file(path, "old", 3), 0);
    assert_int_equal(batchdir_read(f->batch, "reid-0001.p7m", 4096, &buf, &len, &err), 0);
    assert_string_equal((char *)buf, "reid one");
    free(buf);
}

static void test_gone_from_store(void **state)
{
    struct fx *f = *state;
    struct archive_batch_ref *refs = NULL;
    unsigned char *buf = NULL;
    size_t len = 0, n = 0;
    char path[4600], key[512];
    mr_error err;

    assert_int_equal(batchdir_store_pull_tree(f->cache, &err), 0);
    assert_int_equal(batchdir_read(f->batch, "vol-0002.p7m", 4096, &buf, &len, &err), 0);
    free(buf);
    snprintf(key, sizeof key, PREFIX "/" BATCH "/vol-0002.p7m");
    assert_int_equal(store_delete(f->st, key, &err), 0);
    /* A file planted in the cache that the store never had. */
    snprintf(path, sizeof path, "%s/vol-0009.p7m", f->batch);
    assert_int_equal(th_write_file(path, "planted", 7), 0);
    assert_int_equal(batchdir_store_pull_tree(f->cache, &err), 0);
    /* The cache never holds more than the store: both went at the listing. */
    assert_false(cached(f, "vol-0009.p7m"));
    assert_false(cached(f, "vol-0002.p7m"));
    assert_false(batchdir_exists(f->batch, "vol-0002.p7m", NULL));
    assert_false(batchdir_exists(f->batch, "vol-0009.p7m", NULL));
    assert_int_equal(batchdir_read(f->batch, "vol-0002.p7m", 4096, &buf, &len, &err),
                     MR_E_NOTFOUND);
    assert_false(cached(f, "vol-0002.p7m"));
    assert_int_equal(batchdir_read(f->batch, "vol-0009.p7m", 4096, &buf, &len, &err),
                     MR_E_NOTFOUND);
    assert_false(cached(f, "vol-0009.p7m"));
    /* A batch directory left in the cache whose objects are all gone is not listed. */
    snprintf(path, sizeof path, "%s/INBOX/2025-01-20250101T000000Z-deadbeef", f->cache);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(archive_batch_list(f->cache, NULL, &refs, &n, &err), 0);
    assert_int_equal(n, 2);
    free(refs);
}

static void test_verify_reads_the_store(void **state)
{
    struct fx *f = *state;
    unsigned char *buf = NULL, md[32];
    unsigned int ml = 0;
    size_t len = 0;
    char hex[65];
    mr_error err;

    assert_int_equal(batchdir_store_pull_tree(f->cache, &err), 0);
    assert_int_equal(batchdir_read(f->batch, "vol-0001.p7m", 4096, &buf, &len, &err), 0);
    assert_int_equal(EVP_Digest(buf, len, md, &ml, EVP_sha256(), NULL), 1);
    free(buf);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    assert_int_equal(batchdir_store_verify(f->batch, "vol-0001.p7m", len, hex, &err), 0);
    put(f, BATCH "/vol-0001.p7m", "volume 0ne");       /* same size, other bytes */
    assert_int_equal(batchdir_store_verify(f->batch, "vol-0001.p7m", len, hex, &err),
                     MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "vol-0001.p7m"));
    assert_non_null(strstr(err.msg, "SHA-256"));
    /* the cache still holds the old copy: verify did not look at it */
    assert_true(cached(f, "vol-0001.p7m"));
    assert_int_equal(batchdir_store_verify(f->batch, "vol-0007.p7m", len, hex, &err),
                     MR_E_NOTFOUND);
    /* Outside the cache root: nothing to check in the store. */
    assert_int_equal(batchdir_store_verify("/elsewhere/x", "vol-0001.p7m", len, hex, &err), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nothing_pulled_is_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listing_and_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone_from_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_reads_the_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
