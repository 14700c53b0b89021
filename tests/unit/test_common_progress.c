/* test_common_progress.c — the progress line (common/progress.h): format, rate, ETA, the
 * redraw limit, scrubbed labels, and the NULL handle. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/progress.h"
#include "helpers/test_helpers.h"

static double fake_now;
static double fake_clock(void) { return fake_now; }

static size_t count(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(s, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_progress_line(void **state)
{
    char *dir = th_tempdir("mrprog"), path[512];
    mr_progress *p = NULL;
    mr_error err;
    char *text;
    int fd;

    (void)state;
    snprintf(path, sizeof path, "%s/out", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(progress_open(&p, fd, &err), 0);
    progress_set_clock(p, fake_clock);
    fake_now = 100.0;
    progress_start(p, "purge Shared jens.hansen@example.dk", 10);
    fake_now = 100.1;
    progress_add(p, 1, 1000);           /* within 250 ms of the start: not drawn */
    fake_now = 100.5;
    progress_add(p, 1, 1000);           /* 2 of 10 in 0.5 s: 4.0 kB/s, 8 left: 2 s */
    for (int i = 0; i < 100; i++)
        progress_add(p, 0, 0);          /* same instant: no redraw */
    fake_now = 200.5;
    progress_add(p, 8, 98000);          /* 10 of 10, 100 kB in 100.5 s */
    progress_finish(p);
    progress_finish(p);                 /* nothing more */
    progress_start(p, "backup INBOX", 0);
    fake_now = 201.5;
    progress_add(p, 3, 3000000);        /* total unknown: no ETA */
    progress_close(p);
    close(fd);
    text = (char *)th_read_file(path, NULL);
    assert_non_null(text);
    assert_string_equal(text,
        "\rpurge Shared [redacted]: 2/10 messages, 2.0 kB, 4.0 kB/s, ETA 2s\033[K"
        "\rpurge Shared [redacted]: 10/10 messages, 100.0 kB, 995 B/s, ETA -\033[K"
        "\rpurge Shared [redacted]: 10/10 messages, 100.0 kB, 995 B/s, ETA -\033[K\n"
        "\rbackup INBOX: 3 messages, 3.0 MB, 3.0 MB/s\033[K"
        "\rbackup INBOX: 3 messages, 3.0 MB, 3.0 MB/s\033[K\n");
    assert_int_equal(count(text, "jens"), 0);
    free(text);
    th_rmtree(dir);
    free(dir);
}

static void test_progress_eta_units(void **state)
{
    int fds[2];
    mr_progress *p = NULL;
    mr_error err;
    char buf[512];
    ssize_t n;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(progress_open(&p, fds[1], &err), 0);
    progress_set_clock(p, fake_clock);
    fake_now = 0.0;
    progress_start(p, "purge INBOX", 100000);
    fake_now = 60.0;
    progress_add(p, 1000, 1000000000ULL);   /* 1 % in a minute: 99 minutes left */
    n = read(fds[0], buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "\rpurge INBOX: 1000/100000 messages, 1.0 GB, 16.7 MB/s, "
                             "ETA 1h39m\033[K");
    progress_close(p);
    close(fds[0]);
    close(fds[1]);
}

static void test_progress_null(void **state)
{
    (void)state;
    progress_start(NULL, "x", 1);
    progress_add(NULL, 1, 1);
    progress_finish(NULL);
    progress_close(NULL);
    /* under ctest stderr is not a terminal: no progress by default */
    assert_false(progress_wanted());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_line),
        cmocka_unit_test(test_progress_eta_units),
        cmocka_unit_test(test_progress_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
