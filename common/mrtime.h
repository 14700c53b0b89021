/*
 * mrtime.h — calendar arithmetic in Europe/Copenhagen (or another configured zone) without
 * touching the process's TZ: the purge cutoff, expiry dates, parsing of operator dates.
 */
#ifndef MAILRET_COMMON_MRTIME_H
#define MAILRET_COMMON_MRTIME_H

#include <time.h>

#include "common/error.h"

#define MRTIME_DEFAULT_ZONE "Europe/Copenhagen"

/* 00:00 local time on the first day of the month containing `now`, in zone. */
int mrtime_month_start(time_t now, const char *zone, time_t *out, mr_error *err);

/* The same local wall-clock time `years` calendar years later (29 Feb -> 1 Mar when the
 * target year is not a leap year, so that the result is never shorter than the policy). */
int mrtime_add_years(time_t t, int years, const char *zone, time_t *out, mr_error *err);

/* Parse "YYYY-MM-DD" (00:00 local in zone) or "YYYY-MM-DDTHH:MM:SSZ" (UTC). */
int mrtime_parse(const char *text, const char *zone, time_t *out, mr_error *err);

/* Parse exactly "YYYY-MM-DDTHH:MM:SSZ": a real date and time, year 1970..9999 — what
 * mrtime_format_utc writes, so that a stored time reads back to the same text. */
int mrtime_parse_utc(const char *text, time_t *out, mr_error *err);

/* Format as "YYYY-MM-DDTHH:MM:SSZ" (UTC) into buf of at least 21 bytes. */
void mrtime_format_utc(time_t t, char *buf, size_t size);

/* Check that zone names a usable time zone (for configuration checks). */
int mrtime_zone_check(const char *zone, mr_error *err);

/* Format as "YYYY-MM" of the local month in zone (batch directory names). */
int mrtime_format_month(time_t t, const char *zone, char *buf, size_t size, mr_error *err);

#endif
