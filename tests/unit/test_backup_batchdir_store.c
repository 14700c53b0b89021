/* test_backup_batchdir_store.c — mirroring batch directories to an object store
 * (backup/batchdir.h: batchdir_store_*), against the local directory driver on real
 * files: objects equal the local files byte for byte (compared by reading the store's
 * files directly, not through the store code); a push killed half-way (SIGKILL at a
 * named put) leaves no manifest in the store and the next push skips what verifies and
 * completes; a tampered object is put again; an expired batch's content and manifest go
 * from the store, its tombstone comes; a file lost locally never takes the store's copy
 * with it while the batch has its manifest; keys and prefixes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backup/batchdir.h"
#include "store/store.h"
#include "helpers/test_helpers.h"

#define BATCH_REL "INBOX/2026-11-20261201T000000Z-0badcafe"
#define PREFIX "mirror/host1"

struct fixture {
    char *root;         /* [archive] dir */
    char *objects;      /* the local driver's directory: the "bucket" */
    char batch[1024];
    mr_store *st;
};

static const char *const FILES[] = { "vol-0001.p7m", "reid-0001.p7m", "vol-0002.p7m",
                                     "reid-0002.p7m", "locator.p7m", "manifest.json" };
#define N_FILES (sizeof FILES / sizeof FILES[0])

static void write_random(const char *dir, const char *name, size_t len)
{
    char path[2048];
    unsigned char *buf = malloc(len);
    FILE *u = fopen("/dev/urandom", "rb");

    assert_non_null(buf);
    assert_non_null(u);
    assert_int_equal(fread(buf, 1, len, u), len);
    fclose(u);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(th_write_file(path, buf, len), 0);
    free(buf);
}

static void mkdirs(const char *path)
{
    char tmp[2048];

    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        (void)mkdir(tmp, 0700);
        *p = '/';
    }
    assert_true(mkdir(tmp, 0700) == 0 || errno == EEXIST);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    mr_error err;

    if (f == NULL || (f->root = th_tempdir("mrbds-arch")) == NULL
        || (f->objects = th_tempdir("mrbds-obj")) == NULL)
        return -1;
    snprintf(f->batch, sizeof f->batch, "%s/" BATCH_REL, f->root);
    mkdirs(f->batch);
    for (size_t i = 0; i < N_FILES; i++)
        write_random(f->batch, FILES[i], 1000 + 70000 * (i % 3));
    if (store_local_open(f->objects, &f->st, &err) != 0)
        return -1;
    if (batchdir_store_attach(f->root, f->st, PREFIX, &err) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    batchdir_store_detach();
    store_close(f->st);
    th_rmtree(f->root);
    th_rmtree(f->objects);
    free(f->root);
    free(f->objects);
    free(f);
    return 0;
}

/* The store's object file of name, read directly (the oracle shares no store code). */
static unsigned char *object(struct fixture *f, const char *name, size_t *len)
{
    char path[2048];

    snprintf(path, sizeof path, "%s/" PREFIX "/" BATCH_REL "/%s", f->objects, name);
    return th_read_file(path, len);
}

