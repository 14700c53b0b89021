/* test_purge_journal.c — the purge journal survives a reopen with every state and
 * message list intact, lists only unfinished batches, refuses a duplicate batch id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers/test_helpers.h"
#include "purge/journal.h"

static void test_journal_roundtrip(void **state)
{
    char *dir = th_tempdir("pjournal"), path[512];
    purge_journal *j = NULL;
    struct purge_jbatch *b = NULL;
    struct purge_jmsg msgs[3] = { { 7, "" }, { 3, "" }, { 12, "" } }, *got = NULL;
    int64_t id1 = 0, id2 = 0;
    size_t n = 0;
    mr_error err;

    (void)state;
    for (int i = 0; i < 3; i++)
        memset(msgs[i].sha256, 'a' + i, 64), msgs[i].sha256[64] = '\0';
    snprintf(path, sizeof path, "%s/%s", dir, PURGE_JOURNAL_FILE);
    assert_int_equal(purge_journal_open(path, &j, &err), 0);
    assert_int_equal(purge_journal_begin(j, "INBOX", 42, 1790000000, "b-1", &id1, &err), 0);
    assert_int_equal(purge_journal_begin(j, "Other", 9, 1790000000, "b-2", &id2, &err), 0);
    assert_int_not_equal(purge_journal_begin(j, "INBOX", 42, 1790000000, "b-1", &id2, &err), 0);
    assert_int_equal(err.code, MR_E_DB);
    assert_int_equal(purge_journal_record(j, id1, msgs, 3, &err), 0);
    purge_journal_close(j);

    /* Reopen: what a re-run after kill -9 sees. */
    assert_int_equal(purge_journal_open(path, &j, &err), 0);
    assert_int_equal(purge_journal_pending(j, "INBOX", &b, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(b[0].batch_id, "b-1");
    assert_int_equal(b[0].state, PJ_CLOSING);
    assert_int_equal(b[0].uidvalidity, 42);
    assert_int_equal(b[0].n_messages, 3);
    assert_int_equal(b[0].cutoff, 1790000000);
    free(b);
    assert_int_equal(purge_journal_messages(j, id1, &got, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(got[0].uid, 3);        /* by UID */
    assert_int_equal(got[2].uid, 12);
    assert_int_equal(got[0].sha256[0], 'b');
    free(got);
    assert_int_equal(purge_journal_pending(j, NULL, &b, &n, &err), 0);
    assert_int_equal(n, 2);
    free(b);
    assert_int_equal(purge_journal_set_state(j, id1, PJ_DONE, &err), 0);
    assert_int_equal(purge_journal_set_state(j, id2, PJ_DISCARDED, &err), 0);
    assert_int_equal(purge_journal_pending(j, NULL, &b, &n, &err), 0);
    assert_int_equal(n, 0);
    free(b);
    assert_int_not_equal(purge_journal_set_state(j, 999, PJ_DONE, &err), 0);
    assert_string_equal(purge_journal_state_name(PJ_EXPUNGING), "expunging");
    purge_journal_close(j);
    th_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_journal_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
