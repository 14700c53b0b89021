/* test_backup_ledger.c — the sealed erasure ledger with real OpenSSL and files: the host
 * cannot read what it appended (no token in the file), IT reads back exactly what was
 * appended, and a removed, swapped, altered, re-signed-by-another-key or truncated ledger
 * is refused with its cause named; an old plaintext ledger is sealed and overwritten. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "backup/ledger.h"
#include "helpers/test_helpers.h"
#include "keys/keys.h"

#define N_ENTRIES 5

struct fx {
    char *root;
    char path[600];
    EVP_PKEY *it, *other_it, *sk, *other_sk;
    X509 *it_cert;
    keys_keyring *kr;
    char entries[N_ENTRIES][80];
    struct ledger_writer w;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    mr_error err;

    f->root = th_tempdir("ledger");
    snprintf(f->path, sizeof f->path, "%s/erasure.ledger", f->root);
    assert_int_equal(keys_generate(KEYS_ALGO_P256, &f->it, &err), 0);
    assert_int_equal(keys_generate(KEYS_ALGO_P256, &f->other_it, &err), 0);
    assert_int_equal(keys_self_signed(f->it, "IT", 30, &f->it_cert, &err), 0);
    f->sk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    f->other_sk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(f->sk);
    assert_non_null(f->other_sk);
    f->kr = keys_keyring_new();
    assert_int_equal(keys_keyring_add(f->kr, f->sk, &err), 0);
    /* Tokens as pseudo_token makes them: random, so that a substring search means
     * something. */
    for (int i = 0; i < N_ENTRIES; i++) {
        unsigned char r[20];
        char hex[41];
        RAND_bytes(r, sizeof r);
        for (int j = 0; j < 20; j++)
            snprintf(hex + 2 * j, 3, "%02x", r[j]);
        snprintf(f->entries[i], sizeof f->entries[i], "%s:%s", i % 2 ? "cpr" : "email", hex);
    }
    f->w = (struct ledger_writer){ .path = f->path, .it_cert = f->it_cert, .signer = f->sk,
                                   .keyring = f->kr };
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    EVP_PKEY_free(f->it);
    EVP_PKEY_free(f->other_it);
    EVP_PKEY_free(f->sk);
    EVP_PKEY_free(f->other_sk);
    X509_free(f->it_cert);
    keys_keyring_free(f->kr);
    th_rmtree(f->root);
    free(f->root);
    free(f);
    return 0;
}

static void append_all(struct fx *f, struct ledger_anchor *last)
{
    mr_error err;

    for (int i = 0; i < N_ENTRIES; i++) {
        if (ledger_append(&f->w, f->entries[i], last, &err) != 0)
            fail_msg("append %d: %s", i, err.msg);
        assert_int_equal(last->count, (unsigned long long)i + 1);
    }
}

