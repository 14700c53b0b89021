/*
 * error.h — the one error convention used everywhere in mailret.
 *
 * Every fallible function returns 0 on success or a negative MR_E_* code, and fills the
 * caller's mr_error with a one-line, human-readable message naming the cause.  Callers
 * check every return; to add context they prefix the message (mr_error_prefix) and pass
 * the same code on.  Messages must never contain a personal identifier (address, CPR,
 * name, phone): describe *what* failed (mailbox, UID, file), never *whose* data.
 */
#ifndef MAILRET_COMMON_ERROR_H
#define MAILRET_COMMON_ERROR_H

#include <stddef.h>

#define MR_ERROR_MSG_MAX 512

enum mr_status {
    MR_OK = 0,
    MR_E_INVALID = -1,     /* bad argument or bad input data */
    MR_E_NOMEM = -2,       /* allocation failed */
    MR_E_IO = -3,          /* read/write/fsync/rename failed */
    MR_E_NOSPACE = -4,     /* disk full or quota exceeded */
    MR_E_CONFIG = -5,      /* configuration mistake */
    MR_E_PERM = -6,        /* permissions, e.g. a secret file readable by others */
    MR_E_NETWORK = -7,     /* connect, reset, unexpected EOF */
    MR_E_TLS = -8,         /* handshake, certificate or host-name verification */
    MR_E_AUTH = -9,        /* wrong credentials */
    MR_E_PROTOCOL = -10,   /* server said NO/BAD or something unparseable */
    MR_E_CRYPTO = -11,     /* OpenSSL failure, wrong key, bad tag */
    MR_E_DB = -12,         /* SQLite failure */
    MR_E_TAMPERED = -13,   /* checksum, HMAC or chain mismatch */
    MR_E_NOTFOUND = -14,   /* named thing does not exist */
    MR_E_STATE = -15,      /* precondition not met (UIDVALIDITY changed, lock held, ...) */
    MR_E_LIMIT = -16,      /* a configured size or count limit exceeded */
    MR_E_UNSUPPORTED = -17,/* server or input lacks a needed feature (e.g. UIDPLUS) */
    MR_E_PARSE = -18,      /* malformed input */
    MR_E_TIMEOUT = -19,    /* an operation timed out */
    MR_E_EXISTS = -20,     /* refusing to overwrite */
    MR_E_INTERNAL = -21,   /* a bug: an invariant of mailret itself failed */
};

typedef struct mr_error {
    int code;                       /* last MR_E_* code, 0 if none */
    char msg[MR_ERROR_MSG_MAX];     /* one line, no trailing newline */
} mr_error;

/* Reset to "no error". */
void mr_error_clear(mr_error *err);

/* Set code and message; returns code so that callers can write
 * `return mr_error_set(err, MR_E_IO, "cannot open %s", path);`.  err may be NULL. */
int mr_error_set(mr_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As mr_error_set, appending ": strerror(errnum)"; ENOSPC/EDQUOT map code to MR_E_NOSPACE. */
int mr_error_errno(mr_error *err, int code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Append the OpenSSL error queue's first reason (and clear the queue). */
int mr_error_openssl(mr_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix context to the existing message: "ctx: old message"; returns err->code.  A
 * message that already starts with "ctx: " is left as it is. */
int mr_error_prefix(mr_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Short stable name of a code ("io", "tls", ...), for JSON output and tests. */
const char *mr_status_name(int code);

#endif
