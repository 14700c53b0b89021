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

#include <dirent.h>
#include <sys/stat.h>

#include "pseudo/hooks.h"
#include "helpers/test_helpers.h"

static void source_dir(char *out, size_t cap)
{
    const char *s = getenv("MAILRET_SOURCE_DIR");
    char here[4096], *slash;

    if (s != NULL && *s) {
        if (snprintf(out, cap, "%s", s) >= (int)cap)
            out[0] = '\0';
        return;
    }
    snprintf(here, sizeof here, "%s", __FILE__);
    slash = strrchr(here, '/');
    if (slash != NULL)
        *slash = '\0';
    if (snprintf(out, cap, "%s/../..", here) >= (int)cap)
        out[0] = '\0';
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_adversarial(void **state)
{
    char src[4096], cmd[16384], in_dir[4200], out_dir[4200];
    char *tmp = th_tempdir("mailret-pseudo-adv");
    DIR *d;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    pseudo_key key;
    struct pseudo_policy pol;
    static const char *const own[] = {"akasse.example"};

    (void)state;
    assert_non_null(tmp);
    source_dir(src, sizeof src);
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/tools/pseudo_adversarial.py' gen '%s/corpus'",
             src, tmp);
    assert_int_equal(system(cmd), 0);
    snprintf(in_dir, sizeof in_dir, "%s/corpus/eml", tmp);
    snprintf(out_dir, sizeof out_dir, "%s/pseudo", tmp);
    assert_int_equal(mkdir(out_dir, 0700), 0);
    snprintf(out_dir, sizeof out_dir, "%s/pseudo/eml", tmp);
    assert_int_equal(mkdir(out_dir, 0700), 0);

    d = opendir(in_dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = realloc(names, cap * sizeof *names);
            assert_non_null(names);
        }
        names[n] = strdup(de->d_name);
        assert_non_null(names[n]);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    assert_true(n > 500);

    tp_key(&key, 0x5b);
    pseudo_policy_default(&pol);
    pol.own_domains = own;
    pol.n_own_domains = 1;
    for (size_t i = 0; i < n; i++) {
        char path[8400];
        size_t len, olen;
        unsigned char *msg;
        pseudo_result *res;
        const unsigned char *o;

        snprintf(path, sizeof path, "%s/%s", in_dir, names[i]);
        msg = th_read_file(path, &len);
        assert_non_null(msg);
        res = tp_run(&key, &pol, msg, len);   /* asserts the byte-exact restore */
        if (pseudo_result_is_whole(res))
            fail_msg("%s: replaced as a whole", names[i]);
        o = pseudo_result_bytes(res, &olen);
        snprintf(path, sizeof path, "%s/%s", out_dir, names[i]);
        assert_int_equal(th_write_file(path, o, olen), 0);
        pseudo_result_free(res);
        free(msg);
        free(names[i]);
    }
    free(names);
    fflush(stdout);
    snprintf(cmd, sizeof cmd,
             "python3 '%s/tests/tools/pseudo_adversarial.py' check '%s/corpus' '%s/pseudo'",
             src, tmp, tmp);
    assert_int_equal(system(cmd), 0);
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
