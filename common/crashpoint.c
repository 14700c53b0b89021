/* crashpoint.c — see crashpoint.h. */
#include "common/crashpoint.h"

#include <fnmatch.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void mr_crash_point(const char *step, const char *path)
{
    const char *want = getenv("MAILRET_TEST_CRASH_AT");
    size_t n = strlen(step);
    const char *base;

    if (want == NULL || strncmp(want, step, n) != 0)
        return;
    if (want[n] == ':') {
        if (path == NULL)
            return;
        base = strrchr(path, '/');
        base = base != NULL ? base + 1 : path;
        if (fnmatch(want + n + 1, base, 0) != 0)
            return;
    } else if (want[n] != '\0') {
        return;
    }
    raise(SIGKILL);
    _exit(137);     /* not reached */
}
