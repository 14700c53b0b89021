/*
 * reader.h — IT's side: read a batch back, volume by volume, message by message.
 * Every volume's SHA-256 is checked against the manifest, then decrypted (GCM tag checked
 * before any byte is used), its tar and index.jsonl parsed, each archived message's
 * SHA-256 compared with the index and, with the re-identification key, the original
 * rebuilt (pseudo_restore) and its SHA-256 compared with the index too.  Memory: one
 * volume's plaintext at a time.
 */
#ifndef MAILRET_BACKUP_READER_H
#define MAILRET_BACKUP_READER_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "backup/archive.h"
#include "backup/index.h"
#include "common/error.h"

struct reader_message {
    const struct index_entry *idx;
    const char *volume;                 /* the volume's name in the batch */
    const unsigned char *pseudo;        /* archived (pseudonymised) bytes */
    size_t pseudo_len;
    const unsigned char *orig;          /* original bytes; NULL without a reid key */
    size_t orig_len;
};

/* Called for every message that `want` accepted (want NULL = all).  want sees only the
 * index entry, so messages it rejects are never re-identified. */
typedef int (*reader_want_fn)(void *ctx, const struct index_entry *idx);
typedef int (*reader_fn)(void *ctx, const struct reader_message *m, mr_error *err);

struct reader_options {
    const char *dir;                    /* batch directory */
    const struct archive_manifest *manifest;
    EVP_PKEY *content_key;              /* the batch's content epoch private key */
    EVP_PKEY *reid_key;                 /* its reid epoch private key, or NULL */
    reader_want_fn want;
    reader_fn fn;
    void *ctx;
    const bool *volumes;                /* NULL = every volume; else only those with
                                           volumes[i] (one per manifest volume) are read */
    size_t *volumes_read;               /* may be NULL: counts the volumes decrypted */
};

/* 0 when every volume was read and every callback returned 0.  Errors name the volume
 * (and message file) that failed. */
int reader_run(const struct reader_options *opt, mr_error *err);

#endif
