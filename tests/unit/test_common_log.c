/* test_common_log.c — the identifier scrubber and the logger (common/log.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "helpers/test_helpers.h"

/* Scrub `in` with room to spare and compare with `want`; returns the redaction count. */
static size_t scrub_expect(const char *in, const char *want)
{
    char buf[1024];
    size_t n;

    snprintf(buf, sizeof buf, "%s", in);
    n = log_scrub_buf(buf, sizeof buf);
    if (strcmp(buf, want) != 0)
        fail_msg("scrub(\"%s\")\n  got  \"%s\"\n  want \"%s\"", in, buf, want);
    return n;
}

static void test_scrub_emails(void **state)
{
    (void)state;
    assert_int_equal(scrub_expect("from jens.hansen@example.dk to x", "from [redacted] to x"), 1);
    assert_int_equal(scrub_expect("<a@b.dk>", "<[redacted]>"), 1);
    assert_int_equal(scrub_expect("mailto:first+tag@sub.example.co.uk.", "mailto:[redacted]."), 1);
    assert_int_equal(scrub_expect("\"Jens Hansen\"@example.dk", "[redacted]"), 1);
    assert_int_equal(scrub_expect("x@[192.0.2.1] y", "[redacted] y"), 1);
    assert_int_equal(scrub_expect("s\xc3\xb8ren@k\xc3\xb8""benhavn.dk", "[redacted]"), 1);
    assert_int_equal(scrub_expect("a@b.dk,c@d.dk", "[redacted],[redacted]"), 2);
    /* digits in the local part are part of the address, not a phone number */
    assert_int_equal(scrub_expect("23456789@sms.example.dk", "[redacted]"), 1);
}

static void test_scrub_email_non_hits(void **state)
{
    (void)state;
    assert_int_equal(scrub_expect("user@ failed", "user@ failed"), 0);
    assert_int_equal(scrub_expect("@home and @ alone", "@home and @ alone"), 0);
    assert_int_equal(scrub_expect("mailbox INBOX uid 42", "mailbox INBOX uid 42"), 0);
}

static void test_scrub_cpr(void **state)
{
    (void)state;
    assert_int_equal(scrub_expect("cpr 010190-1234 here", "cpr [redacted] here"), 1);
    assert_int_equal(scrub_expect("cpr 0101901234", "cpr [redacted]"), 1);
    assert_int_equal(scrub_expect("CPR:311299-0001.", "CPR:[redacted]."), 1);
    assert_int_equal(scrub_expect("(290200-4321)", "([redacted])"), 1);
    assert_int_equal(scrub_expect("a 0101901234, b 1502781234", "a [redacted], b [redacted]"), 2);
    /* modulus-11 is not required: valid date is enough */
    assert_int_equal(scrub_expect("0101010000", "[redacted]"), 1);
}

static void test_scrub_cpr_non_hits(void **state)
{
    (void)state;
    /* invalid day or month */
    assert_int_equal(scrub_expect("3201901234", "3201901234"), 0);
    assert_int_equal(scrub_expect("0013901234", "0013901234"), 0);
    assert_int_equal(scrub_expect("300290-1234", "300290-1234"), 0);
    assert_int_equal(scrub_expect("000190-1234", "000190-1234"), 0);
    /* inside longer digit runs or hex strings */
    assert_int_equal(scrub_expect("01019012345678901234", "01019012345678901234"), 0);
    assert_int_equal(scrub_expect("x 12345678901234567890 y", "x 12345678901234567890 y"), 0);
    assert_int_equal(scrub_expect("sha256 ab0101901234cd", "sha256 ab0101901234cd"), 0);
    assert_int_equal(scrub_expect("90101901234", "90101901234"), 0);
    assert_int_equal(scrub_expect("010190-12345", "010190-12345"), 0);
}

static void test_scrub_phones(void **state)
{
    (void)state;
    assert_int_equal(scrub_expect("ring 23456789", "ring [redacted]"), 1);
    assert_int_equal(scrub_expect("ring 23 45 67 89 i dag", "ring [redacted] i dag"), 1);
    assert_int_equal(scrub_expect("ring 2345 6789.", "ring [redacted]."), 1);
    assert_int_equal(scrub_expect("tel +4523456789", "tel [redacted]"), 1);
    assert_int_equal(scrub_expect("tel +45 23 45 67 89", "tel [redacted]"), 1);
    assert_int_equal(scrub_expect("tel 0045 2345 6789", "tel [redacted]"), 1);
    assert_int_equal(scrub_expect("tel 004523456789", "tel [redacted]"), 1);
    assert_int_equal(scrub_expect("tel:99887766", "tel:[redacted]"), 1);
}

