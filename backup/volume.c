/* volume.c — see volume.h. */
#include "backup/volume.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <libdeflate.h>

#include "backup/buf.h"
#include "common/durable.h"

#define CHUNK (256 * 1024)

/* A reader keeps its buffers between volumes (an archive worker opens two per volume it
 * verifies): fresh multi-megabyte allocations per volume cost page faults and leave each
 * thread's malloc arena holding its own peak. */
struct volume_reader {
    struct mr_buf cipher;           /* the file as read */
    BUF_MEM *gz;                    /* the decrypted gzip bytes */
    size_t gz_off;                  /* start of the next member in gz */
    struct libdeflate_decompressor *decomp;
    struct mr_buf plain;            /* the current member's plaintext */
    size_t pos;                     /* read position in plain */
    size_t plain_total;             /* plaintext produced so far (all members) */
    size_t plain_cap;               /* the most this volume may decompress to */
    bool open;
    const char *name;
    char path[PATH_MAX];
    unsigned long long file_size;   /* the encrypted file as read */
    char file_sha256[VOLUME_SHA256_HEX];
};

void volume_hex(const unsigned char *bin, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bin[i] >> 4];
        out[2 * i + 1] = digits[bin[i] & 15];
    }
    out[2 * len] = '\0';
}

int volume_unhex(const char *hex, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = hex[2 * i + k];    /* a NUL is not a digit: a short text stops here */
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= (unsigned)(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= (unsigned)(c - 'a' + 10);
            else
                return -1;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');

    return s != NULL ? s + 1 : path;
}

/* Plaintext per gzip member.  libdeflate compresses a whole buffer at a time (it has no
 * streaming interface), so the volume is written as a series of gzip members, which gzip,
 * libdeflate and `tar xz` read as one stream (RFC 1952 section 2.2).  1 MiB keeps the
 * output buffer small and costs well under 0.1 % in ratio (only the first 32 KiB of each
 * member has no history to match against). */
#define GZIP_MEMBER ((size_t)1 << 20)

/* Compress everything into the CMS stream BIO, member by member.  libdeflate rather than
 * zlib: about three times faster at the same level on mail, with slightly smaller output
 * (measured in docs/BENCHMARKS.md); the format is plain gzip either way.  Its gzip header
 * has mtime 0, so the output is deterministic. */
static int gzip_into(BIO *sink, const unsigned char *plain, size_t len, int level,
                     const char *path, mr_error *err)
{
    struct libdeflate_compressor *c;
    unsigned char *out = NULL;
    size_t cap;
    int rc = 0;

    if (level < 0)
        level = VOLUME_DEFAULT_LEVEL;
    if (level > 9)
        return mr_error_set(err, MR_E_INVALID, "bad compression level %d", level);
    c = libdeflate_alloc_compressor(level);
    if (c == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory for the compressor");
    cap = libdeflate_gzip_compress_bound(c, GZIP_MEMBER);
    out = malloc(cap);
    if (out == NULL) {
        libdeflate_free_compressor(c);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    /* At least one member, so that an empty plaintext is still a valid gzip file. */
    do {
        size_t take = len < GZIP_MEMBER ? len : GZIP_MEMBER;
        size_t n = libdeflate_gzip_compress(c, plain, take, out, cap);
        if (n == 0) {   /* cannot happen with a buffer of the bound's size */
            rc = mr_error_set(err, MR_E_INTERNAL, "compression of %s failed", base_name(path));
            break;
        }
        if (BIO_write(sink, out, (int)n) != (int)n) {
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot write %s", path);
            break;
        }
        plain += take;
        len -= take;
    } while (len > 0);
    libdeflate_free_compressor(c);
    free(out);
    return rc;
}

int volume_write(const char *path, const unsigned char *plain, size_t len, int level,
                 X509 *cert, mr_error *err)
{
    STACK_OF(X509) *certs = NULL;
    CMS_ContentInfo *cms = NULL;
    durable_file *df = NULL;
    BIO *fdbio = NULL, *stream = NULL;
    struct stat st;
    int rc;

    if (lstat(path, &st) == 0)
        return mr_error_set(err, MR_E_EXISTS, "refusing to overwrite %s", path);
    rc = durable_open(&df, path, 0600, err);
    if (rc != 0)
        return rc;
    certs = sk_X509_new_null();
    if (certs == NULL || !sk_X509_push(certs, cert)) {
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        goto fail;
    }
    fdbio = BIO_new_fd(durable_fd(df), BIO_NOCLOSE);
    /* CMS_encrypt picks AuthEnvelopedData for an AEAD cipher; CMS_STREAM makes it write
     * indefinite-length BER as the data flows, so the ciphertext is never held whole. */
    cms = CMS_encrypt(certs, NULL, EVP_aes_256_gcm(), CMS_BINARY | CMS_STREAM);
    if (fdbio == NULL || cms == NULL) {
        rc = mr_error_openssl(err, MR_E_CRYPTO, "cannot start encrypting %s", base_name(path));
        goto fail;
    }
    stream = BIO_new_CMS(fdbio, cms);
    if (stream == NULL) {
        rc = mr_error_openssl(err, MR_E_CRYPTO, "cannot start encrypting %s", base_name(path));
        goto fail;
    }
    rc = gzip_into(stream, plain, len, level, path, err);
    if (rc == 0 && BIO_flush(stream) <= 0)
        rc = mr_error_openssl(err, MR_E_IO, "cannot finish %s", path);
    /* Pop and free the filter chain down to (not including) the fd BIO. */
    while (stream != NULL && stream != fdbio) {
        BIO *next = BIO_pop(stream);
        BIO_free(stream);
        stream = next;
    }
    stream = NULL;
    if (rc != 0)
        goto fail;
    CMS_ContentInfo_free(cms);
    BIO_free(fdbio);
    sk_X509_free(certs);
    return durable_commit(df, err);
fail:
    CMS_ContentInfo_free(cms);
    BIO_free(fdbio);
    sk_X509_free(certs);
    durable_abort(df);
    return rc;
}

/* The whole file into out, replacing what it held (a volume is bounded, see archive.h).
 * Pages the file brought into the cache are dropped first: a read-back should see the
 * disk, not our own write buffers. */
static int read_whole(const char *path, struct mr_buf *out, mr_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int rc = 0;

    out->len = 0;           /* ciphertext: nothing to wipe */
    if (fd < 0)
        return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_IO, errno,
                              "cannot open %s", base_name(path));
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    /* Room for the whole file at once (plus one byte to see EOF without growing). */
    if (fstat(fd, &st) == 0 && st.st_size > 0 && (unsigned long long)st.st_size < SIZE_MAX) {
        if (out->cap < (size_t)st.st_size + 1)
            out->cap_hint = (size_t)st.st_size + 1;     /* exactly, not the next power of 2 */
        rc = buf_reserve(out, (size_t)st.st_size + 1, err);
    }
    while (rc == 0) {
        if (out->len == out->cap && (rc = buf_reserve(out, CHUNK, err)) != 0)
            break;
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot read %s", base_name(path));
            break;
        }
        if (n == 0)
            break;
        out->len += (size_t)n;
    }
    close(fd);
    return rc;
}

int volume_file_hash(const char *path, unsigned long long *size,
                     char sha256_hex[VOLUME_SHA256_HEX], mr_error *err)
{
    struct mr_buf b = { 0 };
    unsigned char md[32];
    int rc = read_whole(path, &b, err);

    if (rc == 0) {
        SHA256(b.data, b.len, md);
        volume_hex(md, sizeof md, sha256_hex);
        *size = b.len;
    }
    free(b.data);       /* ciphertext: no need to wipe */
    return rc;
}

/* The next gzip member of the decrypted bytes into r->plain (replacing what it held).
 * libdeflate wants the output room up front: our members hold at most GZIP_MEMBER bytes,
 * so that is the first try; a larger member (another writer, or zlib's single member)
 * doubles the room until it fits or passes the bound.  A damaged stream is MR_E_TAMPERED
 * naming the file. */
static int bomb(const volume_reader *r, mr_error *err)
{
    return mr_error_set(err, MR_E_LIMIT, "%s decompresses to more than %zu MiB (%zu times its "
                        "size): refused as a decompression bomb", r->name, r->plain_cap >> 20,
                        r->file_size > 0 ? (size_t)(r->plain_cap / r->file_size) : 0);
}

size_t volume_plain_cap(unsigned long long file_size)
{
    unsigned long long cap = file_size * VOLUME_PLAIN_RATIO;

    if (file_size > VOLUME_PLAIN_MAX / VOLUME_PLAIN_RATIO || cap > VOLUME_PLAIN_MAX)
        return VOLUME_PLAIN_MAX;
    return cap < VOLUME_PLAIN_FLOOR ? VOLUME_PLAIN_FLOOR : (size_t)cap;
}

static int next_member(volume_reader *r, mr_error *err)
{
    size_t room = r->plain.cap > GZIP_MEMBER ? r->plain.cap : GZIP_MEMBER;
    size_t left = r->plain_cap - r->plain_total;

    buf_wipe_reset(&r->plain);
    r->pos = 0;
    if (left == 0)
        return bomb(r, err);
    /* The member's output may not pass what is left of the volume's budget: room one
     * byte over it tells "fits exactly" from "too much". */
    if (room > left)
        room = left + 1;
    for (;;) {
        size_t used = 0, got = 0;
        enum libdeflate_result res;
        int rc = buf_reserve(&r->plain, room, err);

        if (rc != 0)
            return rc;
        res = libdeflate_gzip_decompress_ex(r->decomp, (unsigned char *)r->gz->data + r->gz_off,
                                            r->gz->length - r->gz_off, r->plain.data,
                                            r->plain.cap, &used, &got);
        if (res == LIBDEFLATE_SUCCESS && got > left)
            return bomb(r, err);
        if (res == LIBDEFLATE_SUCCESS) {
            r->gz_off += used;
            r->plain.len = got;
            r->plain_total += got;
            return 0;
        }
        if (res != LIBDEFLATE_INSUFFICIENT_SPACE)
            return mr_error_set(err, MR_E_TAMPERED, "%s: compressed data is corrupt", r->name);
        if (room > left)
            return bomb(r, err);
        room = room > left / 2 ? left + 1 : room * 2;
    }
}

/* Parse and decrypt the file in r->cipher into r->gz. */
static int decrypt_volume(volume_reader *r, EVP_PKEY *pkey, mr_error *err)
{
    const unsigned char *p = r->cipher.data;
    CMS_ContentInfo *cms;
    BIO *out = NULL;
    int rc = 0;

    if (r->cipher.len > LONG_MAX)
        return mr_error_set(err, MR_E_LIMIT, "%s is too large", r->name);
    /* Parsed straight from the buffer: d2i_CMS_bio would copy the file into a growing
     * buffer first (and wipe every old copy as it grows). */
    cms = d2i_CMS_ContentInfo(NULL, &p, (long)r->cipher.len);
    if (cms == NULL)
        return mr_error_openssl(err, MR_E_TAMPERED, "%s is damaged (not a CMS structure)",
                                r->name);
    /* The gzip bytes stay in memory (never on disk: the reid volumes hold originals) and
     * are used only once CMS_decrypt has checked the GCM tag.  The buffer is kept between
     * volumes and grown only while no BIO refers to it; CMS_decrypt's memory BIO writes
     * into it (BIO_NOCLOSE: it stays ours). */
    r->gz->length = 0;
    r->gz_off = 0;
    out = BIO_new(BIO_s_mem());
    if (out == NULL)
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
    else
        BIO_set_mem_buf(out, r->gz, BIO_NOCLOSE);
    /* Two steps, to tell "not our key" apart from "our key, but the data was altered":
     * unwrapping the content key (AES key wrap under the ECDH-derived key) fails for a
     * wrong key; the GCM tag then fails only for altered content. */
    if (rc == 0 && CMS_decrypt_set1_pkey(cms, pkey, NULL) != 1)
        rc = mr_error_openssl(err, MR_E_CRYPTO, "%s: cannot decrypt with this key", r->name);
    else if (rc == 0 && CMS_decrypt(cms, NULL, NULL, NULL, out, CMS_BINARY) != 1)
        rc = mr_error_openssl(err, MR_E_TAMPERED,
                              "%s: decryption failed (authentication tag or structure does "
                              "not check)", r->name);
    BIO_free(out);
    CMS_ContentInfo_free(cms);
    return rc;
}

volume_reader *volume_reader_new(void)
{
    volume_reader *r = calloc(1, sizeof *r);

    if (r == NULL)
        return NULL;
    r->decomp = libdeflate_alloc_decompressor();
    r->gz = BUF_MEM_new();
    if (r->decomp == NULL || r->gz == NULL) {
        volume_reader_free(r);
        return NULL;
    }
    return r;
}

/* Drop the last volume's plaintext (wiped: a reid volume holds originals), keep the
 * allocations. */
static void reader_reset(volume_reader *r)
{
    buf_wipe_reset(&r->plain);
    if (r->gz->length > 0)
        OPENSSL_cleanse(r->gz->data, r->gz->length);
    r->gz->length = 0;
    r->gz_off = 0;
    r->pos = 0;
    r->plain_total = 0;
    r->open = false;
}

int volume_reader_open(volume_reader *r, const char *path, EVP_PKEY *pkey,
                       const char *expect_sha256, mr_error *err)
{
    unsigned char md[32];
    int rc;

    reader_reset(r);
    snprintf(r->path, sizeof r->path, "%s", path);
    r->name = base_name(r->path);
    rc = read_whole(path, &r->cipher, err);
    if (rc == 0) {
        SHA256(r->cipher.data, r->cipher.len, md);
        volume_hex(md, sizeof md, r->file_sha256);
        r->file_size = r->cipher.len;
        r->plain_cap = volume_plain_cap(r->file_size);
        if (expect_sha256 != NULL && strcmp(r->file_sha256, expect_sha256) != 0)
            rc = mr_error_set(err, MR_E_TAMPERED, "%s: SHA-256 differs from the manifest",
                              r->name);
    }
    if (rc == 0 && r->gz->max < r->cipher.len + 1 && BUF_MEM_grow(r->gz, r->cipher.len + 1) == 0)
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory for a decrypted volume");
    if (rc == 0)
        rc = decrypt_volume(r, pkey, err);
    if (rc == 0 && r->gz->length == 0)
        rc = mr_error_set(err, MR_E_TAMPERED, "%s: compressed data is empty", r->name);
    ERR_clear_error();
    if (rc != 0) {
        reader_reset(r);
        return rc;
    }
    r->open = true;
    return 0;
}

void volume_reader_free(volume_reader *r)
{
    if (r == NULL)
        return;
    if (r->gz != NULL)
        reader_reset(r);
    buf_free(&r->plain);
    free(r->cipher.data);       /* ciphertext: no need to wipe */
    BUF_MEM_free(r->gz);        /* wipes */
    libdeflate_free_decompressor(r->decomp);
    free(r);
}

int volume_open(const char *path, EVP_PKEY *pkey, const char *expect_sha256,
                volume_reader **out, mr_error *err)
{
    volume_reader *r = volume_reader_new();
    int rc;

    *out = NULL;
    if (r == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory for a volume reader");
    rc = volume_reader_open(r, path, pkey, expect_sha256, err);
    if (rc != 0) {
        volume_reader_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void volume_reader_file(const volume_reader *r, unsigned long long *size,
                        char sha256_hex[VOLUME_SHA256_HEX])
{
    *size = r->file_size;
    memcpy(sha256_hex, r->file_sha256, VOLUME_SHA256_HEX);
}

/* Decompression runs one member ahead of the caller, so only one member's plaintext is
 * held at a time. */
int volume_read(void *ctx, void *buf, size_t n, mr_error *err)
{
    volume_reader *r = ctx;
    unsigned char *p = buf;

    if (!r->open)
        return mr_error_set(err, MR_E_STATE, "volume reader is not open");
    while (n > 0) {
        size_t take = r->plain.len - r->pos;
        if (take == 0) {
            int rc;
            if (r->gz_off == r->gz->length)
                return mr_error_set(err, MR_E_TAMPERED, "%s: compressed data ends early",
                                    r->name);
            rc = next_member(r, err);
            if (rc != 0)
                return rc;
            continue;
        }
        if (take > n)
            take = n;
        memcpy(p, r->plain.data + r->pos, take);
        r->pos += take;
        p += take;
        n -= take;
    }
    return 0;
}

int volume_check_end(volume_reader *r, mr_error *err)
{
    if (!r->open)
        return mr_error_set(err, MR_E_STATE, "volume reader is not open");
    /* Whatever members remain must hold nothing (gzip allows empty members). */
    while (r->pos == r->plain.len && r->gz_off < r->gz->length) {
        int rc = next_member(r, err);
        if (rc != 0)
            return rc;
    }
    if (r->pos != r->plain.len)
        return mr_error_set(err, MR_E_TAMPERED, "%s: unexpected data after the archive",
                            r->name);
    return 0;
}

int volume_rewind(volume_reader *r, mr_error *err)
{
    if (!r->open)
        return mr_error_set(err, MR_E_STATE, "volume reader is not open");
    buf_wipe_reset(&r->plain);
    r->gz_off = 0;
    r->pos = 0;
    r->plain_total = 0;
    return 0;
}

void volume_reader_close(volume_reader *r)
{
    if (r != NULL)
        reader_reset(r);
}

void volume_close(volume_reader *r)
{
    volume_reader_free(r);
}
