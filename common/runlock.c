/* runlock.c — the run lock (see runlock.h). */
#include "common/runlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "common/durable.h"

struct runlock {
    int fd;
};

int runlock_acquire(const char *state_dir, int wait_s, runlock **out, mr_error *err)
{
    char path[4096];
    runlock *l;
    int fd, rc;

    *out = NULL;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", state_dir, RUNLOCK_FILE) >= sizeof path)
        return mr_error_set(err, MR_E_INVALID, "state directory path too long");
    rc = durable_mkdirs(state_dir, 0700, err);
    if (rc != 0)
        return rc;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return mr_error_errno(err, MR_E_IO, errno, "cannot open lock file %s", path);
    for (long waited_ms = 0;;) {
        int e;
        if (flock(fd, LOCK_EX | (wait_s < 0 ? 0 : LOCK_NB)) == 0)
            break;
        e = errno;
        if (e == EINTR)
            continue;
        if (e == EWOULDBLOCK && waited_ms < (long)wait_s * 1000) {
            /* flock has no timeout of its own: poll, 200 ms at a time. */
            const struct timespec step = { 0, 200 * 1000 * 1000 };
            nanosleep(&step, NULL);
            waited_ms += 200;
            continue;
        }
        close(fd);
        if (e == EWOULDBLOCK)
            return mr_error_set(err, MR_E_STATE,
                                "another mailret run holds %s; try again when it has finished",
                                path);
        return mr_error_errno(err, MR_E_IO, e, "cannot lock %s", path);
    }
    l = malloc(sizeof *l);
    if (l == NULL) {
        close(fd);
        return mr_error_set(err, MR_E_NOMEM, "out of memory");
    }
    l->fd = fd;
    *out = l;
    return 0;
}

void runlock_release(runlock *lock)
{
    if (lock == NULL)
        return;
    /* close drops the flock; no unlink, which would race with a waiting process that has
     * the old file open and would then lock an inode nobody else sees. */
    close(lock->fd);
    free(lock);
}
