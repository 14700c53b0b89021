/* test_backup_archive.c — the archive writer, reader, verify and restore end to end with
 * real OpenSSL, zlib and files: round trip byte for byte (flags, INTERNALDATE), tampering
 * and missing files detected and named, no key no plaintext, no planted identifier on
 * disk, erasure ledger and selections. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "backup/archive.h"
#include "backup/buf.h"
#include "backup/index.h"
#include "backup/ledger.h"
#include "backup/restore.h"
#include "backup/tar.h"
#include "backup/verify.h"
#include "backup/volume.h"
#include "helpers/test_batch.h"
#include "helpers/test_helpers.h"
#include "keys/keys.h"

#define N_MSG 40

struct fx {
    struct th_batch_env e;          /* archive, vault, IT's keys, pinned signing key */
    char out[512];
    const struct ledger_anchor *anchor;     /* recorded in the manifests do_backup signs */
    unsigned char *msg[N_MSG];
    size_t len[N_MSG];
    struct archive_result *res;
};

static const char *const planted[] = {
    "anna.jensen@example.dk", "010203-1234", "Anna Jensen", "12 34 56 78",
    "bo.hansen@mail.example.org",
};

static void make_messages(struct fx *f)
{
    for (int i = 0; i < N_MSG; i++) {
        char head[1024];
        int n;
        size_t extra = (i % 7 == 3) ? 30000 : 0;   /* some large ones: several volumes */
        n = snprintf(head, sizeof head,
                     "From: Anna Jensen <anna.jensen@example.dk>\r\n"
                     "To: post@akasse.dk\r\n"
                     "Cc: bo.hansen@mail.example.org\r\n"
                     "Subject: Sag %d - mit CPR er 010203-1234\r\n"
                     "Message-ID: <msg-%d@example.dk>\r\n"
                     "Date: Mon, 2 Nov 2026 10:00:00 +0100\r\n"
                     "\r\n"
                     "Hej, ring til mig på 12 34 56 78.\r\nFrom the desk of Anna Jensen\r\n",
                     i, i);
        f->len[i] = (size_t)n + extra;
        f->msg[i] = malloc(f->len[i] + 1);
        memcpy(f->msg[i], head, (size_t)n);
        /* incompressible filler so that volumes really fill up */
        for (size_t k = 0; k < extra; k++)
            f->msg[i][n + k] = (unsigned char)('a' + (k * 7919 + (size_t)i) % 26);
        if (i % 7 >= 4) {
            /* A 40 KB base64 attachment, sealed: its body goes into the reid file, and
             * three in a row (a few hundred bytes of content, 90 KB compressed reid) must
             * not make one reid file larger than the volume size. */
            static const char b64[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            size_t lines = 40000 / 76, o;
            uint64_t r = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
            n = snprintf(head, sizeof head,
                         "From: Anna Jensen <anna.jensen@example.dk>\r\n"
                         "To: post@akasse.dk\r\n"
                         "Cc: bo.hansen@mail.example.org\r\n"
                         "Subject: Sag %d - mit CPR er 010203-1234\r\n"
                         "Message-ID: <msg-%d@example.dk>\r\n"
                         "Content-Type: multipart/mixed; boundary=\"P\"\r\n\r\n--P\r\n"
                         "Content-Type: text/plain\r\n\r\nHej, ring til mig p\xc3\xa5 "
                         "12 34 56 78.\r\nFrom the desk of Anna Jensen\r\n--P\r\n"
                         "Content-Type: application/pdf; name=\"bilag.pdf\"\r\n"
                         "Content-Transfer-Encoding: base64\r\n\r\n", i, i);
            f->len[i] = (size_t)n + lines * 78 + 7;
            f->msg[i] = realloc(f->msg[i], f->len[i] + 1);
            memcpy(f->msg[i], head, (size_t)n);
            o = (size_t)n;
            for (size_t line = 0; line < lines; line++) {
                for (int k = 0; k < 76; k++) {
                    r ^= r << 13, r ^= r >> 7, r ^= r << 17;
                    f->msg[i][o++] = (unsigned char)b64[r % 64];
                }
                f->msg[i][o++] = '\r';
                f->msg[i][o++] = '\n';
            }
            memcpy(f->msg[i] + o, "--P--\r\n", 7);
            assert_int_equal(o + 7, f->len[i]);
        }
    }
    /* edge cases: an empty message, NUL bytes and bare LF */
    f->len[5] = 0;
    memcpy(f->msg[6], "Subject: x\n\nbinary\0\x01\xff\n", 22);
    f->len[6] = 22;
}

static const char *flags_of(int i)
{
    static const char *const v[] = { "\\Seen", "", "\\Seen \\Answered", "\\Flagged $Label1" };
    return v[i % 4];
}

static time_t date_of(int i)
{
    return 1790000000 + (time_t)i * 3600;
}

static int do_backup(struct fx *f, size_t volume_size, struct archive_result **res)
{
    struct archive_options o = {
        .archive_dir = f->e.archive, .vault_dir = f->e.vault, .mailbox = "post@akasse.dk",
        .period_end = 1793000000, .expires = 1793000000 + 5 * 366 * 86400,
        .volume_size = volume_size, .compression_level = 6, .workers = 2,
        .content_holder = f->e.it_cert, .reid_holder = f->e.it_cert,
        .pseudonym_key = &f->e.pkey, .signing_key = f->e.sk, .ledger = f->anchor,
    };
    archive_batch *b = NULL;
    mr_error err;
    int rc = archive_batch_open(&o, &b, &err);

    if (rc != 0) {
        print_error("open: %s\n", err.msg);
        return rc;
    }
    for (int i = 0; i < N_MSG; i++) {
        struct archive_message m = { .uidvalidity = 77, .uid = (uint32_t)(100 + i),
                                     .internaldate = date_of(i), .internaldate_tz_min = 60,
                                     .flags = flags_of(i), .bytes = f->msg[i],
                                     .len = f->len[i] };
        rc = archive_batch_add(b, &m, &err);
        if (rc != 0) {
            print_error("add: %s\n", err.msg);
            archive_batch_abort(b);
            return rc;
        }
    }
    rc = archive_batch_close(b, res, &err);
    if (rc != 0)
        print_error("close: %s\n", err.msg);
    return rc;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    mr_error err;

    assert_non_null(f);
    if (th_batch_env_init(&f->e, "archive", &err) != 0)
        fail_msg("setup: %s", err.msg);
    snprintf(f->out, sizeof f->out, "%s/out", f->e.root);
    make_messages(f);
    assert_int_equal(do_backup(f, 64 * 1024, &f->res), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    for (int i = 0; i < N_MSG; i++)
        free(f->msg[i]);
    archive_result_free(f->res);
    th_batch_env_free(&f->e);
    free(f);
    return 0;
}

static int restore_to(struct fx *f, const char *out, bool pseudonymised, const char *ledger,
                      const char *const *tokens, size_t n_tokens, EVP_PKEY *key,
                      struct restore_stats *st, mr_error *err)
{
    struct restore_options o = {
        .archive_dir = f->e.archive, .vault_dir = f->e.vault, .pseudonymised = pseudonymised,
        .it_key = key, .trust = &f->e.trust, .ledger_path = ledger, .no_ledger = ledger == NULL,
        .tokens = tokens, .n_tokens = n_tokens,
        .format = RESTORE_MAILDIR, .output = out, .reason = "unit test",
    };
    return restore_run(&o, st, err);
}

/* Index of the original whose SHA-256 equals this file's, or -1. */
static int find_original(struct fx *f, const unsigned char *data, size_t len)
{
    unsigned char a[32], b[32];

    SHA256(data, len, a);
    for (int i = 0; i < N_MSG; i++) {
        SHA256(f->msg[i], f->len[i], b);
        if (memcmp(a, b, 32) == 0)
            return i;
    }
    return -1;
}

static void test_round_trip(void **state)
{
    struct fx *f = *state;
    struct restore_stats st;
    mr_error err;
    char cur[600];
    int seen[N_MSG] = { 0 };
    DIR *d;
    struct dirent *de;
    size_t files = 0;

    assert_int_equal(f->res->n_messages, N_MSG);
    assert_true(f->res->n_volumes >= 3);    /* 64 KiB volumes, ~170 KiB of filler */
    for (int i = 0; i < N_MSG; i++)
        assert_int_equal(f->res->uids[i].uid, 100 + i);
    assert_int_equal(restore_to(f, f->out, false, NULL, NULL, 0, f->e.it, &st, &err), 0);
    assert_int_equal(st.restored, N_MSG);
    snprintf(cur, sizeof cur, "%s/cur", f->out);
    d = opendir(cur);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        char path[4400];
        struct stat sb;
        size_t len;
        unsigned char *data;
        int i;
        const char *info;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", cur, de->d_name);
        data = th_read_file(path, &len);
        assert_non_null(data);
        i = find_original(f, data, len);
        assert_true(i >= 0);      /* byte-identical to an original */
        free(data);
        if (i != 5)               /* several empty messages would collide; only one here */
            seen[i]++;
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mtime, date_of(i));      /* INTERNALDATE */
        info = strstr(de->d_name, ":2,");
        assert_non_null(info);
        if (strcmp(flags_of(i), "\\Seen") == 0)
            assert_string_equal(info, ":2,S");
        else if (strcmp(flags_of(i), "\\Seen \\Answered") == 0)
            assert_string_equal(info, ":2,RS");
        else if (strcmp(flags_of(i), "\\Flagged $Label1") == 0)
            assert_string_equal(info, ":2,Fa");     /* keyword 0 ('a'), see below */
        else
            assert_string_equal(info, ":2,");
        files++;
    }
    closedir(d);
    assert_int_equal(files, N_MSG);
    for (int i = 0; i < N_MSG; i++)
        if (i != 5)
            assert_int_equal(seen[i], 1);
    /* the keyword's letter is Dovecot's: dovecot-keywords maps it back */
    {
        char kw[700];
        size_t kl;
        snprintf(kw, sizeof kw, "%s/dovecot-keywords", f->out);
        unsigned char *table = th_read_file(kw, &kl);
        assert_non_null(table);
        assert_string_equal((char *)table, "0 $Label1\n");
        free(table);
        assert_int_equal(st.keywords_dropped, 0);
    }

    /* volumes respect the size limit */
    struct archive_manifest m;
    assert_int_equal(archive_manifest_read(f->res->dir, &f->e.trust, &m, &err), 0);
    assert_int_equal(m.message_count, N_MSG);
    assert_int_equal(m.n_volumes, f->res->n_volumes);
    for (size_t v = 0; v < m.n_volumes; v++) {
        assert_true(m.volumes[v].size <= 64 * 1024);
        assert_true(m.volumes[v].reid_size <= 64 * 1024);   /* sealed bodies live there */
    }
    archive_manifest_clear(&m);
    /* i % 7 >= 4 carry a sealed attachment, but for 5 and 6 (edge cases) */
    assert_int_equal(f->res->sealed_parts, 14);
    assert_int_equal(f->res->sealed_messages, 14);

    /* host and deep verification pass */
    struct verify_options vo = { .dir = f->res->dir, .vault_dir = f->e.vault,
                                 .trust = &f->e.trust };
    struct verify_report rep;
    assert_int_equal(verify_batch(&vo, &rep, &err), 0);
    assert_int_equal(rep.volumes, f->res->n_volumes);
    vo.deep = true;
    vo.it_key = f->e.it;
    assert_int_equal(verify_batch(&vo, &rep, &err), 0);
    assert_int_equal(rep.messages, N_MSG);
}

