/* child.c — waiting for a child process within a deadline; see child.h. */
#include "common/child.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

void child_deadline(struct timespec *deadline, int timeout_s)
{
    clock_gettime(CLOCK_MONOTONIC, deadline);
    deadline->tv_sec += timeout_s;
}

long child_ms_left(const struct timespec *deadline)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

int child_reap(pid_t pid, const struct timespec *deadline, bool kill_now, bool *killed)
{
    int status = 0;

    *killed = false;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 && errno != EINTR)
            return -1;
        if (kill_now || child_ms_left(deadline) <= 0) {
            *killed = true;
            /* The group (the child leads its own), and the child itself in case it
             * left the group. */
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            return status;
        }
        /* Children here are short-lived commands: a 5 ms poll costs nothing. */
        struct timespec nap = { 0, 5 * 1000 * 1000 };
        nanosleep(&nap, NULL);
    }
}
