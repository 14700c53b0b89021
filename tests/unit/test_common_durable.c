/* test_common_durable.c — crash-safe writes (common/durable.h), on real files. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* unshare(), for the full-disk test's private tmpfs */
#endif
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/durable.h"
#include "helpers/test_helpers.h"

static int setup(void **state)
{
    char *dir = th_tempdir("mrdurable");
    if (dir == NULL)
        return -1;
    *state = dir;
    return 0;
}

static int teardown(void **state)
{
    th_rmtree(*state);
    free(*state);
    return 0;
}

/* Number of entries in dir other than . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void test_write_file_content_and_mode(void **state)
{
    const char *dir = *state;
    char path[512];
    mr_error err;
    struct stat st;
    size_t len;
    unsigned char *got;
    mode_t old_mask = umask(077);   /* the mode asked for wins over the umask */

    snprintf(path, sizeof path, "%s/state.json", dir);
    assert_int_equal(durable_write_file(path, "hello\n", 6, 0644, &err), 0);
    umask(old_mask);
    got = th_read_file(path, &len);
    assert_non_null(got);
    assert_int_equal(len, 6);
    assert_memory_equal(got, "hello\n", 6);
    free(got);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);

    /* replace with a secret: new content, new mode, no temp file left */
    assert_int_equal(durable_write_file(path, "x", 1, 0600, &err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, 1);
    assert_int_equal(count_entries(dir), 1);

    /* empty file */
    assert_int_equal(durable_write_file(path, NULL, 0, 0600, &err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);
}

static void test_old_content_until_commit(void **state)
{
    const char *dir = *state;
    char path[512];
    mr_error err;
    durable_file *f = NULL;
    unsigned char *got;

    snprintf(path, sizeof path, "%s/manifest.json", dir);
    assert_int_equal(durable_write_file(path, "old", 3, 0600, &err), 0);
    assert_int_equal(durable_open(&f, path, 0600, &err), 0);
    assert_true(durable_fd(f) >= 0);
    assert_int_equal(durable_write(f, "new-", 4, &err), 0);
    /* streaming through the raw fd works too */
    assert_int_equal(write(durable_fd(f), "content", 7), 7);
    got = th_read_file(path, NULL);
    assert_string_equal((char *)got, "old");
    free(got);
    assert_int_equal(count_entries(dir), 2);    /* target + temp */
    assert_int_equal(durable_commit(f, &err), 0);
    got = th_read_file(path, NULL);
    assert_string_equal((char *)got, "new-content");
    free(got);
    assert_int_equal(count_entries(dir), 1);
}

static void test_abort_leaves_nothing(void **state)
{
    const char *dir = *state;
    char path[512];
    mr_error err;
    durable_file *f = NULL, *g = NULL;
    struct stat st;

    snprintf(path, sizeof path, "%s/vol-0001.p7m", dir);
    assert_int_equal(durable_open(&f, path, 0600, &err), 0);
    /* a second writer of the same path gets its own temp file */
    assert_int_equal(durable_open(&g, path, 0600, &err), 0);
    assert_int_equal(count_entries(dir), 2);
    assert_int_equal(durable_write(f, "partial", 7, &err), 0);
    durable_abort(f);
    durable_abort(g);
    durable_abort(NULL);
    assert_int_equal(count_entries(dir), 0);
    assert_int_equal(stat(path, &st), -1);
    assert_int_equal(errno, ENOENT);
}

static void test_missing_dir(void **state)
{
    const char *dir = *state;
    char path[512];
    mr_error err;
    durable_file *f = (durable_file *)&err;     /* must be reset to NULL */

    snprintf(path, sizeof path, "%s/no/such/dir/file", dir);
    assert_int_equal(durable_open(&f, path, 0600, &err), MR_E_NOTFOUND);
    assert_null(f);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(durable_write_file(path, "x", 1, 0600, &err), MR_E_NOTFOUND);
    assert_int_equal(durable_fsync_dir(path, &err), MR_E_NOTFOUND);
    assert_int_equal(durable_fsync_dir(dir, &err), 0);
}

static void test_mkdirs(void **state)
{
    const char *dir = *state;
    char path[512], file[600];
    mr_error err;
    struct stat st;
    mode_t old_mask = umask(077);

    snprintf(path, sizeof path, "%s/a/b/c/", dir);
    assert_int_equal(durable_mkdirs(path, 0750, &err), 0);
    umask(old_mask);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0750);
    snprintf(file, sizeof file, "%s/a", dir);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0750);
    /* idempotent */
    assert_int_equal(durable_mkdirs(path, 0750, &err), 0);
    /* a file in the way */
    snprintf(file, sizeof file, "%s/a/b/file", dir);
    assert_int_equal(durable_write_file(file, "x", 1, 0600, &err), 0);
    snprintf(path, sizeof path, "%s/a/b/file/d", dir);
    assert_true(durable_mkdirs(path, 0700, &err) < 0);
    assert_non_null(strstr(err.msg, "file"));
    assert_int_equal(durable_mkdirs(file, 0700, &err), MR_E_EXISTS);
}

