/* test_backup_maildir_keywords.c — IMAP keywords as Dovecot keeps them in a Maildir
 * (backup/maildir_keywords.h): letters in file names, the dovecot-keywords table extended
 * without renumbering, system flags skipped, the 26-letter limit counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backup/maildir_keywords.h"
#include "helpers/test_helpers.h"

static void test_letters_and_table(void **state)
{
    char *dir = th_tempdir("kw");
    char path[4200], letters[MAILDIR_KEYWORDS_MAX + 1];
    maildir_keywords *k = NULL;
    unsigned char *table;
    size_t len;
    mr_error err;

    (void)state;
    assert_non_null(dir);
    /* an existing table (as Dovecot wrote it; a junk line is skipped) */
    snprintf(path, sizeof path, "%s/dovecot-keywords", dir);
    assert_int_equal(th_write_file(path, "0 NonJunk\nnot a line\n2 $Forwarded\n", 34), 0);
    assert_int_equal(maildir_keywords_open(dir, &k, &err), 0);

    /* system flags are not keywords; known ones keep their letters, a new one takes the
     * first free index (1, between the two), letters ascending */
    assert_int_equal(maildir_keywords_letters(k, "\\Seen $Label1 NonJunk \\Answered", letters,
                                              &err), 0);
    assert_string_equal(letters, "ab");
    assert_int_equal(maildir_keywords_letters(k, "$Forwarded", letters, &err), 0);
    assert_string_equal(letters, "c");
    assert_int_equal(maildir_keywords_letters(k, "", letters, &err), 0);
    assert_string_equal(letters, "");
    assert_int_equal(maildir_keywords_letters(k, NULL, letters, &err), 0);
    assert_string_equal(letters, "");
    assert_int_equal(maildir_keywords_letters(k, "  \\Seen   $Label1  ", letters, &err), 0);
    assert_string_equal(letters, "b");
    assert_int_equal(maildir_keywords_save(k, &err), 0);
    maildir_keywords_free(k);
    table = th_read_file(path, &len);
    assert_non_null(table);
    assert_string_equal((char *)table, "0 NonJunk\n1 $Label1\n2 $Forwarded\n");
    free(table);

    /* 26 letters at most: the rest are left out and counted */
    assert_int_equal(maildir_keywords_open(dir, &k, &err), 0);
    for (int i = 0; i < 30; i++) {
        char flag[16];
        snprintf(flag, sizeof flag, "kw%d", i);
        assert_int_equal(maildir_keywords_letters(k, flag, letters, &err), 0);
        assert_int_equal(strlen(letters), i < 23 ? 1 : 0);
    }
    assert_int_equal(maildir_keywords_dropped(k), 7);
    assert_int_equal(maildir_keywords_letters(k, "NonJunk kw0 kw29", letters, &err), 0);
    assert_string_equal(letters, "ad");
    assert_int_equal(maildir_keywords_dropped(k), 8);
    assert_int_equal(maildir_keywords_save(k, &err), 0);
    maildir_keywords_free(k);
    table = th_read_file(path, &len);
    assert_non_null(table);
    assert_non_null(strstr((char *)table, "25 kw22\n"));
    assert_null(strstr((char *)table, "kw23"));
    free(table);

    /* nothing new: the file is not rewritten */
    assert_int_equal(maildir_keywords_open(dir, &k, &err), 0);
    assert_int_equal(th_write_file(path, "0 NonJunk\n", 10), 0);
    assert_int_equal(maildir_keywords_letters(k, "NonJunk", letters, &err), 0);
    assert_int_equal(maildir_keywords_save(k, &err), 0);
    maildir_keywords_free(k);
    table = th_read_file(path, &len);
    assert_string_equal((char *)table, "0 NonJunk\n");
    free(table);

    th_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_letters_and_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
