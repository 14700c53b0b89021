/* sign.c — the host's batch-signing key (Ed25519) and the keyring of pinned host public
 * keys that readers (IT's machine above all) check signatures against.  The keyring keeps
 * every public key the host has signed with, so that batches signed before a rotation
 * still verify; it is public and is what IT copies and pins. */
#include "keys/keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "common/durable.h"
#include "common/secret.h"

#define SIGNING_PEM_MAX 4096
#define KEYRING_MAX (1024 * 1024)

struct keys_keyring {
    EVP_PKEY **keys;
    char (*ids)[KEYS_ID_LEN + 1];
    size_t n, cap;
};

int keys_fingerprint(EVP_PKEY *pkey, char out[KEYS_FPR_LEN + 1], mr_error *err)
{
    static const char hexd[] = "0123456789abcdef";
    unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
    int len = i2d_PUBKEY(pkey, &der);

    if (len <= 0)
        return mr_error_openssl(err, MR_E_CRYPTO, "cannot encode a public key");
    SHA256(der, (size_t)len, md);
    OPENSSL_free(der);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        out[2 * i] = hexd[md[i] >> 4];
        out[2 * i + 1] = hexd[md[i] & 15];
    }
    out[KEYS_FPR_LEN] = '\0';
    return 0;
}

