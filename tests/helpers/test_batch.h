/*
 * test_batch.h — what a unit test of archive batches sets up: a scratch archive and
 * vault, IT's key pair, a pseudonym key and the host's pinned signing key, and a batch
 * written with them.  Header-only (static functions): test_helpers.c is linked into every
 * test, and only the tests that link backup/ and keys/ include this.
 */
#ifndef MAILRET_TESTS_TEST_BATCH_H
#define MAILRET_TESTS_TEST_BATCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "backup/archive.h"
#include "helpers/test_helpers.h"
#include "keys/keys.h"

struct th_batch_env {
    char *root;                     /* scratch directory, removed by th_batch_env_free */
    char archive[512], vault[512];  /* root/archive, root/vault */
    EVP_PKEY *it;                   /* IT's private key (P-256) */
    X509 *it_cert;                  /* its self-signed certificate: content and reid holder */
    pseudo_key pkey;                /* random */
    EVP_PKEY *sk;                   /* the host's signing key (Ed25519) */
    keys_keyring *kr;               /* its public half, pinned */
    struct archive_trust trust;     /* kr, no legacy key, no override */
};

static inline int th_batch_env_init(struct th_batch_env *e, const char *prefix, mr_error *err)
{
    int rc = 0;

    memset(e, 0, sizeof *e);
    e->root = th_tempdir(prefix);
    if (e->root == NULL)
        return mr_error_set(err, MR_E_IO, "no scratch directory");
    snprintf(e->archive, sizeof e->archive, "%s/archive", e->root);
    snprintf(e->vault, sizeof e->vault, "%s/vault", e->root);
    rc = keys_generate(KEYS_ALGO_P256, &e->it, err);
    if (rc == 0)
        rc = keys_self_signed(e->it, "IT", 30, &e->it_cert, err);
    if (rc == 0 && RAND_bytes(e->pkey.bytes, sizeof e->pkey.bytes) != 1)
        rc = mr_error_set(err, MR_E_CRYPTO, "no random pseudonym key");
    if (rc == 0 && (e->sk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL)
        rc = mr_error_set(err, MR_E_CRYPTO, "no Ed25519 signing key");
    if (rc == 0 && (e->kr = keys_keyring_new()) == NULL)
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
    if (rc == 0)
        rc = keys_keyring_add(e->kr, e->sk, err);
    e->trust.keyring = e->kr;
    return rc;
}

static inline void th_batch_env_free(struct th_batch_env *e)
{
    EVP_PKEY_free(e->it);
    EVP_PKEY_free(e->sk);
    keys_keyring_free(e->kr);
    X509_free(e->it_cert);
    th_rmtree(e->root);
    free(e->root);
    memset(e, 0, sizeof *e);
}

/* One batch of msgs[0..n) written with e's keys into e's archive: o says the rest (mailbox,
 * batch id, dates, volume size, workers); its directories, holders, pseudonym key and
 * signing key are set from e.  The batch directory goes into dir. */
static inline int th_batch_write(const struct th_batch_env *e, struct archive_options o,
                                 const struct archive_message *msgs, size_t n, char *dir,
                                 size_t size, mr_error *err)
{
    archive_batch *b = NULL;
    struct archive_result *res = NULL;
    int rc;

    o.archive_dir = e->archive;
    o.vault_dir = e->vault;
    o.content_holder = e->it_cert;
    o.reid_holder = e->it_cert;
    o.pseudonym_key = &e->pkey;
    o.signing_key = e->sk;
    rc = archive_batch_open(&o, &b, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = archive_batch_add(b, &msgs[i], err);
    if (rc != 0) {
        if (b != NULL)
            archive_batch_abort(b);
        return rc;
    }
    rc = archive_batch_close(b, &res, err);
    if (rc == 0)
        snprintf(dir, size, "%s", res->dir);
    archive_result_free(res);
    return rc;
}

#endif