static void test_no_identifiers_or_keys_on_disk(void **state)
{
    struct fx *f = *state;
    const char *keyword[] = { "PRIVATE KEY" };
    char *where = NULL;

    size_t hits = th_find_in_tree(f->e.archive, planted, 5, &where);
    if (hits)
        print_error("identifier found: %s\n", where);
    free(where);
    assert_int_equal(hits, 0);
    assert_int_equal(th_find_in_tree(f->e.vault, planted, 5, NULL), 0);
    assert_int_equal(th_find_in_tree(f->e.archive, keyword, 1, NULL), 0);
    assert_int_equal(th_find_in_tree(f->e.vault, keyword, 1, NULL), 0);
}

/* No private key in a file, as PEM or as DER. */
static int no_private_key(const char *name, const unsigned char *data, size_t len, void *arg)
{
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    EVP_PKEY *p = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
    const unsigned char *q = data;
    EVP_PKEY *p2 = d2i_AutoPrivateKey(NULL, &q, (long)len);

    (void)name;
    (void)arg;
    assert_null(p);
    assert_null(p2);
    BIO_free(bio);
    return 0;
}

/* The host holds certificates only: nothing in the vault or the archive is a usable
 * private key, and a key that is not IT's opens nothing. */
static void test_host_cannot_decrypt(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *other = NULL;
    struct restore_stats st;
    mr_error err;

    assert_true(th_each_file(f->e.vault, no_private_key, NULL) > 0);
    assert_true(th_each_file(f->res->dir, no_private_key, NULL) > 0);
    ERR_clear_error();
    /* no IT key: a clear error */
    assert_int_equal(restore_to(f, f->out, true, NULL, NULL, 0, NULL, &st, &err), MR_E_AUTH);
    assert_non_null(strstr(err.msg, "IT's private key"));
    /* the wrong key: cannot unseal */
    assert_int_equal(keys_generate(KEYS_ALGO_P256, &other, &err), 0);
    assert_int_equal(restore_to(f, f->out, true, NULL, NULL, 0, other, &st, &err), MR_E_CRYPTO);
    assert_non_null(strstr(err.msg, "cannot unseal"));
    assert_int_equal(st.restored, 0);
    /* nor does it open a volume directly */
    char vpath[4400];
    volume_reader *r = NULL;
    snprintf(vpath, sizeof vpath, "%s/vol-0001.p7m", f->res->dir);
    int vrc = volume_open(vpath, other, NULL, &r, &err);
    if (vrc != MR_E_CRYPTO)
        print_error("%s\n", err.msg);
    assert_int_equal(vrc, MR_E_CRYPTO);
    assert_null(r);
    EVP_PKEY_free(other);
}

