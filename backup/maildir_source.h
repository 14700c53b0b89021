/*
 * maildir_source.h — messages from a Maildir as archive input (`mailret backup
 * --from-maildir DIR`, used by tests and for importing old mail): cur/ and new/, sorted by
 * file name; UIDVALIDITY 1 and UIDs 1..n in that order; INTERNALDATE = the file's mtime;
 * flags from the ":2," info (S R F T D -> \Seen \Answered \Flagged \Deleted \Draft).
 */
#ifndef MAILRET_BACKUP_MAILDIR_SOURCE_H
#define MAILRET_BACKUP_MAILDIR_SOURCE_H

#include <stddef.h>
#include <time.h>

#include "backup/archive.h"
#include "common/error.h"

/* Calls archive_batch_add for every message with INTERNALDATE before `before` (0 = all).
 * *n_added receives the count. */
int maildir_source_feed(const char *dir, time_t before, archive_batch *b, size_t *n_added,
                        mr_error *err);

#endif
