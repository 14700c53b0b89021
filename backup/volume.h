/*
 * volume.h — one encrypted archive file: gzip of a plaintext (a tar image), in CMS
 * AuthEnvelopedData with AES-256-GCM to one certificate, as streamed BER.  The same form is
 * used for content volumes, re-identification files and locators (batchdir.h), so that
 *   openssl cms -decrypt -inform DER -binary -inkey KEY -in FILE | tar xzf -
 * opens either.
 *
 * Reading decrypts into memory (never into a file: a reid volume holds original messages)
 * and hands out plaintext only after CMS_decrypt accepted the GCM tag: nothing
 * unauthenticated reaches a caller.  Decryption is not streamed by OpenSSL, which is why
 * volumes are bounded (archive.h): reading one holds about three times its size at peak.
 */
#ifndef MAILRET_BACKUP_VOLUME_H
#define MAILRET_BACKUP_VOLUME_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "backup/tar.h"
#include "common/error.h"

#define VOLUME_SHA256_HEX 65

#define VOLUME_DEFAULT_LEVEL 6

/* Compress plain at level (0-9, -1 = VOLUME_DEFAULT_LEVEL; written with libdeflate as
 * gzip members of 1 MiB) and encrypt to cert into path
 * (durably: temp, fsync, rename, fsync dir; mode 0600; refuses to overwrite). */
int volume_write(const char *path, const unsigned char *plain, size_t len, int level,
                 X509 *cert, mr_error *err);

/* Size and SHA-256 (hex) of a file as it is on disk now.  The page cache is dropped first
 * (best effort) so that a read-back after fsync reads what the disk holds. */
int volume_file_hash(const char *path, unsigned long long *size,
                     char sha256_hex[VOLUME_SHA256_HEX], mr_error *err);

typedef struct volume_reader volume_reader;

/* Largest plaintext a volume may decompress to, a bound against a damaged or hostile
 * file (a decompression bomb): VOLUME_PLAIN_RATIO times the encrypted file's size, at
 * least VOLUME_PLAIN_FLOOR, at most VOLUME_PLAIN_MAX.  Mail compresses far less than
 * 128:1 (deflate's own limit is ~1032:1), and the writer reads every volume back through
 * the same bound, so a volume that would not pass it is never written. */
#define VOLUME_PLAIN_MAX ((size_t)2 << 30)
#define VOLUME_PLAIN_RATIO 128
#define VOLUME_PLAIN_FLOOR ((size_t)32 << 20)
size_t volume_plain_cap(unsigned long long file_size);

/* A reader that keeps its buffers from one volume to the next (worker threads verify
 * many).  NULL when out of memory. */
volume_reader *volume_reader_new(void);
/* Read path, decrypt it with pkey and decompress it, all in memory, replacing what the
 * reader held.  Errors as volume_open. */
int volume_reader_open(volume_reader *r, const char *path, EVP_PKEY *pkey,
                       const char *expect_sha256, mr_error *err);
/* Wipe the plaintext and keep the buffers (NULL is allowed). */
void volume_reader_close(volume_reader *r);
void volume_reader_free(volume_reader *r);

/* One volume: volume_reader_new + volume_reader_open; free with volume_close.
 * Read path, decrypt it with pkey and decompress it, all in memory.  If expect_sha256 is
 * not NULL the file's SHA-256 must match first (MR_E_TAMPERED naming the file).  A bad tag
 * or damaged data is MR_E_TAMPERED; a key that does not open the file is MR_E_CRYPTO. */
int volume_open(const char *path, EVP_PKEY *pkey, const char *expect_sha256,
                volume_reader **out, mr_error *err);
/* Size and SHA-256 (hex) of the encrypted file as volume_open read it (one read serves
 * both the manifest's figures and the decryption). */
void volume_reader_file(const volume_reader *r, unsigned long long *size,
                        char sha256_hex[VOLUME_SHA256_HEX]);
/* A tar_read_fn over the decompressed plaintext (ctx = the volume_reader). */
int volume_read(void *ctx, void *buf, size_t n, mr_error *err);
/* Back to the first byte of the plaintext (decompressed again as it is read), for a
 * second pass that does not hold the first one's entries. */
int volume_rewind(volume_reader *r, mr_error *err);
/* 0 if the plaintext ends right here (no trailing data). */
int volume_check_end(volume_reader *r, mr_error *err);
/* Wipe and free (volume_reader_free; NULL is allowed). */
void volume_close(volume_reader *r);

/* Hex helpers: lower-case hex of len bytes into out (2 * len + 1 bytes); the n bytes that
 * the first 2 * n lower-case hex digits of hex spell (-1 on anything else). */
void volume_hex(const unsigned char *bin, size_t len, char *out);
int volume_unhex(const char *hex, unsigned char *out, size_t n);

#endif
