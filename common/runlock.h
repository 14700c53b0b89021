/*
 * runlock.h — the one run lock of mailret: an exclusive flock on <state dir>/mailret.lock.
 * ingest, purge, expire, hold and erase take it so that two runs never overlap (a timer firing while a
 * slow purge still runs, an operator's manual run, cron and systemd both configured).
 * flock is released by the kernel when the process dies, so a kill -9 never leaves a
 * stale lock behind.  The file holds nothing; its name is the lock.
 */
#ifndef MAILRET_COMMON_RUNLOCK_H
#define MAILRET_COMMON_RUNLOCK_H

#include <stdbool.h>

#include "common/error.h"

#define RUNLOCK_FILE "mailret.lock"

typedef struct runlock runlock;

/* Take the lock in state_dir (created 0700 if missing).  wait_s 0: a lock held by another
 * process is MR_E_STATE "another mailret run holds ..." at once; wait_s > 0: retry for up
 * to that many seconds first (the monthly purge timer and the five-minute ingest timer
 * fire together at 02:00); wait_s < 0: wait as long as it takes. */
int runlock_acquire(const char *state_dir, int wait_s, runlock **out, mr_error *err);
/* Release and free; NULL is allowed. */
void runlock_release(runlock *lock);

#endif
