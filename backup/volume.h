/*
 * volume.h — one encrypted archive file: gzip (zlib) of a plaintext (a tar image), in CMS
 * AuthEnvelopedData with AES-256-GCM to one certificate, as streamed BER.  The same form is
 * used for vol-NNNN.p7m (content) and reid-NNNN.p7m (re-identification data), so that
 *   openssl cms -decrypt -inform DER -binary -inkey KEY -in FILE | tar xzf -
 * opens either.
 *
 * Reading decrypts into an unlinked temporary file first and hands out plaintext only
 * after CMS_decrypt accepted the GCM tag: nothing unauthenticated reaches a caller.
 */
#ifndef MAILRET_BACKUP_VOLUME_H
#define MAILRET_BACKUP_VOLUME_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "backup/tar.h"
#include "common/error.h"

#define VOLUME_SHA256_HEX 65

/* Compress plain at level (0-9, -1 = zlib default) and encrypt to cert into path
 * (durably: temp, fsync, rename, fsync dir; mode 0600; refuses to overwrite). */
int volume_write(const char *path, const unsigned char *plain, size_t len, int level,
                 X509 *cert, mr_error *err);

/* Size and SHA-256 (hex) of a file as it is on disk now.  The page cache is dropped first
 * (best effort) so that a read-back after fsync reads what the disk holds. */
int volume_file_hash(const char *path, unsigned long long *size,
                     char sha256_hex[VOLUME_SHA256_HEX], mr_error *err);

typedef struct volume_reader volume_reader;

/* Decrypt path with pkey into an unlinked temporary file in tmp_dir (NULL = $TMPDIR or
 * /tmp) and open its gzip stream.  If expect_sha256 is not NULL the file's SHA-256 must
 * match first (MR_E_TAMPERED naming the file).  A bad tag is MR_E_TAMPERED; a key that
 * does not open the file is MR_E_CRYPTO. */
int volume_open(const char *path, EVP_PKEY *pkey, const char *tmp_dir,
                const char *expect_sha256, volume_reader **out, mr_error *err);
/* A tar_read_fn over the decompressed plaintext (ctx = the volume_reader). */
int volume_read(void *ctx, void *buf, size_t n, mr_error *err);
/* 0 if the gzip stream ended cleanly right here (no trailing data). */
int volume_check_end(volume_reader *r, mr_error *err);
void volume_close(volume_reader *r);

/* Hex helper. */
void volume_hex(const unsigned char *bin, size_t len, char *out);

#endif