static void test_scrub_phone_non_hits(void **state)
{
    (void)state;
    /* Danish subscriber numbers never start with 0 or 1 */
    assert_int_equal(scrub_expect("n 12345678", "n 12345678"), 0);
    /* 7 and 9 digits */
    assert_int_equal(scrub_expect("n 2345678 n 234567891", "n 2345678 n 234567891"), 0);
    /* mailret's own numbers */
    assert_int_equal(scrub_expect("fetched uid 23456789", "fetched uid 23456789"), 0);
    assert_int_equal(scrub_expect("UIDVALIDITY=1701234567 changed",
                                  "UIDVALIDITY=1701234567 changed"), 0);
    assert_int_equal(scrub_expect("message of 67108864 bytes", "message of 67108864 bytes"), 0);
    assert_int_equal(scrub_expect("size: 52428800", "size: 52428800"), 0);
    /* timestamps, dates, durations */
    assert_int_equal(scrub_expect("2026-11-23T10:00:00Z", "2026-11-23T10:00:00Z"), 0);
    assert_int_equal(scrub_expect("at 2026-03-29 02:30:00 +0100", "at 2026-03-29 02:30:00 +0100"), 0);
    assert_int_equal(scrub_expect("took 3.25 s, 1048576 B/s", "took 3.25 s, 1048576 B/s"), 0);
    assert_int_equal(scrub_expect("batch 2026-11-3f2a9c vol-0001.p7m",
                                  "batch 2026-11-3f2a9c vol-0001.p7m"), 0);
    assert_int_equal(scrub_expect("id 23456789abcdef", "id 23456789abcdef"), 0);
    /* ids joined by '-' */
    assert_int_equal(scrub_expect("batch 20261123T100000Z-23456789 done",
                                  "batch 20261123T100000Z-23456789 done"), 0);
    assert_int_equal(scrub_expect("vol-0101901234 x", "vol-0101901234 x"), 0);
    assert_int_equal(scrub_expect("key 23456789-ab", "key 23456789-ab"), 0);
    /* but a CPR's own dash, and a dash before a space, still count */
    assert_int_equal(scrub_expect("cpr 010190-1234 - ok", "cpr [redacted] - ok"), 1);
    assert_int_equal(scrub_expect("23456789 - x", "[redacted] - x"), 1);
}

static void test_scrub_in_place_never_grows(void **state)
{
    char line[] = "a 23456789 b x@y.dk c 0101901234";
    size_t before = strlen(line);

    (void)state;
    assert_int_equal(log_scrub(line), 3);
    assert_true(strlen(line) <= before);
    assert_string_equal(line, "a [redact] b [reda] c [redacted]");
}

static void test_scrub_tight_buffer(void **state)
{
    char buf[24] = "call 23456789 now";      /* 17 chars; "[redacted]" would need 20 */

    (void)state;
    assert_int_equal(log_scrub_buf(buf, 19), 1);
    assert_string_equal(buf, "call [redact] now");
    assert_int_equal(log_scrub_buf(NULL, 10), 0);
}

static void test_level_parse(void **state)
{
    enum log_level l;
    mr_error err;

    (void)state;
    assert_int_equal(log_level_parse("debug", &l, &err), 0);
    assert_int_equal(l, LOG_LEVEL_DEBUG);
    assert_int_equal(log_level_parse("warn", &l, &err), 0);
    assert_int_equal(l, LOG_LEVEL_WARN);
    assert_int_equal(log_level_parse("loud", &l, &err), MR_E_INVALID);
    assert_non_null(strstr(err.msg, "loud"));
}

