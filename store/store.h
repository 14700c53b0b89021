/*
 * store.h — where archive objects live: one interface (a driver table, as ingest's sink)
 * with two drivers, a local directory and an S3 bucket.  Keys are '/'-separated names
 * such as "2026-12/vol-0001.cms"; every driver refuses keys that could mean something
 * else on another driver (empty or "." / ".." segments, control characters, a leading
 * or trailing '/', more than STORE_KEY_MAX bytes).
 *
 * A put is durable when it returns 0 (local: file and directory fsynced; S3: the store
 * answered 200 to the PUT or the multipart completion).  Every put carries the payload's
 * SHA-256, which the drivers check against the bytes they actually read, so a file that
 * changed under the writer is an error, not a silently different object.  What was
 * stored is proven only by store_verify, which reads the object back.
 *
 * A handle is used by one thread at a time (the S3 driver keeps one connection).
 */
#ifndef MAILRET_STORE_STORE_H
#define MAILRET_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"

#define STORE_KEY_MAX 1024
#define STORE_TO_END UINT64_MAX     /* store_get length: everything from offset on */

typedef struct mr_store mr_store;

/* Receives the bytes of a get in order; a non-zero return stops the get with that code. */
typedef int (*store_data_fn)(void *arg, const void *data, size_t len, mr_error *err);
/* One listed object; a non-zero return stops the listing with that code. */
typedef int (*store_list_fn)(void *arg, const char *key, uint64_t size, mr_error *err);

/* Where a payload comes from: a buffer, or a file descriptor read with pread (the
 * drivers may read it more than once, e.g. to hash a part before sending it). */
struct store_source {
    const unsigned char *buf;   /* NULL: read fd */
    int fd;
    uint64_t size;
};

/* A driver (for the drivers' own files and tests; callers use the store_* functions). */
struct store_driver {
    const char *name;
    int (*put)(void *self, const char *key, const struct store_source *src,
               const unsigned char sha256[32], mr_error *err);
    int (*get)(void *self, const char *key, uint64_t offset, uint64_t length,
               store_data_fn fn, void *arg, mr_error *err);
    int (*stat)(void *self, const char *key, uint64_t *size, mr_error *err);
    int (*list)(void *self, const char *prefix, store_list_fn fn, void *arg, mr_error *err);
    int (*del)(void *self, const char *key, mr_error *err);
    void (*close)(void *self);
    /* A put whose object is locked until retain_until (Object Lock); NULL for a driver
     * without locks.  Called only when the store's probe said STORE_LOCK_ON. */
    int (*put_retained)(void *self, const char *key, const struct store_source *src,
                        const unsigned char sha256[32], time_t retain_until, mr_error *err);
};

int store_new(const struct store_driver *drv, void *self, mr_store **out, mr_error *err);
void *store_driver_state(mr_store *st, const struct store_driver *drv);

/* MR_E_INVALID with a one-line reason unless key is a valid object key. */
int store_key_check(const char *key, mr_error *err);

/* Store len bytes from buf / the whole regular file at path under key, replacing what
 * was there.  sha256 is the payload's hash; NULL computes it first (one extra read). */
int store_put_buf(mr_store *st, const char *key, const void *buf, size_t len,
                  const unsigned char sha256[32], mr_error *err);
int store_put_file(mr_store *st, const char *key, const char *path,
                   const unsigned char sha256[32], mr_error *err);
/* store_put_file, and where the bucket has Object Lock enabled (store_object_lock ==
 * STORE_LOCK_ON) and retain_until lies in the future, the object is locked until then
 * in the store's retention mode (store_s3_options.lock_mode).  Anywhere else exactly
 * store_put_file: no retention header or call is sent (on Swift, a PUT ?retention would
 * overwrite the object). */
int store_put_file_until(mr_store *st, const char *key, const char *path,
                         const unsigned char sha256[32], time_t retain_until, mr_error *err);

/* Stream length bytes from offset (STORE_TO_END: to the end) to fn.  A range past the
 * end is MR_E_INVALID; a missing object MR_E_NOTFOUND. */
