/* test_backup_volume.c — one archive volume file (backup/volume.h): libdeflate writes it as
 * gzip members of 1 MiB, and what standard gzip readers must make of that; the reader's
 * own decompression of members it did not write (zlib's single large member), of damaged
 * but authentic gzip data, and of an empty volume. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <zlib.h>

#include "backup/volume.h"
#include "helpers/test_helpers.h"
#include "keys/keys.h"

struct fx {
    char *dir;
    EVP_PKEY *key;
    X509 *cert;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    mr_error err;

    assert_non_null(f);
    f->dir = th_tempdir("test-volume");
    assert_non_null(f->dir);
    assert_int_equal(keys_generate(KEYS_ALGO_P256, &f->key, &err), 0);
    assert_int_equal(keys_self_signed(f->key, "volume test", 1, &f->cert, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    th_rmtree(f->dir);
    free(f->dir);
    EVP_PKEY_free(f->key);
    X509_free(f->cert);
    free(f);
    return 0;
}

/* Text-like plaintext that compresses (so members end at their input size, not at an
 * output bound), deterministic. */
static unsigned char *make_plain(size_t len)
{
    static const char *const words[] = { "dagpenge ", "a-kasse ", "sag ", "2026 ", "\r\n",
                                         "ledighed ", "opsigelse ", "kontingent " };
    unsigned char *p = malloc(len);
    uint32_t x = 12345;
    size_t i = 0;

    assert_non_null(p);
    while (i < len) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % 8];
        for (size_t k = 0; w[k] != '\0' && i < len; k++)
            p[i++] = (unsigned char)w[k];
        if (((x >> 8) & 31) == 0 && i < len)
            p[i++] = (unsigned char)('0' + (x >> 24) % 10);
    }
    return p;
}

/* The gzip bytes inside a volume, decrypted by the test itself with plain CMS. */
static unsigned char *decrypt_raw(struct fx *f, const char *path, size_t *len)
{
    size_t clen;
    unsigned char *c = th_read_file(path, &clen);
    const unsigned char *p = c;
    CMS_ContentInfo *cms;
    BIO *out = BIO_new(BIO_s_mem());
    char *data;
    long n;
    unsigned char *copy;

    assert_non_null(c);
    cms = d2i_CMS_ContentInfo(NULL, &p, (long)clen);
    assert_non_null(cms);
    assert_int_equal(CMS_decrypt(cms, f->key, f->cert, NULL, out, CMS_BINARY), 1);
    n = BIO_get_mem_data(out, &data);
    copy = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(copy);
    memcpy(copy, data, (size_t)n);
    *len = (size_t)n;
    BIO_free(out);
    CMS_ContentInfo_free(cms);
    free(c);
    return copy;
}

/* Encrypt arbitrary bytes to the test certificate as a volume file would be. */
static void encrypt_raw(struct fx *f, const char *path, const unsigned char *data, size_t len)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    BIO *in = BIO_new_mem_buf(data, (int)len), *out = BIO_new_file(path, "wb");
    CMS_ContentInfo *cms;

    assert_non_null(certs);
    assert_true(sk_X509_push(certs, f->cert) > 0);
    assert_non_null(in);
    assert_non_null(out);
    cms = CMS_encrypt(certs, in, EVP_aes_256_gcm(), CMS_BINARY);
    assert_non_null(cms);
    assert_int_equal(i2d_CMS_bio(out, cms), 1);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    BIO_free(out);
    sk_X509_free(certs);
}

/* Decompress with zlib, member after member, as gzip(1) does; counts the members. */
static unsigned char *zlib_gunzip(const unsigned char *in, size_t len, size_t cap,
                                  size_t *out_len, int *members)
{
    unsigned char *out = malloc(cap);
    z_stream zs;
    size_t pos = 0;

    assert_non_null(out);
    *members = 0;
    *out_len = 0;
    while (pos < len) {
        memset(&zs, 0, sizeof zs);
        assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
        zs.next_in = (unsigned char *)in + pos;
        zs.avail_in = (uInt)(len - pos);
        zs.next_out = out + *out_len;
        zs.avail_out = (uInt)(cap - *out_len);
        assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
        pos += (size_t)(zs.next_in - (in + pos));
        *out_len = (size_t)(zs.next_out - out);
        inflateEnd(&zs);
        (*members)++;
    }
    return out;
}

