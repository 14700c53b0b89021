/*
 * test_common_secret_cmd.c — token_command: a secret printed by a program run without a
 * shell.  Real child processes (/bin/sh scripts written by the test), real pipes: what
 * the child sees of mailret (environment, descriptors, stdin) and what mailret accepts
 * of what it prints.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/secret.h"
#include "helpers/test_helpers.h"

struct fixture {
    char *dir;
    char script[600];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);

    assert_non_null(fx);
    fx->dir = th_tempdir("mailret-secretcmd");
    assert_non_null(fx->dir);
    snprintf(fx->script, sizeof fx->script, "%s/cmd.sh", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    th_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

/* Write the script body (after "#!/bin/sh") and make it executable. */
static void script(struct fixture *fx, const char *body)
{
    char text[4096];

    snprintf(text, sizeof text, "#!/bin/sh\n%s\n", body);
    assert_int_equal(th_write_file(fx->script, text, strlen(text)), 0);
    assert_int_equal(chmod(fx->script, 0700), 0);
}

/* Run the script; returns the code; *out the secret or NULL. */
static int run(struct fixture *fx, int timeout_s, char **out, mr_error *err)
{
    char *argv[] = { fx->script, "arg one", NULL };

    mr_error_clear(err);
    return secret_command_run(argv, timeout_s, out, err);
}

static void expect_fail_t(struct fixture *fx, int timeout_s, const char *body, int code,
                          const char *what)
{
    char *out = (char *)"untouched";
    mr_error err;

    script(fx, body);
    assert_int_equal(run(fx, timeout_s, &out, &err), code);
    assert_null(out);
    if (strstr(err.msg, what) == NULL)
        fail_msg("error '%s' does not mention '%s'", err.msg, what);
    assert_non_null(strstr(err.msg, "cmd.sh"));     /* names the program */
    assert_null(strstr(err.msg, "SECRETVALUE"));    /* never what it printed */
    assert_null(strchr(err.msg, '\n'));
}

static void expect_fail(struct fixture *fx, const char *body, int code, const char *what)
{
    expect_fail_t(fx, 5, body, code, what);
}

static void test_prints_token(void **state)
{
    struct fixture *fx = *state;
    char *out = NULL;
    mr_error err;

    /* argv arrives as words (the space inside "arg one" is not a separator). */
    script(fx, "[ \"$1\" = 'arg one' ] && [ $# -eq 1 ] || exit 9\nprintf 'eyJ0.abc-_~+/==\\r\\n'");
    assert_int_equal(run(fx, 5, &out, &err), 0);
    assert_string_equal(out, "eyJ0.abc-_~+/==");
    secret_free(out);

    /* Trailing blanks go, inner ones (a password may have them) stay. */
    script(fx, "printf 'pass word  \\n'");
    assert_int_equal(run(fx, 5, &out, &err), 0);
    assert_string_equal(out, "pass word");
    secret_free(out);
}

static void test_failures(void **state)
{
    struct fixture *fx = *state;

    expect_fail(fx, "echo SECRETVALUE; exit 3", MR_E_AUTH, "exit status 3");
    expect_fail(fx, "exit 0", MR_E_AUTH, "printed nothing");
    expect_fail(fx, "printf '\\n  \\n'", MR_E_AUTH, "printed nothing");
    expect_fail(fx, "printf 'SECRETVALUE\\nsecond\\n'", MR_E_AUTH, "more than one line");
    expect_fail(fx, "printf 'SECRET\\001VALUE\\n'", MR_E_AUTH, "control characters");
    expect_fail(fx, "echo SECRETVALUE; kill -9 $$", MR_E_AUTH, "signal 9");
    /* More than the cap: stopped, not read on forever. */
    expect_fail(fx, "head -c 200000 /dev/zero | tr '\\0' 'A'", MR_E_LIMIT, "more than 65536");
}

static void test_timeout_kills_group(void **state)
{
    struct fixture *fx = *state;
    char pidfile[700], body[1200];
    struct timespec t0, t1;
    size_t len = 0;
    unsigned char *pid_text;
    long child;

    /* The script's own child (sleep) must die with it: it is in the same process group. */
    snprintf(pidfile, sizeof pidfile, "%s/child.pid", fx->dir);
    snprintf(body, sizeof body, "sleep 30 & echo $! > %s\nwait", pidfile);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_fail_t(fx, 1, body, MR_E_TIMEOUT, "did not finish within 1 s");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 5);
    pid_text = th_read_file(pidfile, &len);
    assert_non_null(pid_text);
    child = strtol((char *)pid_text, NULL, 10);
    free(pid_text);
    assert_true(child > 0);
    {
        /* Killed, and reaped by init (or a zombie of ours for a moment): not running. */
        char path[64], stat[256] = "";
        FILE *f;
        for (int i = 0; i < 100; i++) {
            snprintf(path, sizeof path, "/proc/%ld/stat", child);
            f = fopen(path, "r");
            if (f == NULL)
                break;
            if (fgets(stat, sizeof stat, f) == NULL)
                stat[0] = '\0';
            fclose(f);
            if (strstr(stat, ") Z ") != NULL)
                break;
            usleep(20000);
            stat[0] = '\0';
        }
        assert_true(stat[0] == '\0' || strstr(stat, ") Z ") != NULL);
    }
}

