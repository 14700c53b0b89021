/* cert.c — key pairs, self-signed certificates, key ids, loading PEM files.  Certificates
 * here are only containers that CMS needs to address a recipient; nobody chains them to a
 * CA, so a self-signed certificate is the honest form. */
#include "keys/keys.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "common/secret.h"

int keys_generate(enum keys_algo algo, EVP_PKEY **out, mr_error *err)
{
    EVP_PKEY *pkey;

    if (algo == KEYS_ALGO_RSA3072)
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    else
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (pkey == NULL)
        return mr_error_openssl(err, MR_E_CRYPTO, "key generation failed");
    *out = pkey;
    return 0;
}

static int add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return 0;
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

int keys_self_signed(EVP_PKEY *pkey, const char *cn, int days, X509 **out, mr_error *err)
{
    X509 *cert = X509_new();
    X509_NAME *name = NULL;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    bool rsa = EVP_PKEY_is_a(pkey, "RSA");

    if (cert == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    if (RAND_bytes(serial, sizeof serial) != 1)
        goto fail;
    serial[0] &= 0x7f;      /* positive INTEGER */
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL)
        goto fail;
    if (!X509_set_version(cert, 2)
        || X509_gmtime_adj(X509_getm_notBefore(cert), 0) == NULL
        || X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, NULL) == NULL
        || !X509_set_pubkey(cert, pkey))
        goto fail;
    name = X509_get_subject_name(cert);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                    -1, 0)
        || !X509_set_issuer_name(cert, name))
        goto fail;
    /* keyAgreement for EC (CMS KeyAgreeRecipientInfo), keyEncipherment for RSA. */
    if (!add_ext(cert, NID_basic_constraints, "critical,CA:FALSE")
        || !add_ext(cert, NID_key_usage,
                    rsa ? "critical,keyEncipherment" : "critical,keyAgreement")
        || !add_ext(cert, NID_subject_key_identifier, "hash"))
        goto fail;
    if (X509_sign(cert, pkey, EVP_sha256()) <= 0)
        goto fail;
    BN_free(bn);
    *out = cert;
    return 0;
fail:
    BN_free(bn);
    X509_free(cert);
    return mr_error_openssl(err, MR_E_CRYPTO, "cannot create certificate");
}

int keys_key_id(EVP_PKEY *pkey, char out[KEYS_ID_LEN + 1], mr_error *err)
{
    unsigned char *der = NULL;
    unsigned char md[32];
    int len = i2d_PUBKEY(pkey, &der);

    if (len <= 0)
        return mr_error_openssl(err, MR_E_CRYPTO, "cannot encode public key");
    if (EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL) != 1) {
        OPENSSL_free(der);
        return mr_error_openssl(err, MR_E_CRYPTO, "SHA-256 failed");
    }
    OPENSSL_free(der);
    for (int i = 0; i < KEYS_ID_LEN / 2; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

int keys_cert_load(const char *path, X509 **out, mr_error *err)
{
    BIO *bio = BIO_new_file(path, "r");
    X509 *cert;

    if (bio == NULL)
        return mr_error_openssl(err, MR_E_NOTFOUND, "cannot open certificate %s", path);
    cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (cert == NULL)
        return mr_error_openssl(err, MR_E_PARSE, "%s is not a PEM certificate", path);
    *out = cert;
    return 0;
}

/* PEM password callback: never prompt from inside OpenSSL; an encrypted key without a
 * passphrase is an error the caller reports. */
static int pem_pass(char *buf, int size, int rwflag, void *u)
{
    const char *pass = u;
    size_t n;

    (void)rwflag;
    if (pass == NULL)
        return -1;
    n = strlen(pass);
    if (n > (size_t)size)
        return -1;
    memcpy(buf, pass, n);
    return (int)n;
}

int keys_private_load(const char *path, const char *passphrase, EVP_PKEY **out, mr_error *err)
{
    BIO *bio;
    EVP_PKEY *pkey;
    int rc = secret_file_check(path, err);

    if (rc != 0)
        return mr_error_prefix(err, "private key");
    bio = BIO_new_file(path, "r");
    if (bio == NULL)
        return mr_error_openssl(err, MR_E_NOTFOUND, "cannot open private key %s", path);
    pkey = PEM_read_bio_PrivateKey(bio, NULL, pem_pass, (void *)passphrase);
    BIO_free(bio);
    if (pkey == NULL) {
        ERR_clear_error();
        return mr_error_set(err, MR_E_AUTH,
                            "cannot open private key %s: wrong passphrase or not a PEM key",
                            path);
    }
    *out = pkey;
    return 0;
}

bool keys_cert_matches(X509 *cert, EVP_PKEY *pkey)
{
    bool ok = X509_check_private_key(cert, pkey) == 1;

    ERR_clear_error();
    return ok;
}
