/* ledger.c — the sealed, chained erasure ledger (see ledger.h). */
#include "backup/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "backup/volume.h"
#include "common/durable.h"

#define LEDGER_MAGIC "mailret-ledger/2"
#define LEDGER_MAX (256u << 20)         /* a million entries fit many times over */
#define SEALED_MAX 16384                /* one sealed "kind:token" is < 1 KiB */

struct ledger_line {
    unsigned char *sealed;      /* DER */
    size_t sealed_len;
    unsigned char chain[32];
};

struct ledger_reader {
    struct ledger_line *lines;
    size_t n;
    char *text;                 /* the file as read (for appending) */
    size_t text_len;
};

int ledger_entry(const pseudo_key *key, enum pseudo_kind kind, const char *identifier,
                 char *out, size_t size, mr_error *err)
{
    char token[PSEUDO_TOKEN_LEN + 1];
    int rc;

    if (identifier == NULL || *identifier == '\0')
        return mr_error_set(err, MR_E_INVALID, "empty identifier");
    rc = pseudo_token(key, kind, identifier, token, err);
    if (rc != 0)
        return rc;
    if ((size_t)snprintf(out, size, "%s:%s", pseudo_kind_name(kind), token) >= size)
        return mr_error_set(err, MR_E_INTERNAL, "ledger entry buffer too small");
    return 0;
}

static bool entry_valid(const char *e)
{
    const char *colon = strchr(e, ':');

    return colon != NULL && colon != e && colon[1] != '\0' && strlen(e) < 200
           && strpbrk(e, " \t\r\n") == NULL;
}

static int chain_next(const unsigned char prev[32], unsigned long long seq,
                      const unsigned char *sealed, size_t len, unsigned char out[32],
                      mr_error *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char be[8];
    unsigned int olen = 0;
    int ok;

    for (int i = 0; i < 8; i++)
        be[i] = (unsigned char)(seq >> (56 - 8 * i));
    ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1
         && EVP_DigestUpdate(md, LEDGER_MAGIC, sizeof LEDGER_MAGIC) == 1    /* with NUL */
         && EVP_DigestUpdate(md, be, 8) == 1 && EVP_DigestUpdate(md, prev, 32) == 1
         && EVP_DigestUpdate(md, sealed, len) == 1 && EVP_DigestFinal_ex(md, out, &olen) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : mr_error_openssl(err, MR_E_CRYPTO, "erasure ledger: SHA-256 failed");
}

static int signed_text(unsigned long long seq, const char *chain_hex, char *buf, size_t size)
{
    return snprintf(buf, size, "%s %llu %s", LEDGER_MAGIC, seq, chain_hex);
}

void ledger_free(ledger_reader *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->lines[i].sealed);
    free(l->lines);
    free(l->text);
    free(l);
}

