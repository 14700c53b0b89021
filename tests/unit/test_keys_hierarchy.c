/* test_keys_hierarchy.c — keys/: IT key pair with passphrase, host keys, epoch keys sealed
 * into the vault, unseal only with the holder's key, forget and shred, listing, audit. */
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

#include "common/secret.h"
#include "common/audit.h"
#include "helpers/test_helpers.h"
#include "keys/keys.h"

struct fx {
    char *dir;
    char it_key[512], it_cert[512], vault[512], audit_path[512];
    audit_log *audit;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    mr_error err;

    f->dir = th_tempdir("keys");
    snprintf(f->it_key, sizeof f->it_key, "%s/it.key", f->dir);
    snprintf(f->it_cert, sizeof f->it_cert, "%s/it.crt", f->dir);
    snprintf(f->vault, sizeof f->vault, "%s/vault", f->dir);
    snprintf(f->audit_path, sizeof f->audit_path, "%s/audit.log", f->dir);
    assert_int_equal(audit_open(&f->audit, f->audit_path, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    audit_close(f->audit);
    th_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void make_it_algo(struct fx *f, enum keys_algo algo)
{
    struct keys_it_options o = { .key_path = f->it_key, .cert_path = f->it_cert,
                                 .algo = algo, .passphrase = "correct horse 1" };
    char id[KEYS_ID_LEN + 1];
    mr_error err;

    assert_int_equal(keys_init_it(&o, f->audit, id, &err), 0);
    assert_int_equal(strlen(id), KEYS_ID_LEN);
}

static void make_it(struct fx *f)
{
    make_it_algo(f, KEYS_ALGO_P256);
}

static void test_it_key_passphrase(void **state)
{
    struct fx *f = *state;
    EVP_PKEY *pk = NULL;
    X509 *cert = NULL;
    struct stat st;
    mr_error err;
    unsigned char *pem;
    size_t len;

    make_it(f);
    assert_int_equal(stat(f->it_key, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    /* encrypted PKCS#8 on disk, not a bare key */
    pem = th_read_file(f->it_key, &len);
    assert_non_null(strstr((char *)pem, "BEGIN ENCRYPTED PRIVATE KEY"));
    free(pem);
    assert_int_equal(keys_private_load(f->it_key, "wrong passphrase", &pk, &err), MR_E_AUTH);
    assert_non_null(strstr(err.msg, "wrong passphrase"));
    assert_int_equal(keys_private_load(f->it_key, NULL, &pk, &err), MR_E_AUTH);
    assert_int_equal(keys_private_load(f->it_key, "correct horse 1", &pk, &err), 0);
    assert_int_equal(keys_cert_load(f->it_cert, &cert, &err), 0);
    assert_true(keys_cert_matches(cert, pk));
    /* refuses to overwrite */
    {
        struct keys_it_options o = { .key_path = f->it_key, .cert_path = f->it_cert,
                                     .passphrase = "another one 2" };
        char id[KEYS_ID_LEN + 1];
        assert_int_equal(keys_init_it(&o, NULL, id, &err), MR_E_EXISTS);
    }
    /* a short passphrase is refused */
    {
        char k2[600], c2[600], id[KEYS_ID_LEN + 1];
        snprintf(k2, sizeof k2, "%s/x.key", f->dir);
        snprintf(c2, sizeof c2, "%s/x.crt", f->dir);
        struct keys_it_options o = { .key_path = k2, .cert_path = c2, .passphrase = "short" };
        assert_int_equal(keys_init_it(&o, NULL, id, &err), MR_E_INVALID);
        o.passphrase = "elevenchars";
        assert_int_equal(keys_init_it(&o, NULL, id, &err), MR_E_INVALID);
        assert_non_null(strstr(err.msg, "at least 12 characters"));
    }
    /* a group-readable key file is refused */
    chmod(f->it_key, 0640);
    EVP_PKEY *pk2 = NULL;
    assert_int_equal(keys_private_load(f->it_key, "correct horse 1", &pk2, &err), MR_E_PERM);
    chmod(f->it_key, 0600);
    EVP_PKEY_free(pk);
    X509_free(cert);
}

static void test_secret_sources(void **state)
{
    struct fx *f = *state;
    char path[600], *s = NULL;
    mr_error err;

    snprintf(path, sizeof path, "%s/pass", f->dir);
    assert_int_equal(th_write_file(path, "s3cret pass\n", 12), 0);
    chmod(path, 0644);
    struct keys_secret_source src = { .file = path };
    assert_int_equal(keys_secret_read(&src, &s, &err), MR_E_PERM);
    assert_null(s);
    chmod(path, 0600);
    assert_int_equal(keys_secret_read(&src, &s, &err), 0);
    assert_string_equal(s, "s3cret pass");
    secret_free(s);
    setenv("MAILRET_TEST_PASS", "from env", 1);
    struct keys_secret_source env = { .env = "MAILRET_TEST_PASS" };
    assert_int_equal(keys_secret_read(&env, &s, &err), 0);
    assert_string_equal(s, "from env");
    secret_free(s);
    struct keys_secret_source none = { .env = "MAILRET_TEST_UNSET_VAR" };
    assert_int_equal(keys_secret_read(&none, &s, &err), MR_E_CONFIG);
}

/* The whole host and epoch key life cycle with an IT key of the given kind: P-256 (ECDH,
 * KeyAgreeRecipientInfo) or RSA-3072 (KeyTransRecipientInfo). */
static void host_and_epoch(struct fx *f, enum keys_algo algo)
{
    char pk_path[600], mk_path[600], kr_path[600], sealed[600], it_inst[600], reid_inst[600];
    unsigned char pkey[KEYS_SECRET_LEN], *unsealed = NULL;
    size_t ulen = 0, n = 0;
    EVP_PKEY *it = NULL, *other = NULL, *ep_priv = NULL;
    X509 *itc = NULL;
    keys_epoch *ep = NULL;
    struct keys_entry *list = NULL;
    struct stat st;
    mr_error err;

    make_it_algo(f, algo);
    snprintf(pk_path, sizeof pk_path, "%s/pseudonym.key", f->dir);
    snprintf(mk_path, sizeof mk_path, "%s/signing-key.pem", f->dir);
    snprintf(kr_path, sizeof kr_path, "%s/host-keys.pem", f->dir);
    assert_int_equal(keys_pseudonym_sealed_path(f->vault, 0, sealed, sizeof sealed, &err), 0);
    snprintf(it_inst, sizeof it_inst, "%s/it-installed.crt", f->dir);
    snprintf(reid_inst, sizeof reid_inst, "%s/reid-installed.crt", f->dir);
    mkdir(f->vault, 0700);
    struct keys_host_options ho = { .it_cert_source = f->it_cert, .it_cert = it_inst,
                                    .reid_cert = reid_inst, .pseudonym_key_file = pk_path,
                                    .vault_dir = f->vault,
                                    .signing_key_file = mk_path, .host_keyring = kr_path };
    assert_int_equal(keys_init_host(&ho, f->audit, &err), 0);
    assert_int_equal(strlen(ho.signing_fpr), KEYS_FPR_LEN);
    assert_int_equal(stat(pk_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, KEYS_SECRET_LEN);
    assert_int_equal(stat(mk_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    {
        /* the keyring holds the signing key's public half, under its id */
        keys_keyring *kr = keys_keyring_new();
        assert_int_equal(keys_keyring_add_file(kr, kr_path, &err), 0);
        assert_int_equal(keys_keyring_size(kr), 1);
        assert_string_equal(keys_keyring_id(kr, 0), ho.signing_id);
        keys_keyring_free(kr);
    }
    assert_int_equal(keys_init_host(&ho, f->audit, &err), MR_E_EXISTS);
    assert_int_equal(keys_secret_key_read(pk_path, pkey, &err), 0);

    /* Without a separate re-identification holder IT is that holder: IT opens the sealed
     * pseudonym key, and it is the host's key */
    assert_int_equal(keys_private_load(f->it_key, "correct horse 1", &it, &err), 0);
    assert_true(EVP_PKEY_is_a(it, algo == KEYS_ALGO_RSA3072 ? "RSA" : "EC"));
    if (algo == KEYS_ALGO_RSA3072)
        assert_int_equal(EVP_PKEY_get_bits(it), 3072);
    assert_int_equal(keys_unseal_file(sealed, it, &unsealed, &ulen, &err), 0);
    assert_int_equal(ulen, KEYS_SECRET_LEN);
    assert_memory_equal(unsealed, pkey, KEYS_SECRET_LEN);
    keys_wipe_free(unsealed, ulen);

    /* epoch key: sealed before use, public cert and metadata beside it */
    assert_int_equal(keys_cert_load(it_inst, &itc, &err), 0);
    struct keys_epoch_options eo = { .vault_dir = f->vault, .role = KEYS_EPOCH_CONTENT,
                                     .holder = itc, .holder_name = "it",
                                     .batch_id = "20261101T000000Z-abcd", .created = 1790000000,
                                     .expires = 1790000000 + 5 * 366 * 86400 };
    assert_int_equal(keys_epoch_create(&eo, f->audit, &ep, &err), 0);
    const char *id = keys_epoch_id(ep);
    assert_true(keys_epoch_present(f->vault, id));
    assert_non_null(keys_epoch_private(ep));
    char idcopy[KEYS_ID_LEN + 1];
    strcpy(idcopy, id);
    keys_epoch_forget(ep, f->audit);
    assert_null(keys_epoch_private(ep));
    keys_epoch_free(ep);

    /* No private key in the clear anywhere in the vault */
    const char *needles[] = { "PRIVATE KEY" };
    assert_int_equal(th_find_in_tree(f->vault, needles, 1, NULL), 0);

    /* only the holder unseals */
    assert_int_equal(keys_epoch_unseal(f->vault, idcopy, it, f->audit, &ep_priv, &err), 0);
    char got[KEYS_ID_LEN + 1];
    assert_int_equal(keys_key_id(ep_priv, got, &err), 0);
    assert_string_equal(got, idcopy);
    EVP_PKEY_free(ep_priv);
    ep_priv = NULL;
    assert_int_equal(keys_generate(KEYS_ALGO_P256, &other, &err), 0);
    assert_int_equal(keys_epoch_unseal(f->vault, idcopy, other, NULL, &ep_priv, &err),
                     MR_E_CRYPTO);
    assert_null(ep_priv);

    /* listing: ids, holders, dates */
    struct keys_list_options lo = { .vault_dir = f->vault, .it_cert = it_inst,
                                    .reid_cert = reid_inst, .pseudonym_key_file = pk_path,
                                    .signing_key_file = mk_path, .host_keyring = kr_path };
    assert_int_equal(keys_list(&lo, &list, &n, &err), 0);
    assert_int_equal(n, 5);
    assert_string_equal(list[3].kind, "host-signing");
    assert_string_equal(list[3].holder, "host (current)");
    assert_string_equal(list[4].kind, "epoch-content");
    assert_string_equal(list[4].id, idcopy);
    assert_string_equal(list[4].batch, "20261101T000000Z-abcd");
    assert_true(list[4].sealed_present);
    free(list);

    /* shred: gone for good, re-run is fine */
    assert_int_equal(keys_epoch_shred(f->vault, idcopy, f->audit, &err), 0);
    assert_false(keys_epoch_present(f->vault, idcopy));
    assert_int_equal(keys_epoch_shred(f->vault, idcopy, f->audit, &err), 0);
    assert_int_equal(keys_epoch_unseal(f->vault, idcopy, it, NULL, &ep_priv, &err),
                     MR_E_NOTFOUND);

    /* every key operation was audited, and the chain verifies */
    size_t records = 0;
    assert_int_equal(audit_verify(f->audit_path, &records, &err), 0);
    /* it.create, signing.create, host.init, epoch.create, forget, unseal, shred x2 */
    assert_int_equal(records, 8);
    unsigned char *log = th_read_file(f->audit_path, &ulen);
    assert_non_null(strstr((char *)log, "keys.epoch.shred"));
    assert_null(strstr((char *)log, "PRIVATE"));
    free(log);

    EVP_PKEY_free(it);
    EVP_PKEY_free(other);
    X509_free(itc);
}

static void load_reid_pair(struct fx *f, char *key, char *cert, size_t size,
                           EVP_PKEY **out)
{
    char id[KEYS_ID_LEN + 1];
    mr_error err;

    snprintf(key, size, "%s/reid.key", f->dir);
    snprintf(cert, size, "%s/reid.crt", f->dir);
    struct keys_it_options o = { .key_path = key, .cert_path = cert,
                                 .common_name = "re-identification holder",
                                 .passphrase = "second person 2" };
    assert_int_equal(keys_init_it(&o, NULL, id, &err), 0);
    assert_int_equal(keys_private_load(key, "second person 2", out, &err), 0);
}

static void assert_same_set(const struct keys_pseudonym_set *a,
                            const struct keys_pseudonym_set *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->v[i].epoch, b->v[i].epoch);
        assert_memory_equal(a->v[i].key, b->v[i].key, KEYS_SECRET_LEN);
        assert_string_equal(a->v[i].id, b->v[i].id);
    }
}

/* The pseudonym key goes to the re-identification holder, not to IT; epochs rotate; the
 * keys move to a recovered host only through a transfer key. */
static void test_pseudonym_epochs(void **state)
{
    struct fx *f = *state;
    char pk[600], sk[600], kr[600], it_inst[600], reid_inst[600], reid_key[600],
        reid_crt[600], sealed[600], path[700], id[17];
    struct keys_pseudonym_set host = { 0 }, got = { 0 }, again = { 0 };
    EVP_PKEY *it = NULL, *reid = NULL;
    X509 *reidc = NULL, *itc = NULL;
    unsigned char *data = NULL;
    size_t len = 0, n = 0;
    unsigned epoch = 99;
    struct stat st;
    mr_error err;

    make_it(f);
    load_reid_pair(f, reid_key, reid_crt, sizeof reid_key, &reid);
    assert_int_equal(keys_private_load(f->it_key, "correct horse 1", &it, &err), 0);
    snprintf(pk, sizeof pk, "%s/state/pseudonym.key", f->dir);
    snprintf(sk, sizeof sk, "%s/state/signing-key.pem", f->dir);
    snprintf(kr, sizeof kr, "%s/state/host-keys.pem", f->dir);
    snprintf(it_inst, sizeof it_inst, "%s/state/it.crt", f->dir);
    snprintf(reid_inst, sizeof reid_inst, "%s/state/reid.crt", f->dir);
    snprintf(path, sizeof path, "%s/state", f->dir);
    mkdir(path, 0700);
    mkdir(f->vault, 0700);
    struct keys_host_options ho = { .it_cert_source = f->it_cert, .reid_cert_source = reid_crt,
                                    .it_cert = it_inst, .reid_cert = reid_inst,
                                    .pseudonym_key_file = pk, .vault_dir = f->vault,
                                    .signing_key_file = sk, .host_keyring = kr };
    assert_int_equal(keys_init_host(&ho, f->audit, &err), 0);
    assert_int_equal(keys_pseudonym_load_host(pk, &host, &err), 0);
    assert_int_equal(host.n, 1);
    assert_int_equal(host.v[0].epoch, 0);

    /* The content holder's key alone cannot open the pseudonym key... */
    assert_int_equal(keys_pseudonym_sealed_path(f->vault, 0, sealed, sizeof sealed, &err), 0);
    assert_int_equal(keys_unseal_file(sealed, it, &data, &len, &err), MR_E_CRYPTO);
    assert_null(data);
    assert_int_equal(keys_pseudonym_load_sealed(f->vault, &it, 1, NULL, &got, &err),
                     MR_E_CRYPTO);
    assert_int_equal(got.n, 0);
    /* ...the re-identification holder's does, and it is the host's key. */
    assert_int_equal(keys_pseudonym_load_sealed(f->vault, &reid, 1, f->audit, &got, &err), 0);
    assert_same_set(&got, &host);
    keys_pseudonym_set_free(&got);

    /* Rotation: a new epoch with a different key, sealed to the holder too. */
    assert_int_equal(keys_cert_load(reid_inst, &reidc, &err), 0);
    assert_int_equal(keys_pseudonym_rotate(pk, f->vault, reidc, f->audit, &epoch, id, &err), 0);
    assert_int_equal(epoch, 1);
    keys_pseudonym_set_free(&host);
    assert_int_equal(keys_pseudonym_load_host(pk, &host, &err), 0);
    assert_int_equal(host.n, 2);
    assert_int_equal(keys_pseudonym_current(&host)->epoch, 1);
    assert_string_equal(keys_pseudonym_current(&host)->id, id);
    assert_memory_not_equal(host.v[0].key, host.v[1].key, KEYS_SECRET_LEN);
    assert_int_equal(keys_pseudonym_load_sealed(f->vault, &reid, 1, NULL, &got, &err), 0);
    assert_same_set(&got, &host);
    keys_pseudonym_set_free(&got);
    assert_int_equal(keys_pseudonym_load_sealed(f->vault, &it, 1, NULL, &got, &err),
                     MR_E_CRYPTO);

    /* A rotation killed after sealing (no host file) never has its epoch reused. */
    assert_int_equal(keys_pseudonym_rotate(pk, f->vault, reidc, NULL, &epoch, id, &err), 0);
    assert_int_equal(epoch, 2);
    assert_int_equal(keys_pseudonym_host_path(pk, 2, path, sizeof path, &err), 0);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(keys_pseudonym_rotate(pk, f->vault, reidc, NULL, &epoch, id, &err), 0);
    assert_int_equal(epoch, 3);
    keys_pseudonym_set_free(&host);
    assert_int_equal(keys_pseudonym_load_host(pk, &host, &err), 0);
    assert_int_equal(host.n, 3);
    assert_int_equal(host.v[2].epoch, 3);

    /* Disaster recovery: a new host asks, the holder exports, the new host imports. */
    char pk2[600], vault2[600], req[600], bundle[600], tkey[700];
    snprintf(path, sizeof path, "%s/state2", f->dir);
    mkdir(path, 0700);
    snprintf(pk2, sizeof pk2, "%s/state2/pseudonym.key", f->dir);
    snprintf(vault2, sizeof vault2, "%s/vault2", f->dir);
    mkdir(vault2, 0700);
    snprintf(req, sizeof req, "%s/transfer.crt", f->dir);
    snprintf(bundle, sizeof bundle, "%s/pseudonym-keys.p7m", f->dir);
    snprintf(tkey, sizeof tkey, "%s.import.pem", pk2);
    assert_int_equal(keys_pseudonym_import(bundle, pk2, vault2, reidc, NULL, &n, &err),
                     MR_E_NOTFOUND);
    assert_int_equal(keys_pseudonym_request(pk2, req, f->audit, &err), 0);
    assert_int_equal(stat(tkey, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    assert_int_equal(keys_pseudonym_load_sealed(f->vault, &reid, 1, NULL, &got, &err), 0);
    {
        X509 *tc = NULL;
        assert_int_equal(keys_cert_load(req, &tc, &err), 0);
        assert_int_equal(keys_pseudonym_export(&got, tc, bundle, f->audit, &err), 0);
        X509_free(tc);
    }
    /* the vault also holds the epoch the interrupted rotation sealed: it travels too */
    assert_int_equal(got.n, 4);
    /* the export is sealed: no key in the clear */
    {
        unsigned char *raw = th_read_file(bundle, &len);
        char hex[2 * KEYS_SECRET_LEN + 1];
        for (size_t j = 0; j < KEYS_SECRET_LEN; j++)
            snprintf(hex + 2 * j, 3, "%02x", host.v[0].key[j]);
        assert_null(memmem(raw, len, hex, strlen(hex)));
        assert_null(memmem(raw, len, host.v[0].key, KEYS_SECRET_LEN));
        free(raw);
    }
    /* neither IT's key nor the holder's opens the export: only the transfer key */
    assert_int_equal(keys_unseal_file(bundle, it, &data, &len, &err), MR_E_CRYPTO);
    assert_int_equal(keys_unseal_file(bundle, reid, &data, &len, &err), MR_E_CRYPTO);
    /* a different key already on the new host: refused, nothing written */
    assert_int_equal(th_write_file(pk2, "0123456789abcdef0123456789abcdef", 32), 0);
    chmod(pk2, 0600);
    assert_int_equal(keys_pseudonym_import(bundle, pk2, vault2, reidc, NULL, &n, &err),
                     MR_E_EXISTS);
    assert_int_equal(keys_pseudonym_host_path(pk2, 1, path, sizeof path, &err), 0);
    assert_int_not_equal(stat(path, &st), 0);
    unlink(pk2);
    assert_int_equal(keys_pseudonym_import(bundle, pk2, vault2, reidc, f->audit, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_int_not_equal(stat(tkey, &st), 0);       /* transfer key shredded */
    assert_int_equal(keys_pseudonym_load_host(pk2, &again, &err), 0);
    assert_same_set(&again, &got);
    keys_pseudonym_set_free(&again);
    assert_int_equal(keys_pseudonym_load_sealed(vault2, &reid, 1, NULL, &again, &err), 0);
    assert_same_set(&again, &got);
    keys_pseudonym_set_free(&again);
    keys_pseudonym_set_free(&got);
    /* the export cannot be imported twice (the transfer key is gone) */
    assert_int_equal(keys_pseudonym_import(bundle, pk2, vault2, reidc, NULL, &n, &err),
                     MR_E_NOTFOUND);

    /* Reseal: a host whose copies went to IT moves them to the reid holder. */
    assert_int_equal(keys_cert_load(it_inst, &itc, &err), 0);
    assert_int_equal(keys_pseudonym_reseal(pk, f->vault, itc, NULL, &n, &err), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < host.n; i++) {
        assert_int_equal(keys_pseudonym_sealed_path(f->vault, host.v[i].epoch, sealed,
                                                    sizeof sealed, &err), 0);
        assert_int_equal(keys_unseal_file(sealed, it, &data, &len, &err), 0);
        assert_int_equal(len, KEYS_SECRET_LEN);
        assert_memory_equal(data, host.v[i].key, KEYS_SECRET_LEN);
        keys_wipe_free(data, len);
    }
    {
        /* IT's key first, then the holder's: each copy opens with one of them */
        EVP_PKEY *both[2] = { it, reid };
        assert_int_equal(keys_pseudonym_load_sealed(f->vault, both, 2, NULL, &got, &err), 0);
        assert_int_equal(got.n, 4);
        keys_pseudonym_set_free(&got);
    }
    assert_int_equal(keys_pseudonym_reseal(pk, f->vault, reidc, NULL, &n, &err), 0);
    assert_int_equal(keys_pseudonym_sealed_path(f->vault, 0, sealed, sizeof sealed, &err), 0);
    data = NULL;
    assert_int_equal(keys_unseal_file(sealed, it, &data, &len, &err), MR_E_CRYPTO);

    assert_int_equal(audit_verify(f->audit_path, &n, &err), 0);
    keys_pseudonym_set_free(&host);
    EVP_PKEY_free(it);
    EVP_PKEY_free(reid);
    X509_free(reidc);
    X509_free(itc);
}

static void test_host_and_epoch(void **state)
{
    host_and_epoch(*state, KEYS_ALGO_P256);
}

static void test_host_and_epoch_rsa3072(void **state)
{
    host_and_epoch(*state, KEYS_ALGO_RSA3072);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_it_key_passphrase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_and_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_and_epoch_rsa3072, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pseudonym_epochs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
