/* test_ingest_sinks.c — the state database (lock, per-mailbox state, content dedup,
 * rollback) and the sink drivers: SQLite, Maildir (tmp->new, deterministic names,
 * idempotent) and exec (stdin, environment, non-zero exit = rejected, journal). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "helpers/test_helpers.h"
#include "ingest/sink.h"
#include "ingest/state.h"

static const unsigned char raw[] = "From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n";

static void make_msg(struct sink_message *m, struct route_result *r, enum route_rule rule,
                     uint32_t uid)
{
    memset(r, 0, sizeof *r);
    r->rule = rule;
    if (rule <= ROUTE_CPR)
        strcpy(r->member, "M0007");
    if (rule == ROUTE_CASE)
        strcpy(r->case_id, "2024-00001");
    memset(m, 0, sizeof *m);
    m->account = "acct";
    m->mailbox = "INBOX";
    m->uidvalidity = 99;
    m->uid = uid;
    m->internaldate = 1700000000;
    m->raw = raw;
    m->len = sizeof raw - 1;
    m->sha256_hex = "aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899";
    m->message_id = "<id@x>";
    m->route = r;
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void test_state(void **unused)
{
    char *dir = th_tempdir("test_ingest_state");
    char path[512];
    ingest_state *st, *st2;
    bool found, seen;
    uint32_t uv, last;
    char outcome[16];
    mr_error err;

    (void)unused;
    snprintf(path, sizeof path, "%s/state.db", dir);
    assert_int_equal(state_open(path, &st, &err), 0);
    /* A second run is refused while the first holds the lock. */
    assert_int_equal(state_open(path, &st2, &err), MR_E_STATE);
    assert_non_null(strstr(err.msg, "another ingest is running"));
    assert_int_equal(state_get(st, "a", "INBOX", &found, &uv, &last, &err), 0);
    assert_false(found);
    assert_int_equal(state_begin(st, &err), 0);
    assert_int_equal(state_set(st, "a", "INBOX", 5, 100, &err), 0);
    assert_int_equal(state_seen_add(st, "a", "INBOX", "ff00", 5, 100, "cpr", NULL, &err), 0);
    assert_int_equal(state_commit(st, &err), 0);
    /* A rolled-back batch leaves the state as it was. */
    assert_int_equal(state_begin(st, &err), 0);
    assert_int_equal(state_set(st, "a", "INBOX", 5, 200, &err), 0);
    assert_int_equal(state_seen_add(st, "a", "INBOX", "ee00", 5, 200, "case", NULL, &err), 0);
    state_rollback(st);
    assert_int_equal(state_get(st, "a", "INBOX", &found, &uv, &last, &err), 0);
    assert_true(found);
    assert_int_equal(uv, 5);
    assert_int_equal(last, 100);
    assert_int_equal(state_seen_get(st, "a", "INBOX", "ee00", &seen, outcome, &err), 0);
    assert_false(seen);
    /* Content dedup is per mailbox, whatever the UIDVALIDITY. */
    assert_int_equal(state_seen_get(st, "a", "INBOX", "ff00", &seen, outcome, &err), 0);
    assert_true(seen);
    assert_string_equal(outcome, "cpr");
    assert_int_equal(state_seen_get(st, "a", "Other", "ff00", &seen, outcome, &err), 0);
    assert_false(seen);
    state_close(st);
    /* Lock released on close; state survives reopening. */
    assert_int_equal(state_open(path, &st, &err), 0);
    assert_int_equal(state_get(st, "a", "INBOX", &found, &uv, &last, &err), 0);
    assert_int_equal(last, 100);
    state_close(st);
    th_rmtree(dir);
    free(dir);
}

/* Refusals: recorded by UID, retried (attempts counted, first failure kept, also under a
 * new UIDVALIDITY for the same bytes), cleared on delivery; the read-only view sees
 * exactly the current UIDVALIDITY's rows without taking the ingest lock. */
