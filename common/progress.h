/*
 * progress.h — a progress line on a terminal for long runs (purge, backup): messages,
 * bytes, rate and ETA, rewritten in place with '\r' at most a few times a second.  A NULL
 * handle is "no progress" and every call is a no-op, so callers need no conditionals.
 */
#ifndef MAILRET_COMMON_PROGRESS_H
#define MAILRET_COMMON_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct mr_progress mr_progress;

/* Whether a command shows progress by default: stderr is a terminal and the process does
 * not run under systemd (INVOCATION_ID, or stderr is the journal). */
bool progress_wanted(void);

/* A progress line on fd (normally STDERR_FILENO). */
int progress_open(mr_progress **out, int fd, mr_error *err);
void progress_close(mr_progress *p);

/* A new phase, e.g. "purge INBOX", with total messages (0 = unknown: no ETA). */
void progress_start(mr_progress *p, const char *label, size_t total);
/* messages and bytes done since the last call; draws when 250 ms have passed. */
void progress_add(mr_progress *p, size_t messages, uint64_t bytes);
/* The phase's final state, then a newline (nothing if nothing was drawn or counted). */
void progress_finish(mr_progress *p);

/* For tests: the clock in seconds (monotonic by default). */
void progress_set_clock(mr_progress *p, double (*now)(void));

#endif
