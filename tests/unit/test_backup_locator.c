/* test_backup_locator.c — the per-batch locator and targeted restore, with real OpenSSL
 * and files on a multi-batch archive: a targeted restore (person, Message-ID, dates)
 * gives exactly what the full read filtered the slow way gives, byte for byte, and what
 * the test planted; only the volumes holding a match are decrypted (every other volume
 * corrupted, the restore still succeeds); a tampered, swapped, missing or forged locator
 * is refused and the slow path used; an older batch without a locator restores the slow
 * way and gets one with locator_add; the audit record names the kind of search only. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "backup/archive.h"
#include "backup/ledger.h"
#include "backup/locator.h"
#include "backup/restore.h"
#include "backup/verify.h"
#include "common/audit.h"
#include "helpers/test_batch.h"
#include "helpers/test_helpers.h"
#include "keys/keys.h"

#define N_BATCH 3
#define N_PER 12
#define N_PERSON 4

struct fx {
    struct th_batch_env e;          /* archive, vault, IT's keys, pinned signing key */
    unsigned char *msg[N_BATCH][N_PER];
    size_t len[N_BATCH][N_PER];
    char dir[N_BATCH][4096];
    size_t n_volumes;               /* over all batches */
    char out[700];
    int run;
};

static int person_of(int i) { return i % N_PERSON; }
static time_t date_of(int b, int i) { return 1790000000 + (time_t)b * 2678400 + (time_t)i * 3600; }

static void make_message(struct fx *f, int b, int i)
{
    char head[1024];
    size_t fill = 5000;
    int n;

    /* Message 7 has no Message-ID; the others a unique one. */
    n = snprintf(head, sizeof head,
                 "From: Person %d <person%d@example.dk>\r\n"
                 "To: post@akasse.dk\r\n"
                 "Subject: Sag %d-%d\r\n"
                 "%s%d-%d%s"
                 "\r\n"
                 "Hej.\r\n", person_of(i), person_of(i), b, i,
                 i == 7 ? "X-No-Id: " : "Message-ID: <m-", b, i,
                 i == 7 ? "\r\n" : "@example.dk>\r\n");
    f->len[b][i] = (size_t)n + fill;
    f->msg[b][i] = malloc(f->len[b][i]);
    memcpy(f->msg[b][i], head, (size_t)n);
    /* incompressible, so that a 16 KiB volume holds two or three messages */
    RAND_bytes(f->msg[b][i] + n, (int)fill);
    for (size_t k = 0; k < fill; k++)
        f->msg[b][i][(size_t)n + k] = (unsigned char)('a' + f->msg[b][i][(size_t)n + k] % 26);
}

