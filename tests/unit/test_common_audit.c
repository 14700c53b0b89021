/* test_common_audit.c — the hash-chained audit log (common/audit.h): appends, every kind
 * of tampering, interrupted appends and concurrent appenders in separate processes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "common/audit.h"
#include "helpers/test_helpers.h"

struct fixture {
    char *dir;
    char path[512];
    char head[600];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL || (fx->dir = th_tempdir("mraudit")) == NULL)
        return -1;
    snprintf(fx->path, sizeof fx->path, "%s/audit.log", fx->dir);
    snprintf(fx->head, sizeof fx->head, "%s/audit.log.head", fx->dir);
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

static void append_n(const char *path, int n, const char *tag)
{
    audit_log *log = NULL;
    mr_error err;
    char num[32];

    assert_int_equal(audit_open(&log, path, &err), 0);
    for (int i = 0; i < n; i++) {
        struct audit_field f[] = { { "batch", tag }, { "n", num } };
        snprintf(num, sizeof num, "%d", i);
        if (audit_append(log, "test.event", f, 2, &err) != 0)
            fail_msg("append %d: %s", i, err.msg);
    }
    audit_close(log);
}

/* Split a file into lines (each keeps its '\n'); returns count. */
static size_t read_lines(const char *path, char ***out)
{
    size_t len, n = 0;
    char *text = (char *)th_read_file(path, &len);
    char **lines = NULL;
    char *p = text;

    assert_non_null(text);
    while (p < text + len) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        size_t l = nl ? (size_t)(nl - p) + 1 : (size_t)(text + len - p);
        lines = realloc(lines, (n + 1) * sizeof *lines);
        lines[n] = strndup(p, l);
        n++;
        p += l;
    }
    free(text);
    *out = lines;
    return n;
}

static void write_lines(const char *path, char **lines, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        fputs(lines[i], f);
    fclose(f);
}

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

static int verify(const char *path, size_t *n, mr_error *err)
{
    mr_error_clear(err);
    return audit_verify(path, n, err);
}

