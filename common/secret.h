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

/* ---- secrets printed by a command (token_command; see common/secret_cmd.c) ---- */

#define SECRET_CMD_MAX_OUTPUT 65536     /* largest output accepted (an OAuth token is ~2 KB) */
#define SECRET_CMD_MAX_WORDS 64

/* Split a command line into words without a shell: blanks separate words; '...' keeps
 * everything literally; "..." keeps everything but \" and \\; a backslash outside
 * quotes takes the next character literally.  Shell syntax that would mean something
 * else to a shell (| & ; < > ( ) $ ` and a leading ~) is refused unless quoted, so that
 * a pipeline is never silently run as one program with odd arguments.  On success
 * *argv is a NULL-terminated malloc'd array (secret_command_free it).  Errors are
 * MR_E_CONFIG with a message that does not repeat the line. */
int secret_command_parse(const char *line, char ***argv, mr_error *err);
void secret_command_free(char **argv);

/* Run argv (argv[0] searched in PATH, no shell) with stdin from /dev/null, stderr
 * inherited, no other inherited descriptors and only an allow-listed environment
 * (PATH, HOME, USER, LOGNAME, LANG, LC_*, TZ, TMPDIR, proxy and CA-bundle variables,
 * CREDENTIALS_DIRECTORY and MAILRET_TOKEN_*).  Its stdout, at most
 * SECRET_CMD_MAX_OUTPUT bytes and one line (trailing blanks and newline stripped), is
 * the secret: *out, malloc'd, release with secret_free.  A non-zero exit, a signal,
 * empty output, a second line, control characters, too much output, or more than
 * timeout_s seconds (the whole process group is killed) is an error naming argv[0] and
 * the cause — never the output. */
int secret_command_run(char *const argv[], int timeout_s, char **out, mr_error *err);

#endif