static void flip(const char *path, long where)
{
    FILE *fp = fopen(path, "r+b");
    long size;
    int c;

    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    size = ftell(fp);
    if (where < 0)
        where = size + where;
    fseek(fp, where, SEEK_SET);
    c = fgetc(fp);
    fseek(fp, where, SEEK_SET);
    fputc(c ^ 0x01, fp);
    fclose(fp);
}

static void test_tamper_detected_and_named(void **state)
{
    struct fx *f = *state;
    struct verify_options vo = { .dir = f->res->dir, .vault_dir = f->e.vault,
                                 .trust = &f->e.trust };
    struct verify_report rep;
    struct restore_stats st;
    mr_error err;
    char path[4400], out2[700];
    const char *files[] = { "vol-0002.p7m", "reid-0001.p7m", "manifest.json" };

    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s", f->res->dir, files[k]);
        flip(path, k == 2 ? 40 : 300);
        assert_int_equal(verify_batch(&vo, &rep, &err), MR_E_TAMPERED);
        assert_non_null(strstr(err.msg, files[k]));
        snprintf(out2, sizeof out2, "%s/out-t%d", f->e.root, k);
        assert_int_equal(restore_to(f, out2, false, NULL, NULL, 0, f->e.it, &st, &err),
                         MR_E_TAMPERED);
        assert_non_null(strstr(err.msg, files[k]));
        flip(path, k == 2 ? 40 : 300);     /* undo */
        assert_int_equal(verify_batch(&vo, &rep, &err), 0);
    }

    /* The GCM tag itself (no manifest hash to lean on): body and tag bytes. */
    for (int k = 0; k < 2; k++) {
        volume_reader *r = NULL;
        snprintf(path, sizeof path, "%s/vol-0001.p7m", f->res->dir);
        EVP_PKEY *ck = NULL;
        struct archive_manifest m;
        assert_int_equal(archive_manifest_read(f->res->dir, &f->e.trust, &m, &err), 0);
        assert_int_equal(keys_epoch_unseal(f->e.vault, m.content_key_id, f->e.it, NULL, &ck,
                                           &err),
                         0);
        archive_manifest_clear(&m);
        flip(path, k == 0 ? 2000 : -20);
        assert_int_equal(volume_open(path, ck, NULL, &r, &err), MR_E_TAMPERED);
        assert_null(r);
        assert_non_null(strstr(err.msg, "vol-0001.p7m"));
        flip(path, k == 0 ? 2000 : -20);
        assert_int_equal(volume_open(path, ck, NULL, &r, &err), 0);
        volume_close(r);
        EVP_PKEY_free(ck);
    }

    /* a missing volume */
    char moved[4400];
    snprintf(path, sizeof path, "%s/vol-0002.p7m", f->res->dir);
    snprintf(moved, sizeof moved, "%s/vol-0002.moved", f->e.root);
    assert_int_equal(rename(path, moved), 0);
    assert_int_equal(verify_batch(&vo, &rep, &err), MR_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "vol-0002.p7m is missing"));
    snprintf(out2, sizeof out2, "%s/out-missing", f->e.root);
    assert_int_equal(restore_to(f, out2, false, NULL, NULL, 0, f->e.it, &st, &err), MR_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "vol-0002.p7m"));
    assert_int_equal(rename(moved, path), 0);

    /* a stray volume not in the manifest */
    snprintf(path, sizeof path, "%s/vol-0099.p7m", f->res->dir);
    assert_int_equal(th_write_file(path, "x", 1), 0);
    assert_int_equal(verify_batch(&vo, &rep, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "vol-0099.p7m"));
    unlink(path);

    /* a keyring without the signer: refused, naming the manifest */
    {
        struct archive_trust other = { 0 };
        keys_keyring *kr = keys_keyring_new();
        EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        assert_int_equal(keys_keyring_add(kr, k2, &err), 0);
        other.keyring = kr;
        vo.trust = &other;
        assert_int_equal(verify_batch(&vo, &rep, &err), MR_E_TAMPERED);
        assert_non_null(strstr(err.msg, "manifest.json"));
        assert_non_null(strstr(err.msg, "not pinned"));
        /* the override reads it, and says so */
        other.accept_unverified = true;
        assert_int_equal(verify_batch(&vo, &rep, &err), 0);
        assert_int_equal(rep.auth, ARCHIVE_AUTH_OVERRIDDEN);
        assert_non_null(strstr(rep.auth_problem, "not pinned"));
        vo.trust = &f->e.trust;
        EVP_PKEY_free(k2);
        keys_keyring_free(kr);
    }
}

