/*
 * csv.h — a streaming RFC 4180 reader for the member registry (and any other CSV input).
 *
 * Records are read one at a time: quoted fields may hold commas, CR/LF and doubled quotes;
 * CRLF or LF ends a record; a UTF-8 byte-order mark at the start is skipped.  Every field
 * must be valid UTF-8.  Errors name the line where the bad record starts, never its content
 * (the registry holds CPR numbers and addresses).
 */
#ifndef MAILRET_INGEST_CSV_H
#define MAILRET_INGEST_CSV_H

#include <stddef.h>
#include <stdio.h>

#include "common/error.h"

typedef struct csv_reader csv_reader;

/* Read from f (not closed by csv_close).  name is used in error messages ("FILE:LINE"). */
int csv_open(FILE *f, const char *name, csv_reader **out, mr_error *err);
void csv_close(csv_reader *r);

/* Read the next record.  On success *n_fields > 0 and fields[i] point into the reader's
 * buffers (valid until the next call); at end of input returns 0 with *n_fields == 0.
 * A malformed record returns MR_E_PARSE with "NAME:LINE: cause"; reading can continue
 * with the next record after it. */
int csv_next(csv_reader *r, char ***fields, size_t *n_fields, mr_error *err);

/* Line number (1-based) where the record returned last started. */
size_t csv_line(const csv_reader *r);

#endif