static int read_all(const char *path, char **out, size_t *len, mr_error *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;

    *out = NULL;
    *len = 0;
    if (f == NULL)
        return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_IO, errno,
                              "cannot open erasure ledger %s", path);
    for (;;) {
        size_t got;
        if (n + 4096 + 1 > cap) {
            size_t nc = cap ? cap * 2 : 8192;
            char *nb = nc > LEDGER_MAX + 8192 ? NULL : realloc(buf, nc);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return mr_error_set(err, cap ? MR_E_LIMIT : MR_E_NOMEM,
                                    "erasure ledger %s is too large", path);
            }
            buf = nb;
            cap = nc;
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return mr_error_set(err, MR_E_IO, "cannot read erasure ledger %s", path);
    }
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* Parse and authenticate text (NUL-terminated, len bytes; cut up in place) into l. */
static int parse(const char *path, char *text, size_t len, const keys_keyring *kr, ledger_reader *l,
                 mr_error *err)
{
    static const char magic_line[] = LEDGER_MAGIC "\n";
    unsigned char prev[32] = { 0 };
    size_t pos, cap = 0;
    unsigned long long ln = 1;

    if (memchr(text, '\0', len) != NULL)
        return mr_error_set(err, MR_E_TAMPERED, "erasure ledger %s: NUL byte", path);
    if (len < sizeof magic_line - 1 || memcmp(text, magic_line, sizeof magic_line - 1) != 0) {
        if (len == 0 || strchr(text, ':') != NULL)
            return mr_error_set(err, MR_E_UNSUPPORTED,
                                "erasure ledger %s is in the old plaintext format: seal it "
                                "on the host with `mailret erase --seal-ledger`", path);
        return mr_error_set(err, MR_E_TAMPERED, "erasure ledger %s: not a mailret ledger "
                            "(first line is not %s)", path, LEDGER_MAGIC);
    }
    pos = sizeof magic_line - 1;
    while (pos < len) {
        char *line = text + pos, *nl = memchr(line, '\n', len - pos);
        char *f[5], *save = NULL, *tok;
        char seqbuf[24], msg[128], chain_hex[65];
        unsigned char sig[KEYS_SIG_LEN], chain[32];
        struct ledger_line *cur;
        unsigned long long seq = l->n + 1;
        size_t b64len, nf = 0;
        int dlen, rc;

        ln++;
        if (nl == NULL)
            return mr_error_set(err, MR_E_TAMPERED, "erasure ledger %s line %llu: incomplete "
                                "(no newline)", path, ln);
        *nl = '\0';
        pos = (size_t)(nl - text) + 1;
        for (tok = strtok_r(line, " ", &save); tok != NULL && nf < 5;
             tok = strtok_r(NULL, " ", &save))
            f[nf++] = tok;
        if (nf != 5 || tok != NULL)
            return mr_error_set(err, MR_E_TAMPERED, "erasure ledger %s line %llu: not five "
                                "fields", path, ln);
        snprintf(seqbuf, sizeof seqbuf, "%llu", seq);
        if (strcmp(f[0], seqbuf) != 0)
            return mr_error_set(err, MR_E_TAMPERED, "erasure ledger %s line %llu: entry %s "
                                "where %llu was expected (entry removed or reordered)",
                                path, ln, f[0], seq);
        if (l->n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            struct ledger_line *nv = realloc(l->lines, nc * sizeof *nv);
            if (nv == NULL)
                return mr_error_set(err, MR_E_NOMEM, "out of memory");
            l->lines = nv;
            cap = nc;
        }
        cur = &l->lines[l->n];
        memset(cur, 0, sizeof *cur);
        b64len = strlen(f[2]);
        if (b64len == 0 || b64len % 4 != 0 || b64len / 4 * 3 > SEALED_MAX)
            return mr_error_set(err, MR_E_TAMPERED, "erasure ledger %s line %llu: sealed "
                                "entry malformed", path, ln);
        cur->sealed = malloc(b64len / 4 * 3);
        if (cur->sealed == NULL)
            return mr_error_set(err, MR_E_NOMEM, "out of memory");
        l->n++;     /* owned by l from here */
        dlen = EVP_DecodeBlock(cur->sealed, (const unsigned char *)f[2], (int)b64len);
        if (dlen < 0)
            return mr_error_set(err, MR_E_TAMPERED, "erasure ledger %s line %llu: sealed "
                                "entry is not base64", path, ln);
        cur->sealed_len = (size_t)dlen;
        if (b64len >= 1 && f[2][b64len - 1] == '=')
            cur->sealed_len--;
        if (b64len >= 2 && f[2][b64len - 2] == '=')
            cur->sealed_len--;
        rc = chain_next(prev, seq, cur->sealed, cur->sealed_len, chain, err);
        if (rc != 0)
            return rc;
        volume_hex(chain, 32, chain_hex);
        if (strcmp(f[3], chain_hex) != 0)
            return mr_error_set(err, MR_E_TAMPERED, "erasure ledger %s line %llu: chain "
                                "does not match (entry altered, or one before it removed, "
                                "swapped or altered)", path, ln);
        if (strlen(f[4]) != 2 * KEYS_SIG_LEN || volume_unhex(f[4], sig, KEYS_SIG_LEN) != 0)
            return mr_error_set(err, MR_E_TAMPERED, "erasure ledger %s line %llu: signature "
                                "malformed", path, ln);
        signed_text(seq, chain_hex, msg, sizeof msg);
        rc = keys_keyring_verify(kr, f[1], msg, strlen(msg), sig, err);
        if (rc != 0)
            return mr_error_prefix(err, "erasure ledger %s line %llu", path, ln);
        memcpy(cur->chain, chain, 32);
        memcpy(prev, chain, 32);
    }
    return 0;
}