/* The file's lines (line 0 is the header). */
static size_t split(char *text, char **lines, size_t max)
{
    size_t n = 0;

    for (char *p = text; *p != '\0' && n < max;) {
        char *nl = strchr(p, '\n');
        lines[n++] = p;
        if (nl == NULL)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    return n;
}

static void write_lines(const char *path, char **lines, const size_t *order, size_t n)
{
    char buf[65536];
    size_t len = 0;

    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s\n", lines[order[i]]);
    assert_int_equal(th_write_file(path, buf, len), 0);
}

static int open_rc(struct fx *f, mr_error *err)
{
    ledger_reader *l = NULL;
    int rc = ledger_open(f->path, f->kr, &l, err);

    ledger_free(l);
    return rc;
}

static void test_sealed_roundtrip(void **state)
{
    struct fx *f = *state;
    struct ledger_anchor a, got;
    char **entries = NULL;
    size_t n = 0, len = 0;
    ledger_reader *l = NULL;
    mr_error err;
    char *text;

    append_all(f, &a);
    text = (char *)th_read_file(f->path, &len);
    assert_non_null(text);
    /* The host cannot read it: no token, not even the kind prefix, is in the file. */
    for (int i = 0; i < N_ENTRIES; i++) {
        const char *tok = strchr(f->entries[i], ':') + 1;
        char half[21];
        assert_null(strstr(text, tok));
        snprintf(half, sizeof half, "%s", tok);
        assert_null(strstr(text, half));
    }
    assert_null(strstr(text, "email:"));
    assert_null(strstr(text, "cpr:"));
    free(text);

    assert_int_equal(ledger_open(f->path, f->kr, &l, &err), 0);
    ledger_anchor_get(l, &got);
    assert_int_equal(got.count, N_ENTRIES);
    assert_string_equal(got.head, a.head);
    assert_int_equal(ledger_check_anchor(l, &a, &err), 0);
    assert_int_equal(ledger_entries(l, f->it, &entries, &n, &err), 0);
    assert_int_equal(n, N_ENTRIES);
    for (int i = 0; i < N_ENTRIES; i++)
        assert_string_equal(entries[i], f->entries[i]);
    ledger_entries_free(entries, n);
    /* Only IT's key opens the entries. */
    assert_int_not_equal(ledger_entries(l, f->other_it, &entries, &n, &err), 0);
    ledger_free(l);

    /* Without a pinned key there is nothing to check it against. */
    {
        keys_keyring *empty = keys_keyring_new();
        assert_int_equal(ledger_open(f->path, empty, &l, &err), MR_E_AUTH);
        keys_keyring_free(empty);
    }
}

static void test_removed_swapped_altered(void **state)
{
    struct fx *f = *state;
    struct ledger_anchor a;
    char *text, *lines[16];
    size_t len, n;
    mr_error err;

    append_all(f, &a);
    text = (char *)th_read_file(f->path, &len);
    n = split(text, lines, 16);
    assert_int_equal(n, N_ENTRIES + 1);

    {   /* entry 3 removed */
        const size_t order[] = { 0, 1, 2, 4, 5 };
        write_lines(f->path, lines, order, 5);
        assert_int_equal(open_rc(f, &err), MR_E_TAMPERED);
        assert_non_null(strstr(err.msg, "removed or reordered"));
    }
    {   /* entries 2 and 3 swapped */
        const size_t order[] = { 0, 1, 3, 2, 4, 5 };
        write_lines(f->path, lines, order, 6);
        assert_int_equal(open_rc(f, &err), MR_E_TAMPERED);
    }
    {   /* entries 2 and 3 swapped with their sequence numbers kept in place: the chain */
        char *l2 = strdup(lines[2]), *l3 = strdup(lines[3]);
        char *s2 = strchr(l2, ' '), *s3 = strchr(l3, ' ');
        char a2[4096], a3[4096];
        snprintf(a2, sizeof a2, "2%s", s3);
        snprintf(a3, sizeof a3, "3%s", s2);
        char *mod[] = { lines[0], lines[1], a2, a3, lines[4], lines[5] };
        const size_t order[] = { 0, 1, 2, 3, 4, 5 };
        write_lines(f->path, mod, order, 6);
        assert_int_equal(open_rc(f, &err), MR_E_TAMPERED);
        assert_non_null(strstr(err.msg, "chain"));
        free(l2);
        free(l3);
    }
    {   /* one character of a sealed entry altered */
        char *copy = strdup(lines[3]);
        char *b64 = strchr(strchr(copy, ' ') + 1, ' ') + 1;
        b64[10] = b64[10] == 'A' ? 'B' : 'A';
        char *mod[] = { lines[0], lines[1], lines[2], copy, lines[4], lines[5] };
        const size_t order[] = { 0, 1, 2, 3, 4, 5 };
        write_lines(f->path, mod, order, 6);
        assert_int_equal(open_rc(f, &err), MR_E_TAMPERED);
        free(copy);
    }
    {   /* intact again: accepted (the checks above are not refusing everything) */
        const size_t order[] = { 0, 1, 2, 3, 4, 5 };
        write_lines(f->path, lines, order, 6);
        assert_int_equal(open_rc(f, &err), 0);
    }
    free(text);
}

static void test_rewritten_by_another_key(void **state)
{
    struct fx *f = *state;
    struct ledger_anchor a;
    struct ledger_writer w2;
    mr_error err;
    keys_keyring *kr2 = keys_keyring_new();

    /* Someone without the host's signing key rebuilds the ledger with one entry left out,
     * chain recomputed, signed with their own key. */
    assert_int_equal(keys_keyring_add(kr2, f->other_sk, &err), 0);
    w2 = (struct ledger_writer){ .path = f->path, .it_cert = f->it_cert,
                                 .signer = f->other_sk, .keyring = kr2 };
    for (int i = 0; i < N_ENTRIES; i++)
        if (i != 2)
            assert_int_equal(ledger_append(&w2, f->entries[i], &a, &err), 0);
    assert_int_equal(open_rc(f, &err), MR_E_TAMPERED);
    keys_keyring_free(kr2);
}

static void test_truncated_against_anchor(void **state)
{
    struct fx *f = *state;
    struct ledger_anchor at3, last, cut_anchor;
    ledger_reader *l = NULL;
    mr_error err;
    char *text, *lines[16];
    size_t len;

    for (int i = 0; i < N_ENTRIES; i++) {
        assert_int_equal(ledger_append(&f->w, f->entries[i], &last, &err), 0);
        if (i == 2)
            at3 = last;
    }
    text = (char *)th_read_file(f->path, &len);
    split(text, lines, 16);
    {   /* cut back to three entries: a valid ledger on its own... */
        const size_t order[] = { 0, 1, 2, 3 };
        write_lines(f->path, lines, order, 4);
    }
    assert_int_equal(ledger_open(f->path, f->kr, &l, &err), 0);
    ledger_anchor_get(l, &cut_anchor);
    assert_int_equal(cut_anchor.count, 3);
    assert_int_equal(ledger_check_anchor(l, &at3, &err), 0);
    /* ...but not against a manifest signed after entry 5 */
    assert_int_equal(ledger_check_anchor(l, &last, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "removed from the end"));
    ledger_free(l);

    /* An anchor whose head does not match (a ledger rebuilt with the host's own key, one
     * entry left out): refused. */
    {
        struct ledger_anchor wrong = at3;
        wrong.head[0] = wrong.head[0] == '0' ? '1' : '0';
        assert_int_equal(ledger_open(f->path, f->kr, &l, &err), 0);
        assert_int_equal(ledger_check_anchor(l, &wrong, &err), MR_E_TAMPERED);
        assert_non_null(strstr(err.msg, "rewritten"));
        ledger_free(l);
    }
    free(text);
}

static void test_plaintext_migrated(void **state)
{
    struct fx *f = *state;
    struct ledger_anchor a;
    char buf[1024], **entries = NULL;
    size_t len = 0, n = 0;
    ledger_reader *l = NULL;
    mr_error err;
    char *text;

    for (int i = 0; i < 3; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s\n", f->entries[i]);
    assert_int_equal(th_write_file(f->path, buf, len), 0);
    /* IT is told how to get it sealed */
    assert_int_equal(open_rc(f, &err), MR_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "--seal-ledger"));
    assert_int_equal(ledger_prepare(&f->w, &a, &err), 0);
    assert_int_equal(a.count, 3);
    text = (char *)th_read_file(f->path, &len);
    for (int i = 0; i < 3; i++)
        assert_null(strstr(text, strchr(f->entries[i], ':') + 1));
    free(text);
    assert_int_equal(ledger_open(f->path, f->kr, &l, &err), 0);
    assert_int_equal(ledger_entries(l, f->it, &entries, &n, &err), 0);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(entries[i], f->entries[i]);
    ledger_entries_free(entries, n);
    ledger_free(l);
    /* a missing ledger is created empty */
    remove(f->path);
    assert_int_equal(ledger_prepare(&f->w, &a, &err), 0);
    assert_int_equal(a.count, 0);
    assert_int_equal(open_rc(f, &err), 0);
    /* a malformed entry is refused */
    assert_int_not_equal(ledger_append(&f->w, "no-colon", &a, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sealed_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removed_swapped_altered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewritten_by_another_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_against_anchor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plaintext_migrated, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