static void test_append_and_format(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    size_t n = 99;
    char **lines;
    json_t *rec;
    struct passwd *pw = getpwuid(geteuid());
    struct stat st;

    /* an empty, never-written log verifies */
    append_n(fx->path, 0, "x");
    assert_int_equal(verify(fx->path, &n, &err), 0);
    assert_int_equal(n, 0);

    append_n(fx->path, 3, "2026-11-abc");
    assert_int_equal(verify(fx->path, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(read_lines(fx->path, &lines), 3);
    rec = json_loads(lines[0], 0, NULL);
    assert_non_null(rec);
    assert_int_equal(json_integer_value(json_object_get(rec, "seq")), 1);
    assert_string_equal(json_string_value(json_object_get(rec, "event")), "test.event");
    assert_string_equal(json_string_value(json_object_get(rec, "batch")), "2026-11-abc");
    assert_string_equal(json_string_value(json_object_get(rec, "prev")),
                        "0000000000000000000000000000000000000000000000000000000000000000");
    assert_non_null(pw);
    assert_string_equal(json_string_value(json_object_get(rec, "user")), pw->pw_name);
    assert_int_equal(strlen(json_string_value(json_object_get(rec, "time"))), 20);
    /* key order as documented: seq first, prev last */
    assert_true(strncmp(lines[0], "{\"seq\":1,\"time\":\"", 17) == 0);
    assert_non_null(strstr(lines[0], "\",\"prev\":\"0000"));
    json_decref(rec);
    free_lines(lines, 3);
    assert_int_equal(stat(fx->head, &st), 0);
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_mode & 0007, 0);
}

static void test_bad_fields_and_exact_values(void **state)
{
    struct fixture *fx = *state;
    audit_log *log = NULL;
    mr_error err;
    struct audit_field reserved[] = { { "prev", "x" } };
    struct audit_field twice[] = { { "a", "1" }, { "a", "2" } };
    struct audit_field exact[] = { { "batch", "20261123T100000Z-23456789" },
                                   { "bytes", "52428800" }, { "uidvalidity", "1712345678" },
                                   { "empty", "" } };
    unsigned char *text;
    size_t n;

    assert_int_equal(audit_open(&log, fx->path, &err), 0);
    assert_int_equal(audit_append(log, "x", reserved, 1, &err), MR_E_INVALID);
    assert_int_equal(audit_append(log, "x", twice, 2, &err), MR_E_INVALID);
    assert_int_equal(audit_append(log, "", NULL, 0, &err), MR_E_INVALID);
    assert_int_equal(audit_append(log, "login jens@example.dk", NULL, 0, &err), MR_E_INVALID);
    {
        struct audit_field badkey[] = { { "a b", "1" } };
        assert_int_equal(audit_append(log, "x", badkey, 1, &err), MR_E_INVALID);
    }
    assert_int_equal(audit_append(log, "x", exact, 4, &err), 0);
    audit_close(log);
    /* values are evidence: stored exactly, even where they look like a phone or CPR */
    text = th_read_file(fx->path, NULL);
    assert_non_null(strstr((char *)text, "\"batch\":\"20261123T100000Z-23456789\","
                                         "\"bytes\":\"52428800\",\"uidvalidity\":\"1712345678\","
                                         "\"empty\":\"\""));
    free(text);
    assert_int_equal(verify(fx->path, &n, &err), 0);
    assert_int_equal(n, 1);     /* the refused appends left nothing */
}

static void test_edited_record(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    char **lines;
    size_t n;

    append_n(fx->path, 5, "b1");
    n = read_lines(fx->path, &lines);
    /* change one byte of record 3's payload, keeping valid JSON */
    {
        char *p = strstr(lines[2], "\"b1\"");
        assert_non_null(p);
        p[2] = '2';
    }
    write_lines(fx->path, lines, n);
    free_lines(lines, n);
    assert_int_equal(verify(fx->path, NULL, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "line 4"));
    assert_non_null(strstr(err.msg, "line 3 edited"));
}

static void test_edited_every_byte(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    size_t len;
    unsigned char *orig;

    append_n(fx->path, 3, "b");
    orig = th_read_file(fx->path, &len);
    /* any single changed byte anywhere is detected */
    for (size_t i = 0; i < len; i++) {
        unsigned char *copy = malloc(len);
        memcpy(copy, orig, len);
        copy[i] ^= 0x01;
        assert_int_equal(th_write_file(fx->path, copy, len), 0);
        free(copy);
        if (verify(fx->path, NULL, &err) == 0)
            fail_msg("flipping byte %zu went unnoticed", i);
    }
    assert_int_equal(th_write_file(fx->path, orig, len), 0);
    assert_int_equal(verify(fx->path, NULL, &err), 0);
    free(orig);
}

static void test_edited_last_record(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    char **lines;
    size_t n;

    append_n(fx->path, 4, "b1");
    n = read_lines(fx->path, &lines);
    strstr(lines[3], "\"b1\"")[2] = '9';
    write_lines(fx->path, lines, n);
    free_lines(lines, n);
    assert_int_equal(verify(fx->path, NULL, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "line 4"));
}

static void test_removed_middle(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    char **lines;
    size_t n;

    append_n(fx->path, 5, "b");
    n = read_lines(fx->path, &lines);
    free(lines[2]);
    memmove(lines + 2, lines + 3, 2 * sizeof *lines);
    write_lines(fx->path, lines, n - 1);
    free_lines(lines, n - 1);
    assert_int_equal(verify(fx->path, NULL, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "line 3"));
    assert_non_null(strstr(err.msg, "removed"));
}

static void test_removed_tail(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    char **lines;
    size_t n;
    audit_log *log = NULL;

    append_n(fx->path, 5, "b");
    n = read_lines(fx->path, &lines);
    write_lines(fx->path, lines, n - 2);    /* the chain itself is still consistent */
    free_lines(lines, n);
    assert_int_equal(verify(fx->path, NULL, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "removed from the end"));
    assert_non_null(strstr(err.msg, "line 3"));
    /* and appending on top of a cut log is refused */
    assert_int_equal(audit_open(&log, fx->path, &err), 0);
    assert_int_equal(audit_append(log, "x", NULL, 0, &err), MR_E_TAMPERED);
    audit_close(log);
}

static void test_reordered(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    char **lines, *tmp;
    size_t n;

    append_n(fx->path, 5, "b");
    n = read_lines(fx->path, &lines);
    tmp = lines[1];
    lines[1] = lines[2];
    lines[2] = tmp;
    write_lines(fx->path, lines, n);
    free_lines(lines, n);
    assert_int_equal(verify(fx->path, NULL, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "line 2"));
    assert_non_null(strstr(err.msg, "reordered"));
}

static void test_broken_json(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    char **lines;
    size_t n;

    append_n(fx->path, 4, "b");
    n = read_lines(fx->path, &lines);
    lines[1][strlen(lines[1]) - 2] = ',';   /* the closing brace */
    write_lines(fx->path, lines, n);
    free_lines(lines, n);
    assert_int_equal(verify(fx->path, NULL, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "line 2"));
    assert_non_null(strstr(err.msg, "JSON"));
}

static void test_missing_head(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    audit_log *log = NULL;

    append_n(fx->path, 2, "b");
    assert_int_equal(unlink(fx->head), 0);
    assert_int_equal(verify(fx->path, NULL, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "head"));
    assert_non_null(strstr(err.msg, "missing"));
    assert_int_equal(audit_open(&log, fx->path, &err), 0);
    assert_int_equal(audit_append(log, "x", NULL, 0, &err), MR_E_TAMPERED);
    audit_close(log);
    assert_int_equal(verify("/nonexistent/audit.log", NULL, &err), MR_E_NOTFOUND);
}

/* A crash between the log fsync and the head write: accepted and adopted. */
/* On a fresh host the state directory does not exist yet: opening the log creates it,
 * private (0700), and the first record verifies. */
static void test_open_creates_private_dir(void **state)
{
    struct fixture *fx = *state;
    char path[700], dir[600];
    audit_log *log = NULL;
    struct stat st;
    mr_error err;
    size_t n = 0;

    snprintf(dir, sizeof dir, "%s/new/state", fx->dir);
    snprintf(path, sizeof path, "%s/audit.log", dir);
    assert_int_equal(audit_open(&log, path, &err), 0);
    assert_int_equal(audit_append(log, "test.first", NULL, 0, &err), 0);
    audit_close(log);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(audit_verify(path, &n, &err), 0);
    assert_int_equal(n, 1);
}

static void test_interrupted_append(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    size_t hlen, n;
    unsigned char *head;

    append_n(fx->path, 2, "b");
    head = th_read_file(fx->head, &hlen);
    append_n(fx->path, 1, "b");
    assert_int_equal(th_write_file(fx->head, head, hlen), 0);     /* head one behind */
    assert_int_equal(verify(fx->path, &n, &err), 0);
    assert_int_equal(n, 3);
    append_n(fx->path, 1, "b");
    assert_int_equal(verify(fx->path, &n, &err), 0);
    assert_int_equal(n, 4);
    free(head);
}

/* A crash in the middle of writing a line: the torn bytes are cut off on next append. */
static void test_torn_append(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    size_t n;
    FILE *f;

    append_n(fx->path, 2, "b");
    f = fopen(fx->path, "ab");
    fputs("{\"seq\":3,\"time\":\"20", f);
    fclose(f);
    assert_int_equal(verify(fx->path, NULL, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "line 3"));
    append_n(fx->path, 1, "b");
    assert_int_equal(verify(fx->path, &n, &err), 0);
    assert_int_equal(n, 3);
}

static void test_concurrent_processes(void **state)
{
    struct fixture *fx = *state;
    mr_error err;
    size_t n;
    pid_t pids[2];

    for (int p = 0; p < 2; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            audit_log *log = NULL;
            mr_error cerr;
            int bad = 0;
            if (audit_open(&log, fx->path, &cerr) != 0)
                _exit(2);
            for (int i = 0; i < 50; i++) {
                struct audit_field f[] = { { "proc", p ? "b" : "a" } };
                if (audit_append(log, "concurrent", f, 1, &cerr) != 0) {
                    fprintf(stderr, "child %d: %s\n", p, cerr.msg);
                    bad = 1;
                    break;
                }
            }
            audit_close(log);
            _exit(bad);
        }
    }
    for (int p = 0; p < 2; p++) {
        int status;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    if (verify(fx->path, &n, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(n, 100);
}

/* audit_head names the last record, and audit_verify_anchor holds the log to a head:
 * the intact log passes, a different hash or a seq past the end is refused.  The oracle
 * is an independent SHA-256 of the record's line (openssl dgst in a child). */
static void test_head_and_anchor(void **state)
{
    struct fixture *fx = *state;
    audit_log *log = NULL;
    long long seq = -1;
    char hash[65], want[65] = "", cmd[800], bad[65];
    mr_error err;
    FILE *p;

    assert_int_equal(audit_open(&log, fx->path, &err), 0);
    assert_int_equal(audit_head(log, &seq, hash, &err), 0);
    assert_int_equal(seq, 0);
    assert_string_equal(hash, "0000000000000000000000000000000000000000000000000000000000000000");
    audit_close(log);
    append_n(fx->path, 4, "a");
    assert_int_equal(audit_open(&log, fx->path, &err), 0);
    assert_int_equal(audit_head(log, &seq, hash, &err), 0);
    audit_close(log);
    assert_int_equal(seq, 4);
    snprintf(cmd, sizeof cmd, "sed -n 3p '%s' | tr -d '\\n' | sha256sum | cut -c1-64", fx->path);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(want, sizeof want, p));
    pclose(p);
    assert_int_equal(audit_verify_anchor(fx->path, 3, want, NULL, &err), 0);
    assert_int_equal(audit_verify_anchor(fx->path, 4, hash, NULL, &err), 0);
    memcpy(bad, want, sizeof bad);
    bad[0] = bad[0] == 'a' ? 'b' : 'a';
    assert_int_equal(audit_verify_anchor(fx->path, 3, bad, NULL, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "rewritten"));
    assert_int_equal(audit_verify_anchor(fx->path, 6, want, NULL, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "records removed"));
    assert_int_equal(audit_verify_anchor(fx->path, 0, want, NULL, &err), MR_E_INVALID);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_append_and_format), T(test_bad_fields_and_exact_values), T(test_edited_record),
        T(test_edited_every_byte), T(test_edited_last_record), T(test_removed_middle),
        T(test_removed_tail), T(test_reordered), T(test_broken_json), T(test_missing_head), T(test_open_creates_private_dir),
        T(test_interrupted_append), T(test_torn_append), T(test_concurrent_processes),
        T(test_head_and_anchor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
