/*
 * test_pseudo_recall.c — the pseudonymiser against generated mail with ground truth.
 *
 * scripts/gen-corpus writes 2,000 messages (fixed seed) and truth.jsonl listing every
 * planted identifier.  Each message is pseudonymised here; the test asserts the byte-exact
 * restore and that libetpan parses the output into the same MIME tree as the input.  Then
 * tests/tools/pseudo_recall.py decodes every part of every output independently (Python's
 * email package: base64, quoted-printable, RFC 2047, RFC 2231, HTML entities, %XX), searches
 * for every planted value, prints recall per kind and encoding, and fails below 100 % for
 * e-mail, CPR and phone numbers.
 */
#include "unit/test_pseudo_util.h"

#include <dirent.h>
#include <sys/stat.h>
#include <time.h>

#include "pseudo/hooks.h"
#include "helpers/test_helpers.h"

#define RECALL_COUNT 2000
#define RECALL_SEED 20261123

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

static void test_generated_corpus(void **state)
{
    char src[4096], cmd[16384], in_dir[4200], out_dir[4200];
    char *tmp = th_tempdir("mailret-pseudo-recall");
    DIR *d;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0, shapes = 0, bytes = 0;
    pseudo_key key;
    struct pseudo_policy pol;
    static const char *const own[] = {"akasse.example"};
    struct timespec t0, t1;

    (void)state;
    assert_non_null(tmp);
    source_dir(src, sizeof src);
    snprintf(cmd, sizeof cmd,
             "python3 '%s/scripts/gen-corpus' --count %d --seed %d --out '%s/corpus' "
             "--format eml --fund-domain akasse.example >/dev/null",
             src, RECALL_COUNT, RECALL_SEED, tmp);
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
    assert_int_equal(n, RECALL_COUNT);

    tp_key(&key, 0x5a);
    pseudo_policy_default(&pol);
    pol.own_domains = own;
    pol.n_own_domains = 1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < n; i++) {
        char path[8400], a[4096], b[4096];
        size_t len, olen;
        unsigned char *msg;
        pseudo_result *res;
        const unsigned char *o;

        snprintf(path, sizeof path, "%s/%s", in_dir, names[i]);
        msg = th_read_file(path, &len);
        assert_non_null(msg);
        bytes += len;
        res = tp_run(&key, &pol, msg, len);
        assert_false(pseudo_result_is_whole(res));
        o = pseudo_result_bytes(res, &olen);
        /* Same MIME tree as the input wherever libetpan can parse the input. */
        if (tp_shape(msg, len, a, sizeof a) == 0) {
            if (tp_shape(o, olen, b, sizeof b) != 0)
                fail_msg("%s: output does not parse as MIME", names[i]);
            if (strcmp(a, b) != 0)
                fail_msg("%s: MIME tree %s became %s", names[i], a, b);
            shapes++;
        }
        snprintf(path, sizeof path, "%s/%s", out_dir, names[i]);
        assert_int_equal(th_write_file(path, o, olen), 0);
        pseudo_result_free(res);
        free(msg);
        free(names[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(names);
    printf("pseudonymised %zu messages (%.1f MB) in %.2f s (this build), %zu MIME trees "
           "compared\n", n, (double)bytes / 1e6,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, shapes);
    assert_true(shapes > n * 9 / 10);
    fflush(stdout);

    snprintf(cmd, sizeof cmd, "python3 '%s/tests/tools/pseudo_recall.py' '%s/corpus' '%s/pseudo'",
             src, tmp, tmp);
    assert_int_equal(system(cmd), 0);
    th_rmtree(tmp);
    free(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
