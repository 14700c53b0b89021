/* volume.c — see volume.h. */
#include "backup/volume.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <zlib.h>

#include "backup/buf.h"
#include "common/durable.h"

#define CHUNK (256 * 1024)

struct volume_reader {
    gzFile gz;
    const char *name;
    char path[PATH_MAX];
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

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');

    return s != NULL ? s + 1 : path;
}

/* Deflate everything into the CMS stream BIO. */
static int gzip_into(BIO *sink, const unsigned char *plain, size_t len, int level,
                     const char *path, mr_error *err)
{
    z_stream zs;
    unsigned char *out = malloc(CHUNK);
    int zrc, rc = 0, flush;

    if (out == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    memset(&zs, 0, sizeof zs);
    /* windowBits 15 + 16: gzip wrapper; zlib writes mtime 0, so output is deterministic. */
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(out);
        return mr_error_set(err, MR_E_INVALID, "zlib: bad compression level %d", level);
    }
    do {
        size_t take = len > UINT_MAX ? UINT_MAX : len;
        zs.next_in = (unsigned char *)plain;
        zs.avail_in = (uInt)take;
        plain += take;
        len -= take;
        flush = len == 0 ? Z_FINISH : Z_NO_FLUSH;
        do {
            zs.next_out = out;
            zs.avail_out = CHUNK;
            zrc = deflate(&zs, flush);
            if (zrc == Z_STREAM_ERROR) {
                rc = mr_error_set(err, MR_E_INTERNAL, "zlib deflate failed");
                break;
            }
            size_t have = CHUNK - zs.avail_out;
            if (have > 0 && BIO_write(sink, out, (int)have) != (int)have) {
                rc = mr_error_errno(err, MR_E_IO, errno, "cannot write %s", path);
                break;
            }
        } while (zs.avail_out == 0);
    } while (rc == 0 && flush != Z_FINISH);
    deflateEnd(&zs);
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

static int read_whole(const char *path, struct mr_buf *out, mr_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    unsigned char tmp[CHUNK / 4];
    int rc = 0;

    if (fd < 0)
        return mr_error_errno(err, errno == ENOENT ? MR_E_NOTFOUND : MR_E_IO, errno,
                              "cannot open %s", base_name(path));
    /* Drop cached pages: a read-back should see the disk, not our own write buffers. */
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = mr_error_errno(err, MR_E_IO, errno, "cannot read %s", base_name(path));
            break;
        }
        if (n == 0)
            break;
        rc = buf_append(out, tmp, (size_t)n, err);
        if (rc != 0)
            break;
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

static int make_temp(const char *tmp_dir, char *path, size_t size, mr_error *err)
{
    const char *dir = tmp_dir;
    int fd;

    if (dir == NULL)
        dir = getenv("TMPDIR");
    if (dir == NULL || *dir == '\0')
        dir = "/tmp";
    if ((size_t)snprintf(path, size, "%s/.mailret-plain-XXXXXX", dir) >= size)
        return mr_error_set(err, MR_E_INVALID, "temporary path too long");
    fd = mkstemp(path);
    if (fd < 0)
        return mr_error_errno(err, MR_E_IO, errno, "cannot create a temporary file in %s",
                              dir);
    /* Unlinked at once: the plaintext disappears with the descriptor, even on a crash. */
    unlink(path);
    return fd;
}

int volume_open(const char *path, EVP_PKEY *pkey, const char *tmp_dir,
                const char *expect_sha256, volume_reader **out, mr_error *err)
{
    struct mr_buf b = { 0 };
    volume_reader *r = NULL;
    CMS_ContentInfo *cms = NULL;
    BIO *in = NULL, *plain = NULL;
    unsigned char md[32];
    char hex[VOLUME_SHA256_HEX];
    int fd = -1, rc;

    *out = NULL;
    rc = read_whole(path, &b, err);
    if (rc != 0)
        goto done;
    if (expect_sha256 != NULL) {
        SHA256(b.data, b.len, md);
        volume_hex(md, sizeof md, hex);
        if (strcmp(hex, expect_sha256) != 0) {
            rc = mr_error_set(err, MR_E_TAMPERED, "%s: SHA-256 differs from the manifest",
                              base_name(path));
            goto done;
        }
    }
    in = BIO_new_mem_buf(b.data, (int)b.len);
    if (in == NULL || b.len > INT_MAX) {
        rc = mr_error_set(err, MR_E_LIMIT, "%s is too large", base_name(path));
        goto done;
    }
    cms = d2i_CMS_bio(in, NULL);
    if (cms == NULL) {
        rc = mr_error_openssl(err, MR_E_TAMPERED, "%s is damaged (not a CMS structure)",
                              base_name(path));
        goto done;
    }
    fd = make_temp(tmp_dir, (char[PATH_MAX]){ 0 }, PATH_MAX, err);
    if (fd < 0) {
        rc = fd;
        goto done;
    }
    plain = BIO_new_fd(fd, BIO_NOCLOSE);
    if (plain == NULL) {
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        goto done;
    }
    /* Two steps, to tell "not our key" apart from "our key, but the data was altered":
     * unwrapping the content key (AES key wrap under the ECDH-derived key) fails for a
     * wrong key; the GCM tag then fails only for altered content. */
    if (CMS_decrypt_set1_pkey(cms, pkey, NULL) != 1) {
        rc = mr_error_openssl(err, MR_E_CRYPTO, "%s: cannot decrypt with this key",
                              base_name(path));
        goto done;
    }
    if (CMS_decrypt(cms, NULL, NULL, NULL, plain, CMS_BINARY) != 1 || BIO_flush(plain) <= 0) {
        rc = mr_error_openssl(err, MR_E_TAMPERED,
                              "%s: decryption failed (authentication tag or structure does "
                              "not check)", base_name(path));
        goto done;
    }
    if (lseek(fd, 0, SEEK_SET) != 0) {
        rc = mr_error_errno(err, MR_E_IO, errno, "cannot rewind temporary file");
        goto done;
    }
    r = calloc(1, sizeof *r);
    if (r == NULL) {
        rc = mr_error_set(err, MR_E_NOMEM, "out of memory");
        goto done;
    }
    snprintf(r->path, sizeof r->path, "%s", path);
    r->name = base_name(r->path);
    r->gz = gzdopen(fd, "rb");
    if (r->gz == NULL) {
        free(r);
        r = NULL;
        rc = mr_error_set(err, MR_E_NOMEM, "zlib: cannot open stream");
        goto done;
    }
    fd = -1;    /* owned by gz now */
    (void)gzbuffer(r->gz, CHUNK);
    *out = r;
done:
    if (fd >= 0)
        close(fd);
    BIO_free(plain);
    BIO_free(in);
    CMS_ContentInfo_free(cms);
    free(b.data);
    ERR_clear_error();
    return rc;
}

int volume_read(void *ctx, void *buf, size_t n, mr_error *err)
{
    volume_reader *r = ctx;
    unsigned char *p = buf;

    while (n > 0) {
        unsigned take = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(r->gz, p, take);
        int zerr;
        if (got <= 0) {
            (void)gzerror(r->gz, &zerr);
            return mr_error_set(err, MR_E_TAMPERED, "%s: compressed data %s", r->name,
                                got == 0 ? "ends early" : "is corrupt");
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

int volume_check_end(volume_reader *r, mr_error *err)
{
    unsigned char c;
    int zerr = Z_OK;

    if (gzread(r->gz, &c, 1) != 0)
        return mr_error_set(err, MR_E_TAMPERED, "%s: unexpected data after the archive",
                            r->name);
    (void)gzerror(r->gz, &zerr);
    if (zerr != Z_OK && zerr != Z_STREAM_END)
        return mr_error_set(err, MR_E_TAMPERED, "%s: compressed data is corrupt", r->name);
    return 0;
}

void volume_close(volume_reader *r)
{
    if (r == NULL)
        return;
    gzclose_r(r->gz);
    free(r);
}
