/* locator.c — see locator.h. */
#include "backup/locator.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "backup/batchdir.h"
#include "backup/buf.h"
#include "backup/index.h"
#include "backup/reader.h"
#include "backup/volume.h"
#include "keys/keys.h"

#define MAGIC "MRLOC1"
#define MAGIC_LEN 6
#define KEY_LEN 32
#define MAC_LEN 32
#define MAX_ENTRIES (16u << 20)
#define MAC_LABEL "mailret locator MAC key/1"

struct locator_builder {
    struct mr_buf body;             /* the entries, serialised as they come */
    size_t n;
    unsigned char mid_key[KEY_LEN];
};

struct locator {
    struct locator_entry *v;
    size_t n;
    unsigned char mid_key[KEY_LEN];
};

/* ---- shared ------------------------------------------------------------------------------ */

bool locator_message_id(const unsigned char *msg, size_t len, char *out, size_t size)
{
    size_t pos = 0;

    while (pos < len) {
        const unsigned char *nl = memchr(msg + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - msg) : len;
        if (end == pos || (end == pos + 1 && msg[pos] == '\r'))
            return false;   /* end of header */
        if (end - pos > 11 && strncasecmp((const char *)msg + pos, "Message-ID:", 11) == 0) {
            size_t n = 0, p = pos + 11;
            /* value plus folded continuation lines */
            for (;;) {
                for (; p < end && n + 1 < size; p++)
                    if (!isspace(msg[p]) && msg[p] != '<' && msg[p] != '>')
                        out[n++] = (char)msg[p];
                if (end + 1 < len && (msg[end + 1] == ' ' || msg[end + 1] == '\t')) {
                    p = end + 1;
                    nl = memchr(msg + p, '\n', len - p);
                    end = nl != NULL ? (size_t)(nl - msg) : len;
                    continue;
                }
                break;
            }
            out[n] = '\0';
            return true;
        }
        pos = end + 1;
    }
    return false;
}

static void mid_digest(const unsigned char key[KEY_LEN], const char *mid,
                       unsigned char out[LOCATOR_MID_DIGEST])
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    HMAC(EVP_sha256(), key, KEY_LEN, (const unsigned char *)mid, strlen(mid), md, &mdlen);
    memcpy(out, md, LOCATOR_MID_DIGEST);
    OPENSSL_cleanse(md, sizeof md);
}

/* The MAC key: a hash of the reid epoch private scalar, which only its holder has. */
static int mac_key(EVP_PKEY *priv, unsigned char key[KEY_LEN], mr_error *err)
{
    BIGNUM *bn = NULL;
    unsigned char scalar[66];
    EVP_MD_CTX *md;
    unsigned int klen = 0;
    int ok;

    if (priv == NULL || EVP_PKEY_get_bn_param(priv, OSSL_PKEY_PARAM_PRIV_KEY, &bn) != 1)
        return mr_error_set(err, MR_E_CRYPTO, "locator: the reid epoch key has no EC "
                            "private half");
    ok = BN_bn2binpad(bn, scalar, 32) == 32;
    BN_clear_free(bn);
    md = EVP_MD_CTX_new();
    ok = ok && md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1
         && EVP_DigestUpdate(md, MAC_LABEL, sizeof MAC_LABEL) == 1
         && EVP_DigestUpdate(md, scalar, 32) == 1 && EVP_DigestFinal_ex(md, key, &klen) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_cleanse(scalar, sizeof scalar);
    return ok && klen == KEY_LEN ? 0 : mr_error_set(err, MR_E_CRYPTO, "locator: cannot "
                                                    "derive the MAC key");
}