static ino_t object_inode(struct fixture *f, const char *name)
{
    char path[2048];
    struct stat st;

    snprintf(path, sizeof path, "%s/" PREFIX "/" BATCH_REL "/%s", f->objects, name);
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

static void assert_object_equals_local(struct fixture *f, const char *name)
{
    char path[2048];
    size_t a = 0, b = 0;
    unsigned char *obj = object(f, name, &a), *loc;

    snprintf(path, sizeof path, "%s/%s", f->batch, name);
    loc = th_read_file(path, &b);
    if (obj == NULL)
        fail_msg("%s is not in the store", name);
    assert_non_null(loc);
    assert_int_equal(a, b);
    assert_memory_equal(obj, loc, a);
    free(obj);
    free(loc);
}

/* Names of the batch's objects in the store (sorted by the listing). */
struct names {
    char v[16][64];
    size_t n;
};

static int collect(void *arg, const char *key, uint64_t size, mr_error *err)
{
    struct names *n = arg;
    const char *slash = strrchr(key, '/');

    (void)size;
    (void)err;
    if (n->n < 16)
        snprintf(n->v[n->n++], sizeof n->v[0], "%s", slash ? slash + 1 : key);
    return 0;
}

static struct names listing(struct fixture *f)
{
    struct names n = { .n = 0 };
    mr_error err;

    assert_int_equal(store_list(f->st, PREFIX "/" BATCH_REL "/", collect, &n, &err), 0);
    return n;
}

static void test_push_mirrors_every_file(void **state)
{
    struct fixture *f = *state;
    struct batchdir_push_stats s;
    mr_error err;

    if (batchdir_store_push_stats(f->batch, 0, &s, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(s.put, N_FILES);
    assert_int_equal(s.skipped, 0);
    for (size_t i = 0; i < N_FILES; i++)
        assert_object_equals_local(f, FILES[i]);
    assert_int_equal(listing(f).n, N_FILES);
    /* Again: everything verifies, nothing is put (the objects' files are not replaced). */
    ino_t ino = object_inode(f, "vol-0002.p7m");
    assert_int_equal(batchdir_store_push_stats(f->batch, 0, &s, &err), 0);
    assert_int_equal(s.put, 0);
    assert_int_equal(s.skipped, N_FILES);
    assert_true(object_inode(f, "vol-0002.p7m") == ino);
}

/* Killed before putting the second reid file: the store has what came before and no
 * manifest; the next push skips those and completes. */
static void test_push_after_crash(void **state)
{
    struct fixture *f = *state;
    struct batchdir_push_stats s;
    mr_error err;
    int status;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("MAILRET_TEST_CRASH_AT", "store-put:reid-0002.p7m", 1);
        (void)batchdir_store_push(f->batch, 0, &err);
        _exit(0);   /* not reached when the crash point fires */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* In name order: locator.p7m and reid-0001.p7m went before, nothing after. */
    assert_object_equals_local(f, "locator.p7m");
    assert_object_equals_local(f, "reid-0001.p7m");
    assert_null(object(f, "reid-0002.p7m", &(size_t){ 0 }));
    assert_null(object(f, "vol-0001.p7m", &(size_t){ 0 }));
    assert_null(object(f, "manifest.json", &(size_t){ 0 }));

    if (batchdir_store_push_stats(f->batch, 0, &s, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(s.skipped, 2);
    assert_int_equal(s.put, N_FILES - 2);
    for (size_t i = 0; i < N_FILES; i++)
        assert_object_equals_local(f, FILES[i]);
}

/* A changed object (same size, one byte) is found by the read-back and put again; so is
 * one of another size, and one deleted behind the mirror's back. */
static void test_tampered_object_is_put_again(void **state)
{
    struct fixture *f = *state;
    struct batchdir_push_stats s;
    char path[2048];
    size_t len;
    unsigned char *obj;
    mr_error err;

    assert_int_equal(batchdir_store_push(f->batch, 0, &err), 0);
    obj = object(f, "vol-0002.p7m", &len);
    assert_non_null(obj);
    obj[len / 2] ^= 0x01;
    snprintf(path, sizeof path, "%s/" PREFIX "/" BATCH_REL "/vol-0002.p7m", f->objects);
    assert_int_equal(th_write_file(path, obj, len), 0);
    snprintf(path, sizeof path, "%s/" PREFIX "/" BATCH_REL "/reid-0001.p7m", f->objects);
    assert_int_equal(th_write_file(path, obj, 10), 0);
    snprintf(path, sizeof path, "%s/" PREFIX "/" BATCH_REL "/locator.p7m", f->objects);
    assert_int_equal(unlink(path), 0);
    free(obj);

    if (batchdir_store_push_stats(f->batch, 0, &s, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(s.put, 3);
    assert_int_equal(s.skipped, N_FILES - 3);
    for (size_t i = 0; i < N_FILES; i++)
        assert_object_equals_local(f, FILES[i]);
}

/* Expired locally (content, locator and manifest gone, tombstone in): the store follows,
 * and the next push has nothing to do. */
static void test_expired_batch_leaves_only_its_tombstone(void **state)
{
    struct fixture *f = *state;
    struct batchdir_push_stats s;
    struct names n;
    bool pushed = true;
    mr_error err;

    assert_int_equal(batchdir_store_push(f->batch, 0, &err), 0);
    for (size_t i = 0; i < N_FILES; i++)
        assert_int_equal(batchdir_remove(f->batch, FILES[i], &err), 0);
    write_random(f->batch, "expired.json", 600);
    if (batchdir_store_push_stats(f->batch, 0, &s, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(s.deleted, N_FILES);
    assert_int_equal(s.put, 1);
    n = listing(f);
    assert_int_equal(n.n, 1);
    assert_string_equal(n.v[0], "expired.json");
    assert_object_equals_local(f, "expired.json");
    /* sync: the listing matches the directory, nothing to push. */
    assert_int_equal(batchdir_store_sync(f->batch, 0, &pushed, &err), 0);
    assert_false(pushed);
}

/* A crash after the tombstone is in but before the manifest is deleted: the store holds
 * both; sync sees the difference and finishes. */
static void test_sync_finishes_an_interrupted_expiry(void **state)
{
    struct fixture *f = *state;
    struct names n;
    bool pushed = false;
    int status;
    mr_error err;
    pid_t pid;

    assert_int_equal(batchdir_store_push(f->batch, 0, &err), 0);
    for (size_t i = 0; i < N_FILES; i++)
        assert_int_equal(batchdir_remove(f->batch, FILES[i], &err), 0);
    write_random(f->batch, "expired.json", 600);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("MAILRET_TEST_CRASH_AT", "store-delete:manifest.json", 1);
        (void)batchdir_store_push(f->batch, 0, &err);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    n = listing(f);
    assert_int_equal(n.n, 2);       /* content gone first, tombstone in, manifest last */
    assert_string_equal(n.v[0], "expired.json");
    assert_string_equal(n.v[1], "manifest.json");
    assert_int_equal(batchdir_store_sync(f->batch, 0, &pushed, &err), 0);
    assert_true(pushed);
    n = listing(f);
    assert_int_equal(n.n, 1);
    assert_string_equal(n.v[0], "expired.json");
}

/* While the batch has its manifest, a file missing locally (lost, or not fetched into a
 * cache) leaves the store's object alone. */
static void test_local_loss_never_deletes_the_store_copy(void **state)
{
    struct fixture *f = *state;
    struct batchdir_push_stats s;
    size_t len = 0;
    unsigned char *obj;
    mr_error err;

    assert_int_equal(batchdir_store_push(f->batch, 0, &err), 0);
    assert_int_equal(batchdir_remove(f->batch, "vol-0002.p7m", &err), 0);
    assert_int_equal(batchdir_store_push_stats(f->batch, 0, &s, &err), 0);
    assert_int_equal(s.deleted, 0);
    obj = object(f, "vol-0002.p7m", &len);
    assert_non_null(obj);
    assert_true(len > 0);
    free(obj);
}

/* Neither manifest nor tombstone (an interrupted write): refused, the store untouched. */
static void test_incomplete_batch_refused(void **state)
{
    struct fixture *f = *state;
    mr_error err;

    assert_int_equal(batchdir_remove(f->batch, "manifest.json", &err), 0);
    assert_int_equal(batchdir_store_push(f->batch, 0, &err), MR_E_INVALID);
    assert_non_null(strstr(err.msg, "neither a manifest nor a tombstone"));
    assert_null(strchr(err.msg, '\n'));
    assert_int_equal(listing(f).n, 0);
}

static void test_keys(void **state)
{
    struct fixture *f = *state;
    char key[STORE_KEY_MAX + 1], dir[2048];
    mr_error err;

    assert_int_equal(batchdir_store_key(f->batch, "vol-0001.p7m", key, sizeof key, &err), 0);
    assert_string_equal(key, PREFIX "/" BATCH_REL "/vol-0001.p7m");
    /* A root given with a trailing '/', a directory with doubled ones. */
    snprintf(dir, sizeof dir, "%s/", f->root);
    assert_int_equal(batchdir_store_attach(dir, f->st, NULL, &err), 0);
    snprintf(dir, sizeof dir, "%s//" BATCH_REL "/", f->root);
    assert_int_equal(batchdir_store_key(dir, "manifest.json", key, sizeof key, &err), 0);
    assert_string_equal(key, BATCH_REL "/manifest.json");
    /* Outside the root, the root itself, a bad name, a bad prefix. */
    assert_int_equal(batchdir_store_key("/elsewhere/INBOX/x", "a", key, sizeof key, &err),
                     MR_E_INVALID);
    snprintf(dir, sizeof dir, "%sX/INBOX/b", f->root);
    assert_int_equal(batchdir_store_key(dir, "a", key, sizeof key, &err), MR_E_INVALID);
    assert_int_equal(batchdir_store_key(f->root, "a", key, sizeof key, &err), MR_E_INVALID);
    assert_int_equal(batchdir_store_key(f->batch, "../x", key, sizeof key, &err),
                     MR_E_INVALID);
    assert_int_equal(batchdir_store_attach(f->root, f->st, "/abs", &err), MR_E_INVALID);
    assert_int_equal(batchdir_store_attach(f->root, f->st, "a/../b", &err), MR_E_INVALID);
    /* Detached: no store, and a push is a no-op. */
    batchdir_store_detach();
    assert_null(batchdir_store_current());
    assert_int_equal(batchdir_store_push(f->batch, 0, &err), 0);
    assert_int_equal(listing(f).n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_push_mirrors_every_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_after_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_object_is_put_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_batch_leaves_only_its_tombstone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sync_finishes_an_interrupted_expiry, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_local_loss_never_deletes_the_store_copy, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_incomplete_batch_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
