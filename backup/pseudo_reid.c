/* pseudo_reid.c — the re-identification data: a versioned, self-delimiting, checksummed
 * list of edits against the pseudonymised bytes.  Format version 1 (all integers
 * big-endian):
 *
 *   off  size  field
 *   0    4     magic "MRPR"
 *   4    1     version (1)
 *   5    3     reserved, zero
 *   8    8     total length of this record in bytes (including the trailer)
 *   16   32    SHA-256 of the pseudonymised bytes (a wrong pairing is detected)
 *   48   32    SHA-256 of the original bytes (the restore is verified end to end)
 *   80   8     length of the original
 *   88   8     length of the pseudonymised bytes
 *   96   4     number of edits N
 *   100  ...   N edits: u64 offset in pseudonymised bytes, u64 length there,
 *              u64 original length, original bytes; offsets strictly ascending and
 *              non-overlapping
 *   end-32 32  SHA-256 of everything before it (integrity of the record itself)
 *
 * Restoring = copying the pseudonymised bytes and putting each edit's original bytes in
 * place of its span; no search for tokens, so any text the message holds (including
 * text shaped like a token) comes back unchanged. */
#include "backup/pseudo_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define REID_MAGIC "MRPR"
#define REID_VERSION 1
#define REID_HEADER 100
#define REID_EDIT_HEADER 24

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xFF);
        v >>= 8;
    }
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xFF);
        v >>= 8;
    }
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The three digests of one record share one fetched SHA-256 and one context: fetching
 * the algorithm and allocating a context per digest costs as much as hashing a small
 * message. */
struct hasher {
    EVP_MD *md;
    EVP_MD_CTX *ctx;
};

static int hasher_init(struct hasher *h, mr_error *err)
{
    h->md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    h->ctx = EVP_MD_CTX_new();
    if (h->md == NULL || h->ctx == NULL) {
        EVP_MD_free(h->md);
        EVP_MD_CTX_free(h->ctx);
        h->md = NULL;
        h->ctx = NULL;
        return mr_error_openssl(err, MR_E_CRYPTO, "SHA-256 unavailable");
    }
    return 0;
}

static void hasher_free(struct hasher *h)
{
    EVP_MD_free(h->md);
    EVP_MD_CTX_free(h->ctx);
}

static int hash(struct hasher *h, const unsigned char *p, size_t len, unsigned char out[32],
                mr_error *err)
{
    unsigned int n = 0;

    if (EVP_DigestInit_ex(h->ctx, h->md, NULL) != 1 || EVP_DigestUpdate(h->ctx, p, len) != 1 ||
        EVP_DigestFinal_ex(h->ctx, out, &n) != 1 || n != 32)
        return mr_error_openssl(err, MR_E_CRYPTO, "SHA-256 failed");
    return 0;
}

static int sha256(const unsigned char *p, size_t len, unsigned char out[32], mr_error *err)
{
    unsigned int n = 0;

    if (EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return mr_error_openssl(err, MR_E_CRYPTO, "SHA-256 failed");
    return 0;
}

int preid_write(const unsigned char *orig, size_t orig_len, const unsigned char *pseudo,
                size_t pseudo_len, const struct pedit *edits, size_t n_edits, pbuf *out,
                mr_error *err)
{
    size_t total = REID_HEADER + 32, start = out->len;
    unsigned char hdr[REID_HEADER], eh[REID_EDIT_HEADER];
    struct hasher h;
    int rc;

    if (n_edits > UINT32_MAX)
        return mr_error_set(err, MR_E_LIMIT, "too many re-identification edits");
    for (size_t i = 0; i < n_edits; i++)
        total += REID_EDIT_HEADER + edits[i].orig_len;
    rc = pbuf_reserve(out, total, err);
    if (rc != 0)
        return rc;
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, REID_MAGIC, 4);
    hdr[4] = REID_VERSION;
    put64(hdr + 8, total);
    rc = hasher_init(&h, err);
    if (rc != 0)
        return rc;
    rc = hash(&h, pseudo, pseudo_len, hdr + 16, err);
    if (rc == 0)
        rc = hash(&h, orig, orig_len, hdr + 48, err);
    if (rc != 0) {
        hasher_free(&h);
        return rc;
    }
    put64(hdr + 80, orig_len);
    put64(hdr + 88, pseudo_len);
    put32(hdr + 96, (uint32_t)n_edits);
    /* Space is reserved above, so the copies below cannot fail. */
    memcpy(out->p + out->len, hdr, sizeof hdr);
    out->len += sizeof hdr;
    for (size_t i = 0; i < n_edits; i++) {
        put64(eh, edits[i].out_off);
        put64(eh + 8, edits[i].out_len);
        put64(eh + 16, edits[i].orig_len);
        memcpy(out->p + out->len, eh, sizeof eh);
        out->len += sizeof eh;
        if (edits[i].orig_len > 0)
            memcpy(out->p + out->len, orig + edits[i].orig_off, edits[i].orig_len);
        out->len += edits[i].orig_len;
    }
    rc = hash(&h, out->p + start, out->len - start, out->p + out->len, err);
    hasher_free(&h);
    if (rc != 0)
        return rc;
    out->len += 32;
    return 0;
}