static unsigned char *read_volume(struct fx *f, const char *path, size_t len)
{
    volume_reader *r = NULL;
    unsigned char *got = malloc(len ? len : 1), extra;
    mr_error err;
    int rc = volume_open(path, f->key, NULL, &r, &err);

    if (rc != 0)
        print_error("%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(volume_read(r, got, len, &err), 0);
    assert_int_equal(volume_check_end(r, &err), 0);
    /* nothing beyond the plaintext */
    assert_int_equal(volume_read(r, &extra, 1, &err), MR_E_TAMPERED);
    volume_close(r);
    return got;
}

static void test_members_readable_by_zlib_and_reader(void **state)
{
    struct fx *f = *state;
    const size_t len = (3u << 20) + 12345;    /* four members: 1 + 1 + 1 MiB + the rest */
    unsigned char *plain = make_plain(len), *raw, *z, *got;
    char path[4200];
    size_t raw_len, z_len;
    int members;
    mr_error err;

    snprintf(path, sizeof path, "%s/vol-0001.p7m", f->dir);
    assert_int_equal(volume_write(path, plain, len, 6, f->cert, &err), 0);
    /* refuses to overwrite */
    assert_int_equal(volume_write(path, plain, len, 6, f->cert, &err), MR_E_EXISTS);

    raw = decrypt_raw(f, path, &raw_len);
    assert_true(raw_len < len / 2);             /* it did compress */
    z = zlib_gunzip(raw, raw_len, len + 1, &z_len, &members);
    assert_int_equal(members, 4);
    assert_int_equal(z_len, len);
    assert_memory_equal(z, plain, len);

    got = read_volume(f, path, len);
    assert_memory_equal(got, plain, len);
    free(got);
    free(z);
    free(raw);
    free(plain);
}

static void test_other_writers_single_member(void **state)
{
    struct fx *f = *state;
    const size_t len = (5u << 20) + 7;          /* one member, five times the first try */
    unsigned char *plain = make_plain(len), *gz, *got;
    uLong cap = compressBound((uLong)len) + 64;
    z_stream zs;
    char path[4200];

    gz = malloc(cap);
    assert_non_null(gz);
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = plain;
    zs.avail_in = (uInt)len;
    zs.next_out = gz;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    snprintf(path, sizeof path, "%s/vol-zlib.p7m", f->dir);
    encrypt_raw(f, path, gz, zs.total_out);
    deflateEnd(&zs);

    got = read_volume(f, path, len);
    assert_memory_equal(got, plain, len);
    free(got);
    free(gz);
    free(plain);
}

/* Open, read len bytes, check the end: the first error, as a caller meets it (members are
 * decompressed as they are read, so damage inside one surfaces then, not at open). */
static int read_all_rc(struct fx *f, const char *path, size_t len, mr_error *err)
{
    volume_reader *r = NULL;
    unsigned char *buf = malloc(len ? len : 1);
    int rc;

    assert_non_null(buf);
    rc = volume_open(path, f->key, NULL, &r, err);
    if (rc == 0)
        rc = volume_read(r, buf, len, err);
    if (rc == 0)
        rc = volume_check_end(r, err);
    volume_close(r);
    free(buf);
    return rc;
}

static void test_damaged_gzip_inside_authentic_volume(void **state)
{
    struct fx *f = *state;
    const size_t len = 200000;
    unsigned char *plain = make_plain(len), *raw;
    char path[4200], bad[4200];
    size_t raw_len;
    volume_reader *r = NULL;
    mr_error err;

    snprintf(path, sizeof path, "%s/vol-good.p7m", f->dir);
    assert_int_equal(volume_write(path, plain, len, 1, f->cert, &err), 0);
    raw = decrypt_raw(f, path, &raw_len);

    /* a flipped bit in the deflate data (the GCM tag is fine: re-encrypted) */
    raw[raw_len / 2] ^= 0x10;
    snprintf(bad, sizeof bad, "%s/vol-flip.p7m", f->dir);
    encrypt_raw(f, bad, raw, raw_len);
    assert_int_equal(read_all_rc(f, bad, len, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "vol-flip.p7m"));
    raw[raw_len / 2] ^= 0x10;

    /* truncated: the last member's trailer is missing */
    snprintf(bad, sizeof bad, "%s/vol-short.p7m", f->dir);
    encrypt_raw(f, bad, raw, raw_len - 5);
    assert_int_equal(read_all_rc(f, bad, len, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "compressed data is corrupt"));

    /* junk after the last member */
    unsigned char *longer = malloc(raw_len + 3);
    assert_non_null(longer);
    memcpy(longer, raw, raw_len);
    memcpy(longer + raw_len, "xyz", 3);
    snprintf(bad, sizeof bad, "%s/vol-junk.p7m", f->dir);
    encrypt_raw(f, bad, longer, raw_len + 3);
    assert_int_equal(read_all_rc(f, bad, len, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "vol-junk.p7m"));

    /* an empty gzip member after the data is legal gzip and reads as nothing */
    unsigned char empty_member[] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 3, 0,
                                     0, 0, 0, 0, 0, 0, 0, 0 };
    unsigned char *with_empty = malloc(raw_len + sizeof empty_member);
    assert_non_null(with_empty);
    memcpy(with_empty, raw, raw_len);
    memcpy(with_empty + raw_len, empty_member, sizeof empty_member);
    snprintf(bad, sizeof bad, "%s/vol-emptymember.p7m", f->dir);
    encrypt_raw(f, bad, with_empty, raw_len + sizeof empty_member);
    assert_int_equal(read_all_rc(f, bad, len, &err), 0);
    /* ... but a reader that stops early sees the data that is left */
    assert_int_equal(read_all_rc(f, bad, len - 1, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "unexpected data after the archive"));
    free(with_empty);

    /* nothing at all */
    snprintf(bad, sizeof bad, "%s/vol-empty.p7m", f->dir);
    encrypt_raw(f, bad, raw, 0);
    assert_int_equal(volume_open(bad, f->key, NULL, &r, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "empty"));
    free(longer);
    free(raw);
    free(plain);
}

