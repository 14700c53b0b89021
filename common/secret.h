/*
 * secret.h — reading secrets (the IMAP password, passphrases, raw key files): from a
 * regular file that only its owner may read or write, or from the environment; never
 * from argv, which every user of the host can read in /proc.  Every buffer that held a
 * secret is wiped before it is freed.
 */
#ifndef MAILRET_COMMON_SECRET_H
#define MAILRET_COMMON_SECRET_H

#include <stddef.h>

#include "common/error.h"

#define SECRET_MAX 4096     /* longest text secret accepted */

/* MR_E_PERM unless path is a regular file with no group/other permission bits (the
 * message names the file and its mode); MR_E_NOTFOUND if it does not exist. */
int secret_file_check(const char *path, mr_error *err);

/* Check, then read the whole file into buf (at most max bytes; a longer file is
 * MR_E_LIMIT).  Opened with O_NOFOLLOW: a symlink planted in its place is refused. */
int secret_file_read(const char *path, unsigned char *buf, size_t max, size_t *len,
                     mr_error *err);

/* A text secret from path (preferred when both are given) or the environment variable
 * env: one trailing newline (LF or CRLF) is stripped; an empty secret, a NUL byte or more
 * than SECRET_MAX bytes is refused.  *out is malloc'd: release it with secret_free. */
int secret_read_text(const char *path, const char *env, char **out, mr_error *err);

/* Wipe and free a text secret.  NULL is allowed. */
void secret_free(char *secret);

#endif
