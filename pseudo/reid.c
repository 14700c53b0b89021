/* reid.c — the re-identification data: a versioned, self-delimiting list of edits
 * against the pseudonymised bytes.  All integers big-endian.
 *
 * Format version 2 (written):
 *
 *   off  size  field
 *   0    4     magic "MRPR"
 *   4    1     version (2)
 *   5    3     reserved, zero
 *   8    8     total length of this record in bytes
 *   16   32    SHA-256 of the original bytes (the restore is verified end to end)
 *   48   8     length of the original
 *   56   8     length of the pseudonymised bytes
 *   64   4     number of edits N
 *   68   ...   N edits: u64 offset in pseudonymised bytes, u64 length there,
 *              u64 original length, original bytes; offsets ascending and
 *              non-overlapping
 *
 * Format version 1 (read forever: archives are kept five years) has the same fields with
 * two more digests: SHA-256 of the pseudonymised bytes at 16, the original's at 48,
 * lengths at 80 and 88, N at 96, edits from 100, and a trailer of 32 bytes, the SHA-256
 * of everything before it.  Version 2 drops both extra digests: restoring applies the
 * edits and compares the SHA-256 of the result with the original's, which catches a
 * wrong pairing and a corrupted record as surely (anything that changes a restored byte
 * changes that digest; lengths and framing that do not add up are refused before), and
 * the record is stored inside an AES-GCM-authenticated volume anyway; hashing the output
 * and the record would be two more passes over every message.  What version 2 does not
 * notice is a change of the pseudonymised bytes inside a replaced span: those
 * bytes are dropped by the restore, which still gives back exactly the original.
 *
 * Restoring = copying the pseudonymised bytes and putting each edit's original bytes in
 * place of its span; no search for tokens, so any text the message holds (including
 * text shaped like a token) comes back unchanged. */
#include "pseudo/reid.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define REID_MAGIC "MRPR"
#define REID_VERSION 2
#define REID_V2_HEADER 68
#define REID_V1_HEADER 100
#define REID_V1_TRAILER 32
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

int preid_write(psha *sha, const unsigned char *orig, size_t orig_len, size_t pseudo_len,
                const struct pedit *edits, size_t n_edits, pbuf *out,
                unsigned char orig_sha256[32], mr_error *err)
{
    size_t total = REID_V2_HEADER;
    unsigned char hdr[REID_V2_HEADER], eh[REID_EDIT_HEADER];
    int rc;

    if (n_edits > UINT32_MAX)
        return mr_error_set(err, MR_E_LIMIT, "too many re-identification edits");
    for (size_t i = 0; i < n_edits; i++)
        total += REID_EDIT_HEADER + edits[i].orig_len;
    rc = pbuf_reserve(out, total, err);
    if (rc == 0)
        rc = psha_digest(sha, orig, orig_len, orig_sha256, err);
    if (rc != 0)
        return rc;
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, REID_MAGIC, 4);
    hdr[4] = REID_VERSION;
    put64(hdr + 8, total);
    memcpy(hdr + 16, orig_sha256, 32);
    put64(hdr + 48, orig_len);
    put64(hdr + 56, pseudo_len);
    put32(hdr + 64, (uint32_t)n_edits);
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
    return 0;
}

/* What the versions have in common, once a header is checked. */
struct reid_frame {
    uint64_t olen;                  /* original length */
    const unsigned char *orig_sha;  /* its SHA-256 */
    uint32_t n;                     /* edits */
    size_t pos, end;                /* the edits lie in reid[pos, end) */
};

/* Version 1: the record's own checksum and the pseudonymised bytes' digest are checked
 * too, as that version defines them. */
static int frame_v1(psha *sha, const unsigned char *pseudo, size_t pseudo_len,
                    const unsigned char *reid, size_t reid_len, struct reid_frame *f,
                    mr_error *err)
{
    unsigned char digest[32];
    int rc;

    if (reid_len < REID_V1_HEADER + REID_V1_TRAILER)
        return mr_error_set(err, MR_E_PARSE, "re-identification data truncated");
    rc = psha_digest(sha, reid, reid_len - REID_V1_TRAILER, digest, err);
    if (rc != 0)
        return rc;
    if (memcmp(digest, reid + reid_len - REID_V1_TRAILER, 32) != 0)
        return mr_error_set(err, MR_E_TAMPERED, "re-identification data checksum mismatch");
    rc = psha_digest(sha, pseudo, pseudo_len, digest, err);
    if (rc != 0)
        return rc;
    if (get64(reid + 88) != pseudo_len || memcmp(digest, reid + 16, 32) != 0)
        return mr_error_set(err, MR_E_TAMPERED,
                            "re-identification data belongs to other pseudonymised bytes");
    f->orig_sha = reid + 48;
    f->olen = get64(reid + 80);
    f->n = get32(reid + 96);
    f->pos = REID_V1_HEADER;
    f->end = reid_len - REID_V1_TRAILER;
    return 0;
}