int pseudo_restore(const unsigned char *pseudo, size_t pseudo_len, const unsigned char *reid,
                   size_t reid_len, unsigned char **out, size_t *out_len, mr_error *err)
{
    unsigned char digest[32];
    struct pedit *edits = NULL;
    uint64_t total, olen, plen;
    uint32_t n;
    size_t pos = REID_HEADER, prev_end = 0;
    pbuf res = {0};
    int rc;

    if (out == NULL || out_len == NULL || (pseudo == NULL && pseudo_len > 0) ||
        (reid == NULL && reid_len > 0))
        return mr_error_set(err, MR_E_INVALID, "pseudo_restore: bad argument");
    *out = NULL;
    *out_len = 0;
    if (reid_len < REID_HEADER + 32 || memcmp(reid, REID_MAGIC, 4) != 0)
        return mr_error_set(err, MR_E_PARSE, "not re-identification data");
    if (reid[4] != REID_VERSION)
        return mr_error_set(err, MR_E_UNSUPPORTED,
                            "re-identification data version %u is not supported", reid[4]);
    total = get64(reid + 8);
    if (total != reid_len)
        return mr_error_set(err, MR_E_PARSE, "re-identification data is %zu bytes, says %llu",
                            reid_len, (unsigned long long)total);
    rc = sha256(reid, reid_len - 32, digest, err);
    if (rc != 0)
        return rc;
    if (memcmp(digest, reid + reid_len - 32, 32) != 0)
        return mr_error_set(err, MR_E_TAMPERED, "re-identification data checksum mismatch");
    plen = get64(reid + 88);
    rc = sha256(pseudo, pseudo_len, digest, err);
    if (rc != 0)
        return rc;
    if (plen != pseudo_len || memcmp(digest, reid + 16, 32) != 0)
        return mr_error_set(err, MR_E_TAMPERED,
                            "re-identification data belongs to other pseudonymised bytes");
    olen = get64(reid + 80);
    n = get32(reid + 96);
    if (n > (reid_len - REID_HEADER - 32) / REID_EDIT_HEADER)
        return mr_error_set(err, MR_E_PARSE, "re-identification data edit count too large");
    edits = calloc(n ? n : 1, sizeof *edits);
    if (edits == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory restoring a message");
    for (uint32_t i = 0; i < n; i++) {
        uint64_t off, len, ol;
        if (reid_len - 32 - pos < REID_EDIT_HEADER) {
            rc = mr_error_set(err, MR_E_PARSE, "re-identification data truncated");
            goto done;
        }
        off = get64(reid + pos);
        len = get64(reid + pos + 8);
        ol = get64(reid + pos + 16);
        pos += REID_EDIT_HEADER;
        if (off < prev_end || off > pseudo_len || len > pseudo_len - off ||
            ol > reid_len - 32 - pos) {
            rc = mr_error_set(err, MR_E_PARSE, "re-identification edit %u out of range", i);
            goto done;
        }
        /* Original bytes are referenced in place: orig_off is relative to reid. */
        edits[i] = (struct pedit){.out_off = off, .out_len = len, .orig_off = pos,
                                  .orig_len = ol};
        pos += ol;
        prev_end = off + len;
    }
    if (pos != reid_len - 32) {
        rc = mr_error_set(err, MR_E_PARSE, "re-identification data has trailing bytes");
        goto done;
    }
    rc = pbuf_reserve(&res, olen < reid_len + pseudo_len ? olen : 0, err);
    if (rc == 0)
        rc = pedits_apply(pseudo, pseudo_len, edits, n, reid, &res, err);
    if (rc != 0)
        goto done;
    if (res.len != olen) {
        rc = mr_error_set(err, MR_E_TAMPERED, "restored message has the wrong length");
        goto done;
    }
    rc = sha256(res.p, res.len, digest, err);
    if (rc == 0 && memcmp(digest, reid + 48, 32) != 0)
        rc = mr_error_set(err, MR_E_TAMPERED, "restored message does not match its checksum");
    if (rc != 0)
        goto done;
    if (res.p == NULL) {
        res.p = malloc(1);
        if (res.p == NULL) {
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory restoring a message");
            goto done;
        }
    }
    *out = res.p;
    *out_len = res.len;
    res.p = NULL;
done:
    free(edits);
    pbuf_free(&res);
    return rc;
}