int store_get(mr_store *st, const char *key, uint64_t offset, uint64_t length,
              store_data_fn fn, void *arg, mr_error *err);
/* The whole object into path, written durably (common/durable.h) with mode. */
int store_get_file(mr_store *st, const char *key, const char *path, unsigned mode,
                   mr_error *err);
/* Size of an object; MR_E_NOTFOUND if there is none. */
int store_stat(mr_store *st, const char *key, uint64_t *size, mr_error *err);
/* Every object whose key starts with prefix ("" = all), in byte order of the keys. */
int store_list(mr_store *st, const char *prefix, store_list_fn fn, void *arg, mr_error *err);
/* Remove an object; removing one that is not there is not an error. */
int store_delete(mr_store *st, const char *key, mr_error *err);
/* Read the object back and compare: MR_E_NOTFOUND if missing, MR_E_TAMPERED (message
 * says size or SHA-256) if it is not exactly size bytes with that SHA-256. */
int store_verify(mr_store *st, const char *key, uint64_t size, const unsigned char sha256[32],
                 mr_error *err);
void store_close(mr_store *st);
const char *store_name(const mr_store *st);

/* ---- the local directory driver ---- */

/* Objects are files under dir (created with mode 0700 if missing); a key's '/' are
 * subdirectories.  Files are written via durable_open (fsync file, rename, fsync
 * directory), with mode 0600. */
int store_local_open(const char *dir, mr_store **out, mr_error *err);

/* ---- the S3 driver (store_s3.c, on libcurl) ---- */

struct store_s3_options {
    const char *endpoint;       /* "https://host[:port]" (or http:// for loopback tests) */
    const char *region;         /* signing region, e.g. "eu-north-1"; Swift: its location */
    const char *bucket;
    bool path_style;            /* endpoint/bucket/key instead of bucket.host/key */
    const char *ca_file;        /* NULL: the system's CA bundle */
    /* Credentials: from credentials_file (access_key_id = ... / secret_access_key = ...
     * lines; mode 0600, see common/secret.h) when set, else from the environment
     * variables access_key_env / secret_key_env (NULL: AWS_ACCESS_KEY_ID /
     * AWS_SECRET_ACCESS_KEY).  Never from argv, never logged. */
    const char *credentials_file;
    const char *access_key_env, *secret_key_env;
    uint64_t multipart_threshold;   /* payloads larger than this go multipart; 0: 64 MiB;
                                     * at most 5 GiB (S3's largest single PUT) */
    uint64_t part_size;             /* 0: 16 MiB; 5 MiB to 5 GiB (S3's limits) */
    int connect_timeout_s;          /* 0: 10 */
    int request_timeout_s;          /* whole request, 0: 900 */
    int low_speed_time_s;           /* abort below 1 KiB/s for this long, 0: 30 */
    int retries;                    /* extra attempts after a 5xx or a network error;
                                     * 0: 4, negative: none */
    int backoff_max_ms;             /* 0: 8000; backoff doubles from 250 ms up to this */
    bool require_object_lock;       /* open fails unless the bucket has Object Lock */
    bool lock_governance;           /* retention mode of locked puts: GOVERNANCE instead
                                     * of COMPLIANCE (store_put_file_until) */
    int list_page;                  /* keys per listing request, 0: 1000 (tests: small) */
};

enum store_lock_state {
    STORE_LOCK_UNSUPPORTED = 0,     /* the store does not implement Object Lock (Swift) */
    STORE_LOCK_OFF = 1,             /* implemented, not enabled on this bucket */
    STORE_LOCK_ON = 2,              /* enabled: retention can be set */
};

int store_s3_open(const struct store_s3_options *o, mr_store **out, mr_error *err);
/* What the bucket's Object Lock probe (GET ?object-lock at open) found; for a store that
 * is not S3, STORE_LOCK_UNSUPPORTED. */
enum store_lock_state store_object_lock(mr_store *st);
const char *store_lock_name(enum store_lock_state s);

#endif
