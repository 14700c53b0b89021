/*
 * ingest_setup.h — everything an ingest run needs, built from the configuration
 * (common/config.h): IMAP options with the password read from its file or variable, the
 * member database, the configured sink, routing rules and the state path
 * (<state dir>/ingest-state.sqlite).  `mailret ingest` and purge's "ingest first" use it.
 */
#ifndef MAILRET_INGEST_INGEST_SETUP_H
#define MAILRET_INGEST_INGEST_SETUP_H

#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "ingest/ingest.h"

#define INGEST_STATE_FILE "ingest-state.sqlite"

typedef struct ingest_setup ingest_setup;

/* cfg must outlive the setup (strings are borrowed).  log may be NULL. */
int ingest_setup_open(const struct mr_config *cfg, mr_log *log, ingest_setup **out,
                      mr_error *err);
/* The options; callers may change batch_size, max_size and the mailbox list. */
struct ingest_options *ingest_setup_options(ingest_setup *s);
void ingest_setup_close(ingest_setup *s);

/* The IMAP options from [imap], for every command that connects (ingest, purge, backup,
 * restore into IMAP, check).  *password is read from password_file/password_env; release
 * it with secret_free once connected.  With token_command, *password stays NULL and the
 * options run the command for every connection (cfg must outlive them).  The options
 * borrow cfg's strings. */
int ingest_setup_imap_options(const struct mr_config *cfg, struct imap_options *io,
                              char **password, mr_error *err);

#endif
