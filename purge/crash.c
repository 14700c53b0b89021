/* crash.c — fault injection for the purge tests: MAILRET_TEST_CRASH_AT=<step> kills the
 * process with SIGKILL at that step (see purge.h for the step names).  This is test
 * equipment compiled into every build on purpose: it can only do what kill -9 does, which
 * the journal must survive anyway, and an unset variable costs one getenv per step. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "purge/purge.h"

void purge_test_crash_hook(void *ctx, const char *step)
{
    const char *want = getenv("MAILRET_TEST_CRASH_AT");

    (void)ctx;
    if (want != NULL && strcmp(want, step) == 0) {
        raise(SIGKILL);
        _exit(137);     /* not reached */
    }
}