static void test_empty_plaintext_and_levels(void **state)
{
    struct fx *f = *state;
    unsigned char *plain = make_plain(100000), *got;
    char path[4200];
    unsigned long long size;
    char hex[VOLUME_SHA256_HEX], hex2[VOLUME_SHA256_HEX];
    volume_reader *r = NULL;
    mr_error err;

    snprintf(path, sizeof path, "%s/vol-zero.p7m", f->dir);
    assert_int_equal(volume_write(path, plain, 0, -1, f->cert, &err), 0);
    got = read_volume(f, path, 0);
    free(got);

    for (int level = 0; level <= 9; level++) {
        snprintf(path, sizeof path, "%s/vol-level%d.p7m", f->dir, level);
        assert_int_equal(volume_write(path, plain, 100000, level, f->cert, &err), 0);
        got = read_volume(f, path, 100000);
        assert_memory_equal(got, plain, 100000);
        free(got);
    }
    snprintf(path, sizeof path, "%s/vol-level10.p7m", f->dir);
    assert_int_equal(volume_write(path, plain, 100000, 10, f->cert, &err), MR_E_INVALID);

    /* the reader reports the file it read: the same as volume_file_hash */
    snprintf(path, sizeof path, "%s/vol-level6.p7m", f->dir);
    assert_int_equal(volume_file_hash(path, &size, hex, &err), 0);
    assert_int_equal(volume_open(path, f->key, hex, &r, &err), 0);
    unsigned long long size2 = 0;
    volume_reader_file(r, &size2, hex2);
    assert_int_equal(size2, size);
    assert_string_equal(hex2, hex);
    volume_close(r);
    hex[0] = hex[0] == '0' ? '1' : '0';
    assert_int_equal(volume_open(path, f->key, hex, &r, &err), MR_E_TAMPERED);
    assert_non_null(strstr(err.msg, "differs from the manifest"));
    free(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_members_readable_by_zlib_and_reader, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_other_writers_single_member, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_gzip_inside_authentic_volume, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_empty_plaintext_and_levels, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