/* A ledger cut back to before a batch that recorded its head is refused, naming the
 * batch; the ledger as it was is accepted and erases. */
static void test_ledger_truncated_refused(void **state)
{
    struct fx *f = *state;
    char tok[PSEUDO_TOKEN_LEN + 1], entry[64], ledger[600], out2[700];
    struct ledger_writer w = { .path = ledger, .it_cert = f->e.it_cert, .signer = f->e.sk,
                               .keyring = f->e.kr };
    struct ledger_anchor a;
    struct archive_result *res2 = NULL;
    struct restore_stats st;
    unsigned char *saved;
    size_t saved_len;
    mr_error err;

    snprintf(ledger, sizeof ledger, "%s/ledger", f->e.root);
    assert_int_equal(ledger_prepare(&w, &a, &err), 0);
    saved = th_read_file(ledger, &saved_len);      /* the empty ledger, validly signed */
    assert_int_equal(pseudo_token(&f->e.pkey, PSEUDO_EMAIL, "Bo.Hansen@mail.example.org", tok,
                                  &err), 0);
    snprintf(entry, sizeof entry, "email:%s", tok);
    assert_int_equal(ledger_append(&w, entry, &a, &err), 0);
    f->anchor = &a;
    assert_int_equal(do_backup(f, 64 * 1024, &res2), 0);
    archive_result_free(res2);
    f->anchor = NULL;

    snprintf(out2, sizeof out2, "%s/out-full", f->e.root);
    assert_int_equal(restore_to(f, out2, false, ledger, NULL, 0, f->e.it, &st, &err), 0);
    assert_int_equal(st.erased, 2 * (N_MSG - 2));

    assert_int_equal(th_write_file(ledger, saved, saved_len), 0);
    snprintf(out2, sizeof out2, "%s/out-cut", f->e.root);
    assert_int_equal(restore_to(f, out2, false, ledger, NULL, 0, f->e.it, &st, &err),
                     MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "checked against batch"));
    assert_non_null(strstr(err.msg, "removed from the end"));
    /* neither given: refused */
    {
        struct restore_options o = {
            .archive_dir = f->e.archive, .vault_dir = f->e.vault, .it_key = f->e.it,
            .trust = &f->e.trust, .format = RESTORE_MAILDIR, .output = out2,
            .reason = "unit test",
        };
        assert_int_equal(restore_run(&o, &st, &err), MR_E_INVALID);
        assert_non_null(strstr(err.msg, "--no-ledger"));
    }
    free(saved);
}