static void test_state_refused(void **unused)
{
    char *dir = th_tempdir("test_ingest_refused");
    char path[512];
    ingest_state *st;
    struct state_view v;
    uint32_t *uids = NULL;
    size_t n = 0;
    mr_error err;

    (void)unused;
    snprintf(path, sizeof path, "%s/state.db", dir);
    /* No file yet: never ingested. */
    assert_int_equal(state_view_read(path, "a", "INBOX", &v, &err), 0);
    assert_false(v.found);
    assert_int_equal(state_open(path, &st, &err), 0);
    assert_int_equal(state_begin(st, &err), 0);
    assert_int_equal(state_set(st, "a", "INBOX", 5, 30, &err), 0);
    assert_int_equal(state_refused_add(st, "a", "INBOX", 5, 12, "aa11", "case",
                                       "exec sink: command exited with status 1", &err), 0);
    assert_int_equal(state_refused_add(st, "a", "INBOX", 5, 20, "bb22", "none", "r2", &err), 0);
    assert_int_equal(state_refused_add(st, "a", "Other", 5, 12, "cc33", "cpr", "r3", &err), 0);
    assert_int_equal(state_commit(st, &err), 0);
    /* Backdate the first failure, as if it were refused a week ago. */
    assert_int_equal(sqlite3_exec(state_sqlite(st), "UPDATE refused SET first_failed = 1000",
                                  NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(state_refused_add(st, "a", "INBOX", 5, 12, "aa11", "case", "again", &err),
                     0);
    assert_int_equal(state_refused_uids(st, "a", "INBOX", 5, &uids, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(uids[0], 12);
    assert_int_equal(uids[1], 20);
    free(uids);
    /* The view works while the ingest holds its lock. */
    assert_int_equal(state_view_read(path, "a", "INBOX", &v, &err), 0);
    assert_true(v.found);
    assert_int_equal(v.uidvalidity, 5);
    assert_int_equal(v.last_uid, 30);
    assert_int_equal(v.n, 2);
    const struct state_refusal *r = state_view_refusal(&v, 12);
    assert_non_null(r);
    assert_int_equal(r->attempts, 2);
    assert_int_equal(r->first_failed, 1000);
    assert_true(r->last_failed > 1000);
    assert_string_equal(r->reason, "again");
    assert_string_equal(r->rule, "case");
    assert_null(state_view_refusal(&v, 13));
    assert_non_null(state_view_refusal(&v, 20));
    state_view_clear(&v);
    /* UIDVALIDITY 6: the same bytes refused again keep their first failure; the old
     * UIDVALIDITY's rows are not this mailbox's any more once dropped. */
    assert_int_equal(state_set(st, "a", "INBOX", 6, 40, &err), 0);
    assert_int_equal(state_refused_add(st, "a", "INBOX", 6, 3, "aa11", "case", "r", &err), 0);
    assert_int_equal(state_refused_drop_other(st, "a", "INBOX", 6, &err), 0);
    assert_int_equal(state_view_read(path, "a", "INBOX", &v, &err), 0);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.refused[0].uid, 3);
    assert_int_equal(v.refused[0].first_failed, 1000);
    state_view_clear(&v);
    /* Delivered: the row goes; another mailbox's rows stay. */
    assert_int_equal(state_refused_clear(st, "a", "INBOX", 6, 3, &err), 0);
    assert_int_equal(state_refused_uids(st, "a", "INBOX", 6, &uids, &n, &err), 0);
    assert_int_equal(n, 0);
    free(uids);
    assert_int_equal(state_refused_uids(st, "a", "Other", 5, &uids, &n, &err), 0);
    assert_int_equal(n, 1);
    free(uids);
    state_close(st);
    th_rmtree(dir);
    free(dir);
}

static void test_maildir(void **unused)
{
    char *dir = th_tempdir("test_ingest_maildir");
    char path[1024];
    struct sink_message m;
    struct route_result r;
    enum sink_outcome out;
    sink *s;
    mr_error err;

    (void)unused;
    snprintf(path, sizeof path, "%s/md", dir);
    assert_int_equal(sink_maildir_open(path, &s, &err), 0);
    assert_string_equal(sink_name(s), "maildir");
    assert_int_equal(sink_begin(s, &err), 0);
    make_msg(&m, &r, ROUTE_SENDER, 10);
    assert_int_equal(sink_deliver(s, &m, &out, &err), 0);
    assert_int_equal(out, SINK_DELIVERED);
    /* The same message again (a repeated batch) is found, not written twice. */
    assert_int_equal(sink_deliver(s, &m, &out, &err), 0);
    assert_int_equal(out, SINK_DUPLICATE);
    make_msg(&m, &r, ROUTE_NONE, 11);
    assert_int_equal(sink_deliver(s, &m, &out, &err), 0);
    assert_int_equal(out, SINK_DELIVERED);
    make_msg(&m, &r, ROUTE_AUTO, 12);
    assert_int_equal(sink_deliver(s, &m, &out, &err), 0);
    assert_int_equal(sink_commit(s, &err), 0);

    snprintf(path, sizeof path, "%s/md/M0007/new", dir);
    assert_int_equal(count_files(path), 1);
    snprintf(path, sizeof path, "%s/md/M0007/tmp", dir);
    assert_int_equal(count_files(path), 0);
    snprintf(path, sizeof path, "%s/md/_unrouted/new", dir);
    assert_int_equal(count_files(path), 1);
    /* Auto-replies are not stored anywhere. */
    snprintf(path, sizeof path, "%s/md", dir);
    assert_int_equal(count_files(path), 2);
    /* The file holds the exact bytes. */
    {
        char f[1024];
        size_t len;
        snprintf(f, sizeof f, "%s/md/M0007/new/1700000000.M10V99Saabbccddeeff0011.mailret", dir);
        unsigned char *got = th_read_file(f, &len);
        assert_non_null(got);
        assert_int_equal(len, sizeof raw - 1);
        assert_memory_equal(got, raw, len);
        free(got);
    }
    /* A member's folder that cannot be made (a file is in the way) refuses that message
     * only: the sink goes on with the next one. */
    snprintf(path, sizeof path, "%s/md/M0008", dir);
    assert_int_equal(th_write_file(path, "x", 1), 0);
    assert_int_equal(sink_begin(s, &err), 0);
    make_msg(&m, &r, ROUTE_SENDER, 13);
    strcpy(r.member, "M0008");
    mr_error_clear(&err);
    assert_int_equal(sink_deliver(s, &m, &out, &err), 0);
    assert_int_equal(out, SINK_REJECTED);
    assert_non_null(strstr(err.msg, "M0008"));
    make_msg(&m, &r, ROUTE_CASE, 14);
    assert_int_equal(sink_deliver(s, &m, &out, &err), 0);
    assert_int_equal(out, SINK_DELIVERED);
    assert_int_equal(sink_commit(s, &err), 0);
    snprintf(path, sizeof path, "%s/md/M0007/new", dir);
    assert_int_equal(count_files(path), 2);
    sink_close(s);
    th_rmtree(dir);
    free(dir);
}

static void test_exec(void **unused)
{
    char *dir = th_tempdir("test_ingest_exec");
    char cmd[1024], journal[512], path[512];
    struct sink_message m;
    struct route_result r;
    enum sink_outcome out;
    sink *s;
    mr_error err;
    size_t len;
    unsigned char *got;

    (void)unused;
    snprintf(journal, sizeof journal, "%s/exec.db", dir);
    /* The command stores stdin and its environment; it fails for UID 13. */
    snprintf(cmd, sizeof cmd,
             "[ \"$MAILRET_UID\" = 13 ] && exit 3; cat > '%s/msg-'$MAILRET_UID && "
             "printf '%%s|%%s|%%s|%%s' \"$MAILRET_MEMBER\" \"$MAILRET_CASE\" \"$MAILRET_RULE\" "
             "\"$MAILRET_SHA256\" > '%s/env-'$MAILRET_UID; echo to-stdout",
             dir, dir);
    assert_int_equal(sink_exec_open(cmd, journal, 30, &s, &err), 0);
    assert_int_equal(sink_begin(s, &err), 0);
    make_msg(&m, &r, ROUTE_CASE, 12);
    assert_int_equal(sink_deliver(s, &m, &out, &err), 0);
    assert_int_equal(out, SINK_DELIVERED);
    snprintf(path, sizeof path, "%s/msg-12", dir);
    got = th_read_file(path, &len);
    assert_non_null(got);
    assert_int_equal(len, sizeof raw - 1);
    assert_memory_equal(got, raw, len);
    free(got);
    snprintf(path, sizeof path, "%s/env-12", dir);
    got = th_read_file(path, &len);
    assert_non_null(got);
    assert_string_equal((char *)got, "M0007|2024-00001|case|"
                        "aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899");
    free(got);
    /* Journal: the same message is not handed over twice. */
    assert_int_equal(sink_deliver(s, &m, &out, &err), 0);
    assert_int_equal(out, SINK_DUPLICATE);
    /* Non-zero exit: rejected (not fatal), with the status in the message. */
    make_msg(&m, &r, ROUTE_SENDER, 13);
    assert_int_equal(sink_deliver(s, &m, &out, &err), 0);
    assert_int_equal(out, SINK_REJECTED);
    assert_non_null(strstr(err.msg, "status 3"));
    assert_int_equal(sink_commit(s, &err), 0);
    sink_close(s);
    /* The journal outlives the process: a new sink still knows UID 12. */
    assert_int_equal(sink_exec_open(cmd, journal, 30, &s, &err), 0);
    make_msg(&m, &r, ROUTE_CASE, 12);
    assert_int_equal(sink_deliver(s, &m, &out, &err), 0);
    assert_int_equal(out, SINK_DUPLICATE);
    sink_close(s);
    /* A command that ignores stdin and a command that hangs (timeout). */
    assert_int_equal(sink_exec_open("exit 0", journal, 30, &s, &err), 0);
    make_msg(&m, &r, ROUTE_CPR, 20);
    assert_int_equal(sink_deliver(s, &m, &out, &err), 0);
    assert_int_equal(out, SINK_DELIVERED);
    sink_close(s);
    assert_int_equal(sink_exec_open("sleep 30", journal, 1, &s, &err), 0);
    make_msg(&m, &r, ROUTE_CPR, 21);
    assert_int_equal(sink_deliver(s, &m, &out, &err), 0);
    assert_int_equal(out, SINK_REJECTED);
    assert_int_equal(err.code, MR_E_TIMEOUT);
    sink_close(s);
    th_rmtree(dir);
    free(dir);
}

/* The command gets an allow-listed environment: not the IMAP password (password_env),
 * not an OAuth token, not whatever else the service manager set. */
static void test_exec_environment(void **unused)
{
    char *dir = th_tempdir("test_ingest_exec_env");
    char cmd[1024], journal[512], path[512];
    struct sink_message m;
    struct route_result r;
    enum sink_outcome out;
    sink *s;
    mr_error err;
    size_t len;
    char *got;

    (void)unused;
    setenv("MAILRET_IMAP_PASSWORD", "hunter2-secret", 1);
    setenv("OAUTH_TOKEN", "eyJ-secret-token", 1);
    setenv("SOME_OTHER", "leak-me-not", 1);
    setenv("TZ", "Europe/Copenhagen", 1);
    snprintf(journal, sizeof journal, "%s/exec.db", dir);
    snprintf(cmd, sizeof cmd, "cat > /dev/null; env > '%s/env'", dir);
    assert_int_equal(sink_exec_open(cmd, journal, 30, &s, &err), 0);
    assert_int_equal(sink_begin(s, &err), 0);
    make_msg(&m, &r, ROUTE_CASE, 30);
    assert_int_equal(sink_deliver(s, &m, &out, &err), 0);
    assert_int_equal(out, SINK_DELIVERED);
    sink_close(s);
    snprintf(path, sizeof path, "%s/env", dir);
    got = (char *)th_read_file(path, &len);
    assert_non_null(got);
    assert_null(strstr(got, "hunter2-secret"));
    assert_null(strstr(got, "eyJ-secret-token"));
    assert_null(strstr(got, "leak-me-not"));
    assert_non_null(strstr(got, "PATH="));
    assert_non_null(strstr(got, "TZ=Europe/Copenhagen"));
    assert_non_null(strstr(got, "MAILRET_MEMBER=M0007"));
    assert_non_null(strstr(got, "MAILRET_UID=30"));
    /* nothing but the allow-list and our own variables */
    for (char *line = strtok(got, "\n"); line != NULL; line = strtok(NULL, "\n"))
        assert_true(strncmp(line, "MAILRET_", 8) == 0 || strncmp(line, "PATH=", 5) == 0
                    || strncmp(line, "HOME=", 5) == 0 || strncmp(line, "LANG=", 5) == 0
                    || strncmp(line, "LC_", 3) == 0 || strncmp(line, "TZ=", 3) == 0
                    || strncmp(line, "TMPDIR=", 7) == 0 || strncmp(line, "USER=", 5) == 0
                    || strncmp(line, "LOGNAME=", 8) == 0
                    /* set by the shell itself */
                    || strncmp(line, "PWD=", 4) == 0 || strncmp(line, "SHLVL=", 6) == 0
                    || strncmp(line, "_=", 2) == 0);
    free(got);
    unsetenv("MAILRET_IMAP_PASSWORD");
    unsetenv("OAUTH_TOKEN");
    unsetenv("SOME_OTHER");
    th_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state),
        cmocka_unit_test(test_state_refused),
        cmocka_unit_test(test_maildir),
        cmocka_unit_test(test_exec),
        cmocka_unit_test(test_exec_environment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
