/*
 * child.h — waiting for a child process within a deadline (the token command, the exec
 * sink).  A child that outlives its deadline is killed with its whole process group: a
 * shell or wrapper may have forked the real work, which must not outlive the run.
 */
#ifndef MAILRET_COMMON_CHILD_H
#define MAILRET_COMMON_CHILD_H

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

/* A deadline timeout_s seconds from now on the monotonic clock. */
void child_deadline(struct timespec *deadline, int timeout_s);

/* Milliseconds left until the deadline (negative once it has passed). */
long child_ms_left(const struct timespec *deadline);

/* Wait for pid until the deadline (or not at all when kill_now), then SIGKILL its process
 * group and wait for good.  Returns the wait status, or -1 if waitpid failed; *killed
 * tells whether it had to be killed. */
int child_reap(pid_t pid, const struct timespec *deadline, bool kill_now, bool *killed);

#endif