static void test_ledger_and_selection(void **state)
{
    struct fx *f = *state;
    char tok[PSEUDO_TOKEN_LEN + 1], line[64], ledger[600], out2[700];
    struct restore_stats st;
    mr_error err;

    /* Bo's address appears in every message except the empty one and the binary one. */
    assert_int_equal(pseudo_token(&f->e.pkey, PSEUDO_EMAIL, "Bo.Hansen@mail.example.org", tok,
                                  &err), 0);
    snprintf(line, sizeof line, "email:%s", tok);
    snprintf(ledger, sizeof ledger, "%s/ledger", f->e.root);
    {
        struct ledger_writer w = { .path = ledger, .it_cert = f->e.it_cert, .signer = f->e.sk,
                                   .keyring = f->e.kr };
        struct ledger_anchor a;
        assert_int_equal(ledger_append(&w, line, &a, &err), 0);
    }
    snprintf(out2, sizeof out2, "%s/out-ledger", f->e.root);
    assert_int_equal(restore_to(f, out2, false, ledger, NULL, 0, f->e.it, &st, &err), 0);
    assert_int_equal(st.erased, N_MSG - 2);
    assert_int_equal(st.restored, 2);

    /* selection by person: the same token selects those messages */
    char sel[64];
    snprintf(sel, sizeof sel, "email:%s", tok);
    const char *toks[] = { sel };
    snprintf(out2, sizeof out2, "%s/out-person", f->e.root);
    assert_int_equal(restore_to(f, out2, false, NULL, toks, 1, f->e.it, &st, &err), 0);
    assert_int_equal(st.restored, N_MSG - 2);
    assert_int_equal(st.not_selected, 2);

    /* a token selects only in batches of the pseudonym epoch it was made under: this
     * batch is epoch 0 */
    {
        unsigned ep = 1;
        struct restore_options po = {
            .archive_dir = f->e.archive, .vault_dir = f->e.vault, .it_key = f->e.it,
            .trust = &f->e.trust, .tokens = toks, .n_tokens = 1, .token_epochs = &ep,
            .format = RESTORE_MAILDIR, .reason = "unit test", .no_ledger = true,
        };
        snprintf(out2, sizeof out2, "%s/out-person-e1", f->e.root);
        po.output = out2;
        assert_int_equal(restore_run(&po, &st, &err), 0);
        assert_int_equal(st.restored, 0);
        assert_int_equal(st.not_selected, N_MSG);
        ep = 0;
        snprintf(out2, sizeof out2, "%s/out-person-e0", f->e.root);
        po.output = out2;
        assert_int_equal(restore_run(&po, &st, &err), 0);
        assert_int_equal(st.restored, N_MSG - 2);
    }

    /* by Message-ID and date */
    struct restore_options o = {
        .archive_dir = f->e.archive, .vault_dir = f->e.vault, .it_key = f->e.it,
        .trust = &f->e.trust,
        .message_id = "<msg-12@example.dk>", .format = RESTORE_MBOX, .reason = "unit test",
        .no_ledger = true,
    };
    snprintf(out2, sizeof out2, "%s/one.mbox", f->e.root);
    o.output = out2;
    assert_int_equal(restore_run(&o, &st, &err), 0);
    assert_int_equal(st.restored, 1);
    {
        /* mboxrd: a From_ line per message, body "From " lines quoted */
        size_t mlen;
        char *mbox = (char *)th_read_file(out2, &mlen);
        assert_non_null(mbox);
        assert_memory_equal(mbox, "From MAILER-DAEMON ", 19);
        assert_non_null(strstr(mbox, "\r\n>From the desk of Anna Jensen\r\n"));
        assert_non_null(strstr(mbox, "Message-ID: <msg-12@example.dk>"));
        free(mbox);
    }
    o.message_id = NULL;
    o.from = date_of(10);
    o.to = date_of(20);
    snprintf(out2, sizeof out2, "%s/range.mbox", f->e.root);
    o.output = out2;
    assert_int_equal(restore_run(&o, &st, &err), 0);
    assert_int_equal(st.restored, 10);
    /* a reason is required */
    o.reason = NULL;
    assert_int_equal(restore_run(&o, &st, &err), MR_E_INVALID);

    /* pseudonymised restore: archived bytes, no identifiers */
    snprintf(out2, sizeof out2, "%s/out-pseudo", f->e.root);
    assert_int_equal(restore_to(f, out2, true, NULL, NULL, 0, f->e.it, &st, &err), 0);
    assert_int_equal(st.restored, N_MSG);
    assert_int_equal(th_find_in_tree(out2, planted, 5, NULL), 0);
}