static void test_log_file_levels_and_scrub(void **state)
{
    char *dir = th_tempdir("mrlog");
    char path[512];
    mr_log *log = NULL;
    mr_error err;
    unsigned char *text;
    struct stat st;

    (void)state;
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/mailret.log", dir);
    assert_int_equal(log_open(&log, LOG_LEVEL_INFO, path, &err), 0);
    log_info(log, "hello %d", 42);
    log_debug(log, "hidden debug");
    log_error(log, "sender %s rejected\nforged 2026-01-01T00:00:00Z mailret[1] ERROR x",
              "jens@example.dk");
    log_warn(log, "cpr %s", "010190-1234");
    log_close(log);
    log_msg(NULL, LOG_LEVEL_ERROR, "no-op");

    assert_int_equal(stat(path, &st), 0);
    /* 0640 at most (the umask may take more away) */
    assert_int_equal(st.st_mode & 0777 & ~0640u, 0);
    text = th_read_file(path, NULL);
    assert_non_null(text);
    assert_non_null(strstr((char *)text, " INFO hello 42\n"));
    assert_null(strstr((char *)text, "hidden debug"));
    assert_null(strstr((char *)text, "jens@example.dk"));
    assert_null(strstr((char *)text, "010190-1234"));
    assert_non_null(strstr((char *)text, " ERROR sender [redacted] rejected forged"));
    assert_non_null(strstr((char *)text, " WARN cpr [redacted]\n"));
    /* exactly three lines, each with the prefix */
    {
        int lines = 0;
        for (char *p = (char *)text; *p; p++)
            lines += *p == '\n';
        assert_int_equal(lines, 3);
        assert_true(strncmp((char *)text, "20", 2) == 0);
        assert_non_null(strstr((char *)text, "Z mailret["));
    }
    free(text);
    th_rmtree(dir);
    free(dir);
}

static void test_log_long_line(void **state)
{
    char *dir = th_tempdir("mrlog");
    char path[512];
    char *big = malloc(10000);
    mr_log *log = NULL;
    mr_error err;
    unsigned char *text;
    size_t len;

    (void)state;
    assert_non_null(big);
    memset(big, 'x', 9999);
    big[9999] = '\0';
    memcpy(big + 5000, " 23456789 ", 10);
    snprintf(path, sizeof path, "%s/l.log", dir);
    assert_int_equal(log_open(&log, LOG_LEVEL_DEBUG, path, &err), 0);
    log_debug(log, "%s", big);
    log_close(log);
    text = th_read_file(path, &len);
    assert_non_null(text);
    assert_null(strstr((char *)text, "23456789"));
    assert_non_null(strstr((char *)text, " [redacted] "));
    assert_true(len > 9999);
    assert_int_equal(text[len - 1], '\n');
    free(text);
    free(big);
    th_rmtree(dir);
    free(dir);
}

struct thread_arg {
    mr_log *log;
    int id;
};

static void *log_thread(void *p)
{
    struct thread_arg *a = p;
    for (int i = 0; i < 200; i++)
        log_info(a->log, "thread %d line %d %s", a->id, i,
                 "padding-padding-padding-padding-padding-padding-padding-padding");
    return NULL;
}

