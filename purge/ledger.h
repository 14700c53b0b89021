/*
 * ledger.h — the erasure ledger ([state] erasure_ledger): one "kind:token" per line
 * (the format restore_ledger_load in backup/restore.h reads), e.g. "email:ab12...".
 * A person's erasure request is recorded as the tokens their identifiers get under the
 * pseudonym key — never the identifier itself.  Archives stay immutable; every restore
 * leaves out the messages that carry a listed token and says how many.
 * Appends are durable (the whole file is rewritten via temp + fsync + rename + fsync dir)
 * and idempotent (a token already listed is not added twice).
 */
#ifndef MAILRET_PURGE_LEDGER_H
#define MAILRET_PURGE_LEDGER_H

#include <stdbool.h>

#include "pseudo/pseudo.h"
#include "common/audit.h"
#include "common/error.h"


/* The ledger entry for one identifier: "<kind>:<token>" into out (at least 48 bytes). */
int ledger_entry(const pseudo_key *key, enum pseudo_kind kind, const char *identifier,
                 char *out, size_t size, mr_error *err);

/* Add entry unless present (*added says which).  Audited ("erasure.record"). */
int ledger_add(const char *path, const char *entry, audit_log *audit, bool *added,
               mr_error *err);

#endif
