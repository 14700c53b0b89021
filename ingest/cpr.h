/*
 * cpr.h — Danish CPR numbers (DDMMYY-SSSS): validation, normalisation and scanning text.
 *
 * Since 1 October 2007 valid numbers may fail the modulus-11 check, so only the date part
 * is checked.  A normalised CPR number is the ten digits without separator.
 */
#ifndef MAILRET_INGEST_CPR_H
#define MAILRET_INGEST_CPR_H

#include <stdbool.h>
#include <stddef.h>

#define CPR_LEN 10

/* Normalise "DDMMYY-SSSS", "DDMMYYSSSS" or "DDMMYY SSSS" (nothing else around it) into
 * out (CPR_LEN + 1 bytes).  False if the text is not a CPR number with a valid date. */
bool cpr_normalise(const char *text, char out[CPR_LEN + 1]);

/* Find CPR-shaped numbers in text (not part of a longer run of digits), in order.
 * Calls fn(ctx, normalised) for each; fn returns true to stop.  Returns true if stopped. */
typedef bool (*cpr_found_fn)(void *ctx, const char *cpr);
bool cpr_scan(const char *text, size_t len, cpr_found_fn fn, void *ctx);

#endif
