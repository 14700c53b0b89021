/* epoch.c — per-batch epoch key pairs.  The private half exists in memory only between
 * keys_epoch_create (which seals it into the vault first) and keys_epoch_forget (after the
 * batch's volumes were verified with it); afterwards only the holder can unseal it. */
#include "keys/keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "common/crashpoint.h"
#include "common/durable.h"
#include "common/mrtime.h"

struct keys_epoch {
    char id[KEYS_ID_LEN + 1];
    X509 *cert;
    EVP_PKEY *priv;
};

const char *keys_epoch_role_name(enum keys_epoch_role role)
{
    return role == KEYS_EPOCH_REID ? "reid" : "content";
}

static int vault_path(char *buf, size_t size, const char *vault, const char *id,
                      const char *suffix, mr_error *err)
{
    int n = snprintf(buf, size, "%s/%s%s", vault, id, suffix);

    if (n < 0 || (size_t)n >= size)
        return mr_error_set(err, MR_E_INVALID, "vault path too long");
    return 0;
}

static int write_cert(const char *path, X509 *cert, mr_error *err)
{
    BIO *mem = BIO_new(BIO_s_mem());
    BUF_MEM *buf = NULL;
    int rc;

    if (mem == NULL || !PEM_write_bio_X509(mem, cert)) {
        BIO_free(mem);
        return mr_error_openssl(err, MR_E_CRYPTO, "cannot encode epoch certificate");
    }
    BIO_get_mem_ptr(mem, &buf);
    rc = durable_write_file(path, buf->data, buf->length, 0644, err);
    BIO_free(mem);
    return rc;
}

