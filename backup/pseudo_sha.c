/* pseudo_sha.c — the one SHA-256 of a pseudo_message call, shared by the HMAC tokens and
 * the reid record.  Fetching the algorithm costs about as much as hashing 500 bytes
 * (OpenSSL 3 looks it up in the provider store each time, and EVP_sha256() does so again
 * at every EVP_DigestInit_ex), so it is fetched at most once per message, when first
 * needed, and freed with the message's context: no state outlives the call. */
#include "backup/pseudo_int.h"

#include <openssl/evp.h>

int psha_md(psha *s, mr_error *err)
{
    if (s->md != NULL)
        return 0;
    s->md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    if (s->md == NULL)
        return mr_error_openssl(err, MR_E_CRYPTO, "SHA-256 unavailable");
    return 0;
}

int psha_digest(psha *s, const unsigned char *p, size_t len, unsigned char out[32],
                mr_error *err)
{
    unsigned int n = 0;
    int rc = psha_md(s, err);

    if (rc != 0)
        return rc;
    if (s->ctx == NULL && (s->ctx = EVP_MD_CTX_new()) == NULL)
        return mr_error_openssl(err, MR_E_NOMEM, "out of memory for a SHA-256 context");
    if (EVP_DigestInit_ex(s->ctx, s->md, NULL) != 1 || EVP_DigestUpdate(s->ctx, p, len) != 1 ||
        EVP_DigestFinal_ex(s->ctx, out, &n) != 1 || n != 32)
        return mr_error_openssl(err, MR_E_CRYPTO, "SHA-256 failed");
    return 0;
}

void psha_free(psha *s)
{
    EVP_MD_CTX_free(s->ctx);
    EVP_MD_free(s->md);
    s->ctx = NULL;
    s->md = NULL;
}
