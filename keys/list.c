/* list.c — `keys list`: ids, holders, dates; never key material.  Raw keys are named by a
 * one-way id (keys_secret_key_id), certificates and epoch keys by their public-key id. */
#include "keys/keys.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

static int grow(struct keys_entry **v, size_t *n, size_t *cap, mr_error *err)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct keys_entry *nv = realloc(*v, nc * sizeof *nv);
        if (nv == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        *v = nv;
        *cap = nc;
    }
    memset(&(*v)[*n], 0, sizeof **v);
    return 0;
}

static void asn1_time_text(const ASN1_TIME *t, char out[24])
{
    struct tm tm;

    out[0] = '\0';
    if (t != NULL && ASN1_TIME_to_tm(t, &tm) == 1)
        strftime(out, 24, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int add_cert(const char *path, const char *kind, struct keys_entry **v, size_t *n,
                    size_t *cap, mr_error *err)
{
    X509 *cert = NULL;
    struct keys_entry *e;
    int rc;

    if (path == NULL || access(path, F_OK) != 0)
        return 0;
    rc = keys_cert_load(path, &cert, err);
    if (rc == 0)
        rc = grow(v, n, cap, err);
    if (rc == 0) {
        e = &(*v)[*n];
        rc = keys_key_id(X509_get0_pubkey(cert), e->id, err);
        snprintf(e->kind, sizeof e->kind, "%s", kind);
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, e->holder,
                                  sizeof e->holder);
        asn1_time_text(X509_get0_notBefore(cert), e->created);
        asn1_time_text(X509_get0_notAfter(cert), e->expires);
        if (rc == 0)
            (*n)++;
    }
    X509_free(cert);
    return rc;
}

static int add_secret(const char *path, const char *kind, struct keys_entry **v, size_t *n,
                      size_t *cap, mr_error *err)
{
    unsigned char key[KEYS_SECRET_LEN];
    char id[17];
    int rc;

    if (path == NULL || access(path, F_OK) != 0)
        return 0;
    rc = keys_secret_key_read(path, key, err);
    if (rc != 0)
        return rc;
    keys_secret_key_id(key, id);
    OPENSSL_cleanse(key, sizeof key);
    rc = grow(v, n, cap, err);
    if (rc != 0)
        return rc;
    snprintf((*v)[*n].id, sizeof (*v)[*n].id, "%s", id);
    snprintf((*v)[*n].kind, sizeof (*v)[*n].kind, "%s", kind);
    snprintf((*v)[*n].holder, sizeof (*v)[*n].holder, "host");
    (*n)++;
    return 0;
}

/* One entry per epoch of the pseudonym key on the host, oldest first. */
static int add_pseudonym(const char *key_file, struct keys_entry **v, size_t *n, size_t *cap,
                         mr_error *err)
{
    struct keys_pseudonym_set s;
    int rc;

    if (key_file == NULL || access(key_file, F_OK) != 0)
        return 0;
    rc = keys_pseudonym_load_host(key_file, &s, err);
    for (size_t i = 0; rc == 0 && i < s.n; i++) {
        rc = grow(v, n, cap, err);
        if (rc != 0)
            break;
        snprintf((*v)[*n].id, sizeof (*v)[*n].id, "%s", s.v[i].id);
        snprintf((*v)[*n].kind, sizeof (*v)[*n].kind, "pseudonym");
        snprintf((*v)[*n].holder, sizeof (*v)[*n].holder, "host, epoch %u%s", s.v[i].epoch,
                 i + 1 == s.n ? " (current)" : "");
        (*n)++;
    }
    keys_pseudonym_set_free(&s);
    return rc;
}

static void copy_field(json_t *o, const char *key, char *dst, size_t size)
{
    const char *s = json_string_value(json_object_get(o, key));

    snprintf(dst, size, "%s", s != NULL ? s : "");
}

static int cmp_entry(const void *a, const void *b)
{
    const struct keys_entry *x = a, *y = b;
    int c = strcmp(x->created, y->created);

    return c != 0 ? c : strcmp(x->id, y->id);
}

static int add_vault(const char *vault, struct keys_entry **v, size_t *n, size_t *cap,
                     mr_error *err)
{
    DIR *d;
    struct dirent *de;
    size_t first = *n;
    int rc = 0;

    if (vault == NULL)
        return 0;
    d = opendir(vault);
    if (d == NULL) {
        if (errno == ENOENT)
            return 0;
        return mr_error_errno(err, MR_E_IO, errno, "cannot read key vault %s", vault);
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        char path[4096], role[16] = "";
        json_t *o;
        struct keys_entry *e;

        if (len != KEYS_ID_LEN + 5 || strcmp(de->d_name + KEYS_ID_LEN, ".json") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", vault, de->d_name);
        o = json_load_file(path, 0, NULL);
        if (o == NULL) {
            rc = mr_error_set(err, MR_E_PARSE, "key vault entry %s is not valid JSON", path);
            break;
        }
        rc = grow(v, n, cap, err);
        if (rc == 0) {
            e = &(*v)[*n];
            copy_field(o, "id", e->id, sizeof e->id);
            copy_field(o, "role", role, sizeof role);
            snprintf(e->kind, sizeof e->kind, "epoch-%s", role);
            copy_field(o, "holder", e->holder, sizeof e->holder);
            copy_field(o, "batch", e->batch, sizeof e->batch);
            copy_field(o, "created", e->created, sizeof e->created);
            copy_field(o, "expires", e->expires, sizeof e->expires);
            e->sealed_present = keys_epoch_present(vault, e->id);
            (*n)++;
        }
        json_decref(o);
    }
    closedir(d);
    if (rc == 0)
        qsort(*v + first, *n - first, sizeof **v, cmp_entry);
    return rc;
}

/* The pinned host keys; the one the signing key file holds is "signing (current)". */
static int add_keyring(const struct keys_list_options *opt, struct keys_entry **v, size_t *n,
                       size_t *cap, mr_error *err)
{
    keys_keyring *kr;
    char current[KEYS_ID_LEN + 1] = "";
    int rc = 0;

    if (opt->host_keyring == NULL || access(opt->host_keyring, F_OK) != 0)
        return 0;
    if (opt->signing_key_file != NULL && access(opt->signing_key_file, R_OK) == 0) {
        EVP_PKEY *sk = NULL;
        if (keys_signing_load(opt->signing_key_file, &sk, NULL) == 0)
            (void)keys_key_id(sk, current, NULL);
        EVP_PKEY_free(sk);
    }
    kr = keys_keyring_new();
    if (kr == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    rc = keys_keyring_add_file(kr, opt->host_keyring, err);
    for (size_t i = 0; rc == 0 && i < keys_keyring_size(kr); i++) {
        rc = grow(v, n, cap, err);
        if (rc != 0)
            break;
        snprintf((*v)[*n].id, sizeof (*v)[*n].id, "%s", keys_keyring_id(kr, i));
        snprintf((*v)[*n].kind, sizeof (*v)[*n].kind, "host-signing");
        snprintf((*v)[*n].holder, sizeof (*v)[*n].holder, "%s",
                 strcmp(current, keys_keyring_id(kr, i)) == 0 ? "host (current)"
                                                              : "earlier (verify only)");
        (*n)++;
    }
    keys_keyring_free(kr);
    return rc;
}

int keys_list(const struct keys_list_options *opt, struct keys_entry **out, size_t *n,
              mr_error *err)
{
    struct keys_entry *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = add_cert(opt->it_cert, "it-cert", &v, &cnt, &cap, err);

    if (rc == 0)
        rc = add_cert(opt->reid_cert, "reid-cert", &v, &cnt, &cap, err);
    if (rc == 0)
        rc = add_pseudonym(opt->pseudonym_key_file, &v, &cnt, &cap, err);
    if (rc == 0)
        rc = add_secret(opt->manifest_key_file, "manifest-legacy", &v, &cnt, &cap, err);
    if (rc == 0)
        rc = add_keyring(opt, &v, &cnt, &cap, err);
    if (rc == 0)
        rc = add_vault(opt->vault_dir, &v, &cnt, &cap, err);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}
