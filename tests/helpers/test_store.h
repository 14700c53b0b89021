/*
 * test_store.h — small helpers shared by the store tests (header-only: the tests that use
 * it link the store library, the others need not).  Include after cmocka.h.
 */
#ifndef MAILRET_TEST_STORE_H
#define MAILRET_TEST_STORE_H

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "store/store.h"

/* The SHA-256 of n bytes (what a put carries). */
static inline void test_store_sha(const void *d, size_t n, unsigned char out[32])
{
    unsigned int len = 0;
    assert_int_equal(EVP_Digest(d, n, out, &len, EVP_sha256(), NULL), 1);
}

/* A store_get callback that gathers everything it is given into c->p (c->n bytes). */
struct test_gathered {
    unsigned char *p;
    size_t n;
};

static inline int test_gather(void *arg, const void *data, size_t len, mr_error *err)
{
    struct test_gathered *c = arg;
    (void)err;
    c->p = realloc(c->p, c->n + len + 1);
    assert_non_null(c->p);
    memcpy(c->p + c->n, data, len);
    c->n += len;
    return 0;
}

#endif