/* The manifest is the commit point; hold re-writes it under a fresh HMAC. */
static void test_manifest_commit_point_and_hold(void **state)
{
    struct fx *f = *state;
    struct archive_batch_ref *refs = NULL;
    struct archive_manifest m;
    struct restore_stats st;
    size_t n = 0;
    mr_error err;
    char path[4400], saved[4400], dir[4096];
    struct verify_options vo = { .dir = f->res->dir, .vault_dir = f->e.vault,
                                 .trust = &f->e.trust };
    struct verify_report rep;

    assert_int_equal(archive_batch_list(f->e.archive, "post@akasse.dk", &refs, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_true(refs[0].has_manifest);
    assert_string_equal(refs[0].dir, f->res->dir);
    free(refs);
    assert_int_equal(archive_batch_find(f->e.archive, f->res->batch_id, dir, sizeof dir, &err), 0);
    assert_string_equal(dir, f->res->dir);

    assert_int_equal(archive_batch_set_hold(f->res->dir, true, &f->e.trust, f->e.sk, f->e.vault,
                                            NULL, &err), 0);
    assert_int_equal(archive_manifest_read(f->res->dir, &f->e.trust, &m, &err), 0);
    assert_true(m.hold);
    assert_true(m.hold_since > 0);
    archive_manifest_clear(&m);
    assert_int_equal(verify_batch(&vo, &rep, &err), 0);

    snprintf(path, sizeof path, "%s/manifest.json", f->res->dir);
    snprintf(saved, sizeof saved, "%s/manifest.saved", f->e.root);
    assert_int_equal(rename(path, saved), 0);
    assert_int_equal(archive_batch_list(f->e.archive, NULL, &refs, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_false(refs[0].has_manifest);
    free(refs);
    assert_int_equal(verify_batch(&vo, &rep, &err), MR_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "no manifest"));
    char out2[700];
    snprintf(out2, sizeof out2, "%s/out-nomanifest", f->e.root);
    assert_int_equal(restore_to(f, out2, true, NULL, NULL, 0, f->e.it, &st, &err), MR_E_NOTFOUND);
    assert_int_equal(rename(saved, path), 0);

    /* the epoch keys were forgotten after verification; shredding one makes the batch
     * unrecoverable even though every volume is intact */
    assert_int_equal(archive_manifest_read(f->res->dir, &f->e.trust, &m, &err), 0);
    assert_int_equal(keys_epoch_shred(f->e.vault, m.content_key_id, NULL, &err), 0);
    archive_manifest_clear(&m);
    assert_int_equal(verify_batch(&vo, &rep, &err), MR_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "missing from the vault"));
    snprintf(out2, sizeof out2, "%s/out-shredded", f->e.root);
    assert_int_equal(restore_to(f, out2, true, NULL, NULL, 0, f->e.it, &st, &err), MR_E_NOTFOUND);
    assert_int_equal(st.restored, 0);
}

static void test_tar_long_names(void **state)
{
    struct mr_buf b = { 0 };
    char name[201];
    struct tar_entry e;
    mr_error err;
    (void)state;

    memset(name, 'n', 200);
    name[200] = '\0';
    assert_int_equal(tar_write_entry(&b, name, 1, (const unsigned char *)"abc", 3, &err), 0);
    assert_int_equal(tar_write_entry(&b, "short", 2, (const unsigned char *)"", 0, &err), 0);
    assert_int_equal(tar_write_end(&b, &err), 0);
    assert_int_equal(b.len, tar_entry_size(name, 3) + tar_entry_size("short", 0) + TAR_END_SIZE);
    struct tar_mem_src src = { b.data, b.len, 0 };
    assert_int_equal(tar_read_next(tar_mem_read, &src, 100, &e, &err), 1);
    assert_string_equal(e.name, name);
    assert_int_equal(e.len, 3);
    assert_memory_equal(e.data, "abc", 3);
    free(e.data);
    assert_int_equal(tar_read_next(tar_mem_read, &src, 100, &e, &err), 1);
    assert_string_equal(e.name, "short");
    free(e.data);
    assert_int_equal(tar_read_next(tar_mem_read, &src, 100, &e, &err), 0);
    /* a corrupted header checksum is refused */
    b.data[600 + 512] ^= 1;
    src.pos = 0;
    assert_int_equal(tar_read_next(tar_mem_read, &src, 100, &e, &err), MR_E_PARSE);
    buf_free(&b);
}

/* Mailbox directory names: one to one and reversible; plain names unchanged; batches
 * under an older '_'-replaced name found only for the mailbox their manifest names. */
/* A batch directory root/dir whose manifest names only the mailbox (mailbox NULL: none, an
 * interrupted run): what listing reads. */
static void plant_batch(const char *root, const char *dir, const char *mailbox)
{
    char path[1024], cmd[1200], json[128];

    snprintf(cmd, sizeof cmd, "mkdir -p '%s/%s'", root, dir);
    assert_int_equal(system(cmd), 0);
    if (mailbox == NULL)
        return;
    snprintf(path, sizeof path, "%s/%s/manifest.json", root, dir);
    snprintf(json, sizeof json, "{\"mailbox\":\"%s\"}\n", mailbox);
    assert_int_equal(th_write_file(path, json, strlen(json)), 0);
}

static void test_mailbox_dirname(void **state)
{
    static const struct { const char *mb, *dir; } v[] = {
        { "INBOX", "INBOX" }, { "Sager", "Sager" }, { "post@akasse.dk", "post@akasse.dk" },
        { "A_B", "A_B" }, { "A/B", "A%2FB" }, { "A%B", "A%25B" }, { "A B", "A%20B" },
        { ".hidden", "%2Ehidden" }, { "..", "%2E." }, { ".", "%2E" }, { "a.b", "a.b" },
        { "Sager \xc3\xa6", "Sager%20%C3%A6" }, { "\x01", "%01" }, { "%2F", "%252F" },
    };
    static const char *const bad_dirs[] = { "%2f", "%4", "%G0", "%41", ".x", "a b", "" };
    char out[256], back[256], seen[300][256];
    size_t n_seen = 0;
    mr_error err;

    (void)state;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        assert_int_equal(archive_mailbox_dirname(v[i].mb, out, sizeof out, &err), 0);
        assert_string_equal(out, v[i].dir);
        assert_int_equal(archive_mailbox_from_dirname(out, back, sizeof back, &err), 0);
        assert_string_equal(back, v[i].mb);
    }
    for (size_t i = 0; i < sizeof bad_dirs / sizeof bad_dirs[0]; i++)
        assert_int_equal(archive_mailbox_from_dirname(bad_dirs[i], back, sizeof back, &err),
                         MR_E_INVALID);
    assert_int_equal(archive_mailbox_dirname("", out, sizeof out, &err), MR_E_INVALID);
    {
        char big[200];
        memset(big, '/', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        assert_int_equal(archive_mailbox_dirname(big, out, sizeof out, &err), MR_E_INVALID);
    }
    /* Every name of up to two bytes from a set rich in collisions of the old scheme:
     * all directory names distinct, each reads back. */
    static const char alpha[] = "A_/%. \xc3";
    for (size_t a = 0; a < sizeof alpha - 1; a++) {
        for (size_t b = 0; b <= sizeof alpha - 1; b++) {
            char name[3] = { alpha[a], b < sizeof alpha - 1 ? alpha[b] : '\0', '\0' };
            assert_int_equal(archive_mailbox_dirname(name, out, sizeof out, &err), 0);
            for (size_t k = 0; k < n_seen; k++)
                assert_string_not_equal(seen[k], out);
            snprintf(seen[n_seen++], sizeof seen[0], "%s", out);
            assert_int_equal(archive_mailbox_from_dirname(out, back, sizeof back, &err), 0);
            assert_string_equal(back, name);
        }
    }

    /* Old layout: "A_B/" holds one batch of mailbox "A/B" and one of "A_B". */
    char *root = th_tempdir("mbdir");
    struct archive_batch_ref *refs = NULL;
    size_t n = 0;
    static const struct { const char *dir, *mb; } old[] = {
        { "A_B/2026-10-aaaa", "A/B" }, { "A_B/2026-10-bbbb", "A_B" },
        { "A%2FB/2026-11-cccc", "A/B" },
    };
    for (size_t i = 0; i < 3; i++)
        plant_batch(root, old[i].dir, old[i].mb);
    assert_int_equal(archive_batch_list(root, "A/B", &refs, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_non_null(strstr(refs[0].dir, "A%2FB/2026-11-cccc"));
    assert_non_null(strstr(refs[1].dir, "A_B/2026-10-aaaa"));
    free(refs);
    assert_int_equal(archive_batch_list(root, "A_B", &refs, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_non_null(strstr(refs[0].dir, "A_B/2026-10-bbbb"));
    free(refs);
    assert_int_equal(archive_batch_list(root, "A B", &refs, &n, &err), 0);
    assert_int_equal(n, 0);
    free(refs);
    th_rmtree(root);
    free(root);
}

/* Which account filed a batch: "NAME:mailbox" with NAME of an account name's form is
 * account NAME's, any other key the default account's; by the mailbox the manifest
 * names, else by the directory's name. */
static void test_mailbox_account(void **state)
{
    static const struct { const char *key, *account; } v[] = {
        { "INBOX", "default" }, { "bob:INBOX", "bob" }, { "kbh-2_x:Sager/2024", "kbh-2_x" },
        { "bob:x:y", "bob" }, { "9:INBOX", "9" }, { "Bob:INBOX", "default" },
        { "-x:INBOX", "default" }, { "_x:INBOX", "default" }, { ":INBOX", "default" },
        { "a b:INBOX", "default" }, { "bob", "default" }, { "b\xc3\xb8" "b:INBOX", "default" },
        { "abcdefghijklmnopqrstuvwxyz012345:INBOX", "abcdefghijklmnopqrstuvwxyz012345" },
        { "abcdefghijklmnopqrstuvwxyz0123456:INBOX", "default" },
    };
    static const struct { const char *dir, *mb; } batches[] = {
        { "INBOX/2026-10-aaaa", "INBOX" },
        { "bob%3AINBOX/2026-10-bbbb", "bob:INBOX" },
        { "bob%3AINBOX/2026-11-cccc", NULL },       /* interrupted: no manifest */
        { "bob_INBOX/2026-09-dddd", "bob:INBOX" },  /* the old directory name */
        { "Sager/2026-10-eeee", "Sager" },
        { "ann%3AINBOX/2026-10-ffff", "ann:INBOX" },
    };
    char out[ARCHIVE_ACCOUNT_NAME_MAX + 1], path[1024];
    char *root = th_tempdir("account");
    struct archive_batch_ref *refs = NULL;
    size_t n = 0;
    mr_error err;

    (void)state;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        archive_mailbox_account(v[i].key, out);
        assert_string_equal(out, v[i].account);
    }
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++)
        plant_batch(root, batches[i].dir, batches[i].mb);
    assert_int_equal(archive_batch_list_account(root, "bob", &refs, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_non_null(strstr(refs[0].dir, "/bob%3AINBOX/2026-10-bbbb"));
    assert_non_null(strstr(refs[1].dir, "/bob%3AINBOX/2026-11-cccc"));
    assert_non_null(strstr(refs[2].dir, "/bob_INBOX/2026-09-dddd"));
    free(refs);
    assert_int_equal(archive_batch_list_account(root, "default", &refs, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_non_null(strstr(refs[0].dir, "/INBOX/2026-10-aaaa"));
    assert_non_null(strstr(refs[1].dir, "/Sager/2026-10-eeee"));
    free(refs);
    assert_int_equal(archive_batch_list_account(root, "nosuch", &refs, &n, &err), 0);
    assert_int_equal(n, 0);
    free(refs);
    snprintf(path, sizeof path, "%s/bob_INBOX/2026-09-dddd", root);
    archive_batch_account(path, out);
    assert_string_equal(out, "bob");
    snprintf(path, sizeof path, "%s/bob%%3AINBOX/2026-11-cccc", root);
    archive_batch_account(path, out);
    assert_string_equal(out, "bob");
    snprintf(path, sizeof path, "%s/Sager/2026-10-eeee", root);
    archive_batch_account(path, out);
    assert_string_equal(out, "default");
    th_rmtree(root);
    free(root);
}

/* ---- crafted volumes: content a signed manifest vouches for but that breaks the reader's
 * assumptions (the host signs what it wrote; a damaged or malicious writer must still not
 * crash or exhaust IT's restore).  The volume is encrypted to the batch's real epoch
 * certificate and the manifest re-signed with the host key, so only the reader's own
 * checks stand between the bytes and the output. */

static void sha_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];

    SHA256(data, len, md);
    volume_hex(md, 32, out);
}

/* Replace the batch with one volume whose content and reid plaintexts are given. */
static void install_crafted(struct fx *f, const struct mr_buf *content, const struct mr_buf *reid,
                            size_t messages)
{
    struct archive_manifest m;
    char path[4400], cert[4400];
    X509 *ccert = NULL, *rcert = NULL;
    mr_error err;

    assert_int_equal(archive_manifest_read(f->res->dir, &f->e.trust, &m, &err), 0);
    snprintf(cert, sizeof cert, "%s/%s.crt.pem", f->e.vault, m.content_key_id);
    assert_int_equal(keys_cert_load(cert, &ccert, &err), 0);
    snprintf(cert, sizeof cert, "%s/%s.crt.pem", f->e.vault, m.reid_key_id);
    assert_int_equal(keys_cert_load(cert, &rcert, &err), 0);
    for (size_t i = 0; i < m.n_volumes; i++) {
        snprintf(path, sizeof path, "%s/%s", f->res->dir, m.volumes[i].name);
        unlink(path);
        snprintf(path, sizeof path, "%s/%s", f->res->dir, m.volumes[i].reid_name);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/vol-0001.p7m", f->res->dir);
    assert_int_equal(volume_write(path, content->data, content->len, 6, ccert, &err), 0);
    assert_int_equal(volume_file_hash(path, &m.volumes[0].size, m.volumes[0].sha256, &err), 0);
    snprintf(path, sizeof path, "%s/reid-0001.p7m", f->res->dir);
    assert_int_equal(volume_write(path, reid->data, reid->len, 6, rcert, &err), 0);
    assert_int_equal(volume_file_hash(path, &m.volumes[0].reid_size, m.volumes[0].reid_sha256,
                                      &err), 0);
    m.volumes[0].messages = messages;
    m.n_volumes = 1;
    m.message_count = messages;
    snprintf(path, sizeof path, "%s/manifest.json", f->res->dir);
    unlink(path);
    assert_int_equal(archive_manifest_write(f->res->dir, &m, f->e.sk, &err), 0);
    archive_manifest_clear(&m);
    X509_free(ccert);
    X509_free(rcert);
}

static void add_index_line(struct mr_buf *idx, const char *file, const void *data, size_t len)
{
    char sha[65], line[1024];

    sha_hex(data, len, sha);
    snprintf(line, sizeof line,
             "{\"file\":\"%s\",\"uidvalidity\":7,\"uid\":1,\"internaldate\":"
             "\"2026-09-21T14:13:20Z\",\"internaldate_unix\":1790000000,\"tz_min\":0,"
             "\"flags\":\"\",\"size\":%zu,\"sha256\":\"%s\",\"pseudo_size\":%zu,"
             "\"pseudo_sha256\":\"%s\",\"tokens\":[]}\n", file, len, sha, len, sha);
    assert_int_equal(buf_append(idx, line, strlen(line), NULL), 0);
}

static void test_crafted_index_names(void **state)
{
    struct fx *f = *state;
    /* names the index may not give a member: too short for ".eml", not the message's
     * "<uidvalidity>-<uid>.eml", a path, the index itself */
    static const char *const bad[] = { "a", "", ".eml", "7-2.eml", "../7-1.eml", "index.jsonl",
                                       "7-1.emlx" };
    struct restore_stats st;
    mr_error err;

    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        struct mr_buf c = { 0 }, r = { 0 }, idx = { 0 };
        char out2[700], rname[300];
        const char *name = bad[k][0] != '\0' ? bad[k] : "x";
        assert_int_equal(tar_write_entry(&c, name, 0, (const unsigned char *)"x", 1, &err), 0);
        add_index_line(&idx, bad[k], "x", 1);
        assert_int_equal(tar_write_entry(&c, INDEX_FILE, 0, idx.data, idx.len, &err), 0);
        assert_int_equal(tar_write_end(&c, &err), 0);
        /* the reid entry named exactly like the content entry reaches the stem check */
        snprintf(rname, sizeof rname, "%s", name);
        assert_int_equal(tar_write_entry(&r, rname, 0, (const unsigned char *)"y", 1, &err), 0);
        assert_int_equal(tar_write_end(&r, &err), 0);
        install_crafted(f, &c, &r, 1);
        snprintf(out2, sizeof out2, "%s/out-bad-%zu", f->e.root, k);
        assert_int_equal(restore_to(f, out2, false, NULL, NULL, 0, f->e.it, &st, &err),
                         MR_E_TAMPERED);
        assert_non_null(strstr(err.msg, "vol-0001.p7m"));
        assert_int_equal(st.restored, 0);
        buf_free(&c);
        buf_free(&r);
        buf_free(&idx);
    }
}

static void test_crafted_bomb(void **state)
{
    struct fx *f = *state;
    struct mr_buf c = { 0 }, r = { 0 }, idx = { 0 };
    struct restore_stats st;
    size_t big = (size_t)300 << 20;     /* 300 MiB of zeros: gzip makes ~300 KB of it */
    unsigned char *zeros = calloc(1, big);
    char out2[700], path[4400];
    unsigned long long vsize = 0;
    char vsha[65];
    mr_error err;

    assert_non_null(zeros);
    assert_int_equal(tar_write_entry(&c, "7-1.eml", 0, zeros, big, &err), 0);
    add_index_line(&idx, "7-1.eml", zeros, big);
    free(zeros);
    assert_int_equal(tar_write_entry(&c, INDEX_FILE, 0, idx.data, idx.len, &err), 0);
    assert_int_equal(tar_write_end(&c, &err), 0);
    assert_int_equal(tar_write_entry(&r, "7-1.reid", 0, (const unsigned char *)"y", 1, &err), 0);
    assert_int_equal(tar_write_end(&r, &err), 0);
    install_crafted(f, &c, &r, 1);
    buf_free(&c);
    buf_free(&r);
    buf_free(&idx);
    snprintf(path, sizeof path, "%s/vol-0001.p7m", f->res->dir);
    assert_int_equal(volume_file_hash(path, &vsize, vsha, &err), 0);
    assert_true(vsize < (2u << 20));    /* the set-up: a small file, a huge plaintext */
    snprintf(out2, sizeof out2, "%s/out-bomb", f->e.root);
    assert_int_equal(restore_to(f, out2, true, NULL, NULL, 0, f->e.it, &st, &err), MR_E_LIMIT);
    assert_non_null(strstr(err.msg, "vol-0001.p7m"));
    assert_non_null(strstr(err.msg, "decompression bomb"));
    assert_null(strchr(err.msg, '\n'));
    assert_int_equal(st.restored, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tar_long_names),
        cmocka_unit_test(test_mailbox_dirname),
        cmocka_unit_test(test_mailbox_account),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_identifiers_or_keys_on_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_cannot_decrypt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_detected_and_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ledger_and_selection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ledger_truncated_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_commit_point_and_hold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crafted_index_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crafted_bomb, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