int keys_sign(EVP_PKEY *key, const void *msg, size_t len, unsigned char sig[KEYS_SIG_LEN],
              mr_error *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sig_len = KEYS_SIG_LEN;
    int ok;

    if (ctx == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    ok = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519
         && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1
         && EVP_DigestSign(ctx, sig, &sig_len, msg, len) == 1 && sig_len == KEYS_SIG_LEN;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return mr_error_openssl(err, MR_E_CRYPTO, "cannot sign with the host signing key");
    return 0;
}

int keys_signing_load(const char *path, EVP_PKEY **out, mr_error *err)
{
    unsigned char *pem = OPENSSL_secure_malloc(SIGNING_PEM_MAX);
    size_t len = 0;
    BIO *mem;
    int rc;

    *out = NULL;
    if (pem == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    rc = secret_file_read(path, pem, SIGNING_PEM_MAX, &len, err);
    if (rc != 0) {
        OPENSSL_secure_clear_free(pem, SIGNING_PEM_MAX);
        return mr_error_prefix(err, "host signing key");
    }
    mem = BIO_new_mem_buf(pem, (int)len);
    *out = mem != NULL ? PEM_read_bio_PrivateKey(mem, NULL, NULL, NULL) : NULL;
    BIO_free(mem);
    OPENSSL_secure_clear_free(pem, SIGNING_PEM_MAX);
    if (*out == NULL)
        return mr_error_openssl(err, MR_E_PARSE, "host signing key %s is not a PEM key", path);
    if (EVP_PKEY_get_base_id(*out) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(*out);
        *out = NULL;
        return mr_error_set(err, MR_E_INVALID, "host signing key %s is not Ed25519", path);
    }
    return 0;
}

/* ---- keyring ----------------------------------------------------------------------------- */

keys_keyring *keys_keyring_new(void)
{
    return calloc(1, sizeof(keys_keyring));
}

void keys_keyring_free(keys_keyring *kr)
{
    if (kr == NULL)
        return;
    for (size_t i = 0; i < kr->n; i++)
        EVP_PKEY_free(kr->keys[i]);
    free(kr->keys);
    free(kr->ids);
    free(kr);
}

size_t keys_keyring_size(const keys_keyring *kr)
{
    return kr != NULL ? kr->n : 0;
}

const char *keys_keyring_id(const keys_keyring *kr, size_t i)
{
    return kr != NULL && i < kr->n ? kr->ids[i] : NULL;
}

bool keys_keyring_has(const keys_keyring *kr, const char *id)
{
    for (size_t i = 0; kr != NULL && i < kr->n; i++)
        if (strcmp(kr->ids[i], id) == 0)
            return true;
    return false;
}

int keys_keyring_add(keys_keyring *kr, EVP_PKEY *pub, mr_error *err)
{
    char id[KEYS_ID_LEN + 1];
    int rc;

    if (EVP_PKEY_get_base_id(pub) != EVP_PKEY_ED25519)
        return mr_error_set(err, MR_E_INVALID, "a pinned host key must be Ed25519");
    rc = keys_key_id(pub, id, err);
    if (rc != 0)
        return rc;
    if (keys_keyring_has(kr, id))
        return 0;
    if (kr->n == kr->cap) {
        size_t nc = kr->cap ? kr->cap * 2 : 4;
        EVP_PKEY **nk = realloc(kr->keys, nc * sizeof *nk);
        if (nk == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        kr->keys = nk;
        char(*ni)[KEYS_ID_LEN + 1] = realloc(kr->ids, nc * sizeof *ni);
        if (ni == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        kr->ids = ni;
        kr->cap = nc;
    }
    /* Only the public half is kept: a private key handed in by mistake is not retained. */
    {
        unsigned char *der = NULL;
        const unsigned char *p;
        int len = i2d_PUBKEY(pub, &der);
        EVP_PKEY *copy;
        if (len <= 0)
            return mr_error_openssl(err, MR_E_CRYPTO, "cannot encode a public key");
        p = der;
        copy = d2i_PUBKEY(NULL, &p, len);
        OPENSSL_free(der);
        if (copy == NULL)
            return mr_error_openssl(err, MR_E_CRYPTO, "cannot copy a public key");
        kr->keys[kr->n] = copy;
    }
    memcpy(kr->ids[kr->n], id, sizeof id);
    kr->n++;
    return 0;
}

int keys_keyring_add_file(keys_keyring *kr, const char *path, mr_error *err)
{
    BIO *bio = BIO_new_file(path, "r");
    size_t found = 0;
    int rc = 0;

    if (bio == NULL)
        return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_IO, errno,
                              "cannot read host key file %s", path);
    for (;;) {
        EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        if (pk == NULL)
            break;
        rc = keys_keyring_add(kr, pk, err);
        EVP_PKEY_free(pk);
        if (rc != 0)
            break;
        found++;
    }
    BIO_free(bio);
    ERR_clear_error();
    if (rc != 0)
        return mr_error_prefix(err, "%s", path);
    if (found == 0)
        return mr_error_set(err, MR_E_PARSE, "%s holds no Ed25519 public key (PEM)", path);
    return 0;
}

int keys_keyring_verify(const keys_keyring *kr, const char *signer, const void *msg,
                        size_t len, const unsigned char sig[KEYS_SIG_LEN], mr_error *err)
{
    for (size_t i = 0; kr != NULL && i < kr->n; i++) {
        EVP_MD_CTX *ctx;
        int ok;
        if (strcmp(kr->ids[i], signer) != 0)
            continue;
        ctx = EVP_MD_CTX_new();
        if (ctx == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, kr->keys[i]) == 1
             && EVP_DigestVerify(ctx, sig, KEYS_SIG_LEN, msg, len) == 1;
        EVP_MD_CTX_free(ctx);
        ERR_clear_error();
        if (!ok)
            return mr_error_set(err, MR_E_TAMPERED, "signature does not verify (altered)");
        return 0;
    }
    return mr_error_set(err, MR_E_TAMPERED, "signed by host key %.16s..., which is not pinned",
                        signer);
}

static int pub_pem(EVP_PKEY *key, BUF_MEM **out, BIO **holder, mr_error *err)
{
    BIO *mem = BIO_new(BIO_s_mem());

    if (mem == NULL || !PEM_write_bio_PUBKEY(mem, key)) {
        BIO_free(mem);
        return mr_error_openssl(err, MR_E_CRYPTO, "cannot encode the public key");
    }
    BIO_get_mem_ptr(mem, out);
    *holder = mem;
    return 0;
}

/* The keyring file with key's public half appended (existing keys kept, in order). */
static int keyring_append(const char *keyring_path, EVP_PKEY *key, mr_error *err)
{
    FILE *f = fopen(keyring_path, "r");
    char *old = NULL;
    size_t old_len = 0;
    BUF_MEM *pem = NULL;
    BIO *holder = NULL;
    char *all;
    int rc;

    if (f == NULL && errno != ENOENT)
        return mr_error_errno(err, MR_E_IO, errno, "cannot read %s", keyring_path);
    if (f != NULL) {
        old = malloc(KEYRING_MAX + 1);
        if (old == NULL) {
            fclose(f);
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        }
        old_len = fread(old, 1, KEYRING_MAX + 1, f);
        fclose(f);
        if (old_len > KEYRING_MAX) {
            free(old);
            return mr_error_set(err, MR_E_LIMIT, "%s is too large", keyring_path);
        }
    }
    rc = pub_pem(key, &pem, &holder, err);
    all = rc == 0 ? malloc(old_len + pem->length + 2) : NULL;
    if (rc == 0 && all == NULL)
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
    if (rc == 0) {
        size_t n = 0;
        if (old_len > 0) {
            memcpy(all, old, old_len);
            n = old_len;
            if (all[n - 1] != '\n')
                all[n++] = '\n';
        }
        memcpy(all + n, pem->data, pem->length);
        n += pem->length;
        rc = durable_write_file(keyring_path, all, n, 0644, err);
    }
    free(all);
    free(old);
    BIO_free(holder);
    return rc;
}

static int write_private(const char *path, EVP_PKEY *key, mr_error *err)
{
    BIO *mem = BIO_new(BIO_s_secmem());
    BUF_MEM *buf = NULL;
    int rc;

    if (mem == NULL || !PEM_write_bio_PKCS8PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL)) {
        BIO_free(mem);
        return mr_error_openssl(err, MR_E_CRYPTO, "cannot encode the signing key");
    }
    BIO_get_mem_ptr(mem, &buf);
    rc = durable_write_file(path, buf->data, buf->length, 0600, err);
    BIO_free(mem);
    return rc;
}

static int generate(EVP_PKEY **out, mr_error *err)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    int ok;

    *out = NULL;
    ok = ctx != NULL && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_keygen(ctx, out) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok)
        return mr_error_openssl(err, MR_E_CRYPTO, "cannot generate an Ed25519 key");
    return 0;
}