int ledger_open(const char *path, const keys_keyring *keyring, ledger_reader **out, mr_error *err)
{
    ledger_reader *l;
    int rc;

    *out = NULL;
    if (keyring == NULL || keys_keyring_size(keyring) == 0)
        return mr_error_set(err, MR_E_AUTH, "erasure ledger %s: no pinned host key to check "
                            "it against", path);
    l = calloc(1, sizeof *l);
    if (l == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    rc = read_all(path, &l->text, &l->text_len, err);
    if (rc == 0) {
        /* parse cuts its copy into fields; l->text stays as read, for appending */
        char *work = malloc(l->text_len + 1);
        if (work == NULL) {
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        } else {
            memcpy(work, l->text, l->text_len + 1);
            rc = parse(path, work, l->text_len, keyring, l, err);
            free(work);
        }
    }
    if (rc != 0) {
        ledger_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void ledger_anchor_get(const ledger_reader *l, struct ledger_anchor *out)
{
    out->count = l->n;
    if (l->n == 0)
        memset(out->head, '0', 64), out->head[64] = '\0';
    else
        volume_hex(l->lines[l->n - 1].chain, 32, out->head);
}

int ledger_check_anchor(const ledger_reader *l, const struct ledger_anchor *a, mr_error *err)
{
    char hex[LEDGER_HEAD_HEX];

    if (a->count > l->n)
        return mr_error_set(err, MR_E_TAMPERED, "erasure ledger has %zu entries but a signed "
                            "manifest saw %llu (entries removed from the end, or an old "
                            "copy)", l->n, a->count);
    if (a->count == 0)
        snprintf(hex, sizeof hex, "%064d", 0);
    else
        volume_hex(l->lines[a->count - 1].chain, 32, hex);
    if (strcmp(hex, a->head) != 0)
        return mr_error_set(err, MR_E_TAMPERED, "erasure ledger entry %llu does not match "
                            "the head a signed manifest recorded (ledger rewritten)",
                            a->count);
    return 0;
}

void ledger_entries_free(char **entries, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (entries[i] != NULL)
            OPENSSL_cleanse(entries[i], strlen(entries[i]));
        free(entries[i]);
    }
    free(entries);
}

static int unseal(const unsigned char *der, size_t len, EVP_PKEY *key, char **out,
                  mr_error *err)
{
    const unsigned char *p = der;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    BIO *plain = NULL;
    BUF_MEM *mem = NULL;
    int rc = 0;

    *out = NULL;
    if (cms == NULL || p != der + len)
        rc = mr_error_openssl(err, MR_E_TAMPERED, "not CMS");
    else if ((plain = BIO_new(BIO_s_secmem())) == NULL)
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
    else if (CMS_decrypt(cms, key, NULL, NULL, plain, CMS_BINARY) != 1)
        rc = mr_error_openssl(err, MR_E_CRYPTO, "not sealed to this key, or damaged");
    if (rc == 0) {
        BIO_get_mem_ptr(plain, &mem);
        *out = malloc(mem->length + 1);
        if (*out == NULL) {
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        } else {
            memcpy(*out, mem->data, mem->length);
            (*out)[mem->length] = '\0';
            if (strlen(*out) != mem->length || !entry_valid(*out)) {
                free(*out);
                *out = NULL;
                rc = mr_error_set(err, MR_E_TAMPERED, "does not hold a kind:token entry");
            }
        }
    }
    BIO_free(plain);
    CMS_ContentInfo_free(cms);
    return rc;
}

int ledger_entries(const ledger_reader *l, EVP_PKEY *it_key, char ***entries, size_t *n,
                   mr_error *err)
{
    char **v = calloc(l->n ? l->n : 1, sizeof *v);

    *entries = NULL;
    *n = 0;
    if (v == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    for (size_t i = 0; i < l->n; i++) {
        int rc = unseal(l->lines[i].sealed, l->lines[i].sealed_len, it_key, &v[i], err);
        if (rc != 0) {
            ledger_entries_free(v, l->n);
            return mr_error_prefix(err, "erasure ledger entry %zu", i + 1);
        }
    }
    *entries = v;
    *n = l->n;
    return 0;
}

/* ---- host side ---------------------------------------------------------------------- */

static int seal(const char *entry, X509 *cert, unsigned char **der, size_t *len,
                mr_error *err)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    BIO *in = NULL;
    CMS_ContentInfo *cms = NULL;
    unsigned char *p = NULL;
    int n, rc = 0;

    *der = NULL;
    *len = 0;
    if (certs == NULL || !sk_X509_push(certs, cert)
        || (in = BIO_new_mem_buf(entry, (int)strlen(entry))) == NULL) {
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        goto done;
    }
    cms = CMS_encrypt(certs, in, EVP_aes_256_gcm(), CMS_BINARY);
    if (cms == NULL || (n = i2d_CMS_ContentInfo(cms, &p)) <= 0) {
        rc = mr_error_openssl(err, MR_E_CRYPTO, "cannot seal a ledger entry");
        goto done;
    }
    *der = p;
    *len = (size_t)n;
done:
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    sk_X509_free(certs);
    return rc;
}

/* One ledger line for entry seq after prev, appended to *buf (realloc'd). */
static int line_build(const struct ledger_writer *w, const char *entry,
                      unsigned long long seq, const unsigned char prev[32],
                      unsigned char chain[32], char **buf, size_t *len, mr_error *err)
{
    unsigned char *der = NULL, sig[KEYS_SIG_LEN];
    char chain_hex[65], sig_hex[2 * KEYS_SIG_LEN + 1], msg[128], signer[KEYS_ID_LEN + 1];
    char *b64 = NULL, *nb;
    size_t der_len = 0, need;
    int rc = seal(entry, w->it_cert, &der, &der_len, err);

    if (rc == 0)
        rc = chain_next(prev, seq, der, der_len, chain, err);
    if (rc == 0) {
        volume_hex(chain, 32, chain_hex);
        signed_text(seq, chain_hex, msg, sizeof msg);
        rc = keys_sign(w->signer, msg, strlen(msg), sig, err);
    }
    if (rc == 0)
        rc = keys_key_id(w->signer, signer, err);
    if (rc == 0 && (b64 = malloc(4 * ((der_len + 2) / 3) + 1)) == NULL)
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
    if (rc == 0) {
        EVP_EncodeBlock((unsigned char *)b64, der, (int)der_len);
        volume_hex(sig, KEYS_SIG_LEN, sig_hex);
        need = *len + 24 + strlen(signer) + strlen(b64) + 64 + 2 * KEYS_SIG_LEN + 8;
        nb = realloc(*buf, need);
        if (nb == NULL) {
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        } else {
            *buf = nb;
            *len += (size_t)snprintf(nb + *len, need - *len, "%llu %s %s %s %s\n", seq,
                                     signer, b64, chain_hex, sig_hex);
        }
    }
    free(b64);
    OPENSSL_free(der);
    return rc;
}

static bool writer_valid(const struct ledger_writer *w)
{
    return w != NULL && w->path != NULL && w->it_cert != NULL && w->signer != NULL
           && w->keyring != NULL;
}

/* A plaintext ledger: seal every entry into a new ledger, install it, then overwrite the
 * old file's bytes through a descriptor still open on it. */
static int migrate(const struct ledger_writer *w, char *text, size_t len, mr_error *err)
{
    static const char magic_line[] = LEDGER_MAGIC "\n";
    unsigned char prev[32] = { 0 }, chain[32];
    char *out = NULL, *save = NULL, count[24];
    size_t out_len = sizeof magic_line - 1;
    unsigned long long seq = 0;
    int fd, rc = 0;

    out = malloc(out_len + 1);
    if (out == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    memcpy(out, magic_line, out_len);
    for (char *ln = strtok_r(text, "\n", &save); rc == 0 && ln != NULL;
         ln = strtok_r(NULL, "\n", &save)) {
        char *e = ln + strlen(ln);
        while (*ln == ' ' || *ln == '\t')
            ln++;
        while (e > ln && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            *--e = '\0';
        if (*ln == '\0' || *ln == '#')
            continue;
        if (!entry_valid(ln)) {
            rc = mr_error_set(err, MR_E_PARSE, "erasure ledger %s: entry %llu of the "
                              "plaintext ledger is not kind:token", w->path, seq + 1);
            break;
        }
        rc = line_build(w, ln, ++seq, prev, chain, &out, &out_len, err);
        memcpy(prev, chain, 32);
    }
    OPENSSL_cleanse(text, len);
    fd = rc == 0 ? open(w->path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    if (rc == 0 && fd < 0)
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot open erasure ledger %s", w->path);
    if (rc == 0)
        rc = durable_write_file(w->path, out, out_len, 0600, err);
    free(out);
    if (rc == 0) {
        /* The old inode is unlinked now; its bytes are overwritten so that the tokens do
         * not linger in free blocks (as far as the file system honours it). */
        char zeros[4096] = { 0 };
        size_t left = len;
        while (left > 0) {
            size_t k = left < sizeof zeros ? left : sizeof zeros;
            if (write(fd, zeros, k) != (ssize_t)k)
                break;
            left -= k;
        }
        (void)fsync(fd);
    }
    if (fd >= 0)
        close(fd);
    if (rc == 0 && w->audit != NULL) {
        const struct audit_field f[] = { { "entries", count } };
        snprintf(count, sizeof count, "%llu", seq);
        rc = audit_append(w->audit, "erasure.ledger_sealed", f, 1, err);
    }
    return rc;
}

int ledger_prepare(const struct ledger_writer *w, struct ledger_anchor *anchor,
                   mr_error *err)
{
    ledger_reader *l = NULL;
    int rc;

    if (!writer_valid(w))
        return mr_error_set(err, MR_E_INVALID, "erasure ledger: IT certificate, signing key "
                            "and keyring are needed");
    rc = ledger_open(w->path, w->keyring, &l, err);
    if (rc == MR_E_NOTFOUND) {
        static const char magic_line[] = LEDGER_MAGIC "\n";
        rc = durable_write_file(w->path, magic_line, sizeof magic_line - 1, 0600, err);
        if (rc == 0)
            rc = ledger_open(w->path, w->keyring, &l, err);
    } else if (rc == MR_E_UNSUPPORTED) {
        char *text = NULL;
        size_t len = 0;
        rc = read_all(w->path, &text, &len, err);
        if (rc == 0)
            rc = migrate(w, text, len, err);
        free(text);
        if (rc == 0)
            rc = ledger_open(w->path, w->keyring, &l, err);
    }
    if (rc == 0 && anchor != NULL)
        ledger_anchor_get(l, anchor);
    ledger_free(l);
    return rc;
}

int ledger_append(const struct ledger_writer *w, const char *entry,
                  struct ledger_anchor *anchor, mr_error *err)
{
    ledger_reader *l = NULL;
    unsigned char prev[32] = { 0 }, chain[32];
    char *buf = NULL, seq_s[24];
    size_t len;
    int rc;

    if (entry == NULL || !entry_valid(entry))
        return mr_error_set(err, MR_E_INVALID, "ledger entry is not kind:token");
    rc = ledger_prepare(w, NULL, err);
    if (rc == 0)
        rc = ledger_open(w->path, w->keyring, &l, err);
    if (rc != 0)
        return rc;
    if (l->n > 0)
        memcpy(prev, l->lines[l->n - 1].chain, 32);
    len = l->text_len;
    buf = malloc(len + 1);
    if (buf == NULL) {
        ledger_free(l);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    memcpy(buf, l->text, len);
    rc = line_build(w, entry, l->n + 1, prev, chain, &buf, &len, err);
    if (rc == 0)
        rc = durable_write_file(w->path, buf, len, 0600, err);
    if (rc == 0) {
        struct ledger_anchor a = { .count = l->n + 1 };
        volume_hex(chain, 32, a.head);
        snprintf(seq_s, sizeof seq_s, "%llu", a.count);
        if (anchor != NULL)
            *anchor = a;
        if (w->audit != NULL) {
            /* Which kind only: the token would let the host's pseudonym key be brute-forced
             * back to the identifier. */
            char kind[32];
            const char *colon = strchr(entry, ':');
            snprintf(kind, sizeof kind, "%.*s", (int)(colon - entry), entry);
            const struct audit_field f[] = { { "kind", kind }, { "entry", seq_s },
                                             { "ledger_head", a.head } };
            rc = audit_append(w->audit, "erasure.record", f, 3, err);
        }
    }
    free(buf);
    ledger_free(l);
    return rc;
}