static void backup_one(struct fx *f, int b)
{
    struct archive_options o = {
        .mailbox = "post@akasse.dk",
        .period_end = 1793000000, .expires = 1793000000 + 5 * 366 * 86400,
        .created = 1790000000 + (time_t)b * 2678400,
        .volume_size = 16 * 1024, .compression_level = 6, .workers = 2,
    };
    struct archive_message am[N_PER];
    struct archive_manifest m;
    mr_error err;

    for (int i = 0; i < N_PER; i++)
        am[i] = (struct archive_message){ .uidvalidity = 9, .uid = (uint32_t)(1 + i),
                                          .internaldate = date_of(b, i), .flags = "\\Seen",
                                          .bytes = f->msg[b][i], .len = f->len[b][i] };
    if (th_batch_write(&f->e, o, am, N_PER, f->dir[b], sizeof f->dir[b], &err) != 0)
        fail_msg("batch %d: %s", b, err.msg);
    assert_int_equal(archive_manifest_read(f->dir[b], &f->e.trust, &m, &err), 0);
    assert_true(m.n_volumes >= 4);
    assert_string_equal(m.locator_name, "locator.p7m");
    f->n_volumes += m.n_volumes;
    archive_manifest_clear(&m);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    mr_error err;

    assert_non_null(f);
    if (th_batch_env_init(&f->e, "locator", &err) != 0)
        fail_msg("setup: %s", err.msg);
    for (int b = 0; b < N_BATCH; b++) {
        for (int i = 0; i < N_PER; i++)
            make_message(f, b, i);
        backup_one(f, b);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    for (int b = 0; b < N_BATCH; b++)
        for (int i = 0; i < N_PER; i++)
            free(f->msg[b][i]);
    th_batch_env_free(&f->e);
    free(f);
    return 0;
}

struct sel {
    int person;                     /* -1: any */
    const char *mid;                /* NULL: any */
    time_t from, to;
};

static bool oracle(const struct sel *s, int b, int i)
{
    char mid[64];

    /* IT may type a Message-ID with or without its <> */
    snprintf(mid, sizeof mid, "m-%d-%d@example.dk", b, i);
    return (s->person < 0 || person_of(i) == s->person)
           && (s->mid == NULL
               || (i != 7 && strncmp(s->mid + (s->mid[0] == '<'), mid, strlen(mid)) == 0
                   && strlen(s->mid) == strlen(mid) + (s->mid[0] == '<' ? 2 : 0)))
           && (s->from == 0 || date_of(b, i) >= s->from) && (s->to == 0 || date_of(b, i) < s->to);
}

static int run_restore(struct fx *f, const struct sel *s, bool no_locator,
                       enum restore_format fmt, const char *ledger, audit_log *audit,
                       struct restore_stats *st, mr_error *err)
{
    char tok[PSEUDO_TOKEN_LEN + 1], sel[64];
    const char *toks[1] = { sel };
    struct restore_options o = {
        .archive_dir = f->e.archive, .vault_dir = f->e.vault, .it_key = f->e.it,
        .trust = &f->e.trust, .message_id = s->mid, .from = s->from, .to = s->to,
        .no_locator = no_locator, .format = fmt, .ledger_path = ledger,
        .no_ledger = ledger == NULL,
        .reason = "unit test", .audit = audit,
    };
    mr_error e;

    if (s->person >= 0) {
        char addr[64];
        snprintf(addr, sizeof addr, "person%d@example.dk", s->person);
        assert_int_equal(pseudo_token(&f->e.pkey, PSEUDO_EMAIL, addr, tok, &e), 0);
        snprintf(sel, sizeof sel, "email:%s", tok);
        o.tokens = toks;
        o.n_tokens = 1;
    }
    snprintf(f->out, sizeof f->out, "%s/out-%d%s", f->e.root, f->run++,
             fmt == RESTORE_MBOX ? ".mbox" : "");
    o.output = f->out;
    return restore_run(&o, st, err);
}

struct seen {
    struct fx *f;
    int hits[N_BATCH][N_PER];
    int strays;
};

static int see(const char *name, const unsigned char *data, size_t len, void *arg)
{
    struct seen *s = arg;
    unsigned char a[32], b[32];

    (void)name;
    SHA256(data, len, a);
    for (int bb = 0; bb < N_BATCH; bb++)
        for (int i = 0; i < N_PER; i++) {
            SHA256(s->f->msg[bb][i], s->f->len[bb][i], b);
            if (memcmp(a, b, 32) == 0) {
                s->hits[bb][i]++;
                return 0;
            }
        }
    s->strays++;
    return 0;
}

/* The Maildir holds exactly the planted messages the selection names, byte for byte. */
static void assert_oracle(struct fx *f, const char *maildir, const struct sel *s)
{
    struct seen sn = { .f = f };
    char cur[800];

    snprintf(cur, sizeof cur, "%s/cur", maildir);
    assert_true(th_each_file(cur, see, &sn) >= 0);
    snprintf(cur, sizeof cur, "%s/new", maildir);
    assert_true(th_each_file(cur, see, &sn) >= 0);
    assert_int_equal(sn.strays, 0);
    for (int b = 0; b < N_BATCH; b++)
        for (int i = 0; i < N_PER; i++) {
            if (sn.hits[b][i] != (oracle(s, b, i) ? 1 : 0))
                print_error("batch %d message %d: restored %d times\n", b, i, sn.hits[b][i]);
            assert_int_equal(sn.hits[b][i], oracle(s, b, i) ? 1 : 0);
        }
}

static void same_file(const char *a, const char *b)
{
    size_t la, lb;
    unsigned char *x = th_read_file(a, &la), *y = th_read_file(b, &lb);

    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(la, lb);
    assert_memory_equal(x, y, la);
    free(x);
    free(y);
}

/* Located and slow paths give the same mbox, byte for byte, and the oracle's messages. */
static void check_selection(struct fx *f, const struct sel *s, size_t max_volumes)
{
    struct restore_stats fast, slow, md;
    char a[700], b[700];
    mr_error err;

    assert_int_equal(run_restore(f, s, false, RESTORE_MBOX, NULL, NULL, &fast, &err), 0);
    snprintf(a, sizeof a, "%s", f->out);
    assert_int_equal(run_restore(f, s, true, RESTORE_MBOX, NULL, NULL, &slow, &err), 0);
    snprintf(b, sizeof b, "%s", f->out);
    same_file(a, b);
    assert_int_equal(fast.restored, slow.restored);
    assert_int_equal(fast.not_selected, slow.not_selected);
    assert_int_equal(fast.located_batches, N_BATCH);
    assert_int_equal(fast.slow_batches, 0);
    assert_int_equal(slow.volumes_read, f->n_volumes);
    assert_true(fast.volumes_read <= max_volumes);
    assert_int_equal(fast.volumes_read + fast.volumes_skipped, f->n_volumes);
    assert_int_equal(run_restore(f, s, false, RESTORE_MAILDIR, NULL, NULL, &md, &err), 0);
    assert_oracle(f, f->out, s);
}

static void test_targeted_equals_slow(void **state)
{
    struct fx *f = *state;
    struct sel person = { .person = 1, .mid = NULL };
    struct sel mid = { .person = -1, .mid = "<m-1-5@example.dk>" };
    struct sel bare = { .person = -1, .mid = "m-2-10@example.dk" };
    struct sel month = { .person = -1, .from = date_of(1, 0), .to = date_of(2, 0) };
    struct sel hours = { .person = 2, .from = date_of(0, 3), .to = date_of(2, 3) };

    /* person 1 is in 3 of the 12 messages of each batch */
    check_selection(f, &person, f->n_volumes - 1);
    check_selection(f, &mid, 1);
    check_selection(f, &bare, 1);
    check_selection(f, &month, f->n_volumes / N_BATCH + 1);
    check_selection(f, &hours, f->n_volumes - 1);
}

static void test_no_match_reads_nothing(void **state)
{
    struct fx *f = *state;
    struct sel none = { .person = -1, .mid = "<nobody@example.dk>" };
    struct restore_stats st;
    mr_error err;

    assert_int_equal(run_restore(f, &none, false, RESTORE_MBOX, NULL, NULL, &st, &err), 0);
    assert_int_equal(st.restored, 0);
    assert_int_equal(st.volumes_read, 0);
    assert_int_equal(st.not_selected, N_BATCH * N_PER);
}

static void flip(const char *path, long where)
{
    FILE *fp = fopen(path, "r+b");
    int c;

    assert_non_null(fp);
    if (where < 0) {
        fseek(fp, 0, SEEK_END);
        where += ftell(fp);
    }
    fseek(fp, where, SEEK_SET);
    c = fgetc(fp);
    fseek(fp, where, SEEK_SET);
    fputc(c ^ 0x01, fp);
    fclose(fp);
}

struct volfiles {
    char path[128][4400];
    size_t n;
};

static void list_volumes(struct fx *f, struct volfiles *v)
{
    v->n = 0;
    for (int b = 0; b < N_BATCH; b++) {
        DIR *d = opendir(f->dir[b]);
        struct dirent *de;
        assert_non_null(d);
        while ((de = readdir(d)) != NULL)
            if (strncmp(de->d_name, "vol-", 4) == 0 || strncmp(de->d_name, "reid-", 5) == 0) {
                assert_true(v->n < 128);
                snprintf(v->path[v->n++], sizeof v->path[0], "%s/%s", f->dir[b], de->d_name);
            }
        closedir(d);
    }
}

/* Proof that only the volume holding the message is decrypted: with every other
 * volume and reid file corrupted, the Message-ID restore still succeeds, byte for byte;
 * the full restore and the slow path fail on the damage. */
static void test_only_matching_volumes_read(void **state)
{
    struct fx *f = *state;
    struct sel mid = { .person = -1, .mid = "<m-2-6@example.dk>" };
    struct volfiles v;
    struct restore_stats st;
    mr_error err;
    size_t needed = 0, which[2] = { 0 };

    list_volumes(f, &v);
    assert_int_equal(v.n, 2 * f->n_volumes);
    /* Which files does the restore need?  Corrupt one at a time. */
    for (size_t i = 0; i < v.n; i++) {
        flip(v.path[i], 100);
        if (run_restore(f, &mid, false, RESTORE_MBOX, NULL, NULL, &st, &err) != 0) {
            assert_int_equal(err.code, MR_E_TAMPERED);
            assert_true(needed < 2);
            which[needed++] = i;
        } else {
            assert_int_equal(st.restored, 1);
        }
        flip(v.path[i], 100);
    }
    /* its volume and its reid file */
    assert_int_equal(needed, 2);
    for (size_t i = 0; i < v.n; i++)
        if (i != which[0] && i != which[1])
            flip(v.path[i], 100);
    assert_int_equal(run_restore(f, &mid, false, RESTORE_MAILDIR, NULL, NULL, &st, &err), 0);
    assert_int_equal(st.restored, 1);
    assert_int_equal(st.volumes_read, 1);
    assert_oracle(f, f->out, &mid);
    assert_int_not_equal(run_restore(f, &mid, true, RESTORE_MBOX, NULL, NULL, &st, &err), 0);
    for (size_t i = 0; i < v.n; i++)
        if (i != which[0] && i != which[1])
            flip(v.path[i], 100);
    assert_int_equal(run_restore(f, &mid, true, RESTORE_MBOX, NULL, NULL, &st, &err), 0);
}

static void locator_path(struct fx *f, int b, char *out, size_t size)
{
    snprintf(out, size, "%s/locator.p7m", f->dir[b]);
}

/* A refused locator: slow path for that batch, same results, said in the stats. */
static void expect_refused(struct fx *f, int refused)
{
    struct sel person = { .person = 3 };
    struct restore_stats fast, slow;
    char a[700];
    mr_error err;

    assert_int_equal(run_restore(f, &person, false, RESTORE_MBOX, NULL, NULL, &fast, &err), 0);
    snprintf(a, sizeof a, "%s", f->out);
    assert_int_equal(run_restore(f, &person, true, RESTORE_MBOX, NULL, NULL, &slow, &err), 0);
    same_file(a, f->out);
    assert_int_equal(fast.locators_refused, (size_t)refused);
    assert_int_equal(fast.slow_batches, (size_t)refused);
    assert_int_equal(fast.located_batches, (size_t)(N_BATCH - refused));
}

static void test_tampered_locator_not_trusted(void **state)
{
    struct fx *f = *state;
    char p0[4300], p1[4300];
    struct verify_options vo = { .trust = &f->e.trust, .vault_dir = f->e.vault };
    struct verify_report rep;
    size_t len0, len1;
    unsigned char *l0, *l1;
    mr_error err;

    locator_path(f, 0, p0, sizeof p0);
    locator_path(f, 1, p1, sizeof p1);
    l0 = th_read_file(p0, &len0);
    l1 = th_read_file(p1, &len1);
    assert_non_null(l0);
    assert_non_null(l1);
    expect_refused(f, 0);

    /* one bit of the ciphertext */
    flip(p0, -40);
    expect_refused(f, 1);
    vo.dir = f->dir[0];
    assert_int_equal(verify_batch(&vo, &rep, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "locator"));
    /* another batch's (authentic) locator */
    assert_int_equal(th_write_file(p0, l1, len1), 0);
    expect_refused(f, 1);
    /* gone although the manifest lists it */
    assert_int_equal(unlink(p0), 0);
    expect_refused(f, 1);
    assert_int_equal(verify_batch(&vo, &rep, &err), MR_E_NOTFOUND);
    assert_int_equal(th_write_file(p0, l0, len0), 0);
    assert_int_equal(verify_batch(&vo, &rep, &err), 0);
    expect_refused(f, 0);
    free(l0);
    free(l1);
}

/* A batch from before locators: no locator, a manifest without one. */
static void make_old(struct fx *f, int b)
{
    struct archive_manifest m;
    char p[4300];
    mr_error err;

    assert_int_equal(archive_manifest_read(f->dir[b], &f->e.trust, &m, &err), 0);
    m.locator_name[0] = '\0';
    assert_int_equal(archive_manifest_write(f->dir[b], &m, f->e.sk, &err), 0);
    archive_manifest_clear(&m);
    locator_path(f, b, p, sizeof p);
    assert_int_equal(unlink(p), 0);
}

static void test_old_batch_and_locator_add(void **state)
{
    struct fx *f = *state;
    struct sel person = { .person = 0 };
    struct restore_stats st;
    struct locator_add_options lo = { .vault_dir = f->e.vault, .trust = &f->e.trust,
                                      .it_key = f->e.it };
    char batch[64], p1[4300], p2[4300];
    size_t msgs, len;
    unsigned char *other;
    mr_error err;

    make_old(f, 2);
    assert_int_equal(run_restore(f, &person, false, RESTORE_MAILDIR, NULL, NULL, &st, &err), 0);
    assert_int_equal(st.slow_batches, 1);
    assert_int_equal(st.locators_refused, 0);
    assert_oracle(f, f->out, &person);

    /* someone plants a locator (another batch's, authentic there): refused */
    locator_path(f, 1, p1, sizeof p1);
    locator_path(f, 2, p2, sizeof p2);
    other = th_read_file(p1, &len);
    assert_int_equal(th_write_file(p2, other, len), 0);
    free(other);
    assert_int_equal(run_restore(f, &person, false, RESTORE_MAILDIR, NULL, NULL, &st, &err), 0);
    assert_int_equal(st.locators_refused, 1);
    assert_oracle(f, f->out, &person);
    lo.dir = f->dir[2];
    assert_int_equal(locator_add(&lo, batch, &msgs, &err), MR_E_EXISTS);
    assert_int_equal(unlink(p2), 0);

    /* a forged one: the right batch id and volume hashes, encrypted to the (public) reid
     * epoch certificate, listing no message at all — but MAC'd without the reid key */
    {
        struct archive_manifest m;
        locator_builder *lb = NULL;
        EVP_PKEY *wrong = NULL;
        X509 *cert = NULL;
        assert_int_equal(archive_manifest_read(f->dir[2], &f->e.trust, &m, &err), 0);
        assert_int_equal(keys_epoch_cert_load(f->e.vault, m.reid_key_id, &cert, &err), 0);
        assert_int_equal(keys_generate(KEYS_ALGO_P256, &wrong, &err), 0);
        assert_int_equal(locator_builder_new(&lb, &err), 0);
        assert_int_equal(locator_builder_write(lb, f->dir[2], m.batch_id, m.volumes, m.n_volumes,
                                               cert, wrong, NULL, NULL, &err), 0);
        locator_builder_free(lb);
        EVP_PKEY_free(wrong);
        X509_free(cert);
        archive_manifest_clear(&m);
    }
    assert_int_equal(run_restore(f, &person, false, RESTORE_MAILDIR, NULL, NULL, &st, &err), 0);
    assert_int_equal(st.locators_refused, 1);
    assert_oracle(f, f->out, &person);
    assert_int_equal(unlink(p2), 0);

    /* IT adds one: authenticated by its MAC, used, same results */
    assert_int_equal(locator_add(&lo, batch, &msgs, &err), 0);
    assert_int_equal(msgs, N_PER);
    assert_int_equal(locator_add(&lo, batch, &msgs, &err), MR_E_EXISTS);
    check_selection(f, &person, f->n_volumes - 1);
    {
        /* deep verify cross-checks the added locator against the volumes' indexes */
        struct verify_options vo = { .dir = f->dir[2], .vault_dir = f->e.vault,
                                     .trust = &f->e.trust, .deep = true, .it_key = f->e.it };
        struct verify_report rep;
        assert_int_equal(verify_batch(&vo, &rep, &err), 0);
    }
    /* and a flipped bit in it is caught by the MAC (no manifest hash to compare) */
    flip(p2, -40);
    expect_refused(f, 1);
}

/* The ledger still applies on the targeted path; the audit log says "person", never
 * the address or its token. */
static void test_ledger_and_audit(void **state)
{
    struct fx *f = *state;
    struct sel person = { .person = 2 };
    struct restore_stats st;
    char tok[PSEUDO_TOKEN_LEN + 1], line[64], ledger[600], alog[600];
    const char *secret[2] = { "person2@example.dk", tok };
    audit_log *audit = NULL;
    unsigned char *text;
    size_t len;
    mr_error err;

    assert_int_equal(pseudo_token(&f->e.pkey, PSEUDO_EMAIL, "person2@example.dk", tok, &err), 0);
    snprintf(line, sizeof line, "email:%s", tok);
    snprintf(ledger, sizeof ledger, "%s/ledger", f->e.root);
    {
        struct ledger_writer w = { .path = ledger, .it_cert = f->e.it_cert, .signer = f->e.sk,
                                   .keyring = f->e.kr };
        struct ledger_anchor a;
        assert_int_equal(ledger_prepare(&w, &a, &err), 0);
        assert_int_equal(ledger_append(&w, line, &a, &err), 0);
    }
    snprintf(alog, sizeof alog, "%s/audit.log", f->e.root);
    assert_int_equal(audit_open(&audit, alog, &err), 0);
    assert_int_equal(run_restore(f, &person, false, RESTORE_MBOX, ledger, audit, &st, &err), 0);
    assert_int_equal(st.restored, 0);
    assert_int_equal(st.erased, N_BATCH * N_PER / N_PERSON);
    assert_true(st.volumes_skipped > 0);
    audit_close(audit);
    text = th_read_file(alog, &len);
    assert_non_null(text);
    assert_non_null(strstr((char *)text, "\"selection\":\"person\""));
    assert_null(memmem(text, len, secret[0], strlen(secret[0])));
    assert_null(memmem(text, len, secret[1], strlen(secret[1])));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_targeted_equals_slow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_match_reads_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_matching_volumes_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_locator_not_trusted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_batch_and_locator_add, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ledger_and_audit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
