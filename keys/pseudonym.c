/* pseudonym.c — the pseudonym key's epochs: the host's raw key files, their copies sealed
 * to the re-identification holder, rotation, and the transfer to a new host after the old
 * one is lost.  This file alone names these files (see keys.h). */
#include "keys/keys.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "common/durable.h"

#define SEALED_PREFIX "pseudonym-key"
#define SEALED_SUFFIX ".p7m"
#define TRANSFER_SUFFIX ".import.pem"
#define BUNDLE_MAGIC "mailret-pseudonym-keys/1\n"
#define BUNDLE_MAX (sizeof BUNDLE_MAGIC + (KEYS_PSEUDONYM_EPOCH_MAX + 1) * 80)

void keys_pseudonym_set_free(struct keys_pseudonym_set *s)
{
    if (s == NULL)
        return;
    keys_wipe_free(s->v, s->n * sizeof *s->v);
    s->v = NULL;
    s->n = 0;
}

const struct keys_pseudonym *keys_pseudonym_current(const struct keys_pseudonym_set *s)
{
    return s == NULL || s->n == 0 ? NULL : &s->v[s->n - 1];
}

int keys_pseudonym_host_path(const char *key_file, unsigned epoch, char *buf, size_t size,
                             mr_error *err)
{
    int n = epoch == 0 ? snprintf(buf, size, "%s", key_file)
                       : snprintf(buf, size, "%s.%u", key_file, epoch);

    if (n < 0 || (size_t)n >= size)
        return mr_error_set(err, MR_E_INVALID, "pseudonym key path too long");
    return 0;
}

int keys_pseudonym_sealed_path(const char *vault_dir, unsigned epoch, char *buf,
                               size_t size, mr_error *err)
{
    /* Epoch 0 keeps the name vaults had before there were epochs. */
    int n = epoch == 0 ? snprintf(buf, size, "%s/" SEALED_PREFIX SEALED_SUFFIX, vault_dir)
                       : snprintf(buf, size, "%s/" SEALED_PREFIX ".%u" SEALED_SUFFIX,
                                  vault_dir, epoch);

    if (n < 0 || (size_t)n >= size)
        return mr_error_set(err, MR_E_INVALID, "vault path too long");
    return 0;
}

/* "<digits>" with no sign, no leading zero, within the epoch range; *end past them. */
static bool parse_epoch(const char *s, unsigned *epoch, const char **end)
{
    unsigned long v = 0;
    const char *p = s;

    if (*p < '1' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > KEYS_PSEUDONYM_EPOCH_MAX)
            return false;
        p++;
    }
    *epoch = (unsigned)v;
    *end = p;
    return true;
}

/* Epochs present: the host's files (base name "<key file>.N" beside it) or the vault's
 * sealed copies.  Sets bit `epoch` in present[]. */
static int scan_epochs(const char *dir, const char *prefix, const char *suffix,
                       bool present[KEYS_PSEUDONYM_EPOCH_MAX + 1], mr_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t plen = strlen(prefix), slen = strlen(suffix);

    if (d == NULL)
        return errno == ENOENT ? 0
                               : mr_error_errno(err, MR_E_IO, errno, "cannot read %s", dir);
    while ((de = readdir(d)) != NULL) {
        const char *end;
        unsigned e;
        if (strcmp(de->d_name, prefix) == 0 && slen == 0) {
            present[0] = true;
            continue;
        }
        if (strncmp(de->d_name, prefix, plen) != 0)
            continue;
        if (slen > 0 && strcmp(de->d_name + plen, suffix) == 0) {
            present[0] = true;
            continue;
        }
        if (de->d_name[plen] != '.' || !parse_epoch(de->d_name + plen + 1, &e, &end)
            || strcmp(end, suffix) != 0)
            continue;
        present[e] = true;
    }
    closedir(d);
    return 0;
}

