/*
 * test_helpers.h — small utilities shared by the cmocka tests: scratch directories,
 * whole-file reads, the Dovecot test server's connection facts, and a search for planted
 * identifiers in every file under a directory (invariant 3).
 */
#ifndef MAILRET_TESTS_HELPERS_H
#define MAILRET_TESTS_HELPERS_H

#include <stddef.h>

/* mkdtemp under $TMPDIR (or /tmp) with the given prefix; returns a malloc'd path. */
char *th_tempdir(const char *prefix);

/* rm -rf; ignores a NULL path. */
void th_rmtree(const char *path);

/* Read a whole file; returns malloc'd buffer (NUL-terminated beyond len) or NULL. */
unsigned char *th_read_file(const char *path, size_t *len);

/* Every file in dir (not below it; names starting with '.' skipped), read whole and handed
 * to fn with its name; a non-zero return from fn stops the walk.  Returns the number of
 * files handed over, or -1 if dir or a file cannot be read. */
int th_each_file(const char *dir,
                 int (*fn)(const char *name, const unsigned char *data, size_t len, void *arg),
                 void *arg);

/* Write a whole file (no fsync; tests only). Returns 0 or -1. */
int th_write_file(const char *path, const void *data, size_t len);

/* Connection facts of the running test server (scripts/imap-test-server writes them to
 * $MAILRET_TEST_IMAP_DIR/env as KEY=VALUE lines). Returns a malloc'd value or NULL. */
char *th_imap_env(const char *key);

/* Search every regular file below dir for each needle (raw bytes, case-sensitive).
 * Returns the number of hits and, if where is not NULL, a malloc'd description of the
 * first hit ("file: needle-index N"), never the needle itself. */
size_t th_find_in_tree(const char *dir, const char *const *needles, size_t n_needles,
                       char **where);

#endif