static void test_shred(void **state)
{
    const char *dir = *state;
    char path[512], link_path[512];
    mr_error err;
    unsigned char *got;
    size_t len;
    char data[100000];

    memset(data, 'K', sizeof data);
    snprintf(path, sizeof path, "%s/epoch.key", dir);
    snprintf(link_path, sizeof link_path, "%s/epoch.key.witness", dir);
    assert_int_equal(durable_write_file(path, data, sizeof data, 0600, &err), 0);
    /* a second name for the same inode shows what happened to the bytes */
    assert_int_equal(link(path, link_path), 0);
    assert_int_equal(durable_shred(path, &err), 0);
    assert_int_equal(access(path, F_OK), -1);
    got = th_read_file(link_path, &len);
    assert_non_null(got);
    assert_int_equal(len, sizeof data);
    for (size_t i = 0; i < len; i++)
        if (got[i] != 0)
            fail_msg("byte %zu not overwritten", i);
    free(got);
    assert_int_equal(durable_shred(path, &err), MR_E_NOTFOUND);
    assert_int_equal(durable_shred(dir, &err), MR_E_IO);    /* a directory: O_WRONLY fails */
}

/* Runs fn in a child; returns its exit status (77 = skip). */
static int run_child(int (*fn)(const char *), const char *arg)
{
    pid_t pid = fork();
    int status;

    if (pid == 0)
        _exit(fn(arg));
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static int write_until_full(const char *mnt)
{
    char path[512], buf[8192];
    mr_error err;
    durable_file *f = NULL;
    int rc = 0;

    memset(buf, 'A', sizeof buf);
    snprintf(path, sizeof path, "%s/vol-0001.p7m", mnt);
    if (durable_open(&f, path, 0600, &err) != 0)
        return 10;
    for (int i = 0; i < 1000 && rc == 0; i++)     /* 8 MB into a 256 KB file system */
        rc = durable_write(f, buf, sizeof buf, &err);
    durable_abort(f);
    if (rc != MR_E_NOSPACE || strstr(err.msg, "No space left") == NULL)
        return 11;
    if (count_entries(mnt) != 0)        /* the temp file is gone */
        return 12;
    /* the one-shot helper reports the same and leaves nothing under the final name */
    {
        static char big[1 << 20];
        if (durable_write_file(path, big, sizeof big, 0600, &err) != MR_E_NOSPACE)
            return 13;
    }
    if (access(path, F_OK) == 0 || count_entries(mnt) != 0)
        return 14;
    /* an existing file keeps its old content when the replacement does not fit */
    if (durable_write_file(path, "old", 3, 0600, &err) != 0)
        return 15;
    {
        static char big[1 << 20];
        unsigned char *got;
        if (durable_write_file(path, big, sizeof big, 0600, &err) != MR_E_NOSPACE)
            return 16;
        got = th_read_file(path, NULL);
        if (got == NULL || strcmp((char *)got, "old") != 0)
            return 17;
        free(got);
    }
    return 0;
}

/* A real full disk: a 256 KB tmpfs in a private mount namespace (as root), or in a user
 * namespace where unprivileged ones are allowed.  No fakes: the kernel says ENOSPC. */
static int full_disk_child(const char *mnt)
{
    if (unshare(CLONE_NEWNS) != 0) {
        uid_t uid = getuid();
        gid_t gid = getgid();
        char map[64];
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
            return 77;
        snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
        if (th_write_file("/proc/self/setgroups", "deny", 4) != 0 ||
            th_write_file("/proc/self/uid_map", map, strlen(map)) != 0)
            return 77;
        snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
        if (th_write_file("/proc/self/gid_map", map, strlen(map)) != 0)
            return 77;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return 77;
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=256k,mode=0700") != 0)
        return 77;
    return write_until_full(mnt);
}

static void test_full_disk(void **state)
{
    char mnt[512];
    int rc;

    snprintf(mnt, sizeof mnt, "%s/mnt", (const char *)*state);
    assert_int_equal(mkdir(mnt, 0700), 0);
    rc = run_child(full_disk_child, mnt);
    if (rc == 77)
        skip();     /* neither root nor unprivileged user namespaces: cannot mount tmpfs */
    if (rc != 0)
        fail_msg("full-disk child failed at check %d", rc);
}

/* RLIMIT_FSIZE: the kernel's own "file too large"; reported as a limit, not as I/O. */
static int fsize_child(const char *dir)
{
    struct rlimit rl = { 4096, 4096 };
    char path[512], buf[8192] = { 0 };
    mr_error err;
    durable_file *f = NULL;
    int rc;

    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
        return 77;
    snprintf(path, sizeof path, "%s/big", dir);
    if (durable_open(&f, path, 0600, &err) != 0)
        return 10;
    rc = durable_write(f, buf, sizeof buf, &err);
    durable_abort(f);
    if (rc != MR_E_LIMIT || strstr(err.msg, "too large") == NULL)
        return 11;
    return count_entries(dir) == 0 ? 0 : 12;
}

static void test_file_size_limit(void **state)
{
    int rc = run_child(fsize_child, *state);
    if (rc == 77)
        skip();
    if (rc != 0)
        fail_msg("fsize child failed at check %d", rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_file_content_and_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_content_until_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdirs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_size_limit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
