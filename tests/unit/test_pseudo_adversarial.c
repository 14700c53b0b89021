/*
 * test_pseudo_adversarial.c — the pseudonymiser against adversarial mail.
 *
 * tests/tools/pseudo_adversarial.py writes about a thousand messages that plant identifiers
 * where real mail hides them from a simple word-boundary rule (after '_', letters, no-break
 * and thin spaces, typographic quotes and dashes, other punctuation; grouped with no-break
 * spaces; names written with HTML character references, in forwarded header blocks, reply
 * attributions, one-line sign-offs and the genitive; folded iCalendar and vCard lines; IPs
 * in spam-report and authentication headers and reverse-DNS host names; non-ASCII
 * addresses), each class in every encoding it can take (raw UTF-8 and windows-1252,
 * quoted-printable with a soft break inside the identifier, base64, HTML with references,
 * RFC 2047 B and Q, RFC 2231 continuations, nested message/rfc822).  Each message is
 * pseudonymised here with the byte-exact restore asserted; then the script decodes every
 * output independently and searches it with its own patterns, prints recall per class and
 * encoding, and fails if any planted e-mail address, CPR or phone number, claimed name or
 * IP address survives, or if a calendar date-time was replaced.
 */
#include "unit/test_pseudo_util.h"

static void test_adversarial(void **state)
{
    char src[4096], cmd[16384];
    char *tmp = th_tempdir("mailret-pseudo-adv");
    pseudo_key key;
    struct pseudo_policy pol;

    (void)state;
    assert_non_null(tmp);
    tp_source_dir(src, sizeof src);
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/tools/pseudo_adversarial.py' gen '%s/corpus'",
             src, tmp);
    assert_int_equal(system(cmd), 0);

    tp_key(&key, 0x5b);
    tp_corpus_policy(&pol);
    assert_true(tp_run_corpus(tmp, &key, &pol, NULL, NULL, NULL) > 500);
    snprintf(cmd, sizeof cmd,
             "python3 '%s/tests/tools/pseudo_adversarial.py' check '%s/corpus' '%s/pseudo'",
             src, tmp, tmp);
    tp_check_cmd(cmd);
    th_rmtree(tmp);
    free(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adversarial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