int keys_signing_new(const char *key_path, const char *keyring_path, bool rotate,
                     audit_log *audit, char id[KEYS_ID_LEN + 1], char fpr[KEYS_FPR_LEN + 1],
                     mr_error *err)
{
    struct stat st;
    EVP_PKEY *key = NULL;
    char old_id[KEYS_ID_LEN + 1] = "", oldp[4200];
    bool had = stat(key_path, &st) == 0;
    int rc;

    if (had && !rotate)
        return mr_error_set(err, MR_E_EXISTS, "refusing to replace the host signing key %s "
                            "(use `keys rotate-signing`)", key_path);
    if (had) {
        /* The old public key must reach the keyring before its private half goes. */
        EVP_PKEY *old = NULL;
        rc = keys_signing_load(key_path, &old, err);
        if (rc == 0)
            rc = keys_key_id(old, old_id, err);
        if (rc == 0) {
            keys_keyring *kr = keys_keyring_new();
            bool pinned = kr != NULL && keys_keyring_add_file(kr, keyring_path, NULL) == 0
                          && keys_keyring_has(kr, old_id);
            keys_keyring_free(kr);
            if (!pinned)
                rc = keyring_append(keyring_path, old, err);
        }
        EVP_PKEY_free(old);
        if (rc != 0)
            return rc;
    }
    rc = generate(&key, err);
    if (rc == 0)
        rc = keys_key_id(key, id, err);
    if (rc == 0)
        rc = keys_fingerprint(key, fpr, err);
    /* Keyring first: a signature by a key the keyring does not hold would be refused. */
    if (rc == 0)
        rc = keyring_append(keyring_path, key, err);
    /* The old key keeps a second name until the new one has replaced it (atomically),
     * then is overwritten through that name: there is always a signing key, and the old
     * private key does not linger. */
    if (rc == 0 && (size_t)snprintf(oldp, sizeof oldp, "%s.old", key_path) >= sizeof oldp)
        rc = mr_error_set(err, MR_E_INVALID, "signing key path too long");
    if (rc == 0 && had) {
        if (access(oldp, F_OK) == 0)
            rc = durable_shred(oldp, err);      /* left by an interrupted rotation */
        if (rc == 0 && link(key_path, oldp) != 0)
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot link %s", oldp);
    }
    if (rc == 0)
        rc = write_private(key_path, key, err);
    if (rc == 0 && had)
        rc = durable_shred(oldp, err);
    EVP_PKEY_free(key);
    if (rc == 0 && audit != NULL) {
        const struct audit_field f[] = {
            { "key_id", id },
            { "fingerprint", fpr },
            { "previous", old_id },
        };
        rc = audit_append(audit, had ? "keys.signing.rotate" : "keys.signing.create", f,
                          sizeof f / sizeof f[0], err);
    }
    return rc;
}

int keys_keyring_import(const char *keyring_path, const char *from_path, audit_log *audit,
                        size_t *added, mr_error *err)
{
    keys_keyring *have = keys_keyring_new(), *from = keys_keyring_new();
    int rc = have != NULL && from != NULL ? 0 : mr_error_set(err, MR_E_NOMEM, "out of memory");

    *added = 0;
    if (rc == 0)
        rc = keys_keyring_add_file(from, from_path, err);
    if (rc == 0 && access(keyring_path, F_OK) == 0)
        rc = keys_keyring_add_file(have, keyring_path, err);
    for (size_t i = 0; rc == 0 && i < from->n; i++) {
        if (keys_keyring_has(have, from->ids[i]))
            continue;
        rc = keyring_append(keyring_path, from->keys[i], err);
        if (rc == 0)
            rc = keys_keyring_add(have, from->keys[i], err);
        if (rc == 0 && audit != NULL) {
            const struct audit_field f[] = { { "key_id", from->ids[i] } };
            rc = audit_append(audit, "keys.keyring.import", f, 1, err);
        }
        if (rc == 0)
            (*added)++;
    }
    keys_keyring_free(have);
    keys_keyring_free(from);
    return rc;
}
