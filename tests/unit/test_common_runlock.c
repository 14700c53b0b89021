/* test_common_runlock.c — the run lock excludes a second holder, dies with its process
 * (kill -9 leaves no stale lock), and a bounded wait gets it once the holder is done but
 * gives up in time while it is not. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/runlock.h"
#include "helpers/test_helpers.h"

static void test_runlock_excludes_and_dies_with_holder(void **state)
{
    char *dir = th_tempdir("plock"), sub[512];
    runlock *a = NULL, *b = NULL;
    mr_error err;
    int pipefd[2], status;
    pid_t pid;
    char c;

    (void)state;
    snprintf(sub, sizeof sub, "%s/state", dir);       /* created on demand */
    assert_int_equal(runlock_acquire(sub, 0, &a, &err), 0);
    assert_int_equal(runlock_acquire(sub, 0, &b, &err), MR_E_STATE);
    assert_non_null(strstr(err.msg, "another mailret run"));
    runlock_release(a);
    assert_int_equal(runlock_acquire(sub, 0, &b, &err), 0);
    runlock_release(b);

    /* A holder killed with SIGKILL leaves no stale lock. */
    assert_int_equal(pipe(pipefd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        runlock *l = NULL;
        if (runlock_acquire(sub, 0, &l, &err) != 0)
            _exit(3);
        (void)write(pipefd[1], "x", 1);
        pause();
        _exit(0);
    }
    assert_int_equal(read(pipefd[0], &c, 1), 1);
    assert_int_equal(runlock_acquire(sub, 0, &a, &err), MR_E_STATE);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(runlock_acquire(sub, 0, &a, &err), 0);
    runlock_release(a);
    close(pipefd[0]);
    close(pipefd[1]);
    th_rmtree(dir);
    free(dir);
}

/* A child holds the lock for about one second: waiting 0 s is refused at once, waiting
 * up to 5 s gets the lock as soon as the child lets go; a 1 s wait on a lock that stays
 * held gives up with the clear error. */
static void test_runlock_bounded_wait(void **state)
{
    char *dir = th_tempdir("plockwait"), sub[512];
    runlock *a = NULL;
    mr_error err;
    int pipefd[2], status;
    struct timespec t0, t1;
    pid_t pid;
    char c;

    (void)state;
    snprintf(sub, sizeof sub, "%s/state", dir);
    assert_int_equal(pipe(pipefd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        runlock *l = NULL;
        const struct timespec hold = { 1, 0 };
        if (runlock_acquire(sub, 0, &l, &err) != 0)
            _exit(3);
        (void)write(pipefd[1], "x", 1);
        nanosleep(&hold, NULL);
        runlock_release(l);
        _exit(0);
    }
    assert_int_equal(read(pipefd[0], &c, 1), 1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(runlock_acquire(sub, 0, &a, &err), MR_E_STATE);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 1);             /* no wait: refused at once */
    assert_int_equal(runlock_acquire(sub, 5, &a, &err), 0);     /* got it when freed */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 5);
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* Now we hold it: another process waiting 1 s gives up with the clear error. */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        runlock *l = NULL;
        mr_error e2;
        int rc = runlock_acquire(sub, 1, &l, &e2);
        _exit(rc == MR_E_STATE && strstr(e2.msg, "another mailret run") != NULL ? 0 : 4);
    }
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    runlock_release(a);
    close(pipefd[0]);
    close(pipefd[1]);
    th_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runlock_excludes_and_dies_with_holder),
        cmocka_unit_test(test_runlock_bounded_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
