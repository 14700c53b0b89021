/*
 * members_import.h — `mailret members import FILE.csv`: load the member registry.
 *
 * Format: UTF-8, RFC 4180, header row `member_id,cpr,name,emails,cases`; emails and cases
 * separated by ';'.  The file is the whole registry: in one transaction the old registry
 * is replaced (documents already stored stay).  Every bad row is reported as
 * "FILE:LINE: cause" (never the value); if any row is bad nothing is changed.
 */
#ifndef MAILRET_INGEST_MEMBERS_IMPORT_H
#define MAILRET_INGEST_MEMBERS_IMPORT_H

#include <stddef.h>

#include "common/error.h"
#include "ingest/members.h"

/* Called once per bad row with the full "FILE:LINE: cause" message. */
typedef void (*members_row_error_fn)(void *ctx, const char *msg);

struct members_import_result {
    size_t rows, members, addresses, cprs, cases, bad_rows;
};

/* Returns MR_E_PARSE (err: "N bad rows in FILE; first: ...") if any row was bad. */
int members_import_csv(members_db *db, const char *path, members_row_error_fn on_error,
                       void *ctx, struct members_import_result *res, mr_error *err);

#endif