static int put(struct mr_buf *b, uint64_t v, int bytes, mr_error *err)
{
    unsigned char x[8];

    for (int i = 0; i < bytes; i++)
        x[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    return buf_append(b, x, (size_t)bytes, err);
}

/* ---- writing ----------------------------------------------------------------------------- */

int locator_builder_new(locator_builder **out, mr_error *err)
{
    locator_builder *lb = calloc(1, sizeof *lb);

    *out = NULL;
    if (lb == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    if (RAND_bytes(lb->mid_key, KEY_LEN) != 1) {
        free(lb);
        return mr_error_set(err, MR_E_CRYPTO, "locator: no random bytes");
    }
    *out = lb;
    return 0;
}

int locator_builder_add(locator_builder *lb, unsigned volume, unsigned position,
                        time_t internaldate, const unsigned char *msg, size_t len,
                        const char *const *tokens, size_t n_tokens, mr_error *err)
{
    char mid[LOCATOR_MID_MAX];
    unsigned char dg[LOCATOR_MID_DIGEST] = { 0 };
    bool has = locator_message_id(msg, len, mid, sizeof mid);
    int rc;

    if (volume == 0 || volume > 0xffff || n_tokens > 0xffff || lb->n >= MAX_ENTRIES)
        return mr_error_set(err, MR_E_LIMIT, "locator: too many volumes, tokens or messages");
    if (has)
        mid_digest(lb->mid_key, mid, dg);
    rc = put(&lb->body, volume, 2, err);
    if (rc == 0)
        rc = put(&lb->body, position, 4, err);
    if (rc == 0)
        rc = put(&lb->body, (uint64_t)(int64_t)internaldate, 8, err);
    if (rc == 0)
        rc = put(&lb->body, has, 1, err);
    if (rc == 0)
        rc = buf_append(&lb->body, dg, sizeof dg, err);
    if (rc == 0)
        rc = put(&lb->body, n_tokens, 2, err);
    for (size_t i = 0; rc == 0 && i < n_tokens; i++) {
        size_t tl = strlen(tokens[i]);
        if (tl == 0 || tl > 255)
            return mr_error_set(err, MR_E_INVALID, "locator: token %zu has length %zu", i, tl);
        rc = put(&lb->body, tl, 1, err);
        if (rc == 0)
            rc = buf_append(&lb->body, tokens[i], tl, err);
    }
    if (rc == 0)
        lb->n++;
    return rc;
}

/* Header (batch, volumes, Message-ID key) + body; the MAC is appended by the caller. */
static int serialise(const unsigned char mid_key[KEY_LEN], const char *batch_id,
                     const struct archive_volume *vols, size_t n_vols,
                     const struct mr_buf *body, size_t n, struct mr_buf *out, mr_error *err)
{
    size_t bl = strlen(batch_id);
    int rc;

    if (bl > 255 || n_vols > 0xffff)
        return mr_error_set(err, MR_E_LIMIT, "locator: batch id or volume count too large");
    rc = buf_append(out, MAGIC, MAGIC_LEN, err);
    if (rc == 0)
        rc = put(out, bl, 1, err);
    if (rc == 0)
        rc = buf_append(out, batch_id, bl, err);
    if (rc == 0)
        rc = put(out, n_vols, 4, err);
    for (size_t i = 0; rc == 0 && i < n_vols; i++) {
        unsigned char sha[32];
        if (volume_unhex(vols[i].sha256, sha, 32) != 0)
            return mr_error_set(err, MR_E_INVALID, "locator: volume %zu has no SHA-256", i + 1);
        rc = buf_append(out, sha, 32, err);
    }
    if (rc == 0)
        rc = buf_append(out, mid_key, KEY_LEN, err);
    if (rc == 0)
        rc = put(out, n, 4, err);
    if (rc == 0 && body->len > 0)
        rc = buf_append(out, body->data, body->len, err);
    return rc;
}

static int write_file(const char *dir, const unsigned char mid_key[KEY_LEN],
                      const char *batch_id, const struct archive_volume *vols, size_t n_vols,
                      const struct mr_buf *body, size_t n, X509 *cert, EVP_PKEY *priv,
                      unsigned long long *size, char sha256[65], mr_error *err)
{
    struct mr_buf plain = { 0 };
    unsigned char key[KEY_LEN], mac[MAC_LEN];
    unsigned int mlen = 0;
    char path[BATCHDIR_PATH_MAX];
    int rc = mac_key(priv, key, err);

    if (rc == 0)
        rc = serialise(mid_key, batch_id, vols, n_vols, body, n, &plain, err);
    if (rc == 0 && HMAC(EVP_sha256(), key, KEY_LEN, plain.data, plain.len, mac, &mlen) == NULL)
        rc = mr_error_set(err, MR_E_CRYPTO, "locator: HMAC failed");
    if (rc == 0)
        rc = buf_append(&plain, mac, MAC_LEN, err);
    if (rc == 0)
        rc = batchdir_path(dir, batchdir_name(BATCHDIR_LOCATOR), path, sizeof path, err);
    if (rc == 0)
        rc = volume_write(path, plain.data, plain.len, -1, cert, err);
    if (rc == 0 && size != NULL)
        rc = volume_file_hash(path, size, sha256, err);
    OPENSSL_cleanse(key, sizeof key);
    buf_free(&plain);
    return rc != 0 ? mr_error_prefix(err, "locator") : 0;
}

int locator_builder_write(locator_builder *lb, const char *dir, const char *batch_id,
                          const struct archive_volume *vols, size_t n_vols, X509 *reid_cert,
                          EVP_PKEY *reid_priv, unsigned long long *size, char sha256[65],
                          mr_error *err)
{
    return write_file(dir, lb->mid_key, batch_id, vols, n_vols, &lb->body, lb->n, reid_cert,
                      reid_priv, size, sha256, err);
}

void locator_builder_free(locator_builder *lb)
{
    if (lb == NULL)
        return;
    buf_free(&lb->body);
    OPENSSL_cleanse(lb->mid_key, KEY_LEN);
    free(lb);
}

/* ---- reading ----------------------------------------------------------------------------- */

struct rd {
    volume_reader *vr;
    struct mr_buf all;              /* every byte read, for the MAC */
};

static int take(struct rd *r, size_t n, const unsigned char **p, mr_error *err)
{
    int rc = buf_reserve(&r->all, n, err);

    if (rc == 0)
        rc = volume_read(r->vr, r->all.data + r->all.len, n, err);
    if (rc != 0)
        return rc;
    *p = r->all.data + r->all.len;
    r->all.len += n;
    return 0;
}

static int get(struct rd *r, int bytes, uint64_t *v, mr_error *err)
{
    const unsigned char *p;
    int rc = take(r, (size_t)bytes, &p, err);

    *v = 0;
    for (int i = 0; rc == 0 && i < bytes; i++)
        *v = *v << 8 | p[i];
    return rc;
}

void locator_free(locator *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++) {
        for (size_t k = 0; k < l->v[i].n_tokens; k++)
            free(l->v[i].tokens[k]);
        free(l->v[i].tokens);
    }
    free(l->v);
    OPENSSL_cleanse(l->mid_key, KEY_LEN);
    free(l);
}

static int parse(struct rd *r, const struct archive_manifest *m, locator *l, mr_error *err)
{
    const unsigned char *p;
    uint64_t v, n;
    char bid[256];
    int rc = take(r, MAGIC_LEN, &p, err);

    if (rc == 0 && memcmp(p, MAGIC, MAGIC_LEN) != 0)
        return mr_error_set(err, MR_E_TAMPERED, "not a locator");
    if (rc == 0)
        rc = get(r, 1, &v, err);
    if (rc == 0)
        rc = take(r, (size_t)v, &p, err);
    if (rc != 0)
        return rc;
    memcpy(bid, p, (size_t)v);
    bid[v] = '\0';
    if (strcmp(bid, m->batch_id) != 0)
        return mr_error_set(err, MR_E_TAMPERED, "it belongs to another batch");
    rc = get(r, 4, &n, err);
    if (rc == 0 && n != m->n_volumes)
        return mr_error_set(err, MR_E_TAMPERED, "it lists %llu volumes, the manifest %zu",
                            (unsigned long long)n, m->n_volumes);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        unsigned char sha[32];
        rc = take(r, 32, &p, err);
        if (rc == 0 && (volume_unhex(m->volumes[i].sha256, sha, 32) != 0
                        || memcmp(sha, p, 32) != 0))
            return mr_error_set(err, MR_E_TAMPERED, "volume %zu is not the manifest's", i + 1);
    }
    if (rc == 0)
        rc = take(r, KEY_LEN, &p, err);
    if (rc == 0)
        memcpy(l->mid_key, p, KEY_LEN);
    if (rc == 0)
        rc = get(r, 4, &n, err);
    if (rc == 0 && n > MAX_ENTRIES)
        return mr_error_set(err, MR_E_TAMPERED, "%llu entries", (unsigned long long)n);
    if (rc == 0 && (l->v = calloc(n ? n : 1, sizeof *l->v)) == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct locator_entry *e = &l->v[i];
        uint64_t nt;
        l->n++;
        rc = get(r, 2, &v, err);
        e->volume = (unsigned)v;
        if (rc == 0 && (v == 0 || v > m->n_volumes))
            return mr_error_set(err, MR_E_TAMPERED, "entry %zu names volume %llu", i + 1,
                                (unsigned long long)v);
        if (rc == 0)
            rc = get(r, 4, &v, err);
        e->position = (unsigned)v;
        if (rc == 0 && v >= m->volumes[e->volume - 1].messages)
            return mr_error_set(err, MR_E_TAMPERED, "entry %zu is past its volume's end",
                                i + 1);
        if (rc == 0)
            rc = get(r, 8, &v, err);
        e->internaldate = (time_t)(int64_t)v;
        if (rc == 0)
            rc = get(r, 1, &v, err);
        e->has_mid = v != 0;
        if (rc == 0)
            rc = take(r, LOCATOR_MID_DIGEST, &p, err);
        if (rc == 0)
            memcpy(e->mid, p, LOCATOR_MID_DIGEST);
        if (rc == 0)
            rc = get(r, 2, &nt, err);
        if (rc == 0 && (e->tokens = calloc(nt ? nt : 1, sizeof *e->tokens)) == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        for (size_t k = 0; rc == 0 && k < nt; k++) {
            rc = get(r, 1, &v, err);
            if (rc == 0)
                rc = take(r, (size_t)v, &p, err);
            if (rc == 0 && (e->tokens[k] = strndup((const char *)p, (size_t)v)) == NULL)
                return mr_error_set(err, MR_E_NOMEM, "out of memory");
            if (rc == 0)
                e->n_tokens++;
        }
    }
    return rc;
}

int locator_open(const char *dir, const struct archive_manifest *m, EVP_PKEY *reid_key,
                 locator **out, mr_error *err)
{
    const char *name = batchdir_name(BATCHDIR_LOCATOR);
    struct rd r = { 0 };
    locator *l;
    unsigned char key[KEY_LEN], mac[MAC_LEN];
    const unsigned char *given;
    unsigned int mlen = 0;
    char path[BATCHDIR_PATH_MAX];
    size_t body;
    int rc;

    *out = NULL;
    if (m->locator_name[0] == '\0' && !batchdir_exists(dir, name, NULL))
        return mr_error_set(err, MR_E_NOTFOUND, "batch %s has no locator", m->batch_id);
    if (m->locator_name[0] != '\0' && strcmp(m->locator_name, name) != 0)
        return mr_error_set(err, MR_E_TAMPERED, "the manifest names an unknown locator");
    rc = batchdir_read_path(dir, name, path, sizeof path, err);
    if (rc == 0)
        rc = volume_open(path, reid_key, m->locator_name[0] != '\0' ? m->locator_sha256 : NULL,
                         &r.vr, err);
    if (rc == MR_E_TAMPERED)
        batchdir_store_evict(dir, name);
    if (rc == MR_E_NOTFOUND && m->locator_name[0] != '\0')
        rc = mr_error_set(err, MR_E_TAMPERED, "%s is listed in the manifest but missing", name);
    if (rc != 0)
        return mr_error_prefix(err, "batch %s: locator", m->batch_id);
    l = calloc(1, sizeof *l);
    if (l == NULL) {
        volume_close(r.vr);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    rc = parse(&r, m, l, err);
    body = r.all.len;
    if (rc == 0)
        rc = take(&r, MAC_LEN, &given, err);
    if (rc == 0)
        rc = volume_check_end(r.vr, err);
    if (rc == 0)
        rc = mac_key(reid_key, key, err);
    if (rc == 0 && (HMAC(EVP_sha256(), key, KEY_LEN, r.all.data, body, mac, &mlen) == NULL
                    || CRYPTO_memcmp(mac, r.all.data + body, MAC_LEN) != 0))
        rc = mr_error_set(err, MR_E_TAMPERED, "MAC does not match");
    /* Whatever went wrong inside an authentic-looking file is tampering, not a parse
     * error the caller might shrug off. */
    if (rc != 0 && rc != MR_E_NOMEM && rc != MR_E_CRYPTO)
        rc = MR_E_TAMPERED;
    OPENSSL_cleanse(key, sizeof key);
    volume_close(r.vr);
    buf_free(&r.all);
    if (rc != 0) {
        locator_free(l);
        if (rc == MR_E_TAMPERED)
            batchdir_store_evict(dir, name);
        if (err != NULL)
            err->code = rc;
        return mr_error_prefix(err, "batch %s: locator", m->batch_id);
    }
    *out = l;
    return 0;
}

size_t locator_count(const locator *l)
{
    return l->n;
}

const struct locator_entry *locator_at(const locator *l, size_t i)
{
    return &l->v[i];
}

void locator_mid_digest(const locator *l, const char *wanted,
                        unsigned char out[LOCATOR_MID_DIGEST])
{
    mid_digest(l->mid_key, wanted, out);
}

bool locator_mid_is(const struct locator_entry *e, const unsigned char dg[LOCATOR_MID_DIGEST])
{
    return e->has_mid && CRYPTO_memcmp(dg, e->mid, LOCATOR_MID_DIGEST) == 0;
}

/* ---- adding a locator to an older batch -------------------------------------------------- */

struct add {
    locator_builder *lb;
    const struct archive_manifest *m;
    unsigned volume, position;
    const char *last_volume;
};

static int add_one(void *ctx, const struct reader_message *msg, mr_error *err)
{
    struct add *a = ctx;

    if (a->last_volume == NULL || strcmp(a->last_volume, msg->volume) != 0) {
        a->volume = 0;
        for (size_t i = 0; i < a->m->n_volumes && a->volume == 0; i++)
            if (strcmp(a->m->volumes[i].name, msg->volume) == 0)
                a->volume = (unsigned)i + 1;
        a->position = 0;
        a->last_volume = a->m->volumes[a->volume ? a->volume - 1 : 0].name;
        if (a->volume == 0)
            return mr_error_set(err, MR_E_INTERNAL, "%s is not in the manifest", msg->volume);
    }
    return locator_builder_add(a->lb, a->volume, a->position++, msg->idx->internaldate,
                               msg->orig, msg->orig_len, (const char *const *)msg->idx->tokens,
                               msg->idx->n_tokens, err);
}

static int add_keyed(const char *dir, const struct archive_manifest *m, EVP_PKEY *content_key,
                     EVP_PKEY *reid_key, X509 *reid_cert, size_t *messages, mr_error *err)
{
    struct add a = { .m = m };
    int rc;

    *messages = 0;
    if (m->locator_name[0] != '\0' || batchdir_exists(dir, batchdir_name(BATCHDIR_LOCATOR), NULL))
        return mr_error_set(err, MR_E_EXISTS, "batch %s already has a locator", m->batch_id);
    if (!keys_cert_matches(reid_cert, reid_key))
        return mr_error_set(err, MR_E_INVALID, "batch %s: the reid certificate is not the "
                            "reid key's", m->batch_id);
    rc = locator_builder_new(&a.lb, err);
    if (rc == 0) {
        struct reader_options ro = { .dir = dir, .manifest = m, .content_key = content_key,
                                     .reid_key = reid_key, .fn = add_one, .ctx = &a };
        rc = reader_run(&ro, err);
    }
    if (rc == 0)
        rc = locator_builder_write(a.lb, dir, m->batch_id, m->volumes, m->n_volumes, reid_cert,
                                   reid_key, NULL, NULL, err);
    if (rc == 0)
        *messages = a.lb->n;
    locator_builder_free(a.lb);
    return rc;
}

int locator_add(const struct locator_add_options *o, char batch_id[64], size_t *messages,
                mr_error *err)
{
    struct archive_manifest m;
    EVP_PKEY *ck = NULL, *rk = NULL;
    X509 *cert = NULL;
    char fpr[KEYS_FPR_LEN + 1];
    int rc = archive_manifest_read(o->dir, o->trust, &m, err);

    *messages = 0;
    batch_id[0] = '\0';
    if (rc != 0)
        return rc;
    snprintf(batch_id, 64, "%s", m.batch_id);
    /* Built only from what the host's signature vouches for. */
    if (m.auth == ARCHIVE_AUTH_OVERRIDDEN)
        rc = mr_error_set(err, MR_E_TAMPERED, "batch %s: the manifest is not authentic",
                          m.batch_id);
    if (rc == 0 && (m.locator_name[0] != '\0'
                    || batchdir_exists(o->dir, batchdir_name(BATCHDIR_LOCATOR), NULL)))
        rc = mr_error_set(err, MR_E_EXISTS, "batch %s already has a locator", m.batch_id);
    if (rc == 0)
        rc = keys_epoch_cert_load(o->vault_dir, m.reid_key_id, &cert, err);
    if (rc == 0 && m.reid_cert_fpr[0] != '\0'
        && (keys_cert_fingerprint(cert, fpr, err) != 0 || strcmp(fpr, m.reid_cert_fpr) != 0))
        rc = mr_error_set(err, MR_E_TAMPERED, "batch %s: the vault's reid certificate is not "
                          "the one the manifest names", m.batch_id);
    if (rc == 0)
        rc = keys_epoch_unseal(o->vault_dir, m.content_key_id, o->it_key, o->audit, &ck, err);
    if (rc == 0)
        rc = keys_epoch_unseal(o->vault_dir, m.reid_key_id,
                               o->reid_key != NULL ? o->reid_key : o->it_key, o->audit, &rk,
                               err);
    if (rc == 0)
        rc = add_keyed(o->dir, &m, ck, rk, cert, messages, err);
    if (rc == 0 && o->audit != NULL) {
        char cnt[24];
        snprintf(cnt, sizeof cnt, "%zu", *messages);
        const struct audit_field f[] = { { "batch", m.batch_id }, { "messages", cnt } };
        rc = audit_append(o->audit, "batch.locator.add", f, 2, err);
    }
    if (rc != 0 && rc != MR_E_EXISTS)
        mr_error_prefix(err, "batch %s", m.batch_id[0] != '\0' ? m.batch_id : o->dir);
    EVP_PKEY_free(ck);
    EVP_PKEY_free(rk);
    X509_free(cert);
    archive_manifest_clear(&m);
    return rc;
}