static int write_meta(const char *path, const keys_epoch *ep,
                      const struct keys_epoch_options *opt, mr_error *err)
{
    char created[24], expires[24];
    json_t *o;
    char *text;
    int rc;

    mrtime_format_utc(opt->created, created, sizeof created);
    mrtime_format_utc(opt->expires, expires, sizeof expires);
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", ep->id, "role",
                  keys_epoch_role_name(opt->role), "holder",
                  opt->holder_name != NULL ? opt->holder_name : "it", "batch",
                  opt->batch_id != NULL ? opt->batch_id : "", "created", created, "expires",
                  expires);
    if (o == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (text == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    rc = durable_write_file(path, text, strlen(text), 0644, err);
    free(text);
    return rc;
}

static int seal_private(const char *path, EVP_PKEY *priv, X509 *holder, mr_error *err)
{
    BIO *mem = BIO_new(BIO_s_secmem());
    BUF_MEM *buf = NULL;
    int rc;

    /* Unencrypted PKCS#8 PEM inside the CMS envelope: what `openssl cms -decrypt` hands
     * IT is directly usable as `-inkey` for the volumes. */
    if (mem == NULL || !PEM_write_bio_PKCS8PrivateKey(mem, priv, NULL, NULL, 0, NULL, NULL)) {
        BIO_free(mem);
        return mr_error_openssl(err, MR_E_CRYPTO, "cannot encode epoch key");
    }
    BIO_get_mem_ptr(mem, &buf);
    rc = keys_seal_file((const unsigned char *)buf->data, buf->length, holder, path, err);
    BIO_free(mem);      /* secure heap: cleansed */
    return rc;
}

static void audit_epoch(audit_log *audit, const char *event, const char *id,
                        const char *role, const char *batch)
{
    mr_error aerr;
    const struct audit_field f[] = {
        { "key_id", id },
        { "role", role != NULL ? role : "" },
        { "batch", batch != NULL ? batch : "" },
    };

    if (audit != NULL)
        (void)audit_append(audit, event, f, sizeof f / sizeof f[0], &aerr);
}

int keys_epoch_create(const struct keys_epoch_options *opt, audit_log *audit,
                      keys_epoch **out, mr_error *err)
{
    keys_epoch *ep = calloc(1, sizeof *ep);
    char path[4096], cn[96];
    int rc;

    *out = NULL;
    if (ep == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    rc = keys_generate(KEYS_ALGO_P256, &ep->priv, err);
    if (rc == 0)
        rc = keys_key_id(ep->priv, ep->id, err);
    if (rc == 0) {
        snprintf(cn, sizeof cn, "mailret epoch %s %s", keys_epoch_role_name(opt->role),
                 ep->id);
        /* Valid well past expiry so that IT's restore never trips over a date. */
        rc = keys_self_signed(ep->priv, cn, 3660 * 2, &ep->cert, err);
    }
    if (rc == 0)
        rc = durable_mkdirs(opt->vault_dir, 0700, err);
    /* The metadata naming the key's batch comes first: whenever a kill stops this, what
     * is on disk has an owner that the discard of that batch (and check) can find. */
    if (rc == 0)
        rc = vault_path(path, sizeof path, opt->vault_dir, ep->id, ".json", err);
    if (rc == 0)
        rc = write_meta(path, ep, opt, err);
    mr_crash_point("epoch-after-meta", NULL);
    if (rc == 0)
        rc = vault_path(path, sizeof path, opt->vault_dir, ep->id, ".crt.pem", err);
    if (rc == 0)
        rc = write_cert(path, ep->cert, err);
    mr_crash_point("epoch-after-cert", NULL);
    if (rc == 0)
        rc = vault_path(path, sizeof path, opt->vault_dir, ep->id, ".key.p7m", err);
    if (rc == 0)
        rc = seal_private(path, ep->priv, opt->holder, err);
    mr_crash_point("epoch-after-key", NULL);
    if (rc == 0 && audit != NULL) {
        const struct audit_field f[] = {
            { "key_id", ep->id },
            { "role", keys_epoch_role_name(opt->role) },
            { "batch", opt->batch_id != NULL ? opt->batch_id : "" },
            { "holder", opt->holder_name != NULL ? opt->holder_name : "it" },
        };
        rc = audit_append(audit, "keys.epoch.create", f, sizeof f / sizeof f[0], err);
    }
    if (rc != 0) {
        keys_epoch_free(ep);
        return mr_error_prefix(err, "epoch key");
    }
    *out = ep;
    return 0;
}

const char *keys_epoch_id(const keys_epoch *ep)
{
    return ep->id;
}

X509 *keys_epoch_cert(const keys_epoch *ep)
{
    return ep->cert;
}

EVP_PKEY *keys_epoch_private(const keys_epoch *ep)
{
    return ep->priv;
}

void keys_epoch_forget(keys_epoch *ep, audit_log *audit)
{
    if (ep == NULL || ep->priv == NULL)
        return;
    EVP_PKEY_free(ep->priv);    /* OpenSSL clears the private scalar on free */
    ep->priv = NULL;
    audit_epoch(audit, "keys.epoch.forget", ep->id, NULL, NULL);
}

void keys_epoch_free(keys_epoch *ep)
{
    if (ep == NULL)
        return;
    EVP_PKEY_free(ep->priv);
    X509_free(ep->cert);
    free(ep);
}

static int check_id(const char *key_id, mr_error *err)
{
    size_t n = strlen(key_id);

    if (n != KEYS_ID_LEN || strspn(key_id, "0123456789abcdef") != n)
        return mr_error_set(err, MR_E_INVALID, "not an epoch key id");
    return 0;
}

int keys_epoch_unseal(const char *vault_dir, const char *key_id, EVP_PKEY *holder_key,
                      audit_log *audit, EVP_PKEY **out, mr_error *err)
{
    char path[4096], id[KEYS_ID_LEN + 1];
    unsigned char *pem = NULL;
    size_t len = 0;
    BIO *mem;
    EVP_PKEY *pkey;
    int rc = check_id(key_id, err);

    *out = NULL;
    if (rc == 0)
        rc = vault_path(path, sizeof path, vault_dir, key_id, ".key.p7m", err);
    if (rc == 0)
        rc = keys_unseal_file(path, holder_key, &pem, &len, err);
    if (rc != 0)
        return mr_error_prefix(err, "epoch key %s", key_id);
    mem = BIO_new_mem_buf(pem, (int)len);
    pkey = mem != NULL ? PEM_read_bio_PrivateKey(mem, NULL, NULL, NULL) : NULL;
    BIO_free(mem);
    keys_wipe_free(pem, len);
    if (pkey == NULL)
        return mr_error_openssl(err, MR_E_TAMPERED, "epoch key %s: sealed content is not a key",
                                key_id);
    /* The sealed key must be the one its id names: a swapped file is tampering. */
    if (keys_key_id(pkey, id, err) != 0 || strcmp(id, key_id) != 0) {
        EVP_PKEY_free(pkey);
        return mr_error_set(err, MR_E_TAMPERED, "epoch key %s: sealed key has another id",
                            key_id);
    }
    if (audit != NULL) {
        const struct audit_field f[] = { { "key_id", key_id } };
        rc = audit_append(audit, "keys.epoch.unseal", f, 1, err);
        if (rc != 0) {
            EVP_PKEY_free(pkey);
            return rc;
        }
    }
    *out = pkey;
    return 0;
}

bool keys_epoch_present(const char *vault_dir, const char *key_id)
{
    char path[4096];

    if (check_id(key_id, NULL) != 0
        || vault_path(path, sizeof path, vault_dir, key_id, ".key.p7m", NULL) != 0)
        return false;
    return access(path, F_OK) == 0;
}

/* The files of one epoch key in the vault, in the order they are shredded. */
static const char *const epoch_suffixes[] = { ".key.p7m", ".crt.pem", ".json" };

bool keys_vault_epoch_file(const char *name, char id[KEYS_ID_LEN + 1])
{
    size_t len = strlen(name);

    if (len <= KEYS_ID_LEN || strspn(name, "0123456789abcdef") != KEYS_ID_LEN)
        return false;
    for (size_t i = 0; i < sizeof epoch_suffixes / sizeof epoch_suffixes[0]; i++)
        if (strcmp(name + KEYS_ID_LEN, epoch_suffixes[i]) == 0) {
            memcpy(id, name, KEYS_ID_LEN);
            id[KEYS_ID_LEN] = '\0';
            return true;
        }
    return false;
}

int keys_epoch_shred(const char *vault_dir, const char *key_id, audit_log *audit,
                     mr_error *err)
{
    const char *const *suffixes = epoch_suffixes;
    char path[4096];
    int rc = check_id(key_id, err);

    if (rc != 0)
        return rc;
    for (size_t i = 0; i < sizeof epoch_suffixes / sizeof epoch_suffixes[0]; i++) {
        rc = vault_path(path, sizeof path, vault_dir, key_id, suffixes[i], err);
        if (rc != 0)
            return rc;
        if (access(path, F_OK) != 0)
            continue;   /* already gone: a re-run after a crash */
        rc = durable_shred(path, err);
        if (rc != 0)
            return mr_error_prefix(err, "shredding epoch key %s", key_id);
    }
    if (audit != NULL) {
        const struct audit_field f[] = { { "key_id", key_id } };
        rc = audit_append(audit, "keys.epoch.shred", f, 1, err);
    }
    return rc;
}

int keys_cert_fingerprint(X509 *cert, char out[KEYS_FPR_LEN + 1], mr_error *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (X509_digest(cert, EVP_sha256(), md, &len) != 1 || len != 32)
        return mr_error_openssl(err, MR_E_CRYPTO, "cannot hash a certificate");
    for (unsigned i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

int keys_epoch_cert_load(const char *vault_dir, const char *key_id, X509 **out,
                         mr_error *err)
{
    char path[4096];
    int rc = check_id(key_id, err);

    *out = NULL;
    if (rc == 0)
        rc = vault_path(path, sizeof path, vault_dir, key_id, ".crt.pem", err);
    if (rc == 0 && access(path, F_OK) != 0)
        return mr_error_set(err, MR_E_NOTFOUND, "epoch certificate %s.crt.pem is missing",
                            key_id);
    return rc == 0 ? keys_cert_load(path, out, err) : rc;
}

int keys_epoch_cert_fingerprint(const char *vault_dir, const char *key_id,
                                char out[KEYS_FPR_LEN + 1], mr_error *err)
{
    X509 *cert = NULL;
    int rc = keys_epoch_cert_load(vault_dir, key_id, &cert, err);

    if (rc == 0)
        rc = keys_cert_fingerprint(cert, out, err);
    X509_free(cert);
    return rc;
}

int keys_epoch_meta_read(const char *vault_dir, const char *key_id, char batch[80],
                         time_t *expires, mr_error *err)
{
    char path[4096];
    json_error_t jerr;
    json_t *o;
    const char *b, *e;
    int rc = check_id(key_id, err);

    batch[0] = '\0';
    *expires = 0;
    if (rc == 0)
        rc = vault_path(path, sizeof path, vault_dir, key_id, ".json", err);
    if (rc != 0)
        return rc;
    o = json_load_file(path, 0, &jerr);
    if (o == NULL)
        return mr_error_set(err, access(path, F_OK) == 0 ? MR_E_PARSE : MR_E_NOTFOUND,
                            "epoch key metadata %s.json: %s", key_id, jerr.text);
    b = json_string_value(json_object_get(o, "batch"));
    e = json_string_value(json_object_get(o, "expires"));
    if (b == NULL || e == NULL || strlen(b) >= 80 || mrtime_parse_utc(e, expires, NULL) != 0)
        rc = mr_error_set(err, MR_E_PARSE, "epoch key metadata %s.json is malformed", key_id);
    else
        snprintf(batch, 80, "%s", b);
    json_decref(o);
    return rc;
}
