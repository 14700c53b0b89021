/* init_it.c — `keys init-it`: IT's restore key pair, made on IT's own machine.  The private
 * key leaves this function only as passphrase-encrypted PKCS#8 (PBES2, AES-256-CBC), so
 * copying the certificate to the host can never carry the private half along. */
#include "keys/keys.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/pem.h>

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

int keys_init_it(const struct keys_it_options *opt, audit_log *audit,
                 char key_id[KEYS_ID_LEN + 1], mr_error *err)
{
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    BIO *kbio = NULL, *cbio = NULL;
    struct stat st;
    int rc;

    if (opt->passphrase == NULL || strlen(opt->passphrase) < 8)
        return mr_error_set(err, MR_E_INVALID,
                            "the IT key passphrase must have at least 8 characters");
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
    if (!PEM_write_bio_PKCS8PrivateKey(kbio, pkey, EVP_aes_256_cbc(), opt->passphrase,
                                       (int)strlen(opt->passphrase), NULL, NULL)
        || !PEM_write_bio_X509(cbio, cert)) {
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