static void test_timeout_value(void **state)
{
    struct fixture *fx = *state;
    char *out = NULL;
    mr_error err;

    script(fx, "sleep 10; echo late");
    assert_int_equal(run(fx, 1, &out, &err), MR_E_TIMEOUT);
    assert_null(out);
    assert_non_null(strstr(err.msg, "within 1 s"));
}

/* What the child sees of mailret: an allow-listed environment, stdin at EOF, no
 * descriptor beyond 0-2. */
static void test_child_sees_little(void **state)
{
    struct fixture *fx = *state;
    char *out = NULL, report[700];
    unsigned char *text;
    size_t len;
    int leaked;
    mr_error err;

    setenv("MAILRET_IMAP_PASSWORD", "hunter2-should-not-pass", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "x", 1);
    setenv("MAILRET_TOKEN_TENANT", "contoso", 1);
    setenv("HTTPS_PROXY", "http://127.0.0.1:3128", 1);
    {
        /* A descriptor of ours that is not close-on-exec must still not reach the child. */
        char marker[700];
        snprintf(marker, sizeof marker, "%s/leak-marker", fx->dir);
        assert_int_equal(th_write_file(marker, "x", 1), 0);
        leaked = open(marker, O_RDONLY);
        assert_true(leaked > 2);
    }

    snprintf(report, sizeof report, "%s/report", fx->dir);
    {
        char body[2000];
        snprintf(body, sizeof body,
                 "{ env | sort; echo FDS; ls -l /proc/$$/fd/; echo STDIN; cat; echo END; } > %s\n"
                 "echo token", report);
        script(fx, body);
    }
    assert_int_equal(run(fx, 5, &out, &err), 0);
    assert_string_equal(out, "token");
    secret_free(out);
    close(leaked);
    unsetenv("MAILRET_IMAP_PASSWORD");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("MAILRET_TOKEN_TENANT");
    unsetenv("HTTPS_PROXY");

    text = th_read_file(report, &len);
    assert_non_null(text);
    assert_null(strstr((char *)text, "hunter2"));
    assert_null(strstr((char *)text, "AWS_SECRET"));
    assert_non_null(strstr((char *)text, "MAILRET_TOKEN_TENANT=contoso"));
    assert_non_null(strstr((char *)text, "HTTPS_PROXY=http://127.0.0.1:3128"));
    {
        char *fds = strstr((char *)text, "FDS\n"), *end = strstr((char *)text, "STDIN\n");
        assert_non_null(fds);
        assert_non_null(end);
        *end = '\0';
        assert_non_null(strstr(fds, "-> ")); /* the listing worked: 0-2 are there */
        assert_null(strstr(fds, "leak-marker"));
        *end = 'S';
        /* and stdin was empty: END follows STDIN at once */
        assert_non_null(strstr((char *)text, "STDIN\nEND\n"));
    }
    free(text);
}

static void test_not_found(void **state)
{
    char *argv[] = { (char *)"/nonexistent/get-token", NULL };
    char *out = NULL;
    mr_error err;

    (void)state;
    assert_int_equal(secret_command_run(argv, 5, &out, &err), MR_E_NOTFOUND);
    assert_null(out);
    assert_non_null(strstr(err.msg, "get-token"));
}

static void test_parse_words(void **state)
{
    char **argv = NULL;
    mr_error err;

    (void)state;
    assert_int_equal(secret_command_parse("  a\t'b c'  \"d\\\\e\" f\\ g ''x", &argv, &err), 0);
    assert_string_equal(argv[0], "a");
    assert_string_equal(argv[1], "b c");
    assert_string_equal(argv[2], "d\\e");
    assert_string_equal(argv[3], "f g");
    assert_string_equal(argv[4], "x");
    assert_null(argv[5]);
    secret_command_free(argv);
    /* An empty quoted word is a word (an empty argument), but not as the program. */
    assert_int_equal(secret_command_parse("prog ''", &argv, &err), 0);
    assert_string_equal(argv[1], "");
    assert_null(argv[2]);
    secret_command_free(argv);
    assert_int_equal(secret_command_parse("   ", &argv, &err), MR_E_CONFIG);
    assert_null(argv);
    {
        char many[400] = "";
        for (int i = 0; i < 65; i++)
            strcat(many, "w ");
        assert_int_equal(secret_command_parse(many, &argv, &err), MR_E_CONFIG);
        assert_non_null(strstr(err.msg, "more than 64 words"));
    }
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_prints_token), T(test_failures), T(test_timeout_kills_group),
        T(test_timeout_value), T(test_child_sees_little), T(test_not_found),
        T(test_parse_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