static int frame_v2(size_t pseudo_len, const unsigned char *reid, size_t reid_len,
                    struct reid_frame *f, mr_error *err)
{
    if (reid_len < REID_V2_HEADER)
        return mr_error_set(err, MR_E_PARSE, "re-identification data truncated");
    /* Reserved bytes must be zero: nothing in the record goes unchecked. */
    if (reid[5] != 0 || reid[6] != 0 || reid[7] != 0)
        return mr_error_set(err, MR_E_PARSE, "re-identification data has reserved bits set");
    if (get64(reid + 56) != pseudo_len)
        return mr_error_set(err, MR_E_TAMPERED,
                            "re-identification data belongs to other pseudonymised bytes "
                            "(%zu bytes, it says %llu)",
                            pseudo_len, (unsigned long long)get64(reid + 56));
    f->orig_sha = reid + 16;
    f->olen = get64(reid + 48);
    f->n = get32(reid + 64);
    f->pos = REID_V2_HEADER;
    f->end = reid_len;
    return 0;
}

int pseudo_restore_digest(const unsigned char *pseudo, size_t pseudo_len,
                          const unsigned char *reid, size_t reid_len, unsigned char **out,
                          size_t *out_len, unsigned char sha256[32], mr_error *err)
{
    unsigned char digest[32];
    struct pedit *edits = NULL;
    struct reid_frame f = {0};
    psha sha = {0};
    uint64_t total;
    size_t pos, prev_end = 0;
    pbuf res = {0};
    int rc;

    if (out == NULL || out_len == NULL || (pseudo == NULL && pseudo_len > 0) ||
        (reid == NULL && reid_len > 0))
        return mr_error_set(err, MR_E_INVALID, "pseudo_restore: bad argument");
    *out = NULL;
    *out_len = 0;
    if (reid_len < 16 || memcmp(reid, REID_MAGIC, 4) != 0)
        return mr_error_set(err, MR_E_PARSE, "not re-identification data");
    if (reid[4] != 1 && reid[4] != 2)
        return mr_error_set(err, MR_E_UNSUPPORTED,
                            "re-identification data version %u is not supported", reid[4]);
    total = get64(reid + 8);
    if (total != reid_len)
        return mr_error_set(err, MR_E_PARSE, "re-identification data is %zu bytes, says %llu",
                            reid_len, (unsigned long long)total);
    rc = reid[4] == 1 ? frame_v1(&sha, pseudo, pseudo_len, reid, reid_len, &f, err)
                      : frame_v2(pseudo_len, reid, reid_len, &f, err);
    if (rc != 0)
        goto done;
    if (f.n > (f.end - f.pos) / REID_EDIT_HEADER) {
        rc = mr_error_set(err, MR_E_PARSE, "re-identification data edit count too large");
        goto done;
    }
    edits = calloc(f.n ? f.n : 1, sizeof *edits);
    if (edits == NULL) {
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory restoring a message");
        goto done;
    }
    pos = f.pos;
    for (uint32_t i = 0; i < f.n; i++) {
        uint64_t off, len, ol;
        if (f.end - pos < REID_EDIT_HEADER) {
            rc = mr_error_set(err, MR_E_PARSE, "re-identification data truncated");
            goto done;
        }
        off = get64(reid + pos);
        len = get64(reid + pos + 8);
        ol = get64(reid + pos + 16);
        pos += REID_EDIT_HEADER;
        if (off < prev_end || off > pseudo_len || len > pseudo_len - off || ol > f.end - pos) {
            rc = mr_error_set(err, MR_E_PARSE, "re-identification edit %u out of range", i);
            goto done;
        }
        /* Original bytes are referenced in place: orig_off is relative to reid. */
        edits[i] = (struct pedit){.out_off = off, .out_len = len, .orig_off = pos,
                                  .orig_len = ol};
        pos += ol;
        prev_end = off + len;
    }
    if (pos != f.end) {
        rc = mr_error_set(err, MR_E_PARSE, "re-identification data has trailing bytes");
        goto done;
    }
    rc = pbuf_reserve(&res, f.olen < reid_len + pseudo_len ? f.olen : 0, err);
    if (rc == 0)
        rc = pedits_apply(pseudo, pseudo_len, edits, f.n, reid, &res, err);
    if (rc != 0)
        goto done;
    if (res.len != f.olen) {
        rc = mr_error_set(err, MR_E_TAMPERED, "restored message has the wrong length");
        goto done;
    }
    rc = psha_digest(&sha, res.p, res.len, digest, err);
    if (rc == 0 && memcmp(digest, f.orig_sha, 32) != 0)
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
    if (sha256 != NULL)
        memcpy(sha256, digest, 32);
done:
    psha_free(&sha);
    free(edits);
    pbuf_free(&res);
    return rc;
}

int pseudo_restore(const unsigned char *pseudo, size_t pseudo_len, const unsigned char *reid,
                   size_t reid_len, unsigned char **out, size_t *out_len, mr_error *err)
{
    return pseudo_restore_digest(pseudo, pseudo_len, reid, reid_len, out, out_len, NULL, err);
}