/* dirname and basename of key_file, into dir[] and *base. */
static int split_path(const char *key_file, char dir[PATH_MAX], const char **base,
                      mr_error *err)
{
    const char *slash = strrchr(key_file, '/');

    if (slash == NULL) {
        strcpy(dir, ".");
        *base = key_file;
        return 0;
    }
    if ((size_t)(slash - key_file) >= PATH_MAX)
        return mr_error_set(err, MR_E_INVALID, "pseudonym key path too long");
    memcpy(dir, key_file, (size_t)(slash - key_file));
    dir[slash - key_file] = '\0';
    if (dir[0] == '\0')
        strcpy(dir, "/");
    *base = slash + 1;
    return 0;
}

static int host_epochs(const char *key_file, bool present[KEYS_PSEUDONYM_EPOCH_MAX + 1],
                       mr_error *err)
{
    char dir[PATH_MAX];
    const char *base;
    int rc = split_path(key_file, dir, &base, err);

    return rc != 0 ? rc : scan_epochs(dir, base, "", present, err);
}

static int set_push(struct keys_pseudonym_set *s, unsigned epoch,
                    const unsigned char key[KEYS_SECRET_LEN], mr_error *err)
{
    struct keys_pseudonym *nv = calloc(s->n + 1, sizeof *nv);

    if (nv == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    if (s->n > 0)
        memcpy(nv, s->v, s->n * sizeof *nv);
    keys_wipe_free(s->v, s->n * sizeof *s->v);
    s->v = nv;
    nv[s->n].epoch = epoch;
    memcpy(nv[s->n].key, key, KEYS_SECRET_LEN);
    keys_secret_key_id(key, nv[s->n].id);
    s->n++;
    return 0;
}

int keys_pseudonym_load_host(const char *key_file, struct keys_pseudonym_set *out,
                             mr_error *err)
{
    bool present[KEYS_PSEUDONYM_EPOCH_MAX + 1];
    unsigned char key[KEYS_SECRET_LEN];
    char path[PATH_MAX];
    int rc;

    memset(out, 0, sizeof *out);
    memset(present, 0, sizeof present);
    rc = host_epochs(key_file, present, err);
    if (rc == 0 && !present[0])
        rc = mr_error_set(err, MR_E_NOTFOUND, "no pseudonym key at %s", key_file);
    for (unsigned e = 0; rc == 0 && e <= KEYS_PSEUDONYM_EPOCH_MAX; e++) {
        if (!present[e])
            continue;
        rc = keys_pseudonym_host_path(key_file, e, path, sizeof path, err);
        if (rc == 0)
            rc = keys_secret_key_read(path, key, err);
        if (rc == 0)
            rc = set_push(out, e, key, err);
    }
    OPENSSL_cleanse(key, sizeof key);
    if (rc != 0)
        keys_pseudonym_set_free(out);
    return rc;
}

static int audit_epoch(audit_log *audit, const char *event, unsigned epoch, const char *id,
                       mr_error *err)
{
    char e[16];
    const struct audit_field f[] = { { "epoch", e }, { "pseudonym_key", id } };

    if (audit == NULL)
        return 0;
    snprintf(e, sizeof e, "%u", epoch);
    return audit_append(audit, event, f, 2, err);
}

int keys_pseudonym_load_sealed(const char *vault_dir, EVP_PKEY *const *holders,
                               size_t n_holders, audit_log *audit,
                               struct keys_pseudonym_set *out, mr_error *err)
{
    bool present[KEYS_PSEUDONYM_EPOCH_MAX + 1];
    char path[PATH_MAX];
    size_t found = 0;
    int rc;

    memset(out, 0, sizeof *out);
    memset(present, 0, sizeof present);
    rc = scan_epochs(vault_dir, SEALED_PREFIX, SEALED_SUFFIX, present, err);
    for (unsigned e = 0; rc == 0 && e <= KEYS_PSEUDONYM_EPOCH_MAX; e++) {
        unsigned char *data = NULL;
        size_t len = 0;
        if (!present[e])
            continue;
        found++;
        rc = keys_pseudonym_sealed_path(vault_dir, e, path, sizeof path, err);
        rc = rc != 0 ? rc : MR_E_CRYPTO;
        for (size_t h = 0; rc == MR_E_CRYPTO && h < n_holders; h++)
            if (holders[h] != NULL)
                rc = keys_unseal_file(path, holders[h], &data, &len, err);
        if (rc == MR_E_CRYPTO)
            rc = mr_error_set(err, MR_E_CRYPTO, "cannot unseal %s: it is sealed to the "
                              "re-identification holder, whose key was not given (or it is "
                              "damaged)", path);
        if (rc == 0 && len != KEYS_SECRET_LEN)
            rc = mr_error_set(err, MR_E_TAMPERED, "%s: sealed pseudonym key has the wrong "
                              "size", path);
        if (rc == 0)
            rc = set_push(out, e, data, err);
        keys_wipe_free(data, len);
        if (rc == 0)
            rc = audit_epoch(audit, "keys.pseudonym.unseal", e, out->v[out->n - 1].id, err);
    }
    if (rc == 0 && found == 0)
        rc = mr_error_set(err, MR_E_NOTFOUND, "no sealed pseudonym key in %s", vault_dir);
    if (rc != 0)
        keys_pseudonym_set_free(out);
    return rc;
}

/* Sealed copy first, then the host file. */
static int write_epoch(const char *key_file, const char *vault_dir, unsigned epoch,
                       const unsigned char key[KEYS_SECRET_LEN], X509 *holder, mr_error *err)
{
    char host[PATH_MAX], sealed[PATH_MAX];
    struct stat st;
    int rc = keys_pseudonym_host_path(key_file, epoch, host, sizeof host, err);

    if (rc == 0)
        rc = keys_pseudonym_sealed_path(vault_dir, epoch, sealed, sizeof sealed, err);
    if (rc == 0 && stat(host, &st) == 0)
        rc = mr_error_set(err, MR_E_EXISTS, "refusing to replace existing key %s (it would "
                          "orphan every archive made with it)", host);
    if (rc == 0 && lstat(sealed, &st) == 0)
        rc = mr_error_set(err, MR_E_EXISTS, "the vault already holds %s: this host "
                          "continues an archive (re-provision its pseudonym key with `keys "
                          "import-pseudonym`), or remove a copy left by an interrupted run",
                          sealed);
    if (rc == 0)
        rc = keys_seal_file(key, KEYS_SECRET_LEN, holder, sealed, err);
    if (rc == 0)
        rc = durable_write_file(host, key, KEYS_SECRET_LEN, 0600, err);
    return rc;
}

int keys_pseudonym_create(const char *key_file, const char *vault_dir, X509 *holder,
                          char id[17], mr_error *err)
{
    unsigned char key[KEYS_SECRET_LEN];
    int rc = 0;

    if (RAND_priv_bytes(key, sizeof key) != 1)
        rc = mr_error_openssl(err, MR_E_CRYPTO, "random generator failed");
    if (rc == 0)
        rc = write_epoch(key_file, vault_dir, 0, key, holder, err);
    if (rc == 0)
        keys_secret_key_id(key, id);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

int keys_pseudonym_rotate(const char *key_file, const char *vault_dir, X509 *holder,
                          audit_log *audit, unsigned *epoch, char id[17], mr_error *err)
{
    bool present[KEYS_PSEUDONYM_EPOCH_MAX + 1];
    unsigned char key[KEYS_SECRET_LEN];
    unsigned next = 0;
    int rc;

    memset(present, 0, sizeof present);
    rc = host_epochs(key_file, present, err);
    if (rc == 0 && !present[0])
        rc = mr_error_set(err, MR_E_NOTFOUND, "no pseudonym key at %s (run `keys init-host`, "
                          "or `keys import-pseudonym` on a recovered host)", key_file);
    if (rc == 0)
        rc = scan_epochs(vault_dir, SEALED_PREFIX, SEALED_SUFFIX, present, err);
    /* Past every epoch either side knows: a sealed copy left by an interrupted rotation
     * is never reused for another key. */
    for (unsigned e = 0; rc == 0 && e <= KEYS_PSEUDONYM_EPOCH_MAX; e++)
        if (present[e])
            next = e + 1;
    if (rc == 0 && next > KEYS_PSEUDONYM_EPOCH_MAX)
        rc = mr_error_set(err, MR_E_LIMIT, "no pseudonym key epoch left");
    if (rc == 0 && RAND_priv_bytes(key, sizeof key) != 1)
        rc = mr_error_openssl(err, MR_E_CRYPTO, "random generator failed");
    if (rc == 0)
        rc = write_epoch(key_file, vault_dir, next, key, holder, err);
    if (rc == 0) {
        keys_secret_key_id(key, id);
        *epoch = next;
        rc = audit_epoch(audit, "keys.pseudonym.rotate", next, id, err);
    }
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

/* Seal key to holder at path, replacing what is there (sealed beside it, then renamed). */
static int reseal_one(const char *path, const unsigned char key[KEYS_SECRET_LEN],
                      X509 *holder, mr_error *err)
{
    char tmp[PATH_MAX + 8];
    char dir[PATH_MAX];
    const char *base;
    int rc;

    if ((size_t)snprintf(tmp, sizeof tmp, "%s.new", path) >= sizeof tmp)
        return mr_error_set(err, MR_E_INVALID, "vault path too long");
    if (access(tmp, F_OK) == 0 && (rc = durable_shred(tmp, err)) != 0)
        return rc;
    rc = keys_seal_file(key, KEYS_SECRET_LEN, holder, tmp, err);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot rename %s", tmp);
    if (rc == 0 && (rc = split_path(path, dir, &base, err)) == 0)
        rc = durable_fsync_dir(dir, err);
    return rc;
}

int keys_pseudonym_reseal(const char *key_file, const char *vault_dir, X509 *holder,
                          audit_log *audit, size_t *n, mr_error *err)
{
    struct keys_pseudonym_set s;
    char path[PATH_MAX];
    int rc = keys_pseudonym_load_host(key_file, &s, err);

    *n = 0;
    for (size_t i = 0; rc == 0 && i < s.n; i++) {
        rc = keys_pseudonym_sealed_path(vault_dir, s.v[i].epoch, path, sizeof path, err);
        if (rc == 0)
            rc = reseal_one(path, s.v[i].key, holder, err);
        if (rc == 0)
            rc = audit_epoch(audit, "keys.pseudonym.reseal", s.v[i].epoch, s.v[i].id, err);
        if (rc == 0)
            (*n)++;
    }
    keys_pseudonym_set_free(&s);
    return rc;
}

/* ---- transfer to a new host ------------------------------------------------------------ */

static int transfer_key_path(const char *key_file, char *buf, size_t size, mr_error *err)
{
    if ((size_t)snprintf(buf, size, "%s" TRANSFER_SUFFIX, key_file) >= size)
        return mr_error_set(err, MR_E_INVALID, "pseudonym key path too long");
    return 0;
}

static int pem_write(const char *path, bool private_key, EVP_PKEY *key, X509 *cert,
                     mode_t mode, mr_error *err)
{
    BIO *mem = BIO_new(BIO_s_secmem());
    BUF_MEM *buf = NULL;
    int ok, rc;

    ok = mem != NULL && (private_key ? PEM_write_bio_PKCS8PrivateKey(mem, key, NULL, NULL, 0,
                                                                      NULL, NULL)
                                     : PEM_write_bio_X509(mem, cert));
    if (!ok) {
        BIO_free(mem);
        return mr_error_openssl(err, MR_E_CRYPTO, "cannot encode %s", path);
    }
    BIO_get_mem_ptr(mem, &buf);
    rc = durable_write_file(path, buf->data, buf->length, mode, err);
    BIO_free(mem);
    return rc;
}

int keys_pseudonym_request(const char *key_file, const char *request_out, audit_log *audit,
                           mr_error *err)
{
    char path[PATH_MAX], id[KEYS_ID_LEN + 1];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    struct stat st;
    int rc = transfer_key_path(key_file, path, sizeof path, err);

    if (rc == 0 && stat(key_file, &st) == 0)
        rc = mr_error_set(err, MR_E_EXISTS, "this host already has a pseudonym key (%s)",
                          key_file);
    if (rc == 0)
        rc = keys_generate(KEYS_ALGO_P256, &key, err);
    if (rc == 0)
        rc = keys_self_signed(key, "mailret pseudonym key transfer", 30, &cert, err);
    if (rc == 0)
        rc = keys_key_id(key, id, err);
    /* A request made again replaces the earlier one: only the newest can be imported. */
    if (rc == 0 && access(path, F_OK) == 0)
        rc = durable_shred(path, err);
    if (rc == 0)
        rc = pem_write(path, true, key, NULL, 0600, err);
    if (rc == 0)
        rc = pem_write(request_out, false, NULL, cert, 0644, err);
    if (rc == 0 && audit != NULL) {
        const struct audit_field f[] = { { "transfer_key", id } };
        rc = audit_append(audit, "keys.pseudonym.request", f, 1, err);
    }
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

int keys_pseudonym_export(const struct keys_pseudonym_set *s, X509 *recipient,
                          const char *out_path, audit_log *audit, mr_error *err)
{
    char *text = NULL, id[KEYS_ID_LEN + 1], count[16];
    size_t len = 0, cap = BUNDLE_MAX;
    int rc = 0;

    if (s->n == 0)
        return mr_error_set(err, MR_E_NOTFOUND, "no pseudonym key to export");
    text = malloc(cap);
    if (text == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    len = (size_t)snprintf(text, cap, "%s", BUNDLE_MAGIC);
    for (size_t i = 0; i < s->n && len < cap; i++) {
        len += (size_t)snprintf(text + len, cap - len, "%u ", s->v[i].epoch);
        for (size_t j = 0; j < KEYS_SECRET_LEN && len < cap; j++)
            len += (size_t)snprintf(text + len, cap - len, "%02x", s->v[i].key[j]);
        if (len < cap)
            text[len++] = '\n';
    }
    if (len >= cap)
        rc = mr_error_set(err, MR_E_LIMIT, "too many pseudonym key epochs");
    if (rc == 0)
        rc = keys_key_id(X509_get0_pubkey(recipient), id, err);
    if (rc == 0)
        rc = keys_seal_file((const unsigned char *)text, len, recipient, out_path, err);
    keys_wipe_free(text, cap);
    if (rc == 0 && audit != NULL) {
        const struct audit_field f[] = { { "epochs", count }, { "transfer_key", id } };
        snprintf(count, sizeof count, "%zu", s->n);
        rc = audit_append(audit, "keys.pseudonym.export", f, 2, err);
    }
    return rc;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The bundle's lines: "<epoch> <64 lower-case hex>\n", epochs strictly ascending from 0. */
static int bundle_parse(const unsigned char *data, size_t len, struct keys_pseudonym_set *s,
                        mr_error *err)
{
    const char *p = (const char *)data, *end = p + len;
    unsigned char key[KEYS_SECRET_LEN];
    int rc = 0;

    memset(s, 0, sizeof *s);
    if (len < sizeof BUNDLE_MAGIC - 1 || memcmp(p, BUNDLE_MAGIC, sizeof BUNDLE_MAGIC - 1) != 0)
        return mr_error_set(err, MR_E_PARSE, "not a mailret pseudonym key export");
    p += sizeof BUNDLE_MAGIC - 1;
    while (rc == 0 && p < end) {
        const char *q;
        unsigned e = 0;
        if (*p == '0' && p + 1 < end && p[1] == ' ')
            q = p + 1;
        else if (!parse_epoch(p, &e, &q) || q >= end)
            q = NULL;
        if (q == NULL || *q != ' ' || end - (q + 1) < 2 * KEYS_SECRET_LEN + 1
            || q[1 + 2 * KEYS_SECRET_LEN] != '\n'
            || (s->n == 0 ? e != 0 : e <= s->v[s->n - 1].epoch)) {
            rc = mr_error_set(err, MR_E_PARSE, "pseudonym key export: line %zu is malformed",
                              s->n + 2);
            break;
        }
        for (size_t j = 0; rc == 0 && j < KEYS_SECRET_LEN; j++) {
            int hi = hexval(q[1 + 2 * j]), lo = hexval(q[2 + 2 * j]);
            if (hi < 0 || lo < 0)
                rc = mr_error_set(err, MR_E_PARSE, "pseudonym key export: line %zu is "
                                  "malformed", s->n + 2);
            else
                key[j] = (unsigned char)(hi << 4 | lo);
        }
        if (rc == 0)
            rc = set_push(s, e, key, err);
        p = q + 2 + 2 * KEYS_SECRET_LEN;
    }
    OPENSSL_cleanse(key, sizeof key);
    if (rc == 0 && s->n == 0)
        rc = mr_error_set(err, MR_E_PARSE, "pseudonym key export holds no key");
    if (rc != 0)
        keys_pseudonym_set_free(s);
    return rc;
}

int keys_pseudonym_import(const char *bundle, const char *key_file, const char *vault_dir,
                          X509 *holder, audit_log *audit, size_t *n, mr_error *err)
{
    struct keys_pseudonym_set s = { 0 };
    char tpath[PATH_MAX], host[PATH_MAX], sealed[PATH_MAX];
    unsigned char *data = NULL, have[KEYS_SECRET_LEN];
    EVP_PKEY *tk = NULL;
    size_t len = 0;
    struct stat st;
    int rc = transfer_key_path(key_file, tpath, sizeof tpath, err);

    *n = 0;
    if (rc == 0 && access(tpath, F_OK) != 0)
        rc = mr_error_set(err, MR_E_NOTFOUND, "no transfer key on this host: run `keys "
                          "import-pseudonym --request FILE` first and give FILE to IT");
    if (rc == 0)
        rc = keys_private_load(tpath, NULL, &tk, err);
    if (rc == 0)
        rc = keys_unseal_file(bundle, tk, &data, &len, err);
    if (rc == 0 && len > BUNDLE_MAX)
        rc = mr_error_set(err, MR_E_LIMIT, "%s is too large", bundle);
    if (rc == 0)
        rc = bundle_parse(data, len, &s, err);
    keys_wipe_free(data, len);
    EVP_PKEY_free(tk);
    /* All checked before anything is written: a host key that differs from IT's for the
     * same epoch means this is not the archive's key, and nothing is replaced. */
    for (size_t i = 0; rc == 0 && i < s.n; i++) {
        rc = keys_pseudonym_host_path(key_file, s.v[i].epoch, host, sizeof host, err);
        if (rc == 0 && stat(host, &st) == 0) {
            rc = keys_secret_key_read(host, have, err);
            if (rc == 0 && CRYPTO_memcmp(have, s.v[i].key, KEYS_SECRET_LEN) != 0)
                rc = mr_error_set(err, MR_E_EXISTS, "%s holds a different key than IT's "
                                  "epoch %u; nothing imported", host, s.v[i].epoch);
        }
    }
    OPENSSL_cleanse(have, sizeof have);
    for (size_t i = 0; rc == 0 && i < s.n; i++) {
        rc = keys_pseudonym_host_path(key_file, s.v[i].epoch, host, sizeof host, err);
        if (rc == 0)
            rc = keys_pseudonym_sealed_path(vault_dir, s.v[i].epoch, sealed, sizeof sealed,
                                            err);
        if (rc == 0 && lstat(sealed, &st) != 0)
            rc = keys_seal_file(s.v[i].key, KEYS_SECRET_LEN, holder, sealed, err);
        if (rc == 0 && stat(host, &st) != 0)
            rc = durable_write_file(host, s.v[i].key, KEYS_SECRET_LEN, 0600, err);
        if (rc == 0)
            rc = audit_epoch(audit, "keys.pseudonym.import", s.v[i].epoch, s.v[i].id, err);
        if (rc == 0)
            (*n)++;
    }
    keys_pseudonym_set_free(&s);
    if (rc == 0)
        rc = durable_shred(tpath, err);
    return rc;
}
