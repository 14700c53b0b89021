/*
 * maildir_keywords.h — IMAP keywords ($Forwarded, NonJunk, $Label1 ...) in a Maildir, the
 * way Dovecot keeps them: a lower-case letter per keyword in the ":2," info of the file
 * name ('a' to 'z', after the upper-case system flags), and the letter-to-keyword table
 * in <maildir>/dovecot-keywords, one "<index> <keyword>" line each (index 0 is 'a').
 * A restore into a Maildir uses this so that keywords come back with the message, as they
 * do when restoring over IMAP, and `backup --from-maildir` reads them back into the
 * archived flags.  An existing table is extended, never renumbered.
 */
#ifndef MAILRET_BACKUP_MAILDIR_KEYWORDS_H
#define MAILRET_BACKUP_MAILDIR_KEYWORDS_H

#include <stddef.h>

#include "common/error.h"

#define MAILDIR_KEYWORDS_MAX 26

typedef struct maildir_keywords maildir_keywords;

/* The table of the Maildir at dir (empty if it has no dovecot-keywords file yet). */
int maildir_keywords_open(const char *dir, maildir_keywords **out, mr_error *err);

/* The letters for the keywords among flags (space-separated IMAP flags; system flags,
 * those starting with '\', are not keywords), in ascending order, into out.  A keyword
 * not in the table gets the next free letter; past 26 keywords it is left out and
 * counted (maildir_keywords_dropped). */
int maildir_keywords_letters(maildir_keywords *k, const char *flags,
                             char out[MAILDIR_KEYWORDS_MAX + 1], mr_error *err);

/* The keyword a letter ('a' .. 'z') stands for, or NULL when the table has none. */
const char *maildir_keywords_name(const maildir_keywords *k, char letter);

/* How many keyword occurrences had no letter left. */
size_t maildir_keywords_dropped(const maildir_keywords *k);

/* Write dovecot-keywords (durably) if keywords were added; otherwise nothing. */
int maildir_keywords_save(maildir_keywords *k, mr_error *err);

void maildir_keywords_free(maildir_keywords *k);

#endif
