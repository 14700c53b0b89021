/* seal.c — CMS AuthEnvelopedData (AES-256-GCM) of a small secret to one certificate, as a
 * DER file that `openssl cms -decrypt -inform DER` opens too.  GCM rather than CBC
 * EnvelopedData so that a damaged or substituted sealed key fails loudly at unseal. */
#include "keys/keys.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>

#include "common/durable.h"

int keys_seal_file(const unsigned char *data, size_t len, X509 *recipient, const char *path,
                   mr_error *err)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    BIO *in = NULL, *out = NULL;
    CMS_ContentInfo *cms = NULL;
    BUF_MEM *mem = NULL;
    struct stat st;
    int rc;

    if (lstat(path, &st) == 0) {
        sk_X509_free(certs);
        return mr_error_set(err, MR_E_EXISTS, "refusing to overwrite %s", path);
    }
    if (certs == NULL || !sk_X509_push(certs, recipient)) {
        sk_X509_free(certs);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    in = BIO_new_mem_buf(data, (int)len);
    out = BIO_new(BIO_s_mem());
    if (in == NULL || out == NULL) {
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        goto done;
    }
    cms = CMS_encrypt(certs, in, EVP_aes_256_gcm(), CMS_BINARY);
    if (cms == NULL || i2d_CMS_bio(out, cms) != 1) {
        rc = mr_error_openssl(err, MR_E_CRYPTO, "cannot seal %s", path);
        goto done;
    }
    BIO_get_mem_ptr(out, &mem);
    rc = durable_write_file(path, mem->data, mem->length, 0600, err);
done:
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    BIO_free(out);
    sk_X509_free(certs);
    return rc;
}

int keys_unseal_file(const char *path, EVP_PKEY *pkey, unsigned char **out, size_t *len,
                     mr_error *err)
{
    BIO *in = BIO_new_file(path, "rb");
    BIO *plain = NULL;
    CMS_ContentInfo *cms = NULL;
    BUF_MEM *mem = NULL;
    int rc = 0;

    *out = NULL;
    *len = 0;
    if (in == NULL) {
        ERR_clear_error();
        return mr_error_set(err, MR_E_NOTFOUND, "sealed key %s is missing", path);
    }
    cms = d2i_CMS_bio(in, NULL);
    BIO_free(in);
    if (cms == NULL)
        return mr_error_openssl(err, MR_E_TAMPERED, "sealed key %s is damaged (not CMS)",
                                path);
    plain = BIO_new(BIO_s_secmem());
    if (plain == NULL) {
        CMS_ContentInfo_free(cms);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    if (CMS_decrypt(cms, pkey, NULL, NULL, plain, CMS_BINARY) != 1) {
        rc = mr_error_openssl(err, MR_E_CRYPTO,
                              "cannot unseal %s: not sealed to this key, or damaged", path);
        goto done;
    }
    BIO_get_mem_ptr(plain, &mem);
    *out = malloc(mem->length + 1);
    if (*out == NULL) {
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        goto done;
    }
    memcpy(*out, mem->data, mem->length);
    (*out)[mem->length] = '\0';
    *len = mem->length;
done:
    BIO_free(plain);    /* secure-heap BIO: cleansed on free */
    CMS_ContentInfo_free(cms);
    return rc;
}