static void test_log_threads(void **state)
{
    char *dir = th_tempdir("mrlog");
    char path[512];
    mr_log *log = NULL;
    mr_error err;
    pthread_t th[4];
    struct thread_arg args[4];
    unsigned char *text;
    int lines = 0;

    (void)state;
    snprintf(path, sizeof path, "%s/t.log", dir);
    assert_int_equal(log_open(&log, LOG_LEVEL_INFO, path, &err), 0);
    for (int i = 0; i < 4; i++) {
        args[i].log = log;
        args[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, log_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    log_close(log);
    text = th_read_file(path, NULL);
    assert_non_null(text);
    for (char *line = strtok((char *)text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        /* every line whole: prefix, level, message with its padding end */
        assert_non_null(strstr(line, " mailret["));
        assert_non_null(strstr(line, "] INFO thread "));
        assert_non_null(strstr(line, "padding-padding"));
        assert_int_equal(strcmp(line + strlen(line) - 7, "padding"), 0);
        lines++;
    }
    assert_int_equal(lines, 800);
    free(text);
    th_rmtree(dir);
    free(dir);
}

static void test_log_open_errors(void **state)
{
    mr_log *log = NULL;
    mr_error err;

    (void)state;
    assert_int_equal(log_open(&log, LOG_LEVEL_INFO, "/nonexistent-dir/x.log", &err), MR_E_IO);
    assert_null(log);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x.log"));
    assert_int_equal(log_open(&log, LOG_LEVEL_INFO, "-", &err), 0);
    log_close(log);
}

/* Log one line per level to stderr redirected into path, with JOURNAL_STREAM as given
 * (NULL = unset, "SELF" = the device:inode of that file, "PIPE" = of an unrelated pipe);
 * returns the file's text. */
static char *log_to_stderr(const char *path, const char *journal_stream)
{
    int saved = dup(STDERR_FILENO), fd, p[2] = { -1, -1 };
    char env[64];
    struct stat st;
    mr_log *log = NULL;
    mr_error err;

    assert_true(saved >= 0);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
    if (journal_stream == NULL) {
        unsetenv("JOURNAL_STREAM");
    } else if (strcmp(journal_stream, "SELF") == 0 || strcmp(journal_stream, "PIPE") == 0) {
        if (strcmp(journal_stream, "PIPE") == 0) {
            assert_int_equal(pipe(p), 0);
            assert_int_equal(fstat(p[0], &st), 0);
        } else {
            assert_int_equal(fstat(STDERR_FILENO, &st), 0);
        }
        snprintf(env, sizeof env, "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
        setenv("JOURNAL_STREAM", env, 1);
    } else {
        setenv("JOURNAL_STREAM", journal_stream, 1);
    }
    assert_int_equal(log_open(&log, LOG_LEVEL_DEBUG, NULL, &err), 0);
    log_error(log, "e-line cpr 010190-1234");
    log_warn(log, "w-line");
    log_info(log, "i-line");
    log_debug(log, "d-line");
    log_close(log);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    if (p[0] >= 0) {
        close(p[0]);
        close(p[1]);
    }
    unsetenv("JOURNAL_STREAM");
    return (char *)th_read_file(path, NULL);
}

static void test_log_journal_priorities(void **state)
{
    char *dir = th_tempdir("mrlog");
    char path[512], *text;
    static const char *const not_journal[] = { NULL, "PIPE", "", "garbage", "1:2", "1:2x" };

    (void)state;
    snprintf(path, sizeof path, "%s/stderr", dir);
    text = log_to_stderr(path, "SELF");
    assert_non_null(text);
    /* priorities by level; no timestamp or pid (journald adds both); still scrubbed */
    assert_string_equal(text, "<3>ERROR e-line cpr [redacted]\n"
                              "<4>WARN w-line\n"
                              "<6>INFO i-line\n"
                              "<7>DEBUG d-line\n");
    free(text);
    for (size_t i = 0; i < sizeof not_journal / sizeof not_journal[0]; i++) {
        text = log_to_stderr(path, not_journal[i]);
        assert_non_null(text);
        if (strchr(text, '<') != NULL)
            fail_msg("JOURNAL_STREAM=%s: priority prefix in\n%s",
                     not_journal[i] ? not_journal[i] : "(unset)", text);
        /* the usual "TIMESTAMP mailret[pid] LEVEL" lines, four of them */
        assert_non_null(strstr(text, " mailret["));
        assert_non_null(strstr(text, "] ERROR e-line"));
        assert_non_null(strstr(text, "] DEBUG d-line\n"));
        assert_int_equal(text[4], '-');
        free(text);
    }
    assert_int_equal(log_syslog_priority(LOG_LEVEL_ERROR), 3);
    assert_int_equal(log_syslog_priority(LOG_LEVEL_DEBUG), 7);
    th_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scrub_emails),
        cmocka_unit_test(test_scrub_email_non_hits),
        cmocka_unit_test(test_scrub_cpr),
        cmocka_unit_test(test_scrub_cpr_non_hits),
        cmocka_unit_test(test_scrub_phones),
        cmocka_unit_test(test_scrub_phone_non_hits),
        cmocka_unit_test(test_scrub_in_place_never_grows),
        cmocka_unit_test(test_scrub_tight_buffer),
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_log_file_levels_and_scrub),
        cmocka_unit_test(test_log_long_line),
        cmocka_unit_test(test_log_threads),
        cmocka_unit_test(test_log_open_errors),
        cmocka_unit_test(test_log_journal_priorities),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
