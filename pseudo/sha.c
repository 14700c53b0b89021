/* sha.c — the SHA-256 work of the pseudonymiser: the digest of the original for
 * the reid record, and the HMAC-SHA-256 of every token.
 *
 * The algorithm is fetched once, when first needed, and kept with the context (for a
 * session, across messages): OpenSSL 3 looks it up in the provider store at each fetch.
 *
 * HMAC: the key is the same for every token, so the SHA-256 states after key^ipad and
 * key^opad are computed once and each token starts from copies of them (RFC 2104 by
 * hand; the tests check every token against OpenSSL's HMAC()).  Copying a keyed
 * EVP_MD_CTX is the cheapest way the non-deprecated API offers: a duplicated EVP_MAC_CTX
 * or EVP_MAC_init on a keyed context copies the same states and allocates more. */
#include "pseudo/sha.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
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

struct psha_hmac {
    EVP_MD_CTX *inner, *outer, *work;
};

void psha_hmac_free(psha_hmac *h)
{
    if (h == NULL)
        return;
    /* EVP_MD_CTX_free cleanses the keyed states, which stand for the key. */
    EVP_MD_CTX_free(h->inner);
    EVP_MD_CTX_free(h->outer);
    EVP_MD_CTX_free(h->work);
    free(h);
}

int psha_hmac_new(psha *s, const unsigned char *key, size_t key_len, psha_hmac **out,
                  mr_error *err)
{
    unsigned char ipad[64], opad[64];
    psha_hmac *h;
    int ok;

    if (key_len > sizeof ipad)
        return mr_error_set(err, MR_E_INVALID, "HMAC key longer than a SHA-256 block");
    h = calloc(1, sizeof *h);
    if (h == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory for an HMAC key schedule");
    memset(ipad, 0x36, sizeof ipad);
    memset(opad, 0x5c, sizeof opad);
    for (size_t i = 0; i < key_len; i++) {
        ipad[i] ^= key[i];
        opad[i] ^= key[i];
    }
    ok = psha_md(s, err) == 0 && (h->inner = EVP_MD_CTX_new()) != NULL &&
         (h->outer = EVP_MD_CTX_new()) != NULL && (h->work = EVP_MD_CTX_new()) != NULL &&
         EVP_DigestInit_ex(h->inner, s->md, NULL) == 1 &&
         EVP_DigestUpdate(h->inner, ipad, sizeof ipad) == 1 &&
         EVP_DigestInit_ex(h->outer, s->md, NULL) == 1 &&
         EVP_DigestUpdate(h->outer, opad, sizeof opad) == 1;
    OPENSSL_cleanse(ipad, sizeof ipad);
    OPENSSL_cleanse(opad, sizeof opad);
    if (!ok) {
        psha_hmac_free(h);
        return mr_error_openssl(err, MR_E_CRYPTO, "HMAC-SHA-256 key set-up failed");
    }
    *out = h;
    return 0;
}

int psha_hmac_compute(psha_hmac *h, const unsigned char *a, size_t a_len,
                      const unsigned char *b, size_t b_len, unsigned char out[32],
                      mr_error *err)
{
    unsigned char ih[32];
    unsigned int n1 = 0, n2 = 0;
    int ok;

    ok = EVP_MD_CTX_copy_ex(h->work, h->inner) == 1 && EVP_DigestUpdate(h->work, a, a_len) == 1 &&
         EVP_DigestUpdate(h->work, b, b_len) == 1 && EVP_DigestFinal_ex(h->work, ih, &n1) == 1 &&
         EVP_MD_CTX_copy_ex(h->work, h->outer) == 1 && EVP_DigestUpdate(h->work, ih, 32) == 1 &&
         EVP_DigestFinal_ex(h->work, out, &n2) == 1 && n1 == 32 && n2 == 32;
    OPENSSL_cleanse(ih, sizeof ih);
    if (!ok)
        return mr_error_openssl(err, MR_E_CRYPTO, "HMAC-SHA-256 failed");
    return 0;
}
