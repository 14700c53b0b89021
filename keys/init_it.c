/* init_it.c — `keys init-it`: IT's restore key pair, made on IT's own machine.  The private
 * key leaves this function only as passphrase-encrypted PKCS#8 (PBES2: PBKDF2-HMAC-SHA256
 * with KEYS_IT_PBKDF2_ITER iterations, AES-256-CBC), so copying the certificate to the host
 * can never carry the private half along, and a stolen copy of the key file resists
 * guessing (OpenSSL's default is 2,048 iterations).  Stock `openssl` reads it. */
#include "keys/keys.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "common/durable.h"

#define IT_DEFAULT_DAYS 3660    /* ten years: longer than any archive's five */

static int pem_to_file(BIO *mem, const char *path, mode_t mode, mr_error *err)
{
    BUF_MEM *buf = NULL;
    int rc;

    BIO_get_mem_ptr(mem, &buf);
    rc = durable_write_file(path, buf->data, buf->length, mode, err);
    OPENSSL_cleanse(buf->data, buf->length);
    return rc;
}

static int encrypt_pkcs8(BIO *out, EVP_PKEY *pkey, const char *pass)
{
    PKCS8_PRIV_KEY_INFO *p8inf = EVP_PKEY2PKCS8(pkey);
    X509_ALGOR *pbe = PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), KEYS_IT_PBKDF2_ITER, NULL, 0, NULL,
                                        NID_hmacWithSHA256);
    X509_SIG *p8 = NULL;
    int rc = -1;

    if (p8inf != NULL && pbe != NULL) {
        p8 = PKCS8_set0_pbe(pass, (int)strlen(pass), p8inf, pbe);
        if (p8 != NULL)
            pbe = NULL;     /* owned by p8 now */
    }
    if (p8 != NULL && PEM_write_bio_PKCS8(out, p8))
        rc = 0;
    X509_SIG_free(p8);
    X509_ALGOR_free(pbe);
    PKCS8_PRIV_KEY_INFO_free(p8inf);    /* clears the private key's encoding */
    return rc;
}

int keys_init_it(const struct keys_it_options *opt, audit_log *audit,
                 char key_id[KEYS_ID_LEN + 1], mr_error *err)
{
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    BIO *kbio = NULL, *cbio = NULL;
    struct stat st;
    int rc;

    if (opt->passphrase == NULL || strlen(opt->passphrase) < KEYS_IT_PASSPHRASE_MIN)
        return mr_error_set(err, MR_E_INVALID,
                            "the IT key passphrase must have at least %d characters",
                            KEYS_IT_PASSPHRASE_MIN);
    if (stat(opt->key_path, &st) == 0)
        return mr_error_set(err, MR_E_EXISTS, "refusing to overwrite %s", opt->key_path);
    if (stat(opt->cert_path, &st) == 0)
        return mr_error_set(err, MR_E_EXISTS, "refusing to overwrite %s", opt->cert_path);
    rc = keys_generate(opt->algo, &pkey, err);
    if (rc != 0)
        return rc;
    rc = keys_self_signed(pkey, opt->common_name != NULL ? opt->common_name
                                                         : "mailret IT restore",
                          opt->days > 0 ? opt->days : IT_DEFAULT_DAYS, &cert, err);
    if (rc != 0)
        goto done;
    rc = keys_key_id(pkey, key_id, err);
    if (rc != 0)
        goto done;
    kbio = BIO_new(BIO_s_secmem());
    cbio = BIO_new(BIO_s_mem());
    if (kbio == NULL || cbio == NULL) {
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        goto done;
    }
    if (encrypt_pkcs8(kbio, pkey, opt->passphrase) != 0 || !PEM_write_bio_X509(cbio, cert)) {
        rc = mr_error_openssl(err, MR_E_CRYPTO, "cannot encode the IT key");
        goto done;
    }
    rc = pem_to_file(kbio, opt->key_path, 0600, err);
    if (rc == 0)
        rc = pem_to_file(cbio, opt->cert_path, 0644, err);
    if (rc == 0 && audit != NULL) {
        const struct audit_field f[] = {
            { "key_id", key_id },
            { "algo", opt->algo == KEYS_ALGO_RSA3072 ? "RSA-3072" : "P-256" },
            { "cert", opt->cert_path },
        };
        rc = audit_append(audit, "keys.it.create", f, sizeof f / sizeof f[0], err);
    }
done:
    BIO_free(kbio);
    BIO_free(cbio);
    X509_free(cert);
    EVP_PKEY_free(pkey);     /* frees (and clears) the private key material */
    return rc;
}
